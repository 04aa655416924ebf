//! A component that exports the same `allow-policies-batch` world as the real
//! task but misbehaves on request, so that the host's tests can check that
//! each misbehaviour is stopped with a clear error and that the host keeps
//! serving afterwards.
//!
//! `prepare`, `run-task`, `run-task-again` and `export-policies` read the
//! input as JSON, `{"mode": MODE, ...}`:
//!
//! | mode            | what it does                                                   |
//! |-----------------|----------------------------------------------------------------|
//! | `ok`            | returns `{"mode": "ok"}` at once                               |
//! | `spin`          | computes forever without calling the host                      |
//! | `alloc`         | allocates and fills 1 MiB blocks until the allocator gives up  |
//! | `grow`          | calls `memory.grow` directly until refused; reports the sizes  |
//! | `out-of-bounds` | stores one byte just past the end of its linear memory         |
//! | `sleep`         | blocks on a one-hour `wasi:clocks` timer                       |
//! | `hang`          | sends a GET to `url` with one-hour timeouts and waits for it   |
//! | `fetch`         | sends a GET to `url`; reports the status or the error code     |
//! | `recurse`       | recurses without end                                           |
//! | `snoop`         | looks for environment, arguments, files, stdin, sockets, DNS   |
//! | `hoard`         | piles up header fields resources held by the host              |
//! | `long-method`   | sets a custom method on many requests; counts the accepted     |
//! | `stderr`        | writes the config's `api_token` to stderr; returns `{"mode": "stderr"}` |
//! | `panic`         | panics                                                         |
//! | `unreachable`   | executes `unreachable`                                         |
//!
//! `fetch` and `hang` answer `denied` when the host refuses the destination
//! (`HTTP-request-denied`) and `transport` for any other error code; `url`
//! defaults to `https://example.com/`. `snoop`
//! takes `port`, a loopback TCP port it tries to connect to; `hoard` stops
//! by itself after `bytes` (60 KiB, or `value_bytes`, per resource).
//! `long-method` sets `method` (by default `bytes` letters, 16 MiB) as the
//! `method::other` of `count` (64) new outgoing requests, all kept until it
//! returns; with `url` it then sends a GET there while it still holds them.

#![cfg(target_arch = "wasm32")]

mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "allow-policies-batch",
        with: {
            "wasi:http/outgoing-handler@0.2.12": wasi::http::outgoing_handler,
            "wasi:http/types@0.2.12": wasi::http::types,
            "wasi:io/poll@0.2.12": wasi::io::poll,
            "wasi:io/streams@0.2.12": wasi::io::streams,
            "wasi:io/error@0.2.12": wasi::io::error,
            "wasi:clocks/monotonic-clock@0.2.12": wasi::clocks::monotonic_clock,
            "wasi:clocks/wall-clock@0.2.12": wasi::clocks::wall_clock,
        },
    });
}

use core::arch::wasm32;
use core::fmt::Write as _;
use core::hint::black_box;

use bindings::exports::workflow::http_task::task::{
    CallFailure, Document, EarlierAttempt, FieldError, Guest, TaskError, Verification,
};
use serde_json::{json, Value};
use wasi::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};

const PAGE: usize = 64 * 1024;
const MIB: usize = 1024 * 1024;
const NS_PER_S: u64 = 1_000_000_000;
const ONE_HOUR_NS: u64 = 3600 * NS_PER_S;

struct Hostile;

impl Guest for Hostile {
    fn describe() -> String {
        r#"{"config":{},"input":{},"output":{}}"#.to_string()
    }

    fn prepare(_config: String, input: String) -> Result<String, TaskError> {
        misbehave(&input)
    }

    fn run_task(config: String, input: String) -> Result<String, TaskError> {
        if input_mode(&input).as_deref() == Some("stderr") {
            return Ok(leak_to_stderr(&config));
        }
        misbehave(&input)
    }

    fn run_task_again(
        _config: String,
        input: String,
        _earlier: EarlierAttempt,
    ) -> Result<String, TaskError> {
        misbehave(&input)
    }

    fn export_policies(_config: String, input: String) -> Result<String, TaskError> {
        misbehave(&input)
    }
}

