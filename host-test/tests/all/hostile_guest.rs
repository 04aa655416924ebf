//! The host against a guest that misbehaves on purpose
//! (`host-test/hostile-guest`, built by `make hostile`). Each misbehaviour
//! must end with a clear error within the call's wall-clock limit (plus a
//! generous margin), and the same `TaskHost` must serve the next task, as
//! must a host of the real component in the same process.
//!
//! Every call runs on a thread and a single-threaded runtime of its own, and
//! the test waits for it with a timeout of its own: a guest that never hands
//! control back to the runtime would keep the host's timer from firing, and
//! then the test fails instead of hanging.
//!
//! The test that measures this process's resident memory while a guest
//! sets long method names is in the `memory` binary
//! (`tests/memory/hostile_guest.rs`), away from the tests here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::support::{host as real, hostile_component_path, ACCOUNT};
use host_test::{
    error_kind, AllowedHost, CannedResponse, CapturedRequest, TaskError, TaskHost, TaskOptions,
    WallClockLimitExceeded, MAX_RESOURCES, MEMORY_LIMIT,
};
use serde_json::{json, Value};
use wasmtime::component::ResourceTableError;
use wasmtime::Trap;

/// Every call's wall-clock limit.
const LIMIT: Duration = Duration::from_secs(2);

/// How much longer than [`LIMIT`] a call may take before the test decides
/// that nothing stopped it; generous, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(30);

type CallResult = anyhow::Result<Result<String, TaskError>>;

/// One host of the hostile component, shared by the tests, which run in
/// parallel: each misbehaviour also happens next to the others.
fn hostile() -> &'static TaskHost {
    static HOST: OnceLock<TaskHost> = OnceLock::new();
    HOST.get_or_init(|| {
        TaskHost::load(&hostile_component_path()).expect("the hostile component loads")
    })
}

fn opts() -> TaskOptions {
    TaskOptions::default().with_wall_clock_limit(LIMIT)
}

#[derive(Clone, Copy, Debug)]
enum Call {
    Prepare,
    Run,
}

