//! The regorus wrapper: compile a pack once, evaluate it many times on cheap clones.

use super::input::{ChangeContext, PolicyInput};
use super::prefilter::Prefilter;
use super::{Catalog, PolicyError, PolicyPack};
use crate::config::RepoConfig;
use crate::diff::Diff;
use crate::domain::{Fingerprint, RuleId, Violation};
use serde::Deserialize;
use std::collections::HashMap;

/// Packages under this prefix are rule packages: each defines a `violation` set.
const RULE_PACKAGE_PREFIX: [&str; 2] = ["tollgate", "rules"];

/// A compiled pack, ready to evaluate. Cloning the inner engine per evaluation is cheap (shared
/// modules) and keeps evaluations independent.
pub struct PolicyEngine {
    engine: regorus::Engine,
    rule_packages: Vec<String>,
    catalog: Catalog,
    prefilter: Prefilter,
    digest: String,
}

/// What a pack found in one change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Findings {
    /// Sorted by tier, rule and location.
    pub violations: Vec<Violation>,
    /// Paths whose lines could not be evaluated because the source had no patch for them.
    pub not_evaluated: Vec<String>,
}

/// A violation as a policy reports it, before the catalog and config give it a tier.
#[derive(Deserialize)]
struct ReportedViolation {
    rule: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    message: String,
}

impl PolicyEngine {
    /// Parses and compiles every source, and evaluates the pack once on an empty change so that
    /// errors surface at load time rather than on the first pull request.
    pub fn load(pack: &PolicyPack) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for source in &pack.sources {
            engine
                .add_policy(source.name.clone(), source.text.clone())
                .map_err(|e| PolicyError::Compile {
                    message: e.to_string(),
                })?;
        }
        let mut rule_packages: Vec<String> = engine
            .get_policy_package_components()
            .map_err(|e| PolicyError::Compile {
                message: e.to_string(),
            })?
            .into_iter()
            .filter(|p| {
                p.components
                    .starts_with(&RULE_PACKAGE_PREFIX.map(String::from))
            })
            .map(|p| format!("data.{}", p.components.join(".")))
            .collect();
        rule_packages.sort();
        rule_packages.dedup();
        if rule_packages.is_empty() {
            return Err(PolicyError::Compile {
                message: "the pack has no rule package (package tollgate.rules.<name>)".to_owned(),
            });
        }
        let prefilter = Prefilter::build(&pack.catalog).map_err(|e| PolicyError::Compile {
            message: format!("prefilter: {e}"),
        })?;
        let loaded = Self {
            engine,
            rule_packages,
            catalog: pack.catalog.clone(),
            prefilter,
            digest: pack.digest(),
        };
        let mut prepared = loaded;
        let defaults = RepoConfig::defaults(&prepared.catalog);
        prepared.engine = prepared
            .run(&Diff::default(), &ChangeContext::default(), &defaults)?
            .0;
        Ok(prepared)
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Digest of the pack's sources and metadata, recorded with every evaluation.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Evaluates the pack on a change under a repository config.
    pub fn evaluate(
        &self,
        diff: &Diff,
        context: &ChangeContext,
        config: &RepoConfig,
    ) -> Result<Findings, PolicyError> {
        let (_, reported) = self.run(diff, context, config)?;
        let line_texts: HashMap<(&str, u32), &str> = diff
            .files
            .iter()
            .flat_map(|f| {
                f.added
                    .iter()
                    .map(move |l| ((f.path(), l.number), l.text.as_str()))
            })
            .collect();
        let mut violations = Vec::new();
        for (package, raw) in reported {
            let rule_id = self.known_rule(&package, &raw.rule)?;
            let Some(rule) = config.rule(&rule_id).filter(|r| r.enabled) else {
                continue;
            };
            let offending = raw
                .path
                .as_deref()
                .zip(raw.line)
                .and_then(|key| line_texts.get(&key).copied())
                .unwrap_or(&raw.message);
            violations.push(Violation {
                fingerprint: Fingerprint::of(&rule_id, raw.path.as_deref(), offending),
                rule_id,
                tier: rule.tier,
                path: raw.path,
                line: raw.line,
                message: raw.message,
            });
        }
        violations.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        violations.dedup();
        let not_evaluated = diff
            .files
            .iter()
            .filter(|f| !f.patch_available && !config.is_ignored(f.path()))
            .map(|f| f.path().to_owned())
            .collect();
        Ok(Findings {
            violations,
            not_evaluated,
        })
    }

    /// Runs every rule package on one input; returns the engine (prepared) and what was reported.
    fn run(
        &self,
        diff: &Diff,
        context: &ChangeContext,
        config: &RepoConfig,
    ) -> Result<(regorus::Engine, Vec<(String, ReportedViolation)>), PolicyError> {
        let input = PolicyInput::build(diff, context, config, &self.prefilter);
        let input = serde_json::to_value(&input).map_err(|e| PolicyError::Input {
            message: e.to_string(),
        })?;
        let mut engine = self.engine.clone();
        engine.set_input(regorus::Value::from(input));
        let mut reported = Vec::new();
        for package in &self.rule_packages {
            let value = engine
                .eval_rule(format!("{package}.violation"))
                .map_err(|e| PolicyError::Runtime {
                    package: package.clone(),
                    message: e.to_string(),
                })?;
            reported.extend(
                parse_reported(package, value)?
                    .into_iter()
                    .map(|v| (package.clone(), v)),
            );
        }
        Ok((engine, reported))
    }

    fn known_rule(&self, package: &str, raw: &str) -> Result<RuleId, PolicyError> {
        let invalid = |message: String| PolicyError::Output {
            package: package.to_owned(),
            message,
        };
        let id: RuleId = raw.parse().map_err(|e| invalid(format!("{e}")))?;
        if self.catalog.get(&id).is_none() {
            return Err(invalid(format!(
                "rule {id} is reported but has no entry in rules.yaml (add its metadata there)"
            )));
        }
        Ok(id)
    }
}

/// `violation` is a set of objects; undefined (no rule body matched) means none.
fn parse_reported(
    package: &str,
    value: regorus::Value,
) -> Result<Vec<ReportedViolation>, PolicyError> {
    let invalid = |message: String| PolicyError::Output {
        package: package.to_owned(),
        message,
    };
    let items: Vec<regorus::Value> = match value {
        regorus::Value::Undefined => return Ok(Vec::new()),
        regorus::Value::Set(set) => set.iter().cloned().collect(),
        regorus::Value::Array(array) => array.iter().cloned().collect(),
        other => {
            return Err(invalid(format!(
                "`violation` must be a set of objects, found {other}"
            )));
        }
    };
    items
        .into_iter()
        .map(|item| {
            let json = serde_json::to_value(&item).map_err(|e| invalid(e.to_string()))?;
            serde_json::from_value(json).map_err(|e| {
                invalid(format!(
                    "each violation needs `rule` and `message` strings and may have `path` and `line` ({e}): {item}"
                ))
            })
        })
        .collect()
}
