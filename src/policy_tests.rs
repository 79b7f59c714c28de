//! `tollgate test [DIR]`: a policy pack's own tests, as `opa test` runs them, plus fixture changes.
//!
//! - Every `test_*` rule of the pack's `*_test.rego` files passes when its body is true (`todo_*`
//!   rules are listed as skipped), evaluated with an empty input (tests bring theirs with `with
//!   input as …`).
//! - Every `tests/NAME.diff` is evaluated with the pack and checked against `tests/NAME.expect.yaml`
//!   (see [`Expectations`]).
//! - The Rego line coverage of the pack's own files (not the built-in pack it extends), over all of
//!   them; `--threshold` fails a run under it.

use crate::check::PackMode;
use crate::config::{RepoConfig, RepoConfigFile};
use crate::diff::parse_unified;
use crate::domain::{Overrides, Violation, judge};
use crate::policy::{
    ChangeContext, FileCoverage, PolicyEngine, PolicyError, PolicyPack, PolicySource,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The folder of fixture changes in a pack directory.
pub const FIXTURES_DIR: &str = "tests";

/// Everything that stops the tests from running at all (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum PackTestError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Fixture { path: String, message: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What `tests/NAME.expect.yaml` says of `tests/NAME.diff`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The repository config (`.github/tollgate.yml`) the change is evaluated under.
    #[serde(default)]
    config: Option<serde_yaml_ng::Value>,
    /// The pull request's title and description (for rules that read them).
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    body: Option<String>,
    /// Findings that must be there.
    #[serde(default)]
    must_find: Vec<Expected>,
    /// Findings that must not be there.
    #[serde(default)]
    must_not_find: Vec<Expected>,
    /// `pass` or `fail`, when the verdict matters.
    #[serde(default)]
    verdict: Option<ExpectedVerdict>,
}

/// A finding by rule, and optionally path and line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    rule: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ExpectedVerdict {
    Pass,
    Fail,
}

impl Expected {
    fn matches(&self, violation: &Violation) -> bool {
        violation.rule_id.as_str() == self.rule
            && self
                .path
                .as_deref()
                .is_none_or(|path| violation.path.as_deref() == Some(path))
            && self.line.is_none_or(|line| violation.line == Some(line))
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(path) = &self.path {
            write!(f, " in {path}")?;
        }
        if let Some(line) = self.line {
            write!(f, " at line {line}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TestKind {
    /// A `test_*` rule of a `*_test.rego` file.
    Rego,
    /// A `tests/NAME.diff` with its expectations.
    Fixture,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed {
        reasons: Vec<String>,
    },
    /// The test could not run to an answer (a runtime error in the policy).
    Error {
        message: String,
    },
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    /// `data.acme.test_payments_need_review`, or `tests/payments.diff`.
    pub name: String,
    pub kind: TestKind,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub duration_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    /// Covered lines over coverable lines of the pack's own files, in percent; 100 with none.
    pub percent: f64,
    pub files: Vec<FileCoverage>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TestRun {
    pub tests: Vec<TestResult>,
    pub coverage: Coverage,
    /// The coverage `--threshold`, when one was given.
    pub threshold: Option<f64>,
}

impl TestRun {
    fn count(&self, wanted: fn(&Outcome) -> bool) -> usize {
        self.tests.iter().filter(|t| wanted(&t.outcome)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Passed))
    }

    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Failed { .. }))
    }

    pub fn errors(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Error { .. }))
    }

    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skipped))
    }

    pub fn coverage_ok(&self) -> bool {
        self.threshold
            .is_none_or(|threshold| self.coverage.percent >= threshold)
    }

    /// Every test passed (or was skipped) and the coverage is at or over the threshold.
    pub fn ok(&self) -> bool {
        self.failed() == 0 && self.errors() == 0 && self.coverage_ok()
    }
}

