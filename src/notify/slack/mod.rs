//! The Slack edge: a Web API client, the Block Kit messages, and the verification and parsing of
//! the button clicks Slack sends back.
//!
//! The client is a thin layer over `reqwest` (rustls, on the process's ring provider) rather than
//! slack-morphism: Tollgate calls three Web API methods with JSON bodies, so a typed SDK would
//! bring a second HTTP stack setup (its hyper-rustls connector must be built with
//! `https_or_http()` to reach a local fake) and many generated types for little code saved, while
//! `reqwest` is already in the dependency tree and the request signature is a few lines over
//! `hmac`, shared with GitHub's webhook check.
//!
//! Everything but [`SlackClient`] is pure.

mod client;
mod interaction;
mod message;
mod signature;
mod templates;

pub use client::{DEFAULT_SLACK_API_URL, OutgoingMessage, PostedMessage, SlackClient, SlackError};
pub use interaction::{
    ACTION_ACKNOWLEDGE_ALERT, ACTION_APPROVE_OVERRIDE, ACTION_REJECT_OVERRIDE, BlockAction,
    Interaction, InteractionError, TollgateAction, parse_interaction,
};
pub use message::{
    AlertState, AlertView, MAX_VIOLATIONS_SHOWN, OverrideRequestView, PrSummary, RequestState,
    SlackMessage, ViolationLine, alert_message, escalation_message, override_request_message,
    thread_note,
};
pub use signature::{
    MAX_TIMESTAMP_SKEW_SECONDS, SlackSignatureError, sign_slack_request, verify_slack_signature,
};
