//! The neutral inventory a scan produces: what each byte stream is and what was seen inside it.
//!
//! A [`Node`] describes one stream of bytes (the scanned file, an archive member, a pickle nested
//! in a pickle, data trailing a structure). It carries the stream's size and SHA-256, the detected
//! [`Format`], format-specific [`Detail`], [`Note`]s about anything unusual, and child nodes.
//! Nothing here is a verdict: the policy crate decides what each observation means.

use crate::pickle::PickleInventory;
use crate::stream::Sha256Digest;
use serde::Serialize;

/// Builds a vocabulary enum from one table: each variant's doc, its stable name (reports,
/// rules, docs), optionally a different serialized name (`as "…"`: what `inspect --json` and the
/// cache have always written for it), and for formats its flags. The enum, `as_str`, `ALL`,
/// `from_name`, `Display` and serde all come from the table, so they cannot drift apart.
macro_rules! vocabulary {
    (
        $(#[$enum_meta:meta])*
        pub enum $enum:ident;
        $( $(#[$meta:meta])* $variant:ident = $name:literal $(as $serde:literal)? $(, $flags:expr)? ; )*
    ) => {
        $(#[$enum_meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $enum {
            $( $(#[$meta])* $variant, )*
        }

        impl $enum {
            /// The stable kebab-case name (reports, rules, docs).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $enum::$variant => $name, )*
                }
            }

            /// The name serde writes (the same as [`Self::as_str`] except where the table says
            /// otherwise).
            pub fn serde_name(self) -> &'static str {
                match self {
                    $( $enum::$variant => vocabulary!(@pick $name $(, $serde)?), )*
                }
            }

            /// Every value, in declaration order (reports and docs list them; tests check the docs).
            pub const ALL: &'static [$enum] = &[ $( $enum::$variant, )* ];

            /// The value with this stable or serialized name.
            pub fn from_name(name: &str) -> Option<$enum> {
                $enum::ALL.iter().copied().find(|v| v.as_str() == name || v.serde_name() == name)
            }

            #[allow(dead_code)]
            fn flags(self) -> u8 {
                match self {
                    $( $enum::$variant => vocabulary!(@flags $($flags)?), )*
                }
            }
        }

        impl std::fmt::Display for $enum {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $enum {
            type Err = String;
            fn from_str(name: &str) -> Result<$enum, String> {
                $enum::from_name(name).ok_or_else(|| format!("unknown {} {name:?}", stringify!($enum)))
            }
        }

        impl Serialize for $enum {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.serde_name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $enum {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$enum, D::Error> {
                let name = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                $enum::from_name(&name).ok_or_else(|| serde::de::Error::custom(format!("unknown {} {name:?}", stringify!($enum))))
            }
        }
    };
    (@pick $name:literal) => { $name };
    (@pick $name:literal, $serde:literal) => { $serde };
    (@flags) => { 0 };
    (@flags $flags:expr) => { $flags };
}

/// [`Format`] flags (see the table).
mod flag {
    /// No flag.
    pub const NONE: u8 = 0;
    /// An archive whose members are listed as children.
    pub const ARCHIVE: u8 = 1;
    /// A model format: a file holding one of these anywhere is a model (CycloneDX components).
    pub const MODEL: u8 = 2;
    /// Data a loader might unpickle part of without the format saying so: the driver searches
    /// every byte for pickle import forms (docs/formats.md, "Recognition").
    pub const HUNTED: u8 = 4;
}
use flag::{ARCHIVE, HUNTED, MODEL, NONE};

vocabulary! {
    /// What a byte stream was recognised as, by its content.
    pub enum Format;
    /// A pickle stream (or several concatenated).
    Pickle = "pickle", MODEL;
    /// `torch.save` output: a zip with `<prefix>/data.pkl`.
    PytorchZip = "pytorch-zip", ARCHIVE | MODEL;
    /// `torch.jit.save` output: a zip with `code/` and `constants.pkl`.
    Torchscript = "torchscript", ARCHIVE | MODEL;
    /// Pre-1.6 `torch.save` output: stacked pickles followed by raw storages.
    PytorchLegacy = "pytorch-legacy", MODEL;
    /// The oldest `torch.save` output: a tar with `sys_info`, `pickle`, `storages`, `tensors`.
    PytorchLegacyTar = "pytorch-legacy-tar", ARCHIVE | MODEL;
    /// A NumPy `.npy` array.
    Numpy = "numpy", MODEL;
    /// A NumPy `.npz` archive (a zip of `.npy` members).
    NumpyNpz = "numpy-npz", ARCHIVE | MODEL;
    /// `joblib.dump` output: a pickle with raw array bytes interleaved.
    Joblib = "joblib", MODEL;
    /// A zip archive of another kind.
    Zip = "zip", ARCHIVE;
    /// A tar archive.
    Tar = "tar", ARCHIVE;
    /// gzip-compressed data.
    Gzip = "gzip", NONE;
    /// bzip2-compressed data.
    Bzip2 = "bzip2", NONE;
    /// xz-compressed data.
    Xz = "xz", NONE;
    /// Raw LZMA ("lzma alone") data.
    Lzma = "lzma", NONE;
    /// zlib-compressed data.
    Zlib = "zlib", NONE;
    /// Zstandard-compressed data.
    Zstd = "zstd", NONE;
    /// A 7-Zip archive.
    SevenZip = "7z", ARCHIVE;
    /// HDF5 (Keras 2 `.h5`).
    Hdf5 = "hdf5", MODEL;
    /// A TensorFlow SavedModel protobuf.
    TfSavedmodel = "tf-savedmodel", MODEL;
    /// A bare TensorFlow `GraphDef` (a TF1 frozen graph, `tf.io.write_graph` output).
    TfGraphDef = "tf-graphdef" as "tf-graph-def", MODEL;
    /// An ONNX model protobuf.
    Onnx = "onnx", MODEL;
    /// Another protobuf message.
    Protobuf = "protobuf", NONE;
    /// A TensorFlow Lite flatbuffer.
    Tflite = "tflite", MODEL;
    /// A GGUF model.
    Gguf = "gguf", MODEL;
    /// A safetensors file.
    Safetensors = "safetensors", MODEL;
    /// `skops.io.dump` output: a zip whose root `schema.json` describes the objects to rebuild.
    Skops = "skops", ARCHIVE | MODEL;
    // -- Keras and TensorFlow (issue 3) --
    /// A Keras 3 `.keras` archive: a zip with `config.json`, `metadata.json` and weights.
    Keras = "keras", ARCHIVE | MODEL;
    /// A SavedModel's `keras_metadata.pb` (tf_keras layer configs, one JSON per object).
    TfKerasMetadata = "tf-keras-metadata", NONE;
    /// A SavedModel's `fingerprint.pb` (checksums only).
    TfFingerprint = "tf-fingerprint", NONE;
    /// A TensorFlow checkpoint index (`variables.index`): a table of tensor names and extents.
    TfCheckpointIndex = "tf-checkpoint-index", NONE;
    /// A TensorFlow checkpoint data shard (`variables.data-00000-of-00001`): raw tensor bytes
    /// that the sibling index describes exactly.
    TfCheckpointData = "tf-checkpoint-data", NONE;
    /// A Git LFS pointer file in place of the real content.
    GitLfsPointer = "git-lfs-pointer", MODEL;
    /// An ELF executable or shared object.
    Elf = "elf", NONE;
    /// A PE (Windows) executable.
    Pe = "pe", NONE;
    /// A Mach-O executable.
    MachO = "mach-o", NONE;
    /// A script with a `#!` interpreter line.
    Script = "script", NONE;
    /// A MessagePack document (Flax weights, spaCy pipeline files).
    Msgpack = "msgpack", HUNTED;
    /// JSON text.
    Json = "json", HUNTED;
    /// Other text.
    Text = "text", HUNTED;
    /// An image (PNG, JPEG, GIF, WebP, BMP).
    Image = "image", NONE;
    /// A zero-length stream.
    Empty = "empty", NONE;
    /// Binary data of no recognised format.
    Unknown = "unknown", HUNTED;
}

impl Format {
    /// True for archives whose members are listed as children.
    pub fn is_archive(self) -> bool {
        self.flags() & ARCHIVE != 0
    }

    /// True for formats whose every byte the driver searches for pickle import forms.
    pub(crate) fn is_hunted(self) -> bool {
        self.flags() & HUNTED != 0
    }

    /// True for formats that are models themselves: a file holding one of these anywhere is a
    /// model. The one definition of "is this a model file" by content; [`is_model_name`] is the
    /// one by name.
    pub fn is_model(self) -> bool {
        self.flags() & MODEL != 0
    }
}

/// File extensions that make unrecognised content count as a model (the content still decides
/// the format; a name only makes an unknown file stricter, never laxer).
#[rustfmt::skip]
pub const MODEL_EXTENSIONS: &[&str] = &[
    "pt", "pth", "bin", "ckpt", "pkl", "pickle", "joblib", "dill", "npy", "npz", "h5", "hdf5", "keras", "onnx",
    "tflite", "gguf", "ggml", "safetensors", "mar", "nemo", "pdparams", "sav", "skops",
];

/// True when a file name (the last part of a path or member path) ends with one of
/// [`MODEL_EXTENSIONS`]: the one definition of "is this named like a model file".
pub fn is_model_name(name: &str) -> bool {
    let file = name.rsplit(['/', '\\', '!']).next().unwrap_or(name);
    file.rsplit_once('.')
        .is_some_and(|(_, ext)| MODEL_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
}

/// How a child node relates to its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Relation {
    /// A named member of an archive.
    Member,
    /// The decompressed content of a compression wrapper.
    Decompressed,
    /// A pickle (or other file) embedded as a bytes value in a pickle.
    Embedded,
    /// Bytes after the end of the structure a loader reads.
    Trailing,
    /// Bytes before the start of an archive.
    Prefix,
}

/// What a loader does with an archive member, when its layout says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Unpickled by the loader (`data.pkl`, `constants.pkl`).
    LoaderPickle,
    /// Raw tensor storage bytes referenced by the loader's pickle.
    TensorStorage,
    /// TorchScript source under `code/`.
    TorchscriptCode,
    /// Small bookkeeping records the loader reads (`version`, `byteorder`, …).
    LoaderRecord,
    /// The model configuration Keras deserializes (`config.json` of a `.keras` archive).
    KerasConfig,
    /// The object tree `skops.io.load` rebuilds (`schema.json` at the root of a skops zip).
    SkopsSchema,
}

/// Which loader's semantics the engine applied to a pickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PickleLoader {
    /// `pickle.load`.
    #[default]
    Pickle,
    /// `joblib.load` (array bytes follow each `NumpyArrayWrapper`).
    Joblib,
    /// `torch.load` on a zip archive (`persistent_load` returns storages).
    TorchZip,
    /// `torch.jit.load` (globals may name TorchScript classes, `__torch__.*`).
    Torchscript,
    /// `torch.load` on a pre-1.6 stacked-pickle file.
    TorchLegacy,
    /// `numpy.load(allow_pickle=True)` on an object array.
    NumpyObject,
}

impl PickleLoader {
    /// The kebab-case name (as in reports and allow-list `loaders`).
    pub fn as_str(self) -> &'static str {
        match self {
            PickleLoader::Pickle => "pickle",
            PickleLoader::Joblib => "joblib",
            PickleLoader::TorchZip => "torch-zip",
            PickleLoader::Torchscript => "torchscript",
            PickleLoader::TorchLegacy => "torch-legacy",
            PickleLoader::NumpyObject => "numpy-object",
        }
    }
}

/// One observation about a stream that the policy may turn into a finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Note {
    /// What kind of observation this is.
    pub kind: NoteKind,
    /// Offset in the node's bytes, where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// A specific, one-line description ("CRC-32 is 0x1234abcd in the central directory but the
    /// data hashes to 0x5678ef01").
    pub detail: String,
    /// The exact thing seen (a name, a value), for the report's evidence field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
}

