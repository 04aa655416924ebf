//! Figures 1-4 of `make bench`, in one process, with criterion:
//!
//! 1. latency of `run-task` through the host against a native hyper client
//!    sending the same request to the same loopback server;
//! 2. tasks per second with 1, 4 and 16 in flight through one host;
//! 3. instantiation alone;
//! 4. validation and body building, in wasm and natively;
//! 7. sync mode's plan for 10,000 against 10,000, in wasm and natively.
//!
//! Each iteration is timed here (`iter_custom`), so that median and p99 come
//! from single calls rather than from criterion's per-sample means. Figures
//! that are compared (component and native, wasm and native) are taken in
//! turn, call by call, so that drift in the machine's speed does not skew
//! their ratio. They go
//! to `target/bench/in_process.json`, which `whole_process` completes.

#[path = "support/native_client.rs"]
mod native_client;
mod support;
#[path = "support/sync_plan.rs"]
mod sync_plan;

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use allow_policies_batch::run::documents::preview_json;
use allow_policies_batch::run::prepare::prepare;
use bytes::Bytes;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use host_test::{TaskHost, TaskInstance, TaskOptions};
use serde_json::{json, Map, Value};
use tokio::runtime::Runtime;

use native_client::NativeClient;
use support::batch::Batch;
use support::server::{Captured, Server};
use support::{bench_dir, expect_success, round, run_in_flight};

const WARM_UP: Duration = Duration::from_millis(500);
/// Thousands of calls of a millisecond or less.
const MEASUREMENT: Duration = Duration::from_secs(2);
/// For the largest batch, whose calls take 20 to 50 ms (and 40 to 80 ms
/// for a turn of every contender): about 100 to 200 turns.
const LONG_MEASUREMENT: Duration = Duration::from_secs(8);
const IN_FLIGHT: [usize; 3] = [1, 4, 16];

/// One thing being timed, one call at a time. What a call returns is
/// dropped after its time is taken.
trait Contender {
    type Output;
    async fn once(&mut self) -> Self::Output;
}

struct ComponentTask<'a> {
    host: &'a TaskHost,
    opts: &'a TaskOptions,
    config: &'a str,
    input: &'a str,
}

impl Contender for ComponentTask<'_> {
    type Output = String;
    async fn once(&mut self) -> String {
        expect_success(self.host.run_task(self.opts, self.config, self.input).await)
    }
}

struct NativeHttp(NativeClient);

impl Contender for NativeHttp {
    type Output = Bytes;
    async fn once(&mut self) -> Bytes {
        self.0.send().await
    }
}

/// The whole task done natively: the component's own code validates and
/// builds the body, hyper sends it, and the reply is parsed as JSON. What
/// the component adds beyond this is the cost of running in wasm.
struct NativeTask<'a> {
    client: NativeClient,
    config: &'a str,
    input: &'a str,
}

impl Contender for NativeTask<'_> {
    type Output = Value;
    async fn once(&mut self) -> Value {
        let prepared = prepare(self.config, self.input).expect("a valid task");
        let body = prepared.request.expect("a batch that is sent").body;
        let reply = self.client.send_body(Bytes::from(body)).await;
        serde_json::from_slice(&reply).expect("a JSON reply")
    }
}

struct Instantiation<'a> {
    host: &'a TaskHost,
    opts: &'a TaskOptions,
}

impl Contender for Instantiation<'_> {
    type Output = TaskInstance;
    async fn once(&mut self) -> TaskInstance {
        self.host.instance(self.opts).await.expect("an instance")
    }
}

/// One instance serving every call: instantiation stays out of the figure.
struct WasmPrepare<'a> {
    instance: TaskInstance,
    config: &'a str,
    input: &'a str,
}

impl Contender for WasmPrepare<'_> {
    type Output = String;
    async fn once(&mut self) -> String {
        match self.instance.prepare(self.config, self.input).await {
            Ok(Ok(preview)) => preview,
            other => panic!("prepare failed in wasm: {other:?}"),
        }
    }
}

struct NativePrepare<'a> {
    config: &'a str,
    input: &'a str,
}

impl Contender for NativePrepare<'_> {
    type Output = String;
    async fn once(&mut self) -> String {
        let prepared = prepare(self.config, self.input).expect("a valid task");
        preview_json(&prepared)
    }
}

