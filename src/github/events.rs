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
struct PullRequest {
    state: Option<String>,
    draft: Option<bool>,
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
    #[serde(rename = "type")]
    kind: Option<String>,
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
            Ok(evaluate_all(
                p.installation,
                p.repository,
                p.check_suite.pull_requests,
            ))
        }
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

fn pull_request(p: PullRequestPayload, policy: RoutingPolicy) -> Result<Routed, MalformedPayload> {
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

fn evaluate_all(
    installation: Option<InstallationId>,
    repository: Repository,
    numbers: Vec<PrNumber>,
) -> Routed {
    let Some(installation) = installation else {
        return Routed::Ignored("the delivery names no installation".to_owned());
    };
    if numbers.is_empty() {
        return Routed::Ignored("no pull request is associated".to_owned());
    }
    let repo = RepoRef::from(repository);
    let targets = numbers
        .into_iter()
        .map(|n| PrTarget {
            installation_id: installation.id,
            repo: repo.clone(),
            number: n.number,
        })
        .collect();
    Routed::Evaluate(targets)
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
    fn closed_labeled_and_drafts_are_ignored_as_configured() {
        for action in ["closed", "labeled", "converted_to_draft"] {
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
}
