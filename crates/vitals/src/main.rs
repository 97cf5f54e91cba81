//! `vitals`: the one binary. A thin shell over the library crates: it parses arguments,
//! validates them once, and hands over to `serve`, `probe`, `config check` or `sla`.

mod demo;
mod docs_cmd;
mod export;
mod healthcheck;
mod migrate;
mod notify_cmd;
mod ops;
mod probe_cmd;
mod serve;
#[cfg(not(feature = "system-alloc"))]
mod sqlite_alloc;

use clap::{CommandFactory, Parser, Subcommand};

// The write path allocates a lot of small, short-lived objects; mimalloc measurably beats
// glibc malloc there (bench/ingest) and keeps RSS flat.
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

pub const BUILD: vitals_server::BuildInfo = vitals_server::BuildInfo {
    name: "vitals",
    version: env!("CARGO_PKG_VERSION"),
    git_commit: env!("VITALS_GIT_COMMIT"),
    build_profile: env!("VITALS_PROFILE"),
    rustc: env!("VITALS_RUSTC"),
};

#[derive(Parser)]
#[command(
    name = "vitals",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("VITALS_GIT_COMMIT"), ")"),
    about = "Health monitoring and alerting for distributed healthcare IT"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: scheduler, probes, store, HTTP server.
    Serve {
        /// Configuration file (default: ./vitals.toml if present, else the built-in default).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding `server.listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// A simulated estate to look at: an emulated AKTIN broker with a dozen hospital nodes,
    /// a few services with health endpoints, pushed results, a firing and a silenced alert.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run one probe now, print the observation and exit like a Nagios plugin
    /// (0 ok, 1 warn, 2 crit, 3 unknown).
    Probe(Box<probe_cmd::ProbeArgs>),
    /// SLA report from service logs (plain or gzip'd).
    Sla(vitals_sla::SlaArgs),
    /// Run as a site agent: probe the checks of one location and send the results to a
    /// Vitals server (buffered on disk while it cannot be reached). See docs/agents.md.
    Agent(Box<vitals_agent::AgentArgs>),
    /// A consistent online backup of the database (works while `vitals serve` runs).
    Backup {
        /// Where to write the copy (must not exist).
        dest: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Work with the store: move a SQLite store into PostgreSQL.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Access tokens: `new` prints a fresh random secret, `hash` the `sha256:` form of a secret
    /// read from standard input (to put in `[[token]] hash = …` instead of the secret).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Run the retention cleanup now: through the running server if there is one, else directly.
    Cleanup {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Export data files.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Work with notifiers.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
    },
    /// Exit 0 when a running Vitals answers /monitor with 200, else 1 (for container health
    /// checks: no shell or curl needed).
    Healthcheck {
        /// Find the server at this configuration's listen address (default: ./vitals.toml if
        /// present, else the built-in default).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Ask this URL instead, e.g. http://127.0.0.1:8080/monitor.
        #[arg(long)]
        url: Option<String>,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (vitals.1 and one per subcommand) into a directory.
    Man {
        /// Where to write them (created if missing).
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum NotifyCommand {
    /// Send a test message, clearly marked TEST, through one [[notifier]] of the configuration
    /// now, and print what the receiver answered (exit 0 delivered, 1 not delivered, 2 the
    /// configuration or the notifier is wrong).
    Test {
        /// The notifier's id.
        notifier: String,
        /// Configuration file (default: ./vitals.toml if present, else the built-in default).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// The fleet's yearly CSV files: DIR/<id>/<id>_stats_<YYYY>.csv and _errors_<YYYY>.csv.
    Csv {
        dir: PathBuf,
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy everything of a SQLite store into a PostgreSQL store (resumable, verified).
    ///
    /// Assets, observations, health, alerts, outbox, silences, audit log, rollups, jobs, fleet,
    /// notices. Stop `vitals serve` first (or migrate the output of `vitals backup`).
    /// Interrupted, the same command again continues where it stopped; at the end the row
    /// counts of every table are compared. See docs/high-availability.md.
    Migrate {
        /// The SQLite store (opened read-only), e.g. sqlite:///var/lib/vitals/vitals.db.
        #[arg(long, value_name = "sqlite://PATH")]
        from: String,
        /// The PostgreSQL store: an empty database, or the one an interrupted run of this
        /// migration wrote to; `${NAME}` is taken from the environment.
        #[arg(long, value_name = "postgres://USER@HOST/DB")]
        to: String,
        /// Rows per batch, each one transaction (a batch also ends at 16 MiB of data).
        #[arg(long, value_name = "N", default_value_t = migrate::DEFAULT_BATCH,
              value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        batch: u32,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new random secret (256 bits, hex).
    New,
    /// Read a secret from standard input; print `sha256:<hex>`.
    Hash,
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a file; print every error with its path; exit 1 on any error.
    Check { file: PathBuf },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VITALS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a person at a terminal; log files and journald get plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

/// `vitals agent`: until SIGTERM or SIGINT (checks in progress finish, results are on disk).
fn run_agent(args: vitals_agent::AgentArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(vitals_agent::run(args, async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                },
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }))
}

fn main() -> ExitCode {
    // First, before anything can open a database: SQLite takes its allocator only then.
    #[cfg(not(feature = "system-alloc"))]
    if let Err(rc) = sqlite_alloc::install() {
        eprintln!("vitals: SQLite keeps the C library's malloc (sqlite3_config returned {rc})");
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, listen } => {
            init_logging();
            match serve::run(config, listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vitals: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Demo { listen } => {
            init_logging();
            match demo::run(&listen) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vitals demo: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Config {
            command: ConfigCommand::Check { file },
        } => match vitals_config::Config::load(&file) {
            Ok(c) => {
                // What the file cannot say: whether this machine lets ICMP checks open a socket.
                let icmp: Vec<usize> = c
                    .checks
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| {
                        matches!(x.kind.probe(), Some(vitals_core::spec::ProbeSpec::Icmp(_)))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if !icmp.is_empty() {
                    if let Err(e) = vitals_probe::icmp::availability() {
                        for i in &icmp {
                            eprintln!("check[{i}]: {e}");
                        }
                        eprintln!("{}: {} error(s)", file.display(), icmp.len());
                        return ExitCode::FAILURE;
                    }
                }
                println!(
                    "{}: OK ({} assets, {} checks)",
                    file.display(),
                    c.effective_assets().len(),
                    c.checks.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => {
                for e in &errors.0 {
                    eprintln!("{e}");
                }
                eprintln!("{}: {} error(s)", file.display(), errors.0.len());
                ExitCode::FAILURE
            }
        },
        Command::Probe(args) => ExitCode::from(probe_cmd::run(&args)),
        Command::Backup { dest, config } => match ops::backup(config, &dest) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vitals backup: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Token { command } => {
            let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
            match command {
                TokenCommand::New => {
                    let bytes: [u8; 32] = rand::random();
                    println!("{}", hex(&bytes));
                    ExitCode::SUCCESS
                }
                TokenCommand::Hash => {
                    let mut secret = String::new();
                    if std::io::stdin().read_line(&mut secret).is_err() || secret.trim().is_empty()
                    {
                        eprintln!("vitals token hash: give the secret on standard input");
                        return ExitCode::FAILURE;
                    }
                    println!(
                        "sha256:{}",
                        hex(&vitals_config::sha256(secret.trim().as_bytes()))
                    );
                    ExitCode::SUCCESS
                }
            }
        }
        Command::Store {
            command: StoreCommand::Migrate { from, to, batch },
        } => match migrate::run(&from, &to, batch) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vitals store migrate: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Cleanup { config } => match ops::cleanup(config) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vitals cleanup: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Export {
            command: ExportCommand::Csv { dir, config },
        } => match export::csv(config, &dir) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vitals export: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Notify {
            command: NotifyCommand::Test { notifier, config },
        } => {
            let (code, msg) = notify_cmd::test(config, &notifier);
            if code == 0 {
                println!("{msg}");
            } else {
                eprintln!("{msg}");
            }
            ExitCode::from(code)
        }
        Command::Healthcheck { config, url } => {
            let (code, msg) = healthcheck::run(config, url);
            if code == 0 {
                println!("{msg}");
            } else {
                eprintln!("{msg}");
            }
            ExitCode::from(code)
        }
        Command::Completions { shell } => {
            docs_cmd::completions(&mut Cli::command(), shell, &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir } => match docs_cmd::man_pages(Cli::command(), &dir) {
            Ok(files) => {
                println!("{} manual pages written to {}", files.len(), dir.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("vitals man: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Agent(args) => {
            init_logging();
            match run_agent(*args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("vitals agent: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Sla(args) => {
            let mut out = std::io::stdout().lock();
            match vitals_sla::run(&args, &mut out) {
                Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
                Err(e) => {
                    eprintln!("vitals sla: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
