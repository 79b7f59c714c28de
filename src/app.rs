//! `tollgate serve`: the HTTP server and the background workers, together or apart.

use crate::clock::Clock;
use crate::config::AppSettings;
use crate::github::client::GithubApp;
use crate::github::events::RoutingPolicy;
use crate::github::{Pacing, WriteBudget};
use crate::intake::{self, IntakeState, MAX_BODY_BYTES};
use crate::jobs::{
    self, AlertPolicy, CommandHandler, EmailLinks, EmailSender, Evaluator, Handlers, JobQueue,
    PagerDutySender, RedeliveryPolicy, SlackSender,
};
use crate::notify::email::Mailer;
use crate::notify::pagerduty::PagerDutyClient;
use crate::notify::slack::SlackClient;
use crate::policy::{PolicyEngine, PolicyError, PolicyPack};
use crate::store;
use crate::web::dashboard::DashboardState;
use crate::web::slack::{MAX_INTERACTION_BYTES, SlackInteractionState};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde_json::json;
use sqlx::PgPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Which parts of the app this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Web,
    Worker,
    All,
}

/// Tunables that deployments rarely change and tests do.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    pub role: Role,
    pub migrate: bool,
    pub workers: usize,
    /// How long a claimed job is held before another worker may take it over.
    pub job_lease: Duration,
    /// GitHub's write limits per installation, kept in the database for every process; `None`
    /// lifts them (benches and tests that measure the app, not GitHub's limits).
    pub pacing: Option<Pacing>,
    /// Asking GitHub to redeliver failed deliveries; `None` turns it off.
    pub redelivery: Option<RedeliveryPolicy>,
    /// The time digests are scheduled by (tests set it).
    pub clock: Clock,
    /// How often a worker process looks for digests due.
    pub digest_interval: Duration,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            role: Role::All,
            migrate: true,
            workers: 4,
            job_lease: Duration::from_secs(120),
            pacing: Some(Pacing::default()),
            redelivery: Some(RedeliveryPolicy::default()),
            clock: Clock::system(),
            digest_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot connect to the database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("cannot apply migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot load the policy pack: {0}")]
    Policy(#[from] PolicyError),
    #[error("cannot set up the GitHub client: {0}")]
    Github(String),
    #[error("cannot set up the Slack client: {0}")]
    Slack(String),
    #[error("cannot set up {channel}: {message}")]
    Channel {
        channel: &'static str,
        message: String,
    },
    #[error("cannot set up the dashboard: {0}")]
    Dashboard(#[from] crate::web::dashboard::DashboardStartError),
    #[error("cannot listen on {address}: {message}")]
    Listen {
        address: SocketAddr,
        message: String,
    },
}

/// A started app: its bound address (the real port when 0 was asked) and a way to stop it.
pub struct Application {
    address: SocketAddr,
    shutdown: watch::Sender<bool>,
    tasks: tokio::task::JoinSet<()>,
}

impl Application {
    pub async fn build(
        settings: &AppSettings,
        options: RuntimeOptions,
    ) -> Result<Self, StartError> {
        crate::telemetry::metrics::install();
        let pool = store::connect(settings.database_url.expose()).await?;
        if options.migrate {
            store::migrate(&pool).await?;
        }
        let engine = Arc::new(
            PolicyEngine::load(&PolicyPack::default_pack()?)?
                .with_time_limit(settings.policy_time_limit),
        );
        store::sync_rule_definitions(&pool, engine.catalog(), engine.digest()).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();

        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|e| StartError::Listen {
                    address: settings.listen,
                    message: e.to_string(),
                })?;
        let address = listener.local_addr().map_err(|e| StartError::Listen {
            address: settings.listen,
            message: e.to_string(),
        })?;
        let dashboard = match options.role {
            Role::Worker => None,
            Role::Web | Role::All => DashboardState::from_settings(settings, &pool).await?,
        };
        let router = router(&pool, settings, options.role, dashboard)?
            .merge(crate::web::operations::router(pool.clone()))
            .layer(axum::middleware::from_fn(
                crate::web::operations::track_http,
            ));
        let mut stop = shutdown_rx.clone();
        tasks.spawn(async move {
            let stopped = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(%error, "HTTP server stopped");
            }
        });

        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4());
        tasks.spawn(crate::operations::run_upkeep(
            pool.clone(),
            crate::operations::Upkeep {
                worker: options.role != Role::Web,
                retention: settings.retention.clone(),
                process_id: worker_id.clone(),
                interval: Duration::from_secs(5),
            },
            shutdown_rx.clone(),
        ));
        if options.role != Role::Web {
            let handlers = Arc::new(handlers(&pool, settings, &options, engine)?);
            if options.redelivery.is_some() {
                // Merges with the run already waiting, so replicas share one schedule.
                jobs::schedule_redelivery(&pool, Duration::ZERO).await?;
            }
            let queue = JobQueue::connect(pool.clone(), worker_id, options.job_lease).await?;
            // The installation config is read whatever channels are on (it names the dashboard's
            // admins too); digests are email only.
            tasks.spawn(jobs::digests::run_scheduler(
                pool.clone(),
                options.clock.clone(),
                options.digest_interval,
                settings.email.is_some(),
                shutdown_rx.clone(),
            ));
            tasks.spawn(jobs::run_workers(
                queue,
                handlers,
                options.workers,
                shutdown_rx,
            ));
        }
        // Which GitHub this is, and what its version can do: asked once; deliveries keep it
        // current (`X-GitHub-Enterprise-Version`).
        let github = GithubApp::new(
            &settings.github_api_url,
            settings.app_id,
            settings.private_key.expose(),
            None,
            &settings.trust,
        )
        .map_err(|e| StartError::Github(e.to_string()))?;
        tasks.spawn(async move {
            match github.server().await {
                Ok(server) => crate::github::server::record(server),
                Err(error) => tracing::warn!(%error, "GET /meta failed: the GitHub server's version is learnt from deliveries"),
            }
        });
        for (name, on, off) in channels(settings) {
            if !on {
                tracing::info!("{name} is off ({off})");
            }
        }
        tracing::info!(%address, role = ?options.role, "tollgate started");
        Ok(Self {
            address,
            shutdown,
            tasks,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Runs until Ctrl-C or SIGTERM, then stops taking work and lets running jobs end.
    pub async fn run_until_stopped(mut self) {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await;
    }

    /// Stops the server and the workers and waits for them.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Ends every task at once, as a crash would (tests use it to prove jobs survive).
    pub fn abort(mut self) {
        self.tasks.abort_all();
    }
}

/// The job handlers of a worker process.
fn handlers(
    pool: &PgPool,
    settings: &AppSettings,
    options: &RuntimeOptions,
    engine: Arc<PolicyEngine>,
) -> Result<Handlers, StartError> {
    let budget = options
        .pacing
        .map(|pacing| WriteBudget::new(pool.clone(), pacing))
        .transpose()
        .map_err(|e| StartError::Github(e.to_string()))?;
    let github = GithubApp::new(
        &settings.github_api_url,
        settings.app_id,
        settings.private_key.expose(),
        budget,
        &settings.trust,
    )
    .map_err(|e| StartError::Github(e.to_string()))?;
    let alerts =
        (settings.slack.is_some() || settings.email.is_some() || settings.pagerduty.is_some())
            .then(|| AlertPolicy {
                slack: settings.slack.clone(),
                email: settings.email.is_some(),
                pagerduty: settings.pagerduty.is_some(),
                escalate_after: settings.alert_escalation_after,
            });
    let links = EmailLinks::new(settings);
    let email = match &settings.email {
        Some(email) => {
            let mailer =
                Mailer::new(&email.smtp, &email.from, &settings.trust).map_err(|message| {
                    StartError::Channel {
                        channel: "email",
                        message,
                    }
                })?;
            Some(EmailSender::new(
                pool.clone(),
                mailer,
                engine.clone(),
                links.clone(),
            ))
        }
        None => None,
    };
    let pagerduty = match &settings.pagerduty {
        Some(pagerduty) => {
            let client = PagerDutyClient::new(
                &pagerduty.api_url,
                pagerduty.routing_key.clone(),
                &settings.trust,
            )
            .map_err(|e| StartError::Channel {
                channel: "PagerDuty",
                message: e.to_string(),
            })?;
            Some(PagerDutySender::new(pool.clone(), client, links))
        }
        None => None,
    };
    let slack = match &settings.slack {
        Some(slack) => Some(
            SlackSender::new(
                pool.clone(),
                slack.clone(),
                engine.clone(),
                settings.github_web_url(),
                settings.alert_escalation_after,
                &settings.trust,
            )
            .map_err(|e| StartError::Slack(e.to_string()))?,
        ),
        None => None,
    };
    Ok(Handlers {
        pool: pool.clone(),
        github: github.clone(),
        evaluator: Evaluator::new(
            pool.clone(),
            github.clone(),
            engine.clone(),
            settings,
            alerts.clone(),
        ),
        commands: CommandHandler::new(pool.clone(), github, engine, settings.slack.clone()),
        slack,
        email,
        pagerduty,
        alerts,
        redelivery: options.redelivery,
    })
}

/// Each optional channel: its name, whether it is on, and what turns it on.
fn channels(settings: &AppSettings) -> [(&'static str, bool, &'static str); 3] {
    [
        (
            "Slack",
            settings.slack.is_some(),
            "SLACK_BOT_TOKEN not set: approvals on GitHub only, no Slack alerts",
        ),
        (
            "email",
            settings.email.is_some(),
            "SMTP_URL not set: no email alerts or digests",
        ),
        (
            "PagerDuty",
            settings.pagerduty.is_some(),
            "PAGERDUTY_ROUTING_KEY not set: escalations do not page",
        ),
    ]
}

#[derive(Clone)]
struct HealthState {
    pool: PgPool,
    channels: serde_json::Map<String, serde_json::Value>,
}

fn router(
    pool: &PgPool,
    settings: &AppSettings,
    role: Role,
    dashboard: Option<Arc<DashboardState>>,
) -> Result<Router, StartError> {
    let health = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .with_state(HealthState {
            pool: pool.clone(),
            channels: channels(settings)
                .into_iter()
                .map(|(name, on, off)| {
                    let state = if on {
                        "on".to_owned()
                    } else {
                        format!("off ({off})")
                    };
                    (name.to_lowercase(), state.into())
                })
                .collect(),
        });
    if role == Role::Worker {
        return Ok(health);
    }
    let intake = Arc::new(IntakeState {
        pool: pool.clone(),
        secrets: settings.webhook_secrets.clone(),
        routing: RoutingPolicy {
            evaluate_drafts: settings.evaluate_drafts,
        },
        writer: intake::IntakeWriter::start(pool.clone()),
    });
    let webhooks = Router::new()
        .route("/api/github/webhooks", post(intake::receive))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(intake);
    let acknowledge = Router::new()
        .route(
            "/alerts/ack/{token}",
            get(crate::web::ack::confirm).post(crate::web::ack::acknowledge),
        )
        .with_state(Arc::new(crate::web::ack::AckState {
            pool: pool.clone(),
            signer: crate::notify::links::LinkSigner::from_webhook_secrets(
                &settings.webhook_secrets,
            ),
        }));
    let mut health = health.merge(webhooks).merge(acknowledge);
    if let Some(dashboard) = dashboard {
        health = health.merge(crate::web::dashboard::router(dashboard));
    }
    match &settings.slack {
        Some(slack) => {
            let client = SlackClient::new(&slack.api_url, slack.bot_token.clone(), &settings.trust)
                .map_err(|e| StartError::Slack(e.to_string()))?;
            let state = Arc::new(SlackInteractionState {
                pool: pool.clone(),
                signing_secret: slack.signing_secret.clone(),
                client,
            });
            let interactions = Router::new()
                .route(
                    "/api/slack/interactions",
                    post(crate::web::slack::interactions),
                )
                .layer(DefaultBodyLimit::max(MAX_INTERACTION_BYTES))
                .with_state(state);
            Ok(health.merge(interactions))
        }
        None => Ok(health),
    }
}

async fn readyz(State(state): State<HealthState>) -> impl IntoResponse {
    let (status, mut body) = match store::readiness(&state.pool).await {
        Ok(()) => (StatusCode::OK, json!({ "status": "ready" })),
        Err(problem) => (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "status": "not ready", "problem": problem }),
        ),
    };
    if let Some(fields) = body.as_object_mut() {
        fields.extend(state.channels.clone());
    }
    (status, Json(body))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
