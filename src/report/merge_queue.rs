//! What a merge-group evaluation shows: the comment a failed group leaves on the pull requests
//! it holds, and the check run of a group whose pull requests are trusted.

use super::templates::render;
use super::view::{LocationView, plain_location};
use crate::domain::Violation;
use crate::policy::Catalog;
use serde::Serialize;

/// The hidden first line of the comment a failed merge group leaves on a pull request: a retry
/// finds the comment by it instead of posting again.
pub fn merge_group_comment_key(head_sha: &str) -> String {
    format!("<!-- tollgate:merge-group:{head_sha} -->")
}

/// A failed merge group, as told to one pull request it holds.
pub struct MergeGroupComment<'a> {
    pub catalog: &'a Catalog,
    pub head_sha: &'a str,
    pub base_branch: &'a str,
    /// Every pull request of the group, oldest first.
    pub pull_requests: &'a [u64],
    /// The group's violations this pull request's own latest evaluation did not have.
    pub introduced: &'a [Violation],
}

#[derive(Serialize)]
struct CommentView<'a> {
    marker: String,
    head_sha: &'a str,
    base_branch: &'a str,
    pull_requests: &'a [u64],
    introduced: Vec<LocationView<'a>>,
}

pub fn render_merge_group_comment(comment: &MergeGroupComment) -> String {
    let view = CommentView {
        marker: merge_group_comment_key(comment.head_sha),
        head_sha: comment.head_sha,
        base_branch: comment.base_branch,
        pull_requests: comment.pull_requests,
        introduced: comment
            .introduced
            .iter()
            .map(|v| plain_location(comment.catalog, v))
            .collect(),
    };
    render("merge_queue/comment.md.j2", &view)
}

/// A merge group judged by its pull requests' own results (`merge_queue: trust_pull_requests`).
#[derive(Serialize)]
pub struct MergeGroupTrust<'a> {
    pub head_sha: &'a str,
    pub base_branch: &'a str,
    pub pull_requests: &'a [u64],
    /// The pull requests without a passing evaluation of their head.
    pub untrusted: &'a [u64],
}

pub fn render_trusted_summary(trust: &MergeGroupTrust) -> String {
    render("merge_queue/trusted.md.j2", trust)
}

pub fn render_trusted_title(trust: &MergeGroupTrust) -> String {
    render("merge_queue/trusted_title.txt.j2", trust)
        .trim_end()
        .to_owned()
}
