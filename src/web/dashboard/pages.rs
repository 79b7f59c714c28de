//! The dashboard's pages, server-rendered. Each reads inside a transaction scoped to the
//! installation of its URL, like the JSON API, and shows the same data.

use super::access::{InstallationAccess, Role};
use super::api::{PullRequestView, RuleStatus, rule_overview, rule_view, trend_chart, with_status};
use super::charts::{self, Series};
use super::error::ApiError;
use super::filters::{
    self, ALERT_PARAMS, AUDIT_PARAMS, BadParameter, PAGE_PARAMS, PULL_PARAMS, Page, Params,
    TREND_PARAMS, VIOLATION_PARAMS,
};
use super::summary::why;
use super::{Credential, DashboardState, PageUser, Principal, templates};
use crate::store::dashboard::{self as db, DashboardTx, HealthStripRow, begin_tenant};
use crate::store::trends::{RULE_HISTORY_DAYS, TrendDay};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::Utc;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What every page of an installation shows around its content.
#[derive(Debug, Serialize)]
pub struct Frame {
    installation_id: i64,
    account: String,
    role: Role,
    admin: bool,
    login: String,
    csrf_token: String,
    /// Which navigation entry is current.
    section: &'static str,
    /// `/dashboard/installations/{id}`.
    base: String,
    /// `/api/v1/installations/{id}`, where admin actions go.
    api: String,
    health: HealthStripRow,
    slack: bool,
    email: bool,
    /// `github.com` or `GitHub Enterprise Server 3.14.2`, once known, with the features its
    /// version lacks.
    github_server: Option<String>,
    github_features_off: Vec<String>,
}

/// A page that could not be shown: the login page for someone not logged in, otherwise an
/// error page with the status the JSON API would give.
#[derive(Debug)]
pub struct PageError(ApiError);

impl<E: Into<ApiError>> From<E> for PageError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if matches!(self.0, ApiError::Unauthenticated) {
            return Redirect::to("/dashboard/login").into_response();
        }
        if status.is_server_error() {
            tracing::error!(error = %self.0, "dashboard page failed");
        }
        let message = if matches!(self.0, ApiError::NotFound) {
            "There is nothing here, or you may not see it.".to_owned()
        } else if status == StatusCode::INTERNAL_SERVER_ERROR {
            "Tollgate could not show this page. Try again in a moment.".to_owned()
        } else {
            self.0.to_string()
        };
        let page = templates::page(
            "error",
            json!({ "status": status.as_u16(), "message": message }),
        );
        let mut response = (status, page).into_response();
        if let ApiError::RateLimited(seconds) = self.0 {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The installations the user may open, with their role in each.
pub async fn index(PageUser(user): PageUser) -> Response {
    match &user.credential {
        Credential::Session { csrf_token, .. } => {
            let page: Html<String> = templates::index(&user.login, csrf_token, &user.access);
            page.into_response()
        }
        Credential::Token { .. } => Redirect::to("/dashboard/login").into_response(),
    }
}

/// The page script: live refresh and admin actions.
pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../../../assets/dashboard.js"),
    )
        .into_response()
}

/// Opens the installation's transaction and reads the frame; another installation is "not
/// found".
async fn open(
    state: &DashboardState,
    user: &Principal,
    installation: i64,
    section: &'static str,
) -> Result<(Frame, DashboardTx), PageError> {
    let role = user.role_in(installation)?;
    let account = user
        .access
        .iter()
        .find(|a: &&InstallationAccess| a.installation_id == installation)
        .map(|a| a.account.clone())
        .unwrap_or_default();
    let csrf_token = match &user.credential {
        Credential::Session { csrf_token, .. } => csrf_token.clone(),
        Credential::Token { .. } => String::new(),
    };
    let mut tx = begin_tenant(&state.pool, installation).await?;
    let health = db::health_strip(&mut tx).await?;
    let server = crate::github::server::current();
    let frame = Frame {
        installation_id: installation,
        account,
        role,
        admin: role == Role::Admin,
        login: user.login.clone(),
        csrf_token,
        section,
        base: format!("/dashboard/installations/{installation}"),
        api: format!("/api/v1/installations/{installation}"),
        health,
        slack: state.slack_enabled,
        email: state.email_enabled,
        github_server: server.map(|server| server.to_string()),
        github_features_off: server
            .map(|server| {
                server
                    .features_off()
                    .into_iter()
                    .map(|off| off.reason)
                    .collect()
            })
            .unwrap_or_default(),
    };
    Ok((frame, tx))
}

/// Renders `name` with the frame and `context`; `bad` input makes it a 400 that says what.
fn render(name: &str, frame: Frame, mut context: Value, bad: Option<BadParameter>) -> Response {
    context["frame"] = json!(frame);
    context["bad"] = json!(
        bad.as_ref()
            .map(|b| json!({ "name": b.name, "problem": b.problem }))
    );
    let status = if bad.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    (status, templates::page(name, context)).into_response()
}

