//! Grouped intake commits: concurrent deliveries are written together, each answered after the
//! commit, with the same outcome as one at a time (duplicates, coalesced jobs, a bad payload
//! failing only its own request).

mod support;

use serde_json::json;
use std::collections::HashMap;
use support::test_app::{self, TestApp, pull_request_event};
use tollgate::app::{Role, RuntimeOptions};
use tollgate::jobs::NewJob;
use tollgate::store::{DeliveryRecord, DeliveryStatus, DeliveryWithJobs, record_deliveries};

fn delivery<'a>(id: &'a str, payload: &'a str) -> DeliveryRecord<'a> {
    DeliveryRecord {
        delivery_id: id,
        event: "pull_request",
        action: Some("synchronize"),
        installation_id: Some(7),
        status: DeliveryStatus::Queued,
        ignored_reason: None,
        payload_json: payload,
    }
}

fn job(key: &str, n: u32) -> NewJob {
    NewJob {
        kind: "test",
        payload: json!({ "n": n }),
        installation_id: Some(7),
        dedup_key: key.to_owned(),
        max_attempts: 3,
    }
}

#[tokio::test]
async fn one_statement_stores_a_batch_and_coalesces_its_jobs() {
    let url = test_app::fresh_database().await;
    let pool = tollgate::store::connect(&url).await.unwrap();
    tollgate::store::migrate(&pool).await.unwrap();
    let first = [job("pr:1", 1)];
    let before = [DeliveryWithJobs {
        delivery: delivery("d-old", "{}"),
        jobs: &first,
    }];
    assert_eq!(record_deliveries(&pool, &before).await.unwrap(), [true]);

    let (a, b, c) = ([job("pr:1", 2)], [job("pr:2", 3)], [job("pr:2", 4)]);
    let none: [NewJob; 0] = [];
    let batch = [
        DeliveryWithJobs {
            delivery: delivery("d-1", r#"{"a": 1}"#),
            jobs: &a,
        },
        DeliveryWithJobs {
            delivery: delivery("d-old", "{}"),
            jobs: &none,
        },
        DeliveryWithJobs {
            delivery: delivery("d-2", "{}"),
            jobs: &b,
        },
        DeliveryWithJobs {
            delivery: delivery("d-3", "{}"),
            jobs: &c,
        },
    ];
    assert_eq!(
        record_deliveries(&pool, &batch).await.unwrap(),
        [true, false, true, true]
    );
    let jobs: Vec<(String, serde_json::Value)> =
        sqlx::query_as("SELECT dedup_key, payload FROM jobs ORDER BY dedup_key")
            .fetch_all(&pool)
            .await
            .unwrap();
    // One pending job per key, carrying the last payload of the batch.
    assert_eq!(
        jobs,
        [
            ("pr:1".to_owned(), json!({"n": 2})),
            ("pr:2".to_owned(), json!({"n": 4}))
        ]
    );
    // The payload text is kept byte for byte as received.
    let stored: String =
        sqlx::query_scalar("SELECT payload FROM webhook_deliveries WHERE delivery_id = 'd-1'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(stored, r#"{"a": 1}"#);
}

#[tokio::test]
async fn concurrent_deliveries_are_all_answered_after_they_are_stored() {
    let github_url = "http://127.0.0.1:9"; // never called: the intake makes no GitHub call
    let web_only = RuntimeOptions {
        role: Role::Web,
        ..test_app::options()
    };
    let app = TestApp::start_on(test_app::fresh_database().await, github_url, web_only).await;
    let mut requests = Vec::new();
    for n in 0..60u64 {
        let payload = pull_request_event(
            "synchronize",
            "acme",
            "widgets",
            n % 6,
            &format!("{n:040x}"),
        );
        requests.push(app.signed_request("pull_request", &payload));
    }
    // The same delivery five times at once: stored once.
    let repeated = pull_request_event(
        "synchronize",
        "acme",
        "widgets",
        99,
        &format!("{:040x}", 99),
    );
    let body = serde_json::to_vec(&repeated).unwrap();
    for _ in 0..5 {
        requests.push(
            app.http
                .post(app.url("/api/github/webhooks"))
                .header("content-type", "application/json")
                .header("x-github-event", "pull_request")
                .header("x-github-delivery", "the-same-delivery")
                .header(
                    "x-hub-signature-256",
                    tollgate::intake::sign(test_app::WEBHOOK_SECRET, &body),
                )
                .body(body.clone()),
        );
    }
    // A delivery PostgreSQL refuses (a NUL character in a text column: its action) fails alone.
    let poison = br#"{"zen": "z", "hook_id": 1, "action": "\u0000"}"#.to_vec();
    requests.push(
        app.http
            .post(app.url("/api/github/webhooks"))
            .header("content-type", "application/json")
            .header("x-github-event", "ping")
            .header("x-github-delivery", "the-poison")
            .header(
                "x-hub-signature-256",
                tollgate::intake::sign(test_app::WEBHOOK_SECRET, &poison),
            )
            .body(poison),
    );
    let answers: Vec<u16> = futures_join(requests).await;
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for status in &answers {
        *by_status.entry(*status).or_default() += 1;
    }
    // 60 + 1 accepted, 4 duplicates, the poison refused.
    assert_eq!(by_status.get(&202), Some(&61), "{by_status:?}");
    assert_eq!(by_status.get(&200), Some(&4), "{by_status:?}");
    assert_eq!(by_status.get(&503), Some(&1), "{by_status:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_deliveries").await,
        61
    );
    // Six pull requests plus the repeated one: one pending job each.
    assert_eq!(
        app.count("SELECT count(*) FROM jobs WHERE state = 'pending'")
            .await,
        7
    );
}

/// Sends every request at once, each on its own task, and returns the statuses in order.
async fn futures_join(requests: Vec<reqwest::RequestBuilder>) -> Vec<u16> {
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| tokio::spawn(async move { request.send().await.unwrap().status().as_u16() }))
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}
