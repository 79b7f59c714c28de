//! Slash commands typed in pull-request comments: `/override`, `/approve` and `/reject`. Pure.
//!
//! [`parse_commands`] returns every command of a comment, in order, each with the 1-based line it
//! is on; the caller decides what to do with several (each is answered or acted on in turn).
//!
//! What counts as a command:
//! - It starts a line, after at most three spaces, in plain top-level Markdown text: lines in
//!   fenced or indented code, block quotes (`>`, so quoted replies never re-run a command) and
//!   HTML comments are skipped (see `markdown.rs` for the details).
//! - Its name matches ASCII case-insensitively and is followed by whitespace or the end of the
//!   line: `/Override` is the command, `/override-foo` and `/overridefoo` are not ours and are
//!   ignored. A name one edit away from ours with the same first letter (`/overide`, `/overrides`,
//!   `/aprove`) is answered with [`CommandError::UnknownCommand`] so that a typo does not pass in
//!   silence; other slash words (`/foo`, `/assign`) belong to other bots and are ignored.
//! - Its arguments are the rest of that line only; the next line is ordinary text. HTML comments
//!   inside the line are not part of them.
//!
//! `/override` arguments: `cancel` (any case) as the only word withdraws the commenter's request;
//! otherwise leading rule ids scope the override and the rest is the reason. A rule id is ASCII
//! letters then digits (`R05`, `acme12`, normalised to upper case), several may be joined by
//! commas, and a colon after the last one ends the scope (`/override R05, R07: reason`). Repeated
//! ids are kept once. Ids are not checked against the catalog here: the caller must refuse ids it
//! does not know rather than drop them, since `v2` in "v2 API migration" reads as an id.
//!
//! A reason (`/override`, `/reject`) is required and must have at least `min_reason_length`
//! characters (Unicode scalar values, after trimming). The note of `/approve` is optional.

mod markdown;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;

use crate::domain::RuleId;

/// A command to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Override current violations the commenter may override: those of `rules`, or all of them
    /// when `rules` is empty.
    Override { rules: Vec<RuleId>, reason: String },
    /// Withdraw the commenter's pending or approved override request.
    CancelOverride,
    /// Approve the pending override request.
    Approve { note: Option<String> },
    /// Reject the pending override request.
    Reject { reason: String },
}

/// The names of our commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandName {
    Override,
    Approve,
    Reject,
}

impl CommandName {
    pub const ALL: [CommandName; 3] = [
        CommandName::Override,
        CommandName::Approve,
        CommandName::Reject,
    ];

    /// The name as typed after the slash.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandName::Override => "override",
            CommandName::Approve => "approve",
            CommandName::Reject => "reject",
        }
    }

    fn parse(typed: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|name| typed.eq_ignore_ascii_case(name.as_str()))
    }

    /// Ours when `typed` is one insertion, deletion, substitution or swap of neighbours away
    /// and keeps the first letter.
    fn near_miss(typed: &str) -> Option<Self> {
        if !typed.is_ascii() || typed.len() > 16 {
            return None;
        }
        let typed = typed.to_ascii_lowercase();
        Self::ALL.into_iter().find(|name| {
            let name = name.as_str().as_bytes();
            typed.as_bytes().first() == name.first() && within_one_edit(typed.as_bytes(), name)
        })
    }
}

impl fmt::Display for CommandName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command that could not be understood; the message says what is wrong and
/// [`CommandError::usage`] shows the forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("`/{command}` needs a reason")]
    MissingReason { command: CommandName },
    #[error("`/override {}` needs a reason after the rule ids", joined(rules))]
    MissingReasonAfterRules { rules: Vec<RuleId> },
    #[error("the reason for `/{command}` must be at least {min} characters")]
    ReasonTooShort { command: CommandName, min: usize },
    #[error("`/{typed}` is not a command; did you mean `/{suggestion}`?")]
    UnknownCommand {
        typed: String,
        suggestion: CommandName,
    },
}

const USAGE: &str = "\
Commands go at the start of a line of their own:

- `/override <reason>`: override every current violation you may override
- `/override R05 R07 <reason>`: override only the violations of these rules
- `/override cancel`: withdraw your override request
- `/approve [note]`: approve the pending override request
- `/reject <reason>`: reject the pending override request

The reason is the rest of the line.
";

impl CommandError {
    /// The command forms, as Markdown, for replies to a command that could not be understood.
    pub fn usage() -> &'static str {
        USAGE
    }

    /// The command the error is about.
    pub fn command(&self) -> CommandName {
        match self {
            CommandError::MissingReason { command }
            | CommandError::ReasonTooShort { command, .. } => *command,
            CommandError::MissingReasonAfterRules { .. } => CommandName::Override,
            CommandError::UnknownCommand { suggestion, .. } => *suggestion,
        }
    }
}

