//! CPython `marshal` data, decoded statically: what a Keras Lambda's bytecode references.
//!
//! Keras stores a Lambda layer's function as `marshal.dumps(func.__code__)`, base64-encoded. The
//! bytecode is never run here; the marshal stream is parsed into its objects, and every code
//! object's `co_names` (the globals and attributes the code looks up: `os`, `system`, `exec`,
//! `__import__`) and constants (command strings, URLs, nested code objects) are listed.
//!
//! The code object layout changed across CPython versions and marshal does not say which one
//! wrote it, so the layout is recognised from the structure itself:
//!
//! | CPython | integer fields before `co_code` | object fields |
//! |---|---|---|
//! | 3.0–3.7 | 5 (argcount, kwonly, nlocals, stacksize, flags) | code, consts, names, varnames, freevars, cellvars, filename, name, *firstlineno*, lnotab |
//! | 3.8–3.10 | 6 (+ posonlyargcount) | as 3.0–3.7 |
//! | 3.11+ | 5 (argcount, posonly, kwonly, stacksize, flags) | code, consts, names, localsplusnames, localspluskinds (bytes), filename, name, qualname, *firstlineno*, linetable, exceptiontable |
//!
//! Six integers put `co_code` (a bytes object) four bytes later than five do; with five, the
//! fifth object is a tuple (3.0–3.7 `freevars`) or bytes (3.11+ `localspluskinds`).
//!
//! Every length is checked against the remaining input before anything is allocated, nesting is
//! bounded, and back-references (`r`) index objects already read, so no input can make the
//! decoder loop, recurse without bound or allocate more than the input's size.

const MAX_DEPTH: u32 = crate::limits::Limits::MARSHAL_DEPTH;
const MAX_LISTED: usize = crate::limits::Limits::MARSHAL_LISTED;
const MAX_CONST_CHARS: usize = crate::limits::Limits::MARSHAL_CONST_CHARS;

const FLAG_REF: u8 = 0x80;

/// What a marshalled code object references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CodeSummary {
    /// The CPython versions whose code-object layout matched.
    pub(crate) python: &'static str,
    /// `co_name` of the outer code object (`<lambda>`).
    pub(crate) name: String,
    /// `co_filename` of the outer code object.
    pub(crate) filename: String,
    /// Every distinct `co_names` entry of the code object and the code objects nested in it.
    pub(crate) names: Vec<String>,
    /// Every distinct string or bytes constant (shortened).
    pub(crate) strings: Vec<String>,
    /// Code objects found (the function and any nested functions, comprehensions).
    pub(crate) code_objects: usize,
}

impl CodeSummary {
    /// Names and constants that say the code reaches outside the model: code execution,
    /// imports, processes, files, the network.
    pub(crate) fn notable(&self) -> Vec<&str> {
        const NAMES: &[&str] = &[
            "exec",
            "eval",
            "compile",
            "__import__",
            "import_module",
            "open",
            "system",
            "popen",
            "Popen",
            "run",
            "call",
            "check_output",
            "spawn",
            "spawnv",
            "execv",
            "execve",
            "fork",
            "os",
            "posix",
            "nt",
            "sys",
            "subprocess",
            "socket",
            "urllib",
            "request",
            "urlopen",
            "requests",
            "http",
            "builtins",
            "__builtins__",
            "getattr",
            "setattr",
            "globals",
            "marshal",
            "pickle",
            "loads",
            "ctypes",
            "shutil",
            "importlib",
            "remove",
            "rmtree",
            "write",
            "read",
            "environ",
            "getenv",
        ];
        let mut out: Vec<&str> = self
            .names
            .iter()
            .map(String::as_str)
            .filter(|n| NAMES.contains(n) || n.starts_with("__") && n.ends_with("__") && n.len() > 4)
            .collect();
        out.extend(self.strings.iter().map(String::as_str).filter(|s| {
            let l = s.to_ascii_lowercase();
            l.contains("://")
                || l.contains("/bin/")
                || l.contains("curl ")
                || l.contains("wget ")
                || l.contains("import ")
                || l.starts_with('/')
        }));
        out
    }

    /// One line for a report: the names and constants.
    pub(crate) fn evidence(&self) -> String {
        let mut parts = vec![format!("names: [{}]", self.names.join(", "))];
        if !self.strings.is_empty() {
            let quoted: Vec<String> = self.strings.iter().map(|s| format!("{s:?}")).collect();
            parts.push(format!("constants: [{}]", quoted.join(", ")));
        }
        parts.join("; ")
    }
}

