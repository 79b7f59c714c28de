//! Email alerts, digests and PagerDuty end to end: the real app against the fake GitHub, a real
//! SMTP server on loopback (aiosmtpd, read back from its Maildir), a fake PagerDuty and a fresh
//! PostgreSQL database per test. Digest times come from a clock the test sets.

mod support;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;
use std::time::{Duration, Instant};
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::fake_pagerduty::FakePagerDuty;
use support::patches::{SECRET_PATCH, WORKFLOW_PATCH, base_sha, sha};
use support::smtp::{ReceivedMail, SmtpSink, free_port, smtp_available, smtp_url};
use support::test_app::{self, INSTALLATION_ID, TestApp, pull_request_event};
use support::{TEST_APP_KEY, wait_until};
use tollgate::app::RuntimeOptions;
use tollgate::clock::Clock;

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const WAIT: Duration = Duration::from_secs(30);
const PUBLIC_URL: &str = "https://tollgate.acme.test";
const ONCALL: &str = "oncall@acme.test";
const COMPLIANCE: &str = "compliance@acme.test";
const TEAM: &str = "team@acme.test";
const CTO: &str = "cto@acme.test";
const ROUTING_KEY: &str = "R0UTINGKEY0000000000000000000000";

const CLEAN_PATCH: &str = "@@ -0,0 +1,2 @@\n+import os\n+print(os.name)";

/// The installation config used unless a test says otherwise.
const ALERTS: &str = "
alerts:
  recipients:
    tier1: [oncall@acme.test]
    tier2: [compliance@acme.test]
    tier3: [team@acme.test]
    escalation: [cto@acme.test]
  timezone: Europe/Berlin
  tier2: { threshold: 2, send_at: '09:00' }
  tier3: { threshold: 2, send_at: '10:00', day: monday }
";

/// Where a patch goes: workflow changes under .github/workflows, code under app/.
fn path_of(patch: &str) -> &'static str {
    if patch == WORKFLOW_PATCH {
        ".github/workflows/ci.yml"
    } else {
        "app/settings.py"
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

struct World {
    github: FakeGithub,
    app: TestApp,
    clock: Clock,
}

struct Setup<'a> {
    smtp_port: u16,
    installation_config: &'a str,
    pagerduty: Option<&'a FakePagerDuty>,
    database: Option<String>,
    clock: Clock,
}

impl<'a> Setup<'a> {
    fn new(smtp_port: u16) -> Self {
        Self {
            smtp_port,
            installation_config: ALERTS,
            pagerduty: None,
            database: None,
            clock: Clock::manual(utc(2026, 12, 6, 12, 0)),
        }
    }
}

impl World {
    async fn start(setup: Setup<'_>) -> Self {
        let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
        github.add_installation(INSTALLATION_ID as u64);
        github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
        github.add_repo(INSTALLATION_ID as u64, OWNER, ".github");
        github.set_file(
            OWNER,
            ".github",
            "main",
            "tollgate.yml",
            setup.installation_config,
        );
        github.set_file(
            OWNER,
            REPO,
            &base_sha(),
            ".github/tollgate.yml",
            "threshold: 70\n",
        );
        Self::start_with(github, setup).await
    }

    async fn start_with(github: FakeGithub, setup: Setup<'_>) -> Self {
        let clock = setup.clock.clone();
        let app = start_app(&github.url(), setup).await;
        Self { github, app, clock }
    }

    /// Opens (or pushes to) pull request `number` with one file and waits for the jobs to end.
    async fn push(&self, action: &str, number: u64, head: u32, patch: &str) {
        let head = sha(head);
        self.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number,
                title: "feat: add settings".into(),
                author: "alice".into(),
                head_sha: head.clone(),
                base_sha: base_sha(),
                files: vec![file_entry(path_of(patch), "added", Some(patch))],
                ..PrSpec::default()
            },
        );
        self.app
            .send_webhook(
                "pull_request",
                &pull_request_event(action, OWNER, REPO, number, &head),
            )
            .await;
        self.app.settle().await;
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        self.app.count(sql).await
    }

    /// Dates every violation stored so far at `at`, so digests can be placed on the calendar.
    async fn date_violations(&self, at: DateTime<Utc>) {
        let mut db = self.app.db().await;
        sqlx::query("UPDATE violations SET created_at = $1")
            .bind(at)
            .execute(&mut db)
            .await
            .expect("violations dated");
    }

    /// Sets the app's clock and lets the digest scheduler tick.
    async fn at(&self, now: DateTime<Utc>) {
        self.clock.set(now);
        // Two ticks of the scheduler (100 ms apart in tests), then whatever they queued.
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.app.settle().await;
    }

    /// The decisions taken on digests of one tier, oldest first.
    async fn statuses_of(&self, tier: &str) -> Vec<String> {
        let mut db = self.app.db().await;
        sqlx::query_scalar("SELECT status FROM digests WHERE tier = $1 ORDER BY period_start")
            .bind(tier)
            .fetch_all(&mut db)
            .await
            .expect("digests readable")
    }

    /// Dates the violations of some pull requests at `at`.
    async fn date_violations_of(&self, pull_requests: &[i32], at: DateTime<Utc>) {
        let mut db = self.app.db().await;
        sqlx::query(
            "UPDATE violations v SET created_at = $1 FROM evaluations e
             WHERE e.id = v.evaluation_id AND e.pr_number = ANY($2)",
        )
        .bind(at)
        .bind(pull_requests)
        .execute(&mut db)
        .await
        .expect("violations dated");
    }
}

