//! Jinja chat templates: sandbox-escape patterns and validity.
//!
//! Runtimes render a model's chat template (GGUF `tokenizer.chat_template`, the `chat_template`
//! of `tokenizer_config.json`, `chat_template.jinja`) with Jinja. Rendered without a sandbox
//! (llama-cpp-python before 0.2.72, CVE-2024-34359) a template runs Python; even sandboxed,
//! Jinja's escape history is long. Real chat templates only loop over messages, compare roles,
//! concatenate strings and call a handful of filters, so the patterns of server-side template
//! injection are absent from all of them and are reported here:
//!
//! * attribute access to names starting with `_` (`.__class__`, `.__mro__`, `._module`) and any
//!   identifier or string naming a dunder (`__globals__`, `['__builtins__']`, `dict(__x__=1)`);
//! * the `|attr(...)` filter, `'%c'|format(...)`, and `|string|list` (ways to reach attributes
//!   or characters without writing them);
//! * strings that spell a dunder only once joined (`'__cla' ~ 'ss__'`, `'_'*2`, `['_','_']|join`)
//!   and escapes that spell ordinary characters (`'\x5f'`, `'\u005f'`, `'\137'`);
//! * names of the usual gadgets: `os`, `subprocess`, `popen`, `system(…)`, `eval`, `exec`,
//!   `getattr`, `.mro()`, the `lipsum`/`cycler`/`joiner` globals, Flask's `request`/`config`;
//! * `{% import %}`, `{% include %}`, `{% extends %}`, `{% from %}` (template loading).
//!
//! The scan is our own small lexer over the `{{ … }}` and `{% … %}` regions, so it works on
//! templates that do not parse. Whether the template parses is decided by minijinja's real
//! parser (compile only, never rendered), after removing the `{% generation %}` tags that
//! transformers adds to Jinja.

use crate::inventory::{Node, Note, NoteKind};

const MAX_COMPILE: usize = crate::limits::Limits::JINJA_COMPILE;
const MAX_REGION_TOKENS: usize = crate::limits::Limits::JINJA_REGION_TOKENS;
const MAX_KEPT_TOKENS: usize = crate::limits::Limits::JINJA_KEPT_TOKENS;
const COMPILE_STACK: usize = crate::limits::Limits::JINJA_COMPILE_STACK;
const MAX_ISSUES: usize = crate::limits::Limits::JINJA_ISSUES;
const MAX_EVIDENCE: usize = crate::limits::Limits::JINJA_EVIDENCE;

/// Variables that are sandbox-escape gadgets whatever is done with them.
const DENIED_NAMES: &[&str] = &[
    "os",
    "subprocess",
    "sys",
    "builtins",
    "importlib",
    "import_module",
    "eval",
    "exec",
    "compile",
    "popen",
    "getattr",
    "setattr",
    "delattr",
    "globals",
    "locals",
    "vars",
    "lipsum",
    "cycler",
    "joiner",
    "url_for",
    "get_flashed_messages",
];

/// Variables that are gadgets when something is taken from them (Flask's template globals).
const DENIED_OBJECTS: &[&str] = &["request", "config", "namespace", "self", "range", "dict"];

/// Attribute names (after a `.`) that reach code. `system` is only a finding when called
/// (`x.system(…)`): a template may well have a field called `system`.
const DENIED_ATTRIBUTES: &[&str] = &[
    "mro",
    "popen",
    "spawn",
    "spawnv",
    "execv",
    "execve",
    "eval",
    "exec",
    "import_module",
    "load_module",
    "subclasses",
    "func_globals",
    "f_globals",
    "f_back",
    "f_builtins",
    "f_locals",
    "gi_frame",
    "gi_code",
    "tb_frame",
    "co_code",
    "check_output",
    "getoutput",
    "os",
    "subprocess",
    "builtins",
    "globals",
];

/// Subscript strings that reach code (`x['popen']`). `system` is left out: `roles['system']` is
/// ordinary in chat templates.
const DENIED_SUBSCRIPTS: &[&str] = &[
    "popen",
    "os",
    "subprocess",
    "eval",
    "exec",
    "import_module",
    "builtins",
    "globals",
    "mro",
    "getattr",
    "check_output",
];

