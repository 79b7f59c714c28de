//! `GET /metrics` (Prometheus text format), `GET /api/health` (the deep health check, JSON) and
//! the middleware that times every HTTP request by the route it matched.

use crate::operations;
use crate::telemetry::metrics;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use sqlx::PgPool;
use std::time::Instant;

pub fn router(pool: PgPool) -> Router {
    Router::new()
        .route("/metrics", get(render_metrics))
        .route("/api/health", get(health))
        .with_state(pool)
}

async fn render_metrics(State(pool): State<PgPool>) -> Response {
    operations::sample_metrics(&pool).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics::render(),
    )
        .into_response()
}

/// 200 while no check is critical (warnings included), 503 otherwise, with the report either way.
async fn health(State(pool): State<PgPool>) -> Response {
    let report = operations::check_health(&pool).await;
    let status = if report.is_critical() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(report)).into_response()
}

/// Records each request's duration labelled by its matched route (`/api/github/webhooks`), never
/// the raw path, so unknown paths cannot create series.
pub async fn track_http(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::record_http_request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
