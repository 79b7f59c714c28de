# R01 secrets and tokens, R02 private keys, R03 credential files.
#
# Messages never quote the offending text: PR comments are widely read, and repeating a secret
# there would leak it a second time.
package tollgate.rules.secrets

import data.tollgate.lib

# --- R01: provider tokens and literal credentials ----------------------------------------------

# Real-format provider tokens. Case-sensitive: the prefixes are.
provider_token := concat("|", [
	`\b(AKIA|ASIA)[0-9A-Z]{16}\b`,
	`\b(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}\b`,
	`\bgithub_pat_[A-Za-z0-9_]{60,}`,
	`\bxox[baprs]-[0-9]{6,}-[A-Za-z0-9-]{8,}`,
	`https://hooks\.slack\.com/(services|workflows|triggers)/[A-Za-z0-9_/-]{20,}`,
	`\b[rs]k_live_[0-9A-Za-z]{20,}`,
	`\bAIza[0-9A-Za-z_-]{35}`,
])

provider_kind(t) := "An AWS access key id" if startswith(t, "AKIA")

provider_kind(t) := "An AWS temporary access key id" if startswith(t, "ASIA")

provider_kind(t) := "A GitHub token" if startswith(t, "gh")

provider_kind(t) := "A GitHub fine-grained token" if startswith(t, "github_pat_")

provider_kind(t) := "A Slack token" if startswith(t, "xox")

provider_kind(t) := "A Slack webhook URL" if startswith(t, "https://")

provider_kind(t) := "A Stripe live secret key" if startswith(t, "sk_live_")

provider_kind(t) := "A Stripe live restricted key" if startswith(t, "rk_live_")

provider_kind(t) := "A Google API key" if startswith(t, "AIza")

# Documentation placeholders such as AWS's AKIAIOSFODNN7EXAMPLE or Slack's XXXX-filled URLs.
placeholder_token(t) if regex.match(`(?i)example|x{4}|\*{4}|0{8}|dummy|fake|sample|placeholder|redacted`, t)

