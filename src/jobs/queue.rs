//! A small PostgreSQL job queue: jobs are claimed with `FOR UPDATE SKIP LOCKED` by a worker
//! process whose PostgreSQL session is alive (see [`JobQueue::connect`]) and under a lease,
//! retried with exponential backoff, and coalesced by a dedup key (one pending and one running job
//! per key). Jobs hold ids and read fresh state when they run, so two jobs with one key do the
//! same work and merging them loses nothing.

use serde_json::Value;
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{PgConnection, Row};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The channel `enqueue` notifies so idle workers wake at once instead of polling.
pub(crate) const CHANNEL: &str = "tollgate_jobs";

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: &'static str,
    pub payload: Value,
    pub installation_id: Option<i64>,
    pub dedup_key: String,
    pub max_attempts: i32,
}

#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub id: i64,
    pub kind: String,
    pub payload: Value,
    pub installation_id: Option<i64>,
    pub dedup_key: String,
    /// 1 on the first run.
    pub attempt: i32,
    pub max_attempts: i32,
}

/// What became of an enqueue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    New,
    /// A pending job with the same key existed; it now carries this job's payload.
    Coalesced,
}

/// Adds a job inside the caller's transaction: it becomes visible only if that transaction
/// commits. Idle workers are woken (a notification delivered at commit) only when the job became
/// ready for them: a new pending job, or a pending job that was waiting out a retry's backoff. A
/// job merged into a pending job that was already ready needs no wake-up, since the workers
/// already know of it or are busy and claim again when done. Skipping the notification matters
/// under load: PostgreSQL serializes the commits of all transactions that notified, server-wide.
pub async fn enqueue_row(conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, sqlx::Error> {
    // One round trip. `previous` reads the pending job as it was before the upsert (all parts of
    // a statement see one snapshot). `woken` is counted so that PostgreSQL evaluates it: a plain
    // `WITH` query nobody reads is skipped.
    let row = sqlx::query(
        "WITH previous AS (
             SELECT run_at FROM jobs WHERE dedup_key = $4 AND state = 'pending'
         ), upserted AS (
             INSERT INTO jobs (kind, payload, installation_id, dedup_key, max_attempts)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (dedup_key) WHERE state = 'pending'
             DO UPDATE SET payload = EXCLUDED.payload, run_at = LEAST(jobs.run_at, now())
             RETURNING (xmax = 0) AS inserted
         ), woken AS (
             SELECT pg_notify($6, '') FROM upserted
             WHERE inserted OR EXISTS (SELECT 1 FROM previous WHERE run_at > now())
         )
         SELECT inserted, (SELECT count(*) FROM woken) AS notifications FROM upserted",
    )
    .bind(job.kind)
    .bind(&job.payload)
    .bind(job.installation_id)
    .bind(&job.dedup_key)
    .bind(job.max_attempts)
    .bind(CHANNEL)
    .fetch_one(&mut *conn)
    .await?;
    Ok(if row.get::<bool, _>("inserted") {
        Enqueued::New
    } else {
        Enqueued::Coalesced
    })
}

/// Adds a job that becomes ready only after `delay` (a scheduled escalation, say).
pub async fn enqueue_row_delayed(
    conn: &mut PgConnection,
    job: &NewJob,
    delay: Duration,
) -> Result<Enqueued, sqlx::Error> {
    let enqueued = enqueue_row(conn, job).await?;
    sqlx::query(
        "UPDATE jobs SET run_at = now() + make_interval(secs => $2)
         WHERE dedup_key = $1 AND state = 'pending'",
    )
    .bind(&job.dedup_key)
    .bind(delay.as_secs_f64())
    .execute(&mut *conn)
    .await?;
    Ok(enqueued)
}

/// The advisory-lock class of worker sessions (the key is the worker's own).
const WORKER_LOCK_CLASS: i32 = 7011;

/// A worker's handle on the queue.
#[derive(Clone)]
pub struct JobQueue {
    pool: PgPool,
    worker_id: String,
    /// The key of the advisory lock this worker's session holds; jobs it claims carry it.
    worker_key: i32,
    /// The connection that holds the lock, kept open (out of the pool) for the worker's life:
    /// when the process dies, PostgreSQL ends this session and its jobs are free at once.
    _session: Arc<Mutex<PgConnection>>,
    lease: Duration,
}

