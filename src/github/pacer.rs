//! Pacing of content-creating requests, so that one installation never trips GitHub's secondary
//! rate limit (about 80 content-creating requests a minute).

use super::GithubError;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How fast one installation may write. A token bucket: up to `burst` writes at once, then
/// `per_minute` a minute. Any 60-second window therefore holds at most `burst + per_minute`
/// writes; the defaults (20 + 60) stay at GitHub's 80.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    pub burst: u32,
    pub per_minute: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            burst: 20,
            per_minute: 60,
        }
    }
}

impl Pacing {
    pub(crate) fn validate(self) -> Result<Self, GithubError> {
        if self.burst == 0 || self.per_minute == 0 {
            return Err(GithubError::Config {
                message: format!(
                    "pacing needs a burst and a rate of at least 1, got burst {} and {} per minute",
                    self.burst, self.per_minute
                ),
            });
        }
        Ok(self)
    }
}

/// A token bucket that writers await before sending. Waiters are served in arrival order: the
/// one at the head holds the lock while it sleeps, and tokio's mutex is first-in, first-out.
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl Pacer {
    /// A full bucket.
    pub fn new(pacing: Pacing) -> Self {
        Self {
            pacing,
            bucket: Mutex::new(Bucket {
                tokens: f64::from(pacing.burst),
                refilled_at: Instant::now(),
            }),
        }
    }

    /// Waits until one more write is allowed, and takes it.
    pub async fn acquire(&self) {
        let mut bucket = self.bucket.lock().await;
        self.refill(&mut bucket);
        if bucket.tokens < 1.0 {
            let missing = 1.0 - bucket.tokens;
            let wait = Duration::from_secs_f64(missing * 60.0 / f64::from(self.pacing.per_minute));
            tokio::time::sleep(wait).await;
            self.refill(&mut bucket);
            // Rounding in the float arithmetic must not leave the next waiter a hair short.
            bucket.tokens = bucket.tokens.max(1.0);
        }
        bucket.tokens -= 1.0;
    }

    fn refill(&self, bucket: &mut Bucket) {
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled_at).as_secs_f64();
        let added = elapsed * f64::from(self.pacing.per_minute) / 60.0;
        bucket.tokens = (bucket.tokens + added).min(f64::from(self.pacing.burst));
        bucket.refilled_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn burst_passes_at_once_then_one_per_second() {
        let pacer = Pacer::new(Pacing::default());
        let start = Instant::now();
        for _ in 0..20 {
            pacer.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_sixty_second_window_exceeds_eighty_writes() {
        let pacer = Arc::new(Pacer::new(Pacing::default()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..300 {
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                pacer.acquire().await;
                start.elapsed()
            }));
        }
        let mut times = Vec::new();
        for task in tasks {
            times.push(task.await.unwrap());
        }
        times.sort();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..]
                .iter()
                .take_while(|u| **u < *t + Duration::from_secs(60))
                .count();
            assert!(
                in_window <= 80,
                "{in_window} writes in the minute after {t:?}"
            );
        }
        // 300 writes: 20 at once, then 280 at one a second.
        assert_eq!(*times.last().unwrap(), Duration::from_secs(280));
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_are_served_in_arrival_order() {
        let pacer = Arc::new(Pacer::new(Pacing {
            burst: 1,
            per_minute: 60,
        }));
        pacer.acquire().await;
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (pacer, order) = (pacer.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                pacer.acquire().await;
                order.lock().unwrap().push(i);
            }));
            // Let each task reach the queue before the next one is spawned.
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_while_idle_but_not_beyond_the_burst() {
        let pacer = Pacer::new(Pacing {
            burst: 3,
            per_minute: 60,
        });
        for _ in 0..3 {
            pacer.acquire().await;
        }
        tokio::time::sleep(Duration::from_secs(600)).await;
        let start = Instant::now();
        for _ in 0..3 {
            pacer.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(1));
    }

    #[test]
    fn zero_rates_are_refused() {
        assert!(
            Pacing {
                burst: 0,
                per_minute: 60
            }
            .validate()
            .is_err()
        );
        assert!(
            Pacing {
                burst: 1,
                per_minute: 0
            }
            .validate()
            .is_err()
        );
        assert!(Pacing::default().validate().is_ok());
    }
}
