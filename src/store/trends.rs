//! Trend rollups (migration 0007): what the evaluations completed on each UTC day found, per
//! installation, repository, rule and tier, and their scores. The workers write a day once it is
//! over (`roll_up_day`, as the owner, every installation at once); the dashboard reads them in
//! its tenant transaction, where row-level security shows one installation, and computes today
//! live from the same query.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// Per installation, repository, rule and tier: the distinct (pull request, fingerprint) of the
/// evaluations completed in [$1, $2), and how many of them no earlier completed evaluation of the
/// pull request had.
macro_rules! rule_rows {
    () => {
        "SELECT e.installation_id, e.repository_id, v.rule_id, v.tier,
                count(DISTINCT (e.pr_number, v.fingerprint))::int AS found,
                (count(DISTINCT (e.pr_number, v.fingerprint)) FILTER (WHERE NOT EXISTS (
                    SELECT 1 FROM violations pv JOIN evaluations pe ON pe.id = pv.evaluation_id
                    WHERE pe.repository_id = e.repository_id AND pe.pr_number = e.pr_number
                      AND pe.status = 'completed' AND pe.completed_at < $1
                      AND pv.fingerprint = v.fingerprint)))::int AS new
         FROM evaluations e JOIN violations v ON v.evaluation_id = e.id
         WHERE e.status = 'completed' AND e.completed_at >= $1 AND e.completed_at < $2
         GROUP BY e.installation_id, e.repository_id, v.rule_id, v.tier"
    };
}

/// Per installation and repository: the evaluations completed in [$1, $2) and their scores.
macro_rules! score_rows {
    () => {
        "SELECT installation_id, repository_id, count(*)::int AS evaluations,
                count(*) FILTER (WHERE verdict = 'pass')::int AS passed,
                count(*) FILTER (WHERE verdict = 'fail')::int AS failed,
                avg(score)::float8 AS average_score, min(score) AS min_score
         FROM evaluations
         WHERE status = 'completed' AND score IS NOT NULL
           AND completed_at >= $1 AND completed_at < $2
         GROUP BY installation_id, repository_id"
    };
}

/// Rows written by one day's rollup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RollupCounts {
    pub rule_days: u64,
    pub score_days: u64,
}

/// The UTC instants a day starts and ends (exclusive).
fn day_bounds(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let next = day.succ_opt().unwrap_or(day);
    (
        day.and_time(NaiveTime::MIN).and_utc(),
        next.and_time(NaiveTime::MIN).and_utc(),
    )
}

/// Replaces `day`'s rollup rows of every installation in one transaction: running it again gives
/// the same rows, and a reader sees either the old day or the new one.
pub async fn roll_up_day(pool: &PgPool, day: NaiveDate) -> Result<RollupCounts, sqlx::Error> {
    let (start, end) = day_bounds(day);
    let mut tx = pool.begin().await?;
    // Two rollups of one day at once would both insert after both deleted: the second waits.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('tollgate.trend_rollup'), $1)")
        .bind(day.num_days_from_ce())
        .execute(&mut *tx)
        .await?;
    for sql in [
        "DELETE FROM trend_rule_days WHERE day = $1",
        "DELETE FROM trend_score_days WHERE day = $1",
    ] {
        sqlx::query(sql).bind(day).execute(&mut *tx).await?;
    }
    let rule_days = sqlx::query(concat!(
        "INSERT INTO trend_rule_days (installation_id, repository_id, rule_id, tier, found, new, day)
         SELECT r.*, $3::date FROM (",
        rule_rows!(),
        ") r"
    ))
    .bind(start)
    .bind(end)
    .bind(day)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let score_days = sqlx::query(concat!(
        "INSERT INTO trend_score_days (installation_id, repository_id, evaluations, passed, failed,
             average_score, min_score, day)
         SELECT s.*, $3::date FROM (",
        score_rows!(),
        ") s"
    ))
    .bind(start)
    .bind(end)
    .bind(day)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(RollupCounts {
        rule_days,
        score_days,
    })
}

/// What the trend charts show; `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrendFilter {
    /// owner/name.
    pub repository: Option<String>,
    /// A rule id: narrows the violation counts (evaluations and scores are not per rule).
    pub rule: Option<String>,
}

/// One day of a trend chart; days without evaluations are zeros.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendDay {
    pub day: NaiveDate,
    pub evaluations: i64,
    pub passed: i64,
    pub failed: i64,
    /// Rounded to two decimals; `None` without evaluations.
    pub average_score: Option<f64>,
    pub min_score: Option<i16>,
    /// Violations found that day, by tier.
    pub block: i64,
    pub r#override: i64,
    pub warning: i64,
    /// Of those, the ones first seen in their pull request that day.
    pub new_violations: i64,
}

