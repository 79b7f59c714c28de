//! The `send_slack` job: posts a recorded Slack message, or edits it in place once posted.
//!
//! Messages about an override request or an alert are rendered from the subject's current state
//! when the job runs, so a burst of changes ends in one edit showing the latest state, and a
//! retry edits instead of posting again: Slack's `ts` is recorded the moment the post succeeds.
//! Slack's `chat.postMessage` takes no idempotency key, so a post is marked as requested before
//! it is sent and carries its key in Slack's message metadata: a retry after a process died
//! between Slack's answer and the record finds the message by that key and edits it.

use super::{Job, JobContext, JobError};
use crate::config::{Approver, SlackSettings};
use crate::domain::Violation;
use crate::notify::slack::{
    AlertState, AlertView, Lookup, MessageKey, OutgoingMessage, OverrideRequestView, PrSummary,
    RequestState, SlackClient, SlackError, SlackMessage, ViolationLine, alert_message,
    escalation_message, override_request_message, thread_note,
};
use crate::outbound::Trust;
use crate::policy::PolicyEngine;
use crate::store::{self, AlertRow, OverrideRequestRow, SlackMessageRow, SlackSubject};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How far before the recorded request a lookup starts: covers the difference between the
/// database's clock and Slack's.
const LOOKUP_MARGIN: TimeDelta = TimeDelta::minutes(5);

pub struct SlackSender {
    pool: PgPool,
    client: SlackClient,
    settings: SlackSettings,
    engine: Arc<PolicyEngine>,
    github_web_url: String,
    escalation_after: Duration,
    /// Set once the missing read scope was logged, so that it is said once per process.
    missing_scope_logged: AtomicBool,
}

impl From<SlackError> for JobError {
    fn from(error: SlackError) -> Self {
        if error.is_retryable() {
            JobError::Retry {
                message: format!("Slack: {error}"),
                after: error.retry_after(),
            }
        } else {
            JobError::Permanent(format!("Slack: {error}"))
        }
    }
}

/// The `send_slack` job: sends (or edits) one recorded Slack message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendSlack {
    pub message_id: i64,
}

impl Job for SendSlack {
    const KIND: &'static str = "send_slack";
    /// About 17 minutes of backoff in all.
    const MAX_ATTEMPTS: i32 = 10;
    const URGENT: bool = true;

    fn dedup_key(&self) -> String {
        format!("slack:{}", self.message_id)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let handlers = ctx.handlers;
        let Some(slack) = &handlers.slack else {
            return Err(JobError::Permanent("Slack is not configured".into()));
        };
        let result = slack.run(self.message_id).await;
        // A message given up on is marked so, with the error, for whoever looks.
        if let Err(error) = &result
            && (ctx.last_attempt() || matches!(error, JobError::Permanent(_)))
        {
            store::fail_slack_message(&handlers.pool, self.message_id, &error.to_string()).await?;
        }
        result
    }
}

/// Queues a send of message `message_id` in the caller's transaction.
pub async fn enqueue_slack_send(
    conn: &mut PgConnection,
    installation_id: i64,
    message_id: i64,
) -> Result<(), sqlx::Error> {
    let job = SendSlack { message_id };
    super::enqueue(conn, Some(installation_id), &job)
        .await
        .map(drop)
}

impl SlackSender {
    pub fn new(
        pool: PgPool,
        settings: SlackSettings,
        engine: Arc<PolicyEngine>,
        github_web_url: String,
        escalation_after: Duration,
        trust: &Trust,
    ) -> Result<Self, SlackError> {
        let client = SlackClient::new(&settings.api_url, settings.bot_token.clone(), trust)?;
        Ok(Self {
            pool,
            client,
            settings,
            engine,
            github_web_url,
            escalation_after,
            missing_scope_logged: AtomicBool::new(false),
        })
    }

