# Helpers shared by the rule packages: path classification, comments, line lookups.
# Not a rule package (it has no `violation` set); rules import it as `data.tollgate.lib`.
#
# Speed matters here: rules call these for candidate lines and for every changed file, and in
# regorus each builtin call costs microseconds while a `regex.match` costs far more. So path
# checks are built from a few whole-set builtins (`strings.any_suffix_match`,
# `strings.any_prefix_match`, and `contains_any` below) instead of regexes or loops.
package tollgate.lib

# --- cheap string tests -----------------------------------------------------------------------

# An object mapping each literal to a NUL character, for `contains_any`.
marks(literals) := {l: "\u0000" | some l in literals}

# True when `text` contains one of the keys of `marks` (built with `marks`): one builtin call
# however many literals there are.
contains_any(text, marks) if strings.replace_n(marks, text) != text

# --- path parts -------------------------------------------------------------------------------

basename(path) := name if {
	parts := split(path, "/")
	name := parts[count(parts) - 1]
}

# The directory of a path ("" for a file at the root).
dirname(path) := dir if {
	parts := split(path, "/")
	dir := concat("/", array.slice(parts, 0, count(parts) - 1))
}

# The lower-cased extension without the dot ("" when the name has none).
ext(path) := e if {
	parts := split(lower(basename(path)), ".")
	count(parts) > 1
	e := parts[count(parts) - 1]
} else := ""

# The path lower-cased with a leading slash: `/dir/` marks then match at any depth, the root
# included, and `/name` marks match the start of a file name.
slashed(path) := concat("", ["/", lower(path)])

# True when `dir` is `base` or lies below it ("" is the root).
dir_within(dir, base) if dir == base

dir_within(_, "") := true

dir_within(dir, base) if startswith(dir, concat("", [base, "/"]))

# The new and old paths of a file record (the old one of a rename matters too).
paths(f) := {p | some p in [f.path, f.old_path]; is_string(p)}

# --- kinds of files ---------------------------------------------------------------------------

test_dir_marks := marks({
	"/test/", "/tests/", "/__tests__/", "/spec/", "/specs/", "/testing/", "/testdata/",
	"/test_data/", "/test-data/", "/e2e/", "/integration_tests/", "/integration-tests/",
	"/fixtures/", "/__fixtures__/", "/__mocks__/", "/mocks/", "/__snapshots__/",
	# benchmarks: bench/, benches/, benchmarks/, bench.js, benchmark_test.go
	"/bench",
	# file names: test_foo.py, tests_foo.py
	"/test_", "/tests_",
	# stress and load tests: scripts/stress-test/, load_test.py
	"/stress-test", "/stress_test", "/load-test", "/load_test",
})

test_suffixes := {
	"_test.py", "_tests.py", "_test.go", "_test.rs", "_tests.rs", "_test.rb", "_spec.rb",
	"_test.exs", "_test.dart", "_test.c", "_test.cc", "_test.cpp", "_unittest.cc",
	".test.js", ".test.jsx", ".test.ts", ".test.tsx", ".test.mjs", ".test.cjs",
	".spec.js", ".spec.jsx", ".spec.ts", ".spec.tsx", ".spec.mjs", ".spec.cjs",
	"/conftest.py", "/tests.rs", "/test.rs", "/test.js", "/test.mjs", "/test.ts", "/tests.js",
	"/test.py", "/tests.py",
}

# JUnit, NUnit, XCTest… naming: case-sensitive.
class_test_suffixes := {
	"Test.java", "Tests.java", "IT.java", "Test.kt", "Tests.kt", "Test.scala", "Spec.scala",
	"Tests.cs", "Test.cs", "Test.php", "Tests.swift", "Test.swift",
}

# Test code and test data, by directory or by the naming conventions of common frameworks.
is_test(path) if contains_any(slashed(path), test_dir_marks)

is_test(path) if strings.any_suffix_match(slashed(path), test_suffixes)

is_test(path) if strings.any_suffix_match(path, class_test_suffixes)

doc_suffixes := {
	".md", ".markdown", ".mdx", ".rst", ".adoc", ".asciidoc", ".org", ".rdoc", ".textile",
	# policy definitions, which quote the very patterns they look for
	".rego", "/policies/rules.yaml",
}

