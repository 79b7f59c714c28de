//! Webhook payloads → internal events, converted once at the edge. Payload structs are lenient
//! (`Option` for anything routing does not need: GitHub's own examples omit fields); a payload
//! missing what routing needs is malformed, an event the app does not handle is ignored.

use serde::{Deserialize, Serialize};

/// A repository as jobs address it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    pub id: i64,
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }
}

/// One pull request to (re-)evaluate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrTarget {
    pub installation_id: i64,
    pub repo: RepoRef,
    pub number: u64,
}

/// A new comment on a pull request that may hold commands (`/override`, `/approve`, ...): the
/// payload of the command job, which parses the body and authorizes the author itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommentCommand {
    pub target: PrTarget,
    pub comment_id: u64,
    pub body: String,
    /// The commenter's login.
    pub author: String,
    pub author_id: Option<i64>,
    /// GitHub's `author_association` (`OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`,
    /// ...): context only; authorization asks GitHub for the commenter's permission.
    pub author_association: Option<String>,
    /// The pull request's author (`issue.user.login`); absent for a deleted account.
    pub pr_author: Option<String>,
}

/// A merge queue's temporary merge commit (`merge_group` event): the pull requests ahead in the
/// queue plus the last one, merged onto `base_sha`. Required checks report on `head_sha`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeGroup {
    pub installation_id: i64,
    pub repo: RepoRef,
    pub head_sha: String,
    /// `refs/heads/gh-readonly-queue/<base>/pr-<n>-<sha>`: names the group's last pull request.
    pub head_ref: String,
    pub base_sha: String,
    /// `refs/heads/<base>`.
    pub base_ref: String,
}

/// The branch prefix GitHub gives merge-queue refs.
pub const MERGE_QUEUE_BRANCH_PREFIX: &str = "gh-readonly-queue/";

impl MergeGroup {
    /// The pull request `head_ref` names (the last one of the group), if the ref has the form
    /// GitHub gives it.
    pub fn last_pull_request(&self) -> Option<u64> {
        let branch = self
            .head_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.head_ref);
        let rest = branch.strip_prefix(MERGE_QUEUE_BRANCH_PREFIX)?;
        // `<base>` may itself hold slashes: the last segment is `pr-<n>-<sha>`.
        let (_, entry) = rest.rsplit_once('/')?;
        let (number, _sha) = entry.strip_prefix("pr-")?.split_once('-')?;
        number.parse().ok().filter(|n| *n > 0)
    }

    /// The branch the group merges into, without `refs/heads/`.
    pub fn base_branch(&self) -> &str {
        self.base_ref
            .strip_prefix("refs/heads/")
            .unwrap_or(&self.base_ref)
    }
}

/// A change to a repository's merge queue that only the store records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum QueueChange {
    /// A pull request joined the queue of its base branch.
    Enqueued { target: PrTarget, base_ref: String },
    /// A pull request left the queue (merged or removed).
    Dequeued { target: PrTarget },
    /// A merge group is gone (merged, dequeued or invalidated): bookkeeping only, never a GitHub
    /// write.
    Destroyed {
        group: MergeGroup,
        reason: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallationChange {
    pub installation_id: i64,
    pub account_login: String,
    pub account_type: Option<String>,
    /// `false` when the installation was deleted or suspended.
    pub active: bool,
    pub added: Vec<RepoRef>,
    pub removed: Vec<RepoRef>,
}

/// What a delivery asks of the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Routed {
    Ping,
    Evaluate(Vec<PrTarget>),
    Installation(InstallationChange),
    Command(CommentCommand),
    /// A pull request was closed (merged or not): its pending override requests have nothing
    /// left to decide.
    PullRequestClosed(PrTarget),
    /// A merge queue asks for the checks of a merge group.
    EvaluateMergeGroup(MergeGroup),
    /// The merge queue changed (see [`QueueChange`]).
    MergeQueue(QueueChange),
    /// Well-formed, but nothing to do; the reason is recorded with the delivery.
    Ignored(String),
}

#[derive(Debug, thiserror::Error)]
#[error("malformed {event} payload: {message}")]
pub struct MalformedPayload {
    pub event: String,
    pub message: String,
}

