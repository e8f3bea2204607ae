//! The pickle engine.
//!
//! `vm::Machine` runs one pickle stream symbolically; a `Session` runs the streams of one
//! byte stream in turn (legacy torch files stack five pickles, joblib interleaves array bytes,
//! attackers concatenate) and accumulates a single [`PickleInventory`]: every global imported,
//! every call site, every stream. What a global *means* is the policy's business.

mod compat;
pub(crate) mod hunt;
mod memo;
mod opcodes;
mod pynum;
pub(crate) mod recognise;
pub(crate) mod value;
pub(crate) mod vm;

use crate::driver::{Driver, Rest};
use crate::inventory::{Detail, Node};
use crate::stream::Stream;
use serde::Serialize;
use std::collections::HashMap;
pub(crate) use value::Value;
pub(crate) use vm::{End, Loader, Machine, PlainLoader};

pub use crate::inventory::PickleLoader;

/// What the pickle engine saw in one byte stream.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PickleInventory {
    /// The loader semantics applied.
    pub loader: PickleLoader,
    /// Each pickle stream, in order.
    pub streams: Vec<PickleStreamInfo>,
    /// Every distinct global imported, in order of first appearance.
    pub globals: Vec<GlobalRef>,
    /// Every distinct call site (by opcode and callee), in order of first appearance.
    pub calls: Vec<CallSite>,
}

/// One pickle stream.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PickleStreamInfo {
    /// Offset of its first opcode.
    pub offset: u64,
    /// The protocol its PROTO opcode declared (0 without one).
    pub protocol: u8,
    /// Opcodes executed.
    pub opcodes: u64,
    /// Offset of its STOP, if it reached one.
    pub stop: Option<u64>,
}

/// A global the unpickler imports (`find_class(module, name)`).
#[derive(Debug, Clone, Serialize)]
pub struct GlobalRef {
    /// The module, after CPython's protocol-2 renaming.
    pub module: String,
    /// The name, possibly dotted (`find_class` follows attributes).
    pub name: String,
    /// The `module.name` as written in the stream, when renaming changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_as: Option<String>,
    /// GLOBAL, INST or STACK_GLOBAL.
    pub opcode: &'static str,
    /// Offset of the first opcode that imported it.
    pub offset: u64,
    /// How many times it was imported.
    pub count: u64,
}

impl GlobalRef {
    /// `module.name`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// A place where the unpickler calls something.
#[derive(Debug, Clone, Serialize)]
pub struct CallSite {
    /// REDUCE, NEWOBJ, NEWOBJ_EX, OBJ, INST, or the container opcode that calls a method.
    pub opcode: &'static str,
    /// Offset of the first such call.
    pub offset: u64,
    /// What is called.
    pub callee: Callee,
    /// How many times.
    pub count: u64,
}

/// What a call site calls.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Callee {
    /// A global: index into [`PickleInventory::globals`].
    Global {
        /// The index.
        index: usize,
    },
    /// Something computed (the result of another call, a method of an object…).
    Value {
        /// What it is, as far as the engine can tell.
        description: String,
    },
}

/// Reading an inventory back (saved by a sharded scan or a cache): opcode names are the only
/// `&'static str` fields, and only the names of the opcode table are accepted.
mod saved {
    use super::opcodes::Op;

    fn opcode(name: &str) -> Result<&'static str, String> {
        Op::from_name(name).map(Op::name).ok_or_else(|| format!("{name:?} is not a pickle opcode"))
    }

    #[derive(serde::Deserialize)]
    pub(super) struct GlobalRef {
        module: String,
        name: String,
        #[serde(default)]
        written_as: Option<String>,
        opcode: String,
        offset: u64,
        count: u64,
    }

    impl<'de> serde::Deserialize<'de> for super::GlobalRef {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            GlobalRef::deserialize(d)?.try_into().map_err(serde::de::Error::custom)
        }
    }

    impl<'de> serde::Deserialize<'de> for super::CallSite {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            CallSite::deserialize(d)?.try_into().map_err(serde::de::Error::custom)
        }
    }

    impl TryFrom<GlobalRef> for super::GlobalRef {
        type Error = String;
        fn try_from(g: GlobalRef) -> Result<Self, String> {
            Ok(super::GlobalRef {
                module: g.module,
                name: g.name,
                written_as: g.written_as,
                opcode: opcode(&g.opcode)?,
                offset: g.offset,
                count: g.count,
            })
        }
    }

    #[derive(serde::Deserialize)]
    pub(super) struct CallSite {
        opcode: String,
        offset: u64,
        callee: super::Callee,
        count: u64,
    }

    impl TryFrom<CallSite> for super::CallSite {
        type Error = String;
        fn try_from(c: CallSite) -> Result<Self, String> {
            Ok(super::CallSite {
                opcode: opcode(&c.opcode)?,
                offset: c.offset,
                callee: c.callee,
                count: c.count,
            })
        }
    }
}

