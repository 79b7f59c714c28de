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
    #[error("policy {package} reported an invalid violation: {message}")]
    Output { package: String, message: String },
    #[error("cannot build the policy input: {message}")]
    Input { message: String },
}
