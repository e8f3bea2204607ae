//! GGUF (llama.cpp) models, versions 1–3, read strictly and forward.
//!
//! Layout: `GGUF`, a `u32` version, the tensor and key/value counts, the key/value pairs, the
//! tensor infos, padding to `general.alignment`, then the tensor data. Every count is bounded by
//! the bytes left, every length is checked before anything is kept (and only small values are
//! kept: names, `general.*` strings, chat templates), every size is computed with overflow
//! checks. What llama.cpp's `gguf_init_from_file_impl` rejects is reported as malformed, plus
//! what gguf-py rejects (duplicate keys): a file two loaders read differently is a parser
//! differential. Tensor data is skipped (the stream hashes it); data after the last tensor is
//! scanned as trailing data.
//!
//! `tokenizer.chat_template*` values are Jinja programs and are analysed (`crate::jinja`).

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Node, Note, NoteKind};
use crate::stream::Stream;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

const MAX_TENSOR_NAME: u64 = crate::limits::Limits::GGUF_TENSOR_NAME;
const MAX_DIMS: u32 = crate::limits::Limits::GGUF_DIMS;
const MAX_KEY: u64 = crate::limits::Limits::GGUF_KEY;
const KEEP_KEY: usize = crate::limits::Limits::GGUF_KEY_KEPT;
const KEEP_VALUE: usize = crate::limits::Limits::GGUF_VALUE_KEPT;
const KEEP_TEMPLATE: usize = crate::limits::Limits::GGUF_TEMPLATE_KEPT;
const MAX_TEMPLATES: usize = crate::limits::Limits::GGUF_TEMPLATES;
const MAX_ARRAY_NESTING: u32 = crate::limits::Limits::GGUF_ARRAY_NESTING;
const MAX_TRACKED_NAMES: usize = crate::limits::Limits::GGUF_TRACKED_NAMES;
const MAX_NOTES: usize = crate::limits::Limits::GGUF_NOTES;

/// `(block size, bytes per block, name)` of each ggml tensor type (gguf-py 0.19
/// `GGML_QUANT_SIZES`). Ids missing here were removed from ggml.
fn ggml_type(id: u32) -> Option<(u64, u64, &'static str)> {
    Some(match id {
        0 => (1, 4, "F32"),
        1 => (1, 2, "F16"),
        2 => (32, 18, "Q4_0"),
        3 => (32, 20, "Q4_1"),
        6 => (32, 22, "Q5_0"),
        7 => (32, 24, "Q5_1"),
        8 => (32, 34, "Q8_0"),
        9 => (32, 40, "Q8_1"),
        10 => (256, 84, "Q2_K"),
        11 => (256, 110, "Q3_K"),
        12 => (256, 144, "Q4_K"),
        13 => (256, 176, "Q5_K"),
        14 => (256, 210, "Q6_K"),
        15 => (256, 292, "Q8_K"),
        16 => (256, 66, "IQ2_XXS"),
        17 => (256, 74, "IQ2_XS"),
        18 => (256, 98, "IQ3_XXS"),
        19 => (256, 50, "IQ1_S"),
        20 => (32, 18, "IQ4_NL"),
        21 => (256, 110, "IQ3_S"),
        22 => (256, 82, "IQ2_S"),
        23 => (256, 136, "IQ4_XS"),
        24 => (1, 1, "I8"),
        25 => (1, 2, "I16"),
        26 => (1, 4, "I32"),
        27 => (1, 8, "I64"),
        28 => (1, 8, "F64"),
        29 => (256, 56, "IQ1_M"),
        30 => (1, 2, "BF16"),
        34 => (256, 54, "TQ1_0"),
        35 => (256, 66, "TQ2_0"),
        39 => (32, 17, "MXFP4"),
        40 => (64, 36, "NVFP4"),
        41 => (128, 18, "Q1_0"),
        _ => return None,
    })
}

