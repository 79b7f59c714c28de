//! A fake GitHub: a real HTTP server on 127.0.0.1 that speaks GitHub's REST wire format, keeps
//! state (installations, pull requests, files, check runs, comments and their reactions,
//! collaborators' roles, team memberships) and refuses what GitHub refuses, so the app's tests run
//! the real client against it.
//!
//! Every request is recorded. Requests to routes the fake does not know are answered 404 and kept
//! as unexpected; when GitHub's OpenAPI description is present (see [`super::openapi`]), every
//! request must also match it, and violations are answered 422 and kept. [`FakeGithub::assert_clean`]
//! fails a test on either.
//!
//! The same API is served at `/` and below `/api/v3` (GitHub Enterprise Server's layout);
//! recorded paths are below the API root either way.

mod compare;
mod hooks;

use super::openapi;

#[path = "fake_github_oauth.rs"]
mod oauth;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{SecondsFormat, Utc};
use octocrab::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The login the app's comments and check runs appear under.
pub const BOT_LOGIN: &str = "tollgate[bot]";
const ENTERPRISE_PREFIX: &str = "/api/v3";
/// GitHub lists at most 3,000 files of a pull request.
const MAX_LISTED_FILES: usize = 3000;
const MAX_ANNOTATIONS: usize = 50;
const MAX_OUTPUT_BYTES: usize = 65_535;
const MAX_COMMENT_CHARS: usize = 65_536;
/// GitHub's reaction types.
const REACTIONS: [&str; 8] = [
    "+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes",
];
/// The legacy base roles of the collaborator-permission API.
const BASE_PERMISSIONS: [&str; 4] = ["admin", "write", "read", "none"];
const DOCS: &str = "https://docs.github.com/rest";

/// A running fake. Dropping it stops the server.
pub struct FakeGithub {
    url: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGithub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A pull request to serve. `PrSpec { number: 7, files, ..PrSpec::default() }` gives sensible
/// values for the rest.
#[derive(Debug, Clone)]
pub struct PrSpec {
    pub number: u64,
    pub title: String,
    pub body: Option<String>,
    pub author: String,
    pub draft: bool,
    /// `open` or `closed`.
    pub state: String,
    pub head_sha: String,
    pub base_sha: String,
    pub head_ref: String,
    pub base_ref: String,
    pub labels: Vec<String>,
    /// Entries of the "list pull request files" answer, e.g. from [`file_entry`].
    pub files: Vec<Value>,
}

impl Default for PrSpec {
    fn default() -> Self {
        Self {
            number: 1,
            title: "Change things".into(),
            body: Some("Please review.".into()),
            author: "octocat".into(),
            draft: false,
            state: "open".into(),
            head_sha: "1111111111111111111111111111111111111111".into(),
            base_sha: "2222222222222222222222222222222222222222".into(),
            head_ref: "feature".into(),
            base_ref: "main".into(),
            labels: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// One entry of GitHub's "list pull request files" answer; counts come from the patch.
pub fn file_entry(filename: &str, status: &str, patch: Option<&str>) -> Value {
    let (mut additions, mut deletions) = (0, 0);
    for line in patch.unwrap_or_default().lines() {
        if line.starts_with('+') {
            additions += 1;
        } else if line.starts_with('-') {
            deletions += 1;
        }
    }
    let sha = format!("{:040x}", fnv(filename));
    let mut entry = json!({
        "sha": sha,
        "filename": filename,
        "status": status,
        "additions": additions,
        "deletions": deletions,
        "changes": additions + deletions,
        "blob_url": format!("https://github.com/o/r/blob/{sha}/{filename}"),
        "raw_url": format!("https://github.com/o/r/raw/{sha}/{filename}"),
        "contents_url": format!("https://api.github.com/repos/o/r/contents/{filename}?ref={sha}"),
    });
    if let Some(patch) = patch {
        entry["patch"] = json!(patch);
    }
    entry
}

/// An answer to inject with [`FakeGithub::fail_next_with`].
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Failure {
    /// `status` with GitHub's `{"message": reason}` body.
    pub fn status(status: u16) -> Self {
        let reason = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Self {
            status,
            headers: Vec::new(),
            body: json!({ "message": reason, "documentation_url": DOCS }),
        }
    }

    /// 429 with `retry-after: seconds`.
    pub fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self::status(429).header("retry-after", &retry_after_seconds.to_string())
    }

    /// 403 for an exhausted primary limit, resetting at `reset_epoch_seconds`.
    pub fn primary_rate_limit(reset_epoch_seconds: u64) -> Self {
        Self::status(403)
            .header("x-ratelimit-limit", "5000")
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &reset_epoch_seconds.to_string())
            .message("API rate limit exceeded for installation.")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.body["message"] = json!(message);
        self
    }
}

/// The answer to one chosen request, held back: the fake applies the request (the object
/// exists), then answers only once the test releases it, so a test can kill the app while its
/// write is in flight. Made by [`FakeGithub::hold`].
#[derive(Clone)]
pub struct Hold {
    reached: Arc<std::sync::atomic::AtomicBool>,
    release: Arc<tokio::sync::watch::Sender<bool>>,
}

/// A hold no request has reached yet (the fake Slack holds its answers with it too).
impl Default for Hold {
    fn default() -> Hold {
        Hold {
            reached: Arc::default(),
            release: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }
}

impl Hold {
    /// Whether the chosen request arrived (and was applied).
    pub fn reached(&self) -> bool {
        self.reached.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Sends the held answer (at once, if the request has not arrived yet).
    pub fn release(&self) {
        self.release.send_replace(true);
    }

    pub(crate) async fn wait(&self) {
        self.reached
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut released = self.release.subscribe();
        // An error means the test dropped the hold: answer then.
        let _ = released.wait_for(|r| *r).await;
    }
}

struct HoldRule {
    method: String,
    path_prefix: String,
    /// Matching requests still to pass before the held one.
    skip: u32,
    hold: Hold,
}

/// A check run as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRunRecord {
    pub id: u64,
    pub name: String,
    pub head_sha: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub details_url: Option<String>,
    pub external_id: Option<String>,
    pub output_title: Option<String>,
    pub output_summary: Option<String>,
    pub output_text: Option<String>,
    /// Every annotation sent, accumulated over the create and all updates.
    pub annotations: Vec<Value>,
    /// How many PATCHes the check run received.
    pub updates: u32,
}

/// An issue or pull-request comment as the fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct CommentRecord {
    pub id: u64,
    pub number: u64,
    pub author: String,
    pub body: String,
    /// How many times it was edited.
    pub edits: u32,
    /// The reactions the app left (`eyes`, `+1`, ...), each once, in the order first added.
    pub reactions: Vec<String>,
}

/// One request the fake answered. `path` is below the API root, without the query.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The path as received, with a `/api/v3` prefix if the client used one.
    pub full_path: String,
    pub query: Option<String>,
    pub status: u16,
    pub body: Option<Value>,
}

/// A request the fake refused (401, 403, 404, 422, ...), with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub reason: String,
}

