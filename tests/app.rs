//! End-to-end scenarios: the real router and workers, a fresh PostgreSQL database per test, and a
//! fake GitHub HTTP server. Tests wait on conditions, never on fixed sleeps.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::test_app::{self, INSTALLATION_ID, TestApp, pull_request_event};
use support::{TEST_APP_KEY, wait_until};
use tollgate::app::{Role, RuntimeOptions};
use tollgate::intake::sign;

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const WAIT: Duration = Duration::from_secs(20);

const SECRET_PATCH: &str = concat!(
    // Split so that this file holds no real-format token itself.
    "@@ -0,0 +1,3 @@\n+import os\n+AWS_KEY = \"AKIA",
    "Z7Q3XK2M4N5P6R7T\"\n+print(os.name)"
);
const CLEAN_PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";

async fn fake_github() -> FakeGithub {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    github
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

fn pr(number: u64, head: &str, patch: &str) -> PrSpec {
    PrSpec {
        number,
        title: "feat: add settings".into(),
        head_sha: head.to_owned(),
        files: vec![file_entry("app/settings.py", "added", Some(patch))],
        ..PrSpec::default()
    }
}

/// Waits until the check run on `head` is completed and returns it.
async fn completed_check_run(
    github: &FakeGithub,
    head: &str,
) -> support::fake_github::CheckRunRecord {
    let done = wait_until(WAIT, || {
        github
            .check_runs(OWNER, REPO)
            .iter()
            .any(|c| c.head_sha == head && c.status == "completed")
    })
    .await;
    assert!(
        done,
        "no completed check run on {head}: {:#?}",
        github.check_runs(OWNER, REPO)
    );
    github
        .check_runs(OWNER, REPO)
        .into_iter()
        .find(|c| c.head_sha == head && c.status == "completed")
        .unwrap()
}

async fn settle(app: &TestApp) {
    let mut idle = false;
    for _ in 0..500 {
        if app.unfinished_jobs().await == 0 {
            idle = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(idle, "jobs left unfinished");
}

#[tokio::test]
async fn opened_pr_with_a_secret_fails_with_annotations_and_one_comment() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(1, &sha(1), SECRET_PATCH));
    let app = TestApp::start(&github.url()).await;

    let (status, _) = app
        .send_webhook(
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 1, &sha(1)),
        )
        .await;
    assert_eq!(status, 202);

    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(run.name, "Tollgate");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert!(
        run.output_title
            .as_deref()
            .unwrap_or_default()
            .starts_with("Score 90/100"),
        "{:?}",
        run.output_title
    );
    assert!(
        run.annotations
            .iter()
            .any(|a| a["path"] == "app/settings.py" && a["start_line"] == 2)
    );
    settle(&app).await;
    let comments = github.bot_comments(OWNER, REPO, 1);
    assert_eq!(comments.len(), 1, "exactly one sticky comment");
    assert!(comments[0].body.contains("R01"), "{}", comments[0].body);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM evaluations WHERE status = 'completed' AND verdict = 'fail'"
        )
        .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM violations WHERE rule_id = 'R01'")
            .await,
        1
    );
    github.assert_clean();
}

#[tokio::test]
async fn synchronize_to_a_clean_diff_edits_the_same_comment_and_passes() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(2, &sha(1), SECRET_PATCH));
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 2, &sha(1)),
    )
    .await;
    completed_check_run(&github, &sha(1)).await;
    settle(&app).await;

    github.set_pull_request(OWNER, REPO, pr(2, &sha(2), CLEAN_PATCH));
    app.send_webhook(
        "pull_request",
        &pull_request_event("synchronize", OWNER, REPO, 2, &sha(2)),
    )
    .await;
    let run = completed_check_run(&github, &sha(2)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    settle(&app).await;

    let comments = github.bot_comments(OWNER, REPO, 2);
    assert_eq!(
        comments.len(),
        1,
        "the sticky comment is edited, not duplicated"
    );
    assert!(comments[0].edits >= 1);
    let body = &comments[0].body;
    assert!(
        body.contains("90 at `0000000` → **100**"),
        "history line missing: {body}"
    );
    assert!(
        body.contains("~~"),
        "fixed violation not struck through: {body}"
    );
    github.assert_clean();
}

