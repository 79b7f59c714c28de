//! GitHub traffic shared across processes: the write budget of each installation and the
//! repository configs read per base commit.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};

/// The answer to asking for a write slot.
#[derive(Debug, Clone)]
pub struct WriteSlot {
    /// Whether this call took the slot.
    pub granted: bool,
    /// When the installation's writes of the last hour (and maybe a little older) were sent,
    /// this one included when granted.
    pub sent_at: Vec<DateTime<Utc>>,
    /// The database's clock when the statement ran: every process measures windows against it.
    pub now: DateTime<Utc>,
}

/// Takes one write slot for `installation_id` if fewer than `per_minute` writes were sent in the
/// last minute and fewer than `per_hour` in the last hour. One statement: the row lock taken by
/// the upsert serializes concurrent callers, and each sees the latest committed list.
pub async fn take_write_slot(
    pool: &PgPool,
    installation_id: i64,
    per_minute: u32,
    per_hour: u32,
) -> Result<WriteSlot, sqlx::Error> {
    let token = uuid::Uuid::new_v4();
    let row = sqlx::query(
        "INSERT INTO github_write_budget AS b (installation_id, sent_at, last_grant)
         VALUES ($1, ARRAY[now()], $4)
         ON CONFLICT (installation_id) DO UPDATE SET (sent_at, last_grant) = (
             SELECT CASE WHEN w.open THEN w.kept || now() ELSE b.sent_at END,
                    CASE WHEN w.open THEN $4 ELSE b.last_grant END
             FROM (SELECT ARRAY(SELECT t FROM unnest(b.sent_at) t
                                WHERE t > now() - interval '1 hour' ORDER BY t) AS kept,
                          (SELECT count(*) FILTER (WHERE t > now() - interval '1 minute') < $2
                              AND count(*) FILTER (WHERE t > now() - interval '1 hour') < $3
                           FROM unnest(b.sent_at) t) AS open) w)
         RETURNING last_grant = $4 AS granted, sent_at, now() AS now",
    )
    .bind(installation_id)
    .bind(i64::from(per_minute))
    .bind(i64::from(per_hour))
    .bind(token)
    .fetch_one(pool)
    .await?;
    Ok(WriteSlot {
        granted: row.get("granted"),
        sent_at: row.get("sent_at"),
        now: row.get("now"),
    })
}

/// The cached `.github/tollgate.yml` of a repository at a base commit: `None` when it was never
/// read, `Some(None)` when the commit has no such file.
pub async fn cached_repo_config(
    pool: &PgPool,
    repository_id: i64,
    base_sha: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT content FROM repo_config_cache WHERE repository_id = $1 AND base_sha = $2",
    )
    .bind(repository_id)
    .bind(base_sha)
    .fetch_optional(pool)
    .await
}

/// Remembers a repository's config text at a base commit (`None`: no file there).
pub async fn cache_repo_config(
    pool: &PgPool,
    repository_id: i64,
    base_sha: &str,
    content: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repo_config_cache (repository_id, base_sha, content) VALUES ($1, $2, $3)
         ON CONFLICT (repository_id, base_sha) DO NOTHING",
    )
    .bind(repository_id)
    .bind(base_sha)
    .bind(content)
    .execute(pool)
    .await?;
    Ok(())
}
