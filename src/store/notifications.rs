//! The installation config cache, email and PagerDuty outboxes, digests and their contents,
//! acknowledge links, and delivery figures.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::time::Duration;

/// The installation config in force, and what was wrong with the file when it was last read.
#[derive(Debug, Clone)]
pub struct CachedInstallationConfig {
    pub installation_id: i64,
    pub account_login: String,
    /// The last valid file; `None`: no file, or none valid yet (defaults).
    pub content: Option<String>,
    /// Why the file as last read cannot be used; `content` stays in force meanwhile.
    pub error: Option<String>,
    pub fetched_at: DateTime<Utc>,
}

fn cached_config_from_row(row: &PgRow) -> CachedInstallationConfig {
    CachedInstallationConfig {
        installation_id: row.get("installation_id"),
        account_login: row.get("account_login"),
        content: row.get("content"),
        error: row.get("error"),
        fetched_at: row.get("fetched_at"),
    }
}

pub async fn cached_installation_config(
    conn: &mut PgConnection,
    installation_id: i64,
) -> Result<Option<CachedInstallationConfig>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.installation_id, i.account_login, c.content, c.error, c.fetched_at
         FROM installation_configs c JOIN installations i ON i.id = c.installation_id
         WHERE c.installation_id = $1",
    )
    .bind(installation_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.as_ref().map(cached_config_from_row))
}

/// The configs of every active installation that has one cached.
pub async fn cached_installation_configs(
    pool: &PgPool,
) -> Result<Vec<CachedInstallationConfig>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.installation_id, i.account_login, c.content, c.error, c.fetched_at
         FROM installation_configs c JOIN installations i ON i.id = c.installation_id
         WHERE i.active ORDER BY c.installation_id",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().map(cached_config_from_row).collect())
}

/// Active installations whose config was never read or was read longer than `max_age` ago.
pub async fn installations_needing_config(
    pool: &PgPool,
    max_age: Duration,
) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT i.id FROM installations i
         LEFT JOIN installation_configs c ON c.installation_id = i.id
         WHERE i.active AND (c.fetched_at IS NULL OR c.fetched_at < now() - make_interval(secs => $1))
         ORDER BY i.id",
    )
    .bind(max_age.as_secs_f64())
    .fetch_all(pool)
    .await
}

pub async fn installation_account(
    pool: &PgPool,
    installation_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT account_login FROM installations WHERE id = $1")
        .bind(installation_id)
        .fetch_optional(pool)
        .await
}

/// Records the file as read: its text when it is valid (`error` `None`), else only its error,
/// so the last valid text stays in force. Returns the text in force.
pub async fn save_installation_config(
    pool: &PgPool,
    installation_id: i64,
    content: Option<&str>,
    error: Option<&str>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO installation_configs (installation_id, content, error, fetched_at)
         VALUES ($1, CASE WHEN $3::text IS NULL THEN $2 END, $3, now())
         ON CONFLICT (installation_id) DO UPDATE
             SET content = CASE WHEN EXCLUDED.error IS NULL THEN EXCLUDED.content
                                ELSE installation_configs.content END,
                 error = EXCLUDED.error, fetched_at = now()
         RETURNING content",
    )
    .bind(installation_id)
    .bind(content)
    .bind(error)
    .fetch_one(pool)
    .await
}

/// What an email is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailKind {
    Alert,
    AlertEscalation,
    Digest,
    DigestEscalation,
}

impl EmailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert => "alert",
            Self::AlertEscalation => "alert_escalation",
            Self::Digest => "digest",
            Self::DigestEscalation => "digest_escalation",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::Alert,
            Self::AlertEscalation,
            Self::Digest,
            Self::DigestEscalation,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

#[derive(Debug, Clone)]
pub struct EmailMessageRow {
    pub id: i64,
    pub installation_id: i64,
    pub kind: EmailKind,
    pub subject_id: i64,
    pub recipients: Vec<String>,
    pub message_id: String,
    pub status: String,
}

