//! The dashboard's queries. Each runs in a transaction that first becomes `tollgate_dashboard`
//! (neither superuser, nor table owner, nor BYPASSRLS) and names, in a transaction-local setting,
//! the one installation, session or token hash it is about. Row-level security (migration 0004)
//! then shows it nothing else: the queries below carry no tenant `WHERE` of their own, so a
//! forgotten filter cannot leak another installation's rows.

use chrono::{DateTime, Utc};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use serde::Serialize;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

pub type DashboardTx = Transaction<'static, Postgres>;

/// What a dashboard transaction is scoped to.
enum Scope<'a> {
    Installation(i64),
    Session(&'a str),
    ApiToken(&'a str),
}

/// Begins a transaction as `tollgate_dashboard`, scoped with `set_config(..., true)`: the
/// settings end with the transaction, so a pooled connection never carries them to the next user
/// (a session-wide `SET` would).
///
/// Its statements are planned for their actual parameters every time (`force_custom_plan`). The
/// lists take optional filters (`$1 IS NULL OR ...`): a generic plan, which PostgreSQL adopts
/// for a prepared statement after five executions when it looks cheaper, cannot tell which are
/// set, and for the violations list it sorted every row of the installation (over a minute at a
/// million violations; README "Benchmark") where a custom plan reads one index page. And they
/// run without JIT compilation: a `LIMIT` over a large join looks expensive to the planner, and
/// compiling took 25-60 ms of queries that then ran in 2-10 ms.
async fn begin(pool: &PgPool, scope: Scope<'_>) -> Result<DashboardTx, sqlx::Error> {
    let (setting, value) = match scope {
        Scope::Installation(id) => ("app.installation_id", id.to_string()),
        Scope::Session(hash) => ("app.session_hash", hash.to_owned()),
        Scope::ApiToken(hash) => ("app.api_token_hash", hash.to_owned()),
    };
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT set_config('role', 'tollgate_dashboard', true), set_config($1, $2, true),
                set_config('plan_cache_mode', 'force_custom_plan', true),
                set_config('jit', 'off', true)",
    )
    .bind(setting)
    .bind(value)
    .execute(&mut *tx)
    .await?;
    Ok(tx)
}

/// A transaction that sees one installation's rows.
pub async fn begin_tenant(pool: &PgPool, installation_id: i64) -> Result<DashboardTx, sqlx::Error> {
    begin(pool, Scope::Installation(installation_id)).await
}

// ---------------------------------------------------------------------------------------------
// Sessions

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub user_id: i64,
    pub login: String,
    pub access: Value,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub user_id: i64,
    pub login: &'a str,
    pub access: &'a Value,
    pub csrf_token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// Stores a new session, and prunes expired ones on the way.
pub async fn insert_session(pool: &PgPool, session: &NewSession<'_>) -> Result<(), sqlx::Error> {
    let mut tx = begin(pool, Scope::Session(session.id_hash)).await?;
    sqlx::query("DELETE FROM dashboard_sessions WHERE expires_at < now()")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO dashboard_sessions (id_hash, user_id, login, access, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.id_hash)
    .bind(session.user_id)
    .bind(session.login)
    .bind(session.access)
    .bind(session.csrf_token)
    .bind(session.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The live session with this id hash, if any.
pub async fn session(pool: &PgPool, id_hash: &str) -> Result<Option<SessionRow>, sqlx::Error> {
    let mut tx = begin(pool, Scope::Session(id_hash)).await?;
    let row = sqlx::query_as(
        "SELECT user_id, login, access, csrf_token, expires_at FROM dashboard_sessions
         WHERE id_hash = $1 AND expires_at > now()",
    )
    .bind(id_hash)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn delete_session(pool: &PgPool, id_hash: &str) -> Result<(), sqlx::Error> {
    let mut tx = begin(pool, Scope::Session(id_hash)).await?;
    sqlx::query("DELETE FROM dashboard_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

// ---------------------------------------------------------------------------------------------
// API tokens

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: i64,
    pub installation_id: i64,
    pub user_id: i64,
    pub login: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub struct NewApiToken<'a> {
    pub installation_id: i64,
    pub user_id: i64,
    pub login: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
}

pub async fn insert_api_token(
    tx: &mut PgConnection,
    token: &NewApiToken<'_>,
) -> Result<ApiTokenRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO api_tokens (installation_id, user_id, login, name, token_hash)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING id, installation_id, user_id, login, name, created_at, revoked_at",
    )
    .bind(token.installation_id)
    .bind(token.user_id)
    .bind(token.login)
    .bind(token.name)
    .bind(token.token_hash)
    .fetch_one(tx)
    .await
}

pub async fn api_tokens(tx: &mut PgConnection) -> Result<Vec<ApiTokenRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, installation_id, user_id, login, name, created_at, revoked_at
         FROM api_tokens ORDER BY id DESC",
    )
    .fetch_all(tx)
    .await
}

