//! Operations: `/metrics`, the deep health check, JSON log context, retention with seeded old
//! rows, and the committed rule runbooks.

mod support;

use serde_json::Value;
use sqlx::{Connection, PgConnection};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::test_app::{self, INSTALLATION_ID, TestApp, pull_request_event};
use support::{TEST_APP_KEY, wait_until};
use tollgate::operations::retention::{self, RetentionSettings};
use tollgate::store::{self, RetentionCategory};

const OWNER: &str = "acme";
const REPO: &str = "ops";
const WAIT: Duration = Duration::from_secs(20);

async fn fake_github() -> FakeGithub {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    github.set_pull_request(
        OWNER,
        REPO,
        PrSpec {
            number: 5,
            title: "feat: add settings".into(),
            head_sha: sha(5),
            files: vec![file_entry(
                "app/settings.py",
                "added",
                Some("@@ -0,0 +1,2 @@\n+import os\n+print(os.name)"),
            )],
            ..PrSpec::default()
        },
    );
    github
}

fn sha(n: u32) -> String {
    format!("{n:040x}")
}

/// The value of one series in a Prometheus text page (0 when absent).
fn sample(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn metrics_page(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    response.text().await.unwrap()
}

/// Every JSON log line of this test binary, captured by one global subscriber.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || LogWriter(buffer.clone())
        };
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(tollgate::telemetry::json_layer(writer))
            .with(tollgate::telemetry::LogEventCounter);
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        buffer
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_lines(logs: &Mutex<Vec<u8>>) -> Vec<Value> {
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

#[tokio::test]
async fn metrics_count_a_delivery_its_job_evaluation_github_calls_and_http_routes() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let before = metrics_page(&app).await;
    let delivered = r#"tollgate_webhook_deliveries_total{event="pull_request",outcome="accepted"}"#;

    let (status, _) = app
        .send_webhook(
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 5, &sha(5)),
        )
        .await;
    assert_eq!(status, 202);
    let evaluated = wait_until(WAIT, || {
        github
            .check_runs(OWNER, REPO)
            .iter()
            .any(|c| c.status == "completed")
    })
    .await;
    assert!(evaluated, "the evaluation did not finish");
    let mut page = String::new();
    for _ in 0..250 {
        page = metrics_page(&app).await;
        if sample(
            &page,
            r#"tollgate_jobs_run_total{kind="evaluate_pr",outcome="completed"}"#,
        ) > 0.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    assert!(
        sample(&page, delivered) > sample(&before, delivered),
        "{page}"
    );
    for series in [
        r#"tollgate_webhook_intake_duration_seconds_count{outcome="accepted"}"#,
        r#"tollgate_jobs_run_total{kind="evaluate_pr",outcome="completed"}"#,
        r#"tollgate_evaluations_total{verdict="pass"}"#,
        r#"tollgate_evaluation_duration_seconds_count{verdict="pass"}"#,
        r#"tollgate_github_requests_total{method="GET",endpoint="/repos/{owner}/{repo}/pulls/{id}",status="200"}"#,
        r#"tollgate_http_request_duration_seconds_count{method="POST",route="/api/github/webhooks",status="202"}"#,
        r#"tollgate_db_pool_max_connections"#,
    ] {
        assert!(sample(&page, series) > 0.0, "{series} missing in\n{page}");
    }
    for present in [
        "tollgate_job_queue_depth ",
        "tollgate_job_oldest_ready_age_seconds ",
        r#"tollgate_db_pool_connections{state="idle"}"#,
        "tollgate_webhook_intake_duration_seconds_bucket{",
    ] {
        assert!(page.contains(present), "{present} missing in\n{page}");
    }
}

#[tokio::test]
async fn health_reports_every_check_and_turns_503_when_migrations_are_missing() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;

    let response = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["status"], "ok", "{report:#}");
    for check in [
        "database_pool",
        "query_time",
        "alert_delivery",
        "job_queue",
        "github",
        "migrations",
    ] {
        assert_eq!(
            report["checks"][check]["status"], "ok",
            "{check}: {report:#}"
        );
    }
    for probe in ["/healthz", "/readyz"] {
        let status = app.http.get(app.url(probe)).send().await.unwrap().status();
        assert_eq!(status, 200, "{probe}");
    }

    let mut db = app.db().await;
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&mut db)
    .await
    .unwrap();
    let response = app.http.get(app.url("/api/health")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["status"], "critical");
    assert_eq!(report["checks"]["migrations"]["status"], "critical");
}