impl Note {
    /// A note without an offset or evidence.
    pub fn new(kind: NoteKind, detail: impl Into<String>) -> Note {
        Note { kind, offset: None, detail: detail.into(), evidence: None }
    }

    /// Sets the offset.
    pub fn at(mut self, offset: u64) -> Note {
        self.offset = Some(offset);
        self
    }

    /// Sets the evidence.
    pub fn evidence(mut self, evidence: impl Into<String>) -> Note {
        self.evidence = Some(evidence.into());
        self
    }
}

/// Keeps the first `max` notes and replaces the rest with one note of `kind` that counts them
/// (a file with a million broken entries is one finding, not a million).
pub(crate) fn cap_notes(notes: &mut Vec<Note>, max: usize, kind: NoteKind, what: &str) {
    if notes.len() > max {
        let more = notes.len() - max;
        notes.truncate(max);
        notes.push(Note::new(kind, format!("{what}: {more} more problems of the kinds above")));
    }
}

vocabulary! {
    /// The kinds of observation a format module can make. Each maps to one rule in the policy crate.
    pub enum NoteKind;
    /// A model format that this version recognises but does not parse yet.
    UnsupportedFormat = "unsupported-format";
    /// Binary data of no recognised format.
    UnrecognisedBinary = "unrecognised-binary";
    /// Native executable code or a script.
    Executable = "executable";
    /// A Git LFS pointer where content was expected.
    LfsPointer = "lfs-pointer";
    /// A scan limit stopped the parse; what follows was not inspected.
    LimitExceeded = "limit-exceeded";
    /// A recognised format whose structure is invalid.
    Malformed = "malformed";
    /// Bytes after the end of what the loader reads.
    TrailingData = "trailing-data";

    /// A pickle stream the unpickler would reject part-way (invalid opcode, truncation, stack
    /// underflow…); everything before the error was still inventoried.
    PickleMalformed = "pickle-malformed";
    /// An opcode straddles a FRAME boundary, or a FRAME opens inside another.
    PickleFrameViolation = "pickle-frame-violation";
    /// EXT1/EXT2/EXT4: a global taken from the copyreg extension registry.
    PickleExtension = "pickle-extension";
    /// NEXT_BUFFER/READONLY_BUFFER: out-of-band data.
    PickleOutOfBandBuffer = "pickle-out-of-band-buffer";
    /// STACK_GLOBAL whose operands are not plain strings, or a memo reference that does not exist.
    PickleUnresolvedGlobal = "pickle-unresolved-global";
    /// BUILD/SETITEM/APPEND applied to an imported module, class or function.
    PickleGlobalMutation = "pickle-global-mutation";
    /// Duplicate, misplaced or unsupported PROTO opcodes.
    PickleProtocolAnomaly = "pickle-protocol-anomaly";
    /// A persistent id where the loader defines none, or one the loader would reject.
    PicklePersistentId = "pickle-persistent-id";

    /// A zip member whose CRC-32 does not match its data.
    ArchiveCrcMismatch = "archive-crc-mismatch";
    /// A zip local header that disagrees with the central directory.
    ArchiveHeaderMismatch = "archive-header-mismatch";
    /// A zip member flagged as encrypted.
    ArchiveEncrypted = "archive-encrypted";
    /// Two archive members with the same name (compared case-insensitively).
    ArchiveDuplicateName = "archive-duplicate-name";
    /// An archive that cannot be read as one.
    ArchiveMalformed = "archive-malformed";
    /// Bytes hidden before, between or overlapping archive entries.
    ArchiveHiddenData = "archive-hidden-data";
    /// An archive, or a member, whose content cannot be inspected.
    ArchiveOpaque = "archive-opaque";
    /// A member path that is absolute, climbs out with `..`, or is a link.
    ArchiveUnsafePath = "archive-unsafe-path";

    /// A TorchScript archive carries code that `torch.jit.load` compiles and runs.
    TorchscriptCode = "torchscript-code";
    /// A tensor whose size, stride and offset reach outside its storage.
    TorchTensorBounds = "torch-tensor-bounds";
    /// A member of a PyTorch archive that the loader does not read.
    TorchUnexpectedMember = "torch-unexpected-member";
    /// A storage the pickle references that is missing, or whose size disagrees.
    TorchStorageMismatch = "torch-storage-mismatch";

    // -- Keras and TensorFlow (issue 3) --
    /// A Keras Lambda layer: marshalled Python bytecode that the loader turns into a function.
    KerasLambda = "keras-lambda";
    /// A Keras config object whose `module` lies outside the Keras namespaces.
    KerasForeignModule = "keras-foreign-module";
    /// A Keras config referencing a function that loads or fetches files, or switches
    /// safe mode off.
    KerasUnsafeFunction = "keras-unsafe-function";
    /// A Keras layer that loads another model from a path when deserialized (`TFSMLayer`).
    KerasExternalModel = "keras-external-model";
    /// A Keras `TorchModuleWrapper` layer: a `torch.save` pickle inside the config.
    KerasTorchModule = "keras-torch-module";
    /// A Keras lookup layer whose vocabulary is a file path or URL.
    KerasVocabularyPath = "keras-vocabulary-path";
    /// An HDF5 external link, external raw-data file or virtual dataset: the loader opens
    /// another file.
    Hdf5ExternalReference = "hdf5-external-reference";
    /// A TensorFlow graph op that reads or writes files (outside the saver's own functions).
    TfIoOp = "tf-io-op";
    /// A TensorFlow graph op that calls back into Python (`PyFunc`, `EagerPyFunc`).
    TfPythonOp = "tf-python-op";
    /// A TensorFlow graph op that is not in TensorFlow's public op set (needs a custom library).
    TfUnknownOp = "tf-unknown-op";
    /// A TFLite custom or Flex (TF Select) operator.
    TfliteCustomOp = "tflite-custom-op";
    /// An ONNX tensor's external data `location` is absolute, climbs out with `..`, or resolves
    /// through a symbolic link outside the model's directory.
    OnnxExternalDataPath = "onnx-external-data-path";
    /// An ONNX node from an operator domain outside the standard set (needs a native library).
    OnnxCustomDomain = "onnx-custom-domain";
    /// A GGUF file whose structure llama.cpp / gguf-py would reject (or mis-read).
    GgufMalformed = "gguf-malformed";
    /// A safetensors file whose header or data layout is invalid.
    SafetensorsMalformed = "safetensors-malformed";
    /// safetensors `__metadata__` values that hold code, shell commands or URLs.
    SafetensorsMetadata = "safetensors-metadata";
    /// A Jinja chat template with sandbox-escape patterns (dunder access, `|attr`, escapes…).
    TemplateInjection = "template-injection";
    /// A chat template that does not parse as Jinja.
    TemplateInvalid = "template-invalid";
    /// A name a parsed chat template reaches (attribute, filter, test, free name, statement, or
    /// one it builds at render time); the evidence is `kind:name`. The policy judges it.
    TemplateName = "template-name";
    /// A Hugging Face config whose `auto_map` makes `trust_remote_code=True` import Python code.
    RemoteCode = "remote-code";
    /// Python source or bytecode inside a model directory or archive.
    PythonCode = "python-code";
    /// A Hydra `_target_` (NeMo config): every one read is reported; the policy judges it.
    HydraTarget = "hydra-target";
    /// A TorchServe archive manifest naming a custom Python handler.
    TorchServeHandler = "torchserve-handler" as "torch-serve-handler";
    /// A sharded checkpoint index mapping tensors to a shard outside the model directory.
    ShardPathEscape = "shard-path-escape";

    // -- skops --
    /// A skops schema node whose `__loader__` is not one skops registers.
    SkopsUnknownLoader = "skops-unknown-loader";
}