/// Revokes a token of the transaction's installation; `None` when there is no such token.
pub async fn revoke_api_token(
    tx: &mut PgConnection,
    id: i64,
) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1
         RETURNING id, installation_id, user_id, login, name, created_at, revoked_at",
    )
    .bind(id)
    .fetch_optional(tx)
    .await
}

/// The unrevoked token with this hash, whatever its installation: knowing the hash means
/// holding the token.
pub async fn api_token_by_hash(
    pool: &PgPool,
    token_hash: &str,
) -> Result<Option<ApiTokenRow>, sqlx::Error> {
    let mut tx = begin(pool, Scope::ApiToken(token_hash)).await?;
    let row = sqlx::query_as(
        "SELECT id, installation_id, user_id, login, name, created_at, revoked_at
         FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(row)
}

// ---------------------------------------------------------------------------------------------
// Rules

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RuleOverviewRow {
    pub rule_id: String,
    pub name: String,
    pub tier: String,
    pub category: String,
    pub open_violations: i64,
    pub last_seen: Option<DateTime<Utc>>,
}

/// Whether completed evaluation `e` is the latest completed one of its pull request (the one
/// `ORDER BY created_at DESC, id DESC` puts first): its violations are the open ones. Asked per
/// row through the index `evaluations_completed_pr`, never by ranking every evaluation.
macro_rules! is_latest {
    () => {
        "NOT EXISTS (SELECT 1 FROM evaluations later
                     WHERE later.repository_id = e.repository_id AND later.pr_number = e.pr_number
                       AND later.status = 'completed'
                       AND (later.created_at, later.id) > (e.created_at, e.id))"
    };
}

/// Whether violation `v` of pull request `e` is covered by an approved override.
macro_rules! overridden {
    () => {
        "EXISTS (SELECT 1 FROM override_requests o
                 WHERE o.repository_id = e.repository_id AND o.pr_number = e.pr_number
                   AND o.status = 'approved' AND v.fingerprint = ANY (o.fingerprints))"
    };
}

/// Every rule of the pack with its open violations and when it was last seen.
pub async fn rule_overview(tx: &mut PgConnection) -> Result<Vec<RuleOverviewRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "WITH open AS (
             SELECT v.rule_id, count(*) AS n
             FROM evaluations e JOIN violations v ON v.evaluation_id = e.id
             WHERE e.status = 'completed' AND ",
        is_latest!(),
        " AND NOT ",
        overridden!(),
        " GROUP BY v.rule_id
         )
         SELECT r.rule_id, r.name, r.tier, r.category,
                coalesce(open.n, 0) AS open_violations,
                (SELECT max(s.created_at) FROM violations s WHERE s.rule_id = r.rule_id)
                    AS last_seen
         FROM rule_definitions r
         LEFT JOIN open ON open.rule_id = r.rule_id
         ORDER BY r.rule_id"
    ))
    .fetch_all(tx)
    .await
}

// ---------------------------------------------------------------------------------------------
// Violations

/// The filters of the violations list and export; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViolationFilter {
    pub repository: Option<String>,
    pub rule: Option<String>,
    pub tier: Option<String>,
    /// A path prefix.
    pub path: Option<String>,
    pub pr: Option<i32>,
    pub author: Option<String>,
    /// `open`, `overridden` or `resolved`.
    pub state: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ViolationRow {
    pub id: i64,
    pub repository: String,
    pub pr_number: i32,
    pub author: Option<String>,
    pub evaluation_id: i64,
    pub rule_id: String,
    pub tier: String,
    pub path: Option<String>,
    pub line: Option<i32>,
    pub message: String,
    pub fingerprint: String,
    pub state: String,
    pub created_at: DateTime<Utc>,
}