/// Records an email to send; `None` when one of this kind was already recorded for the subject.
pub async fn insert_email_message(
    tx: &mut PgConnection,
    installation_id: i64,
    kind: EmailKind,
    subject_id: i64,
    recipients: &[String],
    message_id: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO email_messages (installation_id, kind, subject_id, recipients, message_id)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (kind, subject_id) DO NOTHING RETURNING id",
    )
    .bind(installation_id)
    .bind(kind.as_str())
    .bind(subject_id)
    .bind(recipients)
    .bind(message_id)
    .fetch_optional(tx)
    .await
}

pub async fn email_message(pool: &PgPool, id: i64) -> Result<Option<EmailMessageRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, installation_id, kind, subject_id, recipients, message_id, status
         FROM email_messages WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|row| {
        Some(EmailMessageRow {
            id: row.get("id"),
            installation_id: row.get("installation_id"),
            kind: EmailKind::parse(row.get("kind"))?,
            subject_id: row.get("subject_id"),
            recipients: row.get("recipients"),
            message_id: row.get("message_id"),
            status: row.get("status"),
        })
    }))
}

/// Records one attempt at an email: sent (with the relay's answer) or failed (with the error;
/// `give_up` marks the message failed for good).
pub async fn record_email_attempt(
    pool: &PgPool,
    message: &EmailMessageRow,
    outcome: Result<&str, (&str, bool)>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let (status, response, error) = match outcome {
        Ok(response) => ("sent", Some(response), None),
        Err((error, true)) => ("failed", None, Some(error)),
        Err((error, false)) => ("pending", None, Some(error)),
    };
    sqlx::query(
        "UPDATE email_messages SET status = $2, attempts = attempts + 1,
             smtp_response = COALESCE($3, smtp_response), last_error = COALESCE($4, last_error),
             sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
         WHERE id = $1",
    )
    .bind(message.id)
    .bind(status)
    .bind(response)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    insert_attempt(
        &mut tx,
        message.installation_id,
        "email",
        &format!("email_message:{}", message.id),
        error,
    )
    .await?;
    tx.commit().await
}

async fn insert_attempt(
    tx: &mut PgConnection,
    installation_id: i64,
    channel: &str,
    target: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO notification_attempts (installation_id, channel, target, outcome, error)
         VALUES ($1, $2, $3, CASE WHEN $4::text IS NULL THEN 'sent' ELSE 'failed' END, $4)",
    )
    .bind(installation_id)
    .bind(channel)
    .bind(target)
    .bind(error)
    .execute(tx)
    .await
    .map(|_| ())
}

/// A PagerDuty event to send.
#[derive(Debug, Clone)]
pub struct PagerDutyEventRow {
    pub id: i64,
    pub installation_id: i64,
    pub alert_id: i64,
    pub action: String,
    pub dedup_key: String,
    pub status: String,
}

/// Records a PagerDuty event for an alert; `None` when this action was already recorded.
pub async fn insert_pagerduty_event(
    tx: &mut PgConnection,
    installation_id: i64,
    alert_id: i64,
    action: &str,
    dedup_key: &str,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO pagerduty_events (installation_id, alert_id, action, dedup_key)
         VALUES ($1, $2, $3, $4) ON CONFLICT (alert_id, action) DO NOTHING RETURNING id",
    )
    .bind(installation_id)
    .bind(alert_id)
    .bind(action)
    .bind(dedup_key)
    .fetch_optional(tx)
    .await
}

/// Whether an incident was opened (or is being opened) for the alert.
pub async fn pagerduty_triggered(
    tx: &mut PgConnection,
    alert_id: i64,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pagerduty_events WHERE alert_id = $1 AND action = 'trigger')",
    )
    .bind(alert_id)
    .fetch_one(tx)
    .await
}

pub async fn pagerduty_event(
    pool: &PgPool,
    id: i64,
) -> Result<Option<PagerDutyEventRow>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, installation_id, alert_id, action, dedup_key, status
         FROM pagerduty_events WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| PagerDutyEventRow {
        id: row.get("id"),
        installation_id: row.get("installation_id"),
        alert_id: row.get("alert_id"),
        action: row.get("action"),
        dedup_key: row.get("dedup_key"),
        status: row.get("status"),
    }))
}

