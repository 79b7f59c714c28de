//! `tollgate setup`: registers the GitHub App through GitHub's app-manifest flow.
//!
//! A small server on 127.0.0.1 serves a page whose form posts the manifest (`app-manifest.yml`
//! as JSON, pointing its webhook at the deployment and its redirect back here) to GitHub, with
//! a random `state`. GitHub creates the app and redirects the browser back with a one-time
//! `code`; the server checks the state, exchanges the code (`POST
//! /app-manifests/{code}/conversions`, no authentication) and writes the app's credentials to
//! `.env` (mode 0600), then stops.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::routing::get;
use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// The manifest shipped with Tollgate, used unless another is given.
pub const DEFAULT_MANIFEST: &str = include_str!("../app-manifest.yml");
const CALLBACK_PATH: &str = "/callback";
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// Where the local page listens; only loopback addresses are accepted.
    pub listen: SocketAddr,
    /// Where GitHub will send webhooks, e.g. `https://tollgate.example.com/api/github/webhooks`.
    pub webhook_url: String,
    /// Register the app for this organization instead of the signed-in user.
    pub org: Option<String>,
    /// `https://github.com`, or a GitHub Enterprise Server's `https://HOST`.
    pub github_web_url: String,
    /// `https://api.github.com`, or `https://HOST/api/v3`.
    pub github_api_url: String,
    /// The manifest as YAML (`app-manifest.yml`).
    pub manifest_yaml: String,
    pub env_file: PathBuf,
    /// Replace an existing `env_file`.
    pub force: bool,
    /// The roots the exchange with GitHub trusts (`GITHUB_CA_BUNDLE` on a GitHub Enterprise
    /// Server with an internal certificate authority).
    pub trust: crate::outbound::Trust,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0} exists; pass --force to replace it")]
    EnvFileExists(PathBuf),
    #[error("the setup page must listen on a loopback address, not {0}")]
    NotLoopback(SocketAddr),
    #[error("invalid app manifest: {0}")]
    Manifest(String),
    #[error("invalid {name}: {message}")]
    Url { name: &'static str, message: String },
    #[error("cannot listen on {address}: {message}")]
    Listen {
        address: SocketAddr,
        message: String,
    },
    #[error("GitHub did not create the app: {0}")]
    Exchange(String),
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error("the setup server stopped before the app was created")]
    Stopped,
}

/// The app GitHub created, as written to `.env`.
#[derive(Clone, Deserialize)]
pub struct CreatedApp {
    pub id: u64,
    #[serde(default)]
    pub slug: String,
    #[serde(default)]
    pub html_url: String,
    pem: String,
    #[serde(default)]
    webhook_secret: Option<String>,
    client_id: String,
    client_secret: String,
}

impl std::fmt::Debug for CreatedApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApp")
            .field("id", &self.id)
            .field("slug", &self.slug)
            .finish_non_exhaustive()
    }
}

/// A running setup page.
pub struct SetupServer {
    address: SocketAddr,
    done: oneshot::Receiver<Result<CreatedApp, SetupError>>,
    stop: Option<oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<()>,
}

struct Flow {
    options: SetupOptions,
    state: String,
    manifest_json: String,
    form_action: String,
    http: reqwest::Client,
    /// Taken by the first callback that carries the right state.
    done: Mutex<Option<oneshot::Sender<Result<CreatedApp, SetupError>>>>,
}

