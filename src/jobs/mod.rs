//! Background work: the queue, the worker loop, and one module per job kind.

mod evaluate;
mod queue;

pub use evaluate::Evaluator;
pub use queue::{ClaimedJob, Enqueued, JobQueue, NewJob, backoff, enqueue};

use crate::github::events::{CommentCommand, PrTarget};
use sqlx::PgConnection;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

pub const EVALUATE_PR: &str = "evaluate_pr";
pub const HANDLE_COMMAND: &str = "handle_command";

/// Attempts before a job is given up (about 4 minutes of backoff in all).
const MAX_ATTEMPTS: i32 = 8;

/// Queues an evaluation of a pull request. The key is the pull request, not the SHA: the job
/// reads the newest head when it runs, so a burst of pushes coalesces into one pending job.
pub async fn enqueue_evaluation(
    conn: &mut PgConnection,
    target: &PrTarget,
) -> Result<Enqueued, sqlx::Error> {
    let job = NewJob {
        kind: EVALUATE_PR,
        payload: serde_json::to_value(target).unwrap_or_default(),
        installation_id: Some(target.installation_id),
        dedup_key: format!("evaluate:{}:{}", target.repo.id, target.number),
        max_attempts: MAX_ATTEMPTS,
    };
    enqueue(conn, &job).await
}

/// Queues the commands of one pull-request comment. The key is the comment, so a redelivered
/// webhook coalesces with its pending job; commands on one pull request are serialized by the
/// handler, not by the key.
pub async fn enqueue_command(
    conn: &mut PgConnection,
    command: &CommentCommand,
) -> Result<Enqueued, sqlx::Error> {
    let job = NewJob {
        kind: HANDLE_COMMAND,
        payload: serde_json::to_value(command).unwrap_or_default(),
        installation_id: Some(command.target.installation_id),
        dedup_key: format!("command:{}:{}", command.target.repo.id, command.comment_id),
        max_attempts: MAX_ATTEMPTS,
    };
    enqueue(conn, &job).await
}

/// How a job run ended when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth another attempt (GitHub 5xx, timeouts, rate limits, a database hiccup).
    #[error("{message}")]
    Retry {
        message: String,
        after: Option<Duration>,
    },
    /// Retrying cannot help (bad payload, permission denied, pull request gone).
    #[error("{0}")]
    Permanent(String),
}

/// Runs `concurrency` worker loops until `shutdown` turns true.
pub async fn run_workers(
    queue: JobQueue,
    evaluator: Arc<Evaluator>,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        workers.spawn(worker_loop(
            queue.clone(),
            evaluator.clone(),
            shutdown.clone(),
        ));
    }
    while workers.join_next().await.is_some() {}
}

async fn worker_loop(
    queue: JobQueue,
    evaluator: Arc<Evaluator>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Notifications wake idle workers at once; the poll interval covers delayed retries and a
    // lost listener connection.
    let mut listener = queue.listener().await.ok();
    let poll = Duration::from_millis(500);
    while !*shutdown.borrow() {
        match queue.claim().await {
            Ok(Some(job)) => run_one(&queue, &evaluator, job).await,
            Ok(None) => {
                tokio::select! {
                    _ = shutdown.changed() => {}
                    _ = tokio::time::sleep(poll) => {}
                    _ = async {
                        match listener.as_mut() {
                            Some(l) => { let _ = l.recv().await; }
                            None => std::future::pending::<()>().await,
                        }
                    } => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot claim jobs");
                tokio::time::sleep(poll).await;
            }
        }
    }
}

async fn run_one(queue: &JobQueue, evaluator: &Evaluator, job: ClaimedJob) {
    let span = tracing::info_span!("job", id = job.id, kind = %job.kind, key = %job.dedup_key, attempt = job.attempt);
    run_one_in_span(queue, evaluator, job)
        .instrument(span)
        .await
}

async fn run_one_in_span(queue: &JobQueue, evaluator: &Evaluator, job: ClaimedJob) {
    let heartbeat = {
        let (queue, job) = (queue.clone(), job.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(queue.lease() / 3);
            tick.tick().await;
            loop {
                tick.tick().await;
                if let Err(error) = queue.heartbeat(&job).await {
                    tracing::warn!(%error, "heartbeat failed");
                }
            }
        })
    };
    let outcome = match job.kind.as_str() {
        EVALUATE_PR => match serde_json::from_value::<PrTarget>(job.payload.clone()) {
            Ok(target) => evaluator.run(&target).await,
            Err(e) => Err(JobError::Permanent(format!("bad payload: {e}"))),
        },
        other => Err(JobError::Permanent(format!("unknown job kind {other}"))),
    };
    heartbeat.abort();
    let recorded = match &outcome {
        Ok(()) => queue.complete(&job).await,
        Err(JobError::Retry { message, after }) => {
            let delay = backoff(job.attempt, *after);
            tracing::warn!(error = %message, delay_ms = delay.as_millis() as u64, "job failed, will retry");
            queue.retry(&job, message, delay).await
        }
        Err(JobError::Permanent(message)) => {
            tracing::error!(error = %message, "job failed for good");
            queue.fail(&job, message).await
        }
    };
    if let Err(error) = recorded {
        // The lease will expire and the job run again: effects are idempotent.
        tracing::error!(%error, "cannot record the job's outcome");
    }
}