doc_dir_marks := marks({"/doc/", "/docs/", "/documentation/"})

doc_names := {"readme", "changelog", "changes", "history", "contributing", "license", "notice", "authors"}

# Documentation: markup files, anything under a docs directory, README/CHANGELOG/LICENSE…, and
# policy definitions.
is_doc(path) if strings.any_suffix_match(slashed(path), doc_suffixes)

is_doc(path) if contains_any(slashed(path), doc_dir_marks)

is_doc(path) if doc_name(path)

# README, CHANGELOG.md, LICENSE-MIT… but not history.rs.
doc_name(path) if {
	strings.any_prefix_match(lower(basename(path)), doc_names)
	not is_source(path)
}

example_dir_marks := marks({"/example/", "/examples/", "/_examples/", "/sample/", "/samples/", "/demo/", "/demos/"})

is_example(path) if contains_any(slashed(path), example_dir_marks)

script_dir_marks := marks({"/script/", "/scripts/", "/bin/", "/tools/", "/hack/", "/devtools/"})

script_suffixes := {".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd"}

is_script(path) if contains_any(slashed(path), script_dir_marks)

is_script(path) if strings.any_suffix_match(lower(path), script_suffixes)

vendored_dir_marks := marks({"/vendor/", "/vendored/", "/third_party/", "/third-party/", "/thirdparty/", "/node_modules/", "/bower_components/"})

is_vendored(path) if contains_any(slashed(path), vendored_dir_marks)

# Diffs and patches: data for tools and tests, quoting code from elsewhere.
data_suffixes := {".diff", ".patch"}

is_data(path) if strings.any_suffix_match(lower(path), data_suffixes)

# Tests, docs, examples, data and vendored code: where precision-first rules stay silent. One pass
# over the union of their directory marks, then the name-based checks.
non_production_dir_marks := object.union_n([test_dir_marks, doc_dir_marks, example_dir_marks, vendored_dir_marks])

non_production_suffixes := (test_suffixes | doc_suffixes) | data_suffixes

is_non_production(path) if contains_any(slashed(path), non_production_dir_marks)

is_non_production(path) if strings.any_suffix_match(slashed(path), non_production_suffixes)

is_non_production(path) if strings.any_suffix_match(path, class_test_suffixes)

is_non_production(path) if doc_name(path)

source_suffixes := {
	".rs", ".py", ".pyw", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue",
	".svelte", ".go", ".java", ".kt", ".scala", ".groovy", ".rb", ".php", ".cs", ".fs", ".vb",
	".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".m", ".mm", ".swift", ".ex",
	".exs", ".erl", ".hrl", ".clj", ".cljs", ".dart", ".lua", ".pl", ".pm", ".r", ".jl", ".elm",
	".hs", ".ml", ".zig", ".nim", ".cr",
}

# Program source code, by extension (configuration, data, markup and scripts are not).
is_source(path) if strings.any_suffix_match(lower(path), source_suffixes)

