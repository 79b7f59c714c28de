//! The diff model parsers against real git output, hand-written edge cases and random input.

use proptest::prelude::*;
use tollgate::diff::{
    Diff, DiffError, FileChange, FileStatus, GithubFile, Line, from_github_files, parse_unified,
};

fn parse(input: &str) -> Diff {
    parse_unified(input.as_bytes()).expect("diff parses")
}

fn only_file(input: &str) -> FileChange {
    let mut diff = parse(input);
    assert_eq!(diff.files.len(), 1, "{diff:#?}");
    diff.files.remove(0)
}

fn fixture(name: &str) -> Diff {
    let path = format!("{}/tests/fixtures/diffs/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).expect("fixture exists");
    parse_unified(&bytes).expect("fixture parses")
}

fn file<'a>(diff: &'a Diff, path: &str) -> &'a FileChange {
    diff.files
        .iter()
        .find(|f| f.path() == path)
        .unwrap_or_else(|| panic!("no {path} in {diff:#?}"))
}

fn line(number: u32, text: &str) -> Line {
    Line {
        number,
        text: text.to_owned(),
    }
}

fn malformed_line(input: &str) -> usize {
    match parse_unified(input.as_bytes()) {
        Err(DiffError::Malformed { line, .. }) => line,
        other => panic!("expected a malformed diff, got {other:?}"),
    }
}

fn paths(file: &FileChange) -> (Option<&str>, Option<&str>) {
    (file.old_path.as_deref(), file.new_path.as_deref())
}

// --- real git output --------------------------------------------------------------------------

#[test]
fn git_diff_with_renames_copies_and_modes() {
    let diff = fixture("renames-copies-modes.diff");
    assert_eq!(diff.files.len(), 13);

    let added = file(&diff, "added.txt");
    assert_eq!(added.status, FileStatus::Added);
    assert_eq!(paths(added), (None, Some("added.txt")));
    assert_eq!(added.new_mode.as_deref(), Some("100644"));
    assert_eq!(added.added, vec![line(1, "fresh"), line(2, "file")]);

    let copied = file(&diff, "copied.rs");
    assert_eq!(copied.status, FileStatus::Copied);
    assert_eq!(paths(copied), (Some("copyme.rs"), Some("copied.rs")));
    assert_eq!(copied.added, vec![line(31, "extra")]);

    let renamed = file(&diff, "new name.txt");
    assert_eq!(renamed.status, FileStatus::Renamed);
    assert_eq!(paths(renamed), (Some("old name.txt"), Some("new name.txt")));
    assert_eq!((renamed.additions, renamed.deletions), (0, 0));

    let moved = file(&diff, "sub/moved.rs");
    assert_eq!(moved.status, FileStatus::Renamed);
    assert_eq!(paths(moved), (Some("moved.rs"), Some("sub/moved.rs")));
    assert_eq!(moved.removed, vec![line(10, "moved 10")]);
    assert_eq!(moved.added, vec![line(10, "moved ten")]);

    let gone = file(&diff, "gone.txt");
    assert_eq!(gone.status, FileStatus::Deleted);
    assert_eq!(paths(gone), (Some("gone.txt"), None));
    assert_eq!(gone.old_mode.as_deref(), Some("100644"));
    assert_eq!(gone.removed, vec![line(1, "bye")]);

    let script = file(&diff, "script.sh");
    assert_eq!(script.status, FileStatus::Modified);
    assert_eq!(script.old_mode.as_deref(), Some("100644"));
    assert_eq!(script.new_mode.as_deref(), Some("100755"));
    assert!(script.added.is_empty() && script.removed.is_empty());

    let image = file(&diff, "image.png");
    assert!(image.binary);
    assert_eq!(image.status, FileStatus::Modified);

    let special = file(&diff, "spécial name.txt");
    assert_eq!(
        paths(special),
        (Some("spécial name.txt"), Some("spécial name.txt"))
    );
    assert_eq!(special.added, vec![line(1, "hi there")]);

    let lib = file(&diff, "lib.rs");
    assert_eq!(lib.removed, vec![line(3, "line 3"), line(35, "line 35")]);
    assert_eq!(
        lib.added,
        vec![line(3, "line three"), line(35, "line thirty-five")]
    );
    assert_eq!(
        (lib.old_mode.as_deref(), lib.new_mode.as_deref()),
        (Some("100644"), Some("100644"))
    );

    assert_eq!(file(&diff, "latin1.txt").removed, vec![line(2, "plain")]);
    // Git prints the CRs of a CRLF file as they are; they read as part of the line ending.
    assert_eq!(file(&diff, "crlf.txt").added, vec![line(2, "TWO")]);
    assert!(file(&diff, "gets-nonl.txt").new_missing_final_newline);
    assert!(!file(&diff, "nonl.txt").new_missing_final_newline);
}

