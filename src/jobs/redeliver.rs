//! The `redeliver_webhooks` job: asks GitHub to send again the deliveries that failed (Tollgate
//! was down or answered an error) and that Tollgate never stored, so an outage loses nothing.
//!
//! One job, under one dedup key, for the whole deployment: each run first schedules the next one,
//! and a worker process that starts enqueues it (merging with the one already waiting). A run
//! reads the app's recent deliveries, newest first, back to `lookback`, and requests at most
//! `max_per_run` redeliveries, oldest first. Each request is recorded before it is sent, so a
//! delivery is asked for at most once, whichever process runs the job.

use super::{Job, JobContext, JobError, enqueue_delayed};
use crate::github::{GithubApp, HookDelivery};
use crate::store::{self, RedeliveryClaim};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;

/// 30 pages of 100: a day of deliveries for a busy app; the run stops there.
const MAX_PAGES: usize = 30;

/// How often and how far back failed deliveries are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryPolicy {
    pub every: Duration,
    pub max_per_run: usize,
    /// GitHub keeps deliveries for a few days; older failures are left alone.
    pub lookback: Duration,
}

impl Default for RedeliveryPolicy {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5 * 60),
            max_per_run: 50,
            lookback: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedeliveryReport {
    /// Delivery attempts listed within the lookback.
    pub listed: usize,
    /// Deliveries whose every listed attempt failed and that Tollgate never stored.
    pub missing: usize,
    /// Redeliveries GitHub accepted in this run.
    pub requested: usize,
}

/// Queues a run of the job after `delay`; merges with the run already waiting.
pub async fn schedule_redelivery(pool: &PgPool, delay: Duration) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    enqueue_delayed(&mut conn, None, &RedeliverWebhooks {}, delay).await?;
    Ok(())
}

/// The `redeliver_webhooks` job: schedules the next run, then asks for the missing
/// redeliveries. One for the whole deployment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RedeliverWebhooks {}

impl Job for RedeliverWebhooks {
    const KIND: &'static str = "redeliver_webhooks";
    const MAX_ATTEMPTS: i32 = 3;

    fn dedup_key(&self) -> String {
        "redeliver-webhooks".to_owned()
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        let handlers = ctx.handlers;
        // Left over from a deployment that had it on: the chain ends here.
        let Some(policy) = &handlers.redelivery else {
            return Ok(());
        };
        schedule_redelivery(&handlers.pool, policy.every).await?;
        redeliver_failed(&handlers.pool, &handlers.github, policy).await?;
        Ok(())
    }
}

/// One pass: lists the recent deliveries and requests a redelivery of each failed one that
/// Tollgate has not stored, at most once per delivery.
pub async fn redeliver_failed(
    pool: &PgPool,
    github: &GithubApp,
    policy: &RedeliveryPolicy,
) -> Result<RedeliveryReport, JobError> {
    let since = Utc::now()
        - chrono::Duration::from_std(policy.lookback).unwrap_or(chrono::Duration::days(1));
    let listed = recent_deliveries(github, since).await?;
    let failed = failed_deliveries(&listed, since);
    let guids: Vec<String> = failed.iter().map(|d| d.guid.clone()).collect();
    let unknown = store::unknown_delivery_guids(pool, &guids).await?;
    let mut report = RedeliveryReport {
        listed: listed.len(),
        missing: unknown.len(),
        requested: 0,
    };
    for delivery in failed
        .into_iter()
        .filter(|d| unknown.contains(&d.guid))
        .take(policy.max_per_run)
    {
        if request_once(pool, github, delivery).await? {
            report.requested += 1;
        }
    }
    tracing::info!(
        listed = report.listed,
        missing = report.missing,
        requested = report.requested,
        "webhook redelivery pass"
    );
    Ok(report)
}

/// The app's deliveries since `since`, newest first (GitHub's order), page by page.
async fn recent_deliveries(
    github: &GithubApp,
    since: DateTime<Utc>,
) -> Result<Vec<HookDelivery>, JobError> {
    let mut deliveries = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let page = github.hook_deliveries(cursor.as_deref()).await?;
        let reached_since = page.deliveries.iter().any(|d| d.delivered_at < since);
        deliveries.extend(page.deliveries);
        match page.next_cursor {
            Some(next) if !reached_since => cursor = Some(next),
            _ => break,
        }
    }
    Ok(deliveries)
}

