//! The JSON API under `/api/v1/`. Each handler checks the caller's role in the installation of
//! the URL (another installation is "not found"), then reads inside a transaction scoped to it.

use super::access::Role;
use super::cache::Trends;
use super::cookies;
use super::export::{self, CsvRow};
use super::filters::{
    self, ALERT_PARAMS, AUDIT_PARAMS, BadParameter, EVALUATION_PARAMS, PAGE_PARAMS, PULL_PARAMS,
    Page, Params, QUEUE_PARAMS, TREND_PARAMS, VIOLATION_PARAMS,
};
use super::{ApiError, ApiUser, Credential, DashboardState};
use crate::github::events::{PrTarget, RepoRef};
use crate::jobs::{self, DashboardDecision, enqueue_dashboard_decision, enqueue_evaluation};
use crate::store::dashboard::{
    self as db, AuditFilter, AuditRow, DashboardTx, EvaluationFilter, EvaluationListRow,
    EvaluationRow, EvaluationViolationRow, NamedCount, NewApiToken, OverrideRow, PullRequestRow,
    RuleOverviewRow, RuleTopBy, ViolationFilter, ViolationRow, begin_tenant,
};
use crate::store::trends;
use crate::store::{self, AuditEntry, audit as write_audit};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The hand-kept description of this API, checked against real answers by the tests.
const OPENAPI: &str = include_str!("openapi.json");

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn me(ApiUser(user): ApiUser) -> Json<Value> {
    let csrf_token = match &user.credential {
        Credential::Session { csrf_token, .. } => Some(csrf_token.clone()),
        Credential::Token { .. } => None,
    };
    Json(json!({
        "login": user.login,
        "user_id": user.user_id,
        "installations": user.access,
        "csrf_token": csrf_token,
    }))
}

/// A rule's compliance at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleStatus {
    /// Nothing open and nothing seen in the last week.
    Green,
    /// Open violations that do not block, or violations seen in the last week.
    Yellow,
    /// Open BLOCK violations.
    Red,
}

