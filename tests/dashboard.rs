//! The dashboard and its JSON API: tenant isolation in PostgreSQL (row-level security), GitHub
//! login against the fake GitHub, sessions, CSRF, API tokens, filters, pagination, exports and
//! the OpenAPI description, all on the real app with a fresh database per test.

mod support;

use chrono::{Days, NaiveDate, Utc};
use reqwest::header::COOKIE;
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::{Connection, PgConnection};
use support::TEST_APP_KEY;
use support::dashboard::*;
use support::fake_github::FakeGithub;
use support::test_app::{self, TestApp};
use tollgate::store::dashboard::begin_tenant;
use tollgate::store::trends::{self, TrendFilter, roll_up_day};

/// The tenant tables the dashboard reads, and their installation column.
const TENANT_TABLES: [(&str, &str); 17] = [
    ("installations", "id"),
    ("repositories", "installation_id"),
    ("pull_requests", "installation_id"),
    ("evaluations", "installation_id"),
    ("violations", "installation_id"),
    ("webhook_deliveries", "installation_id"),
    ("jobs", "installation_id"),
    ("override_requests", "installation_id"),
    ("override_approvals", "installation_id"),
    ("alerts", "installation_id"),
    ("audit_log", "installation_id"),
    ("api_tokens", "installation_id"),
    ("trend_rule_days", "installation_id"),
    ("trend_score_days", "installation_id"),
    ("merge_queue_entries", "installation_id"),
    ("queue_evaluations", "installation_id"),
    ("queue_comments", "installation_id"),
];

/// `days` days before today (UTC), as `seed` dates its evaluations.
fn days_ago(days: u64) -> NaiveDate {
    Utc::now().date_naive() - Days::new(days)
}

/// Rolls up the days `seed` put evaluations on (one and two days ago).
async fn roll_up_seeded_days(pool: &PgPool) {
    for back in [1, 2] {
        roll_up_day(pool, days_ago(back)).await.unwrap();
    }
}

fn with_user(database_url: &str, user: &str) -> String {
    let (scheme, rest) = database_url.split_once("://").expect("a URL");
    let host = rest.split_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{user}@{host}")
}

// ---------------------------------------------------------------------------------------------
// 1. Tenant isolation in PostgreSQL

#[tokio::test]
async fn row_level_security_keeps_installations_apart_even_without_a_where_clause() {
    let database_url = test_app::fresh_database().await;
    let pool = tollgate::store::connect(&database_url).await.unwrap();
    tollgate::store::migrate(&pool).await.unwrap();
    let mut owner = PgConnection::connect(&database_url).await.unwrap();
    seed(&mut owner, A, A_ACCOUNT, A_REPO).await;
    seed(&mut owner, B, B_ACCOUNT, B_REPO).await;
    roll_up_seeded_days(&pool).await;

    // The dashboard role can bypass nothing.
    let (superuser, bypass): (bool, bool) = sqlx::query_as(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = 'tollgate_dashboard'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert!(!superuser && !bypass);
    let owned: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE tableowner = 'tollgate_dashboard'",
    )
    .fetch_one(&mut owner)
    .await
    .unwrap();
    assert_eq!(owned, 0, "the dashboard role owns no table");
    // The dashboard role can read no table with an installation id that lacks row-level
    // security (an operational table of the owner's, unreadable to it, may do without).
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
         WHERE a.attname = 'installation_id' AND c.relkind = 'r' AND NOT c.relrowsecurity
           AND c.relnamespace = 'public'::regnamespace
           AND has_table_privilege('tollgate_dashboard', c.oid, 'SELECT')",
    )
    .fetch_all(&mut owner)
    .await
    .unwrap();
    assert_eq!(unprotected, Vec::<String>::new());

    // A login role that is neither superuser nor owner, only a member of the dashboard role (as
    // DASHBOARD_DATABASE_URL would name).
    let member = format!("tollgate_rls_{}", uuid::Uuid::new_v4().simple());
    for statement in [
        format!("CREATE ROLE {member} LOGIN NOSUPERUSER NOBYPASSRLS"),
        format!("GRANT tollgate_dashboard TO {member}"),
    ] {
        // The name is ours (a UUID), not input.
        sqlx::query(sqlx::AssertSqlSafe(statement))
            .execute(&mut owner)
            .await
            .unwrap();
    }
    let mut as_member = PgConnection::connect(&with_user(&database_url, &member))
        .await
        .expect("the member role logs in");

    // Queries without any WHERE clause see only installation A's rows.
    let mut tx = as_member.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.installation_id', $1, true)")
        .bind(A.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    for (table, column) in TENANT_TABLES {
        let (visible, foreign): (i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT count(*), count(*) FILTER (WHERE {column} <> {A}) FROM {table}"
        )))
        .fetch_one(&mut *tx)
        .await
        .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(foreign, 0, "{table} shows another installation's rows");
        let expected: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE {column} = {A}"
        )))
        .fetch_one(&mut owner)
        .await
        .unwrap();
        assert_eq!(visible, expected, "{table}: A's own rows are all visible");
    }
    let all_violations: i64 = sqlx::query_scalar("SELECT count(*) FROM violations")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(all_violations, 7, "A's 7 violations, none of B's");
    tx.commit().await.unwrap();

    // Without the setting, nothing; and the setting ended with the transaction.
    let nothing: i64 = sqlx::query_scalar("SELECT count(*) FROM violations")
        .fetch_one(&mut as_member)
        .await
        .unwrap();
    assert_eq!(nothing, 0);
    // Writes into another installation are refused too.
    let mut tx = as_member.begin().await.unwrap();
    sqlx::query("SELECT set_config('app.installation_id', $1, true)")
        .bind(A.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    let forged = sqlx::query(
        "INSERT INTO audit_log (installation_id, actor, action, target) VALUES ($1, 'x', 'y', 'z')",
    )
    .bind(B)
    .execute(&mut *tx)
    .await;
    assert!(forged.is_err(), "an audit entry for B was accepted");
    drop(tx);
    as_member.close().await.unwrap();

    // The app's way: the owner's pool switches to the dashboard role per transaction.
    let mut tx = begin_tenant(&pool, B).await.unwrap();
    let (user, violations): (String, i64) =
        sqlx::query_as("SELECT current_user::text, (SELECT count(*) FROM violations)")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(user, "tollgate_dashboard");
    assert_eq!(violations, 7);
    tx.commit().await.unwrap();
    // The pooled connection goes back as it was: the owner, no installation.
    let single = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&database_url)
        .await
        .unwrap();
    begin_tenant(&single, A)
        .await
        .unwrap()
        .commit()
        .await
        .unwrap();
    let (user, setting): (String, Option<String>) = sqlx::query_as(
        "SELECT current_user::text, nullif(current_setting('app.installation_id', true), '')",
    )
    .fetch_one(&single)
    .await
    .unwrap();
    assert_ne!(user, "tollgate_dashboard");
    assert_eq!(setting, None);
    single.close().await;

    // And through a pool of the member role (DASHBOARD_DATABASE_URL).
    let member_pool = tollgate::store::connect(&with_user(&database_url, &member))
        .await
        .unwrap();
    let mut tx = begin_tenant(&member_pool, A).await.unwrap();
    let repositories: Vec<String> = sqlx::query_scalar("SELECT full_name FROM repositories")
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(repositories, vec![A_REPO.1.to_owned()]);
    tx.commit().await.unwrap();
    member_pool.close().await;
    pool.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP ROLE {member}")))
        .execute(&mut owner)
        .await;
}

// ---------------------------------------------------------------------------------------------
// 3. Login

