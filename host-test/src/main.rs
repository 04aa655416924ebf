//! `task-host`: run one task of the allow-policies-batch component from the
//! command line, or show the request it would send; or work for a Conductor
//! server.
//!
//! Exactly one JSON document goes to stdout. Exit status of `run` and
//! `export`: 0 success (also a skipped batch and a dry run), 1 terminal
//! failure, 75 retryable failure, 2 when the command itself could not run
//! (the reason goes to stderr). `worker` prints its summary when it stops: 0, or 75 when a
//! result was never taken; 128 + the signal's number when a second signal
//! ended it.

use anyhow::{bail, Context as _};
use clap::{Parser, Subcommand};
use host_test::again_since::{parse_again_since, AgainSinceError};
use host_test::attempts::Delivery;
use host_test::cleartext::check_server_link;
use host_test::cli::{AllowHostArgs, ComponentArg, InsecureHttpArg};
use host_test::conductor::{AccessKey, ConductorClient, ConductorError};
use host_test::designer::{Designer, DesignerOptions, Mode};
use host_test::fake_api::{FakeApi, FakeApiOptions, RateBudget, CLOUDFLARE_RATE_BUDGET};
use host_test::printing::{
    self, keep_secret, keep_secrets, stdout_document, stdout_host_document, stdout_text,
};
use host_test::say;
use host_test::task_config::{check_config, read_document, TaskConfig, TOKEN_VARIABLE};
use host_test::worker::{run_worker, TaskPatience, WorkerSettings, DEFAULT_MAX_OUTPUT_BYTES};
use host_test::{
    error_to_json, EarlierAttempt, HostSettings, TaskError, TaskHost, TaskOptions,
    DEFAULT_MAX_CONCURRENT_TASKS,
};
use rerun::BatchRecord;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

mod demo;
mod rerun;

/// sysexits' EX_TEMPFAIL: try again later.
const EXIT_RETRYABLE: u8 = 75;
const EXIT_TERMINAL: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// `run --dry-run --detailed-exitcode`: the run would send something.
const EXIT_CHANGES: u8 = 3;

/// Tasks the designer runs at once: one page, a person clicking.
const DESIGNER_TASKS: u32 = 4;

/// The access key of `task-host worker`, as Conductor's SDKs name them.
const KEY_ID_VARIABLE: &str = "CONDUCTOR_AUTH_KEY";
const KEY_SECRET_VARIABLE: &str = "CONDUCTOR_AUTH_SECRET";

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

/// What `task-host run --help` adds after the flags: what the command
/// reads from the environment, and what its exit status means (as
/// docs/task-contract.md's table).
const RUN_AFTER_HELP: &str = "\
Environment:
  CLOUDFLARE_API_TOKEN  the API token, used when the config names no credentials
                        (a dry run of the four lists needs none)
  TASK_HOST_STATE_DIR   where batches that may have applied are recorded
                        (default $XDG_STATE_HOME/allow-policies-batch, else
                        ~/.local/state/allow-policies-batch)
  TASK_HOST_CACHE_DIR   where the compiled component is kept (default
                        $XDG_CACHE_HOME/allow-policies-batch, else ~/.cache/...)

Running the same batch again after it may have applied (exit 75 or 1 with
may_have_applied) reads the account first, from when it was first sent;
--fresh sends it as new instead.

Exit status:
  0   success; also a skipped batch, a dry run, and a batch found applied by reading back
  1   terminal failure
  75  retryable failure (also one that reading back showed not applied)
  3   with --dry-run --detailed-exitcode: the run would send something
  2   the command could not run: bad flags, an unreadable file, a component that
      does not load, the wall-clock limit; the reason goes to stderr";

/// `task-host export --help`, after the flags.
const EXPORT_AFTER_HELP: &str = "\
Environment:
  CLOUDFLARE_API_TOKEN  the API token, used when the config names no credentials
  TASK_HOST_CACHE_DIR   where the compiled component is kept

Exit status:
  0   the document was printed
  1   terminal failure (the error document is printed)
  75  retryable failure, such as a rate-limited read
  2   the command could not run; the reason goes to stderr";