/// One suspicious expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// Why it is suspicious.
    pub(crate) why: String,
    /// The expression (the whole `{{ … }}` / `{% … %}` region, cut).
    pub(crate) evidence: String,
    /// Byte offset, in the template, of the last byte of the offending token (the template
    /// is known to carry the pattern from there on, even when it is cut).
    pub(crate) offset: usize,
}

/// What the analysis found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    pub(crate) issues: Vec<Issue>,
    /// The parser's complaint, when the template is not valid Jinja.
    pub(crate) parse_error: Option<String>,
    /// Set when part of the template was not inspected (a region over [`MAX_KEPT_TOKENS`]).
    pub(crate) limit: Option<String>,
    /// What the whole-template analysis found the template reaches (`crate::template`), when
    /// the template parses; `issues` are then not reported.
    pub(crate) reaches: Option<crate::template::Analysis>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// A string literal: decoded value, and whether an escape spelled a plain character.
    Str(String, bool),
    Num,
    Punct(char),
}

/// A `{{ … }}` or `{% … %}` region.
struct Region {
    start: usize,
    end: usize,
    statement: bool,
    toks: Vec<Tok>,
    /// End offset (exclusive) of each token.
    ends: Vec<usize>,
    /// Tokens in the region, including those beyond [`MAX_KEPT_TOKENS`] that were not kept.
    count: usize,
}

/// True when `text` has Jinja expression or statement delimiters.
pub(crate) fn has_jinja(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// True when `text` reads like a chat template: Jinja, and the names every chat template uses.
pub(crate) fn looks_like_chat_template(text: &str) -> bool {
    has_jinja(text)
        && ["messages", "add_generation_prompt", "bos_token", "eos_token"].iter().any(|m| text.contains(m))
}

/// Analyses a template.
///
/// Regions are checked one at a time as they are lexed, so memory does not grow with the number
/// of regions; what the compiler needs of them is kept in a [`Shape`].
pub(crate) fn analyse(src: &str) -> Report {
    let mut report = Report::default();
    let mut shape = Shape::default();
    let compiled = src.len() <= MAX_COMPILE;
    let lex_error = lex(src, &mut |r| {
        if report.issues.len() < MAX_ISSUES
            && let Some((why, tok)) = check_region(&r)
        {
            report.issues.push(Issue {
                why,
                evidence: excerpt(src.get(r.start..r.end.min(src.len())).unwrap_or_default()),
                offset: r.ends.get(tok).map_or(r.start, |e| e.saturating_sub(1)),
            });
        }
        if r.count > MAX_KEPT_TOKENS && report.limit.is_none() {
            report.limit = Some(format!(
                "an expression of {} tokens at byte {}: only its first {MAX_KEPT_TOKENS} tokens were inspected",
                r.count, r.start
            ));
        }
        if r.count > MAX_REGION_TOKENS && shape.too_long.is_none() {
            shape.too_long = Some((r.count, r.start));
        }
        if compiled
            && r.statement
            && let [Tok::Ident(name)] = r.toks.as_slice()
            && (name == "generation" || name == "endgeneration")
        {
            shape.generation.push((r.start, r.end));
        }
    });
    match lex_error {
        Some(e) => report.parse_error = Some(e),
        None if compiled => match compile(src, &shape) {
            Ok(analysis) => report.reaches = Some(analysis),
            Err(e) => report.parse_error = Some(e),
        },
        None => {}
    }
    report
}

/// What the compiler needs to know of a template's regions.
#[derive(Default)]
struct Shape {
    /// Spans of `{% generation %}` and `{% endgeneration %}` tags.
    generation: Vec<(usize, usize)>,
    /// The first region over [`MAX_REGION_TOKENS`]: its token count and start.
    too_long: Option<(usize, usize)>,
}

/// Adds notes for the template `src` found as `what`. `locate` maps a byte offset in the
/// template to an offset in the node's bytes, where that is known. A parse failure is only noted
/// when `strict` (the content is known to be a template).
pub(crate) fn note_template(
    node: &mut Node,
    src: &str,
    what: &str,
    locate: &dyn Fn(usize) -> Option<u64>,
    strict: bool,
) {
    let report = analyse(src);
    if let Some(analysis) = &report.reaches {
        // The template parses: what it reaches is listed for the policy to judge.
        for r in &analysis.reaches {
            let mut note = Note::new(
                NoteKind::TemplateName,
                format!(
                    "{what} reaches the {} `{}` ({} at byte {} of the template)",
                    r.kind.as_str(),
                    r.name,
                    r.how,
                    r.offset
                ),
            )
            .evidence(format!("{}:{}", r.kind.as_str(), r.name));
            if let Some(at) = locate(r.offset) {
                note = note.at(at);
            }
            node.note(note);
        }
        if let Some(limit) = &analysis.limit {
            let mut note = Note::new(
                NoteKind::LimitExceeded,
                format!("{what}: {limit}; the template was not fully checked"),
            );
            if let Some(at) = locate(0) {
                note = note.at(at);
            }
            node.note(note);
        }
    }
    // The template does not parse (or was not parsed): the region scan is what there is.
    let parsed = report.reaches.is_some();
    for issue in report.issues.into_iter().filter(|_| !parsed) {
        let mut note = Note::new(
            NoteKind::TemplateInjection,
            format!(
                "{what}: {} (ending at byte {} of the template); rendering it without a sandbox runs code (CVE-2024-34359)",
                issue.why, issue.offset
            ),
        )
        .evidence(issue.evidence);
        if let Some(at) = locate(issue.offset) {
            note = note.at(at);
        }
        node.note(note);
    }
    if let Some(limit) = report.limit {
        let mut note = Note::new(
            NoteKind::LimitExceeded,
            format!("{what}: {limit}; the rest of it was not checked for sandbox escapes"),
        );
        if let Some(at) = locate(0) {
            note = note.at(at);
        }
        node.note(note);
    }
    if strict && let Some(e) = report.parse_error {
        let mut note =
            Note::new(NoteKind::TemplateInvalid, format!("{what} is not a valid Jinja template: {e}"))
                .evidence(excerpt(src));
        if let Some(at) = locate(0) {
            note = note.at(at);
        }
        node.note(note);
    }
}

fn excerpt(text: &str) -> String {
    let one_line: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_EVIDENCE).collect();
    if text.chars().count() > MAX_EVIDENCE { format!("{one_line}…") } else { one_line }
}

