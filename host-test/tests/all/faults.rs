//! Fault injection: the real component, in the real host and through the
//! `task-host` binary, against a server on 127.0.0.1 that misbehaves on
//! purpose. Every scenario checks the classification (kind, status,
//! `retryable`, `may_have_applied`, `attempts`), how many requests reached
//! the server, that the task returned within its deadline, and that neither
//! credential appears anywhere in what the task or the command printed.

use crate::support::documents::Checked;
use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{assert_no_secret, host, post, unused_port, with_fields, TempDir, ACCOUNT};
use host_test::{error_to_json, AllowedHost, TaskOptions, CACHE_DIR_ENV};
use serde_json::{json, Value};
use std::ops::RangeInclusive;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

const TOKEN: &str = "cf-FAULT-TOKEN-must-not-leak-7d3a";
const EMAIL: &str = "automation@example.com";
const KEY: &str = "cf-FAULT-KEY-must-not-leak-51be";
/// The credentials the tests configure; neither may come back.
const SECRETS: &[&str] = &[TOKEN, KEY];

/// How far past `timeout_ms` a task may return: the host's own work around
/// the guest's deadline (instantiation, one last poll), with room for a
/// loaded CI machine.
const IN_PROCESS_MARGIN: Duration = Duration::from_millis(1500);
/// The same for a whole `task-host` process (start-up, loading the cached
/// compiled component).
const PROCESS_MARGIN: Duration = Duration::from_millis(3000);

const OK_BODY: &str = r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[{"id":2401}],"patches":[],"puts":[],"posts":[{"id":"b6c1a0de-5a4f-4f4a-9c9e-0e4a6f0d1c11"}]}}"#;

/// A cache directory of these tests' own, filled once so that the timed
/// `task-host` runs load compiled code instead of compiling. (Kept until
/// the process ends: a static is never dropped.)
fn cli_cache_dir() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = TempDir::new("faults");
        let out = crate::support::task_host_command()
            .arg("describe")
            .env(CACHE_DIR_ENV, dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        dir
    })
    .path()
}

fn small_batch() -> Value {
    json!({
        "account_id": ACCOUNT,
        "deletes": [{"id": 2401}],
        "posts": [post("alerts@monitoring.example.com")],
    })
}

/// A batch of about 5.5 MB, bigger than the socket buffers between the
/// host and a server that does not read it: 1000 posts and 1000 puts with
/// the longest patterns and comments, and 1000 patches.
fn large_batch() -> Value {
    let policy = |i: usize| {
        json!({"pattern": format!("^s{i:04}-{}$", "a".repeat(1000)),
               "pattern_type": "EMAIL", "is_regex": true, "is_exempt_recipient": false,
               "is_trusted_sender": true, "is_acceptable_sender": false,
               "verify_sender": true, "comments": "c".repeat(1024)})
    };
    let posts: Vec<Value> = (0..1000).map(policy).collect();
    let puts: Vec<Value> = (0..1000)
        .map(|i| {
            let mut put = policy(i + 1000);
            put["id"] = json!(i + 1);
            put
        })
        .collect();
    let patches: Vec<Value> = (0..1000)
        .map(|i| json!({"id": i + 1001, "comments": "p".repeat(1024)}))
        .collect();
    json!({"account_id": ACCOUNT, "posts": posts, "puts": puts, "patches": patches})
}

/// What a scenario must end in.
#[derive(Clone, Debug)]
enum Expected {
    Success {
        attempts: u64,
    },
    Failure {
        kind: &'static str,
        status: Option<u16>,
        retryable: bool,
        may_have_applied: bool,
        attempts: u64,
        retry_after_ms: Option<RangeInclusive<u64>>,
    },
}

impl Expected {
    fn attempts(&self) -> u64 {
        match self {
            Expected::Success { attempts } | Expected::Failure { attempts, .. } => *attempts,
        }
    }

