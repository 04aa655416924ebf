//! What one task may touch: a WASI context with no environment, arguments,
//! files or sockets (only stderr, so a guest panic reaches the console), a
//! resource table and a memory of bounded size, and the outbound hooks that
//! decide where its HTTP requests may go. A new [`TaskState`] is made for
//! every task, so nothing of one task is left for the next.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::outbound::hooks::TaskHooks;
use crate::outbound::pool::ConnectionPool;
use crate::{TaskOptions, MAX_RESOURCES, MEMORY_LIMIT};

pub(crate) struct TaskState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: TaskHooks,
    table: ResourceTable,
    /// Given to the store as its limiter; read back for the peak.
    pub(crate) limits: TaskLimits,
}

impl TaskState {
    /// Lets only `GET` requests out (during `prepare`), or every method.
    pub(crate) fn set_reads_only(&mut self, reads_only: bool) {
        self.hooks.reads_only = reads_only;
    }

    pub(crate) fn new(opts: &TaskOptions, connections: Arc<ConnectionPool>) -> Self {
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
