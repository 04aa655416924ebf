//! Host for the `allow-policies-batch` component: loads it once, runs each
//! task in a fresh sandbox that can reach only allowed hosts, and lets tests
//! answer the component's HTTP requests themselves.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

pub mod attempts;
mod compile_cache;
pub mod conductor;
mod failure;
pub mod fake_api;
mod outbound;
mod sandbox;
pub mod task_config;
pub mod worker;

pub use compile_cache::{CacheMode, CacheOutcome, CACHE_DIR_ENV};
pub use failure::{api_error_to_json, error_kind, error_to_json, field_error_to_json};
pub use outbound::allow::{is_allowed, AllowedHost};
pub use outbound::hooks::{
    CannedResponse, CapturedRequest, Intercepted, Interceptor, MAX_CAPTURED_BODY,
};
pub use outbound::limits::MAX_METHOD_LEN;
pub use outbound::pool::{IDLE_TIMEOUT, MAX_IDLE_PER_DESTINATION};
pub use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;

use outbound::pool::ConnectionPool;
use sandbox::TaskState;

pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "allow-policies-batch",
        exports: { default: async },
        additional_derives: [PartialEq, Eq],
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

pub use bindings::exports::workflow::http_task::task::{
    ApiError, CallFailure, Document, EarlierAttempt, FieldError, TaskError, Verification,
};

use bindings::{AllowPoliciesBatch, AllowPoliciesBatchPre};

/// Linear memory one task may use. The limit is per memory, so a task may
/// have only one (the component's own).
pub const MEMORY_LIMIT: usize = 256 * 1024 * 1024;

/// Resources (header fields, requests, streams, pollables...) one task may
/// hold at once. They live in host memory, outside [`MEMORY_LIMIT`]: a header
/// fields resource alone can hold 128 KiB, so without this bound a guest
/// could make the host hold far more than its own memory. The component
/// holds a handful at a time (a request, its body, the response, their
/// streams and pollables).
pub const MAX_RESOURCES: usize = 1024;

/// Tasks a host runs at once unless [`HostSettings`] says otherwise. Each
/// holds a slot of the instance pool (its memory, tables, instances and
/// async stack, reserved when the host loads and reused); a call beyond
/// this waits for a slot, within its own wall-clock limit, rather than
/// failing.
pub const DEFAULT_MAX_CONCURRENT_TASKS: u32 = 1000;

/// Core instances in one instance of a component: its modules and the
/// adapter shims the toolchain adds, with room to spare.
const CORE_INSTANCES_PER_TASK: u32 = 16;

/// Tables in one instance of a component (one per core module at most).
const TABLES_PER_TASK: u32 = 16;

/// Linear memory kept mapped when a task ends: the component's stack and
/// the heap of a typical batch.
const KEEP_RESIDENT: usize = 2 * 1024 * 1024;

/// Table memory kept mapped when a task ends (the component's table is a
/// few hundred entries).
const TABLE_KEEP_RESIDENT: usize = 64 * 1024;

/// A task's whole call, instantiation included: the contract's longest
/// `timeout_ms` (600 s) plus room to report.
pub const DEFAULT_WALL_CLOCK_LIMIT: Duration = Duration::from_secs(620);

/// How often a guest that computes without doing I/O hands control back, so
/// that the wall-clock limit can interrupt it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

const COMPONENT_FILE: &str = "allow_policies_batch.wasm";

/// Where `make build` leaves the component:
/// `<target>/wasm32-wasip2/release/allow_policies_batch.wasm`.
///
/// The target directory is looked for above the running executable
/// (`target/release/task-host`, `target/release/deps/<test>`,
/// `target/release/examples/<example>`), then in `CARGO_TARGET_DIR`; when the
/// file is in none of them, the workspace's own `target/` is returned so that
/// the error names the usual place.
pub fn default_component_path() -> PathBuf {
    let relative = Path::new("wasm32-wasip2")
        .join("release")
        .join(COMPONENT_FILE);
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(exe.ancestors().skip(1).take(3).map(|d| d.join(&relative)));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join(&relative));
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().unwrap_or(manifest_dir);
    let fallback = workspace.join("target").join(&relative);
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or(fallback)
}