/// Parses the template with minijinja's parser (no rendering) and analyses its syntax tree
/// (`crate::template`); returns the parser's error, if any.
fn compile(src: &str, shape: &Shape) -> Result<crate::template::Analysis, String> {
    // transformers' AssistantTracker extension adds `{% generation %}…{% endgeneration %}`.
    // Blanked with spaces, so offsets in the cleaned text are offsets in the template.
    let mut cleaned = src.as_bytes().to_vec();
    for &(from, to) in &shape.generation {
        let to = to.min(cleaned.len());
        if let Some(span) = cleaned.get_mut(from..to) {
            span.fill(b' ');
        }
    }
    let cleaned =
        String::from_utf8(cleaned).map_err(|_| "not UTF-8 after removing generation tags".to_string())?;
    // minijinja bounds the parser's recursion, but a long postfix or operator chain
    // (`a.a.a…`, `x|f|f…`, `a+a+a…`) parses iteratively into a deep tree that the analysis
    // then walks recursively. Expressions that long are not templates anyone writes.
    if let Some((count, start)) = shape.too_long {
        return Err(format!(
            "an expression of {count} tokens at byte {start} (more than {MAX_REGION_TOKENS}); not parsed"
        ));
    }
    // Nesting within the limits still recurses; give the parser and the analysis a stack of
    // their own, whatever thread the scan runs on.
    let outcome = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("modelgate-jinja".into())
            .stack_size(COMPILE_STACK)
            .spawn_scoped(scope, || crate::template::analyse(&cleaned))
            .map(|h| h.join())
    });
    match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the Jinja parser failed on this template".to_string()),
        Err(e) => Err(format!("the Jinja parser could not be started: {e}")),
    }
}