/// One command found in a comment, or why it could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCommand {
    /// 1-based line of the comment the command is on.
    pub line: usize,
    pub result: Result<Command, CommandError>,
}

/// Every command in the comment `body`, in the order they appear. See the module documentation for
/// what is recognised. Never panics; linear in the length of `body`.
pub fn parse_commands(body: &str, min_reason_length: usize) -> Vec<ParsedCommand> {
    markdown::prose_lines(body)
        .filter_map(|(line, text)| {
            parse_line(text, min_reason_length).map(|result| ParsedCommand { line, result })
        })
        .collect()
}

/// The command starting `text` (a prose line after its indent), if the line holds one of ours.
fn parse_line(text: &str, min_reason_length: usize) -> Option<Result<Command, CommandError>> {
    let after_slash = text.strip_prefix('/')?;
    let name_end = after_slash
        .find(char::is_whitespace)
        .unwrap_or(after_slash.len());
    let (typed, args) = after_slash.split_at(name_end);
    let Some(name) = CommandName::parse(typed) else {
        return CommandName::near_miss(typed).map(|suggestion| {
            Err(CommandError::UnknownCommand {
                typed: typed.to_owned(),
                suggestion,
            })
        });
    };
    let args = markdown::without_comments(args);
    let args = args.trim();
    Some(match name {
        CommandName::Override => parse_override(args, min_reason_length),
        CommandName::Approve => Ok(Command::Approve {
            note: (!args.is_empty()).then(|| args.to_owned()),
        }),
        CommandName::Reject => reason(CommandName::Reject, args, min_reason_length)
            .map(|reason| Command::Reject { reason }),
    })
}

fn parse_override(args: &str, min_reason_length: usize) -> Result<Command, CommandError> {
    if args.eq_ignore_ascii_case("cancel") {
        return Ok(Command::CancelOverride);
    }
    let (rules, rest) = split_scope(args);
    if rest.is_empty() && !rules.is_empty() {
        return Err(CommandError::MissingReasonAfterRules { rules });
    }
    let reason = reason(CommandName::Override, rest, min_reason_length)?;
    Ok(Command::Override { rules, reason })
}

/// `text` (trimmed) as the reason of `command`.
fn reason(command: CommandName, text: &str, min: usize) -> Result<String, CommandError> {
    if text.is_empty() {
        return Err(CommandError::MissingReason { command });
    }
    // Counting stops at `min` so that a huge reason costs no more than a short one.
    if text.chars().take(min).count() < min {
        return Err(CommandError::ReasonTooShort { command, min });
    }
    Ok(text.to_owned())
}

/// The leading rule ids of `args` (deduplicated, in order) and the trimmed rest.
fn split_scope(args: &str) -> (Vec<RuleId>, &str) {
    let mut rules = Vec::new();
    let mut seen = HashSet::new();
    let mut rest = args.trim_start();
    while !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        let (list, ends_scope) = match token.strip_suffix(':') {
            Some(list) => (list, true),
            None => (token, false),
        };
        let Some(ids) = rule_ids(list) else { break };
        for id in ids {
            if seen.insert(id.clone()) {
                rules.push(id);
            }
        }
        rest = rest[end..].trim_start();
        if ends_scope {
            break;
        }
    }
    (rules, rest.trim_end())
}

/// `R05`, `r05,R07` or `R05,`: one or more comma-separated rule ids, upper-cased.
fn rule_ids(token: &str) -> Option<Vec<RuleId>> {
    let ids = token
        .split(',')
        .filter(|part| !part.is_empty())
        .map(rule_id)
        .collect::<Option<Vec<_>>>()?;
    (!ids.is_empty()).then_some(ids)
}

/// ASCII letters then digits, as a rule id in upper case.
fn rule_id(raw: &str) -> Option<RuleId> {
    let letters = raw.bytes().take_while(u8::is_ascii_alphabetic).count();
    let digits = raw[letters..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if letters == 0 || digits == 0 || letters + digits != raw.len() {
        return None;
    }
    raw.to_ascii_uppercase().parse().ok()
}

/// At most one insertion, deletion, substitution or swap of neighbours turns `a` into `b`.
fn within_one_edit(a: &[u8], b: &[u8]) -> bool {
    let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[common..], &b[common..]);
    match (a.len(), b.len()) {
        (0, 0) => true,
        (x, y) if x == y => {
            a[1..] == b[1..] || (x >= 2 && a[0] == b[1] && a[1] == b[0] && a[2..] == b[2..])
        }
        (x, y) if x == y + 1 => a[1..] == *b,
        (x, y) if x + 1 == y => *a == b[1..],
        _ => false,
    }
}

fn joined(rules: &[RuleId]) -> String {
    rules
        .iter()
        .map(RuleId::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}
