//! Whole-template analysis of a Jinja chat template over a syntax tree.
//!
//! The template is parsed with minijinja's parser (its `unstable_machinery` syntax tree, the
//! crate pinned exactly) and every name the template can reach when it is rendered is listed:
//! the attributes it reads (`x.name`, `x['name']` — Jinja's `getattr` falls back to items and
//! its subscript falls back to attributes, so both are attribute access), the arguments of
//! `|attr`, the `attribute=` arguments of `map`/`selectattr`/`sort`/… (Jinja's attribute getter
//! follows dotted paths), the filters and tests it applies (including those named by string in
//! `map('f')`, `select('t')`), the free names it reads (Jinja's globals and the renderer's
//! variables) and the statements that load other templates. docs/formats.md "Chat templates"
//! describes the analysis and its measurement.
//!
//! Values are followed through the whole template, not region by region: `{% set %}` (both
//! forms), `{% with %}`, loop variables, macro parameters (joined over every call site and the
//! defaults), namespace attributes, and the string building real and hostile templates use (`~`,
//! `+`, `*`, `%`, `join`, `format`, `replace`, slicing, subscripts, `list`, `reverse`, `lower`…).
//! The analysis is flow-insensitive (every assignment of a name is joined) and runs to a fixed
//! point. A name built from string literals is listed as the string it builds; a name built from
//! anything else — the output of a macro, the text of an object, a mix of data and literals — is
//! listed as `computed`, which no list can allow. A name taken unchanged from the renderer's data
//! (`message[key]` with `key` from the messages) is a key of that data, not a name the template
//! author chose, and is not listed.
//!
//! String literals are decoded as Jinja2's lexer decodes them (Python's `unicode-escape` after
//! `backslashreplace`), not as minijinja does (it lacks `\U`, `\N{…}` and decodes `\/`): the
//! names listed are the ones Jinja2 looks up. Nothing is judged here; the policy crate decides
//! which names are reviewed (`crates/modelgate-policy/data/jinja-names.toml`).

use minijinja::machinery::ast::{self, CallArg, Expr, Stmt};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const MAX_CHOICES: usize = crate::limits::Limits::TEMPLATE_CHOICES;
const MAX_STRING: usize = crate::limits::Limits::TEMPLATE_STRING;
const MAX_PASSES: usize = crate::limits::Limits::TEMPLATE_PASSES;
const MAX_DEPTH: usize = crate::limits::Limits::TEMPLATE_DEPTH;
/// [`Limits::TEMPLATE_REACHES`](crate::Limits::TEMPLATE_REACHES)
pub(crate) const MAX_REACHES: usize = crate::limits::Limits::TEMPLATE_REACHES;

/// How a template reaches a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// `x.name`, `x['name']`, `|attr('name')`, `map(attribute='name')`: Jinja's attribute lookup.
    Attribute,
    /// A filter applied (`|name`, `map('name')`, `{% filter name %}`).
    Filter,
    /// A test applied (`is name`, `select('name')`).
    Test,
    /// A free name: one of Jinja's globals, or a variable the renderer supplies.
    Name,
    /// A statement that loads another template (`include`, `import`, `from`, `extends`).
    Statement,
    /// An attribute, filter or test whose name the analysis cannot compute.
    Computed,
}

impl Kind {
    /// The prefix of the note's evidence (`attribute:items`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Attribute => "attribute",
            Kind::Filter => "filter",
            Kind::Test => "test",
            Kind::Name => "name",
            Kind::Statement => "statement",
            Kind::Computed => "computed",
        }
    }
}

/// One name the template reaches, at the first byte offset (in the template) where it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reach {
    pub(crate) kind: Kind,
    pub(crate) name: String,
    pub(crate) offset: usize,
    /// How it is reached, for the message (`x.name`, `a subscript`, `built from literals`…).
    pub(crate) how: &'static str,
}

/// The outcome of the analysis.
#[derive(Debug, Clone, Default)]
pub(crate) struct Analysis {
    pub(crate) reaches: Vec<Reach>,
    /// Set when part of the template was not followed (nesting, or too many names).
    pub(crate) limit: Option<String>,
}

/// A known value.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    Int(i64),
    /// Floats, booleans, none: never names.
    Other,
    List(Vec<Lit>),
    Map(Vec<(Lit, Lit)>),
}

/// An abstract value: the union of known values, the renderer's data, and opaque values.
#[derive(Debug, Clone, Default, PartialEq)]
struct V {
    lits: Vec<Lit>,
    /// The renderer's data, or something looked up or selected from it.
    data: bool,
    /// A value the template computed that is not modelled (any string).
    opaque: bool,
    /// Macros (by name) this value may be.
    macros: BTreeSet<String>,
}

impl V {
    fn lit(l: Lit) -> V {
        V { lits: vec![l], ..V::default() }
    }
    fn str(s: String) -> V {
        if s.len() > MAX_STRING { V::opaque() } else { V::lit(Lit::Str(s)) }
    }
    fn data() -> V {
        V { data: true, ..V::default() }
    }
    fn is_bottom(&self) -> bool {
        *self == V::default()
    }
    fn opaque() -> V {
        V { opaque: true, ..V::default() }
    }
    fn join(&mut self, other: &V) -> bool {
        let before = self.clone();
        for l in &other.lits {
            if !self.lits.contains(l) {
                self.lits.push(l.clone());
            }
        }
        if self.lits.len() > MAX_CHOICES {
            self.lits.clear();
            self.opaque = true;
        }
        self.data |= other.data;
        self.opaque |= other.opaque;
        self.macros.extend(other.macros.iter().cloned());
        *self != before
    }
    fn union(mut self, other: &V) -> V {
        self.join(other);
        self
    }
    /// Anything derived from this value by an operation that is not modelled.
    fn derived(&self) -> V {
        if self.lits.is_empty() && !self.opaque && self.macros.is_empty() && self.data {
            V::data()
        } else {
            V::opaque()
        }
    }
    fn strs(&self) -> Option<Vec<&str>> {
        if self.data || self.opaque || !self.macros.is_empty() {
            return None;
        }
        self.lits.iter().map(|l| if let Lit::Str(s) = l { Some(s.as_str()) } else { None }).collect()
    }
}

/// Applies `f` to every pair of known values of `a` and `b`; opaque when either is not fully
/// known or `f` has no answer.
fn lift2(a: &V, b: &V, f: impl Fn(&Lit, &Lit) -> Option<Lit>) -> V {
    // A value not seen yet (an earlier pass) gives nothing yet.
    if a.is_bottom() || b.is_bottom() {
        return V::default();
    }
    if a.data || a.opaque || b.data || b.opaque || !a.macros.is_empty() || !b.macros.is_empty() {
        return V::opaque();
    }
    if a.lits.len() * b.lits.len() > MAX_CHOICES {
        return V::opaque();
    }
    let mut out = V::default();
    for x in &a.lits {
        for y in &b.lits {
            match f(x, y) {
                Some(Lit::Str(s)) if s.len() > MAX_STRING => return V::opaque(),
                Some(l) => {
                    out.join(&V::lit(l));
                }
                None => return V::opaque(),
            }
        }
    }
    if out.lits.is_empty() { V::opaque() } else { out }
}

/// True when every value is a number (or another value that is never a name).
fn numeric(v: &V) -> bool {
    !v.data
        && !v.opaque
        && v.macros.is_empty()
        && !v.lits.is_empty()
        && v.lits.iter().all(|l| matches!(l, Lit::Int(_) | Lit::Other))
}

fn lift1(a: &V, f: impl Fn(&Lit) -> Option<Lit>) -> V {
    lift2(a, &V::lit(Lit::Other), |x, _| f(x))
}

