//! The dashboard's test fixture, shared by the API, page and browser tests: two installations
//! with seeded data, the app with the dashboard on against the fake GitHub, and a logged-in
//! client.

use super::TEST_APP_KEY;
use super::fake_github::FakeGithub;
use super::test_app::{self, TestApp};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};
use sqlx::PgConnection;
use tollgate::app::RuntimeOptions;

/// Installation A and its data.
pub const A: i64 = 77;
pub const A_ACCOUNT: &str = "acme";
pub const A_REPO: (i64, &str) = (1001, "acme/widgets");
/// Installation B and its data.
pub const B: i64 = 88;
pub const B_ACCOUNT: &str = "globex";
pub const B_REPO: (i64, &str) = (2002, "globex/secret-plans");

pub const CLIENT_ID: &str = "Iv1.testclient";
pub const CLIENT_SECRET: &str = "test-client-secret";
/// 64 bytes, base64.
pub const SESSION_KEY: &str =
    "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw==";

// ---------------------------------------------------------------------------------------------
// Seeding

/// Rows of every tenant table for one installation: a repository, a pull request with two
/// completed evaluations (a violation fixed in between, one overridden, two open), an approved
/// override, an alert and audit entries.
pub async fn seed(db: &mut PgConnection, installation: i64, account: &str, repo: (i64, &str)) {
    let statements = [
        "INSERT INTO installations (id, account_login, account_type) VALUES ($1, $2, 'Organization')",
        "INSERT INTO repositories (id, installation_id, full_name) VALUES ($3, $1, $4)",
        "INSERT INTO pull_requests (installation_id, repository_id, number, title, author, head_sha)
         VALUES ($1, $3, 7, 'feat: things', 'bob', 'head2')",
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status, score,
             verdict, threshold, block_count, override_count, warning_count, policy_digest,
             config_digest, created_at, completed_at)
         VALUES ($1, $3, 7, 'head1', 'completed', 67, 'fail', 70, 2, 1, 0, 'pd1', 'cd1',
                 now() - interval '2 days', now() - interval '2 days'),
                ($1, $3, 7, 'head2', 'completed', 77, 'fail', 70, 2, 1, 0, 'pd1', 'cd1',
                 now() - interval '1 day', now() - interval '1 day')",
        // In the first evaluation only: resolved since.
        "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, path, line, message,
             fingerprint, created_at)
         SELECT id, $1, 'R12', 'OVERRIDE', 'src/old.rs', 3, 'fixed since', 'fp-fixed-' || $1,
                created_at FROM evaluations WHERE installation_id = $1 AND head_sha = 'head1'",
        "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, path, line, message,
             fingerprint, created_at)
         SELECT e.id, $1, v.rule_id, v.tier, v.path, v.line, v.message, v.fp || $1, e.created_at
         FROM evaluations e,
              (VALUES ('R01', 'BLOCK', 'src/config.rs', 10, 'AWS key', 'fp-key-'),
                      ('R05', 'BLOCK', 'deploy/prod.yml', 2, 'privileged container', 'fp-priv-'),
                      ('R07', 'OVERRIDE', 'src/db.rs', 40, 'raw SQL', 'fp-sql-'))
                  AS v (rule_id, tier, path, line, message, fp)
         WHERE e.installation_id = $1",
        "INSERT INTO override_requests (installation_id, repository_id, pr_number, head_sha, status,
             requested_by, reason, scope_rules, fingerprints, violations, needs_approval, settings,
             decided_by, decided_at)
         VALUES ($1, $3, 7, 'head2', 'approved', 'bob', 'a reviewed exception', '{R05}',
                 ARRAY['fp-priv-' || $1], '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}', 'carol', now())",
        "INSERT INTO override_approvals (request_id, installation_id, approver, via)
         SELECT id, $1, 'carol', 'github' FROM override_requests WHERE installation_id = $1",
        "INSERT INTO alerts (installation_id, repository_id, pr_number, rule_id, head_sha,
             fingerprints, violations, escalate_at)
         VALUES ($1, $3, 7, 'R01', 'head2', ARRAY['fp-key-' || $1], '[]', now())",
        "INSERT INTO audit_log (installation_id, actor, action, target)
         VALUES ($1, 'bob', 'override.requested', 'override_request:1'),
                ($1, 'carol', 'override.approved', 'override_request:1')",
        "INSERT INTO webhook_deliveries (delivery_id, event, installation_id, status, payload)
         VALUES ('delivery-' || $1, 'pull_request', $1, 'processed', '{}')",
        "INSERT INTO jobs (kind, payload, installation_id, dedup_key, state)
         VALUES ('evaluate_pr', '{}', $1, 'evaluate:' || $1, 'done')",
        // The merge queue: pull request 7 queued; a group that failed on a violation the
        // combination introduced, one whose pull requests were trusted (merged since), and one
        // still running.
        "INSERT INTO merge_queue_entries (installation_id, repository_id, number, base_ref)
         VALUES ($1, $3, 7, 'main')",
        "INSERT INTO queue_evaluations (installation_id, repository_id, head_sha, head_ref, base_sha,
             base_ref, pr_numbers, mode, status, verdict, score, threshold, block_count,
             override_count, warning_count, introduced, policy_digest, config_digest, check_run_id,
             created_at, completed_at)
         VALUES ($1, $3, 'group1', 'refs/heads/gh-readonly-queue/main/pr-7-head2', 'base1', 'main',
                 '{7}', 'reevaluate', 'completed', 'fail', 90, 70, 1, 0, 0,
                 '[{\"rule_id\":\"R01\",\"tier\":\"BLOCK\",\"path\":\"src/config.rs\",\"line\":12,\"message\":\"AWS key\",\"fingerprint\":\"fp-q\"}]',
                 'pd1', 'cd1', 501, now() - interval '3 hours', now() - interval '3 hours')",
        "INSERT INTO queue_evaluations (installation_id, repository_id, head_sha, head_ref, base_sha,
             base_ref, pr_numbers, mode, status, verdict, policy_digest, destroyed_at,
             destroyed_reason, created_at, completed_at)
         VALUES ($1, $3, 'group2', 'refs/heads/gh-readonly-queue/main/pr-7-head3', 'base1', 'main',
                 '{7}', 'trust_pull_requests', 'completed', 'pass', 'pd1', now(), 'merged',
                 now() - interval '2 hours', now() - interval '2 hours'),
                ($1, $3, 'group3', 'refs/heads/gh-readonly-queue/main/pr-7-head4', 'base2', 'main',
                 '{7}', 'reevaluate', 'in_progress', NULL, 'pd1', NULL, NULL,
                 now() - interval '1 hour', NULL)",
        "INSERT INTO queue_comments (queue_evaluation_id, installation_id, pr_number, comment_id)
         SELECT id, $1, 7, 601 FROM queue_evaluations
         WHERE installation_id = $1 AND head_sha = 'group1'",
    ];
    for statement in statements {
        // Every statement receives all four parameters; the unused CTE declares their types.
        let statement =
            format!("WITH seed AS (SELECT $1::bigint, $2::text, $3::bigint, $4::text) {statement}");
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .bind(installation)
            .bind(account)
            .bind(repo.0)
            .bind(repo.1)
            .execute(&mut *db)
            .await
            .unwrap_or_else(|e| panic!("seed failed: {e}\n{statement}"));
    }
}

