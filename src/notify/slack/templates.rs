//! The Slack template environment: `templates/slack/*.json.j2`, compiled into the binary, render
//! a message's fallback `text` and Block Kit `blocks` as one JSON object.
//!
//! Templates write JSON and put values inside JSON strings. Every string a template prints goes
//! through the formatter, which escapes it for Slack's mrkdwn (`&`, `<`, `>`, so user text can
//! neither link nor mention) and then for a JSON string. Filters that must bound or shape text
//! (`clip`, `clip_mentions`, `code`, `link`, `broadcast`) do the same escaping themselves and
//! return safe strings. This is a separate environment from the report's: its escaping is a
//! different language, and the report's helpers are private to that module.

use super::interaction::{
    ACTION_ACKNOWLEDGE_ALERT, ACTION_APPROVE_OVERRIDE, ACTION_REJECT_OVERRIDE,
};
use super::message::SlackMessage;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, Error, ErrorKind, Output, State};
use serde::Deserialize;
use std::sync::LazyLock;

const SLACK_JSON: &str = "slack-json";
/// Links longer than this are shown as their label only; GitHub's URLs are far shorter.
const MAX_LINK_URL_CHARS: usize = 1000;
const ELLIPSIS: char = '…';

const TEMPLATES: [(&str, &str); 4] = [
    (
        "macros.json.j2",
        include_str!("../../../templates/slack/macros.json.j2"),
    ),
    (
        "override_request.json.j2",
        include_str!("../../../templates/slack/override_request.json.j2"),
    ),
    (
        "alert.json.j2",
        include_str!("../../../templates/slack/alert.json.j2"),
    ),
    (
        "thread_note.json.j2",
        include_str!("../../../templates/slack/thread_note.json.j2"),
    ),
];

static ENV: LazyLock<Environment<'static>> = LazyLock::new(build);

/// What every template renders.
#[derive(Deserialize)]
struct Rendered {
    text: String,
    blocks: serde_json::Value,
}

/// Renders a template of this module. The templates are part of the binary and covered by the
/// snapshot tests, and the formatter escapes every value, so a failure here is a bug, not an
/// input problem.
pub(super) fn render(name: &str, context: Value) -> SlackMessage {
    let json = ENV
        .get_template(name)
        .and_then(|template| template.render(context))
        .unwrap_or_else(|e| panic!("Slack template {name} failed to render: {e:#}"));
    let rendered: Rendered = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("Slack template {name} rendered invalid JSON: {e}\n{json}"));
    SlackMessage {
        text: rendered.text,
        blocks: rendered.blocks,
    }
}

fn build() -> Environment<'static> {
    let mut env = crate::report::strict_environment();
    // Custom, not None: macro output is then marked safe and not escaped a second time.
    env.set_auto_escape_callback(|_| AutoEscape::Custom(SLACK_JSON.into()));
    env.set_formatter(format_value);
    env.add_filter("clip", clip);
    env.add_filter("clip_mentions", clip_mentions);
    env.add_filter("code", code);
    env.add_filter("link", link);
    env.add_filter("broadcast", broadcast);
    env.add_global(
        "actions",
        minijinja::context! {
            approve => ACTION_APPROVE_OVERRIDE,
            reject => ACTION_REJECT_OVERRIDE,
            acknowledge => ACTION_ACKNOWLEDGE_ALERT,
        },
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("Slack template {name} does not compile: {e:#}"));
    }
    env
}

fn format_value(out: &mut Output, _state: &mut State, value: &Value) -> Result<(), Error> {
    let text = match value.as_str() {
        Some(s) if !value.is_safe() => json_content(&escape_mrkdwn(s)),
        Some(s) => s.to_owned(),
        None => value.to_string(),
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write the Slack message"))
}

/// Text as it goes inside a JSON string literal (without the quotes).
fn json_content(text: &str) -> String {
    let quoted = serde_json::Value::from(text).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

/// Escapes one character for mrkdwn; control characters (line breaks too) become spaces so user
/// text stays on its line.
fn push_escaped(out: &mut String, c: char) {
    match c {
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        c if c.is_control() => out.push(' '),
        c => out.push(c),
    }
}

fn escape_mrkdwn(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        push_escaped(&mut escaped, c);
    }
    escaped
}

/// The length of a Slack user mention (`<@U0123ABC>`) at the start of `text`, if one is there.
fn user_mention_len(text: &str) -> Option<usize> {
    let id_len = text
        .strip_prefix("<@")?
        .find(|c: char| !c.is_ascii_alphanumeric())?;
    let end = 2 + id_len;
    (id_len > 0 && text[end..].starts_with('>')).then_some(end + 1)
}

/// Splits text into escaped pieces that must not be cut: single characters, and (when
/// `keep_mentions`) whole user mentions, left as they are so they notify.
fn escaped_pieces(text: &str, keep_mentions: bool) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let mention = keep_mentions.then(|| user_mention_len(rest)).flatten();
        let len = mention.unwrap_or(c.len_utf8());
        let piece = match mention {
            Some(len) => rest[..len].to_owned(),
            None => escape_mrkdwn(&rest[..len]),
        };
        pieces.push(piece);
        rest = &rest[len..];
    }
    pieces
}