/// `task-host describe --help` and `demo --help`, after the flags.
const LOCAL_AFTER_HELP: &str = "\
Environment:
  TASK_HOST_CACHE_DIR   where the compiled component is kept

Exit status:
  0   done
  2   the command could not run (such as a component that does not load);
      the reason goes to stderr";

/// `task-host fake-api --help`, after the flags.
const FAKE_API_AFTER_HELP: &str = "\
It reads no environment variable.

Exit status:
  0   stopped by Ctrl-C (SIGINT)
  2   could not start: an address off loopback or in use, a seed it cannot
      take (each problem named by its JSON Pointer on stderr)";

/// `task-host designer --help`, after the flags.
const DESIGNER_AFTER_HELP: &str = "\
It prints one line, the address to open (with its access token), and serves
until SIGINT or SIGTERM. It never opens a browser.

Environment:
  CLOUDFLARE_API_TOKEN  with --live only: the API token (the page can give one
                        instead); without --live it is not used
  TASK_HOST_CACHE_DIR   where the compiled component is kept

Exit status:
  0   stopped by SIGINT or SIGTERM
  2   could not start: an address off loopback or in use, a component that
      does not load; the reason goes to stderr";

/// `task-host worker --help`, after the flags.
const WORKER_AFTER_HELP: &str = "\
Environment:
  CLOUDFLARE_API_TOKEN   the API token, used when the config names no credentials
  TASK_HOST_CONFIG       the config document, when --config is not given
  CONDUCTOR_AUTH_KEY     the access key id, when --key-id is not given
  CONDUCTOR_AUTH_SECRET  the access key secret, when --key-secret is not given
  TASK_HOST_CACHE_DIR    where the compiled component is kept

Exit status (its summary goes to stdout when it stops):
  0        stopped by SIGINT or SIGTERM, every result reported
  75       stopped with results the server never took (it hands those tasks out again)
  2        could not start, or the server refused its credentials; the reason goes to stderr
  128 + N  a second signal N ended it before the tasks in hand were reported";

