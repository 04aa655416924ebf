//! `task-host-temporal` refuses a Temporal frontend off loopback reached
//! without TLS unless `--insecure-http` is given, and then warns once. The
//! frontend's name ends in `.invalid`, which never resolves, and the config
//! given is one every task would reject, so the worker stops before it
//! connects anywhere.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

const WORKER: &str = env!("CARGO_BIN_EXE_task-host-temporal");
const TOKEN: &str = "temporal-TOKEN-never-printed-7e21";

/// One file per call: the tests run at once.
fn config_file() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "task-host-temporal-cleartext-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let config = format!(
        r#"{{"api_token":"{TOKEN}","account_id":"023e105f4ecef8ad9ca31a8372d0c353","max_retries":11}}"#
    );
    std::fs::write(&path, config).unwrap();
    path
}

fn worker(address: &str, extra: &[&str]) -> (Option<i32>, String) {
    let config = config_file();
    let out = Command::new(WORKER)
        .args(["--address", address, "--task-queue", "q"])
        .arg("--config")
        .arg(&config)
        .args(extra)
        .env_remove("TEMPORAL_API_KEY")
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&config);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(TOKEN), "{stderr}");
    (out.status.code(), stderr)
}

#[test]
fn a_frontend_off_loopback_without_tls_is_refused() {
    let (code, stderr) = worker("http://temporal.invalid:7233", &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--address http://temporal.invalid:7233")
            && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    assert!(!stderr.contains("/max_retries"), "{stderr}");
}

#[test]
fn insecure_http_lets_it_through_with_one_warning() {
    let (code, stderr) = worker("http://temporal.invalid:7233", &["--insecure-http"]);
    assert_eq!(code, Some(2), "{stderr}");
    let warnings = stderr.lines().filter(|l| l.contains("without TLS")).count();
    assert_eq!(warnings, 1, "{stderr}");
    assert!(stderr.contains("/max_retries"), "{stderr}");
}

#[test]
fn tls_or_loopback_needs_no_flag() {
    for (address, extra) in [
        ("http://temporal.invalid:7233", &["--tls"][..]),
        ("http://127.0.0.1:7233", &[][..]),
        ("http://localhost:7233", &[][..]),
    ] {
        let (code, stderr) = worker(address, extra);
        assert_eq!(code, Some(2), "{address}: {stderr}");
        assert!(!stderr.contains("without TLS"), "{address}: {stderr}");
        assert!(stderr.contains("/max_retries"), "{address}: {stderr}");
    }
}
