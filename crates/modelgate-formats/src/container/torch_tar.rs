//! The oldest `torch.save` format (torch < 0.1.10): a tar archive with members `sys_info`,
//! `pickle`, `storages` and `tensors`. `torch.serialization._legacy_load` still reads it when the
//! file opens as a tar (and only with `weights_only=False`, which unpickles everything):
//!
//! * `storages`: a pickled count; per storage a pickled `(key, location, storage_type)` followed by
//!   an 8-byte little-endian element count and the raw elements; then a pickled list of storage
//!   views `(target, root, offset, numel)`.
//! * `tensors`: a pickled count; per tensor a pickled `(key, storage_id, tensor_type)` followed by
//!   a 4-byte dimension count, 4 unused bytes, the sizes and strides (8 bytes each per dimension)
//!   and an 8-byte storage offset.
//! * `pickle`: the object, unpickled with a `persistent_load` that returns the class of a
//!   `(class, source_file, source)` tuple and otherwise the storage or tensor `int(id)` names.
//!
//! `storages` and `tensors` are unpickled with plain `pickle.load`, so a payload in any of these
//! pickles runs. Each member is scanned as the loader reads it; tensors are checked against the
//! storages they view.

use crate::driver::{Driver, How, Rest, scan_node, scan_node_with};
use crate::inventory::{Format, Node, Note, NoteKind};
use crate::pickle::value::{Obj, Value};
use crate::pickle::{End, Loader, Machine, PickleLoader, PlainLoader, Session};
use crate::stream::Stream;
use std::collections::HashMap;

const MAX_RECORDS: usize = crate::limits::Limits::TORCH_TAR_RECORDS;
const MAX_DIMS: u64 = crate::limits::Limits::TORCH_TAR_DIMS;

/// A member the legacy loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegacyMember {
    /// Written by `torch.save`, not read back by the tar loader.
    SysInfo,
    Pickle,
    Storages,
    Tensors,
}

/// The legacy layout's role for a member name (names are matched exactly, as `getmember` does).
pub(crate) fn member(name: &str) -> Option<LegacyMember> {
    Some(match name {
        "sys_info" => LegacyMember::SysInfo,
        "pickle" => LegacyMember::Pickle,
        "storages" => LegacyMember::Storages,
        "tensors" => LegacyMember::Tensors,
        _ => return None,
    })
}

/// True when `torch.load` would read the archive as a legacy torch file: it extracts
/// `storages`, `tensors` and `pickle` by name.
pub(crate) fn is_legacy_layout<S: AsRef<str>>(names: &[S]) -> bool {
    ["pickle", "storages", "tensors"].iter().all(|want| names.iter().any(|n| n.as_ref() == *want))
}

struct TensorRecord {
    key: String,
    storage: String,
    size: Vec<i64>,
    stride: Vec<i64>,
    offset: i64,
}

/// What the members of one archive say about storages and tensors.
#[derive(Default)]
pub(crate) struct LegacyState {
    /// Storage key → element count (from `storages`, views included).
    storages: HashMap<String, u64>,
    tensors: Vec<TensorRecord>,
}

impl LegacyState {
    /// Checks every tensor against the storage it views, once all members are read.
    pub(crate) fn finish(&self, archive: &mut Node) {
        for t in &self.tensors {
            let Some(&numel) = self.storages.get(&t.storage) else {
                continue;
            };
            if let Some(problem) = crate::torch::tensor_bounds_problem(t.offset, &t.size, &t.stride, numel) {
                archive.note(
                    Note::new(
                        NoteKind::TorchTensorBounds,
                        format!(
                            "legacy tensor '{}' of size {:?}, stride {:?}, offset {} on storage '{}' of {numel} elements: {problem}",
                            t.key, t.size, t.stride, t.offset, t.storage
                        ),
                    )
                    .evidence(format!(
                        "tensor {} storage {} size {:?} stride {:?} offset {}",
                        t.key, t.storage, t.size, t.stride, t.offset
                    )),
                );
            }
        }
    }
}

