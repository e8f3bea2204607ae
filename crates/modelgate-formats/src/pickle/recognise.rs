//! Recognising pickles that carry no marker (docs/formats.md, "Recognition").
//!
//! Two helpers for the sniffer and the scan driver:
//!
//! - [`runs_past_window`]: the trial parse stopped because an opcode's argument goes on past the
//!   bytes it was given. That is no evidence against a pickle (CPython reads any length), so the
//!   stream stays a pickle candidate.
//! - [`import_forms`]: where text or unrecognised bytes hold the import opcodes an unpickler would
//!   run (`c<module>\n<name>\n`, `i<module>\n<name>\n`, or two string operands and
//!   STACK_GLOBAL). A hit is parsed from there, so that a pickle our parser rejects earlier in the
//!   stream than CPython does is still seen.

use super::opcodes::{Arg, Len, Op};

/// True when the opcode at `offset` has an argument that starts inside `head` and ends beyond
/// it: a line with no newline before the end of `head`, or a counted string whose length ends
/// past `head` but within the whole stream — `total` when known; when it is not (a decompressed
/// stream, whose length shows only at its end), within [`UNKNOWN_TOTAL_PLAUSIBLE`]: the caller
/// passes a full window, so at least that much follows and a joblib `.gz` of a pickle led by a
/// long string is still a pickle candidate.
pub(crate) fn runs_past_window(head: &[u8], offset: usize, total: Option<u64>) -> bool {
    let Some(op) = head.get(offset).and_then(|&b| Op::from_byte(b)) else {
        return false;
    };
    let rest = &head[offset + 1..];
    let width = match op.arg() {
        Arg::Line => return !rest.contains(&b'\n'),
        Arg::TwoLines => return rest.iter().filter(|&&b| b == b'\n').count() < 2,
        Arg::Counted(Len::U1) | Arg::Long1 => 1,
        Arg::Counted(Len::I4 | Len::U4) | Arg::Long4 => 4,
        Arg::Counted(Len::U8) => 8,
        Arg::None | Arg::U1 | Arg::U2 | Arg::I4 | Arg::U4 | Arg::U8 | Arg::F8 => return false,
    };
    let Some(len_bytes) = rest.get(..width) else {
        return true;
    };
    let mut buf = [0u8; 8];
    buf[..width].copy_from_slice(len_bytes);
    let len = u64::from_le_bytes(buf);
    let end = (offset as u64 + 1 + width as u64).saturating_add(len);
    end > head.len() as u64 && end <= total.unwrap_or(UNKNOWN_TOTAL_PLAUSIBLE)
}

/// The longest first argument believed of a stream of unknown length (64 GiB): beyond it, a
/// length field is more likely noise than a string a pickler wrote.
pub(crate) const UNKNOWN_TOTAL_PLAUSIBLE: u64 = 1 << 36;

/// One place in a byte string where an unpickler would import something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImportForm {
    /// Offset of the opcode that starts the import (GLOBAL, INST, or the first string operand of
    /// STACK_GLOBAL).
    pub(crate) offset: usize,
    /// True for INST, which needs a MARK before it.
    pub(crate) inst: bool,
}

const STACK_GLOBAL: u8 = 0x93;
const MEMOIZE: u8 = 0x94;
const BINPUT: u8 = b'q';

const MAX_NAME: usize = crate::limits::Limits::PICKLE_NAME;

/// Every import form in `data`, in order. `start` is where an earlier call left off (the search
/// runs over chunks); forms that begin before it are not reported.
pub(crate) fn import_forms(data: &[u8], start: usize) -> Vec<ImportForm> {
    let mut out = Vec::new();
    let mut i = start;
    while i < data.len() {
        let b = data[i];
        if (b == b'c' || b == b'i')
            && let Some(end) = dotted_line(data, i + 1)
            && dotted_line(data, end).is_some()
        {
            out.push(ImportForm { offset: i, inst: b == b'i' });
        } else if b == STACK_GLOBAL
            && let Some(at) = stack_global_operands(data, i)
        {
            out.push(ImportForm { offset: at, inst: false });
        }
        i += 1;
    }
    out.sort_by_key(|f| f.offset);
    out.dedup();
    out
}

/// A `\n`-terminated dotted Python identifier starting at `at`; returns the offset after the
/// newline.
fn dotted_line(data: &[u8], at: usize) -> Option<usize> {
    let rest = data.get(at..)?;
    let nl = rest.iter().take(MAX_NAME + 1).position(|&b| b == b'\n')?;
    is_dotted(&rest[..nl]).then_some(at + nl + 1)
}