pub fn rule_status(
    tier: &str,
    open: i64,
    last_seen: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> RuleStatus {
    if open > 0 && tier == "BLOCK" {
        RuleStatus::Red
    } else if open > 0 || last_seen.is_some_and(|seen| now - seen < Duration::days(7)) {
        RuleStatus::Yellow
    } else {
        RuleStatus::Green
    }
}

pub(super) async fn tenant(
    state: &DashboardState,
    user: &super::Principal,
    installation: i64,
) -> Result<(Role, DashboardTx), ApiError> {
    let role = user.role_in(installation)?;
    Ok((role, begin_tenant(&state.pool, installation).await?))
}

/// A cached read (cache.rs) of `installation`, made on a miss in a tenant transaction of its
/// own: requests waiting for the same read hold no connection meanwhile. The caller has checked
/// the user's role in the installation.
async fn read_tenant<T, F>(
    state: &DashboardState,
    installation: i64,
    read: F,
) -> Result<T, sqlx::Error>
where
    F: AsyncFnOnce(&mut PgConnection) -> Result<T, sqlx::Error>,
{
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let value = read(&mut tx).await?;
    tx.commit().await?;
    Ok(value)
}

/// The rules overview of `installation`, cached.
pub(super) async fn rule_overview(
    state: &DashboardState,
    installation: i64,
) -> Result<Arc<Vec<RuleOverviewRow>>, sqlx::Error> {
    state
        .cache
        .overview
        .get_or_load(installation, String::new(), || {
            read_tenant(state, installation, async |tx| db::rule_overview(tx).await)
        })
        .await
}

/// A trend chart of `installation` (its daily series and violations per rule), cached.
pub(super) async fn trend_chart(
    state: &DashboardState,
    installation: i64,
    filter: &trends::TrendFilter,
    days: u32,
    today: NaiveDate,
) -> Result<Arc<Trends>, sqlx::Error> {
    let key = format!("{days} {today} {:?} {:?}", filter.repository, filter.rule);
    state
        .cache
        .trends
        .get_or_load(installation, key, || {
            read_tenant(state, installation, async |tx| {
                let series = trends::trend_series(tx, filter, days, today).await?;
                let rules = trends::violations_by_rule(tx, filter, days, today).await?;
                Ok((series, rules))
            })
        })
        .await
}

/// Where and when a rule was violated lately.
pub struct RuleActivity {
    pub history: Vec<trends::RuleDay>,
    pub top_paths: Vec<NamedCount>,
    pub top_repositories: Vec<NamedCount>,
}

/// A rule's activity in `installation`, cached.
pub(super) async fn rule_activity(
    state: &DashboardState,
    installation: i64,
    rule_id: &str,
    now: DateTime<Utc>,
) -> Result<Arc<RuleActivity>, sqlx::Error> {
    let today = now.date_naive();
    state
        .cache
        .rule_activity
        .get_or_load(installation, format!("{rule_id} {today}"), || {
            read_tenant(state, installation, async |tx| {
                let history = trends::rule_history(tx, rule_id, today).await?;
                let since = now - Duration::days(RULE_TOP_DAYS);
                let top_paths = db::rule_top(tx, rule_id, since, RuleTopBy::Path, RULE_TOP).await?;
                let top_repositories =
                    db::rule_top(tx, rule_id, since, RuleTopBy::Repository, RULE_TOP).await?;
                Ok(RuleActivity {
                    history,
                    top_paths,
                    top_repositories,
                })
            })
        })
        .await
}

pub async fn rules(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    user.role_in(installation)?;
    let rows = rule_overview(&state, installation).await?;
    let rules: Vec<Value> = with_status(&rows, Utc::now())
        .into_iter()
        .map(|(_, value)| value)
        .collect();
    Ok(Json(json!({ "rules": rules })))
}

/// Each rule of the overview with its status, also in its JSON (as `status`).
pub(super) fn with_status(
    rows: &[RuleOverviewRow],
    now: DateTime<Utc>,
) -> Vec<(RuleStatus, Value)> {
    rows.iter()
        .map(|row| {
            let status = rule_status(&row.tier, row.open_violations, row.last_seen, now);
            let mut value = json!(row);
            value["status"] = json!(status);
            (status, value)
        })
        .collect()
}

/// A page of items and the cursor of the next page (`null` on the last one).
fn page_of<T: Serialize>(rows: Vec<T>, page: Page, id: impl Fn(&T) -> i64) -> Value {
    let (rows, next_cursor) = filters::split_page(rows, page, id);
    json!({ "items": rows, "next_cursor": next_cursor.map(|id| id.to_string()) })
}

pub async fn violations(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&VIOLATION_PARAMS, &PAGE_PARAMS])?;
    let filter = filters::violation_filter(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::violations_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page_of(rows, page, |row| row.id)))
}

/// A pull request with every evaluation, violation and override request it has had.
pub struct PullRequestView {
    pub pr: PullRequestRow,
    /// Newest first.
    pub evaluations: Vec<EvaluationRow>,
    pub violations: Vec<EvaluationViolationRow>,
    pub overrides: Vec<OverrideRow>,
}

impl PullRequestView {
    /// `None` when the installation of `tx` has no such pull request.
    pub async fn load(
        tx: &mut DashboardTx,
        repository: &str,
        number: i32,
    ) -> Result<Option<Self>, sqlx::Error> {
        let Some(pr) = db::pull_request(tx, repository, number).await? else {
            return Ok(None);
        };
        let evaluations = db::evaluations_of(tx, pr.repository_id, number).await?;
        let violations = db::violations_of_pull_request(tx, pr.repository_id, number).await?;
        let overrides = db::overrides_of_pull_request(tx, pr.repository_id, number).await?;
        Ok(Some(Self {
            pr,
            evaluations,
            violations,
            overrides,
        }))
    }

    /// The fingerprints approved overrides cover.
    pub fn overridden(&self) -> HashSet<&str> {
        self.overrides
            .iter()
            .filter(|o| o.status == "approved")
            .flat_map(|o| o.fingerprints.iter().map(String::as_str))
            .collect()
    }