/// `general.file_type` names (llama.cpp `llama_ftype`).
fn file_type_name(v: u64) -> Option<&'static str> {
    Some(match v {
        0 => "ALL_F32",
        1 => "MOSTLY_F16",
        2 => "MOSTLY_Q4_0",
        3 => "MOSTLY_Q4_1",
        7 => "MOSTLY_Q8_0",
        8 => "MOSTLY_Q5_0",
        9 => "MOSTLY_Q5_1",
        10 => "MOSTLY_Q2_K",
        11 => "MOSTLY_Q3_K_S",
        12 => "MOSTLY_Q3_K_M",
        13 => "MOSTLY_Q3_K_L",
        14 => "MOSTLY_Q4_K_S",
        15 => "MOSTLY_Q4_K_M",
        16 => "MOSTLY_Q5_K_S",
        17 => "MOSTLY_Q5_K_M",
        18 => "MOSTLY_Q6_K",
        19 => "MOSTLY_IQ2_XXS",
        20 => "MOSTLY_IQ2_XS",
        21 => "MOSTLY_Q2_K_S",
        22 => "MOSTLY_IQ3_XS",
        23 => "MOSTLY_IQ3_XXS",
        24 => "MOSTLY_IQ1_S",
        25 => "MOSTLY_IQ4_NL",
        26 => "MOSTLY_IQ3_S",
        27 => "MOSTLY_IQ3_M",
        28 => "MOSTLY_IQ2_S",
        29 => "MOSTLY_IQ2_M",
        30 => "MOSTLY_IQ4_XS",
        31 => "MOSTLY_IQ1_M",
        32 => "MOSTLY_BF16",
        36 => "MOSTLY_TQ1_0",
        37 => "MOSTLY_TQ2_0",
        38 => "MOSTLY_MXFP4_MOE",
        39 => "MOSTLY_NVFP4",
        40 => "MOSTLY_Q1_0",
        _ => return None,
    })
}

/// What the inventory (and the BOM) records about a GGUF model.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct GgufInfo {
    /// Format version.
    pub version: u32,
    /// Tensors declared.
    pub tensor_count: u64,
    /// Key/value pairs declared.
    pub kv_count: u64,
    /// `general.architecture`.
    pub architecture: Option<String>,
    /// `general.name`.
    pub name: Option<String>,
    /// `general.license`.
    pub license: Option<String>,
    /// `general.size_label` (e.g. `8B`).
    pub size_label: Option<String>,
    /// `general.file_type`, by llama.cpp's name when known.
    pub file_type: Option<String>,
    /// `general.quantization_version`.
    pub quantization_version: Option<u64>,
    /// `general.alignment` (32 when absent).
    pub alignment: u64,
    /// `<architecture>.context_length`.
    pub context_length: Option<u64>,
    /// Elements in all tensors (the parameter count).
    pub parameter_count: u64,
    /// Tensors per ggml type.
    pub tensor_types: BTreeMap<String, u64>,
    /// Chat template keys present (`tokenizer.chat_template`, `tokenizer.chat_template.<name>`).
    pub chat_templates: Vec<String>,
}

/// A fatal problem: where, and what.
struct Bad(u64, String);

type R<T> = Result<T, Bad>;

/// A value read from the key/value section (only what is kept).
enum Val {
    Uint(u64),
    Int(i64),
    Str(String, u64),
    Other,
}

struct Reader<'s, 'a> {
    s: &'s mut Stream<'a>,
    /// Total length, when the stream has random access.
    total: Option<u64>,
    v1: bool,
}

impl Reader<'_, '_> {
    fn at(&self) -> u64 {
        self.s.position()
    }

    fn left(&self) -> u64 {
        self.total.map(|t| t.saturating_sub(self.at())).unwrap_or(u64::MAX)
    }

    fn array<const N: usize>(&mut self, what: &str) -> R<[u8; N]> {
        let at = self.at();
        match self.s.read_array::<N>() {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(Bad(at, format!("the file ends inside {what}"))),
            Err(e) => Err(Bad(at, format!("read error: {e}"))),
        }
    }

    fn u32(&mut self, what: &str) -> R<u32> {
        Ok(u32::from_le_bytes(self.array::<4>(what)?))
    }

    fn u64(&mut self, what: &str) -> R<u64> {
        Ok(u64::from_le_bytes(self.array::<8>(what)?))
    }

    /// A count or length: `u32` in version 1, `u64` later.
    fn size(&mut self, what: &str) -> R<u64> {
        if self.v1 { Ok(u64::from(self.u32(what)?)) } else { self.u64(what) }
    }

    fn skip(&mut self, n: u64, what: &str) -> R<()> {
        let at = self.at();
        if n > self.left() {
            return Err(Bad(at, format!("{what} of {n} bytes runs past the end of the file")));
        }
        match self.s.skip(n) {
            Ok(got) if got == n => Ok(()),
            Ok(_) => Err(Bad(at, format!("the file ends inside {what}"))),
            Err(e) => Err(Bad(at, format!("read error: {e}"))),
        }
    }

