//! GitHub "list pull request files" JSON → diff model (to be written).
use super::{Diff, DiffError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct GithubFile {
    pub filename: String,
}

pub fn from_github_files(_files: &[GithubFile]) -> Result<Diff, DiffError> {
    Ok(Diff::default())
}