/// Loads the pack in `dir` (over the built-in one, or alone) with its tests and fixtures, and runs
/// them all.
pub fn run(dir: &Path, mode: PackMode, threshold: Option<f64>) -> Result<TestRun, PackTestError> {
    let mut pack = match mode {
        PackMode::Extend => PolicyPack::default_pack()?,
        PackMode::Replace => PolicyPack::empty(),
    };
    let built_in = pack.sources.len();
    pack.add_dir(dir)?;
    let own_files: Vec<String> = pack.sources[built_in..]
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let engine = PolicyEngine::load(&pack)?;
    let test_sources = read_test_modules(dir)?;
    let fixtures = read_fixtures(dir)?;
    let mut traced = engine.traced(&test_sources)?;

    let mut tests = Vec::new();
    for source in &test_sources {
        for (rule, skipped) in declared_tests(&source.text) {
            let started = Instant::now();
            let outcome = if skipped {
                Outcome::Skipped
            } else {
                match traced.test_rule(&rule) {
                    Ok(true) => Outcome::Passed,
                    Ok(false) => Outcome::Failed {
                        reasons: vec!["the test's body is not true".to_owned()],
                    },
                    Err(e) => Outcome::Error {
                        message: e.to_string(),
                    },
                }
            };
            tests.push(TestResult {
                name: rule,
                kind: TestKind::Rego,
                outcome,
                duration_ms: millis(started),
            });
        }
    }
    for fixture in fixtures {
        let started = Instant::now();
        let outcome = run_fixture(&mut traced, &engine, &fixture)?;
        tests.push(TestResult {
            name: fixture.name,
            kind: TestKind::Fixture,
            outcome,
            duration_ms: millis(started),
        });
    }
    let files: Vec<FileCoverage> = traced
        .coverage()?
        .into_iter()
        .filter(|file| own_files.contains(&file.path))
        .collect();
    Ok(TestRun {
        tests,
        coverage: Coverage {
            percent: percent(&files),
            files,
        },
        threshold,
    })
}

fn millis(started: Instant) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0
}

fn percent(files: &[FileCoverage]) -> f64 {
    let covered: usize = files.iter().map(|f| f.covered.len()).sum();
    let coverable: usize = files
        .iter()
        .map(|f| f.covered.len() + f.not_covered.len())
        .sum();
    if coverable == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / coverable as f64
    }
}

fn read_error(path: &Path, e: &std::io::Error) -> PackTestError {
    PackTestError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The entries of `dir` whose names end with `suffix`, sorted; none when `dir` does not exist.
fn files_ending_with(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>, PackTestError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read_error(dir, &e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn read_text(path: &Path) -> Result<String, PackTestError> {
    std::fs::read_to_string(path).map_err(|e| read_error(path, &e))
}

fn read_test_modules(dir: &Path) -> Result<Vec<PolicySource>, PackTestError> {
    files_ending_with(dir, "_test.rego")?
        .into_iter()
        .map(|path| {
            Ok(PolicySource {
                text: read_text(&path)?,
                name: path.display().to_string(),
            })
        })
        .collect()
}

/// The test rules a module declares, as `data.<package>.<rule>`, in order, each once; `true`
/// for `todo_*` rules (skipped). Rules are read from the rule heads at the start of a line,
/// the way `opa fmt` writes them.
fn declared_tests(text: &str) -> Vec<(String, bool)> {
    let mut package = None;
    let mut found: Vec<(String, bool)> = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("package ") {
            package = rest.split_whitespace().next().map(str::to_owned);
            continue;
        }
        let Some(package) = &package else { continue };
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let skipped = name.starts_with("todo_");
        if !(name.starts_with("test_") || skipped) {
            continue;
        }
        let rule = format!("data.{package}.{name}");
        if !found.iter().any(|(seen, _)| *seen == rule) {
            found.push((rule, skipped));
        }
    }
    found
}

struct Fixture {
    name: String,
    diff_path: PathBuf,
    expectations: Expectations,
}

fn read_fixtures(dir: &Path) -> Result<Vec<Fixture>, PackTestError> {
    let folder = dir.join(FIXTURES_DIR);
    let mut fixtures = Vec::new();
    for diff_path in files_ending_with(&folder, ".diff")? {
        let stem = diff_path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let expect_path = folder.join(format!("{stem}.expect.yaml"));
        let shown = expect_path.display().to_string();
        let text = match std::fs::read_to_string(&expect_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PackTestError::Fixture {
                    path: diff_path.display().to_string(),
                    message: format!("no expectations beside it (write {shown})"),
                });
            }
            Err(e) => return Err(read_error(&expect_path, &e)),
        };
        let expectations = serde_yaml_ng::from_str(&text).map_err(|e| PackTestError::Fixture {
            path: shown,
            message: e.to_string(),
        })?;
        fixtures.push(Fixture {
            name: format!("{FIXTURES_DIR}/{stem}.diff"),
            diff_path,
            expectations,
        });
    }
    Ok(fixtures)
}

