//! The symbolic pickle machine: a faithful model of CPython's unpickler that executes nothing.
//!
//! It keeps CPython's stack, mark stack and memo, resolves every GLOBAL, INST and STACK_GLOBAL
//! (through the memo, with CPython's protocol-2 module renaming), records every call site, and
//! stops where CPython would raise. Loader-specific behaviour (torch's `persistent_load`, joblib's
//! array bytes after BUILD) is delegated to a [`Loader`]. Bytes and strings that hold a pickle or
//! a zip (raw, as latin-1 code points, or spelt in base64 or hex) are scanned as embedded files.

use super::compat;
use super::memo::Memo;
use super::opcodes::{Arg, Len, Op};
use super::value::{BLOB_KEEP, Blob, FORGOTTEN, Kind, Obj, SHORT_MAX, Short, TEXT_KEEP, Text, Tuple, Value};
use super::{CallSite, Callee, GlobalRef, PickleInventory, PickleStreamInfo};
use crate::driver::{Driver, TraceEvent};
use crate::inventory::{Node, Note, NoteKind};
use crate::stream::Stream;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

const CONTAINERS_KEPT: usize = crate::limits::Limits::PICKLE_CONTAINERS_KEPT;
const CONTAINER_ITEMS_KEPT: usize = crate::limits::Limits::PICKLE_RETAINED_ITEMS;

#[derive(Default)]
struct Containers {
    objs: VecDeque<Obj>,
    /// Id of `objs[0]`.
    base: u32,
    items: usize,
}

fn items_of(obj: &Obj) -> usize {
    match obj {
        Obj::List { items, .. } | Obj::Set { items, .. } => items.len(),
        Obj::Dict { items, .. } => items.len(),
        Obj::Instance { .. } => 0,
    }
}

impl Containers {
    fn get(&self, id: u32) -> Option<&Obj> {
        self.objs.get(id.checked_sub(self.base)? as usize)
    }

    fn get_mut(&mut self, id: u32) -> Option<&mut Obj> {
        self.objs.get_mut(id.checked_sub(self.base)? as usize)
    }

    /// The id of a new container, or `None` when ids are exhausted.
    fn alloc(&mut self, obj: Obj) -> Option<u32> {
        let id = self.base.checked_add(self.objs.len() as u32).filter(|&id| id < FORGOTTEN)?;
        self.items += items_of(&obj);
        self.objs.push_back(obj);
        self.trim();
        Some(id)
    }

    fn trim(&mut self) {
        while self.objs.len() > 1 && (self.objs.len() > CONTAINERS_KEPT || self.items > CONTAINER_ITEMS_KEPT)
        {
            if let Some(old) = self.objs.pop_front() {
                self.items -= items_of(&old);
                self.base += 1;
            }
        }
    }
}

/// Bytes values at least this long whose first bytes look like a pickle or a zip are scanned as
/// embedded files.
const EMBED_MIN_LEN: u64 = 4;

/// Why a stream stopped early. The note has been recorded already.
#[derive(Debug)]
pub(crate) struct Stop;

/// How a stream ended.
#[derive(Debug)]
pub(crate) enum End {
    /// STOP was reached; the value is what `load()` returns.
    Stop(Value),
    /// The stream stopped at an error (already noted).
    Error,
    /// There were no bytes at all.
    Empty,
}

/// Loader-specific behaviour plugged into the machine.
pub(crate) trait Loader {
    /// PERSID/BINPERSID. The default is plain `pickle.load`, which has no `persistent_load` and
    /// raises; the machine notes that and goes on with an unknown value, as another loader could
    /// define one.
    fn persistent_load(&mut self, m: &mut Machine<'_>, pid: Value, offset: u64) -> Value {
        m.note(
            Note::new(
                NoteKind::PicklePersistentId,
                "persistent id in a pickle whose loader defines no persistent_load; what it resolves to depends on the loading program",
            )
            .at(offset)
            .evidence(m.describe(&pid)),
        );
        Value::Unknown("persistent id")
    }

    /// Called after BUILD applied `state` to the object on top of the stack. May consume bytes
    /// from the stream and return a replacement for the top of the stack (joblib reads array data
    /// here).
    fn after_build(
        &mut self,
        _m: &mut Machine<'_>,
        _stream: &mut Stream<'_>,
        _ctx: &mut dyn Driver,
    ) -> Result<(), Stop> {
        Ok(())
    }

    /// Called after every call site with the callee, its arguments and the result.
    fn after_call(
        &mut self,
        _m: &mut Machine<'_>,
        _callee: &Value,
        _args: &Value,
        _result: &Value,
        _offset: u64,
    ) {
    }
}

/// The plain `pickle.load` loader.
pub(crate) struct PlainLoader;
impl Loader for PlainLoader {}

/// The machine's state for one pickle stream (CPython keeps none across `load()` calls except
/// the file position).
pub(crate) struct Machine<'n> {
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: Memo,
    memo_dropped: bool,
    heap: Vec<Obj>,
    heap_full: bool,
    containers: Containers,
    proto: u8,
    frame_end: Option<u64>,
    /// The node being filled: its pickle inventory, notes and embedded children.
    pub(crate) node: &'n mut Node,
    inv: &'n mut PickleInventory,
    global_index: &'n mut HashMap<(String, String), u32>,
    call_index: &'n mut HashMap<(String, String), usize>,
    note_counts: HashMap<NoteKind, u32>,
    limits: MachineLimits,
}

#[derive(Clone, Copy)]
struct MachineLimits {
    stack: usize,
    marks: usize,
    memo: usize,
    heap: usize,
    opcodes: u64,
}

const NOTES_PER_KIND: u32 = crate::limits::Limits::PICKLE_NOTES_PER_KIND;

const MAX_CALL_SITES: usize = crate::limits::Limits::PICKLE_CALL_SITES;

