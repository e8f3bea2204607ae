"""Review decisions for the pickle allow-list.

Every global the harvest observes must end up in exactly one of these places:

* ``EXCLUDE``: seen in real files, never allowed; the reason says why (it calls code, imports by
  name, reaches files/sockets/processes, or evaluates strings). Most of these are on the deny-list.
* ``HAND``: allowed, with a hand-written reason (functions, special classes, everything outside a
  well-understood category).
* ``derive_reason``: allowed by category (torch.nn layers, torch dtypes and storage type names,
  NumPy scalar and DType classes, scikit-learn estimators, Cython types and helper classes), with a
  reason built from the category and the object the name resolves to in the pinned environment.
* ``PREFIXES``: module-prefix entries (TorchScript class types).

``EXTRA`` holds entries no generated file contains but that are justified anyway (NumPy 1.x
names for files written by older NumPy, entries of torch's own weights_only list that need a GPU
or a tensor subclass to appear, the old vendored joblib). The harvest reports them as "allowed, not
observed" so a reviewer sees them every time.

A harvested global that is in none of these is UNREVIEWED: the harvest fails and prints it.
Resolving a name here (importlib + getattr on the installed library) happens on this machine, in
the environment that wrote the files; nothing read from a pickle is ever imported or called.
"""

from __future__ import annotations

import importlib
import inspect

# --------------------------------------------------------------------------------------------
# observed in real files, never allowed

EXCLUDE: dict[tuple[str, str], str] = {
    ("builtins", "getattr"): (
        "Attribute lookup by a name taken from pickle data: the classic way to reach os.system or eval "
        "from any object. torch.save writes it for bound-method hooks (Lazy* modules' _infer_parameters); "
        "such files stay a finding."),
    ("torch.storage", "_load_from_bytes"): (
        "Runs torch.load(weights_only=False) on bytes from the pickle: a nested unpickler with no "
        "restrictions. pickle.dump/joblib.dump of an object holding a tensor writes it; save tensors with "
        "torch.save or safetensors instead."),
    ("torch.fx.graph_module", "reduce_graph_module"): (
        "Rebuilds a torch.fx GraphModule by exec()-ing the Python source stored in the pickle "
        "(_forward_from_src): arbitrary code. torch.save of a GraphModule writes it."),
    ("torch.fx._symbolic_trace", "Tracer"): (
        "Only appears beside reduce_graph_module (the tracer class used to re-trace exec'd code); "
        "no standalone use in model files."),
}

# Decisions for globals real files do not contain but reviewers keep asking about.
NOT_ALLOWED_NOTES: dict[tuple[str, str], str] = {
    ("copyreg", "__newobj__"): (
        "CPython's pickler never writes it (protocol 2+ turns it into the NEWOBJ opcode, protocols 0-1 use "
        "copyreg._reconstructor), so no real file needs it; it is a dunder name, which rule MG104 treats "
        "as attribute traversal."),
    ("joblib.numpy_pickle_compat", "NDArrayWrapper"): (
        "joblib < 0.10 format: reads the array from a side file whose name is in the pickle "
        "(np.load on a path); out of scope for a single-file gate."),
    ("joblib.numpy_pickle_compat", "ZNDArrayWrapper"): (
        "joblib < 0.10 compressed format: opens a side file named in the pickle."),
    ("operator", "attrgetter"): "Attribute lookup by name from pickle data (getattr equivalent).",
    ("numpy", "load"): "Opens a file by name and may unpickle it (allow_pickle).",
    ("torch", "load"): "Opens a file or buffer and unpickles it: a nested unpickler.",
}

# --------------------------------------------------------------------------------------------
# module-prefix entries

PREFIXES = [
    {
        "module-prefix": "__torch__",
        "reason": ("TorchScript class types (__torch__.<qualified class>, mangled ___torch_mangle_N variants and "
                   "__torch__.torch.classes.* custom-class objects): torch.jit.load's C++ unpickler resolves them "
                   "against the archive's own compiled code/ and registered classes, never by a Python import. "
                   "The code/ directory itself is a separate TorchScript finding."),
        "loaders": ["torchscript"],
    },
]

# --------------------------------------------------------------------------------------------
# hand-written reasons

