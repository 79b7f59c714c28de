//! The enforcement loop end to end: `/override` commands, approvals on GitHub and in Slack,
//! Tier 1 alerts with dedup and escalation, and the audit trail. The real app runs against a
//! fake GitHub, a fake Slack and a fresh PostgreSQL database per test.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::fake_github::{FakeGithub, PrSpec, file_entry};
use support::fake_slack::{FakeSlack, MessageRecord, block_action_body, view_submission_body};
use support::patches::{SECRET_PATCH, WORKFLOW_PATCH, base_sha, sha};
use support::test_app::{
    self, INSTALLATION_ID, SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL, SLACK_SIGNING_SECRET,
    SLACK_TOKEN, TestApp, issue_comment_event, pull_request_event,
};
use support::{TEST_APP_KEY, wait_until};
use tollgate::notify::slack::{
    ACTION_ACKNOWLEDGE_ALERT, ACTION_APPROVE_OVERRIDE, ACTION_REJECT_OVERRIDE, sign_slack_request,
};

const OWNER: &str = "acme";
const REPO: &str = "widgets";
const WAIT: Duration = Duration::from_secs(20);
const AUTHOR: &str = "alice";
const APPROVER: &str = "carol";
const APPROVER_SLACK: &str = "U0CAROL";
const DEVELOPER: &str = "bob";

/// The same key, moved down a line: the same violation (fingerprints ignore line numbers).
const SECRET_MOVED_PATCH: &str = concat!(
    // Split so that this file holds no real-format token itself.
    "@@ -0,0 +1,4 @@\n+import os\n+import sys\n+AWS_KEY = \"AKIA",
    "Z7Q3XK2M4N5P6R7T\"\n+print(os.name)"
);
/// The same key plus a GitHub token: a new BLOCK violation.
const TWO_SECRETS_PATCH: &str = concat!(
    // Split so that this file holds no real-format token itself.
    "@@ -0,0 +1,4 @@\n+import os\n+AWS_KEY = \"AKIA",
    "Z7Q3XK2M4N5P6R7T\"\n+GH = \"ghp_",
    "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2\"\n+print(os.name)"
);

const CONFIG: &str = "threshold: 70
overrides:
  approvers: [carol]
  slack_users:
    carol: U0CAROL
    alice: U0ALICE
";

struct World {
    github: FakeGithub,
    slack: FakeSlack,
    app: TestApp,
}

impl World {
    async fn start(config: &str) -> Self {
        Self::start_with_escalation_channel(config, true).await
    }

    /// With `escalation_channel` false, `SLACK_ESCALATION_CHANNEL` is not set.
    async fn start_with_escalation_channel(config: &str, escalation_channel: bool) -> Self {
        let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
        github.add_installation(INSTALLATION_ID as u64);
        github.add_repo(INSTALLATION_ID as u64, OWNER, REPO);
        github.set_file(OWNER, REPO, &base_sha(), ".github/tollgate.yml", config);
        github.set_permission(OWNER, REPO, AUTHOR, "admin", "admin");
        github.set_permission(OWNER, REPO, APPROVER, "write", "maintain");
        github.set_permission(OWNER, REPO, DEVELOPER, "write", "write");
        github.set_permission(OWNER, REPO, "tina", "read", "triage");
        let slack = FakeSlack::start(SLACK_TOKEN, &[SLACK_CHANNEL, SLACK_ESCALATION_CHANNEL]).await;
        let mut vars = test_app::slack_vars(&slack.api_url());
        if !escalation_channel {
            vars.retain(|(name, _)| *name != "SLACK_ESCALATION_CHANNEL");
        }
        let database = test_app::fresh_database().await;
        let app =
            TestApp::start_configured(database, &github.url(), test_app::options(), &vars).await;
        Self { github, slack, app }
    }