    /// Each evaluation with its own violations, each saying whether an override covers it.
    pub fn evaluations_json(&self) -> Vec<Value> {
        let overridden = self.overridden();
        self.evaluations
            .iter()
            .map(|evaluation| {
                let own: Vec<Value> = self
                    .violations
                    .iter()
                    .filter(|v| v.evaluation_id == evaluation.id)
                    .map(|v| {
                        let mut value = json!(v);
                        value["overridden"] = json!(overridden.contains(v.fingerprint.as_str()));
                        value
                    })
                    .collect();
                let mut value = json!(evaluation);
                value["violations"] = json!(own);
                value
            })
            .collect()
    }
}

pub async fn pull_request(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, owner, repo, number)): Path<(i64, String, String, i32)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let view = PullRequestView::load(&mut tx, &format!("{owner}/{repo}"), number)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(json!({
        "pull_request": view.pr,
        "evaluations": view.evaluations_json(),
        "overrides": view.overrides,
    })))
}

pub async fn alerts(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&ALERT_PARAMS, &PAGE_PARAMS])?;
    let status = filters::alert_status(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::alerts_page(&mut tx, status.as_deref(), page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page_of(rows, page, |row| row.id)))
}

pub async fn audit(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&AUDIT_PARAMS, &PAGE_PARAMS])?;
    let filter = filters::audit_filter(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::audit_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page_of(rows, page, |row| row.id)))
}

#[derive(Debug, Clone, Copy)]
pub enum ExportFormat {
    Csv,
    Json,
}

/// An export format as a type, so that one generic handler serves every export route.
pub trait FormatOf {
    const FORMAT: ExportFormat;
}
pub struct Csv;
pub struct JsonFile;
impl FormatOf for Csv {
    const FORMAT: ExportFormat = ExportFormat::Csv;
}
impl FormatOf for JsonFile {
    const FORMAT: ExportFormat = ExportFormat::Json;
}

/// What can be exported: a filter read from the query string, and the rows it selects, streamed
/// from the database.
pub trait Export: Sized + Send + Sync + 'static {
    type Row: CsvRow + Send;
    /// The file name's stem.
    const NAME: &'static str;
    const PARAMS: &'static [&'static str];
    fn from_params(params: &Params) -> Result<Self, BadParameter>;
    fn rows<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> BoxStream<'a, Result<Self::Row, sqlx::Error>>;
}

impl Export for ViolationFilter {
    type Row = ViolationRow;
    const NAME: &'static str = "violations";
    const PARAMS: &'static [&'static str] = &VIOLATION_PARAMS;
    fn from_params(params: &Params) -> Result<Self, BadParameter> {
        filters::violation_filter(params)
    }
    fn rows<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> BoxStream<'a, Result<ViolationRow, sqlx::Error>> {
        db::violations_stream(tx, self).boxed()
    }
}

impl Export for EvaluationFilter {
    type Row = EvaluationListRow;
    const NAME: &'static str = "evaluations";
    const PARAMS: &'static [&'static str] = &EVALUATION_PARAMS;
    fn from_params(params: &Params) -> Result<Self, BadParameter> {
        filters::evaluation_filter(params)
    }
    fn rows<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> BoxStream<'a, Result<EvaluationListRow, sqlx::Error>> {
        db::evaluations_stream(tx, self)
    }
}

impl Export for AuditFilter {
    type Row = AuditRow;
    const NAME: &'static str = "audit";
    const PARAMS: &'static [&'static str] = &AUDIT_PARAMS;
    fn from_params(params: &Params) -> Result<Self, BadParameter> {
        filters::audit_filter(params)
    }
    fn rows<'a>(
        &'a self,
        tx: &'a mut PgConnection,
    ) -> BoxStream<'a, Result<AuditRow, sqlx::Error>> {
        db::audit_stream(tx, self)
    }
}

