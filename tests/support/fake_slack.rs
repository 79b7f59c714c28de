//! A fake Slack: a real HTTP server on 127.0.0.1 that speaks the Web API's wire format for
//! `chat.postMessage`, `chat.update`, `chat.postEphemeral` and `views.open` (JSON bodies), and
//! `conversations.history` and `conversations.replies` (query strings, paged with a cursor),
//! keeps the messages with their metadata, and refuses what Slack refuses (bad token, unknown
//! channel or message, malformed Block Kit, a read without its scope), so the app's tests run the
//! real client against it.
//!
//! Like Slack, it answers API errors with HTTP 200 and `{"ok": false, "error": code}`; each such
//! refusal is kept as a [`Rejection`]. Requests to other paths are answered 404 and kept as
//! unexpected. [`FakeSlack::assert_clean`] fails a test on either, and on Slack's warnings.
//! Failures injected with [`FakeSlack::fail_next`] and its siblings are answered but not counted
//! as refusals. [`FakeSlack::hold`] applies a chosen call and holds its answer, so a test can kill
//! the app while the call is in flight; [`FakeSlack::lose_answer_next`] applies a call and answers
//! it with a server error, as when Slack's answer is lost on the way.

use super::fake_github::Hold;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate::notify::slack::sign_slack_request;

const API_PREFIX: &str = "/api/";
const MAX_BLOCKS: usize = 50;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_SECTION_FIELD: usize = 2000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_BUTTON_TEXT: usize = 75;
const MAX_BUTTON_VALUE: usize = 2000;
const MAX_ID: usize = 255;
/// Slack's largest page for `conversations.history` (`conversations.replies` allows 1000).
const MAX_HISTORY_LIMIT: usize = 999;
const DEFAULT_HISTORY_LIMIT: usize = 100;
/// The read scopes a token has unless a test takes them away.
const READ_SCOPES: [&str; 2] = ["channels:history", "groups:history"];

/// A running fake. Dropping it stops the server.
pub struct FakeSlack {
    url: String,
    state: Arc<Mutex<FakeState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// One version of a message's content.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageContent {
    pub text: Option<String>,
    pub blocks: Option<Value>,
}

/// A message as the fake holds it: its current content and the versions `chat.update` replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRecord {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    /// The message metadata it was posted with (`event_type`, `event_payload`).
    pub metadata: Option<Value>,
    /// Earlier contents, oldest first; empty for a message never updated.
    pub history: Vec<MessageContent>,
}

/// A `chat.postEphemeral` message.
#[derive(Debug, Clone, PartialEq)]
pub struct EphemeralRecord {
    pub channel: String,
    pub user: String,
    pub thread_ts: Option<String>,
    pub text: Option<String>,
    pub blocks: Option<Value>,
    pub message_ts: String,
}

/// One request the fake answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The Web API method (`chat.postMessage`), or the path for unknown routes.
    pub method: String,
    pub status: u16,
    pub body: Option<Value>,
    /// Slack's `error` code when the answer was `ok: false`.
    pub error: Option<String>,
}

/// A request the fake refused as Slack would, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub method: String,
    pub error: String,
    pub reason: String,
}

/// A failure to answer instead of handling the request.
#[derive(Debug, Clone)]
enum Injected {
    Status(u16),
    RateLimited { retry_after_secs: u64 },
    ApiError(String),
}

struct FailRule {
    method: String,
    injected: Injected,
    remaining: u32,
}

struct HoldRule {
    method: String,
    /// Matching calls still to pass before the held one.
    skip: u32,
    hold: Hold,
}

struct FakeState {
    token: String,
    channels: HashSet<String>,
    /// The token's read scopes.
    scopes: HashSet<String>,
    /// The last `ts` handed out, in microseconds since the epoch.
    last_ts_micros: u64,
    messages: Vec<MessageRecord>,
    ephemerals: Vec<EphemeralRecord>,
    /// Views opened with `views.open`, as sent.
    views: Vec<Value>,
    failures: Vec<FailRule>,
    /// Calls applied but answered with a server error, per method.
    lost_answers: Vec<FailRule>,
    holds: Vec<HoldRule>,
    requests: Vec<RecordedRequest>,
    rejections: Vec<Rejection>,
    unexpected: Vec<RecordedRequest>,
    warnings: Vec<String>,
}

