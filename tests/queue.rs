//! The PostgreSQL job queue on a real database: coalescing, per-key serialization, retries,
//! giving up, lease expiry and several workers.

mod support;

use serde_json::json;
use sqlx::PgPool;
use std::collections::HashSet;
use std::time::Duration;
use tollgate::jobs::{Enqueued, JobQueue, NewJob, enqueue_row};

async fn pool() -> PgPool {
    database().await.0
}

/// A migrated fresh database: a pool on it and its URL.
async fn database() -> (PgPool, String) {
    let url = support::test_app::fresh_database().await;
    let pool = tollgate::store::connect(&url).await.unwrap();
    tollgate::store::migrate(&pool).await.unwrap();
    (pool, url)
}

fn job(key: &str, max_attempts: i32) -> NewJob {
    NewJob {
        kind: "test",
        payload: json!({ "key": key }),
        installation_id: Some(1),
        dedup_key: key.to_owned(),
        max_attempts,
    }
}

async fn add(pool: &PgPool, job: &NewJob) -> Enqueued {
    let mut conn = pool.acquire().await.unwrap();
    enqueue_row(&mut conn, job).await.unwrap()
}

async fn queue(pool: &PgPool, worker: &str, lease: Duration) -> JobQueue {
    JobQueue::connect(pool.clone(), worker.to_owned(), lease)
        .await
        .unwrap()
}

