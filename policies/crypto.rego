# R05 TLS certificate verification disabled, R22 weak cryptography or randomness for secrets.
package tollgate.rules.crypto

import data.tollgate.lib

# --- R05 ---------------------------------------------------------------------------------------

# Each pattern with the lower-case literals it needs (only patterns whose literals are all on the
# line run: regexes are the expensive part of a rule) and the file extensions it applies to
# ("*": any file). Language-specific calls only count in that language, not when another
# language's file quotes them in a string.
tls_patterns := [
	[["verify", "false"], `\bverify[ \t]*=[ \t]*False\b`, py],
	[["check_hostname"], `\bcheck_hostname[ \t]*=[ \t]*False\b`, py],
	[["_create_unverified_context"], `_create_unverified_context`, py],
	# a keyword argument (`session.get(url, ssl=False)`), not an attribute (`self.ssl = False`:
	# no TLS asked for)
	[["ssl", "false"], `(^|[(,])[ \t]*ssl=False\b`, py],
	# Guzzle and other PHP clients: `'verify' => false`
	[["verify", "false"], `['"]verify['"][ \t]*=>[ \t]*false\b`, {"php"}],
	[["danger_accept_invalid"], `danger_accept_invalid_(certs|hostnames)[ \t]*\([ \t]*true[ \t]*\)`, {"rs"}],
	[["dangerousacceptany"], `DangerousAcceptAnyServerCertificateValidator`, {"cs", "fs", "vb"}],
	[["validationcallback"], `ServerCertificate(Custom)?ValidationCallback[ \t]*\+?=.*(=>[ \t]*true|return[ \t]+true)`, {"cs", "fs", "vb"}],
	[["noophostnameverifier"], `NoopHostnameVerifier`, jvm],
	[["allow_all_hostname_verifier"], `ALLOW_ALL_HOSTNAME_VERIFIER`, jvm],
	[["trustallstrategy"], `TrustAllStrategy`, jvm],
	# Go, and the same setting in YAML and JSON configuration (insecureSkipVerify, insecure_skip_verify)
	[["skip", "verify", "true"], `(?i)insecure_?skip_?verify["']?[ \t]*:[ \t]*true`, {"*"}],
	[["verify", "ssl"], `(?i)\bverify_?ssl['"]?[ \t]*(=>|[=:])[ \t]*(false|0)\b`, {"*"}],
	[["verify_peer"], `(?i)\bverify_peer(_name)?['"]?[ \t]*(=>|[=:])[ \t]*false\b`, {"*"}],
	[["curlopt_ssl_verify"], `CURLOPT_SSL_VERIFY(PEER|HOST)[ \t]*,[ \t]*(false|FALSE|0L?)\b`, {"*"}],
	# set, not compared: `verify_mode = OpenSSL::SSL::VERIFY_NONE`, `cert_reqs=ssl.CERT_NONE`
	[["verify_none"], `(?i)verify_mode['"]?[ \t]*(=>|=|:)[ \t]*[A-Za-z:.]*VERIFY_NONE|SSL_CTX_set_verify\([^,]*,[ \t]*SSL_VERIFY_NONE`, {"*"}],
	[["cert_none"], `(verify_mode|cert_reqs)['"]?[ \t]*(=>|=|:)[ \t]*[A-Za-z.]*CERT_NONE`, {"*"}],
	[["sslverify"], `(?i)sslverify[ \t]*[=:]?[ \t]*["']?(false|0)\b`, {"*"}],
	[["git_ssl_no_verify"], `GIT_SSL_NO_VERIFY['"]?[ \t]*[=:][ \t]*['"]?(1|true)\b`, {"*"}],
	# an option key or an assignment, not the tail of a ternary (`x.rejectUnauthorized : false`)
	[["rejectunauthorized"], `(^[ \t]*|[{,][ \t]*)['"]?rejectUnauthorized['"]?[ \t]*:[ \t]*false|rejectUnauthorized[ \t]*=[ \t]*false`, {"*"}],
	[["reject_unauthorized"], `NODE_TLS_REJECT_UNAUTHORIZED['"]?[ \t]*[:=][ \t]*['"]?0\b`, {"*"}],
	[["strict-ssl"], `(?i)strict-ssl["']?[ \t]*[=:]?[ \t]*["']?false\b`, {"*"}],
	# a flag passed to wget, not a `case` label parsing it (`--no-check-certificate)`)
	[["no-check-certificate"], `--no-check-certificate([ \t]|$|["'])`, {"*"}],
]

