//! Zip archives, read the way PyTorch's miniz reader reads them.
//!
//! The central directory at the end of the archive is authoritative: member data is located from
//! its offsets and sizes, CRCs and most local-header fields are ignored (torch disabled CRC checks
//! on purpose, pytorch/pytorch#28858), and names are compared ASCII-case-insensitively. Every
//! disagreement a stricter reader would trip over (bad CRC, local name ≠ central name, encryption
//! flags, duplicate names, data hidden between entries) is recorded as a note instead of stopping
//! the scan, so a tampered archive is both fully inspected and reported (CVE-2025-10156, -1944,
//! -1945).
//!
//! The central directory is read through random access; member data is then read front to back
//! in offset order through the stream, so every byte is read (and hashed) once.

use super::unsafe_path;
use crate::container::{ExpansionBudget, FuseOnError, Tap, buffer_for_random_access};
use crate::driver::{Driver, How, Rest, child_node, scan_node, scan_trailing};
use crate::inventory::{Node, Note, NoteKind, Relation, Role};
use crate::layout::LayoutReader;
use crate::stream::{HashMode, Stream, Window};
use std::collections::HashMap;
use std::io::Read;

const EOCD_SIG: &[u8; 4] = b"PK\x05\x06";
const EOCD64_LOCATOR_SIG: &[u8; 4] = b"PK\x06\x07";
const EOCD64_SIG: &[u8; 4] = b"PK\x06\x06";
const CDH_SIG: &[u8; 4] = b"PK\x01\x02";
const LFH_SIG: &[u8; 4] = b"PK\x03\x04";
const MAX_CENTRAL_DIRECTORY: u64 = crate::limits::Limits::ZIP_CENTRAL_DIRECTORY;
/// Flag bits that make Python's zipfile (and scanners built on it) refuse a member: encrypted,
/// compressed patched data, strong encryption.
const REFUSED_FLAGS: u16 = 0x0001 | 0x0020 | 0x0040;
/// Bit 3: sizes and CRC follow the data in a data descriptor.
const FLAG_DATA_DESCRIPTOR: u16 = 0x0008;
/// Bit 11: the name is UTF-8.
const FLAG_UTF8: u16 = 0x0800;

/// The end-of-central-directory record (with ZIP64 values folded in).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Eocd {
    /// Offset of the record in the window.
    pub(crate) offset: u64,
    pub(crate) entries: u64,
    pub(crate) cd_size: u64,
    pub(crate) cd_offset: u64,
    pub(crate) comment_len: u64,
    /// Offset where the ZIP64 record starts, when there is one (the CD ends there).
    pub(crate) cd_end: u64,
}

/// Finds the end-of-central-directory record the way miniz and zipfile do: the last signature
/// within the final 64 KiB + 22 bytes.
pub(crate) fn find_eocd(w: &Window<'_>) -> Option<Eocd> {
    let len = w.len();
    if len < 22 {
        return None;
    }
    let tail_len = len.min(65_535 + 22);
    let mut tail = vec![0u8; tail_len as usize];
    w.read_exact_at(len - tail_len, &mut tail).ok()?;
    let base = len - tail_len;
    let mut i = tail.len().checked_sub(22)?;
    loop {
        if &tail[i..i + 4] == EOCD_SIG {
            let r = &tail[i..];
            let u16_at = |o: usize| u64::from(u16::from_le_bytes([r[o], r[o + 1]]));
            let u32_at = |o: usize| u64::from(u32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]));
            let mut eocd = Eocd {
                offset: base + i as u64,
                entries: u16_at(10),
                cd_size: u32_at(12),
                cd_offset: u32_at(16),
                comment_len: u16_at(20),
                cd_end: base + i as u64,
            };
            read_zip64(w, &mut eocd);
            if eocd.cd_size <= len && eocd.cd_offset <= len && directory_starts_right(w, &eocd) {
                return Some(eocd);
            }
        }
        if i == 0 {
            return None;
        }
        i -= 1;
    }
}