fn run_fixture(
    traced: &mut crate::policy::TracedRun<'_>,
    engine: &PolicyEngine,
    fixture: &Fixture,
) -> Result<Outcome, PackTestError> {
    let shown = fixture.diff_path.display().to_string();
    let invalid = |message: String| PackTestError::Fixture {
        path: shown.clone(),
        message,
    };
    let bytes =
        std::fs::read(&fixture.diff_path).map_err(|e| read_error(&fixture.diff_path, &e))?;
    let diff = parse_unified(&bytes).map_err(|e| invalid(e.to_string()))?;
    let expect = &fixture.expectations;
    let config = match &expect.config {
        None => RepoConfig::defaults(engine.catalog()),
        Some(yaml) => {
            let text = serde_yaml_ng::to_string(yaml).map_err(|e| invalid(e.to_string()))?;
            RepoConfigFile::parse(&text)
                .and_then(|file| RepoConfig::resolve(&file, engine.catalog()))
                .map_err(|e| invalid(format!("config: {e}")))?
        }
    };
    let mut context = ChangeContext::default();
    context.pull_request.title = expect.title.clone().unwrap_or_default();
    context.pull_request.body = expect.body.clone().unwrap_or_default();
    let findings = match traced.evaluate(&diff, &context, &config) {
        Ok(findings) => findings,
        Err(e) => {
            return Ok(Outcome::Error {
                message: e.to_string(),
            });
        }
    };
    let found = &findings.violations;
    let mut reasons: Vec<String> = Vec::new();
    for wanted in &expect.must_find {
        if !found.iter().any(|v| wanted.matches(v)) {
            reasons.push(format!("expected {wanted}, not found"));
        }
    }
    for unwanted in &expect.must_not_find {
        for violation in found.iter().filter(|v| unwanted.matches(v)) {
            reasons.push(format!(
                "found {}, which must not be: {}",
                located(violation),
                violation.message
            ));
        }
    }
    if let Some(wanted) = expect.verdict {
        let verdict = judge(found, &Overrides::default(), config.threshold);
        let actual = if verdict.passed() {
            ExpectedVerdict::Pass
        } else {
            ExpectedVerdict::Fail
        };
        if actual != wanted {
            reasons.push(format!(
                "expected the verdict {}, got {} (score {})",
                verdict_name(wanted),
                verdict_name(actual),
                verdict.score().value()
            ));
        }
    }
    if reasons.is_empty() {
        Ok(Outcome::Passed)
    } else {
        if !found.is_empty() {
            let all: Vec<String> = found.iter().map(located).collect();
            reasons.push(format!("found: {}", all.join(", ")));
        }
        Ok(Outcome::Failed { reasons })
    }
}

fn verdict_name(verdict: ExpectedVerdict) -> &'static str {
    match verdict {
        ExpectedVerdict::Pass => "pass",
        ExpectedVerdict::Fail => "fail",
    }
}

fn located(violation: &Violation) -> String {
    match (&violation.path, violation.line) {
        (Some(path), Some(line)) => format!("{} in {path} at line {line}", violation.rule_id),
        (Some(path), None) => format!("{} in {path}", violation.rule_id),
        _ => violation.rule_id.to_string(),
    }
}

/// Readable: a line per test, the failures' reasons, the coverage per file and a summary.
pub fn render_text(run: &TestRun) -> String {
    let mut out = String::new();
    for test in &run.tests {
        let (mark, detail) = match &test.outcome {
            Outcome::Passed => ("PASS", Vec::new()),
            Outcome::Skipped => ("SKIP", Vec::new()),
            Outcome::Failed { reasons } => ("FAIL", reasons.clone()),
            Outcome::Error { message } => ("ERROR", vec![message.clone()]),
        };
        out.push_str(&format!(
            "{mark:<5} {} ({:.1} ms)\n",
            test.name, test.duration_ms
        ));
        for line in detail {
            out.push_str(&format!("      {line}\n"));
        }
    }
    out.push_str("\nCoverage of the pack's own files:\n");
    for file in &run.coverage.files {
        let total = file.covered.len() + file.not_covered.len();
        out.push_str(&format!(
            "  {}: {}/{} lines",
            file.path,
            file.covered.len(),
            total
        ));
        if !file.not_covered.is_empty() {
            let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
            out.push_str(&format!(" (not run: {})", lines.join(", ")));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "\n{} passed, {} failed, {} errors, {} skipped; coverage {:.1}%",
        run.passed(),
        run.failed(),
        run.errors(),
        run.skipped(),
        run.coverage.percent
    ));
    if let Some(threshold) = run.threshold {
        let verdict = if run.coverage_ok() { "met" } else { "NOT met" };
        out.push_str(&format!(" (threshold {threshold:.1}%: {verdict})"));
    }
    out.push('\n');
    out
}

