//! The evaluation as a SARIF 2.1.0 log (`tollgate check --format sarif`), the format GitHub code
//! scanning reads: one run whose `tool.driver` lists every rule of the pack, one result per
//! violation, overridden violations as accepted suppressions.
//!
//! Serialized with serde rather than a template: it is data for machines, and its shape is
//! checked against the OASIS schema in the tests.

use super::Evaluation;
use crate::domain::{Tier, Violation};
use crate::policy::RuleMeta;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde::Serialize;
use std::collections::BTreeMap;
use url::Url;

/// The schema the log declares; GitHub and editors pick the SARIF version from it.
const SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";
/// The `partialFingerprints` key carrying Tollgate's fingerprint (rule, path and offending text,
/// not the line), so code scanning keeps one alert for a finding whose line moves.
pub const FINGERPRINT_KEY: &str = "tollgateFingerprint/v1";
/// Rule categories GitHub should treat as security rules (the `security` tag makes it show
/// `security-severity` as Critical/High/Medium/Low instead of error/warning/note).
const SECURITY_CATEGORIES: [&str; 3] = ["security", "secrets", "supply-chain"];
/// Characters escaped in a path to make it a URI reference; `/` stays a separator.
const PATH_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// What the log needs beyond the evaluation.
#[derive(Debug, Clone, Default)]
pub struct SarifOptions {
    /// Where the rule runbooks are published (the pages `tollgate runbooks` writes under
    /// `rules/`): each rule's `helpUri` is `<runbook_url>/<ID>.md`. Without it the rules carry
    /// their help text only.
    pub runbook_url: Option<Url>,
}

/// A SARIF log; serialize it with `serde_json`.
#[derive(Debug, Clone, Serialize)]
pub struct SarifLog<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: [Run<'a>; 1],
}

#[derive(Debug, Clone, Serialize)]
struct Run<'a> {
    tool: Tool<'a>,
    results: Vec<SarifResult<'a>>,
    properties: RunProperties<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RunProperties<'a> {
    /// Digest of the policy pack that ran, as recorded with every evaluation.
    policy_revision: &'a str,
    score: u8,
    threshold: u8,
    verdict: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct Tool<'a> {
    driver: Driver<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver<'a> {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<Rule<'a>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule<'a> {
    id: &'a str,
    name: &'a str,
    short_description: Text<'a>,
    full_description: Text<'a>,
    help: Help<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    help_uri: Option<String>,
    default_configuration: Configuration,
    properties: RuleProperties<'a>,
}

#[derive(Debug, Clone, Serialize)]
struct Text<'a> {
    text: &'a str,
}

/// The remediation, which `rules.yaml` writes in Markdown.
#[derive(Debug, Clone, Serialize)]
struct Help<'a> {
    text: &'a str,
    markdown: &'a str,
}

#[derive(Debug, Clone, Serialize)]
struct Configuration {
    level: Level,
}

#[derive(Debug, Clone, Serialize)]
struct RuleProperties<'a> {
    tags: Vec<&'a str>,
    #[serde(rename = "security-severity")]
    security_severity: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    Error,
    Warning,
    Note,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult<'a> {
    rule_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule_index: Option<usize>,
    level: Level,
    message: Text<'a>,
    /// Empty for findings about the pull request as a whole (size, title), which have no place
    /// in a file.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    locations: Vec<Location>,
    partial_fingerprints: BTreeMap<&'static str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    suppressions: Vec<Suppression<'a>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Location {
    physical_location: PhysicalLocation,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<Region>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct ArtifactLocation {
    uri: String,
    uri_base_id: &'static str,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
}

/// An approved override: the finding stays in the log, marked as accepted with its reason.
#[derive(Debug, Clone, Serialize)]
struct Suppression<'a> {
    kind: &'static str,
    status: &'static str,
    justification: &'a str,
    properties: SuppressionProperties<'a>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SuppressionProperties<'a> {
    requested_by: &'a str,
    approved_by: &'a [String],
}

impl Level {
    fn of(tier: Tier) -> Self {
        match tier {
            Tier::Block => Level::Error,
            Tier::Override => Level::Warning,
            Tier::Warning => Level::Note,
        }
    }
}

/// GitHub reads ≥ 9.0 as critical, 7.0–8.9 high, 4.0–6.9 medium and below as low.
fn security_severity(tier: Tier) -> &'static str {
    match tier {
        Tier::Block => "9.5",
        Tier::Override => "7.0",
        Tier::Warning => "3.0",
    }
}

