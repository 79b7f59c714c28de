//! The fake GitHub's app-level endpoints: the app's webhook deliveries (listed and redelivered,
//! as the app JWT) and the app-manifest flow (the web page that takes a manifest and redirects
//! with a code, and the API call that turns the code into the app's credentials).

use super::{FakeGithub, FakeState, Incoming, RecordedRequest, Reply, parse_query};
use axum::http::Method;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};

/// GitHub's maximum page size for deliveries.
const MAX_PER_PAGE: usize = 100;

/// One attempt to deliver a webhook, as GitHub lists it.
#[derive(Debug, Clone)]
pub struct HookDeliveryRecord {
    pub id: u64,
    pub guid: String,
    pub delivered_at: chrono::DateTime<Utc>,
    pub status_code: u16,
    pub event: String,
    pub redelivery: bool,
}

/// An app created through the manifest flow.
#[derive(Debug, Clone)]
pub struct CreatedApp {
    pub code: String,
    pub manifest: Value,
    pub converted: bool,
}

#[derive(Default)]
pub struct HookState {
    /// Newest last.
    deliveries: Vec<HookDeliveryRecord>,
    redelivery_requests: Vec<u64>,
    apps: Vec<CreatedApp>,
}

impl FakeGithub {
    /// Records a delivery attempt `minutes_ago` that the app answered with `status_code` (0: no
    /// answer). Returns the attempt's id.
    pub fn add_hook_delivery(&self, guid: &str, status_code: u16, minutes_ago: i64) -> u64 {
        let mut state = self.state();
        let id = state.next_id();
        let record = HookDeliveryRecord {
            id,
            guid: guid.to_owned(),
            delivered_at: Utc::now() - chrono::Duration::minutes(minutes_ago),
            status_code,
            event: "pull_request".to_owned(),
            redelivery: state.hooks.deliveries.iter().any(|d| d.guid == guid),
        };
        state.hooks.deliveries.push(record);
        state
            .hooks
            .deliveries
            .sort_by_key(|d| (d.delivered_at, d.id));
        id
    }

    /// The attempt ids the app asked to have redelivered, in order.
    pub fn redelivery_requests(&self) -> Vec<u64> {
        self.state().hooks.redelivery_requests.clone()
    }

    /// The apps registered through the manifest page.
    pub fn created_apps(&self) -> Vec<CreatedApp> {
        self.state().hooks.apps.clone()
    }
}

impl FakeState {
    /// `GET /app/hook/deliveries`: newest first, `per_page` at a time, continued with the
    /// `cursor` of the `Link: rel="next"` header.
    pub(super) fn list_hook_deliveries(&mut self, req: &Incoming<'_>) -> Reply {
        if let Err(reason) = self.verify_jwt(req) {
            return Reply::message(
                401,
                &format!("A JSON web token could not be decoded ({reason})"),
            );
        }
        let per_page = req.query_number("per_page", 30).clamp(1, MAX_PER_PAGE);
        let newest_first: Vec<&HookDeliveryRecord> = self.hooks.deliveries.iter().rev().collect();
        let start = match req.query.get("cursor") {
            None => 0,
            Some(cursor) => match cursor.strip_prefix("v1_").and_then(|n| n.parse().ok()) {
                Some(offset) => offset,
                None => return Reply::message(400, "Bad Request"),
            },
        };
        let page: Vec<Value> = newest_first
            .iter()
            .skip(start)
            .take(per_page)
            .map(|d| delivery_json(d))
            .collect();
        let mut reply = Reply::json(200, Value::Array(page));
        let next = start + per_page;
        if next < newest_first.len() {
            reply.headers.push((
                "link".to_owned(),
                format!(
                    "<http://fake.invalid/app/hook/deliveries?per_page={per_page}&cursor=v1_{next}>; rel=\"next\""
                ),
            ));
        }
        reply
    }

    /// `POST /app/hook/deliveries/{delivery_id}/attempts`: accepted (202) for a known attempt.
    pub(super) fn redeliver_hook_delivery(&mut self, req: &Incoming<'_>, id: u64) -> Reply {
        if let Err(reason) = self.verify_jwt(req) {
            return Reply::message(
                401,
                &format!("A JSON web token could not be decoded ({reason})"),
            );
        }
        if !self.hooks.deliveries.iter().any(|d| d.id == id) {
            return Reply::not_found();
        }
        self.hooks.redelivery_requests.push(id);
        Reply::json(202, json!({}))
    }

