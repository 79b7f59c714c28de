//! Process configuration from the environment (Probot-style names). A missing or invalid value
//! stops start-up with one line naming the variable; secret values never appear in messages or
//! `Debug` output.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A value that must never be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration error: {variable}: {problem}")]
pub struct SettingsError {
    pub variable: &'static str,
    pub problem: String,
}

/// Everything `tollgate serve` needs from its environment.
#[derive(Debug, Clone)]
pub struct AppSettings {
    pub app_id: u64,
    /// The GitHub App's RSA private key, PEM.
    pub private_key: Secret,
    /// Any of these verifies a delivery, so a secret can be rotated without downtime.
    pub webhook_secrets: Vec<Secret>,
    pub database_url: Secret,
    /// Without a trailing slash.
    pub github_api_url: String,
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    pub public_url: Option<String>,
    /// Evaluate draft pull requests too.
    pub evaluate_drafts: bool,
    /// How long the policy pack may run on one change (`POLICY_TIME_LIMIT_SECONDS`).
    pub policy_time_limit: Duration,
    /// `None` when `SLACK_BOT_TOKEN` is not set: the app runs without Slack.
    pub slack: Option<SlackSettings>,
    /// How long a Tier 1 alert may stay unacknowledged before it is escalated.
    pub alert_escalation_after: Duration,
    /// `None` when `SMTP_URL` is not set: no email.
    pub email: Option<EmailSettings>,
    /// `None` when `PAGERDUTY_ROUTING_KEY` is not set: escalations do not page.
    pub pagerduty: Option<PagerDutySettings>,
    /// How long old data is kept (`RETENTION_*`).
    pub retention: crate::operations::retention::RetentionSettings,
    /// `None` when `SESSION_KEY` is not set: no dashboard and no JSON API, the app still runs.
    pub dashboard: Option<DashboardSettings>,
    /// The root certificates every outbound client trusts: the system's, plus those of
    /// `GITHUB_CA_BUNDLE`.
    pub trust: crate::outbound::Trust,
}

/// Email, when configured: Tier 1 alerts, digests and escalations.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    pub smtp: crate::notify::email::SmtpTarget,
    /// The sender, e.g. `Tollgate <tollgate@example.com>`.
    pub from: String,
}

/// PagerDuty Events API v2, when configured: escalated Tier 1 alerts open incidents.
#[derive(Debug, Clone)]
pub struct PagerDutySettings {
    pub routing_key: Secret,
    /// Without a trailing slash.
    pub api_url: String,
}

/// The dashboard and JSON API, when configured: GitHub login and sessions.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// The GitHub App's OAuth client id (`GITHUB_CLIENT_ID`).
    pub client_id: String,
    pub client_secret: Secret,
    /// Where people log in, without a trailing slash (`GITHUB_WEB_URL`).
    pub web_url: String,
    /// Signs cookies (`SESSION_KEY`, 64 or more bytes, base64).
    pub session_key: SessionKey,
    /// A login role that is a member of `tollgate_dashboard`, for the dashboard's own pool
    /// (`DASHBOARD_DATABASE_URL`); without it the dashboard shares the main pool.
    pub database_url: Option<Secret>,
}

/// The key cookies are signed with: at least 64 random bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(Vec<u8>);

impl SessionKey {
    pub const MIN_BYTES: usize = 64;

    pub fn new(bytes: Vec<u8>) -> Option<Self> {
        (bytes.len() >= Self::MIN_BYTES).then_some(Self(bytes))
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionKey(***)")
    }
}

/// Slack, when configured: alerts and override approvals.
#[derive(Debug, Clone)]
pub struct SlackSettings {
    pub bot_token: Secret,
    pub signing_secret: Secret,
    /// Alerts and approval requests.
    pub channel: String,
    /// Escalations of unacknowledged alerts; without it they mention the channel instead.
    pub escalation_channel: Option<String>,
    /// Without a trailing slash.
    pub api_url: String,
}

