//! `task-host-temporal`: a Temporal activity worker that runs each activity
//! task through the allow-policies-batch component.
//!
//! One activity is registered (by default `allow_policies_batch`). Its one
//! argument is the task's input document and its result the result
//! document; the config (base URL, credentials) comes only from the worker
//! (`--config`, `$TASK_HOST_CONFIG`, `$CLOUDFLARE_API_TOKEN`), so a
//! workflow cannot send the worker's token elsewhere. How each outcome is
//! told to Temporal is in [`outcome`]; every attempt after the first reads
//! the account before sending ([`host_test::attempts`]).
//!
//! SIGINT or SIGTERM stops polling; the activities in hand finish and are
//! reported, then the worker exits 0. It exits 2 when it cannot start.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use futures::future::BoxFuture;
use futures::FutureExt as _;
use host_test::attempts::{self, Delivery, Disposition};
use host_test::cleartext::{check_server_link, ServerLink};
use host_test::cli::{AllowHostArgs, ComponentArg, InsecureHttpArg};
use host_test::printing;
use host_test::say;
use host_test::task_config::{check_config, TaskConfig, TOKEN_VARIABLE};
use host_test::{
    EarlierAttempt, HostSettings, TaskHost, TaskOptions, DEFAULT_MAX_CONCURRENT_TASKS,
};
use serde_json::{json, Value};
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, TlsOptions, Url};
use temporalio_common::ActivityDefinition;
use temporalio_sdk::activities::{
    ActivityContext, ActivityDefinitions, ActivityError, ActivityImplementer, ExecutableActivity,
};
use temporalio_sdk::runtime::worker_tuner::{FixedSizeSlotSupplier, TunerHolder};
use temporalio_sdk::runtime::RuntimeOptions;
use temporalio_sdk::{ApplicationFailure, Runtime, Worker, WorkerOptions};

mod outcome;
mod rate_limits;

use outcome::{ending, Ending};
use rate_limits::ActivityRateLimits;

const EXIT_USAGE: u8 = 2;

/// How often a running task heartbeats. Temporal learns of a cancellation
/// only in the answer to a heartbeat, so this also bounds how late the
/// worker hears of one (the SDK sends at most one per 80 % of the
/// activity's heartbeat timeout).
const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);

/// How long past a run's wall-clock limit a stopping worker waits for the
/// activities in hand: room to report the last of them.
const REPORT_ROOM: Duration = Duration::from_secs(5);

/// What `--help` adds after the flags.
const AFTER_HELP: &str = "\
Environment:
  CLOUDFLARE_API_TOKEN  the API token, used when the config names no credentials
  TASK_HOST_CONFIG      the config document, when --config is not given
  TEMPORAL_API_KEY      the Temporal Cloud API key, when --api-key is not given
  TASK_HOST_CACHE_DIR   where the compiled component is kept

Exit status:
  0   stopped by SIGINT or SIGTERM after the activities in hand were reported
  2   could not start (bad flags, no credentials, a server it cannot reach);
      the reason goes to stderr";

#[derive(Parser)]
#[command(
    name = "task-host-temporal",
    version,
    about = "Run the allow-policies-batch component as a Temporal activity",
    after_help = AFTER_HELP
)]
struct Cli {
    /// The Temporal frontend, such as http://127.0.0.1:7233 (https for
    /// Temporal Cloud). Without TLS (--tls, --tls-ca or --api-key) only a
    /// loopback address, unless --insecure-http is given.
    #[arg(long, default_value = "http://127.0.0.1:7233")]
    address: Url,
    /// The Temporal namespace the task queue is in.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// The task queue to poll: the one the workflows schedule the
    /// activity on.
    #[arg(long = "task-queue", value_name = "NAME")]
    task_queue: String,
    /// The activity type the worker registers.
    #[arg(
        long = "activity-name",
        value_name = "NAME",
        default_value = "allow_policies_batch"
    )]
    activity_name: String,
    /// Most activities in hand at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=i64::from(DEFAULT_MAX_CONCURRENT_TASKS)))]
    concurrency: u32,
    /// The config document given to every task: a file, or `-` for stdin.
    /// Without it, $TASK_HOST_CONFIG, else `{}`; either way
    /// $CLOUDFLARE_API_TOKEN is used when it names no credentials.
    #[arg(long)]
    config: Option<PathBuf>,
    /// A Temporal Cloud API key (turns TLS on); default $TEMPORAL_API_KEY.
    // A key may begin with `-`: it is the value, never a flag that clap
    // would refuse by quoting it.
    #[arg(
        long = "api-key",
        env = API_KEY_VARIABLE,
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    api_key: Option<String>,
    /// Connect with TLS, trusting the public web's roots and, when --tls-ca
    /// is given, its certificate authority.
    #[arg(long)]
    tls: bool,
    /// A PEM file with the certificate authority of a self-hosted
    /// server, trusted besides the public web's roots (turns TLS on).
    #[arg(long = "tls-ca", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    #[command(flatten)]
    insecure: InsecureHttpArg,
    #[command(flatten)]
    component: ComponentArg,
    #[command(flatten)]
    allow: AllowHostArgs,
    #[command(flatten)]
    rate_limits: ActivityRateLimits,
    /// Turn off the rate gate the tasks of this worker share (after a 429
    /// none sends until the wait is over, and the `Ratelimit` headers pace
    /// them): every task then meets the API's rate limit alone, as workers
    /// without a gate did. For measuring what the gate saves
    /// (`make bench-fleet`), not for production.
    #[arg(long = "no-rate-gate")]
    no_rate_gate: bool,
    /// Shown in Temporal as the worker's identity; by default the host
    /// name and process id.
    #[arg(long)]
    identity: Option<String>,
}

