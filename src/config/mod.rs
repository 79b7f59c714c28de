//! Configuration: the process settings (environment) and the repository config
//! (`.github/tollgate.yml`).

mod overrides;
pub mod repo;
mod settings;

pub use overrides::{Approver, InvalidApprover, OverrideSettings, OverridesFile, TeamRef};
pub use repo::{EffectiveRule, RepoConfig, RepoConfigError, RepoConfigFile, RuleSettings};
pub use settings::{
    AppSettings, DashboardSettings, LogFormat, Secret, SessionKey, SettingsError, SlackSettings,
    database_url,
};
