//! HTTP routes besides the GitHub webhook intake: Slack interactivity, metrics and deep health.

pub mod operations;
pub mod slack;
