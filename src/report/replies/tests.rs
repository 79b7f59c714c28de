use super::*;
use crate::commands::{CommandName, parse_commands};
use crate::config::OverridesFile;
use crate::domain::{Overrides, Violation};
use crate::overrides::{overridable_rules, select_scope};
use crate::report::tests::{at, catalog, violation};
use insta::assert_snapshot;

fn current() -> Vec<Violation> {
    vec![
        at("R01", "src/config.py", 12, "AWS access key id"),
        at("R07", "src/app.py", 88, "print() call"),
        at("R07", "src/cli.py", 5, "print() call"),
        at("R12", "src/app.py", 17, "TODO without issue"),
    ]
}

fn scope_of(violations: &[Violation], rules: &[&str]) -> Scope {
    let rules: Vec<RuleId> = rules.iter().map(|r| r.parse().unwrap()).collect();
    select_scope(violations, &Overrides::default(), &rules, &catalog()).unwrap()
}

fn settings(yaml: &str) -> OverrideSettings {
    serde_yaml_ng::from_str::<OverridesFile>(yaml)
        .unwrap()
        .resolve()
        .unwrap()
}

fn reply(reply: Reply) -> String {
    let text = render_reply(&reply, &catalog());
    assert!(
        text.starts_with(&(REPLY_MARKER.to_owned() + "\n@")),
        "a reply starts with the marker, then the mention: {text}"
    );
    assert!(!text.ends_with('\n'), "no trailing line break: {text:?}");
    assert!(
        !text.contains("\n\n\n"),
        "at most one blank line at a time: {text:?}"
    );
    text
}

#[test]
fn override_recorded() {
    let violations = current();
    let scope = scope_of(&violations, &["R07"]);
    assert_snapshot!(
        "override_recorded",
        reply(Reply::OverrideRecorded {
            to: "alice",
            scope: &scope,
            reason: "The CLI prints on purpose: its output is the product",
        })
    );
    let text = reply(Reply::OverrideRecorded {
        to: "alice",
        scope: &scope_of(&violations[1..2], &[]),
        reason: "x".repeat(400).as_str(),
    });
    assert!(text.contains("without this violation:"), "{text}");
    assert!(text.contains(&("x".repeat(300) + "…”")), "{text}");
}

#[test]
fn override_pending() {
    let violations = current();
    let scope = scope_of(&violations, &[]);
    assert_snapshot!(
        "override_pending_maintainers",
        reply(Reply::OverridePending {
            to: "alice",
            scope: &scope,
            reason: "Documented fake key for the parser tests",
            settings: &OverrideSettings::default(),
            slack_notified: false,
        })
    );
    let block_only = scope_of(&violations, &["R01"]);
    assert_snapshot!(
        "override_pending_approvers",
        reply(Reply::OverridePending {
            to: "alice",
            scope: &block_only,
            reason: "Documented fake key for the parser tests",
            settings: &settings("{ approvers: [carol, '@acme/security'], required_approvals: 2 }"),
            slack_notified: true,
        })
    );
}

#[test]
fn many_violations_are_counted_not_listed() {
    let violations: Vec<Violation> = (1..=14)
        .map(|i| at("R01", "src/keys.py", i, "AWS access key id"))
        .collect();
    let text = reply(Reply::OverridePending {
        to: "alice",
        scope: &scope_of(&violations, &[]),
        reason: "Fixture keys, all revoked",
        settings: &OverrideSettings::default(),
        slack_notified: false,
    });
    assert_eq!(text.matches("\n- `src/keys.py:").count(), 10, "{text}");
    assert!(text.contains("\n- …and 4 more violations\n"), "{text}");
}

#[test]
fn denied() {
    let denials = [
        (
            "denied_no_write",
            CommandKind::Override,
            Denial::NoWriteAccess(crate::overrides::RepoPermission::Read),
        ),
        (
            "denied_lookup_failed",
            CommandKind::Approve,
            Denial::PermissionLookupFailed("GitHub answered 502 Bad Gateway".into()),
        ),
        ("denied_own_pr", CommandKind::Reject, Denial::OwnPullRequest),
        (
            "denied_not_an_approver",
            CommandKind::Approve,
            Denial::NotAnApprover(settings("{ approvers: [carol, acme/security] }").approvers),
        ),
    ];
    for (name, command, denial) in denials {
        assert_snapshot!(
            name,
            reply(Reply::Denied {
                to: "bob",
                command,
                denial: &denial,
            })
        );
    }
}

