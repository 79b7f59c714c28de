//! View models: the evaluation arranged the way the templates show it (grouped, counted, limited).

use super::templates::render;
use super::{Evaluation, MAX_MARKDOWN_BYTES, PendingOverride, RejectedOverride, ReportInput};
use crate::domain::{
    ApprovedOverride, Fingerprint, Overrides, RuleId, Tier, Verdict, VerdictReason, Violation,
    judge,
};
use crate::policy::Catalog;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// A list longer than this is folded into a `<details>` section.
const COLLAPSE_AFTER: usize = 10;
/// Warnings barely move the score, so their whole tier folds, and sooner. BLOCK and OVERRIDE
/// tiers stay open; only their rules' long location lists fold.
const COLLAPSE_WARNINGS_AFTER: usize = 3;
/// How many earlier scores the history line shows.
const HISTORY_SHOWN: usize = 5;
const SHORT_SHA: usize = 7;
const SHORT_DIGEST: usize = 12;
/// Longest override reason shown in reports and replies; the full text stays in the comment that
/// asked for the override.
pub(super) const REASON_CHARS: usize = 300;
/// Longest override reason in a check-run title, which GitHub shows on one line.
const TITLE_REASON_CHARS: usize = 80;

#[derive(Serialize)]
struct MarkdownView<'a> {
    marker: Option<&'static str>,
    passed: bool,
    score: u8,
    threshold: u8,
    reasons: &'a [VerdictReason],
    /// The overrides that turned a failure into a pass, most severe first; empty otherwise.
    passed_by: Vec<OverrideView<'a>>,
    found: u32,
    overridden: u32,
    counts: Vec<CountRow>,
    history: Vec<HistoryView>,
    earlier_history: bool,
    not_evaluated: List<&'a str>,
    tiers: Vec<TierView<'a>>,
    hidden_violations: usize,
    overrides: Vec<OverrideEntryView<'a>>,
    fixed: List<LocationView<'a>>,
    policy_digest: &'a str,
}

#[derive(Serialize)]
struct CountRow {
    tier: Tier,
    found: u32,
    overridden: u32,
    penalty: u32,
}

#[derive(Serialize)]
struct HistoryView {
    score: u8,
    sha: String,
}

/// The first items of a list, and how many were left out.
#[derive(Serialize)]
pub(super) struct List<T> {
    shown: Vec<T>,
    total: usize,
    hidden: usize,
    collapsed: bool,
}

impl<T> List<T> {
    pub(super) fn new(items: impl ExactSizeIterator<Item = T>, limit: usize) -> Self {
        let total = items.len();
        let shown: Vec<T> = items.take(limit).collect();
        Self {
            total,
            hidden: total - shown.len(),
            collapsed: shown.len() > COLLAPSE_AFTER,
            shown,
        }
    }
}

#[derive(Serialize)]
struct TierView<'a> {
    tier: Tier,
    found: u32,
    shown: usize,
    overridden: u32,
    collapsed: bool,
    rules: Vec<RuleView<'a>>,
}

#[derive(Serialize)]
struct RuleView<'a> {
    id: &'a RuleId,
    /// `None` for a rule the catalog does not know (e.g. a fixed violation of a removed rule).
    name: Option<&'a str>,
    remediation: Option<&'a str>,
    /// Shown while a violation of an overridable tier still needs a decision.
    override_when: Option<&'a str>,
    /// All violations of this rule in its tier, shown or not.
    found: usize,
    collapsed: bool,
    locations: Vec<LocationView<'a>>,
}

#[derive(Serialize)]
pub(super) struct LocationView<'a> {
    tier: Tier,
    rule_id: &'a RuleId,
    rule_name: Option<&'a str>,
    path: Option<&'a str>,
    line: Option<u32>,
    message: &'a str,
    overridden: Option<OverrideView<'a>>,
}

