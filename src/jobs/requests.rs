//! Stored override requests read back as the domain and report see them.

use super::{DEFAULT_MAX_ATTEMPTS, Job, JobContext, JobError};
use crate::domain::Violation;
use crate::domain::{ApprovedOverride, Fingerprint, Overrides};
use crate::github::events::PrTarget;
use crate::github::{GithubApp, PullRequestState};
use crate::overrides::{RequestProgress, RequestStatus};
use crate::report::{PendingOverride, RejectedOverride};
use crate::store::{self, AuditEntry, OverrideRequestRow, SlackSubject};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeSet;

pub(super) fn status_of(row: &OverrideRequestRow) -> RequestStatus {
    match row.status.as_str() {
        "approved" => RequestStatus::Approved,
        "rejected" => RequestStatus::Rejected,
        "cancelled" => RequestStatus::Cancelled,
        "expired" => RequestStatus::Expired,
        _ => RequestStatus::Pending,
    }
}

pub(super) fn progress_of(row: &OverrideRequestRow) -> RequestProgress {
    RequestProgress {
        status: status_of(row),
        required_approvals: u32::try_from(row.required_approvals).unwrap_or(1),
        approved_by: row.approvals.clone(),
    }
}

fn fingerprints_of(row: &OverrideRequestRow) -> BTreeSet<Fingerprint> {
    row.fingerprints
        .iter()
        .map(|f| Fingerprint::from_stored(f.clone()))
        .collect()
}

/// The approved requests, as the verdict counts them.
pub(super) fn approved_overrides(rows: &[OverrideRequestRow]) -> Overrides {
    Overrides::new(
        rows.iter()
            .filter(|r| status_of(r) == RequestStatus::Approved)
            .map(|r| ApprovedOverride {
                fingerprints: fingerprints_of(r),
                requested_by: r.requested_by.clone(),
                approved_by: r.approvals.clone(),
                reason: r.reason.clone(),
            })
            .collect(),
    )
}

/// The requests still waiting for approvals, for the report.
pub(super) fn pending_overrides(rows: &[OverrideRequestRow]) -> Vec<PendingOverride> {
    rows.iter()
        .filter(|r| status_of(r) == RequestStatus::Pending)
        .map(|r| PendingOverride {
            requested_by: r.requested_by.clone(),
            reason: r.reason.clone(),
            fingerprints: fingerprints_of(r),
            progress: progress_of(r),
            approvers: r.settings.approvers.clone(),
        })
        .collect()
}

/// The requests an approver rejected, for the report.
pub(super) fn rejected_overrides(rows: &[OverrideRequestRow]) -> Vec<RejectedOverride> {
    rows.iter()
        .filter(|r| status_of(r) == RequestStatus::Rejected)
        .map(|r| RejectedOverride {
            requested_by: r.requested_by.clone(),
            reason: r.reason.clone(),
            fingerprints: fingerprints_of(r),
            rejected_by: r.decided_by.clone().unwrap_or_default(),
            rejection: r.decision_note.clone().unwrap_or_default(),
        })
        .collect()
}

/// Records a change of a request in the audit log (in the caller's transaction).
pub(super) async fn audit_request(
    tx: &mut PgConnection,
    request: &OverrideRequestRow,
    actor: &str,
    action: &str,
    before: Option<&OverrideRequestRow>,
) -> Result<(), sqlx::Error> {
    store::audit(
        tx,
        &AuditEntry {
            installation_id: request.installation_id,
            actor,
            action,
            target: &request.audit_target(),
            before: before.map(OverrideRequestRow::audit_state),
            after: Some(request.audit_state()),
        },
    )
    .await
}

/// The `close_pull_request` job: the follow-up of a closed pull request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClosePullRequest {
    pub target: PrTarget,
}

impl Job for ClosePullRequest {
    const KIND: &'static str = "close_pull_request";
    const MAX_ATTEMPTS: i32 = DEFAULT_MAX_ATTEMPTS;

    fn dedup_key(&self) -> String {
        format!("close:{}:{}", self.target.repo.id, self.target.number)
    }

    fn pull_request(&self) -> Option<&PrTarget> {
        Some(&self.target)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let handlers = ctx.handlers;
        expire_requests_of_closed(&handlers.pool, &handlers.github, &self.target).await
    }
}

/// Expires every pending request of a pull request that was closed: nothing is left to decide.
/// GitHub is asked first, so a pull request reopened before this job ran keeps its requests;
/// most closed pull requests have none, and cost no GitHub call.
async fn expire_requests_of_closed(
    pool: &PgPool,
    github: &GithubApp,
    target: &PrTarget,
) -> Result<(), JobError> {
    let number = i64::try_from(target.number).unwrap_or(i64::MAX);
    let requests =
        store::override_requests_of(&mut *pool.acquire().await?, target.repo.id, number).await?;
    if !requests
        .iter()
        .any(|r| status_of(r) == RequestStatus::Pending)
    {
        return Ok(());
    }
    let pr = super::installation_client(github, target.installation_id)?
        .pull_request(&target.repo.owner, &target.repo.name, target.number)
        .await?;
    if pr.state != PullRequestState::Closed {
        tracing::info!("the pull request was reopened: its requests stay");
        return Ok(());
    }
    expire_stale_requests(pool, target, &[]).await?;
    Ok(())
}

/// Expires the pending requests none of whose violations is found any more: there is nothing
/// left to decide. Their Slack messages are edited to say so. Returns the pull request's
/// requests as they stand afterwards.
pub(super) async fn expire_stale_requests(
    pool: &PgPool,
    target: &PrTarget,
    violations: &[Violation],
) -> Result<Vec<OverrideRequestRow>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let number = i64::try_from(target.number).unwrap_or(i64::MAX);
    store::lock_pull_request(&mut tx, target.repo.id, number).await?;
    for request in store::override_requests_of(&mut tx, target.repo.id, number).await? {
        let mut progress = progress_of(&request);
        let still_found = request
            .fingerprints
            .iter()
            .any(|f| violations.iter().any(|v| v.fingerprint.as_str() == f));
        if still_found || progress.expire().is_err() {
            continue;
        }
        store::set_override_status(
            &mut tx,
            request.id,
            progress.status.as_str(),
            "tollgate",
            None,
        )
        .await?;
        let after = store::override_request(&mut tx, request.id)
            .await?
            .ok_or(sqlx::Error::RowNotFound)?;
        audit_request(
            &mut tx,
            &after,
            "tollgate",
            "override.expired",
            Some(&request),
        )
        .await?;
        if let Some(message) =
            store::slack_message_of(&mut tx, SlackSubject::OverrideRequest, request.id).await?
        {
            super::enqueue_slack_send(&mut tx, target.installation_id, message.id).await?;
        }
    }
    let requests = store::override_requests_of(&mut tx, target.repo.id, number).await?;
    tx.commit().await?;
    Ok(requests)
}
