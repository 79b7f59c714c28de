//! The real GitHub client against the fake GitHub: proves the fake speaks GitHub's wire format
//! and refuses what GitHub refuses, and that the client maps every answer to the right result.

mod support;

use serde_json::{Value, json};
use std::time::Duration;
use support::fake_github::{BOT_LOGIN, Failure, FakeGithub, PrSpec, file_entry};
use support::{TEST_APP_KEY, openapi, wait_until};
use tollgate::github::{
    Annotation, AnnotationLevel, AppCredentials, CheckOutput, CheckRunCreate, CheckRunUpdate,
    CheckStatus, CollaboratorPermission, Conclusion, GithubApp, GithubError, InstallationClient,
    Pacing, Reaction, TeamMembership, WriteBudget,
};
use tollgate::outbound::Trust;

const APP_ID: u64 = 4242;
const INSTALLATION: u64 = 77;
const OWNER: &str = "acme";
const REPO: &str = "widgets";

async fn fake() -> FakeGithub {
    let fake = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    fake.add_installation(INSTALLATION);
    fake.add_repo(INSTALLATION, OWNER, REPO);
    fake
}

fn client_for(url: &str, budget: Option<WriteBudget>) -> InstallationClient {
    GithubApp::new(url, APP_ID, TEST_APP_KEY, budget, &Trust::system())
        .unwrap()
        .installation(INSTALLATION)
        .unwrap()
}

async fn setup() -> (FakeGithub, InstallationClient) {
    let fake = fake().await;
    let client = client_for(&fake.url(), None);
    (fake, client)
}

fn pr_with_files(number: u64, count: usize) -> PrSpec {
    PrSpec {
        number,
        files: (0..count)
            .map(|i| {
                file_entry(
                    &format!("src/f{i}.rs"),
                    "modified",
                    Some("@@ -1 +1 @@\n-a\n+b"),
                )
            })
            .collect(),
        ..PrSpec::default()
    }
}

fn annotations(count: usize, offset: usize) -> Vec<Annotation> {
    (0..count)
        .map(|i| Annotation {
            path: format!("src/f{}.rs", i + offset),
            start_line: 1,
            end_line: 2,
            annotation_level: AnnotationLevel::Warning,
            title: Some("R07".into()),
            message: "a finding".into(),
            raw_details: None,
        })
        .collect()
}

fn output(annotations: Vec<Annotation>) -> CheckOutput {
    CheckOutput {
        title: "Score 80".into(),
        summary: "Some findings".into(),
        text: None,
        annotations,
    }
}

fn token_exchanges(fake: &FakeGithub) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.path == format!("/app/installations/{INSTALLATION}/access_tokens"))
        .count()
}

#[test]
fn github_app_is_shareable() {
    fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
    assert_shareable::<GithubApp>();
    assert_shareable::<InstallationClient>();
}

#[tokio::test]
async fn token_exchange_then_pull_request() {
    let (fake, client) = setup().await;
    fake.set_pull_request(
        OWNER,
        REPO,
        PrSpec {
            number: 7,
            title: "Add widgets".into(),
            draft: true,
            labels: vec!["security".into()],
            ..pr_with_files(7, 3)
        },
    );

    let pr = client.pull_request(OWNER, REPO, 7).await.unwrap();
    assert_eq!(pr.number, 7);
    assert_eq!(pr.title, "Add widgets");
    assert_eq!(pr.user.login, "octocat");
    assert!(pr.draft);
    assert_eq!(pr.head.git_ref, "feature");
    assert_eq!(pr.base.sha, PrSpec::default().base_sha);
    assert_eq!(pr.labels[0].name, "security");
    assert_eq!(pr.changed_files, Some(3));

    // The installation token is cached: a second call needs no new exchange.
    client.pull_request(OWNER, REPO, 7).await.unwrap();
    assert_eq!(token_exchanges(&fake), 1);
    let exchange = &fake.requests()[0];
    assert_eq!((exchange.method.as_str(), exchange.status), ("POST", 201));
    fake.assert_clean();
}

#[tokio::test]
async fn installation_clients_are_cached_per_installation() {
    let fake = fake().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    let app = GithubApp::new(&fake.url(), APP_ID, TEST_APP_KEY, None, &Trust::system()).unwrap();
    let clone = app.clone();
    app.installation(INSTALLATION)
        .unwrap()
        .pull_request(OWNER, REPO, 1)
        .await
        .unwrap();
    clone
        .installation(INSTALLATION)
        .unwrap()
        .pull_request(OWNER, REPO, 1)
        .await
        .unwrap();
    assert_eq!(token_exchanges(&fake), 1);
}

