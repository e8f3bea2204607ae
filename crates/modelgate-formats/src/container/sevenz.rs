//! 7-Zip archives: the nullifAI wrapper (a torch archive repacked as 7z, which `torch.load`
//! cannot read but which tools may unpack and load).
//!
//! The archive is listed and decoded with `sevenz-rust2` (pure Rust; LZMA, LZMA2, bzip2, BCJ and
//! delta; no AES, no PPMd) through random access. Before the crate sees it, the 32-byte signature
//! header is checked here (its CRC, and that the header it points to lies inside the file), so the
//! crate's backward search for a lost header never runs. Memory is bounded: header buffers and
//! decoder dictionaries by [`crate::Limits::max_in_memory`], decoded output by the expansion
//! budget, and every count the crate allocates from is bounded by the header's own length.
//!
//! Each member is scanned by content as a child. Members that cannot be decoded (an unsupported
//! or encrypted method, corrupt data) are reported with one [`NoteKind::ArchiveOpaque`] note.

use super::Fuse;
use super::unsafe_path;
use crate::container::{ExpansionBudget, Tap, buffer_for_random_access};
use crate::driver::{Driver, How, Rest, child_node, scan_node, scan_trailing};
use crate::inventory::{Node, Note, NoteKind, Relation};
use crate::stream::{HashMode, Stream, Window};
use sevenz_rust2::{Archive, ArchiveEntry, BlockDecoder, Password};
use std::collections::HashMap;
use std::io::{self, Read, Seek, SeekFrom};

const SIGNATURE_HEADER: u64 = 32;
const DECODER_OVERHEAD: u64 = crate::limits::Limits::DECODER_OVERHEAD;
/// `FILE_ATTRIBUTE_UNIX_EXTENSION`: the high 16 bits of the attributes hold a Unix mode.
const UNIX_EXTENSION: u32 = 0x8000;

/// Scans a 7z archive: its members by content.
pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let start = s.position();
    let Some(w) = s.window().and_then(|w| w.sub(start, w.len().saturating_sub(start))) else {
        return scan_buffered(s, ctx, node);
    };
    match scan_window(w, ctx, node) {
        Some(end) => {
            // The forward pass reads (and hashes) the archive; what follows its header is
            // trailing data.
            if s.skip(end).ok() == Some(end) { Rest::Trailing } else { Rest::Drain }
        }
        None => Rest::Drain,
    }
}

/// A 7z inside a compressed member or another forward-only stream: held in memory (bounded).
fn scan_buffered(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let Some(data) = buffer_for_random_access(s, ctx, node, "a 7z archive") else {
        return Rest::Drain;
    };
    let Some(end) = scan_window(Window::from_slice(&data), ctx, node) else {
        return Rest::Drain;
    };
    let tail = usize::try_from(end).ok().and_then(|e| data.get(e..)).unwrap_or_default();
    scan_trailing(tail, end, ctx, node);
    Rest::Drain
}

