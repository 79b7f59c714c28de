# R16 container image hygiene: unpinned base images, remote ADD, piping downloads into a shell.
#
# Reads the added lines of Dockerfiles (and, for curl | sh, of shell scripts) only.
package tollgate.rules.containers

import data.tollgate.lib

dockerfile(path) if {
	name := lower(lib.basename(path))
	some base in {"dockerfile", "containerfile"}
	name == base
}

dockerfile(path) if {
	name := lower(lib.basename(path))
	some base in {"dockerfile.", "containerfile."}
	startswith(name, base)
}

dockerfile(path) if endswith(lower(path), ".dockerfile")

shell_script(path) if lib.ext(path) in {"sh", "bash", "zsh"}

words(text) := regex.split(`[ \t]+`, trim_space(text))

# `FROM [--platform=…] image [AS name]`: the image and the stage name (lower-cased, or "").
from_image(text) := image if {
	w := words(text)
	lower(w[0]) == "from"
	args := [x | some x in array.slice(w, 1, count(w)); not startswith(x, "--")]
	image := args[0]
}

stage_names(f) := {lower(w[i + 1]) |
	some l in f.added
	w := words(l.text)
	lower(w[0]) == "from"
	some i, x in w
	lower(x) == "as"
	i + 1 < count(w)
}

# Names commonly given to build stages, for modified Dockerfiles whose `FROM … AS` line is not
# part of the change.
usual_stage_names := {
	"base", "build", "builder", "deps", "dependencies", "development", "dev", "final", "prod",
	"production", "release", "runtime", "runner", "test", "tests", "compile", "compiler",
	"assets", "source", "src", "app",
}

# An image reference's tag ("" when there is none). A `:` before the last `/` is a registry port.
tag(image) := t if {
	parts := split(image, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	t := split(last, ":")[1]
} else := ""

pinned_elsewhere(f, image) if lower(image) == "scratch"

pinned_elsewhere(f, image) if contains(image, "$")

pinned_elsewhere(f, image) if contains(image, "@sha256:")

pinned_elsewhere(f, image) if lower(image) in stage_names(f)

pinned_elsewhere(f, image) if {
	f.status != "added"
	lower(image) in usual_stage_names
}

from_problem(f, text) := msg if {
	image := from_image(text)
	not pinned_elsewhere(f, image)
	tag(image) == ""
	msg := sprintf("Base image `%s` has no tag or digest: pin a version (better, a digest) so builds are reproducible.", [image])
}

from_problem(f, text) := msg if {
	image := from_image(text)
	not pinned_elsewhere(f, image)
	tag(image) == "latest"
	msg := sprintf("Base image `%s` uses the moving `latest` tag: pin a version or digest.", [image])
}

pipe_to_shell := `(?i)\b(curl|wget)\b[^|]*\|[ \t]*(sudo[ \t]+)?(-\S+[ \t]+)*(ba|z|da|k)?sh\b|\b(ba|z)?sh[ \t]+(-c[ \t]+)?["']?\$\([ \t]*(curl|wget)\b|\b(ba|z)?sh[ \t]+<\([ \t]*(curl|wget)\b`

line_problem(f, text) := msg if {
	msg := from_problem(f, text)
} else := "`ADD` of a remote URL: download with a pinned checksum (ADD --checksum, or curl and verify) instead." if {
	regex.match(`(?i)^[ \t]*ADD[ \t]+(--\S+[ \t]+)*https?://`, text)
	not contains(text, "--checksum")
} else := "A downloaded script is piped into a shell: download it, verify its checksum, then run it." if {
	regex.match(pipe_to_shell, text)
}

violation contains {"rule": "R16", "path": f.path, "line": l.number, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	dockerfile(f.path)
	some l in f.added
	msg := line_problem(f, l.text)
}

violation contains {"rule": "R16", "path": f.path, "line": l.number, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	shell_script(f.path)
	some l in f.added
	download(lower(l.text))
	regex.match(pipe_to_shell, l.text)
	not lib.is_comment(l.text)
	msg := "A downloaded script is piped into a shell: download it, verify its checksum, then run it."
}

download(t) if contains(t, "curl")

download(t) if contains(t, "wget")