#[tokio::test]
async fn enterprise_base_path_is_kept_for_every_request() {
    let fake = fake().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(3, 1));
    let client = client_for(&format!("{}/", fake.enterprise_url()), None);
    client.pull_request(OWNER, REPO, 3).await.unwrap();
    client
        .create_issue_comment(OWNER, REPO, 3, "hello")
        .await
        .unwrap();
    let requests = fake.requests();
    assert_eq!(requests.len(), 3, "{requests:#?}");
    for request in &requests {
        assert!(
            request.full_path.starts_with("/api/v3/"),
            "{} lost the base path",
            request.full_path
        );
        assert!(request.status < 300, "{request:?}");
    }
    fake.assert_clean();
}

#[tokio::test]
async fn files_are_paged_until_a_short_page() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(5, 250));
    let files = client.pull_request_files(OWNER, REPO, 5).await.unwrap();
    assert!(files.complete);
    assert_eq!(files.files.len(), 250);
    assert_eq!(files.files[249].filename, "src/f249.rs");
    let pages: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/files"))
        .map(|r| r.query.unwrap())
        .collect();
    assert_eq!(
        pages,
        [
            "per_page=100&page=1",
            "per_page=100&page=2",
            "per_page=100&page=3"
        ]
    );

    // An exact multiple of the page size ends on an empty page.
    fake.set_pull_request(OWNER, REPO, pr_with_files(6, 100));
    let files = client.pull_request_files(OWNER, REPO, 6).await.unwrap();
    assert!(files.complete);
    assert_eq!(files.files.len(), 100);
    fake.assert_clean();
}

#[tokio::test]
async fn more_than_3000_files_is_incomplete() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(9, 3100));
    let files = client.pull_request_files(OWNER, REPO, 9).await.unwrap();
    assert!(
        !files.complete,
        "a capped file list must never look complete"
    );
    assert_eq!(files.files.len(), 3000);
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/files"))
        .count();
    assert_eq!(pages, 30);
}

/// The compare API as GitHub answers it: at most 300 files for the whole comparison, on the first
/// page only; the client reads them in one request and calls a full list incomplete.
#[tokio::test]
async fn comparisons_list_300_files_on_the_first_page_only() {
    let (fake, client) = setup().await;
    let (base, head) = ("a".repeat(40), "b".repeat(40));
    let files = |count: usize| pr_with_files(1, count).files;
    fake.set_comparison(OWNER, REPO, &base, &head, files(12));
    let small = client
        .compare_files(OWNER, REPO, &base, &head)
        .await
        .unwrap();
    assert!(small.complete);
    assert_eq!(small.files.len(), 12);
    assert_eq!(small.files[0].filename, "src/f0.rs");

    fake.set_comparison(OWNER, REPO, &base, &head, files(301));
    let capped = client
        .compare_files(OWNER, REPO, &base, &head)
        .await
        .unwrap();
    assert!(
        !capped.complete,
        "a capped comparison must never look complete"
    );
    assert_eq!(capped.files.len(), 300);
    let compares: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/compare/"))
        .collect();
    assert_eq!(compares.len(), 2, "one request each");

    // Later pages carry commits only; an unknown comparison is 404.
    let token = installation_token(&fake).await;
    let http = reqwest::Client::new();
    let url = format!(
        "{}/repos/{OWNER}/{REPO}/compare/{base}...{head}",
        fake.url()
    );
    let second: Value = http
        .get(format!("{url}?per_page=1&page=2"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(second.get("files").is_none(), "{second}");
    assert_eq!(second["total_commits"], 1);
    let unknown = http
        .get(format!("{url}0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let missing = client.compare_files(OWNER, REPO, &head, &base).await;
    assert!(matches!(missing, Err(GithubError::NotFound)), "{missing:?}");
}

#[tokio::test]
async fn file_contents_found_and_absent() {
    let (fake, client) = setup().await;
    let config = "threshold: 70\n# ünïcode and a long line ".to_owned() + &"x".repeat(200);
    fake.set_file(OWNER, REPO, "main", ".github/tollgate.yml", &config);
    fake.set_file(OWNER, REPO, "main", "docs/a b.md", "spaces");
    fake.set_pull_request(OWNER, REPO, pr_with_files(2, 1));

    let found = client
        .file_contents(OWNER, REPO, ".github/tollgate.yml", "main")
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some(config.as_str()));
    // The base commit of a pull request finds its base branch's files.
    let by_sha = client
        .file_contents(
            OWNER,
            REPO,
            ".github/tollgate.yml",
            &PrSpec::default().base_sha,
        )
        .await
        .unwrap();
    assert_eq!(by_sha.as_deref(), Some(config.as_str()));
    let spaced = client
        .file_contents(OWNER, REPO, "docs/a b.md", "main")
        .await
        .unwrap();
    assert_eq!(spaced.as_deref(), Some("spaces"));
    let absent = client
        .file_contents(OWNER, REPO, ".github/tollgate.yml", "feature")
        .await
        .unwrap();
    assert_eq!(absent, None);
    fake.assert_clean();
}

#[tokio::test]
async fn check_run_annotations_accumulate_over_updates() {
    let (fake, client) = setup().await;
    let head = "3333333333333333333333333333333333333333";
    let id = client
        .create_check_run(
            OWNER,
            REPO,
            &CheckRunCreate {
                status: Some(CheckStatus::InProgress),
                started_at: Some(chrono::Utc::now()),
                external_id: Some("eval-1".into()),
                ..CheckRunCreate::new("Tollgate", head)
            },
        )
        .await
        .unwrap();
    client
        .update_check_run(
            OWNER,
            REPO,
            id,
            &CheckRunUpdate {
                output: Some(output(annotations(50, 0))),
                ..CheckRunUpdate::default()
            },
        )
        .await
        .unwrap();
    client
        .update_check_run(
            OWNER,
            REPO,
            id,
            &CheckRunUpdate {
                status: Some(CheckStatus::Completed),
                conclusion: Some(Conclusion::Failure),
                completed_at: Some(chrono::Utc::now()),
                output: Some(output(annotations(20, 50))),
                ..CheckRunUpdate::default()
            },
        )
        .await
        .unwrap();

    let runs = fake.check_runs(OWNER, REPO);
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run.id, run.name.as_str(), run.head_sha.as_str()),
        (id, "Tollgate", head)
    );
    assert_eq!(run.status, "completed");
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.output_title.as_deref(), Some("Score 80"));
    assert_eq!(run.output_summary.as_deref(), Some("Some findings"));
    assert_eq!(run.annotations.len(), 70);
    assert_eq!(run.annotations[69]["path"], "src/f69.rs");
    assert_eq!(run.external_id.as_deref(), Some("eval-1"));
    assert_eq!(run.updates, 2);
    fake.assert_clean();
}