/// What routing depends on besides the payload.
#[derive(Debug, Clone, Copy)]
pub struct RoutingPolicy {
    pub evaluate_drafts: bool,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

#[derive(Deserialize)]
struct Repository {
    id: i64,
    name: String,
    owner: Owner,
}

impl From<Repository> for RepoRef {
    fn from(r: Repository) -> Self {
        Self {
            id: r.id,
            owner: r.owner.login,
            name: r.name,
        }
    }
}

/// `installation_repositories` lists repositories without an owner object.
#[derive(Deserialize)]
struct ListedRepository {
    id: i64,
    full_name: String,
}

impl ListedRepository {
    fn into_ref(self) -> Option<RepoRef> {
        let (owner, name) = self.full_name.split_once('/')?;
        Some(RepoRef {
            id: self.id,
            owner: owner.to_owned(),
            name: name.to_owned(),
        })
    }
}

#[derive(Deserialize)]
struct InstallationId {
    id: i64,
}

#[derive(Deserialize)]
struct PullRequestBase {
    #[serde(rename = "ref")]
    git_ref: String,
}

#[derive(Deserialize)]
struct PullRequest {
    state: Option<String>,
    draft: Option<bool>,
    /// Needed only for `enqueued` (which queue the pull request joined).
    base: Option<PullRequestBase>,
}

#[derive(Deserialize)]
struct PullRequestPayload {
    action: String,
    number: u64,
    pull_request: PullRequest,
    repository: Repository,
    installation: Option<InstallationId>,
    changes: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct PrNumber {
    number: u64,
}

#[derive(Deserialize)]
struct Suite {
    #[serde(default)]
    pull_requests: Vec<PrNumber>,
    head_branch: Option<String>,
}

impl Suite {
    /// Whether the suite is on a merge queue's temporary branch: the `merge_group` event
    /// evaluates those, never the suite.
    fn is_merge_queue(&self) -> bool {
        self.head_branch
            .as_deref()
            .is_some_and(|b| b.starts_with(MERGE_QUEUE_BRANCH_PREFIX))
    }
}

#[derive(Deserialize)]
struct MergeGroupFields {
    head_sha: String,
    head_ref: String,
    base_sha: String,
    base_ref: String,
}

#[derive(Deserialize)]
struct MergeGroupPayload {
    action: String,
    merge_group: MergeGroupFields,
    repository: Repository,
    installation: Option<InstallationId>,
    reason: Option<String>,
}

#[derive(Deserialize)]
struct CheckRun {
    #[serde(default)]
    pull_requests: Vec<PrNumber>,
    check_suite: Option<Suite>,
}

#[derive(Deserialize)]
struct CheckRunPayload {
    action: String,
    check_run: CheckRun,
    repository: Repository,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct CheckSuitePayload {
    action: String,
    check_suite: Suite,
    repository: Repository,
    installation: Option<InstallationId>,
}

#[derive(Deserialize)]
struct Account {
    login: String,
    id: Option<i64>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

impl Account {
    /// Apps comment as `Bot` accounts named `<slug>[bot]`; the app's own comments are among them.
    fn is_bot(&self) -> bool {
        self.kind.as_deref() == Some("Bot") || is_bot_login(&self.login)
    }
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
    account: Account,
}

#[derive(Deserialize)]
struct InstallationPayload {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories: Option<Vec<ListedRepository>>,
}

#[derive(Deserialize)]
struct InstallationRepositoriesPayload {
    action: String,
    installation: Installation,
    #[serde(default)]
    repositories_added: Vec<ListedRepository>,
    #[serde(default)]
    repositories_removed: Vec<ListedRepository>,
}

#[derive(Deserialize)]
struct Issue {
    number: u64,
    /// Present (an object of links) only when the issue is a pull request.
    pull_request: Option<serde_json::Value>,
    user: Option<Account>,
}

#[derive(Deserialize)]
struct Comment {
    id: u64,
    body: String,
    user: Account,
    author_association: Option<String>,
}

#[derive(Deserialize)]
struct IssueCommentPayload {
    action: String,
    issue: Issue,
    comment: Comment,
    repository: Repository,
    installation: Option<InstallationId>,
}

/// Whether a login is a GitHub App's bot account (`<slug>[bot]`).
pub fn is_bot_login(login: &str) -> bool {
    login.ends_with("[bot]")
}

/// The `action` field, when the payload has one (recorded with the delivery).
pub fn action_of(payload: &serde_json::Value) -> Option<String> {
    payload
        .get("action")
        .and_then(|a| a.as_str())
        .map(str::to_owned)
}

/// The installation id, when the payload has one (recorded with the delivery).
pub fn installation_of(payload: &serde_json::Value) -> Option<i64> {
    payload.get("installation")?.get("id")?.as_i64()
}

/// Decides what a delivery asks for.
pub fn route(
    event: &str,
    payload: serde_json::Value,
    policy: RoutingPolicy,
) -> Result<Routed, MalformedPayload> {
    let malformed = |e: serde_json::Error| MalformedPayload {
        event: event.to_owned(),
        message: e.to_string(),
    };
    match event {
        "ping" => Ok(Routed::Ping),
        "pull_request" => pull_request(serde_json::from_value(payload).map_err(malformed)?, policy),
        "check_run" => {
            let p: CheckRunPayload = serde_json::from_value(payload).map_err(malformed)?;
            if p.action != "rerequested" {
                return Ok(Routed::Ignored(format!(
                    "check_run {} is not handled",
                    p.action
                )));
            }
            if p.check_run
                .check_suite
                .as_ref()
                .is_some_and(Suite::is_merge_queue)
            {
                return Ok(Routed::Ignored(MERGE_QUEUE_SUITE.to_owned()));
            }
            let mut numbers = p.check_run.pull_requests;
            if numbers.is_empty() {
                numbers = p
                    .check_run
                    .check_suite
                    .map(|s| s.pull_requests)
                    .unwrap_or_default();
            }
            Ok(evaluate_all(p.installation, p.repository, numbers))
        }
        "check_suite" => {
            let p: CheckSuitePayload = serde_json::from_value(payload).map_err(malformed)?;
            if !matches!(p.action.as_str(), "requested" | "rerequested") {
                return Ok(Routed::Ignored(format!(
                    "check_suite {} is not handled",
                    p.action
                )));
            }
            if p.check_suite.is_merge_queue() {
                return Ok(Routed::Ignored(MERGE_QUEUE_SUITE.to_owned()));
            }
            Ok(evaluate_all(
                p.installation,
                p.repository,
                p.check_suite.pull_requests,
            ))
        }
        "merge_group" => Ok(merge_group(
            serde_json::from_value(payload).map_err(malformed)?,
        )),
        "issue_comment" => Ok(issue_comment(
            serde_json::from_value(payload).map_err(malformed)?,
        )),
        "installation" => {
            let p: InstallationPayload = serde_json::from_value(payload).map_err(malformed)?;
            let active = match p.action.as_str() {
                "created" | "unsuspend" | "new_permissions_accepted" => true,
                "deleted" | "suspend" => false,
                other => {
                    return Ok(Routed::Ignored(format!(
                        "installation {other} is not handled"
                    )));
                }
            };
            let repositories = listed(p.repositories.unwrap_or_default());
            let (added, removed) = if active {
                (repositories, vec![])
            } else {
                (vec![], repositories)
            };
            Ok(Routed::Installation(change(
                p.installation,
                active,
                added,
                removed,
            )))
        }
        "installation_repositories" => {
            let p: InstallationRepositoriesPayload =
                serde_json::from_value(payload).map_err(malformed)?;
            if !matches!(p.action.as_str(), "added" | "removed") {
                return Ok(Routed::Ignored(format!(
                    "installation_repositories {} is not handled",
                    p.action
                )));
            }
            let (added, removed) = (listed(p.repositories_added), listed(p.repositories_removed));
            Ok(Routed::Installation(change(
                p.installation,
                true,
                added,
                removed,
            )))
        }
        other => Ok(Routed::Ignored(format!("event {other} is not handled"))),
    }
}

const MERGE_QUEUE_SUITE: &str = "merge-queue branches are evaluated on their merge_group event";

fn merge_group(p: MergeGroupPayload) -> Routed {
    let Some(installation) = p.installation else {
        return Routed::Ignored("the delivery names no installation".to_owned());
    };
    let group = MergeGroup {
        installation_id: installation.id,
        repo: RepoRef::from(p.repository),
        head_sha: p.merge_group.head_sha,
        head_ref: p.merge_group.head_ref,
        base_sha: p.merge_group.base_sha,
        base_ref: p.merge_group.base_ref,
    };
    match p.action.as_str() {
        "checks_requested" => Routed::EvaluateMergeGroup(group),
        "destroyed" => Routed::MergeQueue(QueueChange::Destroyed {
            group,
            reason: p.reason,
        }),
        other => Routed::Ignored(format!("merge_group {other} is not handled")),
    }
}

/// `enqueued` and `dequeued` tell which pull requests a merge group may hold.
fn queue_change(p: PullRequestPayload) -> Routed {
    let enqueued = p.action == "enqueued";
    let base_ref = p.pull_request.base.map(|b| b.git_ref);
    let numbers = vec![PrNumber { number: p.number }];
    let target = match pr_targets(p.installation, p.repository, numbers) {
        Ok(mut targets) => targets.remove(0),
        Err(reason) => return Routed::Ignored(reason),
    };
    Routed::MergeQueue(match (enqueued, base_ref) {
        (true, Some(base_ref)) => QueueChange::Enqueued { target, base_ref },
        (true, None) => return Routed::Ignored("the enqueued pull request names no base".into()),
        (false, _) => QueueChange::Dequeued { target },
    })
}

fn pull_request(p: PullRequestPayload, policy: RoutingPolicy) -> Result<Routed, MalformedPayload> {
    if matches!(p.action.as_str(), "enqueued" | "dequeued") {
        return Ok(queue_change(p));
    }
    if p.action == "closed" {
        let numbers = vec![PrNumber { number: p.number }];
        return Ok(match pr_targets(p.installation, p.repository, numbers) {
            Ok(mut targets) => Routed::PullRequestClosed(targets.remove(0)),
            Err(reason) => Routed::Ignored(reason),
        });
    }
    let evaluates = match p.action.as_str() {
        "opened" | "synchronize" | "reopened" | "ready_for_review" => true,
        "edited" => p
            .changes
            .as_ref()
            .is_some_and(|c| c.contains_key("title") || c.contains_key("body")),
        _ => false,
    };
    if !evaluates {
        return Ok(Routed::Ignored(format!(
            "pull_request {} does not change the result",
            p.action
        )));
    }
    if p.pull_request.state.as_deref() == Some("closed") {
        return Ok(Routed::Ignored("the pull request is closed".to_owned()));
    }
    if p.pull_request.draft == Some(true) && !policy.evaluate_drafts {
        return Ok(Routed::Ignored(
            "draft pull requests are not evaluated".to_owned(),
        ));
    }
    Ok(evaluate_all(
        p.installation,
        p.repository,
        vec![PrNumber { number: p.number }],
    ))
}

/// New comments on pull requests that may hold a command become a command job; everything else
/// is ignored here, before any job is queued.
fn issue_comment(p: IssueCommentPayload) -> Routed {
    let ignored = |reason: &str| Routed::Ignored(reason.to_owned());
    match p.action.as_str() {
        "created" => {}
        "edited" => return ignored("edited comments do not re-run commands"),
        other => return Routed::Ignored(format!("issue_comment {other} is not handled")),
    }
    if p.issue.pull_request.is_none() {
        return ignored("comments on issues are not commands");
    }
    if p.comment.user.is_bot() {
        return ignored("comments by bots are not commands");
    }
    if !may_hold_command(&p.comment.body) {
        return ignored("the comment holds no command");
    }
    let Some(installation) = p.installation else {
        return ignored("the delivery names no installation");
    };
    Routed::Command(CommentCommand {
        target: PrTarget {
            installation_id: installation.id,
            repo: RepoRef::from(p.repository),
            number: p.issue.number,
        },
        comment_id: p.comment.id,
        body: p.comment.body,
        author: p.comment.user.login,
        author_id: p.comment.user.id,
        author_association: p.comment.author_association,
        pr_author: p.issue.user.map(|user| user.login),
    })
}

/// Whether a line of `body` starts, after at most three spaces, with `/`. A cheap test that keeps
/// ordinary conversation out of the queue: every comment the command parser finds a command in
/// passes (so do some it finds none in, such as a slash in a code block).
fn may_hold_command(body: &str) -> bool {
    body.split(['\r', '\n']).any(|line| {
        let text = line.trim_start_matches(' ');
        line.len() - text.len() <= 3 && text.starts_with('/')
    })
}

fn evaluate_all(
    installation: Option<InstallationId>,
    repository: Repository,
    numbers: Vec<PrNumber>,
) -> Routed {
    match pr_targets(installation, repository, numbers) {
        Ok(targets) => Routed::Evaluate(targets),
        Err(reason) => Routed::Ignored(reason),
    }
}

/// The pull requests a delivery names, at least one; otherwise why there is nothing to do.
fn pr_targets(
    installation: Option<InstallationId>,
    repository: Repository,
    numbers: Vec<PrNumber>,
) -> Result<Vec<PrTarget>, String> {
    let Some(installation) = installation else {
        return Err("the delivery names no installation".to_owned());
    };
    if numbers.is_empty() {
        return Err("no pull request is associated".to_owned());
    }
    let repo = RepoRef::from(repository);
    Ok(numbers
        .into_iter()
        .map(|n| PrTarget {
            installation_id: installation.id,
            repo: repo.clone(),
            number: n.number,
        })
        .collect())
}

fn listed(repositories: Vec<ListedRepository>) -> Vec<RepoRef> {
    repositories
        .into_iter()
        .filter_map(ListedRepository::into_ref)
        .collect()
}

fn change(
    installation: Installation,
    active: bool,
    added: Vec<RepoRef>,
    removed: Vec<RepoRef>,
) -> InstallationChange {
    InstallationChange {
        installation_id: installation.id,
        account_login: installation.account.login,
        account_type: installation.account.kind,
        active,
        added,
        removed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const POLICY: RoutingPolicy = RoutingPolicy {
        evaluate_drafts: true,
    };

    fn pull_request(action: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut payload = json!({
            "action": action,
            "number": 7,
            "pull_request": { "state": "open", "draft": false },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        });
        if let (Some(target), Some(extra)) = (payload.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                target.insert(key.clone(), value.clone());
            }
        }
        payload
    }

    fn target() -> PrTarget {
        PrTarget {
            installation_id: 9,
            repo: RepoRef {
                id: 3,
                owner: "acme".into(),
                name: "widgets".into(),
            },
            number: 7,
        }
    }

    #[test]
    fn pull_request_actions_that_change_the_result_evaluate() {
        for action in ["opened", "synchronize", "reopened", "ready_for_review"] {
            let routed = route("pull_request", pull_request(action, json!({})), POLICY).unwrap();
            assert_eq!(routed, Routed::Evaluate(vec![target()]), "{action}");
        }
    }

    #[test]
    fn edits_evaluate_only_when_title_or_body_changed() {
        let title = pull_request("edited", json!({ "changes": { "title": { "from": "x" } } }));
        assert!(matches!(
            route("pull_request", title, POLICY),
            Ok(Routed::Evaluate(_))
        ));
        let base = pull_request("edited", json!({ "changes": { "base": { "ref": {} } } }));
        assert!(matches!(
            route("pull_request", base, POLICY),
            Ok(Routed::Ignored(_))
        ));
    }

    #[test]
    fn a_closed_pull_request_is_routed_to_expire_its_requests() {
        let routed = route("pull_request", pull_request("closed", json!({})), POLICY).unwrap();
        assert_eq!(routed, Routed::PullRequestClosed(target()));
    }

    #[test]
    fn labeled_and_drafts_are_ignored_as_configured() {
        for action in ["labeled", "converted_to_draft"] {
            let routed = route("pull_request", pull_request(action, json!({})), POLICY).unwrap();
            assert!(matches!(routed, Routed::Ignored(_)), "{action}");
        }
        let draft = pull_request(
            "opened",
            json!({ "pull_request": { "state": "open", "draft": true } }),
        );
        let no_drafts = RoutingPolicy {
            evaluate_drafts: false,
        };
        assert!(matches!(
            route("pull_request", draft.clone(), no_drafts),
            Ok(Routed::Ignored(_))
        ));
        assert!(matches!(
            route("pull_request", draft, POLICY),
            Ok(Routed::Evaluate(_))
        ));
    }

    #[test]
    fn check_reruns_evaluate_their_pull_requests() {
        let rerun = json!({
            "action": "rerequested",
            "check_run": { "pull_requests": [ { "number": 7 } ] },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        });
        assert_eq!(
            route("check_run", rerun, POLICY).unwrap(),
            Routed::Evaluate(vec![target()])
        );
        let suite = json!({
            "action": "requested",
            "check_suite": { "pull_requests": [] },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        });
        assert!(matches!(
            route("check_suite", suite, POLICY),
            Ok(Routed::Ignored(_))
        ));
    }

    #[test]
    fn malformed_and_unknown_events_are_told_apart() {
        let missing_repo = json!({ "action": "opened", "number": 1, "pull_request": {} });
        assert!(route("pull_request", missing_repo, POLICY).is_err());
        assert!(matches!(
            route("star", json!({}), POLICY),
            Ok(Routed::Ignored(_))
        ));
        assert_eq!(
            route("ping", json!({ "zen": "z" }), POLICY).unwrap(),
            Routed::Ping
        );
    }

    #[test]
    fn installation_events_add_and_remove_repositories() {
        let payload = json!({
            "action": "removed",
            "installation": { "id": 9, "account": { "login": "acme", "type": "Organization" } },
            "repositories_added": [],
            "repositories_removed": [ { "id": 3, "full_name": "acme/widgets" } ]
        });
        let Routed::Installation(change) =
            route("installation_repositories", payload, POLICY).unwrap()
        else {
            panic!("not an installation change");
        };
        assert!(change.active);
        assert_eq!(change.removed, vec![target().repo]);
    }

    fn pr_comment(action: &str, body: &str) -> serde_json::Value {
        json!({
            "action": action,
            "issue": {
                "number": 7,
                "pull_request": { "url": "https://api.github.com/repos/acme/widgets/pulls/7" },
                "user": { "login": "alice", "id": 11, "type": "User" }
            },
            "comment": {
                "id": 501,
                "body": body,
                "user": { "login": "bob", "id": 12, "type": "User" },
                "author_association": "MEMBER"
            },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        })
    }

    fn ignored_reason(routed: Result<Routed, MalformedPayload>) -> String {
        match routed {
            Ok(Routed::Ignored(reason)) => reason,
            other => panic!("expected Ignored, got {other:?}"),
        }
    }

    #[test]
    fn new_pull_request_comment_with_a_command_becomes_a_command() {
        let payload = pr_comment("created", "Thanks!\n/override R05 vendored test key");
        assert_eq!(
            route("issue_comment", payload, POLICY).unwrap(),
            Routed::Command(CommentCommand {
                target: target(),
                comment_id: 501,
                body: "Thanks!\n/override R05 vendored test key".into(),
                author: "bob".into(),
                author_id: Some(12),
                author_association: Some("MEMBER".into()),
                pr_author: Some("alice".into()),
            })
        );
    }

    #[test]
    fn the_command_round_trips_as_a_job_payload() {
        let Routed::Command(command) =
            route("issue_comment", pr_comment("created", "/approve"), POLICY).unwrap()
        else {
            panic!("not a command");
        };
        let payload = serde_json::to_value(&command).unwrap();
        assert_eq!(payload["target"]["repo"]["id"], 3);
        assert_eq!(payload["comment_id"], 501);
        let back: CommentCommand = serde_json::from_value(payload).unwrap();
        assert_eq!(back, command);
    }

    #[test]
    fn edited_and_deleted_comments_do_not_run_commands() {
        let edited = ignored_reason(route(
            "issue_comment",
            pr_comment("edited", "/approve"),
            POLICY,
        ));
        assert!(edited.contains("edited"), "{edited}");
        let deleted = ignored_reason(route(
            "issue_comment",
            pr_comment("deleted", "/approve"),
            POLICY,
        ));
        assert!(deleted.contains("deleted"), "{deleted}");
    }

    #[test]
    fn comments_on_plain_issues_are_ignored() {
        let absent = {
            let mut payload = pr_comment("created", "/approve");
            payload["issue"]
                .as_object_mut()
                .unwrap()
                .remove("pull_request");
            payload
        };
        let mut null = pr_comment("created", "/approve");
        null["issue"]["pull_request"] = serde_json::Value::Null;
        for payload in [absent, null] {
            let reason = ignored_reason(route("issue_comment", payload, POLICY));
            assert!(reason.contains("issues"), "{reason}");
        }
    }

    #[test]
    fn comments_by_bots_including_the_app_are_ignored() {
        let bot_type = json!({ "login": "ci-helper", "id": 5, "type": "Bot" });
        let bot_name = json!({ "login": "tollgate[bot]", "id": 6 });
        for user in [bot_type, bot_name] {
            let mut payload = pr_comment("created", "/override everything please");
            payload["comment"]["user"] = user;
            let reason = ignored_reason(route("issue_comment", payload, POLICY));
            assert!(reason.contains("bots"), "{reason}");
        }
    }

    #[test]
    fn only_comments_with_a_slash_at_a_line_start_are_queued() {
        let queued = [
            "/approve",
            "   /override reason here",
            "LGTM\r\n/reject not yet",
            "text\r/approve",
            "/foo (another bot's command: the parser decides)",
        ];
        for body in queued {
            assert!(
                matches!(
                    route("issue_comment", pr_comment("created", body), POLICY),
                    Ok(Routed::Command(_))
                ),
                "{body:?}"
            );
        }
        let ignored = [
            "",
            "Looks good to me",
            "see src/main.rs or a/b",
            "    /override indented code",
            "\t/override tab-indented code",
            "> /approve quoted",
            "please /approve",
        ];
        for body in ignored {
            let reason =
                ignored_reason(route("issue_comment", pr_comment("created", body), POLICY));
            assert!(reason.contains("no command"), "{body:?}: {reason}");
        }
    }

    #[test]
    fn a_comment_without_an_installation_is_ignored() {
        let mut payload = pr_comment("created", "/approve");
        payload.as_object_mut().unwrap().remove("installation");
        let reason = ignored_reason(route("issue_comment", payload, POLICY));
        assert!(reason.contains("installation"), "{reason}");
    }

    #[test]
    fn comments_missing_what_a_command_needs_are_malformed() {
        let removals: [(&str, &str); 6] = [
            ("issue", "number"),
            ("comment", "id"),
            ("comment", "body"),
            ("comment", "user"),
            ("", "repository"),
            ("", "issue"),
        ];
        for (parent, field) in removals {
            let mut payload = pr_comment("created", "/approve");
            let object = if parent.is_empty() {
                payload.as_object_mut()
            } else {
                payload[parent].as_object_mut()
            };
            object.unwrap().remove(field);
            let error = route("issue_comment", payload, POLICY).unwrap_err();
            assert_eq!(error.event, "issue_comment", "{parent}.{field}");
        }
        let mut no_login = pr_comment("created", "/approve");
        no_login["comment"]["user"] = json!({ "id": 12 });
        assert!(route("issue_comment", no_login, POLICY).is_err());
        // What the job does not need may be missing.
        let mut sparse = pr_comment("created", "/approve");
        sparse["issue"].as_object_mut().unwrap().remove("user");
        sparse["comment"]
            .as_object_mut()
            .unwrap()
            .remove("author_association");
        sparse["comment"]["user"] = json!({ "login": "bob" });
        let Routed::Command(command) = route("issue_comment", sparse, POLICY).unwrap() else {
            panic!("not a command");
        };
        assert_eq!(
            (
                command.author_id,
                command.pr_author,
                command.author_association
            ),
            (None, None, None)
        );
    }

    /// GitHub's own `issue_comment` examples (when `../shared/fixtures` is present) all parse; they
    /// are comments on plain issues, and the same comment on a pull request becomes a command.
    #[test]
    fn githubs_issue_comment_examples_route() {
        // `TOLLGATE_SHARED_DIR` points elsewhere when `../shared` is not beside the project.
        let folder = std::env::var_os("TOLLGATE_SHARED_DIR")
            .map_or_else(
                || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
                std::path::PathBuf::from,
            )
            .join("fixtures/github/webhooks/issue_comment");
        let Ok(entries) = std::fs::read_dir(&folder) else {
            eprintln!("SKIPPED: {} not found", folder.display());
            return;
        };
        let mut seen = 0;
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let payload: serde_json::Value = serde_json::from_str(&text).unwrap();
            let routed = route("issue_comment", payload, POLICY);
            assert!(
                matches!(routed, Ok(Routed::Ignored(_))),
                "{:?}: {routed:?}",
                entry.file_name()
            );
            seen += 1;
        }
        assert!(seen > 0, "no example in {}", folder.display());

        let text =
            std::fs::read_to_string(folder.join("created.with-installation.payload.json")).unwrap();
        let mut payload: serde_json::Value = serde_json::from_str(&text).unwrap();
        payload["issue"]["pull_request"] = json!({ "url": "https://api.github.com/pulls/1" });
        payload["comment"]["body"] = json!("/override R05 a test fixture");
        let Routed::Command(command) = route("issue_comment", payload.clone(), POLICY).unwrap()
        else {
            panic!("not a command");
        };
        assert_eq!(command.target.number, 1);
        assert_eq!(command.target.repo.full_name(), "Codertocat/Hello-World");
        assert_eq!(
            Some(command.target.installation_id),
            installation_of(&payload)
        );
        assert_eq!(command.comment_id, 492700400);
        assert_eq!(command.author, "Codertocat");
        assert_eq!(command.author_association.as_deref(), Some("OWNER"));
        assert_eq!(command.pr_author.as_deref(), Some("Codertocat"));
    }

