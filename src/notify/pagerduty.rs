//! PagerDuty Events API v2: trigger, acknowledge and resolve incidents for escalated alerts.
//! Every event of one alert carries the same dedup key, so a retried trigger never opens a
//! second incident and a resolve closes the one the trigger opened.

use crate::config::Secret;
use crate::outbound::Trust;
use serde::Serialize;
use std::time::Duration;

pub const DEFAULT_PAGERDUTY_API_URL: &str = "https://events.pagerduty.com";

#[derive(Debug, thiserror::Error)]
pub enum PagerDutyError {
    #[error("PagerDuty: {message}")]
    Retryable {
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("PagerDuty refused the event: {0}")]
    Refused(String),
}

/// One event as the Events API takes it.
#[derive(Debug, Clone, Serialize)]
pub struct PagerDutyEvent {
    pub event_action: String,
    pub dedup_key: String,
    /// Only for `trigger`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payload: Option<EventPayload>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<EventLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventPayload {
    pub summary: String,
    pub source: String,
    pub severity: &'static str,
    pub component: String,
    pub group: String,
    pub class: String,
    pub custom_details: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct EventLink {
    pub href: String,
    pub text: String,
}

#[derive(Clone)]
pub struct PagerDutyClient {
    http: reqwest::Client,
    enqueue_url: String,
    routing_key: Secret,
}

impl PagerDutyClient {
    pub fn new(api_url: &str, routing_key: Secret, trust: &Trust) -> Result<Self, reqwest::Error> {
        let http = trust
            .http_client()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            enqueue_url: format!("{}/v2/enqueue", api_url.trim_end_matches('/')),
            routing_key,
        })
    }

    pub async fn send(&self, event: &PagerDutyEvent) -> Result<(), PagerDutyError> {
        let mut body = serde_json::to_value(event).unwrap_or_default();
        body["routing_key"] = self.routing_key.expose().into();
        let response = self
            .http
            .post(&self.enqueue_url)
            .json(&body)
            .send()
            .await
            .map_err(|e| PagerDutyError::Retryable {
                message: e.without_url().to_string(),
                retry_after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        let message = format!("HTTP {}: {}", status.as_u16(), text.trim());
        if status.as_u16() == 429 || status.is_server_error() {
            Err(PagerDutyError::Retryable {
                message,
                retry_after,
            })
        } else {
            Err(PagerDutyError::Refused(message))
        }
    }
}
