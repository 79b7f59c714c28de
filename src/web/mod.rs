//! HTTP routes besides the GitHub webhook intake: Slack interactivity.

pub mod slack;
