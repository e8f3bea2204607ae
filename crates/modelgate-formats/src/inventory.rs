//! The neutral inventory a scan produces: what each byte stream is and what was seen inside it.
//!
//! A [`Node`] describes one stream of bytes (the scanned file, an archive member, a pickle nested
//! in a pickle, data trailing a structure). It carries the stream's size and SHA-256, the detected
//! [`Format`], format-specific [`Detail`], [`Note`]s about anything unusual, and child nodes.
//! Nothing here is a verdict: the policy crate decides what each observation means.

use crate::pickle::PickleInventory;
use crate::stream::Sha256Digest;
use serde::Serialize;

/// What a byte stream was recognised as, by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Format {
    /// A pickle stream (or several concatenated).
    Pickle,
    /// `torch.save` output: a zip with `<prefix>/data.pkl`.
    PytorchZip,
    /// `torch.jit.save` output: a zip with `code/` and `constants.pkl`.
    Torchscript,
    /// Pre-1.6 `torch.save` output: stacked pickles followed by raw storages.
    PytorchLegacy,
    /// The oldest `torch.save` output: a tar with `sys_info`, `pickle`, `storages`, `tensors`.
    PytorchLegacyTar,
    /// A NumPy `.npy` array.
    Numpy,
    /// A NumPy `.npz` archive (a zip of `.npy` members).
    NumpyNpz,
    /// `joblib.dump` output: a pickle with raw array bytes interleaved.
    Joblib,
    /// A zip archive of another kind.
    Zip,
    /// A tar archive.
    Tar,
    /// gzip-compressed data.
    Gzip,
    /// bzip2-compressed data.
    Bzip2,
    /// xz-compressed data.
    Xz,
    /// Raw LZMA ("lzma alone") data.
    Lzma,
    /// zlib-compressed data.
    Zlib,
    /// A 7-Zip archive.
    #[serde(rename = "7z")]
    SevenZip,
    /// HDF5 (Keras 2 `.h5`).
    Hdf5,
    /// A TensorFlow SavedModel protobuf.
    TfSavedmodel,
    /// A bare TensorFlow `GraphDef` (a TF1 frozen graph, `tf.io.write_graph` output).
    TfGraphDef,
    /// An ONNX model protobuf.
    Onnx,
    /// Another protobuf message.
    Protobuf,
    /// A TensorFlow Lite flatbuffer.
    Tflite,
    /// A GGUF model.
    Gguf,
    /// A safetensors file.
    Safetensors,
    /// `skops.io.dump` output: a zip whose root `schema.json` describes the objects to rebuild.
    Skops,
    // -- Keras and TensorFlow (issue 3) --
    /// A Keras 3 `.keras` archive: a zip with `config.json`, `metadata.json` and weights.
    Keras,
    /// A SavedModel's `keras_metadata.pb` (tf_keras layer configs, one JSON per object).
    TfKerasMetadata,
    /// A SavedModel's `fingerprint.pb` (checksums only).
    TfFingerprint,
    /// A TensorFlow checkpoint index (`variables.index`): a table of tensor names and extents.
    TfCheckpointIndex,
    /// A TensorFlow checkpoint data shard (`variables.data-00000-of-00001`): raw tensor bytes
    /// that the sibling index describes exactly.
    TfCheckpointData,
    /// A Git LFS pointer file in place of the real content.
    GitLfsPointer,
    /// An ELF executable or shared object.
    Elf,
    /// A PE (Windows) executable.
    Pe,
    /// A Mach-O executable.
    MachO,
    /// A script with a `#!` interpreter line.
    Script,
    /// JSON text.
    Json,
    /// Other text.
    Text,
    /// An image (PNG, JPEG, GIF, WebP, BMP).
    Image,
    /// A zero-length stream.
    Empty,
    /// Binary data of no recognised format.
    Unknown,
}

