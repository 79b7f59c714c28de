//! GitHub's web login for the fake GitHub (a child module of `fake_github`): the authorize
//! redirect, the code-for-token exchange (which, like GitHub, answers errors with HTTP 200 and an
//! `error` field), and the user-token API the dashboard reads (`/user`, `/user/installations`,
//! `/user/memberships/orgs/{org}`).

use super::{FakeGithub, FakeState, Incoming, Reply, team_key};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Default)]
pub(super) struct OAuthState {
    client: Option<(String, String)>,
    /// The app's registered callback URL: used when the authorize request names none, and the
    /// prefix a named one must start with.
    callback_url: Option<String>,
    /// Lower-case login → user.
    users: HashMap<String, User>,
    /// Who the browser is signed in to GitHub as.
    signed_in: Option<String>,
    /// One-time codes → login.
    codes: HashMap<String, String>,
    /// User tokens → login.
    tokens: HashMap<String, String>,
    /// (org, login), lower case → `admin` or `member`.
    org_roles: HashMap<(String, String), String>,
    next: u64,
    exchanges: u32,
}

struct User {
    login: String,
    id: u64,
    /// (installation id, account login, account type).
    installations: Vec<(u64, String, String)>,
}

impl FakeGithub {
    /// Registers the app's OAuth credentials (`GITHUB_CLIENT_ID` / `GITHUB_CLIENT_SECRET`).
    pub fn set_oauth_app(&self, client_id: &str, client_secret: &str, callback_url: &str) {
        let mut state = self.state();
        state.oauth.client = Some((client_id.to_owned(), client_secret.to_owned()));
        state.oauth.callback_url = Some(callback_url.to_owned());
    }

    /// A GitHub user who can sign in.
    pub fn add_user(&self, login: &str, id: u64) {
        self.state().oauth.users.insert(
            login.to_ascii_lowercase(),
            User {
                login: login.to_owned(),
                id,
                installations: Vec::new(),
            },
        );
    }

    /// Lists an installation among the user's (`/user/installations`): the user reaches at
    /// least one of its repositories. `account_type` is `Organization` or `User`.
    pub fn give_installation_access(
        &self,
        login: &str,
        installation_id: u64,
        account: &str,
        account_type: &str,
    ) {
        let mut state = self.state();
        let user = state
            .oauth
            .users
            .get_mut(&login.to_ascii_lowercase())
            .unwrap_or_else(|| panic!("add_user({login:?}) first"));
        user.installations
            .push((installation_id, account.to_owned(), account_type.to_owned()));
    }

    /// Makes `login` an active member of `org` with `role` (`admin` = owner, or `member`).
    pub fn set_org_role(&self, org: &str, login: &str, role: &str) {
        self.state().oauth.org_roles.insert(
            (org.to_ascii_lowercase(), login.to_ascii_lowercase()),
            role.to_owned(),
        );
    }

    /// The browser that follows the authorize redirect is signed in to GitHub as `login`.
    pub fn sign_in_browser_as(&self, login: &str) {
        self.state().oauth.signed_in = Some(login.to_ascii_lowercase());
    }

    /// How many code-for-token exchanges were asked.
    pub fn oauth_exchanges(&self) -> u32 {
        self.state().oauth.exchanges
    }
}

/// Answers `/login/oauth/*` (served on the web host, which the fake shares with the API), whose
/// bodies are forms rather than JSON; `None` for every other path.
pub(super) fn answer_web_login(
    state: &mut FakeState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<Reply> {
    let oauth = &mut state.oauth;
    match (method.as_str(), path) {
        ("GET", "/login/oauth/authorize") => Some(authorize(oauth, &form(query.unwrap_or("")))),
        ("POST", "/login/oauth/access_token") => {
            oauth.exchanges += 1;
            let text = String::from_utf8_lossy(body);
            let params = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map
                    .into_iter()
                    .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                    .collect(),
                _ => form(&text),
            };
            Some(exchange(oauth, &params))
        }
        _ => None,
    }
}