/// Format-specific facts about a node.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Detail {
    /// Nothing beyond the format.
    #[default]
    None,
    /// What the pickle engine saw.
    Pickle(Box<PickleInventory>),
    /// A NumPy array header.
    Numpy(NumpyHeader),
    /// What a model-graph parser saw: Keras configs, SavedModel graphs, TFLite operator codes.
    Graph(Box<GraphInventory>),
    /// A Git LFS pointer.
    LfsPointer {
        /// The object id (`sha256:<hex>`).
        oid: String,
        /// The size of the real object.
        size: Option<u64>,
    },
    /// An ONNX model's header: versions, opsets, producer, metadata, operators.
    Onnx(Box<crate::onnx::OnnxInfo>),
    /// A GGUF model's `general.*` metadata and tensor summary.
    Gguf(Box<crate::gguf::GgufInfo>),
    /// A safetensors file's tensor summary.
    Safetensors(Box<crate::safetensors::SafetensorsInfo>),
    /// A Hugging Face style JSON config: architecture, tokenizer, context length, remote code.
    HfConfig(Box<crate::repo::HfConfigInfo>),
    /// A model card's front matter (`README.md`): license, base model, datasets, task.
    ModelCard(Box<crate::card::CardMetadata>),
    /// A skops schema: every name `skops.io.load` would import, by node kind.
    Skops(Box<crate::skops::SkopsInventory>),
    /// A TensorFlow checkpoint index: tensors, dtypes and the extents it reads from each shard.
    CheckpointIndex(Box<crate::tf_checkpoint::CheckpointIndexInfo>),
}

