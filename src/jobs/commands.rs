//! The `handle_command` and `slack_decision` jobs: `/override`, `/override cancel`, `/approve`
//! and `/reject` typed on a pull request, and Approve / Reject clicks in Slack.
//!
//! Lookups on GitHub (permission, teams) happen before the transaction; the decision, the
//! request rows, the audit entries, the Slack messages to send and the re-evaluation are recorded
//! in one transaction under the pull request's lock, together with the comment's result. A
//! retried job finds that result and only finishes the feedback (reaction and reply), so a
//! command is decided once and answered once.

use super::requests::{approved_overrides, audit_request, progress_of, status_of};
use super::slack::enqueue_slack_send;
use super::{DEFAULT_MAX_ATTEMPTS, Job, JobContext, JobError, enqueue_evaluation};
use crate::commands::{Command, CommandError, parse_commands};
use crate::config::TeamRef;
use crate::config::{OverrideSettings, SlackSettings};
use crate::domain::{RuleId, Violation};
use crate::github::events::{CommentCommand, PrTarget, RepoRef, is_bot_login};
use crate::github::{GithubApp, InstallationClient, Reaction, TeamMembership};
use crate::overrides::{
    Access, ApproverIdentity, Denial, RepoPermission, RequestProgress, RequestStatus, Requester,
    TeamLookup, TransitionError, decide_override, login_for_slack_user, may_cancel, may_decide,
    overridable_rules, select_scope,
};
use crate::policy::PolicyEngine;
use crate::report::{CommandKind, Reply, keyed_reply, render_reply, reply_key};
use crate::store::{
    self, AuditEntry, CommandComment, CommandResult, NewOverrideRequest, NewSlackMessage,
    OverrideRequestRow, SlackSubject,
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;

/// An Approve or Reject click, as the `slack_decision` job reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SlackDecision {
    pub request_id: i64,
    pub approve: bool,
    pub slack_user_id: String,
    pub channel_id: String,
    pub message_ts: String,
    /// What the approver typed in the reject dialog.
    #[serde(default)]
    pub reason: Option<String>,
}

/// An Approve or Reject from the dashboard, as the `dashboard_decision` job reads it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DashboardDecision {
    pub request_id: i64,
    pub approve: bool,
    /// The logged-in GitHub user.
    pub login: String,
    /// The approval note or rejection reason they gave.
    pub reason: Option<String>,
}

/// The `handle_command` job: the commands of one pull-request comment. The key is the comment,
/// so a redelivered webhook coalesces with its pending job; commands on one pull request are
/// serialized by the handler, not by the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HandleCommand {
    pub command: CommentCommand,
}

impl Job for HandleCommand {
    const KIND: &'static str = "handle_command";
    const MAX_ATTEMPTS: i32 = DEFAULT_MAX_ATTEMPTS;

    fn dedup_key(&self) -> String {
        let command = &self.command;
        format!("command:{}:{}", command.target.repo.id, command.comment_id)
    }

    fn pull_request(&self) -> Option<&PrTarget> {
        Some(&self.command.target)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        ctx.handlers.commands.run(&self.command).await
    }
}

impl Job for SlackDecision {
    const KIND: &'static str = "slack_decision";
    const MAX_ATTEMPTS: i32 = DEFAULT_MAX_ATTEMPTS;

    /// Repeated clicks of one person on one button coalesce while the first waits.
    fn dedup_key(&self) -> String {
        decision_key::<Self>(self.request_id, &self.slack_user_id, self.approve)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        ctx.handlers.commands.slack_decision(self).await
    }
}

impl Job for DashboardDecision {
    const KIND: &'static str = "dashboard_decision";
    const MAX_ATTEMPTS: i32 = DEFAULT_MAX_ATTEMPTS;

    /// Coalesced like Slack clicks.
    fn dedup_key(&self) -> String {
        decision_key::<Self>(self.request_id, &self.login, self.approve)
    }

    async fn run(&self, ctx: &JobContext<'_>) -> Result<(), JobError> {
        ctx.handlers.commands.dashboard_decision(self).await
    }
}

/// The key of one person's decision on one request.
fn decision_key<J: Job>(request_id: i64, who: &str, approve: bool) -> String {
    let verb = if approve { "approve" } else { "reject" };
    format!("{}:{request_id}:{who}:{verb}", J::KIND)
}