impl FakeGithub {
    /// Starts a fake for the app `app_id`. `key_pem` is the app's public key (`PUBLIC KEY` or
    /// `RSA PUBLIC KEY`) or its private key (the public half is derived; nothing else is kept).
    pub async fn start(app_id: u64, key_pem: &str) -> FakeGithub {
        Self::start_serving(app_id, key_pem, None).await
    }

    /// Like [`FakeGithub::start`], over HTTPS with a certificate of the test certificate
    /// authority ([`super::tls::CA_BUNDLE`]), which no client trusts unless told to.
    pub async fn start_https(app_id: u64, key_pem: &str) -> FakeGithub {
        Self::start_serving(app_id, key_pem, Some(super::tls::acceptor())).await
    }

    async fn start_serving(
        app_id: u64,
        key_pem: &str,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> FakeGithub {
        // Load GitHub's description now (or say loudly that conformance is skipped), not inside
        // the first request.
        openapi::validator();
        let state = Arc::new(Mutex::new(FakeState::new(app_id, decoding_key(key_pem))));
        let router = Router::new()
            .fallback(handle)
            .layer(DefaultBodyLimit::max(25 * 1024 * 1024))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake GitHub");
        let address = listener.local_addr().unwrap();
        let (url, server) = match tls {
            None => (
                format!("http://{address}"),
                tokio::spawn(async move {
                    axum::serve(listener, router)
                        .await
                        .expect("fake GitHub server");
                }),
            ),
            Some(acceptor) => (
                format!("https://{address}"),
                tokio::spawn(async move {
                    axum::serve(super::tls::TlsListener::new(listener, acceptor), router)
                        .await
                        .expect("fake GitHub server");
                }),
            ),
        };
        FakeGithub { url, state, server }
    }

    /// The API root, like `https://api.github.com`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// The same API with GitHub Enterprise Server's `/api/v3` base path.
    pub fn enterprise_url(&self) -> String {
        format!("{}{ENTERPRISE_PREFIX}", self.url)
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn add_installation(&self, id: u64) {
        self.state().installations.entry(id).or_default();
    }

    /// Adds a repository to an installation (which must exist).
    pub fn add_repo(&self, installation_id: u64, owner: &str, repo: &str) {
        let mut state = self.state();
        assert!(
            state.installations.contains_key(&installation_id),
            "add_installation({installation_id}) first"
        );
        state.repos.insert(
            repo_key(owner, repo),
            Repo {
                owner: owner.to_owned(),
                name: repo.to_owned(),
                installation: installation_id,
                ..Repo::default()
            },
        );
    }

    /// Creates or replaces a pull request (its comments and check runs stay).
    pub fn set_pull_request(&self, owner: &str, repo: &str, pr: PrSpec) {
        let mut state = self.state();
        state.repo_mut(owner, repo).pulls.insert(pr.number, pr);
    }

    /// Puts a file at a ref (a branch name, or a commit: a pull request's head or base sha also
    /// finds files set for its head or base branch).
    pub fn set_file(&self, owner: &str, repo: &str, git_ref: &str, path: &str, content: &str) {
        let mut state = self.state();
        state.repo_mut(owner, repo).files.insert(
            (git_ref.to_owned(), path.trim_start_matches('/').to_owned()),
            content.to_owned(),
        );
    }

    /// Adds a comment by someone (a user, unless the login ends in `[bot]`); returns its id.
    pub fn add_comment(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        author: &str,
        body: &str,
    ) -> u64 {
        let mut state = self.state();
        let id = state.next_id();
        state.repo_mut(owner, repo).comments.push(CommentRecord {
            id,
            number,
            author: author.to_owned(),
            body: body.to_owned(),
            edits: 0,
            reactions: Vec::new(),
        });
        id
    }

    /// Gives `user` a role on the repository, as the collaborator-permission API reports it:
    /// `permission` is the legacy base role (`admin`, `write`, `read` or `none`), `role_name` the
    /// assigned one (`admin`, `maintain`, `write`, `triage`, `read` or a custom role). Users
    /// without one are answered 404, as GitHub answers for non-collaborators of a private
    /// repository.
    pub fn set_permission(
        &self,
        owner: &str,
        repo: &str,
        user: &str,
        permission: &str,
        role_name: &str,
    ) {
        assert!(
            BASE_PERMISSIONS.contains(&permission),
            "GitHub's base permission is one of {BASE_PERMISSIONS:?}, not {permission:?}"
        );
        let mut state = self.state();
        state.repo_mut(owner, repo).collaborators.insert(
            user.to_ascii_lowercase(),
            Collaborator {
                login: user.to_owned(),
                permission: permission.to_owned(),
                role_name: role_name.to_owned(),
            },
        );
    }

    /// Makes `user` an active member of the team `org/team_slug`. Teams are visible to an
    /// installation that has a repository owned by `org`; other lookups are answered 404, like
    /// those of non-members. A failing lookup is injected with [`Self::fail_next_with`] on
    /// `/orgs/{org}/teams/`.
    pub fn add_team_member(&self, org: &str, team_slug: &str, user: &str) {
        self.set_team_membership(org, team_slug, user, "active");
    }

    /// Invites `user` to the team: the membership stays `pending` until accepted.
    pub fn invite_team_member(&self, org: &str, team_slug: &str, user: &str) {
        self.set_team_membership(org, team_slug, user, "pending");
    }

    fn set_team_membership(&self, org: &str, team_slug: &str, user: &str, membership: &str) {
        self.state()
            .team_memberships
            .insert(team_key(org, team_slug, user), membership.to_owned());
    }

    /// The reactions the app left on a comment, in the order first added; empty for an unknown
    /// comment.
    pub fn reactions(&self, owner: &str, repo: &str, comment_id: u64) -> Vec<String> {
        self.state()
            .repos
            .get(&repo_key(owner, repo))
            .and_then(|r| r.comments.iter().find(|c| c.id == comment_id))
            .map(|c| c.reactions.clone())
            .unwrap_or_default()
    }

    /// Answers the next `times` requests whose method matches (`"*"` for any) and whose path
    /// starts with `path_prefix` with `status`.
    pub fn fail_next(&self, method: &str, path_prefix: &str, status: u16, times: u32) {
        self.fail_next_with(method, path_prefix, Failure::status(status), times);
    }

    /// Like [`Self::fail_next`], with headers and body of choice.
    pub fn fail_next_with(&self, method: &str, path_prefix: &str, failure: Failure, times: u32) {
        self.state().failures.push(FailRule {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_owned(),
            failure,
            remaining: times,
        });
    }

    /// Holds the answer to the `nth` (from 1) next request whose method matches and whose path
    /// starts with `path_prefix`: it is applied, but answered only after [`Hold::release`].
    pub fn hold(&self, method: &str, path_prefix: &str, nth: u32) -> Hold {
        assert!(nth >= 1, "nth counts from 1");
        let hold = Hold::default();
        self.state().holds.push(HoldRule {
            method: method.to_ascii_uppercase(),
            path_prefix: path_prefix.to_owned(),
            skip: nth - 1,
            hold: hold.clone(),
        });
        hold
    }

    /// From now on, an installation that sends more than `max_writes` writes within `window` is
    /// answered GitHub's secondary-rate-limit 403 (with `retry-after`).
    pub fn set_secondary_limit(&self, max_writes: u32, window: Duration) {
        self.state().secondary_limit = Some((max_writes, window));
    }

    /// Plays a GitHub Enterprise Server of `version`: `GET /meta` says so in `installed_version`
    /// and every answer carries `X-GitHub-Enterprise-Version`.
    pub fn set_enterprise_version(&self, version: &str) {
        self.state().enterprise_version = Some(version.to_owned());
    }

    /// How many times the app asked `GET /meta` (not in [`Self::requests`]).
    pub fn meta_requests(&self) -> usize {
        self.state().meta_requests
    }

    /// Forgets every installation token issued so far, as if they had expired.
    pub fn revoke_tokens(&self) {
        self.state().tokens.clear();
    }

    pub fn check_runs(&self, owner: &str, repo: &str) -> Vec<CheckRunRecord> {
        self.state()
            .repos
            .get(&repo_key(owner, repo))
            .map(|r| r.check_runs.clone())
            .unwrap_or_default()
    }

    /// Every comment on an issue or pull request, oldest first: those added with
    /// [`Self::add_comment`] and those the app created.
    pub fn comments(&self, owner: &str, repo: &str, number: u64) -> Vec<CommentRecord> {
        self.state()
            .repos
            .get(&repo_key(owner, repo))
            .map(|r| {
                r.comments
                    .iter()
                    .filter(|c| c.number == number)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Comments written by the app, oldest first: its sticky comment, which starts with
    /// `tollgate::report::STICKY_COMMENT_MARKER`, and any replies, which do not.
    pub fn bot_comments(&self, owner: &str, repo: &str, number: u64) -> Vec<CommentRecord> {
        let mut comments = self.comments(owner, repo, number);
        comments.retain(|c| c.author == BOT_LOGIN);
        comments
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Writes (POST, PATCH, PUT, DELETE) received on repository routes, whatever the answer.
    pub fn write_count(&self) -> usize {
        self.state().write_count
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.state().rejections.clone()
    }

    /// Requests to routes the fake does not serve.
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.state().unexpected.clone()
    }

    /// Requests that broke GitHub's OpenAPI description.
    pub fn openapi_violations(&self) -> Vec<String> {
        self.state().openapi_violations.clone()
    }

    /// Panics when a request went to an unknown route or broke GitHub's OpenAPI description.
    pub fn assert_clean(&self) {
        let state = self.state();
        assert!(
            state.unexpected.is_empty(),
            "unexpected requests to the fake GitHub: {:#?}",
            state.unexpected
        );
        assert!(
            state.openapi_violations.is_empty(),
            "requests breaking GitHub's OpenAPI description: {:#?}",
            state.openapi_violations
        );
    }
}

fn decoding_key(pem: &str) -> DecodingKey {
    use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
    use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use rsa::traits::PublicKeyParts;
    let public = rsa::RsaPublicKey::from_public_key_pem(pem)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_pem(pem))
        .ok()
        .or_else(|| {
            rsa::RsaPrivateKey::from_pkcs1_pem(pem)
                .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(pem))
                .ok()
                .map(|private| private.to_public_key())
        })
        .expect("the fake GitHub needs an RSA key in PEM format");
    DecodingKey::from_rsa_raw_components(&public.n().to_bytes_be(), &public.e().to_bytes_be())
}

fn repo_key(owner: &str, repo: &str) -> (String, String) {
    (owner.to_ascii_lowercase(), repo.to_ascii_lowercase())
}

fn team_key(org: &str, team_slug: &str, user: &str) -> (String, String, String) {
    (
        org.to_ascii_lowercase(),
        team_slug.to_ascii_lowercase(),
        user.to_ascii_lowercase(),
    )
}

/// FNV-1a, for stable fake shas.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Default)]
struct Installation {
    writes: VecDeque<Instant>,
}

#[derive(Default)]
struct Repo {
    owner: String,
    name: String,
    installation: u64,
    pulls: BTreeMap<u64, PrSpec>,
    files: HashMap<(String, String), String>,
    check_runs: Vec<CheckRunRecord>,
    comments: Vec<CommentRecord>,
    /// Lower-case login → role.
    collaborators: HashMap<String, Collaborator>,
    /// (base, head) → what `compare/{base}...{head}` answers.
    comparisons: HashMap<(String, String), compare::Comparison>,
}

struct Collaborator {
    login: String,
    permission: String,
    role_name: String,
}

struct FailRule {
    method: String,
    path_prefix: String,
    failure: Failure,
    remaining: u32,
}

struct FakeState {
    app_id: u64,
    key: DecodingKey,
    installations: HashMap<u64, Installation>,
    repos: HashMap<(String, String), Repo>,
    /// (org, team slug, user), lower case → `active` or `pending`.
    team_memberships: HashMap<(String, String, String), String>,
    /// Installation token → installation id.
    tokens: HashMap<String, u64>,
    ids: u64,
    failures: Vec<FailRule>,
    holds: Vec<HoldRule>,
    secondary_limit: Option<(u32, Duration)>,
    requests: Vec<RecordedRequest>,
    rejections: Vec<Rejection>,
    unexpected: Vec<RecordedRequest>,
    openapi_violations: Vec<String>,
    write_count: usize,
    hooks: hooks::HookState,
    oauth: oauth::OAuthState,
    /// Set when the fake plays a GitHub Enterprise Server of this release.
    enterprise_version: Option<String>,
    /// `GET /meta` requests, which `FakeGithub::requests` leaves out.
    meta_requests: usize,
}

impl FakeState {
    fn new(app_id: u64, key: DecodingKey) -> Self {
        Self {
            app_id,
            key,
            installations: HashMap::new(),
            repos: HashMap::new(),
            team_memberships: HashMap::new(),
            tokens: HashMap::new(),
            ids: 1000,
            failures: Vec::new(),
            holds: Vec::new(),
            secondary_limit: None,
            requests: Vec::new(),
            rejections: Vec::new(),
            unexpected: Vec::new(),
            openapi_violations: Vec::new(),
            write_count: 0,
            hooks: hooks::HookState::default(),
            oauth: oauth::OAuthState::default(),
            enterprise_version: None,
            meta_requests: 0,
        }
    }

    fn next_id(&mut self) -> u64 {
        self.ids += 1;
        self.ids
    }

    fn repo_mut(&mut self, owner: &str, repo: &str) -> &mut Repo {
        self.repos
            .get_mut(&repo_key(owner, repo))
            .unwrap_or_else(|| panic!("add_repo(.., {owner:?}, {repo:?}) first"))
    }
}

/// What a request asks for, once its path is understood.
enum Route {
    App,
    Meta,
    AccessToken(u64),
    TeamMembership {
        org: String,
        team_slug: String,
        user: String,
    },
    Repo(String, String, RepoRoute),
    HookDeliveries,
    HookRedelivery(u64),
    ManifestConversion(String),
}

enum RepoRoute {
    Pull(u64),
    PullFiles(u64),
    Contents(String),
    CheckRuns,
    CheckRun(u64),
    CommitCheckRuns(String),
    IssueComments(u64),
    IssueComment(u64),
    CommentReactions(u64),
    CollaboratorPermission(String),
    Compare(String),
}

fn parse_route(method: &Method, segments: &[String]) -> Option<Route> {
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let patch = method == Method::PATCH;
    match s.as_slice() {
        ["app"] if get => Some(Route::App),
        ["meta"] if get => Some(Route::Meta),
        ["app", "hook", "deliveries"] if get => Some(Route::HookDeliveries),
        ["app", "hook", "deliveries", id, "attempts"] if post => {
            id.parse().ok().map(Route::HookRedelivery)
        }
        ["app-manifests", code, "conversions"] if post => {
            Some(Route::ManifestConversion((*code).to_owned()))
        }
        ["app", "installations", id, "access_tokens"] if post => {
            id.parse().ok().map(Route::AccessToken)
        }
        ["orgs", org, "teams", team_slug, "memberships", user] if get => {
            Some(Route::TeamMembership {
                org: (*org).to_owned(),
                team_slug: (*team_slug).to_owned(),
                user: (*user).to_owned(),
            })
        }
        ["repos", owner, repo, rest @ ..] => {
            let route = match rest {
                ["pulls", n] if get => RepoRoute::Pull(n.parse().ok()?),
                ["pulls", n, "files"] if get => RepoRoute::PullFiles(n.parse().ok()?),
                ["contents", path @ ..] if get && !path.is_empty() => {
                    RepoRoute::Contents(path.join("/"))
                }
                ["check-runs"] if post => RepoRoute::CheckRuns,
                ["check-runs", id] if get || patch => RepoRoute::CheckRun(id.parse().ok()?),
                ["commits", git_ref, "check-runs"] if get => {
                    RepoRoute::CommitCheckRuns((*git_ref).to_owned())
                }
                ["issues", "comments", id] if get || patch || method == Method::DELETE => {
                    RepoRoute::IssueComment(id.parse().ok()?)
                }
                ["issues", n, "comments"] if get || post => {
                    RepoRoute::IssueComments(n.parse().ok()?)
                }
                ["issues", "comments", id, "reactions"] if post => {
                    RepoRoute::CommentReactions(id.parse().ok()?)
                }
                ["collaborators", user, "permission"] if get => {
                    RepoRoute::CollaboratorPermission((*user).to_owned())
                }
                ["compare", basehead] if get => RepoRoute::Compare((*basehead).to_owned()),
                _ => return None,
            };
            Some(Route::Repo((*owner).to_owned(), (*repo).to_owned(), route))
        }
        _ => None,
    }
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: u16,
    body: Option<Value>,
    headers: Vec<(String, String)>,
}

impl Reply {
    fn json(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            headers: Vec::new(),
        }
    }

    fn message(status: u16, message: &str) -> Self {
        Self::json(
            status,
            json!({ "message": message, "documentation_url": DOCS }),
        )
    }

    fn not_found() -> Self {
        Self::message(404, "Not Found")
    }

    fn invalid(message: &str) -> Self {
        Self::message(422, message)
    }
}

struct Incoming<'a> {
    method: &'a Method,
    path: &'a str,
    query: HashMap<String, String>,
    headers: &'a HeaderMap,
    body: Option<&'a Value>,
}

impl Incoming<'_> {
    fn query_number(&self, name: &str, default: usize) -> usize {
        self.query
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    fn bearer(&self) -> Option<&str> {
        let value = self.headers.get("authorization")?.to_str().ok()?;
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("token "))
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, hold) = respond(&state, &method, &uri, &headers, &body);
    if let Some(hold) = hold {
        hold.wait().await;
    }
    response
}

