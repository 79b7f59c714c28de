//! Feeds arbitrary JSON to the webhook router as each event the app handles.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate::github::events::{Routed, RoutingPolicy, action_of, installation_of, route};

const EVENTS: [&str; 7] = [
    "pull_request",
    "issue_comment",
    "check_run",
    "check_suite",
    "installation",
    "installation_repositories",
    "ping",
];

fuzz_target!(|data: &[u8]| {
    let Ok(payload) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = action_of(&payload);
    let _ = installation_of(&payload);
    for event in EVENTS {
        for evaluate_drafts in [false, true] {
            let policy = RoutingPolicy { evaluate_drafts };
            if let Ok(Routed::Evaluate(targets)) = route(event, payload.clone(), policy) {
                assert!(
                    !targets.is_empty(),
                    "{event}: nothing to evaluate is ignored"
                );
            }
        }
    }
});
