//! Replies to override commands, posted as new comments on the pull request. Each one starts with
//! [`REPLY_MARKER`], names the person it answers and says what happened and why, briefly.

use super::templates::render;
use super::view::{List, LocationView, REASON_CHARS, RuleRefView, clip, plain_location};
use crate::commands::{Command, CommandError};
use crate::config::OverrideSettings;
use crate::domain::{RuleId, Tier};
use crate::overrides::{
    Denial, OverridableRule, RequestProgress, RequestStatus, RuleProblemKind, Scope, ScopeError,
    TransitionError,
};
use crate::policy::Catalog;
use serde::Serialize;
use std::borrow::Cow;

/// The hidden first line of every reply: it tells the app's own replies apart (they are never
/// read as commands) and lets tests find them.
pub const REPLY_MARKER: &str = "<!-- tollgate:reply -->";

/// The hidden line that ties a reply to the command comment it answers: a retry that may have
/// posted the reply already finds it by this line instead of posting it again.
pub fn reply_key(command_comment_id: u64) -> String {
    format!("<!-- tollgate:reply-to:{command_comment_id} -->")
}

/// `reply` as posted: with the [`reply_key`] of the command comment at its end.
pub fn keyed_reply(reply: &str, command_comment_id: u64) -> String {
    format!("{reply}\n{}", reply_key(command_comment_id))
}

/// Violations listed in a reply before the rest is counted.
const VIOLATIONS_SHOWN: usize = 10;

/// The command a reply answers, as the reply names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandKind {
    Override,
    Cancel,
    Approve,
    Reject,
}

impl From<&Command> for CommandKind {
    fn from(command: &Command) -> Self {
        match command {
            Command::Override { .. } => CommandKind::Override,
            Command::CancelOverride => CommandKind::Cancel,
            Command::Approve { .. } => CommandKind::Approve,
            Command::Reject { .. } => CommandKind::Reject,
        }
    }
}