#[derive(Serialize)]
struct OverrideView<'a> {
    by: &'a [String],
    reason: Cow<'a, str>,
}

impl<'a> OverrideView<'a> {
    fn of(approved: &'a ApprovedOverride, reason_chars: usize) -> Self {
        Self {
            by: &approved.approved_by,
            reason: clip(&approved.reason, reason_chars),
        }
    }
}

/// One entry of the Overrides section: an approved override or a pending request.
#[derive(Serialize)]
struct OverrideEntryView<'a> {
    pending: bool,
    /// Who rejected it and why; `None` unless it was rejected.
    rejected: Option<RejectionView<'a>>,
    /// Approved by its requester alone (OVERRIDE-tier violations).
    self_service: bool,
    rules: Vec<RuleRefView<'a>>,
    requested_by: &'a str,
    approved_by: &'a [String],
    reason: Cow<'a, str>,
    missing_approvals: u32,
    /// Who may approve, as `login` or `org/team`; empty: maintainers and admins.
    approvers: Vec<String>,
}

#[derive(Serialize)]
struct RejectionView<'a> {
    by: &'a str,
    reason: Cow<'a, str>,
}

/// A rule and how many of its current violations an override entry covers.
#[derive(Serialize)]
pub(super) struct RuleRefView<'a> {
    pub(super) id: &'a RuleId,
    pub(super) name: Option<&'a str>,
    pub(super) violations: usize,
}

#[derive(Serialize)]
struct ErrorView<'a> {
    marker: Option<&'static str>,
    error: &'a str,
}

fn sorted(violations: &[Violation]) -> Vec<&Violation> {
    let mut sorted: Vec<&Violation> = violations.iter().collect();
    sorted.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    sorted
}

fn rule_name<'a>(catalog: &'a Catalog, violation: &Violation) -> Option<&'a str> {
    catalog
        .get(&violation.rule_id)
        .map(|rule| rule.name.as_str())
}

fn location<'a>(
    catalog: &'a Catalog,
    overrides: &'a Overrides,
    violation: &'a Violation,
) -> LocationView<'a> {
    LocationView {
        overridden: overrides
            .covering(violation)
            .map(|o| OverrideView::of(o, REASON_CHARS)),
        ..plain_location(catalog, violation)
    }
}

/// A violation's location without its override.
pub(super) fn plain_location<'a>(
    catalog: &'a Catalog,
    violation: &'a Violation,
) -> LocationView<'a> {
    LocationView {
        tier: violation.tier,
        rule_id: &violation.rule_id,
        rule_name: rule_name(catalog, violation),
        path: violation.path.as_deref(),
        line: violation.line,
        message: &violation.message,
        overridden: None,
    }
}

/// `text` cut to `max_chars` characters, with an ellipsis when it was longer.
pub(super) fn clip(text: &str, max_chars: usize) -> Cow<'_, str> {
    let kept = short(text, max_chars);
    if kept.len() == text.len() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(kept.trim_end().to_owned() + "…")
    }
}

/// The rules of the `violations` (sorted) whose fingerprint is in `fingerprints`, in report
/// order, with how many of each.
fn covered_rules<'a>(
    catalog: &'a Catalog,
    violations: &[&'a Violation],
    fingerprints: &BTreeSet<Fingerprint>,
) -> Vec<RuleRefView<'a>> {
    let mut rules: Vec<RuleRefView> = Vec::new();
    for v in violations
        .iter()
        .filter(|v| fingerprints.contains(&v.fingerprint))
    {
        match rules.iter_mut().find(|r| r.id == &v.rule_id) {
            Some(rule) => rule.violations += 1,
            None => rules.push(RuleRefView {
                id: &v.rule_id,
                name: rule_name(catalog, v),
                violations: 1,
            }),
        }
    }
    rules
}

