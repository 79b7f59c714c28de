//! The HTTP transport under octocrab: a reqwest client built by [`Trust`], so that GitHub
//! requests trust `GITHUB_CA_BUNDLE` and go through `HTTPS_PROXY`/`NO_PROXY` like every other
//! outbound call. octocrab keeps what it is used for: the app JWT, installation tokens and their
//! cache, and the base URI.

use crate::outbound::Trust;
use http_body_util::BodyExt as _;
use octocrab::OctoBody;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends octocrab's requests with reqwest.
#[derive(Clone)]
pub(super) struct ReqwestTransport {
    http: reqwest::Client,
}

impl ReqwestTransport {
    pub(super) fn new(
        trust: &Trust,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let http = trust
            .http_client()
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(connect_timeout)
            .read_timeout(read_timeout)
            .build()?;
        Ok(Self { http })
    }
}

impl tower_service::Service<http::Request<OctoBody>> for ReqwestTransport {
    type Response = http::Response<reqwest::Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<OctoBody>) -> Self::Future {
        let http = self.http.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            // Request bodies are small JSON documents: collected, then handed to reqwest whole.
            let body = body.collect().await?.to_bytes();
            let request = reqwest::Request::try_from(http::Request::from_parts(parts, body))?;
            let response = http.execute(request).await?;
            Ok(http::Response::from(response))
        })
    }
}