/// Answers a request; the hold, if the test chose to hold this answer.
fn respond(
    state: &Mutex<FakeState>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, Option<Hold>) {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let raw_path = uri.path();
    let path = match raw_path.strip_prefix(ENTERPRISE_PREFIX) {
        Some(rest) if rest.starts_with('/') => rest,
        _ => raw_path,
    }
    .to_owned();
    // github.com's manifest page takes a form, not JSON.
    if let Some((recorded, reply)) =
        hooks::manifest_page(&mut state, method, &path, uri.query(), body)
    {
        state.requests.push(recorded);
        return (into_response(reply), None);
    }
    let parsed_body: Result<Option<Value>, ()> = if body.is_empty() {
        Ok(None)
    } else {
        serde_json::from_slice(body).map(Some).map_err(|_| ())
    };
    let body_value = parsed_body.clone().ok().flatten();
    let web_login = oauth::answer_web_login(&mut state, method, &path, uri.query(), body);
    let (mut reply, unexpected) = match (web_login, parsed_body) {
        (Some(reply), _) => (reply, false),
        (None, Err(())) => (Reply::message(400, "Problems parsing JSON"), false),
        (None, Ok(body)) => {
            let incoming = Incoming {
                method,
                path: &path,
                query: parse_query(uri.query()),
                headers,
                body: body.as_ref(),
            };
            state.answer(&incoming)
        }
    };
    if let Some(version) = &state.enterprise_version {
        reply
            .headers
            .push(("x-github-enterprise-version".to_owned(), version.clone()));
    }
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        full_path: raw_path.to_owned(),
        query: uri.query().map(str::to_owned),
        status: reply.status,
        body: body_value,
    };
    if unexpected {
        state.unexpected.push(recorded.clone());
    }
    if reply.status >= 400 {
        let reason = reply
            .body
            .as_ref()
            .and_then(|b| b.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        state.rejections.push(Rejection {
            method: method.to_string(),
            path: path.clone(),
            status: reply.status,
            reason,
        });
    }
    // The app asks `GET /meta` once as it starts, whatever the test does: kept apart, so that
    // tests count the calls their scenario makes.
    if *method == Method::GET && path == "/meta" {
        state.meta_requests += 1;
    } else {
        state.requests.push(recorded);
    }
    let hold = state.take_hold(method, &path);
    (into_response(reply), hold)
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match reply.body {
        Some(body) => (status, axum::Json(body)).into_response(),
        None => status.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert("x-github-request-id", HeaderValue::from_static("FAKE:0001"));
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(name, value);
        }
    }
    response
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                percent_decode(&name.replace('+', " ")),
                percent_decode(&value.replace('+', " ")),
            )
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl FakeState {
    /// Answers one request; the flag says whether the route was unknown.
    fn answer(&mut self, req: &Incoming<'_>) -> (Reply, bool) {
        let segments: Vec<String> = req
            .path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        if oauth::is_user_request(&self.oauth, req)
            && let Some(reply) = self
                .injected_failure(req)
                .or_else(|| oauth::answer_user_api(self, req))
        {
            return (reply, false);
        }
        let Some(route) = parse_route(req.method, &segments) else {
            return (Reply::not_found(), true);
        };
        let is_write = req.method != Method::GET && matches!(route, Route::Repo(..));
        if is_write {
            self.write_count += 1;
        }
        if let Some(reply) = self.injected_failure(req) {
            return (reply, false);
        }
        if let Some(validator) = openapi::validator()
            && let Err(violation) = validator.check(req.method.as_str(), req.path, req.body)
        {
            self.openapi_violations.push(violation.clone());
            return (
                Reply::invalid(&format!("Invalid request (OpenAPI): {violation}")),
                false,
            );
        }
        let reply = match route {
            Route::App => self.app(req),
            Route::Meta => self.meta(),
            Route::AccessToken(installation) => self.access_token(req, installation),
            Route::TeamMembership {
                org,
                team_slug,
                user,
            } => self.team_membership(req, &org, &team_slug, &user),
            Route::Repo(owner, repo, route) => self.repo_request(req, &owner, &repo, route),
            Route::HookDeliveries => self.list_hook_deliveries(req),
            Route::HookRedelivery(id) => self.redeliver_hook_delivery(req, id),
            Route::ManifestConversion(code) => self.convert_manifest(&code),
        };
        (reply, false)
    }

    /// The hold this request's answer waits for, if it is the chosen one.
    fn take_hold(&mut self, method: &Method, path: &str) -> Option<Hold> {
        let mut chosen = None;
        for (index, rule) in self.holds.iter_mut().enumerate() {
            if rule.method != method.as_str() || !path.starts_with(&rule.path_prefix) {
                continue;
            }
            match rule.skip {
                0 => chosen = chosen.or(Some(index)),
                _ => rule.skip -= 1,
            }
        }
        chosen.map(|index| self.holds.remove(index).hold)
    }

    fn injected_failure(&mut self, req: &Incoming<'_>) -> Option<Reply> {
        let rule = self.failures.iter_mut().find(|rule| {
            rule.remaining > 0
                && (rule.method == "*" || rule.method == req.method.as_str())
                && req.path.starts_with(&rule.path_prefix)
        })?;
        rule.remaining -= 1;
        let failure = rule.failure.clone();
        self.failures.retain(|rule| rule.remaining > 0);
        Some(Reply {
            status: failure.status,
            body: Some(failure.body),
            headers: failure.headers,
        })
    }

    /// Checks the app JWT: RS256, signed with the app's key, `iss` = app id, at most ~10 minutes
    /// long, not expired.
    fn verify_jwt(&self, req: &Incoming<'_>) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Value,
            iat: i64,
            exp: i64,
        }
        let token = req.bearer().ok_or("no bearer token")?;
        let mut validation = Validation::new(Algorithm::RS256);
        // `iss` is a number in GitHub App JWTs; jsonwebtoken only checks string issuers, so it is
        // checked below.
        validation.set_required_spec_claims(&["exp"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &validation)
            .map_err(|e| format!("JWT rejected: {e}"))?
            .claims;
        let iss_ok = match &claims.iss {
            Value::Number(n) => n.as_u64() == Some(self.app_id),
            Value::String(s) => s == &self.app_id.to_string(),
            _ => false,
        };
        if !iss_ok {
            return Err(format!("JWT iss {} is not app {}", claims.iss, self.app_id));
        }
        if claims.exp - claims.iat > 660 {
            return Err("JWT lives longer than 10 minutes".into());
        }
        if claims.iat > Utc::now().timestamp() + 60 {
            return Err("JWT issued in the future".into());
        }
        Ok(())
    }

    /// `GET /meta`, trimmed to what the app reads: a server's release when it is one.
    fn meta(&self) -> Reply {
        let mut body = json!({ "verifiable_password_authentication": false });
        if let Some(version) = &self.enterprise_version {
            body["installed_version"] = json!(version);
        }
        Reply::json(200, body)
    }

    fn app(&mut self, req: &Incoming<'_>) -> Reply {
        if let Err(reason) = self.verify_jwt(req) {
            return Reply::message(
                401,
                &format!("A JSON web token could not be decoded ({reason})"),
            );
        }
        Reply::json(
            200,
            json!({
                "id": self.app_id, "slug": "tollgate", "name": "Tollgate", "node_id": "A_1",
                "owner": {"login": "tollgate-org", "id": 1, "type": "Organization"},
                "description": "", "external_url": "https://example.com",
                "html_url": "https://github.com/apps/tollgate",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
                "permissions": {"checks": "write", "contents": "read", "issues": "write",
                                "pull_requests": "write", "metadata": "read", "members": "read"},
                "events": ["pull_request", "issue_comment", "check_run"]
            }),
        )
    }

    fn access_token(&mut self, req: &Incoming<'_>, installation: u64) -> Reply {
        if let Err(reason) = self.verify_jwt(req) {
            return Reply::message(
                401,
                &format!("A JSON web token could not be decoded ({reason})"),
            );
        }
        if !self.installations.contains_key(&installation) {
            return Reply::not_found();
        }
        let token = format!("ghs_fake{installation}x{:016}", self.next_id());
        self.tokens.insert(token.clone(), installation);
        let expires_at =
            (Utc::now() + chrono::Duration::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true);
        Reply::json(
            201,
            json!({
                "token": token,
                "expires_at": expires_at,
                "permissions": {"checks": "write", "contents": "read", "issues": "write",
                                "pull_requests": "write", "metadata": "read", "members": "read"},
                "repository_selection": "selected"
            }),
        )
    }

    fn repo_request(
        &mut self,
        req: &Incoming<'_>,
        owner: &str,
        repo: &str,
        route: RepoRoute,
    ) -> Reply {
        let Some(installation) = req.bearer().and_then(|t| self.tokens.get(t)).copied() else {
            return Reply::message(401, "Bad credentials");
        };
        let key = repo_key(owner, repo);
        match self.repos.get(&key) {
            // GitHub answers 404 for a repository the installation cannot see.
            Some(r) if r.installation == installation => {}
            _ => return Reply::not_found(),
        }
        if req.method != Method::GET
            && let Some(reply) = self.secondary_limit(installation)
        {
            return reply;
        }
        let repo_state = self.repos.get_mut(&key).expect("checked above");
        serve_repo(repo_state, &mut self.ids, req, route)
    }

    /// Team memberships are visible to an installation on the team's organization; GitHub answers
    /// 404 alike for a non-member, an unknown team and a team the installation cannot see.
    fn team_membership(&self, req: &Incoming<'_>, org: &str, team_slug: &str, user: &str) -> Reply {
        let Some(installation) = req.bearer().and_then(|t| self.tokens.get(t)).copied() else {
            return Reply::message(401, "Bad credentials");
        };
        let sees_org = self
            .repos
            .values()
            .any(|r| r.installation == installation && r.owner.eq_ignore_ascii_case(org));
        let membership = self.team_memberships.get(&team_key(org, team_slug, user));
        match membership {
            Some(state) if sees_org => Reply::json(
                200,
                json!({
                    "url": format!(
                        "https://api.github.com/organizations/1/team/{}/memberships/{user}",
                        fnv(team_slug) % 1_000_000
                    ),
                    "role": "member",
                    "state": state,
                }),
            ),
            _ => Reply::not_found(),
        }
    }

    /// GitHub's secondary limit on content creation, when the test set one.
    fn secondary_limit(&mut self, installation: u64) -> Option<Reply> {
        let (max_writes, window) = self.secondary_limit?;
        let writes = &mut self.installations.entry(installation).or_default().writes;
        let now = Instant::now();
        while writes
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            writes.pop_front();
        }
        if writes.len() >= max_writes as usize {
            // Until the oldest write in the window leaves it.
            let wait = writes
                .front()
                .map_or(window, |oldest| {
                    window.saturating_sub(now.duration_since(*oldest))
                })
                .as_secs()
                .max(1);
            let mut reply = Reply::message(
                403,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID FAKE:0001.",
            );
            reply.headers.push(("retry-after".into(), wait.to_string()));
            return Some(reply);
        }
        writes.push_back(now);
        None
    }
}

