//! Feeds arbitrary text to the comment-command parser and checks what it promises about reasons.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::commands::{Command, parse_commands};

const MIN_REASON_LENGTH: usize = 10;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    for parsed in parse_commands(&body, MIN_REASON_LENGTH) {
        assert!(parsed.line >= 1);
        if let Ok(Command::Override { reason, .. } | Command::Reject { reason }) = parsed.result {
            assert!(reason.chars().count() >= MIN_REASON_LENGTH);
        }
    }
});
