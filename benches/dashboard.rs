//! The dashboard under load: a year of history for one installation (200 repositories, about a
//! million violations) plus a smaller second installation that row-level security must filter
//! out, then 100 logged-in users browsing the pages and the JSON API at once for 60 s. Each user
//! paces itself under the rate limit (100 requests a minute). Target: p95 under 50 ms, no errors,
//! connections within the pool. Figures, not assertions: machines are noisy.
//!
//! Run with `cargo bench --bench dashboard` (PostgreSQL must answer at DATABASE_URL). Knobs, for
//! quick runs and for looking at plans on the seeded data:
//! * `DASHBOARD_BENCH_SECONDS` (60), `DASHBOARD_BENCH_USERS` (100);
//! * `DASHBOARD_BENCH_PRS` (30000): pull requests of the big installation, about 33 violations
//!   each over their 4 evaluations;
//! * `DASHBOARD_BENCH_KEEP=1` keeps the database and prints its URL;
//!   `DASHBOARD_BENCH_DATABASE=<url>` browses such a kept database instead of seeding a new one.

#[path = "../tests/support/mod.rs"]
mod support;

use chrono::{Days, Utc};
use reqwest::header::COOKIE;
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::dashboard::{A, A_ACCOUNT, B, B_ACCOUNT, Dashboard, Session, start_dashboard};
use support::percentile;
use support::test_app;
use tokio::time::Instant;
use tollgate::app::Role;

/// Repositories of the big installation, and their first id.
const REPOS: i64 = 200;
const A_FIRST_REPO: i64 = 500_000;
/// The second installation: enough rows that its absence from A's answers means something.
const B_REPOS: i64 = 10;
const B_FIRST_REPO: i64 = 600_000;
const B_PRS: i64 = 1_500;
/// One request per user every 0.6 to 0.8 s: 86 a minute on average, under the limit of 100.
const PACE_MS: (u64, u64) = (600, 800);
const TARGET_P95: Duration = Duration::from_millis(50);

