//! Webhook deliveries: stored before the app answers, so nothing GitHub sent is lost.

use sqlx::PgConnection;

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
    /// The payload's JSON text as received: PostgreSQL parses it into `jsonb` itself, so the
    /// intake never serializes its parsed copy again.
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
         VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
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
