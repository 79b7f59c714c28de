//! Unified diff parser: `git diff` (with `-M -C`, `--binary`), `git log -p`, `git format-patch`,
//! GitHub's diff media type and plain `diff -u`.

use super::hunk::{LineError, parse_hunks};
use super::lines::Lines;
use super::names::{parse_name, split_git_names, strip_prefixes};
use super::{Diff, DiffError, FileChange, FileStatus};

/// Parses a unified diff. Text between file diffs that is not part of one (commit headers, mail
/// headers, messages, diffstats) is skipped; input with no file diff at all is an error unless it
/// is blank. Combined diffs of merges (`diff --cc`) are skipped: they add nothing of their own.
pub fn parse_unified(input: &[u8]) -> Result<Diff, DiffError> {
    let mut lines = Lines::new(input);
    let mut diff = Diff::default();
    let mut found = false;
    while let Some(line) = lines.peek() {
        if let Some(names) = line.strip_prefix(b"diff --git ") {
            found = true;
            diff.files.push(git_file(&mut lines, names)?);
        } else if line.starts_with(b"diff --cc ") || line.starts_with(b"diff --combined ") {
            found = true;
            skip_combined(&mut lines);
        } else if line.starts_with(b"--- ")
            && lines
                .peek_next()
                .is_some_and(|next| next.starts_with(b"+++ "))
        {
            found = true;
            diff.files.push(plain_file(&mut lines)?);
        } else {
            lines.advance();
        }
    }
    if !found && input.iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(LineError::new(1, "no diff found").into());
    }
    Ok(diff)
}

/// What the header lines of one file diff say, before deciding its status and names.
#[derive(Default)]
struct Header {
    /// The names of the `diff --git` line, prefixes on.
    git_names: Option<(String, String)>,
    /// The names of the `---`/`+++` lines, prefixes on; `None` inside for `/dev/null`.
    markers: Option<(Option<String>, Option<String>)>,
    /// The names of `rename`/`copy` `from`/`to` lines, which git writes without prefixes.
    source: Option<String>,
    target: Option<String>,
    /// Set by the `new file`, `deleted file`, `rename` and `copy` headers.
    status: Option<FileStatus>,
    old_mode: Option<String>,
    new_mode: Option<String>,
    /// The mode of an `index` line, which git only writes when the mode did not change.
    index_mode: Option<String>,
    binary: bool,
}

/// Parses one `diff --git` file diff; `names` is the rest of its first line.
fn git_file(lines: &mut Lines<'_>, names: &[u8]) -> Result<FileChange, LineError> {
    let start = lines.number();
    let mut header = Header {
        git_names: split_git_names(names),
        ..Header::default()
    };
    lines.advance();
    while let Some(line) = lines.peek() {
        if line.starts_with(b"--- ") {
            read_markers(lines, &mut header)?;
            break;
        } else if line == b"GIT binary patch" {
            header.binary = true;
            lines.advance();
            skip_binary_patch(lines);
        } else if header.read_extended(line) {
            lines.advance();
        } else {
            break;
        }
    }
    let mut file = header.into_file(start)?;
    parse_hunks(lines, &mut file)?;
    Ok(file)
}

/// Parses one file diff of plain `diff -u`, which starts at its `---` line.
fn plain_file(lines: &mut Lines<'_>) -> Result<FileChange, LineError> {
    let start = lines.number();
    let mut header = Header::default();
    read_markers(lines, &mut header)?;
    let mut file = header.into_file(start)?;
    parse_hunks(lines, &mut file)?;
    Ok(file)
}

/// Reads the `---` line and the `+++` line that must follow it.
fn read_markers(lines: &mut Lines<'_>, header: &mut Header) -> Result<(), LineError> {
    let old = lines
        .peek()
        .and_then(|l| l.strip_prefix(b"--- "))
        .map(marker_name);
    lines.advance();
    let new = lines
        .peek()
        .and_then(|l| l.strip_prefix(b"+++ "))
        .map(marker_name);
    let (Some(old), Some(new)) = (old, new) else {
        return Err(LineError::new(
            lines.number(),
            "expected a `+++ ` line after `--- `",
        ));
    };
    lines.advance();
    header.markers = Some((old, new));
    Ok(())
}

/// The name of a `---`/`+++` line, `None` for `/dev/null`.
fn marker_name(field: &[u8]) -> Option<String> {
    Some(parse_name(field)).filter(|name| name != "/dev/null")
}

