//! The diff model: what changed in a pull request, file by file, line by line. Pure.
//!
//! Built from a unified diff (`git diff`, GitHub's diff media type) by [`parse_unified`], or from
//! GitHub's "list pull request files" JSON by [`from_github_files`].

mod github;
mod hunk;
mod lines;
mod names;
mod syntax;
mod unified;

pub use github::{GithubFile, from_github_files};
pub use syntax::{LineKind, LineSyntax, classify};
pub use unified::parse_unified;

use serde::Serialize;

/// Every changed file of a change set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub files: Vec<FileChange>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
}

/// One line of a hunk with its number in the new file (added lines) or the old file (removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub number: u32,
    /// The line's text without its `+`/`-` prefix and line ending; non-UTF-8 bytes are replaced
    /// with U+FFFD.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub status: FileStatus,
    /// `None` for an added file.
    pub old_path: Option<String>,
    /// `None` for a deleted file.
    pub new_path: Option<String>,
    pub old_mode: Option<String>,
    pub new_mode: Option<String>,
    pub binary: bool,
    /// False when the source had no patch for this file (GitHub leaves it out for binary and very
    /// large files): its lines were not evaluated.
    pub patch_available: bool,
    pub additions: u32,
    pub deletions: u32,
    pub added: Vec<Line>,
    pub removed: Vec<Line>,
    /// Unchanged lines shown around the changes, numbered in the new file: they let the syntax
    /// classifier see the comment or test block an added line sits in.
    pub context: Vec<Line>,
    /// Where each hunk starts in the new file, with the section text git prints after its header
    /// (`@@ -10,6 +10,8 @@ mod tests {`): the enclosing function or block, often out of view.
    pub hunks: Vec<HunkStart>,
    /// The new side ends without a newline (`\ No newline at end of file` after an added or
    /// context line of the last hunk).
    pub new_missing_final_newline: bool,
}

impl FileChange {
    /// A change with no lines yet, its patch available and its modes unknown.
    pub fn new(status: FileStatus, old_path: Option<String>, new_path: Option<String>) -> Self {
        Self {
            status,
            old_path,
            new_path,
            old_mode: None,
            new_mode: None,
            binary: false,
            patch_available: true,
            additions: 0,
            deletions: 0,
            added: Vec::new(),
            removed: Vec::new(),
            context: Vec::new(),
            hunks: Vec::new(),
            new_missing_final_newline: false,
        }
    }

    /// The path a reader knows the file by: the new path, or the old one for a deletion.
    pub fn path(&self) -> &str {
        self.new_path
            .as_deref()
            .or(self.old_path.as_deref())
            .unwrap_or_default()
    }
}

/// The first new-side line of a hunk and the section text after its header (empty if none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HunkStart {
    pub line: u32,
    pub section: String,
}

/// A diff that cannot be read, with the 1-based line of the input where reading stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiffError {
    #[error("malformed diff at line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("malformed patch for {path} at patch line {line}: {message}")]
    MalformedPatch {
        path: String,
        line: usize,
        message: String,
    },
}