/// Decodes a marshalled code object.
pub(crate) fn decode_code(data: &[u8]) -> Result<CodeSummary, String> {
    let mut p = Parser { d: data, pos: 0, arena: Vec::new(), refs: Vec::new(), depth: 0, codes: Vec::new() };
    let top = p.object()?;
    let Some(Obj::Code(code)) = p.arena.get(top) else {
        return Err("the data is not a code object".into());
    };
    let mut summary = CodeSummary {
        python: code.python,
        name: p.text(code.name).unwrap_or_default(),
        filename: p.text(code.filename).unwrap_or_default(),
        code_objects: p.codes.len(),
        ..Default::default()
    };
    for &c in &p.codes {
        let Some(Obj::Code(code)) = p.arena.get(c) else {
            continue;
        };
        for n in p.strings_in(code.names, 0) {
            push_unique(&mut summary.names, n);
        }
        for s in p.strings_in(code.consts, 0) {
            let short: String = s.chars().take(MAX_CONST_CHARS).collect();
            push_unique(&mut summary.strings, short);
        }
    }
    Ok(summary)
}

fn push_unique(list: &mut Vec<String>, s: String) {
    if list.len() < MAX_LISTED && !list.contains(&s) {
        list.push(s);
    }
}

/// Standard base64 (`+/`, `=` padding), ignoring whitespace as Python's decoder does for the
/// line-wrapped output of `codecs.encode(…, "base64")`.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut padding = 0;
    for &c in text.as_bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        if padding > 0 {
            return None;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

enum Obj {
    /// A reserved slot not filled yet (a reference to an object still being read).
    Pending,
    Str(String),
    Bytes,
    Tuple(Vec<usize>),
    Code(Code),
    Other,
}

struct Code {
    python: &'static str,
    consts: usize,
    names: usize,
    filename: usize,
    name: usize,
}

struct Parser<'a> {
    d: &'a [u8],
    pos: usize,
    arena: Vec<Obj>,
    /// Back-reference index → arena index.
    refs: Vec<usize>,
    depth: u32,
    /// Arena indices of code objects, outermost first.
    codes: Vec<usize>,
}

