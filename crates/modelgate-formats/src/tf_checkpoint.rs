//! TensorFlow checkpoint index (`variables.index`, `ckpt-N.index`): the table `BundleReader`
//! opens before it reads any tensor from the data shards.
//!
//! The file is a LevelDB-format table (`tensorflow/core/lib/io/table*`): data blocks of
//! prefix-compressed key/value entries, an index block pointing at them, and a 48-byte footer
//! ending with the table magic. Every block carries a type byte (0: stored) and a masked
//! CRC-32C, which TensorFlow's `ReadBlock` checks. The entry with the empty key is the
//! `BundleHeaderProto{1 num_shards, 2 endianness, 3 version}`; every other key is a tensor name
//! whose value is a `BundleEntryProto{1 dtype, 2 shape{2 dim{1 size}}, 3 shard_id, 4 offset,
//! 5 size, 6 crc32c, 7 slices}`: where its bytes are in `<prefix>.data-<shard>-of-<num_shards>`.
//!
//! What is checked: the table structure (handles inside the file, checksums, stored blocks, keys
//! in strictly increasing order as the reader's binary search needs), the header, and each
//! entry's shard and extent. Anything wrong is a malformed model (MG005): TensorFlow cannot
//! restore from it. The extents are kept per shard, so the command can compare them with the
//! shard files next to the index. Tensor data itself is never read.

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, GraphInventory, Node, Note, NoteKind};
use crate::protobuf::slice::{self as protobuf, Field};
use crate::stream::Stream;
use serde::Serialize;

/// `kTableMagicNumber`.
const TABLE_MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Footer: two block handles padded to 40 bytes, then the magic.
const FOOTER: usize = 48;
/// Type byte and checksum after every block.
const BLOCK_TRAILER: usize = 5;
/// [`Limits::TF_CHECKPOINT_SHARDS`](crate::Limits::TF_CHECKPOINT_SHARDS)
pub const MAX_SHARDS: u64 = crate::limits::Limits::TF_CHECKPOINT_SHARDS;

/// What a checkpoint index says about its tensors and shards.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CheckpointIndexInfo {
    /// `BundleHeaderProto.num_shards`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_shards: Option<u64>,
    /// `BundleHeaderProto.endianness` (`little` or `big`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endianness: Option<String>,
    /// Tensor entries (the header excluded).
    pub tensors: u64,
    /// Elements over all fully known shapes (a partitioned variable counts through its slices).
    pub elements: u64,
    /// Entries per dtype (`DT_FLOAT`…), in order of first appearance.
    pub dtypes: GraphInventory,
    /// For each shard id, the end of the furthest extent an entry reads from it.
    pub shard_extents: Vec<u64>,
}

/// A structural problem, with the offset in the file where it was seen.
struct Bad {
    at: usize,
    what: String,
}

fn bad(at: usize, what: impl Into<String>) -> Bad {
    Bad { at, what: what.into() }
}

pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let Some(data) = crate::driver::read_whole(s, ctx, node, "the checkpoint index") else {
        return Rest::Drain;
    };
    let mut info = CheckpointIndexInfo::default();
    let mut problems = Vec::new();
    if let Err(b) = read_table(&data, &mut info, &mut problems) {
        problems.insert(0, b);
    }
    for b in problems.into_iter().take(8) {
        node.note(
            Note::new(
                NoteKind::Malformed,
                format!("checkpoint index: {}; TensorFlow cannot restore from it", b.what),
            )
            .at(b.at as u64),
        );
    }
    node.detail = Detail::CheckpointIndex(Box::new(info));
    Rest::Drain
}

/// A varint at `b[at..]`: its value and the offset after it.
fn varint_at(b: &[u8], at: usize) -> Result<(u64, usize), Bad> {
    let (v, n) =
        b.get(at..).and_then(protobuf::varint).ok_or_else(|| bad(at, "a varint is cut or too long"))?;
    Ok((v, at + n))
}

