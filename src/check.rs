//! `tollgate check`: evaluate the pack on a local change (a diff file, stdin, or a git range).

use crate::config::{RepoConfig, RepoConfigError, RepoConfigFile};
use crate::diff::{Diff, DiffError, parse_unified};
use crate::domain::{Overrides, Verdict, judge};
use crate::policy::{ChangeContext, Findings, PolicyEngine, PolicyError, PolicyPack};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the change comes from.
#[derive(Debug, Clone)]
pub enum DiffSource {
    /// A unified diff file; `-` reads standard input.
    File(PathBuf),
    /// `git diff BASE...HEAD` in the current directory.
    GitBase(String),
}

/// How `--policies` combines with the built-in pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackMode {
    /// The built-in pack plus the directory's policies and rules.
    Extend,
    /// Only the directory's policies and rules.
    Replace,
}

#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub source: DiffSource,
    pub title: Option<String>,
    pub body: Option<String>,
    pub config: Option<PathBuf>,
    pub policies: Option<PathBuf>,
    pub pack_mode: PackMode,
    /// How long the pack may run on the change.
    pub time_limit: std::time::Duration,
}

/// Everything that stops a check from producing a verdict; all map to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read {path}: {message}")]
    Read { path: String, message: String },
    #[error("git diff {base}...HEAD failed: {message}")]
    Git { base: String, message: String },
    #[error("{path}: {source}")]
    Diff { path: String, source: DiffError },
    #[error("config {path}: {source}")]
    Config {
        path: String,
        source: RepoConfigError,
    },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// The result of a check, ready to render.
pub struct CheckOutcome {
    pub engine: PolicyEngine,
    pub findings: Findings,
    pub verdict: Verdict,
    pub context: ChangeContext,
}

pub fn run(request: &CheckRequest) -> Result<CheckOutcome, CheckError> {
    let pack = load_pack(request.policies.as_deref(), request.pack_mode)?;
    let engine = PolicyEngine::load(&pack)?.with_time_limit(request.time_limit);
    let config = load_config(request.config.as_deref(), &engine)?;
    let diff = read_diff(&request.source)?;
    let mut context = ChangeContext::default();
    context.pull_request.title = request.title.clone().unwrap_or_default();
    context.pull_request.body = request.body.clone().unwrap_or_default();
    let findings = engine.evaluate(&diff, &context, &config)?;
    let verdict = judge(
        &findings.violations,
        &Overrides::default(),
        config.threshold,
    );
    Ok(CheckOutcome {
        engine,
        findings,
        verdict,
        context,
    })
}

fn load_pack(policies: Option<&Path>, mode: PackMode) -> Result<PolicyPack, PolicyError> {
    let mut pack = match (policies, mode) {
        (Some(_), PackMode::Replace) => PolicyPack::empty(),
        _ => PolicyPack::default_pack()?,
    };
    if let Some(dir) = policies {
        pack.add_dir(dir)?;
    }
    Ok(pack)
}

fn load_config(path: Option<&Path>, engine: &PolicyEngine) -> Result<RepoConfig, CheckError> {
    let Some(path) = path else {
        return Ok(RepoConfig::defaults(engine.catalog()));
    };
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| CheckError::Read {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    RepoConfigFile::parse(&text)
        .and_then(|file| RepoConfig::resolve(&file, engine.catalog()))
        .map_err(|source| CheckError::Config {
            path: shown,
            source,
        })
}

fn read_diff(source: &DiffSource) -> Result<Diff, CheckError> {
    let (name, bytes) = match source {
        DiffSource::File(path) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| CheckError::Read {
                    path: "stdin".into(),
                    message: e.to_string(),
                })?;
            ("stdin".to_owned(), bytes)
        }
        DiffSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| CheckError::Read {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
            (path.display().to_string(), bytes)
        }
        DiffSource::GitBase(base) => (format!("git diff {base}...HEAD"), git_diff(base)?),
    };
    parse_unified(&bytes).map_err(|source| CheckError::Diff { path: name, source })
}

/// The change a pull request from HEAD into `base` would make (three-dot: since the merge base).
fn git_diff(base: &str) -> Result<Vec<u8>, CheckError> {
    let git_error = |message: String| CheckError::Git {
        base: base.to_owned(),
        message,
    };
    if base.starts_with('-') {
        return Err(git_error(
            "the base must be a ref, not an option".to_owned(),
        ));
    }
    let output = Command::new("git")
        .args([
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--find-renames",
            "--no-textconv",
        ])
        .arg(format!("{base}...HEAD"))
        .arg("--")
        .output()
        .map_err(|e| git_error(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(git_error(
            String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        ));
    }
    Ok(output.stdout)
}
