# R19 pull request too large, R20 title and description. One violation each per pull request.
package tollgate.rules.pull_request

import data.tollgate.lib

# --- R19 ---------------------------------------------------------------------------------------

# Lockfiles, generated and vendored files are produced by tools, not read line by line, so they
# do not count towards the size a reviewer faces.
reviewed(f) if {
	not lib.is_lockfile(f.path)
	not lib.is_generated(f.path)
	not lib.is_vendored(f.path)
}

reviewed_files := [f | some f in input.files; reviewed(f)]

changed_lines := sum([n | some f in reviewed_files; n := f.additions + f.deletions])

violation contains {"rule": "R19", "message": msg} if {
	params := input.config.rules.R19.params
	too_large_in_total(params)
	too_large(params)
	msg := sprintf("%d lines changed in %d files (limits: %d lines, %d files, not counting lockfiles and generated files).", [changed_lines, count(reviewed_files), params.max_lines, params.max_files])
}

# Excluded files only lower the counts: when the totals are within limits, nothing to do.
too_large_in_total(params) if input.pull_request.additions + input.pull_request.deletions > params.max_lines

too_large_in_total(params) if input.pull_request.changed_files > params.max_files

too_large(params) if changed_lines > params.max_lines

too_large(params) if count(reviewed_files) > params.max_files

# --- R20 ---------------------------------------------------------------------------------------

# Conventional Commits: `type(scope)!: description`. GitHub's revert button titles PRs
# `Revert "…"`, which is accepted as well.
conventional := `^(feat|fix|docs|style|refactor|perf|test|build|ci|chore|revert)(\([A-Za-z0-9_./, -]+\))?!?: \S`

title := trim_space(input.pull_request.title)

# A real pull request is being evaluated (not a bare local diff): it has a number or a title.
real_pull_request if input.pull_request.number != null

real_pull_request if title != ""

violation contains {"rule": "R20", "message": msg} if {
	title != ""
	not regex.match(conventional, title)
	not regex.match(`^Revert ".+"$`, title)
	msg := sprintf("The title `%s` is not in Conventional Commits form, e.g. `fix(parser): handle empty input`.", [lib.snippet(title)])
}

# An untouched pull request template (only HTML comments) is an empty description too.
violation contains {"rule": "R20", "message": "The pull request has no description: say what changes and why."} if {
	real_pull_request
	trim_space(regex.replace(input.pull_request.body, `(?s)<!--.*?-->`, "")) == ""
}
