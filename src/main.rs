//! The `tollgate` command: parses arguments, calls the library, maps results to exit codes.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tollgate::app::{Application, Role, RuntimeOptions};
use tollgate::check::{self, CheckRequest, DiffSource, PackMode};
use tollgate::config::{AppSettings, LogFormat};
use tollgate::outbound::Trust;
use tollgate::report::{self, Evaluation, ReportInput, SarifOptions, Surface};
use tollgate::setup::{self, SetupOptions, SetupServer};
use tollgate::{store, telemetry};

#[derive(Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Scores pull requests against Rego policies"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the policy pack on a local change. Exit 0 on pass, 1 on fail, 2 on error.
    Check(CheckArgs),
    /// Run a policy pack's tests: `test_*` rules of its `*_test.rego` files and the fixture
    /// changes in DIR/tests/. Exit 0 when all pass, 1 on a failure, 2 on error.
    Test(TestArgs),
    /// Run the GitHub App: webhook server and background workers.
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate,
    /// Register the GitHub App through GitHub's app-manifest flow and write its credentials
    /// to .env.
    Setup(SetupArgs),
    /// Write the rule runbooks generated from policies/rules.yaml.
    Runbooks(RunbooksArgs),
}

#[derive(Args)]
struct TestArgs {
    /// The pack directory (`*.rego`, `*_test.rego`, `rules.yaml`, `tests/`).
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Test the directory's pack alone, not over the built-in pack.
    #[arg(long)]
    replace_pack: bool,
    #[arg(long, value_enum, default_value_t = TestFormat::Text)]
    format: TestFormat,
    /// Fail when the Rego line coverage of the pack's own files is under N percent.
    #[arg(long, value_name = "N", value_parser = parse_percent)]
    threshold: Option<f64>,
}

#[derive(Clone, Copy, ValueEnum)]
enum TestFormat {
    Text,
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

fn parse_seconds(raw: &str) -> Result<std::time::Duration, String> {
    match raw.parse::<f64>() {
        Ok(s) if (0.01..=600.0).contains(&s) => Ok(std::time::Duration::from_secs_f64(s)),
        _ => Err(format!("{raw:?}: expected seconds from 0.01 to 600")),
    }
}

fn parse_percent(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(n) if (0.0..=100.0).contains(&n) => Ok(n),
        _ => Err(format!("{raw:?}: expected a percentage from 0 to 100")),
    }
}

#[derive(Args)]
struct RunbooksArgs {
    /// The runbooks directory; pages go to DIR/rules/.
    #[arg(long, value_name = "DIR", default_value = "docs/runbooks")]
    out: PathBuf,
    /// Write nothing; exit 1 when a page is missing or stale.
    #[arg(long)]
    check: bool,
}

#[derive(Args)]
struct CheckArgs {
    /// A unified diff to evaluate (`-` reads standard input).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "base",
        required_unless_present = "base"
    )]
    diff: Option<PathBuf>,
    /// Evaluate `git diff REF...HEAD` of the current git checkout.
    #[arg(long, value_name = "REF")]
    base: Option<String>,
    /// Pull request title (checked by R20).
    #[arg(long)]
    title: Option<String>,
    /// Pull request description (checked by R20).
    #[arg(long)]
    body: Option<String>,
    /// Repository config file (the format of `.github/tollgate.yml`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A directory of extra policies (`*.rego` and an optional `rules.yaml`) that extends the
    /// built-in pack.
    #[arg(long, value_name = "DIR")]
    policies: Option<PathBuf>,
    /// Use only the `--policies` directory, not the built-in pack.
    #[arg(long, requires = "policies")]
    replace_pack: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Stop the pack when it runs longer than this on the change (a runaway rule): exit 2.
    #[arg(
        long,
        value_name = "SECONDS",
        env = "POLICY_TIME_LIMIT_SECONDS",
        default_value = "10",
        value_parser = parse_seconds
    )]
    time_limit: std::time::Duration,
    /// Where the rule runbooks (`docs/runbooks/rules/`) are published: SARIF rules link to
    /// URL/<ID>.md.
    #[arg(long, value_name = "URL", env = "TOLLGATE_RUNBOOK_URL", value_parser = parse_web_url)]
    runbook_url: Option<url::Url>,
}

