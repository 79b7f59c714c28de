//! Merge queues end to end: `merge_group` deliveries through the real router and workers to a
//! fake GitHub that serves the compare API, with a fresh PostgreSQL database per test.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_github::{CheckRunRecord, CommentRecord, FakeGithub, PrSpec, file_entry};
use support::fake_slack::FakeSlack;
use support::patches::{SECRET_PATCH, WORKFLOW_PATCH, base_sha, sha};
use support::test_app::{
    self, INSTALLATION_ID, SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL, SLACK_TOKEN, TestApp,
    issue_comment_event, pull_request_event,
};
use support::{TEST_APP_KEY, wait_until};
use tollgate::app::{Role, RuntimeOptions};
use tollgate::intake::sign;

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const REPOSITORY_ID: i64 = 1001;
const WAIT: Duration = Duration::from_secs(20);
const AUTHOR: &str = "alice";
const APPROVER: &str = "carol";
const DEVELOPER: &str = "bob";
const CLEAN_PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";
/// [`SECRET_PATCH`]'s key two lines further down, as after merging another change above it.
const SECRET_SHIFTED_PATCH: &str = concat!(
    // Split so that this file holds no real-format token itself.
    "@@ -0,0 +1,5 @@\n+import os\n+import sys\n+import re\n+AWS_KEY = \"AKIA",
    "Z7Q3XK2M4N5P6R7T\"\n+print(os.name)"
);
const CONFIG: &str = "threshold: 70\noverrides:\n  approvers: [carol]\n";

/// The commit the merge queue builds its groups on (main after earlier merges).
fn group_base() -> String {
    "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0".to_owned()
}

struct World {
    github: FakeGithub,
    app: TestApp,
}

impl World {
    /// `config` is the repository config on the pull requests' base and on the group's base.
    async fn start(config: &str) -> Self {
        let github = Self::github(config).await;
        let app = TestApp::start(&github.url()).await;
        Self { github, app }
    }

    /// Like [`Self::start`], with Tier 1 alerts going to a fake Slack.
    async fn start_with_alerts(config: &str) -> (Self, FakeSlack) {
        let github = Self::github(config).await;
        let slack = FakeSlack::start(SLACK_TOKEN, &[SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL]).await;
        let vars = test_app::slack_vars(&slack.api_url());
        let database = test_app::fresh_database().await;
        let app =
            TestApp::start_configured(database, &github.url(), test_app::options(), &vars).await;
        (Self { github, app }, slack)
    }

    async fn github(config: &str) -> FakeGithub {
        let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
        github.add_installation(INSTALLATION_ID as u64);
        github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
        for base in [base_sha(), group_base()] {
            github.set_file(OWNER, REPO, &base, ".github/tollgate.yml", config);
        }
        github.set_permission(OWNER, REPO, AUTHOR, "admin", "admin");
        github.set_permission(OWNER, REPO, APPROVER, "write", "maintain");
        github.set_permission(OWNER, REPO, DEVELOPER, "write", "write");
        github
    }

