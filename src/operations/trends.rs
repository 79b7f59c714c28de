//! The daily trend rollup: once a day, across all replicas, each finished day not yet rolled up
//! (yesterday, and a few before it in case no worker ran then) is summarised into the rollup
//! tables, claimed per day so that any number of replicas roll each day up once.

use crate::store::{self, DailyJob, trends};
use chrono::{Days, NaiveDate};
use sqlx::PgPool;

/// How far back a run looks for days not yet rolled up. Older days are left as they are: their
/// evaluations may already be gone.
pub const CATCH_UP_DAYS: u64 = 7;

/// The days a run on `today` rolls up if nobody has, oldest first.
pub fn days_to_roll_up(today: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    (1..=CATCH_UP_DAYS)
        .rev()
        .filter_map(move |back| today.checked_sub_days(Days::new(back)))
}

/// Rolls up every day of `days_to_roll_up(today)` this process is first to claim; returns them.
pub async fn run_daily(
    pool: &PgPool,
    today: NaiveDate,
    claimed_by: &str,
) -> Result<Vec<NaiveDate>, sqlx::Error> {
    let mut rolled = Vec::new();
    for day in days_to_roll_up(today) {
        let mut conn = pool.acquire().await?;
        if !store::claim_daily_run(&mut conn, DailyJob::Trends, day, claimed_by).await? {
            continue;
        }
        drop(conn);
        let counts = trends::roll_up_day(pool, day).await?;
        let summary = serde_json::to_value(counts).unwrap_or_default();
        store::finish_daily_run(pool, DailyJob::Trends, day, &summary).await?;
        tracing::info!(%day, counts = %summary, "trend rollup finished");
        rolled.push(day);
    }
    Ok(rolled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_covers_the_week_before_today_oldest_first() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let days: Vec<NaiveDate> = days_to_roll_up(today).collect();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0], NaiveDate::from_ymd_opt(2026, 2, 22).unwrap());
        assert_eq!(days[6], NaiveDate::from_ymd_opt(2026, 2, 28).unwrap());
    }
}
