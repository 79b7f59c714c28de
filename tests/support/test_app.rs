//! The real app, started per test against a fresh PostgreSQL database and a fake GitHub.

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use std::time::Duration;
use tollgate::app::{Application, Role, RuntimeOptions};
use tollgate::clock::Clock;
use tollgate::config::AppSettings;
use tollgate::github::Pacing;
use tollgate::intake::sign;

pub const APP_ID: u64 = 4242;
pub const WEBHOOK_SECRET: &str = "test-webhook-secret";
pub const INSTALLATION_ID: i64 = 77;
pub const PRIVATE_KEY: &str = include_str!("../fixtures/test-app-key.pem");

/// The server's database URL for administrative statements (creating test databases).
pub fn admin_database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Creates an empty database for one test and returns its URL.
pub async fn fresh_database() -> String {
    let admin = admin_database_url();
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is reachable (run scripts/test)");
    let name = format!("tollgate_test_{}", uuid::Uuid::new_v4().simple());
    // The name is ours (a UUID), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("test role may create databases");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("DATABASE_URL ends with a database name");
    let query = admin
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{name}{query}")
}

pub fn settings(database_url: &str, github_url: &str) -> AppSettings {
    settings_with(database_url, github_url, &[])
}

pub const SLACK_TOKEN: &str = "xoxb-test-token";
pub const SLACK_SIGNING_SECRET: &str = "test-slack-signing-secret";
pub const SLACK_CHANNEL: &str = "C0ALERTS";
pub const SLACK_ESCALATION_CHANNEL: &str = "C0ESCALATE";

/// The variables that turn Slack on, against a fake Slack at `slack_api_url`.
pub fn slack_vars(slack_api_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("SLACK_BOT_TOKEN", SLACK_TOKEN.to_owned()),
        ("SLACK_SIGNING_SECRET", SLACK_SIGNING_SECRET.to_owned()),
        ("SLACK_CHANNEL", SLACK_CHANNEL.to_owned()),
        (
            "SLACK_ESCALATION_CHANNEL",
            SLACK_ESCALATION_CHANNEL.to_owned(),
        ),
        ("SLACK_API_URL", slack_api_url.to_owned()),
    ]
}