/// Each violation once, by its newest row in its pull request: `open` or `overridden` when it is
/// in the pull request's latest evaluation, else `resolved` (it went away). Filters are bound
/// parameters ($1-$9); `$10` is the keyset cursor (rows with a smaller id), `$11` the limit.
macro_rules! violations_query {
    () => {
        concat!(
            "SELECT * FROM (
                 SELECT v.id, r.full_name AS repository, e.pr_number, p.author, v.evaluation_id,
                        v.rule_id, v.tier, v.path, v.line, v.message, v.fingerprint,
                        CASE WHEN v.evaluation_id <> l.id THEN 'resolved'
                             WHEN ",
            overridden!(),
            " THEN 'overridden' ELSE 'open' END AS state,
                        v.created_at
                 FROM violations v
                 JOIN evaluations e ON e.id = v.evaluation_id
                 -- The pull request's latest completed evaluation, looked up for this row only.
                 CROSS JOIN LATERAL (
                     SELECT le.id FROM evaluations le
                     WHERE le.repository_id = e.repository_id AND le.pr_number = e.pr_number
                       AND le.status = 'completed'
                     ORDER BY le.created_at DESC, le.id DESC LIMIT 1
                 ) l
                 JOIN repositories r ON r.id = e.repository_id
                 LEFT JOIN pull_requests p
                        ON p.repository_id = e.repository_id AND p.number = e.pr_number
                 WHERE ($1::text IS NULL OR r.full_name = $1)
                   -- Implied by the line above; lets the scan drop other repositories' rows by
                   -- a hash probe before joining them (a repository is 1/200 of the rows).
                   AND ($1::text IS NULL OR v.evaluation_id IN (
                       SELECT re.id FROM evaluations re
                       JOIN repositories rr ON rr.id = re.repository_id WHERE rr.full_name = $1))
                   -- Implied by the state: drops rows no approved override names by a hash
                   -- probe before their state is worked out (overridden rows are rare).
                   AND ($7::text IS DISTINCT FROM 'overridden' OR v.fingerprint IN (
                       SELECT unnest(ao.fingerprints) FROM override_requests ao
                       WHERE ao.status = 'approved'))
                   AND ($2::text IS NULL OR v.rule_id = $2)
                   AND ($3::text IS NULL OR v.tier = $3)
                   AND ($4::text IS NULL OR starts_with(v.path, $4))
                   AND ($5::int IS NULL OR e.pr_number = $5)
                   AND ($6::text IS NULL OR p.author = $6)
                   AND ($8::timestamptz IS NULL OR v.created_at >= $8)
                   AND ($9::timestamptz IS NULL OR v.created_at < $9)
                   AND ($10::bigint IS NULL OR v.id < $10)
                   AND NOT EXISTS (
                       SELECT 1 FROM violations n JOIN evaluations ne ON ne.id = n.evaluation_id
                       WHERE n.fingerprint = v.fingerprint AND n.evaluation_id > v.evaluation_id
                         AND ne.repository_id = e.repository_id AND ne.pr_number = e.pr_number)
             ) found
             WHERE ($7::text IS NULL OR found.state = $7)
             ORDER BY found.id DESC
             LIMIT $11"
        )
    };
}

fn bind_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q ViolationFilter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.repository.as_deref())
        .bind(filter.rule.as_deref())
        .bind(filter.tier.as_deref())
        .bind(filter.path.as_deref())
        .bind(filter.pr)
        .bind(filter.author.as_deref())
        .bind(filter.state.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(before_id)
        .bind(limit)
}

/// One page of violations, newest first, before the cursor `before_id`.
pub async fn violations_page(
    tx: &mut PgConnection,
    filter: &ViolationFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<ViolationRow>, sqlx::Error> {
    bind_filter(
        sqlx::query_as(violations_query!()),
        filter,
        before_id,
        limit,
    )
    .fetch_all(tx)
    .await
}

/// Every matching violation, streamed row by row from the database.
pub fn violations_stream<'a>(
    tx: &'a mut PgConnection,
    filter: &'a ViolationFilter,
) -> impl Stream<Item = Result<ViolationRow, sqlx::Error>> + Send + 'a {
    bind_filter(sqlx::query_as(violations_query!()), filter, None, i64::MAX).fetch(tx)
}

