//! The `evaluate_pr` job: fetch the pull request as the installation, evaluate its head, publish
//! a check run and the sticky comment, and store the result.
//!
//! An ordinary push costs five GitHub calls: the pull request, its files, the pull request again
//! (is the head still the same?), the check run (created already completed, with its first 50
//! annotations) and the comment edit. The base branch's config is read once per base commit and
//! kept in the database.
//!
//! The job is three steps: `fetch` reads GitHub and the database and runs the pack, `assess`
//! decides the report, verdict and check-run content without any I/O, and `publish` stores the
//! result before showing it on GitHub (check run, then sticky comment), so nothing visible on
//! GitHub is ahead of the store.
//!
//! Every effect is recorded under a key before the next one (the check run id on the evaluation
//! row, the comment id on the pull request row, the comment itself by its hidden marker), so a
//! retried job edits what an earlier attempt created instead of posting again.

use super::JobError;
use super::alerts::{AlertPolicy, reconcile_alerts};
use super::check_runs::{CheckRunContent, CheckRunLedger, CheckRunState, publish_check_run};
use super::installation_config::{cached_config, current_config};
use super::requests::{
    approved_overrides, expire_stale_requests, pending_overrides, rejected_overrides,
};
use crate::config::AlertSettings;
use crate::config::{AppSettings, RepoConfig, RepoConfigFile};
use crate::diff::from_github_files;
use crate::domain::{Overrides, Threshold, Verdict, Violation};
use crate::github::events::{PrTarget, RepoRef};
use crate::github::{
    Annotation, AnnotationLevel, ChangedFiles, Conclusion, GithubApp, GithubError,
    InstallationClient, PullRequest, PullRequestState,
};
use crate::policy::{
    Catalog, ChangeContext, Findings, GitRef, PolicyEngine, PullRequestInfo, RepositoryInfo,
};
use crate::report::{
    self, Evaluation, HistoryEntry, PendingOverride, RejectedOverride, ReportInput,
    STICKY_COMMENT_MARKER, Surface,
};
use crate::store;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Instant;

const CONFIG_PATH: &str = ".github/tollgate.yml";
/// Scores shown in the sticky comment's history line.
const HISTORY_LENGTH: i64 = 5;

