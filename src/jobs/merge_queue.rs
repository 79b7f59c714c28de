//! Merge queues. The `evaluate_merge_group` job answers GitHub's `merge_group.checks_requested`
//! with one completed `Tollgate` check run on the group's head: the policy and repository config
//! at the group's base (a policy tightened after a pull request passed applies), the combined
//! change `base...head` from the compare API, and every override approved on the group's pull
//! requests carried over by fingerprint. That is at most three GitHub calls besides the token:
//! the config (once per base commit), the comparison and the check run. A group that fails tells
//! each pull request it holds what the combination introduced, and raises the Tier 1 alerts.
//!
//! A repository with `merge_queue: trust_pull_requests` is judged from the store instead: the
//! group passes when every pull request in it passed at its head (no comparison).
//!
//! The `record_merge_queue` job keeps the store's view of the queue (`pull_request`
//! `enqueued`/`dequeued`, `merge_group.destroyed`); it never writes to GitHub.

use super::JobError;
use super::check_runs::{CheckRunContent, CheckRunLedger, CheckRunState, publish_check_run};
use super::evaluate::{
    BaseCommit, Evaluator, Unjudged, annotations, read_repo_config, repository_info, run_pack,
};
use super::requests::approved_overrides;
use crate::config::{MergeQueueMode, RepoConfig};
use crate::domain::{Overrides, Violation};
use crate::github::events::{MergeGroup, PrTarget, QueueChange};
use crate::github::{Conclusion, InstallationClient, MAX_ANNOTATIONS_PER_REQUEST};
use crate::policy::{ChangeContext, Findings, GitRef, PullRequestInfo};
use crate::report::{
    self, Evaluation, MergeGroupComment, MergeGroupTrust, ReportInput, Surface,
    merge_group_comment_key,
};
use crate::store;
use sqlx::PgPool;
use std::collections::BTreeSet;

/// Records a change of a merge queue (no GitHub call).
pub(super) async fn record(pool: &PgPool, change: &QueueChange) -> Result<(), JobError> {
    if let QueueChange::Enqueued { target, .. } = change {
        store::ensure_repository(pool, target.installation_id, &target.repo).await?;
    }
    store::record_queue_change(pool, change).await?;
    Ok(())
}

/// How the group was judged.
enum Judged {
    /// The combined change was evaluated.
    Evaluated(Box<GroupEvaluation>),
    /// Every pull request's own result was trusted (`untrusted` lists those without a pass).
    Trusted { untrusted: Vec<u64> },
    /// No verdict: the config or the pack failed, or the change cannot be seen whole.
    Unjudged {
        unjudged: Unjudged,
        config_digest: Option<String>,
    },
}

struct GroupEvaluation {
    findings: Findings,
    overrides: Overrides,
    config: RepoConfig,
    config_digest: String,
}

impl Evaluator {
    /// Evaluates a merge group and publishes its check run (see the module's documentation).
    pub async fn run_merge_group(&self, group: &MergeGroup) -> Result<(), JobError> {
        let Some(last) = group.last_pull_request() else {
            return Err(JobError::Permanent(format!(
                "{} names no pull request",
                group.head_ref
            )));
        };
        let client = super::installation_client(&self.github, group.installation_id)?;
        store::ensure_repository(&self.pool, group.installation_id, &group.repo).await?;
        let held = store::group_pull_requests(&self.pool, group, last).await?;
        let base = BaseCommit {
            sha: &group.base_sha,
            name: group.base_branch(),
        };
        let catalog = self.engine.catalog();
        let (config, config_digest) =
            read_repo_config(&self.pool, &client, &group.repo, &base, catalog).await?;
        let mode = config
            .as_ref()
            .map_or(MergeQueueMode::Reevaluate, |c| c.merge_queue);
        let start =
            store::start_queue_evaluation(&self.pool, group, &held, mode, self.engine.digest())
                .await?;
        let judged = match config {
            Err(error) => Judged::Unjudged {
                unjudged: Unjudged {
                    error,
                    conclusion: Conclusion::Neutral,
                },
                config_digest: Some(config_digest),
            },
            Ok(config) => match mode {
                MergeQueueMode::TrustPullRequests => {
                    let results = store::passed_at_head(&self.pool, group.repo.id, &held).await?;
                    let untrusted = results
                        .into_iter()
                        .filter(|(_, passed)| !passed)
                        .map(|(n, _)| n)
                        .collect();
                    Judged::Trusted { untrusted }
                }
                MergeQueueMode::Reevaluate => {
                    self.reevaluate(&client, group, &held, config, config_digest)
                        .await?
                }
            },
        };
        self.publish_group(&client, group, &held, &start, &judged)
            .await
    }