impl<'n> Machine<'n> {
    pub(crate) fn new(
        node: &'n mut Node,
        inv: &'n mut PickleInventory,
        global_index: &'n mut HashMap<(String, String), u32>,
        call_index: &'n mut HashMap<(String, String), usize>,
        ctx: &dyn Driver,
    ) -> Machine<'n> {
        Machine {
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::new(ctx.limits().pickle_memo),
            memo_dropped: false,
            heap: Vec::new(),
            heap_full: false,
            containers: Containers::default(),
            proto: 0,
            frame_end: None,
            node,
            inv,
            global_index,
            call_index,
            note_counts: HashMap::new(),
            limits: MachineLimits {
                stack: ctx.limits().pickle_stack,
                marks: ctx.limits().pickle_marks,
                memo: ctx.limits().pickle_memo,
                heap: ctx.limits().pickle_heap,
                opcodes: ctx.limits().pickle_opcodes,
            },
        }
    }

    /// Records a note, keeping at most a few of each kind.
    pub(crate) fn note(&mut self, note: Note) {
        let count = self.note_counts.entry(note.kind).or_insert(0);
        *count += 1;
        if *count <= NOTES_PER_KIND {
            self.node.note(note);
        }
    }

    fn fatal(&mut self, kind: NoteKind, offset: u64, detail: impl Into<String>) -> Stop {
        self.note(Note::new(kind, detail).at(offset));
        Stop
    }

    /// Runs a nested `load()` on the same stream with a fresh stack and memo (joblib unpickles
    /// object arrays this way), sharing this machine's inventory and notes.
    pub(crate) fn run_nested(
        &mut self,
        s: &mut Stream<'_>,
        ctx: &mut dyn Driver,
        loader: &mut dyn Loader,
    ) -> End {
        let mut nested = Machine {
            stack: Vec::new(),
            marks: Vec::new(),
            memo: Memo::new(self.limits.memo),
            memo_dropped: false,
            heap: Vec::new(),
            heap_full: false,
            containers: Containers::default(),
            proto: 0,
            frame_end: None,
            node: &mut *self.node,
            inv: &mut *self.inv,
            global_index: &mut *self.global_index,
            call_index: &mut *self.call_index,
            note_counts: HashMap::new(),
            limits: self.limits,
        };
        nested.run(s, ctx, loader)
    }

    // ---- value helpers used by loaders -------------------------------------------------------

    /// The `(module, name)` of a global value.
    pub(crate) fn global(&self, v: &Value) -> Option<&GlobalRef> {
        match v {
            Value::Global(i) => self.inv.globals.get(*i as usize),
            _ => None,
        }
    }

    /// The heap object a value refers to.
    pub(crate) fn obj(&self, v: &Value) -> Option<&Obj> {
        match v {
            Value::Heap(i) => self.heap.get(*i as usize),
            Value::Container(_, id) => self.containers.get(*id),
            _ => None,
        }
    }

    /// Looks a string key up in a dict value.
    pub(crate) fn dict_get<'v>(&'v self, dict: &Value, key: &str) -> Option<&'v Value> {
        match self.obj(dict)? {
            Obj::Dict { items, .. } => items.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The callee (as a global) of the call that produced an instance.
    pub(crate) fn instance_class(&self, v: &Value) -> Option<&GlobalRef> {
        match self.obj(v)? {
            Obj::Instance { callee, .. } => self.global(callee),
            _ => None,
        }
    }

    /// The value on top of the stack.
    pub(crate) fn top(&self) -> Option<&Value> {
        self.stack.last()
    }

    /// Replaces the value on top of the stack.
    pub(crate) fn replace_top(&mut self, v: Value) {
        if let Some(top) = self.stack.last_mut() {
            *top = v;
        }
    }

    /// Allocates a heap object (a container goes to the window of recent containers).
    pub(crate) fn alloc(&mut self, obj: Obj) -> Value {
        let kind = match &obj {
            Obj::List { .. } => Some(Kind::List),
            Obj::Dict { .. } => Some(Kind::Dict),
            Obj::Set { frozen: false, .. } => Some(Kind::Set),
            Obj::Set { frozen: true, .. } => Some(Kind::FrozenSet),
            Obj::Instance { .. } => None,
        };
        if let Some(kind) = kind {
            return match self.containers.alloc(obj) {
                Some(id) => Value::Container(kind, id),
                None => {
                    self.limit_note_objects();
                    Value::Unknown("object limit")
                }
            };
        }
        if self.heap.len() >= self.limits.heap {
            self.limit_note_objects();
            return Value::Unknown("object limit");
        }
        self.heap.push(obj);
        Value::Heap((self.heap.len() - 1) as u32)
    }

    fn limit_note_objects(&mut self) {
        if !self.heap_full {
            self.heap_full = true;
            self.note(Note::new(
                NoteKind::LimitExceeded,
                format!(
                    "more than {} objects (call results) in one pickle stream; later objects are tracked as unknown",
                    self.limits.heap
                ),
            ));
        }
    }

    /// A one-line description of a value, for evidence and traces.
    pub(crate) fn describe(&self, v: &Value) -> String {
        self.describe_depth(v, 0)
    }

    fn describe_depth(&self, v: &Value, depth: u32) -> String {
        if depth > 3 {
            return "…".into();
        }
        match v {
            Value::None => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::BigInt(_) => "<long int>".into(),
            Value::Float(f) => format!("{f:?}"),
            Value::Short(t) => format!("{:?}", t.as_str()),
            Value::Str(t) => {
                let shown: String = t.text.chars().take(80).collect();
                if t.len as usize > shown.len() {
                    format!("{shown:?}… ({} bytes)", t.len)
                } else {
                    format!("{shown:?}")
                }
            }
            Value::Bytes(b) => match b.embedded.and_then(|i| self.node.children.get(i)) {
                Some(child) => format!("<{} bytes: embedded {}>", b.len, child.format),
                None => format!("<{} bytes>", b.len),
            },
            Value::Tuple(t) => {
                let items = &t.items;
                let inner: Vec<String> =
                    items.iter().take(6).map(|i| self.describe_depth(i, depth + 1)).collect();
                let more = if items.len() > 6 { ", …" } else { "" };
                let comma = if items.len() == 1 { "," } else { "" };
                format!("({}{comma}{more})", inner.join(", "))
            }
            Value::Heap(i) => match self.heap.get(*i as usize) {
                Some(Obj::List { items, dropped }) => {
                    format!("<list of {}>", items.len() as u64 + dropped)
                }
                Some(Obj::Dict { items, dropped, .. }) => {
                    format!("<dict of {}>", items.len() as u64 + dropped)
                }
                Some(Obj::Set { items, dropped, frozen }) => {
                    format!(
                        "<{} of {}>",
                        if *frozen { "frozenset" } else { "set" },
                        items.len() as u64 + dropped
                    )
                }
                Some(Obj::Instance { callee, opcode, offset, .. }) => {
                    format!("<result of {} {} at {offset}>", opcode, self.describe_depth(callee, depth + 1))
                }
                None => "<object>".into(),
            },
            Value::Container(kind, id) => match self.containers.get(*id) {
                Some(obj @ Obj::List { .. }) | Some(obj @ Obj::Dict { .. }) | Some(obj @ Obj::Set { .. }) => {
                    let n = match obj {
                        Obj::List { items, dropped } | Obj::Set { items, dropped, .. } => {
                            items.len() as u64 + dropped
                        }
                        Obj::Dict { items, dropped, .. } => items.len() as u64 + dropped,
                        Obj::Instance { .. } => 0,
                    };
                    format!("<{} of {n}>", kind_name(*kind))
                }
                _ => format!("<{}>", kind_name(*kind)),
            },
            Value::Global(i) => match self.inv.globals.get(*i as usize) {
                Some(g) => g.qualified(),
                None => "<global>".into(),
            },
            Value::Unknown(why) => format!("<unknown: {why}>"),
        }
    }

    // ---- stack primitives ---------------------------------------------------------------------

    fn fence(&self) -> usize {
        self.marks.last().copied().unwrap_or(0)
    }

    fn push(&mut self, v: Value, offset: u64) -> Result<(), Stop> {
        if self.stack.len() >= self.limits.stack {
            return Err(self.fatal(
                NoteKind::LimitExceeded,
                offset,
                format!(
                    "pickle stack deeper than {} values; the rest of the stream was not inspected",
                    self.limits.stack
                ),
            ));
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self, op: Op, offset: u64) -> Result<Value, Stop> {
        if self.stack.len() <= self.fence() {
            return Err(self.fatal(
                NoteKind::PickleMalformed,
                offset,
                format!(
                    "{} pops from an empty stack (the unpickler raises 'unpickling stack underflow')",
                    op.name()
                ),
            ));
        }
        self.stack.pop().ok_or(Stop)
    }

    fn pop_mark(&mut self, op: Op, offset: u64) -> Result<Vec<Value>, Stop> {
        let start = self.pop_mark_index(op, offset)?;
        Ok(self.stack.split_off(start))
    }

    /// Pops the innermost MARK and returns where its items start on the stack.
    fn pop_mark_index(&mut self, op: Op, offset: u64) -> Result<usize, Stop> {
        let Some(mark) = self.marks.pop() else {
            return Err(self.fatal(
                NoteKind::PickleMalformed,
                offset,
                format!("{} without a MARK (the unpickler raises 'could not find MARK')", op.name()),
            ));
        };
        Ok(mark.min(self.stack.len()))
    }

    fn top_index(&mut self, op: Op, offset: u64) -> Result<usize, Stop> {
        if self.stack.len() <= self.fence() {
            return Err(self.fatal(
                NoteKind::PickleMalformed,
                offset,
                format!(
                    "{} needs a value on the stack (the unpickler raises 'unpickling stack underflow')",
                    op.name()
                ),
            ));
        }
        Ok(self.stack.len() - 1)
    }

    fn memo_put(&mut self, key: u64, v: Value) {
        if self.memo.put(key, v).is_err() && !self.memo_dropped {
            self.memo_dropped = true;
            self.note(Note::new(
                NoteKind::LimitExceeded,
                format!("more than {} memo entries; later entries are tracked as unknown", self.limits.memo),
            ));
        }
    }

    fn memo_get(&mut self, key: u64, offset: u64) -> Value {
        if let Some(v) = self.memo.get(key) {
            return v;
        }
        if self.memo_dropped {
            return Value::Unknown("memo entry beyond the memo limit");
        }
        self.note(
            Note::new(
                NoteKind::PickleMalformed,
                format!("memo entry {key} is read before it is written (the unpickler raises 'Memo value not found')"),
            )
            .at(offset),
        );
        Value::Unknown("missing memo entry")
    }

    // ---- globals and calls --------------------------------------------------------------------

    fn resolve_global(&mut self, module: &str, name: &str, opcode: &'static str, offset: u64) -> Value {
        let (m, n, renamed) = compat_rename(self.proto, module, name);
        let key = (m.to_string(), n.to_string());
        if let Some(&i) = self.global_index.get(&key) {
            if let Some(g) = self.inv.globals.get_mut(i as usize) {
                g.count += 1;
            }
            return Value::Global(i);
        }
        let i = self.inv.globals.len() as u32;
        self.inv.globals.push(GlobalRef {
            module: key.0.clone(),
            name: key.1.clone(),
            written_as: renamed.then(|| format!("{module}.{name}")),
            opcode,
            offset,
            count: 1,
        });
        self.global_index.insert(key, i);
        Value::Global(i)
    }

    fn record_call(&mut self, opcode: &'static str, callee: &Value, offset: u64) {
        match callee {
            Value::Global(i) => {
                self.record_site(opcode, format!("#{i}"), Callee::Global { index: *i as usize }, offset)
            }
            other => {
                let description = self.describe(other);
                self.record_site(opcode, description.clone(), Callee::Value { description }, offset);
            }
        }
    }

    /// A call the unpickler makes on an object's own method (APPENDS on a non-list calls
    /// `extend`, SETITEMS on a non-dict calls `__setitem__`).
    fn record_method_call(&mut self, opcode: &'static str, description: String, offset: u64) {
        self.record_site(opcode, description.clone(), Callee::Value { description }, offset);
    }

    fn record_site(&mut self, opcode: &'static str, key: String, callee: Callee, offset: u64) {
        let key = (opcode.to_string(), key);
        if let Some(&i) = self.call_index.get(&key) {
            self.inv.calls[i].count += 1;
            return;
        }
        if self.inv.calls.len() >= MAX_CALL_SITES {
            return;
        }
        self.call_index.insert(key, self.inv.calls.len());
        self.inv.calls.push(CallSite { opcode, offset, callee, count: 1 });
    }

    fn call(
        &mut self,
        opcode: &'static str,
        callee: Value,
        args: Value,
        offset: u64,
        loader: &mut dyn Loader,
    ) -> Value {
        self.record_call(opcode, &callee, offset);
        let result = self.alloc(Obj::Instance {
            callee: callee.clone(),
            args: args.clone(),
            opcode,
            offset,
            state: None,
        });
        loader.after_call(self, &callee, &args, &result, offset);
        result
    }

    /// BUILD, SETITEM(S), APPEND(S) and ADDITEMS mutate their target. On an imported module,
    /// class or function that rewrites what later loads resolve to (allow-list overwrite).
    fn check_mutation(&mut self, target: &Value, op: Op, offset: u64) {
        if let Value::Global(_) = target {
            let name = self.describe(target);
            self.note(
                Note::new(
                    NoteKind::PickleGlobalMutation,
                    format!(
                        "{} modifies the imported object {name} itself, not an instance of it",
                        op.name()
                    ),
                )
                .at(offset)
                .evidence(name),
            );
        }
    }

    // ---- the interpreter ----------------------------------------------------------------------

    /// Runs one pickle stream from the stream's position to STOP (or the first error).
    pub(crate) fn run(&mut self, s: &mut Stream<'_>, ctx: &mut dyn Driver, loader: &mut dyn Loader) -> End {
        let start = s.position();
        let mut info = PickleStreamInfo { offset: start, protocol: 0, opcodes: 0, stop: None };
        let mut seen_proto: Option<u64> = None;
        let end = loop {
            let offset = s.position();
            if let Some(frame_end) = self.frame_end
                && offset >= frame_end
            {
                self.frame_end = None;
            }
            let byte = match s.read_u8() {
                Ok(Some(b)) => b,
                Ok(None) => {
                    if info.opcodes == 0 {
                        break End::Empty;
                    }
                    self.note(Note::new(
                        NoteKind::PickleMalformed,
                        "the pickle ends without a STOP opcode (the unpickler raises 'pickle data was truncated'); the opcodes before the end were still inspected",
                    ).at(offset));
                    break End::Error;
                }
                Err(e) => {
                    self.note(Note::new(NoteKind::PickleMalformed, format!("read error: {e}")).at(offset));
                    break End::Error;
                }
            };
            info.opcodes += 1;
            if info.opcodes > self.limits.opcodes {
                self.note(
                    Note::new(
                        NoteKind::LimitExceeded,
                        format!(
                            "more than {} opcodes in one pickle stream; the rest was not inspected",
                            self.limits.opcodes
                        ),
                    )
                    .at(offset),
                );
                break End::Error;
            }
            let Some(op) = Op::from_byte(byte) else {
                self.note(
                    Note::new(
                        NoteKind::PickleMalformed,
                        format!("invalid opcode byte 0x{byte:02x} (the unpickler raises 'invalid load key'); the opcodes before it were still inspected"),
                    )
                    .at(offset),
                );
                break End::Error;
            };
            if op == Op::PROTO {
                match seen_proto {
                    Some(first) => self.note(
                        Note::new(
                            NoteKind::PickleProtocolAnomaly,
                            format!("a second PROTO opcode (the first is at offset {first})"),
                        )
                        .at(offset),
                    ),
                    None if info.opcodes > 1 => self.note(
                        Note::new(
                            NoteKind::PickleProtocolAnomaly,
                            "PROTO is not the first opcode of the stream",
                        )
                        .at(offset),
                    ),
                    None => {}
                }
                seen_proto.get_or_insert(offset);
            }
            match self.step(op, offset, s, ctx, loader) {
                Ok(Some(v)) => {
                    info.stop = Some(offset);
                    break End::Stop(v);
                }
                Ok(None) => {}
                Err(Stop) => break End::Error,
            }
            if op != Op::FRAME && op != Op::BUILD && self.check_frame(op, offset, s.position()).is_err() {
                break End::Error;
            }
        };
        info.protocol = self.proto;
        if !matches!(end, End::Empty) {
            self.inv.streams.push(info);
        }
        end
    }

    fn step(
        &mut self,
        op: Op,
        offset: u64,
        s: &mut Stream<'_>,
        ctx: &mut dyn Driver,
        loader: &mut dyn Loader,
    ) -> Result<Option<Value>, Stop> {
        let trace_on = ctx.tracing();
        let mut trace_arg = String::new();
        let mut trace_note = String::new();
        match op {
            Op::MARK => {
                if self.marks.len() >= self.limits.marks {
                    return Err(self.fatal(
                        NoteKind::LimitExceeded,
                        offset,
                        format!("more than {} open MARKs", self.limits.marks),
                    ));
                }
                self.marks.push(self.stack.len());
            }
            Op::STOP => {
                let v = self.pop(op, offset)?;
                self.trace(ctx, offset, op, "", "");
                return Ok(Some(v));
            }
            Op::POP => {
                if self.marks.last() == Some(&self.stack.len()) {
                    self.marks.pop();
                } else {
                    self.pop(op, offset)?;
                }
            }
            Op::POP_MARK => {
                self.pop_mark(op, offset)?;
            }
            Op::DUP => {
                let i = self.top_index(op, offset)?;
                let v = self.stack[i].clone();
                self.push(v, offset)?;
            }
            Op::NONE => self.push(Value::None, offset)?,
            Op::NEWTRUE => self.push(Value::Bool(true), offset)?,
            Op::NEWFALSE => self.push(Value::Bool(false), offset)?,
            Op::INT | Op::LONG | Op::FLOAT => {
                let line = self.read_line_arg(s, op, offset, 256)?;
                let Some(v) = super::pynum::number_opcode(op, &line) else {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        format!(
                            "{} argument is not a number Python parses (the unpickler raises ValueError)",
                            op.name()
                        ),
                    ));
                };
                if trace_on {
                    trace_arg = String::from_utf8_lossy(&line).into_owned();
                }
                self.push(v, offset)?;
            }
            Op::BININT => {
                let b = self.read_fixed::<4>(s, op, offset)?;
                self.push(Value::Int(i64::from(i32::from_le_bytes(b))), offset)?;
                if trace_on {
                    trace_arg = i32::from_le_bytes(b).to_string();
                }
            }
            Op::BININT1 => {
                let b = self.read_fixed::<1>(s, op, offset)?;
                self.push(Value::Int(i64::from(b[0])), offset)?;
                if trace_on {
                    trace_arg = b[0].to_string();
                }
            }
            Op::BININT2 => {
                let b = self.read_fixed::<2>(s, op, offset)?;
                self.push(Value::Int(i64::from(u16::from_le_bytes(b))), offset)?;
                if trace_on {
                    trace_arg = u16::from_le_bytes(b).to_string();
                }
            }
            Op::LONG1 | Op::LONG4 => {
                let n = if op == Op::LONG1 {
                    u64::from(self.read_fixed::<1>(s, op, offset)?[0])
                } else {
                    let n = i32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?);
                    if n < 0 {
                        return Err(self.fatal(
                            NoteKind::PickleMalformed,
                            offset,
                            "LONG4 with a negative byte count",
                        ));
                    }
                    n as u64
                };
                let (bytes, got) = s.read_prefix_skip_rest(n, 32).map_err(|e| self.io_fatal(offset, e))?;
                if got < n {
                    return Err(self.truncated(op, offset));
                }
                let v = long_from_le(&bytes, n);
                if trace_on {
                    trace_arg = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::BINFLOAT => {
                let b = self.read_fixed::<8>(s, op, offset)?;
                self.push(Value::Float(f64::from_be_bytes(b)), offset)?;
            }
            Op::STRING => {
                const KEEP: usize = crate::limits::Limits::PICKLE_STRING_ARG_KEPT;
                let mut line = self.read_line_arg(s, op, offset, KEEP)?;
                if line.len() == KEEP && matches!(line[0], b'\'' | b'"') {
                    // Longer than what is kept: CPython takes any length, so the closing quote
                    // (not kept) is assumed and the string is inspected by its first bytes.
                    line.push(line[0]);
                }
                let Some(decoded) = decode_quoted_string(&line) else {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        "STRING argument is not a quoted string (the unpickler raises 'the STRING opcode argument must be quoted')",
                    ));
                };
                let v = self.bytes_or_text_from_memory(decoded, offset, ctx)?;
                if trace_on {
                    trace_arg = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::UNICODE => {
                let keep = match s.peek(8) {
                    Ok(p) if p.starts_with(b"\x80") || encoded_embeddable(p) => ctx.limits().embed_in_memory,
                    _ => TEXT_KEEP,
                };
                let line = s.read_line(keep).map_err(|e| self.io_fatal(offset, e))?;
                if !line.terminated {
                    return Err(self.truncated(op, offset));
                }
                let text = decode_raw_unicode_escape(&line.prefix);
                let v = if line.is_complete() {
                    self.text_value(text, offset, ctx)?
                } else {
                    Value::Str(Rc::new(Text { text: truncate_str(&text, TEXT_KEEP).into(), len: line.len }))
                };
                if trace_on {
                    trace_arg = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::BINSTRING
            | Op::SHORT_BINSTRING
            | Op::BINBYTES
            | Op::SHORT_BINBYTES
            | Op::BINBYTES8
            | Op::BYTEARRAY8 => {
                let Arg::Counted(width) = op.arg() else {
                    return Err(Stop);
                };
                let n = self.read_len(s, op, offset, width)?;
                let v = self.read_blob(s, op, offset, n, ctx)?;
                // Protocol-0/1 byte strings decode to str with the default 'ASCII' encoding.
                let v = match (&v, op) {
                    (Value::Bytes(b), Op::BINSTRING | Op::SHORT_BINSTRING)
                        if b.len as usize == b.prefix.len() && b.prefix.is_ascii() =>
                    {
                        Value::str(std::str::from_utf8(&b.prefix).unwrap_or_default())
                    }
                    _ => v,
                };
                if trace_on {
                    trace_arg = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::BINUNICODE | Op::SHORT_BINUNICODE | Op::BINUNICODE8 => {
                let Arg::Counted(width) = op.arg() else {
                    return Err(Stop);
                };
                let n = self.read_len(s, op, offset, width)?;
                if n <= TEXT_KEEP as u64
                    && let Some(v) = short_text(s, n as usize)
                {
                    if trace_on {
                        trace_arg = self.describe(&v);
                    }
                    self.push(v, offset)?;
                    self.trace(ctx, offset, op, &trace_arg, &trace_note);
                    return Ok(None);
                }
                let looks_embedded = matches!(s.peek(8), Ok(p) if (p.len() >= 3 && p[0] == 0xc2 && p[1] == 0x80 && (2..=5).contains(&p[2])) || encoded_embeddable(p));
                let keep = if looks_embedded { ctx.limits().embed_in_memory } else { TEXT_KEEP };
                let (bytes, got) = s.read_prefix_skip_rest(n, keep).map_err(|e| self.io_fatal(offset, e))?;
                if got < n {
                    return Err(self.truncated(op, offset));
                }
                let text = String::from_utf8_lossy(&bytes).into_owned();
                let v = if bytes.len() as u64 == n {
                    self.text_value(text, offset, ctx)?
                } else {
                    Value::Str(Rc::new(Text { text: truncate_str(&text, TEXT_KEEP).into(), len: n }))
                };
                if trace_on {
                    trace_arg = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::EMPTY_TUPLE => self.push(tuple(Vec::new()), offset)?,
            Op::TUPLE => {
                let items = self.pop_mark(op, offset)?;
                self.push(tuple(items), offset)?;
            }
            Op::TUPLE1 | Op::TUPLE2 | Op::TUPLE3 => {
                let n = match op {
                    Op::TUPLE1 => 1,
                    Op::TUPLE2 => 2,
                    _ => 3,
                };
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop(op, offset)?);
                }
                items.reverse();
                self.push(tuple(items), offset)?;
            }
            Op::EMPTY_LIST => {
                let v = self.alloc(Obj::List { items: Vec::new(), dropped: 0 });
                self.push(v, offset)?;
            }
            Op::LIST => {
                let items = self.pop_mark(op, offset)?;
                let v = self.alloc(list_obj(items));
                self.push(v, offset)?;
            }
            Op::EMPTY_DICT => {
                let v = self.alloc(Obj::Dict { items: Vec::new(), dropped: 0, keys: 0, index: None });
                self.push(v, offset)?;
            }
            Op::DICT => {
                let items = self.pop_mark(op, offset)?;
                if items.len() % 2 != 0 {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        "DICT with an odd number of items",
                    ));
                }
                let mut obj = Obj::Dict { items: Vec::new(), dropped: 0, keys: 0, index: None };
                let mut it = items.into_iter();
                while let (Some(k), Some(val)) = (it.next(), it.next()) {
                    obj.set_item(k, val);
                }
                let v = self.alloc(obj);
                self.push(v, offset)?;
            }
            Op::EMPTY_SET => {
                let v = self.alloc(Obj::Set { items: Vec::new(), dropped: 0, frozen: false });
                self.push(v, offset)?;
            }
            Op::FROZENSET => {
                let items = self.pop_mark(op, offset)?;
                let mut obj = Obj::Set { items: Vec::new(), dropped: 0, frozen: true };
                for item in items {
                    obj.push_item(item);
                }
                let v = self.alloc(obj);
                self.push(v, offset)?;
            }
            Op::APPEND | Op::APPENDS | Op::ADDITEMS => {
                let start = if op == Op::APPEND {
                    if self.stack.len() <= self.fence() {
                        self.pop(op, offset)?;
                    }
                    self.stack.len() - 1
                } else {
                    self.pop_mark_index(op, offset)?
                };
                if start <= self.fence() {
                    self.stack.truncate(start);
                    self.top_index(op, offset)?;
                }
                let target = self.stack[start - 1].clone();
                self.check_mutation(&target, op, offset);
                self.add_items(&target, start, op, offset);
            }
            Op::SETITEM | Op::SETITEMS => {
                let start = if op == Op::SETITEM {
                    if self.stack.len() < self.fence() + 2 {
                        self.pop(op, offset)?;
                        self.pop(op, offset)?;
                    }
                    self.stack.len() - 2
                } else {
                    self.pop_mark_index(op, offset)?
                };
                if !(self.stack.len() - start).is_multiple_of(2) {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        "SETITEMS with an odd number of items",
                    ));
                }
                if start <= self.fence() {
                    self.stack.truncate(start);
                    self.top_index(op, offset)?;
                }
                let target = self.stack[start - 1].clone();
                self.check_mutation(&target, op, offset);
                match target {
                    Value::Container(Kind::Dict, id) => {
                        let mut kept = 0;
                        if let Some(obj) = self.containers.get_mut(id) {
                            let mut it = self.stack.drain(start..);
                            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                                kept += usize::from(obj.set_item(k, v));
                            }
                        }
                        self.stack.truncate(start);
                        self.containers.items += kept;
                        self.containers.trim();
                    }
                    Value::Container(..) | Value::Heap(_) | Value::Global(_) | Value::Unknown(_) => {
                        self.stack.truncate(start);
                        // Not a dict: the unpickler calls the object's own __setitem__.
                        let method = format!("{}.__setitem__", self.describe(&target));
                        self.record_method_call(op.name(), method, offset);
                    }
                    _ => {
                        return Err(self.fatal(
                            NoteKind::PickleMalformed,
                            offset,
                            format!("{} on a value that does not support item assignment", op.name()),
                        ));
                    }
                }
            }
            Op::GET | Op::BINGET | Op::LONG_BINGET => {
                let key = match op {
                    Op::GET => {
                        let line = self.read_line_arg(s, op, offset, 64)?;
                        match super::pynum::memo_key(&line) {
                            Some(super::pynum::PyInt::Small(k)) if k >= 0 => k as u64,
                            // A key beyond 64 bits is never in the memo: CPython raises.
                            _ => {
                                return Err(self.fatal(
                                    NoteKind::PickleMalformed,
                                    offset,
                                    "GET with a non-numeric memo key",
                                ));
                            }
                        }
                    }
                    Op::BINGET => u64::from(self.read_fixed::<1>(s, op, offset)?[0]),
                    _ => u64::from(u32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?)),
                };
                let v = self.memo_get(key, offset);
                if trace_on {
                    trace_arg = key.to_string();
                    trace_note = self.describe(&v);
                }
                self.push(v, offset)?;
            }
            Op::PUT | Op::BINPUT | Op::LONG_BINPUT | Op::MEMOIZE => {
                let key = match op {
                    Op::PUT => {
                        let line = self.read_line_arg(s, op, offset, 64)?;
                        match super::pynum::memo_key(&line) {
                            Some(super::pynum::PyInt::Small(k)) if k >= 0 => k as u64,
                            _ => {
                                return Err(self.fatal(
                                    NoteKind::PickleMalformed,
                                    offset,
                                    "PUT with a negative or non-numeric memo key",
                                ));
                            }
                        }
                    }
                    Op::BINPUT => u64::from(self.read_fixed::<1>(s, op, offset)?[0]),
                    Op::LONG_BINPUT => u64::from(u32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?)),
                    _ => self.memo.len() as u64,
                };
                let i = self.top_index(op, offset)?;
                let v = self.stack[i].clone();
                if trace_on {
                    trace_arg = key.to_string();
                }
                self.memo_put(key, v);
            }
            Op::GLOBAL | Op::INST => {
                let module = self.read_line_arg(s, op, offset, TEXT_KEEP)?;
                let name = self.read_line_arg(s, op, offset, TEXT_KEEP)?;
                let (module, name) = (
                    String::from_utf8_lossy(&module).into_owned(),
                    String::from_utf8_lossy(&name).into_owned(),
                );
                let g = self.resolve_global(&module, &name, op.name(), offset);
                if trace_on {
                    trace_arg = format!("{module} {name}");
                    trace_note = format!("global {}", self.describe(&g));
                }
                if op == Op::GLOBAL {
                    self.push(g, offset)?;
                } else {
                    let args = self.pop_mark(op, offset)?;
                    let result = self.call("INST", g, tuple(args), offset, loader);
                    self.push(result, offset)?;
                }
            }
            Op::STACK_GLOBAL => {
                let name = self.pop(op, offset)?;
                let module = self.pop(op, offset)?;
                let g = match (operand_text(&module), operand_text(&name)) {
                    (Some(m), Some(n)) => {
                        // The pickler refers back to a module or class name it wrote before with
                        // BINGET: the memo keeps these strings whatever its budget.
                        self.memo.pin_name(&m);
                        self.memo.pin_name(&n);
                        self.resolve_global(&m, &n, "STACK_GLOBAL", offset)
                    }
                    _ => {
                        let detail = format!(
                            "STACK_GLOBAL operands are not plain strings (module {}, name {}); the imported object cannot be determined statically",
                            self.describe(&module),
                            self.describe(&name)
                        );
                        let evidence = format!("{} {}", self.describe(&module), self.describe(&name));
                        self.note(
                            Note::new(NoteKind::PickleUnresolvedGlobal, detail).at(offset).evidence(evidence),
                        );
                        Value::Unknown("unresolved STACK_GLOBAL")
                    }
                };
                if trace_on {
                    trace_note = format!("global {}", self.describe(&g));
                }
                self.push(g, offset)?;
            }
            Op::REDUCE => {
                let args = self.pop(op, offset)?;
                let callee = self.pop(op, offset)?;
                if trace_on {
                    trace_note = format!("call {}{}", self.describe(&callee), self.describe(&args));
                }
                let result = self.call("REDUCE", callee, args, offset, loader);
                self.push(result, offset)?;
            }
            Op::NEWOBJ => {
                let args = self.pop(op, offset)?;
                let cls = self.pop(op, offset)?;
                if trace_on {
                    trace_note = format!("new {}{}", self.describe(&cls), self.describe(&args));
                }
                let result = self.call("NEWOBJ", cls, args, offset, loader);
                self.push(result, offset)?;
            }
            Op::NEWOBJ_EX => {
                let kwargs = self.pop(op, offset)?;
                let args = self.pop(op, offset)?;
                let cls = self.pop(op, offset)?;
                if trace_on {
                    trace_note = format!(
                        "new {}{} {}",
                        self.describe(&cls),
                        self.describe(&args),
                        self.describe(&kwargs)
                    );
                }
                let result = self.call("NEWOBJ_EX", cls, tuple(vec![args, kwargs]), offset, loader);
                self.push(result, offset)?;
            }
            Op::OBJ => {
                let mut items = self.pop_mark(op, offset)?;
                if items.is_empty() {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        "OBJ without a class (the unpickler raises 'unpickling stack underflow')",
                    ));
                }
                let cls = items.remove(0);
                if trace_on {
                    trace_note = format!("call {}", self.describe(&cls));
                }
                let result = self.call("OBJ", cls, tuple(items), offset, loader);
                self.push(result, offset)?;
            }
            Op::BUILD => {
                let state = self.pop(op, offset)?;
                let i = self.top_index(op, offset)?;
                let target = self.stack[i].clone();
                self.check_mutation(&target, op, offset);
                if trace_on {
                    trace_note =
                        format!("{}.__setstate__({})", self.describe(&target), self.describe(&state));
                }
                match &target {
                    Value::Heap(h) => {
                        if let Some(Obj::Instance { state: slot, .. }) = self.heap.get_mut(*h as usize) {
                            *slot = Some(state);
                        }
                    }
                    Value::Global(_) | Value::Unknown(_) | Value::Container(..) => {}
                    _ => {
                        // BUILD on a plain value (int, str, tuple): CPython looks up __setstate__ and
                        // then tries to update __dict__, which these types lack.
                        return Err(self.fatal(
                            NoteKind::PickleMalformed,
                            offset,
                            "BUILD on a value that has no state to set",
                        ));
                    }
                }
                self.trace(ctx, offset, op, &trace_arg, &trace_note);
                // joblib reads array bytes right after BUILD, outside any frame (its pickler
                // commits the frame first): check BUILD's own end before the loader reads on.
                self.check_frame(op, offset, s.position())?;
                loader.after_build(self, s, ctx)?;
                if self.frame_end.is_some_and(|end| s.position() >= end) {
                    self.frame_end = None;
                }
                return Ok(None);
            }
            Op::PERSID | Op::BINPERSID => {
                let pid = if op == Op::PERSID {
                    let line = self.read_line_arg(s, op, offset, TEXT_KEEP)?;
                    // PERSID's argument decodes as ASCII.
                    Value::str(&String::from_utf8_lossy(&line))
                } else {
                    self.pop(op, offset)?
                };
                if trace_on {
                    trace_arg = self.describe(&pid);
                }
                let v = loader.persistent_load(self, pid, offset);
                self.push(v, offset)?;
            }
            Op::EXT1 | Op::EXT2 | Op::EXT4 => {
                let code: i64 = match op {
                    Op::EXT1 => i64::from(self.read_fixed::<1>(s, op, offset)?[0]),
                    Op::EXT2 => i64::from(u16::from_le_bytes(self.read_fixed::<2>(s, op, offset)?)),
                    _ => i64::from(i32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?)),
                };
                self.note(
                    Note::new(
                        NoteKind::PickleExtension,
                        format!("{} loads extension code {code} from the copyreg registry; the object it names is decided by the loading process, not the file", op.name()),
                    )
                    .at(offset)
                    .evidence(format!("extension code {code}")),
                );
                if trace_on {
                    trace_arg = code.to_string();
                }
                self.push(Value::Unknown("copyreg extension"), offset)?;
            }
            Op::PROTO => {
                let b = self.read_fixed::<1>(s, op, offset)?[0];
                if b > 5 {
                    // CPython stops here: the rest of the stream is never loaded, and the file is
                    // not a usable pickle.
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        format!("unsupported pickle protocol {b} (the unpickler raises 'unsupported pickle protocol')"),
                    ));
                }
                self.proto = b;
                if trace_on {
                    trace_arg = b.to_string();
                }
            }
            Op::FRAME => {
                let n = u64::from_le_bytes(self.read_fixed::<8>(s, op, offset)?);
                if let Some(end) = self.frame_end
                    && offset < end
                {
                    return Err(self.fatal(
                        NoteKind::PickleFrameViolation,
                        offset,
                        format!(
                            "a FRAME opens at offset {offset} before the previous frame ends at offset {end}"
                        ),
                    ));
                }
                self.frame_end = s.position().checked_add(n);
                if trace_on {
                    trace_arg = n.to_string();
                }
            }
            Op::NEXT_BUFFER | Op::READONLY_BUFFER => {
                if op == Op::READONLY_BUFFER {
                    self.top_index(op, offset)?;
                } else {
                    self.push(Value::Unknown("out-of-band buffer"), offset)?;
                }
                self.note(
                    Note::new(
                        NoteKind::PickleOutOfBandBuffer,
                        format!("{} refers to out-of-band data that is not in the file", op.name()),
                    )
                    .at(offset),
                );
            }
        }
        self.trace(ctx, offset, op, &trace_arg, &trace_note);
        Ok(None)
    }

    /// An opcode (with its argument) must end inside the frame it starts in.
    fn check_frame(&mut self, op: Op, offset: u64, end: u64) -> Result<(), Stop> {
        match self.frame_end {
            Some(frame_end) if end > frame_end => Err(self.fatal(
                NoteKind::PickleFrameViolation,
                offset,
                format!(
                    "{} at offset {offset} runs past the end of its FRAME (offset {frame_end}); older CPython executes different opcodes here than a linear reader shows, newer CPython rejects the stream",
                    op.name()
                ),
            )),
            _ => Ok(()),
        }
    }

    /// APPEND(S)/ADDITEMS: the items are `stack[start..]`, the target `stack[start - 1]`.
    fn add_items(&mut self, target: &Value, start: usize, op: Op, offset: u64) {
        match target {
            Value::Container(Kind::List | Kind::Set | Kind::FrozenSet, id) => {
                let mut kept = 0;
                if let Some(obj) = self.containers.get_mut(*id) {
                    for item in self.stack.drain(start..) {
                        kept += usize::from(obj.push_item(item));
                    }
                }
                self.stack.truncate(start);
                self.containers.items += kept;
                self.containers.trim();
            }
            _ => {
                self.stack.truncate(start);
                // Not a list or set: the unpickler calls the object's own append/extend/add.
                let method = if op == Op::ADDITEMS { "add" } else { "extend" };
                let name = format!("{}.{method}", self.describe(target));
                self.record_method_call(op.name(), name, offset);
            }
        }
    }

    fn trace(&self, ctx: &mut dyn Driver, offset: u64, op: Op, arg: &str, note: &str) {
        ctx.trace(TraceEvent::Opcode { offset, name: op.name(), arg, note });
    }

    // ---- argument readers ---------------------------------------------------------------------

    fn io_fatal(&mut self, offset: u64, e: std::io::Error) -> Stop {
        self.fatal(NoteKind::PickleMalformed, offset, format!("read error: {e}"))
    }

    fn truncated(&mut self, op: Op, offset: u64) -> Stop {
        self.fatal(
            NoteKind::PickleMalformed,
            offset,
            format!("the stream ends inside the argument of {} (the unpickler raises 'pickle data was truncated'); the opcodes before it were still inspected", op.name()),
        )
    }

    fn read_fixed<const N: usize>(
        &mut self,
        s: &mut Stream<'_>,
        op: Op,
        offset: u64,
    ) -> Result<[u8; N], Stop> {
        match s.read_array::<N>() {
            Ok(Some(b)) => Ok(b),
            Ok(None) => Err(self.truncated(op, offset)),
            Err(e) => Err(self.io_fatal(offset, e)),
        }
    }

    fn read_line_arg(
        &mut self,
        s: &mut Stream<'_>,
        op: Op,
        offset: u64,
        keep: usize,
    ) -> Result<Vec<u8>, Stop> {
        let line = s.read_line(keep).map_err(|e| self.io_fatal(offset, e))?;
        if !line.terminated {
            return Err(self.truncated(op, offset));
        }
        let mut bytes = line.prefix;
        if bytes.last() == Some(&b'\r') {
            // CPython's readline keeps '\r'; a CRLF line is still a single line to it, but numeric
            // parsing fails on the '\r'. Strip it only for our parsing of names and numbers.
            bytes.pop();
        }
        Ok(bytes)
    }

    fn read_len(&mut self, s: &mut Stream<'_>, op: Op, offset: u64, width: Len) -> Result<u64, Stop> {
        Ok(match width {
            Len::U1 => u64::from(self.read_fixed::<1>(s, op, offset)?[0]),
            Len::U4 => u64::from(u32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?)),
            Len::I4 => {
                let n = i32::from_le_bytes(self.read_fixed::<4>(s, op, offset)?);
                if n < 0 {
                    return Err(self.fatal(
                        NoteKind::PickleMalformed,
                        offset,
                        format!("{} with a negative length", op.name()),
                    ));
                }
                n as u64
            }
            Len::U8 => u64::from_le_bytes(self.read_fixed::<8>(s, op, offset)?),
        })
    }

    /// Reads `n` bytes of a bytes value; if they look like a pickle or a zip, scans them as an
    /// embedded file on the way (they are read once either way).
    fn read_blob(
        &mut self,
        s: &mut Stream<'_>,
        op: Op,
        offset: u64,
        n: u64,
        ctx: &mut dyn Driver,
    ) -> Result<Value, Stop> {
        let head = s.peek(BLOB_KEEP).map_err(|e| self.io_fatal(offset, e))?;
        let keep = (n.min(head.len() as u64)) as usize;
        let prefix: Box<[u8]> = head[..keep].into();
        let embedded = n >= EMBED_MIN_LEN && looks_embeddable(&prefix);
        let mut child_index = None;
        if embedded {
            let start = s.position();
            let name = format!("bytes at offset {offset}");
            let child = crate::driver::scan_embedded(s.take_next(n), ctx, name, start);
            let consumed = s.position() - start;
            if let Some(child) = child {
                self.node.children.push(child);
                child_index = Some(self.node.children.len() - 1);
            }
            if consumed < n {
                return Err(self.truncated(op, offset));
            }
        } else {
            let got = s.skip(n).map_err(|e| self.io_fatal(offset, e))?;
            if got < n {
                return Err(self.truncated(op, offset));
            }
        }
        Ok(Value::Bytes(Rc::new(Blob { prefix, len: n, embedded: child_index })))
    }

    /// A decoded protocol-0 STRING: `str` when ASCII (the default encoding), else bytes. Either
    /// way, scanned as embedded when it looks like a pickle.
    fn bytes_or_text_from_memory(
        &mut self,
        decoded: Vec<u8>,
        offset: u64,
        ctx: &mut dyn Driver,
    ) -> Result<Value, Stop> {
        let child_index = self.embed_from_memory(&decoded, offset, ctx);
        if decoded.is_ascii() && child_index.is_none() {
            return Ok(Value::str(std::str::from_utf8(&decoded).unwrap_or_default()));
        }
        let keep = decoded.len().min(BLOB_KEEP);
        Ok(Value::Bytes(Rc::new(Blob {
            prefix: decoded[..keep].into(),
            len: decoded.len() as u64,
            embedded: child_index,
        })))
    }

    /// A complete str. Protocol 2 pickles bytes as `_codecs.encode(str, 'latin1')`, so a str whose
    /// code points spell a pickle is scanned as one.
    fn text_value(&mut self, text: String, offset: u64, ctx: &mut dyn Driver) -> Result<Value, Stop> {
        if text.starts_with('\u{80}')
            && let Some(latin1) =
                text.chars().map(|c| u8::try_from(u32::from(c)).ok()).collect::<Option<Vec<u8>>>()
        {
            self.embed_from_memory(&latin1, offset, ctx);
        } else if encoded_embeddable(text.as_bytes())
            && let Some((encoding, decoded)) = decode_base64_or_hex(&text)
        {
            // A pickle or zip kept as base64 or hex text: inert until the reading code decodes and
            // loads it (`pickle.loads(b64decode(cfg["x"]))`), which is exactly how a staged
            // payload rides in a model. Scanned like raw embedded bytes.
            self.embed_named(&decoded, offset, ctx, format!("{encoding} string at offset {offset}"));
        }
        let len = text.len() as u64;
        Ok(Value::Str(Rc::new(Text { text: truncate_str(&text, TEXT_KEEP).into(), len })))
    }

    fn embed_from_memory(&mut self, data: &[u8], offset: u64, ctx: &mut dyn Driver) -> Option<usize> {
        self.embed_named(data, offset, ctx, format!("string at offset {offset}"))
    }

    fn embed_named(&mut self, data: &[u8], offset: u64, ctx: &mut dyn Driver, name: String) -> Option<usize> {
        if (data.len() as u64) < EMBED_MIN_LEN || !looks_embeddable(data) {
            return None;
        }
        let child = crate::driver::scan_embedded(data, ctx, name, offset)?;
        self.node.children.push(child);
        Some(self.node.children.len() - 1)
    }
}

