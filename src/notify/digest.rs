//! When digests are due (pure). A Tier 2 digest goes out every day that is not quiet at
//! `tier2.send_at`, and covers the time since the previous one (so Monday's covers the weekend);
//! a Tier 3 digest goes out on `tier3.day` at `tier3.send_at` and covers the week before. Times
//! are the installation's local times; a digest is sent only outside quiet hours.

use crate::config::AlertSettings;
use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The two digest kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestTier {
    /// Tier 2: OVERRIDE-tier violations and overrides granted.
    Daily,
    /// Tier 3: WARNING-tier summary.
    Weekly,
}

impl DigestTier {
    /// The policy tier the digest reports, as stored.
    pub fn tier_name(self) -> &'static str {
        match self {
            Self::Daily => "OVERRIDE",
            Self::Weekly => "WARNING",
        }
    }

    pub fn from_tier_name(name: &str) -> Option<Self> {
        match name {
            "OVERRIDE" => Some(Self::Daily),
            "WARNING" => Some(Self::Weekly),
            _ => None,
        }
    }
}

/// The time a digest reports on: `[start, end)`, `end` being its send time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Far enough back to find the previous send time of either tier.
const LOOKBACK_DAYS: u64 = 15;

/// The latest period of `tier` whose send time has come by `now`, or `None` when `now` is in
/// quiet hours (the digest waits for them to end).
pub fn due_period(
    settings: &AlertSettings,
    tier: DigestTier,
    now: DateTime<Utc>,
) -> Option<Period> {
    let tz = settings.timezone;
    let local = now.with_timezone(&tz);
    let quiet = settings.quiet_hours;
    if quiet.contains_time(local.time()) || quiet.is_quiet_day(local.weekday()) {
        return None;
    }
    let mut sends = send_times(settings, tier, local.date_naive()).filter(|send| *send <= now);
    let end = sends.next()?;
    let start = sends.next()?;
    Some(Period { start, end })
}

/// Send times of `tier` on `today` and the days before it, newest first.
fn send_times(
    settings: &AlertSettings,
    tier: DigestTier,
    today: NaiveDate,
) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    (0..LOOKBACK_DAYS)
        .filter_map(move |back| today.checked_sub_days(Days::new(back)))
        .filter(move |day| match tier {
            DigestTier::Daily => !settings.quiet_hours.is_quiet_day(day.weekday()),
            DigestTier::Weekly => day.weekday() == settings.tier3.day,
        })
        .map(move |day| {
            let at = match tier {
                DigestTier::Daily => settings.tier2.send_at,
                DigestTier::Weekly => settings.tier3.send_at,
            };
            local_to_utc(settings.timezone, day, at)
        })
}

/// A local date and time in UTC; a time skipped by a daylight-saving change moves an hour on.
fn local_to_utc(tz: Tz, day: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    let naive = day.and_time(time);
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1)))
                .earliest()
        })
        .map_or_else(|| naive.and_utc(), |local| local.with_timezone(&Utc))
}

/// The start of the local day holding `instant` (for per-day caps).
pub fn local_day_start(tz: Tz, instant: DateTime<Utc>) -> DateTime<Utc> {
    local_to_utc(tz, instant.with_timezone(&tz).date_naive(), NaiveTime::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::InstallationConfig;

    fn settings(yaml: &str) -> AlertSettings {
        InstallationConfig::from_yaml(yaml).unwrap().alerts
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    // 2026-12-07 is a Monday.

    #[test]
    fn the_daily_digest_is_due_from_send_time_and_covers_the_day_before() {
        let s = settings("");
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 8, 59)),
            None
        );
        let due = due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 9, 0)).unwrap();
        assert_eq!(due.end, utc(2026, 12, 8, 9, 0));
        assert_eq!(due.start, utc(2026, 12, 7, 9, 0));
        // Later the same day it is still the same period (claimed once, by whoever is first).
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 15, 0)),
            Some(due)
        );
    }

    #[test]
    fn weekends_are_quiet_and_monday_covers_them() {
        let s = settings("");
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 5, 10, 0)),
            None
        );
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 6, 10, 0)),
            None
        );
        let monday = due_period(&s, DigestTier::Daily, utc(2026, 12, 7, 10, 0)).unwrap();
        assert_eq!(monday.start, utc(2026, 12, 4, 9, 0), "from Friday's send");
        assert_eq!(monday.end, utc(2026, 12, 7, 9, 0));
    }

    #[test]
    fn evenings_are_quiet() {
        let s = settings("");
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 18, 0)),
            None
        );
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 9, 3, 0)),
            None
        );
    }

    #[test]
    fn send_times_follow_the_installation_time_zone() {
        let s = settings("alerts: { timezone: America/New_York }");
        // 09:00 in New York in December is 14:00 UTC.
        assert_eq!(
            due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 13, 59)),
            None
        );
        let due = due_period(&s, DigestTier::Daily, utc(2026, 12, 8, 14, 0)).unwrap();
        assert_eq!(due.end, utc(2026, 12, 8, 14, 0));
    }

    #[test]
    fn the_weekly_digest_covers_the_week_before_its_day() {
        let s = settings("alerts: { tier3: { day: wednesday, send_at: '10:00' } }");
        assert_eq!(
            due_period(&s, DigestTier::Weekly, utc(2026, 12, 9, 9, 59))
                .unwrap()
                .end,
            utc(2026, 12, 2, 10, 0),
            "before Wednesday's send, last week's period is the latest"
        );
        let due = due_period(&s, DigestTier::Weekly, utc(2026, 12, 9, 10, 0)).unwrap();
        assert_eq!(due.end, utc(2026, 12, 9, 10, 0));
        assert_eq!(due.start, utc(2026, 12, 2, 10, 0));
    }

    #[test]
    fn a_skipped_local_time_moves_an_hour_on() {
        // 2026-03-29 02:30 does not exist in Berlin (clocks jump from 02:00 to 03:00).
        let day = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        let time = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        assert_eq!(
            local_to_utc(chrono_tz::Europe::Berlin, day, time),
            utc(2026, 3, 29, 1, 30)
        );
    }

    #[test]
    fn local_days_start_at_local_midnight() {
        assert_eq!(
            local_day_start(chrono_tz::Europe::Berlin, utc(2026, 12, 8, 10, 0)),
            utc(2026, 12, 7, 23, 0)
        );
    }
}
