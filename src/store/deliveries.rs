//! Webhook deliveries: stored before the app answers, so nothing GitHub sent is lost.

use crate::jobs::{JOBS_CHANNEL, NewJob};
use sqlx::{PgConnection, PgPool};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// A job was enqueued for it in the same transaction.
    Queued,
    Ignored,
    /// Handled inside the request (ping).
    Processed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Queued => "queued",
            DeliveryStatus::Ignored => "ignored",
            DeliveryStatus::Processed => "processed",
        }
    }
}

pub struct DeliveryRecord<'a> {
    pub delivery_id: &'a str,
    pub event: &'a str,
    pub action: Option<&'a str>,
    pub installation_id: Option<i64>,
    pub status: DeliveryStatus,
    pub ignored_reason: Option<&'a str>,
    /// The payload's JSON text as received, stored as text (migration 0011): the intake has
    /// parsed it already, so it is neither serialized again nor checked again by PostgreSQL.
    pub payload_json: &'a str,
}

/// Records a delivery; `false` when this delivery id was already recorded (a redelivery).
pub async fn record_delivery(
    conn: &mut PgConnection,
    delivery: &DeliveryRecord<'_>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO webhook_deliveries
             (delivery_id, event, action, installation_id, status, ignored_reason, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(delivery.delivery_id)
    .bind(delivery.event)
    .bind(delivery.action)
    .bind(delivery.installation_id)
    .bind(delivery.status.as_str())
    .bind(delivery.ignored_reason)
    .bind(delivery.payload_json)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// A delivery and the jobs it queues, written together by [`record_deliveries`].
pub struct DeliveryWithJobs<'a> {
    pub delivery: DeliveryRecord<'a>,
    pub jobs: &'a [NewJob],
}

/// Records several deliveries and queues their jobs in one statement, so one commit (one WAL
/// flush) makes them all durable. Returns, for each delivery in order, whether it was new; the
/// jobs of a delivery that was already recorded are not queued again. Jobs with one dedup key
/// coalesce as [`crate::jobs::enqueue`] does, the last one in the batch giving the payload, and
/// idle workers are woken once when a job became ready. The delivery ids must be distinct.
pub async fn record_deliveries(
    pool: &PgPool,
    batch: &[DeliveryWithJobs<'_>],
) -> Result<Vec<bool>, sqlx::Error> {
    let mut ids = Vec::with_capacity(batch.len());
    let (mut events, mut actions, mut installations) = (Vec::new(), Vec::new(), Vec::new());
    let (mut statuses, mut reasons, mut payloads) = (Vec::new(), Vec::new(), Vec::new());
    let (mut job_deliveries, mut kinds, mut job_payloads) = (Vec::new(), Vec::new(), Vec::new());
    let (mut job_installations, mut keys, mut attempts, mut order) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for item in batch {
        let d = &item.delivery;
        ids.push(d.delivery_id);
        events.push(d.event);
        actions.push(d.action);
        installations.push(d.installation_id);
        statuses.push(d.status.as_str());
        reasons.push(d.ignored_reason);
        payloads.push(d.payload_json);
        for job in item.jobs {
            job_deliveries.push(d.delivery_id);
            kinds.push(job.kind);
            job_payloads.push(job.payload.to_string());
            job_installations.push(job.installation_id);
            keys.push(job.dedup_key.as_str());
            attempts.push(job.max_attempts);
            order.push(i32::try_from(order.len()).unwrap_or(i32::MAX));
        }
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "WITH inserted AS (
             INSERT INTO webhook_deliveries
                 (delivery_id, event, action, installation_id, status, ignored_reason, payload)
             SELECT d.delivery_id, d.event, d.action, d.installation_id, d.status,
                    d.ignored_reason, d.payload
             FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],
                         $7::text[])
                  AS d (delivery_id, event, action, installation_id, status, ignored_reason,
                        payload)
             ON CONFLICT (delivery_id) DO NOTHING
             RETURNING delivery_id
         ), job_input AS (
             SELECT DISTINCT ON (j.dedup_key) j.*
             FROM unnest($8::text[], $9::text[], $10::text[], $11::int8[], $12::text[],
                         $13::int4[], $14::int4[])
                  AS j (delivery_id, kind, payload, installation_id, dedup_key, max_attempts, ord)
             WHERE j.delivery_id IN (SELECT delivery_id FROM inserted)
             ORDER BY j.dedup_key, j.ord DESC
         ), previous AS (
             SELECT dedup_key, run_at FROM jobs
             WHERE state = 'pending' AND dedup_key IN (SELECT dedup_key FROM job_input)
         ), upserted AS (
             INSERT INTO jobs (kind, payload, installation_id, dedup_key, max_attempts)
             SELECT kind, payload::jsonb, installation_id, dedup_key, max_attempts FROM job_input
             ON CONFLICT (dedup_key) WHERE state = 'pending'
             DO UPDATE SET payload = EXCLUDED.payload, run_at = LEAST(jobs.run_at, now())
             RETURNING dedup_key, (xmax = 0) AS inserted
         ), woken AS (
             SELECT pg_notify($15, '')
             WHERE EXISTS (SELECT 1 FROM upserted u
                           WHERE u.inserted
                              OR EXISTS (SELECT 1 FROM previous p
                                         WHERE p.dedup_key = u.dedup_key AND p.run_at > now()))
         )
         SELECT delivery_id FROM inserted WHERE (SELECT count(*) FROM woken) >= 0",
    )
    .bind(&ids)
    .bind(&events)
    .bind(&actions)
    .bind(&installations)
    .bind(&statuses)
    .bind(&reasons)
    .bind(&payloads)
    .bind(&job_deliveries)
    .bind(&kinds)
    .bind(&job_payloads)
    .bind(&job_installations)
    .bind(&keys)
    .bind(&attempts)
    .bind(&order)
    .bind(JOBS_CHANNEL)
    .fetch_all(pool)
    .await?;
    Ok(ids
        .iter()
        .map(|id| inserted.iter().any(|new| new == id))
        .collect())
}