impl Format {
    /// The stable kebab-case name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Pickle => "pickle",
            Format::PytorchZip => "pytorch-zip",
            Format::Torchscript => "torchscript",
            Format::PytorchLegacy => "pytorch-legacy",
            Format::PytorchLegacyTar => "pytorch-legacy-tar",
            Format::Numpy => "numpy",
            Format::NumpyNpz => "numpy-npz",
            Format::Joblib => "joblib",
            Format::Zip => "zip",
            Format::Tar => "tar",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Lzma => "lzma",
            Format::Zlib => "zlib",
            Format::SevenZip => "7z",
            Format::Hdf5 => "hdf5",
            Format::TfSavedmodel => "tf-savedmodel",
            Format::TfGraphDef => "tf-graphdef",
            Format::Onnx => "onnx",
            Format::Protobuf => "protobuf",
            Format::Tflite => "tflite",
            Format::Gguf => "gguf",
            Format::Safetensors => "safetensors",
            Format::Skops => "skops",
            Format::Keras => "keras",
            Format::TfKerasMetadata => "tf-keras-metadata",
            Format::TfFingerprint => "tf-fingerprint",
            Format::TfCheckpointIndex => "tf-checkpoint-index",
            Format::TfCheckpointData => "tf-checkpoint-data",
            Format::GitLfsPointer => "git-lfs-pointer",
            Format::Elf => "elf",
            Format::Pe => "pe",
            Format::MachO => "mach-o",
            Format::Script => "script",
            Format::Json => "json",
            Format::Text => "text",
            Format::Image => "image",
            Format::Empty => "empty",
            Format::Unknown => "unknown",
        }
    }

    /// Every format, in declaration order (reports and docs list them; a test checks the docs).
    pub const ALL: &'static [Format] = &[
        Format::Pickle,
        Format::PytorchZip,
        Format::Torchscript,
        Format::PytorchLegacy,
        Format::PytorchLegacyTar,
        Format::Numpy,
        Format::NumpyNpz,
        Format::Joblib,
        Format::Zip,
        Format::Tar,
        Format::Gzip,
        Format::Bzip2,
        Format::Xz,
        Format::Lzma,
        Format::Zlib,
        Format::SevenZip,
        Format::Hdf5,
        Format::TfSavedmodel,
        Format::TfGraphDef,
        Format::Onnx,
        Format::Protobuf,
        Format::Tflite,
        Format::Gguf,
        Format::Safetensors,
        Format::Skops,
        Format::Keras,
        Format::TfKerasMetadata,
        Format::TfFingerprint,
        Format::TfCheckpointIndex,
        Format::TfCheckpointData,
        Format::GitLfsPointer,
        Format::Elf,
        Format::Pe,
        Format::MachO,
        Format::Script,
        Format::Json,
        Format::Text,
        Format::Image,
        Format::Empty,
        Format::Unknown,
    ];

    /// True for archives whose members are listed as children.
    pub fn is_archive(self) -> bool {
        matches!(
            self,
            Format::PytorchZip
                | Format::Torchscript
                | Format::PytorchLegacyTar
                | Format::NumpyNpz
                | Format::Zip
                | Format::Tar
                | Format::SevenZip
                | Format::Keras
                | Format::Skops
        )
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// The kinds of observation a format module can make. Each maps to one rule in the policy crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum NoteKind {
    /// A model format that this version recognises but does not parse yet.
    UnsupportedFormat,
    /// Binary data of no recognised format.
    UnrecognisedBinary,
    /// Native executable code or a script.
    Executable,
    /// A Git LFS pointer where content was expected.
    LfsPointer,
    /// A scan limit stopped the parse; what follows was not inspected.
    LimitExceeded,
    /// A recognised format whose structure is invalid.
    Malformed,
    /// Bytes after the end of what the loader reads.
    TrailingData,

    /// A pickle stream the unpickler would reject part-way (invalid opcode, truncation, stack
    /// underflow…); everything before the error was still inventoried.
    PickleMalformed,
    /// An opcode straddles a FRAME boundary, or a FRAME opens inside another.
    PickleFrameViolation,
    /// EXT1/EXT2/EXT4: a global taken from the copyreg extension registry.
    PickleExtension,
    /// NEXT_BUFFER/READONLY_BUFFER: out-of-band data.
    PickleOutOfBandBuffer,
    /// STACK_GLOBAL whose operands are not plain strings, or a memo reference that does not exist.
    PickleUnresolvedGlobal,
    /// BUILD/SETITEM/APPEND applied to an imported module, class or function.
    PickleGlobalMutation,
    /// Duplicate, misplaced or unsupported PROTO opcodes.
    PickleProtocolAnomaly,
    /// A persistent id where the loader defines none, or one the loader would reject.
    PicklePersistentId,

    /// A zip member whose CRC-32 does not match its data.
    ArchiveCrcMismatch,
    /// A zip local header that disagrees with the central directory.
    ArchiveHeaderMismatch,
    /// A zip member flagged as encrypted.
    ArchiveEncrypted,
    /// Two archive members with the same name (compared case-insensitively).
    ArchiveDuplicateName,
    /// An archive that cannot be read as one.
    ArchiveMalformed,
    /// Bytes hidden before, between or overlapping archive entries.
    ArchiveHiddenData,
    /// An archive, or a member, whose content cannot be inspected.
    ArchiveOpaque,
    /// A member path that is absolute, climbs out with `..`, or is a link.
    ArchiveUnsafePath,

    /// A TorchScript archive carries code that `torch.jit.load` compiles and runs.
    TorchscriptCode,
    /// A tensor whose size, stride and offset reach outside its storage.
    TorchTensorBounds,
    /// A member of a PyTorch archive that the loader does not read.
    TorchUnexpectedMember,
    /// A storage the pickle references that is missing, or whose size disagrees.
    TorchStorageMismatch,

    // -- Keras and TensorFlow (issue 3) --
    /// A Keras Lambda layer: marshalled Python bytecode that the loader turns into a function.
    KerasLambda,
    /// A Keras config object whose `module` lies outside the Keras namespaces.
    KerasForeignModule,
    /// A Keras config referencing a function that loads or fetches files, or switches
    /// safe mode off.
    KerasUnsafeFunction,
    /// A Keras layer that loads another model from a path when deserialized (`TFSMLayer`).
    KerasExternalModel,
    /// A Keras `TorchModuleWrapper` layer: a `torch.save` pickle inside the config.
    KerasTorchModule,
    /// A Keras lookup layer whose vocabulary is a file path or URL.
    KerasVocabularyPath,
    /// An HDF5 external link, external raw-data file or virtual dataset: the loader opens
    /// another file.
    Hdf5ExternalReference,
    /// A TensorFlow graph op that reads or writes files (outside the saver's own functions).
    TfIoOp,
    /// A TensorFlow graph op that calls back into Python (`PyFunc`, `EagerPyFunc`).
    TfPythonOp,
    /// A TensorFlow graph op that is not in TensorFlow's public op set (needs a custom library).
    TfUnknownOp,
    /// A TFLite custom or Flex (TF Select) operator.
    TfliteCustomOp,
    /// An ONNX tensor's external data `location` is absolute, climbs out with `..`, or resolves
    /// through a symbolic link outside the model's directory.
    OnnxExternalDataPath,
    /// An ONNX node from an operator domain outside the standard set (needs a native library).
    OnnxCustomDomain,
    /// A GGUF file whose structure llama.cpp / gguf-py would reject (or mis-read).
    GgufMalformed,
    /// A safetensors file whose header or data layout is invalid.
    SafetensorsMalformed,
    /// safetensors `__metadata__` values that hold code, shell commands or URLs.
    SafetensorsMetadata,
    /// A Jinja chat template with sandbox-escape patterns (dunder access, `|attr`, escapes…).
    TemplateInjection,
    /// A chat template that does not parse as Jinja.
    TemplateInvalid,
    /// A name a parsed chat template reaches (attribute, filter, test, free name, statement, or
    /// one it builds at render time); the evidence is `kind:name`. The policy judges it.
    TemplateName,
    /// A Hugging Face config whose `auto_map` makes `trust_remote_code=True` import Python code.
    RemoteCode,
    /// Python source or bytecode inside a model directory or archive.
    PythonCode,
    /// A Hydra `_target_` (NeMo config): every one read is reported; the policy judges it.
    HydraTarget,
    /// A TorchServe archive manifest naming a custom Python handler.
    TorchServeHandler,
    /// A sharded checkpoint index mapping tensors to a shard outside the model directory.
    ShardPathEscape,

    // -- skops --
    /// A skops schema node whose `__loader__` is not one skops registers.
    SkopsUnknownLoader,
}

