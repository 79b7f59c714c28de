//! Typed domain values shared by every layer. Pure: no I/O.

mod score;

pub use score::{ApprovedOverride, Counts, Overrides, Score, Verdict, VerdictReason, judge};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// Errors raised when a raw value cannot become a domain value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DomainError {
    #[error(
        "invalid rule id {0:?}: expected an uppercase letter followed by letters, digits, '-' or '_' (e.g. R07)"
    )]
    RuleId(String),
    #[error("invalid tier {0:?}: expected BLOCK, OVERRIDE or WARNING")]
    Tier(String),
    #[error("invalid threshold {0}: expected 0 to 100")]
    Threshold(i64),
}

/// A policy rule identifier such as `R07`; custom packs may use their own prefixes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RuleId(String);

impl RuleId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RuleId {
    type Err = DomainError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let mut chars = raw.chars();
        let valid_start = chars.next().is_some_and(|c| c.is_ascii_uppercase());
        let valid_rest =
            chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if valid_start && valid_rest && raw.len() <= 32 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(DomainError::RuleId(raw.to_owned()))
        }
    }
}

impl TryFrom<String> for RuleId {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl From<RuleId> for String {
    fn from(id: RuleId) -> Self {
        id.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How much a violation weighs and whether it can block a merge on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE", try_from = "String")]
pub enum Tier {
    Block,
    Override,
    Warning,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Block, Tier::Override, Tier::Warning];

    /// Points subtracted from the score of 100 per violation of this tier.
    pub fn penalty(self) -> u32 {
        match self {
            Tier::Block => 10,
            Tier::Override => 3,
            Tier::Warning => 1,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Block => "BLOCK",
            Tier::Override => "OVERRIDE",
            Tier::Warning => "WARNING",
        }
    }
}

impl FromStr for Tier {
    type Err = DomainError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        match raw {
            "BLOCK" => Ok(Tier::Block),
            "OVERRIDE" => Ok(Tier::Override),
            "WARNING" => Ok(Tier::Warning),
            other => Err(DomainError::Tier(other.to_owned())),
        }
    }
}

impl TryFrom<String> for Tier {
    type Error = DomainError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        raw.parse()
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Identifies "the same violation" across pushes: rule, path and offending text, but not the
/// line number, so an override survives code moving up or down the file.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    pub fn of(rule_id: &RuleId, path: Option<&str>, offending_text: &str) -> Self {
        let mut hasher = Sha256::new();
        for part in [rule_id.as_str(), path.unwrap_or(""), offending_text.trim()] {
            hasher.update(part.as_bytes());
            hasher.update([0u8]);
        }
        let digest = hasher.finalize();
        Self(digest[..12].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// A fingerprint read back from the store, where only [`Fingerprint::of`] wrote it.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One finding of one rule, with its effective tier (after repository re-tiering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule_id: RuleId,
    pub tier: Tier,
    /// `None` for findings about the pull request as a whole (size, title).
    pub path: Option<String>,
    /// Line in the new file, when the finding is about one added line.
    pub line: Option<u32>,
    pub message: String,
    pub fingerprint: Fingerprint,
}

impl Violation {
    /// Stable order for reports and outputs: tier, then rule, then location.
    pub fn sort_key(&self) -> (Tier, &RuleId, Option<&str>, Option<u32>, &str) {
        (
            self.tier,
            &self.rule_id,
            self.path.as_deref(),
            self.line,
            &self.message,
        )
    }
}

/// The merge threshold (0–100): a PR scoring below it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u8")]
pub struct Threshold(u8);

impl Threshold {
    pub const DEFAULT: Threshold = Threshold(70);

    pub fn value(self) -> u8 {
        self.0
    }
}

impl Default for Threshold {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<i64> for Threshold {
    type Error = DomainError;

    fn try_from(raw: i64) -> Result<Self, Self::Error> {
        u8::try_from(raw)
            .ok()
            .filter(|v| *v <= 100)
            .map(Threshold)
            .ok_or(DomainError::Threshold(raw))
    }
}

impl From<Threshold> for u8 {
    fn from(t: Threshold) -> Self {
        t.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_parse_strictly() {
        assert!("R07".parse::<RuleId>().is_ok());
        assert!("ACME_1".parse::<RuleId>().is_ok());
        for bad in ["", "r07", "7R", "R 7", "R07!"] {
            assert!(bad.parse::<RuleId>().is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn tiers_parse_and_weigh() {
        assert_eq!("BLOCK".parse::<Tier>(), Ok(Tier::Block));
        assert!("block".parse::<Tier>().is_err());
        assert_eq!(Tier::ALL.map(Tier::penalty), [10, 3, 1]);
    }

    #[test]
    fn fingerprint_ignores_line_and_surrounding_whitespace() {
        let id: RuleId = "R01".parse().unwrap();
        let a = Fingerprint::of(&id, Some("a.py"), "  key = 'x'");
        let b = Fingerprint::of(&id, Some("a.py"), "key = 'x'\t");
        let c = Fingerprint::of(&id, Some("b.py"), "key = 'x'");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn thresholds_are_bounded() {
        assert_eq!(Threshold::try_from(0).map(Threshold::value), Ok(0));
        assert_eq!(Threshold::try_from(100).map(Threshold::value), Ok(100));
        assert!(Threshold::try_from(101).is_err());
        assert!(Threshold::try_from(-1).is_err());
    }
}
