//! The load scenarios of the operations plan, on loopback: the real app (`Role::All`, 4 workers,
//! the default GitHub write budget) against the fake GitHub and the fake Slack, with a fresh
//! PostgreSQL database each. Figures, not assertions: machines are noisy.
//!
//! 1. `prs`: 20 open pull requests are all updated at once (20 `synchronize` deliveries sent
//!    concurrently); for each, the time from the send to a completed check run on its new head.
//!    They were opened beforehand by an app whose writes are not counted, as if a while ago: 40
//!    writes for the opening plus 40 for the update in one minute would spend the write budget.
//!    Target: every evaluation completed in under 2 s.
//! 2. `alerts`: 50 BLOCK violations at once: 50 pull requests, each adding a leaked key (R01),
//!    opened concurrently, spread over 5 installations of 10 (one installation's write budget,
//!    75 a minute, would pace 50 evaluations of 2 writes each past a minute by itself); the time
//!    until Slack holds every alert, and how many alerts each pull request got. Target: every
//!    alert delivered in under a minute, none twice.
//!
//! 3. `burst`: GitHub's secondary limit switched on (80 writes a minute per installation) and 50
//!    pull requests opened at once on installation A, whose write budget (75 a minute) paces them
//!    over more than a minute; a second after the burst starts, one pull request adding a leaked
//!    key on installation B. The time from B's delivery to its completed check run and to its
//!    Tier 1 email in a real SMTP server (aiosmtpd on loopback), and how far A's burst had got.
//!    Target: both under 5 s — a busy installation never stalls another.
//!
//! Run with `cargo bench --bench scenarios` (PostgreSQL must answer; `source scripts/postgres.sh
//! && ensure_postgres` exports DATABASE_URL); `-- prs` or `-- alerts` runs one. Every wait is
//! bounded. `-- recovery` (`recovery_bench`, below) needs the release binary.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use support::TEST_APP_KEY;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::fake_slack::FakeSlack;
use support::percentile;
use support::smtp::{SmtpSink, smtp_available};
use support::test_app::{self, INSTALLATION_ID, TestApp, pull_request_event};
use tokio::time::Instant;
use tollgate::app::RuntimeOptions;
use tollgate::notify::slack::ACTION_ACKNOWLEDGE_ALERT;

const CLEAN_PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";
const POLL: Duration = Duration::from_millis(5);
const BOUND: Duration = Duration::from_secs(180);

fn sha(n: usize, generation: usize) -> String {
    format!("{generation:08x}{n:032x}")
}

fn leaky_patch(n: usize) -> String {
    // Split so that this file holds no real-format key itself.
    format!(
        "@@ -0,0 +1,2 @@\n+import os\n+KEY = \"AKIA{}{n:04}\"",
        "Z7Q3XK2M4N5P"
    )
}

fn pr(number: usize, head: &str, patch: &str) -> PrSpec {
    PrSpec {
        number: number as u64,
        title: "feat: load".into(),
        head_sha: head.to_owned(),
        files: vec![file_entry("app/settings.py", "added", Some(patch))],
        ..PrSpec::default()
    }
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// Scenario 1: 20 pull requests updated at once.
async fn twenty_prs_updated_at_once() {
    const PRS: usize = 20;
    let (owner, repo) = ("acme", "widgets");
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, owner, repo);
    for n in 1..=PRS {
        github.set_pull_request(owner, repo, pr(n, &sha(n, 1), CLEAN_PATCH));
    }
    // Open them first, as a while ago: by an app whose writes are not counted, so the update
    // round starts with the installation's write budget unspent (the first evaluation of a pull
    // request also reads its config and looks for an old comment).
    let database_url = test_app::fresh_database().await;
    let unpaced = RuntimeOptions {
        pacing: None,
        ..test_app::options()
    };
    let mut opener = TestApp::start_on(database_url.clone(), &github.url(), unpaced).await;
    for n in 1..=PRS {
        let payload = pull_request_event("opened", owner, repo, n as u64, &sha(n, 1));
        opener.send_webhook("pull_request", &payload).await;
    }
    let opened = wait_for(&opener, || {
        completed_heads(&github, owner, repo, 1, PRS) == PRS
    })
    .await;
    opener.app.stop().await;
    if !opened {
        println!("prs: the pull requests were not opened in time");
        return;
    }
    let before = github.write_count();
    let app = TestApp::start_on(database_url, &github.url(), test_app::options()).await;

    for n in 1..=PRS {
        github.set_pull_request(owner, repo, pr(n, &sha(n, 2), CLEAN_PATCH));
    }
    let started = Instant::now();
    let sends: Vec<_> = (1..=PRS)
        .map(|n| {
            let payload = pull_request_event("synchronize", owner, repo, n as u64, &sha(n, 2));
            app.signed_request("pull_request", &payload).send()
        })
        .collect();
    for send in futures_all(sends).await {
        assert!(send.is_ok_and(|r| r.status().is_success()));
    }
    let mut done: HashMap<usize, Duration> = HashMap::new();
    while done.len() < PRS && started.elapsed() < BOUND {
        let runs = github.check_runs(owner, repo);
        for n in 1..=PRS {
            if !done.contains_key(&n)
                && runs
                    .iter()
                    .any(|r| r.head_sha == sha(n, 2) && r.status == "completed")
            {
                done.insert(n, started.elapsed());
            }
        }
        tokio::time::sleep(POLL).await;
    }
    let mut times: Vec<Duration> = done.values().copied().collect();
    times.sort();
    let under = times
        .iter()
        .filter(|t| **t < Duration::from_secs(2))
        .count();
    println!(
        "prs: {PRS} pull requests updated at once: {} evaluated; send → completed check run: p50 {}, p90 {}, max {}; {under}/{PRS} under 2 s (target: all)",
        times.len(),
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 90.0)),
        ms(times.last().copied().unwrap_or_default()),
    );
    println!(
        "prs: GitHub writes of the update round: {}; refused by GitHub: {}",
        github.write_count() - before,
        refused(&github)
    );
}