/// Lists and decodes the archive in `w`; returns where its structure ends, when it could be read.
fn scan_window(w: Window<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Option<u64> {
    let end = check_signature_header(w, ctx, node)?;
    if end == SIGNATURE_HEADER {
        // No header at all: an empty archive.
        return Some(end);
    }
    let mem_kb = usize::try_from(ctx.limits().max_in_memory.saturating_add(DECODER_OVERHEAD) / 1024)
        .unwrap_or(usize::MAX);
    let password = Password::empty();
    let mut source = WindowCursor { w, pos: 0 };
    let mut archive = match Archive::read_with_memory_limit(&mut source, &password, mem_kb) {
        Ok(a) => a,
        Err(e) => {
            let (kind, what) = classify(&e);
            node.note(Note::new(
                kind,
                format!("the 7z header cannot be read ({what}: {e}); torch cannot load a 7z archive either, but other tools may unpack it"),
            ));
            if kind != NoteKind::ArchiveOpaque {
                node.note(Note::new(
                    NoteKind::ArchiveOpaque,
                    "7z archive whose members could not be listed; its content was not inspected",
                ));
            }
            return Some(end);
        }
    };
    check_names(node, &archive.files);
    // Member CRCs are checked here, against the bytes scanned: the crate's own check withholds
    // the last bytes of a member whose CRC fails and abandons the rest of its block, which would
    // let a bad CRC hide content.
    let expected_crc: Vec<Option<u64>> =
        archive.files.iter_mut().map(|f| std::mem::take(&mut f.has_crc).then_some(f.crc)).collect();
    let files = archive.files.len();
    if files as u64 > ctx.limits().max_members {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "{files} members, more than the limit of {}; the rest were not inspected",
                ctx.limits().max_members
            ),
        ));
    }
    let mut run = Run {
        budget: ExpansionBudget::new(ctx, w.len()),
        visited: vec![false; files],
        members: 0,
        stop: false,
        failures: Vec::new(),
        limited: false,
    };
    for block in 0..archive.blocks.len() {
        if run.stop {
            break;
        }
        let first = archive.stream_map.block_first_file_index.get(block).copied().unwrap_or(files);
        let decoder = BlockDecoder::new_with_memory_limit(1, mem_kb, block, &archive, &password, &mut source);
        let count = decoder.entry_count();
        let mut k = 0usize;
        let result = decoder.for_each_entries(&mut |entry, reader| {
            let index = first + k;
            k += 1;
            if let Some(v) = run.visited.get_mut(index) {
                *v = true;
            }
            let crc = expected_crc.get(index).copied().flatten();
            Ok(run.member(entry, crc, reader, ctx, node))
        });
        let Err(e) = result else {
            continue;
        };
        let (kind, what) = classify(&e);
        if kind == NoteKind::LimitExceeded {
            run.limited = true;
            node.note(Note::new(
                NoteKind::LimitExceeded,
                format!("a 7z block needs more decoder memory than the in-memory limit allows ({e}); its members were not inspected"),
            ));
        } else if k >= count && !run.stop {
            // Every member was read; the block's own checks failed at its end.
            node.note(Note::new(NoteKind::ArchiveMalformed, format!("7z block {block}: {e}")));
        } else {
            run.failures.push(format!("{what}: {e}"));
        }
    }
    // Empty files outside any block.
    for (i, entry) in archive.files.iter().enumerate() {
        if run.stop {
            break;
        }
        let in_block = archive.stream_map.file_block_index.get(i).copied().flatten().is_some();
        if !in_block && !entry.has_stream {
            run.visited[i] = true;
            run.member(entry, None, &mut io::empty(), ctx, node);
        }
    }
    let missed: Vec<&str> = archive
        .files
        .iter()
        .zip(&run.visited)
        .filter(|(f, v)| f.has_stream && !**v)
        .map(|(f, _)| f.name.as_str())
        .collect();
    if !run.failures.is_empty() || (!missed.is_empty() && !run.limited && !run.stop) {
        let why = if run.failures.is_empty() {
            "7z members after a decoder error".to_string()
        } else {
            format!("7z members could not be decoded ({})", run.failures.join("; "))
        };
        node.note(Note::new(
            NoteKind::ArchiveOpaque,
            format!("{why}; {} member(s) were not reached; that content was not inspected", missed.len()),
        ));
    } else if !missed.is_empty() {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "{} 7z member(s) were not inspected after a limit was reached (first: {})",
                missed.len(),
                missed.first().copied().unwrap_or_default()
            ),
        ));
    }
    Some(end)
}

/// State of one archive's decoding.
struct Run {
    budget: ExpansionBudget,
    visited: Vec<bool>,
    members: u64,
    /// A limit was reached: decode nothing more.
    stop: bool,
    /// Why members could not be decoded.
    failures: Vec<String>,
    /// A block needed more memory than allowed.
    limited: bool,
}

