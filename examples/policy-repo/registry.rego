# ACME-001: raw registry hostnames in code and configuration (not in docs, tests or comments).
package tollgate.rules.acme

import data.tollgate.lib

violation contains {"rule": "ACME-001", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates["ACME-001"]
	not lib.is_doc(c.path)
	not lib.is_test(c.path)
	c.kind == "code"
	msg := sprintf("Raw registry URL: `%s`.", [lib.snippet(c.text)])
}
