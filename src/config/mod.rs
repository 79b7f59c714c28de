//! Configuration: the process settings (environment) and the repository config
//! (`.github/tollgate.yml`).

pub mod installation;
mod overrides;
pub mod repo;
mod settings;

pub use installation::{
    AlertSettings, InstallationConfig, InstallationConfigError, InstallationConfigFile,
};
pub use overrides::{Approver, InvalidApprover, OverrideSettings, OverridesFile, TeamRef};
pub use repo::{
    EffectiveRule, MergeQueueMode, RepoConfig, RepoConfigError, RepoConfigFile, RuleSettings,
};
pub use settings::{
    AppSettings, DashboardSettings, EmailSettings, LogFormat, PagerDutySettings, Secret,
    SessionKey, SettingsError, SlackSettings, database_url,
};
