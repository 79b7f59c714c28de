# R07 SQL assembled from strings, R08 shell and dynamic code execution.
#
# Both look at program source only (not tests, docs or SQL files) and skip comment lines.
package tollgate.rules.injection

import data.tollgate.lib

in_scope(c) if {
	lib.is_source(c.path)
	not lib.is_non_production(c.path)
}

# --- R07 ---------------------------------------------------------------------------------------

# A string literal that starts a SQL statement: the prefilter literals (`"select `,
# `'insert `, …) put the verb right after a quote; the statement's next keyword must follow.
sql_clause_marks := lib.marks({" from ", " from\"", " from'", "insert into ", " set "})

sql_literal(c) if lib.contains_any(lower(c.text), sql_clause_marks)

sql_verb := `(select|insert|update|delete) `

# Evidence that a value is spliced into the SQL text rather than bound as a parameter: each
# pattern with the lower-case literals it needs, so only plausible patterns run.
spliced := [
	# "… WHERE id = " + id, id + "…" (Java, JS, C#, Python, Kotlin)
	[["+"], "[\"'`][ \\t]*\\+[ \\t]*[A-Za-z0-9_$(]"],
	[["+"], "[A-Za-z0-9_)\\]][ \\t]*\\+[ \\t]*[\"'`]"],
	# "…" . $id (PHP)
	[["$"], `["'][ \t]*\.[ \t]*\$`],
	# "…".format(x), "…".formatted(x)
	[[".format"], `["'][ \t]*\.(format|formatted)\(`],
	# "… %s" % (x,) — `%s` alone is a driver placeholder and fine
	[["%"], `["'][ \t]+%[ \t]+[A-Za-z0-9_(\[{]|["'][ \t]*%[ \t]*\(`],
	# format!("…{}"), fmt.Sprintf("…%s"), String.format("…"), sprintf("…")
	[["format"], concat("", [`(?i)(format!|String\.format|string\.Format|std::format)\([ \t]*(r#*)?[$@]?["'`, "`", `]`, sql_verb])],
	[["sprint"], concat("", [`(?i)(sprintf|fmt\.Sprint[fl]?)\([ \t]*["'`, "`", `]`, sql_verb])],
	# f"… {x}" (Python)
	[["{"], concat("", [`(?i)(^|[^A-Za-z0-9_])[rb]?f[rb]?("{1,3}`, sql_verb, `[^"]*|'{1,3}`, sql_verb, `[^']*)\{`])],
	# `… ${x}` untagged template literal (a tag such as sql`…` binds parameters)
	[["${"], concat("", ["(?i)(^|[^A-Za-z0-9_.$])`", sql_verb, "[^`]*\\$\\{"])],
	# "… #{x}" (Ruby)
	[["#{"], concat("", [`(?i)"`, sql_verb, `[^"]*#\{`])],
	# $"… {x}" (C#)
	[["$", "{"], concat("", [`(?i)\$@?"`, sql_verb, `[^"]*\{`])],
]

# "… $name" / "… ${name}" interpolation (PHP, Kotlin, Dart, Groovy, Scala s"…").
interpolating_exts := {"php", "kt", "kts", "dart", "groovy", "scala"}

interpolated(c) if {
	lib.ext(c.path) in interpolating_exts
	regex.match(concat("", [`(?i)"`, sql_verb, `[^"]*\$\{?[A-Za-z_]`]), c.text)
}

# "… \(id)" (Swift)
interpolated(c) if {
	lib.ext(c.path) == "swift"
	regex.match(concat("", [`(?i)"`, sql_verb, `[^"]*\\\(`]), c.text)
}

sql_spliced(c) if {
	t := lower(c.text)
	some p in spliced
	every literal in p[0] {
		contains(t, literal)
	}
	regex.match(p[1], c.text)
}

sql_spliced(c) if interpolated(c)

violation contains {"rule": "R07", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R07
	in_scope(c)
	not lib.is_prose(c)
	not c.test
	sql_literal(c)
	sql_spliced(c)
	msg := sprintf("SQL is built by string formatting or concatenation: `%s`.", [lib.snippet(c.text)])
}

# --- R08 ---------------------------------------------------------------------------------------

