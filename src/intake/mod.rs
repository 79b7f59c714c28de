//! `POST /api/github/webhooks`: verify, store durably, enqueue, answer at once. No GitHub call is
//! made here; everything after the answer runs from the job queue.

mod batch;
mod signature;

pub use batch::{IntakeWriter, MAX_BATCH, OwnedDelivery, WriteError, Written};

pub use signature::{SignatureError, sign, verify_signature};

use crate::config::Secret;
use crate::github::events::{self, Routed, RoutingPolicy};
use crate::github::server;
use crate::jobs::{
    self, ClosePullRequest, EvaluateMergeGroup, EvaluatePullRequest, HandleCommand, NewJob,
    RecordMergeQueue,
};
use crate::store::{self, DeliveryRecord, DeliveryStatus};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::PgPool;
use std::borrow::Cow;
use std::sync::Arc;
use tracing::Instrument;

/// GitHub caps webhook payloads at 25 MB.
pub const MAX_BODY_BYTES: usize = 25 * 1024 * 1024;

pub struct IntakeState {
    pub pool: PgPool,
    pub secrets: Vec<Secret>,
    pub routing: RoutingPolicy,
    /// Writes deliveries in groups (see [`batch`]).
    pub writer: IntakeWriter,
}

/// Why a delivery was refused.
#[derive(Debug, thiserror::Error)]
enum IntakeError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("missing {0} header")]
    MissingHeader(&'static str),
    #[error("malformed payload: {0}")]
    Malformed(String),
    #[error("cannot store the delivery")]
    Store(#[from] sqlx::Error),
    #[error("cannot store the delivery")]
    Write(#[from] WriteError),
}

impl IntoResponse for IntakeError {
    fn into_response(self) -> Response {
        let status = match &self {
            IntakeError::Signature(_) => StatusCode::UNAUTHORIZED,
            IntakeError::MissingHeader(_) | IntakeError::Malformed(_) => StatusCode::BAD_REQUEST,
            // GitHub shows the failure and the delivery can be redelivered.
            IntakeError::Store(_) | IntakeError::Write(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub async fn receive(
    State(state): State<Arc<IntakeState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let delivery_id = header_str(&headers, "x-github-delivery")
        .unwrap_or("-")
        .to_owned();
    let event = header_str(&headers, "x-github-event")
        .unwrap_or("-")
        .to_owned();
    // Installation, repository and pull request are filled in once the payload is routed.
    let span = tracing::info_span!(
        "delivery",
        delivery_id = %delivery_id,
        event = %event,
        installation = tracing::field::Empty,
        repository = tracing::field::Empty,
        pr = tracing::field::Empty,
    );
    async move {
        let (response, outcome) = match accept(&state, &headers, &body).await {
            Ok(answered) => answered,
            Err(error) => {
                let outcome = match &error {
                    IntakeError::Store(e) => {
                        tracing::error!(error = %e, "delivery not stored");
                        "store_failed"
                    }
                    IntakeError::Write(e) => {
                        tracing::error!(error = %e, "delivery not stored");
                        "store_failed"
                    }
                    IntakeError::Signature(_) => {
                        tracing::warn!(error = %error, "delivery refused");
                        "unauthorized"
                    }
                    other => {
                        tracing::warn!(error = %other, "delivery refused");
                        "malformed"
                    }
                };
                (error.into_response(), outcome)
            }
        };
        crate::telemetry::metrics::record_delivery(&event, outcome, started.elapsed());
        response
    }
    .instrument(span)
    .await
}

/// Names the delivery's installation, repository and pull request on the current span, so every
/// line logged for it carries them.
fn record_context(installation_id: Option<i64>, routed: &Routed) {
    let span = tracing::Span::current();
    if let Some(installation) = installation_id {
        span.record("installation", installation);
    }
    let target = match routed {
        Routed::Evaluate(targets) => targets.first(),
        Routed::Command(command) => Some(&command.target),
        Routed::PullRequestClosed(target) => Some(target),
        _ => None,
    };
    if let Some(target) = target {
        span.record("repository", target.repo.full_name().as_str());
        span.record("pr", target.number);
    }
}

/// Answers a delivery, with the outcome the metrics count it under.
async fn accept(
    state: &IntakeState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Response, &'static str), IntakeError> {
    // The signature covers the raw body: verify before parsing anything.
    verify_signature(
        &state.secrets,
        header_str(headers, "x-hub-signature-256"),
        body,
    )?;
    let delivery_id = header_str(headers, "x-github-delivery")
        .ok_or(IntakeError::MissingHeader("X-GitHub-Delivery"))?;
    let event = header_str(headers, "x-github-event")
        .ok_or(IntakeError::MissingHeader("X-GitHub-Event"))?;
    let payload_json = payload_text(header_str(headers, header::CONTENT_TYPE.as_str()), body)?;
    let payload: serde_json::Value =
        serde_json::from_str(&payload_json).map_err(|e| IntakeError::Malformed(e.to_string()))?;
    // Read what the delivery row records before routing consumes the payload.
    let action = events::action_of(&payload);
    let installation_id = events::installation_of(&payload);
    if let Some(version) = header_str(headers, server::ENTERPRISE_VERSION_HEADER) {
        server::observe_enterprise_version(version);
    }
    let routed = events::route(event, payload, state.routing)
        .map_err(|e| IntakeError::Malformed(e.to_string()))?;
    let routed = match (routed, server::current()) {
        (Routed::EvaluateMergeGroup(_), Some(server)) if !server.merge_queue() => {
            Routed::Ignored(format!("merge queues are off: {server} has none"))
        }
        (routed, _) => routed,
    };
    record_context(installation_id, &routed);

    let (status, ignored_reason) = match &routed {
        Routed::Ping | Routed::Installation(_) => (DeliveryStatus::Processed, None),
        Routed::Evaluate(_)
        | Routed::Command(_)
        | Routed::PullRequestClosed(_)
        | Routed::EvaluateMergeGroup(_)
        | Routed::MergeQueue(_) => (DeliveryStatus::Queued, None),
        Routed::Ignored(reason) => (DeliveryStatus::Ignored, Some(reason.as_str())),
    };
    let new = match &routed {
        // Rare, and written together with the tenant's rows: a transaction of its own.
        Routed::Installation(change) => {
            let record = DeliveryRecord {
                delivery_id,
                event,
                action: action.as_deref(),
                installation_id,
                status,
                ignored_reason,
                payload_json: &payload_json,
            };
            let mut tx = state.pool.begin().await?;
            let new = store::record_delivery(&mut tx, &record).await?;
            if new {
                store::apply_installation_change(&mut tx, change).await?;
            }
            tx.commit().await?;
            new
        }
        Routed::Evaluate(_)
        | Routed::Command(_)
        | Routed::PullRequestClosed(_)
        | Routed::EvaluateMergeGroup(_)
        | Routed::MergeQueue(_)
        | Routed::Ping
        | Routed::Ignored(_) => {
            let jobs = jobs_of(&routed)?;
            let delivery = OwnedDelivery {
                delivery_id: delivery_id.to_owned(),
                event: event.to_owned(),
                action: action.clone(),
                installation_id,
                status,
                ignored_reason: ignored_reason.map(str::to_owned),
                payload_json: payload_json.into_owned(),
            };
            state.writer.write(delivery, jobs).await? == Written::New
        }
    };
    if !new {
        tracing::info!(event, "duplicate delivery: already recorded");
        let response = (StatusCode::OK, Json(json!({ "status": "duplicate" }))).into_response();
        return Ok((response, "duplicate"));
    }
    tracing::info!(
        event,
        action = action.as_deref().unwrap_or("-"),
        ?status,
        "delivery stored"
    );
    Ok(match routed {
        Routed::Ping => (
            (StatusCode::OK, Json(json!({ "status": "pong" }))).into_response(),
            "pong",
        ),
        Routed::Ignored(reason) => (
            (
                StatusCode::ACCEPTED,
                Json(json!({ "status": "ignored", "reason": reason })),
            )
                .into_response(),
            "ignored",
        ),
        Routed::Evaluate(_)
        | Routed::Command(_)
        | Routed::PullRequestClosed(_)
        | Routed::EvaluateMergeGroup(_)
        | Routed::MergeQueue(_)
        | Routed::Installation(_) => (
            (StatusCode::ACCEPTED, Json(json!({ "status": "accepted" }))).into_response(),
            "accepted",
        ),
    })
}

/// The jobs a routed delivery queues.
fn jobs_of(routed: &Routed) -> Result<Vec<NewJob>, sqlx::Error> {
    match routed {
        Routed::Evaluate(targets) => targets
            .iter()
            .map(|target| {
                let job = EvaluatePullRequest {
                    target: target.clone(),
                };
                jobs::new_job(Some(target.installation_id), &job)
            })
            .collect(),
        Routed::Command(command) => {
            let installation = Some(command.target.installation_id);
            let job = HandleCommand {
                command: command.clone(),
            };
            Ok(vec![jobs::new_job(installation, &job)?])
        }
        Routed::PullRequestClosed(target) => {
            let job = ClosePullRequest {
                target: target.clone(),
            };
            Ok(vec![jobs::new_job(Some(target.installation_id), &job)?])
        }
        Routed::EvaluateMergeGroup(group) => {
            let job = EvaluateMergeGroup {
                group: group.clone(),
            };
            Ok(vec![jobs::new_job(Some(group.installation_id), &job)?])
        }
        Routed::MergeQueue(change) => {
            let job = RecordMergeQueue {
                change: change.clone(),
            };
            Ok(vec![jobs::new_job(Some(job.installation_id()), &job)?])
        }
        Routed::Ping | Routed::Installation(_) | Routed::Ignored(_) => Ok(Vec::new()),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The payload's JSON text: GitHub sends it either as the body or form-encoded in a `payload`
/// field. The delivery row stores this text as received, so the parsed value is never
/// serialized again.
fn payload_text<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
) -> Result<Cow<'a, str>, IntakeError> {
    let is_form =
        content_type.is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        form_urlencoded::parse(body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value)
            .ok_or_else(|| IntakeError::Malformed("form body without a payload field".to_owned()))
    } else {
        std::str::from_utf8(body)
            .map(Cow::Borrowed)
            .map_err(|e| IntakeError::Malformed(format!("the body is not UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    #[test]
    fn a_json_body_is_its_own_payload_text_without_a_copy() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let text = payload_text(Some("application/json"), body).unwrap();
        assert!(matches!(text, Cow::Borrowed(_)));
        assert_eq!(text.as_bytes(), body);
        assert_eq!(payload_text(None, body).unwrap().as_bytes(), body);
    }

    #[test]
    fn a_form_body_yields_its_decoded_payload_field() {
        let body = b"other=1&payload=%7B%22action%22%3A%22opened%22%7D";
        assert_eq!(payload_text(FORM, body).unwrap(), r#"{"action":"opened"}"#);
    }

    #[test]
    fn a_form_without_payload_or_a_body_that_is_not_utf8_is_malformed() {
        assert!(matches!(
            payload_text(FORM, b"other=1"),
            Err(IntakeError::Malformed(_))
        ));
        assert!(matches!(
            payload_text(Some("application/json"), b"{\"a\": \"\xff\"}"),
            Err(IntakeError::Malformed(_))
        ));
    }
}
