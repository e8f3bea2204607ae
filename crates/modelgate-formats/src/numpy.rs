//! NumPy `.npy` arrays (`numpy/lib/format.py`).
//!
//! A magic string, a version, a header length, then a Python dict literal giving `descr`,
//! `fortran_order` and `shape`. Plain arrays are followed by `prod(shape) × itemsize` raw bytes;
//! object arrays by a pickle, which `np.load(allow_pickle=True)` unpickles.

use crate::driver::{Driver, How, Rest, child_node, scan_node};
use crate::inventory::{Detail, Node, Note, NoteKind, NumpyHeader, Relation};
use crate::pickle::PickleLoader;
use crate::stream::{HashMode, Stream};

const NUMPY_MAX_HEADER: u64 = crate::limits::Limits::NUMPY_LOADER_HEADER;
const HARD_MAX_HEADER: u64 = crate::limits::Limits::NUMPY_HEADER;

pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let header_start = s.position();
    let Ok(Some(preamble)) = s.read_array::<8>() else {
        node.note(Note::new(NoteKind::Malformed, "truncated .npy preamble").at(header_start));
        return Rest::Drain;
    };
    let (major, minor) = (preamble[6], preamble[7]);
    let header_len = match major {
        1 => s.read_array::<2>().ok().flatten().map(|b| u64::from(u16::from_le_bytes(b))),
        2 | 3 => s.read_array::<4>().ok().flatten().map(|b| u64::from(u32::from_le_bytes(b))),
        _ => {
            node.note(
                Note::new(
                    NoteKind::Malformed,
                    format!(".npy format version {major}.{minor} is not one numpy reads"),
                )
                .at(6),
            );
            return Rest::Drain;
        }
    };
    let Some(header_len) = header_len else {
        node.note(Note::new(NoteKind::Malformed, "truncated .npy header length").at(8));
        return Rest::Drain;
    };
    if header_len > HARD_MAX_HEADER {
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!(
                    ".npy header of {header_len} bytes is far beyond numpy's limit of {NUMPY_MAX_HEADER}"
                ),
            )
            .at(8),
        );
        return Rest::Drain;
    }
    if header_len > NUMPY_MAX_HEADER {
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!(
                    ".npy header of {header_len} bytes exceeds numpy's default limit of {NUMPY_MAX_HEADER}"
                ),
            )
            .at(8),
        );
    }
    let header_at = s.position();
    let raw = match s.read_vec(header_len as usize) {
        Ok(v) if v.len() as u64 == header_len => v,
        _ => {
            node.note(Note::new(NoteKind::Malformed, "the .npy header is cut short").at(header_at));
            return Rest::Drain;
        }
    };
    let text = String::from_utf8_lossy(&raw);
    let parsed = match parse_header(&text) {
        Ok(h) => h,
        Err(why) => {
            node.note(
                Note::new(NoteKind::Malformed, format!("invalid .npy header: {why}"))
                    .at(header_at)
                    .evidence(text.trim().chars().take(200).collect::<String>()),
            );
            return Rest::Drain;
        }
    };
    let header = NumpyHeader {
        version: format!("{major}.{minor}"),
        descr: parsed.descr_text.clone(),
        object: parsed.object,
        shape: parsed.shape.clone(),
        fortran_order: parsed.fortran_order,
    };
    node.detail = Detail::Numpy(header);
    let data_at = s.position();
    if parsed.object {
        // np.load(allow_pickle=True) calls pickle.load once on the rest of the file.
        let child = scan_node(
            Stream::new(s.take_next(u64::MAX), HashMode::Inline),
            ctx,
            child_node("object array pickle".into(), Relation::Embedded, data_at),
            How::Pickle { loader: PickleLoader::NumpyObject, single: true },
        );
        node.children.push(child);
        return Rest::Drain;
    }
    let Some(bytes) = parsed.shape.iter().try_fold(parsed.itemsize, |acc, &d| acc.checked_mul(d)) else {
        node.note(Note::new(NoteKind::Malformed, "the array size overflows 64 bits").at(header_at));
        return Rest::Drain;
    };
    match s.skip(bytes) {
        Ok(got) if got == bytes => Rest::Trailing,
        Ok(got) => {
            node.note(
                Note::new(
                    NoteKind::Malformed,
                    format!("the header promises {bytes} bytes of array data but only {got} follow"),
                )
                .at(data_at),
            );
            Rest::Drain
        }
        Err(e) => {
            node.note(Note::new(NoteKind::Malformed, format!("read error in array data: {e}")).at(data_at));
            Rest::Drain
        }
    }
}

/// The parts of a `.npy` header the scan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) descr_text: String,
    pub(crate) object: bool,
    pub(crate) itemsize: u64,
    pub(crate) shape: Vec<u64>,
    pub(crate) fortran_order: bool,
}