/// The fast path for a str argument of `n` bytes (at most [`TEXT_KEEP`]) that is buffered
/// already: valid UTF-8 that cannot spell an embedded pickle (latin-1 code points, base64 or hex;
/// see [`Machine::text_value`]) becomes a value without copying through intermediate buffers.
/// `None` leaves the stream untouched for the general path.
fn short_text(s: &mut Stream<'_>, n: usize) -> Option<Value> {
    let avail = s.fill(n).ok()?;
    let bytes = avail.get(..n)?;
    if bytes.starts_with(b"\xc2\x80") || encoded_embeddable(bytes) {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?;
    let v = match Short::new(text) {
        Some(short) => Value::Short(short),
        None => {
            debug_assert!(text.len() > SHORT_MAX);
            Value::Str(Rc::new(Text { text: text.into(), len: n as u64 }))
        }
    };
    s.consume_buffered(n);
    Some(v)
}

/// Pickle protocol 2–5 header, or a zip (torch's `_load_from_bytes` embeds `torch.save` output).
fn looks_embeddable(head: &[u8]) -> bool {
    (head.len() >= 2 && head[0] == 0x80 && (2..=5).contains(&head[1])) || head.starts_with(b"PK\x03\x04")
}

/// Text that starts like the base64 or hex spelling of a pickle (protocol 2–5) or a zip:
/// `gA` + `I`…`X` is base64 of `\x80\x02`…`\x80\x05`, `UEsDB` of `PK\x03\x04`; hex `8002`…`8005`
/// or `504b0304`.
fn encoded_embeddable(head: &[u8]) -> bool {
    let lower: Vec<u8> = head.iter().take(8).map(u8::to_ascii_lowercase).collect();
    (head.len() >= 3 && head.starts_with(b"gA") && (b'I'..=b'X').contains(&head[2]))
        || head.starts_with(b"UEsDB")
        || (lower.len() >= 4 && lower.starts_with(b"800") && (b'2'..=b'5').contains(&lower[3]))
        || lower.starts_with(b"504b0304")
}

/// Decodes text that is entirely base64 (standard or URL-safe alphabet, padding and line breaks
/// allowed) or entirely hex digits. `None` when it is neither.
fn decode_base64_or_hex(text: &str) -> Option<(&'static str, Vec<u8>)> {
    let t = text.trim();
    if t.len().is_multiple_of(2) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        let out: Option<Vec<u8>> =
            t.as_bytes().chunks_exact(2).map(|p| Some(hex(p[0])? << 4 | hex(p[1])?)).collect();
        return out.map(|o| ("hex", o));
    }
    let standard: String = t
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    crate::marshal::base64_decode(&standard).map(|o| ("base64", o))
}

