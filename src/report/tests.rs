use super::*;
use crate::domain::{ApprovedOverride, Fingerprint};
use crate::overrides::RequestProgress;
use insta::assert_snapshot;

const RULES: &str = r#"
- id: R01
  name: Provider secret or token
  tier: BLOCK
  category: security
  description: Added lines contain a credential issued by a cloud or SaaS provider.
  remediation: Remove the secret, rotate it at the provider, and load it from the environment or a secret manager.
  override_when: The value is a documented test fixture that grants no access.
- id: R04
  name: Merge-conflict markers
  tier: BLOCK
  category: correctness
  description: Added lines contain merge-conflict markers left over from a merge or rebase.
  remediation: Resolve the conflict and remove the `<<<<<<<`, `=======` and `>>>>>>>` lines.
  override_when: Never for source code; only for files that document conflict markers on purpose.
- id: R07
  name: Debug output left in code
  tier: OVERRIDE
  category: hygiene
  description: Added lines print debugging output.
  remediation: Remove the statement or use the project's logger.
  override_when: Command-line tools whose output is the point.
- id: R12
  name: TODO without an issue
  tier: WARNING
  category: hygiene
  description: A TODO comment that does not reference an issue.
  remediation: Link the TODO to an issue, e.g. `TODO(#123)`.
  override_when: Never needed; warnings do not block.
- id: R19
  name: Pull request too large
  tier: WARNING
  category: hygiene
  description: The pull request changes more lines or files than reviewers can review well.
  remediation: Split the change into smaller pull requests that can be reviewed on their own.
  override_when: Mechanical changes (renames, formatting, generated code) reviewed as a whole.
"#;

pub(super) const DIGEST: &str = "3f9a1c0b7e25d4a8";

pub(super) fn catalog() -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add_yaml("rules.yaml", RULES, false).unwrap();
    catalog
}

pub(super) fn violation(
    rule: &str,
    path: Option<&str>,
    line: Option<u32>,
    message: &str,
) -> Violation {
    let rule_id: RuleId = rule.parse().unwrap();
    let tier = catalog().get(&rule_id).map_or(Tier::Warning, |r| r.tier);
    Violation {
        fingerprint: Fingerprint::of(&rule_id, path, &format!("{message}{line:?}")),
        rule_id,
        tier,
        path: path.map(str::to_owned),
        line,
        message: message.to_owned(),
    }
}

pub(super) fn at(rule: &str, path: &str, line: u32, message: &str) -> Violation {
    violation(rule, Some(path), Some(line), message)
}

fn findings(mut violations: Vec<Violation>) -> Findings {
    violations.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Findings {
        violations,
        not_evaluated: Vec::new(),
    }
}

fn approve(violations: &[&Violation], by: &str, reason: &str) -> ApprovedOverride {
    ApprovedOverride {
        fingerprints: violations.iter().map(|v| v.fingerprint.clone()).collect(),
        requested_by: "alice".to_owned(),
        approved_by: vec![by.to_owned()],
        reason: reason.to_owned(),
    }
}

/// Renders the comment and checks that the check-run summary is the same without the marker.
fn comment(evaluation: Evaluation) -> String {
    let input = ReportInput::Evaluated(evaluation);
    let comment = render_markdown(&input, Surface::Comment);
    let summary = render_markdown(&input, Surface::CheckRun);
    let without_marker = comment
        .strip_prefix(STICKY_COMMENT_MARKER)
        .and_then(|rest| rest.strip_prefix('\n'))
        .expect("the comment starts with the sticky marker");
    assert_eq!(summary, without_marker);
    comment
}

fn mixed() -> Vec<Violation> {
    vec![
        at("R01", "src/config.py", 12, "AWS access key id"),
        at("R01", "deploy/ci.env", 3, "GitHub personal access token"),
        at("R04", "src/app.py", 40, "Conflict marker <<<<<<< HEAD"),
        at("R07", "src/app.py", 88, "print() call"),
        at("R07", "src/cli.py", 5, "print() call"),
        at(
            "R12",
            "src/app.py",
            17,
            "TODO without issue: handle retries",
        ),
        violation("R19", None, None, "1,240 changed lines (limit 1,000)"),
    ]
}

#[test]
fn clean_pass() {
    let (catalog, findings, overrides) = (catalog(), findings(vec![]), Overrides::default());
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation.clone());
    assert_eq!(check_run_title(&input), "Score 100/100 · no violations");
    assert_snapshot!("clean_pass", comment(evaluation));
}

