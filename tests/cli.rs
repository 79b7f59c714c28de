//! `tollgate check` and `tollgate test` as a user runs them: exit codes, output formats, config,
//! custom policies and the git mode.

#[path = "support/shared.rs"]
mod shared;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const LEAKY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/leaky-change.diff");

fn tollgate(args: &[&str], dir: Option<&Path>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command.args(args).env("NO_COLOR", "1");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command.output().expect("tollgate runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_leaky_change_fails_with_exit_code_one_and_readable_text() {
    let output = tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--title",
            "feat: charge customers",
            "--body",
            "Adds charging.",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("R01") && text.contains("app/payments.py:5"),
        "{text}"
    );
    assert!(text.contains("fail"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no colour when NO_COLOR is set or stdout is not a terminal"
    );
}

#[test]
fn json_output_has_exactly_the_documented_fields() {
    let output = tollgate(&["check", "--diff", LEAKY, "--format", "json"], None);
    assert_eq!(output.status.code(), Some(1));
    let json: Value = serde_json::from_str(&stdout(&output)).expect("valid JSON");
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["counts", "score", "threshold", "verdict", "violations"]
    );
    assert_eq!(json["verdict"], "fail");
    assert_eq!(json["threshold"], 70);
    let counts: Vec<&str> = json["counts"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(counts, ["block", "override", "warning"]);
    let first = json["violations"][0].as_object().unwrap();
    let fields: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(fields, ["line", "message", "path", "rule_id", "tier"]);
}

#[test]
fn markdown_output_is_the_pull_request_comment() {
    let output = tollgate(&["check", "--diff", LEAKY, "--format", "markdown"], None);
    assert!(stdout(&output).starts_with("<!-- tollgate:sticky-comment -->"));
}

/// `tollgate check --format sarif` on the leaky change, with rule runbooks at `runbook_url`.
fn leaky_sarif(runbook_url: &str) -> Output {
    tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--format",
            "sarif",
            "--runbook-url",
            runbook_url,
        ],
        None,
    )
}

/// The SARIF log is valid against the OASIS SARIF 2.1.0 schema (from the shared fixtures, when
/// present) and carries what code scanning shows: every rule with its texts, a result per
/// violation of the JSON output, each with Tollgate's fingerprint.
#[test]
fn sarif_output_is_a_valid_sarif_log_with_every_rule_and_violation() {
    let output = leaky_sarif("https://runbooks.example.com/tollgate/rules");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let log: Value = serde_json::from_str(&stdout(&output)).expect("SARIF is JSON");
    let schema_path = shared::shared_path("fixtures/sarif/sarif-schema-2.1.0.json");
    if schema_path.exists() {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(&schema_path).unwrap()).unwrap();
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(true)
            .build(&schema)
            .expect("the SARIF schema compiles");
        let errors: Vec<String> = validator
            .iter_errors(&log)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "not valid SARIF 2.1.0: {errors:#?}");
    } else {
        eprintln!(
            "SARIF schema conformance SKIPPED: {} not found (set {})",
            schema_path.display(),
            shared::SHARED_DIR_VARIABLE
        );
    }
    assert_eq!(log["version"], "2.1.0");
    let run = &log["runs"][0];
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 25, "every rule of the built-in pack");
    for rule in rules {
        for field in ["name", "shortDescription", "fullDescription", "help"] {
            assert!(rule.get(field).is_some(), "{field} missing in {rule}");
        }
        let id = rule["id"].as_str().unwrap();
        assert_eq!(
            rule["helpUri"],
            format!("https://runbooks.example.com/tollgate/rules/{id}.md")
        );
        assert!(rule["properties"]["security-severity"].is_string());
    }
    let json: Value = serde_json::from_str(&stdout(&tollgate(
        &["check", "--diff", LEAKY, "--format", "json"],
        None,
    )))
    .unwrap();
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), json["violations"].as_array().unwrap().len());
    for (result, violation) in results.iter().zip(json["violations"].as_array().unwrap()) {
        assert_eq!(result["ruleId"], violation["rule_id"]);
        assert_eq!(result["message"]["text"], violation["message"]);
        assert!(
            result["partialFingerprints"]["tollgateFingerprint/v1"].is_string(),
            "{result}"
        );
        if let Some(line) = violation["line"].as_u64() {
            let location = &result["locations"][0]["physicalLocation"];
            assert_eq!(location["artifactLocation"]["uri"], violation["path"]);
            assert_eq!(location["region"]["startLine"], line);
        }
    }
    assert_eq!(run["properties"]["verdict"], "fail");
    assert!(run["properties"]["policyRevision"].is_string());
}