#[tokio::test]
async fn login_through_github_gives_each_user_their_installations_and_roles() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let (status, me) = dash.get_json("/api/v1/me", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(me["login"], "alice");
    assert_eq!(
        me["installations"],
        json!([{ "installation_id": A, "account": A_ACCOUNT, "role": "admin" }])
    );
    let bob = dash.log_in("bob").await;
    let (_, me) = dash.get_json("/api/v1/me", &bob).await;
    assert_eq!(
        me["installations"],
        json!([{ "installation_id": A, "account": A_ACCOUNT, "role": "viewer" }])
    );

    // The page lists them and offers a CSRF-protected logout.
    let page = dash.get("/dashboard/", Some(&alice.cookie)).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(A_ACCOUNT) && html.contains(&alice.csrf),
        "{html}"
    );

    // Logout needs the CSRF token, then ends the session.
    let forged = dash
        .http
        .post(dash.app.url("/dashboard/logout"))
        .header(COOKIE, &alice.cookie)
        .form(&[("csrf_token", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let logout = dash
        .http
        .post(dash.app.url("/dashboard/logout"))
        .header(COOKIE, &alice.cookie)
        .form(&[("csrf_token", alice.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 200);
    let (status, _) = dash.get_json("/api/v1/me", &alice).await;
    assert_eq!(status, 401, "the session ended");
    let page = dash.get("/dashboard/", Some(&alice.cookie)).await;
    assert_eq!(page.status(), 303);
    assert_eq!(location(&page), "/dashboard/login");
    dash.github.assert_clean();
}

#[tokio::test]
async fn forged_sessions_and_mismatched_states_go_back_to_login() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;

    // A cookie not signed with our key, or a signed one for a session that does not exist.
    let (name, value) = alice.cookie.split_once('=').unwrap();
    let (id, _) = value.rsplit_once('.').unwrap();
    for forged in [
        format!("{name}={id}.AAAA"),
        format!("{name}=made-up.{}", value.rsplit_once('.').unwrap().1),
        format!("{name}=garbage"),
    ] {
        let page = dash.get("/dashboard/", Some(&forged)).await;
        assert_eq!(page.status(), 303, "{forged}");
        assert_eq!(location(&page), "/dashboard/login");
        assert_eq!(dash.get("/api/v1/me", Some(&forged)).await.status(), 401);
    }
    // An expired session.
    let mut db = dash.app.db().await;
    sqlx::query("UPDATE dashboard_sessions SET expires_at = now() - interval '1 minute'")
        .execute(&mut db)
        .await
        .unwrap();
    let page = dash.get("/dashboard/", Some(&alice.cookie)).await;
    assert_eq!(location(&page), "/dashboard/login");

    // A callback whose state is not the one this browser was given: refused before any token
    // exchange.
    dash.github.sign_in_browser_as("alice");
    let start = dash.get("/dashboard/login", None).await;
    let (state_cookie, _) = set_cookie(&start, "tollgate_oauth_state").unwrap();
    let github = dash.http.get(location(&start)).send().await.unwrap();
    let callback = location(&github);
    let tampered = callback.replace("state=", "state=x");
    let exchanges = dash.github.oauth_exchanges();
    let refused = dash
        .http
        .get(&tampered)
        .header(COOKIE, &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("could not be verified")
    );
    let no_cookie = dash.http.get(&callback).send().await.unwrap();
    assert_eq!(no_cookie.status(), 400);
    assert_eq!(
        dash.github.oauth_exchanges(),
        exchanges,
        "no exchange was tried"
    );

    // A code GitHub refuses (answered with HTTP 200 and an `error` field): used twice.
    let first = dash
        .http
        .get(&callback)
        .header(COOKIE, &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 303);
    let again = dash
        .http
        .get(&callback)
        .header(COOKIE, &state_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 502);
    assert!(set_cookie(&again, "tollgate_session").is_none());
}

// ---------------------------------------------------------------------------------------------
// 4. The JSON API, and tenant isolation through it

#[tokio::test]
async fn another_installations_data_is_not_found_however_the_url_is_tampered() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let carol = dash.log_in("carol").await;

    // B's installation id in the URL.
    for path in [
        format!("/api/v1/installations/{B}/rules"),
        format!("/api/v1/installations/{B}/violations"),
        format!("/api/v1/installations/{B}/alerts"),
        format!("/api/v1/installations/{B}/audit"),
        format!("/api/v1/installations/{B}/repos/{}/pulls/7", B_REPO.1),
        format!("/api/v1/installations/{B}/exports/violations.csv?from=2000-01-01&to=2100-01-01"),
        format!("/api/v1/installations/{B}/tokens"),
        format!("/api/v1/installations/{B}/trends"),
        format!("/api/v1/installations/{B}/rules/R01"),
        format!("/api/v1/installations/{B}/pulls"),
        format!("/api/v1/installations/{B}/evaluations"),
        format!("/api/v1/installations/{B}/exports/evaluations.csv?from=2000-01-01&to=2100-01-01"),
        format!("/api/v1/installations/{B}/exports/evaluations.json?from=2000-01-01&to=2100-01-01"),
        format!("/api/v1/installations/{B}/exports/audit.csv?from=2000-01-01&to=2100-01-01"),
        format!("/api/v1/installations/{B}/exports/audit.json?from=2000-01-01&to=2100-01-01"),
    ] {
        let (status, _) = dash.get_json(&path, &alice).await;
        assert_eq!(status, 404, "{path}");
    }
    // B's pull request under A's installation id: row-level security hides it.
    let (status, _) = dash
        .get_json(
            &format!("/api/v1/installations/{A}/repos/{}/pulls/7", B_REPO.1),
            &alice,
        )
        .await;
    assert_eq!(status, 404);
    let (status, page) = dash
        .get_json(
            &format!(
                "/api/v1/installations/{A}/violations?repository={}",
                B_REPO.1
            ),
            &alice,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["items"], json!([]));
    // A's export holds only A's rows.
    let csv = dash
        .get(
            &format!(
                "/api/v1/installations/{A}/exports/violations.csv?from=2000-01-01&to=2100-01-01"
            ),
            Some(&alice.cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.contains(A_REPO.1) && !csv.contains(B_REPO.1), "{csv}");
    // B's repository through A's installation: nothing, whatever the endpoint.
    let pool = tollgate::store::connect(&dash.app.database_url)
        .await
        .unwrap();
    roll_up_seeded_days(&pool).await;
    let (_, trends) = dash
        .get_json(
            &format!("/api/v1/installations/{A}/trends?repository={}", B_REPO.1),
            &alice,
        )
        .await;
    assert!(
        trends["series"]
            .as_array()
            .unwrap()
            .iter()
            .all(|day| day["evaluations"] == 0 && day["block"] == 0),
        "{trends}"
    );
    assert_eq!(trends["rules"], json!([]));
    for list in ["pulls", "evaluations"] {
        let (status, page) = dash
            .get_json(
                &format!("/api/v1/installations/{A}/{list}?repository={}", B_REPO.1),
                &alice,
            )
            .await;
        assert_eq!((status, &page["items"]), (200, &json!([])), "{list}");
    }
    let (_, rule) = dash
        .get_json(&format!("/api/v1/installations/{A}/rules/R01"), &alice)
        .await;
    assert_eq!(
        rule["top_repositories"],
        json!([{ "name": A_REPO.1, "violations": 1 }])
    );
    // A's exports hold only A's rows.
    let evaluations = dash
        .get(
            &format!(
                "/api/v1/installations/{A}/exports/evaluations.csv?from=2000-01-01&to=2100-01-01"
            ),
            Some(&alice.cookie),
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(
        evaluations.contains(A_REPO.1) && !evaluations.contains(B_REPO.1),
        "{evaluations}"
    );
    let audit: Value = dash
        .get(
            &format!("/api/v1/installations/{A}/exports/audit.json?from=2000-01-01&to=2100-01-01"),
            Some(&alice.cookie),
        )
        .await
        .json()
        .await
        .unwrap();
    let mut db = dash.app.db().await;
    let own: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_log WHERE installation_id = $1 ORDER BY id DESC")
            .bind(A)
            .fetch_all(&mut db)
            .await
            .unwrap();
    let exported: Vec<i64> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_i64().unwrap())
        .collect();
    assert_eq!(exported, own);

    // API tokens: B's token neither reads A nor can be revoked by A's admin.
    let (status, token_b) = dash.create_token(&carol, B, "carol's script").await;
    assert_eq!(status, 201, "{token_b}");
    let secret_b = token_b["token"].as_str().unwrap();
    let (status, _) = dash
        .bearer(&format!("/api/v1/installations/{A}/violations"), secret_b)
        .await;
    assert_eq!(status, 404);
    let (status, _) = dash
        .bearer(&format!("/api/v1/installations/{B}/violations"), secret_b)
        .await;
    assert_eq!(status, 200);
    for installation in [A, B] {
        let revoke = dash
            .http
            .delete(dash.app.url(&format!(
                "/api/v1/installations/{installation}/tokens/{}",
                token_b["id"]
            )))
            .header(COOKIE, &alice.cookie)
            .header("x-csrf-token", &alice.csrf)
            .send()
            .await
            .unwrap();
        assert_eq!(revoke.status(), 404, "installation {installation}");
    }
    let (_, tokens) = dash
        .get_json(&format!("/api/v1/installations/{A}/tokens"), &alice)
        .await;
    assert_eq!(tokens["tokens"], json!([]), "A sees none of B's tokens");
    let (status, _) = dash
        .bearer(&format!("/api/v1/installations/{B}/rules"), secret_b)
        .await;
    assert_eq!(status, 200, "B's token still works: A could not revoke it");
}

#[tokio::test]
async fn api_tokens_are_shown_once_read_only_revocable_and_audited() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let bob = dash.log_in("bob").await;

    // Viewers may not create tokens; a session needs its CSRF token.
    let (status, _) = dash.create_token(&bob, A, "bob's").await;
    assert_eq!(status, 403);
    let no_csrf = dash
        .http
        .post(dash.app.url(&format!("/api/v1/installations/{A}/tokens")))
        .header(COOKIE, &alice.cookie)
        .json(&json!({ "name": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(no_csrf.status(), 403);

    let (status, created) = dash.create_token(&alice, A, "nightly export").await;
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_owned();
    let (_, listed) = dash
        .get_json(&format!("/api/v1/installations/{A}/tokens"), &alice)
        .await;
    assert_eq!(listed["tokens"][0]["name"], "nightly export");
    assert!(
        !listed.to_string().contains(&token),
        "the value is shown once"
    );
    let mut db = dash.app.db().await;
    let stored: String = sqlx::query_scalar("SELECT token_hash FROM api_tokens")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_ne!(stored, token, "only a hash is stored");

    let (status, rules) = dash
        .bearer(&format!("/api/v1/installations/{A}/rules"), &token)
        .await;
    assert_eq!(status, 200);
    assert_eq!(rules["rules"].as_array().unwrap().len(), 25);
    // Read-only: a token cannot create tokens.
    let write = dash
        .http
        .post(dash.app.url(&format!("/api/v1/installations/{A}/tokens")))
        .bearer_auth(&token)
        .json(&json!({ "name": "more" }))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 403);

    let revoke = dash
        .http
        .delete(dash.app.url(&format!(
            "/api/v1/installations/{A}/tokens/{}",
            created["id"]
        )))
        .header(COOKIE, &alice.cookie)
        .header("x-csrf-token", &alice.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 200);
    let (status, _) = dash
        .bearer(&format!("/api/v1/installations/{A}/rules"), &token)
        .await;
    assert_eq!(status, 401);
    let (_, audit) = dash
        .get_json(
            &format!("/api/v1/installations/{A}/audit?actor=alice"),
            &alice,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["api_token.revoked", "api_token.created"]);
}

#[tokio::test]
async fn the_api_filters_pages_by_cursor_and_names_bad_parameters() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let base = format!("/api/v1/installations/{A}");

    // Rules: all 25, R01 red (an open BLOCK violation), R05 overridden so yellow (seen today).
    let (_, rules) = dash.get_json(&format!("{base}/rules"), &bob).await;
    let rules = rules["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 25);
    let rule = |id: &str| rules.iter().find(|r| r["rule_id"] == id).unwrap().clone();
    assert_eq!(rule("R01")["status"], "red");
    assert_eq!(rule("R01")["open_violations"], 1);
    assert_eq!(rule("R05")["open_violations"], 0);
    assert_eq!(rule("R05")["status"], "yellow");
    assert_eq!(rule("R20")["status"], "green");

    // Violations: each once, with its state.
    let (_, all) = dash.get_json(&format!("{base}/violations"), &bob).await;
    let states: Vec<(String, String)> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["rule_id"].as_str().unwrap().to_owned(),
                v["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(states.len(), 4, "{states:?}");
    for (rule, state) in [
        ("R01", "open"),
        ("R05", "overridden"),
        ("R07", "open"),
        ("R12", "resolved"),
    ] {
        assert!(
            states.contains(&(rule.to_owned(), state.to_owned())),
            "{rule} {state}: {states:?}"
        );
    }
    for (query, expected) in [
        ("state=open", 2),
        ("state=resolved", 1),
        ("tier=BLOCK", 2),
        ("rule=r07", 1),
        ("path=deploy%2F", 1),
        ("author=bob&pr=7", 4),
        ("author=mallory", 0),
        ("repository=acme%2Fwidgets", 4),
        ("from=2000-01-01&to=2000-01-02", 0),
    ] {
        let (status, page) = dash
            .get_json(&format!("{base}/violations?{query}"), &bob)
            .await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(page["items"].as_array().unwrap().len(), expected, "{query}");
    }

    // Keyset pages: newest first, each row once, then no cursor.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("{base}/violations?limit=3&cursor={c}"),
            None => format!("{base}/violations?limit=3"),
        };
        let (_, page) = dash.get_json(&path, &bob).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    sorted.dedup();
    assert_eq!(seen, sorted, "pages are disjoint and in order");
    assert_eq!(seen.len(), 4);

    // Bad input names the parameter.
    for (query, parameter) in [
        ("colour=red", "colour"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("state=closed", "state"),
        ("limit=0", "limit"),
    ] {
        let (status, body) = dash
            .get_json(&format!("{base}/violations?{query}"), &bob)
            .await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(body["parameter"], parameter, "{query}: {body}");
        assert!(body["error"].as_str().unwrap().contains(parameter));
    }
    let (status, body) = dash
        .get_json(
            &format!("{base}/exports/violations.csv?from=2026-01-01"),
            &bob,
        )
        .await;
    assert_eq!((status, body["parameter"].as_str()), (400, Some("to")));

    // The pull request: every evaluation with its violations, overrides with approvers.
    let (status, pr) = dash
        .get_json(&format!("{base}/repos/{}/pulls/7", A_REPO.1), &bob)
        .await;
    assert_eq!(status, 200);
    let evaluations = pr["evaluations"].as_array().unwrap();
    assert_eq!(evaluations.len(), 2);
    assert_eq!(evaluations[0]["head_sha"], "head2");
    assert_eq!(evaluations[0]["score"], 77);
    assert_eq!(evaluations[0]["violations"].as_array().unwrap().len(), 3);
    assert_eq!(evaluations[1]["violations"].as_array().unwrap().len(), 4);
    assert_eq!(pr["overrides"][0]["approvers"], json!(["carol"]));

    // Alerts, by status.
    let (_, alerts) = dash
        .get_json(&format!("{base}/alerts?status=open"), &bob)
        .await;
    assert_eq!(alerts["items"][0]["rule_id"], "R01");
    let (_, alerts) = dash
        .get_json(&format!("{base}/alerts?status=resolved"), &bob)
        .await;
    assert_eq!(alerts["items"], json!([]));
}

#[tokio::test]
async fn exports_stream_csv_and_json_for_a_date_range() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let base = format!("/api/v1/installations/{A}/exports");
    let range = "from=2000-01-01&to=2100-12-31";

    let response = dash
        .get(&format!("{base}/violations.csv?{range}"), Some(&bob.cookie))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "id,repository,pr_number,author,rule_id,tier,path,line,state,message,fingerprint,created_at"
    );
    assert_eq!(lines.len(), 5, "{csv}");

    let json: Value = dash
        .get(
            &format!("{base}/violations.json?{range}&state=open"),
            Some(&bob.cookie),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);
    let empty: Value = dash
        .get(
            &format!("{base}/violations.json?from=2000-01-01&to=2000-01-02"),
            Some(&bob.cookie),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty, json!([]));

    // Evaluations and the audit log go through the same streamer.
    for (file, header, lines) in [
        (
            "evaluations.csv",
            "id,repository,pr_number,head_sha,status,score,verdict,threshold,block_count,\
             override_count,warning_count,policy_digest,config_digest,created_at,completed_at",
            3,
        ),
        (
            "audit.csv",
            "id,actor,action,target,before_state,after_state,created_at",
            3,
        ),
    ] {
        let response = dash
            .get(&format!("{base}/{file}?{range}"), Some(&bob.cookie))
            .await;
        assert_eq!(response.status(), 200, "{file}");
        let disposition = response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            disposition.contains(&file.replace('.', &format!("-{A}."))),
            "{disposition}"
        );
        let csv = response.text().await.unwrap();
        assert_eq!(csv.lines().next(), Some(header), "{file}");
        assert_eq!(csv.lines().count(), lines, "{file}: {csv}");
    }
    let evaluations: Value = dash
        .get(
            &format!("{base}/evaluations.json?{range}&verdict=fail&pr=7"),
            Some(&bob.cookie),
        )
        .await
        .json()
        .await
        .unwrap();
    let shas: Vec<&str> = evaluations
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["head_sha"].as_str().unwrap())
        .collect();
    assert_eq!(shas, ["head2", "head1"]);
    let audit: Value = dash
        .get(
            &format!("{base}/audit.json?{range}&actor=carol"),
            Some(&bob.cookie),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["action"], "override.approved");
    assert_eq!(audit.as_array().unwrap().len(), 1);
    // A range is required, and other filters are checked as the lists check them.
    for (query, parameter) in [
        ("evaluations.csv?from=2026-01-01", "to"),
        ("audit.json?to=2026-01-01", "from"),
        (
            "evaluations.json?from=2026-01-01&to=2026-02-01&verdict=maybe",
            "verdict",
        ),
        ("audit.csv?from=2026-01-01&to=2026-02-01&rule=R01", "rule"),
    ] {
        let (status, body) = dash.get_json(&format!("{base}/{query}"), &bob).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some(parameter)),
            "{query}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Trends, rules, pull requests and evaluations

/// Merge-group evaluations of every kind the store holds (failed on what the combination
/// introduced, trusted and merged since, still running) in the API and on the pull requests
/// page, with the count of groups blocked in the queue.
#[tokio::test]
async fn queue_evaluations_are_listed_apart_with_the_groups_blocked_in_queue() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let base = format!("/api/v1/installations/{A}");
    let (status, queue) = dash
        .get_json(&format!("{base}/queue-evaluations"), &bob)
        .await;
    assert_eq!(status, 200, "{queue}");
    assert_eq!(queue["blocked_in_queue"], 1);
    let items = queue["items"].as_array().unwrap();
    let heads: Vec<&str> = items
        .iter()
        .map(|g| g["head_sha"].as_str().unwrap())
        .collect();
    assert_eq!(heads, ["group3", "group2", "group1"], "newest first");
    assert_eq!(items[2]["verdict"], "fail");
    assert_eq!(items[2]["introduced_count"], 1);
    assert_eq!(items[2]["pull_requests"], json!([7]));
    assert_eq!(items[1]["mode"], "trust_pull_requests");
    assert_eq!(items[1]["destroyed_reason"], "merged");
    assert_eq!(items[0]["status"], "in_progress");
    let (_, failed) = dash
        .get_json(&format!("{base}/queue-evaluations?verdict=fail"), &bob)
        .await;
    assert_eq!(failed["items"].as_array().unwrap().len(), 1);
    let (status, _) = dash
        .get_json(&format!("{base}/queue-evaluations?author=bob"), &bob)
        .await;
    assert_eq!(status, 400, "groups have no author");

    let (status, page) = dash
        .page(&format!("/dashboard/installations/{A}/pulls"), &bob)
        .await;
    assert_eq!(status, 200);
    let queue = &page[page
        .find("id=\"merge-queue\"")
        .expect("a merge queue section")..];
    assert!(
        queue.contains("Blocked in queue: <strong class=\"blocked-in-queue\">1</strong>"),
        "{queue}"
    );
    assert!(queue.contains("blocked in queue"), "{queue}");
    assert!(queue.contains("their own results"), "{queue}");
    assert!(queue.contains("in_progress"), "{queue}");
    assert!(queue.contains("(merged)"), "{queue}");
    assert!(
        !queue.contains("globex"),
        "another installation's groups stay hidden"
    );
}

#[tokio::test]
async fn trends_rules_pulls_and_evaluations_answer_from_the_seeded_data() {
    let dash = dashboard().await;
    let pool = tollgate::store::connect(&dash.app.database_url)
        .await
        .unwrap();
    roll_up_seeded_days(&pool).await;
    let bob = dash.log_in("bob").await;
    let base = format!("/api/v1/installations/{A}");

    // Trends: one entry a day, oldest first, today last; the seeded days from the rollups.
    let (status, trends) = dash.get_json(&format!("{base}/trends?days=7"), &bob).await;
    assert_eq!(status, 200, "{trends}");
    assert_eq!(trends["days"], 7);
    let series = trends["series"].as_array().unwrap();
    assert_eq!(series.len(), 7);
    assert_eq!(series[6]["day"], days_ago(0).to_string());
    assert_eq!(series[0]["day"], days_ago(6).to_string());
    let day = |back: u64| {
        series
            .iter()
            .find(|d| d["day"] == days_ago(back).to_string())
            .unwrap()
            .clone()
    };
    let two_days_ago = day(2);
    assert_eq!(two_days_ago["evaluations"], 1);
    assert_eq!(two_days_ago["failed"], 1);
    assert_eq!(two_days_ago["average_score"], 67.0);
    assert_eq!(two_days_ago["min_score"], 67);
    assert_eq!(
        (
            &two_days_ago["block"],
            &two_days_ago["override"],
            &two_days_ago["warning"]
        ),
        (&json!(2), &json!(2), &json!(0))
    );
    assert_eq!(two_days_ago["new_violations"], 4);
    let yesterday = day(1);
    assert_eq!(yesterday["average_score"], 77.0);
    assert_eq!(
        (&yesterday["block"], &yesterday["override"]),
        (&json!(2), &json!(1))
    );
    assert_eq!(yesterday["new_violations"], 0, "all seen the day before");
    assert_eq!(day(0)["evaluations"], 0);
    assert_eq!(day(0)["average_score"], Value::Null);
    let rules: Vec<(String, i64, i64)> = trends["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule_id"].as_str().unwrap().to_owned(),
                r["violations"].as_i64().unwrap(),
                r["new_violations"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("R01".to_owned(), 2, 1),
            ("R05".to_owned(), 2, 1),
            ("R07".to_owned(), 2, 1),
            ("R12".to_owned(), 1, 1)
        ]
    );
    // Narrowed to a rule: its violations only (evaluations stay those of every rule).
    let (_, narrowed) = dash
        .get_json(&format!("{base}/trends?days=30&rule=r12"), &bob)
        .await;
    let series = narrowed["series"].as_array().unwrap();
    assert_eq!(series.len(), 30);
    let total = |key: &str| series.iter().map(|d| d[key].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        (total("override"), total("block"), total("evaluations")),
        (1, 0, 2)
    );

    // Today is computed live: an evaluation completed now shows without a rollup.
    let mut db = dash.app.db().await;
    sqlx::query(
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status,
             score, verdict, threshold, block_count, override_count, warning_count, policy_digest,
             completed_at)
         VALUES ($1, $2, 8, 'head8', 'completed', 100, 'pass', 70, 0, 0, 0, 'pd1', now())",
    )
    .bind(A)
    .bind(A_REPO.0)
    .execute(&mut db)
    .await
    .unwrap();
    let (_, live) = dash.get_json(&format!("{base}/trends?days=7"), &bob).await;
    assert_eq!(live["series"][6]["evaluations"], 1);
    assert_eq!(live["series"][6]["passed"], 1);
    assert_eq!(live["series"][6]["average_score"], 100.0);

    // One rule: definition, status, history from the rollups, where it is violated most.
    let (status, rule) = dash.get_json(&format!("{base}/rules/r01"), &bob).await;
    assert_eq!(status, 200, "{rule}");
    assert_eq!(rule["rule"]["rule_id"], "R01");
    assert_eq!(rule["rule"]["status"], "red");
    assert_eq!(rule["rule"]["open_violations"], 1);
    assert!(!rule["rule"]["remediation"].as_str().unwrap().is_empty());
    let history = rule["history"].as_array().unwrap();
    assert_eq!(history.len(), 90);
    assert_eq!(
        history[87],
        json!({ "day": days_ago(2).to_string(), "violations": 1, "new_violations": 1 })
    );
    assert_eq!(history[88]["violations"], 1);
    assert_eq!(
        rule["top_paths"],
        json!([{ "name": "src/config.rs", "violations": 1 }])
    );
    let (status, _) = dash.get_json(&format!("{base}/rules/R99"), &bob).await;
    assert_eq!(status, 404);

    // Pull requests with their latest completed evaluation, newest first.
    let (status, pulls) = dash.get_json(&format!("{base}/pulls"), &bob).await;
    assert_eq!(status, 200);
    let items = pulls["items"].as_array().unwrap();
    let numbers: Vec<i64> = items
        .iter()
        .map(|p| p["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [8, 7]);
    assert_eq!(items[1]["score"], 77);
    assert_eq!(items[1]["verdict"], "fail");
    assert_eq!(items[1]["title"], "feat: things");
    assert_eq!(items[1]["author"], "bob");
    for (query, expected) in [
        ("verdict=fail", vec![7]),
        ("verdict=pass", vec![8]),
        ("author=bob", vec![7]),
        ("repository=acme%2Fwidgets&limit=1", vec![8]),
    ] {
        let (_, page) = dash.get_json(&format!("{base}/pulls?{query}"), &bob).await;
        let numbers: Vec<i64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["number"].as_i64().unwrap())
            .collect();
        assert_eq!(numbers, expected, "{query}");
    }
    let (_, first) = dash.get_json(&format!("{base}/pulls?limit=1"), &bob).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = dash
        .get_json(&format!("{base}/pulls?limit=1&cursor={cursor}"), &bob)
        .await;
    assert_eq!(second["items"][0]["number"], 7);
    assert_eq!(second["next_cursor"], Value::Null);

    // Evaluations, newest first, by keyset pages.
    let mut shas = Vec::new();
    let mut path = format!("{base}/evaluations?pr=7&limit=1");
    loop {
        let (status, page) = dash.get_json(&path, &bob).await;
        assert_eq!(status, 200, "{page}");
        shas.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["head_sha"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => path = format!("{base}/evaluations?pr=7&limit=1&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(shas, ["head2", "head1"]);
    for (query, expected) in [
        ("verdict=pass", 1),
        ("verdict=fail&repository=acme%2Fwidgets", 2),
        ("from=2000-01-01&to=2000-01-02", 0),
    ] {
        let (_, page) = dash
            .get_json(&format!("{base}/evaluations?{query}"), &bob)
            .await;
        assert_eq!(page["items"].as_array().unwrap().len(), expected, "{query}");
    }

    // Bad input names the parameter.
    for (path, parameter) in [
        ("trends?days=14", "days"),
        ("trends?days=7&tier=BLOCK", "tier"),
        ("rules/R01?days=7", "days"),
        ("pulls?verdict=maybe", "verdict"),
        ("pulls?cursor=x", "cursor"),
        ("evaluations?pr=seven", "pr"),
        ("evaluations?from=2026-02-01&to=2026-01-01", "to"),
        ("evaluations?limit=501", "limit"),
    ] {
        let (status, body) = dash.get_json(&format!("{base}/{path}"), &bob).await;
        assert_eq!(
            (status, body["parameter"].as_str()),
            (400, Some(parameter)),
            "{path}: {body}"
        );
    }
}

/// The rows of both rollup tables, in a stable order.
async fn rollup_rows(db: &mut PgConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT t::text FROM (
             SELECT installation_id, repository_id, day, rule_id, tier, found, new, NULL::float8
             FROM trend_rule_days
             UNION ALL
             SELECT installation_id, repository_id, day, '', '', evaluations, passed, average_score
             FROM trend_score_days
         ) t ORDER BY 1",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test]
async fn rollups_are_idempotent_and_two_replicas_roll_each_day_up_once() {
    let database_url = test_app::fresh_database().await;
    let pool = tollgate::store::connect(&database_url).await.unwrap();
    tollgate::store::migrate(&pool).await.unwrap();
    let mut db = PgConnection::connect(&database_url).await.unwrap();
    seed(&mut db, A, A_ACCOUNT, A_REPO).await;
    seed(&mut db, B, B_ACCOUNT, B_REPO).await;

    roll_up_seeded_days(&pool).await;
    let once = rollup_rows(&mut db).await;
    // Per installation: four rule rows two days ago, three yesterday, and a score row a day.
    assert_eq!(once.len(), 2 * (4 + 3 + 2), "{once:#?}");
    roll_up_seeded_days(&pool).await;
    let (first, second) = tokio::join!(
        roll_up_day(&pool, days_ago(1)),
        roll_up_day(&pool, days_ago(1))
    );
    first.unwrap();
    second.unwrap();
    assert_eq!(
        rollup_rows(&mut db).await,
        once,
        "the same rows, however often"
    );

    // Two replicas' daily runs: each day is rolled up by one of them.
    sqlx::query("TRUNCATE trend_rule_days, trend_score_days, trend_runs")
        .execute(&mut db)
        .await
        .unwrap();
    let today = days_ago(0);
    let (a, b) = tokio::join!(
        tollgate::operations::trends::run_daily(&pool, today, "replica-a"),
        tollgate::operations::trends::run_daily(&pool, today, "replica-b"),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut all: Vec<NaiveDate> = a.iter().chain(&b).copied().collect();
    all.sort();
    let expected: Vec<NaiveDate> = (1..=7).rev().map(days_ago).collect();
    assert_eq!(all, expected, "every day once: {a:?} {b:?}");
    assert_eq!(rollup_rows(&mut db).await, once);
    let finished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM trend_runs WHERE finished_at IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(finished, 7);
    let again = tollgate::operations::trends::run_daily(&pool, today, "replica-a")
        .await
        .unwrap();
    assert_eq!(again, Vec::<NaiveDate>::new(), "nothing left to roll up");

    // The store functions the pages use, in a tenant transaction.
    let mut tx = begin_tenant(&pool, B).await.unwrap();
    let series = trends::trend_series(&mut tx, &TrendFilter::default(), 7, today)
        .await
        .unwrap();
    assert_eq!(series.len(), 7);
    assert_eq!(series[4].day, days_ago(2));
    assert_eq!((series[4].block, series[4].evaluations), (2, 1));
    let by_rule = trends::violations_by_rule(&mut tx, &TrendFilter::default(), 7, today)
        .await
        .unwrap();
    assert_eq!(by_rule.len(), 4);
    tx.commit().await.unwrap();

    // Rollups are kept as long as RETENTION_TRENDS_DAYS says.
    sqlx::query("UPDATE trend_rule_days SET day = day - 400")
        .execute(&mut db)
        .await
        .unwrap();
    let counts = tollgate::operations::retention::apply(
        &pool,
        &tollgate::operations::retention::RetentionSettings::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        counts[&tollgate::store::RetentionCategory::RuleTrends],
        u64::try_from(2 * (4 + 3)).unwrap()
    );
    assert_eq!(counts[&tollgate::store::RetentionCategory::ScoreTrends], 0);
}

/// Sends `path` with the cookie until the rate limit refuses it: how many passed, and the
/// refusal's `Retry-After` and body.
async fn exhaust_rate_limit(dash: &Dashboard, path: &str, cookie: &str) -> (u32, u64, String) {
    for passed in 0..300 {
        let response = dash.get(path, Some(cookie)).await;
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry_after));
            return (passed, retry_after, response.text().await.unwrap());
        }
        assert_eq!(response.status(), 200, "{path}");
    }
    panic!("{path}: the limit was never reached");
}

#[tokio::test]
async fn more_than_a_hundred_requests_a_minute_are_refused_with_retry_after() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let alice = dash.log_in("alice").await;
    // The login itself read /api/v1/me once. The bucket refills a request every 0.6 s, so a
    // slow machine may get a few more through before the refusal.
    let (passed, _, _) = exhaust_rate_limit(&dash, "/api/v1/me", &bob.cookie).await;
    assert!(passed + 1 >= 100, "only {passed} requests passed");
    let (status, _) = dash.get_json("/api/v1/me", &alice).await;
    assert_eq!(status, 200, "another user is not limited");
}

// ---------------------------------------------------------------------------------------------
// The OpenAPI description, against real answers

#[tokio::test]
async fn every_endpoint_answers_as_the_openapi_description_says() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let (_, created) = dash.create_token(&alice, A, "for the check").await;
    let (_, alerts) = dash
        .get_json(&format!("/api/v1/installations/{A}/alerts"), &alice)
        .await;
    let alert_id = alerts["items"][0]["id"].to_string();
    let mut db = dash.app.db().await;
    let override_id: i64 =
        sqlx::query_scalar("SELECT id FROM override_requests WHERE installation_id = $1")
            .bind(A)
            .fetch_one(&mut db)
            .await
            .unwrap();
    let document: Value = dash
        .get("/api/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let components = document["components"].clone();
    let validate = |path: &str, status: &str, body: &Value, schema: &Value| {
        let mut schema = schema.clone();
        schema["components"] = components.clone();
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|e| panic!("{path}: bad schema: {e}"));
        let errors: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{path} {status}: {errors:#?}\n{body:#}");
    };
    let paths = document["paths"].as_object().unwrap();
    let mut checked = 0;
    for (template, operations) in paths {
        let path = template
            .replace("{installation}", &A.to_string())
            .replace("{owner}/{repo}", A_REPO.1)
            .replace("{number}", "7")
            .replace("{token}", &created["id"].to_string())
            .replace("{alert}", &alert_id)
            .replace("{rule}", "R01")
            .replace("{override}", &override_id.to_string());
        for (method, operation) in operations.as_object().unwrap() {
            // Only the parameters the description requires: every other one must be optional.
            let query: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| match p["name"].as_str() {
                    Some("from") => "from=2000-01-01".to_owned(),
                    Some("to") => "to=2100-01-01".to_owned(),
                    other => panic!("{method} {path}: no test value for {other:?}"),
                })
                .collect();
            let url = dash.app.url(&format!("{path}?{}", query.join("&")));
            let request = match method.as_str() {
                "get" => dash.http.get(url),
                "post" => dash.http.post(url).json(&json!({ "name": "openapi" })),
                "delete" => dash.http.delete(url),
                other => panic!("undocumented method {other}"),
            };
            let response = request
                .header(COOKIE, &alice.cookie)
                .header("x-csrf-token", &alice.csrf)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16().to_string();
            if method == "get" {
                assert_eq!(status, "200", "{method} {path}?{}", query.join("&"));
            }
            let answer = &operation["responses"][&status];
            assert!(
                answer.is_object(),
                "{method} {path}: status {status} is not documented"
            );
            let content = answer["content"].as_object().unwrap();
            let (content_type, media) = content.iter().next().unwrap();
            let text = response.text().await.unwrap();
            if content_type == "application/json" {
                let body: Value = serde_json::from_str(&text).unwrap();
                validate(&path, &status, &body, &media["schema"]);
            } else {
                assert!(text.starts_with("id,"), "{path}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 25, "every documented operation was called");
    // Error answers match the Error schema too.
    let (status, body) = dash
        .get_json(
            &format!("/api/v1/installations/{A}/violations?bogus=1"),
            &alice,
        )
        .await;
    assert_eq!(status, 400);
    validate(
        "violations",
        "400",
        &body,
        &json!({ "$ref": "#/components/schemas/Error" }),
    );
}

#[tokio::test]
async fn without_a_session_key_the_dashboard_is_off_and_the_app_runs() {
    let github = FakeGithub::start(test_app::APP_ID, TEST_APP_KEY).await;
    let app = TestApp::start(&github.url()).await;
    let response = app.http.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn admins_acknowledge_alerts_and_requeue_evaluations_and_both_are_audited() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let bob = dash.log_in("bob").await;
    let base = format!("/api/v1/installations/{A}");
    let (_, alerts) = dash
        .get_json(&format!("{base}/alerts?status=open"), &alice)
        .await;
    let alert_id = alerts["items"][0]["id"].as_i64().unwrap();
    let post = |session: &Session, path: String| {
        dash.http
            .post(dash.app.url(&path))
            .header(COOKIE, &session.cookie)
            .header("x-csrf-token", &session.csrf)
            .send()
    };
    let acknowledge = format!("{base}/alerts/{alert_id}/acknowledge");
    assert_eq!(
        post(&bob, acknowledge.clone()).await.unwrap().status(),
        403,
        "viewers only read"
    );
    let done = post(&alice, acknowledge).await.unwrap();
    assert_eq!(done.status(), 200);
    assert_eq!(
        done.json::<Value>().await.unwrap()["status"],
        "acknowledged"
    );
    // B's alert through A's installation: not found.
    let mut db = dash.app.db().await;
    let b_alert: i64 = sqlx::query_scalar("SELECT id FROM alerts WHERE installation_id = $1")
        .bind(B)
        .fetch_one(&mut db)
        .await
        .unwrap();
    let tampered = post(&alice, format!("{base}/alerts/{b_alert}/acknowledge"))
        .await
        .unwrap();
    assert_eq!(tampered.status(), 404);
    let b_status: String = sqlx::query_scalar("SELECT status FROM alerts WHERE id = $1")
        .bind(b_alert)
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(b_status, "open");

    let requeue = post(
        &alice,
        format!("{base}/repos/{}/pulls/7/reevaluate", A_REPO.1),
    )
    .await
    .unwrap();
    assert_eq!(requeue.status(), 202);
    let queued: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE kind = 'evaluate_pr' AND dedup_key = $1",
    )
    .bind(format!("evaluate:{}:7", A_REPO.0))
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert_eq!(queued, 1);
    let tampered = post(
        &alice,
        format!("{base}/repos/{}/pulls/7/reevaluate", B_REPO.1),
    )
    .await
    .unwrap();
    assert_eq!(tampered.status(), 404);

    let (_, audit) = dash
        .get_json(&format!("{base}/audit?actor=alice"), &alice)
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["pull_request.reevaluation_requested", "alert.acknowledged"]
    );
}

#[tokio::test]
async fn logins_and_teams_listed_under_dashboard_admins_administer() {
    let dash = dashboard().await;
    for (login, id) in [("dave", 4), ("erin", 5)] {
        dash.github.add_user(login, id);
        dash.github
            .give_installation_access(login, A as u64, A_ACCOUNT, "Organization");
        dash.github.set_org_role(A_ACCOUNT, login, "member");
    }
    dash.github.add_team_member(A_ACCOUNT, "security", "erin");
    let mut db = dash.app.db().await;
    sqlx::query("INSERT INTO installation_configs (installation_id, content) VALUES ($1, $2)")
        .bind(A)
        .bind("dashboard:\n  admins: [dave, acme/security]\n")
        .execute(&mut db)
        .await
        .unwrap();
    for (login, role) in [("dave", "admin"), ("erin", "admin"), ("bob", "viewer")] {
        let session = dash.log_in(login).await;
        let (_, me) = dash.get_json("/api/v1/me", &session).await;
        assert_eq!(me["installations"][0]["role"], role, "{login}");
    }
    dash.github.assert_clean();
}

// ---------------------------------------------------------------------------------------------
// Pages, live updates and override decisions

#[tokio::test]
async fn pages_show_rules_violations_a_pull_request_alerts_and_the_audit_log() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let base = format!("/dashboard/installations/{A}");

    let (status, index) = dash.page("/dashboard/", &bob).await;
    assert_eq!(status, 200);
    assert!(index.contains(&format!("href=\"{base}/\"")), "{index}");

    let (status, overview) = dash.page(&format!("{base}/"), &bob).await;
    assert_eq!(status, 200, "{overview}");
    assert_eq!(overview.matches("class=\"status status-").count(), 25);
    assert!(overview.contains("status-red"), "R01 has an open BLOCK");
    assert!(overview.contains("Queue: 0 waiting"), "the health strip");
    assert!(overview.contains("Slack: <span class=\"warn\">off</span>"));
    assert!(overview.contains("data-events=\"/dashboard/installations/77/events\""));
    assert!(!overview.contains("globex"), "nothing of installation B");

    let (status, list) = dash
        .page(&format!("{base}/violations?rule=R01&state=open"), &bob)
        .await;
    assert_eq!(status, 200);
    assert!(list.contains("AWS key") && !list.contains("privileged container"));
    assert!(list.contains("value=\"R01\""), "the form keeps the filter");
    let (_, first_page) = dash.page(&format!("{base}/violations?limit=2"), &bob).await;
    assert!(first_page.contains("rel=\"next\""), "{first_page}");
    assert!(first_page.contains("limit=2&amp;cursor="));
    let (_, ranged) = dash
        .page(
            &format!("{base}/violations?from=2020-01-01&to=2099-01-01"),
            &bob,
        )
        .await;
    assert!(ranged.contains("exports/violations.csv?from=2020-01-01&amp;to=2099-01-01"));

    let (status, pr) = dash
        .page(&format!("{base}/repos/{}/pulls/7", A_REPO.1), &bob)
        .await;
    assert_eq!(status, 200, "{pr}");
    let why = &pr[pr.find("class=\"why").unwrap()..pr.find("<h2>Overrides").unwrap()];
    assert!(why.contains("Failed: score 77 (threshold 70)."), "{why}");
    assert!(
        why.contains("R01 (BLOCK) in src/config.rs:10: AWS key"),
        "{why}"
    );
    assert!(!why.contains("R05"), "R05 is overridden: {why}");
    assert!(pr.contains("a reviewed exception") && pr.contains("carol"));
    assert!(pr.contains(&format!("{}/{}/pull/7", dash.github.url(), A_REPO.1)));
    assert_eq!(pr.matches("class=\"evaluation\"").count(), 2);
    assert!(!pr.contains("Re-evaluate"), "bob is a viewer");

    let (status, alerts) = dash.page(&format!("{base}/alerts?status=open"), &bob).await;
    assert_eq!(status, 200);
    assert!(alerts.contains("R01") && !alerts.contains("Acknowledge</button>"));
    let (status, audit) = dash.page(&format!("{base}/audit?actor=carol"), &bob).await;
    assert_eq!(status, 200);
    assert!(audit.contains("override.approved") && !audit.contains("override.requested"));

    // Admins get the action buttons.
    let alice = dash.log_in("alice").await;
    let (_, pr) = dash
        .page(&format!("{base}/repos/{}/pulls/7", A_REPO.1), &alice)
        .await;
    assert!(pr.contains("Re-evaluate</button>"));
    let (_, alerts) = dash.page(&format!("{base}/alerts"), &alice).await;
    assert!(alerts.contains("Acknowledge</button>"));

    let script = dash.get("/dashboard/assets/dashboard.js", None).await;
    assert_eq!(script.status(), 200);
    assert!(script.text().await.unwrap().contains("EventSource"));
}

#[tokio::test]
async fn pages_refuse_bad_filters_other_installations_and_strangers() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let base = format!("/dashboard/installations/{A}");
    let (status, page) = dash
        .page(&format!("{base}/violations?tier=CRITICAL&rule=R01"), &bob)
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("tier: expected one of BLOCK, OVERRIDE, WARNING"),
        "{page}"
    );
    assert!(
        page.contains("value=\"R01\""),
        "the form keeps what was typed"
    );
    let (status, page) = dash
        .page(&format!("{base}/audit?from=yesterday"), &bob)
        .await;
    assert_eq!(status, 400);
    assert!(page.contains("from: expected a date"));
    let (status, _) = dash.page(&format!("{base}/alerts?colour=red"), &bob).await;
    assert_eq!(status, 400);

    for path in [
        format!("/dashboard/installations/{B}/"),
        format!("/dashboard/installations/{B}/violations"),
        format!("/dashboard/installations/{B}/events"),
        format!("/dashboard/installations/{B}/repos/{}/pulls/7", B_REPO.1),
        format!("{base}/repos/{}/pulls/7", B_REPO.1),
    ] {
        let (status, page) = dash.page(&path, &bob).await;
        assert_eq!(status, 404, "{path}");
        assert!(!page.contains("secret-plans") || path.contains("secret-plans"));
    }
    let stranger = dash.get(&format!("{base}/"), None).await;
    assert_eq!(stranger.status(), 303);
    assert_eq!(location(&stranger), "/dashboard/login");
    let forged = dash
        .get(&format!("{base}/"), Some("tollgate_session=forged.value"))
        .await;
    assert_eq!(location(&forged), "/dashboard/login");
}

