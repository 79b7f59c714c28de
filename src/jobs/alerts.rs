//! Tier 1 alerts. After each evaluation, a BLOCK violation no alert has reported yet raises one
//! (at most one per pull request and rule an hour), sent to Slack and by email to the Tier 1
//! recipients, and schedules its escalation; alerts whose violations are gone or overridden are
//! resolved. The `escalate_alert` job escalates an alert still open when its window ends, once:
//! in Slack, by email to the escalation recipients, and to PagerDuty, each where configured.

use super::notify::{follow_up_pagerduty, queue_email, queue_pagerduty};
use super::slack::enqueue_slack_send;
use super::{Job, JobContext, JobError};
use crate::config::{AlertSettings, SlackSettings};
use crate::domain::{Overrides, Tier, Violation};
use crate::github::events::PrTarget;
use crate::github::{GithubApp, PullRequestState};
use crate::store::{self, AuditEntry, EmailKind, NewAlert, NewSlackMessage, SlackSubject};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// The same pull request and rule alert at most once in this window.
pub const ALERT_DEDUP_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Where alerts go and when they escalate. Alerts are raised when at least one channel is on.
#[derive(Debug, Clone)]
pub struct AlertPolicy {
    pub slack: Option<SlackSettings>,
    pub email: bool,
    pub pagerduty: bool,
    /// The deployment's default; an installation's `alerts.escalation.tier1_minutes` wins.
    pub escalate_after: Duration,
}

/// Raises and resolves the pull request's alerts after an evaluation of `head_sha`, in one
/// transaction. `alerts` is the installation's `alerts` config (recipients, escalation window).
pub async fn reconcile_alerts(
    pool: &PgPool,
    policy: &AlertPolicy,
    alerts: &AlertSettings,
    target: &PrTarget,
    head_sha: &str,
    violations: &[Violation],
    overrides: &Overrides,
) -> Result<(), sqlx::Error> {
    let escalate_after = alerts.tier1_escalation.unwrap_or(policy.escalate_after);
    let mut blocking: BTreeMap<&str, Vec<&Violation>> = BTreeMap::new();
    for violation in violations
        .iter()
        .filter(|v| v.tier == Tier::Block && overrides.covering(v).is_none())
    {
        blocking
            .entry(violation.rule_id.as_str())
            .or_default()
            .push(violation);
    }
    let mut tx = pool.begin().await?;
    let number = i64::try_from(target.number).unwrap_or(i64::MAX);
    store::lock_pull_request(&mut tx, target.repo.id, number).await?;
    let blocking_fingerprints: BTreeSet<&str> = blocking
        .values()
        .flatten()
        .map(|v| v.fingerprint.as_str())
        .collect();
    for alert in store::open_alerts(&mut tx, target).await? {
        let still_blocking = alert
            .fingerprints
            .iter()
            .any(|f| blocking_fingerprints.contains(f.as_str()));
        if still_blocking {
            continue;
        }
        resolve(&mut tx, target, &alert).await?;
    }
    for (rule_id, group) in blocking {
        let (reported, recent) =
            store::alert_history(&mut tx, target, rule_id, ALERT_DEDUP_WINDOW).await?;
        let is_new = group
            .iter()
            .any(|v| !reported.iter().any(|f| f == v.fingerprint.as_str()));
        if !is_new {
            continue;
        }
        if recent {
            tracing::info!(
                rule = rule_id,
                "alert suppressed: one was raised within the hour"
            );
            continue;
        }
        let alert = store::insert_alert(
            &mut tx,
            &NewAlert {
                target,
                rule_id,
                head_sha,
                fingerprints: group.iter().map(|v| v.fingerprint.to_string()).collect(),
                violations: serde_json::to_value(&group).unwrap_or_default(),
                escalate_after,
            },
        )
        .await?;
        store::audit(
            &mut tx,
            &AuditEntry {
                installation_id: target.installation_id,
                actor: "tollgate",
                action: "alert.raised",
                target: &alert.audit_target(),
                before: None,
                after: Some(alert.audit_state()),
            },
        )
        .await?;
        if let Some(slack) = &policy.slack {
            let message_id = store::upsert_slack_message(
                &mut tx,
                &NewSlackMessage {
                    target,
                    subject: SlackSubject::Alert,
                    subject_id: Some(alert.id),
                    channel: &slack.channel,
                    user_id: None,
                    body: None,
                },
            )
            .await?;
            enqueue_slack_send(&mut tx, target.installation_id, message_id).await?;
        }
        if policy.email {
            queue_email(
                &mut tx,
                target.installation_id,
                EmailKind::Alert,
                alert.id,
                &alerts.recipients.tier1,
            )
            .await?;
        }
        let escalation = EscalateAlert {
            alert_id: alert.id,
            target: target.clone(),
        };
        let installation = Some(target.installation_id);
        super::enqueue_delayed(&mut tx, installation, &escalation, escalate_after).await?;
        tracing::info!(rule = rule_id, alert = alert.id, "Tier 1 alert raised");
    }
    tx.commit().await
}