#[test]
fn failure_with_every_tier() {
    let (catalog, findings) = (catalog(), findings(mixed()));
    let overridden = &findings.violations[3];
    assert_eq!(overridden.path.as_deref(), Some("src/app.py"));
    let overrides = Overrides::new(vec![approve(
        &[overridden],
        "octocat",
        "Debug output is the point of this script",
    )]);
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation.clone());
    assert_eq!(
        check_run_title(&input),
        "Score 65/100 · 3 BLOCK · 1 OVERRIDE · 2 WARNING · 1 overridden"
    );
    assert_snapshot!("failure_with_every_tier", comment(evaluation));
}

#[test]
fn overridden_block_passes() {
    let catalog = catalog();
    let findings = findings(vec![
        at("R01", "tests/fixtures/aws.txt", 1, "AWS access key id"),
        at("R12", "src/lib.rs", 9, "TODO without issue"),
    ]);
    let overrides = Overrides::new(vec![approve(
        &[&findings.violations[0]],
        "security-lead",
        "Documented fake key for the parser tests",
    )]);
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation.clone());
    assert!(evaluation.verdict().passed());
    assert_eq!(
        check_run_title(&input),
        "Score 99/100 · 1 WARNING · overridden by @security-lead: \
         Documented fake key for the parser tests"
    );
    assert_snapshot!("overridden_block_passes", comment(evaluation));
}

#[test]
fn not_evaluated_files_are_a_visible_warning() {
    let catalog = catalog();
    let overrides = Overrides::default();
    let mut findings = findings(vec![at("R07", "src/app.py", 3, "console.log call")]);
    findings.not_evaluated = vec!["assets/logo.png".into(), "data/fixtures.json".into()];
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    assert_snapshot!("not_evaluated", comment(evaluation));

    findings.not_evaluated = (1..=12).map(|i| format!("vendor/blob{i}.bin")).collect();
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    assert_snapshot!("not_evaluated_many", comment(evaluation));
}

#[test]
fn history_and_fixed_violations() {
    let catalog = catalog();
    let overrides = Overrides::default();
    let findings = findings(vec![at("R07", "src/app.py", 88, "print() call")]);
    let mut evaluation =
        Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    evaluation.history = [
        (100, "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567"),
        (82, "abc1234def5678abc1234def5678abc1234def56"),
        (64, "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432"),
    ]
    .map(|(score, sha)| HistoryEntry {
        score,
        sha: sha.into(),
    })
    .into();
    evaluation.fixed = vec![
        at("R01", "src/config.py", 12, "AWS access key id"),
        at("R04", "src/app.py", 40, "Conflict marker >>>>>>> main"),
        at("R99", "src/legacy.py", 7, "A rule the pack no longer has"),
    ];
    assert_snapshot!("history_and_fixed", comment(evaluation.clone()));

    evaluation.history = (0..8)
        .map(|i| HistoryEntry {
            score: 90 - i,
            sha: format!("{i}{i}{i}{i}{i}{i}{i}{i}{i}"),
        })
        .collect();
    evaluation.fixed = Vec::new();
    let long_history = comment(evaluation);
    assert!(
        long_history.contains(
            "**Score history:** … → 87 at `3333333` → 86 at `4444444` → 85 at `5555555` \
             → 84 at `6666666` → 83 at `7777777` → **97** now"
        ),
        "{long_history}"
    );
}

#[test]
fn evaluation_error() {
    let input = ReportInput::Failed {
        error: "invalid .github/tollgate.yml: line 3, column 5: unknown field `treshold`, \
                expected one of `threshold`, `rules`, `ignore`\n```\ninjected fence"
            .into(),
    };
    assert_eq!(
        check_run_title(&input),
        "Tollgate could not evaluate this pull request"
    );
    assert_snapshot!("error", render_markdown(&input, Surface::Comment));
    assert_snapshot!("error_text", render_text(&input, false));
}

#[test]
fn long_lists_collapse() {
    let catalog = catalog();
    let overrides = Overrides::default();
    let mut violations: Vec<Violation> = (1..=12)
        .map(|i| at("R07", "src/report.py", i * 10, "print() call"))
        .collect();
    violations.push(at("R04", "README.md", 7, "Conflict marker ======="));
    violations.extend((1..=4).map(|i| at("R12", "src/jobs.py", i, "TODO without issue")));
    let findings = findings(violations);
    let threshold = Threshold::try_from(40).unwrap();
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, threshold, DIGEST);
    assert_snapshot!("long_lists_collapse", comment(evaluation));
}