impl Run {
    /// Scans one member; false to skip the rest of its block.
    fn member(
        &mut self,
        entry: &ArchiveEntry,
        expected_crc: Option<u64>,
        reader: &mut dyn Read,
        ctx: &mut dyn Driver,
        node: &mut Node,
    ) -> bool {
        if self.stop {
            return false;
        }
        if entry.is_directory || entry.is_anti_item {
            return true;
        }
        self.members += 1;
        if self.members > ctx.limits().max_members {
            self.stop = true;
            return false;
        }
        let mut crc = flate2::Crc::new();
        let mut error = None;
        let child = {
            let tap = Tap::new(reader, &mut crc, Some(&mut self.budget));
            scan_node(
                Stream::new(Fuse::new(tap, &mut error), HashMode::Inline),
                ctx,
                child_node(entry.name.clone(), Relation::Member, 0),
                How::Sniff,
            )
        };
        let mut child = child;
        child.parent_offset = None;
        ctx.add_expanded(child.size);
        if self.budget.exceeded() {
            child.note(Note::new(NoteKind::LimitExceeded, self.budget.describe()));
            node.children.push(child);
            self.stop = true;
            return false;
        }
        let complete = child.size >= entry.size;
        if let Some(expected) = expected_crc.filter(|_| child.size == entry.size)
            && u64::from(crc.sum()) != expected
        {
            {
                node.note(
                    Note::new(
                        NoteKind::ArchiveCrcMismatch,
                        format!(
                            "member {}: CRC-32 is 0x{expected:08x} in the header but the data hashes to 0x{:08x} (7-Zip extracts it with an error); the data was inspected",
                            entry.name,
                            crc.sum()
                        ),
                    )
                    .evidence(entry.name.clone()),
                );
            }
        }
        let name = entry.name.clone();
        node.children.push(child);
        match error {
            None => true,
            Some(e) if complete => {
                // Every declared byte was scanned; the decoder complained afterwards (a block
                // checksum, data beyond the declared size). A decoder that has failed is not
                // asked for the next member: libbz2-rs-sys aborts the process when resumed after
                // an error. Members after this one in the block count as not reached.
                node.note(
                    Note::new(
                        NoteKind::ArchiveMalformed,
                        format!("member {name}: {e} after its declared {} bytes", entry.size),
                    )
                    .evidence(name),
                );
                false
            }
            Some(e) => {
                self.failures.push(format!("member {name}: {e}"));
                // The decoder is in an unknown state: the rest of the block cannot be trusted.
                false
            }
        }
    }
}

/// Checks the signature header; returns where the archive's structure ends.
fn check_signature_header(w: Window<'_>, ctx: &dyn Driver, node: &mut Node) -> Option<u64> {
    let mut sig = [0u8; SIGNATURE_HEADER as usize];
    let opaque = |node: &mut Node, kind: NoteKind, detail: String| {
        node.note(Note::new(kind, detail).at(0));
        if kind != NoteKind::ArchiveOpaque {
            node.note(Note::new(
                NoteKind::ArchiveOpaque,
                "7z archive whose members could not be listed; its content was not inspected",
            ));
        }
    };
    if w.read_exact_at(0, &mut sig).is_err() {
        opaque(
            node,
            NoteKind::ArchiveMalformed,
            "7z signature but the archive is shorter than its 32-byte signature header".into(),
        );
        return None;
    }
    if sig[6] != 0 {
        opaque(
            node,
            NoteKind::ArchiveOpaque,
            format!("7z format version {}.{} is not supported", sig[6], sig[7]),
        );
        return None;
    }
    let stored = u32::from_le_bytes([sig[8], sig[9], sig[10], sig[11]]);
    let mut crc = flate2::Crc::new();
    crc.update(&sig[12..32]);
    if stored == 0 && sig[12..32].iter().all(|&b| b == 0) {
        opaque(
            node,
            NoteKind::ArchiveMalformed,
            "the 7z start header was never written (an interrupted or damaged archive); 7-Zip can search for the header, this version does not".into(),
        );
        return None;
    }
    if crc.sum() != stored {
        opaque(
            node,
            NoteKind::ArchiveMalformed,
            format!(
                "the 7z start header's CRC-32 is 0x{stored:08x} but its bytes hash to 0x{:08x}",
                crc.sum()
            ),
        );
        return None;
    }
    let offset = u64::from_le_bytes(sig[12..20].try_into().unwrap_or_default());
    let size = u64::from_le_bytes(sig[20..28].try_into().unwrap_or_default());
    let Some(end) =
        SIGNATURE_HEADER.checked_add(offset).and_then(|v| v.checked_add(size)).filter(|&end| end <= w.len())
    else {
        opaque(
            node,
            NoteKind::ArchiveMalformed,
            format!(
                "the 7z header ({size} bytes at offset {offset}) lies past the end of the archive (truncated?)"
            ),
        );
        return None;
    };
    if size > ctx.limits().max_in_memory {
        node.note(Note::new(
            NoteKind::LimitExceeded,
            format!(
                "a 7z header of {size} bytes, more than the in-memory limit; the members were not inspected"
            ),
        ));
        return None;
    }
    Some(end)
}

