//! Who may ask for an override and who may decide on one.

use crate::config::{Approver, OverrideSettings, TeamRef};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A person's role on the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoPermission {
    Admin,
    Maintain,
    Write,
    Triage,
    Read,
    None,
}

impl RepoPermission {
    /// Interprets an answer of GitHub's collaborator-permission API. Its `permission` field
    /// only has the legacy values admin, write, read and none (maintain reads as write, triage
    /// as read); `role_name` names the role itself, so it wins when it is one of the five base
    /// roles. A custom repository role's name says nothing we can rely on, so `permission` (the
    /// legacy value GitHub maps that role to) decides. Anything else is `None`: an answer we do
    /// not understand grants nothing.
    pub fn from_api(permission: &str, role_name: &str) -> Self {
        Self::parse(role_name)
            .or_else(|| Self::parse(permission))
            .unwrap_or(RepoPermission::None)
    }

    fn parse(name: &str) -> Option<Self> {
        [
            RepoPermission::Admin,
            RepoPermission::Maintain,
            RepoPermission::Write,
            RepoPermission::Triage,
            RepoPermission::Read,
            RepoPermission::None,
        ]
        .into_iter()
        .find(|p| name.eq_ignore_ascii_case(p.as_str()))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RepoPermission::Admin => "admin",
            RepoPermission::Maintain => "maintain",
            RepoPermission::Write => "write",
            RepoPermission::Triage => "triage",
            RepoPermission::Read => "read",
            RepoPermission::None => "none",
        }
    }

    /// May push to the repository, and so may override OVERRIDE-tier violations.
    pub fn can_write(self) -> bool {
        matches!(
            self,
            RepoPermission::Admin | RepoPermission::Maintain | RepoPermission::Write
        )
    }

    /// May decide on BLOCK overrides when the repository lists no approvers.
    pub fn maintains(self) -> bool {
        matches!(self, RepoPermission::Admin | RepoPermission::Maintain)
    }

    /// "read access", "no access": for explanations.
    fn access_phrase(self) -> &'static str {
        match self {
            RepoPermission::None => "no access",
            RepoPermission::Admin => "admin access",
            RepoPermission::Maintain => "maintain access",
            RepoPermission::Write => "write access",
            RepoPermission::Triage => "triage access",
            RepoPermission::Read => "read access",
        }
    }
}

impl fmt::Display for RepoPermission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of a permission lookup: a failed one is kept with its error so that the denial
/// can say why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Known(RepoPermission),
    LookupFailed(String),
}

/// The outcome of a team-membership lookup. A pending invitation is not membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamLookup {
    Member,
    NotMember,
    Failed(String),
}

/// The person asking for an override (`/override`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requester {
    pub login: String,
    pub is_bot: bool,
    pub access: Access,
}

/// The person approving, rejecting or cancelling, with the lookups [`may_decide`] needs: their
/// permission (used when no approvers are configured) and their membership of each configured
/// team ([`OverrideSettings::teams`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApproverIdentity {
    pub login: String,
    pub is_bot: bool,
    pub access: Access,
    pub teams: Vec<(TeamRef, TeamLookup)>,
}

/// Why someone may not do what they asked, in words addressed to them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("bots cannot request, approve, reject or cancel overrides")]
    Bot,
    #[error(
        "overriding needs write access to this repository, and you have {}",
        .0.access_phrase()
    )]
    NoWriteAccess(RepoPermission),
    #[error(
        "your permission on this repository could not be checked ({0}), so nothing was done; please try again later"
    )]
    PermissionLookupFailed(String),
    #[error("you opened this pull request, so someone else has to decide on its overrides")]
    OwnPullRequest,
    #[error(
        "only the approvers set in .github/tollgate.yml may decide on overrides ({}), and you are not one of them",
        mentions(.0)
    )]
    NotAnApprover(Vec<Approver>),
    #[error(
        "only maintainers and admins of this repository may decide on overrides, and you have {}",
        .0.access_phrase()
    )]
    NotAMaintainer(RepoPermission),
    #[error(
        "your membership of the team @{team} could not be checked ({error}), so nothing was done; please try again later"
    )]
    TeamLookupFailed { team: TeamRef, error: String },
    #[error(
        "your Slack account is not linked to a GitHub login in the overrides.slack_users setting of .github/tollgate.yml"
    )]
    UnmappedSlackUser,
    #[error("only the person who asked for this override or an approver may cancel it")]
    NotRequesterOrApprover,
}