fn is_dunder(s: &str) -> bool {
    // `__` followed by a letter: `__class__`, `__import__`, or the start of one.
    s.as_bytes().windows(3).any(|w| w[0] == b'_' && w[1] == b'_' && w[2].is_ascii_alphabetic())
}

fn full_dunder(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'_' && b[i + 1] == b'_' {
            let rest = &b[i + 2..];
            let word = rest.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            if word > 0 && rest.get(word..word + 2) == Some(b"__") {
                return true;
            }
        }
        i += 1;
    }
    false
}

fn check_region(r: &Region) -> Option<(String, usize)> {
    let t = &r.toks;
    if r.statement
        && let Some(Tok::Ident(first)) = t.first()
        && matches!(first.as_str(), "import" | "include" | "extends" | "from")
    {
        return Some((format!("a `{{% {first} %}}` statement loads another template"), 0));
    }
    let punct = |i: usize, c: char| matches!(t.get(i), Some(Tok::Punct(p)) if *p == c);
    let has_percent_c = t.iter().any(|x| matches!(x, Tok::Str(v, _) if v.contains("%c")));
    let has_join = t.iter().any(|x| matches!(x, Tok::Ident(n) if n == "join"));
    let mut strings = String::new();
    for (i, tok) in t.iter().enumerate() {
        let after_dot = i > 0 && punct(i - 1, '.');
        let after_pipe = i > 0 && punct(i - 1, '|');
        match tok {
            Tok::Ident(name) if name == "system" && punct(i + 1, '(') => {
                return Some(("a call to `system(…)`".into(), i));
            }
            Tok::Ident(name) if after_dot => {
                if name.starts_with('_') {
                    return Some((format!("access to the private attribute `.{name}`"), i));
                }
                if DENIED_ATTRIBUTES.contains(&name.as_str()) {
                    return Some((format!("access to the attribute `.{name}`"), i));
                }
            }
            Tok::Ident(name) if after_pipe => {
                if name == "attr" {
                    return Some(("the `|attr` filter reaches attributes by name".into(), i));
                }
                if name == "format" && has_percent_c {
                    return Some(("`|format` with `%c` builds characters from numbers".into(), i));
                }
                if name == "list"
                    && i >= 3
                    && matches!(t.get(i - 2), Some(Tok::Ident(n)) if n == "string")
                    && punct(i - 3, '|')
                {
                    return Some(("`|string|list` picks characters out of an object's text".into(), i));
                }
            }
            Tok::Ident(name) => {
                if name.starts_with("__") {
                    return Some((format!("the dunder name `{name}`"), i));
                }
                if DENIED_NAMES.contains(&name.as_str()) {
                    return Some((format!("the name `{name}`"), i));
                }
                if DENIED_OBJECTS.contains(&name.as_str()) && (punct(i + 1, '.') || punct(i + 1, '[')) {
                    let next = match t.get(i + 2) {
                        Some(Tok::Ident(n)) => n.clone(),
                        Some(Tok::Str(v, _)) => v.clone(),
                        _ => String::new(),
                    };
                    // `namespace(…)`, `range(…)`, `dict(…)` are ordinary; taking an attribute
                    // of the function object itself is not.
                    if matches!(name.as_str(), "request" | "config" | "self") || next.starts_with('_') {
                        return Some((format!("access to `{name}.{next}`"), i));
                    }
                }
            }
            Tok::Str(value, escaped) => {
                if *escaped {
                    return Some((
                        format!("a string literal that spells plain characters with escapes ({value:?})"),
                        i,
                    ));
                }
                if value.contains("%c") && punct(i + 1, '%') {
                    return Some(("`%` formatting with `%c` builds characters from numbers".into(), i));
                }
                if is_dunder(value) {
                    return Some((format!("the dunder string {value:?}"), i));
                }
                if !value.is_empty() && value.chars().all(|c| c == '_') {
                    let near = |j: Option<usize>| {
                        j.and_then(|j| t.get(j)).is_some_and(|x| matches!(x, Tok::Punct('*' | '~' | '+')))
                    };
                    if near(i.checked_sub(1)) || near(Some(i + 1)) || has_join {
                        return Some((format!("underscores built from the string {value:?}"), i));
                    }
                }
                if i > 0
                    && (punct(i - 1, '[') || punct(i - 1, '('))
                    && DENIED_SUBSCRIPTS.contains(&value.as_str())
                {
                    return Some((format!("the item or attribute {value:?}"), i));
                }
                strings.push_str(value);
            }
            _ => {}
        }
    }
    if full_dunder(&strings) {
        let first = t.iter().position(|x| matches!(x, Tok::Str(..))).unwrap_or(0);
        return Some((
            format!("string pieces that join into a dunder name ({:?})", excerpt(&strings)),
            first,
        ));
    }
    None
}

