//! Feeds arbitrary text to the comment-command parser and checks what it promises about reasons,
//! and that the router's cheap pre-check never drops a comment the parser finds a command in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::commands::{Command, parse_commands};
use tollgate::github::events::{Routed, RoutingPolicy, route};

const MIN_REASON_LENGTH: usize = 10;

fuzz_target!(|data: &[u8]| {
    let body = String::from_utf8_lossy(data);
    let parsed = parse_commands(&body, MIN_REASON_LENGTH);
    for command in &parsed {
        assert!(command.line >= 1);
        if let Ok(Command::Override { reason, .. } | Command::Reject { reason }) = &command.result {
            assert!(reason.chars().count() >= MIN_REASON_LENGTH);
        }
    }
    if !parsed.is_empty() {
        let routed = route(
            "issue_comment",
            comment_payload(&body),
            RoutingPolicy {
                evaluate_drafts: false,
            },
        );
        assert!(
            matches!(routed, Ok(Routed::Command(_))),
            "the router dropped a comment holding commands: {routed:?}"
        );
    }
});

/// A new comment on a pull request, as GitHub delivers it.
fn comment_payload(body: &str) -> serde_json::Value {
    serde_json::json!({
        "action": "created",
        "issue": { "number": 1, "pull_request": {} },
        "comment": { "id": 1, "body": body, "user": { "login": "fuzz" } },
        "repository": { "id": 1, "name": "repo", "owner": { "login": "owner" } },
        "installation": { "id": 1 },
    })
}
