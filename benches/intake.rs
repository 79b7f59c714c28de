//! Load benchmark of the webhook intake, and the end-to-end latency from a delivery to a completed
//! check run. Both run the real `tollgate::app::Application` on loopback against a fresh
//! PostgreSQL database (see `tests/support/test_app.rs`).
//!
//! 1. Intake: `Role::Web` (no workers, so only the intake is measured). 32 client tasks, each on
//!    its own keep-alive HTTP/1.1 connection, send 20,000 signed `pull_request` `synchronize`
//!    deliveries (distinct delivery ids, 500 pull requests, so coalescing is exercised) after 500
//!    warm-up deliveries. Per-request latency is send → full response.
//! 2. Delivery → completed check run: `Role::All` against the fake GitHub (no added latency),
//!    one pull request with a small clean patch; 100 times in a row: move its head, send a
//!    `synchronize` delivery, and time until the fake holds a completed check run on the new head
//!    (polled every millisecond). The queue is left to drain before the next sample. The write
//!    budget is lifted (the default, 75 writes a minute per installation, would measure the
//!    budget: each evaluation makes 2 writes, so about 1.6 s per sample after the first 37).
//!
//! Run with `cargo bench --bench intake` (PostgreSQL must answer; `source scripts/postgres.sh &&
//! ensure_postgres` exports DATABASE_URL); `cargo bench --bench intake -- intake` or `-- e2e` runs
//! one part. Figures, not assertions: machines are noisy. Every loop is bounded in count and time.
//! The databases the bench creates are dropped at the end.

#[path = "../tests/support/mod.rs"]
mod support;

use axum::body::Bytes;
use serde_json::Value;
use sqlx::PgConnection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use support::TEST_APP_KEY;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::percentile;
use support::test_app::{self, INSTALLATION_ID, TestApp, WEBHOOK_SECRET, pull_request_event};
use tokio::time::Instant;
use tollgate::app::{Role, RuntimeOptions};
use tollgate::intake::sign;

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const CLEAN_PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";

/// Intake load: deliveries, warm-up deliveries, client tasks, pull requests spread over.
const DELIVERIES: usize = 20_000;
const WARM_UP: usize = 500;
const CLIENTS: usize = 32;
const PULL_REQUESTS: usize = 500;
/// The measured intake phase stops taking new requests after this long.
const LOAD_BUDGET: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// End-to-end: samples, uncounted warm-up samples, the wait for one sample, the whole phase.
const E2E_SAMPLES: usize = 100;
const E2E_WARM_UP: usize = 3;
const E2E_TIMEOUT: Duration = Duration::from_secs(10);
const E2E_BUDGET: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(1);

/// One delivery, signed before the clock starts so the client does as little as possible.
struct Prepared {
    delivery_id: String,
    body: Bytes,
    signature: String,
}

fn prepare(count: usize, id_prefix: &str, pr_offset: u64) -> Vec<Prepared> {
    (0..count)
        .map(|i| {
            let number = pr_offset + (i % PULL_REQUESTS) as u64 + 1;
            let head = format!("{i:040x}");
            let payload = pull_request_event("synchronize", OWNER, REPO, number, &head);
            let body = serde_json::to_vec(&payload).expect("payload serializes");
            Prepared {
                delivery_id: format!("{id_prefix}-{i}-{}", uuid::Uuid::new_v4()),
                signature: sign(WEBHOOK_SECRET, &body),
                body: Bytes::from(body),
            }
        })
        .collect()
}

fn delivery_request(
    client: &reqwest::Client,
    url: &str,
    delivery: &Prepared,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/bench")
        .header("x-github-event", "pull_request")
        .header("x-github-delivery", &delivery.delivery_id)
        .header("x-hub-signature-256", &delivery.signature)
        .body(delivery.body.clone())
}

#[derive(Default)]
struct LoadResult {
    latencies: Vec<Duration>,
    /// Status → count; 0 counts transport errors and timeouts.
    statuses: BTreeMap<u16, usize>,
    wall: Duration,
}