    /// Opens (or pushes to) pull request 1 with one file and waits for its check run.
    async fn push(&self, action: &str, head: u32, files: Vec<Value>) -> String {
        let head = sha(head);
        self.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number: 1,
                title: "feat: add settings".into(),
                author: AUTHOR.into(),
                head_sha: head.clone(),
                base_sha: base_sha(),
                files,
                ..PrSpec::default()
            },
        );
        self.app
            .send_webhook(
                "pull_request",
                &pull_request_event(action, OWNER, REPO, 1, &head),
            )
            .await;
        self.app.settle().await;
        self.conclusion(&head).expect("a completed check run")
    }

    /// Comments on pull request 1 as `author` and waits for the app to finish with it.
    async fn comment(&self, author: &str, body: &str) -> u64 {
        let id = self.github.add_comment(OWNER, REPO, 1, author, body);
        let (status, _) = self
            .app
            .send_webhook(
                "issue_comment",
                &issue_comment_event(OWNER, REPO, 1, id, author, body),
            )
            .await;
        assert_eq!(status, 202);
        self.app.settle().await;
        id
    }

    /// The conclusion of the newest completed check run on `head`.
    fn conclusion(&self, head: &str) -> Option<String> {
        self.github
            .check_runs(OWNER, REPO)
            .into_iter()
            .rfind(|c| c.head_sha == head && c.status == "completed")
            .and_then(|c| c.conclusion)
    }

    fn check_run_summary(&self, head: &str) -> String {
        self.github
            .check_runs(OWNER, REPO)
            .into_iter()
            .rfind(|c| c.head_sha == head)
            .and_then(|c| c.output_summary)
            .unwrap_or_default()
    }

    fn sticky_comment(&self) -> String {
        self.github
            .bot_comments(OWNER, REPO, 1)
            .into_iter()
            .map(|c| c.body)
            .find(|b| b.starts_with("<!-- tollgate:sticky-comment -->"))
            .unwrap_or_default()
    }

    /// The app's replies to commands, oldest first.
    fn replies(&self) -> Vec<String> {
        self.github
            .bot_comments(OWNER, REPO, 1)
            .into_iter()
            .map(|c| c.body)
            .filter(|b| b.starts_with("<!-- tollgate:reply -->"))
            .collect()
    }

    fn reactions(&self, comment_id: u64) -> Vec<String> {
        self.github.reactions(OWNER, REPO, comment_id)
    }

    /// Sends a Slack button click, signed as Slack would.
    async fn click(&self, user: &str, action_id: &str, value: &str, ts: &str) -> u16 {
        let body = block_action_body(user, action_id, value, SLACK_CHANNEL, ts);
        let now = chrono::Utc::now().timestamp();
        let signature = sign_slack_request(SLACK_SIGNING_SECRET, now, &body);
        self.post_interaction(body, &now.to_string(), &signature)
            .await
    }

    /// `user` submits the newest dialog the app opened, with `reason` typed in.
    async fn submit_reject_reason(&self, user: &str, reason: &str) -> u16 {
        let view = self.slack.views().pop().expect("a dialog was opened");
        let body = view_submission_body(user, &view, "reason", "reason_input", reason);
        let now = chrono::Utc::now().timestamp();
        let signature = sign_slack_request(SLACK_SIGNING_SECRET, now, &body);
        self.post_interaction(body, &now.to_string(), &signature)
            .await
    }

    async fn post_interaction(&self, body: Vec<u8>, timestamp: &str, signature: &str) -> u16 {
        let status = self
            .app
            .http
            .post(self.app.url("/api/slack/interactions"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", timestamp)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .expect("the app answers")
            .status()
            .as_u16();
        self.app.settle().await;
        status
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        self.app.count(sql).await
    }

    /// How many override requests are in `status`.
    async fn requests_in(&self, status: &str) -> i64 {
        let mut db = self.app.db().await;
        sqlx::query_scalar("SELECT count(*) FROM override_requests WHERE status = $1")
            .bind(status)
            .fetch_one(&mut db)
            .await
            .expect("count query runs")
    }

    /// Opens pull request 1 with the AWS key and has the developer ask for an override, which
    /// waits for approval; returns the Slack message asking for it.
    async fn pending_block_override(&self) -> MessageRecord {
        self.push("opened", 1, secret_files(SECRET_PATCH)).await;
        self.request_block_override().await;
        self.request_message()
            .expect("an approval request in Slack")
    }

    /// The developer asks for an override of the AWS key (R01, BLOCK).
    async fn request_block_override(&self) -> u64 {
        self.comment(
            DEVELOPER,
            "/override R01 this key is a documented test fixture",
        )
        .await
    }

    /// The Slack message asking for approval of an override, as it stands.
    fn request_message(&self) -> Option<MessageRecord> {
        self.messages_with(ACTION_REJECT_OVERRIDE)
            .into_iter()
            .next()
    }

    /// Slack messages that hold `needle` now or held it before an update.
    fn messages_with(&self, needle: &str) -> Vec<MessageRecord> {
        self.slack
            .messages()
            .into_iter()
            .filter(|m| {
                content(m).contains(needle)
                    || m.history.iter().any(|h| {
                        h.blocks
                            .as_ref()
                            .is_some_and(|b| b.to_string().contains(needle))
                    })
            })
            .collect()
    }

    fn messages_in(&self, channel: &str) -> Vec<MessageRecord> {
        self.slack
            .messages()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect()
    }

    /// The approver clicks Approve on `message` for the newest request.
    async fn approve_in_slack(&self, message: &MessageRecord) -> u16 {
        self.click_on_newest_request(ACTION_APPROVE_OVERRIDE, message)
            .await
    }

    /// The approver clicks `action_id` on `message` for the newest request.
    async fn click_on_newest_request(&self, action_id: &str, message: &MessageRecord) -> u16 {
        let request_id = self
            .scalar("SELECT max(id) FROM override_requests")
            .await
            .to_string();
        self.click(APPROVER_SLACK, action_id, &request_id, &message.ts)
            .await
    }

    /// Closes pull request 1 on GitHub and delivers the `closed` event.
    async fn close_pull_request(&self) {
        self.close_on_github();
        self.send_closed_delivery().await;
    }

    /// Pull request 1, with the AWS key, is closed on GitHub (no event delivered).
    fn close_on_github(&self) {
        self.github.set_pull_request(
            OWNER,
            REPO,
            PrSpec {
                number: 1,
                state: "closed".into(),
                author: AUTHOR.into(),
                head_sha: sha(1),
                base_sha: base_sha(),
                files: secret_files(SECRET_PATCH),
                ..PrSpec::default()
            },
        );
    }

    /// Delivers `pull_request.closed` for pull request 1 and waits for its job.
    async fn send_closed_delivery(&self) {
        let (status, reply) = self
            .app
            .send_webhook(
                "pull_request",
                &pull_request_event("closed", OWNER, REPO, 1, &sha(1)),
            )
            .await;
        assert_eq!((status, reply["status"].as_str()), (202, Some("accepted")));
        self.app.settle().await;
    }

    /// The one request expired, audited so, and its Slack message asks nobody any more.
    async fn assert_request_expired(&self, message: &MessageRecord) {
        assert_eq!(self.requests_in("expired").await, 1);
        let updated = self
            .slack
            .message(SLACK_CHANNEL, &message.ts)
            .expect("message kept");
        assert!(
            !content(&updated).contains(ACTION_APPROVE_OVERRIDE),
            "no buttons on an expired request: {}",
            content(&updated)
        );
        assert!(
            self.audit_actions()
                .await
                .contains(&"override.expired".to_owned())
        );
    }

    async fn audit_actions(&self) -> Vec<String> {
        let mut db = self.app.db().await;
        sqlx::query_scalar("SELECT action FROM audit_log ORDER BY id")
            .fetch_all(&mut db)
            .await
            .expect("audit log readable")
    }
}

/// A message's current text and blocks, as one string to search.
fn content(message: &MessageRecord) -> String {
    format!(
        "{} {}",
        message.text.as_deref().unwrap_or_default(),
        message
            .blocks
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    )
}

fn secret_files(patch: &str) -> Vec<Value> {
    vec![file_entry("app/settings.py", "added", Some(patch))]
}

#[tokio::test]
async fn a_writer_overrides_override_tier_violations_at_once() {
    let world = World::start("threshold: 100\n").await;
    let head = sha(1);
    let files = vec![file_entry(
        ".github/workflows/ci.yml",
        "added",
        Some(WORKFLOW_PATCH),
    )];
    assert_eq!(world.push("opened", 1, files).await, "failure");

    let id = world
        .comment(
            DEVELOPER,
            "/override the workflow change was reviewed by the platform team",
        )
        .await;
    assert_eq!(world.conclusion(&head).as_deref(), Some("success"));
    assert!(world.reactions(id).contains(&"eyes".to_owned()));
    assert!(world.reactions(id).contains(&"+1".to_owned()));
    let sticky = world.sticky_comment();
    assert!(sticky.contains("overridden"), "{sticky}");
    assert!(sticky.contains("@bob"), "{sticky}");
    let summary = world.check_run_summary(&head);
    assert!(summary.contains("@bob"), "{summary}");
    assert_eq!(world.requests_in("approved").await, 1);
    assert!(
        world
            .audit_actions()
            .await
            .iter()
            .any(|a| a.starts_with("override."))
    );
    assert!(
        world.messages_with(ACTION_APPROVE_OVERRIDE).is_empty(),
        "no Slack for self-service"
    );
    world.github.assert_clean();
    world.slack.assert_clean();
}

#[tokio::test]
async fn a_block_override_is_approved_in_slack_and_the_check_passes() {
    let world = World::start(CONFIG).await;
    let head = sha(1);
    assert_eq!(
        world.push("opened", 1, secret_files(SECRET_PATCH)).await,
        "failure"
    );

    let id = world.request_block_override().await;
    assert_eq!(
        world.conclusion(&head).as_deref(),
        Some("failure"),
        "pending is not approved"
    );
    assert!(world.reactions(id).contains(&"+1".to_owned()));
    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(
        replies[0].contains("@carol"),
        "the reply names the approvers: {}",
        replies[0]
    );
    assert!(
        world.sticky_comment().contains("pending") || world.sticky_comment().contains("Pending")
    );

    let message = world
        .request_message()
        .expect("an approval request in Slack");
    assert_eq!(message.channel, SLACK_CHANNEL);
    let alert = world.messages_with(ACTION_ACKNOWLEDGE_ALERT).remove(0);
    assert_eq!(
        message.thread_ts.as_deref(),
        Some(alert.ts.as_str()),
        "later messages about the pull request go in the thread of the first"
    );
    let text = content(&message);
    for expected in [
        "acme/widgets",
        "R01",
        "documented test fixture",
        "bob",
        "<@U0CAROL>",
        ACTION_REJECT_OVERRIDE,
    ] {
        assert!(text.contains(expected), "{expected} missing from {text}");
    }
    let request_id = world
        .scalar("SELECT max(id) FROM override_requests")
        .await
        .to_string();

    // Someone who is not a mapped approver is refused in private.
    assert_eq!(
        world
            .click(
                "U0STRANGER",
                ACTION_APPROVE_OVERRIDE,
                &request_id,
                &message.ts
            )
            .await,
        200
    );
    assert_eq!(world.slack.ephemerals().len(), 1);
    assert_eq!(world.conclusion(&head).as_deref(), Some("failure"));

    assert_eq!(
        world
            .click(
                APPROVER_SLACK,
                ACTION_APPROVE_OVERRIDE,
                &request_id,
                &message.ts
            )
            .await,
        200
    );
    assert_eq!(world.conclusion(&head).as_deref(), Some("success"));
    let updated = world
        .slack
        .message(SLACK_CHANNEL, &message.ts)
        .expect("message kept");
    assert!(
        content(&updated).contains("carol"),
        "decision shown: {}",
        content(&updated)
    );
    assert!(
        !content(&updated).contains(ACTION_APPROVE_OVERRIDE),
        "buttons removed"
    );
    let sticky = world.sticky_comment();
    assert!(
        sticky.contains("@carol") && sticky.contains("documented test fixture"),
        "{sticky}"
    );
    let actions = world.audit_actions().await;
    assert!(
        actions.contains(&"override.requested".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"override.approved".to_owned()),
        "{actions:?}"
    );
    world.github.assert_clean();
    world.slack.assert_clean();
}

#[tokio::test]
async fn the_pr_author_cannot_approve_their_own_override() {
    let world = World::start(CONFIG).await;
    let head = sha(1);
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    world.request_block_override().await;

    let id = world.comment(AUTHOR, "/approve").await;
    assert!(world.reactions(id).contains(&"-1".to_owned()));
    let replies = world.replies();
    assert!(
        replies
            .last()
            .is_some_and(|r| r.contains("you opened this pull request")),
        "{replies:?}"
    );
    assert_eq!(world.conclusion(&head).as_deref(), Some("failure"));
    assert_eq!(world.requests_in("pending").await, 1);

    // The author's Slack click is refused too.
    let message = world
        .request_message()
        .expect("an approval request in Slack");
    let request_id = world
        .scalar("SELECT max(id) FROM override_requests")
        .await
        .to_string();
    world
        .click("U0ALICE", ACTION_APPROVE_OVERRIDE, &request_id, &message.ts)
        .await;
    assert_eq!(world.slack.ephemerals().len(), 1);
    assert_eq!(world.conclusion(&head).as_deref(), Some("failure"));
}

#[tokio::test]
async fn slack_clicks_with_a_bad_or_stale_signature_are_refused() {
    let world = World::start(CONFIG).await;
    let body = block_action_body(
        APPROVER_SLACK,
        ACTION_APPROVE_OVERRIDE,
        "1",
        SLACK_CHANNEL,
        "1.0",
    );
    let now = chrono::Utc::now().timestamp();
    let wrong = sign_slack_request("not-the-secret", now, &body);
    assert_eq!(
        world
            .post_interaction(body.clone(), &now.to_string(), &wrong)
            .await,
        401
    );
    let stale = now - 6 * 60;
    let signature = sign_slack_request(SLACK_SIGNING_SECRET, stale, &body);
    assert_eq!(
        world
            .post_interaction(body.clone(), &stale.to_string(), &signature)
            .await,
        401
    );
    assert_eq!(
        world.post_interaction(body, &now.to_string(), "").await,
        401
    );
    assert_eq!(world.scalar("SELECT count(*) FROM jobs").await, 0);
}

#[tokio::test]
async fn a_rejected_override_keeps_the_check_failing() {
    let world = World::start(CONFIG).await;
    let head = sha(1);
    let message = world.pending_block_override().await;

    let id = world
        .comment(APPROVER, "/reject rotate the key and use a vault reference")
        .await;
    assert!(world.reactions(id).contains(&"+1".to_owned()));
    assert_eq!(world.conclusion(&head).as_deref(), Some("failure"));
    assert_eq!(world.requests_in("rejected").await, 1);
    let updated = world
        .slack
        .message(SLACK_CHANNEL, &message.ts)
        .expect("message kept");
    assert!(content(&updated).contains("carol"), "{}", content(&updated));
    assert!(!content(&updated).contains(ACTION_APPROVE_OVERRIDE));
    assert!(
        world
            .audit_actions()
            .await
            .contains(&"override.rejected".to_owned())
    );

    // A Slack click on a decided request changes nothing.
    assert_eq!(world.approve_in_slack(&message).await, 200);
    assert_eq!(world.requests_in("rejected").await, 1);
}

#[tokio::test]
async fn an_override_survives_a_push_without_new_blocks_and_lapses_on_one_with_them() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    world.request_block_override().await;
    world
        .comment(APPROVER, "/approve checked with security")
        .await;
    assert_eq!(world.conclusion(&sha(1)).as_deref(), Some("success"));

    let moved = world
        .push("synchronize", 2, secret_files(SECRET_MOVED_PATCH))
        .await;
    assert_eq!(
        moved, "success",
        "the same violation on another line stays overridden"
    );

    let more = world
        .push("synchronize", 3, secret_files(TWO_SECRETS_PATCH))
        .await;
    assert_eq!(
        more, "failure",
        "a new BLOCK violation needs a new override"
    );
    world.github.assert_clean();
}

