//! Scoring and the merge verdict: the one place that decides pass or fail.

use super::{Fingerprint, Threshold, Tier, Violation};
use serde::Serialize;
use std::collections::BTreeSet;

/// A score from 0 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Score(u8);

impl Score {
    pub fn value(self) -> u8 {
        self.0
    }
}

/// Violations per tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub block: u32,
    pub r#override: u32,
    pub warning: u32,
}

impl Counts {
    pub fn of<'a>(violations: impl IntoIterator<Item = &'a Violation>) -> Self {
        let mut counts = Counts::default();
        for violation in violations {
            *counts.slot(violation.tier) += 1;
        }
        counts
    }

    pub fn get(&self, tier: Tier) -> u32 {
        match tier {
            Tier::Block => self.block,
            Tier::Override => self.r#override,
            Tier::Warning => self.warning,
        }
    }

    fn slot(&mut self, tier: Tier) -> &mut u32 {
        match tier {
            Tier::Block => &mut self.block,
            Tier::Override => &mut self.r#override,
            Tier::Warning => &mut self.warning,
        }
    }

    pub fn total(&self) -> u32 {
        self.block + self.r#override + self.warning
    }

    /// `max(0, 100 − 10·BLOCK − 3·OVERRIDE − 1·WARNING)`.
    pub fn score(&self) -> Score {
        let penalty: u32 = Tier::ALL
            .iter()
            .map(|tier| tier.penalty().saturating_mul(self.get(*tier)))
            .fold(0, u32::saturating_add);
        Score(100u32.saturating_sub(penalty) as u8)
    }
}

/// One approved override: the violations (by fingerprint) it was granted for, who asked for it,
/// who approved it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApprovedOverride {
    pub fingerprints: BTreeSet<Fingerprint>,
    /// GitHub login of the person who asked for the override.
    pub requested_by: String,
    /// GitHub logins of the approvers, in the order they approved; only the requester for a
    /// self-service override of OVERRIDE-tier violations.
    pub approved_by: Vec<String>,
    pub reason: String,
}

/// The approved overrides in force for an evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overrides(Vec<ApprovedOverride>);

impl Overrides {
    pub fn new(approved: Vec<ApprovedOverride>) -> Self {
        Self(approved)
    }

    /// The override covering this violation, if any.
    pub fn covering(&self, violation: &Violation) -> Option<&ApprovedOverride> {
        self.0
            .iter()
            .find(|o| o.fingerprints.contains(&violation.fingerprint))
    }

    pub fn iter(&self) -> impl Iterator<Item = &ApprovedOverride> {
        self.0.iter()
    }
}

/// Why a pull request fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VerdictReason {
    /// BLOCK violations that no approved override covers.
    UncoveredBlock {
        count: u32,
    },
    BelowThreshold {
        score: u8,
        threshold: u8,
    },
}

/// The outcome of judging a set of violations. Only [`judge`] builds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    score: Score,
    /// Counts of all violations found, overridden or not.
    counts: Counts,
    /// Counts of the violations that still weigh on the score (not covered by an override).
    effective_counts: Counts,
    threshold: Threshold,
    reasons: Vec<VerdictReason>,
}

impl Verdict {
    pub fn passed(&self) -> bool {
        self.reasons.is_empty()
    }

    /// `"pass"` or `"fail"`, as in JSON output and the database.
    pub fn as_str(&self) -> &'static str {
        if self.passed() { "pass" } else { "fail" }
    }

    pub fn score(&self) -> Score {
        self.score
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn effective_counts(&self) -> Counts {
        self.effective_counts
    }

    pub fn threshold(&self) -> Threshold {
        self.threshold
    }

    pub fn reasons(&self) -> &[VerdictReason] {
        &self.reasons
    }
}

