//! Export formats (pure): CSV lines and JSON array items for streamed exports. Each exported row
//! type says its CSV header and fields once (`CsvRow`); the streaming is the same for all.

use crate::store::dashboard::{AuditRow, EvaluationListRow, ViolationRow};
use serde::Serialize;
use std::fmt::Display;

/// A row type that can be exported: as a CSV line, and as JSON (through `Serialize`).
pub trait CsvRow: Serialize {
    /// The header line, with its line break.
    const CSV_HEADER: &'static str;
    /// Writes the fields in the header's order.
    fn csv_fields(&self, line: &mut CsvLine<'_>);
}

/// The fields of one CSV line being written: separated, quoted and defused by `csv_field`.
pub struct CsvLine<'a> {
    out: &'a mut String,
    first: bool,
}

impl CsvLine<'_> {
    pub fn field(&mut self, value: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        csv_field(value, self.out);
    }

    /// An optional value: empty when absent.
    pub fn optional<T: Display>(&mut self, value: Option<T>) {
        match value {
            Some(value) => self.field(&value.to_string()),
            None => self.field(""),
        }
    }
}

/// Appends `row` as one CSV line (CRLF-terminated).
pub fn csv_line<R: CsvRow>(row: &R, out: &mut String) {
    row.csv_fields(&mut CsvLine { out, first: true });
    out.push_str("\r\n");
}

/// Appends `row` as an item of a JSON array that `first` says whether it opens.
pub fn json_item<R: Serialize>(row: &R, first: bool, out: &mut String) {
    out.push_str(if first { "\n" } else { ",\n" });
    out.push_str(&serde_json::to_string(row).unwrap_or_default());
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break. A value that a
/// spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading `'`.
pub fn csv_field(value: &str, out: &mut String) {
    let formula = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let needs_quotes = formula || value.contains([',', '"', '\n', '\r']);
    if needs_quotes {
        out.push('"');
    }
    if formula {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if needs_quotes {
        out.push('"');
    }
}

impl CsvRow for ViolationRow {
    const CSV_HEADER: &'static str = "id,repository,pr_number,author,rule_id,tier,path,line,state,message,fingerprint,created_at\r\n";

    fn csv_fields(&self, line: &mut CsvLine<'_>) {
        line.field(&self.id.to_string());
        line.field(&self.repository);
        line.field(&self.pr_number.to_string());
        line.optional(self.author.as_deref());
        line.field(&self.rule_id);
        line.field(&self.tier);
        line.optional(self.path.as_deref());
        line.optional(self.line);
        line.field(&self.state);
        line.field(&self.message);
        line.field(&self.fingerprint);
        line.field(&self.created_at.to_rfc3339());
    }
}

impl CsvRow for EvaluationListRow {
    const CSV_HEADER: &'static str = "id,repository,pr_number,head_sha,status,score,verdict,threshold,block_count,override_count,warning_count,policy_digest,config_digest,created_at,completed_at\r\n";

    fn csv_fields(&self, line: &mut CsvLine<'_>) {
        line.field(&self.id.to_string());
        line.field(&self.repository);
        line.field(&self.pr_number.to_string());
        line.field(&self.head_sha);
        line.field(&self.status);
        line.optional(self.score);
        line.optional(self.verdict.as_deref());
        line.optional(self.threshold);
        line.optional(self.block_count);
        line.optional(self.override_count);
        line.optional(self.warning_count);
        line.field(&self.policy_digest);
        line.optional(self.config_digest.as_deref());
        line.field(&self.created_at.to_rfc3339());
        line.optional(self.completed_at.map(|at| at.to_rfc3339()));
    }
}

impl CsvRow for AuditRow {
    const CSV_HEADER: &'static str =
        "id,actor,action,target,before_state,after_state,created_at\r\n";

    /// The states are their JSON text.
    fn csv_fields(&self, line: &mut CsvLine<'_>) {
        line.field(&self.id.to_string());
        line.field(&self.actor);
        line.field(&self.action);
        line.field(&self.target);
        line.optional(self.before_state.as_ref());
        line.optional(self.after_state.as_ref());
        line.field(&self.created_at.to_rfc3339());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: &str) -> String {
        let mut out = String::new();
        csv_field(value, &mut out);
        out
    }

    #[test]
    fn csv_fields_are_quoted_when_needed_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "\"'-1\"");
        assert_eq!(field(""), "");
    }

    #[test]
    fn every_field_of_a_line_is_defused_and_absent_values_are_empty() {
        let row = AuditRow {
            id: 3,
            actor: "=cmd()".into(),
            action: "override.approved".into(),
            target: "a,b".into(),
            before_state: None,
            after_state: Some(serde_json::json!({ "note": "+1" })),
            created_at: chrono::DateTime::from_timestamp(0, 0).unwrap(),
        };
        let mut out = String::new();
        csv_line(&row, &mut out);
        assert_eq!(
            out,
            "3,\"'=cmd()\",override.approved,\"a,b\",,\"{\"\"note\"\":\"\"+1\"\"}\",\
             1970-01-01T00:00:00+00:00\r\n"
        );
        assert_eq!(
            AuditRow::CSV_HEADER.matches(',').count(),
            out.matches(',').count() - 1,
            "as many fields as the header (one comma is inside a quoted field)"
        );
        let mut json = String::new();
        json_item(&row, true, &mut json);
        json_item(&row, false, &mut json);
        assert!(json.starts_with("\n{") && json.contains("},\n{"), "{json}");
    }
}