fn tags(rule: &RuleMeta) -> Vec<&str> {
    let mut tags = vec!["tollgate"];
    if SECURITY_CATEGORIES.contains(&rule.category.as_str()) && rule.category != "security" {
        tags.push("security");
    }
    tags.push(&rule.category);
    tags
}

fn rule<'a>(meta: &'a RuleMeta, options: &SarifOptions) -> Rule<'a> {
    Rule {
        id: meta.id.as_str(),
        name: &meta.name,
        short_description: Text { text: &meta.name },
        full_description: Text {
            text: &meta.description,
        },
        help: Help {
            text: &meta.remediation,
            markdown: &meta.remediation,
        },
        help_uri: options.runbook_url.as_ref().map(|base| runbook(base, meta)),
        default_configuration: Configuration {
            level: Level::of(meta.tier),
        },
        properties: RuleProperties {
            tags: tags(meta),
            security_severity: security_severity(meta.tier),
        },
    }
}

/// `<base>/<ID>.md`, whether or not the base ends with a slash.
fn runbook(base: &Url, meta: &RuleMeta) -> String {
    let mut page = base.clone();
    if let Ok(mut segments) = page.path_segments_mut() {
        segments.pop_if_empty().push(&format!("{}.md", meta.id));
    }
    page.into()
}

fn location(violation: &Violation) -> Option<Location> {
    let path = violation.path.as_deref()?;
    Some(Location {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation {
                uri: utf8_percent_encode(path, PATH_ESCAPES).to_string(),
                uri_base_id: "%SRCROOT%",
            },
            region: violation.line.map(|start_line| Region { start_line }),
        },
    })
}

