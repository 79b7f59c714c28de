//! The append-only audit log. Entries are written inside the transaction of the change they
//! record, so the log never claims a change that was rolled back, nor misses one that was not.

use serde_json::Value;
use sqlx::PgConnection;

/// One entry: who did what to which target, with the state before and after.
#[derive(Debug, Clone)]
pub struct AuditEntry<'a> {
    pub installation_id: i64,
    /// A GitHub login, `slack:<user id>`, or `tollgate` for the app itself.
    pub actor: &'a str,
    /// What happened, e.g. `override.requested`, `override.approved`, `alert.acknowledged`.
    pub action: &'a str,
    /// What it happened to, e.g. `override_request:12`, `alert:3`, `acme/api#7`.
    pub target: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

pub async fn audit(conn: &mut PgConnection, entry: &AuditEntry<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (installation_id, actor, action, target, before_state, after_state)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(entry.installation_id)
    .bind(entry.actor)
    .bind(entry.action)
    .bind(entry.target)
    .bind(&entry.before)
    .bind(&entry.after)
    .execute(conn)
    .await?;
    Ok(())
}
