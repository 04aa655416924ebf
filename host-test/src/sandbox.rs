//! What one task may touch: a WASI context with no environment, arguments,
//! files or sockets, and a stderr the host keeps in memory (a few KiB) and
//! passes on redacted ([`GuestStderr`]), so that a guest's panic message
//! is seen but nothing it writes reaches the host's stderr as it is; a
//! resource table and a memory of bounded size, and the outbound hooks that
//! decide where its HTTP requests may go. A new [`TaskState`] is made for
//! every task, so nothing of one task is left for the next; [`TaskOptions`]
//! is what a caller chooses of it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use allow_policies_batch::run::redact::Secrets;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
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

/// The most of what a guest writes to stderr that the host keeps, per
/// instance: room for a panic message. Past it the guest finds the stream
/// closed.
pub const MAX_GUEST_STDERR: usize = 4096;

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
    /// What the guest wrote to its stderr.
    pub(crate) guest_stderr: GuestStderr,
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
        // No environment, arguments, files or sockets, and a stderr kept
        // in memory. Outgoing HTTP goes through `hooks`, not through
        // wasi:sockets.
        let guest_stderr = GuestStderr::new();
        let wasi = WasiCtxBuilder::new()
            .stderr(guest_stderr.pipe.clone())
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
            guest_stderr,
        }
    }
}

/// The guest's stderr: what it writes is kept in memory, up to
/// [`MAX_GUEST_STDERR`] bytes, and after each call the host prints what is
/// new as one line of its own stderr, escaped (no control character of the
/// guest's reaches a terminal) and redacted of the call's config
/// credentials and every secret the process knows ([`crate::printing`]).
/// A guest that writes the token it was given to stderr shows
/// `[redacted]`.
pub(crate) struct GuestStderr {
    pipe: MemoryOutputPipe,
    /// How many bytes of the pipe were already passed on.
    passed_on: usize,
}

impl GuestStderr {
    fn new() -> Self {
        GuestStderr {
            pipe: MemoryOutputPipe::new(MAX_GUEST_STDERR),
            passed_on: 0,
        }
    }

    /// Prints what the guest wrote since the last call, if anything;
    /// `config` is the text the call was given, whose credentials the
    /// guest knew.
    pub(crate) fn pass_on(&mut self, config: &str) {
        if let Some(line) = self.take_line(config) {
            crate::printing::stderr_line(&line);
        }
    }

    /// The line [`GuestStderr::pass_on`] prints, redacted and escaped.
    fn take_line(&mut self, config: &str) -> Option<String> {
        let written = self.pipe.contents();
        let new = written
            .get(self.passed_on..)
            .filter(|new| !new.is_empty())?;
        self.passed_on = written.len();
        let text = String::from_utf8_lossy(new);
        let text = crate::printing::shown(&Secrets::from_config(config).redact(&text));
        let cut = if written.len() >= MAX_GUEST_STDERR {
            format!(" (kept only its first {MAX_GUEST_STDERR} bytes)")
        } else {
            String::new()
        };
        Some(format!(
            "task-host: the component wrote to stderr{cut}: {}",
            crate::printing::escape_controls(&text)
        ))
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

    #[test]
    fn the_guests_stderr_is_passed_on_redacted_escaped_and_capped() {
        use wasmtime_wasi::p2::OutputStream as _;
        let token = "guest-stderr-token-9b1e44";
        let config = format!(r#"{{"api_token":"{token}"}}"#);
        let mut stderr = GuestStderr::new();
        assert_eq!(stderr.take_line(&config), None, "nothing written");
        let mut pipe = stderr.pipe.clone();
        pipe.write(format!("token {token}\n\x1b[2J").into())
            .unwrap();
        let line = stderr.take_line(&config).unwrap();
        assert!(!line.contains(token), "{line}");
        assert!(line.contains(r"token [redacted]\n\u{1b}[2J"), "{line}");
        assert_eq!(stderr.take_line(&config), None, "passed on once");
        let room = pipe.check_write().unwrap();
        pipe.write(vec![b'x'; room].into()).unwrap();
        assert!(pipe.check_write().is_err(), "closed once full");
        let cut = stderr.take_line(&config).unwrap();
        assert!(cut.contains("kept only its first 4096 bytes"), "{cut}");
    }
}