fn is_dotted(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.').all(|part| {
            part.first().is_some_and(|&c| c == b'_' || c.is_ascii_alphabetic())
                && part.iter().all(|&c| c == b'_' || c.is_ascii_alphanumeric())
        })
}

/// The STACK_GLOBAL at `at` with two string operands right before it (each possibly followed by
/// a memo store): the offset of the first operand.
fn stack_global_operands(data: &[u8], at: usize) -> Option<usize> {
    let name = string_ending_at(data, skip_memo_back(data, at))?;
    let module = string_ending_at(data, skip_memo_back(data, name))?;
    Some(module)
}

/// `end` minus a MEMOIZE or BINPUT just before it.
fn skip_memo_back(data: &[u8], end: usize) -> usize {
    if end >= 1 && data[end - 1] == MEMOIZE {
        return end - 1;
    }
    if end >= 2 && data[end - 2] == BINPUT {
        return end - 2;
    }
    end
}

/// The start of a string opcode holding a dotted identifier that ends exactly at `end`.
fn string_ending_at(data: &[u8], end: usize) -> Option<usize> {
    for len in 1..=MAX_NAME.min(end) {
        let c = data[end - len];
        if !(c == b'_' || c == b'.' || c.is_ascii_alphanumeric()) {
            break;
        }
        let body = &data[end - len..end];
        if !is_dotted(body) {
            continue;
        }
        let before = end - len;
        // SHORT_BINUNICODE / SHORT_BINSTRING / SHORT_BINBYTES: opcode, one-byte length.
        if before >= 2
            && matches!(data[before - 2], 0x8c | b'U' | b'C')
            && usize::from(data[before - 1]) == len
        {
            return Some(before - 2);
        }
        // BINUNICODE / BINSTRING / BINBYTES: opcode, four-byte length.
        if before >= 5
            && matches!(data[before - 5], b'X' | b'T' | b'B')
            && u32::from_le_bytes([data[before - 4], data[before - 3], data[before - 2], data[before - 1]])
                as usize
                == len
        {
            return Some(before - 5);
        }
    }
    // UNICODE `V<name>\n` or STRING `S'<name>'\n`: the opcode is somewhere in the last line.
    if end >= 2 && data[end - 1] == b'\n' {
        let line_start = data[..end - 1].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        let line = &data[line_start..end - 1];
        let lowest = line.len().saturating_sub(MAX_NAME + 3);
        for i in (lowest..line.len()).rev() {
            let body = &line[i + 1..];
            let quoted = body.len() >= 3
                && matches!(body[0], b'\'' | b'"')
                && body[body.len() - 1] == body[0]
                && is_dotted(&body[1..body.len() - 1]);
            if (line[i] == b'V' && is_dotted(body)) || (line[i] == b'S' && quoted) {
                return Some(line_start + i);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_import_spelling() {
        let forms = |d: &[u8]| import_forms(d, 0).iter().map(|f| (f.offset, f.inst)).collect::<Vec<_>>();
        assert_eq!(forms(b"xx cos\nsystem\n(S'id'\ntR."), [(3, false)]);
        assert_eq!(forms(b"(S'id'\nios\nsystem\n."), [(7, true)]);
        assert_eq!(forms(b"\x8c\x02os\x94\x8c\x06system\x94\x93."), [(0, false)]);
        assert_eq!(forms(b"X\x02\x00\x00\x00osX\x06\x00\x00\x00system\x93"), [(0, false)]);
        assert_eq!(forms(b"Vos\nVsystem\n\x93"), [(0, false)]);
        assert_eq!(forms(b"S'os'\nq\x00S'system'\n\x93"), [(0, false)]);
        // Not imports: names that no import system accepts, a missing second line.
        assert!(forms(b"class Net(Module):\n    pass\n").is_empty());
        assert!(forms(b"cos\n").is_empty());
        assert!(forms(b"\x93\x93").is_empty());
    }

    #[test]
    fn arguments_running_past_the_window() {
        assert!(runs_past_window(b"S'aaaa", 0, None));
        assert!(!runs_past_window(b"S'aa'\n", 0, None));
        assert!(runs_past_window(b"cos\nsys", 0, None));
        // BINSTRING of 16 bytes in a 10-byte window: only if the stream is that long.
        let head = b"T\x10\x00\x00\x00abcde";
        assert!(runs_past_window(head, 0, Some(100)));
        assert!(!runs_past_window(head, 0, Some(12)));
        // A stream of unknown length (decompressed): a plausible length is believed…
        assert!(runs_past_window(head, 0, None));
        // …a length of more than 64 GiB is not.
        assert!(!runs_past_window(b"\x8e\xff\xff\xff\xff\xff\xff\xff\x7fab", 0, None));
        assert!(!runs_past_window(b"N", 0, None));
    }
}