#[tokio::test]
async fn the_same_delivery_twice_is_processed_once() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(3, &sha(1), CLEAN_PATCH));
    let app = TestApp::start(&github.url()).await;
    let payload = pull_request_event("opened", OWNER, REPO, 3, &sha(1));
    let (first, _) = app
        .send_delivery("delivery-1", "pull_request", &payload)
        .await;
    let (second, body) = app
        .send_delivery("delivery-1", "pull_request", &payload)
        .await;
    assert_eq!((first, second), (202, 200));
    assert_eq!(body["status"], "duplicate");
    completed_check_run(&github, &sha(1)).await;
    settle(&app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    // The installation-config refresh is scheduled whatever arrives; count the delivery's jobs.
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE kind <> 'refresh_installation_config'")
            .await,
        1
    );
    assert_eq!(github.check_runs(OWNER, REPO).len(), 1);
}

#[tokio::test]
async fn bad_or_missing_signatures_are_refused_and_nothing_is_stored() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let body = serde_json::to_vec(&pull_request_event("opened", OWNER, REPO, 4, &sha(1))).unwrap();
    let wrong = sign("not-the-secret", &body);
    let (status, reply) = app
        .post_raw(
            "d-1",
            "pull_request",
            "application/json",
            body.clone(),
            Some(&wrong),
        )
        .await;
    assert_eq!(status, 401);
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("does not match")
    );
    let (status, _) = app
        .post_raw("d-2", "pull_request", "application/json", body, None)
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_deliveries").await,
        0
    );
    assert_eq!(app.count("SELECT count(*) FROM jobs").await, 0);
    assert!(github.requests().is_empty());
}

#[tokio::test]
async fn intake_answers_ping_form_bodies_unhandled_events_bad_json_and_huge_bodies() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;

    let (status, _) = app
        .send_webhook(
            "ping",
            &json!({ "zen": "Keep it logically awesome.", "hook_id": 1 }),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = app
        .send_webhook("star", &json!({ "action": "created" }))
        .await;
    assert_eq!((status, body["status"].as_str()), (202, Some("ignored")));

    let payload =
        serde_json::to_string(&pull_request_event("labeled", OWNER, REPO, 5, &sha(1))).unwrap();
    let form: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload)
        .finish();
    let signature = sign(test_app::WEBHOOK_SECRET, form.as_bytes());
    let (status, body) = app
        .post_raw(
            "form-1",
            "pull_request",
            "application/x-www-form-urlencoded",
            form.into_bytes(),
            Some(&signature),
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (202, Some("ignored")),
        "{body}"
    );

    let broken = b"{\"action\": ".to_vec();
    let signature = sign(test_app::WEBHOOK_SECRET, &broken);
    let (status, _) = app
        .post_raw(
            "bad-1",
            "pull_request",
            "application/json",
            broken,
            Some(&signature),
        )
        .await;
    assert_eq!(status, 400);

    let huge = vec![b' '; 25 * 1024 * 1024 + 1];
    let signature = sign(test_app::WEBHOOK_SECRET, &huge);
    let (status, _) = app
        .post_raw(
            "huge-1",
            "pull_request",
            "application/json",
            huge,
            Some(&signature),
        )
        .await;
    assert_eq!(status, 413);

    assert_eq!(
        app.count("SELECT count(*) FROM webhook_deliveries WHERE status = 'ignored'")
            .await,
        2,
        "the unhandled event and the labeled pull request are recorded as ignored"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_deliveries").await,
        3
    );
}