/// The central directory ends where the end records begin; a candidate end record is only
/// believed if a central-directory entry starts where it says (random data rarely does that).
fn directory_starts_right(w: &Window<'_>, eocd: &Eocd) -> bool {
    if eocd.entries == 0 && eocd.cd_size == 0 {
        return true;
    }
    let Some(cd_at) = eocd.cd_end.checked_sub(eocd.cd_size) else {
        return false;
    };
    let mut sig = [0u8; 4];
    w.read_exact_at(cd_at, &mut sig).is_ok() && &sig == CDH_SIG
}

fn read_zip64(w: &Window<'_>, eocd: &mut Eocd) {
    let Some(loc_at) = eocd.offset.checked_sub(20) else {
        return;
    };
    let mut loc = [0u8; 20];
    if w.read_exact_at(loc_at, &mut loc).is_err() || &loc[..4] != EOCD64_LOCATOR_SIG {
        return;
    }
    // Like zipfile, expect the ZIP64 record right before its locator rather than trusting the
    // locator's offset, which is relative to an archive start that may have moved.
    let Some(rec_at) = loc_at.checked_sub(56) else {
        return;
    };
    let mut rec = [0u8; 56];
    if w.read_exact_at(rec_at, &mut rec).is_err() || &rec[..4] != EOCD64_SIG {
        return;
    }
    let u64_at = |o: usize| u64::from_le_bytes(rec[o..o + 8].try_into().unwrap_or_default());
    eocd.entries = u64_at(32);
    eocd.cd_size = u64_at(40);
    eocd.cd_offset = u64_at(48);
    eocd.cd_end = rec_at;
}

/// One central-directory entry.
#[derive(Debug, Clone)]
struct Entry {
    index: usize,
    name: String,
    raw_name: Vec<u8>,
    flags: u16,
    method: u16,
    crc: u32,
    comp_size: u64,
    uncomp_size: u64,
    /// Local header offset, relative to the archive start (already adjusted for prepended data).
    local: u64,
    unix_mode: Option<u32>,
    zip64: bool,
}

/// Scans a zip archive: central directory first, then members in offset order.
pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    match s.window() {
        Some(w) => scan_with_window(s, w, ctx, node),
        None => scan_buffered(s, ctx, node),
    }
}

/// A zip inside a compressed member or other forward-only stream: held in memory (bounded) to
/// reach its central directory.
fn scan_buffered(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let Some(data) = buffer_for_random_access(s, ctx, node, "a nested zip") else {
        return Rest::Drain;
    };
    let window = Window::from_slice(&data);
    let mut inner = Stream::new(&data[..], HashMode::None).with_window(window);
    if scan_with_window(&mut inner, window, ctx, node) == Rest::Trailing {
        let at = inner.position();
        scan_trailing(inner.take_next(u64::MAX), at, ctx, node);
    }
    Rest::Drain
}