#[tokio::test]
async fn an_unknown_override_form_gets_the_syntax_and_the_failing_rules() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let id = world.comment(DEVELOPER, "/override").await;
    assert!(world.reactions(id).contains(&"-1".to_owned()));
    let reply = world.replies().pop().expect("a reply");
    assert!(reply.contains("/override R05 R07 <reason>"), "{reply}");
    assert!(reply.contains("R01"), "failing rules listed: {reply}");

    // A reader (triage permission) cannot override.
    let id = world
        .comment(
            "tina",
            "/override R01 this key is a documented test fixture",
        )
        .await;
    assert!(world.reactions(id).contains(&"-1".to_owned()));
    assert_eq!(
        world.scalar("SELECT count(*) FROM override_requests").await,
        0
    );
}

#[tokio::test]
async fn a_block_alert_is_posted_once_an_hour_per_rule() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let alerts = world.messages_with(ACTION_ACKNOWLEDGE_ALERT);
    assert_eq!(alerts.len(), 1, "one alert for the new BLOCK violation");
    assert!(content(&alerts[0]).contains("R01"));

    // Another R01 violation within the hour: no second alert.
    world
        .push("synchronize", 2, secret_files(TWO_SECRETS_PATCH))
        .await;
    assert_eq!(world.messages_with(ACTION_ACKNOWLEDGE_ALERT).len(), 1);
    assert_eq!(world.scalar("SELECT count(*) FROM alerts").await, 1);

    // An hour later a new violation of the rule alerts again; an old one does not.
    world.app.advance_clock(61).await;
    world
        .push("synchronize", 3, secret_files(TWO_SECRETS_PATCH))
        .await;
    assert_eq!(world.scalar("SELECT count(*) FROM alerts").await, 2);
    world
        .push("synchronize", 4, secret_files(TWO_SECRETS_PATCH))
        .await;
    assert_eq!(world.scalar("SELECT count(*) FROM alerts").await, 2);
    world.slack.assert_clean();
}