#[tokio::test]
async fn ten_deliveries_for_one_pr_give_one_comment_and_the_newest_result() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(6, &sha(10), CLEAN_PATCH));
    let app = TestApp::start(&github.url()).await;
    let mut sends = tokio::task::JoinSet::new();
    for n in 1..=10 {
        let request = app.signed_request(
            "pull_request",
            &pull_request_event("synchronize", OWNER, REPO, 6, &sha(n)),
        );
        sends.spawn(async move {
            request
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
    }
    let statuses = sends.join_all().await;
    assert!(statuses.iter().all(|s| *s == 202), "{statuses:?}");
    let run = completed_check_run(&github, &sha(10)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    settle(&app).await;
    assert_eq!(github.bot_comments(OWNER, REPO, 6).len(), 1);
    let evaluations = app.count("SELECT count(*) FROM evaluations").await;
    assert!(
        evaluations <= 2,
        "deliveries coalesce: {evaluations} evaluations"
    );
    github.assert_clean();
}

#[tokio::test]
async fn a_github_502_is_retried_and_posts_one_comment() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(7, &sha(1), SECRET_PATCH));
    github.fail_next(
        "GET",
        &format!("/repos/{OWNER}/{REPO}/pulls/7/files"),
        502,
        1,
    );
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 7, &sha(1)),
    )
    .await;
    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    settle(&app).await;
    assert_eq!(github.bot_comments(OWNER, REPO, 7).len(), 1);
    assert_eq!(
        github.check_runs(OWNER, REPO).len(),
        1,
        "the retry reuses the check run"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 2")
            .await,
        1
    );
}

#[tokio::test]
async fn many_violations_send_annotations_in_batches_of_fifty() {
    let github = fake_github().await;
    let lines: String = (0..120)
        .map(|i| format!("+key_{i} = \"AKIAZ7Q3XK2M4N5P{i:04}\"\n"))
        .collect();
    let patch = format!("@@ -0,0 +1,120 @@\n{}", lines.trim_end());
    github.set_pull_request(OWNER, REPO, pr(8, &sha(1), &patch));
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 8, &sha(1)),
    )
    .await;
    completed_check_run(&github, &sha(1)).await;
    settle(&app).await;
    let run = github.check_runs(OWNER, REPO).remove(0);
    assert_eq!(run.annotations.len(), 120);
    for request in github
        .requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PATCH") && r.path.contains("check-runs"))
    {
        let sent = request
            .body
            .as_ref()
            .and_then(|b| b["output"]["annotations"].as_array())
            .map_or(0, Vec::len);
        assert!(sent <= 50, "{sent} annotations in one request");
    }
    github.assert_clean();
}

#[tokio::test]
async fn an_invalid_repository_config_gives_a_neutral_check_run() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(9, &sha(1), CLEAN_PATCH));
    github.set_file(
        OWNER,
        REPO,
        &PrSpec::default().base_sha,
        ".github/tollgate.yml",
        "threshhold: 80\n",
    );
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 9, &sha(1)),
    )
    .await;
    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(run.conclusion.as_deref(), Some("neutral"));
    assert!(
        run.output_summary
            .unwrap_or_default()
            .contains("threshhold")
    );
    settle(&app).await;
    assert_eq!(
        app.count("SELECT count(*) FROM evaluations WHERE status = 'error'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_job_interrupted_by_a_crash_completes_after_restart() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(10, &sha(1), CLEAN_PATCH));
    // A web-only process takes the delivery; then a worker claims the job and dies mid-job.
    let web_only = RuntimeOptions {
        role: Role::Web,
        ..test_app::options()
    };
    let app = TestApp::start_on(test_app::fresh_database().await, &github.url(), web_only).await;
    let database_url = app.database_url.clone();
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 10, &sha(1)),
    )
    .await;
    let mut db = app.db().await;
    sqlx::query(
        "UPDATE jobs SET state = 'running', attempts = 1, locked_by = 'crashed-worker',
                locked_until = now() + interval '1 second'",
    )
    .execute(&mut db)
    .await
    .unwrap();
    app.app.abort();

    let restarted = TestApp::start_on(database_url, &github.url(), test_app::options()).await;
    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    settle(&restarted).await;
    assert_eq!(github.bot_comments(OWNER, REPO, 10).len(), 1);
    assert_eq!(
        restarted
            .count("SELECT count(*) FROM jobs WHERE state = 'done' AND attempts = 2")
            .await,
        1
    );
}

