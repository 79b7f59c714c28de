//! The default policy pack, rule by rule: for every rule, changes it must flag (rule, path and
//! line asserted) and near misses it must leave alone. Then repository config (disable, re-tier,
//! tune), a clean realistic change, a custom policy pack, and how a broken policy is reported.

use std::collections::BTreeSet;
use std::sync::OnceLock;
use tollgate::config::{RepoConfig, RepoConfigFile};
use tollgate::diff::{Diff, FileChange, FileStatus, HunkStart, Line};
use tollgate::domain::{Tier, Violation};
use tollgate::policy::{ChangeContext, PolicyEngine, PolicyPack};

// --- harness ------------------------------------------------------------------------------------

fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let pack = PolicyPack::default_pack().expect("the default pack loads");
        PolicyEngine::load(&pack).expect("the default pack compiles")
    })
}

fn defaults() -> RepoConfig {
    RepoConfig::defaults(engine().catalog())
}

fn config(yaml: &str) -> RepoConfig {
    let file = RepoConfigFile::parse(yaml).expect("valid config");
    RepoConfig::resolve(&file, engine().catalog()).expect("config resolves")
}

fn lines(first: u32, text: &str) -> Vec<Line> {
    text.lines()
        .zip(first..)
        .map(|(text, number)| Line {
            number,
            text: text.to_owned(),
        })
        .collect()
}

fn change(status: FileStatus, path: &str) -> FileChange {
    let (old_path, new_path) = match status {
        FileStatus::Added => (None, Some(path.to_owned())),
        FileStatus::Deleted => (Some(path.to_owned()), None),
        _ => (Some(path.to_owned()), Some(path.to_owned())),
    };
    FileChange::new(status, old_path, new_path)
}

/// A new file whose lines are all added, numbered from 1.
fn added(path: &str, text: &str) -> FileChange {
    change(FileStatus::Added, path).adding(1, text)
}

/// A modified file gaining `text` from line `first` on.
fn modified(path: &str, first: u32, text: &str) -> FileChange {
    change(FileStatus::Modified, path).adding(first, text)
}

/// A deleted file.
fn deleted(path: &str, text: &str) -> FileChange {
    change(FileStatus::Deleted, path).removing(1, text)
}

/// A binary file without a patch.
fn binary(status: FileStatus, path: &str) -> FileChange {
    let mut file = change(status, path);
    file.binary = true;
    file.patch_available = false;
    file
}

trait Edit {
    fn adding(self, first: u32, text: &str) -> Self;
    fn removing(self, first: u32, text: &str) -> Self;
    fn without_final_newline(self) -> Self;
    /// Unchanged lines shown around the change, from line `first` on.
    fn showing(self, first: u32, text: &str) -> Self;
    /// A hunk starting at `line` under git's section line `section` (`@@ … @@ mod tests {`).
    fn hunk(self, line: u32, section: &str) -> Self;
}

impl Edit for FileChange {
    fn adding(mut self, first: u32, text: &str) -> Self {
        let new = lines(first, text);
        self.additions += new.len() as u32;
        self.added.extend(new);
        self
    }

    fn removing(mut self, first: u32, text: &str) -> Self {
        let old = lines(first, text);
        self.deletions += old.len() as u32;
        self.removed.extend(old);
        self
    }

    fn without_final_newline(mut self) -> Self {
        self.new_missing_final_newline = true;
        self
    }

    fn showing(mut self, first: u32, text: &str) -> Self {
        self.context.extend(lines(first, text));
        self
    }

    fn hunk(mut self, line: u32, section: &str) -> Self {
        self.hunks.push(HunkStart {
            line,
            section: section.to_owned(),
        });
        self
    }
}

fn evaluate(
    files: Vec<FileChange>,
    context: &ChangeContext,
    config: &RepoConfig,
) -> Vec<Violation> {
    engine()
        .evaluate(&Diff { files }, context, config)
        .expect("the pack evaluates")
        .violations
}

fn pr(title: &str, body: &str) -> ChangeContext {
    let mut context = ChangeContext::default();
    context.pull_request.number = Some(42);
    context.pull_request.title = title.to_owned();
    context.pull_request.body = body.to_owned();
    context
}