impl Parser<'_> {
    fn err(&self, what: &str) -> String {
        format!("{what} at offset {}", self.pos)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.d.len()).ok_or_else(|| self.err("truncated"))?;
        let out = &self.d[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count of objects or bytes that must fit in what is left (each object takes a byte).
    fn count(&mut self, n: usize) -> Result<usize, String> {
        if n > self.d.len() - self.pos {
            return Err(self.err("count beyond the end of the data"));
        }
        Ok(n)
    }

    fn peek_type(&self) -> Option<u8> {
        self.d.get(self.pos).map(|b| b & !FLAG_REF)
    }

    fn object(&mut self) -> Result<usize, String> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.depth += 1;
        let r = self.object_inner();
        self.depth -= 1;
        r
    }

    fn object_inner(&mut self) -> Result<usize, String> {
        let at = self.pos;
        let byte = self.u8()?;
        let (code, flag) = (byte & !FLAG_REF, byte & FLAG_REF != 0);
        if code == b'r' {
            let i = self.u32()? as usize;
            return self
                .refs
                .get(i)
                .copied()
                .ok_or_else(|| format!("reference to object {i} that was never stored at offset {at}"));
        }
        let slot = self.arena.len();
        self.arena.push(Obj::Pending);
        if flag {
            self.refs.push(slot);
        }
        let obj = match code {
            b'0' | b'N' | b'F' | b'T' | b'S' | b'.' => Obj::Other,
            b'i' => {
                self.take(4)?;
                Obj::Other
            }
            b'I' | b'g' => {
                self.take(8)?;
                Obj::Other
            }
            b'y' => {
                self.take(16)?;
                Obj::Other
            }
            b'f' => {
                let n = usize::from(self.u8()?);
                self.take(n)?;
                Obj::Other
            }
            b'x' => {
                for _ in 0..2 {
                    let n = usize::from(self.u8()?);
                    self.take(n)?;
                }
                Obj::Other
            }
            b'l' => {
                let n = self.u32()? as i32;
                let digits = usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX);
                self.take(digits.checked_mul(2).ok_or_else(|| self.err("long too large"))?)?;
                Obj::Other
            }
            b's' => {
                let n = self.u32()? as usize;
                self.take(n)?;
                Obj::Bytes
            }
            b'u' | b't' | b'a' | b'A' => {
                let n = self.u32()? as usize;
                Obj::Str(String::from_utf8_lossy(self.take(n)?).into_owned())
            }
            b'z' | b'Z' => {
                let n = usize::from(self.u8()?);
                Obj::Str(String::from_utf8_lossy(self.take(n)?).into_owned())
            }
            b'(' | b'[' | b'<' | b'>' | b')' => {
                let n = if code == b')' { usize::from(self.u8()?) } else { self.u32()? as usize };
                let n = self.count(n)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.object()?);
                }
                Obj::Tuple(items)
            }
            b'{' => {
                let mut items = Vec::new();
                while self.peek_type() != Some(b'0') {
                    items.push(self.object()?);
                    items.push(self.object()?);
                }
                self.take(1)?;
                Obj::Tuple(items)
            }
            b':' => {
                for _ in 0..3 {
                    self.object()?;
                }
                Obj::Other
            }
            b'c' => {
                self.codes.push(slot);
                Obj::Code(self.code()?)
            }
            other => {
                return Err(format!("unknown marshal type {:?} at offset {at}", char::from(other)));
            }
        };
        self.arena[slot] = obj;
        Ok(slot)
    }

    fn code(&mut self) -> Result<Code, String> {
        let start = self.pos;
        let is_bytes = |p: &Parser<'_>, at: usize| p.d.get(at).map(|b| b & !FLAG_REF) == Some(b's');
        let six = is_bytes(self, start + 24);
        let five = is_bytes(self, start + 20);
        if !six && !five {
            return Err(format!("code object of no known CPython layout at offset {start}"));
        }
        self.take(if six { 24 } else { 20 })?;
        let _bytecode = self.object()?;
        let consts = self.object()?;
        let names = self.object()?;
        let _varnames = self.object()?;
        let fifth_at = self.pos;
        let fifth = self.object()?;
        let python = if six {
            "3.8–3.10"
        } else if matches!(self.arena.get(fifth), Some(Obj::Bytes)) {
            "3.11+"
        } else if matches!(self.arena.get(fifth), Some(Obj::Tuple(_))) {
            "3.0–3.7"
        } else {
            return Err(format!("code object of no known CPython layout at offset {fifth_at}"));
        };
        let (filename, name) = if python == "3.11+" {
            let filename = self.object()?;
            let name = self.object()?;
            let _qualname = self.object()?;
            self.take(4)?;
            let _linetable = self.object()?;
            let _exceptiontable = self.object()?;
            (filename, name)
        } else {
            let _cellvars = self.object()?;
            let filename = self.object()?;
            let name = self.object()?;
            self.take(4)?;
            let _lnotab = self.object()?;
            (filename, name)
        };
        Ok(Code { python, consts, names, filename, name })
    }

    fn text(&self, i: usize) -> Option<String> {
        match self.arena.get(i)? {
            Obj::Str(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// The strings in a tuple (and tuples nested in it), in order.
    fn strings_in(&self, i: usize, depth: u32) -> Vec<String> {
        match self.arena.get(i) {
            Some(Obj::Str(s)) => vec![s.clone()],
            Some(Obj::Tuple(items)) if depth < MAX_DEPTH => {
                items.iter().flat_map(|&j| self.strings_in(j, depth + 1)).collect()
            }
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn base64_with_line_breaks() {
        assert_eq!(base64_decode("aGVs\nbG8=\n").unwrap(), b"hello");
        assert!(base64_decode("a$b").is_none());
    }

    /// `marshal.dumps(compile("__import__('os').system('id')", "<model>", "eval"))` on
    /// CPython 3.11.
    pub(crate) const PY311: &str = "4wAAAAAAAAAAAAAAAAMAAAAAAAAA8z4AAACXAAIAZQBkAKYBAACrAQAAAAAAAAAAoAEAAAAAAAAAAAAAAAAAAAAAAAAAAGQBpgEAAKsBAAAAAAAAAABTACkC2gJvc9oCaWQpAtoKX19pbXBvcnRfX9oGc3lzdGVtqQDzAAAAAPoHPG1vZGVsPvoIPG1vZHVsZT5yCQAAAAEAAABzIwAAAPADAQEB2AAKgAqINNEAENQAENcAF9IAF5gE0QAd1AAd0AAdcgcAAAA=";

    #[test]
    fn decodes_a_cpython_311_code_object() {
        let data = base64_decode(PY311).unwrap();
        let s = decode_code(&data).unwrap();
        assert_eq!(s.python, "3.11+");
        assert_eq!(s.filename, "<model>");
        assert!(s.names.iter().any(|n| n == "__import__"));
        assert!(s.names.iter().any(|n| n == "system"));
        assert!(s.strings.iter().any(|c| c == "os"));
        assert!(s.notable().contains(&"system"));
    }

    #[test]
    fn hostile_input_is_an_error() {
        let data = base64_decode(PY311).unwrap();
        for cut in 0..data.len() {
            let _ = decode_code(&data[..cut]);
        }
        let nested: Vec<u8> = (0..200).flat_map(|_| [b')', 1]).collect();
        assert!(decode_code(&nested).is_err());
        assert!(decode_code(b"r\x05\x00\x00\x00").is_err());
        assert!(decode_code(b"(\xff\xff\xff\xff").is_err());
    }
}
