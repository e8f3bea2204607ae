//! TensorFlow Lite flatbuffers (`TFL3`): the operator codes a model needs.
//!
//! `Model` (the root table) field 1 is `operator_codes`, a vector of `OperatorCode` tables:
//! `0 deprecated_builtin_code: i8`, `1 custom_code: string`, `2 version`, `3 builtin_code: i32`;
//! the effective builtin code is the larger of the two (TFLite's `GetBuiltinCode`), and 32 is
//! `CUSTOM`. Custom operators need a kernel the application registers; `Flex<Op>` ones run the
//! full TensorFlow kernel of `<Op>` through the Select delegate, so a Flex file-I/O op is also a
//! TensorFlow I/O op.
//!
//! The flatbuffer is read through random access (the file's window, or the stream buffered up
//! to `max_in_memory`): only the root table, the vector and each operator code are read, every
//! offset and length bounds-checked, the number of operator codes capped.

use crate::container::buffer_for_random_access;
use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, GraphInventory, Node, Note, NoteKind};
use crate::stream::{Stream, Window};

/// `BuiltinOperator.CUSTOM`.
const CUSTOM: i32 = 32;

/// The name of a builtin operator code (`support/tflite_ops.py` writes the table from the
/// schema TensorFlow ships, one `code name` line each, codes 0..n in order).
fn builtin_name(code: i32) -> Option<&'static str> {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        include_str!("../data/tflite-builtin-ops.txt")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(' ').map(|(_, name)| name))
            .collect()
    });
    usize::try_from(code).ok().and_then(|i| names.get(i).copied())
}
const MAX_OPCODES: u32 = crate::limits::Limits::TFLITE_OPCODES;
const MAX_NAME: u32 = crate::limits::Limits::TFLITE_NAME;

pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let buffered;
    let window = match s.window() {
        Some(w) => w,
        None => {
            let Some(data) = buffer_for_random_access(s, ctx, node, "a TFLite model") else {
                return Rest::Drain;
            };
            buffered = data;
            Window::from_slice(&buffered)
        }
    };
    let mut inv = GraphInventory::default();
    match operator_codes(&Fb { w: window }) {
        Ok(codes) => judge(&codes, node, &mut inv),
        Err(e) => node.note(Note::new(
            NoteKind::Malformed,
            format!("the TFLite flatbuffer is invalid ({e}); the interpreter cannot load it"),
        )),
    }
    node.detail = Detail::Graph(Box::new(inv));
    Rest::Drain
}

/// An operator code: the builtin code and, for custom ops, the name.
struct OpCode {
    builtin: i32,
    custom: Option<String>,
}

fn judge(codes: &[OpCode], node: &mut Node, inv: &mut GraphInventory) {
    inv.fact("operator_codes", codes.len().to_string());
    for code in codes {
        match (&code.custom, code.builtin) {
            (Some(name), CUSTOM) => {
                inv.count(&format!("CUSTOM({name})"));
                let flex = name.strip_prefix("Flex");
                let what = match flex {
                    Some(op) => format!(
                        "Flex op {name}: the TensorFlow Select delegate runs TensorFlow's {op} kernel"
                    ),
                    None => {
                        format!("custom op {name}: it needs a kernel the application registers")
                    }
                };
                node.note(Note::new(NoteKind::TfliteCustomOp, what).evidence(name.clone()));
                if let Some(kind) = flex.and_then(crate::savedmodel::op_kind) {
                    node.note(
                        Note::new(
                            kind,
                            format!(
                                "Flex op {name} runs TensorFlow's {} op, which reaches outside the model",
                                flex.unwrap_or("")
                            ),
                        )
                        .evidence(name.clone()),
                    );
                }
            }
            (_, CUSTOM) => {
                inv.count("CUSTOM(?)");
                node.note(Note::new(
                    NoteKind::TfliteCustomOp,
                    "custom op without a name: the interpreter cannot resolve it",
                ));
            }
            (_, b) => match builtin_name(b) {
                Some(name) => inv.count(name),
                None => inv.count(&format!("BUILTIN({b})")),
            },
        }
    }
}

