//! What one task may touch: a WASI context with no environment, arguments,
//! files or sockets (only stderr, so a guest panic reaches the console), a
//! resource table and a memory of bounded size, and the outbound hooks that
//! decide where its HTTP requests may go. A new [`TaskState`] is made for
//! every task, so nothing of one task is left for the next; [`TaskOptions`]
//! is what a caller chooses of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::allow::AllowedHost;
use crate::outbound::hooks::{Interceptor, TaskHooks};
use crate::outbound::pool::ConnectionPool;
use crate::outbound::rate_gate::RateGate;
use crate::wall_clock::DEFAULT_WALL_CLOCK_LIMIT;

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

/// How one task call is sandboxed.
#[derive(Clone)]
pub struct TaskOptions {
    /// Destinations the guest may send requests to; anything else is refused
    /// with `HTTP-request-denied` before it is sent or intercepted.
    pub allow_hosts: Vec<AllowedHost>,
    /// Answers allowed requests instead of the network when set.
    pub interceptor: Option<Arc<dyn Interceptor>>,
    /// Limit for the whole call; past it the call fails with
    /// [`WallClockLimitExceeded`](crate::WallClockLimitExceeded).
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
    /// These options, with `host` allowed besides those already allowed.
    pub fn with_allowed_host(mut self, host: AllowedHost) -> Self {
        self.allow_hosts.push(host);
        self
    }

    /// These options, with allowed requests answered by `interceptor`.
    pub fn with_interceptor(mut self, interceptor: impl Interceptor) -> Self {
        self.interceptor = Some(Arc::new(interceptor));
        self
    }

    /// These options, with every call held to `limit`.
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

pub(crate) struct TaskState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: TaskHooks,
    table: ResourceTable,
    /// Given to the store as its limiter; read back for the peak.
    pub(crate) limits: TaskLimits,
}

impl TaskState {
    /// Lets only `GET` requests out (during `prepare` and
    /// `export-policies`), or every method.
    pub(crate) fn set_reads_only(&mut self, reads_only: bool) {
        self.hooks.reads_only = reads_only;
    }

    pub(crate) fn new(
        opts: &TaskOptions,
        connections: Arc<ConnectionPool>,
        rate_gate: Option<Arc<RateGate>>,
    ) -> Self {
        // Only stderr, so a guest panic message reaches the console: no
        // environment, arguments, files or sockets. Outgoing HTTP goes
        // through `hooks`, not through wasi:sockets.
        let wasi = WasiCtxBuilder::new()
            .inherit_stderr()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            hooks: TaskHooks {
                allow_hosts: opts.allow_hosts.clone().into(),
                reads_only: false,
                interceptor: opts.interceptor.clone(),
                connections,
                rate_gate,
            },
            table,
            limits: TaskLimits {
                limits: StoreLimitsBuilder::new()
                    .memory_size(MEMORY_LIMIT)
                    .memories(1)
                    .build(),
                peak_memory: 0,
            },
        }
    }
}

/// The store's limits, and the largest memory they have granted.
pub(crate) struct TaskLimits {
    limits: StoreLimits,
    pub(crate) peak_memory: usize,
}

impl ResourceLimiter for TaskLimits {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum)?;
        if granted {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(granted)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for TaskState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for TaskState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
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
}
