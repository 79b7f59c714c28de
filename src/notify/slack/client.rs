//! A thin client for the Slack Web API methods Tollgate calls: `chat.postMessage`, `chat.update`,
//! `chat.postEphemeral` and `views.open`, and `conversations.history` / `conversations.replies`
//! to find a message an earlier attempt posted.
//!
//! Each call is one attempt: the job that makes it retries, with its own back-off, when
//! [`SlackError::is_retryable`] says so (waiting at least [`SlackError::retry_after`]), and finds
//! the message it already posted by the `ts` it stored or, when an attempt died before storing
//! it, by the [`MessageKey`] the message carries in its metadata.

use super::message::SlackMessage;
use crate::config::Secret;
use crate::outbound::Trust;
use chrono::{DateTime, Utc};
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Slack's Web API root; `SLACK_API_URL` replaces it (tests point it at a fake).
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";

/// Upper bound for one call, connection and answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack warns (`missing_charset`) about JSON bodies without a charset.
const JSON_UTF8: &str = "application/json; charset=utf-8";

/// `ok: false` codes that describe a passing condition on Slack's side.
const RETRYABLE_API_ERRORS: [&str; 4] = [
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
];
/// The `ok: false` code of a rate-limited call; Slack usually answers 429 instead.
const RATE_LIMITED_API_ERROR: &str = "ratelimited";
/// The `ok: false` code of a call the token has no scope for (Slack says which in `needed`).
const MISSING_SCOPE_API_ERROR: &str = "missing_scope";

/// The `event_type` of the metadata every posted message carries.
pub const MESSAGE_METADATA_EVENT_TYPE: &str = "tollgate_message";
/// Messages asked for per page of a lookup (Slack allows up to 999 for history, 1000 for
/// replies, and recommends at most 200).
const LOOKUP_PAGE_SIZE: &str = "200";
/// Pages read before a lookup gives up: a message posted since the lookup's start time is among
/// the newest 1,000 of its channel unless the channel is very busy.
const MAX_LOOKUP_PAGES: usize = 5;

/// An error from a Slack Web API call. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackError {
    /// HTTP 429, or `ok: false` with `ratelimited`; `retry_after` is Slack's `Retry-After`.
    #[error("Slack: rate limited{}", wait_text(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("Slack: server error {status}")]
    Server { status: u16 },
    #[error("Slack: request timed out")]
    Timeout,
    #[error("Slack: transport error: {message}")]
    Transport { message: String },
    /// Slack answered `{"ok": false, "error": code}`. `detail` holds Slack's explanations
    /// (`response_metadata.messages`, e.g. which block is invalid), when it gave any.
    #[error("Slack: {method} failed: {code}{}", detail_text(.detail))]
    Api {
        method: String,
        code: String,
        detail: Option<String>,
    },
    /// An HTTP status Slack does not use for API errors (a 404 for an unknown method, a proxy's
    /// 403, ...).
    #[error("Slack: {method} answered HTTP {status}")]
    Status { method: String, status: u16 },
    /// A 2xx answer that is not the JSON Slack documents.
    #[error("Slack: cannot read the answer to {method}: {message}")]
    InvalidResponse { method: String, message: String },
    /// The client could not be set up.
    #[error("Slack client configuration: {message}")]
    Config { message: String },
}

fn wait_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(", retry after {} s", wait.as_secs()),
        None => String::new(),
    }
}

fn detail_text(detail: &Option<String>) -> String {
    match detail {
        Some(detail) => format!(" ({detail})"),
        None => String::new(),
    }
}

