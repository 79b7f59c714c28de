//! Rule metadata: what each rule is, its default tier, and how to fix or override it. Kept outside
//! Rego so that a repository can re-tier a rule without touching policy code.

use crate::domain::{RuleId, Tier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One rule's metadata, as listed in a pack's `rules.yaml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleMeta {
    pub id: RuleId,
    pub name: String,
    pub tier: Tier,
    pub category: String,
    pub description: String,
    pub remediation: String,
    /// When an override is a reasonable answer to this rule.
    pub override_when: String,
    /// Case-insensitive literals: only added lines containing one of them are handed to the rule
    /// as `input.candidates[id]`. Empty for rules that look at files or the PR as a whole.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefilter: Vec<String>,
    /// Tunable parameters with their defaults; a repository config may set them per rule.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Report at most one violation per file (the first, counting the others in its message):
    /// for findings that come in runs, like `unsafe` blocks in one SIMD module, where one
    /// decision covers the file and one penalty per line would drown the score.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub once_per_file: bool,
}

/// Every rule known to a pack, ordered by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    rules: BTreeMap<RuleId, RuleMeta>,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
    #[error("{source_name}: rule {id} is defined twice")]
    Duplicate { source_name: String, id: RuleId },
}

impl Catalog {
    /// Parses a `rules.yaml` document (a list of rules) and adds its rules. With `replace`, a rule
    /// id already present is redefined; otherwise a repeated id is an error.
    pub fn add_yaml(
        &mut self,
        source_name: &str,
        yaml: &str,
        replace: bool,
    ) -> Result<(), CatalogError> {
        let rules: Vec<RuleMeta> =
            serde_yaml_ng::from_str(yaml).map_err(|e| CatalogError::Invalid {
                source_name: source_name.to_owned(),
                message: e.to_string(),
            })?;
        for rule in rules {
            if !replace && self.rules.contains_key(&rule.id) {
                return Err(CatalogError::Duplicate {
                    source_name: source_name.to_owned(),
                    id: rule.id,
                });
            }
            if let Some(empty) = rule.prefilter.iter().find(|p| p.trim().is_empty()) {
                return Err(CatalogError::Invalid {
                    source_name: source_name.to_owned(),
                    message: format!("rule {}: prefilter entry {empty:?} is empty", rule.id),
                });
            }
            self.rules.insert(rule.id.clone(), rule);
        }
        Ok(())
    }

    pub fn get(&self, id: &RuleId) -> Option<&RuleMeta> {
        self.rules.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &RuleMeta> {
        self.rules.values()
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}
