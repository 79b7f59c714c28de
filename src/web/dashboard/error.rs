//! One mapping from the dashboard's errors to responses: JSON for the API.

use super::filters::BadParameter;
use crate::github::oauth::OAuthError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{}: {}", .0.name, .0.problem)]
    BadParameter(BadParameter),
    #[error("not logged in (log in at /dashboard/login, or send an API token)")]
    Unauthenticated,
    /// Also the answer for another installation's data: its existence is not revealed.
    #[error("not found")]
    NotFound,
    #[error("only an admin of this installation may do this")]
    Forbidden,
    #[error("missing or wrong CSRF token (send the X-CSRF-Token header of your session)")]
    Csrf,
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests: retry after {0} s")]
    RateLimited(u64),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("GitHub: {0}")]
    Github(#[from] OAuthError),
    #[error("no randomness available: {0}")]
    Random(#[from] getrandom::Error),
}

impl From<BadParameter> for ApiError {
    fn from(error: BadParameter) -> Self {
        Self::BadParameter(error)
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadParameter(_) => StatusCode::BAD_REQUEST,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Github(_) => StatusCode::BAD_GATEWAY,
            Self::Database(_) | Self::Random(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "dashboard request failed");
        }
        let message = if status == StatusCode::INTERNAL_SERVER_ERROR {
            "internal error".to_owned()
        } else {
            self.to_string()
        };
        let mut body = json!({ "error": message });
        if let Self::BadParameter(bad) = &self {
            body["parameter"] = json!(bad.name);
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited(seconds) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