/// Skips the `literal`/`delta` blocks of a `GIT binary patch`: base85 lines (which never hold a
/// space) up to a blank line.
fn skip_binary_patch(lines: &mut Lines<'_>) {
    while lines
        .peek()
        .is_some_and(|l| l.starts_with(b"literal ") || l.starts_with(b"delta "))
    {
        lines.advance();
        while lines
            .peek()
            .is_some_and(|l| !l.is_empty() && !l.contains(&b' '))
        {
            lines.advance();
        }
        if lines.peek() == Some(b"") {
            lines.advance();
        }
    }
}

/// Skips a combined diff up to the next `diff` line; its lines all start with markers or
/// headers, so no such line can be part of it.
fn skip_combined(lines: &mut Lines<'_>) {
    lines.advance();
    while lines.peek().is_some_and(|l| !l.starts_with(b"diff ")) {
        lines.advance();
    }
}

impl Header {
    /// Takes in one extended header line of a git file diff; false when `line` is not one.
    fn read_extended(&mut self, line: &[u8]) -> bool {
        let text = |rest: &[u8]| String::from_utf8_lossy(rest).trim().to_owned();
        if let Some(mode) = line.strip_prefix(b"old mode ") {
            self.old_mode = Some(text(mode));
        } else if let Some(mode) = line.strip_prefix(b"new mode ") {
            self.new_mode = Some(text(mode));
        } else if let Some(mode) = line.strip_prefix(b"new file mode ") {
            self.status = Some(FileStatus::Added);
            self.new_mode = Some(text(mode));
        } else if let Some(mode) = line.strip_prefix(b"deleted file mode ") {
            self.status = Some(FileStatus::Deleted);
            self.old_mode = Some(text(mode));
        } else if let Some(name) = line.strip_prefix(b"rename from ") {
            self.status = Some(FileStatus::Renamed);
            self.source = Some(parse_name(name));
        } else if let Some(name) = line.strip_prefix(b"rename to ") {
            self.status = Some(FileStatus::Renamed);
            self.target = Some(parse_name(name));
        } else if let Some(name) = line.strip_prefix(b"copy from ") {
            self.status = Some(FileStatus::Copied);
            self.source = Some(parse_name(name));
        } else if let Some(name) = line.strip_prefix(b"copy to ") {
            self.status = Some(FileStatus::Copied);
            self.target = Some(parse_name(name));
        } else if let Some(rest) = line.strip_prefix(b"index ") {
            let mode = rest.split(|&b| b == b' ').nth(1);
            self.index_mode = mode.map(text);
        } else if line.starts_with(b"Binary files ") {
            self.binary = true;
        } else {
            return line.starts_with(b"similarity index ")
                || line.starts_with(b"dissimilarity index ");
        }
        true
    }

    /// Decides status, names and modes. `start` is the first line of the file diff.
    fn into_file(self, start: usize) -> Result<FileChange, LineError> {
        let status = match (self.status, &self.markers) {
            (Some(status), _) => status,
            (None, Some((None, _))) => FileStatus::Added,
            (None, Some((_, None))) => FileStatus::Deleted,
            (None, _) => FileStatus::Modified,
        };
        let (git_old, git_new) = self.git_names.unzip();
        let (marker_old, marker_new) = self.markers.unzip();
        let (old, new) = strip_prefixes(
            marker_old.flatten().or(git_old),
            marker_new.flatten().or(git_new),
        );
        let old_path = self.source.or(old).filter(|_| status != FileStatus::Added);
        let new_path = self
            .target
            .or(new)
            .filter(|_| status != FileStatus::Deleted);
        let named = match status {
            FileStatus::Added => new_path.is_some(),
            FileStatus::Deleted => old_path.is_some(),
            _ => old_path.is_some() && new_path.is_some(),
        };
        if !named {
            return Err(LineError::new(
                start,
                "cannot tell the file's name from its headers",
            ));
        }
        let old_mode = self
            .old_mode
            .or_else(|| old_path.as_ref().and(self.index_mode.clone()));
        let new_mode = self
            .new_mode
            .or_else(|| new_path.as_ref().and(self.index_mode));
        Ok(FileChange {
            old_mode,
            new_mode,
            binary: self.binary,
            ..FileChange::new(status, old_path, new_path)
        })
    }
}
