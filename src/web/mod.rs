//! HTTP routes besides the GitHub webhook intake: Slack interactivity, the acknowledge links
//! of emails, and the dashboard with its JSON API.

pub mod ack;
pub mod dashboard;
pub mod slack;