pub struct Evaluator {
    pub(super) pool: PgPool,
    pub(super) github: GithubApp,
    pub(super) engine: Arc<PolicyEngine>,
    evaluate_drafts: bool,
    /// `None` when no alert channel (Slack, email, PagerDuty) is on: no Tier 1 alerts.
    pub(super) alerts: Option<AlertPolicy>,
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

/// What the job read from GitHub and the database: the pull request's evaluation row, whether
/// its head is still current, and what the pack found.
struct Fetched {
    evaluation_id: i64,
    /// Set once an earlier attempt recorded the check run.
    check_run_id: Option<i64>,
    /// An earlier attempt sent the check run's creation (it may exist unrecorded).
    check_run_requested: bool,
    head_sha: String,
    /// False when a newer push arrived during the evaluation: its own job publishes the comment.
    still_head: bool,
    observed: Observed,
}

/// What the pack concluded, with the stored state the report compares it with.
enum Observed {
    Evaluated(Box<Observation>),
    /// No verdict: the config or the pack failed (`neutral`), or the change cannot be seen
    /// whole (`failure`: fail closed). The check run and comment show the error.
    Failed {
        error: String,
        config_digest: Option<String>,
        conclusion: Conclusion,
    },
}

struct Observation {
    findings: Findings,
    threshold: Threshold,
    config_digest: String,
    overrides: Overrides,
    pending: Vec<PendingOverride>,
    rejected: Vec<RejectedOverride>,
    /// The violations of the last completed evaluation of another head.
    previous: Option<Vec<Violation>>,
    /// Recent scores with their head SHAs, oldest first (this head's own may be among them).
    history: Vec<(String, u8)>,
}

/// What to publish, decided from [`Observed`] without any I/O.
struct Assessment {
    verdict: Option<Verdict>,
    conclusion: Conclusion,
    check_run_title: String,
    check_run_summary: String,
    comment: String,
    annotations: Vec<Annotation>,
}

/// The report, verdict, check-run content and comment for what the job observed (pure).
fn assess(
    catalog: &Catalog,
    policy_digest: &str,
    head_sha: &str,
    observed: &Observed,
) -> Assessment {
    let (report, verdict, conclusion, annotations) = match observed {
        Observed::Failed {
            error, conclusion, ..
        } => (
            ReportInput::Failed {
                error: error.clone(),
            },
            None,
            *conclusion,
            Vec::new(),
        ),
        Observed::Evaluated(observation) => {
            let mut evaluation = Evaluation::new(
                catalog,
                &observation.findings,
                &observation.overrides,
                observation.threshold,
                policy_digest,
            );
            evaluation.pending_overrides = observation.pending.clone();
            evaluation.rejected_overrides = observation.rejected.clone();
            if let Some(previous) = &observation.previous {
                evaluation.fixed = fixed_since(previous, &observation.findings.violations);
            }
            evaluation.history = observation
                .history
                .iter()
                .filter(|(sha, _)| sha != head_sha)
                .map(|(sha, score)| HistoryEntry {
                    score: *score,
                    sha: sha.clone(),
                })
                .collect();
            let verdict = evaluation.verdict();
            let conclusion = if verdict.passed() {
                Conclusion::Success
            } else {
                Conclusion::Failure
            };
            let annotations = annotations(&observation.findings.violations, catalog);
            (
                ReportInput::Evaluated(evaluation),
                Some(verdict),
                conclusion,
                annotations,
            )
        }
    };
    Assessment {
        check_run_title: report::check_run_title(&report),
        check_run_summary: report::render_markdown(&report, Surface::CheckRun),
        comment: report::render_markdown(&report, Surface::Comment),
        verdict,
        conclusion,
        annotations,
    }
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

    /// Fetch, assess, publish.
    pub async fn run(&self, target: &PrTarget) -> Result<(), JobError> {
        let started = Instant::now();
        let client = super::installation_client(&self.github, target.installation_id)?;
        let Some(fetched) = self.fetch(&client, target).await? else {
            return Ok(());
        };
        let assessment = assess(
            self.engine.catalog(),
            self.engine.digest(),
            &fetched.head_sha,
            &fetched.observed,
        );
        self.publish(&client, target, &fetched, &assessment, started)
            .await
    }

    /// Reads the pull request, starts its evaluation row, runs the pack and reads the stored
    /// state the report compares with. `None` when the pull request is not evaluated.
    async fn fetch(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
    ) -> Result<Option<Fetched>, JobError> {
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let pr = client.pull_request(owner, repo, target.number).await?;
        let skipped = if pr.state == PullRequestState::Closed {
            Some("pull request is closed: not evaluated")
        } else if pr.draft && !self.evaluate_drafts {
            Some("draft pull request: not evaluated")
        } else {
            None
        };
        if let Some(reason) = skipped {
            tracing::info!("{reason}");
            store::abandon_unfinished_evaluations(&self.pool, target, None).await?;
            return Ok(None);
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
        let observed = match self.evaluate(client, target, &pr).await? {
            Ok((findings, config, config_digest)) => {
                let requests =
                    expire_stale_requests(&self.pool, target, &findings.violations).await?;
                let previous = store::previous_evaluation(&self.pool, target, &head_sha).await?;
                let history = store::recent_scores(&self.pool, target, HISTORY_LENGTH).await?;
                Observed::Evaluated(Box::new(Observation {
                    threshold: config.threshold,
                    config_digest,
                    overrides: approved_overrides(&requests),
                    pending: pending_overrides(&requests),
                    rejected: rejected_overrides(&requests),
                    previous: previous.map(|p| p.violations),
                    history,
                    findings,
                }))
            }
            Err(failed) => failed,
        };
        let still_head = client
            .pull_request(owner, repo, target.number)
            .await?
            .head
            .sha
            == head_sha;
        Ok(Some(Fetched {
            evaluation_id: start.id,
            check_run_id: start.check_run_id,
            check_run_requested: start.check_run_requested,
            head_sha,
            still_head,
            observed,
        }))
    }

    /// Stores the result, then shows it on GitHub: what people see there is never ahead of
    /// what the store knows (a command typed as soon as the check run fails finds its
    /// violations). Then the Tier 1 alerts.
    async fn publish(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        fetched: &Fetched,
        assessment: &Assessment,
        started: Instant,
    ) -> Result<(), JobError> {
        let observation = match &fetched.observed {
            Observed::Failed {
                error,
                config_digest,
                ..
            } => {
                store::fail_evaluation(
                    &self.pool,
                    fetched.evaluation_id,
                    error,
                    config_digest.as_deref(),
                )
                .await?;
                None
            }
            Observed::Evaluated(observation) => Some(observation),
        };
        if let (Some(observation), Some(verdict)) = (observation, &assessment.verdict) {
            if fetched.still_head {
                let done = store::CompletedEvaluation {
                    evaluation_id: fetched.evaluation_id,
                    installation_id: target.installation_id,
                    score: verdict.score().value(),
                    verdict: verdict.as_str(),
                    threshold: verdict.threshold().value(),
                    counts: verdict.counts(),
                    config_digest: &observation.config_digest,
                    not_evaluated: &observation.findings.not_evaluated,
                    duration_ms: i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX),
                    violations: &observation.findings.violations,
                };
                store::complete_evaluation(&self.pool, &done).await?;
            } else {
                // A newer push arrived: its own job will update the comment.
                tracing::info!("head moved during evaluation: result kept on its check run only");
                store::supersede_evaluation(&self.pool, fetched.evaluation_id).await?;
            }
        }
        self.complete_check_run(client, target, fetched, assessment)
            .await?;
        if fetched.still_head {
            self.upsert_comment(client, target, fetched.evaluation_id, &assessment.comment)
                .await?;
        }
        let outcome = assessment.verdict.as_ref().map_or("error", Verdict::as_str);
        crate::telemetry::metrics::record_evaluation(outcome, started.elapsed());
        let (Some(observation), Some(verdict), true) =
            (observation, &assessment.verdict, fetched.still_head)
        else {
            return Ok(());
        };
        if let Some(policy) = &self.alerts {
            let findings = &observation.findings.violations;
            self.raise_alerts(
                policy,
                target,
                &fetched.head_sha,
                findings,
                &observation.overrides,
            )
            .await;
        }
        tracing::info!(
            score = verdict.score().value(),
            verdict = verdict.as_str(),
            "evaluation completed"
        );
        Ok(())
    }

    /// Records the Tier 1 alerts of a completed evaluation. Alerts are a side effect: a failure
    /// here must not fail the evaluation.
    pub(super) async fn raise_alerts(
        &self,
        policy: &AlertPolicy,
        target: &PrTarget,
        head_sha: &str,
        violations: &[Violation],
        overrides: &Overrides,
    ) {
        // Email needs the installation's recipients, so then the config is read from GitHub
        // when its cache is stale; otherwise the cache is enough.
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
            &self.pool, policy, &alerts, target, head_sha, violations, overrides,
        )
        .await
        {
            tracing::error!(%error, "cannot record Tier 1 alerts");
        }
    }

