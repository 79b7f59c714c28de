//! The regorus wrapper: compile a pack once, evaluate it many times on cheap clones.

use super::input::{ChangeContext, PolicyInput, classify_files};
use super::prefilter::Prefilter;
use super::{Catalog, PolicyError, PolicyPack, PolicySource};
use crate::config::RepoConfig;
use crate::diff::Diff;
use crate::domain::{Fingerprint, RuleId, Violation};
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Deserialize;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

/// Work units between two reads of the clock while a rule runs: often enough to stop a runaway
/// rule within milliseconds of its limit, rarely enough to cost nothing measurable.
const TIMER_CHECK_INTERVAL: NonZeroU32 = NonZeroU32::new(256).expect("non-zero");

/// Packages under this prefix are rule packages: each defines a `violation` set.
const RULE_PACKAGE_PREFIX: [&str; 2] = ["tollgate", "rules"];

/// A compiled pack, ready to evaluate. Cloning the inner engine per evaluation is cheap (shared
/// modules) and keeps evaluations independent.
pub struct PolicyEngine {
    engine: regorus::Engine,
    /// How long one change may take to evaluate, all rule packages together.
    time_limit: Duration,
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
            time_limit: super::DEFAULT_TIME_LIMIT,
            rule_packages,
            catalog: pack.catalog.clone(),
            prefilter,
            digest: pack.digest(),
        };
        let mut prepared = loaded;
        let defaults = RepoConfig::defaults(&prepared.catalog);
        let mut engine = prepared.engine.clone();
        let reported = prepared.run(
            &mut engine,
            &Diff::default(),
            &ChangeContext::default(),
            &defaults,
        )?;
        for (package, violation) in &reported {
            prepared.known_rule(package, &violation.rule)?;
        }
        prepared.engine = engine;
        Ok(prepared)
    }

    /// A run that keeps its state across calls, with the pack's test modules added and line
    /// coverage on: `tollgate test` runs test rules and fixture changes on it, then reads the
    /// coverage of all of them.
    pub fn traced(&self, tests: &[PolicySource]) -> Result<TracedRun<'_>, PolicyError> {
        let mut engine = self.engine.clone();
        for test in tests {
            engine
                .add_policy(test.name.clone(), test.text.clone())
                .map_err(|e| PolicyError::Compile {
                    message: e.to_string(),
                })?;
        }
        engine.set_enable_coverage(true);
        Ok(TracedRun { pack: self, engine })
    }

    /// Stops an evaluation that runs longer than `limit` (a looping or runaway rule) with
    /// [`PolicyError::TimeLimit`].
    #[must_use]
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self
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
        let mut engine = self.engine.clone();
        self.findings_on(&mut engine, diff, context, config)
    }

    /// Evaluates on `engine` (a clone of the compiled one, perhaps with more state: test modules,
    /// coverage) and resolves what the policies reported against the catalog and config.
    fn findings_on(
        &self,
        engine: &mut regorus::Engine,
        diff: &Diff,
        context: &ChangeContext,
        config: &RepoConfig,
    ) -> Result<Findings, PolicyError> {
        let reported = self.run(engine, diff, context, config)?;
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
        let violations = self.fold_per_file(violations);
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

    /// Runs every rule package of `engine` on one input; what was reported.
    fn run(
        &self,
        engine: &mut regorus::Engine,
        diff: &Diff,
        context: &ChangeContext,
        config: &RepoConfig,
    ) -> Result<Vec<(String, ReportedViolation)>, PolicyError> {
        let syntax = classify_files(diff, config);
        let input = PolicyInput::build(diff, &syntax, context, config, &self.prefilter);
        let input = serde_json::to_value(&input).map_err(|e| PolicyError::Input {
            message: e.to_string(),
        })?;
        engine.set_input(regorus::Value::from(input));
        let started = Instant::now();
        let mut reported = Vec::new();
        for package in &self.rule_packages {
            let out_of_time = || PolicyError::TimeLimit {
                package: package.clone(),
                limit: self.time_limit,
            };
            // regorus checks its timer as it works and restarts it with each rule evaluated:
            // each package gets what is left of the change's time.
            let left = self
                .time_limit
                .checked_sub(started.elapsed())
                .filter(|left| !left.is_zero())
                .ok_or_else(out_of_time)?;
            engine.set_execution_timer_config(ExecutionTimerConfig {
                limit: left,
                check_interval: TIMER_CHECK_INTERVAL,
            });
            let value = engine
                .eval_rule(format!("{package}.violation"))
                .map_err(|e| {
                    if started.elapsed() >= self.time_limit {
                        out_of_time()
                    } else {
                        PolicyError::Runtime {
                            package: package.clone(),
                            message: e.to_string(),
                        }
                    }
                })?;
            reported.extend(
                parse_reported(package, value)?
                    .into_iter()
                    .map(|v| (package.clone(), v)),
            );
        }
        Ok(reported)
    }

    /// Folds the violations of `once_per_file` rules into the first one per file. Expects
    /// violations sorted by rule, then path and line.
    fn fold_per_file(&self, violations: Vec<Violation>) -> Vec<Violation> {
        let mut folded: Vec<Violation> = Vec::with_capacity(violations.len());
        let mut more_lines: Vec<Vec<u32>> = Vec::with_capacity(violations.len());
        for violation in violations {
            let once = self
                .catalog
                .get(&violation.rule_id)
                .is_some_and(|r| r.once_per_file);
            if let Some(first) = folded.last()
                && once
                && violation.path.is_some()
                && first.rule_id == violation.rule_id
                && first.path == violation.path
            {
                if let (Some(lines), Some(line)) = (more_lines.last_mut(), violation.line) {
                    lines.push(line);
                }
                continue;
            }
            folded.push(violation);
            more_lines.push(Vec::new());
        }
        for (violation, lines) in folded.iter_mut().zip(more_lines) {
            if !lines.is_empty() {
                violation.message = with_more_lines(&violation.message, &lines);
            }
        }
        folded
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

/// See [`PolicyEngine::traced`].
pub struct TracedRun<'a> {
    pack: &'a PolicyEngine,
    engine: regorus::Engine,
}

/// The lines of one policy file that ran, and those that never did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileCoverage {
    pub path: String,
    pub covered: Vec<u32>,
    pub not_covered: Vec<u32>,
}

