//! The host against the test guest that misbehaves on request
//! (`host-test/hostile-guest`, built by `make hostile`), where the test
//! measures this process's resident memory. The other hostile-guest tests,
//! and the reasons for running each call on a thread and runtime of its own,
//! are in `tests/all/hostile_guest.rs`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::Duration;

use host_test::{
    default_component_path, AllowedHost, CannedResponse, CapturedRequest, TaskError, TaskHost,
    TaskOptions, MAX_METHOD_LEN,
};
use serde_json::{json, Value};

use super::{status_kib, MEASURING};

/// Every call's wall-clock limit.
const LIMIT: Duration = Duration::from_secs(2);

/// How much longer than its limit a call may take before the test decides
/// that nothing stopped it; generous, for a loaded machine.
const MARGIN: Duration = Duration::from_secs(30);

fn hostile() -> &'static TaskHost {
    static HOST: OnceLock<TaskHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let path = default_component_path().with_file_name("hostile_guest.wasm");
        assert!(
            path.is_file(),
            "{} is missing: run `make hostile`",
            path.display()
        );
        TaskHost::load(&path).expect("the hostile component loads")
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

/// One call of the hostile guest with `input`, on a thread and runtime of
/// its own, or a test failure if it has not finished within its wall-clock
/// limit plus [`MARGIN`].
fn misbehave(
    opts: TaskOptions,
    kind: Call,
    input: Value,
) -> anyhow::Result<Result<String, TaskError>> {
    let what = format!("{kind:?} {input}");
    let bound = opts.wall_clock_limit + MARGIN;
    let (done, result) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let input = input.to_string();
        let output = runtime.block_on(async {
            match kind {
                Call::Prepare => hostile().prepare(&opts, "{}", &input).await,
                Call::Run => hostile().run_task(&opts, "{}", &input).await,
            }
        });
        let _ = done.send(output);
    });
    result
        .recv_timeout(bound)
        .unwrap_or_else(|_| panic!("{what}: still running {bound:?} after it started"))
}

/// The hostile guest's host answers a well-behaved call, in both entry
/// points.
fn assert_still_serves() {
    for kind in [Call::Run, Call::Prepare] {
        let output = misbehave(opts(), kind, json!({"mode": "ok"}))
            .expect("the host runs the next call")
            .expect("the well-behaved mode succeeds");
        assert_eq!(
            serde_json::from_str::<Value>(&output).unwrap(),
            json!({"mode": "ok"})
        );
    }
}

/// This process's resident memory (`VmRSS`), in bytes.
fn resident_bytes() -> u64 {
    status_kib("VmRSS") * 1024
}

/// The report of a `long-method` call with `input`.
fn set_long_method(opts: TaskOptions, input: Value) -> Value {
    let output = misbehave(opts, Call::Run, input)
        .expect("set-method refusals are not host failures")
        .expect("the guest reports its calls");
    serde_json::from_str(&output).unwrap()
}

/// A custom method name stays in its request resource, in host memory
/// outside the guest's limit. A long one is refused and not kept: otherwise
/// 64 requests given a 16 MiB name would make the host hold 1 GiB for a guest
/// that uses 16 MiB of its own memory.
#[test]
fn long_custom_method_names_are_refused_without_holding_host_memory() {
    let _alone = MEASURING.blocking_lock();
    for (name, accepted) in [
        ("PURGE".to_string(), 4),
        ("M".repeat(MAX_METHOD_LEN), 4),
        ("M".repeat(MAX_METHOD_LEN + 1), 0),
    ] {
        let report = set_long_method(
            opts(),
            json!({"mode": "long-method", "method": name, "count": 4}),
        );
        assert_eq!(report["accepted"], accepted, "{report}");
        let kept = if accepted > 0 { &name } else { "Method::Get" };
        assert_eq!(report["first_method"], kept, "{report}");
    }

    // The guest holds all its requests while the host answers its GET: the
    // host is at its fullest then. The interceptor answers; nothing is sent.
    let name_bytes = 16 * 1024 * 1024;
    let requests = 64;
    let peak = Arc::new(AtomicU64::new(0));
    let sample = peak.clone();
    let opts = opts()
        .with_wall_clock_limit(Duration::from_secs(20))
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", 9).unwrap())
        .with_interceptor(move |_: CapturedRequest| {
            sample.store(resident_bytes(), Ordering::SeqCst);
            CannedResponse::new(204).into()
        });
    let before = resident_bytes();
    let report = set_long_method(
        opts,
        json!({"mode": "long-method", "bytes": name_bytes, "count": requests,
               "url": "http://127.0.0.1:9/"}),
    );
    let peak = peak.load(Ordering::SeqCst);
    let after = resident_bytes();
    eprintln!(
        "resident memory: {} MiB before, {} MiB with the requests held, {} MiB after",
        before >> 20,
        peak >> 20,
        after >> 20
    );
    assert_eq!(report["status"], 204, "{report}");
    assert_eq!(report["method_bytes"], name_bytes, "{report}");
    assert_eq!(report["calls"], requests, "{report}");
    assert_eq!(report["accepted"], 0, "{report}");
    assert_eq!(report["first_method"], "Method::Get", "{report}");
    // The guest's own copy of the name (16 MiB) and the host's transient
    // one while it refuses a call fit; one kept copy per request does not.
    let growth = peak.saturating_sub(before);
    assert!(
        growth <= 64 * 1024 * 1024,
        "the host's resident memory grew by {} MiB",
        growth >> 20
    );
    assert_still_serves();
}
