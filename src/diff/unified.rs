//! Unified diff parser (to be written).
use super::{Diff, DiffError};

pub fn parse_unified(_input: &[u8]) -> Result<Diff, DiffError> {
    Ok(Diff::default())
}