    /// A length-prefixed string; keeps at most `keep` bytes. Returns the text, its full
    /// length and the offset of its bytes.
    fn string(&mut self, keep: usize, what: &str) -> R<(String, u64, u64)> {
        let len = self.size(what)?;
        let at = self.at();
        if len > self.left() {
            return Err(Bad(at, format!("{what} claims {len} bytes, past the end of the file")));
        }
        match self.s.read_prefix_skip_rest(len, keep) {
            Ok((kept, got)) if got == len => Ok((String::from_utf8_lossy(&kept).into_owned(), len, at)),
            Ok(_) => Err(Bad(at, format!("the file ends inside {what}"))),
            Err(e) => Err(Bad(at, format!("read error: {e}"))),
        }
    }

    /// A value of `ty`; strings are kept up to `keep`.
    fn value(&mut self, ty: u32, keep: usize, nesting: u32) -> R<Val> {
        let at = self.at();
        Ok(match ty {
            0 => Val::Uint(u64::from(self.array::<1>("a value")?[0])),
            1 => Val::Int(i64::from(self.array::<1>("a value")?[0] as i8)),
            2 => Val::Uint(u64::from(u16::from_le_bytes(self.array::<2>("a value")?))),
            3 => Val::Int(i64::from(i16::from_le_bytes(self.array::<2>("a value")?))),
            4 => Val::Uint(u64::from(self.u32("a value")?)),
            5 => Val::Int(i64::from(i32::from_le_bytes(self.array::<4>("a value")?))),
            6 => {
                self.array::<4>("a value")?;
                Val::Other
            }
            7 => {
                let b = self.array::<1>("a value")?[0];
                if b > 1 {
                    return Err(Bad(at, format!("a boolean holds {b}")));
                }
                Val::Uint(u64::from(b))
            }
            8 => {
                let (text, len, _) = self.string(keep, "a string value")?;
                Val::Str(text, len)
            }
            9 => {
                if nesting >= MAX_ARRAY_NESTING {
                    return Err(Bad(
                        at,
                        "an array nested in an array (llama.cpp rejects nested arrays)".into(),
                    ));
                }
                let elem = self.u32("an array type")?;
                let count = self.size("an array length")?;
                match elem_size(elem) {
                    Some(size) => {
                        let bytes = count.checked_mul(size).ok_or_else(|| {
                            Bad(at, format!("an array of {count} elements overflows 64 bits"))
                        })?;
                        self.skip(bytes, "an array")?;
                    }
                    None if elem == 8 || elem == 9 => {
                        // Each element takes at least 8 bytes: the count is bounded by the file.
                        if count > self.left() / if self.v1 { 4 } else { 8 } {
                            return Err(Bad(
                                at,
                                format!("an array of {count} elements cannot fit in the rest of the file"),
                            ));
                        }
                        for _ in 0..count {
                            self.value(elem, 0, nesting + 1)?;
                        }
                    }
                    None => return Err(Bad(at, format!("an array of unknown type {elem}"))),
                }
                Val::Other
            }
            10 => Val::Uint(self.u64("a value")?),
            11 => Val::Int(i64::from_le_bytes(self.array::<8>("a value")?)),
            12 => {
                self.array::<8>("a value")?;
                Val::Other
            }
            other => return Err(Bad(at, format!("unknown value type {other}"))),
        })
    }
}

fn elem_size(ty: u32) -> Option<u64> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

pub(crate) fn scan(s: &mut Stream<'_>, _ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let total = s.window().map(|w| w.len());
    let mut info = GgufInfo { alignment: 32, ..GgufInfo::default() };
    let mut notes = Vec::new();
    let mut r = Reader { s, total, v1: false };
    let rest = match parse(&mut r, &mut info, &mut notes, node) {
        Ok(rest) => rest,
        Err(Bad(at, what)) => {
            notes.push(Note::new(NoteKind::GgufMalformed, format!("GGUF: {what}")).at(at));
            Rest::Drain
        }
    };
    crate::inventory::cap_notes(&mut notes, MAX_NOTES, NoteKind::GgufMalformed, "GGUF");
    node.notes.extend(notes);
    node.detail = Detail::Gguf(Box::new(info));
    rest
}

