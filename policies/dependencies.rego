# R12 new dependency in a manifest, R23 lockfile changed without its manifest.
#
# R12 reads the added lines of dependency manifests only (a handful of small files). Only added
# lines are visible, so each ecosystem has a line-shape heuristic, helped by the nearest section
# header among the added lines when there is one. A name that also appears in a removed line of
# the same manifest is a version bump, not a new dependency.
package tollgate.rules.dependencies

import data.tollgate.lib

# --- R12 ---------------------------------------------------------------------------------------

manifest_names := {
	"Cargo.toml": "cargo", "package.json": "npm", "composer.json": "npm",
	"pyproject.toml": "pyproject", "Pipfile": "pyproject", "go.mod": "go", "pom.xml": "maven",
	"Gemfile": "gem", "gems.rb": "gem", "build.gradle": "gradle", "build.gradle.kts": "gradle",
}

manifest_kind(path) := manifest_names[lib.basename(path)]

# requirements.txt, requirements-dev.txt, dev-requirements.in, requirements/base.txt, constraints.txt
manifest_kind(path) := "pip" if {
	strings.any_suffix_match(lower(path), {".txt", ".in"})
	pip_requirements(lib.slashed(path))
}

pip_requirements(p) if contains(lib.basename(p), "requirements")

pip_requirements(p) if contains(p, "/requirements/")

pip_requirements(p) if endswith(p, "/constraints.txt")

manifest_kind(path) := "nuget" if strings.any_suffix_match(lower(path), {".csproj", ".fsproj", ".vbproj"})

# Manifest path → kind, for the manifests this change adds or modifies.
manifests[f.path] := kind if {
	some f in input.files
	f.status != "deleted"
	kind := manifest_kind(f.path)
	not lib.is_test(f.path)
	not lib.is_vendored(f.path)
}

# `name(l, kind)` is the dependency a manifest line declares, if it declares one.

# Cargo: `serde = "1"`, `serde = { version = "1" }`, `serde.workspace = true`, `[dependencies.serde]`.
cargo_keys := {
	"version", "edition", "rust-version", "name", "authors", "license", "license-file",
	"description", "readme", "homepage", "repository", "documentation", "resolver", "build",
	"links", "publish", "default-run", "categories", "keywords", "exclude", "include",
	"members", "workspace", "opt-level", "debug", "lto", "codegen-units", "panic", "strip",
	"incremental", "path", "git", "branch", "tag", "rev", "features", "default-features",
	"optional", "package", "registry", "autobins", "autoexamples", "autotests", "autobenches",
}

name(text, "cargo") := n if {
	contains(text, "=")
	parts := split(text, "=")
	n := trim_space(parts[0])
	not lib.contains_any(n, key_punctuation)
	n != ""
	value := trim_space(concat("=", array.slice(parts, 1, count(parts))))
	cargo_version(value)
	not local_crate(value)
	not n in cargo_keys
}

key_punctuation := lib.marks({" ", "\t", ".", "[", "]", "\"", "'", "#", "{"})

# `"1.0"`, `"*"`, or an inline table with a version or a git source.
cargo_version(value) if {
	startswith(value, "\"")
	lib.contains_any(value, lib.marks({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "*"}))
}

cargo_version(value) if {
	startswith(value, "{")
	lib.contains_any(value, lib.marks({"version", "git"}))
}

# Crates of the same repository (`path = …`) and dependencies inherited from the workspace
# (`workspace = true`, declared — and reported — in the root manifest) are not new to it.
local_crate(value) if regex.match(`^\{.*\b(path|workspace)[ \t]*=`, value)

name(text, "cargo") := n if {
	startswith(trim_left(text, " \t"), "[")
	some m in regex.find_n(`^[ \t]*\[([^\]]*\.)?(dev-|build-)?dependencies\.[A-Za-z0-9_-]+\]`, text, 1)
	parts := split(trim(m, " []"), ".")
	n := parts[count(parts) - 1]
}

# npm / Composer: `"left-pad": "^1.3.0"`, `"vendor/pkg": "~2.0"`, `"x": "npm:y@1"`. Packages of
# the same repository (`workspace:*`, `file:…`, `link:…`) are not new to it.
npm_keys := {
	"version", "node", "npm", "yarn", "pnpm", "php", "engines", "packageManager", "main", "type",
	"license", "name", "description", "homepage", "author", "module", "types", "typings", "bin",
}

# `": "` followed by what starts a version or a remote package spec: a cheap gate.
npm_value_marks := lib.marks({concat("", [colon, start]) |
	some colon in {"\": \"", "\":\""}
	some start in {"^", "~", ">", "<", "=", "v", "*", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "latest", "npm:", "github:", "git+", "dev-"}
})

name(text, "npm") := n if {
	lib.contains_any(text, npm_value_marks)
	parts := split(trim_space(text), "\"")
	count(parts) >= 4
	parts[0] == ""
	trim_space(parts[2]) == ":"
	n := parts[1]
	not lib.contains_any(n, key_punctuation)
	not n in npm_keys
}

