//! "Why did this fail", at the top of a pull request's page (pure): the latest evaluation's
//! verdict in one line, and each thing that made it fail.

use crate::store::dashboard::{EvaluationRow, EvaluationViolationRow};
use serde::Serialize;
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Why {
    pub passed: bool,
    pub headline: String,
    pub reasons: Vec<String>,
}

/// Explains `evaluations[0]` (newest first), given the violations of the pull request and the
/// fingerprints its approved overrides cover.
pub fn why(
    evaluations: &[EvaluationRow],
    violations: &[EvaluationViolationRow],
    overridden: &HashSet<&str>,
) -> Why {
    let Some(latest) = evaluations.first() else {
        return Why {
            passed: false,
            headline: "Not evaluated yet.".to_owned(),
            reasons: Vec::new(),
        };
    };
    if latest.status != "completed" {
        let headline = match (latest.status.as_str(), &latest.error) {
            ("error", Some(error)) => format!("The last evaluation failed to run: {error}"),
            ("error", None) => "The last evaluation failed to run.".to_owned(),
            _ => "An evaluation is in progress.".to_owned(),
        };
        return Why {
            passed: false,
            headline,
            reasons: Vec::new(),
        };
    }
    let score = latest.score.unwrap_or_default();
    let threshold = latest.threshold.unwrap_or_default();
    if latest.verdict.as_deref() == Some("pass") {
        return Why {
            passed: true,
            headline: format!("Passed: score {score} (threshold {threshold})."),
            reasons: Vec::new(),
        };
    }
    let mut reasons: Vec<String> = violations
        .iter()
        .filter(|v| v.evaluation_id == latest.id && v.tier == "BLOCK")
        .filter(|v| !overridden.contains(v.fingerprint.as_str()))
        .map(|v| {
            let place = match (&v.path, v.line) {
                (Some(path), Some(line)) => format!(" in {path}:{line}"),
                (Some(path), None) => format!(" in {path}"),
                _ => String::new(),
            };
            format!("{} (BLOCK){place}: {}", v.rule_id, v.message)
        })
        .collect();
    if score < threshold {
        reasons.push(format!("Score {score} is below the threshold {threshold}."));
    }
    Why {
        passed: false,
        headline: format!("Failed: score {score} (threshold {threshold})."),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn evaluation(verdict: &str, score: i16) -> EvaluationRow {
        EvaluationRow {
            id: 2,
            head_sha: "abc".into(),
            status: "completed".into(),
            score: Some(score),
            verdict: Some(verdict.into()),
            threshold: Some(70),
            block_count: Some(2),
            override_count: Some(0),
            warning_count: Some(0),
            policy_digest: "pd".into(),
            config_digest: None,
            error: None,
            created_at: Utc::now(),
            completed_at: Some(Utc::now()),
        }
    }

    fn violation(
        evaluation_id: i64,
        rule: &str,
        tier: &str,
        fingerprint: &str,
    ) -> EvaluationViolationRow {
        EvaluationViolationRow {
            id: 1,
            evaluation_id,
            rule_id: rule.into(),
            tier: tier.into(),
            path: Some("src/a.rs".into()),
            line: Some(3),
            message: "bad".into(),
            fingerprint: fingerprint.into(),
        }
    }

    #[test]
    fn a_failure_lists_its_open_blocks_and_a_low_score() {
        let violations = [
            violation(2, "R01", "BLOCK", "a"),
            violation(2, "R05", "BLOCK", "b"),
            violation(2, "R07", "OVERRIDE", "c"),
            violation(1, "R02", "BLOCK", "d"),
        ];
        let overridden = HashSet::from(["b"]);
        let why = why(&[evaluation("fail", 67)], &violations, &overridden);
        assert!(!why.passed);
        assert_eq!(why.headline, "Failed: score 67 (threshold 70).");
        assert_eq!(
            why.reasons,
            [
                "R01 (BLOCK) in src/a.rs:3: bad",
                "Score 67 is below the threshold 70."
            ]
        );
    }

    #[test]
    fn passes_errors_and_nothing_yet() {
        assert!(why(&[evaluation("pass", 97)], &[], &HashSet::new()).passed);
        assert_eq!(
            why(&[], &[], &HashSet::new()).headline,
            "Not evaluated yet."
        );
        let failed = EvaluationRow {
            status: "error".into(),
            error: Some("GitHub is down".into()),
            ..evaluation("fail", 0)
        };
        assert_eq!(
            why(&[failed], &[], &HashSet::new()).headline,
            "The last evaluation failed to run: GitHub is down"
        );
    }
}
