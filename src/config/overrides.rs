//! The `overrides` section of `.github/tollgate.yml`: who may approve BLOCK overrides, how their
//! GitHub logins map to Slack users, and how strict requests are.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use super::RepoConfigError;

/// The longest reason a repository may require: a longer minimum is a typo, not a policy.
const MAX_MIN_REASON_LENGTH: i64 = 1000;
/// More approvals than this cannot be gathered on one pull request in practice.
const MAX_REQUIRED_APPROVALS: i64 = 10;
const DEFAULT_MIN_REASON_LENGTH: usize = 10;
const DEFAULT_REQUIRED_APPROVALS: u32 = 1;
/// GitHub's limit on the length of user and organization logins.
const MAX_LOGIN_LENGTH: usize = 39;
const MAX_TEAM_SLUG_LENGTH: usize = 100;

/// The section as written; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverridesFile {
    #[serde(default)]
    pub approvers: Vec<String>,
    #[serde(default)]
    pub slack_users: BTreeMap<String, String>,
    /// Read as a signed number so that a negative value gets our message, which names the key.
    pub min_reason_length: Option<i64>,
    pub required_approvals: Option<i64>,
}

/// The resolved section. Serializable so that a request can keep the settings it was made under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverrideSettings {
    /// Who may approve or reject a BLOCK override. Empty: anyone with admin or maintain
    /// permission on the repository.
    pub approvers: Vec<Approver>,
    /// GitHub login → Slack user id, for escalation mentions and Slack button clicks.
    pub slack_users: BTreeMap<String, String>,
    pub min_reason_length: usize,
    /// Distinct approvals a BLOCK override needs.
    pub required_approvals: u32,
}

impl Default for OverrideSettings {
    fn default() -> Self {
        Self {
            approvers: Vec::new(),
            slack_users: BTreeMap::new(),
            min_reason_length: DEFAULT_MIN_REASON_LENGTH,
            required_approvals: DEFAULT_REQUIRED_APPROVALS,
        }
    }
}

/// A GitHub team, as `org/slug`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TeamRef {
    pub org: String,
    pub slug: String,
}

/// One entry of `approvers`: a user or every member of a team. Written `alice`, `@alice`,
/// `acme/security` or `@acme/security`; logins and slugs compare case-insensitively, as on
/// GitHub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Approver {
    User(String),
    Team(TeamRef),
}

/// A string that is neither a GitHub login nor an `org/team` slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a GitHub login or org/team slug")]
pub struct InvalidApprover(String);

impl OverridesFile {
    /// Checks every value and applies the defaults.
    pub fn resolve(&self) -> Result<OverrideSettings, RepoConfigError> {
        let min_reason_length = in_range(
            "min_reason_length",
            self.min_reason_length,
            0,
            MAX_MIN_REASON_LENGTH,
        )?;
        let required_approvals = in_range(
            "required_approvals",
            self.required_approvals,
            1,
            MAX_REQUIRED_APPROVALS,
        )?;
        // The casts cannot truncate: both values were checked against small positive bounds.
        let settings = OverrideSettings {
            approvers: approvers(&self.approvers)?,
            slack_users: slack_users(&self.slack_users)?,
            min_reason_length: min_reason_length.map_or(DEFAULT_MIN_REASON_LENGTH, |n| n as usize),
            required_approvals: required_approvals.map_or(DEFAULT_REQUIRED_APPROVALS, |n| n as u32),
        };
        settings.checked_reachable()
    }
}

impl OverrideSettings {
    /// Refuses a count of approvals that the listed users alone could never give.
    fn checked_reachable(self) -> Result<Self, RepoConfigError> {
        let only_users = self
            .approvers
            .iter()
            .all(|a| matches!(a, Approver::User(_)));
        let listed = self.approvers.len();
        if only_users && listed > 0 && (self.required_approvals as usize) > listed {
            return Err(RepoConfigError::UnreachableApprovals {
                required: self.required_approvals,
                listed,
            });
        }
        Ok(self)
    }

    /// The teams whose membership decides who may approve; the caller looks these up.
    pub fn teams(&self) -> impl Iterator<Item = &TeamRef> {
        self.approvers.iter().filter_map(|a| match a {
            Approver::Team(team) => Some(team),
            Approver::User(_) => None,
        })
    }