fn env_number(name: &str, default: i64) -> i64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {value:?}")),
        Err(_) => default,
    }
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// The installations' year, in set-based statements over `bench_tenants` (installation,
/// account, first repository id, repositories, pull requests). Both installations' rows are
/// written together in time order, so their ids interleave as real data's do. Pull request `g`
/// of a tenant belongs to repository `g % repositories`, opens at a time spread evenly over the
/// year and is evaluated 4 times, 6 hours apart (1 in 41 last evaluations fails). It has 4 to 16
/// issues, each a rule (warnings most common, blocks rarest), a path and a fingerprint kept
/// across evaluations: a third appear at the second evaluation, a quarter are fixed after the
/// second or third. Every 9th pull request has an override request (mostly approved), every 7th
/// an alert.
const SEED: [&str; 13] = [
    "INSERT INTO installations (id, account_login, account_type)
     SELECT installation_id, account, 'Organization' FROM bench_tenants",
    "INSERT INTO repositories (id, installation_id, full_name)
     SELECT first_repo + r, installation_id, account || '/repo-' || lpad(r::text, 3, '0')
     FROM bench_tenants, generate_series(0, repos - 1) r",
    // The last evaluations end minutes ago: today has some, computed live by the trends.
    "CREATE TEMP TABLE bench_prs AS
     SELECT installation_id, g, first_repo + g % repos AS repository_id,
            (1 + g / repos)::int AS number, 'dev' || lpad((g * 7 % 40)::text, 2, '0') AS author,
            now() - interval '365 days'
                + (g::float8 / prs) * (interval '365 days' - interval '18 hours 10 minutes')
                AS opened_at
     FROM bench_tenants, generate_series(0, prs - 1) g",
    "CREATE TEMP TABLE bench_issues AS
     WITH rules AS (SELECT array_agg(rule_id ORDER BY rule_id) AS ids,
                           array_agg(tier ORDER BY rule_id) AS tiers,
                           array_agg(name ORDER BY rule_id) AS names FROM rule_definitions),
          picked AS (
              SELECT p.*, k, cardinality(rules.ids)
                             - floor(cardinality(rules.ids)
                                     * power(((p.g * 31 + k * 17) % 1000) / 1000.0, 2))::int AS rule
              FROM bench_prs p CROSS JOIN rules, generate_series(1, 4 + (p.g * 7) % 13) k)
     SELECT repository_id, number, g, k, rules.ids[rule] AS rule_id, rules.tiers[rule] AS tier,
            rules.names[rule] AS name,
            (ARRAY['src/', 'src/api/', 'deploy/', 'tests/', 'config/', 'docs/', 'scripts/',
                   'web/'])[1 + (g + k) % 8] || 'file' || (g * k) % 40 || '.rs' AS path,
            1 + (g * 7 + k * 13) % 400 AS line,
            md5(installation_id || '/' || repository_id || '/' || number || '/' || k)
                AS fingerprint,
            CASE WHEN (g + k) % 3 = 0 THEN 2 ELSE 1 END AS first_seen,
            CASE WHEN (g * k) % 4 = 1 THEN 2 + k % 2 ELSE 4 END AS last_seen
     FROM picked CROSS JOIN rules",
    "INSERT INTO pull_requests (installation_id, repository_id, number, title, author, head_sha,
         updated_at)
     SELECT installation_id, repository_id, number,
            'change ' || number || ' of ' || repository_id, author,
            md5(repository_id || '-' || number || '-4'), opened_at + interval '18 hours'
     FROM bench_prs",
    "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status, score,
         verdict, threshold, block_count, override_count, warning_count, policy_digest,
         config_digest, error, created_at, completed_at)
     SELECT installation_id, repository_id, number,
            md5(repository_id || '-' || number || '-' || j),
            CASE WHEN failed THEN 'error' ELSE 'completed' END,
            CASE WHEN NOT failed THEN score END,
            CASE WHEN failed THEN NULL WHEN score >= 70 THEN 'pass' ELSE 'fail' END,
            70, (g + j) % 3, (g * j) % 4, (g + 2 * j) % 5, 'pd1', 'cd1',
            CASE WHEN failed THEN 'policy evaluation timed out' END,
            at, at + interval '2 seconds'
     FROM (SELECT p.*, j, j = 4 AND g % 41 = 0 AS failed, 50 + (g * 13 + j * 7) % 51 AS score,
                  opened_at + (j - 1) * interval '6 hours' AS at
           FROM bench_prs p, generate_series(1, 4) j) e
     ORDER BY at, repository_id",
    // In evaluation order, so that ids grow with time as they do in real data.
    "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, path, line, message,
         fingerprint, created_at)
     SELECT e.id, e.installation_id, i.rule_id, i.tier, i.path, i.line,
            i.name || ' in ' || i.path, i.fingerprint, e.created_at
     FROM evaluations e
     JOIN bench_prs p ON p.repository_id = e.repository_id AND p.number = e.pr_number
     JOIN bench_issues i ON i.repository_id = e.repository_id AND i.number = e.pr_number
     WHERE e.status = 'completed'
       AND 1 + round(extract(epoch FROM e.created_at - p.opened_at) / 21600)
           BETWEEN i.first_seen AND i.last_seen
     ORDER BY e.id, i.k",
    "INSERT INTO override_requests (installation_id, repository_id, pr_number, head_sha, status,
         requested_by, reason, scope_rules, fingerprints, violations, needs_approval, settings,
         decided_by, decided_at, created_at, updated_at)
     SELECT p.installation_id, p.repository_id, p.number,
            md5(p.repository_id || '-' || p.number || '-2'),
            CASE WHEN p.g % 45 = 0 THEN 'pending' WHEN p.g % 27 = 0 THEN 'rejected'
                 ELSE 'approved' END,
            p.author, 'a reviewed exception', '{}',
            ARRAY(SELECT fingerprint FROM bench_issues i
                  WHERE i.repository_id = p.repository_id AND i.number = p.number AND i.k <= 2
                  ORDER BY k),
            '[]', true, '{}',
            CASE WHEN p.g % 45 <> 0 THEN 'lead' || p.g % 5 END,
            CASE WHEN p.g % 45 <> 0 THEN p.opened_at + interval '8 hours' END,
            p.opened_at + interval '7 hours', p.opened_at + interval '8 hours'
     FROM bench_prs p WHERE p.g % 9 = 0 ORDER BY p.opened_at",
    "INSERT INTO override_approvals (request_id, installation_id, approver, via, created_at)
     SELECT id, installation_id, decided_by, 'github', decided_at FROM override_requests
     WHERE status = 'approved'",
    "INSERT INTO alerts (installation_id, repository_id, pr_number, rule_id, head_sha,
         fingerprints, violations, status, acknowledged_by, acknowledged_at, resolved_at,
         escalate_at, escalated_at, created_at)
     SELECT p.installation_id, p.repository_id, p.number, i.rule_id,
            md5(p.repository_id || '-' || p.number || '-1'), ARRAY[i.fingerprint], '[]',
            (ARRAY['open', 'acknowledged', 'resolved', 'resolved', 'resolved'])[1 + p.g % 5],
            CASE WHEN p.g % 5 = 1 THEN p.author END,
            CASE WHEN p.g % 5 = 1 THEN p.opened_at + interval '1 hour' END,
            CASE WHEN p.g % 5 >= 2 THEN p.opened_at + interval '12 hours' END,
            p.opened_at + interval '4 hours',
            CASE WHEN p.g % 5 = 0 AND p.g % 2 = 0 THEN p.opened_at + interval '4 hours' END,
            p.opened_at
     FROM bench_prs p
     JOIN bench_issues i ON i.repository_id = p.repository_id AND i.number = p.number AND i.k = 1
     WHERE p.g % 7 = 0 ORDER BY p.opened_at",
    "INSERT INTO audit_log (installation_id, actor, action, target, after_state, created_at)
     SELECT installation_id, actor, action, target, '{}', at FROM (
         SELECT installation_id, requested_by AS actor, 'override.requested' AS action,
                'override_request:' || id AS target, created_at AS at
         FROM override_requests
         UNION ALL
         SELECT installation_id, decided_by, 'override.' || status, 'override_request:' || id,
                decided_at
         FROM override_requests WHERE decided_by IS NOT NULL
         UNION ALL
         SELECT installation_id, acknowledged_by, 'alert.acknowledged', 'alert:' || id,
                acknowledged_at
         FROM alerts WHERE acknowledged_by IS NOT NULL
         UNION ALL
         SELECT installation_id, author, 'evaluation.requested',
                'pull_request:' || repository_id || '#' || number, opened_at + interval '13 hours'
         FROM bench_prs WHERE g % 2 = 0
     ) entries ORDER BY at",
    "INSERT INTO webhook_deliveries (delivery_id, event, action, installation_id, status, payload,
         received_at)
     SELECT 'bench-' || id, 'pull_request', 'synchronize', installation_id, 'processed', '{}',
            created_at
     FROM evaluations",
    "INSERT INTO jobs (kind, payload, installation_id, dedup_key, state, created_at, finished_at)
     SELECT 'evaluate_pr', '{}', installation_id, 'evaluate:' || id, 'done', created_at,
            completed_at
     FROM evaluations",
];