/// Python's `str()` of a known value, where it is a plain string or number.
fn text_of(l: &Lit) -> Option<String> {
    match l {
        Lit::Str(s) => Some(s.clone()),
        Lit::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn concat(a: &Lit, b: &Lit) -> Option<Lit> {
    Some(Lit::Str(text_of(a)? + &text_of(b)?))
}

fn add(a: &Lit, b: &Lit) -> Option<Lit> {
    match (a, b) {
        (Lit::Str(x), Lit::Str(y)) => Some(Lit::Str(format!("{x}{y}"))),
        (Lit::Int(x), Lit::Int(y)) => x.checked_add(*y).map(Lit::Int),
        (Lit::List(x), Lit::List(y)) => Some(Lit::List(x.iter().chain(y).cloned().collect())),
        _ => None,
    }
}

fn mul(a: &Lit, b: &Lit) -> Option<Lit> {
    match (a, b) {
        (Lit::Str(s), Lit::Int(n)) | (Lit::Int(n), Lit::Str(s)) => {
            let n = usize::try_from(*n).unwrap_or(0);
            if s.len().saturating_mul(n) > MAX_STRING {
                return None;
            }
            Some(Lit::Str(s.repeat(n)))
        }
        (Lit::Int(x), Lit::Int(y)) => x.checked_mul(*y).map(Lit::Int),
        _ => None,
    }
}

/// Python's `%` formatting for `%s`, `%d`, `%i`, `%c`, `%%` (others: no answer).
fn percent(fmt: &Lit, args: &Lit) -> Option<Lit> {
    let Lit::Str(f) = fmt else { return None };
    let args: Vec<&Lit> = match args {
        Lit::List(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut out = String::new();
    let mut it = args.into_iter();
    let mut chars = f.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '%' => out.push('%'),
            's' => out.push_str(&text_of(it.next()?)?),
            'd' | 'i' => match it.next()? {
                Lit::Int(i) => out.push_str(&i.to_string()),
                _ => return None,
            },
            'c' => match it.next()? {
                Lit::Int(i) => out.push(char::from_u32(u32::try_from(*i).ok()?)?),
                Lit::Str(s) if s.chars().count() == 1 => out.push_str(s),
                _ => return None,
            },
            _ => return None,
        }
        if out.len() > MAX_STRING {
            return None;
        }
    }
    it.next().is_none().then_some(Lit::Str(out))
}

fn index(seq: &Lit, i: &Lit) -> Option<Lit> {
    let Lit::Int(i) = i else {
        if let (Lit::Map(m), key) = (seq, i) {
            return m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        }
        return None;
    };
    let items: Vec<Lit> = match seq {
        Lit::Str(s) => s.chars().map(|c| Lit::Str(c.to_string())).collect(),
        Lit::List(l) => l.clone(),
        _ => return None,
    };
    let n = i64::try_from(items.len()).ok()?;
    let at = if *i < 0 { n + i } else { *i };
    usize::try_from(at).ok().and_then(|at| items.get(at).cloned())
}

fn slice(seq: &Lit, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Option<Lit> {
    let (items, is_str): (Vec<Lit>, bool) = match seq {
        Lit::Str(s) => (s.chars().map(|c| Lit::Str(c.to_string())).collect(), true),
        Lit::List(l) => (l.clone(), false),
        _ => return None,
    };
    let n = i64::try_from(items.len()).ok()?;
    let step = step.unwrap_or(1);
    if step == 0 {
        return None;
    }
    let norm = |v: i64| if v < 0 { (v + n).max(if step < 0 { -1 } else { 0 }) } else { v.min(n) };
    let mut out = Vec::new();
    if step > 0 {
        let (mut i, stop) = (start.map_or(0, norm), stop.map_or(n, norm));
        while i < stop {
            out.push(items.get(usize::try_from(i).ok()?)?.clone());
            i += step;
        }
    } else {
        let (mut i, stop) = (start.map_or(n - 1, |v| norm(v).min(n - 1)), stop.map_or(-1, norm));
        while i > stop {
            out.push(items.get(usize::try_from(i).ok()?)?.clone());
            i += step;
        }
    }
    Some(if is_str { Lit::Str(out.iter().filter_map(text_of).collect()) } else { Lit::List(out) })
}

/// Decodes a Jinja2 string literal body exactly as Jinja2's lexer does: newlines normalised,
/// non-ASCII characters backslash-replaced, then Python's `unicode-escape`. `None` when the
/// value cannot be computed here (`\N{…}` names, lone surrogates) or Python would reject it.
pub(crate) fn decode_python_literal(body: &str) -> Option<String> {
    let normalised = body.replace("\r\n", "\n").replace('\r', "\n");
    let mut ascii = String::with_capacity(normalised.len());
    for c in normalised.chars() {
        let u = u32::from(c);
        match u {
            0..=0x7f => ascii.push(c),
            0x80..=0xff => ascii.push_str(&format!("\\x{u:02x}")),
            0x100..=0xffff => ascii.push_str(&format!("\\u{u:04x}")),
            _ => ascii.push_str(&format!("\\U{u:08x}")),
        }
    }
    let b = ascii.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(char::from(b[i]));
            i += 1;
            continue;
        }
        let e = *b.get(i + 1)?;
        i += 2;
        let hex = |from: usize, n: usize| -> Option<u32> {
            let h = ascii.get(from..from + n)?;
            if h.bytes().all(|c| c.is_ascii_hexdigit()) { u32::from_str_radix(h, 16).ok() } else { None }
        };
        match e {
            b'\n' => {}
            b'\\' | b'\'' | b'"' => out.push(char::from(e)),
            b'a' => out.push('\u{7}'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'v' => out.push('\u{b}'),
            b'x' => {
                out.push(char::from_u32(hex(i, 2)?)?);
                i += 2;
            }
            b'u' => {
                out.push(char::from_u32(hex(i, 4)?)?);
                i += 4;
            }
            b'U' => {
                out.push(char::from_u32(hex(i, 8)?)?);
                i += 8;
            }
            b'0'..=b'7' => {
                let mut v = u32::from(e - b'0');
                for _ in 0..2 {
                    match b.get(i) {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(char::from_u32(v)?);
            }
            // `\N{LOW LINE}`: a name table is not carried; the value is not computed.
            b'N' => return None,
            other => {
                out.push('\\');
                out.push(char::from(other));
            }
        }
    }
    Some(out)
}

/// The value of the string literal(s) at `span` in `src` (adjacent literals concatenate).
fn literal_at(src: &str, span: minijinja::machinery::Span) -> Option<String> {
    let text = src.get(span.start_offset as usize..span.end_offset as usize)?;
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let q = b[i];
        if q != b'\'' && q != b'"' {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && b[j] != q {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        out.push_str(&decode_python_literal(text.get(i + 1..j.min(b.len()))?)?);
        i = j + 1;
    }
    Some(out)
}

struct Macro<'t> {
    params: Vec<&'t str>,
}

struct Walker<'s, 't> {
    src: &'s str,
    env: HashMap<String, V>,
    /// Names bound anywhere in the template (set, for, macro, with, call parameters).
    bound: BTreeSet<&'t str>,
    /// Loop targets and macro parameters.
    params: BTreeSet<&'t str>,
    macros: HashMap<&'t str, Macro<'t>>,
    reaches: BTreeMap<(Kind, String), (usize, &'static str)>,
    changed: bool,
    /// Names whose value changed in the current pass.
    growing: BTreeSet<String>,
    /// Names are listed only in the last pass, once values are complete.
    recording: bool,
    depth: usize,
    limit: Option<String>,
}

impl<'s, 't> Walker<'s, 't> {
    fn reach(&mut self, kind: Kind, name: &str, offset: usize, how: &'static str) {
        if !self.recording {
            return;
        }
        if self.reaches.len() >= MAX_REACHES {
            if self.limit.is_none() {
                self.limit =
                    Some(format!("more than {MAX_REACHES} distinct names; the rest were not listed"));
            }
            return;
        }
        self.reaches.entry((kind, name.to_string())).or_insert((offset, how));
    }

    /// Lists the attribute names a value can be, when it is used as one.
    fn reach_names(&mut self, v: &V, offset: usize, how: &'static str, dotted: bool) {
        for l in &v.lits {
            match l {
                Lit::Str(s) if dotted => {
                    for part in s.split('.') {
                        if !part.is_empty() && !part.bytes().all(|c| c.is_ascii_digit()) {
                            self.reach(Kind::Attribute, part, offset, how);
                        }
                    }
                }
                Lit::Str(s) => self.reach(Kind::Attribute, s, offset, how),
                Lit::Int(_) | Lit::Other => {}
                Lit::List(_) | Lit::Map(_) => {
                    self.reach(Kind::Computed, "a list or mapping as a key", offset, how)
                }
            }
        }
        if v.opaque || !v.macros.is_empty() {
            self.reach(Kind::Computed, "an attribute name built at render time", offset, how);
        }
    }

    fn assign(&mut self, name: &str, v: &V) {
        let slot = self.env.entry(name.to_string()).or_default();
        if slot.join(v) {
            self.changed = true;
            self.growing.insert(name.to_string());
        }
    }

    /// Binds an assignment target (`x`, `a, b`, `ns.attr`) to `v`.
    fn bind(&mut self, target: &Expr<'t>, v: &V) {
        match target {
            Expr::Var(var) => self.assign(var.id, v),
            Expr::Tuple(t) => {
                for (i, item) in t.items.iter().enumerate() {
                    let element = self.element_at(v, i);
                    self.bind(item, &element);
                }
            }
            Expr::List(t) => {
                for (i, item) in t.items.iter().enumerate() {
                    let element = self.element_at(v, i);
                    self.bind(item, &element);
                }
            }
            Expr::GetAttr(g) => {
                // `{% set ns.attr = … %}`: a namespace attribute.
                if let Expr::Var(var) = &g.expr {
                    self.assign(&format!("{}.{}", var.id, g.name), v);
                }
                let _ = self.eval(&g.expr);
            }
            other => {
                let _ = self.eval(other);
            }
        }
    }

    /// The `i`th element of each value (tuple unpacking).
    fn element_at(&self, v: &V, i: usize) -> V {
        let mut out = V { data: v.data, opaque: v.opaque || !v.macros.is_empty(), ..V::default() };
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        for l in &v.lits {
            match index(l, &Lit::Int(i)) {
                Some(e) => {
                    out.join(&V::lit(e));
                }
                None => out.opaque = true,
            }
        }
        out
    }

    /// The values an iteration over `v` yields.
    fn elements(&self, v: &V) -> V {
        let mut out = V { data: v.data, opaque: v.opaque || !v.macros.is_empty(), ..V::default() };
        for l in &v.lits {
            match l {
                Lit::List(items) => {
                    for e in items {
                        out.join(&V::lit(e.clone()));
                    }
                }
                Lit::Str(s) => {
                    for c in s.chars() {
                        out.join(&V::lit(Lit::Str(c.to_string())));
                    }
                }
                Lit::Map(m) => {
                    for (k, _) in m {
                        out.join(&V::lit(k.clone()));
                    }
                }
                // Numbers, booleans, none and methods are not iterable: nothing is bound.
                Lit::Int(_) | Lit::Other => {}
            }
        }
        out
    }

    fn stmts(&mut self, body: &[Stmt<'t>]) {
        for s in body {
            self.stmt(s);
        }
    }

    fn stmt(&mut self, s: &Stmt<'t>) {
        match s {
            Stmt::Template(t) => self.stmts(&t.children),
            Stmt::EmitExpr(e) => {
                let _ = self.eval(&e.expr);
            }
            Stmt::EmitRaw(_) | Stmt::Continue(_) | Stmt::Break(_) => {}
            Stmt::ForLoop(f) => {
                let iter = self.eval(&f.iter);
                let each = self.elements(&iter);
                self.bind(&f.target, &each);
                if let Some(filter) = &f.filter_expr {
                    let _ = self.eval(filter);
                }
                self.stmts(&f.body);
                self.stmts(&f.else_body);
            }
            Stmt::IfCond(c) => {
                let _ = self.eval(&c.expr);
                self.stmts(&c.true_body);
                self.stmts(&c.false_body);
            }
            Stmt::WithBlock(w) => {
                for (target, value) in &w.assignments {
                    let v = self.eval(value);
                    self.bind(target, &v);
                }
                self.stmts(&w.body);
            }
            Stmt::Set(set) => {
                let v = self.eval(&set.expr);
                if let (Expr::Var(var), Expr::Call(call)) = (&set.target, &set.expr)
                    && matches!(&call.expr, Expr::Var(f) if f.id == "namespace")
                {
                    for arg in &call.args {
                        if let CallArg::Kwarg(k, e) = arg {
                            let kv = self.eval(e);
                            self.assign(&format!("{}.{k}", var.id), &kv);
                        }
                    }
                }
                self.bind(&set.target, &v);
            }
            Stmt::SetBlock(set) => {
                let mut v = self.rendered(&set.body);
                if let Some(filter) = &set.filter {
                    let _ = self.eval(filter);
                    v = v.derived();
                }
                self.bind(&set.target, &v);
            }
            Stmt::AutoEscape(a) => {
                let _ = self.eval(&a.enabled);
                self.stmts(&a.body);
            }
            Stmt::FilterBlock(f) => {
                let _ = self.eval(&f.filter);
                self.stmts(&f.body);
            }
            Stmt::Block(b) => {
                self.reach(Kind::Statement, "block", b.span().start_offset as usize, "a `{% block %}`");
                self.stmts(&b.body);
            }
            Stmt::Import(i) => {
                self.reach(Kind::Statement, "import", i.span().start_offset as usize, "a `{% import %}`");
                let _ = self.eval(&i.expr);
                self.bind(&i.name, &V::opaque());
            }
            Stmt::FromImport(i) => {
                self.reach(
                    Kind::Statement,
                    "from",
                    i.span().start_offset as usize,
                    "a `{% from … import %}`",
                );
                let _ = self.eval(&i.expr);
                for (name, alias) in &i.names {
                    self.bind(alias.as_ref().unwrap_or(name), &V::opaque());
                }
            }
            Stmt::Extends(e) => {
                self.reach(Kind::Statement, "extends", e.span().start_offset as usize, "an `{% extends %}`");
                let _ = self.eval(&e.name);
            }
            Stmt::Include(i) => {
                self.reach(Kind::Statement, "include", i.span().start_offset as usize, "an `{% include %}`");
                let _ = self.eval(&i.name);
            }
            Stmt::Macro(m) => {
                self.define_macro(m);
            }
            Stmt::CallBlock(c) => {
                self.define_macro(&c.macro_decl);
                let _ = self.call(&c.call.expr, &c.call.args, c.call.span().start_offset as usize);
            }
            Stmt::Do(d) => {
                let _ = self.call(&d.call.expr, &d.call.args, d.call.span().start_offset as usize);
            }
        }
    }

    fn define_macro(&mut self, m: &ast::Macro<'t>) {
        let mut v = V::default();
        v.macros.insert(m.name.to_string());
        self.assign(m.name, &v);
        let params: Vec<&'t str> =
            m.args.iter().map(|a| if let Expr::Var(v) = a { v.id } else { "" }).collect();
        // Defaults belong to the last parameters.
        let first_default = params.len().saturating_sub(m.defaults.len());
        for (i, d) in m.defaults.iter().enumerate() {
            let v = self.eval(d);
            if let Some(p) = params.get(first_default + i) {
                self.assign(p, &v);
            }
        }
        for extra in ["varargs", "kwargs", "caller"] {
            self.assign(extra, &V::opaque());
        }
        self.macros.insert(m.name, Macro { params });
        self.stmts(&m.body);
    }

    /// The value of a `{% set x %}…{% endset %}` body: the concatenation of its text and
    /// expressions when they are all known, opaque otherwise.
    fn rendered(&mut self, body: &[Stmt<'t>]) -> V {
        let mut acc = V::str(String::new());
        for s in body {
            let part = match s {
                Stmt::EmitRaw(r) => V::str(r.raw.to_string()),
                Stmt::EmitExpr(e) => self.eval(&e.expr),
                other => {
                    self.stmt(other);
                    V::opaque()
                }
            };
            acc = lift2(&acc, &part, concat);
        }
        acc
    }

    fn eval(&mut self, e: &Expr<'t>) -> V {
        self.depth += 1;
        let v = if self.depth > MAX_DEPTH {
            if self.limit.is_none() {
                self.limit = Some(format!(
                    "an expression nested more than {MAX_DEPTH} deep at byte {}; its inner part was not followed",
                    e.span().start_offset
                ));
            }
            self.reach(
                Kind::Computed,
                "an expression too deep to follow",
                e.span().start_offset as usize,
                "nesting",
            );
            V::opaque()
        } else {
            self.eval_inner(e)
        };
        self.depth -= 1;
        v
    }

    fn eval_inner(&mut self, e: &Expr<'t>) -> V {
        match e {
            Expr::Var(var) => self.var(var.id, var.span().start_offset as usize),
            Expr::Const(c) => {
                let value = &c.value;
                if value.kind() == minijinja::value::ValueKind::String {
                    match literal_at(self.src, c.span()) {
                        Some(s) => V::str(s),
                        None => V::opaque(),
                    }
                } else if let Some(i) = value.as_i64() {
                    V::lit(Lit::Int(i))
                } else {
                    V::lit(Lit::Other)
                }
            }
            Expr::Slice(s) => {
                let seq = self.eval(&s.expr);
                let mut bound = |x: &Option<Expr<'t>>| -> Result<Option<i64>, ()> {
                    match x {
                        None => Ok(None),
                        Some(x) => match self.eval(x).lits.as_slice() {
                            [Lit::Int(i)] => Ok(Some(*i)),
                            _ => Err(()),
                        },
                    }
                };
                let (a, b, c) = (bound(&s.start), bound(&s.stop), bound(&s.step));
                match (a, b, c) {
                    (Ok(a), Ok(b), Ok(c)) => {
                        if seq.data && seq.lits.is_empty() && !seq.opaque {
                            V::data()
                        } else {
                            lift1(&seq, |l| slice(l, a, b, c))
                        }
                    }
                    _ => seq.derived(),
                }
            }
            Expr::UnaryOp(u) => {
                let v = self.eval(&u.expr);
                match u.op {
                    ast::UnaryOpKind::Not => V::lit(Lit::Other),
                    ast::UnaryOpKind::Neg => lift1(&v, |l| match l {
                        Lit::Int(i) => i.checked_neg().map(Lit::Int),
                        _ => None,
                    }),
                }
            }
            Expr::BinOp(b) => {
                let l = self.eval(&b.left);
                let r = self.eval(&b.right);
                use ast::BinOpKind as K;
                match b.op {
                    K::Concat => lift2(&l, &r, concat),
                    K::Add | K::Mul | K::Rem if numeric(&l) && numeric(&r) => {
                        let exact = lift2(&l, &r, if matches!(b.op, K::Add) { add } else { mul });
                        if matches!(b.op, K::Rem) || exact.opaque { V::lit(Lit::Other) } else { exact }
                    }
                    K::Add => lift2(&l, &r, add),
                    K::Mul => lift2(&l, &r, mul),
                    K::Rem => lift2(&l, &r, percent),
                    K::ScAnd | K::ScOr => l.union(&r),
                    // Python's str and list have no `-`, `/`, `//` or `**`: a number or an error.
                    K::Sub | K::Div | K::FloorDiv | K::Pow => V::lit(Lit::Other),
                    _ => V::lit(Lit::Other),
                }
            }
            Expr::Compare(c) => {
                let _ = self.eval(&c.expr);
                for op in &c.ops {
                    let _ = self.eval(&op.expr);
                }
                V::lit(Lit::Other)
            }
            Expr::IfExpr(i) => {
                let _ = self.eval(&i.test_expr);
                let t = self.eval(&i.true_expr);
                // A missing else is Undefined: an empty string.
                let f = match &i.false_expr {
                    Some(f) => self.eval(f),
                    None => V::str(String::new()),
                };
                t.union(&f)
            }
            Expr::Filter(f) => self.filter(f, f.span()),
            Expr::Test(t) => {
                let at = name_offset(self.src, t.span(), Some(t.expr.span()), t.name);
                self.reach(Kind::Test, t.name, at, "`is …`");
                let _ = self.eval(&t.expr);
                let _ = self.args(&t.args);
                V::lit(Lit::Other)
            }
            Expr::GetAttr(g) => {
                let recv = self.eval(&g.expr);
                let at = (g.span().end_offset as usize).saturating_sub(g.name.len());
                self.reach(Kind::Attribute, g.name, at, "`.name`");
                self.attribute_value(&g.expr, &recv, g.name)
            }
            Expr::GetItem(g) => {
                let recv = self.eval(&g.expr);
                let key = self.eval(&g.subscript_expr);
                let at = g.subscript_expr.span().start_offset as usize;
                // A string key is an attribute when the item lookup fails (Jinja's subscript).
                self.reach_names(&key, at, "a subscript", false);
                let data_key = key.data && key.lits.is_empty() && !key.opaque && key.macros.is_empty();
                if recv.data && recv.lits.is_empty() && !recv.opaque {
                    V::data()
                } else if data_key {
                    // `role_map[message.role]`: any entry of the literal maps.
                    let mut out = V { data: recv.data, opaque: recv.opaque, ..V::default() };
                    for l in &recv.lits {
                        match l {
                            Lit::Map(m) => m.iter().for_each(|(_, v)| {
                                out.join(&V::lit(v.clone()));
                            }),
                            _ => out.opaque = true,
                        }
                    }
                    out
                } else {
                    let looked = lift2(&recv, &key, index);
                    if recv.data { looked.union(&V::data()) } else { looked }
                }
            }
            Expr::Call(c) => self.call(&c.expr, &c.args, c.span().start_offset as usize),
            Expr::List(l) => self.sequence(&l.items),
            Expr::Tuple(t) => self.sequence(&t.items),
            Expr::Map(m) => {
                // Literal keys with literal values are kept; a value from the caller's data
                // makes the map partly data (its other entries are still known).
                let mut out = V::default();
                let mut pairs = Vec::new();
                for (k, v) in m.keys.iter().zip(&m.values) {
                    let (k, v) = (self.eval(k), self.eval(v));
                    match (k.lits.as_slice(), k.data || k.opaque || !k.macros.is_empty()) {
                        ([k], false) => match (v.lits.as_slice(), v.data || v.opaque || !v.macros.is_empty())
                        {
                            ([v], false) => pairs.push((k.clone(), v.clone())),
                            ([], _) if v.is_bottom() => {}
                            ([], _) if v.data && !v.opaque && v.macros.is_empty() => out.data = true,
                            _ => out.opaque = true,
                        },
                        _ => out.opaque = true,
                    }
                }
                out.lits.push(Lit::Map(pairs));
                out
            }
        }
    }

    fn sequence(&mut self, items: &[Expr<'t>]) -> V {
        let values: Vec<V> = items.iter().map(|x| self.eval(x)).collect();
        let mut known = Vec::new();
        for v in values.iter().filter(|v| !v.is_bottom()) {
            match (v.lits.as_slice(), v.data || v.opaque || !v.macros.is_empty()) {
                ([one], false) => known.push(one.clone()),
                _ => {
                    // A list of values not all known: iteration yields their union.
                    let mut out = V::default();
                    for v in &values {
                        out.join(&V::lit(Lit::List(Vec::new())));
                        out.join(v);
                    }
                    out.opaque = true;
                    return out;
                }
            }
        }
        V::lit(Lit::List(known))
    }

    fn var(&mut self, id: &str, at: usize) -> V {
        if id == "loop" {
            return V::opaque();
        }
        // A name bound by `{% set %}` may still be read where no assignment ran, and then Jinja
        // looks it up in the globals and the renderer's variables: only parameters (loop
        // targets, macro arguments) are never free.
        if !self.params.contains(id) {
            self.reach(Kind::Name, id, at, "a free name");
        }
        if self.bound.contains(id) {
            // Until an assignment is seen the value is empty (nothing reaches anything through
            // it); the passes run to a fixed point before names are listed. A name read where
            // none of its assignments ran is the renderer's variable of that name (listed as a
            // free name above) or Undefined; its value is taken to be the assigned ones.
            return self.env.get(id).cloned().unwrap_or_default();
        }
        V::data()
    }

    fn attribute_value(&mut self, recv_expr: &Expr<'t>, recv: &V, name: &str) -> V {
        if recv.is_bottom() {
            return V::default();
        }
        // Jinja's `loop`: positions are numbers, `first`/`last`/`changed` booleans.
        if let Expr::Var(var) = recv_expr
            && var.id == "loop"
            && matches!(
                name,
                "index"
                    | "index0"
                    | "revindex"
                    | "revindex0"
                    | "length"
                    | "depth"
                    | "depth0"
                    | "first"
                    | "last"
            )
        {
            return V::lit(Lit::Other);
        }
        if let Expr::Var(var) = recv_expr
            && let Some(v) = self.env.get(&format!("{}.{name}", var.id))
        {
            return v.clone();
        }
        if recv.data && recv.lits.is_empty() && !recv.opaque && recv.macros.is_empty() {
            return V::data();
        }
        // A dict literal: the entry of that name (Jinja's getattr falls back to the item).
        let mut out = V { data: recv.data, opaque: recv.opaque || !recv.macros.is_empty(), ..V::default() };
        for l in &recv.lits {
            match l {
                Lit::Map(m) => {
                    let key = Lit::Str(name.to_string());
                    match m.iter().find(|(k, _)| *k == key) {
                        Some((_, v)) => {
                            out.join(&V::lit(v.clone()));
                        }
                        None if recv.data => {}
                        // A dict's method (`.items`) or Undefined: not a string.
                        None => {
                            out.join(&V::lit(Lit::Other));
                        }
                    }
                }
                // Attributes of strings, numbers and lists are methods or Undefined, never a
                // string (the dunder ones, like `__doc__`, are listed and judged above).
                _ => {
                    out.join(&V::lit(Lit::Other));
                }
            }
        }
        if out == V::default() { V::opaque() } else { out }
    }

    /// Evaluates call arguments; returns positional values and keyword values.
    #[allow(clippy::type_complexity)]
    fn args(&mut self, args: &[CallArg<'t>]) -> (Vec<V>, Vec<(&'t str, V)>) {
        let (mut pos, mut kw) = (Vec::new(), Vec::new());
        for a in args {
            match a {
                CallArg::Pos(e) => pos.push(self.eval(e)),
                CallArg::Kwarg(k, e) => kw.push((*k, self.eval(e))),
                CallArg::PosSplat(e) | CallArg::KwargSplat(e) => {
                    let _ = self.eval(e);
                    pos.push(V::opaque());
                }
            }
        }
        (pos, kw)
    }

    fn call(&mut self, callee: &Expr<'t>, args: &[CallArg<'t>], at: usize) -> V {
        let f = self.eval(callee);
        let (pos, kw) = self.args(args);
        let splat = args.iter().any(|a| matches!(a, CallArg::PosSplat(_) | CallArg::KwargSplat(_)));
        for m in &f.macros {
            let Some(params) = self.macros.get(m.as_str()).map(|m| m.params.clone()) else { continue };
            for (i, p) in params.iter().enumerate() {
                let v = if splat { Some(V::opaque()) } else { pos.get(i).cloned() };
                if let Some(v) = v {
                    self.assign(p, &v);
                }
            }
            for (k, v) in &kw {
                let v = v.clone();
                self.assign(k, &v);
            }
        }
        let _ = at;
        if let Expr::Var(var) = callee
            && var.id == "range"
            && !self.bound.contains("range")
        {
            return V::lit(Lit::List(vec![Lit::Other]));
        }
        if let Expr::GetAttr(g) = callee {
            let recv = self.eval(&g.expr);
            if matches!(g.name, "format" | "format_map") {
                // `str.format` looks up the attributes and items its fields name
                // (`{0.__class__}`, `{x[y]}`): they are attribute access written in a string.
                let at = (g.span().end_offset as usize).saturating_sub(g.name.len());
                for l in &recv.lits {
                    if let Lit::Str(f) = l {
                        for name in format_fields(f) {
                            self.reach(Kind::Attribute, &name, at, "a `str.format` field");
                        }
                    }
                }
                if recv.opaque || !recv.macros.is_empty() {
                    self.reach(
                        Kind::Computed,
                        "a `str.format` string built at render time",
                        at,
                        "`.format(…)`",
                    );
                }
            }
            let pure = recv.data && recv.lits.is_empty() && !recv.opaque;
            return match g.name {
                "items" | "keys" | "values" | "get" | "split" | "strip" | "lstrip" | "rstrip" | "lower"
                | "upper" | "title" | "capitalize" | "copy"
                    if pure =>
                {
                    let mut v = V::data();
                    if g.name == "get" {
                        for p in pos.iter().skip(1) {
                            v.join(p);
                        }
                    }
                    v
                }
                "lower" => lift1(&recv, |l| match l {
                    Lit::Str(s) => Some(Lit::Str(s.to_lowercase())),
                    _ => None,
                }),
                "upper" => lift1(&recv, |l| match l {
                    Lit::Str(s) => Some(Lit::Str(s.to_uppercase())),
                    _ => None,
                }),
                "strip" if pos.is_empty() => lift1(&recv, |l| match l {
                    Lit::Str(s) => Some(Lit::Str(s.trim().to_string())),
                    _ => None,
                }),
                "replace" => match (pos.first(), pos.get(1)) {
                    (Some(a), Some(b)) => replace(&recv, a, b),
                    _ => V::opaque(),
                },
                "join" => match pos.first() {
                    Some(items) => join(items, &recv),
                    None => V::opaque(),
                },
                "items" | "keys" | "values" | "get" => lift1(&recv, |l| match (l, g.name) {
                    (Lit::Map(m), "items") => Some(Lit::List(
                        m.iter().map(|(k, v)| Lit::List(vec![k.clone(), v.clone()])).collect(),
                    )),
                    (Lit::Map(m), "keys") => Some(Lit::List(m.iter().map(|(k, _)| k.clone()).collect())),
                    (Lit::Map(m), "values") => Some(Lit::List(m.iter().map(|(_, v)| v.clone()).collect())),
                    _ => None,
                }),
                _ => V::opaque(),
            };
        }
        V::opaque()
    }

    fn filter(&mut self, f: &ast::Filter<'t>, span: minijinja::machinery::Span) -> V {
        let at = name_offset(self.src, span, f.expr.as_ref().map(|e| e.span()), f.name);
        self.reach(Kind::Filter, f.name, at, "`|name`");
        let input = match &f.expr {
            Some(e) => self.eval(e),
            None => V::opaque(),
        };
        let (pos, kw) = self.args(&f.args);
        let kwarg = |k: &str| kw.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        let pure = input.data && input.lits.is_empty() && !input.opaque && input.macros.is_empty();
        let injects = kw.iter().any(|(k, _)| matches!(*k, "default" | "fill_with"))
            || (matches!(f.name, "batch" | "slice") && pos.len() > 1)
            || (f.name == "map" && kwarg("attribute").is_none());
        // Names passed as strings: attributes, filters, tests.
        match f.name {
            "attr" => {
                if let Some(name) = pos.first() {
                    self.reach_names(name, at, "`|attr(…)`", false);
                }
            }
            "map" => {
                if let Some(attr) = kwarg("attribute") {
                    self.reach_names(&attr, at, "`map(attribute=…)`", true);
                } else if let Some(name) = pos.first() {
                    self.reach_named(Kind::Filter, name, at, "`map('filter')`");
                    if name.strs().is_some_and(|n| n.contains(&"attr"))
                        && let Some(a) = pos.get(1)
                    {
                        self.reach_names(a, at, "`map('attr', …)`", false);
                    }
                }
            }
            "select" | "reject" => {
                if let Some(name) = pos.first() {
                    self.reach_named(Kind::Test, name, at, "`select('test')`");
                }
            }
            "selectattr" | "rejectattr" => {
                if let Some(attr) = pos.first() {
                    self.reach_names(attr, at, "`selectattr('attribute')`", true);
                }
                if let Some(test) = pos.get(1) {
                    self.reach_named(Kind::Test, test, at, "`selectattr(…, 'test')`");
                }
            }
            "groupby" => {
                if let Some(attr) = pos.first().cloned().or_else(|| kwarg("attribute")) {
                    self.reach_names(&attr, at, "`groupby('attribute')`", true);
                }
            }
            "sort" | "unique" | "min" | "max" | "sum" | "join" => {
                if let Some(attr) = kwarg("attribute") {
                    self.reach_names(&attr, at, "`attribute=` of a filter", true);
                }
            }
            _ => {}
        }
        match f.name {
            "join" => {
                let sep = pos.first().cloned().unwrap_or_else(|| V::str(String::new()));
                if pure && kwarg("attribute").is_none() && sep.strs().is_some() {
                    // Joining the caller's items with a literal separator mixes both.
                    V::opaque()
                } else {
                    join(&input, &sep)
                }
            }
            "format" => {
                let args = V::lit(Lit::List(Vec::new()));
                let mut folded = Some(Vec::new());
                for p in &pos {
                    match (p.lits.as_slice(), p.data || p.opaque || !p.macros.is_empty()) {
                        ([one], false) => {
                            if let Some(v) = folded.as_mut() {
                                v.push(one.clone());
                            }
                        }
                        _ => folded = None,
                    }
                }
                match folded {
                    Some(items) if kw.is_empty() => {
                        lift1(&input, |fmt| percent(fmt, &Lit::List(items.clone())))
                    }
                    _ => {
                        let _ = args;
                        V::opaque()
                    }
                }
            }
            "replace" => match (pos.first(), pos.get(1)) {
                (Some(a), Some(b)) => replace(&input, a, b),
                _ => V::opaque(),
            },
            "lower" | "upper" | "trim" | "title" | "capitalize" | "reverse" | "list" | "string" | "first"
            | "last" | "safe" | "e" | "escape" | "default" | "d"
                if !pure =>
            {
                let default = pos.first().cloned().unwrap_or_default();
                let out = lift1(&input, |l| simple_filter(f.name, l));
                if matches!(f.name, "default" | "d") { out.union(&default) } else { out }
            }
            "default" | "d" => input.union(&pos.first().cloned().unwrap_or_default()),
            // Filters that select from or reshape the caller's data keep it the caller's. Not
            // `string`: the text of an object is Python's (`dict_items(…)`, `<built-in method …>`).
            // Only while no argument can put a literal into the result (`map('string')` makes
            // Python's text of objects; `batch(2, fill_with='x')`, `map(default='x')`,
            // `truncate(end='x')`, `indent(first=…)` add the template's own text).
            "lower" | "upper" | "trim" | "title" | "capitalize" | "reverse" | "list" | "first" | "last"
            | "safe" | "tojson" | "items" | "dictsort" | "selectattr" | "rejectattr" | "select"
            | "reject" | "sort" | "unique" | "batch" | "slice" | "map" | "groupby" | "striptags"
                if pure && !injects =>
            {
                V::data()
            }
            // The same filters on dict and list literals (possibly mixed with data): their
            // entries, as a superset.
            "items" | "dictsort" | "selectattr" | "rejectattr" | "select" | "reject" | "sort" | "unique"
            | "list" | "batch" | "slice" | "tojson"
                if !pure
                    && !input.opaque
                    && input.macros.is_empty()
                    && kw.is_empty()
                    && !(matches!(f.name, "batch" | "slice") && pos.len() > 1) =>
            {
                let mut out = V { data: input.data, ..V::default() };
                for l in &input.lits {
                    match (l, f.name) {
                        (Lit::Map(m), "items" | "dictsort") => {
                            out.join(&V::lit(Lit::List(
                                m.iter().map(|(k, v)| Lit::List(vec![k.clone(), v.clone()])).collect(),
                            )));
                        }
                        (
                            Lit::Map(_) | Lit::List(_),
                            "selectattr" | "rejectattr" | "select" | "reject" | "sort" | "unique" | "list",
                        ) => {
                            out.join(&V::lit(l.clone()));
                        }
                        (Lit::Str(_), _) | (_, "tojson" | "batch" | "slice") => out.opaque = true,
                        // `items` of a list, `sort` of a number…: an error, nothing flows.
                        _ => {}
                    }
                }
                out
            }
            "length" | "count" | "int" | "float" | "round" | "abs" | "wordcount" | "sum" => {
                V::lit(Lit::Other)
            }
            _ => V::opaque(),
        }
    }

    /// Lists the filter or test names a value can be (`map('name')`).
    fn reach_named(&mut self, kind: Kind, v: &V, offset: usize, how: &'static str) {
        for l in &v.lits {
            if let Lit::Str(s) = l {
                self.reach(kind, s, offset, how);
            }
        }
        if v.opaque || v.data || !v.macros.is_empty() || v.lits.iter().any(|l| !matches!(l, Lit::Str(_))) {
            self.reach(Kind::Computed, "a filter or test name built at render time", offset, how);
        }
    }
}

/// The attribute and item names that `str.format` fields in `f` look up (`{0.a[b]}` → `a`,
/// `b`), including fields nested in format specs. Numeric items are indexes, not names.
fn format_fields(f: &str) -> Vec<String> {
    let mut out = Vec::new();
    let b: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '{' && b.get(i + 1) == Some(&'{') {
            i += 2;
            continue;
        }
        if b[i] != '{' {
            i += 1;
            continue;
        }
        // The field runs to the matching `}` (specs may nest one level of fields).
        let (mut depth, mut j) = (0usize, i);
        while j < b.len() {
            match b[j] {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        let field: String = b[i + 1..j.min(b.len())].iter().collect();
        let name_end = field.find(['!', ':']).unwrap_or(field.len());
        let (name, spec) = field.split_at(name_end);
        let mut rest = name;
        // Skip the argument name or index.
        let first = rest.find(['.', '[']).unwrap_or(rest.len());
        rest = &rest[first..];
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                out.push(r[..end].to_string());
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').unwrap_or(r.len());
                let key = &r[..end];
                if !key.bytes().all(|c| c.is_ascii_digit()) {
                    out.push(key.to_string());
                }
                rest = r.get(end + 1..).unwrap_or_default();
            } else {
                break;
            }
        }
        out.extend(format_fields(spec));
        i = j + 1;
    }
    out
}

fn simple_filter(name: &str, l: &Lit) -> Option<Lit> {
    let s = match l {
        Lit::Str(s) => s,
        Lit::List(items) => {
            return match name {
                "list" => Some(l.clone()),
                "reverse" => Some(Lit::List(items.iter().rev().cloned().collect())),
                "first" => items.first().cloned(),
                "last" => items.last().cloned(),
                _ => None,
            };
        }
        Lit::Int(i) if matches!(name, "string") => return Some(Lit::Str(i.to_string())),
        _ => return None,
    };
    Some(match name {
        "lower" => Lit::Str(s.to_lowercase()),
        "upper" => Lit::Str(s.to_uppercase()),
        "trim" => Lit::Str(s.trim().to_string()),
        "reverse" => Lit::Str(s.chars().rev().collect()),
        "list" => Lit::List(s.chars().map(|c| Lit::Str(c.to_string())).collect()),
        "first" => Lit::Str(s.chars().next()?.to_string()),
        "last" => Lit::Str(s.chars().last()?.to_string()),
        "string" | "safe" | "default" | "d" => Lit::Str(s.clone()),
        // Title-casing and escaping change letters or add entities: not modelled.
        _ => return None,
    })
}

fn replace(input: &V, old: &V, new: &V) -> V {
    let pair = lift2(old, new, |a, b| Some(Lit::List(vec![a.clone(), b.clone()])));
    if pair.opaque {
        return V::opaque();
    }
    let mut out = V::default();
    for p in &pair.lits {
        let Lit::List(ab) = p else { return V::opaque() };
        let (Some(Lit::Str(a)), Some(Lit::Str(b))) = (ab.first(), ab.get(1)) else { return V::opaque() };
        out.join(&lift1(input, |l| match l {
            Lit::Str(s) if !a.is_empty() => {
                let r = s.replace(a.as_str(), b);
                (r.len() <= MAX_STRING).then_some(Lit::Str(r))
            }
            _ => None,
        }));
    }
    out
}

fn join(items: &V, sep: &V) -> V {
    lift2(items, sep, |l, s| {
        let (Lit::List(items), Lit::Str(sep)) = (l, s) else {
            if let (Lit::Str(chars), Lit::Str(sep)) = (l, s) {
                let parts: Vec<String> = chars.chars().map(String::from).collect();
                return Some(Lit::Str(parts.join(sep)));
            }
            return None;
        };
        let parts: Option<Vec<String>> = items.iter().map(text_of).collect();
        Some(Lit::Str(parts?.join(sep)))
    })
}

/// The offset of `name` after the operand (`|name`, `is name`) within `span`.
fn name_offset(
    src: &str,
    span: minijinja::machinery::Span,
    operand: Option<minijinja::machinery::Span>,
    name: &str,
) -> usize {
    let from = operand.map_or(span.start_offset, |o| o.end_offset) as usize;
    let to = (span.end_offset as usize).max(from);
    src.get(from..to).and_then(|t| t.find(name)).map_or(from, |p| p + from)
}

/// Collects every name a template binds (set, for, with, macro and call parameters, imports).
fn bound_names<'t>(body: &[Stmt<'t>], out: &mut BTreeSet<&'t str>, params: &mut BTreeSet<&'t str>) {
    fn target<'t>(e: &Expr<'t>, out: &mut BTreeSet<&'t str>) {
        match e {
            Expr::Var(v) => {
                out.insert(v.id);
            }
            Expr::Tuple(t) => t.items.iter().for_each(|i| target(i, out)),
            Expr::List(t) => t.items.iter().for_each(|i| target(i, out)),
            _ => {}
        }
    }
    for s in body {
        match s {
            Stmt::Template(t) => bound_names(&t.children, out, params),
            Stmt::ForLoop(f) => {
                target(&f.target, out);
                target(&f.target, params);
                bound_names(&f.body, out, params);
                bound_names(&f.else_body, out, params);
            }
            Stmt::IfCond(c) => {
                bound_names(&c.true_body, out, params);
                bound_names(&c.false_body, out, params);
            }
            Stmt::WithBlock(w) => {
                w.assignments.iter().for_each(|(t, _)| target(t, out));
                bound_names(&w.body, out, params);
            }
            Stmt::Set(set) => target(&set.target, out),
            Stmt::SetBlock(set) => {
                target(&set.target, out);
                bound_names(&set.body, out, params);
            }
            Stmt::AutoEscape(a) => bound_names(&a.body, out, params),
            Stmt::FilterBlock(f) => bound_names(&f.body, out, params),
            Stmt::Block(b) => bound_names(&b.body, out, params),
            Stmt::Import(i) => target(&i.name, out),
            Stmt::FromImport(i) => {
                for (name, alias) in &i.names {
                    target(alias.as_ref().unwrap_or(name), out);
                }
            }
            Stmt::Macro(m) => {
                out.insert(m.name);
                m.args.iter().for_each(|a| target(a, out));
                m.args.iter().for_each(|a| target(a, params));
                out.extend(["varargs", "kwargs", "caller"]);
                params.extend(["varargs", "kwargs", "caller"]);
                bound_names(&m.body, out, params);
            }
            Stmt::CallBlock(c) => {
                c.macro_decl.args.iter().for_each(|a| target(a, out));
                c.macro_decl.args.iter().for_each(|a| target(a, params));
                out.extend(["varargs", "kwargs", "caller"]);
                params.extend(["varargs", "kwargs", "caller"]);
                bound_names(&c.macro_decl.body, out, params);
            }
            _ => {}
        }
    }
}

/// Parses `src` and lists what it reaches. `Err` is the parser's message.
pub(crate) fn analyse(src: &str) -> Result<Analysis, String> {
    let tree = minijinja::machinery::parse(src, "<template>", Default::default())
        .map_err(|e| e.to_string().split_whitespace().collect::<Vec<_>>().join(" "))?;
    let (mut bound, mut params) = (BTreeSet::new(), BTreeSet::new());
    bound_names(std::slice::from_ref(&tree), &mut bound, &mut params);
    let mut w = Walker {
        src,
        env: HashMap::new(),
        bound,
        params,
        macros: HashMap::new(),
        reaches: BTreeMap::new(),
        changed: false,
        growing: BTreeSet::new(),
        recording: false,
        depth: 0,
        limit: None,
    };
    // Run to a fixed point. Values still growing after MAX_PASSES (a string built up in a
    // loop) are widened to opaque, those names only, and the passes resume; a second failure
    // widens every name.
    let mut converged = false;
    for round in 0..3 {
        for _ in 0..MAX_PASSES {
            w.changed = false;
            w.growing.clear();
            w.stmt(&tree);
            if !w.changed {
                converged = true;
                break;
            }
        }
        if converged {
            break;
        }
        let growing = std::mem::take(&mut w.growing);
        for (name, v) in w.env.iter_mut() {
            if round > 0 || growing.contains(name) {
                v.opaque = true;
                v.lits.clear();
            }
        }
    }
    if !converged {
        w.stmt(&tree);
    }
    w.recording = true;
    w.stmt(&tree);
    let mut reaches: Vec<Reach> = w
        .reaches
        .into_iter()
        .map(|((kind, name), (offset, how))| Reach { kind, name, offset, how })
        .collect();
    reaches.sort_by_key(|r| (r.offset, r.kind));
    Ok(Analysis { reaches, limit: w.limit })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(src: &str) -> Vec<String> {
        let a = analyse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        a.reaches.iter().map(|r| format!("{}:{}", r.kind.as_str(), r.name)).collect()
    }

    fn has(src: &str, want: &str) {
        let got = names(src);
        assert!(got.iter().any(|g| g == want), "{src}: want {want} in {got:?}");
    }

    #[test]
    fn decodes_like_jinja2() {
        assert_eq!(decode_python_literal(r"\x5f\x5fclass\x5f\x5f").as_deref(), Some("__class__"));
        assert_eq!(decode_python_literal(r"\u005f\U0000005f\137").as_deref(), Some("___"));
        assert_eq!(decode_python_literal(r"a\/b\q").as_deref(), Some(r"a\/b\q"));
        assert_eq!(decode_python_literal(r"\N{LOW LINE}"), None);
        assert_eq!(decode_python_literal(r"\x5"), None);
        assert_eq!(decode_python_literal("\\\u{e9}").as_deref(), Some(r"\xe9"));
        assert_eq!(decode_python_literal("a\r\nb").as_deref(), Some("a\nb"));
    }

    #[test]
    fn lists_what_a_chat_template_reaches() {
        let chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message.content|trim + '<|im_end|>\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
        assert_eq!(
            names(chatml),
            vec![
                "name:messages",
                "attribute:role",
                "attribute:content",
                "filter:trim",
                "name:add_generation_prompt"
            ]
        );
    }

    #[test]
    fn values_flow_through_the_template() {
        has("{{ x.__class__ }}", "attribute:__class__");
        has("{{ x['__cla' ~ 'ss__'] }}", "attribute:__class__");
        has("{% set a = '__cla' %}{% set b = a ~ 'ss__' %}{{ x[b] }}", "attribute:__class__");
        has("{% set a %}__cla{{ 'ss' }}__{% endset %}{{ x[a] }}", "attribute:__class__");
        has("{{ x[('_' * 2) ~ 'class' ~ '_' * 2] }}", "attribute:__class__");
        has("{{ x[['_','_','class','_','_']|join] }}", "attribute:__class__");
        has("{{ x['%c%cclass%c%c'|format(95,95,95,95)] }}", "attribute:__class__");
        has("{{ x['%c%cclass%c%c' % (95,95,95,95)] }}", "attribute:__class__");
        has("{{ x['--class--'|replace('-', '_')] }}", "attribute:__class__");
        has("{{ x['__ssalc__'[::-1]] }}", "attribute:__class__");
        has("{{ x['__CLASS__'|lower] }}", "attribute:__class__");
        has("{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}", "attribute:__class__");
        has("{{ x|attr('__class__') }}", "attribute:__class__");
        has("{{ x|attr('__class__') }}", "filter:attr");
        has("{{ messages|map('attr', '__class__')|list }}", "attribute:__class__");
        has("{{ messages|map(attribute='a.__class__')|list }}", "attribute:__class__");
        has("{{ messages|selectattr('__class__')|list }}", "attribute:__class__");
        has(
            "{% for k in ['__cla', 'ss__'] %}{% set ns.k = ns.k ~ k %}{% endfor %}{{ x[ns.k] }}",
            "computed:an attribute name built at render time",
        );
        has("{% set ns = namespace(k='__class__') %}{{ x[ns.k] }}", "attribute:__class__");
        has("{% macro m(k) %}{{ x[k] }}{% endmacro %}{{ m('__globals__') }}", "attribute:__globals__");
        has("{% macro m(k='__init__') %}{{ x[k] }}{% endmacro %}", "attribute:__init__");
        has(
            "{% macro m() %}__class__{% endmacro %}{{ x[m()] }}",
            "computed:an attribute name built at render time",
        );
        has("{{ x[(x|string)[0]] }}", "computed:an attribute name built at render time");
        has("{{ x[message.role ~ '_'] }}", "computed:an attribute name built at render time");
        // Filters that put the template's own text or Python's into data results.
        has("{{ x[messages|map('string')|first] }}", "computed:an attribute name built at render time");
        has(
            "{{ x[messages|batch(3, '__class__')|first|last] }}",
            "computed:an attribute name built at render time",
        );
        has(
            "{{ x[messages|map(attribute='a', default='__class__')|first] }}",
            "computed:an attribute name built at render time",
        );
        has(
            "{{ x[message.content|truncate(3, end='__class__')] }}",
            "computed:an attribute name built at render time",
        );
        has(
            "{% set s = '' %}{% for i in range(3) %}{% set s = s ~ '_' %}{% endfor %}{{ x[s] }}",
            "computed:an attribute name built at render time",
        );
        has("{{ lipsum.__globals__ }}", "name:lipsum");
        has("{% include 'x' %}", "statement:include");
        has("{{ x is divisibleby 3 }}", "test:divisibleby");
        has("{{ messages|select('callable')|list }}", "test:callable");
        has("{{ '{0.__class__}'.format(x) }}", "attribute:__class__");
        has("{{ '{x[__globals__]:{y.__init__}}'.format_map(d) }}", "attribute:__init__");
        has("{{ '{x[__globals__]}'.format_map(d) }}", "attribute:__globals__");
        has("{% set f = '{0._' ~ '_class__}' %}{{ f.format(x) }}", "attribute:__class__");
        has("{{ (x|string).format(x) }}", "computed:a `str.format` string built at render time");
        // A dict literal's entries flow; a data value in it stays data.
        has("{% set m = {'a': '__class__', 'b': c} %}{{ x[m.a] }}", "attribute:__class__");
        has("{% set m = {'a': '__class__'} %}{{ x[m[message.role]] }}", "attribute:__class__");
        let got = names(
            "{% macro f(s) %}{{ m[s.type] }}{% endmacro %}{% for t in spec.type %}{{ f({'type': t}) }}{% endfor %}",
        );
        assert!(!got.iter().any(|g| g.starts_with("computed")), "{got:?}");
        has("{{ x.__class__ }}", "name:x");
        // Arithmetic gives numbers, which are items, never attributes.
        let got = names(
            "{% for m in messages %}{{ messages[loop.index0 - 1] }}{% for i in range(3) %}{{ m[i + 1] }}{% endfor %}{% endfor %}",
        );
        assert!(!got.iter().any(|g| g.starts_with("computed")), "{got:?}");
        // Data keys are not names the template chose.
        let got = names("{% for k, v in tool.items() %}{{ tool[k] }}{{ message[message.role] }}{% endfor %}");
        assert_eq!(got, vec!["name:tool", "attribute:items", "name:message", "attribute:role"], "{got:?}");
    }

    #[test]
    fn offsets_point_at_the_name() {
        let src = "{{ a }}{{ x.__class__ }}";
        let a = analyse(src).unwrap_or_else(|e| panic!("{e}"));
        let r = a.reaches.iter().find(|r| r.name == "__class__").unwrap_or_else(|| panic!("{:?}", a.reaches));
        assert_eq!(&src[r.offset..r.offset + 9], "__class__");
        let src = "{{ 'é' }}{{ x|attr('a') }}";
        let a = analyse(src).unwrap_or_else(|e| panic!("{e}"));
        let r = a.reaches.iter().find(|r| r.name == "attr").unwrap_or_else(|| panic!("{:?}", a.reaches));
        assert_eq!(&src[r.offset..r.offset + 4], "attr");
    }

    #[test]
    fn hostile_input_is_bounded() {
        let _ = analyse(&format!("{{{{ x[{}] }}}}", "'_' ~ ".repeat(300) + "'a'"));
        let _ = analyse(&format!("{{{{ x['a' * {}] }}}}", i64::MAX));
        let _ = analyse("{{ x['%c' % 99999999] }}{{ x['%c'|format(-1)] }}{{ x[''[::0]] }}");
        let mut loops = String::new();
        for i in 0..40 {
            loops.push_str(&format!(
                "{{% for a{i} in ['a','b','c'] %}}{{% set s = s ~ a{i} %}}{{% endfor %}}"
            ));
        }
        let _ = analyse(&format!("{{% set s = '' %}}{loops}{{{{ x[s] }}}}"));
    }
}