/// The vocabulary of a model graph: who wrote it and which layers or ops it uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GraphInventory {
    /// Facts about the writer, in order (`keras_version`, `backend`, `tensorflow_version`, tags…).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<(String, String)>,
    /// Each distinct layer class or op, with how often it occurs, in order of first appearance.
    pub ops: Vec<OpCount>,
    #[serde(skip)]
    index: std::collections::HashMap<String, usize>,
}

/// A layer class or op and its number of occurrences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OpCount {
    /// The class or op name (`Dense`, `MatMul`, `CUSTOM(StringUpper)`).
    pub name: String,
    /// Occurrences.
    pub count: u64,
}

/// [`Limits::GRAPH_DISTINCT_OPS`](crate::Limits::GRAPH_DISTINCT_OPS)
pub const MAX_DISTINCT_OPS: usize = crate::limits::Limits::GRAPH_DISTINCT_OPS;

impl GraphInventory {
    /// Counts one occurrence of `name`.
    pub fn count(&mut self, name: &str) {
        let key =
            if self.index.contains_key(name) || self.ops.len() < MAX_DISTINCT_OPS { name } else { "…" };
        match self.index.get(key) {
            Some(&i) => {
                if let Some(op) = self.ops.get_mut(i) {
                    op.count += 1;
                }
            }
            None => {
                self.index.insert(key.to_string(), self.ops.len());
                self.ops.push(OpCount { name: key.to_string(), count: 1 });
            }
        }
    }