/// The note kind and a short reason for a crate error.
fn classify(e: &sevenz_rust2::Error) -> (NoteKind, &'static str) {
    use sevenz_rust2::Error as E;
    match e {
        E::MaxMemLimited { .. } => (NoteKind::LimitExceeded, "memory limit"),
        E::PasswordRequired | E::MaybeBadPassword(_) => {
            (NoteKind::ArchiveOpaque, "encrypted (AES), no password")
        }
        E::UnsupportedCompressionMethod(_) | E::Unsupported(_) | E::ExternalUnsupported => {
            (NoteKind::ArchiveOpaque, "unsupported method")
        }
        _ => (NoteKind::ArchiveMalformed, "corrupt"),
    }
}

fn check_names(node: &mut Node, files: &[ArchiveEntry]) {
    let mut seen: HashMap<String, ()> = HashMap::new();
    for f in files {
        if f.is_anti_item {
            continue;
        }
        if !f.is_directory && seen.insert(f.name.to_ascii_lowercase(), ()).is_some() {
            node.note(
                Note::new(
                    NoteKind::ArchiveDuplicateName,
                    format!("two members named {}; extraction tools may each keep a different one", f.name),
                )
                .evidence(f.name.clone()),
            );
        }
        let mode = (f.has_windows_attributes && f.windows_attributes & UNIX_EXTENSION != 0)
            .then_some(f.windows_attributes >> 16);
        if let Some(why) = unsafe_path(&f.name, mode) {
            node.note(
                Note::new(NoteKind::ArchiveUnsafePath, format!("member {}: {why}", f.name))
                    .evidence(f.name.clone()),
            );
        }
        if f.name.contains('\0') {
            node.note(
                Note::new(
                    NoteKind::ArchiveUnsafePath,
                    format!("member name {:?} contains a NUL character", f.name),
                )
                .evidence(f.name.clone()),
            );
        }
    }
}

/// `Read + Seek` over a window, for the 7z reader.
struct WindowCursor<'w> {
    w: Window<'w>,
    pos: u64,
}

