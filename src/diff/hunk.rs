//! Hunks (`@@ -l,s +l,s @@` and the lines under them): the part both diff sources share.

use super::lines::Lines;
use super::{DiffError, FileChange, HunkStart, Line};

/// A parse error at a 1-based line; which [`DiffError`] it becomes depends on the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LineError {
    pub(super) line: usize,
    pub(super) message: String,
}

impl LineError {
    pub(super) fn new(line: usize, message: impl Into<String>) -> Self {
        Self {
            line,
            message: message.into(),
        }
    }

    /// The error as one inside the `patch` of a GitHub file entry.
    pub(super) fn in_patch(self, path: &str) -> DiffError {
        DiffError::MalformedPatch {
            path: path.to_owned(),
            line: self.line,
            message: self.message,
        }
    }
}

impl From<LineError> for DiffError {
    fn from(err: LineError) -> Self {
        DiffError::Malformed {
            line: err.line,
            message: err.message,
        }
    }
}

/// One side of a hunk header: the first line number and how many lines follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    start: u32,
    count: u32,
}

const HEADER_EXPECTED: &str = "expected a hunk header like `@@ -1,2 +1,3 @@`";

/// Parses consecutive hunks into `file`, stopping at the first line that does not start one.
pub(super) fn parse_hunks(lines: &mut Lines<'_>, file: &mut FileChange) -> Result<(), LineError> {
    while let Some(line) = lines.peek()
        && line.starts_with(b"@@")
    {
        let (old, new) =
            parse_header(line).ok_or_else(|| LineError::new(lines.number(), HEADER_EXPECTED))?;
        file.hunks.push(HunkStart {
            line: new.start,
            section: section_of(line),
        });
        lines.advance();
        parse_body(lines, file, old, new)?;
    }
    Ok(())
}

/// Reads `@@ -start[,count] +start[,count] @@[ section]`.
fn parse_header(line: &[u8]) -> Option<(Range, Range)> {
    let rest = line.strip_prefix(b"@@ -")?;
    let (old, rest) = parse_range(rest)?;
    let rest = rest.strip_prefix(b" +")?;
    let (new, rest) = parse_range(rest)?;
    rest.starts_with(b" @@").then_some((old, new))
}

/// The text after the header's closing `@@` (git's enclosing-function line), trimmed of the one
/// space git puts before it.
fn section_of(line: &[u8]) -> String {
    let after = line
        .get(2..)
        .and_then(|rest| {
            rest.windows(2)
                .position(|w| w == b"@@")
                .map(|i| &rest[i + 2..])
        })
        .unwrap_or_default();
    let after = after.strip_prefix(b" ").unwrap_or(after);
    String::from_utf8_lossy(after).into_owned()
}

/// Reads `start[,count]` (the count defaults to 1). Rejects ranges whose line numbers would not
/// fit a `u32`, so numbering inside the hunk cannot overflow.
fn parse_range(input: &[u8]) -> Option<(Range, &[u8])> {
    let (start, rest) = parse_u32(input)?;
    let (count, rest) = match rest.strip_prefix(b",") {
        Some(rest) => parse_u32(rest)?,
        None => (1, rest),
    };
    let valid = (start > 0 || count == 0) && start.checked_add(count).is_some();
    valid.then_some((Range { start, count }, rest))
}

fn parse_u32(input: &[u8]) -> Option<(u32, &[u8])> {
    let digits = input.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let value = input[..digits].iter().try_fold(0u32, |acc, &d| {
        acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
    })?;
    Some((value, &input[digits..]))
}

/// Reads exactly the lines the header counts, plus any `\ No newline at end of file` markers.
/// An empty line counts as an empty context line, as in git, for tools that strip the space.
fn parse_body(
    lines: &mut Lines<'_>,
    file: &mut FileChange,
    old: Range,
    new: Range,
) -> Result<(), LineError> {
    let (mut old_number, mut old_left) = (old.start, old.count);
    let (mut new_number, mut new_left) = (new.start, new.count);
    // Whether the previous line exists on the new side (context or added), so that a following
    // `\` marker says the new file ends without a newline.
    let mut last_on_new_side = false;
    loop {
        let Some(line) = lines.peek() else {
            if old_left == 0 && new_left == 0 {
                return Ok(());
            }
            return Err(LineError::new(
                lines.number(),
                format!(
                    "hunk ends early: expected {old_left} more old and {new_left} more new lines"
                ),
            ));
        };
        let (marker, text) = line.split_first().map_or((b' ', line), |(m, t)| (*m, t));
        if marker == b'\\' {
            if last_on_new_side {
                file.new_missing_final_newline = true;
            }
            lines.advance();
            continue;
        }
        if old_left == 0 && new_left == 0 {
            return Ok(());
        }
        match marker {
            b' ' if old_left > 0 && new_left > 0 => {
                file.context.push(line_at(new_number, text));
                old_number += 1;
                old_left -= 1;
                new_number += 1;
                new_left -= 1;
                last_on_new_side = true;
            }
            b'+' if new_left > 0 => {
                file.added.push(line_at(new_number, text));
                file.additions = file.additions.saturating_add(1);
                new_number += 1;
                new_left -= 1;
                last_on_new_side = true;
            }
            b'-' if old_left > 0 => {
                file.removed.push(line_at(old_number, text));
                file.deletions = file.deletions.saturating_add(1);
                old_number += 1;
                old_left -= 1;
                last_on_new_side = false;
            }
            b' ' | b'+' | b'-' => {
                return Err(LineError::new(
                    lines.number(),
                    format!(
                        "line exceeds the hunk header's counts: expected {old_left} more old and \
                         {new_left} more new lines"
                    ),
                ));
            }
            _ => {
                return Err(LineError::new(
                    lines.number(),
                    "expected a hunk line starting with ' ', '+', '-' or '\\'",
                ));
            }
        }
        lines.advance();
    }
}

fn line_at(number: u32, text: &[u8]) -> Line {
    // `from_utf8` has a fast path for ASCII that the lossy conversion lacks.
    let text = match std::str::from_utf8(text) {
        Ok(text) => text.to_owned(),
        Err(_) => String::from_utf8_lossy(text).into_owned(),
    };
    Line { number, text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_counts_default_to_one() {
        let range = |start, count| Range { start, count };
        assert_eq!(
            parse_header(b"@@ -3 +4,0 @@ fn main"),
            Some((range(3, 1), range(4, 0)))
        );
        assert_eq!(
            parse_header(b"@@ -0,0 +1 @@"),
            Some((range(0, 0), range(1, 1)))
        );
    }

    #[test]
    fn section_is_the_text_after_the_header() {
        assert_eq!(section_of(b"@@ -3 +4,0 @@ mod tests {"), "mod tests {");
        assert_eq!(section_of(b"@@ -3 +4,0 @@"), "");
        assert_eq!(section_of(b"@@ -3 +4 @@  indented"), " indented");
    }

    #[test]
    fn header_rejects_nonsense() {
        for bad in [
            &b"@@ -a +b @@"[..],
            b"@@ -1 +1",
            b"@@ -1,2+1 @@",
            b"@@ -0,1 +1 @@",
            b"@@ -4294967295,2 +1 @@",
            b"@@ -99999999999 +1 @@",
            b"@@@ -1 -1 +1 @@@",
        ] {
            assert_eq!(parse_header(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }
}
