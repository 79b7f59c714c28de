//! Background work: the queue, the worker loop, and one module per job kind.
//!
//! A job is a serde struct, in the file that runs it, implementing [`Job`]: its kind, dedup key,
//! attempts and `run`. [`registry`] maps each stored kind back to its decoder and runner, in
//! one place, and jobs are queued only as those structs, so a payload is written and read
//! through one type.

mod alerts;
mod check_runs;
mod commands;
pub mod digests;
mod evaluate;
pub mod installation_config;
mod merge_queue;
mod notify;
mod queue;
mod redeliver;
mod registry;
mod requests;
mod slack;

pub use alerts::{
    ALERT_DEDUP_WINDOW, AlertPolicy, EscalateAlert, acknowledge_alert, reconcile_alerts,
};
pub use commands::{CommandHandler, DashboardDecision, HandleCommand, SlackDecision};
pub use digests::EscalateDigest;
pub use evaluate::{EvaluatePullRequest, Evaluator, enqueue_evaluation};
pub use installation_config::RefreshInstallationConfig;
pub use merge_queue::{EvaluateMergeGroup, RecordMergeQueue};
pub use notify::{EmailLinks, EmailSender, PagerDutySender, SendEmail, SendPagerDuty};
pub(crate) use queue::CHANNEL as JOBS_CHANNEL;
pub use queue::{ClaimedJob, Enqueued, JobQueue, NewJob, backoff, enqueue_row};
pub use redeliver::{
    RedeliverWebhooks, RedeliveryPolicy, RedeliveryReport, failed_deliveries, redeliver_failed,
    schedule_redelivery,
};
pub use requests::ClosePullRequest;
pub use slack::{SendSlack, SlackSender, enqueue_slack_send};

use crate::github::events::PrTarget;
use crate::github::{GithubApp, GithubError, InstallationClient};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::{PgConnection, PgPool};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

/// One kind of background work. The struct is the job's payload: it holds ids and reads fresh
/// state when it runs, so two queued jobs with one dedup key do the same work.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The stored `kind`: how a queued job finds its code again. Renaming one strands the
    /// jobs already queued under the old name.
    const KIND: &'static str;
    /// Attempts before the job is given up.
    const MAX_ATTEMPTS: i32;
    /// Tells people something (email, Slack, PagerDuty, escalations): claimed before any other
    /// ready job, so it never queues behind jobs that write to GitHub.
    const URGENT: bool = false;

    /// Jobs with one key coalesce while one waits, and never run at once.
    fn dedup_key(&self) -> String;

    /// The pull request the job is about, for its log span.
    fn pull_request(&self) -> Option<&PrTarget> {
        None
    }

    fn run(&self, ctx: &JobContext<'_>) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// Attempts before a job is given up (about 4 minutes of backoff in all), unless its kind says
/// otherwise.
const DEFAULT_MAX_ATTEMPTS: i32 = 8;

/// What a running job is given: the app's handlers and where it stands in its attempts.
pub struct JobContext<'a> {
    pub handlers: &'a Handlers,
    /// 1 on the first run.
    pub attempt: i32,
    pub max_attempts: i32,
}

impl JobContext<'_> {
    /// Whether a failure now gives the job up.
    pub fn last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// The queue row of `job`, for `installation_id`'s fair share (`None`: deployment-wide work).
pub fn new_job<J: Job>(installation_id: Option<i64>, job: &J) -> Result<NewJob, sqlx::Error> {
    Ok(NewJob {
        kind: J::KIND,
        payload: serde_json::to_value(job).map_err(|e| sqlx::Error::Encode(Box::new(e)))?,
        installation_id,
        dedup_key: job.dedup_key(),
        max_attempts: J::MAX_ATTEMPTS,
    })
}

/// Queues `job` in the caller's transaction: it becomes visible only if that transaction
/// commits, and a pending job with the same key takes its payload instead.
pub async fn enqueue<J: Job>(
    conn: &mut PgConnection,
    installation_id: Option<i64>,
    job: &J,
) -> Result<Enqueued, sqlx::Error> {
    queue::enqueue_row(conn, &new_job(installation_id, job)?).await
}

/// Queues `job` to become ready only after `delay` (a scheduled escalation, say).
pub async fn enqueue_delayed<J: Job>(
    conn: &mut PgConnection,
    installation_id: Option<i64>,
    job: &J,
    delay: Duration,
) -> Result<Enqueued, sqlx::Error> {
    queue::enqueue_row_delayed(conn, &new_job(installation_id, job)?, delay).await
}