async fn states(pool: &PgPool) -> Vec<(String, i32)> {
    sqlx::query_as("SELECT state, attempts FROM jobs ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn pending_jobs_with_one_key_coalesce() {
    let pool = pool().await;
    assert_eq!(add(&pool, &job("pr:1", 3)).await, Enqueued::New);
    assert_eq!(add(&pool, &job("pr:1", 3)).await, Enqueued::Coalesced);
    assert_eq!(add(&pool, &job("pr:2", 3)).await, Enqueued::New);
    assert_eq!(states(&pool).await.len(), 2);
}

#[tokio::test]
async fn jobs_with_one_key_never_run_at_once() {
    let pool = pool().await;
    let (a, b) = (
        queue(&pool, "a", Duration::from_secs(60)).await,
        queue(&pool, "b", Duration::from_secs(60)).await,
    );
    add(&pool, &job("pr:1", 3)).await;
    let running = a.claim().await.unwrap().expect("a job is ready");
    // A delivery arrives while the first job runs: it waits instead of running beside it.
    assert_eq!(add(&pool, &job("pr:1", 3)).await, Enqueued::New);
    assert!(b.claim().await.unwrap().is_none());
    a.complete(&running).await.unwrap();
    let next = b.claim().await.unwrap().expect("the waiting job runs next");
    assert_eq!(next.dedup_key, "pr:1");
}

#[tokio::test]
async fn a_retry_merges_into_a_newer_pending_job() {
    let pool = pool().await;
    let q = queue(&pool, "a", Duration::from_secs(60)).await;
    add(&pool, &job("pr:1", 3)).await;
    let first = q.claim().await.unwrap().unwrap();
    add(&pool, &job("pr:1", 3)).await;
    q.retry(&first, "GitHub 502", Duration::ZERO).await.unwrap();
    assert_eq!(
        states(&pool).await,
        [("done".to_owned(), 1), ("pending".to_owned(), 0)]
    );
}

#[tokio::test]
async fn failures_back_off_and_give_up_with_the_reason() {
    let pool = pool().await;
    let q = queue(&pool, "a", Duration::from_secs(60)).await;
    add(&pool, &job("pr:1", 2)).await;
    let attempt = q.claim().await.unwrap().unwrap();
    q.retry(&attempt, "GitHub 502", Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(q.claim().await.unwrap().is_none(), "not before its backoff");
    sqlx::query("UPDATE jobs SET run_at = now()")
        .execute(&pool)
        .await
        .unwrap();
    let last = q.claim().await.unwrap().unwrap();
    assert_eq!(last.attempt, 2);
    q.retry(&last, "GitHub 502 again", Duration::ZERO)
        .await
        .unwrap();
    let (state, error): (String, String) = sqlx::query_as("SELECT state, last_error FROM jobs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(state, "failed");
    assert!(
        error.contains("gave up after 2 attempts") && error.contains("502 again"),
        "{error}"
    );
}

#[tokio::test]
async fn a_job_whose_worker_stopped_is_taken_over_after_its_lease() {
    let pool = pool().await;
    let stopped = queue(&pool, "stopped", Duration::from_millis(200)).await;
    let survivor = queue(&pool, "survivor", Duration::from_secs(60)).await;
    add(&pool, &job("pr:1", 3)).await;
    let lost = stopped.claim().await.unwrap().unwrap();
    assert!(
        survivor.claim().await.unwrap().is_none(),
        "the lease still holds"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let taken = survivor.claim().await.unwrap().expect("taken over");
    assert_eq!((taken.id, taken.attempt), (lost.id, 2));
}

#[tokio::test]
async fn a_job_whose_worker_process_died_is_taken_over_long_before_its_lease() {
    let (pool, url) = database().await;
    // The dead worker is a process of its own: its own pool, so its own PostgreSQL sessions.
    let lease = Duration::from_secs(120);
    let process = tollgate::store::connect(&url).await.unwrap();
    let dead = JobQueue::connect(process.clone(), "dead".to_owned(), lease)
        .await
        .unwrap();
    let survivor = queue(&pool, "survivor", lease).await;
    add(&pool, &job("pr:1", 3)).await;
    let lost = dead.claim().await.unwrap().unwrap();
    assert!(
        survivor.claim().await.unwrap().is_none(),
        "a live worker keeps its job"
    );

    // `kill -9`: the process's connections close without a word.
    drop(dead);
    process.close().await;
    let taken = wait_for_claim(&survivor).await;
    assert_eq!((taken.id, taken.attempt), (lost.id, 2));
    let late = JobQueue::connect(pool.clone(), "late".to_owned(), lease)
        .await
        .unwrap();
    assert!(
        late.claim().await.unwrap().is_none(),
        "the job runs once, on the survivor"
    );
}

/// Claims until a job comes, for at most a small part of the lease (the job must not wait for
/// its lease to run out).
async fn wait_for_claim(worker: &JobQueue) -> tollgate::jobs::ClaimedJob {
    for _ in 0..200 {
        if let Some(job) = worker.claim().await.unwrap() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the job was not taken over before its lease");
}

#[tokio::test]
async fn several_workers_split_the_work_without_running_a_job_twice() {
    let pool = pool().await;
    for n in 0..60 {
        add(&pool, &job(&format!("pr:{n}"), 3)).await;
    }
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let q = queue(&pool, &format!("w{w}"), Duration::from_secs(60)).await;
        workers.spawn(async move {
            let mut ran = Vec::new();
            while let Some(job) = q.claim().await.unwrap() {
                ran.push(job.id);
                q.complete(&job).await.unwrap();
            }
            ran
        });
    }
    let ran: Vec<i64> = workers.join_all().await.into_iter().flatten().collect();
    let unique: HashSet<_> = ran.iter().collect();
    assert_eq!((ran.len(), unique.len()), (60, 60));
}

/// Whether a wake-up notification arrives within half a second.
async fn woken(listener: &mut sqlx::postgres::PgListener) -> bool {
    tokio::time::timeout(Duration::from_millis(500), listener.recv())
        .await
        .is_ok()
}

/// Idle workers are woken when a job becomes ready, and only then: a delivery merged into a job
/// that is already waiting to run needs no wake-up (and skips PostgreSQL's notify lock).
#[tokio::test]
async fn enqueue_wakes_workers_only_when_a_job_becomes_ready() {
    let pool = pool().await;
    let worker = queue(&pool, "w", Duration::from_secs(60)).await;
    let mut listener = worker.listener().await.unwrap();

    add(&pool, &job("pr:1", 3)).await;
    assert!(woken(&mut listener).await, "a new job wakes the workers");
    add(&pool, &job("pr:1", 3)).await;
    assert!(
        !woken(&mut listener).await,
        "merging into a ready job does not"
    );

    // A job backing off after a failure is pulled forward by a new delivery: that wakes them.
    let claimed = worker.claim().await.unwrap().expect("the job is ready");
    worker
        .retry(&claimed, "GitHub answered 502", Duration::from_secs(600))
        .await
        .unwrap();
    add(&pool, &job("pr:1", 3)).await;
    assert!(
        woken(&mut listener).await,
        "a job pulled forward wakes them"
    );
}

#[tokio::test]
async fn alerts_come_first_then_the_installation_with_the_fewest_jobs_running() {
    let pool = pool().await;
    let worker = queue(&pool, "w", Duration::from_secs(60)).await;
    // A burst on installation 1, two of its jobs already running.
    for n in 0..5 {
        add(&pool, &job(&format!("a:{n}"), 3)).await;
    }
    worker.claim().await.unwrap().unwrap();
    worker.claim().await.unwrap().unwrap();
    // Then a job of installation 2 and an email, queued after the whole burst.
    add(
        &pool,
        &NewJob {
            installation_id: Some(2),
            ..job("b:0", 3)
        },
    )
    .await;
    add(
        &pool,
        &NewJob {
            kind: "send_email",
            ..job("email:0", 3)
        },
    )
    .await;

    let order: Vec<String> = {
        let mut order = Vec::new();
        while let Some(next) = worker.claim().await.unwrap() {
            order.push(next.dedup_key);
        }
        order
    };
    assert_eq!(order, ["email:0", "b:0", "a:2", "a:3", "a:4"]);
}

#[tokio::test]
async fn a_job_waiting_for_the_write_budget_gives_its_slot_back_without_spending_an_attempt() {
    let pool = pool().await;
    let pacing = tollgate::github::Pacing {
        per_minute: 1,
        per_hour: 10,
    };
    let budget = tollgate::github::WriteBudget::new(pool.clone(), pacing).unwrap();
    budget.acquire(1).await.unwrap();
    // The next write of installation 1 frees up in a minute: the writer is told so at once
    // instead of holding its worker slot for the minute (the guard only stops a hang).
    let spent = tokio::time::timeout(Duration::from_secs(30), budget.acquire(1))
        .await
        .expect("the writer does not wait in place");
    let Err(tollgate::github::GithubError::BudgetSpent { wait }) = spent else {
        panic!("budget reported spent, got {spent:?}");
    };
    assert!(wait > Duration::from_secs(1), "{wait:?}");
    budget
        .acquire(2)
        .await
        .expect("other installations write on");

    let worker = queue(&pool, "w", Duration::from_secs(60)).await;
    add(&pool, &job("pr:1", 1)).await;
    let waiting = worker.claim().await.unwrap().unwrap();
    worker.defer(&waiting, wait).await.unwrap();
    assert_eq!(states(&pool).await, [("pending".to_owned(), 0)]);
    assert!(
        worker.claim().await.unwrap().is_none(),
        "it comes back when the budget frees up"
    );
}
