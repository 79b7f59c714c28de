//! Where the shared fixtures are: `../shared` beside the project, as every developer and CI has
//! it, or the directory `TOLLGATE_SHARED_DIR` names (a git worktree or a checkout elsewhere).
//! A user's clone has neither; conformance passes then skip and say so.

use std::path::{Path, PathBuf};

/// The variable that points the tests at the shared folder when it is not `../shared`.
pub const SHARED_DIR_VARIABLE: &str = "TOLLGATE_SHARED_DIR";

/// `<shared>/<relative>`, whether or not it exists.
pub fn shared_path(relative: &str) -> PathBuf {
    let root = match std::env::var_os(SHARED_DIR_VARIABLE) {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"),
    };
    root.join(relative)
}
