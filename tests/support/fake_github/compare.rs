//! The fake GitHub's "compare two commits" endpoint (`GET /repos/{owner}/{repo}/compare/{basehead}`)
//! in GitHub's wire format: the changed files are listed on the first page only, at most 300 for
//! the whole comparison; `per_page` and `page` page through the commits.

use super::{FakeGithub, Incoming, Reply, Repo, user_json};
use serde_json::{Value, json};

/// GitHub lists at most 300 changed files of a comparison.
const MAX_COMPARE_FILES: usize = 300;
/// Without paging parameters GitHub lists up to 250 commits.
const UNPAGED_COMMITS: usize = 250;

/// A comparison to serve: the files changed from `base`'s merge base to `head`.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub files: Vec<Value>,
    /// Commits between the two, oldest first (their SHAs).
    pub commits: Vec<String>,
}

impl FakeGithub {
    /// Serves `base...head` with these files (entries as from [`super::file_entry`]) and one
    /// commit, `head`.
    pub fn set_comparison(
        &self,
        owner: &str,
        repo: &str,
        base: &str,
        head: &str,
        files: Vec<Value>,
    ) {
        let mut state = self.state();
        state.repo_mut(owner, repo).comparisons.insert(
            (base.to_owned(), head.to_owned()),
            Comparison {
                files,
                commits: vec![head.to_owned()],
            },
        );
    }
}

/// Answers `compare/{basehead}` (`basehead` as in the path, percent-decoded).
pub(super) fn serve(repo: &Repo, req: &Incoming<'_>, basehead: &str) -> Reply {
    let Some((base, head)) = basehead.split_once("...") else {
        return Reply::not_found();
    };
    let Some(comparison) = repo.comparisons.get(&(base.to_owned(), head.to_owned())) else {
        return Reply::not_found();
    };
    let paged = req.query.contains_key("per_page") || req.query.contains_key("page");
    let per_page = req.query_number("per_page", 30).clamp(1, 100);
    let page = req.query_number("page", 1).max(1);
    let commits: Vec<Value> = if paged {
        comparison
            .commits
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|sha| commit_json(repo, sha))
            .collect()
    } else {
        let skip = comparison.commits.len().saturating_sub(UNPAGED_COMMITS);
        comparison
            .commits
            .iter()
            .skip(skip)
            .map(|sha| commit_json(repo, sha))
            .collect()
    };
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let mut body = json!({
        "url": format!("https://api.github.com/repos/{full_name}/compare/{base}...{head}"),
        "html_url": format!("https://github.com/{full_name}/compare/{base}...{head}"),
        "permalink_url": format!("https://github.com/{full_name}/compare/{base}...{head}"),
        "diff_url": format!("https://github.com/{full_name}/compare/{base}...{head}.diff"),
        "patch_url": format!("https://github.com/{full_name}/compare/{base}...{head}.patch"),
        "base_commit": commit_json(repo, base),
        "merge_base_commit": commit_json(repo, base),
        "status": "ahead",
        "ahead_by": comparison.commits.len(),
        "behind_by": 0,
        "total_commits": comparison.commits.len(),
        "commits": commits,
    });
    // The files come with the first page only.
    if !paged || page == 1 {
        let listed = &comparison.files[..comparison.files.len().min(MAX_COMPARE_FILES)];
        body["files"] = Value::Array(listed.to_vec());
    }
    Reply::json(200, body)
}

fn commit_json(repo: &Repo, sha: &str) -> Value {
    let full_name = format!("{}/{}", repo.owner, repo.name);
    let person = json!({ "name": "Octo Cat", "email": "octocat@example.com", "date": "2026-01-01T00:00:00Z" });
    json!({
        "url": format!("https://api.github.com/repos/{full_name}/commits/{sha}"),
        "sha": sha,
        "node_id": "C_fake",
        "html_url": format!("https://github.com/{full_name}/commit/{sha}"),
        "comments_url": format!("https://api.github.com/repos/{full_name}/commits/{sha}/comments"),
        "commit": {
            "url": format!("https://api.github.com/repos/{full_name}/git/commits/{sha}"),
            "author": person,
            "committer": person,
            "message": "Change things",
            "comment_count": 0,
            "tree": { "sha": sha, "url": format!("https://api.github.com/repos/{full_name}/git/trees/{sha}") },
        },
        "author": user_json("octocat"),
        "committer": user_json("octocat"),
        "parents": [],
    })
}