fn misbehave(input: &str) -> Result<String, TaskError> {
    let input: Value =
        serde_json::from_str(input).map_err(|e| invalid_input("", format!("not JSON: {e}")))?;
    let mode = input["mode"]
        .as_str()
        .ok_or_else(|| invalid_input("/mode", "expected a string".into()))?;
    let url = input["url"].as_str().unwrap_or("https://example.com/");
    match mode {
        "ok" => Ok(json!({"mode": "ok"}).to_string()),
        "spin" => spin(),
        "alloc" => alloc_without_bound(),
        "grow" => Ok(grow_memory()),
        "out-of-bounds" => store_past_the_end(),
        "sleep" => {
            wasi::clocks::monotonic_clock::subscribe_duration(ONE_HOUR_NS).block();
            Ok(json!({"mode": "sleep", "woke": true}).to_string())
        }
        "hang" => fetch(url, ONE_HOUR_NS),
        "fetch" => fetch(url, 5 * NS_PER_S),
        // A write where a host may allow only reads (`prepare`).
        "write" => match send(url, Method::Post, 5 * NS_PER_S) {
            Ok(status) => Ok(json!({"mode": "write", "status": status}).to_string()),
            Err(e) => Err(call_error(e)),
        },
        "recurse" => Ok(recurse(0, 1).to_string()),
        "snoop" => {
            let port = input["port"].as_u64().and_then(|p| u16::try_from(p).ok());
            let port = port.ok_or_else(|| invalid_input("/port", "expected a port".into()))?;
            Ok(snoop(port).to_string())
        }
        "hoard" => {
            let limit = input["bytes"].as_u64().unwrap_or(u64::MAX);
            let value_bytes = input["value_bytes"].as_u64().unwrap_or(60 * 1024);
            Ok(hoard(limit, value_bytes as usize).to_string())
        }
        "long-method" => {
            let name = match input["method"].as_str() {
                Some(name) => name.to_string(),
                None => "X".repeat(input["bytes"].as_u64().map_or(16 * MIB, |b| b as usize)),
            };
            let count = input["count"].as_u64().unwrap_or(64);
            long_method(name, count, input["url"].as_str())
        }
        "panic" => panic!("the hostile guest panics on purpose"),
        "unreachable" => wasm32::unreachable(),
        other => Err(invalid_input("/mode", format!("unknown mode {other:?}"))),
    }
}

/// The input's `mode`, when it is readable.
fn input_mode(input: &str) -> Option<String> {
    let input: Value = serde_json::from_str(input).ok()?;
    input["mode"].as_str().map(str::to_string)
}

/// Writes the config's token to stderr, whole and inside a longer line,
/// with a terminal escape besides: what a component that logs its
/// credentials would do.
fn leak_to_stderr(config: &str) -> String {
    use std::io::Write as _;
    let config: Value = serde_json::from_str(config).unwrap_or(Value::Null);
    let token = config["api_token"].as_str().unwrap_or("no-token-given");
    let mut stderr = std::io::stderr();
    let _ = writeln!(stderr, "{token}");
    let _ = writeln!(stderr, "\x1b[31mAuthorization: Bearer {token}\x1b[0m");
    let _ = stderr.flush();
    json!({"mode": "stderr"}).to_string()
}

fn invalid_input(pointer: &str, message: String) -> TaskError {
    TaskError::InvalidInput(vec![FieldError {
        document: Document::Input,
        pointer: pointer.to_string(),
        message,
        unlisted: 0,
    }])
}

/// Pure computation: no host call, so only epoch interruption can take
/// control away from it.
fn spin() -> ! {
    let mut x: u64 = 1;
    loop {
        x = black_box(
            x.wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407),
        );
    }
}

/// Every block is written, so the memory is really used, not just reserved.
/// Ends when the allocator cannot grow the memory any more and aborts.
fn alloc_without_bound() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        held.push(vec![0xa5; MIB]);
        black_box(&held);
    }
}