/// The variable that holds a Temporal Cloud API key (`--api-key`).
const API_KEY_VARIABLE: &str = "TEMPORAL_API_KEY";

fn main() -> ExitCode {
    // Known before anything is parsed: a misplaced flag's value is quoted
    // back by the usage error.
    printing::keep_secrets_of_environment(&[TOKEN_VARIABLE, API_KEY_VARIABLE]);
    printing::redact_panics();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let text = e.render().to_string();
            if e.use_stderr() {
                say!("{}", text.trim_end());
                return ExitCode::from(EXIT_USAGE);
            }
            printing::stdout_text(&text);
            return ExitCode::SUCCESS;
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say!("task-host-temporal: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            say!("{}", failure_line(&e));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The activity's name, chosen on the command line: the SDK reads it from
/// the definition type when the activity is registered.
static ACTIVITY_NAME: OnceLock<String> = OnceLock::new();

/// What every activity task shares.
struct Batches {
    host: TaskHost,
    /// The config every task is given; its `verify_after_failure` says
    /// whether a retry reads the account before it sends.
    config: TaskConfig,
    options: TaskOptions,
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    // Decided before anything is loaded or sent.
    let tls = match (&cli.tls_ca, cli.tls || cli.api_key.is_some()) {
        (Some(path), _) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read --tls-ca {}", path.display()))?;
            Some(TlsOptions::builder().server_root_ca_cert(pem).build())
        }
        (None, true) => Some(TlsOptions::default()),
        (None, false) => None,
    };
    let link = ServerLink {
        flag: "--address",
        address: cli.address.as_str(),
        host: cli.address.host_str().unwrap_or_default(),
        tls: tls.is_some(),
    };
    if let Some(warning) = check_server_link(link, cli.insecure.insecure_http)? {
        say!("task-host-temporal: {warning}");
    }
    let config = TaskConfig::for_worker(cli.config.as_deref())?;
    keep_secrets_of(cli.api_key.as_deref(), &config);
    let options = config.task_options(cli.allow.allow_hosts);
    let host = TaskHost::load_with_settings(
        &cli.component.path(),
        &HostSettings {
            max_concurrent_tasks: cli.concurrency,
            rate_gate: !cli.no_rate_gate,
            ..HostSettings::default()
        },
    )?;
    check_config(&host, &options, &config).await?;
    let grace = options.wall_clock_limit + REPORT_ROOM;
    ACTIVITY_NAME
        .set(cli.activity_name.clone())
        .map_err(|_| anyhow::anyhow!("the activity name was set twice"))?;

    let identity = cli.identity.unwrap_or_else(default_identity);
    let connection = Connection::connect(
        ConnectionOptions::new(cli.address.clone())
            .identity(identity)
            .maybe_api_key(cli.api_key)
            .maybe_tls_options(tls)
            .build(),
    )
    .await
    .with_context(|| format!("cannot connect to Temporal at {}", cli.address))?;
    let client = Client::new(
        connection,
        ClientOptions::new(cli.namespace.clone()).build(),
    )?;
    let runtime = Runtime::from_current_tokio(RuntimeOptions::default())?;
    let batches = Arc::new(Batches {
        host,
        config,
        options,
    });
    let mut worker_options = worker_options(
        &cli.task_queue,
        cli.concurrency as usize,
        grace,
        cli.rate_limits,
    );
    worker_options.register_activity::<BatchActivity>(batches);
    let mut worker = Worker::new(&runtime, client, worker_options)?;
    let stop = worker.shutdown_handle();
    tokio::spawn(async move {
        if wait_for_signal().await.is_ok() {
            say!("task-host-temporal: stopping; finishing the tasks in hand");
        }
        stop();
    });
    let pace = cli
        .rate_limits
        .describe()
        .map_or_else(String::new, |limits| format!(", {limits}"));
    let gate = if cli.no_rate_gate {
        ", without a rate gate"
    } else {
        ""
    };
    say!(
        "task-host-temporal: polling {} in namespace {} for activity {}, {} at a time{pace}{gate}",
        cli.task_queue,
        cli.namespace,
        cli.activity_name,
        cli.concurrency
    );
    worker.run().await?;
    say!("task-host-temporal: stopped");
    Ok(())
}

/// The worker's options before its activity is registered: `slots`
/// activities in hand at once, `grace` for them on shutdown, and the
/// engine's own rate limits, unlimited unless given.
fn worker_options(
    task_queue: &str,
    slots: usize,
    grace: Duration,
    limits: ActivityRateLimits,
) -> WorkerOptions {
    let tuner = TunerHolder::builder()
        .workflow_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .activity_task_slot_supplier(FixedSizeSlotSupplier::new(slots))
        .local_activity_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .nexus_task_slot_supplier(FixedSizeSlotSupplier::new(1))
        .build();
    WorkerOptions::new(task_queue)
        .tuner(tuner)
        // Tasks in hand get their whole run to finish on shutdown.
        .graceful_shutdown_period(grace)
        .maybe_max_task_queue_activities_per_second(limits.task_queue_per_second)
        .maybe_max_worker_activities_per_second(limits.worker_per_second)
        .build()
}

/// What this worker must never print, besides the environment's (kept at
/// start): the Temporal API key and the config's credentials.
fn keep_secrets_of(api_key: Option<&str>, config: &TaskConfig) {
    printing::keep_secrets(api_key);
    printing::keep_secrets(config.credentials());
}

/// The line a worker that could not start or stopped on an error prints:
/// the error and its causes (a server's refusal may quote what it was
/// sent), redacted of every secret the process knows.
fn failure_line(error: &anyhow::Error) -> String {
    printing::shown(&format!("task-host-temporal: {error:#}"))
}

async fn wait_for_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    Ok(())
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// The one activity: its name from the command line, the input and result
/// documents as JSON.
struct BatchActivity;

impl ActivityDefinition for BatchActivity {
    type Input = Value;
    type Output = Value;

    fn name(&self) -> &str {
        ACTIVITY_NAME
            .get()
            .map_or("allow_policies_batch", String::as_str)
    }
}

impl ExecutableActivity for BatchActivity {
    type Implementer = Batches;
    const REQUIRES_INSTANCE: bool = true;

    fn definition() -> Self {
        BatchActivity
    }

    fn execute(
        batches: Option<Arc<Batches>>,
        ctx: ActivityContext,
        input: Value,
    ) -> BoxFuture<'static, Result<Value, ActivityError>> {
        async move {
            let Some(batches) = batches else {
                return Err(ActivityError::application(
                    ApplicationFailure::non_retryable(anyhow::anyhow!(
                        "the worker registered no task host"
                    )),
                ));
            };
            batches.run(ctx, input).await
        }
        .boxed()
    }
}

