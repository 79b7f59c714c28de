//! The release binary as users run it (`TOLLGATE_BIN`, built by scripts/test), a process of its
//! own against the fakes and a fresh PostgreSQL database.
//!
//! Crash injection: the fake GitHub applies one chosen write and holds its answer; the test
//! kills the app with SIGKILL while it waits, starts it again on the same database, and checks
//! that the effect exists exactly once.

mod support;

use std::path::Path;
use std::time::Duration;
use support::dashboard;
use support::fake_github::{BOT_LOGIN, CommentRecord, FakeGithub, PrSpec, file_entry};
use support::fake_slack::FakeSlack;
use support::patches::{SECRET_PATCH, WORKFLOW_PATCH, base_sha, sha};
use support::release::{ReleaseApp, github_vars, release_binary};
use support::smtp::{SmtpSink, smtp_available};
use support::test_app::{
    self, APP_ID, INSTALLATION_ID, SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL, SLACK_TOKEN,
    WEBHOOK_SECRET, issue_comment_event, pull_request_event,
};
use support::{TEST_APP_KEY, wait_until};
use tollgate::notify::slack::ACTION_ACKNOWLEDGE_ALERT;
use tollgate::report::{REPLY_MARKER, STICKY_COMMENT_MARKER, reply_key};

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const WAIT: Duration = Duration::from_secs(60);
const DEVELOPER: &str = "bob";

struct World {
    github: FakeGithub,
    app: ReleaseApp,
}

impl World {
    async fn start(binary: &Path, repo_config: &str) -> Self {
        Self::start_with(binary, repo_config, Vec::new()).await
    }

    /// The app with `extra` variables besides GitHub's (e.g. Slack's).
    async fn start_with(
        binary: &Path,
        repo_config: &str,
        extra: Vec<(&'static str, String)>,
    ) -> Self {
        let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
        github.add_installation(INSTALLATION_ID as u64);
        github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
        github.set_file(
            OWNER,
            REPO,
            &base_sha(),
            ".github/tollgate.yml",
            repo_config,
        );
        github.set_permission(OWNER, REPO, DEVELOPER, "write", "write");
        let database = test_app::fresh_database().await;
        let mut vars = github_vars(&github);
        vars.extend(extra);
        let app = ReleaseApp::start(binary, &database, &vars).await;
        Self { github, app }
    }

    /// Pull request 1 with one added file, on GitHub (no delivery yet).
    fn set_pull_request(&self, path: &str, patch: &str) {
        self.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number: 1,
                title: "feat: add settings".into(),
                author: "alice".into(),
                head_sha: sha(1),
                base_sha: base_sha(),
                files: vec![file_entry(path, "added", Some(patch))],
                ..PrSpec::default()
            },
        );
    }

    async fn deliver_opened(&self) {
        let event = pull_request_event("opened", OWNER, REPO, 1, &sha(1));
        let status = self
            .app
            .send_webhook(WEBHOOK_SECRET, "pull_request", &event)
            .await;
        assert_eq!(status, 202);
    }

    async fn deliver_comment(&self, author: &str, body: &str) -> u64 {
        let id = self.github.add_comment(OWNER, REPO, 1, author, body);
        let event = issue_comment_event(OWNER, REPO, 1, id, author, body);
        let status = self
            .app
            .send_webhook(WEBHOOK_SECRET, "issue_comment", &event)
            .await;
        assert_eq!(status, 202);
        id
    }

    /// Kills the app while `hold` keeps GitHub's answer to its write, restarts it and waits for
    /// its jobs; then answers the held request (nobody listens to it any more).
    async fn crash_during(&mut self, hold: &support::fake_github::Hold) {
        assert!(
            wait_until(WAIT, || hold.reached()).await,
            "the held write never came; the app's log:\n{}",
            self.app.log_text()
        );
        self.app.crash_and_restart().await;
        self.app.settle().await;
        hold.release();
    }

    fn bot_comments(&self) -> Vec<CommentRecord> {
        self.github.bot_comments(OWNER, REPO, 1)
    }

    fn sticky_comments(&self) -> Vec<CommentRecord> {
        let mut comments = self.bot_comments();
        comments.retain(|c| c.body.starts_with(STICKY_COMMENT_MARKER));
        comments
    }

    fn replies(&self) -> Vec<CommentRecord> {
        let mut comments = self.bot_comments();
        comments.retain(|c| c.body.starts_with(REPLY_MARKER));
        comments
    }

    /// Exactly one completed `Tollgate` check run on the head, with `conclusion`.
    fn assert_one_check_run(&self, conclusion: &str) {
        let runs = self.github.check_runs(OWNER, REPO);
        assert_eq!(runs.len(), 1, "{runs:#?}");
        assert_eq!(
            (runs[0].name.as_str(), runs[0].head_sha.as_str()),
            ("Tollgate", sha(1).as_str())
        );
        assert_eq!(runs[0].status, "completed");
        assert_eq!(runs[0].conclusion.as_deref(), Some(conclusion));
    }
}

fn check_runs_path() -> String {
    format!("/repos/{OWNER}/{REPO}/check-runs")
}

