//! A line-at-a-time lexer: for each line, what its first character belongs to and the line's code
//! with comments dropped and string contents blanked. It knows comment and string delimiters,
//! raw strings, heredocs and docstrings; it does not parse, so it is fast and never fails.

use super::LineKind;
use super::lang::Lang;

/// What is open at the end of a line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum State {
    #[default]
    Code,
    /// Inside a block comment; `depth` counts nesting where the language nests them (Rust).
    Block { depth: u32 },
    /// Inside a string literal that runs over the end of the line.
    Str {
        close: String,
        escapes: bool,
        docstring: bool,
    },
    /// Inside a heredoc body, until a line that is `tag` alone.
    Heredoc { tag: String },
    /// Inside Ruby's `=begin` … `=end`.
    RubyDoc,
}

/// One lexed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    pub kind: LineKind,
    pub code: String,
    /// The contents of the string literals on the line, in order.
    pub strings: Vec<String>,
}

/// Lexes one line from `state`, leaving in `state` what is still open after it.
pub fn lex_line(lang: Lang, state: &mut State, line: &str) -> Lexed {
    match state {
        State::Heredoc { tag } => {
            let t = line.trim();
            // PHP lets code follow the closing tag: `EOT;`, `EOT)`.
            let php_close = lang == Lang::Php
                && t.strip_prefix(tag.as_str()).is_some_and(|rest| {
                    !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
                });
            if t == tag.as_str() || php_close {
                *state = State::Code;
                return whole(LineKind::String, None);
            }
            return whole(LineKind::String, Some(line));
        }
        State::RubyDoc => {
            if line.starts_with("=end") {
                *state = State::Code;
            }
            return whole(LineKind::DocComment, None);
        }
        State::Code if lang == Lang::Ruby && line.starts_with("=begin") => {
            *state = State::RubyDoc;
            return whole(LineKind::DocComment, None);
        }
        _ => {}
    }
    let mut lexer = Lexer {
        lang,
        b: line.as_bytes(),
        i: 0,
        code: Vec::with_capacity(line.len()),
        first: None,
        heredoc: None,
        strings: Vec::new(),
        string_start: matches!(state, State::Str { .. }).then_some(0),
    };
    let start_kind = state_kind(state);
    lexer.run(state);
    if let Some(start) = lexer.string_start {
        lexer
            .strings
            .push(lossy(&lexer.b[start.min(lexer.b.len())..]));
    }
    if let State::Str { close, .. } = state
        && !continues(lang, close)
    {
        // An unterminated one-line string ends with its line (a syntax error or our guess).
        *state = State::Code;
    }
    if let (State::Code, Some(tag)) = (&state, lexer.heredoc.take()) {
        *state = State::Heredoc { tag };
    }
    let code = String::from_utf8(lexer.code)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    Lexed {
        kind: lexer.first.unwrap_or(start_kind),
        code,
        strings: lexer.strings,
    }
}

fn whole(kind: LineKind, string: Option<&str>) -> Lexed {
    Lexed {
        kind,
        code: String::new(),
        strings: string.map(str::to_owned).into_iter().collect(),
    }
}

/// Cuts fall on ASCII delimiters, so slices are valid UTF-8 unless the line was not.
fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn state_kind(state: &State) -> LineKind {
    match state {
        State::Code => LineKind::Code,
        State::Block { .. } | State::RubyDoc => LineKind::DocComment,
        State::Str {
            docstring: true, ..
        } => LineKind::Docstring,
        State::Str { .. } | State::Heredoc { .. } => LineKind::String,
    }
}

/// Whether a string closed by `close` may continue on the next line.
fn continues(lang: Lang, close: &str) -> bool {
    match close {
        "\"\"\"" | "'''" => true,
        "`" => matches!(lang, Lang::JavaScript | Lang::Go),
        "\"" | "'" => lang.multiline_strings(),
        // Rust raw strings `"#`, C# verbatim strings.
        _ => true,
    }
}

