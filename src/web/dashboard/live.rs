//! Live updates: one PostgreSQL `LISTEN` per process (migration 0008's triggers NOTIFY on
//! `tollgate_dashboard`), fanned out to Server-Sent Events streams. A stream forwards only the
//! events of the installation it was opened for; the page then re-reads its data through the
//! usual tenant-scoped queries, so an event carries ids and nothing else. Browsers without
//! EventSource, or whose stream broke, poll instead (see `assets/dashboard.js`).

use super::cache::Caches;
use super::{DashboardState, PageError, PageUser};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;

pub const CHANNEL: &str = "tollgate_dashboard";

/// What changed: a completed evaluation, an alert, an override request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveEvent {
    pub installation_id: i64,
    pub kind: String,
    pub repository_id: i64,
    pub pr_number: i32,
}

/// The process's fan-out of events; the listening task stops with it.
pub struct LiveUpdates {
    sender: broadcast::Sender<LiveEvent>,
    listener: AbortHandle,
}

impl LiveUpdates {
    /// Listens, fanning events out to the streams and dropping what `caches` hold of the
    /// installation that changed.
    pub fn start(pool: PgPool, caches: Arc<Caches>) -> Self {
        let (sender, _) = broadcast::channel(256);
        let listener = tokio::spawn(listen(pool, sender.clone(), caches)).abort_handle();
        Self { sender, listener }
    }

    fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }
}

impl Drop for LiveUpdates {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Forwards notifications until the process ends. The listener reconnects by itself after a
/// lost connection; failing to connect at all is retried after a pause.
async fn listen(pool: PgPool, sender: broadcast::Sender<LiveEvent>, caches: Arc<Caches>) {
    loop {
        // Whatever changed while nobody listened is unknown: the cached reads go.
        caches.clear();
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "dashboard live updates cannot listen; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
                continue;
            }
        };
        loop {
            match listener.recv().await {
                Ok(notification) => match serde_json::from_str(notification.payload()) {
                    // No subscriber is not an error: nobody has a page open.
                    Ok(event) => {
                        let event: LiveEvent = event;
                        caches.invalidate(event.installation_id);
                        drop(sender.send(event));
                    }
                    Err(error) => tracing::warn!(%error, "unreadable dashboard notification"),
                },
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    caches.clear();
                    tracing::warn!(%error, "dashboard live updates lost their connection");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// `GET /dashboard/installations/{installation}/events`: an `update` event whenever something
/// of the installation changed (a lagging stream gets one too, so it never misses a change).
pub async fn events(
    State(state): State<Arc<DashboardState>>,
    PageUser(user): PageUser,
    Path(installation): Path<i64>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, PageError> {
    user.role_in(installation)?;
    let receiver = state.live.subscribe();
    let stream = futures_util::stream::unfold(receiver, move |mut receiver| async move {
        loop {
            let data = match receiver.recv().await {
                Ok(event) if event.installation_id != installation => continue,
                Ok(event) => serde_json::to_string(&event).unwrap_or_default(),
                Err(broadcast::error::RecvError::Lagged(_)) => "{}".to_owned(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let event = Event::default().event("update").data(data);
            return Some((Ok(event), receiver));
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