impl FakeSlack {
    /// Starts a fake that accepts the bot token `token` and knows the channels `channels`
    /// (ids such as `C0ALERTS`).
    pub async fn start(token: &str, channels: &[&str]) -> FakeSlack {
        let state = Arc::new(Mutex::new(FakeState {
            token: token.to_owned(),
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
            scopes: READ_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
            last_ts_micros: 0,
            messages: Vec::new(),
            ephemerals: Vec::new(),
            views: Vec::new(),
            failures: Vec::new(),
            lost_answers: Vec::new(),
            holds: Vec::new(),
            requests: Vec::new(),
            rejections: Vec::new(),
            unexpected: Vec::new(),
            warnings: Vec::new(),
        }));
        let router = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Slack");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("fake Slack server");
        });
        FakeSlack { url, state, server }
    }

    /// The Web API root to configure as `SLACK_API_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.url)
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Answers the next `times` calls of `method` (`"*"` for any) with HTTP `status`.
    pub fn fail_next(&self, method: &str, status: u16, times: u32) {
        self.inject(method, Injected::Status(status), times);
    }

    /// Answers the next `times` calls of `method` with 429 and `Retry-After: retry_after_secs`.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64, times: u32) {
        self.inject(method, Injected::RateLimited { retry_after_secs }, times);
    }

    /// Answers the next `times` calls of `method` with HTTP 200 and `{"ok":false,"error":error}`.
    pub fn api_error_next(&self, method: &str, error: &str, times: u32) {
        self.inject(method, Injected::ApiError(error.to_owned()), times);
    }

    /// Applies the next `times` calls of `method` (the message is posted), then answers them with
    /// HTTP 500 as if Slack's answer were lost: the caller cannot know that the call worked.
    pub fn lose_answer_next(&self, method: &str, times: u32) {
        self.state().lost_answers.push(FailRule {
            method: method.to_owned(),
            injected: Injected::Status(500),
            remaining: times,
        });
    }

    /// Holds the answer to the `nth` (from 1) next call of `method`: it is applied, but answered
    /// only after [`Hold::release`].
    pub fn hold(&self, method: &str, nth: u32) -> Hold {
        assert!(nth >= 1, "nth counts from 1");
        let hold = Hold::default();
        self.state().holds.push(HoldRule {
            method: method.to_owned(),
            skip: nth - 1,
            hold: hold.clone(),
        });
        hold
    }

    /// Gives the token exactly the read scopes `scopes` (by default `channels:history` and
    /// `groups:history`); a read without its scope is answered `missing_scope`.
    pub fn set_read_scopes(&self, scopes: &[&str]) {
        self.state().scopes = scopes.iter().map(|s| (*s).to_owned()).collect();
    }

    /// Posts a message as someone else would (another app, a person), for a test's set-up.
    pub fn add_message(&self, channel: &str, text: &str, metadata: Option<Value>) -> String {
        let mut state = self.state();
        let ts = state.next_ts();
        state.messages.push(MessageRecord {
            channel: channel.to_owned(),
            ts: ts.clone(),
            thread_ts: None,
            text: Some(text.to_owned()),
            blocks: None,
            metadata,
            history: Vec::new(),
        });
        ts
    }

    fn inject(&self, method: &str, injected: Injected, times: u32) {
        self.state().failures.push(FailRule {
            method: method.to_owned(),
            injected,
            remaining: times,
        });
    }

    /// Every message posted (replies included), in posting order, with updates applied.
    pub fn messages(&self) -> Vec<MessageRecord> {
        self.state().messages.clone()
    }

    pub fn message(&self, channel: &str, ts: &str) -> Option<MessageRecord> {
        self.state().find(channel, ts).cloned()
    }

    /// Replies in the thread of the message `ts`.
    pub fn replies(&self, channel: &str, ts: &str) -> Vec<MessageRecord> {
        let state = self.state();
        let replies = state
            .messages
            .iter()
            .filter(|m| m.channel == channel && m.thread_ts.as_deref() == Some(ts) && m.ts != ts);
        replies.cloned().collect()
    }

    /// The modals opened (`views.open`), oldest first.
    pub fn views(&self) -> Vec<Value> {
        self.state().views.clone()
    }

    pub fn ephemerals(&self) -> Vec<EphemeralRecord> {
        self.state().ephemerals.clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    pub fn rejections(&self) -> Vec<Rejection> {
        self.state().rejections.clone()
    }

    /// Requests to paths the fake does not serve.
    pub fn unexpected_requests(&self) -> Vec<RecordedRequest> {
        self.state().unexpected.clone()
    }

    /// Panics when a request was refused, went to an unknown path, or drew a Slack warning.
    pub fn assert_clean(&self) {
        let state = self.state();
        assert!(
            state.rejections.is_empty(),
            "requests the fake Slack refused: {:#?}",
            state.rejections
        );
        assert!(
            state.unexpected.is_empty(),
            "unexpected requests to the fake Slack: {:#?}",
            state.unexpected
        );
        assert!(
            state.warnings.is_empty(),
            "Slack warnings: {:#?}",
            state.warnings
        );
    }
}