/// A client acting as the installation a job belongs to.
fn installation_client(
    github: &GithubApp,
    installation_id: i64,
) -> Result<InstallationClient, JobError> {
    let id = u64::try_from(installation_id)
        .map_err(|_| JobError::Permanent("negative installation id".into()))?;
    Ok(github.installation(id)?)
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
    /// The installation's GitHub write budget is spent for `wait`: the job gives its worker slot
    /// back and runs again then, without spending an attempt.
    #[error("GitHub write budget spent for {} ms", .wait.as_millis())]
    Deferred { wait: Duration },
    /// Retrying cannot help (bad payload, permission denied, pull request gone).
    #[error("{0}")]
    Permanent(String),
}

impl From<GithubError> for JobError {
    fn from(error: GithubError) -> Self {
        if let GithubError::BudgetSpent { wait } = error {
            JobError::Deferred { wait }
        } else if error.is_retryable() {
            JobError::Retry {
                message: error.to_string(),
                after: error.retry_after(),
            }
        } else {
            JobError::Permanent(error.to_string())
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // A stored row that no longer parses parses no better on the next attempt.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                JobError::Permanent(format!("database: {error}"))
            }
            _ => JobError::Retry {
                message: format!("database: {error}"),
                after: None,
            },
        }
    }
}

/// Everything the jobs run with.
pub struct Handlers {
    pub pool: PgPool,
    pub github: GithubApp,
    pub evaluator: Evaluator,
    pub commands: CommandHandler,
    /// `None` when Slack is off.
    pub slack: Option<SlackSender>,
    /// `None` when email is off.
    pub email: Option<EmailSender>,
    /// `None` when PagerDuty is off.
    pub pagerduty: Option<PagerDutySender>,
    pub alerts: Option<AlertPolicy>,
    /// `None` when automatic redelivery is off.
    pub redelivery: Option<RedeliveryPolicy>,
}

/// Runs `concurrency` worker loops until `shutdown` turns true.
pub async fn run_workers(
    queue: JobQueue,
    handlers: Arc<Handlers>,
    concurrency: usize,
    shutdown: watch::Receiver<bool>,
) {
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        workers.spawn(worker_loop(
            queue.clone(),
            handlers.clone(),
            shutdown.clone(),
        ));
    }
    while workers.join_next().await.is_some() {}
}

async fn worker_loop(
    queue: JobQueue,
    handlers: Arc<Handlers>,
    mut shutdown: watch::Receiver<bool>,
) {
    // Notifications wake idle workers at once; the poll interval covers delayed retries and a
    // lost listener connection.
    let mut listener = queue.listener().await.ok();
    let poll = Duration::from_millis(500);
    while !*shutdown.borrow() {
        match queue.claim().await {
            Ok(Some(job)) => run_one(&queue, &handlers, job).await,
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

async fn run_one(queue: &JobQueue, handlers: &Handlers, job: ClaimedJob) {
    let span = tracing::info_span!(
        "job",
        job_id = job.id,
        kind = %job.kind,
        key = %job.dedup_key,
        attempt = job.attempt,
        installation = job.installation_id,
        repository = tracing::field::Empty,
        pr = tracing::field::Empty,
    );
    run_one_in_span(queue, handlers, job).instrument(span).await
}

async fn run_one_in_span(queue: &JobQueue, handlers: &Handlers, job: ClaimedJob) {
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
    let started = std::time::Instant::now();
    let ctx = JobContext {
        handlers,
        attempt: job.attempt,
        max_attempts: job.max_attempts,
    };
    let outcome = registry::run(&ctx, &job.kind, job.payload.clone()).await;
    heartbeat.abort();
    let label = match &outcome {
        Ok(()) => "completed",
        Err(JobError::Retry { .. }) if job.attempt < job.max_attempts => "retried",
        Err(JobError::Deferred { .. }) => "deferred",
        Err(_) => "failed",
    };
    crate::telemetry::metrics::record_job(&job.kind, label, started.elapsed());
    let recorded = match &outcome {
        Ok(()) => queue.complete(&job).await,
        Err(JobError::Retry { message, after }) => {
            let delay = backoff(job.attempt, *after);
            tracing::warn!(error = %message, delay_ms = delay.as_millis() as u64, "job failed, will retry");
            queue.retry(&job, message, delay).await
        }
        Err(JobError::Deferred { wait }) => {
            tracing::info!(
                delay_ms = wait.as_millis() as u64,
                "GitHub write budget spent: job deferred"
            );
            queue.defer(&job, *wait).await
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