pub async fn record_pagerduty_attempt(
    pool: &PgPool,
    event: &PagerDutyEventRow,
    error: Option<(&str, bool)>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let status = match error {
        None => "sent",
        Some((_, true)) => "failed",
        Some((_, false)) => "pending",
    };
    let message = error.map(|(message, _)| message);
    sqlx::query(
        "UPDATE pagerduty_events SET status = $2, attempts = attempts + 1,
             last_error = COALESCE($3, last_error),
             sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END
         WHERE id = $1",
    )
    .bind(event.id)
    .bind(status)
    .bind(message)
    .execute(&mut *tx)
    .await?;
    insert_attempt(
        &mut tx,
        event.installation_id,
        "pagerduty",
        &format!("pagerduty_event:{}", event.id),
        message,
    )
    .await?;
    tx.commit().await
}

/// A digest period, once claimed.
#[derive(Debug, Clone)]
pub struct DigestRow {
    pub id: i64,
    pub installation_id: i64,
    pub tier: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub item_count: i32,
    pub status: String,
    pub acknowledged_by: Option<String>,
}

macro_rules! digest_columns {
    () => {
        "id, installation_id, tier, period_start, period_end, item_count, status, acknowledged_by"
    };
}

fn digest_from_row(row: &PgRow) -> DigestRow {
    DigestRow {
        id: row.get("id"),
        installation_id: row.get("installation_id"),
        tier: row.get("tier"),
        period_start: row.get("period_start"),
        period_end: row.get("period_end"),
        item_count: row.get("item_count"),
        status: row.get("status"),
        acknowledged_by: row.get("acknowledged_by"),
    }
}

/// A digest period to decide.
pub struct NewDigest<'a> {
    pub installation_id: i64,
    pub tier: &'a str,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub item_count: i64,
    pub status: &'a str,
}

/// Claims a digest period; `None` when another process (or an earlier run) already decided it.
pub async fn claim_digest(
    tx: &mut PgConnection,
    digest: &NewDigest<'_>,
) -> Result<Option<DigestRow>, sqlx::Error> {
    let sql = concat!(
        "INSERT INTO digests (installation_id, tier, period_start, period_end, item_count, status)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (installation_id, tier, period_start) DO NOTHING RETURNING ",
        digest_columns!()
    );
    let row = sqlx::query(sql)
        .bind(digest.installation_id)
        .bind(digest.tier)
        .bind(digest.period_start)
        .bind(digest.period_end)
        .bind(i32::try_from(digest.item_count).unwrap_or(i32::MAX))
        .bind(digest.status)
        .fetch_optional(tx)
        .await?;
    Ok(row.as_ref().map(digest_from_row))
}

pub async fn digest_claimed(
    pool: &PgPool,
    installation_id: i64,
    tier: &str,
    period_start: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM digests
             WHERE installation_id = $1 AND tier = $2 AND period_start = $3)",
    )
    .bind(installation_id)
    .bind(tier)
    .bind(period_start)
    .fetch_one(pool)
    .await
}

pub async fn digest(conn: &mut PgConnection, id: i64) -> Result<Option<DigestRow>, sqlx::Error> {
    let sql = concat!("SELECT ", digest_columns!(), " FROM digests WHERE id = $1");
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(digest_from_row))
}

/// Acknowledges a digest not yet acknowledged; `None` when it already was (or does not exist).
pub async fn acknowledge_digest(
    tx: &mut PgConnection,
    id: i64,
    by: &str,
) -> Result<Option<DigestRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE digests SET acknowledged_by = $2, acknowledged_at = now()
         WHERE id = $1 AND acknowledged_at IS NULL RETURNING ",
        digest_columns!()
    );
    let row = sqlx::query(sql)
        .bind(id)
        .bind(by)
        .fetch_optional(tx)
        .await?;
    Ok(row.as_ref().map(digest_from_row))
}

/// Marks an unacknowledged digest escalated; `None` when it needs no escalation.
pub async fn mark_digest_escalated(
    tx: &mut PgConnection,
    id: i64,
) -> Result<Option<DigestRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE digests SET escalated_at = now()
         WHERE id = $1 AND acknowledged_at IS NULL AND escalated_at IS NULL RETURNING ",
        digest_columns!()
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(tx).await?;
    Ok(row.as_ref().map(digest_from_row))
}