/// Scans one member of a legacy torch tar the way the loader reads it.
pub(crate) fn scan_member(
    stream: Stream<'_>,
    ctx: &mut dyn Driver,
    child: Node,
    which: LegacyMember,
    state: &mut LegacyState,
) -> Node {
    if which == LegacyMember::SysInfo {
        return scan_node(stream, ctx, child, How::Sniff);
    }
    scan_node_with(
        stream,
        ctx,
        child,
        |_, _| Format::Pickle,
        |_, s, ctx, node| {
            let mut session = Session::new(PickleLoader::TorchLegacy);
            let rest = match which {
                LegacyMember::Storages => storages(&mut session, s, ctx, node, state),
                LegacyMember::Tensors => tensors(&mut session, s, ctx, node, state),
                _ => {
                    // One `load()` with torch's persistent_load.
                    session.run(node, s, ctx, &mut TarPickleLoader, |_, _| ());
                    Rest::Trailing
                }
            };
            session.finish(node);
            rest
        },
    )
}

/// The `persistent_load` of the legacy tar branch.
struct TarPickleLoader;

impl Loader for TarPickleLoader {
    fn persistent_load(&mut self, m: &mut Machine<'_>, pid: Value, offset: u64) -> Value {
        if let Some(items) = pid.as_tuple() {
            // (class, source_file, source): torch returns the class.
            if let Some(first) = items.first() {
                return first.clone();
            }
        } else if key_of(&pid).is_some_and(|k| k.trim().parse::<i128>().is_ok()) {
            return Value::Unknown("legacy storage or tensor");
        }
        m.note(
            Note::new(
                NoteKind::PicklePersistentId,
                "persistent id that torch's legacy tar loader cannot resolve (it expects a (class, source file, source) tuple or an integer id)",
            )
            .at(offset)
            .evidence(m.describe(&pid)),
        );
        Value::Unknown("persistent id")
    }
}

/// A storage or tensor key as the loader's dictionary sees it.
fn key_of(v: &Value) -> Option<String> {
    match v {
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(i64::from(*b).to_string()),
        _ => v.as_str().map(str::to_string),
    }
}

fn layout_note(node: &mut Node, offset: u64, detail: String) {
    node.note(Note::new(NoteKind::Malformed, detail).at(offset));
}

