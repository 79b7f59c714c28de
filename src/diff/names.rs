//! File names as git writes them in headers: raw, or C-quoted when they hold special bytes.

/// A name field of a `---`/`+++`, `rename from` or `copy to` line. A raw name ends at a tab:
/// git appends one to names with spaces and `diff -u` puts the timestamp after one.
pub(super) fn parse_name(field: &[u8]) -> String {
    if let Some((name, _)) = unquote(field) {
        return lossy(name);
    }
    let end = field
        .iter()
        .position(|&b| b == b'\t')
        .unwrap_or(field.len());
    lossy(field[..end].to_vec())
}

/// Splits the two names of a `diff --git` line, prefixes still on. Unquoted names with spaces
/// make the line ambiguous; git then writes the same name twice (only renames and copies differ,
/// and those carry their names in other headers), so equal halves are the answer.
pub(super) fn split_git_names(names: &[u8]) -> Option<(String, String)> {
    if let Some((old, rest)) = unquote(names) {
        return Some((lossy(old), parse_name(rest.strip_prefix(b" ")?)));
    }
    if let Some(space) = find(names, b" \"") {
        return Some((
            lossy(names[..space].to_vec()),
            parse_name(&names[space + 1..]),
        ));
    }
    let mid = names.len() / 2;
    let (left, right) = (&names[..mid], &names[(mid + 1).min(names.len())..]);
    if names.len() % 2 == 1 && names[mid] == b' ' && after_slash(left) == after_slash(right) {
        return Some((lossy(left.to_vec()), lossy(right.to_vec())));
    }
    let mut spaces = names.iter().enumerate().filter(|&(_, &b)| b == b' ');
    match (spaces.next(), spaces.next()) {
        (Some((space, _)), None) => Some((
            lossy(names[..space].to_vec()),
            lossy(names[space + 1..].to_vec()),
        )),
        _ => None,
    }
}

/// Drops git's `a/` and `b/` prefixes when every name present has its one; otherwise (e.g. a
/// `--no-prefix` diff) the names are kept as they are.
pub(super) fn strip_prefixes(
    old: Option<String>,
    new: Option<String>,
) -> (Option<String>, Option<String>) {
    let prefixed = old.as_deref().is_none_or(|o| o.starts_with("a/"))
        && new.as_deref().is_none_or(|n| n.starts_with("b/"))
        && (old.is_some() || new.is_some());
    if !prefixed {
        return (old, new);
    }
    let strip = |mut name: String| {
        name.drain(..2);
        name
    };
    (old.map(strip), new.map(strip))
}

/// Decodes a C-quoted name (`"a/sp\303\251cial"`) into its bytes and the input after the closing
/// quote. `None` when the field is not quoted or the quoting is broken.
fn unquote(field: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let mut rest = field.strip_prefix(b"\"")?;
    let mut name = Vec::with_capacity(rest.len());
    loop {
        let (&byte, after) = rest.split_first()?;
        rest = after;
        match byte {
            b'"' => return Some((name, rest)),
            b'\\' => {
                let (decoded, after) = unescape(rest)?;
                name.push(decoded);
                rest = after;
            }
            _ => name.push(byte),
        }
    }
}

/// Decodes one escape after a backslash: a letter escape or three octal digits, as git writes.
fn unescape(input: &[u8]) -> Option<(u8, &[u8])> {
    let (&first, rest) = input.split_first()?;
    let simple = match first {
        b'a' => Some(0x07),
        b'b' => Some(0x08),
        b't' => Some(b'\t'),
        b'n' => Some(b'\n'),
        b'v' => Some(0x0b),
        b'f' => Some(0x0c),
        b'r' => Some(b'\r'),
        b'"' | b'\\' => Some(first),
        _ => None,
    };
    if let Some(byte) = simple {
        return Some((byte, rest));
    }
    match input {
        [
            high @ b'0'..=b'3',
            mid @ b'0'..=b'7',
            low @ b'0'..=b'7',
            rest @ ..,
        ] => Some(((high - b'0') << 6 | (mid - b'0') << 3 | (low - b'0'), rest)),
        _ => None,
    }
}

/// The part of a name after its first `/`, i.e. without a one-component prefix.
fn after_slash(name: &[u8]) -> &[u8] {
    name.iter()
        .position(|&b| b == b'/')
        .map_or(name, |slash| &name[slash + 1..])
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(old: &str, new: &str) -> Option<(String, String)> {
        Some((old.to_owned(), new.to_owned()))
    }

    #[test]
    fn unquotes_c_style_escapes() {
        assert_eq!(
            parse_name(br#""a/sp\303\251cial name""#),
            "a/sp\u{e9}cial name"
        );
        assert_eq!(parse_name(br#""a/t\tq\"b\\s\n""#), "a/t\tq\"b\\s\n");
        assert_eq!(parse_name(b"\"a/\\377\""), "a/\u{fffd}");
    }

    #[test]
    fn broken_quoting_reads_raw() {
        assert_eq!(parse_name(br#""a/open"#), "\"a/open");
        assert_eq!(parse_name(br#""a/\9""#), r#""a/\9""#);
    }

    #[test]
    fn raw_names_end_at_a_tab() {
        assert_eq!(parse_name(b"a/with space\t"), "a/with space");
        assert_eq!(parse_name(b"old.c\t2024-01-01 10:00:00"), "old.c");
    }

    #[test]
    fn splits_git_header_names() {
        assert_eq!(split_git_names(b"a/x b/y"), pair("a/x", "b/y"));
        assert_eq!(
            split_git_names(b"a/my file b/my file"),
            pair("a/my file", "b/my file")
        );
        assert_eq!(split_git_names(b"x y x y"), pair("x y", "x y"));
        assert_eq!(
            split_git_names(br#""a/\303\251" "b/\303\251""#),
            pair("a/é", "b/é")
        );
        assert_eq!(split_git_names(br#"a/x "b/\303\251""#), pair("a/x", "b/é"));
        assert_eq!(split_git_names(b"a/one two b/three four"), None);
        assert_eq!(split_git_names(b""), None);
    }

    #[test]
    fn strips_prefixes_only_when_all_have_them() {
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(
            strip_prefixes(some("a/x"), some("b/y")),
            (some("x"), some("y"))
        );
        assert_eq!(strip_prefixes(None, some("b/y")), (None, some("y")));
        assert_eq!(
            strip_prefixes(some("a/x"), some("a/x")),
            (some("a/x"), some("a/x"))
        );
        assert_eq!(strip_prefixes(some("x"), None), (some("x"), None));
    }
}