/// A reply to a command; `to` is the GitHub login it is addressed to.
#[derive(Debug, Clone, Copy)]
pub enum Reply<'a> {
    /// `/override` of OVERRIDE-tier violations only: approved at once.
    OverrideRecorded {
        to: &'a str,
        scope: &'a Scope,
        reason: &'a str,
    },
    /// `/override` covering BLOCK violations: waiting for approvers. `slack_notified` when the
    /// approvers were asked on Slack too.
    OverridePending {
        to: &'a str,
        scope: &'a Scope,
        reason: &'a str,
        settings: &'a OverrideSettings,
        slack_notified: bool,
    },
    /// A command refused because of who sent it.
    Denied {
        to: &'a str,
        command: CommandKind,
        denial: &'a Denial,
    },
    /// `/override` that would cover nothing.
    ScopeRefused { to: &'a str, error: &'a ScopeError },
    /// A command that could not be understood; `overridable` lists the rules failing now.
    NotUnderstood {
        to: &'a str,
        error: &'a CommandError,
        overridable: &'a [OverridableRule],
    },
    /// `/approve` counted; `progress` is the request's state after it.
    ApprovalRecorded {
        to: &'a str,
        requested_by: &'a str,
        progress: &'a RequestProgress,
    },
    /// `/approve` or `/reject` with no pending request on the pull request.
    NothingPending { to: &'a str, command: CommandKind },
    /// Any command while `.github/tollgate.yml` on the base branch is invalid: the approvers it
    /// names are unknown, so nothing is decided.
    ConfigInvalid {
        to: &'a str,
        command: CommandKind,
        error: &'a str,
    },
    /// `/approve` or `/reject` that the request's state does not allow.
    DecisionRefused {
        to: &'a str,
        command: CommandKind,
        error: &'a TransitionError,
    },
    /// `/reject` recorded; addressed to the requester.
    Rejected {
        requested_by: &'a str,
        by: &'a str,
        reason: &'a str,
    },
    /// `/override cancel` done; `was` is the status before (pending or approved).
    Cancelled { to: &'a str, was: RequestStatus },
    /// `/override cancel` without a pending or approved request by the commenter.
    NothingToCancel { to: &'a str },
}

/// The Markdown body of a reply. `catalog` names the rules.
pub fn render_reply(reply: &Reply, catalog: &Catalog) -> String {
    // Lists rendered by macros end with a line break; a comment needs none at its end.
    let mut text = render_view(reply, catalog);
    text.truncate(text.trim_end().len());
    text
}

fn render_view(reply: &Reply, catalog: &Catalog) -> String {
    let marker = REPLY_MARKER;
    match *reply {
        Reply::OverrideRecorded { to, scope, reason } => render(
            "replies/override_recorded.md.j2",
            &ScopeView {
                marker,
                to,
                violations: violations(scope, catalog),
                reason: clip(reason, REASON_CHARS),
            },
        ),
        Reply::OverridePending {
            to,
            scope,
            reason,
            settings,
            slack_notified,
        } => render(
            "replies/override_pending.md.j2",
            &PendingView {
                scope: ScopeView {
                    marker,
                    to,
                    violations: violations(scope, catalog),
                    reason: clip(reason, REASON_CHARS),
                },
                blocks: count(scope, Tier::Block),
                others: count(scope, Tier::Override),
                override_only_rules: rules_of_tier(scope, Tier::Override),
                required_approvals: settings.required_approvals,
                approvers: settings.approvers.iter().map(ToString::to_string).collect(),
                slack_notified,
            },
        ),
        Reply::Denied {
            to,
            command,
            denial,
        } => render(
            "replies/denied.md.j2",
            &DeniedView {
                marker,
                to,
                command,
                denial: denial.to_string(),
            },
        ),
        Reply::ScopeRefused { to, error } => {
            let (problems, overridable) = match error {
                ScopeError::NothingToOverride => (Vec::new(), &[][..]),
                ScopeError::Rules {
                    problems,
                    overridable,
                } => (
                    problems
                        .iter()
                        .map(|p| ProblemView {
                            rule: &p.rule,
                            name: catalog.get(&p.rule).map(|meta| meta.name.as_str()),
                            kind: kind_name(p.kind),
                        })
                        .collect(),
                    &overridable[..],
                ),
            };
            render(
                "replies/scope_refused.md.j2",
                &ScopeRefusedView {
                    marker,
                    to,
                    problems,
                    overridable: overridable.iter().map(OverridableView::from).collect(),
                },
            )
        }
        Reply::NotUnderstood {
            to,
            error,
            overridable,
        } => render(
            "replies/not_understood.md.j2",
            &NotUnderstoodView {
                marker,
                to,
                error_is_question: matches!(error, CommandError::UnknownCommand { .. }),
                error: error.to_string(),
                usage: CommandError::usage(),
                overridable: overridable.iter().map(OverridableView::from).collect(),
            },
        ),
        Reply::ApprovalRecorded {
            to,
            requested_by,
            progress,
        } => render(
            "replies/approval_recorded.md.j2",
            &ApprovalView {
                marker,
                to,
                requested_by,
                given: progress.approved_by.len(),
                required: progress.required_approvals,
                missing: progress.missing_approvals(),
                approved: progress.status == RequestStatus::Approved,
            },
        ),
        Reply::NothingPending { to, command } => render(
            "replies/nothing_pending.md.j2",
            &CommandView {
                marker,
                to,
                command,
            },
        ),
        Reply::ConfigInvalid { to, command, error } => render(
            "replies/config_invalid.md.j2",
            &ConfigInvalidView {
                marker,
                to,
                command,
                error,
            },
        ),
        Reply::DecisionRefused { to, command, error } => {
            let (already_approved, status) = match error {
                TransitionError::AlreadyApproved { .. } => (true, None),
                TransitionError::Closed { status } => (false, Some(*status)),
            };
            render(
                "replies/decision_refused.md.j2",
                &DecisionRefusedView {
                    marker,
                    to,
                    command,
                    already_approved,
                    status,
                },
            )
        }
        Reply::Rejected {
            requested_by,
            by,
            reason,
        } => render(
            "replies/rejected.md.j2",
            &RejectedView {
                marker,
                to: requested_by,
                by,
                reason: clip(reason, REASON_CHARS),
            },
        ),
        Reply::Cancelled { to, was } => render(
            "replies/cancelled.md.j2",
            &CancelledView {
                marker,
                to,
                was_approved: was == RequestStatus::Approved,
            },
        ),
        Reply::NothingToCancel { to } => render(
            "replies/nothing_to_cancel.md.j2",
            &CommandView {
                marker,
                to,
                command: CommandKind::Cancel,
            },
        ),
    }
}

fn violations<'a>(scope: &'a Scope, catalog: &'a Catalog) -> List<LocationView<'a>> {
    List::new(
        scope
            .violations()
            .iter()
            .map(|v| plain_location(catalog, v)),
        VIOLATIONS_SHOWN,
    )
}

fn count(scope: &Scope, tier: Tier) -> usize {
    scope.violations().iter().filter(|v| v.tier == tier).count()
}

/// Rules whose violations in `scope` are all of `tier`.
fn rules_of_tier(scope: &Scope, tier: Tier) -> Vec<RuleId> {
    let violations = scope.violations();
    scope
        .rules()
        .into_iter()
        .filter(|rule| {
            violations
                .iter()
                .filter(|v| &v.rule_id == rule)
                .all(|v| v.tier == tier)
        })
        .collect()
}

fn kind_name(kind: RuleProblemKind) -> &'static str {
    match kind {
        RuleProblemKind::Unknown => "unknown",
        RuleProblemKind::NotFailing => "not_failing",
        RuleProblemKind::WarningOnly => "warning_only",
        RuleProblemKind::AlreadyOverridden => "already_overridden",
    }
}

#[derive(Serialize)]
struct ScopeView<'a> {
    marker: &'static str,
    to: &'a str,
    violations: List<LocationView<'a>>,
    reason: Cow<'a, str>,
}

