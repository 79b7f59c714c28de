//! Which GitHub the app talks to: github.com (or a GHE.com data residency host), or a GitHub
//! Enterprise Server of some version, and what that version can do. Learnt from `GET /meta` at
//! start and from every delivery's `X-GitHub-Enterprise-Version`; kept per process (every replica
//! talks to the same server).

use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;

/// The header GitHub Enterprise Server puts on deliveries and API answers.
pub const ENTERPRISE_VERSION_HEADER: &str = "x-github-enterprise-version";

/// A GitHub Enterprise Server release, `3.14.2` (a missing patch is 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EnterpriseVersion {
    major: u32,
    minor: u32,
    patch: u32,
}

impl EnterpriseVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }
}

impl FromStr for EnterpriseVersion {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{raw:?} is not a GitHub Enterprise Server version");
        let mut parts = raw.trim().split('.');
        let mut number = |required: bool| match parts.next() {
            Some(part) => part.parse::<u32>().map_err(|_| invalid()),
            None if required => Err(invalid()),
            None => Ok(0),
        };
        let version = Self::new(number(true)?, number(true)?, number(false)?);
        match parts.next() {
            None => Ok(version),
            Some(_) => Err(invalid()),
        }
    }
}

impl fmt::Display for EnterpriseVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest release Tollgate is tested against; older ones are refused nothing, but warned of.
pub const OLDEST_SUPPORTED: EnterpriseVersion = EnterpriseVersion::new(3, 9, 0);
/// Pull request merge queues (the `merge_group` event) arrived with this release.
pub const MERGE_QUEUE_SINCE: EnterpriseVersion = EnterpriseVersion::new(3, 12, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GithubServer {
    /// github.com, or GHE.com: no version, every feature.
    Cloud,
    Enterprise(EnterpriseVersion),
}

/// A feature the server's version lacks, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureOff {
    pub feature: &'static str,
    pub reason: String,
}

impl GithubServer {
    pub fn enterprise_version(self) -> Option<EnterpriseVersion> {
        match self {
            Self::Cloud => None,
            Self::Enterprise(version) => Some(version),
        }
    }

    pub fn merge_queue(self) -> bool {
        self.enterprise_version()
            .is_none_or(|version| version >= MERGE_QUEUE_SINCE)
    }

    /// The features Tollgate turns off on this server, each with its reason.
    pub fn features_off(self) -> Vec<FeatureOff> {
        let mut off = Vec::new();
        if let (false, Some(version)) = (self.merge_queue(), self.enterprise_version()) {
            off.push(FeatureOff {
                feature: "merge_queue",
                reason: format!(
                    "GitHub Enterprise Server {version} has no merge queues ({MERGE_QUEUE_SINCE} or later): merge_group deliveries are not evaluated"
                ),
            });
        }
        off
    }

    /// Whether the version is older than those Tollgate is tested against.
    pub fn unsupported(self) -> bool {
        self.enterprise_version()
            .is_some_and(|version| version < OLDEST_SUPPORTED)
    }
}

impl fmt::Display for GithubServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cloud => f.write_str("github.com"),
            Self::Enterprise(version) => write!(f, "GitHub Enterprise Server {version}"),
        }
    }
}

static SERVER: RwLock<Option<GithubServer>> = RwLock::new(None);

/// The server as last seen by this process; `None` before `/meta` answered or a delivery came.
pub fn current() -> Option<GithubServer> {
    *SERVER
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Records what the server said it is; says so in the logs when that changed (an upgrade), with
/// the features turned off.
pub fn record(server: GithubServer) {
    let previous = {
        let mut slot = SERVER
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.replace(server)
    };
    if previous == Some(server) {
        return;
    }
    tracing::info!(%server, "GitHub server");
    if server.unsupported() {
        tracing::warn!(%server, oldest_supported = %OLDEST_SUPPORTED, "this GitHub Enterprise Server is older than those Tollgate is tested against");
    }
    for off in server.features_off() {
        tracing::warn!(feature = off.feature, reason = %off.reason, "feature turned off");
    }
}

/// Records the version a delivery or an answer carried in [`ENTERPRISE_VERSION_HEADER`].
pub fn observe_enterprise_version(raw: &str) {
    match raw.parse() {
        Ok(version) => record(GithubServer::Enterprise(version)),
        Err(error) => {
            tracing::debug!(%error, "ignored an unreadable GitHub Enterprise Server version")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_with_or_without_a_patch_and_compare_numerically() {
        let v = |raw: &str| raw.parse::<EnterpriseVersion>();
        assert_eq!(v("3.14.2"), Ok(EnterpriseVersion::new(3, 14, 2)));
        assert_eq!(v(" 3.12 "), Ok(EnterpriseVersion::new(3, 12, 0)));
        assert!(v("3.9.0").unwrap() < v("3.10.0").unwrap());
        for bad in ["", "3", "3.x", "3.14.2.1", "v3.14"] {
            assert!(v(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_queues_are_off_before_3_12_with_the_reason() {
        let old = GithubServer::Enterprise(EnterpriseVersion::new(3, 11, 4));
        assert!(!old.merge_queue());
        let off = old.features_off();
        assert_eq!(off.len(), 1);
        assert_eq!(off[0].feature, "merge_queue");
        assert!(off[0].reason.contains("3.11.4") && off[0].reason.contains("3.12.0"));
        for on in [
            GithubServer::Cloud,
            GithubServer::Enterprise(EnterpriseVersion::new(3, 12, 0)),
        ] {
            assert!(on.merge_queue() && on.features_off().is_empty(), "{on}");
        }
        assert!(GithubServer::Enterprise(EnterpriseVersion::new(3, 8, 0)).unsupported());
        assert_eq!(
            GithubServer::Enterprise(EnterpriseVersion::new(3, 14, 2)).to_string(),
            "GitHub Enterprise Server 3.14.2"
        );
    }
}
