//! The `send_email` and `send_pagerduty` jobs, and how emails and PagerDuty events are queued.
//!
//! Both are outboxes: a row recorded in the transaction of the change it reports, then a job
//! that sends it. An email is rendered from its subject's current state when the job runs and
//! sent under the Message-ID chosen when it was recorded, so a retry after a crash between the
//! relay's answer and our record re-sends the same message (relays that deduplicate by
//! Message-ID drop it) and a message recorded as sent is never sent again.

use super::digests::DigestContent;
use super::{Job, JobContext, JobError};
use crate::config::AppSettings;
use crate::domain::Violation;
use crate::notify::email::{AlertEmail, Mailer, RenderedEmail, SmtpError, ViolationLine};
use crate::notify::links::{ACK_LINK_LIFETIME, AckSubject, LinkSigner};
use crate::notify::pagerduty::{
    EventLink, EventPayload, PagerDutyClient, PagerDutyError, PagerDutyEvent,
};
use crate::policy::PolicyEngine;
use crate::store::{self, EmailKind, EmailMessageRow};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// Attempts before an email or PagerDuty event is given up (about 17 minutes of backoff).
const OUTBOX_ATTEMPTS: i32 = 10;

/// The `send_email` job: sends one recorded email.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendEmail {
    pub email_id: i64,
}

impl Job for SendEmail {
    const KIND: &'static str = "send_email";
    const MAX_ATTEMPTS: i32 = OUTBOX_ATTEMPTS;
    const URGENT: bool = true;

    fn dedup_key(&self) -> String {
        format!("email:{}", self.email_id)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let Some(email) = &ctx.handlers.email else {
            return Err(JobError::Permanent("email is not configured".into()));
        };
        email.run(self.email_id, ctx.last_attempt()).await
    }
}

/// The `send_pagerduty` job: sends one recorded PagerDuty event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendPagerDuty {
    pub event_id: i64,
}

impl Job for SendPagerDuty {
    const KIND: &'static str = "send_pagerduty";
    const MAX_ATTEMPTS: i32 = OUTBOX_ATTEMPTS;
    const URGENT: bool = true;

    fn dedup_key(&self) -> String {
        format!("pagerduty:{}", self.event_id)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let Some(pagerduty) = &ctx.handlers.pagerduty else {
            return Err(JobError::Permanent("PagerDuty is not configured".into()));
        };
        pagerduty.run(self.event_id, ctx.last_attempt()).await
    }
}

/// Records an email to `recipients` about a subject and queues its sending, in the caller's
/// transaction. Nothing happens without recipients, or when this email was already recorded.
pub async fn queue_email(
    tx: &mut PgConnection,
    installation_id: i64,
    kind: EmailKind,
    subject_id: i64,
    recipients: &[String],
) -> Result<(), sqlx::Error> {
    if recipients.is_empty() {
        return Ok(());
    }
    let message_id = format!(
        "{}-{subject_id}.{}@tollgate",
        kind.as_str().replace('_', "-"),
        uuid::Uuid::new_v4().simple()
    );
    let Some(id) = store::insert_email_message(
        tx,
        installation_id,
        kind,
        subject_id,
        recipients,
        &message_id,
    )
    .await?
    else {
        return Ok(());
    };
    let job = SendEmail { email_id: id };
    super::enqueue(tx, Some(installation_id), &job)
        .await
        .map(drop)
}

/// Records a PagerDuty event for an alert and queues it. The dedup key is the alert's, so all
/// of its events concern one incident.
pub async fn queue_pagerduty(
    tx: &mut PgConnection,
    installation_id: i64,
    alert_id: i64,
    action: &str,
) -> Result<(), sqlx::Error> {
    let dedup_key = format!("tollgate-alert-{alert_id}");
    let Some(id) =
        store::insert_pagerduty_event(tx, installation_id, alert_id, action, &dedup_key).await?
    else {
        return Ok(());
    };
    let job = SendPagerDuty { event_id: id };
    super::enqueue(tx, Some(installation_id), &job)
        .await
        .map(drop)
}

/// Closes the incident of an alert that stopped needing attention, if one was opened.
pub async fn follow_up_pagerduty(
    tx: &mut PgConnection,
    installation_id: i64,
    alert_id: i64,
    action: &str,
) -> Result<(), sqlx::Error> {
    if store::pagerduty_triggered(tx, alert_id).await? {
        queue_pagerduty(tx, installation_id, alert_id, action).await?;
    }
    Ok(())
}

/// Links people follow from an email.
#[derive(Clone)]
pub struct EmailLinks {
    pub github_web_url: String,
    /// `None` without `PUBLIC_URL`: emails then carry no acknowledge or dashboard link.
    pub public_url: Option<String>,
    pub signer: LinkSigner,
}