    fn merge_group_payload(action: &str) -> serde_json::Value {
        json!({
            "action": action,
            "merge_group": {
                "head_sha": "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d",
                "head_ref": "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64",
                "base_sha": "380387fbc80638b734a49e1be1c4dfec1c01b33c",
                "base_ref": "refs/heads/main"
            },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        })
    }

    #[test]
    fn checks_requested_evaluates_the_merge_group() {
        let Routed::EvaluateMergeGroup(group) = route(
            "merge_group",
            merge_group_payload("checks_requested"),
            POLICY,
        )
        .unwrap() else {
            panic!("not a merge group evaluation");
        };
        assert_eq!(group.installation_id, 9);
        assert_eq!(group.repo.full_name(), "acme/widgets");
        assert_eq!(group.head_sha, "2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d");
        assert_eq!(group.base_sha, "380387fbc80638b734a49e1be1c4dfec1c01b33c");
        assert_eq!(group.base_branch(), "main");
        assert_eq!(group.last_pull_request(), Some(104));
    }

    #[test]
    fn a_destroyed_merge_group_is_bookkeeping_with_its_reason() {
        let mut payload = merge_group_payload("destroyed");
        payload["reason"] = json!("invalidated");
        let routed = route("merge_group", payload, POLICY).unwrap();
        let Routed::MergeQueue(QueueChange::Destroyed { group, reason }) = routed else {
            panic!("not a destroyed group: {routed:?}");
        };
        assert_eq!(group.last_pull_request(), Some(104));
        assert_eq!(reason.as_deref(), Some("invalidated"));
        // GitHub's examples omit the reason: still bookkeeping.
        assert!(matches!(
            route("merge_group", merge_group_payload("destroyed"), POLICY),
            Ok(Routed::MergeQueue(QueueChange::Destroyed {
                reason: None,
                ..
            }))
        ));
    }

