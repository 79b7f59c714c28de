//! Pull requests, evaluations (one per head SHA) and their violations.

use crate::domain::{Counts, Fingerprint, Violation};
use crate::github::events::PrTarget;
use sqlx::{PgPool, Row};

/// The evaluation row of a head SHA, created or found again on a retry.
#[derive(Debug, Clone, Copy)]
pub struct EvaluationStart {
    pub id: i64,
    /// Set once the check run exists, so a retry edits it instead of creating another.
    pub check_run_id: Option<i64>,
    /// An earlier attempt sent the check run's creation: it may exist without a recorded id.
    pub check_run_requested: bool,
}

/// Records the pull request's current state and starts (or resumes) the evaluation of its head.
pub async fn start_evaluation(
    pool: &PgPool,
    target: &PrTarget,
    head_sha: &str,
    title: &str,
    author: Option<&str>,
    policy_digest: &str,
) -> Result<EvaluationStart, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO pull_requests (installation_id, repository_id, number, title, author, head_sha)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (repository_id, number) DO UPDATE SET title = EXCLUDED.title,
             author = EXCLUDED.author, head_sha = EXCLUDED.head_sha, updated_at = now()",
    )
    .bind(target.installation_id)
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(title)
    .bind(author)
    .bind(head_sha)
    .execute(&mut *tx)
    .await?;
    let row = sqlx::query(
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, policy_digest)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (repository_id, pr_number, head_sha) DO UPDATE SET
             -- A completed evaluation stays readable (by commands, the dashboard) until its
             -- new result replaces it.
             status = CASE evaluations.status WHEN 'completed' THEN 'completed'
                 ELSE 'in_progress' END,
             policy_digest = EXCLUDED.policy_digest, error = NULL
         RETURNING id, check_run_id, check_run_requested_at IS NOT NULL AS requested",
    )
    .bind(target.installation_id)
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(head_sha)
    .bind(policy_digest)
    .fetch_one(&mut *tx)
    .await?;
    abandon_unfinished_evaluations(&mut *tx, target, Some(head_sha)).await?;
    tx.commit().await?;
    Ok(EvaluationStart {
        id: row.get("id"),
        check_run_id: row.get("check_run_id"),
        check_run_requested: row.get("requested"),
    })
}

/// Closes the evaluations of the pull request that a crashed process left `in_progress`, but
/// for `except_head`'s: their retry evaluates the current head (or nothing, once the pull request
/// is closed), so nothing else would ever finish them, and retention keeps unfinished rows.
/// The number closed.
pub async fn abandon_unfinished_evaluations<'c>(
    executor: impl sqlx::PgExecutor<'c>,
    target: &PrTarget,
    except_head: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let closed = sqlx::query(
        "UPDATE evaluations SET status = 'superseded', completed_at = now()
         WHERE repository_id = $1 AND pr_number = $2 AND status = 'in_progress'
           AND head_sha IS DISTINCT FROM $3",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(except_head)
    .execute(executor)
    .await?
    .rows_affected();
    if closed > 0 {
        tracing::info!(closed, "unfinished evaluations of earlier heads abandoned");
    }
    Ok(closed)
}

/// Marks the check run's creation as sent, before it is.
pub async fn mark_check_run_requested(
    pool: &PgPool,
    evaluation_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE evaluations SET check_run_requested_at = now() WHERE id = $1")
        .bind(evaluation_id)
        .execute(pool)
        .await?;
    Ok(())
}

pub async fn set_check_run_id(
    pool: &PgPool,
    evaluation_id: i64,
    check_run_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE evaluations SET check_run_id = $2 WHERE id = $1")
        .bind(evaluation_id)
        .bind(check_run_id)
        .execute(pool)
        .await?;
    Ok(())
}

