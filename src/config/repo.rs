//! The repository config, `.github/tollgate.yml`: threshold, ignored paths, per-rule tuning and
//! overrides. Parsed strictly: an unknown key or a bad value is an error that names the key.

use super::overrides::{OverrideSettings, OverridesFile};
use crate::domain::{RuleId, Threshold, Tier};
use crate::policy::Catalog;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;

/// A config holds a few dozen values, but YAML aliases let a few kilobytes expand to billions
/// (each use of an alias repeats what it names), so a document is refused past this many values
/// after expansion, before any of it is built.
const MAX_EXPANDED_VALUES: usize = 10_000;

/// The file as written by the repository's maintainers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoConfigFile {
    #[serde(default)]
    pub threshold: Threshold,
    #[serde(default)]
    pub ignore_paths: Vec<String>,
    #[serde(default)]
    pub rules: BTreeMap<RuleId, RuleSettings>,
    #[serde(default)]
    pub overrides: OverridesFile,
    #[serde(default)]
    pub merge_queue: MergeQueueMode,
}

/// How a merge group (GitHub's merge queue) is judged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MergeQueueMode {
    /// The combined change of the group is evaluated again, with the policy at its base.
    #[default]
    Reevaluate,
    /// The group passes when every pull request in it passed at its head.
    TrustPullRequests,
}

impl MergeQueueMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reevaluate => "reevaluate",
            Self::TrustPullRequests => "trust_pull_requests",
        }
    }
}

/// Per-rule tuning; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    pub enabled: Option<bool>,
    pub tier: Option<Tier>,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RepoConfigError {
    #[error("{0}")]
    Syntax(String),
    #[error("rules.{rule}: unknown rule (known rules: {known})")]
    UnknownRule { rule: RuleId, known: String },
    #[error("rules.{rule}.params.{param}: unknown parameter (known: {known})")]
    UnknownParam {
        rule: RuleId,
        param: String,
        known: String,
    },
    #[error("rules.{rule}.params.{param}: expected {expected}, found {found}")]
    ParamType {
        rule: RuleId,
        param: String,
        expected: &'static str,
        found: String,
    },
    #[error("ignore_paths[{index}]: invalid glob {glob:?}: {message}")]
    Glob {
        index: usize,
        glob: String,
        message: String,
    },
    #[error("overrides.approvers[{index}]: {value:?} is not a GitHub login or org/team slug")]
    Approver { index: usize, value: String },
    #[error(
        "overrides.approvers[{index}]: {value:?} is listed twice (logins and teams are case-insensitive)"
    )]
    DuplicateApprover { index: usize, value: String },
    #[error("overrides.slack_users: {login:?} is not a GitHub login")]
    SlackLogin { login: String },
    #[error(
        "overrides.slack_users.{login}: {value:?} is not a Slack user id (U or W followed by uppercase letters and digits)"
    )]
    SlackUserId { login: String, value: String },
    #[error(
        "overrides.slack_users: {first:?} and {second:?} are the same login (logins are case-insensitive)"
    )]
    DuplicateSlackLogin { first: String, second: String },
    #[error(
        "overrides.slack_users: {first:?} and {second:?} both map to {id}, so a click from {id} could not be told apart"
    )]
    SharedSlackUser {
        first: String,
        second: String,
        id: String,
    },
    #[error("overrides.{key}: {value} is out of range ({min} to {max})")]
    OutOfRange {
        key: &'static str,
        value: i64,
        min: i64,
        max: i64,
    },
    #[error(
        "overrides.required_approvals: {required} approvals can never be given by the {listed} listed approvers"
    )]
    UnreachableApprovals { required: u32, listed: usize },
}

/// A rule's settings after the repository config is applied to the pack's defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EffectiveRule {
    pub enabled: bool,
    pub tier: Tier,
    pub params: BTreeMap<String, serde_json::Value>,
}

/// The config in force for one evaluation: every rule of the catalog resolved.
#[derive(Debug, Clone)]
pub struct RepoConfig {
    pub threshold: Threshold,
    pub ignore_paths: Vec<String>,
    ignore_set: GlobSet,
    pub rules: BTreeMap<RuleId, EffectiveRule>,
    pub overrides: OverrideSettings,
    pub merge_queue: MergeQueueMode,
}

impl RepoConfigFile {
    /// Parses YAML; an empty document means all defaults.
    pub fn parse(yaml: &str) -> Result<Self, RepoConfigError> {
        parse_bounded_yaml(yaml).map_err(RepoConfigError::Syntax)
    }
}

/// Parses a config document strictly, refusing one whose aliases expand past the value budget;
/// an empty document means all defaults. The error is serde's message, which names the key.
pub(super) fn parse_bounded_yaml<T: de::DeserializeOwned + Default>(
    yaml: &str,
) -> Result<T, String> {
    if yaml.trim().is_empty() {
        return Ok(T::default());
    }
    let budget = Cell::new(MAX_EXPANDED_VALUES);
    ValueBudget(&budget)
        .deserialize(serde_yaml_ng::Deserializer::from_str(yaml))
        .map_err(|e| e.to_string())?;
    serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
}