/// CPython's `find_class` renames Python 2 modules and names when the protocol is below 3.
fn compat_rename<'a>(proto: u8, module: &'a str, name: &'a str) -> (&'a str, &'a str, bool) {
    if proto < 3 {
        if let Ok(i) = compat::NAME_MAPPING.binary_search_by(|((m, n), _)| (*m, *n).cmp(&(module, name))) {
            let (m, n) = compat::NAME_MAPPING[i].1;
            return (m, n, true);
        }
        if let Ok(i) = compat::IMPORT_MAPPING.binary_search_by(|(m, _)| (*m).cmp(module)) {
            return (compat::IMPORT_MAPPING[i].1, name, true);
        }
    }
    (module, name, false)
}

/// A STACK_GLOBAL operand as text: `str`, or bytes/str made from ASCII that CPython would
/// reject but a scanner must not let hide a name.
fn operand_text(v: &Value) -> Option<String> {
    match v {
        Value::Short(t) => Some(t.as_str().to_string()),
        Value::Str(t) if t.is_complete() => Some(t.text.to_string()),
        Value::Bytes(b) if b.len as usize == b.prefix.len() => {
            std::str::from_utf8(&b.prefix).ok().map(str::to_string)
        }
        _ => None,
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::List => "list",
        Kind::Dict => "dict",
        Kind::Set => "set",
        Kind::FrozenSet => "frozenset",
    }
}

