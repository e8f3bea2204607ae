//! tar archives, read forward the way Python's `tarfile` reads them (what torch's legacy loader
//! and NeMo use), and no less leniently.
//!
//! Headers are 512-byte blocks: ustar, GNU (long names and links, old sparse files), pax
//! (extended and global records, path/linkpath/size overrides) and v7. Numbers are parsed like
//! `tarfile.nti` (octal with Python's `int()` leniency, or base-256), the checksum is accepted
//! signed or unsigned. Every regular-file member is scanned by content as a child; directories,
//! links and devices have no data (Python ignores their size field, and so does this reader).
//!
//! Where readers disagree, the scan follows Python and records the disagreement: an invalid header
//! ends Python's listing silently (or fails the open), while GNU tar skips to the next valid
//! header; this reader notes the invalid header, scans the bytes up to the next valid header by
//! content, and goes on listing. The first zero block ends the archive; zero padding after it is
//! consumed and anything else is trailing data.
//!
//! The oldest `torch.save` format is a tar with members `sys_info`, `pickle`, `storages` and
//! `tensors`; when the member list says so, those members are read the way
//! `torch.serialization._legacy_load` reads them ([`super::torch_tar`]).

use super::torch_tar::{self, LegacyMember, LegacyState};
use super::unsafe_path;
use crate::driver::{Driver, How, Rest, child_node, scan_node};
use crate::inventory::{Format, Node, Note, NoteKind, Relation, Role};
use crate::stream::{HashMode, Stream, Window};
use std::collections::HashMap;
use std::io::{self, Read};

const BLOCK: usize = 512;
const BLOCK_U64: u64 = BLOCK as u64;
const MAX_META: usize = crate::limits::Limits::TAR_META;
const MAX_NAME: usize = crate::limits::Limits::TAR_NAME;
const MAX_META_CHAIN: usize = crate::limits::Limits::TAR_META_CHAIN;
const MAX_BAD_HEADERS: u32 = crate::limits::Limits::TAR_BAD_HEADERS;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular file (or a type Python extracts as one): its data follows the header.
    File,
    Dir,
    Symlink,
    Hardlink,
    Device,
    Fifo,
}

/// One archive entry, with its extended headers applied.
#[derive(Debug)]
struct Entry {
    /// Offset of its first header (extended headers included).
    header_at: u64,
    name: String,
    name_has_nul: bool,
    link: String,
    kind: Kind,
    typeflag: u8,
    /// Bytes of data that follow the headers (what a reader skips to reach the next header).
    data_len: u64,
    /// The size field of an entry whose data Python does not skip (directories, links…).
    ignored_size: u64,
    /// Anomalies seen while reading its headers.
    notes: Vec<Note>,
}

/// What the next header block holds.
#[derive(Debug)]
enum Event {
    Entry(Entry),
    /// A zero block: the end-of-archive marker.
    End,
    /// No bytes at all where a header should start.
    Eof,
    /// Fewer than 512 bytes where a header should be.
    Truncated {
        at: u64,
    },
    /// An invalid header; `chained` when it follows an extended header (Python then raises).
    Bad {
        at: u64,
        why: String,
        chained: bool,
    },
}

/// Where header blocks come from: the forward stream, or random access for the pre-listing.
trait Source {
    fn position(&self) -> u64;
    /// Reads one block; the count is below 512 only at the end.
    fn block(&mut self, out: &mut [u8; BLOCK]) -> io::Result<usize>;
    /// Skips `n` bytes; returns how many there were.
    fn skip(&mut self, n: u64) -> io::Result<u64>;
    /// Reads `n` bytes keeping the first `keep`; returns them and how many bytes there were.
    fn read_kept(&mut self, n: u64, keep: usize) -> io::Result<(Vec<u8>, u64)>;
}

impl Source for Stream<'_> {
    fn position(&self) -> u64 {
        Stream::position(self)
    }
    fn block(&mut self, out: &mut [u8; BLOCK]) -> io::Result<usize> {
        let avail = self.peek(BLOCK)?;
        let n = avail.len();
        out[..n].copy_from_slice(avail);
        self.consume_buffered(n);
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        Stream::skip(self, n)
    }
    fn read_kept(&mut self, n: u64, keep: usize) -> io::Result<(Vec<u8>, u64)> {
        self.read_prefix_skip_rest(n, keep)
    }
}

/// Random access over a window, for listing the members before the forward pass.
struct WindowSource<'w> {
    w: Window<'w>,
    pos: u64,
}