/// The app with email on (and PagerDuty when the setup has it).
async fn start_app(github_url: &str, setup: Setup<'_>) -> TestApp {
    let mut vars = vec![
        ("SMTP_URL", smtp_url(setup.smtp_port)),
        ("EMAIL_FROM", "Tollgate <tollgate@acme.test>".to_owned()),
        ("PUBLIC_URL", PUBLIC_URL.to_owned()),
    ];
    if let Some(pagerduty) = setup.pagerduty {
        vars.push(("PAGERDUTY_ROUTING_KEY", pagerduty.routing_key()));
        vars.push(("PAGERDUTY_API_URL", pagerduty.url()));
    }
    let options = RuntimeOptions {
        clock: setup.clock,
        // The fake has no secondary rate limit: measure the app, not the pacer.
        pacing: None,
        ..test_app::options()
    };
    let database = match setup.database {
        Some(database) => database,
        None => test_app::fresh_database().await,
    };
    TestApp::start_configured(database, github_url, options, &vars).await
}

/// The acknowledge link of a message, pointed at the running app.
fn ack_link(mail: &ReceivedMail, app: &TestApp) -> String {
    let start = mail
        .text
        .find(&format!("{PUBLIC_URL}/alerts/ack/"))
        .expect("the email has an acknowledge link");
    let link: String = mail.text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    link.replace(PUBLIC_URL, &app.url(""))
}

async fn wait_for_mail(sink: &SmtpSink, count: usize) -> Vec<ReceivedMail> {
    assert!(
        wait_until(WAIT, || sink.messages().len() >= count).await,
        "expected {count} messages, got {:?}",
        sink.messages()
            .iter()
            .map(|m| m.subject.clone())
            .collect::<Vec<_>>()
    );
    sink.messages()
}

