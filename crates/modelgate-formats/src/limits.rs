//! Every resource limit of a scan, in one place.
//!
//! Two kinds: the scan-wide limits a caller may set per scan (the fields of [`Limits`]: depth,
//! members, decompressed bytes, in-memory buffers, the pickle machine's sizes), and the fixed
//! budgets each parser works within (the associated constants of [`Limits`]: how much of a name
//! is kept, how many notes of one kind, how deep a JSON walk goes, and a few limits that are the
//! loader's own, such as numpy's header size). Both come from the one table below, which also
//! gives [`Limits::table`], the source of the table in docs/formats.md ("Limits") — a test keeps
//! the two the same. Hitting a limit is recorded as a [`NoteKind::LimitExceeded`] note (the
//! policy fails closed on it), or, for a budget that only bounds what the inventory keeps, cuts
//! the kept text; it never aborts the scan of other files.
//!
//! A parser names its budgets through a local constant (`const MAX_NOTES: usize =
//! Limits::GGUF_NOTES;`) so its code reads as before; to make a fixed budget configurable, move
//! it from `fixed` to `runtime` and read it from the scan's limits.
//!
//! [`NoteKind::LimitExceeded`]: crate::inventory::NoteKind::LimitExceeded

/// One row of the limits table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitRow {
    /// The field (`max_depth`) or constant (`GGUF_NOTES`) name.
    pub name: &'static str,
    /// True for a field a caller may set per scan.
    pub configurable: bool,
    /// The value (the default, for a field).
    pub value: u64,
    /// The first sentence of its documentation.
    pub summary: String,
}