/// Requests one redelivery unless it was requested before; whether GitHub accepted it now.
async fn request_once(
    pool: &PgPool,
    github: &GithubApp,
    delivery: &HookDelivery,
) -> Result<bool, JobError> {
    let claim = RedeliveryClaim {
        guid: &delivery.guid,
        hook_delivery_id: i64::try_from(delivery.id)
            .map_err(|_| JobError::Permanent("delivery id out of range".into()))?,
        event: &delivery.event,
        action: delivery.action.as_deref(),
        status_code: i32::from(delivery.status_code),
        delivered_at: delivery.delivered_at,
    };
    if !store::claim_redelivery(pool, &claim).await? {
        return Ok(false);
    }
    match github.redeliver(delivery.id).await {
        Ok(()) => {
            store::set_redelivery_outcome(pool, &delivery.guid, "requested").await?;
            tracing::info!(
                guid = %delivery.guid,
                event = %delivery.event,
                status_code = delivery.status_code,
                delivered_at = %delivery.delivered_at,
                "asked GitHub to redeliver a failed delivery"
            );
            Ok(true)
        }
        Err(error) if error.is_retryable() => {
            // Asked again by a later run.
            store::release_redelivery(pool, &delivery.guid).await?;
            Err(error.into())
        }
        Err(error) => {
            store::set_redelivery_outcome(pool, &delivery.guid, &error.to_string()).await?;
            tracing::warn!(guid = %delivery.guid, %error, "GitHub refused to redeliver");
            Ok(false)
        }
    }
}

/// The deliveries since `since` whose every listed attempt failed: the newest failed attempt of
/// each, oldest delivery first (so that redeliveries arrive in the order GitHub first sent them).
pub fn failed_deliveries(deliveries: &[HookDelivery], since: DateTime<Utc>) -> Vec<&HookDelivery> {
    let mut by_guid: HashMap<&str, Vec<&HookDelivery>> = HashMap::new();
    for delivery in deliveries.iter().filter(|d| d.delivered_at >= since) {
        by_guid.entry(&delivery.guid).or_default().push(delivery);
    }
    let mut failed: Vec<(DateTime<Utc>, &HookDelivery)> = by_guid
        .into_values()
        .filter(|attempts| !attempts.iter().any(|a| a.succeeded()))
        .filter_map(|attempts| {
            let first = attempts.iter().map(|a| a.delivered_at).min()?;
            let newest = attempts
                .into_iter()
                .max_by_key(|a| (a.delivered_at, a.id))?;
            Some((first, newest))
        })
        .collect();
    failed.sort_by_key(|(first, delivery)| (*first, delivery.id));
    failed.into_iter().map(|(_, delivery)| delivery).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(id: u64, guid: &str, minutes_ago: i64, status_code: u16) -> HookDelivery {
        HookDelivery {
            id,
            guid: guid.to_owned(),
            delivered_at: now() - chrono::Duration::minutes(minutes_ago),
            redelivery: false,
            status_code,
            event: "pull_request".into(),
            action: Some("synchronize".into()),
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn ids(failed: &[&HookDelivery]) -> Vec<u64> {
        failed.iter().map(|d| d.id).collect()
    }

    #[test]
    fn only_deliveries_without_a_successful_attempt_are_failed() {
        let listed = [
            attempt(5, "c", 1, 0),
            attempt(4, "b", 2, 202),
            attempt(3, "b", 3, 502),
            attempt(2, "a", 4, 500),
            attempt(1, "d", 5, 200),
        ];
        let since = now() - chrono::Duration::hours(1);
        assert_eq!(ids(&failed_deliveries(&listed, since)), vec![2, 5]);
    }

    #[test]
    fn the_newest_failed_attempt_stands_for_its_delivery() {
        let listed = [attempt(9, "a", 1, 503), attempt(2, "a", 30, 500)];
        let since = now() - chrono::Duration::hours(1);
        assert_eq!(ids(&failed_deliveries(&listed, since)), vec![9]);
    }

    #[test]
    fn deliveries_before_the_lookback_are_left_alone() {
        let listed = [attempt(2, "new", 10, 500), attempt(1, "old", 120, 500)];
        let since = now() - chrono::Duration::hours(1);
        assert_eq!(ids(&failed_deliveries(&listed, since)), vec![2]);
    }

    #[test]
    fn redirects_and_client_errors_are_failures_too() {
        assert!(!attempt(1, "a", 1, 302).succeeded());
        assert!(!attempt(1, "a", 1, 401).succeeded());
        assert!(attempt(1, "a", 1, 200).succeeded());
        assert!(attempt(1, "a", 1, 202).succeeded());
    }
}
