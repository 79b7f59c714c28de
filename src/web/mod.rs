//! HTTP routes besides the GitHub webhook intake: Slack interactivity, the dashboard and its
//! JSON API.

pub mod dashboard;
pub mod slack;
