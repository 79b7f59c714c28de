//! The Slack messages the app sends, and every attempt at sending them.
//!
//! A message about an override request or an alert is one row per subject: the first send posts
//! it and records Slack's `ts`, later sends edit it in place. Notes and ephemeral messages are one
//! row each, posted once. A post is marked as requested before it is sent, so a retry knows when
//! an earlier attempt may have posted without recording the `ts`.

use super::overrides::pr_number;
use crate::github::events::PrTarget;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};

/// What a Slack message shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlackSubject {
    OverrideRequest,
    Alert,
    Escalation,
    Note,
    Ephemeral,
}

impl SlackSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            SlackSubject::OverrideRequest => "override_request",
            SlackSubject::Alert => "alert",
            SlackSubject::Escalation => "escalation",
            SlackSubject::Note => "note",
            SlackSubject::Ephemeral => "ephemeral",
        }
    }

    fn parse(stored: &str) -> Option<Self> {
        [
            SlackSubject::OverrideRequest,
            SlackSubject::Alert,
            SlackSubject::Escalation,
            SlackSubject::Note,
            SlackSubject::Ephemeral,
        ]
        .into_iter()
        .find(|s| s.as_str() == stored)
    }
}

#[derive(Debug, Clone)]
pub struct SlackMessageRow {
    pub id: i64,
    pub installation_id: i64,
    pub repository_id: i64,
    pub pr_number: i32,
    pub subject: SlackSubject,
    pub subject_id: Option<i64>,
    pub channel: String,
    pub thread_ts: Option<String>,
    pub user_id: Option<String>,
    pub body: Option<Value>,
    pub ts: Option<String>,
    pub status: String,
    /// When the first attempt to post it was made; set while `ts` is unknown, an earlier attempt
    /// may have posted it.
    pub post_requested_at: Option<DateTime<Utc>>,
}

/// The columns every query of this table reads, as a literal for `concat!` (static SQL,
/// no formatting at run time).
macro_rules! message_columns {
    () => {
        "id, installation_id, repository_id, pr_number, subject, subject_id, channel,
    thread_ts, user_id, body, ts, status, post_requested_at"
    };
}

fn message_from_row(row: &PgRow) -> Result<SlackMessageRow, sqlx::Error> {
    let subject: String = row.get("subject");
    Ok(SlackMessageRow {
        id: row.get("id"),
        installation_id: row.get("installation_id"),
        repository_id: row.get("repository_id"),
        pr_number: row.get("pr_number"),
        subject: SlackSubject::parse(&subject).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown Slack message subject {subject}").into())
        })?,
        subject_id: row.get("subject_id"),
        channel: row.get("channel"),
        thread_ts: row.get("thread_ts"),
        user_id: row.get("user_id"),
        body: row.get("body"),
        ts: row.get("ts"),
        status: row.get("status"),
        post_requested_at: row.get("post_requested_at"),
    })
}

/// A message to send.
#[derive(Debug, Clone)]
pub struct NewSlackMessage<'a> {
    pub target: &'a PrTarget,
    pub subject: SlackSubject,
    pub subject_id: Option<i64>,
    pub channel: &'a str,
    pub user_id: Option<&'a str>,
    pub body: Option<Value>,
}

/// Records a message to send and returns its id. For an override request, alert or escalation
/// the existing row of that subject is returned instead: it is edited, not posted again.
pub async fn upsert_slack_message(
    tx: &mut PgConnection,
    message: &NewSlackMessage<'_>,
) -> Result<i64, sqlx::Error> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO slack_messages (installation_id, repository_id, pr_number, subject,
             subject_id, channel, user_id, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (subject, subject_id)
             WHERE subject IN ('override_request', 'alert', 'escalation')
         DO UPDATE SET updated_at = now()
         RETURNING id",
    )
    .bind(message.target.installation_id)
    .bind(message.target.repo.id)
    .bind(pr_number(message.target.number))
    .bind(message.subject.as_str())
    .bind(message.subject_id)
    .bind(message.channel)
    .bind(message.user_id)
    .bind(&message.body)
    .fetch_optional(tx)
    .await?;
    inserted.ok_or(sqlx::Error::RowNotFound)
}

pub async fn slack_message(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<SlackMessageRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        message_columns!(),
        " FROM slack_messages WHERE id = $1"
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(message_from_row).transpose()
}

/// The message of an override request or alert, when one was recorded.
pub async fn slack_message_of(
    conn: &mut PgConnection,
    subject: SlackSubject,
    subject_id: i64,
) -> Result<Option<SlackMessageRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        message_columns!(),
        " FROM slack_messages WHERE subject = $1 AND subject_id = $2"
    );
    let row = sqlx::query(sql)
        .bind(subject.as_str())
        .bind(subject_id)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(message_from_row).transpose()
}

/// Records one attempt at a Slack call.
pub async fn record_slack_attempt(
    pool: &PgPool,
    message: &SlackMessageRow,
    method: &str,
    outcome: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO slack_attempts (message_id, installation_id, method, outcome, error)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(message.id)
    .bind(message.installation_id)
    .bind(method)
    .bind(outcome)
    .bind(error)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE slack_messages SET attempts = attempts + 1, last_error = $2,
             status = CASE WHEN $3 = 'sent' THEN 'sent' ELSE status END,
             sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END, updated_at = now()
         WHERE id = $1",
    )
    .bind(message.id)
    .bind(error)
    .bind(outcome)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Marks a message as given up on (its job ran out of attempts or cannot succeed).
pub async fn fail_slack_message(pool: &PgPool, id: i64, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE slack_messages SET status = 'failed', last_error = $2, updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records Slack's id of a posted message and, when the pull request has no Slack thread yet,
/// makes this message its thread.
pub async fn set_slack_ts(
    pool: &PgPool,
    message: &SlackMessageRow,
    channel: &str,
    ts: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("UPDATE slack_messages SET ts = $2, channel = $3 WHERE id = $1")
        .bind(message.id)
        .bind(ts)
        .bind(channel)
        .execute(&mut *tx)
        .await?;
    if message.thread_ts.is_none() && message.subject != SlackSubject::Ephemeral {
        sqlx::query(
            "UPDATE pull_requests SET slack_channel = $3, slack_thread_ts = $4
             WHERE repository_id = $1 AND number = $2 AND slack_thread_ts IS NULL",
        )
        .bind(message.repository_id)
        .bind(message.pr_number)
        .bind(channel)
        .bind(ts)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Marks a message's post as requested, just before it is sent, and sets the thread it goes in:
/// the pull request's thread when it has one in the message's channel. A message already marked
/// keeps its thread, so a retry looks for an earlier post where that attempt made it.
pub async fn request_slack_post(
    pool: &PgPool,
    message: &mut SlackMessageRow,
) -> Result<(), sqlx::Error> {
    let row = sqlx::query(
        "UPDATE slack_messages m
         SET thread_ts = CASE WHEN m.post_requested_at IS NULL
                 THEN (SELECT p.slack_thread_ts FROM pull_requests p
                       WHERE p.repository_id = m.repository_id AND p.number = m.pr_number
                         AND p.slack_channel = m.channel)
                 ELSE m.thread_ts END,
             post_requested_at = COALESCE(m.post_requested_at, now())
         WHERE m.id = $1 AND m.ts IS NULL
         RETURNING m.thread_ts, m.post_requested_at",
    )
    .bind(message.id)
    .fetch_one(pool)
    .await?;
    message.thread_ts = row.get("thread_ts");
    message.post_requested_at = row.get("post_requested_at");
    Ok(())
}
