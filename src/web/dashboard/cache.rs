//! A short-lived, per-process cache of the dashboard's aggregate reads: the rules overview, the
//! trend charts and a rule's history and top lists. Each of them scans up to a year of history
//! (hundreds of milliseconds at a million violations, README "Benchmark"), where the lists page
//! through indexes and stay fast without help.
//!
//! An entry belongs to one installation, is read in that installation's tenant transaction, and
//! goes away
//! * when live updates (live.rs) report a change of the installation: a completed evaluation or
//!   an override request that changed is what changes these aggregates;
//! * all at once when the listener (re)connects or loses its connection, since notifications may
//!   have been missed meanwhile;
//! * after `TTL` in any case, for changes that notify nobody (retention, the nightly rollups, a
//!   new policy pack).

use super::api::RuleActivity;
use crate::store::dashboard::RuleOverviewRow;
use crate::store::trends::{RuleCount, TrendDay};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

pub const TTL: Duration = Duration::from_secs(300);
/// Keys carry filters from query strings: past this many entries, expired ones are dropped, and
/// if that is not enough, all of them.
const MAX_ENTRIES: usize = 10_000;

struct Entry<T> {
    created: Instant,
    /// Filled once; requests that arrive while it is being read wait for that read.
    value: Arc<OnceCell<Arc<T>>>,
}

impl<T> Entry<T> {
    fn new(now: Instant) -> Self {
        Self {
            created: now,
            value: Arc::new(OnceCell::new()),
        }
    }
}

/// Values of one kind, by installation and a key naming the filters they were read with.
pub struct ReadCache<T> {
    entries: Mutex<HashMap<(i64, String), Entry<T>>>,
}

impl<T> Default for ReadCache<T> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> ReadCache<T> {
    fn lock(&self) -> MutexGuard<'_, HashMap<(i64, String), Entry<T>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of `key` for `installation`, read by `load` when there is none yet (once,
    /// however many requests ask at the same time). `load` must read in that installation's
    /// tenant transaction. A failed read is not kept.
    pub async fn get_or_load<E, F, Fut>(
        &self,
        installation: i64,
        key: String,
        load: F,
    ) -> Result<Arc<T>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let cell = {
            let now = Instant::now();
            let mut entries = self.lock();
            if entries.len() >= MAX_ENTRIES {
                entries.retain(|_, entry| now.duration_since(entry.created) < TTL);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            let entry = entries
                .entry((installation, key))
                .or_insert_with(|| Entry::new(now));
            if now.duration_since(entry.created) >= TTL {
                *entry = Entry::new(now);
            }
            entry.value.clone()
        };
        let value = cell
            .get_or_try_init(|| async { load().await.map(Arc::new) })
            .await?;
        Ok(value.clone())
    }

    /// Forgets the installation's entries. A read already under way completes for the requests
    /// waiting on it, which asked before the change; later requests read again.
    pub fn invalidate(&self, installation: i64) {
        self.lock().retain(|(id, _), _| *id != installation);
    }

    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// A trend chart: its daily series and its violations per rule.
pub type Trends = (Vec<TrendDay>, Vec<RuleCount>);

/// The dashboard's cached reads.
#[derive(Default)]
pub struct Caches {
    /// By installation only.
    pub overview: ReadCache<Vec<RuleOverviewRow>>,
    /// By filter, range and day.
    pub trends: ReadCache<Trends>,
    /// By rule and day.
    pub rule_activity: ReadCache<RuleActivity>,
}

impl Caches {
    pub fn invalidate(&self, installation: i64) {
        self.overview.invalidate(installation);
        self.trends.invalidate(installation);
        self.rule_activity.invalidate(installation);
    }

    pub fn clear(&self) {
        self.overview.clear();
        self.trends.clear();
        self.rule_activity.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn read(cache: &ReadCache<usize>, installation: i64, reads: &AtomicUsize) -> usize {
        let value = cache
            .get_or_load(installation, "k".into(), || async {
                Ok::<_, ()>(reads.fetch_add(1, Ordering::SeqCst) + 1)
            })
            .await;
        *value.unwrap_or_default()
    }

    #[tokio::test]
    async fn values_are_kept_until_their_installation_changes() {
        let cache = ReadCache::default();
        let reads = AtomicUsize::new(0);
        assert_eq!(read(&cache, 1, &reads).await, 1);
        assert_eq!(read(&cache, 1, &reads).await, 1, "kept");
        assert_eq!(read(&cache, 2, &reads).await, 2, "per installation");
        cache.invalidate(1);
        assert_eq!(
            read(&cache, 1, &reads).await,
            3,
            "read again after a change"
        );
        assert_eq!(
            read(&cache, 2, &reads).await,
            2,
            "another installation's kept"
        );
        cache.clear();
        assert_eq!(read(&cache, 2, &reads).await, 4);
    }

    #[tokio::test]
    async fn failed_reads_are_not_kept() {
        let cache: ReadCache<usize> = ReadCache::default();
        let failed = cache.get_or_load(1, "k".into(), || async { Err("down") });
        assert_eq!(failed.await.err(), Some("down"));
        let value = cache.get_or_load(1, "k".into(), || async { Ok::<_, &str>(7) });
        assert_eq!(value.await.map(|v| *v), Ok(7));
    }

    #[tokio::test]
    async fn values_expire() {
        let cache = ReadCache::default();
        let reads = AtomicUsize::new(0);
        assert_eq!(read(&cache, 1, &reads).await, 1);
        for entry in cache.lock().values_mut() {
            entry.created = entry.created.checked_sub(TTL).unwrap();
        }
        assert_eq!(read(&cache, 1, &reads).await, 2);
    }
}