/// The form-encoded body Slack posts to the app when `user_id` clicks the button `action_id`
/// (carrying `value`) on the message `message_ts` in `channel`. Sign it with
/// [`signature_headers`].
pub fn block_action_body(
    user_id: &str,
    action_id: &str,
    value: &str,
    channel: &str,
    message_ts: &str,
) -> Vec<u8> {
    let payload = json!({
        "type": "block_actions",
        "user": slack_user(user_id),
        "api_app_id": "A0TOLLGATE",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": false
        },
        "trigger_id": "1000.2000.abc",
        "team": {"id": "T0TEST", "domain": "acme"},
        "enterprise": null,
        "is_enterprise_install": false,
        "channel": {"id": channel, "name": "tollgate"},
        "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
        "state": {"values": {}},
        "response_url": "https://hooks.slack.invalid/actions/T0TEST/1/abc",
        "actions": [{
            "action_id": action_id,
            "block_id": "tollgate",
            "text": {"type": "plain_text", "text": "Click", "emoji": true},
            "value": value,
            "type": "button",
            "action_ts": "1700000100.000000"
        }]
    });
    interaction_form(&payload)
}

/// The form-encoded body Slack posts when `user_id` submits `view` (as opened) with `reason`
/// typed into its input `block_id`/`action_id`.
pub fn view_submission_body(
    user_id: &str,
    view: &Value,
    block_id: &str,
    action_id: &str,
    reason: &str,
) -> Vec<u8> {
    let mut submitted = view.clone();
    submitted["id"] = json!("V0001");
    submitted["team_id"] = json!("T0TEST");
    submitted["state"] = json!({ "values": { block_id: { action_id: {
        "type": "plain_text_input",
        "value": reason
    }}}});
    let payload = json!({
        "type": "view_submission",
        "team": {"id": "T0TEST", "domain": "acme"},
        "user": slack_user(user_id),
        "api_app_id": "A0TOLLGATE",
        "token": "deprecated-verification-token",
        "trigger_id": "1000.3000.def",
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": false
    });
    interaction_form(&payload)
}

/// The `user` of an interaction payload.
fn slack_user(user_id: &str) -> Value {
    json!({
        "id": user_id,
        "username": user_id.to_ascii_lowercase(),
        "name": user_id.to_ascii_lowercase(),
        "team_id": "T0TEST"
    })
}

/// Slack posts interactions as a form with the JSON in its `payload` field.
fn interaction_form(payload: &Value) -> Vec<u8> {
    form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

/// `X-Slack-Request-Timestamp` and `X-Slack-Signature` for `body` sent at `timestamp` (Unix
/// seconds).
pub fn signature_headers(secret: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 2] {
    [
        ("x-slack-request-timestamp", timestamp.to_string()),
        (
            "x-slack-signature",
            sign_slack_request(secret, timestamp, body),
        ),
    ]
}

/// An answer before it becomes an HTTP response.
struct Reply {
    status: u16,
    body: Value,
    retry_after: Option<u64>,
}

impl Reply {
    fn ok(mut fields: Value) -> Reply {
        fields["ok"] = json!(true);
        Reply {
            status: 200,
            body: fields,
            retry_after: None,
        }
    }

    fn error(status: u16, code: &str) -> Reply {
        Reply {
            status,
            body: json!({ "ok": false, "error": code }),
            retry_after: None,
        }
    }

    fn error_code(&self) -> Option<String> {
        self.body["error"].as_str().map(str::to_owned)
    }
}

/// A refusal: Slack's error code, and why, for the test's failure message.
struct Refusal {
    error: &'static str,
    reason: String,
    details: Vec<String>,
    /// The scope a `missing_scope` refusal names.
    needed: Option<&'static str>,
}

fn refuse(error: &'static str, reason: impl Into<String>) -> Refusal {
    Refusal {
        error,
        reason: reason.into(),
        details: Vec::new(),
        needed: None,
    }
}

async fn handle(
    State(state): State<Arc<Mutex<FakeState>>>,
    http_method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (reply, hold) = respond(&state, &http_method, &uri, &headers, &body);
    if let Some(hold) = hold {
        hold.wait().await;
    }
    into_response(reply)
}

/// How a Web API method takes its arguments.
#[derive(Clone, Copy, PartialEq)]
enum MethodKind {
    /// A JSON body, posted.
    Write,
    /// A query string (read methods take no JSON body).
    Read,
}

fn method_kind(method: &str) -> Option<MethodKind> {
    match method {
        "chat.postMessage" | "chat.update" | "chat.postEphemeral" | "views.open" => {
            Some(MethodKind::Write)
        }
        "conversations.history" | "conversations.replies" => Some(MethodKind::Read),
        _ => None,
    }
}

/// Answers a request, and the hold its answer waits for when the test chose it.
fn respond(
    state: &Mutex<FakeState>,
    http_method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Reply, Option<Hold>) {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    let known = uri.path().strip_prefix(API_PREFIX).and_then(|m| {
        let expected = match method_kind(m)? {
            MethodKind::Write => Method::POST,
            MethodKind::Read => Method::GET,
        };
        (*http_method == expected).then_some(m)
    });
    let query = query_arguments(uri);
    let parsed_body = match http_method {
        &Method::GET => Some(Value::Object(query.clone())),
        _ => serde_json::from_slice::<Value>(body).ok(),
    };
    let Some(method) = known else {
        let reply = Reply::error(404, "unknown_method");
        let recorded = RecordedRequest {
            method: uri.path().to_owned(),
            status: 404,
            body: parsed_body,
            error: reply.error_code(),
        };
        state.unexpected.push(recorded.clone());
        state.requests.push(recorded);
        return (reply, None);
    };
    let reply = match state.injected_failure(method) {
        Some(reply) => reply,
        None => {
            let answered = match method_kind(method) {
                Some(MethodKind::Read) => state.answer_read(method, headers, &query),
                _ => state.answer(method, headers, body),
            };
            match answered {
                Ok(reply) => state.lost_answer(method).unwrap_or(reply),
                Err(refusal) => {
                    state.rejections.push(Rejection {
                        method: method.to_owned(),
                        error: refusal.error.to_owned(),
                        reason: refusal.reason,
                    });
                    let mut reply = Reply::error(200, refusal.error);
                    if !refusal.details.is_empty() {
                        reply.body["response_metadata"] = json!({ "messages": refusal.details });
                    }
                    if let Some(needed) = refusal.needed {
                        reply.body["needed"] = json!(needed);
                        reply.body["provided"] = json!("chat:write");
                    }
                    reply
                }
            }
        }
    };
    state.requests.push(RecordedRequest {
        method: method.to_owned(),
        status: reply.status,
        body: parsed_body,
        error: reply.error_code(),
    });
    let hold = state.take_hold(method);
    (reply, hold)
}

/// The query string's arguments, as strings.
fn query_arguments(uri: &Uri) -> Map<String, Value> {
    let query = uri.query().unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .map(|(name, value)| (name.into_owned(), Value::String(value.into_owned())))
        .collect()
}

fn into_response(reply: Reply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(reply.body)).into_response();
    if let Some(seconds) = reply.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    response
}

