//! PostgreSQL access: every SQL statement of the app lives under this module.

mod alerts;
mod audit;
pub mod dashboard;
mod deliveries;
mod evaluations;
mod github_budget;
mod merge_queue;
mod notifications;
mod operations;
mod overrides;
mod redeliveries;
mod slack;
mod tenants;
pub mod trends;

pub use alerts::{
    AlertRow, NewAlert, alert, alert_history, close_alert, insert_alert, mark_escalated,
    open_alerts,
};
pub use audit::{AuditEntry, audit};
pub use notifications::{
    CachedInstallationConfig, DigestRow, EmailKind, EmailMessageRow, GrantedOverride, NewDigest,
    PagerDutyEventRow, ViolationGroup, acknowledge_digest, cached_installation_config,
    cached_installation_configs, claim_digest, digest, digest_claimed, email_message,
    insert_email_message, insert_pagerduty_event, installation_account,
    installations_needing_config, mark_digest_escalated, overrides_granted, pagerduty_event,
    pagerduty_triggered, record_email_attempt, record_pagerduty_attempt, save_installation_config,
    tier2_emails_since, use_ack_nonce, violation_groups,
};
pub use overrides::{
    CommandComment, CommandResult, NewOverrideRequest, OverrideRequestRow, add_approval,
    command_result, insert_command_result, insert_override_request, lock_pull_request,
    mark_reply_requested, override_request, override_requests_of, set_override_status,
    set_reply_comment_id,
};
pub use slack::{
    NewSlackMessage, SlackMessageRow, SlackSubject, fail_slack_message, record_slack_attempt,
    request_slack_post, set_slack_ts, slack_message, slack_message_of, upsert_slack_message,
};

pub use deliveries::{
    DeliveryRecord, DeliveryStatus, DeliveryWithJobs, record_deliveries, record_delivery,
};
pub use evaluations::{
    CompletedEvaluation, EvaluationStart, PreviousEvaluation, PullRequestRecord,
    abandon_unfinished_evaluations, comment_id, complete_evaluation, fail_evaluation,
    latest_violations, mark_check_run_requested, previous_evaluation, pull_request_record,
    recent_scores, set_check_run_id, set_comment_id, start_evaluation, supersede_evaluation,
};
pub use github_budget::{WriteSlot, cache_repo_config, cached_repo_config, take_write_slot};
pub use merge_queue::{
    CompletedQueueEvaluation, QueueEvaluationStart, complete_queue_evaluation,
    fail_queue_evaluation, group_pull_requests, mark_queue_check_run_requested,
    mark_queue_comment_requested, passed_at_head, queue_comment, record_queue_change,
    set_queue_check_run_id, set_queue_comment_id, start_queue_evaluation,
};
pub use operations::{
    DailyJob, RetentionCategory, claim_daily_run, count_expired, delete_expired_batch,
    finish_daily_run, marks, notification_attempts, queue_sample, set_mark,
};
pub use redeliveries::{
    RedeliveryClaim, claim_redelivery, release_redelivery, set_redelivery_outcome,
    unknown_delivery_guids,
};
pub use tenants::{apply_installation_change, ensure_repository, sync_rule_definitions};

use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub async fn connect(database_url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(10))
        .connect(database_url)
        .await
}

pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Ready means: the database answers and every migration this binary knows is applied.
pub async fn readiness(pool: &PgPool) -> Result<(), String> {
    let applied: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(pool)
            .await
            .map_err(|e| format!("database: {e}"))?;
    let missing: Vec<i64> = MIGRATOR
        .iter()
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "migrations not applied: {missing:?} (run `tollgate migrate`)"
        ))
    }
}