impl ActivityImplementer for Batches {
    fn register_all(self: Arc<Self>, defs: &mut ActivityDefinitions) {
        defs.register_activity::<BatchActivity>(self);
    }
}

impl Batches {
    async fn run(&self, ctx: ActivityContext, input: Value) -> Result<Value, ActivityError> {
        let info = ctx.info();
        let previous: Option<Value> = ctx.heartbeat_details().deserialize().ok().flatten();
        let delivery = delivery(info.attempt, info.scheduled_time, previous.as_ref());
        let input = input.to_string();
        let call = self
            .host
            .run_delivered(&self.options, self.config.text(), &input, delivery);
        let mut call = std::pin::pin!(call);
        let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
        let outcome = loop {
            tokio::select! {
                outcome = &mut call => break outcome,
                () = ctx.cancelled() => {
                    // Dropping the call ends the component's instance and
                    // its request at once.
                    say!(
                        "task-host-temporal: activity {} cancelled while it ran",
                        info.activity_id
                    );
                    return Err(ActivityError::cancelled_with_details(json!({
                        "message": "cancelled while the task ran: the batch may have been sent; a retry of this activity reads the account before sending",
                        "may_have_applied": true,
                    })));
                }
                _ = beat.tick() => {
                    let _ = ctx.record_heartbeat(json!({ "attempt": info.attempt })).await;
                }
            }
        };
        let disposition = attempts::disposition(&outcome, self.config.checks_first());
        if delivery == Delivery::First
            && matches!(disposition, Disposition::RetryNothingApplied { .. })
        {
            // The failure carries the last heartbeat's details to the next
            // attempt: this one applied nothing, so it need not look first.
            let _ = ctx
                .record_heartbeat(json!({ "attempt": info.attempt, NOTHING_APPLIED: true }))
                .await;
        }
        match ending(outcome, disposition) {
            Ending::Completed(document) => Ok(document),
            Ending::Failed {
                kind,
                message,
                document,
                non_retryable,
                next_retry_delay,
            } => {
                // The calls a failed attempt spent are in no result
                // document: the line is where a count of the fleet's
                // requests finds them.
                let calls = document["error"]["api_calls"]
                    .as_u64()
                    .map_or_else(|| "unknown".to_string(), |n| n.to_string());
                say!(
                    "task-host-temporal: activity {} attempt {}: {kind}; API calls: {calls}",
                    info.activity_id,
                    info.attempt
                );
                let failure = ApplicationFailure::builder(anyhow::anyhow!(message))
                    .type_name(kind)
                    .non_retryable(non_retryable)
                    .maybe_next_retry_delay(next_retry_delay)
                    .details(document)
                    .build();
                Err(ActivityError::application(failure))
            }
        }
    }
}

