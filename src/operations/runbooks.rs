//! `tollgate runbooks`: writes the rule runbooks rendered from the default pack's
//! `policies/rules.yaml`, or (with `--check`) lists the pages that are missing or stale.

use crate::policy::{PolicyError, PolicyPack};
use crate::report::{RunbookPage, render_runbooks};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    #[error("cannot load the policy pack: {0}")]
    Policy(#[from] PolicyError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The pages the default pack renders to.
pub fn default_pages() -> Result<Vec<RunbookPage>, RunbookError> {
    Ok(render_runbooks(&PolicyPack::default_pack()?.catalog))
}

/// Pages under `dir` whose text differs from `pages` (or that do not exist).
pub fn stale_pages(dir: &Path, pages: &[RunbookPage]) -> Vec<PathBuf> {
    pages
        .iter()
        .map(|page| dir.join(&page.path))
        .zip(pages)
        .filter(|(path, page)| std::fs::read_to_string(path).ok().as_deref() != Some(&page.text))
        .map(|(path, _)| path)
        .collect()
}

/// Writes every page that changed; returns the paths written.
pub fn write_pages(dir: &Path, pages: &[RunbookPage]) -> Result<Vec<PathBuf>, RunbookError> {
    let stale = stale_pages(dir, pages);
    for page in pages {
        let path = dir.join(&page.path);
        if !stale.contains(&path) {
            continue;
        }
        let io = |source| RunbookError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&path, &page.text).map_err(io)?;
    }
    Ok(stale)
}