    pub async fn run(&self, message_id: i64) -> Result<(), JobError> {
        let mut conn = self.pool.acquire().await?;
        let Some(mut message) = store::slack_message(&mut conn, message_id).await? else {
            return Err(JobError::Permanent(format!(
                "no Slack message {message_id}"
            )));
        };
        if message.subject == SlackSubject::Ephemeral {
            drop(conn);
            return self.send_ephemeral(&message).await;
        }
        let Some(rendered) = self.render(&mut conn, &message).await? else {
            return Err(JobError::Permanent(format!(
                "the subject of Slack message {message_id} is gone"
            )));
        };
        drop(conn);
        let posted = match (message.ts.clone(), message.post_requested_at) {
            (Some(ts), _) => Some(ts),
            (None, Some(requested_at)) => {
                let found = self.earlier_post(&message, requested_at).await?;
                if let Some(ts) = &found {
                    store::set_slack_ts(&self.pool, &message, &message.channel, ts).await?;
                }
                found
            }
            (None, None) => None,
        };
        match posted {
            Some(ts) => {
                let result = self
                    .client
                    .update_message(&message.channel, &ts, &rendered)
                    .await;
                self.record(&message, "chat.update", &result).await?;
                result?;
            }
            None => {
                // Marked before it is sent: a process killed before recording the answer leaves
                // a retry that looks for the message first.
                store::request_slack_post(&self.pool, &mut message).await?;
                let outgoing = OutgoingMessage {
                    channel: message.channel.clone(),
                    thread_ts: message.thread_ts.clone(),
                    key: MessageKey::of_message(message.id),
                    message: rendered,
                };
                let result = self.client.post_message(&outgoing).await;
                self.record(&message, "chat.postMessage", &result).await?;
                let posted = result?;
                store::set_slack_ts(&self.pool, &message, &posted.channel, &posted.ts).await?;
            }
        }
        Ok(())
    }

