use super::*;
use crate::config::{Approver, OverrideSettings, TeamRef};
use crate::domain::{ApprovedOverride, Fingerprint, Overrides, RuleId, Tier, Violation};
use crate::policy::Catalog;

use Access::{Known, LookupFailed};
use RepoPermission::{Admin, Maintain, None as NoAccess, Read, Triage, Write};

fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    catalog
        .add_yaml(
            "test",
            r#"
- { id: R01, name: Provider secret, tier: BLOCK, category: c, description: d, remediation: r, override_when: o }
- { id: R04, name: Conflict markers, tier: BLOCK, category: c, description: d, remediation: r, override_when: o }
- { id: R07, name: Debug output, tier: OVERRIDE, category: c, description: d, remediation: r, override_when: o }
- { id: R12, name: TODO without issue, tier: WARNING, category: c, description: d, remediation: r, override_when: o }
- { id: R19, name: PR too large, tier: WARNING, category: c, description: d, remediation: r, override_when: o }
"#,
            false,
        )
        .unwrap();
    catalog
}

fn rule(id: &str) -> RuleId {
    id.parse().unwrap()
}

fn violation(id: &str, tier: Tier, text: &str) -> Violation {
    let rule_id = rule(id);
    Violation {
        fingerprint: Fingerprint::of(&rule_id, Some("src/a.rs"), text),
        rule_id,
        tier,
        path: Some("src/a.rs".into()),
        line: Some(1),
        message: text.into(),
    }
}

/// R01 ×2 (BLOCK), R07 ×2 (OVERRIDE), R12 (WARNING); R04 and R19 are not failing.
fn current() -> Vec<Violation> {
    vec![
        violation("R07", Tier::Override, "print(a)"),
        violation("R01", Tier::Block, "AKIA1"),
        violation("R12", Tier::Warning, "TODO"),
        violation("R01", Tier::Block, "AKIA2"),
        violation("R07", Tier::Override, "print(b)"),
    ]
}

fn approved(violations: &[&Violation]) -> Overrides {
    Overrides::new(vec![ApprovedOverride {
        fingerprints: violations.iter().map(|v| v.fingerprint.clone()).collect(),
        requested_by: "alice".into(),
        approved_by: vec!["bob".into()],
        reason: "accepted".into(),
    }])
}

fn scope(rules: &[&str], overrides: &Overrides) -> Result<Scope, ScopeError> {
    let rules: Vec<RuleId> = rules.iter().map(|r| rule(r)).collect();
    select_scope(&current(), overrides, &rules, &catalog())
}

fn messages(scope: &Scope) -> Vec<&str> {
    scope
        .violations()
        .iter()
        .map(|v| v.message.as_str())
        .collect()
}

#[test]
fn permission_comes_from_role_name_then_permission() {
    let table = [
        ("admin", "admin", Admin),
        ("write", "maintain", Maintain),
        ("write", "write", Write),
        ("read", "triage", Triage),
        ("read", "read", Read),
        ("none", "none", NoAccess),
        ("write", "Security Reviewer", Write),
        ("read", "auditor", Read),
        ("admin", "custom-admin-ish", Admin),
        ("none", "", NoAccess),
        ("WRITE", "", Write),
        ("owner", "", NoAccess),
        ("", "", NoAccess),
    ];
    for (permission, role_name, expected) in table {
        assert_eq!(
            RepoPermission::from_api(permission, role_name),
            expected,
            "({permission:?}, {role_name:?})"
        );
    }
}

#[test]
fn only_writers_may_ask_and_failed_lookups_deny() {
    let requester = |is_bot, access| Requester {
        login: "alice".into(),
        is_bot,
        access,
    };
    let table = [
        (false, Known(Admin), Ok(())),
        (false, Known(Maintain), Ok(())),
        (false, Known(Write), Ok(())),
        (false, Known(Triage), Err(Denial::NoWriteAccess(Triage))),
        (false, Known(Read), Err(Denial::NoWriteAccess(Read))),
        (false, Known(NoAccess), Err(Denial::NoWriteAccess(NoAccess))),
        (
            false,
            LookupFailed("HTTP 502".into()),
            Err(Denial::PermissionLookupFailed("HTTP 502".into())),
        ),
        (true, Known(Admin), Err(Denial::Bot)),
        (true, LookupFailed("x".into()), Err(Denial::Bot)),
    ];
    for (is_bot, access, expected) in table {
        let requester = requester(is_bot, access);
        assert_eq!(may_request(&requester), expected, "{requester:?}");
    }
}

