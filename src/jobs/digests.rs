//! Tier 2 daily and Tier 3 weekly digests.
//!
//! Every worker process runs the scheduler: each tick, for every installation with a cached
//! config, it works out the latest digest period due (in the installation's time zone, outside
//! quiet hours) and claims it with one row in `digests` (unique per installation, tier and period
//! start), in the transaction that queues the email. Whoever claims first sends; every other
//! replica, and every later tick, finds the row and does nothing. A period below its threshold
//! is claimed too (as `below_threshold`), so it is decided once.

use super::installation_config::{CONFIG_MAX_AGE, cached_config, enqueue_refresh, in_force};
use super::notify::{EmailLinks, queue_email};
use super::{Job, JobContext, JobError};
use crate::clock::Clock;
use crate::config::AlertSettings;
use crate::notify::digest::{DigestTier, Period, due_period, local_day_start};
use crate::notify::email::{
    DailyDigestEmail, OverrideLine, PrLink, RenderedEmail, RepositoryCount, RepositoryRules,
    RuleCount, WeeklyDigestEmail, trend_words,
};
use crate::notify::links::AckSubject;
use crate::policy::PolicyEngine;
use crate::store::{self, EmailKind, NewDigest, ViolationGroup};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;

/// The most rules and repositories a weekly digest lists.
const TOP: usize = 5;

/// Every `interval` until `shutdown` turns true: queues refreshes of stale installation configs
/// and, when `digests` (email is on), runs [`tick`].
pub async fn run_scheduler(
    pool: PgPool,
    clock: Clock,
    interval: Duration,
    digests: bool,
    mut shutdown: watch::Receiver<bool>,
) {
    while !*shutdown.borrow() {
        if let Err(error) = refresh_stale_configs(&pool).await {
            tracing::error!(%error, "installation config refresh failed");
        }
        if digests && let Err(error) = tick(&pool, clock.now()).await {
            tracing::error!(%error, "digest scheduler tick failed");
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(interval) => {}
        }
    }
}

/// Queues a refresh of every installation config never read or read too long ago.
async fn refresh_stale_configs(pool: &PgPool) -> Result<(), sqlx::Error> {
    let stale = store::installations_needing_config(pool, CONFIG_MAX_AGE).await?;
    if !stale.is_empty() {
        let mut conn = pool.acquire().await?;
        for installation_id in stale {
            enqueue_refresh(&mut conn, installation_id).await?;
        }
    }
    Ok(())
}

