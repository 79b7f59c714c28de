//! Overrides of failing rules: who may ask, what a request covers, who may decide, and how a
//! request moves from pending to approved. Pure: the caller looks up permissions and team
//! memberships, stores requests and publishes replies.
//!
//! The rules, in the order they are checked:
//! - **Asking** (`/override`, [`decide_override`]): bots never; a failed permission lookup is a
//!   denial that carries the lookup's error; otherwise write access (write, maintain or admin).
//!   What the request covers is chosen by [`select_scope`]: the open BLOCK and OVERRIDE
//!   violations, of the named rules or of all rules.
//! - **Self-service or pending**: a request that covers only OVERRIDE-tier violations is approved
//!   at once by its requester. A request that covers any BLOCK violation waits, as a whole, for
//!   `required_approvals` approvals; the OVERRIDE-tier violations in it are covered only when it
//!   is approved. One request has one status, which keeps replies and the report simple; whoever
//!   wants the OVERRIDE-tier ones covered now asks for them alone (`/override R07 <reason>`).
//! - **Deciding** (`/approve`, `/reject`, Slack buttons, [`may_decide`]; a Slack user counts as
//!   the GitHub login `slack_users` maps them to, [`login_for_slack_user`]): bots never; the pull
//!   request's author never, on their own pull request; with `approvers` configured, a listed
//!   login or a member of a listed team; without, admin or maintain permission. A lookup that
//!   the answer depends on and that failed is a denial with its error, never a quiet "no".
//!   The requester may approve their own request when they are an approver: only the author of
//!   the pull request is kept from deciding.
//! - **Counting** ([`RequestProgress`]): approvals from distinct logins until `required_approvals`
//!   is reached; one rejection rejects the request; a decided, cancelled or expired request takes
//!   no more approvals.
//! - **Cancelling** ([`may_cancel`]): the requester, or anyone who may decide.

mod access;
mod request;
mod scope;

pub use access::{
    Access, ApproverIdentity, Denial, RepoPermission, Requester, TeamLookup, login_for_slack_user,
    may_cancel, may_decide, may_request,
};
pub use request::{RequestProgress, RequestStatus, TransitionError};
pub use scope::{
    OverridableRule, RuleProblem, RuleProblemKind, Scope, ScopeError, overridable_rules,
    select_scope,
};

use crate::config::OverrideSettings;

/// Decides a `/override` request over `scope`: denied, approved at once (OVERRIDE tier only) or
/// pending (any BLOCK violation). Returns the request's starting progress.
pub fn decide_override(
    requester: &Requester,
    scope: &Scope,
    settings: &OverrideSettings,
) -> Result<RequestProgress, Denial> {
    may_request(requester)?;
    Ok(if scope.needs_approval() {
        RequestProgress::pending(settings.required_approvals)
    } else {
        RequestProgress::self_service(&requester.login)
    })
}

#[cfg(test)]
mod tests;