#[tokio::test]
async fn check_run_requests_github_refuses() {
    let (fake, client) = setup().await;
    let id = client
        .create_check_run(OWNER, REPO, &CheckRunCreate::new("Tollgate", "abc"))
        .await
        .unwrap();

    let too_many = client
        .update_check_run(
            OWNER,
            REPO,
            id,
            &CheckRunUpdate {
                output: Some(output(annotations(51, 0))),
                ..CheckRunUpdate::default()
            },
        )
        .await
        .unwrap_err();
    match &too_many {
        GithubError::Invalid {
            status: 422,
            message,
        } => {
            assert!(message.contains("50"), "unclear message: {message}")
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    assert!(!too_many.is_retryable());

    let no_conclusion = client
        .update_check_run(
            OWNER,
            REPO,
            id,
            &CheckRunUpdate {
                status: Some(CheckStatus::Completed),
                ..CheckRunUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        no_conclusion,
        GithubError::Invalid { status: 422, .. }
    ));

    let huge_summary = client
        .update_check_run(
            OWNER,
            REPO,
            id,
            &CheckRunUpdate {
                output: Some(CheckOutput {
                    summary: "é".repeat(40_000), // 80,000 bytes
                    ..output(Vec::new())
                }),
                ..CheckRunUpdate::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(
        huge_summary,
        GithubError::Invalid { status: 422, .. }
    ));

    let missing = client
        .update_check_run(OWNER, REPO, 999_999, &CheckRunUpdate::default())
        .await
        .unwrap_err();
    assert_eq!(missing, GithubError::NotFound);

    let run = &fake.check_runs(OWNER, REPO)[0];
    assert!(run.annotations.is_empty());
    assert_eq!(run.status, "queued");
    assert_eq!(fake.rejections().len(), 4, "{:#?}", fake.rejections());
}

#[tokio::test]
async fn comments_create_list_update() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(4, 1));
    for i in 0..120 {
        fake.add_comment(OWNER, REPO, 4, "alice", &format!("comment {i}"));
    }

    let id = client
        .create_issue_comment(OWNER, REPO, 4, "<!-- tollgate -->\nScore: 80")
        .await
        .unwrap();
    let listed = client.list_issue_comments(OWNER, REPO, 4).await.unwrap();
    assert_eq!(listed.len(), 121);
    let ours = listed.last().unwrap();
    assert_eq!(ours.id, id);
    let user = ours.user.as_ref().unwrap();
    assert_eq!(user.login, BOT_LOGIN);
    assert_eq!(user.kind.as_deref(), Some("Bot"));
    assert_eq!(
        listed[0].user.as_ref().unwrap().kind.as_deref(),
        Some("User")
    );

    client
        .update_issue_comment(OWNER, REPO, id, "<!-- tollgate -->\nScore: 90")
        .await
        .unwrap();
    let bot = fake.bot_comments(OWNER, REPO, 4);
    assert_eq!(bot.len(), 1);
    assert_eq!(bot[0].body, "<!-- tollgate -->\nScore: 90");
    assert_eq!(bot[0].edits, 1);

    let too_long = client
        .create_issue_comment(OWNER, REPO, 4, &"x".repeat(65_537))
        .await
        .unwrap_err();
    assert!(matches!(too_long, GithubError::Invalid { status: 422, .. }));
    let no_pr = client
        .create_issue_comment(OWNER, REPO, 404, "hi")
        .await
        .unwrap_err();
    assert_eq!(no_pr, GithubError::NotFound);
    assert_eq!(fake.bot_comments(OWNER, REPO, 4).len(), 1);
}

#[tokio::test]
async fn collaborator_permissions_found_absent_and_failing() {
    let (fake, client) = setup().await;
    fake.set_permission(OWNER, REPO, "Maya", "write", "maintain");
    fake.set_permission(OWNER, REPO, "tess", "read", "triage");

    // Logins are case-insensitive; GitHub answers with the account's own spelling.
    let maya = client
        .collaborator_permission(OWNER, REPO, "maya")
        .await
        .unwrap();
    assert_eq!(
        maya,
        Some(CollaboratorPermission {
            permission: "write".into(),
            role_name: "maintain".into()
        })
    );
    let tess = client
        .collaborator_permission(OWNER, REPO, "tess")
        .await
        .unwrap();
    assert_eq!(tess.map(|p| p.role_name).as_deref(), Some("triage"));
    // Not a collaborator (GitHub's 404), also for a bot's login with brackets in it.
    for outsider in ["mallory", "dependabot[bot]"] {
        let answer = client
            .collaborator_permission(OWNER, REPO, outsider)
            .await
            .unwrap();
        assert_eq!(answer, None, "{outsider}");
    }

    // Every other failure stays an error for the caller to explain.
    let permission_path = format!("/repos/{OWNER}/{REPO}/collaborators/");
    fake.fail_next_with(
        "GET",
        &permission_path,
        Failure::status(403).message("Resource not accessible by integration"),
        1,
    );
    let forbidden = client
        .collaborator_permission(OWNER, REPO, "maya")
        .await
        .unwrap_err();
    assert!(
        matches!(forbidden, GithubError::Forbidden { .. }),
        "{forbidden:?}"
    );
    fake.fail_next("GET", &permission_path, 502, 1);
    let server = client
        .collaborator_permission(OWNER, REPO, "maya")
        .await
        .unwrap_err();
    assert_eq!(server, GithubError::Server { status: 502 });
    fake.assert_clean();
}

#[tokio::test]
async fn team_memberships_active_pending_absent_and_failing() {
    let (fake, client) = setup().await;
    fake.add_team_member(OWNER, "security", "maya");
    fake.invite_team_member(OWNER, "security", "nico");
    // A team of an organization the installation has no repository in.
    fake.add_team_member("elsewhere", "security", "maya");

    let lookup = |org: &'static str, team: &'static str, user: &'static str| {
        let client = client.clone();
        async move { client.team_membership(org, team, user).await }
    };
    assert_eq!(
        lookup(OWNER, "security", "Maya").await,
        Ok(TeamMembership::Active)
    );
    assert_eq!(
        lookup(OWNER, "Security", "nico").await,
        Ok(TeamMembership::Pending)
    );
    assert_eq!(
        lookup(OWNER, "security", "mallory").await,
        Ok(TeamMembership::NotMember)
    );
    assert_eq!(
        lookup(OWNER, "no-such-team", "maya").await,
        Ok(TeamMembership::NotMember)
    );
    assert_eq!(
        lookup("elsewhere", "security", "maya").await,
        Ok(TeamMembership::NotMember),
        "another organization's teams are invisible"
    );
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.path == format!("/orgs/{OWNER}/teams/security/memberships/Maya")),
        "{:#?}",
        fake.requests()
    );

    // Without the members permission GitHub answers 403: an error, never a quiet "no".
    fake.fail_next_with(
        "GET",
        &format!("/orgs/{OWNER}/teams/"),
        Failure::status(403).message("Resource not accessible by integration"),
        1,
    );
    let forbidden = lookup(OWNER, "security", "maya").await.unwrap_err();
    assert!(
        matches!(forbidden, GithubError::Forbidden { .. }),
        "{forbidden:?}"
    );
    fake.fail_next("GET", "/orgs/", 500, 1);
    let server = lookup(OWNER, "security", "maya").await.unwrap_err();
    assert!(server.is_retryable(), "{server:?}");
    fake.assert_clean();
}