impl SetupServer {
    /// Checks the options, binds the page and starts serving it.
    pub async fn start(options: SetupOptions) -> Result<SetupServer, SetupError> {
        if !options.listen.ip().is_loopback() {
            return Err(SetupError::NotLoopback(options.listen));
        }
        if options.env_file.exists() && !options.force {
            return Err(SetupError::EnvFileExists(options.env_file.clone()));
        }
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| SetupError::Listen {
                address: options.listen,
                message: e.to_string(),
            })?;
        let address = listener.local_addr().map_err(|e| SetupError::Listen {
            address: options.listen,
            message: e.to_string(),
        })?;
        let redirect_url = format!("http://{address}{CALLBACK_PATH}");
        let manifest = manifest_json(&options.manifest_yaml, &options.webhook_url, &redirect_url)?;
        let state = uuid::Uuid::new_v4().simple().to_string();
        let form_action = form_action(&options.github_web_url, options.org.as_deref(), &state)?;
        let http = options
            .trust
            .http_client()
            .timeout(EXCHANGE_TIMEOUT)
            .user_agent(concat!("tollgate-setup/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SetupError::Exchange(e.to_string()))?;
        let (sender, done) = oneshot::channel();
        let flow = Arc::new(Flow {
            options,
            state,
            manifest_json: manifest.to_string(),
            form_action,
            http,
            done: Mutex::new(Some(sender)),
        });
        let router = Router::new()
            .route("/", get(start_page))
            .route(CALLBACK_PATH, get(callback))
            .with_state(flow);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let stopped = async move {
                let _ = stopped.await;
            };
            if let Err(error) = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(%error, "setup page stopped");
            }
        });
        Ok(SetupServer {
            address,
            done,
            stop: Some(stop),
            server,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The page to open in a browser.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Waits until the app is created and `.env` written (or that failed), then stops the page
    /// once the browser has its answer.
    pub async fn wait(mut self) -> Result<CreatedApp, SetupError> {
        let outcome = (&mut self.done).await.unwrap_or(Err(SetupError::Stopped));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // A browser holding its connection open must not keep the command waiting.
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        outcome
    }
}

#[derive(Serialize)]
struct StartView<'a> {
    form_action: &'a str,
    manifest: &'a str,
    org: Option<&'a str>,
    github_web_url: &'a str,
    webhook_url: &'a str,
    env_file: String,
}

async fn start_page(State(flow): State<Arc<Flow>>) -> Html<String> {
    Html(render(
        "start.html.j2",
        &StartView {
            form_action: &flow.form_action,
            manifest: &flow.manifest_json,
            org: flow.options.org.as_deref(),
            github_web_url: &flow.options.github_web_url,
            webhook_url: &flow.options.webhook_url,
            env_file: flow.options.env_file.display().to_string(),
        },
    ))
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

#[derive(Serialize, Default)]
struct DoneView {
    error: Option<String>,
    slug: String,
    app_id: u64,
    env_file: String,
    install_url: String,
}

async fn callback(
    State(flow): State<Arc<Flow>>,
    Query(query): Query<CallbackQuery>,
) -> (StatusCode, Html<String>) {
    let failed = |status: StatusCode, error: String| {
        (
            status,
            Html(render(
                "done.html.j2",
                &DoneView {
                    error: Some(error),
                    ..DoneView::default()
                },
            )),
        )
    };
    if query.state.as_deref() != Some(flow.state.as_str()) {
        return failed(
            StatusCode::BAD_REQUEST,
            "The answer does not carry this setup's state: it was not started from this page."
                .into(),
        );
    }
    let Some(code) = query.code.filter(|c| is_code(c)) else {
        return failed(StatusCode::BAD_REQUEST, "GitHub sent no valid code.".into());
    };
    let Some(done) = flow.done.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return failed(StatusCode::GONE, "This setup has already finished.".into());
    };
    let outcome = finish(&flow, &code).await;
    let page = match &outcome {
        Ok(app) => (
            StatusCode::OK,
            Html(render(
                "done.html.j2",
                &DoneView {
                    error: None,
                    slug: app.slug.clone(),
                    app_id: app.id,
                    env_file: flow.options.env_file.display().to_string(),
                    install_url: format!("{}/installations/new", app.html_url),
                },
            )),
        ),
        Err(error) => failed(StatusCode::BAD_GATEWAY, error.to_string()),
    };
    let _ = done.send(outcome);
    page
}