_TORCHSCRIPT_LIST = ("Identity helper torch.jit.save writes to tag a list's element type; returns its "
                     "argument unchanged.")

HAND: dict[tuple[str, str], str] = {
    # --- stdlib
    ("functools", "partial"): (
        "Freezes arguments of another callable. Building one calls nothing; calling it calls its target, "
        "which a pickle can only name through another global, itself checked against these lists, so a "
        "partial reaches no code its target could not. scikit-learn 1.9 writes partial(check_array, ...) "
        "into HistGradientBoosting*(categorical_features=...). (picklescan denies it: a false positive on "
        "benign files, threats.md B-02.)"),
    ("_codecs", "encode"): (
        "Turns latin-1 text back into bytes; protocol 0-2 pickles store every bytes buffer (arrays, RNG state) "
        "this way. Codec lookup only imports the stdlib encodings package."),
    ("argparse", "Namespace"): (
        "Attribute bag that training scripts save as `args` in checkpoints; construction only sets attributes."),
    ("builtins", "bool"): "Type constructor for bool; makes a value from pickle data, runs nothing.",
    ("builtins", "bytearray"): "Type constructor for bytearray (used by protocol 0-4 for bytearray values).",
    ("builtins", "bytes"): "Type constructor for bytes (protocols 0-2 write empty bytes as bytes()).",
    ("builtins", "complex"): "Type constructor for complex (protocols 0-4 reduce complex numbers to it).",
    ("builtins", "dict"): "Type constructor for dict; also appears as a stored type (e.g. a dtype-like parameter).",
    ("builtins", "float"): "Type constructor for float; appears as a stored type parameter (dtype=float).",
    ("builtins", "frozenset"): "Type constructor for frozenset (protocols 0-3 reduce frozensets to it).",
    ("builtins", "int"): "Type constructor for int; appears as a stored type parameter (dtype=int).",
    ("builtins", "list"): "Type constructor for list; also the default_factory of pickled defaultdicts.",
    ("builtins", "object"): (
        "Base class passed to copyreg._reconstructor by protocol 0-1 pickles; object() makes an empty object."),
    ("builtins", "range"): "Type constructor for range; a lazy integer sequence, nothing runs.",
    ("builtins", "set"): "Type constructor for set (protocols 0-3 reduce sets to it; torch.nn modules hold sets).",
    ("builtins", "slice"): "Type constructor for slice (ColumnTransformer stores column slices).",
    ("builtins", "str"): "Type constructor for str; appears as a stored type parameter.",
    ("builtins", "tuple"): "Type constructor for tuple; appears as a stored type parameter.",
    ("collections", "Counter"): "dict subclass counting items; rebuilt from a plain dict of counts.",
    ("collections", "OrderedDict"): (
        "Ordered dict; every state_dict and torch.nn module's parameter/buffer/hook tables are OrderedDicts."),
    ("collections", "defaultdict"): (
        "dict with a default factory; the factory is another global in the same pickle and is checked on its own."),
    ("collections", "deque"): "Double-ended queue rebuilt from an iterable and maxlen; nothing runs.",
    ("copyreg", "_reconstructor"): (
        "Protocol 0-1 object rebuild: base.__new__(cls) and base.__init__(obj, state) where cls and base are "
        "other globals of the same pickle, each checked against this list."),
    ("datetime", "date"): "Date value rebuilt from packed bytes.",
    ("datetime", "datetime"): "Datetime value rebuilt from packed bytes and an optional tzinfo value.",
    ("datetime", "time"): "Time-of-day value rebuilt from packed bytes.",
    ("datetime", "timedelta"): "Duration value rebuilt from days, seconds and microseconds.",
    ("datetime", "timezone"): "Fixed-offset timezone value rebuilt from a timedelta.",
    ("decimal", "Decimal"): "Decimal number parsed from its string form; the parser evaluates nothing.",
    ("fractions", "Fraction"): "Rational number parsed from its string form (regex parser, no eval).",
    ("pathlib", "PosixPath"): (
        "Path value: the constructor only joins segments, no file-system access. Methods (read_text, os ...) are "
        "reachable only through dotted names, which this exact entry does not cover (MG104)."),
    ("pathlib", "PurePosixPath"): "Pure path value (no I/O methods at all); the constructor only joins segments.",
    ("pathlib", "PureWindowsPath"): "Pure Windows path value (no I/O methods at all); the constructor only joins segments.",
    ("uuid", "UUID"): (
        "UUID value restored from its integer; the class only. uuid's helpers that run commands "
        "(_get_command_stdout, getnode ...) are on the deny-list."),
    # --- joblib
    ("joblib.numpy_pickle", "NumpyArrayWrapper"): (
        "joblib's array placeholder: BUILD stores shape/dtype/order, then joblib reads the raw array bytes that "
        "follow (object arrays are a nested pickle the scanner walks too)."),
    # --- numpy
    ("numpy", "dtype"): (
        "Data-type descriptor built from a type code ('f8', '<U5', 'O8') and restored from a state tuple; "
        "describes memory layout only."),
    ("numpy", "ndarray"): (
        "Array class passed to _reconstruct; ndarray.__setstate__ copies raw bytes (or, for object arrays, a list "
        "of values built by the same pickle)."),
    ("numpy", "matrix"): "ndarray subclass numpy.matrix, rebuilt through _reconstruct like any array.",
    ("numpy", "record"): "Scalar type of record arrays (numpy.rec), rebuilt from raw bytes.",
    ("numpy", "mean"): (
        "numpy.mean (FeatureAgglomeration's default pooling_func); pure reduction over array data "
        "(defers to the argument's own .mean())."),
    ("numpy", "log1p"): "NumPy ufunc log(1+x), stored by FunctionTransformer/TransformedTargetRegressor; pure math.",
    ("numpy", "expm1"): "NumPy ufunc exp(x)-1, the inverse_func paired with log1p; pure math.",
    ("numpy._core._internal", "_convert_to_stringdtype_kwargs"): (
        "Rebuilds numpy.dtypes.StringDType from its coerce/na_object settings."),
    ("numpy._core.multiarray", "_reconstruct"): (
        "ndarray.__reduce__ helper (NumPy 2.x path): allocates an empty ndarray subclass instance; "
        "__setstate__ fills it."),
    ("numpy._core.multiarray", "scalar"): (
        "Rebuilds a NumPy scalar from a dtype and its raw bytes (NumPy 2.x path)."),
    ("numpy._core.numeric", "_frombuffer"): (
        "Protocol-5 array rebuild (NumPy 2.x path): frombuffer + reshape over bytes held in the pickle."),
    ("numpy.ma", "MaskedArray"): "Masked array class, rebuilt by _mareconstruct and restored with its data and mask.",
    ("numpy.ma.core", "MaskedConstant"): "The numpy.ma.masked singleton's class; rebuilding it returns the singleton.",
    ("numpy.ma.core", "_mareconstruct"): (
        "MaskedArray.__reduce__ helper: allocates empty data and mask arrays of the given subclass/dtype."),
    ("numpy.rec", "recarray"): "Record-array subclass of ndarray, rebuilt through _reconstruct.",
    ("numpy.random._pickle", "__bit_generator_ctor"): (
        "Makes a fresh bit generator from one of NumPy's own classes (by name from a fixed table, or a class "
        "given in the pickle and checked against this list); state is set afterwards."),
    ("numpy.random._pickle", "__generator_ctor"): (
        "Wraps a bit generator in numpy.random.Generator (legacy path calls the ctor given in the pickle, "
        "itself a checked global)."),
    ("numpy.random._pickle", "__randomstate_ctor"): (
        "Wraps a bit generator in the legacy RandomState (sklearn's random_state objects); state set afterwards."),
    ("numpy.random._mt19937", "MT19937"): "Mersenne-Twister bit generator; state restored from arrays and ints.",
    ("numpy.random._pcg64", "PCG64"): "PCG64 bit generator; state restored from a dict of integers.",
    ("numpy.random._pcg64", "PCG64DXSM"): "PCG64DXSM bit generator; state restored from a dict of integers.",
    ("numpy.random._philox", "Philox"): "Philox bit generator; state restored from a dict of integers.",
    ("numpy.random._sfc64", "SFC64"): "SFC64 bit generator; state restored from a dict of integers.",
    ("numpy.random.bit_generator", "SeedSequence"): "Seed-entropy record of a bit generator; plain integer state.",
    # skops schema names (loader "skops" only): skops.io.load builds these itself, never from pickle opcodes
    ("numpy.random.mtrand", "RandomState"): (
        "skops RandomStateNode: skops.io.load calls RandomState() with no arguments, then set_state() with the "
        "stored arrays and integers."),
    ("numpy.random._generator", "Generator"): (
        "skops RandomGeneratorNode: numpy.random.Generator(bit_generator=...) around a bit generator skops has "
        "just rebuilt; no data from the file is called."),
    ("numpy.random", "PCG64"): (
        "skops RandomGeneratorNode bit generator: skops.io.load calls numpy.random.PCG64(SeedSequence) and sets "
        "its state dict (skops refuses any name that is not a BitGenerator subclass)."),
    ("numpy.random", "PCG64DXSM"): (
        "skops RandomGeneratorNode bit generator: numpy.random.PCG64DXSM(SeedSequence), state set from a dict "
        "of integers."),
    ("numpy.random", "MT19937"): (
        "skops RandomGeneratorNode bit generator: numpy.random.MT19937(SeedSequence), state set from arrays "
        "and integers."),
    ("numpy.random", "Philox"): (
        "skops RandomGeneratorNode bit generator: numpy.random.Philox(SeedSequence), state set from a dict of "
        "integers."),
    ("numpy.random", "SFC64"): (
        "skops RandomGeneratorNode bit generator: numpy.random.SFC64(SeedSequence), state set from a dict of "
        "integers."),

    ("numpy.random.bit_generator", "__pyx_unpickle_SeedSequence"): (
        "Cython-generated unpickle helper: checks a layout checksum, makes an empty SeedSequence and sets its "
        "integer fields."),
    # --- scipy (stored inside scikit-learn models, or next to them)
    ("scipy._lib.array_api_compat.numpy._aliases", "asarray"): (
        "Array-API asarray stored by scipy's BSpline (SplineTransformer); converts data with np.asarray."),
    ("scipy.interpolate._bsplines", "BSpline"): "B-spline (knots, coefficients, degree) held by SplineTransformer.",
    ("scipy.sparse._coo", "coo_array"): "COO sparse array; rebuilt from its data/row/col arrays.",
    ("scipy.sparse._coo", "coo_matrix"): "COO sparse matrix; rebuilt from its data/row/col arrays.",
    ("scipy.sparse._csc", "csc_array"): "CSC sparse array; rebuilt from its data/indices/indptr arrays.",
    ("scipy.sparse._csc", "csc_matrix"): "CSC sparse matrix; rebuilt from its data/indices/indptr arrays.",
    ("scipy.sparse._csr", "csr_array"): "CSR sparse array; rebuilt from its data/indices/indptr arrays.",
    ("scipy.sparse._csr", "csr_matrix"): (
        "CSR sparse matrix (SpectralEmbedding affinity, SparseRandomProjection components, neighbors fitted on "
        "sparse input); rebuilt from its arrays."),
    # --- scikit-learn functions stored as parameters or attributes
    ("sklearn.cluster._kmeans", "_kmeans_single_lloyd"): (
        "k-means Lloyd iteration stored by BisectingKMeans as its inner solver; numeric only."),
    ("sklearn.feature_selection._mutual_info", "mutual_info_classif"): "Score function (mutual information); numeric only.",
    ("sklearn.feature_selection._mutual_info", "mutual_info_regression"): "Score function (mutual information); numeric only.",
    ("sklearn.feature_selection._univariate_selection", "chi2"): "Score function (chi-squared statistic); numeric only.",
    ("sklearn.feature_selection._univariate_selection", "f_classif"): (
        "Default score function of SelectKBest/SelectPercentile/... (ANOVA F); numeric only."),
    ("sklearn.feature_selection._univariate_selection", "f_regression"): "Score function (F-test); numeric only.",
    ("sklearn.feature_selection._univariate_selection", "r_regression"): "Score function (Pearson r); numeric only.",
    ("sklearn.metrics._classification", "accuracy_score"): "Metric function held by a fitted search's scorer; numeric only.",
    ("sklearn.metrics._classification", "balanced_accuracy_score"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._classification", "f1_score"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._classification", "log_loss"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._classification", "precision_score"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._ranking", "roc_auc_score"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._regression", "mean_absolute_error"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._regression", "mean_squared_error"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._regression", "r2_score"): "Metric function held by a scorer; numeric only.",
    ("sklearn.metrics._regression", "root_mean_squared_error"): "Metric function held by a scorer; numeric only.",
    ("sklearn._loss._loss", "__pyx_unpickle_CyHalfMultinomialLoss"): (
        "Cython-generated unpickle helper: checks a layout checksum, makes an empty CyHalfMultinomialLoss and sets "
        "its numeric fields."),
    ("sklearn._loss.link", "Interval"): (
        "Dataclass (low, high, low_inclusive, high_inclusive) describing a loss's valid value range."),
    ("sklearn.impute._iterative", "_ImputerTriplet"): (
        "namedtuple (feat_idx, neighbor_feat_idx, estimator) of IterativeImputer's imputation sequence; rebuilt "
        "from its three fields."),
    ("sklearn.metrics._dist_metrics", "newObj"): (
        "Cython pickle helper: returns cls.__new__(cls) for the distance-metric class named next to it "
        "(same effect as the NEWOBJ opcode)."),
    ("sklearn.neighbors._ball_tree", "newObj"): (
        "Cython pickle helper: returns cls.__new__(cls) for BallTree (same effect as NEWOBJ)."),
    ("sklearn.neighbors._kd_tree", "newObj"): (
        "Cython pickle helper: returns cls.__new__(cls) for KDTree (same effect as NEWOBJ)."),
    ("sklearn.utils.validation", "check_array"): (
        "Input validation function (array conversion and checks); scikit-learn stores it inside a functools.partial "
        "for categorical HistGradientBoosting."),
    # --- torch
    ("torch", "Size"): "torch.Size, a tuple subclass of dimensions.",
    ("torch", "Tensor"): (
        "Tensor class passed to _rebuild_from_type_v2 as the target type; Tensor() only allocates an empty tensor."),
    ("torch", "device"): "Device descriptor ('cpu', 'cuda:0'); a value, opens nothing.",
    ("torch._C", "Generator"): (
        "torch.Generator (RNG): rebuilt for a device, then its state is set from a byte tensor."),
    ("torch._C._nn", "gelu"): "GELU activation function stored by TransformerEncoderLayer(activation='gelu'); tensor math.",
    ("torch._tensor", "_rebuild_from_type_v2"): (
        "Rebuilds a tensor subclass or a tensor with Python attributes: calls func(*args) and sets state, where "
        "func and the type are other globals of the same pickle, each checked (no more than REDUCE + BUILD)."),
    ("torch._utils", "_rebuild_device_tensor_from_cpu_tensor"): (
        "Moves a CPU tensor from the same pickle to the saved device (restore location); no I/O."),
    ("torch._utils", "_rebuild_device_tensor_from_numpy"): (
        "Makes a tensor from a NumPy array in the same pickle (torch.from_numpy + .to(device))."),
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): (
        "Makes a storage-less meta tensor of the given dtype/size/stride."),
    ("torch._utils", "_rebuild_nested_tensor"): (
        "Rebuilds a nested tensor as a view over a buffer tensor with sizes/strides/offsets tensors."),
    ("torch._utils", "_rebuild_parameter"): (
        "Wraps a rebuilt tensor in nn.Parameter with requires_grad; backward_hooks is an OrderedDict of the same "
        "pickle (any callable in it is its own checked global)."),
    ("torch._utils", "_rebuild_parameter_with_state"): (
        "nn.Parameter rebuild that also restores Python attributes with setattr from a state dict."),
    ("torch._utils", "_rebuild_qtensor"): (
        "Rebuilds a quantized tensor over a storage with per-tensor or per-channel scale/zero-point (bounds-checked)."),
    ("torch._utils", "_rebuild_sparse_tensor"): (
        "Rebuilds a COO/CSR/CSC/BSR/BSC sparse tensor from index and value tensors; invariants checked after load."),
    ("torch._utils", "_rebuild_tensor"): "Old tensor rebuild: a view (offset, size, stride) over a storage.",
    ("torch._utils", "_rebuild_tensor_v2"): (
        "Rebuilds a tensor from a storage, offset, size and stride; torch.save writes one call per tensor."),
    ("torch._utils", "_rebuild_tensor_v3"): (
        "Tensor rebuild with an explicit dtype (sub-byte bits*/float4 types over an UntypedStorage)."),
    ("torch._utils", "_rebuild_wrapper_subclass"): (
        "Rebuilds a wrapper tensor subclass with _make_wrapper_subclass; the class is another checked global."),
    ("torch.jit._pickle", "build_boollist"): _TORCHSCRIPT_LIST,
    ("torch.jit._pickle", "build_doublelist"): _TORCHSCRIPT_LIST,
    ("torch.jit._pickle", "build_intlist"): _TORCHSCRIPT_LIST,
    ("torch.jit._pickle", "build_tensorlist"): _TORCHSCRIPT_LIST,
    ("torch.jit._pickle", "build_tensor_from_id"): (
        "Legacy TorchScript helper: returns the tensor id it is given (or None)."),
    ("torch.jit._pickle", "restore_type_tag"): (
        "TorchScript type-tag helper: returns its value unchanged (the type string is informational)."),
    ("torch.nn.functional", "relu"): (
        "ReLU function stored as the activation of Transformer*Layer modules; tensor math."),
    ("torch.nn.modules.module", "_WrappedHook"): (
        "Holder for a module hook and a weak reference to its module; __setstate__ only re-creates the weakref."),
    ("torch.nn.parameter", "Parameter"): "nn.Parameter class (tensor subclass with requires_grad).",
    ("torch.nn.parameter", "UninitializedBuffer"): "Placeholder buffer of lazy modules; holds no data.",
    ("torch.nn.parameter", "UninitializedParameter"): "Placeholder parameter of lazy modules; holds no data.",
    ("torch.nn.utils.spectral_norm", "SpectralNorm"): (
        "Forward pre-hook object of nn.utils.spectral_norm (name, n_power_iterations, dim, eps); tensor math."),
    ("torch.nn.utils.spectral_norm", "SpectralNormLoadStateDictPreHook"): (
        "State-dict hook object of spectral_norm; holds a reference to the SpectralNorm object."),
    ("torch.nn.utils.spectral_norm", "SpectralNormStateDictHook"): (
        "State-dict hook object of spectral_norm; holds a reference to the SpectralNorm object."),
    ("torch.nn.utils.weight_norm", "WeightNorm"): (
        "Forward pre-hook object of nn.utils.weight_norm (name, dim); recomputes the weight with tensor math."),
    ("torch.serialization", "_get_layout"): (
        "Maps a layout name string ('torch.sparse_coo') to the torch.layout object from a fixed table; "
        "a KeyError otherwise."),
    ("torch.storage", "TypedStorage"): "Typed storage class (legacy storage API); allocation only.",
    ("torch.storage", "UntypedStorage"): (
        "Byte storage class named in persistent ids of sub-byte dtypes; torch.load maps it to the saved bytes."),
    ("torch.utils.hooks", "RemovableHandle"): (
        "Handle of a registered hook: an id and weak references to hook dicts; __setstate__ only rebuilds weakrefs."),
    # --- transformers / accelerate (training_args.bin)
    ("accelerate.state", "PartialState"): (
        "accelerate's process-state singleton stored in TrainingArguments; restored as an attribute dict "
        "(NEWOBJ + BUILD). Calling it would read distributed settings from the environment, not from the pickle."),
    ("accelerate.utils.dataclasses", "DistributedType"): "Enum (NO, MULTI_GPU, DEEPSPEED, FSDP ...); rebuilt by value.",
    ("transformers.debug_utils", "DebugOption"): "Enum of TrainingArguments.debug values; rebuilt by value.",
    ("transformers.trainer_pt_utils", "AcceleratorConfig"): (
        "Dataclass of accelerator options inside TrainingArguments; restored as an attribute dict."),
    ("transformers.trainer_utils", "EvaluationStrategy"): "Enum (older transformers name of IntervalStrategy); rebuilt by value.",
    ("transformers.trainer_utils", "FSDPOption"): "Enum of TrainingArguments.fsdp values; rebuilt by value.",
    ("transformers.trainer_utils", "HubStrategy"): "Enum (end, every_save, checkpoint, all_checkpoints); rebuilt by value.",
    ("transformers.trainer_utils", "IntervalStrategy"): "Enum (no, steps, epoch); rebuilt by value.",
    ("transformers.trainer_utils", "SaveStrategy"): "Enum (no, steps, epoch, best); rebuilt by value.",
    ("transformers.trainer_utils", "SchedulerType"): "Enum of learning-rate schedule names; rebuilt by value.",
    ("transformers.training_args", "OptimizerNames"): "Enum of optimizer names; rebuilt by value.",
    ("transformers.training_args", "TrainingArguments"): (
        "Trainer's argument dataclass (training_args.bin): torch.save writes NEWOBJ + BUILD, restoring fields "
        "without __post_init__. A REDUCE call would run __post_init__, which validates fields, reads JSON config "
        "paths named in them and sets ACCELERATE_* environment variables; it imports and runs nothing by name."),
    ("transformers.training_args_seq2seq", "Seq2SeqTrainingArguments"): (
        "TrainingArguments subclass with generation options; same restore path and same review as TrainingArguments."),
}