/// Splits the template into regions, tokenises them and hands each to `each`. An unterminated
/// region (a cut or broken template) is kept up to the end of the text, and its error returned.
fn lex(src: &str, each: &mut dyn FnMut(Region)) -> Option<String> {
    let b = src.as_bytes();
    let mut i = 0usize;
    while i + 1 < b.len() {
        if b[i] != b'{' || !matches!(b[i + 1], b'{' | b'%' | b'#') {
            i += 1;
            continue;
        }
        let start = i;
        let kind = b[i + 1];
        if kind == b'#' {
            match find(b, i + 2, b"#}") {
                Some(e) => i = e + 2,
                None => return Some(format!("unterminated comment at byte {start}")),
            }
            continue;
        }
        let statement = kind == b'%';
        let lexed = tokens(src, i + 2, statement);
        let raw = statement && matches!(lexed.toks.first(), Some(Tok::Ident(n)) if n == "raw");
        let (end, terminated) = (lexed.end, lexed.terminated);
        each(Region { start, end, statement, toks: lexed.toks, ends: lexed.ends, count: lexed.count });
        if !terminated {
            let what = if statement { "statement" } else { "expression" };
            return Some(format!("unterminated {what} at byte {start}"));
        }
        i = end;
        if raw {
            // Text up to `{% endraw %}` is literal.
            let mut j = end;
            loop {
                let Some(open) = find(b, j, b"{%") else {
                    return Some(format!("unterminated raw block at byte {start}"));
                };
                let inner = tokens(src, open + 2, true);
                if !inner.terminated {
                    return Some(format!("unterminated raw block at byte {start}"));
                }
                if matches!(inner.toks.first(), Some(Tok::Ident(n)) if n == "endraw") {
                    i = inner.end;
                    break;
                }
                j = open + 2;
            }
        }
    }
    None
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| p + from)
}

/// The tokens of one region.
struct Lexed {
    toks: Vec<Tok>,
    ends: Vec<usize>,
    /// Tokens seen; only the first [`MAX_KEPT_TOKENS`] are in `toks`.
    count: usize,
    /// Offset just past the closing delimiter (the end of the text when unterminated).
    end: usize,
    terminated: bool,
}