#[test]
fn output_is_capped_without_cutting_markdown() {
    let catalog = catalog();
    let overrides = Overrides::default();
    let long = "x".repeat(180);
    let total = 5_000;
    let violations: Vec<Violation> = (0..total)
        .map(|i| {
            let rule = ["R01", "R07", "R12"][i % 3];
            let path = format!("src/module_{:04}/some/deeply/nested/file.py", i);
            at(
                rule,
                &path,
                i as u32 + 1,
                &format!("finding {i}: {long} <é> ✓"),
            )
        })
        .collect();
    let findings = findings(violations);
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let markdown = comment(evaluation);

    assert!(
        markdown.len() <= MAX_MARKDOWN_BYTES,
        "{} bytes",
        markdown.len()
    );
    assert!(markdown.chars().count() <= 65_536);
    assert!(
        markdown.len() > MAX_MARKDOWN_BYTES - 1_000,
        "the limit should be used, not wasted: {} bytes",
        markdown.len()
    );
    let shown = markdown
        .lines()
        .filter(|l| l.starts_with("- `src/"))
        .count();
    assert!(shown > 0 && shown < total);
    let more = format!("**…and {} more violations not shown.**", total - shown);
    assert!(markdown.contains(&more), "missing {more:?}");
    assert!(markdown.contains("### 🛑 BLOCK · 1667 violations"));
    assert!(markdown.contains(" of 1667 locations</summary>"));
    assert!(markdown.ends_with("</sub>"));
    assert_eq!(
        markdown.matches("<details>").count(),
        markdown.matches("</details>").count()
    );
}

#[test]
fn user_text_cannot_break_the_markup() {
    let catalog = catalog();
    let findings = findings(vec![
        at(
            "R07",
            "src/we`ird|name.py",
            1,
            "print(`a | b`) <script>alert(1)</script>",
        ),
        at(
            "R07",
            "`start.py",
            2,
            "**bold** [link](https://x) ~~gone~~ & &amp;\nnew line",
        ),
    ]);
    let overrides = Overrides::new(vec![approve(
        &[&findings.violations[0]],
        "<img src=x>",
        "</details> | # heading",
    )]);
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    assert_snapshot!("escaping", comment(evaluation));
}

pub(super) fn text_fixture() -> (Catalog, Findings, Overrides) {
    let mut findings = findings(mixed());
    findings.not_evaluated = vec!["assets/logo.png".into()];
    let overrides = Overrides::new(vec![approve(
        &[&findings.violations[3]],
        "octocat",
        "Debug output is the point of this script",
    )]);
    (catalog(), findings, overrides)
}

#[test]
fn text_output() {
    let (catalog, findings, overrides) = text_fixture();
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation);
    let plain = render_text(&input, false);
    assert!(!plain.contains('\x1b'));
    assert_snapshot!("text_plain", plain);
    assert_snapshot!("text_color", render_text(&input, true).replace('\x1b', "␛"));
}

#[test]
fn text_output_clean_and_hostile() {
    let catalog = catalog();
    let overrides = Overrides::default();
    let clean = findings(vec![]);
    let evaluation = Evaluation::new(&catalog, &clean, &overrides, Threshold::DEFAULT, DIGEST);
    assert_eq!(
        render_text(&ReportInput::Evaluated(evaluation), true),
        "No violations.\n\n\x1b[1mScore 100/100\x1b[0m · \x1b[1;32mpass\x1b[0m (threshold 70)"
    );

    let hostile = findings(vec![at("R07", "a\x1b[2J.py", 1, "print\x07 call\nsecond")]);
    let evaluation = Evaluation::new(&catalog, &hostile, &overrides, Threshold::DEFAULT, DIGEST);
    let text = render_text(&ReportInput::Evaluated(evaluation), true);
    assert!(
        text.contains("a\u{fffd}[2J.py:1  print\u{fffd} call\u{fffd}second"),
        "{text}"
    );
}

#[test]
fn json_output() {
    let (catalog, findings, overrides) = text_fixture();
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let json = serde_json::to_string_pretty(&render_json(&evaluation)).unwrap();
    assert_snapshot!("json", json);
}

fn granted(
    violations: &[&Violation],
    requested_by: &str,
    approved_by: &[&str],
    reason: &str,
) -> ApprovedOverride {
    ApprovedOverride {
        fingerprints: violations.iter().map(|v| v.fingerprint.clone()).collect(),
        requested_by: requested_by.to_owned(),
        approved_by: approved_by.iter().map(|a| a.to_string()).collect(),
        reason: reason.to_owned(),
    }
}

