//! The retention policy: once a day, across all replicas, old rows are deleted in bounded
//! batches. The audit log is never touched (its trigger refuses deletes anyway).

use crate::config::SettingsError;
use crate::store::{self, DailyJob, RetentionCategory};
use chrono::NaiveDate;
use sqlx::PgPool;
use std::collections::BTreeMap;
use tracing::Instrument;

/// Age limits in days per kind of data (0 keeps that data forever), the batch size, and whether
/// to only count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// `RETENTION_RESOLVED_VIOLATIONS_DAYS` (90): violations a newer evaluation replaced.
    pub resolved_violations_days: u32,
    /// `RETENTION_ALERT_HISTORY_DAYS` (30): closed alerts with their PagerDuty events, Slack,
    /// email and PagerDuty attempts, and the Slack and email messages once settled.
    pub alert_history_days: u32,
    /// `RETENTION_TRENDS_DAYS` (365): evaluations (the score history) a newer one replaced, and
    /// the daily trend rollups.
    pub trends_days: u32,
    /// `RETENTION_WEBHOOK_PAYLOADS_DAYS` (30): stored webhook deliveries.
    pub webhook_payloads_days: u32,
    /// `RETENTION_FINISHED_JOBS_DAYS` (14): done and failed jobs.
    pub finished_jobs_days: u32,
    /// `RETENTION_BATCH_SIZE` (1000): rows per delete statement.
    pub batch_size: u32,
    /// `RETENTION_DRY_RUN` (false): count and log what would go, delete nothing.
    pub dry_run: bool,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            resolved_violations_days: 90,
            alert_history_days: 30,
            trends_days: 365,
            webhook_payloads_days: 30,
            finished_jobs_days: 14,
            batch_size: 1000,
            dry_run: false,
        }
    }
}

/// A run stops after this many batches of one category; the rest waits for the next day, so one
/// run stays bounded even after retention was off for a long time.
const MAX_BATCHES_PER_CATEGORY: u32 = 1000;

impl RetentionSettings {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let defaults = Self::default();
        let days = |name: &'static str, default: u32| -> Result<u32, SettingsError> {
            number(
                lookup,
                name,
                default,
                0..=36_500,
                "expected days (0 keeps forever)",
            )
        };
        Ok(Self {
            resolved_violations_days: days(
                "RETENTION_RESOLVED_VIOLATIONS_DAYS",
                defaults.resolved_violations_days,
            )?,
            alert_history_days: days("RETENTION_ALERT_HISTORY_DAYS", defaults.alert_history_days)?,
            trends_days: days("RETENTION_TRENDS_DAYS", defaults.trends_days)?,
            webhook_payloads_days: days(
                "RETENTION_WEBHOOK_PAYLOADS_DAYS",
                defaults.webhook_payloads_days,
            )?,
            finished_jobs_days: days("RETENTION_FINISHED_JOBS_DAYS", defaults.finished_jobs_days)?,
            batch_size: number(
                lookup,
                "RETENTION_BATCH_SIZE",
                defaults.batch_size,
                1..=100_000,
                "expected rows per batch (1-100000)",
            )?,
            dry_run: match lookup("RETENTION_DRY_RUN").as_deref().map(str::trim) {
                None | Some("") | Some("false") | Some("0") => false,
                Some("true") | Some("1") => true,
                Some(_) => {
                    return Err(SettingsError {
                        variable: "RETENTION_DRY_RUN",
                        problem: "expected true or false".to_owned(),
                    });
                }
            },
        })
    }

    /// The age limit of a category; `None` when that data is kept forever.
    pub fn days(&self, category: RetentionCategory) -> Option<u32> {
        let days = match category {
            RetentionCategory::ResolvedViolations => self.resolved_violations_days,
            RetentionCategory::SlackAttempts
            | RetentionCategory::NotificationAttempts
            | RetentionCategory::ClosedAlerts
            | RetentionCategory::AlertMessages
            | RetentionCategory::EmailMessages => self.alert_history_days,
            RetentionCategory::Evaluations
            | RetentionCategory::RuleTrends
            | RetentionCategory::ScoreTrends => self.trends_days,
            RetentionCategory::WebhookDeliveries => self.webhook_payloads_days,
            RetentionCategory::FinishedJobs => self.finished_jobs_days,
        };
        (days > 0).then_some(days)
    }
}

fn number(
    lookup: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
    problem: &str,
) -> Result<u32, SettingsError> {
    match lookup(variable).map(|v| v.trim().to_owned()) {
        None => Ok(default),
        Some(raw) if raw.is_empty() => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| SettingsError {
                variable,
                problem: problem.to_owned(),
            }),
    }
}

/// Rows deleted (or, in a dry run, found) per category.
pub type RetentionCounts = BTreeMap<RetentionCategory, u64>;