#[test]
fn sarif_fingerprints_stay_the_same_when_the_line_moves() {
    let dir = temp_dir("sarif-shift");
    let near = "diff --git a/src/app.js b/src/app.js\nnew file mode 100644\n--- /dev/null\n+++ b/src/app.js\n@@ -0,0 +1,2 @@\n+const total = 1;\n+console.log(\"charged\", total);\n";
    let far = "diff --git a/src/app.js b/src/app.js\nnew file mode 100644\n--- /dev/null\n+++ b/src/app.js\n@@ -0,0 +1,5 @@\n+const total = 1;\n+\n+\n+\n+console.log(\"charged\", total);\n";
    let result = |name: &str, diff: &str| {
        let path = dir.join(name);
        std::fs::write(&path, diff).unwrap();
        let output = tollgate(
            &[
                "check",
                "--diff",
                path.to_str().unwrap(),
                "--format",
                "sarif",
            ],
            None,
        );
        let log: Value = serde_json::from_str(&stdout(&output)).expect("SARIF is JSON");
        log["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["ruleId"] == "R17")
            .cloned()
            .unwrap_or_else(|| panic!("no R17 result in {log}"))
    };
    let (before, after) = (result("near.diff", near), result("far.diff", far));
    let line = |r: &Value| r["locations"][0]["physicalLocation"]["region"]["startLine"].clone();
    assert_eq!((line(&before), line(&after)), (2.into(), 5.into()));
    assert_eq!(before["partialFingerprints"], after["partialFingerprints"]);
}

#[test]
fn a_runbook_url_that_is_not_a_web_address_is_a_usage_error() {
    let output = leaky_sarif("file:///runbooks");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("http or https"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_clean_change_from_stdin_passes_with_exit_code_zero() {
    let diff = "diff --git a/src/lib.rs b/src/lib.rs\n--- a/src/lib.rs\n+++ b/src/lib.rs\n@@ -1 +1,2 @@\n fn a() {}\n+fn b() {}\n";
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--diff", "-", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(diff.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["score"], 100);
}

#[test]
fn usage_config_diff_and_policy_errors_exit_two_with_a_message() {
    let dir = temp_dir("errors");
    let bad_config = dir.join("tollgate.yml");
    std::fs::write(&bad_config, "rules:\n  R17: { enabeld: false }\n").unwrap();
    let bad_diff = dir.join("bad.diff");
    std::fs::write(
        &bad_diff,
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n-a\n",
    )
    .unwrap();
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(
        policies.join("broken.rego"),
        "package tollgate.rules.broken\n\nviolation contains x if {\n",
    )
    .unwrap();

    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["check"], "--diff"),
        (
            vec!["check", "--diff", "/nonexistent.diff"],
            "/nonexistent.diff",
        ),
        (
            vec![
                "check",
                "--diff",
                LEAKY,
                "--config",
                bad_config.to_str().unwrap(),
            ],
            "enabeld",
        ),
        (vec!["check", "--diff", bad_diff.to_str().unwrap()], "line"),
        (
            vec![
                "check",
                "--diff",
                LEAKY,
                "--policies",
                policies.to_str().unwrap(),
            ],
            "broken.rego",
        ),
    ];
    for (args, expected) in cases {
        let output = tollgate(&args, None);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_config_file_disables_rules_and_moves_the_threshold() {
    let dir = temp_dir("config");
    let config = dir.join("tollgate.yml");
    std::fs::write(
        &config,
        "threshold: 50\nrules:\n  R01: { enabled: false }\n  R05: { tier: WARNING }\n",
    )
    .unwrap();
    let output = tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--format",
            "json",
            "--config",
            config.to_str().unwrap(),
        ],
        None,
    );
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["threshold"], 50);
    let rules: Vec<&str> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule_id"].as_str().unwrap())
        .collect();
    assert!(!rules.contains(&"R01"), "{rules:?}");
    let r05 = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule_id"] == "R05")
        .unwrap();
    assert_eq!(r05["tier"], "WARNING");
    assert_eq!(
        output.status.code(),
        Some(0),
        "no BLOCK left and the score is above 50"
    );
}