impl FakeState {
    fn injected_failure(&mut self, method: &str) -> Option<Reply> {
        let rule = self
            .failures
            .iter_mut()
            .find(|rule| rule.remaining > 0 && (rule.method == "*" || rule.method == method))?;
        rule.remaining -= 1;
        let injected = rule.injected.clone();
        self.failures.retain(|rule| rule.remaining > 0);
        Some(injected_reply(injected))
    }

    /// The server error that replaces the answer of a call applied by [`FakeSlack::lose_answer_next`].
    fn lost_answer(&mut self, method: &str) -> Option<Reply> {
        let rule = self
            .lost_answers
            .iter_mut()
            .find(|rule| rule.remaining > 0 && rule.method == method)?;
        rule.remaining -= 1;
        let injected = rule.injected.clone();
        self.lost_answers.retain(|rule| rule.remaining > 0);
        Some(injected_reply(injected))
    }

    /// The hold this call's answer waits for, if it is the chosen one.
    fn take_hold(&mut self, method: &str) -> Option<Hold> {
        let mut chosen = None;
        for (index, rule) in self.holds.iter_mut().enumerate() {
            if rule.method != method {
                continue;
            }
            match rule.skip {
                0 => chosen = chosen.or(Some(index)),
                _ => rule.skip -= 1,
            }
        }
        chosen.map(|index| self.holds.remove(index).hold)
    }

