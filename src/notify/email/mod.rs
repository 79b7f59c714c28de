//! Email: the messages (minijinja templates, HTML and plain text) and the SMTP transport.

mod smtp;
#[cfg(test)]
mod tests;

pub use smtp::{Mailer, SmtpError, SmtpTarget, TlsMode};

use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use std::sync::LazyLock;

const TEMPLATES: [(&str, &str); 11] = [
    (
        "email/layout.html.j2",
        include_str!("../../../templates/email/layout.html.j2"),
    ),
    (
        "email/alert.subject.j2",
        include_str!("../../../templates/email/alert.subject.j2"),
    ),
    (
        "email/alert.txt.j2",
        include_str!("../../../templates/email/alert.txt.j2"),
    ),
    (
        "email/alert.html.j2",
        include_str!("../../../templates/email/alert.html.j2"),
    ),
    (
        "email/digest_tier2.subject.j2",
        include_str!("../../../templates/email/digest_tier2.subject.j2"),
    ),
    (
        "email/digest_tier2.txt.j2",
        include_str!("../../../templates/email/digest_tier2.txt.j2"),
    ),
    (
        "email/digest_tier2.html.j2",
        include_str!("../../../templates/email/digest_tier2.html.j2"),
    ),
    (
        "email/digest_tier3.subject.j2",
        include_str!("../../../templates/email/digest_tier3.subject.j2"),
    ),
    (
        "email/digest_tier3.txt.j2",
        include_str!("../../../templates/email/digest_tier3.txt.j2"),
    ),
    (
        "email/digest_tier3.html.j2",
        include_str!("../../../templates/email/digest_tier3.html.j2"),
    ),
    (
        "email/ack_page.html.j2",
        include_str!("../../../templates/email/ack_page.html.j2"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = crate::report::strict_environment();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html.j2") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env
});

/// The templates are part of the binary and covered by the snapshot tests, so a failure here is
/// a bug, not an input problem.
fn render(name: &str, view: &impl Serialize) -> String {
    let context = serde_json::to_value(view).expect("email views serialize to JSON");
    ENV.get_template(name)
        .and_then(|template| template.render(crate::report::from_json(context)))
        .unwrap_or_else(|e| panic!("template {name} failed to render: {e:#}"))
}

/// A rendered email: one subject line, a plain-text and an HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

fn render_email(stem: &str, view: &impl Serialize) -> RenderedEmail {
    let subject = render(&format!("email/{stem}.subject.j2"), view);
    RenderedEmail {
        // A subject is one line, whatever a title or login holds.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text: render(&format!("email/{stem}.txt.j2"), view),
        html: render(&format!("email/{stem}.html.j2"), view),
    }
}

/// One violation as an email lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ViolationLine {
    /// `path:line`, or the path alone, or "pull request" for rules about its metadata.
    pub location: String,
    pub message: String,
}

/// A Tier 1 alert, first sent or escalated.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEmail {
    pub organisation: String,
    pub repository: String,
    pub pr_number: i32,
    pub pr_title: String,
    pub pr_url: String,
    pub author: Option<String>,
    pub rule_id: String,
    pub rule_name: String,
    pub remediation: String,
    pub violations: Vec<ViolationLine>,
    /// open, acknowledged (by whom) or resolved.
    pub status: String,
    pub escalated: bool,
    pub escalation_minutes: u64,
    pub ack_url: Option<String>,
}

impl AlertEmail {
    pub fn render(&self) -> RenderedEmail {
        render_email("alert", self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PrLink {
    pub number: i32,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleCount {
    pub rule_id: String,
    pub rule_name: String,
    pub count: i64,
    /// The pull requests concerned (Tier 2 only).
    pub prs: Vec<PrLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepositoryRules {
    pub repository: String,
    pub rules: Vec<RuleCount>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OverrideLine {
    pub repository: String,
    pub pr_number: i32,
    pub rules: Vec<String>,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub reason: String,
}

/// The Tier 2 daily digest, first sent or escalated.
#[derive(Debug, Clone, Serialize)]
pub struct DailyDigestEmail {
    pub organisation: String,
    /// The period in the installation's time zone, e.g. "Mon 7 Dec 09:00 – Tue 8 Dec 09:00 (UTC)".
    pub period: String,
    pub count: i64,
    pub repositories: Vec<RepositoryRules>,
    pub overrides: Vec<OverrideLine>,
    pub dashboard_url: Option<String>,
    pub ack_url: Option<String>,
    pub escalated: bool,
    pub escalation_hours: u64,
}

impl DailyDigestEmail {
    pub fn render(&self) -> RenderedEmail {
        render_email("digest_tier2", self)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RepositoryCount {
    pub repository: String,
    pub count: i64,
}

/// The Tier 3 weekly digest.
#[derive(Debug, Clone, Serialize)]
pub struct WeeklyDigestEmail {
    pub organisation: String,
    pub period: String,
    pub count: i64,
    pub previous_count: i64,
    /// "up 5", "down 3" or "no change".
    pub trend: String,
    pub top_rules: Vec<RuleCount>,
    pub top_repositories: Vec<RepositoryCount>,
    pub dashboard_url: Option<String>,
}

impl WeeklyDigestEmail {
    pub fn render(&self) -> RenderedEmail {
        render_email("digest_tier3", self)
    }
}

/// How this week compares with the one before, in words.
pub fn trend_words(count: i64, previous: i64) -> String {
    match count.cmp(&previous) {
        std::cmp::Ordering::Greater => format!("up {}", count - previous),
        std::cmp::Ordering::Less => format!("down {}", previous - count),
        std::cmp::Ordering::Equal => "no change".to_owned(),
    }
}

/// The page an acknowledge link opens.
#[derive(Debug, Clone, Serialize)]
pub struct AckPage {
    /// confirm, done or refused.
    pub state: &'static str,
    /// "the alert R01 on acme/widgets#12", "the Tier 2 digest of …".
    pub what: String,
    pub problem: String,
}

impl AckPage {
    pub fn render(&self) -> String {
        render("email/ack_page.html.j2", self)
    }
}
