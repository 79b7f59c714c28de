//! Publishing a completed `Tollgate` check run exactly once, for pull-request and merge-group
//! evaluations alike: its creation is marked in the store before it is sent and carries an
//! `external_id`, so a retry after a crash finds the check run an earlier attempt created
//! instead of creating another.

use super::JobError;
use crate::github::events::RepoRef;
use crate::github::{
    Annotation, CheckOutput, CheckRunCreate, CheckRunUpdate, CheckStatus, Conclusion,
    InstallationClient, MAX_ANNOTATIONS_PER_REQUEST,
};
use sqlx::PgPool;

/// The check run's name, as branch protection rules refer to it.
pub const CHECK_RUN_NAME: &str = "Tollgate";

/// Where a check run's creation is marked before it is sent and its id recorded after.
pub(super) trait CheckRunLedger {
    /// The `external_id` the check run carries: which stored evaluation it shows.
    fn external_id(&self) -> String;
    async fn mark_requested(&self, pool: &PgPool) -> Result<(), sqlx::Error>;
    async fn record(&self, pool: &PgPool, check_run_id: i64) -> Result<(), sqlx::Error>;
}

/// What the store knows of the evaluation's check run.
pub(super) struct CheckRunState<'a> {
    pub head_sha: &'a str,
    /// Set once an earlier attempt recorded the check run.
    pub recorded: Option<i64>,
    /// An earlier attempt sent the check run's creation (it may exist unrecorded).
    pub requested: bool,
}

/// What the check run shows.
pub(super) struct CheckRunContent<'a> {
    pub conclusion: Conclusion,
    pub title: &'a str,
    pub summary: &'a str,
    pub annotations: &'a [Annotation],
}

/// Publishes the completed check run: created already completed with the first 50
/// annotations (one request), or completed in place when an earlier attempt created it.
/// Annotations beyond the first 50 go in further updates, which append.
pub(super) async fn publish_check_run(
    pool: &PgPool,
    client: &InstallationClient,
    repository: &RepoRef,
    state: &CheckRunState<'_>,
    ledger: &impl CheckRunLedger,
    content: &CheckRunContent<'_>,
) -> Result<(), JobError> {
    let (owner, repo) = (repository.owner.as_str(), repository.name.as_str());
    let output = |batch: &[Annotation]| CheckOutput {
        title: content.title.to_owned(),
        summary: content.summary.to_owned(),
        text: None,
        annotations: batch.to_vec(),
    };
    let mut batches = content.annotations.chunks(MAX_ANNOTATIONS_PER_REQUEST);
    let first = output(batches.next().unwrap_or_default());
    let id = match existing_check_run(pool, client, repository, state, ledger).await? {
        Some(id) => {
            let update = CheckRunUpdate {
                status: Some(CheckStatus::Completed),
                conclusion: Some(content.conclusion),
                output: Some(first),
                ..CheckRunUpdate::default()
            };
            client.update_check_run(owner, repo, id, &update).await?;
            id
        }
        None => {
            let create = CheckRunCreate {
                status: Some(CheckStatus::Completed),
                conclusion: Some(content.conclusion),
                output: Some(first),
                external_id: Some(ledger.external_id()),
                ..CheckRunCreate::new(CHECK_RUN_NAME, state.head_sha)
            };
            // Marked before it is sent: a process killed before recording the answer leaves a
            // retry that looks for it first.
            ledger.mark_requested(pool).await?;
            let id = client.create_check_run(owner, repo, &create).await?;
            record(pool, ledger, id).await?;
            id
        }
    };
    for batch in batches {
        let more = CheckRunUpdate {
            output: Some(output(batch)),
            ..CheckRunUpdate::default()
        };
        client.update_check_run(owner, repo, id, &more).await?;
    }
    Ok(())
}

/// The evaluation's check run if it exists: recorded, or created by an earlier attempt that
/// died before recording it (found on the head by its external id, then recorded).
async fn existing_check_run(
    pool: &PgPool,
    client: &InstallationClient,
    repository: &RepoRef,
    state: &CheckRunState<'_>,
    ledger: &impl CheckRunLedger,
) -> Result<Option<u64>, JobError> {
    if let Some(id) = state.recorded {
        return u64::try_from(id)
            .map(Some)
            .map_err(|_| JobError::Permanent("negative check run id".into()));
    }
    if !state.requested {
        return Ok(None);
    }
    let found = client
        .find_check_run(
            &repository.owner,
            &repository.name,
            state.head_sha,
            CHECK_RUN_NAME,
            &ledger.external_id(),
        )
        .await?;
    if let Some(id) = found {
        tracing::info!(
            check_run = id,
            "found the check run an earlier attempt created"
        );
        record(pool, ledger, id).await?;
    }
    Ok(found)
}

async fn record(pool: &PgPool, ledger: &impl CheckRunLedger, id: u64) -> Result<(), JobError> {
    let stored =
        i64::try_from(id).map_err(|_| JobError::Permanent("check run id out of range".into()))?;
    // Recorded at once, so a retry after a later failure edits this check run.
    ledger.record(pool, stored).await?;
    Ok(())
}