impl SlackError {
    /// Whether the same call may succeed later: rate limits, 5xx, timeouts, broken connections
    /// and the `ok: false` codes Slack uses for its own trouble. Everything else (`invalid_auth`,
    /// `channel_not_found`, `not_in_channel`, `invalid_blocks`, ...) needs a person to act.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited { .. }
            | Self::Server { .. }
            | Self::Timeout
            | Self::Transport { .. } => true,
            Self::Api { code, .. } => RETRYABLE_API_ERRORS.contains(&code.as_str()),
            Self::Status { .. } | Self::InvalidResponse { .. } | Self::Config { .. } => false,
        }
    }

    /// Whether Slack refused the call because the token lacks a scope (Slack's `missing_scope`).
    pub fn is_missing_scope(&self) -> bool {
        matches!(self, Self::Api { code, .. } if code == MISSING_SCOPE_API_ERROR)
    }

    /// How long Slack asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }

    fn from_transport(error: &reqwest::Error) -> SlackError {
        if error.is_timeout() {
            return SlackError::Timeout;
        }
        let mut message = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            message = message + ": " + &cause.to_string();
            source = cause.source();
        }
        SlackError::Transport { message }
    }
}

/// The key a posted message carries in its metadata (`event_payload.key`), unique per message
/// Tollgate sends, so that a retry can find a message an earlier attempt posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageKey(String);

impl MessageKey {
    /// The key of the message recorded as row `id` of `slack_messages`.
    pub fn of_message(id: i64) -> MessageKey {
        MessageKey(format!("tollgate-slack-message-{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message to post: where, optionally as a reply in the thread of the message `thread_ts`, and
/// what, under which key.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    /// A channel id (`C0123ABC`); a name also works for posting, but `chat.update` and the
    /// lookups need the id that [`PostedMessage::channel`] returns.
    pub channel: String,
    pub thread_ts: Option<String>,
    pub key: MessageKey,
    pub message: SlackMessage,
}

/// Where to look for a message an earlier attempt may have posted: in the channel, or in the
/// replies of the thread `thread_ts`, among the messages posted after `oldest`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lookup<'a> {
    /// A channel id: Slack's read methods do not take names.
    pub channel: &'a str,
    pub thread_ts: Option<&'a str>,
    pub oldest: DateTime<Utc>,
    pub key: &'a MessageKey,
}

/// Where a posted message lives: store both to update it or reply in its thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedMessage {
    /// The channel id, even when the message was posted by channel name.
    pub channel: String,
    pub ts: String,
}

/// The Slack Web API, authenticated with the bot token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SlackClient {
    http: reqwest::Client,
    /// Without a trailing slash; method names are appended.
    api_url: String,
    token: Secret,
}

#[derive(Serialize)]
struct PostMessageRequest<'a> {
    channel: &'a str,
    text: &'a str,
    blocks: &'a serde_json::Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
    metadata: KeyMetadata<'a>,
}

/// Slack's message metadata as Tollgate writes it (hidden from people, returned by the read
/// methods with `include_all_metadata`).
#[derive(Serialize)]
struct KeyMetadata<'a> {
    event_type: &'a str,
    event_payload: KeyPayload<'a>,
}

#[derive(Serialize)]
struct KeyPayload<'a> {
    key: &'a str,
}

#[derive(Serialize)]
struct UpdateRequest<'a> {
    channel: &'a str,
    ts: &'a str,
    text: &'a str,
    blocks: &'a serde_json::Value,
}

#[derive(Serialize)]
struct EphemeralRequest<'a> {
    channel: &'a str,
    user: &'a str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thread_ts: Option<&'a str>,
}

/// The fields of Slack's answers that Tollgate reads; the rest is ignored.
#[derive(Deserialize)]
struct Answer {
    ok: bool,
    error: Option<String>,
    channel: Option<String>,
    ts: Option<String>,
    /// The scope a `missing_scope` call needed.
    needed: Option<String>,
    /// The page of a history or replies call.
    #[serde(default)]
    messages: Vec<ListedMessage>,
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    messages: Vec<String>,
    /// The cursor of a history or replies call's next page; empty or absent on the last.
    next_cursor: Option<String>,
}

/// A message of a history or replies page: its `ts` and metadata.
#[derive(Deserialize)]
struct ListedMessage {
    ts: String,
    metadata: Option<ListedMetadata>,
}

#[derive(Deserialize)]
struct ListedMetadata {
    event_type: String,
    event_payload: serde_json::Value,
}