# --------------------------------------------------------------------------------------------
# justified entries that no generated file contains

_NUMPY1 = "numpy 1.x pickles (numpy 2 maps numpy.core.* to numpy._core.* on load)"

EXTRA = [
    {"module": "numpy.core.multiarray", "name": "_reconstruct", "source": _NUMPY1,
     "reason": "ndarray.__reduce__ helper written by NumPy 1.x: allocates an empty ndarray subclass instance."},
    {"module": "numpy.core.multiarray", "name": "scalar", "source": _NUMPY1,
     "reason": "NumPy 1.x scalar rebuild from a dtype and raw bytes."},
    {"module": "numpy.core.numeric", "name": "_frombuffer", "source": _NUMPY1,
     "reason": "NumPy 1.x protocol-5 array rebuild: frombuffer + reshape over bytes in the pickle."},
    {"module": "numpy.ma.core", "name": "MaskedArray", "source": _NUMPY1,
     "reason": "Masked array class under its NumPy 1.x module path; rebuilt by _mareconstruct."},
    {"module": "numpy.random", "name": "__RandomState_ctor", "source": "numpy < 1.17 pickles of RandomState",
     "reason": "Returns RandomState(seed=0); the pickled state is set afterwards."},
    {"module": "numpy", "name": "bool_", "source": "numpy 1.x name of numpy.bool (scalar type by reference)",
     "reason": "NumPy boolean scalar type (alias of numpy.bool in 2.x); a type object, stored as a parameter."},
    {"module": "sklearn.externals.joblib.numpy_pickle", "name": "NumpyArrayWrapper",
     "source": "scikit-learn < 0.23 (vendored joblib) .pkl/.joblib files",
     "reason": "The vendored copy of joblib's array placeholder; same behaviour as joblib.numpy_pickle.NumpyArrayWrapper."},
    {"module": "torch.jit._pickle", "name": "build_tensor_from_id", "loaders": ["torchscript"],
     "source": "torch < 1.4 TorchScript archives",
     "reason": HAND[("torch.jit._pickle", "build_tensor_from_id")]},
    {"module": "transformers.trainer_utils", "name": "EvaluationStrategy",
     "source": "transformers 4.x training_args.bin", "reason": HAND[("transformers.trainer_utils", "EvaluationStrategy")]},
    {"module": "transformers.trainer_utils", "name": "FSDPOption",
     "source": "transformers 4.x training_args.bin with fsdp set (stored as a list of FSDPOption)", "reason": HAND[("transformers.trainer_utils", "FSDPOption")]},
]

