//! The deep health check (`GET /api/health`): what was measured goes in, a status per check comes
//! out. Pure, so every threshold is tested without a database.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Worst wins: the report's status is the worst of its checks'.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Critical,
}

/// Warning and critical limits of a measured value: a value above a limit reaches that status.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub warning_above: f64,
    pub critical_above: f64,
}

impl Thresholds {
    fn status(self, value: f64) -> Status {
        if value > self.critical_above {
            Status::Critical
        } else if value > self.warning_above {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

/// Share of the pool's connection limit in use.
pub const POOL_UTILISATION: Thresholds = Thresholds {
    warning_above: 0.70,
    critical_above: 0.90,
};
/// Mean duration of the check's own probe queries, in milliseconds.
pub const QUERY_TIME_MS: Thresholds = Thresholds {
    warning_above: 500.0,
    critical_above: 1000.0,
};
/// Share of failed notification attempts over [`ALERT_WINDOW`], per channel.
pub const ALERT_FAILURE_RATE: Thresholds = Thresholds {
    warning_above: 0.05,
    critical_above: 0.20,
};
/// How long the oldest ready job has waited, in seconds.
pub const OLDEST_READY_JOB_SECONDS: Thresholds = Thresholds {
    warning_above: 300.0,
    critical_above: 900.0,
};
/// The window of notification attempts the failure rate is computed over.
pub const ALERT_WINDOW: Duration = Duration::from_secs(60 * 60);
/// While GitHub calls fail, how long since the last success is still only a warning.
pub const GITHUB_OUTAGE_CRITICAL_AFTER: Duration = Duration::from_secs(15 * 60);

/// Notification attempts of one channel over the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelAttempts {
    pub channel: String,
    pub delivered: i64,
    pub failed: i64,
}

/// Everything the checks look at. `None` where the database could not be read.
#[derive(Debug, Clone)]
pub struct HealthInputs {
    pub now: DateTime<Utc>,
    pub pool_in_use: u32,
    pub pool_max: u32,
    /// Mean duration of the probe queries; `None` when the database did not answer.
    pub average_query: Option<Duration>,
    pub database_error: Option<String>,
    pub notifications: Option<Vec<ChannelAttempts>>,
    pub oldest_ready_job: Option<Duration>,
    pub github_last_success: Option<DateTime<Utc>>,
    pub github_last_failure: Option<DateTime<Utc>>,
    /// Which GitHub this is, once known.
    pub github_server: Option<crate::github::server::GithubServer>,
    /// `Err` names the missing migrations (or why they could not be read).
    pub migrations: Result<(), String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub status: Status,
    /// The measured value, in `unit`; absent when it could not be measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// Extra facts: per-channel rates, the last GitHub failure, missing migrations, an error.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Check {
    fn measured(value: f64, unit: &'static str, thresholds: Thresholds) -> Self {
        Self {
            status: thresholds.status(value),
            value: Some(value),
            unit: Some(unit),
            thresholds: Some(thresholds),
            details: BTreeMap::new(),
        }
    }

    fn unmeasured(status: Status, error: Option<&str>) -> Self {
        let mut details = BTreeMap::new();
        if let Some(error) = error {
            details.insert("error".to_owned(), error.into());
        }
        Self {
            status,
            value: None,
            unit: None,
            thresholds: None,
            details,
        }
    }

    fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthReport {
    pub status: Status,
    pub checked_at: DateTime<Utc>,
    pub checks: BTreeMap<&'static str, Check>,
}

impl HealthReport {
    pub fn is_critical(&self) -> bool {
        self.status == Status::Critical
    }
}

/// Applies the thresholds. A check whose input could not be read is critical when the database
/// itself is down (nothing works then) and a warning otherwise.
pub fn assess(inputs: &HealthInputs) -> HealthReport {
    let unreadable = if inputs.database_error.is_some() {
        Status::Critical
    } else {
        Status::Warning
    };
    let error = inputs.database_error.as_deref();
    let mut checks = BTreeMap::new();
    checks.insert("database_pool", pool_check(inputs));
    checks.insert(
        "query_time",
        match inputs.average_query {
            Some(average) => Check::measured(average.as_secs_f64() * 1000.0, "ms", QUERY_TIME_MS),
            None => Check::unmeasured(Status::Critical, error),
        },
    );
    checks.insert(
        "alert_delivery",
        match &inputs.notifications {
            Some(channels) => alert_delivery_check(channels),
            None => Check::unmeasured(unreadable, error),
        },
    );
    checks.insert(
        "job_queue",
        match inputs.oldest_ready_job {
            Some(age) => Check::measured(age.as_secs_f64(), "s", OLDEST_READY_JOB_SECONDS),
            None => Check::unmeasured(unreadable, error),
        },
    );
    checks.insert("github", github_check(inputs));
    checks.insert(
        "migrations",
        match &inputs.migrations {
            Ok(()) => Check::unmeasured(Status::Ok, None),
            Err(problem) => Check::unmeasured(Status::Critical, Some(problem)),
        },
    );
    let status = checks
        .values()
        .map(|c| c.status)
        .max()
        .unwrap_or(Status::Ok);
    HealthReport {
        status,
        checked_at: inputs.now,
        checks,
    }
}

fn pool_check(inputs: &HealthInputs) -> Check {
    let utilisation = if inputs.pool_max == 0 {
        1.0
    } else {
        f64::from(inputs.pool_in_use) / f64::from(inputs.pool_max)
    };
    Check::measured(utilisation, "ratio", POOL_UTILISATION)
        .with("in_use", inputs.pool_in_use)
        .with("max", inputs.pool_max)
}

/// The worst channel's failure rate decides; a channel with no attempts in the window is fine.
fn alert_delivery_check(channels: &[ChannelAttempts]) -> Check {
    let rate = |c: &ChannelAttempts| {
        let total = c.delivered + c.failed;
        if total == 0 {
            0.0
        } else {
            c.failed as f64 / total as f64
        }
    };
    let worst = channels.iter().map(rate).fold(0.0, f64::max);
    let per_channel: serde_json::Map<String, serde_json::Value> = channels
        .iter()
        .map(|c| {
            (
                c.channel.clone(),
                serde_json::json!({ "delivered": c.delivered, "failed": c.failed, "failure_rate": rate(c) }),
            )
        })
        .collect();
    Check::measured(worst, "ratio", ALERT_FAILURE_RATE)
        .with("window_seconds", ALERT_WINDOW.as_secs())
        .with("channels", per_channel)
}

/// Fine while the last GitHub call succeeded (or none was made yet). While calls fail, a warning
/// at first and critical once no call has succeeded for [`GITHUB_OUTAGE_CRITICAL_AFTER`].
fn github_check(inputs: &HealthInputs) -> Check {
    let since_success = inputs
        .github_last_success
        .map(|at| (inputs.now - at).num_milliseconds().max(0) as f64 / 1000.0);
    let failing = match (inputs.github_last_success, inputs.github_last_failure) {
        (_, None) => false,
        (None, Some(_)) => true,
        (Some(success), Some(failure)) => failure > success,
    };
    let status = match (failing, since_success) {
        (false, _) => Status::Ok,
        (true, Some(age)) if age <= GITHUB_OUTAGE_CRITICAL_AFTER.as_secs_f64() => Status::Warning,
        (true, _) => Status::Critical,
    };
    let mut check = Check {
        status,
        value: since_success,
        unit: Some("s"),
        thresholds: None,
        details: BTreeMap::new(),
    };
    check = check.with(
        "critical_after_failing_seconds",
        GITHUB_OUTAGE_CRITICAL_AFTER.as_secs(),
    );
    if let Some(success) = inputs.github_last_success {
        check = check.with("last_success", success.to_rfc3339());
    }
    if let Some(failure) = inputs.github_last_failure {
        check = check.with("last_failure", failure.to_rfc3339());
    }
    if let Some(server) = inputs.github_server {
        check = check.with("server", server.to_string());
        if let Some(version) = server.enterprise_version() {
            check = check.with("enterprise_version", version.to_string());
        }
        let off: serde_json::Map<String, serde_json::Value> = server
            .features_off()
            .into_iter()
            .map(|off| (off.feature.to_owned(), off.reason.into()))
            .collect();
        if !off.is_empty() {
            check = check.with("features_off", off);
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap()
    }

    fn healthy() -> HealthInputs {
        HealthInputs {
            now: now(),
            pool_in_use: 2,
            pool_max: 16,
            average_query: Some(Duration::from_millis(3)),
            database_error: None,
            notifications: Some(vec![ChannelAttempts {
                channel: "slack".into(),
                delivered: 100,
                failed: 0,
            }]),
            oldest_ready_job: Some(Duration::ZERO),
            github_last_success: Some(now() - chrono::Duration::seconds(30)),
            github_last_failure: None,
            github_server: None,
            migrations: Ok(()),
        }
    }

    fn status_of(inputs: &HealthInputs, check: &str) -> Status {
        assess(inputs).checks[check].status
    }

    #[test]
    fn a_healthy_app_is_ok_everywhere() {
        let report = assess(&healthy());
        assert_eq!(report.status, Status::Ok);
        assert!(report.checks.values().all(|c| c.status == Status::Ok));
        assert!(!report.is_critical());
    }

    #[test]
    fn pool_utilisation_warns_above_70_and_is_critical_above_90_percent() {
        for (in_use, expected) in [
            (11, Status::Ok),
            (12, Status::Warning),
            (14, Status::Warning),
            (15, Status::Critical),
        ] {
            let inputs = HealthInputs {
                pool_in_use: in_use,
                ..healthy()
            };
            assert_eq!(status_of(&inputs, "database_pool"), expected, "{in_use}/16");
        }
        let exactly_70 = HealthInputs {
            pool_in_use: 7,
            pool_max: 10,
            ..healthy()
        };
        assert_eq!(status_of(&exactly_70, "database_pool"), Status::Ok);
    }

    #[test]
    fn query_time_warns_above_500_ms_and_is_critical_above_1000_ms() {
        for (ms, expected) in [
            (500, Status::Ok),
            (501, Status::Warning),
            (1000, Status::Warning),
            (1001, Status::Critical),
        ] {
            let inputs = HealthInputs {
                average_query: Some(Duration::from_millis(ms)),
                ..healthy()
            };
            assert_eq!(status_of(&inputs, "query_time"), expected, "{ms} ms");
        }
    }

    #[test]
    fn the_worst_channel_sets_the_alert_delivery_status() {
        let channels = |slack_failed, email_failed| {
            Some(vec![
                ChannelAttempts {
                    channel: "email".into(),
                    delivered: 100 - email_failed,
                    failed: email_failed,
                },
                ChannelAttempts {
                    channel: "slack".into(),
                    delivered: 100 - slack_failed,
                    failed: slack_failed,
                },
            ])
        };
        for (slack, email, expected) in [
            (5, 0, Status::Ok),
            (6, 0, Status::Warning),
            (0, 20, Status::Warning),
            (0, 21, Status::Critical),
        ] {
            let inputs = HealthInputs {
                notifications: channels(slack, email),
                ..healthy()
            };
            assert_eq!(
                status_of(&inputs, "alert_delivery"),
                expected,
                "slack {slack}%, email {email}%"
            );
        }
        let quiet = HealthInputs {
            notifications: Some(vec![]),
            ..healthy()
        };
        assert_eq!(status_of(&quiet, "alert_delivery"), Status::Ok);
    }

    #[test]
    fn an_old_ready_job_warns_after_5_minutes_and_is_critical_after_15() {
        for (seconds, expected) in [
            (300, Status::Ok),
            (301, Status::Warning),
            (901, Status::Critical),
        ] {
            let inputs = HealthInputs {
                oldest_ready_job: Some(Duration::from_secs(seconds)),
                ..healthy()
            };
            assert_eq!(status_of(&inputs, "job_queue"), expected, "{seconds} s");
        }
    }

    #[test]
    fn github_failures_warn_then_turn_critical_after_15_minutes_without_success() {
        let minutes_ago = |m| Some(now() - chrono::Duration::minutes(m));
        let cases = [
            (None, None, Status::Ok),
            (minutes_ago(60), None, Status::Ok),
            (minutes_ago(10), minutes_ago(20), Status::Ok),
            (minutes_ago(10), minutes_ago(1), Status::Warning),
            (minutes_ago(16), minutes_ago(1), Status::Critical),
            (None, minutes_ago(1), Status::Critical),
        ];
        for (success, failure, expected) in cases {
            let inputs = HealthInputs {
                github_last_success: success,
                github_last_failure: failure,
                ..healthy()
            };
            assert_eq!(
                status_of(&inputs, "github"),
                expected,
                "{success:?} {failure:?}"
            );
        }
    }

    #[test]
    fn missing_migrations_or_an_unreachable_database_are_critical() {
        let unmigrated = HealthInputs {
            migrations: Err("migrations not applied: [5]".into()),
            ..healthy()
        };
        let report = assess(&unmigrated);
        assert_eq!(report.checks["migrations"].status, Status::Critical);
        assert!(report.is_critical());

        let down = HealthInputs {
            average_query: None,
            database_error: Some("connection refused".into()),
            notifications: None,
            oldest_ready_job: None,
            migrations: Err("database: connection refused".into()),
            ..healthy()
        };
        let report = assess(&down);
        assert_eq!(report.status, Status::Critical);
        assert_eq!(report.checks["job_queue"].status, Status::Critical);
        assert_eq!(
            report.checks["query_time"].details["error"],
            "connection refused"
        );
    }

    #[test]
    fn the_report_serializes_statuses_in_lowercase() {
        let json = serde_json::to_value(assess(&healthy())).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(
            json["checks"]["database_pool"]["thresholds"]["warning_above"],
            0.7
        );
        assert_eq!(
            json["checks"]["alert_delivery"]["details"]["channels"]["slack"]["failed"],
            0
        );
    }
}