    /// Opens pull request `number` at `head` with one file and returns its check run's conclusion.
    async fn open(&self, number: u64, head: &str, path: &str, patch: &str) -> String {
        self.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number,
                title: "feat: add settings".into(),
                author: AUTHOR.into(),
                head_sha: head.to_owned(),
                base_sha: base_sha(),
                files: vec![file_entry(path, "added", Some(patch))],
                ..PrSpec::default()
            },
        );
        let event = pull_request_event("opened", OWNER, REPO, number, head);
        assert_eq!(self.app.send_webhook("pull_request", &event).await.0, 202);
        self.app.settle().await;
        self.check_run(head)
            .and_then(|c| c.conclusion)
            .expect("a completed check run")
    }

    /// Pull request `number` joins (or, with `dequeued`, leaves) the merge queue of `main`.
    async fn queue(&self, action: &str, number: u64, head: &str) {
        let event = pull_request_event(action, OWNER, REPO, number, head);
        assert_eq!(self.app.send_webhook("pull_request", &event).await.0, 202);
        self.app.settle().await;
    }

    async fn comment(&self, number: u64, author: &str, body: &str) {
        let id = self.github.add_comment(OWNER, REPO, number, author, body);
        let event = issue_comment_event(OWNER, REPO, number, id, author, body);
        assert_eq!(self.app.send_webhook("issue_comment", &event).await.0, 202);
        self.app.settle().await;
    }

    /// GitHub asks for the checks of the group ending with pull request `last`, whose combined
    /// change (from [`group_base`]) is `files`; waits for the app to finish with it.
    async fn checks_requested(&self, last: u64, head: &str, files: Vec<Value>) -> CheckRunRecord {
        self.github
            .set_comparison(OWNER, REPO, &group_base(), head, files);
        let event = merge_group_event("checks_requested", last, head);
        let (status, reply) = self.app.send_webhook("merge_group", &event).await;
        assert_eq!((status, reply["status"].as_str()), (202, Some("accepted")));
        self.app.settle().await;
        let done = wait_until(WAIT, || self.check_run(head).is_some()).await;
        assert!(done, "no check run on the merge group {head}");
        self.check_run(head).unwrap()
    }

    /// The newest completed check run on `head`.
    fn check_run(&self, head: &str) -> Option<CheckRunRecord> {
        self.github
            .check_runs(OWNER, REPO)
            .into_iter()
            .rfind(|c| c.head_sha == head && c.status == "completed")
    }

    /// The app's comments on pull request `number` about a merge group.
    fn queue_comments(&self, number: u64) -> Vec<CommentRecord> {
        self.github
            .bot_comments(OWNER, REPO, number)
            .into_iter()
            .filter(|c| c.body.starts_with("<!-- tollgate:merge-group:"))
            .collect()
    }

    /// The GitHub requests since `before`, as `METHOD path`, without the installation token.
    fn calls_since(&self, before: usize) -> Vec<String> {
        self.github.requests()[before..]
            .iter()
            .filter(|r| !r.path.ends_with("/access_tokens"))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    async fn queue_evaluation(&self, head: &str) -> (String, String, Value) {
        let mut db = self.app.db().await;
        sqlx::query_as(
            "SELECT mode, verdict, introduced FROM queue_evaluations
             WHERE repository_id = $1 AND head_sha = $2",
        )
        .bind(REPOSITORY_ID)
        .bind(head)
        .fetch_one(&mut db)
        .await
        .expect("a queue evaluation")
    }
}

/// A `merge_group` delivery for the group ending with pull request `last`.
fn merge_group_event(action: &str, last: u64, head: &str) -> Value {
    json!({
        "action": action,
        "merge_group": {
            "head_sha": head,
            "head_ref": format!("refs/heads/gh-readonly-queue/main/pr-{last}-{}", sha(last as u32)),
            "base_sha": group_base(),
            "base_ref": "refs/heads/main",
            "head_commit": { "id": head, "tree_id": head, "message": "Merge", "timestamp": "2026-01-01T00:00:00Z",
                "author": { "name": "GitHub", "email": "noreply@github.com" },
                "committer": { "name": "GitHub", "email": "noreply@github.com" } }
        },
        "repository": {
            "id": REPOSITORY_ID,
            "name": REPO,
            "full_name": format!("{OWNER}/{REPO}"),
            "owner": { "login": OWNER, "type": "Organization" },
            "private": true
        },
        "installation": { "id": INSTALLATION_ID },
        "sender": { "login": "github-merge-queue[bot]", "type": "Bot" }
    })
}

