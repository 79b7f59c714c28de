//! HTTP routes besides the GitHub webhook intake: Slack interactivity, the acknowledge links of
//! emails, metrics and deep health.

pub mod ack;
pub mod operations;
pub mod slack;