macro_rules! limits {
    (
        runtime { $( $(#[doc = $doc:literal])* $field:ident: $ty:ty = $default:expr; )* }
        fixed { $( $(#[doc = $fdoc:literal])* $name:ident: $fty:ty = $value:expr; )* }
    ) => {
        /// Resource limits of one scan (see the module documentation). Hitting one is recorded as
        /// a [`NoteKind::LimitExceeded`](crate::inventory::NoteKind::LimitExceeded) note.
        #[derive(Debug, Clone)]
        pub struct Limits {
            $( $(#[doc = $doc])* pub $field: $ty, )*
        }

        impl Default for Limits {
            fn default() -> Limits {
                Limits { $( $field: $default, )* }
            }
        }

        impl Limits {
            $( $(#[doc = $fdoc])* pub const $name: $fty = $value; )*

            /// Every limit, fields first (with this value), then the fixed budgets, in table order.
            pub fn table(&self) -> Vec<LimitRow> {
                vec![
                    $( LimitRow {
                        name: stringify!($field),
                        configurable: true,
                        value: self.$field as u64,
                        summary: first_line(&[$($doc),*]),
                    }, )*
                    $( LimitRow {
                        name: stringify!($name),
                        configurable: false,
                        value: Limits::$name as u64,
                        summary: first_line(&[$($fdoc),*]),
                    }, )*
                ]
            }
        }
    };
}

/// The first sentence of a doc comment given as its lines.
fn first_line(doc: &[&'static str]) -> String {
    let text = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
    match text.find(". ") {
        Some(end) => text[..=end].to_string(),
        None => text,
    }
}

limits! {
    runtime {
        /// Nesting depth of archives, compression wrappers and embedded files.
        max_depth: u32 = 12;
        /// Members listed per archive.
        max_members: u64 = 100_000;
        /// Total bytes produced by decompression in one scan.
        max_expanded_bytes: u64 = 64 << 30;
        /// Decompressed/compressed ratio tolerated for a member (beyond `ratio_floor` bytes).
        max_ratio: u64 = 1_000;
        /// Decompressed size below which the ratio is not checked.
        ratio_floor: u64 = 64 << 20;
        /// Largest nested archive held in memory to give it random access.
        max_in_memory: u64 = 64 << 20;
        /// Largest string decoded in memory to look for an embedded pickle.
        embed_in_memory: usize = 16 << 20;
        /// Pickle stack depth.
        pickle_stack: usize = 1 << 20;
        /// Open pickle MARKs.
        pickle_marks: usize = 1 << 16;
        /// Pickle memo entries per stream. An entry costs a 4-byte slot; only globals, call results
        /// and the most recent plain values are kept in full (src/pickle/memo.rs, docs/performance.md).
        pickle_memo: usize = 1 << 25;
        /// Call results (objects) tracked per pickle stream. Lists, dicts and sets are not counted:
        /// only the most recent of them keep their items.
        pickle_heap: usize = 1 << 22;
        /// Opcodes executed per pickle stream (a stream cannot hold more opcodes than bytes; this
        /// bounds the time one stream may take).
        pickle_opcodes: u64 = 1 << 32;
    }
    fixed {
        /// Values a MessagePack document may hold to be recognised (its structure is checked
        /// whole; a larger one stays unrecognised binary).
        /// (`src/msgpack.rs`)
        MSGPACK_ITEMS: usize = 1 << 22;
        /// Nesting of maps and arrays in a MessagePack document.
        /// (`src/msgpack.rs`)
        MSGPACK_DEPTH: usize = 64;
        /// String bytes read (to check they are UTF-8) while recognising a MessagePack document.
        /// (`src/msgpack.rs`)
        MSGPACK_TEXT_BYTES: usize = 16 << 20;
        /// Reads of 16 KiB while recognising a MessagePack document (headers only: byte strings
        /// and extension payloads are skipped; at most 256 MiB in all).
        /// (`src/msgpack.rs`)
        MSGPACK_READS: usize = 16_384;
        /// The largest look-ahead a parser may ask for with `Stream::peek`.
        /// (`src/stream.rs`)
        PEEK: usize = 64 * 1024;
        /// Distinct names a graph inventory keeps; further names are counted under `…`.
        /// (`src/inventory.rs`)
        GRAPH_DISTINCT_OPS: usize = 4096;
        /// Values (scalars, arrays and objects each count one) a document may hold.
        /// (`src/json.rs`)
        JSON_VALUES: usize = 1_000_000;
        /// Values kept per list in a model card's front matter.
        /// (`src/card.rs`)
        CARD_ITEMS: usize = 64;
        /// Bytes kept per model card front matter value.
        /// (`src/card.rs`)
        CARD_VALUE_BYTES: usize = 256;
        /// Lines of front matter read at most.
        /// (`src/card.rs`)
        CARD_LINES: usize = 4096;
        /// How many items of a container are kept (the rest are counted, not stored).
        /// (`src/pickle/value.rs`)
        PICKLE_CONTAINER_ITEMS_KEPT: usize = 64;
        /// How many bytes of a string are kept.
        /// (`src/pickle/value.rs`)
        PICKLE_TEXT_KEPT: usize = 4096;
        /// How many bytes of a bytes value are kept.
        /// (`src/pickle/value.rs`)
        PICKLE_BYTES_KEPT: usize = 64;
        /// How deeply tuples may nest in the machine. Tuples hold each other by `Rc`, so dropping (or
        /// walking) a tuple recurses once per level: `N` followed by 100,000 `TUPLE1` opcodes overflowed
        /// the scan thread's stack. Deeper items are replaced by an unknown value: no opcode takes an
        /// item out of a tuple, so nothing a loader does with the stream depends on them.
        /// (`src/pickle/value.rs`)
        PICKLE_TUPLE_DEPTH: u32 = 1000;
        /// Lists, dicts and sets whose contents are kept: the most recent `PICKLE_CONTAINERS_KEPT` (and at
        /// most `PICKLE_RETAINED_ITEMS` items among them). A pickled list of millions of dicts does not
        /// hold millions of dicts: what a loader reads from a container (joblib's array state, torch's
        /// storage keys) is built just before it is read, and the verdict is about globals and calls,
        /// which are recorded when they happen. An older container keeps its kind (so SETITEMS on it is
        /// still a dict update, not a method call), not its items.
        /// (`src/pickle/vm.rs`)
        PICKLE_CONTAINERS_KEPT: usize = 1 << 16;
        /// Items kept in all retained containers together.
        /// (`src/pickle/vm.rs`)
        PICKLE_RETAINED_ITEMS: usize = 1 << 18;
        /// At most this many notes of one kind are kept per node.
        /// (`src/pickle/vm.rs`)
        PICKLE_NOTES_PER_KIND: u32 = 20;
        /// Distinct call sites kept per node (calls are deduplicated by opcode and callee).
        /// (`src/pickle/vm.rs`)
        PICKLE_CALL_SITES: usize = 10_000;
        /// Bytes kept of a protocol-0 STRING argument.
        /// (`src/pickle/vm.rs`)
        PICKLE_STRING_ARG_KEPT: usize = 1 << 16;
        /// Plain values kept in full (the most recent ones).
        /// (`src/pickle/memo.rs`)
        PICKLE_MEMO_RETAIN_ENTRIES: usize = 1 << 16;
        /// Bytes of string and bytes prefixes kept in full among them.
        /// (`src/pickle/memo.rs`)
        PICKLE_MEMO_RETAIN_BYTES: usize = 16 << 20;
        /// Entries the sparse map may hold (the rest of the memo limit is dense, 4 bytes an entry).
        /// (`src/pickle/memo.rs`)
        PICKLE_MEMO_SPARSE: usize = 1 << 20;
        /// Longest module or name considered (CPython has no limit; real ones are short).
        /// (`src/pickle/recognise.rs`)
        PICKLE_NAME: usize = 256;
        /// Bytes kept before a hit (MARKs that an INST or OBJ pops may open there).
        /// (`src/pickle/hunt.rs`)
        HUNT_LOOKBACK: usize = 4096;
        /// Bytes kept from the start of a segment.
        /// (`src/pickle/hunt.rs`)
        HUNT_SEGMENT: usize = 1 << 20;
        /// Segments kept per stream; more hits than these segments hold are noted, not dropped.
        /// (`src/pickle/hunt.rs`)
        HUNT_SEGMENTS: usize = 64;
        /// Opcodes one candidate parse may run.
        /// (`src/pickle/hunt.rs`)
        HUNT_CANDIDATE_OPCODES: u64 = 1 << 16;
        /// MARK positions before a hit tried as candidate starts.
        /// (`src/pickle/hunt.rs`)
        HUNT_MARK_STARTS: usize = 8;
        /// numpy refuses headers longer than this unless the caller raises `max_header_size`.
        /// (`src/numpy.rs`)
        NUMPY_LOADER_HEADER: u64 = 10_000;
        /// We read headers up to this size; numpy's own limit is lower by default.
        /// (`src/numpy.rs`)
        NUMPY_HEADER: u64 = 1 << 20;
        /// The central directory is held in memory; beyond this it is a limit finding.
        /// (`src/container/zip.rs`)
        ZIP_CENTRAL_DIRECTORY: u64 = 64 << 20;
        /// Bytes of a GNU long name/link or of pax records kept in memory; the rest is skipped.
        /// (`src/container/tar.rs`)
        TAR_META: usize = 1 << 20;
        /// Longest member or link name kept (no file system extracts longer ones).
        /// (`src/container/tar.rs`)
        TAR_NAME: usize = 16 << 10;
        /// Extended headers (GNU long names, pax) allowed in front of one member. Python recurses once
        /// per extended header and fails on long chains.
        /// (`src/container/tar.rs`)
        TAR_META_CHAIN: usize = 64;
        /// Invalid headers tolerated (each one is noted) before the rest of the archive is given up.
        /// (`src/container/tar.rs`)
        TAR_BAD_HEADERS: u32 = 64;
        /// Storage and tensor records remembered per archive (for the bounds check).
        /// (`src/container/torch_tar.rs`)
        TORCH_TAR_RECORDS: usize = 100_000;
        /// Tensors with more dimensions than this are not bounds-checked.
        /// (`src/container/torch_tar.rs`)
        TORCH_TAR_DIMS: u64 = 64;
        /// Decoder memory allowed on top of the dictionary (probability models, buffers), in bytes.
        /// (`src/container/compress.rs`, `src/container/sevenz.rs`)
        DECODER_OVERHEAD: u64 = 16 << 20;
        /// Largest single metadata read (an attribute's global heap, a B-tree node…).
        /// (`src/hdf5.rs`)
        HDF5_READ: u64 = 64 << 20;
        /// Metadata bytes served in all for one file.
        /// (`src/hdf5.rs`)
        HDF5_TOTAL_READ: u64 = 1 << 30;
        /// Object headers parsed per file.
        /// (`src/hdf5.rs`)
        HDF5_OBJECTS: usize = 200_000;
        /// Group nesting walked.
        /// (`src/hdf5.rs`)
        HDF5_DEPTH: usize = 64;
        /// Soft links followed to resolve one soft link.
        /// (`src/hdf5.rs`)
        HDF5_SOFT_HOPS: usize = 16;
        /// The worker's stack (the crate recurses through B-trees, bounded by its own limits).
        /// (`src/hdf5.rs`)
        HDF5_WORKER_STACK: usize = 16 << 20;
        /// Deepest JSON nesting walked (serde_json refuses more than 128 anyway).
        /// (`src/keras.rs`)
        KERAS_DEPTH: usize = 160;
        /// Distinct globals kept; beyond this the schema is a limit finding.
        /// (`src/skops.rs`)
        SKOPS_GLOBALS: usize = 4096;
        /// Member names kept from `file` references.
        /// (`src/skops.rs`)
        SKOPS_FILES: usize = 65_536;
        /// Problems noted per schema before they are summarised.
        /// (`src/skops.rs`)
        SKOPS_NOTES: usize = 32;
        /// Deepest nesting walked (serde_json refuses more than 128 anyway).
        /// (`src/skops.rs`)
        SKOPS_DEPTH: usize = 160;
        /// Longest JSON path kept in a message.
        /// (`src/skops.rs`)
        SKOPS_PATH: usize = 160;
        /// Nodes inventoried per file (a bound on time; each takes at least a few bytes anyway).
        /// (`src/savedmodel.rs`)
        SAVEDMODEL_NODES: usize = 4_000_000;
        /// Longest name or op kept (longer ones are cut, with `…`).
        /// (`src/savedmodel.rs`)
        SAVEDMODEL_NAME_KEPT: usize = 512;
        /// Nodes that may need a note, kept per meta graph until it is judged.
        /// (`src/savedmodel.rs`)
        SAVEDMODEL_NOTABLE: usize = 65_536;
        /// Distinct function names kept (those defined, and those called).
        /// (`src/savedmodel.rs`)
        SAVEDMODEL_FUNCTIONS: usize = 1_000_000;
        /// Meta graphs whose tags and version are recorded.
        /// (`src/savedmodel.rs`)
        SAVEDMODEL_META_FACTS: usize = 16;
        /// Shards whose extents are kept (TensorFlow writes one per saving device, rarely more than a few
        /// hundred).
        /// (`src/tf_checkpoint.rs`)
        TF_CHECKPOINT_SHARDS: u64 = 65_536;
        /// Operator codes read per model (real models have a few dozen).
        /// (`src/tflite.rs`)
        TFLITE_OPCODES: u32 = 65_536;
        /// Longest custom op name kept.
        /// (`src/tflite.rs`)
        TFLITE_NAME: u32 = 4096;
        /// Deepest nesting of containers and code objects.
        /// (`src/marshal.rs`)
        MARSHAL_DEPTH: u32 = 64;
        /// Names and constants kept for the report.
        /// (`src/marshal.rs`)
        MARSHAL_LISTED: usize = 48;
        /// Characters kept of each constant.
        /// (`src/marshal.rs`)
        MARSHAL_CONST_CHARS: usize = 120;
        /// Message nesting allowed (a graph inside a node attribute inside a graph is three levels).
        /// (`src/onnx.rs`)
        ONNX_DEPTH: u32 = 96;
        /// Longest name, domain or metadata value kept.
        /// (`src/onnx.rs`)
        ONNX_NAME_KEPT: usize = 4096;
        /// Longest external-data location kept (longer ones are still checked on what is kept).
        /// (`src/onnx.rs`)
        ONNX_PATH_KEPT: usize = 64 << 10;
        /// Entries kept in the lists of the inventory.
        /// (`src/onnx.rs`)
        ONNX_LISTED: usize = 1024;
        /// Distinct operators counted.
        /// (`src/onnx.rs`)
        ONNX_OPERATORS: usize = 10_000;
        /// llama.cpp's `GGML_MAX_NAME`: tensor names are shorter.
        /// (`src/gguf.rs`)
        GGUF_TENSOR_NAME: u64 = 64;
        /// llama.cpp's `GGML_MAX_DIMS`.
        /// (`src/gguf.rs`)
        GGUF_DIMS: u32 = 4;
        /// Keys longer than this are not something any writer produces.
        /// (`src/gguf.rs`)
        GGUF_KEY: u64 = 64 << 10;
        /// Key bytes kept.
        /// (`src/gguf.rs`)
        GGUF_KEY_KEPT: usize = 1024;
        /// String values kept for the inventory.
        /// (`src/gguf.rs`)
        GGUF_VALUE_KEPT: usize = 4096;
        /// Chat template bytes kept for analysis.
        /// (`src/gguf.rs`)
        GGUF_TEMPLATE_KEPT: usize = 4 << 20;
        /// Chat templates analysed per file (real files have one to three).
        /// (`src/gguf.rs`)
        GGUF_TEMPLATES: usize = 16;
        /// Arrays nested in arrays: llama.cpp rejects them; gguf-py reads them.
        /// (`src/gguf.rs`)
        GGUF_ARRAY_NESTING: u32 = 1;
        /// Tensor names and keys remembered for the duplicate checks (real files have tens of
        /// thousands of tensors and about a hundred keys); past this the checks stop, with a note.
        /// (`src/gguf.rs`)
        GGUF_TRACKED_NAMES: usize = 1 << 18;
        /// Notes about individual problems before the rest is summarised.
        /// (`src/gguf.rs`)
        GGUF_NOTES: usize = 50;
        /// The `safetensors` library's `MAX_HEADER_SIZE`.
        /// (`src/safetensors.rs`)
        SAFETENSORS_HEADER: u64 = 100_000_000;
        /// JSON values (approximated by separators) parsed in a header: about ten per tensor for
        /// 400,000 tensors, far beyond any real shard, and a bounded amount of memory.
        /// (`src/safetensors.rs`)
        SAFETENSORS_HEADER_VALUES: usize = 4 << 20;
        /// Problems noted one by one before the rest are summarised.
        /// (`src/safetensors.rs`)
        SAFETENSORS_NOTES: usize = 50;
        /// Metadata entries kept in the inventory, and the length kept of each value.
        /// (`src/safetensors.rs`)
        SAFETENSORS_METADATA_KEPT: usize = 64;
        /// (`src/safetensors.rs`)
        SAFETENSORS_METADATA_VALUE_KEPT: usize = 256;
        /// Templates longer than this are not compiled (their patterns are still scanned).
        /// (`src/jinja.rs`)
        JINJA_COMPILE: usize = 4 << 20;
        /// Tokens in one `{{ … }}`/`{% … %}` region beyond which the template is not compiled.
        /// (`src/jinja.rs`)
        JINJA_REGION_TOKENS: usize = 2_000;
        /// Tokens kept of one region; the rest of a longer region is skipped and the template noted as
        /// not fully inspected (real templates stay under [`Limits::JINJA_REGION_TOKENS`]).
        /// (`src/jinja.rs`)
        JINJA_KEPT_TOKENS: usize = 100_000;
        /// Stack for the compiler thread.
        /// (`src/jinja.rs`)
        JINJA_COMPILE_STACK: usize = 64 << 20;
        /// Issues reported per template.
        /// (`src/jinja.rs`)
        JINJA_ISSUES: usize = 20;
        /// Evidence kept per issue.
        /// (`src/jinja.rs`)
        JINJA_EVIDENCE: usize = 240;
        /// Candidate values kept per expression before it becomes opaque.
        /// (`src/template.rs`)
        TEMPLATE_CHOICES: usize = 32;
        /// Longest string built by constant folding (longer ones are opaque).
        /// (`src/template.rs`)
        TEMPLATE_STRING: usize = 4096;
        /// Passes over the tree before values that still change are widened to opaque.
        /// (`src/template.rs`)
        TEMPLATE_PASSES: usize = 8;
        /// Expression nesting followed; deeper expressions are opaque and noted as a limit.
        /// (`src/template.rs`)
        TEMPLATE_DEPTH: usize = 400;
        /// Distinct names listed per template.
        /// (`src/template.rs`)
        TEMPLATE_REACHES: usize = 512;
    }
}

/// Renders a limit's value for the docs: exact, with thousands separators.
pub fn render_value(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The Markdown table of every limit, as docs/formats.md carries it.
pub fn markdown_table() -> String {
    let mut out = String::from("| Limit | Default | Set per scan | What it bounds |\n|---|---|---|---|\n");
    for row in Limits::default().table() {
        let name = if row.configurable { row.name.to_string() } else { format!("Limits::{}", row.name) };
        let set = if row.configurable { "yes" } else { "no" };
        out.push_str(&format!(
            "| `{name}` | {} | {set} | {} |\n",
            render_value(row.value),
            row.summary.replace('|', "\\|")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- limits:begin (generated from src/limits.rs; MODELGATE_BLESS=1 cargo test -p modelgate-formats limits rewrites it) -->\n";
    const END: &str = "<!-- limits:end -->";

    /// docs/formats.md lists every limit with its default, exactly as `Limits` defines it.
    #[test]
    fn the_docs_table_is_the_limits_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/formats.md");
        let docs = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let (Some(start), Some(end)) = (docs.find(BEGIN), docs.find(END)) else {
            panic!("docs/formats.md has no limits table between {BEGIN:?} and {END:?}");
        };
        let table = &docs[start + BEGIN.len()..end];
        let want = markdown_table();
        if table != want && std::env::var_os("MODELGATE_BLESS").is_some() {
            let fixed = format!("{}{want}{}", &docs[..start + BEGIN.len()], &docs[end..]);
            std::fs::write(&path, fixed).unwrap_or_else(|e| panic!("{e}"));
            return;
        }
        assert_eq!(table, want, "docs/formats.md's limits table is stale (MODELGATE_BLESS=1 rewrites it)");
    }

    #[test]
    fn names_are_unique_and_values_render() {
        let rows = Limits::default().table();
        let mut names: Vec<&str> = rows.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), rows.len());
        assert_eq!(render_value(64 << 20), "67,108,864");
        assert_eq!(render_value(1_000), "1,000");
        assert_eq!(render_value(999), "999");
    }
}
