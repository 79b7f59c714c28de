//! HTTP routes besides the GitHub webhook intake: Slack interactivity, the acknowledge links of
//! emails, metrics and deep health, the dashboard and its JSON API.

pub mod ack;
pub mod dashboard;
pub mod operations;
pub mod slack;
