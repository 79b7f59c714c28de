//! The one template environment: templates compiled into the binary, and the filters and escaping
//! they rely on.
//!
//! Escaping is on by default: every string a template prints goes through the formatter, which
//! escapes it for Markdown (`*.md.j2`) or strips control characters for the terminal (`*.txt.j2`).
//! Filters that build markup (`code`, `fenced`, `paint`) escape their input themselves and return
//! safe strings; rule metadata from the policy pack is trusted Markdown and printed with `safe`.

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::LazyLock;

const MARKDOWN: &str = "markdown";
const TERMINAL: &str = "terminal";

const TEMPLATES: [(&str, &str); 23] = [
    ("report.md.j2", include_str!("../../templates/report.md.j2")),
    ("error.md.j2", include_str!("../../templates/error.md.j2")),
    (
        "report.txt.j2",
        include_str!("../../templates/report.txt.j2"),
    ),
    ("error.txt.j2", include_str!("../../templates/error.txt.j2")),
    (
        "check_run_title.txt.j2",
        include_str!("../../templates/check_run_title.txt.j2"),
    ),
    (
        "replies/approval_recorded.md.j2",
        include_str!("../../templates/replies/approval_recorded.md.j2"),
    ),
    (
        "replies/cancelled.md.j2",
        include_str!("../../templates/replies/cancelled.md.j2"),
    ),
    (
        "replies/config_invalid.md.j2",
        include_str!("../../templates/replies/config_invalid.md.j2"),
    ),
    (
        "replies/decision_refused.md.j2",
        include_str!("../../templates/replies/decision_refused.md.j2"),
    ),
    (
        "replies/denied.md.j2",
        include_str!("../../templates/replies/denied.md.j2"),
    ),
    (
        "replies/macros.md.j2",
        include_str!("../../templates/replies/macros.md.j2"),
    ),
    (
        "replies/not_understood.md.j2",
        include_str!("../../templates/replies/not_understood.md.j2"),
    ),
    (
        "replies/nothing_pending.md.j2",
        include_str!("../../templates/replies/nothing_pending.md.j2"),
    ),
    (
        "replies/nothing_to_cancel.md.j2",
        include_str!("../../templates/replies/nothing_to_cancel.md.j2"),
    ),
    (
        "replies/override_pending.md.j2",
        include_str!("../../templates/replies/override_pending.md.j2"),
    ),
    (
        "replies/override_recorded.md.j2",
        include_str!("../../templates/replies/override_recorded.md.j2"),
    ),
    (
        "replies/rejected.md.j2",
        include_str!("../../templates/replies/rejected.md.j2"),
    ),
    (
        "replies/scope_refused.md.j2",
        include_str!("../../templates/replies/scope_refused.md.j2"),
    ),
    (
        "merge_queue/comment.md.j2",
        include_str!("../../templates/merge_queue/comment.md.j2"),
    ),
    (
        "merge_queue/trusted.md.j2",
        include_str!("../../templates/merge_queue/trusted.md.j2"),
    ),
    (
        "merge_queue/trusted_title.txt.j2",
        include_str!("../../templates/merge_queue/trusted_title.txt.j2"),
    ),
    (
        "runbooks/rule.md.j2",
        include_str!("../../templates/runbooks/rule.md.j2"),
    ),
    (
        "runbooks/index.md.j2",
        include_str!("../../templates/runbooks/index.md.j2"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(build);

/// Renders a template of this module with a serializable view. The templates are part of the
/// binary and covered by the snapshot tests, so a failure here is a bug, not an input problem.
pub(super) fn render(name: &str, view: &impl Serialize) -> String {
    let context = serde_json::to_value(view).expect("report views serialize to JSON");
    ENV.get_template(name)
        .and_then(|template| template.render(from_json(context)))
        .unwrap_or_else(|e| panic!("template {name} failed to render: {e:#}"))
}

/// An environment with the syntax every template of ours is written in: block tags take their
/// line with them, and an undefined variable is an error, not an empty string.
pub(crate) fn strict_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .expect("static syntax config is valid"),
    );
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

fn build() -> Environment<'static> {
    let mut env = strict_environment();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".md.j2") {
            AutoEscape::Custom(MARKDOWN.into())
        } else {
            AutoEscape::Custom(TERMINAL.into())
        }
    });
    env.set_formatter(format_value);
    env.add_filter("code", code);
    env.add_filter("fenced", fenced);
    env.add_filter("location", location);
    env.add_filter("mentions", mentions);
    env.add_filter("noun", noun);
    env.add_filter("pad", pad);
    env.add_filter("paint", paint);
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name} does not compile: {e:#}"));
    }
    env
}

/// minijinja's serde support is an optional feature this crate does not enable; views go through
/// `serde_json::Value` instead, which is cheap at report sizes.
pub(crate) fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::from(()),
        serde_json::Value::Bool(b) => Value::from(b),
        serde_json::Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Value::from(u),
            (None, Some(i)) => Value::from(i),
            (None, None) => Value::from(n.as_f64().unwrap_or_default()),
        },
        serde_json::Value::String(s) => Value::from(s),
        serde_json::Value::Array(items) => {
            Value::from(items.into_iter().map(from_json).collect::<Vec<_>>())
        }
        serde_json::Value::Object(map) => Value::from(
            map.into_iter()
                .map(|(k, v)| (k, from_json(v)))
                .collect::<BTreeMap<String, Value>>(),
        ),
    }
}