// ---------------------------------------------------------------------------------------------
// Pull requests and their evaluations

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PullRequestRow {
    pub repository_id: i64,
    pub repository: String,
    pub number: i32,
    pub title: String,
    pub author: Option<String>,
    pub head_sha: Option<String>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EvaluationRow {
    pub id: i64,
    pub head_sha: String,
    pub status: String,
    pub score: Option<i16>,
    pub verdict: Option<String>,
    pub threshold: Option<i16>,
    pub block_count: Option<i32>,
    pub override_count: Option<i32>,
    pub warning_count: Option<i32>,
    pub policy_digest: String,
    pub config_digest: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EvaluationViolationRow {
    pub id: i64,
    pub evaluation_id: i64,
    pub rule_id: String,
    pub tier: String,
    pub path: Option<String>,
    pub line: Option<i32>,
    pub message: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OverrideRow {
    pub id: i64,
    pub head_sha: String,
    pub status: String,
    pub requested_by: String,
    pub reason: String,
    pub scope_rules: Vec<String>,
    pub fingerprints: Vec<String>,
    pub needs_approval: bool,
    pub approvers: Vec<String>,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub created_at: DateTime<Utc>,
    pub decided_at: Option<DateTime<Utc>>,
}

pub async fn pull_request(
    tx: &mut PgConnection,
    repository: &str,
    number: i32,
) -> Result<Option<PullRequestRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.repository_id, r.full_name AS repository, p.number, p.title, p.author,
                p.head_sha, p.updated_at
         FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
         WHERE r.full_name = $1 AND p.number = $2",
    )
    .bind(repository)
    .bind(number)
    .fetch_optional(tx)
    .await
}

/// Every evaluation of a pull request, newest first.
pub async fn evaluations_of(
    tx: &mut PgConnection,
    repository_id: i64,
    number: i32,
) -> Result<Vec<EvaluationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, head_sha, status, score, verdict, threshold, block_count, override_count,
                warning_count, policy_digest, config_digest, error, created_at, completed_at
         FROM evaluations WHERE repository_id = $1 AND pr_number = $2
         ORDER BY created_at DESC, id DESC",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_all(tx)
    .await
}

/// The violations of every evaluation of a pull request.
pub async fn violations_of_pull_request(
    tx: &mut PgConnection,
    repository_id: i64,
    number: i32,
) -> Result<Vec<EvaluationViolationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT v.id, v.evaluation_id, v.rule_id, v.tier, v.path, v.line, v.message, v.fingerprint
         FROM violations v JOIN evaluations e ON e.id = v.evaluation_id
         WHERE e.repository_id = $1 AND e.pr_number = $2
         ORDER BY v.evaluation_id DESC, v.id",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_all(tx)
    .await
}

/// Every override request of a pull request with who approved it, newest first.
pub async fn overrides_of_pull_request(
    tx: &mut PgConnection,
    repository_id: i64,
    number: i32,
) -> Result<Vec<OverrideRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT o.id, o.head_sha, o.status, o.requested_by, o.reason, o.scope_rules,
                o.fingerprints, o.needs_approval,
                ARRAY(SELECT a.approver FROM override_approvals a WHERE a.request_id = o.id
                      ORDER BY a.created_at) AS approvers,
                o.decided_by, o.decision_note, o.created_at, o.decided_at
         FROM override_requests o WHERE o.repository_id = $1 AND o.pr_number = $2
         ORDER BY o.created_at DESC, o.id DESC",
    )
    .bind(repository_id)
    .bind(number)
    .fetch_all(tx)
    .await
}

/// The status of an override request of the transaction's installation.
pub async fn override_status(
    tx: &mut PgConnection,
    request_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT status FROM override_requests WHERE id = $1")
        .bind(request_id)
        .fetch_optional(tx)
        .await
}

// ---------------------------------------------------------------------------------------------
// The health strip

/// How Tollgate is doing for one installation, at the top of every page.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HealthStripRow {
    /// Jobs of the installation waiting to run.
    pub queue_depth: i64,
    /// When the oldest of them became ready.
    pub oldest_ready_at: Option<DateTime<Utc>>,
    /// The last webhook delivery stored for the installation.
    pub last_delivery_at: Option<DateTime<Utc>>,
    /// The last evaluation completed for the installation.
    pub last_evaluation_at: Option<DateTime<Utc>>,
    /// Why the installation config as last read is invalid (the last valid one is in force).
    pub config_error: Option<String>,
}

