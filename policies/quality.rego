# R13 lint, type and safety suppressions; R17 debug statements; R18 TODO without an issue.
#
# None of them applies to tests, docs, examples, vendored or generated code.
package tollgate.rules.quality

import data.tollgate.lib

in_scope(path) if {
	not lib.is_non_production(path)
	not lib.is_generated(path)
}

# --- R13 ---------------------------------------------------------------------------------------

# Suppression markers that are specific enough to be matched as plain text.
suppression_marks := lib.marks({
	"eslint-disable", "@ts-ignore", "@ts-nocheck", "@ts-expect-error", "NOLINT", "@SuppressWarnings(",
	"@Suppress(", "rubocop:disable", "phpcs:ignore", "phpcs:disable", "@phpstan-ignore",
	"@psalm-suppress", "swiftlint:disable", "NOSONAR", "biome-ignore", "deno-lint-ignore",
	"#pragma warning disable",
})

# `#`-comment markers (Python and friends): `# noqa`, `#noqa`, `# type: ignore`, …
hash_suppression := `#[ \t]*(noqa\b|type:[ \t]*ignore\b|(pylint|pyright|mypy):[ \t]*(disable|ignore)|nosec\b)`

hash_suppression_marks := lib.marks({"noqa", "type:", "pylint:", "pyright:", "mypy:", "nosec"})

suppression(c) if strings.any_prefix_match(trim_left(c.text, " \t"), {"#[allow(", "#![allow(", "#[expect(", "#![expect("})

suppression(c) if lib.contains_any(c.text, suppression_marks)

suppression(c) if lib.contains_any(lower(c.text), go_lint_marks)

suppression(c) if {
	lib.contains_any(lower(c.text), hash_suppression_marks)
	regex.match(hash_suppression, c.text)
}

go_lint_marks := lib.marks({"//nolint", "// nolint"})

# Rust `unsafe` blocks, functions, impls, traits and extern blocks: the keyword after a space,
# tab or opening bracket, or at the start of the line (`unsafe_code` and `is_unsafe {` are not).
unsafe_marks := lib.marks({concat("", [before, keyword]) |
	some before in {" ", "\t", "(", "{", "=", "\n"}
	some keyword in {"unsafe {", "unsafe{", "unsafe fn ", "unsafe impl", "unsafe trait ", "unsafe extern "}
})

unsafe_code(c) if {
	endswith(c.path, ".rs")
	lib.contains_any(concat("", ["\n", c.text]), unsafe_marks)
	not lib.is_comment(c.text)
}

r13_message(c) := msg if {
	suppression(c)
	msg := sprintf("Lint or type-check suppression added: `%s`.", [lib.snippet(c.text)])
} else := msg if {
	unsafe_code(c)
	msg := sprintf("`unsafe` code added: `%s`.", [lib.snippet(c.text)])
}

violation contains {"rule": "R13", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R13
	msg := r13_message(c)
	in_scope(c.path)
}

# --- R17 ---------------------------------------------------------------------------------------

# Per language, calls that only a debugging session leaves behind.
debug_marks := {l: lib.marks(calls) | some l, calls in {
	"rs": {"dbg!("},
	"js": {"console.log(", "console.debug(", "console.trace("},
	"py": {"pdb.set_trace(", "pudb.set_trace(", "breakpoint()"},
	"rb": {"binding.pry", "binding.irb"},
	"php": {"var_dump(", "print_r(", "var_export("},
	"go": {"fmt.Println("},
	"java": {"System.out.println(", "System.err.println("},
}}

# Statements that are a debugging aid on a line of their own.
debug_lines := {"debugger", "debugger;", "byebug", "import pdb", "import ipdb", "import pudb"}

debug_lang := {
	"rs": "rs", "py": "py", "rb": "rb", "php": "php", "go": "go", "java": "java", "kt": "java",
	"js": "js", "jsx": "js", "mjs": "js", "cjs": "js", "ts": "js", "tsx": "js", "mts": "js",
	"cts": "js", "vue": "js", "svelte": "js",
}

lang(path) := debug_lang[lib.ext(path)]

# Programs print on purpose: Go commands (main.go, cmd/), Java entry points, Node CLIs and
# build configuration.
prints_on_purpose(path) if lib.is_script(path)

prints_on_purpose(path) if lib.contains_any(lib.slashed(path), command_dir_marks)

