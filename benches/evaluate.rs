//! Parse + evaluate benchmark: generated diffs of 1k, 10k and 100k added lines run through the
//! full default pack. Prints wall time (min and median of several runs), added lines per second
//! at the median, and peak memory: the process's resident high-water mark (`VmHWM`), so with the
//! sizes run smallest first each row shows the peak up to and including that size.
//!
//! Three phases are timed apart (minimum over the runs): parsing the unified diff, the syntactic
//! context of every added line (`diff::classify`: comments, strings, docstrings, test blocks),
//! and evaluation (`PolicyEngine::evaluate`, which computes that context itself, then builds the
//! input and runs the rules). The total is parse + evaluate: what a check costs.
//!
//! Run with `cargo bench --bench evaluate`. Figures, not assertions: machines are noisy.

use std::hint::black_box;
use std::time::{Duration, Instant};
use tollgate::config::RepoConfig;
use tollgate::diff::{classify, parse_unified};
use tollgate::policy::{ChangeContext, PolicyEngine, PolicyPack};

/// Lines typical of application code, with an occasional finding so rules do real work.
const CODE: &[&str] = &[
    "    let total = items.iter().map(|item| item.price * item.quantity).sum::<u64>();",
    "def handle_request(request, session):",
    "        response = session.get(url, timeout=10)",
    "    if (user.isAdmin && !settings.readOnly) { return renderAdminPanel(user); }",
    "import { useState, useEffect } from 'react';",
    "    for (const [key, value] of Object.entries(options)) {",
    "        return Err(Error::NotFound(format!(\"no user {id}\")));",
    "    // Compute the checksum once and reuse it for every chunk.",
    "    logger.info(\"processed batch\", extra={\"size\": len(batch)})",
    "}",
    "",
    "    const query = db.select().from(users).where(eq(users.id, userId));",
    "    func (s *Server) Start(ctx context.Context) error {",
    "        password = request.form.get('password')",
    "    public static final String DEFAULT_NAME = \"widget\";",
    "    /// Returns the display name, falling back to the login.",
    "    \"\"\"Fetch the page, retrying on 5xx responses.\"\"\"",
    "    const greeting = `Hello ${user.name}, you have ${count} new messages`;",
    "    /* keep the cache warm: see the comment on refresh() */",
    "#[cfg(test)]",
    "mod tests {",
    "    #[test]",
    "    fn parses_the_header() { assert_eq!(parse(\"a: b\"), Some((\"a\", \"b\"))); }",
];

/// Rare lines that trip rules (about 1 in 500 lines).
const FINDINGS: &[&str] = &[
    "    console.log('debug', payload);",
    "    # TODO fix this later",
    "    requests.get(url, verify=False)",
    "    cursor.execute(\"SELECT * FROM users WHERE id = \" + user_id)",
];

/// Added lines per generated file.
const LINES_PER_FILE: usize = 500;

fn generate_diff(added_lines: usize) -> String {
    let mut out = String::with_capacity(added_lines * 60);
    let mut written = 0;
    let mut file = 0;
    while written < added_lines {
        let count = LINES_PER_FILE.min(added_lines - written);
        let ext = ["rs", "py", "ts", "go", "java"][file % 5];
        let path = format!("src/module_{file}/service.{ext}");
        out.push_str(&format!(
            "diff --git a/{path} b/{path}\nnew file mode 100644\n"
        ));
        out.push_str(&format!(
            "--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{count} @@\n"
        ));
        for i in 0..count {
            let n = written + i;
            let line = if n % 500 == 499 {
                FINDINGS[(n / 500) % FINDINGS.len()]
            } else {
                CODE[n % CODE.len()]
            };
            out.push('+');
            out.push_str(line);
            out.push('\n');
        }
        written += count;
        file += 1;
    }
    out
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let pack = PolicyPack::default_pack().expect("default pack loads");
    let engine = PolicyEngine::load(&pack).expect("default pack compiles");
    let config = RepoConfig::defaults(engine.catalog());
    let context = ChangeContext::default();
    println!(
        "{:>8} {:>6} {:>10} {:>10} {:>10} {:>10} {:>11} {:>14} {:>13}",
        "lines",
        "files",
        "parse",
        "context",
        "evaluate",
        "total min",
        "total median",
        "lines/s median",
        "peak RSS MiB"
    );
    for (added, runs) in [(1_000, 30), (10_000, 15), (100_000, 5)] {
        let text = generate_diff(added);
        let mut totals = Vec::with_capacity(runs);
        let (mut parse_time, mut context_time, mut eval_time) =
            (Duration::MAX, Duration::MAX, Duration::MAX);
        let mut violations = 0;
        for _ in 0..runs {
            let start = Instant::now();
            let diff = parse_unified(text.as_bytes()).expect("generated diff parses");
            let parsed = Instant::now();
            let findings = engine
                .evaluate(&diff, &context, &config)
                .expect("pack evaluates");
            let done = Instant::now();
            violations = findings.violations.len();
            let classifying = Instant::now();
            black_box(diff.files.iter().map(classify).collect::<Vec<_>>());
            context_time = context_time.min(classifying.elapsed());
            parse_time = parse_time.min(parsed - start);
            eval_time = eval_time.min(done - parsed);
            totals.push(done - start);
        }
        totals.sort();
        let median = totals[totals.len() / 2];
        println!(
            "{added:>8} {:>6} {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>8.1}ms {:>9.1}ms {:>14.0} {:>13.1}   ({violations} violations)",
            added.div_ceil(LINES_PER_FILE),
            parse_time.as_secs_f64() * 1e3,
            context_time.as_secs_f64() * 1e3,
            eval_time.as_secs_f64() * 1e3,
            totals[0].as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e3,
            added as f64 / median.as_secs_f64(),
            peak_rss_mib().unwrap_or(f64::NAN),
        );
    }
}
