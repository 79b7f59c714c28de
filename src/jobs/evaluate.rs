//! The `evaluate_pr` job: fetch the pull request as the installation, evaluate its head, publish
//! a check run and the sticky comment, and store the result.
//!
//! An ordinary push costs five GitHub calls: the pull request, its files, the pull request again
//! (is the head still the same?), the check run (created already completed, with its first 50
//! annotations) and the comment edit. The base branch's config is read once per base commit and
//! kept in the database.
//!
//! Every effect is recorded under a key before the next one (the check run id on the evaluation
//! row, the comment id on the pull request row, the comment itself by its hidden marker), so a
//! retried job edits what an earlier attempt created instead of posting again.

use super::JobError;
use super::alerts::{AlertPolicy, reconcile_alerts};
use super::installation_config::{cached_config, current_config};
use super::requests::{
    approved_overrides, expire_stale_requests, pending_overrides, rejected_overrides,
};
use crate::config::AlertSettings;
use crate::config::{AppSettings, RepoConfig, RepoConfigFile};
use crate::diff::from_github_files;
use crate::domain::Violation;
use crate::github::events::PrTarget;
use crate::github::{
    Annotation, AnnotationLevel, CheckOutput, CheckRunCreate, CheckRunUpdate, CheckStatus,
    Conclusion, GithubApp, GithubError, InstallationClient, PullRequest, PullRequestState,
};
use crate::policy::{
    Catalog, ChangeContext, Findings, GitRef, PolicyEngine, PullRequestInfo, RepositoryInfo,
};
use crate::report::{self, Evaluation, HistoryEntry, ReportInput, STICKY_COMMENT_MARKER, Surface};
use crate::store;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;

/// The check run's name, as branch protection rules refer to it.
pub const CHECK_RUN_NAME: &str = "Tollgate";
const CONFIG_PATH: &str = ".github/tollgate.yml";
/// GitHub takes at most 50 annotations per check-run request.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Scores shown in the sticky comment's history line.
const HISTORY_LENGTH: i64 = 5;

pub struct Evaluator {
    pool: PgPool,
    github: GithubApp,
    engine: Arc<PolicyEngine>,
    evaluate_drafts: bool,
    /// `None` when no alert channel (Slack, email, PagerDuty) is on: no Tier 1 alerts.
    alerts: Option<AlertPolicy>,
}

impl From<GithubError> for JobError {
    fn from(error: GithubError) -> Self {
        if let GithubError::BudgetSpent { wait } = error {
            JobError::Deferred { wait }
        } else if error.is_retryable() {
            JobError::Retry {
                message: error.to_string(),
                after: error.retry_after(),
            }
        } else {
            JobError::Permanent(error.to_string())
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // A stored row that no longer parses parses no better on the next attempt.
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                JobError::Permanent(format!("database: {error}"))
            }
            _ => JobError::Retry {
                message: format!("database: {error}"),
                after: None,
            },
        }
    }
}

/// What the pack concluded, before publishing.
enum Outcome {
    Evaluated {
        findings: Findings,
        config: RepoConfig,
        config_digest: String,
    },
    /// No verdict: the config or the pack failed (`neutral`), or the change cannot be seen
    /// whole (`failure`: fail closed). The check run and comment show the error.
    Failed {
        error: String,
        config_digest: Option<String>,
        conclusion: Conclusion,
    },
}

impl Evaluator {
    pub fn new(
        pool: PgPool,
        github: GithubApp,
        engine: Arc<PolicyEngine>,
        settings: &AppSettings,
        alerts: Option<AlertPolicy>,
    ) -> Self {
        Self {
            pool,
            github,
            engine,
            evaluate_drafts: settings.evaluate_drafts,
            alerts,
        }
    }