async fn call(host: &TaskHost, opts: &TaskOptions, call: Call, input: &Value) -> CallResult {
    let input = input.to_string();
    match call {
        Call::Prepare => host.prepare(opts, "{}", &input).await,
        Call::Run => host.run_task(opts, "{}", &input).await,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `future` on a thread and runtime of its own, or a test failure if it has
/// not finished within `limit` plus [`MARGIN`].
fn bounded<R: Send + 'static>(
    what: &str,
    limit: Duration,
    future: impl std::future::Future<Output = R> + Send + 'static,
) -> (R, Duration) {
    let (done, result) = mpsc::channel();
    let started = Instant::now();
    std::thread::spawn(move || {
        let output = runtime().block_on(future);
        let _ = done.send(output);
    });
    match result.recv_timeout(limit + MARGIN) {
        Ok(output) => (output, started.elapsed()),
        Err(_) => panic!(
            "{what}: still running {:?} after it started",
            limit + MARGIN
        ),
    }
}

/// One call of the hostile guest with `input`, bounded as above.
fn misbehave(host: &'static TaskHost, opts: TaskOptions, kind: Call, input: Value) -> CallResult {
    let what = format!("{kind:?} {input}");
    let limit = opts.wall_clock_limit;
    let (result, elapsed) = bounded(&what, limit, async move {
        call(host, &opts, kind, &input).await
    });
    eprintln!("{what}: ended after {elapsed:?}: {}", describe(&result));
    result
}

fn run(mode: &str) -> CallResult {
    misbehave(hostile(), opts(), Call::Run, json!({ "mode": mode }))
}

fn describe(result: &CallResult) -> String {
    match result {
        Ok(Ok(output)) => format!("output {output}"),
        Ok(Err(e)) => format!("task error {e:?}"),
        Err(e) => match trap(e) {
            Some(trap) => format!("trap: {trap}"),
            None => format!("host error: {}", e.root_cause()),
        },
    }
}

/// The trap anywhere in the error's chain.
fn trap(error: &anyhow::Error) -> Option<Trap> {
    error
        .downcast_ref::<Trap>()
        .or_else(|| error.chain().find_map(|e| e.downcast_ref::<Trap>()))
        .copied()
}

fn assert_trap(result: CallResult, expected: Trap) {
    let error = match result {
        Err(error) => error,
        Ok(outcome) => panic!("expected the trap {expected:?}, got {outcome:?}"),
    };
    assert_eq!(trap(&error), Some(expected), "{error:?}");
}

fn assert_wall_clock(result: CallResult, limit: Duration) {
    let error = match result {
        Err(error) => error,
        Ok(outcome) => panic!("expected the wall-clock limit, got {outcome:?}"),
    };
    assert_eq!(
        error.downcast_ref::<WallClockLimitExceeded>(),
        Some(&WallClockLimitExceeded { limit }),
        "{error:?}"
    );
    assert_eq!(error.to_string(), "task exceeded its wall-clock limit");
}

/// The host of the hostile guest answers a well-behaved call, in both entry
/// points.
fn assert_still_serves(host: &'static TaskHost) {
    for kind in [Call::Run, Call::Prepare] {
        let output = misbehave(host, opts(), kind, json!({"mode": "ok"}))
            .expect("the host runs the next call")
            .expect("the well-behaved mode succeeds");
        assert_eq!(
            serde_json::from_str::<Value>(&output).unwrap(),
            json!({"mode": "ok"})
        );
    }
}

/// The real component, its request answered in the host, returns its output.
async fn real_task_succeeds() {
    let opts = opts().with_interceptor(|_: CapturedRequest| {
        CannedResponse::json(
            200,
            &json!({"success": true, "errors": [], "messages": [],
                    "result": {"deletes": [{"id": 7}], "patches": [], "puts": [], "posts": []}}),
        )
        .into()
    });
    let config = json!({"api_token": "hostile-test-token", "account_id": ACCOUNT});
    let output = real()
        .run_task(
            &opts,
            &config.to_string(),
            &json!({"deletes": [{"id": 7}]}).to_string(),
        )
        .await
        .expect("the real component runs")
        .expect("the real task succeeds");
    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["success"], true);
    assert_eq!(output["result"]["deletes"], json!([{"id": 7}]));
}

#[test]
fn spinning_is_interrupted_by_epochs_and_ended_by_the_wall_clock() {
    for kind in [Call::Run, Call::Prepare] {
        let result = misbehave(hostile(), opts(), kind, json!({"mode": "spin"}));
        assert_wall_clock(result, LIMIT);
    }
    assert_still_serves(hostile());
}

/// On one single-threaded runtime, a spinning guest must leave room for the
/// other calls: the real component's task and a well-behaved hostile call
/// both finish while the spinning one is still running.
#[test]
fn a_spinning_guest_does_not_starve_other_calls_on_its_thread() {
    let ((spin, others_done, spin_done), _) = bounded("spin beside others", LIMIT, async {
        let spin = async {
            let result = call(hostile(), &opts(), Call::Run, &json!({"mode": "spin"})).await;
            (result, Instant::now())
        };
        let others = async {
            real_task_succeeds().await;
            let ok = call(hostile(), &opts(), Call::Run, &json!({"mode": "ok"})).await;
            assert_eq!(ok.unwrap().unwrap(), r#"{"mode":"ok"}"#);
            Instant::now()
        };
        let ((spin, spin_done), others_done) = tokio::join!(spin, others);
        (spin, others_done, spin_done)
    });
    assert_wall_clock(spin, LIMIT);
    assert!(
        others_done < spin_done,
        "the other calls finished only after the spinning one was stopped"
    );
}

#[test]
fn a_timer_of_an_hour_is_ended_by_the_wall_clock() {
    assert_wall_clock(run("sleep"), LIMIT);
    assert_still_serves(hostile());
}

/// A loopback server that accepts connections and reads them but never
/// answers; it reports each connection and when its client closed it.
struct SilentServer {
    port: u16,
    events: mpsc::Receiver<&'static str>,
}

impl SilentServer {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (send, events) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                if send.send("accepted").is_err() {
                    return;
                }
                let send = send.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(_) => {}
                        }
                    }
                    let _ = send.send("closed");
                });
            }
        });
        SilentServer { port, events }
    }

    fn next_event(&self, within: Duration) -> Option<&'static str> {
        self.events.recv_timeout(within).ok()
    }
}

