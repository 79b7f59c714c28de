//! One Aho-Corasick pass over every added line that hands each rule only its candidate lines, so
//! Rego never runs a regex over lines that cannot match. Rules without prefilter literals are not
//! line-based and get no candidates.

use super::Catalog;
use crate::domain::RuleId;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

pub struct Prefilter {
    automaton: Option<AhoCorasick>,
    /// For each literal of the automaton, the index (into `rules`) of the rule it belongs to.
    rule_of_pattern: Vec<usize>,
    rules: Vec<RuleId>,
}

impl Prefilter {
    pub fn build(catalog: &Catalog) -> Result<Self, aho_corasick::BuildError> {
        let mut literals = Vec::new();
        let mut rule_of_pattern = Vec::new();
        let mut rules = Vec::new();
        for meta in catalog.iter().filter(|m| !m.prefilter.is_empty()) {
            for literal in &meta.prefilter {
                literals.push(literal.as_str());
                rule_of_pattern.push(rules.len());
            }
            rules.push(meta.id.clone());
        }
        let automaton = if literals.is_empty() {
            None
        } else {
            Some(
                AhoCorasickBuilder::new()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .build(&literals)?,
            )
        };
        Ok(Self {
            automaton,
            rule_of_pattern,
            rules,
        })
    }

    /// The rules with prefilter literals, in the order [`Prefilter::matching_rules`] indexes them.
    pub fn rules(&self) -> &[RuleId] {
        &self.rules
    }

    /// Calls `hit` once per rule (as an index into [`Prefilter::rules`]) whose literals occur in
    /// `text`. `seen` is scratch space reused across calls to avoid allocating per line.
    pub fn matching_rules(&self, text: &str, seen: &mut Vec<bool>, mut hit: impl FnMut(usize)) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        seen.clear();
        seen.resize(self.rules.len(), false);
        for found in automaton.find_overlapping_iter(text) {
            let rule = self.rule_of_pattern[found.pattern().as_usize()];
            if !seen[rule] {
                seen[rule] = true;
                hit(rule);
            }
        }
    }
}