    fn exit_code(&self) -> i32 {
        match self {
            Expected::Success { .. } => 0,
            Expected::Failure {
                retryable: true, ..
            } => 75,
            Expected::Failure { .. } => 1,
        }
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    scripts: Vec<Script>,
    /// The server's receive buffer, when it must be small.
    receive_buffer: Option<u32>,
    input: Value,
    timeout_ms: u64,
    max_retries: u64,
    max_response_bytes: Option<u64>,
    expected: Expected,
    /// Requests the server must have read in full.
    requests: usize,
    /// The task must not return sooner (a wait it had to honour).
    at_least: Duration,
    /// The task must return sooner than this when the scenario says so
    /// (a failure that should be seen early); else the deadline decides.
    at_most: Option<Duration>,
}

impl Scenario {
    fn new(scripts: Vec<Script>, expected: Expected) -> Self {
        let attempts = expected.attempts() as usize;
        Scenario {
            scripts,
            receive_buffer: None,
            input: small_batch(),
            timeout_ms: 2000,
            max_retries: 2,
            max_response_bytes: None,
            expected,
            requests: attempts,
            at_least: Duration::ZERO,
            at_most: None,
        }
    }

    fn config(&self, base_url: &str, credentials: Value) -> String {
        // The transport's classification alone: reading the account back
        // after an ambiguous failure is tested in `verification.rs`, in
        // front of a fake API that keeps an account.
        let mut config = json!({
            "base_url": base_url,
            "timeout_ms": self.timeout_ms,
            "max_retries": self.max_retries,
            "verify_after_failure": false,
        });
        if let Some(limit) = self.max_response_bytes {
            config["max_response_bytes"] = json!(limit);
        }
        with_fields(config, credentials).to_string()
    }

    /// Runs the scenario in the host, then through `task-host`, each
    /// against a server of its own.
    async fn check(self) {
        self.check_in_process().await;
        self.check_process().await;
    }

    async fn check_in_process(&self) {
        let server =
            MisbehavingServer::start_with_receive_buffer(self.scripts.clone(), self.receive_buffer)
                .await;
        let config = self.config(&server.base_url(), json!({ "api_token": TOKEN }));
        let options = TaskOptions::default()
            .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap())
            .with_wall_clock_limit(
                Duration::from_millis(self.timeout_ms) + Duration::from_secs(10),
            );
        let started = Instant::now();
        let outcome = host()
            .run_task(&options, &config, &self.input.to_string())
            .await
            .checked()
            .expect("the host completes the call");
        let elapsed = started.elapsed();

        let (document, printed) = match &outcome {
            Ok(text) => (serde_json::from_str::<Value>(text).unwrap(), text.clone()),
            Err(e) => {
                let doc = error_to_json(e);
                let printed = format!("{doc} {e:?}");
                (doc, printed)
            }
        };
        self.check_document(&document, outcome.is_ok(), "in process");
        self.check_timing(elapsed, IN_PROCESS_MARGIN, "in process");
        assert_no_secret(&printed, SECRETS);
        self.check_server(&server, "Authorization", &format!("Bearer {TOKEN}"));
    }