fn comments_path() -> String {
    format!("/repos/{OWNER}/{REPO}/issues/1/comments")
}

#[tokio::test]
async fn a_check_run_created_before_a_crash_is_found_not_created_again() {
    let Some(binary) = release_binary("check run across a crash") else {
        return;
    };
    let mut world = World::start(&binary, "threshold: 70\n").await;
    world.set_pull_request("app/settings.py", SECRET_PATCH);
    let hold = world.github.hold("POST", &check_runs_path(), 1);
    world.deliver_opened().await;
    world.crash_during(&hold).await;

    world.assert_one_check_run("failure");
    let runs = world.github.check_runs(OWNER, REPO);
    assert!(runs[0].external_id.is_some(), "{runs:#?}");
    assert_eq!(world.sticky_comments().len(), 1);
    let lookups = world
        .github
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/check-runs"))
        .count();
    assert_eq!(lookups, 1, "the retry looked the check run up once");
    world.github.assert_clean();
}

/// Killed mid-evaluation, after its row was started: by the restart the pull request has a new
/// head (or is closed). The retry evaluates what is there now, and the row the dead process
/// left `in_progress` is closed as superseded, so retention can clean it.
#[tokio::test]
async fn an_evaluation_left_unfinished_by_a_crash_is_closed_when_the_head_moved_or_closed() {
    let Some(binary) = release_binary("unfinished evaluation across a crash") else {
        return;
    };
    for closed in [false, true] {
        let mut world = World::start(&binary, "threshold: 70\n").await;
        world.set_pull_request("app/settings.py", SECRET_PATCH);
        let hold = world
            .github
            .hold("GET", &format!("/repos/{OWNER}/{REPO}/pulls/1/files"), 1);
        world.deliver_opened().await;
        assert!(wait_until(WAIT, || hold.reached()).await);
        world.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number: 1,
                head_sha: sha(2),
                base_sha: base_sha(),
                state: if closed { "closed" } else { "open" }.into(),
                files: vec![file_entry("app/settings.py", "added", Some(SECRET_PATCH))],
                ..PrSpec::default()
            },
        );
        world.crash_during(&hold).await;

        let mut db = world.app.db().await;
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT head_sha, status FROM evaluations WHERE pr_number = 1 ORDER BY id",
        )
        .fetch_all(&mut db)
        .await
        .expect("evaluations readable");
        let mut expected = vec![(sha(1), "superseded".to_owned())];
        if !closed {
            expected.push((sha(2), "completed".to_owned()));
        }
        assert_eq!(rows, expected, "closed: {closed}");
        let heads: Vec<String> = world
            .github
            .check_runs(OWNER, REPO)
            .into_iter()
            .map(|run| run.head_sha)
            .collect();
        let expected_heads = if closed { vec![] } else { vec![sha(2)] };
        assert_eq!(heads, expected_heads, "closed: {closed}");
        world.github.assert_clean();
    }
}

#[tokio::test]
async fn a_sticky_comment_posted_before_a_crash_is_edited_not_posted_again() {
    let Some(binary) = release_binary("sticky comment across a crash") else {
        return;
    };
    let mut world = World::start(&binary, "threshold: 70\n").await;
    world.set_pull_request("app/settings.py", SECRET_PATCH);
    let hold = world.github.hold("POST", &comments_path(), 1);
    world.deliver_opened().await;
    world.crash_during(&hold).await;

    world.assert_one_check_run("failure");
    let sticky = world.sticky_comments();
    assert_eq!(sticky.len(), 1, "{sticky:#?}");
    assert_eq!(world.bot_comments().len(), 1);
    world.github.assert_clean();
}

#[tokio::test]
async fn a_reply_posted_before_a_crash_is_found_not_posted_again() {
    let Some(binary) = release_binary("reply across a crash") else {
        return;
    };
    let mut world = World::start(&binary, "threshold: 100\n").await;
    world.set_pull_request(".github/workflows/ci.yml", WORKFLOW_PATCH);
    world.deliver_opened().await;
    world.app.settle().await;
    world.assert_one_check_run("failure");

    // The sticky comment exists: the next comment posted is the reply.
    let hold = world.github.hold("POST", &comments_path(), 1);
    let command = world
        .deliver_comment(
            DEVELOPER,
            "/override the workflow change was reviewed by the platform team",
        )
        .await;
    world.crash_during(&hold).await;

    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        replies[0].body.contains(&reply_key(command)),
        "{replies:#?}"
    );
    assert_eq!(replies[0].author, BOT_LOGIN);
    let reactions = world.github.reactions(OWNER, REPO, command);
    assert_eq!(reactions, ["eyes", "+1"]);
    assert_eq!(world.sticky_comments().len(), 1);
    world.assert_one_check_run("success");
    world.github.assert_clean();
}