#[tokio::test]
async fn json_logs_of_a_delivery_and_its_job_name_the_delivery_job_repository_and_pr() {
    let logs = captured_logs();
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let delivery_id = uuid::Uuid::new_v4().to_string();
    let (status, _) = app
        .send_delivery(
            &delivery_id,
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 5, &sha(5)),
        )
        .await;
    assert_eq!(status, 202);

    let of_this_delivery = |line: &Value| line["span"]["delivery_id"] == delivery_id.as_str();
    let job_line = |line: &Value| {
        line["span"]["name"] == "job"
            && line["span"]["repository"] == format!("{OWNER}/{REPO}")
            && line["message"] == "evaluation completed"
    };
    let found = wait_until(WAIT, || log_lines(&logs).iter().any(job_line)).await;
    assert!(found, "no job line with its context");
    let lines = log_lines(&logs);
    let stored = lines
        .iter()
        .find(|l| of_this_delivery(l) && l["message"] == "delivery stored")
        .expect("the delivery's line");
    assert_eq!(stored["span"]["event"], "pull_request");
    assert_eq!(stored["span"]["installation"], INSTALLATION_ID);
    assert_eq!(stored["span"]["repository"], format!("{OWNER}/{REPO}"));
    assert_eq!(stored["span"]["pr"], 5);
    let job = lines.iter().find(|l| job_line(l)).unwrap();
    assert!(job["span"]["job_id"].as_i64().is_some(), "{job}");
    assert_eq!(job["span"]["pr"], 5);
    assert_eq!(job["span"]["installation"], INSTALLATION_ID);
    assert_eq!(job["span"]["kind"], "evaluate_pr");

    // A refused delivery logs a warning, which the metrics count.
    let (status, _) = app
        .post_raw(
            "bad",
            "pull_request",
            "application/json",
            b"{}".to_vec(),
            None,
        )
        .await;
    assert_eq!(status, 401);
    let page = metrics_page(&app).await;
    assert!(sample(&page, r#"tollgate_log_events_total{level="warn"}"#) > 0.0);
}

/// A migrated database with one installation and repository, for the retention tests.
async fn seeded_database() -> (sqlx::PgPool, PgConnection) {
    let url = test_app::fresh_database().await;
    let pool = store::connect(&url).await.unwrap();
    store::migrate(&pool).await.unwrap();
    let mut db = PgConnection::connect(&url).await.unwrap();
    for statement in [
        "INSERT INTO installations (id, account_login) VALUES (77, 'acme')",
        "INSERT INTO repositories (id, installation_id, full_name) VALUES (1001, 77, 'acme/ops')",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    (pool, db)
}

/// Inserts an evaluation of pull request `pr` made `days` ago with one violation; returns its id.
async fn evaluation(db: &mut PgConnection, pr: i32, days: i32) -> i64 {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status,
                                  policy_digest, created_at)
         VALUES (77, 1001, $1, md5(random()::text), 'completed', 'd',
                 now() - make_interval(days => $2))
         RETURNING id",
    )
    .bind(pr)
    .bind(days)
    .fetch_one(&mut *db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, message,
                                 fingerprint, created_at)
         VALUES ($1, 77, 'R01', 'BLOCK', 'm', 'f', now() - make_interval(days => $2))",
    )
    .bind(id)
    .bind(days)
    .execute(&mut *db)
    .await
    .unwrap();
    id
}

async fn count(db: &mut PgConnection, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db).await.unwrap()
}