#[tokio::test]
async fn reactions_are_kept_once_per_comment() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(4, 1));
    let command = fake.add_comment(OWNER, REPO, 4, "maya", "/override R05 test fixture key");
    let other = fake.add_comment(OWNER, REPO, 4, "nico", "LGTM");

    for reaction in [
        Reaction::Eyes,
        Reaction::PlusOne,
        Reaction::Eyes,
        Reaction::MinusOne,
    ] {
        client
            .add_reaction(OWNER, REPO, command, reaction)
            .await
            .unwrap();
    }
    assert_eq!(fake.reactions(OWNER, REPO, command), ["eyes", "+1", "-1"]);
    assert!(fake.reactions(OWNER, REPO, other).is_empty());
    let statuses: Vec<u16> = fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/reactions"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [201, 201, 200, 201], "a repeat answers 200");
    // Reactions are writes: paced by the client and counted against the secondary limit.
    assert_eq!(fake.write_count(), 4);

    let missing = client
        .add_reaction(OWNER, REPO, 999_999, Reaction::Eyes)
        .await
        .unwrap_err();
    assert_eq!(missing, GithubError::NotFound);
    // Reactions are not comments.
    assert_eq!(fake.comments(OWNER, REPO, 4).len(), 2);
    assert!(fake.bot_comments(OWNER, REPO, 4).is_empty());
    fake.assert_clean();
}