pub async fn health_strip(tx: &mut PgConnection) -> Result<HealthStripRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM jobs WHERE state = 'pending') AS queue_depth,
                (SELECT min(run_at) FROM jobs WHERE state = 'pending' AND run_at <= now())
                    AS oldest_ready_at,
                (SELECT max(received_at) FROM webhook_deliveries) AS last_delivery_at,
                (SELECT max(completed_at) FROM evaluations WHERE status = 'completed')
                    AS last_evaluation_at,
                (SELECT error FROM installation_configs LIMIT 1) AS config_error",
    )
    .fetch_one(tx)
    .await
}

// ---------------------------------------------------------------------------------------------
// Alerts and the audit log

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AlertListRow {
    pub id: i64,
    pub repository: String,
    pub pr_number: i32,
    pub rule_id: String,
    /// `open`, `acknowledged`, `escalated` (open past its window) or `resolved`.
    pub status: String,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Alerts newest first, optionally of one status, before the cursor `before_id`.
pub async fn alerts_page(
    tx: &mut PgConnection,
    status: Option<&str>,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AlertListRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM (
             SELECT a.id, r.full_name AS repository, a.pr_number, a.rule_id,
                    CASE WHEN a.status = 'open' AND a.escalated_at IS NOT NULL THEN 'escalated'
                         ELSE a.status END AS status,
                    a.acknowledged_by, a.acknowledged_at, a.escalated_at, a.resolved_at,
                    a.created_at
             FROM alerts a JOIN repositories r ON r.id = a.repository_id
             WHERE ($2::bigint IS NULL OR a.id < $2)
         ) found
         WHERE ($1::text IS NULL OR found.status = $1)
         ORDER BY found.id DESC LIMIT $3",
    )
    .bind(status)
    .bind(before_id)
    .bind(limit)
    .fetch_all(tx)
    .await
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before_state: Option<Value>,
    pub after_state: Option<Value>,
    pub created_at: DateTime<Utc>,
}

macro_rules! audit_query {
    () => {
        "SELECT id, actor, action, target, before_state, after_state, created_at FROM audit_log
         WHERE ($1::text IS NULL OR actor = $1)
           AND ($2::text IS NULL OR action = $2)
           AND ($3::text IS NULL OR target = $3)
           AND ($4::timestamptz IS NULL OR created_at >= $4)
           AND ($5::timestamptz IS NULL OR created_at < $5)
           AND ($6::bigint IS NULL OR id < $6)
         ORDER BY id DESC LIMIT $7"
    };
}

pub async fn audit_page(
    tx: &mut PgConnection,
    filter: &AuditFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    bind_audit_filter(sqlx::query_as(audit_query!()), filter, before_id, limit)
        .fetch_all(tx)
        .await
}

fn bind_audit_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q AuditFilter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.actor.as_deref())
        .bind(filter.action.as_deref())
        .bind(filter.target.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(before_id)
        .bind(limit)
}

/// Every matching audit entry, newest first, streamed row by row from the database.
pub fn audit_stream<'a>(
    tx: &'a mut PgConnection,
    filter: &'a AuditFilter,
) -> BoxStream<'a, Result<AuditRow, sqlx::Error>> {
    bind_audit_filter(sqlx::query_as(audit_query!()), filter, None, i64::MAX).fetch(tx)
}

// ---------------------------------------------------------------------------------------------
// Pull requests list

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PullFilter {
    pub repository: Option<String>,
    /// `pass` or `fail`, of the latest completed evaluation.
    pub verdict: Option<String>,
    pub author: Option<String>,
}

/// A pull request with its latest completed evaluation.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PullSummaryRow {
    /// The latest completed evaluation: the list's order and cursor.
    pub evaluation_id: i64,
    pub repository: String,
    pub number: i32,
    pub title: String,
    pub author: Option<String>,
    pub head_sha: String,
    pub score: Option<i16>,
    pub verdict: Option<String>,
    pub threshold: Option<i16>,
    pub block_count: Option<i32>,
    pub override_count: Option<i32>,
    pub warning_count: Option<i32>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Pull requests by their latest completed evaluation, most recently evaluated first, before the
