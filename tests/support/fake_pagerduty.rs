//! A fake PagerDuty Events API v2: `POST /v2/enqueue` as PagerDuty answers it (202 with the
//! dedup key), keeping the events and the incidents they open, trigger to resolve.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Default)]
struct FakeState {
    events: Vec<Value>,
    /// dedup key → "triggered" | "acknowledged" | "resolved".
    incidents: BTreeMap<String, String>,
    fail_next: u32,
    rejections: Vec<String>,
}

pub struct FakePagerDuty {
    state: Arc<Mutex<FakeState>>,
    url: String,
    routing_key: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = (Arc<Mutex<FakeState>>, String);

impl FakePagerDuty {
    pub async fn start(routing_key: &str) -> Self {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let router = Router::new()
            .route("/v2/enqueue", post(enqueue))
            .with_state((state.clone(), routing_key.to_owned()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            state,
            url: format!("http://{address}"),
            routing_key: routing_key.to_owned(),
            task,
        }
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn routing_key(&self) -> String {
        self.routing_key.clone()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Accepted events, in order.
    pub fn events(&self) -> Vec<Value> {
        self.state().events.clone()
    }

    pub fn incidents(&self) -> BTreeMap<String, String> {
        self.state().incidents.clone()
    }

    /// Answers the next `times` requests with a 500.
    pub fn fail_next(&self, times: u32) {
        self.state().fail_next = times;
    }

    pub fn rejections(&self) -> Vec<String> {
        self.state().rejections.clone()
    }
}

async fn enqueue(
    State((state, routing_key)): State<Shared>,
    Json(body): Json<Value>,
) -> impl IntoResponse {
    let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
    if state.fail_next > 0 {
        state.fail_next -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"status": "error"})),
        );
    }
    if let Err(problem) = validate(&body, &routing_key) {
        state.rejections.push(problem.clone());
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"status": "invalid event", "message": "Event object is invalid", "errors": [problem]}),
            ),
        );
    }
    let action = body["event_action"].as_str().unwrap_or_default().to_owned();
    let dedup_key = body["dedup_key"].as_str().unwrap_or_default().to_owned();
    let next = match action.as_str() {
        "trigger" => "triggered",
        "acknowledge" => "acknowledged",
        _ => "resolved",
    };
    // Like PagerDuty: a trigger for an open incident's key adds to it, it does not open another;
    // acknowledge and resolve apply only to an open incident.
    match (
        state.incidents.get(&dedup_key).map(String::as_str),
        action.as_str(),
    ) {
        (None | Some("resolved"), "trigger") | (Some("triggered" | "acknowledged"), _) => {
            state.incidents.insert(dedup_key.clone(), next.to_owned());
        }
        _ => {}
    }
    state.events.push(body);
    (
        StatusCode::ACCEPTED,
        Json(json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})),
    )
}

fn validate(body: &Value, routing_key: &str) -> Result<(), String> {
    if body["routing_key"] != routing_key {
        return Err("routing_key is wrong".into());
    }
    let action = body["event_action"].as_str().unwrap_or_default();
    if !["trigger", "acknowledge", "resolve"].contains(&action) {
        return Err(format!("event_action {action:?} is not valid"));
    }
    if body["dedup_key"]
        .as_str()
        .is_none_or(|k| k.is_empty() || k.len() > 255)
    {
        return Err("dedup_key is required for every event Tollgate sends".into());
    }
    if action == "trigger" {
        let payload = &body["payload"];
        for field in ["summary", "source", "severity"] {
            if payload[field].as_str().is_none_or(str::is_empty) {
                return Err(format!("payload.{field} is required"));
            }
        }
        if payload["summary"].as_str().is_some_and(|s| s.len() > 1024) {
            return Err("payload.summary is longer than 1024".into());
        }
        if !["critical", "error", "warning", "info"]
            .contains(&payload["severity"].as_str().unwrap_or_default())
        {
            return Err("payload.severity is not valid".into());
        }
    }
    Ok(())
}