impl TrendDay {
    fn empty(day: NaiveDate) -> Self {
        Self {
            day,
            evaluations: 0,
            passed: 0,
            failed: 0,
            average_score: None,
            min_score: None,
            block: 0,
            r#override: 0,
            warning: 0,
            new_violations: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ScoreDay {
    pub day: NaiveDate,
    pub evaluations: i64,
    pub passed: i64,
    pub failed: i64,
    pub average_score: Option<f64>,
    pub min_score: Option<i16>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TierDay {
    pub day: NaiveDate,
    pub block_found: i64,
    pub override_found: i64,
    pub warning_found: i64,
    pub new_found: i64,
}

/// Violation counts per rule over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RuleCount {
    pub rule_id: String,
    pub tier: String,
    /// The days' counts added up: a violation present on three days counts three times.
    pub violations: i64,
    pub new_violations: i64,
}

/// The rollup rows of [$3, $4) and today's ($4) computed live, of one repository ($5) or all.
/// $1 and $2 are today's bounds.
macro_rules! rule_days {
    () => {
        concat!(
            "WITH live AS (",
            rule_rows!(),
            "), days AS (
                 SELECT day, repository_id, rule_id, tier, found, new FROM trend_rule_days
                 WHERE day >= $3 AND day < $4
                 UNION ALL
                 SELECT $4::date, repository_id, rule_id, tier, found, new FROM live
             ), filtered AS (
                 SELECT * FROM days
                 WHERE ($5::text IS NULL
                        OR repository_id IN (SELECT id FROM repositories WHERE full_name = $5))
                   AND ($6::text IS NULL OR rule_id = $6)
             ) "
        )
    };
}

/// The first day of a range of `days` days ending with `today`.
fn range_start(days: u32, today: NaiveDate) -> NaiveDate {
    today
        .checked_sub_days(Days::new(u64::from(days.max(1) - 1)))
        .unwrap_or(today)
}

/// The daily series of the `days` days ending with `today` (one entry a day, oldest first): past
/// days from the rollups, today live.
pub async fn trend_series(
    tx: &mut PgConnection,
    filter: &TrendFilter,
    days: u32,
    today: NaiveDate,
) -> Result<Vec<TrendDay>, sqlx::Error> {
    let start = range_start(days, today);
    let (today_start, today_end) = day_bounds(today);
    let scores: Vec<ScoreDay> = sqlx::query_as(concat!(
        "WITH live AS (",
        score_rows!(),
        "), days AS (
             SELECT day, repository_id, evaluations, passed, failed, average_score, min_score
             FROM trend_score_days WHERE day >= $3 AND day < $4
             UNION ALL
             SELECT $4::date, repository_id, evaluations, passed, failed, average_score, min_score
             FROM live
         )
         SELECT day, sum(evaluations)::bigint AS evaluations, sum(passed)::bigint AS passed,
                sum(failed)::bigint AS failed,
                round((sum(average_score * evaluations) / nullif(sum(evaluations), 0))::numeric, 2)
                    ::float8 AS average_score,
                min(min_score) AS min_score
         FROM days
         WHERE $5::text IS NULL
            OR repository_id IN (SELECT id FROM repositories WHERE full_name = $5)
         GROUP BY day"
    ))
    .bind(today_start)
    .bind(today_end)
    .bind(start)
    .bind(today)
    .bind(filter.repository.as_deref())
    .fetch_all(&mut *tx)
    .await?;
    let tiers: Vec<TierDay> = sqlx::query_as(concat!(
        rule_days!(),
        "SELECT day,
                coalesce(sum(found) FILTER (WHERE tier = 'BLOCK'), 0)::bigint AS block_found,
                coalesce(sum(found) FILTER (WHERE tier = 'OVERRIDE'), 0)::bigint
                    AS override_found,
                coalesce(sum(found) FILTER (WHERE tier = 'WARNING'), 0)::bigint AS warning_found,
                coalesce(sum(new), 0)::bigint AS new_found
         FROM filtered GROUP BY day"
    ))
    .bind(today_start)
    .bind(today_end)
    .bind(start)
    .bind(today)
    .bind(filter.repository.as_deref())
    .bind(filter.rule.as_deref())
    .fetch_all(&mut *tx)
    .await?;
    Ok(assemble(start, today, &scores, &tiers))
}

/// Violations per rule over the `days` days ending with `today`, most first.
pub async fn violations_by_rule(
    tx: &mut PgConnection,
    filter: &TrendFilter,
    days: u32,
    today: NaiveDate,
) -> Result<Vec<RuleCount>, sqlx::Error> {
    let (today_start, today_end) = day_bounds(today);
    sqlx::query_as(concat!(
        rule_days!(),
        "SELECT rule_id, tier, sum(found)::bigint AS violations, sum(new)::bigint AS new_violations
         FROM filtered GROUP BY rule_id, tier ORDER BY violations DESC, rule_id, tier"
    ))
    .bind(today_start)
    .bind(today_end)
    .bind(range_start(days, today))
    .bind(today)
    .bind(filter.repository.as_deref())
    .bind(filter.rule.as_deref())
    .fetch_all(tx)
    .await
}

/// How many days a rule's history covers.
pub const RULE_HISTORY_DAYS: u32 = 90;

/// One day of a rule's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleDay {
    pub day: NaiveDate,
    /// Violations of the rule found that day.
    pub violations: i64,
    pub new_violations: i64,
}