#[test]
fn custom_policies_extend_or_replace_the_pack() {
    let dir = temp_dir("custom");
    std::fs::write(
        dir.join("acme.rego"),
        "package tollgate.rules.acme\n\nviolation contains {\"rule\": \"ACME1\", \"path\": f.path, \"message\": \"payments code needs the payments team\"} if {\n\tsome f in input.files\n\tstartswith(f.path, \"app/payments\")\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        "- id: ACME1\n  name: Payments ownership\n  tier: WARNING\n  category: ownership\n  description: d\n  remediation: r\n  override_when: o\n",
    )
    .unwrap();
    let extended = tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--format",
            "json",
            "--policies",
            dir.to_str().unwrap(),
        ],
        None,
    );
    let json: Value = serde_json::from_str(&stdout(&extended)).unwrap();
    let rules: Vec<&str> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule_id"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"ACME1") && rules.contains(&"R01"),
        "{rules:?}"
    );

    let replaced = tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--format",
            "json",
            "--policies",
            dir.to_str().unwrap(),
            "--replace-pack",
        ],
        None,
    );
    let json: Value = serde_json::from_str(&stdout(&replaced)).unwrap();
    let rules: Vec<&str> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule_id"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["ACME1"]);
    assert_eq!(replaced.status.code(), Some(0));
}

#[test]
fn base_mode_evaluates_the_branch_against_its_merge_base() {
    let dir = temp_dir("git");
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["config", "user.email", "dev@example.com"]);
    git(&["config", "user.name", "Dev"]);
    std::fs::write(dir.join("app.py"), "print('hello')\n").unwrap();
    git(&["add", "."]);
    git(&["commit", "-qm", "init"]);
    git(&["checkout", "-qb", "feature"]);
    std::fs::write(
        dir.join("app.py"),
        "print('hello')\nrequests.get(url, verify=False)\n",
    )
    .unwrap();
    git(&["commit", "-qam", "call"]);

    let output = tollgate(&["check", "--base", "main", "--format", "json"], Some(&dir));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(json["violations"][0]["rule_id"], "R05");
    assert_eq!(json["violations"][0]["line"], 2);

    let missing = tollgate(&["check", "--base", "no-such-branch"], Some(&dir));
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("no-such-branch"));
}

const EXAMPLE_POLICY_REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/policy-repo");

#[test]
fn the_example_policy_repository_passes_its_own_tests() {
    let output = tollgate(&["test", EXAMPLE_POLICY_REPO, "--threshold", "80"], None);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    for passed in [
        "PASS  data.tollgate.rules.acme_test.test_flags_the_raw_hostname_in_code",
        "PASS  data.tollgate.rules.acme_test.test_leaves_comments_alone",
        "PASS  tests/registry.diff",
        "PASS  tests/tuned.diff",
    ] {
        assert!(text.contains(passed), "{passed} in:\n{text}");
    }
    assert!(
        text.contains("registry.rego: "),
        "coverage per file:\n{text}"
    );
    assert!(
        !text.contains("lib.rego"),
        "only the pack's own files are measured:\n{text}"
    );
    assert!(text.contains("threshold 80.0%: met"), "{text}");
}

/// A pack whose unit test and fixture both fail, with one test skipped.
fn failing_pack(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("rules.yaml"),
        "- id: ACME-002\n  name: Payments ownership\n  tier: WARNING\n  category: ownership\n  description: d\n  remediation: r\n  override_when: o\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("payments.rego"),
        "package tollgate.rules.payments\n\nviolation contains {\"rule\": \"ACME-002\", \"path\": f.path, \"message\": \"payments code needs the payments team\"} if {\n\tsome f in input.files\n\tstartswith(f.path, \"app/payments/\")\n}\n\nunused_helper(x) := y if {\n\ty := x * 2\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("payments_test.rego"),
        "package tollgate.rules.payments_test\n\nimport data.tollgate.rules.payments\n\ntest_flags_payments if {\n\tcount(payments.violation) == 1 with input as {\"files\": [{\"path\": \"app/payments/charge.py\"}]}\n}\n\ntest_wrongly_expects_nothing if {\n\tcount(payments.violation) == 0 with input as {\"files\": [{\"path\": \"app/payments/x.py\"}]}\n}\n\ntodo_refunds if {\n\tfalse\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/other.diff"),
        "diff --git a/app/other.py b/app/other.py\nnew file mode 100644\n--- /dev/null\n+++ b/app/other.py\n@@ -0,0 +1 @@\n+print(1)\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tests/other.expect.yaml"),
        "must_find:\n  - { rule: ACME-002, path: app/other.py }\n",
    )
    .unwrap();
    dir
}