    /// The `ts` of the message an earlier attempt posted (its post was requested at
    /// `requested_at`) and died before recording, found by its key; `None` when Slack has no such
    /// message. A lookup Slack refuses for good (a missing read scope, a channel the bot cannot
    /// read) is logged and answered `None`: the message is posted again rather than lost.
    async fn earlier_post(
        &self,
        message: &SlackMessageRow,
        requested_at: DateTime<Utc>,
    ) -> Result<Option<String>, JobError> {
        let key = MessageKey::of_message(message.id);
        let lookup = Lookup {
            channel: &message.channel,
            thread_ts: message.thread_ts.as_deref(),
            oldest: requested_at - LOOKUP_MARGIN,
            key: &key,
        };
        match self.client.find_message(&lookup).await {
            Ok(Some(ts)) => {
                tracing::info!(
                    message_id = message.id,
                    ts,
                    "found the Slack message an earlier attempt posted"
                );
                Ok(Some(ts))
            }
            Ok(None) => Ok(None),
            Err(error) if error.is_retryable() => Err(error.into()),
            Err(error) if error.is_missing_scope() => {
                if !self.missing_scope_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        %error,
                        "cannot look up Slack messages an interrupted attempt may have posted: \
                         add the bot scopes channels:history and groups:history; until then such \
                         a message is posted again (at least once)"
                    );
                }
                Ok(None)
            }
            Err(error) => {
                tracing::warn!(
                    message_id = message.id,
                    %error,
                    "cannot look up a Slack message an interrupted attempt may have posted; \
                     posting it again"
                );
                Ok(None)
            }
        }
    }

    /// Records the attempt; a database error here is retried like any other.
    async fn record<T>(
        &self,
        message: &SlackMessageRow,
        method: &str,
        result: &Result<T, SlackError>,
    ) -> Result<(), JobError> {
        let (outcome, error) = match result {
            Ok(_) => ("sent", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        store::record_slack_attempt(&self.pool, message, method, outcome, error.as_deref()).await?;
        crate::telemetry::metrics::record_notification("slack", outcome);
        Ok(())
    }

    async fn send_ephemeral(&self, message: &SlackMessageRow) -> Result<(), JobError> {
        if message.status == "sent" {
            return Ok(());
        }
        let text = note_text(message);
        let user = message.user_id.as_deref().unwrap_or_default();
        let result = self
            .client
            .post_ephemeral(&message.channel, user, &text, message.thread_ts.as_deref())
            .await;
        self.record(message, "chat.postEphemeral", &result).await?;
        result?;
        Ok(())
    }

    /// The message as it should look now; `None` when its subject no longer exists.
    async fn render(
        &self,
        conn: &mut PgConnection,
        message: &SlackMessageRow,
    ) -> Result<Option<SlackMessage>, sqlx::Error> {
        let Some(subject_id) = message.subject_id else {
            return Ok(Some(thread_note(&note_text(message))));
        };
        Ok(match message.subject {
            SlackSubject::OverrideRequest => match store::override_request(conn, subject_id).await?
            {
                Some(request) => {
                    let pr = self
                        .pr_summary(conn, request.repository_id, request.pr_number)
                        .await?;
                    Some(override_request_message(&self.request_view(&request, pr)))
                }
                None => None,
            },
            SlackSubject::Alert | SlackSubject::Escalation => {
                match store::alert(conn, subject_id).await? {
                    Some(alert) => {
                        let pr = self
                            .pr_summary(conn, alert.repository_id, alert.pr_number)
                            .await?;
                        let view = self.alert_view(&alert, pr);
                        Some(if message.subject == SlackSubject::Alert {
                            alert_message(&view)
                        } else {
                            let mention = self
                                .settings
                                .escalation_channel
                                .is_none()
                                .then_some("<!channel>");
                            escalation_message(&view, self.escalation_after, mention)
                        })
                    }
                    None => None,
                }
            }
            SlackSubject::Note | SlackSubject::Ephemeral => Some(thread_note(&note_text(message))),
        })
    }

    async fn pr_summary(
        &self,
        conn: &mut PgConnection,
        repository_id: i64,
        number: i32,
    ) -> Result<PrSummary, sqlx::Error> {
        let record = store::pull_request_record(conn, repository_id, number).await?;
        let (repo_full_name, title, author) = match record {
            Some(r) => (r.repo_full_name, r.title, r.author.unwrap_or_default()),
            None => (
                format!("repository {repository_id}"),
                String::new(),
                String::new(),
            ),
        };
        Ok(PrSummary {
            url: format!("{}/{repo_full_name}/pull/{number}", self.github_web_url),
            repo_full_name,
            number: u64::try_from(number).unwrap_or_default(),
            title,
            author,
        })
    }

    fn request_view(&self, request: &OverrideRequestRow, pr: PrSummary) -> OverrideRequestView {
        let by = || format!("@{}", request.decided_by.as_deref().unwrap_or("someone"));
        let state = match request.status.as_str() {
            "approved" => RequestState::Approved {
                by: by(),
                note: request.decision_note.clone(),
            },
            "rejected" => RequestState::Rejected {
                by: by(),
                reason: request.decision_note.clone().unwrap_or_default(),
            },
            "cancelled" => RequestState::Cancelled { by: by() },
            "expired" => RequestState::Expired,
            _ => RequestState::Pending {
                approvals: u32::try_from(request.approvals.len()).unwrap_or_default(),
                required: u32::try_from(request.required_approvals).unwrap_or(1),
            },
        };
        OverrideRequestView {
            request_id: request.id,
            pr,
            requester: format!("@{}", request.requested_by),
            reason: request.reason.clone(),
            violations: self.violation_lines(&request.violations),
            approvers: approver_mentions(request),
            state,
        }
    }

    fn alert_view(&self, alert: &AlertRow, pr: PrSummary) -> AlertView {
        let state = match (alert.status.as_str(), &alert.acknowledged_by) {
            ("acknowledged", by) => AlertState::Acknowledged {
                by: by.clone().unwrap_or_default(),
            },
            ("resolved", _) => AlertState::Resolved,
            _ => AlertState::Open,
        };
        AlertView {
            alert_id: alert.id,
            pr,
            rule_name: self.rule_name(&alert.rule_id),
            rule_id: alert.rule_id.clone(),
            violations: self.violation_lines(&alert.violations),
            state,
        }
    }

    fn rule_name(&self, rule_id: &str) -> Option<String> {
        let id = rule_id.parse().ok()?;
        self.engine.catalog().get(&id).map(|rule| rule.name.clone())
    }

    fn violation_lines(&self, stored: &serde_json::Value) -> Vec<ViolationLine> {
        let violations: Vec<Violation> = serde_json::from_value(stored.clone()).unwrap_or_default();
        violations
            .iter()
            .map(|v| ViolationLine {
                rule_id: v.rule_id.to_string(),
                rule_name: self.rule_name(v.rule_id.as_str()),
                location: v.path.as_ref().map(|path| match v.line {
                    Some(line) => format!("{path}:{line}"),
                    None => path.clone(),
                }),
                message: v.message.clone(),
            })
            .collect()
    }
}

/// The request's approvers as Slack shows them: a mention for those mapped in `slack_users`, so
/// that they are notified, the GitHub login or team otherwise.
fn approver_mentions(request: &OverrideRequestRow) -> Vec<String> {
    let settings = &request.settings;
    settings
        .approvers
        .iter()
        .map(|approver| match approver {
            Approver::User(login) => match settings.slack_user_of(login) {
                Some(slack_id) => format!("<@{slack_id}>"),
                None => format!("@{login}"),
            },
            Approver::Team(team) => team.to_string(),
        })
        .collect()
}

fn note_text(message: &SlackMessageRow) -> String {
    message
        .body
        .as_ref()
        .and_then(|b| b.get("text"))
        .and_then(|t| t.as_str())
        .unwrap_or_default()
        .to_owned()
}