    async fn check_process(&self) {
        let server =
            MisbehavingServer::start_with_receive_buffer(self.scripts.clone(), self.receive_buffer)
                .await;
        let dir = TempDir::new("fault");
        let config_path = dir.join("config.json");
        let input_path = dir.join("input.json");
        let config = self.config(
            &server.base_url(),
            json!({ "api_email": EMAIL, "api_key": KEY }),
        );
        std::fs::write(&config_path, config).unwrap();
        std::fs::write(&input_path, self.input.to_string()).unwrap();
        let cache = cli_cache_dir();
        let port = server.port();
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            crate::support::task_host_command()
                .args(["run", "--config"])
                .arg(&config_path)
                .arg("--input")
                .arg(&input_path)
                .args(["--allow-host", &format!("127.0.0.1:{port}")])
                .env(CACHE_DIR_ENV, cache)
                .env_remove("CLOUDFLARE_API_TOKEN")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let elapsed = started.elapsed();
        drop(dir);

        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(self.expected.exit_code()),
            "stdout: {stdout}\nstderr: {stderr}"
        );
        assert_eq!(stdout.lines().count(), 1, "one document: {stdout}");
        let document: Value = serde_json::from_str(&stdout).unwrap();
        crate::support::documents::check_printed(&document);
        let succeeded = out.status.success();
        let document = if succeeded {
            document
        } else {
            document["error"].clone()
        };
        self.check_document(&document, succeeded, "task-host");
        self.check_timing(elapsed, PROCESS_MARGIN, "task-host");
        assert_no_secret(&stdout, SECRETS);
        assert_no_secret(&stderr, SECRETS);
        self.check_server(&server, "X-Auth-Key", KEY);
    }

    fn check_document(&self, doc: &Value, succeeded: bool, how: &str) {
        match &self.expected {
            Expected::Success { attempts } => {
                assert!(succeeded, "{how}: expected success, got {doc}");
                assert_eq!(doc["success"], true, "{how}: {doc}");
                assert_eq!(doc["attempts"], *attempts, "{how}: {doc}");
                assert_eq!(doc["status"], 200, "{how}: {doc}");
            }
            Expected::Failure {
                kind,
                status,
                retryable,
                may_have_applied,
                attempts,
                retry_after_ms,
            } => {
                assert!(!succeeded, "{how}: expected a failure, got {doc}");
                assert_eq!(doc["kind"], *kind, "{how}: {doc}");
                assert_eq!(doc["status"], json!(status), "{how}: {doc}");
                assert_eq!(doc["retryable"], *retryable, "{how}: {doc}");
                assert_eq!(doc["may_have_applied"], *may_have_applied, "{how}: {doc}");
                assert_eq!(doc["attempts"], *attempts, "{how}: {doc}");
                // The moment to run it again from, exactly when in doubt.
                assert_eq!(
                    doc["first_sent_unix_ms"].is_u64(),
                    *may_have_applied,
                    "{how}: {doc}"
                );
                match retry_after_ms {
                    Some(range) => {
                        let ms = doc["retry_after_ms"].as_u64().unwrap_or_else(|| {
                            panic!("{how}: expected retry_after_ms in {range:?}: {doc}")
                        });
                        assert!(range.contains(&ms), "{how}: {ms} not in {range:?}: {doc}");
                    }
                    None => assert!(doc["retry_after_ms"].is_null(), "{how}: {doc}"),
                }
                let verification = if *may_have_applied {
                    "switched_off"
                } else {
                    "not_needed"
                };
                assert_eq!(doc["verification"], verification, "{how}: {doc}");
                let message = doc["message"].as_str().unwrap_or_default();
                assert!(!message.is_empty(), "{how}: a failure says what happened");
            }
        }
    }

    fn check_timing(&self, elapsed: Duration, margin: Duration, how: &str) {
        let deadline = Duration::from_millis(self.timeout_ms);
        eprintln!("timing: {how}: {elapsed:?} of a {deadline:?} deadline");
        assert!(
            elapsed <= deadline + margin,
            "{how}: returned after {elapsed:?}, deadline {deadline:?}"
        );
        assert!(
            elapsed >= self.at_least,
            "{how}: returned after {elapsed:?}, sooner than the {:?} it had to wait",
            self.at_least
        );
        if let Some(at_most) = self.at_most {
            assert!(
                elapsed <= at_most + margin,
                "{how}: returned after {elapsed:?}; expected within {at_most:?}"
            );
        }
    }

    fn check_server(&self, server: &MisbehavingServer, header: &str, credential: &str) {
        let received = server.received();
        assert_eq!(
            received.len(),
            self.requests,
            "requests the server read: {:?}",
            received.iter().map(|r| &r.head).collect::<Vec<_>>()
        );
        for request in &received {
            assert!(request
                .head
                .starts_with("POST /client/v4/accounts/023e105f4ecef8ad9ca31a8372d0c353/email-security/settings/allow_policies/batch HTTP/1.1\r\n"));
            assert_eq!(request.header(header), Some(credential));
        }
    }
}

fn ok_head(length: usize) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
        .into_bytes()
}

fn ok() -> Vec<u8> {
    response("200 OK", &[("Content-Type", "application/json")], OK_BODY)
}

fn api_failure(
    kind: &'static str,
    status: u16,
    retryable: bool,
    may_have_applied: bool,
    attempts: u64,
) -> Expected {
    Expected::Failure {
        kind,
        status: Some(status),
        retryable,
        may_have_applied,
        attempts,
        retry_after_ms: None,
    }
}

fn transport_failure(may_have_applied: bool, attempts: u64) -> Expected {
    Expected::Failure {
        kind: "transport",
        status: None,
        retryable: true,
        may_have_applied,
        attempts,
        retry_after_ms: None,
    }
}

fn with_retry_after(expected: Expected, range: RangeInclusive<u64>) -> Expected {
    match expected {
        Expected::Failure {
            kind,
            status,
            retryable,
            may_have_applied,
            attempts,
            ..
        } => Expected::Failure {
            kind,
            status,
            retryable,
            may_have_applied,
            attempts,
            retry_after_ms: Some(range),
        },
        success => success,
    }
}

const ENVELOPE_429: &str = r#"{"success":false,"errors":[{"code":10000,"message":"Rate limited"}],"messages":[],"result":null}"#;