#[tokio::test]
async fn reactions_github_does_not_have_are_refused() {
    let (fake, _client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(4, 1));
    let comment = fake.add_comment(OWNER, REPO, 4, "maya", "/approve");
    let token = installation_token(&fake).await;
    let url = format!(
        "{}/repos/{OWNER}/{REPO}/issues/comments/{comment}/reactions",
        fake.url()
    );
    let http = reqwest::Client::new();
    for body in [
        json!({"content": "thumbsup"}),
        json!({"content": null}),
        json!({}),
    ] {
        let answer = http
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 422, "{body}");
    }
    assert!(fake.reactions(OWNER, REPO, comment).is_empty());
    if openapi::validator().is_some() {
        let violations = fake.openapi_violations();
        assert_eq!(violations.len(), 3, "{violations:#?}");
        assert!(
            violations
                .iter()
                .all(|v| v.contains("reactions/create-for-issue-comment")),
            "{violations:#?}"
        );
    }
}

#[tokio::test]
async fn injected_server_error_then_success() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    fake.fail_next("GET", "/repos/acme/widgets/pulls/1", 502, 1);
    let error = client.pull_request(OWNER, REPO, 1).await.unwrap_err();
    assert_eq!(error, GithubError::Server { status: 502 });
    assert!(error.is_retryable());
    client.pull_request(OWNER, REPO, 1).await.unwrap();
}

#[tokio::test]
async fn rate_limits_become_rate_limited_with_a_wait() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));

    fake.fail_next_with("GET", "/repos/", Failure::too_many_requests(30), 1);
    let error = client.pull_request(OWNER, REPO, 1).await.unwrap_err();
    assert_eq!(
        error,
        GithubError::RateLimited {
            retry_after: Some(Duration::from_secs(30))
        }
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(30)));

    let reset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 120;
    fake.fail_next_with("GET", "/repos/", Failure::primary_rate_limit(reset), 1);
    let error = client.pull_request(OWNER, REPO, 1).await.unwrap_err();
    let wait = error.retry_after().expect("a wait until the reset");
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
}

#[tokio::test]
async fn secondary_limit_is_a_rate_limit() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    fake.set_secondary_limit(3, Duration::from_secs(60));
    for i in 0..3 {
        client
            .create_issue_comment(OWNER, REPO, 1, &format!("c{i}"))
            .await
            .unwrap();
    }
    let error = client
        .create_issue_comment(OWNER, REPO, 1, "one too many")
        .await
        .unwrap_err();
    match error {
        GithubError::RateLimited {
            retry_after: Some(wait),
        } => assert!(wait <= Duration::from_secs(60)),
        other => panic!("expected a rate limit with retry-after, got {other:?}"),
    }
    // Reads are not limited.
    client.pull_request(OWNER, REPO, 1).await.unwrap();
    assert_eq!(fake.write_count(), 4);
}

/// A database with the app's schema, and a pool on it.
async fn budget_database() -> sqlx::PgPool {
    let url = support::test_app::fresh_database().await;
    let pool = tollgate::store::connect(&url).await.unwrap();
    tollgate::store::migrate(&pool).await.unwrap();
    pool
}

