//! The component compiled and linked once, and each call of it run in a
//! fresh sandbox of its own: loading (with the compiled-code cache), the
//! pool of instance slots that bounds how many tasks run at once, and the
//! five calls of the task interface, each held to its wall-clock limit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store,
};

use crate::attempts::Delivery;
use crate::bindings::{AllowPoliciesBatch, AllowPoliciesBatchPre, EarlierAttempt, TaskError};
use crate::compile_cache::{self, CacheMode, CacheOutcome};
use crate::outbound;
use crate::outbound::pool::ConnectionPool;
use crate::outbound::rate_gate::RateGate;
use crate::private_dir::Untrusted;
use crate::sandbox::{TaskOptions, TaskState, MEMORY_LIMIT};
use crate::wall_clock::{spawn_epoch_ticker, within_limit};

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

/// How a host is set up when it loads the component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSettings {
    /// Where compiled code is cached.
    pub cache: CacheMode,
    /// Tasks run at once (at least 1). Reserving the pool takes time at
    /// load, about 9 ms for the default 1000 on a 2-core machine: a process
    /// that runs one task, like `task-host run`, should ask for 1.
    pub max_concurrent_tasks: u32,
    /// Share what the API says of its rate limit among the host's tasks
    /// ([`crate::outbound::rate_gate`]): after a 429 none of them sends
    /// until its wait is over, and little quota left is spread out. On by
    /// default; tests whose tasks must not affect each other turn it off.
    pub rate_gate: bool,
}

impl Default for HostSettings {
    fn default() -> Self {
        Self {
            cache: CacheMode::UserDefault,
            max_concurrent_tasks: DEFAULT_MAX_CONCURRENT_TASKS,
            rate_gate: true,
        }
    }
}

/// The component compiled and linked once; every call gets its own store.
pub struct TaskHost {
    pre: AllowPoliciesBatchPre<TaskState>,
    slots: Arc<Semaphore>,
    connections: Arc<ConnectionPool>,
    rate_gate: Option<Arc<RateGate>>,
    cache_outcome: CacheOutcome,
    cache_entry: Option<PathBuf>,
    cache_refusal: Option<Untrusted>,
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
            rate_gate: settings.rate_gate.then(Arc::default),
            slots: Arc::new(Semaphore::new(tasks as usize)),
            cache_outcome: loaded.outcome,
            cache_entry: loaded.entry,
            cache_refusal: loaded.refused,
        })
    }

    /// Connections kept open for the next task; see
    /// [`IDLE_TIMEOUT`](crate::IDLE_TIMEOUT).
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

    /// Why the cache directory was not used, when it was there (or could
    /// be made) but another user could have written to it, or it could not
    /// be examined.
    pub fn cache_refusal(&self) -> Option<&Untrusted> {
        self.cache_refusal.as_ref()
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

    /// `export-policies`: the account's policies as a sync input. Like
    /// `prepare`, it may only read: any request other than `GET` is
    /// refused as `HTTP-request-denied`.
    pub async fn export_policies(
        &self,
        opts: &TaskOptions,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let limit = opts.wall_clock_limit;
        within_limit(limit, async {
            self.instance(opts)
                .await?
                .export_policies(config, input)
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
        delivery: Delivery,
    ) -> anyhow::Result<Result<String, TaskError>> {
        match delivery {
            Delivery::First => self.run_task(opts, config, input).await,
            Delivery::Again(earlier) => self.run_task_again(opts, config, input, earlier).await,
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
            TaskState::new(opts, self.connections.clone(), self.rate_gate.clone()),
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
        let outcome = within_limit(self.wall_clock_limit, async {
            task.call_describe(&mut self.store)
                .await
                .map_err(wasm_error)
        })
        .await;
        self.store.data_mut().guest_stderr.pass_on("");
        outcome
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
        self.store.data_mut().guest_stderr.pass_on(config);
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
        let outcome = within_limit(self.wall_clock_limit, async {
            task.call_run_task(&mut self.store, config, input)
                .await
                .map_err(wasm_error)
        })
        .await;
        self.store.data_mut().guest_stderr.pass_on(config);
        outcome
    }

    pub async fn run_task_again(
        &mut self,
        config: &str,
        input: &str,
        earlier: EarlierAttempt,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let task = self.task.workflow_http_task_task();
        self.store.data_mut().set_reads_only(false);
        let outcome = within_limit(self.wall_clock_limit, async {
            task.call_run_task_again(&mut self.store, config, input, earlier)
                .await
                .map_err(wasm_error)
        })
        .await;
        self.store.data_mut().guest_stderr.pass_on(config);
        outcome
    }

    /// The export. Like the preview it only reads, and the host makes sure
    /// of it: any request other than `GET` is refused as
    /// `HTTP-request-denied`.
    pub async fn export_policies(
        &mut self,
        config: &str,
        input: &str,
    ) -> anyhow::Result<Result<String, TaskError>> {
        let task = self.task.workflow_http_task_task();
        self.store.data_mut().set_reads_only(true);
        let outcome = within_limit(self.wall_clock_limit, async {
            task.call_export_policies(&mut self.store, config, input)
                .await
                .map_err(wasm_error)
        })
        .await;
        self.store.data_mut().set_reads_only(false);
        self.store.data_mut().guest_stderr.pass_on(config);
        outcome
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

/// `wasmtime::Error` does not implement `std::error::Error`; boxing keeps its
/// cause chain and lets callers downcast, e.g. to `wasmtime::Trap`.
fn wasm_error(e: wasmtime::Error) -> anyhow::Error {
    anyhow::Error::from_boxed(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_component_names_the_path_and_the_fix() {
        let missing = Path::new("/nonexistent/allow_policies_batch.wasm");
        let message = TaskHost::load(missing).err().unwrap().to_string();
        assert!(message.contains("/nonexistent/allow_policies_batch.wasm"));
        assert!(message.contains("make build"));
    }

    #[test]
    fn calls_can_be_spawned() {
        fn assert_send<T: Send>(_: T) {}
        fn futures(host: &TaskHost, opts: &TaskOptions) {
            assert_send(host.describe(opts));
            assert_send(host.prepare(opts, "{}", "{}"));
            assert_send(host.run_task(opts, "{}", "{}"));
            assert_send(host.export_policies(opts, "{}", "{}"));
        }
        let _ = futures;
        fn assert_sync<T: Send + Sync>() {}
        assert_sync::<TaskHost>();
        assert_sync::<TaskOptions>();
    }
}
