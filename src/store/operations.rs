//! What operations read and clean up: queue samples for the metrics, the inputs of the deep
//! health check, marks such as the last successful GitHub call, and the retention job's claim
//! and batched deletes.

use crate::operations::health::ChannelAttempts;
use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::BTreeMap;
use std::time::Duration;

/// Unfinished jobs by kind and state, how many are ready now and how long the oldest one has
/// been ready.
pub async fn queue_sample(
    pool: &PgPool,
) -> Result<crate::telemetry::metrics::QueueSample, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, state, count(*) AS jobs FROM jobs
         WHERE state IN ('pending', 'running') GROUP BY kind, state ORDER BY kind, state",
    )
    .fetch_all(pool)
    .await?;
    let by_kind_and_state = rows
        .iter()
        .map(|row| (row.get("kind"), row.get("state"), row.get("jobs")))
        .collect();
    let ready = sqlx::query(
        "SELECT count(*) AS ready,
                COALESCE(EXTRACT(EPOCH FROM now() - min(run_at)), 0)::float8 AS oldest
         FROM jobs WHERE state = 'pending' AND run_at <= now()",
    )
    .fetch_one(pool)
    .await?;
    Ok(crate::telemetry::metrics::QueueSample {
        by_kind_and_state,
        ready: ready.get("ready"),
        oldest_ready_age: Duration::from_secs_f64(ready.get::<f64, _>("oldest").max(0.0)),
    })
}

/// Delivered and failed notification attempts per channel over the last `window`. Every
/// channel's attempts table joins the union here, so the health check covers them all.
pub async fn notification_attempts(
    pool: &PgPool,
    window: Duration,
) -> Result<Vec<ChannelAttempts>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT channel,
                count(*) FILTER (WHERE outcome = 'sent') AS delivered,
                count(*) FILTER (WHERE outcome = 'failed') AS failed
         FROM (SELECT 'slack' AS channel, outcome FROM slack_attempts
               WHERE created_at > now() - make_interval(secs => $1)
                 AND outcome IN ('sent', 'failed')
               UNION ALL
               SELECT channel, outcome FROM notification_attempts
               WHERE created_at > now() - make_interval(secs => $1)) AS attempts
         GROUP BY channel ORDER BY channel",
    )
    .bind(window.as_secs_f64())
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| ChannelAttempts {
            channel: row.get("channel"),
            delivered: row.get("delivered"),
            failed: row.get("failed"),
        })
        .collect())
}

/// Records that something happened at `at` (kept when an earlier time arrives late).
pub async fn set_mark(pool: &PgPool, name: &str, at: DateTime<Utc>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO service_marks (name, at) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET at = GREATEST(service_marks.at, EXCLUDED.at)",
    )
    .bind(name)
    .bind(at)
    .execute(pool)
    .await?;
    Ok(())
}

/// Every mark, by name.
pub async fn marks(pool: &PgPool) -> Result<BTreeMap<String, DateTime<Utc>>, sqlx::Error> {
    let rows = sqlx::query("SELECT name, at FROM service_marks")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|row| (row.get("name"), row.get("at")))
        .collect())
}

/// The jobs that run once a day across all replicas, each with its claim table (a row per day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DailyJob {
    /// `retention_runs`: the retention policy, run for today.
    Retention { dry_run: bool },
    /// `trend_runs`: the trend rollup of a past day.
    Trends,
}

/// Claims `job` for `day` for this process: `true` for exactly one caller a day, across every
/// replica. A claim left unfinished for an hour (its process died) can be taken over.
pub async fn claim_daily_run(
    conn: &mut PgConnection,
    job: DailyJob,
    day: NaiveDate,
    claimed_by: &str,
) -> Result<bool, sqlx::Error> {
    let query = match job {
        DailyJob::Retention { dry_run } => sqlx::query(
            "INSERT INTO retention_runs (day, claimed_by, dry_run) VALUES ($1, $2, $3)
             ON CONFLICT (day) DO UPDATE
                 SET claimed_by = EXCLUDED.claimed_by, dry_run = EXCLUDED.dry_run,
                     started_at = now()
                 WHERE retention_runs.finished_at IS NULL
                   AND retention_runs.started_at < now() - interval '1 hour'",
        )
        .bind(day)
        .bind(claimed_by)
        .bind(dry_run),
        DailyJob::Trends => sqlx::query(
            "INSERT INTO trend_runs (day, claimed_by) VALUES ($1, $2)
             ON CONFLICT (day) DO UPDATE
                 SET claimed_by = EXCLUDED.claimed_by, started_at = now()
                 WHERE trend_runs.finished_at IS NULL
                   AND trend_runs.started_at < now() - interval '1 hour'",
        )
        .bind(day)
        .bind(claimed_by),
    };
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// Marks a claimed run done, with what it did.
pub async fn finish_daily_run(
    pool: &PgPool,
    job: DailyJob,
    day: NaiveDate,
    counts: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    let sql = match job {
        DailyJob::Retention { .. } => {
            "UPDATE retention_runs SET finished_at = now(), counts = $2 WHERE day = $1"
        }
        DailyJob::Trends => "UPDATE trend_runs SET finished_at = now(), counts = $2 WHERE day = $1",
    };
    sqlx::query(sql)
        .bind(day)
        .bind(counts)
        .execute(pool)
        .await?;
    Ok(())
}

/// What the retention policy removes, each with its own age limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionCategory {
    /// Violation rows of evaluations that a newer evaluation of the same pull request replaced.
    ResolvedViolations,
    /// Slack, email and PagerDuty attempts, closed alerts (their PagerDuty events go with them),
    /// and the Slack and email messages about them.
    SlackAttempts,
    NotificationAttempts,
    ClosedAlerts,
    AlertMessages,
    EmailMessages,
    /// Evaluations (the score history) replaced by a newer one of the same pull request; their
    /// violations go with them.
    Evaluations,
    WebhookDeliveries,
    FinishedJobs,
    /// The daily trend rollups (which outlive the evaluations they summarise).
    RuleTrends,
    ScoreTrends,
}