/// The pull request's sticky comment, once created.
pub async fn comment_id(pool: &PgPool, target: &PrTarget) -> Result<Option<i64>, sqlx::Error> {
    let id: Option<Option<i64>> = sqlx::query_scalar(
        "SELECT comment_id FROM pull_requests WHERE repository_id = $1 AND number = $2",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .fetch_optional(pool)
    .await?;
    Ok(id.flatten())
}

/// Records the sticky comment on the pull request and, when given, on the evaluation it shows.
pub async fn set_comment_id(
    pool: &PgPool,
    target: &PrTarget,
    evaluation_id: Option<i64>,
    comment_id: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH evaluation AS (UPDATE evaluations SET comment_id = $3 WHERE id = $4)
         UPDATE pull_requests SET comment_id = $3 WHERE repository_id = $1 AND number = $2",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(comment_id)
    .bind(evaluation_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// The last completed evaluation of another head SHA: what "fixed since the last push" and the
/// score history compare against.
pub struct PreviousEvaluation {
    pub head_sha: String,
    pub score: u8,
    pub violations: Vec<Violation>,
}

pub async fn previous_evaluation(
    pool: &PgPool,
    target: &PrTarget,
    current_sha: &str,
) -> Result<Option<PreviousEvaluation>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, head_sha, score FROM evaluations
         WHERE repository_id = $1 AND pr_number = $2 AND head_sha <> $3 AND status = 'completed'
         ORDER BY completed_at DESC LIMIT 1",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(current_sha)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let violations = violations_of(pool, row.get("id")).await?;
    let score: i16 = row.get("score");
    Ok(Some(PreviousEvaluation {
        head_sha: row.get("head_sha"),
        score: u8::try_from(score).unwrap_or_default(),
        violations,
    }))
}

/// Scores of the latest completed evaluations, oldest first, with their head SHAs.
pub async fn recent_scores(
    pool: &PgPool,
    target: &PrTarget,
    limit: i64,
) -> Result<Vec<(String, u8)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT head_sha, score FROM evaluations
         WHERE repository_id = $1 AND pr_number = $2 AND status = 'completed'
         ORDER BY completed_at DESC LIMIT $3",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let mut scores: Vec<(String, u8)> = rows
        .iter()
        .map(|r| {
            (
                r.get("head_sha"),
                u8::try_from(r.get::<i16, _>("score")).unwrap_or_default(),
            )
        })
        .collect();
    scores.reverse();
    Ok(scores)
}

/// What a finished evaluation records.
pub struct CompletedEvaluation<'a> {
    pub evaluation_id: i64,
    pub installation_id: i64,
    pub score: u8,
    pub verdict: &'a str,
    pub threshold: u8,
    pub counts: Counts,
    pub config_digest: &'a str,
    pub not_evaluated: &'a [String],
    pub duration_ms: i32,
    pub violations: &'a [Violation],
}