    #[test]
    fn merge_group_payloads_missing_what_routing_needs_are_malformed() {
        let mut payload = merge_group_payload("checks_requested");
        payload["merge_group"]
            .as_object_mut()
            .unwrap()
            .remove("base_sha");
        assert!(route("merge_group", payload, POLICY).is_err());
        let mut no_installation = merge_group_payload("checks_requested");
        no_installation
            .as_object_mut()
            .unwrap()
            .remove("installation");
        assert!(matches!(
            route("merge_group", no_installation, POLICY),
            Ok(Routed::Ignored(_))
        ));
    }

    #[test]
    fn the_last_pull_request_comes_from_the_queue_ref() {
        let group = |head_ref: &str| MergeGroup {
            installation_id: 1,
            repo: RepoRef {
                id: 1,
                owner: "o".into(),
                name: "r".into(),
            },
            head_sha: "h".into(),
            head_ref: head_ref.into(),
            base_sha: "b".into(),
            base_ref: "refs/heads/main".into(),
        };
        for (head_ref, expected) in [
            ("refs/heads/gh-readonly-queue/main/pr-7-abc", Some(7)),
            ("gh-readonly-queue/main/pr-7-abc", Some(7)),
            (
                "refs/heads/gh-readonly-queue/release/2.x/pr-12-abc",
                Some(12),
            ),
            ("refs/heads/gh-readonly-queue/main/pr-0-abc", None),
            ("refs/heads/gh-readonly-queue/main/pr-x-abc", None),
            ("refs/heads/feature/pr-7-abc", None),
            ("refs/heads/gh-readonly-queue/main", None),
        ] {
            assert_eq!(group(head_ref).last_pull_request(), expected, "{head_ref}");
        }
    }