impl TracedRun<'_> {
    /// Evaluates a test rule (`data.pkg.test_name`) with an empty input: `Ok(true)` when its
    /// body holds, `Ok(false)` when it is undefined or not `true`.
    pub fn test_rule(&mut self, rule: &str) -> Result<bool, PolicyError> {
        self.engine.set_input(regorus::Value::new_object());
        let value = self
            .engine
            .eval_rule(rule.to_owned())
            .map_err(|e| PolicyError::Runtime {
                package: rule.to_owned(),
                message: e.to_string(),
            })?;
        Ok(value == regorus::Value::Bool(true))
    }

    /// [`PolicyEngine::evaluate`], counted in the coverage.
    pub fn evaluate(
        &mut self,
        diff: &Diff,
        context: &ChangeContext,
        config: &RepoConfig,
    ) -> Result<Findings, PolicyError> {
        self.pack
            .findings_on(&mut self.engine, diff, context, config)
    }

    /// The coverage of every policy file so far, in file order.
    pub fn coverage(&self) -> Result<Vec<FileCoverage>, PolicyError> {
        let report = self
            .engine
            .get_coverage_report()
            .map_err(|e| PolicyError::Compile {
                message: format!("coverage: {e}"),
            })?;
        Ok(report
            .files
            .into_iter()
            .map(|file| FileCoverage {
                path: file.path,
                covered: file.covered.into_iter().collect(),
                not_covered: file.not_covered.into_iter().collect(),
            })
            .collect())
    }
}