#[tokio::test]
async fn installation_events_record_and_retire_the_tenant() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let created = json!({
        "action": "created",
        "installation": { "id": 91, "account": { "login": "octo-org", "type": "Organization" } },
        "repositories": [ { "id": 5, "name": "one", "full_name": "octo-org/one" } ],
        "sender": { "login": "admin" }
    });
    assert_eq!(app.send_webhook("installation", &created).await.0, 202);
    let added = json!({
        "action": "added",
        "installation": { "id": 91, "account": { "login": "octo-org", "type": "Organization" } },
        "repositories_added": [ { "id": 6, "name": "two", "full_name": "octo-org/two" } ],
        "repositories_removed": [ { "id": 5, "name": "one", "full_name": "octo-org/one" } ]
    });
    assert_eq!(
        app.send_webhook("installation_repositories", &added)
            .await
            .0,
        202
    );
    assert_eq!(
        app.count("SELECT count(*) FROM repositories WHERE active")
            .await,
        1
    );
    let deleted = json!({
        "action": "deleted",
        "installation": { "id": 91, "account": { "login": "octo-org", "type": "Organization" } }
    });
    assert_eq!(app.send_webhook("installation", &deleted).await.0, 202);
    assert_eq!(
        app.count("SELECT count(*) FROM installations WHERE NOT active AND retired_at IS NOT NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert!(
        ready["slack"]
            .as_str()
            .is_some_and(|s| s.starts_with("off")),
        "readiness says Slack is off without a token: {ready}"
    );
    let interactions = app
        .http
        .post(app.url("/api/slack/interactions"))
        .send()
        .await
        .unwrap();
    assert_eq!(interactions.status(), 404, "no Slack route without Slack");
}