    fn authorize(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| refuse("not_authed", "no Authorization header"))?;
        if authorization.strip_prefix("Bearer ") != Some(self.token.as_str()) {
            return Err(refuse("invalid_auth", "not the bot token"));
        }
        Ok(())
    }

    fn known_channel<'r>(&self, request: &'r Map<String, Value>) -> Result<&'r str, Refusal> {
        let channel = string_field(request, "channel")
            .filter(|c| !c.is_empty())
            .ok_or_else(|| refuse("channel_not_found", "no channel"))?;
        if !self.channels.contains(channel) {
            return Err(refuse(
                "channel_not_found",
                format!("unknown channel {channel:?}"),
            ));
        }
        Ok(channel)
    }

    /// Checks what every write method needs (token, JSON body, channel), then answers it.
    fn answer(&mut self, method: &str, headers: &HeaderMap, body: &[u8]) -> Result<Reply, Refusal> {
        self.authorize(headers)?;
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("application/json") {
            return Err(refuse(
                "invalid_form_data",
                format!("Content-Type {content_type:?} is not application/json"),
            ));
        }
        let mut warning = None;
        if !content_type.contains("charset=utf-8") {
            warning = Some("missing_charset");
            self.warnings
                .push(format!("{method}: JSON body without charset=utf-8"));
        }
        let request: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|e| refuse("invalid_json", format!("body is not a JSON object: {e}")))?;
        if method == "views.open" {
            return self.open_view(&request);
        }
        let channel = self.known_channel(&request)?;
        let content = content(&request)?;
        let mut reply = match method {
            "chat.postMessage" => self.post_message(channel, &request, content)?,
            "chat.update" => self.update(channel, &request, content)?,
            _ => self.post_ephemeral(channel, &request, content)?,
        };
        if let Some(warning) = warning {
            reply.body["warning"] = json!(warning);
        }
        Ok(reply)
    }

    /// `conversations.history` (the channel's messages that are not thread replies, newest first)
    /// or `conversations.replies` (the thread's parent, then its replies, oldest first): those
    /// after `oldest`, a page of `limit` from `cursor`; metadata only with `include_all_metadata`.
    fn answer_read(
        &mut self,
        method: &str,
        headers: &HeaderMap,
        request: &Map<String, Value>,
    ) -> Result<Reply, Refusal> {
        self.authorize(headers)?;
        let channel = self.known_channel(request)?;
        let needed = if channel.starts_with('G') {
            "groups:history"
        } else {
            "channels:history"
        };
        if !self.scopes.contains(needed) {
            return Err(Refusal {
                needed: Some(needed),
                ..refuse("missing_scope", format!("the token lacks {needed}"))
            });
        }
        let oldest = match string_field(request, "oldest") {
            Some(oldest) => ts_micros(oldest)
                .ok_or_else(|| refuse("invalid_ts_oldest", format!("oldest {oldest:?}")))?,
            None => 0,
        };
        let listed: Vec<&MessageRecord> = if method == "conversations.history" {
            let mut parents: Vec<&MessageRecord> = self
                .messages
                .iter()
                .filter(|m| m.channel == channel && m.thread_ts.is_none())
                .filter(|m| ts_micros(&m.ts).is_some_and(|ts| ts > oldest))
                .collect();
            parents.reverse();
            parents
        } else {
            let parent_ts = string_field(request, "ts")
                .ok_or_else(|| refuse("invalid_arguments", "conversations.replies needs ts"))?;
            let parent = self.find(channel, parent_ts).ok_or_else(|| {
                refuse(
                    "thread_not_found",
                    format!("no message {parent_ts:?} in {channel}"),
                )
            })?;
            let replies = self.messages.iter().filter(|m| {
                m.channel == channel
                    && m.thread_ts.as_deref() == Some(parent_ts)
                    && ts_micros(&m.ts).is_some_and(|ts| ts > oldest)
            });
            std::iter::once(parent).chain(replies).collect()
        };
        let limit = match string_field(request, "limit") {
            Some(limit) => limit
                .parse::<usize>()
                .map_err(|_| refuse("invalid_limit", format!("limit {limit:?}")))?
                .clamp(1, MAX_HISTORY_LIMIT),
            None => DEFAULT_HISTORY_LIMIT,
        };
        let start = match string_field(request, "cursor").filter(|c| !c.is_empty()) {
            Some(cursor) => cursor
                .strip_prefix("next:")
                .and_then(|offset| offset.parse::<usize>().ok())
                .filter(|offset| *offset <= listed.len())
                .ok_or_else(|| refuse("invalid_cursor", format!("cursor {cursor:?}")))?,
            None => 0,
        };
        let with_metadata = matches!(
            string_field(request, "include_all_metadata"),
            Some("true" | "1")
        );
        let end = (start + limit).min(listed.len());
        let page: Vec<Value> = listed[start..end]
            .iter()
            .map(|m| listed_message(m, with_metadata))
            .collect();
        let has_more = end < listed.len();
        let next_cursor = if has_more {
            format!("next:{end}")
        } else {
            String::new()
        };
        Ok(Reply::ok(json!({
            "messages": page,
            "has_more": has_more,
            "pin_count": 0,
            "response_metadata": { "next_cursor": next_cursor },
        })))
    }

    /// `views.open`: needs a trigger id and a modal with a title, a callback id and blocks; a
    /// submit button whenever it has an input.
    fn open_view(&mut self, request: &Map<String, Value>) -> Result<Reply, Refusal> {
        string_field(request, "trigger_id")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refuse("invalid_arguments", "no trigger_id"))?;
        let view = request
            .get("view")
            .filter(|v| v["type"] == "modal")
            .ok_or_else(|| refuse("invalid_arguments", "view is not a modal"))?;
        let title = view["title"]["text"].as_str().unwrap_or_default();
        if title.is_empty() || title.chars().count() > 24 {
            return Err(refuse(
                "invalid_arguments",
                "a modal title has 1 to 24 characters",
            ));
        }
        let blocks = view["blocks"]
            .as_array()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| refuse("invalid_arguments", "a modal needs blocks"))?;
        let has_input = blocks.iter().any(|b| b["type"] == "input");
        if has_input && view["submit"]["text"].as_str().is_none() {
            return Err(refuse(
                "invalid_arguments",
                "a modal with inputs needs a submit button",
            ));
        }
        if view["private_metadata"]
            .as_str()
            .is_some_and(|m| m.len() > 3000)
        {
            return Err(refuse(
                "invalid_arguments",
                "private_metadata over 3000 characters",
            ));
        }
        self.views.push(view.clone());
        let mut opened = view.clone();
        opened["id"] = json!(format!("V{:04}", self.views.len()));
        Ok(Reply::ok(json!({ "view": opened })))
    }

    fn post_message(
        &mut self,
        channel: &str,
        request: &Map<String, Value>,
        content: MessageContent,
    ) -> Result<Reply, Refusal> {
        let thread_ts = self.thread_ts(channel, request)?;
        let metadata = metadata(request)?;
        let ts = self.next_ts();
        let answer = json!({
            "channel": channel,
            "ts": ts,
            "message": {
                "type": "message",
                "ts": ts,
                "text": content.text,
                "blocks": content.blocks
            },
        });
        self.messages.push(MessageRecord {
            channel: channel.to_owned(),
            ts,
            thread_ts,
            text: content.text,
            blocks: content.blocks,
            metadata,
            history: Vec::new(),
        });
        Ok(Reply::ok(answer))
    }

    fn update(
        &mut self,
        channel: &str,
        request: &Map<String, Value>,
        content: MessageContent,
    ) -> Result<Reply, Refusal> {
        let ts = string_field(request, "ts").unwrap_or_default().to_owned();
        let message = self
            .messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
            .ok_or_else(|| {
                refuse(
                    "message_not_found",
                    format!("no message {ts:?} in {channel}"),
                )
            })?;
        let previous = MessageContent {
            text: message.text.take(),
            blocks: message.blocks.take(),
        };
        message.history.push(previous);
        message.text = content.text.clone();
        message.blocks = content.blocks;
        Ok(Reply::ok(
            json!({ "channel": channel, "ts": ts, "text": content.text }),
        ))
    }

    fn post_ephemeral(
        &mut self,
        channel: &str,
        request: &Map<String, Value>,
        content: MessageContent,
    ) -> Result<Reply, Refusal> {
        let user = string_field(request, "user")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| refuse("invalid_arguments", "chat.postEphemeral needs a user"))?
            .to_owned();
        let thread_ts = self.thread_ts(channel, request)?;
        let message_ts = self.next_ts();
        self.ephemerals.push(EphemeralRecord {
            channel: channel.to_owned(),
            user,
            thread_ts,
            text: content.text,
            blocks: content.blocks,
            message_ts: message_ts.clone(),
        });
        Ok(Reply::ok(json!({ "message_ts": message_ts })))
    }

    /// `thread_ts`, which must name a message of the channel when given.
    fn thread_ts(
        &self,
        channel: &str,
        request: &Map<String, Value>,
    ) -> Result<Option<String>, Refusal> {
        let Some(thread_ts) = string_field(request, "thread_ts") else {
            return Ok(None);
        };
        if self.find(channel, thread_ts).is_none() {
            return Err(refuse(
                "thread_not_found",
                format!("no message {thread_ts:?} in {channel} to reply to"),
            ));
        }
        Ok(Some(thread_ts.to_owned()))
    }

    fn find(&self, channel: &str, ts: &str) -> Option<&MessageRecord> {
        self.messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
    }

    /// The current time as Slack writes it (`1765150000.123456`), unique and increasing, like
    /// Slack's.
    fn next_ts(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last_ts_micros = now.max(self.last_ts_micros + 1);
        format!(
            "{}.{:06}",
            self.last_ts_micros / 1_000_000,
            self.last_ts_micros % 1_000_000
        )
    }
}

