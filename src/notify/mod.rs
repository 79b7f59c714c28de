//! Outgoing notifications and the answers people give to them: Slack (Web API client, Block Kit
//! messages, button clicks), email (templates, SMTP, acknowledge links, digest schedule) and
//! PagerDuty.

pub mod digest;
pub mod email;
pub mod links;
pub mod pagerduty;
pub mod slack;