/// cursor `before_id` (an evaluation id: ids grow with time, so the keyset is stable).
pub async fn pulls_page(
    tx: &mut PgConnection,
    filter: &PullFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<PullSummaryRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT e.id AS evaluation_id, r.full_name AS repository, e.pr_number AS number,
                coalesce(p.title, '') AS title, p.author, e.head_sha, e.score, e.verdict,
                e.threshold, e.block_count, e.override_count, e.warning_count, e.completed_at
         FROM evaluations e
         JOIN repositories r ON r.id = e.repository_id
         LEFT JOIN pull_requests p ON p.repository_id = e.repository_id AND p.number = e.pr_number
         WHERE e.status = 'completed' AND ",
        is_latest!(),
        " AND ($1::text IS NULL OR r.full_name = $1)
           AND ($2::text IS NULL OR e.verdict = $2)
           AND ($3::text IS NULL OR p.author = $3)
           AND ($4::bigint IS NULL OR e.id < $4)
         ORDER BY e.id DESC LIMIT $5"
    ))
    .bind(filter.repository.as_deref())
    .bind(filter.verdict.as_deref())
    .bind(filter.author.as_deref())
    .bind(before_id)
    .bind(limit)
    .fetch_all(tx)
    .await
}

// ---------------------------------------------------------------------------------------------
// Merge-queue evaluations

/// A merge group's evaluation (see README, "Merge queues").
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct QueueEvaluationRow {
    pub id: i64,
    pub repository: String,
    pub head_sha: String,
    /// The branch the group merges into.
    pub base_ref: String,
    /// The pull requests the group holds, oldest first.
    pub pull_requests: Vec<i32>,
    /// `reevaluate` or `trust_pull_requests`.
    pub mode: String,
    /// `in_progress`, `completed` or `error`.
    pub status: String,
    pub verdict: Option<String>,
    pub score: Option<i16>,
    pub block_count: Option<i32>,
    /// Violations no pull request of the group had on its own.
    pub introduced_count: i32,
    pub error: Option<String>,
    /// Why GitHub destroyed the group (`merged`, `dequeued`, `invalidated`), once it did.
    pub destroyed_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Merge-group evaluations newest first, before the cursor `before_id`.
pub async fn queue_evaluations_page(
    tx: &mut PgConnection,
    filter: &PullFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<QueueEvaluationRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT q.id, r.full_name AS repository, q.head_sha, q.base_ref,
                q.pr_numbers AS pull_requests, q.mode, q.status, q.verdict, q.score,
                q.block_count, jsonb_array_length(q.introduced) AS introduced_count, q.error,
                q.destroyed_reason, q.created_at, q.completed_at
         FROM queue_evaluations q JOIN repositories r ON r.id = q.repository_id
         WHERE ($1::text IS NULL OR r.full_name = $1)
           AND ($2::text IS NULL OR q.verdict = $2)
           AND ($3::bigint IS NULL OR q.id < $3)
         ORDER BY q.id DESC LIMIT $4",
    )
    .bind(filter.repository.as_deref())
    .bind(filter.verdict.as_deref())
    .bind(before_id)
    .bind(limit)
    .fetch_all(tx)
    .await
}

/// How many merge groups Tollgate blocked in the queue (failed evaluations).
pub async fn blocked_in_queue(
    tx: &mut PgConnection,
    repository: Option<&str>,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM queue_evaluations q JOIN repositories r ON r.id = q.repository_id
         WHERE q.verdict = 'fail' AND ($1::text IS NULL OR r.full_name = $1)",
    )
    .bind(repository)
    .fetch_one(tx)
    .await
}