/// JUnit XML, as CI systems read it: one test case per test; a coverage under the threshold is
/// a failed case of its own.
pub fn render_junit(run: &TestRun) -> String {
    let mut cases = String::new();
    let mut failures = run.failed();
    for test in &run.tests {
        let (class, name) = match test.kind {
            TestKind::Rego => test
                .name
                .rsplit_once('.')
                .map_or(("rego", test.name.as_str()), |(package, rule)| {
                    (package, rule)
                }),
            TestKind::Fixture => ("fixtures", test.name.as_str()),
        };
        cases.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.4}\"",
            xml_escape(class),
            xml_escape(name),
            test.duration_ms / 1000.0
        ));
        match &test.outcome {
            Outcome::Passed => cases.push_str("/>\n"),
            Outcome::Skipped => cases.push_str(">\n      <skipped/>\n    </testcase>\n"),
            Outcome::Failed { reasons } => cases.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml_escape(reasons.first().map_or("", String::as_str)),
                xml_escape(&reasons.join("\n"))
            )),
            Outcome::Error { message } => cases.push_str(&format!(
                ">\n      <error message=\"{}\"/>\n    </testcase>\n",
                xml_escape(message)
            )),
        }
    }
    if !run.coverage_ok() {
        failures += 1;
        cases.push_str(&format!(
            "    <testcase classname=\"coverage\" name=\"threshold\" time=\"0\">\n      <failure message=\"coverage {:.1}% is under the threshold {:.1}%\"/>\n    </testcase>\n",
            run.coverage.percent,
            run.threshold.unwrap_or_default()
        ));
    }
    let total = run.tests.len() + usize::from(!run.coverage_ok());
    let time: f64 = run.tests.iter().map(|t| t.duration_ms).sum::<f64>() / 1000.0;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"tollgate policy tests\" tests=\"{total}\" failures=\"{failures}\" errors=\"{}\" skipped=\"{}\" time=\"{time:.4}\">\n{cases}  </testsuite>\n</testsuites>\n",
        run.errors(),
        run.skipped(),
    )
}

fn xml_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            // XML 1.0 has no way to write other control characters.
            c if c.is_control() && !matches!(c, '\n' | '\t' | '\r') => escaped.push('\u{FFFD}'),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rules_are_read_from_rule_heads_once_each() {
        let text = "package acme.payments_test\n\nimport data.acme\n\ntest_flags_payments if {\n\ttrue\n}\n\ntest_flags_payments if { false }\n\ntodo_later if { true }\n\n# test_in_a_comment\nhelper := 1\n\ttest_indented := 2\n";
        assert_eq!(
            declared_tests(text),
            [
                (
                    "data.acme.payments_test.test_flags_payments".to_owned(),
                    false
                ),
                ("data.acme.payments_test.todo_later".to_owned(), true),
            ]
        );
    }

    #[test]
    fn expectations_match_by_rule_then_optional_path_and_line() {
        let violation = Violation {
            rule_id: "ACME-001".parse().unwrap(),
            tier: crate::domain::Tier::Warning,
            path: Some("app/pay.py".into()),
            line: Some(3),
            message: "m".into(),
            fingerprint: crate::domain::Fingerprint::of(
                &"ACME-001".parse().unwrap(),
                Some("app/pay.py"),
                "x",
            ),
        };
        let expected: Vec<Expected> = serde_yaml_ng::from_str(
            "[{rule: ACME-001}, {rule: ACME-001, path: app/pay.py, line: 3}, {rule: ACME-001, line: 4}, {rule: R01}]",
        )
        .unwrap();
        let matched: Vec<bool> = expected.iter().map(|e| e.matches(&violation)).collect();
        assert_eq!(matched, [true, true, false, false]);
        assert_eq!(expected[1].to_string(), "ACME-001 in app/pay.py at line 3");
    }

    #[test]
    fn unknown_keys_in_expectations_are_refused() {
        let error = serde_yaml_ng::from_str::<Expectations>("must_finds: []\n").unwrap_err();
        assert!(error.to_string().contains("must_finds"), "{error}");
    }

    #[test]
    fn coverage_is_covered_over_coverable_lines() {
        let file = |covered: Vec<u32>, not_covered: Vec<u32>| FileCoverage {
            path: "p.rego".into(),
            covered,
            not_covered,
        };
        assert!((percent(&[file(vec![1, 2, 3], vec![4])]) - 75.0).abs() < 1e-9);
        assert!((percent(&[]) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn junit_escapes_what_xml_cannot_hold() {
        assert_eq!(
            xml_escape("a<b & \"c\"\u{1}"),
            "a&lt;b &amp; &quot;c&quot;\u{FFFD}"
        );
    }
}