#[test]
fn a_server_that_never_answers_is_ended_by_the_wall_clock_and_the_connection_closed() {
    let server = SilentServer::start();
    let opts = opts().with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port).unwrap());
    let url = format!("http://127.0.0.1:{}/never", server.port);
    let result = misbehave(
        hostile(),
        opts,
        Call::Run,
        json!({"mode": "hang", "url": url}),
    );
    assert_wall_clock(result, LIMIT);
    assert_eq!(server.next_event(MARGIN), Some("accepted"));
    // The stopped call's store is gone, and with it the connection.
    assert_eq!(
        server.next_event(MARGIN),
        Some("closed"),
        "the host kept the connection of a stopped call open"
    );
    assert_still_serves(hostile());
}

#[test]
fn allocating_without_bound_stops_at_the_memory_limit() {
    // The allocator finds the memory full and aborts: `unreachable`. Were
    // the limit not enforced, the guest would still be allocating when the
    // wall clock ended it.
    assert_trap(run("alloc"), Trap::UnreachableCodeReached);
    assert_still_serves(hostile());
}

#[test]
fn memory_grow_is_refused_exactly_at_the_memory_limit() {
    let output = run("grow")
        .expect("refused growth is not a trap")
        .expect("the guest reports its sizes");
    let report: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(report["one_gib_refused"], true, "{report}");
    let start = report["start_pages"].as_u64().unwrap() * 64 * 1024;
    assert!(start < MEMORY_LIMIT as u64, "{report}");
    assert_eq!(report["end_bytes"], MEMORY_LIMIT as u64, "{report}");
    assert_still_serves(hostile());
}

#[test]
fn a_store_past_the_end_of_memory_traps() {
    assert_trap(run("out-of-bounds"), Trap::MemoryOutOfBounds);
    assert_still_serves(hostile());
}

#[test]
fn unbounded_recursion_is_a_stack_overflow() {
    assert_trap(run("recurse"), Trap::StackOverflow);
    assert_still_serves(hostile());
}

#[test]
fn a_panic_and_unreachable_are_traps() {
    assert_trap(run("panic"), Trap::UnreachableCodeReached);
    assert_trap(run("unreachable"), Trap::UnreachableCodeReached);
    assert_still_serves(hostile());
}

/// Header fields live in host memory, outside the guest's memory limit;
/// a guest that piles them up is stopped at the resource limit. (Without it,
/// this guest would make the host hold its 512 MiB within the wall clock.)
#[test]
fn piling_up_host_resources_stops_at_the_resource_limit() {
    let value_bytes = 60 * 1024;
    let result = misbehave(
        hostile(),
        opts(),
        Call::Run,
        json!({"mode": "hoard", "bytes": 512 * 1024 * 1024, "value_bytes": value_bytes}),
    );
    let error = match result {
        Err(error) => error,
        Ok(outcome) => panic!("expected the resource limit, got {outcome:?}"),
    };
    assert!(
        error
            .chain()
            .any(|e| matches!(e.downcast_ref(), Some(ResourceTableError::Full))),
        "{error:?}"
    );
    // What the host held for the guest when it was stopped.
    assert!(MAX_RESOURCES * value_bytes < MEMORY_LIMIT / 4);
    assert_still_serves(hostile());
}

