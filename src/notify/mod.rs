//! Outgoing notifications and the answers people give to them. Slack for now: the Web API client,
//! the Block Kit messages and the verification and parsing of button clicks.

pub mod slack;
