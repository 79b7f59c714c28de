//! GitHub's "list pull request files" JSON (`GET /repos/{owner}/{repo}/pulls/{n}/files`) → diff
//! model.

use super::hunk::{LineError, parse_hunks};
use super::lines::Lines;
use super::{Diff, DiffError, FileChange, FileStatus};
use serde::{Deserialize, Serialize};

/// One entry of the "list pull request files" response. Lenient: unknown fields are ignored and
/// missing counts read as zero.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GithubFile {
    #[serde(default)]
    pub sha: Option<String>,
    pub filename: String,
    #[serde(default)]
    pub status: GithubFileStatus,
    #[serde(default)]
    pub additions: u32,
    #[serde(default)]
    pub deletions: u32,
    #[serde(default)]
    pub changes: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contents_url: Option<String>,
    /// The hunks only, without file headers; GitHub leaves it out for binary and very large
    /// diffs.
    #[serde(default)]
    pub patch: Option<String>,
    #[serde(default)]
    pub previous_filename: Option<String>,
}

/// The `status` of a [`GithubFile`]; values GitHub may add later read as [`Self::Unknown`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GithubFileStatus {
    Added,
    Removed,
    #[default]
    Modified,
    Renamed,
    Copied,
    /// Only the mode changed.
    Changed,
    Unchanged,
    #[serde(other)]
    Unknown,
}

/// Builds the diff model from GitHub's file list, parsing each `patch` as unified diff hunks.
pub fn from_github_files(files: &[GithubFile]) -> Result<Diff, DiffError> {
    let files = files.iter().map(file_change).collect::<Result<_, _>>()?;
    Ok(Diff { files })
}

fn file_change(file: &GithubFile) -> Result<FileChange, DiffError> {
    let status = match file.status {
        GithubFileStatus::Added => FileStatus::Added,
        GithubFileStatus::Removed => FileStatus::Deleted,
        GithubFileStatus::Renamed => FileStatus::Renamed,
        GithubFileStatus::Copied => FileStatus::Copied,
        GithubFileStatus::Modified
        | GithubFileStatus::Changed
        | GithubFileStatus::Unchanged
        | GithubFileStatus::Unknown => FileStatus::Modified,
    };
    let name = Some(file.filename.clone());
    let old_path = match status {
        FileStatus::Added => None,
        FileStatus::Renamed | FileStatus::Copied => file.previous_filename.clone().or(name.clone()),
        FileStatus::Modified | FileStatus::Deleted => name.clone(),
    };
    let new_path = name.filter(|_| status != FileStatus::Deleted);
    let mut change = FileChange::new(status, old_path, new_path);
    match &file.patch {
        Some(patch) => read_patch(patch, &mut change).map_err(|e| e.in_patch(&file.filename))?,
        None => {
            change.patch_available = false;
            change.additions = file.additions;
            change.deletions = file.deletions;
            change.binary = looks_binary(file);
        }
    }
    Ok(change)
}

/// Parses a `patch`: hunks only, possibly followed by blank lines.
fn read_patch(patch: &str, change: &mut FileChange) -> Result<(), LineError> {
    let mut lines = Lines::new(patch.as_bytes());
    parse_hunks(&mut lines, change)?;
    while lines.peek() == Some(b"") {
        lines.advance();
    }
    match lines.peek() {
        Some(_) => Err(LineError::new(
            lines.number(),
            "expected a hunk header like `@@ -1,2 +1,3 @@`",
        )),
        None => Ok(()),
    }
}

/// GitHub gives no patch and zero counts for a binary file that was added, changed or removed;
/// without a patch, that is the only sign of binary content.
fn looks_binary(file: &GithubFile) -> bool {
    let counted = file.additions > 0 || file.deletions > 0 || file.changes > 0;
    let content_status = matches!(
        file.status,
        GithubFileStatus::Added | GithubFileStatus::Modified | GithubFileStatus::Removed
    );
    !counted && content_status
}