async fn seed_old_rows(db: &mut PgConnection) {
    // Pull request 1: evaluations 400, 100 and 10 days old. The 400-day one is past the trend
    // limit; the 100-day one's violation is resolved history; the latest stays whole.
    for days in [400, 100, 10] {
        evaluation(db, 1, days).await;
    }
    // Pull request 2: only one evaluation, 500 days old: its latest, kept with its violation.
    evaluation(db, 2, 500).await;
    for statement in [
        "INSERT INTO alerts (installation_id, repository_id, pr_number, rule_id, head_sha,
                             fingerprints, violations, status, escalate_at, created_at)
         VALUES (77, 1001, 1, 'R01', 's', '{}', '[]', 'resolved', now(), now() - interval '40 days'),
                (77, 1001, 1, 'R01', 's', '{}', '[]', 'open', now(), now() - interval '40 days'),
                (77, 1001, 1, 'R01', 's', '{}', '[]', 'resolved', now(), now() - interval '5 days')",
        // Both 40-day alerts escalated to PagerDuty; the closed one's event goes with it.
        "INSERT INTO pagerduty_events (installation_id, alert_id, action, dedup_key, status,
                                       created_at)
         SELECT 77, id, 'trigger', 'tollgate-alert-' || id, 'sent', created_at FROM alerts
         WHERE created_at < now() - interval '30 days'",
        "INSERT INTO notification_attempts (installation_id, channel, target, outcome, created_at)
         VALUES (77, 'email', 'email_message:1', 'sent', now() - interval '40 days'),
                (77, 'pagerduty', 'pagerduty_event:1', 'sent', now() - interval '5 days')",
        // Emails 40 days old: about the closed alert (goes after it), about the open one
        // (stays with it), a sent digest (goes) and one still pending (stays).
        "INSERT INTO email_messages (installation_id, kind, subject_id, recipients, message_id,
                                     status, created_at)
         SELECT 77, 'alert', id, '{sec@example.com}'::text[], 'alert-' || id || '@tollgate',
                'sent', created_at FROM alerts WHERE created_at < now() - interval '30 days'
         UNION ALL
         SELECT 77, 'digest', 1, '{sec@example.com}', 'digest-1@tollgate', 'sent',
                now() - interval '40 days'
         UNION ALL
         SELECT 77, 'digest', 2, '{sec@example.com}', 'digest-2@tollgate', 'pending',
                now() - interval '40 days'",
        "INSERT INTO webhook_deliveries (delivery_id, event, status, payload, received_at)
         VALUES ('old', 'ping', 'processed', '{}', now() - interval '31 days'),
                ('new', 'ping', 'processed', '{}', now())",
        "INSERT INTO jobs (kind, payload, dedup_key, state, finished_at)
         VALUES ('evaluate_pr', '{}', 'a', 'done', now() - interval '15 days'),
                ('evaluate_pr', '{}', 'b', 'failed', now() - interval '1 day')",
        "INSERT INTO audit_log (installation_id, actor, action, target, created_at)
         VALUES (77, 'carol', 'override.approved', 'override_request:1', now() - interval '5 years')",
    ] {
        sqlx::query(statement).execute(&mut *db).await.unwrap();
    }
}

#[tokio::test]
async fn retention_deletes_only_expired_rows_in_batches_and_a_dry_run_deletes_nothing() {
    let (pool, mut db) = seeded_database().await;
    seed_old_rows(&mut db).await;

    let dry = RetentionSettings {
        dry_run: true,
        ..RetentionSettings::default()
    };
    let counted = retention::apply(&pool, &dry).await.unwrap();
    assert_eq!(counted[&RetentionCategory::Evaluations], 1);
    assert_eq!(counted[&RetentionCategory::ResolvedViolations], 2);
    assert_eq!(counted[&RetentionCategory::ClosedAlerts], 1);
    assert_eq!(counted[&RetentionCategory::NotificationAttempts], 1);
    // Counted before any alert went: the closed alert's email is not counted yet.
    assert_eq!(counted[&RetentionCategory::EmailMessages], 1);
    assert_eq!(counted[&RetentionCategory::WebhookDeliveries], 1);
    assert_eq!(counted[&RetentionCategory::FinishedJobs], 1);
    assert_eq!(count(&mut db, "SELECT count(*) FROM evaluations").await, 4);
    assert_eq!(count(&mut db, "SELECT count(*) FROM violations").await, 4);

    // A batch of one row: every category needs several statements.
    let settings = RetentionSettings {
        batch_size: 1,
        ..RetentionSettings::default()
    };
    let deleted = retention::apply(&pool, &settings).await.unwrap();
    assert_eq!(deleted[&RetentionCategory::ResolvedViolations], 2);
    // The 400-day evaluation lost its violation first, so only the row itself is left to go.
    assert_eq!(deleted[&RetentionCategory::Evaluations], 1);
    assert_eq!(count(&mut db, "SELECT count(*) FROM evaluations").await, 3);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM violations").await,
        2,
        "the latest evaluation of each pull request keeps its violations"
    );
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM evaluations WHERE pr_number = 2"
        )
        .await,
        1
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM alerts").await,
        2,
        "open and recent alerts stay"
    );
    assert_eq!(deleted[&RetentionCategory::ClosedAlerts], 1);
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM pagerduty_events").await,
        1,
        "the open alert keeps its PagerDuty event"
    );
    assert_eq!(deleted[&RetentionCategory::NotificationAttempts], 1);
    assert_eq!(deleted[&RetentionCategory::EmailMessages], 2);
    assert_eq!(
        count(
            &mut db,
            "SELECT count(*) FROM email_messages
             WHERE (kind = 'alert' AND subject_id IN (SELECT id FROM alerts))
                OR status = 'pending'"
        )
        .await,
        2,
        "the open alert's email and the pending digest stay"
    );
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM jobs").await, 1);
    assert_eq!(count(&mut db, "SELECT count(*) FROM audit_log").await, 1);

    let again = retention::apply(&pool, &settings).await.unwrap();
    assert!(again.values().all(|rows| *rows == 0), "{again:?}");
}