    /// Reads the config from the base branch, fetches the files and runs the pack: the
    /// findings, the config and its digest, or the failure to show.
    async fn evaluate(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        pr: &PullRequest,
    ) -> Result<Result<(Findings, RepoConfig, String), Observed>, JobError> {
        let (owner, repo) = (target.repo.owner.as_str(), target.repo.name.as_str());
        let base = BaseCommit::of(pr);
        let (config, config_digest) = match read_repo_config(
            &self.pool,
            client,
            &target.repo,
            &base,
            self.engine.catalog(),
        )
        .await?
        {
            (Ok(config), digest) => (config, digest),
            (Err(error), digest) => {
                return Ok(Err(Observed::Failed {
                    error,
                    config_digest: Some(digest),
                    conclusion: Conclusion::Neutral,
                }));
            }
        };
        let files = client
            .pull_request_files(owner, repo, target.number)
            .await?;
        let incomplete = "This pull request changes more files than GitHub lists (3,000): it cannot be evaluated completely. Split it into smaller pull requests.";
        let context = change_context(target, pr);
        Ok(
            match run_pack(&self.engine, &files, incomplete, context, &config).await? {
                Ok(findings) => Ok((findings, config, config_digest)),
                Err(unjudged) => Err(Observed::Failed {
                    error: unjudged.error,
                    config_digest: Some(config_digest),
                    conclusion: unjudged.conclusion,
                }),
            },
        )
    }

    async fn complete_check_run(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        fetched: &Fetched,
        assessment: &Assessment,
    ) -> Result<(), JobError> {
        let state = CheckRunState {
            head_sha: &fetched.head_sha,
            recorded: fetched.check_run_id,
            requested: fetched.check_run_requested,
        };
        let content = CheckRunContent {
            conclusion: assessment.conclusion,
            title: &assessment.check_run_title,
            summary: &assessment.check_run_summary,
            annotations: &assessment.annotations,
        };
        let ledger = PullRequestCheckRun(fetched.evaluation_id);
        publish_check_run(&self.pool, client, &target.repo, &state, &ledger, &content).await
    }

    /// Edits the pull request's one Tollgate comment, creating it the first time. Jobs for one
    /// pull request never run at once (the queue's dedup key), so there is no race here.
    async fn upsert_comment(
        &self,
        client: &InstallationClient,
        target: &PrTarget,
        evaluation_id: i64,
        body: &str,
    ) -> Result<(), JobError> {
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
        store::set_comment_id(&self.pool, target, Some(evaluation_id), id).await?;
        Ok(())
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
        store::set_comment_id(&self.pool, target, None, id).await?;
        Ok(id)
    }
}