/// Stores the result and its violations in one transaction.
pub async fn complete_evaluation(
    pool: &PgPool,
    done: &CompletedEvaluation<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "UPDATE evaluations SET status = 'completed', score = $2, verdict = $3, threshold = $4,
             block_count = $5, override_count = $6, warning_count = $7, config_digest = $8,
             not_evaluated = $9, duration_ms = $10, completed_at = now(),
             error = NULL
         WHERE id = $1",
    )
    .bind(done.evaluation_id)
    .bind(i16::from(done.score))
    .bind(done.verdict)
    .bind(i16::from(done.threshold))
    .bind(count(done.counts.block))
    .bind(count(done.counts.r#override))
    .bind(count(done.counts.warning))
    .bind(done.config_digest)
    .bind(serde_json::json!(done.not_evaluated))
    .bind(done.duration_ms)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM violations WHERE evaluation_id = $1")
        .bind(done.evaluation_id)
        .execute(&mut *tx)
        .await?;
    let v = done.violations;
    sqlx::query(
        "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, path, line,
             message, fingerprint)
         SELECT $1, $2, * FROM UNNEST($3::text[], $4::text[], $5::text[], $6::int[], $7::text[],
             $8::text[])",
    )
    .bind(done.evaluation_id)
    .bind(done.installation_id)
    .bind(v.iter().map(|x| x.rule_id.as_str()).collect::<Vec<_>>())
    .bind(v.iter().map(|x| x.tier.as_str()).collect::<Vec<_>>())
    .bind(v.iter().map(|x| x.path.as_deref()).collect::<Vec<_>>())
    .bind(
        v.iter()
            .map(|x| x.line.and_then(|l| i32::try_from(l).ok()))
            .collect::<Vec<_>>(),
    )
    .bind(v.iter().map(|x| x.message.as_str()).collect::<Vec<_>>())
    .bind(v.iter().map(|x| x.fingerprint.as_str()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Records that the evaluation could not produce a verdict (config or policy error).
pub async fn fail_evaluation(
    pool: &PgPool,
    evaluation_id: i64,
    error: &str,
    config_digest: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE evaluations SET status = 'error', error = $2, config_digest = $3,
             completed_at = now()
         WHERE id = $1",
    )
    .bind(evaluation_id)
    .bind(error)
    .bind(config_digest)
    .execute(pool)
    .await?;
    Ok(())
}

/// A newer push arrived while this SHA was evaluated: its result is not the latest.
pub async fn supersede_evaluation(pool: &PgPool, evaluation_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE evaluations SET status = 'superseded', completed_at = now() WHERE id = $1")
        .bind(evaluation_id)
        .execute(pool)
        .await?;
    Ok(())
}

fn pr_number(target: &PrTarget) -> i32 {
    i32::try_from(target.number).unwrap_or(i32::MAX)
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn violation_from_row(row: &sqlx::postgres::PgRow) -> Result<Violation, sqlx::Error> {
    let decode = |e: crate::domain::DomainError| sqlx::Error::Decode(Box::new(e));
    let rule: String = row.get("rule_id");
    let tier: String = row.get("tier");
    let line: Option<i32> = row.get("line");
    let fingerprint: String = row.get("fingerprint");
    Ok(Violation {
        rule_id: rule.parse().map_err(decode)?,
        tier: tier.parse().map_err(decode)?,
        path: row.get("path"),
        line: line.and_then(|l| u32::try_from(l).ok()),
        message: row.get("message"),
        fingerprint: Fingerprint::from_stored(fingerprint),
    })
}

/// A pull request as recorded at its last evaluation, for messages about it.
#[derive(Debug, Clone)]
pub struct PullRequestRecord {
    pub repo_full_name: String,
    pub title: String,
    pub author: Option<String>,
    pub head_sha: Option<String>,
}

pub async fn pull_request_record(
    conn: &mut sqlx::PgConnection,
    repository_id: i64,
    pr_number: i32,
) -> Result<Option<PullRequestRecord>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT r.full_name, p.title, p.author, p.head_sha
         FROM pull_requests p JOIN repositories r ON r.id = p.repository_id
         WHERE p.repository_id = $1 AND p.number = $2",
    )
    .bind(repository_id)
    .bind(pr_number)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| PullRequestRecord {
        repo_full_name: row.get("full_name"),
        title: row.get("title"),
        author: row.get("author"),
        head_sha: row.get("head_sha"),
    }))
}

/// The violations of the pull request's latest completed evaluation, and its head SHA.
pub async fn latest_violations(
    pool: &PgPool,
    target: &PrTarget,
) -> Result<Option<(String, Vec<Violation>)>, sqlx::Error> {
    let Some(row) = sqlx::query(
        "SELECT id, head_sha FROM evaluations
         WHERE repository_id = $1 AND pr_number = $2 AND status = 'completed'
         ORDER BY completed_at DESC LIMIT 1",
    )
    .bind(target.repo.id)
    .bind(pr_number(target))
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let violations = violations_of(pool, row.get("id")).await?;
    Ok(Some((row.get("head_sha"), violations)))
}

async fn violations_of(pool: &PgPool, evaluation_id: i64) -> Result<Vec<Violation>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT rule_id, tier, path, line, message, fingerprint FROM violations
         WHERE evaluation_id = $1 ORDER BY id",
    )
    .bind(evaluation_id)
    .fetch_all(pool)
    .await?;
    rows.iter().map(violation_from_row).collect()
}
