//! Override requests, their approvals, and the results of command comments.

use crate::config::OverrideSettings;
use crate::github::events::PrTarget;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool, Row};

/// Takes the pull request's lock for the rest of the transaction: commands, Slack decisions
/// and evaluations of one pull request decide one at a time.
pub async fn lock_pull_request(
    tx: &mut PgConnection,
    repository_id: i64,
    pr_number: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("pr:{repository_id}:{pr_number}"))
        .execute(tx)
        .await?;
    Ok(())
}

/// A request as recorded.
#[derive(Debug, Clone)]
pub struct OverrideRequestRow {
    pub id: i64,
    pub installation_id: i64,
    pub repository_id: i64,
    pub pr_number: i32,
    pub head_sha: String,
    pub status: String,
    pub requested_by: String,
    pub reason: String,
    pub scope_rules: Vec<String>,
    pub fingerprints: Vec<String>,
    pub violations: Value,
    pub needs_approval: bool,
    pub required_approvals: i32,
    /// The settings the request was made under, decoded strictly: a stored value that no longer
    /// parses is an error, never defaults (defaults would let anyone decide the request).
    pub settings: OverrideSettings,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    /// Logins that approved, in order.
    pub approvals: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl OverrideRequestRow {
    /// The row as the audit log shows it.
    pub fn audit_state(&self) -> Value {
        serde_json::json!({
            "status": self.status,
            "requested_by": self.requested_by,
            "reason": self.reason,
            "scope_rules": self.scope_rules,
            "fingerprints": self.fingerprints,
            "needs_approval": self.needs_approval,
            "required_approvals": self.required_approvals,
            "approvals": self.approvals,
            "decided_by": self.decided_by,
            "decision_note": self.decision_note,
            "head_sha": self.head_sha,
        })
    }

    pub fn audit_target(&self) -> String {
        format!("override_request:{}", self.id)
    }
}

/// The columns every query of this table reads, as a literal for `concat!` (static SQL,
/// no formatting at run time).
macro_rules! request_columns {
    () => {
        "r.id, r.installation_id, r.repository_id, r.pr_number, r.head_sha,
    r.status, r.requested_by, r.reason, r.scope_rules, r.fingerprints, r.violations,
    r.needs_approval, r.required_approvals, r.settings, r.decided_by, r.decision_note,
    r.created_at,
    ARRAY(SELECT a.approver FROM override_approvals a WHERE a.request_id = r.id
          ORDER BY a.created_at) AS approvals"
    };
}

fn request_from_row(row: &PgRow) -> Result<OverrideRequestRow, sqlx::Error> {
    Ok(OverrideRequestRow {
        id: row.try_get("id")?,
        installation_id: row.try_get("installation_id")?,
        repository_id: row.try_get("repository_id")?,
        pr_number: row.try_get("pr_number")?,
        head_sha: row.try_get("head_sha")?,
        status: row.try_get("status")?,
        requested_by: row.try_get("requested_by")?,
        reason: row.try_get("reason")?,
        scope_rules: row.try_get("scope_rules")?,
        fingerprints: row.try_get("fingerprints")?,
        violations: row.try_get("violations")?,
        needs_approval: row.try_get("needs_approval")?,
        required_approvals: row.try_get("required_approvals")?,
        settings: row.try_get::<Json<OverrideSettings>, _>("settings")?.0,
        decided_by: row.try_get("decided_by")?,
        decision_note: row.try_get("decision_note")?,
        approvals: row.try_get("approvals")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A request to record.
#[derive(Debug, Clone)]
pub struct NewOverrideRequest<'a> {
    pub target: &'a PrTarget,
    pub head_sha: &'a str,
    /// `pending` or `approved` (self-service).
    pub status: &'a str,
    pub requested_by: &'a str,
    pub reason: &'a str,
    pub scope_rules: Vec<String>,
    pub fingerprints: Vec<String>,
    pub violations: Value,
    pub needs_approval: bool,
    pub required_approvals: i32,
    pub settings: &'a OverrideSettings,
    pub command_comment_id: i64,
}

pub async fn insert_override_request(
    tx: &mut PgConnection,
    request: &NewOverrideRequest<'_>,
) -> Result<OverrideRequestRow, sqlx::Error> {
    let decided = request.status == "approved";
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO override_requests (installation_id, repository_id, pr_number, head_sha, status,
             requested_by, reason, scope_rules, fingerprints, violations, needs_approval,
             required_approvals, settings, command_comment_id, decided_by, decided_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14,
                 CASE WHEN $15 THEN $6 END, CASE WHEN $15 THEN now() END)
         RETURNING id",
    )
    .bind(request.target.installation_id)
    .bind(request.target.repo.id)
    .bind(pr_number(request.target.number))
    .bind(request.head_sha)
    .bind(request.status)
    .bind(request.requested_by)
    .bind(request.reason)
    .bind(&request.scope_rules)
    .bind(&request.fingerprints)
    .bind(&request.violations)
    .bind(request.needs_approval)
    .bind(request.required_approvals)
    .bind(Json(request.settings))
    .bind(request.command_comment_id)
    .bind(decided)
    .fetch_one(&mut *tx)
    .await?;
    override_request(tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

pub async fn override_request(
    conn: &mut PgConnection,
    id: i64,
) -> Result<Option<OverrideRequestRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        request_columns!(),
        " FROM override_requests r WHERE r.id = $1"
    );
    let row = sqlx::query(sql).bind(id).fetch_optional(conn).await?;
    row.as_ref().map(request_from_row).transpose()
}

/// Every request of a pull request, oldest first.
pub async fn override_requests_of(
    conn: &mut PgConnection,
    repository_id: i64,
    pr_number: i64,
) -> Result<Vec<OverrideRequestRow>, sqlx::Error> {
    let sql = concat!(
        "SELECT ",
        request_columns!(),
        " FROM override_requests r
         WHERE r.repository_id = $1 AND r.pr_number = $2 ORDER BY r.id"
    );
    let rows = sqlx::query(sql)
        .bind(repository_id)
        .bind(pr_number)
        .fetch_all(conn)
        .await?;
    rows.iter().map(request_from_row).collect()
}

/// Records a decision (approved, rejected, cancelled, expired) on a request.
pub async fn set_override_status(
    tx: &mut PgConnection,
    id: i64,
    status: &str,
    decided_by: &str,
    note: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE override_requests SET status = $2, decided_by = $3, decision_note = $4,
             decided_at = now(), updated_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(decided_by)
    .bind(note)
    .execute(tx)
    .await?;
    Ok(())
}

/// Records one approver's approval; `false` when they had already approved.
pub async fn add_approval(
    tx: &mut PgConnection,
    request: &OverrideRequestRow,
    approver: &str,
    via: &str,
    note: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO override_approvals (request_id, installation_id, approver, via, note)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(request.id)
    .bind(request.installation_id)
    .bind(approver)
    .bind(via)
    .bind(note)
    .execute(tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// What was decided about one command comment, and the reply owed for it.
#[derive(Debug, Clone)]
pub struct CommandResult {
    pub outcome: String,
    pub reaction: String,
    pub reply: Option<String>,
    pub reply_comment_id: Option<i64>,
    /// An earlier attempt sent the reply: it may exist without a recorded id.
    pub reply_requested: bool,
}

pub async fn command_result(
    pool: &PgPool,
    repository_id: i64,
    comment_id: i64,
) -> Result<Option<CommandResult>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT outcome, reaction, reply, reply_comment_id,
             reply_requested_at IS NOT NULL AS reply_requested
         FROM command_results
         WHERE repository_id = $1 AND comment_id = $2",
    )
    .bind(repository_id)
    .bind(comment_id)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|row| CommandResult {
        outcome: row.get("outcome"),
        reaction: row.get("reaction"),
        reply: row.get("reply"),
        reply_comment_id: row.get("reply_comment_id"),
        reply_requested: row.get("reply_requested"),
    }))
}