/// Scenario 2: 50 BLOCK violations at once.
async fn fifty_block_violations_at_once() {
    const PRS: usize = 50;
    const INSTALLATIONS: usize = 5;
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    let slack = FakeSlack::start(
        test_app::SLACK_TOKEN,
        &[test_app::SLACK_CHANNEL, test_app::SLACK_ESCALATION_CHANNEL],
    )
    .await;
    // Pull request n lives in repository n % 5, of installation 100 + n % 5.
    let place = |n: usize| {
        let k = n % INSTALLATIONS;
        (100 + k as u64, format!("widgets-{k}"), 2000 + k as i64)
    };
    for k in 0..INSTALLATIONS {
        github.add_installation(100 + k as u64);
        github.add_repo(100 + k as u64, "acme", &format!("widgets-{k}"));
    }
    for n in 1..=PRS {
        let (_, repo, _) = place(n);
        github.set_pull_request("acme", &repo, pr(n, &sha(n, 1), &leaky_patch(n)));
    }
    let app = TestApp::start_configured(
        test_app::fresh_database().await,
        &github.url(),
        test_app::options(),
        &test_app::slack_vars(&slack.api_url()),
    )
    .await;
    let payloads: Vec<Value> = (1..=PRS)
        .map(|n| {
            let (installation, repo, repo_id) = place(n);
            let mut payload = pull_request_event("opened", "acme", &repo, n as u64, &sha(n, 1));
            payload["installation"] = json!({ "id": installation });
            payload["repository"]["id"] = json!(repo_id);
            payload
        })
        .collect();
    let started = Instant::now();
    let sends: Vec<_> = payloads
        .iter()
        .map(|payload| app.signed_request("pull_request", payload).send())
        .collect();
    for send in futures_all(sends).await {
        assert!(send.is_ok_and(|r| r.status().is_success()));
    }
    let alerts = |slack: &FakeSlack| {
        slack
            .messages()
            .into_iter()
            .filter(|m| {
                m.channel == test_app::SLACK_CHANNEL
                    && m.thread_ts.is_none()
                    && m.blocks
                        .as_ref()
                        .is_some_and(|b| b.to_string().contains(ACTION_ACKNOWLEDGE_ALERT))
            })
            .count()
    };
    let mut all_at = None;
    while started.elapsed() < BOUND {
        if alerts(&slack) >= PRS {
            all_at = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // Alerts are recorded before they are sent: the table shows any duplicate.
    let per_pr: Vec<(i64, i64, i64)> =
        sqlx::query_as("SELECT repository_id, pr_number::int8, count(*) FROM alerts GROUP BY 1, 2")
            .fetch_all(&mut app.db().await)
            .await
            .unwrap_or_default();
    let twice = per_pr.iter().filter(|(_, _, c)| *c > 1).count();
    match all_at {
        Some(at) => println!(
            "alerts: {PRS} BLOCK violations at once ({INSTALLATIONS} installations): every alert in Slack after {} (target: < 60 s); alert messages {}, pull requests alerted {}, alerted twice {twice} (target: 0)",
            ms(at),
            alerts(&slack),
            per_pr.len(),
        ),
        None => println!(
            "alerts: only {} of {PRS} alerts after {} s",
            alerts(&slack),
            BOUND.as_secs()
        ),
    }
    println!("alerts: refused by GitHub: {}", refused(&github));
}

/// Scenario 3: a BLOCK pull request on one installation during a 50-PR burst on another.
async fn a_block_during_another_installations_burst() {
    const PRS: usize = 50;
    const ONCALL: &str = "oncall@beta.test";
    let (busy, quiet) = (100_u64, 200_u64);
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    github.set_secondary_limit(80, Duration::from_secs(60));
    github.add_installation(busy);
    github.add_repo(busy, "acme", "widgets");
    github.add_installation(quiet);
    github.add_repo(quiet, "beta", "gadgets");
    github.add_repo(quiet, "beta", ".github");
    github.set_file(
        "beta",
        ".github",
        "main",
        "tollgate.yml",
        &format!("alerts:\n  recipients:\n    tier1: [{ONCALL}]\n"),
    );
    for n in 1..=PRS {
        github.set_pull_request("acme", "widgets", pr(n, &sha(n, 1), CLEAN_PATCH));
    }
    github.set_pull_request("beta", "gadgets", pr(1, &sha(1, 9), &leaky_patch(1)));
    if !smtp_available() {
        println!("burst: skipped (no SMTP server: pip install aiosmtpd)");
        return;
    }
    let sink = SmtpSink::start().await;
    let app = TestApp::start_configured(
        test_app::fresh_database().await,
        &github.url(),
        test_app::options(),
        &[
            ("SMTP_URL", sink.url()),
            ("EMAIL_FROM", "Tollgate <tollgate@acme.test>".to_owned()),
            ("PUBLIC_URL", "https://tollgate.acme.test".to_owned()),
        ],
    )
    .await;
    let event =
        |installation: u64, owner: &str, repo: &str, repo_id: i64, n: usize, head: String| {
            let mut payload = pull_request_event("opened", owner, repo, n as u64, &head);
            payload["installation"] = json!({ "id": installation });
            payload["repository"]["id"] = json!(repo_id);
            payload
        };
    let started = Instant::now();
    let sends: Vec<_> = (1..=PRS)
        .map(|n| {
            let payload = event(busy, "acme", "widgets", 1000, n, sha(n, 1));
            app.signed_request("pull_request", &payload).send()
        })
        .collect();
    for send in futures_all(sends).await {
        assert!(send.is_ok_and(|r| r.status().is_success()));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let payload = event(quiet, "beta", "gadgets", 2000, 1, sha(1, 9));
    let sent = Instant::now();
    let _ = app.signed_request("pull_request", &payload).send().await;
    let (mut checked, mut mailed) = (None, None);
    let mut busy_done_at_check = 0;
    while (checked.is_none() || mailed.is_none()) && sent.elapsed() < BOUND {
        if checked.is_none()
            && github
                .check_runs("beta", "gadgets")
                .iter()
                .any(|r| r.status == "completed")
        {
            checked = Some(sent.elapsed());
            busy_done_at_check = completed_heads(&github, "acme", "widgets", 1, PRS);
        }
        if mailed.is_none()
            && sink
                .messages()
                .iter()
                .any(|m| m.to.iter().any(|t| t == ONCALL))
        {
            mailed = Some(sent.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    let show = |at: Option<Duration>| at.map_or_else(|| "never".to_owned(), ms);
    println!(
        "burst: B's BLOCK pull request during A's {PRS}-PR burst: completed check run after {}, Tier 1 email after {} (target: both < 5 s); A had {busy_done_at_check}/{PRS} evaluated by then",
        show(checked),
        show(mailed),
    );
    // Not `wait_for`: B's alert keeps its escalation job waiting, so the queue is never idle.
    while completed_heads(&github, "acme", "widgets", 1, PRS) < PRS && started.elapsed() < BOUND {
        tokio::time::sleep(POLL).await;
    }
    let all_busy = completed_heads(&github, "acme", "widgets", 1, PRS) == PRS;
    println!(
        "burst: A's burst {} after {}; refused by GitHub: {}",
        if all_busy { "finished" } else { "unfinished" },
        ms(started.elapsed()),
        refused(&github)
    );
}

fn refused(github: &FakeGithub) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| matches!(r.status, 403 | 429))
        .count()
}

/// Heads of generation `generation` with a completed check run.
fn completed_heads(
    github: &FakeGithub,
    owner: &str,
    repo: &str,
    generation: usize,
    prs: usize,
) -> usize {
    let runs = github.check_runs(owner, repo);
    (1..=prs)
        .filter(|n| {
            runs.iter()
                .any(|r| r.head_sha == sha(*n, generation) && r.status == "completed")
        })
        .count()
}

/// Waits until `condition` holds and the queue is idle, within [`BOUND`].
async fn wait_for(app: &TestApp, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + BOUND;
    while Instant::now() < deadline {
        if condition() && app.unfinished_jobs().await == 0 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

async fn futures_all<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for task in tasks {
        if let Ok(output) = task.await {
            outputs.push(output);
        }
    }
    outputs
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "tollgate load scenarios, {} ({} cores, loopback)",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("prs") {
        twenty_prs_updated_at_once().await;
    }
    if wanted("alerts") {
        fifty_block_violations_at_once().await;
    }
    if wanted("burst") {
        a_block_during_another_installations_burst().await;
    }
}
