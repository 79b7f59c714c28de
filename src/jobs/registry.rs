//! Every job kind, in one place: how a stored `kind` finds the struct its payload decodes into
//! and the code that runs it. A kind missing here is a job nothing can run.

use super::{
    ClosePullRequest, DashboardDecision, EscalateAlert, EscalateDigest, EvaluateMergeGroup,
    EvaluatePullRequest, HandleCommand, Job, JobContext, JobError, RecordMergeQueue,
    RedeliverWebhooks, RefreshInstallationConfig, SendEmail, SendPagerDuty, SendSlack,
    SlackDecision,
};
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;

type Running<'a> = Pin<Box<dyn Future<Output = Result<(), JobError>> + Send + 'a>>;

/// One registered kind.
struct Registered {
    kind: &'static str,
    urgent: bool,
    run: for<'a> fn(&'a JobContext<'a>, Value) -> Running<'a>,
}

const fn register<J: Job>() -> Registered {
    Registered {
        kind: J::KIND,
        urgent: J::URGENT,
        run: decode_and_run::<J>,
    }
}

const REGISTRY: &[Registered] = &[
    register::<EvaluatePullRequest>(),
    register::<EvaluateMergeGroup>(),
    register::<RecordMergeQueue>(),
    register::<HandleCommand>(),
    register::<SlackDecision>(),
    register::<DashboardDecision>(),
    register::<ClosePullRequest>(),
    register::<SendSlack>(),
    register::<SendEmail>(),
    register::<SendPagerDuty>(),
    register::<EscalateAlert>(),
    register::<EscalateDigest>(),
    register::<RefreshInstallationConfig>(),
    register::<RedeliverWebhooks>(),
];

/// The kinds claimed before any other ready job (see [`Job::URGENT`]).
pub fn urgent_kinds() -> Vec<&'static str> {
    REGISTRY
        .iter()
        .filter(|r| r.urgent)
        .map(|r| r.kind)
        .collect()
}

/// Runs a stored job. An unknown kind or a payload that does not decode fails the job for good:
/// another attempt would read the same row.
pub async fn run(ctx: &JobContext<'_>, kind: &str, payload: Value) -> Result<(), JobError> {
    (registered(kind)?.run)(ctx, payload).await
}

fn registered(kind: &str) -> Result<&'static Registered, JobError> {
    REGISTRY.iter().find(|r| r.kind == kind).ok_or_else(|| {
        JobError::Permanent(format!(
            "unknown job kind {kind:?}: no code runs it (queued by another version of Tollgate?)"
        ))
    })
}

fn decode_and_run<'a, J: Job>(ctx: &'a JobContext<'a>, payload: Value) -> Running<'a> {
    Box::pin(async move {
        let job = decode::<J>(payload)?;
        if let Some(target) = job.pull_request() {
            let span = tracing::Span::current();
            span.record("repository", target.repo.full_name().as_str());
            span.record("pr", target.number);
        }
        job.run(ctx).await
    })
}

fn decode<J: Job>(payload: Value) -> Result<J, JobError> {
    serde_json::from_value(payload).map_err(|error| {
        JobError::Permanent(format!(
            "the payload of this {} job does not decode: {error}",
            J::KIND
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashSet;

    #[test]
    fn every_kind_is_registered_once() {
        let kinds: HashSet<_> = REGISTRY.iter().map(|r| r.kind).collect();
        assert_eq!(kinds.len(), REGISTRY.len());
    }

    #[test]
    fn only_jobs_that_tell_people_something_are_urgent() {
        let mut urgent = urgent_kinds();
        urgent.sort_unstable();
        assert_eq!(
            urgent,
            [
                "escalate_alert",
                "escalate_digest",
                "send_email",
                "send_pagerduty",
                "send_slack"
            ]
        );
    }

    #[test]
    fn an_unknown_kind_fails_for_good_and_names_the_kind() {
        let Err(JobError::Permanent(message)) = registered("evaluate_pull_request_v0") else {
            panic!("an unknown kind must not run");
        };
        assert!(
            message.contains("\"evaluate_pull_request_v0\""),
            "{message}"
        );
        assert!(registered("evaluate_pr").is_ok());
    }

    #[test]
    fn a_payload_that_does_not_decode_fails_for_good_and_says_which_job() {
        let Err(JobError::Permanent(message)) = decode::<SendEmail>(json!({ "mail_id": 3 })) else {
            panic!("a misnamed key must not decode");
        };
        assert!(
            message.contains("send_email") && message.contains("email_id"),
            "{message}"
        );
    }

    #[test]
    fn stored_payloads_keep_their_shape() {
        // Jobs queued before these types existed decode into them.
        let target = json!({
            "installation_id": 1,
            "repo": { "id": 2, "owner": "o", "name": "r" },
            "number": 3
        });
        decode::<EvaluatePullRequest>(target.clone()).expect("evaluate_pr");
        decode::<ClosePullRequest>(target.clone()).expect("close_pull_request");
        decode::<EscalateAlert>(json!({ "alert_id": 4, "target": target })).expect("escalate");
        decode::<SendSlack>(json!({ "message_id": 5 })).expect("send_slack");
        decode::<SendPagerDuty>(json!({ "event_id": 6 })).expect("send_pagerduty");
        decode::<EscalateDigest>(json!({ "digest_id": 7 })).expect("escalate_digest");
        decode::<RefreshInstallationConfig>(json!({ "installation_id": 8 })).expect("refresh");
        decode::<RedeliverWebhooks>(json!({})).expect("redeliver_webhooks");
    }
}