#[test]
fn git_log_with_commit_preambles() {
    let diff = fixture("git-log-p.diff");
    assert_eq!(diff.files.len(), 28);
    let statuses = |path: &str| -> Vec<FileStatus> {
        diff.files
            .iter()
            .filter(|f| f.path() == path)
            .map(|f| f.status)
            .collect()
    };
    assert_eq!(
        statuses("added.txt"),
        [FileStatus::Added, FileStatus::Modified]
    );
    assert_eq!(
        statuses("gone.txt"),
        [FileStatus::Added, FileStatus::Deleted]
    );
    let lib = diff.files.iter().rfind(|f| f.path() == "lib.rs");
    assert_eq!(lib.map(|f| f.additions), Some(2));
    let latin1 = diff.files.iter().find(|f| f.path() == "latin1.txt");
    assert_eq!(
        latin1.map(|f| f.added[0].text.as_str()),
        Some("caf\u{fffd}")
    );

    let picture = file(&diff, "my pic.bin");
    assert_eq!((picture.status, picture.binary), (FileStatus::Added, true));
    let mode_only = diff.files.last().expect("files");
    assert_eq!(
        paths(mode_only),
        (Some("new name.txt"), Some("new name.txt"))
    );
    assert_eq!(mode_only.new_mode.as_deref(), Some("100755"));
}

#[test]
fn format_patch_with_git_binary_patch() {
    let diff = fixture("format-patch-binary.patch");
    let names: Vec<&str> = diff.files.iter().map(FileChange::path).collect();
    assert_eq!(names, ["added.txt", "my pic.bin", "new name.txt"]);
    let picture = file(&diff, "my pic.bin");
    assert_eq!((picture.status, picture.binary), (FileStatus::Added, true));
    assert!(picture.added.is_empty());
    assert_eq!(file(&diff, "added.txt").added, vec![line(3, "third")]);
    assert_eq!(
        file(&diff, "new name.txt").old_mode.as_deref(),
        Some("100644")
    );
}

#[test]
fn crlf_output_strips_one_carriage_return() {
    let diff = fixture("crlf-output.diff");
    assert_eq!(diff.files.len(), 2);
    let crlf = file(&diff, "crlf.txt");
    assert_eq!(crlf.removed, vec![line(2, "two\r")]);
    assert_eq!(crlf.added, vec![line(2, "TWO\r")]);
    assert_eq!(file(&diff, "lib.rs").added[1], line(35, "line thirty-five"));
}

// --- hand-written cases -----------------------------------------------------------------------

#[test]
fn empty_and_blank_input_is_an_empty_diff() {
    assert_eq!(parse(""), Diff::default());
    assert_eq!(parse(" \n\r\n\t"), Diff::default());
}

#[test]
fn text_without_a_diff_is_an_error() {
    assert_eq!(
        parse_unified(b"hello world\n"),
        Err(DiffError::Malformed {
            line: 1,
            message: "no diff found".into()
        })
    );
}

#[test]
fn rename_with_quoted_names() {
    let file = only_file(concat!(
        "diff --git \"a/d\\303\\251j\\303\\240\" \"b/tab\\there \\\"q\\\"\"\n",
        "similarity index 100%\n",
        "rename from \"d\\303\\251j\\303\\240\"\n",
        "rename to \"tab\\there \\\"q\\\"\"\n",
    ));
    assert_eq!(file.status, FileStatus::Renamed);
    assert_eq!(paths(&file), (Some("déjà"), Some("tab\there \"q\"")));
}

#[test]
fn binary_without_markers_keeps_spaced_name() {
    let file = only_file(concat!(
        "diff --git a/a b/c.png b/a b/c.png\n",
        "index 1111111..2222222 100644\n",
        "Binary files a/a b/c.png and b/a b/c.png differ\n",
    ));
    assert_eq!(paths(&file), (Some("a b/c.png"), Some("a b/c.png")));
    assert!(file.binary);
}