/// GitHub's own example payloads (in `../shared/fixtures/github/webhooks/<event>/`, when present)
/// are parsed and routed: none is refused as malformed. A web-only process, so no job runs.
#[tokio::test]
async fn conformance_github_example_payloads_are_parsed_and_routed() {
    let folder = support::shared::shared_path("fixtures/github/webhooks");
    if !folder.is_dir() {
        eprintln!(
            "CONFORMANCE SKIPPED: {} not found (GitHub's example payloads)",
            folder.display()
        );
        return;
    }
    let github = fake_github().await;
    let web_only = RuntimeOptions {
        role: Role::Web,
        ..test_app::options()
    };
    let app = TestApp::start_on(test_app::fresh_database().await, &github.url(), web_only).await;
    let mut seen = 0;
    for event_dir in std::fs::read_dir(&folder)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
    {
        let event = event_dir.file_name().to_string_lossy().into_owned();
        for file in std::fs::read_dir(event_dir.path()).unwrap().flatten() {
            if file.path().extension().is_none_or(|e| e != "json") {
                continue;
            }
            // The exact bytes are signed and sent: GitHub signs the raw body.
            let body = std::fs::read(file.path()).unwrap();
            let signature = sign(test_app::WEBHOOK_SECRET, &body);
            let id = format!("conformance-{event}-{}", file.file_name().to_string_lossy());
            let (status, reply) = app
                .post_raw(&id, &event, "application/json", body, Some(&signature))
                .await;
            assert!(
                matches!(status, 200 | 202),
                "{event}/{:?} → {status} {reply}",
                file.file_name()
            );
            seen += 1;
        }
    }
    assert!(seen >= 40, "only {seen} example payloads found");
    let queued = app
        .count("SELECT count(*) FROM webhook_deliveries WHERE status = 'queued'")
        .await;
    assert!(queued > 0, "no example payload was routed to an evaluation");
    // GitHub's issue_comment examples are comments on plain issues: stored, never queued.
    let comments_queued = app
        .count(
            "SELECT count(*) FROM webhook_deliveries
             WHERE event = 'issue_comment' AND status <> 'ignored'",
        )
        .await;
    assert_eq!(comments_queued, 0);

    // The same example, commented on a pull request with a command, queues one command job
    // keyed by repository and comment; a redelivery coalesces with it.
    let example = folder.join("issue_comment/created.with-installation.payload.json");
    if let Ok(text) = std::fs::read_to_string(&example) {
        let mut payload: Value = serde_json::from_str(&text).unwrap();
        payload["issue"]["pull_request"] = json!({ "url": "https://api.github.com/pulls/1" });
        payload["comment"]["body"] = json!("/override R05 a documented test key");
        for delivery in ["conformance-command-1", "conformance-command-2"] {
            let (status, reply) = app.send_delivery(delivery, "issue_comment", &payload).await;
            assert_eq!((status, reply["status"].as_str()), (202, Some("accepted")));
        }
        let mut db = app.db().await;
        let jobs: Vec<(String, Value)> = sqlx::query_as(
            "SELECT dedup_key, payload FROM jobs WHERE kind = 'handle_command' ORDER BY id",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        let (key, job) = &jobs[0];
        assert_eq!(key, "command:186853002:492700400");
        assert_eq!(job["author"], "Codertocat");
        assert_eq!(job["target"]["number"], 1);
    }
    assert!(github.requests().is_empty(), "intake must not call GitHub");
}

#[tokio::test]
async fn a_burst_of_twenty_prs_stays_within_githubs_secondary_limits() {
    let github = fake_github().await;
    github.set_secondary_limit(80, Duration::from_secs(60));
    for n in 1..=20 {
        github.set_pull_request(OWNER, REPO, pr(100 + n, &sha(n as u32), SECRET_PATCH));
    }
    let app = TestApp::start(&github.url()).await;
    for n in 1..=20 {
        let payload = pull_request_event("opened", OWNER, REPO, 100 + n, &sha(n as u32));
        assert_eq!(app.send_webhook("pull_request", &payload).await.0, 202);
    }
    let all_done = wait_until(Duration::from_secs(90), || {
        github
            .check_runs(OWNER, REPO)
            .iter()
            .filter(|c| c.status == "completed")
            .count()
            == 20
    })
    .await;
    assert!(all_done, "not every pull request was evaluated");
    settle(&app).await;
    let refused: Vec<_> = github
        .requests()
        .into_iter()
        .filter(|r| matches!(r.status, 403 | 429))
        .collect();
    assert!(
        refused.is_empty(),
        "GitHub refused {} requests: {refused:#?}",
        refused.len()
    );
    for n in 1..=20 {
        assert_eq!(github.bot_comments(OWNER, REPO, 100 + n).len(), 1);
    }
    github.assert_clean();
}

/// Fair share under GitHub's write limits: 50 pull requests at once on one installation spend
/// its write budget (75 a minute) for more than a minute; a pull request on another installation
/// is evaluated meanwhile, not after them (an evaluation waiting for budget gives its worker slot
/// back, and claims favour the installation with the fewest jobs running).
#[tokio::test]
async fn a_burst_on_one_installation_does_not_stall_another() {
    const BURST: u64 = 50;
    const OTHER_INSTALLATION: u64 = 88;
    let github = fake_github().await;
    github.set_secondary_limit(80, Duration::from_secs(60));
    github.add_installation(OTHER_INSTALLATION);
    github.add_repo(OTHER_INSTALLATION, "beta", "gadgets");
    for n in 1..=BURST {
        github.set_pull_request(OWNER, REPO, pr(n, &sha(n as u32), CLEAN_PATCH));
    }
    github.set_pull_request("beta", "gadgets", pr(1, &sha(999), SECRET_PATCH));
    let app = TestApp::start(&github.url()).await;
    for n in 1..=BURST {
        let payload = pull_request_event("opened", OWNER, REPO, n, &sha(n as u32));
        assert_eq!(app.send_webhook("pull_request", &payload).await.0, 202);
    }
    let mut other = pull_request_event("opened", "beta", "gadgets", 1, &sha(999));
    other["installation"] = json!({ "id": OTHER_INSTALLATION });
    other["repository"]["id"] = json!(880_001);
    assert_eq!(app.send_webhook("pull_request", &other).await.0, 202);

    let other_done = wait_until(Duration::from_secs(60), || {
        github
            .check_runs("beta", "gadgets")
            .iter()
            .any(|run| run.status == "completed")
    })
    .await;
    let burst_done = github
        .check_runs(OWNER, REPO)
        .iter()
        .filter(|run| run.status == "completed")
        .count();
    assert!(
        other_done,
        "the other installation's pull request was not evaluated"
    );
    assert!(
        burst_done < BURST as usize,
        "the other installation waited for the whole burst ({burst_done} evaluated first)"
    );
    let run = &github.check_runs("beta", "gadgets")[0];
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    let refused = github
        .requests()
        .iter()
        .filter(|r| matches!(r.status, 403 | 429))
        .count();
    assert_eq!(refused, 0, "the pacer kept within GitHub's limit");
}

#[tokio::test]
async fn a_rate_limited_request_waits_for_retry_after_and_posts_once() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(11, &sha(1), CLEAN_PATCH));
    github.fail_next_with(
        "POST",
        &format!("/repos/{OWNER}/{REPO}/issues/11/comments"),
        support::fake_github::Failure::too_many_requests(1),
        1,
    );
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 11, &sha(1)),
    )
    .await;
    let posted = wait_until(WAIT, || github.bot_comments(OWNER, REPO, 11).len() == 1).await;
    assert!(posted, "the comment is posted after the rate limit lifts");
    settle(&app).await;
    assert_eq!(github.bot_comments(OWNER, REPO, 11).len(), 1);
    assert_eq!(github.check_runs(OWNER, REPO).len(), 1);
}