fn parse(r: &mut Reader<'_, '_>, info: &mut GgufInfo, notes: &mut Vec<Note>, node: &mut Node) -> R<Rest> {
    r.array::<4>("the magic")?;
    let version = r.u32("the version")?;
    info.version = version;
    match version {
        1 => r.v1 = true,
        2 | 3 => {}
        v if v.swap_bytes() <= 3 => {
            return Err(Bad(
                4,
                format!("big-endian GGUF (version {}); not supported by this scanner", v.swap_bytes()),
            ));
        }
        v => return Err(Bad(4, format!("unknown version {v}"))),
    }
    let n_tensors = r.size("the tensor count")?;
    let n_kv = r.size("the key/value count")?;
    info.tensor_count = n_tensors;
    info.kv_count = n_kv;
    // A key/value pair takes at least 13 bytes, a tensor info at least 24.
    if n_kv > r.left() / 13 || n_tensors > r.left() / 24 {
        return Err(Bad(8, format!("{n_tensors} tensors and {n_kv} key/value pairs cannot fit in the file")));
    }
    let mut keys = HashSet::new();
    let mut context_lengths = Vec::new();
    for _ in 0..n_kv {
        let key_at = r.at();
        let (key, key_len, _) = r.string(KEEP_KEY, "a key")?;
        if key_len > MAX_KEY || key_len == 0 {
            return Err(Bad(key_at, format!("a key of {key_len} bytes")));
        }
        let ty = r.u32("a value type")?;
        let is_template = key.starts_with("tokenizer.chat_template");
        let keep = if is_template {
            KEEP_TEMPLATE
        } else if key.starts_with("general.") || key.ends_with(".context_length") {
            KEEP_VALUE
        } else {
            0
        };
        let value_at = r.at();
        let value = r.value(ty, keep, 0)?;
        if keys.len() >= MAX_TRACKED_NAMES {
            if keys.len() == MAX_TRACKED_NAMES {
                notes.push(
                    Note::new(
                        NoteKind::LimitExceeded,
                        format!(
                            "more than {MAX_TRACKED_NAMES} keys: later keys were not checked for duplicates"
                        ),
                    )
                    .at(key_at),
                );
                keys.insert(String::new());
            }
        } else if !keys.insert(key.clone()) {
            notes.push(
                Note::new(
                    NoteKind::GgufMalformed,
                    format!("GGUF: the key {key:?} appears twice; gguf-py rejects the file and llama.cpp keeps the first value, so two loaders read different models"),
                )
                .at(key_at)
                .evidence(key.clone()),
            );
            continue;
        }
        match (key.as_str(), &value) {
            ("general.alignment", Val::Uint(a)) if ty == 4 => {
                if *a == 0 || !a.is_power_of_two() {
                    return Err(Bad(value_at, format!("general.alignment is {a}, not a power of two")));
                }
                info.alignment = *a;
            }
            ("general.alignment", _) => {
                return Err(Bad(value_at, "general.alignment is not a u32".into()));
            }
            ("general.architecture", Val::Str(v, _)) => info.architecture = Some(v.clone()),
            ("general.name", Val::Str(v, _)) => info.name = Some(v.clone()),
            ("general.license", Val::Str(v, _)) => info.license = Some(v.clone()),
            ("general.size_label", Val::Str(v, _)) => info.size_label = Some(v.clone()),
            ("general.file_type", Val::Uint(v)) => {
                info.file_type =
                    Some(file_type_name(*v).map(str::to_string).unwrap_or_else(|| v.to_string()));
            }
            ("general.quantization_version", Val::Uint(v)) => info.quantization_version = Some(*v),
            (k, Val::Uint(v)) if k.ends_with(".context_length") => {
                context_lengths.push((k.trim_end_matches(".context_length").to_string(), *v));
            }
            (k, Val::Int(v)) if k.ends_with(".context_length") && *v >= 0 => {
                context_lengths.push((k.trim_end_matches(".context_length").to_string(), *v as u64));
            }
            (k, Val::Str(_, _)) if is_template && info.chat_templates.len() >= MAX_TEMPLATES => {
                notes.push(
                    Note::new(
                        NoteKind::LimitExceeded,
                        format!("more than {MAX_TEMPLATES} chat templates: {k} was not analysed"),
                    )
                    .at(value_at),
                );
            }
            (k, Val::Str(template, len)) if is_template => {
                info.chat_templates.push(k.to_string());
                if *len as usize > KEEP_TEMPLATE {
                    notes.push(
                        Note::new(
                            NoteKind::LimitExceeded,
                            format!("{k} is {len} bytes; only the first {KEEP_TEMPLATE} were analysed"),
                        )
                        .at(value_at),
                    );
                }
                crate::jinja::note_template(node, template, k, &|o| Some(value_at + o as u64), true);
            }
            _ => {}
        }
    }
    info.context_length =
        context_lengths.iter().find(|(arch, _)| Some(arch) == info.architecture.as_ref()).map(|(_, v)| *v);

    // Tensor infos: llama.cpp requires each offset to be where the previous tensor's padded
    // data ends.
    let align = info.alignment;
    let mut names = HashSet::new();
    let mut expected = 0u64;
    let mut last_unpadded = 0u64;
    for index in 0..n_tensors {
        let at = r.at();
        let (name, name_len, _) = r.string(MAX_TENSOR_NAME as usize, "a tensor name")?;
        if name_len >= MAX_TENSOR_NAME {
            return Err(Bad(
                at,
                format!(
                    "tensor {index} has a name of {name_len} bytes (llama.cpp allows {})",
                    MAX_TENSOR_NAME - 1
                ),
            ));
        }
        let n_dims = r.u32("a tensor's dimension count")?;
        if n_dims > MAX_DIMS {
            return Err(Bad(at, format!("tensor {name:?} has {n_dims} dimensions (at most {MAX_DIMS})")));
        }
        let mut elements = 1u64;
        let mut first = 1u64;
        for d in 0..n_dims {
            let dim = r.u64("a tensor dimension")?;
            if dim > i64::MAX as u64 {
                return Err(Bad(at, format!("tensor {name:?} has a negative dimension")));
            }
            if d == 0 {
                first = dim;
            }
            elements = elements
                .checked_mul(dim)
                .filter(|e| *e <= i64::MAX as u64)
                .ok_or_else(|| Bad(at, format!("tensor {name:?}: the element count overflows")))?;
        }
        let ty = r.u32("a tensor type")?;
        let Some((block, block_bytes, type_name)) = ggml_type(ty) else {
            return Err(Bad(at, format!("tensor {name:?} has unknown type {ty}")));
        };
        let offset = r.u64("a tensor offset")?;
        if !first.is_multiple_of(block) {
            return Err(Bad(
                at,
                format!(
                    "tensor {name:?}: its first dimension {first} is not a multiple of the {type_name} block size {block}"
                ),
            ));
        }
        let bytes = (elements / block)
            .checked_mul(block_bytes)
            .ok_or_else(|| Bad(at, format!("tensor {name:?}: its size overflows")))?;
        if offset != expected {
            return Err(Bad(
                at,
                format!(
                    "tensor {name:?} has offset {offset}, but its data must start at {expected} (offsets must follow each other, aligned to {align})"
                ),
            ));
        }
        let padded = bytes
            .checked_next_multiple_of(align)
            .ok_or_else(|| Bad(at, format!("tensor {name:?}: its size overflows")))?;
        last_unpadded = offset
            .checked_add(bytes)
            .ok_or_else(|| Bad(at, format!("tensor {name:?}: its end overflows")))?;
        expected = offset
            .checked_add(padded)
            .ok_or_else(|| Bad(at, format!("tensor {name:?}: its end overflows")))?;
        if names.len() < MAX_TRACKED_NAMES {
            if !names.insert(name.clone()) {
                return Err(Bad(at, format!("two tensors are named {name:?}")));
            }
        } else if names.len() == MAX_TRACKED_NAMES {
            notes.push(
                Note::new(
                    NoteKind::LimitExceeded,
                    format!(
                        "more than {MAX_TRACKED_NAMES} tensors: later names were not checked for duplicates"
                    ),
                )
                .at(at),
            );
            names.insert(String::new());
        }
        info.parameter_count = info.parameter_count.saturating_add(elements);
        *info.tensor_types.entry(type_name.to_string()).or_default() += 1;
    }
    // Padding to the data section.
    let here = r.at();
    let data_start = here
        .checked_next_multiple_of(align)
        .ok_or_else(|| Bad(here, "the data section offset overflows".into()))?;
    if n_tensors == 0 {
        // Writers may stop right after the header, or pad it.
        skip_padding(r, data_start - here)?;
        return Ok(Rest::Trailing);
    }
    r.skip(data_start - here, "the padding before the tensor data")?;
    let data_at = r.at();
    if last_unpadded > r.left() {
        return Err(Bad(
            data_at,
            format!("the tensors need {last_unpadded} bytes of data but only {} follow", r.left()),
        ));
    }
    r.skip(last_unpadded, "the tensor data")?;
    skip_padding(r, expected - last_unpadded)?;
    Ok(Rest::Trailing)
}