fn scan_with_window(s: &mut Stream<'_>, w: Window<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let Some(eocd) = find_eocd(&w) else {
        node.note(Note::new(
            NoteKind::ArchiveMalformed,
            "zip signature but no end-of-central-directory record: no zip reader can list this archive",
        ));
        return Rest::Drain;
    };
    // Bytes in front of the archive (zipfile tolerates them by shifting every offset).
    let Some(shift) = eocd.cd_end.checked_sub(eocd.cd_size).and_then(|v| v.checked_sub(eocd.cd_offset))
    else {
        node.note(
            Note::new(
                NoteKind::ArchiveMalformed,
                "the central directory's size and offset point outside the archive",
            )
            .at(eocd.offset),
        );
        return Rest::Drain;
    };
    let cd_at = eocd.cd_offset + shift;
    if eocd.cd_size > MAX_CENTRAL_DIRECTORY {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!("central directory of {} bytes; members were not inspected", eocd.cd_size),
        ));
        return Rest::Drain;
    }
    let mut cd = vec![0u8; eocd.cd_size as usize];
    if w.read_exact_at(cd_at, &mut cd).is_err() {
        node.note(
            Note::new(NoteKind::ArchiveMalformed, "the central directory lies past the end of the file")
                .at(cd_at),
        );
        return Rest::Drain;
    }
    let mut entries = match parse_central_directory(&cd, shift, cd_at, node, ctx) {
        Some(e) => e,
        None => return Rest::Drain,
    };
    if entries.len() as u64 != eocd.entries {
        node.note(
            Note::new(
                NoteKind::ArchiveHeaderMismatch,
                format!("the end record counts {} entries but the central directory holds {}; readers disagree on which members exist", eocd.entries, entries.len()),
            )
            .at(eocd.offset),
        );
    }
    // The loaders' layouts (registered with the driver) decide what the archive is and what
    // each member is to its loader.
    let layouts = ctx.archive_layouts();
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    if let Some(format) = layouts.iter().find_map(|l| l.classify(&names)) {
        node.format = format;
    }
    check_names(node, &entries);
    let mut readers: Vec<Box<dyn LayoutReader>> =
        layouts.iter().filter_map(|l| l.open(node.format, &names)).collect();
    drop(names);
    entries.sort_by_key(|e| (e.local, e.index));
    let mut members: HashMap<String, u64> = HashMap::new();
    let mut found = Found::default();
    let mut reread_budget = w.len();
    let mut first = true;
    for e in &entries {
        members.entry(e.name.to_ascii_lowercase()).or_insert(e.uncomp_size);
        let pos = s.position();
        if e.local < pos {
            if reread_budget == 0 {
                node.note(
                    Note::new(
                        NoteKind::LimitExceeded,
                        format!("member {} overlaps earlier data and the re-read budget is spent", e.name),
                    )
                    .at(e.local),
                );
                continue;
            }
            node.note(
                Note::new(
                    NoteKind::ArchiveHiddenData,
                    format!(
                        "member {} starts at offset {} inside data already read (overlapping entries)",
                        e.name, e.local
                    ),
                )
                .at(e.local)
                .evidence(e.name.clone()),
            );
            reread_budget = reread_budget.saturating_sub(e.comp_size);
            let mut reread = match w.reader(0, w.len()) {
                Some(r) => Stream::new(r, HashMode::None).with_window(w),
                None => continue,
            };
            if reread.skip(e.local).ok() != Some(e.local) {
                continue;
            }
            read_member(&mut reread, Some(w), e, &mut readers, ctx, node, &mut found);
            continue;
        }
        if e.local > pos {
            gap(s, e.local - pos, first, ctx, node, &entries, e);
        }
        first = false;
        read_member(s, Some(w), e, &mut readers, ctx, node, &mut found);
    }
    // Between the last member and the central directory: data descriptors are fine, anything
    // else is hidden.
    let pos = s.position();
    if cd_at > pos {
        let last_has_descriptor = entries.last().is_some_and(|e| e.flags & FLAG_DATA_DESCRIPTOR != 0);
        let n = cd_at - pos;
        if last_has_descriptor && matches!(n, 12 | 16 | 20 | 24) {
            let _ = s.skip(n);
        } else {
            gap(s, n, entries.is_empty(), ctx, node, &entries, entries.last().unwrap_or(&DUMMY));
        }
    }
    found.note_uncomputed_crcs(node);
    for reader in &mut readers {
        reader.finish(node, &members);
    }
    // The central directory, ZIP64 records and end record.
    let end = eocd.offset + 22 + eocd.comment_len;
    let pos = s.position();
    if end > pos {
        let _ = s.skip(end - pos);
    }
    if end > w.len() {
        node.note(
            Note::new(NoteKind::ArchiveMalformed, "the archive comment runs past the end of the file")
                .at(eocd.offset),
        );
    }
    Rest::Trailing
}

static DUMMY: Entry = Entry {
    index: 0,
    name: String::new(),
    raw_name: Vec::new(),
    flags: 0,
    method: 0,
    crc: 0,
    comp_size: 0,
    uncomp_size: 0,
    local: 0,
    unix_mode: None,
    zip64: false,
};