/// The most of the sorted `times` that fall in any one `window`.
fn most_in_any_window(times: &[chrono::DateTime<chrono::Utc>], window: chrono::Duration) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test]
async fn two_processes_share_one_write_budget() {
    let fake = fake().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    let pool = budget_database().await;
    let pacing = Pacing {
        per_minute: 3,
        per_hour: 100,
    };
    // Three writes were sent almost a minute ago (by another process): the minute is full until
    // they leave the window, a fraction of a second from now.
    sqlx::query(
        "INSERT INTO github_write_budget (installation_id, sent_at, last_grant)
         VALUES ($1, ARRAY[now() - interval '59.7 seconds', now() - interval '59.6 seconds',
                           now() - interval '59.5 seconds'], gen_random_uuid())",
    )
    .bind(INSTALLATION as i64)
    .execute(&pool)
    .await
    .unwrap();
    // Two apps: two processes, each with its own queue of writers, one budget.
    let clients: Vec<InstallationClient> = (0..2)
        .map(|_| {
            client_for(
                &fake.url(),
                Some(WriteBudget::new(pool.clone(), pacing).unwrap()),
            )
        })
        .collect();
    let writes = (0..3).map(|i| {
        let client = clients[i % 2].clone();
        async move {
            client
                .create_issue_comment(OWNER, REPO, 1, &format!("c{i}"))
                .await
        }
    });
    for result in run_concurrently(writes).await {
        result.unwrap();
    }
    assert_eq!(fake.bot_comments(OWNER, REPO, 1).len(), 3);
    let mut sent: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sent_at FROM github_write_budget WHERE installation_id = $1")
            .bind(INSTALLATION as i64)
            .fetch_one(&pool)
            .await
            .unwrap();
    sent.sort();
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert_eq!(
        most_in_any_window(&sent, chrono::Duration::minutes(1)),
        3,
        "{sent:?}"
    );
    // Reads never take a slot.
    clients[0].pull_request(OWNER, REPO, 1).await.unwrap();
    assert_eq!(fake.write_count(), 3);
}

#[tokio::test]
async fn write_slots_are_taken_atomically() {
    let pool = budget_database().await;
    let takers = (0..40).map(|_| {
        let pool = pool.clone();
        async move {
            tollgate::store::take_write_slot(&pool, 9, 10, 15)
                .await
                .unwrap()
        }
    });
    let slots = run_concurrently(takers).await;
    assert_eq!(slots.iter().filter(|s| s.granted).count(), 10);
    let refused = slots.iter().find(|s| !s.granted).unwrap();
    // A refused caller learns how long to wait: until the first grant leaves the minute.
    let wait = tollgate::github::pacer::wait_for_slot(
        &refused.sent_at,
        refused.now,
        Pacing {
            per_minute: 10,
            per_hour: 15,
        },
    );
    assert!(
        wait > Duration::from_secs(50) && wait <= Duration::from_secs(60),
        "{wait:?}"
    );
    // The hour is the limit once the minutes have room: 15 in all.
    sqlx::query(
        "UPDATE github_write_budget SET sent_at = ARRAY(
             SELECT t - interval '2 minutes' FROM unnest(sent_at) t)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let more = (0..10).map(|_| {
        let pool = pool.clone();
        async move {
            tollgate::store::take_write_slot(&pool, 9, 10, 15)
                .await
                .unwrap()
                .granted
        }
    });
    let granted = run_concurrently(more).await;
    assert_eq!(granted.iter().filter(|g| **g).count(), 5);
    // Another installation has its own budget.
    assert!(
        tollgate::store::take_write_slot(&pool, 10, 10, 15)
            .await
            .unwrap()
            .granted
    );
}

/// Runs the futures concurrently, each on its own task, and collects their outputs in order.
async fn run_concurrently<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test]
async fn revoked_token_is_renewed_once() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    client.pull_request(OWNER, REPO, 1).await.unwrap();
    fake.revoke_tokens();
    client.pull_request(OWNER, REPO, 1).await.unwrap();
    assert_eq!(token_exchanges(&fake), 2);
}