#[test]
fn scope_covers_open_block_and_override_violations() {
    let all = scope(&[], &Overrides::default()).unwrap();
    assert_eq!(messages(&all), ["AKIA1", "AKIA2", "print(a)", "print(b)"]);
    assert_eq!(all.rules(), [rule("R01"), rule("R07")]);
    assert!(all.needs_approval());
    assert_eq!(all.fingerprints().len(), 4);

    let r07 = scope(&["R07"], &Overrides::default()).unwrap();
    assert_eq!(messages(&r07), ["print(a)", "print(b)"]);
    assert!(!r07.needs_approval());

    let both = scope(&["R07", "R01"], &Overrides::default()).unwrap();
    assert_eq!(both, all);
}

#[test]
fn scope_leaves_out_what_is_already_overridden() {
    let violations = current();
    let overrides = approved(&[&violations[1], &violations[0]]);
    let rest = scope(&[], &overrides).unwrap();
    assert_eq!(messages(&rest), ["AKIA2", "print(b)"]);

    let everything: Vec<&Violation> = violations.iter().collect();
    assert_eq!(
        scope(&[], &approved(&everything)),
        Err(ScopeError::NothingToOverride)
    );
}

#[test]
fn nothing_to_override_without_open_violations() {
    let warnings = [violation("R12", Tier::Warning, "TODO")];
    for violations in [&warnings[..], &[]] {
        assert_eq!(
            select_scope(violations, &Overrides::default(), &[], &catalog()),
            Err(ScopeError::NothingToOverride)
        );
    }
}

#[test]
fn every_named_rule_must_have_open_violations() {
    let violations = current();
    let overrides = approved(&[&violations[0], &violations[4]]);
    let Err(ScopeError::Rules {
        problems,
        overridable,
    }) = scope(&["R01", "R99", "R04", "R12", "R07"], &overrides)
    else {
        panic!("expected a rules error");
    };
    let kinds: Vec<(&str, RuleProblemKind)> =
        problems.iter().map(|p| (p.rule.as_str(), p.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("R99", RuleProblemKind::Unknown),
            ("R04", RuleProblemKind::NotFailing),
            ("R12", RuleProblemKind::WarningOnly),
            ("R07", RuleProblemKind::AlreadyOverridden),
        ]
    );
    assert_eq!(
        overridable,
        [OverridableRule {
            id: rule("R01"),
            name: Some("Provider secret".into()),
            tier: Tier::Block,
            violations: 2,
        }]
    );
    let message = scope(&["R99", "R12"], &Overrides::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "R99 is not a rule of the policy pack; \
         R12 has only warnings, which do not need an override"
    );
}

#[test]
fn overridable_rules_list_block_first() {
    let mut violations = current();
    violations.push(violation("R99", Tier::Block, "custom"));
    violations.push(violation("R07", Tier::Block, "retiered"));
    let rules = overridable_rules(&violations, &Overrides::default(), &catalog());
    let listed: Vec<(&str, Option<&str>, Tier, usize)> = rules
        .iter()
        .map(|r| (r.id.as_str(), r.name.as_deref(), r.tier, r.violations))
        .collect();
    assert_eq!(
        listed,
        [
            ("R01", Some("Provider secret"), Tier::Block, 2),
            ("R07", Some("Debug output"), Tier::Block, 3),
            ("R99", None, Tier::Block, 1),
        ]
    );
}

#[test]
fn override_tier_only_is_self_service_and_block_waits() {
    let settings = OverrideSettings {
        required_approvals: 2,
        ..OverrideSettings::default()
    };
    let writer = Requester {
        login: "alice".into(),
        is_bot: false,
        access: Known(Write),
    };
    let r07 = scope(&["R07"], &Overrides::default()).unwrap();
    let progress = decide_override(&writer, &r07, &settings).unwrap();
    assert_eq!(progress.status, RequestStatus::Approved);
    assert_eq!(progress.approved_by, ["alice"]);
    assert_eq!(progress.missing_approvals(), 0);

    let all = scope(&[], &Overrides::default()).unwrap();
    let progress = decide_override(&writer, &all, &settings).unwrap();
    assert_eq!(progress, RequestProgress::pending(2));

    let reader = Requester {
        access: Known(Read),
        ..writer
    };
    assert_eq!(
        decide_override(&reader, &r07, &settings),
        Err(Denial::NoWriteAccess(Read))
    );
}

fn identity(login: &str, access: Access, teams: Vec<(&str, TeamLookup)>) -> ApproverIdentity {
    ApproverIdentity {
        login: login.into(),
        is_bot: false,
        access,
        teams: teams
            .into_iter()
            .map(|(team, lookup)| (TeamRef::try_from(team.to_owned()).unwrap(), lookup))
            .collect(),
    }
}

