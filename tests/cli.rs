//! `tollgate check` as a user runs it: exit codes, output formats, config, custom policies and
//! the git mode.

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