impl JobQueue {
    /// Opens the worker's session: a connection of its own holding an advisory lock under a
    /// key no live worker holds. The lease stays as a fallback for a session PostgreSQL has not
    /// yet noticed is gone (a network partition rather than a dead process).
    pub async fn connect(
        pool: PgPool,
        worker_id: String,
        lease: Duration,
    ) -> Result<Self, sqlx::Error> {
        let mut session = pool.acquire().await?.detach();
        let worker_key = loop {
            let [a, b, c, d, ..] = *uuid::Uuid::new_v4().as_bytes();
            let key = i32::from_le_bytes([a, b, c, d & 0x7f]);
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
                .bind(WORKER_LOCK_CLASS)
                .bind(key)
                .fetch_one(&mut session)
                .await?;
            if locked {
                break key;
            }
        };
        Ok(Self {
            pool,
            worker_id,
            worker_key,
            _session: Arc::new(Mutex::new(session)),
            lease,
        })
    }

    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Listens for enqueue notifications; workers wait on it between polls.
    pub async fn listener(&self) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// Claims the next ready job, first returning jobs whose worker stopped (session gone or
    /// lease expired) to the queue.
    pub async fn claim(&self) -> Result<Option<ClaimedJob>, sqlx::Error> {
        self.recover_expired().await?;
        // Fair share: jobs that alert people go first, then the jobs of the installations with
        // the fewest jobs running, so a burst on one installation cannot hold every slot.
        let claimed = sqlx::query(
            "WITH busy AS (
                 SELECT installation_id, count(*) AS running FROM jobs
                 WHERE state = 'running' GROUP BY installation_id
             )
             UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_by = $1,
                    locked_until = now() + make_interval(secs => $2), worker_key = $3
             WHERE id = (
                 SELECT j.id FROM jobs j LEFT JOIN busy b ON b.installation_id = j.installation_id
                 WHERE j.state = 'pending' AND j.run_at <= now()
                   AND NOT EXISTS (SELECT 1 FROM jobs r
                                   WHERE r.dedup_key = j.dedup_key AND r.state = 'running')
                 ORDER BY j.kind = ANY($4) DESC, coalesce(b.running, 0), j.run_at, j.id
                 FOR UPDATE OF j SKIP LOCKED
                 LIMIT 1)
             RETURNING id, kind, payload, installation_id, dedup_key, attempts, max_attempts",
        )
        .bind(&self.worker_id)
        .bind(self.lease.as_secs_f64())
        .bind(self.worker_key)
        .bind(super::registry::urgent_kinds())
        .fetch_optional(&self.pool)
        .await;
        let row = match claimed {
            Ok(row) => row,
            // Another worker started a job with the same key between our check and our update.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => None,
            Err(e) => return Err(e),
        };
        Ok(row.map(|row| ClaimedJob {
            id: row.get("id"),
            kind: row.get("kind"),
            payload: row.get("payload"),
            installation_id: row.get("installation_id"),
            dedup_key: row.get("dedup_key"),
            attempt: row.get("attempts"),
            max_attempts: row.get("max_attempts"),
        }))
    }

    /// Keeps a running job's lease alive.
    pub async fn heartbeat(&self, job: &ClaimedJob) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
             WHERE id = $1 AND locked_by = $2 AND state = 'running'",
        )
        .bind(job.id)
        .bind(&self.worker_id)
        .bind(self.lease.as_secs_f64())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a finished attempt. An attempt that was taken over meanwhile (its worker's
    /// session was lost) records nothing: the row belongs to the attempt running now.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET state = 'done', finished_at = now(), locked_by = NULL,
                    locked_until = NULL, worker_key = NULL
             WHERE id = $1 AND state = 'running' AND attempts = $2",
        )
        .bind(job.id)
        .bind(job.attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on a job for good, recording why.
    pub async fn fail(&self, job: &ClaimedJob, error: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET state = 'failed', last_error = $2, finished_at = now(),
                    locked_by = NULL, locked_until = NULL, worker_key = NULL
             WHERE id = $1 AND state = 'running' AND attempts = $3",
        )
        .bind(job.id)
        .bind(error)
        .bind(job.attempt)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Schedules another attempt after `delay`, or fails the job once its attempts are spent.
    /// If a newer job with the same key is already pending, this one merges into it.
    pub async fn retry(
        &self,
        job: &ClaimedJob,
        error: &str,
        delay: Duration,
    ) -> Result<(), sqlx::Error> {
        if job.attempt >= job.max_attempts {
            let reason = format!("gave up after {} attempts: {error}", job.attempt);
            return self.fail(job, &reason).await;
        }
        self.reschedule(job, error, delay, 0).await
    }

    /// Puts a job that waits for GitHub's write budget back in the queue for when the budget
    /// frees up, giving its worker slot to other jobs. The attempt is refunded: waiting for the
    /// budget is not a failure.
    pub async fn defer(&self, job: &ClaimedJob, delay: Duration) -> Result<(), sqlx::Error> {
        self.reschedule(job, "waiting for the GitHub write budget", delay, 1)
            .await
    }

    async fn reschedule(
        &self,
        job: &ClaimedJob,
        error: &str,
        delay: Duration,
        refund: i32,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET
                 state = CASE WHEN EXISTS (SELECT 1 FROM jobs p
                                           WHERE p.dedup_key = jobs.dedup_key
                                             AND p.state = 'pending')
                              THEN 'done' ELSE 'pending' END,
                 finished_at = CASE WHEN EXISTS (SELECT 1 FROM jobs p
                                                 WHERE p.dedup_key = jobs.dedup_key
                                                   AND p.state = 'pending')
                                    THEN now() END,
                 run_at = now() + make_interval(secs => $3),
                 attempts = attempts - $5,
                 last_error = $2, locked_by = NULL, locked_until = NULL, worker_key = NULL
             WHERE id = $1 AND state = 'running' AND attempts = $4",
        )
        .bind(job.id)
        .bind(error)
        .bind(delay.as_secs_f64())
        .bind(job.attempt)
        .bind(refund)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Jobs whose worker session is gone, or whose lease ran out, belonged to a worker that
    /// stopped mid-job: run them again (or merge them into a pending job with the same key).
    /// `pg_locks` shows every session's advisory locks to every role.
    async fn recover_expired(&self) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE jobs SET
                 state = CASE
                     WHEN attempts >= max_attempts THEN 'failed'
                     WHEN EXISTS (SELECT 1 FROM jobs p
                                  WHERE p.dedup_key = jobs.dedup_key AND p.state = 'pending')
                         THEN 'done'
                     ELSE 'pending' END,
                 last_error = 'the worker stopped before finishing',
                 run_at = now(), locked_by = NULL, locked_until = NULL, worker_key = NULL
             WHERE id IN (SELECT j.id FROM jobs j
                          WHERE j.state = 'running'
                            AND (j.locked_until < now()
                                 OR (j.worker_key IS NOT NULL AND NOT EXISTS (
                                     SELECT 1 FROM pg_locks l
                                     WHERE l.locktype = 'advisory' AND l.granted
                                       AND l.classid = $1::int4::oid AND l.objsubid = 2
                                       AND l.objid = j.worker_key::oid)))
                          FOR UPDATE SKIP LOCKED)",
        )
        .bind(WORKER_LOCK_CLASS)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Exponential backoff: 1 s, 2 s, 4 s … capped at 10 minutes, never shorter than what the
/// remote asked for (`Retry-After`, rate-limit reset).
pub fn backoff(attempt: i32, requested: Option<Duration>) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(10);
    let computed = Duration::from_secs(1u64 << exponent).min(Duration::from_secs(600));
    requested.map_or(computed, |asked| asked.max(computed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff(1, None), Duration::from_secs(1));
        assert_eq!(backoff(2, None), Duration::from_secs(2));
        assert_eq!(backoff(5, None), Duration::from_secs(16));
        assert_eq!(backoff(40, None), Duration::from_secs(600));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(30))),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff(3, Some(Duration::from_millis(10))),
            Duration::from_secs(4)
        );
    }
}