fn rate_limited(retry_after: Option<&str>) -> Vec<u8> {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(value) = retry_after {
        headers.push(("Retry-After", value));
    }
    response("429 Too Many Requests", &headers, ENVELOPE_429)
}

fn plain(status: &str, retry_after: Option<&str>, content_type: &str, body: &str) -> Vec<u8> {
    let mut headers = vec![("Content-Type", content_type)];
    if let Some(value) = retry_after {
        headers.push(("Retry-After", value));
    }
    response(status, &headers, body)
}

fn http_date(at: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let days = secs / 86_400;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {h:02}:{m:02}:{s:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize]
    )
}

#[test]
fn http_dates_are_formatted_as_servers_send_them() {
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
    assert_eq!(http_date(at), "Sun, 06 Nov 1994 08:49:37 GMT");
    let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
    assert_eq!(http_date(leap), "Thu, 29 Feb 2024 12:34:56 GMT");
}

// ---- Status codes ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_seconds_waits_then_succeeds() {
    let mut s = Scenario::new(
        vec![Script::Reply(rate_limited(Some("1"))), Script::Reply(ok())],
        Expected::Success { attempts: 2 },
    );
    s.timeout_ms = 5000;
    s.at_least = Duration::from_millis(1000);
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_with_retry_after_as_an_http_date_waits_then_succeeds() {
    // Dates have whole seconds: two seconds ahead is a wait of one to two.
    let date = http_date(SystemTime::now() + Duration::from_secs(2));
    let mut s = Scenario::new(
        vec![
            Script::Reply(rate_limited(Some(&date))),
            Script::Reply(ok()),
        ],
        Expected::Success { attempts: 2 },
    );
    s.timeout_ms = 6000;
    s.at_least = Duration::from_millis(900);
    s.check_in_process().await;
    // The process run gets a date of its own, made just before it.
    let date = http_date(SystemTime::now() + Duration::from_secs(2));
    s.scripts = vec![
        Script::Reply(rate_limited(Some(&date))),
        Script::Reply(ok()),
    ];
    s.check_process().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_asking_for_longer_than_the_deadline_returns_at_once() {
    let mut s = Scenario::new(
        vec![Script::Reply(rate_limited(Some("120")))],
        with_retry_after(api_failure("api", 429, true, false, 1), 120_000..=120_000),
    );
    s.timeout_ms = 5000;
    s.at_most = Some(Duration::from_millis(500));
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_on_every_attempt_gives_up_after_max_retries() {
    let mut s = Scenario::new(
        vec![Script::Reply(rate_limited(Some("0")))],
        with_retry_after(api_failure("api", 429, true, false, 3), 0..=0),
    );
    s.max_retries = 2;
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_408_is_retried_with_backoff() {
    let mut s = Scenario::new(
        vec![
            Script::Reply(plain("408 Request Timeout", None, "text/plain", "timeout")),
            Script::Reply(ok()),
        ],
        Expected::Success { attempts: 2 },
    );
    s.timeout_ms = 5000;
    // The first backoff is half a second plus jitter.
    s.at_least = Duration::from_millis(500);
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_with_retry_after_is_not_resent() {
    let s = Scenario::new(
        vec![
            Script::Reply(plain(
                "503 Service Unavailable",
                Some("7"),
                "text/plain",
                "down for maintenance",
            )),
            Script::Reply(ok()),
        ],
        with_retry_after(api_failure("api", 503, true, true, 1), 7000..=7000),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_unavailable_without_retry_after_is_not_resent() {
    let s = Scenario::new(
        vec![
            Script::Reply(plain("503 Service Unavailable", None, "text/plain", "")),
            Script::Reply(ok()),
        ],
        api_failure("api", 503, true, true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_server_error_is_not_resent() {
    let body = r#"{"success":false,"errors":[{"code":10001,"message":"Internal error"}],"messages":[],"result":null}"#;
    let s = Scenario::new(
        vec![
            Script::Reply(plain(
                "500 Internal Server Error",
                None,
                "application/json",
                body,
            )),
            Script::Reply(ok()),
        ],
        api_failure("api", 500, true, true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_gateway_with_an_html_page_is_not_resent() {
    let page = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>";
    let s = Scenario::new(
        vec![
            Script::Reply(plain("502 Bad Gateway", None, "text/html", page)),
            Script::Reply(ok()),
        ],
        api_failure("api", 502, true, true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_timeout_is_not_resent() {
    let s = Scenario::new(
        vec![
            Script::Reply(plain(
                "504 Gateway Timeout",
                None,
                "text/html",
                "<html>504</html>",
            )),
            Script::Reply(ok()),
        ],
        api_failure("api", 504, true, true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_early_answer_to_an_unread_body_is_classified_by_its_status() {
    // The server answers 413 after the request head and never reads the
    // body; the task stops sending and reports the 413 at once.
    let body = r#"{"success":false,"errors":[{"code":10413,"message":"Payload too large"}],"messages":[],"result":null}"#;
    let mut s = Scenario::new(
        vec![Script::EarlyReply(plain(
            "413 Payload Too Large",
            None,
            "application/json",
            body,
        ))],
        api_failure("api", 413, false, false, 1),
    );
    s.receive_buffer = Some(4096);
    s.input = large_batch();
    s.timeout_ms = 8000;
    s.at_most = Some(Duration::from_millis(2000));
    s.check().await;
}

// ---- Connections ----------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_and_never_applied() {
    // A port that was just free: nothing listens on it.
    let port = unused_port();
    // Three tries (the backoffs below show them), none of which left.
    let mut s = Scenario::new(vec![Script::Close], transport_failure(false, 0));
    s.timeout_ms = 5000;
    let base_url = format!("http://127.0.0.1:{port}/client/v4");
    let config = s.config(&base_url, json!({ "api_token": TOKEN }));
    let options = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", port).unwrap());
    let started = Instant::now();
    let outcome = host()
        .run_task(&options, &config, &s.input.to_string())
        .await
        .checked()
        .unwrap();
    let elapsed = started.elapsed();
    let err = outcome.expect_err("nothing listens");
    let doc = error_to_json(&err);
    s.check_document(&doc, false, "in process");
    s.check_timing(elapsed, IN_PROCESS_MARGIN, "in process");
    // Two backoffs of at least half a second and one second.
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");
    assert_no_secret(&format!("{doc} {err:?}"), SECRETS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_cut_off_at_the_deadline() {
    let mut s = Scenario::new(vec![Script::Silent], transport_failure(true, 1));
    s.timeout_ms = 1500;
    s.at_least = Duration::from_millis(1400);
    s.check().await;
}

/// The host's first-byte timeout is what remained of the deadline, so it
/// and the component's own deadline fire together. The deadline is named
/// whichever comes first, so every host reports the same document.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_at_the_deadline_is_reported_as_the_deadline() {
    for _ in 0..5 {
        let server = MisbehavingServer::start(vec![Script::Silent]).await;
        let config = json!({
            "base_url": server.base_url(),
            "api_token": TOKEN,
            "timeout_ms": 200,
            "max_retries": 0,
            "verify_after_failure": false,
        });
        let options = TaskOptions::default()
            .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap());
        let error = host()
            .run_task(&options, &config.to_string(), &small_batch().to_string())
            .await
            .checked()
            .expect("the host completes the call")
            .expect_err("no answer");
        let document = error_to_json(&error);
        let message = document["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "the request was sent but no complete response arrived (timeout_ms passed while waiting for the response); the batch may have been applied; to run it again safely, "
            ),
            "{document}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_then_a_stalled_body_on_2xx_is_a_bad_response_at_the_deadline() {
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"success\":true,".to_vec();
    let mut s = Scenario::new(
        vec![Script::Stall(head)],
        api_failure("bad_response", 200, false, true, 1),
    );
    s.timeout_ms = 1500;
    s.at_least = Duration::from_millis(1400);
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_then_a_stalled_body_on_429_keeps_the_retry_after() {
    let head = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 400\r\n\r\n{"
        .to_vec();
    let mut s = Scenario::new(
        vec![Script::Stall(head)],
        with_retry_after(api_failure("api", 429, true, false, 1), 30_000..=30_000),
    );
    s.timeout_ms = 1500;
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dripped_a_byte_at_a_time_within_the_deadline_succeeds() {
    let mut s = Scenario::new(
        vec![Script::Drip(Vec::new(), ok(), Duration::from_millis(2))],
        Expected::Success { attempts: 1 },
    );
    s.timeout_ms = 5000;
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_dripped_slower_than_the_deadline_is_cut_off() {
    let mut s = Scenario::new(
        vec![Script::Drip(
            ok_head(OK_BODY.len()),
            OK_BODY.as_bytes().to_vec(),
            Duration::from_millis(20),
        )],
        api_failure("bad_response", 200, false, true, 1),
    );
    s.timeout_ms = 2500;
    s.at_least = Duration::from_millis(2400);
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_in_the_middle_of_a_2xx_body_may_have_applied() {
    let mut bytes = ok();
    bytes.truncate(bytes.len() - 40);
    let s = Scenario::new(
        vec![Script::Reset(bytes), Script::Reply(ok())],
        api_failure("bad_response", 200, false, true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_before_any_answer_may_have_applied_and_is_not_resent() {
    let s = Scenario::new(
        vec![Script::Reset(Vec::new()), Script::Reply(ok())],
        transport_failure(true, 1),
    );
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_before_the_headers_may_have_applied_and_is_not_resent() {
    let s = Scenario::new(
        vec![Script::Close, Script::Reply(ok())],
        transport_failure(true, 1),
    );
    s.check().await;
}

// ---- Bodies ---------------------------------------------------------------

fn ok_with_body(body: &str) -> Vec<u8> {
    plain("200 OK", None, "application/json", body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_that_is_not_json_is_a_bad_response() {
    Scenario::new(
        vec![Script::Reply(ok_with_body("<html>OK</html>"))],
        api_failure("bad_response", 200, false, true, 1),
    )
    .check()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_with_truncated_json_is_a_bad_response() {
    Scenario::new(
        vec![Script::Reply(ok_with_body(&OK_BODY[..OK_BODY.len() / 2]))],
        api_failure("bad_response", 200, false, true, 1),
    )
    .check()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_with_json_that_is_not_an_envelope_is_a_bad_response() {
    for body in [r#"{"ok":true}"#, "[]", "null", r#"{"success":"yes"}"#] {
        Scenario::new(
            vec![Script::Reply(ok_with_body(body))],
            api_failure("bad_response", 200, false, true, 1),
        )
        .check()
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_with_success_false_is_a_terminal_api_error() {
    let body = r#"{"success":false,"errors":[{"code":1004,"message":"Policy not found","source":{"pointer":"/deletes/0/id"}}],"messages":[],"result":null}"#;
    Scenario::new(
        vec![Script::Reply(ok_with_body(body))],
        api_failure("api", 200, false, false, 1),
    )
    .check()
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_body_past_the_limit_is_not_read() {
    let body = format!(
        r#"{{"success":true,"errors":[],"messages":[],"result":"{}"}}"#,
        "x".repeat(100_000)
    );
    let mut s = Scenario::new(
        vec![Script::Reply(ok_with_body(&body))],
        api_failure("bad_response", 200, false, true, 1),
    );
    s.max_response_bytes = Some(10_000);
    s.check().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_read_only_to_the_limit() {
    // No length: the body runs until the connection closes, and the server
    // offers a gigabyte. The task stops at the limit and hangs up.
    let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    let mut s = Scenario::new(
        vec![Script::Flood(head.to_vec())],
        api_failure("bad_response", 200, false, true, 1),
    );
    s.max_response_bytes = Some(1 << 20);
    s.timeout_ms = 10_000;
    s.at_most = Some(Duration::from_secs(3));
    let server = MisbehavingServer::start(s.scripts.clone()).await;
    let config = s.config(&server.base_url(), json!({ "api_token": TOKEN }));
    let options = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap());
    let started = Instant::now();
    let err = host()
        .run_task(&options, &config, &s.input.to_string())
        .await
        .checked()
        .unwrap()
        .expect_err("a body past the limit is not a success");
    s.check_timing(started.elapsed(), IN_PROCESS_MARGIN, "in process");
    s.check_document(&error_to_json(&err), false, "in process");
    // Once the task hangs up, the server's writes fail within a few socket
    // buffers of the limit; it never gets near the gigabyte it offered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = server.flood_bytes();
    assert!(sent < 64 << 20, "the server wrote {sent} bytes");
    s.check_process().await;
}

// ---- The deadline, whatever the server does -------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_holds_across_retries_and_waits() {
    // Every answer asks for a retry in one second; a deadline of one and a
    // half seconds allows two tries, and the second wait would pass it.
    let mut s = Scenario::new(
        vec![Script::Reply(rate_limited(Some("1")))],
        with_retry_after(api_failure("api", 429, true, false, 2), 1000..=1000),
    );
    s.timeout_ms = 1500;
    s.max_retries = 10;
    s.at_least = Duration::from_millis(1000);
    s.check().await;
}