/// A block handle (offset, size) at `b[at..]`, and the offset after it.
fn handle_at(b: &[u8], at: usize) -> Result<((u64, u64), usize), Bad> {
    let (offset, at) = varint_at(b, at)?;
    let (size, at) = varint_at(b, at)?;
    Ok(((offset, size), at))
}

/// The contents of the block `handle` names, checked like `ReadBlock` checks them.
fn block<'d>(data: &'d [u8], (offset, size): (u64, u64), what: &str) -> Result<&'d [u8], Bad> {
    let start =
        usize::try_from(offset).map_err(|_| bad(0, format!("the {what} block offset is out of range")))?;
    let len = usize::try_from(size).map_err(|_| bad(0, format!("the {what} block size is out of range")))?;
    let end = start
        .checked_add(len)
        .filter(|&e| e.checked_add(BLOCK_TRAILER).is_some_and(|t| t <= data.len() - FOOTER))
        .ok_or_else(|| {
            bad(start, format!("the {what} block ({len} bytes at {start}) runs past the table"))
        })?;
    let kind = data[end];
    let stored = u32::from_le_bytes([data[end + 1], data[end + 2], data[end + 3], data[end + 4]]);
    let actual = mask(crc32c(&data[start..=end]));
    if stored != actual {
        return Err(bad(
            end,
            format!("the {what} block's CRC-32C is {stored:#010x}, its bytes give {actual:#010x}"),
        ));
    }
    if kind != 0 {
        return Err(bad(
            end,
            format!(
                "the {what} block is compressed (type {kind}); TensorFlow's tensor bundles store blocks uncompressed"
            ),
        ));
    }
    Ok(&data[start..end])
}

/// Walks the entries of a block that starts at `base` in the file, calling `f(key, after,
/// value, offset)` for each. `after` says whether the key sorts strictly after the one before it
/// (the previous entry, or `before` for the first). Keys are rebuilt in one buffer and compared
/// through their shared prefix, so a block of ever-longer keys costs its size, not its size
/// squared. Returns the block's last key (`None` for a block without entries).
fn for_each_entry(
    block: &[u8],
    base: usize,
    before: Option<&[u8]>,
    mut f: impl FnMut(&[u8], bool, &[u8], usize) -> Result<(), Bad>,
) -> Result<Option<Vec<u8>>, Bad> {
    let n = block.len();
    if n < 4 {
        return Err(bad(base, "a block is shorter than its restart count"));
    }
    let restarts = u32::from_le_bytes([block[n - 4], block[n - 3], block[n - 2], block[n - 1]]) as usize;
    let limit =
        restarts.checked_mul(4).and_then(|r| r.checked_add(4)).and_then(|r| n.checked_sub(r)).ok_or_else(
            || bad(base, format!("a block claims {restarts} restart points, more than fit in it")),
        )?;
    let mut key: Vec<u8> = Vec::new();
    let mut first = true;
    let mut at = 0;
    while at < limit {
        let start = at;
        let (shared, next) = varint_at(&block[..limit], at).map_err(|b| bad(base + b.at, b.what))?;
        let (own, next) = varint_at(&block[..limit], next).map_err(|b| bad(base + b.at, b.what))?;
        let (value_len, next) = varint_at(&block[..limit], next).map_err(|b| bad(base + b.at, b.what))?;
        let shared = usize::try_from(shared).unwrap_or(usize::MAX);
        if shared > key.len() {
            return Err(bad(base + start, "an entry shares more key bytes than the previous key has"));
        }
        let own_end = usize::try_from(own).ok().and_then(|o| next.checked_add(o)).filter(|&e| e <= limit);
        let value_end = own_end.and_then(|e| usize::try_from(value_len).ok().and_then(|v| e.checked_add(v)));
        let (Some(own_end), Some(value_end)) = (own_end, value_end.filter(|&e| e <= limit)) else {
            return Err(bad(base + start, "an entry runs past the end of its block"));
        };
        let delta = &block[next..own_end];
        // The new key is key[..shared] + delta: it sorts after the old one iff delta sorts after
        // what it replaces.
        let after = if first { before.is_none_or(|b| delta > b) } else { delta > &key[shared..] };
        first = false;
        key.truncate(shared);
        key.extend_from_slice(delta);
        f(&key, after, &block[own_end..value_end], base + start)?;
        at = value_end;
    }
    Ok((!first).then_some(key))
}