/// A list page's query: the filter form as typed (shown again, also when it is wrong) and,
/// when everything parses, the parameters, the parsed filter and the page.
type ListRequest<F> = (
    BTreeMap<String, String>,
    Result<(Params, F, Page), BadParameter>,
);

fn list_request<F>(
    query: Option<&str>,
    names: &[&str],
    parse: impl FnOnce(&Params) -> Result<F, BadParameter>,
) -> ListRequest<F> {
    let (form, params) = form_request(query, names, &PAGE_PARAMS);
    let parsed = params.and_then(|params| {
        let filter = parse(&params)?;
        let page = filters::page(&params)?;
        Ok((params, filter, page))
    });
    (form, parsed)
}

/// A page's query parsed against its filter `names` and `others` (paging, say), and the filter
/// form as typed: empty when the query does not parse.
fn form_request(
    query: Option<&str>,
    names: &[&str],
    others: &[&str],
) -> (BTreeMap<String, String>, Result<Params, BadParameter>) {
    let params = Params::parse(query, &[names, others]);
    let form = params
        .as_ref()
        .map_or_else(|_| Params::default().form(names), |p| p.form(names));
    (form, params)
}

/// The page's rows and the next page's query string (its filters and cursor), if any.
fn paginate<T>(
    rows: Vec<T>,
    page: Page,
    params: &Params,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<String>) {
    let (rows, cursor) = filters::split_page(rows, page, id);
    let next = cursor
        .map(|cursor| params.query_string(&["cursor"], Some(("cursor", &cursor.to_string()))));
    (rows, next)
}

pub async fn overview(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
) -> Result<Response, PageError> {
    let (frame, tx) = open(&state, &user, installation, "overview").await?;
    tx.commit().await?;
    let rows = rule_overview(&state, installation).await?;
    let mut counts = json!({ "red": 0, "yellow": 0, "green": 0 });
    let rules: Vec<Value> = with_status(&rows, Utc::now())
        .into_iter()
        .map(|(status, value)| {
            let key = match status {
                RuleStatus::Red => "red",
                RuleStatus::Yellow => "yellow",
                RuleStatus::Green => "green",
            };
            counts[key] = json!(counts[key].as_i64().unwrap_or_default() + 1);
            value
        })
        .collect();
    Ok(render(
        "overview",
        frame,
        json!({ "rules": rules, "counts": counts }),
        None,
    ))
}

pub async fn violations(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let (frame, mut tx) = open(&state, &user, installation, "violations").await?;
    let (form, parsed) = list_request(
        query.as_deref(),
        &VIOLATION_PARAMS,
        filters::violation_filter,
    );
    let (params, filter, page) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => {
            let context =
                json!({ "form": form, "items": [], "next_query": null, "export_query": null });
            return Ok(render("violations", frame, context, Some(bad)));
        }
    };
    let rows = db::violations_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    let (items, next_query) = paginate(rows, page, &params, |row| row.id);
    let export_query = filters::export_range(&params)
        .is_ok()
        .then(|| params.query_string(&PAGE_PARAMS, None));
    let context = json!({
        "form": form,
        "items": items,
        "next_query": next_query,
        "export_query": export_query,
    });
    Ok(render("violations", frame, context, None))
}

pub async fn pull_request(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path((installation, owner, repo, number)): Path<(i64, String, String, i32)>,
) -> Result<Response, PageError> {
    let (frame, mut tx) = open(&state, &user, installation, "pulls").await?;
    let repository = format!("{owner}/{repo}");
    let view = PullRequestView::load(&mut tx, &repository, number)
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    let why = why(&view.evaluations, &view.violations, &view.overridden());
    let context = json!({
        "pr": view.pr,
        "github_url": format!("{}/{repository}/pull/{number}", state.web_url),
        "why": why,
        "evaluations": view.evaluations_json(),
        "overrides": view.overrides,
    });
    Ok(render("pull_request", frame, context, None))
}

pub async fn alerts(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let (frame, mut tx) = open(&state, &user, installation, "alerts").await?;
    let (_, parsed) = list_request(query.as_deref(), &ALERT_PARAMS, filters::alert_status);
    let (params, status, page) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => {
            let context = json!({ "status": "", "items": [], "next_query": null });
            return Ok(render("alerts", frame, context, Some(bad)));
        }
    };
    let rows = db::alerts_page(&mut tx, status.as_deref(), page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    let (items, next_query) = paginate(rows, page, &params, |row| row.id);
    let context = json!({
        "status": status.unwrap_or_default(),
        "items": items,
        "next_query": next_query,
    });
    Ok(render("alerts", frame, context, None))
}

pub async fn audit(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let (frame, mut tx) = open(&state, &user, installation, "audit").await?;
    let (form, parsed) = list_request(query.as_deref(), &AUDIT_PARAMS, filters::audit_filter);
    let (params, filter, page) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => {
            let context = json!({ "form": form, "items": [], "next_query": null });
            return Ok(render("audit", frame, context, Some(bad)));
        }
    };
    let rows = db::audit_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    tx.commit().await?;
    let (items, next_query) = paginate(rows, page, &params, |row| row.id);
    let context = json!({ "form": form, "items": items, "next_query": next_query });
    Ok(render("audit", frame, context, None))
}