#[tokio::test]
async fn a_pr_beyond_githubs_file_list_cap_fails_closed() {
    let github = fake_github().await;
    let files = (0..3100)
        .map(|i| {
            file_entry(
                &format!("src/f{i}.rs"),
                "added",
                Some("@@ -0,0 +1 @@\n+fn f() {}"),
            )
        })
        .collect();
    github.set_pull_request(
        OWNER,
        REPO,
        PrSpec {
            number: 12,
            head_sha: sha(1),
            files,
            ..PrSpec::default()
        },
    );
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 12, &sha(1)),
    )
    .await;
    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(
        run.conclusion.as_deref(),
        Some("failure"),
        "never a silent pass"
    );
    assert!(run.output_summary.unwrap_or_default().contains("3,000"));
}

#[tokio::test]
async fn two_processes_on_one_database_share_the_work_without_double_posting() {
    let github = fake_github().await;
    for n in 1..=8 {
        github.set_pull_request(OWNER, REPO, pr(200 + n, &sha(n as u32), SECRET_PATCH));
    }
    let first = TestApp::start(&github.url()).await;
    let second = TestApp::start_on(
        first.database_url.clone(),
        &github.url(),
        test_app::options(),
    )
    .await;
    for n in 1..=8 {
        let payload = pull_request_event("opened", OWNER, REPO, 200 + n, &sha(n as u32));
        let app = if n % 2 == 0 { &first } else { &second };
        assert_eq!(app.send_webhook("pull_request", &payload).await.0, 202);
        // A second delivery for the same pull request reaches the other process.
        let other = if n % 2 == 0 { &second } else { &first };
        assert_eq!(other.send_webhook("pull_request", &payload).await.0, 202);
    }
    let all_done = wait_until(WAIT, || {
        github
            .check_runs(OWNER, REPO)
            .iter()
            .filter(|c| c.status == "completed")
            .count()
            == 8
    })
    .await;
    assert!(all_done, "{:#?}", github.check_runs(OWNER, REPO));
    settle(&first).await;
    assert_eq!(
        github.check_runs(OWNER, REPO).len(),
        8,
        "one check run per head SHA"
    );
    for n in 1..=8 {
        assert_eq!(github.bot_comments(OWNER, REPO, 200 + n).len(), 1);
    }
    github.assert_clean();
}