fn tuple(items: Vec<Value>) -> Value {
    Tuple::value(items)
}

fn list_obj(items: Vec<Value>) -> Obj {
    let mut obj = Obj::List { items: Vec::new(), dropped: 0 };
    for item in items {
        obj.push_item(item);
    }
    obj
}

fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// LONG1/LONG4 payload: little-endian two's complement.
fn long_from_le(bytes: &[u8], n: u64) -> Value {
    if n == 0 {
        return Value::Int(0);
    }
    if n <= 8 {
        let mut buf = [0u8; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        if bytes.last().is_some_and(|&b| b & 0x80 != 0) {
            for b in &mut buf[bytes.len()..] {
                *b = 0xff;
            }
        }
        return Value::Int(i64::from_le_bytes(buf));
    }
    if n as usize == bytes.len() { Value::BigInt(Some(Rc::from(bytes))) } else { Value::BigInt(None) }
}

/// Decodes a protocol-0 STRING argument: a Python repr in single or double quotes, with
/// backslash escapes (`codecs.escape_decode`).
fn decode_quoted_string(line: &[u8]) -> Option<Vec<u8>> {
    if line.len() < 2 {
        return None;
    }
    let q = line[0];
    if (q != b'\'' && q != b'"') || line[line.len() - 1] != q {
        return None;
    }
    let body = &line[1..line.len() - 1];
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        if c != b'\\' || i + 1 >= body.len() {
            out.push(c);
            i += 1;
            continue;
        }
        let e = body[i + 1];
        i += 2;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'a' => out.push(7),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'v' => out.push(11),
            b'x' => {
                let hex = body.get(i..i + 2)?;
                let v = u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?;
                out.push(v);
                i += 2;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                let mut digits = 1;
                while digits < 3 && i < body.len() && (b'0'..=b'7').contains(&body[i]) {
                    v = v * 8 + u32::from(body[i] - b'0');
                    i += 1;
                    digits += 1;
                }
                out.push((v & 0xff) as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    Some(out)
}

/// Decodes `raw-unicode-escape`: bytes are Latin-1 code points, except `\uXXXX` and
/// `\UXXXXXXXX`.
fn decode_raw_unicode_escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\\' && i + 1 < bytes.len() && (bytes[i + 1] == b'u' || bytes[i + 1] == b'U') {
            let width = if bytes[i + 1] == b'u' { 4 } else { 8 };
            if let Some(hex) = bytes.get(i + 2..i + 2 + width)
                && let Some(c) = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .and_then(char::from_u32)
            {
                out.push(c);
                i += 2 + width;
                continue;
            }
        }
        out.push(char::from(b));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_pickles_are_recognised_and_decoded() {
        // base64 of \x80\x02…\x80\x05 and of PK\x03\x04; hex in either case.
        for head in ["gAJ9", "gANdcQ", "gASV", "gAWV", "UEsDBBQ", "80049500", "8005", "504B0304"] {
            assert!(encoded_embeddable(head.as_bytes()), "{head}");
        }
        for head in ["gAZ", "gA", "hello", "8001", "800", "0x8004"] {
            assert!(!encoded_embeddable(head.as_bytes()), "{head}");
        }
        assert_eq!(decode_base64_or_hex("gAR9lC4="), Some(("base64", b"\x80\x04}\x94.".to_vec())));
        assert_eq!(decode_base64_or_hex("gAR9lC4"), Some(("base64", b"\x80\x04}\x94.".to_vec())));
        // URL-safe alphabet, as base64.urlsafe_b64decode reads it.
        assert_eq!(decode_base64_or_hex("8004_-8"), Some(("base64", vec![0xf3, 0x4d, 0x38, 0xff, 0xef])));
        assert_eq!(decode_base64_or_hex("80047d942e"), Some(("hex", b"\x80\x04}\x94.".to_vec())));
        assert_eq!(decode_base64_or_hex("gAR9 not base64!"), None);
    }

    #[test]
    fn longs_decode_twos_complement() {
        assert!(matches!(long_from_le(&[0xff], 1), Value::Int(-1)));
        assert!(matches!(long_from_le(&[0x00, 0x01], 2), Value::Int(256)));
        let magic = 0x1950a86a20f9469cfc6c_u128.to_le_bytes();
        match long_from_le(&magic[..10], 10) {
            Value::BigInt(Some(b)) => assert_eq!(&b[..], &magic[..10]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn quoted_strings_decode_escapes() {
        assert_eq!(decode_quoted_string(b"'os'"), Some(b"os".to_vec()));
        assert_eq!(decode_quoted_string(br"'a\x80\n\'b'"), Some(b"a\x80\n'b".to_vec()));
        assert_eq!(decode_quoted_string(br#""\101""#), Some(b"A".to_vec()));
        assert_eq!(decode_quoted_string(b"os"), None);
    }

    #[test]
    fn raw_unicode_escape_decodes() {
        assert_eq!(decode_raw_unicode_escape(br"a\u005cb\u000a"), "a\\b\n");
        assert_eq!(decode_raw_unicode_escape(b"\x80\x02"), "\u{80}\u{2}");
    }

    #[test]
    fn compat_renames_only_below_protocol_3() {
        assert_eq!(compat_rename(2, "__builtin__", "eval"), ("builtins", "eval", true));
        assert_eq!(compat_rename(0, "copy_reg", "_reconstructor"), ("copyreg", "_reconstructor", true));
        assert_eq!(compat_rename(2, "__builtin__", "xrange"), ("builtins", "range", true));
        assert_eq!(compat_rename(4, "__builtin__", "eval"), ("__builtin__", "eval", false));
    }
}