# requirements.txt: `requests==2.31.0`, `django>=4`, `numpy`, `pkg[extra]; python_version<"3.12"`.
name(text, "pip") := n if {
	not regex.match(`^[ \t]*(#|-|$)|://`, text)
	some m in regex.find_n(`^[ \t]*[A-Za-z0-9][A-Za-z0-9._-]*`, text, 1)
	n := lower(replace(trim_space(m), "_", "-"))
}

# pyproject / Pipfile: `"httpx>=0.27",` (PEP 621 arrays) or `httpx = "^0.27"` (Poetry, Pipfile).
pyproject_keys := {
	"python", "name", "version", "description", "readme", "requires-python", "license",
	"authors", "maintainers", "keywords", "classifiers", "urls", "homepage", "repository",
	"documentation", "packages", "include", "exclude", "build-backend", "requires",
	"line-length", "target-version", "select", "ignore", "extend-select", "python_version",
}

name(text, "pyproject") := n if {
	some m in regex.find_n(`^[ \t]*["'][A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?[ \t]*(==|>=|<=|~=|!=|>|<|@|;)`, text, 1)
	n := lower(replace(regex.replace(m, `^[ \t]*["']|[ \t]*\[.*$|[ \t]*(==|>=|<=|~=|!=|>|<|@|;)$`, ""), "_", "-"))
	not n in pyproject_keys
}

name(text, "pyproject") := n if {
	regex.match(`^[ \t]*[A-Za-z0-9][A-Za-z0-9._-]*[ \t]*=[ \t]*("[\^~>=<*0-9]|\{.*\b(version|git|path)[ \t]*=)`, text)
	n := lower(replace(trim_space(split(text, "=")[0]), "_", "-"))
	not n in pyproject_keys
}

# go.mod: `require example.com/mod v1.2.3` or a line of a require block; `// indirect` ones are
# transitive and left out.
name(text, "go") := n if {
	contains(text, " v")
	regex.match(`^[ \t]*(require[ \t]+)?[a-z0-9.-]+\.[a-z]{2,}(/\S*)?[ \t]+v[0-9]+\.[0-9]+\.[0-9]+\S*[ \t]*$`, text)
	parts := [p | some p in split(trim_space(text), " "); p != ""; p != "require"]
	n := parts[0]
}

# Gemfile: `gem "rails", "~> 7.1"`.
name(text, "gem") := n if {
	startswith(trim_left(text, " \t"), "gem")
	some m in regex.find_n(`^[ \t]*gem[ \t]+["'][^"']+["']`, text, 1)
	n := trim(regex.replace(m, `^[ \t]*gem[ \t]+`, ""), "\"'")
}

# Gradle: `implementation "group:artifact:1.0"`, `testImplementation(libs.junit)`.
name(text, "gradle") := n if {
	some m in regex.find_n(`^[ \t]*(implementation|api|compileOnly|runtimeOnly|testImplementation|testRuntimeOnly|testCompileOnly|androidTestImplementation|debugImplementation|kapt|ksp|annotationProcessor|compile|testCompile)[ \t]*\(?[ \t]*(platform\()?[ \t]*["'][^:"']+:[^:"']+`, text, 1)
	n := regex.replace(m, `^.*["']`, "")
}

name(text, "gradle") := n if {
	some m in regex.find_n(`^[ \t]*(implementation|api|compileOnly|runtimeOnly|testImplementation|testRuntimeOnly|kapt|ksp|annotationProcessor)[ \t]*\([ \t]*libs\.[A-Za-z0-9_.]+`, text, 1)
	n := regex.replace(m, `^.*\([ \t]*`, "")
}

# NuGet: `<PackageReference Include="Serilog" Version="3.1.1" />`.
name(text, "nuget") := n if {
	some m in regex.find_n(`<PackageReference[ \t]+Include="[^"]+"`, text, 1)
	n := trim_suffix(regex.replace(m, `^.*Include="`, ""), `"`)
}

# Maven: an `<artifactId>` right after an added `<dependency>` (and its `<groupId>`).
maven_dependency(f, l) := n if {
	some m in regex.find_n(`<artifactId>[^<]+</artifactId>`, l.text, 1)
	some opener in f.added
	opener.number >= l.number - 3
	opener.number < l.number
	regex.match(`^[ \t]*<dependency>[ \t]*$`, opener.text)
	n := regex.replace(m, `</?artifactId>`, "")
}

# Section headers among the added lines of each manifest (`[dependencies]`, `"devDependencies": {`),
# and whether each opens a dependency section.
sectioned := {"cargo", "pyproject", "npm"}

section_headers(f, "npm") := [{"number": l.number, "deps": deps} |
	some l in f.added
	endswith(l.text, "{")
	h := lower(trim_space(l.text))
	startswith(h, "\"")
	deps := count({true | dependency_section(h, "npm")}) > 0
]

section_headers(f, kind) := headers if {
	kind in {"cargo", "pyproject"}
	headers := [{"number": l.number, "deps": deps} |
		some l in f.added
		endswith(l.text, "]")
		h := lower(trim_space(l.text))
		startswith(h, "[")
		deps := count({true | dependency_section(h, kind)}) > 0
	]
}