fn injected_reply(injected: Injected) -> Reply {
    match injected {
        Injected::Status(status) => Reply::error(status, "internal_error"),
        Injected::RateLimited { retry_after_secs } => Reply {
            retry_after: Some(retry_after_secs),
            ..Reply::error(429, "ratelimited")
        },
        Injected::ApiError(code) => Reply::error(200, &code),
    }
}

/// A `ts` (`seconds.micros`) in microseconds.
fn ts_micros(ts: &str) -> Option<u64> {
    let (seconds, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let micros = format!("{micros:0<6}");
    let micros: u64 = micros.get(..6)?.parse().ok()?;
    seconds
        .parse::<u64>()
        .ok()?
        .checked_mul(1_000_000)?
        .checked_add(micros)
}

/// A message as the read methods list it.
fn listed_message(message: &MessageRecord, with_metadata: bool) -> Value {
    let mut listed = json!({
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0TOLLGATE",
        "ts": message.ts,
    });
    if let Some(text) = &message.text {
        listed["text"] = json!(text);
    }
    if let Some(blocks) = &message.blocks {
        listed["blocks"] = blocks.clone();
    }
    if let Some(thread_ts) = &message.thread_ts {
        listed["thread_ts"] = json!(thread_ts);
        listed["parent_user_id"] = json!("U0TOLLGATE");
    }
    if with_metadata && let Some(metadata) = &message.metadata {
        listed["metadata"] = metadata.clone();
    }
    listed
}

/// `metadata` of `chat.postMessage`: an `event_type` string and an `event_payload` object.
fn metadata(request: &Map<String, Value>) -> Result<Option<Value>, Refusal> {
    let Some(metadata) = request.get("metadata") else {
        return Ok(None);
    };
    let valid = metadata["event_type"]
        .as_str()
        .is_some_and(|t| !t.is_empty())
        && metadata["event_payload"].is_object();
    if !valid {
        return Err(refuse(
            "invalid_metadata_format",
            format!("metadata {metadata} lacks an event_type or an event_payload object"),
        ));
    }
    Ok(Some(metadata.clone()))
}

fn string_field<'a>(request: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    request.get(name).and_then(Value::as_str)
}

