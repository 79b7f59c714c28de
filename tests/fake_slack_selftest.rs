//! The real Slack client against the fake Slack: proves the fake speaks the Web API's wire format
//! and refuses what Slack refuses, that the client maps every answer to the right result, and
//! that every message Tollgate builds is accepted.

mod support;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use std::time::Duration;
use support::fake_slack::{FakeSlack, block_action_body, signature_headers};
use support::wait_until;
use tollgate::config::Secret;
use tollgate::notify::slack::{
    ACTION_ACKNOWLEDGE_ALERT, AlertState, AlertView, BlockAction, Interaction, Lookup,
    MESSAGE_METADATA_EVENT_TYPE, MessageKey, OutgoingMessage, OverrideRequestView, PostedMessage,
    PrSummary, RequestState, SlackClient, SlackError, SlackMessage, TollgateAction, ViolationLine,
    alert_message, escalation_message, override_request_message, parse_interaction, thread_note,
    verify_slack_signature,
};
use tollgate::outbound::Trust;

const TOKEN: &str = "xoxb-test-token";
const CHANNEL: &str = "C0TOLLGATE";
const ESCALATION_CHANNEL: &str = "C0ONCALL";

async fn setup() -> (FakeSlack, SlackClient) {
    let fake = FakeSlack::start(TOKEN, &[CHANNEL, ESCALATION_CHANNEL]).await;
    let client = SlackClient::new(&fake.api_url(), Secret::new(TOKEN), &Trust::system()).unwrap();
    (fake, client)
}

fn outgoing(channel: &str, thread_ts: Option<&str>, message: SlackMessage) -> OutgoingMessage {
    keyed(channel, thread_ts, 1, message)
}

/// A message carrying the key of `slack_messages` row `id`.
fn keyed(
    channel: &str,
    thread_ts: Option<&str>,
    id: i64,
    message: SlackMessage,
) -> OutgoingMessage {
    OutgoingMessage {
        channel: channel.to_owned(),
        thread_ts: thread_ts.map(str::to_owned),
        key: MessageKey::of_message(id),
        message,
    }
}

fn pr() -> PrSummary {
    PrSummary {
        repo_full_name: "acme/widgets".into(),
        number: 7,
        title: "Add the deploy script".into(),
        url: "https://github.com/acme/widgets/pull/7".into(),
        author: "@octocat".into(),
    }
}

fn violations(count: usize) -> Vec<ViolationLine> {
    (0..count)
        .map(|i| ViolationLine {
            rule_id: "R01".into(),
            rule_name: Some("Provider secret or token".into()),
            location: Some(format!("deploy/f{i}.env:{i}")),
            message: "GitHub personal access token".into(),
        })
        .collect()
}

fn override_view(state: RequestState) -> OverrideRequestView {
    OverrideRequestView {
        request_id: 17,
        pr: pr(),
        requester: "@alice".into(),
        reason: "Revoked test fixture & <harmless>".into(),
        violations: violations(3),
        approvers: vec!["<@U0CAROL>".into()],
        state,
    }
}

fn alert_view(state: AlertState) -> AlertView {
    AlertView {
        alert_id: 9,
        pr: pr(),
        rule_id: "R01".into(),
        rule_name: Some("Provider secret or token".into()),
        violations: violations(12),
        state,
    }
}

