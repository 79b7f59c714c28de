//! The GitHub REST client: one octocrab instance authenticated as the app, installation-scoped
//! clients cached per installation, and the handful of calls Tollgate makes.
//!
//! Requests go through octocrab's raw `_get_with_headers`/`_post`/`_patch` so that we read the
//! status and headers ourselves (rate limits, 404 as "absent") and parse bodies into our own
//! lenient structs. octocrab's retries are off: jobs retry, with their own back-off.

use super::auth::AppCredentials;
use super::error::GithubError;
use super::pacer::WriteBudget;
use super::server::{self, GithubServer};
use super::transport::ReqwestTransport;
use crate::diff::GithubFile;
use crate::outbound::Trust;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use http::{HeaderMap, Method, StatusCode};
use octocrab::Octocrab;
use octocrab::service::middleware::base_uri::BaseUriLayer;
use octocrab::service::middleware::extra_headers::ExtraHeadersLayer;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// GitHub lists at most 3,000 files of a pull request: 30 pages of 100.
const FILES_PER_PAGE: usize = 100;
const MAX_FILE_PAGES: u32 = 30;
/// GitHub lists at most this many files of a pull request (30 pages of 100)...
const MAX_PULL_REQUEST_FILES: usize = 3_000;
/// ...and of a comparison of two commits (all on the first page).
const MAX_COMPARE_FILES: usize = 300;
const COMMENTS_PER_PAGE: usize = 100;
/// 10,000 comments on one pull request means something is wrong; stop paging there.
const MAX_COMMENT_PAGES: u32 = 100;
const CHECK_RUNS_PER_PAGE: usize = 100;
/// One commit with over 1,000 check runs of one name: stop looking there.
const MAX_CHECK_RUN_PAGES: u32 = 10;
/// GitHub accepts at most this many annotations in one check-run request; send more through
/// further updates, which append.
pub const MAX_ANNOTATIONS_PER_REQUEST: usize = 50;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Upper bound for one request, answer body included (pacing waits are not counted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The app's connection to GitHub. Cheap to clone; clones share the installation clients, and
/// so octocrab's installation-token cache and the per-installation queue of writers.
#[derive(Clone)]
pub struct GithubApp {
    inner: Arc<AppInner>,
}

struct AppInner {
    crab: Octocrab,
    base: ApiBase,
    /// `None` when writes are not paced (tests and benches that measure the app itself).
    budget: Option<WriteBudget>,
    credentials: AppCredentials,
    installations: Mutex<HashMap<u64, InstallationClient>>,
}

impl std::fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.inner.credentials.app_id)
            .field("api_path", &self.inner.base.path)
            .finish_non_exhaustive()
    }
}