/// Merge-group evaluations shown on the pull requests page.
const QUEUE_GROUPS_SHOWN: i64 = 20;

pub async fn pulls(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let (frame, mut tx) = open(&state, &user, installation, "pulls").await?;
    let (form, parsed) = list_request(query.as_deref(), &PULL_PARAMS, filters::pull_filter);
    let (params, filter, page) = match parsed {
        Ok(parsed) => parsed,
        Err(bad) => {
            let context = json!({
                "form": form,
                "items": [],
                "next_query": null,
                "queue": { "groups": [], "blocked": 0 },
            });
            return Ok(render("pulls", frame, context, Some(bad)));
        }
    };
    let rows = db::pulls_page(&mut tx, &filter, page.before_id, page.limit + 1).await?;
    // The merge queue's latest groups of the same repository and verdict, beside the list.
    let groups = db::queue_evaluations_page(&mut tx, &filter, None, QUEUE_GROUPS_SHOWN).await?;
    let blocked_in_queue = db::blocked_in_queue(&mut tx, filter.repository.as_deref()).await?;
    tx.commit().await?;
    let (items, next_query) = paginate(rows, page, &params, |row| row.evaluation_id);
    let context = json!({
        "form": form,
        "items": items,
        "next_query": next_query,
        "queue": { "groups": groups, "blocked": blocked_in_queue },
    });
    Ok(render("pulls", frame, context, None))
}

pub async fn rule(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path((installation, rule_id)): Path<(i64, String)>,
) -> Result<Response, PageError> {
    let (frame, tx) = open(&state, &user, installation, "overview").await?;
    let view = rule_view(&state, tx, installation, &rule_id).await?;
    let history = &view.history;
    let days: Vec<String> = history.iter().map(|d| d.day.to_string()).collect();
    let chart = charts::line_chart(
        "Violations per day",
        &days,
        &[
            Series {
                name: "found".into(),
                colour: TIER_COLOURS[0],
                values: history.iter().map(|d| d.violations as f64).collect(),
            },
            Series {
                name: "new".into(),
                colour: SCORE_COLOUR,
                values: history.iter().map(|d| d.new_violations as f64).collect(),
            },
        ],
        None,
    );
    let mut context = json!(view);
    context["history_chart"] = json!(chart);
    context["history_days"] = json!(RULE_HISTORY_DAYS);
    Ok(render("rule", frame, context, None))
}

const SCORE_COLOUR: &str = "#0969da";
/// BLOCK, OVERRIDE, WARNING.
const TIER_COLOURS: [&str; 3] = ["#cf222e", "#bf8700", "#8c959f"];

pub async fn trends(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let (frame, tx) = open(&state, &user, installation, "trends").await?;
    let (form, params) = form_request(query.as_deref(), &TREND_PARAMS, &[]);
    let (filter, days) = match params.and_then(|p| filters::trend_filter(&p)) {
        Ok(parsed) => parsed,
        Err(bad) => {
            let context = json!({ "form": form, "days": 0, "charts": null, "rules": [] });
            return Ok(render("trends", frame, context, Some(bad)));
        }
    };
    tx.commit().await?;
    let today = Utc::now().date_naive();
    let chart = trend_chart(&state, installation, &filter, days, today).await?;
    let (series, rules) = &*chart;
    let labels: Vec<String> = series.iter().map(|d| d.day.to_string()).collect();
    let score = charts::line_chart(
        "Average score",
        &labels,
        &[Series {
            name: "average score".into(),
            colour: SCORE_COLOUR,
            values: series
                .iter()
                .map(|d| d.average_score.unwrap_or(f64::NAN))
                .collect(),
        }],
        Some(100.0),
    );
    let tier = |name: &str, colour: &'static str, count: fn(&TrendDay) -> i64| Series {
        name: name.to_owned(),
        colour,
        values: series.iter().map(|d| count(d) as f64).collect(),
    };
    let violations = charts::stacked_bars(
        "Violations per day, by tier",
        &labels,
        &[
            tier("BLOCK", TIER_COLOURS[0], |d| d.block),
            tier("OVERRIDE", TIER_COLOURS[1], |d| d.r#override),
            tier("WARNING", TIER_COLOURS[2], |d| d.warning),
        ],
    );
    let most = rules.iter().map(|r| r.violations).max().unwrap_or(0).max(1);
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| {
            let mut value = json!(r);
            value["percent"] = json!(r.violations * 100 / most);
            value
        })
        .collect();
    let context = json!({
        "form": form,
        "days": days,
        "charts": { "score": score, "violations": violations },
        "rules": rules,
        "evaluations": series.iter().map(|d| d.evaluations).sum::<i64>(),
    });
    Ok(render("trends", frame, context, None))
}