/// Reads an event stream until an `update` event arrives; its data.
async fn next_update(response: &mut reqwest::Response, seen: &mut String) -> Value {
    loop {
        if let Some(start) = seen.find("event: update\ndata: ") {
            let rest = &seen[start + "event: update\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                let data: Value = serde_json::from_str(&rest[..end]).unwrap();
                *seen = rest[end..].to_owned();
                return data;
            }
        }
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(20), response.chunk())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_new_evaluation_is_pushed_to_the_installations_event_stream_only() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let mut stream = dash
        .get(
            &format!("/dashboard/installations/{A}/events"),
            Some(&bob.cookie),
        )
        .await;
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    // Let the stream subscribe before anything happens (the first keep-alive or nothing).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut db = dash.app.db().await;
    for (installation, repo) in [(B, B_REPO.0), (A, A_REPO.0)] {
        sqlx::query(
            "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status,
                 score, verdict, threshold, block_count, override_count, warning_count,
                 policy_digest, completed_at)
             VALUES ($1, $2, 7, 'head3', 'completed', 100, 'pass', 70, 0, 0, 0, 'pd1', now())",
        )
        .bind(installation)
        .bind(repo)
        .execute(&mut db)
        .await
        .unwrap();
    }
    let mut seen = String::new();
    let event = next_update(&mut stream, &mut seen).await;
    assert_eq!(
        event,
        json!({ "installation_id": A, "kind": "evaluation", "repository_id": A_REPO.0, "pr_number": 7 }),
        "B's evaluation came first but is not A's to see"
    );
}