async fn count(db: &mut PgConnection, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(db)
        .await
        .expect("a count")
}

/// Seeds both installations, analyzes, and rolls up every day of the year as the workers would.
async fn seed(database_url: &str, prs: i64) {
    let started = Instant::now();
    let mut db = PgConnection::connect(database_url)
        .await
        .expect("the bench database");
    let mut tx = db.begin().await.expect("a transaction");
    // Bulk loading: no NOTIFY per evaluation (nobody listens yet), no foreign-key trigger per row.
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await
        .expect("the bench runs as a superuser");
    sqlx::query(
        "CREATE TEMP TABLE bench_tenants (installation_id bigint, account text,
             first_repo bigint, repos bigint, prs bigint)",
    )
    .execute(&mut *tx)
    .await
    .expect("bench_tenants");
    for (installation, account, first_repo, repos, prs) in [
        (A, A_ACCOUNT, A_FIRST_REPO, REPOS, prs),
        (B, B_ACCOUNT, B_FIRST_REPO, B_REPOS, B_PRS),
    ] {
        sqlx::query("INSERT INTO bench_tenants VALUES ($1, $2, $3, $4, $5)")
            .bind(installation)
            .bind(account)
            .bind(first_repo)
            .bind(repos)
            .bind(prs)
            .execute(&mut *tx)
            .await
            .expect("a tenant");
    }
    for statement in SEED {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("seed failed: {e}\n{statement}"));
    }
    tx.commit().await.expect("the seed commits");
    sqlx::query("ANALYZE")
        .execute(&mut db)
        .await
        .expect("ANALYZE");
    let seeded = started.elapsed();
    let pool = PgPool::connect(database_url).await.expect("a pool");
    let today = Utc::now().date_naive();
    for back in 1..=366 {
        let day = today.checked_sub_days(Days::new(back)).expect("a past day");
        tollgate::store::trends::roll_up_day(&pool, day)
            .await
            .expect("the rollup");
    }
    pool.close().await;
    // As autovacuum would have left a database that grew over a year: statistics, hint bits and
    // the visibility map (index-only scans) in place.
    sqlx::query("VACUUM ANALYZE")
        .execute(&mut db)
        .await
        .expect("VACUUM ANALYZE");
    let total = started.elapsed();
    let mut counts = Vec::new();
    for table in [
        "repositories",
        "pull_requests",
        "evaluations",
        "violations",
        "override_requests",
        "alerts",
        "audit_log",
        "trend_rule_days",
    ] {
        counts.push(format!("{table} {}", count(&mut db, table).await));
    }
    println!(
        "seeded in {:.1} s (rows: {:.1} s, rollups of 366 days: {:.1} s)\n  {}",
        total.as_secs_f64(),
        seeded.as_secs_f64(),
        (total - seeded).as_secs_f64(),
        counts.join(", ")
    );
}