    /// Records a fact about the writer.
    pub fn fact(&mut self, key: &str, value: impl Into<String>) {
        self.facts.push((key.to_string(), value.into()));
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.facts.is_empty() && self.ops.is_empty()
    }
}

/// The header of a `.npy` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct NumpyHeader {
    /// Format version (`major.minor`).
    pub version: String,
    /// The `descr` entry as written.
    pub descr: String,
    /// Whether the array holds Python objects (and so a pickle follows the header).
    pub object: bool,
    /// The array shape, if it parsed.
    pub shape: Vec<u64>,
    /// Fortran (column-major) order.
    pub fortran_order: bool,
}

/// Everything known about one byte stream.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Node {
    /// The member name within the parent (archive member path, or a description such as
    /// `bytes at offset 120`); empty for the scanned file itself.
    pub name: String,
    /// How this node relates to its parent; `None` for the scanned file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation: Option<Relation>,
    /// What the parent's layout says the loader does with this member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Offset of this node's first byte in the parent's bytes, where that is meaningful.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_offset: Option<u64>,
    /// Length in bytes (after decompression).
    pub size: u64,
    /// SHA-256 of every byte.
    #[serde(serialize_with = "serialize_digest", deserialize_with = "deserialize_digest")]
    pub sha256: Sha256Digest,
    /// The recognised format.
    pub format: Format,
    /// Format-specific facts.
    #[serde(default, skip_serializing_if = "Detail::is_none")]
    pub detail: Detail,
    /// Observations for the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<Note>,
    /// Members, decompressed content, embedded streams.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
}

