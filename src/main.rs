//! The `tollgate` command: parses arguments, calls the library, maps results to exit codes.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use tollgate::check::{self, CheckRequest, DiffSource, PackMode};
use tollgate::report::{self, Evaluation, ReportInput, Surface};

#[derive(Parser)]
#[command(name = "tollgate", version, about = "Scores pull requests against Rego policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate the policy pack on a local change. Exit 0 on pass, 1 on fail, 2 on error.
    Check(CheckArgs),
}

#[derive(Args)]
struct CheckArgs {
    /// A unified diff to evaluate (`-` reads standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "base", required_unless_present = "base")]
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
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// Readable, coloured on a terminal.
    Text,
    /// The pull-request comment.
    Markdown,
    /// Machine-readable: score, verdict, threshold, counts, violations.
    Json,
}

fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => run_check(args),
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
        pack_mode: if args.replace_pack { PackMode::Replace } else { PackMode::Extend },
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
            report::render_text(&ReportInput::Evaluated(evaluation), color)
        }
        Format::Markdown => {
            report::render_markdown(&ReportInput::Evaluated(evaluation), Surface::Comment)
        }
        Format::Json => match serde_json::to_string_pretty(&report::render_json(&evaluation)) {
            Ok(json) => json,
            Err(error) => {
                eprintln!("tollgate: {error}");
                return ExitCode::from(2);
            }
        },
    };
    println!("{}", output.trim_end());
    if outcome.verdict.passed() { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