#[derive(Subcommand)]
enum Command {
    /// Run one task (or, with --dry-run, show the request without sending it).
    #[command(after_help = RUN_AFTER_HELP)]
    Run {
        #[command(flatten)]
        component: ComponentArg,
        /// The config document: a file, or `-` for stdin.
        #[arg(long)]
        config: PathBuf,
        /// The input document: a file, or `-` for stdin.
        #[arg(long)]
        input: PathBuf,
        /// Validate and print the request instead of sending it.
        #[arg(long)]
        dry_run: bool,
        /// Run the task as an engine runs one again after an attempt whose
        /// outcome it does not know, which started at this time
        /// (milliseconds since the Unix epoch, from a year ago to a minute
        /// ahead): the account is read first, and the batch is sent only
        /// when none of it shows.
        #[arg(
            long = "again-since",
            value_name = "UNIX_MS",
            conflicts_with = "dry_run",
            value_parser = again_since_flag
        )]
        again_since: Option<u64>,
        /// Send the batch as new even when an earlier run of it may have
        /// applied. By default such a batch, recorded when that run
        /// failed, is run as with --again-since from when it was first
        /// sent: the account is read first.
        #[arg(long, conflicts_with_all = ["dry_run", "again_since"])]
        fresh: bool,
        /// With --dry-run: exit 3 when the run would send anything (a sync
        /// plan with changes, a batch that is not empty), 0 when it would
        /// send nothing. For a pipeline that checks the account for drift.
        #[arg(long = "detailed-exitcode", requires = "dry_run")]
        detailed_exitcode: bool,
        #[command(flatten)]
        allow: AllowHostArgs,
    },
    /// Read the account's policies and print them as a sync input (with
    /// their ids, delete_unlisted false) to edit and run. Only reads: the
    /// host lets no request but GET out.
    #[command(after_help = EXPORT_AFTER_HELP)]
    Export {
        #[command(flatten)]
        component: ComponentArg,
        /// The config document: a file, or `-` for stdin.
        #[arg(long)]
        config: PathBuf,
        /// The account to read (32 lowercase hexadecimal characters); by
        /// default the config's account_id.
        #[arg(long, value_name = "ID")]
        account: Option<String>,
        #[command(flatten)]
        allow: AllowHostArgs,
    },
    /// Print the JSON Schemas of config, input and output.
    #[command(after_help = LOCAL_AFTER_HELP)]
    Describe {
        #[command(flatten)]
        component: ComponentArg,
    },
    /// Serve an in-memory stand-in for the allow-policies API on loopback
    /// until interrupted; prints its base URL.
    #[command(after_help = FAKE_API_AFTER_HELP)]
    FakeApi {
        /// Loopback address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        listen: std::net::SocketAddr,
        /// The only bearer token accepted; by default any non-empty one.
        #[arg(long)]
        token: Option<String>,
        /// Accept integer policy ids, as the older API did, and give new
        /// policies integer ids; by default ids are UUID strings, as the
        /// current API has them.
        #[arg(long)]
        legacy_ids: bool,
        /// Start with these policies, kept with the ids given: a JSON
        /// document {"<account_id>": [policy, ...]} (a file, or `-` for
        /// stdin), such as examples/seed.json. A bad entry exits 2 naming
        /// its JSON Pointer.
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// Requests each credential may make per window; past them every
        /// request gets a 429 for the lockout. Cloudflare's: 1200.
        #[arg(long = "rate-limit", value_name = "N", default_value_t = CLOUDFLARE_RATE_BUDGET.limit, value_parser = clap::value_parser!(u32).range(1..))]
        rate_limit: u32,
        /// The rate limit's window, in seconds. Cloudflare's: 300.
        #[arg(long = "rate-window", value_name = "S", default_value_t = CLOUDFLARE_RATE_BUDGET.window.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
        rate_window: u64,
        /// How long going over the rate limit locks a credential out, in
        /// seconds. Cloudflare's: 300.
        #[arg(long = "rate-lockout", value_name = "S", default_value_t = CLOUDFLARE_RATE_BUDGET.lockout.as_secs(), value_parser = clap::value_parser!(u64).range(1..=86_400))]
        rate_lockout: u64,
    },
    /// Serve a local page to design a batch or a sync, preview it, send it
    /// (to an embedded fake API unless --live) and copy it for an engine;
    /// prints the address to open.
    #[command(after_help = DESIGNER_AFTER_HELP)]
    Designer {
        #[command(flatten)]
        component: ComponentArg,
        /// Loopback address to listen on (127.0.0.1 only); port 0 picks a
        /// free port.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// Send to Cloudflare (https://api.cloudflare.com) with
        /// $CLOUDFLARE_API_TOKEN or the credentials given on the page,
        /// instead of the embedded fake API and its sandbox account.
        #[arg(long)]
        live: bool,
    },
    /// Work for a Conductor server: poll for tasks of one type, run each
    /// through the component and report how it ended, until SIGINT or
    /// SIGTERM (then the tasks in hand are finished and reported first).
    #[command(after_help = WORKER_AFTER_HELP)]
    Worker {
        /// The server's root or API root, such as http://localhost:8080 or
        /// https://conductor.example.com; plain http only to loopback
        /// unless --insecure-http is given.
        #[arg(long)]
        server: String,
        /// The task definition's name.
        #[arg(long = "task-type", value_name = "NAME")]
        task_type: String,
        /// Most tasks in hand at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=i64::from(DEFAULT_MAX_CONCURRENT_TASKS)))]
        concurrency: u32,
        /// Pause after a poll that brought no task.
        #[arg(long = "poll-interval-ms", value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
        poll_interval_ms: u64,
        /// The config document given to every task: a file, or `-` for
        /// stdin. Without it, the config is $TASK_HOST_CONFIG, else `{}`;
        /// either way $CLOUDFLARE_API_TOKEN is used when it names no
        /// credentials.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Shown in Conductor as the worker that ran each task; by default
        /// the host name and process id.
        #[arg(long = "worker-id", value_name = "ID")]
        worker_id: Option<String>,
        /// Poll the tasks of this domain (when tasks are routed by domain).
        #[arg(long)]
        domain: Option<String>,
        /// The id of an application access key, for a server that requires
        /// authentication (Orkes Conductor); default $CONDUCTOR_AUTH_KEY.
        #[arg(long = "key-id", value_name = "ID")]
        key_id: Option<String>,
        /// The access key's secret; default $CONDUCTOR_AUTH_SECRET. Never
        /// printed; prefer the environment, which other users cannot list.
        // A secret may begin with `-`: it is the value, never a flag that
        // clap would refuse by quoting it.
        #[arg(long = "key-secret", value_name = "SECRET", allow_hyphen_values = true)]
        key_secret: Option<String>,
        /// PEM certificates of the authorities to trust for an https
        /// server, besides the public web's roots (a self-hosted server's
        /// private CA).
        #[arg(long = "ca-bundle", value_name = "FILE")]
        ca_bundle: Option<PathBuf>,
        /// The task definition's timeoutSeconds (0: none), used when the
        /// server does not let the worker read the definition.
        #[arg(long = "task-timeout-seconds", value_name = "S")]
        task_timeout_seconds: Option<u64>,
        /// The largest task output the server takes, in bytes of JSON: the
        /// server's conductor.app.maxTaskOutputPayloadSizeThreshold. A
        /// larger output is reported as a terminal failure that says so.
        #[arg(long = "max-output-bytes", value_name = "BYTES", default_value_t = DEFAULT_MAX_OUTPUT_BYTES)]
        max_output_bytes: usize,
        #[command(flatten)]
        insecure: InsecureHttpArg,
        #[command(flatten)]
        component: ComponentArg,
        #[command(flatten)]
        allow: AllowHostArgs,
    },
    /// Run the example batch against a fake API started in-process, and
    /// show the request, the answer and the resulting policies.
    #[command(after_help = LOCAL_AFTER_HELP)]
    Demo {
        #[command(flatten)]
        component: ComponentArg,
        /// The folder holding config.json and batch.json.
        #[arg(long)]
        examples: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    // Known before anything is parsed: a misplaced flag's value is quoted
    // back by the usage error.
    printing::keep_secrets_of_environment(&[TOKEN_VARIABLE, KEY_SECRET_VARIABLE]);
    printing::redact_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                say!("{}", text.trim_end());
                return ExitCode::from(EXIT_USAGE);
            }
            stdout_text(&text);
            return ExitCode::SUCCESS;
        }
    };
    match execute(cli.command) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            say!("task-host: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `--again-since`, checked against this host's clock.
fn again_since_flag(text: &str) -> Result<u64, AgainSinceError> {
    parse_again_since(text, host_test::now_unix_ms())
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
            again_since,
            fresh,
            detailed_exitcode,
            allow,
        } => {
            if config == Path::new("-") && input == Path::new("-") {
                bail!("--config and --input cannot both be read from stdin");
            }
            let config = TaskConfig::with_environment_token(read_document(&config, "config")?);
            let input = read_document(&input, "input")?;
            let host = load(component)?;
            let options = config.task_options(allow.allow_hosts);
            if dry_run {
                // Before the placeholder is put in: it is no secret, and
                // the words of the line about it must not be redacted.
                remember_secrets(&config, None);
                let (config, placeholder) = if rerun::is_sync(&input) {
                    (config, false)
                } else {
                    config.with_placeholder_token()
                };
                if placeholder {
                    say!(
                        "task-host: no credentials: the preview shows a placeholder; a real run needs ${TOKEN_VARIABLE}, or api_token (or api_email and api_key) in the config"
                    );
                }
                let outcome = runtime.block_on(host.prepare(&options, config.text(), &input))?;
                explain_failure(&outcome, &config);
                let sends = outcome.as_ref().ok().map(|preview| {
                    if let Some(record) = BatchRecord::of_preview(preview) {
                        record.note_in_preview();
                    }
                    rerun::preview_sends_anything(preview)
                });
                let code = print_outcome(outcome);
                return Ok(match sends {
                    Some(true) if detailed_exitcode => EXIT_CHANGES,
                    _ => code,
                });
            }
            remember_secrets(&config, None);
            let record = if rerun::is_sync(&input) {
                // A sync plans from the account on every run.
                None
            } else {
                match runtime.block_on(host.prepare(&options, config.text(), &input))? {
                    Ok(preview) => BatchRecord::of_preview(&preview),
                    Err(_) => None,
                }
            };
            let delivery = match (again_since, &record) {
                (Some(ms), _) => Delivery::Again(EarlierAttempt {
                    first_started_unix_ms: ms,
                }),
                (None, Some(record)) if !fresh => record.delivery(),
                (None, _) => Delivery::First,
            };
            let outcome =
                runtime.block_on(host.run_delivered(&options, config.text(), &input, delivery))?;
            explain_failure(&outcome, &config);
            if let Some(record) = &record {
                record.settle(&outcome);
            }
            Ok(print_outcome(outcome))
        }
        Command::Export {
            component,
            config,
            account,
            allow,
        } => {
            let config = TaskConfig::with_environment_token(read_document(&config, "config")?);
            remember_secrets(&config, None);
            // The component checks the account as the input's account_id.
            let input = match account {
                Some(id) => json!({ "account_id": id }),
                None => json!({}),
            };
            let host = load(component)?;
            let options = config.task_options(allow.allow_hosts);
            let outcome = runtime.block_on(host.export_policies(
                &options,
                config.text(),
                &input.to_string(),
            ))?;
            explain_failure(&outcome, &config);
            Ok(print_outcome(outcome))
        }
        Command::FakeApi {
            listen,
            token,
            legacy_ids,
            seed,
            rate_limit,
            rate_window,
            rate_lockout,
        } => runtime.block_on(async {
            keep_secrets(&token);
            let seed = seed.as_deref().map(read_seed).transpose()?;
            let fake = FakeApi::start(FakeApiOptions {
                listen,
                token,
                legacy_ids,
                seed,
                rate_budget: RateBudget {
                    limit: rate_limit,
                    window: Duration::from_secs(rate_window),
                    lockout: Duration::from_secs(rate_lockout),
                },
            })
            .await?;
            stdout_host_document(json!({ "base_url": fake.base_url() }));
            tokio::signal::ctrl_c()
                .await
                .context("cannot wait for Ctrl-C")?;
            fake.shutdown().await;
            Ok(0)
        }),
        Command::Designer {
            component,
            listen,
            live,
        } => {
            host_test::designer::check_listen(listen)?;
            let host = Arc::new(TaskHost::load_with_settings(
                &component.path(),
                &HostSettings {
                    max_concurrent_tasks: DESIGNER_TASKS,
                    ..HostSettings::default()
                },
            )?);
            let mode = if live {
                Mode::Live {
                    environment_token: std::env::var(TOKEN_VARIABLE).ok(),
                }
            } else {
                Mode::Fake
            };
            runtime.block_on(async {
                let stopped = stop_signal()?;
                let designer = Designer::start(host, DesignerOptions { listen, mode }).await?;
                stdout_text(&format!("{}\n", designer.banner()));
                stopped.await;
                designer.shutdown().await;
                Ok(0)
            })
        }
        Command::Demo {
            component,
            examples,
        } => {
            let host = load(component)?;
            let examples = examples.unwrap_or_else(default_examples);
            let report = runtime.block_on(demo::run(&host, &examples))?;
            stdout_text(&report);
            Ok(0)
        }
        Command::Worker {
            server,
            task_type,
            concurrency,
            poll_interval_ms,
            config,
            worker_id,
            domain,
            key_id,
            key_secret,
            ca_bundle,
            task_timeout_seconds,
            max_output_bytes,
            insecure,
            component,
            allow,
        } => {
            let config = TaskConfig::for_worker(config.as_deref())?;
            let key = access_key(key_id, key_secret)?;
            remember_secrets(&config, key.as_ref().map(AccessKey::secret));
            let mut client = ConductorClient::new(&server)?;
            if let Some(warning) = check_server_link(client.link(), insecure.insecure_http)? {
                say!("task-host: {warning}");
            }
            if let Some(key) = key {
                client = client.with_access_key(key);
            }
            if let Some(path) = ca_bundle {
                let pem = std::fs::read(&path)
                    .with_context(|| format!("cannot read --ca-bundle {}", path.display()))?;
                client = client.with_ca_bundle(&pem)?;
            }
            let host = TaskHost::load_with_settings(
                &component.path(),
                &HostSettings {
                    max_concurrent_tasks: concurrency,
                    ..HostSettings::default()
                },
            )?;
            let task_options = config.task_options(allow.allow_hosts);
            let mut settings = WorkerSettings::new(
                task_type,
                worker_id.unwrap_or_else(default_worker_id),
                config,
            );
            settings.concurrency = concurrency;
            settings.poll_interval = Duration::from_millis(poll_interval_ms);
            settings.domain = domain;
            settings.task_options = task_options;
            settings.max_output_bytes = max_output_bytes;
            runtime.block_on(async {
                check_config(&host, &settings.task_options, &settings.config).await?;
                settings.patience = match client.task_timeout(&settings.task_type).await {
                    Ok(0) => TaskPatience::Unbounded,
                    Ok(s) => TaskPatience::Within(Duration::from_secs(s)),
                    Err(ConductorError::Unauthorized(why)) => bail!("{why}"),
                    Err(e) => match task_timeout_seconds {
                        Some(0) => TaskPatience::Unbounded,
                        Some(s) => TaskPatience::Within(Duration::from_secs(s)),
                        None => {
                            say!(
                                "task-host worker: the task definition could not be read ({e}); rate-limited tasks are reported FAILED, and its retry policy applies (give --task-timeout-seconds to let them wait IN_PROGRESS)"
                            );
                            TaskPatience::Unknown
                        }
                    },
                };
                say!(
                    "task-host worker: {} polling {} for {} tasks, {} at a time",
                    settings.worker_id,
                    client.api_url(),
                    settings.task_type,
                    settings.concurrency
                );
                let worker_id = settings.worker_id.clone();
                let summary = run_worker(
                    Arc::new(host),
                    Arc::new(client),
                    settings,
                    shutdown_signal()?,
                )
                .await;
                let mut report = summary.to_json();
                report["worker_id"] = worker_id.into();
                // Counts, the worker id and the worker's own words: the
                // host's keys, its strings redacted.
                stdout_host_document(report);
                if let Some(why) = &summary.refused {
                    // Polling again would be refused again: a person must
                    // fix the credentials.
                    say!("task-host worker: stopped: {why}");
                    return Ok(EXIT_USAGE);
                }
                // Results the server never took: Conductor will time those
                // tasks out and hand them out again.
                Ok(if summary.unreported > 0 {
                    EXIT_RETRYABLE
                } else {
                    0
                })
            })
        }
        Command::Describe { component } => {
            let host = load(component)?;
            let schemas = runtime.block_on(host.describe(&TaskOptions::default()))?;
            stdout_document(schemas.trim_end().to_string());
            Ok(0)
        }
    }
}