/// How one task call is sandboxed.
#[derive(Clone)]
pub struct TaskOptions {
    /// Destinations the guest may send requests to; anything else is refused
    /// with `HTTP-request-denied` before it is sent or intercepted.
    pub allow_hosts: Vec<AllowedHost>,
    /// Answers allowed requests instead of the network when set.
    pub interceptor: Option<Arc<dyn Interceptor>>,
    /// Limit for the whole call; past it the call fails with
    /// [`WallClockLimitExceeded`].
    pub wall_clock_limit: Duration,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            allow_hosts: AllowedHost::defaults(),
            interceptor: None,
            wall_clock_limit: DEFAULT_WALL_CLOCK_LIMIT,
        }
    }
}

impl TaskOptions {
    pub fn with_allowed_host(mut self, host: AllowedHost) -> Self {
        self.allow_hosts.push(host);
        self
    }

    pub fn with_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptor = Some(Arc::new(interceptor));
        self
    }

    pub fn with_wall_clock_limit(mut self, limit: Duration) -> Self {
        self.wall_clock_limit = limit;
        self
    }
}

impl fmt::Debug for TaskOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskOptions")
            .field("allow_hosts", &self.allow_hosts)
            .field("interceptor", &self.interceptor.as_ref().map(|_| ".."))
            .field("wall_clock_limit", &self.wall_clock_limit)
            .finish()
    }
}

/// The error of a call that ran past [`TaskOptions::wall_clock_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClockLimitExceeded {
    pub limit: Duration,
}

impl fmt::Display for WallClockLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task exceeded its wall-clock limit")
    }
}

impl std::error::Error for WallClockLimitExceeded {}

/// How a host is set up when it loads the component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// Where compiled code is cached.
    pub cache: CacheMode,
    /// Tasks run at once (at least 1). Reserving the pool takes time at
    /// load, about 9 ms for the default 1000 on a 2-core machine: a process
    /// that runs one task, like `task-host run`, should ask for 1.
    pub max_concurrent_tasks: u32,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            cache: CacheMode::UserDefault,
            max_concurrent_tasks: DEFAULT_MAX_CONCURRENT_TASKS,
        }
    }
}

/// The component compiled and linked once; every call gets its own store.
pub struct TaskHost {
    pre: AllowPoliciesBatchPre<TaskState>,
    slots: Arc<Semaphore>,
    connections: Arc<ConnectionPool>,
    cache_outcome: CacheOutcome,
    cache_entry: Option<PathBuf>,
}