#[tokio::test]
async fn wrong_app_or_unknown_installation() {
    let fake = fake().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    // A JWT whose issuer is another app is refused at the token exchange.
    let other_app = GithubApp::new(
        &fake.url(),
        APP_ID + 1,
        TEST_APP_KEY,
        None,
        &Trust::system(),
    )
    .unwrap()
    .installation(INSTALLATION)
    .unwrap();
    let error = other_app.pull_request(OWNER, REPO, 1).await.unwrap_err();
    assert_eq!(error, GithubError::Unauthorized);
    assert!(
        fake.rejections()[0].reason.contains("iss"),
        "{:?}",
        fake.rejections()
    );

    let app = GithubApp::new(&fake.url(), APP_ID, TEST_APP_KEY, None, &Trust::system()).unwrap();
    let error = app
        .installation(999)
        .unwrap()
        .pull_request(OWNER, REPO, 1)
        .await
        .unwrap_err();
    assert_eq!(error, GithubError::NotFound);

    // A token for one installation does not open another installation's repository.
    fake.add_installation(5);
    fake.add_repo(5, "other", "repo");
    fake.set_pull_request("other", "repo", pr_with_files(1, 1));
    let error = app
        .installation(INSTALLATION)
        .unwrap()
        .pull_request("other", "repo", 1)
        .await
        .unwrap_err();
    assert_eq!(error, GithubError::NotFound);
}

#[tokio::test]
async fn unreachable_github_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = client_for(&url, None);
    let error = client.pull_request(OWNER, REPO, 1).await.unwrap_err();
    assert!(matches!(error, GithubError::Transport { .. }), "{error:?}");
    assert!(error.is_retryable());
}

/// A valid installation token, fetched the way octocrab does.
async fn installation_token(fake: &FakeGithub) -> String {
    let jwt = AppCredentials::from_pem(APP_ID, TEST_APP_KEY)
        .unwrap()
        .jwt()
        .unwrap();
    let answer: Value = reqwest::Client::new()
        .post(format!(
            "{}/app/installations/{INSTALLATION}/access_tokens",
            fake.url()
        ))
        .bearer_auth(jwt)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["token"].as_str().expect("a token").to_owned()
}