/// Tokenises from `from` to the end of the region.
fn tokens(src: &str, from: usize, statement: bool) -> Lexed {
    let b = src.as_bytes();
    let mut l = Lexed { toks: Vec::new(), ends: Vec::new(), count: 0, end: b.len(), terminated: false };
    let mut i = from;
    let mut braces = 0usize;
    while i < b.len() {
        let c = b[i];
        let at = i;
        let tok = match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'}' if !statement && braces == 0 && b.get(i + 1) == Some(&b'}') => {
                (l.end, l.terminated) = (i + 2, true);
                break;
            }
            b'%' if statement && b.get(i + 1) == Some(&b'}') => {
                (l.end, l.terminated) = (i + 2, true);
                break;
            }
            b'\'' | b'"' => {
                let (value, escaped, next) = string(src, i);
                i = next;
                Tok::Str(value, escaped)
            }
            b'0'..=b'9' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    i += 1;
                }
                Tok::Num
            }
            c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => {
                while i < b.len() && (b[i] == b'_' || b[i].is_ascii_alphanumeric() || b[i] >= 0x80) {
                    i += 1;
                }
                Tok::Ident(src.get(at..i).unwrap_or_default().to_string())
            }
            _ => {
                if c == b'{' {
                    braces += 1;
                } else if c == b'}' {
                    braces = braces.saturating_sub(1);
                }
                i += 1;
                Tok::Punct(char::from(c))
            }
        };
        l.count += 1;
        if l.toks.len() < MAX_KEPT_TOKENS {
            l.toks.push(tok);
            l.ends.push(i);
        }
    }
    // Whitespace-control markers (`{%-`, `-%}`, `{{+`) at the ends.
    if matches!(l.toks.first(), Some(Tok::Punct('-' | '+'))) {
        l.toks.remove(0);
        l.ends.remove(0);
        l.count -= 1;
    }
    if l.terminated && l.toks.len() == l.count && matches!(l.toks.last(), Some(Tok::Punct('-' | '+'))) {
        l.toks.pop();
        l.ends.pop();
        l.count -= 1;
    }
    l
}