impl TaskHost {
    /// Loads the component, reusing compiled code from the user's cache
    /// directory ([`CacheMode::UserDefault`]).
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        Self::load_with_cache(path, CacheMode::UserDefault)
    }

    /// Like [`TaskHost::load`] with the compiled-code cache chosen by the
    /// caller. The cache never makes loading fail: without a usable
    /// directory the component is just compiled.
    pub fn load_with_cache(path: &Path, cache: CacheMode) -> anyhow::Result<Self> {
        let settings = HostSettings {
            cache,
            ..HostSettings::default()
        };
        Self::load_with_settings(path, &settings)
    }

    /// Like [`TaskHost::load`], set up as `settings` says.
    pub fn load_with_settings(path: &Path, settings: &HostSettings) -> anyhow::Result<Self> {
        let tasks = settings.max_concurrent_tasks;
        if tasks == 0 {
            bail!("max_concurrent_tasks must be at least 1");
        }
        let cache = &settings.cache;
        if !path.is_file() {
            bail!(
                "component not found at {}: build it with `make build`",
                path.display()
            );
        }
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_allocation(
            tasks,
        )));
        let engine = Engine::new(&config).map_err(wasm_error)?;

        let mut linker = Linker::<TaskState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_error)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(wasm_error)?;
        outbound::limits::limit_method_names(&mut linker).map_err(wasm_error)?;
        outbound::limits::free_request_options(&mut linker).map_err(wasm_error)?;

        let loaded = std::fs::read(path)
            .map_err(anyhow::Error::from)
            .and_then(|wasm| {
                compile_cache::load_component(&engine, &wasm, cache).map_err(wasm_error)
            })
            .with_context(|| format!("cannot load the component {}", path.display()))?;
        let component = loaded.component;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(AllowPoliciesBatchPre::new)
            .map_err(wasm_error)
            .with_context(|| {
                format!(
                    "{} is not an allow-policies-batch component this host can run",
                    path.display()
                )
            })?;
        spawn_epoch_ticker(&engine)?;
        Ok(Self {
            pre,
            connections: Arc::default(),
            slots: Arc::new(Semaphore::new(tasks as usize)),
            cache_outcome: loaded.outcome,
            cache_entry: loaded.entry,
        })
    }

    /// Connections kept open for the next task; see [`IDLE_TIMEOUT`].
    pub fn idle_connections(&self) -> usize {
        self.connections.idle_count()
    }

    /// Whether the compiled code came from the cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache_outcome
    }

    /// The cache file that holds this component's compiled code, if any.
    pub fn cache_entry(&self) -> Option<&Path> {
        self.cache_entry.as_deref()
    }

    /// `describe`: the JSON Schemas of config, input and output.
    pub async fn describe(&self, opts: &TaskOptions) -> anyhow::Result<String> {
        let limit = opts.wall_clock_limit;
        within_limit(limit, async { self.instance(opts).await?.describe().await }).await
    }

    /// `prepare`: validation and the request that would be sent, sending nothing.
    pub async fn prepare(
        &self,
        opts: &TaskOptions,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let limit = opts.wall_clock_limit;
        within_limit(limit, async {
            self.instance(opts).await?.prepare(config, input).await
        })
        .await
    }

    /// `run-task`: validation, the request (through `opts`' policy) and its outcome.
    pub async fn run_task(
        &self,
        opts: &TaskOptions,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let limit = opts.wall_clock_limit;
        within_limit(limit, async {
            self.instance(opts).await?.run_task(config, input).await
        })
        .await
    }

    /// `run-task-again`: `run-task` for a task an engine runs again after
    /// an attempt whose outcome it does not know; the account is read
    /// before anything is sent.
    pub async fn run_task_again(
        &self,
        opts: &TaskOptions,
        config: &str,
        input: &str,
        earlier: EarlierAttempt,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let limit = opts.wall_clock_limit;
        within_limit(limit, async {
            self.instance(opts)
                .await?
                .run_task_again(config, input, earlier)
                .await
        })
        .await
    }

    /// The task as `delivery` says it came: `run-task` the first time,
    /// `run-task-again` after an earlier attempt.
    pub async fn run_delivered(
        &self,
        opts: &TaskOptions,
        config: &str,
        input: &str,
        delivery: attempts::Delivery,
    ) -> anyhow::Result<Result<String, TaskError>> {
        match delivery {
            attempts::Delivery::First => self.run_task(opts, config, input).await,
            attempts::Delivery::Again(earlier) => {
                self.run_task_again(opts, config, input, earlier).await
            }
        }
    }

    /// A fresh sandbox and instance of the component, as each call above
    /// makes and drops. Keeping one serves several calls from the same
    /// instance (and memory), which is what benchmarks need to time the
    /// calls apart from instantiation; tasks should each get their own.
    pub async fn instance(&self, opts: &TaskOptions) -> anyhow::Result<TaskInstance> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .context("the host is shutting down")?;
        let mut store = Store::new(
            self.pre.engine(),
            TaskState::new(opts, self.connections.clone()),
        );
        store.limiter(|state| &mut state.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let task = self
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(wasm_error)
            .context("cannot instantiate the component")?;
        Ok(TaskInstance {
            store,
            task,
            wall_clock_limit: opts.wall_clock_limit,
            _slot: slot,
        })
    }
}

/// One instance of the component in its own store; see [`TaskHost::instance`].
/// Each call is bounded by the options' wall-clock limit.
pub struct TaskInstance {
    store: Store<TaskState>,
    task: AllowPoliciesBatch,
    wall_clock_limit: Duration,
    /// Dropped after the store (fields drop in order), so the pool slot is
    /// free when the next task gets the permit.
    _slot: OwnedSemaphorePermit,
}

impl TaskInstance {
    pub async fn describe(&mut self) -> anyhow::Result<String> {
        let task = self.task.workflow_http_task_task();
        within_limit(self.wall_clock_limit, async {
            task.call_describe(&mut self.store)
                .await
                .map_err(wasm_error)
        })
        .await
    }

    /// The preview. It may read (sync mode reads the account), but any
    /// request other than `GET` is refused as `HTTP-request-denied`, so a
    /// preview never writes, whatever the component does.
    pub async fn prepare(
        &mut self,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let task = self.task.workflow_http_task_task();
        self.store.data_mut().set_reads_only(true);
        let outcome = within_limit(self.wall_clock_limit, async {
            task.call_prepare(&mut self.store, config, input)
                .await
                .map_err(wasm_error)
        })
        .await;
        self.store.data_mut().set_reads_only(false);
        outcome
    }

