//! GitHub's web login for GitHub Apps, as the dashboard uses it: exchange the code for a user
//! token, then ask who the user is, which of the app's installations they can reach, and whether
//! they own an organization. Three plain calls on reqwest: the `oauth2` crate misreads GitHub's
//! error answers, which come with HTTP 200 and an `error` field.

use crate::outbound::Trust;
use serde::Deserialize;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(15);
const USER_AGENT: &str = "tollgate-dashboard";
/// GitHub's largest page of `/user/installations`; more pages are followed up to this many.
const PER_PAGE: usize = 100;
const MAX_PAGES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// GitHub refused the exchange (`bad_verification_code`, `incorrect_client_credentials`, ...).
    #[error("GitHub refused the login: {0}")]
    Refused(String),
    #[error("GitHub answered {status} to {what}")]
    Status { what: &'static str, status: u16 },
    #[error("cannot reach GitHub ({what}): {message}")]
    Transport { what: &'static str, message: String },
}

/// The OAuth client of the GitHub App.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    web_url: String,
    api_url: String,
    client_id: String,
    client_secret: String,
}

/// A user's access token; never logged.
pub struct UserToken(String);

#[derive(Debug, Clone, Deserialize)]
pub struct GithubUser {
    pub id: i64,
    pub login: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct UserInstallation {
    pub id: i64,
    pub account: Account,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Account {
    pub login: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

#[derive(Deserialize)]
struct InstallationsPage {
    installations: Vec<UserInstallation>,
}

#[derive(Deserialize)]
struct TeamMembership {
    state: String,
}

#[derive(Deserialize)]
struct OrgMembership {
    state: String,
    role: String,
}

impl OAuthClient {
    pub fn new(
        web_url: &str,
        api_url: &str,
        client_id: &str,
        client_secret: &str,
        trust: &Trust,
    ) -> Result<Self, OAuthError> {
        let http = trust
            .http_client()
            .timeout(TIMEOUT)
            .user_agent(USER_AGENT)
            // The token endpoint answers directly; a redirect would be an attack or a mistake.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| transport("client", e))?;
        Ok(Self {
            http,
            web_url: web_url.to_owned(),
            api_url: api_url.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        })
    }

    /// Where to send the browser: GitHub asks the user and comes back with `code` and `state`.
    pub fn authorize_url(&self, state: &str, redirect_uri: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", &self.client_id);
        query.append_pair("state", state);
        if let Some(redirect_uri) = redirect_uri {
            query.append_pair("redirect_uri", redirect_uri);
        }
        format!("{}/login/oauth/authorize?{}", self.web_url, query.finish())
    }

    /// Exchanges the callback's code for a user token.
    pub async fn exchange(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
    ) -> Result<UserToken, OAuthError> {
        let what = "the token exchange";
        let mut form = vec![
            ("client_id", self.client_id.as_str()),
            ("client_secret", self.client_secret.as_str()),
            ("code", code),
        ];
        if let Some(redirect_uri) = redirect_uri {
            form.push(("redirect_uri", redirect_uri));
        }
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(format!("{}/login/oauth/access_token", self.web_url))
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| transport(what, e))?;
        if !response.status().is_success() {
            return Err(OAuthError::Status {
                what,
                status: response.status().as_u16(),
            });
        }
        let answer: TokenAnswer = response.json().await.map_err(|e| transport(what, e))?;
        match (answer.access_token, answer.error) {
            (Some(token), None) if !token.is_empty() => Ok(UserToken(token)),
            (_, error) => Err(OAuthError::Refused(
                answer
                    .error_description
                    .or(error)
                    .unwrap_or_else(|| "no access token in the answer".to_owned()),
            )),
        }
    }

    pub async fn user(&self, token: &UserToken) -> Result<GithubUser, OAuthError> {
        let response = self.get(token, "/user", "the user lookup").await?;
        response
            .json()
            .await
            .map_err(|e| transport("the user lookup", e))
    }

    /// The app's installations the user can reach (GitHub lists those where the user has access
    /// to at least one repository).
    pub async fn installations(
        &self,
        token: &UserToken,
    ) -> Result<Vec<UserInstallation>, OAuthError> {
        let what = "the installations lookup";
        let mut all = Vec::new();
        for page in 1..=MAX_PAGES {
            let path = format!("/user/installations?per_page={PER_PAGE}&page={page}");
            let answer: InstallationsPage = self
                .get(token, &path, what)
                .await?
                .json()
                .await
                .map_err(|e| transport(what, e))?;
            let last = answer.installations.len() < PER_PAGE;
            all.extend(answer.installations);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// Whether the user is an active owner of `org`. Not a member (404) or not visible (403) is
    /// a plain no; any other failure is an error, never a quiet no.
    pub async fn is_org_owner(&self, token: &UserToken, org: &str) -> Result<bool, OAuthError> {
        let what = "the organization membership lookup";
        let path = format!("/user/memberships/orgs/{org}");
        let response = self.send_get(token, &path, what).await?;
        match response.status().as_u16() {
            200 => {
                let membership: OrgMembership =
                    response.json().await.map_err(|e| transport(what, e))?;
                Ok(membership.state == "active" && membership.role == "admin")
            }
            403 | 404 => Ok(false),
            status => Err(OAuthError::Status { what, status }),
        }
    }

    /// Whether the user is an active member of the team `org/team_slug`. Not a member, or a team
    /// the user cannot see (404), is a plain no; any other failure is an error.
    pub async fn is_team_member(
        &self,
        token: &UserToken,
        login: &str,
        org: &str,
        team_slug: &str,
    ) -> Result<bool, OAuthError> {
        let what = "the team membership lookup";
        let path = format!("/orgs/{org}/teams/{team_slug}/memberships/{login}");
        let response = self.send_get(token, &path, what).await?;
        match response.status().as_u16() {
            200 => {
                let membership: TeamMembership =
                    response.json().await.map_err(|e| transport(what, e))?;
                Ok(membership.state == "active")
            }
            403 | 404 => Ok(false),
            status => Err(OAuthError::Status { what, status }),
        }
    }

    async fn get(
        &self,
        token: &UserToken,
        path: &str,
        what: &'static str,
    ) -> Result<reqwest::Response, OAuthError> {
        let response = self.send_get(token, path, what).await?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(OAuthError::Status {
                what,
                status: response.status().as_u16(),
            })
        }
    }

    async fn send_get(
        &self,
        token: &UserToken,
        path: &str,
        what: &'static str,
    ) -> Result<reqwest::Response, OAuthError> {
        self.http
            .get(format!("{}{path}", self.api_url))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .bearer_auth(&token.0)
            .send()
            .await
            .map_err(|e| transport(what, e))
    }
}

fn transport(what: &'static str, error: reqwest::Error) -> OAuthError {
    OAuthError::Transport {
        what,
        // Without the URL: it may carry the code.
        message: error.without_url().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authorize_url_carries_the_client_state_and_callback() {
        let client = OAuthClient::new(
            "https://github.com",
            "https://api.github.com",
            "Iv1.x",
            "s",
            &Trust::system(),
        )
        .unwrap();
        assert_eq!(
            client.authorize_url("st&te", Some("https://t.example/dashboard/auth/callback")),
            "https://github.com/login/oauth/authorize?client_id=Iv1.x&state=st%26te\
             &redirect_uri=https%3A%2F%2Ft.example%2Fdashboard%2Fauth%2Fcallback"
        );
        assert_eq!(
            client.authorize_url("s", None),
            "https://github.com/login/oauth/authorize?client_id=Iv1.x&state=s"
        );
    }
}