/// The command comment being recorded.
#[derive(Debug, Clone, Copy)]
pub struct CommandComment<'a> {
    pub target: &'a PrTarget,
    pub comment_id: i64,
    pub author: &'a str,
}

pub async fn insert_command_result(
    tx: &mut PgConnection,
    comment: CommandComment<'_>,
    result: &CommandResult,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO command_results (repository_id, comment_id, installation_id, pr_number, author,
             outcome, reaction, reply)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(comment.target.repo.id)
    .bind(comment.comment_id)
    .bind(comment.target.installation_id)
    .bind(pr_number(comment.target.number))
    .bind(comment.author)
    .bind(&result.outcome)
    .bind(&result.reaction)
    .bind(&result.reply)
    .execute(tx)
    .await?;
    Ok(())
}

/// Marks the reply to a command comment as sent, before it is.
pub async fn mark_reply_requested(
    pool: &PgPool,
    repository_id: i64,
    comment_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE command_results SET reply_requested_at = now()
         WHERE repository_id = $1 AND comment_id = $2",
    )
    .bind(repository_id)
    .bind(comment_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_reply_comment_id(
    pool: &PgPool,
    repository_id: i64,
    comment_id: i64,
    reply_comment_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE command_results SET reply_comment_id = $3
         WHERE repository_id = $1 AND comment_id = $2",
    )
    .bind(repository_id)
    .bind(comment_id)
    .bind(reply_comment_id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) fn pr_number(number: u64) -> i32 {
    i32::try_from(number).unwrap_or(i32::MAX)
}