/// What stderr adds to a failure for a person at the terminal: the
/// variable that supplies credentials, the flag that allows a destination.
fn explain_failure(outcome: &Result<String, TaskError>, config: &TaskConfig) {
    match outcome {
        Err(TaskError::InvalidConfig(_)) if config.names_no_credentials() => say!(
            "task-host: the config names no credentials: set ${TOKEN_VARIABLE}, or give api_token (or api_email and api_key) in it"
        ),
        Err(TaskError::Denied(_)) => say!(
            "task-host: the task may reach https://api.cloudflare.com on port 443 only; to let it reach another host, or a host over plain http, add --allow-host HOST[:PORT]"
        ),
        _ => {}
    }
}

/// Completes on the first SIGINT or SIGTERM. A second one ends the process
/// at once (status 128 + the signal's number), leaving the tasks in hand to
/// Conductor's response timeout.
///
/// The signals are watched from their own task from the start, so a second
/// signal counts even while the worker is busy polling or waiting for a slot.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    async fn next(interrupt: &mut Signal, terminate: &mut Signal) -> i32 {
        tokio::select! {
            _ = interrupt.recv() => 2,
            _ = terminate.recv() => 15,
        }
    }
    let (stop, stopped) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        next(&mut interrupt, &mut terminate).await;
        say!("task-host worker: stopping; a second signal ends at once");
        let _ = stop.send(());
        let number = next(&mut interrupt, &mut terminate).await;
        say!("task-host worker: stopped before the tasks in hand were reported");
        std::process::exit(128 + number);
    });
    Ok(async move {
        let _ = stopped.await;
    })
}

