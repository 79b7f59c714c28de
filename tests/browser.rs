//! The dashboard in a real headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! over WebDriver with fantoccini): log in through the fake GitHub, filter violations, open a
//! pull request, see a new evaluation appear without a reload, download a CSV export; and, in a
//! browser without EventSource, see the page poll instead and still update.
//!
//! Without Chromium or ChromeDriver on the machine the test says so and skips (`scripts/test`
//! installs them where it can). With `TOLLGATE_SCREENSHOTS=<dir>` it also saves the overview and
//! pull-request pages as PNG files there (the README's screenshots come from this).

mod support;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use support::dashboard::{A, A_REPO, dashboard, seed_more_violations};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long the browser may take to show something; a guard against hanging, not a target.
const PATIENCE: Duration = Duration::from_secs(30);

/// ChromeDriver on a free port, stopped with the test.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Option<Driver> {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        eprintln!(
            "SKIPPING browser test: {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver)"
        );
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let ready = async {
        loop {
            if let Ok(response) = http.get(format!("{}/status", driver.url)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(PATIENCE, ready)
        .await
        .expect("chromedriver answers");
    Some(driver)
}

async fn browser(driver: &Driver, downloads: &Path) -> Client {
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1000"],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!("a JSON object")
    };
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Waits until `script` (a JavaScript expression) is true in the page.
async fn wait_for_script(browser: &Client, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let value = browser
            .execute(&format!("return Boolean({script});"), vec![])
            .await
            .unwrap_or(Value::Bool(false));
        if value == Value::Bool(true) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; the page:\n{}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs in through the dashboard: GitHub's authorize page (the fake, signed in) and back.
async fn log_in(browser: &Client, app: &support::test_app::TestApp) {
    browser.goto(&app.url("/dashboard/login")).await.unwrap();
    wait_for_script(
        browser,
        "the installations page",
        "document.querySelector('h1') && document.querySelector('h1').textContent === 'Installations'",
    )
    .await;
}

/// Inserts a completed, passing evaluation of installation A's pull request 7.
async fn land_an_evaluation(app: &support::test_app::TestApp, head: &str) {
    let mut db = app.db().await;
    sqlx::query(
        "INSERT INTO evaluations (installation_id, repository_id, pr_number, head_sha, status,
             score, verdict, threshold, block_count, override_count, warning_count,
             policy_digest, completed_at)
         VALUES ($1, $2, 7, $3, 'completed', 100, 'pass', 70, 0, 0, 0, 'pd1', now())",
    )
    .bind(A)
    .bind(A_REPO.0)
    .bind(head)
    .execute(&mut db)
    .await
    .unwrap();
}

/// A Chrome DevTools command, through ChromeDriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    command: &'static str,
    params: Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.command, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

async fn click_link(browser: &Client, text: &str) {
    browser
        .find(Locator::LinkText(text))
        .await
        .unwrap_or_else(|e| panic!("no link {text:?}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn text(browser: &Client, css: &str) -> String {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn screenshot(browser: &Client, name: &str) {
    let Some(dir) = std::env::var_os("TOLLGATE_SCREENSHOTS") else {
        return;
    };
    let png = browser.screenshot().await.expect("a screenshot");
    let path = PathBuf::from(dir).join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

#[tokio::test]
async fn a_user_logs_in_filters_opens_a_pull_request_sees_it_update_live_and_exports() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let dash = dashboard().await;
    seed_more_violations(&dash.app, 30).await;
    // The past days' trends come from the daily rollup.
    let pool = tollgate::store::connect(&dash.app.database_url)
        .await
        .unwrap();
    let today = chrono::Utc::now().date_naive();
    for back in 1..=3 {
        tollgate::store::trends::roll_up_day(&pool, today - chrono::Days::new(back))
            .await
            .unwrap();
    }
    pool.close().await;
    dash.github.sign_in_browser_as("alice");
    let downloads =
        std::env::temp_dir().join(format!("tollgate-downloads-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&downloads).unwrap();
    let browser = browser(&driver, &downloads).await;

    log_in(&browser, &dash.app).await;
    click_link(&browser, "dashboard").await;
    wait_for_script(
        &browser,
        "the overview",
        "document.querySelectorAll('.status').length === 25",
    )
    .await;
    assert!(text(&browser, "h1").await.contains("Compliance by rule"));
    screenshot(&browser, "overview.png").await;

    // Filter the violations by rule.
    click_link(&browser, "Violations").await;
    wait_for_script(
        &browser,
        "the violations page",
        "document.querySelector('input[name=rule]') !== null",
    )
    .await;
    let form = browser.form(Locator::Css("form.filters")).await.unwrap();
    form.set_by_name("rule", "R01").await.unwrap();
    form.submit().await.unwrap();
    wait_for_script(
        &browser,
        "the filtered list",
        "location.search.includes('rule=R01')",
    )
    .await;
    let rows = text(&browser, "#live table tbody").await;
    assert!(rows.contains("AWS key"), "{rows}");
    assert!(!rows.contains("privileged container"), "{rows}");

    // Open the pull request.
    click_link(&browser, &format!("{}#7", A_REPO.1)).await;
    wait_for_script(
        &browser,
        "the pull request page",
        "document.querySelector('.why') !== null",
    )
    .await;
    let why = text(&browser, ".why").await;
    assert!(why.contains("Failed: score 77 (threshold 70)."), "{why}");
    assert!(
        why.contains("R01 (BLOCK) in src/config.rs:10: AWS key"),
        "{why}"
    );
    screenshot(&browser, "pull-request.png").await;

    // A new evaluation lands: the page shows it without a reload.
    wait_for_script(
        &browser,
        "the live stream",
        "document.body.dataset.live === 'stream'",
    )
    .await;
    browser
        .execute("window.notReloaded = true; return true;", vec![])
        .await
        .unwrap();
    land_an_evaluation(&dash.app, "fixedhead999").await;
    wait_for_script(
        &browser,
        "the new evaluation",
        "document.querySelectorAll('.evaluation').length === 3",
    )
    .await;
    assert!(text(&browser, ".why").await.contains("Passed: score 100"));
    let same_page = browser
        .execute("return window.notReloaded === true;", vec![])
        .await
        .unwrap();
    assert_eq!(
        same_page,
        Value::Bool(true),
        "updated in place, not reloaded"
    );

    // The trends of a year, drawn on the server.
    browser
        .goto(
            &dash
                .app
                .url(&format!("/dashboard/installations/{A}/trends?days=30")),
        )
        .await
        .unwrap();
    wait_for_script(
        &browser,
        "the trend charts",
        "document.querySelectorAll('svg.chart').length === 2",
    )
    .await;
    screenshot(&browser, "trends.png").await;

    // Export a date range as CSV.
    browser
        .goto(&dash.app.url(&format!(
            "/dashboard/installations/{A}/violations?from=2020-01-01&to=2099-12-31"
        )))
        .await
        .unwrap();
    click_link(&browser, "CSV").await;
    let file = downloads.join(format!("violations-{A}.csv"));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no download in {}: {:?} at {:?}",
            downloads.display(),
            std::fs::read_dir(&downloads)
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
            browser.current_url().await.map(|u| u.to_string())
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let csv = std::fs::read_to_string(&file).unwrap();
    assert!(csv.starts_with("id,repository,pr_number,"), "{csv}");
    assert!(csv.contains("AWS key"));
    browser.close().await.unwrap();
    let _ = std::fs::remove_dir_all(&downloads);
}

#[tokio::test]
async fn without_event_source_the_page_polls_and_still_updates() {
    let Some(driver) = start_driver().await else {
        return;
    };
    let dash = dashboard().await;
    dash.github.sign_in_browser_as("bob");
    let downloads = std::env::temp_dir();
    let browser = browser(&driver, &downloads).await;
    // A browser without EventSource, from the first script of every page on.
    browser
        .issue_cmd(Cdp {
            command: "Page.addScriptToEvaluateOnNewDocument",
            params: json!({ "source": "delete window.EventSource;" }),
        })
        .await
        .expect("ChromeDriver runs DevTools commands");
    log_in(&browser, &dash.app).await;
    browser
        .goto(&dash.app.url(&format!(
            "/dashboard/installations/{A}/repos/{}/pulls/7",
            A_REPO.1
        )))
        .await
        .unwrap();
    wait_for_script(
        &browser,
        "polling",
        "document.body.dataset.live === 'polling'",
    )
    .await;
    land_an_evaluation(&dash.app, "polledhead42").await;
    // The poll comes every 15 s; PATIENCE (30 s) covers one.
    wait_for_script(
        &browser,
        "the polled evaluation",
        "document.querySelectorAll('.evaluation').length === 3",
    )
    .await;
    assert!(text(&browser, ".why").await.contains("Passed: score 100"));
    browser.close().await.unwrap();
}