#[tokio::test]
async fn a_slack_alert_posted_before_a_crash_is_found_not_posted_again() {
    let Some(binary) = release_binary("Slack alert across a crash") else {
        return;
    };
    let slack = FakeSlack::start(SLACK_TOKEN, &[SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL]).await;
    let mut world = World::start_with(
        &binary,
        "threshold: 70\n",
        test_app::slack_vars(&slack.api_url()),
    )
    .await;
    world.set_pull_request("app/settings.py", SECRET_PATCH);
    let hold = slack.hold("chat.postMessage", 1);
    world.deliver_opened().await;
    world.crash_during(&hold).await;

    let alerts: Vec<_> = slack
        .messages()
        .into_iter()
        .filter(|m| {
            m.blocks
                .as_ref()
                .is_some_and(|b| b.to_string().contains(ACTION_ACKNOWLEDGE_ALERT))
        })
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let calls = |method: &str| {
        slack
            .requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    };
    assert_eq!(calls("chat.postMessage"), 1, "{:#?}", slack.requests());
    assert_eq!(
        calls("conversations.history"),
        1,
        "the retry looked it up once"
    );
    assert_eq!(
        calls("chat.update"),
        1,
        "and edited it to the current state"
    );
    world.assert_one_check_run("failure");
    slack.assert_clean();
    world.github.assert_clean();
}

const ONCALL: &str = "oncall@acme.test";

/// Delivery → check run → sticky comment → Tier 1 email → every dashboard page, including the
/// unfiltered audit log with the alert's recorded state, all from the release binary.
#[tokio::test]
async fn the_release_binary_serves_a_pull_request_from_delivery_to_dashboard() {
    let Some(binary) = release_binary("release end to end") else {
        return;
    };
    if !smtp_available() {
        return;
    }
    let sink = SmtpSink::start().await;
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    github.add_installation(INSTALLATION_ID as u64);
    github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
    github.add_repo(INSTALLATION_ID as u64, OWNER, ".github");
    github.set_file(
        OWNER,
        ".github",
        "main",
        "tollgate.yml",
        &format!("alerts:\n  recipients:\n    tier1: [{ONCALL}]\n"),
    );
    github.set_file(
        OWNER,
        REPO,
        &base_sha(),
        ".github/tollgate.yml",
        "threshold: 70\n",
    );
    let mut vars = github_vars(&github);
    vars.extend([
        ("SMTP_URL", sink.url()),
        ("EMAIL_FROM", "Tollgate <tollgate@acme.test>".to_owned()),
        ("SESSION_KEY", dashboard::SESSION_KEY.to_owned()),
        ("GITHUB_CLIENT_ID", dashboard::CLIENT_ID.to_owned()),
        ("GITHUB_CLIENT_SECRET", dashboard::CLIENT_SECRET.to_owned()),
        ("GITHUB_WEB_URL", github.url()),
    ]);
    let database = test_app::fresh_database().await;
    let app = ReleaseApp::start(&binary, &database, &vars).await;
    github.set_oauth_app(
        dashboard::CLIENT_ID,
        dashboard::CLIENT_SECRET,
        &app.url("/dashboard/auth/callback"),
    );
    github.add_user("alice", 1);
    github.give_installation_access("alice", INSTALLATION_ID as u64, OWNER, "Organization");
    github.set_org_role(OWNER, "alice", "admin");
    let world = World { github, app };

    world.set_pull_request("app/settings.py", SECRET_PATCH);
    world.deliver_opened().await;
    assert!(
        wait_until(WAIT, || sink.messages().len() == 1).await,
        "no Tier 1 email; the app's log:\n{}",
        world.app.log_text()
    );
    world.app.settle().await;
    world.assert_one_check_run("failure");
    let sticky = world.sticky_comments();
    assert_eq!(sticky.len(), 1);
    assert!(sticky[0].body.contains("R01"), "{}", sticky[0].body);
    let mail = &sink.messages()[0];
    assert_eq!(mail.to, [ONCALL]);
    assert!(
        mail.subject.contains("Tier 1: 1 BLOCK violation of R01"),
        "{}",
        mail.subject
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let session = dashboard::log_in_at(&http, &world.github, &world.app.url(""), "alice").await;
    let base = format!("/dashboard/installations/{INSTALLATION_ID}");
    let pages = [
        ("/dashboard/".to_owned(), "acme"),
        (format!("{base}/"), "Compliance by rule"),
        (format!("{base}/violations"), "R01"),
        // The HTML escaping writes `/` as `&#x2f;`.
        (format!("{base}/pulls"), "acme&#x2f;widgets#1"),
        (format!("{base}/repos/{OWNER}/{REPO}/pulls/1"), "R01"),
        (format!("{base}/rules/R01"), "R01"),
        (format!("{base}/trends"), "acme"),
        (format!("{base}/alerts"), "R01"),
        // Unfiltered: every kind of entry, including one with recorded state.
        (format!("{base}/audit"), "alert.raised"),
    ];
    for (path, expected) in pages {
        let response = http
            .get(world.app.url(&path))
            .header(reqwest::header::COOKIE, &session.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        assert_eq!(
            status,
            200,
            "{path}: {text}\nthe app's log:\n{}",
            world.app.log_text()
        );
        assert!(text.contains(expected), "{path} lacks {expected:?}: {text}");
    }
    world.github.assert_clean();
}