fn next_id(ids: &mut u64) -> u64 {
    *ids += 1;
    *ids
}

/// Serves a repository route for a caller already allowed to see the repository.
fn serve_repo(repo: &mut Repo, ids: &mut u64, req: &Incoming<'_>, route: RepoRoute) -> Reply {
    match route {
        RepoRoute::Compare(basehead) => compare::serve(repo, req, &basehead),
        RepoRoute::Pull(number) => match repo.pulls.get(&number) {
            Some(pr) => Reply::json(200, pull_json(repo, pr)),
            None => Reply::not_found(),
        },
        RepoRoute::PullFiles(number) => match repo.pulls.get(&number) {
            Some(pr) => {
                let per_page = req.query_number("per_page", 30).clamp(1, 100);
                let page = req.query_number("page", 1).max(1);
                let listed = &pr.files[..pr.files.len().min(MAX_LISTED_FILES)];
                let page_files: Vec<Value> = listed
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .cloned()
                    .collect();
                Reply::json(200, Value::Array(page_files))
            }
            None => Reply::not_found(),
        },
        RepoRoute::Contents(path) => {
            let git_ref = req
                .query
                .get("ref")
                .cloned()
                .unwrap_or_else(|| "main".into());
            match find_file(repo, &git_ref, &path) {
                Some(content) => Reply::json(200, contents_json(repo, &path, content)),
                None => Reply::not_found(),
            }
        }
        RepoRoute::CheckRuns => match validate_check_run(req.body, true) {
            Err(message) => Reply::invalid(&message),
            Ok(()) => {
                let body = req.body.expect("validated");
                let mut record = CheckRunRecord {
                    id: next_id(ids),
                    name: String::new(),
                    head_sha: String::new(),
                    status: "queued".into(),
                    conclusion: None,
                    started_at: None,
                    completed_at: None,
                    details_url: None,
                    external_id: None,
                    output_title: None,
                    output_summary: None,
                    output_text: None,
                    annotations: Vec::new(),
                    updates: 0,
                };
                apply_check_run(&mut record, body);
                let reply = Reply::json(201, check_run_json(repo, &record));
                repo.check_runs.push(record);
                reply
            }
        },
        RepoRoute::CheckRun(id) => {
            let Some(index) = repo.check_runs.iter().position(|c| c.id == id) else {
                return Reply::not_found();
            };
            if req.method == Method::PATCH {
                if let Err(message) = validate_check_run(req.body, false) {
                    return Reply::invalid(&message);
                }
                let record = &mut repo.check_runs[index];
                apply_check_run(record, req.body.expect("validated"));
                record.updates += 1;
            }
            Reply::json(200, check_run_json(repo, &repo.check_runs[index]))
        }
        RepoRoute::CommitCheckRuns(git_ref) => {
            let sha = repo
                .pulls
                .values()
                .find(|pr| pr.head_ref == git_ref)
                .map(|pr| pr.head_sha.clone())
                .unwrap_or(git_ref);
            let name = req.query.get("check_name");
            let mut runs: Vec<&CheckRunRecord> = repo
                .check_runs
                .iter()
                .rev()
                .filter(|c| c.head_sha == sha && name.is_none_or(|n| *n == c.name))
                .collect();
            // GitHub's default filter, `latest`, keeps the newest run of each name.
            if req.query.get("filter").is_none_or(|f| f == "latest") {
                let mut seen = std::collections::HashSet::new();
                runs.retain(|c| seen.insert(c.name.clone()));
            }
            let total = runs.len();
            let per_page = req.query_number("per_page", 30).clamp(1, 100);
            let page = req.query_number("page", 1).max(1);
            let listed: Vec<Value> = runs
                .into_iter()
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|c| check_run_json(repo, c))
                .collect();
            Reply::json(200, json!({ "total_count": total, "check_runs": listed }))
        }
        RepoRoute::IssueComments(number) => {
            if !repo.pulls.contains_key(&number) {
                return Reply::not_found();
            }
            if req.method == Method::POST {
                match validate_comment(req.body) {
                    Err(message) => Reply::invalid(&message),
                    Ok(body) => {
                        let record = CommentRecord {
                            id: next_id(ids),
                            number,
                            author: BOT_LOGIN.into(),
                            body,
                            edits: 0,
                            reactions: Vec::new(),
                        };
                        let reply = Reply::json(201, comment_json(repo, &record));
                        repo.comments.push(record);
                        reply
                    }
                }
            } else {
                let per_page = req.query_number("per_page", 30).clamp(1, 100);
                let page = req.query_number("page", 1).max(1);
                let comments: Vec<Value> = repo
                    .comments
                    .iter()
                    .filter(|c| c.number == number)
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|c| comment_json(repo, c))
                    .collect();
                Reply::json(200, Value::Array(comments))
            }
        }
        RepoRoute::IssueComment(id) => {
            let Some(index) = repo.comments.iter().position(|c| c.id == id) else {
                return Reply::not_found();
            };
            match *req.method {
                Method::PATCH => match validate_comment(req.body) {
                    Err(message) => Reply::invalid(&message),
                    Ok(body) => {
                        let record = &mut repo.comments[index];
                        record.body = body;
                        record.edits += 1;
                        Reply::json(200, comment_json(repo, &repo.comments[index]))
                    }
                },
                Method::DELETE => {
                    repo.comments.remove(index);
                    Reply {
                        status: 204,
                        body: None,
                        headers: Vec::new(),
                    }
                }
                _ => Reply::json(200, comment_json(repo, &repo.comments[index])),
            }
        }
        RepoRoute::CommentReactions(id) => {
            let Some(comment) = repo.comments.iter_mut().find(|c| c.id == id) else {
                return Reply::not_found();
            };
            match validate_reaction(req.body) {
                Err(message) => Reply::invalid(&message),
                Ok(content) => {
                    // Adding a reaction again answers 200 with the existing one.
                    let status = if comment.reactions.contains(&content) {
                        200
                    } else {
                        comment.reactions.push(content.clone());
                        201
                    };
                    Reply::json(status, reaction_json(id, &content))
                }
            }
        }
        RepoRoute::CollaboratorPermission(user) => {
            match repo.collaborators.get(&user.to_ascii_lowercase()) {
                Some(collaborator) => Reply::json(
                    200,
                    json!({
                        "permission": collaborator.permission,
                        "role_name": collaborator.role_name,
                        "user": user_json(&collaborator.login),
                    }),
                ),
                None => Reply::not_found(),
            }
        }
    }
}

