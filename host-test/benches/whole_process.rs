//! Figures 5-6 of `make bench`, and the report of all of them:
//!
//! 5. wall time of whole `task-host run` processes (first run with an empty
//!    compiled-code cache, then cached; also `--dry-run`) against `curl`
//!    sending the same request to the same loopback server;
//! 6. the component's size, plain and gzipped; the host's peak memory with
//!    16 tasks in flight, of 1 item and of the largest batch, each measured
//!    in a fresh child process (this binary again); the guest's linear
//!    memory peak for each.
//!
//! It reads what `in_process` wrote, adds its own figures, writes
//! `target/bench/results.json` and prints one table with each goal.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_test::CACHE_DIR_ENV;
use serde_json::{json, Map, Value};

use support::batch::Batch;
use support::server::{Captured, Server, ENVELOPE};
use support::{bench_dir, round};

/// Runs of each process figure; the median is reported.
const RUNS: usize = 20;
/// The child process that measures memory runs this many tasks of the
/// largest batch, this many at a time.
const MEMORY_TASKS: u64 = 200;
const MEMORY_IN_FLIGHT: usize = 16;
/// Set to the server's port, it makes this binary the memory child.
const CHILD_ENV: &str = "BENCH_MEMORY_CHILD_PORT";
/// The batch the memory child runs, by its key.
const CHILD_BATCH_ENV: &str = "BENCH_MEMORY_CHILD_BATCH";
const RESULTS_FILE: &str = "results.json";

const GOAL_MEMORY_BYTES: u64 = 64 * 1024 * 1024;
const GOAL_COMPONENT_BYTES: u64 = 300_000;