#[tokio::test]
async fn a_violation_introduced_only_by_combining_two_pull_requests_fails_the_group() {
    let world = World::start(CONFIG).await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    assert_eq!(
        world.open(2, &sha(2), "app/b.py", CLEAN_PATCH).await,
        "success"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    world.queue("enqueued", 2, &sha(2)).await;

    // Together the two changes hold a key neither holds alone.
    let group = sha(0x9001);
    let before = world.github.requests().len();
    let run = world
        .checks_requested(
            2,
            &group,
            vec![
                file_entry("app/a.py", "added", Some(CLEAN_PATCH)),
                file_entry("app/settings.py", "added", Some(SECRET_PATCH)),
            ],
        )
        .await;
    assert_eq!(run.name, "Tollgate");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(
        run.external_id
            .as_deref()
            .is_some_and(|id| id.starts_with("tollgate-queue-evaluation-")),
        "{:?}",
        run.external_id
    );
    assert!(
        run.annotations
            .iter()
            .any(|a| a["path"] == "app/settings.py" && a["start_line"] == 2)
    );

    // Both pull requests are told what the combination introduced, once each.
    for number in [1, 2] {
        let comments = world.queue_comments(number);
        assert_eq!(comments.len(), 1, "#{number}: {comments:#?}");
        let body = &comments[0].body;
        assert!(body.contains("R01"), "{body}");
        assert!(body.contains("app/settings.py:2"), "{body}");
        assert!(body.contains("#1, #2"), "{body}");
    }
    // Config, comparison and check run; then the two comments.
    assert_eq!(
        world.calls_since(before),
        [
            format!("GET /repos/{OWNER}/{REPO}/contents/.github/tollgate.yml"),
            format!(
                "GET /repos/{OWNER}/{REPO}/compare/{}...{group}",
                group_base()
            ),
            format!("POST /repos/{OWNER}/{REPO}/check-runs"),
            format!("POST /repos/{OWNER}/{REPO}/issues/1/comments"),
            format!("POST /repos/{OWNER}/{REPO}/issues/2/comments"),
        ]
    );
    let (mode, verdict, introduced) = world.queue_evaluation(&group).await;
    assert_eq!((mode.as_str(), verdict.as_str()), ("reevaluate", "fail"));
    assert_eq!(introduced[0]["rule_id"], "R01", "{introduced}");

    // A redelivery of the same request posts nothing again.
    let before = world.github.requests().len();
    let event = merge_group_event("checks_requested", 2, &group);
    world.app.send_webhook("merge_group", &event).await;
    world.app.settle().await;
    let writes: Vec<String> = world
        .calls_since(before)
        .into_iter()
        .filter(|c| !c.starts_with("GET"))
        .collect();
    assert!(
        writes
            .iter()
            .all(|w| w.starts_with("PATCH") && w.contains("/check-runs/")),
        "{writes:?}"
    );
    assert_eq!(world.queue_comments(1).len(), 1);
    world.github.assert_clean();
}

#[tokio::test]
async fn an_overridden_violation_whose_line_moved_passes_in_three_calls() {
    let world = World::start(CONFIG).await;
    assert_eq!(
        world
            .open(1, &sha(1), "app/settings.py", SECRET_PATCH)
            .await,
        "failure"
    );
    world
        .comment(
            1,
            DEVELOPER,
            "/override R01 this key is a documented test fixture",
        )
        .await;
    world
        .comment(1, APPROVER, "/approve checked with security")
        .await;
    assert_eq!(
        world
            .check_run(&sha(1))
            .and_then(|c| c.conclusion)
            .as_deref(),
        Some("success")
    );
    world.queue("enqueued", 1, &sha(1)).await;

    // Merged after another change, the key sits two lines lower in the group.
    let group = sha(0x9002);
    let before = world.github.requests().len();
    let run = world
        .checks_requested(
            1,
            &group,
            vec![file_entry(
                "app/settings.py",
                "added",
                Some(SECRET_SHIFTED_PATCH),
            )],
        )
        .await;
    assert_eq!(run.conclusion.as_deref(), Some("success"), "{run:#?}");
    let summary = run.output_summary.unwrap_or_default();
    assert!(summary.contains("overridden"), "{summary}");
    let calls = world.calls_since(before);
    assert_eq!(
        calls.len(),
        3,
        "at most 3 calls besides the token: {calls:?}"
    );
    assert!(world.queue_comments(1).is_empty());
    let (_, verdict, _) = world.queue_evaluation(&group).await;
    assert_eq!(verdict, "pass");
    world.github.assert_clean();
}

#[tokio::test]
async fn a_policy_tightened_at_the_group_base_applies_to_the_group() {
    let world = World::start("threshold: 70\n").await;
    assert_eq!(
        world
            .open(1, &sha(1), ".github/workflows/ci.yml", WORKFLOW_PATCH)
            .await,
        "success",
        "an OVERRIDE-tier change scores 97"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    // Since the pull request passed, main raised the threshold: the same change now fails.
    world.github.set_file(
        OWNER,
        REPO,
        &group_base(),
        ".github/tollgate.yml",
        "threshold: 100\n",
    );
    let files = vec![file_entry(
        ".github/workflows/ci.yml",
        "added",
        Some(WORKFLOW_PATCH),
    )];
    let run = world.checks_requested(1, &sha(0x9003), files).await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let comments = world.queue_comments(1);
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].body.contains("policy or the configuration"),
        "{}",
        comments[0].body
    );
    world.github.assert_clean();
}