/// Grows the memory behind the allocator's back: one large request, then
/// 1 MiB steps, then single pages, until each is refused.
fn grow_memory() -> String {
    // Reserved up front: once the memory is full the allocator cannot grow.
    let mut report = String::with_capacity(512);
    let start_pages = wasm32::memory_size(0);
    let one_gib_refused = wasm32::memory_grow(0, 1024 * MIB / PAGE) == usize::MAX;
    while wasm32::memory_grow(0, MIB / PAGE) != usize::MAX {}
    while wasm32::memory_grow(0, 1) != usize::MAX {}
    let end_pages = wasm32::memory_size(0);
    let _ = write!(
        report,
        r#"{{"mode":"grow","start_pages":{start_pages},"one_gib_refused":{one_gib_refused},"end_pages":{end_pages},"end_bytes":{}}}"#,
        end_pages * PAGE
    );
    report
}

fn store_past_the_end() -> ! {
    let end = wasm32::memory_size(0) * PAGE;
    // SAFETY: none; the store is meant to be out of bounds, and the host
    // must trap on it instead of writing anywhere.
    unsafe { core::ptr::write_volatile(end as *mut u8, 1) };
    unreachable!("a store past the end of memory returned")
}

/// Each call keeps work for after the recursive one, so it cannot become a
/// loop; the depth is never reached.
#[inline(never)]
fn recurse(depth: u64, acc: u64) -> u64 {
    if depth == u64::MAX {
        return acc;
    }
    let deeper = recurse(black_box(depth + 1), acc ^ depth);
    deeper.wrapping_mul(31).wrapping_add(depth)
}

/// Makes the host hold guest data outside the guest's memory: header
/// fields resources, each with one large value, never dropped. Stops after
/// `limit` bytes or at the first error.
fn hoard(limit: u64, value_bytes: usize) -> Value {
    let value = vec![b'x'; value_bytes];
    let mut resources = 0u64;
    let mut bytes = 0u64;
    let mut error = None;
    while bytes < limit {
        let fields = Fields::new();
        if let Err(e) = fields.append("x-hoard", &value) {
            error = Some(format!("{e:?}"));
            break;
        }
        core::mem::forget(fields);
        resources += 1;
        bytes += value_bytes as u64;
    }
    json!({"mode": "hoard", "resources": resources, "bytes": bytes, "error": error})
}

/// Makes the host hold a custom method name per outgoing request: `count`
/// new requests, each given `name`, none dropped before the end. Reports how
/// many `set-method` calls the host accepted and the method it kept for the
/// first request. With `url`, a GET goes there once all the requests exist,
/// so that whoever answers it sees the host at its fullest.
fn long_method(name: String, count: u64, url: Option<&str>) -> Result<String, TaskError> {
    let method_bytes = name.len();
    let method = Method::Other(name);
    let mut requests = Vec::new();
    let mut accepted = 0u64;
    for _ in 0..count {
        let request = OutgoingRequest::new(Fields::new());
        if request.set_method(&method).is_ok() {
            accepted += 1;
        }
        requests.push(request);
    }
    let status = match url {
        Some(url) => Some(get(url, 5 * NS_PER_S).map_err(call_error)?),
        None => None,
    };
    let first_method = requests.first().map(|request| match request.method() {
        Method::Other(name) if name.len() <= 256 => name,
        Method::Other(name) => format!("other of {} bytes", name.len()),
        standard => format!("{standard:?}"),
    });
    drop(requests);
    Ok(json!({
        "mode": "long-method",
        "method_bytes": method_bytes,
        "calls": count,
        "accepted": accepted,
        "first_method": first_method,
        "status": status,
    })
    .to_string())
}

/// A GET to `url`: its status, or the error code as a task error.
fn fetch(url: &str, timeout_ns: u64) -> Result<String, TaskError> {
    match get(url, timeout_ns) {
        Ok(status) => Ok(json!({"mode": "fetch", "status": status}).to_string()),
        Err(e) => Err(call_error(e)),
    }
}

/// `denied` when the host refused the destination, `transport` otherwise.
fn call_error(e: ErrorCode) -> TaskError {
    match e {
        ErrorCode::HttpRequestDenied => TaskError::Denied(failure(
            "the host refused the destination: HTTP-request-denied".into(),
        )),
        e => TaskError::Transport(failure(format!("{e:?}"))),
    }
}

