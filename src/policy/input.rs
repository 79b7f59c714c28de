//! The one JSON document every policy reads as `input` (documented in `policies/README.md`).

use super::prefilter::Prefilter;
use crate::config::{EffectiveRule, RepoConfig};
use crate::diff::{Diff, FileChange, FileStatus, Line, LineKind, LineSyntax, classify};
use crate::domain::RuleId;
use serde::Serialize;
use std::collections::BTreeMap;

/// What is known about the pull request besides its diff. Everything is optional because
/// `tollgate check` on a local diff knows little of it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PullRequestInfo {
    pub number: Option<u64>,
    pub title: String,
    pub body: String,
    pub author: Option<String>,
    pub draft: bool,
    pub base: GitRef,
    pub head: GitRef,
    pub labels: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub name: Option<String>,
    pub sha: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RepositoryInfo {
    pub owner: Option<String>,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub default_branch: Option<String>,
    pub private: Option<bool>,
}

/// The pull request and repository a diff belongs to.
#[derive(Debug, Clone, Default)]
pub struct ChangeContext {
    pub pull_request: PullRequestInfo,
    pub repository: RepositoryInfo,
}

#[derive(Serialize)]
pub(crate) struct PolicyInput<'a> {
    pull_request: PullRequestInput<'a>,
    repository: &'a RepositoryInfo,
    files: Vec<FileInput<'a>>,
    config: ConfigInput<'a>,
    candidates: BTreeMap<&'a RuleId, Vec<CandidateLine<'a>>>,
}

#[derive(Serialize)]
struct PullRequestInput<'a> {
    #[serde(flatten)]
    info: &'a PullRequestInfo,
    additions: u64,
    deletions: u64,
    changed_files: usize,
}

#[derive(Serialize)]
struct FileInput<'a> {
    path: &'a str,
    old_path: Option<&'a str>,
    status: FileStatus,
    binary: bool,
    patch_available: bool,
    additions: u32,
    deletions: u32,
    /// Bytes of added text: an estimate of the size a new file adds.
    added_bytes: usize,
    missing_final_newline: bool,
    added: Vec<AddedLine<'a>>,
    removed: &'a [Line],
    /// Unchanged lines the diff shows around the changes.
    context: &'a [Line],
}

/// An added line with its syntactic context (`policies/README.md`, "Syntactic context").
#[derive(Serialize)]
struct AddedLine<'a> {
    number: u32,
    text: &'a str,
    kind: LineKind,
    test: bool,
}

#[derive(Serialize)]
struct ConfigInput<'a> {
    threshold: u8,
    ignore_paths: &'a [String],
    rules: &'a BTreeMap<RuleId, EffectiveRule>,
}

#[derive(Clone, Serialize)]
struct CandidateLine<'a> {
    path: &'a str,
    line: u32,
    text: &'a str,
    kind: LineKind,
    code: &'a str,
    strings: &'a [String],
    test: bool,
}

impl<'a> PolicyInput<'a> {
    /// Files matched by the config's `ignore_paths` are left out entirely.
    /// `syntax` holds the context of each evaluated file's added lines (from [`classify_files`]).
    pub(crate) fn build(
        diff: &'a Diff,
        syntax: &'a [Vec<LineSyntax>],
        context: &'a ChangeContext,
        config: &'a RepoConfig,
        prefilter: &'a Prefilter,
    ) -> Self {
        let evaluated = evaluated_files(diff, config);
        let mut per_rule: Vec<Vec<CandidateLine>> = vec![Vec::new(); prefilter.rules().len()];
        let mut seen = Vec::new();
        for (file, syntax) in evaluated.iter().zip(syntax) {
            for (line, syntax) in file.added.iter().zip(syntax) {
                prefilter.matching_rules(&line.text, &mut seen, |rule| {
                    per_rule[rule].push(CandidateLine {
                        path: file.path(),
                        line: line.number,
                        text: &line.text,
                        kind: syntax.kind,
                        code: &syntax.code,
                        strings: &syntax.strings,
                        test: syntax.test,
                    });
                });
            }
        }
        let candidates = prefilter.rules().iter().zip(per_rule).collect();
        let pull_request = PullRequestInput {
            info: &context.pull_request,
            additions: evaluated.iter().map(|f| u64::from(f.additions)).sum(),
            deletions: evaluated.iter().map(|f| u64::from(f.deletions)).sum(),
            changed_files: evaluated.len(),
        };
        let files = evaluated
            .iter()
            .zip(syntax)
            .map(|(f, syntax)| FileInput::of(f, syntax))
            .collect();
        let config = ConfigInput {
            threshold: config.threshold.value(),
            ignore_paths: &config.ignore_paths,
            rules: &config.rules,
        };
        Self {
            pull_request,
            repository: &context.repository,
            files,
            config,
            candidates,
        }
    }
}

/// The files a config evaluates (those not matched by `ignore_paths`), in diff order.
fn evaluated_files<'a>(diff: &'a Diff, config: &RepoConfig) -> Vec<&'a FileChange> {
    diff.files
        .iter()
        .filter(|f| !config.is_ignored(f.path()))
        .collect()
}

/// The syntactic context of the added lines of every file the config evaluates, in the order
/// [`PolicyInput::build`] expects.
pub(crate) fn classify_files(diff: &Diff, config: &RepoConfig) -> Vec<Vec<LineSyntax>> {
    evaluated_files(diff, config)
        .into_iter()
        .map(classify)
        .collect()
}

impl<'a> FileInput<'a> {
    fn of(file: &'a FileChange, syntax: &'a [LineSyntax]) -> Self {
        Self {
            path: file.path(),
            old_path: file.old_path.as_deref(),
            status: file.status,
            binary: file.binary,
            patch_available: file.patch_available,
            additions: file.additions,
            deletions: file.deletions,
            added_bytes: file.added.iter().map(|l| l.text.len() + 1).sum(),
            missing_final_newline: file.new_missing_final_newline,
            added: file
                .added
                .iter()
                .zip(syntax)
                .map(|(line, syntax)| AddedLine {
                    number: line.number,
                    text: &line.text,
                    kind: syntax.kind,
                    test: syntax.test,
                })
                .collect(),
            removed: &file.removed,
            context: &file.context,
        }
    }
}
