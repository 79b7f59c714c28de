//! The write budget: content-creating requests (POST, PATCH, PUT, DELETE) of one installation stay
//! under GitHub's secondary rate limits across every Tollgate process, because the budget lives in
//! PostgreSQL.
//!
//! Each installation has one row listing when its writes of the last hour were sent. Taking a
//! slot is one statement that appends the current time only while both the minute and the hour
//! window have room; concurrent writers of any process serialize on that row. A writer refused a
//! slot learns from the same answer how long until one frees up: a wait shorter than
//! [`MAX_WAIT_IN_PLACE`] is slept without holding a transaction or connection; a longer one is
//! returned as [`GithubError::BudgetSpent`], so the job gives its worker slot back and is
//! scheduled again for when the budget frees up (jobs of other installations, and emails, never
//! wait behind it). Within a process, writers of one installation queue
//! in arrival order, so only the head of the queue asks the database.

use super::GithubError;
use crate::store;
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::time::Duration;

/// How many content-creating requests one installation may send in any minute and in any hour.
/// GitHub documents 80 and 500; the defaults keep a small margin for the time between taking a
/// slot and GitHub receiving the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub per_minute: u32,
    pub per_hour: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            per_minute: 75,
            per_hour: 480,
        }
    }
}

impl Pacing {
    pub(crate) fn validate(self) -> Result<Self, GithubError> {
        if self.per_minute == 0 || self.per_hour < self.per_minute {
            return Err(GithubError::Config {
                message: format!(
                    "pacing needs at least 1 write a minute and an hourly limit no lower than the minute's, got {} a minute and {} an hour",
                    self.per_minute, self.per_hour
                ),
            });
        }
        Ok(self)
    }
}

/// The shared budget: the limits and the database that keeps the count.
#[derive(Debug, Clone)]
pub struct WriteBudget {
    pool: PgPool,
    pacing: Pacing,
}

/// Never poll the database faster than this while waiting (a window computed to free up "now"
/// must not turn into a busy loop).
const MIN_WAIT: Duration = Duration::from_millis(20);
/// A wait up to this long is slept where the writer stands; a longer one gives the job's worker
/// slot back.
pub const MAX_WAIT_IN_PLACE: Duration = Duration::from_millis(500);

impl WriteBudget {
    pub fn new(pool: PgPool, pacing: Pacing) -> Result<Self, GithubError> {
        Ok(Self {
            pool,
            pacing: pacing.validate()?,
        })
    }

    /// Takes a slot for one more write of `installation`, waiting only briefly: a budget spent
    /// for longer is [`GithubError::BudgetSpent`] with the wait.
    pub async fn acquire(&self, installation: u64) -> Result<(), GithubError> {
        let installation = i64::try_from(installation).map_err(|_| GithubError::Config {
            message: format!("installation id {installation} out of range"),
        })?;
        loop {
            let slot = store::take_write_slot(
                &self.pool,
                installation,
                self.pacing.per_minute,
                self.pacing.per_hour,
            )
            .await
            .map_err(|error| GithubError::WriteBudget {
                message: error.to_string(),
            })?;
            if slot.granted {
                return Ok(());
            }
            let wait = wait_for_slot(&slot.sent_at, slot.now, self.pacing).max(MIN_WAIT);
            if wait > MAX_WAIT_IN_PLACE {
                return Err(GithubError::BudgetSpent { wait });
            }
            tracing::debug!(
                installation,
                wait_ms = wait.as_millis() as u64,
                "GitHub write budget spent: waiting"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

/// How long after `now` a write may be sent, given when the writes of the last hour were sent:
/// until enough of them have left the minute window and the hour window. Zero when there is room.
pub fn wait_for_slot(sent_at: &[DateTime<Utc>], now: DateTime<Utc>, pacing: Pacing) -> Duration {
    let window_wait = |window: chrono::Duration, limit: u32| -> Duration {
        let mut inside: Vec<DateTime<Utc>> = sent_at
            .iter()
            .copied()
            .filter(|t| *t > now - window)
            .collect();
        let limit = limit as usize;
        if inside.len() < limit {
            return Duration::ZERO;
        }
        inside.sort_unstable();
        // Room opens when the entry that leaves `limit - 1` behind it falls out of the window.
        let freeing = inside[inside.len() - limit] + window;
        (freeing - now).to_std().unwrap_or(Duration::ZERO)
    };
    window_wait(chrono::Duration::minutes(1), pacing.per_minute)
        .max(window_wait(chrono::Duration::hours(1), pacing.per_hour))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    const SMALL: Pacing = Pacing {
        per_minute: 3,
        per_hour: 5,
    };

    #[test]
    fn room_in_both_windows_means_no_wait() {
        assert_eq!(wait_for_slot(&[], at(0), SMALL), Duration::ZERO);
        assert_eq!(wait_for_slot(&[at(0), at(1)], at(2), SMALL), Duration::ZERO);
    }

    #[test]
    fn a_full_minute_waits_for_its_oldest_write_to_leave() {
        let sent = [at(10), at(20), at(30)];
        assert_eq!(wait_for_slot(&sent, at(40), SMALL), Duration::from_secs(30));
        // Order does not matter.
        let sent = [at(30), at(10), at(20)];
        assert_eq!(wait_for_slot(&sent, at(40), SMALL), Duration::from_secs(30));
        assert_eq!(wait_for_slot(&sent, at(70), SMALL), Duration::ZERO);
    }

    #[test]
    fn a_full_hour_waits_for_its_oldest_write_to_leave() {
        let sent = [at(0), at(600), at(1200), at(1800), at(3590)];
        assert_eq!(
            wait_for_slot(&sent, at(3595), SMALL),
            Duration::from_secs(5)
        );
        assert_eq!(wait_for_slot(&sent, at(3600), SMALL), Duration::ZERO);
    }

    #[test]
    fn the_longer_of_the_two_waits_wins() {
        // The minute frees up at 60 + 10 = 70 s, the hour only at 3600 s.
        let sent = [at(0), at(1), at(10), at(20), at(30)];
        assert_eq!(
            wait_for_slot(&sent, at(40), SMALL),
            Duration::from_secs(3560)
        );
    }

    #[test]
    fn over_full_windows_wait_for_enough_writes_to_leave() {
        // Limits lowered while writes were recorded: 5 in the minute, room needs 3 of them gone.
        let sent = [at(1), at(2), at(3), at(4), at(5)];
        let pacing = Pacing {
            per_minute: 3,
            per_hour: 100,
        };
        assert_eq!(wait_for_slot(&sent, at(5), pacing), Duration::from_secs(58));
    }

    #[test]
    fn limits_are_checked() {
        assert!(
            Pacing {
                per_minute: 0,
                per_hour: 10
            }
            .validate()
            .is_err()
        );
        assert!(
            Pacing {
                per_minute: 10,
                per_hour: 5
            }
            .validate()
            .is_err()
        );
        assert!(Pacing::default().validate().is_ok());
    }
}
