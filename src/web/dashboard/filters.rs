//! Query strings of the JSON API, parsed into the store's filters (pure). An unknown parameter,
//! a repeated one or a bad value is an error that names the parameter.

use crate::store::dashboard::{AuditFilter, EvaluationFilter, PullFilter, ViolationFilter};
use crate::store::trends::TrendFilter;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadParameter {
    pub name: String,
    pub problem: String,
}

fn bad(name: &str, problem: &str) -> BadParameter {
    BadParameter {
        name: name.to_owned(),
        problem: problem.to_owned(),
    }
}

/// `from` (inclusive) and `to` (exclusive), each optional.
type Range = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// The parameters of one request, checked against the names the endpoint knows.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

pub const PAGE_PARAMS: [&str; 2] = ["cursor", "limit"];
pub const VIOLATION_PARAMS: [&str; 9] = [
    "repository",
    "rule",
    "tier",
    "path",
    "pr",
    "author",
    "state",
    "from",
    "to",
];
pub const AUDIT_PARAMS: [&str; 5] = ["actor", "action", "target", "from", "to"];
pub const ALERT_PARAMS: [&str; 1] = ["status"];
pub const PULL_PARAMS: [&str; 3] = ["repository", "verdict", "author"];
/// Merge-group evaluations filter like pull requests, without an author.
pub const QUEUE_PARAMS: [&str; 2] = ["repository", "verdict"];
pub const EVALUATION_PARAMS: [&str; 5] = ["repository", "pr", "verdict", "from", "to"];
pub const TREND_PARAMS: [&str; 3] = ["days", "repository", "rule"];
/// The ranges a trend chart offers, in days.
pub const TREND_DAYS: [u32; 4] = [7, 30, 90, 365];
pub const DEFAULT_TREND_DAYS: u32 = 30;

const MAX_VALUE_CHARS: usize = 256;
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

impl Params {
    pub fn parse(raw: Option<&str>, allowed: &[&[&str]]) -> Result<Self, BadParameter> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.iter().any(|names| names.contains(&name.as_ref())) {
                return Err(bad(&name, "unknown parameter"));
            }
            if pairs.iter().any(|(n, _)| n == name.as_ref()) {
                return Err(bad(&name, "given more than once"));
            }
            if value.chars().count() > MAX_VALUE_CHARS {
                return Err(bad(&name, "longer than 256 characters"));
            }
            pairs.push((name.into_owned(), value.into_owned()));
        }
        Ok(Self(pairs))
    }

    /// The value of `name`; an empty value counts as absent.
    pub fn text(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// A page's filter form: every name of `names` with its value as given, `""` when absent.
    pub fn form(&self, names: &[&str]) -> BTreeMap<String, String> {
        names
            .iter()
            .map(|name| ((*name).to_owned(), self.text(name).unwrap_or_default()))
            .collect()
    }

    /// These parameters as a query string, without those named in `skip` and with `extra`
    /// appended (the next page's cursor, say).
    pub fn query_string(&self, skip: &[&str], extra: Option<(&str, &str)>) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.0 {
            if !skip.contains(&name.as_str()) && !value.trim().is_empty() {
                out.append_pair(name, value.trim());
            }
        }
        if let Some((name, value)) = extra {
            out.append_pair(name, value);
        }
        out.finish()
    }

    fn one_of(&self, name: &str, values: &[&str]) -> Result<Option<String>, BadParameter> {
        match self.text(name) {
            None => Ok(None),
            Some(value) => values
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&value))
                .map(|v| Some((*v).to_owned()))
                .ok_or_else(|| bad(name, &format!("expected one of {}", values.join(", ")))),
        }
    }

    fn positive(&self, name: &str) -> Result<Option<i64>, BadParameter> {
        self.text(name)
            .map(|v| {
                v.parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(name, "expected a positive whole number"))
            })
            .transpose()
    }

    /// `from` is the start of its day (or the instant given); `to` is exclusive: a plain date
    /// includes that whole day.
    fn date(&self, name: &str, end_of_day: bool) -> Result<Option<DateTime<Utc>>, BadParameter> {
        let Some(value) = self.text(name) else {
            return Ok(None);
        };
        if let Ok(instant) = DateTime::parse_from_rfc3339(&value) {
            return Ok(Some(instant.with_timezone(&Utc)));
        }
        let day = NaiveDate::parse_from_str(&value, "%Y-%m-%d")
            .map_err(|_| bad(name, "expected a date (YYYY-MM-DD) or an RFC 3339 time"))?;
        let day = if end_of_day {
            day.succ_opt()
        } else {
            Some(day)
        };
        Ok(day
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc()))
    }

    fn range(&self) -> Result<Range, BadParameter> {
        let (from, to) = (self.date("from", false)?, self.date("to", true)?);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(bad("to", "must be after from"));
        }
        Ok((from, to))
    }
}