# globals only TorchScript archives contain: entries get loaders = ["torchscript"]
TORCHSCRIPT_ONLY_MODULES = ("torch.jit._pickle",)

# --------------------------------------------------------------------------------------------
# reasons by category


def resolve(module: str, name: str):
    """The object ``module.name`` names in this environment (None if it does not exist)."""
    try:
        obj = importlib.import_module(module)
    except Exception:
        return None
    for part in name.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


_SK_PURPOSE = {
    "sklearn._loss.link": "link function of a loss",
    "sklearn._loss.loss": "loss object of a GLM/boosting model",
    "sklearn.calibration": "calibration helper of CalibratedClassifierCV",
    "sklearn.cluster._birch": "node of Birch's CF-tree",
    "sklearn.cluster._bisect_k_means": "node of BisectingKMeans' cluster tree",
    "sklearn.ensemble._hist_gradient_boosting.binning": "feature binner of HistGradientBoosting",
    "sklearn.ensemble._hist_gradient_boosting.predictor": "fitted tree of HistGradientBoosting (node arrays)",
    "sklearn.gaussian_process.kernels": "Gaussian-process kernel (hyperparameters only)",
    "sklearn.metrics._scorer": "scorer wrapper (a metric function + sign + kwargs)",
    "sklearn.model_selection._split": "cross-validation splitter (n_splits, shuffle, random_state)",
    "sklearn.multiclass": "constant predictor used for single-class splits",
    "sklearn.neural_network._stochastic_optimizers": "MLP optimizer state (learning rates and moment arrays)",
    "sklearn.utils._bunch": "dict with attribute access (named estimators, fitted transformers)",
    "sklearn.utils._metadata_requests": "metadata-routing request record",
    "sklearn.compose._column_transformer": "column selector (dtype/pattern rules)",
    "sklearn.utils._param_validation": "parameter-constraint record",
}