/// Where a violation points: path and line, both optional.
type Location = (Option<&'static str>, Option<u32>);

const PR_LEVEL: Location = (None, None);

fn at(path: &'static str, line: u32) -> Location {
    (Some(path), Some(line))
}

fn file_level(path: &'static str) -> Location {
    (Some(path), None)
}

/// One change and what one rule must report for it (nothing, for a near miss).
struct Case {
    rule: &'static str,
    about: &'static str,
    files: Vec<FileChange>,
    context: ChangeContext,
    expect: Vec<Location>,
}

fn flags(
    rule: &'static str,
    about: &'static str,
    files: Vec<FileChange>,
    expect: Vec<Location>,
) -> Case {
    assert!(
        !expect.is_empty(),
        "{about}: a positive case needs locations"
    );
    Case {
        rule,
        about,
        files,
        context: ChangeContext::default(),
        expect,
    }
}

fn silent(rule: &'static str, about: &'static str, files: Vec<FileChange>) -> Case {
    Case {
        rule,
        about,
        files,
        context: ChangeContext::default(),
        expect: Vec::new(),
    }
}

impl Case {
    fn with_context(mut self, context: ChangeContext) -> Self {
        self.context = context;
        self
    }

    /// The locations this case's rule reports, sorted.
    fn found(&self) -> Vec<(Option<String>, Option<u32>)> {
        let mut found: Vec<_> = evaluate(self.files.clone(), &self.context, &defaults())
            .into_iter()
            .filter(|v| v.rule_id.as_str() == self.rule)
            .map(|v| (v.path, v.line))
            .collect();
        found.sort();
        found
    }

    fn expected(&self) -> Vec<(Option<String>, Option<u32>)> {
        let mut expected: Vec<_> = self
            .expect
            .iter()
            .map(|(path, line)| (path.map(str::to_owned), *line))
            .collect();
        expected.sort();
        expected
    }
}

/// Runs every case and reports all mismatches at once.
#[track_caller]
fn check(cases: Vec<Case>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let (found, expected) = (case.found(), case.expected());
            (found != expected).then(|| {
                format!(
                    "{} {}:\n    expected {expected:?}\n    found    {found:?}",
                    case.rule, case.about
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

// --- BLOCK rules --------------------------------------------------------------------------------

/// Joins a token's parts, so that this file does not itself hold real-format tokens that secret
/// scanners (Tollgate included) would report.
fn token(parts: &[&str]) -> String {
    parts.concat()
}

fn r01() -> Vec<Case> {
    let aws = token(&["AKIA", "Z7Q3LKQ4WTRDRXNM"]);
    let github = token(&["ghp_", "R7d2Kx9QmW4tZ8vL1nB5cY3hJ6gF0sA2pE4u"]);
    let slack = token(&[
        "https://hooks.slack.com/services/",
        "T024BE7LD/B01ABCDEF12/q8W3e5R7t9Y1u3I5o7P9a1S3",
    ]);
    let stripe = token(&["sk_live_", "51HxQ2vKp8mN3bR7tY6wZ9aC4dE"]);
    let slack_bot = token(&["xoxb-", "17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"]);
    vec![
        flags(
            "R01",
            "Slack bot token in an environment file",
            vec![added(
                "deploy/.env.production",
                &format!("SLACK_BOT_TOKEN={slack_bot}"),
            )],
            vec![at("deploy/.env.production", 1)],
        ),
        silent(
            "R01",
            "Slack token placeholders in examples and tests",
            vec![added(
                "deploy/env.example",
                "SLACK_BOT_TOKEN=xoxb-replace-with-the-bot-token\nTOKEN = \"xoxb-test-token\"",
            )],
        ),
        flags(
            "R01",
            "AWS access key id in Python settings",
            vec![modified(
                "app/settings.py",
                12,
                &format!("AWS_REGION = \"eu-west-1\"\nAWS_ACCESS_KEY_ID = \"{aws}\""),
            )],
            vec![at("app/settings.py", 13)],
        ),
        flags(
            "R01",
            "real-format GitHub token, even in a test fixture",
            vec![added(
                "tests/fixtures/github.json",
                &format!("{{\n  \"login\": \"octocat\",\n  \"token\": \"{github}\"\n}}"),
            )],
            vec![at("tests/fixtures/github.json", 3)],
        ),
        flags(
            "R01",
            "Slack webhook URL and Stripe live key in a script",
            vec![added(
                "scripts/notify.sh",
                &format!("#!/bin/sh\ncurl -X POST {slack}\nexport STRIPE_KEY={stripe}"),
            )],
            vec![at("scripts/notify.sh", 2), at("scripts/notify.sh", 3)],
        ),
        flags(
            "R01",
            "literal credentials in code and in a YAML config",
            vec![
                modified(
                    "src/client.rs",
                    8,
                    "const API_KEY: &str = \"9f8a7b6c5d4e3f2a1b0c\";",
                ),
                modified(
                    "deploy/values.yaml",
                    4,
                    "database:\n  db_password: Tr0ub4dor3x9",
                ),
                added(
                    "web/config.js",
                    "export default {\n  clientSecret: 'Zk82-hQ1x-99Pm',\n};",
                ),
            ],
            vec![
                at("src/client.rs", 8),
                at("deploy/values.yaml", 5),
                at("web/config.js", 2),
            ],
        ),
        silent(
            "R01",
            "AWS's documentation example key and Slack's placeholder webhook",
            vec![modified(
                "app/settings.py",
                3,
                "AWS_ACCESS_KEY_ID = \"AKIAIOSFODNN7EXAMPLE\"\nWEBHOOK = \"https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\"",
            )],
        ),
        silent(
            "R01",
            "environment lookups, placeholders and descriptive keys",
            vec![modified(
                "app/db.py",
                1,
                "password = os.environ[\"DB_PASSWORD\"]\npassword = \"changeme\"\nsecret = \"${APP_SECRET}\"\napi_key_header = \"X-Api-Key-2\"\npassword_env = \"DB_PASSWORD\"\nif password == \"hunter2hunter2\":\napi_key = \"<your-api-key>\"",
            )],
        ),
        silent(
            "R01",
            "literal passwords in docs and tests",
            vec![
                added(
                    "README.md",
                    "Log in with:\n\n    password: \"hunter2hunter2\"\n",
                ),
                added(
                    "tests/test_login.py",
                    "def test_login(client):\n    client.login(password=\"s3cret-pass-99\")",
                ),
            ],
        ),
        silent(
            "R01",
            "a translation file naming the password field",
            vec![added(
                "locales/de.json",
                "{\n  \"password\": \"Passwort\",\n  \"password_confirmation\": \"Passwort-bestätigen\"\n}",
            )],
        ),
    ]
}

const RSA_BODY: &str = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun";

fn r02() -> Vec<Case> {
    vec![
        flags(
            "R02",
            "PEM key file",
            vec![added(
                "config/server.key",
                &format!(
                    "-----BEGIN RSA PRIVATE KEY-----\n{RSA_BODY}\n{RSA_BODY}\n-----END RSA PRIVATE KEY-----"
                ),
            )],
            vec![at("config/server.key", 1)],
        ),
        flags(
            "R02",
            "key inlined in a string literal, with \\n escapes",
            vec![modified(
                "src/tls.rs",
                5,
                &format!(
                    "const KEY: &str = \"-----BEGIN PRIVATE KEY-----\\n{RSA_BODY}\\n-----END PRIVATE KEY-----\";"
                ),
            )],
            vec![at("src/tls.rs", 5)],
        ),
        flags(
            "R02",
            "SSH key file without a patch",
            vec![binary(FileStatus::Added, "deploy/id_ed25519")],
            vec![file_level("deploy/id_ed25519")],
        ),
        silent(
            "R02",
            "a header without key data, in docs and in detection code",
            vec![
                added(
                    "docs/ssh.md",
                    "Your key starts with\n\n    -----BEGIN OPENSSH PRIVATE KEY-----\n    ...\n",
                ),
                modified(
                    "src/scan.py",
                    4,
                    "if line.startswith(\"-----BEGIN RSA PRIVATE KEY-----\"):\n    found.append(path)",
                ),
            ],
        ),
        silent(
            "R02",
            "certificates and public keys",
            vec![
                added(
                    "certs/ca.pem",
                    &format!("-----BEGIN CERTIFICATE-----\n{RSA_BODY}\n-----END CERTIFICATE-----"),
                ),
                added(
                    "keys/id_rsa.pub",
                    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 me@host",
                ),
                deleted("deploy/id_rsa", "-----BEGIN RSA PRIVATE KEY-----"),
            ],
        ),
    ]
}

fn r03() -> Vec<Case> {
    vec![
        flags(
            "R03",
            ".env file and a Java keystore",
            vec![
                added(".env", "DEBUG=true\nPORT=8080"),
                binary(FileStatus::Added, "config/release.jks"),
            ],
            vec![file_level(".env"), file_level("config/release.jks")],
        ),
        flags(
            "R03",
            ".npmrc with an auth token",
            vec![modified(
                ".npmrc",
                2,
                &token(&[
                    "//registry.npmjs.org/:_authToken=",
                    "npm_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
                ]),
            )],
            vec![at(".npmrc", 2)],
        ),
        flags(
            "R03",
            "credentials.json and .env.production",
            vec![
                added("gcp/credentials.json", "{}"),
                modified("web/.env.production", 3, "API_URL=https://api.example.com"),
            ],
            vec![
                file_level("gcp/credentials.json"),
                file_level("web/.env.production"),
            ],
        ),
        silent(
            "R03",
            "templates of .env files",
            vec![
                added(
                    ".env.example",
                    "DATABASE_URL=postgres://user:password@localhost/app",
                ),
                added("web/.env.local.sample", "API_URL="),
                added(".env.template", "SECRET_KEY="),
            ],
        ),
        silent(
            "R03",
            "a token taken from the environment, a deleted .env, test fixtures",
            vec![
                modified(
                    ".npmrc",
                    1,
                    "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\nstrict-peer-dependencies=false",
                ),
                deleted(".env", "SECRET=1"),
                added("tests/fixtures/app/.env", "SECRET=not-a-secret"),
                binary(FileStatus::Added, "android/app/debug.keystore"),
            ],
        ),
    ]
}

fn r04() -> Vec<Case> {
    vec![
        flags(
            "R04",
            "a whole conflict block",
            vec![modified(
                "src/lib.rs",
                10,
                "<<<<<<< HEAD\nlet a = 1;\n=======\nlet a = 2;\n>>>>>>> feature/login",
            )],
            // once_per_file: the markers of one file fold into the first
            vec![at("src/lib.rs", 10)],
        ),
        flags(
            "R04",
            "a stray end marker and a diff3 base marker",
            vec![
                modified("docs/guide.md", 40, "Install it.\n>>>>>>> main"),
                modified("src/a.py", 7, "||||||| merged common ancestors"),
            ],
            vec![at("docs/guide.md", 41), at("src/a.py", 7)],
        ),
        silent(
            "R04",
            "reStructuredText and Markdown headings",
            vec![
                added("docs/index.rst", "Tollgat\n=======\n\nIntro."),
                added("NOTES.md", "Changes\n=======\n"),
            ],
        ),
        silent(
            "R04",
            "arrows and banners that are not markers",
            vec![modified(
                "src/shift.c",
                3,
                "x = y <<<<<<< 2;\n# ======= section =======\n<<<<<<<< HEAD",
            )],
        ),
    ]
}

fn r05() -> Vec<Case> {
    vec![
        flags(
            "R05",
            "Python requests and Go tls.Config",
            vec![
                modified("app/client.py", 7, "resp = requests.get(url, verify=False)"),
                modified(
                    "pkg/http/client.go",
                    20,
                    "TLSClientConfig: &tls.Config{InsecureSkipVerify: true},",
                ),
                modified(
                    "deploy/traefik.yaml",
                    12,
                    "serversTransport:\n  insecureSkipVerify: true",
                ),
            ],
            vec![
                at("app/client.py", 7),
                at("pkg/http/client.go", 20),
                at("deploy/traefik.yaml", 13),
            ],
        ),
        flags(
            "R05",
            "reqwest, Node and curl -k in a script",
            vec![
                modified(
                    "src/fetch.rs",
                    3,
                    "let client = reqwest::Client::builder()\n    .danger_accept_invalid_certs(true)",
                ),
                modified(
                    "server/index.js",
                    1,
                    "process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';\nconst agent = new https.Agent({ rejectUnauthorized: false });",
                ),
                added(
                    "scripts/install.sh",
                    "#!/bin/sh\nset -e\ncurl -fsSLk https://example.com/tool.tar.gz -o tool.tar.gz",
                ),
            ],
            vec![
                at("src/fetch.rs", 4),
                at("server/index.js", 1),
                at("server/index.js", 2),
                at("scripts/install.sh", 3),
            ],
        ),
        silent(
            "R05",
            "verification on, or discussed in a comment",
            vec![modified(
                "app/client.py",
                7,
                "resp = requests.get(url, verify=True)\n# never pass verify=False here\nverify = load_ca_bundle()",
            )],
        ),
        silent(
            "R05",
            "tests, docs, and curl -k outside command files",
            vec![
                added(
                    "tests/test_client.py",
                    "def test_self_signed(server):\n    requests.get(server.url, verify=False)",
                ),
                added(
                    "docs/tls.md",
                    "Never set `InsecureSkipVerify: true` in production.",
                ),
                modified("src/help.rs", 2, "let hint = \"curl -k is insecure\";"),
            ],
        ),
        silent(
            "R05",
            "another language's call quoted in a string, policies and diff files",
            vec![
                modified(
                    "src/sample.rs",
                    2,
                    "const PY: &str = \"requests.get(url, verify=False)\";",
                ),
                added(
                    "policies/tls.rego",
                    "# flags `verify=False`\npattern := `verify=False`",
                ),
                added("examples/leaky.diff", "+requests.get(url, verify=False)"),
            ],
        ),
    ]
}

fn r06() -> Vec<Case> {
    vec![
        flags(
            "R06",
            "SQL migration dropping a table",
            vec![added(
                "migrations/0003_drop_legacy.sql",
                "-- legacy users are gone\nDROP TABLE legacy_users;\nALTER TABLE accounts DROP COLUMN nickname;",
            )],
            vec![at("migrations/0003_drop_legacy.sql", 2)],
        ),
        flags(
            "R06",
            "Rails remove_column and Alembic DELETE without WHERE",
            vec![
                added(
                    "db/migrate/20240101120000_remove_email.rb",
                    "class RemoveEmail < ActiveRecord::Migration[7.1]\n  def change\n    remove_column :users, :email, :string\n  end\nend",
                ),
                added(
                    "alembic/versions/4f2a_cleanup.py",
                    "def upgrade():\n    op.execute(\"DELETE FROM sessions\")\n\n\ndef downgrade():\n    pass",
                ),
            ],
            vec![
                at("db/migrate/20240101120000_remove_email.rb", 3),
                at("alembic/versions/4f2a_cleanup.py", 2),
            ],
        ),
        flags(
            "R06",
            "Flyway migration truncating",
            vec![added("db/sql/V7__reset.sql", "TRUNCATE TABLE audit_log;")],
            vec![at("db/sql/V7__reset.sql", 1)],
        ),
        silent(
            "R06",
            "down migrations: a rollback file and a downgrade function",
            vec![
                added("migrations/0002_users.down.sql", "DROP TABLE users;"),
                added(
                    "alembic/versions/9c1d_users.py",
                    "def upgrade():\n    op.create_table(\"users\", sa.Column(\"id\", sa.Integer))\n\n\ndef downgrade():\n    op.drop_table(\"users\")",
                ),
            ],
        ),
        silent(
            "R06",
            "scoped deletes, and DROP outside migrations",
            vec![
                added(
                    "migrations/0004_expire.sql",
                    "DELETE FROM sessions WHERE expires_at < now();\nDELETE FROM tokens\nWHERE revoked;\nDROP INDEX idx_old;",
                ),
                modified(
                    "src/cache.py",
                    3,
                    "cursor.execute(\"DROP TABLE tmp_import\")",
                ),
            ],
        ),
    ]
}

// --- OVERRIDE rules -----------------------------------------------------------------------------

fn r07() -> Vec<Case> {
    vec![
        flags(
            "R07",
            "Python f-string and Java concatenation",
            vec![
                modified(
                    "app/users.py",
                    5,
                    "cursor.execute(f\"SELECT * FROM users WHERE name = '{name}'\")",
                ),
                modified(
                    "src/main/java/app/UserDao.java",
                    12,
                    "String q = \"SELECT * FROM users WHERE id = \" + userId;",
                ),
            ],
            vec![
                at("app/users.py", 5),
                at("src/main/java/app/UserDao.java", 12),
            ],
        ),
        flags(
            "R07",
            "untagged template literal, fmt.Sprintf, format! and %",
            vec![
                modified(
                    "src/orders.ts",
                    3,
                    "await db.query(`SELECT * FROM orders WHERE id = ${req.params.id}`);",
                ),
                modified(
                    "internal/store/users.go",
                    9,
                    "q := fmt.Sprintf(\"DELETE FROM users WHERE id = %s\", id)",
                ),
                modified(
                    "src/store.rs",
                    2,
                    "let sql = format!(\"UPDATE users SET name = '{}' WHERE id = {}\", name, id);",
                ),
                modified(
                    "app/report.py",
                    8,
                    "cur.execute(\"INSERT INTO log VALUES ('%s')\" % message)",
                ),
            ],
            vec![
                at("src/orders.ts", 3),
                at("internal/store/users.go", 9),
                at("src/store.rs", 2),
                at("app/report.py", 8),
            ],
        ),
        silent(
            "R07",
            "bound parameters and tagged templates",
            vec![
                modified(
                    "app/users.py",
                    5,
                    "cursor.execute(\"SELECT * FROM users WHERE name = %s\", (name,))",
                ),
                modified(
                    "src/orders.ts",
                    3,
                    "await sql`SELECT * FROM orders WHERE id = ${id}`;\nconst q = \"SELECT * FROM t WHERE name LIKE '%foo%'\";",
                ),
                modified(
                    "internal/store/users.go",
                    9,
                    "row := db.QueryRow(\"SELECT name FROM users WHERE id = $1\", id)",
                ),
            ],
        ),
        silent(
            "R07",
            "SQL built in tests and in comments",
            vec![
                added(
                    "tests/test_users.py",
                    "def test_lookup(db):\n    db.execute(f\"SELECT * FROM users WHERE id = {uid}\")",
                ),
                modified(
                    "app/users.py",
                    1,
                    "# never do \"SELECT * FROM users WHERE id = \" + uid",
                ),
            ],
        ),
    ]
}

fn r08() -> Vec<Case> {
    vec![
        flags(
            "R08",
            "shell=True and JavaScript eval",
            vec![
                modified(
                    "app/run.py",
                    4,
                    "subprocess.run(cmd, shell=True, check=True)",
                ),
                modified("web/calc.js", 2, "const result = eval(userInput);"),
            ],
            vec![at("app/run.py", 4), at("web/calc.js", 2)],
        ),
        flags(
            "R08",
            "a shell started with -c from Rust and Go",
            vec![
                modified(
                    "src/hooks.rs",
                    10,
                    "let out = Command::new(\"sh\")\n    .arg(\"-c\")\n    .arg(&script)\n    .output()?;",
                ),
                modified(
                    "pkg/runner/run.go",
                    7,
                    "cmd := exec.Command(\"bash\", \"-c\", script)",
                ),
                modified("app/util.py", 3, "os.system(\"rm -rf \" + path)"),
            ],
            vec![
                at("src/hooks.rs", 10),
                at("pkg/runner/run.go", 7),
                at("app/util.py", 3),
            ],
        ),
        silent(
            "R08",
            "methods named eval or exec, programs run without a shell",
            vec![
                modified(
                    "app/train.py",
                    9,
                    "model.eval()\nsubprocess.run([\"git\", \"status\"], check=True)\nvalue = ast.literal_eval(text)",
                ),
                modified(
                    "src/git.rs",
                    4,
                    "let out = Command::new(\"git\").arg(\"status\").output()?;",
                ),
                modified("web/parse.js", 2, "const m = pattern.exec(line);"),
                modified("app/calc.py", 1, "def eval(self, expr):"),
            ],
        ),
        silent(
            "R08",
            "tests and comments",
            vec![
                added(
                    "tests/test_cli.py",
                    "def test_cli():\n    subprocess.run(\"tollgate --help\", shell=True)",
                ),
                modified("app/run.py", 1, "# do not use shell=True here"),
            ],
        ),
    ]
}

fn r09() -> Vec<Case> {
    vec![
        flags(
            "R09",
            "GitHub workflow changed",
            vec![modified(
                ".github/workflows/ci.yml",
                20,
                "      - run: cargo test --all",
            )],
            vec![file_level(".github/workflows/ci.yml")],
        ),
        flags(
            "R09",
            "Jenkinsfile deleted and GitLab CI added",
            vec![
                deleted("Jenkinsfile", "pipeline {}"),
                added(".gitlab-ci.yml", "test:\n  script: make test"),
            ],
            vec![file_level("Jenkinsfile"), file_level(".gitlab-ci.yml")],
        ),
        silent(
            "R09",
            "issue templates and docs about CI",
            vec![
                added(".github/ISSUE_TEMPLATE/bug.yml", "name: Bug"),
                modified("docs/ci.md", 3, "Our CI runs on GitHub Actions."),
            ],
        ),
        silent(
            "R09",
            "source code about workflows",
            vec![modified("src/workflows/engine.py", 1, "class Engine:")],
        ),
    ]
}

fn r10() -> Vec<Case> {
    vec![
        flags(
            "R10",
            "CODEOWNERS and Tollgate config",
            vec![
                modified(".github/CODEOWNERS", 3, "/src/ @acme/core"),
                modified(".github/tollgate.yml", 1, "threshold: 60"),
            ],
            vec![
                file_level(".github/CODEOWNERS"),
                file_level(".github/tollgate.yml"),
            ],
        ),
        flags(
            "R10",
            "a policy added and the rule metadata changed",
            vec![
                added("policies/acme.rego", "package tollgate.rules.acme"),
                modified("policies/rules.yaml", 5, "  tier: WARNING"),
            ],
            vec![
                file_level("policies/acme.rego"),
                file_level("policies/rules.yaml"),
            ],
        ),
        silent(
            "R10",
            "docs about code owners and the policy README",
            vec![
                added("docs/codeowners.md", "Who owns what."),
                modified("policies/README.md", 1, "# Policies"),
            ],
        ),
        silent(
            "R10",
            "ordinary source",
            vec![modified("src/policy/engine.rs", 1, "use std::fmt;")],
        ),
    ]
}

/// `n` lines of ordinary code.
fn code(n: u32) -> String {
    (0..n)
        .map(|i| format!("    total += item_{i}.price * quantity\n"))
        .collect()
}

fn r11() -> Vec<Case> {
    vec![
        flags(
            "R11",
            "a 60-line feature without tests",
            vec![modified("app/billing.py", 10, &code(60))],
            vec![PR_LEVEL],
        ),
        flags(
            "R11",
            "two files adding up past the threshold",
            vec![
                modified("internal/a.go", 1, &code(30)),
                modified("internal/b.go", 1, &code(10)).removing(1, &code(15)),
            ],
            vec![PR_LEVEL],
        ),
        silent(
            "R11",
            "a test file changed alongside",
            vec![
                modified("app/billing.py", 10, &code(60)),
                modified(
                    "tests/test_billing.py",
                    3,
                    "def test_total():\n    assert total([]) == 0",
                ),
            ],
        ),
        silent(
            "R11",
            "Rust unit tests added inline",
            vec![modified(
                "src/billing.rs",
                10,
                &format!("{}#[cfg(test)]\nmod tests {{}}", code(60)),
            )],
        ),
        silent(
            "R11",
            "below the threshold, or only docs",
            vec![
                modified("app/billing.py", 10, &code(40)),
                added("docs/guide.md", &code(500)),
            ],
        ),
    ]
}

fn r12() -> Vec<Case> {
    vec![
        flags(
            "R12",
            "Cargo and npm dependencies",
            vec![
                modified(
                    "Cargo.toml",
                    15,
                    "serde_json = \"1.0\"\ntokio = { version = \"1\", features = [\"full\"] }",
                ),
                modified("web/package.json", 12, "    \"left-pad\": \"^1.3.0\","),
            ],
            vec![
                at("Cargo.toml", 15),
                at("Cargo.toml", 16),
                at("web/package.json", 12),
            ],
        ),
        flags(
            "R12",
            "requirements.txt, go.mod, Gemfile and pom.xml",
            vec![
                modified("requirements.txt", 3, "# HTTP\nrequests==2.31.0"),
                modified("go.mod", 6, "require github.com/google/uuid v1.6.0"),
                modified("Gemfile", 4, "gem \"sidekiq\", \"~> 7.2\""),
                modified(
                    "pom.xml",
                    30,
                    "    <dependency>\n      <groupId>org.apache.commons</groupId>\n      <artifactId>commons-lang3</artifactId>\n      <version>3.14.0</version>\n    </dependency>",
                ),
            ],
            vec![
                at("requirements.txt", 4),
                at("go.mod", 6),
                at("Gemfile", 4),
                at("pom.xml", 32),
            ],
        ),
        flags(
            "R12",
            "new Python project: only the dependency section counts",
            vec![added(
                "pyproject.toml",
                "[project]\nname = \"svc\"\nversion = \"0.1.0\"\nrequires-python = \">=3.11\"\ndependencies = [\n    \"httpx>=0.27\",\n]\n\n[tool.ruff]\nline-length = 100",
            )],
            vec![at("pyproject.toml", 6)],
        ),
        silent(
            "R12",
            "version bumps",
            vec![
                modified(
                    "Cargo.toml",
                    15,
                    "serde = { version = \"1.0.200\", features = [\"derive\"] }",
                )
                .removing(
                    15,
                    "serde = { version = \"1.0.100\", features = [\"derive\"] }",
                ),
                modified("web/package.json", 12, "    \"react\": \"^18.3.1\",")
                    .removing(12, "    \"react\": \"^18.2.0\","),
                modified("go.mod", 6, "\tgolang.org/x/net v0.25.0")
                    .removing(6, "\tgolang.org/x/net v0.24.0"),
            ],
        ),
        silent(
            "R12",
            "package metadata, engines, scripts and indirect modules",
            vec![
                modified(
                    "Cargo.toml",
                    3,
                    "version = \"0.2.0\"\nedition = \"2021\"\nrust-version = \"1.80\"",
                ),
                added(
                    "tools/package.json",
                    "{\n  \"name\": \"tools\",\n  \"version\": \"1.2.0\",\n  \"engines\": {\n    \"node\": \">=18\"\n  },\n  \"scripts\": {\n    \"build\": \"tsc\"\n  }\n}",
                ),
                modified("go.mod", 9, "\tgithub.com/pkg/errors v0.9.1 // indirect"),
                modified(
                    "requirements.txt",
                    1,
                    "# pinned for reproducible builds\n-r base.txt",
                ),
            ],
        ),
        silent(
            "R12",
            "packages of the same repository",
            vec![
                added(
                    "fuzz/Cargo.toml",
                    "[dependencies]\ntollgate = { path = \"..\" }\nserde = { workspace = true }\ncore = { path = \"../core\", version = \"0.1\" }",
                ),
                modified(
                    "web/package.json",
                    7,
                    "    \"@acme/ui\": \"workspace:*\",\n    \"shared\": \"file:../shared\",",
                ),
            ],
        ),
    ]
}

fn r13() -> Vec<Case> {
    vec![
        flags(
            "R13",
            "Rust allow and unsafe",
            vec![
                modified("src/ffi.rs", 4, "#[allow(dead_code)]\nfn free_all() {}"),
                modified(
                    "src/alloc.rs",
                    1,
                    "fn free(p: *mut u8) {\n    unsafe { libc::free(p.cast()) }\n}",
                ),
            ],
            vec![at("src/ffi.rs", 4), at("src/alloc.rs", 2)],
        ),
        flags(
            "R13",
            "TypeScript, Python and Go suppressions",
            vec![
                modified("web/app.ts", 9, "// @ts-ignore\nconst x: number = load();"),
                modified("app/models.py", 1, "import os  # noqa: F401"),
                modified(
                    "pkg/api/handler.go",
                    30,
                    "\tdefer resp.Body.Close() //nolint:errcheck",
                ),
            ],
            vec![
                at("web/app.ts", 9),
                at("app/models.py", 1),
                at("pkg/api/handler.go", 30),
            ],
        ),
        silent(
            "R13",
            "suppressions in tests and generated code",
            vec![
                added(
                    "tests/helpers.rs",
                    "#![allow(dead_code)]\npub fn fixture() {}",
                ),
                modified(
                    "web/app.test.ts",
                    2,
                    "// @ts-expect-error testing bad input",
                ),
                modified("api/v1/user.pb.go", 5, "//nolint:all"),
            ],
        ),
        silent(
            "R13",
            "forbidding unsafe, and identifiers that mention it",
            vec![modified(
                "src/lib.rs",
                1,
                "#![forbid(unsafe_code)]\nlet unsafe_count = 0;\n// SAFETY: no unsafe { } needed here",
            )],
        ),
    ]
}

fn r14() -> Vec<Case> {
    vec![
        flags(
            "R14",
            "Rust ignore and Jest only",
            vec![
                modified(
                    "tests/api.rs",
                    20,
                    "#[test]\n#[ignore]\nfn slow_roundtrip() {}",
                ),
                modified("web/cart.test.ts", 8, "it.only(\"adds an item\", () => {"),
            ],
            vec![at("tests/api.rs", 21), at("web/cart.test.ts", 8)],
        ),
        flags(
            "R14",
            "pytest, JUnit and an unconditional Go skip",
            vec![
                modified(
                    "tests/test_export.py",
                    3,
                    "@pytest.mark.skip(reason=\"flaky\")\ndef test_export():",
                ),
                modified(
                    "src/test/java/app/CartTest.java",
                    11,
                    "    @Disabled\n    @Test\n    void total() {}",
                ),
                modified(
                    "pkg/store/store_test.go",
                    14,
                    "func TestMigrate(t *testing.T) {\n\tt.Skip(\"broken since the schema change\")",
                ),
            ],
            vec![
                at("tests/test_export.py", 3),
                at("src/test/java/app/CartTest.java", 11),
                at("pkg/store/store_test.go", 15),
            ],
        ),
        silent(
            "R14",
            "conditional skips",
            vec![
                modified(
                    "pkg/store/store_test.go",
                    14,
                    "\tif testing.Short() {\n\t\tt.Skip(\"slow\")\n\t}",
                ),
                modified(
                    "tests/test_gpu.py",
                    1,
                    "@pytest.mark.skipif(sys.platform == \"win32\", reason=\"posix only\")",
                ),
            ],
        ),
        silent(
            "R14",
            "iterator skip, comments and docs",
            vec![
                modified("src/parse.rs", 7, "let rest = lines.iter().skip(1);"),
                modified("web/cart.test.ts", 3, "// it.only(\"debug\", () => {"),
                added("docs/testing.md", "Use `it.only` locally, never commit it."),
            ],
        ),
    ]
}

fn r15() -> Vec<Case> {
    let big_line = "x".repeat(600_000);
    let big = format!("{big_line}\n{big_line}");
    vec![
        flags(
            "R15",
            "a binary added outside asset paths",
            vec![binary(FileStatus::Added, "bin/tool.exe")],
            vec![file_level("bin/tool.exe")],
        ),
        flags(
            "R15",
            "a text file over 1 MiB",
            vec![added("data/dump.sql", &big)],
            vec![file_level("data/dump.sql")],
        ),
        silent(
            "R15",
            "assets, images and large test data",
            vec![
                binary(FileStatus::Added, "web/assets/logo.bin"),
                binary(FileStatus::Added, "src/components/icon.png"),
                added("testdata/big.json", &big),
            ],
        ),
        silent(
            "R15",
            "binaries modified or deleted",
            vec![
                binary(FileStatus::Modified, "bin/tool.exe"),
                binary(FileStatus::Deleted, "lib/old.jar"),
            ],
        ),
    ]
}

fn r16() -> Vec<Case> {
    vec![
        flags(
            "R16",
            "unpinned and latest base images",
            vec![added(
                "Dockerfile",
                "FROM ubuntu\nRUN apt-get update\nFROM node:latest AS web",
            )],
            vec![at("Dockerfile", 1), at("Dockerfile", 3)],
        ),
        flags(
            "R16",
            "remote ADD and curl piped into a shell",
            vec![
                modified(
                    "docker/api.Dockerfile",
                    4,
                    "ADD https://example.com/tool.tgz /tmp/\nRUN curl -fsSL https://get.example.com | sh",
                ),
                modified(
                    "scripts/bootstrap.sh",
                    2,
                    "wget -qO- https://install.example.com | sudo bash",
                ),
            ],
            vec![
                at("docker/api.Dockerfile", 4),
                at("docker/api.Dockerfile", 5),
                at("scripts/bootstrap.sh", 2),
            ],
        ),
        silent(
            "R16",
            "tags, digests, scratch, build stages and build arguments",
            vec![added(
                "Dockerfile",
                "ARG BASE=debian:12\nFROM rust:1.79 AS builder\nFROM ${BASE}\nFROM --platform=linux/amd64 gcr.io/distroless/cc@sha256:4e7fd0a2b1c3\nFROM builder\nFROM scratch\nFROM localhost:5000/app:1.2",
            )],
        ),
        silent(
            "R16",
            "checksummed ADD, downloads saved to a file, other files",
            vec![
                modified(
                    "Containerfile",
                    3,
                    "ADD --checksum=sha256:24454f830cdb https://example.com/a.tgz /a.tgz\nRUN curl -fsSLo /tmp/x.sh https://example.com/x.sh && sha256sum -c x.sha",
                ),
                modified("README.md", 5, "curl -fsSL https://get.example.com | sh"),
            ],
        ),
    ]
}

// --- WARNING rules ------------------------------------------------------------------------------

fn r17() -> Vec<Case> {
    vec![
        flags(
            "R17",
            "dbg!, console.log and binding.pry",
            vec![
                modified("src/config.rs", 30, "    dbg!(&config);"),
                modified("web/src/cart.js", 5, "console.log(user)"),
                modified("app/models/user.rb", 12, "    binding.pry"),
            ],
            vec![
                at("src/config.rs", 30),
                at("web/src/cart.js", 5),
                at("app/models/user.rb", 12),
            ],
        ),
        flags(
            "R17",
            "fmt.Println in a Go library package and breakpoint()",
            vec![
                modified("internal/store/db.go", 41, "\tfmt.Println(\"rows\", rows)"),
                modified("app/api.py", 7, "    breakpoint()"),
            ],
            vec![at("internal/store/db.go", 41), at("app/api.py", 7)],
        ),
        silent(
            "R17",
            "tests, scripts and Go commands print on purpose",
            vec![
                modified("web/src/cart.test.js", 5, "console.log(result)"),
                modified("scripts/build.js", 2, "console.log('built')"),
                modified("cmd/tollgate/main.go", 20, "\tfmt.Println(version)"),
                modified(
                    "src/main/java/app/Main.java",
                    8,
                    "        System.out.println(\"usage: app <file>\");",
                ),
            ],
        ),
        silent(
            "R17",
            "kept on purpose, other log levels, commented out",
            vec![modified(
                "server/index.js",
                10,
                "// eslint-disable-next-line no-console\nconsole.log('listening on', port)\nconsole.error(err)\n// console.log(user)",
            )],
        ),
    ]
}

fn r18() -> Vec<Case> {
    vec![
        flags(
            "R18",
            "TODO and FIXME without references",
            vec![
                modified("app/sync.py", 3, "    # TODO: handle timeouts"),
                modified("src/pool.rs", 17, "        // FIXME this leaks the handle"),
            ],
            vec![at("app/sync.py", 3), at("src/pool.rs", 17)],
        ),
        flags(
            "R18",
            "HACK in a block comment and XXX in SQL",
            vec![
                modified(
                    "web/layout.ts",
                    2,
                    "/* HACK: work around a Safari layout bug */",
                ),
                modified("db/queries/report.sql", 1, "-- XXX slow on big tenants"),
            ],
            vec![at("web/layout.ts", 2), at("db/queries/report.sql", 1)],
        ),
        silent(
            "R18",
            "TODOs that reference an issue or a link",
            vec![modified(
                "src/pool.rs",
                1,
                "// TODO(#123): retry with backoff\n// FIXME JIRA-42 remove after the migration\n# TODO: see https://github.com/acme/app/issues/9\n// TODO acme/app#77",
            )],
        ),
        silent(
            "R18",
            "todo as a word, in docs and in tests",
            vec![
                modified(
                    "web/todo.js",
                    4,
                    "todoList.push(item)\nconst TODO = 'todo';",
                ),
                added("docs/roadmap.md", "# Roadmap\n\n- TODO: write the guide"),
                modified("tests/test_sync.py", 9, "    # TODO: cover retries"),
            ],
        ),
    ]
}

fn r19() -> Vec<Case> {
    vec![
        flags(
            "R19",
            "1,200 changed lines",
            vec![added("app/big.py", &code(1200))],
            vec![PR_LEVEL],
        ),
        flags(
            "R19",
            "60 files",
            (0..60)
                .map(|i| modified(&format!("src/mod_{i}.rs"), 1, "use std::fmt;"))
                .collect(),
            vec![PR_LEVEL],
        ),
        silent(
            "R19",
            "800 changed lines",
            vec![added("app/medium.py", &code(800))],
        ),
        silent(
            "R19",
            "lockfile churn does not count",
            vec![
                modified("package-lock.json", 1, &code(5000)),
                modified("src/app.ts", 1, &code(100)),
            ],
        ),
    ]
}

fn r20() -> Vec<Case> {
    let readme = || vec![modified("README.md", 3, "More words.")];
    vec![
        flags("R20", "title not conventional", readme(), vec![PR_LEVEL])
            .with_context(pr("Fix login bug", "Fixes the redirect loop after login.")),
        flags("R20", "no description", readme(), vec![PR_LEVEL])
            .with_context(pr("fix: login redirect", "  \n")),
        flags(
            "R20",
            "neither a conventional title nor a description",
            readme(),
            vec![PR_LEVEL, PR_LEVEL],
        )
        .with_context(pr("Update stuff", "<!-- Describe your change -->\n")),
        silent(
            "R20",
            "conventional title with scope, and a description",
            readme(),
        )
        .with_context(pr(
            "feat(auth)!: require OAuth login",
            "Drops password login.",
        )),
        silent("R20", "a GitHub revert", readme())
            .with_context(pr("Revert \"feat: add export\"", "This reverts #41.")),
        silent("R20", "a local diff without title or number", readme()),
    ]
}

fn r21() -> Vec<Case> {
    vec![
        flags(
            "R21",
            "private address and internal hostname",
            vec![
                modified("app/client.py", 2, "HOST = \"10.20.30.40\""),
                modified(
                    "internal/db/db.go",
                    8,
                    "dsn := \"postgres://db.prod.internal:5432/app\"",
                ),
            ],
            vec![at("app/client.py", 2), at("internal/db/db.go", 8)],
        ),
        flags(
            "R21",
            "addresses in URLs, with a port or a path",
            vec![
                modified(
                    "web/api.ts",
                    1,
                    "const res = await fetch(\"http://192.168.1.15:8080/api\");",
                ),
                modified("src/health.rs", 3, "let url = \"http://10.1.2.3/health\";"),
            ],
            vec![at("web/api.ts", 1), at("src/health.rs", 3)],
        ),
        silent(
            "R21",
            "loopback, CIDR ranges, documentation addresses, versions, user agents",
            vec![modified(
                "app/net.py",
                1,
                "BIND = \"0.0.0.0\"\nLOCAL = \"127.0.0.1\"\nPRIVATE = [\"10.0.0.0/8\", \"172.16.0.0/12\"]\nEXAMPLE = \"192.0.2.10\"\n__version__ = \"1.2.3.4\"\nUA = \"Mozilla/5.0 Chrome/120.0.0.0 Safari/537.36\"\nratio = 1.5 * 2.0\nstore = threading.local()\nTAG = \"v10.2.3.4\"\nOID = \"1.3.6.1.4.1.311\"",
            )],
        ),
        silent(
            "R21",
            "config, tests and comments",
            vec![
                modified("config/app.yaml", 4, "db_host: 10.20.30.40"),
                added(
                    "tests/test_client.py",
                    "def test_connect():\n    connect(\"10.1.2.3\")",
                ),
                modified("app/client.py", 1, "# production talks to 10.1.2.3"),
            ],
        ),
    ]
}

fn r22() -> Vec<Case> {
    vec![
        flags(
            "R22",
            "MD5 for a password and Math.random for a token",
            vec![
                modified(
                    "app/auth.py",
                    14,
                    "hashed = hashlib.md5(password.encode()).hexdigest()",
                ),
                modified(
                    "web/session.js",
                    3,
                    "const token = Math.random().toString(36).slice(2);",
                ),
            ],
            vec![at("app/auth.py", 14), at("web/session.js", 3)],
        ),
        flags(
            "R22",
            "DES and ECB",
            vec![
                modified(
                    "src/main/java/app/Crypto.java",
                    20,
                    "Cipher c = Cipher.getInstance(\"DES/CBC/PKCS5Padding\");",
                ),
                modified("app/enc.py", 5, "cipher = AES.new(key, AES.MODE_ECB)"),
            ],
            vec![at("src/main/java/app/Crypto.java", 20), at("app/enc.py", 5)],
        ),
        silent(
            "R22",
            "MD5 for caching, HMAC-SHA1 signatures, secure generators",
            vec![modified(
                "app/cache.py",
                1,
                "etag = hashlib.md5(body).hexdigest()\nsig = hmac.new(secret, body, hashlib.sha1).hexdigest()\ntoken = secrets.token_hex(16)\ncolor = random.choice(colors)\ncity = \"Des Moines\"",
            )],
        ),
        silent(
            "R22",
            "tests and docs",
            vec![
                added(
                    "tests/test_auth.py",
                    "def test_legacy():\n    assert hashlib.md5(password).hexdigest() == OLD",
                ),
                added("docs/security.md", "Never use `Math.random()` for a token."),
            ],
        ),
    ]
}

fn r23() -> Vec<Case> {
    vec![
        flags(
            "R23",
            "Cargo.lock alone",
            vec![
                modified("Cargo.lock", 100, "version = \"1.0.200\"")
                    .removing(100, "version = \"1.0.199\""),
            ],
            vec![file_level("Cargo.lock")],
        ),
        flags(
            "R23",
            "a nested lockfile with only the root manifest changed",
            vec![
                modified("web/yarn.lock", 10, "  version \"4.17.21\""),
                modified("package.json", 3, "  \"private\": true,"),
            ],
            vec![file_level("web/yarn.lock")],
        ),
        silent(
            "R23",
            "a workspace member's manifest changed with the root lockfile",
            vec![
                modified("Cargo.lock", 100, "name = \"anyhow\""),
                modified("crates/core/Cargo.toml", 12, "anyhow = \"1\""),
            ],
        ),
        silent(
            "R23",
            "lockfile with its manifest, and a deleted lockfile",
            vec![
                modified("package-lock.json", 10, "\"lodash\": {"),
                modified("package.json", 8, "    \"lodash\": \"^4.17.21\","),
                deleted("yarn.lock", "# yarn lockfile v1"),
            ],
        ),
    ]
}

fn r24() -> Vec<Case> {
    vec![
        flags(
            "R24",
            "vendored code patched by hand",
            vec![modified(
                "vendor/github.com/pkg/errors/errors.go",
                40,
                "\treturn nil // patched",
            )],
            vec![file_level("vendor/github.com/pkg/errors/errors.go")],
        ),
        flags(
            "R24",
            "protobuf output and a built bundle edited",
            vec![
                modified("api/v1/user.pb.go", 120, "\tName string // hand fix"),
                modified("dist/index.js", 1, "var x=1;"),
            ],
            vec![file_level("api/v1/user.pb.go"), file_level("dist/index.js")],
        ),
        silent(
            "R24",
            "regenerated: the .proto, the manifest or the header changed too",
            vec![
                modified("api/v1/user.pb.go", 120, "\tEmail string"),
                modified("proto/user.proto", 9, "  string email = 3;"),
                modified("vendor/golang.org/x/net/http2/frame.go", 3, "const x = 1"),
                modified("go.mod", 5, "\tgolang.org/x/net v0.25.0")
                    .removing(5, "\tgolang.org/x/net v0.24.0"),
                modified(
                    "src/schema.generated.ts",
                    1,
                    "// @generated by schema-gen 2.1. DO NOT EDIT.",
                ),
            ],
        ),
        silent(
            "R24",
            "whole files added or deleted, and generated files next to their source",
            vec![
                added("vendor/github.com/google/uuid/uuid.go", "package uuid"),
                deleted("third_party/old/lib.c", "int x;"),
                modified("lib/user.g.dart", 10, "  name: json['name'] as String,"),
                modified("lib/user.dart", 4, "  final String name;"),
            ],
        ),
    ]
}

fn r25() -> Vec<Case> {
    vec![
        flags(
            "R25",
            "a source file",
            vec![modified("src/lib.rs", 10, "}").without_final_newline()],
            vec![file_level("src/lib.rs")],
        ),
        flags(
            "R25",
            "two new files",
            vec![
                added("README.md", "# Tollgate").without_final_newline(),
                added("config/app.yaml", "port: 8080").without_final_newline(),
            ],
            vec![file_level("README.md"), file_level("config/app.yaml")],
        ),
        silent(
            "R25",
            "files ending with a newline",
            vec![modified("src/lib.rs", 10, "}")],
        ),
        silent(
            "R25",
            "binary and deleted files",
            vec![
                binary(FileStatus::Added, "assets/logo.png").without_final_newline(),
                deleted("old.txt", "bye").without_final_newline(),
            ],
        ),
    ]
}

// --- the cases, rule by rule --------------------------------------------------------------------

fn all_cases() -> Vec<Case> {
    [
        r01(),
        r02(),
        r03(),
        r04(),
        r05(),
        r06(),
        r07(),
        r08(),
        r09(),
        r10(),
        r11(),
        r12(),
        r13(),
        r14(),
        r15(),
        r16(),
        r17(),
        r18(),
        r19(),
        r20(),
        r21(),
        r22(),
        r23(),
        r24(),
        r25(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[test]
fn r01_secrets_and_tokens() {
    check(r01());
}

#[test]
fn r02_private_keys() {
    check(r02());
}

#[test]
fn r03_credential_files() {
    check(r03());
}

#[test]
fn r04_conflict_markers() {
    check(r04());
}

#[test]
fn r05_tls_verification() {
    check(r05());
}

#[test]
fn r06_destructive_migrations() {
    check(r06());
}

#[test]
fn r07_sql_from_strings() {
    check(r07());
}

#[test]
fn r08_shell_and_eval() {
    check(r08());
}

#[test]
fn r09_ci_configuration() {
    check(r09());
}

#[test]
fn r10_governance_files() {
    check(r10());
}

#[test]
fn r11_source_without_tests() {
    check(r11());
}

#[test]
fn r12_new_dependencies() {
    check(r12());
}

#[test]
fn r13_suppressions_and_unsafe() {
    check(r13());
}

#[test]
fn r14_disabled_tests() {
    check(r14());
}

#[test]
fn r15_large_and_binary_files() {
    check(r15());
}

#[test]
fn r16_container_images() {
    check(r16());
}

#[test]
fn r17_debug_statements() {
    check(r17());
}

#[test]
fn r18_todos() {
    check(r18());
}

#[test]
fn r19_pull_request_size() {
    check(r19());
}

#[test]
fn r20_title_and_description() {
    check(r20());
}

#[test]
fn r21_hard_coded_addresses() {
    check(r21());
}

#[test]
fn r22_weak_crypto() {
    check(r22());
}

#[test]
fn r23_lockfile_without_manifest() {
    check(r23());
}

#[test]
fn r24_generated_files_edited() {
    check(r24());
}

#[test]
fn r25_final_newline() {
    check(r25());
}

// --- precision: syntactic context --------------------------------------------------------------

/// One case per class of false finding (and of miss) seen on third-party code: comments,
/// docstrings and strings read as code, test blocks inside source files, and rule-specific
/// shapes. Realistic code, written for these tests.
fn precision_cases() -> Vec<Case> {
    let doc_token = token(&["gho_", "16C7e42F292c6912E7710c838347Ae178B4a"]);
    vec![
        // R01
        silent(
            "R01",
            "a local database password in stress and load test scripts",
            vec![
                added("scripts/stress-test/pool-exhaustion.js", "const knex = require('knex')({\n  client: 'pg',\n  connection: { host: 'localhost', user: 'bench', password: 'Str0ngPoolPass9' },\n});"),
                added("tools/load_test/locustfile.py", "DB = {\"user\": \"locust\", \"password\": \"l0cust-runner-pw\"}"),
            ],
        ),
        silent(
            "R01",
            "a literal password inside a Rust doc example",
            vec![added(
                "src/pool.rs",
                "/// Opens a pool.\n///\n/// ```no_run\n/// let opts = PoolOptions { user: \"app\", password: \"tr0ub4dor&3horse\" };\n/// ```\npub fn open(opts: PoolOptions) -> Pool { Pool::new(opts) }",
            )],
        ),
        silent(
            "R01",
            "an API key in a Python docstring example, in a hunk inside the docstring",
            vec![
                modified("client/api.py", 41, "        >>> c = Client(api_key=\"q8Zr2LmW0pXvTt\")")
                    .showing(40, "        Example:")
                    .showing(42, "        \"\"\"\n        self._key = api_key"),
            ],
        ),
        silent(
            "R01",
            "a match arm mapping an auth mechanism to its wire name",
            vec![modified(
                "src/auth/scram.rs",
                88,
                "            Mechanism::ScramSha256Password => \"scram_sha_256_password\",",
            )],
        ),
        silent(
            "R01",
            "command-line flags named after passwords and keys",
            vec![
                modified("tools/backup.py", 12, "FLAGS = {\"passphrase\": \"--passphrase-file\"}"),
                modified("deploy/sign.sh", 30, "SIGNING_KEY_OPT=\"--signing-key=$1\"\nPRIVATE_KEY=\"--key-file=${KEY_PATH}\""),
            ],
        ),
        silent(
            "R01",
            "GitHub's documentation token, and a password in a Rust test module",
            vec![
                added("src/oauth.ts", &format!("// As in GitHub's docs:\nexport const SAMPLE = \"{doc_token}\";")),
                modified("src/config.rs", 300, "    #[test]\n    fn parses_password() {\n        let password = \"s3cr3t-pa55\";\n    }")
                    .hunk(299, "mod tests {")
                    .showing(299, ""),
            ],
        ),
        flags(
            "R01",
            "an unquoted token exported by a shell script, and a literal getenv fallback",
            vec![
                added("ci/publish.sh", "#!/bin/sh\nexport SENTRY_AUTH_TOKEN=sntrys9f8e7d6c5b4a39f8e7d6\nsentry-cli releases new \"$VERSION\""),
                modified("app/llm.py", 9, "client = OpenAI(api_key=os.getenv(\"OPENAI_API_KEY\", \"sk-proj-4fJx9LqPzR2mT8vW\"))"),
            ],
            vec![at("ci/publish.sh", 2), at("app/llm.py", 9)],
        ),
        // R02
        flags(
            "R02",
            "a key in a doc example, its body behind `///`",
            vec![added(
                "src/tls.rs",
                &format!("/// ```\n/// let pem = \"\\\n/// -----BEGIN RSA PRIVATE KEY-----\n/// {RSA_BODY}\n/// {RSA_BODY}\n/// -----END RSA PRIVATE KEY-----\";\n/// ```\npub fn load() {{}}"),
            )],
            vec![at("src/tls.rs", 3)],
        ),
        flags(
            "R02",
            "an encrypted PEM key with Proc-Type and DEK-Info headers inline",
            vec![modified(
                "internal/certs/fixture.go",
                14,
                &format!("const legacyKey = \"-----BEGIN RSA PRIVATE KEY-----\\nProc-Type: 4,ENCRYPTED\\nDEK-Info: DES-EDE3-CBC,8E1F2F07D6E8A4C2\\n\\n{RSA_BODY}\\n-----END RSA PRIVATE KEY-----\""),
            )],
            vec![at("internal/certs/fixture.go", 14)],
        ),
        // R05
        silent(
            "R05",
            "a shell usage text and the case label that parses the flag",
            vec![added(
                "install.sh",
                "usage() {\n  echo \"  --no-check-certificate  do not verify the server (unsafe)\"\n}\nwhile [ $# -gt 0 ]; do\n  case \"$1\" in\n    -k|--no-check-certificate) INSECURE=1 ;;\n  esac\n  shift\ndone\ncat <<EOF\nPass --no-check-certificate to skip checks.\nEOF",
            )],
        ),
        silent(
            "R05",
            "plain HTTP chosen by an attribute, not verification disabled",
            vec![modified("lib/smtp_client.py", 22, "        self.ssl = False  # STARTTLS is negotiated later")],
        ),
        flags(
            "R05",
            "Guzzle's verify option and aiohttp's ssl=False",
            vec![
                modified("src/Http/ApiClient.php", 31, "        $this->client = new Client(['base_uri' => $url, 'verify' => false]);"),
                modified("app/fetch.py", 18, "    async with session.get(url, ssl=False) as resp:"),
            ],
            vec![at("src/Http/ApiClient.php", 31), at("app/fetch.py", 18)],
        ),
        silent(
            "R05",
            "client libraries carrying out their caller's opt-out: a branch on the option, a function named for it, a context class's own attribute",
            vec![
                added(
                    "elastic/transport/_ssl.py",
                    "def build_context(verify_certs, ca_certs=None):\n    ctx = ssl.create_default_context(cafile=ca_certs)\n    if (\n        not verify_certs\n        # a pinned fingerprint replaces the chain check\n        or ca_certs is None\n    ):\n        ctx.check_hostname = False\n        ctx.verify_mode = ssl.CERT_NONE\n    return ctx",
                ),
                added(
                    "src/pool/tls.py",
                    "def wrap(sock, cert_reqs):\n    if cert_reqs == ssl.CERT_REQUIRED:\n        context.verify_mode = cert_reqs\n    else:\n        context.check_hostname = False\n    return context.wrap_socket(sock)",
                ),
                added(
                    "internal/dial/options.go",
                    "func tlsFor(mode string) *tls.Config {\n\tswitch mode {\n\tcase \"verify-full\":\n\t\treturn &tls.Config{}\n\tcase \"insecure\", \"require\":\n\t\treturn &tls.Config{InsecureSkipVerify: true}\n\t}\n\treturn nil\n}",
                ),
                added(
                    "aiohttp_client/connector.py",
                    "class Connector:\n    def _unverified_session(self):\n        session = requests.Session()\n        session.verify = False\n        return session",
                ),
                added(
                    "snowflake/ssl_wrap.py",
                    "class WrappedContext:\n    def __init__(self, method):\n        self._ctx = SSL.Context(method)\n        self.check_hostname = False",
                ),
            ],
        ),
        flags(
            "R05",
            "verification disabled on an unrelated condition, in a function taking a verify flag, or after a branch on the option has ended",
            vec![
                added("app/clients.py", "def session():\n    s = requests.Session()\n    if settings.DEBUG:\n        s.verify = False\n    return s"),
                added("pkg/client/client.go", "func New(verify bool) *http.Client {\n\ttr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}\n\treturn &http.Client{Transport: tr}\n}"),
                added("app/sync.py", "def pull(verify):\n    if not verify:\n        log.warning(\"unverified\")\n    with lock:\n        session.verify = False"),
            ],
            vec![at("app/clients.py", 4), at("pkg/client/client.go", 2), at("app/sync.py", 5)],
        ),
        // R06
        silent(
            "R06",
            "a TypeScript Knex migration whose down function drops the table it creates",
            vec![added(
                "db/migrations/20240611_create_orders.ts",
                "import type { Knex } from \"knex\";\n\nexport async function up(knex: Knex): Promise<void> {\n  await knex.schema.createTable(\"orders\", (t) => {\n    t.increments(\"id\");\n  });\n}\n\nexport async function down(knex: Knex): Promise<void> {\n  await knex.schema.dropTable(\"orders\");\n}",
            )],
        ),
        silent(
            "R06",
            "an ES-module migration with `export const down = async`",
            vec![added(
                "migrations/0007_invoices.mjs",
                "export const up = async (knex) => {\n  await knex.schema.createTable('invoices', (t) => t.increments());\n};\n\nexport const down = async (knex) => {\n  await knex.schema.dropTableIfExists('invoices');\n};",
            )],
        ),
        flags(
            "R06",
            "an ES-module migration dropping a table in its up function",
            vec![added(
                "migrations/0008_cleanup.mjs",
                "export async function up(knex) {\n  await knex.schema.dropTable('legacy_sessions');\n}\n\nexport async function down() {}",
            )],
            vec![at("migrations/0008_cleanup.mjs", 2)],
        ),
        // R08
        silent(
            "R08",
            "a rule message naming eval() and a class method called exec",
            vec![added(
                "lib/rules/no-dynamic-code.js",
                "module.exports = {\n  meta: { messages: { unexpected: \"Unexpected use of eval() or new Function(): it runs arbitrary code\" } },\n};\nclass Pipeline {\n  exec(stage, options) {\n    return stage.run(options);\n  }\n  async exec2() {}\n}",
            )],
        ),
        silent(
            "R08",
            "a Ruby SSH channel exec and an eval inside =begin docs",
            vec![added(
                "lib/deploy/remote.rb",
                "=begin\nExample:\n  eval(File.read(path))\n=end\ndef uptime(session)\n  session.exec(\"uptime\")\nend",
            )],
        ),
        flags(
            "R08",
            "eval of user input after a comment that mentions it",
            vec![modified("src/calc.py", 4, "# evaluate the expression\nresult = eval(expr)  # trusted? no")],
            vec![at("src/calc.py", 5)],
        ),
        // R10
        silent(
            "R10",
            "Rego files that are test data, benchmark inputs and examples of a policy engine",
            vec![
                added("tests/kata/data/pod-exec/policy.rego", "package agent_policy\n\ndefault ExecProcessRequest := false"),
                added("benches/evaluation/test_data/policies/rbac.rego", "package rbac\n\nallow if input.user == \"admin\""),
                added("examples/server/allowed_server.rego", "package example\n\nallowed_server contains name if some name in input.servers"),
            ],
        ),
        flags(
            "R10",
            "a policy enforced on the repository, kept outside policies/",
            vec![added("security/opa/deploy.rego", "package deploy\n\ndeny contains msg if input.image == \"latest\"")],
            vec![file_level("security/opa/deploy.rego")],
        ),
        // R12
        flags(
            "R12",
            "dependencies as TOML table headers, as published crates list them",
            vec![added(
                "crates/widget/Cargo.toml",
                "[package]\nname = \"widget\"\nversion = \"0.3.1\"\n\n[dependencies.openssl-sys]\nversion = \"0.9\"\n\n[dev-dependencies.tempfile]\nversion = \"3\"\n\n[target.'cfg(unix)'.dependencies.nix]\nversion = \"0.29\"",
            )],
            vec![at("crates/widget/Cargo.toml", 5), at("crates/widget/Cargo.toml", 8), at("crates/widget/Cargo.toml", 11)],
        ),
        silent(
            "R12",
            "a table-header dependency whose version changes",
            vec![modified("Cargo.toml", 20, "[dependencies.serde]\nversion = \"1.0.210\"")
                .removing(20, "[dependencies.serde]\nversion = \"1.0.190\"")],
        ),
        // R14
        silent(
            "R14",
            "a skip under a `case` of a switch on the platform",
            vec![added(
                "fs/link_test.go",
                "func TestSymlink(t *testing.T) {\n\tswitch runtime.GOOS {\n\tcase \"plan9\", \"js\":\n\t\tt.Skipf(\"no symlinks on %s\", runtime.GOOS)\n\t}\n}",
            )],
        ),
        silent(
            "R14",
            "a skip in `except ImportError:`, and a guard two lines up with a comment between",
            vec![
                added("tests/test_lzma.py", "try:\n    import lzma\nexcept ImportError:\n    pytest.skip(\"lzma not built\", allow_module_level=True)"),
                added("store/docker_test.go", "func TestDocker(t *testing.T) {\n\tif os.Getenv(\"DOCKER_HOST\") == \"\" {\n\t\t// Needs a real daemon.\n\t\tt.Skip(\"no docker\")\n\t}\n}"),
            ],
        ),
        silent(
            "R14",
            "a skip whose guard is an unchanged line shown as context",
            vec![modified("tests/test_paths.py", 31, "        pytest.skip(\"posix paths only\")")
                .showing(30, "    if sys.platform == \"win32\":")],
        ),
        // R17
        silent(
            "R17",
            "fmt.Println in a Go package doc comment, dbg! in a Rust test module",
            vec![
                added("internal/render/doc.go", "/*\nPackage render draws tables.\n\n\tfmt.Println(render.Table(rows))\n*/\npackage render"),
                added("src/parse.rs", "pub fn parse() {}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn it_parses() {\n        dbg!(super::parse());\n    }\n}"),
            ],
        ),
        flags(
            "R17",
            "dbg! in production code next to a test module",
            vec![added("src/eval.rs", "pub fn eval() {\n    dbg!(1);\n}\n\n#[cfg(test)]\nmod tests {\n    fn t() { dbg!(2); }\n}")],
            vec![at("src/eval.rs", 2)],
        ),
        // R21
        silent(
            "R21",
            "object identifiers, an RFC anchor and a section number in a comment",
            vec![
                added("src/crypto/oids.ts", "export const OID_X25519 = '1.3.101.110';\nswitch (oid) {\n  case '2.5.4.3': return 'CN';\n}"),
                modified("src/http/status.rs", 10, "// https://www.rfc-editor.org/rfc/rfc9110#section-15.5.1.4\nlet limit = parse(buf)?; // RFC 8446 4.2.11.3"),
            ],
        ),
        silent(
            "R21",
            "an address in a docstring example and in a Rust test module",
            vec![
                added("net/lease.py", "def renew(lease):\n    \"\"\"Renew a lease.\n\n    >>> renew(Lease(router='172.16.8.1'))\n    \"\"\"\n    return lease.renew()"),
                added("src/peer.rs", "pub struct Peer;\n#[cfg(test)]\nmod tests {\n    const ADDR: &str = \"10.44.0.7:9000\";\n}"),
            ],
        ),
        flags(
            "R21",
            "an address in a string after a comment on the line",
            vec![modified("src/db.ts", 3, "const DB_HOST = \"10.12.0.5\"; // primary")],
            vec![at("src/db.ts", 3)],
        ),
        // R22
        silent(
            "R22",
            "names that mention MD5 or SHA-1 but hash nothing",
            vec![
                modified("src/users/repo.ts", 50, "const projection = { passwordMd5: 0, tokenSha1: 0 };"),
                modified("src/proto/auth.rs", 12, "    HashedMd5Password(Vec<u8>),\n    const AUTH_SHA1_PASSWORD: &str = \"authSha1PasswordRequest\";"),
                added("completions/tool.bash", "COMPREPLY=( $(compgen -W \"md5 sha1 sha256 --password-file\" -- \"$cur\") )"),
            ],
        ),
        silent(
            "R22",
            "SHA-1 in a Rust test module",
            vec![added("src/token.rs", "pub fn issue() {}\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn legacy() { let token = sha1(b\"t\"); }\n}")],
        ),
        flags(
            "R22",
            "MD5 over a password and SHA-1 over a token",
            vec![
                modified("app/auth.py", 20, "    hashed = hashlib.md5(password.encode()).hexdigest()"),
                modified("src/session.ts", 8, "const digest = crypto.createHash('sha1').update(token).digest('hex');"),
            ],
            vec![at("app/auth.py", 20), at("src/session.ts", 8)],
        ),
    ]
}

#[test]
fn precision_classes() {
    check(precision_cases());
}

#[test]
fn every_rule_has_positive_and_negative_cases_and_fires() {
    let cases = all_cases();
    let catalog: BTreeSet<String> = engine()
        .catalog()
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    assert_eq!(catalog.len(), 25);
    let mut produced = BTreeSet::new();
    for id in &catalog {
        let of_rule = || cases.iter().filter(|c| c.rule == id.as_str());
        let positive = of_rule().filter(|c| !c.expect.is_empty()).count();
        let negative = of_rule().filter(|c| c.expect.is_empty()).count();
        assert!(
            positive >= 2 && negative >= 2,
            "{id}: {positive} positive and {negative} negative cases"
        );
    }
    for case in cases.iter().filter(|c| !c.expect.is_empty()) {
        for violation in evaluate(case.files.clone(), &case.context, &defaults()) {
            produced.insert(violation.rule_id.to_string());
        }
    }
    assert_eq!(produced, catalog, "rules never produced by a positive case");
}

#[test]
fn runs_of_findings_in_one_file_fold_into_one_violation() {
    let files = vec![modified(
        "src/simd.rs",
        10,
        "unsafe fn load() {}\nunsafe fn store() {}\nunsafe impl Send for Lanes {}",
    )];
    let found = evaluate(files, &ChangeContext::default(), &defaults());
    let r13 = of_rule(&found, "R13");
    assert_eq!(r13.len(), 1, "{found:#?}");
    assert_eq!(r13[0].line, Some(10));
    assert!(
        r13[0].message.contains("2 more in this file: lines 11, 12"),
        "{}",
        r13[0].message
    );
}

// --- repository config --------------------------------------------------------------------------

fn of_rule<'a>(violations: &'a [Violation], rule: &str) -> Vec<&'a Violation> {
    violations
        .iter()
        .filter(|v| v.rule_id.as_str() == rule)
        .collect()
}

#[test]
fn a_repository_can_disable_a_rule() {
    let change = || vec![modified("src/config.rs", 30, "    dbg!(&config);")];
    let context = ChangeContext::default();
    assert_eq!(
        of_rule(&evaluate(change(), &context, &defaults()), "R17").len(),
        1
    );
    let disabled = evaluate(
        change(),
        &context,
        &config("rules:\n  R17: { enabled: false }\n"),
    );
    assert!(of_rule(&disabled, "R17").is_empty(), "{disabled:?}");
}

#[test]
fn a_repository_can_retier_a_rule() {
    let change = || vec![modified("Cargo.toml", 15, "anyhow = \"1\"")];
    let context = ChangeContext::default();
    let default = evaluate(change(), &context, &defaults());
    assert_eq!(of_rule(&default, "R12")[0].tier, Tier::Override);
    let retiered = evaluate(
        change(),
        &context,
        &config("rules:\n  R12: { tier: WARNING }\n"),
    );
    assert_eq!(of_rule(&retiered, "R12")[0].tier, Tier::Warning);
}

#[test]
fn a_repository_can_tune_parameters() {
    let change = || vec![modified("app/report.py", 1, &code(150))];
    let context = ChangeContext::default();
    let default = evaluate(change(), &context, &defaults());
    assert!(of_rule(&default, "R19").is_empty());
    assert_eq!(of_rule(&default, "R11").len(), 1);

    let tuned = evaluate(
        change(),
        &context,
        &config(
            "rules:\n  R19: { params: { max_lines: 100 } }\n  R11: { params: { min_source_lines: 200 } }\n",
        ),
    );
    let r19 = of_rule(&tuned, "R19");
    assert_eq!(r19.len(), 1);
    assert!(
        r19[0].message.contains("limits: 100 lines"),
        "{}",
        r19[0].message
    );
    assert!(of_rule(&tuned, "R11").is_empty());

    let assets = config("rules:\n  R15: { params: { allowed_paths: ['tools/'] } }\n");
    let binary_tool = || vec![binary(FileStatus::Added, "tools/protoc.exe")];
    assert_eq!(
        of_rule(&evaluate(binary_tool(), &context, &defaults()), "R15").len(),
        1
    );
    assert!(of_rule(&evaluate(binary_tool(), &context, &assets), "R15").is_empty());
}

#[test]
fn ignored_paths_are_not_evaluated() {
    let change = vec![modified(
        "vendor/lib/x.go",
        3,
        "\tfmt.Println(\"x\") // TODO: remove",
    )];
    let found = evaluate(
        change,
        &ChangeContext::default(),
        &config("ignore_paths: ['vendor/**']\n"),
    );
    assert!(found.is_empty(), "{found:?}");
}

// --- a clean change -----------------------------------------------------------------------------

/// A small, well-formed feature: code with its tests, a version bump, a changelog entry.
#[test]
fn a_clean_realistic_change_has_no_violations() {
    let files = vec![
        modified(
            "src/parser.rs",
            40,
            "/// Splits a header line such as `Content-Length: 42` into name and value.
pub fn parse_header(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once(':')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    Some((name, value.trim()))
}",
        )
        .adding(
            120,
            "#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_headers() {
        assert_eq!(parse_header(\"a: b\"), Some((\"a\", \"b\")));
        assert_eq!(parse_header(\"version: 1.2.3.4\"), Some((\"version\", \"1.2.3.4\")));
        assert_eq!(parse_header(\": b\"), None);
    }
}",
        ),
        modified("src/client.rs", 12, "    let timeout = Duration::from_secs_f64(2.5);\n    let password = settings.password.clone();")
            .removing(12, "    let timeout = Duration::from_secs(2);"),
        modified("Cargo.toml", 3, "version = \"0.3.1\"").removing(3, "version = \"0.3.0\""),
        modified("Cargo.lock", 120, "version = \"0.3.1\"").removing(120, "version = \"0.3.0\""),
        modified("CHANGELOG.md", 3, "## 0.3.1\n\n- `parse_header` trims names and values (#212).\n"),
        modified(
            "README.md",
            30,
            "Headers are parsed with `parse_header`:\n\n```rust\nlet (name, value) = parse_header(\"Accept: */*\").unwrap();\n```",
        ),
    ];
    let context = pr(
        "feat(parser): parse header lines",
        "Adds `parse_header`, used by the HTTP client. Closes #212.",
    );
    let found = evaluate(files, &context, &defaults());
    assert!(found.is_empty(), "{found:#?}");
}

// --- custom packs -------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("tollgate-policy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.0.join(name), text).expect("write policy file");
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The example of policies/README.md, loaded on top of the default pack.
#[test]
fn a_custom_pack_extends_the_default_one() {
    let dir = TempDir::new("acme");
    dir.write(
        "rules.yaml",
        "- id: ACME1
  name: Internal registry URL
  tier: OVERRIDE
  category: supply-chain
  description: An added line points at the internal package registry by its raw hostname.
  remediation: Use the `registry` alias from the shared build configuration.
  override_when: The build configuration itself is being changed.
  prefilter: [\"pkgs.acme.internal\"]
",
    );
    dir.write(
        "registry.rego",
        "package tollgate.rules.acme

import data.tollgate.lib

violation contains {\"rule\": \"ACME1\", \"path\": c.path, \"line\": c.line, \"message\": msg} if {
\tsome c in input.candidates.ACME1
\tnot lib.is_doc(c.path)
\tnot lib.is_comment(c.text)
\tmsg := sprintf(\"Raw registry URL: `%s`.\", [lib.snippet(c.text)])
}
",
    );
    let mut pack = PolicyPack::default_pack().unwrap();
    pack.add_dir(&dir.0).expect("the custom pack loads");
    let engine = PolicyEngine::load(&pack).expect("the custom pack compiles");
    let config = RepoConfig::defaults(engine.catalog());
    let files = vec![
        modified(
            "build.gradle",
            7,
            "    maven { url 'https://pkgs.acme.internal/maven' }",
        ),
        added(
            "docs/registry.md",
            "Our registry lives at https://pkgs.acme.internal.",
        ),
    ];
    let found = engine
        .evaluate(&Diff { files }, &ChangeContext::default(), &config)
        .unwrap()
        .violations;
    let acme = of_rule(&found, "ACME1");
    assert_eq!(acme.len(), 1, "{found:#?}");
    assert_eq!(
        (acme[0].path.as_deref(), acme[0].line),
        (Some("build.gradle"), Some(7))
    );
    assert_eq!(acme[0].tier, Tier::Override);
}

#[test]
fn a_broken_policy_is_reported_with_its_file_and_line() {
    let dir = TempDir::new("broken");
    dir.write(
        "broken.rego",
        "package tollgate.rules.broken

violation contains v if {
\tv := = {\"rule\": \"R04\", \"message\": \"x\"}
}
",
    );
    let mut pack = PolicyPack::default_pack().unwrap();
    pack.add_dir(&dir.0).expect("the directory is readable");
    let error = PolicyEngine::load(&pack)
        .err()
        .expect("a syntax error fails the load");
    let message = error.to_string();
    assert!(message.contains("broken.rego:4:"), "{message}");
}

// --- a golden diff, parsed ------------------------------------------------------------------------

/// A unified diff read by the real parser, evaluated by the whole pack: every finding, exactly.
#[test]
fn a_parsed_diff_yields_exactly_the_expected_violations() {
    let text = include_str!("fixtures/policy/feature.diff");
    let diff = tollgate::diff::parse_unified(text.as_bytes()).expect("the fixture parses");
    let found: Vec<(String, Option<String>, Option<u32>)> = engine()
        .evaluate(&diff, &ChangeContext::default(), &defaults())
        .expect("the pack evaluates")
        .violations
        .into_iter()
        .map(|v| (v.rule_id.to_string(), v.path, v.line))
        .collect();
    let expected: Vec<(String, Option<String>, Option<u32>)> = [
        ("R01", Some("src/api/users.py"), Some(18)),
        ("R07", Some("src/api/users.py"), Some(13)),
        ("R09", Some(".github/workflows/ci.yml"), None),
        ("R12", Some("requirements.txt"), Some(3)),
        ("R16", Some("Dockerfile"), Some(1)),
        ("R18", Some("src/api/users.py"), Some(12)),
    ]
    .into_iter()
    .map(|(rule, path, line)| (rule.to_owned(), path.map(str::to_owned), line))
    .collect();
    assert_eq!(found, expected);
}

// --- precision slice (the CI part of scripts/precision) ------------------------------------------

/// Rules about the pull request as a whole, which a fixture directory added at once trips by
/// construction.
const PR_RULES: [&str; 3] = ["R11", "R19", "R20"];

/// Every file below `dir`, as an added file named by its path relative to `dir`.
fn fixture_files(dir: &std::path::Path) -> Vec<FileChange> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<FileChange>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("fixture directory")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_none_or(|e| e != "tsv") {
                let name = path.strip_prefix(root).expect("below root");
                let text = std::fs::read_to_string(&path).expect("utf-8 fixture");
                out.push(added(&name.to_string_lossy(), &text));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}

fn line_findings(files: Vec<FileChange>) -> BTreeSet<(String, u32, String)> {
    evaluate(files, &ChangeContext::default(), &defaults())
        .into_iter()
        .filter(|v| !PR_RULES.contains(&v.rule_id.as_str()))
        .map(|v| {
            (
                v.path.unwrap_or_default(),
                v.line.unwrap_or_default(),
                v.rule_id.to_string(),
            )
        })
        .collect()
}

/// The rows of a fixture TSV file, comments and blank lines left out, split at tabs.
fn tsv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .expect("fixture TSV")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn parsed_fixture(path: &std::path::Path) -> Vec<FileChange> {
    let text = std::fs::read(path).expect("fixture diff");
    tollgate::diff::parse_unified(&text)
        .expect("fixture diff parses")
        .files
}

#[test]
fn precision_slice_realistic_code_is_clean_and_planted_violations_are_found() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/precision");
    let slice = line_findings(fixture_files(&root.join("slice")));
    assert!(slice.is_empty(), "false findings on the slice: {slice:#?}");

    // Added files, plus the changes files cannot express: edits, binary files, missing final
    // newlines. Line 0 stands for a finding about a whole file.
    let mut files = fixture_files(&root.join("planted"));
    files.extend(parsed_fixture(&root.join("planted.diff")));
    let planted = line_findings(files);
    let expected: BTreeSet<(String, u32, String)> = tsv_rows(&root.join("planted/planted.tsv"))
        .into_iter()
        .map(|row| {
            (
                row[0].clone(),
                row[1].parse().expect("line number"),
                row[2].clone(),
            )
        })
        .collect();
    assert_eq!(planted, expected);
}

#[test]
fn precision_planted_pull_requests_trip_exactly_their_pull_request_rules() {
    let root =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/precision/pulls");
    let failures: Vec<String> = tsv_rows(&root.join("pulls.tsv"))
        .into_iter()
        .filter_map(|row| {
            let files = parsed_fixture(&root.join(&row[0]));
            let found: BTreeSet<String> = evaluate(files, &pr(&row[1], &row[2]), &defaults())
                .into_iter()
                .map(|v| v.rule_id.to_string())
                .filter(|rule| PR_RULES.contains(&rule.as_str()))
                .collect();
            let expected: BTreeSet<String> = row[3].split(',').map(str::to_owned).collect();
            (found != expected)
                .then(|| format!("{}: expected {expected:?}, found {found:?}", row[0]))
        })
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
}
