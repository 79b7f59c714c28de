//! The Slack edge: a Web API client, the Block Kit messages, and the verification and parsing of
//! the button clicks Slack sends back.
//!
//! The client is a thin layer over `reqwest` (rustls on the ring provider with the system's
//! roots, the TLS stack octocrab already uses) rather than slack-morphism. Tollgate calls six
//! Web API methods with small JSON bodies or query strings; slack-morphism would add its own hyper client set-up
//! (an `https_or_http()` connector only to reach the local fake) and a large typed API to save a
//! few dozen lines, while `reqwest` was already in the lock file and adds no crate. The request
//! signature needs no SDK either: it is the intake's HMAC-SHA256 over Slack's base string.
//!
//! Everything but [`SlackClient`] is pure.

mod client;
mod interaction;
mod message;
mod signature;
mod templates;

pub use client::{
    DEFAULT_SLACK_API_URL, Lookup, MESSAGE_METADATA_EVENT_TYPE, MessageKey, OutgoingMessage,
    PostedMessage, SlackClient, SlackError,
};
pub use interaction::{
    ACTION_ACKNOWLEDGE_ALERT, ACTION_APPROVE_OVERRIDE, ACTION_REJECT_OVERRIDE, BlockAction,
    CALLBACK_REJECT_REASON, Interaction, InteractionError, RejectContext, TollgateAction,
    ViewSubmission, parse_interaction, reject_reason_view,
};
pub use message::{
    AlertState, AlertView, MAX_VIOLATIONS_SHOWN, OverrideRequestView, PrSummary, RequestState,
    SlackMessage, ViolationLine, alert_message, escalation_message, override_request_message,
    thread_note,
};
pub use signature::{
    MAX_TIMESTAMP_SKEW_SECONDS, SlackSignatureError, sign_slack_request, verify_slack_signature,
};