/// Settings the database commands need (`tollgate migrate`).
pub fn database_url(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SettingsError> {
    required(lookup, "DATABASE_URL").map(Secret)
}

impl AppSettings {
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    /// Reads every variable through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let app_id = required(lookup, "APP_ID")?
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| invalid("APP_ID", "expected the GitHub App's numeric id"))?;
        let private_key = private_key(lookup)?;
        let webhook_secrets: Vec<Secret> = required(lookup, "WEBHOOK_SECRET")?
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
        if webhook_secrets.is_empty() {
            return Err(invalid("WEBHOOK_SECRET", "no secret given"));
        }
        let database_url = database_url(lookup)?;
        let github_api_url = optional(lookup, "GITHUB_API_URL")
            .unwrap_or_else(|| "https://api.github.com".to_owned());
        if !(github_api_url.starts_with("https://") || github_api_url.starts_with("http://")) {
            return Err(invalid("GITHUB_API_URL", "expected an http(s) URL"));
        }
        let port = match optional(lookup, "PORT") {
            None => 3000,
            Some(raw) => raw
                .trim()
                .parse::<u16>()
                .map_err(|_| invalid("PORT", "expected a port number (0-65535)"))?,
        };
        let host = optional(lookup, "HOST").unwrap_or_else(|| "0.0.0.0".to_owned());
        let listen = format!("{host}:{port}")
            .parse()
            .map_err(|_| invalid("HOST", "expected an IP address to listen on"))?;
        let log_format = match optional(lookup, "LOG_FORMAT").as_deref() {
            None | Some("pretty") => LogFormat::Pretty,
            Some("json") => LogFormat::Json,
            Some(_) => return Err(invalid("LOG_FORMAT", "expected json or pretty")),
        };
        let evaluate_drafts = match optional(lookup, "EVALUATE_DRAFTS").as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(_) => return Err(invalid("EVALUATE_DRAFTS", "expected true or false")),
        };
        Ok(Self {
            app_id,
            private_key,
            webhook_secrets,
            database_url,
            github_api_url: github_api_url.trim_end_matches('/').to_owned(),
            listen,
            log_format,
            public_url: optional(lookup, "PUBLIC_URL").map(|u| u.trim_end_matches('/').to_owned()),
            evaluate_drafts,
            policy_time_limit: policy_time_limit(lookup)?,
            slack: slack(lookup)?,
            alert_escalation_after: alert_escalation_after(lookup)?,
            email: email(lookup)?,
            pagerduty: pagerduty(lookup)?,
            retention: crate::operations::retention::RetentionSettings::from_lookup(lookup)?,
            dashboard: dashboard(lookup)?,
            trust: trust(lookup)?,
        })
    }
}

/// The system's roots, plus the certificates of the PEM file `GITHUB_CA_BUNDLE` names.
fn trust(lookup: &dyn Fn(&str) -> Option<String>) -> Result<crate::outbound::Trust, SettingsError> {
    use crate::outbound::{CA_BUNDLE_VARIABLE, Trust};
    match optional(lookup, CA_BUNDLE_VARIABLE) {
        None => Ok(Trust::system()),
        Some(path) => Trust::with_bundle(std::path::Path::new(path.trim()))
            .map_err(|e| invalid(CA_BUNDLE_VARIABLE, &e.to_string())),
    }
}

impl AppSettings {
    /// Where people open pull requests in a browser: github.com for the public API, the host of
    /// a GitHub Enterprise Server (`https://ghe.example/api/v3`), else the API URL itself.
    pub fn github_web_url(&self) -> String {
        let api = self.github_api_url.as_str();
        if api == "https://api.github.com" {
            return "https://github.com".to_owned();
        }
        api.strip_suffix("/api/v3").unwrap_or(api).to_owned()
    }
}

/// Slack is on when `SLACK_BOT_TOKEN` is set; then the signing secret and channel are required.
fn slack(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<SlackSettings>, SettingsError> {
    let Some(bot_token) = optional(lookup, "SLACK_BOT_TOKEN") else {
        return Ok(None);
    };
    let api_url = optional(lookup, "SLACK_API_URL")
        .unwrap_or_else(|| crate::notify::slack::DEFAULT_SLACK_API_URL.to_owned());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(invalid("SLACK_API_URL", "expected an http(s) URL"));
    }
    Ok(Some(SlackSettings {
        bot_token: Secret(bot_token.trim().to_owned()),
        signing_secret: Secret(required(lookup, "SLACK_SIGNING_SECRET")?.trim().to_owned()),
        channel: required(lookup, "SLACK_CHANNEL")?.trim().to_owned(),
        escalation_channel: optional(lookup, "SLACK_ESCALATION_CHANNEL")
            .map(|c| c.trim().to_owned()),
        api_url: api_url.trim_end_matches('/').to_owned(),
    }))
}

/// Email is on when `SMTP_URL` is set; then `EMAIL_FROM` is required.
fn email(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Option<EmailSettings>, SettingsError> {
    let Some(url) = optional(lookup, "SMTP_URL") else {
        return Ok(None);
    };
    let smtp = crate::notify::email::SmtpTarget::parse(&url)
        .map_err(|problem| invalid("SMTP_URL", &problem))?;
    let from = required(lookup, "EMAIL_FROM")?.trim().to_owned();
    if from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(invalid(
            "EMAIL_FROM",
            "expected an address, e.g. Tollgate <tollgate@example.com>",
        ));
    }
    Ok(Some(EmailSettings { smtp, from }))
}