#[test]
fn overrides_section_lists_approved_and_pending() {
    let catalog = catalog();
    let findings = findings(vec![
        at("R01", "tests/fixtures/aws.txt", 1, "AWS access key id"),
        at("R04", "docs/merging.md", 30, "Conflict marker <<<<<<< HEAD"),
        at("R07", "src/cli.py", 5, "print() call"),
        at("R07", "src/cli.py", 9, "print() call"),
        at("R12", "src/lib.rs", 9, "TODO without issue"),
    ]);
    let [r01, r04, r07a, r07b, r12] = &findings.violations[..] else {
        panic!("five violations");
    };
    let gone = at("R01", "src/old.py", 3, "A key that was since removed");
    let overrides = Overrides::new(vec![
        granted(
            &[r07a, r07b],
            "alice",
            &["alice"],
            "The CLI prints on purpose",
        ),
        granted(&[r01], "bob", &["carol", "erin"], "Documented fake key"),
        granted(&[&gone], "bob", &["carol"], "No longer relevant"),
    ]);
    let mut progress = RequestProgress::pending(2);
    progress.approve("carol").unwrap();
    let mut evaluation =
        Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    evaluation.pending_overrides = vec![
        PendingOverride {
            requested_by: "dave".into(),
            reason: "This page documents conflict markers".into(),
            fingerprints: [r04.fingerprint.clone()].into(),
            progress,
            approvers: ["carol", "acme/security"]
                .map(|a| a.parse().unwrap())
                .into(),
        },
        PendingOverride {
            requested_by: "dave".into(),
            reason: "r".repeat(400),
            fingerprints: [gone.fingerprint.clone()].into(),
            progress: RequestProgress::pending(1),
            approvers: Vec::new(),
        },
    ];
    evaluation.rejected_overrides = vec![
        RejectedOverride {
            requested_by: "dave".into(),
            reason: "We will do it later".into(),
            fingerprints: [r12.fingerprint.clone()].into(),
            rejected_by: "carol".into(),
            rejection: "Open an issue and link it from the TODO".into(),
        },
        RejectedOverride {
            requested_by: "dave".into(),
            reason: "Gone anyway".into(),
            fingerprints: [gone.fingerprint.clone()].into(),
            rejected_by: "carol".into(),
            rejection: "Not shown: its violation is gone".into(),
        },
    ];
    assert!(!evaluation.verdict().passed());
    let markdown = comment(evaluation);
    assert!(!markdown.contains("No longer relevant"));
    assert!(!markdown.contains("Not shown"));
    assert!(markdown.contains(&("r".repeat(300) + "…”")));
    assert_snapshot!("overrides_section", markdown);
}

#[test]
fn the_title_names_the_override_that_made_the_difference() {
    let catalog = catalog();
    let findings = findings(vec![
        at("R01", "tests/fixtures/aws.txt", 1, "AWS access key id"),
        at("R07", "src/cli.py", 5, "print() call"),
    ]);
    let long =
        "A documented fake key used by the parser tests; it was never valid anywhere, see #12";
    let overrides = Overrides::new(vec![
        granted(
            &[&findings.violations[1]],
            "alice",
            &["alice"],
            "CLI output",
        ),
        granted(&[&findings.violations[0]], "bob", &["carol", "erin"], long),
    ]);
    let evaluation = Evaluation::new(&catalog, &findings, &overrides, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation.clone());
    assert_eq!(
        check_run_title(&input),
        "Score 100/100 · overridden by @carol and @erin: A documented fake key used by the \
         parser tests; it was never valid anywhere, see… (+1 more override)"
    );
    let markdown = render_markdown(&input, Surface::CheckRun);
    assert!(
        markdown.contains(
            "- **Overridden** by @carol and @erin: “A documented fake key used by the parser \
             tests; it was never valid anywhere, see \\#12”\n- **Overridden** by @alice: “CLI output”\n"
        ),
        "{markdown}"
    );

    // Passing without the override: the title only counts it.
    let only_r07 = Overrides::new(vec![granted(
        &[&findings.violations[1]],
        "alice",
        &["alice"],
        "CLI output",
    )]);
    let r07 = findings.violations[1..].to_vec();
    let findings = super::Findings {
        violations: r07,
        not_evaluated: Vec::new(),
    };
    let evaluation = Evaluation::new(&catalog, &findings, &only_r07, Threshold::DEFAULT, DIGEST);
    let input = ReportInput::Evaluated(evaluation);
    assert_eq!(check_run_title(&input), "Score 100/100 · 1 overridden");
    assert!(!render_markdown(&input, Surface::CheckRun).contains("**Overridden**"));
}