/// Scores the violations and decides: fail if a BLOCK violation is not covered by an approved
/// override, or if the score is below the threshold. An overridden violation no longer weighs on
/// the score: the override is an accepted exception, and counting it would make overrides of
/// OVERRIDE-tier findings pointless.
pub fn judge(violations: &[Violation], overrides: &Overrides, threshold: Threshold) -> Verdict {
    let counts = Counts::of(violations);
    let effective_counts = Counts::of(
        violations
            .iter()
            .filter(|v| overrides.covering(v).is_none()),
    );
    let score = effective_counts.score();
    let mut reasons = Vec::new();
    if effective_counts.block > 0 {
        reasons.push(VerdictReason::UncoveredBlock {
            count: effective_counts.block,
        });
    }
    if score.value() < threshold.value() {
        reasons.push(VerdictReason::BelowThreshold {
            score: score.value(),
            threshold: threshold.value(),
        });
    }
    Verdict {
        score,
        counts,
        effective_counts,
        threshold,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RuleId;

    fn violation(rule: &str, tier: Tier, text: &str) -> Violation {
        let rule_id: RuleId = rule.parse().unwrap();
        Violation {
            fingerprint: Fingerprint::of(&rule_id, Some("src/a.rs"), text),
            rule_id,
            tier,
            path: Some("src/a.rs".into()),
            line: Some(1),
            message: "m".into(),
        }
    }

    fn overriding(violations: &[&Violation]) -> Overrides {
        Overrides::new(vec![ApprovedOverride {
            fingerprints: violations.iter().map(|v| v.fingerprint.clone()).collect(),
            requested_by: "hubot".into(),
            approved_by: vec!["octocat".into()],
            reason: "accepted risk".into(),
        }])
    }

    #[test]
    fn score_follows_the_formula_and_floors_at_zero() {
        let counts = Counts {
            block: 1,
            r#override: 2,
            warning: 3,
        };
        assert_eq!(counts.score().value(), 100 - 10 - 6 - 3);
        let many = Counts {
            block: 11,
            r#override: 0,
            warning: 0,
        };
        assert_eq!(many.score().value(), 0);
        let huge = Counts {
            block: u32::MAX,
            r#override: u32::MAX,
            warning: u32::MAX,
        };
        assert_eq!(huge.score().value(), 0);
    }

    #[test]
    fn clean_change_passes() {
        let verdict = judge(&[], &Overrides::default(), Threshold::DEFAULT);
        assert!(verdict.passed());
        assert_eq!(verdict.score().value(), 100);
        assert_eq!(verdict.as_str(), "pass");
    }

    #[test]
    fn one_block_fails_even_with_a_high_score() {
        let v = [violation("R01", Tier::Block, "AKIA...")];
        let verdict = judge(&v, &Overrides::default(), Threshold::DEFAULT);
        assert_eq!(verdict.score().value(), 90);
        assert_eq!(
            verdict.reasons(),
            &[VerdictReason::UncoveredBlock { count: 1 }]
        );
    }

    #[test]
    fn an_approved_override_covers_its_block() {
        let v = [violation("R01", Tier::Block, "AKIA...")];
        let verdict = judge(&v, &overriding(&[&v[0]]), Threshold::DEFAULT);
        assert!(verdict.passed());
        assert_eq!(verdict.counts().block, 1);
        assert_eq!(verdict.effective_counts().block, 0);
        assert_eq!(verdict.score().value(), 100);
    }

    #[test]
    fn an_override_does_not_cover_a_new_block() {
        let old = violation("R01", Tier::Block, "AKIA-old");
        let new = violation("R01", Tier::Block, "AKIA-new");
        let verdict = judge(
            &[old.clone(), new],
            &overriding(&[&old]),
            Threshold::DEFAULT,
        );
        assert_eq!(
            verdict.reasons(),
            &[VerdictReason::UncoveredBlock { count: 1 }]
        );
    }

    #[test]
    fn below_threshold_fails_without_blocks() {
        let v: Vec<_> = (0..11)
            .map(|i| violation("R07", Tier::Override, &format!("q{i}")))
            .collect();
        let verdict = judge(&v, &Overrides::default(), Threshold::DEFAULT);
        assert_eq!(verdict.score().value(), 67);
        assert_eq!(
            verdict.reasons(),
            &[VerdictReason::BelowThreshold {
                score: 67,
                threshold: 70
            }]
        );
        let lenient = judge(&v, &Overrides::default(), Threshold::try_from(60).unwrap());
        assert!(lenient.passed());
    }

    #[test]
    fn score_at_exactly_the_threshold_passes() {
        let v: Vec<_> = (0..10)
            .map(|i| violation("R07", Tier::Override, &format!("q{i}")))
            .collect();
        let verdict = judge(&v, &Overrides::default(), Threshold::DEFAULT);
        assert_eq!(verdict.score().value(), 70);
        assert!(verdict.passed());
    }
}