// ---------------------------------------------------------------------------------------------
// The app with the dashboard on, and a browser that logs in

pub struct Dashboard {
    pub app: TestApp,
    pub github: FakeGithub,
    pub http: reqwest::Client,
}

/// A logged-in browser: its session cookie and CSRF token.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// The app with the dashboard on, against a fake GitHub where alice owns acme (installation A),
/// bob is a member of acme, and carol owns globex (installation B). Both are seeded.
pub async fn dashboard() -> Dashboard {
    let dashboard = start_dashboard(test_app::fresh_database().await, test_app::options()).await;
    let mut db = dashboard.app.db().await;
    seed(&mut db, A, A_ACCOUNT, A_REPO).await;
    seed(&mut db, B, B_ACCOUNT, B_REPO).await;
    dashboard
}

/// Like `dashboard()`, on this database with these runtime options, seeding nothing.
pub async fn start_dashboard(database_url: String, options: RuntimeOptions) -> Dashboard {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    let app = TestApp::start_configured(
        database_url,
        &github.url(),
        options,
        &[
            ("SESSION_KEY", SESSION_KEY.to_owned()),
            ("GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("GITHUB_WEB_URL", github.url()),
        ],
    )
    .await;
    github.set_oauth_app(
        CLIENT_ID,
        CLIENT_SECRET,
        &app.url("/dashboard/auth/callback"),
    );
    for (login, id) in [("alice", 1), ("bob", 2), ("carol", 3)] {
        github.add_user(login, id);
    }
    github.give_installation_access("alice", A as u64, A_ACCOUNT, "Organization");
    github.give_installation_access("bob", A as u64, A_ACCOUNT, "Organization");
    github.give_installation_access("carol", B as u64, B_ACCOUNT, "Organization");
    github.set_org_role(A_ACCOUNT, "alice", "admin");
    github.set_org_role(A_ACCOUNT, "bob", "member");
    github.set_org_role(B_ACCOUNT, "carol", "admin");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Dashboard { app, github, http }
}

pub fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// `name=value` of a `Set-Cookie` named `name`, with its attributes.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<(String, String)> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| {
            let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
            (pair.to_owned(), attributes.to_owned())
        })
}

