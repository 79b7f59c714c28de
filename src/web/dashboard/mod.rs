//! The compliance dashboard (`/dashboard/`, server-rendered) and its JSON API (`/api/v1/`),
//! behind GitHub login. Every query runs as `tollgate_dashboard` inside a transaction scoped to
//! one installation (see `store::dashboard`), so PostgreSQL itself keeps tenants apart.

pub mod access;
mod api;
mod auth;
mod cache;
pub mod charts;
mod cookies;
mod error;
mod export;
pub mod filters;
mod live;
mod pages;
mod rate_limit;
mod summary;
mod templates;

use crate::config::{AppSettings, SessionKey};
use crate::github::oauth::OAuthClient;
use crate::store;
use crate::store::dashboard::{AuditFilter, EvaluationFilter, ViolationFilter};
use access::{InstallationAccess, Role, role_in};
use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{delete, get, post};
pub use error::ApiError;
use pages::PageError;
use rate_limit::{REQUESTS_PER_MINUTE, RateLimiter};
use sqlx::PgPool;
use std::sync::Arc;

/// Everything the dashboard's routes share.
pub struct DashboardState {
    /// Connections the dashboard's transactions run on (each becomes `tollgate_dashboard`).
    pool: PgPool,
    oauth: OAuthClient,
    key: SessionKey,
    /// Where GitHub sends the browser back; without `PUBLIC_URL`, the app's registered callback.
    callback_url: Option<String>,
    /// Cookies are `Secure` when the app is served over https.
    secure_cookies: bool,
    limiter: RateLimiter,
    /// GitHub's web address, for links to pull requests.
    web_url: String,
    /// For the health strip.
    slack_enabled: bool,
    email_enabled: bool,
    live: live::LiveUpdates,
    /// Aggregate reads, dropped by live updates.
    cache: Arc<cache::Caches>,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardStartError {
    #[error("cannot connect with DASHBOARD_DATABASE_URL: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot set up the GitHub OAuth client: {0}")]
    Github(#[from] crate::github::oauth::OAuthError),
}

impl DashboardState {
    /// The dashboard's state, or `None` (with one log line saying why) when it is off.
    pub async fn from_settings(
        settings: &AppSettings,
        main_pool: &PgPool,
    ) -> Result<Option<Arc<Self>>, DashboardStartError> {
        let Some(dashboard) = &settings.dashboard else {
            tracing::info!(
                "dashboard is off (SESSION_KEY is not set): /dashboard/ and /api/v1/ are not served"
            );
            return Ok(None);
        };
        let pool = match &dashboard.database_url {
            Some(url) => store::connect(url.expose()).await?,
            None => main_pool.clone(),
        };
        let oauth = OAuthClient::new(
            &dashboard.web_url,
            &settings.github_api_url,
            &dashboard.client_id,
            dashboard.client_secret.expose(),
            &settings.trust,
        )?;
        let public_url = settings.public_url.as_deref();
        let cache = Arc::new(cache::Caches::default());
        Ok(Some(Arc::new(Self {
            pool,
            oauth,
            key: dashboard.session_key.clone(),
            callback_url: public_url.map(|url| format!("{url}/dashboard/auth/callback")),
            secure_cookies: public_url.is_some_and(|url| url.starts_with("https://")),
            limiter: RateLimiter::per_minute(REQUESTS_PER_MINUTE),
            web_url: dashboard.web_url.clone(),
            slack_enabled: settings.slack.is_some(),
            email_enabled: settings.email.is_some(),
            live: live::LiveUpdates::start(main_pool.clone(), cache.clone()),
            cache,
        })))
    }
}

pub fn router(state: Arc<DashboardState>) -> Router {
    let installation = "/api/v1/installations/{installation}";
    let page = "/dashboard/installations/{installation}";
    Router::new()
        .route("/dashboard", get(|| async { Redirect::to("/dashboard/") }))
        .route("/dashboard/", get(pages::index))
        .route("/dashboard/login", get(auth::login))
        .route("/dashboard/auth/callback", get(auth::callback))
        .route("/dashboard/logout", post(auth::logout))
        .route("/dashboard/assets/dashboard.js", get(pages::script))
        .route(&format!("{page}/"), get(pages::overview))
        .route(&format!("{page}/violations"), get(pages::violations))
        .route(
            &format!("{page}/repos/{{owner}}/{{repo}}/pulls/{{number}}"),
            get(pages::pull_request),
        )
        .route(&format!("{page}/pulls"), get(pages::pulls))
        .route(&format!("{page}/rules/{{rule}}"), get(pages::rule))
        .route(&format!("{page}/trends"), get(pages::trends))
        .route(&format!("{page}/alerts"), get(pages::alerts))
        .route(&format!("{page}/audit"), get(pages::audit))
        .route(&format!("{page}/events"), get(live::events))
        .route("/api/v1/openapi.json", get(api::openapi))
        .route("/api/v1/me", get(api::me))
        .route(&format!("{installation}/rules"), get(api::rules))
        .route(&format!("{installation}/violations"), get(api::violations))
        .route(
            &format!("{installation}/repos/{{owner}}/{{repo}}/pulls/{{number}}"),
            get(api::pull_request),
        )
        .route(
            &format!("{installation}/repos/{{owner}}/{{repo}}/pulls/{{number}}/reevaluate"),
            post(api::reevaluate),
        )
        .route(&format!("{installation}/alerts"), get(api::alerts))
        .route(
            &format!("{installation}/alerts/{{alert}}/acknowledge"),
            post(api::acknowledge_alert),
        )
        .route(
            &format!("{installation}/overrides/{{override}}/approve"),
            post(api::approve_override),
        )
        .route(
            &format!("{installation}/overrides/{{override}}/reject"),
            post(api::reject_override),
        )
        .route(&format!("{installation}/audit"), get(api::audit))
        .route(
            &format!("{installation}/exports/violations.csv"),
            get(api::export::<ViolationFilter, api::Csv>),
        )
        .route(
            &format!("{installation}/exports/violations.json"),
            get(api::export::<ViolationFilter, api::JsonFile>),
        )
        .route(
            &format!("{installation}/tokens"),
            get(api::tokens).post(api::create_token),
        )
        .route(
            &format!("{installation}/tokens/{{token}}"),
            delete(api::revoke_token),
        )
        .route(&format!("{installation}/trends"), get(api::trends))
        .route(&format!("{installation}/rules/{{rule}}"), get(api::rule))
        .route(&format!("{installation}/pulls"), get(api::pulls))
        .route(
            &format!("{installation}/queue-evaluations"),
            get(api::queue_evaluations),
        )
        .route(
            &format!("{installation}/evaluations"),
            get(api::evaluations),
        )
        .route(
            &format!("{installation}/exports/evaluations.csv"),
            get(api::export::<EvaluationFilter, api::Csv>),
        )
        .route(
            &format!("{installation}/exports/evaluations.json"),
            get(api::export::<EvaluationFilter, api::JsonFile>),
        )
        .route(
            &format!("{installation}/exports/audit.csv"),
            get(api::export::<AuditFilter, api::Csv>),
        )
        .route(
            &format!("{installation}/exports/audit.json"),
            get(api::export::<AuditFilter, api::JsonFile>),
        )
        .with_state(state)
}

/// How a request proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// The session cookie: state-changing requests must also carry its CSRF token.
    Session { id_hash: String, csrf_token: String },
    /// A personal API token: read-only, one installation.
    Token { id: i64 },
}

/// The person behind a request and what they may see.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub login: String,
    pub access: Vec<InstallationAccess>,
    pub credential: Credential,
}