#[tokio::test]
async fn post_update_and_ephemeral_round_trip() {
    let (fake, client) = setup().await;
    let pending = override_request_message(&override_view(RequestState::Pending {
        approvals: 0,
        required: 1,
    }));
    let before = Utc::now().timestamp();
    let posted = client
        .post_message(&outgoing(CHANNEL, None, pending.clone()))
        .await
        .unwrap();
    assert_eq!(posted.channel, CHANNEL);
    let (seconds, micros) = posted.ts.split_once('.').expect("seconds.micros");
    assert!(seconds.parse::<i64>().unwrap() >= before, "{}", posted.ts);
    assert_eq!(micros.len(), 6, "{}", posted.ts);
    let stored = fake.message(CHANNEL, &posted.ts).unwrap();
    assert_eq!(stored.text.as_deref(), Some(pending.text.as_str()));
    assert_eq!(stored.blocks.as_ref(), Some(&pending.blocks));
    assert_eq!(
        stored.metadata,
        Some(json!({
            "event_type": MESSAGE_METADATA_EVENT_TYPE,
            "event_payload": {"key": "tollgate-slack-message-1"}
        }))
    );

    let approved = override_request_message(&override_view(RequestState::Approved {
        by: "<@U0BOB>".into(),
        note: None,
    }));
    client
        .update_message(&posted.channel, &posted.ts, &approved)
        .await
        .unwrap();
    let stored = fake.message(CHANNEL, &posted.ts).unwrap();
    assert_eq!(stored.blocks.as_ref(), Some(&approved.blocks));
    assert_eq!(stored.history.len(), 1);
    assert_eq!(stored.history[0].blocks.as_ref(), Some(&pending.blocks));

    client
        .post_ephemeral(
            CHANNEL,
            "U0MALLORY",
            "Only approvers can decide.",
            Some(&posted.ts),
        )
        .await
        .unwrap();
    let ephemerals = fake.ephemerals();
    assert_eq!(ephemerals.len(), 1);
    assert_eq!(ephemerals[0].user, "U0MALLORY");
    assert_eq!(ephemerals[0].thread_ts.as_deref(), Some(posted.ts.as_str()));
    assert_eq!(fake.messages().len(), 1, "an ephemeral is not a message");

    let requests = fake.requests();
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(
        methods,
        ["chat.postMessage", "chat.update", "chat.postEphemeral"]
    );
    assert_eq!(
        requests[0].body.as_ref().unwrap()["channel"],
        json!(CHANNEL)
    );
    assert!(
        requests[0]
            .body
            .as_ref()
            .unwrap()
            .get("thread_ts")
            .is_none()
    );
    fake.assert_clean();
}

/// Posts an open alert to the channel, as the app's first message about a pull request.
async fn post_open_alert(client: &SlackClient) -> PostedMessage {
    client
        .post_message(&outgoing(
            CHANNEL,
            None,
            alert_message(&alert_view(AlertState::Open)),
        ))
        .await
        .unwrap()
}

#[tokio::test]
async fn replies_go_in_the_thread() {
    let (fake, client) = setup().await;
    let parent = post_open_alert(&client).await;
    let reply = client
        .post_message(&outgoing(
            CHANNEL,
            Some(&parent.ts),
            thread_note("Override cancelled by @alice"),
        ))
        .await
        .unwrap();
    assert!(reply.ts > parent.ts, "ts values increase");
    let replies = fake.replies(CHANNEL, &parent.ts);
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].ts, reply.ts);
    assert_eq!(
        fake.requests()[1].body.as_ref().unwrap()["thread_ts"],
        json!(parent.ts)
    );
    fake.assert_clean();
}

#[tokio::test]
async fn a_bad_token_is_a_permanent_error() {
    let (fake, _) = setup().await;
    let client =
        SlackClient::new(&fake.api_url(), Secret::new("xoxb-wrong"), &Trust::system()).unwrap();
    let error = client
        .post_message(&outgoing(CHANNEL, None, thread_note("hello")))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SlackError::Api { code, .. } if code == "invalid_auth"),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains("xoxb"), "{error}");
    assert_eq!(fake.rejections()[0].error, "invalid_auth");
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn server_errors_are_retryable_and_the_retry_succeeds() {
    let (fake, client) = setup().await;
    fake.fail_next("chat.postMessage", 500, 1);
    let message = outgoing(CHANNEL, None, thread_note("hello"));
    let error = client.post_message(&message).await.unwrap_err();
    assert_eq!(error, SlackError::Server { status: 500 });
    assert!(error.is_retryable());
    assert_eq!(error.retry_after(), None);
    client.post_message(&message).await.unwrap();
    assert_eq!(fake.messages().len(), 1);
    fake.assert_clean();
}