/// The text and blocks of a message: at least one of them, and blocks that Slack would accept.
fn content(request: &Map<String, Value>) -> Result<MessageContent, Refusal> {
    let text = string_field(request, "text")
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let blocks = request.get("blocks").cloned();
    if text.is_none() && blocks.is_none() {
        return Err(refuse("no_text", "neither text nor blocks"));
    }
    if let Some(blocks) = &blocks {
        let errors = check_blocks(blocks);
        if !errors.is_empty() {
            return Err(Refusal {
                error: "invalid_blocks",
                reason: errors.join("; "),
                details: errors,
                needed: None,
            });
        }
    }
    Ok(MessageContent { text, blocks })
}

/// Slack's checks of Block Kit, for the blocks and elements Tollgate uses; each problem as
/// Slack words it, with a JSON pointer.
fn check_blocks(blocks: &Value) -> Vec<String> {
    let mut check = BlockCheck::default();
    match blocks.as_array() {
        None => check.fail("/blocks", "must be an array"),
        Some(list) => {
            if list.len() > MAX_BLOCKS {
                check.fail(
                    "/blocks",
                    &format!("must contain at most {MAX_BLOCKS} items"),
                );
            }
            for (i, block) in list.iter().enumerate() {
                check.block(block, &format!("/blocks/{i}"));
            }
        }
    }
    check.errors
}

#[derive(Default)]
struct BlockCheck {
    errors: Vec<String>,
    block_ids: HashSet<String>,
    action_ids: HashSet<String>,
}

impl BlockCheck {
    fn fail(&mut self, at: &str, problem: &str) {
        self.errors
            .push(format!("[ERROR] {problem} [json-pointer:{at}]"));
    }

