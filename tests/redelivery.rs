//! Automatic redelivery: failed deliveries that Tollgate never stored are asked for again, once,
//! against the fake GitHub's `GET /app/hook/deliveries` and `POST .../attempts`.

mod support;

use serde_json::json;
use std::time::Duration;
use support::fake_github::FakeGithub;
use support::test_app::{self, APP_ID, TestApp};
use support::{TEST_APP_KEY, wait_until};
use tollgate::app::RuntimeOptions;
use tollgate::github::GithubApp;
use tollgate::jobs::{RedeliveryPolicy, redeliver_failed};
use tollgate::outbound::Trust;

const WAIT: Duration = Duration::from_secs(20);

/// Polls `sql` (a count) until it gives `expected`, for up to 10 s.
async fn eventually_count(app: &TestApp, sql: &'static str, expected: i64) -> bool {
    for _ in 0..500 {
        if app.count(sql).await == expected {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

fn policy(max_per_run: usize) -> RedeliveryPolicy {
    RedeliveryPolicy {
        every: Duration::from_secs(3600),
        max_per_run,
        lookback: Duration::from_secs(24 * 3600),
    }
}

async fn setup() -> (FakeGithub, TestApp, sqlx::PgPool, GithubApp) {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let app = TestApp::start(&github.url()).await;
    let pool = tollgate::store::connect(&app.database_url).await.unwrap();
    let client =
        GithubApp::new(&github.url(), APP_ID, TEST_APP_KEY, None, &Trust::system()).unwrap();
    (github, app, pool, client)
}

/// Stores a delivery through the intake, as if GitHub had reached Tollgate.
async fn store_delivery(app: &TestApp, guid: &str) {
    let (status, _) = app
        .send_delivery(
            guid,
            "ping",
            &json!({"zen": "Keep it simple.", "hook_id": 1}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_failed_delivery_tollgate_never_stored_is_redelivered_once() {
    let (github, app, pool, client) = setup().await;
    let lost = github.add_hook_delivery("guid-lost", 503, 90);
    // Failed at GitHub's end, but Tollgate stored it: nothing is missing.
    github.add_hook_delivery("guid-stored", 0, 80);
    store_delivery(&app, "guid-stored").await;
    // Succeeded, or failed and then succeeded on a redelivery.
    github.add_hook_delivery("guid-ok", 202, 70);
    github.add_hook_delivery("guid-retried", 500, 60);
    github.add_hook_delivery("guid-retried", 202, 50);
    // Failed, but before the lookback.
    github.add_hook_delivery("guid-old", 500, 3 * 24 * 60);
    // Enough newer deliveries that the lost one is on a later page.
    for n in 0..150 {
        github.add_hook_delivery(&format!("guid-newer-{n}"), 202, 10);
    }

    let report = redeliver_failed(&pool, &client, &policy(10)).await.unwrap();
    assert_eq!(github.redelivery_requests(), vec![lost]);
    assert_eq!((report.missing, report.requested), (1, 1));
    let outcome: Option<String> =
        sqlx::query_scalar("SELECT outcome FROM webhook_redeliveries WHERE guid = 'guid-lost'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(outcome.as_deref(), Some("requested"));

    // Calls made as the app count in the metrics like an installation's.
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for endpoint in ["/app/hook/deliveries", "/app/hook/deliveries/{id}/attempts"] {
        assert!(
            metrics.contains(&format!("endpoint=\"{endpoint}\"")),
            "{endpoint}: {metrics}"
        );
    }

    // The redelivery failed too (Tollgate still down): it is not asked for a second time.
    github.add_hook_delivery("guid-lost", 503, 1);
    let again = redeliver_failed(&pool, &client, &policy(10)).await.unwrap();
    assert_eq!(github.redelivery_requests(), vec![lost]);
    assert_eq!(again.requested, 0);
    github.assert_clean();
}

#[tokio::test]
async fn a_run_asks_for_at_most_its_bound_oldest_first() {
    let (github, _app, pool, client) = setup().await;
    let first = github.add_hook_delivery("guid-1", 502, 30);
    let second = github.add_hook_delivery("guid-2", 502, 20);
    let third = github.add_hook_delivery("guid-3", 502, 10);
    let report = redeliver_failed(&pool, &client, &policy(2)).await.unwrap();
    assert_eq!((report.missing, report.requested), (3, 2));
    assert_eq!(github.redelivery_requests(), vec![first, second]);
    redeliver_failed(&pool, &client, &policy(2)).await.unwrap();
    assert_eq!(github.redelivery_requests(), vec![first, second, third]);
    github.assert_clean();
}

#[tokio::test]
async fn the_periodic_job_runs_once_across_replicas() {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let lost = github.add_hook_delivery("guid-lost", 503, 5);
    let options = RuntimeOptions {
        redelivery: Some(policy(10)),
        ..test_app::options()
    };
    let database_url = test_app::fresh_database().await;
    let first = TestApp::start_on(database_url.clone(), &github.url(), options.clone()).await;
    let second = TestApp::start_on(database_url, &github.url(), options).await;
    assert!(
        wait_until(WAIT, || !github.redelivery_requests().is_empty()).await,
        "no redelivery was requested"
    );
    // The run that asked has scheduled the next one, an hour away, under the one dedup key.
    let scheduled = eventually_count(
        &first,
        "SELECT count(*) FROM jobs WHERE kind = 'redeliver_webhooks'
           AND state = 'pending' AND run_at > now() + interval '50 minutes'",
        1,
    )
    .await;
    assert!(scheduled, "the next run is not scheduled");
    // The replica's run merged into the same schedule: one job waits, none is left running.
    let one_job = eventually_count(
        &second,
        "SELECT count(*) FROM jobs WHERE kind = 'redeliver_webhooks'
           AND state IN ('pending', 'running')",
        1,
    )
    .await;
    assert!(one_job, "more than one redelivery job is scheduled");
    assert_eq!(github.redelivery_requests(), vec![lost]);
    github.assert_clean();
}
