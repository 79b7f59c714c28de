# Unit tests of ACME-001, run by `tollgate test`: each `test_*` rule passes when its body is true.
package tollgate.rules.acme_test

import data.tollgate.rules.acme

candidate(path, text, kind) := {"path": path, "line": 1, "text": text, "kind": kind}

test_flags_the_raw_hostname_in_code if {
	found := acme.violation with input as {"candidates": {"ACME-001": [
		candidate("build/settings.gradle", `url "https://pkgs.acme.internal/maven"`, "code"),
	]}}
	count(found) == 1
}

test_leaves_comments_alone if {
	found := acme.violation with input as {"candidates": {"ACME-001": [
		candidate("build/settings.gradle", "// mirrors pkgs.acme.internal", "comment"),
	]}}
	count(found) == 0
}

test_leaves_docs_and_tests_alone if {
	found := acme.violation with input as {"candidates": {"ACME-001": [
		candidate("docs/registry.md", "pkgs.acme.internal", "code"),
		candidate("tests/test_registry.py", `URL = "https://pkgs.acme.internal"`, "code"),
	]}}
	count(found) == 0
}