/// The commit whose config applies: a pull request's base, or a merge group's.
pub(super) struct BaseCommit<'a> {
    pub sha: &'a str,
    /// The branch, for messages.
    pub name: &'a str,
}

impl<'a> BaseCommit<'a> {
    fn of(pr: &'a PullRequest) -> Self {
        Self {
            sha: &pr.base.sha,
            name: &pr.base.git_ref,
        }
    }
}

/// The repository config at the base (never the head: a change must not loosen its own
/// policy), or the error to show, with the digest of the file's text. The file is read from
/// GitHub once per base commit and then from the database.
pub(super) async fn read_repo_config(
    pool: &PgPool,
    client: &InstallationClient,
    repository: &RepoRef,
    base: &BaseCommit<'_>,
    catalog: &Catalog,
) -> Result<(Result<RepoConfig, String>, String), JobError> {
    let cached = store::cached_repo_config(pool, repository.id, base.sha).await?;
    let text = match cached {
        Some(content) => content,
        None => {
            let content = client
                .file_contents(&repository.owner, &repository.name, CONFIG_PATH, base.sha)
                .await?;
            store::cache_repo_config(pool, repository.id, base.sha, content.as_deref()).await?;
            content
        }
    }
    .unwrap_or_default();
    let config = RepoConfigFile::parse(&text)
        .and_then(|file| RepoConfig::resolve(&file, catalog))
        .map_err(|error| format!("{CONFIG_PATH} on {}: {error}", base.name));
    Ok((config, digest(&text)))
}

/// [`read_repo_config`] at a pull request's base, without the digest.
pub(super) async fn load_repo_config(
    pool: &PgPool,
    client: &InstallationClient,
    target: &PrTarget,
    pr: &PullRequest,
    catalog: &Catalog,
) -> Result<Result<RepoConfig, String>, JobError> {
    Ok(
        read_repo_config(pool, client, &target.repo, &BaseCommit::of(pr), catalog)
            .await?
            .0,
    )
}

/// Why the pack gave no findings, and the check run's conclusion for it.
pub(super) struct Unjudged {
    pub error: String,
    pub conclusion: Conclusion,
}

/// Runs the pack over a change's files, off the async runtime. A change GitHub did not list
/// whole (`incomplete` says so to the reader) or whose diff cannot be read fails closed
/// (`failure`); a pack error is `neutral`.
pub(super) async fn run_pack(
    engine: &Arc<PolicyEngine>,
    files: &ChangedFiles,
    incomplete: &str,
    context: ChangeContext,
    config: &RepoConfig,
) -> Result<Result<Findings, Unjudged>, JobError> {
    let fail_closed = |error: String| Unjudged {
        error,
        conclusion: Conclusion::Failure,
    };
    if !files.complete {
        return Ok(Err(fail_closed(incomplete.to_owned())));
    }
    let diff = match from_github_files(&files.files) {
        Ok(diff) => diff,
        Err(error) => return Ok(Err(fail_closed(error.to_string()))),
    };
    let engine = engine.clone();
    let config = config.clone();
    let result = tokio::task::spawn_blocking(move || engine.evaluate(&diff, &context, &config))
        .await
        .map_err(|e| JobError::Retry {
            message: format!("evaluation task: {e}"),
            after: None,
        })?;
    Ok(result.map_err(|error| Unjudged {
        error: error.to_string(),
        conclusion: Conclusion::Neutral,
    }))
}

/// A pull-request evaluation's check run, by the evaluation's id.
struct PullRequestCheckRun(i64);

impl CheckRunLedger for PullRequestCheckRun {
    fn external_id(&self) -> String {
        format!("tollgate-evaluation-{}", self.0)
    }

    async fn mark_requested(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        store::mark_check_run_requested(pool, self.0).await
    }

    async fn record(&self, pool: &PgPool, check_run_id: i64) -> Result<(), sqlx::Error> {
        store::set_check_run_id(pool, self.0, check_run_id).await
    }
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
        repository: repository_info(&target.repo),
    }
}