/// Walks a document without building it and fails once it holds more values than the budget
/// left, counting every value an alias repeats.
#[derive(Clone, Copy)]
struct ValueBudget<'a>(&'a Cell<usize>);

impl ValueBudget<'_> {
    fn spend<E: de::Error>(self) -> Result<(), E> {
        let left = self.0.get().checked_sub(1).ok_or_else(|| {
            E::custom(format_args!(
                "the document holds more than {MAX_EXPANDED_VALUES} values once its aliases \
                 are expanded"
            ))
        })?;
        self.0.set(left);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ValueBudget<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueBudget<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.spend()
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.spend()
    }

    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        self.spend()
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.spend()
    }

    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        self.spend()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.spend()
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.spend()
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<(), E> {
        self.spend()
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.spend()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.spend()?;
        self.deserialize(deserializer)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.spend()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.spend()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }

    /// A value under a custom tag (`!name value`).
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        self.spend()?;
        let ((), variant) = data.variant_seed(self)?;
        de::VariantAccess::newtype_variant_seed(variant, self)
    }
}

impl RepoConfig {
    /// Applies the file to the catalog's defaults, checking rule ids, parameter names and types.
    pub fn resolve(file: &RepoConfigFile, catalog: &Catalog) -> Result<Self, RepoConfigError> {
        for rule in file.rules.keys() {
            if catalog.get(rule).is_none() {
                let known = catalog
                    .iter()
                    .map(|r| r.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(RepoConfigError::UnknownRule {
                    rule: rule.clone(),
                    known,
                });
            }
        }
        let mut rules = BTreeMap::new();
        for meta in catalog.iter() {
            let settings = file.rules.get(&meta.id).cloned().unwrap_or_default();
            let mut params = meta.params.clone();
            for (name, value) in settings.params {
                let default = params
                    .get(&name)
                    .ok_or_else(|| RepoConfigError::UnknownParam {
                        rule: meta.id.clone(),
                        param: name.clone(),
                        known: known_names(meta.params.keys()),
                    })?;
                check_same_kind(&meta.id, &name, default, &value)?;
                params.insert(name, value);
            }
            let effective = EffectiveRule {
                enabled: settings.enabled.unwrap_or(true),
                tier: settings.tier.unwrap_or(meta.tier),
                params,
            };
            rules.insert(meta.id.clone(), effective);
        }
        let mut builder = GlobSetBuilder::new();
        for (index, pattern) in file.ignore_paths.iter().enumerate() {
            let glob = Glob::new(pattern).map_err(|e| RepoConfigError::Glob {
                index,
                glob: pattern.clone(),
                message: e.kind().to_string(),
            })?;
            builder.add(glob);
        }
        let ignore_set = builder.build().map_err(|e| RepoConfigError::Glob {
            index: 0,
            glob: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self {
            threshold: file.threshold,
            ignore_paths: file.ignore_paths.clone(),
            ignore_set,
            rules,
            overrides: file.overrides.resolve()?,
            merge_queue: file.merge_queue,
        })
    }

    /// All defaults for this catalog.
    pub fn defaults(catalog: &Catalog) -> Self {
        match Self::resolve(&RepoConfigFile::default(), catalog) {
            Ok(config) => config,
            Err(never) => unreachable!("the default config always resolves: {never}"),
        }
    }

    pub fn is_ignored(&self, path: &str) -> bool {
        self.ignore_set.is_match(path)
    }

    pub fn rule(&self, id: &RuleId) -> Option<&EffectiveRule> {
        self.rules.get(id)
    }
}

fn known_names<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

fn kind_of(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a map",
    }
}

fn check_same_kind(
    rule: &RuleId,
    param: &str,
    default: &serde_json::Value,
    value: &serde_json::Value,
) -> Result<(), RepoConfigError> {
    let negative_number = value.as_f64().is_some_and(|n| n < 0.0) && default.is_number();
    if kind_of(default) != kind_of(value) || negative_number {
        return Err(RepoConfigError::ParamType {
            rule: rule.clone(),
            param: param.to_owned(),
            expected: if default.is_number() {
                "a non-negative number"
            } else {
                kind_of(default)
            },
            found: value.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        catalog
            .add_yaml(
                "test",
                r#"
- id: R12
  name: New dependency
  tier: OVERRIDE
  category: supply-chain
  description: d
  remediation: r
  override_when: o
- id: R19
  name: PR too large
  tier: WARNING
  category: hygiene
  description: d
  remediation: r
  override_when: o
  params: { max_lines: 1000, max_files: 50 }
"#,
                false,
            )
            .unwrap();
        catalog
    }

    fn resolve(yaml: &str) -> Result<RepoConfig, RepoConfigError> {
        RepoConfig::resolve(&RepoConfigFile::parse(yaml)?, &catalog())
    }

    #[test]
    fn merge_queue_mode_defaults_to_reevaluate_and_refuses_unknown_values() {
        assert_eq!(resolve("").unwrap().merge_queue, MergeQueueMode::Reevaluate);
        assert_eq!(
            resolve("merge_queue: trust_pull_requests\n")
                .unwrap()
                .merge_queue,
            MergeQueueMode::TrustPullRequests
        );
        let error = resolve("merge_queue: trust\n").unwrap_err().to_string();
        assert!(error.contains("merge_queue"), "{error}");
    }

    #[test]
    fn empty_file_means_defaults() {
        let config = resolve("").unwrap();
        assert_eq!(config.threshold, Threshold::DEFAULT);
        assert_eq!(config.rules.len(), 2);
        let r19 = config.rule(&"R19".parse().unwrap()).unwrap();
        assert_eq!(r19.params["max_lines"], 1000);
        assert!(r19.enabled);
    }

    #[test]
    fn rules_can_be_disabled_retiered_and_tuned() {
        let config = resolve(
            "threshold: 80\nignore_paths: ['docs/**']\nrules:\n  R12: { tier: WARNING }\n  R19: { enabled: false, params: { max_lines: 800 } }\n",
        )
        .unwrap();
        assert_eq!(config.threshold.value(), 80);
        assert_eq!(
            config.rule(&"R12".parse().unwrap()).unwrap().tier,
            Tier::Warning
        );
        let r19 = config.rule(&"R19".parse().unwrap()).unwrap();
        assert!(!r19.enabled);
        assert_eq!(r19.params["max_lines"], 800);
        assert_eq!(r19.params["max_files"], 50);
        assert!(config.is_ignored("docs/guide/intro.md"));
        assert!(!config.is_ignored("src/docs.rs"));
    }

    #[test]
    fn aliases_may_repeat_settings() {
        let file = RepoConfigFile::parse(
            "rules:\n  R12: &off { enabled: false }\n  R19: *off\nignore_paths: &docs ['docs/**']\n",
        )
        .unwrap();
        let off = RuleSettings {
            enabled: Some(false),
            ..RuleSettings::default()
        };
        assert_eq!(file.rules[&"R12".parse().unwrap()], off);
        assert_eq!(file.rules[&"R19".parse().unwrap()], off);
        assert_eq!(file.ignore_paths, ["docs/**"]);
    }

    /// Written for the `repo_config` fuzz target, which stopped it past 2 GB after 43 s.
    #[test]
    fn aliases_expanding_past_the_limit_are_refused() {
        let scalars = vec!["a"; 1000].join(",");
        let first = vec!["*a"; 300].join(",");
        let second = vec!["*b"; 300].join(",");
        let yaml = format!(
            "rules:\n  R19:\n    params:\n      x: &a [{scalars}]\n      y: &b [{first}]\n      z: [{second}]\n"
        );
        assert!(yaml.len() < 4096);
        let Err(RepoConfigError::Syntax(message)) = RepoConfigFile::parse(&yaml) else {
            panic!("the document was accepted");
        };
        assert!(
            message.contains("more than 10000 values"),
            "unexpected message {message:?}"
        );
    }

    /// The walk that counts values must not refuse what the parser accepts.
    #[test]
    fn custom_tags_are_left_to_the_parser() {
        assert_eq!(
            RepoConfigFile::parse("threshold: !big 80").unwrap(),
            RepoConfigFile::parse("threshold: 80").unwrap()
        );
    }

    #[test]
    fn errors_name_the_key() {
        let cases = [
            ("threshhold: 80", "threshhold"),
            ("threshold: 101", "threshold"),
            ("rules:\n  R99: { enabled: false }", "rules.R99"),
            ("rules:\n  r12: { enabled: false }", "r12"),
            ("rules:\n  R12: { tier: FATAL }", "FATAL"),
            ("rules:\n  R12: { enabeld: false }", "enabeld"),
            (
                "rules:\n  R19: { params: { max_line: 3 } }",
                "rules.R19.params.max_line",
            ),
            (
                "rules:\n  R19: { params: { max_lines: many } }",
                "rules.R19.params.max_lines",
            ),
            (
                "rules:\n  R19: { params: { max_lines: -5 } }",
                "rules.R19.params.max_lines",
            ),
            ("ignore_paths: ['src/[']", "ignore_paths[0]"),
        ];
        for (yaml, key) in cases {
            let message = resolve(yaml).unwrap_err().to_string();
            assert!(
                message.contains(key),
                "{yaml:?} gave {message:?}, which does not name {key}"
            );
        }
    }
}
