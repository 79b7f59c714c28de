# R21 hard-coded IP addresses and internal hostnames in program source.
#
# Configuration, tests, docs, examples and scripts are where addresses belong, so only program
# source is checked, and comments are skipped.
package tollgate.rules.network

import data.tollgate.lib

in_scope(path) if {
	lib.is_source(path)
	not lib.is_non_production(path)
	not lib.is_script(path)
	not lib.is_config(path)
	not lib.is_generated(path)
}

# Lines about versions, user agents or OIDs, where dotted quads are not addresses.
not_addresses := `(?i)version|user.?agent|mozilla/|chrome/|safari/|\boid\b|snmp`

# Addresses that are fine to hard-code: loopback, unspecified and broadcast, netmasks, network
# addresses, link-local metadata, documentation ranges (RFC 5737) and public DNS resolvers.
harmless(octets) if octets[0] in {0, 127, 255}

# Object identifiers (`'1.3.101.110'`, `case '2.5.4.3':`) start with arc 1 or 2; no service
# worth hard-coding lives in 1.0.0.0/8 or 2.0.0.0/8 that is not a public resolver (listed below).
harmless(octets) if octets[0] in {1, 2}

harmless(octets) if octets[3] == 0

harmless(octets) if octets == [169, 254, 169, 254]

harmless(octets) if [octets[0], octets[1], octets[2]] in {[192, 0, 2], [198, 51, 100], [203, 0, 113]}

harmless(octets) if octets in {[8, 8, 8, 8], [8, 8, 4, 4], [1, 1, 1, 1], [1, 0, 0, 1], [9, 9, 9, 9], [208, 67, 222, 222]}

# Dotted quads: runs of digits and dots split into exactly four numbers up to 255, not glued
# to a letter, `_` or `.` in front (`v1.2.3.4`, an OID) and not a CIDR range (`10.0.0.0/8`).
addresses(text) := {run |
	some run in regex.find_n(`[0-9][0-9.]*[0-9]`, text, -1)
	parts := split(run, ".")
	count(parts) == 4
	octets := [to_number(p) | some p in parts; p != ""; count(p) <= 3]
	count(octets) == 4
	every o in octets {
		o <= 255
	}
	not harmless(octets)
	not glued(text, run)
	not cidr(text, run)
}

glued(text, run) if {
	i := indexof(text, run)
	i > 0
	before := substring(text, i - 1, 1)
	word_char(before)
}

# Letters are the characters that have a case. `-`: RFC anchors (`#section-4.6.1.1`).
word_char(ch) if lower(ch) != upper(ch)

word_char(ch) if ch in {".", "_", "-", "§"}

cidr(text, run) if {
	i := indexof(text, concat("", [run, "/"]))
	i >= 0
	substring(text, i + count(run) + 1, 1) in {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
}

# Inside a string or URL: after a quote, `//`, `@` or `=`, before a quote, `:` or `/`.
internal_host := "(?i)[\"'`@=/]([a-z0-9-]+\\.)+(internal|corp|local|lan|intranet)[\"'`:/]"

well_known_hosts := {"metadata.google.internal", "host.docker.internal", "gateway.docker.internal", "kubernetes.default.svc.cluster.local"}

hostnames(text) := {name |
	some m in regex.find_n(internal_host, text, -1)
	some name in regex.find_n(`(?i)([a-z0-9-]+\.)+(internal|corp|local|lan|intranet)`, m, 1)
	not lower(name) in well_known_hosts
	not startswith(lower(name), "localhost.")
}

# Cheap gates: a dotted quad has at least three dots; an internal hostname has its suffix.
maybe_address(text) if count(split(text, ".")) >= 4

maybe_host(text) if lib.contains_any(lower(text), host_marks)

host_marks := lib.marks({concat("", [suffix, end]) |
	some suffix in {".internal", ".corp", ".local", ".lan", ".intranet"}
	some end in {"\"", "'", "`", ":", "/"}
})

candidates contains c if {
	some c in input.candidates.R21
	maybe_address(c.text)
}

candidates contains c if {
	some c in input.candidates.R21
	maybe_host(c.text)
}

findings(text) := addresses(text) | hostnames(text) if {
	maybe_address(text)
	maybe_host(text)
} else := addresses(text) if {
	maybe_address(text)
} else := hostnames(text)

# Addresses in code and strings, not in comments (`// see RFC 8446 19.2.3.2`).
violation contains {"rule": "R21", "path": c.path, "line": c.line, "message": msg} if {
	some c in candidates
	in_scope(c.path)
	not lib.is_prose(c)
	not c.test
	text := lib.uncommented(c)
	found := sort(findings(text))
	count(found) > 0
	not regex.match(not_addresses, c.text)
	msg := sprintf("Hard-coded network address `%s`: read it from configuration.", [found[0]])
}