fn parse_web_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(format!(
            "{raw:?}: expected an http or https URL, not {other}:"
        )),
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Readable, coloured on a terminal.
    Text,
    /// The pull-request comment.
    Markdown,
    /// Machine-readable: score, verdict, threshold, counts, violations.
    Json,
    /// SARIF 2.1.0, the format of GitHub code scanning.
    Sarif,
}

#[derive(Args)]
struct ServeArgs {
    /// Run the web server, the workers, or both.
    #[arg(long, value_enum, default_value_t = Role::All)]
    role: Role,
    /// Do not apply migrations at start-up.
    #[arg(long)]
    no_migrate: bool,
    /// Concurrent jobs per process.
    #[arg(long, default_value_t = 4)]
    workers: usize,
}

#[derive(Args)]
struct SetupArgs {
    /// Where GitHub will send webhooks: https://YOUR-HOST/api/github/webhooks.
    #[arg(long, value_name = "URL")]
    webhook_url: String,
    /// Port of the local setup page (on 127.0.0.1).
    #[arg(long, default_value_t = 3333)]
    port: u16,
    /// Register the app for this organization instead of your own account.
    #[arg(long, value_name = "LOGIN")]
    org: Option<String>,
    /// A GitHub Enterprise Server's address, https://HOST: sets --github-web-url to it and
    /// --github-api-url to https://HOST/api/v3.
    #[arg(long, value_name = "URL", conflicts_with_all = ["github_web_url", "github_api_url"])]
    github_url: Option<String>,
    /// GitHub's web address (a GitHub Enterprise Server's https://HOST).
    #[arg(long, env = "GITHUB_WEB_URL", default_value = "https://github.com")]
    github_web_url: String,
    /// GitHub's API address (a GitHub Enterprise Server's https://HOST/api/v3).
    #[arg(long, env = "GITHUB_API_URL", default_value = "https://api.github.com")]
    github_api_url: String,
    /// The app manifest (YAML); the one built into Tollgate by default.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Where to write the credentials.
    #[arg(long, default_value = ".env")]
    env_file: PathBuf,
    /// Replace an existing env file.
    #[arg(long)]
    force: bool,
    /// A PEM file of extra root certificates to trust (a GitHub Enterprise Server with an
    /// internal certificate authority).
    #[arg(long, value_name = "FILE", env = "GITHUB_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(args),
        Command::Test(args) => run_tests(args),
        Command::Serve(args) => run_async(serve(args)),
        Command::Migrate => run_async(migrate()),
        Command::Setup(args) => run_async(setup(args)),
        Command::Runbooks(args) => run_runbooks(args),
    }
}

