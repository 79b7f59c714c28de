//! HTTP routes besides the GitHub webhook intake: Slack interactivity and the acknowledge links
//! of emails.

pub mod ack;
pub mod slack;
