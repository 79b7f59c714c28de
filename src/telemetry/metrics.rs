//! Prometheus metrics: one process-wide recorder (the `metrics` facade with the Prometheus
//! exporter, rendered by `GET /metrics`) and one small function per thing the app counts, so call
//! sites name what happened, never a metric or a label.
//!
//! Gauges that describe the shared database (queue depth, jobs by state) are sampled at scrape
//! time from PostgreSQL, so every replica reports the same values: aggregate them with `max`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub const DELIVERIES: &str = "tollgate_webhook_deliveries_total";
pub const INTAKE_DURATION: &str = "tollgate_webhook_intake_duration_seconds";
pub const JOBS_RUN: &str = "tollgate_jobs_run_total";
pub const JOB_DURATION: &str = "tollgate_job_duration_seconds";
pub const JOBS: &str = "tollgate_jobs";
pub const QUEUE_DEPTH: &str = "tollgate_job_queue_depth";
pub const OLDEST_READY_JOB: &str = "tollgate_job_oldest_ready_age_seconds";
pub const EVALUATION_DURATION: &str = "tollgate_evaluation_duration_seconds";
pub const EVALUATIONS: &str = "tollgate_evaluations_total";
pub const GITHUB_REQUESTS: &str = "tollgate_github_requests_total";
pub const GITHUB_DURATION: &str = "tollgate_github_request_duration_seconds";
pub const GITHUB_RATE_LIMIT_REMAINING: &str = "tollgate_github_rate_limit_remaining";
pub const NOTIFICATIONS: &str = "tollgate_notification_attempts_total";
pub const POOL_CONNECTIONS: &str = "tollgate_db_pool_connections";
pub const POOL_MAX: &str = "tollgate_db_pool_max_connections";
pub const POOL_ACQUIRE: &str = "tollgate_db_pool_acquire_seconds";
pub const HTTP_DURATION: &str = "tollgate_http_request_duration_seconds";
pub const LOG_EVENTS: &str = "tollgate_log_events_total";
pub const RETENTION_ROWS: &str = "tollgate_retention_rows_total";

/// Latency buckets from 5 ms to 1 min: webhook intake and HTTP answers sit at the low end,
/// evaluations and GitHub calls in the middle, slow jobs at the top.
const SECONDS_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns the handle that renders it. A second call
/// (a second app in one test process) gets the same handle.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .expect("the bucket list is not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder was installed first; metrics then go there and
            // this handle renders an empty page, which the app survives.
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed: /metrics stays empty");
            }
            describe();
            handle
        })
        .clone()
}

/// The text exposition of every metric, after draining histogram buffers.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

/// Drains histogram buffers; called periodically so they stay small between scrapes.
pub fn run_upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        DELIVERIES,
        "Webhook deliveries by event and outcome (accepted, ignored, duplicate, refused, …)"
    );
    describe_histogram!(
        INTAKE_DURATION,
        "Time from receiving a delivery to answering it"
    );
    describe_counter!(JOBS_RUN, "Job runs by kind and outcome");
    describe_histogram!(JOB_DURATION, "Duration of one job run, by kind");
    describe_gauge!(JOBS, "Unfinished jobs by kind and state (sampled)");
    describe_gauge!(QUEUE_DEPTH, "Jobs ready to run now (sampled)");
    describe_gauge!(
        OLDEST_READY_JOB,
        "Age of the oldest job ready to run, 0 when none (sampled)"
    );
    describe_histogram!(
        EVALUATION_DURATION,
        "Duration of a pull-request evaluation job, by verdict"
    );
    describe_counter!(EVALUATIONS, "Completed evaluations by verdict");
    describe_counter!(
        GITHUB_REQUESTS,
        "GitHub API requests by method, endpoint and status"
    );
    describe_histogram!(GITHUB_DURATION, "GitHub API request duration by endpoint");
    describe_gauge!(
        GITHUB_RATE_LIMIT_REMAINING,
        "x-ratelimit-remaining of the last GitHub answer, by installation"
    );
    describe_counter!(
        NOTIFICATIONS,
        "Notification attempts by channel (slack, email) and outcome"
    );
    describe_gauge!(
        POOL_CONNECTIONS,
        "Database pool connections by state (in_use, idle)"
    );
    describe_gauge!(POOL_MAX, "Database pool size limit");
    describe_gauge!(
        POOL_ACQUIRE,
        "Time to acquire a pooled connection at the last scrape"
    );
    describe_histogram!(
        HTTP_DURATION,
        "HTTP request duration by method, matched route and status"
    );
    describe_counter!(LOG_EVENTS, "Log events at warn and error level");
    describe_counter!(
        RETENTION_ROWS,
        "Rows deleted by the retention job, by category"
    );
}