/// Consumes up to `n` zero bytes (the alignment padding a writer may leave at the end).
fn skip_padding(r: &mut Reader<'_, '_>, n: u64) -> R<()> {
    let n = usize::try_from(n).unwrap_or(usize::MAX).min(1 << 16);
    let zeros = match r.s.peek(n) {
        Ok(b) => b.iter().take_while(|&&x| x == 0).count(),
        Err(e) => return Err(Bad(r.at(), format!("read error: {e}"))),
    };
    r.s.consume_buffered(zeros);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{Format, Options, scan_bytes};

    /// Builds GGUF v3 files.
    pub(crate) struct Gguf {
        kv: Vec<u8>,
        n_kv: u64,
        tensors: Vec<(String, Vec<u64>, u32, u64)>,
        pub(crate) align: u64,
    }

    impl Gguf {
        pub(crate) fn new() -> Gguf {
            Gguf { kv: Vec::new(), n_kv: 0, tensors: Vec::new(), align: 32 }
        }
        fn key(&mut self, k: &str, ty: u32) {
            self.kv.extend((k.len() as u64).to_le_bytes());
            self.kv.extend(k.as_bytes());
            self.kv.extend(ty.to_le_bytes());
            self.n_kv += 1;
        }
        pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
            self.key(k, 8);
            self.kv.extend((v.len() as u64).to_le_bytes());
            self.kv.extend(v.as_bytes());
            self
        }
        pub(crate) fn u32(&mut self, k: &str, v: u32) -> &mut Self {
            self.key(k, 4);
            self.kv.extend(v.to_le_bytes());
            self
        }
        pub(crate) fn raw(&mut self, k: &str, ty: u32, bytes: &[u8]) -> &mut Self {
            self.key(k, ty);
            self.kv.extend(bytes);
            self
        }
        /// An F32 tensor; offsets are laid out like gguf-py.
        pub(crate) fn tensor(&mut self, name: &str, dims: &[u64]) -> &mut Self {
            let offset = self
                .tensors
                .iter()
                .map(|t| (t.1.iter().product::<u64>() * 4).next_multiple_of(self.align))
                .sum();
            self.tensors.push((name.into(), dims.to_vec(), 0, offset));
            self
        }
        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = b"GGUF".to_vec();
            out.extend(3u32.to_le_bytes());
            out.extend((self.tensors.len() as u64).to_le_bytes());
            out.extend(self.n_kv.to_le_bytes());
            out.extend(&self.kv);
            for (name, dims, ty, off) in &self.tensors {
                out.extend((name.len() as u64).to_le_bytes());
                out.extend(name.as_bytes());
                out.extend((dims.len() as u32).to_le_bytes());
                for d in dims {
                    out.extend(d.to_le_bytes());
                }
                out.extend(ty.to_le_bytes());
                out.extend(off.to_le_bytes());
            }
            out.resize(out.len().next_multiple_of(self.align as usize), 0);
            for (_, dims, _, _) in &self.tensors {
                let n = (dims.iter().product::<u64>() * 4) as usize;
                out.extend(std::iter::repeat_n(0x3f, n));
                out.resize(out.len().next_multiple_of(self.align as usize), 0);
            }
            out
        }
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    fn info(node: &Node) -> &GgufInfo {
        match &node.detail {
            Detail::Gguf(i) => i,
            other => panic!("no GGUF detail: {other:?}"),
        }
    }

    fn sample() -> Gguf {
        let mut g = Gguf::new();
        g.str("general.architecture", "llama")
            .str("general.name", "tiny")
            .str("general.license", "mit")
            .u32("general.file_type", 1)
            .u32("llama.context_length", 4096)
            .str("tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}")
            .tensor("a", &[8, 2])
            .tensor("b", &[3]);
        g
    }

    #[test]
    fn a_valid_file_is_inventoried() {
        let data = sample().build();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Gguf);
        // The chat template's names are listed for the policy; nothing else is noted.
        assert!(root.notes.iter().all(|n| n.kind == NoteKind::TemplateName), "{:?}", root.notes);
        let i = info(&root);
        assert_eq!(i.architecture.as_deref(), Some("llama"));
        assert_eq!(i.context_length, Some(4096));
        assert_eq!(i.file_type.as_deref(), Some("MOSTLY_F16"));
        assert_eq!(i.parameter_count, 19);
        assert_eq!(i.tensor_types.get("F32"), Some(&2));
        assert_eq!(i.chat_templates, vec!["tokenizer.chat_template".to_string()]);
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn structural_problems_are_malformed() {
        let mut dup = sample();
        dup.str("general.name", "again");
        let mut bad_align = sample();
        bad_align.u32("general.alignment", 24);
        let mut nested = sample();
        let mut arr = 9u32.to_le_bytes().to_vec();
        arr.extend(1u64.to_le_bytes());
        arr.extend(4u32.to_le_bytes());
        arr.extend(0u64.to_le_bytes());
        nested.raw("x.nested", 9, &arr);
        let mut huge_array = sample();
        let mut arr = 8u32.to_le_bytes().to_vec();
        arr.extend(u64::MAX.to_le_bytes());
        huge_array.raw("x.strings", 9, &arr);
        let mut overflow = sample();
        let mut arr = 10u32.to_le_bytes().to_vec();
        arr.extend((u64::MAX / 4).to_le_bytes());
        overflow.raw("x.u64s", 9, &arr);
        let mut five_dims = sample();
        five_dims.tensor("c", &[1, 1, 1, 1, 1]);
        let mut dup_tensor = sample();
        dup_tensor.tensor("a", &[1]);
        let mut long_name = sample();
        long_name.tensor(&"n".repeat(64), &[1]);
        for (what, g) in [
            ("duplicate key", dup),
            ("alignment", bad_align),
            ("nested", nested),
            ("huge array", huge_array),
            ("overflow", overflow),
            ("dims", five_dims),
            ("dup tensor", dup_tensor),
            ("long name", long_name),
        ] {
            let root = scan_bytes(&g.build(), Options::default());
            assert!(kinds(&root).contains(&NoteKind::GgufMalformed), "{what}: {:?}", root.notes);
        }
        // A wrong offset, a size past the end, absurd counts.
        let mut data = sample().build();
        let good = data.clone();
        data.truncate(data.len() - 40);
        let root = scan_bytes(&data, Options::default());
        assert!(kinds(&root).contains(&NoteKind::GgufMalformed), "{:?}", root.notes);
        let mut counts = good.clone();
        counts[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        let root = scan_bytes(&counts, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::GgufMalformed]);
    }

    #[test]
    fn templates_and_trailing_data() {
        let mut g = sample();
        g.str("tokenizer.chat_template.tool_use", "{{ ''.__class__.__mro__[1].__subclasses__() }}");
        let mut data = g.build();
        let root = scan_bytes(&data, Options::default());
        let dunder = root.notes.iter().find(|n| n.evidence.as_deref() == Some("attribute:__class__"));
        assert!(
            dunder.is_some_and(|n| n.kind == NoteKind::TemplateName && n.offset.is_some()),
            "{:?}",
            root.notes
        );
        data.extend_from_slice(b"\x80\x02cposix\nsystem\nq\x00.");
        let root = scan_bytes(&data, Options::default());
        assert!(kinds(&root).contains(&NoteKind::TrailingData));
    }

    #[test]
    fn every_truncation_is_handled() {
        let data = sample().build();
        // The last tensor (3 floats) is followed by 20 bytes of padding a loader does not need.
        for cut in 4..data.len() {
            let root = scan_bytes(&data[..cut], Options::default());
            assert_eq!(root.size, cut as u64);
            let noted = root.notes.iter().any(|n| n.kind != NoteKind::TemplateName);
            assert!(cut >= data.len() - 20 || noted, "cut at {cut} passes");
        }
        let fwd = crate::scan_reader(&data[..], Options::default()).unwrap();
        assert!(fwd.notes.iter().all(|n| n.kind == NoteKind::TemplateName), "{:?}", fwd.notes);
    }
}
