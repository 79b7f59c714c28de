//! Button clicks Slack sends to `POST /api/slack/interactions`: a form-encoded body whose
//! `payload` field holds JSON. Lenient about what Tollgate does not read, strict (with the path of
//! the missing field) about what it does. Verify the signature over the raw body first.

use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;

/// The button that approves a pending override request; its value is the request id.
pub const ACTION_APPROVE_OVERRIDE: &str = "tollgate_override_approve";
/// The button that rejects a pending override request; its value is the request id.
pub const ACTION_REJECT_OVERRIDE: &str = "tollgate_override_reject";
/// The button that acknowledges a BLOCK alert; its value is the alert id.
pub const ACTION_ACKNOWLEDGE_ALERT: &str = "tollgate_alert_ack";
/// The dialog a Reject click opens to ask why; submitting it rejects the request.
pub const CALLBACK_REJECT_REASON: &str = "tollgate_reject_reason";
/// The block and the text input of the reason in that dialog.
const REASON_BLOCK: &str = "reason";
const REASON_INPUT: &str = "reason_input";
/// Slack's limit is 3000; a reason is a sentence or two.
const MAX_REASON_CHARS: usize = 500;

/// What Slack reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// A click on a button of a message.
    BlockAction(BlockAction),
    /// A dialog (modal) submitted.
    ViewSubmission(ViewSubmission),
    /// Another kind of interaction (`shortcut`, `view_closed`, ...), by its `type`; answer 200
    /// and ignore it.
    Unsupported(String),
}

/// A click on a button of a message; when several actions came at once, the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAction {
    /// The Slack user id of who clicked (`U0123ABC`).
    pub user_id: String,
    /// Their username, or their name when Slack sends no username.
    pub user_name: Option<String>,
    pub team_id: Option<String>,
    /// The channel id of the message the button is on.
    pub channel_id: String,
    /// The `ts` of that message.
    pub message_ts: String,
    pub action_id: String,
    pub value: String,
    /// Lets the app open a dialog for this click, for 3 seconds.
    pub trigger_id: Option<String>,
}

/// A submitted dialog: who submitted it, which of Tollgate's dialogs it is, and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSubmission {
    pub user_id: String,
    pub callback_id: String,
    /// What the app put in the dialog when it opened it.
    pub private_metadata: String,
    /// The reason typed into the reject dialog, trimmed; `None` when empty or absent.
    pub reason: Option<String>,
}

/// What the reject dialog carries from the click to the submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectContext {
    pub request_id: i64,
    /// Where the request's message is, for a refusal only the approver sees.
    pub channel_id: String,
    pub message_ts: String,
}

/// The dialog (Block Kit modal) asking an approver why they reject a request.
pub fn reject_reason_view(context: &RejectContext) -> serde_json::Value {
    json!({
        "type": "modal",
        "callback_id": CALLBACK_REJECT_REASON,
        "private_metadata": serde_json::to_string(context).unwrap_or_default(),
        "title": {"type": "plain_text", "text": "Reject override"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input",
            "block_id": REASON_BLOCK,
            "label": {"type": "plain_text", "text": "Why is this override rejected?"},
            "hint": {
                "type": "plain_text",
                "text": "Posted on the pull request and kept in the audit log."
            },
            "element": {
                "type": "plain_text_input",
                "action_id": REASON_INPUT,
                "multiline": true,
                "max_length": MAX_REASON_CHARS
            }
        }]
    })
}