section_headers(_, kind) := [] if not kind in sectioned

dependency_section(h, "cargo") if contains(h, "dependencies")

dependency_section(h, "pyproject") if regex.match(`^\[(project|project\.optional-dependencies|dependency-groups|tool\.poetry\.(dev-)?dependencies|tool\.poetry\.group\..*|packages|dev-packages|tool\.pdm\.dev-dependencies)\]`, h)

dependency_section(h, "npm") if regex.match(`^"(dependencies|devdependencies|peerdependencies|optionaldependencies|require|require-dev)"`, h)

# The nearest section header above line `n`, when one was added.
nearest_header(headers, n) := h if {
	above := [h | some h in headers; h.number < n]
	count(above) > 0
	last := max([h.number | some h in above])
	some h in above
	h.number == last
}

# Lines in a dependency section, or where no header is visible (then the line shape decides). A
# header that names its dependency (`[dependencies.openssl]`) is its own section.
in_dependency_section(headers, n) if {
	some h in headers
	h.number == n
	h.deps
}

in_dependency_section(headers, n) if nearest_header(headers, n).deps

in_dependency_section(headers, n) if not nearest_header(headers, n)

declared(_, kind, l) := n if {
	kind != "maven"
	n := name(l.text, kind)
}

declared(f, "maven", l) := n if n := maven_dependency(f, l)

# Names in the removed lines of a manifest: a name removed and added again is a version bump.
removed_names(f, kind) := {n | some l in f.removed; n := removed_name(kind, l)}

removed_name(kind, l) := n if {
	kind != "maven"
	n := name(l.text, kind)
}

removed_name("maven", l) := n if {
	some m in regex.find_n(`<artifactId>[^<]+</artifactId>`, l.text, 1)
	n := regex.replace(m, `</?artifactId>`, "")
}

# What a line declaring a dependency contains, per manifest kind: a cheap gate per line
# (every line of a requirements file may declare one).
line_gates := {
	# `serde = "1"`, or a table header `[dependencies.serde]` (how published crates list them)
	"cargo": lib.marks({"=", "dependencies."}),
	"npm": npm_value_marks,
	"pyproject": lib.marks({"=", "\"", "'"}),
	"go": lib.marks({" v"}),
	"maven": lib.marks({"<artifactId>"}),
	"gem": lib.marks({"gem"}),
	"gradle": lib.marks({"\"", "'", "libs."}),
	"nuget": lib.marks({"<PackageReference"}),
}

gated("pip", _) := true

gated(kind, text) if strings.replace_n(line_gates[kind], text) != text

# Per manifest, the headers and removed names are computed once, before its lines are read.
violation contains {"rule": "R12", "path": f.path, "line": l.number, "message": msg} if {
	some f in input.files
	kind := manifests[f.path]
	headers := section_headers(f, kind)
	removed := removed_names(f, kind)
	some l in f.added
	gated(kind, l.text)
	n := declared(f, kind, l)
	in_dependency_section(headers, l.number)
	not n in removed
	msg := sprintf("New dependency `%s` added to %s.", [n, lib.basename(f.path)])
}

# --- R23 ---------------------------------------------------------------------------------------

# Each lockfile and the manifests that produce it.
lock_manifests := {
	"cargo.lock": {"Cargo.toml"},
	"package-lock.json": {"package.json"},
	"npm-shrinkwrap.json": {"package.json"},
	"yarn.lock": {"package.json"},
	"pnpm-lock.yaml": {"package.json", "pnpm-workspace.yaml"},
	"bun.lockb": {"package.json"},
	"bun.lock": {"package.json"},
	"poetry.lock": {"pyproject.toml"},
	"uv.lock": {"pyproject.toml"},
	"pdm.lock": {"pyproject.toml"},
	"pipfile.lock": {"Pipfile"},
	"gemfile.lock": {"Gemfile", "gems.rb"},
	"gems.locked": {"gems.rb"},
	"go.sum": {"go.mod", "go.work"},
	"composer.lock": {"composer.json"},
	"mix.lock": {"mix.exs"},
	"pubspec.lock": {"pubspec.yaml"},
	"package.resolved": {"Package.swift"},
	"flake.lock": {"flake.nix"},
	"podfile.lock": {"Podfile"},
}

# A manifest changed in the lockfile's directory or below it: workspaces (Cargo, npm, pnpm, Go)
# keep one lockfile at the root for manifests in member directories.
manifest_changed(lock) if {
	dir := lib.dirname(lock.path)
	wanted := lock_manifests[lower(lib.basename(lock.path))]
	some f in input.files
	lib.basename(f.path) in wanted
	lib.dir_within(lib.dirname(f.path), dir)
}

violation contains {"rule": "R23", "path": f.path, "message": msg} if {
	some f in input.files
	f.status in {"added", "modified", "renamed"}
	wanted := lock_manifests[lower(lib.basename(f.path))]
	not lib.is_vendored(f.path)
	not manifest_changed(f)
	msg := sprintf("%s changed but %s did not: dependencies changed without a reviewed manifest change.", [f.path, concat(" or ", sort(wanted))])
}