    /// Whether `login` is listed as an approver by name (not through a team).
    pub fn lists_user(&self, login: &str) -> bool {
        self.approvers
            .iter()
            .any(|a| matches!(a, Approver::User(user) if user.eq_ignore_ascii_case(login)))
    }

    /// The Slack user id of a GitHub login, if mapped.
    pub fn slack_user_of(&self, login: &str) -> Option<&str> {
        self.slack_users
            .iter()
            .find(|(mapped, _)| mapped.eq_ignore_ascii_case(login))
            .map(|(_, id)| id.as_str())
    }

    /// The GitHub login mapped to a Slack user id, as written in the config.
    pub fn login_of_slack_user(&self, slack_user_id: &str) -> Option<&str> {
        self.slack_users
            .iter()
            .find(|(_, id)| *id == slack_user_id)
            .map(|(login, _)| login.as_str())
    }
}

fn in_range(
    key: &'static str,
    value: Option<i64>,
    min: i64,
    max: i64,
) -> Result<Option<i64>, RepoConfigError> {
    match value {
        Some(n) if n < min || n > max => Err(RepoConfigError::OutOfRange {
            key,
            value: n,
            min,
            max,
        }),
        _ => Ok(value),
    }
}

fn approvers(raw: &[String]) -> Result<Vec<Approver>, RepoConfigError> {
    let mut approvers: Vec<Approver> = Vec::with_capacity(raw.len());
    for (index, value) in raw.iter().enumerate() {
        let approver: Approver = value.parse().map_err(|_| RepoConfigError::Approver {
            index,
            value: value.clone(),
        })?;
        if approvers.iter().any(|a| a.same_as(&approver)) {
            return Err(RepoConfigError::DuplicateApprover {
                index,
                value: value.clone(),
            });
        }
        approvers.push(approver);
    }
    Ok(approvers)
}

fn slack_users(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, RepoConfigError> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut by_id: BTreeMap<&str, &str> = BTreeMap::new();
    for (login, id) in raw {
        if !is_login(login) {
            return Err(RepoConfigError::SlackLogin {
                login: login.clone(),
            });
        }
        if !is_slack_user_id(id) {
            return Err(RepoConfigError::SlackUserId {
                login: login.clone(),
                value: id.clone(),
            });
        }
        if let Some(first) = seen.insert(login.to_ascii_lowercase(), login) {
            return Err(RepoConfigError::DuplicateSlackLogin {
                first: first.to_owned(),
                second: login.clone(),
            });
        }
        if let Some(first) = by_id.insert(id, login) {
            return Err(RepoConfigError::SharedSlackUser {
                first: first.to_owned(),
                second: login.clone(),
                id: id.clone(),
            });
        }
    }
    Ok(raw.clone())
}

/// GitHub's login rules: ASCII letters, digits and single hyphens, not at either end, at most
/// 39 characters. Organization names follow the same rules.
fn is_login(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_LOGIN_LENGTH
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-')
        && !text.ends_with('-')
        && !text.contains("--")
}

/// Team slugs as GitHub derives them from team names: ASCII letters, digits, `-` and `_`,
/// starting with a letter or digit.
fn is_team_slug(text: &str) -> bool {
    text.len() <= MAX_TEAM_SLUG_LENGTH
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Slack user ids: `U` or `W` followed by uppercase letters and digits.
fn is_slack_user_id(text: &str) -> bool {
    let mut bytes = text.bytes();
    matches!(bytes.next(), Some(b'U' | b'W'))
        && text.len() > 1
        && bytes.all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl Approver {
    /// The same user or team, ignoring case.
    fn same_as(&self, other: &Approver) -> bool {
        match (self, other) {
            (Approver::User(a), Approver::User(b)) => a.eq_ignore_ascii_case(b),
            (Approver::Team(a), Approver::Team(b)) => a.same_as(b),
            _ => false,
        }
    }
}

impl TeamRef {
    /// The same team, ignoring case.
    pub fn same_as(&self, other: &TeamRef) -> bool {
        self.org.eq_ignore_ascii_case(&other.org) && self.slug.eq_ignore_ascii_case(&other.slug)
    }
}

impl FromStr for Approver {
    type Err = InvalidApprover;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let name = raw.strip_prefix('@').unwrap_or(raw);
        match name.split_once('/') {
            None if is_login(name) => Ok(Approver::User(name.to_owned())),
            Some((org, slug)) if is_login(org) && is_team_slug(slug) => {
                Ok(Approver::Team(TeamRef {
                    org: org.to_owned(),
                    slug: slug.to_owned(),
                }))
            }
            _ => Err(InvalidApprover(raw.to_owned())),
        }
    }
}

impl TryFrom<String> for Approver {
    type Error = InvalidApprover;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<Approver> for String {
    fn from(approver: Approver) -> Self {
        approver.to_string()
    }
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::User(login) => f.write_str(login),
            Approver::Team(team) => team.fmt(f),
        }
    }
}

