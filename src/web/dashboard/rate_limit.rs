//! Requests per user: a token bucket of 100 that refills over a minute. Per process, like the
//! write pacing: several web processes each allow the full rate.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const REQUESTS_PER_MINUTE: u32 = 100;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    /// Takes one token at `now`, or says how long until one is there.
    fn take(&mut self, now: Instant, capacity: f64, per_second: f64) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    buckets: Mutex<HashMap<i64, Bucket>>,
}

impl RateLimiter {
    pub fn per_minute(requests: u32) -> Self {
        Self {
            capacity: f64::from(requests),
            per_second: f64::from(requests) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request of `user_id`; `Err` carries the whole seconds to wait (`Retry-After`).
    pub fn check(&self, user_id: i64) -> Result<(), u64> {
        self.check_at(user_id, Instant::now())
    }

    fn check_at(&self, user_id: i64, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // Full buckets carry no information; dropping them keeps the map small.
        if buckets.len() > 10_000 {
            let (capacity, per_second) = (self.capacity, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * per_second
                    < capacity
            });
        }
        let bucket = buckets.entry(user_id).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
        });
        bucket
            .take(now, self.capacity, self.per_second)
            .map_err(|wait| wait.as_secs_f64().ceil().max(1.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hundred_pass_then_the_next_waits_and_others_are_unaffected() {
        let limiter = RateLimiter::per_minute(100);
        let start = Instant::now();
        for _ in 0..100 {
            assert_eq!(limiter.check_at(1, start), Ok(()));
        }
        assert_eq!(limiter.check_at(1, start), Err(1));
        assert_eq!(limiter.check_at(2, start), Ok(()));
        // One token comes back every 0.6 s.
        assert_eq!(
            limiter.check_at(1, start + Duration::from_millis(700)),
            Ok(())
        );
        assert!(
            limiter
                .check_at(1, start + Duration::from_millis(700))
                .is_err()
        );
        for _ in 0..100 {
            assert_eq!(
                limiter.check_at(1, start + Duration::from_secs(120)),
                Ok(())
            );
        }
    }
}
