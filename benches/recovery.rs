//! Recovery after `kill -9`, with the release binary as its own process (`TOLLGATE_BIN`, else
//! `$CARGO_TARGET_DIR/release/tollgate` or `target/release/tollgate`: `cargo build --release`
//! first). Figures, not assertions: machines are noisy.
//!
//! 1. `restart`: ten pull requests opened at once; the process is killed while GitHub holds its
//!    answer to the first one's file list (its job running, its evaluation started), then
//!    started again. The time from the kill to the process answering `/readyz`, and to every
//!    pull request's completed check run. Target: the queue drains within 10 s of the restart.
//! 2. `failover`: the same with two processes on one database; the one holding the job is killed
//!    and not restarted. The time from the kill to the survivor's completed check run. Target:
//!    at once (no lease to wait out).
//!
//! Run with `cargo bench --bench recovery` (PostgreSQL must answer; `source scripts/postgres.sh
//! && ensure_postgres` exports DATABASE_URL); `-- restart` or `-- failover` runs one.

#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;
use support::TEST_APP_KEY;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::release::{ReleaseApp, github_vars};
use support::test_app::{self, APP_ID, INSTALLATION_ID, WEBHOOK_SECRET};
use tokio::time::Instant;

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const PRS: u64 = 10;
const PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";
const BOUND: Duration = Duration::from_secs(180);
const POLL: Duration = Duration::from_millis(5);

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

fn binary() -> Option<PathBuf> {
    let built = || {
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"),
            PathBuf::from,
        );
        target.join("release").join("tollgate")
    };
    let path = std::env::var_os("TOLLGATE_BIN").map_or_else(built, PathBuf::from);
    path.is_file().then_some(path)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// A fake GitHub with `PRS` open pull requests, and the first one's file list held.
fn github_with_prs(github: &FakeGithub) -> support::fake_github::Hold {
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    for n in 1..=PRS {
        github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number: n,
                head_sha: sha(n),
                files: vec![file_entry("app/settings.py", "added", Some(PATCH))],
                ..PrSpec::default()
            },
        );
    }
    github.hold("GET", &format!("/repos/{OWNER}/{REPO}/pulls/1/files"), 1)
}

async fn open_all(app: &ReleaseApp) {
    for n in 1..=PRS {
        let event = test_app::pull_request_event("opened", OWNER, REPO, n, &sha(n));
        let status = app
            .send_webhook(WEBHOOK_SECRET, "pull_request", &event)
            .await;
        assert_eq!(status, 202);
    }
}

fn completed(github: &FakeGithub) -> usize {
    github
        .check_runs(OWNER, REPO)
        .iter()
        .filter(|run| run.status == "completed")
        .count()
}

async fn until(mut condition: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < BOUND {
        if condition() {
            return Some(started.elapsed());
        }
        tokio::time::sleep(POLL).await;
    }
    None
}

async fn restart(binary: &Path) {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let hold = github_with_prs(&github);
    let database = test_app::fresh_database().await;
    let mut app = ReleaseApp::start(binary, &database, &github_vars(&github)).await;
    open_all(&app).await;
    if until(|| hold.reached()).await.is_none() {
        println!("restart: the held request never came");
        return;
    }
    let killed = Instant::now();
    app.kill();
    app.restart().await;
    let ready = killed.elapsed();
    let drained = until(|| completed(&github) == PRS as usize).await;
    hold.release();
    match drained {
        Some(_) => println!(
            "restart: kill -9 → ready again {}; → all {PRS} check runs completed {} ({} after ready; target: < 10 s)",
            ms(ready),
            ms(killed.elapsed()),
            ms(killed.elapsed() - ready)
        ),
        None => println!("restart: the queue did not drain within {BOUND:?}"),
    }
}

async fn failover(binary: &Path) {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let hold = github_with_prs(&github);
    let database = test_app::fresh_database().await;
    let mut first = ReleaseApp::start(binary, &database, &github_vars(&github)).await;
    let mut second = ReleaseApp::start(binary, &database, &github_vars(&github)).await;
    open_all(&first).await;
    if until(|| hold.reached()).await.is_none() {
        println!("failover: the held request never came");
        return;
    }
    // The job of pull request 1 is the one waiting on the held answer.
    let mut db = first.db().await;
    let holder: Option<String> = sqlx::query_scalar(
        "SELECT locked_by FROM jobs WHERE state = 'running' AND dedup_key LIKE 'evaluate:%:1'",
    )
    .fetch_optional(&mut db)
    .await
    .ok()
    .flatten();
    let Some(holder) = holder else {
        println!("failover: could not tell which process holds the job");
        return;
    };
    // The other process stays up (both live to the end of this function).
    let victim = if holder.starts_with(&format!("{}-", first.pid())) {
        &mut first
    } else {
        &mut second
    };
    victim.kill();
    let taken_over = until(|| {
        github
            .check_runs(OWNER, REPO)
            .iter()
            .any(|run| run.head_sha == sha(1) && run.status == "completed")
    })
    .await;
    hold.release();
    match taken_over {
        Some(after) => println!(
            "failover: kill -9 of the process holding a job → the other process completed its check run after {} (target: at once, no 120 s lease)",
            ms(after)
        ),
        None => println!("failover: the job was not taken over within {BOUND:?}"),
    }
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "tollgate recovery, {} ({} cores, loopback)",
        chrono::Utc::now().format("%Y-%m-%d"),
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    let Some(binary) = binary() else {
        println!("skipped: no release binary (cargo build --release, or set TOLLGATE_BIN)");
        return;
    };
    let parts: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let wanted = |part: &str| parts.is_empty() || parts.iter().any(|p| p == part);
    if wanted("restart") {
        restart(&binary).await;
    }
    if wanted("failover") {
        failover(&binary).await;
    }
}
