//! Merge queues: which pull requests wait in a queue, and the evaluations of merge groups.

use crate::config::MergeQueueMode;
use crate::domain::{Counts, Violation};
use crate::github::events::{MergeGroup, QueueChange};
use sqlx::{PgPool, Row};

/// Records a change of a repository's merge queue.
pub async fn record_queue_change(pool: &PgPool, change: &QueueChange) -> Result<(), sqlx::Error> {
    match change {
        QueueChange::Enqueued { target, base_ref } => {
            sqlx::query(
                "INSERT INTO merge_queue_entries (installation_id, repository_id, number, base_ref)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository_id, number) DO UPDATE SET base_ref = EXCLUDED.base_ref,
                     enqueued_at = now()",
            )
            .bind(target.installation_id)
            .bind(target.repo.id)
            .bind(number(target.number))
            .bind(branch(base_ref))
            .execute(pool)
            .await?;
        }
        QueueChange::Dequeued { target } => {
            sqlx::query("DELETE FROM merge_queue_entries WHERE repository_id = $1 AND number = $2")
                .bind(target.repo.id)
                .bind(number(target.number))
                .execute(pool)
                .await?;
        }
        QueueChange::Destroyed { group, reason } => {
            sqlx::query(
                "UPDATE queue_evaluations SET destroyed_at = now(), destroyed_reason = $3
                 WHERE repository_id = $1 AND head_sha = $2 AND destroyed_at IS NULL",
            )
            .bind(group.repo.id)
            .bind(&group.head_sha)
            .bind(reason.as_deref().unwrap_or("unknown"))
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// The pull requests a merge group holds, oldest first: those queued for its base branch up to
/// its last one (which is always among them, recorded or not).
pub async fn group_pull_requests(
    pool: &PgPool,
    group: &MergeGroup,
    last: u64,
) -> Result<Vec<u64>, sqlx::Error> {
    let numbers: Vec<i32> = sqlx::query_scalar(
        "SELECT e.number FROM merge_queue_entries e
         WHERE e.repository_id = $1 AND e.base_ref = $2 AND e.number <> $3
           AND e.enqueued_at <= (SELECT enqueued_at FROM merge_queue_entries
                                 WHERE repository_id = $1 AND number = $3)
         ORDER BY e.enqueued_at, e.number",
    )
    .bind(group.repo.id)
    .bind(group.base_branch())
    .bind(number(last))
    .fetch_all(pool)
    .await?;
    let mut held: Vec<u64> = numbers
        .into_iter()
        .filter_map(|n| u64::try_from(n).ok())
        .collect();
    held.push(last);
    Ok(held)
}

/// Whether each pull request passed at its current head (its latest evaluation is of the head
/// the store knows, completed, with a passing verdict).
pub async fn passed_at_head(
    pool: &PgPool,
    repository_id: i64,
    numbers: &[u64],
) -> Result<Vec<(u64, bool)>, sqlx::Error> {
    let wanted: Vec<i32> = numbers.iter().map(|n| number(*n)).collect();
    let rows = sqlx::query(
        "SELECT n.number, EXISTS (
             SELECT 1 FROM pull_requests p JOIN evaluations e
               ON e.repository_id = p.repository_id AND e.pr_number = p.number
                  AND e.head_sha = p.head_sha
             WHERE p.repository_id = $1 AND p.number = n.number
               AND e.status = 'completed' AND e.verdict = 'pass') AS passed
         FROM UNNEST($2::int[]) AS n(number)",
    )
    .bind(repository_id)
    .bind(&wanted)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let n: i32 = row.get("number");
            Some((u64::try_from(n).ok()?, row.get("passed")))
        })
        .collect())
}

/// The evaluation row of a merge group, created or found again on a retry.
#[derive(Debug, Clone, Copy)]
pub struct QueueEvaluationStart {
    pub id: i64,
    pub check_run_id: Option<i64>,
    /// An earlier attempt sent the check run's creation: it may exist without a recorded id.
    pub check_run_requested: bool,
}

