//! Number syntax of the text opcodes (INT, LONG, FLOAT, GET, PUT) as CPython's unpickler parses
//! it (docs/formats.md, "Recognition").
//!
//! `pickle.load` is the C unpickler (`Modules/_pickle.c`); `dill` and code that subclasses
//! `pickle._Unpickler` run the pure-Python one (`Lib/pickle.py`). A literal either accepts is
//! accepted here, so that no stream a loader runs is cut short by a stricter parser:
//!
//! - INT: C calls `strtol(s, &end, 0)` (leading whitespace, a sign, `0x`, and C's octal `010`) and
//!   falls back to `int(s, 0)`; `I00`/`I01` (exactly two digits) are `False`/`True`. Python calls
//!   `int(line, 0)`.
//! - LONG: one trailing `L` is dropped, then `int(s, 0)` in both.
//! - FLOAT: C calls `PyOS_string_to_double` (no whitespace, no underscores, `inf`/`nan`, and an
//!   overflow raises); Python calls `float(line[:-1])`, which also takes whitespace and
//!   underscores.
//! - GET/PUT: `int(s, 10)` in both; PUT refuses a negative key.
//!
//! `int()` itself (`PyLong_FromString`) skips surrounding whitespace, takes one sign, a base prefix
//! when the base is 0 (`0x`, `0o`, `0b`, any case) and single underscores between digits (and
//! after the prefix); with base 0 a decimal literal may not have a leading zero unless it is all
//! zeros.

use super::opcodes::Op;
use super::value::Value;

/// The value an INT, LONG or FLOAT opcode pushes for its line (without the newline); `None` when
/// the unpickler raises.
pub(crate) fn number_opcode(op: Op, line: &[u8]) -> Option<Value> {
    let int = |i: PyInt| match i {
        PyInt::Small(v) => Value::Int(v),
        PyInt::Big => Value::BigInt(None),
    };
    match op {
        Op::INT => int_opcode(line).map(|r| r.map_or_else(Value::Bool, int)),
        Op::LONG => long_opcode(line).map(int),
        _ => float_opcode(line).map(Value::Float),
    }
}

/// A parsed Python integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PyInt {
    /// Fits in 64 bits.
    Small(i64),
    /// Larger; the value is not kept.
    Big,
}

/// Python's `str.isspace` for ASCII (what `int()` and `float()` strip).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn trim(t: &[u8]) -> &[u8] {
    let start = t.iter().position(|&b| !is_space(b)).unwrap_or(t.len());
    let end = t.iter().rposition(|&b| !is_space(b)).map_or(start, |i| i + 1);
    &t[start..end.max(start)]
}

/// `int(text, base)` for base 0 or 10.
pub(crate) fn py_int(text: &[u8], base0: bool) -> Option<PyInt> {
    let t = trim(text);
    let (neg, t) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, body, prefixed) = if base0 && t.len() >= 2 && t[0] == b'0' {
        match t[1].to_ascii_lowercase() {
            b'x' => (16, &t[2..], true),
            b'o' => (8, &t[2..], true),
            b'b' => (2, &t[2..], true),
            _ => (10, t, false),
        }
    } else {
        (10, t, false)
    };
    // Underscores: single, between digits, or right after a base prefix.
    let body = if prefixed { body.strip_prefix(b"_").unwrap_or(body) } else { body };
    if body.is_empty() || body[0] == b'_' || body[body.len() - 1] == b'_' {
        return None;
    }
    let mut digits = Vec::with_capacity(body.len());
    let mut prev_us = false;
    for &b in body {
        if b == b'_' {
            if prev_us {
                return None;
            }
            prev_us = true;
            continue;
        }
        prev_us = false;
        if !(b as char).is_digit(radix) {
            return None;
        }
        digits.push(b);
    }
    if base0 && radix == 10 && digits.len() > 1 && digits[0] == b'0' && digits.iter().any(|&d| d != b'0') {
        // `int("010", 0)` is a SyntaxError-like ValueError: no C-style octal.
        return None;
    }
    let text = std::str::from_utf8(&digits).ok()?;
    Some(match i64::from_str_radix(text, radix) {
        Ok(v) => PyInt::Small(if neg { v.wrapping_neg() } else { v }),
        // `-9223372036854775808` overflows as a positive number first.
        Err(_) if neg && u64::from_str_radix(text, radix) == Ok(1 << 63) => PyInt::Small(i64::MIN),
        Err(_) => PyInt::Big,
    })
}