#[tokio::test]
async fn invalid_bodies_and_unknown_routes_are_recorded() {
    let fake = fake().await;
    let token = installation_token(&fake).await;
    let http = reqwest::Client::new();

    let answer = http
        .post(format!("{}/repos/{OWNER}/{REPO}/check-runs", fake.url()))
        .bearer_auth(&token)
        .json(&json!({"name": "Tollgate", "head_sha": "abc", "status": "bogus"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422);
    if openapi::validator().is_some() {
        let violations = fake.openapi_violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert!(violations[0].contains("checks/create"), "{}", violations[0]);
    }

    let answer = http
        .post(format!("{}/repos/{OWNER}/{REPO}/check-runs", fake.url()))
        .bearer_auth(&token)
        .json(&json!({"name": "Tollgate", "head_sha": "abc", "details_url": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 422, "GitHub refuses nulls");

    let answer = http
        .get(format!("{}/repos/{OWNER}/{REPO}/branches", fake.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 404);
    assert_eq!(fake.unexpected_requests().len(), 1);

    let answer = http
        .get(format!("{}/repos/{OWNER}/{REPO}/pulls/1", fake.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 401, "no token");

    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fake.assert_clean()));
    assert!(
        result.is_err(),
        "assert_clean must fail after an unexpected request"
    );
}

#[tokio::test]
async fn wait_until_polls_a_condition() {
    let (fake, _client) = setup().await;
    fake.set_pull_request(OWNER, REPO, pr_with_files(1, 1));
    let fake = std::sync::Arc::new(fake);
    let writer = fake.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        writer.add_comment(OWNER, REPO, 1, "bob", "late");
    });
    assert!(
        wait_until(Duration::from_secs(5), || !fake
            .comments(OWNER, REPO, 1)
            .is_empty())
        .await
    );
    assert!(!wait_until(Duration::from_millis(50), || false).await);
}

mod openapi_validator {
    use super::support::openapi::Validator;
    use serde_json::json;

    fn tiny() -> Validator {
        Validator::from_document(&json!({
            "paths": {
                "/repos/{owner}/{repo}/issues/{issue_number}/comments": {
                    "post": {
                        "operationId": "issues/create-comment",
                        "requestBody": {"required": true, "content": {"application/json": {
                            "schema": {"type": "object", "required": ["body"],
                                       "properties": {"body": {"type": "string"},
                                                      "who": {"$ref": "#/components/schemas/who"}}}
                        }}}
                    }
                },
                "/repos/{owner}/{repo}/issues/comments/{comment_id}": {
                    "patch": {"operationId": "issues/update-comment"}
                },
                "/repos/{owner}/{repo}/contents/{path}": {"get": {"operationId": "repos/get-content"}}
            },
            "components": {"schemas": {"who": {"type": "string", "nullable": true, "example": 1}}}
        }))
        .unwrap()
    }

    #[test]
    fn paths_match_templates() {
        let v = tiny();
        assert_eq!(
            v.operation_id("PATCH", "/repos/o/r/issues/comments/5"),
            Some("issues/update-comment")
        );
        assert_eq!(
            v.operation_id("GET", "/repos/o/r/contents/a/b/c.yml"),
            Some("repos/get-content")
        );
        assert!(v.check("GET", "/repos/o/r/nope", None).is_err());
        assert!(
            v.check("DELETE", "/repos/o/r/issues/comments/5", None)
                .is_err()
        );
    }

    #[test]
    fn bodies_are_validated_with_nullable_and_refs() {
        let v = tiny();
        let path = "/repos/o/r/issues/1/comments";
        assert!(
            v.check("POST", path, Some(&json!({"body": "x", "who": null})))
                .is_ok()
        );
        assert!(
            v.check("POST", path, Some(&json!({"body": "x", "who": "me"})))
                .is_ok()
        );
        assert!(
            v.check("POST", path, Some(&json!({"body": "x", "who": 3})))
                .is_err()
        );
        assert!(v.check("POST", path, Some(&json!({}))).is_err());
        assert!(v.check("POST", path, None).is_err());
    }

    #[test]
    fn githubs_description_loads_when_present() {
        if let Some(v) = super::openapi::validator() {
            assert_eq!(
                v.operation_id("POST", "/repos/o/r/check-runs"),
                Some("checks/create")
            );
            assert_eq!(
                v.operation_id("GET", "/repos/o/r/collaborators/u/permission"),
                Some("repos/get-collaborator-permission-level")
            );
            assert_eq!(
                v.operation_id("GET", "/orgs/o/teams/t/memberships/u"),
                Some("teams/get-membership-for-user-in-org")
            );
            assert_eq!(
                v.operation_id("POST", "/repos/o/r/issues/comments/1/reactions"),
                Some("reactions/create-for-issue-comment")
            );
            assert!(
                v.check(
                    "POST",
                    "/repos/o/r/check-runs",
                    Some(&json!({"name": "n", "head_sha": "s", "status": "completed"}))
                )
                .is_err(),
                "GitHub's schema ties status completed to a conclusion"
            );
        }
    }
}

#[tokio::test]
async fn a_check_run_is_found_on_its_head_by_name_and_external_id() {
    let (fake, client) = setup().await;
    let head = "a".repeat(40);
    let mut ids = Vec::new();
    for (name, external_id) in [
        ("Tollgate", "tollgate-evaluation-1"),
        ("Tollgate", "tollgate-evaluation-2"),
        ("Other", "tollgate-evaluation-3"),
    ] {
        let create = CheckRunCreate {
            external_id: Some(external_id.into()),
            ..CheckRunCreate::new(name, head.clone())
        };
        ids.push(client.create_check_run(OWNER, REPO, &create).await.unwrap());
    }
    let find = |name: &'static str, external_id: &'static str| {
        let (client, head) = (client.clone(), head.clone());
        async move {
            client
                .find_check_run(OWNER, REPO, &head, name, external_id)
                .await
                .unwrap()
        }
    };
    // The older run of the name too: the lookup asks for every run, not the latest.
    assert_eq!(
        find("Tollgate", "tollgate-evaluation-1").await,
        Some(ids[0])
    );
    assert_eq!(
        find("Tollgate", "tollgate-evaluation-2").await,
        Some(ids[1])
    );
    assert_eq!(find("Tollgate", "tollgate-evaluation-3").await, None);
    assert_eq!(find("Tollgate", "tollgate-evaluation-9").await, None);
    let other_head = client
        .find_check_run(
            OWNER,
            REPO,
            &"b".repeat(40),
            "Tollgate",
            "tollgate-evaluation-1",
        )
        .await
        .unwrap();
    assert_eq!(other_head, None);
    fake.assert_clean();
}

#[tokio::test]
async fn a_held_write_is_applied_at_once_and_answered_when_released() {
    let (fake, client) = setup().await;
    fake.set_pull_request(OWNER, REPO, PrSpec::default());
    let hold = fake.hold(
        "POST",
        &format!("/repos/{OWNER}/{REPO}/issues/1/comments"),
        2,
    );
    let first = client.create_issue_comment(OWNER, REPO, 1, "one").await;
    assert!(first.is_ok() && !hold.reached());
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.create_issue_comment(OWNER, REPO, 1, "two").await }
    });
    assert!(wait_until(Duration::from_secs(10), || hold.reached()).await);
    assert_eq!(
        fake.bot_comments(OWNER, REPO, 1).len(),
        2,
        "applied before the answer"
    );
    assert!(!second.is_finished());
    hold.release();
    assert!(second.await.unwrap().is_ok());
    fake.assert_clean();
}
