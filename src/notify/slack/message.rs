//! The Slack messages Tollgate posts, as Block Kit: override requests, BLOCK alerts, their
//! escalation, and notes in their threads. Pure: the views go in, text and blocks come out.
//!
//! Person fields (`author`, `requester`, `by`) are display strings chosen by the caller and shown
//! as given: a GitHub login written `@alice`, or a Slack user mention `<@U0123ABC>` (built from
//! the Slack user id), which notifies that user. Nothing adds an `@`. Every other string is shown
//! literally: mrkdwn markup, links and mentions in it are escaped.
//!
//! Messages stay within Slack's limits whatever the input: at most [`MAX_VIOLATIONS_SHOWN`]
//! violations are listed (and how many more there are), and each piece of user text is cut so
//! no section exceeds 3,000 characters.

use super::templates::render;
use minijinja::context;
use minijinja::value::Value;
use std::time::Duration;

/// Violations listed in one message; the rest are counted.
pub const MAX_VIOLATIONS_SHOWN: usize = 10;

/// What Slack shows: `text` in notifications and where blocks cannot be shown, `blocks` (a JSON
/// array of Block Kit blocks) everywhere else.
#[derive(Debug, Clone, PartialEq)]
pub struct SlackMessage {
    pub text: String,
    pub blocks: serde_json::Value,
}

/// The pull request a message is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrSummary {
    /// `owner/name`.
    pub repo_full_name: String,
    pub number: u64,
    pub title: String,
    /// The pull request's page (`html_url`); shown as a link only when it is an http(s) URL.
    pub url: String,
    /// A display string, e.g. `@octocat`.
    pub author: String,
}

/// One violation as a message lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationLine {
    pub rule_id: String,
    pub rule_name: Option<String>,
    /// `path:line` or `path`; `None` for findings about the whole pull request.
    pub location: Option<String>,
    pub message: String,
}

/// An override request for BLOCK violations, in its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverrideRequestView {
    /// Carried by the Approve and Reject buttons.
    pub request_id: i64,
    pub pr: PrSummary,
    /// A display string, e.g. `@alice`.
    pub requester: String,
    pub reason: String,
    pub violations: Vec<ViolationLine>,
    /// Who may decide, as display strings: Slack mentions (`<@U0123ABC>`) notify them. Empty:
    /// the repository's maintainers and admins.
    pub approvers: Vec<String>,
    pub state: RequestState,
}

/// Where an override request stands. `by` is a display string (`@alice` or `<@U0123ABC>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestState {
    Pending { approvals: u32, required: u32 },
    Approved { by: String, note: Option<String> },
    Rejected { by: String, reason: String },
    Cancelled { by: String },
    Expired,
}

/// A BLOCK alert: new BLOCK violations of one rule on a pull request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertView {
    /// Carried by the Acknowledge button.
    pub alert_id: i64,
    pub pr: PrSummary,
    pub rule_id: String,
    pub rule_name: Option<String>,
    pub violations: Vec<ViolationLine>,
    pub state: AlertState,
}

/// Where an alert stands. `by` is a display string (`@alice` or `<@U0123ABC>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertState {
    Open,
    Acknowledged {
        by: String,
    },
    /// The violations are no longer found on the pull request.
    Resolved,
}

/// The message for an override request: Approve and Reject buttons while it is pending; once
/// decided, no buttons and a line saying what happened and who decided.
pub fn override_request_message(request: &OverrideRequestView) -> SlackMessage {
    let state = match &request.state {
        RequestState::Pending {
            approvals,
            required,
        } => context! { kind => "pending", approvals => *approvals, required => *required },
        RequestState::Approved { by, note } => {
            context! { kind => "approved", by => by.as_str(), note => note.as_deref() }
        }
        RequestState::Rejected { by, reason } => {
            context! { kind => "rejected", by => by.as_str(), reason => reason.as_str() }
        }
        RequestState::Cancelled { by } => context! { kind => "cancelled", by => by.as_str() },
        RequestState::Expired => context! { kind => "expired" },
    };
    render(
        "override_request.json.j2",
        context! {
            request_id => request.request_id,
            pr => pr_value(&request.pr),
            requester => request.requester.as_str(),
            reason => request.reason.as_str(),
            approvers => request.approvers.join(", "),
            state,
            ..violations_value(&request.violations)
        },
    )
}

/// The alert for new BLOCK violations: an Acknowledge button while open; once acknowledged or
/// resolved, no button and a line saying so.
pub fn alert_message(alert: &AlertView) -> SlackMessage {
    render("alert.json.j2", alert_context(alert, Value::from(())))
}

/// The reminder that an alert was not acknowledged within `window` (shown in whole minutes,
/// rounded up). `mention` notifies people when the reminder goes to the alert's own channel:
/// `<!channel>`, `<!here>`, `<!subteam^S0123>` or `<@U0123ABC>`; other text is shown as is and
/// notifies nobody. While the alert is open, the reminder has an Acknowledge button too.
pub fn escalation_message(
    alert: &AlertView,
    window: Duration,
    mention: Option<&str>,
) -> SlackMessage {
    let minutes = window.as_secs().div_ceil(60);
    let escalation = context! { minutes, mention };
    render("alert.json.j2", alert_context(alert, escalation))
}

/// A plain note, for replies in a message's thread ("Override cancelled by @alice"). The text is
/// shown literally, except Slack user mentions (`<@U0123ABC>`), which notify. Slack refuses an
/// empty note.
pub fn thread_note(text: &str) -> SlackMessage {
    render("thread_note.json.j2", context! { text })
}

fn alert_context(alert: &AlertView, escalation: Value) -> Value {
    let state = match &alert.state {
        AlertState::Open => context! { kind => "open" },
        AlertState::Acknowledged { by } => context! { kind => "acknowledged", by => by.as_str() },
        AlertState::Resolved => context! { kind => "resolved" },
    };
    context! {
        alert_id => alert.alert_id,
        pr => pr_value(&alert.pr),
        rule_id => alert.rule_id.as_str(),
        rule_name => alert.rule_name.as_deref(),
        state,
        escalation,
        ..violations_value(&alert.violations)
    }
}

fn pr_value(pr: &PrSummary) -> Value {
    context! {
        repo => pr.repo_full_name.as_str(),
        number => pr.number,
        title => pr.title.as_str(),
        url => pr.url.as_str(),
        author => pr.author.as_str(),
    }
}

/// The violations shown (`violations`), how many are left out (`more`) and how many there are
/// (`total`).
fn violations_value(violations: &[ViolationLine]) -> Value {
    let shown: Vec<Value> = violations
        .iter()
        .take(MAX_VIOLATIONS_SHOWN)
        .map(|v| {
            context! {
                rule_id => v.rule_id.as_str(),
                rule_name => v.rule_name.as_deref(),
                location => v.location.as_deref(),
                message => v.message.as_str(),
            }
        })
        .collect();
    context! {
        violations => shown,
        more => violations.len().saturating_sub(MAX_VIOLATIONS_SHOWN),
        total => violations.len(),
    }
}

#[cfg(test)]
mod tests;