/// Bounds-checked little-endian reads of a flatbuffer.
struct Fb<'a> {
    w: Window<'a>,
}

type FbResult<T> = Result<T, String>;

impl Fb<'_> {
    fn bytes<const N: usize>(&self, at: u64) -> FbResult<[u8; N]> {
        let mut b = [0u8; N];
        self.w.read_exact_at(at, &mut b).map_err(|_| format!("read of {N} bytes at {at} is past the end"))?;
        Ok(b)
    }

    fn u32(&self, at: u64) -> FbResult<u32> {
        self.bytes::<4>(at).map(u32::from_le_bytes)
    }

    fn i32(&self, at: u64) -> FbResult<i32> {
        self.bytes::<4>(at).map(i32::from_le_bytes)
    }

    fn u16(&self, at: u64) -> FbResult<u16> {
        self.bytes::<2>(at).map(u16::from_le_bytes)
    }

    /// Follows the unsigned offset stored at `at`.
    fn deref(&self, at: u64) -> FbResult<u64> {
        let off = self.u32(at)?;
        at.checked_add(u64::from(off))
            .filter(|&p| p < self.w.len())
            .ok_or_else(|| format!("offset at {at} points past the end"))
    }

    /// Where field `index` of the table at `table` is stored, if present.
    fn field(&self, table: u64, index: u16) -> FbResult<Option<u64>> {
        let soff = i64::from(self.i32(table)?);
        let vtable = u64::try_from(i64::try_from(table).unwrap_or(i64::MAX) - soff)
            .map_err(|_| format!("vtable of the table at {table} is before the start"))?;
        let vsize = self.u16(vtable)?;
        let slot = 4 + 2 * u64::from(index);
        if slot + 2 > u64::from(vsize) {
            return Ok(None);
        }
        let off = self.u16(vtable + slot)?;
        Ok((off != 0).then(|| table + u64::from(off)))
    }

    fn string(&self, at: u64) -> FbResult<String> {
        let start = self.deref(at)?;
        let len = self.u32(start)?.min(MAX_NAME);
        let mut buf = vec![0u8; len as usize];
        self.w
            .read_exact_at(start + 4, &mut buf)
            .map_err(|_| format!("string at {start} runs past the end"))?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

fn operator_codes(fb: &Fb<'_>) -> FbResult<Vec<OpCode>> {
    let root = fb.deref(0)?;
    let Some(codes_at) = fb.field(root, 1)? else {
        return Ok(Vec::new());
    };
    let vector = fb.deref(codes_at)?;
    let n = fb.u32(vector)?;
    if n > MAX_OPCODES {
        return Err(format!("{n} operator codes (more than {MAX_OPCODES})"));
    }
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..u64::from(n) {
        let table = fb.deref(vector + 4 + 4 * i)?;
        let deprecated = match fb.field(table, 0)? {
            Some(at) => i32::from(fb.bytes::<1>(at)?[0] as i8),
            None => 0,
        };
        let builtin = match fb.field(table, 3)? {
            Some(at) => fb.i32(at)?,
            None => 0,
        };
        let custom = match fb.field(table, 1)? {
            Some(at) => Some(fb.string(at)?),
            None => None,
        };
        out.push(OpCode { builtin: builtin.max(deprecated), custom });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_codes_have_their_schema_names() {
        let table = include_str!("../data/tflite-builtin-ops.txt");
        assert!(table.starts_with("# TensorFlow 2."));
        for (i, line) in table.lines().filter(|l| !l.starts_with('#')).enumerate() {
            assert!(line.starts_with(&format!("{i} ")), "line for code {i} is {line:?}");
        }
        assert_eq!(builtin_name(0), Some("ADD"));
        assert_eq!(builtin_name(3), Some("CONV_2D"));
        assert_eq!(builtin_name(9), Some("FULLY_CONNECTED"));
        assert_eq!(builtin_name(CUSTOM), Some("CUSTOM"));
        assert_eq!(builtin_name(-1), None);
        assert_eq!(builtin_name(100_000), None);
    }
}