/// Bytes before the first member or between members.
fn gap(
    s: &mut Stream<'_>,
    n: u64,
    before_first: bool,
    ctx: &mut dyn Driver,
    node: &mut Node,
    entries: &[Entry],
    next: &Entry,
) {
    let at = s.position();
    let prev_descriptor = !before_first
        && entries
            .iter()
            .filter(|e| e.local < at)
            .max_by_key(|e| e.local)
            .is_some_and(|e| e.flags & FLAG_DATA_DESCRIPTOR != 0);
    if prev_descriptor && matches!(n, 12 | 16 | 20 | 24) {
        let _ = s.skip(n);
        return;
    }
    let (relation, name, detail) = if before_first {
        (
            Relation::Prefix,
            format!("data before the archive ({n} bytes)"),
            format!(
                "{n} bytes precede the first zip entry; loaders disagree on where such an archive starts (torch reads a file that does not begin with a zip header as a legacy pickle, zipfile shifts every offset)"
            ),
        )
    } else {
        (
            Relation::Trailing,
            format!("data between entries at offset {at}"),
            format!("{n} bytes between zip entries (before {}) belong to no member", next.name),
        )
    };
    node.note(Note::new(NoteKind::ArchiveHiddenData, detail).at(at));
    let child = scan_node(
        Stream::new(s.take_next(n), HashMode::Inline),
        ctx,
        child_node(name, relation, at),
        How::Sniff,
    );
    node.children.push(child);
}

fn parse_central_directory(
    cd: &[u8],
    shift: u64,
    cd_at: u64,
    node: &mut Node,
    ctx: &dyn Driver,
) -> Option<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut i = 0usize;
    while i < cd.len() {
        if entries.len() as u64 >= ctx.limits().max_members {
            node.note(Note::new(
                NoteKind::LimitExceeded,
                format!(
                    "more than {} archive members; the rest were not inspected",
                    ctx.limits().max_members
                ),
            ));
            break;
        }
        let r = &cd[i..];
        if r.len() < 46 || &r[..4] != CDH_SIG {
            node.note(
                Note::new(
                    NoteKind::ArchiveMalformed,
                    "corrupt central-directory entry; later entries could not be listed",
                )
                .at(cd_at + i as u64),
            );
            if entries.is_empty() {
                return None;
            }
            break;
        }
        let u16_at = |o: usize| u16::from_le_bytes([r[o], r[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]]);
        let (name_len, extra_len, comment_len) =
            (usize::from(u16_at(28)), usize::from(u16_at(30)), usize::from(u16_at(32)));
        let total = 46 + name_len + extra_len + comment_len;
        if r.len() < total {
            node.note(
                Note::new(NoteKind::ArchiveMalformed, "central-directory entry runs past the directory")
                    .at(cd_at + i as u64),
            );
            break;
        }
        let raw_name = r[46..46 + name_len].to_vec();
        let flags = u16_at(8);
        let name = decode_name(&raw_name, flags);
        let mut comp_size = u64::from(u32_at(20));
        let mut uncomp_size = u64::from(u32_at(24));
        let mut local = u64::from(u32_at(42));
        let extra = &r[46 + name_len..46 + name_len + extra_len];
        let mut zip64 = false;
        for (id, data) in extra_fields(extra) {
            if id == 0x0001 {
                zip64 = true;
                let mut vals =
                    data.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()));
                if uncomp_size == 0xffff_ffff {
                    uncomp_size = vals.next().unwrap_or(uncomp_size);
                }
                if comp_size == 0xffff_ffff {
                    comp_size = vals.next().unwrap_or(comp_size);
                }
                if local == 0xffff_ffff {
                    local = vals.next().unwrap_or(local);
                }
            }
        }
        let made_by_unix = u16_at(4) >> 8 == 3;
        let ext_attr = u32_at(38);
        entries.push(Entry {
            index: entries.len(),
            name,
            raw_name,
            flags,
            method: u16_at(10),
            crc: u32_at(16),
            comp_size,
            uncomp_size,
            local: local.saturating_add(shift),
            unix_mode: made_by_unix.then_some(ext_attr >> 16),
            zip64,
        });
        i += total;
    }
    Some(entries)
}

fn decode_name(raw: &[u8], flags: u16) -> String {
    if flags & FLAG_UTF8 != 0 || raw.is_ascii() {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        // zipfile decodes non-UTF-8 names as cp437; for display, Latin-1 keeps them distinct.
        raw.iter().map(|&b| char::from(b)).collect()
    }
}

