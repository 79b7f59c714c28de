use super::*;
use insta::assert_snapshot;
use serde_json::Value as Json;

fn pr() -> PrSummary {
    PrSummary {
        repo_full_name: "acme/widgets".into(),
        number: 42,
        title: "Rotate the deploy key".into(),
        url: "https://github.com/acme/widgets/pull/42".into(),
        author: "@octocat".into(),
    }
}

fn violation(
    rule: &str,
    name: Option<&str>,
    location: Option<&str>,
    message: &str,
) -> ViolationLine {
    ViolationLine {
        rule_id: rule.into(),
        rule_name: name.map(str::to_owned),
        location: location.map(str::to_owned),
        message: message.into(),
    }
}

fn block_violations() -> Vec<ViolationLine> {
    vec![
        violation(
            "R01",
            Some("Provider secret or token"),
            Some("deploy/ci.env:3"),
            "GitHub personal access token",
        ),
        violation(
            "R04",
            Some("Merge-conflict markers"),
            Some("src/lib.rs"),
            "conflict marker <<<<<<<",
        ),
    ]
}

fn request(state: RequestState) -> OverrideRequestView {
    OverrideRequestView {
        request_id: 17,
        pr: pr(),
        requester: "@alice".into(),
        reason: "The token is a revoked test fixture.".into(),
        violations: block_violations(),
        approvers: vec!["<@U0CAROL>".into(), "@dave".into(), "acme/security".into()],
        state,
    }
}

fn alert(state: AlertState) -> AlertView {
    AlertView {
        alert_id: 9,
        pr: pr(),
        rule_id: "R01".into(),
        rule_name: Some("Provider secret or token".into()),
        violations: vec![block_violations().remove(0)],
        state,
    }
}

/// The message as a snapshot: the fallback text, then the blocks, as pretty JSON.
fn shown(message: &SlackMessage) -> String {
    let whole = serde_json::json!({ "text": message.text, "blocks": message.blocks });
    serde_json::to_string_pretty(&whole).unwrap()
}