// ---------------------------------------------------------------------------------------------
// Browsing

/// A small deterministic generator (xorshift64*): each user browses its own reproducible way.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// What a user does next: a route label and a path.
fn next_request(rng: &mut Rng, prs_per_repo: i64, next_page: Option<&str>) -> (String, String) {
    let page = format!("/dashboard/installations/{A}");
    let api = format!("/api/v1/installations/{A}");
    let rule = format!("R{:02}", 1 + rng.below(25));
    let repository = format!("{A_ACCOUNT}/repo-{:03}", rng.below(REPOS as u64));
    let pull = format!(
        "/repos/{repository}/pulls/{}",
        1 + rng.below(prs_per_repo.max(1) as u64)
    );
    let state = rng.pick(&["open", "overridden", "resolved"]);
    let days = rng.pick(&["30", "90", "365"]);
    // (weight, label, path under the page or API base)
    let mix: [(u64, &str, String); 25] = [
        (8, "page overview", format!("{page}/")),
        (6, "page violations", format!("{page}/violations")),
        (
            3,
            "page violations ?rule",
            format!("{page}/violations?rule={rule}"),
        ),
        (
            3,
            "page violations ?repository",
            format!("{page}/violations?repository={repository}"),
        ),
        (
            3,
            "page violations ?state",
            format!("{page}/violations?state={state}"),
        ),
        (
            3,
            "page violations next",
            format!("{page}/violations?{}", next_page.unwrap_or("")),
        ),
        (6, "page pull request", format!("{page}{pull}")),
        (2, "page pulls", format!("{page}/pulls")),
        (3, "page rule", format!("{page}/rules/{rule}")),
        (3, "page trends", format!("{page}/trends?days={days}")),
        (3, "page alerts", format!("{page}/alerts")),
        (3, "page audit", format!("{page}/audit")),
        (4, "api rules", format!("{api}/rules")),
        (3, "api rule", format!("{api}/rules/{rule}")),
        (4, "api violations", format!("{api}/violations")),
        (
            2,
            "api violations ?rule&state",
            format!("{api}/violations?rule={rule}&state={state}"),
        ),
        (
            2,
            "api violations ?repository",
            format!("{api}/violations?repository={repository}"),
        ),
        (
            2,
            "api violations next",
            format!("{api}/violations?{}", next_page.unwrap_or("")),
        ),
        (3, "api pulls", format!("{api}/pulls")),
        (3, "api evaluations", format!("{api}/evaluations")),
        (3, "api trends", format!("{api}/trends?days={days}")),
        (3, "api trends 365", format!("{api}/trends?days=365")),
        (2, "api alerts", format!("{api}/alerts")),
        (2, "api audit", format!("{api}/audit")),
        (4, "api pull request", format!("{api}{pull}")),
    ];
    let total: u64 = mix.iter().map(|(weight, _, _)| weight).sum();
    let mut roll = rng.below(total);
    for (weight, label, path) in mix {
        if roll < weight {
            return (label.to_owned(), path);
        }
        roll -= weight;
    }
    unreachable!("the roll is below the total weight")
}

struct Sample {
    route: String,
    /// When it was sent, from the start of the browsing.
    at: Duration,
    elapsed: Duration,
    /// `None` when the request got an answer with a 2xx status.
    error: Option<String>,
}