fn main() {
    if let Ok(port) = std::env::var(CHILD_ENV) {
        memory_child(port.parse().expect("a port number"));
        return;
    }
    let in_process_path = bench_dir().join(support::IN_PROCESS_FILE);
    let in_process: Value = std::fs::read_to_string(&in_process_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_else(|| {
            panic!(
                "no figures in {}: run `cargo bench -p host-test --bench in_process` first",
                in_process_path.display()
            )
        });

    let server = Server::start();
    let processes = processes(&server);
    let size = component_size();
    let memory = memory(&server);

    let mut results = in_process;
    results["whole_process"] = processes;
    results["size"] = size;
    results["memory"] = memory;
    results["machine"] = machine();
    let rows = rows(&results);
    results["goals"] = rows
        .iter()
        .filter_map(|row| row.goal.as_ref().map(|goal| (row, goal)))
        .map(|(row, goal)| {
            json!({
                "figure": row.figure,
                "value": goal.value,
                "unit": goal.unit,
                "goal": goal.text,
                "met": goal.met,
            })
        })
        .collect();
    let path = bench_dir().join(RESULTS_FILE);
    support::write_json(&path, &results);
    print_table(&rows, &results["machine"]);
    println!("\nwritten to {}", path.display());
}

/// Figure 5: whole processes, one-item batch.
fn processes(server: &Server) -> Value {
    let port = server.port();
    let work = fresh_dir("whole-process");
    let config = work.join("config.json");
    let input = work.join("input.json");
    std::fs::write(&config, support::config(port)).expect("write the config");
    std::fs::write(&input, Batch::One.input()).expect("write the input");
    // A directory that does not exist yet: task-host creates it private,
    // and the first run finds nothing in it.
    let cache = work.join("compile-cache");
    let task_host = support::target_dir().join("release").join("task-host");
    let allow = format!("127.0.0.1:{port}");
    let run = |extra: &[&str]| {
        let mut command = Command::new(&task_host);
        command
            .args(["run", "--config"])
            .arg(&config)
            .arg("--input")
            .arg(&input)
            .args(["--allow-host", &allow])
            .args(extra)
            .env(CACHE_DIR_ENV, &cache)
            .env_remove("CLOUDFLARE_API_TOKEN");
        command
    };

    server.capture_next();
    let (first, output) = timed(&mut run(&[]));
    expect_document(&output, r#"{"success":true"#);
    let sent = server
        .captured()
        .expect("the server read task-host's request");
    let cached = median_of(|| {
        let (took, output) = timed(&mut run(&[]));
        expect_document(&output, r#"{"success":true"#);
        took
    });
    let requests = server.requests();
    let dry_run = median_of(|| {
        let (took, output) = timed(&mut run(&["--dry-run"]));
        expect_document(&output, r#"{"dry_run":true"#);
        took
    });
    assert_eq!(server.requests(), requests, "a dry run sent a request");
    let curl = curl_median(port, &sent, &work);
    let _ = std::fs::remove_dir_all(&work);
    json!({
        "batch": Batch::One.label(),
        "runs": RUNS,
        "task_host_first_run_empty_cache_ms": millis(first),
        "task_host_cached_median_ms": millis(cached),
        "task_host_dry_run_cached_median_ms": millis(dry_run),
        "curl_median_ms": millis(curl),
        "ratio_task_host_cached_to_curl": round(cached.as_secs_f64() / curl.as_secs_f64(), 2),
    })
}

/// `curl` sending what task-host sent: method, path, headers (curl frames
/// the body itself) and body bytes.
fn curl_median(port: u16, sent: &Captured, work: &Path) -> Duration {
    let body = work.join("body.json");
    std::fs::write(&body, &sent.body).expect("write the body");
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "--fail".into(),
        "-X".into(),
        sent.method.to_string(),
        "--data-binary".into(),
        format!("@{}", body.display()),
        // curl would otherwise wait for a 100 Continue on large bodies.
        "-H".into(),
        "Expect:".into(),
    ];
    for (name, value) in &sent.headers {
        if name != "host" && name != "content-length" {
            let value = value.to_str().expect("ASCII header values");
            args.extend(["-H".into(), format!("{name}: {value}")]);
        }
    }
    args.push(format!("http://127.0.0.1:{port}{}", sent.path));
    median_of(|| {
        let (took, output) = timed(Command::new("curl").args(&args));
        assert!(output.status.success(), "curl failed: {output:?}");
        assert_eq!(output.stdout, ENVELOPE);
        took
    })
}

/// Figure 6, sizes.
fn component_size() -> Value {
    let path = support::component_path();
    let bytes = std::fs::metadata(&path).expect("the component").len();
    let gzip = Command::new("gzip")
        .args(["-9", "-c"])
        .arg(&path)
        .output()
        .expect("gzip runs");
    assert!(gzip.status.success(), "gzip failed: {gzip:?}");
    json!({
        "component_bytes": bytes,
        "component_gzip9_bytes": gzip.stdout.len(),
    })
}

/// Figure 6, memory: a fresh process per batch, so that nothing this one
/// did counts.
fn memory(server: &Server) -> Value {
    // The child must load compiled code, not compile: Cranelift's peak is
    // not the host's at work.
    drop(support::load_host());
    let mut figures = Map::new();
    for batch in [Batch::One, Batch::Largest] {
        let output = Command::new(std::env::current_exe().expect("this executable"))
            .env(CHILD_ENV, server.port().to_string())
            .env(CHILD_BATCH_ENV, batch.key())
            .output()
            .expect("the memory child runs");
        assert!(
            output.status.success(),
            "the memory child failed: {output:?}"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut figure: Value = stdout
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("no figures from the memory child: {stdout}"));
        figure["batch"] = batch.label().into();
        figure["tasks"] = MEMORY_TASKS.into();
        figure["in_flight"] = MEMORY_IN_FLIGHT.into();
        figures.insert(batch.key().into(), figure);
    }
    Value::Object(figures)
}

fn memory_child(port: u16) {
    let batch_key = std::env::var(CHILD_BATCH_ENV).unwrap_or_default();
    let batch = [Batch::One, Batch::Largest]
        .into_iter()
        .find(|b| b.key() == batch_key)
        .unwrap_or_else(|| panic!("{CHILD_BATCH_ENV} names no batch: {batch_key:?}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let host = Arc::new(support::load_host());
    let opts = support::task_options(port);
    let config: Arc<str> = support::config(port).into();
    let input: Arc<str> = batch.input().into();
    let (guest_peak, took) = runtime.block_on(async {
        let mut instance = host.instance(&opts).await.expect("an instance");
        support::expect_success(instance.run_task(&config, &input).await);
        let guest_peak = instance.peak_memory_bytes();
        drop(instance);
        let took = support::run_in_flight(
            &host,
            &opts,
            &config,
            &input,
            MEMORY_TASKS,
            MEMORY_IN_FLIGHT,
        )
        .await;
        (guest_peak, took)
    });
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let hwm_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    println!(
        "{}",
        json!({
            "host_peak_vmhwm_bytes": hwm_kib * 1024,
            "guest_linear_memory_peak_bytes": guest_peak,
            "tasks_per_s": round(MEMORY_TASKS as f64 / took.as_secs_f64(), 1),
        })
    );
}

fn machine() -> Value {
    let run = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let workspace = support::workspace();
    let workspace = workspace.to_str().unwrap_or(".");
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        });
    json!({
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": cpu_model,
        "date_utc": run("date", &["-u", "+%Y-%m-%dT%H:%M:%SZ"]),
        "git_commit": run("git", &["-C", workspace, "rev-parse", "HEAD"]),
        "git_uncommitted_changes": run("git", &["-C", workspace, "status", "--porcelain"])
            .map(|s| !s.is_empty()),
        "rustc": run("rustc", &["--version"]),
    })
}

struct Goal {
    text: &'static str,
    met: bool,
    /// The figure the goal is about, unrounded, in `unit`.
    value: f64,
    unit: &'static str,
}

struct Row {
    /// A section heading when `value` is empty.
    figure: String,
    value: String,
    goal: Option<Goal>,
}

fn heading(text: &str) -> Row {
    Row {
        figure: text.into(),
        value: String::new(),
        goal: None,
    }
}

fn row(figure: impl Into<String>, value: String) -> Row {
    Row {
        figure: figure.into(),
        value,
        goal: None,
    }
}

fn checked(figure: impl Into<String>, shown: String, goal: Goal) -> Row {
    Row {
        figure: figure.into(),
        value: shown,
        goal: Some(goal),
    }
}

fn goal(value: f64, unit: &'static str, text: &'static str, met: bool) -> Goal {
    Goal {
        text,
        met,
        value,
        unit,
    }
}

fn rows(r: &Value) -> Vec<Row> {
    let num = |pointer: &str| {
        r.pointer(pointer)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("no figure at {pointer}"))
    };
    let spread = |pointer: &str| {
        format!(
            "{:.1} / {:.1} µs",
            num(&format!("{pointer}/median_us")),
            num(&format!("{pointer}/p99_us"))
        )
    };
    let mut rows = vec![heading(
        "1. run-task latency through the host vs native hyper client, median / p99",
    )];
    // The goals: the task through the host against the same work done
    // natively, for small batches, where the host's own costs show.
    for (batch, limit) in [
        (Batch::One, Some(("≤ 1.5", 1.5))),
        (Batch::Hundred, Some(("≤ 1.3", 1.3))),
        (Batch::Largest, None),
    ] {
        let at = format!("/latency/{}", batch.key());
        let body = num(&format!("{at}/request_body_bytes"));
        let label = format!("{} ({body} B body)", batch.label());
        rows.push(row(
            format!("{label}: component"),
            spread(&format!("{at}/component")),
        ));
        rows.push(row(
            format!("{label}: native"),
            spread(&format!("{at}/native")),
        ));
        rows.push(row(
            format!("{label}: native, same validation + send"),
            spread(&format!("{at}/native_task")),
        ));
        let ratio = num(&format!("{at}/ratio_to_native_task_median"));
        let figure = format!(
            "{}: ratio component / native validation + send",
            batch.label()
        );
        rows.push(match limit {
            Some((text, limit)) => checked(
                figure,
                format!("{ratio:.2}"),
                goal(ratio, "ratio", text, ratio <= limit),
            ),
            None => row(figure, format!("{ratio:.2}")),
        });
        rows.push(row(
            format!("{}: ratio component / native (median)", batch.label()),
            format!("{:.2}", num(&format!("{at}/ratio_median"))),
        ));
    }
    rows.push(heading("2. throughput through one TaskHost, 1-item batch"));
    for in_flight in [1, 4, 16] {
        let per_s = num(&format!(
            "/throughput_1_item_batch/in_flight_{in_flight}/tasks_per_s"
        ));
        rows.push(row(
            format!("{in_flight} in flight"),
            format!("{per_s:.0} tasks/s"),
        ));
    }
    rows.push(heading(
        "3. instantiation: TaskHost::instance, median / p99",
    ));
    rows.push(row(
        "new Store + instantiate from InstancePre (drop not timed)",
        spread("/instantiation"),
    ));
    rows.push(heading(
        "4. validation + body building: wasm prepare vs native prepare + preview_json, median / p99",
    ));
    for batch in [Batch::One, Batch::Largest] {
        let at = format!("/validation/{}", batch.key());
        // The goals: the largest batch checked and written in 3 ms in wasm
        // and in 1.5 ms natively.
        for (side, limit_ms) in [("wasm", 3.0), ("native", 1.5)] {
            let figure = format!("{}: {side}", batch.label());
            let shown = spread(&format!("{at}/{side}"));
            let median_ms = num(&format!("{at}/{side}/median_us")) / 1000.0;
            rows.push(if batch == Batch::Largest {
                let text = if side == "wasm" {
                    "≤ 3 ms"
                } else {
                    "≤ 1.5 ms"
                };
                checked(
                    figure,
                    shown,
                    goal(median_ms, "ms", text, median_ms <= limit_ms),
                )
            } else {
                row(figure, shown)
            });
        }
        rows.push(row(
            format!("{}: ratio wasm / native (median)", batch.label()),
            format!("{:.2}", num(&format!("{at}/ratio_median"))),
        ));
    }
    rows.push(heading(&format!(
        "5. whole process wall time, 1-item batch, median of {RUNS} runs"
    )));
    let ms = |key: &str| num(&format!("/whole_process/{key}"));
    rows.push(row(
        "task-host run, first, empty compiled-code cache",
        format!("{:.1} ms", ms("task_host_first_run_empty_cache_ms")),
    ));
    rows.push(row(
        "task-host run, cached",
        format!("{:.2} ms", ms("task_host_cached_median_ms")),
    ));
    rows.push(row(
        "task-host run --dry-run, cached",
        format!("{:.2} ms", ms("task_host_dry_run_cached_median_ms")),
    ));
    rows.push(row(
        "curl, same request",
        format!("{:.2} ms", ms("curl_median_ms")),
    ));
    rows.push(heading("6. size and memory"));
    let bytes = num("/size/component_bytes");
    rows.push(checked(
        "component .wasm",
        format!("{bytes:.0} B"),
        goal(
            bytes,
            "bytes",
            "≤ 300,000 B",
            bytes <= GOAL_COMPONENT_BYTES as f64,
        ),
    ));
    rows.push(row(
        "component .wasm, gzip -9",
        format!("{:.0} B", num("/size/component_gzip9_bytes")),
    ));
    for batch in [Batch::One, Batch::Largest] {
        let at = format!("/memory/{}", batch.key());
        let peak = num(&format!("{at}/host_peak_vmhwm_bytes"));
        let figure = format!(
            "host peak VmHWM, {MEMORY_TASKS} tasks of {}, {MEMORY_IN_FLIGHT} in flight",
            batch.label()
        );
        let shown = format!("{:.1} MiB", peak / 1048576.0);
        rows.push(if batch == Batch::Largest {
            checked(
                figure,
                shown,
                goal(peak, "bytes", "≤ 64 MiB", peak <= GOAL_MEMORY_BYTES as f64),
            )
        } else {
            row(figure, shown)
        });
        rows.push(row(
            "  (their rate)",
            format!("{:.0} tasks/s", num(&format!("{at}/tasks_per_s"))),
        ));
        rows.push(row(
            format!("guest linear memory peak, one {} run-task", batch.label()),
            format!(
                "{:.1} MiB",
                num(&format!("{at}/guest_linear_memory_peak_bytes")) / 1048576.0
            ),
        ));
    }
    rows.push(heading(
        "7. sync mode, 10,000 desired against 10,000 stored (pages from memory): preview, median / p99",
    ));
    rows.push(row(
        "validate + read 100 pages + plan + preview: wasm",
        spread("/sync_plan/wasm"),
    ));
    rows.push(row(
        "validate + read 100 pages + plan + preview: native",
        spread("/sync_plan/native"),
    ));
    rows.push(row(
        "ratio wasm / native (median)",
        format!("{:.2}", num("/sync_plan/ratio_median")),
    ));
    rows.push(row(
        "the plan alone: native",
        spread("/sync_plan/plan_only_native"),
    ));
    rows
}

fn print_table(rows: &[Row], machine: &Value) {
    let width = rows
        .iter()
        .filter(|r| !r.value.is_empty())
        .map(|r| r.figure.chars().count())
        .max()
        .unwrap_or(0);
    let fact = |key: &str| machine[key].as_str().unwrap_or("?").to_string();
    let dirty = match machine["git_uncommitted_changes"].as_bool() {
        Some(true) => " with uncommitted changes",
        _ => "",
    };
    println!(
        "\nallow-policies-batch benchmarks, {} CPUs ({}), {}, commit {}{dirty}",
        machine["cpus"],
        fact("cpu_model"),
        fact("date_utc"),
        fact("git_commit").get(..12).unwrap_or("?"),
    );
    println!("{:width$}  {:>22}  {:>12}  met", "figure", "value", "goal");
    for r in rows {
        if r.value.is_empty() {
            println!("\n{}", r.figure);
            continue;
        }
        let (goal, met) = match &r.goal {
            Some(g) => (g.text, if g.met { "yes" } else { "NO" }),
            None => ("", ""),
        };
        println!("{:width$}  {:>22}  {:>12}  {met}", r.figure, r.value, goal);
    }
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = bench_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a work directory");
    dir
}

fn timed(command: &mut Command) -> (Duration, Output) {
    let started = Instant::now();
    let output = command.output().expect("the process starts");
    (started.elapsed(), output)
}

fn expect_document(output: &Output, prefix: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.starts_with(prefix),
        "task-host failed ({}): {stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn millis(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1e3, 3)
}

fn median_of(mut run: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS).map(|_| run()).collect();
    times.sort_unstable();
    times[(RUNS - 1) / 2]
}