/// Resolves an open alert, records it and queues the edit of its Slack message.
async fn resolve(
    tx: &mut PgConnection,
    target: &PrTarget,
    alert: &store::AlertRow,
) -> Result<(), sqlx::Error> {
    if let Some(resolved) = store::close_alert(tx, alert.id, "resolved", None).await? {
        record_change(tx, "alert.resolved", alert, &resolved).await?;
        resend_alert_message(tx, target, resolved.id).await?;
        follow_up_pagerduty(tx, resolved.installation_id, resolved.id, "resolve").await?;
    }
    Ok(())
}

/// Acknowledges an open alert for `actor` (shown as `shown_as` on the alert), from Slack, an
/// email link or the dashboard: records it, edits the Slack message and acknowledges the
/// PagerDuty incident. The one acknowledge path: every channel must call it.
/// `None` when the alert does not exist or was not open.
pub async fn acknowledge_alert(
    tx: &mut PgConnection,
    alert_id: i64,
    shown_as: &str,
    actor: &str,
) -> Result<Option<store::AlertRow>, sqlx::Error> {
    let Some(before) = store::alert(tx, alert_id).await? else {
        return Ok(None);
    };
    let Some(after) = store::close_alert(tx, alert_id, "acknowledged", Some(shown_as)).await?
    else {
        tracing::info!(alert = alert_id, status = %before.status, "alert already closed");
        return Ok(None);
    };
    store::audit(
        tx,
        &AuditEntry {
            installation_id: after.installation_id,
            actor,
            action: "alert.acknowledged",
            target: &after.audit_target(),
            before: Some(before.audit_state()),
            after: Some(after.audit_state()),
        },
    )
    .await?;
    if let Some(message) = store::slack_message_of(tx, SlackSubject::Alert, alert_id).await? {
        enqueue_slack_send(tx, after.installation_id, message.id).await?;
    }
    follow_up_pagerduty(tx, after.installation_id, alert_id, "acknowledge").await?;
    tracing::info!(alert = alert_id, by = actor, "alert acknowledged");
    Ok(Some(after))
}

/// Queues an edit of an alert's Slack message, when it has one.
pub async fn resend_alert_message(
    tx: &mut PgConnection,
    target: &PrTarget,
    alert_id: i64,
) -> Result<(), sqlx::Error> {
    if let Some(message) = store::slack_message_of(tx, SlackSubject::Alert, alert_id).await? {
        enqueue_slack_send(tx, target.installation_id, message.id).await?;
    }
    Ok(())
}