// ---------------------------------------------------------------------------------------------
// Evaluations list and export

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationFilter {
    pub repository: Option<String>,
    pub pr: Option<i32>,
    /// `pass` or `fail`.
    pub verdict: Option<String>,
    /// Of `created_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct EvaluationListRow {
    pub id: i64,
    pub repository: String,
    pub pr_number: i32,
    pub head_sha: String,
    pub status: String,
    pub score: Option<i16>,
    pub verdict: Option<String>,
    pub threshold: Option<i16>,
    pub block_count: Option<i32>,
    pub override_count: Option<i32>,
    pub warning_count: Option<i32>,
    pub policy_digest: String,
    pub config_digest: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

macro_rules! evaluations_query {
    () => {
        "SELECT e.id, r.full_name AS repository, e.pr_number, e.head_sha, e.status, e.score,
                e.verdict, e.threshold, e.block_count, e.override_count, e.warning_count,
                e.policy_digest, e.config_digest, e.created_at, e.completed_at
         FROM evaluations e JOIN repositories r ON r.id = e.repository_id
         WHERE ($1::text IS NULL OR r.full_name = $1)
           AND ($2::int IS NULL OR e.pr_number = $2)
           AND ($3::text IS NULL OR e.verdict = $3)
           AND ($4::timestamptz IS NULL OR e.created_at >= $4)
           AND ($5::timestamptz IS NULL OR e.created_at < $5)
           AND ($6::bigint IS NULL OR e.id < $6)
         ORDER BY e.id DESC LIMIT $7"
    };
}

fn bind_evaluation_filter<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    filter: &'q EvaluationFilter,
    before_id: Option<i64>,
    limit: i64,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    query
        .bind(filter.repository.as_deref())
        .bind(filter.pr)
        .bind(filter.verdict.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(before_id)
        .bind(limit)
}

/// One page of evaluations (every status), newest first, before the cursor `before_id`.
pub async fn evaluations_page(
    tx: &mut PgConnection,
    filter: &EvaluationFilter,
    before_id: Option<i64>,
    limit: i64,
) -> Result<Vec<EvaluationListRow>, sqlx::Error> {
    bind_evaluation_filter(
        sqlx::query_as(evaluations_query!()),
        filter,
        before_id,
        limit,
    )
    .fetch_all(tx)
    .await
}

/// Every matching evaluation, streamed row by row from the database.
pub fn evaluations_stream<'a>(
    tx: &'a mut PgConnection,
    filter: &'a EvaluationFilter,
) -> BoxStream<'a, Result<EvaluationListRow, sqlx::Error>> {
    bind_evaluation_filter(sqlx::query_as(evaluations_query!()), filter, None, i64::MAX).fetch(tx)
}

// ---------------------------------------------------------------------------------------------
// One rule

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RuleDefinitionRow {
    pub rule_id: String,
    pub name: String,
    pub tier: String,
    pub category: String,
    pub description: String,
    pub remediation: String,
    pub override_when: String,
}

/// The definition of a rule of the pack, if there is such a rule.
pub async fn rule_definition(
    tx: &mut PgConnection,
    rule_id: &str,
) -> Result<Option<RuleDefinitionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT rule_id, name, tier, category, description, remediation, override_when
         FROM rule_definitions WHERE rule_id = $1",
    )
    .bind(rule_id)
    .fetch_optional(tx)
    .await
}

/// What a rule's violations are counted by in `rule_top`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleTopBy {
    Path,
    Repository,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct NamedCount {
    pub name: String,
    /// Distinct violations (pull request and fingerprint).
    pub violations: i64,
}

macro_rules! rule_top_query {
    ($key:literal) => {
        concat!(
            "SELECT ",
            $key,
            " AS name, count(DISTINCT (e.repository_id, e.pr_number, v.fingerprint)) AS violations
             FROM violations v JOIN evaluations e ON e.id = v.evaluation_id
             JOIN repositories r ON r.id = e.repository_id
             WHERE v.rule_id = $1 AND v.created_at >= $2 AND ",
            $key,
            " IS NOT NULL
             GROUP BY 1 ORDER BY violations DESC, name LIMIT $3"
        )
    };
}

/// The paths or repositories where a rule was violated most since `since`, at most `limit`.
pub async fn rule_top(
    tx: &mut PgConnection,
    rule_id: &str,
    since: DateTime<Utc>,
    by: RuleTopBy,
    limit: i64,
) -> Result<Vec<NamedCount>, sqlx::Error> {
    let sql = match by {
        RuleTopBy::Path => rule_top_query!("v.path"),
        RuleTopBy::Repository => rule_top_query!("r.full_name"),
    };
    sqlx::query_as(sql)
        .bind(rule_id)
        .bind(since)
        .bind(limit)
        .fetch_all(tx)
        .await
}