fn failure(message: String) -> CallFailure {
    CallFailure {
        message,
        retryable: false,
        may_have_applied: false,
        status: None,
        retry_after_ms: None,
        api_errors: Vec::new(),
        attempts: 0,
        verification: Verification::NotNeeded,
        first_sent_unix_ms: None,
        api_calls: 0,
    }
}

fn get(url: &str, timeout_ns: u64) -> Result<u16, ErrorCode> {
    send(url, Method::Get, timeout_ns)
}

/// Sends `method` to `url` with an empty body; the answer's status.
fn send(url: &str, method: Method, timeout_ns: u64) -> Result<u16, ErrorCode> {
    let unsendable = |what: &str| ErrorCode::InternalError(Some(what.to_string()));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| unsendable("the URL has no scheme"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let path = if path.is_empty() { "/" } else { path };

    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| unsendable("the host refused the request line"))?;
    let body = request
        .body()
        .map_err(|()| unsendable("the body was already taken"))?;
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(timeout_ns));
    let _ = options.set_first_byte_timeout(Some(timeout_ns));
    let _ = options.set_between_bytes_timeout(Some(timeout_ns));

    let response = wasi::http::outgoing_handler::handle(request, Some(options))?;
    // A refused request fails here too; its reason is on the response.
    let _ = OutgoingBody::finish(body, None);
    response.subscribe().block();
    match response.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(e))) => Err(e),
        Some(Err(())) | None => Err(unsendable("the response was not available")),
    }
}

/// What a guest can find out about the machine it runs on.
fn snoop(port: u16) -> Value {
    use wasi::cli::environment;
    use wasi::io::streams::StreamError;
    use wasi::sockets::network::{IpAddressFamily, IpSocketAddress, Ipv4SocketAddress};
    use wasi::sockets::{instance_network, ip_name_lookup, tcp_create_socket};

    let environment: Vec<String> = environment::get_environment()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let std_environment: Vec<String> = std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .collect();
    let preopens: Vec<String> = wasi::filesystem::preopens::get_directories()
        .into_iter()
        .map(|(_, path)| path)
        .collect();

    let mut readable = Vec::new();
    for path in ["/", ".", "/etc/passwd", "/proc/self/environ", "/tmp"] {
        if std::fs::read_dir(path).is_ok() || std::fs::read(path).is_ok() {
            readable.push(path);
        }
    }
    let file_error = std::fs::read("/etc/passwd").err().map(|e| e.to_string());

    let stdin = match wasi::cli::stdin::get_stdin().blocking_read(4096) {
        Ok(bytes) => format!("read {} bytes", bytes.len()),
        Err(StreamError::Closed) => "closed".to_string(),
        Err(StreamError::LastOperationFailed(e)) => format!("failed: {}", e.to_debug_string()),
    };

    let network = instance_network::instance_network();
    let tcp = match tcp_create_socket::create_tcp_socket(IpAddressFamily::Ipv4) {
        Err(e) => format!("create: {e:?}"),
        Ok(socket) => {
            let address = IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port,
                address: (127, 0, 0, 1),
            });
            match socket.start_connect(&network, address) {
                Err(e) => format!("start-connect: {e:?}"),
                Ok(()) => {
                    socket.subscribe().block();
                    match socket.finish_connect() {
                        Ok(_) => "connected".to_string(),
                        Err(e) => format!("finish-connect: {e:?}"),
                    }
                }
            }
        }
    };
    let dns = match ip_name_lookup::resolve_addresses(&network, "localhost") {
        Err(e) => format!("resolve: {e:?}"),
        Ok(stream) => {
            stream.subscribe().block();
            match stream.resolve_next_address() {
                Ok(Some(address)) => format!("resolved {address:?}"),
                Ok(None) => "no address".to_string(),
                Err(e) => format!("next-address: {e:?}"),
            }
        }
    };

    json!({
        "mode": "snoop",
        "environment": environment,
        "std_environment": std_environment,
        "arguments": environment::get_arguments(),
        "initial_cwd": environment::initial_cwd(),
        "preopens": preopens,
        "readable": readable,
        "file_error": file_error,
        "stdin": stdin,
        "tcp": tcp,
        "dns": dns,
    })
}

bindings::export!(Hostile with_types_in bindings);