/// Applies the policy once. Categories run in an order that lets the later ones go: attempts
/// before the messages they reference, alerts before the messages about them. A category that
/// fails is logged and skipped, so it holds up none of the others; the run then fails with the
/// first error, to be retried.
pub async fn apply(
    pool: &PgPool,
    settings: &RetentionSettings,
) -> Result<RetentionCounts, sqlx::Error> {
    let mut counts = RetentionCounts::new();
    let mut first_error = None;
    for category in RetentionCategory::ALL {
        let Some(days) = settings.days(category) else {
            continue;
        };
        match apply_category(pool, settings, category, days).await {
            Ok(rows) => {
                counts.insert(category, rows);
            }
            Err(error) => {
                tracing::error!(category = category.as_str(), %error, "retention failed for this category");
                first_error.get_or_insert(error);
            }
        }
    }
    match first_error {
        None => Ok(counts),
        Some(error) => Err(error),
    }
}

/// Counts (dry run) or deletes one category's expired rows.
async fn apply_category(
    pool: &PgPool,
    settings: &RetentionSettings,
    category: RetentionCategory,
    days: u32,
) -> Result<u64, sqlx::Error> {
    if settings.dry_run {
        let found = store::count_expired(pool, category, days).await?;
        tracing::info!(
            category = category.as_str(),
            days,
            rows = found,
            "retention dry run: rows that would be deleted"
        );
        return Ok(u64::try_from(found).unwrap_or_default());
    }
    let deleted = delete_category(pool, category, days, settings.batch_size).await?;
    crate::telemetry::metrics::record_retention(category.as_str(), deleted);
    if deleted > 0 {
        tracing::info!(
            category = category.as_str(),
            days,
            rows = deleted,
            "retention: rows deleted"
        );
    }
    Ok(deleted)
}

async fn delete_category(
    pool: &PgPool,
    category: RetentionCategory,
    days: u32,
    batch: u32,
) -> Result<u64, sqlx::Error> {
    let mut deleted = 0;
    for _ in 0..MAX_BATCHES_PER_CATEGORY {
        let rows = store::delete_expired_batch(pool, category, days, batch).await?;
        deleted += rows;
        if rows < u64::from(batch) {
            return Ok(deleted);
        }
        // Let other work on this runtime in between batches.
        tokio::task::yield_now().await;
    }
    tracing::warn!(
        category = category.as_str(),
        deleted,
        "retention stopped at its batch limit; the rest goes on the next run"
    );
    Ok(deleted)
}

/// Runs today's retention if this process is the first to claim `day`; `None` when another
/// replica (or an earlier run of this one) already has.
pub async fn run_daily(
    pool: &PgPool,
    settings: &RetentionSettings,
    day: NaiveDate,
    claimed_by: &str,
) -> Result<Option<RetentionCounts>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let job = DailyJob::Retention {
        dry_run: settings.dry_run,
    };
    if !store::claim_daily_run(&mut conn, job, day, claimed_by).await? {
        return Ok(None);
    }
    drop(conn);
    let span = tracing::info_span!("retention", %day, dry_run = settings.dry_run);
    async {
        let counts = apply(pool, settings).await?;
        let summary = serde_json::to_value(&counts).unwrap_or_default();
        store::finish_daily_run(pool, job, day, &summary).await?;
        tracing::info!(counts = %summary, "retention run finished");
        Ok(Some(counts))
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(vars: &[(&str, &str)]) -> Result<RetentionSettings, SettingsError> {
        RetentionSettings::from_lookup(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn defaults_follow_the_policy() {
        let settings = parse(&[]).unwrap();
        assert_eq!(settings, RetentionSettings::default());
        assert_eq!(
            settings.days(RetentionCategory::ResolvedViolations),
            Some(90)
        );
        assert_eq!(settings.days(RetentionCategory::ClosedAlerts), Some(30));
        assert_eq!(settings.days(RetentionCategory::Evaluations), Some(365));
        assert_eq!(settings.days(RetentionCategory::RuleTrends), Some(365));
        assert!(!settings.dry_run);
    }

    #[test]
    fn variables_set_each_limit_and_zero_keeps_forever() {
        let settings = parse(&[
            ("RETENTION_WEBHOOK_PAYLOADS_DAYS", "7"),
            ("RETENTION_TRENDS_DAYS", "0"),
            ("RETENTION_BATCH_SIZE", "50"),
            ("RETENTION_DRY_RUN", "true"),
        ])
        .unwrap();
        assert_eq!(settings.days(RetentionCategory::WebhookDeliveries), Some(7));
        assert_eq!(settings.days(RetentionCategory::Evaluations), None);
        assert_eq!(settings.batch_size, 50);
        assert!(settings.dry_run);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("RETENTION_ALERT_HISTORY_DAYS", "-1"),
            ("RETENTION_BATCH_SIZE", "0"),
            ("RETENTION_DRY_RUN", "maybe"),
        ] {
            assert_eq!(parse(&[(variable, value)]).unwrap_err().variable, variable);
        }
    }
}