#[tokio::test]
async fn admins_approve_and_reject_pending_overrides_from_the_dashboard() {
    let dash = dashboard().await;
    dash.github.add_installation(A as u64);
    dash.github.add_repo(A as u64, A_ACCOUNT, "widgets");
    dash.github
        .set_permission(A_ACCOUNT, "widgets", "alice", "admin", "admin");
    let mut db = dash.app.db().await;
    let pending: Vec<i64> = sqlx::query_scalar(
        "INSERT INTO override_requests (installation_id, repository_id, pr_number, head_sha,
             status, requested_by, reason, scope_rules, fingerprints, violations, needs_approval,
             settings)
         VALUES ($1, $2, 7, 'head2', 'pending', 'bob', 'the key is a test value', '{R01}',
                 ARRAY['fp-key-' || $1], '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}'),
                ($1, $2, 7, 'head2', 'pending', 'bob', 'second thoughts', '{R01}',
                 ARRAY['fp-key-' || $1], '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}')
         RETURNING id",
    )
    .bind(A)
    .bind(A_REPO.0)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let alice = dash.log_in("alice").await;
    let bob = dash.log_in("bob").await;
    let api = format!("/api/v1/installations/{A}/overrides");

    let (_, pr) = dash
        .page(
            &format!("/dashboard/installations/{A}/repos/{}/pulls/7", A_REPO.1),
            &alice,
        )
        .await;
    assert!(
        pr.contains(&format!("{api}/{}/approve", pending[0])),
        "{pr}"
    );

    let (status, _) = dash
        .post_json(&format!("{api}/{}/approve", pending[0]), &bob, json!({}))
        .await;
    assert_eq!(status, 403, "viewers only read");
    let (status, _) = dash
        .post_json(&format!("{api}/{}/approve", pending[0]), &alice, json!({}))
        .await;
    assert_eq!(status, 202);
    let (status, _) = dash
        .post_json(
            &format!("{api}/{}/reject", pending[1]),
            &alice,
            json!({ "reason": "not a test value" }),
        )
        .await;
    assert_eq!(status, 202);
    dash.app.settle().await;

    let decided: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT status, decided_by, decision_note FROM override_requests WHERE id = ANY($1)
         ORDER BY id",
    )
    .bind(&pending)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert_eq!(decided[0].0, "approved");
    assert_eq!(decided[0].1.as_deref(), Some("alice"));
    assert_eq!(decided[1].0, "rejected");
    assert_eq!(decided[1].2.as_deref(), Some("not a test value"));
    let (status, answer) = dash
        .post_json(&format!("{api}/{}/approve", pending[0]), &alice, json!({}))
        .await;
    assert_eq!(status, 409, "{answer}");

    // Another installation's request: not found, and left alone.
    let b_request: i64 =
        sqlx::query_scalar("SELECT id FROM override_requests WHERE installation_id = $1")
            .bind(B)
            .fetch_one(&mut db)
            .await
            .unwrap();
    let (status, _) = dash
        .post_json(&format!("{api}/{b_request}/reject"), &alice, json!({}))
        .await;
    assert_eq!(status, 404);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE installation_id = $1 AND actor = 'alice' ORDER BY id",
    )
    .bind(A)
    .fetch_all(&mut db)
    .await
    .unwrap();
    assert!(
        actions
            .iter()
            .filter(|a| *a == "override.decision_submitted")
            .count()
            == 2,
        "{actions:?}"
    );
    assert!(
        actions.contains(&"override.approved".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"override.rejected".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test]
async fn rule_trend_and_pull_request_list_pages_draw_from_the_rollups() {
    let dash = dashboard().await;
    let pool = tollgate::store::connect(&dash.app.database_url)
        .await
        .unwrap();
    roll_up_seeded_days(&pool).await;
    let bob = dash.log_in("bob").await;
    let base = format!("/dashboard/installations/{A}");

    let (status, rule) = dash.page(&format!("{base}/rules/r01"), &bob).await;
    assert_eq!(status, 200, "{rule}");
    assert!(rule.contains("Secret or token committed"), "{rule}");
    assert!(rule.contains("How to fix it") && rule.contains("Revoke or rotate"));
    assert!(rule.contains("/override R01 &lt;why&gt;"));
    assert!(rule.contains("<svg") && rule.contains("src/config.rs"));
    assert!(
        rule.contains(&format!("{}</a>", A_REPO.1)),
        "top repositories"
    );
    let (status, _) = dash.page(&format!("{base}/rules/R99"), &bob).await;
    assert_eq!(status, 404);

    for days in [7, 30, 90, 365] {
        let (status, trends) = dash.page(&format!("{base}/trends?days={days}"), &bob).await;
        assert_eq!(status, 200, "{trends}");
        assert!(
            trends.contains(&format!("2 evaluations in the last {days} days")),
            "{trends}"
        );
        assert_eq!(trends.matches("<svg").count(), 2);
    }
    let (_, by_rule) = dash.page(&format!("{base}/trends?rule=R05"), &bob).await;
    assert!(by_rule.contains("violation counts are of R05 only"));
    let (status, bad) = dash.page(&format!("{base}/trends?days=12"), &bob).await;
    assert_eq!(status, 400);
    assert!(bad.contains("days:"), "{bad}");

    let (status, pulls) = dash.page(&format!("{base}/pulls?verdict=fail"), &bob).await;
    assert_eq!(status, 200);
    assert!(pulls.contains(&format!("{}#7", A_REPO.1)) && pulls.contains("feat: things"));
    let (_, passing) = dash.page(&format!("{base}/pulls?verdict=pass"), &bob).await;
    assert!(passing.contains("No pull request matches."));
    pool.close().await;
}

/// Rows of every kind a page can show, beside the seeded ones: an audit entry of every action
/// (with states before and after), alerts in every state, override requests in every state with
/// approvals from every channel, evaluations in every status and jobs in every state.
async fn seed_every_kind_of_row(db: &mut PgConnection) {
    let actions = [
        "override.requested",
        "override.approval_added",
        "override.approved",
        "override.rejected",
        "override.cancelled",
        "override.expired",
        "override.denied",
        "override.decision_submitted",
        "override.decision_refused",
        "alert.raised",
        "alert.acknowledged",
        "alert.resolved",
        "alert.escalated",
        "digest.acknowledged",
        "digest.escalated",
        "api_token.created",
        "api_token.revoked",
        "pull_request.reevaluation_requested",
    ];
    for action in actions {
        sqlx::query(
            "INSERT INTO audit_log (installation_id, actor, action, target, before_state, after_state)
             VALUES ($1, 'alice', $2, 'thing:1', $3, $4), ($1, 'tollgate', $2, 'thing:2', NULL, $4),
                    ($1, 'slack:U1', $2, 'thing:3', $3, NULL)",
        )
        .bind(A)
        .bind(action)
        .bind(json!({ "status": "open", "note": "<b>\"quoted\"</b>" }))
        .bind(json!({ "status": "acknowledged", "by": ["alice"], "count": 2, "ok": true }))
        .execute(&mut *db)
        .await
        .unwrap();
    }
    for statement in [
        "INSERT INTO alerts (installation_id, repository_id, pr_number, rule_id, head_sha,
             fingerprints, violations, escalate_at, escalated_at, status, acknowledged_by,
             acknowledged_at, resolved_at)
         VALUES ($1, $2, 7, 'R05', 'head2', '{fp-a}', '[]', now(), now(), 'open', NULL, NULL, NULL),
                ($1, $2, 7, 'R02', 'head2', '{fp-b}', '[]', now(), NULL, 'acknowledged', 'alice', now(), NULL),
                ($1, $2, 7, 'R03', 'head2', '{fp-c}', '[]', now(), now(), 'acknowledged', 'email:x', now(), NULL),
                ($1, $2, 7, 'R04', 'head2', '{fp-d}', '[]', now(), NULL, 'resolved', NULL, NULL, now())",
        "INSERT INTO override_requests (installation_id, repository_id, pr_number, head_sha, status,
             requested_by, reason, scope_rules, fingerprints, violations, needs_approval, settings,
             decided_by, decision_note, decided_at)
         VALUES ($1, $2, 7, 'head2', 'pending', 'bob', 'pending one', '{}', '{fp-a}', '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}', NULL, NULL, NULL),
                ($1, $2, 7, 'head2', 'rejected', 'bob', 'rejected one', '{R01}', '{fp-b}', '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}', 'carol', 'no <way>', now()),
                ($1, $2, 7, 'head2', 'cancelled', 'bob', 'cancelled one', '{}', '{fp-c}', '[]', false, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}', 'bob', NULL, now()),
                ($1, $2, 7, 'head1', 'expired', 'bob', 'expired one', '{}', '{fp-d}', '[]', true, '{\"approvers\":[],\"slack_users\":{},\"min_reason_length\":10,\"required_approvals\":1}', NULL, NULL, now())",
        "INSERT INTO override_approvals (request_id, installation_id, approver, via, note)
         SELECT id, $1, v.approver, v.via, v.note FROM override_requests,
                (VALUES ('dave', 'slack', 'fine'), ('erin', 'dashboard', NULL)) AS v (approver, via, note)
         WHERE installation_id = $1 AND status = 'pending'",
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status,
             threshold, policy_digest, created_at)
         VALUES ($1, $2, 7, 'head3', 'superseded', 70, 'pd1', now() - interval '3 hours'),
                ($1, $2, 7, 'head4', 'error', 70, 'pd1', now() - interval '2 hours'),
                ($1, $2, 7, 'head5', 'in_progress', 70, 'pd1', now() - interval '1 hour')",
        "INSERT INTO jobs (kind, payload, installation_id, dedup_key, state)
         VALUES ('evaluate_pr', '{}', $1, 'every-kind-1', 'pending'),
                ('evaluate_pr', '{}', $1, 'every-kind-2', 'running'),
                ('evaluate_pr', '{}', $1, 'every-kind-3', 'failed')",
    ] {
        sqlx::query(statement)
            .bind(A)
            .bind(A_REPO.0)
            .execute(&mut *db)
            .await
            .unwrap_or_else(|e| panic!("seed failed: {e}\n{statement}"));
    }
}