fn read_table(data: &[u8], info: &mut CheckpointIndexInfo, problems: &mut Vec<Bad>) -> Result<(), Bad> {
    let len = data.len();
    if len < FOOTER {
        return Err(bad(0, "shorter than a table footer"));
    }
    let footer = len - FOOTER;
    let magic = u64::from_le_bytes(data[len - 8..].try_into().map_err(|_| bad(len - 8, "no magic"))?);
    if magic != TABLE_MAGIC {
        return Err(bad(len - 8, "the footer does not end with the table magic"));
    }
    let (_metaindex, at) = handle_at(&data[..len - 8], footer)?;
    let (index, _) = handle_at(&data[..len - 8], at)?;
    let index_block = block(data, index, "index")?;
    let index_base = usize::try_from(index.0).unwrap_or(0);
    let mut last: Option<Vec<u8>> = None;
    let mut header_seen = false;
    // Data blocks follow each other in a table; a handle back to an earlier block would have
    // the same bytes parsed (and checksummed) once per index entry.
    let mut next_block = 0u64;
    for_each_entry(index_block, index_base, None, |_, _, handle, at| {
        let (data_handle, _) = handle_at(handle, 0).map_err(|b| bad(at, b.what))?;
        if data_handle.0 < next_block {
            return Err(bad(at, "the index points at data blocks out of order or twice"));
        }
        next_block = data_handle.0.saturating_add(data_handle.1);
        let data_block = block(data, data_handle, "data")?;
        let base = usize::try_from(data_handle.0).unwrap_or(0);
        let block_last = for_each_entry(data_block, base, last.as_deref(), |key, after, value, at| {
            if !after {
                return Err(bad(
                    at,
                    format!(
                        "key {:?} is not after the previous key; the reader's lookups miss entries",
                        lossy(key)
                    ),
                ));
            }
            if key.is_empty() {
                header_seen = true;
                header(value, at, info, problems);
            } else if !header_seen {
                return Err(bad(at, "the first entry is not the bundle header (empty key)"));
            } else {
                entry(key, value, at, info, problems);
            }
            Ok(())
        })?;
        if block_last.is_some() {
            last = block_last;
        }
        Ok(())
    })?;
    if !header_seen {
        return Err(bad(footer, "no bundle header (the entry with the empty key)"));
    }
    Ok(())
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(&key[..key.len().min(128)]).into_owned()
}

fn fields(value: &[u8]) -> Option<Vec<Field<'_>>> {
    protobuf::fields(value).collect::<Result<Vec<_>, _>>().ok()
}

fn header(value: &[u8], at: usize, info: &mut CheckpointIndexInfo, problems: &mut Vec<Bad>) {
    let Some(fs) = fields(value) else {
        problems.push(bad(at, "the bundle header is not a valid BundleHeaderProto"));
        return;
    };
    let num_shards = fs.iter().rev().find(|f| f.number == 1).and_then(Field::varint).unwrap_or(0);
    info.num_shards = Some(num_shards);
    info.endianness = Some(
        match fs.iter().rev().find(|f| f.number == 2).and_then(Field::varint).unwrap_or(0) {
            0 => "little",
            1 => "big",
            _ => "unknown",
        }
        .to_string(),
    );
    let consumer = fs
        .iter()
        .filter(|f| f.number == 3)
        .filter_map(Field::bytes)
        .filter_map(fields)
        .flat_map(|v| v.into_iter().filter(|f| f.number == 2).filter_map(|f| f.varint()).collect::<Vec<_>>())
        .max();
    // The reader is kTensorBundleVersion 1; a bundle asking for a newer one is refused.
    if let Some(c) = consumer.filter(|&c| c > 1) {
        problems.push(bad(at, format!("the bundle needs a reader of version {c} or newer")));
    }
}

