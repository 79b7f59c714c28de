//! A line cursor over raw diff bytes, shared by the unified diff and GitHub patch parsers.

/// Walks the input line by line without allocating. Every line is handed out without its `\n`
/// and without one trailing `\r`, so CRLF diffs read like LF ones.
pub(super) struct Lines<'a> {
    /// The input after the current line.
    rest: &'a [u8],
    current: Option<&'a [u8]>,
    /// 1-based number of the current line; one past the last line at the end of the input.
    number: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn new(input: &'a [u8]) -> Self {
        let mut lines = Self {
            rest: input,
            current: None,
            number: 0,
        };
        lines.advance();
        lines
    }

    /// The current line, `None` at the end of the input.
    pub(super) fn peek(&self) -> Option<&'a [u8]> {
        self.current
    }

    /// The line after the current one.
    pub(super) fn peek_next(&self) -> Option<&'a [u8]> {
        self.current?;
        (!self.rest.is_empty()).then(|| split_line(self.rest).0)
    }

    /// The 1-based number of the current line, for error messages.
    pub(super) fn number(&self) -> usize {
        self.number
    }

    /// Moves to the next line; does nothing at the end of the input.
    pub(super) fn advance(&mut self) {
        if self.current.is_none() && self.number > 0 {
            return;
        }
        self.number += 1;
        if self.rest.is_empty() {
            self.current = None;
            return;
        }
        let (line, rest) = split_line(self.rest);
        self.current = Some(line);
        self.rest = rest;
    }
}

/// Splits off the first line, dropping its `\n` and one `\r` before it.
fn split_line(input: &[u8]) -> (&[u8], &[u8]) {
    let (line, rest) = match find_newline(input) {
        Some(end) => (&input[..end], &input[end + 1..]),
        None => (input, &input[input.len()..]),
    };
    (line.strip_suffix(b"\r").unwrap_or(line), rest)
}

/// The index of the first `\n`. Scans whole blocks first: a branch-free test of a block
/// vectorizes, a byte-by-byte search does not, and long diffs are mostly line scanning.
fn find_newline(input: &[u8]) -> Option<usize> {
    const BLOCK: usize = 32;
    let clean_blocks = input
        .chunks_exact(BLOCK)
        .take_while(|block| !block.iter().fold(false, |seen, &b| seen | (b == b'\n')))
        .count();
    let start = clean_blocks * BLOCK;
    input[start..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8]) -> Vec<(usize, &[u8])> {
        let mut lines = Lines::new(input);
        let mut out = Vec::new();
        while let Some(line) = lines.peek() {
            out.push((lines.number(), line));
            lines.advance();
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_one_carriage_return() {
        let got = collect(b"a\r\nb\r\r\n\nc");
        let want: Vec<(usize, &[u8])> = vec![(1, b"a"), (2, b"b\r"), (3, b""), (4, b"c")];
        assert_eq!(got, want);
    }

    #[test]
    fn counts_past_the_end_once() {
        let mut lines = Lines::new(b"x\n");
        assert_eq!(lines.peek_next(), None);
        lines.advance();
        lines.advance();
        assert_eq!((lines.peek(), lines.number()), (None, 2));
        assert_eq!(Lines::new(b"").number(), 1);
    }
}