fn run_runbooks(args: RunbooksArgs) -> ExitCode {
    use tollgate::operations::runbooks;
    let pages = match runbooks::default_pages() {
        Ok(pages) => pages,
        Err(error) => {
            eprintln!("tollgate: {error}");
            return ExitCode::from(2);
        }
    };
    if args.check {
        let stale = runbooks::stale_pages(&args.out, &pages);
        for path in &stale {
            eprintln!("stale: {} (run `tollgate runbooks`)", path.display());
        }
        return if stale.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    match runbooks::write_pages(&args.out, &pages) {
        Ok(written) => {
            for path in written {
                println!("wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("tollgate: {error}");
            ExitCode::from(2)
        }
    }
}

fn run_check(args: CheckArgs) -> ExitCode {
    let source = match (args.diff, args.base) {
        (Some(path), _) => DiffSource::File(path),
        (None, Some(base)) => DiffSource::GitBase(base),
        (None, None) => unreachable!("clap requires --diff or --base"),
    };
    let request = CheckRequest {
        source,
        title: args.title,
        body: args.body,
        config: args.config,
        policies: args.policies,
        pack_mode: if args.replace_pack {
            PackMode::Replace
        } else {
            PackMode::Extend
        },
        time_limit: args.time_limit,
    };
    let outcome = match check::run(&request) {
        Ok(outcome) => outcome,
        Err(error) => {
            eprintln!("tollgate: {error}");
            return ExitCode::from(2);
        }
    };
    let overrides = Default::default();
    let evaluation = Evaluation::new(
        outcome.engine.catalog(),
        &outcome.findings,
        &overrides,
        outcome.verdict.threshold(),
        outcome.engine.digest(),
    );
    let output = match args.format {
        Format::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            Ok(report::render_text(
                &ReportInput::Evaluated(evaluation),
                color,
            ))
        }
        Format::Markdown => Ok(report::render_markdown(
            &ReportInput::Evaluated(evaluation),
            Surface::Comment,
        )),
        Format::Json => serde_json::to_string_pretty(&report::render_json(&evaluation)),
        Format::Sarif => {
            let options = SarifOptions {
                runbook_url: args.runbook_url,
            };
            serde_json::to_string_pretty(&report::render_sarif(&evaluation, &options))
        }
    };
    let output = match output {
        Ok(output) => output,
        Err(error) => {
            eprintln!("tollgate: {error}");
            return ExitCode::from(2);
        }
    };
    println!("{}", output.trim_end());
    if outcome.verdict.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_tests(args: TestArgs) -> ExitCode {
    use tollgate::policy_tests;
    let mode = if args.replace_pack {
        PackMode::Replace
    } else {
        PackMode::Extend
    };
    let run = match policy_tests::run(&args.dir, mode, args.threshold) {
        Ok(run) => run,
        Err(error) => {
            eprintln!("tollgate: {error}");
            return ExitCode::from(2);
        }
    };
    let output = match args.format {
        TestFormat::Text => Ok(policy_tests::render_text(&run)),
        TestFormat::Json => serde_json::to_string_pretty(&run),
        TestFormat::Junit => Ok(policy_tests::render_junit(&run)),
    };
    match output {
        Ok(output) => println!("{}", output.trim_end()),
        Err(error) => {
            eprintln!("tollgate: {error}");
            return ExitCode::from(2);
        }
    }
    if run.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn run_async(job: impl Future<Output = Result<(), String>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tollgate: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(job) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("tollgate: {message}");
            ExitCode::from(2)
        }
    }
}

fn load_dotenv() {
    // A missing .env file is normal; the environment alone is enough.
    let _ = dotenvy::dotenv();
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    load_dotenv();
    let settings = AppSettings::from_env().map_err(|e| e.to_string())?;
    telemetry::init(settings.log_format);
    let options = RuntimeOptions {
        role: args.role,
        migrate: !args.no_migrate,
        workers: args.workers,
        ..RuntimeOptions::default()
    };
    let app = Application::build(&settings, options)
        .await
        .map_err(|e| e.to_string())?;
    app.run_until_stopped().await;
    Ok(())
}

async fn setup(args: SetupArgs) -> Result<(), String> {
    telemetry::init(LogFormat::Pretty);
    let manifest_yaml = match &args.manifest {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?,
        None => setup::DEFAULT_MANIFEST.to_owned(),
    };
    let (github_web_url, github_api_url) = match &args.github_url {
        Some(host) => {
            let host = host.trim_end_matches('/');
            (host.to_owned(), format!("{host}/api/v3"))
        }
        None => (args.github_web_url, args.github_api_url),
    };
    let options = SetupOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], args.port)),
        webhook_url: args.webhook_url,
        org: args.org,
        github_web_url,
        github_api_url,
        manifest_yaml,
        env_file: args.env_file,
        force: args.force,
        trust: match &args.ca_bundle {
            Some(path) => Trust::with_bundle(path).map_err(|e| format!("GITHUB_CA_BUNDLE: {e}"))?,
            None => Trust::system(),
        },
    };
    let server = SetupServer::start(options.clone())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "Open {} in a browser to create the GitHub App.",
        server.url()
    );
    let app = server.wait().await.map_err(|e| e.to_string())?;
    println!(
        "Created the GitHub App {} (id {}); its credentials are in {}.",
        app.slug,
        app.id,
        options.env_file.display()
    );
    println!(
        "Install it: {}/installations/new, add DATABASE_URL to {} and run `tollgate serve`.",
        app.html_url,
        options.env_file.display()
    );
    Ok(())
}

async fn migrate() -> Result<(), String> {
    load_dotenv();
    telemetry::init(LogFormat::Pretty);
    let url = tollgate::config::database_url(&|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let pool = store::connect(url.expose())
        .await
        .map_err(|e| format!("database: {e}"))?;
    store::migrate(&pool)
        .await
        .map_err(|e| format!("migrations: {e}"))?;
    tracing::info!("migrations applied");
    Ok(())
}
