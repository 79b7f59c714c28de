//! Just enough CommonMark block structure to tell which lines of a comment a reader sees as plain
//! top-level text, where a command may start.
//!
//! Skipped: fenced code blocks (```` ``` ```` and `~~~`, indented up to three spaces or directly
//! after a list marker; an unclosed fence runs to the end), indented code (four or more columns),
//! block quotes (any line whose first character is `>`) and HTML comments (`<!--` anywhere on a
//! prose line up to the next `-->`, on any later line). Where this differs from a full Markdown
//! parser it errs towards skipping a line: a missed command gets no answer and can be typed again,
//! a command read out of a code sample or a hidden marker would act.
//!
//! One pass, constant state, no backtracking: linear in the length of the comment.

use std::borrow::Cow;

/// Lines of `body` that are top-level prose, as `(1-based line number, text after the indent)`.
/// Lines end at `\n`, `\r\n` or a lone `\r`.
pub(super) fn prose_lines(body: &str) -> ProseLines<'_> {
    ProseLines {
        rest: Some(body),
        number: 0,
        fence: None,
        in_comment: false,
    }
}

/// `text` without the HTML comments a reader does not see; an unclosed comment hides the rest.
pub(super) fn without_comments(text: &str) -> Cow<'_, str> {
    if !text.contains(COMMENT_OPEN) {
        return Cow::Borrowed(text);
    }
    let mut visible = String::with_capacity(text.len());
    visible_spans(text, false, |span| visible.push_str(span));
    Cow::Owned(visible)
}

pub(super) struct ProseLines<'a> {
    rest: Option<&'a str>,
    number: usize,
    fence: Option<Fence>,
    in_comment: bool,
}

/// An open fenced code block.
struct Fence {
    marker: u8,
    len: usize,
    /// Column where the content of the enclosing list item starts (0 at top level): a non-blank
    /// line indented less than this ends the list item and so the fence.
    content_column: usize,
}

impl<'a> Iterator for ProseLines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.next_line()?;
            if let Some(text) = self.classify(line) {
                return Some((self.number, text));
            }
        }
    }
}

impl<'a> ProseLines<'a> {
    fn next_line(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        self.number += 1;
        match rest.find(['\r', '\n']) {
            Some(end) => {
                let ending = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                self.rest = Some(&rest[end + ending..]);
                Some(&rest[..end])
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }

    /// Updates the block state with `line`; returns its text after the indent when it is prose.
    fn classify(&mut self, line: &'a str) -> Option<&'a str> {
        let (column, start) = indent(line);
        let text = &line[start..];

        if let Some(fence) = &self.fence {
            let dedented = !text.is_empty() && column < fence.content_column;
            if !dedented {
                if column.saturating_sub(fence.content_column) <= 3 && closes(text, fence) {
                    self.fence = None;
                }
                return None;
            }
            // The list item holding the fence ended; the line is read as if the fence were closed.
            self.fence = None;
        }
        if self.in_comment {
            self.in_comment = visible_spans(line, true, |_| {});
            return None;
        }
        if column >= 4 || text.starts_with('>') {
            return None;
        }
        if let Some(fence) = opens_fence(text, column) {
            self.fence = Some(fence);
            return None;
        }
        self.in_comment = visible_spans(text, false, |_| {});
        Some(text)
    }
}

/// The indent of `line` in columns (tabs stop every four) and the byte offset of its first other
/// character.
fn indent(line: &str) -> (usize, usize) {
    let mut column = 0;
    for (offset, byte) in line.bytes().enumerate() {
        match byte {
            b' ' => column += 1,
            b'\t' => column += 4 - column % 4,
            _ => return (column, offset),
        }
    }
    (column, line.len())
}

/// A fence opener at the start of `text` (already past an indent of `column` < 4), itself or after
/// a list marker.
fn opens_fence(text: &str, column: usize) -> Option<Fence> {
    if let Some(fence) = fence_run(text, 0) {
        return Some(fence);
    }
    let marker_len = list_marker_len(text)?;
    let after_marker = &text[marker_len..];
    let spaces = after_marker.bytes().take_while(|&b| b == b' ').count();
    // Five or more spaces after the marker make indented code inside the item, not a fence.
    if !(1..=4).contains(&spaces) {
        return None;
    }
    fence_run(&after_marker[spaces..], column + marker_len + spaces)
}

/// `-`, `+`, `*`, or one to nine digits and `.` or `)`: the byte length of a list marker that
/// starts `text`.
fn list_marker_len(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    match bytes.first()? {
        b'-' | b'+' | b'*' => Some(1),
        _ => {
            let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
            let closed = matches!(bytes.get(digits), Some(b'.' | b')'));
            ((1..=9).contains(&digits) && closed).then_some(digits + 1)
        }
    }
}

/// Three or more backticks or tildes; a backtick fence's info string may not hold a backtick
/// (```` ```a``` ```` on one line is inline code).
fn fence_run(text: &str, content_column: usize) -> Option<Fence> {
    let marker = *text
        .as_bytes()
        .first()
        .filter(|&&b| b == b'`' || b == b'~')?;
    let len = text.bytes().take_while(|&b| b == marker).count();
    let info = &text[len..];
    if len < 3 || (marker == b'`' && info.contains('`')) {
        return None;
    }
    Some(Fence {
        marker,
        len,
        content_column,
    })
}

/// A closing fence: at least as many of the same marker, then only spaces or tabs.
fn closes(text: &str, fence: &Fence) -> bool {
    let len = text.bytes().take_while(|&b| b == fence.marker).count();
    len >= fence.len && text[len..].bytes().all(|b| b == b' ' || b == b'\t')
}

const COMMENT_OPEN: &str = "<!--";
const COMMENT_CLOSE: &str = "-->";

/// Walks `text` starting inside a comment or not, hands each visible span to `visible`, and tells
/// whether the text ends inside a comment. `<!-->` and `<!--->` are complete (empty) comments.
fn visible_spans(text: &str, mut in_comment: bool, mut visible: impl FnMut(&str)) -> bool {
    let mut rest = text;
    loop {
        if in_comment {
            match rest.find(COMMENT_CLOSE) {
                Some(end) => {
                    rest = &rest[end + COMMENT_CLOSE.len()..];
                    in_comment = false;
                }
                None => return true,
            }
        } else {
            match rest.find(COMMENT_OPEN) {
                Some(start) => {
                    visible(&rest[..start]);
                    // Keep the opener's "--" so that `<!-->` closes itself.
                    rest = &rest[start + 2..];
                    in_comment = true;
                }
                None => {
                    visible(rest);
                    return false;
                }
            }
        }
    }
}