/// Sync mode's preview in the component: read (from memory), plan, show.
struct WasmSyncPreview<'a> {
    instance: TaskInstance,
    config: &'a str,
    input: &'a str,
}

impl Contender for WasmSyncPreview<'_> {
    type Output = String;
    async fn once(&mut self) -> String {
        match self.instance.prepare(self.config, self.input).await {
            Ok(Ok(preview)) => preview,
            other => panic!("the sync preview failed in wasm: {other:?}"),
        }
    }
}

struct NativeSyncPreview<'a> {
    config: &'a str,
    input: &'a str,
    pages: sync_plan::FromMemory,
}

impl Contender for NativeSyncPreview<'_> {
    type Output = String;
    async fn once(&mut self) -> String {
        sync_plan::native_preview(self.config, self.input, &mut self.pages)
    }
}

struct NativePlanOnly {
    spec: allow_policies_batch::params::sync_spec::SyncSpec,
    account: allow_policies_batch::api::stored::Snapshot,
}

impl Contender for NativePlanOnly {
    type Output = usize;
    async fn once(&mut self) -> usize {
        sync_plan::plan_only(&self.spec, &self.account)
    }
}

/// A [`Contender`] behind `dyn`, so that several can take turns. The
/// output comes back boxed, to be dropped once the call's time is taken.
trait Turn {
    fn take(&mut self) -> Pin<Box<dyn Future<Output = Box<dyn Any>> + '_>>;
}

impl<C: Contender> Turn for C
where
    C::Output: 'static,
{
    fn take(&mut self) -> Pin<Box<dyn Future<Output = Box<dyn Any>> + '_>> {
        Box::pin(async move { Box::new(self.once().await) as Box<dyn Any> })
    }
}

/// Times `contenders` (one or more) under criterion, one call of each in
/// turn per iteration, and returns the spread of each one's calls made
/// after the warm-up. Taking turns matters on a shared machine: its speed drifts by
/// up to two times over seconds, and a ratio of two figures timed one
/// after the other would measure the drift.
fn per_call_in_turn(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    measurement: Duration,
    runtime: &Runtime,
    contenders: &mut [&mut dyn Turn],
) -> Vec<Spread> {
    group.measurement_time(measurement);
    let mut kept: Vec<Vec<Duration>> = vec![Vec::new(); contenders.len()];
    let mut warm_until = None;
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let warm_until = *warm_until.get_or_insert_with(|| Instant::now() + WARM_UP);
            runtime.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    for (contender, kept) in contenders.iter_mut().zip(kept.iter_mut()) {
                        let started = Instant::now();
                        let output = contender.take().await;
                        let took = started.elapsed();
                        drop(output);
                        if started >= warm_until {
                            kept.push(took);
                        }
                        total += took;
                    }
                }
                total
            })
        })
    });
    kept.iter().map(|k| Spread::of(k)).collect()
}

/// Everything the figures need, set up once.
struct Bench {
    runtime: Runtime,
    server: Server,
    host: Arc<TaskHost>,
    opts: TaskOptions,
    config: Arc<str>,
}

impl Bench {
    /// The request the component sends for `input`, as the server read it,
    /// after checking the task's output and that native `prepare` builds the
    /// very same body.
    fn component_request(&self, input: &str) -> Captured {
        let prepared = prepare(&self.config, input).expect("the batch is valid");
        assert!(prepared.warnings.is_empty(), "{:?}", prepared.warnings);
        self.server.capture_next();
        let output = self
            .runtime
            .block_on(self.host.run_task(&self.opts, &self.config, input));
        let output: Value = serde_json::from_str(&expect_success(output)).expect("JSON output");
        let counts = serde_json::to_value(prepared.counts).expect("counts serialise");
        assert_eq!(output["counts"], counts, "{output}");
        let sent = self.server.captured().expect("the server read the request");
        let built = prepared.request.expect("a batch that is sent");
        assert_eq!(
            sent.body,
            built.body.as_bytes(),
            "wasm and native bodies differ"
        );
        sent
    }