#[tokio::test]
async fn an_ordinary_push_costs_at_most_five_github_calls() {
    let github = fake_github().await;
    github.set_pull_request(OWNER, REPO, pr(12, &sha(1), SECRET_PATCH));
    let app = TestApp::start(&github.url()).await;
    app.send_webhook(
        "pull_request",
        &pull_request_event("opened", OWNER, REPO, 12, &sha(1)),
    )
    .await;
    completed_check_run(&github, &sha(1)).await;
    settle(&app).await;
    let before = github.requests().len();

    github.set_pull_request(OWNER, REPO, pr(12, &sha(2), CLEAN_PATCH));
    app.send_webhook(
        "pull_request",
        &pull_request_event("synchronize", OWNER, REPO, 12, &sha(2)),
    )
    .await;
    let run = completed_check_run(&github, &sha(2)).await;
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    settle(&app).await;

    let calls: Vec<String> = github.requests()[before..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(calls.len() <= 5, "{} GitHub calls: {calls:#?}", calls.len());
    // The base branch's config was read for the first push and is not read again.
    assert!(
        !calls.iter().any(|c| c.contains("/contents/")),
        "{calls:#?}"
    );
    // The check run is created already completed: one request.
    assert_eq!(
        calls.iter().filter(|c| c.contains("/check-runs")).count(),
        1,
        "{calls:#?}"
    );
    assert_eq!(github.bot_comments(OWNER, REPO, 12).len(), 1);
    github.assert_clean();
}

/// A GitHub Enterprise Server behind an internal certificate authority: the fake GitHub answers
/// over HTTPS under `/api/v3` with a certificate of a test authority. With `GITHUB_CA_BUNDLE`
/// naming that authority the whole loop works: delivery, check run, sticky comment.
#[tokio::test]
async fn an_enterprise_server_with_an_internal_ca_is_trusted_through_github_ca_bundle() {
    let github = FakeGithub::start_https(test_app::APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    assert!(github.enterprise_url().starts_with("https://"));
    github.set_pull_request(OWNER, REPO, pr(1, &sha(1), SECRET_PATCH));
    let app = TestApp::start_configured(
        test_app::fresh_database().await,
        &github.enterprise_url(),
        test_app::options(),
        &[("GITHUB_CA_BUNDLE", support::tls::CA_BUNDLE.to_owned())],
    )
    .await;
    let (status, _) = app
        .send_webhook(
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 1, &sha(1)),
        )
        .await;
    assert_eq!(status, 202);
    let run = completed_check_run(&github, &sha(1)).await;
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    settle(&app).await;
    assert_eq!(github.bot_comments(OWNER, REPO, 1).len(), 1);
}

/// Without the bundle the same server is refused, and the error says which variable fixes it.
#[tokio::test]
async fn an_untrusted_certificate_is_an_error_naming_github_ca_bundle() {
    let github = FakeGithub::start_https(test_app::APP_ID, TEST_APP_KEY).await;
    let client = tollgate::github::GithubApp::new(
        &github.enterprise_url(),
        test_app::APP_ID,
        TEST_APP_KEY,
        None,
        &tollgate::outbound::Trust::system(),
    )
    .unwrap();
    let error = client.hook_deliveries(None).await.unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert!(error.to_string().contains("GITHUB_CA_BUNDLE"), "{error}");
}