    pub async fn run(&self, target: &PrTarget) -> Result<(), JobError> {
        let started = Instant::now();
        let client = super::installation_client(&self.github, target.installation_id)?;
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let pr = client.pull_request(owner, repo, target.number).await?;
        if pr.state == PullRequestState::Closed {
            tracing::info!("pull request is closed: not evaluated");
            return Ok(());
        }
        if pr.draft && !self.evaluate_drafts {
            tracing::info!("draft pull request: not evaluated");
            return Ok(());
        }
        let head_sha = pr.head.sha.clone();
        store::ensure_repository(&self.pool, target.installation_id, &target.repo).await?;
        let start = store::start_evaluation(
            &self.pool,
            target,
            &head_sha,
            &pr.title,
            Some(pr.user.login.as_str()),
            self.engine.digest(),
        )
        .await?;
        let published = PublishedCheckRun {
            evaluation_id: start.id,
            check_run_id: start.check_run_id,
            head_sha: &head_sha,
        };

        let outcome = self.evaluate(&client, target, &pr).await?;
        let still_head = client
            .pull_request(owner, repo, target.number)
            .await?
            .head
            .sha
            == head_sha;
        match outcome {
            Outcome::Failed {
                error,
                config_digest,
                conclusion,
            } => {
                let input = ReportInput::Failed {
                    error: error.clone(),
                };
                self.complete_check_run(&client, target, &published, &input, conclusion, &[])
                    .await?;
                if still_head {
                    self.upsert_comment(
                        &client,
                        target,
                        &report::render_markdown(&input, Surface::Comment),
                    )
                    .await?;
                }
                store::fail_evaluation(&self.pool, start.id, &error, config_digest.as_deref())
                    .await?;
                crate::telemetry::metrics::record_evaluation("error", started.elapsed());
            }
            Outcome::Evaluated {
                findings,
                config,
                config_digest,
            } => {
                let requests =
                    expire_stale_requests(&self.pool, target, &findings.violations).await?;
                let overrides = approved_overrides(&requests);
                let mut evaluation = Evaluation::new(
                    self.engine.catalog(),
                    &findings,
                    &overrides,
                    config.threshold,
                    self.engine.digest(),
                );
                evaluation.pending_overrides = pending_overrides(&requests);
                evaluation.rejected_overrides = rejected_overrides(&requests);
                let previous = store::previous_evaluation(&self.pool, target, &head_sha).await?;
                if let Some(previous) = &previous {
                    evaluation.fixed = fixed_since(&previous.violations, &findings.violations);
                }
                evaluation.history = store::recent_scores(&self.pool, target, HISTORY_LENGTH)
                    .await?
                    .into_iter()
                    .filter(|(sha, _)| *sha != head_sha)
                    .map(|(sha, score)| HistoryEntry { score, sha })
                    .collect();
                let verdict = evaluation.verdict();
                let conclusion = if verdict.passed() {
                    Conclusion::Success
                } else {
                    Conclusion::Failure
                };
                let input = ReportInput::Evaluated(evaluation);
                let annotations = annotations(&findings.violations, self.engine.catalog());
                self.complete_check_run(
                    &client,
                    target,
                    &published,
                    &input,
                    conclusion,
                    &annotations,
                )
                .await?;
                if !still_head {
                    // A newer push arrived: its own job will update the comment.
                    tracing::info!(
                        "head moved during evaluation: result kept on its check run only"
                    );
                    store::supersede_evaluation(&self.pool, start.id).await?;
                    return Ok(());
                }
                let body = report::render_markdown(&input, Surface::Comment);
                let comment_id = self.upsert_comment(&client, target, &body).await?;
                let done = store::CompletedEvaluation {
                    evaluation_id: start.id,
                    installation_id: target.installation_id,
                    score: verdict.score().value(),
                    verdict: verdict.as_str(),
                    threshold: verdict.threshold().value(),
                    counts: verdict.counts(),
                    config_digest: &config_digest,
                    not_evaluated: &findings.not_evaluated,
                    duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
                    comment_id: Some(comment_id),
                    violations: &findings.violations,
                };
                store::complete_evaluation(&self.pool, &done).await?;
                crate::telemetry::metrics::record_evaluation(verdict.as_str(), started.elapsed());
                if let Some(policy) = &self.alerts {
                    // Alerts are a side effect: a failure here must not fail the evaluation.
                    // Email needs the installation's recipients, so then the config is read
                    // from GitHub when its cache is stale; otherwise the cache is enough.
                    let config = if policy.email {
                        current_config(&self.pool, &self.github, target.installation_id).await
                    } else {
                        cached_config(&self.pool, target.installation_id)
                            .await
                            .map_err(JobError::from)
                    };
                    let alerts = config.map(|c| c.alerts).unwrap_or_else(|error| {
                        tracing::warn!(%error, "installation config unavailable: defaults apply");
                        AlertSettings::default()
                    });
                    if let Err(error) = reconcile_alerts(
                        &self.pool,
                        policy,
                        &alerts,
                        target,
                        &head_sha,
                        &findings.violations,
                        &overrides,
                    )
                    .await
                    {
                        tracing::error!(%error, "cannot record Tier 1 alerts");
                    }
                }
                tracing::info!(
                    score = verdict.score().value(),
                    verdict = verdict.as_str(),
                    "evaluation completed"
                );
            }
        }
        Ok(())
    }