/// Parses the header dict the way `numpy.lib.format` does: exactly the keys `descr`,
/// `fortran_order` and `shape`.
pub(crate) fn parse_header(text: &str) -> Result<Header, String> {
    let mut p = Lit { s: text.as_bytes(), i: 0, depth: 0 };
    let value = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err("unexpected text after the header dict".into());
    }
    let Py::Dict(items) = value else {
        return Err("the header is not a dict".into());
    };
    let mut descr = None;
    let mut fortran = None;
    let mut shape = None;
    for (k, v) in items {
        match k {
            Py::Str(k) if k == "descr" && descr.is_none() => descr = Some(v),
            Py::Str(k) if k == "fortran_order" && fortran.is_none() => fortran = Some(v),
            Py::Str(k) if k == "shape" && shape.is_none() => shape = Some(v),
            other => {
                return Err(format!(
                    "unexpected key {other:?} (numpy accepts only descr, fortran_order, shape)"
                ));
            }
        }
    }
    let (Some(descr), Some(fortran), Some(shape)) = (descr, fortran, shape) else {
        return Err("missing descr, fortran_order or shape".into());
    };
    let Py::Bool(fortran_order) = fortran else {
        return Err("fortran_order is not a bool".into());
    };
    let Py::Tuple(dims) = shape else {
        return Err("shape is not a tuple".into());
    };
    let shape = dims
        .into_iter()
        .map(|d| match d {
            Py::Int(n) if n >= 0 => Ok(n as u64),
            _ => Err("shape holds something other than non-negative ints".to_string()),
        })
        .collect::<Result<Vec<u64>, String>>()?;
    let (itemsize, object) = dtype_of(&descr)?;
    Ok(Header { descr_text: descr.render(), object, itemsize, shape, fortran_order })
}

/// Item size and whether the dtype holds Python objects, from a `descr` value.
fn dtype_of(descr: &Py) -> Result<(u64, bool), String> {
    match descr {
        Py::Str(s) => typestr_size(s),
        Py::List(fields) => {
            let mut size = 0u64;
            let mut object = false;
            for field in fields {
                let Py::Tuple(parts) = field else {
                    return Err("a structured dtype field is not a tuple".into());
                };
                let (fsize, fobj) = match parts.as_slice() {
                    [_, d] => dtype_of(d)?,
                    [_, d, Py::Tuple(sub)] => {
                        let (s, o) = dtype_of(d)?;
                        let n = sub.iter().try_fold(1u64, |acc, x| match x {
                            Py::Int(n) if *n >= 0 => acc.checked_mul(*n as u64),
                            _ => None,
                        });
                        (s.checked_mul(n.ok_or("bad subarray shape")?).ok_or("dtype size overflows")?, o)
                    }
                    _ => return Err("a structured dtype field has the wrong arity".into()),
                };
                size = size.checked_add(fsize).ok_or("dtype size overflows")?;
                object |= fobj;
            }
            Ok((size, object))
        }
        _ => Err("descr is neither a type string nor a field list".into()),
    }
}

/// Item size of an array-protocol type string (`<f4`, `|O`, `<U5`, `|S10`, `<M8[ns]`…).
pub(crate) fn typestr_size(s: &str) -> Result<(u64, bool), String> {
    let body = s.trim_start_matches(['<', '>', '|', '=']);
    let mut chars = body.chars();
    let code = chars.next().ok_or("empty type string")?;
    let rest: String = chars.take_while(|c| c.is_ascii_digit()).collect();
    let n: Option<u64> = rest.parse().ok();
    let size = match code {
        'O' => return Ok((n.unwrap_or(8), true)),
        'b' | '?' => n.unwrap_or(1),
        'i' | 'u' | 'f' | 'c' | 'M' | 'm' | 'V' | 'S' | 'a' => {
            n.ok_or_else(|| format!("type string {s:?} has no size"))?
        }
        'U' => n
            .ok_or_else(|| format!("type string {s:?} has no size"))?
            .checked_mul(4)
            .ok_or("size overflows")?,
        'e' => 2,
        'd' | 'g' => 8,
        _ => return Err(format!("unknown type code in {s:?}")),
    };
    Ok((size, false))
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Debug, Clone, PartialEq)]
enum Py {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Tuple(Vec<Py>),
    List(Vec<Py>),
    Dict(Vec<(Py, Py)>),
}