/// Runs one pickle; `None` when it did not reach STOP (the engine has noted why).
fn load<R>(
    session: &mut Session,
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    inspect: impl FnOnce(&Machine<'_>, &Value) -> R,
) -> Option<R> {
    match session.run(node, s, ctx, &mut PlainLoader, inspect) {
        (End::Stop(_), r) => r,
        (End::Empty, _) => {
            layout_note(
                node,
                s.position(),
                "the member ends where the legacy torch loader expects another pickle".into(),
            );
            None
        }
        (End::Error, _) => None,
    }
}

/// A pickled count (`range(count)` in the loader).
fn count(
    session: &mut Session,
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    what: &str,
) -> Option<u64> {
    let at = s.position();
    let n = load(session, s, ctx, node, |_, v| v.as_int())?;
    match n {
        Some(n) => Some(u64::try_from(n).unwrap_or(0)),
        None => {
            layout_note(node, at, format!("the {what} count is not an integer (torch.load fails)"));
            None
        }
    }
}

/// The `storages` member.
fn storages(
    session: &mut Session,
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    state: &mut LegacyState,
) -> Rest {
    let Some(n) = count(session, s, ctx, node, "storage") else {
        return Rest::Drain;
    };
    for i in 0..n {
        let at = s.position();
        let Some(record) = load(session, s, ctx, node, |m, v| {
            let items = v.as_tuple()?;
            if items.len() != 3 {
                return None;
            }
            let key = key_of(&items[0])?;
            let storage_type = m.global(&items[2])?.qualified();
            Some((key, crate::torch::element_size(&storage_type), storage_type))
        }) else {
            return Rest::Drain;
        };
        let Some((key, element_size, storage_type)) = record else {
            layout_note(
                node,
                at,
                format!("storage record {i} is not (key, location, storage type) (torch.load fails)"),
            );
            return Rest::Drain;
        };
        let Some(element_size) = element_size else {
            layout_note(
                node,
                at,
                format!(
                    "storage '{key}' has type {storage_type}, which has no known element size; its data cannot be skipped"
                ),
            );
            return Rest::Drain;
        };
        let at = s.position();
        let Ok(Some(raw)) = s.read_array::<8>() else {
            layout_note(node, at, format!("the member ends before storage '{key}'"));
            return Rest::Drain;
        };
        let elements = i64::from_le_bytes(raw);
        let Some(nbytes) = u64::try_from(elements).ok().and_then(|e| e.checked_mul(element_size)) else {
            layout_note(node, at, format!("storage '{key}' declares {elements} elements (torch.load fails)"));
            return Rest::Drain;
        };
        if s.skip(nbytes).ok() != Some(nbytes) {
            layout_note(node, at, format!("the member ends inside storage '{key}'"));
            return Rest::Drain;
        }
        if state.storages.len() < MAX_RECORDS {
            state.storages.insert(key, elements.unsigned_abs());
        }
    }
    // Views: (target, root, offset, numel), slices of storages read above.
    let at = s.position();
    let Some(views) = load(session, s, ctx, node, |m, v| match m.obj(v)? {
        Obj::List { items, .. } => items
            .iter()
            .map(|item| {
                let t = item.as_tuple()?;
                if t.len() != 4 {
                    return None;
                }
                Some((key_of(&t[0])?, key_of(&t[1])?, t[2].as_int()?, t[3].as_int()?))
            })
            .collect::<Option<Vec<_>>>(),
        _ => None,
    }) else {
        return Rest::Drain;
    };
    let Some(views) = views else {
        layout_note(
            node,
            at,
            "the storage views are not a list of (target, root, offset, numel) (torch.load fails)".into(),
        );
        return Rest::Drain;
    };
    for (target, root, offset, numel) in views {
        let Some(&root_numel) = state.storages.get(&root) else {
            continue;
        };
        // Python slicing clamps the view to the root storage.
        let offset = u64::try_from(offset).unwrap_or(0).min(root_numel);
        let numel = u64::try_from(numel).unwrap_or(0).min(root_numel - offset);
        if state.storages.len() < MAX_RECORDS {
            state.storages.insert(target, numel);
        }
    }
    Rest::Trailing
}

/// The `tensors` member.
fn tensors(
    session: &mut Session,
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    state: &mut LegacyState,
) -> Rest {
    let Some(n) = count(session, s, ctx, node, "tensor") else {
        return Rest::Drain;
    };
    for i in 0..n {
        let at = s.position();
        let Some(record) = load(session, s, ctx, node, |_, v| {
            let items = v.as_tuple()?;
            if items.len() != 3 {
                return None;
            }
            Some((key_of(&items[0])?, key_of(&items[1])?))
        }) else {
            return Rest::Drain;
        };
        let Some((key, storage)) = record else {
            layout_note(
                node,
                at,
                format!("tensor record {i} is not (key, storage id, tensor type) (torch.load fails)"),
            );
            return Rest::Drain;
        };
        let at = s.position();
        let Ok(Some(head)) = s.read_array::<8>() else {
            layout_note(node, at, format!("the member ends before tensor '{key}'"));
            return Rest::Drain;
        };
        let ndim = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let Ok(ndim) = u64::try_from(ndim) else {
            layout_note(node, at, format!("tensor '{key}' has {ndim} dimensions (torch.load fails)"));
            return Rest::Drain;
        };
        let len = ndim * 16 + 8;
        if ndim > MAX_DIMS {
            if s.skip(len).ok() != Some(len) {
                layout_note(node, at, format!("the member ends inside tensor '{key}'"));
                return Rest::Drain;
            }
            continue;
        }
        let fields = s.read_vec(len as usize).unwrap_or_default();
        if fields.len() as u64 != len {
            layout_note(node, at, format!("the member ends inside tensor '{key}'"));
            return Rest::Drain;
        }
        let ints: Vec<i64> = fields
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        let d = ndim as usize;
        if state.tensors.len() < MAX_RECORDS {
            state.tensors.push(TensorRecord {
                key,
                storage,
                size: ints[..d].to_vec(),
                stride: ints[d..2 * d].to_vec(),
                offset: ints[2 * d],
            });
        }
    }
    Rest::Trailing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::compress::tests::{EVIL, robustness};
    use crate::container::tar::tests::TarBuilder;
    use crate::{Options, Role, scan_bytes};

    fn globals(node: &Node) -> Vec<String> {
        node.pickle().map(|p| p.globals.iter().map(|g| g.qualified()).collect()).unwrap_or_default()
    }

    fn child<'n>(node: &'n Node, name: &str) -> &'n Node {
        node.children.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no child {name}"))
    }

    /// `pickle.dumps(n, protocol=2)` for a small int.
    fn int_pickle(n: u8) -> Vec<u8> {
        vec![0x80, 2, b'K', n, b'.']
    }

    /// `('1', 'cpu', torch.FloatStorage)` pickled (protocol 2).
    fn storage_record() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"X\x01\x00\x00\x001X\x03\x00\x00\x00cpu");
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        p.extend_from_slice(b"\x87.");
        p
    }

    /// `('t', '1', torch.FloatTensor)` pickled (protocol 2).
    fn tensor_record() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend_from_slice(b"X\x01\x00\x00\x00tX\x01\x00\x00\x001");
        p.extend_from_slice(b"ctorch\nFloatTensor\n");
        p.extend_from_slice(b"\x87.");
        p
    }

    fn tensor_fields(size: &[i64], stride: &[i64], offset: i64) -> Vec<u8> {
        let mut v = (size.len() as i32).to_le_bytes().to_vec();
        v.extend_from_slice(&[0; 4]);
        for x in size.iter().chain(stride).chain([offset].iter()) {
            v.extend_from_slice(&x.to_le_bytes());
        }
        v
    }

    /// A legacy torch tar with one 6-element float storage and one tensor viewing it.
    fn legacy_tar(pickle: &[u8], tensor: &[u8], extra_storage_pickle: &[u8]) -> Vec<u8> {
        let mut storages = int_pickle(1);
        storages.extend(storage_record());
        storages.extend_from_slice(&6i64.to_le_bytes());
        storages.extend_from_slice(&[0u8; 24]);
        // Views: an empty list, or whatever the test puts there.
        if extra_storage_pickle.is_empty() {
            storages.extend_from_slice(b"\x80\x02].");
        } else {
            storages.extend_from_slice(extra_storage_pickle);
        }
        let mut tensors = int_pickle(1);
        tensors.extend(tensor_record());
        tensors.extend_from_slice(tensor);
        TarBuilder::new()
            .file("sys_info", b"\x80\x02}q\x00.")
            .file("pickle", pickle)
            .file("tensors", &tensors)
            .file("storages", &storages)
            .finish()
    }

    #[test]
    fn the_sample_layout_is_recognised() {
        // Like shared/format-samples/torch_legacy_tar_evil.tar: an os.system pickle and
        // zero counts.
        let data = TarBuilder::new()
            .file("sys_info", b"\x80\x02}q\x00.")
            .file("pickle", EVIL)
            .file("storages", &int_pickle(0))
            .file("tensors", &int_pickle(0))
            .finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::PytorchLegacyTar);
        assert!(root.notes.is_empty(), "{:?}", root.notes);
        let p = child(&root, "pickle");
        assert_eq!(p.role, Some(Role::LoaderPickle));
        assert_eq!(globals(p), vec!["posix.system".to_string()]);
        assert_eq!(p.pickle().map(|i| i.loader), Some(PickleLoader::TorchLegacy));
        assert_eq!(child(&root, "sys_info").role, Some(Role::LoaderRecord));
        let st = child(&root, "storages");
        assert_eq!(st.role, Some(Role::LoaderPickle));
        // The sample's `storages` lacks the views pickle torch reads next: torch.load fails.
        assert!(st.notes.iter().any(|n| n.kind == NoteKind::Malformed));
    }

    #[test]
    fn the_pickle_member_is_unpickled_whatever_it_looks_like() {
        // A pickle that starts with a BINFLOAT whose bytes spell "GGUF": sniffed as a GGUF
        // model by its magic, but torch unpickles the member anyway.
        let odd = b"GGUF\x00\x00\x00\x00\x000cposix\nsystem\n(S'id'\ntR.";
        for forward in [false, true] {
            let data = legacy_tar(odd, &tensor_fields(&[6], &[1], 0), b"");
            let root = if forward {
                crate::scan_reader(&data[..], Options::default()).expect("read")
            } else {
                scan_bytes(&data, Options::default())
            };
            assert_eq!(root.format, Format::PytorchLegacyTar);
            let p = child(&root, "pickle");
            assert_eq!(p.format, Format::Pickle);
            assert_eq!(globals(p), vec!["posix.system".to_string()]);
            assert!(root.notes.is_empty(), "{:?}", root.notes);
        }
    }

    #[test]
    fn payloads_in_storages_and_tensors_are_seen() {
        // The views pickle of `storages` carries the payload.
        let data = legacy_tar(b"\x80\x02K\x01.", &tensor_fields(&[6], &[1], 0), EVIL);
        let root = scan_bytes(&data, Options::default());
        let st = child(&root, "storages");
        assert!(globals(st).contains(&"posix.system".to_string()), "{:?}", st.notes);
        assert!(globals(st).contains(&"torch.FloatStorage".to_string()));
        // A payload as the tensor count.
        let mut tensors = EVIL.to_vec();
        tensors.extend_from_slice(b"junk");
        let data = TarBuilder::new()
            .file("pickle", b"\x80\x02K\x01.")
            .file("tensors", &tensors)
            .file("storages", &int_pickle(0))
            .finish();
        let root = scan_bytes(&data, Options::default());
        let t = child(&root, "tensors");
        assert_eq!(globals(t), vec!["posix.system".to_string()]);
        assert!(t.notes.iter().any(|n| n.kind == NoteKind::Malformed));
    }

    #[test]
    fn tensors_outside_their_storage_are_noted() {
        let ok = scan_bytes(
            &legacy_tar(b"\x80\x02K\x01.", &tensor_fields(&[2, 3], &[3, 1], 0), b""),
            Options::default(),
        );
        assert!(ok.notes.is_empty(), "{:?}", ok.notes);
        let bad = scan_bytes(
            &legacy_tar(b"\x80\x02K\x01.", &tensor_fields(&[2, 3], &[3, 1], 4), b""),
            Options::default(),
        );
        assert!(bad.notes.iter().any(|n| n.kind == NoteKind::TorchTensorBounds), "{:?}", bad.notes);
    }

    #[test]
    fn other_members_are_unexpected_and_non_legacy_tars_are_plain() {
        let data = TarBuilder::new()
            .file("README", b"hello")
            .file("pickle", EVIL)
            .file("storages", &int_pickle(0))
            .file("tensors", &int_pickle(0))
            .finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::PytorchLegacyTar);
        assert_eq!(root.notes.len(), 1);
        assert_eq!(root.notes[0].kind, NoteKind::TorchUnexpectedMember);
        assert_eq!(child(&root, "pickle").role, Some(Role::LoaderPickle));
        // Without `tensors`, torch does not read it as a legacy file.
        let data = TarBuilder::new()
            .file("pickle", b"not a pickle at all")
            .file("storages", &int_pickle(0))
            .finish();
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::Tar);
        assert_eq!(child(&root, "pickle").format, Format::Text);
        assert_eq!(child(&root, "pickle").role, None);
    }

    #[test]
    fn the_reference_sample_if_present() {
        let path = std::path::Path::new("/work/shared/format-samples/torch_legacy_tar_evil.tar");
        let Ok(data) = std::fs::read(path) else {
            return;
        };
        let root = scan_bytes(&data, Options::default());
        assert_eq!(root.format, Format::PytorchLegacyTar);
        assert_eq!(globals(child(&root, "pickle")), vec!["posix.system".to_string()]);
    }

    #[test]
    fn robustness_truncations_and_flips() {
        let data = legacy_tar(EVIL, &tensor_fields(&[2, 3], &[3, 1], 0), b"");
        robustness(&data[..5 * 1024], 400, 23);
    }
}
