//! What both benches share: where the build left things, the documents a
//! task runs with, the loopback server every contender talks to, and the
//! arithmetic of the figures.

pub mod batch;
pub mod server;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_test::{error_to_json, AllowedHost, CacheMode, TaskError, TaskHost, TaskOptions};
use serde_json::{json, Value};

pub const TOKEN: &str = "bench-token-not-a-real-credential";
pub const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

/// Where `in_process` leaves its figures for `whole_process`, in `target/bench`.
pub const IN_PROCESS_FILE: &str = "in_process.json";

const COMPONENT: &str = "wasm32-wasip2/release/allow_policies_batch.wasm";

/// The cargo target directory, found as `default_component_path()` finds
/// the component: above the running executable, then `CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().ok();
    let above_exe = exe
        .iter()
        .flat_map(|exe| exe.ancestors().skip(1).take(3))
        .map(Path::to_path_buf);
    let from_env = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from);
    above_exe
        .chain(from_env)
        .find(|dir| dir.join(COMPONENT).is_file())
        .unwrap_or_else(|| workspace().join("target"))
}

pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

pub fn component_path() -> PathBuf {
    target_dir().join(COMPONENT)
}

/// `target/bench`, created on first use.
pub fn bench_dir() -> PathBuf {
    let dir = target_dir().join("bench");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench");
    dir
}

/// The component with its compiled code cached under `target/bench`, so
/// that the benches neither compile it every run nor touch the user's cache.
pub fn load_host() -> TaskHost {
    let cache = CacheMode::Dir(bench_dir().join("compile-cache"));
    TaskHost::load_with_cache(&component_path(), cache)
        .expect("cannot load the component: run `make component` first")
}

pub fn task_options(port: u16) -> TaskOptions {
    let loopback = AllowedHost::with_port("127.0.0.1", port).expect("a valid host");
    TaskOptions::default().with_allowed_host(loopback)
}

/// No retries: a failure must show, not be hidden inside a slower figure.
pub fn config(port: u16) -> String {
    json!({
        "api_token": TOKEN,
        "account_id": ACCOUNT,
        "base_url": format!("http://127.0.0.1:{port}/client/v4"),
        "timeout_ms": 30_000,
        "max_retries": 0,
    })
    .to_string()
}

/// The output of a task that must have succeeded; anything else means the
/// figures would describe the wrong thing, so the bench stops.
pub fn expect_success(outcome: anyhow::Result<Result<String, TaskError>>) -> String {
    match outcome {
        Ok(Ok(output)) if output.starts_with(r#"{"success":true"#) => output,
        Ok(Ok(output)) => panic!("unexpected task output: {output}"),
        Ok(Err(e)) => panic!("the task failed: {}", error_to_json(&e)),
        Err(e) => panic!("the host failed: {e:#}"),
    }
}

/// Runs `tasks` tasks through one host with `in_flight` of them at a time
/// and returns the wall time of the lot.
pub async fn run_in_flight(
    host: &Arc<TaskHost>,
    opts: &TaskOptions,
    config: &Arc<str>,
    input: &Arc<str>,
    tasks: u64,
    in_flight: usize,
) -> Duration {
    let remaining = Arc::new(AtomicU64::new(tasks));
    let lanes = in_flight.min(usize::try_from(tasks).unwrap_or(usize::MAX));
    let started = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..lanes {
        let (host, opts, config, input) =
            (host.clone(), opts.clone(), config.clone(), input.clone());
        let remaining = remaining.clone();
        running.spawn(async move {
            let take = |n: u64| n.checked_sub(1);
            while remaining
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, take)
                .is_ok()
            {
                expect_success(host.run_task(&opts, &config, &input).await);
            }
        });
    }
    while let Some(lane) = running.join_next().await {
        lane.expect("a lane of tasks panicked");
    }
    started.elapsed()
}

pub fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

pub fn write_json(path: &Path, value: &Value) {
    let text = serde_json::to_string_pretty(value).expect("figures serialise");
    std::fs::write(path, text + "\n")
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
