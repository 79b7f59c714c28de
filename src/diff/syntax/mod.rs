//! Syntactic context for added lines: whether each is code, a comment, a doc or block comment, a
//! string or a docstring, its code with comments dropped and string contents blanked, and whether
//! it is test code inside a source file. Pure; unknown languages get plain code.
//!
//! Hunks are fragments: a hunk starts anywhere in a file, so each is lexed from a guessed state
//! (a fragment whose first comment delimiter is `*/` began inside a block comment) with its
//! context lines, and git's section line (`@@ … @@ mod tests {`) stands in for the block it sits
//! in. An added file is one fragment from its first line.

mod lang;
mod lexer;
#[cfg(test)]
mod tests;
mod tests_regions;

use super::{FileChange, Line};
use lang::Lang;
use lexer::{State, lex_line};
use serde::Serialize;
use tests_regions::{RegionLine, test_lines};

/// What the first character of a line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    Code,
    /// A line comment: `// …`, `# …`, `-- …`.
    Comment,
    /// A block or documentation comment: `/* … */`, `/** … */`, `///`, `//!`, `=begin`.
    DocComment,
    /// A string literal, or the inside of one that spans lines (heredocs, template literals).
    String,
    /// A Python string that stands as a statement of its own (a docstring).
    Docstring,
}

/// The syntactic context of one added line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineSyntax {
    pub kind: LineKind,
    /// The line without its comments and with the contents of its string literals removed (the
    /// quotes stay): `eval(x) // eval` → `eval(x) `, `msg("no eval()")` → `msg("")`.
    pub code: String,
    /// The contents of the line's string literals (for a line inside a multi-line string, the
    /// part on this line).
    pub strings: Vec<String>,
    /// Inside a test block of a source file (not set from the file's name).
    pub test: bool,
}

/// The context of every added line of `file`, in the order of `file.added`.
pub fn classify(file: &FileChange) -> Vec<LineSyntax> {
    let Some(lang) = Lang::of_path(file.path()) else {
        return file
            .added
            .iter()
            .map(|l| LineSyntax {
                kind: LineKind::Code,
                code: l.text.clone(),
                strings: Vec::new(),
                test: false,
            })
            .collect();
    };
    // The new side as far as the diff shows it: added and context lines by number, each added
    // line with its index in `file.added`.
    let mut shown: Vec<(&Line, Option<usize>)> = file
        .added
        .iter()
        .enumerate()
        .map(|(i, l)| (l, Some(i)))
        .chain(file.context.iter().map(|l| (l, None)))
        .collect();
    shown.sort_by_key(|(l, _)| l.number);
    let mut out = vec![None; file.added.len()];
    for fragment in fragments(&shown, file) {
        let section = file
            .hunks
            .iter()
            .find(|h| h.line == fragment[0].0.number)
            .map_or("", |h| h.section.as_str());
        let texts: Vec<&str> = fragment.iter().map(|(l, _)| l.text.as_str()).collect();
        let mut state = if fragment[0].0.number <= 1 {
            State::Code
        } else {
            initial_state(lang, &texts)
        };
        let lexed: Vec<_> = texts
            .iter()
            .map(|t| lex_line(lang, &mut state, t))
            .collect();
        let region_lines: Vec<RegionLine> = texts
            .iter()
            .zip(&lexed)
            .map(|(text, l)| RegionLine { text, kind: l.kind })
            .collect();
        let tests = test_lines(lang, section, &region_lines);
        for (((_, index), lexed), test) in fragment.iter().zip(lexed).zip(tests) {
            if let Some(i) = index {
                out[*i] = Some(LineSyntax {
                    kind: lexed.kind,
                    code: lexed.code,
                    strings: lexed.strings,
                    test,
                });
            }
        }
    }
    out.into_iter()
        .zip(&file.added)
        .map(|(syntax, line)| {
            syntax.unwrap_or_else(|| LineSyntax {
                kind: LineKind::Code,
                code: line.text.clone(),
                strings: Vec::new(),
                test: false,
            })
        })
        .collect()
}

/// Splits the shown lines into runs of consecutive numbers, also cutting where a hunk starts.
fn fragments<'a, 'b>(
    shown: &'b [(&'a Line, Option<usize>)],
    file: &FileChange,
) -> Vec<&'b [(&'a Line, Option<usize>)]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=shown.len() {
        let cut = i == shown.len() || {
            let (prev, next) = (shown[i - 1].0.number, shown[i].0.number);
            next != prev + 1 || file.hunks.iter().any(|h| h.line == next)
        };
        if cut {
            out.push(&shown[start..i]);
            start = i;
        }
    }
    out
}

/// Where lexing of a fragment starts: inside a block comment when its first comment delimiter
/// closes one (or its first line is a ` * ` continuation), inside a docstring when its first
/// triple quote closes one; otherwise in code.
fn initial_state(lang: Lang, lines: &[&str]) -> State {
    if lang.slash_comments() {
        if lines
            .iter()
            .find(|l| !l.trim().is_empty())
            .is_some_and(|l| {
                let t = l.trim_start();
                t == "*" || t.starts_with("* ") || (t.starts_with("*/"))
            })
        {
            return State::Block { depth: 1 };
        }
        for line in lines.iter().take(200) {
            match (line.find("/*"), line.find("*/")) {
                (Some(open), Some(close)) if close < open => return State::Block { depth: 1 },
                (None, Some(_)) => return State::Block { depth: 1 },
                (Some(_), _) => return State::Code,
                (None, None) => {}
            }
        }
        return State::Code;
    }
    if lang == Lang::Python {
        return python_initial_state(lines);
    }
    State::Code
}

fn python_initial_state(lines: &[&str]) -> State {
    let mut previous: Option<&str> = None;
    for line in lines.iter().take(200) {
        for quote in ["\"\"\"", "'''"] {
            let Some(at) = line.find(quote) else {
                continue;
            };
            if line.matches(quote).count() % 2 == 0 {
                return State::Code;
            }
            let before = line[..at].trim();
            let opens = if before.is_empty() {
                previous.is_some_and(|p| p.trim_end().ends_with([':', '(', '=', ',', '[']))
            } else {
                before.ends_with(['=', '(', ',', '[', ':', '+'])
                    || before.ends_with("return")
                    || before.len() <= 2 && before.chars().all(|c| "rRbBuUfF".contains(c))
            };
            return if opens {
                State::Code
            } else {
                State::Str {
                    close: quote.to_owned(),
                    escapes: true,
                    docstring: true,
                }
            };
        }
        if !line.trim().is_empty() {
            previous = Some(line);
        }
    }
    State::Code
}