    /// The combined change `base...head`, evaluated with the overrides of every pull request
    /// in the group.
    async fn reevaluate(
        &self,
        client: &InstallationClient,
        group: &MergeGroup,
        held: &[u64],
        config: RepoConfig,
        config_digest: String,
    ) -> Result<Judged, JobError> {
        let files = client
            .compare_files(
                &group.repo.owner,
                &group.repo.name,
                &group.base_sha,
                &group.head_sha,
            )
            .await?;
        let incomplete = "This merge group changes more files than GitHub compares (300): it cannot be evaluated completely. Merge fewer pull requests at once.";
        let findings = match run_pack(
            &self.engine,
            &files,
            incomplete,
            group_context(group),
            &config,
        )
        .await?
        {
            Ok(mut findings) => {
                // Rules about a pull request as a whole (its size, title and description)
                // judged each pull request already; a group has neither title nor author.
                findings.violations.retain(|v| v.path.is_some());
                findings
            }
            Err(unjudged) => {
                return Ok(Judged::Unjudged {
                    unjudged,
                    config_digest: Some(config_digest),
                });
            }
        };
        let mut requests = Vec::new();
        let mut conn = self.pool.acquire().await?;
        for number in held {
            let number = i64::try_from(*number).unwrap_or(i64::MAX);
            requests.extend(store::override_requests_of(&mut conn, group.repo.id, number).await?);
        }
        Ok(Judged::Evaluated(Box::new(GroupEvaluation {
            findings,
            overrides: approved_overrides(&requests),
            config,
            config_digest,
        })))
    }

    /// Stores the result, then shows it: the check run on the group's head, and when the group
    /// fails, a comment on each pull request it holds and the Tier 1 alerts.
    async fn publish_group(
        &self,
        client: &InstallationClient,
        group: &MergeGroup,
        held: &[u64],
        start: &store::QueueEvaluationStart,
        judged: &Judged,
    ) -> Result<(), JobError> {
        let catalog = self.engine.catalog();
        let trust = |untrusted| MergeGroupTrust {
            head_sha: &group.head_sha,
            base_branch: group.base_branch(),
            pull_requests: held,
            untrusted,
        };
        let (conclusion, title, summary, annotations, failed) = match judged {
            Judged::Unjudged {
                unjudged,
                config_digest,
            } => {
                store::fail_queue_evaluation(
                    &self.pool,
                    start.id,
                    &unjudged.error,
                    config_digest.as_deref(),
                )
                .await?;
                let report = ReportInput::Failed {
                    error: unjudged.error.clone(),
                };
                (
                    unjudged.conclusion,
                    report::check_run_title(&report),
                    report::render_markdown(&report, Surface::CheckRun),
                    Vec::new(),
                    None,
                )
            }
            Judged::Trusted { untrusted } => {
                let passed = untrusted.is_empty();
                store::complete_queue_evaluation(
                    &self.pool,
                    &store::CompletedQueueEvaluation {
                        id: start.id,
                        verdict: if passed { "pass" } else { "fail" },
                        score: None,
                        threshold: None,
                        counts: None,
                        config_digest: None,
                        introduced: &[],
                    },
                )
                .await?;
                let trust = trust(untrusted);
                (
                    if passed {
                        Conclusion::Success
                    } else {
                        Conclusion::Failure
                    },
                    report::render_trusted_title(&trust),
                    report::render_trusted_summary(&trust),
                    Vec::new(),
                    None,
                )
            }
            Judged::Evaluated(evaluated) => {
                let evaluation = Evaluation::new(
                    catalog,
                    &evaluated.findings,
                    &evaluated.overrides,
                    evaluated.config.threshold,
                    self.engine.digest(),
                );
                let verdict = evaluation.verdict();
                let counting = counting(&evaluated.findings.violations, &evaluated.overrides);
                let introduced_by_pr = self.introduced_by_pr(group, held, &counting).await?;
                let introduced_anywhere = introduced_anywhere(&counting, &introduced_by_pr);
                store::complete_queue_evaluation(
                    &self.pool,
                    &store::CompletedQueueEvaluation {
                        id: start.id,
                        verdict: verdict.as_str(),
                        score: Some(verdict.score().value()),
                        threshold: Some(verdict.threshold().value()),
                        counts: Some(verdict.counts()),
                        config_digest: Some(&evaluated.config_digest),
                        introduced: &introduced_anywhere,
                    },
                )
                .await?;
                let report = ReportInput::Evaluated(evaluation);
                let mut lines = annotations(&evaluated.findings.violations, catalog);
                // One request: the rest of the violations are in the summary.
                lines.truncate(MAX_ANNOTATIONS_PER_REQUEST);
                (
                    if verdict.passed() {
                        Conclusion::Success
                    } else {
                        Conclusion::Failure
                    },
                    report::check_run_title(&report),
                    report::render_markdown(&report, Surface::CheckRun),
                    lines,
                    (!verdict.passed()).then_some((verdict, introduced_by_pr)),
                )
            }
        };
        let state = CheckRunState {
            head_sha: &group.head_sha,
            recorded: start.check_run_id,
            requested: start.check_run_requested,
        };
        let content = CheckRunContent {
            conclusion,
            title: &title,
            summary: &summary,
            annotations: &annotations,
        };
        let ledger = QueueCheckRun(start.id);
        publish_check_run(&self.pool, client, &group.repo, &state, &ledger, &content).await?;
        let Some((verdict, introduced_by_pr)) = failed else {
            tracing::info!(?conclusion, "merge group evaluated");
            return Ok(());
        };
        for (number, introduced) in &introduced_by_pr {
            let body = report::render_merge_group_comment(&MergeGroupComment {
                catalog,
                head_sha: &group.head_sha,
                base_branch: group.base_branch(),
                pull_requests: held,
                introduced,
            });
            self.comment_once(client, group, start.id, *number, &body)
                .await?;
        }
        if let (Some(policy), Judged::Evaluated(evaluated)) = (&self.alerts, judged) {
            for number in held {
                let target = PrTarget {
                    installation_id: group.installation_id,
                    repo: group.repo.clone(),
                    number: *number,
                };
                self.raise_alerts(
                    policy,
                    &target,
                    &group.head_sha,
                    &evaluated.findings.violations,
                    &evaluated.overrides,
                )
                .await;
            }
        }
        tracing::info!(
            score = verdict.score().value(),
            "merge group failed: its pull requests were told"
        );
        Ok(())
    }

