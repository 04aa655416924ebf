//! `task-host` as a user runs it: a process, files, stdout and exit codes.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

const TOKEN: &str = "cf-CLI-TOKEN-never-shown-31c7";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn task_host(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_task-host"))
        .args(args)
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .output()
        .expect("task-host runs")
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "exactly one document: {text}");
    serde_json::from_str(&text).unwrap()
}

#[test]
fn dry_run_of_the_example_uses_the_environment_token_and_redacts_it() {
    let config = examples().join("config.json");
    let input = examples().join("batch.json");
    let out = task_host(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["request"]["headers"]["Authorization"], "[redacted]");
    assert_eq!(doc["counts"]["posts"], 3);
    for stream in [&out.stdout, &out.stderr] {
        assert!(!String::from_utf8_lossy(stream).contains(TOKEN));
    }
}

#[test]
fn invalid_input_exits_1_with_the_error_document() {
    let dir = std::env::temp_dir().join(format!("task-host-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let input = dir.join("input.json");
    std::fs::write(&input, r#"{"deletes":[{"id":"nope"}]}"#).unwrap();
    let config = examples().join("config.json");
    let out = task_host(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["kind"], "invalid_input");
    assert_eq!(doc["error"]["errors"][0]["pointer"], "/deletes/0/id");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_command_that_cannot_run_exits_2_with_the_reason_on_stderr() {
    let out = task_host(&[
        "run",
        "--config",
        "/nonexistent/config.json",
        "--input",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.json"));

    let out = task_host(&["describe", "--component", "/nonexistent/x.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make build"));

    let out = task_host(&["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn describe_prints_the_schemas() {
    let out = task_host(&["describe"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = stdout_json(&out);
    assert!(doc["config"]["properties"]["timeout_ms"].is_object());
}

#[test]
fn a_guest_that_outlives_its_timeout_is_ended_soon_after_it() {
    // The hostile test component sleeps for an hour when asked to; the
    // config's timeout_ms, not the host's ten-minute default, decides when
    // the command gives up on it.
    let component = host_test::default_component_path().with_file_name("hostile_guest.wasm");
    assert!(component.is_file(), "run `make hostile` first");
    let dir = std::env::temp_dir().join(format!("task-host-cli-sleep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    std::fs::write(&config, r#"{"timeout_ms": 500}"#).unwrap();
    std::fs::write(&input, r#"{"mode": "sleep"}"#).unwrap();
    let started = std::time::Instant::now();
    let out = task_host(&[
        "run",
        "--component",
        component.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let elapsed = started.elapsed();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wall-clock limit"), "{stderr}");
    // 0.5 s of timeout and 5 s of grace; far below the default 620 s.
    assert!(
        elapsed >= std::time::Duration::from_millis(5500),
        "{elapsed:?}"
    );
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}
