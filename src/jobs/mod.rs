//! Background work: the queue, the worker loop, and one module per job kind.

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
mod requests;
mod slack;

pub use alerts::{ALERT_DEDUP_WINDOW, AlertPolicy, acknowledge_alert, reconcile_alerts};
pub use commands::{CommandHandler, DashboardDecision, SlackDecision};
pub use evaluate::Evaluator;
pub use notify::{EmailLinks, EmailSender, PagerDutySender};
pub(crate) use queue::CHANNEL as JOBS_CHANNEL;
pub use queue::{ClaimedJob, Enqueued, JobQueue, NewJob, backoff, enqueue, enqueue_delayed};
pub use redeliver::{
    REDELIVER_WEBHOOKS, RedeliveryPolicy, RedeliveryReport, failed_deliveries, redeliver_failed,
    schedule_redelivery,
};
pub use slack::{SlackSender, enqueue_slack_send};

use crate::github::events::{CommentCommand, MergeGroup, PrTarget, QueueChange};
use crate::github::{GithubApp, InstallationClient};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::Instrument;

pub const EVALUATE_PR: &str = "evaluate_pr";
/// Decides the commands of one pull-request comment.
pub const HANDLE_COMMAND: &str = "handle_command";
/// Sends (or edits) one recorded Slack message.
pub const SEND_SLACK: &str = "send_slack";
/// Escalates a Tier 1 alert still open at the end of its window.
pub const ESCALATE_ALERT: &str = "escalate_alert";
/// Applies an Approve or Reject click from Slack.
pub const SLACK_DECISION: &str = "slack_decision";
pub const DASHBOARD_DECISION: &str = "dashboard_decision";
/// Sends one recorded email.
pub const SEND_EMAIL: &str = "send_email";
/// Sends one recorded PagerDuty event.
pub const SEND_PAGERDUTY: &str = "send_pagerduty";
/// Escalates a Tier 2 digest nobody acknowledged.
pub const ESCALATE_DIGEST: &str = "escalate_digest";
/// Expires the pending override requests of a closed pull request.
pub const CLOSE_PULL_REQUEST: &str = "close_pull_request";
/// Evaluates a merge group and reports on its head.
pub const EVALUATE_MERGE_GROUP: &str = "evaluate_merge_group";
/// Records a change of a merge queue (no GitHub call).
pub const RECORD_MERGE_QUEUE: &str = "record_merge_queue";
/// Reads an installation's `tollgate.yml` from its `.github` repository again.
pub const REFRESH_INSTALLATION_CONFIG: &str = "refresh_installation_config";

/// Attempts before a job is given up (about 4 minutes of backoff in all).
const MAX_ATTEMPTS: i32 = 8;

/// An evaluation of a pull request, ready to queue. The key is the pull request, not the SHA:
/// the job reads the newest head when it runs, so a burst of pushes coalesces into one pending
/// job.
pub fn evaluation_job(target: &PrTarget) -> NewJob {
    pull_request_job(EVALUATE_PR, "evaluate", target)
}

