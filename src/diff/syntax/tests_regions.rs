//! Test code inside source files: Rust `#[cfg(test)] mod tests` and `#[test]` functions, Go
//! `func TestX`, JS/TS `describe`/`it`/`test` blocks, Python `test_*` functions and `Test*`
//! classes, Ruby specs and test classes, PHP test classes and methods, `@Test` methods.
//!
//! A block is followed by indentation, not braces: a hunk is a fragment whose brace depth is
//! unknown, while indentation is visible on every line. The block an opener starts holds the lines
//! indented deeper than the opener, and the closing line (`}`, `end`, `})`) at its own level.

use super::LineKind;
use super::lang::Lang;

/// One line as the region finder sees it.
pub struct RegionLine<'a> {
    pub text: &'a str,
    pub kind: LineKind,
}

/// Whether each line is test code. `section` is git's enclosing-block line for the fragment
/// (empty when unknown): an opener there puts the fragment's indented lines in a test block.
pub fn test_lines(lang: Lang, section: &str, lines: &[RegionLine<'_>]) -> Vec<bool> {
    let mut finder = Finder {
        lang,
        block: None,
        pending_item: None,
    };
    if !section.trim().is_empty() {
        finder.step(section);
    }
    lines
        .iter()
        .map(|line| match line.kind {
            // Continuation lines of strings and docstrings say nothing about structure.
            LineKind::String | LineKind::Docstring if !starts_code(line) => finder.inside(),
            _ if line.text.trim().is_empty() => finder.inside(),
            _ => finder.step(line.text),
        })
        .collect()
}

fn starts_code(line: &RegionLine<'_>) -> bool {
    line.kind == LineKind::String && !line.text.trim_start().starts_with(['"', '\'', '`'])
}

struct Finder {
    lang: Lang,
    /// The indentation of the opener of the test block we are in.
    block: Option<usize>,
    /// Test attributes or decorators seen at this indentation: the next item there is a test.
    pending_item: Option<usize>,
}

impl Finder {
    fn inside(&self) -> bool {
        self.block.is_some() || self.pending_item.is_some()
    }

    /// Takes a non-blank line; says whether it is test code.
    fn step(&mut self, text: &str) -> bool {
        let indent = indentation(text);
        let trimmed = text.trim();
        if let Some(level) = self.block {
            if indent > level {
                return true;
            }
            self.block = None;
            if indent == level && closes(trimmed) {
                return true;
            }
        }
        if let Some(level) = self.pending_item {
            if is_attribute(self.lang, trimmed) {
                return true;
            }
            self.pending_item = None;
            if indent == level {
                self.block = Some(level);
                return true;
            }
        }
        if test_attribute(self.lang, trimmed) {
            self.pending_item = Some(indent);
            return true;
        }
        if opens_test(self.lang, trimmed) {
            self.block = Some(indent);
            return true;
        }
        false
    }
}

fn indentation(text: &str) -> usize {
    text.bytes()
        .take_while(|b| *b == b' ' || *b == b'\t')
        .map(|b| if b == b'\t' { 4 } else { 1 })
        .sum()
}

fn closes(trimmed: &str) -> bool {
    trimmed.starts_with(['}', ')', ']']) || trimmed == "end" || trimmed.starts_with("end ")
}

/// An attribute, annotation or decorator line that precedes an item.
fn is_attribute(lang: Lang, trimmed: &str) -> bool {
    match lang {
        Lang::Rust => trimmed.starts_with("#["),
        Lang::Php => {
            trimmed.starts_with("#[") || trimmed.starts_with("/**") || trimmed.starts_with('*')
        }
        Lang::CSharp => trimmed.starts_with('['),
        Lang::Python | Lang::Java => trimmed.starts_with('@'),
        _ => false,
    }
}

/// An attribute that makes the next item test code.
fn test_attribute(lang: Lang, trimmed: &str) -> bool {
    match lang {
        Lang::Rust => rust_test_attribute(trimmed),
        Lang::Java => {
            let name = annotation_name(trimmed.strip_prefix('@').unwrap_or_default());
            trimmed.starts_with('@')
                && (name.ends_with("Test")
                    || matches!(
                        name,
                        "Before"
                            | "After"
                            | "BeforeEach"
                            | "AfterEach"
                            | "BeforeAll"
                            | "AfterAll"
                            | "BeforeClass"
                            | "AfterClass"
                            | "TestFactory"
                    ))
        }
        Lang::CSharp => {
            let name = annotation_name(trimmed.strip_prefix('[').unwrap_or_default());
            trimmed.starts_with('[')
                && matches!(
                    name,
                    "Test"
                        | "TestCase"
                        | "Fact"
                        | "Theory"
                        | "TestMethod"
                        | "DataTestMethod"
                        | "SetUp"
                        | "TearDown"
                        | "TestFixture"
                        | "TestClass"
                )
        }
        Lang::Php => trimmed == "#[Test]" || trimmed.contains("@test"),
        Lang::Python => {
            trimmed.starts_with("@pytest.")
                || trimmed.starts_with("@mock.")
                || trimmed.starts_with("@patch")
                || trimmed.starts_with("@unittest.")
        }
        _ => false,
    }
}

fn annotation_name(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(s.len());
    s[..end].rsplit('.').next().unwrap_or_default()
}

/// `#[test]`, `#[tokio::test]`, `#[sqlx::test(…)]`, `#[rstest]`, `#[bench]`, `#[cfg(test)]`.
fn rust_test_attribute(trimmed: &str) -> bool {
    let Some(inner) = trimmed.strip_prefix("#[") else {
        return false;
    };
    let end = inner.find(['(', ']']).unwrap_or(inner.len());
    let path = inner[..end].trim();
    if path == "cfg" {
        let args = &inner[end..];
        return args.starts_with("(test)")
            || ((args.starts_with("(all(") || args.starts_with("(any("))
                && has_word(args, "test")
                && !args.contains("not(test"));
    }
    path == "test"
        || path.ends_with("::test")
        || matches!(
            path,
            "rstest" | "test_case" | "bench" | "quickcheck" | "test_log::test"
        )
}

fn has_word(s: &str, word: &str) -> bool {
    s.match_indices(word).any(|(i, _)| {
        let before = s[..i].chars().next_back();
        let after = s[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// A line that opens a test block by itself.
fn opens_test(lang: Lang, t: &str) -> bool {
    match lang {
        Lang::Rust => {
            let item = t.strip_prefix("pub ").unwrap_or(t);
            item.starts_with("mod tests") && item[9..].trim_start().starts_with(['{', ';'])
                || item.starts_with("mod test ")
                || item.starts_with("mod test{")
                || t.starts_with("proptest!")
        }
        Lang::Go => ["func Test", "func Benchmark", "func Fuzz", "func Example"]
            .iter()
            .any(|p| t.starts_with(p)),
        Lang::JavaScript => js_test_call(t),
        Lang::Python => {
            let def = t.strip_prefix("async ").unwrap_or(t);
            def.starts_with("def test")
                || t.starts_with("class Test")
                || (t.starts_with("class ") && (t.contains("TestCase)") || t.contains("TestCase,")))
        }
        Lang::Ruby => {
            let t = t.strip_prefix("RSpec.").unwrap_or(t);
            [
                "describe ",
                "context ",
                "it ",
                "it(",
                "specify ",
                "shared_examples",
                "test \"",
                "test '",
                "def test_",
            ]
            .iter()
            .any(|p| t.starts_with(p))
                || (t.starts_with("class ")
                    && (t.contains("< Minitest::Test")
                        || t.contains("TestCase")
                        || t.contains("Test::Unit")))
        }
        Lang::Php => {
            t.starts_with("public function test")
                || t.starts_with("function test")
                || (t.starts_with("class ") || t.starts_with("final class "))
                    && (t.contains("extends TestCase") || t.contains("Test extends"))
        }
        Lang::Java | Lang::CSharp => {
            let t = t
                .trim_start_matches("public ")
                .trim_start_matches("internal ")
                .trim_start_matches("final ");
            t.starts_with("class ")
                && t[6..]
                    .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                    .next()
                    .is_some_and(|name| name.ends_with("Test") || name.ends_with("Tests"))
        }
        Lang::Shell => t.starts_with("@test "),
        _ => false,
    }
}

fn js_test_call(t: &str) -> bool {
    const CALLS: &[&str] = &[
        "describe",
        "it",
        "test",
        "context",
        "suite",
        "specify",
        "beforeEach",
        "afterEach",
        "beforeAll",
        "afterAll",
        "before",
        "after",
        "xit",
        "fit",
        "xdescribe",
        "fdescribe",
        "Deno.test",
    ];
    CALLS.iter().any(|call| {
        t.strip_prefix(call).is_some_and(|rest| {
            rest.starts_with('(') || rest.starts_with('.') && !rest.starts_with("..")
        })
    })
}