py := {"py", "pyw", "ipynb"}

jvm := {"java", "kt", "scala", "groovy"}

applies(extensions, _) if "*" in extensions

applies(extensions, e) if e in extensions

# `curl -k` / `curl --insecure` (also in combined flags such as `-fsSLk`), in the files that run
# commands: scripts, Dockerfiles, Makefiles and CI or deployment YAML.
insecure_curl := `\bcurl\b[^|;&]*[ \t](--insecure|-[a-zA-Z]*k[a-zA-Z]*)([ \t]|$|["'])`

command_file(path) if lib.is_script(path)

command_file(path) if strings.any_suffix_match(lower(path), {".yml", ".yaml", ".mk", ".dockerfile"})

command_file(path) if strings.any_prefix_match(lower(lib.basename(path)), {"dockerfile", "containerfile", "makefile", "jenkinsfile", "justfile", "procfile"})

# What disables verification on the line (several patterns may match: take the first). The
# setting must not sit inside a string: usage text and messages quote flags without using them.
tls_findings(c) := {m |
	t := lower(c.text)
	e := lib.ext(c.path)
	some p in tls_patterns
	every literal in p[0] {
		contains(t, literal)
	}
	applies(p[2], e)
	some m in regex.find_n(p[1], c.text, 1)
	not lib.inside_string(c, m)
	not signature(c)
}

# A parameter's default (`def __init__(self, verify=False):`) disables nothing by itself.
signature(c) if regex.match(`^[ \t]*(async[ \t]+)?def[ \t]`, c.text)

# A client library carries out the opt-out its caller chose: the setting sits in a branch taken
# on the caller's option (`if not verify:`, `else:` after `if cert_reqs == CERT_REQUIRED:`,
# `case "skip-verify":`) or in a function named for it (`def load_ssl_context_no_verify`).
# Application code that disables verification does so unconditionally or on an unrelated
# condition (`if settings.DEBUG:`), and is still reported.
caller_opt_out(c) if {
	openers := lib.openers(c, 12)
	some i, head in openers
	regex.match(branch_head, head[1])
	every o in array.slice(openers, 0, i) {
		branch_continues(o[1], lib.indentation(head[1]))
	}
	condition := [t | some n in numbers.range(head[0], c.line - 1); t := lib.shown_text(c.path, n)]
	regex.match(opt_out_words, concat("\n", condition))
}

caller_opt_out(c) if {
	some head in lib.openers(c, 12)
	regex.match(opt_out_function, head[1])
}

# `check_hostname` on `self`: a class that is (or wraps) an SSL context declaring its own
# attribute, as urllib3's pyOpenSSL context does; code that uses a context sets it on the context.
caller_opt_out(c) if regex.match(`^[ \t]*self\.check_hostname[ \t]*=`, c.text)

branch_head := `^[ \t]*(\}[ \t]*)?(if|elif|elsif|else[ \t]+if|unless|when|case|switch|match|select)\b`

# Lines between the branch head and the setting: deeper code, or the rest of the same branch
# (`else:`, `} else {`, the `):` closing a condition written over several lines).
branch_continues(text, indent) if lib.indentation(text) > indent

branch_continues(text, _) if regex.match(`^[ \t]*((\}[ \t]*)?(else|elif|elsif|case|default|when)\b|[)\]}]+[ \t]*(:|\{|then)?[ \t]*$)`, text)

opt_out_words := `(?i)verif|cert_?reqs|hostname|insecure`

opt_out_function := `(?i)^[ \t]*(pub[ \t]+)?(async[ \t]+)?(def|func|fn|function)[ \t]+(\([^)]*\)[ \t]*)?[A-Za-z0-9_]*(no_?verify|unverified|insecure|skip_?verif)`

tls_finding(c) := m if {
	found := tls_findings(c)
	count(found) > 0
	m := sort(found)[0]
} else := m if {
	contains(lower(c.text), "curl")
	command_file(c.path)
	some m in regex.find_n(insecure_curl, c.text, 1)
}

# Every pattern needs one of these words: a cheap gate before anything else.
tls_marks := lib.marks({
	"false", "true", "=0", "= 0", ":0", ": 0", "'0'", "\"0\"", ",0", ", 0", "none",
	"unverified", "dangerous", "noophostname", "allow_all", "trustall", "curl", "no-check",
	"no_verify",
})

