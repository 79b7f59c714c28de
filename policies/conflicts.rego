# R04 merge-conflict markers.
package tollgate.rules.conflicts

# `<<<<<<< HEAD`, `>>>>>>> branch` and diff3's `||||||| base` are unambiguous on their own.
strong_marker(c) if strings.any_prefix_match(c.text, {"<<<<<<< ", ">>>>>>> ", "||||||| "})

strong_marker(c) if c.text in {"<<<<<<<", ">>>>>>>", "|||||||"}

# Paths with at least one unambiguous marker among their added lines.
conflicted_paths contains c.path if {
	some c in input.candidates.R04
	strong_marker(c)
}

# A lone `=======` is also a Markdown or reStructuredText heading underline: only a marker when
# the same file gained an unambiguous one.
marker(c) if strong_marker(c)

marker(c) if {
	c.text == "======="
	conflicted_paths[c.path]
}

violation contains {"rule": "R04", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R04
	marker(c)
	msg := sprintf("Merge-conflict marker `%s` left in the file.", [substring(c.text, 0, 7)])
}