#[test]
fn scope_refused() {
    let violations = current();
    let rules: Vec<RuleId> = ["R99", "R04", "R12"]
        .iter()
        .map(|r| r.parse().unwrap())
        .collect();
    let error = select_scope(&violations, &Overrides::default(), &rules, &catalog()).unwrap_err();
    assert_snapshot!(
        "scope_refused_rules",
        reply(Reply::ScopeRefused {
            to: "alice",
            error: &error,
        })
    );
    let warnings = [violation("R19", None, None, "1,240 changed lines")];
    let error = select_scope(&warnings, &Overrides::default(), &[], &catalog()).unwrap_err();
    assert_snapshot!(
        "scope_refused_nothing",
        reply(Reply::ScopeRefused {
            to: "alice",
            error: &error,
        })
    );
}

#[test]
fn not_understood() {
    let violations = current();
    let overridable = overridable_rules(&violations, &Overrides::default(), &catalog());
    for (name, body) in [
        ("not_understood_missing_reason", "/override"),
        ("not_understood_typo", "/overide R07 prints on purpose"),
    ] {
        let parsed = parse_commands(body, 10);
        let error = parsed[0].result.clone().unwrap_err();
        assert_snapshot!(
            name,
            reply(Reply::NotUnderstood {
                to: "alice",
                error: &error,
                overridable: &overridable,
            })
        );
    }
    let error = CommandError::MissingReason {
        command: CommandName::Reject,
    };
    let text = reply(Reply::NotUnderstood {
        to: "carol",
        error: &error,
        overridable: &[],
    });
    assert!(!text.contains("Rules failing now"), "{text}");
}

#[test]
fn approvals() {
    let mut progress = RequestProgress::pending(2);
    progress.approve("carol").unwrap();
    assert_snapshot!(
        "approval_recorded_pending",
        reply(Reply::ApprovalRecorded {
            to: "carol",
            requested_by: "alice",
            progress: &progress,
        })
    );
    progress.approve("erin").unwrap();
    assert_snapshot!(
        "approval_recorded_approved",
        reply(Reply::ApprovalRecorded {
            to: "erin",
            requested_by: "alice",
            progress: &progress,
        })
    );
    let error = progress.approve("erin").unwrap_err();
    assert_snapshot!(
        "decision_refused_closed",
        reply(Reply::DecisionRefused {
            to: "frank",
            command: CommandKind::Reject,
            error: &error,
        })
    );
    let mut pending = RequestProgress::pending(2);
    pending.approve("carol").unwrap();
    let error = pending.approve("Carol").unwrap_err();
    assert_snapshot!(
        "decision_refused_already_approved",
        reply(Reply::DecisionRefused {
            to: "Carol",
            command: CommandKind::Approve,
            error: &error,
        })
    );
    assert_snapshot!(
        "nothing_pending",
        reply(Reply::NothingPending {
            to: "carol",
            command: CommandKind::Approve,
        })
    );
}

#[test]
fn rejected_and_cancelled() {
    assert_snapshot!(
        "rejected",
        reply(Reply::Rejected {
            requested_by: "alice",
            by: "carol",
            reason: "Rotate the key instead: it was live <yesterday>",
        })
    );
    assert_snapshot!(
        "cancelled_pending",
        reply(Reply::Cancelled {
            to: "alice",
            was: RequestStatus::Pending,
        })
    );
    assert_snapshot!(
        "cancelled_approved",
        reply(Reply::Cancelled {
            to: "alice",
            was: RequestStatus::Approved,
        })
    );
    assert_snapshot!(
        "nothing_to_cancel",
        reply(Reply::NothingToCancel { to: "alice" })
    );
}

#[test]
fn commands_map_to_their_kind() {
    let table = [
        ("/override R07 prints on purpose", CommandKind::Override),
        ("/override cancel", CommandKind::Cancel),
        ("/approve", CommandKind::Approve),
        ("/reject not acceptable here", CommandKind::Reject),
    ];
    for (body, kind) in table {
        let command = parse_commands(body, 10)[0].result.clone().unwrap();
        assert_eq!(CommandKind::from(&command), kind, "{body}");
    }
}