/// Exchanges the code and writes `.env`.
async fn finish(flow: &Flow, code: &str) -> Result<CreatedApp, SetupError> {
    let url = format!(
        "{}/app-manifests/{code}/conversions",
        flow.options.github_api_url.trim_end_matches('/')
    );
    let response = flow
        .http
        .post(&url)
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .send()
        .await
        .map_err(|e| SetupError::Exchange(e.to_string()))?;
    let status = response.status();
    if status != reqwest::StatusCode::CREATED {
        let message = response
            .json::<Value>()
            .await
            .ok()
            .and_then(|body| body["message"].as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(SetupError::Exchange(format!(
            "GitHub answered {status} {message}"
        )));
    }
    let app: CreatedApp = response
        .json()
        .await
        .map_err(|e| SetupError::Exchange(format!("unexpected answer: {e}")))?;
    let text = env_file_text(&app)?;
    write_private_file(&flow.options.env_file, &text, flow.options.force)?;
    Ok(app)
}

/// GitHub's codes are short alphanumeric strings; anything else is not put into a URL.
fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 100
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The manifest as JSON, with its webhook and redirect URLs set for this deployment.
pub fn manifest_json(
    yaml: &str,
    webhook_url: &str,
    redirect_url: &str,
) -> Result<Value, SetupError> {
    check_url("webhook URL", webhook_url)?;
    let mut manifest: Value =
        serde_yaml_ng::from_str(yaml).map_err(|e| SetupError::Manifest(e.to_string()))?;
    let object = manifest
        .as_object_mut()
        .ok_or_else(|| SetupError::Manifest("not a mapping".into()))?;
    let hook = object
        .entry("hook_attributes")
        .or_insert_with(|| Value::Object(Default::default()));
    let hook = hook
        .as_object_mut()
        .ok_or_else(|| SetupError::Manifest("hook_attributes is not a mapping".into()))?;
    hook.insert("url".into(), Value::String(webhook_url.to_owned()));
    object.insert(
        "redirect_url".into(),
        Value::String(redirect_url.to_owned()),
    );
    Ok(manifest)
}

/// Where the page's form posts: the personal or the organization's new-app page, with the state.
fn form_action(web_url: &str, org: Option<&str>, state: &str) -> Result<String, SetupError> {
    check_url("GitHub URL", web_url)?;
    let base = web_url.trim_end_matches('/');
    Ok(match org {
        Some(org) => {
            if org.is_empty() || !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(SetupError::Url {
                    name: "organization",
                    message: format!("{org:?} is not an organization login"),
                });
            }
            format!("{base}/organizations/{org}/settings/apps/new?state={state}")
        }
        None => format!("{base}/settings/apps/new?state={state}"),
    })
}

fn check_url(name: &'static str, url: &str) -> Result<(), SetupError> {
    let uri: http::Uri = url.parse().map_err(|_| SetupError::Url {
        name,
        message: format!("{url:?} is not a URL"),
    })?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(()),
        _ => Err(SetupError::Url {
            name,
            message: format!("{url:?} needs http(s):// and a host"),
        }),
    }
}

/// The `.env` lines for a created app. The private key is one double-quoted line with `\n`
/// escapes; the other values are single-quoted, taken literally.
pub fn env_file_text(app: &CreatedApp) -> Result<String, SetupError> {
    let literal = |name: &str, value: &str| -> Result<String, SetupError> {
        if value.is_empty() || value.contains(['\'', '\n', '\r']) {
            return Err(SetupError::Exchange(format!(
                "GitHub sent an unusable {name}"
            )));
        }
        Ok(format!("{name}='{value}'\n"))
    };
    let pem = app.pem.trim();
    if !pem.starts_with("-----BEGIN") || pem.contains(['"', '\\', '$']) {
        return Err(SetupError::Exchange(
            "GitHub sent no private key in PEM format".into(),
        ));
    }
    let webhook_secret = app
        .webhook_secret
        .as_deref()
        .ok_or_else(|| SetupError::Exchange("GitHub sent no webhook secret".into()))?;
    let mut text = String::from("# Written by `tollgate setup`: the GitHub App's credentials.\n");
    text.push_str(&format!("APP_ID={}\n", app.id));
    text.push_str(&format!(
        "PRIVATE_KEY=\"{}\\n\"\n",
        pem.lines().collect::<Vec<_>>().join("\\n")
    ));
    text.push_str(&literal("WEBHOOK_SECRET", webhook_secret)?);
    text.push_str(&literal("GITHUB_CLIENT_ID", &app.client_id)?);
    text.push_str(&literal("GITHUB_CLIENT_SECRET", &app.client_secret)?);
    Ok(text)
}

/// Writes `text` to a file only its owner may read, refusing to replace one unless `replace`.
fn write_private_file(path: &Path, text: &str, replace: bool) -> Result<(), SetupError> {
    let error = |e: std::io::Error| SetupError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if replace {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path).map_err(error)?;
        // A replaced file keeps its old mode: tighten it before writing secrets into it.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(error)?;
        file.write_all(text.as_bytes()).map_err(error)?;
        file.sync_all().map_err(error)
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path).map_err(error)?;
        file.write_all(text.as_bytes()).map_err(error)?;
        file.sync_all().map_err(error)
    }
}

static PAGES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for (name, source) in [
        (
            "start.html.j2",
            include_str!("../templates/setup/start.html.j2"),
        ),
        (
            "done.html.j2",
            include_str!("../templates/setup/done.html.j2"),
        ),
    ] {
        if let Err(error) = env.add_template(name, source) {
            panic!("setup template {name} does not compile: {error}");
        }
    }
    env
});