/// Claims and queues every digest due at `now`, by the config in force (the last valid one).
pub async fn tick(pool: &PgPool, now: DateTime<Utc>) -> Result<(), sqlx::Error> {
    for cached in store::cached_installation_configs(pool).await? {
        let config = in_force(
            cached.installation_id,
            cached.content.as_deref(),
            cached.error.as_deref(),
        );
        for tier in [DigestTier::Daily, DigestTier::Weekly] {
            if let Some(period) = due_period(&config.alerts, tier, now) {
                decide(
                    pool,
                    cached.installation_id,
                    &config.alerts,
                    tier,
                    period,
                    now,
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Claims one due period and, when it is worth sending, queues its email.
async fn decide(
    pool: &PgPool,
    installation_id: i64,
    alerts: &AlertSettings,
    tier: DigestTier,
    period: Period,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let tier_name = tier.tier_name();
    if store::digest_claimed(pool, installation_id, tier_name, period.start).await? {
        return Ok(());
    }
    let groups =
        store::violation_groups(pool, installation_id, tier_name, period.start, period.end).await?;
    let count: i64 = groups.iter().map(|g| g.count).sum();
    let (recipients, threshold) = match tier {
        DigestTier::Daily => (&alerts.recipients.tier2, alerts.tier2.threshold),
        DigestTier::Weekly => (&alerts.recipients.tier3, alerts.tier3.threshold),
    };
    let status = if recipients.is_empty() {
        "no_recipients"
    } else if count < i64::from(threshold) {
        "below_threshold"
    } else if tier == DigestTier::Daily
        && tier2_cap_reached(pool, installation_id, alerts, now).await?
    {
        "capped"
    } else {
        "sending"
    };
    let mut tx = pool.begin().await?;
    let claimed = store::claim_digest(
        &mut tx,
        &NewDigest {
            installation_id,
            tier: tier_name,
            period_start: period.start,
            period_end: period.end,
            item_count: count,
            status,
        },
    )
    .await?;
    let Some(digest) = claimed else {
        return Ok(());
    };
    if status == "sending" {
        queue_email(
            &mut tx,
            installation_id,
            EmailKind::Digest,
            digest.id,
            recipients,
        )
        .await?;
        if tier == DigestTier::Daily && !alerts.recipients.escalation.is_empty() {
            let escalation = EscalateDigest {
                digest_id: digest.id,
            };
            let installation = Some(installation_id);
            super::enqueue_delayed(&mut tx, installation, &escalation, alerts.tier2_escalation)
                .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(
        installation = installation_id,
        tier = tier_name,
        count,
        status,
        "digest period decided"
    );
    Ok(())
}

/// Whether the installation already had its `max_per_day` Tier 2 emails today (local time).
async fn tier2_cap_reached(
    pool: &PgPool,
    installation_id: i64,
    alerts: &AlertSettings,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let since = local_day_start(alerts.timezone, now);
    let sent = store::tier2_emails_since(pool, installation_id, since).await?;
    Ok(sent >= i64::from(alerts.tier2.max_per_day))
}

/// The `escalate_digest` job: escalates a Tier 2 digest nobody acknowledged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EscalateDigest {
    pub digest_id: i64,
}

impl Job for EscalateDigest {
    const KIND: &'static str = "escalate_digest";
    const MAX_ATTEMPTS: i32 = super::DEFAULT_MAX_ATTEMPTS;
    const URGENT: bool = true;

    fn dedup_key(&self) -> String {
        format!("escalate-digest:{}", self.digest_id)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        escalate_digest(&ctx.handlers.pool, self.digest_id).await
    }
}

/// Escalates a Tier 2 digest nobody acknowledged within `tier2_hours`, by email to the
/// escalation recipients.
async fn escalate_digest(pool: &PgPool, digest_id: i64) -> Result<(), JobError> {
    let mut tx = pool.begin().await?;
    let Some(digest) = store::mark_digest_escalated(&mut tx, digest_id).await? else {
        tracing::info!(digest = digest_id, "digest acknowledged: no escalation");
        return Ok(());
    };
    let config = cached_config(pool, digest.installation_id).await?;
    if tier2_cap_reached(pool, digest.installation_id, &config.alerts, Utc::now()).await? {
        tracing::warn!(
            digest = digest_id,
            "Tier 2 escalation not sent: max_per_day reached"
        );
    } else {
        queue_email(
            &mut tx,
            digest.installation_id,
            EmailKind::DigestEscalation,
            digest.id,
            &config.alerts.recipients.escalation,
        )
        .await?;
    }
    store::audit(
        &mut tx,
        &store::AuditEntry {
            installation_id: digest.installation_id,
            actor: "tollgate",
            action: "digest.escalated",
            target: &format!("digest:{}", digest.id),
            before: None,
            after: Some(serde_json::json!({ "tier": digest.tier, "items": digest.item_count })),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// What a digest email shows, read when it is sent.
pub enum DigestContent {
    Daily(DailyDigestEmail),
    Weekly(WeeklyDigestEmail),
}

impl DigestContent {
    pub async fn load(
        pool: &PgPool,
        engine: &PolicyEngine,
        links: &EmailLinks,
        digest_id: i64,
        escalated: bool,
    ) -> Result<Self, JobError> {
        let digest = {
            let mut conn = pool.acquire().await?;
            store::digest(&mut conn, digest_id)
                .await?
                .ok_or_else(|| JobError::Permanent(format!("no digest {digest_id}")))?
        };
        let installation_id = digest.installation_id;
        let config = cached_config(pool, installation_id).await?;
        let organisation = store::installation_account(pool, installation_id)
            .await?
            .unwrap_or_default();
        let period_text = period_words(&config.alerts, digest.period_start, digest.period_end);
        let rule_name = |rule_id: &str| {
            rule_id
                .parse()
                .ok()
                .and_then(|id| engine.catalog().get(&id))
                .map(|rule| rule.name.clone())
                .unwrap_or_default()
        };
        let tier = DigestTier::from_tier_name(&digest.tier)
            .ok_or_else(|| JobError::Permanent(format!("digest of tier {}", digest.tier)))?;
        let groups = store::violation_groups(
            pool,
            installation_id,
            &digest.tier,
            digest.period_start,
            digest.period_end,
        )
        .await?;
        let count = groups.iter().map(|g| g.count).sum();
        match tier {
            DigestTier::Daily => {
                let overrides = store::overrides_granted(
                    pool,
                    installation_id,
                    digest.period_start,
                    digest.period_end,
                )
                .await?;
                Ok(Self::Daily(DailyDigestEmail {
                    organisation,
                    period: period_text,
                    count,
                    repositories: by_repository(&groups, links, &rule_name),
                    overrides: overrides
                        .into_iter()
                        .map(|o| OverrideLine {
                            repository: o.repository,
                            pr_number: o.pr_number,
                            rules: o.rules,
                            requested_by: o.requested_by,
                            approved_by: o.approved_by,
                            reason: o.reason,
                        })
                        .collect(),
                    dashboard_url: links.dashboard(),
                    ack_url: if digest.acknowledged_by.is_none() {
                        links.acknowledge(AckSubject::Digest(digest.id))
                    } else {
                        None
                    },
                    escalated,
                    escalation_hours: config.alerts.tier2_escalation.as_secs() / 3600,
                }))
            }
            DigestTier::Weekly => {
                let length = digest.period_end - digest.period_start;
                let previous = store::violation_groups(
                    pool,
                    installation_id,
                    &digest.tier,
                    digest.period_start - length,
                    digest.period_start,
                )
                .await?;
                let previous_count = previous.iter().map(|g| g.count).sum();
                Ok(Self::Weekly(WeeklyDigestEmail {
                    organisation,
                    period: period_text,
                    count,
                    previous_count,
                    trend: trend_words(count, previous_count),
                    top_rules: top_rules(&groups, &rule_name),
                    top_repositories: top_repositories(&groups),
                    dashboard_url: links.dashboard(),
                }))
            }
        }
    }

    pub fn render(&self) -> RenderedEmail {
        match self {
            Self::Daily(view) => view.render(),
            Self::Weekly(view) => view.render(),
        }
    }
}

/// "Mon 7 Dec 09:00 – Tue 8 Dec 09:00 (Europe/Berlin)".
fn period_words(alerts: &AlertSettings, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let tz = alerts.timezone;
    let format = "%a %-d %b %H:%M";
    format!(
        "{} – {} ({})",
        start.with_timezone(&tz).format(format),
        end.with_timezone(&tz).format(format),
        tz.name()
    )
}

fn by_repository(
    groups: &[ViolationGroup],
    links: &EmailLinks,
    rule_name: &dyn Fn(&str) -> String,
) -> Vec<RepositoryRules> {
    let mut repositories: BTreeMap<&str, Vec<RuleCount>> = BTreeMap::new();
    for group in groups {
        repositories
            .entry(group.repository.as_str())
            .or_default()
            .push(RuleCount {
                rule_id: group.rule_id.clone(),
                rule_name: rule_name(&group.rule_id),
                count: group.count,
                prs: group
                    .pr_numbers
                    .iter()
                    .map(|&number| PrLink {
                        number,
                        url: links.pull_request(&group.repository, number),
                    })
                    .collect(),
            });
    }
    repositories
        .into_iter()
        .map(|(repository, rules)| RepositoryRules {
            repository: repository.to_owned(),
            rules,
        })
        .collect()
}

fn top_rules(groups: &[ViolationGroup], rule_name: &dyn Fn(&str) -> String) -> Vec<RuleCount> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for group in groups {
        *counts.entry(group.rule_id.as_str()).or_default() += group.count;
    }
    let mut rules: Vec<(&str, i64)> = counts.into_iter().collect();
    rules.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    rules
        .into_iter()
        .take(TOP)
        .map(|(rule_id, count)| RuleCount {
            rule_id: rule_id.to_owned(),
            rule_name: rule_name(rule_id),
            count,
            prs: Vec::new(),
        })
        .collect()
}

fn top_repositories(groups: &[ViolationGroup]) -> Vec<RepositoryCount> {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for group in groups {
        *counts.entry(group.repository.as_str()).or_default() += group.count;
    }
    let mut repositories: Vec<(&str, i64)> = counts.into_iter().collect();
    repositories.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    repositories
        .into_iter()
        .take(TOP)
        .map(|(repository, count)| RepositoryCount {
            repository: repository.to_owned(),
            count,
        })
        .collect()
}