/// Completes on the first SIGINT or SIGTERM.
fn stop_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// `hostname:pid`, so that workers on one machine tell apart.
fn default_worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "task-host".into());
    format!("{host}:{}", std::process::id())
}

/// The seed document of `fake-api --seed`, parsed; what it holds is
/// checked when the fake starts.
fn read_seed(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text = read_document(path, "seed")?;
    serde_json::from_str(&text)
        .with_context(|| format!("--seed {}: the seed document is not JSON", path.display()))
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
fn load(component: ComponentArg) -> anyhow::Result<TaskHost> {
    let settings = HostSettings {
        max_concurrent_tasks: 1,
        ..HostSettings::default()
    };
    TaskHost::load_with_settings(&component.path(), &settings)
}

/// The credentials of the task being run, and the access key's secret:
/// nothing this process prints may show them (the environment's were kept
/// at start).
fn remember_secrets(config: &TaskConfig, key_secret: Option<&str>) {
    keep_secrets(config.credentials());
    if let Some(secret) = key_secret {
        keep_secret(secret);
    }
}

/// The worker's access key from the flags, else the environment (the
/// names Conductor's SDKs read): both parts or neither.
fn access_key(id: Option<String>, secret: Option<String>) -> anyhow::Result<Option<AccessKey>> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let id = id.or_else(|| from_env(KEY_ID_VARIABLE));
    let secret = secret.or_else(|| from_env(KEY_SECRET_VARIABLE));
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some(AccessKey::new(id, secret))),
        (None, None) => Ok(None),
        (Some(_), None) => anyhow::bail!(
            "an access key id was given without its secret: give --key-secret or ${KEY_SECRET_VARIABLE}"
        ),
        (None, Some(_)) => anyhow::bail!(
            "an access key secret was given without its id: give --key-id or ${KEY_ID_VARIABLE}"
        ),
    }
}