fn render(name: &str, view: &impl Serialize) -> String {
    let context = serde_json::to_value(view).unwrap_or_default();
    PAGES
        .get_template(name)
        .and_then(|template| template.render(crate::report::from_json(context)))
        .unwrap_or_else(|error| format!("cannot render {name}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app() -> CreatedApp {
        CreatedApp {
            id: 12,
            slug: "tollgate".into(),
            html_url: "https://github.com/apps/tollgate".into(),
            pem: "-----BEGIN RSA PRIVATE KEY-----\nMIIB\nAAAA\n-----END RSA PRIVATE KEY-----\n"
                .into(),
            webhook_secret: Some("e340154128314309".into()),
            client_id: "Iv1.8a61f9b3a7aba766".into(),
            client_secret: "1726be1638095a19".into(),
        }
    }

    #[test]
    fn env_file_round_trips_through_dotenv() {
        let text = env_file_text(&app()).unwrap();
        let vars: Vec<(String, String)> = dotenvy::from_read_iter(text.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let get = |name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(get("APP_ID"), "12");
        assert_eq!(get("WEBHOOK_SECRET"), "e340154128314309");
        assert_eq!(get("GITHUB_CLIENT_ID"), "Iv1.8a61f9b3a7aba766");
        assert_eq!(get("GITHUB_CLIENT_SECRET"), "1726be1638095a19");
        let key = get("PRIVATE_KEY").replace("\\n", "\n");
        assert_eq!(
            key,
            "-----BEGIN RSA PRIVATE KEY-----\nMIIB\nAAAA\n-----END RSA PRIVATE KEY-----\n"
        );
    }

    #[test]
    fn values_that_cannot_be_written_literally_are_refused() {
        let mut bad = app();
        bad.client_secret = "it's".into();
        assert!(env_file_text(&bad).is_err());
        let mut no_secret = app();
        no_secret.webhook_secret = None;
        assert!(env_file_text(&no_secret).is_err());
        let mut no_key = app();
        no_key.pem = "not a key".into();
        assert!(env_file_text(&no_key).is_err());
    }

    #[test]
    fn manifest_points_at_the_deployment_and_back_here() {
        let manifest = manifest_json(
            DEFAULT_MANIFEST,
            "https://tollgate.acme.test/api/github/webhooks",
            "http://127.0.0.1:3333/callback",
        )
        .unwrap();
        assert_eq!(
            manifest["hook_attributes"]["url"],
            "https://tollgate.acme.test/api/github/webhooks"
        );
        assert_eq!(manifest["hook_attributes"]["active"], true);
        assert_eq!(manifest["redirect_url"], "http://127.0.0.1:3333/callback");
        assert_eq!(manifest["default_permissions"]["checks"], "write");
        assert!(manifest_json(DEFAULT_MANIFEST, "not a url", "http://x/").is_err());
    }

    #[test]
    fn the_form_posts_to_the_user_or_the_organization() {
        assert_eq!(
            form_action("https://github.com/", None, "s1").unwrap(),
            "https://github.com/settings/apps/new?state=s1"
        );
        assert_eq!(
            form_action("https://ghe.acme.test", Some("acme"), "s1").unwrap(),
            "https://ghe.acme.test/organizations/acme/settings/apps/new?state=s1"
        );
        assert!(form_action("https://github.com", Some("a/b"), "s1").is_err());
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = render(
            "start.html.j2",
            &StartView {
                form_action: "https://github.com/settings/apps/new?state=abc",
                manifest: r#"{"name":"Tollgate","url":"https://x/?a=1&b=2"}"#,
                org: Some("acme"),
                github_web_url: "https://github.com",
                webhook_url: "https://tollgate.acme.test/api/github/webhooks",
                env_file: ".env".into(),
            },
        );
        insta::assert_snapshot!("setup_start_page", page);
        let done = render(
            "done.html.j2",
            &DoneView {
                error: None,
                slug: "tollgate".into(),
                app_id: 12,
                env_file: ".env".into(),
                install_url: "https://github.com/apps/tollgate/installations/new".into(),
            },
        );
        insta::assert_snapshot!("setup_done_page", done);
        let failed = render(
            "done.html.j2",
            &DoneView {
                error: Some("GitHub answered 404 <Not Found>".into()),
                ..DoneView::default()
            },
        );
        assert!(failed.contains("404 &lt;Not Found&gt;"), "{failed}");
    }
}