/// The approved overrides that cover a current violation, then every pending request. An
/// approved override whose violations were all fixed is left out: it no longer changes anything.
fn override_entries<'a>(
    evaluation: &'a Evaluation,
    violations: &[&'a Violation],
) -> Vec<OverrideEntryView<'a>> {
    let approved = evaluation.overrides.iter().filter_map(|o| {
        let rules = covered_rules(evaluation.catalog, violations, &o.fingerprints);
        (!rules.is_empty()).then(|| OverrideEntryView {
            pending: false,
            rejected: None,
            self_service: matches!(o.approved_by.as_slice(), [only] if only == &o.requested_by),
            rules,
            requested_by: &o.requested_by,
            approved_by: &o.approved_by,
            reason: clip(&o.reason, REASON_CHARS),
            missing_approvals: 0,
            approvers: Vec::new(),
        })
    });
    let pending = evaluation
        .pending_overrides
        .iter()
        .map(|p: &'a PendingOverride| OverrideEntryView {
            pending: true,
            rejected: None,
            self_service: false,
            rules: covered_rules(evaluation.catalog, violations, &p.fingerprints),
            requested_by: &p.requested_by,
            approved_by: &p.progress.approved_by,
            reason: clip(&p.reason, REASON_CHARS),
            missing_approvals: p.progress.missing_approvals(),
            approvers: p.approvers.iter().map(ToString::to_string).collect(),
        });
    // A rejection matters while what it was about is still there.
    let rejected = evaluation
        .rejected_overrides
        .iter()
        .filter_map(|r: &'a RejectedOverride| {
            let rules = covered_rules(evaluation.catalog, violations, &r.fingerprints);
            (!rules.is_empty()).then(|| OverrideEntryView {
                pending: false,
                rejected: Some(RejectionView {
                    by: &r.rejected_by,
                    reason: clip(&r.rejection, REASON_CHARS),
                }),
                self_service: false,
                rules,
                requested_by: &r.requested_by,
                approved_by: &[],
                reason: clip(&r.reason, REASON_CHARS),
                missing_approvals: 0,
                approvers: Vec::new(),
            })
        });
    approved.chain(pending).chain(rejected).collect()
}

/// The overrides that made the difference: the evaluation passes, and would fail without them.
/// Those covering the most severe violations come first.
fn passed_by<'a>(evaluation: &'a Evaluation, verdict: &Verdict) -> Vec<&'a ApprovedOverride> {
    let violations = &evaluation.findings.violations;
    let without = judge(violations, &Overrides::default(), evaluation.threshold);
    if !verdict.passed() || without.passed() {
        return Vec::new();
    }
    let mut decisive: Vec<(Tier, &ApprovedOverride)> = evaluation
        .overrides
        .iter()
        .filter_map(|o| {
            violations
                .iter()
                .filter(|v| o.fingerprints.contains(&v.fingerprint))
                .map(|v| v.tier)
                .min()
                .map(|tier| (tier, o))
        })
        .collect();
    decisive.sort_by_key(|(tier, _)| *tier);
    decisive.into_iter().map(|(_, o)| o).collect()
}

pub(super) fn markdown(evaluation: &Evaluation, marker: Option<&'static str>) -> String {
    let violations = sorted(&evaluation.findings.violations);
    let fixed = sorted(&evaluation.fixed);
    let verdict = evaluation.verdict();
    let render_limited = |limit: usize| {
        let view = markdown_view(evaluation, marker, &verdict, &violations, &fixed, limit);
        render("report.md.j2", &view)
    };
    let longest = violations
        .len()
        .max(fixed.len())
        .max(evaluation.findings.not_evaluated.len());
    let full = render_limited(longest);
    if full.len() <= MAX_MARKDOWN_BYTES {
        return full;
    }
    // The report grows with the number of items shown: find the largest number that fits.
    // With nothing listed the report is a few hundred bytes, so `fits` always holds at 0.
    let (mut fits, mut too_long) = (0, longest);
    let mut best = render_limited(0);
    while too_long - fits > 1 {
        let mid = fits + (too_long - fits) / 2;
        let rendered = render_limited(mid);
        if rendered.len() <= MAX_MARKDOWN_BYTES {
            (fits, best) = (mid, rendered);
        } else {
            too_long = mid;
        }
    }
    best
}