fn print_outcome(outcome: Result<String, TaskError>) -> u8 {
    match outcome {
        Ok(document) => {
            stdout_document(document);
            0
        }
        Err(error) => {
            let body = error_to_json(&error);
            let retryable = body["retryable"] == json!(true);
            stdout_document(json!({ "error": body }).to_string());
            if retryable {
                EXIT_RETRYABLE
            } else {
                EXIT_TERMINAL
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// `--help` describes every flag of every command: one without a
    /// description leaves a person guessing what it does.
    #[test]
    fn every_flag_of_every_command_is_described() {
        let command = Cli::command();
        let mut seen = 0;
        for sub in command.get_subcommands() {
            assert!(
                sub.get_about().is_some(),
                "{} has no description",
                sub.get_name()
            );
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                after.contains("Exit status"),
                "{} --help does not name its exit statuses",
                sub.get_name()
            );
            for arg in sub.get_arguments() {
                seen += 1;
                assert!(
                    arg.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{} --{} has no description",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
        assert!(seen > 20, "only {seen} flags found");
    }

    /// A key secret that begins with `-` is the flag's value: refusing it
    /// as an unknown flag would print it.
    #[test]
    fn a_key_secret_may_begin_with_a_hyphen() {
        let secret = "--kS3cr3t-value";
        let cli = Cli::try_parse_from([
            "task-host",
            "worker",
            "--server",
            "http://127.0.0.1:8080/api",
            "--task-type",
            "t",
            "--key-secret",
            secret,
        ])
        .unwrap();
        let Command::Worker { key_secret, .. } = cli.command else {
            panic!("not the worker command");
        };
        assert_eq!(key_secret.as_deref(), Some(secret));
    }
}