/// Counts the requests that get past the allow-list to the interceptor.
fn counting_interceptor(opts: TaskOptions) -> (TaskOptions, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let opts = opts.with_interceptor(move |_: CapturedRequest| {
        counter.fetch_add(1, Ordering::SeqCst);
        CannedResponse::new(204).into()
    });
    (opts, seen)
}

fn assert_denied(result: CallResult) {
    match result.expect("a refused request is not a host failure") {
        Err(e) => assert_eq!(error_kind(&e), "denied", "{e:?}"),
        Ok(output) => panic!("expected denied, got {output}"),
    }
}

/// A loopback listener that answers every connection with `204` and counts
/// them.
fn answering_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = answer_204(&mut stream);
        }
    });
    (port, connections)
}

fn answer_204(stream: &mut TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(MARGIN))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    stream.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
}

#[test]
fn destinations_not_allowed_are_denied_before_anything_is_sent() {
    // Not on the default list (the Cloudflare API only): refused before the
    // interceptor sees it, let alone the network.
    let (denied, seen) = counting_interceptor(opts());
    let result = misbehave(
        hostile(),
        denied,
        Call::Run,
        json!({"mode": "fetch", "url": "https://example.com/"}),
    );
    assert_denied(result);
    assert_eq!(seen.load(Ordering::SeqCst), 0);

    // A loopback server, first allowed (so the guest can reach it), then
    // with only another port allowed: that request must not connect.
    let (port, connections) = answering_server();
    let url = format!("http://127.0.0.1:{port}/");
    let allowed = opts().with_allowed_host(AllowedHost::with_port("127.0.0.1", port).unwrap());
    let output = misbehave(
        hostile(),
        allowed,
        Call::Run,
        json!({"mode": "fetch", "url": url}),
    )
    .unwrap()
    .expect("an allowed destination is reached");
    assert_eq!(
        serde_json::from_str::<Value>(&output).unwrap()["status"],
        204
    );
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    let other_port = if port == u16::MAX { port - 1 } else { port + 1 };
    let other = opts().with_allowed_host(AllowedHost::with_port("127.0.0.1", other_port).unwrap());
    let (other, seen) = counting_interceptor(other);
    let result = misbehave(
        hostile(),
        other,
        Call::Run,
        json!({"mode": "fetch", "url": url}),
    );
    assert_denied(result);
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // A connection that had been made would have been counted by now: the
    // call has ended, and the server counts on accept.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(connections.load(Ordering::SeqCst), 1);

    assert_still_serves(hostile());
}

#[test]
fn the_guest_finds_no_environment_files_stdin_or_sockets() {
    assert!(
        std::env::vars_os().next().is_some(),
        "the test process itself has an environment to leak"
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    // The guest's socket would go to this port, so allow HTTP to it too: the
    // HTTP allow-list must not open wasi:sockets.
    let opts = opts().with_allowed_host(AllowedHost::with_port("127.0.0.1", port).unwrap());
    let output = misbehave(
        hostile(),
        opts,
        Call::Run,
        json!({"mode": "snoop", "port": port}),
    )
    .unwrap()
    .expect("snooping is not an error");
    let report: Value = serde_json::from_str(&output).unwrap();

    assert_eq!(report["environment"], json!([]), "{report}");
    assert_eq!(report["std_environment"], json!([]), "{report}");
    assert_eq!(report["arguments"], json!([]), "{report}");
    assert_eq!(report["initial_cwd"], Value::Null, "{report}");
    assert_eq!(report["preopens"], json!([]), "{report}");
    assert_eq!(report["readable"], json!([]), "{report}");
    assert!(report["file_error"].is_string(), "{report}");
    assert_eq!(report["stdin"], "closed", "{report}");
    // No socket at all, let alone a connection; no name resolution.
    let tcp = report["tcp"].as_str().unwrap();
    assert!(
        tcp.starts_with("create: ") && tcp.contains("access-denied"),
        "{report}"
    );
    let dns = report["dns"].as_str().unwrap();
    assert!(dns.starts_with("resolve: "), "{report}");
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the guest's socket reached the listener: {other:?}"),
    }
    assert_still_serves(hostile());
}

