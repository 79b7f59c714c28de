//! What people read about an evaluation: the sticky pull-request comment and check-run summary
//! (Markdown), the check-run title, and the `tollgate check` output (text, JSON or SARIF); and
//! the replies to override commands.
//!
//! Every renderer takes the same input and builds a small view model from it; the wording lives
//! in minijinja templates under `templates/`, compiled into the binary. Pure: no I/O.

mod merge_queue;
mod replies;
mod runbooks;
mod sarif;
mod templates;
mod view;

#[cfg(test)]
mod tests;

use crate::config::Approver;
use crate::domain::{
    Counts, Fingerprint, Overrides, RuleId, Threshold, Tier, Verdict, Violation, judge,
};
use crate::overrides::RequestProgress;
use crate::policy::{Catalog, Findings};
use serde::Serialize;
use std::collections::BTreeSet;

pub use merge_queue::{
    MergeGroupComment, MergeGroupTrust, merge_group_comment_key, render_merge_group_comment,
    render_trusted_summary, render_trusted_title,
};
pub use replies::{CommandKind, REPLY_MARKER, Reply, keyed_reply, render_reply, reply_key};
pub use runbooks::{RunbookPage, render_runbooks};
pub use sarif::{FINGERPRINT_KEY, SarifLog, SarifOptions, render_sarif};
pub(crate) use templates::{from_json, strict_environment};

/// The hidden first line of the sticky comment, by which the app finds its own comment again.
pub const STICKY_COMMENT_MARKER: &str = "<!-- tollgate:sticky-comment -->";

/// The largest Markdown body GitHub accepts: comment bodies are limited to 65,536 characters and
/// check-run summaries to 65,535 bytes; bytes never undercount characters, so this bound satisfies
/// both.
pub const MAX_MARKDOWN_BYTES: usize = 65_535;

/// What a report is about.
#[derive(Debug, Clone)]
pub enum ReportInput<'a> {
    /// The pack ran on the change.
    Evaluated(Evaluation<'a>),
    /// The repository config or the policy pack failed, so nothing was scored. `error` is shown
    /// verbatim (in a code block in Markdown).
    Failed { error: String },
}

/// One evaluation of a change and everything shown alongside it.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    /// Names, remediations and override guidance of the rules.
    pub catalog: &'a Catalog,
    pub findings: &'a Findings,
    pub overrides: &'a Overrides,
    pub threshold: Threshold,
    /// [`PolicyEngine::digest`](crate::policy::PolicyEngine::digest) of the pack that ran.
    pub policy_digest: &'a str,
    /// Earlier evaluations of the same pull request, oldest first, not including this one.
    /// Shown in Markdown only.
    pub history: Vec<HistoryEntry>,
    /// Violations of the previous evaluation that this one no longer finds. Shown in Markdown
    /// only.
    pub fixed: Vec<Violation>,
    /// Override requests waiting for approvals, listed in the Markdown report's Overrides
    /// section next to the approved `overrides`. Shown in Markdown only.
    pub pending_overrides: Vec<PendingOverride>,
    /// Override requests an approver rejected, listed with who rejected them and why while
    /// their violations are still found (however the rejection was made: a comment, Slack or
    /// the dashboard). Shown in Markdown only.
    pub rejected_overrides: Vec<RejectedOverride>,
}

/// An override request an approver rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedOverride {
    pub requested_by: String,
    pub reason: String,
    pub fingerprints: BTreeSet<Fingerprint>,
    /// The approver's login.
    pub rejected_by: String,
    /// Why, as the approver wrote it.
    pub rejection: String,
}

/// An override request waiting for approvals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOverride {
    pub requested_by: String,
    pub reason: String,
    /// The violations the request was made for; the report names the rules of those still found.
    pub fingerprints: BTreeSet<Fingerprint>,
    /// Approvals given and needed (its status is pending).
    pub progress: RequestProgress,
    /// Who may approve, from the settings the request was made under; empty: the repository's
    /// maintainers and admins.
    pub approvers: Vec<Approver>,
}

