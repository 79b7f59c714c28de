//! Policy evaluation: the rule catalog, the input document, the prefilter and the regorus
//! engine. Pure: files are read only when a pack is loaded from a directory.

mod catalog;
mod engine;
mod input;
mod pack;
mod prefilter;

pub use catalog::{Catalog, CatalogError, RuleMeta};
pub use engine::{FileCoverage, Findings, PolicyEngine, TracedRun};
pub use input::{ChangeContext, GitRef, PullRequestInfo, RepositoryInfo};
pub use pack::{PolicyPack, PolicySource, RULES_FILE};

/// How long a pack may run on one change unless configured (`POLICY_TIME_LIMIT_SECONDS`).
pub const DEFAULT_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Everything that can go wrong loading or running a pack. Messages from regorus carry the
/// policy file, line and column (`--> file:line:col`).
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policies from {path}: {message}")]
    Io { path: String, message: String },
    #[error("invalid rule metadata: {0}")]
    Catalog(#[from] CatalogError),
    #[error("policy error: {message}")]
    Compile { message: String },
    #[error("policy {package} failed: {message}")]
    Runtime { package: String, message: String },
    #[error(
        "policy {package} was stopped: the pack ran longer than its time limit of {} s on this change (a rule that loops or does too much work per line)",
        limit.as_secs_f64()
    )]
    TimeLimit {
        package: String,
        limit: std::time::Duration,
    },
    #[error("policy {package} reported an invalid violation: {message}")]
    Output { package: String, message: String },
    #[error("cannot build the policy input: {message}")]
    Input { message: String },
}
