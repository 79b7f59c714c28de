# R15 large or binary files, R24 generated or vendored files edited by hand, R25 missing final
# newline. All three look at file records only, one violation per file.
package tollgate.rules.files

import data.tollgate.lib

# --- R15 ---------------------------------------------------------------------------------------

# A directory prefix from `allowed_paths` at the root or at any depth (`assets/` allows
# `web/assets/logo.png`).
allowed_path(path) if {
	some prefix in input.config.rules.R15.params.allowed_paths
	startswith(path, prefix)
}

allowed_path(path) if {
	some prefix in input.config.rules.R15.params.allowed_paths
	contains(path, concat("", ["/", prefix]))
}

allowed_extension(path) if {
	some e in input.config.rules.R15.params.allowed_extensions
	endswith(lower(path), lower(e))
}

violation contains {"rule": "R15", "path": f.path, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	max := input.config.rules.R15.params.max_bytes
	f.added_bytes > max
	not allowed_path(f.path)
	msg := sprintf("%s adds %d bytes (limit %d): large files bloat every clone.", [f.path, f.added_bytes, max])
}

violation contains {"rule": "R15", "path": f.path, "message": msg} if {
	some f in input.files
	f.status == "added"
	f.binary
	not allowed_path(f.path)
	not allowed_extension(f.path)
	msg := sprintf("Binary file %s added outside the allowed asset paths.", [f.path])
}

# --- R24 ---------------------------------------------------------------------------------------

# What kind of generated or vendored file a path is.
kind(path) := "vendored" if lib.is_vendored(path)

kind(path) := "protobuf" if {
	not lib.is_vendored(path)
	protobuf(path)
}

kind(path) := "bundle" if {
	not lib.is_vendored(path)
	not protobuf(path)
	bundle(path)
}

kind(path) := "generated" if {
	not lib.is_vendored(path)
	not protobuf(path)
	not bundle(path)
	lib.is_generated(path)
}

protobuf(path) if {
	some suffix in {".pb.go", ".pb.gw.go", "_pb2.py", "_pb2_grpc.py", "_pb2.pyi", ".pb.h", ".pb.cc", ".pb.swift", "_pb.js", "_pb.d.ts"}
	endswith(lower(path), suffix)
}

bundle(path) if contains(lib.slashed(path), "/dist/")

bundle(path) if {
	some suffix in {".min.js", ".min.mjs", ".min.css", ".js.map", ".css.map"}
	endswith(lower(path), suffix)
}

described := {
	"vendored": "vendored",
	"protobuf": "generated (protobuf)",
	"bundle": "built (bundled or minified)",
	"generated": "generated",
}

# Evidence in the same change that the file was regenerated rather than edited by hand.
regenerated(_, "protobuf") if {
	some g in input.files
	lib.ext(g.path) == "proto"
}

regenerated(_, "vendored") if {
	some g in input.files
	not lib.is_vendored(g.path)
	lower(lib.basename(g.path)) in vendor_inputs
}

vendor_inputs := lib.lockfiles | {"go.mod", "cargo.toml", "package.json", "composer.json", "gemfile", "requirements.txt", "pyproject.toml"}

regenerated(_, "bundle") if {
	some g in input.files
	not lib.is_generated(g.path)
	not lib.is_vendored(g.path)
	lib.is_js(g.path)
}

regenerated(_, "bundle") if {
	some g in input.files
	not lib.is_generated(g.path)
	lib.ext(g.path) in {"css", "scss", "sass", "less"}
}

regenerated(_, "bundle") if {
	some g in input.files
	lib.basename(g.path) == "package.json"
}

# `user.g.dart` next to `user.dart`, `Form1.Designer.cs` next to `Form1.cs`, `zz_generated.*.go`
# or `*_generated.go` next to other Go files of the package.
regenerated(f, "generated") if {
	stem := lower(split(lib.basename(f.path), ".")[0])
	dir := lib.dirname(f.path)
	some g in input.files
	g.path != f.path
	not lib.is_generated(g.path)
	lib.dirname(g.path) == dir
	lower(split(lib.basename(g.path), ".")[0]) == stem
}

regenerated(f, "generated") if {
	lib.ext(f.path) == "go"
	dir := lib.dirname(f.path)
	some g in input.files
	not lib.is_generated(g.path)
	lib.dirname(g.path) == dir
	lib.ext(g.path) == "go"
}

# Generators write their header: a rewritten header means the file was regenerated.
regenerated(f, _) if {
	some l in array.slice(f.added, 0, 5)
	regex.match(`(?i)do not edit|@generated|code generated|auto-?generated`, l.text)
}

violation contains {"rule": "R24", "path": f.path, "message": msg} if {
	some f in input.files
	f.status == "modified"
	k := kind(f.path)
	not regenerated(f, k)
	msg := sprintf("%s is a %s file edited by hand: change its source and regenerate it instead.", [f.path, described[k]])
}

# --- R25 ---------------------------------------------------------------------------------------

violation contains {"rule": "R25", "path": f.path, "message": msg} if {
	some f in input.files
	f.missing_final_newline
	not f.binary
	f.status != "deleted"
	not lib.is_generated(f.path)
	not lib.is_vendored(f.path)
	msg := sprintf("%s does not end with a newline.", [f.path])
}