#[tokio::test]
async fn a_destroyed_group_is_recorded_without_any_github_write() {
    let world = World::start(CONFIG).await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    let group = sha(0x9004);
    world
        .checks_requested(
            1,
            &group,
            vec![file_entry("app/a.py", "added", Some(CLEAN_PATCH))],
        )
        .await;

    let before = world.github.requests().len();
    let mut event = merge_group_event("destroyed", 1, &group);
    event["reason"] = json!("merged");
    let (status, reply) = world.app.send_webhook("merge_group", &event).await;
    assert_eq!((status, reply["status"].as_str()), (202, Some("accepted")));
    world.queue("dequeued", 1, &sha(1)).await;
    assert!(
        world.calls_since(before).is_empty(),
        "{:?}",
        world.calls_since(before)
    );
    let mut db = world.app.db().await;
    let reason: Option<String> =
        sqlx::query_scalar("SELECT destroyed_reason FROM queue_evaluations WHERE head_sha = $1")
            .bind(&group)
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("merged"));
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM merge_queue_entries")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(queued, 0, "the dequeued pull request left the queue");
    world.github.assert_clean();
}

#[tokio::test]
async fn a_repository_that_trusts_its_pull_requests_needs_no_comparison() {
    let world = World::start("merge_queue: trust_pull_requests\n").await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    assert_eq!(
        world
            .open(2, &sha(2), "app/settings.py", SECRET_PATCH)
            .await,
        "failure"
    );
    world.queue("enqueued", 1, &sha(1)).await;

    let before = world.github.requests().len();
    let trusted = world.checks_requested(1, &sha(0x9005), Vec::new()).await;
    assert_eq!(trusted.conclusion.as_deref(), Some("success"));
    let calls = world.calls_since(before);
    assert!(calls.iter().all(|c| !c.contains("/compare/")), "{calls:?}");
    assert_eq!(calls.len(), 2, "config and check run: {calls:?}");
    let (mode, verdict, _) = world.queue_evaluation(&sha(0x9005)).await;
    assert_eq!(
        (mode.as_str(), verdict.as_str()),
        ("trust_pull_requests", "pass")
    );

    // A group holding the pull request that failed at its head is not trusted.
    world.queue("enqueued", 2, &sha(2)).await;
    let untrusted = world.checks_requested(2, &sha(0x9006), Vec::new()).await;
    assert_eq!(untrusted.conclusion.as_deref(), Some("failure"));
    let title = untrusted.output_title.unwrap_or_default();
    assert!(title.starts_with("Not trusted"), "{title}");
    assert!(
        untrusted.output_summary.unwrap_or_default().contains("#2"),
        "the summary names the pull request"
    );
    world.github.assert_clean();
}

#[tokio::test]
async fn check_suites_on_merge_queue_branches_create_no_evaluation() {
    let world = World::start(CONFIG).await;
    let suite = json!({
        "action": "requested",
        "check_suite": {
            "head_branch": "gh-readonly-queue/main/pr-1-0000000000000000000000000000000000000001",
            "head_sha": sha(0x9007),
            "pull_requests": [{ "number": 1 }]
        },
        "repository": { "id": REPOSITORY_ID, "name": REPO, "owner": { "login": OWNER } },
        "installation": { "id": INSTALLATION_ID }
    });
    let (status, reply) = world.app.send_webhook("check_suite", &suite).await;
    assert_eq!((status, reply["status"].as_str()), (202, Some("ignored")));
    assert_eq!(world.app.unfinished_jobs().await, 0);
    assert!(world.github.requests().is_empty());
}

/// GitHub's own `merge_group` example (in `../shared/fixtures/github/webhooks/merge_group/`,
/// when present) is parsed and routed to one group evaluation keyed by its head. A web-only
/// process, so no job runs.
#[tokio::test]
async fn conformance_githubs_merge_group_example_is_routed_to_a_group_evaluation() {
    let example = support::shared::shared_path(
        "fixtures/github/webhooks/merge_group/checks_requested.payload.json",
    );
    let Ok(body) = std::fs::read(&example) else {
        eprintln!("CONFORMANCE SKIPPED: {} not found", example.display());
        return;
    };
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    let web_only = RuntimeOptions {
        role: Role::Web,
        ..test_app::options()
    };
    let app = TestApp::start_on(test_app::fresh_database().await, &github.url(), web_only).await;
    let signature = sign(test_app::WEBHOOK_SECRET, &body);
    let (status, reply) = app
        .post_raw(
            "conformance-merge-group",
            "merge_group",
            "application/json",
            body,
            Some(&signature),
        )
        .await;
    assert_eq!((status, reply["status"].as_str()), (202, Some("accepted")));
    let mut db = app.db().await;
    let jobs: Vec<(String, String, Value)> =
        sqlx::query_as("SELECT kind, dedup_key, payload FROM jobs ORDER BY id")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let groups: Vec<_> = jobs
        .iter()
        .filter(|(kind, _, _)| kind == "evaluate_merge_group")
        .collect();
    assert_eq!(groups.len(), 1, "{jobs:?}");
    let (_, key, payload) = groups[0];
    assert_eq!(
        key,
        "merge_group:17273051:2ffea6db159f6b6c47a24e778fb9ef40cf6b1c7d"
    );
    assert_eq!(
        payload["base_sha"],
        "380387fbc80638b734a49e1be1c4dfec1c01b33c"
    );
    assert_eq!(
        payload["head_ref"],
        "refs/heads/gh-readonly-queue/main/pr-104-929f8209d40f77f4abc622a499c93a83babdbe64"
    );
    assert_eq!(payload["repo"]["owner"], "octo-org");
    assert!(github.requests().is_empty(), "intake must not call GitHub");
}