#[tokio::test]
async fn an_unacknowledged_alert_escalates_once_after_the_window() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    assert_eq!(world.messages_with(ACTION_ACKNOWLEDGE_ALERT).len(), 1);

    world.app.advance_clock(14).await;
    assert!(
        world.messages_in(SLACK_ESCALATION_CHANNEL).is_empty(),
        "not before 15 minutes"
    );
    world.app.advance_clock(2).await;
    let escalations = world.messages_in(SLACK_ESCALATION_CHANNEL);
    assert_eq!(escalations.len(), 1, "escalated once");
    world.app.advance_clock(30).await;
    assert_eq!(world.messages_in(SLACK_ESCALATION_CHANNEL).len(), 1);
    assert!(
        world
            .audit_actions()
            .await
            .contains(&"alert.escalated".to_owned())
    );
}

#[tokio::test]
async fn acknowledged_or_resolved_alerts_do_not_escalate() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let alert = world.messages_with(ACTION_ACKNOWLEDGE_ALERT).remove(0);
    let alert_id = world.scalar("SELECT max(id) FROM alerts").await.to_string();
    assert_eq!(
        world
            .click("U0ONCALL", ACTION_ACKNOWLEDGE_ALERT, &alert_id, &alert.ts)
            .await,
        200
    );
    let updated = world.slack.message(SLACK_CHANNEL, &alert.ts).expect("kept");
    assert!(
        !content(&updated).contains(ACTION_ACKNOWLEDGE_ALERT),
        "acknowledged"
    );

    // A second pull request whose violation is fixed before the window ends.
    world.app.advance_clock(61).await;
    world
        .push("synchronize", 2, secret_files(TWO_SECRETS_PATCH))
        .await;
    world
        .push(
            "synchronize",
            3,
            vec![file_entry(
                "app/settings.py",
                "added",
                Some("@@ -0,0 +1 @@\n+import os"),
            )],
        )
        .await;
    world.app.advance_clock(20).await;
    assert!(world.messages_in(SLACK_ESCALATION_CHANNEL).is_empty());
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM alerts WHERE status = 'resolved'")
            .await,
        1
    );
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM alerts WHERE status = 'acknowledged'")
            .await,
        1
    );
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM slack_attempts WHERE outcome = 'acknowledged'")
            .await,
        1
    );
}

