# R09 CI configuration changed, R10 governance files changed. One violation per file, whatever
# its status: deleting a workflow or a CODEOWNERS file matters as much as editing it.
package tollgate.rules.governance

import data.tollgate.lib

status_word := {
	"added": "added",
	"modified": "modified",
	"deleted": "deleted",
	"renamed": "renamed",
	"copied": "copied",
}

# --- R09 ---------------------------------------------------------------------------------------

ci_dirs := {
	".github/workflows/", ".github/actions/", ".circleci/", ".buildkite/", ".gitlab/ci/",
	".azure-pipelines/", ".woodpecker/", ".tekton/",
}

ci_names := {
	".gitlab-ci.yml", ".gitlab-ci.yaml", ".travis.yml", "bitbucket-pipelines.yml", ".drone.yml",
	"appveyor.yml", ".appveyor.yml", ".woodpecker.yml", "cloudbuild.yaml", "cloudbuild.yml",
	"codemagic.yaml", "buildspec.yml",
}

ci_file(path) if strings.any_prefix_match(path, ci_dirs)

ci_file(path) if ci_name(lower(lib.basename(path)))

ci_name(name) if name in ci_names

ci_name(name) if startswith(name, "jenkinsfile")

ci_name(name) if {
	startswith(name, "azure-pipelines")
	strings.any_suffix_match(name, {".yml", ".yaml"})
}

violation contains {"rule": "R09", "path": f.path, "message": msg} if {
	some f in input.files
	some p in lib.paths(f)
	ci_file(p)
	msg := sprintf("CI configuration %s: %s.", [status_word[f.status], f.path])
}

# --- R10 ---------------------------------------------------------------------------------------

governance_file(path) := "Code owners" if path in {"CODEOWNERS", ".github/CODEOWNERS", "docs/CODEOWNERS", ".gitlab/CODEOWNERS"}

governance_file(path) := "Tollgate configuration" if path in {".github/tollgate.yml", ".github/tollgate.yaml"}

# Rego files that enforce something: not the test data, benchmarks and examples of a project
# that works with Rego (a policy engine's `tests/`, `benches/…/policies/`, `examples/`).
governance_file(path) := "Policy" if {
	endswith(path, ".rego")
	not rego_sample(path)
}

rego_sample(path) if lib.is_test(path)

rego_sample(path) if lib.is_example(path)

rego_sample(path) if lib.is_vendored(path)

rego_sample(path) if lib.contains_any(lib.slashed(path), lib.doc_dir_marks)

governance_file(path) := "Rule metadata" if endswith(path, "policies/rules.yaml")

governance_file(path) := "Repository settings" if path in {".github/settings.yml", ".github/settings.yaml"}

governance_file(path) := "Branch protection" if {
	startswith(path, ".github/branch")
	regex.match(`^\.github/branch[-_]protection.*\.ya?ml$`, path)
}

violation contains {"rule": "R10", "path": f.path, "message": msg} if {
	some f in input.files
	kind := governance_file(lib.paths(f)[_])
	msg := sprintf("%s file %s: %s.", [kind, status_word[f.status], f.path])
}
