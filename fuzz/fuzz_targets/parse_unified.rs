//! Feeds arbitrary bytes to the unified diff parser and, as a GitHub `patch`, to the hunk parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::diff::{GithubFile, from_github_files, parse_unified};

fuzz_target!(|data: &[u8]| {
    let _ = parse_unified(data);
    let file = GithubFile {
        sha: None,
        filename: "fuzz".into(),
        status: Default::default(),
        additions: 0,
        deletions: 0,
        changes: 0,
        blob_url: None,
        raw_url: None,
        contents_url: None,
        patch: Some(String::from_utf8_lossy(data).into_owned()),
        previous_filename: None,
    };
    let _ = from_github_files(&[file]);
});