/// Test settings plus `extra` variables (which win).
pub fn settings_with(
    database_url: &str,
    github_url: &str,
    extra: &[(&'static str, String)],
) -> AppSettings {
    let mut vars = vec![
        ("APP_ID", APP_ID.to_string()),
        ("PRIVATE_KEY", PRIVATE_KEY.to_owned()),
        ("WEBHOOK_SECRET", format!("old-secret,{WEBHOOK_SECRET}")),
        ("DATABASE_URL", database_url.to_owned()),
        ("GITHUB_API_URL", github_url.to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("PORT", "0".to_owned()),
    ];
    vars.splice(0..0, extra.iter().cloned());
    AppSettings::from_lookup(&|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .expect("test settings are valid")
}

pub fn options() -> RuntimeOptions {
    RuntimeOptions {
        role: Role::All,
        migrate: true,
        workers: 4,
        job_lease: Duration::from_secs(3),
        pacing: Some(Pacing::default()),
        redelivery: None,
        clock: Clock::system(),
        digest_interval: Duration::from_millis(100),
    }
}

pub struct TestApp {
    pub app: Application,
    pub database_url: String,
    pub github_url: String,
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn start(github_url: &str) -> Self {
        Self::start_on(fresh_database().await, github_url, options()).await
    }

    pub async fn start_on(database_url: String, github_url: &str, options: RuntimeOptions) -> Self {
        Self::start_configured(database_url, github_url, options, &[]).await
    }

    pub async fn start_configured(
        database_url: String,
        github_url: &str,
        options: RuntimeOptions,
        extra: &[(&'static str, String)],
    ) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = settings_with(&database_url, github_url, extra);
        let app = Application::build(&settings, options)
            .await
            .expect("the app starts");
        Self {
            app,
            database_url,
            github_url: github_url.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.app.address())
    }

    pub async fn db(&self) -> PgConnection {
        PgConnection::connect(&self.database_url)
            .await
            .expect("test database reachable")
    }

    /// Sends a delivery signed as GitHub would, with a fresh delivery id.
    pub async fn send_webhook(&self, event: &str, payload: &Value) -> (u16, Value) {
        let id = uuid::Uuid::new_v4().to_string();
        self.send_delivery(&id, event, payload).await
    }

    /// A signed delivery request, ready to send (from any task).
    pub fn signed_request(&self, event: &str, payload: &Value) -> reqwest::RequestBuilder {
        signed_webhook(
            &self.http,
            self.url("/api/github/webhooks"),
            WEBHOOK_SECRET,
            event,
            payload,
        )
    }

    pub async fn send_delivery(
        &self,
        delivery_id: &str,
        event: &str,
        payload: &Value,
    ) -> (u16, Value) {
        let body = serde_json::to_vec(payload).expect("payload serializes");
        let signature = sign(WEBHOOK_SECRET, &body);
        self.post_raw(
            delivery_id,
            event,
            "application/json",
            body,
            Some(&signature),
        )
        .await
    }

    pub async fn post_raw(
        &self,
        delivery_id: &str,
        event: &str,
        content_type: &str,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .post(self.url("/api/github/webhooks"))
            .header("content-type", content_type)
            .header("x-github-event", event)
            .header("x-github-delivery", delivery_id)
            .header("user-agent", "GitHub-Hookshot/test")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        let response = request.send().await.expect("the app answers");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let mut db = self.db().await;
        sqlx::query_scalar(sql)
            .fetch_one(&mut db)
            .await
            .expect("count query runs")
    }

    /// Waits until no job is ready or running (scheduled ones, such as escalations, may wait).
    pub async fn settle(&self) {
        for _ in 0..1500 {
            let busy = self
                .count(
                    "SELECT count(*) FROM jobs
                     WHERE state IN ('pending', 'running') AND run_at <= now()",
                )
                .await;
            if busy == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("jobs left unfinished");
    }

    /// Moves the database's clock forward: alerts recorded and jobs scheduled so far happened
    /// `minutes` earlier. Then wakes the workers and waits for what became due.
    pub async fn advance_clock(&self, minutes: i32) {
        let mut db = self.db().await;
        for sql in [
            "UPDATE alerts SET created_at = created_at - make_interval(mins => $1),
                 escalate_at = escalate_at - make_interval(mins => $1)",
            "UPDATE jobs SET run_at = run_at - make_interval(mins => $1)
             WHERE state = 'pending'",
        ] {
            sqlx::query(sql)
                .bind(minutes)
                .execute(&mut db)
                .await
                .expect("clock moves");
        }
        // Wake the workers rather than wait for their poll.
        sqlx::query("SELECT pg_notify('tollgate_jobs', '')")
            .execute(&mut db)
            .await
            .expect("notify");
        self.settle().await;
    }

    /// Jobs not yet finished (pending or running).
    pub async fn unfinished_jobs(&self) -> i64 {
        self.count("SELECT count(*) FROM jobs WHERE state IN ('pending', 'running')")
            .await
    }
}

/// A `pull_request` delivery as GitHub sends it (the fields Tollgate reads, plus some context).
pub fn pull_request_event(
    action: &str,
    owner: &str,
    repo: &str,
    number: u64,
    head_sha: &str,
) -> Value {
    json!({
        "action": action,
        "number": number,
        "pull_request": {
            "number": number,
            "state": "open",
            "draft": false,
            "title": "feat: add things",
            "body": "Adds things.",
            "user": { "login": "alice", "type": "User" },
            "head": { "ref": "feature", "sha": head_sha },
            "base": { "ref": "main", "sha": "base0000000000000000000000000000000000000" }
        },
        "repository": repository(owner, repo),
        "installation": { "id": INSTALLATION_ID },
        "sender": { "login": "alice", "type": "User" }
    })
}

/// An `issue_comment` `created` delivery for a comment on pull request `number`.
pub fn issue_comment_event(
    owner: &str,
    repo: &str,
    number: u64,
    comment_id: u64,
    author: &str,
    body: &str,
) -> Value {
    json!({
        "action": "created",
        "issue": {
            "number": number,
            "title": "feat: add things",
            "user": { "login": "alice", "type": "User" },
            "pull_request": { "url": format!("https://api.github.com/repos/{owner}/{repo}/pulls/{number}") }
        },
        "comment": {
            "id": comment_id,
            "body": body,
            "user": { "login": author, "type": "User", "id": 9000 },
            "author_association": "MEMBER"
        },
        "repository": repository(owner, repo),
        "installation": { "id": INSTALLATION_ID },
        "sender": { "login": author, "type": "User" }
    })
}

/// The `repository` object of the test deliveries.
fn repository(owner: &str, repo: &str) -> Value {
    json!({
        "id": 1001,
        "name": repo,
        "full_name": format!("{owner}/{repo}"),
        "owner": { "login": owner, "type": "Organization" },
        "private": true
    })
}

/// A delivery to `url` signed with `secret`, as GitHub sends it, with a fresh delivery id.
pub fn signed_webhook(
    http: &reqwest::Client,
    url: String,
    secret: &str,
    event: &str,
    payload: &Value,
) -> reqwest::RequestBuilder {
    let body = serde_json::to_vec(payload).expect("payload serializes");
    http.post(url)
        .header("content-type", "application/json")
        .header("x-github-event", event)
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", sign(secret, &body))
        .body(body)
}