impl EmailLinks {
    pub fn new(settings: &AppSettings) -> Self {
        Self {
            github_web_url: settings.github_web_url(),
            public_url: settings.public_url.clone(),
            signer: LinkSigner::from_webhook_secrets(&settings.webhook_secrets),
        }
    }

    pub fn pull_request(&self, repository: &str, number: i32) -> String {
        format!("{}/{repository}/pull/{number}", self.github_web_url)
    }

    pub fn acknowledge(&self, subject: AckSubject) -> Option<String> {
        let base = self.public_url.as_deref()?;
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let token = self
            .signer
            .sign(subject, chrono::Utc::now() + ACK_LINK_LIFETIME, &nonce);
        Some(format!("{base}/alerts/ack/{token}"))
    }

    pub fn dashboard(&self) -> Option<String> {
        self.public_url
            .as_deref()
            .map(|base| format!("{base}/dashboard/"))
    }
}

pub struct EmailSender {
    pool: PgPool,
    mailer: Mailer,
    engine: Arc<PolicyEngine>,
    links: EmailLinks,
}

impl From<SmtpError> for JobError {
    fn from(error: SmtpError) -> Self {
        match error {
            SmtpError::Permanent(message) => JobError::Permanent(format!("SMTP: {message}")),
            SmtpError::Transient(message) => JobError::Retry {
                message: format!("SMTP: {message}"),
                after: None,
            },
        }
    }
}

impl EmailSender {
    pub fn new(pool: PgPool, mailer: Mailer, engine: Arc<PolicyEngine>, links: EmailLinks) -> Self {
        Self {
            pool,
            mailer,
            engine,
            links,
        }
    }

    /// Sends email `email_id`; `last_attempt` marks it failed for good when this try fails.
    pub async fn run(&self, email_id: i64, last_attempt: bool) -> Result<(), JobError> {
        let Some(message) = store::email_message(&self.pool, email_id).await? else {
            return Err(JobError::Permanent(format!("no email {email_id}")));
        };
        if message.status == "sent" {
            tracing::info!(email = email_id, "already sent");
            return Ok(());
        }
        let rendered = self.render(&message).await?;
        match self
            .mailer
            .send(&message.message_id, &message.recipients, &rendered)
            .await
        {
            Ok(response) => {
                crate::telemetry::metrics::record_notification("email", "sent");
                store::record_email_attempt(&self.pool, &message, Ok(&response)).await?;
                tracing::info!(email = email_id, kind = message.kind.as_str(), "email sent");
                Ok(())
            }
            Err(error) => {
                let text = error.to_string();
                let give_up = last_attempt || matches!(error, SmtpError::Permanent(_));
                crate::telemetry::metrics::record_notification("email", "failed");
                store::record_email_attempt(&self.pool, &message, Err((&text, give_up))).await?;
                Err(error.into())
            }
        }
    }

    async fn render(&self, message: &EmailMessageRow) -> Result<RenderedEmail, JobError> {
        match message.kind {
            EmailKind::Alert | EmailKind::AlertEscalation => {
                let view = self
                    .alert_email(
                        message.subject_id,
                        message.kind == EmailKind::AlertEscalation,
                    )
                    .await?;
                Ok(view.render())
            }
            EmailKind::Digest | EmailKind::DigestEscalation => {
                let content = DigestContent::load(
                    &self.pool,
                    &self.engine,
                    &self.links,
                    message.subject_id,
                    message.kind == EmailKind::DigestEscalation,
                )
                .await?;
                Ok(content.render())
            }
        }
    }

    async fn alert_email(&self, alert_id: i64, escalated: bool) -> Result<AlertEmail, JobError> {
        let mut conn = self.pool.acquire().await?;
        let Some(alert) = store::alert(&mut conn, alert_id).await? else {
            return Err(JobError::Permanent(format!("no alert {alert_id}")));
        };
        let Some(pr) =
            store::pull_request_record(&mut conn, alert.repository_id, alert.pr_number).await?
        else {
            return Err(JobError::Permanent(format!(
                "no pull request for alert {alert_id}"
            )));
        };
        drop(conn);
        let organisation = store::installation_account(&self.pool, alert.installation_id)
            .await?
            .unwrap_or_default();
        let rule = alert
            .rule_id
            .parse()
            .ok()
            .and_then(|id| self.engine.catalog().get(&id));
        let violations: Vec<Violation> =
            serde_json::from_value(alert.violations.clone()).unwrap_or_default();
        let status = match (alert.status.as_str(), &alert.acknowledged_by) {
            ("acknowledged", Some(by)) => format!("acknowledged by {by}"),
            (status, _) => status.to_owned(),
        };
        let window = (alert.escalate_at - alert.created_at).num_minutes();
        Ok(AlertEmail {
            organisation,
            pr_url: self.links.pull_request(&pr.repo_full_name, alert.pr_number),
            repository: pr.repo_full_name,
            pr_number: alert.pr_number,
            pr_title: pr.title,
            author: pr.author,
            rule_name: rule.map(|r| r.name.clone()).unwrap_or_default(),
            remediation: rule.map(|r| r.remediation.clone()).unwrap_or_default(),
            rule_id: alert.rule_id.clone(),
            violations: violations.iter().map(violation_line).collect(),
            status,
            escalated,
            escalation_minutes: u64::try_from(window).unwrap_or_default(),
            ack_url: (alert.status == "open")
                .then(|| self.links.acknowledge(AckSubject::Alert(alert.id)))
                .flatten(),
        })
    }
}

