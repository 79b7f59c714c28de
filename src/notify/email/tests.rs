//! Snapshots of every email: subject, plain text and HTML.

use super::*;

fn violations() -> Vec<ViolationLine> {
    vec![
        ViolationLine {
            location: "config/prod.env:3".to_owned(),
            message: "AWS access key id committed".to_owned(),
        },
        ViolationLine {
            location: "src/<main>.rs".to_owned(),
            message: "Private key material & <script>alert(1)</script>".to_owned(),
        },
    ]
}

fn alert(escalated: bool, ack: bool) -> AlertEmail {
    AlertEmail {
        organisation: "acme".to_owned(),
        repository: "acme/widgets".to_owned(),
        pr_number: 12,
        pr_title: "Add <billing> export".to_owned(),
        pr_url: "https://github.com/acme/widgets/pull/12".to_owned(),
        author: Some("dana".to_owned()),
        rule_id: "R01".to_owned(),
        rule_name: "Hard-coded secret".to_owned(),
        remediation: "Remove the secret, rotate it, and load it from the environment.".to_owned(),
        violations: violations(),
        status: "open".to_owned(),
        escalated,
        escalation_minutes: 15,
        ack_url: ack.then(|| "https://tollgate.acme.test/alerts/ack/TOKEN".to_owned()),
    }
}

fn show(email: &RenderedEmail) -> String {
    format!(
        "Subject: {}\n\n--- text ---\n{}\n--- html ---\n{}",
        email.subject, email.text, email.html
    )
}

#[test]
fn tier1_alert() {
    insta::assert_snapshot!(show(&alert(false, true).render()));
}

#[test]
fn tier1_alert_escalated_without_public_url() {
    insta::assert_snapshot!(show(&alert(true, false).render()));
}

fn daily(escalated: bool) -> DailyDigestEmail {
    DailyDigestEmail {
        organisation: "acme".to_owned(),
        period: "Mon 7 Dec 09:00 – Tue 8 Dec 09:00 (Europe/Berlin)".to_owned(),
        count: 7,
        repositories: vec![
            RepositoryRules {
                repository: "acme/api".to_owned(),
                rules: vec![RuleCount {
                    rule_id: "R12".to_owned(),
                    rule_name: "New dependency".to_owned(),
                    count: 4,
                    prs: vec![
                        PrLink {
                            number: 40,
                            url: "https://github.com/acme/api/pull/40".to_owned(),
                        },
                        PrLink {
                            number: 38,
                            url: "https://github.com/acme/api/pull/38".to_owned(),
                        },
                    ],
                }],
            },
            RepositoryRules {
                repository: "acme/web".to_owned(),
                rules: vec![RuleCount {
                    rule_id: "R07".to_owned(),
                    rule_name: "Missing tests".to_owned(),
                    count: 3,
                    prs: vec![PrLink {
                        number: 9,
                        url: "https://github.com/acme/web/pull/9".to_owned(),
                    }],
                }],
            },
        ],
        overrides: vec![OverrideLine {
            repository: "acme/api".to_owned(),
            pr_number: 40,
            rules: vec!["R12".to_owned()],
            requested_by: "dana".to_owned(),
            approved_by: None,
            reason: "Vendored fork, reviewed by security".to_owned(),
        }],
        dashboard_url: Some("https://tollgate.acme.test/dashboard/".to_owned()),
        ack_url: Some("https://tollgate.acme.test/alerts/ack/TOKEN".to_owned()),
        escalated,
        escalation_hours: 4,
    }
}

#[test]
fn tier2_daily_digest() {
    insta::assert_snapshot!(show(&daily(false).render()));
}

#[test]
fn tier2_digest_escalated() {
    insta::assert_snapshot!(show(&daily(true).render()));
}

#[test]
fn tier3_weekly_digest() {
    let email = WeeklyDigestEmail {
        organisation: "acme".to_owned(),
        period: "Mon 30 Nov 09:00 – Mon 7 Dec 09:00 (UTC)".to_owned(),
        count: 23,
        previous_count: 31,
        trend: trend_words(23, 31),
        top_rules: vec![
            RuleCount {
                rule_id: "R21".to_owned(),
                rule_name: "TODO without issue".to_owned(),
                count: 15,
                prs: Vec::new(),
            },
            RuleCount {
                rule_id: "R19".to_owned(),
                rule_name: "PR too large".to_owned(),
                count: 8,
                prs: Vec::new(),
            },
        ],
        top_repositories: vec![RepositoryCount {
            repository: "acme/api".to_owned(),
            count: 23,
        }],
        dashboard_url: None,
    };
    insta::assert_snapshot!(show(&email.render()));
}

#[test]
fn subjects_say_tier_count_and_organisation_on_one_line() {
    let mut digest = daily(false);
    digest.organisation = "acme\ninjected: header".to_owned();
    let subject = digest.render().subject;
    assert!(!subject.contains('\n'), "{subject}");
    assert!(
        subject.contains("Tier 2") && subject.contains("7 OVERRIDE"),
        "{subject}"
    );
}

#[test]
fn trends_in_words() {
    assert_eq!(trend_words(5, 2), "up 3");
    assert_eq!(trend_words(2, 5), "down 3");
    assert_eq!(trend_words(4, 4), "no change");
}

#[test]
fn the_acknowledge_page_escapes_what_it_shows() {
    let html = AckPage {
        state: "refused",
        what: String::new(),
        problem: "<b>bad</b>".to_owned(),
    }
    .render();
    assert!(html.contains("&lt;b&gt;bad&lt;&#x2f;b&gt;"), "{html}");
}

#[test]
fn tier1_subjects_give_the_count_of_violations() {
    for escalated in [false, true] {
        let mut email = alert(escalated, true);
        assert!(
            email
                .render()
                .subject
                .contains(" 2 BLOCK violations of R01 "),
            "{}",
            email.render().subject
        );
        email.violations.truncate(1);
        assert!(
            email
                .render()
                .subject
                .contains(" 1 BLOCK violation of R01 "),
            "{}",
            email.render().subject
        );
    }
}