    pub async fn run_task(
        &mut self,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let task = self.task.workflow_http_task_task();
        // A `prepare` whose future was dropped may have left reads only on.
        self.store.data_mut().set_reads_only(false);
        within_limit(self.wall_clock_limit, async {
            task.call_run_task(&mut self.store, config, input)
                .await
                .map_err(wasm_error)
        })
        .await
    }

    pub async fn run_task_again(
        &mut self,
        config: &str,
        input: &str,
        earlier: EarlierAttempt,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let task = self.task.workflow_http_task_task();
        self.store.data_mut().set_reads_only(false);
        within_limit(self.wall_clock_limit, async {
            task.call_run_task_again(&mut self.store, config, input, earlier)
                .await
                .map_err(wasm_error)
        })
        .await
    }

    /// The largest linear memory this instance has had, in bytes: wasm
    /// memories never shrink, so this is the guest's peak so far.
    pub fn peak_memory_bytes(&self) -> usize {
        self.store.data().limits.peak_memory
    }
}

/// The pooling allocator instantiates by handing out a slot reserved once
/// (and, for memory, reset by the kernel) instead of mapping and unmapping
/// memory, tables and a fiber stack for each task.
fn pooling_allocation(tasks: u32) -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(tasks)
        .total_core_instances(tasks.saturating_mul(CORE_INSTANCES_PER_TASK))
        .max_core_instances_per_component(CORE_INSTANCES_PER_TASK)
        .total_memories(tasks)
        .max_memories_per_component(1)
        .total_tables(tasks.saturating_mul(TABLES_PER_TASK))
        .max_tables_per_component(TABLES_PER_TASK)
        .total_stacks(tasks)
        .max_memory_size(MEMORY_LIMIT)
        // A returned slot is reset to the component's initial image. The
        // pages a task dirtied within the first KEEP_RESIDENT bytes are
        // reset in place, found with the PAGEMAP_SCAN ioctl where the
        // kernel has it (Linux 6.7), rather than unmapped and faulted back
        // in by the next task.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

async fn within_limit<R>(
    limit: Duration,
    call: impl Future<Output = anyhow::Result<R>>,
) -> anyhow::Result<R> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(WallClockLimitExceeded { limit }.into()),
    }
}

/// Epochs only advance when someone increments them; the thread stops once
/// the last user of the engine is gone.
fn spawn_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}

/// `wasmtime::Error` does not implement `std::error::Error`; boxing keeps its
/// cause chain and lets callers downcast, e.g. to `wasmtime::Trap`.
fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_options_allow_only_the_cloudflare_api() {
        let opts = TaskOptions::default();
        assert_eq!(opts.allow_hosts, AllowedHost::defaults());
        assert!(opts.interceptor.is_none());
        assert_eq!(opts.wall_clock_limit, Duration::from_secs(620));
    }

    #[test]
    fn default_component_path_names_the_release_component() {
        let path = default_component_path();
        assert!(path.ends_with("target/wasm32-wasip2/release/allow_policies_batch.wasm"));
    }

    #[test]
    fn a_missing_component_names_the_path_and_the_fix() {
        let missing = Path::new("/nonexistent/allow_policies_batch.wasm");
        let message = TaskHost::load(missing).err().unwrap().to_string();
        assert!(message.contains("/nonexistent/allow_policies_batch.wasm"));
        assert!(message.contains("make build"));
    }

    #[tokio::test]
    async fn the_wall_clock_limit_ends_a_call() {
        let limit = Duration::from_millis(20);
        let error = within_limit(limit, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "task exceeded its wall-clock limit");
        assert_eq!(
            error.downcast_ref::<WallClockLimitExceeded>(),
            Some(&WallClockLimitExceeded { limit })
        );
    }

    #[test]
    fn calls_can_be_spawned() {
        fn assert_send<T: Send>(_: T) {}
        fn futures(host: &TaskHost, opts: &TaskOptions) {
            assert_send(host.describe(opts));
            assert_send(host.prepare(opts, "{}", "{}"));
            assert_send(host.run_task(opts, "{}", "{}"));
        }
        let _ = futures;
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<TaskHost>();
        assert_sync::<TaskOptions>();
    }
}