struct Lexer<'a> {
    lang: Lang,
    b: &'a [u8],
    i: usize,
    code: Vec<u8>,
    first: Option<LineKind>,
    /// A heredoc opened on this line: its body starts on the next one.
    heredoc: Option<String>,
    strings: Vec<String>,
    /// Where the content of the string being read started.
    string_start: Option<usize>,
}

impl Lexer<'_> {
    fn at(&self, s: &str) -> bool {
        self.b[self.i..].starts_with(s.as_bytes())
    }

    fn mark(&mut self, kind: LineKind) {
        if self.first.is_none() {
            self.first = Some(kind);
        }
    }

    fn run(&mut self, state: &mut State) {
        while self.i < self.b.len() {
            match state {
                State::Block { depth } => {
                    if !self.b[self.i].is_ascii_whitespace() {
                        self.mark(LineKind::DocComment);
                    }
                    if self.at("*/") {
                        self.i += 2;
                        *depth -= 1;
                        if *depth == 0 {
                            *state = State::Code;
                            self.code.push(b' ');
                        }
                    } else if self.lang == Lang::Rust && self.at("/*") {
                        self.i += 2;
                        *depth += 1;
                    } else {
                        self.i += 1;
                    }
                }
                State::Str {
                    close,
                    escapes,
                    docstring,
                } => {
                    if !self.b[self.i].is_ascii_whitespace() {
                        self.mark(if *docstring {
                            LineKind::Docstring
                        } else {
                            LineKind::String
                        });
                    }
                    if *escapes && self.b[self.i] == b'\\' {
                        self.i += 2;
                    } else if self.at(close) {
                        if let Some(start) = self.string_start.take() {
                            self.strings.push(lossy(&self.b[start..self.i]));
                        }
                        self.i += close.len();
                        self.code.extend_from_slice(close.as_bytes());
                        *state = State::Code;
                    } else {
                        self.i += 1;
                    }
                }
                State::Code => {
                    if let Some(next) = self.code_step() {
                        self.string_start = matches!(next, State::Str { .. }).then_some(self.i);
                        *state = next;
                    }
                }
                // Whole-line states are handled before the lexer runs.
                State::Heredoc { .. } | State::RubyDoc => return,
            }
        }
    }

    /// One step in code; returns the state a comment or string opens.
    fn code_step(&mut self) -> Option<State> {
        let c = self.b[self.i];
        if c.is_ascii_whitespace() {
            self.code.push(c);
            self.i += 1;
            return None;
        }
        let lang = self.lang;
        if lang.slash_comments() && self.at("//") {
            let doc = (self.at("///") && !self.at("////")) || self.at("//!");
            self.mark(if doc {
                LineKind::DocComment
            } else {
                LineKind::Comment
            });
            self.i = self.b.len();
            return None;
        }
        if (lang.slash_comments() || lang == Lang::Sql) && self.at("/*") {
            self.mark(LineKind::DocComment);
            self.i += 2;
            return Some(State::Block { depth: 1 });
        }
        if c == b'#' && lang.hash_comments() && self.hash_comment() {
            self.mark(LineKind::Comment);
            self.i = self.b.len();
            return None;
        }
        if lang == Lang::Sql && self.at("--") {
            self.mark(LineKind::Comment);
            self.i = self.b.len();
            return None;
        }
        if let Some(open) = self.string_open() {
            if open.close.is_empty() {
                // A character literal, whole.
                self.mark(LineKind::Code);
                self.code
                    .extend_from_slice(&self.b[self.i..self.i + open.open_len]);
                self.i += open.open_len;
                return None;
            }
            let docstring = lang == Lang::Python && open.close.len() == 3 && self.first.is_none();
            self.mark(if docstring {
                LineKind::Docstring
            } else {
                LineKind::String
            });
            self.code
                .extend_from_slice(&self.b[self.i..self.i + open.open_len]);
            self.i += open.open_len;
            return Some(State::Str {
                close: open.close,
                escapes: open.escapes,
                docstring,
            });
        }
        self.mark(LineKind::Code);
        if c == b'<' && lang.heredocs() && self.heredoc_open() {
            return None;
        }
        if c == b'/' && lang == Lang::JavaScript && self.regex_literal() {
            return None;
        }
        self.code.push(c);
        self.i += 1;
        None
    }

    /// `#` starts a comment here (not `$#`, `${#x}`, `#[attr]`, a `#` inside a YAML word).
    fn hash_comment(&self) -> bool {
        let before = self.i.checked_sub(1).map(|j| self.b[j]);
        let at_word_start = before.is_none_or(|p| p.is_ascii_whitespace() || p == b';');
        match self.lang {
            Lang::Python | Lang::Ruby | Lang::Toml => true,
            Lang::Php => !self.at("#["),
            Lang::Shell | Lang::Yaml => at_word_start,
            Lang::Dockerfile => self.b[..self.i].iter().all(u8::is_ascii_whitespace),
            _ => false,
        }
    }

    fn string_open(&self) -> Option<Open> {
        let b = self.b;
        let i = self.i;
        let c = b[i];
        let lang = self.lang;
        let prev_ident = i > 0 && is_ident(b[i - 1]);
        match c {
            b'"' | b'\'' if lang == Lang::Dockerfile => None,
            b'"' | b'\'' if lang == Lang::Yaml => {
                let token_start = b[..i]
                    .iter()
                    .rev()
                    .find(|p| !p.is_ascii_whitespace())
                    .is_none_or(|p| matches!(p, b':' | b'-' | b'[' | b'{' | b','));
                token_start.then(|| Open::plain(c, true))
            }
            b'"' | b'\''
                if lang.triple_quotes()
                    && b[i..].starts_with(&[c, c, c])
                    && (c == b'"' || matches!(lang, Lang::Python | Lang::Toml)) =>
            {
                let close = String::from_utf8_lossy(&[c, c, c]).into_owned();
                Some(Open {
                    open_len: 3,
                    close,
                    escapes: true,
                })
            }
            b'\'' if lang.char_literals() => char_literal(&b[i..]).map(|len| Open {
                // A character literal comes whole, with no close.
                open_len: len,
                close: String::new(),
                escapes: false,
            }),
            b'\'' => Some(Open::plain(c, lang != Lang::Shell)),
            b'"' => Some(Open::plain(c, true)),
            b'`' if matches!(lang, Lang::JavaScript | Lang::Sql) => Some(Open::plain(c, true)),
            b'`' if lang == Lang::Go => Some(Open::plain(c, false)),
            b'r' | b'b' if lang == Lang::Rust && !prev_ident => raw_string(&b[i..]),
            b'@' if lang == Lang::CSharp && b.get(i + 1) == Some(&b'"') => Some(Open {
                open_len: 2,
                close: "\"".to_owned(),
                escapes: false,
            }),
            b'r' | b'R' | b'b' | b'B' | b'u' | b'U' | b'f' | b'F'
                if lang == Lang::Python && !prev_ident =>
            {
                let prefix = b[i..]
                    .iter()
                    .take(3)
                    .take_while(|p| b"rRbBuUfF".contains(p))
                    .count();
                let q = *b.get(i + prefix)?;
                if prefix > 2 || !matches!(q, b'"' | b'\'') {
                    return None;
                }
                let triple = b[i + prefix..].starts_with(&[q, q, q]);
                let len = if triple { 3 } else { 1 };
                Some(Open {
                    open_len: prefix + len,
                    close: String::from_utf8_lossy(&b[i + prefix..i + prefix + len]).into_owned(),
                    escapes: true,
                })
            }
            _ => None,
        }
    }

    /// `<<EOF`, `<<-'EOF'` (shell), `<<~SQL` (Ruby), `<<<EOT` (PHP): consumes the opener and
    /// remembers the tag.
    fn heredoc_open(&mut self) -> bool {
        let rest = &self.b[self.i..];
        let (skip, allow_lower) = match self.lang {
            Lang::Php if rest.starts_with(b"<<<") => (3, true),
            Lang::Shell if rest.starts_with(b"<<") && !rest.starts_with(b"<<<") => (2, true),
            Lang::Ruby if rest.starts_with(b"<<") => (2, false),
            _ => return false,
        };
        let mut j = skip;
        let mut dashed = false;
        if matches!(rest.get(j), Some(b'-' | b'~')) && self.lang != Lang::Php {
            j += 1;
            dashed = true;
        }
        while rest.get(j) == Some(&b' ') && self.lang != Lang::Ruby {
            j += 1;
        }
        let quote = rest.get(j).copied().filter(|q| matches!(q, b'\'' | b'"'));
        if quote.is_some() {
            j += 1;
        }
        let tag_len = rest[j..].iter().take_while(|&&x| is_ident(x)).count();
        if tag_len == 0 {
            return false;
        }
        let tag = &rest[j..j + tag_len];
        // Ruby: `<<FOO` needs an upper-case tag unless written `<<~foo`/`<<-foo` (`a << b`).
        if !allow_lower && !dashed && quote.is_none() && !tag[0].is_ascii_uppercase() {
            return false;
        }
        j += tag_len;
        if let Some(q) = quote {
            if rest.get(j) != Some(&q) {
                return false;
            }
            j += 1;
        }
        self.heredoc = Some(String::from_utf8_lossy(tag).into_owned());
        self.code.extend_from_slice(&rest[..j]);
        self.i += j;
        true
    }

    /// A JavaScript regex literal where an expression starts (`= /x/`, `(/a"b/`): skipped whole
    /// so quotes inside it open no string.
    fn regex_literal(&mut self) -> bool {
        let before = self.code.iter().rev().find(|p| !p.is_ascii_whitespace());
        let expression_start = before.is_none_or(|p| b"(,=:[!&|?{};+-*%<>~^".contains(p))
            || self.code.ends_with(b"return ");
        if !expression_start {
            return false;
        }
        let rest = &self.b[self.i + 1..];
        let (mut j, mut class) = (0, false);
        while j < rest.len() {
            match rest[j] {
                b'\\' => j += 1,
                b'[' => class = true,
                b']' => class = false,
                b'/' if !class => {
                    self.code.extend_from_slice(b"//");
                    self.i += j + 2;
                    return true;
                }
                _ => {}
            }
            j += 1;
        }
        false
    }
}