/// A host of its own goes through every misbehaviour in turn and still
/// serves; so does the real component's host in the same process.
#[test]
fn one_host_survives_every_misbehaviour_in_turn() {
    let host: &'static TaskHost = Box::leak(Box::new(
        TaskHost::load(&hostile_component_path()).expect("the hostile component loads"),
    ));
    for (mode, expected) in [
        ("spin", "wall clock"),
        ("sleep", "wall clock"),
        ("alloc", "trap"),
        ("out-of-bounds", "trap"),
        ("recurse", "trap"),
        ("panic", "trap"),
        ("unreachable", "trap"),
        ("fetch", "denied"),
        ("hoard", "resource limit"),
        ("grow", "output"),
        ("ok", "output"),
    ] {
        let result = misbehave(host, opts(), Call::Run, json!({ "mode": mode }));
        let outcome = match &result {
            Err(e) if e.downcast_ref::<WallClockLimitExceeded>().is_some() => "wall clock",
            Err(e) if trap(e).is_some() => "trap",
            Err(e) if e.chain().any(|e| e.is::<ResourceTableError>()) => "resource limit",
            Err(e) => panic!("{mode}: unexpected host error {e:?}"),
            Ok(Err(e)) => error_kind(e),
            Ok(Ok(_)) => "output",
        };
        assert_eq!(outcome, expected, "{mode}: {}", describe(&result));
    }
    assert_still_serves(host);
    bounded("the real component", LIMIT, real_task_succeeds());
}

/// Each request hands the host its options; wasmtime-wasi-http 48 only reads
/// them, and the host removes them (`outbound/limits.rs`). Otherwise one
/// instance making a thousand requests (a sync reading many pages, say)
/// would find its resource table full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_requests_in_one_instance_leave_the_resource_table_as_it_was() {
    let opts = TaskOptions::default().with_interceptor(|_: CapturedRequest| {
        host_test::Intercepted::Respond(CannedResponse::new(200).with_body("{}"))
    });
    let input =
        json!({"mode": "fetch", "url": "https://api.cloudflare.com/client/v4/"}).to_string();
    let mut instance = hostile().instance(&opts).await.unwrap();
    for n in 0..2 * MAX_RESOURCES {
        match instance.run_task("{}", &input).await {
            Ok(Ok(_)) => {}
            other => panic!("request {n}: {other:?}"),
        }
    }
}

/// A guest that writes the token it was given to its stderr (whole, and in
/// a line with terminal escapes): `task-host run` passes the line on
/// redacted and escaped, and neither of its streams carries any 12
/// characters of the token or a raw escape.
#[test]
fn a_guest_writing_its_token_to_stderr_reaches_the_host_redacted() {
    let token = "guest-STDERR-token-planted-5c2a9e";
    let dir = crate::support::TempDir::new("guest-stderr");
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    std::fs::write(
        &config,
        json!({"api_token": token, "account_id": ACCOUNT}).to_string(),
    )
    .unwrap();
    std::fs::write(&input, json!({"mode": "stderr"}).to_string()).unwrap();
    let out = crate::support::task_host_command()
        .arg("run")
        .arg("--component")
        .arg(hostile_component_path())
        .arg("--config")
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .env_remove("CLOUDFLARE_API_TOKEN")
        .output()
        .expect("task-host runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stdout.trim(), r#"{"mode":"stderr"}"#);
    assert!(
        stderr.contains("the component wrote to stderr: [redacted]\\n"),
        "{stderr}"
    );
    assert!(stderr.contains("Bearer [redacted]"), "{stderr}");
    for (what, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert_eq!(
            crate::support::leaked(token, text),
            None,
            "the token is in {what}: {text}"
        );
        assert!(!text.contains('\x1b'), "a raw escape is in {what}: {text}");
    }
}