/// Sends every delivery from one task per client (each client keeps one connection alive), until
/// all are sent or `budget` has passed.
async fn run_load(
    clients: &[reqwest::Client],
    url: &str,
    deliveries: Vec<Prepared>,
    budget: Duration,
) -> LoadResult {
    let deliveries = Arc::new(deliveries);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + budget;
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (client, url, deliveries, next) = (
            client.clone(),
            url.to_owned(),
            deliveries.clone(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut result = LoadResult::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= deliveries.len() || Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let status = match delivery_request(&client, &url, &deliveries[i]).send().await {
                    // Read the whole answer so the connection can carry the next request.
                    Ok(response) => {
                        let status = response.status().as_u16();
                        match response.bytes().await {
                            Ok(_) => status,
                            Err(_) => 0,
                        }
                    }
                    Err(_) => 0,
                };
                result.latencies.push(sent.elapsed());
                *result.statuses.entry(status).or_default() += 1;
            }
            result
        });
    }
    let mut total = LoadResult::default();
    for result in tasks.join_all().await {
        total.latencies.extend(result.latencies);
        for (status, count) in result.statuses {
            *total.statuses.entry(status).or_default() += count;
        }
    }
    total.wall = started.elapsed();
    total
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(name: &str, value: impl std::fmt::Display) {
    println!("| {name:<34} | {value:>16} |");
}

fn header(title: &str) {
    println!("\n{title}\n");
    println!("| {:<34} | {:>16} |", "measure", "value");
    println!("|{:-<36}|{:->17}:|", "", "");
}

fn latency_rows(prefix: &str, samples: &mut [Duration]) {
    samples.sort();
    for (name, p) in [("p50", 50.0), ("p90", 90.0), ("p99", 99.0)] {
        row(&format!("{prefix} {name}"), ms(percentile(samples, p)));
    }
    row(
        &format!("{prefix} max"),
        ms(samples.last().copied().unwrap_or_default()),
    );
}

async fn count(db: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .expect("count query runs")
}

async fn intake_throughput() {
    let options = RuntimeOptions {
        role: Role::Web,
        ..test_app::options()
    };
    // A web-only app never calls GitHub: any address will do.
    let app = TestApp::start_on(
        test_app::fresh_database().await,
        "http://127.0.0.1:9",
        options,
    )
    .await;
    let url = app.url("/api/github/webhooks");
    let clients: Vec<reqwest::Client> = (0..CLIENTS)
        .map(|_| {
            reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .tcp_nodelay(true)
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("HTTP client builds")
        })
        .collect();

    // Warm-up opens the connections and fills the database pool; its pull requests are others.
    let warm_up = run_load(
        &clients,
        &url,
        prepare(WARM_UP, "warm", 100_000),
        LOAD_BUDGET,
    )
    .await;
    let warm_accepted = warm_up.statuses.get(&202).copied().unwrap_or(0);

    let deliveries = prepare(DELIVERIES, "load", 0);
    let mut result = run_load(&clients, &url, deliveries, LOAD_BUDGET).await;

    let mut db = app.db().await;
    let stored = count(
        &mut db,
        "SELECT count(*) FROM webhook_deliveries WHERE delivery_id LIKE 'load-%'",
    )
    .await;
    let pending = count(
        &mut db,
        "SELECT count(*) FROM jobs WHERE state = 'pending' AND dedup_key NOT LIKE 'evaluate:%:100___'",
    )
    .await;
    let sent = result.latencies.len();
    let accepted = result.statuses.get(&202).copied().unwrap_or(0);
    let others: Vec<String> = result
        .statuses
        .iter()
        .filter(|(status, _)| **status != 202)
        .map(|(status, n)| {
            if *status == 0 {
                format!("error×{n}")
            } else {
                format!("{status}×{n}")
            }
        })
        .collect();

    header(&format!(
        "Intake (Role::Web): {DELIVERIES} signed pull_request deliveries over {PULL_REQUESTS} PRs, \
         {CLIENTS} keep-alive HTTP/1.1 clients, after {WARM_UP} warm-up ({warm_accepted} accepted)"
    ));
    row("sent", sent);
    row("accepted (202)", accepted);
    row(
        "other statuses",
        if others.is_empty() {
            "none".to_owned()
        } else {
            others.join(", ")
        },
    );
    row("wall time", format!("{:.2} s", result.wall.as_secs_f64()));
    row(
        "accepted deliveries/s",
        format!("{:.0}", accepted as f64 / result.wall.as_secs_f64()),
    );
    latency_rows("latency", &mut result.latencies);
    row("deliveries stored", stored);
    row("pending jobs (coalesced per PR)", pending);
    drop(db);
    finish(app).await;
}

/// Stops the app and drops its database (the bench's databases are large; tests' are not).
async fn finish(mut app: TestApp) {
    app.app.stop().await;
    let name = app.database_url.rsplit('/').next().unwrap_or_default();
    let name = name.split('?').next().unwrap_or_default().to_owned();
    if !name.starts_with("tollgate_test_") {
        return;
    }
    let admin = test_app::admin_database_url();
    let Ok(mut conn) = <PgConnection as sqlx::Connection>::connect(&admin).await else {
        return;
    };
    // The name is ours (a UUID from `fresh_database`), not input.
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
    {
        eprintln!("cannot drop the bench database {name}: {error}");
    }
}