fn settings_with(approvers: &[&str]) -> OverrideSettings {
    OverrideSettings {
        approvers: approvers.iter().map(|a| a.parse().unwrap()).collect(),
        ..OverrideSettings::default()
    }
}

#[test]
fn without_approvers_maintainers_and_admins_decide() {
    let settings = OverrideSettings::default();
    let table = [
        (Known(Admin), Ok(())),
        (Known(Maintain), Ok(())),
        (Known(Write), Err(Denial::NotAMaintainer(Write))),
        (Known(Triage), Err(Denial::NotAMaintainer(Triage))),
        (Known(NoAccess), Err(Denial::NotAMaintainer(NoAccess))),
        (
            LookupFailed("timeout".into()),
            Err(Denial::PermissionLookupFailed("timeout".into())),
        ),
    ];
    for (access, expected) in table {
        let approver = identity("carol", access, vec![]);
        assert_eq!(
            may_decide(&approver, &settings, "dave"),
            expected,
            "{approver:?}"
        );
    }
}

#[test]
fn the_author_and_bots_never_decide() {
    for settings in [OverrideSettings::default(), settings_with(&["dave"])] {
        let author = identity("Dave", Known(Admin), vec![]);
        assert_eq!(
            may_decide(&author, &settings, "dave"),
            Err(Denial::OwnPullRequest)
        );
        let bot = ApproverIdentity {
            is_bot: true,
            ..identity("helper", Known(Admin), vec![])
        };
        assert_eq!(may_decide(&bot, &settings, "dave"), Err(Denial::Bot));
    }
}

#[test]
fn with_approvers_only_listed_users_and_team_members_decide() {
    let settings = settings_with(&["@Carol", "acme/security", "acme/release"]);
    let failed = |e: &str| TeamLookup::Failed(e.into());
    let security = || TeamRef::try_from("acme/security".to_owned()).unwrap();
    let not_listed = Err(Denial::NotAnApprover(settings.approvers.clone()));
    let table = [
        // A listed login decides whatever their permission or teams.
        identity("carol", Known(Read), vec![]),
        identity(
            "erin",
            Known(Read),
            vec![("acme/security", TeamLookup::Member)],
        ),
        identity(
            "erin",
            Known(Read),
            vec![
                ("acme/security", failed("502")),
                ("acme/release", TeamLookup::Member),
            ],
        ),
        // Slugs compare case-insensitively.
        identity(
            "erin",
            Known(Read),
            vec![("ACME/Release", TeamLookup::Member)],
        ),
    ];
    for approver in table {
        assert_eq!(
            may_decide(&approver, &settings, "dave"),
            Ok(()),
            "{approver:?}"
        );
    }
    let denied = [
        (
            identity(
                "erin",
                Known(Admin),
                vec![
                    ("acme/security", TeamLookup::NotMember),
                    ("acme/release", TeamLookup::NotMember),
                ],
            ),
            not_listed.clone(),
        ),
        (
            identity(
                "erin",
                Known(Admin),
                vec![
                    ("acme/security", failed("HTTP 502")),
                    ("acme/release", TeamLookup::NotMember),
                ],
            ),
            Err(Denial::TeamLookupFailed {
                team: security(),
                error: "HTTP 502".into(),
            }),
        ),
        (
            identity(
                "erin",
                Known(Admin),
                vec![("acme/release", TeamLookup::NotMember)],
            ),
            Err(Denial::TeamLookupFailed {
                team: security(),
                error: "the membership was not looked up".into(),
            }),
        ),
    ];
    for (approver, expected) in denied {
        assert_eq!(
            may_decide(&approver, &settings, "dave"),
            expected,
            "{approver:?}"
        );
    }
    let users_only = settings_with(&["carol"]);
    assert_eq!(
        may_decide(&identity("erin", Known(Admin), vec![]), &users_only, "dave"),
        Err(Denial::NotAnApprover(vec![Approver::User("carol".into())]))
    );
}

#[test]
fn denials_explain_themselves() {
    let table = [
        (
            Denial::NoWriteAccess(NoAccess),
            "overriding needs write access to this repository, and you have no access",
        ),
        (
            Denial::NotAnApprover(settings_with(&["carol", "acme/security"]).approvers),
            "only the approvers set in .github/tollgate.yml may decide on overrides \
             (@carol, @acme/security), and you are not one of them",
        ),
        (
            Denial::TeamLookupFailed {
                team: TeamRef::try_from("acme/security".to_owned()).unwrap(),
                error: "HTTP 502".into(),
            },
            "your membership of the team @acme/security could not be checked (HTTP 502), \
             so nothing was done; please try again later",
        ),
    ];
    for (denial, text) in table {
        assert_eq!(denial.to_string(), text);
    }
}

