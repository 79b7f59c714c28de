package tollgate.rules.conflicts

violation contains {"rule": "R04", "path": c.path, "line": c.line, "message": "merge-conflict marker"} if {
	some c in input.candidates.R04
	regex.match(`^(<{7}|>{7})( |$)|^={7}$`, c.text)
}