fn markdown_view<'a>(
    evaluation: &'a Evaluation,
    marker: Option<&'static str>,
    verdict: &'a Verdict,
    violations: &[&'a Violation],
    fixed: &[&'a Violation],
    limit: usize,
) -> MarkdownView<'a> {
    let (catalog, overrides) = (evaluation.catalog, evaluation.overrides);
    let counts = verdict.counts();
    let effective = verdict.effective_counts();
    let count_row = |tier: Tier| CountRow {
        tier,
        found: counts.get(tier),
        overridden: counts.get(tier) - effective.get(tier),
        penalty: effective.get(tier) * tier.penalty(),
    };

    let mut per_rule: BTreeMap<(Tier, &RuleId), usize> = BTreeMap::new();
    for v in violations {
        *per_rule.entry((v.tier, &v.rule_id)).or_default() += 1;
    }
    let shown = &violations[..limit.min(violations.len())];
    let mut tiers: Vec<TierView> = Vec::new();
    for tier in Tier::ALL {
        let row = count_row(tier);
        let mut rules: Vec<RuleView> = Vec::new();
        for v in shown.iter().filter(|v| v.tier == tier) {
            let location = location(catalog, overrides, v);
            match rules.last_mut() {
                Some(rule) if rule.id == &v.rule_id => rule.locations.push(location),
                _ => {
                    let meta = catalog.get(&v.rule_id);
                    rules.push(RuleView {
                        id: &v.rule_id,
                        name: rule_name(catalog, v),
                        remediation: meta.map(|m| m.remediation.as_str()),
                        override_when: meta
                            .filter(|_| tier != Tier::Warning)
                            .map(|m| m.override_when.as_str()),
                        found: per_rule[&(tier, &v.rule_id)],
                        collapsed: false,
                        locations: vec![location],
                    })
                }
            }
        }
        if rules.is_empty() {
            continue;
        }
        let shown_in_tier: usize = rules.iter().map(|r| r.locations.len()).sum();
        let collapsed = tier == Tier::Warning && shown_in_tier > COLLAPSE_WARNINGS_AFTER;
        for rule in &mut rules {
            rule.collapsed = !collapsed && rule.locations.len() > COLLAPSE_AFTER;
            if rule.locations.iter().all(|l| l.overridden.is_some()) {
                rule.override_when = None;
            }
        }
        tiers.push(TierView {
            tier,
            found: row.found,
            shown: shown_in_tier,
            overridden: row.overridden,
            collapsed,
            rules,
        });
    }

    let history = &evaluation.history;
    MarkdownView {
        marker,
        passed: verdict.passed(),
        score: verdict.score().value(),
        threshold: verdict.threshold().value(),
        reasons: verdict.reasons(),
        passed_by: passed_by(evaluation, verdict)
            .into_iter()
            .map(|o| OverrideView::of(o, REASON_CHARS))
            .collect(),
        found: counts.total(),
        overridden: counts.total() - effective.total(),
        counts: Tier::ALL
            .map(count_row)
            .into_iter()
            .filter(|row| row.found > 0)
            .collect(),
        history: history[history.len().saturating_sub(HISTORY_SHOWN)..]
            .iter()
            .map(|h| HistoryView {
                score: h.score,
                sha: h.sha.chars().take(SHORT_SHA).collect(),
            })
            .collect(),
        earlier_history: history.len() > HISTORY_SHOWN,
        not_evaluated: List::new(
            evaluation.findings.not_evaluated.iter().map(String::as_str),
            limit,
        ),
        tiers,
        hidden_violations: violations.len() - shown.len(),
        overrides: override_entries(evaluation, violations),
        fixed: List::new(fixed.iter().map(|v| plain_location(catalog, v)), limit),
        policy_digest: short(evaluation.policy_digest, SHORT_DIGEST),
    }
}