fn find_file<'a>(repo: &'a Repo, git_ref: &str, path: &str) -> Option<&'a String> {
    let path = path.trim_start_matches('/').to_owned();
    if let Some(content) = repo.files.get(&(git_ref.to_owned(), path.clone())) {
        return Some(content);
    }
    // A commit sha of a pull request's head or base finds the files of that branch.
    let branch = repo.pulls.values().find_map(|pr| {
        if pr.head_sha == git_ref {
            Some(pr.head_ref.clone())
        } else if pr.base_sha == git_ref {
            Some(pr.base_ref.clone())
        } else {
            None
        }
    })?;
    repo.files.get(&(branch, path))
}

fn repo_json(repo: &Repo) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    json!({
        "id": fnv(&full_name) % 1_000_000_000,
        "name": repo.name,
        "full_name": full_name,
        "private": false,
        "owner": {"login": repo.owner, "id": 1, "type": "Organization"},
        "html_url": format!("https://github.com/{full_name}"),
        "default_branch": "main",
    })
}

fn user_json(login: &str) -> Value {
    let kind = if login.ends_with("[bot]") {
        "Bot"
    } else {
        "User"
    };
    json!({
        "login": login,
        "id": fnv(login) % 1_000_000,
        "node_id": "U_fake",
        "type": kind,
        "site_admin": false,
        "html_url": format!("https://github.com/{login}"),
    })
}