fn format_value(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let text = match value.as_str() {
        Some(s) if !value.is_safe() => match state.auto_escape() {
            AutoEscape::Custom(kind) if kind == MARKDOWN => escape_markdown(s),
            _ => clean_terminal(s),
        },
        _ => value.to_string(),
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write the report"))
}

/// Escapes text so it renders literally inside a Markdown paragraph, list item or table cell, and
/// keeps it on one line.
fn escape_markdown(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' => {
                escaped.push('\\');
                escaped.push(c);
            }
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Replaces control characters (including escape sequences a crafted path or message could carry)
/// so user text cannot drive the terminal.
fn clean_terminal(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' => ' ',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect()
}

fn longest_backtick_run(text: &str) -> usize {
    text.split(|c| c != '`').map(str::len).max().unwrap_or(0)
}

/// An inline code span that holds any text: the fence is longer than any backtick run inside, and
/// padded when the text starts or ends with a backtick.
fn code(text: &str) -> Value {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let fence = "`".repeat(longest_backtick_run(&text) + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    Value::from_safe_string(fence.clone() + pad + &text + pad + &fence)
}

/// A fenced code block that holds any text, even text containing fences.
fn fenced(text: &str) -> Value {
    let fence = "`".repeat(longest_backtick_run(text).max(2) + 1);
    let body: String = text
        .trim_end()
        .chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect();
    Value::from_safe_string(fence.clone() + "\n" + &body + "\n" + &fence)
}

/// `path:line`, `path`, or an empty string for findings about the whole pull request.
fn location(violation: &Value) -> Result<String, Error> {
    let path = violation.get_attr("path")?;
    let line = violation.get_attr("line")?;
    let Some(path) = path.as_str() else {
        return Ok(String::new());
    };
    let mut text = path.to_owned();
    if !line.is_none() {
        write!(text, ":{line}").expect("writing to a String cannot fail");
    }
    Ok(text)
}

/// `@a`, `@a and @b`, `@a, @b and @c`: GitHub mentions of logins or `org/team` slugs, joined
/// with `conjunction` (`and` unless given).
fn mentions(names: Vec<String>, conjunction: Option<&str>) -> String {
    let conjunction = conjunction.unwrap_or("and");
    let mentioned: Vec<String> = names.iter().map(|name| "@".to_owned() + name).collect();
    match mentioned.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => rest.join(", ") + " " + conjunction + " " + last,
    }
}

/// `1 violation`, `3 violations`: the count followed by the noun, with a plural `s` unless the
/// count is one.
fn noun(count: u64, singular: &str) -> String {
    let mut text = count.to_string() + " " + singular;
    if count != 1 {
        text.push('s');
    }
    text
}

/// Left-aligns text in a column of `width` characters.
fn pad(text: &str, width: usize) -> String {
    let mut padded = text.to_owned();
    padded.extend(std::iter::repeat_n(
        ' ',
        width.saturating_sub(text.chars().count()),
    ));
    padded
}

/// Colours terminal text by meaning (a tier, `pass`, `fail`, `warn`, `bold`, `dim`) when the
/// template's `color` variable is true; otherwise returns the text unchanged.
fn paint(state: &State, text: &str, style: &str) -> Result<Value, Error> {
    let color = state.lookup("color").is_some_and(|c| c.is_true());
    if !color {
        return Ok(Value::from(text));
    }
    let code = match style {
        "BLOCK" | "fail" => "1;31",
        "OVERRIDE" | "warn" => "33",
        "WARNING" => "36",
        "pass" => "1;32",
        "bold" => "1",
        "dim" => "2",
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "unknown paint style ".to_owned() + other,
            ));
        }
    };
    Ok(Value::from_safe_string(
        "\x1b[".to_owned() + code + "m" + &clean_terminal(text) + "\x1b[0m",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_escaping_neutralises_structure() {
        assert_eq!(
            escape_markdown("a|b <script> *x* [l](u) `c`\nnext"),
            r"a\|b &lt;script&gt; \*x\* \[l\](u) \`c\` next"
        );
    }

    #[test]
    fn code_spans_hold_backticks() {
        assert_eq!(code("a.rs").as_str(), Some("`a.rs`"));
        assert_eq!(code("we`ird").as_str(), Some("``we`ird``"));
        assert_eq!(code("`x``").as_str(), Some("``` `x`` ```"));
        assert_eq!(code("two\nlines").as_str(), Some("`two lines`"));
    }

    #[test]
    fn fenced_blocks_outgrow_inner_fences() {
        assert_eq!(fenced("x").as_str(), Some("```\nx\n```"));
        assert_eq!(
            fenced("a ```` b\n").as_str(),
            Some("`````\na ```` b\n`````")
        );
    }

    #[test]
    fn mentions_join_like_a_sentence() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(mentions(names(&[]), None), "");
        assert_eq!(mentions(names(&["a"]), None), "@a");
        assert_eq!(mentions(names(&["a", "b"]), None), "@a and @b");
        assert_eq!(
            mentions(names(&["a", "org/t", "c"]), Some("or")),
            "@a, @org/t or @c"
        );
    }

    #[test]
    fn terminal_text_loses_escape_sequences() {
        assert_eq!(clean_terminal("a\x1b[31mb\tc"), "a\u{fffd}[31mb c");
    }
}
