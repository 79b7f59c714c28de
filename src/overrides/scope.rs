//! What an override request covers: the open BLOCK and OVERRIDE violations of the named rules,
//! or of every rule.

use crate::domain::{Fingerprint, Overrides, RuleId, Tier, Violation};
use crate::policy::Catalog;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The violations a request would cover, in report order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    violations: Vec<Violation>,
}

impl Scope {
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// What the request is granted for: an approved override covers exactly these.
    pub fn fingerprints(&self) -> BTreeSet<Fingerprint> {
        self.violations
            .iter()
            .map(|v| v.fingerprint.clone())
            .collect()
    }

    /// The rules of the covered violations, each once, in order.
    pub fn rules(&self) -> Vec<RuleId> {
        let rules: BTreeSet<&RuleId> = self.violations.iter().map(|v| &v.rule_id).collect();
        rules.into_iter().cloned().collect()
    }

    /// A BLOCK violation is in scope, so the request waits for approvers.
    pub fn needs_approval(&self) -> bool {
        self.violations.iter().any(|v| v.tier == Tier::Block)
    }
}

/// A rule with open violations that an override could cover, for replies that list them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverridableRule {
    pub id: RuleId,
    /// `None` when the catalog does not know the rule.
    pub name: Option<String>,
    /// The most severe tier among its open violations.
    pub tier: Tier,
    pub violations: usize,
}

/// Why a rule named in `/override R05 … <reason>` cannot be overridden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleProblemKind {
    /// Not a rule of the policy pack.
    Unknown,
    /// No violation of the rule was found.
    NotFailing,
    /// Its violations are warnings, which never fail the check.
    WarningOnly,
    /// Its BLOCK and OVERRIDE violations are already covered by approved overrides.
    AlreadyOverridden,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub rule: RuleId,
    pub kind: RuleProblemKind,
}

/// Why a request covers nothing. Nothing is recorded: a typo in a rule id must not quietly
/// narrow or widen what is overridden.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("there is nothing to override: no BLOCK or OVERRIDE violation is open")]
    NothingToOverride,
    #[error("{}", problems_text(problems))]
    Rules {
        problems: Vec<RuleProblem>,
        /// What could be overridden instead.
        overridable: Vec<OverridableRule>,
    },
}

fn problems_text(problems: &[RuleProblem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let problem = match self.kind {
            RuleProblemKind::Unknown => "is not a rule of the policy pack",
            RuleProblemKind::NotFailing => "has no violation",
            RuleProblemKind::WarningOnly => "has only warnings, which do not need an override",
            RuleProblemKind::AlreadyOverridden => "is already overridden",
        };
        write!(f, "{} {problem}", self.rule)
    }
}

/// A BLOCK or OVERRIDE violation that no approved override covers.
fn is_open(violation: &Violation, approved: &Overrides) -> bool {
    violation.tier != Tier::Warning && approved.covering(violation).is_none()
}

/// The violations a request for `rules` (empty: all rules) would cover, given the current
/// `violations` (tiers as evaluated) and the overrides already `approved`. Every named rule must
/// have open violations; otherwise nothing is covered and the error names each rule that has
/// none, and lists what could be overridden instead.
pub fn select_scope(
    violations: &[Violation],
    approved: &Overrides,
    rules: &[RuleId],
    catalog: &Catalog,
) -> Result<Scope, ScopeError> {
    let problems: Vec<RuleProblem> = rules
        .iter()
        .filter_map(|rule| rule_problem(rule, violations, approved, catalog))
        .collect();
    if !problems.is_empty() {
        return Err(ScopeError::Rules {
            problems,
            overridable: overridable_rules(violations, approved, catalog),
        });
    }
    let mut covered: Vec<Violation> = violations
        .iter()
        .filter(|v| is_open(v, approved) && (rules.is_empty() || rules.contains(&v.rule_id)))
        .cloned()
        .collect();
    if covered.is_empty() {
        return Err(ScopeError::NothingToOverride);
    }
    covered.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(Scope {
        violations: covered,
    })
}

fn rule_problem(
    rule: &RuleId,
    violations: &[Violation],
    approved: &Overrides,
    catalog: &Catalog,
) -> Option<RuleProblem> {
    let of_rule: Vec<&Violation> = violations.iter().filter(|v| &v.rule_id == rule).collect();
    let kind = if of_rule.iter().any(|v| is_open(v, approved)) {
        return None;
    } else if of_rule.iter().any(|v| v.tier != Tier::Warning) {
        RuleProblemKind::AlreadyOverridden
    } else if !of_rule.is_empty() {
        RuleProblemKind::WarningOnly
    } else if catalog.get(rule).is_none() {
        RuleProblemKind::Unknown
    } else {
        RuleProblemKind::NotFailing
    };
    Some(RuleProblem {
        rule: rule.clone(),
        kind,
    })
}

/// The rules with open violations, BLOCK first, then by id.
pub fn overridable_rules(
    violations: &[Violation],
    approved: &Overrides,
    catalog: &Catalog,
) -> Vec<OverridableRule> {
    let mut by_rule: BTreeMap<&RuleId, (Tier, usize)> = BTreeMap::new();
    for v in violations.iter().filter(|v| is_open(v, approved)) {
        let (tier, count) = by_rule.entry(&v.rule_id).or_insert((v.tier, 0));
        *tier = (*tier).min(v.tier);
        *count += 1;
    }
    let mut rules: Vec<OverridableRule> = by_rule
        .into_iter()
        .map(|(id, (tier, violations))| OverridableRule {
            id: id.clone(),
            name: catalog.get(id).map(|meta| meta.name.clone()),
            tier,
            violations,
        })
        .collect();
    rules.sort_by(|a, b| (a.tier, &a.id).cmp(&(b.tier, &b.id)));
    rules
}