pub(super) fn repository_info(repo: &RepoRef) -> RepositoryInfo {
    RepositoryInfo {
        owner: Some(repo.owner.clone()),
        name: Some(repo.name.clone()),
        full_name: Some(repo.full_name()),
        default_branch: None,
        private: None,
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
pub(super) fn annotations(violations: &[Violation], catalog: &Catalog) -> Vec<Annotation> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ApprovedOverride, Fingerprint, RuleId, Tier};

    const RULES: &str = r#"
- id: R01
  name: Provider secret or token
  tier: BLOCK
  category: security
  description: Added lines contain a credential.
  remediation: Remove the secret and rotate it.
  override_when: The value is a documented test fixture.
- id: R12
  name: TODO without an issue
  tier: WARNING
  category: hygiene
  description: A TODO comment that does not reference an issue.
  remediation: Link the TODO to an issue.
  override_when: Never needed; warnings do not block.
"#;
    const HEAD: &str = "1111111111111111111111111111111111111111";

    fn catalog() -> Catalog {
        let mut catalog = Catalog::default();
        catalog.add_yaml("rules.yaml", RULES, false).unwrap();
        catalog
    }

    fn violation(rule: &str, tier: Tier, path: &str, line: u32, message: &str) -> Violation {
        let rule_id: RuleId = rule.parse().unwrap();
        Violation {
            fingerprint: Fingerprint::of(&rule_id, Some(path), message),
            rule_id,
            tier,
            path: Some(path.to_owned()),
            line: Some(line),
            message: message.to_owned(),
        }
    }

    fn observed(violations: Vec<Violation>, overrides: Overrides) -> Observed {
        Observed::Evaluated(Box::new(Observation {
            findings: Findings {
                violations,
                not_evaluated: Vec::new(),
            },
            threshold: Threshold::DEFAULT,
            config_digest: "c0ffee".into(),
            overrides,
            pending: Vec::new(),
            rejected: Vec::new(),
            previous: None,
            history: Vec::new(),
        }))
    }

    #[test]
    fn a_failure_shows_its_error_with_its_conclusion_and_no_verdict() {
        let failed = Observed::Failed {
            error: "bad config".into(),
            config_digest: None,
            conclusion: Conclusion::Neutral,
        };
        let assessment = assess(&catalog(), "d1", HEAD, &failed);
        assert_eq!(assessment.conclusion, Conclusion::Neutral);
        assert!(assessment.verdict.is_none());
        assert!(assessment.annotations.is_empty());
        assert!(assessment.comment.starts_with(STICKY_COMMENT_MARKER));
        assert!(assessment.comment.contains("bad config"));
        assert!(assessment.check_run_summary.contains("bad config"));
    }

    #[test]
    fn a_block_violation_fails_with_a_failure_annotation_on_its_line() {
        let leak = violation("R01", Tier::Block, "src/key.rs", 3, "AWS key");
        let todo = violation("R12", Tier::Warning, "src/lib.rs", 9, "TODO");
        let assessment = assess(
            &catalog(),
            "d1",
            HEAD,
            &observed(vec![leak, todo], Overrides::default()),
        );
        assert_eq!(assessment.conclusion, Conclusion::Failure);
        assert!(!assessment.verdict.as_ref().unwrap().passed());
        let levels: Vec<_> = assessment
            .annotations
            .iter()
            .map(|a| (a.path.as_str(), a.start_line, a.annotation_level))
            .collect();
        assert_eq!(
            levels,
            [
                ("src/key.rs", 3, AnnotationLevel::Failure),
                ("src/lib.rs", 9, AnnotationLevel::Notice)
            ]
        );
    }

    #[test]
    fn an_approved_override_of_the_block_violation_passes() {
        let leak = violation("R01", Tier::Block, "src/key.rs", 3, "AWS key");
        let overrides = Overrides::new(vec![ApprovedOverride {
            fingerprints: [leak.fingerprint.clone()].into(),
            requested_by: "alice".into(),
            approved_by: vec!["bob".into()],
            reason: "a test fixture that grants nothing".into(),
        }]);
        let assessment = assess(&catalog(), "d1", HEAD, &observed(vec![leak], overrides));
        assert_eq!(assessment.conclusion, Conclusion::Success);
        assert!(assessment.verdict.unwrap().passed());
    }

    #[test]
    fn the_comment_lists_what_was_fixed_and_a_history_without_this_head() {
        let gone = violation("R12", Tier::Warning, "src/old.rs", 1, "TODO gone");
        let Observed::Evaluated(mut observation) = observed(Vec::new(), Overrides::default())
        else {
            unreachable!()
        };
        observation.previous = Some(vec![gone]);
        observation.history = vec![("a".repeat(40), 40), (HEAD.to_owned(), 100)];
        let assessment = assess(&catalog(), "d1", HEAD, &Observed::Evaluated(observation));
        assert_eq!(assessment.conclusion, Conclusion::Success);
        assert!(assessment.comment.contains("Fixed since the last push"));
        assert!(assessment.comment.contains("TODO gone"));
        assert!(assessment.comment.contains("40"));
    }
}