/// One user: a request every 0.6 to 0.8 s until `deadline`. The next-page links follow the
/// cursor of the user's last unfiltered violations list, as a person clicking "next" would.
async fn browse(
    dashboard: Arc<Dashboard>,
    session: Session,
    user: u64,
    prs_per_repo: i64,
    started: Instant,
    deadline: Instant,
) -> Vec<Sample> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (user + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9));
    let mut samples = Vec::new();
    let mut next_page: Option<String> = None;
    tokio::time::sleep(Duration::from_millis(rng.below(PACE_MS.1))).await;
    while Instant::now() < deadline {
        let sent = Instant::now();
        let (route, path) = next_request(&mut rng, prs_per_repo, next_page.as_deref());
        let response = dashboard
            .http
            .get(dashboard.app.url(&path))
            .header(COOKIE, &session.cookie)
            .send()
            .await;
        let (error, body) = match response {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(body) if status.is_success() => (None, body),
                    Ok(body) => (
                        Some(format!(
                            "{status}: {}",
                            String::from_utf8_lossy(&body[..body.len().min(200)])
                        )),
                        body,
                    ),
                    Err(e) => (Some(format!("reading the body: {e}")), Default::default()),
                }
            }
            Err(e) => (Some(format!("sending: {e}")), Default::default()),
        };
        let elapsed = sent.elapsed();
        if error.is_none() && route.starts_with("api violations") && !route.contains('?') {
            next_page = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["next_cursor"].as_str().map(|c| format!("cursor={c}")));
        }
        samples.push(Sample {
            at: sent.duration_since(started),
            route,
            elapsed,
            error: error.map(|e| format!("{path}: {e}")),
        });
        let pause = Duration::from_millis(PACE_MS.0 + rng.below(PACE_MS.1 - PACE_MS.0));
        tokio::time::sleep(pause.saturating_sub(elapsed)).await;
    }
    samples
}

/// The most connections seen in use, two ways: the app's own pool as `/api/health` reports it
/// (every 250 ms; the check's own connection counts), and PostgreSQL's backends of the bench
/// database inside a query or transaction (every 20 ms).
#[derive(Debug, Default)]
struct Connections {
    pool_in_use: u64,
    pool_max: u64,
    busy_backends: u64,
    open_backends: u64,
}