fn violation_line(violation: &Violation) -> ViolationLine {
    let location = match (&violation.path, violation.line) {
        (Some(path), Some(line)) => format!("{path}:{line}"),
        (Some(path), None) => path.clone(),
        (None, _) => "pull request".to_owned(),
    };
    ViolationLine {
        location,
        message: violation.message.clone(),
    }
}

pub struct PagerDutySender {
    pool: PgPool,
    client: PagerDutyClient,
    links: EmailLinks,
}

impl From<PagerDutyError> for JobError {
    fn from(error: PagerDutyError) -> Self {
        match error {
            PagerDutyError::Retryable { retry_after, .. } => JobError::Retry {
                message: error.to_string(),
                after: retry_after,
            },
            PagerDutyError::Refused(_) => JobError::Permanent(error.to_string()),
        }
    }
}

impl PagerDutySender {
    pub fn new(pool: PgPool, client: PagerDutyClient, links: EmailLinks) -> Self {
        Self {
            pool,
            client,
            links,
        }
    }

    pub async fn run(&self, event_id: i64, last_attempt: bool) -> Result<(), JobError> {
        let Some(event) = store::pagerduty_event(&self.pool, event_id).await? else {
            return Err(JobError::Permanent(format!(
                "no PagerDuty event {event_id}"
            )));
        };
        if event.status == "sent" {
            return Ok(());
        }
        let request = self.event(&event).await?;
        match self.client.send(&request).await {
            Ok(()) => {
                crate::telemetry::metrics::record_notification("pagerduty", "sent");
                store::record_pagerduty_attempt(&self.pool, &event, None).await?;
                tracing::info!(alert = event.alert_id, action = %event.action, "PagerDuty event sent");
                Ok(())
            }
            Err(error) => {
                let text = error.to_string();
                let give_up = last_attempt || matches!(error, PagerDutyError::Refused(_));
                crate::telemetry::metrics::record_notification("pagerduty", "failed");
                store::record_pagerduty_attempt(&self.pool, &event, Some((&text, give_up))).await?;
                Err(error.into())
            }
        }
    }

    async fn event(&self, event: &store::PagerDutyEventRow) -> Result<PagerDutyEvent, JobError> {
        if event.action != "trigger" {
            return Ok(PagerDutyEvent {
                event_action: event.action.clone(),
                dedup_key: event.dedup_key.clone(),
                payload: None,
                links: Vec::new(),
            });
        }
        let mut conn = self.pool.acquire().await?;
        let Some(alert) = store::alert(&mut conn, event.alert_id).await? else {
            return Err(JobError::Permanent(format!("no alert {}", event.alert_id)));
        };
        let pr = store::pull_request_record(&mut conn, alert.repository_id, alert.pr_number)
            .await?
            .ok_or_else(|| JobError::Permanent("no pull request for the alert".into()))?;
        let url = self.links.pull_request(&pr.repo_full_name, alert.pr_number);
        Ok(PagerDutyEvent {
            event_action: "trigger".to_owned(),
            dedup_key: event.dedup_key.clone(),
            payload: Some(EventPayload {
                summary: format!(
                    "Tollgate: unacknowledged Tier 1 BLOCK {} in {}#{}",
                    alert.rule_id, pr.repo_full_name, alert.pr_number
                ),
                source: pr.repo_full_name.clone(),
                severity: "critical",
                component: alert.rule_id.clone(),
                group: pr.repo_full_name.clone(),
                class: "policy_violation".to_owned(),
                custom_details: serde_json::json!({
                    "alert_id": alert.id,
                    "pull_request": url,
                    "title": pr.title,
                    "author": pr.author,
                    "violations": alert.violations,
                }),
            }),
            links: vec![EventLink {
                href: url,
                text: "Pull request".to_owned(),
            }],
        })
    }
}