_SK_CYTHON = {
    "sklearn.tree._tree": "decision-tree node and value arrays",
    "sklearn.neighbors._kd_tree": "KD-tree index (data, index and node arrays)",
    "sklearn.neighbors._ball_tree": "ball-tree index (data, index and node arrays)",
    "sklearn.metrics._dist_metrics": "distance metric and its parameters",
    "sklearn._loss._loss": "loss function and its parameters",
    "sklearn.linear_model._sgd_fast": "SGD loss function and its parameters",
}


def derive_reason(module: str, name: str) -> str | None:
    """A category reason for (module, name), or None if it needs a hand-written one."""
    obj = resolve(module, name)
    if obj is None:
        return None
    root = module.split(".")[0]
    if root == "torch":
        import torch

        if isinstance(obj, torch.dtype):
            return f"torch dtype {obj}: a singleton descriptor of an element type; not callable, nothing runs."
        if isinstance(obj, torch.qscheme):
            return f"Quantization scheme constant {obj} used in quantized tensor parameters."
        if name.endswith("Storage") and module in ("torch", "torch.cuda"):
            return (f"Legacy storage type name {module}.{name}: torch.load only uses it to pick the dtype of the "
                    "storage its persistent_load returns (weights_only maps it to a StorageType stub).")
        if name.endswith("Tensor") and module in ("torch", "torch.cuda", "torch.sparse", "torch.cuda.sparse"):
            return f"Legacy tensor type {module}.{name}; calling it only allocates a tensor of that type."
        if inspect.isclass(obj) and issubclass(obj, torch.nn.Module) and module.startswith("torch.nn.modules."):
            return (f"torch.nn layer class {name}: whole-module pickles make it with __new__ and restore its "
                    "attribute dict via Module.__setstate__; its constructor only stores options and allocates "
                    "parameters from sizes.")
        return None
    if root == "numpy":
        import numpy as np

        if inspect.isclass(obj) and issubclass(obj, np.generic) and module == "numpy":
            return (f"NumPy scalar type numpy.{name}, pickled by reference when stored as a dtype-like parameter; "
                    "as a callable it at most converts a number or string to a scalar.")
        if inspect.isclass(obj) and issubclass(obj, np.dtype) and module == "numpy.dtypes":
            return f"NumPy DType class numpy.dtypes.{name}, pickled by reference; describes a memory layout."
        return None
    if root == "sklearn":
        from sklearn.base import BaseEstimator

        if not inspect.isclass(obj):
            return None
        if issubclass(obj, BaseEstimator):
            return (f"scikit-learn estimator {name}: unpickling makes an empty instance and restores the fitted "
                    "attribute dict via __setstate__ (BaseEstimator's version check + dict update; a few classes "
                    "then recompute numeric helpers); __init__ only stores parameters.")
        if module in _SK_CYTHON:
            return (f"scikit-learn Cython type {name} ({_SK_CYTHON[module]}): __reduce__/__setstate__ copy numeric "
                    "arrays and parameters back into the C struct; nothing is looked up by name.")
        if module in _SK_PURPOSE:
            return (f"scikit-learn helper class {name} ({_SK_PURPOSE[module]}): restored as an attribute dict; "
                    "constructing it only stores its arguments.")
        return None
    return None