fn pull_json(repo: &Repo, pr: &PrSpec) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let (additions, deletions) = pr.files.iter().fold((0, 0), |(a, d), f| {
        (
            a + f["additions"].as_u64().unwrap_or(0),
            d + f["deletions"].as_u64().unwrap_or(0),
        )
    });
    let branch = |git_ref: &str, sha: &str| {
        json!({
            "label": format!("{}:{git_ref}", repo.owner),
            "ref": git_ref,
            "sha": sha,
            "user": user_json(&repo.owner),
            "repo": repo_json(repo),
        })
    };
    json!({
        "url": format!("https://api.github.com/repos/{full_name}/pulls/{}", pr.number),
        "id": 10_000 + pr.number,
        "node_id": "PR_fake",
        "html_url": format!("https://github.com/{full_name}/pull/{}", pr.number),
        "number": pr.number,
        "state": pr.state,
        "locked": false,
        "title": pr.title,
        "user": user_json(&pr.author),
        "body": pr.body,
        "labels": pr.labels.iter().enumerate().map(|(i, name)| json!({
            "id": i + 1, "name": name, "color": "ededed", "default": false
        })).collect::<Vec<_>>(),
        "draft": pr.draft,
        "head": branch(&pr.head_ref, &pr.head_sha),
        "base": branch(&pr.base_ref, &pr.base_sha),
        "merged": false,
        "mergeable": null,
        "comments": repo.comments.iter().filter(|c| c.number == pr.number).count(),
        "commits": 1,
        "additions": additions,
        "deletions": deletions,
        "changed_files": pr.files.len(),
        "author_association": "CONTRIBUTOR",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

fn contents_json(repo: &Repo, path: &str, content: &str) -> Value {
    let encoded = base64::engine::general_purpose::STANDARD.encode(content);
    // GitHub wraps the base64 text at 60 characters.
    let wrapped: Vec<&str> = encoded
        .as_bytes()
        .chunks(60)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({
        "type": "file",
        "encoding": "base64",
        "size": content.len(),
        "name": name,
        "path": path,
        "content": wrapped.join("\n") + "\n",
        "sha": format!("{:040x}", fnv(content)),
        "url": format!("https://api.github.com/repos/{}/{}/contents/{path}", repo.owner, repo.name),
    })
}

fn check_run_json(repo: &Repo, run: &CheckRunRecord) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    json!({
        "id": run.id,
        "node_id": "CR_fake",
        "head_sha": run.head_sha,
        "external_id": run.external_id,
        "url": format!("https://api.github.com/repos/{full_name}/check-runs/{}", run.id),
        "html_url": format!("https://github.com/{full_name}/runs/{}", run.id),
        "details_url": run.details_url,
        "status": run.status,
        "conclusion": run.conclusion,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
        "name": run.name,
        "output": {
            "title": run.output_title,
            "summary": run.output_summary,
            "text": run.output_text,
            "annotations_count": run.annotations.len(),
            "annotations_url": format!(
                "https://api.github.com/repos/{full_name}/check-runs/{}/annotations", run.id
            ),
        },
        "check_suite": {"id": 1},
        "app": {"id": 1, "slug": "tollgate", "name": "Tollgate"},
        "pull_requests": [],
    })
}

fn comment_json(repo: &Repo, comment: &CommentRecord) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    json!({
        "id": comment.id,
        "node_id": "IC_fake",
        "url": format!("https://api.github.com/repos/{full_name}/issues/comments/{}", comment.id),
        "html_url": format!(
            "https://github.com/{full_name}/pull/{}#issuecomment-{}", comment.number, comment.id
        ),
        "issue_url": format!("https://api.github.com/repos/{full_name}/issues/{}", comment.number),
        "body": comment.body,
        "user": user_json(&comment.author),
        "author_association": if comment.author.ends_with("[bot]") { "NONE" } else { "CONTRIBUTOR" },
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

fn reaction_json(comment_id: u64, content: &str) -> Value {
    json!({
        "id": fnv(&format!("{comment_id}:{content}")) % 1_000_000_000,
        "node_id": "REA_fake",
        "user": user_json(BOT_LOGIN),
        "content": content,
        "created_at": "2026-01-01T00:00:00Z",
    })
}

fn apply_check_run(record: &mut CheckRunRecord, body: &Value) {
    let text = |key: &str| body.get(key).and_then(Value::as_str).map(str::to_owned);
    if let Some(name) = text("name") {
        record.name = name;
    }
    if let Some(head_sha) = text("head_sha") {
        record.head_sha = head_sha;
    }
    if let Some(status) = text("status") {
        record.status = status;
    }
    if record.status == "in_progress" && record.started_at.is_none() {
        record.started_at = Some(now_iso());
    }
    if let Some(conclusion) = text("conclusion") {
        // A conclusion completes the run.
        record.conclusion = Some(conclusion);
        record.status = "completed".into();
    }
    if record.status == "completed" && record.completed_at.is_none() {
        record.completed_at = Some(now_iso());
    }
    record.started_at = text("started_at").or(record.started_at.take());
    record.completed_at = text("completed_at").or(record.completed_at.take());
    record.details_url = text("details_url").or(record.details_url.take());
    record.external_id = text("external_id").or(record.external_id.take());
    if let Some(output) = body.get("output") {
        let field = |key: &str| output.get(key).and_then(Value::as_str).map(str::to_owned);
        record.output_title = field("title");
        record.output_summary = field("summary");
        record.output_text = field("text");
        if let Some(annotations) = output.get("annotations").and_then(Value::as_array) {
            record.annotations.extend(annotations.iter().cloned());
        }
    }
}

const STATUSES: [&str; 3] = ["queued", "in_progress", "completed"];
const CONCLUSIONS: [&str; 7] = [
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "timed_out",
];
const LEVELS: [&str; 3] = ["notice", "warning", "failure"];

/// What GitHub refuses in a check-run create or update.
fn validate_check_run(body: Option<&Value>, creating: bool) -> Result<(), String> {
    let body = body
        .and_then(Value::as_object)
        .ok_or("Invalid request.\n\nThe request body must be a JSON object.")?;
    let string = |key: &str| -> Result<Option<&str>, String> {
        match body.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!(
                "Invalid request.\n\nFor '{key}', {other} is not a string."
            )),
        }
    };
    for key in ["name", "head_sha"] {
        let value = string(key)?;
        if creating && value.is_none_or(str::is_empty) {
            return Err(format!("Invalid request.\n\n\"{key}\" wasn't supplied."));
        }
    }
    for key in ["details_url", "external_id"] {
        string(key)?;
    }
    let status = string("status")?;
    if let Some(status) = status
        && !STATUSES.contains(&status)
    {
        return Err(format!(
            "Invalid request.\n\nFor 'status', \"{status}\" is not a valid value (only GitHub Actions may set waiting, requested or pending)."
        ));
    }
    let conclusion = string("conclusion")?;
    if let Some(conclusion) = conclusion
        && !CONCLUSIONS.contains(&conclusion)
    {
        return Err(format!(
            "Invalid request.\n\nFor 'conclusion', \"{conclusion}\" is not a valid value."
        ));
    }
    if conclusion.is_none() && (status == Some("completed") || body.contains_key("completed_at")) {
        return Err(
            "Invalid request.\n\n\"conclusion\" is required when \"status\" is \"completed\" or \"completed_at\" is given."
                .into(),
        );
    }
    for key in ["started_at", "completed_at"] {
        if let Some(time) = string(key)?
            && chrono::DateTime::parse_from_rfc3339(time).is_err()
        {
            return Err(format!(
                "Invalid request.\n\nFor '{key}', \"{time}\" is not an ISO 8601 timestamp."
            ));
        }
    }
    if let Some(output) = body.get("output") {
        validate_output(output)?;
    }
    Ok(())
}

fn validate_output(output: &Value) -> Result<(), String> {
    let output = output
        .as_object()
        .ok_or("Invalid request.\n\nFor 'output', the value is not an object.")?;
    for key in ["title", "summary"] {
        match output.get(key) {
            Some(Value::String(_)) => {}
            Some(_) => {
                return Err(format!(
                    "Invalid request.\n\nFor 'output.{key}', not a string."
                ));
            }
            None => return Err(format!("Invalid request.\n\n\"{key}\" wasn't supplied.")),
        }
    }
    for key in ["summary", "text"] {
        if let Some(value) = output.get(key) {
            let text = value.as_str().ok_or(format!(
                "Invalid request.\n\nFor 'output.{key}', not a string."
            ))?;
            if text.len() > MAX_OUTPUT_BYTES {
                return Err(format!(
                    "Invalid request.\n\nOnly 65535 characters are allowed; 'output.{key}' has {} bytes.",
                    text.len()
                ));
            }
        }
    }
    let Some(annotations) = output.get("annotations") else {
        return Ok(());
    };
    let annotations = annotations
        .as_array()
        .ok_or("Invalid request.\n\nFor 'output.annotations', not an array.")?;
    if annotations.len() > MAX_ANNOTATIONS {
        return Err(format!(
            "Invalid request.\n\nOnly 50 annotations are allowed per request; got {}.",
            annotations.len()
        ));
    }
    for (i, annotation) in annotations.iter().enumerate() {
        validate_annotation(annotation)
            .map_err(|e| format!("Invalid request.\n\nannotations[{i}]: {e}"))?;
    }
    Ok(())
}

fn validate_annotation(annotation: &Value) -> Result<(), String> {
    let annotation = annotation.as_object().ok_or("not an object")?;
    for key in ["path", "message", "annotation_level"] {
        if !annotation.get(key).is_some_and(Value::is_string) {
            return Err(format!("\"{key}\" wasn't supplied (or is not a string)"));
        }
    }
    let mut lines = [0u64; 2];
    for (slot, key) in lines.iter_mut().zip(["start_line", "end_line"]) {
        *slot = annotation
            .get(key)
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .ok_or(format!("\"{key}\" wasn't supplied as a positive integer"))?;
    }
    if lines[1] < lines[0] {
        return Err("end_line is before start_line".into());
    }
    let level = annotation["annotation_level"].as_str().unwrap_or_default();
    if !LEVELS.contains(&level) {
        return Err(format!("\"{level}\" is not a valid annotation_level"));
    }
    if (annotation.contains_key("start_column") || annotation.contains_key("end_column"))
        && lines[0] != lines[1]
    {
        return Err("columns are only allowed when start_line equals end_line".into());
    }
    if let Some(title) = annotation.get("title").and_then(Value::as_str)
        && title.chars().count() > 255
    {
        return Err("title is longer than 255 characters".into());
    }
    for key in ["message", "raw_details"] {
        if let Some(text) = annotation.get(key).and_then(Value::as_str)
            && text.len() > 64 * 1024
        {
            return Err(format!("{key} is larger than 64 KB"));
        }
    }
    Ok(())
}

/// What GitHub refuses in an issue comment; returns the body.
fn validate_comment(body: Option<&Value>) -> Result<String, String> {
    let text = body
        .and_then(|b| b.get("body"))
        .and_then(Value::as_str)
        .ok_or("Invalid request.\n\n\"body\" wasn't supplied.")?;
    if text.trim().is_empty() {
        return Err("Validation Failed: body cannot be blank".into());
    }
    let chars = text.chars().count();
    if chars > MAX_COMMENT_CHARS {
        return Err(format!(
            "Validation Failed: Body is too long (maximum is 65536 characters; got {chars})"
        ));
    }
    Ok(text.to_owned())
}

/// What GitHub refuses in a new reaction; returns its content.
fn validate_reaction(body: Option<&Value>) -> Result<String, String> {
    let content = body
        .and_then(|b| b.get("content"))
        .ok_or("Invalid request.\n\n\"content\" wasn't supplied.")?;
    match content.as_str() {
        Some(content) if REACTIONS.contains(&content) => Ok(content.to_owned()),
        _ => Err(format!(
            "Invalid request.\n\nFor 'content', {content} is not a valid value."
        )),
    }
}