/// `message (and 3 more in this file: lines 40, 52, 77)`, listing at most ten lines.
fn with_more_lines(message: &str, lines: &[u32]) -> String {
    const SHOWN: usize = 10;
    let mut listed: Vec<String> = lines.iter().take(SHOWN).map(u32::to_string).collect();
    if lines.len() > SHOWN {
        listed.push("…".to_owned());
    }
    let noun = if lines.len() == 1 { "line" } else { "lines" };
    format!(
        "{message} (and {} more in this file: {noun} {})",
        lines.len(),
        listed.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::{FileChange, FileStatus, Line};

    const RULES: &str = r#"
- id: T1
  name: Marker
  tier: WARNING
  category: test
  description: d
  remediation: r
  override_when: o
  prefilter: ["marker"]
  once_per_file: true
- id: T2
  name: Every marker
  tier: WARNING
  category: test
  description: d
  remediation: r
  override_when: o
  prefilter: ["marker"]
"#;

    const REGO: &str = r#"package tollgate.rules.test

violation contains {"rule": "T1", "path": c.path, "line": c.line, "message": "marker"} if {
	some c in input.candidates.T1
}

violation contains {"rule": "T2", "path": c.path, "line": c.line, "message": "marker"} if {
	some c in input.candidates.T2
}
"#;

    fn engine() -> PolicyEngine {
        let mut pack = PolicyPack::empty();
        pack.catalog.add_yaml("rules.yaml", RULES, false).unwrap();
        pack.sources.push(PolicySource {
            name: "test.rego".into(),
            text: REGO.into(),
        });
        PolicyEngine::load(&pack).unwrap()
    }

    fn file(path: &str, lines: &[(u32, &str)]) -> FileChange {
        FileChange {
            status: FileStatus::Added,
            old_path: None,
            new_path: Some(path.into()),
            old_mode: None,
            new_mode: None,
            binary: false,
            patch_available: true,
            additions: lines.len() as u32,
            deletions: 0,
            added: lines
                .iter()
                .map(|(n, t)| Line {
                    number: *n,
                    text: (*t).into(),
                })
                .collect(),
            removed: vec![],
            context: vec![],
            hunks: vec![],
            new_missing_final_newline: false,
        }
    }

    /// A rule that would run for minutes on any candidate: 400 million pairs.
    const RUNAWAY: &str = r#"package tollgate.rules.runaway

violation contains {"rule": "T1", "message": "never"} if {
	some c in input.candidates.T1
	r := numbers.range(1, 20000)
	some i in r
	some j in r
	i * j == -1
}
"#;

    #[test]
    fn a_runaway_rule_is_stopped_at_the_time_limit_naming_its_package() {
        let mut pack = PolicyPack::empty();
        pack.catalog.add_yaml("rules.yaml", RULES, false).unwrap();
        pack.sources.push(PolicySource {
            name: "runaway.rego".into(),
            text: RUNAWAY.into(),
        });
        let engine = PolicyEngine::load(&pack)
            .unwrap()
            .with_time_limit(Duration::from_millis(100));
        let diff = Diff {
            files: vec![file("a.rs", &[(1, "marker")])],
        };
        let config = RepoConfig::defaults(engine.catalog());
        let error = engine
            .evaluate(&diff, &ChangeContext::default(), &config)
            .unwrap_err();
        assert!(
            matches!(&error, PolicyError::TimeLimit { package, .. } if package == "data.tollgate.rules.runaway"),
            "{error}"
        );
        assert!(error.to_string().contains("time limit of 0.1 s"), "{error}");
    }

    #[test]
    fn once_per_file_rules_fold_into_the_first_finding_of_each_file() {
        let engine = engine();
        let diff = Diff {
            files: vec![
                file("a.rs", &[(3, "marker"), (9, "marker"), (12, "marker")]),
                file("b.rs", &[(1, "marker")]),
            ],
        };
        let config = RepoConfig::defaults(engine.catalog());
        let findings = engine
            .evaluate(&diff, &ChangeContext::default(), &config)
            .unwrap();
        let folded: Vec<_> = findings
            .violations
            .iter()
            .filter(|v| v.rule_id.as_str() == "T1")
            .map(|v| {
                (
                    v.path.as_deref().unwrap(),
                    v.line.unwrap(),
                    v.message.as_str(),
                )
            })
            .collect();
        assert_eq!(
            folded,
            [
                ("a.rs", 3, "marker (and 2 more in this file: lines 9, 12)"),
                ("b.rs", 1, "marker")
            ]
        );
        let every = findings
            .violations
            .iter()
            .filter(|v| v.rule_id.as_str() == "T2")
            .count();
        assert_eq!(every, 4, "rules without once_per_file report every line");
    }

    #[test]
    fn a_rule_without_metadata_is_an_error_naming_it() {
        let mut pack = PolicyPack::empty();
        pack.catalog.add_yaml("rules.yaml", RULES, false).unwrap();
        let rego = "package tollgate.rules.rogue\n\nviolation contains {\"rule\": \"X9\", \"message\": \"m\"} if true\n";
        pack.sources.push(PolicySource {
            name: "rogue.rego".into(),
            text: rego.into(),
        });
        let error = PolicyEngine::load(&pack)
            .err()
            .expect("unknown rule refused")
            .to_string();
        assert!(
            error.contains("X9") && error.contains("rules.yaml"),
            "{error}"
        );
    }
}