shell_names := `"(sh|bash|zsh|/bin/sh|/bin/bash|/usr/bin/env bash|cmd|cmd\.exe|powershell|pwsh)"`

# Patterns per language (by extension); "*" applies to every source file.
exec_patterns := {
	"py": [
		`\bshell ?= ?True\b`,
		`(^|[^A-Za-z0-9_.$])(eval|exec)\(`,
		`\bos\.(system|popen)\(`,
	],
	"js": [
		`\bshell: ?true\b`,
		`(^|[^A-Za-z0-9_.$#])eval\(`,
		`\bnew Function\(`,
		`(\bchild_process|\bcp)\.exec(Sync)?\(`,
		# a bare call with a command (child_process's exec destructured), not a method or `exec()`
		`(^|[^A-Za-z0-9_.$#])exec(Sync)?\([^)]`,
	],
	"rb": [`(^|[^A-Za-z0-9_.$])(eval|system|exec)\(`],
	"php": [`(^|[^A-Za-z0-9_.>:$])(eval|system|exec|shell_exec|passthru|proc_open|popen)\(`],
	"c": [`(^|[^A-Za-z0-9_.>:])(system|popen)\(`],
	"java": [
		`\bRuntime\.getRuntime\(\)\.exec\(`,
		concat("", [`\bnew ProcessBuilder\([ \t]*`, shell_names, `[ \t]*,[ \t]*"(-c|/c)"`]),
	],
	"go": [concat("", [`\bexec\.Command(Context)?\([ \t]*(ctx[ \t]*,[ \t]*)?`, shell_names, `[ \t]*,[ \t]*"(-c|/c|-Command)"`])],
	"rs": [],
}

exec_lang := {
	"py": "py", "pyw": "py",
	"js": "js", "jsx": "js", "mjs": "js", "cjs": "js", "ts": "js", "tsx": "js", "mts": "js",
	"cts": "js", "vue": "js", "svelte": "js",
	"rb": "rb", "php": "php",
	"c": "c", "h": "c", "cc": "c", "cpp": "c", "cxx": "c", "hpp": "c",
	"java": "java", "kt": "java", "scala": "java", "groovy": "java",
	"go": "go", "rs": "rs",
}

lang(path) := exec_lang[lib.ext(path)]

# Defining a function or method called eval or exec is not calling one: `def exec(`,
# `function eval(`, and a class method `exec(parser, key) {` / `async exec(cmd: string): void {`.
definition(text) if regex.match(`\b(def|function|fn|func)[ \t]+(eval|exec|system)\(`, text)

definition(text) if regex.match(`^[ \t]*((public|private|protected|static|async|override|get)[ \t]+)*(eval|exec|execSync|system)[ \t]*(<[^>]*>)?\([^)]*\)[ \t]*(:[^{=]*)?\{[ \t]*$`, text)

# The call must be in the line's code, not in a string that mentions it (`"Disallow eval()"`):
# patterns that need string arguments (`exec.Command("sh", "-c"`) read the text and check that
# the call itself is code.
string_patterns := {"java", "go"}

exec_call(c) if {
	l := lang(c.path)
	not l in string_patterns
	code := lib.code_of(c)
	some p in exec_patterns[l]
	regex.match(p, code)
	not definition(code)
}

exec_call(c) if {
	l := lang(c.path)
	l in string_patterns
	some p in exec_patterns[l]
	regex.match(p, c.text)
	lib.contains_any(lib.code_of(c), call_marks)
}

call_marks := lib.marks({".exec(", "ProcessBuilder(", "exec.Command"})

# Rust: Command::new("sh") with "-c" on the same line or in the builder calls that follow.
exec_call(c) if {
	lang(c.path) == "rs"
	regex.match(concat("", [`Command::new\([ \t]*`, shell_names, `[ \t]*\)`]), c.text)
	rust_dash_c(c)
}

rust_dash_c(c) if contains(c.text, `"-c"`)

rust_dash_c(c) if {
	some n in numbers.range(c.line + 1, c.line + 3)
	contains(lib.added_text(c.path, n), `"-c"`)
}

violation contains {"rule": "R08", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R08
	in_scope(c)
	not lib.is_prose(c)
	not c.test
	exec_call(c)
	msg := sprintf("Shell command or dynamic code execution: `%s`.", [lib.snippet(c.text)])
}