/// What became of a webhook delivery.
pub fn record_delivery(event: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(DELIVERIES, "event" => event_label(event), "outcome" => outcome).increment(1);
    metrics::histogram!(INTAKE_DURATION, "outcome" => outcome).record(elapsed.as_secs_f64());
}

/// GitHub's event names are a small fixed set; anything else (or a missing header) is folded
/// into one label so a caller cannot create series at will.
fn event_label(event: &str) -> String {
    let known = event.len() <= 40
        && !event.is_empty()
        && event.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
    if known {
        event.to_owned()
    } else {
        "other".to_owned()
    }
}

/// One job run: `outcome` is completed, retried or failed.
pub fn record_job(kind: &str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(JOBS_RUN, "kind" => kind.to_owned(), "outcome" => outcome).increment(1);
    metrics::histogram!(JOB_DURATION, "kind" => kind.to_owned()).record(elapsed.as_secs_f64());
}

/// One evaluation that reached a verdict (`pass`, `fail`) or an error report (`error`).
pub fn record_evaluation(verdict: &'static str, elapsed: Duration) {
    metrics::counter!(EVALUATIONS, "verdict" => verdict).increment(1);
    metrics::histogram!(EVALUATION_DURATION, "verdict" => verdict).record(elapsed.as_secs_f64());
}

/// One GitHub API request. `status` is the HTTP status, or `error` when no answer came.
pub fn record_github_call(
    method: &str,
    route: &str,
    status: Option<u16>,
    rate_limit_remaining: Option<(u64, u64)>,
    elapsed: Duration,
) {
    let endpoint = github_endpoint(route);
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    metrics::counter!(GITHUB_REQUESTS, "method" => method.to_owned(), "endpoint" => endpoint.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(GITHUB_DURATION, "endpoint" => endpoint).record(elapsed.as_secs_f64());
    if let Some((installation, remaining)) = rate_limit_remaining {
        metrics::gauge!(GITHUB_RATE_LIMIT_REMAINING, "installation" => installation.to_string())
            .set(remaining as f64);
    }
}

/// One attempt at delivering a notification: `channel` is `slack` or `email`, `outcome` what the
/// channel's attempts table records (`sent`, `failed`, …). Every channel reports through here.
pub fn record_notification(channel: &'static str, outcome: &str) {
    metrics::counter!(NOTIFICATIONS, "channel" => channel, "outcome" => outcome.to_owned())
        .increment(1);
}

/// One HTTP request answered by the app, labelled by the route it matched (not the raw path).
pub fn record_http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    metrics::histogram!(
        HTTP_DURATION,
        "method" => method.to_owned(),
        "route" => route.to_owned(),
        "status" => status.to_string()
    )
    .record(elapsed.as_secs_f64());
}

/// A log event at warn or error level.
pub fn record_log_event(level: &'static str) {
    metrics::counter!(LOG_EVENTS, "level" => level).increment(1);
}

/// Rows the retention job deleted in one category.
pub fn record_retention(category: &'static str, rows: u64) {
    metrics::counter!(RETENTION_ROWS, "category" => category).increment(rows);
}

/// The database pool as this process sees it.
#[derive(Debug, Clone, Copy)]
pub struct PoolSample {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
    pub acquire: Option<Duration>,
}

pub fn record_pool(sample: PoolSample) {
    let in_use = sample.size.saturating_sub(sample.idle);
    metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use").set(f64::from(in_use));
    metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(sample.idle));
    metrics::gauge!(POOL_MAX).set(f64::from(sample.max));
    if let Some(acquire) = sample.acquire {
        metrics::gauge!(POOL_ACQUIRE).set(acquire.as_secs_f64());
    }
}