fn dtype_name(v: u64) -> String {
    const NAMES: [&str; 24] = [
        "DT_INVALID",
        "DT_FLOAT",
        "DT_DOUBLE",
        "DT_INT32",
        "DT_UINT8",
        "DT_INT16",
        "DT_INT8",
        "DT_STRING",
        "DT_COMPLEX64",
        "DT_INT64",
        "DT_BOOL",
        "DT_QINT8",
        "DT_QUINT8",
        "DT_QINT32",
        "DT_BFLOAT16",
        "DT_QINT16",
        "DT_QUINT16",
        "DT_UINT16",
        "DT_COMPLEX128",
        "DT_HALF",
        "DT_RESOURCE",
        "DT_VARIANT",
        "DT_UINT32",
        "DT_UINT64",
    ];
    usize::try_from(v).ok().and_then(|i| NAMES.get(i)).map_or_else(|| format!("DT_{v}"), |n| n.to_string())
}

fn entry(key: &[u8], value: &[u8], at: usize, info: &mut CheckpointIndexInfo, problems: &mut Vec<Bad>) {
    let name = lossy(key);
    let Some(fs) = fields(value) else {
        problems.push(bad(at, format!("the entry for {name:?} is not a valid BundleEntryProto")));
        return;
    };
    info.tensors += 1;
    let last_varint = |n: u64| fs.iter().rev().find(|f| f.number == n).and_then(Field::varint);
    info.dtypes.count(&dtype_name(last_varint(1).unwrap_or(0)));
    // Elements of a fully known shape (a dim of -1 or unknown rank leaves it out).
    let dims: Option<Vec<u64>> = fs
        .iter()
        .filter(|f| f.number == 2)
        .filter_map(Field::bytes)
        .filter_map(fields)
        .flat_map(|shape| {
            shape.into_iter().filter(|f| f.number == 2).filter_map(|f| f.bytes()).collect::<Vec<_>>()
        })
        .map(|dim| fields(dim).and_then(|d| d.iter().rev().find(|f| f.number == 1).map(|f| f.varint())))
        .map(|size| match size {
            None => Some(0),                       // proto3 leaves a size of 0 out
            Some(v) => v.filter(|&v| v < 1 << 62), // -1 (unknown) is a ten-byte varint
        })
        .collect();
    // A partitioned variable's own entry lists its slices (field 7); their entries hold the data.
    let partitioned = fs.iter().any(|f| f.number == 7);
    if let Some(dims) = dims.filter(|_| !partitioned) {
        let n = dims.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        info.elements = info.elements.saturating_add(n.unwrap_or(0));
    }
    let shard = last_varint(3).unwrap_or(0);
    let offset = last_varint(4).unwrap_or(0);
    let size = last_varint(5).unwrap_or(0);
    let num_shards = info.num_shards.unwrap_or(0);
    if shard >= num_shards.max(1) {
        problems.push(bad(
            at,
            format!("{name:?} is in shard {shard}, but the header declares {num_shards} shard(s)"),
        ));
        return;
    }
    let Some(end) = offset.checked_add(size) else {
        problems.push(bad(at, format!("{name:?}: offset {offset} + size {size} overflows")));
        return;
    };
    if shard < MAX_SHARDS {
        let i = shard as usize;
        if info.shard_extents.len() <= i {
            info.shard_extents.resize(i + 1, 0);
        }
        info.shard_extents[i] = info.shard_extents[i].max(end);
    }
}

/// CRC-32C (Castagnoli), bit by bit over a table built once.
fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { (c >> 1) ^ 0x82f6_3b78 } else { c >> 1 };
            }
            *slot = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8))
}