/// C's `strtol(s, &end, 0)` where `end` must reach the end of the line. `None` when it stops
/// early or overflows (the C unpickler then tries `int(s, 0)`).
fn strtol0(text: &[u8]) -> Option<i64> {
    let start = text.iter().position(|&b| !is_space(b))?;
    let mut t = &text[start..];
    let neg = match t.first() {
        Some(b'-') => {
            t = &t[1..];
            true
        }
        Some(b'+') => {
            t = &t[1..];
            false
        }
        _ => false,
    };
    let (radix, digits) = if t.len() > 2 && t[0] == b'0' && t[1].eq_ignore_ascii_case(&b'x') {
        (16, &t[2..])
    } else if t.len() > 1 && t[0] == b'0' {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() || !digits.iter().all(|&b| (b as char).is_digit(radix)) {
        return None;
    }
    let v = i64::from_str_radix(std::str::from_utf8(digits).ok()?, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// What an INT opcode's line (without its newline) pushes: `Some(Err(bool))` for `I00`/`I01`,
/// `Some(Ok(int))` otherwise, `None` when both unpicklers raise.
pub(crate) fn int_opcode(line: &[u8]) -> Option<Result<PyInt, bool>> {
    if let Some(v) = strtol0(line) {
        if line.len() == 2 && (v == 0 || v == 1) {
            return Some(Err(v == 1));
        }
        return Some(Ok(PyInt::Small(v)));
    }
    py_int(line, true).map(Ok)
}

/// What a LONG opcode's line (without its newline) pushes; `None` when the unpickler raises.
pub(crate) fn long_opcode(line: &[u8]) -> Option<PyInt> {
    let line = line.strip_suffix(b"L").unwrap_or(line);
    py_int(line, true)
}

/// A memo key of GET or PUT (`int(s, 10)`); `None` when the unpickler raises.
pub(crate) fn memo_key(line: &[u8]) -> Option<PyInt> {
    py_int(line, false)
}

/// What a FLOAT opcode's line (without its newline) pushes; `None` when both unpicklers raise.
pub(crate) fn float_opcode(line: &[u8]) -> Option<f64> {
    let t = trim(line);
    // Python's float() removes single underscores between digits; C's parser allows none (so
    // this is the union of both).
    let mut clean = Vec::with_capacity(t.len());
    for (i, &b) in t.iter().enumerate() {
        if b == b'_' {
            let between =
                i > 0 && t[i - 1].is_ascii_digit() && t.get(i + 1).is_some_and(|n| n.is_ascii_digit());
            if !between {
                return None;
            }
            continue;
        }
        clean.push(b);
    }
    let s = std::str::from_utf8(&clean).ok()?;
    let (sign, body) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "infinity" => return Some(sign * f64::INFINITY),
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    // Only the characters Python's grammar has: Rust's parser also takes "infinity" spellings
    // handled above, and nothing else beyond the decimal grammar.
    if body.is_empty()
        || !body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    body.parse::<f64>().ok().map(|v| sign * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_follows_python_int() {
        for (text, v) in [
            ("42", 42),
            (" 42 ", 42),
            ("+7", 7),
            ("-0x10", -16),
            ("0X_1f", 31),
            ("0o17", 15),
            ("0b101", 5),
            ("1_000", 1000),
            ("000", 0),
            ("0_0", 0),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(py_int(text.as_bytes(), true), Some(PyInt::Small(v)), "{text}");
        }
        for text in ["", "_1", "1_", "1__0", "010", "0x", "1 2", "abc", "0b2", "+-1", "١"] {
            assert_eq!(py_int(text.as_bytes(), true), None, "{text}");
        }
        assert_eq!(py_int(b"123456789012345678901234567890", true), Some(PyInt::Big));
        // Base 10 (GET/PUT): leading zeros are fine, prefixes are not.
        assert_eq!(memo_key(b"007"), Some(PyInt::Small(7)));
        assert_eq!(memo_key(b"0_1"), Some(PyInt::Small(1)));
        assert_eq!(memo_key(b"\t1\x0c"), Some(PyInt::Small(1)));
        assert_eq!(memo_key(b"0x1"), None);
    }

    #[test]
    fn int_opcode_is_strtol_then_int() {
        assert_eq!(int_opcode(b"00"), Some(Err(false)));
        assert_eq!(int_opcode(b"01"), Some(Err(true)));
        assert_eq!(int_opcode(b"1"), Some(Ok(PyInt::Small(1))));
        assert_eq!(int_opcode(b"001"), Some(Ok(PyInt::Small(1))));
        // strtol's octal, which int(s, 0) refuses.
        assert_eq!(int_opcode(b"010"), Some(Ok(PyInt::Small(8))));
        assert_eq!(int_opcode(b" -5"), Some(Ok(PyInt::Small(-5))));
        assert_eq!(int_opcode(b"1_0"), Some(Ok(PyInt::Small(10))));
        assert_eq!(int_opcode(b"0b11"), Some(Ok(PyInt::Small(3))));
        assert_eq!(int_opcode(b"99999999999999999999"), Some(Ok(PyInt::Big)));
        assert_eq!(int_opcode(b"think"), None);
        assert_eq!(long_opcode(b"12L"), Some(PyInt::Small(12)));
        assert_eq!(long_opcode(b"1_2"), Some(PyInt::Small(12)));
        assert_eq!(long_opcode(b"12LL"), None);
    }

    #[test]
    fn float_is_the_union_of_both_parsers() {
        assert_eq!(float_opcode(b"1.5"), Some(1.5));
        assert_eq!(float_opcode(b" 1.5 "), Some(1.5));
        assert_eq!(float_opcode(b"1_0.5"), Some(10.5));
        assert_eq!(float_opcode(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(float_opcode(b"Infinity"), Some(f64::INFINITY));
        assert!(float_opcode(b"nan").is_some_and(f64::is_nan));
        assert_eq!(float_opcode(b"1e5"), Some(1e5));
        assert_eq!(float_opcode(b".5"), Some(0.5));
        assert_eq!(float_opcode(b"5."), Some(5.0));
        for bad in ["", "abc", "1__0", "_1", "1_", "1.5x", "0x10", "in f"] {
            assert_eq!(float_opcode(bad.as_bytes()), None, "{bad}");
        }
    }
}
