//! Configuration: the repository config (`.github/tollgate.yml`).

pub mod repo;

pub use repo::{EffectiveRule, RepoConfig, RepoConfigError, RepoConfigFile, RuleSettings};