#[tokio::test]
async fn rate_limits_carry_retry_after() {
    let (fake, client) = setup().await;
    fake.rate_limit_next("chat.update", 7, 1);
    let posted = client
        .post_message(&outgoing(CHANNEL, None, thread_note("v1")))
        .await
        .unwrap();
    let error = client
        .update_message(&posted.channel, &posted.ts, &thread_note("v2"))
        .await
        .unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error.is_retryable());
    fake.assert_clean();
}

#[tokio::test]
async fn injected_api_errors_keep_their_retryability() {
    let (fake, client) = setup().await;
    fake.api_error_next("*", "service_unavailable", 1);
    fake.api_error_next("chat.postEphemeral", "user_not_in_channel", 1);
    let message = outgoing(CHANNEL, None, thread_note("hello"));
    assert!(
        client
            .post_message(&message)
            .await
            .unwrap_err()
            .is_retryable()
    );
    let error = client
        .post_ephemeral(CHANNEL, "U0NOBODY", "hi", None)
        .await
        .unwrap_err();
    assert!(matches!(&error, SlackError::Api { code, .. } if code == "user_not_in_channel"));
    assert!(!error.is_retryable());
    fake.assert_clean();
}

#[tokio::test]
async fn unknown_channels_messages_threads_and_users_are_refused() {
    let (fake, client) = setup().await;
    let code = |error: SlackError| match error {
        SlackError::Api { code, .. } => code,
        other => panic!("not an API error: {other:?}"),
    };
    let note = thread_note("hello");
    let error = client
        .post_message(&outgoing("C0UNKNOWN", None, note.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(error), "channel_not_found");
    let error = client
        .post_message(&outgoing(CHANNEL, Some("1.000001"), note.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(error), "thread_not_found");
    let error = client
        .update_message(CHANNEL, "1700000000.000100", &note)
        .await
        .unwrap_err();
    assert_eq!(code(error), "message_not_found");
    let error = client
        .post_ephemeral(CHANNEL, "", "hi", None)
        .await
        .unwrap_err();
    assert_eq!(code(error), "invalid_arguments");
    let refused: Vec<String> = fake.rejections().into_iter().map(|r| r.error).collect();
    assert_eq!(
        refused,
        [
            "channel_not_found",
            "thread_not_found",
            "message_not_found",
            "invalid_arguments"
        ]
    );
}

#[tokio::test]
async fn invalid_blocks_are_refused_with_slacks_explanation() {
    let (fake, client) = setup().await;
    let cases = [
        json!([{"type": "section"}]),
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}]),
        json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}]),
        json!([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}]),
        json!([{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]),
        json!([{"type": "carousel"}]),
        json!([{"type": "divider", "color": "red"}]),
        json!(
            (0..51)
                .map(|_| json!({"type": "divider"}))
                .collect::<Vec<_>>()
        ),
        json!([{"type": "actions", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"}},
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "B"}}
        ]}]),
        json!([{"type": "actions", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "A"},
             "value": "v".repeat(2001)}
        ]}]),
        json!([{"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "A"}, "style": "loud"}
        ]}]),
    ];
    for (i, blocks) in cases.into_iter().enumerate() {
        let message = SlackMessage {
            text: "fallback".into(),
            blocks,
        };
        let error = client
            .post_message(&outgoing(CHANNEL, None, message))
            .await
            .unwrap_err();
        let explained = matches!(
            &error,
            SlackError::Api { code, detail: Some(_), .. } if code == "invalid_blocks"
        );
        assert!(explained, "case {i}: {error:?}");
        assert!(!error.is_retryable());
    }
    assert_eq!(fake.rejections().len(), 11);
    assert!(fake.messages().is_empty());
}