fn short(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// Longest error text shown, so an error report always fits GitHub's limit.
const MAX_ERROR_BYTES: usize = 60_000;

pub(super) fn markdown_error(error: &str, marker: Option<&'static str>) -> String {
    let mut end = error.len().min(MAX_ERROR_BYTES);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    render(
        "error.md.j2",
        &ErrorView {
            marker,
            error: &error[..end],
        },
    )
}

#[derive(Serialize)]
struct TitleView<'a> {
    failed: bool,
    score: u8,
    found: u32,
    tiers: Vec<TitleTier>,
    overridden: u32,
    /// The override that made the difference (the most severe one), and how many others did.
    passed_by: Option<OverrideView<'a>>,
    passed_by_others: usize,
}

#[derive(Serialize)]
struct TitleTier {
    tier: Tier,
    count: u32,
}

pub(super) fn check_run_title(input: &ReportInput) -> String {
    let view = match input {
        ReportInput::Failed { .. } => TitleView {
            failed: true,
            score: 0,
            found: 0,
            tiers: Vec::new(),
            overridden: 0,
            passed_by: None,
            passed_by_others: 0,
        },
        ReportInput::Evaluated(evaluation) => {
            let verdict = evaluation.verdict();
            let effective = verdict.effective_counts();
            let decisive = passed_by(evaluation, &verdict);
            TitleView {
                failed: false,
                score: verdict.score().value(),
                found: verdict.counts().total(),
                tiers: Tier::ALL
                    .into_iter()
                    .map(|tier| TitleTier {
                        tier,
                        count: effective.get(tier),
                    })
                    .filter(|t| t.count > 0)
                    .collect(),
                overridden: verdict.counts().total() - effective.total(),
                passed_by: decisive
                    .first()
                    .map(|o| OverrideView::of(o, TITLE_REASON_CHARS)),
                passed_by_others: decisive.len().saturating_sub(1),
            }
        }
    };
    render("check_run_title.txt.j2", &view)
}

#[derive(Serialize)]
struct TextView<'a> {
    color: bool,
    groups: Vec<Vec<LocationView<'a>>>,
    rule_width: usize,
    not_evaluated: &'a [String],
    passed: bool,
    score: u8,
    threshold: u8,
    reasons: &'a [VerdictReason],
}

pub(super) fn text(input: &ReportInput, color: bool) -> String {
    let evaluation = match input {
        ReportInput::Evaluated(evaluation) => evaluation,
        ReportInput::Failed { error } => {
            #[derive(Serialize)]
            struct TextErrorView<'a> {
                color: bool,
                error_lines: Vec<&'a str>,
            }
            let error_lines = error.lines().collect();
            return render("error.txt.j2", &TextErrorView { color, error_lines });
        }
    };
    let verdict = evaluation.verdict();
    let violations = sorted(&evaluation.findings.violations);
    let mut groups: Vec<Vec<LocationView>> = Vec::new();
    let mut tiers = Vec::new();
    for v in &violations {
        let line = location(evaluation.catalog, evaluation.overrides, v);
        if tiers.last() == Some(&v.tier) {
            groups.last_mut().expect("a group per tier").push(line);
        } else {
            tiers.push(v.tier);
            groups.push(vec![line]);
        }
    }
    render(
        "report.txt.j2",
        &TextView {
            color,
            groups,
            rule_width: violations
                .iter()
                .map(|v| v.rule_id.as_str().len())
                .max()
                .unwrap_or(0),
            not_evaluated: &evaluation.findings.not_evaluated,
            passed: verdict.passed(),
            score: verdict.score().value(),
            threshold: verdict.threshold().value(),
            reasons: verdict.reasons(),
        },
    )
}