#[derive(Serialize)]
struct PendingView<'a> {
    #[serde(flatten)]
    scope: ScopeView<'a>,
    blocks: usize,
    others: usize,
    override_only_rules: Vec<RuleId>,
    required_approvals: u32,
    approvers: Vec<String>,
    slack_notified: bool,
}

#[derive(Serialize)]
struct DeniedView<'a> {
    marker: &'static str,
    to: &'a str,
    command: CommandKind,
    denial: String,
}

#[derive(Serialize)]
struct ProblemView<'a> {
    rule: &'a RuleId,
    name: Option<&'a str>,
    kind: &'static str,
}

#[derive(Serialize)]
struct OverridableView<'a> {
    #[serde(flatten)]
    rule: RuleRefView<'a>,
    tier: Tier,
}

impl<'a> From<&'a OverridableRule> for OverridableView<'a> {
    fn from(rule: &'a OverridableRule) -> Self {
        Self {
            rule: RuleRefView {
                id: &rule.id,
                name: rule.name.as_deref(),
                violations: rule.violations,
            },
            tier: rule.tier,
        }
    }
}

#[derive(Serialize)]
struct ScopeRefusedView<'a> {
    marker: &'static str,
    to: &'a str,
    problems: Vec<ProblemView<'a>>,
    overridable: Vec<OverridableView<'a>>,
}

#[derive(Serialize)]
struct NotUnderstoodView<'a> {
    marker: &'static str,
    to: &'a str,
    error: String,
    /// "…; did you mean `/override`?" ends its own sentence.
    error_is_question: bool,
    usage: &'static str,
    overridable: Vec<OverridableView<'a>>,
}

#[derive(Serialize)]
struct ApprovalView<'a> {
    marker: &'static str,
    to: &'a str,
    requested_by: &'a str,
    given: usize,
    required: u32,
    missing: u32,
    approved: bool,
}

#[derive(Serialize)]
struct CommandView<'a> {
    marker: &'static str,
    to: &'a str,
    command: CommandKind,
}

#[derive(Serialize)]
struct ConfigInvalidView<'a> {
    marker: &'static str,
    to: &'a str,
    command: CommandKind,
    error: &'a str,
}

#[derive(Serialize)]
struct DecisionRefusedView<'a> {
    marker: &'static str,
    to: &'a str,
    command: CommandKind,
    already_approved: bool,
    status: Option<RequestStatus>,
}

#[derive(Serialize)]
struct RejectedView<'a> {
    marker: &'static str,
    to: &'a str,
    by: &'a str,
    reason: Cow<'a, str>,
}

#[derive(Serialize)]
struct CancelledView<'a> {
    marker: &'static str,
    to: &'a str,
    was_approved: bool,
}

#[cfg(test)]
mod tests;
