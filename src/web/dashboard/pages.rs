//! The dashboard's pages.

use super::{Credential, PageUser, templates};
use axum::response::{Html, IntoResponse, Redirect, Response};

/// The installations the user may open, with their role in each.
pub async fn index(PageUser(user): PageUser) -> Response {
    match &user.credential {
        Credential::Session { csrf_token, .. } => {
            let page: Html<String> = templates::index(&user.login, csrf_token, &user.access);
            page.into_response()
        }
        Credential::Token { .. } => Redirect::to("/dashboard/login").into_response(),
    }
}