command_dir_marks := lib.marks({"/cmd/", "/cli/"})

prints_on_purpose(path) if lib.basename(path) == "main.go"

prints_on_purpose(path) if {
	lang(path) == "go"
	f := lib.file(path)
	some l in f.added
	startswith(l.text, "package main")
}

prints_on_purpose(path) if {
	lang(path) == "java"
	not contains(path, "src/main/")
}

prints_on_purpose(path) if {
	lang(path) == "java"
	strings.any_suffix_match(lower(path), {"main.java", "cli.java", "app.java", "application.java", "command.java", "tool.java", "main.kt", "cli.kt", "app.kt", "application.kt", "command.kt", "tool.kt"})
}

prints_on_purpose(path) if {
	lib.is_js(path)
	name := lower(lib.basename(path))
	js_tooling(name)
}

js_tooling(name) if strings.any_prefix_match(name, {"cli.", "gulpfile", "gruntfile", "webpack."})

js_tooling(name) if contains(name, ".config.")

# `// eslint-disable-next-line no-console` above, or `// eslint-disable-line` on the line: the
# author chose to keep it.
kept_on_purpose(c) if {
	contains(c.text, "eslint-disable")
	regex.match(`eslint-disable(-line)?[ \t]+.*no-(console|debugger)`, c.text)
}

kept_on_purpose(c) if [c.path, c.line] in eslint_allowed

# Lines right below an `eslint-disable-next-line no-console` comment, computed once.
eslint_allowed contains [d.path, d.line + 1] if {
	some d in input.candidates.R17
	contains(d.text, "eslint-disable-next-line")
	regex.match(`eslint-disable-next-line[ \t]+.*no-(console|debugger)`, d.text)
}

# `print_r($x, true)` and `var_export($x, true)` return a string instead of printing.
kept_on_purpose(c) if {
	contains(c.text, "true")
	regex.match(`(print_r|var_export)\(.*,[ \t]*true[ \t]*\)`, c.text)
}

# In the line's code: a message that names `console.log(` is not a call.
debug_statement(c) if {
	code := lib.code_of(c)
	lib.contains_any(code, debug_marks[lang(c.path)])
	not lib.contains_any(code, not_debug_marks)
}

debug_statement(c) if {
	lang(c.path)
	trim_space(lib.code_of(c)) in debug_lines
}

# Methods that merely end like a debugging call.
not_debug_marks := lib.marks({"_breakpoint()", ".breakpoint()", "->var_dump("})

violation contains {"rule": "R17", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R17
	not lib.is_prose(c)
	not c.test
	debug_statement(c)
	in_scope(c.path)
	not lib.is_script(c.path)
	not prints_on_purpose(c.path)
	not kept_on_purpose(c)
	msg := sprintf("Debug statement left in: `%s`.", [lib.snippet(c.text)])
}

# --- R18 ---------------------------------------------------------------------------------------

# A marker right after a comment opener (`// TODO`, `# FIXME:`, `/* XXX`, ` * HACK`, `-- TODO`,
# `<!-- TODO`) or a `@todo` doc tag, looked for in the line with its blanks removed.
todo_comment_marks := lib.marks({concat("", [opener, word]) |
	some opener in {"//", "#", "/*", "*", "--", "<!--", ";"}
	some word in {"TODO", "FIXME", "XXX", "HACK"}
} | {"@todo", "@TODO"})

todo_comment(text) if lib.contains_any(replace(replace(text, " ", ""), "\t", ""), todo_comment_marks)

# An issue or ticket reference: #123, owner/repo#123, ABC-123, GH-123, or a link.
issue_reference(text) if {
	lib.contains_any(text, lib.marks({"#", "-", "://"}))
	regex.match(`#[0-9]|[A-Z][A-Z0-9]+-[0-9]|[Gg][Hh]-[0-9]|https?://`, text)
}

# The markers are upper-case (or `@todo`): a cheap gate before the regexes.
todo_marks := lib.marks({"TODO", "FIXME", "XXX", "HACK", "@todo"})

violation contains {"rule": "R18", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R18
	lib.contains_any(c.text, todo_marks)
	todo_comment(c.text)
	in_scope(c.path)
	not issue_reference(c.text)
	msg := sprintf("TODO without an issue reference: `%s`.", [lib.snippet(c.text)])
}