/// Tier 2 emails (digests and their escalations) recorded for an installation since `since`.
pub async fn tier2_emails_since(
    pool: &PgPool,
    installation_id: i64,
    since: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM email_messages m JOIN digests d ON d.id = m.subject_id
         WHERE m.kind IN ('digest', 'digest_escalation') AND d.tier = 'OVERRIDE'
           AND m.installation_id = $1 AND m.created_at >= $2",
    )
    .bind(installation_id)
    .bind(since)
    .fetch_one(pool)
    .await
}

/// Distinct violations of one tier (by pull request and fingerprint) first seen in a period,
/// counted per repository and rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViolationGroup {
    pub repository: String,
    pub rule_id: String,
    pub count: i64,
    /// The pull requests concerned, newest first.
    pub pr_numbers: Vec<i32>,
}

pub async fn violation_groups(
    pool: &PgPool,
    installation_id: i64,
    tier: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<ViolationGroup>, sqlx::Error> {
    let rows = sqlx::query(
        "WITH first_seen AS (
             SELECT e.repository_id, e.pr_number, v.rule_id, v.fingerprint,
                    min(v.created_at) AS seen_at
             FROM violations v JOIN evaluations e ON e.id = v.evaluation_id
             WHERE v.installation_id = $1 AND v.tier = $2
             GROUP BY e.repository_id, e.pr_number, v.rule_id, v.fingerprint)
         SELECT r.full_name, f.rule_id, count(*) AS count,
                array_agg(DISTINCT f.pr_number) AS prs
         FROM first_seen f JOIN repositories r ON r.id = f.repository_id
         WHERE f.seen_at >= $3 AND f.seen_at < $4
         GROUP BY r.full_name, f.rule_id
         ORDER BY count(*) DESC, r.full_name, f.rule_id",
    )
    .bind(installation_id)
    .bind(tier)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let mut pr_numbers: Vec<i32> = row.get("prs");
            pr_numbers.sort_unstable_by(|a, b| b.cmp(a));
            ViolationGroup {
                repository: row.get("full_name"),
                rule_id: row.get("rule_id"),
                count: row.get("count"),
                pr_numbers,
            }
        })
        .collect())
}

/// An override granted in a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantedOverride {
    pub repository: String,
    pub pr_number: i32,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub reason: String,
    pub rules: Vec<String>,
}

pub async fn overrides_granted(
    pool: &PgPool,
    installation_id: i64,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<GrantedOverride>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT r.full_name, o.pr_number, o.requested_by, o.decided_by, o.reason,
                ARRAY(SELECT DISTINCT v->>'rule_id' FROM jsonb_array_elements(o.violations) v
                      ORDER BY 1) AS rules
         FROM override_requests o JOIN repositories r ON r.id = o.repository_id
         WHERE o.installation_id = $1 AND o.status = 'approved'
           AND COALESCE(o.decided_at, o.created_at) >= $2
           AND COALESCE(o.decided_at, o.created_at) < $3
         ORDER BY COALESCE(o.decided_at, o.created_at), o.id",
    )
    .bind(installation_id)
    .bind(start)
    .bind(end)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| GrantedOverride {
            repository: row.get("full_name"),
            pr_number: row.get("pr_number"),
            requested_by: row.get("requested_by"),
            approved_by: row.get("decided_by"),
            reason: row.get("reason"),
            rules: row
                .get::<Vec<Option<String>>, _>("rules")
                .into_iter()
                .flatten()
                .collect(),
        })
        .collect())
}

/// Uses up an acknowledge link's nonce; false when it was used before.
pub async fn use_ack_nonce(tx: &mut PgConnection, nonce: &str) -> Result<bool, sqlx::Error> {
    let inserted: Option<String> = sqlx::query_scalar(
        "INSERT INTO used_ack_links (nonce) VALUES ($1) ON CONFLICT DO NOTHING RETURNING nonce",
    )
    .bind(nonce)
    .fetch_optional(tx)
    .await?;
    Ok(inserted.is_some())
}
