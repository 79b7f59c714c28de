//! A GitHub Enterprise Server of a given release: the app learns the release from `GET /meta`
//! at start and from each delivery's `X-GitHub-Enterprise-Version`, shows it on `/api/health`,
//! and turns off what the release lacks. A binary of its own: the server the app talks to is
//! known per process.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::test_app::{self, INSTALLATION_ID, TestApp, pull_request_event};
use support::{TEST_APP_KEY, wait_until};

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const WAIT: Duration = Duration::from_secs(30);

async fn github_details(app: &TestApp) -> Value {
    let health: Value = app
        .http
        .get(app.url("/api/health"))
        .send()
        .await
        .expect("health answers")
        .json()
        .await
        .expect("health is JSON");
    health["checks"]["github"]["details"].clone()
}

fn merge_group_event(head_sha: &str) -> Value {
    json!({
        "action": "checks_requested",
        "merge_group": {
            "head_sha": head_sha,
            "head_ref": format!("refs/heads/gh-readonly-queue/main/pr-1-{head_sha}"),
            "base_sha": "base0000000000000000000000000000000000000",
            "base_ref": "refs/heads/main",
            "head_commit": { "id": head_sha, "message": "Merge pull request #1" }
        },
        "repository": {
            "id": 1296269, "name": REPO, "full_name": format!("{OWNER}/{REPO}"),
            "owner": { "login": OWNER, "id": 1 }, "default_branch": "main"
        },
        "installation": { "id": INSTALLATION_ID },
        "sender": { "login": "github-merge-queue[bot]", "type": "Bot" }
    })
}

#[tokio::test]
async fn the_server_release_is_learnt_shown_and_gates_merge_queues() {
    let github = FakeGithub::start_https(test_app::APP_ID, TEST_APP_KEY).await;
    github.set_enterprise_version("3.11.4");
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    github.set_pull_request(
        OWNER,
        REPO,
        PrSpec {
            number: 1,
            head_sha: "1".repeat(40),
            files: vec![file_entry(
                "app/main.py",
                "added",
                Some("@@ -0,0 +1 @@\n+print(1)"),
            )],
            ..PrSpec::default()
        },
    );
    let app = TestApp::start_configured(
        test_app::fresh_database().await,
        &github.enterprise_url(),
        test_app::options(),
        &[("GITHUB_CA_BUNDLE", support::tls::CA_BUNDLE.to_owned())],
    )
    .await;

    // From GET /meta at start.
    let mut details = Value::Null;
    for _ in 0..300 {
        details = github_details(&app).await;
        if details["server"].is_string() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        details["server"], "GitHub Enterprise Server 3.11.4",
        "{details}"
    );
    assert_eq!(details["enterprise_version"], "3.11.4");
    assert_eq!(github.meta_requests(), 1, "asked once, at start");
    assert!(
        details["features_off"]["merge_queue"]
            .as_str()
            .is_some_and(|reason| reason.contains("3.12.0")),
        "{details}"
    );

    // A merge group on a release without merge queues is recorded and left alone.
    let answer: Value = app
        .signed_request("merge_group", &merge_group_event(&"2".repeat(40)))
        .header("X-GitHub-Enterprise-Version", "3.11.4")
        .send()
        .await
        .expect("delivered")
        .json()
        .await
        .expect("JSON answer");
    assert_eq!(answer["status"], "ignored", "{answer}");
    assert!(
        answer["reason"]
            .as_str()
            .is_some_and(|r| r.contains("merge queues are off")),
        "{answer}"
    );

    // An upgrade shows in the next delivery's header.
    let status = app
        .signed_request(
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 1, &"1".repeat(40)),
        )
        .header("X-GitHub-Enterprise-Version", "3.12.1")
        .send()
        .await
        .expect("delivered")
        .status();
    assert_eq!(status, 202);
    let details = github_details(&app).await;
    assert_eq!(details["enterprise_version"], "3.12.1", "{details}");
    assert!(details.get("features_off").is_none(), "{details}");

    // The whole loop works on the server, over its internal CA.
    assert!(
        wait_until(WAIT, || github
            .check_runs(OWNER, REPO)
            .iter()
            .any(|run| run.status == "completed"))
        .await
    );
    app.settle().await;
    github.assert_clean();
}