fn extra_fields(mut extra: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if extra.len() < 4 {
            return None;
        }
        let id = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let data = extra.get(4..4 + len)?;
        extra = &extra[4 + len..];
        Some((id, data))
    })
}

/// A zip LZMA member (method 14) as a reader of its content. The member starts with a version
/// (2 bytes), the properties' length (2, always 5) and the properties (the LZMA byte and the
/// dictionary size); the raw stream ends with an end marker when flag bit 1 says so (Python's
/// zipfile always writes one), otherwise after the uncompressed size.
fn zip_lzma<'r>(mut data: impl Read + 'r, e: &Entry, ctx: &dyn Driver) -> Result<Box<dyn Read + 'r>, String> {
    let mut head = [0u8; 9];
    data.read_exact(&mut head).map_err(|_| "the member is shorter than its LZMA header".to_string())?;
    if u16::from_le_bytes([head[2], head[3]]) != 5 {
        return Err("the LZMA properties are not 5 bytes long".into());
    }
    let dict = u64::from(u32::from_le_bytes([head[5], head[6], head[7], head[8]]));
    let cap = ctx.limits().max_in_memory;
    if dict > cap {
        return Err(format!(
            "the header asks for a {dict}-byte dictionary, more than the {cap}-byte in-memory limit"
        ));
    }
    let size = if e.flags & 0x0002 != 0 { u64::MAX } else { e.uncomp_size };
    // The same stream in the .lzma ("alone") layout: properties, dictionary size, size.
    let mut alone = Vec::with_capacity(13);
    alone.extend_from_slice(&head[4..9]);
    alone.extend_from_slice(&size.to_le_bytes());
    let mem_kb = u32::try_from((dict + super::compress::DECODER_OVERHEAD) / 1024).unwrap_or(u32::MAX - 1);
    let reader = lzma_rust2::LzmaReader::new_mem_limit(std::io::Cursor::new(alone).chain(data), mem_kb, None)
        .map_err(|err| format!("the LZMA stream cannot be opened ({err})"))?;
    Ok(Box::new(reader))
}

fn check_names(node: &mut Node, entries: &[Entry]) {
    let mut seen: HashMap<String, &Entry> = HashMap::new();
    for e in entries {
        let folded = e.name.to_ascii_lowercase();
        if let Some(prev) = seen.get(&folded) {
            node.note(
                Note::new(
                    NoteKind::ArchiveDuplicateName,
                    format!(
                        "two members named {} (at offsets {} and {}); torch's reader, zipfile and this scanner may each pick a different one",
                        e.name, prev.local, e.local
                    ),
                )
                .at(e.local)
                .evidence(e.name.clone()),
            );
        } else {
            seen.insert(folded, e);
        }
        if let Some(why) = unsafe_path(&e.name, e.unix_mode) {
            node.note(
                Note::new(NoteKind::ArchiveUnsafePath, format!("member {}: {why}", e.name))
                    .at(e.local)
                    .evidence(e.name.clone()),
            );
        }
        if e.raw_name.contains(&0) {
            node.note(
                Note::new(
                    NoteKind::ArchiveUnsafePath,
                    format!("member name {:?} contains a NUL byte", e.name),
                )
                .at(e.local)
                .evidence(e.name.clone()),
            );
        }
    }
}

/// What reading the members turned up, for the archive-level checks at the end.
#[derive(Default)]
struct Found {
    /// Members whose central-directory CRC-32 is 0 though their data is not empty: (offset, name).
    uncomputed_crc: Vec<(u64, String)>,
}

impl Found {
    fn note_uncomputed_crcs(&self, node: &mut Node) {
        let Some((at, first)) = self.uncomputed_crc.first() else { return };
        let detail = if self.uncomputed_crc.len() == 1 {
            format!(
                "member {first}: CRC-32 is 0 in the central directory, so it was not computed or was erased (torch ignores CRCs; strict readers refuse the member)"
            )
        } else {
            format!(
                "{} members (first {first}) have CRC-32 0 in the central directory: not computed (torch.save with compute_crc32 disabled writes this) or erased; torch ignores CRCs, strict readers refuse the members",
                self.uncomputed_crc.len()
            )
        };
        node.note(Note::new(NoteKind::ArchiveCrcMismatch, detail).at(*at).evidence(first.clone()));
    }
}