    /// Fails on properties Slack does not know for this object; returns the object.
    fn object<'v>(
        &mut self,
        value: &'v Value,
        at: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(object) = value.as_object() else {
            self.fail(at, "must be an object");
            return None;
        };
        for key in object.keys() {
            if !allowed.contains(&key.as_str()) {
                self.fail(&format!("{at}/{key}"), "is not a valid property");
            }
        }
        Some(object)
    }

    fn unique_id(&mut self, object: &Map<String, Value>, key: &str, at: &str) {
        let Some(id) = object.get(key) else { return };
        let at = format!("{at}/{key}");
        let Some(id) = id
            .as_str()
            .filter(|id| !id.is_empty() && id.len() <= MAX_ID)
        else {
            self.fail(
                &at,
                &format!("must be a string of 1 to {MAX_ID} characters"),
            );
            return;
        };
        let seen = if key == "block_id" {
            &mut self.block_ids
        } else {
            &mut self.action_ids
        };
        if !seen.insert(id.to_owned()) {
            self.fail(&at, &format!("{id:?} is not unique"));
        }
    }

    fn block(&mut self, block: &Value, at: &str) {
        let kind = block["type"].as_str().unwrap_or_default();
        let allowed: &[&str] = match kind {
            "section" => &["type", "block_id", "text", "fields", "accessory"],
            "header" => &["type", "block_id", "text"],
            "context" | "actions" => &["type", "block_id", "elements"],
            "divider" => &["type", "block_id"],
            _ => {
                self.fail(
                    &format!("{at}/type"),
                    &format!("unknown block type {kind:?}"),
                );
                return;
            }
        };
        let Some(object) = self.object(block, at, allowed) else {
            return;
        };
        self.unique_id(object, "block_id", at);
        match kind {
            "section" => self.section(object, at),
            "header" => self.required_text(object, at, &["plain_text"], MAX_HEADER_TEXT),
            "context" => {
                for (i, element) in self.elements(object, at, 10) {
                    self.text(
                        element,
                        &format!("{at}/elements/{i}"),
                        &["plain_text", "mrkdwn"],
                        MAX_SECTION_TEXT,
                    );
                }
            }
            "actions" => {
                for (i, element) in self.elements(object, at, 25) {
                    self.button(element, &format!("{at}/elements/{i}"));
                }
            }
            _ => {}
        }
    }

    fn section(&mut self, section: &Map<String, Value>, at: &str) {
        let fields = section.get("fields");
        if section.contains_key("text") || fields.is_none() {
            self.required_text(section, at, &["plain_text", "mrkdwn"], MAX_SECTION_TEXT);
        }
        if let Some(fields) = fields {
            match fields.as_array() {
                Some(list) if !list.is_empty() && list.len() <= 10 => {
                    for (i, field) in list.iter().enumerate() {
                        let field_at = format!("{at}/fields/{i}");
                        self.text(
                            field,
                            &field_at,
                            &["plain_text", "mrkdwn"],
                            MAX_SECTION_FIELD,
                        );
                    }
                }
                _ => self.fail(&format!("{at}/fields"), "must hold 1 to 10 text objects"),
            }
        }
        if let Some(accessory) = section.get("accessory") {
            self.button(accessory, &format!("{at}/accessory"));
        }
    }

    /// The `elements` of a context or actions block: 1 to `max` of them.
    fn elements<'v>(
        &mut self,
        block: &'v Map<String, Value>,
        at: &str,
        max: usize,
    ) -> Vec<(usize, &'v Value)> {
        match block.get("elements").and_then(Value::as_array) {
            Some(list) if !list.is_empty() && list.len() <= max => {
                list.iter().enumerate().collect()
            }
            _ => {
                self.fail(
                    &format!("{at}/elements"),
                    &format!("must hold 1 to {max} elements"),
                );
                Vec::new()
            }
        }
    }

    fn required_text(&mut self, object: &Map<String, Value>, at: &str, kinds: &[&str], max: usize) {
        match object.get("text") {
            Some(text) => self.text(text, &format!("{at}/text"), kinds, max),
            None => self.fail(&format!("{at}/text"), "is required"),
        }
    }

    /// A text object: `type` among `kinds`, non-empty `text` of at most `max` characters.
    fn text(&mut self, value: &Value, at: &str, kinds: &[&str], max: usize) {
        let Some(object) = self.object(value, at, &["type", "text", "emoji", "verbatim"]) else {
            return;
        };
        let kind = object
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !kinds.contains(&kind) {
            self.fail(
                &format!("{at}/type"),
                &format!("must be one of {kinds:?}, not {kind:?}"),
            );
        }
        if kind == "mrkdwn" && object.contains_key("emoji") {
            self.fail(&format!("{at}/emoji"), "is only valid for plain_text");
        }
        if kind == "plain_text" && object.contains_key("verbatim") {
            self.fail(&format!("{at}/verbatim"), "is only valid for mrkdwn");
        }
        match object.get("text").and_then(Value::as_str) {
            Some("") => self.fail(&format!("{at}/text"), "must not be empty"),
            Some(text) if text.chars().count() > max => self.fail(
                &format!("{at}/text"),
                &format!("must be less than {} characters", max + 1),
            ),
            Some(_) => {}
            None => self.fail(&format!("{at}/text"), "must be a string"),
        }
    }

    fn button(&mut self, value: &Value, at: &str) {
        let allowed = [
            "type",
            "action_id",
            "text",
            "value",
            "style",
            "confirm",
            "url",
            "accessibility_label",
        ];
        let Some(button) = self.object(value, at, &allowed) else {
            return;
        };
        if button.get("type").and_then(Value::as_str) != Some("button") {
            self.fail(&format!("{at}/type"), "only buttons are supported here");
            return;
        }
        self.unique_id(button, "action_id", at);
        self.required_text(button, at, &["plain_text"], MAX_BUTTON_TEXT);
        if let Some(value) = button.get("value") {
            let fits = value
                .as_str()
                .is_some_and(|v| v.chars().count() <= MAX_BUTTON_VALUE);
            if !fits {
                self.fail(
                    &format!("{at}/value"),
                    &format!("must be a string of at most {MAX_BUTTON_VALUE} characters"),
                );
            }
        }
        self.style(button, at);
        if let Some(confirm) = button.get("confirm") {
            self.confirm(confirm, &format!("{at}/confirm"));
        }
    }

    fn style(&mut self, object: &Map<String, Value>, at: &str) {
        if let Some(style) = object.get("style")
            && !matches!(style.as_str(), Some("primary" | "danger"))
        {
            self.fail(&format!("{at}/style"), "must be primary or danger");
        }
    }

    fn confirm(&mut self, value: &Value, at: &str) {
        let Some(confirm) = self.object(value, at, &["title", "text", "confirm", "deny", "style"])
        else {
            return;
        };
        let parts: [(&str, &[&str], usize); 4] = [
            ("title", &["plain_text"], 100),
            ("text", &["plain_text", "mrkdwn"], 300),
            ("confirm", &["plain_text"], 30),
            ("deny", &["plain_text"], 30),
        ];
        for (key, kinds, max) in parts {
            match confirm.get(key) {
                Some(text) => self.text(text, &format!("{at}/{key}"), kinds, max),
                None => self.fail(&format!("{at}/{key}"), "is required"),
            }
        }
        self.style(confirm, at);
    }
}