/// A worker killed after GitHub created the group's check run and comment, but before their ids
/// were recorded, leaves a retry that finds both (the check run by its `external_id`, the comment
/// by its hidden key) and creates neither again.
#[tokio::test]
async fn a_retry_after_a_crash_finds_the_groups_check_run_and_comments() {
    let world = World::start(CONFIG).await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    let group = sha(0x9008);
    let files = vec![file_entry("app/settings.py", "added", Some(SECRET_PATCH))];
    world.checks_requested(1, &group, files.clone()).await;
    assert_eq!(world.queue_comments(1).len(), 1);

    // What the store holds when the worker died between each call and its record.
    let mut db = world.app.db().await;
    for forget in [
        "UPDATE queue_evaluations SET check_run_id = NULL WHERE check_run_requested_at IS NOT NULL",
        "UPDATE queue_comments SET comment_id = NULL",
    ] {
        sqlx::query(forget).execute(&mut db).await.unwrap();
    }
    let before = world.github.requests().len();
    let retried = world.checks_requested(1, &group, files).await;
    assert_eq!(retried.conclusion.as_deref(), Some("failure"));
    let runs: Vec<_> = world
        .github
        .check_runs(OWNER, REPO)
        .into_iter()
        .filter(|c| c.head_sha == group)
        .collect();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    assert_eq!(world.queue_comments(1).len(), 1, "no second comment");
    let calls = world.calls_since(before);
    assert!(
        calls.iter().all(|c| !c.starts_with("POST")),
        "nothing created again: {calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with(&format!("/commits/{group}/check-runs"))),
        "{calls:?}"
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM queue_comments WHERE comment_id IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(recorded, 1, "the found comment is recorded");
    world.github.assert_clean();
}

/// GitHub lists at most 300 files of a comparison, so a group that changes 300 or more cannot
/// be seen whole: it fails closed, as a pull request past GitHub's file list does.
#[tokio::test]
async fn a_group_with_more_files_than_github_compares_fails_closed() {
    let world = World::start(CONFIG).await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    let files: Vec<Value> = (0..320)
        .map(|n| file_entry(&format!("app/m{n}.py"), "added", Some(CLEAN_PATCH)))
        .collect();
    let run = world.checks_requested(1, &sha(0x9009), files).await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let summary = run.output_summary.unwrap_or_default();
    assert!(summary.contains("300"), "{summary}");
    let mut db = world.app.db().await;
    let status: String =
        sqlx::query_scalar("SELECT status FROM queue_evaluations WHERE head_sha = $1")
            .bind(sha(0x9009))
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(status, "error");
    world.github.assert_clean();
}

/// A failed group raises the Tier 1 alert of the BLOCK violation it holds, on the pull request
/// it holds, as a pull request's own evaluation does.
#[tokio::test]
async fn a_failed_group_raises_the_tier_1_alert() {
    let (world, slack) = World::start_with_alerts(CONFIG).await;
    assert_eq!(
        world.open(1, &sha(1), "app/a.py", CLEAN_PATCH).await,
        "success"
    );
    world.queue("enqueued", 1, &sha(1)).await;
    let files = vec![file_entry("app/settings.py", "added", Some(SECRET_PATCH))];
    let run = world.checks_requested(1, &sha(0x900a), files).await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let mut db = world.app.db().await;
    let alerts: Vec<(i32, String, String)> =
        sqlx::query_as("SELECT pr_number, rule_id, head_sha FROM alerts")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(alerts, [(1, "R01".to_owned(), sha(0x900a))]);
    let sent = wait_until(WAIT, || {
        slack.messages().iter().any(|m| {
            m.channel == SLACK_CHANNEL && m.text.as_deref().is_some_and(|t| t.contains("R01"))
        })
    })
    .await;
    assert!(sent, "{:#?}", slack.messages());
    world.github.assert_clean();
}