    /// Reads the config from the base branch, fetches the files and runs the pack.
    async fn evaluate(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        pr: &PullRequest,
    ) -> Result<Outcome, JobError> {
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let (config, config_digest) =
            match read_repo_config(&self.pool, client, target, pr, self.engine.catalog()).await? {
                (Ok(config), digest) => (config, digest),
                (Err(error), digest) => {
                    return Ok(Outcome::Failed {
                        error,
                        config_digest: Some(digest),
                        conclusion: Conclusion::Neutral,
                    });
                }
            };
        let files = client
            .pull_request_files(owner, repo, target.number)
            .await?;
        if !files.complete {
            return Ok(Outcome::Failed {
                error: "This pull request changes more files than GitHub lists (3,000): it cannot be evaluated completely. Split it into smaller pull requests.".to_owned(),
                config_digest: Some(config_digest),
                conclusion: Conclusion::Failure,
            });
        }
        let diff = match from_github_files(&files.files) {
            Ok(diff) => diff,
            Err(error) => {
                return Ok(Outcome::Failed {
                    error: error.to_string(),
                    config_digest: Some(config_digest),
                    conclusion: Conclusion::Failure,
                });
            }
        };
        let context = change_context(target, pr);
        let engine = self.engine.clone();
        let config_for_eval = config.clone();
        let result =
            tokio::task::spawn_blocking(move || engine.evaluate(&diff, &context, &config_for_eval))
                .await
                .map_err(|e| JobError::Retry {
                    message: format!("evaluation task: {e}"),
                    after: None,
                })?;
        Ok(match result {
            Ok(findings) => Outcome::Evaluated {
                findings,
                config,
                config_digest,
            },
            Err(error) => Outcome::Failed {
                error: error.to_string(),
                config_digest: Some(config_digest),
                conclusion: Conclusion::Neutral,
            },
        })
    }

    /// Publishes the completed check run: created already completed with the first 50
    /// annotations (one request), or completed in place when an earlier attempt created it.
    /// Annotations beyond the first 50 go in further updates, which append.
    async fn complete_check_run(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        published: &PublishedCheckRun<'_>,
        input: &ReportInput<'_>,
        conclusion: Conclusion,
        annotations: &[Annotation],
    ) -> Result<(), JobError> {
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let output = |batch: &[Annotation]| CheckOutput {
            title: report::check_run_title(input),
            summary: report::render_markdown(input, Surface::CheckRun),
            text: None,
            annotations: batch.to_vec(),
        };
        let mut batches = annotations.chunks(ANNOTATIONS_PER_REQUEST);
        let first = output(batches.next().unwrap_or_default());
        let id = match published.check_run_id {
            Some(id) => {
                let id = u64::try_from(id)
                    .map_err(|_| JobError::Permanent("negative check run id".into()))?;
                let update = CheckRunUpdate {
                    status: Some(CheckStatus::Completed),
                    conclusion: Some(conclusion),
                    output: Some(first),
                    ..CheckRunUpdate::default()
                };
                client.update_check_run(owner, repo, id, &update).await?;
                id
            }
            None => {
                let create = CheckRunCreate {
                    status: Some(CheckStatus::Completed),
                    conclusion: Some(conclusion),
                    output: Some(first),
                    ..CheckRunCreate::new(CHECK_RUN_NAME, published.head_sha)
                };
                let id = client.create_check_run(owner, repo, &create).await?;
                let stored = i64::try_from(id)
                    .map_err(|_| JobError::Permanent("check run id out of range".into()))?;
                // Recorded at once, so a retry after a later failure edits this check run.
                store::set_check_run_id(&self.pool, published.evaluation_id, stored).await?;
                id
            }
        };
        for batch in batches {
            let more = CheckRunUpdate {
                output: Some(output(batch)),
                ..CheckRunUpdate::default()
            };
            client.update_check_run(owner, repo, id, &more).await?;
        }
        Ok(())
    }

    /// Edits the pull request's one Tollgate comment, creating it the first time. Jobs for one
    /// pull request never run at once (the queue's dedup key), so there is no race here.
    async fn upsert_comment(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        body: &str,
    ) -> Result<i64, JobError> {
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let known = match store::comment_id(&self.pool, target).await? {
            Some(id) => Some(id),
            None => client
                .list_issue_comments(owner, repo, target.number)
                .await?
                .into_iter()
                .find(|c| {
                    c.body
                        .as_deref()
                        .is_some_and(|b| b.starts_with(STICKY_COMMENT_MARKER))
                })
                .and_then(|c| i64::try_from(c.id).ok()),
        };
        let id = match known {
            Some(id) => match client
                .update_issue_comment(owner, repo, id as u64, body)
                .await
            {
                Ok(()) => id,
                // Someone deleted it: post a new one.
                Err(GithubError::NotFound) => self.create_comment(client, target, body).await?,
                Err(e) => return Err(e.into()),
            },
            None => self.create_comment(client, target, body).await?,
        };
        store::set_comment_id(&self.pool, target, id).await?;
        Ok(id)
    }

