//! Table tests: realistic snippets per language, each line's expected kind, masked code and test
//! flag.

use super::*;
use crate::diff::{FileStatus, HunkStart};

/// A whole new file.
fn new_file(path: &str, text: &str) -> FileChange {
    let mut file = FileChange::new(FileStatus::Added, None, Some(path.to_owned()));
    file.added = lines(1, text);
    file.hunks = vec![HunkStart {
        line: 1,
        section: String::new(),
    }];
    file
}

fn lines(first: u32, text: &str) -> Vec<Line> {
    text.lines()
        .zip(first..)
        .map(|(t, number)| Line {
            number,
            text: t.to_owned(),
        })
        .collect()
}

/// One letter per line: c code, l line comment, d doc/block comment, s string, y docstring;
/// upper case when the line is test code.
fn shape(file: &FileChange) -> String {
    classify(file)
        .iter()
        .map(|s| {
            let c = match s.kind {
                LineKind::Code => 'c',
                LineKind::Comment => 'l',
                LineKind::DocComment => 'd',
                LineKind::String => 's',
                LineKind::Docstring => 'y',
            };
            if s.test { c.to_ascii_uppercase() } else { c }
        })
        .collect()
}

fn codes(path: &str, text: &str) -> Vec<String> {
    classify(&new_file(path, text))
        .into_iter()
        .map(|s| s.code)
        .collect()
}

#[test]
fn kinds_per_language() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "src/db.rs",
            "/// Connects.\n///\n/// ```\n/// let opts = Opts { password: \"@super_secret_1\" };\n/// ```\npub fn connect() {}\n//! inner doc\n// plain\n/* block\n   still */ let x = 1;\nlet s = r#\"a \" quote\n  more\"#;\nlet c = '\"'; let l: &'static str = \"x\";",
            "ddddd cdld dc s c",
        ),
        (
            "lib/rules.js",
            "const msg = \"Disallow the use of `eval()`\";\n/**\n * Docs with eval()\n */\nconst re = /[\"']/g; const t = `multi\nline ${x}`;\n// done",
            "cdddcsl",
        ),
        (
            "net/config.py",
            "\"\"\"Module docs.\n\nExample: gateway='124.42.0.254'\n\"\"\"\nQUERY = \"\"\"\nSELECT 1\n\"\"\"\nx = 1  # comment\n# only comment\ndef f():\n    r'''raw doc'''\n    return f\"{x}\"",
            "yyyycssclcyc",
        ),
        (
            "cmd/doc.go",
            "/*\nPackage cmd prints things.\n\n\tfmt.Println(\"hi\")\n*/\npackage cmd\n\nvar raw = `line one\nline two`\nvar r = '\"'",
            "dddddcccsc",
        ),
        (
            "install.sh",
            "#!/bin/sh\n# usage: --no-check-certificate\necho \"$#\" # count\ncat <<'EOF'\nwget --no-check-certificate $url\nEOF\nx=${#arr}",
            "llccssc",
        ),
        (
            "lib/a.rb",
            "=begin\nsession.exec(cmd)\n=end\nsql = <<~SQL\n  SELECT 1\nSQL\nputs 'x' # note\nitems << item",
            "dddcsscc",
        ),
        (
            "src/A.php",
            "<?php\n# hash comment\n#[Attribute]\n$s = <<<EOT\nverify false\nEOT;\n/** doc */",
            "clccssd",
        ),
        (
            ".github/workflows/ci.yml",
            "# comment\nrun: |\n  curl -k https://x # trailing\nkey: \"a # not comment\"\nurl: http://x/#frag",
            "lcccc",
        ),
        (
            "Cargo.toml",
            "# comment\n[dependencies.openssl]\ndesc = \"\"\"\nmulti\n\"\"\"",
            "lccss",
        ),
        (
            "Dockerfile",
            "# syntax\nRUN echo '#not' # still code\nFROM x",
            "lcc",
        ),
        (
            "db/1.sql",
            "-- DROP TABLE users;\n/* DROP\nTABLE */ SELECT 1;",
            "ldd",
        ),
    ];
    for (path, text, want) in cases {
        let got = shape(&new_file(path, text));
        let want: String = want.chars().filter(|c| *c != ' ').collect();
        assert_eq!(got, want, "{path}");
    }
}

#[test]
fn code_drops_comments_and_string_contents() {
    assert_eq!(
        codes("a.js", "ctx.report(\"Disallow `eval()`\"); // eval(x)"),
        ["ctx.report(\"\"); "]
    );
    assert_eq!(
        codes("a.py", "run(f\"exec({x})\", shell=True)  # noqa"),
        ["run(f\"\", shell=True)  "]
    );
    assert_eq!(
        codes("a.rs", "let a = b'x'; let s = r#\"q\"#;"),
        ["let a = b'x'; let s = r#\"\"#;"]
    );
    assert_eq!(codes("a.go", "x := '\\'' // c"), ["x := '\\'' "]);
    assert_eq!(codes("x.unknown", "eval(x) // eval"), ["eval(x) // eval"]);
    assert_eq!(
        codes("a.js", "s = 'é' + /é\"/.source"),
        ["s = '' + //.source"]
    );
}