impl RetentionCategory {
    pub const ALL: [RetentionCategory; 11] = [
        RetentionCategory::ResolvedViolations,
        RetentionCategory::SlackAttempts,
        RetentionCategory::NotificationAttempts,
        RetentionCategory::ClosedAlerts,
        RetentionCategory::AlertMessages,
        RetentionCategory::EmailMessages,
        RetentionCategory::Evaluations,
        RetentionCategory::WebhookDeliveries,
        RetentionCategory::FinishedJobs,
        RetentionCategory::RuleTrends,
        RetentionCategory::ScoreTrends,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RetentionCategory::ResolvedViolations => "resolved_violations",
            RetentionCategory::SlackAttempts => "slack_attempts",
            RetentionCategory::NotificationAttempts => "notification_attempts",
            RetentionCategory::ClosedAlerts => "closed_alerts",
            RetentionCategory::AlertMessages => "alert_messages",
            RetentionCategory::EmailMessages => "email_messages",
            RetentionCategory::Evaluations => "evaluations",
            RetentionCategory::WebhookDeliveries => "webhook_deliveries",
            RetentionCategory::FinishedJobs => "finished_jobs",
            RetentionCategory::RuleTrends => "rule_trends",
            RetentionCategory::ScoreTrends => "score_trends",
        }
    }
}

// The rows each category removes, as `concat!` literals shared by its count and its delete.
// `$1` is the age limit in days.
macro_rules! resolved_violations {
    () => {
        "FROM violations v WHERE v.created_at < now() - make_interval(days => $1)
           AND EXISTS (SELECT 1 FROM evaluations e JOIN evaluations newer
                         ON newer.repository_id = e.repository_id
                        AND newer.pr_number = e.pr_number AND newer.created_at > e.created_at
                       WHERE e.id = v.evaluation_id)"
    };
}
macro_rules! slack_attempts {
    () => {
        "FROM slack_attempts t WHERE t.created_at < now() - make_interval(days => $1)"
    };
}
macro_rules! notification_attempts {
    () => {
        "FROM notification_attempts t WHERE t.created_at < now() - make_interval(days => $1)"
    };
}
macro_rules! closed_alerts {
    () => {
        "FROM alerts a WHERE a.status <> 'open'
           AND a.created_at < now() - make_interval(days => $1)"
    };
}
// Override-request messages stay with their requests (a late decision edits them); alert
// messages go once their alert is gone, notes by age; a message with attempts left waits for them.
macro_rules! alert_messages {
    () => {
        "FROM slack_messages m WHERE m.created_at < now() - make_interval(days => $1)
           AND m.status <> 'pending' AND m.subject <> 'override_request'
           AND NOT EXISTS (SELECT 1 FROM slack_attempts t WHERE t.message_id = m.id)
           AND NOT (m.subject IN ('alert', 'escalation')
                    AND EXISTS (SELECT 1 FROM alerts a WHERE a.id = m.subject_id))"
    };
}
// An email's row is what keeps it from being sent twice: it goes once it is settled and, for an
// alert's email, once the alert is gone.
macro_rules! email_messages {
    () => {
        "FROM email_messages m WHERE m.created_at < now() - make_interval(days => $1)
           AND m.status <> 'pending'
           AND NOT (m.kind IN ('alert', 'alert_escalation')
                    AND EXISTS (SELECT 1 FROM alerts a WHERE a.id = m.subject_id))"
    };
}
macro_rules! evaluations {
    () => {
        "FROM evaluations e WHERE e.created_at < now() - make_interval(days => $1)
           AND e.status <> 'in_progress'
           AND EXISTS (SELECT 1 FROM evaluations newer
                       WHERE newer.repository_id = e.repository_id
                         AND newer.pr_number = e.pr_number AND newer.created_at > e.created_at)"
    };
}
macro_rules! webhook_deliveries {
    () => {
        "FROM webhook_deliveries d WHERE d.received_at < now() - make_interval(days => $1)"
    };
}
macro_rules! finished_jobs {
    () => {
        "FROM jobs j WHERE j.state IN ('done', 'failed')
           AND j.finished_at < now() - make_interval(days => $1)"
    };
}

