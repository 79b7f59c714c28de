use proptest::prelude::*;

use super::*;

const MIN: usize = 10;

type Found = Vec<(usize, Result<Command, CommandError>)>;

fn parse(body: &str) -> Found {
    parse_commands(body, MIN)
        .into_iter()
        .map(|parsed| (parsed.line, parsed.result))
        .collect()
}

fn ids(rules: &[&str]) -> Vec<RuleId> {
    rules
        .iter()
        .map(|r| r.parse().expect("valid rule id"))
        .collect()
}

fn over(rules: &[&str], reason: &str) -> Result<Command, CommandError> {
    Ok(Command::Override {
        rules: ids(rules),
        reason: reason.into(),
    })
}

fn cancel() -> Result<Command, CommandError> {
    Ok(Command::CancelOverride)
}

fn approve(note: Option<&str>) -> Result<Command, CommandError> {
    Ok(Command::Approve {
        note: note.map(Into::into),
    })
}

fn reject(reason: &str) -> Result<Command, CommandError> {
    Ok(Command::Reject {
        reason: reason.into(),
    })
}

fn missing(command: CommandName) -> Result<Command, CommandError> {
    Err(CommandError::MissingReason { command })
}

fn missing_after(rules: &[&str]) -> Result<Command, CommandError> {
    Err(CommandError::MissingReasonAfterRules { rules: ids(rules) })
}

fn too_short(command: CommandName) -> Result<Command, CommandError> {
    Err(CommandError::ReasonTooShort { command, min: MIN })
}

fn unknown(typed: &str, suggestion: CommandName) -> Result<Command, CommandError> {
    Err(CommandError::UnknownCommand {
        typed: typed.into(),
        suggestion,
    })
}

/// A command alone on line 1.
fn first(result: Result<Command, CommandError>) -> Found {
    vec![(1, result)]
}

fn none() -> Found {
    Vec::new()
}