/// The member of an attempt's last heartbeat that tells the next attempt
/// it applied nothing (a 429, no connection): only an attempt that was
/// itself first says so, since a later one may follow an attempt whose
/// request is still landing.
const NOTHING_APPLIED: &str = "nothing_applied";

/// How Temporal handed out the activity: attempt 1 first, and a later one
/// after an attempt that applied nothing (`previous`, its last heartbeat);
/// any other again, since an earlier attempt may have applied the batch,
/// counted from when the activity was first scheduled (before any attempt
/// could send).
fn delivery(attempt: u32, scheduled: Option<SystemTime>, previous: Option<&Value>) -> Delivery {
    let nothing_applied = previous.is_some_and(|p| p[NOTHING_APPLIED] == json!(true));
    if attempt <= 1 || nothing_applied {
        return Delivery::First;
    }
    let first_started_unix_ms = scheduled
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as u64);
    Delivery::Again(EarlierAttempt {
        first_started_unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--help` describes every flag: one without a description leaves a
    /// person guessing what it does.
    #[test]
    fn every_flag_is_described() {
        use clap::CommandFactory;
        let command = Cli::command();
        for arg in command.get_arguments() {
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "--{} has no description",
                arg.get_id()
            );
        }
        let after = command.get_after_help().unwrap().to_string();
        for needed in ["CLOUDFLARE_API_TOKEN", "TASK_HOST_CONFIG", "Exit status"] {
            assert!(after.contains(needed), "{needed} missing from --help");
        }
    }

    fn parse(extra: &[&str]) -> Result<Cli, clap::Error> {
        let mut args = vec!["task-host-temporal", "--task-queue", "allow-policies"];
        args.extend_from_slice(extra);
        Cli::try_parse_from(args)
    }

    /// An API key that begins with `-` is the flag's value: refusing it
    /// as an unknown flag would print it.
    #[test]
    fn an_api_key_may_begin_with_a_hyphen() {
        let cli = parse(&["--api-key", "--k3y-value"]).unwrap();
        assert_eq!(cli.api_key.as_deref(), Some("--k3y-value"));
    }

    /// The rate flags reach the SDK's options: the server paces the queue
    /// only if the poll carries the value, and the SDK the worker only if
    /// its options do.
    #[test]
    fn the_rate_flags_reach_the_worker_options() {
        let cli = parse(&[
            "--max-task-queue-activities-per-second",
            "3",
            "--max-activities-per-second",
            "0.5",
        ])
        .unwrap();
        let options = worker_options("q", 4, Duration::from_secs(35), cli.rate_limits);
        assert_eq!(options.max_task_queue_activities_per_second, Some(3.0));
        assert_eq!(options.max_worker_activities_per_second, Some(0.5));
        assert_eq!(options.task_queue, "q");
        assert_eq!(
            options.graceful_shutdown_period,
            Some(Duration::from_secs(35))
        );

        // Unlimited unless given.
        let cli = parse(&[]).unwrap();
        let options = worker_options("q", 4, Duration::from_secs(35), cli.rate_limits);
        assert_eq!(options.max_task_queue_activities_per_second, None);
        assert_eq!(options.max_worker_activities_per_second, None);
    }

    #[test]
    fn a_rate_that_is_not_above_zero_is_refused_naming_its_flag() {
        for flag in [
            "--max-task-queue-activities-per-second",
            "--max-activities-per-second",
        ] {
            for bad in ["0", "-2", "NaN", "fast"] {
                let error = parse(&[&format!("{flag}={bad}")])
                    .err()
                    .unwrap_or_else(|| panic!("{flag} {bad} was taken"));
                assert_eq!(error.kind(), clap::error::ErrorKind::ValueValidation);
                let message = error.to_string();
                assert!(message.contains(flag), "{message}");
                assert!(message.contains("above 0"), "{message}");
            }
        }
    }

    mod planted_secrets {
        use super::*;
        use proptest::prelude::*;

        /// The secret, or any stretch of 12 of its characters, in `text`.
        fn leaked(secret: &str, text: &str) -> Option<String> {
            let chars: Vec<char> = secret.chars().collect();
            chars
                .windows(12)
                .map(|w| w.iter().collect::<String>())
                .find(|window| text.contains(window.as_str()))
        }

        proptest! {
            #![proptest_config(ProptestConfig {
                cases: 32,
                failure_persistence: None,
                ..ProptestConfig::default()
            })]

            /// A failure that quotes the Temporal API key or the config's
            /// token (a server's refusal quoting what it was sent, a cause
            /// naming a value) is printed with `[redacted]` in its place,
            /// and not even 12 characters of the secret.
            #[test]
            fn a_failure_quoting_a_secret_is_printed_redacted(
                secret in "[A-Za-z0-9_~/-]{16,64}",
                as_api_key in any::<bool>(),
                activity in any::<bool>(),
            ) {
                let config = if as_api_key {
                    TaskConfig::read(r#"{"api_token": "config-token-of-the-test-5e1f"}"#.into())
                } else {
                    TaskConfig::read(json!({ "api_token": secret }).to_string())
                };
                keep_secrets_of(as_api_key.then_some(secret.as_str()), &config);
                let line = if activity {
                    // An activity id is the server's text.
                    printing::shown(&format!(
                        "task-host-temporal: activity {secret} attempt 2: api"
                    ))
                } else {
                    let refusal = anyhow::anyhow!(
                        "status: Unauthenticated, message: \"invalid API key {secret}\""
                    )
                    .context("cannot connect to Temporal at https://127.0.0.1:7233");
                    failure_line(&refusal)
                };
                if let Some(window) = leaked(&secret, &line) {
                    return Err(TestCaseError::fail(format!(
                        "{window:?} of the secret is in {line}"
                    )));
                }
                prop_assert!(line.contains("[redacted]"), "{}", line);
            }
        }
    }

    #[test]
    fn every_attempt_after_the_first_looks_first_from_the_first_schedule() {
        let at = UNIX_EPOCH + Duration::from_millis(1_764_600_000_123);
        assert_eq!(delivery(1, Some(at), None), Delivery::First);
        assert_eq!(
            delivery(2, Some(at), Some(&json!({ "attempt": 1 }))),
            Delivery::Again(EarlierAttempt {
                first_started_unix_ms: 1_764_600_000_123
            })
        );
        // Unknown: policies of any age count, which errs toward "applied".
        assert_eq!(
            delivery(3, None, None),
            Delivery::Again(EarlierAttempt {
                first_started_unix_ms: 0
            })
        );
        // The attempt before applied nothing, and said so.
        let said = json!({ "attempt": 1, "nothing_applied": true });
        assert_eq!(delivery(2, Some(at), Some(&said)), Delivery::First);
    }
}
