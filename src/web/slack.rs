//! `POST /api/slack/interactions`: Slack's button clicks and dialog submissions. The request
//! signature is verified before anything is read; the answer comes at once (Slack waits 3 seconds
//! at most), and the work a click asks for runs from the job queue. A Reject click first opens a
//! dialog asking why; its submission is the rejection.

use crate::config::Secret;
use crate::jobs::{self, SlackDecision};
use crate::notify::slack::{
    BlockAction, CALLBACK_REJECT_REASON, Interaction, RejectContext, SlackClient, TollgateAction,
    ViewSubmission, parse_interaction, reject_reason_view, verify_slack_signature,
};
use crate::overrides::RequestStatus;
use crate::store::{self, OverrideRequestRow, SlackSubject};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Slack's interaction payloads are small; anything bigger is not from Slack.
pub const MAX_INTERACTION_BYTES: usize = 1024 * 1024;

/// How long opening the reject dialog may take: Slack shows the click as failed after 3 s.
const OPEN_VIEW_TIMEOUT: Duration = Duration::from_secs(2);

pub struct SlackInteractionState {
    pub pool: PgPool,
    pub signing_secret: Secret,
    /// Opens the reject dialog.
    pub client: SlackClient,
}

pub async fn interactions(
    State(state): State<Arc<SlackInteractionState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    if let Err(error) = verify_slack_signature(
        &state.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now,
    ) {
        tracing::warn!(%error, "Slack interaction refused");
        return refuse(StatusCode::UNAUTHORIZED, &error.to_string());
    }
    let action = match parse_interaction(&body) {
        Ok(Interaction::BlockAction(action)) => action,
        Ok(Interaction::ViewSubmission(submission)) => {
            return match submitted(&state.pool, &submission).await {
                // An empty 200 closes the dialog.
                Ok(()) => StatusCode::OK.into_response(),
                Err(error) => {
                    tracing::error!(%error, "Slack dialog not recorded");
                    refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "cannot record the rejection",
                    )
                }
            };
        }
        Ok(Interaction::Unsupported(kind)) => {
            tracing::info!(kind, "Slack interaction ignored");
            return StatusCode::OK.into_response();
        }
        Err(error) => {
            tracing::warn!(%error, "malformed Slack interaction");
            return refuse(StatusCode::BAD_REQUEST, &error.to_string());
        }
    };
    match handle(&state, &action).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => {
            tracing::error!(%error, "Slack interaction not recorded");
            refuse(StatusCode::SERVICE_UNAVAILABLE, "cannot record the click")
        }
    }
}

fn refuse(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

async fn handle(state: &SlackInteractionState, action: &BlockAction) -> Result<(), sqlx::Error> {
    let pool = &state.pool;
    let (subject_id, approve) = match action.tollgate_action() {
        Ok(TollgateAction::ApproveOverride { request_id }) => (request_id, true),
        Ok(TollgateAction::RejectOverride { request_id }) => (request_id, false),
        Ok(TollgateAction::AcknowledgeAlert { alert_id }) => {
            return acknowledge(pool, alert_id, action).await;
        }
        Err(error) => {
            tracing::info!(%error, "Slack action ignored");
            return Ok(());
        }
    };
    let Some(request) = override_request(pool, subject_id).await? else {
        return Ok(());
    };
    // Only an approver is asked why, and only while there is something to decide: anyone else,
    // or a click on a decided request, is answered in private by the job, at once.
    let ask_why = !approve
        && request.status == RequestStatus::Pending.as_str()
        && request
            .settings
            .login_of_slack_user(&action.user_id)
            .is_some();
    if ask_why && open_reject_dialog(&state.client, action, subject_id).await {
        return Ok(());
    }
    // Without the dialog, a Reject click rejects without a reason.
    let decision = SlackDecision {
        request_id: subject_id,
        approve,
        slack_user_id: action.user_id.clone(),
        channel_id: action.channel_id.clone(),
        message_ts: action.message_ts.clone(),
        reason: None,
    };
    jobs::enqueue(
        &mut *pool.acquire().await?,
        Some(request.installation_id),
        &decision,
    )
    .await?;
    Ok(())
}

/// The override request a click or dialog is about; `None` (logged) when there is none. No
/// connection is kept, so none is held while Slack answers a dialog.
async fn override_request(
    pool: &PgPool,
    request_id: i64,
) -> Result<Option<OverrideRequestRow>, sqlx::Error> {
    let request = store::override_request(&mut *pool.acquire().await?, request_id).await?;
    if request.is_none() {
        tracing::warn!(
            request = request_id,
            "Slack interaction about an unknown override request"
        );
    }
    Ok(request)
}

/// Asks the approver why they reject; `false` when the dialog could not be opened.
async fn open_reject_dialog(client: &SlackClient, action: &BlockAction, request_id: i64) -> bool {
    let Some(trigger_id) = &action.trigger_id else {
        return false;
    };
    let view = reject_reason_view(&RejectContext {
        request_id,
        channel_id: action.channel_id.clone(),
        message_ts: action.message_ts.clone(),
    });
    match tokio::time::timeout(OPEN_VIEW_TIMEOUT, client.open_view(trigger_id, &view)).await {
        Ok(Ok(())) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, request = request_id, "cannot open the reject dialog: rejecting without a reason");
            false
        }
        Err(_) => {
            tracing::warn!(
                request = request_id,
                "the reject dialog took too long to open: rejecting without a reason"
            );
            false
        }
    }
}

/// A submitted reject dialog rejects its request, with the reason typed.
async fn submitted(pool: &PgPool, submission: &ViewSubmission) -> Result<(), sqlx::Error> {
    if submission.callback_id != CALLBACK_REJECT_REASON {
        tracing::info!(callback = %submission.callback_id, "Slack dialog ignored");
        return Ok(());
    }
    let Ok(context) = serde_json::from_str::<RejectContext>(&submission.private_metadata) else {
        tracing::warn!("reject dialog without its request: ignored");
        return Ok(());
    };
    let Some(request) = override_request(pool, context.request_id).await? else {
        return Ok(());
    };
    let decision = SlackDecision {
        request_id: context.request_id,
        approve: false,
        slack_user_id: submission.user_id.clone(),
        channel_id: context.channel_id,
        message_ts: context.message_ts,
        reason: submission.reason.clone(),
    };
    jobs::enqueue(
        &mut *pool.acquire().await?,
        Some(request.installation_id),
        &decision,
    )
    .await?;
    Ok(())
}

/// Anyone in the channel may acknowledge an alert: it stops the escalation.
async fn acknowledge(
    pool: &PgPool,
    alert_id: i64,
    action: &BlockAction,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    let shown_as = format!("<@{}>", action.user_id);
    let actor = format!("slack:{}", action.user_id);
    let acknowledged = jobs::acknowledge_alert(&mut tx, alert_id, &shown_as, &actor).await?;
    let message = match acknowledged {
        Some(_) => store::slack_message_of(&mut tx, SlackSubject::Alert, alert_id).await?,
        None => None,
    };
    tx.commit().await?;
    if let Some(message) = &message {
        store::record_slack_attempt(pool, message, "interaction", "acknowledged", None).await?;
    }
    Ok(())
}
