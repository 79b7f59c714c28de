//! Export formats (pure): CSV lines and JSON array items for streamed exports.

use crate::store::dashboard::ViolationRow;

pub const VIOLATION_CSV_HEADER: &str = "id,repository,pr_number,author,rule_id,tier,path,line,state,message,fingerprint,created_at\r\n";

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

pub fn violation_csv_line(row: &ViolationRow, out: &mut String) {
    let fields = [
        row.id.to_string(),
        row.repository.clone(),
        row.pr_number.to_string(),
        row.author.clone().unwrap_or_default(),
        row.rule_id.clone(),
        row.tier.clone(),
        row.path.clone().unwrap_or_default(),
        row.line.map(|l| l.to_string()).unwrap_or_default(),
        row.state.clone(),
        row.message.clone(),
        row.fingerprint.clone(),
        row.created_at.to_rfc3339(),
    ];
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(field, out);
    }
    out.push_str("\r\n");
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
}
