//! Feeds arbitrary bytes to the Slack interaction parser, both as the whole form body and as the
//! value of its `payload` field (so that the fuzzer reaches the JSON without first finding the
//! form encoding). A reject dialog's reason is never blank and never longer than its limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::notify::slack::{Interaction, parse_interaction};

fuzz_target!(|data: &[u8]| {
    check(data);
    let mut body = b"payload=".to_vec();
    body.extend(form_urlencoded::byte_serialize(data).flat_map(str::bytes));
    check(&body);
});

fn check(body: &[u8]) {
    match parse_interaction(body) {
        Ok(Interaction::BlockAction(action)) => {
            let _ = action.tollgate_action();
        }
        Ok(Interaction::ViewSubmission(submission)) => {
            if let Some(reason) = &submission.reason {
                assert!(!reason.trim().is_empty(), "blank reason {reason:?}");
                assert!(reason.chars().count() <= 500, "reason over 500 characters");
            }
        }
        _ => {}
    }
}