/// PagerDuty is on when `PAGERDUTY_ROUTING_KEY` is set.
fn pagerduty(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<PagerDutySettings>, SettingsError> {
    let Some(routing_key) = optional(lookup, "PAGERDUTY_ROUTING_KEY") else {
        return Ok(None);
    };
    let api_url = optional(lookup, "PAGERDUTY_API_URL")
        .unwrap_or_else(|| crate::notify::pagerduty::DEFAULT_PAGERDUTY_API_URL.to_owned());
    if !(api_url.starts_with("https://") || api_url.starts_with("http://")) {
        return Err(invalid("PAGERDUTY_API_URL", "expected an http(s) URL"));
    }
    Ok(Some(PagerDutySettings {
        routing_key: Secret(routing_key.trim().to_owned()),
        api_url: api_url.trim_end_matches('/').to_owned(),
    }))
}

/// The dashboard is on when `SESSION_KEY` is set; then the OAuth credentials are required.
fn dashboard(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<DashboardSettings>, SettingsError> {
    use base64::Engine as _;
    let Some(raw_key) = optional(lookup, "SESSION_KEY") else {
        return Ok(None);
    };
    let session_key = base64::engine::general_purpose::STANDARD
        .decode(raw_key.trim())
        .ok()
        .and_then(SessionKey::new)
        .ok_or_else(|| {
            invalid(
                "SESSION_KEY",
                "expected 64 or more random bytes in base64 (openssl rand -base64 64)",
            )
        })?;
    let web_url =
        optional(lookup, "GITHUB_WEB_URL").unwrap_or_else(|| "https://github.com".to_owned());
    if !(web_url.starts_with("https://") || web_url.starts_with("http://")) {
        return Err(invalid("GITHUB_WEB_URL", "expected an http(s) URL"));
    }
    Ok(Some(DashboardSettings {
        client_id: required(lookup, "GITHUB_CLIENT_ID")?.trim().to_owned(),
        client_secret: Secret(required(lookup, "GITHUB_CLIENT_SECRET")?.trim().to_owned()),
        web_url: web_url.trim_end_matches('/').to_owned(),
        session_key,
        database_url: optional(lookup, "DASHBOARD_DATABASE_URL")
            .map(|u| Secret(u.trim().to_owned())),
    }))
}

fn alert_escalation_after(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Duration, SettingsError> {
    match optional(lookup, "ALERT_ESCALATION_MINUTES") {
        None => Ok(Duration::from_secs(15 * 60)),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|m| (1..=24 * 60).contains(m))
            .map(|m| Duration::from_secs(m * 60))
            .ok_or_else(|| invalid("ALERT_ESCALATION_MINUTES", "expected minutes (1-1440)")),
    }
}

fn policy_time_limit(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Duration, SettingsError> {
    match optional(lookup, "POLICY_TIME_LIMIT_SECONDS") {
        None => Ok(crate::policy::DEFAULT_TIME_LIMIT),
        Some(raw) => raw
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| (0.01..=600.0).contains(s))
            .map(Duration::from_secs_f64)
            .ok_or_else(|| invalid("POLICY_TIME_LIMIT_SECONDS", "expected seconds (0.01-600)")),
    }
}

fn optional(lookup: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<String> {
    lookup(name).filter(|v| !v.trim().is_empty())
}

fn required(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<String, SettingsError> {
    optional(lookup, name).ok_or_else(|| invalid(name, "not set"))
}

fn invalid(variable: &'static str, problem: &str) -> SettingsError {
    SettingsError {
        variable,
        problem: problem.to_owned(),
    }
}

/// `PRIVATE_KEY` (the PEM itself, `\n` escapes allowed) wins over `PRIVATE_KEY_PATH`.
fn private_key(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Secret, SettingsError> {
    let (variable, pem) = match optional(lookup, "PRIVATE_KEY") {
        Some(inline) => ("PRIVATE_KEY", inline.replace("\\n", "\n")),
        None => {
            let path = optional(lookup, "PRIVATE_KEY_PATH").ok_or_else(|| {
                invalid(
                    "PRIVATE_KEY_PATH",
                    "not set (set PRIVATE_KEY_PATH or PRIVATE_KEY)",
                )
            })?;
            let pem = std::fs::read_to_string(&path)
                .map_err(|e| invalid("PRIVATE_KEY_PATH", &format!("cannot read {path}: {e}")))?;
            ("PRIVATE_KEY_PATH", pem)
        }
    };
    octocrab::jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| invalid(variable, "not an RSA private key in PEM format"))?;
    Ok(Secret(pem))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../../tests/fixtures/test-app-key.pem");

    fn settings(vars: &[(&str, &str)]) -> Result<AppSettings, SettingsError> {
        AppSettings::from_lookup(&|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    fn complete() -> Vec<(&'static str, &'static str)> {
        vec![
            ("APP_ID", "12"),
            ("PRIVATE_KEY", KEY),
            ("WEBHOOK_SECRET", "new, old"),
            ("DATABASE_URL", "postgres://localhost/tollgate"),
        ]
    }

    #[test]
    fn defaults_apply() {
        let s = settings(&complete()).unwrap();
        assert_eq!(s.app_id, 12);
        assert_eq!(
            s.webhook_secrets,
            vec![Secret::new("new"), Secret::new("old")]
        );
        assert_eq!(s.github_api_url, "https://api.github.com");
        assert_eq!(s.listen.port(), 3000);
        assert_eq!(s.log_format, LogFormat::Pretty);
        assert!(s.evaluate_drafts);
        assert!(s.slack.is_none(), "Slack is off without a token");
        assert_eq!(s.alert_escalation_after, Duration::from_secs(900));
        assert!(s.dashboard.is_none(), "the dashboard is off without a key");
    }

    /// 64 bytes, base64.
    const SESSION_KEY: &str =
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

    #[test]
    fn the_dashboard_needs_oauth_credentials_once_a_session_key_is_set() {
        let mut vars = complete();
        vars.push(("SESSION_KEY", SESSION_KEY));
        assert_eq!(settings(&vars).unwrap_err().variable, "GITHUB_CLIENT_ID");
        vars.push(("GITHUB_CLIENT_ID", "Iv1.abc"));
        assert_eq!(
            settings(&vars).unwrap_err().variable,
            "GITHUB_CLIENT_SECRET"
        );
        vars.push(("GITHUB_CLIENT_SECRET", "client-secret-value"));
        let dashboard = settings(&vars)
            .unwrap()
            .dashboard
            .expect("the dashboard is on");
        assert_eq!(dashboard.client_id, "Iv1.abc");
        assert_eq!(dashboard.web_url, "https://github.com");
        assert_eq!(dashboard.session_key.expose().len(), 64);
        assert!(dashboard.database_url.is_none());
        let shown = format!("{dashboard:?}");
        assert!(
            !shown.contains("client-secret-value"),
            "the secret leaks into Debug output"
        );
        assert!(!shown.contains("AAEC"), "the key leaks into Debug output");

        vars.push(("GITHUB_WEB_URL", "http://127.0.0.1:9/"));
        vars.push(("DASHBOARD_DATABASE_URL", "postgres://dash@db/tollgate"));
        let dashboard = settings(&vars)
            .unwrap()
            .dashboard
            .expect("the dashboard is on");
        assert_eq!(dashboard.web_url, "http://127.0.0.1:9");
        assert!(dashboard.database_url.is_some());
    }

    #[test]
    fn a_short_or_garbled_session_key_is_refused() {
        for key in ["c2hvcnQ=", "not base64 at all!"] {
            let mut vars = complete();
            vars.push(("SESSION_KEY", key));
            vars.push(("GITHUB_CLIENT_ID", "Iv1.abc"));
            vars.push(("GITHUB_CLIENT_SECRET", "shh"));
            let error = settings(&vars).unwrap_err();
            assert_eq!(error.variable, "SESSION_KEY", "{key}");
            assert!(
                !error.to_string().contains(key),
                "the key leaks into the message"
            );
        }
        let mut vars = complete();
        vars.push(("SESSION_KEY", SESSION_KEY));
        vars.push(("GITHUB_CLIENT_ID", "Iv1.abc"));
        vars.push(("GITHUB_CLIENT_SECRET", "shh"));
        vars.push(("GITHUB_WEB_URL", "github.com"));
        assert_eq!(settings(&vars).unwrap_err().variable, "GITHUB_WEB_URL");
    }

    #[test]
    fn slack_needs_its_secret_and_channel_once_a_token_is_set() {
        let mut vars = complete();
        vars.push(("SLACK_BOT_TOKEN", "xoxb-1"));
        assert_eq!(
            settings(&vars).unwrap_err().variable,
            "SLACK_SIGNING_SECRET"
        );
        vars.push(("SLACK_SIGNING_SECRET", "shh"));
        assert_eq!(settings(&vars).unwrap_err().variable, "SLACK_CHANNEL");
        vars.push(("SLACK_CHANNEL", "C123"));
        vars.push(("SLACK_API_URL", "http://127.0.0.1:9/api/"));
        let slack = settings(&vars).unwrap().slack.expect("Slack is on");
        assert_eq!(slack.channel, "C123");
        assert_eq!(slack.api_url, "http://127.0.0.1:9/api");
        assert_eq!(slack.escalation_channel, None);
        assert!(
            !format!("{slack:?}").contains("xoxb"),
            "the token leaks into Debug output"
        );
        vars.push(("ALERT_ESCALATION_MINUTES", "0"));
        assert_eq!(
            settings(&vars).unwrap_err().variable,
            "ALERT_ESCALATION_MINUTES"
        );
    }

    #[test]
    fn the_policy_time_limit_defaults_to_ten_seconds_and_takes_fractions() {
        let mut vars = complete();
        let limit = |vars: &Vec<(&str, &str)>| settings(vars).map(|s| s.policy_time_limit);
        assert_eq!(limit(&vars).unwrap(), Duration::from_secs(10));
        vars.push(("POLICY_TIME_LIMIT_SECONDS", "2.5"));
        assert_eq!(limit(&vars).unwrap(), Duration::from_millis(2500));
        vars.pop();
        vars.push(("POLICY_TIME_LIMIT_SECONDS", "0"));
        assert_eq!(
            settings(&vars).unwrap_err().variable,
            "POLICY_TIME_LIMIT_SECONDS"
        );
    }

    #[test]
    fn email_and_pagerduty_are_off_until_configured() {
        let mut vars = complete();
        let s = settings(&vars).unwrap();
        assert!(s.email.is_none() && s.pagerduty.is_none());
        vars.push(("SMTP_URL", "smtp://u:hunter2@127.0.0.1:2525?tls=none"));
        assert_eq!(settings(&vars).unwrap_err().variable, "EMAIL_FROM");
        vars.push(("EMAIL_FROM", "not an address"));
        assert_eq!(settings(&vars).unwrap_err().variable, "EMAIL_FROM");
        vars.retain(|(k, _)| *k != "EMAIL_FROM");
        vars.push(("EMAIL_FROM", "Tollgate <tollgate@acme.test>"));
        vars.push(("PAGERDUTY_ROUTING_KEY", "R0UT1NGKEY"));
        let s = settings(&vars).unwrap();
        let email = s.email.expect("email is on");
        assert_eq!(email.smtp.port, 2525);
        let pagerduty = s.pagerduty.expect("PagerDuty is on");
        assert_eq!(pagerduty.api_url, "https://events.pagerduty.com");
        let shown = format!("{email:?} {pagerduty:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("R0UT1NGKEY"),
            "{shown}"
        );
        vars.push(("SMTP_URL", "ftp://x"));
        vars.rotate_right(1);
        assert_eq!(settings(&vars).unwrap_err().variable, "SMTP_URL");
    }

    #[test]
    fn each_missing_or_bad_value_names_its_variable() {
        let cases: [(&str, Option<&str>); 7] = [
            ("APP_ID", None),
            ("APP_ID", Some("twelve")),
            ("PRIVATE_KEY", Some("not a key")),
            ("WEBHOOK_SECRET", Some(" , ")),
            ("DATABASE_URL", None),
            ("PORT", Some("70000")),
            ("LOG_FORMAT", Some("xml")),
        ];
        for (variable, value) in cases {
            let mut vars = complete();
            vars.retain(|(k, _)| *k != variable);
            if let Some(value) = value {
                vars.push((variable, value));
            }
            let error = settings(&vars).unwrap_err();
            assert_eq!(error.variable, variable, "{error}");
            assert!(error.to_string().contains(variable));
        }
    }

    #[test]
    fn the_key_can_come_from_a_file_and_secrets_stay_hidden() {
        let mut vars = complete();
        vars.retain(|(k, _)| *k != "PRIVATE_KEY");
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test-app-key.pem"
        );
        vars.push(("PRIVATE_KEY_PATH", path));
        let s = settings(&vars).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("BEGIN RSA"),
            "the key leaks into Debug output"
        );
        assert!(
            !shown.contains("new"),
            "a webhook secret leaks into Debug output"
        );
        vars.retain(|(k, _)| *k != "PRIVATE_KEY_PATH");
        assert_eq!(settings(&vars).unwrap_err().variable, "PRIVATE_KEY_PATH");
    }
}