#[tokio::test]
async fn every_message_tollgate_builds_is_accepted() {
    let (fake, client) = setup().await;
    let request_states = [
        RequestState::Pending {
            approvals: 1,
            required: 2,
        },
        RequestState::Approved {
            by: "<@U0BOB>".into(),
            note: Some("ok".into()),
        },
        RequestState::Rejected {
            by: "@bob".into(),
            reason: "no".into(),
        },
        RequestState::Cancelled {
            by: "@alice".into(),
        },
        RequestState::Expired,
    ];
    let alert_states = [
        AlertState::Open,
        AlertState::Acknowledged {
            by: "<@U0CAROL>".into(),
        },
        AlertState::Resolved,
    ];
    let mut messages: Vec<SlackMessage> = request_states
        .into_iter()
        .map(|state| override_request_message(&override_view(state)))
        .collect();
    for state in alert_states {
        let alert = alert_view(state);
        messages.push(alert_message(&alert));
        messages.push(escalation_message(
            &alert,
            Duration::from_secs(900),
            Some("<!channel>"),
        ));
    }
    messages.push(thread_note("Override cancelled by <@U0ALICE>"));
    for message in messages {
        let posted = client
            .post_message(&outgoing(CHANNEL, None, message.clone()))
            .await
            .unwrap();
        client
            .update_message(&posted.channel, &posted.ts, &message)
            .await
            .unwrap();
    }
    fake.assert_clean();
}

#[tokio::test]
async fn a_signed_click_body_verifies_and_parses() {
    let (fake, client) = setup().await;
    let posted = post_open_alert(&client).await;
    let body = block_action_body(
        "U0CAROL",
        ACTION_ACKNOWLEDGE_ALERT,
        "9",
        CHANNEL,
        &posted.ts,
    );
    let [timestamp, signature] = signature_headers("signing-secret", 1_700_000_000, &body);
    let verified = verify_slack_signature(
        &Secret::new("signing-secret"),
        Some(&timestamp.1),
        Some(&signature.1),
        &body,
        1_700_000_060,
    );
    assert_eq!(verified, Ok(()));
    let Interaction::BlockAction(action) = parse_interaction(&body).unwrap() else {
        panic!("not a block action");
    };
    assert_eq!(
        action,
        BlockAction {
            user_id: "U0CAROL".into(),
            user_name: Some("u0carol".into()),
            team_id: Some("T0TEST".into()),
            channel_id: CHANNEL.into(),
            message_ts: posted.ts.clone(),
            action_id: ACTION_ACKNOWLEDGE_ALERT.into(),
            value: "9".into(),
            trigger_id: Some("1000.2000.abc".into()),
        }
    );
    assert_eq!(
        action.tollgate_action(),
        Ok(TollgateAction::AcknowledgeAlert { alert_id: 9 })
    );
    fake.assert_clean();
}

#[tokio::test]
async fn unknown_paths_are_unexpected() {
    let (fake, _) = setup().await;
    let response = reqwest::Client::new()
        .post(format!("{}/conversations.list", fake.api_url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(fake.unexpected_requests().len(), 1);
}

/// A lookup from a minute before now, for `key` in `channel` or the thread `thread_ts`.
fn lookup<'a>(channel: &'a str, thread_ts: Option<&'a str>, key: &'a MessageKey) -> Lookup<'a> {
    Lookup {
        channel,
        thread_ts,
        oldest: Utc::now() - TimeDelta::minutes(1),
        key,
    }
}