/// The score of an earlier evaluation and the commit it evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    pub score: u8,
    /// Full or abbreviated commit SHA; reports show the first seven characters.
    pub sha: String,
}

/// Where a Markdown report is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// The sticky pull-request comment: starts with [`STICKY_COMMENT_MARKER`].
    Comment,
    /// A check run's `output.summary`.
    CheckRun,
}

impl<'a> Evaluation<'a> {
    /// An evaluation without history, fixed violations, pending or rejected overrides.
    pub fn new(
        catalog: &'a Catalog,
        findings: &'a Findings,
        overrides: &'a Overrides,
        threshold: Threshold,
        policy_digest: &'a str,
    ) -> Self {
        Self {
            catalog,
            findings,
            overrides,
            threshold,
            policy_digest,
            history: Vec::new(),
            fixed: Vec::new(),
            pending_overrides: Vec::new(),
            rejected_overrides: Vec::new(),
        }
    }

    /// The verdict the report shows: [`judge`] over the findings, overrides and threshold.
    pub fn verdict(&self) -> Verdict {
        judge(&self.findings.violations, self.overrides, self.threshold)
    }
}

/// The Markdown report for a comment or a check-run summary, at most [`MAX_MARKDOWN_BYTES`] long.
/// When every violation does not fit, it lists as many as fit (BLOCK first) and says how many
/// more there are.
pub fn render_markdown(input: &ReportInput, surface: Surface) -> String {
    let marker = match surface {
        Surface::Comment => Some(STICKY_COMMENT_MARKER),
        Surface::CheckRun => None,
    };
    match input {
        ReportInput::Evaluated(evaluation) => view::markdown(evaluation, marker),
        ReportInput::Failed { error } => view::markdown_error(error, marker),
    }
}

/// A check run's `output.title`, e.g. `Score 87/100 · 1 BLOCK · 2 WARNING`.
///
/// The tiers count the violations that weigh on the score (those no approved override covers),
/// so the title adds up to the score; overridden ones are counted apart (`· 1 overridden`).
/// Tiers without violations are left out; a change without any finding reads
/// `Score 100/100 · no violations`.
pub fn check_run_title(input: &ReportInput) -> String {
    view::check_run_title(input)
}

/// The terminal output of `tollgate check --format text`: one line per violation, grouped by
/// tier, the files that were not evaluated, and a summary line with the score and verdict.
/// ANSI colours only when `color` is true (decide with [`std::io::IsTerminal`] and `NO_COLOR`).
pub fn render_text(input: &ReportInput, color: bool) -> String {
    view::text(input, color)
}

/// The machine-readable result of `tollgate check --format json`; serialize it with
/// `serde_json` (fields keep this order). A failed evaluation has no JSON form: report the error
/// instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonReport<'a> {
    pub score: u8,
    /// `"pass"` or `"fail"`.
    pub verdict: &'static str,
    pub threshold: u8,
    /// All violations found, overridden or not.
    pub counts: Counts,
    pub violations: Vec<JsonViolation<'a>>,
}

/// One violation in [`JsonReport`]; `path` and `line` are `null` when the finding is about the
/// pull request as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JsonViolation<'a> {
    pub rule_id: &'a RuleId,
    pub tier: Tier,
    pub path: Option<&'a str>,
    pub line: Option<u32>,
    pub message: &'a str,
}

/// The JSON report of an evaluation.
pub fn render_json<'a>(evaluation: &Evaluation<'a>) -> JsonReport<'a> {
    let verdict = evaluation.verdict();
    let findings: &'a Findings = evaluation.findings;
    JsonReport {
        score: verdict.score().value(),
        verdict: verdict.as_str(),
        threshold: verdict.threshold().value(),
        counts: verdict.counts(),
        violations: findings
            .violations
            .iter()
            .map(|v| JsonViolation {
                rule_id: &v.rule_id,
                tier: v.tier,
                path: v.path.as_deref(),
                line: v.line,
                message: &v.message,
            })
            .collect(),
    }
}