#[tokio::test]
async fn slack_failing_once_delivers_the_alert_once_and_records_both_attempts() {
    let world = World::start(CONFIG).await;
    world.slack.fail_next("chat.postMessage", 500, 1);
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let delivered = wait_until(WAIT, || {
        world.messages_with(ACTION_ACKNOWLEDGE_ALERT).len() == 1
    })
    .await;
    // The retry waits out its backoff (1 s).
    assert!(delivered);
    world.app.settle().await;
    assert_eq!(world.messages_with(ACTION_ACKNOWLEDGE_ALERT).len(), 1);
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM slack_attempts WHERE outcome = 'failed'")
            .await,
        1
    );
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM slack_attempts WHERE outcome = 'sent'")
            .await,
        1
    );
    assert_eq!(
        world.conclusion(&sha(1)).as_deref(),
        Some("failure"),
        "evaluation unaffected"
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    assert!(world.scalar("SELECT count(*) FROM audit_log").await >= 1);
    let mut db = world.app.db().await;
    let update = sqlx::query("UPDATE audit_log SET actor = 'mallory'")
        .execute(&mut db)
        .await;
    assert!(update.is_err(), "audit entries cannot be edited");
    let delete = sqlx::query("DELETE FROM audit_log").execute(&mut db).await;
    assert!(delete.is_err(), "audit entries cannot be deleted");
}