fn read_member(
    s: &mut Stream<'_>,
    w: Option<Window<'_>>,
    e: &Entry,
    readers: &mut [Box<dyn LayoutReader>],
    ctx: &mut dyn Driver,
    node: &mut Node,
    found: &mut Found,
) {
    let at = s.position();
    let Ok(Some(lfh)) = s.read_array::<30>() else {
        node.note(
            Note::new(
                NoteKind::ArchiveMalformed,
                format!("member {}: local header past the end of the file", e.name),
            )
            .at(at),
        );
        return;
    };
    if &lfh[..4] != LFH_SIG {
        node.note(
            Note::new(NoteKind::ArchiveMalformed, format!("member {}: no local header where the central directory points (torch and zipfile both fail to read it)", e.name))
                .at(at)
                .evidence(e.name.clone()),
        );
        return;
    }
    let u16_at = |o: usize| u16::from_le_bytes([lfh[o], lfh[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([lfh[o], lfh[o + 1], lfh[o + 2], lfh[o + 3]]);
    let (lflags, lmethod, lcrc) = (u16_at(6), u16_at(8), u32_at(14));
    let (name_len, extra_len) = (u64::from(u16_at(26)), u64::from(u16_at(28)));
    let lname = s.read_vec(name_len as usize).unwrap_or_default();
    let _ = s.skip(extra_len);
    let data_at = s.position();

    let mut mismatches = Vec::new();
    if lname != e.raw_name {
        mismatches.push(format!("name {:?} in the local header", String::from_utf8_lossy(&lname)));
    }
    if lmethod != e.method {
        mismatches
            .push(format!("method {lmethod} in the local header vs {} in the central directory", e.method));
    }
    if lflags & FLAG_DATA_DESCRIPTOR == 0 && e.flags & FLAG_DATA_DESCRIPTOR == 0 && lcrc != e.crc {
        mismatches.push(format!(
            "CRC 0x{lcrc:08x} in the local header vs 0x{:08x} in the central directory",
            e.crc
        ));
    }
    if (lflags ^ e.flags) & !(FLAG_DATA_DESCRIPTOR | FLAG_UTF8) != 0 {
        mismatches.push(format!(
            "flags 0x{lflags:04x} in the local header vs 0x{:04x} in the central directory",
            e.flags
        ));
    }
    if !mismatches.is_empty() {
        node.note(
            Note::new(
                NoteKind::ArchiveHeaderMismatch,
                format!(
                    "member {}: {} (torch reads the central directory; strict readers refuse the member)",
                    e.name,
                    mismatches.join("; ")
                ),
            )
            .at(at)
            .evidence(e.name.clone()),
        );
    }
    let flags = lflags | e.flags;
    if flags & REFUSED_FLAGS != 0 {
        let which = if e.flags & 1 != 0 { "central directory" } else { "local header only" };
        node.note(
            Note::new(
                NoteKind::ArchiveEncrypted,
                format!("member {} has encryption flag bits 0x{:04x} set ({which}); zipfile-based scanners refuse it while torch may still load it", e.name, flags & REFUSED_FLAGS),
            )
            .at(at)
            .evidence(e.name.clone()),
        );
    }

    let role = readers.iter().find_map(|r| r.role(&e.name));
    for reader in readers.iter() {
        reader.member_start(node, &e.name, role, at);
    }

    let mut crc = flate2::Crc::new();
    let mut budget = ExpansionBudget::new(ctx, e.comp_size);
    let start_expanded = ctx.expanded();
    let data = s.take_next(e.comp_size);
    let mut child = child_node(e.name.clone(), Relation::Member, at);
    child.role = role;
    let member_window = (e.method == 0).then(|| w.and_then(|w| w.sub(data_at, e.comp_size))).flatten();
    let how = match role {
        Some(Role::TensorStorage) => How::Data,
        _ => How::Sniff,
    };
    let (child, method_ok) = match e.method {
        0 => {
            let tap = Tap::new(data, &mut crc, None);
            let mut stream = Stream::new(tap, HashMode::Inline);
            if let Some(mw) = member_window {
                stream = stream.with_window(mw);
            }
            (scan_member(stream, ctx, child, how, role, readers), true)
        }
        // Deflate (torch and zipfile), bzip2 and LZMA (zipfile only: skops, joblib-in-zip, plain
        // zips): inflated through the expansion budget and scanned.
        8 | 12 | 14 => {
            let decoder: Result<Box<dyn Read + '_>, String> = match e.method {
                8 => Ok(Box::new(flate2::read::DeflateDecoder::new(data))),
                12 => Ok(Box::new(FuseOnError::new(bzip2::read::BzDecoder::new(data)))),
                _ => zip_lzma(data, e, ctx),
            };
            match decoder {
                Ok(decoder) => {
                    let tap = Tap::new(decoder, &mut crc, Some(&mut budget));
                    let stream = Stream::new(tap, HashMode::Inline);
                    (scan_member(stream, ctx, child, how, role, readers), true)
                }
                Err(why) => {
                    let mut child = child;
                    let what = format!("LZMA member: {why}; the content was not inspected");
                    child.note(Note::new(NoteKind::LimitExceeded, what));
                    (child, false)
                }
            }
        }
        other => {
            let mut child = child;
            child.note(Note::new(
                NoteKind::ArchiveOpaque,
                format!("compression method {other} is none of stored, deflate, bzip2 or LZMA; the member's content was not inspected"),
            ));
            let mut raw = Stream::new(data, HashMode::Inline);
            let _ = raw.skip(u64::MAX);
            if let Ok((size, digest)) = raw.finish() {
                child.size = size;
                child.sha256 = digest;
            }
            (child, false)
        }
    };
    if e.method != 0 {
        ctx.add_expanded(child.size);
    }
    for reader in readers.iter() {
        reader.member_read(node, &e.name, e.method, at);
    }
    let _ = start_expanded;
    let mut child = child;
    if budget.exceeded() {
        child.note(Note::new(NoteKind::LimitExceeded, budget.describe()));
    }
    // Consume whatever of the compressed data the decoder did not.
    let consumed = s.position() - data_at;
    if consumed < e.comp_size {
        let _ = s.skip(e.comp_size - consumed);
    }
    if s.position() < data_at + e.comp_size {
        child.note(
            Note::new(NoteKind::ArchiveMalformed, "the member's data runs past the end of the file").at(0),
        );
    }
    if method_ok && !budget.exceeded() {
        let actual = crc.sum();
        if child.size == e.uncomp_size && actual != e.crc && e.crc == 0 {
            // torch.save with compute_crc32 disabled writes 0 for every member: one note for all.
            found.uncomputed_crc.push((at, e.name.clone()));
        } else if child.size == e.uncomp_size && actual != e.crc {
            node.note(
                Note::new(
                    NoteKind::ArchiveCrcMismatch,
                    format!("member {}: CRC-32 is 0x{:08x} in the central directory but the data hashes to 0x{actual:08x} (torch ignores it; strict readers refuse the member)", e.name, e.crc),
                )
                .at(at)
                .evidence(e.name.clone()),
            );
        }
        if child.size != e.uncomp_size && !child.notes.iter().any(|n| n.kind == NoteKind::LimitExceeded) {
            node.note(
                Note::new(
                    NoteKind::ArchiveHeaderMismatch,
                    format!(
                        "member {}: the central directory says {} bytes uncompressed, the data holds {}",
                        e.name, e.uncomp_size, child.size
                    ),
                )
                .at(at)
                .evidence(e.name.clone()),
            );
        }
    }
    for reader in readers.iter() {
        reader.member_done(node, &e.name, role);
    }
    node.children.push(child);
    let _ = e.zip64;
}

/// Scans a member: by the layout that claims its role, or by content (raw tensor storage as
/// data).
fn scan_member(
    stream: Stream<'_>,
    ctx: &mut dyn Driver,
    child: Node,
    how: How,
    role: Option<Role>,
    readers: &mut [Box<dyn LayoutReader>],
) -> Node {
    match readers.iter_mut().find(|r| r.claims(role)) {
        Some(reader) => reader.scan_member(stream, ctx, child, role),
        None => scan_node(stream, ctx, child, how),
    }
}
