//! `task-host`: run one task of the allow-policies-batch component from the
//! command line, or show the request it would send.
//!
//! Exactly one JSON document goes to stdout. Exit status: 0 success (also a
//! skipped batch and a dry run), 1 terminal failure, 75 retryable failure,
//! 2 when the command itself could not run (the reason goes to stderr).

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use host_test::fake_api::{FakeApi, FakeApiOptions};
use host_test::{
    default_component_path, error_to_json, AllowedHost, HostSettings, TaskError, TaskHost,
    TaskOptions,
};
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod demo;

/// sysexits' EX_TEMPFAIL: try again later.
const EXIT_RETRYABLE: u8 = 75;
const EXIT_TERMINAL: u8 = 1;
const EXIT_USAGE: u8 = 2;

/// The credentials used when the config names none.
const TOKEN_VARIABLE: &str = "CLOUDFLARE_API_TOKEN";

/// How long past the task's own `timeout_ms` the host waits before ending
/// the call: the component keeps its deadline itself, so this only ever
/// stops a guest that does not.
const WALL_CLOCK_GRACE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "task-host",
    version,
    about = "Run the allow-policies-batch task component"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task (or, with --dry-run, show the request without sending it).
    Run {
        /// The component; defaults to the one `make build` produces.
        #[arg(long)]
        component: Option<PathBuf>,
        /// The config document: a file, or `-` for stdin.
        #[arg(long)]
        config: PathBuf,
        /// The input document: a file, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        /// Validate and print the request instead of sending it.
        #[arg(long)]
        dry_run: bool,
        /// Allow requests to HOST (every port) or HOST:PORT, besides
        /// api.cloudflare.com. Repeatable.
        #[arg(long = "allow-host", value_name = "HOST[:PORT]")]
        allow_hosts: Vec<AllowedHost>,
    },
    /// Print the JSON Schemas of config, input and output.
    Describe {
        #[arg(long)]
        component: Option<PathBuf>,
    },
    /// Serve an in-memory stand-in for the allow-policies API on loopback
    /// until interrupted; prints its base URL.
    FakeApi {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
        /// The only bearer token accepted; by default any non-empty one.
        #[arg(long)]
        token: Option<String>,
    },
    /// Run the example batch against a fake API started in-process, and
    /// show the request, the answer and the resulting policies.
    Demo {
        #[arg(long)]
        component: Option<PathBuf>,
        /// The folder holding config.json and batch.json.
        #[arg(long)]
        examples: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { 0 });
        }
    };
    match execute(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("task-host: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn execute(command: Command) -> anyhow::Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    match command {
        Command::Run {
            component,
            config,
            input,
            dry_run,
            allow_hosts,
        } => {
            if config == Path::new("-") && input == Path::new("-") {
                bail!("--config and --input cannot both be read from stdin");
            }
            let config = with_environment_token(read_document(&config, "config")?);
            let input = read_document(&input, "input")?;
            let host = load(component)?;
            let mut options = TaskOptions::default();
            options.allow_hosts.extend(allow_hosts);
            if let Some(limit) = wall_clock_limit(&config) {
                options.wall_clock_limit = limit;
            }
            let outcome = runtime.block_on(async {
                if dry_run {
                    host.prepare(&options, &config, &input).await
                } else {
                    host.run_task(&options, &config, &input).await
                }
            })?;
            Ok(print_outcome(outcome))
        }
        Command::FakeApi { listen, token } => runtime.block_on(async {
            let fake = FakeApi::start(FakeApiOptions { listen, token }).await?;
            println!("{}", json!({ "base_url": fake.base_url() }));
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
            fake.shutdown().await;
            Ok(0)
        }),
        Command::Demo {
            component,
            examples,
        } => {
            let host = load(component)?;
            let examples = examples.unwrap_or_else(default_examples);
            let report = runtime.block_on(demo::run(&host, &examples))?;
            print!("{report}");
            Ok(0)
        }
        Command::Describe { component } => {
            let host = load(component)?;
            let schemas = runtime.block_on(host.describe(&TaskOptions::default()))?;
            println!("{}", schemas.trim_end());
            Ok(0)
        }
    }
}

/// `examples/` in the working directory, else the one in this repository.
fn default_examples() -> PathBuf {
    let here = PathBuf::from("examples");
    if here.join("batch.json").is_file() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// Every command runs one task at a time, so the host reserves a single
/// slot: reserving the default thousand costs about 9 ms at start-up.
fn load(component: Option<PathBuf>) -> anyhow::Result<TaskHost> {
    let settings = HostSettings {
        max_concurrent_tasks: 1,
        ..HostSettings::default()
    };
    TaskHost::load_with_settings(&component.unwrap_or_else(default_component_path), &settings)
}

fn read_document(path: &Path, what: &str) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

/// The config's `timeout_ms` plus [`WALL_CLOCK_GRACE`], when the config
/// gives one in the contract's range; otherwise the host's default holds.
fn wall_clock_limit(config: &str) -> Option<Duration> {
    let value: Value = serde_json::from_str(config).ok()?;
    let timeout_ms = value.get("timeout_ms")?.as_u64()?;
    (1..=600_000)
        .contains(&timeout_ms)
        .then(|| Duration::from_millis(timeout_ms) + WALL_CLOCK_GRACE)
}

/// Adds `api_token` from the environment to a config object that names no
/// credentials. Anything else (including text that is not JSON) is left for
/// the component to judge.
fn with_environment_token(config: String) -> String {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&config) else {
        return config;
    };
    if ["api_token", "api_email", "api_key"]
        .iter()
        .any(|k| map.contains_key(*k))
    {
        return config;
    }
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) if !token.is_empty() => {
            map.insert("api_token".into(), Value::String(token));
            Value::Object(map).to_string()
        }
        _ => config,
    }
}

fn print_outcome(outcome: Result<String, TaskError>) -> u8 {
    match outcome {
        Ok(document) => {
            println!("{document}");
            0
        }
        Err(error) => {
            let body = error_to_json(&error);
            let retryable = body["retryable"] == json!(true);
            println!("{}", json!({ "error": body }));
            if retryable {
                EXIT_RETRYABLE
            } else {
                EXIT_TERMINAL
            }
        }
    }
}