    fn latency(&self, criterion: &mut Criterion) -> Value {
        let mut figures = Map::new();
        for batch in [Batch::One, Batch::Hundred, Batch::Largest] {
            let input = batch.input();
            let slow = slow_calls(batch);
            let sent = self.component_request(&input);
            let body_bytes = sent.body.len();
            let mut group = criterion.benchmark_group(format!("latency/{}", batch.key()));
            let mut component = ComponentTask {
                host: &self.host,
                opts: &self.opts,
                config: &self.config,
                input: &input,
            };
            let client = self
                .runtime
                .block_on(NativeClient::connect(self.server.port(), sent.clone()));
            let mut native = NativeHttp(client);
            let client = self
                .runtime
                .block_on(NativeClient::connect(self.server.port(), sent));
            let mut native_task = NativeTask {
                client,
                config: &self.config,
                input: &input,
            };
            let spreads = per_call_in_turn(
                &mut group,
                "component, native, native_task",
                slow,
                &self.runtime,
                &mut [&mut component, &mut native, &mut native_task],
            );
            group.finish();
            let [component, native, native_task] = <[Spread; 3]>::try_from(spreads)
                .unwrap_or_else(|_| unreachable!("three contenders"));
            let mut figure = comparison(batch, "component", &component, &native);
            figure["request_body_bytes"] = body_bytes.into();
            figure["native_task"] = native_task.to_json_us();
            figure["ratio_to_native_task_median"] = ratio(component.median, native_task.median);
            figures.insert(batch.key().into(), figure);
        }
        Value::Object(figures)
    }

    fn throughput(&self, criterion: &mut Criterion) -> Value {
        let input: Arc<str> = Batch::One.input().into();
        let mut figures = Map::new();
        let mut group = criterion.benchmark_group("throughput/1_item");
        group.throughput(Throughput::Elements(1));
        for in_flight in IN_FLIGHT {
            let (mut tasks, mut time) = (0u64, Duration::ZERO);
            let mut warm_until = None;
            group.bench_function(format!("{in_flight}_in_flight"), |b| {
                b.iter_custom(|iters| {
                    let warm_until = *warm_until.get_or_insert_with(|| Instant::now() + WARM_UP);
                    let started = Instant::now();
                    let took = self.runtime.block_on(run_in_flight(
                        &self.host,
                        &self.opts,
                        &self.config,
                        &input,
                        iters,
                        in_flight,
                    ));
                    if started >= warm_until {
                        tasks += iters;
                        time += took;
                    }
                    took
                })
            });
            figures.insert(
                format!("in_flight_{in_flight}"),
                json!({
                    "tasks_per_s": round(tasks as f64 / time.as_secs_f64(), 1),
                    "tasks": tasks,
                }),
            );
        }
        group.finish();
        Value::Object(figures)
    }

    fn instantiation(&self, criterion: &mut Criterion) -> Value {
        let mut group = criterion.benchmark_group("instantiation");
        let mut contender = Instantiation {
            host: &self.host,
            opts: &self.opts,
        };
        let spreads = per_call_in_turn(
            &mut group,
            "instance",
            MEASUREMENT,
            &self.runtime,
            &mut [&mut contender],
        );
        group.finish();
        let [spread] =
            <[Spread; 1]>::try_from(spreads).unwrap_or_else(|_| unreachable!("one contender"));
        spread.to_json_us()
    }

    fn validation(&self, criterion: &mut Criterion) -> Value {
        let mut figures = Map::new();
        for batch in [Batch::One, Batch::Largest] {
            let input = batch.input();
            let slow = slow_calls(batch);
            let instance = self.runtime.block_on(self.host.instance(&self.opts));
            let mut wasm = WasmPrepare {
                instance: instance.expect("an instance"),
                config: &self.config,
                input: &input,
            };
            let mut native = NativePrepare {
                config: &self.config,
                input: &input,
            };
            let (in_wasm, natively) = self.runtime.block_on(async {
                let in_wasm = wasm.once().await;
                (in_wasm, native.once().await)
            });
            assert_eq!(in_wasm, natively, "wasm and native previews differ");
            let mut group = criterion.benchmark_group(format!("validation/{}", batch.key()));
            let spreads = per_call_in_turn(
                &mut group,
                "wasm, native",
                slow,
                &self.runtime,
                &mut [&mut wasm, &mut native],
            );
            group.finish();
            let [wasm, native] =
                <[Spread; 2]>::try_from(spreads).unwrap_or_else(|_| unreachable!("two contenders"));
            let mut figure = comparison(batch, "wasm", &wasm, &native);
            figure["input_bytes"] = input.len().into();
            figures.insert(batch.key().into(), figure);
        }
        Value::Object(figures)
    }
}

