//! Installations (tenants), their repositories, and the rule catalog.

use crate::github::events::{InstallationChange, RepoRef};
use crate::policy::Catalog;
use sqlx::{PgConnection, PgPool};

/// Records an installation being created, changed or retired, and its repositories, inside the
/// caller's transaction (the one that records the delivery).
pub async fn apply_installation_change(
    tx: &mut PgConnection,
    change: &InstallationChange,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO installations (id, account_login, account_type, active, retired_at)
         VALUES ($1, $2, $3, $4, CASE WHEN $4 THEN NULL ELSE now() END)
         ON CONFLICT (id) DO UPDATE SET account_login = EXCLUDED.account_login,
             account_type = EXCLUDED.account_type, active = EXCLUDED.active,
             retired_at = EXCLUDED.retired_at, updated_at = now()",
    )
    .bind(change.installation_id)
    .bind(&change.account_login)
    .bind(&change.account_type)
    .bind(change.active)
    .execute(&mut *tx)
    .await?;
    for (repos, active) in [(&change.added, true), (&change.removed, false)] {
        for repo in repos {
            upsert_repository(tx, change.installation_id, repo, active).await?;
        }
    }
    Ok(())
}

/// Makes sure the tenant and repository rows exist before an evaluation refers to them (the app
/// may have been installed before this database existed).
pub async fn ensure_repository(
    pool: &PgPool,
    installation_id: i64,
    repo: &RepoRef,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO installations (id, account_login) VALUES ($1, $2)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(installation_id)
    .bind(&repo.owner)
    .execute(&mut *tx)
    .await?;
    upsert_repository(&mut tx, installation_id, repo, true).await?;
    tx.commit().await
}

async fn upsert_repository(
    conn: &mut PgConnection,
    installation_id: i64,
    repo: &RepoRef,
    active: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO repositories (id, installation_id, full_name, active)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET installation_id = EXCLUDED.installation_id,
             full_name = EXCLUDED.full_name, active = EXCLUDED.active, updated_at = now()",
    )
    .bind(repo.id)
    .bind(installation_id)
    .bind(repo.full_name())
    .bind(active)
    .execute(conn)
    .await?;
    Ok(())
}

/// Makes the stored rule catalog the running pack's (safe with several processes starting).
pub async fn sync_rule_definitions(
    pool: &PgPool,
    catalog: &Catalog,
    pack_digest: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for rule in catalog.iter() {
        sqlx::query(
            "INSERT INTO rule_definitions (rule_id, name, tier, category, description,
                 remediation, override_when, pack_digest)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (rule_id) DO UPDATE SET name = EXCLUDED.name, tier = EXCLUDED.tier,
                 category = EXCLUDED.category, description = EXCLUDED.description,
                 remediation = EXCLUDED.remediation, override_when = EXCLUDED.override_when,
                 pack_digest = EXCLUDED.pack_digest, updated_at = now()",
        )
        .bind(rule.id.as_str())
        .bind(&rule.name)
        .bind(rule.tier.as_str())
        .bind(&rule.category)
        .bind(&rule.description)
        .bind(&rule.remediation)
        .bind(&rule.override_when)
        .bind(pack_digest)
        .execute(&mut *tx)
        .await?;
    }
    let ids: Vec<&str> = catalog.iter().map(|r| r.id.as_str()).collect();
    sqlx::query("DELETE FROM rule_definitions WHERE rule_id <> ALL($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}