/// A click on one of Tollgate's buttons, with the id its value carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TollgateAction {
    ApproveOverride { request_id: i64 },
    RejectOverride { request_id: i64 },
    AcknowledgeAlert { alert_id: i64 },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InteractionError {
    #[error("the body has no payload field")]
    MissingPayload,
    #[error("the payload is not JSON: {0}")]
    MalformedPayload(String),
    #[error("the payload has no {0}")]
    MissingField(&'static str),
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    #[error("the value {0:?} of the button is not an id")]
    BadValue(String),
}

impl BlockAction {
    /// Which of Tollgate's buttons was clicked, and for which request or alert.
    pub fn tollgate_action(&self) -> Result<TollgateAction, InteractionError> {
        let id = || {
            self.value
                .parse::<i64>()
                .map_err(|_| InteractionError::BadValue(self.value.clone()))
        };
        match self.action_id.as_str() {
            ACTION_APPROVE_OVERRIDE => Ok(TollgateAction::ApproveOverride { request_id: id()? }),
            ACTION_REJECT_OVERRIDE => Ok(TollgateAction::RejectOverride { request_id: id()? }),
            ACTION_ACKNOWLEDGE_ALERT => Ok(TollgateAction::AcknowledgeAlert { alert_id: id()? }),
            other => Err(InteractionError::UnknownAction(other.to_owned())),
        }
    }
}

/// Reads the raw (already verified) body of an interaction request.
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, InteractionError> {
    let payload = form_urlencoded::parse(body)
        .find(|(name, _)| name == "payload")
        .map(|(_, value)| value)
        .ok_or(InteractionError::MissingPayload)?;
    let payload: Payload = serde_json::from_str(&payload)
        .map_err(|e| InteractionError::MalformedPayload(e.to_string()))?;
    let kind = payload
        .kind
        .clone()
        .ok_or(InteractionError::MissingField("type"))?;
    match kind.as_str() {
        "block_actions" => {}
        "view_submission" => return view_submission(payload).map(Interaction::ViewSubmission),
        _ => return Ok(Interaction::Unsupported(kind)),
    }
    let user = payload.user.ok_or(InteractionError::MissingField("user"))?;
    let container = payload.container.unwrap_or_default();
    let channel_id = container
        .channel_id
        .or(payload.channel.and_then(|c| c.id))
        .ok_or(InteractionError::MissingField("channel.id"))?;
    let message_ts = container
        .message_ts
        .or(payload.message.and_then(|m| m.ts))
        .ok_or(InteractionError::MissingField("container.message_ts"))?;
    let action = payload
        .actions
        .into_iter()
        .next()
        .ok_or(InteractionError::MissingField("actions[0]"))?;
    Ok(Interaction::BlockAction(BlockAction {
        user_id: user.id.ok_or(InteractionError::MissingField("user.id"))?,
        user_name: user.username.or(user.name),
        team_id: payload.team.and_then(|t| t.id).or(user.team_id),
        channel_id,
        message_ts,
        action_id: action
            .action_id
            .ok_or(InteractionError::MissingField("actions[0].action_id"))?,
        value: action
            .value
            .ok_or(InteractionError::MissingField("actions[0].value"))?,
        trigger_id: payload.trigger_id,
    }))
}

fn view_submission(payload: Payload) -> Result<ViewSubmission, InteractionError> {
    let user = payload.user.ok_or(InteractionError::MissingField("user"))?;
    let view = payload.view.ok_or(InteractionError::MissingField("view"))?;
    let reason = view
        .state
        .and_then(|state| state.values)
        .and_then(|mut blocks| blocks.remove(REASON_BLOCK))
        .and_then(|mut inputs| inputs.remove(REASON_INPUT))
        .and_then(|input| input.value)
        .map(|text| {
            text.trim()
                .chars()
                .take(MAX_REASON_CHARS)
                .collect::<String>()
        })
        .filter(|text| !text.is_empty());
    Ok(ViewSubmission {
        user_id: user.id.ok_or(InteractionError::MissingField("user.id"))?,
        callback_id: view
            .callback_id
            .ok_or(InteractionError::MissingField("view.callback_id"))?,
        private_metadata: view.private_metadata.unwrap_or_default(),
        reason,
    })
}

/// The parts of Slack's interaction payload Tollgate reads; every field optional so a missing
/// one is reported by name.
#[derive(Deserialize)]
struct Payload {
    #[serde(rename = "type")]
    kind: Option<String>,
    user: Option<User>,
    team: Option<Id>,
    channel: Option<Id>,
    container: Option<Container>,
    message: Option<Message>,
    #[serde(default)]
    actions: Vec<Action>,
    trigger_id: Option<String>,
    view: Option<View>,
}

#[derive(Deserialize)]
struct View {
    callback_id: Option<String>,
    private_metadata: Option<String>,
    state: Option<ViewState>,
}

/// `values`: block id → action id → the input's state.
#[derive(Deserialize)]
struct ViewState {
    values: Option<HashMap<String, HashMap<String, InputState>>>,
}

#[derive(Deserialize)]
struct InputState {
    value: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: Option<String>,
    username: Option<String>,
    name: Option<String>,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct Id {
    id: Option<String>,
}

#[derive(Deserialize, Default)]
struct Container {
    channel_id: Option<String>,
    message_ts: Option<String>,
}

#[derive(Deserialize)]
struct Message {
    ts: Option<String>,
}

#[derive(Deserialize)]
struct Action {
    action_id: Option<String>,
    value: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn form(payload: &Value) -> Vec<u8> {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    /// A click as Slack documents it, trimmed of nothing Tollgate ignores.
    fn click() -> Value {
        json!({
            "type": "block_actions",
            "user": {"id": "U123", "username": "alice", "name": "alice.a", "team_id": "T9"},
            "api_app_id": "A1",
            "token": "legacy",
            "container": {
                "type": "message",
                "message_ts": "1700000000.000100",
                "channel_id": "C42",
                "is_ephemeral": false
            },
            "trigger_id": "1.2.3",
            "team": {"id": "T1", "domain": "acme"},
            "channel": {"id": "C42", "name": "tollgate"},
            "message": {"type": "message", "ts": "1700000000.000100", "text": "x"},
            "response_url": "https://hooks.slack.example/actions/1",
            "actions": [{
                "action_id": ACTION_APPROVE_OVERRIDE,
                "block_id": "override",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "17",
                "type": "button",
                "action_ts": "1700000001.000000"
            }]
        })
    }

    fn parse(payload: &Value) -> Result<Interaction, InteractionError> {
        parse_interaction(&form(payload))
    }

    fn without(path: &[&str]) -> Value {
        let mut payload = click();
        let (last, parents) = path.split_last().unwrap();
        let mut node = &mut payload;
        for key in parents {
            node = match key.parse::<usize>() {
                Ok(i) => &mut node[i],
                Err(_) => &mut node[*key],
            };
        }
        node.as_object_mut().unwrap().remove(*last);
        payload
    }

    #[test]
    fn a_button_click_is_read() {
        let Interaction::BlockAction(action) = parse(&click()).unwrap() else {
            panic!("not a block action");
        };
        assert_eq!(
            action,
            BlockAction {
                user_id: "U123".into(),
                user_name: Some("alice".into()),
                team_id: Some("T1".into()),
                channel_id: "C42".into(),
                message_ts: "1700000000.000100".into(),
                action_id: ACTION_APPROVE_OVERRIDE.into(),
                value: "17".into(),
                trigger_id: Some("1.2.3".into()),
            }
        );
        assert_eq!(
            action.tollgate_action(),
            Ok(TollgateAction::ApproveOverride { request_id: 17 })
        );
    }

    #[test]
    fn optional_parts_fall_back() {
        let mut payload = without(&["container"]);
        payload["user"].as_object_mut().unwrap().remove("username");
        payload.as_object_mut().unwrap().remove("team");
        let Interaction::BlockAction(action) = parse(&payload).unwrap() else {
            panic!("not a block action");
        };
        assert_eq!(action.channel_id, "C42");
        assert_eq!(action.message_ts, "1700000000.000100");
        assert_eq!(action.user_name.as_deref(), Some("alice.a"));
        assert_eq!(action.team_id.as_deref(), Some("T9"));
    }

    #[test]
    fn other_interaction_types_are_unsupported() {
        let payload = json!({"type": "view_closed", "user": {"id": "U1"}});
        assert_eq!(
            parse(&payload),
            Ok(Interaction::Unsupported("view_closed".into()))
        );
    }

    #[test]
    fn a_submitted_reject_dialog_gives_its_reason_and_context() {
        let context = RejectContext {
            request_id: 17,
            channel_id: "C42".into(),
            message_ts: "1700000000.000100".into(),
        };
        let mut view = reject_reason_view(&context);
        view["id"] = json!("V1");
        view["state"] = json!({"values": {"reason": {"reason_input": {
            "type": "plain_text_input", "value": "  the key is live: rotate it  "
        }}}});
        let payload = json!({
            "type": "view_submission",
            "team": {"id": "T1", "domain": "acme"},
            "user": {"id": "U123", "username": "carol", "team_id": "T1"},
            "api_app_id": "A1",
            "trigger_id": "4.5.6",
            "view": view
        });
        let Interaction::ViewSubmission(submission) = parse(&payload).unwrap() else {
            panic!("not a view submission");
        };
        assert_eq!(submission.user_id, "U123");
        assert_eq!(submission.callback_id, CALLBACK_REJECT_REASON);
        assert_eq!(
            submission.reason.as_deref(),
            Some("the key is live: rotate it")
        );
        let back: RejectContext = serde_json::from_str(&submission.private_metadata).unwrap();
        assert_eq!(back, context);

        let mut blank = payload.clone();
        blank["view"]["state"]["values"]["reason"]["reason_input"]["value"] = json!("   ");
        let Interaction::ViewSubmission(submission) = parse(&blank).unwrap() else {
            panic!("not a view submission");
        };
        assert_eq!(submission.reason, None);
        let mut no_view = payload;
        no_view.as_object_mut().unwrap().remove("view");
        assert_eq!(parse(&no_view), Err(InteractionError::MissingField("view")));
    }

    #[test]
    fn missing_required_fields_are_named() {
        let cases: [(&[&str], &str); 5] = [
            (&["type"], "type"),
            (&["user", "id"], "user.id"),
            (&["actions", "0", "value"], "actions[0].value"),
            (&["actions", "0", "action_id"], "actions[0].action_id"),
            (&["user"], "user"),
        ];
        for (path, field) in cases {
            assert_eq!(
                parse(&without(path)),
                Err(InteractionError::MissingField(field)),
                "{path:?}"
            );
        }
        let mut no_channel = without(&["container"]);
        no_channel.as_object_mut().unwrap().remove("channel");
        assert_eq!(
            parse(&no_channel),
            Err(InteractionError::MissingField("channel.id"))
        );
        let mut no_ts = without(&["container"]);
        no_ts.as_object_mut().unwrap().remove("message");
        assert_eq!(
            parse(&no_ts),
            Err(InteractionError::MissingField("container.message_ts"))
        );
        let mut no_actions = click();
        no_actions["actions"] = json!([]);
        assert_eq!(
            parse(&no_actions),
            Err(InteractionError::MissingField("actions[0]"))
        );
    }

    #[test]
    fn bodies_that_are_not_payloads_are_refused() {
        assert_eq!(
            parse_interaction(b"token=x&user=y"),
            Err(InteractionError::MissingPayload)
        );
        assert!(matches!(
            parse_interaction(b"payload=%7Bnot+json"),
            Err(InteractionError::MalformedPayload(_))
        ));
    }

    #[test]
    fn tollgate_actions_need_a_known_id_and_a_numeric_value() {
        let action = |action_id: &str, value: &str| BlockAction {
            user_id: "U1".into(),
            user_name: None,
            team_id: None,
            channel_id: "C1".into(),
            message_ts: "1.1".into(),
            action_id: action_id.into(),
            value: value.into(),
            trigger_id: None,
        };
        assert_eq!(
            action(ACTION_REJECT_OVERRIDE, "3").tollgate_action(),
            Ok(TollgateAction::RejectOverride { request_id: 3 })
        );
        assert_eq!(
            action(ACTION_ACKNOWLEDGE_ALERT, "9").tollgate_action(),
            Ok(TollgateAction::AcknowledgeAlert { alert_id: 9 })
        );
        assert_eq!(
            action("other", "3").tollgate_action(),
            Err(InteractionError::UnknownAction("other".into()))
        );
        assert_eq!(
            action(ACTION_APPROVE_OVERRIDE, "3; drop").tollgate_action(),
            Err(InteractionError::BadValue("3; drop".into()))
        );
    }
}