impl GithubApp {
    /// Connects as the app. `api_url` is `https://api.github.com` or, for GitHub Enterprise
    /// Server, `https://HOST/api/v3`; every request goes below it, trusting the roots of `trust`
    /// and through the environment's proxies. Content-creating requests wait for the shared
    /// write `budget` when there is one. Must be called inside a Tokio runtime (octocrab spawns
    /// its connection worker there) and used within that runtime.
    pub fn new(
        api_url: &str,
        app_id: u64,
        private_key_pem: &str,
        budget: Option<WriteBudget>,
        trust: &Trust,
    ) -> Result<GithubApp, GithubError> {
        let credentials = AppCredentials::from_pem(app_id, private_key_pem)?;
        let base = ApiBase::parse(api_url)?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(GithubError::Config {
                message: "the GitHub client must be created inside a Tokio runtime".into(),
            });
        }
        let base_uri: http::Uri = api_url.parse().map_err(|_| GithubError::Config {
            message: format!("invalid GitHub API URL {api_url:?}"),
        })?;
        let transport =
            ReqwestTransport::new(trust, CONNECT_TIMEOUT, READ_TIMEOUT).map_err(|error| {
                GithubError::Config {
                    message: format!("cannot build the GitHub client: {error}"),
                }
            })?;
        let accept = vec![(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/vnd.github+json"),
        )];
        let crab = octocrab::OctocrabBuilder::new_empty()
            .with_service(transport)
            .with_layer(&BaseUriLayer::new(base_uri))
            .with_layer(&ExtraHeadersLayer::new(Arc::new(accept)))
            .with_auth(octocrab::AuthState::App(octocrab::auth::AppAuth {
                app_id: octocrab::models::AppId(app_id),
                key: credentials.key.clone(),
            }))
            .build()
            .map_err(|never| match never {})?;
        Ok(GithubApp {
            inner: Arc::new(AppInner {
                crab,
                base,
                budget,
                credentials,
                installations: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn app_id(&self) -> u64 {
        self.inner.credentials.app_id
    }

    /// The client for one installation, created on first use and then reused, so that its
    /// installation token and its queue of writers carry over from job to job.
    pub fn installation(&self, id: u64) -> Result<InstallationClient, GithubError> {
        let mut installations = self
            .inner
            .installations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(client) = installations.get(&id) {
            return Ok(client.clone());
        }
        let crab = self
            .inner
            .crab
            .installation(octocrab::models::InstallationId(id))
            .map_err(GithubError::from_octocrab)?;
        let client = InstallationClient {
            inner: Arc::new(InstallationInner {
                id,
                crab,
                base: self.inner.base.clone(),
                budget: self.inner.budget.clone(),
                writers: tokio::sync::Mutex::new(()),
            }),
        };
        installations.insert(id, client.clone());
        Ok(client)
    }
}

/// Deliveries listed per page; GitHub's maximum.
const DELIVERIES_PER_PAGE: usize = 100;

impl GithubApp {
    /// Sends one request as the app (its JWT), not as an installation.
    async fn send_as_app(&self, method: Method, route: &str) -> Result<Answer, GithubError> {
        let path = self.inner.base.route(route);
        let answer = observed_exchange::<()>(&self.inner.crab, &method, &path, None, None).await?;
        tracing::debug!(%method, route, status = answer.status.as_u16(), "GitHub request as the app");
        Ok(answer)
    }

    /// `GET /app/hook/deliveries`: one page of the app's webhook deliveries, newest first, from
    /// `cursor` (the first page when `None`), with the cursor of the next page when there is one.
    pub async fn hook_deliveries(
        &self,
        cursor: Option<&str>,
    ) -> Result<HookDeliveryPage, GithubError> {
        let mut route = format!("/app/hook/deliveries?per_page={DELIVERIES_PER_PAGE}");
        if let Some(cursor) = cursor {
            route.push_str("&cursor=");
            route.push_str(&encode(cursor));
        }
        let answer = self.send_as_app(Method::GET, &route).await?.ok()?;
        let next_cursor = next_page_cursor(&answer.headers);
        let deliveries = answer.json()?;
        Ok(HookDeliveryPage {
            deliveries,
            next_cursor,
        })
    }

    /// `GET /meta`: which server this is — github.com, or a GitHub Enterprise Server and its
    /// release (its `X-GitHub-Enterprise-Version` header, else the body's `installed_version`).
    pub async fn server(&self) -> Result<GithubServer, GithubError> {
        #[derive(Deserialize)]
        struct Meta {
            #[serde(default)]
            installed_version: Option<String>,
        }
        let answer = self.send_as_app(Method::GET, "/meta").await?.ok()?;
        let header = answer
            .headers
            .get(server::ENTERPRISE_VERSION_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let meta: Meta = answer.json()?;
        match header.or(meta.installed_version) {
            None => Ok(GithubServer::Cloud),
            Some(raw) => raw
                .parse()
                .map(GithubServer::Enterprise)
                .map_err(|message| GithubError::Decode { message }),
        }
    }

    /// `POST /app/hook/deliveries/{delivery_id}/attempts`: asks GitHub to send a delivery again.
    pub async fn redeliver(&self, hook_delivery_id: u64) -> Result<(), GithubError> {
        let route = format!("/app/hook/deliveries/{hook_delivery_id}/attempts");
        self.send_as_app(Method::POST, &route).await?.ok()?;
        Ok(())
    }
}

/// The `cursor` of the `rel="next"` link of a paginated answer.
fn next_page_cursor(headers: &HeaderMap) -> Option<String> {
    let links = headers.get(http::header::LINK)?.to_str().ok()?;
    links.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        if !params.split(';').any(|p| p.trim() == "rel=\"next\"") {
            return None;
        }
        let target = target.trim().trim_start_matches('<').trim_end_matches('>');
        let (_, query) = target.split_once('?')?;
        form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "cursor")
            .map(|(_, value)| value.into_owned())
    })
}

/// One page of [`GithubApp::hook_deliveries`].
#[derive(Debug, Clone)]
pub struct HookDeliveryPage {
    pub deliveries: Vec<HookDelivery>,
    pub next_cursor: Option<String>,
}

/// One delivery attempt of the app's webhook, as GitHub lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct HookDelivery {
    /// The attempt's id, to ask for a redelivery.
    pub id: u64,
    /// The delivery's `X-GitHub-Delivery`, shared by its redeliveries.
    pub guid: String,
    pub delivered_at: DateTime<Utc>,
    #[serde(default)]
    pub redelivery: bool,
    /// What the app answered; 0 when GitHub got no answer.
    #[serde(default)]
    pub status_code: u16,
    pub event: String,
    #[serde(default)]
    pub action: Option<String>,
}

impl HookDelivery {
    /// Whether the app accepted this attempt.
    pub fn succeeded(&self) -> bool {
        (200..300).contains(&self.status_code)
    }
}

/// Where the REST API lives below the host: empty for api.github.com, `/api/v3` for GitHub
/// Enterprise Server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiBase {
    path: String,
}