impl Detail {
    /// True for [`Detail::None`].
    pub fn is_none(&self) -> bool {
        matches!(self, Detail::None)
    }
}

fn serialize_digest<S: serde::Serializer>(digest: &Sha256Digest, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::stream::hex(digest))
}

/// Reads back what [`serialize_digest`] wrote (an inventory saved by a sharded scan or a cache).
fn deserialize_digest<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Sha256Digest, D::Error> {
    let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
    let bytes = text.as_bytes();
    let mut out = [0u8; 32];
    if bytes.len() != 64 {
        return Err(serde::de::Error::custom("a SHA-256 digest is 64 hex digits"));
    }
    for (i, pair) in bytes.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => out[i] = (h * 16 + l) as u8,
            _ => return Err(serde::de::Error::custom("a SHA-256 digest is 64 hex digits")),
        }
    }
    Ok(out)
}

impl Node {
    /// An empty node to be filled in by a scan.
    pub fn new(name: impl Into<String>, relation: Option<Relation>) -> Node {
        Node {
            name: name.into(),
            relation,
            role: None,
            parent_offset: None,
            size: 0,
            sha256: [0; 32],
            format: Format::Unknown,
            detail: Detail::None,
            notes: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Adds a note.
    pub fn note(&mut self, note: Note) {
        self.notes.push(note);
    }

    /// The pickle inventory, if this node is a pickle.
    pub fn pickle(&self) -> Option<&PickleInventory> {
        match &self.detail {
            Detail::Pickle(p) => Some(p),
            _ => None,
        }
    }

    /// Visits this node and every descendant, depth first, with the path of member names from
    /// the scanned file down to the node (empty for the file itself).
    pub fn walk<'n>(&'n self, visit: &mut dyn FnMut(&[&'n str], &'n Node)) {
        fn go<'n>(node: &'n Node, path: &mut Vec<&'n str>, visit: &mut dyn FnMut(&[&'n str], &'n Node)) {
            visit(path, node);
            for child in &node.children {
                path.push(&child.name);
                go(child, path, visit);
                path.pop();
            }
        }
        go(self, &mut Vec::new(), visit);
    }
}

