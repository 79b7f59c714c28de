//! The installation config (`tollgate.yml` in the account's `.github` repository), read from
//! GitHub and cached in PostgreSQL. A cache older than [`CONFIG_MAX_AGE`] is read again: by the
//! evaluation that needs it, or by the `refresh_installation_config` job the digest scheduler
//! queues, so an edit of the file takes effect within that time.

use super::{JobError, REFRESH_INSTALLATION_CONFIG};
use crate::config::InstallationConfig;
use crate::config::installation::{INSTALLATION_CONFIG_PATH, INSTALLATION_CONFIG_REPO};
use crate::github::GithubApp;
use crate::store;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

pub const CONFIG_MAX_AGE: Duration = Duration::from_secs(10 * 60);

/// The cached config in force: the last valid file (an invalid one is said in the logs), or the
/// defaults when there is none.
pub async fn cached_config(
    pool: &PgPool,
    installation_id: i64,
) -> Result<InstallationConfig, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let cached = store::cached_installation_config(&mut conn, installation_id).await?;
    Ok(cached
        .map(|c| in_force(c.installation_id, c.content.as_deref(), c.error.as_deref()))
        .unwrap_or_default())
}

/// The config, read from GitHub first when the cache is missing or stale.
pub async fn current_config(
    pool: &PgPool,
    github: &GithubApp,
    installation_id: i64,
) -> Result<InstallationConfig, JobError> {
    let fresh = {
        let mut conn = pool.acquire().await?;
        store::cached_installation_config(&mut conn, installation_id)
            .await?
            .filter(|c| {
                (chrono::Utc::now() - c.fetched_at)
                    .to_std()
                    .is_ok_and(|age| age < CONFIG_MAX_AGE)
            })
    };
    let (content, error) = match fresh {
        Some(cached) => (cached.content, cached.error),
        None => refresh(pool, github, installation_id).await?,
    };
    Ok(in_force(
        installation_id,
        content.as_deref(),
        error.as_deref(),
    ))
}

/// Reads the file from GitHub and caches it with its error, if any; the text in force and
/// the error.
async fn refresh(
    pool: &PgPool,
    github: &GithubApp,
    installation_id: i64,
) -> Result<(Option<String>, Option<String>), JobError> {
    let Some(account) = store::installation_account(pool, installation_id).await? else {
        return Err(JobError::Permanent(format!(
            "no installation {installation_id}"
        )));
    };
    let content = super::installation_client(github, installation_id)?
        .default_branch_file(&account, INSTALLATION_CONFIG_REPO, INSTALLATION_CONFIG_PATH)
        .await?;
    let error = content.as_deref().and_then(|text| {
        InstallationConfig::from_yaml(text).err().map(|e| {
            format!("{account}/{INSTALLATION_CONFIG_REPO}:{INSTALLATION_CONFIG_PATH}: {e}")
        })
    });
    let in_force = store::save_installation_config(
        pool,
        installation_id,
        content.as_deref(),
        error.as_deref(),
    )
    .await?;
    Ok((in_force, error))
}

/// The config in force: `content` is the last valid file (only valid files are kept), so one bad
/// value in an edit never switches an installation's alerts off; the error is logged.
pub fn in_force(
    installation_id: i64,
    content: Option<&str>,
    error: Option<&str>,
) -> InstallationConfig {
    if let Some(error) = error {
        tracing::warn!(installation = installation_id, %error, "installation config invalid: the last valid one stays in force");
    }
    match content.map(InstallationConfig::from_yaml) {
        None => InstallationConfig::default(),
        Some(Ok(config)) => config,
        // Valid when stored, refused by this version: say so rather than drop it silently.
        Some(Err(error)) => {
            tracing::error!(installation = installation_id, %error, "stored installation config no longer valid: defaults apply");
            InstallationConfig::default()
        }
    }
}

/// Queues a refresh; refreshes of one installation coalesce while one waits.
pub async fn enqueue_refresh(
    conn: &mut PgConnection,
    installation_id: i64,
) -> Result<(), sqlx::Error> {
    let job = super::NewJob {
        kind: REFRESH_INSTALLATION_CONFIG,
        payload: serde_json::json!({ "installation_id": installation_id }),
        installation_id: Some(installation_id),
        dedup_key: format!("installation-config:{installation_id}"),
        max_attempts: 5,
    };
    super::enqueue(conn, &job).await.map(drop)
}