fn form(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn authorize(oauth: &mut OAuthState, query: &HashMap<String, String>) -> Reply {
    let Some((client_id, _)) = &oauth.client else {
        return Reply::message(404, "no OAuth app registered (set_oauth_app)");
    };
    if query.get("client_id") != Some(client_id) {
        return Reply::message(404, "unknown client_id");
    }
    let Some(login) = oauth.signed_in.clone() else {
        return Reply::message(401, "the browser is not signed in (sign_in_browser_as)");
    };
    let registered = oauth.callback_url.clone().unwrap_or_default();
    let target = match query.get("redirect_uri") {
        Some(uri) if uri.starts_with(&registered) => uri.clone(),
        Some(_) => return Reply::message(400, "redirect_uri does not match the callback URL"),
        None => registered,
    };
    oauth.next += 1;
    let code = format!("code{:08}", oauth.next);
    oauth.codes.insert(code.clone(), login);
    let mut location = format!("{target}?code={code}");
    if let Some(state) = query.get("state") {
        location.push_str("&state=");
        location.push_str(&form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>());
    }
    Reply {
        status: 302,
        body: None,
        headers: vec![("location".to_owned(), location)],
    }
}

fn exchange(oauth: &mut OAuthState, params: &HashMap<String, String>) -> Reply {
    let refused = |error: &str, description: &str| {
        Reply::json(
            200,
            json!({
                "error": error,
                "error_description": description,
                "error_uri": "https://docs.github.com/apps/troubleshooting-oauth-app-access-token-request-errors"
            }),
        )
    };
    let credentials_ok = oauth.client.as_ref().is_some_and(|(id, secret)| {
        params.get("client_id") == Some(id) && params.get("client_secret") == Some(secret)
    });
    if !credentials_ok {
        return refused(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let Some(login) = params.get("code").and_then(|code| oauth.codes.remove(code)) else {
        return refused(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    oauth.next += 1;
    let token = format!("ghu_fake{:016}", oauth.next);
    oauth.tokens.insert(token.clone(), login);
    Reply::json(
        200,
        json!({ "access_token": token, "token_type": "bearer", "scope": "" }),
    )
}

/// A request of the user-token API: below `/user`, or made with a user token.
pub(super) fn is_user_request(oauth: &OAuthState, req: &Incoming<'_>) -> bool {
    req.path.starts_with("/user") || req.bearer().is_some_and(|t| oauth.tokens.contains_key(t))
}

/// Answers the user-token API; `None` for every other path.
pub(super) fn answer_user_api(state: &FakeState, req: &Incoming<'_>) -> Option<Reply> {
    if req.method != Method::GET {
        return None;
    }
    let oauth = &state.oauth;
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let user = req
        .bearer()
        .and_then(|token| oauth.tokens.get(token))
        .and_then(|login| oauth.users.get(login));
    let Some(user) = user else {
        return Some(Reply::message(401, "Bad credentials"));
    };
    let reply = match segments.as_slice() {
        ["user"] => Reply::json(200, user_json(user)),
        ["user", "installations"] => {
            let per_page = req.query_number("per_page", 30).clamp(1, 100);
            let page = req.query_number("page", 1).max(1);
            let all: Vec<Value> = user
                .installations
                .iter()
                .map(|(id, account, kind)| {
                    json!({
                        "id": id,
                        "app_id": 1,
                        "target_type": kind,
                        "account": { "login": account, "id": 500 + id, "type": kind },
                        "permissions": { "checks": "write" },
                        "events": ["pull_request"]
                    })
                })
                .collect();
            let shown: Vec<Value> = all
                .iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .cloned()
                .collect();
            Reply::json(
                200,
                json!({ "total_count": all.len(), "installations": shown }),
            )
        }
        ["user", "memberships", "orgs", org] => {
            let key = (org.to_ascii_lowercase(), user.login.to_ascii_lowercase());
            match oauth.org_roles.get(&key) {
                Some(role) => Reply::json(
                    200,
                    json!({
                        "state": "active",
                        "role": role,
                        "organization": { "login": org },
                        "user": user_json(user)
                    }),
                ),
                None => Reply::not_found(),
            }
        }
        // A user sees the teams of the organisations they belong to.
        ["orgs", org, "teams", team_slug, "memberships", member] => {
            match state
                .team_memberships
                .get(&team_key(org, team_slug, member))
            {
                Some(membership) => Reply::json(
                    200,
                    json!({ "role": "member", "state": membership, "url": "" }),
                ),
                None => Reply::not_found(),
            }
        }
        _ => return None,
    };
    Some(reply)
}

fn user_json(user: &User) -> Value {
    json!({ "login": user.login, "id": user.id, "type": "User", "site_admin": false })
}