impl ListedMessage {
    fn has_key(&self, key: &MessageKey) -> bool {
        self.metadata.as_ref().is_some_and(|metadata| {
            metadata.event_type == MESSAGE_METADATA_EVENT_TYPE
                && metadata.event_payload.get("key").and_then(|k| k.as_str()) == Some(key.as_str())
        })
    }
}

impl SlackClient {
    /// A client for the Web API at `api_url` (`https://slack.com/api`, or a fake's
    /// `http://127.0.0.1:PORT/api`).
    pub fn new(api_url: &str, token: Secret, trust: &Trust) -> Result<SlackClient, SlackError> {
        if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
            return Err(SlackError::Config {
                message: format!("the Slack API URL {api_url:?} is not an http(s) URL"),
            });
        }
        let http = trust
            .http_client()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| SlackError::Config {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(SlackClient {
            http,
            api_url: api_url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// `chat.postMessage`: posts to the channel, or in a thread when `thread_ts` is set.
    pub async fn post_message(
        &self,
        message: &OutgoingMessage,
    ) -> Result<PostedMessage, SlackError> {
        const METHOD: &str = "chat.postMessage";
        let answer = self
            .call(
                METHOD,
                &PostMessageRequest {
                    channel: &message.channel,
                    text: &message.message.text,
                    blocks: &message.message.blocks,
                    thread_ts: message.thread_ts.as_deref(),
                    metadata: KeyMetadata {
                        event_type: MESSAGE_METADATA_EVENT_TYPE,
                        event_payload: KeyPayload {
                            key: message.key.as_str(),
                        },
                    },
                },
            )
            .await?;
        match (answer.channel, answer.ts) {
            (Some(channel), Some(ts)) => Ok(PostedMessage { channel, ts }),
            _ => Err(SlackError::InvalidResponse {
                method: METHOD.to_owned(),
                message: "no channel or ts in the answer".to_owned(),
            }),
        }
    }

    /// `chat.update`: replaces the text and blocks of the message `ts` in `channel` (an id).
    pub async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        message: &SlackMessage,
    ) -> Result<(), SlackError> {
        let request = UpdateRequest {
            channel,
            ts,
            text: &message.text,
            blocks: &message.blocks,
        };
        self.call("chat.update", &request).await.map(drop)
    }

    /// `chat.postEphemeral`: a message only `user` sees, in `channel` (or one of its threads).
    /// The text is shown as mrkdwn: escape what it quotes.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<(), SlackError> {
        let request = EphemeralRequest {
            channel,
            user,
            text,
            thread_ts,
        };
        self.call("chat.postEphemeral", &request).await.map(drop)
    }

    /// `views.open`: shows `view` (a modal) to the user whose click gave `trigger_id`, which
    /// Slack accepts for 3 seconds after the click.
    pub async fn open_view(
        &self,
        trigger_id: &str,
        view: &serde_json::Value,
    ) -> Result<(), SlackError> {
        let request = serde_json::json!({ "trigger_id": trigger_id, "view": view });
        self.call("views.open", &request).await.map(drop)
    }

    /// The `ts` of the message carrying `lookup.key` among those posted after `lookup.oldest`, in
    /// the channel's history (`conversations.history`) or the thread's replies
    /// (`conversations.replies`); `None` when it is not in the newest pages read. Needs the
    /// `channels:history` scope (`groups:history` for a private channel).
    pub async fn find_message(&self, lookup: &Lookup<'_>) -> Result<Option<String>, SlackError> {
        let method = match lookup.thread_ts {
            Some(_) => "conversations.replies",
            None => "conversations.history",
        };
        let oldest = slack_timestamp(lookup.oldest);
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LOOKUP_PAGES {
            let mut query = vec![
                ("channel", lookup.channel),
                ("oldest", oldest.as_str()),
                ("include_all_metadata", "true"),
                ("limit", LOOKUP_PAGE_SIZE),
            ];
            if let Some(thread_ts) = lookup.thread_ts {
                query.push(("ts", thread_ts));
            }
            if let Some(cursor) = &cursor {
                query.push(("cursor", cursor));
            }
            let answer = self.read(method, &query).await?;
            if let Some(found) = answer.messages.iter().find(|m| m.has_key(lookup.key)) {
                return Ok(Some(found.ts.clone()));
            }
            cursor = answer
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(None)
    }

    /// A write method, with a JSON body.
    async fn call(&self, method: &str, request: &impl Serialize) -> Result<Answer, SlackError> {
        let body = serde_json::to_vec(request).map_err(|e| SlackError::Config {
            message: format!("cannot encode the {method} request: {e}"),
        })?;
        let request = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .header(CONTENT_TYPE, JSON_UTF8)
            .body(body);
        self.send(method, request).await
    }

    /// A read method, with its arguments in the query string (read methods take no JSON body).
    async fn read(&self, method: &str, query: &[(&str, &str)]) -> Result<Answer, SlackError> {
        let request = self
            .http
            .get(format!("{}/{method}", self.api_url))
            .query(query);
        self.send(method, request).await
    }

    async fn send(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, SlackError> {
        let response = request
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
            .send()
            .await
            .map_err(|e| SlackError::from_transport(&e))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .map_err(|e| SlackError::from_transport(&e))?;
        read_answer(method, status, &headers, &body)
    }
}

/// A time as Slack writes message timestamps: Unix seconds and microseconds.
fn slack_timestamp(time: DateTime<Utc>) -> String {
    format!("{}.{:06}", time.timestamp(), time.timestamp_subsec_micros())
}

/// Classifies Slack's answer to `method`: Slack reports API errors as HTTP 200 with
/// `ok: false`, rate limits as 429 with `Retry-After` seconds.
fn read_answer(
    method: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Answer, SlackError> {
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs)
    };
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Err(SlackError::RateLimited {
            retry_after: retry_after(),
        });
    }
    if status.is_server_error() {
        return Err(SlackError::Server {
            status: status.as_u16(),
        });
    }
    if !status.is_success() {
        return Err(SlackError::Status {
            method: method.to_owned(),
            status: status.as_u16(),
        });
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|e| SlackError::InvalidResponse {
        method: method.to_owned(),
        message: e.to_string(),
    })?;
    if answer.ok {
        return Ok(answer);
    }
    let code = answer.error.unwrap_or_else(|| "unknown_error".to_owned());
    if code == RATE_LIMITED_API_ERROR {
        return Err(SlackError::RateLimited {
            retry_after: retry_after(),
        });
    }
    let explanations = answer
        .response_metadata
        .map(|m| m.messages)
        .unwrap_or_default();
    let needed = answer
        .needed
        .map(|scope| format!("needs the scope {scope}"));
    let detail = Some(
        needed
            .into_iter()
            .chain(explanations)
            .collect::<Vec<_>>()
            .join("; "),
    )
    .filter(|d| !d.is_empty());
    Err(SlackError::Api {
        method: method.to_owned(),
        code,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn classify(status: u16, retry_after: Option<&str>, body: &str) -> Result<(), SlackError> {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        }
        let status = StatusCode::from_u16(status).unwrap();
        read_answer("chat.postMessage", status, &headers, body.as_bytes()).map(drop)
    }

    fn api_error(code: &str) -> SlackError {
        SlackError::Api {
            method: "chat.postMessage".into(),
            code: code.into(),
            detail: None,
        }
    }

    #[test]
    fn ok_answers_pass() {
        assert_eq!(classify(200, None, r#"{"ok":true,"ts":"1.2"}"#), Ok(()));
    }

    #[test]
    fn too_many_requests_carries_retry_after() {
        let error = classify(429, Some("30"), r#"{"ok":false,"error":"ratelimited"}"#).unwrap_err();
        assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
        assert!(error.is_retryable());
        let unannounced = classify(429, None, "").unwrap_err();
        assert_eq!(unannounced, SlackError::RateLimited { retry_after: None });
        let in_body = classify(200, Some("5"), r#"{"ok":false,"error":"ratelimited"}"#);
        assert_eq!(
            in_body.unwrap_err().retry_after(),
            Some(Duration::from_secs(5))
        );
    }

    #[test]
    fn server_errors_are_retryable_other_statuses_are_not() {
        let error = classify(503, None, "<html>").unwrap_err();
        assert_eq!(error, SlackError::Server { status: 503 });
        assert!(error.is_retryable());
        let error = classify(404, None, "").unwrap_err();
        assert!(matches!(error, SlackError::Status { status: 404, .. }));
        assert!(!error.is_retryable());
    }

    #[test]
    fn api_errors_keep_their_code_and_retryability() {
        for code in RETRYABLE_API_ERRORS {
            let body = format!(r#"{{"ok":false,"error":"{code}"}}"#);
            let error = classify(200, None, &body).unwrap_err();
            assert_eq!(error, api_error(code));
            assert!(error.is_retryable(), "{code}");
        }
        for code in [
            "channel_not_found",
            "not_in_channel",
            "invalid_auth",
            "invalid_blocks",
        ] {
            let body = format!(r#"{{"ok":false,"error":"{code}"}}"#);
            let error = classify(200, None, &body).unwrap_err();
            assert_eq!(error, api_error(code));
            assert!(!error.is_retryable(), "{code}");
        }
    }

    #[test]
    fn slack_explanations_are_kept() {
        let body = r#"{"ok":false,"error":"invalid_blocks","response_metadata":{"messages":["[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"]}}"#;
        let error = classify(200, None, body).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("invalid_blocks ([ERROR] must be less than 3001 characters"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_scope_says_which_scope() {
        let body = r#"{"ok":false,"error":"missing_scope","needed":"channels:history","provided":"chat:write"}"#;
        let error = classify(200, None, body).unwrap_err();
        assert!(error.is_missing_scope());
        assert!(!error.is_retryable());
        assert!(
            error
                .to_string()
                .contains("needs the scope channels:history"),
            "{error}"
        );
        assert!(!api_error("channel_not_found").is_missing_scope());
    }

    fn listed(page: &str) -> Vec<ListedMessage> {
        let answer: Answer = serde_json::from_str(page).unwrap();
        answer.messages
    }

    #[test]
    fn only_tollgate_metadata_with_the_key_matches() {
        let key = MessageKey::of_message(7);
        let page = r#"{"ok":true,"has_more":false,"messages":[
            {"type":"message","ts":"1.1","text":"no metadata"},
            {"type":"message","ts":"1.2","metadata":{"event_type":"other_app","event_payload":{"key":"tollgate-slack-message-7"}}},
            {"type":"message","ts":"1.3","metadata":{"event_type":"tollgate_message","event_payload":{"key":"tollgate-slack-message-70"}}},
            {"type":"message","ts":"1.4","metadata":{"event_type":"tollgate_message","event_payload":{"key":"tollgate-slack-message-7"}}}
        ],"response_metadata":{"next_cursor":""}}"#;
        let found: Vec<_> = listed(page)
            .into_iter()
            .filter(|m| m.has_key(&key))
            .map(|m| m.ts)
            .collect();
        assert_eq!(found, ["1.4"]);
    }

    #[test]
    fn slack_timestamps_have_microseconds() {
        let time = DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap();
        assert_eq!(slack_timestamp(time), "1700000000.120000");
    }

    #[test]
    fn unreadable_answers_are_invalid_responses() {
        for body in ["", "<html>", r#"{"error":"x"}"#] {
            let error = classify(200, None, body).unwrap_err();
            assert!(
                matches!(error, SlackError::InvalidResponse { .. }),
                "{body}: {error:?}"
            );
            assert!(!error.is_retryable());
        }
    }

    #[test]
    fn the_token_stays_out_of_debug_output() {
        let client = SlackClient::new(
            "https://slack.example/api/",
            Secret::new("xoxb-secret"),
            &Trust::system(),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("xoxb-secret"));
        assert_eq!(client.api_url, "https://slack.example/api");
        assert!(matches!(
            SlackClient::new("slack.example", Secret::new("t"), &Trust::system()),
            Err(SlackError::Config { .. })
        ));
    }
}