pub fn violation_filter(params: &Params) -> Result<ViolationFilter, BadParameter> {
    let (from, to) = params.range()?;
    let pr = pr_number(params)?;
    Ok(ViolationFilter {
        repository: params.text("repository"),
        rule: rule_id(params),
        tier: params.one_of("tier", &["BLOCK", "OVERRIDE", "WARNING"])?,
        path: params.text("path"),
        pr,
        author: params.text("author"),
        state: params.one_of("state", &["open", "overridden", "resolved"])?,
        from,
        to,
    })
}

fn pr_number(params: &Params) -> Result<Option<i32>, BadParameter> {
    params
        .positive("pr")?
        .map(|n| i32::try_from(n).map_err(|_| bad("pr", "too large")))
        .transpose()
}

/// A rule id as the pack spells it (`r05` is R05).
fn rule_id(params: &Params) -> Option<String> {
    params.text("rule").map(|r| r.to_ascii_uppercase())
}

fn verdict(params: &Params) -> Result<Option<String>, BadParameter> {
    params.one_of("verdict", &["pass", "fail"])
}

pub fn pull_filter(params: &Params) -> Result<PullFilter, BadParameter> {
    Ok(PullFilter {
        repository: params.text("repository"),
        verdict: verdict(params)?,
        author: params.text("author"),
    })
}

pub fn evaluation_filter(params: &Params) -> Result<EvaluationFilter, BadParameter> {
    let (from, to) = params.range()?;
    Ok(EvaluationFilter {
        repository: params.text("repository"),
        pr: pr_number(params)?,
        verdict: verdict(params)?,
        from,
        to,
    })
}

/// A trend chart's filter and its number of days (30 unless given).
pub fn trend_filter(params: &Params) -> Result<(TrendFilter, u32), BadParameter> {
    let days = match params.text("days") {
        None => DEFAULT_TREND_DAYS,
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|days| TREND_DAYS.contains(days))
            .ok_or_else(|| bad("days", "expected one of 7, 30, 90, 365"))?,
    };
    let filter = TrendFilter {
        repository: params.text("repository"),
        rule: rule_id(params),
    };
    Ok((filter, days))
}

pub fn audit_filter(params: &Params) -> Result<AuditFilter, BadParameter> {
    let (from, to) = params.range()?;
    Ok(AuditFilter {
        actor: params.text("actor"),
        action: params.text("action"),
        target: params.text("target"),
        from,
        to,
    })
}

pub fn alert_status(params: &Params) -> Result<Option<String>, BadParameter> {
    params.one_of("status", &["open", "acknowledged", "escalated", "resolved"])
}

/// A page request: rows before the cursor (an id), at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub fn page(params: &Params) -> Result<Page, BadParameter> {
    let limit = params.positive("limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(bad("limit", "at most 500"));
    }
    Ok(Page {
        before_id: params.positive("cursor")?,
        limit,
    })
}

/// Splits off the extra row a page query fetches to learn whether another page follows:
/// the page's rows, and the next page's cursor when there is one.
pub fn split_page<T>(
    mut rows: Vec<T>,
    page: Page,
    id: impl Fn(&T) -> i64,
) -> (Vec<T>, Option<i64>) {
    let more = rows.len() as i64 > page.limit;
    rows.truncate(usize::try_from(page.limit).unwrap_or_default());
    let next = if more { rows.last().map(id) } else { None };
    (rows, next)
}