    #[test]
    fn enqueued_and_dequeued_pull_requests_change_the_queue() {
        let enqueued = pull_request(
            "enqueued",
            json!({ "pull_request": { "state": "open", "base": { "ref": "main" } } }),
        );
        assert_eq!(
            route("pull_request", enqueued, POLICY).unwrap(),
            Routed::MergeQueue(QueueChange::Enqueued {
                target: target(),
                base_ref: "main".into()
            })
        );
        assert_eq!(
            route("pull_request", pull_request("dequeued", json!({})), POLICY).unwrap(),
            Routed::MergeQueue(QueueChange::Dequeued { target: target() })
        );
    }

    #[test]
    fn check_suites_on_merge_queue_branches_create_no_evaluation() {
        let suite = |branch: &str| {
            json!({
                "action": "requested",
                "check_suite": { "head_branch": branch, "pull_requests": [{ "number": 7 }] },
                "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
                "installation": { "id": 9 }
            })
        };
        assert!(matches!(
            route(
                "check_suite",
                suite("gh-readonly-queue/main/pr-7-abc"),
                POLICY
            ),
            Ok(Routed::Ignored(_))
        ));
        assert_eq!(
            route("check_suite", suite("feature"), POLICY).unwrap(),
            Routed::Evaluate(vec![target()])
        );
        let rerun = json!({
            "action": "rerequested",
            "check_run": {
                "pull_requests": [{ "number": 7 }],
                "check_suite": { "head_branch": "gh-readonly-queue/main/pr-7-abc" }
            },
            "repository": { "id": 3, "name": "widgets", "owner": { "login": "acme" } },
            "installation": { "id": 9 }
        });
        assert!(matches!(
            route("check_run", rerun, POLICY),
            Ok(Routed::Ignored(_))
        ));
    }

    /// Comments made of pieces that matter to the command parser: commands, indents, quotes,
    /// fences, HTML comments, list markers and every kind of line end.
    fn commentish() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let piece = prop_oneof![
            Just("/approve"),
            Just("/reject not this time"),
            Just("/overide typo"),
            Just(" "),
            Just("   "),
            Just("\t"),
            Just(">"),
            Just("```"),
            Just("~~~"),
            Just("<!--"),
            Just("-->"),
            Just("- "),
            Just("text"),
            Just("\n"),
            Just("\r\n"),
            Just("\r"),
        ];
        proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest::proptest! {
        /// The cheap test never drops a comment the command parser finds a command in.
        #[test]
        fn every_comment_with_a_parsed_command_is_queued(body in commentish()) {
            if !crate::commands::parse_commands(&body, 0).is_empty() {
                proptest::prop_assert!(may_hold_command(&body), "{:?}", body);
            }
        }
    }
}