impl Denial {
    /// A lookup failed: trying again later may succeed.
    pub fn is_lookup_failure(&self) -> bool {
        matches!(
            self,
            Denial::PermissionLookupFailed(_) | Denial::TeamLookupFailed { .. }
        )
    }
}

fn mentions(approvers: &[Approver]) -> String {
    approvers
        .iter()
        .map(|a| "@".to_owned() + &a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `requester` may ask for an override: not a bot, and write access that was looked up
/// successfully.
pub fn may_request(requester: &Requester) -> Result<(), Denial> {
    if requester.is_bot {
        return Err(Denial::Bot);
    }
    match &requester.access {
        Access::LookupFailed(error) => Err(Denial::PermissionLookupFailed(error.clone())),
        Access::Known(permission) if permission.can_write() => Ok(()),
        Access::Known(permission) => Err(Denial::NoWriteAccess(*permission)),
    }
}

/// The GitHub login behind a Slack button click, from `slack_users`; a click from an unmapped
/// Slack user decides nothing.
pub fn login_for_slack_user<'a>(
    settings: &'a OverrideSettings,
    slack_user_id: &str,
) -> Result<&'a str, Denial> {
    settings
        .login_of_slack_user(slack_user_id)
        .ok_or(Denial::UnmappedSlackUser)
}

/// Whether `approver` may approve or reject an override on the pull request opened by
/// `pr_author`. See the module documentation for the rules.
pub fn may_decide(
    approver: &ApproverIdentity,
    settings: &OverrideSettings,
    pr_author: &str,
) -> Result<(), Denial> {
    if approver.is_bot {
        return Err(Denial::Bot);
    }
    if approver.login.eq_ignore_ascii_case(pr_author) {
        return Err(Denial::OwnPullRequest);
    }
    if settings.approvers.is_empty() {
        return match &approver.access {
            Access::LookupFailed(error) => Err(Denial::PermissionLookupFailed(error.clone())),
            Access::Known(permission) if permission.maintains() => Ok(()),
            Access::Known(permission) => Err(Denial::NotAMaintainer(*permission)),
        };
    }
    if settings.lists_user(&approver.login) {
        return Ok(());
    }
    let mut failure = None;
    for team in settings.teams() {
        let lookup = approver
            .teams
            .iter()
            .find(|(looked_up, _)| looked_up.same_as(team))
            .map(|(_, lookup)| lookup);
        let error = match lookup {
            Some(TeamLookup::Member) => return Ok(()),
            Some(TeamLookup::NotMember) => continue,
            Some(TeamLookup::Failed(error)) => error.clone(),
            None => "the membership was not looked up".to_owned(),
        };
        failure.get_or_insert(Denial::TeamLookupFailed {
            team: team.clone(),
            error,
        });
    }
    Err(failure.unwrap_or_else(|| Denial::NotAnApprover(settings.approvers.clone())))
}

/// Whether `actor` may cancel the override request made by `requested_by`: the requester always
/// (their permission and teams are then not consulted), anyone else only if they may decide. A
/// failed lookup keeps its own explanation.
pub fn may_cancel(
    actor: &ApproverIdentity,
    requested_by: &str,
    settings: &OverrideSettings,
    pr_author: &str,
) -> Result<(), Denial> {
    if actor.is_bot {
        return Err(Denial::Bot);
    }
    if actor.login.eq_ignore_ascii_case(requested_by) {
        return Ok(());
    }
    may_decide(actor, settings, pr_author).map_err(|denial| {
        if denial.is_lookup_failure() {
            denial
        } else {
            Denial::NotRequesterOrApprover
        }
    })
}