    /// For each pull request of the group, the group's counting violations its own latest
    /// evaluation did not have (matched by fingerprint, so a moved line is not new).
    async fn introduced_by_pr(
        &self,
        group: &MergeGroup,
        held: &[u64],
        counting: &[Violation],
    ) -> Result<Vec<(u64, Vec<Violation>)>, JobError> {
        let mut introduced = Vec::with_capacity(held.len());
        for number in held {
            let target = PrTarget {
                installation_id: group.installation_id,
                repo: group.repo.clone(),
                number: *number,
            };
            let own = store::latest_violations(&self.pool, &target)
                .await?
                .map(|(_, violations)| violations)
                .unwrap_or_default();
            introduced.push((*number, not_in(counting, &own)));
        }
        Ok(introduced)
    }

    /// Posts the group's comment on one pull request once: marked before it is posted and
    /// found again by its hidden key when an earlier attempt died before recording it.
    async fn comment_once(
        &self,
        client: &InstallationClient,
        group: &MergeGroup,
        queue_evaluation_id: i64,
        number: u64,
        body: &str,
    ) -> Result<(), JobError> {
        let (owner, repo) = (group.repo.owner.as_str(), group.repo.name.as_str());
        match store::queue_comment(&self.pool, queue_evaluation_id, number).await? {
            Some(Some(_)) => return Ok(()),
            Some(None) => {
                let key = merge_group_comment_key(&group.head_sha);
                let found = client
                    .list_issue_comments(owner, repo, number)
                    .await?
                    .into_iter()
                    .find(|c| c.body.as_deref().is_some_and(|b| b.starts_with(&key)));
                if let Some(comment) = found {
                    return self
                        .record_comment(queue_evaluation_id, number, comment.id)
                        .await;
                }
            }
            None => {
                store::mark_queue_comment_requested(
                    &self.pool,
                    group.installation_id,
                    queue_evaluation_id,
                    number,
                )
                .await?;
            }
        }
        let id = client
            .create_issue_comment(owner, repo, number, body)
            .await?;
        self.record_comment(queue_evaluation_id, number, id).await
    }