#[test]
fn no_prefix_diff_keeps_names() {
    let file = only_file(concat!(
        "diff --git src/x.rs src/x.rs\n",
        "--- src/x.rs\n",
        "+++ src/x.rs\n",
        "@@ -1 +1 @@\n",
        "-a\n",
        "+b\n",
    ));
    assert_eq!(paths(&file), (Some("src/x.rs"), Some("src/x.rs")));
}

#[test]
fn missing_newline_on_old_side_only() {
    let file = only_file(concat!(
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n",
        "-old\n\\ No newline at end of file\n+new\n",
    ));
    assert!(!file.new_missing_final_newline);
    let both = only_file(concat!(
        "diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n",
        "-old\n\\ No newline at end of file\n+new\n last\n\\ No newline at end of file\n",
    ));
    assert!(both.new_missing_final_newline);
}

#[test]
fn multiple_hunks_number_lines_and_empty_context() {
    let file = only_file(concat!(
        "--- a/m.txt\n+++ b/m.txt\n",
        "@@ -2,3 +2,4 @@ fn f()\n",
        " two\n+two and a half\n\n four\n",
        "@@ -10,3 +11,2 @@\n",
        " ten\n-eleven\n twelve\n",
    ));
    assert_eq!(file.status, FileStatus::Modified);
    assert_eq!(file.added, vec![line(3, "two and a half")]);
    assert_eq!(file.removed, vec![line(11, "eleven")]);
    assert_eq!((file.additions, file.deletions), (1, 1));
}

#[test]
fn plain_diff_u_with_timestamps() {
    let diff = parse(concat!(
        "Only in old: stale\n",
        "diff -u old/conf.ini new/conf.ini\n",
        "--- old/conf.ini\t2024-05-01 10:00:00.000000000 +0200\n",
        "+++ new/conf.ini\t2024-05-02 11:00:00.000000000 +0200\n",
        "@@ -1,2 +1,2 @@\n",
        " [core]\n-debug = true\n+debug = false\n",
        "--- /dev/null\t1970-01-01 00:00:00.000000000 +0000\n",
        "+++ new/fresh\t2024-05-02 11:00:00.000000000 +0200\n",
        "@@ -0,0 +1 @@\n+hello\n",
    ));
    assert_eq!(
        paths(&diff.files[0]),
        (Some("old/conf.ini"), Some("new/conf.ini"))
    );
    assert_eq!(diff.files[0].added, vec![line(2, "debug = false")]);
    assert_eq!(diff.files[1].status, FileStatus::Added);
    assert_eq!(paths(&diff.files[1]), (None, Some("new/fresh")));
}

#[test]
fn combined_merge_diffs_are_skipped() {
    let diff = parse(concat!(
        "diff --cc both.txt\nindex 1,2..3\n--- a/both.txt\n+++ b/both.txt\n",
        "@@@ -1,1 -1,1 +1,1 @@@\n- one\n -two\n++three\n",
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
    ));
    assert_eq!(diff.files.len(), 1);
    assert_eq!(diff.files[0].path(), "x");
}

#[test]
fn non_utf8_content_is_replaced() {
    let file = parse_unified(b"--- a/f\n+++ b/f\n@@ -0,0 +1 @@\n+caf\xe9\xff\n").expect("parses");
    assert_eq!(file.files[0].added, vec![line(1, "caf\u{fffd}\u{fffd}")]);
}

// --- malformed input --------------------------------------------------------------------------

const HEAD: &str = "diff --git a/f b/f\n--- a/f\n+++ b/f\n";

#[test]
fn truncated_hunk_reports_the_missing_line() {
    assert_eq!(
        malformed_line(&format!("{HEAD}@@ -1,3 +1,3 @@\n a\n-b\n+c\n")),
        8
    );
    assert_eq!(
        malformed_line(&format!("{HEAD}@@ -1,2 +1,2 @@\n a\ndiff --git a/g b/g\n")),
        6
    );
}

#[test]
fn bad_hunk_header_reports_its_line() {
    let err = parse_unified(format!("{HEAD}@@ -a +b @@\n").as_bytes());
    let Err(DiffError::Malformed { line, message }) = err else {
        panic!("expected an error, got {err:?}");
    };
    assert_eq!(line, 4);
    assert!(message.contains("hunk header"), "{message}");
}

