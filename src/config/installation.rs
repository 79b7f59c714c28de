//! The installation config: `tollgate.yml` at the root of the installation account's `.github`
//! repository (default branch). It holds what concerns the whole organisation rather than one
//! repository: where alerts go and when digests are sent (`alerts`), and who administers the
//! dashboard (`dashboard`). Parsed strictly, like `.github/tollgate.yml`: an unknown key or a
//! bad value is an error that names the key.

use super::overrides::Approver;
use super::repo::parse_bounded_yaml;
use chrono::{NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::Deserialize;
use std::time::Duration;

/// The repository of the installation's account that holds the file.
pub const INSTALLATION_CONFIG_REPO: &str = ".github";
/// The file's path in that repository.
pub const INSTALLATION_CONFIG_PATH: &str = "tollgate.yml";

/// The file as written; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstallationConfigFile {
    #[serde(default)]
    pub alerts: AlertsFile,
    #[serde(default)]
    pub dashboard: DashboardFile,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardFile {
    /// Logins and `org/team` slugs that administer the installation on the dashboard, beside
    /// the organisation's owners.
    #[serde(default)]
    pub admins: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsFile {
    #[serde(default)]
    pub recipients: RecipientsFile,
    pub timezone: Option<String>,
    pub quiet_hours: Option<QuietHoursFile>,
    pub tier2: Option<Tier2File>,
    pub tier3: Option<Tier3File>,
    pub escalation: Option<EscalationFile>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsFile {
    #[serde(default)]
    pub tier1: Vec<String>,
    #[serde(default)]
    pub tier2: Vec<String>,
    #[serde(default)]
    pub tier3: Vec<String>,
    #[serde(default)]
    pub escalation: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursFile {
    pub start: Option<String>,
    pub end: Option<String>,
    pub weekends: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier2File {
    pub threshold: Option<i64>,
    pub send_at: Option<String>,
    pub max_per_day: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier3File {
    pub threshold: Option<i64>,
    pub send_at: Option<String>,
    pub day: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationFile {
    pub tier1_minutes: Option<i64>,
    pub tier2_hours: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstallationConfigError {
    #[error("{0}")]
    Syntax(String),
    #[error("{key}: {problem}")]
    Invalid { key: String, problem: String },
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> InstallationConfigError {
    InstallationConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// The resolved config of one installation.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstallationConfig {
    pub alerts: AlertSettings,
    pub dashboard: DashboardSettings,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct DashboardSettings {
    pub admins: Vec<Approver>,
}

/// Email addresses per purpose, each checked to be an address.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recipients {
    pub tier1: Vec<String>,
    pub tier2: Vec<String>,
    pub tier3: Vec<String>,
    pub escalation: Vec<String>,
}

/// When Tier 2 and Tier 3 mail is held back (Tier 1 is never quiet). The window may wrap past
/// midnight (18:00–09:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub start: NaiveTime,
    pub end: NaiveTime,
    pub weekends: bool,
}

impl QuietHours {
    /// Whether a local time of day falls in the window.
    pub fn contains_time(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    pub fn is_quiet_day(&self, day: Weekday) -> bool {
        self.weekends && matches!(day, Weekday::Sat | Weekday::Sun)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DailyDigest {
    /// Fewest OVERRIDE-tier violations that make a digest worth sending.
    pub threshold: u32,
    pub send_at: NaiveTime,
    /// Most Tier 2 emails (digests and their escalations) sent to an installation in one day.
    pub max_per_day: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklyDigest {
    /// Fewest warnings that make a digest worth sending.
    pub threshold: u32,
    pub send_at: NaiveTime,
    pub day: Weekday,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertSettings {
    pub recipients: Recipients,
    pub timezone: Tz,
    pub quiet_hours: QuietHours,
    pub tier2: DailyDigest,
    pub tier3: WeeklyDigest,
    /// `None`: the deployment's default (`ALERT_ESCALATION_MINUTES`).
    pub tier1_escalation: Option<Duration>,
    pub tier2_escalation: Duration,
}

const NINE: NaiveTime = match NaiveTime::from_hms_opt(9, 0, 0) {
    Some(time) => time,
    None => unreachable!(),
};
const EIGHTEEN: NaiveTime = match NaiveTime::from_hms_opt(18, 0, 0) {
    Some(time) => time,
    None => unreachable!(),
};

impl Default for AlertSettings {
    fn default() -> Self {
        Self {
            recipients: Recipients::default(),
            timezone: Tz::UTC,
            quiet_hours: QuietHours {
                start: EIGHTEEN,
                end: NINE,
                weekends: true,
            },
            tier2: DailyDigest {
                threshold: 5,
                send_at: NINE,
                max_per_day: 5,
            },
            tier3: WeeklyDigest {
                threshold: 10,
                send_at: NINE,
                day: Weekday::Mon,
            },
            tier1_escalation: None,
            tier2_escalation: Duration::from_secs(4 * 3600),
        }
    }
}

impl InstallationConfigFile {
    pub fn parse(yaml: &str) -> Result<Self, InstallationConfigError> {
        parse_bounded_yaml(yaml).map_err(InstallationConfigError::Syntax)
    }
}

impl InstallationConfig {
    /// Parses and resolves a file's text in one step.
    pub fn from_yaml(yaml: &str) -> Result<Self, InstallationConfigError> {
        Self::resolve(&InstallationConfigFile::parse(yaml)?)
    }

    pub fn resolve(file: &InstallationConfigFile) -> Result<Self, InstallationConfigError> {
        let mut admins = Vec::with_capacity(file.dashboard.admins.len());
        for (index, value) in file.dashboard.admins.iter().enumerate() {
            let admin: Approver = value.parse().map_err(|_| {
                invalid(
                    format!("dashboard.admins[{index}]"),
                    format!("{value:?} is not a GitHub login or org/team slug"),
                )
            })?;
            admins.push(admin);
        }
        Ok(Self {
            alerts: resolve_alerts(&file.alerts)?,
            dashboard: DashboardSettings { admins },
        })
    }
}

fn resolve_alerts(file: &AlertsFile) -> Result<AlertSettings, InstallationConfigError> {
    let defaults = AlertSettings::default();
    let recipients = Recipients {
        tier1: addresses("tier1", &file.recipients.tier1)?,
        tier2: addresses("tier2", &file.recipients.tier2)?,
        tier3: addresses("tier3", &file.recipients.tier3)?,
        escalation: addresses("escalation", &file.recipients.escalation)?,
    };
    let timezone = match &file.timezone {
        None => defaults.timezone,
        Some(name) => name.trim().parse::<Tz>().map_err(|_| {
            invalid(
                "alerts.timezone",
                format!("{name:?} is not an IANA time zone (e.g. Europe/Berlin)"),
            )
        })?,
    };
    let quiet_hours = match &file.quiet_hours {
        None => defaults.quiet_hours,
        Some(q) => QuietHours {
            start: time_of_day("alerts.quiet_hours.start", q.start.as_deref())?
                .unwrap_or(defaults.quiet_hours.start),
            end: time_of_day("alerts.quiet_hours.end", q.end.as_deref())?
                .unwrap_or(defaults.quiet_hours.end),
            weekends: q.weekends.unwrap_or(defaults.quiet_hours.weekends),
        },
    };
    let tier2 = match &file.tier2 {
        None => defaults.tier2,
        Some(t) => DailyDigest {
            threshold: bounded("alerts.tier2.threshold", t.threshold, 1, 100_000)?
                .unwrap_or(defaults.tier2.threshold),
            send_at: time_of_day("alerts.tier2.send_at", t.send_at.as_deref())?
                .unwrap_or(defaults.tier2.send_at),
            max_per_day: bounded("alerts.tier2.max_per_day", t.max_per_day, 1, 100)?
                .unwrap_or(defaults.tier2.max_per_day),
        },
    };
    let tier3 = match &file.tier3 {
        None => defaults.tier3,
        Some(t) => WeeklyDigest {
            threshold: bounded("alerts.tier3.threshold", t.threshold, 1, 100_000)?
                .unwrap_or(defaults.tier3.threshold),
            send_at: time_of_day("alerts.tier3.send_at", t.send_at.as_deref())?
                .unwrap_or(defaults.tier3.send_at),
            day: match &t.day {
                None => defaults.tier3.day,
                Some(day) => day.trim().parse::<Weekday>().map_err(|_| {
                    invalid(
                        "alerts.tier3.day",
                        format!("{day:?} is not a day of the week (monday … sunday)"),
                    )
                })?,
            },
        },
    };
    let (tier1_escalation, tier2_escalation) = match &file.escalation {
        None => (None, defaults.tier2_escalation),
        Some(e) => (
            bounded("alerts.escalation.tier1_minutes", e.tier1_minutes, 1, 1440)?
                .map(|m| Duration::from_secs(u64::from(m) * 60)),
            bounded("alerts.escalation.tier2_hours", e.tier2_hours, 1, 168)?
                .map_or(defaults.tier2_escalation, |h| {
                    Duration::from_secs(u64::from(h) * 3600)
                }),
        ),
    };
    // A digest due inside quiet hours would never go out: say so now, not by silence.
    for (key, send_at) in [
        ("alerts.tier2.send_at", tier2.send_at),
        ("alerts.tier3.send_at", tier3.send_at),
    ] {
        if quiet_hours.contains_time(send_at) {
            return Err(invalid(
                key,
                format!(
                    "{} falls in the quiet hours ({}–{}), when digests are held back",
                    send_at.format("%H:%M"),
                    quiet_hours.start.format("%H:%M"),
                    quiet_hours.end.format("%H:%M")
                ),
            ));
        }
    }
    if quiet_hours.is_quiet_day(tier3.day) {
        return Err(invalid(
            "alerts.tier3.day",
            "weekends are quiet (alerts.quiet_hours.weekends), so a weekly digest on that day would never be sent",
        ));
    }
    Ok(AlertSettings {
        recipients,
        timezone,
        quiet_hours,
        tier2,
        tier3,
        tier1_escalation,
        tier2_escalation,
    })
}

fn addresses(purpose: &str, raw: &[String]) -> Result<Vec<String>, InstallationConfigError> {
    raw.iter()
        .enumerate()
        .map(|(index, value)| {
            value
                .trim()
                .parse::<lettre::Address>()
                .map(|address| address.to_string())
                .map_err(|_| {
                    invalid(
                        format!("alerts.recipients.{purpose}[{index}]"),
                        format!("{value:?} is not an email address"),
                    )
                })
        })
        .collect()
}

fn time_of_day(key: &str, raw: Option<&str>) -> Result<Option<NaiveTime>, InstallationConfigError> {
    raw.map(|text| {
        NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
            invalid(
                key,
                format!("{text:?} is not a time of day (HH:MM, 24-hour)"),
            )
        })
    })
    .transpose()
}

fn bounded(
    key: &str,
    raw: Option<i64>,
    min: u32,
    max: u32,
) -> Result<Option<u32>, InstallationConfigError> {
    raw.map(|value| {
        u32::try_from(value)
            .ok()
            .filter(|v| (min..=max).contains(v))
            .ok_or_else(|| invalid(key, format!("{value} is out of range ({min} to {max})")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn an_empty_file_means_the_seed_defaults() {
        let config = InstallationConfig::from_yaml("").unwrap();
        let alerts = &config.alerts;
        assert_eq!(alerts.timezone, Tz::UTC);
        assert_eq!(alerts.quiet_hours.start, hm(18, 0));
        assert_eq!(alerts.quiet_hours.end, hm(9, 0));
        assert!(alerts.quiet_hours.weekends);
        assert_eq!(alerts.tier2.threshold, 5);
        assert_eq!(alerts.tier2.max_per_day, 5);
        assert_eq!(alerts.tier3.threshold, 10);
        assert_eq!(alerts.tier3.day, Weekday::Mon);
        assert_eq!(alerts.tier1_escalation, None);
        assert_eq!(alerts.tier2_escalation, Duration::from_secs(4 * 3600));
        assert!(config.dashboard.admins.is_empty());
    }

    #[test]
    fn a_full_file_resolves() {
        let config = InstallationConfig::from_yaml(
            r#"
alerts:
  recipients:
    tier1: [oncall@acme.test]
    tier2: [compliance@acme.test, lead@acme.test]
    tier3: [everyone@acme.test]
    escalation: [cto@acme.test]
  timezone: Europe/Berlin
  quiet_hours: { start: "19:00", end: "08:00", weekends: false }
  tier2: { threshold: 3, send_at: "08:30", max_per_day: 2 }
  tier3: { threshold: 20, send_at: "10:00", day: friday }
  escalation: { tier1_minutes: 30, tier2_hours: 2 }
dashboard:
  admins: [carol, acme/security]
"#,
        )
        .unwrap();
        let alerts = &config.alerts;
        assert_eq!(alerts.recipients.tier2.len(), 2);
        assert_eq!(alerts.timezone, chrono_tz::Europe::Berlin);
        assert!(!alerts.quiet_hours.weekends);
        assert_eq!(alerts.tier2.send_at, hm(8, 30));
        assert_eq!(alerts.tier3.day, Weekday::Fri);
        assert_eq!(alerts.tier1_escalation, Some(Duration::from_secs(1800)));
        assert_eq!(alerts.tier2_escalation, Duration::from_secs(7200));
        assert_eq!(config.dashboard.admins.len(), 2);
    }

    #[test]
    fn quiet_hours_wrap_past_midnight() {
        let quiet = AlertSettings::default().quiet_hours;
        assert!(quiet.contains_time(hm(18, 0)));
        assert!(quiet.contains_time(hm(23, 59)));
        assert!(quiet.contains_time(hm(8, 59)));
        assert!(!quiet.contains_time(hm(9, 0)));
        assert!(!quiet.contains_time(hm(17, 59)));
        let daytime = QuietHours {
            start: hm(12, 0),
            end: hm(13, 0),
            weekends: false,
        };
        assert!(daytime.contains_time(hm(12, 30)));
        assert!(!daytime.contains_time(hm(13, 0)));
        assert!(!daytime.is_quiet_day(Weekday::Sun));
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("alerts: { colour: red }", "colour"),
            ("alerts: { timezone: Mars/Base }", "alerts.timezone"),
            (
                "alerts: { recipients: { tier1: [oncall] } }",
                "alerts.recipients.tier1[0]",
            ),
            (
                "alerts: { tier2: { send_at: '9am' } }",
                "alerts.tier2.send_at",
            ),
            (
                "alerts: { tier2: { send_at: '20:00' } }",
                "alerts.tier2.send_at",
            ),
            (
                "alerts: { tier2: { threshold: 0 } }",
                "alerts.tier2.threshold",
            ),
            (
                "alerts: { tier2: { max_per_day: -1 } }",
                "alerts.tier2.max_per_day",
            ),
            ("alerts: { tier3: { day: someday } }", "alerts.tier3.day"),
            ("alerts: { tier3: { day: sunday } }", "alerts.tier3.day"),
            (
                "alerts: { escalation: { tier1_minutes: 0 } }",
                "alerts.escalation.tier1_minutes",
            ),
            (
                "alerts: { quiet_hours: { start: '25:00' } }",
                "alerts.quiet_hours.start",
            ),
            (
                "dashboard: { admins: ['not a login'] }",
                "dashboard.admins[0]",
            ),
        ];
        for (yaml, key) in cases {
            let message = InstallationConfig::from_yaml(yaml).unwrap_err().to_string();
            assert!(
                message.contains(key),
                "{yaml:?} gave {message:?}, which does not name {key}"
            );
        }
    }
}