#[test]
fn strings_are_collected() {
    let got: Vec<Vec<String>> = classify(&new_file(
        "a.py",
        "x = ('10.1.2.3', \"b\")  # 10.9.9.9
Q = '''
host 10.0.0.7
'''",
    ))
    .into_iter()
    .map(|s| s.strings)
    .collect();
    let want: Vec<Vec<&str>> = vec![
        vec!["10.1.2.3", "b"],
        vec![""],
        vec!["host 10.0.0.7"],
        vec![""],
    ];
    assert_eq!(got, want);
}

#[test]
fn unknown_languages_are_plain_code() {
    assert_eq!(shape(&new_file("notes.txt", "# heading\n// x")), "cc");
}

#[test]
fn test_blocks_inside_source_files() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "src/lib.rs",
            "pub fn add(a: u8) -> u8 { a }\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n\n    #[test]\n    fn adds() {\n        dbg!(add(1));\n    }\n}\nfn after() {}",
            "ccCCCCCCCCCc",
        ),
        (
            "src/x.rs",
            "#[tokio::test]\n#[ignore]\nasync fn slow() {\n    x();\n}\nfn prod() {}",
            "CCCCCc",
        ),
        (
            "pkg/x.go",
            "func Parse() {}\nfunc TestParse(t *testing.T) {\n\tt.Log(1)\n}\nfunc more() {}",
            "cCCCc",
        ),
        (
            "src/sum.ts",
            "export const sum = (a, b) => a + b;\nif (import.meta.vitest) {\n  describe('sum', () => {\n    it('adds', () => {\n      expect(sum(1, 2)).toBe(3);\n    });\n  });\n}",
            "ccCCCCCc",
        ),
        (
            "pkg/util.py",
            "def helper():\n    pass\n\nclass TestHelper(unittest.TestCase):\n    def test_it(self):\n        \"\"\"Doc.\n        more\"\"\"\n        self.assertTrue(True)\nx = 1",
            "cccCCYYCc",
        ),
        (
            "lib/x.rb",
            "class Foo\nend\nclass FooTest < Minitest::Test\n  def test_a\n    assert true\n  end\nend\nputs 1",
            "ccCCCCCc",
        ),
        (
            "src/Calc.java",
            "class Calc {\n  @Test\n  void adds() {\n    assertEquals(2, add(1, 1));\n  }\n  int add(int a, int b) { return a + b; }\n}",
            "cCCCCcc",
        ),
    ];
    for (path, text, want) in cases {
        assert_eq!(shape(&new_file(path, text)), *want, "{path}");
    }
}

#[test]
fn hunks_are_fragments_read_with_their_context() {
    // A hunk inside a doc comment, deep in a file: context lines show the comment's end.
    let mut file = FileChange::new(
        FileStatus::Modified,
        Some("src/auth.rs".into()),
        Some("src/auth.rs".into()),
    );
    file.added = lines(
        41,
        "/// let pw = \"hunter2hunter2\";\n/// password: \"@super_secret_1\",",
    );
    file.context = lines(40, "/// ```")
        .into_iter()
        .chain(lines(43, "/// ```\npub fn login() {}"))
        .collect();
    file.hunks = vec![HunkStart {
        line: 40,
        section: "impl Client {".into(),
    }];
    assert_eq!(shape(&file), "dd");

    // Inside a `/** … */` block whose opener is out of view.
    let mut file = FileChange::new(
        FileStatus::Modified,
        Some("lib/a.js".into()),
        Some("lib/a.js".into()),
    );
    file.context = lines(10, " * Example:");
    file.added = lines(11, " *   eval(code)\n */\nfunction run() {}");
    assert_eq!(shape(&file), "ddc");

    // A hunk whose section line is `mod tests {`: its indented lines are test code.
    let mut file = FileChange::new(
        FileStatus::Modified,
        Some("src/lib.rs".into()),
        Some("src/lib.rs".into()),
    );
    file.context = lines(200, "    #[test]");
    file.added = lines(201, "    fn roundtrip() {\n        dbg!(1);\n    }");
    file.hunks = vec![HunkStart {
        line: 200,
        section: "mod tests {".into(),
    }];
    assert_eq!(shape(&file), "CCC");

    // A hunk that starts inside a Python docstring and closes it.
    let mut file = FileChange::new(
        FileStatus::Modified,
        Some("net/dhcp.py".into()),
        Some("net/dhcp.py".into()),
    );
    file.added = lines(
        30,
        "    >>> lease(gateway='124.42.0.254')\n    \"\"\"\n    return x",
    );
    assert_eq!(shape(&file), "yyc");
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "'",
        "\"",
        "r#\"",
        "b'",
        "/*",
        "*/",
        "<<",
        "<<<",
        "<<~",
        "`",
        "'\\",
        "'é",
        "\"\"\"",
        "#[cfg(",
        "é'\u{1F600}'",
        "/[/",
        "@\"",
        "\\",
    ] {
        for path in [
            "a.rs",
            "a.js",
            "a.py",
            "a.go",
            "a.rb",
            "a.php",
            "a.sh",
            "a.yml",
            "a.toml",
            "Dockerfile",
            "a.sql",
            "A.java",
            "a.cs",
        ] {
            let file = new_file(path, &format!("{text}\n{text}{text}\n x {text}"));
            assert_eq!(classify(&file).len(), 3, "{path} {text:?}");
        }
    }
}