#[test]
fn stray_line_in_hunk_reports_its_line() {
    let err = parse_unified(format!("{HEAD}@@ -1,3 +1,3 @@\n a\n*b\n c\n").as_bytes());
    let Err(DiffError::Malformed { line, message }) = err else {
        panic!("expected an error, got {err:?}");
    };
    assert_eq!(line, 6);
    assert!(message.contains("' ', '+', '-'"), "{message}");
}

#[test]
fn lines_beyond_a_side_count_are_errors() {
    assert_eq!(
        malformed_line(&format!("{HEAD}@@ -1 +1,2 @@\n-a\n-b\n+c\n")),
        6
    );
}

#[test]
fn marker_without_plus_line_is_an_error() {
    assert_eq!(
        malformed_line("diff --git a/f b/f\n--- a/f\n@@ -1 +1 @@\n"),
        3
    );
}

#[test]
fn header_without_names_is_an_error() {
    assert_eq!(
        malformed_line("diff --git a/one two b/three four\nold mode 1\nnew mode 2\n"),
        1
    );
}

// --- GitHub files JSON ------------------------------------------------------------------------

const GITHUB_FILES: &str = r#"[
  {
    "sha": "bbcd538c8e72b8c175046e27cc8f907076331401",
    "filename": "src/lib.rs",
    "status": "modified",
    "additions": 2,
    "deletions": 1,
    "changes": 3,
    "blob_url": "https://github.com/o/r/blob/abc/src/lib.rs",
    "patch": "@@ -1,3 +1,4 @@\n use std::io;\n-fn old() {}\n+fn new() {}\n+fn more() {}\n \n@@ -20 +21 @@ impl X\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file",
    "some_future_field": {"nested": true}
  },
  {
    "sha": "1111111111111111111111111111111111111111",
    "filename": "assets/logo.png",
    "status": "added",
    "additions": 0,
    "deletions": 0,
    "changes": 0
  },
  {
    "sha": "2222222222222222222222222222222222222222",
    "filename": "docs/new-name.md",
    "previous_filename": "docs/old-name.md",
    "status": "renamed",
    "additions": 0,
    "deletions": 0,
    "changes": 0
  },
  {
    "sha": null,
    "filename": "huge.json",
    "status": "modified",
    "additions": 50000,
    "deletions": 2,
    "changes": 50002
  },
  {"filename": "run.sh", "status": "changed", "additions": 0, "deletions": 0, "changes": 0},
  {"filename": "old.txt", "status": "removed", "additions": 1, "deletions": 1, "changes": 1,
   "patch": "@@ -1 +0,0 @@\n-bye"},
  {"filename": "x", "status": "something-new", "patch": ""}
]"#;

fn github_diff() -> Diff {
    let files: Vec<GithubFile> = serde_json::from_str(GITHUB_FILES).expect("JSON parses");
    from_github_files(&files).expect("files convert")
}

#[test]
fn github_patch_is_parsed_with_line_numbers() {
    let diff = github_diff();
    let lib = &diff.files[0];
    assert_eq!(lib.status, FileStatus::Modified);
    assert!(lib.patch_available && !lib.binary);
    assert_eq!(
        lib.added,
        vec![
            line(2, "fn new() {}"),
            line(3, "fn more() {}"),
            line(21, "b")
        ]
    );
    assert_eq!(lib.removed, vec![line(2, "fn old() {}"), line(20, "a")]);
    assert_eq!((lib.additions, lib.deletions), (3, 2));
    assert!(lib.new_missing_final_newline);
}

#[test]
fn github_missing_patch_keeps_counts_and_guesses_binary() {
    let diff = github_diff();
    let logo = &diff.files[1];
    assert_eq!(
        (logo.status, logo.binary, logo.patch_available),
        (FileStatus::Added, true, false)
    );
    assert_eq!(paths(logo), (None, Some("assets/logo.png")));

    let renamed = &diff.files[2];
    assert_eq!(
        (renamed.status, renamed.binary),
        (FileStatus::Renamed, false)
    );
    assert_eq!(
        paths(renamed),
        (Some("docs/old-name.md"), Some("docs/new-name.md"))
    );

    let huge = &diff.files[3];
    assert_eq!(
        (huge.additions, huge.deletions, huge.binary),
        (50000, 2, false)
    );
    assert!(!huge.patch_available && huge.added.is_empty());

    let mode = &diff.files[4];
    assert_eq!((mode.status, mode.binary), (FileStatus::Modified, false));

    let removed = &diff.files[5];
    assert_eq!(removed.status, FileStatus::Deleted);
    assert_eq!(paths(removed), (Some("old.txt"), None));
    assert_eq!(removed.removed, vec![line(1, "bye")]);

    assert_eq!(diff.files[6].status, FileStatus::Modified);
}