impl ApiBase {
    fn parse(api_url: &str) -> Result<Self, GithubError> {
        let uri: http::Uri = api_url.parse().map_err(|_| GithubError::Config {
            message: format!("invalid GitHub API URL {api_url:?}"),
        })?;
        if uri.scheme().is_none() || uri.authority().is_none() {
            return Err(GithubError::Config {
                message: format!(
                    "GitHub API URL {api_url:?} needs a scheme and a host, like https://api.github.com"
                ),
            });
        }
        if uri.query().is_some() {
            return Err(GithubError::Config {
                message: format!("GitHub API URL {api_url:?} must not have a query"),
            });
        }
        Ok(Self {
            path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// The path to send for an API route such as `/repos/o/r`. The full path is sent (octocrab
    /// then leaves a path that already starts with its base path as it is); a relative URI keeps
    /// octocrab adding the installation token.
    fn route(&self, route: &str) -> String {
        debug_assert!(route.starts_with('/'));
        format!("{}{}", self.path, route)
    }
}

/// An installation-scoped client. Cheap to clone.
#[derive(Clone)]
pub struct InstallationClient {
    inner: Arc<InstallationInner>,
}

struct InstallationInner {
    id: u64,
    crab: Octocrab,
    base: ApiBase,
    budget: Option<WriteBudget>,
    /// Writers of this installation in this process take budget slots one at a time, in
    /// arrival order (tokio's mutex is first-in, first-out), so only one of them asks the
    /// database while the budget is spent.
    writers: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for InstallationClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallationClient")
            .field("installation_id", &self.inner.id)
            .finish_non_exhaustive()
    }
}

/// A raw answer: status, headers and body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn error(&self) -> GithubError {
        GithubError::from_response(self.status, &self.headers, &self.body, SystemTime::now())
    }

    fn ok(self) -> Result<Answer, GithubError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(self.error())
        }
    }

    fn json<T: DeserializeOwned>(self) -> Result<T, GithubError> {
        let answer = self.ok()?;
        serde_json::from_slice(&answer.body).map_err(|error| GithubError::Decode {
            message: error.to_string(),
        })
    }
}

impl InstallationClient {
    pub fn installation_id(&self) -> u64 {
        self.inner.id
    }