/// How findings and reports name a node below the scanned file: member names from the file down,
/// nested archives joined with `!`, and streams that are not archive members (decompressed
/// content, embedded pickles, trailing data) in angle brackets.
pub fn member_path(trail: &[&Node]) -> String {
    let parts: Vec<String> = trail
        .iter()
        .map(|n| match n.relation {
            Some(Relation::Member) => n.name.clone(),
            _ => format!("<{}>", n.name),
        })
        .collect();
    parts.join("!")
}

#[cfg(test)]
mod vocabulary_tests {
    use super::*;

    /// The names serde has always written, byte for byte (the cache and `inspect --json` carry
    /// them). Two differ from the report names; the table says so with `as`.
    #[test]
    fn serialized_names_are_stable() {
        let formats: Vec<String> = Format::ALL.iter().map(|f| serde_json::to_string(f).unwrap()).collect();
        assert_eq!(
            formats.join(","),
            r#""pickle","pytorch-zip","torchscript","pytorch-legacy","pytorch-legacy-tar","numpy","numpy-npz","joblib","zip","tar","gzip","bzip2","xz","lzma","zlib","zstd","7z","hdf5","tf-savedmodel","tf-graph-def","onnx","protobuf","tflite","gguf","safetensors","skops","keras","tf-keras-metadata","tf-fingerprint","tf-checkpoint-index","tf-checkpoint-data","git-lfs-pointer","elf","pe","mach-o","script","msgpack","json","text","image","empty","unknown""#
        );
        let differ: Vec<(&str, &str)> = NoteKind::ALL
            .iter()
            .filter(|k| k.as_str() != k.serde_name())
            .map(|k| (k.as_str(), k.serde_name()))
            .collect();
        assert_eq!(differ, [("torchserve-handler", "torch-serve-handler")]);
        for f in Format::ALL {
            let back: Format = serde_json::from_str(&serde_json::to_string(f).unwrap()).unwrap();
            assert_eq!(back, *f);
            assert_eq!(f.as_str().parse::<Format>(), Ok(*f));
        }
        for k in NoteKind::ALL {
            let back: NoteKind = serde_json::from_str(&serde_json::to_string(k).unwrap()).unwrap();
            assert_eq!(back, *k);
        }
        assert!(serde_json::from_str::<Format>("\"no-such-format\"").is_err());
    }

    #[test]
    fn flags() {
        let archives: Vec<&str> = Format::ALL.iter().filter(|f| f.is_archive()).map(|f| f.as_str()).collect();
        assert_eq!(
            archives,
            [
                "pytorch-zip",
                "torchscript",
                "pytorch-legacy-tar",
                "numpy-npz",
                "zip",
                "tar",
                "7z",
                "skops",
                "keras"
            ]
        );
        assert!(Format::Safetensors.is_model() && Format::GitLfsPointer.is_model());
        assert!(!Format::Zip.is_model() && !Format::TfKerasMetadata.is_model());
        assert!(is_model_name("dir/model.PT") && is_model_name("a.zip!weights.safetensors"));
        assert!(!is_model_name("README.md") && !is_model_name("pt"));
    }
}
