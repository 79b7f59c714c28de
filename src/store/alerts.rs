//! Tier 1 alerts: raised for new BLOCK violations, acknowledged, resolved, escalated.

use super::overrides::pr_number;
use crate::github::events::PrTarget;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct AlertRow {
    pub id: i64,
    pub installation_id: i64,
    pub repository_id: i64,
    pub pr_number: i32,
    pub rule_id: String,
    pub head_sha: String,
    pub fingerprints: Vec<String>,
    pub violations: Value,
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub escalate_at: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl AlertRow {
    pub fn audit_state(&self) -> Value {
        serde_json::json!({
            "status": self.status,
            "rule_id": self.rule_id,
            "fingerprints": self.fingerprints,
            "acknowledged_by": self.acknowledged_by,
            "escalated_at": self.escalated_at,
        })
    }

    pub fn audit_target(&self) -> String {
        format!("alert:{}", self.id)
    }
}

/// The columns every query of this table reads, as a literal for `concat!` (static SQL,
/// no formatting at run time).
macro_rules! alert_columns {
    () => {
        "id, installation_id, repository_id, pr_number, rule_id, head_sha,
    fingerprints, violations, status, acknowledged_by, escalate_at, escalated_at, created_at"
    };
}

fn alert_from_row(row: &PgRow) -> AlertRow {
    AlertRow {
        id: row.get("id"),
        installation_id: row.get("installation_id"),
        repository_id: row.get("repository_id"),
        pr_number: row.get("pr_number"),
        rule_id: row.get("rule_id"),
        head_sha: row.get("head_sha"),
        fingerprints: row.get("fingerprints"),
        violations: row.get("violations"),
        status: row.get("status"),
        acknowledged_by: row.get("acknowledged_by"),
        escalate_at: row.get("escalate_at"),
        escalated_at: row.get("escalated_at"),
        created_at: row.get("created_at"),
    }
}

/// Every fingerprint an alert of this pull request and rule has already reported, and whether
/// one was raised within `window` (the dedup window).
pub async fn alert_history(
    conn: &mut PgConnection,
    target: &PrTarget,
    rule_id: &str,
    window: Duration,
) -> Result<(Vec<String>, bool), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(array_agg(DISTINCT f), '{}') AS reported,
                COALESCE(bool_or(created_at > now() - make_interval(secs => $4)), false) AS recent
         FROM alerts LEFT JOIN LATERAL unnest(fingerprints) AS f ON true
         WHERE repository_id = $1 AND pr_number = $2 AND rule_id = $3",
    )
    .bind(target.repo.id)
    .bind(pr_number(target.number))
    .bind(rule_id)
    .bind(window.as_secs_f64())
    .fetch_one(conn)
    .await?;
    Ok((row.get("reported"), row.get("recent")))
}

/// An alert to raise.
pub struct NewAlert<'a> {
    pub target: &'a PrTarget,
    pub rule_id: &'a str,
    pub head_sha: &'a str,
    pub fingerprints: Vec<String>,
    pub violations: Value,
    pub escalate_after: Duration,
}

pub async fn insert_alert(
    tx: &mut PgConnection,
    alert: &NewAlert<'_>,
) -> Result<AlertRow, sqlx::Error> {
    let sql = concat!(
        "INSERT INTO alerts (installation_id, repository_id, pr_number, rule_id, head_sha,
             fingerprints, violations, escalate_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
         RETURNING ",
        alert_columns!()
    );
    let row = sqlx::query(sql)
        .bind(alert.target.installation_id)
        .bind(alert.target.repo.id)
        .bind(pr_number(alert.target.number))
        .bind(alert.rule_id)
        .bind(alert.head_sha)
        .bind(&alert.fingerprints)
        .bind(&alert.violations)
        .bind(alert.escalate_after.as_secs_f64())
        .fetch_one(tx)
        .await?;
    Ok(alert_from_row(&row))
}

pub async fn alert(conn: &mut PgConnection, id: i64) -> Result<Option<AlertRow>, sqlx::Error> {
    let sql = concat!("SELECT ", alert_columns!(), " FROM alerts WHERE id = $1");
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    Ok(row.as_ref().map(alert_from_row))
}

/// Open (unacknowledged, unresolved) alerts of a pull request.
pub async fn open_alerts(
    conn: &mut PgConnection,
    target: &PrTarget,
) -> Result<Vec<AlertRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        alert_columns!(),
        " FROM alerts
         WHERE repository_id = $1 AND pr_number = $2 AND status = 'open' ORDER BY id"
    );
    let rows = sqlx::query(sql)
        .bind(target.repo.id)
        .bind(pr_number(target.number))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(alert_from_row).collect())
}

/// Moves an open alert to `acknowledged` or `resolved`; `None` when it was not open.
pub async fn close_alert(
    tx: &mut PgConnection,
    id: i64,
    status: &str,
    acknowledged_by: Option<&str>,
) -> Result<Option<AlertRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE alerts SET status = $2, acknowledged_by = $3,
             acknowledged_at = CASE WHEN $2 = 'acknowledged' THEN now() END,
             resolved_at = CASE WHEN $2 = 'resolved' THEN now() END
         WHERE id = $1 AND status = 'open'
         RETURNING ",
        alert_columns!()
    );
    let row = sqlx::query(sql)
        .bind(id)
        .bind(status)
        .bind(acknowledged_by)
        .fetch_optional(tx)
        .await?;
    Ok(row.as_ref().map(alert_from_row))
}

/// Marks an open, not yet escalated alert as escalated; `None` when it needs no escalation.
pub async fn mark_escalated(
    tx: &mut PgConnection,
    id: i64,
) -> Result<Option<AlertRow>, sqlx::Error> {
    let sql = concat!(
        "UPDATE alerts SET escalated_at = now()
         WHERE id = $1 AND status = 'open' AND escalated_at IS NULL AND escalate_at <= now()
         RETURNING ",
        alert_columns!()
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(tx).await?;
    Ok(row.as_ref().map(alert_from_row))
}