js_suffixes := {".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".mts", ".cts", ".vue", ".svelte"}

is_js(path) if strings.any_suffix_match(lower(path), js_suffixes)

config_suffixes := {
	".yml", ".yaml", ".json", ".jsonc", ".json5", ".toml", ".ini", ".cfg", ".conf",
	".properties", ".env", ".xml", ".plist", ".tf", ".tfvars", ".hcl", ".nix", ".cnf",
}

config_dir_marks := marks({
	"/config/", "/configs/", "/conf/", "/etc/", "/deploy/", "/deployment/", "/deployments/",
	"/k8s/", "/kubernetes/", "/helm/", "/charts/", "/terraform/", "/ansible/", "/infra/",
	# dotenv files: .env, .env.local
	"/.env",
})

is_config(path) if strings.any_suffix_match(lower(path), config_suffixes)

is_config(path) if contains_any(slashed(path), config_dir_marks)

lockfiles := {
	"cargo.lock", "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
	"bun.lockb", "bun.lock", "poetry.lock", "pipfile.lock", "uv.lock", "pdm.lock", "gemfile.lock",
	"gems.locked", "go.sum", "composer.lock", "mix.lock", "pubspec.lock", "package.resolved",
	"flake.lock", "gradle.lockfile", "packages.lock.json", "podfile.lock", "cartfile.resolved",
}

is_lockfile(path) if lower(basename(path)) in lockfiles

generated_suffixes := {
	".min.js", ".min.css", ".min.mjs", ".pb.go", ".pb.gw.go", "_pb2.py", "_pb2_grpc.py",
	"_pb2.pyi", ".pb.h", ".pb.cc", ".pb.swift", "_pb.js", "_pb.d.ts", ".g.dart",
	".freezed.dart", ".gr.dart", "_generated.go", ".designer.cs", ".g.cs", ".js.map", ".css.map",
}

generated_marks := marks({".generated.", "/zz_generated", "/dist/", "/__generated__/", "/generated/"})

# Files produced by a tool, recognised by name or directory.
is_generated(path) if strings.any_suffix_match(lower(path), generated_suffixes)

is_generated(path) if contains_any(slashed(path), generated_marks)

# --- lines ------------------------------------------------------------------------------------

# Python doctest prompts (`>>> `) mark examples in docstrings.
comment_openers := {"#", "//", "/*", "* ", "*/", "-- ", "<!--", ";;", "%", "REM ", ">>> "}

# `#` followed by `[` or `!` (Rust attributes, shebangs) and C preprocessor directives are not
# comments.
not_comment_openers := {
	"#[", "#![", "#!", "#include", "#define", "#undef", "#if", "#elif", "#else", "#endif",
	"#pragma", "#import", "#region", "#endregion",
}

# A line that is only a comment, in the common comment syntaxes.
is_comment(text) if {
	t := trim_left(text, " \t")
	comment_start(t)
	not strings.any_prefix_match(t, not_comment_openers)
}

comment_start(t) if strings.any_prefix_match(t, comment_openers)

comment_start(t) if t == "*"

# --- syntactic context ----------------------------------------------------------------------
#
# Added lines and candidates carry `kind` (code, comment, doc_comment, string, docstring) and
# `test` (inside a test block of a source file); candidates also carry `code` (the line without
# comments, string contents removed) and `strings` (the string contents). Lines of inputs built
# before these fields existed fall back to the textual tests.

prose_kinds := {"comment", "doc_comment", "docstring"}

# A comment, a doc or block comment, or a docstring: text for people, not code.
is_prose(c) if c.kind in prose_kinds

is_prose(c) if is_comment(c.text)

# Test code: a test file, or a test block inside a source file.
is_test_code(c) if c.test

is_test_code(c) if is_test(c.path)

# The line's code without comments and string contents (the text itself when unknown).
code_of(c) := object.get(c, "code", c.text)

# The line without its comments: its code, then the contents of its strings, each in double
# quotes.
uncommented(c) := concat(" ", array.concat([code_of(c)], [q | some s in object.get(c, "strings", []); q := concat("", ["\"", s, "\""])]))

# True when `fragment` lies inside one of the line's string literals.
inside_string(c, fragment) if {
	some s in object.get(c, "strings", [])
	contains(s, fragment)
}

# The added line `n` of file `path`, if it was added.
added_text(path, n) := text if {
	some f in input.files
	f.path == path
	some l in f.added
	l.number == n
	text := l.text
}

# The text of line `n` of file `path` as the diff shows it: an added or a context line.
shown_text(path, n) := text if {
	text := added_text(path, n)
} else := text if {
	some f in input.files
	f.path == path
	some l in object.get(f, "context", [])
	l.number == n
	text := l.text
}

# The width of a line's leading spaces and tabs.
indentation(text) := count(text) - count(trim_left(text, " \t"))

# The lines above line `c` (added, or shown as context) that open a block around it: up to
# `reach` lines up, blank lines and comments skipped, indented less than `c`; nearest first, each
# as [number, text].
openers(c, reach) := [[n, t] |
	some n in numbers.range(c.line - 1, max([c.line - reach, 1]))
	n < c.line
	t := shown_text(c.path, n)
	trim_space(t) != ""
	not is_comment(t)
	indentation(t) < indentation(c.text)
]

# The file record of a path.
file(path) := f if {
	some f in input.files
	f.path == path
}

# Quotes a snippet of a line for a message: trimmed and at most 80 characters.
snippet(text) := s if {
	t := trim_space(text)
	count(t) <= 80
	s := t
} else := s if {
	s := concat("", [substring(trim_space(text), 0, 77), "..."])
}
