//! The release binary, run as users run it: its own process, configured by environment
//! variables, stopped with SIGKILL. `scripts/test` builds it (`cargo build --release --locked`)
//! and passes its path in `TOLLGATE_BIN`; without it the tests say so and skip, except in CI
//! (`CI` set), where they fail.

use super::fake_github::FakeGithub;
use super::smtp::free_port;
use super::test_app::{APP_ID, PRIVATE_KEY, WEBHOOK_SECRET, signed_webhook};
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The variables of the app against this fake GitHub (structured logs).
pub fn github_vars(github: &FakeGithub) -> Vec<(&'static str, String)> {
    vec![
        ("APP_ID", APP_ID.to_string()),
        ("PRIVATE_KEY", PRIVATE_KEY.to_owned()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("GITHUB_API_URL", github.url()),
        ("LOG_FORMAT", "json".to_owned()),
    ]
}

/// The release binary, or `None` (with a message saying why `test` is skipped).
pub fn release_binary(test: &str) -> Option<PathBuf> {
    match std::env::var_os("TOLLGATE_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "TOLLGATE_BIN={} is not a file",
                path.display()
            );
            Some(path)
        }
        None if std::env::var_os("CI").is_some() => panic!(
            "{test}: TOLLGATE_BIN is not set; CI must run the release binary (scripts/test builds it)"
        ),
        None => {
            eprintln!(
                "SKIPPED {test}: set TOLLGATE_BIN to a release build of tollgate \
                 (scripts/test builds one: cargo build --release --locked)"
            );
            None
        }
    }
}

/// `tollgate serve` running as a child process. Dropping it kills the process.
pub struct ReleaseApp {
    child: Child,
    binary: PathBuf,
    vars: Vec<(String, String)>,
    port: u16,
    log: PathBuf,
    pub database_url: String,
    http: reqwest::Client,
}

impl Drop for ReleaseApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ReleaseApp {
    /// Starts `binary serve` with exactly `vars` (plus `DATABASE_URL`, `HOST`, `PORT` and
    /// `PUBLIC_URL`) as its environment, in an empty directory (no `.env`), and waits until it is ready.
    pub async fn start(binary: &Path, database_url: &str, vars: &[(&str, String)]) -> Self {
        let port = free_port();
        let mut all: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        all.extend([
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            ("HOST".to_owned(), "127.0.0.1".to_owned()),
            ("PORT".to_owned(), port.to_string()),
            // The app's own address, so OAuth callbacks and links lead back to this process.
            ("PUBLIC_URL".to_owned(), format!("http://127.0.0.1:{port}")),
        ]);
        let log =
            std::env::temp_dir().join(format!("tollgate-release-{}.log", uuid::Uuid::new_v4()));
        let child = spawn(binary, &all, &log);
        let app = Self {
            child,
            binary: binary.to_owned(),
            vars: all,
            port,
            log,
            database_url: database_url.to_owned(),
            http: reqwest::Client::new(),
        };
        app.wait_ready().await;
        app
    }

    fn ready_url(&self) -> String {
        self.url("/readyz")
    }

    async fn wait_ready(&self) {
        for _ in 0..1500 {
            if let Ok(response) = self.http.get(self.ready_url()).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the release binary did not become ready; its log:\n{}",
            self.log_text()
        );
    }

    /// What the process wrote to stdout and stderr.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `kill -9`, then the same binary again on the same database, port and variables. Nothing
    /// is handed back by hand: the killed process's PostgreSQL session ends with it, and with
    /// it the advisory lock its claims carry, so the new process takes its jobs over at once
    /// (the 120 s lease would outlast the tests' waits).
    pub async fn crash_and_restart(&mut self) {
        self.kill();
        self.restart().await;
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL the app");
        self.child.wait().expect("the app exits");
    }

    /// The same binary again on the same database, port and variables, once it is ready.
    pub async fn restart(&mut self) {
        self.child = spawn(&self.binary, &self.vars, &self.log);
        self.wait_ready().await;
    }

    /// The process id, which begins the ids of the jobs it holds (`jobs.locked_by`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn db(&self) -> PgConnection {
        PgConnection::connect(&self.database_url)
            .await
            .expect("test database reachable")
    }

    /// Waits until no job is ready or running.
    pub async fn settle(&self) {
        let mut db = self.db().await;
        for _ in 0..3000 {
            let busy: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM jobs WHERE state IN ('pending', 'running') AND run_at <= now()",
            )
            .fetch_one(&mut db)
            .await
            .expect("jobs readable");
            if busy == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("jobs left unfinished; the app's log:\n{}", self.log_text());
    }

    /// Sends a delivery signed with `secret`, as GitHub would.
    pub async fn send_webhook(&self, secret: &str, event: &str, payload: &Value) -> u16 {
        signed_webhook(
            &self.http,
            self.url("/api/github/webhooks"),
            secret,
            event,
            payload,
        )
        .send()
        .await
        .expect("the app answers")
        .status()
        .as_u16()
    }
}

fn spawn(binary: &Path, vars: &[(String, String)], log: &Path) -> Child {
    let dir = log.with_extension("d");
    std::fs::create_dir_all(&dir).expect("working directory");
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("log file");
    let err = out.try_clone().expect("log file");
    Command::new(binary)
        .args(["serve", "--workers", "4"])
        .current_dir(&dir)
        .env_clear()
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", binary.display()))
}