#[test]
fn the_requester_or_a_decider_may_cancel() {
    let settings = OverrideSettings::default();
    let requester = identity("alice", LookupFailed("not needed".into()), vec![]);
    assert_eq!(may_cancel(&requester, "Alice", &settings, "alice"), Ok(()));
    let maintainer = identity("carol", Known(Maintain), vec![]);
    assert_eq!(may_cancel(&maintainer, "alice", &settings, "alice"), Ok(()));
    let writer = identity("erin", Known(Write), vec![]);
    assert_eq!(
        may_cancel(&writer, "alice", &settings, "alice"),
        Err(Denial::NotRequesterOrApprover)
    );
    let unknown = identity("erin", LookupFailed("HTTP 500".into()), vec![]);
    assert_eq!(
        may_cancel(&unknown, "alice", &settings, "alice"),
        Err(Denial::PermissionLookupFailed("HTTP 500".into()))
    );
    let bot = ApproverIdentity {
        is_bot: true,
        ..identity("alice", Known(Admin), vec![])
    };
    assert_eq!(may_cancel(&bot, "alice", &settings, "x"), Err(Denial::Bot));
}

#[test]
fn approvals_count_distinct_approvers() {
    let mut progress = RequestProgress::pending(2);
    assert_eq!(progress.missing_approvals(), 2);
    assert_eq!(progress.approve("carol"), Ok(RequestStatus::Pending));
    assert_eq!(
        progress.approve("Carol"),
        Err(TransitionError::AlreadyApproved {
            login: "Carol".into()
        })
    );
    assert_eq!(progress.missing_approvals(), 1);
    assert_eq!(progress.approve("erin"), Ok(RequestStatus::Approved));
    assert_eq!(progress.approved_by, ["carol", "erin"]);
    assert_eq!(
        progress.approve("frank"),
        Err(TransitionError::Closed {
            status: RequestStatus::Approved
        })
    );
    assert_eq!(progress.approved_by.len(), 2);
}

#[test]
fn one_rejection_rejects() {
    let mut progress = RequestProgress::pending(2);
    progress.approve("carol").unwrap();
    assert_eq!(progress.reject(), Ok(()));
    assert_eq!(progress.status, RequestStatus::Rejected);
}

#[test]
fn closed_requests_refuse_every_transition() {
    type Step = fn(&mut RequestProgress) -> Result<(), TransitionError>;
    let steps: [(&str, Step); 4] = [
        ("approve", |p| p.approve("zed").map(drop)),
        ("reject", RequestProgress::reject),
        ("cancel", RequestProgress::cancel),
        ("expire", RequestProgress::expire),
    ];
    let closing: [(RequestStatus, Step); 3] = [
        (RequestStatus::Rejected, RequestProgress::reject),
        (RequestStatus::Cancelled, RequestProgress::cancel),
        (RequestStatus::Expired, RequestProgress::expire),
    ];
    for (status, close) in closing {
        for (name, step) in steps {
            let mut progress = RequestProgress::pending(1);
            close(&mut progress).unwrap();
            let before = progress.clone();
            assert_eq!(
                step(&mut progress),
                Err(TransitionError::Closed { status }),
                "{name} on a {status} request"
            );
            assert_eq!(progress, before, "{name} changed a {status} request");
        }
    }
}

#[test]
fn an_approved_request_can_only_be_cancelled() {
    let approved = RequestProgress::self_service("alice");
    let closed = Err(TransitionError::Closed {
        status: RequestStatus::Approved,
    });
    assert_eq!(approved.clone().reject(), closed);
    assert_eq!(approved.clone().expire(), closed);
    let mut cancelled = approved;
    assert_eq!(cancelled.cancel(), Ok(()));
    assert_eq!(cancelled.status, RequestStatus::Cancelled);
    assert_eq!(
        TransitionError::Closed {
            status: RequestStatus::Cancelled
        }
        .to_string(),
        "this override request is already cancelled"
    );
}

#[test]
fn slack_clicks_count_as_the_mapped_login() {
    let settings = OverrideSettings {
        slack_users: [("Carol".to_owned(), "U0CAROL".to_owned())].into(),
        ..OverrideSettings::default()
    };
    assert_eq!(login_for_slack_user(&settings, "U0CAROL"), Ok("Carol"));
    assert_eq!(
        login_for_slack_user(&settings, "U0OTHER"),
        Err(Denial::UnmappedSlackUser)
    );
}