/// A job about one pull request, keyed by `prefix`, repository and number.
fn pull_request_job(kind: &'static str, prefix: &str, target: &PrTarget) -> NewJob {
    NewJob {
        kind,
        payload: serde_json::to_value(target).unwrap_or_default(),
        installation_id: Some(target.installation_id),
        dedup_key: format!("{prefix}:{}:{}", target.repo.id, target.number),
        max_attempts: MAX_ATTEMPTS,
    }
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

/// The evaluation of a merge group, ready to queue, keyed by its head: a redelivery coalesces
/// with it.
pub fn merge_group_job(group: &MergeGroup) -> NewJob {
    NewJob {
        kind: EVALUATE_MERGE_GROUP,
        payload: serde_json::to_value(group).unwrap_or_default(),
        installation_id: Some(group.installation_id),
        dedup_key: format!("merge_group:{}:{}", group.repo.id, group.head_sha),
        max_attempts: MAX_ATTEMPTS,
    }
}

/// A change of a merge queue, ready to queue. Changes of one pull request share a key, so they
/// run one after the other; a destroyed group is keyed by its head.
pub fn merge_queue_job(change: &QueueChange) -> NewJob {
    let (installation_id, dedup_key) = match change {
        QueueChange::Enqueued { target, .. } | QueueChange::Dequeued { target } => (
            target.installation_id,
            format!("queue:{}:{}", target.repo.id, target.number),
        ),
        QueueChange::Destroyed { group, .. } => (
            group.installation_id,
            format!("queue:{}:{}", group.repo.id, group.head_sha),
        ),
    };
    NewJob {
        kind: RECORD_MERGE_QUEUE,
        payload: serde_json::to_value(change).unwrap_or_default(),
        installation_id: Some(installation_id),
        dedup_key,
        max_attempts: MAX_ATTEMPTS,
    }
}

/// The follow-up of a closed pull request, ready to queue.
pub fn closed_pull_request_job(target: &PrTarget) -> NewJob {
    pull_request_job(CLOSE_PULL_REQUEST, "close", target)
}

/// Queues an evaluation of a pull request (see [`evaluation_job`]).
pub async fn enqueue_evaluation(
    conn: &mut PgConnection,
    target: &PrTarget,
) -> Result<Enqueued, sqlx::Error> {
    enqueue(conn, &evaluation_job(target)).await
}

/// The commands of one pull-request comment, ready to queue. The key is the comment, so a
/// redelivered webhook coalesces with its pending job; commands on one pull request are
/// serialized by the handler, not by the key.
pub fn command_job(command: &CommentCommand) -> NewJob {
    NewJob {
        kind: HANDLE_COMMAND,
        payload: serde_json::to_value(command).unwrap_or_default(),
        installation_id: Some(command.target.installation_id),
        dedup_key: format!("command:{}:{}", command.target.repo.id, command.comment_id),
        max_attempts: MAX_ATTEMPTS,
    }
}

/// Queues an Approve or Reject click from Slack. Repeated clicks of one person on one button
/// coalesce while the first waits.
pub async fn enqueue_slack_decision(
    conn: &mut PgConnection,
    installation_id: i64,
    decision: &SlackDecision,
) -> Result<Enqueued, sqlx::Error> {
    let payload = serde_json::to_value(decision).unwrap_or_default();
    let job = decision_job(
        SLACK_DECISION,
        payload,
        installation_id,
        (
            decision.request_id,
            &decision.slack_user_id,
            decision.approve,
        ),
    );
    enqueue(conn, &job).await
}

/// Queues an Approve or Reject from the dashboard, coalesced like Slack clicks.
pub async fn enqueue_dashboard_decision(
    conn: &mut PgConnection,
    installation_id: i64,
    decision: &DashboardDecision,
) -> Result<Enqueued, sqlx::Error> {
    let payload = serde_json::to_value(decision).unwrap_or_default();
    let job = decision_job(
        DASHBOARD_DECISION,
        payload,
        installation_id,
        (decision.request_id, &decision.login, decision.approve),
    );
    enqueue(conn, &job).await
}

/// One person's decision on one request: `(request id, who, approve)`.
fn decision_job(
    kind: &'static str,
    payload: serde_json::Value,
    installation_id: i64,
    (request_id, who, approve): (i64, &str, bool),
) -> NewJob {
    let verb = if approve { "approve" } else { "reject" };
    NewJob {
        kind,
        payload,
        installation_id: Some(installation_id),
        dedup_key: format!("{kind}:{request_id}:{who}:{verb}"),
        max_attempts: MAX_ATTEMPTS,
    }
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

#[derive(Deserialize)]
struct EmailPayload {
    email_id: i64,
}

#[derive(Deserialize)]
struct PagerDutyPayload {
    event_id: i64,
}

#[derive(Deserialize)]
struct DigestPayload {
    digest_id: i64,
}

#[derive(Deserialize)]
struct InstallationPayload {
    installation_id: i64,
}

#[derive(Deserialize)]
struct SlackSendPayload {
    message_id: i64,
}

#[derive(Deserialize)]
struct EscalationPayload {
    alert_id: i64,
    target: PrTarget,
}

impl Handlers {
    async fn run(&self, job: &ClaimedJob) -> Result<(), JobError> {
        let payload = job.payload.clone();
        match job.kind.as_str() {
            EVALUATE_PR => self.evaluator.run(&parse(payload)?).await,
            EVALUATE_MERGE_GROUP => self.evaluator.run_merge_group(&parse(payload)?).await,
            RECORD_MERGE_QUEUE => merge_queue::record(&self.pool, &parse(payload)?).await,
            HANDLE_COMMAND => self.commands.run(&parse(payload)?).await,
            SLACK_DECISION => self.commands.slack_decision(&parse(payload)?).await,
            DASHBOARD_DECISION => self.commands.dashboard_decision(&parse(payload)?).await,
            CLOSE_PULL_REQUEST => {
                requests::expire_requests_of_closed(&self.pool, &self.github, &parse(payload)?)
                    .await
            }
            SEND_SLACK => {
                let SlackSendPayload { message_id } = parse(payload)?;
                let Some(slack) = &self.slack else {
                    return Err(JobError::Permanent("Slack is not configured".into()));
                };
                let result = slack.run(message_id).await;
                let last_attempt = job.attempt >= job.max_attempts;
                // A message given up on is marked so, with the error, for whoever looks.
                if let Err(error) = &result
                    && (last_attempt || matches!(error, JobError::Permanent(_)))
                {
                    crate::store::fail_slack_message(&self.pool, message_id, &error.to_string())
                        .await?;
                }
                result
            }
            ESCALATE_ALERT => {
                let EscalationPayload { alert_id, target } = parse(payload)?;
                let Some(policy) = &self.alerts else {
                    return Err(JobError::Permanent("no alert channel is configured".into()));
                };
                alerts::escalate_alert(&self.pool, policy, &self.github, alert_id, &target).await
            }
            SEND_EMAIL => {
                let EmailPayload { email_id } = parse(payload)?;
                let Some(email) = &self.email else {
                    return Err(JobError::Permanent("email is not configured".into()));
                };
                email.run(email_id, job.attempt >= job.max_attempts).await
            }
            SEND_PAGERDUTY => {
                let PagerDutyPayload { event_id } = parse(payload)?;
                let Some(pagerduty) = &self.pagerduty else {
                    return Err(JobError::Permanent("PagerDuty is not configured".into()));
                };
                pagerduty
                    .run(event_id, job.attempt >= job.max_attempts)
                    .await
            }
            ESCALATE_DIGEST => {
                let DigestPayload { digest_id } = parse(payload)?;
                digests::escalate_digest(&self.pool, digest_id).await
            }
            REFRESH_INSTALLATION_CONFIG => {
                let InstallationPayload { installation_id } = parse(payload)?;
                // Queued because the cache was stale; an evaluation may have read the file since.
                installation_config::current_config(&self.pool, &self.github, installation_id)
                    .await
                    .map(drop)
            }
            REDELIVER_WEBHOOKS => match &self.redelivery {
                Some(policy) => redeliver::run_periodic(&self.pool, &self.github, policy).await,
                // Left over from a deployment that had it on: the chain ends here.
                None => Ok(()),
            },
            other => Err(JobError::Permanent(format!("unknown job kind {other}"))),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: serde_json::Value) -> Result<T, JobError> {
    serde_json::from_value(payload).map_err(|e| JobError::Permanent(format!("bad payload: {e}")))
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
    if let Some((repository, pr)) = pull_request_of(&job.payload) {
        span.record("repository", repository.as_str());
        span.record("pr", pr);
    }
    run_one_in_span(queue, handlers, job).instrument(span).await
}

/// The pull request a job is about, for its log lines: payloads that are a [`PrTarget`] or hold
/// one under `target`.
fn pull_request_of(payload: &serde_json::Value) -> Option<(String, u64)> {
    let target = payload.get("target").unwrap_or(payload);
    let repo = target.get("repo")?;
    let owner = repo.get("owner")?.as_str()?;
    let name = repo.get("name")?.as_str()?;
    let number = target.get("number")?.as_u64()?;
    Some((format!("{owner}/{name}"), number))
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
    let outcome = handlers.run(&job).await;
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