    /// `POST /app-manifests/{code}/conversions` (no authentication): the new app's credentials,
    /// once per code.
    pub(super) fn convert_manifest(&mut self, code: &str) -> Reply {
        let Some(app) = self
            .hooks
            .apps
            .iter_mut()
            .find(|a| a.code == code && !a.converted)
        else {
            return Reply::not_found();
        };
        app.converted = true;
        let manifest = app.manifest.clone();
        let id = self.next_id();
        Reply::json(
            201,
            json!({
                "id": id,
                "slug": "tollgate",
                "node_id": "A_fake",
                "name": manifest["name"],
                "description": manifest["description"],
                "external_url": manifest["url"],
                "html_url": "https://github.com/apps/tollgate",
                "owner": {"login": "acme", "id": 1, "type": "Organization"},
                "created_at": now(), "updated_at": now(),
                "permissions": manifest["default_permissions"],
                "events": manifest["default_events"],
                "client_id": format!("Iv1.fake{id}"),
                "client_secret": format!("fake-client-secret-{id}"),
                "webhook_secret": format!("fake-webhook-secret-{id}"),
                "pem": include_str!("../../fixtures/test-app-key.pem"),
            }),
        )
    }
}

/// The manifest page of github.com (`POST /settings/apps/new?state=…` or
/// `/organizations/{org}/settings/apps/new`, form field `manifest`): checks the manifest as
/// GitHub would and redirects to its `redirect_url` with a code and the state. `None` for any
/// other request.
pub(super) fn manifest_page(
    state: &mut FakeState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &[u8],
) -> Option<(RecordedRequest, Reply)> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let is_page = matches!(
        segments.as_slice(),
        ["settings", "apps", "new"] | ["organizations", _, "settings", "apps", "new"]
    );
    if !is_page || method != Method::POST {
        return None;
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let manifest = form
        .iter()
        .find(|(name, _)| name == "manifest")
        .and_then(|(_, value)| serde_json::from_str::<Value>(value).ok());
    let app_state = parse_query(query).get("state").cloned().unwrap_or_default();
    let reply = match manifest.as_ref().map(check_manifest) {
        None => Reply::message(422, "Invalid GitHub App manifest: not JSON"),
        Some(Err(problem)) => {
            Reply::message(422, &format!("Invalid GitHub App manifest: {problem}"))
        }
        Some(Ok(redirect_url)) => {
            let code = format!("fakecode{}", state.next_id());
            state.hooks.apps.push(CreatedApp {
                code: code.clone(),
                manifest: manifest.clone().unwrap_or_default(),
                converted: false,
            });
            let mut location = format!("{redirect_url}?code={code}");
            if !app_state.is_empty() {
                location.push_str("&state=");
                location.push_str(
                    &form_urlencoded::byte_serialize(app_state.as_bytes()).collect::<String>(),
                );
            }
            Reply {
                status: 302,
                body: None,
                headers: vec![("location".to_owned(), location)],
            }
        }
    };
    let recorded = RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        full_path: path.to_owned(),
        query: query.map(str::to_owned),
        status: reply.status,
        body: manifest,
    };
    Some((recorded, reply))
}

/// What GitHub requires of a manifest; the redirect URL when it is acceptable.
fn check_manifest(manifest: &Value) -> Result<String, String> {
    let text = |pointer: &str| manifest.pointer(pointer).and_then(Value::as_str);
    if text("/url").is_none_or(str::is_empty) {
        return Err("url is required".into());
    }
    if text("/hook_attributes/url").is_none_or(str::is_empty) {
        return Err("hook_attributes.url is required".into());
    }
    if !manifest["default_permissions"].is_object() {
        return Err("default_permissions must be an object".into());
    }
    text("/redirect_url")
        .filter(|url| url.starts_with("http://") || url.starts_with("https://"))
        .map(str::to_owned)
        .ok_or_else(|| "redirect_url must be an http(s) URL".into())
}

fn delivery_json(delivery: &HookDeliveryRecord) -> Value {
    json!({
        "id": delivery.id,
        "guid": delivery.guid,
        "delivered_at": delivery.delivered_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "redelivery": delivery.redelivery,
        "duration": 0.05,
        "status": if (200..300).contains(&delivery.status_code) { "OK" } else { "Invalid HTTP Response: 503" },
        "status_code": delivery.status_code,
        "event": delivery.event,
        "action": "synchronize",
        "installation_id": 77,
        "repository_id": 1001,
        "throttled_at": null
    })
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}
