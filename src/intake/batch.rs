//! Grouped intake commits: deliveries that arrive together are written by one statement, so one
//! commit and one WAL flush make them all durable, and each request is answered only after that
//! commit.
//!
//! Requests hand their delivery to a queue; a few writer tasks each take whatever is waiting (up
//! to [`MAX_BATCH`]) and write it. Nothing waits on a timer: under light load a batch holds one
//! delivery and costs one round trip, and under load the deliveries that arrive while the
//! writers are busy form the next batches. When a batch fails as a whole (one payload PostgreSQL
//! refuses, say), each of its deliveries is written alone, so one bad delivery fails only its
//! own request.

use crate::jobs::NewJob;
use crate::store::{self, DeliveryRecord, DeliveryStatus, DeliveryWithJobs};
use sqlx::PgPool;
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// The most deliveries one statement writes.
pub const MAX_BATCH: usize = 64;
/// Statements in flight at once. Each statement costs a round trip, a plan and a commit whatever
/// its size, so fewer writers make bigger, cheaper batches: one writer gave the most deliveries a
/// second in `scripts/bench-vs-probot`, two about 5 % fewer and four a fifth fewer. Two keep the
/// intake moving while one statement waits (on a job row another transaction holds, say).
const WRITERS: usize = 2;
/// Requests waiting for a writer before new ones wait for room.
const QUEUE: usize = 1024;

/// A delivery to record, owned so that it can wait in the queue.
#[derive(Debug, Clone)]
pub struct OwnedDelivery {
    pub delivery_id: String,
    pub event: String,
    pub action: Option<String>,
    pub installation_id: Option<i64>,
    pub status: DeliveryStatus,
    pub ignored_reason: Option<String>,
    pub payload_json: String,
}

impl OwnedDelivery {
    fn record(&self) -> DeliveryRecord<'_> {
        DeliveryRecord {
            delivery_id: &self.delivery_id,
            event: &self.event,
            action: self.action.as_deref(),
            installation_id: self.installation_id,
            status: self.status,
            ignored_reason: self.ignored_reason.as_deref(),
            payload_json: &self.payload_json,
        }
    }
}

/// What became of a delivery handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Stored now, with its jobs queued.
    New,
    /// This delivery id was stored before.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("the intake writer has stopped")]
    Stopped,
}

struct Submission {
    delivery: OwnedDelivery,
    jobs: Vec<NewJob>,
    answer: oneshot::Sender<Result<Written, WriteError>>,
}

/// The handle requests write through. Cheap to clone; the writers stop when every handle is
/// dropped.
#[derive(Clone)]
pub struct IntakeWriter {
    queue: mpsc::Sender<Submission>,
}

impl IntakeWriter {
    /// Starts the writer tasks on the current runtime.
    pub fn start(pool: PgPool) -> Self {
        let (queue, receiver) = mpsc::channel(QUEUE);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(write_batches(pool.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// Stores a delivery and queues its jobs; returns once that is committed.
    pub async fn write(
        &self,
        delivery: OwnedDelivery,
        jobs: Vec<NewJob>,
    ) -> Result<Written, WriteError> {
        let (answer, answered) = oneshot::channel();
        let submission = Submission {
            delivery,
            jobs,
            answer,
        };
        self.queue
            .send(submission)
            .await
            .map_err(|_| WriteError::Stopped)?;
        answered.await.map_err(|_| WriteError::Stopped)?
    }
}

async fn write_batches(pool: PgPool, receiver: Arc<Mutex<mpsc::Receiver<Submission>>>) {
    loop {
        let batch = {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            batch
        };
        write_batch(&pool, batch).await;
    }
}

async fn write_batch(pool: &PgPool, batch: Vec<Submission>) {
    // A delivery id twice in one batch (GitHub sending one delivery twice at once): the later
    // ones wait for the next statement, where they are duplicates.
    let mut seen = HashSet::new();
    let (batch, later): (Vec<Submission>, Vec<Submission>) = batch
        .into_iter()
        .partition(|s| seen.insert(s.delivery.delivery_id.clone()));
    let rows: Vec<DeliveryWithJobs<'_>> = batch
        .iter()
        .map(|s| DeliveryWithJobs {
            delivery: s.delivery.record(),
            jobs: &s.jobs,
        })
        .collect();
    match store::record_deliveries(pool, &rows).await {
        Ok(new) => {
            drop(rows);
            for (submission, new) in batch.into_iter().zip(new) {
                let written = if new {
                    Written::New
                } else {
                    Written::Duplicate
                };
                let _ = submission.answer.send(Ok(written));
            }
        }
        Err(error) => {
            drop(rows);
            if batch.len() == 1 {
                if let Some(submission) = batch.into_iter().next() {
                    let _ = submission.answer.send(Err(WriteError::Database(error)));
                }
            } else {
                tracing::warn!(%error, size = batch.len(), "batched intake write failed: writing one by one");
                for submission in batch {
                    write_alone(pool, submission).await;
                }
            }
        }
    }
    for submission in later {
        write_alone(pool, submission).await;
    }
}

async fn write_alone(pool: &PgPool, submission: Submission) {
    let row = [DeliveryWithJobs {
        delivery: submission.delivery.record(),
        jobs: &submission.jobs,
    }];
    let result = store::record_deliveries(pool, &row)
        .await
        .map(|new| {
            if new.first() == Some(&true) {
                Written::New
            } else {
                Written::Duplicate
            }
        })
        .map_err(WriteError::from);
    let _ = submission.answer.send(result);
}