/// Every page, unfiltered, for a viewer and an admin, with rows of every kind: a page that
/// cannot render one kind of row fails here (filtered views hide such rows).
#[tokio::test]
async fn every_page_renders_every_kind_of_row_unfiltered() {
    let dash = dashboard().await;
    let mut db = dash.app.db().await;
    seed_every_kind_of_row(&mut db).await;
    seed_more_violations(&dash.app, 5).await;
    let base = format!("/dashboard/installations/{A}");
    let mut paths = vec![
        "/dashboard/".to_owned(),
        format!("{base}/"),
        format!("{base}/violations"),
        format!("{base}/pulls"),
        format!("{base}/repos/{}/pulls/7", A_REPO.1),
        format!("{base}/repos/acme/gadgets/pulls/101"),
        format!("{base}/alerts"),
        format!("{base}/audit"),
        format!("{base}/trends"),
    ];
    paths.extend([7, 30, 90, 365].map(|days| format!("{base}/trends?days={days}")));
    paths.extend((1..=25).map(|n| format!("{base}/rules/R{n:02}")));
    for login in ["bob", "alice"] {
        let session = dash.log_in(login).await;
        for path in &paths {
            let (status, page) = dash.page(path, &session).await;
            assert_eq!(status, 200, "{login} {path}: {page}");
            assert!(!page.contains("could not render"), "{login} {path}");
        }
        let (_, audit) = dash.page(&format!("{base}/audit"), &session).await;
        assert!(audit.contains("alert.raised"), "{audit}");
        assert!(audit.contains(r#""status": "acknowledged""#), "{audit}");
        assert!(!audit.contains("<b>"), "states are escaped: {audit}");
        let (_, alerts) = dash.page(&format!("{base}/alerts"), &session).await;
        for status in ["open", "escalated", "acknowledged", "resolved"] {
            assert!(
                alerts.contains(&format!("<td>{status}</td>")),
                "{status}: {alerts}"
            );
        }
        let (_, pr) = dash
            .page(&format!("{base}/repos/{}/pulls/7", A_REPO.1), &session)
            .await;
        for status in ["pending", "approved", "rejected", "cancelled", "expired"] {
            assert!(pr.contains(&format!("<td>{status}</td>")), "{status}: {pr}");
        }
    }
}

#[tokio::test]
async fn pages_share_the_users_rate_limit_with_the_api() {
    let dash = dashboard().await;
    let bob = dash.log_in("bob").await;
    let alice = dash.log_in("alice").await;
    let (passed, _, page) = exhaust_rate_limit(&dash, "/dashboard/", &bob.cookie).await;
    assert!(passed >= 90, "only {passed} pages passed");
    assert!(page.contains("too many requests"), "{page}");
    let (status, _) = dash.get_json("/api/v1/me", &bob).await;
    assert_eq!(status, 429, "the API shares the page's bucket");
    let (status, _) = dash
        .page(&format!("/dashboard/installations/{A}/"), &alice)
        .await;
    assert_eq!(status, 200, "another user is not limited");
}

/// The dashboard acknowledges through the path the Slack button and the email link take: an
/// escalated alert's PagerDuty incident is acknowledged too, with the same dedup key.
#[tokio::test]
async fn a_dashboard_acknowledge_acknowledges_the_pagerduty_incident_too() {
    let dash = dashboard().await;
    let alice = dash.log_in("alice").await;
    let mut db = dash.app.db().await;
    let alert_id: i64 = sqlx::query_scalar(
        "INSERT INTO pagerduty_events (installation_id, alert_id, action, dedup_key, status)
         SELECT installation_id, id, 'trigger', 'tollgate-alert-' || id, 'sent' FROM alerts
         WHERE installation_id = $1 RETURNING alert_id",
    )
    .bind(A)
    .fetch_one(&mut db)
    .await
    .unwrap();
    let (status, body) = dash
        .post_json(
            &format!("/api/v1/installations/{A}/alerts/{alert_id}/acknowledge"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "acknowledged");
    let events: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, dedup_key FROM pagerduty_events WHERE alert_id = $1 ORDER BY id",
    )
    .bind(alert_id)
    .fetch_all(&mut db)
    .await
    .unwrap();
    let key = format!("tollgate-alert-{alert_id}");
    assert_eq!(
        events,
        [
            ("trigger".to_owned(), key.clone()),
            ("acknowledge".to_owned(), key)
        ]
    );
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'send_pagerduty'")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(queued, 1, "the acknowledge is sent by the PagerDuty job");
}

/// Serves installation A's config from acme/.github, as GitHub would.
fn serve_installation_config(dash: &Dashboard, content: &str) {
    dash.github.add_installation(A as u64);
    dash.github.add_repo(A as u64, A_ACCOUNT, ".github");
    dash.github
        .set_file(A_ACCOUNT, ".github", "main", "tollgate.yml", content);
}

/// Waits until the cached installation config of A satisfies `condition` (content, error).
async fn wait_for_cached_config(
    dash: &Dashboard,
    condition: impl Fn(Option<&str>, Option<&str>) -> bool,
) {
    let mut db = dash.app.db().await;
    for _ in 0..1500 {
        let row: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT content, error FROM installation_configs WHERE installation_id = $1",
        )
        .bind(A)
        .fetch_optional(&mut db)
        .await
        .unwrap();
        if let Some((content, error)) = &row
            && condition(content.as_deref(), error.as_deref())
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the installation config was not read as expected");
}

/// Marks A's cached config as stale, so the scheduler reads it again.
async fn expire_cached_config(dash: &Dashboard) {
    let mut db = dash.app.db().await;
    sqlx::query(
        "UPDATE installation_configs SET fetched_at = now() - interval '1 day'
         WHERE installation_id = $1",
    )
    .bind(A)
    .execute(&mut db)
    .await
    .unwrap();
}

/// With no Slack, email nor PagerDuty, the installation config is still read, so the admins it
/// lists administer.
#[tokio::test]
async fn dashboard_admins_apply_with_no_optional_channel() {
    let dash = dashboard().await;
    dash.github.add_user("dave", 4);
    dash.github
        .give_installation_access("dave", A as u64, A_ACCOUNT, "Organization");
    dash.github.set_org_role(A_ACCOUNT, "dave", "member");
    serve_installation_config(&dash, "dashboard:\n  admins: [dave]\n");
    wait_for_cached_config(&dash, |content, _| {
        content.is_some_and(|c| c.contains("dave"))
    })
    .await;
    let dave = dash.log_in("dave").await;
    let (_, me) = dash.get_json("/api/v1/me", &dave).await;
    assert_eq!(me["installations"][0]["role"], "admin");
}

/// One bad value does not throw the config away: the last valid one stays in force, and the
/// error shows on every page of the installation (the health strip).
#[tokio::test]
async fn an_invalid_installation_config_keeps_the_last_valid_one_and_says_why() {
    let dash = dashboard().await;
    dash.github.add_user("dave", 4);
    dash.github
        .give_installation_access("dave", A as u64, A_ACCOUNT, "Organization");
    dash.github.set_org_role(A_ACCOUNT, "dave", "member");
    serve_installation_config(&dash, "dashboard:\n  admins: [dave]\n");
    wait_for_cached_config(&dash, |content, _| content.is_some()).await;

    serve_installation_config(
        &dash,
        "alerts:\n  tier2: { send_at: 9am }\ndashboard:\n  admins: [dave]\n",
    );
    expire_cached_config(&dash).await;
    wait_for_cached_config(&dash, |_, error| error.is_some()).await;
    let dave = dash.log_in("dave").await;
    let (_, me) = dash.get_json("/api/v1/me", &dave).await;
    assert_eq!(me["installations"][0]["role"], "admin", "still in force");
    let (status, page) = dash
        .page(&format!("/dashboard/installations/{A}/"), &dave)
        .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("alerts.tier2.send_at") && page.contains("last valid"),
        "{page}"
    );
}