// Rollup days are UTC dates.
macro_rules! rule_trends {
    () => {
        "FROM trend_rule_days t WHERE t.day < (now() AT TIME ZONE 'UTC')::date - $1"
    };
}
macro_rules! score_trends {
    () => {
        "FROM trend_score_days t WHERE t.day < (now() AT TIME ZONE 'UTC')::date - $1"
    };
}

/// How many rows of `category` are older than `days` days (the dry run's report).
pub async fn count_expired(
    pool: &PgPool,
    category: RetentionCategory,
    days: u32,
) -> Result<i64, sqlx::Error> {
    let sql = match category {
        RetentionCategory::ResolvedViolations => {
            concat!("SELECT count(*) ", resolved_violations!())
        }
        RetentionCategory::SlackAttempts => concat!("SELECT count(*) ", slack_attempts!()),
        RetentionCategory::NotificationAttempts => {
            concat!("SELECT count(*) ", notification_attempts!())
        }
        RetentionCategory::ClosedAlerts => concat!("SELECT count(*) ", closed_alerts!()),
        RetentionCategory::AlertMessages => concat!("SELECT count(*) ", alert_messages!()),
        RetentionCategory::EmailMessages => concat!("SELECT count(*) ", email_messages!()),
        RetentionCategory::Evaluations => concat!("SELECT count(*) ", evaluations!()),
        RetentionCategory::WebhookDeliveries => {
            concat!("SELECT count(*) ", webhook_deliveries!())
        }
        RetentionCategory::FinishedJobs => concat!("SELECT count(*) ", finished_jobs!()),
        RetentionCategory::RuleTrends => concat!("SELECT count(*) ", rule_trends!()),
        RetentionCategory::ScoreTrends => concat!("SELECT count(*) ", score_trends!()),
    };
    sqlx::query_scalar(sql)
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .fetch_one(pool)
        .await
}

/// Deletes at most `batch` expired rows of `category`; returns how many went. Each call is its
/// own short statement, so a large backlog never holds long locks.
pub async fn delete_expired_batch(
    pool: &PgPool,
    category: RetentionCategory,
    days: u32,
    batch: u32,
) -> Result<u64, sqlx::Error> {
    let sql = match category {
        RetentionCategory::ResolvedViolations => concat!(
            "DELETE FROM violations WHERE id IN (SELECT v.id ",
            resolved_violations!(),
            " LIMIT $2)"
        ),
        RetentionCategory::SlackAttempts => concat!(
            "DELETE FROM slack_attempts WHERE id IN (SELECT t.id ",
            slack_attempts!(),
            " LIMIT $2)"
        ),
        RetentionCategory::NotificationAttempts => concat!(
            "DELETE FROM notification_attempts WHERE id IN (SELECT t.id ",
            notification_attempts!(),
            " LIMIT $2)"
        ),
        RetentionCategory::ClosedAlerts => concat!(
            "DELETE FROM alerts WHERE id IN (SELECT a.id ",
            closed_alerts!(),
            " LIMIT $2)"
        ),
        RetentionCategory::AlertMessages => concat!(
            "DELETE FROM slack_messages WHERE id IN (SELECT m.id ",
            alert_messages!(),
            " LIMIT $2)"
        ),
        RetentionCategory::EmailMessages => concat!(
            "DELETE FROM email_messages WHERE id IN (SELECT m.id ",
            email_messages!(),
            " LIMIT $2)"
        ),
        RetentionCategory::Evaluations => concat!(
            "DELETE FROM evaluations WHERE id IN (SELECT e.id ",
            evaluations!(),
            " LIMIT $2)"
        ),
        RetentionCategory::WebhookDeliveries => concat!(
            "DELETE FROM webhook_deliveries WHERE delivery_id IN (SELECT d.delivery_id ",
            webhook_deliveries!(),
            " LIMIT $2)"
        ),
        RetentionCategory::FinishedJobs => concat!(
            "DELETE FROM jobs WHERE id IN (SELECT j.id ",
            finished_jobs!(),
            " LIMIT $2)"
        ),
        // The rollups have composite keys: a batch is picked by row address.
        RetentionCategory::RuleTrends => concat!(
            "DELETE FROM trend_rule_days WHERE ctid IN (SELECT t.ctid ",
            rule_trends!(),
            " LIMIT $2)"
        ),
        RetentionCategory::ScoreTrends => concat!(
            "DELETE FROM trend_score_days WHERE ctid IN (SELECT t.ctid ",
            score_trends!(),
            " LIMIT $2)"
        ),
    };
    let done = sqlx::query(sql)
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .bind(i64::from(batch))
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