/// Streams every row of a date range from the database to the client: rows are encoded as they
/// arrive and sent in chunks through a small channel, so memory stays flat however long the
/// range, and a slow client slows the query instead of filling memory.
pub async fn export<E: Export, F: FormatOf>(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::parse(query.as_deref(), &[E::PARAMS])?;
    filters::export_range(&params)?;
    let filter = E::from_params(&params)?;
    // Opened before answering: a database that is down is an error status, not a cut file.
    let (_, tx) = tenant(&state, &user, installation).await?;
    let (sender, receiver) = mpsc::channel(8);
    tokio::spawn(stream_rows(tx, filter, F::FORMAT, sender));
    let body = Body::from_stream(futures_util::stream::unfold(receiver, |mut r| async move {
        r.recv().await.map(|chunk| (chunk, r))
    }));
    let (content_type, extension) = match F::FORMAT {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Json => ("application/json", "json"),
    };
    let disposition = format!(
        "attachment; filename=\"{}-{installation}.{extension}\"",
        E::NAME
    );
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

type Chunk = Result<Bytes, std::io::Error>;
const CHUNK_BYTES: usize = 32 * 1024;

async fn stream_rows<E: Export>(
    mut tx: DashboardTx,
    filter: E,
    format: ExportFormat,
    sender: mpsc::Sender<Chunk>,
) {
    let mut buffer = String::with_capacity(CHUNK_BYTES * 2);
    buffer.push_str(match format {
        ExportFormat::Csv => E::Row::CSV_HEADER,
        ExportFormat::Json => "[",
    });
    let mut first = true;
    let mut rows = filter.rows(&mut tx);
    while let Some(row) = rows.next().await {
        match row {
            Ok(row) => match format {
                ExportFormat::Csv => export::csv_line(&row, &mut buffer),
                ExportFormat::Json => export::json_item(&row, first, &mut buffer),
            },
            Err(error) => {
                tracing::error!(%error, export = E::NAME, "export failed");
                // The client sees a cut response rather than a complete-looking file.
                let _ = sender
                    .send(Err(std::io::Error::other("export failed")))
                    .await;
                return;
            }
        }
        first = false;
        if buffer.len() >= CHUNK_BYTES {
            let chunk = Bytes::from(std::mem::take(&mut buffer));
            if sender.send(Ok(chunk)).await.is_err() {
                return; // The client left.
            }
        }
    }
    drop(rows);
    if let ExportFormat::Json = format {
        buffer.push_str(if first { "]\n" } else { "\n]\n" });
    }
    let _ = sender.send(Ok(Bytes::from(buffer))).await;
    let _ = tx.commit().await;
}

/// Admin action: queue a fresh evaluation of a pull request (as a push would).
pub async fn reevaluate(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, owner, repo, number)): Path<(i64, String, String, i32)>,
) -> Result<Response, ApiError> {
    user.require_admin(installation)?;
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let repository = format!("{owner}/{repo}");
    let pr = db::pull_request(&mut tx, &repository, number)
        .await?
        .ok_or(ApiError::NotFound)?;
    let target = PrTarget {
        installation_id: installation,
        repo: RepoRef {
            id: pr.repository_id,
            owner,
            name: repo,
        },
        number: u64::try_from(number).map_err(|_| ApiError::NotFound)?,
    };
    enqueue_evaluation(&mut tx, &target).await?;
    write_audit(
        &mut tx,
        &AuditEntry {
            installation_id: installation,
            actor: &user.login,
            action: "pull_request.reevaluation_requested",
            target: &format!("{repository}#{number}"),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": true }))).into_response())
}

/// Admin action: acknowledge an open alert, by the path the Slack button and the email link
/// take: escalation stops, the Slack message is edited and a PagerDuty incident acknowledged.
pub async fn acknowledge_alert(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, alert_id)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin(installation)?;
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let before = store::alert(&mut tx, alert_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let status = match jobs::acknowledge_alert(&mut tx, alert_id, &user.login, &user.login).await? {
        Some(after) => after.status,
        None => before.status,
    };
    tx.commit().await?;
    Ok(Json(json!({ "id": alert_id, "status": status })))
}

#[derive(Deserialize, Default)]
pub struct DecisionBody {
    /// The approval note or the rejection reason.
    #[serde(default)]
    reason: Option<String>,
}

pub async fn approve_override(
    state: State<Arc<DashboardState>>,
    user: ApiUser,
    path: Path<(i64, i64)>,
    body: Option<Json<DecisionBody>>,
) -> Result<Response, ApiError> {
    decide_override(state, user, path, body, true).await
}

pub async fn reject_override(
    state: State<Arc<DashboardState>>,
    user: ApiUser,
    path: Path<(i64, i64)>,
    body: Option<Json<DecisionBody>>,
) -> Result<Response, ApiError> {
    decide_override(state, user, path, body, false).await
}

/// Admin action: approve or reject a pending override request. The decision is queued and
/// applied by a worker under the same rules as `/approve` and `/reject` (the admin's GitHub
/// permission and teams are looked up there), then the pull request is re-evaluated.
async fn decide_override(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, request_id)): Path<(i64, i64)>,
    body: Option<Json<DecisionBody>>,
    approve: bool,
) -> Result<Response, ApiError> {
    user.require_admin(installation)?;
    let reason = body
        .and_then(|Json(body)| body.reason)
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000) {
        return Err(ApiError::BadParameter(filters::BadParameter {
            name: "reason".into(),
            problem: "at most 1000 characters".into(),
        }));
    }
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let status = db::override_status(&mut tx, request_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if status != "pending" {
        return Err(ApiError::Conflict(format!(
            "the override request is {status}, not pending"
        )));
    }
    let decision = DashboardDecision {
        request_id,
        approve,
        login: user.login.clone(),
        reason: reason.clone(),
    };
    enqueue_dashboard_decision(&mut tx, installation, &decision).await?;
    write_audit(
        &mut tx,
        &AuditEntry {
            installation_id: installation,
            actor: &user.login,
            action: "override.decision_submitted",
            target: &format!("override_request:{request_id}"),
            before: None,
            after: Some(json!({ "approve": approve, "reason": reason, "via": "dashboard" })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": true }))).into_response())
}

pub async fn tokens(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin(installation)?;
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let rows = db::api_tokens(&mut tx).await?;
    tx.commit().await?;
    Ok(Json(json!({ "tokens": rows })))
}

#[derive(Deserialize)]
pub struct NewToken {
    name: String,
}

/// Creates a personal API token; its value is in this answer only.
pub async fn create_token(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    Json(request): Json<NewToken>,
) -> Result<Response, ApiError> {
    user.require_admin(installation)?;
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadParameter(filters::BadParameter {
            name: "name".into(),
            problem: "expected 1 to 100 characters".into(),
        }));
    }
    let token = format!("tgp_{}", cookies::random_token()?);
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let row = db::insert_api_token(
        &mut tx,
        &NewApiToken {
            installation_id: installation,
            user_id: user.user_id,
            login: &user.login,
            name,
            token_hash: &cookies::token_hash(&token),
        },
    )
    .await?;
    write_audit(
        &mut tx,
        &AuditEntry {
            installation_id: installation,
            actor: &user.login,
            action: "api_token.created",
            target: &format!("api_token:{}", row.id),
            before: None,
            after: Some(json!({ "name": row.name, "login": row.login })),
        },
    )
    .await?;
    tx.commit().await?;
    let mut body = json!(row);
    body["token"] = json!(token);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn revoke_token(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, token_id)): Path<(i64, i64)>,
) -> Result<Json<Value>, ApiError> {
    user.require_admin(installation)?;
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let row = db::revoke_api_token(&mut tx, token_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    write_audit(
        &mut tx,
        &AuditEntry {
            installation_id: installation,
            actor: &user.login,
            action: "api_token.revoked",
            target: &format!("api_token:{}", row.id),
            before: None,
            after: Some(json!({ "revoked_at": row.revoked_at })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!(row)))
}

/// Trend charts: a daily series (zero-filled) and violations per rule over 7, 30, 90 or 365 days.
pub async fn trends(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&TREND_PARAMS])?;
    let (filter, days) = filters::trend_filter(&params)?;
    user.role_in(installation)?;
    let today = Utc::now().date_naive();
    let chart = trend_chart(&state, installation, &filter, days, today).await?;
    let (series, rules) = &*chart;
    Ok(Json(
        json!({ "days": days, "series": series, "rules": rules }),
    ))
}

