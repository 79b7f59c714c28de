//! Running Tollgate in production: the deep health check, the retention policy, the trend
//! rollups, the periodic upkeep that serves them, and the runbooks.

pub mod health;
pub mod retention;
pub mod runbooks;
pub mod trends;

use crate::store;
use chrono::{DateTime, NaiveDate, Utc};
use health::{HealthInputs, HealthReport};
use retention::RetentionSettings;
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

const GITHUB_SUCCESS: &str = "github_success";
const GITHUB_FAILURE: &str = "github_failure";

/// The last GitHub answer of each kind seen by this process (Unix milliseconds, 0 for never),
/// written to `service_marks` by the upkeep loop so that every replica's health check sees it.
static LAST_GITHUB_SUCCESS: AtomicI64 = AtomicI64::new(0);
static LAST_GITHUB_FAILURE: AtomicI64 = AtomicI64::new(0);

/// Counts one GitHub request in the metrics and remembers whether GitHub worked. A call counts as
/// working when GitHub answered with anything but a server error, a bad-credentials 401 or a rate
/// limit: a 404 or 422 is GitHub working. `installation` is `None` for calls made as the app
/// (webhook deliveries, redeliveries), whose rate limit is the app's own.
pub fn observe_github_call(
    method: &str,
    route: &str,
    installation: Option<u64>,
    answer: Option<(http::StatusCode, &http::HeaderMap)>,
    elapsed: Duration,
) {
    let status = answer.map(|(status, _)| status);
    let remaining = answer
        .and_then(|(_, headers)| headers.get("x-ratelimit-remaining"))
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    crate::telemetry::metrics::record_github_call(
        method,
        route,
        status.map(|s| s.as_u16()),
        installation.zip(remaining),
        elapsed,
    );
    let working = status.is_some_and(|s| {
        !(s.is_server_error()
            || s == http::StatusCode::UNAUTHORIZED
            || s == http::StatusCode::TOO_MANY_REQUESTS
            || (s == http::StatusCode::FORBIDDEN && remaining == Some(0)))
    });
    let mark = if working {
        &LAST_GITHUB_SUCCESS
    } else {
        &LAST_GITHUB_FAILURE
    };
    mark.fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
}

/// Reads what the health checks need, timing its own queries, and assesses it.
pub async fn check_health(pool: &PgPool) -> HealthReport {
    // The check's own queries are its probe of database latency.
    let mut timings = Vec::new();
    let mut database_error = None;

    let started = Instant::now();
    let migrations = store::readiness(pool).await;
    timings.push(started.elapsed());

    let started = Instant::now();
    let notifications = match store::notification_attempts(pool, health::ALERT_WINDOW).await {
        Ok(channels) => Some(channels),
        Err(error) => {
            database_error.get_or_insert(error.to_string());
            None
        }
    };
    timings.push(started.elapsed());

    let started = Instant::now();
    let oldest_ready_job = match store::queue_sample(pool).await {
        Ok(sample) => Some(sample.oldest_ready_age),
        Err(error) => {
            database_error.get_or_insert(error.to_string());
            None
        }
    };
    timings.push(started.elapsed());

    let started = Instant::now();
    let marks = store::marks(pool).await.unwrap_or_else(|error| {
        database_error.get_or_insert(error.to_string());
        Default::default()
    });
    timings.push(started.elapsed());

    let average_query = (database_error.is_none() && migrations.is_ok())
        .then(|| timings.iter().sum::<Duration>() / timings.len().max(1) as u32);
    let size = pool.size();
    let idle = u32::try_from(pool.num_idle()).unwrap_or(size);
    health::assess(&HealthInputs {
        now: Utc::now(),
        pool_in_use: size.saturating_sub(idle),
        pool_max: pool.options().get_max_connections(),
        average_query,
        database_error,
        notifications,
        oldest_ready_job,
        github_last_success: marks.get(GITHUB_SUCCESS).copied(),
        github_last_failure: marks.get(GITHUB_FAILURE).copied(),
        github_server: crate::github::server::current(),
        migrations,
    })
}

/// Samples the database pool and the job queue into the metrics (at scrape time).
pub async fn sample_metrics(pool: &PgPool) {
    let started = Instant::now();
    let acquire = pool.acquire().await.ok().map(|conn| {
        drop(conn);
        started.elapsed()
    });
    let size = pool.size();
    crate::telemetry::metrics::record_pool(crate::telemetry::metrics::PoolSample {
        size,
        idle: u32::try_from(pool.num_idle()).unwrap_or(size),
        max: pool.options().get_max_connections(),
        acquire,
    });
    match store::queue_sample(pool).await {
        Ok(sample) => crate::telemetry::metrics::record_queue(&sample),
        Err(error) => tracing::warn!(%error, "cannot sample the job queue for metrics"),
    }
}

/// What the upkeep loop of a process does besides draining metric buffers.
#[derive(Debug, Clone)]
pub struct Upkeep {
    /// Worker processes write GitHub marks and run the daily rollup and retention.
    pub worker: bool,
    pub retention: RetentionSettings,
    pub process_id: String,
    pub interval: Duration,
}

/// Runs until `shutdown` turns true: drains histogram buffers, writes the GitHub marks when they
/// moved, and (workers) claims and runs each day's trend rollup and retention once across all
/// replicas.
pub async fn run_upkeep(pool: PgPool, upkeep: Upkeep, mut shutdown: watch::Receiver<bool>) {
    let mut written = (0i64, 0i64);
    let mut daily_checked: Option<NaiveDate> = None;
    let mut tick = tokio::time::interval(upkeep.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !*shutdown.borrow() {
        tokio::select! {
            changed = shutdown.changed() => {
                // A dropped sender means the app is gone.
                if changed.is_err() { return; }
                continue;
            }
            _ = tick.tick() => {}
        }
        crate::telemetry::metrics::run_upkeep();
        if !upkeep.worker {
            continue;
        }
        if let Err(error) = write_github_marks(&pool, &mut written).await {
            tracing::warn!(%error, "cannot record the last GitHub call");
        }
        let today = Utc::now().date_naive();
        if daily_checked != Some(today) {
            // Rollups first: they summarise days whose rows the retention may delete.
            let trends = trends::run_daily(&pool, today, &upkeep.process_id)
                .await
                .inspect_err(|error| tracing::error!(%error, "trend rollup failed"));
            let retention =
                retention::run_daily(&pool, &upkeep.retention, today, &upkeep.process_id)
                    .await
                    .inspect_err(|error| tracing::error!(%error, "retention run failed"));
            if trends.is_ok() && retention.is_ok() {
                daily_checked = Some(today);
            }
        }
    }
}

/// Writes the marks that moved since the last write (`written`).
async fn write_github_marks(pool: &PgPool, written: &mut (i64, i64)) -> Result<(), sqlx::Error> {
    let current = (
        LAST_GITHUB_SUCCESS.load(Ordering::Relaxed),
        LAST_GITHUB_FAILURE.load(Ordering::Relaxed),
    );
    let previous = *written;
    for (name, at, before) in [
        (GITHUB_SUCCESS, current.0, previous.0),
        (GITHUB_FAILURE, current.1, previous.1),
    ] {
        if at > before
            && let Some(at) = DateTime::from_timestamp_millis(at)
        {
            store::set_mark(pool, name, at).await?;
        }
    }
    *written = current;
    Ok(())
}