/// A rule's violations per day over the `RULE_HISTORY_DAYS` days ending with `today`.
pub async fn rule_history(
    tx: &mut PgConnection,
    rule_id: &str,
    today: NaiveDate,
) -> Result<Vec<RuleDay>, sqlx::Error> {
    let filter = TrendFilter {
        repository: None,
        rule: Some(rule_id.to_owned()),
    };
    let series = trend_series(tx, &filter, RULE_HISTORY_DAYS, today).await?;
    Ok(series
        .into_iter()
        .map(|day| RuleDay {
            day: day.day,
            violations: day.block + day.r#override + day.warning,
            new_violations: day.new_violations,
        })
        .collect())
}

/// One entry per day from `start` to `end` (inclusive), filled from the rows of the days that
/// have any.
pub fn assemble(
    start: NaiveDate,
    end: NaiveDate,
    scores: &[ScoreDay],
    tiers: &[TierDay],
) -> Vec<TrendDay> {
    start
        .iter_days()
        .take_while(|day| *day <= end)
        .map(|day| {
            let mut entry = TrendDay::empty(day);
            if let Some(score) = scores.iter().find(|s| s.day == day) {
                entry.evaluations = score.evaluations;
                entry.passed = score.passed;
                entry.failed = score.failed;
                entry.average_score = score.average_score;
                entry.min_score = score.min_score;
            }
            if let Some(tier) = tiers.iter().find(|t| t.day == day) {
                entry.block = tier.block_found;
                entry.r#override = tier.override_found;
                entry.warning = tier.warning_found;
                entry.new_violations = tier.new_found;
            }
            entry
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_series_has_every_day_of_its_range_and_zeros_where_nothing_happened() {
        let scores = [ScoreDay {
            day: date("2026-03-02"),
            evaluations: 3,
            passed: 2,
            failed: 1,
            average_score: Some(81.33),
            min_score: Some(60),
        }];
        let tiers = [TierDay {
            day: date("2026-03-03"),
            block_found: 1,
            override_found: 2,
            warning_found: 3,
            new_found: 4,
        }];
        let start = range_start(3, date("2026-03-03"));
        assert_eq!(start, date("2026-03-01"));
        let series = assemble(start, date("2026-03-03"), &scores, &tiers);
        assert_eq!(series.len(), 3);
        assert_eq!(series[0], TrendDay::empty(date("2026-03-01")));
        assert_eq!(series[1].evaluations, 3);
        assert_eq!(series[1].average_score, Some(81.33));
        assert_eq!(series[1].block, 0);
        assert_eq!(
            (series[2].block, series[2].r#override, series[2].warning),
            (1, 2, 3)
        );
        assert_eq!(series[2].new_violations, 4);
        assert_eq!(series[2].average_score, None);
        let json = serde_json::to_value(&series[2]).unwrap();
        assert_eq!(json["override"], 2);
        assert_eq!(json["day"], "2026-03-03");
    }

    #[test]
    fn ranges_end_today_and_days_run_midnight_to_midnight_utc() {
        let today = date("2026-01-01");
        assert_eq!(range_start(1, today), today);
        assert_eq!(range_start(0, today), today);
        assert_eq!(range_start(7, today), date("2025-12-26"));
        let (start, end) = day_bounds(today);
        assert_eq!(start.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert_eq!(end.to_rfc3339(), "2026-01-02T00:00:00+00:00");
    }
}