/// The unfinished part of the job queue, read from the jobs table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueSample {
    /// (kind, state, count) for pending and running jobs.
    pub by_kind_and_state: Vec<(String, String, i64)>,
    pub ready: i64,
    pub oldest_ready_age: Duration,
}

/// Label sets reported before: a kind/state that has no job any more is set to 0 instead of
/// keeping its last count.
static SEEN_JOB_SERIES: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

pub fn record_queue(sample: &QueueSample) {
    let mut seen = SEEN_JOB_SERIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for (kind, state) in seen.iter() {
        let present = sample
            .by_kind_and_state
            .iter()
            .any(|(k, s, _)| k == kind && s == state);
        if !present {
            metrics::gauge!(JOBS, "kind" => kind.clone(), "state" => state.clone()).set(0.0);
        }
    }
    for (kind, state, count) in &sample.by_kind_and_state {
        metrics::gauge!(JOBS, "kind" => kind.clone(), "state" => state.clone()).set(*count as f64);
        seen.insert((kind.clone(), state.clone()));
    }
    metrics::gauge!(QUEUE_DEPTH).set(sample.ready as f64);
    metrics::gauge!(OLDEST_READY_JOB).set(sample.oldest_ready_age.as_secs_f64());
}

/// The endpoint of a GitHub API route, with owners, names, numbers, logins and file paths replaced
/// by placeholders so that the metric has one series per endpoint, not per repository.
pub fn github_endpoint(route: &str) -> String {
    let path = route.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut out: Vec<&str> = Vec::with_capacity(segments.len());
    let mut index = 0;
    while index < segments.len() {
        let segment = segments[index];
        let previous = out.last().copied();
        let placeholder = match previous {
            Some("repos") => Some("{owner}"),
            Some("{owner}") => Some("{repo}"),
            Some("orgs") => Some("{org}"),
            Some("teams") => Some("{team}"),
            Some("memberships") | Some("collaborators") | Some("users") => Some("{user}"),
            Some("contents") => {
                // The file path runs to the end of the route.
                out.push("{path}");
                break;
            }
            _ if segment.bytes().all(|b| b.is_ascii_digit()) => Some("{id}"),
            _ => None,
        };
        out.push(placeholder.unwrap_or(segment));
        index += 1;
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_routes_become_endpoints_without_names_or_numbers() {
        let cases = [
            (
                "/repos/acme/web/pulls/12",
                "/repos/{owner}/{repo}/pulls/{id}",
            ),
            (
                "/repos/acme/web/pulls/12/files?per_page=100&page=2",
                "/repos/{owner}/{repo}/pulls/{id}/files",
            ),
            (
                "/repos/acme/web/contents/.github/tollgate.yml?ref=main",
                "/repos/{owner}/{repo}/contents/{path}",
            ),
            (
                "/repos/acme/web/check-runs/991",
                "/repos/{owner}/{repo}/check-runs/{id}",
            ),
            (
                "/repos/acme/web/issues/comments/5/reactions",
                "/repos/{owner}/{repo}/issues/comments/{id}/reactions",
            ),
            (
                "/repos/acme/web/collaborators/carol/permission",
                "/repos/{owner}/{repo}/collaborators/{user}/permission",
            ),
            (
                "/orgs/acme/teams/security/memberships/carol",
                "/orgs/{org}/teams/{team}/memberships/{user}",
            ),
            (
                "/api/v3/repos/acme/web/pulls/1",
                "/api/v3/repos/{owner}/{repo}/pulls/{id}",
            ),
            (
                "/app/installations/77/access_tokens",
                "/app/installations/{id}/access_tokens",
            ),
        ];
        for (route, endpoint) in cases {
            assert_eq!(github_endpoint(route), endpoint, "{route}");
        }
    }

    #[test]
    fn unknown_event_names_share_one_label() {
        assert_eq!(event_label("pull_request"), "pull_request");
        assert_eq!(event_label(""), "other");
        assert_eq!(event_label("Pull-Request<script>"), "other");
    }
}