#[tokio::test]
async fn an_alert_of_a_pull_request_closed_before_the_window_ends_is_resolved() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    world.close_on_github();
    world.app.advance_clock(16).await;
    assert!(world.messages_in(SLACK_ESCALATION_CHANNEL).is_empty());
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM alerts WHERE status = 'resolved'")
            .await,
        1
    );
    let alert = world.messages_with(ACTION_ACKNOWLEDGE_ALERT).remove(0);
    assert!(
        !content(&alert).contains(ACTION_ACKNOWLEDGE_ALERT),
        "the alert message shows it resolved"
    );
}

#[tokio::test]
async fn a_pending_request_expires_when_its_violations_are_gone() {
    let world = World::start(CONFIG).await;
    let message = world.pending_block_override().await;

    let clean = vec![file_entry(
        "app/settings.py",
        "added",
        Some("@@ -0,0 +1 @@\n+import os"),
    )];
    assert_eq!(world.push("synchronize", 2, clean).await, "success");
    world.assert_request_expired(&message).await;
    let sticky = world.sticky_comment();
    assert!(
        !sticky.contains("Pending"),
        "no pending request left in the comment: {sticky}"
    );
}

#[tokio::test]
async fn a_pending_request_expires_when_its_pull_request_is_closed() {
    let world = World::start(CONFIG).await;
    let message = world.pending_block_override().await;

    world.close_pull_request().await;
    world.assert_request_expired(&message).await;
    assert_eq!(world.requests_in("pending").await, 0);
    // An approval clicked on a message that was still open changes nothing.
    assert_eq!(world.approve_in_slack(&message).await, 200);
    world.app.settle().await;
    assert_eq!(world.requests_in("approved").await, 0);
    assert_eq!(world.requests_in("expired").await, 1);
}

#[tokio::test]
async fn closing_a_pull_request_without_requests_costs_no_github_call() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let before = world.github.requests().len();
    world.close_pull_request().await;
    assert_eq!(world.github.requests().len(), before);
}

#[tokio::test]
async fn a_close_delivery_for_a_pull_request_reopened_since_expires_nothing() {
    let world = World::start(CONFIG).await;
    world.pending_block_override().await;
    // GitHub still shows the pull request open when the job asks: it was reopened.
    world.send_closed_delivery().await;
    assert_eq!(world.requests_in("pending").await, 1);
    assert_eq!(world.requests_in("expired").await, 0);
}