impl NoteKind {
    /// The stable kebab-case name of the observation.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::UnsupportedFormat => "unsupported-format",
            NoteKind::UnrecognisedBinary => "unrecognised-binary",
            NoteKind::Executable => "executable",
            NoteKind::LfsPointer => "lfs-pointer",
            NoteKind::LimitExceeded => "limit-exceeded",
            NoteKind::Malformed => "malformed",
            NoteKind::TrailingData => "trailing-data",
            NoteKind::PickleMalformed => "pickle-malformed",
            NoteKind::PickleFrameViolation => "pickle-frame-violation",
            NoteKind::PickleExtension => "pickle-extension",
            NoteKind::PickleOutOfBandBuffer => "pickle-out-of-band-buffer",
            NoteKind::PickleUnresolvedGlobal => "pickle-unresolved-global",
            NoteKind::PickleGlobalMutation => "pickle-global-mutation",
            NoteKind::PickleProtocolAnomaly => "pickle-protocol-anomaly",
            NoteKind::PicklePersistentId => "pickle-persistent-id",
            NoteKind::ArchiveCrcMismatch => "archive-crc-mismatch",
            NoteKind::ArchiveHeaderMismatch => "archive-header-mismatch",
            NoteKind::ArchiveEncrypted => "archive-encrypted",
            NoteKind::ArchiveDuplicateName => "archive-duplicate-name",
            NoteKind::ArchiveMalformed => "archive-malformed",
            NoteKind::ArchiveHiddenData => "archive-hidden-data",
            NoteKind::ArchiveOpaque => "archive-opaque",
            NoteKind::ArchiveUnsafePath => "archive-unsafe-path",
            NoteKind::TorchscriptCode => "torchscript-code",
            NoteKind::TorchTensorBounds => "torch-tensor-bounds",
            NoteKind::TorchUnexpectedMember => "torch-unexpected-member",
            NoteKind::TorchStorageMismatch => "torch-storage-mismatch",
            NoteKind::KerasLambda => "keras-lambda",
            NoteKind::KerasForeignModule => "keras-foreign-module",
            NoteKind::KerasUnsafeFunction => "keras-unsafe-function",
            NoteKind::KerasExternalModel => "keras-external-model",
            NoteKind::KerasTorchModule => "keras-torch-module",
            NoteKind::KerasVocabularyPath => "keras-vocabulary-path",
            NoteKind::Hdf5ExternalReference => "hdf5-external-reference",
            NoteKind::TfIoOp => "tf-io-op",
            NoteKind::TfPythonOp => "tf-python-op",
            NoteKind::TfUnknownOp => "tf-unknown-op",
            NoteKind::TfliteCustomOp => "tflite-custom-op",
            NoteKind::OnnxExternalDataPath => "onnx-external-data-path",
            NoteKind::OnnxCustomDomain => "onnx-custom-domain",
            NoteKind::GgufMalformed => "gguf-malformed",
            NoteKind::SafetensorsMalformed => "safetensors-malformed",
            NoteKind::SafetensorsMetadata => "safetensors-metadata",
            NoteKind::TemplateInjection => "template-injection",
            NoteKind::TemplateInvalid => "template-invalid",
            NoteKind::TemplateName => "template-name",
            NoteKind::RemoteCode => "remote-code",
            NoteKind::PythonCode => "python-code",
            NoteKind::HydraTarget => "hydra-target",
            NoteKind::TorchServeHandler => "torchserve-handler",
            NoteKind::ShardPathEscape => "shard-path-escape",
            NoteKind::SkopsUnknownLoader => "skops-unknown-loader",
        }
    }

    /// Every kind, for catalogue consistency checks.
    pub const ALL: &'static [NoteKind] = &[
        NoteKind::UnsupportedFormat,
        NoteKind::UnrecognisedBinary,
        NoteKind::Executable,
        NoteKind::LfsPointer,
        NoteKind::LimitExceeded,
        NoteKind::Malformed,
        NoteKind::TrailingData,
        NoteKind::PickleMalformed,
        NoteKind::PickleFrameViolation,
        NoteKind::PickleExtension,
        NoteKind::PickleOutOfBandBuffer,
        NoteKind::PickleUnresolvedGlobal,
        NoteKind::PickleGlobalMutation,
        NoteKind::PickleProtocolAnomaly,
        NoteKind::PicklePersistentId,
        NoteKind::ArchiveCrcMismatch,
        NoteKind::ArchiveHeaderMismatch,
        NoteKind::ArchiveEncrypted,
        NoteKind::ArchiveDuplicateName,
        NoteKind::ArchiveMalformed,
        NoteKind::ArchiveHiddenData,
        NoteKind::ArchiveOpaque,
        NoteKind::ArchiveUnsafePath,
        NoteKind::TorchscriptCode,
        NoteKind::TorchTensorBounds,
        NoteKind::TorchUnexpectedMember,
        NoteKind::TorchStorageMismatch,
        NoteKind::KerasLambda,
        NoteKind::KerasForeignModule,
        NoteKind::KerasUnsafeFunction,
        NoteKind::KerasExternalModel,
        NoteKind::KerasTorchModule,
        NoteKind::KerasVocabularyPath,
        NoteKind::Hdf5ExternalReference,
        NoteKind::TfIoOp,
        NoteKind::TfPythonOp,
        NoteKind::TfUnknownOp,
        NoteKind::TfliteCustomOp,
        NoteKind::OnnxExternalDataPath,
        NoteKind::OnnxCustomDomain,
        NoteKind::GgufMalformed,
        NoteKind::SafetensorsMalformed,
        NoteKind::SafetensorsMetadata,
        NoteKind::TemplateInjection,
        NoteKind::TemplateInvalid,
        NoteKind::TemplateName,
        NoteKind::RemoteCode,
        NoteKind::PythonCode,
        NoteKind::HydraTarget,
        NoteKind::TorchServeHandler,
        NoteKind::ShardPathEscape,
        NoteKind::SkopsUnknownLoader,
    ];
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

/// Distinct names a [`GraphInventory`] keeps; further names are counted under `…`.
pub const MAX_DISTINCT_OPS: usize = 4096;

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