/// LevelDB's `crc32c::Mask`: stored checksums are rotated and offset.
fn mask(crc: u32) -> u32 {
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protobuf::tests::{fl, fv};
    use crate::{Format, Options, scan_bytes};

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        crate::protobuf::tests::enc_varint(v, &mut out);
        out
    }

    /// A block of `entries` (no key sharing, one restart point) with its trailer.
    fn block(entries: &[(Vec<u8>, Vec<u8>)], kind: u8) -> Vec<u8> {
        let mut b = Vec::new();
        for (k, v) in entries {
            b.extend(varint(0));
            b.extend(varint(k.len() as u64));
            b.extend(varint(v.len() as u64));
            b.extend(k);
            b.extend(v);
        }
        b.extend(0u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.push(kind);
        let crc = mask(crc32c(&b));
        b.extend(crc.to_le_bytes());
        b
    }

    /// A one-data-block table.
    fn table(entries: &[(Vec<u8>, Vec<u8>)], kind: u8) -> Vec<u8> {
        table_with_index_entries(entries, kind, 1)
    }

    /// A one-data-block table whose index names that block `refs` times.
    fn table_with_index_entries(entries: &[(Vec<u8>, Vec<u8>)], kind: u8, refs: usize) -> Vec<u8> {
        let data = block(entries, kind);
        let data_handle = [varint(0), varint((data.len() - BLOCK_TRAILER) as u64)].concat();
        let meta_at = data.len();
        let meta = block(&[], 0);
        let index_at = meta_at + meta.len();
        let last = entries.last().map(|e| e.0.clone()).unwrap_or_default();
        let index_entries: Vec<(Vec<u8>, Vec<u8>)> =
            (0..refs).map(|i| ([last.clone(), vec![b'~'; i]].concat(), data_handle.clone())).collect();
        let index = block(&index_entries, 0);
        let mut footer = [
            varint(meta_at as u64),
            varint((meta.len() - BLOCK_TRAILER) as u64),
            varint(index_at as u64),
            varint((index.len() - BLOCK_TRAILER) as u64),
        ]
        .concat();
        footer.resize(40, 0);
        footer.extend(TABLE_MAGIC.to_le_bytes());
        [data, meta, index, footer].concat()
    }

    fn header(shards: u64) -> (Vec<u8>, Vec<u8>) {
        (Vec::new(), [fv(1, shards), fl(3, &fv(1, 1))].concat())
    }

    /// `BundleEntryProto` for a float tensor of `dims` at `offset..offset+size` of `shard`.
    fn tensor(name: &str, dims: &[u64], shard: u64, offset: u64, size: u64) -> (Vec<u8>, Vec<u8>) {
        let shape: Vec<u8> = dims.iter().flat_map(|&d| fl(2, &fv(1, d))).collect();
        let value = [fv(1, 1), fl(2, &shape), fv(3, shard), fv(4, offset), fv(5, size)].concat();
        (name.as_bytes().to_vec(), value)
    }

    fn scan(data: &[u8]) -> Node {
        let n = scan_bytes(data, Options::default());
        assert_eq!(n.format, Format::TfCheckpointIndex);
        n
    }

    fn info(n: &Node) -> &CheckpointIndexInfo {
        match &n.detail {
            Detail::CheckpointIndex(i) => i,
            other => panic!("no checkpoint index detail: {other:?}"),
        }
    }

    fn malformed(n: &Node) -> Vec<&str> {
        n.notes.iter().filter(|x| x.kind == NoteKind::Malformed).map(|x| x.detail.as_str()).collect()
    }

    #[test]
    fn crc32c_known_value() {
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn a_real_keras_export_index() {
        let n = scan(include_bytes!(
            "../../../tests/fixtures/benign/keras-tf/keras3_export/variables/variables.index"
        ));
        assert!(n.notes.is_empty(), "{:?}", n.notes);
        let i = info(&n);
        assert_eq!((i.num_shards, i.tensors, i.elements), (Some(1), 5, 21));
        assert_eq!(i.shard_extents, [722]);
    }

    #[test]
    fn a_two_shard_bundle() {
        let t = table(
            &[
                header(2),
                tensor("a", &[2, 3], 0, 0, 24),
                tensor("b", &[4], 1, 8, 16),
                tensor("c", &[], 0, 24, 4),
            ],
            0,
        );
        let n = scan(&t);
        assert!(n.notes.is_empty(), "{:?}", n.notes);
        let i = info(&n);
        assert_eq!((i.num_shards, i.tensors, i.elements), (Some(2), 3, 11));
        assert_eq!(i.shard_extents, [28, 24]);
    }

    #[test]
    fn structural_problems_are_malformed() {
        // A shard the header does not declare.
        let n = scan(&table(&[header(1), tensor("a", &[1], 3, 0, 4)], 0));
        assert!(malformed(&n)[0].contains("shard 3"), "{:?}", malformed(&n));
        // Keys out of order.
        let n = scan(&table(&[header(1), tensor("b", &[1], 0, 0, 4), tensor("a", &[1], 0, 4, 4)], 0));
        assert!(malformed(&n)[0].contains("not after the previous key"), "{:?}", malformed(&n));
        // No header.
        let n = scan(&table(&[tensor("a", &[1], 0, 0, 4)], 0));
        assert!(malformed(&n)[0].contains("bundle header"), "{:?}", malformed(&n));
        // A compressed block.
        let n = scan(&table(&[header(1)], 1));
        assert!(malformed(&n)[0].contains("compressed"), "{:?}", malformed(&n));
        // A flipped byte in the data block.
        let mut t = table(&[header(1), tensor("a", &[1], 0, 0, 4)], 0);
        t[3] ^= 1;
        let n = scan(&t);
        assert!(malformed(&n)[0].contains("CRC-32C"), "{:?}", malformed(&n));
        // An extent that overflows.
        let n = scan(&table(&[header(1), tensor("a", &[1], 0, u64::MAX, 4)], 0));
        assert!(malformed(&n)[0].contains("overflows"), "{:?}", malformed(&n));
        // An index naming the same data block twice (its bytes would be parsed once per name).
        let n = scan(&table_with_index_entries(&[header(1), tensor("a", &[1], 0, 0, 4)], 0, 2));
        assert!(malformed(&n)[0].contains("out of order or twice"), "{:?}", malformed(&n));
        // An index block handle past the end.
        let mut t = table(&[header(1)], 0);
        let footer = t.len() - FOOTER;
        t[footer + 2] = 0x7f;
        assert!(!malformed(&scan(&t)).is_empty());
    }

    /// Keys share prefixes: each entry stores only what differs from the one before. A block of
    /// ever-longer keys is checked for order through that prefix, not by copying every key.
    #[test]
    fn keys_sharing_prefixes_are_rebuilt_and_ordered() {
        let mut b = Vec::new();
        for (shared, delta) in [(0usize, &b""[..]), (0, b"layer"), (5, b"/a"), (6, b"b"), (7, b"/c")] {
            let value = if delta.is_empty() { header(1).1 } else { tensor("x", &[1], 0, 0, 4).1 };
            b.extend(varint(shared as u64));
            b.extend(varint(delta.len() as u64));
            b.extend(varint(value.len() as u64));
            b.extend(delta);
            b.extend(value);
        }
        b.extend(0u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        let mut seen = Vec::new();
        let last = for_each_entry(&b, 0, None, |key, after, _, _| {
            seen.push((String::from_utf8_lossy(key).into_owned(), after));
            Ok(())
        })
        .ok()
        .flatten();
        let expected =
            [("", true), ("layer", true), ("layer/a", true), ("layer/b", true), ("layer/b/c", true)];
        assert_eq!(seen, expected.map(|(k, a)| (k.to_string(), a)));
        assert_eq!(last.as_deref(), Some(&b"layer/b/c"[..]));
        // The same block after one that ended with "zzz": its first key is out of order.
        let mut seen = Vec::new();
        let _ = for_each_entry(&b, 0, Some(&b"zzz"[..]), |key, after, _, _| {
            seen.push((key.to_vec(), after));
            Ok(())
        });
        assert!(!seen[0].1, "the first key must sort after the previous block's last");
    }

    #[test]
    fn every_cut_and_every_flipped_byte_is_handled() {
        let t = table(&[header(2), tensor("a", &[2, 3], 0, 0, 24), tensor("b", &[4], 1, 8, 16)], 0);
        for i in 0..t.len() {
            let mut bad = t.clone();
            bad[i] ^= 0x55;
            let _ = scan_bytes(&bad, Options::default());
            let _ = scan_bytes(&t[..i], Options::default());
        }
    }
}