/// The login through the fake GitHub's OAuth pages, as a browser signed in to GitHub as `login`
/// would follow it, against the app at `app_url`. `http` must not follow redirects.
pub async fn log_in_at(
    http: &reqwest::Client,
    github: &FakeGithub,
    app_url: &str,
    login: &str,
) -> Session {
    github.sign_in_browser_as(login);
    let start = http
        .get(format!("{app_url}/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 303);
    let authorize = location(&start);
    assert!(
        authorize.starts_with(&format!("{}/login/oauth/authorize?", github.url())),
        "{authorize}"
    );
    assert!(authorize.contains(&format!("client_id={CLIENT_ID}")));
    let (state_cookie, _) = set_cookie(&start, "tollgate_oauth_state").expect("state cookie");
    let github_answer = http.get(&authorize).send().await.unwrap();
    assert_eq!(github_answer.status(), 302);
    let callback = location(&github_answer);
    let done = http
        .get(&callback)
        .header(COOKIE, &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        done.status(),
        303,
        "{}",
        done.text().await.unwrap_or_default()
    );
    assert_eq!(location(&done), "/dashboard/");
    let (cookie, attributes) = set_cookie(&done, "tollgate_session").expect("session cookie");
    assert!(attributes.contains("HttpOnly"), "{attributes}");
    assert!(attributes.contains("SameSite=Lax"), "{attributes}");
    assert!(!attributes.contains("Secure"), "plain http: {attributes}");
    let me: Value = http
        .get(format!("{app_url}/api/v1/me"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Session {
        cookie,
        csrf: me["csrf_token"].as_str().expect("a CSRF token").to_owned(),
    }
}

impl Dashboard {
    /// Follows the login as a browser signed in to GitHub as `login` would.
    pub async fn log_in(&self, login: &str) -> Session {
        log_in_at(&self.http, &self.github, &self.app.url(""), login).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.http.get(self.app.url(path));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, session: &Session) -> (u16, Value) {
        let response = self.get(path, Some(&session.cookie)).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn bearer(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(self.app.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn create_token(
        &self,
        session: &Session,
        installation: i64,
        name: &str,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(
                self.app
                    .url(&format!("/api/v1/installations/{installation}/tokens")),
            )
            .header(COOKIE, &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Dashboard {
    pub async fn page(&self, path: &str, session: &Session) -> (u16, String) {
        let response = self.get(path, Some(&session.cookie)).await;
        let status = response.status().as_u16();
        // The HTML escaping writes `/` as `&#x2f;`; read it back for simpler assertions.
        let text = response.text().await.unwrap_or_default();
        (status, text.replace("&#x2f;", "/"))
    }

    pub async fn post_json(&self, path: &str, session: &Session, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.app.url(path))
            .header(COOKIE, &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// More of installation A's history, for lists that page and pages that look lived-in: `count`
/// pull requests of another repository, each evaluated once with a few violations of
/// different rules, over the last days.
pub async fn seed_more_violations(app: &TestApp, count: i32) {
    let mut db = app.db().await;
    sqlx::query(
        "INSERT INTO repositories (id, installation_id, full_name) VALUES ($2, $1, 'acme/gadgets')
         ON CONFLICT DO NOTHING",
    )
    .bind(A)
    .bind(A_REPO.0 + 1)
    .execute(&mut db)
    .await
    .unwrap();
    for statement in [
        "INSERT INTO pull_requests (installation_id, repository_id, number, title, author, head_sha)
         SELECT $1, $2, n, 'change ' || n, (ARRAY['dan', 'erin', 'frank'])[1 + n % 3], 'h' || n
         FROM generate_series(100, 99 + $3) n",
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status, score,
             verdict, threshold, block_count, override_count, warning_count, policy_digest,
             created_at, completed_at)
         SELECT $1, $2, n, 'h' || n, 'completed', 100 - 3 * (n % 4) - (n % 3),
                'pass', 70, 0, n % 4, n % 3, 'pd1',
                now() - make_interval(hours => n), now() - make_interval(hours => n)
         FROM generate_series(100, 99 + $3) n",
        "INSERT INTO violations (evaluation_id, installation_id, rule_id, tier, path, line, message,
             fingerprint, created_at)
         SELECT e.id, $1, v.rule_id, v.tier, v.path, e.pr_number, v.message,
                v.rule_id || '-' || e.pr_number, e.created_at
         FROM evaluations e,
              (VALUES ('R07', 'OVERRIDE', 'src/db.rs', 'raw SQL built from input'),
                      ('R14', 'OVERRIDE', 'tests/api_test.py', 'test skipped with @pytest.mark.skip'),
                      ('R21', 'WARNING', 'config/app.yml', 'hard-coded address 10.0.3.7')) AS v (rule_id, tier, path, message)
         WHERE e.repository_id = $2 AND (e.pr_number % 3 <> 0 OR v.tier = 'WARNING')",
    ] {
        sqlx::query(statement)
            .bind(A)
            .bind(A_REPO.0 + 1)
            .bind(count)
            .execute(&mut db)
            .await
            .unwrap_or_else(|e| panic!("seed failed: {e}\n{statement}"));
    }
}