/// Runs the pickle streams of one byte stream and accumulates their inventory.
pub(crate) struct Session {
    inv: PickleInventory,
    globals: HashMap<(String, String), u32>,
    calls: HashMap<(String, String), usize>,
}

impl Session {
    pub(crate) fn new(loader: PickleLoader) -> Session {
        Session {
            inv: PickleInventory { loader, ..Default::default() },
            globals: HashMap::new(),
            calls: HashMap::new(),
        }
    }

    pub(crate) fn set_loader(&mut self, loader: PickleLoader) {
        self.inv.loader = loader;
    }

    /// Runs one stream; `at_stop` sees the value `load()` would return while the machine that
    /// built it is still alive.
    pub(crate) fn run<R>(
        &mut self,
        node: &mut Node,
        s: &mut Stream<'_>,
        ctx: &mut dyn Driver,
        loader: &mut dyn Loader,
        at_stop: impl FnOnce(&Machine<'_>, &Value) -> R,
    ) -> (End, Option<R>) {
        let mut m = Machine::new(node, &mut self.inv, &mut self.globals, &mut self.calls, ctx);
        let end = m.run(s, ctx, loader);
        let inspected = match &end {
            End::Stop(v) => Some(at_stop(&m, v)),
            _ => None,
        };
        (end, inspected)
    }

    /// Stores the inventory in the node.
    pub(crate) fn finish(self, node: &mut Node) {
        node.detail = Detail::Pickle(Box::new(self.inv));
    }

    pub(crate) fn inventory(&self) -> &PickleInventory {
        &self.inv
    }
}

/// True for a byte that is a pickle opcode.
pub(crate) fn opcode_byte(b: u8) -> bool {
    opcodes::Op::from_byte(b).is_some()
}

/// The value of `torch.serialization.MAGIC_NUMBER`, which a legacy torch file pickles first.
const TORCH_LEGACY_MAGIC: u128 = 0x1950_a86a_20f9_469c_fc6c;

fn is_torch_magic(v: &Value) -> bool {
    match v {
        Value::BigInt(Some(bytes)) if bytes.len() == 10 => {
            let mut buf = [0u8; 16];
            buf[..10].copy_from_slice(bytes);
            u128::from_le_bytes(buf) == TORCH_LEGACY_MAGIC
        }
        _ => false,
    }
}

/// Scans a byte stream that starts with a pickle: every stream to the end, as `pickle.load`
/// called in a loop would, switching to torch's legacy layout or joblib's interleaved arrays when
/// the content says so.
pub(crate) fn scan(s: &mut Stream<'_>, ctx: &mut dyn Driver, node: &mut Node) -> Rest {
    let mut session = Session::new(PickleLoader::Pickle);
    let mut loader = crate::joblib::JoblibLoader::default();
    let (end, magic) = session.run(node, s, ctx, &mut loader, |_, v| is_torch_magic(v));
    if magic == Some(true) {
        return crate::torch::scan_legacy_after_magic(s, ctx, node, session);
    }
    if matches!(end, End::Stop(_)) {
        while matches!(s.at_eof(), Ok(false)) {
            let (end, _) = session.run(node, s, ctx, &mut loader, |_, _| ());
            if !matches!(end, End::Stop(_)) {
                break;
            }
        }
    }
    if loader.saw_wrapper() {
        session.set_loader(PickleLoader::Joblib);
        node.format = crate::inventory::Format::Joblib;
    }
    session.finish(node);
    Rest::Drain
}

/// Scans exactly one pickle stream (what `pickle.load` reads once), e.g. after a NumPy header.
/// Returns true if it reached STOP.
pub(crate) fn scan_one(
    s: &mut Stream<'_>,
    ctx: &mut dyn Driver,
    node: &mut Node,
    loader_kind: PickleLoader,
) -> bool {
    let mut session = Session::new(loader_kind);
    let (end, _) = session.run(node, s, ctx, &mut PlainLoader, |_, _| ());
    session.finish(node);
    matches!(end, End::Stop(_))
}