/// Decodes a string literal starting at `at` (Python's escapes). Returns its value, whether an
/// escape spelled a plain ASCII letter, digit, `_` or `.`, and the offset after it.
fn string(src: &str, at: usize) -> (String, bool, usize) {
    let quote = src.as_bytes()[at];
    let rest = src.get(at + 1..).unwrap_or_default();
    let mut chars = rest.char_indices();
    let mut out = String::new();
    let mut escaped_plain = false;
    while let Some((i, c)) = chars.next() {
        if c == char::from(quote) {
            return (out, escaped_plain, at + 1 + i + 1);
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some((_, e)) = chars.next() else {
            break;
        };
        let decoded = match e {
            'n' => Some('\n'),
            't' => Some('\t'),
            'r' => Some('\r'),
            '\\' | '\'' | '"' => Some(e),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = chars.by_ref().take(n).map(|(_, c)| c).collect();
                u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32)
            }
            '0'..='7' => {
                let mut v = e.to_digit(8).unwrap_or(0);
                let mut probe = chars.clone();
                for _ in 0..2 {
                    match probe.next() {
                        Some((_, d)) if d.is_digit(8) => {
                            v = v * 8 + d.to_digit(8).unwrap_or(0);
                            chars.next();
                        }
                        _ => break,
                    }
                }
                char::from_u32(v)
            }
            other => {
                out.push('\\');
                Some(other)
            }
        };
        if let Some(d) = decoded {
            if matches!(e, 'x' | 'u' | 'U' | '0'..='7') && (d.is_ascii_alphanumeric() || d == '_' || d == '.')
            {
                escaped_plain = true;
            }
            out.push(d);
        }
    }
    // Unterminated: what was read, up to the end of the text.
    (out, escaped_plain, src.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SSTI: &str = "{% for c in ().__class__.__base__.__subclasses__() %}{% if c.__name__=='catch_warnings' %}{{ c()._module.__builtins__['__import__']('os').system('id') }}{% endif %}{% endfor %}";

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    fn whys(src: &str) -> Vec<String> {
        analyse(src).issues.into_iter().map(|i| i.why).collect()
    }

    #[test]
    fn ordinary_templates_are_clean_and_parse() {
        let r = analyse(CHATML);
        assert!(r.issues.is_empty(), "{:?}", r.issues);
        assert_eq!(r.parse_error, None);
        let ns = "{%- set ns = namespace(found=false) -%}{%- for m in messages -%}{%- if m['role'] == 'system' -%}{%- set ns.found = true -%}{%- endif -%}{%- endfor -%}{% generation %}{{ bos_token }}{% endgeneration %}{% raw %}{{ __class__ }}{% endraw %}";
        let r = analyse(ns);
        assert!(r.issues.is_empty(), "{:?}", r.issues);
        assert_eq!(r.parse_error, None);
        assert!(looks_like_chat_template(CHATML));
        assert!(!looks_like_chat_template("# a README with {{ braces }}"));
    }

    #[test]
    fn sandbox_escapes_are_found() {
        let r = analyse(SSTI);
        assert!(!r.issues.is_empty());
        assert!(r.issues[0].why.contains("__class__"), "{:?}", r.issues);
        assert!(r.issues[0].evidence.contains("().__class__"));
        for (src, want) in [
            ("{{ ''|attr('x') }}", "|attr"),
            ("{{ x['\\x5f\\x5fclass\\x5f\\x5f'] }}", "escapes"),
            ("{{ x['\\u005f'] }}", "escapes"),
            ("{{ x['\\137'] }}", "escapes"),
            ("{{ x[('_'*2) ~ 'class' ~ ('_'*2)] }}", "underscores"),
            ("{{ x['_' ~ '_cla' ~ 'ss_' ~ '_'] }}", "underscores"),
            ("{{ x['_c' ~ 'lass'] }}{{ 1 }}", ""),
            ("{{ x[['_','_','class','_','_']|join] }}", "underscores"),
            ("{{ x['cla' ~ 'ss'] ~ y['a_' ~ '_glo' ~ 'bals__'] }}", "dunder"),
            ("{{ lipsum.__globals__ }}", "lipsum"),
            ("{{ cycler.__init__.__globals__.os.popen('id').read() }}", "cycler"),
            ("{{ request.application }}", "request"),
            ("{{ config.items() }}", "config"),
            ("{{ namespace.__init__ }}", "__init__"),
            ("{{ x.mro() }}", ".mro"),
            ("{{ y['popen']('id') }}", "popen"),
            ("{{ os.system('id') }}", "`os`"),
            ("{{ '%c%c'|format(95,95) }}", "%c"),
            ("{{ '%c%c' % (95, 95) }}", "%c"),
            ("{{ step.run }}{{ '%d%%' % 5 }}{{ roles.system }}", ""),
            ("{{ x.system ('id') }}", "system("),
            ("{{ (x|string|list)[18] }}", "|string|list"),
            ("{% import 'os' as os %}", "import"),
            ("{{ dict(__class__=1) }}", "dunder"),
        ] {
            let got = whys(src);
            if want.is_empty() {
                assert!(got.is_empty(), "{src}: {got:?}");
            } else {
                assert!(got.iter().any(|w| w.contains(want)), "{src}: {got:?}");
            }
        }
    }

    #[test]
    fn invalid_templates_are_reported() {
        assert!(analyse("{% for x in messages %}{{ x }}").parse_error.is_some());
        assert!(analyse("{{ x ").parse_error.is_some());
        assert!(analyse("{% if %}{% endif %}").parse_error.is_some());
        // Patterns are found before the error.
        let r = analyse("{{ x.__class__ }}{% for %}");
        assert_eq!(r.issues.len(), 1);
        assert!(r.parse_error.is_some());
    }

    #[test]
    fn hostile_input_never_panics() {
        for src in [
            "{{'\\",
            "{{'\\x",
            "{{ '\\u12",
            "{%",
            "{#",
            "{{ \u{e9}\u{301}x }}",
            "{% raw %}",
            "{{{{{{{{",
            "{{ '\\777' }}",
        ] {
            let _ = analyse(src);
        }
        let deep = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        let _ = analyse(&deep);
        for chain in ["a.", "x|f", "a+", "not ", "a[0]", "f()"] {
            let long = format!("{{{{ {}b }}}}{{{{ messages }}}}", chain.repeat(100_000));
            assert!(analyse(&long).parse_error.is_some(), "{chain}");
            // Just under the token limit: compiled on the big stack.
            let n = MAX_REGION_TOKENS / 4;
            let _ = analyse(&format!("{{{{ {}b }}}}", chain.repeat(n)));
        }
        for (open, close) in [
            ("{% if x %}", "{% endif %}"),
            ("{% for x in y %}", "{% endfor %}"),
            ("{% macro m() %}", "{% endmacro %}"),
        ] {
            let nested = format!("{}{}", open.repeat(20_000), close.repeat(20_000));
            let _ = analyse(&nested);
        }
    }
}
