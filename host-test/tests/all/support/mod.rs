//! What the test areas share: the real component's host, the documents a
//! task takes, loopback servers, fresh directories and the checks every
//! area makes. Helpers that only one area uses stay in that area's module.

pub mod documents;
pub mod fake_conductor;
pub mod loopback_http;
pub mod misbehaving_server;
pub mod published_schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use host_test::fake_api::{FakeApi, FakeApiOptions};
use host_test::{default_component_path, TaskHost};
use jsonschema::Validator;
use serde_json::{json, Value};

/// The `task-host` binary of this package.
pub const TASK_HOST: &str = env!("CARGO_BIN_EXE_task-host");

/// The `task-host` binary as a test runs it: its records of batches that
/// may have applied are kept in a folder of this test process, not in the
/// user's state directory.
pub fn task_host_command() -> std::process::Command {
    static STATE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(|| {
        std::env::temp_dir().join(format!("task-host-tests-state-{}", std::process::id()))
    });
    let mut command = std::process::Command::new(TASK_HOST);
    command.env("TASK_HOST_STATE_DIR", state);
    command
}

/// An account id of the shape the API takes: 32 lower-case hex digits.
pub const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// One host of the real component, shared by the tests that need no host
/// settings of their own; they run on it in parallel, as tasks would. Its
/// rate gate is off: one test's canned 429 must not hold back another's
/// requests (tests/all/rate_gate.rs has hosts with the gate on).
pub fn host() -> &'static TaskHost {
    static HOST: OnceLock<TaskHost> = OnceLock::new();
    HOST.get_or_init(|| {
        let settings = host_test::HostSettings {
            rate_gate: false,
            ..Default::default()
        };
        TaskHost::load_with_settings(&default_component_path(), &settings)
            .expect("run `make component` first")
    })
}

/// The test component that misbehaves on request (`host-test/hostile-guest`).
pub fn hostile_component_path() -> PathBuf {
    let path = default_component_path().with_file_name("hostile_guest.wasm");
    assert!(
        path.is_file(),
        "{} is missing: run `make hostile`",
        path.display()
    );
    path
}

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// A JSON file of `examples/`.
pub fn read_example(relative: &str) -> Value {
    let path = examples_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// A complete policy to create: trust mail from the address `pattern`.
pub fn post(pattern: &str) -> Value {
    json!({"pattern": pattern, "pattern_type": "EMAIL", "is_regex": false, "is_exempt_recipient": false,
           "is_trusted_sender": true, "is_acceptable_sender": false, "verify_sender": true})
}

/// `base` with every field of the object `extra` set, added or replaced.
pub fn with_fields(mut base: Value, extra: Value) -> Value {
    for (key, value) in extra.as_object().expect("extra fields are an object") {
        base[key] = value.clone();
    }
    base
}

/// Fails if any of the `secrets` appears in `text`, which left the host.
pub fn assert_no_secret(text: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!text.contains(secret), "a secret leaked: {text}");
    }
}

/// The secret, or any stretch of 12 of its characters, in `text`. The
/// alphabet the tests draw secrets from has no `.` or `@`, so no fixed text
/// of the documents can match by chance.
pub fn leaked(secret: &str, text: &str) -> Option<String> {
    let chars: Vec<char> = secret.chars().collect();
    chars
        .windows(12)
        .map(|w| w.iter().collect::<String>())
        .find(|window| text.contains(window.as_str()))
}

/// The fake API on a free loopback port; with `token`, it takes no other.
pub async fn fake_api(token: Option<&str>) -> FakeApi {
    FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        ..FakeApiOptions::default()
    })
    .await
    .expect("the fake API starts on loopback")
}

/// A loopback port with nothing listening: one that was free a moment ago.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Every error a validator finds, as `at "instance path": message`, each
/// cut short (a message quotes the offending value, which may be long).
pub fn schema_errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let text = format!("at {:?}: {e}", e.instance_path().as_str());
            match text.char_indices().nth(300) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text,
            }
        })
        .collect()
}

/// A fresh directory under the system temp dir, removed when dropped. Its
/// name holds a label, this process's id and a counter: the tests of this
/// binary run in one process, and no two of them share a directory.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "task-host-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        // Left over by an earlier process with the same id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
