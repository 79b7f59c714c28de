//! One error type for everything the GitHub client does, with the kinds a job has to tell apart
//! (retry later, give up, report a bug) kept distinct.

use http::{HeaderMap, StatusCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// GitHub documents "wait at least one minute" for a secondary rate limit that comes without a
/// `retry-after` header.
const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// An error from a GitHub REST call. Messages come from GitHub's answer or from the transport;
/// none of them contains a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    #[error("GitHub: not found")]
    NotFound,
    #[error("GitHub: bad credentials")]
    Unauthorized,
    #[error("GitHub: forbidden: {message}")]
    Forbidden { message: String },
    #[error("GitHub: rate limited{}", wait_text(.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    #[error("GitHub: server error {status}")]
    Server { status: u16 },
    #[error("GitHub: request timed out")]
    Timeout,
    #[error("GitHub: transport error: {message}")]
    Transport { message: String },
    /// GitHub refused the request itself (422 and other 4xx): retrying the same request cannot
    /// help.
    #[error("GitHub: request rejected ({status}): {message}")]
    Invalid { status: u16, message: String },
    #[error("GitHub: cannot read the answer: {message}")]
    Decode { message: String },
    /// The installation's write budget is spent for `wait` more: the job gives its worker slot
    /// back and comes again then, rather than holding the slot while it waits.
    #[error("GitHub write budget spent, a write frees up in {} ms", .wait.as_millis())]
    BudgetSpent { wait: Duration },
    /// The shared write budget could not be read (the database is unreachable).
    #[error("GitHub write budget: {message}")]
    WriteBudget { message: String },
    /// The client could not be set up (bad private key, bad URL, bad pacing).
    #[error("GitHub client configuration: {message}")]
    Config { message: String },
}

fn wait_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(", retry after {} s", wait.as_secs()),
        None => String::new(),
    }
}

impl GithubError {
    /// Whether the same request may succeed later (rate limits, 5xx, timeouts, broken
    /// connections).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Server { .. }
                | Self::Timeout
                | Self::Transport { .. }
                | Self::WriteBudget { .. }
                | Self::BudgetSpent { .. }
        )
    }

    /// How long GitHub asked us to wait, when it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            Self::BudgetSpent { wait } => Some(*wait),
            _ => None,
        }
    }

    /// Classifies a non-2xx answer. `now` is the wall clock, used to turn
    /// `x-ratelimit-reset` (epoch seconds) into a wait.
    pub fn from_response(
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: SystemTime,
    ) -> GithubError {
        let message = error_message(body, status);
        let code = status.as_u16();
        let rate_limited = match code {
            429 => true,
            403 => {
                headers.contains_key("retry-after")
                    || header_u64(headers, "x-ratelimit-remaining") == Some(0)
                    || mentions_rate_limit(&message)
            }
            _ => false,
        };
        if rate_limited {
            return GithubError::RateLimited {
                retry_after: rate_limit_wait(headers, &message, now),
            };
        }
        match code {
            401 => GithubError::Unauthorized,
            403 => GithubError::Forbidden { message },
            404 => GithubError::NotFound,
            500..=599 => GithubError::Server { status: code },
            _ => GithubError::Invalid {
                status: code,
                message,
            },
        }
    }

    /// Maps an error raised inside octocrab (transport failures, and GitHub's answers to the
    /// installation-token exchange, which octocrab performs itself).
    pub(crate) fn from_octocrab(error: octocrab::Error) -> GithubError {
        match error {
            octocrab::Error::GitHub { source, .. } => {
                let headers = source.headers.clone().unwrap_or_default();
                let body = serde_json::json!({ "message": source.message }).to_string();
                GithubError::from_response(
                    source.status_code,
                    &headers,
                    body.as_bytes(),
                    SystemTime::now(),
                )
            }
            octocrab::Error::JWT { source, .. } => GithubError::Config {
                message: format!("cannot sign the app JWT: {source}"),
            },
            other if is_timeout(&other) => GithubError::Timeout,
            other => GithubError::Transport {
                message: crate::outbound::with_tls_hint(error_chain(&other)),
            },
        }
    }
}

/// GitHub's `{"message": ...}`, or the start of a non-JSON body, or the status' reason.
fn error_message(body: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
    }
    if let Ok(Body {
        message: Some(message),
    }) = serde_json::from_slice::<Body>(body)
    {
        return message;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("unknown error")
            .to_owned()
    } else {
        text.chars().take(200).collect()
    }
}