/// The SARIF log of an evaluation: every rule of its catalog, every violation (overridden ones
/// as suppressed), and the policy revision, score and verdict as run properties.
pub fn render_sarif<'a>(evaluation: &Evaluation<'a>, options: &SarifOptions) -> SarifLog<'a> {
    let verdict = evaluation.verdict();
    let rules: Vec<Rule<'a>> = evaluation
        .catalog
        .iter()
        .map(|meta| rule(meta, options))
        .collect();
    let results = evaluation
        .findings
        .violations
        .iter()
        .map(|violation| SarifResult {
            rule_id: violation.rule_id.as_str(),
            rule_index: rules
                .iter()
                .position(|r| r.id == violation.rule_id.as_str()),
            level: Level::of(violation.tier),
            message: Text {
                text: &violation.message,
            },
            locations: location(violation).into_iter().collect(),
            partial_fingerprints: BTreeMap::from([(
                FINGERPRINT_KEY,
                violation.fingerprint.as_str(),
            )]),
            suppressions: evaluation
                .overrides
                .covering(violation)
                .map(|approved| Suppression {
                    kind: "external",
                    status: "accepted",
                    justification: &approved.reason,
                    properties: SuppressionProperties {
                        requested_by: &approved.requested_by,
                        approved_by: &approved.approved_by,
                    },
                })
                .into_iter()
                .collect(),
        })
        .collect();
    SarifLog {
        schema: SCHEMA,
        version: "2.1.0",
        runs: [Run {
            tool: Tool {
                driver: Driver {
                    name: "Tollgate",
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules,
                },
            },
            results,
            properties: RunProperties {
                policy_revision: evaluation.policy_digest,
                score: verdict.score().value(),
                threshold: verdict.threshold().value(),
                verdict: verdict.as_str(),
            },
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{DIGEST, at, catalog, text_fixture};
    use super::*;
    use crate::domain::{Overrides, Threshold};
    use crate::policy::Findings;
    use insta::assert_snapshot;
    use serde_json::{Value, json};

    fn log(evaluation: &Evaluation, options: &SarifOptions) -> Value {
        serde_json::to_value(render_sarif(evaluation, options)).unwrap()
    }

    fn with_runbooks(base: &str) -> SarifOptions {
        SarifOptions {
            runbook_url: Some(base.parse().unwrap()),
        }
    }

    #[test]
    fn sarif_output() {
        let (catalog, findings, overrides) = text_fixture();
        let evaluation =
            Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
        let options = with_runbooks("https://docs.example.com/tollgate/runbooks/rules/");
        let sarif = serde_json::to_string_pretty(&render_sarif(&evaluation, &options)).unwrap();
        assert_snapshot!(
            "sarif",
            sarif.replace(env!("CARGO_PKG_VERSION"), "[version]")
        );
    }

    #[test]
    fn every_rule_is_listed_and_every_result_points_at_its_rule() {
        let (catalog, findings, overrides) = text_fixture();
        let evaluation =
            Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
        let log = log(&evaluation, &SarifOptions::default());
        let run = &log["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let ids: Vec<&str> = rules.iter().map(|r| r["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["R01", "R04", "R07", "R12", "R19"]);
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), findings.violations.len());
        for result in results {
            let index = result["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[index]["id"], result["ruleId"]);
            assert_eq!(
                rules[index]["defaultConfiguration"]["level"],
                result["level"]
            );
        }
        assert!(
            rules.iter().all(|r| r.get("helpUri").is_none()),
            "no runbook address given, no helpUri"
        );
        assert_eq!(run["properties"]["policyRevision"], DIGEST);
    }

    #[test]
    fn levels_severities_and_tags_follow_tier_and_category() {
        let catalog = catalog();
        let findings = Findings::default();
        let overrides = Overrides::default();
        let evaluation =
            Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
        let log = log(&evaluation, &with_runbooks("https://h.example/runbooks"));
        let rules = &log["runs"][0]["tool"]["driver"]["rules"];
        let summary: Vec<Value> = rules
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                json!([
                    r["id"],
                    r["defaultConfiguration"]["level"],
                    r["properties"]["security-severity"],
                    r["properties"]["tags"],
                    r["helpUri"],
                ])
            })
            .collect();
        assert_eq!(
            summary,
            [
                json!([
                    "R01",
                    "error",
                    "9.5",
                    ["tollgate", "security"],
                    "https://h.example/runbooks/R01.md"
                ]),
                json!([
                    "R04",
                    "error",
                    "9.5",
                    ["tollgate", "correctness"],
                    "https://h.example/runbooks/R04.md"
                ]),
                json!([
                    "R07",
                    "warning",
                    "7.0",
                    ["tollgate", "hygiene"],
                    "https://h.example/runbooks/R07.md"
                ]),
                json!([
                    "R12",
                    "note",
                    "3.0",
                    ["tollgate", "hygiene"],
                    "https://h.example/runbooks/R12.md"
                ]),
                json!([
                    "R19",
                    "note",
                    "3.0",
                    ["tollgate", "hygiene"],
                    "https://h.example/runbooks/R19.md"
                ]),
            ]
        );
        assert_eq!(log["runs"][0]["results"], json!([]));
    }

    #[test]
    fn a_moved_line_keeps_its_fingerprint_and_an_override_becomes_a_suppression() {
        let catalog = catalog();
        let before = at("R07", "src/my app.py", 88, "print() call");
        let mut after = before.clone();
        after.line = Some(120);
        let overrides = Overrides::new(vec![crate::domain::ApprovedOverride {
            fingerprints: [before.fingerprint.clone()].into(),
            requested_by: "alice".to_owned(),
            approved_by: vec!["octocat".to_owned()],
            reason: "The CLI prints on purpose".to_owned(),
        }]);
        let result = |violation: &Violation| {
            let findings = Findings {
                violations: vec![violation.clone()],
                not_evaluated: Vec::new(),
            };
            let evaluation =
                Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
            log(&evaluation, &SarifOptions::default())["runs"][0]["results"][0].clone()
        };
        let (old, new) = (result(&before), result(&after));
        assert_eq!(old["partialFingerprints"], new["partialFingerprints"]);
        assert_eq!(
            new["partialFingerprints"][FINGERPRINT_KEY],
            before.fingerprint.as_str()
        );
        let location = &new["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uri"], "src/my%20app.py");
        assert_eq!(location["region"]["startLine"], 120);
        assert_eq!(
            new["suppressions"],
            json!([{
                "kind": "external",
                "status": "accepted",
                "justification": "The CLI prints on purpose",
                "properties": { "requestedBy": "alice", "approvedBy": ["octocat"] }
            }])
        );
    }
}