pub struct CommandHandler {
    pool: PgPool,
    github: GithubApp,
    engine: Arc<PolicyEngine>,
    slack: Option<SlackSettings>,
}

/// Everything a command on one pull request is decided with.
struct Context<'a> {
    target: &'a PrTarget,
    comment_id: i64,
    identity: &'a ApproverIdentity,
    settings: &'a OverrideSettings,
    pr_author: &'a str,
    head_sha: &'a str,
    violations: &'a [Violation],
}

/// What deciding one command did.
struct Decided {
    reply: Option<String>,
    denied: bool,
    /// Overrides changed: the pull request is evaluated again.
    changed: bool,
}

/// An approval or rejection of a request, from GitHub or Slack.
enum Decision<'a> {
    Approve { note: Option<&'a str> },
    Reject { reason: &'a str },
}

/// What came of a [`Decision`].
enum DecisionOutcome {
    Refused(Denial),
    NotAllowed(TransitionError),
    Approved(RequestProgress),
    Rejected { reason: String },
}

impl CommandHandler {
    pub fn new(
        pool: PgPool,
        github: GithubApp,
        engine: Arc<PolicyEngine>,
        slack: Option<SlackSettings>,
    ) -> Self {
        Self {
            pool,
            github,
            engine,
            slack,
        }
    }

    fn client(&self, installation_id: i64) -> Result<InstallationClient, JobError> {
        super::installation_client(&self.github, installation_id)
    }

    pub async fn run(&self, command: &CommentCommand) -> Result<(), JobError> {
        let target = &command.target;
        let client = self.client(target.installation_id)?;
        let comment_id = i64::try_from(command.comment_id)
            .map_err(|_| JobError::Permanent("comment id out of range".into()))?;
        if let Some(result) = store::command_result(&self.pool, target.repo.id, comment_id).await? {
            return self.feedback(&client, command, &result).await;
        }
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let pr = client.pull_request(owner, repo, target.number).await?;
        let config = super::evaluate::load_repo_config(
            &self.pool,
            &client,
            target,
            &pr,
            self.engine.catalog(),
        )
        .await?;
        // With a broken config the defaults decide what a command is; the reply says why
        // nothing was done.
        let min_reason = config
            .as_ref()
            .map(|c| c.overrides.min_reason_length)
            .unwrap_or(OverrideSettings::default().min_reason_length);
        let commands = parse_commands(&command.body, min_reason);
        if commands.is_empty() {
            tracing::info!("no command of ours in the comment");
            return Ok(());
        }
        client
            .add_reaction(owner, repo, command.comment_id, Reaction::Eyes)
            .await?;
        let result = match config {
            Err(error) => {
                let first = commands.iter().find_map(|c| c.result.as_ref().ok());
                let reply = Reply::ConfigInvalid {
                    to: &command.author,
                    command: first.map_or(CommandKind::Override, CommandKind::from),
                    error: &error,
                };
                let result = CommandResult {
                    outcome: "denied".to_owned(),
                    reaction: Reaction::MinusOne.as_str().to_owned(),
                    reply: Some(render_reply(&reply, self.engine.catalog())),
                    reply_comment_id: None,
                    reply_requested: false,
                };
                let mut tx = self.pool.begin().await?;
                record_result(&mut tx, command, comment_id, &result).await?;
                tx.commit().await?;
                result
            }
            Ok(config) => {
                // Lookups before the transaction: none stays open across a GitHub call.
                let identity =
                    identity(&client, &target.repo, &command.author, &config.overrides).await;
                let latest = store::latest_violations(&self.pool, target).await?;
                let violations = latest.map(|(_, v)| v).unwrap_or_default();
                let context = Context {
                    target,
                    comment_id,
                    identity: &identity,
                    settings: &config.overrides,
                    pr_author: &pr.user.login,
                    head_sha: &pr.head.sha,
                    violations: &violations,
                };
                let parsed: Vec<_> = commands.into_iter().map(|c| c.result).collect();
                self.decide_all(command, &context, &parsed).await?
            }
        };
        self.feedback(&client, command, &result).await
    }

    /// Decides every command of the comment, in order, in one transaction.
    async fn decide_all(
        &self,
        command: &CommentCommand,
        context: &Context<'_>,
        parsed: &[Result<Command, CommandError>],
    ) -> Result<CommandResult, JobError> {
        let target = context.target;
        let mut tx = self.pool.begin().await?;
        store::lock_pull_request(&mut tx, target.repo.id, pr_number(target)).await?;
        let mut replies = Vec::new();
        let (mut denied, mut changed) = (false, false);
        for command in parsed {
            let decided = self.decide(&mut tx, context, command).await?;
            denied |= decided.denied;
            changed |= decided.changed;
            replies.extend(decided.reply);
        }
        let result = CommandResult {
            outcome: if denied { "denied" } else { "accepted" }.to_owned(),
            reaction: if denied {
                Reaction::MinusOne
            } else {
                Reaction::PlusOne
            }
            .as_str()
            .to_owned(),
            reply: (!replies.is_empty()).then(|| replies.join("\n\n")),
            reply_comment_id: None,
            reply_requested: false,
        };
        record_result(&mut tx, command, context.comment_id, &result).await?;
        if changed {
            enqueue_evaluation(&mut tx, target).await?;
        }
        tx.commit().await?;
        Ok(result)
    }

    async fn decide(
        &self,
        tx: &mut PgConnection,
        context: &Context<'_>,
        command: &Result<Command, CommandError>,
    ) -> Result<Decided, sqlx::Error> {
        let catalog = self.engine.catalog();
        let to = context.identity.login.as_str();
        let requests =
            store::override_requests_of(tx, context.target.repo.id, pr_number(context.target))
                .await?;
        let command = match command {
            Ok(command) => command,
            Err(error) => {
                let overridable =
                    overridable_rules(context.violations, &approved_overrides(&requests), catalog);
                let reply = Reply::NotUnderstood {
                    to,
                    error,
                    overridable: &overridable,
                };
                return Ok(refused(render_reply(&reply, catalog)));
            }
        };
        let kind = CommandKind::from(command);
        match command {
            Command::Override { rules, reason } => {
                self.request_override(tx, context, &requests, rules, reason)
                    .await
            }
            Command::CancelOverride => self.cancel(tx, context, &requests).await,
            Command::Approve { note } => {
                let decision = Decision::Approve {
                    note: note.as_deref(),
                };
                self.decide_pending(tx, context, &requests, &decision, kind)
                    .await
            }
            Command::Reject { reason } => {
                let decision = Decision::Reject { reason };
                self.decide_pending(tx, context, &requests, &decision, kind)
                    .await
            }
        }
    }

    /// `/approve` or `/reject` on the pull request's newest pending request.
    async fn decide_pending(
        &self,
        tx: &mut PgConnection,
        context: &Context<'_>,
        requests: &[OverrideRequestRow],
        decision: &Decision<'_>,
        kind: CommandKind,
    ) -> Result<Decided, sqlx::Error> {
        let catalog = self.engine.catalog();
        let to = context.identity.login.as_str();
        let Some(request) = requests
            .iter()
            .rev()
            .find(|r| status_of(r) == RequestStatus::Pending)
        else {
            return Ok(refused(render_reply(
                &Reply::NothingPending { to, command: kind },
                catalog,
            )));
        };
        let outcome = self
            .decide_request(
                tx,
                request,
                context.identity,
                context.pr_author,
                decision,
                "github",
            )
            .await?;
        Ok(match &outcome {
            DecisionOutcome::Refused(denial) => refused(render_reply(
                &Reply::Denied {
                    to,
                    command: kind,
                    denial,
                },
                catalog,
            )),
            DecisionOutcome::NotAllowed(error) => refused(render_reply(
                &Reply::DecisionRefused {
                    to,
                    command: kind,
                    error,
                },
                catalog,
            )),
            DecisionOutcome::Approved(progress) => accepted(render_reply(
                &Reply::ApprovalRecorded {
                    to,
                    requested_by: &request.requested_by,
                    progress,
                },
                catalog,
            )),
            DecisionOutcome::Rejected { reason } => accepted(render_reply(
                &Reply::Rejected {
                    requested_by: &request.requested_by,
                    by: to,
                    reason,
                },
                catalog,
            )),
        })
    }

    async fn request_override(
        &self,
        tx: &mut PgConnection,
        context: &Context<'_>,
        requests: &[OverrideRequestRow],
        rules: &[RuleId],
        reason: &str,
    ) -> Result<Decided, sqlx::Error> {
        let catalog = self.engine.catalog();
        let identity = context.identity;
        let to = identity.login.as_str();
        let approved = approved_overrides(requests);
        let scope = match select_scope(context.violations, &approved, rules, catalog) {
            Ok(scope) => scope,
            Err(error) => {
                let reply = Reply::ScopeRefused { to, error: &error };
                return Ok(refused(render_reply(&reply, catalog)));
            }
        };
        let requester = Requester {
            login: identity.login.clone(),
            is_bot: identity.is_bot,
            access: identity.access.clone(),
        };
        let progress = match decide_override(&requester, &scope, context.settings) {
            Ok(progress) => progress,
            Err(denial) => {
                let target = format!(
                    "{}#{}",
                    context.target.repo.full_name(),
                    context.target.number
                );
                store::audit(
                    tx,
                    &AuditEntry {
                        installation_id: context.target.installation_id,
                        actor: to,
                        action: "override.denied",
                        target: &target,
                        before: None,
                        after: Some(serde_json::json!({
                            "reason": reason,
                            "rules": scope.rules(),
                            "denial": denial.to_string(),
                        })),
                    },
                )
                .await?;
                let reply = Reply::Denied {
                    to,
                    command: CommandKind::Override,
                    denial: &denial,
                };
                return Ok(refused(render_reply(&reply, catalog)));
            }
        };
        let request = store::insert_override_request(
            tx,
            &NewOverrideRequest {
                target: context.target,
                head_sha: context.head_sha,
                status: progress.status.as_str(),
                requested_by: to,
                reason,
                scope_rules: scope.rules().iter().map(|r| r.to_string()).collect(),
                fingerprints: scope.fingerprints().iter().map(|f| f.to_string()).collect(),
                violations: serde_json::to_value(scope.violations()).unwrap_or_default(),
                needs_approval: scope.needs_approval(),
                required_approvals: i32::try_from(progress.required_approvals).unwrap_or(1),
                settings: context.settings,
                command_comment_id: context.comment_id,
            },
        )
        .await?;
        for login in &progress.approved_by {
            store::add_approval(tx, &request, login, "github", None).await?;
        }
        let request = reload(tx, request.id).await?;
        audit_request(tx, &request, to, "override.requested", None).await?;
        if progress.status == RequestStatus::Approved {
            audit_request(tx, &request, to, "override.approved", None).await?;
            let reply = Reply::OverrideRecorded {
                to,
                scope: &scope,
                reason,
            };
            return Ok(accepted(render_reply(&reply, catalog)));
        }
        let slack_notified = match &self.slack {
            Some(slack) => {
                send_request_message(tx, slack, context.target, request.id).await?;
                true
            }
            None => false,
        };
        let reply = Reply::OverridePending {
            to,
            scope: &scope,
            reason,
            settings: context.settings,
            slack_notified,
        };
        Ok(accepted(render_reply(&reply, catalog)))
    }

    async fn cancel(
        &self,
        tx: &mut PgConnection,
        context: &Context<'_>,
        requests: &[OverrideRequestRow],
    ) -> Result<Decided, sqlx::Error> {
        let catalog = self.engine.catalog();
        let to = context.identity.login.as_str();
        let Some(request) = requests.iter().rev().find(|r| {
            r.requested_by.eq_ignore_ascii_case(to)
                && matches!(
                    status_of(r),
                    RequestStatus::Pending | RequestStatus::Approved
                )
        }) else {
            return Ok(refused(render_reply(
                &Reply::NothingToCancel { to },
                catalog,
            )));
        };
        if let Err(denial) = may_cancel(
            context.identity,
            &request.requested_by,
            &request.settings,
            context.pr_author,
        ) {
            let reply = Reply::Denied {
                to,
                command: CommandKind::Cancel,
                denial: &denial,
            };
            return Ok(refused(render_reply(&reply, catalog)));
        }
        let was = status_of(request);
        let mut progress = progress_of(request);
        if let Err(error) = progress.cancel() {
            let reply = Reply::DecisionRefused {
                to,
                command: CommandKind::Cancel,
                error: &error,
            };
            return Ok(refused(render_reply(&reply, catalog)));
        }
        store::set_override_status(tx, request.id, progress.status.as_str(), to, None).await?;
        let after = reload(tx, request.id).await?;
        audit_request(tx, &after, to, "override.cancelled", Some(request)).await?;
        self.update_request_message(tx, context.target, request.id)
            .await?;
        Ok(accepted(render_reply(
            &Reply::Cancelled { to, was },
            catalog,
        )))
    }

    /// Applies an approval or a rejection by `identity` to a pending request.
    async fn decide_request(
        &self,
        tx: &mut PgConnection,
        request: &OverrideRequestRow,
        identity: &ApproverIdentity,
        pr_author: &str,
        decision: &Decision<'_>,
        via: &str,
    ) -> Result<DecisionOutcome, sqlx::Error> {
        let login = identity.login.as_str();
        if let Err(denial) = may_decide(identity, &request.settings, pr_author) {
            audit_request(
                tx,
                request,
                login,
                "override.decision_refused",
                Some(request),
            )
            .await?;
            return Ok(DecisionOutcome::Refused(denial));
        }
        let mut progress = progress_of(request);
        let target = target_of(request, tx).await?;
        let outcome = match decision {
            Decision::Approve { note } => match progress.approve(login) {
                Err(error) => return Ok(DecisionOutcome::NotAllowed(error)),
                Ok(status) => {
                    store::add_approval(tx, request, login, via, *note).await?;
                    let action = if status == RequestStatus::Approved {
                        store::set_override_status(tx, request.id, status.as_str(), login, *note)
                            .await?;
                        "override.approved"
                    } else {
                        "override.approval_added"
                    };
                    let after = reload(tx, request.id).await?;
                    audit_request(tx, &after, login, action, Some(request)).await?;
                    DecisionOutcome::Approved(progress)
                }
            },
            Decision::Reject { reason } => match progress.reject() {
                Err(error) => return Ok(DecisionOutcome::NotAllowed(error)),
                Ok(()) => {
                    store::set_override_status(
                        tx,
                        request.id,
                        progress.status.as_str(),
                        login,
                        Some(reason),
                    )
                    .await?;
                    let after = reload(tx, request.id).await?;
                    audit_request(tx, &after, login, "override.rejected", Some(request)).await?;
                    DecisionOutcome::Rejected {
                        reason: (*reason).to_owned(),
                    }
                }
            },
        };
        if let Some(target) = target {
            self.update_request_message(tx, &target, request.id).await?;
        }
        Ok(outcome)
    }

    /// Queues an edit of the request's Slack message, when it has one.
    async fn update_request_message(
        &self,
        tx: &mut PgConnection,
        target: &PrTarget,
        request_id: i64,
    ) -> Result<(), sqlx::Error> {
        if self.slack.is_none() {
            return Ok(());
        }
        if let Some(message) =
            store::slack_message_of(tx, SlackSubject::OverrideRequest, request_id).await?
        {
            enqueue_slack_send(tx, target.installation_id, message.id).await?;
        }
        Ok(())
    }

    /// The reaction and reply owed for a decided command; each step is skipped once done.
    async fn feedback(
        &self,
        client: &InstallationClient,
        command: &CommentCommand,
        result: &CommandResult,
    ) -> Result<(), JobError> {
        let target = &command.target;
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let reaction = if result.reaction == Reaction::PlusOne.as_str() {
            Reaction::PlusOne
        } else {
            Reaction::MinusOne
        };
        client
            .add_reaction(owner, repo, command.comment_id, reaction)
            .await?;
        if let (Some(reply), None) = (&result.reply, result.reply_comment_id) {
            let comment_id = i64::try_from(command.comment_id)
                .map_err(|_| JobError::Permanent("comment id out of range".into()))?;
            let earlier = if result.reply_requested {
                let key = reply_key(command.comment_id);
                client
                    .list_issue_comments(owner, repo, target.number)
                    .await?
                    .into_iter()
                    .find(|c| c.body.as_deref().is_some_and(|b| b.contains(&key)))
                    .map(|c| c.id)
            } else {
                None
            };
            let id = match earlier {
                Some(id) => {
                    tracing::info!(reply = id, "found the reply an earlier attempt posted");
                    id
                }
                None => {
                    // Marked before it is sent: a process killed before recording the answer
                    // leaves a retry that looks for the reply's key first.
                    store::mark_reply_requested(&self.pool, target.repo.id, comment_id).await?;
                    let body = keyed_reply(reply, command.comment_id);
                    client
                        .create_issue_comment(owner, repo, target.number, &body)
                        .await?
                }
            };
            let id = i64::try_from(id)
                .map_err(|_| JobError::Permanent("comment id out of range".into()))?;
            store::set_reply_comment_id(&self.pool, target.repo.id, comment_id, id).await?;
        }
        Ok(())
    }

    /// Applies a Slack Approve or Reject click: the Slack user counts as the GitHub login the
    /// request's `slack_users` maps them to; anyone else is told why in a message only they see.
    pub async fn slack_decision(&self, click: &SlackDecision) -> Result<(), JobError> {
        let (request, target) = self.request_and_target(click.request_id).await?;
        let settings = &request.settings;
        let login = match login_for_slack_user(settings, &click.slack_user_id) {
            Ok(login) => login.to_owned(),
            Err(denial) => return self.ephemeral(&target, click, &denial.to_string()).await,
        };
        let decision = if click.approve {
            Decision::Approve { note: None }
        } else {
            Decision::Reject {
                reason: click.reason.as_deref().unwrap_or("rejected in Slack"),
            }
        };
        match self
            .decide_as(&request, &target, &login, &decision, "slack")
            .await?
        {
            Some(refusal) => self.ephemeral(&target, click, &refusal).await,
            None => Ok(()),
        }
    }

    /// Applies an Approve or Reject from the dashboard, by the logged-in GitHub user, under the
    /// same rules as `/approve` and `/reject`. A refusal is in the audit log (as every refused
    /// decision is) and the page shows the request unchanged.
    pub async fn dashboard_decision(&self, click: &DashboardDecision) -> Result<(), JobError> {
        let (request, target) = self.request_and_target(click.request_id).await?;
        let decision = if click.approve {
            Decision::Approve {
                note: click.reason.as_deref(),
            }
        } else {
            Decision::Reject {
                reason: click
                    .reason
                    .as_deref()
                    .filter(|r| !r.trim().is_empty())
                    .unwrap_or("rejected in the dashboard"),
            }
        };
        let refusal = self
            .decide_as(&request, &target, &click.login, &decision, "dashboard")
            .await?;
        if let Some(refusal) = refusal {
            tracing::info!(login = %click.login, request = request.id, %refusal, "dashboard decision refused");
        }
        Ok(())
    }

    async fn request_and_target(
        &self,
        request_id: i64,
    ) -> Result<(OverrideRequestRow, PrTarget), JobError> {
        let mut conn = self.pool.acquire().await?;
        let Some(request) = store::override_request(&mut conn, request_id).await? else {
            return Err(JobError::Permanent(format!(
                "no override request {request_id}"
            )));
        };
        let Some(target) = target_of(&request, &mut conn).await? else {
            return Err(JobError::Permanent(
                "the pull request is not recorded".into(),
            ));
        };
        Ok((request, target))
    }

    /// Decides `request` as `login` (their permission and teams looked up on GitHub), and
    /// re-evaluates the pull request when the request changed. Returns why it was refused.
    async fn decide_as(
        &self,
        request: &OverrideRequestRow,
        target: &PrTarget,
        login: &str,
        decision: &Decision<'_>,
        via: &str,
    ) -> Result<Option<String>, JobError> {
        let mut conn = self.pool.acquire().await?;
        let record =
            store::pull_request_record(&mut conn, request.repository_id, request.pr_number).await?;
        drop(conn);
        let settings = &request.settings;
        let client = self.client(target.installation_id)?;
        let identity = identity(&client, &target.repo, login, settings).await;
        let pr_author = record.and_then(|r| r.author).unwrap_or_default();
        let mut tx = self.pool.begin().await?;
        store::lock_pull_request(&mut tx, target.repo.id, pr_number(target)).await?;
        let Some(current) = store::override_request(&mut tx, request.id).await? else {
            return Ok(None);
        };
        let outcome = self
            .decide_request(&mut tx, &current, &identity, &pr_author, decision, via)
            .await?;
        let refusal = match &outcome {
            DecisionOutcome::Refused(denial) => Some(denial.to_string()),
            DecisionOutcome::NotAllowed(error) => Some(error.to_string()),
            DecisionOutcome::Approved(_) | DecisionOutcome::Rejected { .. } => {
                enqueue_evaluation(&mut tx, target).await?;
                None
            }
        };
        tx.commit().await?;
        Ok(refusal)
    }

    /// Queues a message only the Slack user who clicked sees.
    async fn ephemeral(
        &self,
        target: &PrTarget,
        click: &SlackDecision,
        text: &str,
    ) -> Result<(), JobError> {
        let mut tx = self.pool.begin().await?;
        let id = store::upsert_slack_message(
            &mut tx,
            &NewSlackMessage {
                target,
                subject: SlackSubject::Ephemeral,
                subject_id: None,
                channel: &click.channel_id,
                user_id: Some(&click.slack_user_id),
                body: Some(serde_json::json!({ "text": text })),
            },
        )
        .await?;
        enqueue_slack_send(&mut tx, target.installation_id, id).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Records what was decided about a command comment, in the caller's transaction.
async fn record_result(
    tx: &mut PgConnection,
    command: &CommentCommand,
    comment_id: i64,
    result: &CommandResult,
) -> Result<(), sqlx::Error> {
    store::insert_command_result(
        tx,
        CommandComment {
            target: &command.target,
            comment_id,
            author: &command.author,
        },
        result,
    )
    .await
}

fn accepted(reply: String) -> Decided {
    Decided {
        reply: Some(reply),
        denied: false,
        changed: true,
    }
}

fn refused(reply: String) -> Decided {
    Decided {
        reply: Some(reply),
        denied: true,
        changed: false,
    }
}

/// Who `login` is on the repository: permission and, for the configured teams, membership. A
/// failed lookup is kept as a failure, never read as "no".
async fn identity(
    client: &InstallationClient,
    repo: &RepoRef,
    login: &str,
    settings: &OverrideSettings,
) -> ApproverIdentity {
    let access = match client
        .collaborator_permission(&repo.owner, &repo.name, login)
        .await
    {
        Ok(Some(p)) => Access::Known(RepoPermission::from_api(&p.permission, &p.role_name)),
        // GitHub does not list them as a collaborator.
        Ok(None) => Access::Known(RepoPermission::None),
        Err(error) => Access::LookupFailed(error.to_string()),
    };
    let mut teams: Vec<(TeamRef, TeamLookup)> = Vec::new();
    for team in settings.teams() {
        let lookup = match client.team_membership(&team.org, &team.slug, login).await {
            Ok(TeamMembership::Active) => TeamLookup::Member,
            Ok(TeamMembership::Pending | TeamMembership::NotMember) => TeamLookup::NotMember,
            Err(error) => TeamLookup::Failed(error.to_string()),
        };
        teams.push((team.clone(), lookup));
    }
    ApproverIdentity {
        login: login.to_owned(),
        is_bot: is_bot_login(login),
        access,
        teams,
    }
}

fn pr_number(target: &PrTarget) -> i64 {
    i64::try_from(target.number).unwrap_or(i64::MAX)
}

async fn reload(tx: &mut PgConnection, id: i64) -> Result<OverrideRequestRow, sqlx::Error> {
    store::override_request(tx, id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)
}

/// The pull request a request was made on, as jobs address it.
async fn target_of(
    request: &OverrideRequestRow,
    conn: &mut PgConnection,
) -> Result<Option<PrTarget>, sqlx::Error> {
    let record = store::pull_request_record(conn, request.repository_id, request.pr_number).await?;
    Ok(record.and_then(|record| {
        let (owner, name) = record.repo_full_name.split_once('/')?;
        Some(PrTarget {
            installation_id: request.installation_id,
            repo: RepoRef {
                id: request.repository_id,
                owner: owner.to_owned(),
                name: name.to_owned(),
            },
            number: u64::try_from(request.pr_number).ok()?,
        })
    }))
}

/// Records the Slack message of an override request (posted, or edited once it exists).
async fn send_request_message(
    tx: &mut PgConnection,
    slack: &SlackSettings,
    target: &PrTarget,
    request_id: i64,
) -> Result<(), sqlx::Error> {
    let id = store::upsert_slack_message(
        tx,
        &NewSlackMessage {
            target,
            subject: SlackSubject::OverrideRequest,
            subject_id: Some(request_id),
            channel: &slack.channel,
            user_id: None,
            body: None,
        },
    )
    .await?;
    enqueue_slack_send(tx, target.installation_id, id).await
}