/// Escaped text of at most `max` characters: whole pieces, and an ellipsis when some were left
/// out.
fn clip_pieces(pieces: Vec<String>, max: usize) -> String {
    let total: usize = pieces.iter().map(|p| p.chars().count()).sum();
    if total <= max {
        return pieces.concat();
    }
    let mut clipped = String::new();
    let mut used = 0;
    for piece in pieces {
        let len = piece.chars().count();
        if used + len + 1 > max {
            break;
        }
        used += len;
        clipped.push_str(&piece);
    }
    clipped.push(ELLIPSIS);
    clipped
}

fn safe(escaped: &str) -> Value {
    Value::from_safe_string(json_content(escaped))
}

/// User text escaped for mrkdwn and cut to at most `max` characters as Slack counts them after
/// escaping, so a section's length can be bounded whatever the input.
fn clip(text: &str, max: usize) -> Value {
    safe(&clip_pieces(escaped_pieces(text, false), max))
}

/// Like `clip`, but Slack user mentions (`<@U0123ABC>`) stay mentions: for the display strings
/// that name people, which are GitHub logins (`@alice`) or Slack mentions.
fn clip_mentions(text: &str, max: usize) -> Value {
    safe(&clip_pieces(escaped_pieces(text, true), max))
}

/// An inline code span of at most `max` characters; text holding a backtick (which mrkdwn cannot
/// escape inside a span) is shown without the span.
fn code(text: &str, max: usize) -> Value {
    if text.contains('`') {
        return clip(text, max);
    }
    let inner = clip_pieces(escaped_pieces(text, false), max.saturating_sub(2));
    safe(&("`".to_owned() + &inner + "`"))
}

/// `<url|label>`: a link for an http(s) URL, the label alone for anything else. The label is
/// clipped to `max` characters.
fn link(url: &str, label: &str, max: usize) -> Value {
    let label = clip_pieces(escaped_pieces(label, false), max);
    let usable = (url.starts_with("https://") || url.starts_with("http://"))
        && url.chars().count() <= MAX_LINK_URL_CHARS
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !usable {
        return safe(&label);
    }
    // `|` would end the URL early; percent-encoding it keeps the address.
    let target = escape_mrkdwn(url).replace('|', "%7C");
    safe(&("<".to_owned() + &target + "|" + &label + ">"))
}

/// A mention that notifies people: a user (`<@U0123ABC>`), a user group (`<!subteam^S0123>`),
/// `<!channel>` or `<!here>`. Anything else is shown as text and notifies nobody.
fn broadcast(mention: &str) -> Value {
    let group = mention
        .strip_prefix("<!subteam^")
        .and_then(|rest| rest.strip_suffix('>'))
        .is_some_and(|id| !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()));
    let notifies = matches!(mention, "<!channel>" | "<!here>")
        || group
        || user_mention_len(mention) == Some(mention.len());
    if notifies {
        safe(mention)
    } else {
        clip(mention, 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: Value) -> String {
        value.as_str().unwrap().to_owned()
    }

    #[test]
    fn escaping_covers_mrkdwn_and_json() {
        assert_eq!(
            json_content(&escape_mrkdwn("<!channel> & \"q\" \\ a\nb")),
            r#"&lt;!channel&gt; &amp; \"q\" \\ a b"#
        );
    }

    #[test]
    fn clip_bounds_the_escaped_length_without_cutting_entities() {
        assert_eq!(text(clip("short", 10)), "short");
        assert_eq!(text(clip("abcdefghijk", 10)), "abcdefghi…");
        // Eight escaped ampersands would be 40 characters: four fit with the ellipsis.
        assert_eq!(text(clip("&&&&&&&&", 24)), "&amp;&amp;&amp;&amp;…");
        assert_eq!(text(clip("ünïcödé", 7)), "ünïcödé");
    }

    #[test]
    fn user_mentions_survive_only_where_asked() {
        assert_eq!(
            text(clip_mentions("<@U123> & <@bad id>", 100)),
            "<@U123> &amp; &lt;@bad id&gt;"
        );
        assert_eq!(text(clip("<@U123>", 100)), "&lt;@U123&gt;");
        assert_eq!(text(clip_mentions("<!channel>", 100)), "&lt;!channel&gt;");
        // A mention is never cut in half.
        assert_eq!(text(clip_mentions("ab <@U1234567>", 10)), "ab …");
    }

    #[test]
    fn code_spans_fall_back_to_text_with_backticks() {
        assert_eq!(text(code("src/a.rs:3", 80)), "`src/a.rs:3`");
        assert_eq!(text(code("we`ird", 80)), "we`ird");
        assert_eq!(text(code("abcdef", 5)), "`ab…`");
    }

    #[test]
    fn links_need_an_http_url() {
        assert_eq!(
            text(link("https://github.com/o/r/pull/1?a=1&b=|", "o/r#1", 50)),
            "<https://github.com/o/r/pull/1?a=1&amp;b=%7C|o/r#1>"
        );
        assert_eq!(text(link("javascript:alert(1)", "o/r#1", 50)), "o/r#1");
        assert_eq!(text(link("https://x y", "<b>", 50)), "&lt;b&gt;");
    }

    #[test]
    fn only_real_mentions_broadcast() {
        for mention in ["<!channel>", "<!here>", "<!subteam^S0123>", "<@U0123>"] {
            assert_eq!(text(broadcast(mention)), mention);
        }
        assert_eq!(text(broadcast("<!everyone|x>")), "&lt;!everyone|x&gt;");
        assert_eq!(text(broadcast("@team")), "@team");
    }
}