    async fn create_comment(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        body: &str,
    ) -> Result<i64, JobError> {
        let id = client
            .create_issue_comment(&target.repo.owner, &target.repo.name, target.number, body)
            .await?;
        let id =
            i64::try_from(id).map_err(|_| JobError::Permanent("comment id out of range".into()))?;
        // Recorded at once, so a retry after a later failure edits this comment.
        store::set_comment_id(&self.pool, target, id).await?;
        Ok(id)
    }
}

/// The repository config from the pull request's base (never its head: a pull request must not
/// loosen its own policy), or the error to show, with the digest of the file's text. The file is
/// read from GitHub once per base commit and then from the database.
async fn read_repo_config(
    pool: &PgPool,
    client: &InstallationClient,
    target: &PrTarget,
    pr: &PullRequest,
    catalog: &Catalog,
) -> Result<(Result<RepoConfig, String>, String), JobError> {
    let cached = store::cached_repo_config(pool, target.repo.id, &pr.base.sha).await?;
    let text = match cached {
        Some(content) => content,
        None => {
            let content = client
                .file_contents(
                    &target.repo.owner,
                    &target.repo.name,
                    CONFIG_PATH,
                    &pr.base.sha,
                )
                .await?;
            store::cache_repo_config(pool, target.repo.id, &pr.base.sha, content.as_deref())
                .await?;
            content
        }
    }
    .unwrap_or_default();
    let config = RepoConfigFile::parse(&text)
        .and_then(|file| RepoConfig::resolve(&file, catalog))
        .map_err(|error| format!("{CONFIG_PATH} on {}: {error}", pr.base.git_ref));
    Ok((config, digest(&text)))
}

/// [`read_repo_config`] without the digest.
pub(super) async fn load_repo_config(
    pool: &PgPool,
    client: &InstallationClient,
    target: &PrTarget,
    pr: &PullRequest,
    catalog: &Catalog,
) -> Result<Result<RepoConfig, String>, JobError> {
    Ok(read_repo_config(pool, client, target, pr, catalog).await?.0)
}

/// The evaluation's check run: the one an earlier attempt created, or none yet.
struct PublishedCheckRun<'a> {
    evaluation_id: i64,
    check_run_id: Option<i64>,
    head_sha: &'a str,
}

fn change_context(target: &PrTarget, pr: &PullRequest) -> ChangeContext {
    ChangeContext {
        pull_request: PullRequestInfo {
            number: Some(target.number),
            title: pr.title.clone(),
            body: pr.body.clone().unwrap_or_default(),
            author: Some(pr.user.login.clone()),
            draft: pr.draft,
            base: GitRef {
                name: Some(pr.base.git_ref.clone()),
                sha: Some(pr.base.sha.clone()),
            },
            head: GitRef {
                name: Some(pr.head.git_ref.clone()),
                sha: Some(pr.head.sha.clone()),
            },
            labels: pr.labels.iter().map(|l| l.name.clone()).collect(),
        },
        repository: RepositoryInfo {
            owner: Some(target.repo.owner.clone()),
            name: Some(target.repo.name.clone()),
            full_name: Some(target.repo.full_name()),
            default_branch: None,
            private: None,
        },
    }
}

/// Violations of the previous evaluation that are gone now (matched by fingerprint).
fn fixed_since(previous: &[Violation], current: &[Violation]) -> Vec<Violation> {
    previous
        .iter()
        .filter(|old| !current.iter().any(|new| new.fingerprint == old.fingerprint))
        .cloned()
        .collect()
}

/// Line annotations for violations that point at a line.
fn annotations(violations: &[Violation], catalog: &Catalog) -> Vec<Annotation> {
    violations
        .iter()
        .filter_map(|v| {
            let (path, line) = (v.path.clone()?, v.line?);
            Some(Annotation {
                path,
                start_line: line,
                end_line: line,
                annotation_level: match v.tier {
                    crate::domain::Tier::Block => AnnotationLevel::Failure,
                    crate::domain::Tier::Override => AnnotationLevel::Warning,
                    crate::domain::Tier::Warning => AnnotationLevel::Notice,
                },
                title: Some(match catalog.get(&v.rule_id) {
                    Some(rule) => format!("{} {} ({})", v.rule_id, rule.name, v.tier),
                    None => format!("{} ({})", v.rule_id, v.tier),
                }),
                message: v.message.clone(),
                raw_details: None,
            })
        })
        .collect()
}

fn digest(text: &str) -> String {
    Sha256::digest(text.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
