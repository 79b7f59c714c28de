//! The dashboard's pages: minijinja templates compiled into the binary, HTML-escaped.

use super::access::InstallationAccess;
use crate::report::{from_json, strict_environment};
use axum::response::Html;
use minijinja::{AutoEscape, Environment};
use serde::Serialize;
use serde_json::json;
use std::sync::LazyLock;

/// The dashboard's templates, compiled into the binary.
macro_rules! dashboard_templates {
    ($($name:literal),* $(,)?) => {
        [$((
            concat!("dashboard/", $name, ".html.j2"),
            include_str!(concat!("../../../templates/dashboard/", $name, ".html.j2")),
        )),*]
    };
}

const TEMPLATES: &[(&str, &str)] = &dashboard_templates!(
    "layout",
    "index",
    "login_failed",
    "logged_out",
    "error",
    "macros",
    "installation",
    "overview",
    "violations",
    "pull_request",
    "alerts",
    "audit",
    "pulls",
    "rule",
    "trends",
);

static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = strict_environment();
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    for &(name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e}"));
    }
    env
});

/// Renders a page; `name` is the template's file name under `templates/dashboard/`, without
/// `.html.j2`.
pub fn page(name: &str, context: serde_json::Value) -> Html<String> {
    render(&format!("dashboard/{name}.html.j2"), context)
}

fn render(name: &str, context: serde_json::Value) -> Html<String> {
    let rendered = ENVIRONMENT
        .get_template(name)
        .and_then(|t| t.render(from_json(context)))
        .unwrap_or_else(|error| {
            // Templates are compiled in and snapshot-tested; a failure here is a bug.
            tracing::error!(%error, template = name, "a dashboard page failed to render");
            "Tollgate could not render this page.".to_owned()
        });
    Html(rendered)
}

/// Why a login did not go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginProblem {
    Cancelled,
    StateMismatch,
    Github,
    Internal,
}

pub fn login_failed(problem: LoginProblem) -> Html<String> {
    render(
        "dashboard/login_failed.html.j2",
        json!({ "problem": problem }),
    )
}

pub fn logged_out() -> Html<String> {
    render("dashboard/logged_out.html.j2", json!({}))
}

pub fn index(login: &str, csrf_token: &str, installations: &[InstallationAccess]) -> Html<String> {
    render(
        "dashboard/index.html.j2",
        json!({ "login": login, "csrf_token": csrf_token, "installations": installations }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::dashboard::access::Role;

    #[test]
    fn the_installations_page() {
        let installations = [
            InstallationAccess {
                installation_id: 77,
                account: "acme".into(),
                role: Role::Admin,
            },
            InstallationAccess {
                installation_id: 78,
                account: "<script>".into(),
                role: Role::Viewer,
            },
        ];
        insta::assert_snapshot!(index("alice", "CSRF-TOKEN", &installations).0);
    }

    #[test]
    fn the_login_failed_pages() {
        for problem in [
            LoginProblem::Cancelled,
            LoginProblem::StateMismatch,
            LoginProblem::Github,
            LoginProblem::Internal,
        ] {
            insta::assert_snapshot!(format!("{problem:?}"), login_failed(problem).0);
        }
    }
}