/// How many paths and repositories a rule's page lists, and over how many days.
const RULE_TOP: i64 = 10;
const RULE_TOP_DAYS: i64 = 90;

/// One rule: its definition and status, its daily history, and where it is violated most.
pub async fn rule(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path((installation, rule_id)): Path<(i64, String)>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    Params::parse(query.as_deref(), &[])?;
    let (_, tx) = tenant(&state, &user, installation).await?;
    let view = rule_view(&state, tx, installation, &rule_id).await?;
    Ok(Json(json!(view)))
}

/// What the rule endpoint answers and the rule page shows.
#[derive(Debug, Serialize)]
pub struct RuleView {
    /// The definition with `open_violations`, `last_seen` and `status`.
    pub rule: Value,
    pub history: Vec<trends::RuleDay>,
    pub top_paths: Vec<db::NamedCount>,
    pub top_repositories: Vec<db::NamedCount>,
}

/// A rule's view; an unknown rule is not found. `tx` (of `installation`) reads the definition
/// and ends; the rest is cached.
pub(super) async fn rule_view(
    state: &DashboardState,
    mut tx: DashboardTx,
    installation: i64,
    rule_id: &str,
) -> Result<RuleView, ApiError> {
    let rule_id = rule_id.to_ascii_uppercase();
    let definition = db::rule_definition(&mut tx, &rule_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    let overview = rule_overview(state, installation).await?;
    let now = Utc::now();
    let activity = rule_activity(state, installation, &rule_id, now).await?;
    let (open, last_seen) = overview
        .iter()
        .find(|row| row.rule_id == rule_id)
        .map_or((0, None), |row| (row.open_violations, row.last_seen));
    let mut rule = json!(definition);
    rule["open_violations"] = json!(open);
    rule["last_seen"] = json!(last_seen);
    rule["status"] = json!(rule_status(&definition.tier, open, last_seen, now));
    Ok(RuleView {
        rule,
        history: activity.history.clone(),
        top_paths: activity.top_paths.clone(),
        top_repositories: activity.top_repositories.clone(),
    })
}

pub async fn pulls(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&PULL_PARAMS, &PAGE_PARAMS])?;
    let filter = filters::pull_filter(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::pulls_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page_of(rows, page, |row| row.evaluation_id)))
}

