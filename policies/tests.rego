# R11 source changed without tests, R14 tests disabled, skipped or focused.
package tollgate.rules.tests

import data.tollgate.lib

# --- R11 ---------------------------------------------------------------------------------------

# Production source: not tests, docs, examples, vendored or generated code, scripts or
# migrations (which are rarely unit-tested).
counted_source(f) if {
	f.status != "deleted"
	lib.is_source(f.path)
	not lib.contains_any(lib.slashed(f.path), not_counted_marks)
	not lib.is_non_production(f.path)
	not lib.is_generated(f.path)
}

# Scripts and migrations.
not_counted_marks := object.union(lib.script_dir_marks, lib.marks({"/migrations/", "/migrate/"}))

source_lines := sum([n | some f in input.files; counted_source(f); n := f.additions + f.deletions])

# A test file changed (any status: removing a test is a test change too)…
tests_changed if {
	some f in input.files
	lib.is_test(f.path)
}

# …or tests were added inside a source file, as Rust (`#[test]`) and Zig (`test "…"`) do.
tests_changed if {
	some c in input.candidates.R11
	strings.any_prefix_match(trim_left(c.text, " \t"), inline_test_starts)
}

inline_test_starts := {
	"#[test]", "#[test_case", "#[cfg(test)]", "#[tokio::test", "#[async_std::test",
	"#[sqlx::test", "#[rstest", "proptest!", "test \"", "def test_", "func Test",
}

violation contains {"rule": "R11", "message": msg} if {
	min := input.config.rules.R11.params.min_source_lines
	source_lines >= min
	not tests_changed
	msg := sprintf("%d lines of source code changed but no test was added or updated (threshold %d lines).", [source_lines, min])
}

# --- R14 ---------------------------------------------------------------------------------------

skip_patterns := {
	"rs": [`^[ \t]*#\[ignore\b`],
	"js": [
		`(^|[^A-Za-z0-9_.$])(it|describe|test|context|suite|specify)\.(skip|only)\b`,
		`(^|[^A-Za-z0-9_.$])(xit|xdescribe|xtest|xcontext|xspecify|fit|fdescribe|ftest)\(`,
	],
	"py": [
		`\bpytest\.mark\.skip(\(|[ \t]*$)`,
		`^[ \t]*@(unittest\.)?skip(\(|[ \t]*$)`,
		`^[ \t]*(pytest\.skip|self\.skipTest)\(`,
	],
	"rb": [`^[ \t]*(xit|xdescribe|xcontext|xspecify|fit|fdescribe|fcontext)\b`, `^[ \t]*(skip|pending)([ \t]+["']|[ \t]*$|\()`],
	"jvm": [`^[ \t]*@(Disabled|Ignore)\b`],
	"cs": [`^[ \t]*\[(Ignore|Explicit)\b`, `\[(Fact|Theory|Test)\([^)]*\bSkip[ \t]*=`],
	"go": [`\b[tb]\.Skip(Now|f)?\(`],
	"php": [`\bmarkTest(Skipped|Incomplete)\(`],
}

skip_lang := {
	"rs": "rs", "py": "py", "rb": "rb", "cs": "cs", "go": "go", "php": "php",
	"js": "js", "jsx": "js", "mjs": "js", "cjs": "js", "ts": "js", "tsx": "js", "mts": "js",
	"cts": "js", "vue": "js", "svelte": "js",
	"java": "jvm", "kt": "jvm", "scala": "jvm", "groovy": "jvm",
}

lang(path) := skip_lang[lib.ext(path)]

# Per language, literals every pattern needs (a cheap gate before the regexes).
skip_gates := {l: lib.marks(literals) | some l, literals in {
	"rs": {"#[ignore"},
	"js": {".skip", ".only", "xit(", "xdescribe(", "xtest(", "xcontext(", "xspecify(", "fit(", "fdescribe(", "ftest("},
	"py": {"skip", "skipTest"},
	"rb": {"xit", "xdescribe", "xcontext", "xspecify", "fit", "fdescribe", "fcontext", "skip", "pending"},
	"jvm": {"@Disabled", "@Ignore"},
	"cs": {"[Ignore", "[Explicit", "Skip"},
	"go": {".Skip"},
	"php": {"markTest"},
}}

# Imperative skips guarded by a condition (`if testing.Short() { t.Skip() }`, `if not HAS_GPU:`,
# `case "android":` under `switch runtime.GOOS`, `except ImportError:`) are routine environment
# checks, not disabled tests.
conditional(c) if regex.match(`^[ \t]*(\}[ \t]*)?(if|elif|else|unless)\b|\bif\b.*\bSkip|\bunless\b`, c.text)

# The block the skip sits in opens with a guard: the nearest line above (added or shown as
# context, up to five lines up, comments and blank lines skipped) that is indented less.
conditional(c) if {
	opener := lib.openers(c, 5)
	count(opener) > 0
	regex.match(guard, opener[0][1])
}

guard := `^[ \t]*(\}[ \t]*)?(if|elif|else|unless|case|default|when|except|catch|rescue|switch|select)\b|\}[ \t]*(else|catch)\b`

imperative(c) if regex.match(`\b[tb]\.Skip|pytest\.skip\(|skipTest\(|markTest`, c.text)

skips(c) if {
	l := lang(c.path)
	lib.contains_any(c.text, skip_gates[l])
	some p in skip_patterns[l]
	regex.match(p, c.text)
}

violation contains {"rule": "R14", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R14
	not lib.is_prose(c)
	skips(c)
	not lib.is_doc(c.path)
	not guarded(c)
	msg := sprintf("Test disabled, skipped or focused: `%s`.", [lib.snippet(c.text)])
}

guarded(c) if {
	imperative(c)
	conditional(c)
}