#[test]
fn override_pending() {
    let message = override_request_message(&request(RequestState::Pending {
        approvals: 0,
        required: 1,
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn override_approved() {
    let message = override_request_message(&request(RequestState::Approved {
        by: "<@U0BOB>".into(),
        note: Some("Fixture confirmed revoked.".into()),
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn override_approved_without_note() {
    let message = override_request_message(&request(RequestState::Approved {
        by: "@bob".into(),
        note: None,
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn override_rejected() {
    let message = override_request_message(&request(RequestState::Rejected {
        by: "<@U0BOB>".into(),
        reason: "Rotate it instead.".into(),
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn override_cancelled() {
    let message = override_request_message(&request(RequestState::Cancelled {
        by: "@alice".into(),
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn override_expired() {
    assert_snapshot!(shown(&override_request_message(&request(
        RequestState::Expired
    ))));
}

#[test]
fn alert_open() {
    assert_snapshot!(shown(&alert_message(&alert(AlertState::Open))));
}

#[test]
fn alert_acknowledged() {
    let message = alert_message(&alert(AlertState::Acknowledged {
        by: "<@U0CAROL>".into(),
    }));
    assert_snapshot!(shown(&message));
}

#[test]
fn alert_resolved() {
    assert_snapshot!(shown(&alert_message(&alert(AlertState::Resolved))));
}

#[test]
fn escalation_in_the_same_channel() {
    let message = escalation_message(
        &alert(AlertState::Open),
        Duration::from_secs(15 * 60),
        Some("<!channel>"),
    );
    assert_snapshot!(shown(&message));
}

#[test]
fn escalation_to_another_channel() {
    let message = escalation_message(&alert(AlertState::Open), Duration::from_secs(60), None);
    assert_snapshot!(shown(&message));
}

#[test]
fn an_acknowledged_escalation_reads_like_the_alert() {
    let acknowledged = alert(AlertState::Acknowledged {
        by: "@carol".into(),
    });
    assert_eq!(
        escalation_message(&acknowledged, Duration::from_secs(900), Some("<!here>")),
        alert_message(&acknowledged)
    );
}

#[test]
fn thread_note_text() {
    assert_snapshot!(shown(&thread_note(
        "Override cancelled by <@U0ALICE> & <!channel> stays quiet"
    )));
}

#[test]
fn long_lists_collapse() {
    let mut view = request(RequestState::Pending {
        approvals: 1,
        required: 2,
    });
    view.violations = (1..=14)
        .map(|i| violation("R01", None, Some(&format!("src/f{i}.rs:{i}")), "token"))
        .collect();
    let message = override_request_message(&view);
    assert_snapshot!(shown(&message));
}

#[test]
fn user_text_cannot_mark_up_link_or_mention() {
    let mut view = request(RequestState::Rejected {
        by: "<!channel>".into(),
        reason: "*bold* <https://evil.example|click> & \"quotes\" \\ \n next".into(),
    });
    view.pr.title = "<!here> </script> \u{1b}[31m".into();
    view.pr.url = "javascript:alert(1)".into();
    view.requester = "<@U1|spoof>".into();
    view.reason = view.pr.title.clone();
    view.violations = vec![violation("R01", Some("a`b"), Some("we`ird.rs"), "<@U0BOB>")];
    let message = override_request_message(&view);
    assert_snapshot!(shown(&message));
    let all = shown(&message);
    for leaked in [
        "<!channel>",
        "<!here>",
        "<@U1",
        "<@U0BOB>",
        "<https://evil",
        "\u{1b}",
    ] {
        assert!(!all.contains(leaked), "{leaked} reaches Slack unescaped");
    }
}

/// Every mrkdwn or plain text of a block, with where it is.
fn texts(blocks: &Json) -> Vec<(String, String, usize)> {
    let mut found = Vec::new();
    for block in blocks.as_array().unwrap() {
        let kind = block["type"].as_str().unwrap().to_owned();
        let mut candidates = vec![&block["text"]];
        if let Some(elements) = block["elements"].as_array() {
            candidates.extend(elements.iter());
        }
        for text in candidates {
            if let Some(s) = text["text"].as_str() {
                found.push((kind.clone(), s.to_owned(), s.chars().count()));
            }
        }
    }
    found
}

fn assert_within_limits(message: &SlackMessage) {
    let blocks = message.blocks.as_array().unwrap();
    assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    for (kind, text, chars) in texts(&message.blocks) {
        assert!(!text.is_empty(), "empty {kind} text");
        let max = if kind == "header" { 150 } else { 3000 };
        assert!(chars <= max, "{kind} text of {chars} characters");
    }
    assert!(message.text.chars().count() <= 4000);
}

#[test]
fn worst_case_input_stays_within_slack_limits() {
    let huge = "&".repeat(20_000);
    let huge_pr = PrSummary {
        repo_full_name: huge.clone(),
        number: u64::MAX,
        title: huge.clone(),
        url: "https://github.com/".to_owned() + &huge,
        author: huge.clone(),
    };
    let huge_violations: Vec<ViolationLine> = (0..500)
        .map(|_| violation(&huge, Some(&huge), Some(&huge), &huge))
        .collect();
    let states = [
        RequestState::Pending {
            approvals: u32::MAX,
            required: u32::MAX,
        },
        RequestState::Approved {
            by: huge.clone(),
            note: Some(huge.clone()),
        },
        RequestState::Rejected {
            by: huge.clone(),
            reason: huge.clone(),
        },
        RequestState::Cancelled { by: huge.clone() },
        RequestState::Expired,
    ];
    for state in states {
        assert_within_limits(&override_request_message(&OverrideRequestView {
            request_id: i64::MAX,
            pr: huge_pr.clone(),
            requester: huge.clone(),
            reason: huge.clone(),
            violations: huge_violations.clone(),
            approvers: vec![huge.clone(); 40],
            state,
        }));
    }
    for state in [
        AlertState::Open,
        AlertState::Acknowledged { by: huge.clone() },
        AlertState::Resolved,
    ] {
        let view = AlertView {
            alert_id: i64::MAX,
            pr: huge_pr.clone(),
            rule_id: huge.clone(),
            rule_name: Some(huge.clone()),
            violations: huge_violations.clone(),
            state,
        };
        assert_within_limits(&alert_message(&view));
        assert_within_limits(&escalation_message(
            &view,
            Duration::from_secs(u64::MAX),
            Some(&huge),
        ));
    }
    assert_within_limits(&thread_note(&huge));
}