/// Merge-group evaluations, newest first, with how many groups were blocked in the queue.
pub async fn queue_evaluations(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&QUEUE_PARAMS, &PAGE_PARAMS])?;
    let filter = filters::pull_filter(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::queue_evaluations_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    let blocked = db::blocked_in_queue(&mut tx, filter.repository.as_deref()).await?;
    tx.commit().await?;
    let mut body = page_of(rows, page, |row| row.id);
    body["blocked_in_queue"] = json!(blocked);
    Ok(Json(body))
}

pub async fn evaluations(
    State(state): State<Arc<DashboardState>>,
    ApiUser(user): ApiUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let params = Params::parse(query.as_deref(), &[&EVALUATION_PARAMS, &PAGE_PARAMS])?;
    let filter = filters::evaluation_filter(&params)?;
    let page = filters::page(&params)?;
    let (_, mut tx) = tenant(&state, &user, installation).await?;
    let rows = db::evaluations_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    Ok(Json(page_of(rows, page, |row| row.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_status_is_red_for_open_blocks_and_yellow_for_recent_activity() {
        let now = Utc::now();
        assert_eq!(rule_status("BLOCK", 1, Some(now), now), RuleStatus::Red);
        assert_eq!(
            rule_status("WARNING", 3, Some(now), now),
            RuleStatus::Yellow
        );
        assert_eq!(
            rule_status("BLOCK", 0, Some(now - Duration::days(2)), now),
            RuleStatus::Yellow
        );
        assert_eq!(
            rule_status("BLOCK", 0, Some(now - Duration::days(30)), now),
            RuleStatus::Green
        );
        assert_eq!(rule_status("OVERRIDE", 0, None, now), RuleStatus::Green);
    }
}
