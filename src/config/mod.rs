//! Configuration: the process settings (environment) and the repository config
//! (`.github/tollgate.yml`).

pub mod repo;
mod settings;

pub use repo::{EffectiveRule, RepoConfig, RepoConfigError, RepoConfigFile, RuleSettings};
pub use settings::{AppSettings, LogFormat, Secret, SettingsError, database_url};