#[tokio::test]
async fn a_category_that_fails_holds_up_none_of_the_others() {
    let (pool, mut db) = seeded_database().await;
    seed_old_rows(&mut db).await;
    // Closed alerts cannot be deleted (as before migration 0012, when a PagerDuty event
    // referenced them without a delete rule).
    for statement in [
        "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS
         $$ BEGIN RAISE EXCEPTION 'alerts are not deleted here'; END $$",
        "CREATE TRIGGER refuse_delete BEFORE DELETE ON alerts
         FOR EACH ROW EXECUTE FUNCTION refuse_delete()",
    ] {
        sqlx::query(statement).execute(&mut db).await.unwrap();
    }
    let error = retention::apply(&pool, &RetentionSettings::default())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("alerts are not deleted here"),
        "{error}"
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM alerts").await, 3);
    // The categories after it still ran.
    assert_eq!(
        count(&mut db, "SELECT count(*) FROM webhook_deliveries").await,
        1
    );
    assert_eq!(count(&mut db, "SELECT count(*) FROM jobs").await, 1);
    assert_eq!(count(&mut db, "SELECT count(*) FROM evaluations").await, 3);
}

#[tokio::test]
async fn the_daily_run_is_claimed_once_across_replicas() {
    let (pool, mut db) = seeded_database().await;
    seed_old_rows(&mut db).await;
    let day = chrono::NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
    let settings = RetentionSettings::default();

    let (first, second) = tokio::join!(
        retention::run_daily(&pool, &settings, day, "replica-a"),
        retention::run_daily(&pool, &settings, day, "replica-b"),
    );
    let runs = [first.unwrap(), second.unwrap()];
    assert_eq!(runs.iter().filter(|r| r.is_some()).count(), 1, "{runs:?}");
    let counts: Value = sqlx::query_scalar(
        "SELECT counts FROM retention_runs WHERE day = '2026-12-06' AND finished_at IS NOT NULL",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(counts["webhook_deliveries"], 1);
    assert!(
        retention::run_daily(&pool, &settings, day, "replica-a")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn a_worker_runs_todays_retention_at_start() {
    let github = fake_github().await;
    let app = TestApp::start(&github.url()).await;
    let mut db = app.db().await;
    let mut finished = false;
    for _ in 0..500 {
        finished = count(
            &mut db,
            "SELECT count(*) FROM retention_runs WHERE finished_at IS NOT NULL",
        )
        .await
            == 1;
        if finished {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(finished, "no retention run recorded");
}

#[test]
fn the_committed_rule_runbooks_are_current() {
    use tollgate::operations::runbooks;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks");
    let pages = runbooks::default_pages().unwrap();
    assert_eq!(pages.len(), 26, "an index and 25 rules");
    let stale = runbooks::stale_pages(&dir, &pages);
    assert!(
        stale.is_empty(),
        "stale runbook pages {stale:?}: run `cargo run -- runbooks` and commit the result"
    );
}

#[test]
fn the_operations_runbook_explains_every_health_check() {
    let runbook = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/runbooks/operations.md"
    ))
    .unwrap();
    for check in [
        "database_pool",
        "query_time",
        "alert_delivery",
        "job_queue",
        "github",
        "migrations",
    ] {
        assert!(
            runbook.contains(&format!("`{check}`")),
            "operations.md does not explain {check}"
        );
    }
}
