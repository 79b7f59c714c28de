package tollgate.rules.size

violation contains {"rule": "R19", "message": msg} if {
	changed := input.pull_request.additions + input.pull_request.deletions
	changed > input.config.rules.R19.params.max_lines
	msg := sprintf("%d lines changed (limit %d)", [changed, input.config.rules.R19.params.max_lines])
}