#[tokio::test]
async fn a_block_violation_emails_tier1_with_a_working_single_use_ack_link() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let world = World::start(Setup::new(sink.port)).await;
    world.push("opened", 1, 1, SECRET_PATCH).await;

    let mails = wait_for_mail(&sink, 1).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, [ONCALL]);
    assert_eq!(mail.content_type, "multipart/alternative");
    assert!(
        mail.subject.contains("Tier 1: 1 BLOCK violation of R01")
            && mail.subject.contains("acme/widgets#1"),
        "{}",
        mail.subject
    );
    assert!(mail.text.contains("app/settings.py:2"), "{}", mail.text);
    // The link, escaped for HTML (minijinja escapes slashes too).
    let pr_link = format!("{}/acme/widgets/pull/1", world.github.url()).replace('/', "&#x2f;");
    assert!(
        mail.html.contains(&format!("<a href=\"{pr_link}\">")),
        "{}",
        mail.html
    );
    assert!(mail.message_id.contains("@tollgate"), "{}", mail.message_id);

    // The link opens a confirmation page (mail scanners follow links), and only a POST acts.
    let link = ack_link(mail, &world.app);
    let page = world.app.http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<form method=\"post\">")
    );
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM alerts WHERE status = 'open'")
            .await,
        1
    );
    let done = world
        .app
        .http
        .post(&link)
        .form(&[("by", "dana")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM alerts WHERE status = 'acknowledged'")
            .await,
        1
    );
    assert_eq!(
        world
            .scalar(
                "SELECT count(*) FROM audit_log
                 WHERE action = 'alert.acknowledged' AND actor = 'email:dana (email link)'"
            )
            .await,
        1
    );
    // Single use, and a forged link is refused.
    let again = world.app.http.post(&link).send().await.unwrap();
    assert_eq!(again.status(), 410);
    let forged = link.replace("alert-", "alert-9");
    let refused = world.app.http.post(&forged).send().await.unwrap();
    assert_eq!(refused.status(), 403);

    // Acknowledged: no escalation when the window ends.
    world.app.advance_clock(16).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM notification_attempts WHERE outcome = 'sent'")
            .await,
        1
    );
    world.github.assert_clean();
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_by_email_and_pagerduty_then_resolves_the_incident() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let pagerduty = FakePagerDuty::start(ROUTING_KEY).await;
    let mut setup = Setup::new(sink.port);
    setup.pagerduty = Some(&pagerduty);
    let world = World::start(setup).await;
    // The first attempt at PagerDuty fails: the retry must not open a second incident.
    pagerduty.fail_next(1);
    world.push("opened", 1, 1, SECRET_PATCH).await;
    wait_for_mail(&sink, 1).await;

    world.app.advance_clock(14).await;
    assert!(pagerduty.events().is_empty(), "not before 15 minutes");
    world.app.advance_clock(2).await;
    assert!(
        wait_until(WAIT, || !pagerduty.events().is_empty()).await,
        "PagerDuty triggered"
    );
    let mails = wait_for_mail(&sink, 2).await;
    let escalation = &mails[1];
    assert_eq!(escalation.to, [CTO]);
    assert!(
        escalation
            .subject
            .starts_with("[Tollgate] ESCALATED: Tier 1: 1 BLOCK violation of R01")
    );
    assert!(
        escalation
            .text
            .contains("not acknowledged within 15 minutes")
    );

    // The secret is removed: the alert resolves, and so does the incident, same dedup key.
    world.push("synchronize", 1, 2, CLEAN_PATCH).await;
    assert!(
        wait_until(WAIT, || pagerduty.events().len() == 2).await,
        "{:?}",
        pagerduty.events()
    );
    let events = pagerduty.events();
    assert_eq!(events[0]["event_action"], "trigger");
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[0]["dedup_key"], events[1]["dedup_key"]);
    assert!(
        events[0]["payload"]["summary"]
            .as_str()
            .is_some_and(|s| s.contains("R01"))
    );
    assert_eq!(pagerduty.incidents().len(), 1, "one incident");
    assert_eq!(
        pagerduty.incidents().values().next().map(String::as_str),
        Some("resolved")
    );
    assert!(
        pagerduty.rejections().is_empty(),
        "{:?}",
        pagerduty.rejections()
    );
    assert_eq!(
        world
            .scalar(
                "SELECT count(*) FROM notification_attempts
                 WHERE channel = 'pagerduty' AND outcome = 'failed'"
            )
            .await,
        1,
        "the failed attempt is recorded"
    );
    world.app.advance_clock(60).await;
    assert_eq!(sink.messages().len(), 2, "escalated once");
}

#[tokio::test]
async fn an_smtp_outage_delays_the_alert_which_then_arrives_once() {
    if !smtp_available() {
        return;
    }
    let port = free_port();
    let world = World::start(Setup::new(port)).await;
    world.push("opened", 1, 1, SECRET_PATCH).await;
    // The relay is down: the attempt fails, is recorded, and the job waits to retry.
    let mut db = world.app.db().await;
    let mut failed = 0;
    for _ in 0..500 {
        failed = sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM notification_attempts WHERE outcome = 'failed'",
        )
        .fetch_one(&mut db)
        .await
        .unwrap();
        if failed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0, "the failed attempt is recorded");

    let sink = SmtpSink::start_on(port).await;
    let mails = wait_for_mail(&sink, 1).await;
    assert_eq!(mails[0].to, [ONCALL]);
    world.app.settle().await;
    world.app.advance_clock(1).await;
    assert_eq!(sink.messages().len(), 1, "delivered once");
    let status: String = sqlx::query_scalar("SELECT status FROM email_messages")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(status, "sent");
}

/// Two pull requests with a workflow change each (R09, OVERRIDE tier): two Tier 2 items.
async fn two_override_tier_violations(world: &World, on: DateTime<Utc>) {
    world.push("opened", 1, 1, WORKFLOW_PATCH).await;
    world.push("opened", 2, 2, WORKFLOW_PATCH).await;
    world.date_violations(on).await;
}

