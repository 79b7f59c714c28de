//! `/alerts/ack/{token}`: the acknowledge links of alert and digest emails. `GET` shows a page
//! asking to confirm and `POST` acknowledges, because mail scanners open links in emails by
//! themselves and must not use up a single-use link. The link is verified (signature, expiry)
//! before anything is read, and its nonce is used up in the transaction of the acknowledgement.

use crate::jobs;
use crate::notify::email::AckPage;
use crate::notify::links::{AckClaim, AckSubject, LinkSigner};
use crate::store::{self, AuditEntry};
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sqlx::PgPool;
use std::sync::Arc;

pub struct AckState {
    pub pool: PgPool,
    pub signer: LinkSigner,
}

#[derive(Deserialize)]
pub struct AckForm {
    /// Who acknowledges, as they write it (optional; the audit log says "email link" anyway).
    #[serde(default)]
    by: String,
}

pub async fn confirm(State(state): State<Arc<AckState>>, Path(token): Path<String>) -> Response {
    match state.signer.verify(&token, chrono::Utc::now()) {
        Ok(claim) => page(
            StatusCode::OK,
            "confirm",
            describe(claim.subject),
            String::new(),
        ),
        Err(error) => refused(StatusCode::FORBIDDEN, &error.to_string()),
    }
}

pub async fn acknowledge(
    State(state): State<Arc<AckState>>,
    Path(token): Path<String>,
    Form(form): Form<AckForm>,
) -> Response {
    let claim = match state.signer.verify(&token, chrono::Utc::now()) {
        Ok(claim) => claim,
        Err(error) => return refused(StatusCode::FORBIDDEN, &error.to_string()),
    };
    let by: String = form
        .by
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect();
    let by = by.trim();
    let shown_as = if by.is_empty() {
        "email link".to_owned()
    } else {
        format!("{by} (email link)")
    };
    match apply(&state.pool, &claim, &shown_as).await {
        Ok(Outcome::Done) => page(
            StatusCode::OK,
            "done",
            describe(claim.subject),
            String::new(),
        ),
        Ok(Outcome::Used) => refused(StatusCode::GONE, "This link was already used."),
        Ok(Outcome::NotOpen) => refused(
            StatusCode::CONFLICT,
            "There is nothing left to acknowledge: it was acknowledged or resolved already.",
        ),
        Err(error) => {
            tracing::error!(%error, "cannot acknowledge from an email link");
            refused(
                StatusCode::SERVICE_UNAVAILABLE,
                "Tollgate cannot record this right now; please try the link again in a minute.",
            )
        }
    }
}

enum Outcome {
    Done,
    Used,
    NotOpen,
}

async fn apply(pool: &PgPool, claim: &AckClaim, shown_as: &str) -> Result<Outcome, sqlx::Error> {
    let mut tx = pool.begin().await?;
    if !store::use_ack_nonce(&mut tx, &claim.nonce).await? {
        return Ok(Outcome::Used);
    }
    let actor = format!("email:{shown_as}");
    let done = match claim.subject {
        AckSubject::Alert(id) => jobs::acknowledge_alert(&mut tx, id, shown_as, &actor)
            .await?
            .is_some(),
        AckSubject::Digest(id) => match store::acknowledge_digest(&mut tx, id, shown_as).await? {
            Some(digest) => {
                store::audit(
                    &mut tx,
                    &AuditEntry {
                        installation_id: digest.installation_id,
                        actor: &actor,
                        action: "digest.acknowledged",
                        target: &format!("digest:{id}"),
                        before: None,
                        after: Some(serde_json::json!({ "acknowledged_by": shown_as })),
                    },
                )
                .await?;
                true
            }
            None => false,
        },
    };
    if !done {
        // Keep the nonce unused: the link did nothing.
        return Ok(Outcome::NotOpen);
    }
    tx.commit().await?;
    Ok(Outcome::Done)
}

fn describe(subject: AckSubject) -> String {
    match subject {
        AckSubject::Alert(id) => format!("Tier 1 alert #{id}"),
        AckSubject::Digest(id) => format!("Tier 2 digest #{id}"),
    }
}

fn refused(status: StatusCode, problem: &str) -> Response {
    page(status, "refused", String::new(), problem.to_owned())
}

fn page(status: StatusCode, state: &'static str, what: String, problem: String) -> Response {
    let html = AckPage {
        state,
        what,
        problem,
    }
    .render();
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}