#[tokio::test]
async fn reject_in_slack_asks_why_and_records_the_reason() {
    let world = World::start(CONFIG).await;
    let message = world.pending_block_override().await;
    let request_id = world
        .scalar("SELECT max(id) FROM override_requests")
        .await
        .to_string();

    // Someone who may not decide is told so in private, without a dialog.
    world
        .click(
            "U0STRANGER",
            ACTION_REJECT_OVERRIDE,
            &request_id,
            &message.ts,
        )
        .await;
    assert!(world.slack.views().is_empty());
    assert_eq!(world.slack.ephemerals().len(), 1);
    assert_eq!(world.requests_in("pending").await, 1);

    // The click opens a dialog and decides nothing yet.
    let click = world
        .click_on_newest_request(ACTION_REJECT_OVERRIDE, &message)
        .await;
    assert_eq!(click, 200);
    let views = world.slack.views();
    assert_eq!(views.len(), 1, "one dialog");
    assert_eq!(views[0]["callback_id"], "tollgate_reject_reason");
    assert_eq!(world.requests_in("pending").await, 1);

    let reason = "the key is live in staging: rotate it first";
    assert_eq!(
        world.submit_reject_reason(APPROVER_SLACK, reason).await,
        200
    );
    assert_eq!(world.requests_in("rejected").await, 1);
    let mut db = world.app.db().await;
    let (decided_by, note): (String, String) = sqlx::query_as(
        "SELECT decided_by, decision_note FROM override_requests ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!((decided_by.as_str(), note.as_str()), (APPROVER, reason));
    let updated = world
        .slack
        .message(SLACK_CHANNEL, &message.ts)
        .expect("message kept");
    assert!(
        content(&updated).contains(&format!("Rejected by @{APPROVER}: {reason}")),
        "the request's message shows who rejected it and why: {}",
        content(&updated)
    );
    let sticky = world.sticky_comment();
    assert!(
        sticky.contains(&format!("rejected by @{APPROVER}: “{reason}”")),
        "the pull request's comment shows it too: {sticky}"
    );
    assert!(
        world
            .audit_actions()
            .await
            .contains(&"override.rejected".to_owned())
    );
    world.slack.assert_clean();
}

#[tokio::test]
async fn reject_in_slack_without_a_dialog_rejects_without_a_reason() {
    let world = World::start(CONFIG).await;
    let message = world.pending_block_override().await;
    world
        .slack
        .api_error_next("views.open", "expired_trigger_id", 1);
    world
        .click_on_newest_request(ACTION_REJECT_OVERRIDE, &message)
        .await;
    assert!(world.slack.views().is_empty());
    assert_eq!(world.requests_in("rejected").await, 1);
}

#[tokio::test]
async fn commands_are_refused_while_the_repository_config_is_invalid() {
    let world = World::start("overrides:\n  approvers: [\"not a login\"]\n").await;
    assert_eq!(
        world.push("opened", 1, secret_files(SECRET_PATCH)).await,
        "neutral"
    );
    let id = world.request_block_override().await;
    assert!(world.reactions(id).contains(&"-1".to_owned()));
    let reply = world.replies().pop().expect("a reply");
    assert!(
        reply.contains("invalid") && reply.contains("overrides.approvers"),
        "{reply}"
    );
    assert_eq!(
        world.scalar("SELECT count(*) FROM override_requests").await,
        0
    );
}

#[tokio::test]
async fn without_an_escalation_channel_the_alert_thread_mentions_the_channel() {
    let world = World::start_with_escalation_channel(CONFIG, false).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let alert = world.messages_with(ACTION_ACKNOWLEDGE_ALERT).remove(0);
    world.app.advance_clock(16).await;
    let escalations: Vec<_> = world
        .messages_in(SLACK_CHANNEL)
        .into_iter()
        .filter(|m| m.thread_ts.as_deref() == Some(alert.ts.as_str()))
        .collect();
    assert_eq!(escalations.len(), 1, "one escalation in the alert's thread");
    assert!(
        content(&escalations[0]).contains("<!channel>"),
        "{}",
        content(&escalations[0])
    );
    world.slack.assert_clean();
}

#[tokio::test]
async fn the_requester_cancels_an_override() {
    let world = World::start(CONFIG).await;
    let message = world.pending_block_override().await;

    let id = world.comment(DEVELOPER, "/override cancel").await;
    assert!(world.reactions(id).contains(&"+1".to_owned()));
    assert_eq!(world.requests_in("cancelled").await, 1);
    let updated = world
        .slack
        .message(SLACK_CHANNEL, &message.ts)
        .expect("message kept");
    assert!(!content(&updated).contains(ACTION_APPROVE_OVERRIDE));
    assert!(content(&updated).contains("@bob"), "{}", content(&updated));

    // Nothing left to cancel, and nothing left to approve.
    let again = world.comment(DEVELOPER, "/override cancel").await;
    assert!(world.reactions(again).contains(&"-1".to_owned()));
    let approve = world.comment(APPROVER, "/approve").await;
    assert!(world.reactions(approve).contains(&"-1".to_owned()));
    assert_eq!(world.conclusion(&sha(1)).as_deref(), Some("failure"));
    assert!(
        world
            .audit_actions()
            .await
            .contains(&"override.cancelled".to_owned())
    );
}

/// Issue 15.5k: nothing on GitHub is ahead of the store. The check run is created (and shown
/// failing) while its job is held before it could record anything more; a `/override` typed
/// right then finds the violations it shows.
#[tokio::test]
async fn an_override_typed_as_soon_as_the_check_run_fails_finds_its_violations() {
    let world = World::start(CONFIG).await;
    let head = sha(1);
    world.github.set_pull_request(
        OWNER,
        REPO,
        PrSpec {
            number: 1,
            author: AUTHOR.into(),
            head_sha: head.clone(),
            base_sha: base_sha(),
            files: secret_files(SECRET_PATCH),
            ..PrSpec::default()
        },
    );
    let hold = world
        .github
        .hold("POST", &format!("/repos/{OWNER}/{REPO}/check-runs"), 1);
    world
        .app
        .send_webhook(
            "pull_request",
            &pull_request_event("opened", OWNER, REPO, 1, &head),
        )
        .await;
    assert!(wait_until(WAIT, || hold.reached()).await, "no check run");
    assert_eq!(world.conclusion(&head).as_deref(), Some("failure"));

    let body = "/override R01 this key is a documented test fixture";
    let id = world.github.add_comment(OWNER, REPO, 1, DEVELOPER, body);
    world
        .app
        .send_webhook(
            "issue_comment",
            &issue_comment_event(OWNER, REPO, 1, id, DEVELOPER, body),
        )
        .await;
    assert!(wait_until(WAIT, || !world.replies().is_empty()).await);
    hold.release();
    world.app.settle().await;

    let replies = world.replies();
    assert_eq!(replies.len(), 1, "{replies:#?}");
    assert!(
        !replies[0].contains("nothing to override"),
        "the command did not see the evaluation GitHub showed: {}",
        replies[0]
    );
    assert_eq!(world.requests_in("pending").await, 1);
    assert!(world.reactions(id).contains(&"+1".to_owned()));
    world.github.assert_clean();
}

#[tokio::test]
async fn a_request_whose_stored_settings_do_not_parse_fails_the_job_instead_of_using_defaults() {
    let world = World::start(CONFIG).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    world.request_block_override().await;
    // A row written before a field existed: defaults here would be a silent change of who may
    // decide the request.
    let mut db = world.app.db().await;
    sqlx::query("UPDATE override_requests SET settings = settings - 'approvers'")
        .execute(&mut db)
        .await
        .expect("settings edited");

    world.comment(APPROVER, "/approve").await;
    assert_eq!(world.requests_in("pending").await, 1);
    let error: String = sqlx::query_scalar(
        "SELECT last_error FROM jobs WHERE kind = 'handle_command' AND state = 'failed'",
    )
    .fetch_one(&mut db)
    .await
    .expect("the command job failed");
    assert!(error.contains("settings"), "{error}");
}

/// How many calls of the Slack Web API `method` the app made.
fn slack_calls(world: &World, method: &str) -> usize {
    world
        .slack
        .requests()
        .iter()
        .filter(|r| r.method == method)
        .count()
}

/// Slack's answer to the alert's post is lost after Slack posted it (as when the process dies
/// before recording the `ts`): the retry finds the message by the key in its metadata, records
/// it and edits it, and never posts it again.
#[tokio::test]
async fn an_alert_posted_without_its_answer_is_found_not_posted_again() {
    let world = World::start(CONFIG).await;
    world.slack.lose_answer_next("chat.postMessage", 1);
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    // The retry waits out its backoff (1 s).
    let edited = wait_until(WAIT, || slack_calls(&world, "chat.update") == 1).await;
    assert!(edited, "{:#?}", world.slack.requests());
    world.app.settle().await;

    let alerts = world.messages_with(ACTION_ACKNOWLEDGE_ALERT);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(slack_calls(&world, "chat.postMessage"), 1);
    assert_eq!(slack_calls(&world, "conversations.history"), 1);
    let mut db = world.app.db().await;
    let recorded: Option<String> =
        sqlx::query_scalar("SELECT ts FROM slack_messages WHERE subject = 'alert'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(recorded.as_deref(), Some(alerts[0].ts.as_str()));
    world.slack.assert_clean();
}

/// The same for a message in a thread: the escalation posted in the alert's thread is looked up
/// among the thread's replies.
#[tokio::test]
async fn an_escalation_posted_in_a_thread_without_its_answer_is_found_not_posted_again() {
    let world = World::start_with_escalation_channel(CONFIG, false).await;
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let alert = world.messages_with(ACTION_ACKNOWLEDGE_ALERT).remove(0);
    world.slack.lose_answer_next("chat.postMessage", 1);
    world.app.advance_clock(16).await;
    let edited = wait_until(WAIT, || slack_calls(&world, "chat.update") == 1).await;
    assert!(edited, "{:#?}", world.slack.requests());
    world.app.settle().await;

    let replies = world.slack.replies(SLACK_CHANNEL, &alert.ts);
    assert_eq!(
        replies.len(),
        1,
        "one escalation in the thread: {replies:#?}"
    );
    assert_eq!(
        slack_calls(&world, "chat.postMessage"),
        2,
        "alert and escalation"
    );
    assert_eq!(slack_calls(&world, "conversations.replies"), 1);
    world.slack.assert_clean();
}

/// Without the read scopes the lookup is refused: the message is posted again (at least once,
/// as documented) rather than lost, and the job succeeds.
#[tokio::test]
async fn without_the_read_scope_a_message_whose_answer_was_lost_is_posted_again() {
    let world = World::start(CONFIG).await;
    world.slack.set_read_scopes(&[]);
    world.slack.lose_answer_next("chat.postMessage", 1);
    world.push("opened", 1, secret_files(SECRET_PATCH)).await;
    let posted_again = wait_until(WAIT, || slack_calls(&world, "chat.postMessage") == 2).await;
    assert!(posted_again, "{:#?}", world.slack.requests());
    world.app.settle().await;

    assert_eq!(world.messages_with(ACTION_ACKNOWLEDGE_ALERT).len(), 2);
    let refused: Vec<String> = world
        .slack
        .rejections()
        .into_iter()
        .map(|r| r.error)
        .collect();
    assert_eq!(refused, ["missing_scope"]);
    assert_eq!(
        world
            .scalar("SELECT count(*) FROM slack_messages WHERE status = 'sent' AND ts IS NOT NULL")
            .await,
        1
    );
}