impl Source for WindowSource<'_> {
    fn position(&self) -> u64 {
        self.pos
    }
    fn block(&mut self, out: &mut [u8; BLOCK]) -> io::Result<usize> {
        let n = (self.w.len().saturating_sub(self.pos)).min(BLOCK_U64) as usize;
        self.w.read_exact_at(self.pos, &mut out[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
    fn skip(&mut self, n: u64) -> io::Result<u64> {
        let n = n.min(self.w.len().saturating_sub(self.pos));
        self.pos += n;
        Ok(n)
    }
    fn read_kept(&mut self, n: u64, keep: usize) -> io::Result<(Vec<u8>, u64)> {
        let avail = n.min(self.w.len().saturating_sub(self.pos));
        let k = (keep as u64).min(avail) as usize;
        let mut kept = vec![0; k];
        self.w.read_exact_at(self.pos, &mut kept)?;
        self.pos += avail;
        Ok((kept, avail))
    }
}

/// Pax records that apply to every later member (`g` headers).
#[derive(Debug, Default, Clone)]
struct Pax {
    path: Option<String>,
    linkpath: Option<String>,
    size: Option<u64>,
    sparse_name: Option<String>,
    /// A GNU sparse 1.0 member: its data starts with a sparse map.
    sparse_10: bool,
    sparse_major: Option<String>,
    sparse_minor: Option<String>,
    /// A name was cut to [`MAX_NAME`] bytes.
    truncated: bool,
}

impl Pax {
    fn merge(&mut self, other: &Pax) {
        if other.path.is_some() {
            self.path.clone_from(&other.path);
        }
        if other.linkpath.is_some() {
            self.linkpath.clone_from(&other.linkpath);
        }
        if other.size.is_some() {
            self.size = other.size;
        }
        if other.sparse_name.is_some() {
            self.sparse_name.clone_from(&other.sparse_name);
        }
        if other.sparse_major.is_some() {
            self.sparse_major.clone_from(&other.sparse_major);
        }
        if other.sparse_minor.is_some() {
            self.sparse_minor.clone_from(&other.sparse_minor);
        }
        self.sparse_10 =
            self.sparse_major.as_deref() == Some("1") && self.sparse_minor.as_deref() == Some("0");
    }
}

/// Parsing state carried from header to header.
#[derive(Default)]
struct Reader {
    global: Pax,
}

/// The fields of one header block.
struct Header {
    name: Vec<u8>,
    link: Vec<u8>,
    prefix: Vec<u8>,
    typeflag: u8,
    size: i128,
    /// Old GNU sparse: extension blocks follow.
    sparse_extended: bool,
}

/// A meta header's effect on the entry that follows it.
enum Meta {
    LongName(Vec<u8>),
    LongLink(Vec<u8>),
    Pax(Pax),
}

impl Reader {
    /// Reads the next entry (with its extended headers) from `src`.
    fn next(&mut self, src: &mut dyn Source) -> io::Result<Event> {
        let first_at = src.position();
        let mut metas: Vec<Meta> = Vec::new();
        let mut notes = Vec::new();
        loop {
            let at = src.position();
            let chained = !metas.is_empty() || at != first_at;
            let mut buf = [0u8; BLOCK];
            let n = src.block(&mut buf)?;
            if n < BLOCK {
                return Ok(match (n, chained) {
                    (0, false) => Event::Eof,
                    (_, false) => Event::Truncated { at },
                    _ => Event::Bad { at, why: "the archive ends after an extended header".into(), chained },
                });
            }
            if buf.iter().all(|&b| b == 0) {
                if chained {
                    return Ok(Event::Bad {
                        at,
                        why: "an end-of-archive block follows an extended header".into(),
                        chained,
                    });
                }
                return Ok(Event::End);
            }
            let header = match parse_header(&buf) {
                Ok(h) => h,
                Err(why) => return Ok(Event::Bad { at, why, chained }),
            };
            if header.size < 0 {
                return Ok(Event::Bad { at, why: format!("negative size {}", header.size), chained });
            }
            let size = u64::try_from(header.size).unwrap_or(u64::MAX);
            match header.typeflag {
                b'L' | b'K' | b'x' | b'X' | b'g' => {
                    if metas.len() >= MAX_META_CHAIN {
                        return Ok(Event::Bad {
                            at,
                            why: format!(
                                "more than {MAX_META_CHAIN} extended headers in front of one member (Python's tarfile fails on long chains)"
                            ),
                            chained: true,
                        });
                    }
                    let padded = block_round(size);
                    let keep = match header.typeflag {
                        b'L' | b'K' => MAX_NAME,
                        _ => MAX_META,
                    };
                    let (kept, got) = src.read_kept(padded, keep)?;
                    if got < padded {
                        return Ok(Event::Bad {
                            at,
                            why: "the archive ends inside an extended header".into(),
                            chained: true,
                        });
                    }
                    if size > keep as u64 {
                        notes.push(
                            Note::new(
                                NoteKind::LimitExceeded,
                                format!(
                                    "an extended header of {size} bytes; only the first {keep} were read"
                                ),
                            )
                            .at(at),
                        );
                    }
                    let data = &kept[..kept.len().min(usize::try_from(size).unwrap_or(usize::MAX))];
                    match header.typeflag {
                        b'L' => metas.push(Meta::LongName(nts(data).to_vec())),
                        b'K' => metas.push(Meta::LongLink(nts(data).to_vec())),
                        flag => {
                            let records = match parse_pax(data) {
                                Ok(r) => r,
                                Err(why) => {
                                    return Ok(Event::Bad { at, why, chained: at != first_at });
                                }
                            };
                            if records.truncated {
                                notes.push(
                                    Note::new(
                                        NoteKind::LimitExceeded,
                                        format!("a pax name longer than {MAX_NAME} bytes was truncated"),
                                    )
                                    .at(at),
                                );
                            }
                            if flag == b'g' {
                                if records.size.is_some() {
                                    notes.push(
                                        Note::new(
                                            NoteKind::ArchiveHeaderMismatch,
                                            "a global pax header overrides the size of every later member; tar readers disagree on where their data ends",
                                        )
                                        .at(at),
                                    );
                                }
                                self.global.merge(&records);
                            } else {
                                // The local records apply on top of the global ones as they
                                // stand now.
                                let mut local = self.global.clone();
                                local.merge(&records);
                                metas.push(Meta::Pax(local));
                            }
                        }
                    }
                    continue;
                }
                _ => {}
            }
            return Ok(Event::Entry(self.entry(src, first_at, header, size, metas, notes)?));
        }
    }

    /// Builds the entry from its main header and the extended headers in front of it, the way
    /// `tarfile` patches a `TarInfo` (the first extended header wins).
    fn entry(
        &mut self,
        src: &mut dyn Source,
        header_at: u64,
        header: Header,
        size: u64,
        metas: Vec<Meta>,
        mut notes: Vec<Note>,
    ) -> io::Result<Entry> {
        let mut typeflag = header.typeflag;
        if typeflag == 0 && header.name.ends_with(b"/") {
            // v7 tar: a directory is a regular file whose name ends with '/'.
            typeflag = b'5';
        }
        let kind = match typeflag {
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'1' => Kind::Hardlink,
            b'3' | b'4' => Kind::Device,
            b'6' => Kind::Fifo,
            _ => Kind::File,
        };
        let mut name = header.name.clone();
        if kind == Kind::Dir {
            strip_slashes(&mut name);
        }
        if !header.prefix.is_empty() && !matches!(typeflag, b'L' | b'K' | b'S') {
            let mut joined = header.prefix.clone();
            joined.push(b'/');
            joined.extend_from_slice(&name);
            name = joined;
        }
        let mut link = header.link.clone();
        // Global pax records apply first, at the member's own header.
        let global = self.global.clone();
        apply_pax(&global, &mut name, &mut link);
        let mut extraction_size = global.size;
        let mut stepping_size = size;
        let mut sparse_10 = global.sparse_10;
        // Then the extended headers, innermost first, so that the first one wins.
        for meta in metas.iter().rev() {
            match meta {
                Meta::LongName(n) => {
                    name.clone_from(n);
                    if kind == Kind::Dir && name.ends_with(b"/") {
                        name.pop();
                    }
                }
                Meta::LongLink(l) => link.clone_from(l),
                Meta::Pax(pax) => {
                    apply_pax(pax, &mut name, &mut link);
                    if let Some(s) = pax.size {
                        stepping_size = s;
                        extraction_size = Some(s);
                    }
                    sparse_10 |= pax.sparse_10;
                }
            }
        }
        if kind == Kind::Dir {
            strip_slashes(&mut name);
        }
        // Old GNU sparse files: extension blocks of sparse maps follow the header.
        if typeflag == b'S' && header.sparse_extended {
            loop {
                let at = src.position();
                let mut ext = [0u8; BLOCK];
                if src.block(&mut ext)? < BLOCK {
                    notes.push(
                        Note::new(NoteKind::ArchiveMalformed, "the archive ends inside a sparse-file header")
                            .at(at),
                    );
                    break;
                }
                if ext[504] == 0 {
                    break;
                }
            }
        }
        let data_follows = kind == Kind::File;
        if extraction_size.is_some_and(|s| s != stepping_size) && data_follows {
            notes.push(
                Note::new(
                    NoteKind::ArchiveHeaderMismatch,
                    format!(
                        "the member's data spans {stepping_size} bytes but a pax record says {}; readers disagree on its content",
                        extraction_size.unwrap_or(0)
                    ),
                )
                .at(header_at),
            );
        }
        if sparse_10 && data_follows {
            notes.push(
                Note::new(
                    NoteKind::ArchiveOpaque,
                    "a GNU sparse 1.0 member: its data starts with a sparse map and has holes; it was scanned as stored, so its content may not be recognised",
                )
                .at(header_at),
            );
        }
        let name_has_nul = name.contains(&0);
        Ok(Entry {
            header_at,
            name: String::from_utf8_lossy(&name).into_owned(),
            name_has_nul,
            link: String::from_utf8_lossy(&link).into_owned(),
            kind,
            typeflag,
            data_len: if data_follows { stepping_size } else { 0 },
            ignored_size: if data_follows { 0 } else { size },
            notes,
        })
    }
}

fn strip_slashes(name: &mut Vec<u8>) {
    while name.last() == Some(&b'/') {
        name.pop();
    }
}

fn apply_pax(pax: &Pax, name: &mut Vec<u8>, link: &mut Vec<u8>) {
    if let Some(n) = &pax.sparse_name {
        *name = n.as_bytes().to_vec();
    }
    if let Some(p) = &pax.path {
        *name = p.trim_end_matches('/').as_bytes().to_vec();
    }
    if let Some(l) = &pax.linkpath {
        *link = l.as_bytes().to_vec();
    }
}

/// Rounds up to whole blocks.
fn block_round(n: u64) -> u64 {
    n.div_ceil(BLOCK_U64).saturating_mul(BLOCK_U64)
}

/// The bytes up to the first NUL (`tarfile.nts`).
fn nts(field: &[u8]) -> &[u8] {
    match field.iter().position(|&b| b == 0) {
        Some(i) => &field[..i],
        None => field,
    }
}

/// Whitespace as Python's `str.strip()` sees it (ASCII range).
fn py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// Python's `int(text, radix)` for radix 8 or 10: surrounding whitespace, a sign, a `0o` prefix
/// (radix 8), underscores between digits. Saturates instead of growing without bound.
fn py_int(text: &[u8], radix: u32) -> Option<i128> {
    let mut t = text;
    while let [first, rest @ ..] = t {
        if !py_space(*first) {
            break;
        }
        t = rest;
    }
    while let [rest @ .., last] = t {
        if !py_space(*last) {
            break;
        }
        t = rest;
    }
    let negative = match t.first() {
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
    let mut prefixed = false;
    if radix == 8 && t.len() >= 2 && t[0] == b'0' && (t[1] == b'o' || t[1] == b'O') {
        t = &t[2..];
        prefixed = true;
    }
    if t.is_empty() {
        return None;
    }
    let mut value: i128 = 0;
    let mut last_digit = false;
    for (i, &b) in t.iter().enumerate() {
        if b == b'_' {
            // One underscore between digits (or right after the prefix).
            if !(last_digit || (i == 0 && prefixed)) {
                return None;
            }
            last_digit = false;
            continue;
        }
        let d = char::from(b).to_digit(radix)?;
        value = value.saturating_mul(i128::from(radix)).saturating_add(i128::from(d));
        last_digit = true;
    }
    if !last_digit {
        return None;
    }
    Some(if negative { -value } else { value })
}

/// `tarfile.nti`: a numeric header field, octal text or base-256.
fn nti(field: &[u8]) -> Result<i128, String> {
    match field.first() {
        Some(0o200) | Some(0o377) => {
            let mut n: i128 = 0;
            for &b in &field[1..] {
                n = n.checked_mul(256).ok_or("a base-256 number overflows")? + i128::from(b);
            }
            if field[0] == 0o377 {
                let modulus =
                    1i128.checked_shl(8 * (field.len() as u32 - 1)).ok_or("a base-256 number overflows")?;
                n -= modulus;
            }
            Ok(n)
        }
        _ => {
            let text = nts(field);
            if !text.is_ascii() {
                return Err("a number field holds non-ASCII bytes".into());
            }
            if text.iter().all(|&b| py_space(b)) {
                return Ok(0);
            }
            py_int(text, 8).ok_or_else(|| {
                format!("a number field holds {:?}", String::from_utf8_lossy(text).into_owned())
            })
        }
    }
}

/// Parses and checks one header block (`TarInfo.frombuf`).
fn parse_header(buf: &[u8; BLOCK]) -> Result<Header, String> {
    let stored = nti(&buf[148..156]).map_err(|e| format!("checksum field: {e}"))?;
    let mut unsigned: i128 = 256;
    let mut signed: i128 = 256;
    for (i, &b) in buf.iter().enumerate() {
        if !(148..156).contains(&i) {
            unsigned += i128::from(b);
            signed += i128::from(b as i8);
        }
    }
    if stored != unsigned && stored != signed {
        return Err(format!("bad checksum (stored {stored}, computed {unsigned})"));
    }
    for (what, range) in [
        ("mode", 100..108),
        ("uid", 108..116),
        ("gid", 116..124),
        ("mtime", 136..148),
        ("devmajor", 329..337),
        ("devminor", 337..345),
    ] {
        nti(&buf[range]).map_err(|e| format!("{what} field: {e}"))?;
    }
    let size = nti(&buf[124..136]).map_err(|e| format!("size field: {e}"))?;
    Ok(Header {
        name: nts(&buf[..100]).to_vec(),
        link: nts(&buf[157..257]).to_vec(),
        prefix: nts(&buf[345..500]).to_vec(),
        typeflag: buf[156],
        size,
        sparse_extended: buf[482] != 0,
    })
}

/// Parses pax records (`"%d %s=%s\n"`) as Python 3.11's `_proc_pax` does.
fn parse_pax(buf: &[u8]) -> Result<Pax, String> {
    let invalid = |pos: usize| format!("invalid pax record at byte {pos}");
    let mut pax = Pax::default();
    let mut pos = 0usize;
    while pos < buf.len() && buf[pos] != 0 {
        let digits = buf[pos..].iter().take(21).take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 || buf.get(pos + digits) != Some(&b' ') {
            return Err(invalid(pos));
        }
        let length: usize = std::str::from_utf8(&buf[pos..pos + digits])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| invalid(pos))?;
        if length < 5 || pos.checked_add(length).is_none_or(|end| end > buf.len()) {
            return Err(invalid(pos));
        }
        let end = pos + length - 1;
        let body_start = pos + digits + 1;
        if body_start > end || buf[end] != b'\n' {
            return Err(invalid(pos));
        }
        let body = &buf[body_start..end];
        let eq = body.iter().position(|&b| b == b'=').ok_or_else(|| invalid(pos))?;
        if eq == 0 {
            return Err(invalid(pos));
        }
        let keyword = &body[..eq];
        let raw = &body[eq + 1..];
        if raw.len() > MAX_NAME && matches!(keyword, b"path" | b"linkpath" | b"GNU.sparse.name") {
            pax.truncated = true;
        }
        let value = String::from_utf8_lossy(&raw[..raw.len().min(MAX_NAME)]).into_owned();
        match keyword {
            b"path" => pax.path = Some(value),
            b"linkpath" => pax.linkpath = Some(value),
            b"size" => {
                // `int(value)`; tarfile uses 0 when that fails.
                let n = py_int(value.as_bytes(), 10).unwrap_or(0);
                pax.size = Some(u64::try_from(n.max(0)).unwrap_or(u64::MAX));
            }
            b"GNU.sparse.name" => pax.sparse_name = Some(value),
            b"GNU.sparse.major" => pax.sparse_major = Some(value),
            b"GNU.sparse.minor" => pax.sparse_minor = Some(value),
            _ => {}
        }
        pos += length;
    }
    pax.sparse_10 = pax.sparse_major.as_deref() == Some("1") && pax.sparse_minor.as_deref() == Some("0");
    Ok(pax)
}

/// Lists the names Python's `tarfile` would see, through random access (to recognise the legacy
/// torch layout before reading the members). `None` when the listing stops at a limit.
fn list_names(w: Window<'_>, max_members: u64) -> Option<Vec<String>> {
    let mut src = WindowSource { w, pos: 0 };
    let mut reader = Reader::default();
    let mut names = Vec::new();
    loop {
        match reader.next(&mut src).ok()? {
            Event::Entry(e) => {
                if names.len() as u64 >= max_members {
                    return None;
                }
                names.push(e.name);
                let padded = block_round(e.data_len);
                if src.skip(padded).ok()? < padded {
                    return Some(names);
                }
            }
            _ => return Some(names),
        }
    }
}

/// Scans a tar archive: every regular member by content.
pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let start = s.position();
    // With random access, decide the legacy torch layout from the whole listing first; reading
    // forward only, from the members seen so far.
    let listed = s
        .window()
        .and_then(|w| w.sub(start, w.len().saturating_sub(start)))
        .and_then(|w| list_names(w, ctx.limits().max_members));
    let legacy_listed = listed.as_deref().map(torch_tar::is_legacy_layout);
    let mut legacy = LegacyState::default();
    let mut reader = Reader::default();
    let mut seen: HashMap<String, u64> = HashMap::new();
    // Members Python's tarfile lists (it stops at the first invalid header).
    let mut visible: Vec<(String, u64)> = Vec::new();
    let mut python_visible = true;
    let mut members = 0u64;
    let mut bad_headers = 0u32;
    let rest = loop {
        let event = match reader.next(s) {
            Ok(e) => e,
            Err(e) => {
                node.note(Note::new(NoteKind::ArchiveMalformed, format!("read error: {e}")).at(s.position()));
                break Rest::Drain;
            }
        };
        match event {
            Event::Eof => {
                // Writers always end an archive with zero blocks; without them it was most
                // likely cut short at a member boundary (which readers accept silently).
                node.note(
                    Note::new(
                        NoteKind::ArchiveMalformed,
                        "the archive has no end-of-archive marker: it ends right after a member, as if truncated there (Python's tarfile and GNU tar accept it silently)",
                    )
                    .at(s.position()),
                );
                break Rest::Drain;
            }
            Event::End => {
                // Zero padding to the end of the record is part of the archive.
                loop {
                    match s.peek(BLOCK) {
                        Ok(b) if !b.is_empty() && b.iter().all(|&x| x == 0) => {
                            let n = b.len();
                            s.consume_buffered(n);
                        }
                        _ => break,
                    }
                }
                break Rest::Trailing;
            }
            Event::Truncated { at } => {
                node.note(
                    Note::new(
                        NoteKind::ArchiveMalformed,
                        "the archive ends inside a header block (truncated)",
                    )
                    .at(at),
                );
                break Rest::Drain;
            }
            Event::Bad { at, why, chained } => {
                bad_headers += 1;
                if bad_headers > MAX_BAD_HEADERS {
                    node.note(
                        Note::new(
                            NoteKind::LimitExceeded,
                            format!("more than {MAX_BAD_HEADERS} invalid tar headers; the rest of the archive was not inspected"),
                        )
                        .at(at),
                    );
                    break Rest::Drain;
                }
                let consequence = if chained || at == start {
                    "Python's tarfile raises ReadError (torch and NeMo cannot read the archive)"
                } else {
                    "Python's tarfile (torch, NeMo) silently stops listing here and never sees what follows"
                };
                node.note(
                    Note::new(
                        NoteKind::ArchiveMalformed,
                        format!("invalid tar header at offset {at} ({why}); {consequence}, while GNU tar skips to the next valid header; the rest was scanned like GNU tar reads it"),
                    )
                    .at(at),
                );
                python_visible = false;
                resync(s, ctx, node);
                continue;
            }
            Event::Entry(e) => {
                members += 1;
                if members > ctx.limits().max_members {
                    node.note(
                        Note::new(
                            NoteKind::LimitExceeded,
                            format!(
                                "more than {} members; the rest of the archive was not inspected",
                                ctx.limits().max_members
                            ),
                        )
                        .at(e.header_at),
                    );
                    break Rest::Drain;
                }
                for note in &e.notes {
                    node.note(note.clone());
                }
                check_entry(node, &e, &mut seen);
                let role = if python_visible {
                    let prior = || visible.iter().map(|(n, _)| n.as_str());
                    let layout =
                        legacy_listed.unwrap_or_else(|| prior().all(|n| torch_tar::member(n).is_some()));
                    layout.then(|| torch_tar::member(&e.name)).flatten()
                } else {
                    None
                };
                if python_visible {
                    visible.push((e.name.clone(), e.header_at));
                }
                if e.kind != Kind::File {
                    continue;
                }
                if !read_member(s, ctx, node, &e, role, &mut legacy) {
                    break Rest::Drain;
                }
            }
        }
    };
    let names: Vec<&str> = visible.iter().map(|(n, _)| n.as_str()).collect();
    if torch_tar::is_legacy_layout(&names) {
        node.format = Format::PytorchLegacyTar;
        for (name, at) in &visible {
            if torch_tar::member(name).is_none() {
                node.note(
                    Note::new(
                        NoteKind::TorchUnexpectedMember,
                        format!("member {name} is not part of the legacy PyTorch tar layout; torch.load ignores it, other tools may not"),
                    )
                    .at(*at)
                    .evidence(name.clone()),
                );
            }
        }
        legacy.finish(node);
    }
    rest
}

/// Notes about an entry's name and type.
fn check_entry(node: &mut Node, e: &Entry, seen: &mut HashMap<String, u64>) {
    let at = e.header_at;
    if e.kind != Kind::Dir {
        let folded = e.name.to_ascii_lowercase();
        match seen.get(&folded) {
            Some(&prev) => node.note(
                Note::new(
                    NoteKind::ArchiveDuplicateName,
                    format!("two members named {} (at offsets {prev} and {at}); Python's tarfile and extraction take the last one, other readers may not", e.name),
                )
                .at(at)
                .evidence(e.name.clone()),
            ),
            None => {
                seen.insert(folded, at);
            }
        }
    }
    let mode = match e.kind {
        Kind::Symlink => Some(0o120_000),
        _ => None,
    };
    if let Some(why) = unsafe_path(&e.name, mode) {
        let why = if e.kind == Kind::Symlink { format!("{why}, pointing to {:?}", e.link) } else { why };
        node.note(
            Note::new(NoteKind::ArchiveUnsafePath, format!("member {}: {why}", e.name))
                .at(at)
                .evidence(e.name.clone()),
        );
    } else if e.kind == Kind::Hardlink {
        node.note(
            Note::new(
                NoteKind::ArchiveUnsafePath,
                format!("member {}: a hard link to {:?} (extraction links or copies another file; readers that follow it read that file's data)", e.name, e.link),
            )
            .at(at)
            .evidence(e.name.clone()),
        );
    }
    if e.kind == Kind::Device {
        node.note(
            Note::new(
                NoteKind::ArchiveUnsafePath,
                format!(
                    "member {}: a {} device node",
                    e.name,
                    if e.typeflag == b'3' { "character" } else { "block" }
                ),
            )
            .at(at)
            .evidence(e.name.clone()),
        );
    }
    if e.name_has_nul {
        node.note(
            Note::new(NoteKind::ArchiveUnsafePath, format!("member name {:?} contains a NUL byte", e.name))
                .at(at)
                .evidence(e.name.clone()),
        );
    }
    if e.ignored_size > 0 {
        node.note(
            Note::new(
                NoteKind::ArchiveHiddenData,
                format!("member {} is not a regular file but declares {} bytes of data; Python's tarfile reads the next header right after it, GNU tar skips the data (except for directories)", e.name, e.ignored_size),
            )
            .at(at)
            .evidence(e.name.clone()),
        );
    }
}

/// Scans one member's data and consumes its padding. False when the archive ends early.
fn read_member(
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    e: &Entry,
    role: Option<LegacyMember>,
    legacy: &mut LegacyState,
) -> bool {
    let data_at = s.position();
    let window = s.window().and_then(|w| w.sub(data_at, e.data_len));
    let mut child = child_node(e.name.clone(), Relation::Member, e.header_at);
    let mut stream = Stream::new(s.take_next(e.data_len), HashMode::Inline);
    if let Some(w) = window {
        stream = stream.with_window(w);
    }
    let child = match role {
        Some(which) => {
            child.role = Some(match which {
                LegacyMember::SysInfo => Role::LoaderRecord,
                _ => Role::LoaderPickle,
            });
            torch_tar::scan_member(stream, ctx, child, which, legacy)
        }
        None => scan_node(stream, ctx, child, How::Sniff),
    };
    node.children.push(child);
    let got = s.position().saturating_sub(data_at);
    if got < e.data_len {
        node.note(
            Note::new(
                NoteKind::ArchiveMalformed,
                format!(
                    "member {}: the archive ends inside its data ({got} of {} bytes; truncated)",
                    e.name, e.data_len
                ),
            )
            .at(e.header_at)
            .evidence(e.name.clone()),
        );
        return false;
    }
    let pad = block_round(e.data_len) - e.data_len;
    if s.skip(pad).ok() != Some(pad) {
        node.note(
            Note::new(
                NoteKind::ArchiveMalformed,
                format!("member {}: the archive ends inside the padding after its data (truncated; Python's tarfile raises 'unexpected end of data')", e.name),
            )
            .at(e.header_at)
            .evidence(e.name.clone()),
        );
        return false;
    }
    true
}

/// After an invalid header: scans the bytes up to the next valid header (or the end) by content,
/// as one child, so that nothing a lenient reader might extract goes unseen.
fn resync(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) {
    let at = s.position();
    if is_boundary(s) {
        return;
    }
    let child = scan_node(
        Stream::new(Resync { s: &mut *s, pending: 0, done: false }, HashMode::Inline),
        ctx,
        child_node(format!("data after the invalid header, at offset {at}"), Relation::Trailing, at),
        How::Sniff,
    );
    node.children.push(child);
}

/// True where a header, the end-of-archive marker or the end of the data starts.
fn is_boundary(s: &mut Stream<'_>) -> bool {
    match s.peek(BLOCK) {
        Ok(b) if b.len() == BLOCK => {
            let mut block = [0u8; BLOCK];
            block.copy_from_slice(b);
            block.iter().all(|&x| x == 0) || parse_header(&block).is_ok()
        }
        Ok(b) => b.is_empty(),
        Err(_) => true,
    }
}

/// Reads whole blocks until the next valid header block.
struct Resync<'s, 'a> {
    s: &'s mut Stream<'a>,
    pending: usize,
    done: bool,
}

impl Read for Resync<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending == 0 {
            if self.done || is_boundary(self.s) {
                self.done = true;
                return Ok(0);
            }
            let avail = self.s.peek(BLOCK)?.len();
            if avail < BLOCK {
                self.done = true;
            }
            self.pending = avail;
        }
        let n = buf.len().min(self.pending);
        let got = self.s.read(&mut buf[..n])?;
        if got == 0 {
            self.done = true;
            self.pending = 0;
        }
        self.pending -= got.min(self.pending);
        Ok(got)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::container::compress::tests::{EVIL, robustness};
    use crate::{Limits, Options, scan_bytes};

    /// Builds tar archives byte by byte, the way Python's tarfile writes them.
    pub(crate) struct TarBuilder {
        pub(crate) out: Vec<u8>,
    }

    pub(crate) fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[157..157 + link.len()].copy_from_slice(link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        set_checksum(&mut h);
        h
    }

    pub(crate) fn set_checksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    impl TarBuilder {
        pub(crate) fn new() -> TarBuilder {
            TarBuilder { out: Vec::new() }
        }
        pub(crate) fn raw(&mut self, h: [u8; BLOCK], data: &[u8]) -> &mut Self {
            self.out.extend_from_slice(&h);
            self.out.extend_from_slice(data);
            let pad = block_round(data.len() as u64) as usize - data.len();
            self.out.extend(std::iter::repeat_n(0u8, pad));
            self
        }
        pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> &mut Self {
            self.raw(header(name.as_bytes(), b'0', data.len() as u64, b""), data)
        }
        pub(crate) fn entry(&mut self, name: &str, typeflag: u8, link: &str) -> &mut Self {
            self.raw(header(name.as_bytes(), typeflag, 0, link.as_bytes()), b"")
        }
        pub(crate) fn pax(&mut self, records: &[(&str, &str)]) -> &mut Self {
            let mut body = Vec::new();
            for (k, v) in records {
                let rest = format!(" {k}={v}\n");
                let mut len = rest.len() + 1;
                while format!("{len}").len() + rest.len() != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len}{rest}").as_bytes());
            }
            self.raw(header(b"././@PaxHeader", b'x', body.len() as u64, b""), &body)
        }
        pub(crate) fn finish(&mut self) -> Vec<u8> {
            self.out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
            // Pad to a 10 KiB record, like tarfile.
            let record = 20 * BLOCK;
            let pad = (record - self.out.len() % record) % record;
            self.out.extend(std::iter::repeat_n(0u8, pad));
            std::mem::take(&mut self.out)
        }
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    fn globals(node: &Node) -> Vec<String> {
        node.pickle().map(|p| p.globals.iter().map(|g| g.qualified()).collect()).unwrap_or_default()
    }

    fn child<'n>(node: &'n Node, name: &str) -> &'n Node {
        node.children.iter().find(|c| c.name == name).unwrap_or_else(|| {
            panic!("no child {name}: {:?}", node.children.iter().map(|c| &c.name).collect::<Vec<_>>())
        })
    }

    fn scan_forward(data: &[u8]) -> Node {
        // Without random access, as inside a compressed stream.
        crate::scan_reader(data, Options::default()).expect("in-memory read")
    }

    #[test]
    fn members_are_scanned_by_content() {
        let data = TarBuilder::new()
            .entry("model", b'5', "")
            .file("model/weights.bin", &[1, 2, 3, 4])
            .file("model/config.p", EVIL)
            .finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Tar);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(root.size, data.len() as u64);
        assert_eq!(root.children.len(), 2);
        let p = child(&root, "model/config.p");
        assert_eq!(p.relation, Some(Relation::Member));
        assert_eq!(p.parent_offset, Some(1536));
        assert_eq!(p.size, EVIL.len() as u64);
        assert_eq!(globals(p), vec!["posix.system".to_string()]);
        assert_eq!(child(&root, "model/weights.bin").size, 4);
    }

    #[test]
    fn unsafe_paths_links_and_duplicates_are_noted() {
        let data = TarBuilder::new()
            .file("../evil", b"x")
            .file("/etc/cron.d/x", b"y")
            .entry("link", b'2', "/etc/passwd")
            .entry("hard", b'1', "../evil")
            .file("a.txt", b"1")
            .file("A.TXT", b"2")
            .finish();
        let root = scan_bytes(&data, Options::default());
        let unsafe_notes: Vec<&Note> =
            root.notes.iter().filter(|n| n.kind == NoteKind::ArchiveUnsafePath).collect();
        let evidence: Vec<&str> = unsafe_notes.iter().filter_map(|n| n.evidence.as_deref()).collect();
        assert_eq!(evidence, vec!["../evil", "/etc/cron.d/x", "link", "hard"]);
        assert!(unsafe_notes[2].detail.contains("symbolic link"));
        assert!(kinds(&root).contains(&NoteKind::ArchiveDuplicateName));
        // Links have no data; the two regular files and the two text files are children.
        assert_eq!(root.children.len(), 4);
    }

    #[test]
    fn pax_and_gnu_long_names_apply() {
        let long = format!("{}/payload.pkl", "d".repeat(150));
        let gnu_long = format!("{}/gnu.pkl", "g".repeat(120));
        let mut b = TarBuilder::new();
        b.pax(&[("path", &long), ("mtime", "1.5")]);
        b.file("short", EVIL);
        b.raw(
            header(b"././@LongLink", b'L', gnu_long.len() as u64 + 1, b""),
            format!("{gnu_long}\0").as_bytes(),
        );
        b.file("ignored", b"data");
        // A pax path that climbs out.
        b.pax(&[("path", "../../escape")]);
        b.file("innocent", b"z");
        let data = b.finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(globals(child(&root, &long)), vec!["posix.system".to_string()]);
        assert_eq!(child(&root, &gnu_long).size, 4);
        assert!(
            root.notes
                .iter()
                .any(|n| n.kind == NoteKind::ArchiveUnsafePath
                    && n.evidence.as_deref() == Some("../../escape"))
        );
        assert_eq!(root.children.len(), 3);
    }

    #[test]
    fn pax_size_overrides_the_header() {
        let mut b = TarBuilder::new();
        b.pax(&[("size", &EVIL.len().to_string())]);
        // The header says 0 bytes; the pax record says where the data really ends.
        b.raw(header(b"p", b'0', 0, b""), EVIL);
        b.file("after", b"ok");
        let data = b.finish();
        let root = scan_bytes(&data, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(globals(child(&root, "p")), vec!["posix.system".to_string()]);
        assert_eq!(child(&root, "after").size, 2);
    }

    #[test]
    fn a_truncated_archive_keeps_what_came_before() {
        let data = TarBuilder::new().file("first.pkl", EVIL).file("second", &[7u8; 2000]).finish();
        let cut = &data[..1024 + 512 + 700];
        let root = scan_bytes(cut, Options::default());
        assert!(kinds(&root).contains(&NoteKind::ArchiveMalformed), "{:?}", root.notes);
        assert_eq!(globals(child(&root, "first.pkl")), vec!["posix.system".to_string()]);
        assert_eq!(child(&root, "second").size, 700);
        assert_eq!(root.size, cut.len() as u64);
        // Cut inside a header.
        let root = scan_bytes(&data[..1024 + 100], Options::default());
        assert!(kinds(&root).contains(&NoteKind::ArchiveMalformed));
        assert_eq!(root.children.len(), 1);
        // Cut at a member boundary: only the missing end-of-archive marker tells.
        let root = scan_bytes(&data[..1024], Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::ArchiveMalformed]);
        assert_eq!(root.notes[0].offset, Some(1024));
        assert_eq!(root.children.len(), 1);
    }

    #[test]
    fn a_bad_checksum_is_malformed_and_the_rest_still_scanned() {
        let mut b = TarBuilder::new();
        b.file("good", b"1");
        let mut bad = header(b"hidden.pkl", b'0', EVIL.len() as u64, b"");
        bad[148] = b'7';
        b.raw(bad, EVIL);
        b.file("after.pkl", EVIL);
        let data = b.finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::ArchiveMalformed]);
        assert_eq!(root.notes[0].offset, Some(1024));
        // The data behind the bad header, then the next valid member.
        assert_eq!(root.children.len(), 3);
        assert_eq!(root.children[1].relation, Some(Relation::Trailing));
        assert_eq!(globals(&root.children[1]), vec!["posix.system".to_string()]);
        assert_eq!(globals(child(&root, "after.pkl")), vec!["posix.system".to_string()]);
    }

    #[test]
    fn data_after_the_end_marker_is_trailing() {
        let mut data = TarBuilder::new().file("a", b"1").finish();
        let end = data.len() as u64;
        data.extend_from_slice(EVIL);
        let root = scan_bytes(&data, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::TrailingData]);
        let t = root.children.last().expect("trailing child");
        assert_eq!(t.parent_offset, Some(end));
        assert_eq!(globals(t), vec!["posix.system".to_string()]);
    }

    #[test]
    fn v7_gnu_base256_and_lenient_numbers_parse() {
        let mut h = header(b"v7.pkl", 0, 0, b"");
        // v7: no magic; base-256 size; the checksum recomputed.
        h[257..265].fill(0);
        h[124..136].fill(0);
        h[124] = 0x80;
        h[135] = EVIL.len() as u8;
        set_checksum(&mut h);
        let mut b = TarBuilder::new();
        b.raw(h, EVIL);
        let mut h = header(b"spaces", b'0', 0, b"");
        h[124..136].copy_from_slice(b"   3 \0\0\0\0\0\0\0");
        set_checksum(&mut h);
        b.raw(h, b"abc");
        let data = b.finish();
        let root = scan_bytes(&data, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(globals(child(&root, "v7.pkl")), vec!["posix.system".to_string()]);
        assert_eq!(child(&root, "spaces").size, 3);
        assert_eq!(py_int(b"0o1_7", 8), Some(15));
        assert_eq!(py_int(b"1__7", 8), None);
        assert_eq!(py_int(b"8", 8), None);
        assert_eq!(nti(&[0xff; 12]), Ok(-1));
    }

    #[test]
    fn the_member_limit_applies() {
        let mut b = TarBuilder::new();
        for i in 0..10 {
            b.file(&format!("f{i}"), b"x");
        }
        let data = b.finish();
        let limits = Limits { max_members: 4, ..Limits::default() };
        let root = scan_bytes(&data, Options { limits, trace: None });
        assert_eq!(kinds(&root), vec![NoteKind::LimitExceeded]);
        assert_eq!(root.children.len(), 4);
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn a_flood_of_invalid_headers_stops() {
        // Valid long-name headers each followed by garbage: every one is an invalid chain.
        let mut b = TarBuilder::new();
        for _ in 0..200 {
            b.raw(header(b"././@LongLink", b'L', 4, b""), b"abc\0");
            b.out.extend_from_slice(&[0x41; BLOCK]);
        }
        let data = b.finish();
        let root = scan_bytes(&data, Options::default());
        let bad = kinds(&root).iter().filter(|k| **k == NoteKind::ArchiveMalformed).count();
        assert_eq!(bad, MAX_BAD_HEADERS as usize);
        assert_eq!(kinds(&root).last(), Some(&NoteKind::LimitExceeded));
        assert_eq!(root.size, data.len() as u64);
    }

    #[test]
    fn a_tar_inside_gzip_is_listed() {
        let tar = TarBuilder::new().file("x/evil.pkl", EVIL).finish();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &tar).expect("write");
        let gz = e.finish().expect("finish");
        let root = scan_bytes(&gz, Options::default());
        let t = &root.children[0];
        assert_eq!(t.format, Format::Tar);
        assert_eq!(globals(child(t, "x/evil.pkl")), vec!["posix.system".to_string()]);
    }

    #[test]
    fn robustness_truncations_and_flips() {
        let mut b = TarBuilder::new();
        b.pax(&[("path", "long/name.pkl")]);
        b.file("x", EVIL);
        b.entry("l", b'2', "../x");
        b.file("y", &[3u8; 600]);
        let data = b.finish();
        // The zero record padding makes most prefixes alike; keep the interesting part.
        robustness(&data[..4096], 400, 11);
        let fwd = &data[..4096];
        for cut in (0..fwd.len()).step_by(37) {
            let root = scan_forward(&fwd[..cut]);
            assert_eq!(root.size, cut as u64);
        }
    }
}