    async fn record_comment(
        &self,
        queue_evaluation_id: i64,
        number: u64,
        id: u64,
    ) -> Result<(), JobError> {
        let id =
            i64::try_from(id).map_err(|_| JobError::Permanent("comment id out of range".into()))?;
        store::set_queue_comment_id(&self.pool, queue_evaluation_id, number, id).await?;
        Ok(())
    }
}

/// A merge group's check run, by its queue evaluation's id.
struct QueueCheckRun(i64);

impl CheckRunLedger for QueueCheckRun {
    fn external_id(&self) -> String {
        format!("tollgate-queue-evaluation-{}", self.0)
    }

    async fn mark_requested(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        store::mark_queue_check_run_requested(pool, self.0).await
    }

    async fn record(&self, pool: &PgPool, check_run_id: i64) -> Result<(), sqlx::Error> {
        store::set_queue_check_run_id(pool, self.0, check_run_id).await
    }
}

/// What the pack sees of a merge group: no pull request of its own (no number, title or
/// author), the base and the queue's branch.
fn group_context(group: &MergeGroup) -> ChangeContext {
    ChangeContext {
        pull_request: PullRequestInfo {
            number: None,
            title: String::new(),
            body: String::new(),
            author: None,
            draft: false,
            base: GitRef {
                name: Some(group.base_branch().to_owned()),
                sha: Some(group.base_sha.clone()),
            },
            head: GitRef {
                name: Some(group.head_ref.clone()),
                sha: Some(group.head_sha.clone()),
            },
            labels: Vec::new(),
        },
        repository: repository_info(&group.repo),
    }
}

/// The violations that weigh on the verdict: those no approved override covers.
fn counting(violations: &[Violation], overrides: &Overrides) -> Vec<Violation> {
    violations
        .iter()
        .filter(|v| overrides.covering(v).is_none())
        .cloned()
        .collect()
}

/// `violations` whose fingerprint `known` does not have.
fn not_in(violations: &[Violation], known: &[Violation]) -> Vec<Violation> {
    let known: BTreeSet<&str> = known.iter().map(|v| v.fingerprint.as_str()).collect();
    violations
        .iter()
        .filter(|v| !known.contains(v.fingerprint.as_str()))
        .cloned()
        .collect()
}

/// The counting violations no pull request of the group had on its own.
fn introduced_anywhere(
    counting: &[Violation],
    introduced_by_pr: &[(u64, Vec<Violation>)],
) -> Vec<Violation> {
    counting
        .iter()
        .filter(|v| {
            introduced_by_pr
                .iter()
                .all(|(_, introduced)| introduced.contains(v))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApprovedOverride, Fingerprint, RuleId, Tier};

    fn violation(rule: &str, path: &str, line: u32, text: &str) -> Violation {
        let rule_id: RuleId = rule.parse().unwrap();
        Violation {
            fingerprint: Fingerprint::of(&rule_id, Some(path), text),
            rule_id,
            tier: Tier::Block,
            path: Some(path.to_owned()),
            line: Some(line),
            message: text.to_owned(),
        }
    }

    #[test]
    fn what_a_pull_request_did_not_have_is_matched_by_fingerprint_not_line() {
        let moved = violation("R01", "src/a.rs", 40, "key");
        let own = violation("R01", "src/a.rs", 3, "key");
        let new = violation("R02", "src/b.rs", 1, "eval");
        let introduced = not_in(&[moved, new.clone()], &[own]);
        assert_eq!(introduced, [new]);
    }

    #[test]
    fn only_violations_no_pull_request_had_are_introduced_by_the_group() {
        let a = violation("R01", "src/a.rs", 1, "key");
        let both = violation("R02", "src/b.rs", 1, "eval");
        let counting = [a.clone(), both.clone()];
        let by_pr = [(1, vec![both.clone()]), (2, vec![a.clone(), both.clone()])];
        assert_eq!(introduced_anywhere(&counting, &by_pr), [both]);
    }

    #[test]
    fn overridden_violations_do_not_count() {
        let covered = violation("R01", "src/a.rs", 9, "key");
        let open = violation("R02", "src/b.rs", 1, "eval");
        let overrides = Overrides::new(vec![ApprovedOverride {
            fingerprints: [covered.fingerprint.clone()].into(),
            requested_by: "alice".into(),
            approved_by: vec!["bob".into()],
            reason: "a test fixture".into(),
        }]);
        assert_eq!(counting(&[covered, open.clone()], &overrides), [open]);
    }
}
