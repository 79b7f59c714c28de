//! GitHub login: `/dashboard/login` → GitHub's authorize page → `/dashboard/auth/callback`
//! (state checked) → token exchange → who the user is and which installations they reach →
//! a session. Logout ends it.

use super::access::{InstallationAccess, Standing, role_of};
use super::cookies::{self, SESSION_COOKIE, STATE_COOKIE};
use super::templates::{self, LoginProblem};
use super::{ApiError, DashboardState, PageUser};
use crate::config::Approver;
use crate::github::oauth::{OAuthError, UserInstallation, UserToken};
use crate::jobs::installation_config::in_force;
use crate::store;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::sync::Arc;

/// How long a login lasts.
const SESSION_HOURS: i64 = 12;
/// How long the user may take on GitHub's authorize page.
const STATE_MAX_AGE_SECS: u64 = 600;

/// Starts a login: a fresh `state`, kept in a signed cookie, and off to GitHub.
pub async fn login(State(state): State<Arc<DashboardState>>) -> Result<Response, ApiError> {
    let oauth_state = cookies::random_token()?;
    let cookie = cookies::set_cookie(
        STATE_COOKIE,
        &cookies::sign(&state.key, STATE_COOKIE, &oauth_state),
        "/dashboard/auth",
        STATE_MAX_AGE_SECS,
        state.secure_cookies,
    );
    let target = state
        .oauth
        .authorize_url(&oauth_state, state.callback_url.as_deref());
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&target)).into_response())
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// GitHub's redirect back: checks `state`, signs the user in, and opens the dashboard.
pub async fn callback(
    State(state): State<Arc<DashboardState>>,
    headers: HeaderMap,
    Query(callback): Query<Callback>,
) -> Response {
    let clear_state =
        cookies::set_cookie(STATE_COOKIE, "", "/dashboard/auth", 0, state.secure_cookies);
    let result = sign_in(&state, &headers, &callback).await;
    match result {
        Ok(session_cookie) => (
            [
                (header::SET_COOKIE, clear_state),
                (header::SET_COOKIE, session_cookie),
            ],
            Redirect::to("/dashboard/"),
        )
            .into_response(),
        Err(problem) => {
            tracing::info!(problem = ?problem, "dashboard login failed");
            let status = match problem {
                LoginProblem::Github => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            let mut response = templates::login_failed(problem).into_response();
            *response.status_mut() = status;
            if let Ok(value) = clear_state.parse() {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
    }
}

async fn sign_in(
    state: &DashboardState,
    headers: &HeaderMap,
    callback: &Callback,
) -> Result<String, LoginProblem> {
    if callback.error.is_some() {
        return Err(LoginProblem::Cancelled);
    }
    let expected = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookies::find(v, STATE_COOKIE))
        .and_then(|signed| cookies::verify(&state.key, STATE_COOKIE, signed));
    let (Some(expected), Some(given), Some(code)) = (expected, &callback.state, &callback.code)
    else {
        return Err(LoginProblem::StateMismatch);
    };
    if !cookies::same_secret(&expected, given) {
        return Err(LoginProblem::StateMismatch);
    }
    let github = github_problem;
    let token = state
        .oauth
        .exchange(code, state.callback_url.as_deref())
        .await
        .map_err(github)?;
    let user = state.oauth.user(&token).await.map_err(github)?;
    let installations = state.oauth.installations(&token).await.map_err(github)?;
    let mut access = Vec::with_capacity(installations.len());
    for installation in &installations {
        access.push(access_to(state, &token, &user.login, installation).await?);
    }
    let session_id = cookies::random_token().map_err(|_| LoginProblem::Internal)?;
    let csrf_token = cookies::random_token().map_err(|_| LoginProblem::Internal)?;
    let access = serde_json::to_value(&access).map_err(|_| LoginProblem::Internal)?;
    store::dashboard::insert_session(
        &state.pool,
        &store::dashboard::NewSession {
            id_hash: &cookies::token_hash(&session_id),
            user_id: user.id,
            login: &user.login,
            access: &access,
            csrf_token: &csrf_token,
            expires_at: chrono::Utc::now() + chrono::Duration::hours(SESSION_HOURS),
        },
    )
    .await
    .map_err(|error| {
        tracing::error!(%error, "cannot store a dashboard session");
        LoginProblem::Internal
    })?;
    Ok(cookies::set_cookie(
        SESSION_COOKIE,
        &cookies::sign(&state.key, SESSION_COOKIE, &session_id),
        "/",
        (SESSION_HOURS * 3600) as u64,
        state.secure_cookies,
    ))
}

/// The user's role in one installation they can reach.
async fn access_to(
    state: &DashboardState,
    token: &UserToken,
    login: &str,
    installation: &UserInstallation,
) -> Result<InstallationAccess, LoginProblem> {
    let account = &installation.account;
    let org_owner = account.kind == "Organization"
        && state
            .oauth
            .is_org_owner(token, &account.login)
            .await
            .map_err(github_problem)?;
    let listed_admin = !org_owner && listed_admin(state, token, login, installation.id).await?;
    let role = role_of(&Standing {
        login,
        account: &account.login,
        account_kind: &account.kind,
        org_owner,
        listed_admin,
    });
    Ok(InstallationAccess {
        installation_id: installation.id,
        account: account.login.clone(),
        role,
    })
}

fn github_problem(error: OAuthError) -> LoginProblem {
    tracing::warn!(%error, "GitHub login call failed");
    LoginProblem::Github
}

/// Whether `login` is listed under `dashboard.admins` of the installation config (the cached
/// `tollgate.yml` of the account's `.github` repository) in force, by name or through a team.
/// Without a valid config no one is listed: the org owners remain admins.
async fn listed_admin(
    state: &DashboardState,
    token: &UserToken,
    login: &str,
    installation_id: i64,
) -> Result<bool, LoginProblem> {
    let internal = |error: sqlx::Error| {
        tracing::error!(%error, "cannot read the installation config");
        LoginProblem::Internal
    };
    let mut tx = store::dashboard::begin_tenant(&state.pool, installation_id)
        .await
        .map_err(internal)?;
    let cached = store::cached_installation_config(&mut tx, installation_id)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    let admins = cached
        .map(|c| in_force(installation_id, c.content.as_deref(), c.error.as_deref()))
        .map(|config| config.dashboard.admins)
        .unwrap_or_default();
    for admin in admins {
        let listed = match admin {
            Approver::User(name) => name.eq_ignore_ascii_case(login),
            Approver::Team(team) => state
                .oauth
                .is_team_member(token, login, &team.org, &team.slug)
                .await
                .map_err(github_problem)?,
        };
        if listed {
            return Ok(true);
        }
    }
    Ok(false)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: String,
}

/// Ends the session (CSRF-checked: a form post with the session's token).
pub async fn logout(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Form(form): Form<LogoutForm>,
) -> Result<Response, ApiError> {
    let super::Credential::Session {
        id_hash,
        csrf_token,
    } = &user.credential
    else {
        return Err(ApiError::Unauthenticated);
    };
    if !cookies::same_secret(&form.csrf_token, csrf_token) {
        return Err(ApiError::Csrf);
    }
    store::dashboard::delete_session(&state.pool, id_hash).await?;
    let clear = cookies::set_cookie(SESSION_COOKIE, "", "/", 0, state.secure_cookies);
    Ok(([(header::SET_COOKIE, clear)], templates::logged_out()).into_response())
}
