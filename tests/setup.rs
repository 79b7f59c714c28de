//! `tollgate setup` against the fake GitHub: the local page posts the manifest to GitHub's
//! new-app page, GitHub redirects back with a code, and the credentials land in `.env`.

mod support;

use serde_json::Value;
use std::path::PathBuf;
use support::TEST_APP_KEY;
use support::fake_github::FakeGithub;
use support::test_app::APP_ID;
use tollgate::setup::{DEFAULT_MANIFEST, SetupError, SetupOptions, SetupServer};

const WEBHOOK_URL: &str = "https://tollgate.acme.test/api/github/webhooks";

fn scratch_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-setup-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn options(github: &FakeGithub, env_file: PathBuf, org: Option<&str>) -> SetupOptions {
    SetupOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        webhook_url: WEBHOOK_URL.to_owned(),
        org: org.map(str::to_owned),
        github_web_url: github.url(),
        github_api_url: github.url(),
        manifest_yaml: DEFAULT_MANIFEST.to_owned(),
        env_file,
        force: false,
        trust: tollgate::outbound::Trust::system(),
    }
}

fn unescape(html: &str) -> String {
    html.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the first `name="…"` attribute in `html`.
fn attribute(html: &str, name: &str) -> String {
    let start = html
        .find(&format!("{name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + name.len()
        + 2;
    let end = start + html[start..].find('"').unwrap();
    unescape(&html[start..end])
}

/// What a browser does: open the page, submit its form, follow GitHub's redirect back.
async fn click_through(server: &SetupServer) -> (u16, String, Value) {
    let browser = reqwest::Client::new();
    let page = browser
        .get(server.url())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = attribute(&page, "action");
    let manifest = attribute(&page, "value");
    let answer = browser
        .post(&action)
        .form(&[("manifest", manifest.as_str())])
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    let body = answer.text().await.unwrap();
    (status, body, serde_json::from_str(&manifest).unwrap())
}

fn env_vars(path: &PathBuf) -> Vec<(String, String)> {
    dotenvy::from_path_iter(path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test]
async fn setup_registers_the_app_and_writes_a_private_env_file() {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let env_file = scratch_dir().join(".env");
    let server = SetupServer::start(options(&github, env_file.clone(), None))
        .await
        .unwrap();
    let callback = format!("http://{}/callback", server.address());
    let (status, page, manifest) = click_through(&server).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Tollgate is registered"), "{page}");
    let app = server.wait().await.unwrap();

    assert_eq!(manifest["hook_attributes"]["url"], WEBHOOK_URL);
    assert_eq!(manifest["redirect_url"], callback.as_str());
    let created = github.created_apps();
    assert_eq!(created.len(), 1);
    assert!(created[0].converted);
    assert_eq!(
        created[0].manifest["default_permissions"]["checks"],
        "write"
    );
    let posted = github
        .requests()
        .into_iter()
        .find(|r| r.path == "/settings/apps/new")
        .unwrap();
    assert!(posted.query.unwrap_or_default().starts_with("state="));
    let exchange = github
        .requests()
        .into_iter()
        .find(|r| r.path.starts_with("/app-manifests/"))
        .unwrap();
    assert_eq!((exchange.method.as_str(), exchange.status), ("POST", 201));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let vars = env_vars(&env_file);
    let names: Vec<&str> = vars.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "APP_ID",
            "PRIVATE_KEY",
            "WEBHOOK_SECRET",
            "GITHUB_CLIENT_ID",
            "GITHUB_CLIENT_SECRET"
        ]
    );
    assert_eq!(vars[0].1, app.id.to_string());
    // The file is what `tollgate serve` reads: the settings accept it as it is.
    let settings = tollgate::config::AppSettings::from_lookup(&|name| {
        if name == "DATABASE_URL" {
            return Some("postgres://localhost/tollgate".to_owned());
        }
        vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
    .unwrap();
    assert_eq!(settings.app_id, app.id);
    tollgate::github::AppCredentials::from_pem(app.id, settings.private_key.expose()).unwrap();
    github.assert_clean();
}

#[tokio::test]
async fn setup_for_an_organization_posts_to_its_page() {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let env_file = scratch_dir().join(".env");
    let server = SetupServer::start(options(&github, env_file.clone(), Some("acme")))
        .await
        .unwrap();
    let (status, _, _) = click_through(&server).await;
    assert_eq!(status, 200);
    server.wait().await.unwrap();
    assert!(
        github
            .requests()
            .iter()
            .any(|r| r.path == "/organizations/acme/settings/apps/new")
    );
    assert!(env_file.exists());
}

#[tokio::test]
async fn a_callback_with_another_state_is_refused_and_writes_nothing() {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let env_file = scratch_dir().join(".env");
    let server = SetupServer::start(options(&github, env_file.clone(), None))
        .await
        .unwrap();
    let answer = reqwest::get(format!(
        "http://{}/callback?code=abc&state=forged",
        server.address()
    ))
    .await
    .unwrap();
    assert_eq!(answer.status().as_u16(), 400);
    assert!(!env_file.exists());
    assert!(
        github
            .requests()
            .iter()
            .all(|r| !r.path.starts_with("/app-manifests/")),
        "the code must not be exchanged"
    );
}

#[tokio::test]
async fn an_existing_env_file_is_kept_unless_forced() {
    let github = FakeGithub::start(APP_ID, TEST_APP_KEY).await;
    let env_file = scratch_dir().join(".env");
    std::fs::write(&env_file, "DATABASE_URL=postgres://db/tollgate\n").unwrap();
    let refused = SetupServer::start(options(&github, env_file.clone(), None)).await;
    assert!(matches!(refused, Err(SetupError::EnvFileExists(_))));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        "DATABASE_URL=postgres://db/tollgate\n"
    );

    let forced = SetupOptions {
        force: true,
        ..options(&github, env_file.clone(), None)
    };
    let server = SetupServer::start(forced).await.unwrap();
    let (status, _, _) = click_through(&server).await;
    assert_eq!(status, 200);
    server.wait().await.unwrap();
    assert_eq!(env_vars(&env_file)[0].0, "APP_ID");
}
