//! Failed webhook deliveries that Tollgate asked GitHub to send again.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The guids among `guids` that Tollgate neither stored (as `X-GitHub-Delivery`) nor asked to
/// have redelivered already.
pub async fn unknown_delivery_guids(
    pool: &PgPool,
    guids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT g.guid FROM unnest($1::text[]) AS g (guid)
         WHERE NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.delivery_id = g.guid)
           AND NOT EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE r.guid = g.guid)",
    )
    .bind(guids)
    .fetch_all(pool)
    .await
}

/// A redelivery about to be requested.
#[derive(Debug, Clone)]
pub struct RedeliveryClaim<'a> {
    pub guid: &'a str,
    pub hook_delivery_id: i64,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub status_code: i32,
    pub delivered_at: DateTime<Utc>,
}

/// Records that a redelivery of this delivery is being requested; `false` when it already was
/// (by an earlier run, or by another process right now), so it is requested at most once.
pub async fn claim_redelivery(
    pool: &PgPool,
    claim: &RedeliveryClaim<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_redeliveries
             (guid, hook_delivery_id, event, action, status_code, delivered_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (guid) DO NOTHING",
    )
    .bind(claim.guid)
    .bind(claim.hook_delivery_id)
    .bind(claim.event)
    .bind(claim.action)
    .bind(claim.status_code)
    .bind(claim.delivered_at)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// Records how GitHub answered the request (`requested`, or its error).
pub async fn set_redelivery_outcome(
    pool: &PgPool,
    guid: &str,
    outcome: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE webhook_redeliveries SET outcome = $2 WHERE guid = $1")
        .bind(guid)
        .bind(outcome)
        .execute(pool)
        .await?;
    Ok(())
}

/// Forgets a claim whose request failed for a passing reason, so a later run asks again.
pub async fn release_redelivery(pool: &PgPool, guid: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM webhook_redeliveries WHERE guid = $1")
        .bind(guid)
        .execute(pool)
        .await?;
    Ok(())
}