impl Read for WindowCursor<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.w.len().saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.w.read_exact_at(self.pos, &mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WindowCursor<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.w.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match target {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "seek before the start of the archive")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::compress::tests::{EVIL, robustness};
    use crate::inventory::Format;
    use crate::{Limits, Options, scan_bytes};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
    }

    // Archives written by py7zr 1.1.4 (EVIL is the pickle in them).
    /// Stored (copy method), plain header: `archive/data.pkl`, `archive/version`, and
    /// `../escape.txt` (the name patched in afterwards, CRCs fixed).
    const COPY: &str = "377abcaf271c0004e670cb302400000000000000bf0000000000000029317cdf63706f7369780a73797374656d0a2853276563686f2070776e6564270a74522e330a68690104060001092400070b01000101000c2400080d030920020a010f9e3902d19e6755ac2a93d800000503190400000000115f0061007200630068006900760065002f0064006100740061002e0070006b006c00000061007200630068006900760065002f00760065007200730069006f006e0000002e002e002f006500730063006100700065002e007400780074000000141a010010e319466d7ddd01b0e619466d7ddd0160e919466d7ddd01150e01002080808120808081208080810000";
    /// LZMA2, solid, LZMA-encoded header (like the nullifAI sample).
    const LZMA2: &str = "377abcaf271c0004424d0dcaa4000000000000001500000000000000a8d647e501002163706f7369780a73797374656d0a2853276563686f2070776e6564270a74522e330a00e0009200765d0000813307ae0fd0697dbc9f3f4741057bedd7d906cebb25b08ba7f117db985723c028cca9e1042b879936a78d47859f240ad5aac8ab07618d83da474d1245ba67a0855678f9fe7f94c2acddad68b6e4f955143597b1b25a7f239ba37b1481e275e4a9d7bc671a166910d8c5028a6412e73a8e530000000017062601097e00070b010001212101180c80930000";
    /// LZMA2, solid: 4 MiB of zeros, then `archive/data.pkl`.
    const BOMB: &str = "377abcaf271c0004cc8e25bc53030000000000001700000000000000e35f0faaffff11016c5d00006ffdffffa3b7ff473e481572396151b89228e6a38607f9eee41e82d32fc53a3c014bb17ec98a8a4d2fa30dd97fa6e38c231153e05918c5758ae277f8b6947f0c6ac0de744964e2e95c53b204d8f7440cab5f0d6d46e9e5c37688b79657acb64de1691d6ffb4b88106c42cb883f5c008fd04eaf262894711f3d8f24e1709ea7235fec28cb85d195988a7e2a91f22775f719c006984d98fdd8afd5900fc42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522b74cd1e5b2042f9dd533df82964093b80cb2a6cdfb53bf0c4bd2e5faa0f3e4b664290130eff1093f8717859f80bcdff9528460fa9fc7cdefb9a302e56c08f85f38381c065c42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522b74cd1e5b2042f9dd533df82964093b80cb2a6cdfb53bf0c4bc4827e6589fff10012b00ec7353a7fdbeae7c311a9fb78d316e709ea7235fec28cb85d195988a7e2a91f22775f719c006984d98fdd8afd5900fc42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522b74cd1e5b2042f9dd533df82964093b80cb2a6cdfb53bf0c4bd2e5faa0f3e4b664290130eff1093f8717859f80bcdff9528460fa9fc7cdefb9a302e56c08f85f38381c065c42553f8f591363105a5b0ee6fc1704d470cd19111aaad601dbaceb127185c5986e9665258bee976ac59e4e55b0508f9c7daadfcfb522b74cd1e5b2042f9dd533df82964093b80cb2a6cdfb53bf0c4bd2e5faa0f3e4b664290130eff1093f8717859f80bcdff9528460fa9fc7cdefb9a302e56c08f85f38381c065c425510f3fb28001fc00280041eab7135880be2afcdac278da79ff7cbf35e9f5f6a4f8ffcaba8873c4a8f118d09954d3717cc00000e0008600785d0000813307ae0fd5477f49d724d3feb37016b17528af5560d30d4c2219c22a193333c3662bdc04825d366d44dfe8b750541864b69b40995518a534a467e80874b118185500c2a8e14db439cbac27f120330e52e892e0160244eac9e9eddbd5865169e74ecb327354acd0ffbe460a1856a044adde45c000000000170682d30109808000070b010001212101180c80870000";
    /// PPMd (not supported by this build): `archive/data.pkl`.
    const PPMD: &str = "377abcaf271c0004581b661823000000000000006800000000000000d97fabb800630f2a188ccd01e6701db0655149b7c359d1e7c2fb09dff8d15198fdded974f43c000104060001092300070b0100012303040107080000000100000c2000080a010f9e39020000050119040000000011230061007200630068006900760065002f0064006100740061002e0070006b006c000000140a0100305d21466d7ddd0115060100208080810000";

    fn globals(node: &Node) -> Vec<String> {
        node.pickle().map(|p| p.globals.iter().map(|g| g.qualified()).collect()).unwrap_or_default()
    }

    fn kinds(node: &Node) -> Vec<NoteKind> {
        node.notes.iter().map(|n| n.kind).collect()
    }

    fn child<'n>(node: &'n Node, name: &str) -> &'n Node {
        node.children.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no child {name}"))
    }

    #[test]
    fn members_are_scanned_by_content() {
        for archive in [LZMA2, COPY] {
            let data = hex(archive);
            for root in [
                scan_bytes(&data, Options::default()),
                crate::scan_reader(&data[..], Options::default()).expect("read"),
            ] {
                assert_eq!(root.format, Format::SevenZip);
                assert_eq!(root.size, data.len() as u64);
                assert!(!kinds(&root).contains(&NoteKind::ArchiveOpaque), "{:?}", root.notes);
                let pkl = child(&root, "archive/data.pkl");
                assert_eq!(pkl.relation, Some(Relation::Member));
                assert_eq!(pkl.size, EVIL.len() as u64);
                assert_eq!(globals(pkl), vec!["posix.system".to_string()]);
                assert_eq!(child(&root, "archive/version").size, 2);
            }
        }
    }

    #[test]
    fn unsafe_names_are_noted() {
        let root = scan_bytes(&hex(COPY), Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::ArchiveUnsafePath]);
        assert_eq!(root.notes[0].evidence.as_deref(), Some("../escape.txt"));
        assert_eq!(child(&root, "../escape.txt").size, 2);
    }

    #[test]
    fn an_undecodable_member_is_opaque() {
        let root = scan_bytes(&hex(PPMD), Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::ArchiveOpaque], "{:?}", root.notes);
        assert!(root.notes[0].detail.contains("unsupported"));
    }

    #[test]
    fn corrupt_data_is_reported() {
        // Flip a byte of the stored pickle: its CRC no longer matches.
        let mut data = hex(COPY);
        data[40] ^= 0x20;
        let root = scan_bytes(&data, Options::default());
        assert!(kinds(&root).contains(&NoteKind::ArchiveCrcMismatch), "{:?}", root.notes);
        // Flip a byte of LZMA2 data: decoding fails somewhere.
        let mut data = hex(LZMA2);
        data[60] ^= 0x55;
        let root = scan_bytes(&data, Options::default());
        assert!(
            kinds(&root).contains(&NoteKind::ArchiveOpaque)
                || kinds(&root).contains(&NoteKind::ArchiveCrcMismatch),
            "{:?}",
            root.notes
        );
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let data = hex(BOMB);
        let limits = Limits { ratio_floor: 1 << 20, max_ratio: 10, ..Limits::default() };
        let root = scan_bytes(&data, Options { limits, trace: None });
        let zeros = child(&root, "zeros");
        assert!(kinds(zeros).contains(&NoteKind::LimitExceeded), "{:?}", zeros.notes);
        assert!(zeros.size <= (1 << 20) + 1);
        // The member after it in the solid block was not reached: a limit, not opacity.
        assert_eq!(kinds(&root), vec![NoteKind::LimitExceeded], "{:?}", root.notes);
        // With default limits, both are inspected.
        let root = scan_bytes(&data, Options::default());
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(child(&root, "zeros").size, 4 << 20);
        assert_eq!(globals(child(&root, "archive/data.pkl")), vec!["posix.system".to_string()]);
    }

    #[test]
    fn a_damaged_signature_header_is_not_searched() {
        let mut data = hex(LZMA2);
        data[8..32].fill(0);
        let root = scan_bytes(&data, Options::default());
        assert!(kinds(&root).contains(&NoteKind::ArchiveMalformed));
        assert!(kinds(&root).contains(&NoteKind::ArchiveOpaque));
        let mut data = hex(LZMA2);
        data[13] ^= 1;
        let root = scan_bytes(&data, Options::default());
        assert_eq!(kinds(&root), vec![NoteKind::ArchiveMalformed, NoteKind::ArchiveOpaque]);
    }

    #[test]
    fn data_after_the_archive_is_trailing() {
        let mut data = hex(LZMA2);
        let end = data.len() as u64;
        data.extend_from_slice(EVIL);
        for root in [
            scan_bytes(&data, Options::default()),
            crate::scan_reader(&data[..], Options::default()).expect("read"),
        ] {
            assert_eq!(kinds(&root), vec![NoteKind::TrailingData]);
            let t = root.children.last().expect("trailing");
            assert_eq!(t.parent_offset, Some(end));
            assert_eq!(globals(t), vec!["posix.system".to_string()]);
        }
    }

    #[test]
    fn the_reference_sample_if_present() {
        let path = std::path::Path::new("/work/shared/format-samples/torch_evil_7z.pt");
        let Ok(data) = std::fs::read(path) else {
            return;
        };
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::SevenZip);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        assert_eq!(root.children.len(), 7);
        assert!(globals(child(&root, "torch_evil/data.pkl")).contains(&"posix.system".to_string()));
    }

    #[test]
    fn robustness_truncations_and_flips() {
        robustness(&hex(LZMA2), 400, 31);
        robustness(&hex(COPY), 400, 37);
    }
}