async fn record_change(
    tx: &mut PgConnection,
    action: &str,
    before: &store::AlertRow,
    after: &store::AlertRow,
) -> Result<(), sqlx::Error> {
    store::audit(
        tx,
        &AuditEntry {
            installation_id: after.installation_id,
            actor: "tollgate",
            action,
            target: &after.audit_target(),
            before: Some(before.audit_state()),
            after: Some(after.audit_state()),
        },
    )
    .await
}

/// The `escalate_alert` job: escalates a Tier 1 alert still open at the end of its window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscalateAlert {
    pub alert_id: i64,
    pub target: PrTarget,
}

impl Job for EscalateAlert {
    const KIND: &'static str = "escalate_alert";
    const MAX_ATTEMPTS: i32 = super::DEFAULT_MAX_ATTEMPTS;
    const URGENT: bool = true;

    fn dedup_key(&self) -> String {
        format!("escalate:{}", self.alert_id)
    }

    fn pull_request(&self) -> Option<&PrTarget> {
        Some(&self.target)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let handlers = ctx.handlers;
        let Some(policy) = &handlers.alerts else {
            return Err(JobError::Permanent("no alert channel is configured".into()));
        };
        escalate_alert(
            &handlers.pool,
            policy,
            &handlers.github,
            self.alert_id,
            &self.target,
        )
        .await
    }
}

/// Escalates an alert that is still open at the end of its window; an acknowledged or resolved
/// alert, or one already escalated, needs nothing. An alert of a pull request closed in the
/// meantime is resolved instead: nobody needs waking for it.
async fn escalate_alert(
    pool: &PgPool,
    policy: &AlertPolicy,
    github: &GithubApp,
    alert_id: i64,
    target: &PrTarget,
) -> Result<(), JobError> {
    let pr = super::installation_client(github, target.installation_id)?
        .pull_request(&target.repo.owner, &target.repo.name, target.number)
        .await?;
    let mut tx = pool.begin().await?;
    if pr.state == PullRequestState::Closed {
        if let Some(alert) = store::alert(&mut tx, alert_id).await? {
            resolve(&mut tx, target, &alert).await?;
        }
        tx.commit().await?;
        tracing::info!(
            alert = alert_id,
            "pull request closed: alert resolved, not escalated"
        );
        return Ok(());
    }
    let Some(before) = store::alert(&mut tx, alert_id).await? else {
        return Err(JobError::Permanent(format!("no alert {alert_id}")));
    };
    let Some(escalated) = store::mark_escalated(&mut tx, alert_id).await? else {
        if before.status == "open" && before.escalated_at.is_none() {
            // Not due yet (the window was lengthened): try again when it is.
            let wait = (before.escalate_at - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            return Err(JobError::Retry {
                message: "escalation not due yet".to_owned(),
                after: Some(wait),
            });
        }
        tracing::info!(alert = alert_id, status = %before.status, "no escalation needed");
        return Ok(());
    };
    record_change(&mut tx, "alert.escalated", &before, &escalated).await?;
    if let Some(slack) = &policy.slack {
        let channel = slack
            .escalation_channel
            .as_deref()
            .unwrap_or(&slack.channel);
        let message_id = store::upsert_slack_message(
            &mut tx,
            &NewSlackMessage {
                target,
                subject: SlackSubject::Escalation,
                subject_id: Some(alert_id),
                channel,
                user_id: None,
                body: None,
            },
        )
        .await?;
        enqueue_slack_send(&mut tx, target.installation_id, message_id).await?;
    }
    if policy.email {
        let config =
            super::installation_config::cached_config(pool, target.installation_id).await?;
        queue_email(
            &mut tx,
            target.installation_id,
            EmailKind::AlertEscalation,
            alert_id,
            &config.alerts.recipients.escalation,
        )
        .await?;
    }
    if policy.pagerduty {
        queue_pagerduty(&mut tx, target.installation_id, alert_id, "trigger").await?;
    }
    tx.commit().await?;
    tracing::info!(alert = alert_id, "alert escalated");
    Ok(())
}