# Tokens that providers print in their own documentation (GitHub's counterpart of
# AKIAIOSFODNN7EXAMPLE): published, never valid.
documented_tokens := {"gho_16C7e42F292c6912E7710c838347Ae178B4a", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"}

placeholder_token(t) if t in documented_tokens

# `password = "…"`, `"api_key": "…"`, `const API_TOKEN: &str = "…"`, `secret => '…'`.
credential_key := `(password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|(access|auth|api|refresh|bearer|client)[_-]?token)`

quoted_assignment := concat("", [
	`(?i)(^|[^a-z0-9])[a-z0-9_.-]*`, credential_key, `[a-z0-9_-]*["']?`,
	`([ \t]*:[ \t]*&?('static[ \t]+)?[a-z_][a-z0-9_<>]*)?[ \t]*(:=|=>|=|:)[ \t]*["']([^"' \t]{8,})["']`,
])

# `PASSWORD=…` or `api_key: …` without quotes, in configuration files only.
bare_assignment := concat("", [
	`(?i)^[ \t]*(export[ \t]+)?[a-z0-9_.-]*`, credential_key,
	`[a-z0-9_.-]*[ \t]*(=|:)[ \t]*([^ \t"'#]{8,})[ \t]*$`,
])

# Keys that name, point to or describe a credential rather than hold one.
descriptive_key(key) if regex.match(`(?i)(name|names|ref|path|file|dir|id|ids|arn|field|label|type|env|var|header|param|prompt|url|uri|hint|length|len|min|max|policy|regex|pattern|format|mode|version|count|hash|selector|placeholder|input|column|attr|attribute|template|prefix|suffix)["']?$`, key)

placeholder_value(v) if regex.match(`(?i)changeme|change_me|change-me|xxx|example|dummy|test|sample|placeholder|your|redacted|fake|todo|replace|insert|foobar|default|demo|local|dev|\*\*\*|\.\.\.`, v)

placeholder_value(v) if {
	# `-`: a command-line flag (`"--password"`, `--private-key=$2`), not a value
	some prefix in {"$", "{", "<", "%", "#{", "ENC(", "/", "./", "~/", "(", "-"}
	startswith(v, prefix)
}

# Words and identifiers (labels, translations, enum values), and environment variable names.
placeholder_value(v) if regex.match(`^(\pL+([_.\- ]\pL+)*|[A-Z][A-Z0-9_]*)$`, v)

env_lookup(text) if regex.match(`(?i)getenv|environ|process\.env|env::var|ENV\[|env\(`, text)

# Where literal credentials are expected stand-ins: tests, docs, examples, templates.
generic_exempt(path) if lib.is_non_production(path)

generic_exempt(path) if lib.is_lockfile(path)

generic_exempt(path) if lib.contains_any(lower(lib.basename(path)), template_marks)

template_marks := lib.marks({"example", "sample", "template", ".dist", ".tpl"})

# Cheap gates, checked before any regex: provider prefixes (case-sensitive), and a quote right
# after an assignment operator, which every quoted literal credential has.
provider_marks := lib.marks({
	"AKIA", "ASIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "xoxb-", "xoxa-",
	"xoxp-", "xoxr-", "xoxs-", "hooks.slack.com/", "k_live_", "AIza",
})

assignment_marks := lib.marks({"= \"", "=\"", "= '", "='", ": \"", ":\"", ": '", ":'", "=> \"", "=>\"", "=> '", "=>'"})

quoted_credential(c) if {
	strings.replace_n(assignment_marks, c.text) != c.text
	not generic_exempt(c.path)
	not lib.is_prose(c)
	not c.test
	some m in regex.find_n(quoted_assignment, c.text, 1)
	key := regex.replace(m, `(?i)^[^a-z0-9_.-]*([a-z0-9_.-]+).*$`, "$1")
	value := regex.replace(m, `^.*["']([^"' \t]{8,})["']$`, "$1")
	not descriptive_key(key)
	not placeholder_value(value)
	not env_lookup(c.text)
	not match_arm(c, m)
}

# `Plugin::Native => "mysql_native_password"`: a Rust match arm (or an enum case mapped to its
# name elsewhere) picks a value, it assigns none.
match_arm(c, m) if {
	contains(m, "=>")
	endswith(c.path, ".rs")
}

match_arm(_, m) if regex.match(`::[A-Za-z0-9_]+[ \t]*=>`, m)

# `os.getenv("LLM_API_KEY", "sk-…")`, `ENV.fetch("API_TOKEN", "…")`: a literal fallback is a
# committed credential even though the line reads the environment.
env_fallback := concat("", [
	`(?i)(getenv|environ\.get|env\.get|ENV\.fetch|env::var_or|getenv_or)\([ \t]*["'][A-Za-z0-9_]*`,
	credential_key, `[A-Za-z0-9_]*["'][ \t]*,[ \t]*["']([^"' \t]{8,})["']`,
])

fallback_credential(c) if {
	not generic_exempt(c.path)
	not lib.is_prose(c)
	not c.test
	some m in regex.find_n(env_fallback, c.text, 1)
	value := regex.replace(m, `^.*,[ \t]*["']([^"' \t]{8,})["']$`, "$1")
	not placeholder_value(value)
}

bare_credential(c) if {
	not generic_exempt(c.path)
	regex.match(bare_assignment, c.text)
	parts := regex.split(`[ \t]*[=:][ \t]*`, trim_space(c.text))
	key := trim_prefix(parts[0], "export ")
	value := parts[count(parts) - 1]
	regex.match(`[A-Za-z]`, value)
	regex.match(`[0-9]`, value)
	not descriptive_key(key)
	not placeholder_value(value)
}

secret_message(c) := msg if {
	strings.replace_n(provider_marks, c.text) != c.text
	tokens := [t | some t in regex.find_n(provider_token, c.text, -1); not placeholder_token(t)]
	count(tokens) > 0
	msg := sprintf("%s is committed in this line. Revoke it now, then remove it.", [provider_kind(tokens[0])])
} else := "A credential is assigned a literal value in this line." if {
	quoted_credential(c)
} else := "A credential is given a literal default value in this line." if {
	fallback_credential(c)
}

# Most candidates are ordinary lines that merely mention a password or a token: one builtin
# call (provider prefixes and assignment shapes at once) rejects them before anything else runs.
r01_gate := object.union_n([provider_marks, assignment_marks, fallback_marks])

fallback_marks := lib.marks({", \"", ",\"", ", '", ",'"})

# Files where `KEY=value` without quotes is an assignment: configuration and shell scripts.
config_paths := {f.path | some f in input.files; bare_assignment_file(f.path)}

bare_assignment_file(path) if lib.is_config(path)

bare_assignment_file(path) if strings.any_suffix_match(lower(path), {".sh", ".bash", ".zsh", ".env"})

violation contains {"rule": "R01", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R01
	strings.replace_n(r01_gate, c.text) != c.text
	msg := secret_message(c)
}

# `KEY=value` without quotes, in configuration files and shell scripts.
violation contains {"rule": "R01", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R01
	config_paths[c.path]
	not lib.is_prose(c)
	not contains(c.text, "(")
	strings.replace_n(r01_gate, c.text) == c.text
	bare_credential(c)
	msg := "A credential is assigned a literal value in this line."
}

# --- R02: private key material -----------------------------------------------------------------

private_key_header := `-----BEGIN ((RSA|EC|DSA|OPENSSH|PGP|ENCRYPTED|SSH2 ENCRYPTED) )?PRIVATE KEY( BLOCK)?-----`

# Base64 key data after the header on the same line (a string with `\n` escapes).
# Encrypted PEM keys put `Proc-Type:` and `DEK-Info:` headers and a blank line before the data.
inline_body := concat("", [
	`PRIVATE KEY( BLOCK)?-----(\\r)?(\\n|[ \t])+`,
	`(Proc-Type:[^\\]*(\\r)?\\n[ \t]*DEK-Info:[^\\]*(\\r)?\\n((\\r)?\\n)?)?`,
	`["'+ \t]*[A-Za-z0-9+/]{40,}`,
])

# A line of base64 key data, possibly inside a string literal or behind a comment prefix
# (`/// MIIE…` in a doc example, `# MIIE…`).
body_line := "^[ \\t\"'`+|>*#;!/-]*[A-Za-z0-9+/]{40,}={0,2}"

# The header alone (in docs, or in code that detects keys) is not key material: a key's body
# must follow on the same line or within the next added lines.
has_key_body(c) if regex.match(inline_body, c.text)

has_key_body(c) if {
	f := lib.file(c.path)
	some l in f.added
	l.number > c.line
	l.number <= c.line + 6
	regex.match(body_line, l.text)
}

key_line(c) := "A private key is committed in this file." if {
	regex.match(private_key_header, c.text)
	has_key_body(c)
}

key_line(c) := "A PuTTY private key is committed in this file." if regex.match(`^PuTTY-User-Key-File-\d+:`, c.text)

key_paths contains c.path if {
	some c in input.candidates.R02
	key_line(c)
}

violation contains {"rule": "R02", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R02
	msg := key_line(c)
}

ssh_key_names := {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk"}

key_file(path) if lower(lib.basename(path)) in ssh_key_names

key_file(path) if lib.ext(path) == "ppk"

# Key files whose content is not visible (binary, or too large for a patch).
violation contains {"rule": "R02", "path": f.path, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	key_file(f.path)
	not key_paths[f.path]
	msg := sprintf("Private key file %s is committed.", [lib.basename(f.path)])
}

# --- R03: credential files ---------------------------------------------------------------------

env_template_parts := {"example", "examples", "sample", "template", "tmpl", "tpl", "dist", "defaults", "default", "schema", "in"}

credential_suffixes := {
	".p12", ".pfx", ".jks", ".keystore", ".bks", "/credentials.json", "/.git-credentials",
	"/.netrc", "/_netrc", "/.pgpass", "/.htpasswd", "/.aws/credentials", "/.docker/config.json",
}

# A cheap gate on every changed file before the checks that name the kind.
maybe_credential_file(path) if strings.any_suffix_match(lib.slashed(path), credential_suffixes)

maybe_credential_file(path) if contains(lib.slashed(path), "/.env")

credential_file(path) := ".env file" if {
	name := lower(lib.basename(path))
	parts := split(name, ".")
	parts[0] == ""
	parts[1] == "env"
	rest := {p | some p in array.slice(parts, 2, count(parts))}
	count(rest & env_template_parts) == 0
}

credential_file(path) := "Certificate store" if {
	strings.any_suffix_match(lower(path), {".p12", ".pfx", ".jks", ".keystore", ".bks"})
	lower(lib.basename(path)) != "debug.keystore"
}

credential_file(path) := "Credentials file" if {
	lower(lib.basename(path)) in {"credentials.json", ".git-credentials", ".netrc", "_netrc", ".pgpass", ".htpasswd"}
}

credential_file(path) := "AWS credentials file" if endswith(lower(path), ".aws/credentials")

credential_file(path) := "Docker credentials file" if endswith(lower(path), ".docker/config.json")

# Package-registry configs are fine to commit unless they hold a token or password.
registry_configs := {".npmrc", ".yarnrc", ".yarnrc.yml", ".pypirc", ".gemrc", "auth.json", "pip.conf", ".pip.conf"}

registry_credential := `(?i)(_authtoken|_auth|_password|npmauthtoken|npmauthident|password|token|api_key)["']?[ \t]*[=:][ \t]*["']?[^ \t"'$]{6,}`

# Fake credentials in test fixtures and examples are expected; R01 and R02 still catch real
# tokens and keys there.
credential_exempt(path) if lib.is_test(path)

credential_exempt(path) if lib.is_example(path)

violation contains {"rule": "R03", "path": f.path, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	maybe_credential_file(f.path)
	kind := credential_file(f.path)
	not credential_exempt(f.path)
	msg := sprintf("%s `%s` is committed: credentials belong in a secret store, not in the repository.", [kind, lib.basename(f.path)])
}

violation contains {"rule": "R03", "path": f.path, "line": l.number, "message": msg} if {
	some f in input.files
	f.status != "deleted"
	lower(lib.basename(f.path)) in registry_configs
	not credential_exempt(f.path)
	some l in f.added
	regex.match(registry_credential, l.text)
	not placeholder_value(trim_space(regex.replace(l.text, `^.*[=:][ \t]*["']?`, "")))
	msg := sprintf("%s holds a registry token or password: use an environment variable (${NPM_TOKEN}) instead.", [lib.basename(f.path)])
}