/// Runs every case and reports all mismatches at once.
fn check(table: Vec<(&str, Found)>) {
    let failures: Vec<String> = table
        .into_iter()
        .filter_map(|(body, expected)| {
            let actual = parse(body);
            (actual != expected)
                .then(|| format!("{body:?}\n  expected {expected:?}\n  got      {actual:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

use CommandName::{Approve, Override, Reject};

#[test]
fn forms() {
    check(vec![
        (
            "/override generated code, reviewed",
            first(over(&[], "generated code, reviewed")),
        ),
        (
            "/override R05 R07 generated code",
            first(over(&["R05", "R07"], "generated code")),
        ),
        ("/override cancel", first(cancel())),
        ("/override CanCel", first(cancel())),
        ("/override   cancel  ", first(cancel())),
        (
            "/override cancel this please, wrong PR",
            first(over(&[], "cancel this please, wrong PR")),
        ),
        ("/approve", first(approve(None))),
        ("/approve   ", first(approve(None))),
        ("/approve ok", first(approve(Some("ok")))),
        (
            "/approve looks fine to me",
            first(approve(Some("looks fine to me"))),
        ),
        (
            "/reject not a valid exception",
            first(reject("not a valid exception")),
        ),
        ("/reject", first(missing(Reject))),
        ("/reject   ", first(missing(Reject))),
        ("/override", first(missing(Override))),
        ("/override   ", first(missing(Override))),
        ("/override R05", first(missing_after(&["R05"]))),
        ("/override R05 R07:", first(missing_after(&["R05", "R07"]))),
        (
            "/override    spaced   reason   here  ",
            first(over(&[], "spaced   reason   here")),
        ),
        (
            "/override\tgenerated code",
            first(over(&[], "generated code")),
        ),
    ]);
}

#[test]
fn reason_length() {
    check(vec![
        ("/override 0123456789", first(over(&[], "0123456789"))),
        ("/override 012345678", first(too_short(Override))),
        ("/override  012345678  ", first(too_short(Override))),
        ("/override R05 012345678", first(too_short(Override))),
        (
            "/override R05 0123456789",
            first(over(&["R05"], "0123456789")),
        ),
        ("/reject 0123456789", first(reject("0123456789"))),
        ("/reject 012345678", first(too_short(Reject))),
        // Characters, not bytes: nine é are 18 bytes.
        ("/override ééééééééé", first(too_short(Override))),
        ("/override éééééééééé", first(over(&[], "éééééééééé"))),
        (
            "/override 生成されたコードです確認",
            first(over(&[], "生成されたコードです確認")),
        ),
        ("/override 🦀🦀🦀🦀🦀🦀🦀🦀🦀", first(too_short(Override))),
        (
            "/override généré automatiquement",
            first(over(&[], "généré automatiquement")),
        ),
    ]);
}

#[test]
fn minimum_of_zero_still_needs_a_reason() {
    let found = |body| {
        parse_commands(body, 0)
            .into_iter()
            .map(|p| p.result)
            .collect::<Vec<_>>()
    };
    assert_eq!(found("/override x"), vec![over(&[], "x")]);
    assert_eq!(found("/override"), vec![missing(Override)]);
    assert_eq!(found("/reject"), vec![missing(Reject)]);
}

#[test]
fn names() {
    check(vec![
        (
            "/Override generated code",
            first(over(&[], "generated code")),
        ),
        (
            "/OVERRIDE generated code",
            first(over(&[], "generated code")),
        ),
        ("/APPROVE", first(approve(None))),
        (
            "/ReJeCt not a valid exception",
            first(reject("not a valid exception")),
        ),
        // One edit away, same first letter: answered so a typo does not pass in silence.
        (
            "/overrides are discussed below",
            first(unknown("overrides", Override)),
        ),
        (
            "/overide generated code",
            first(unknown("overide", Override)),
        ),
        (
            "/ovverride generated code",
            first(unknown("ovverride", Override)),
        ),
        (
            "/oevrride generated code",
            first(unknown("oevrride", Override)),
        ),
        (
            "/override: generated code",
            first(unknown("override:", Override)),
        ),
        ("/aprove", first(unknown("aprove", Approve))),
        ("/Approved", first(unknown("Approved", Approve))),
        (
            "/rejcet not a valid exception",
            first(unknown("rejcet", Reject)),
        ),
        // Further away, or another bot's command: not ours.
        ("/ovrreide generated code", none()),
        ("/override-foo generated code", none()),
        ("/overridefoo generated code", none()),
        ("/eject now", none()),
        ("/foo bar", none()),
        ("/assign @someone", none()),
        ("/", none()),
        ("/ override generated code", none()),
        ("//override generated code", none()),
        ("override generated code", none()),
        ("please /override generated code", none()),
        ("`/override generated code`", none()),
        ("\\/override generated code", none()),
        ("# /override generated code", none()),
        ("- /override generated code", none()),
    ]);
}

#[test]
fn scope() {
    check(vec![
        (
            "/override r05 generated code",
            first(over(&["R05"], "generated code")),
        ),
        (
            "/override acme12 generated code",
            first(over(&["ACME12"], "generated code")),
        ),
        (
            "/override R05 r05 R05 generated code",
            first(over(&["R05"], "generated code")),
        ),
        (
            "/override R07 R05 R07 generated code",
            first(over(&["R07", "R05"], "generated code")),
        ),
        (
            "/override R05,R07 generated code",
            first(over(&["R05", "R07"], "generated code")),
        ),
        (
            "/override R05, R07 generated code",
            first(over(&["R05", "R07"], "generated code")),
        ),
        (
            "/override R05,r07, generated code",
            first(over(&["R05", "R07"], "generated code")),
        ),
        (
            "/override R05: generated code",
            first(over(&["R05"], "generated code")),
        ),
        (
            "/override R05 R07: R09 generated code",
            first(over(&["R05", "R07"], "R09 generated code")),
        ),
        (
            "/override R-05 generated code",
            first(over(&[], "R-05 generated code")),
        ),
        (
            "/override R2D2 generated code",
            first(over(&[], "R2D2 generated code")),
        ),
        (
            "/override 05 generated code",
            first(over(&[], "05 generated code")),
        ),
        (
            "/override R05,x generated code",
            first(over(&[], "R05,x generated code")),
        ),
        (
            "/override , generated code",
            first(over(&[], ", generated code")),
        ),
        ("/override R05 cancel", first(too_short(Override))),
        (
            "/override cancel R05 and R07 too",
            first(over(&[], "cancel R05 and R07 too")),
        ),
    ]);
}

#[test]
fn line_starts_and_endings() {
    check(vec![
        (
            "   /override generated code",
            first(over(&[], "generated code")),
        ),
        (" /approve", first(approve(None))),
        ("    /override generated code", none()),
        ("\t/override generated code", none()),
        ("  \t/override generated code", none()),
        (
            "first line\r\n/override generated code\r\n/approve\r\n",
            vec![(2, over(&[], "generated code")), (3, approve(None))],
        ),
        (
            "a\r/override generated code\r",
            vec![(2, over(&[], "generated code"))],
        ),
        ("a\r\r\n/approve", vec![(3, approve(None))]),
        ("\n\n/approve\n", vec![(3, approve(None))]),
        // The reason is its own line only.
        (
            "/override generated\ncode, reviewed by hand",
            first(too_short(Override)),
        ),
    ]);
}

#[test]
fn code_blocks() {
    check(vec![
        ("```\n/override generated code\n```", none()),
        ("~~~\n/override generated code\n~~~", none()),
        (
            "```rust\n/override generated code\n```\n/override after the fence",
            vec![(4, over(&[], "after the fence"))],
        ),
        ("   ```\n/override generated code\n   ```", none()),
        ("  ~~~~ yaml\n/override generated code\n~~~~~", none()),
        // Four spaces make indented code, not a fence, so the next line is prose.
        (
            "    ```\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
        ("```\n/override generated code", none()),
        (
            "```\n/override generated code\n~~~\n/override still inside",
            none(),
        ),
        (
            "~~~\n/override generated code\n```\n/override still inside",
            none(),
        ),
        (
            "````\n```\n/override generated code\n```\n````\n/override after the fence",
            vec![(6, over(&[], "after the fence"))],
        ),
        ("```\nx\n``` not a closer\n/override still inside", none()),
        ("```\nx\n    ```\n/override still inside", none()),
        (
            "```\nx\n```` \t\n/override after the fence",
            vec![(4, over(&[], "after the fence"))],
        ),
        (
            "``` inline ``` code\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
        (
            "~~~ info ``` with backticks\n/override generated code\n~~~",
            none(),
        ),
        (
            "``\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
        (
            "- ```\n  /override generated code\n  ```\n/override after the fence",
            vec![(4, over(&[], "after the fence"))],
        ),
        ("1. ~~~\n   /override generated code\n\n   ~~~", none()),
        // An unindented line ends the list item and with it the fence.
        (
            "- ```\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
    ]);
}

#[test]
fn quotes() {
    check(vec![
        ("> /override generated code", none()),
        (">/override generated code", none()),
        (">> /override generated code", none()),
        ("   > /override generated code", none()),
        (
            "> quoted\n> /override generated code\n\n/approve",
            vec![(4, approve(None))],
        ),
        // Only lines starting with `>` are quoted; a command right below a quote is read.
        (
            "> can you override?\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
        (
            "> ```\n/override generated code",
            vec![(2, over(&[], "generated code"))],
        ),
        ("```\n> x\n```\n/approve", vec![(4, approve(None))]),
    ]);
}

#[test]
fn html_comments() {
    check(vec![
        ("<!-- /override generated code -->", none()),
        ("<!--\n/override generated code\n-->", none()),
        (
            "<!--\n/override generated code\n-->\n/override after the comment",
            vec![(4, over(&[], "after the comment"))],
        ),
        ("<!-- tollgate:marker\n/override generated code", none()),
        (
            "text <!-- hidden\n/override hidden code\n--> /approve\n/override visible reason",
            vec![(4, over(&[], "visible reason"))],
        ),
        ("a <!-- x --> b <!-- y\n/override hidden code\n-->", none()),
        ("--> <!--\n/override hidden code", none()),
        ("-->\n/approve", vec![(2, approve(None))]),
        ("<!---->\n/approve", vec![(2, approve(None))]),
        ("<!-->\n/approve", vec![(2, approve(None))]),
        ("<!--->\n/approve", vec![(2, approve(None))]),
        (
            "/override generated code <!-- marker -->",
            first(over(&[], "generated code")),
        ),
        (
            "/override <!-- marker --> generated code",
            first(over(&[], "generated code")),
        ),
        ("/override <!-- only a marker -->", first(missing(Override))),
        (
            "/override generated code <!-- unclosed\n/override hidden code",
            first(over(&[], "generated code")),
        ),
        ("<!-- x -->/override generated code", none()),
        // A comment opener in code or a quote opens nothing; a fence in a comment opens nothing.
        ("```\n<!--\n```\n/approve", vec![(4, approve(None))]),
        ("    <!--\n/approve", vec![(2, approve(None))]),
        ("> <!--\n/approve", vec![(2, approve(None))]),
        ("<!--\n```\n-->\n/approve", vec![(4, approve(None))]),
    ]);
}

#[test]
fn several_commands_in_order() {
    check(vec![
        (
            "/override R05 generated code\n\nthanks\n/approve fine\n/reject nope",
            vec![
                (1, over(&["R05"], "generated code")),
                (4, approve(Some("fine"))),
                (5, too_short(Reject)),
            ],
        ),
        (
            "/override generated code\n/override generated code",
            vec![
                (1, over(&[], "generated code")),
                (2, over(&[], "generated code")),
            ],
        ),
        (
            "/override cancel\n/override R07 a better reason",
            vec![(1, cancel()), (2, over(&["R07"], "a better reason"))],
        ),
    ]);
}

#[test]
fn error_messages() {
    let message = |body| match parse(body).remove(0).1 {
        Err(error) => error.to_string(),
        Ok(command) => panic!("{command:?}"),
    };
    assert_eq!(message("/override"), "`/override` needs a reason");
    assert_eq!(
        message("/override R05 r07"),
        "`/override R05 R07` needs a reason after the rule ids"
    );
    assert_eq!(
        message("/reject short"),
        "the reason for `/reject` must be at least 10 characters"
    );
    assert_eq!(
        message("/Overide x"),
        "`/Overide` is not a command; did you mean `/override`?"
    );
    assert_eq!(
        CommandError::MissingReasonAfterRules {
            rules: ids(&["R05"])
        }
        .command(),
        Override
    );
}

#[test]
fn usage_lists_every_form() {
    for form in [
        "`/override <reason>`",
        "`/override R05 R07 <reason>`",
        "`/override cancel`",
        "`/approve [note]`",
        "`/reject <reason>`",
    ] {
        assert!(CommandError::usage().contains(form), "{form}");
    }
}

#[test]
fn huge_inputs_are_linear() {
    // Each of these is quadratic for a parser that rescans; they must finish at once.
    let megabyte = 1 << 20;
    let openers = "<!--".repeat(megabyte / 4);
    assert!(parse(&openers).is_empty());
    let lines = "<!--\n-->\n".repeat(megabyte / 9);
    assert!(parse(&lines).is_empty());
    let fences = "```\n".repeat(megabyte / 4);
    assert!(parse(&fences).is_empty());
    let backticks = "`".repeat(megabyte);
    assert!(parse(&backticks).is_empty());
    let scope = format!("/override {}reason here", "R05 R07 ".repeat(megabyte / 8));
    assert_eq!(parse(&scope), first(over(&["R05", "R07"], "reason here")));
    let commands = "/override generated code\n".repeat(megabyte / 25);
    assert_eq!(parse(&commands).len(), megabyte / 25);
}

/// Fragments that make the parser take its branches.
fn markdownish() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("/override ".to_owned()),
        Just("/Override".to_owned()),
        Just("/overide ".to_owned()),
        Just("/approve".to_owned()),
        Just("/reject ".to_owned()),
        Just("cancel".to_owned()),
        Just("R05 ".to_owned()),
        Just("r07,".to_owned()),
        Just(": ".to_owned()),
        Just("```".to_owned()),
        Just("~~~".to_owned()),
        Just("- ".to_owned()),
        Just("> ".to_owned()),
        Just("<!--".to_owned()),
        Just("-->".to_owned()),
        Just("   ".to_owned()),
        Just("\t".to_owned()),
        Just("\n".to_owned()),
        Just("\r\n".to_owned()),
        Just("\r".to_owned()),
        Just("é🦀".to_owned()),
        "[a-z ]{0,12}",
        any::<String>(),
    ];
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

fn assert_invariants(body: &str, min: usize) -> Result<(), TestCaseError> {
    let found = parse_commands(body, min);
    let lines = body.split(['\n', '\r']).count();
    let mut previous = 0;
    for parsed in found {
        prop_assert!(parsed.line > previous && parsed.line <= lines);
        previous = parsed.line;
        match parsed.result {
            Ok(Command::Override { reason, rules }) => {
                prop_assert!(reason.chars().count() >= min.max(1));
                prop_assert_eq!(reason.trim(), reason.as_str());
                let unique: HashSet<_> = rules.iter().collect();
                prop_assert_eq!(unique.len(), rules.len());
            }
            Ok(Command::Reject { reason }) => {
                prop_assert!(reason.chars().count() >= min.max(1));
            }
            Ok(Command::Approve { note: Some(note) }) => prop_assert!(!note.trim().is_empty()),
            Ok(_) | Err(_) => {}
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(body in any::<String>(), min in 0usize..20) {
        assert_invariants(&body, min)?;
    }

    #[test]
    fn markdownish_text_keeps_the_invariants(body in markdownish(), min in 0usize..20) {
        assert_invariants(&body, min)?;
    }
}