#[test]
fn github_malformed_patch_names_the_file() {
    let files: Vec<GithubFile> = serde_json::from_str(
        r#"[{"filename": "a.rs", "status": "modified", "patch": "@@ -1 +1 @@\n-a\n+b\ntrailing"}]"#,
    )
    .expect("JSON parses");
    assert_eq!(
        from_github_files(&files),
        Err(DiffError::MalformedPatch {
            path: "a.rs".into(),
            line: 4,
            message: "expected a hunk header like `@@ -1,2 +1,3 @@`".into(),
        })
    );
}

// --- properties -------------------------------------------------------------------------------

/// Lines built from the prefixes the parser reacts to, so random input reaches deep states.
fn diffish_line() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(vec![
        "diff --git a/f b/f",
        "diff --git \"a/\\303",
        "diff --cc f",
        "--- a/f",
        "+++ b/f",
        "--- /dev/null",
        "+++ /dev/null",
        "@@ -1,2 +1,2 @@",
        "@@ -0,0 +1 @@",
        "@@ -4294967295 +1 @@",
        "new file mode 100644",
        "deleted file mode 100644",
        "rename from x",
        "copy to \"y\\t\"",
        "old mode 100644",
        "index 1..2 100644",
        "GIT binary patch",
        "literal 3",
        "Binary files a/f and b/f differ",
        "\\ No newline at end of file",
        " ",
        "+",
        "-",
        "",
        "\r",
    ]);
    (prefix, "[ -~]{0,6}").prop_map(|(p, s)| format!("{p}{s}"))
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Context,
    Add,
    Remove,
}

fn hunk_strategy() -> impl Strategy<Value = (u32, Vec<(Op, String)>)> {
    let op = prop_oneof![Just(Op::Context), Just(Op::Add), Just(Op::Remove)];
    (0u32..50, prop::collection::vec((op, "[ -~]{0,12}"), 1..30))
}

/// Renders hunks as one file diff and returns the lines it must parse to.
fn render(hunks: &[(u32, Vec<(Op, String)>)]) -> (String, Vec<Line>, Vec<Line>) {
    let mut text = String::from("diff --git a/f.txt b/f.txt\n--- a/f.txt\n+++ b/f.txt\n");
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    let (mut old, mut new) = (1u32, 1u32);
    for (gap, body) in hunks {
        old += gap;
        new += gap;
        let count = |keep: fn(Op) -> bool| body.iter().filter(|(op, _)| keep(*op)).count();
        let old_count = count(|op| !matches!(op, Op::Add));
        let new_count = count(|op| !matches!(op, Op::Remove));
        text += &format!("@@ -{old},{old_count} +{new},{new_count} @@\n");
        for (op, line_text) in body {
            let marker = match op {
                Op::Context => ' ',
                Op::Add => '+',
                Op::Remove => '-',
            };
            text += &format!("{marker}{line_text}\n");
            match op {
                Op::Context => {}
                Op::Add => added.push(line(new, line_text)),
                Op::Remove => removed.push(line(old, line_text)),
            }
            old += u32::from(!matches!(op, Op::Add));
            new += u32::from(!matches!(op, Op::Remove));
        }
    }
    (text, added, removed)
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_unified(&bytes);
    }

    #[test]
    fn diff_shaped_lines_never_panic(lines in prop::collection::vec(diffish_line(), 0..40)) {
        let _ = parse_unified(lines.join("\n").as_bytes());
        let patch = GithubFile {
            sha: None,
            filename: "f".into(),
            status: Default::default(),
            additions: 0,
            deletions: 0,
            changes: 0,
            blob_url: None,
            raw_url: None,
            contents_url: None,
            patch: Some(lines.join("\n")),
            previous_filename: None,
        };
        let _ = from_github_files(&[patch]);
    }

    #[test]
    fn rendered_hunks_round_trip(hunks in prop::collection::vec(hunk_strategy(), 1..4)) {
        let (text, added, removed) = render(&hunks);
        let file = only_file(&text);
        prop_assert_eq!(file.additions as usize, added.len());
        prop_assert_eq!(file.deletions as usize, removed.len());
        prop_assert_eq!(file.added, added);
        prop_assert_eq!(file.removed, removed);
    }
}