#[tokio::test]
async fn the_daily_digest_goes_out_at_send_time_in_the_installation_time_zone_once() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let database = test_app::fresh_database().await;
    // Sunday: quiet, so nothing is decided before the violations are dated.
    let clock = Clock::manual(utc(2026, 12, 6, 12, 0));
    let mut setup = Setup::new(sink.port);
    setup.database = Some(database.clone());
    setup.clock = clock.clone();
    let world = World::start(setup).await;
    // Monday 7 December, 12:00 UTC.
    two_override_tier_violations(&world, utc(2026, 12, 7, 12, 0)).await;
    // A second replica on the same database, GitHub and clock: the digest is still sent once.
    let mut replica_setup = Setup::new(sink.port);
    replica_setup.database = Some(database);
    replica_setup.clock = clock.clone();
    let _replica = start_app(&world.github.url(), replica_setup).await;

    // 09:00 in Berlin is 08:00 UTC.
    world.at(utc(2026, 12, 8, 7, 59)).await;
    assert!(sink.messages().is_empty(), "not before 09:00 local time");
    world.at(utc(2026, 12, 8, 8, 0)).await;
    let mails = wait_for_mail(&sink, 1).await;
    world.at(utc(2026, 12, 8, 8, 5)).await;
    assert_eq!(sink.messages().len(), 1, "sent once by two replicas");
    let digest = &mails[0];
    assert_eq!(digest.to, [COMPLIANCE]);
    assert_eq!(
        digest.subject,
        "[Tollgate] Tier 2 daily digest: 2 OVERRIDE-tier violations in acme"
    );
    assert!(digest.text.contains("acme/widgets"), "{}", digest.text);
    assert!(digest.text.contains("R09"), "{}", digest.text);
    let pr_link = format!("{}/acme/widgets/pull/2", world.github.url());
    assert!(digest.text.contains(&pr_link), "{}", digest.text);
    assert!(
        digest
            .text
            .contains("Mon 7 Dec 09:00 – Tue 8 Dec 09:00 (Europe/Berlin)")
    );
    assert!(digest.text.contains(&format!("{PUBLIC_URL}/dashboard/")));
    let daily = world.statuses_of("OVERRIDE").await;
    assert_eq!(
        daily.last().map(String::as_str),
        Some("sending"),
        "{daily:?}"
    );
    assert_eq!(daily.iter().filter(|s| *s == "sending").count(), 1);
}

#[tokio::test]
async fn digests_wait_for_the_threshold_and_the_end_of_quiet_hours() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let world = World::start(Setup::new(sink.port)).await;
    // Friday 4 December, 13:00 in Berlin: one violation, below the threshold of 2.
    world.push("opened", 1, 1, WORKFLOW_PATCH).await;
    world.date_violations(utc(2026, 12, 4, 12, 0)).await;
    // Friday 17:00 in Berlin: Friday's digest (Thursday to Friday 09:00) is decided.
    world.at(utc(2026, 12, 4, 16, 0)).await;
    assert_eq!(world.statuses_of("OVERRIDE").await, ["below_threshold"]);
    // Friday evening and the weekend are quiet: nothing more is decided.
    world.at(utc(2026, 12, 4, 20, 0)).await;
    world.at(utc(2026, 12, 5, 9, 0)).await;
    world.at(utc(2026, 12, 6, 12, 0)).await;
    assert_eq!(world.statuses_of("OVERRIDE").await.len(), 1);
    // Monday 09:00 in Berlin: the period since Friday's send has one item, still below 2.
    world.at(utc(2026, 12, 7, 8, 0)).await;
    assert_eq!(
        world.statuses_of("OVERRIDE").await,
        ["below_threshold", "below_threshold"]
    );
    assert!(sink.messages().is_empty(), "below the threshold: no email");
}

#[tokio::test]
async fn the_weekly_digest_summarises_warnings_against_the_week_before() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let config = "
alerts:
  recipients: { tier3: [team@acme.test] }
  tier3: { threshold: 2, send_at: '10:00', day: monday }
";
    let mut setup = Setup::new(sink.port);
    setup.installation_config = config;
    let world = World::start(setup).await;
    // An OVERRIDE-tier change re-tiered to WARNING by the repository config: warnings.
    world.github.set_file(
        OWNER,
        REPO,
        &base_sha(),
        ".github/tollgate.yml",
        "rules:\n  R09: { tier: WARNING }\n",
    );
    two_override_tier_violations(&world, utc(2026, 12, 3, 12, 0)).await;
    world.at(utc(2026, 12, 7, 9, 59)).await;
    assert!(sink.messages().is_empty());
    world.at(utc(2026, 12, 7, 10, 0)).await;
    let mails = wait_for_mail(&sink, 1).await;
    let digest = &mails[0];
    assert_eq!(digest.to, [TEAM]);
    assert_eq!(
        digest.subject,
        "[Tollgate] Tier 3 weekly digest: 2 warnings in acme (up 2)"
    );
    assert!(digest.text.contains("R09"), "{}", digest.text);
    assert!(digest.text.contains("acme/widgets: 2"), "{}", digest.text);
}