# Tests talking to local servers with self-signed certificates, and docs, are fine.
violation contains {"rule": "R05", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R05
	strings.replace_n(tls_marks, lower(c.text)) != lower(c.text)
	not lib.is_test_code(c)
	not lib.is_doc(c.path)
	not lib.is_data(c.path)
	not lib.is_prose(c)
	m := tls_finding(c)
	not caller_opt_out(c)
	msg := sprintf("TLS certificate verification is disabled (`%s`).", [lib.snippet(m)])
}

# --- R22 ---------------------------------------------------------------------------------------

# A hash computed, not a name that mentions one (`passwordSha1: 1`, `Md5Password(..)`,
# `"authenticationMD5Password"`): a call or constructor (`md5(`, `Sha1::new`, `MD5.Create`,
# `hashlib.sha1`, `Digest::MD5`, `md5.New`), or the algorithm named alone in a string
# (`createHash('md5')`, `getInstance("SHA-1")`).
broken_hash := concat("|", [
	`(?i)(^|[^A-Za-z0-9_])(md5|sha-?1)(sum)?[ \t]*(\(|\.|::)`,
	`(?i)\b(hashlib|digest|crypto|hashes|hash|cryptojs)(\.|::)(md5|sha1)\b`,
	"(?i)[\"'`](md5|sha-?1)[\"'`]",
	`(?i)\|[ \t]*(md5|sha1)sum\b`,
])

# Non-cryptographic generators: JavaScript, Go's math/rand, Python's random module, java.util.Random.
weak_random := `Math\.random\(\)|\brand\.(Intn|Int63n?|Int31n?|Int|Uint32|Uint64|Float64|Perm|Shuffle)\(|(^|[^.A-Za-z0-9_])random\.(random|randint|choice|choices|randrange|getrandbits|sample|shuffle)\(|\bnew Random\(`

weak_cipher := concat("|", [
	"(?i)[\"'`](des|desede|tripledes|3des|des-ede3?|rc4|arc4)([/\"'`-]|$)",
	`\b(DES|DES3|ARC4)\.new\(`,
	`\balgorithms\.(TripleDES|ARC4)\(`,
	`\bdes\.New(TripleDES)?Cipher\(|\brc4\.NewCipher\(`,
	`\bMODE_ECB\b|\bmodes\.ECB\(|\bCipherMode\.ECB\b`,
	"[\"'`][A-Za-z0-9]+/ECB/",
	"(?i)[\"'`]aes-[0-9]+-ecb[\"'`]",
	`getInstance\([ \t]*"AES"[ \t]*\)`,
])

# Cheap gates: what each finding needs, as literals, before its regex runs.
hash_marks := lib.marks({"md5", "sha1", "sha-1"})

random_marks := lib.marks({"math.random", "rand.", "random.", "new random("})

cipher_marks := lib.marks({
	"\"des\"", "'des'", "`des`", "\"des/", "'des/", "\"des-", "'des-", "`des-", "desede",
	"tripledes", "3des", "des.new", "des3.new", "rc4", "arc4", "ecb", "\"aes\")",
})

# What the hash or random value is for, on the same line.
purpose_marks := lib.marks({
	"password", "passwd", "pwd", "secret", "token", "credential", "api_key", "apikey",
	"private_key", "privatekey", "signing_key", "signingkey", "auth_key", "authkey",
	"encryption_key", "encryptionkey", "session", "nonce", "salt", "otp", "csrf", "reset_code",
	"resetcode", "verification_code", "verificationcode",
})

crypto_finding(c) := "A broken hash (MD5/SHA-1) protects a secret" if {
	t := lower(c.text)
	lib.contains_any(t, hash_marks)
	lib.contains_any(t, purpose_marks)
	not contains(t, "hmac")
	regex.match(broken_hash, lib.uncommented(c))
} else := "A non-cryptographic random generator produces a secret" if {
	t := lower(c.text)
	lib.contains_any(t, random_marks)
	lib.contains_any(t, purpose_marks)
	regex.match(weak_random, c.text)
	not contains(c.text, "SystemRandom")
	not contains(c.text, "rand.Reader")
} else := "A weak cipher or ECB mode is used" if {
	lib.contains_any(lower(c.text), cipher_marks)
	regex.match(weak_cipher, c.text)
}

violation contains {"rule": "R22", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R22
	not lib.is_prose(c)
	not c.test
	finding := crypto_finding(c)
	not lib.is_non_production(c.path)
	msg := sprintf("%s: `%s`.", [finding, lib.snippet(c.text)])
}
