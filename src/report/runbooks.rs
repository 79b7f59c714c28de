//! The rule runbooks: one Markdown page per rule of a catalog and an index, rendered from
//! `templates/runbooks/`. `tollgate runbooks --out docs/runbooks` writes them; a test fails when
//! the committed pages differ from what the catalog renders.

use super::templates;
use crate::policy::{Catalog, RuleMeta};
use serde::Serialize;

/// A generated page: its path below the output directory and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookPage {
    pub path: String,
    pub text: String,
}

#[derive(Serialize)]
struct RuleView<'a> {
    id: &'a str,
    name: &'a str,
    tier: &'static str,
    penalty: String,
    category: &'a str,
    description: &'a str,
    remediation: &'a str,
    override_when: &'a str,
    prefilter: &'a [String],
    params: Vec<ParamView>,
    once_per_file: bool,
}

#[derive(Serialize)]
struct ParamView {
    name: String,
    default: String,
}

#[derive(Serialize)]
struct IndexView<'a> {
    rules: Vec<RuleView<'a>>,
}

fn rule_view(rule: &RuleMeta) -> RuleView<'_> {
    RuleView {
        id: rule.id.as_str(),
        name: &rule.name,
        tier: rule.tier.as_str(),
        penalty: format!("−{}", rule.tier.penalty()),
        category: &rule.category,
        description: &rule.description,
        remediation: &rule.remediation,
        override_when: &rule.override_when,
        prefilter: &rule.prefilter,
        params: rule
            .params
            .iter()
            .map(|(name, default)| ParamView {
                name: name.clone(),
                default: default.to_string(),
            })
            .collect(),
        once_per_file: rule.once_per_file,
    }
}

/// Every page: `README.md` (the index) and `rules/<ID>.md` per rule, in id order.
pub fn render_runbooks(catalog: &Catalog) -> Vec<RunbookPage> {
    let mut pages = vec![RunbookPage {
        path: "rules/README.md".to_owned(),
        text: templates::render(
            "runbooks/index.md.j2",
            &IndexView {
                rules: catalog.iter().map(rule_view).collect(),
            },
        ),
    }];
    pages.extend(catalog.iter().map(|rule| RunbookPage {
        path: format!("rules/{}.md", rule.id.as_str()),
        text: templates::render("runbooks/rule.md.j2", &rule_view(rule)),
    }));
    pages
}