#[tokio::test]
async fn an_unacknowledged_tier2_digest_escalates_by_email_and_an_acknowledged_one_does_not() {
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let world = World::start(Setup::new(sink.port)).await;
    two_override_tier_violations(&world, utc(2026, 12, 7, 12, 0)).await;
    world.at(utc(2026, 12, 8, 8, 0)).await;
    wait_for_mail(&sink, 1).await;
    // Four hours (tier2_hours) later nobody acknowledged it.
    world.app.advance_clock(4 * 60 + 1).await;
    let mails = wait_for_mail(&sink, 2).await;
    assert_eq!(mails[1].to, [CTO]);
    assert!(
        mails[1]
            .subject
            .starts_with("[Tollgate] ESCALATED: unacknowledged Tier 2 daily digest"),
        "{}",
        mails[1].subject
    );

    // The next day's digest is acknowledged from its link: no escalation.
    world.push("opened", 3, 3, WORKFLOW_PATCH).await;
    world.push("opened", 4, 4, WORKFLOW_PATCH).await;
    world
        .date_violations_of(&[3, 4], utc(2026, 12, 8, 12, 0))
        .await;
    world.at(utc(2026, 12, 9, 8, 0)).await;
    let mails = wait_for_mail(&sink, 3).await;
    let link = ack_link(&mails[2], &world.app);
    let done = world.app.http.post(&link).send().await.unwrap();
    assert_eq!(done.status(), 200);
    world.app.advance_clock(4 * 60 + 1).await;
    assert_eq!(sink.messages().len(), 3, "acknowledged: not escalated");
}

#[tokio::test]
async fn without_smtp_email_is_off_and_readiness_says_so() {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    let app = TestApp::start(&github.url()).await;
    let ready: Value = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        ready["email"]
            .as_str()
            .is_some_and(|s| s.starts_with("off")),
        "{ready}"
    );
    assert!(
        ready["pagerduty"]
            .as_str()
            .is_some_and(|s| s.starts_with("off")),
        "{ready}"
    );
}

/// The seed's load scenario: 50 BLOCK violations detected at once (one per pull request) are
/// all emailed, once each, well within a minute. Prints the time it took.
#[tokio::test]
async fn fifty_block_alerts_at_once_are_all_delivered_once() {
    if !smtp_available() {
        return;
    }
    const PULL_REQUESTS: u64 = 50;
    let sink = SmtpSink::start().await;
    let world = World::start(Setup::new(sink.port)).await;
    let started = Instant::now();
    let mut deliveries = Vec::new();
    for number in 1..=PULL_REQUESTS {
        let head = sha(u32::try_from(number).unwrap());
        world.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number,
                title: format!("feat: change {number}"),
                author: "alice".into(),
                head_sha: head.clone(),
                base_sha: base_sha(),
                files: vec![file_entry("app/settings.py", "added", Some(SECRET_PATCH))],
                ..PrSpec::default()
            },
        );
        deliveries.push(
            world
                .app
                .signed_request(
                    "pull_request",
                    &pull_request_event("opened", OWNER, REPO, number, &head),
                )
                .send(),
        );
    }
    for delivery in join_spawned(deliveries).await {
        assert_eq!(delivery.expect("delivered").status(), 202);
    }
    let count = usize::try_from(PULL_REQUESTS).unwrap();
    let mails = wait_for_mail(&sink, count).await;
    let elapsed = started.elapsed();
    world.app.settle().await;
    assert_eq!(sink.messages().len(), count, "no duplicates");
    let mut subjects: Vec<String> = mails.iter().map(|m| m.subject.clone()).collect();
    subjects.sort();
    subjects.dedup();
    assert_eq!(subjects.len(), count, "one alert per pull request");
    println!(
        "load: {PULL_REQUESTS} BLOCK alerts delivered by email in {:.2} s (target < 60 s)",
        elapsed.as_secs_f64()
    );
}

/// Runs the futures as tasks at once and waits for them all.
async fn join_spawned<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("task ends"));
    }
    outputs
}