impl Bench {
    fn sync_plan(&self, criterion: &mut Criterion) -> Value {
        let config = sync_plan::config();
        let input = sync_plan::input();
        let instance = self
            .runtime
            .block_on(self.host.instance(&sync_plan::options()))
            .expect("an instance");
        let mut wasm = WasmSyncPreview {
            instance,
            config: &config,
            input: &input,
        };
        let mut native = NativeSyncPreview {
            config: &config,
            input: &input,
            pages: sync_plan::FromMemory::new(),
        };
        let (spec, account) = sync_plan::parsed(&config, &input);
        let mut plan_only = NativePlanOnly { spec, account };
        let (in_wasm, natively) = self.runtime.block_on(async {
            let in_wasm = wasm.once().await;
            (in_wasm, native.once().await)
        });
        assert_eq!(in_wasm, natively, "wasm and native sync previews differ");
        let planned = self.runtime.block_on(plan_only.once());
        assert_eq!(planned, sync_plan::POLICIES / 2);

        let mut group = criterion.benchmark_group("sync_plan/10000_against_10000");
        let spreads = per_call_in_turn(
            &mut group,
            "wasm preview, native preview, native plan",
            LONG_MEASUREMENT,
            &self.runtime,
            &mut [&mut wasm, &mut native, &mut plan_only],
        );
        group.finish();
        let [wasm, native, plan] =
            <[Spread; 3]>::try_from(spreads).unwrap_or_else(|_| unreachable!("three contenders"));
        json!({
            "desired": sync_plan::POLICIES,
            "existing": sync_plan::POLICIES,
            "wasm": wasm.to_json_us(),
            "native": native.to_json_us(),
            "ratio_median": ratio(wasm.median, native.median),
            "plan_only_native": plan.to_json_us(),
        })
    }
}

fn slow_calls(batch: Batch) -> Duration {
    match batch {
        Batch::Largest => LONG_MEASUREMENT,
        Batch::One | Batch::Hundred => MEASUREMENT,
    }
}

fn ratio(a: Duration, b: Duration) -> Value {
    round(a.as_secs_f64() / b.as_secs_f64(), 3).into()
}

/// `ours` (named `name`) against the native contender; the ratio of the
/// medians is the headline.
fn comparison(batch: Batch, name: &str, ours: &Spread, native: &Spread) -> Value {
    json!({
        "batch": batch.label(),
        name: ours.to_json_us(),
        "native": native.to_json_us(),
        "ratio_median": ratio(ours.median, native.median),
        "ratio_p99": ratio(ours.p99, native.p99),
    })
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let server = Server::start();
    let port = server.port();
    let bench = Bench {
        runtime,
        server,
        host: Arc::new(support::load_host()),
        opts: support::task_options(port),
        config: support::config(port).into(),
    };
    // Short on purpose: the whole of `make bench` should take minutes.
    let mut criterion = Criterion::default()
        .warm_up_time(WARM_UP)
        .measurement_time(MEASUREMENT)
        .sample_size(10)
        .nresamples(10_000)
        .without_plots();

    let figures = json!({
        "latency": bench.latency(&mut criterion),
        "throughput_1_item_batch": bench.throughput(&mut criterion),
        "instantiation": bench.instantiation(&mut criterion),
        "validation": bench.validation(&mut criterion),
        "sync_plan": bench.sync_plan(&mut criterion),
        "requests_served": bench.server.requests(),
    });
    criterion.final_summary();
    let path = bench_dir().join(support::IN_PROCESS_FILE);
    support::write_json(&path, &figures);
    println!("in-process figures written to {}", path.display());
}

/// Median and 99th percentile of a set of durations (nearest rank).
struct Spread {
    median: Duration,
    p99: Duration,
    count: usize,
}

impl Spread {
    fn of(samples: &[Duration]) -> Spread {
        assert!(!samples.is_empty(), "no samples to summarise");
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let rank = |q: f64| {
            let index = (q * sorted.len() as f64).ceil() as usize;
            sorted[index.clamp(1, sorted.len()) - 1]
        };
        Spread {
            median: rank(0.5),
            p99: rank(0.99),
            count: sorted.len(),
        }
    }

    fn to_json_us(&self) -> Value {
        json!({
            "median_us": micros(self.median),
            "p99_us": micros(self.p99),
            "samples": self.count,
        })
    }
}

fn micros(d: Duration) -> f64 {
    round(d.as_secs_f64() * 1e6, 2)
}