#[tokio::test]
async fn a_posted_message_is_found_by_its_key_past_the_first_page_and_in_its_thread() {
    let (fake, client) = setup().await;
    let parent = client
        .post_message(&keyed(CHANNEL, None, 41, thread_note("parent")))
        .await
        .unwrap();
    let reply = client
        .post_message(&keyed(CHANNEL, Some(&parent.ts), 42, thread_note("reply")))
        .await
        .unwrap();
    // Newer messages of other apps, with other metadata or none, push it past the first page.
    for i in 0..250 {
        let metadata = (i % 2 == 0).then(|| {
            json!({"event_type": "other_app", "event_payload": {"key": "tollgate-slack-message-41"}})
        });
        fake.add_message(CHANNEL, &format!("other {i}"), metadata);
    }

    let parent_key = MessageKey::of_message(41);
    let found = client
        .find_message(&lookup(CHANNEL, None, &parent_key))
        .await
        .unwrap();
    assert_eq!(found, Some(parent.ts.clone()));
    let reply_key = MessageKey::of_message(42);
    let found = client
        .find_message(&lookup(CHANNEL, Some(&parent.ts), &reply_key))
        .await
        .unwrap();
    assert_eq!(found, Some(reply.ts.clone()));

    // A reply is not in the channel's history, an unknown key is nowhere, nor is a message
    // posted before `oldest`.
    let history = client
        .find_message(&lookup(CHANNEL, None, &reply_key))
        .await
        .unwrap();
    assert_eq!(history, None);
    let unknown = MessageKey::of_message(4);
    let nowhere = client
        .find_message(&lookup(CHANNEL, None, &unknown))
        .await
        .unwrap();
    assert_eq!(nowhere, None);
    let later = Lookup {
        oldest: Utc::now() + TimeDelta::minutes(1),
        ..lookup(CHANNEL, None, &parent_key)
    };
    assert_eq!(client.find_message(&later).await.unwrap(), None);

    let pages = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "conversations.history")
        .collect::<Vec<_>>();
    assert_eq!(
        pages[0].body.as_ref().unwrap()["include_all_metadata"],
        "true"
    );
    assert!(
        pages[1].body.as_ref().unwrap()["cursor"].is_string(),
        "{pages:#?}"
    );
    fake.assert_clean();
}

#[tokio::test]
async fn a_lookup_without_the_read_scope_is_refused_with_the_scope_it_needs() {
    let (fake, client) = setup().await;
    fake.set_read_scopes(&[]);
    let key = MessageKey::of_message(1);
    let error = client
        .find_message(&lookup(CHANNEL, None, &key))
        .await
        .unwrap_err();
    assert!(error.is_missing_scope(), "{error:?}");
    assert!(!error.is_retryable());
    assert!(error.to_string().contains("channels:history"), "{error}");
    assert_eq!(fake.rejections()[0].error, "missing_scope");
}

#[tokio::test]
async fn a_held_call_is_applied_at_once_and_answered_on_release() {
    let (fake, client) = setup().await;
    let hold = fake.hold("chat.postMessage", 2);
    client
        .post_message(&outgoing(CHANNEL, None, thread_note("first")))
        .await
        .unwrap();
    let held = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .post_message(&outgoing(CHANNEL, None, thread_note("second")))
                .await
        })
    };
    assert!(wait_until(Duration::from_secs(10), || hold.reached()).await);
    assert_eq!(fake.messages().len(), 2, "applied before the answer");
    assert!(!held.is_finished());
    hold.release();
    let posted = held.await.unwrap().unwrap();
    assert_eq!(fake.messages()[1].ts, posted.ts);
    fake.assert_clean();
}

#[tokio::test]
async fn a_lost_answer_leaves_the_message_posted() {
    let (fake, client) = setup().await;
    fake.lose_answer_next("chat.postMessage", 1);
    let error = client
        .post_message(&keyed(CHANNEL, None, 9, thread_note("hello")))
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    assert_eq!(fake.messages().len(), 1);
    let key = MessageKey::of_message(9);
    let found = client.find_message(&lookup(CHANNEL, None, &key)).await;
    assert_eq!(found.unwrap(), Some(fake.messages()[0].ts.clone()));
    fake.assert_clean();
}