    /// Sends one request. Writes first take a slot of the installation's write budget.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        route: &str,
        body: Option<&B>,
    ) -> Result<Answer, GithubError> {
        if method != Method::GET
            && method != Method::HEAD
            && let Some(budget) = &self.inner.budget
        {
            let _turn = self.inner.writers.lock().await;
            budget.acquire(self.inner.id).await?;
        }
        let path = self.inner.base.route(route);
        let answer =
            observed_exchange(&self.inner.crab, &method, &path, body, Some(self.inner.id)).await?;
        tracing::debug!(
            installation = self.inner.id,
            %method,
            route,
            status = answer.status.as_u16(),
            "GitHub request"
        );
        Ok(answer)
    }

    async fn get(&self, route: &str) -> Result<Answer, GithubError> {
        self.send::<()>(Method::GET, route, None).await
    }

    /// `GET /repos/{owner}/{repo}/pulls/{number}`.
    pub async fn pull_request(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<PullRequest, GithubError> {
        self.get(&format!("{}/pulls/{number}", repo_route(owner, repo)))
            .await?
            .json()
    }

    /// All files of a pull request, 100 a page. GitHub lists at most 3,000 files; when the last
    /// allowed page is full, `complete` is false (the pull request may have more files than were
    /// listed) and the caller must not treat the result as a clean pass.
    pub async fn pull_request_files(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<ChangedFiles, GithubError> {
        let mut files = Vec::new();
        for page in 1..=MAX_FILE_PAGES {
            let route = format!(
                "{}/pulls/{number}/files?per_page={FILES_PER_PAGE}&page={page}",
                repo_route(owner, repo)
            );
            let batch: Vec<GithubFile> = self.get(&route).await?.json()?;
            let short = batch.len() < FILES_PER_PAGE;
            files.extend(batch);
            if short {
                return Ok(ChangedFiles::listed(files, MAX_PULL_REQUEST_FILES));
            }
        }
        Ok(ChangedFiles::listed(files, MAX_PULL_REQUEST_FILES))
    }

    /// The files changed between two commits (`base...head`, from their merge base), in one
    /// request: GitHub lists them on the first page only, at most 300. A full list may be cut
    /// short, so `complete` is false then and the caller must fail closed. `per_page=1` keeps
    /// the commit list small; the files do not depend on it.
    pub async fn compare_files(
        &self,
        owner: &str,
        repo: &str,
        base_sha: &str,
        head_sha: &str,
    ) -> Result<ChangedFiles, GithubError> {
        let route = format!(
            "{}/compare/{}...{}?per_page=1&page=1",
            repo_route(owner, repo),
            encode(base_sha),
            encode(head_sha)
        );
        let comparison: Comparison = self.get(&route).await?.json()?;
        Ok(ChangedFiles::listed(comparison.files, MAX_COMPARE_FILES))
    }

    /// The text of a file at a ref (branch, tag or commit), or `None` when there is no such file.
    pub async fn file_contents(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
        git_ref: &str,
    ) -> Result<Option<String>, GithubError> {
        let route = format!(
            "{}/contents/{}?ref={}",
            repo_route(owner, repo),
            encode_path(path.trim_start_matches('/')),
            encode(git_ref)
        );
        self.contents(&route, path).await
    }

    /// A file of the repository's default branch; `None` when the repository or the file does
    /// not exist (or the installation cannot see the repository).
    pub async fn default_branch_file(
        &self,
        owner: &str,
        repo: &str,
        path: &str,
    ) -> Result<Option<String>, GithubError> {
        let route = format!(
            "{}/contents/{}",
            repo_route(owner, repo),
            encode_path(path.trim_start_matches('/'))
        );
        self.contents(&route, path).await
    }

    async fn contents(&self, route: &str, path: &str) -> Result<Option<String>, GithubError> {
        let answer = self.get(route).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let value: serde_json::Value = answer.json()?;
        let content: Content = serde_json::from_value(value).map_err(|_| GithubError::Decode {
            message: format!("{path} is not a file (a directory or a submodule?)"),
        })?;
        content.decode(path).map(Some)
    }

    /// `POST /repos/{owner}/{repo}/check-runs`; returns the check run's id.
    pub async fn create_check_run(
        &self,
        owner: &str,
        repo: &str,
        check_run: &CheckRunCreate,
    ) -> Result<u64, GithubError> {
        let route = format!("{}/check-runs", repo_route(owner, repo));
        let created: Created = self
            .send(Method::POST, &route, Some(check_run))
            .await?
            .json()?;
        Ok(created.id)
    }

    /// `PATCH /repos/{owner}/{repo}/check-runs/{id}`. Annotations are appended to the ones the
    /// check run already has.
    pub async fn update_check_run(
        &self,
        owner: &str,
        repo: &str,
        id: u64,
        update: &CheckRunUpdate,
    ) -> Result<(), GithubError> {
        let route = format!("{}/check-runs/{id}", repo_route(owner, repo));
        self.send(Method::PATCH, &route, Some(update)).await?.ok()?;
        Ok(())
    }

    /// The check run named `name` on commit `head_sha` that carries `external_id`, if any:
    /// how a retry finds the check run an earlier attempt created but could not record.
    /// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`, every run (`filter=all`) of that
    /// name, 100 a page.
    pub async fn find_check_run(
        &self,
        owner: &str,
        repo: &str,
        head_sha: &str,
        name: &str,
        external_id: &str,
    ) -> Result<Option<u64>, GithubError> {
        #[derive(Deserialize)]
        struct Page {
            check_runs: Vec<ListedCheckRun>,
        }
        #[derive(Deserialize)]
        struct ListedCheckRun {
            id: u64,
            #[serde(default)]
            external_id: Option<String>,
        }
        for page in 1..=MAX_CHECK_RUN_PAGES {
            let route = format!(
                "{}/commits/{}/check-runs?check_name={}&filter=all&per_page={CHECK_RUNS_PER_PAGE}&page={page}",
                repo_route(owner, repo),
                encode(head_sha),
                encode(name),
            );
            let batch: Page = self.get(&route).await?.json()?;
            if let Some(run) = batch
                .check_runs
                .iter()
                .find(|run| run.external_id.as_deref() == Some(external_id))
            {
                return Ok(Some(run.id));
            }
            if batch.check_runs.len() < CHECK_RUNS_PER_PAGE {
                break;
            }
        }
        Ok(None)
    }

    /// Every comment on an issue or pull request, oldest first.
    pub async fn list_issue_comments(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
    ) -> Result<Vec<IssueComment>, GithubError> {
        let mut comments = Vec::new();
        for page in 1..=MAX_COMMENT_PAGES {
            let route = format!(
                "{}/issues/{number}/comments?per_page={COMMENTS_PER_PAGE}&page={page}",
                repo_route(owner, repo)
            );
            let batch: Vec<IssueComment> = self.get(&route).await?.json()?;
            let short = batch.len() < COMMENTS_PER_PAGE;
            comments.extend(batch);
            if short {
                return Ok(comments);
            }
        }
        Err(GithubError::Decode {
            message: format!(
                "{owner}/{repo}#{number} lists more than {} comments; refusing to page further",
                COMMENTS_PER_PAGE * MAX_COMMENT_PAGES as usize
            ),
        })
    }

    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`; returns the comment's id.
    pub async fn create_issue_comment(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        body: &str,
    ) -> Result<u64, GithubError> {
        let route = format!("{}/issues/{number}/comments", repo_route(owner, repo));
        let created: Created = self
            .send(Method::POST, &route, Some(&CommentBody { body }))
            .await?
            .json()?;
        Ok(created.id)
    }

    /// `PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}`.
    pub async fn update_issue_comment(
        &self,
        owner: &str,
        repo: &str,
        comment_id: u64,
        body: &str,
    ) -> Result<(), GithubError> {
        let route = format!("{}/issues/comments/{comment_id}", repo_route(owner, repo));
        self.send(Method::PATCH, &route, Some(&CommentBody { body }))
            .await?
            .ok()?;
        Ok(())
    }

    /// `GET /repos/{owner}/{repo}/collaborators/{username}/permission`: the user's highest role on
    /// the repository, from any grant (repository, team, organization).
    ///
    /// `None` when GitHub answers 404, which it does for a user who is not a collaborator of a
    /// private repository and for a login that does not exist (and, indistinguishably, when the
    /// installation cannot see the repository): the caller treats it as "no access". On a public
    /// repository any existing user is answered 200 with `read`. Every other failure stays an
    /// error, never a quiet "no".
    pub async fn collaborator_permission(
        &self,
        owner: &str,
        repo: &str,
        username: &str,
    ) -> Result<Option<CollaboratorPermission>, GithubError> {
        let route = format!(
            "{}/collaborators/{}/permission",
            repo_route(owner, repo),
            encode(username)
        );
        let answer = self.get(&route).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        answer.json().map(Some)
    }

    /// `GET /orgs/{org}/teams/{team_slug}/memberships/{username}`. GitHub answers 404 both for a
    /// user outside the team and for a team that does not exist or that the app cannot see: both
    /// are [`TeamMembership::NotMember`]. Without the organization `members: read` permission
    /// GitHub answers 403, which stays an error ([`GithubError::Forbidden`]).
    pub async fn team_membership(
        &self,
        org: &str,
        team_slug: &str,
        username: &str,
    ) -> Result<TeamMembership, GithubError> {
        let route = format!(
            "/orgs/{}/teams/{}/memberships/{}",
            encode(org),
            encode(team_slug),
            encode(username)
        );
        let answer = self.get(&route).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(TeamMembership::NotMember);
        }
        let membership: Membership = answer.json()?;
        Ok(membership.state)
    }

    /// `POST /repos/{owner}/{repo}/issues/comments/{comment_id}/reactions`. Adding a reaction
    /// the app already left is a success (GitHub answers 200 instead of 201), so a retried job
    /// does not fail here.
    pub async fn add_reaction(
        &self,
        owner: &str,
        repo: &str,
        comment_id: u64,
        reaction: Reaction,
    ) -> Result<(), GithubError> {
        let route = format!(
            "{}/issues/comments/{comment_id}/reactions",
            repo_route(owner, repo)
        );
        let body = ReactionBody { content: reaction };
        self.send(Method::POST, &route, Some(&body)).await?.ok()?;
        Ok(())
    }
}

/// [`exchange`], counted in the metrics and the health check's GitHub status: every call, made as
/// the app (`installation` `None`) or as an installation, goes through here.
async fn observed_exchange<B: Serialize + ?Sized>(
    crab: &Octocrab,
    method: &Method,
    path: &str,
    body: Option<&B>,
    installation: Option<u64>,
) -> Result<Answer, GithubError> {
    let started = std::time::Instant::now();
    let answer = exchange(crab, method, path, body).await;
    crate::operations::observe_github_call(
        method.as_str(),
        path,
        installation,
        answer.as_ref().ok().map(|a| (a.status, &a.headers)),
        started.elapsed(),
    );
    answer
}

/// Sends one request through `crab` (as the app or as an installation, whichever `crab` is) and
/// reads the whole answer, within [`REQUEST_TIMEOUT`].
async fn exchange<B: Serialize + ?Sized>(
    crab: &Octocrab,
    method: &Method,
    path: &str,
    body: Option<&B>,
) -> Result<Answer, GithubError> {
    let exchange = async {
        let response = match *method {
            Method::GET => crab._get_with_headers(path, None).await,
            Method::POST => crab._post(path, body).await,
            Method::PATCH => crab._patch(path, body).await,
            Method::PUT => crab._put(path, body).await,
            Method::DELETE => crab._delete(path, body).await,
            _ => {
                return Err(GithubError::Config {
                    message: format!("unsupported method {method}"),
                });
            }
        }
        .map_err(GithubError::from_octocrab)?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = crab
            .body_to_string(response)
            .await
            .map_err(GithubError::from_octocrab)?;
        Ok(Answer {
            status,
            headers,
            body: body.into_bytes(),
        })
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| GithubError::Timeout)?
}

fn repo_route(owner: &str, repo: &str) -> String {
    format!("/repos/{}/{}", encode(owner), encode(repo))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encodes each segment of a slash-separated path, keeping the slashes.
fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

#[derive(Deserialize)]
struct Created {
    id: u64,
}

#[derive(Serialize)]
struct CommentBody<'a> {
    body: &'a str,
}

#[derive(Serialize)]
struct ReactionBody {
    content: Reaction,
}

/// The team-membership answer; its `role` is not needed.
#[derive(Deserialize)]
struct Membership {
    state: TeamMembership,
}

/// The contents API's answer for a file.
#[derive(Deserialize)]
struct Content {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    encoding: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

impl Content {
    fn decode(self, path: &str) -> Result<String, GithubError> {
        let decode_error = |message: String| GithubError::Decode { message };
        if self.kind != "file" {
            return Err(decode_error(format!(
                "{path} is a {}, not a file",
                self.kind
            )));
        }
        match self.encoding.as_deref() {
            Some("base64") => {}
            // GitHub leaves files over 1 MB out of the JSON answer ("encoding": "none").
            other => {
                return Err(decode_error(format!(
                    "{path}: content not included (encoding {other:?}; over 1 MB?)"
                )));
            }
        }
        let encoded: String = self
            .content
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|error| decode_error(format!("{path}: invalid base64 content: {error}")))?;
        String::from_utf8(bytes).map_err(|_| decode_error(format!("{path} is not UTF-8 text")))
    }
}

/// A pull request, with the fields Tollgate reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullRequest {
    pub number: u64,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    pub user: Account,
    #[serde(default)]
    pub draft: bool,
    pub state: PullRequestState,
    pub head: BranchRef,
    pub base: BranchRef,
    #[serde(default)]
    pub labels: Vec<Label>,
    /// GitHub's count of changed files (the file list stops at 3,000).
    #[serde(default)]
    pub changed_files: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PullRequestState {
    Open,
    Closed,
    #[serde(other)]
    Unknown,
}

/// A user or bot as GitHub shows it on a pull request or comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub login: String,
    /// `User`, `Bot` or `Organization`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// The head or base of a pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchRef {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub sha: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    pub name: String,
}

/// The files of a change (a pull request, or two commits compared), and whether GitHub listed
/// all of them.
#[derive(Debug, Clone)]
pub struct ChangedFiles {
    pub files: Vec<GithubFile>,
    /// False when GitHub's cap ([`Self::cap`]) was reached: files may be missing.
    pub complete: bool,
    /// The most files GitHub lists for this kind of change.
    pub cap: usize,
}

impl ChangedFiles {
    /// A list GitHub cuts at `cap` files: complete only when it holds fewer.
    fn listed(files: Vec<GithubFile>, cap: usize) -> Self {
        Self {
            complete: files.len() < cap,
            files,
            cap,
        }
    }
}

/// `GET /repos/{owner}/{repo}/compare/{basehead}`, the part Tollgate reads.
#[derive(Deserialize)]
struct Comparison {
    #[serde(default)]
    files: Vec<GithubFile>,
}

/// A comment on an issue or pull request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueComment {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    /// Absent for comments of deleted accounts.
    #[serde(default)]
    pub user: Option<Account>,
    #[serde(default)]
    pub html_url: Option<String>,
}

/// A user's role on a repository, as GitHub names it. Raw strings: GitHub adds custom roles, and
/// interpreting them is policy, not transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollaboratorPermission {
    /// The legacy base role: `admin`, `write`, `read` or `none` (`maintain` shows as `write`,
    /// `triage` as `read`).
    pub permission: String,
    /// The assigned role: `admin`, `maintain`, `write`, `triage`, `read` or a custom role's name.
    /// Empty from GitHub Enterprise Server versions that predate the field.
    #[serde(default)]
    pub role_name: String,
}

/// A user's membership of a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamMembership {
    Active,
    /// Invited, not yet accepted: not a member yet.
    Pending,
    /// GitHub answered 404.
    #[serde(skip_deserializing)]
    NotMember,
}

/// The reactions Tollgate leaves on a command comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reaction {
    /// 👀 the command was received.
    #[serde(rename = "eyes")]
    Eyes,
    /// 👍 the command was accepted.
    #[serde(rename = "+1")]
    PlusOne,
    /// 👎 the command was denied.
    #[serde(rename = "-1")]
    MinusOne,
}

impl Reaction {
    /// GitHub's name of the reaction, as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Reaction::Eyes => "eyes",
            Reaction::PlusOne => "+1",
            Reaction::MinusOne => "-1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
}

/// A check run's conclusion, as an app may set it (`stale` is GitHub's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    ActionRequired,
    Cancelled,
    Failure,
    Neutral,
    Success,
    Skipped,
    TimedOut,
}

/// `POST /repos/{owner}/{repo}/check-runs`. GitHub requires a `conclusion` with
/// `status: completed` or a `completed_at`. Absent fields are left out, never sent as null.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckRunCreate {
    pub name: String,
    pub head_sha: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    /// Our own reference for the run, echoed back in check-run webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

impl CheckRunCreate {
    /// A check run with only its required fields.
    pub fn new(name: impl Into<String>, head_sha: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            head_sha: head_sha.into(),
            status: None,
            conclusion: None,
            started_at: None,
            completed_at: None,
            output: None,
            details_url: None,
            external_id: None,
        }
    }
}

/// `PATCH /repos/{owner}/{repo}/check-runs/{id}`: only the fields set are changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CheckRunUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time"
    )]
    pub completed_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<CheckOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// A check run's output. `summary` and `text` are limited to 65,535 characters, annotations to
/// [`MAX_ANNOTATIONS_PER_REQUEST`] per request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckOutput {
    pub title: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    pub annotation_level: AnnotationLevel,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_details: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Failure,
}

/// GitHub's documented timestamp form, `YYYY-MM-DDTHH:MM:SSZ`.
fn serialize_time<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serializer.serialize_str(&time.to_rfc3339_opts(SecondsFormat::Secs, true)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn next_page_cursor_is_read_from_the_link_header() {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::LINK,
            "<https://api.github.com/app/hook/deliveries?per_page=100&cursor=v1_12%3D>; rel=\"next\", <https://api.github.com/app/hook/deliveries?per_page=100>; rel=\"first\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page_cursor(&headers).as_deref(), Some("v1_12="));
        headers.insert(
            http::header::LINK,
            "<https://api.github.com/app/hook/deliveries?cursor=a>; rel=\"prev\""
                .parse()
                .unwrap(),
        );
        assert_eq!(next_page_cursor(&headers), None);
        assert_eq!(next_page_cursor(&HeaderMap::new()), None);
    }

    #[test]
    fn routes_keep_an_enterprise_base_path() {
        let base = ApiBase::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(base.route("/repos/o/r"), "/api/v3/repos/o/r");
        let base = ApiBase::parse("https://api.github.com").unwrap();
        assert_eq!(base.route("/repos/o/r"), "/repos/o/r");
        let base = ApiBase::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(base.route("/repos/o/r/pulls/1"), "/repos/o/r/pulls/1");
    }

    #[test]
    fn api_urls_without_host_or_with_query_are_refused() {
        assert!(ApiBase::parse("/api/v3").is_err());
        assert!(ApiBase::parse("https://ghe.example.com/api/v3?x=1").is_err());
        assert!(ApiBase::parse("not a url").is_err());
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode("refs/heads/main"), "refs%2Fheads%2Fmain");
        assert_eq!(encode_path("docs/a b/ü.md"), "docs/a%20b/%C3%BC.md");
        assert_eq!(repo_route("octo-org", "repo.rs"), "/repos/octo-org/repo.rs");
        assert_eq!(encode("dependabot[bot]"), "dependabot%5Bbot%5D");
    }

    #[test]
    fn check_run_never_sends_nulls() {
        let create = CheckRunCreate::new("Tollgate", "abc");
        assert_eq!(
            serde_json::to_value(&create).unwrap(),
            json!({"name": "Tollgate", "head_sha": "abc"})
        );
        let update = CheckRunUpdate {
            status: Some(CheckStatus::Completed),
            conclusion: Some(Conclusion::ActionRequired),
            completed_at: Some(DateTime::from_timestamp(1_700_000_000, 123_000_000).unwrap()),
            output: Some(CheckOutput {
                title: "t".into(),
                summary: "s".into(),
                text: None,
                annotations: vec![Annotation {
                    path: "a.rs".into(),
                    start_line: 1,
                    end_line: 2,
                    annotation_level: AnnotationLevel::Failure,
                    title: None,
                    message: "m".into(),
                    raw_details: None,
                }],
            }),
            ..CheckRunUpdate::default()
        };
        assert_eq!(
            serde_json::to_value(&update).unwrap(),
            json!({
                "status": "completed",
                "conclusion": "action_required",
                "completed_at": "2023-11-14T22:13:20Z",
                "output": {
                    "title": "t",
                    "summary": "s",
                    "annotations": [{
                        "path": "a.rs", "start_line": 1, "end_line": 2,
                        "annotation_level": "failure", "message": "m"
                    }]
                }
            })
        );
    }

    #[test]
    fn pull_request_parses_leniently() {
        let pr: PullRequest = serde_json::from_value(json!({
            "number": 3,
            "title": "Fix",
            "body": null,
            "user": {"login": "octocat", "id": 1},
            "state": "open",
            "head": {"ref": "fix", "sha": "h", "repo": null},
            "base": {"ref": "main", "sha": "b"},
            "labels": [{"id": 1, "name": "bug", "color": "f00"}],
            "locked": false
        }))
        .unwrap();
        assert_eq!(pr.user.login, "octocat");
        assert!(!pr.draft);
        assert_eq!(pr.head.git_ref, "fix");
        assert_eq!(pr.labels[0].name, "bug");
        assert_eq!(pr.changed_files, None);
        assert_eq!(pr.state, PullRequestState::Open);
    }

    #[test]
    fn reactions_use_githubs_names() {
        let names: Vec<serde_json::Value> = [Reaction::Eyes, Reaction::PlusOne, Reaction::MinusOne]
            .into_iter()
            .map(|content| serde_json::to_value(ReactionBody { content }).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                json!({"content": "eyes"}),
                json!({"content": "+1"}),
                json!({"content": "-1"})
            ]
        );
    }

    #[test]
    fn collaborator_permission_keeps_raw_roles() {
        let maintainer: CollaboratorPermission = serde_json::from_value(json!({
            "permission": "write",
            "role_name": "maintain",
            "user": {"login": "octocat", "id": 1}
        }))
        .unwrap();
        assert_eq!(
            maintainer,
            CollaboratorPermission {
                permission: "write".into(),
                role_name: "maintain".into()
            }
        );
        let old_server: CollaboratorPermission =
            serde_json::from_value(json!({"permission": "admin", "user": null})).unwrap();
        assert_eq!(old_server.role_name, "");
        assert!(serde_json::from_value::<CollaboratorPermission>(json!({})).is_err());
    }

    #[test]
    fn team_membership_states() {
        let state =
            |value: serde_json::Value| serde_json::from_value::<Membership>(value).map(|m| m.state);
        assert_eq!(
            state(json!({"url": "u", "role": "maintainer", "state": "active"})).unwrap(),
            TeamMembership::Active
        );
        assert_eq!(
            state(json!({"role": "member", "state": "pending"})).unwrap(),
            TeamMembership::Pending
        );
        // A 404 is the only way to learn "not a member"; an answer can never claim it.
        assert!(state(json!({"state": "not_member"})).is_err());
        assert!(state(json!({"state": "suspended"})).is_err());
    }

    #[test]
    fn contents_decode_base64_with_line_breaks() {
        let content = Content {
            kind: "file".into(),
            encoding: Some("base64".into()),
            content: Some("aGVsbG8g\nd29ybGQ=\n".into()),
        };
        assert_eq!(content.decode("x").unwrap(), "hello world");
        let large = Content {
            kind: "file".into(),
            encoding: Some("none".into()),
            content: Some(String::new()),
        };
        assert!(matches!(large.decode("x"), Err(GithubError::Decode { .. })));
    }
}