fn pr_at(head: &str) -> PrSpec {
    PrSpec {
        number: 1,
        title: "feat: add settings".into(),
        head_sha: head.to_owned(),
        files: vec![file_entry("app/settings.py", "added", Some(CLEAN_PATCH))],
        ..PrSpec::default()
    }
}

/// One sample: move the head, deliver, wait for the completed check run, let the queue drain.
async fn one_round_trip(
    app: &TestApp,
    github: &FakeGithub,
    db: &mut PgConnection,
    n: usize,
) -> Result<Duration, String> {
    let head = format!("{:040x}", 0xe2e0_0000_u64 + n as u64);
    github.set_pull_request(OWNER, REPO, pr_at(&head));
    let payload: Value = pull_request_event("synchronize", OWNER, REPO, 1, &head);
    let request = app
        .signed_request("pull_request", &payload)
        .timeout(REQUEST_TIMEOUT);

    let sent = Instant::now();
    let response = request
        .send()
        .await
        .map_err(|e| format!("delivery not answered: {e}"))?;
    if response.status().as_u16() != 202 {
        return Err(format!("delivery answered {}", response.status()));
    }
    let deadline = sent + E2E_TIMEOUT;
    let elapsed = loop {
        let done = github
            .check_runs(OWNER, REPO)
            .iter()
            .any(|run| run.head_sha == head && run.status == "completed");
        if done {
            break sent.elapsed();
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "no completed check run on {head} within {E2E_TIMEOUT:?}"
            ));
        }
        tokio::time::sleep(POLL).await;
    };

    // The job goes on to the sticky comment and its bookkeeping: measure from an idle queue.
    let deadline = Instant::now() + E2E_TIMEOUT;
    while count(
        db,
        "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')",
    )
    .await
        > 0
    {
        if Instant::now() >= deadline {
            return Err("the queue did not drain".to_owned());
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(elapsed)
}

async fn delivery_to_check_run() {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    github.set_pull_request(OWNER, REPO, pr_at(&format!("{:040x}", 0xe2e0_0000_u64)));
    let options = RuntimeOptions {
        role: Role::All,
        job_lease: Duration::from_secs(30),
        // The fake has no secondary rate limit: measure the app, not the pacer.
        pacing: None,
        ..test_app::options()
    };
    let app = TestApp::start_on(test_app::fresh_database().await, &github.url(), options).await;
    let mut db = app.db().await;

    let started = Instant::now();
    let mut samples = Vec::with_capacity(E2E_SAMPLES);
    let mut failures = Vec::new();
    for n in 1..=E2E_WARM_UP + E2E_SAMPLES {
        if started.elapsed() >= E2E_BUDGET {
            failures.push(format!("stopped after {E2E_BUDGET:?}"));
            break;
        }
        match one_round_trip(&app, &github, &mut db, n).await {
            Ok(elapsed) if n > E2E_WARM_UP => samples.push(elapsed),
            Ok(_) => {}
            Err(problem) => failures.push(problem),
        }
    }
    let conclusions: BTreeMap<String, usize> =
        github
            .check_runs(OWNER, REPO)
            .iter()
            .fold(BTreeMap::new(), |mut counts, run| {
                *counts
                    .entry(run.conclusion.clone().unwrap_or_else(|| run.status.clone()))
                    .or_default() += 1;
                counts
            });

    header(&format!(
        "Delivery → completed check run (Role::All, {} workers, fake GitHub on loopback, \
         {E2E_SAMPLES} sequential synchronize deliveries after {E2E_WARM_UP} warm-up, polled every 1 ms)",
        test_app::options().workers
    ));
    row("samples", samples.len());
    row("failed samples", failures.len());
    latency_rows("delivery → completed", &mut samples);
    row(
        "check runs by conclusion",
        conclusions
            .iter()
            .map(|(c, n)| format!("{c}×{n}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    for problem in failures.iter().take(5) {
        println!("  problem: {problem}");
    }
    drop(db);
    finish(app).await;
}

#[tokio::main]
async fn main() {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    println!(
        "tollgate intake bench, {} ({cores} cores, loopback, PostgreSQL at {})",
        chrono::Utc::now().format("%Y-%m-%d"),
        test_app::admin_database_url()
            .split('@')
            .next_back()
            .unwrap_or("?"),
    );
    // `cargo bench` passes `--bench`; any other word names the parts to run.
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("intake") {
        intake_throughput().await;
    }
    if wanted("e2e") {
        delivery_to_check_run().await;
    }
}