impl Principal {
    /// The caller's role in the installation; another installation is "not found".
    pub fn role_in(&self, installation_id: i64) -> Result<Role, ApiError> {
        role_in(&self.access, installation_id).ok_or(ApiError::NotFound)
    }

    /// Admin actions need an admin logged in with a session (API tokens only read).
    pub fn require_admin(&self, installation_id: i64) -> Result<(), ApiError> {
        match (self.role_in(installation_id)?, &self.credential) {
            (Role::Admin, Credential::Session { .. }) => Ok(()),
            _ => Err(ApiError::Forbidden),
        }
    }
}

/// Finds the caller from an `Authorization: Bearer` token or the session cookie; `None` when
/// the request carries neither, an error when what it carries is not valid.
async fn authenticate(
    state: &DashboardState,
    parts: &Parts,
) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthenticated)?;
        let row =
            store::dashboard::api_token_by_hash(&state.pool, &cookies::token_hash(token.trim()))
                .await?
                .ok_or(ApiError::Unauthenticated)?;
        return Ok(Some(Principal {
            user_id: row.user_id,
            login: row.login,
            access: vec![InstallationAccess {
                installation_id: row.installation_id,
                account: String::new(),
                role: Role::Viewer,
            }],
            credential: Credential::Token { id: row.id },
        }));
    }
    session_principal(state, parts).await
}

/// The caller of a session cookie, if it is signed with our key and its session is alive.
async fn session_principal(
    state: &DashboardState,
    parts: &Parts,
) -> Result<Option<Principal>, ApiError> {
    let signed = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookies::find(v, cookies::SESSION_COOKIE));
    let Some(id) = signed.and_then(|s| cookies::verify(&state.key, cookies::SESSION_COOKIE, s))
    else {
        return Ok(None);
    };
    let id_hash = cookies::token_hash(&id);
    let Some(row) = store::dashboard::session(&state.pool, &id_hash).await? else {
        return Ok(None);
    };
    // A session whose access list no longer parses is treated as logged out.
    let Ok(access) = serde_json::from_value::<Vec<InstallationAccess>>(row.access) else {
        return Ok(None);
    };
    Ok(Some(Principal {
        user_id: row.user_id,
        login: row.login,
        access,
        credential: Credential::Session {
            id_hash,
            csrf_token: row.csrf_token,
        },
    }))
}

/// A JSON API caller: authenticated, within the rate limit, and with the CSRF token on
/// state-changing requests made with the session cookie.
pub struct ApiUser(pub Principal);

impl FromRequestParts<Arc<DashboardState>> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<DashboardState>,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(state, parts)
            .await?
            .ok_or(ApiError::Unauthenticated)?;
        state
            .limiter
            .check(principal.user_id)
            .map_err(ApiError::RateLimited)?;
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if let Credential::Session { csrf_token, .. } = &principal.credential
            && !safe
        {
            let sent = parts
                .headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !cookies::same_secret(sent, csrf_token) {
                return Err(ApiError::Csrf);
            }
        }
        Ok(Self(principal))
    }
}

/// A dashboard page's viewer, logged in with the session cookie. Anyone else (no cookie, a
/// forged or expired one) is sent to the login page.
pub struct PageUser(pub Principal);

impl FromRequestParts<Arc<DashboardState>> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<DashboardState>,
    ) -> Result<Self, Self::Rejection> {
        match session_principal(state, parts).await {
            // Pages and the API draw on the same bucket: a page costs what an API call does.
            Ok(Some(principal)) => match state.limiter.check(principal.user_id) {
                Ok(()) => Ok(Self(principal)),
                Err(seconds) => {
                    Err(PageError::from(ApiError::RateLimited(seconds)).into_response())
                }
            },
            Ok(None) => Err(Redirect::to("/dashboard/login").into_response()),
            Err(error) => Err(PageError::from(error).into_response()),
        }
    }
}