#[test]
fn failing_policy_tests_exit_one_and_say_what_failed_in_every_format() {
    let dir = failing_pack("failing-pack");
    let pack = dir.to_str().unwrap();

    let text = tollgate(&["test", pack, "--replace-pack"], None);
    assert_eq!(text.status.code(), Some(1), "{}", stderr(&text));
    let out = stdout(&text);
    assert!(
        out.contains("PASS  data.tollgate.rules.payments_test.test_flags_payments"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  data.tollgate.rules.payments_test.test_wrongly_expects_nothing"),
        "{out}"
    );
    assert!(
        out.contains("SKIP  data.tollgate.rules.payments_test.todo_refunds"),
        "{out}"
    );
    assert!(
        out.contains("FAIL  tests/other.diff")
            && out.contains("expected ACME-002 in app/other.py, not found"),
        "{out}"
    );
    assert!(
        out.contains("1 passed, 2 failed, 0 errors, 1 skipped"),
        "{out}"
    );

    let json = tollgate(&["test", pack, "--replace-pack", "--format", "json"], None);
    assert_eq!(json.status.code(), Some(1));
    let json: Value = serde_json::from_str(&stdout(&json)).unwrap();
    let outcomes: Vec<(&str, &str)> = json["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (
                "data.tollgate.rules.payments_test.test_flags_payments",
                "passed"
            ),
            (
                "data.tollgate.rules.payments_test.test_wrongly_expects_nothing",
                "failed"
            ),
            ("data.tollgate.rules.payments_test.todo_refunds", "skipped"),
            ("tests/other.diff", "failed"),
        ]
    );
    let coverage = json["coverage"]["percent"].as_f64().unwrap();
    assert!(
        coverage > 0.0 && coverage < 100.0,
        "the helper never ran: {coverage}"
    );

    let junit = tollgate(&["test", pack, "--replace-pack", "--format", "junit"], None);
    assert_eq!(junit.status.code(), Some(1));
    let xml = stdout(&junit);
    assert!(
        xml.contains("tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<testcase classname=\"data.tollgate.rules.payments_test\" name=\"test_wrongly_expects_nothing\""),
        "{xml}"
    );
}

#[test]
fn a_coverage_under_the_threshold_fails_the_run() {
    let dir = failing_pack("coverage-pack");
    std::fs::remove_file(dir.join("tests/other.diff")).unwrap();
    std::fs::remove_file(dir.join("tests/other.expect.yaml")).unwrap();
    std::fs::write(
        dir.join("payments_test.rego"),
        "package tollgate.rules.payments_test\n\nimport data.tollgate.rules.payments\n\ntest_flags_payments if {\n\tcount(payments.violation) == 1 with input as {\"files\": [{\"path\": \"app/payments/charge.py\"}]}\n}\n",
    )
    .unwrap();
    let pack = dir.to_str().unwrap();
    let met = tollgate(&["test", pack, "--replace-pack", "--threshold", "10"], None);
    assert_eq!(met.status.code(), Some(0), "{}", stdout(&met));
    let missed = tollgate(
        &["test", pack, "--replace-pack", "--threshold", "99.5"],
        None,
    );
    assert_eq!(missed.status.code(), Some(1), "{}", stdout(&missed));
    assert!(stdout(&missed).contains("NOT met"), "{}", stdout(&missed));
}

#[test]
fn a_pack_that_cannot_be_tested_exits_two_naming_the_file() {
    let dir = failing_pack("broken-pack");
    std::fs::write(
        dir.join("payments.rego"),
        "package tollgate.rules.payments\n\nviolation contains x if {\n",
    )
    .unwrap();
    let broken = tollgate(&["test", dir.to_str().unwrap(), "--replace-pack"], None);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        stderr(&broken).contains("payments.rego"),
        "{}",
        stderr(&broken)
    );

    let dir = failing_pack("unexpected-pack");
    std::fs::remove_file(dir.join("tests/other.expect.yaml")).unwrap();
    let missing = tollgate(&["test", dir.to_str().unwrap(), "--replace-pack"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("other.diff: no expectations beside it"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_runaway_policy_is_stopped_at_the_time_limit_with_exit_code_two() {
    let dir = temp_dir("runaway");
    std::fs::write(
        dir.join("rules.yaml"),
        "- id: ACME-003\n  name: Runaway\n  tier: WARNING\n  category: test\n  description: d\n  remediation: r\n  override_when: o\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("runaway.rego"),
        "package tollgate.rules.runaway\n\nviolation contains {\"rule\": \"ACME-003\", \"message\": \"never\"} if {\n\tsome f in input.files\n\tr := numbers.range(1, 20000)\n\tsome i in r\n\tsome j in r\n\ti * j == -1\n\tf.path == \"\"\n}\n",
    )
    .unwrap();
    let output = tollgate(
        &[
            "check",
            "--diff",
            LEAKY,
            "--policies",
            dir.to_str().unwrap(),
            "--time-limit",
            "0.2",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let error = stderr(&output);
    assert!(
        error.contains("data.tollgate.rules.runaway") && error.contains("time limit of 0.2 s"),
        "{error}"
    );
}