fn mentions_rate_limit(message: &str) -> bool {
    message.to_ascii_lowercase().contains("rate limit")
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn rate_limit_wait(headers: &HeaderMap, message: &str, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(date) = chrono::DateTime::parse_from_rfc2822(value) {
            let at = UNIX_EPOCH + Duration::from_secs(date.timestamp().max(0) as u64);
            return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
        }
    }
    if header_u64(headers, "x-ratelimit-remaining") == Some(0)
        && let Some(reset) = header_u64(headers, "x-ratelimit-reset")
    {
        let at = UNIX_EPOCH + Duration::from_secs(reset);
        return Some(at.duration_since(now).unwrap_or(Duration::ZERO));
    }
    if message
        .to_ascii_lowercase()
        .contains("secondary rate limit")
    {
        return Some(SECONDARY_LIMIT_WAIT);
    }
    None
}

fn is_timeout(error: &octocrab::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        if current
            .to_string()
            .to_ascii_lowercase()
            .contains("timed out")
        {
            return true;
        }
        source = current.source();
    }
    false
}

/// The messages of an error and its sources, joined; octocrab's own `Display` often says only
/// "Service Error".
fn error_chain(error: &octocrab::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        let text = current.to_string();
        // snafu appends backtraces to some messages; keep the first line only.
        let first = text.lines().next().unwrap_or_default().to_owned();
        if !parts.contains(&first) {
            parts.push(first);
        }
        source = current.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn classify(status: u16, pairs: &[(&'static str, &str)], body: &str) -> GithubError {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        GithubError::from_response(
            StatusCode::from_u16(status).unwrap(),
            &headers(pairs),
            body.as_bytes(),
            now,
        )
    }

    #[test]
    fn plain_statuses_keep_their_kind() {
        assert_eq!(classify(401, &[], ""), GithubError::Unauthorized);
        assert_eq!(
            classify(404, &[], r#"{"message":"Not Found"}"#),
            GithubError::NotFound
        );
        assert_eq!(
            classify(
                403,
                &[],
                r#"{"message":"Resource not accessible by integration"}"#
            ),
            GithubError::Forbidden {
                message: "Resource not accessible by integration".into()
            }
        );
        assert_eq!(
            classify(502, &[], "<html>"),
            GithubError::Server { status: 502 }
        );
        assert_eq!(
            classify(422, &[], r#"{"message":"Validation Failed"}"#),
            GithubError::Invalid {
                status: 422,
                message: "Validation Failed".into()
            }
        );
    }

    #[test]
    fn too_many_requests_with_retry_after_seconds() {
        let error = classify(429, &[("retry-after", "30")], "");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
        assert!(error.is_retryable());
    }

    #[test]
    fn retry_after_as_http_date() {
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        let error = classify(429, &[("retry-after", "Tue, 14 Nov 2023 22:13:50 GMT")], "");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));
    }

    #[test]
    fn forbidden_with_retry_after_is_a_rate_limit() {
        let error = classify(403, &[("retry-after", "5")], r#"{"message":"slow down"}"#);
        assert_eq!(
            error,
            GithubError::RateLimited {
                retry_after: Some(Duration::from_secs(5))
            }
        );
    }

    #[test]
    fn exhausted_primary_limit_waits_until_reset() {
        let error = classify(
            403,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1700000090"),
            ],
            r#"{"message":"API rate limit exceeded for installation ID 1."}"#,
        );
        assert_eq!(error.retry_after(), Some(Duration::from_secs(90)));
        let past_reset = classify(
            429,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", "1600000000"),
            ],
            "",
        );
        assert_eq!(past_reset.retry_after(), Some(Duration::ZERO));
    }

    #[test]
    fn secondary_limit_message_without_headers() {
        let error = classify(
            403,
            &[],
            r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#,
        );
        assert_eq!(error.retry_after(), Some(SECONDARY_LIMIT_WAIT));
    }

    #[test]
    fn remaining_quota_does_not_make_a_forbidden_a_rate_limit() {
        let error = classify(
            403,
            &[("x-ratelimit-remaining", "4999")],
            r#"{"message":"no"}"#,
        );
        assert!(matches!(error, GithubError::Forbidden { .. }));
        assert!(!error.is_retryable());
    }

    #[test]
    fn non_json_body_becomes_the_message() {
        let error = classify(400, &[], "Problems parsing JSON");
        assert_eq!(
            error,
            GithubError::Invalid {
                status: 400,
                message: "Problems parsing JSON".into()
            }
        );
    }
}