impl Py {
    fn render(&self) -> String {
        match self {
            Py::Str(s) => format!("'{s}'"),
            Py::Int(i) => i.to_string(),
            Py::Bool(b) => if *b { "True" } else { "False" }.into(),
            Py::None => "None".into(),
            Py::Tuple(v) => format!("({})", v.iter().map(Py::render).collect::<Vec<_>>().join(", ")),
            Py::List(v) => format!("[{}]", v.iter().map(Py::render).collect::<Vec<_>>().join(", ")),
            Py::Dict(v) => format!(
                "{{{}}}",
                v.iter()
                    .map(|(k, v)| format!("{}: {}", k.render(), v.render()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

struct Lit<'a> {
    s: &'a [u8],
    i: usize,
    depth: u32,
}

impl Lit<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Result<Py, String> {
        self.ws();
        self.depth += 1;
        if self.depth > 32 {
            return Err("nested too deeply".into());
        }
        let v = match self.s.get(self.i) {
            Some(b'{') => self.seq(b'}', true).map(|items| Py::Dict(pairs(items))),
            Some(b'(') => {
                self.seq(b')', false).map(|items| Py::Tuple(items.into_iter().map(|(k, _)| k).collect()))
            }
            Some(b'[') => {
                self.seq(b']', false).map(|items| Py::List(items.into_iter().map(|(k, _)| k).collect()))
            }
            Some(b'\'') | Some(b'"') => self.string(),
            Some(c) if c.is_ascii_digit() || *c == b'-' || *c == b'+' => self.int(),
            Some(_) => self.word(),
            None => Err("unexpected end of header".into()),
        };
        self.depth -= 1;
        v
    }

    fn seq(&mut self, close: u8, dict: bool) -> Result<Vec<(Py, Py)>, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.s.get(self.i) == Some(&close) {
                self.i += 1;
                return Ok(out);
            }
            let k = self.value()?;
            let v = if dict {
                self.ws();
                if self.s.get(self.i) != Some(&b':') {
                    return Err("expected ':' in dict".into());
                }
                self.i += 1;
                self.value()?
            } else {
                Py::None
            };
            out.push((k, v));
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(c) if *c == close => {}
                _ => return Err("expected ',' or a closing bracket".into()),
            }
        }
    }

    fn string(&mut self) -> Result<Py, String> {
        let q = self.s[self.i];
        self.i += 1;
        let mut out = Vec::new();
        while let Some(&c) = self.s.get(self.i) {
            self.i += 1;
            if c == q {
                return String::from_utf8(out).map(Py::Str).map_err(|_| "string is not UTF-8".to_string());
            }
            if c == b'\\' {
                let e = *self.s.get(self.i).ok_or("unterminated escape")?;
                self.i += 1;
                out.push(match e {
                    b'n' => b'\n',
                    b't' => b'\t',
                    other => other,
                });
            } else {
                out.push(c);
            }
        }
        Err("unterminated string".into())
    }

    fn int(&mut self) -> Result<Py, String> {
        let start = self.i;
        self.i += 1;
        while self.i < self.s.len() && (self.s[self.i].is_ascii_digit() || self.s[self.i] == b'L') {
            self.i += 1;
        }
        let text =
            std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?.trim_end_matches('L');
        text.parse::<i64>().map(Py::Int).map_err(|_| format!("bad integer {text:?}"))
    }

    fn word(&mut self) -> Result<Py, String> {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphabetic() {
            self.i += 1;
        }
        match &self.s[start..self.i] {
            b"True" => Ok(Py::Bool(true)),
            b"False" => Ok(Py::Bool(false)),
            b"None" => Ok(Py::None),
            _ => Err("unexpected token".into()),
        }
    }
}

fn pairs(items: Vec<(Py, Py)>) -> Vec<(Py, Py)> {
    items
}

/// NumPy's `.npz` layout: a zip whose members are all `.npy` arrays (src/layout.rs).
pub(crate) struct NpzLayout;

impl crate::layout::ArchiveLayout for NpzLayout {
    fn name(&self) -> &'static str {
        "numpy-npz"
    }

    fn classify(&self, names: &[&str]) -> Option<crate::inventory::Format> {
        (!names.is_empty() && names.iter().all(|n| n.to_ascii_lowercase().ends_with(".npy")))
            .then_some(crate::inventory::Format::NumpyNpz)
    }

    fn open(
        &self,
        _format: crate::inventory::Format,
        _names: &[&str],
    ) -> Option<Box<dyn crate::layout::LayoutReader>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_parse_like_numpy() {
        let h =
            parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }          \n").unwrap();
        assert_eq!((h.itemsize, h.object, h.shape.clone()), (4, false, vec![3, 4]));
        let h = parse_header("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }").unwrap();
        assert!(h.object);
        let h = parse_header("{'descr': [('a', '<f4'), ('o', '|O'), ('s', '<i2', (3,))], 'fortran_order': True, 'shape': (), }").unwrap();
        assert_eq!((h.itemsize, h.object, h.fortran_order), (4 + 8 + 6, true, true));
        assert_eq!(
            parse_header("{'descr': '<U5', 'fortran_order': False, 'shape': (1,)}").unwrap().itemsize,
            20
        );
        assert!(parse_header("{'descr': '<f4', 'shape': (1,)}").is_err());
        assert!(parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}").is_err());
        assert!(parse_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}").is_err());
        assert!(parse_header(&"(".repeat(100)).is_err());
    }
}
