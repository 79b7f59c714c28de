//! Support for the integration tests: a fake GitHub HTTP server, the check of requests against
//! GitHub's OpenAPI description, and small helpers.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

pub mod dashboard;
pub mod fake_github;
pub mod fake_pagerduty;
pub mod fake_slack;
pub mod openapi;
pub mod patches;
pub mod release;
pub mod shared;
pub mod smtp;
pub mod test_app;
pub mod tls;

use std::time::Duration;

/// The test GitHub App's private key.
pub const TEST_APP_KEY: &str = include_str!("../fixtures/test-app-key.pem");

/// Polls `condition` every 20 ms until it holds (true) or `timeout` passes (false). Tests wait on
/// conditions, never on fixed sleeps.
#[must_use = "assert on the result: false means the condition never held"]
pub async fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Nearest-rank percentile (`p` in 0–100) of sorted samples, for the benches' figures.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