async fn watch_connections(
    dashboard: Arc<Dashboard>,
    database_url: String,
    stop: Arc<AtomicBool>,
) -> Connections {
    let mut db = PgConnection::connect(&database_url)
        .await
        .expect("a connection for sampling");
    let mut seen = Connections::default();
    let mut next_health = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let (busy, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state <> 'idle'), count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()
               AND backend_type = 'client backend'",
        )
        .fetch_one(&mut db)
        .await
        .expect("pg_stat_activity");
        seen.busy_backends = seen.busy_backends.max(busy.unsigned_abs());
        seen.open_backends = seen.open_backends.max(open.unsigned_abs());
        if Instant::now() >= next_health {
            next_health += Duration::from_millis(250);
            let health: Value = match dashboard.get("/api/health", None).await.json().await {
                Ok(health) => health,
                Err(e) => panic!("/api/health: {e}"),
            };
            let pool = &health["checks"]["database_pool"]["details"];
            seen.pool_in_use = seen.pool_in_use.max(pool["in_use"].as_u64().unwrap_or(0));
            seen.pool_max = pool["max"].as_u64().unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn report_line(name: &str, durations: &mut [Duration], errors: usize) -> String {
    durations.sort();
    format!(
        "{name:<32} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        durations.len(),
        errors,
        ms(percentile(durations, 50.0)),
        ms(percentile(durations, 95.0)),
        ms(percentile(durations, 99.0)),
        ms(durations.last().copied().unwrap_or_default()),
    )
}

#[tokio::main]
async fn main() {
    let seconds = env_number("DASHBOARD_BENCH_SECONDS", 60);
    let users = env_number("DASHBOARD_BENCH_USERS", 100);
    let prs = env_number("DASHBOARD_BENCH_PRS", 30_000);
    let existing = std::env::var("DASHBOARD_BENCH_DATABASE").ok();
    let keep = existing.is_some() || std::env::var("DASHBOARD_BENCH_KEEP").is_ok();
    let database_url = match &existing {
        Some(url) => url.clone(),
        None => test_app::fresh_database().await,
    };

    // The web role alone: the workers' daily jobs (retention above all) would change the data
    // under the measurement.
    let mut options = test_app::options();
    options.role = Role::Web;
    let dashboard = start_dashboard(database_url.clone(), options).await;
    if existing.is_none() {
        seed(&database_url, prs).await;
    }

    let started = Instant::now();
    let mut sessions = Vec::new();
    for n in 0..users {
        let login = format!("viewer{n:03}");
        dashboard.github.add_user(&login, 10_000 + n as u64);
        dashboard
            .github
            .give_installation_access(&login, A as u64, A_ACCOUNT, "Organization");
        dashboard.github.set_org_role(A_ACCOUNT, &login, "member");
        sessions.push(dashboard.log_in(&login).await);
    }
    println!(
        "{users} users logged in in {:.1} s; browsing for {seconds} s",
        started.elapsed().as_secs_f64()
    );

    let dashboard = Arc::new(dashboard);
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = tokio::spawn(watch_connections(
        dashboard.clone(),
        database_url.clone(),
        stop.clone(),
    ));
    let browsing = Instant::now();
    let deadline = browsing + Duration::from_secs(seconds.max(1) as u64);
    let prs_per_repo = prs / REPOS;
    let loops: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(n, session)| {
            tokio::spawn(browse(
                dashboard.clone(),
                session,
                n as u64,
                prs_per_repo,
                browsing,
                deadline,
            ))
        })
        .collect();
    let mut samples = Vec::new();
    for handle in loops {
        samples.extend(handle.await.expect("a browsing loop"));
    }
    stop.store(true, Ordering::Relaxed);
    let connections = watcher.await.expect("the connection watcher");

    let mut by_route: BTreeMap<&str, (Vec<Duration>, usize)> = BTreeMap::new();
    for sample in &samples {
        let entry = by_route.entry(&sample.route).or_default();
        entry.0.push(sample.elapsed);
        entry.1 += usize::from(sample.error.is_some());
    }
    println!(
        "\n{:<32} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "route", "count", "errors", "p50 ms", "p95 ms", "p99 ms", "max ms"
    );
    for (route, (durations, errors)) in &mut by_route {
        println!("{}", report_line(route, durations, *errors));
    }
    let mut all: Vec<Duration> = samples.iter().map(|s| s.elapsed).collect();
    let errors: Vec<&String> = samples.iter().filter_map(|s| s.error.as_ref()).collect();
    println!("{}", report_line("all", &mut all, errors.len()));
    // Over time: the first seconds read every cached aggregate once (cache.rs).
    let windows: Vec<String> = (0..seconds.max(1) as u64)
        .step_by(10)
        .map(|from| {
            let window = from..from + 10;
            let mut durations: Vec<Duration> = samples
                .iter()
                .filter(|s| window.contains(&s.at.as_secs()))
                .map(|s| s.elapsed)
                .collect();
            durations.sort();
            format!("{from}-{}s {}", from + 10, ms(percentile(&durations, 95.0)))
        })
        .collect();
    println!("p95 ms by 10 s window: {}", windows.join(", "));
    for error in errors.iter().take(5) {
        println!("  error: {error}");
    }
    println!(
        "\n{:.1} requests/s; database pool: at most {} of {} connections in use (app's count); \
         backends: at most {} busy, {} open (the pool's plus the live-update listener)",
        samples.len() as f64 / seconds.max(1) as f64,
        connections.pool_in_use,
        connections.pool_max,
        connections.busy_backends,
        connections.open_backends,
    );
    let p95 = percentile(&all, 95.0);
    let met =
        p95 < TARGET_P95 && errors.is_empty() && connections.pool_in_use <= connections.pool_max;
    println!(
        "target (p95 < {} ms, no errors, connections within the pool): {}",
        TARGET_P95.as_millis(),
        if met { "met" } else { "NOT met" }
    );

    drop(dashboard);
    if keep {
        println!("database kept: {database_url}");
    } else {
        drop_database(&database_url).await;
    }
}

/// Drops the bench database: a million rows are worth reclaiming.
async fn drop_database(database_url: &str) {
    let Some((_, name)) = database_url
        .split('?')
        .next()
        .and_then(|url| url.rsplit_once('/'))
    else {
        return;
    };
    let mut admin = PgConnection::connect(&test_app::admin_database_url())
        .await
        .expect("the admin database");
    // The name is ours (fresh_database's UUID), not input.
    let dropped = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await;
    if let Err(e) = dropped {
        println!("could not drop {name}: {e}");
    }
}