impl TryFrom<String> for TeamRef {
    type Error = InvalidApprover;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        match raw.parse()? {
            Approver::Team(team) => Ok(team),
            Approver::User(_) => Err(InvalidApprover(raw)),
        }
    }
}

impl From<TeamRef> for String {
    fn from(team: TeamRef) -> Self {
        team.to_string()
    }
}

impl fmt::Display for TeamRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.org, self.slug)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RepoConfigFile;

    fn resolve(yaml: &str) -> Result<OverrideSettings, RepoConfigError> {
        RepoConfigFile::parse(yaml)?.overrides.resolve()
    }

    fn user(login: &str) -> Approver {
        Approver::User(login.into())
    }

    fn team(org: &str, slug: &str) -> Approver {
        Approver::Team(TeamRef {
            org: org.into(),
            slug: slug.into(),
        })
    }

    #[test]
    fn no_section_means_defaults() {
        let settings = resolve("threshold: 80").unwrap();
        assert_eq!(settings, OverrideSettings::default());
        assert_eq!(settings.min_reason_length, 10);
        assert_eq!(settings.required_approvals, 1);
        assert!(settings.approvers.is_empty());
    }

    #[test]
    fn every_key_resolves() {
        let settings = resolve(
            "overrides:
  approvers: [alice, '@Bob-2', acme/security, '@acme/Release_Team']
  slack_users: { alice: U012AB3CD, Bob-2: W0123ABC }
  min_reason_length: 20
  required_approvals: 2
",
        )
        .unwrap();
        assert_eq!(
            settings.approvers,
            [
                user("alice"),
                user("Bob-2"),
                team("acme", "security"),
                team("acme", "Release_Team")
            ]
        );
        assert_eq!(settings.min_reason_length, 20);
        assert_eq!(settings.required_approvals, 2);
        assert_eq!(
            settings
                .teams()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["acme/security", "acme/Release_Team"]
        );
    }

    #[test]
    fn logins_compare_case_insensitively() {
        let settings =
            resolve("overrides: { approvers: [Alice], slack_users: { Alice: U1 } }").unwrap();
        assert!(settings.lists_user("alice"));
        assert!(settings.lists_user("ALICE"));
        assert!(!settings.lists_user("alicia"));
        assert_eq!(settings.slack_user_of("aLiCe"), Some("U1"));
        assert_eq!(settings.slack_user_of("bob"), None);
        assert_eq!(settings.login_of_slack_user("U1"), Some("Alice"));
        assert_eq!(settings.login_of_slack_user("u1"), None);
        assert!(
            TeamRef::try_from("Acme/Sec".to_owned())
                .unwrap()
                .same_as(&TeamRef::try_from("acme/sec".to_owned()).unwrap())
        );
    }

    #[test]
    fn approvers_parse_as_logins_or_teams() {
        let longest = "x".repeat(39);
        let valid = [
            ("a", user("a")),
            ("@a-b-c", user("a-b-c")),
            (longest.as_str(), user(&longest)),
            ("org/team", team("org", "team")),
            ("@org-1/team_2-x", team("org-1", "team_2-x")),
        ];
        for (raw, expected) in valid {
            assert_eq!(raw.parse::<Approver>(), Ok(expected), "{raw:?}");
        }
        let long = "x".repeat(40);
        let invalid = [
            "",
            "@",
            "@@a",
            "a b",
            "-a",
            "a-",
            "a--b",
            "a_b",
            "a.b",
            &long,
            "org/",
            "/team",
            "org/team/x",
            "org/-team",
            "org/te am",
            "-org/team",
            "a[bot]",
            "@org/@team",
        ];
        for raw in invalid {
            assert_eq!(
                raw.parse::<Approver>(),
                Err(InvalidApprover(raw.to_owned())),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn settings_round_trip_through_json() {
        let settings = resolve(
            "overrides: { approvers: ['@alice', acme/security], slack_users: { alice: U1 } }",
        )
        .unwrap();
        let json = serde_json::to_value(&settings).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "approvers": ["alice", "acme/security"],
                "slack_users": { "alice": "U1" },
                "min_reason_length": 10,
                "required_approvals": 1,
            })
        );
        let back: OverrideSettings = serde_json::from_value(json).unwrap();
        assert_eq!(back, settings);
    }

    #[test]
    fn unreachable_approvals_are_refused_only_when_countable() {
        assert_eq!(
            resolve("overrides: { approvers: [alice], required_approvals: 2 }"),
            Err(RepoConfigError::UnreachableApprovals {
                required: 2,
                listed: 1
            })
        );
        assert!(resolve("overrides: { approvers: [alice, bob], required_approvals: 2 }").is_ok());
        assert!(resolve("overrides: { approvers: [acme/sec], required_approvals: 3 }").is_ok());
        assert!(resolve("overrides: { required_approvals: 3 }").is_ok());
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("overrides: { aprovers: [a] }", "aprovers"),
            ("overrides: [a]", "overrides"),
            ("overrides: { approvers: alice }", "approvers"),
            (
                "overrides: { approvers: [alice, bob, 'a b'] }",
                r#"overrides.approvers[2]: "a b" is not a GitHub login or org/team slug"#,
            ),
            (
                "overrides: { approvers: [alice, '@Alice'] }",
                r#"overrides.approvers[1]: "@Alice" is listed twice"#,
            ),
            (
                "overrides: { approvers: [acme/sec, Acme/Sec] }",
                "overrides.approvers[1]",
            ),
            (
                "overrides: { slack_users: { 'a b': U1 } }",
                r#"overrides.slack_users: "a b" is not a GitHub login"#,
            ),
            (
                "overrides: { slack_users: { alice: u123 } }",
                r#"overrides.slack_users.alice: "u123" is not a Slack user id"#,
            ),
            (
                "overrides: { slack_users: { alice: C123 } }",
                "overrides.slack_users.alice",
            ),
            (
                "overrides: { slack_users: { alice: U } }",
                "overrides.slack_users.alice",
            ),
            (
                "overrides: { slack_users: { alice: U1, Alice: U2 } }",
                "are the same login",
            ),
            (
                "overrides: { slack_users: { alice: U1, bob: U1 } }",
                r#"overrides.slack_users: "alice" and "bob" both map to U1"#,
            ),
            ("overrides: { slack_users: { alice: 12 } }", "slack_users"),
            (
                "overrides: { min_reason_length: 1001 }",
                "overrides.min_reason_length: 1001 is out of range (0 to 1000)",
            ),
            (
                "overrides: { min_reason_length: -1 }",
                "overrides.min_reason_length: -1 is out of range",
            ),
            ("overrides: { min_reason_length: ten }", "min_reason_length"),
            (
                "overrides: { required_approvals: 0 }",
                "overrides.required_approvals: 0 is out of range (1 to 10)",
            ),
            (
                "overrides: { required_approvals: 11 }",
                "overrides.required_approvals: 11 is out of range",
            ),
            (
                "overrides: { required_approvals: 1.5 }",
                "required_approvals",
            ),
        ];
        for (yaml, expected) in cases {
            let message = resolve(yaml).unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "{yaml:?} gave {message:?}, which does not contain {expected:?}"
            );
        }
    }

    #[test]
    fn the_whole_config_reports_overrides_errors() {
        let mut catalog = crate::policy::Catalog::default();
        catalog.add_yaml("test", "[]", false).unwrap();
        let file = RepoConfigFile::parse("overrides: { required_approvals: 0 }").unwrap();
        let error = crate::config::RepoConfig::resolve(&file, &catalog).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("overrides.required_approvals")
        );
        let file = RepoConfigFile::parse("overrides: { approvers: [alice] }").unwrap();
        let config = crate::config::RepoConfig::resolve(&file, &catalog).unwrap();
        assert!(config.overrides.lists_user("alice"));
    }
}