pub async fn start_queue_evaluation(
    pool: &PgPool,
    group: &MergeGroup,
    pull_requests: &[u64],
    mode: MergeQueueMode,
    policy_digest: &str,
) -> Result<QueueEvaluationStart, sqlx::Error> {
    let numbers: Vec<i32> = pull_requests.iter().map(|n| number(*n)).collect();
    let row = sqlx::query(
        "INSERT INTO queue_evaluations (installation_id, repository_id, head_sha, head_ref,
             base_sha, base_ref, pr_numbers, mode, policy_digest)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (repository_id, head_sha) DO UPDATE SET pr_numbers = EXCLUDED.pr_numbers,
             mode = EXCLUDED.mode, policy_digest = EXCLUDED.policy_digest
         RETURNING id, check_run_id, check_run_requested_at IS NOT NULL AS requested",
    )
    .bind(group.installation_id)
    .bind(group.repo.id)
    .bind(&group.head_sha)
    .bind(&group.head_ref)
    .bind(&group.base_sha)
    .bind(group.base_branch())
    .bind(&numbers)
    .bind(mode.as_str())
    .bind(policy_digest)
    .fetch_one(pool)
    .await?;
    Ok(QueueEvaluationStart {
        id: row.get("id"),
        check_run_id: row.get("check_run_id"),
        check_run_requested: row.get("requested"),
    })
}

/// Marks the check run's creation as sent, before it is.
pub async fn mark_queue_check_run_requested(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE queue_evaluations SET check_run_requested_at = now() WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_queue_check_run_id(
    pool: &PgPool,
    id: i64,
    check_run_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE queue_evaluations SET check_run_id = $2 WHERE id = $1")
        .bind(id)
        .bind(check_run_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The result of a merge group's evaluation.
pub struct CompletedQueueEvaluation<'a> {
    pub id: i64,
    pub verdict: &'a str,
    /// `None` when the pull requests were trusted instead of evaluated together.
    pub score: Option<u8>,
    pub threshold: Option<u8>,
    pub counts: Option<Counts>,
    pub config_digest: Option<&'a str>,
    pub introduced: &'a [Violation],
}

pub async fn complete_queue_evaluation(
    pool: &PgPool,
    done: &CompletedQueueEvaluation<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE queue_evaluations SET status = 'completed', verdict = $2, score = $3,
             threshold = $4, block_count = $5, override_count = $6, warning_count = $7,
             config_digest = $8, introduced = $9, error = NULL, completed_at = now()
         WHERE id = $1",
    )
    .bind(done.id)
    .bind(done.verdict)
    .bind(done.score.map(i16::from))
    .bind(done.threshold.map(i16::from))
    .bind(done.counts.map(|c| count(c.block)))
    .bind(done.counts.map(|c| count(c.r#override)))
    .bind(done.counts.map(|c| count(c.warning)))
    .bind(done.config_digest)
    .bind(serde_json::json!(done.introduced))
    .execute(pool)
    .await?;
    Ok(())
}

/// Records that the group could not be judged (config, policy or a change too large to see).
pub async fn fail_queue_evaluation(
    pool: &PgPool,
    id: i64,
    error: &str,
    config_digest: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE queue_evaluations SET status = 'error', error = $2, config_digest = $3,
             completed_at = now()
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(config_digest)
    .execute(pool)
    .await?;
    Ok(())
}

/// The comment a failed group left (or began to leave) on one of its pull requests:
/// `Some(None)` when it was requested but its id never recorded.
pub async fn queue_comment(
    pool: &PgPool,
    queue_evaluation_id: i64,
    pr: u64,
) -> Result<Option<Option<i64>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT comment_id FROM queue_comments WHERE queue_evaluation_id = $1 AND pr_number = $2",
    )
    .bind(queue_evaluation_id)
    .bind(number(pr))
    .fetch_optional(pool)
    .await
}

/// Marks the comment as requested, before it is posted.
pub async fn mark_queue_comment_requested(
    pool: &PgPool,
    installation_id: i64,
    queue_evaluation_id: i64,
    pr: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO queue_comments (queue_evaluation_id, installation_id, pr_number)
         VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(queue_evaluation_id)
    .bind(installation_id)
    .bind(number(pr))
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn set_queue_comment_id(
    pool: &PgPool,
    queue_evaluation_id: i64,
    pr: u64,
    comment_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE queue_comments SET comment_id = $3 WHERE queue_evaluation_id = $1 AND pr_number = $2",
    )
    .bind(queue_evaluation_id)
    .bind(number(pr))
    .bind(comment_id)
    .execute(pool)
    .await?;
    Ok(())
}

fn number(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// `refs/heads/main` and `main` name the same queue.
fn branch(git_ref: &str) -> &str {
    git_ref.strip_prefix("refs/heads/").unwrap_or(git_ref)
}