/// The date range an export needs: both ends given.
pub fn export_range(params: &Params) -> Result<(), BadParameter> {
    for name in ["from", "to"] {
        if params.text(name).is_none() {
            return Err(bad(name, "an export needs a date range (from and to)"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violations(query: &str) -> Result<ViolationFilter, BadParameter> {
        violation_filter(&Params::parse(
            Some(query),
            &[&VIOLATION_PARAMS, &PAGE_PARAMS],
        )?)
    }

    #[test]
    fn every_violation_filter_is_read() {
        let filter = violations(
            "repository=acme%2Fapi&rule=r05&tier=block&path=src%2F&pr=7&author=bob\
             &state=Open&from=2026-01-01&to=2026-01-31",
        )
        .unwrap();
        assert_eq!(filter.repository.as_deref(), Some("acme/api"));
        assert_eq!(filter.rule.as_deref(), Some("R05"));
        assert_eq!(filter.tier.as_deref(), Some("BLOCK"));
        assert_eq!(filter.path.as_deref(), Some("src/"));
        assert_eq!(filter.pr, Some(7));
        assert_eq!(filter.author.as_deref(), Some("bob"));
        assert_eq!(filter.state.as_deref(), Some("open"));
        assert_eq!(
            filter.from.unwrap().to_rfc3339(),
            "2026-01-01T00:00:00+00:00"
        );
        // A plain `to` date includes that day.
        assert_eq!(filter.to.unwrap().to_rfc3339(), "2026-02-01T00:00:00+00:00");
        assert_eq!(violations("").unwrap(), ViolationFilter::default());
    }

    #[test]
    fn bad_input_names_the_parameter() {
        let cases = [
            ("colour=red", "colour"),
            ("tier=CRITICAL", "tier"),
            ("state=closed", "state"),
            ("pr=-1", "pr"),
            ("pr=seven", "pr"),
            ("from=yesterday", "from"),
            ("to=2026-13-01", "to"),
            ("from=2026-02-01&to=2026-01-01", "to"),
            ("rule=R01&rule=R02", "rule"),
            ("limit=501", "limit"),
            ("cursor=abc", "cursor"),
        ];
        for (query, name) in cases {
            let params = Params::parse(Some(query), &[&VIOLATION_PARAMS, &PAGE_PARAMS]);
            let error = params
                .and_then(|p| violation_filter(&p).and_then(|_| page(&p)))
                .unwrap_err();
            assert_eq!(error.name, name, "{query}: {error:?}");
        }
    }

    #[test]
    fn trend_evaluation_and_pull_filters_are_read_and_bad_values_named() {
        let trends = |q: &str| trend_filter(&Params::parse(Some(q), &[&TREND_PARAMS])?);
        let (filter, days) = trends("days=90&repository=acme%2Fapi&rule=r05").unwrap();
        assert_eq!(days, 90);
        assert_eq!(filter.repository.as_deref(), Some("acme/api"));
        assert_eq!(filter.rule.as_deref(), Some("R05"));
        assert_eq!(trends("").unwrap(), (TrendFilter::default(), 30));
        for query in ["days=14", "days=-7", "days=week"] {
            assert_eq!(trends(query).unwrap_err().name, "days", "{query}");
        }

        let evaluations =
            |q: &str| evaluation_filter(&Params::parse(Some(q), &[&EVALUATION_PARAMS])?);
        let filter = evaluations("pr=7&verdict=PASS&from=2026-01-01&to=2026-01-01").unwrap();
        assert_eq!(filter.pr, Some(7));
        assert_eq!(filter.verdict.as_deref(), Some("pass"));
        assert_eq!(filter.to.unwrap().to_rfc3339(), "2026-01-02T00:00:00+00:00");
        assert_eq!(evaluations("verdict=maybe").unwrap_err().name, "verdict");
        assert_eq!(evaluations("pr=0").unwrap_err().name, "pr");
        assert_eq!(evaluations("tier=BLOCK").unwrap_err().name, "tier");

        let pulls = |q: &str| pull_filter(&Params::parse(Some(q), &[&PULL_PARAMS])?);
        let filter = pulls("verdict=fail&author=bob").unwrap();
        assert_eq!(filter.verdict.as_deref(), Some("fail"));
        assert_eq!(filter.author.as_deref(), Some("bob"));
        assert_eq!(pulls("from=2026-01-01").unwrap_err().name, "from");
    }

    #[test]
    fn pages_default_to_fifty_and_rfc3339_times_are_taken_as_given() {
        let params = Params::parse(
            Some("cursor=90&from=2026-03-01T10:00:00Z"),
            &[&AUDIT_PARAMS, &PAGE_PARAMS],
        )
        .unwrap();
        assert_eq!(
            page(&params).unwrap(),
            Page {
                before_id: Some(90),
                limit: 50
            }
        );
        let audit = audit_filter(&params).unwrap();
        assert_eq!(
            audit.from.unwrap().to_rfc3339(),
            "2026-03-01T10:00:00+00:00"
        );
        assert_eq!(export_range(&params).unwrap_err().name, "to");
    }

    #[test]
    fn forms_and_next_page_links_keep_the_filters() {
        let params = Params::parse(
            Some("rule=R01&path=src%2F&repository=&cursor=40"),
            &[&VIOLATION_PARAMS, &PAGE_PARAMS],
        )
        .unwrap();
        let form = params.form(&VIOLATION_PARAMS);
        assert_eq!(form["rule"], "R01");
        assert_eq!(form["repository"], "");
        assert_eq!(form.len(), VIOLATION_PARAMS.len());
        assert_eq!(
            params.query_string(&["cursor"], Some(("cursor", "12"))),
            "rule=R01&path=src%2F&cursor=12"
        );
    }
}