struct Open {
    open_len: usize,
    close: String,
    escapes: bool,
}

impl Open {
    fn plain(quote: u8, escapes: bool) -> Self {
        Self {
            open_len: 1,
            close: char::from(quote).to_string(),
            escapes,
        }
    }
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The length of a character literal at the start of `s` (`'a'`, `'\n'`, `'\u{1F600}'`, `'é'`),
/// or `None` for a lifetime or label (`'a`, `'static`).
fn char_literal(s: &[u8]) -> Option<usize> {
    if s.get(1) == Some(&b'\\') {
        let close = s[2..].iter().take(10).position(|&x| x == b'\'')?;
        return Some(close + 3);
    }
    let ch = std::str::from_utf8(&s[1..s.len().min(5)])
        .ok()
        .or_else(|| {
            (2..s.len().min(5))
                .rev()
                .find_map(|end| std::str::from_utf8(&s[1..end]).ok())
        })?
        .chars()
        .next()?;
    let len = ch.len_utf8();
    (s.get(1 + len) == Some(&b'\'')).then_some(len + 2)
}

/// Rust raw and byte strings: `r"…"`, `r#"…"#`, `br##"…"##`, `b"…"`.
fn raw_string(s: &[u8]) -> Option<Open> {
    let mut j = 0;
    if s.first() == Some(&b'b') {
        j += 1;
        if s.get(j) == Some(&b'"') {
            return Some(Open {
                open_len: 2,
                close: "\"".to_owned(),
                escapes: true,
            });
        }
        if s.get(j) == Some(&b'\'') {
            return char_literal(&s[j..]).map(|len| Open {
                open_len: len + 1,
                close: String::new(),
                escapes: false,
            });
        }
    }
    if s.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&x| x == b'#').count();
    if s.get(j + hashes) != Some(&b'"') {
        return None;
    }
    Some(Open {
        open_len: j + hashes + 1,
        close: format!("\"{}", "#".repeat(hashes)),
        escapes: false,
    })
}
