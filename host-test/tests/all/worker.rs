//! `task-host worker` as a Conductor deployment runs it: the real binary,
//! polling a stand-in Conductor server on loopback and running each task
//! through the component against the fake API, also on loopback.
//!
//! Conductor itself cannot run here; `support/fake_conductor.rs` stands in
//! for it, with the server's endpoints, answers and task lifecycle.

use crate::support::fake_conductor::{Endpoint, FakeConductor, Quote};
use crate::support::{self, post, with_fields, TempDir, ACCOUNT};
use host_test::conductor::MAX_REASON_CHARS;
use host_test::fake_api::{FakeApi, Fault};
use serde_json::{json, Value};
use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TASK_TYPE: &str = "allow_policies_batch";
/// Only in the config: no report, log line or output may carry it.
/// Its text shares no 8 characters with the worker's own words, which
/// would be redacted with it.
const TOKEN: &str = "wkr-TOKEN-marker-9f2c7a1e5b3d";
const WAIT: Duration = Duration::from_secs(30);

async fn fake_api() -> FakeApi {
    support::fake_api(Some(TOKEN)).await
}

/// The worker's config file, in a directory removed when the test ends.
struct ConfigFile {
    _dir: TempDir,
    path: PathBuf,
}

fn config_file(api: &FakeApi, extra: Value) -> ConfigFile {
    let config = json!({
        "api_token": TOKEN,
        "base_url": api.base_url(),
        "account_id": ACCOUNT,
        "timeout_ms": 20000,
    });
    let dir = TempDir::new("worker");
    let path = dir.join("config.json");
    std::fs::write(&path, with_fields(config, extra).to_string()).unwrap();
    ConfigFile { _dir: dir, path }
}

/// A running `task-host worker`, killed if a test ends without stopping it.
struct Worker {
    child: Option<Child>,
}

struct Stopped {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Stopped {
    /// What an exited worker printed.
    fn read(child: &mut Child, code: Option<i32>) -> Stopped {
        let mut stdout = String::new();
        let mut stderr = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        Stopped {
            code,
            stdout,
            stderr,
        }
    }
}

impl Worker {
    fn start(conductor: &FakeConductor, config: &ConfigFile, extra: &[&str]) -> Worker {
        Self::start_with_env(conductor, config, extra, &[])
    }

    /// [`Worker::start`], with these environment variables set.
    fn start_with_env(
        conductor: &FakeConductor,
        config: &ConfigFile,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Worker {
        let child = crate::support::task_host_command()
            .args([
                "worker",
                "--server",
                &conductor.url(),
                "--task-type",
                TASK_TYPE,
            ])
            .args(["--worker-id", "test-worker", "--poll-interval-ms", "50"])
            .args(["--allow-host", "127.0.0.1", "--config"])
            .arg(&config.path)
            .args(extra)
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("TASK_HOST_CONFIG")
            .env_remove("CONDUCTOR_AUTH_KEY")
            .env_remove("CONDUCTOR_AUTH_SECRET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("task-host starts");
        Worker { child: Some(child) }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Waits (off the async threads) for the process to exit on its own.
    async fn wait(mut self, limit: Duration) -> Stopped {
        let mut child = self.child.take().unwrap();
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let code = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status.code();
                }
                if started.elapsed() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("the worker did not exit within {limit:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            Stopped::read(&mut child, code)
        })
        .await
        .unwrap()
    }

    /// What the worker printed, if it has already exited on its own: a
    /// wait for something it should do can then say why it never came.
    fn exited(&mut self) -> Option<Stopped> {
        let child = self.child.as_mut()?;
        let code = child.try_wait().unwrap()?.code();
        let stopped = Stopped::read(child, code);
        self.child = None;
        Some(stopped)
    }

    /// SIGTERM, then the exit.
    async fn stop(self) -> Stopped {
        self.stop_with("-TERM").await
    }

    async fn stop_with(self, signal: &str) -> Stopped {
        self.signal(signal);
        self.wait(WAIT).await
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn policy(pattern: &str) -> Value {
    with_fields(
        post(pattern),
        json!({"comments": "added by the worker test"}),
    )
}

fn create(pattern: &str) -> Value {
    json!({ "account_id": ACCOUNT, "posts": [policy(pattern)] })
}

fn result_of<'a>(results: &'a [Value], task_id: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["taskId"] == task_id)
        .unwrap_or_else(|| panic!("no result for {task_id} in {results:?}"))
}

/// Neither the worker's output nor any report it made carries the token.
fn assert_nothing_reported_the_token(stopped: &Stopped, conductor: &FakeConductor) {
    for update in conductor.updates() {
        support::assert_no_secret(&update.text, &[TOKEN]);
    }
    support::assert_no_secret(&stopped.stdout, &[TOKEN]);
    support::assert_no_secret(&stopped.stderr, &[TOKEN]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_polled_run_and_reported_as_completed() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    // As servers before the batch poll's empty list answered.
    conductor.answer_empty_polls_with_204();
    let worker = Worker::start(&conductor, &config, &["--concurrency", "3"]);

    // The worker is already waiting in a poll when the tasks arrive.
    conductor
        .wait_until(WAIT, "a first poll", |c| !c.polls().is_empty())
        .await;
    conductor.enqueue(TASK_TYPE, "create", create("alice@example.com"));
    // What Conductor sends for a workflow started without some inputs.
    conductor.enqueue(
        TASK_TYPE,
        "nothing",
        json!({ "account_id": null, "deletes": null, "patches": null, "puts": null, "posts": null }),
    );
    conductor
        .wait_until(WAIT, "two results", |c| c.accepted().len() == 2)
        .await;
    let polls_before = conductor.polls().len();
    conductor
        .wait_until(WAIT, "an empty poll after the work", |c| {
            c.polls().iter().skip(polls_before).any(|p| p.status == 204)
        })
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);

    let results = conductor.accepted();
    let created = result_of(&results, "create");
    assert_eq!(created["status"], "COMPLETED");
    assert_eq!(created["workflowInstanceId"], "wf-create");
    assert_eq!(created["workerId"], "test-worker");
    assert_eq!(created["outputData"]["success"], true);
    assert_eq!(created["outputData"]["counts"]["posts"], 1);
    assert_eq!(
        created["outputData"]["result"]["posts"][0]["pattern"],
        "alice@example.com"
    );
    assert!(created.get("reasonForIncompletion").is_none());
    let skipped = result_of(&results, "nothing");
    assert_eq!(skipped["status"], "COMPLETED");
    assert_eq!(skipped["outputData"]["skipped"], true);
    assert_eq!(
        api.policies(ACCOUNT).len(),
        1,
        "the batch reached the API once"
    );

    for poll in conductor.polls() {
        assert_eq!(poll.task_type, TASK_TYPE);
        assert_eq!(poll.worker_id, "test-worker");
        assert!((1..=3).contains(&poll.count), "{poll:?}");
        assert!(poll.timeout_ms > 0, "{poll:?}");
    }
    let summary: Value = serde_json::from_str(stopped.stdout.trim()).unwrap();
    assert_eq!(summary["completed"], 2);
    assert_eq!(summary["unreported"], 0);
    assert_nothing_reported_the_token(&stopped, &conductor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_so_that_conductors_retry_policy_fits() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({ "max_retries": 0 }));
    // One task at a time, so the faults meet the tasks in queue order. The
    // 429 comes last of those that send: after it, the worker's rate gate
    // holds every request back for its 7 s.
    api.push_fault(Fault::status(400, vec![]));
    api.push_fault(Fault::status(503, vec![]));
    // Applied, then a proxy's 502: found applied by reading back.
    api.push_fault(Fault::AfterApplying(Box::new(Fault::status(502, vec![]))));
    // A delete lost on the way, no retry left: found not applied.
    api.push_fault(Fault::Reset);
    api.push_fault(Fault::status(429, vec![("retry-after".into(), "7".into())]));
    let kept = api
        .seed(ACCOUNT, [policy("kept@example.com")])
        .expect("seeded")[0]["id"]
        .clone();
    conductor.enqueue(TASK_TYPE, "refused", create("carol@example.com"));
    conductor.enqueue(TASK_TYPE, "unavailable", create("erin@example.com"));
    conductor.enqueue(TASK_TYPE, "verified-applied", create("frank@example.com"));
    conductor.enqueue(
        TASK_TYPE,
        "verified-not-applied",
        json!({ "account_id": ACCOUNT, "deletes": [{ "id": kept }] }),
    );
    conductor.enqueue(TASK_TYPE, "rate-limited", create("bob@example.com"));
    let mut invalid = json!({ "account_id": ACCOUNT, "posts": [] });
    for i in 0..40 {
        let mut item = policy(&format!("user{i}@example.com"));
        item["pattern_type"] = json!("EMAILS");
        invalid["posts"].as_array_mut().unwrap().push(item);
    }
    conductor.enqueue(TASK_TYPE, "invalid", invalid);
    // A large input Conductor kept in external storage: inputData is empty,
    // and running it would report an empty batch as done.
    conductor.enqueue_raw(json!({
        "taskType": TASK_TYPE,
        "taskId": "external",
        "workflowInstanceId": "wf-external",
        "inputData": {},
        "externalInputPayloadStoragePath": "task/input/external.json",
    }));
    // Not a task at all: it cannot be reported, and costs no other task.
    conductor.enqueue_raw(json!({ "taskType": TASK_TYPE, "inputData": {} }));
    conductor.enqueue(TASK_TYPE, "after-junk", json!({ "account_id": ACCOUNT }));
    let worker = Worker::start(&conductor, &config, &["--concurrency", "1"]);
    conductor
        .wait_until(WAIT, "eight results", |c| c.accepted().len() == 8)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let results = conductor.accepted();

    let limited = result_of(&results, "rate-limited");
    assert_eq!(limited["status"], "FAILED", "{limited}");
    assert_eq!(limited["callbackAfterSeconds"], 7);
    assert_eq!(limited["outputData"]["error"]["kind"], "api");
    assert_eq!(limited["outputData"]["error"]["retry_after_ms"], 7000);
    assert!(limited["reasonForIncompletion"]
        .as_str()
        .unwrap()
        .starts_with("api: "));

    let refused = result_of(&results, "refused");
    assert_eq!(refused["status"], "FAILED_WITH_TERMINAL_ERROR", "{refused}");
    assert!(refused.get("callbackAfterSeconds").is_none());
    assert_eq!(refused["outputData"]["error"]["status"], 400);

    // A 5xx may have applied the batch; reading back saw nothing yet, and
    // the batch creates policies, so the task does not send it again. It
    // goes to Conductor's retry, which reads the account before sending.
    let unavailable = result_of(&results, "unavailable");
    assert_eq!(unavailable["status"], "FAILED", "{unavailable}");
    assert_eq!(unavailable["outputData"]["error"]["retryable"], true);
    assert_eq!(unavailable["outputData"]["error"]["may_have_applied"], true);
    assert_eq!(
        unavailable["outputData"]["error"]["verification"],
        "not_visible"
    );

    // Read back: applied is a success; not applied cannot have applied,
    // and Conductor's retry policy may take it.
    let applied = result_of(&results, "verified-applied");
    assert_eq!(applied["status"], "COMPLETED", "{applied}");
    assert_eq!(applied["outputData"]["verification"]["outcome"], "applied");
    assert_eq!(
        applied["outputData"]["verification"]["after"]["status"],
        502
    );
    let not_applied = result_of(&results, "verified-not-applied");
    assert_eq!(not_applied["status"], "FAILED", "{not_applied}");
    assert_eq!(
        not_applied["outputData"]["error"]["may_have_applied"],
        false
    );
    assert_eq!(
        not_applied["outputData"]["error"]["verification"],
        "not_visible"
    );

    let external = result_of(&results, "external");
    assert_eq!(
        external["status"], "FAILED_WITH_TERMINAL_ERROR",
        "{external}"
    );
    assert!(external["reasonForIncompletion"]
        .as_str()
        .unwrap()
        .contains("external payload storage"));
    assert_eq!(result_of(&results, "after-junk")["status"], "COMPLETED");
    assert!(stopped.stderr.contains("not a task"), "{}", stopped.stderr);

    let invalid = result_of(&results, "invalid");
    assert_eq!(invalid["status"], "FAILED_WITH_TERMINAL_ERROR");
    let errors = invalid["outputData"]["error"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 40);
    assert_eq!(errors[0]["pointer"], "/posts/0/pattern_type");
    let reason = invalid["reasonForIncompletion"].as_str().unwrap();
    assert!(reason.chars().count() <= MAX_REASON_CHARS, "{reason}");
    assert!(
        reason.starts_with("invalid_input: the input has 40 problems; /posts/0/pattern_type: "),
        "{reason}"
    );
    let patterns: Vec<Value> = api
        .policies(ACCOUNT)
        .into_iter()
        .map(|p| p["pattern"].clone())
        .collect();
    assert_eq!(
        patterns,
        [json!("kept@example.com"), json!("frank@example.com")],
        "only the verified batch was applied"
    );
    let summary: Value = serde_json::from_str(stopped.stdout.trim()).unwrap();
    assert_eq!(
        (
            summary["failed"].as_u64(),
            summary["failed_with_terminal_error"].as_u64()
        ),
        (Some(3), Some(3))
    );
    // Current servers answer an empty batch poll with an empty list.
    assert!(
        conductor
            .polls()
            .iter()
            .any(|p| p.status == 200 && p.handed_out == 0),
        "{:?}",
        conductor.polls()
    );
    assert_nothing_reported_the_token(&stopped, &conductor);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_more_tasks_are_in_hand_than_the_concurrency() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    for i in 0..6 {
        api.push_fault(Fault::Delay(Duration::from_millis(300)));
        conductor.enqueue(
            TASK_TYPE,
            &format!("t{i}"),
            create(&format!("u{i}@example.com")),
        );
    }
    let worker = Worker::start(&conductor, &config, &["--concurrency", "2"]);
    conductor
        .wait_until(WAIT, "six results", |c| c.accepted().len() == 6)
        .await;
    let stopped = worker.stop_with("-INT").await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert!(conductor
        .accepted()
        .iter()
        .all(|r| r["status"] == "COMPLETED"));
    // The first poll asks for two and gets two: both slots are used, and
    // never a third.
    assert_eq!(conductor.max_in_hand(), 2);
    assert!(conductor.polls().iter().all(|p| (1..=2).contains(&p.count)));
    assert_eq!(api.policies(ACCOUNT).len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_and_reports_the_tasks_in_hand() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    for i in 0..2 {
        api.push_fault(Fault::Delay(Duration::from_millis(1500)));
        conductor.enqueue(
            TASK_TYPE,
            &format!("slow{i}"),
            create(&format!("s{i}@example.com")),
        );
    }
    conductor.enqueue(TASK_TYPE, "left-queued", create("later@example.com"));
    let worker = Worker::start(&conductor, &config, &["--concurrency", "2"]);
    conductor
        .wait_until(WAIT, "two tasks in hand", |c| c.in_hand() == 2)
        .await;
    worker.signal("-TERM");
    let polls_at_signal = conductor.polls().len();
    let stopped = worker.wait(WAIT).await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);

    let results = conductor.accepted();
    assert_eq!(results.len(), 2, "{results:?}");
    for id in ["slow0", "slow1"] {
        assert_eq!(result_of(&results, id)["status"], "COMPLETED");
    }
    assert_eq!(
        conductor.polls().len(),
        polls_at_signal,
        "no poll after the signal"
    );
    assert_eq!(conductor.in_hand(), 0);
    let summary: Value = serde_json::from_str(stopped.stdout.trim()).unwrap();
    assert_eq!(summary["completed"], 2);
    assert!(
        stopped.stderr.contains("finishing 2 task(s) in hand"),
        "{}",
        stopped.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stumbles_is_polled_again_and_reported_to_again() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    conductor.fail_next_polls(2);
    conductor.fail_next_updates(2);
    conductor.enqueue(TASK_TYPE, "persistent", create("dave@example.com"));
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "the result", |c| c.accepted().len() == 1)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let statuses: Vec<u16> = conductor.updates().iter().map(|u| u.status).collect();
    assert_eq!(
        statuses,
        [500, 500, 200],
        "the same result, sent until taken"
    );
    let polls: Vec<u16> = conductor.polls().iter().take(3).map(|p| p.status).collect();
    assert_eq!(polls, [500, 500, 200]);
    assert_eq!(api.policies(ACCOUNT).len(), 1, "the task ran once");
    assert!(stopped
        .stderr
        .contains("polling allow_policies_batch failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_config_every_task_would_reject_does_not_start() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(
        &api,
        json!({ "base_url": "http://api.example.test/client/v4", "max_retries": 11 }),
    );
    let worker = Worker::start(&conductor, &config, &[]);
    let stopped = worker.wait(WAIT).await;
    assert_eq!(stopped.code, Some(2), "{}", stopped.stderr);
    assert!(stopped.stderr.contains("/base_url"), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("/max_retries"),
        "{}",
        stopped.stderr
    );
    assert!(conductor.polls().is_empty());
    assert!(!stopped.stderr.contains(TOKEN));

    let unreachable = crate::support::task_host_command()
        .args([
            "worker",
            "--server",
            "ftp://127.0.0.1:1",
            "--task-type",
            TASK_TYPE,
        ])
        .arg("--config")
        .arg(&config.path)
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("--server"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_ends_the_worker_at_once() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    api.push_fault(Fault::Delay(Duration::from_secs(20)));
    conductor.enqueue(TASK_TYPE, "slow", create("slow@example.com"));
    let worker = Worker::start(&conductor, &config, &["--concurrency", "1"]);
    conductor
        .wait_until(WAIT, "the task in hand", |c| c.in_hand() == 1)
        .await;
    worker.signal("-TERM");
    // The first signal is seen (it is logged) before the second is sent,
    // so the two are not merged into one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    worker.signal("-INT");
    let stopped = worker.wait(Duration::from_secs(10)).await;
    assert_eq!(stopped.code, Some(130), "{}", stopped.stderr);
    assert!(conductor.accepted().is_empty(), "nothing was reported");
    assert!(stopped.stdout.is_empty(), "no summary: {}", stopped.stdout);
    assert!(stopped
        .stderr
        .contains("stopped before the tasks in hand were reported"));
}

/// A report the server never takes is sent again, with growing pauses,
/// until shortly before the task's response timeout (after it the server
/// has timed the task out and ignores reports); then it is counted, and
/// the exit says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_the_server_never_takes_is_sent_until_its_response_timeout() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({ "timeout_ms": 3000 }));
    conductor.fail_next_updates(usize::MAX);
    conductor.enqueue_with(
        TASK_TYPE,
        "lost",
        create("frank@example.com"),
        json!({ "responseTimeoutSeconds": 5 }),
    );
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "a first report", |c| !c.updates().is_empty())
        .await;
    let polled_at = conductor.task("lost").unwrap()["updateTime"]
        .as_u64()
        .unwrap();
    // Past the response timeout, nothing more is sent.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let sent = conductor.updates();
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(75), "{}", stopped.stderr);
    let summary: Value = serde_json::from_str(stopped.stdout.trim()).unwrap();
    assert_eq!(summary["unreported"], 1);
    assert!(sent.len() >= 3, "sent again after pauses: {}", sent.len());
    assert_eq!(
        conductor.updates().len(),
        sent.len(),
        "none after the limit"
    );
    let last = sent.last().unwrap().at_unix_ms;
    assert!(
        last < polled_at + 5_000,
        "the last attempt, {} ms after the poll, is before the response timeout",
        last - polled_at
    );
    assert!(
        stopped
            .stderr
            .contains("the report failed until shortly before its response timeout"),
        "{}",
        stopped.stderr
    );
}

/// Conductor runs a task again on its own when it never got the report:
/// the task times out (`responseTimeoutSeconds`), and a retry with the same
/// input is scheduled. The retry reads the account first, finds the batch
/// applied, and completes without sending it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_retried_after_its_report_was_lost_applies_its_batch_once() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    conductor.allow_retries(3);
    let config = config_file(&api, json!({}));
    conductor.fail_next_updates(usize::MAX);
    conductor.enqueue(TASK_TYPE, "lost", create("grace@example.com"));
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "a report that fails", |c| !c.updates().is_empty())
        .await;
    assert_eq!(api.batches_applied(), 1);
    // The response timeout passes; the server takes reports again.
    let retry = conductor.expire("lost").expect("a retry is scheduled");
    conductor.fail_next_updates(0);
    conductor
        .wait_until(WAIT, "the retry's report", |c| {
            c.accepted().iter().any(|r| r["taskId"] == retry)
        })
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let results = conductor.accepted();
    let retried = result_of(&results, &retry);
    assert_eq!(retried["status"], "COMPLETED", "{retried}");
    let output = &retried["outputData"];
    assert_eq!(output["attempts"], 0, "nothing sent: {output}");
    assert_eq!(output["verification"]["outcome"], "applied");
    assert_eq!(output["verification"]["after"]["kind"], "earlier_attempt");
    assert_eq!(output["result"]["posts"][0]["pattern"], "grace@example.com");
    assert_eq!(api.batches_applied(), 1, "applied exactly once");
    assert_eq!(api.policies(ACCOUNT).len(), 1);
    // The first attempt's report, once taken, came too late to count.
    assert!(conductor
        .updates()
        .iter()
        .any(|u| u.json["taskId"] == "lost" && u.late));
}

/// With reading back, a 5xx that may have applied goes to Conductor's
/// retry policy; the retry reads the account and, finding nothing, sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_may_have_applied_is_retried_by_conductor_and_checked_first() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    conductor.allow_retries(1);
    let config = config_file(&api, json!({ "max_retries": 0 }));
    api.push_fault(Fault::status(502, vec![]));
    conductor.enqueue(TASK_TYPE, "flaky", create("heidi@example.com"));
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "two reports", |c| c.accepted().len() == 2)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let results = conductor.accepted();
    assert_eq!(result_of(&results, "flaky")["status"], "FAILED");
    let retried = result_of(&results, "flaky-retry");
    assert_eq!(retried["status"], "COMPLETED", "{retried}");
    assert_eq!(
        retried["outputData"]["verification"]["outcome"],
        "not_visible"
    );
    assert_eq!(retried["outputData"]["status"], 200);
    assert_eq!(api.batches_applied(), 1);
}

/// A task the server would time out while it still runs is not run: the
/// server would hand out a retry in the meantime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_whose_response_timeout_is_shorter_than_a_run_is_refused() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    conductor.enqueue_with(
        TASK_TYPE,
        "hasty",
        create("ivan@example.com"),
        json!({ "responseTimeoutSeconds": 10 }),
    );
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "the report", |c| c.accepted().len() == 1)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let refused = &conductor.accepted()[0];
    assert_eq!(refused["status"], "FAILED_WITH_TERMINAL_ERROR", "{refused}");
    let reason = refused["reasonForIncompletion"].as_str().unwrap();
    assert!(reason.contains("responseTimeoutSeconds (10 s)"), "{reason}");
    assert!(reason.contains("timeout_ms (20000 ms)"), "{reason}");
    assert_eq!(api.requests(), 0, "nothing was sent");
}

/// An output larger than the server takes is reported as a terminal
/// failure that says so, instead of a report the server would fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_larger_than_the_server_takes_fails_clearly() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    let config = config_file(&api, json!({}));
    conductor.enqueue(TASK_TYPE, "large", create("judy@example.com"));
    let worker = Worker::start(&conductor, &config, &["--max-output-bytes", "300"]);
    conductor
        .wait_until(WAIT, "the report", |c| c.accepted().len() == 1)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let large = &conductor.accepted()[0];
    assert_eq!(large["status"], "FAILED_WITH_TERMINAL_ERROR", "{large}");
    let error = &large["outputData"]["host_error"];
    assert_eq!(error["max_output_bytes"], 300);
    assert!(error["output_bytes"].as_u64().unwrap() > 300, "{error}");
    assert_eq!(error["may_have_applied"], true);
    let reason = large["reasonForIncompletion"].as_str().unwrap();
    assert!(reason.contains("the batch was applied"), "{reason}");
    assert_eq!(api.batches_applied(), 1);
}

/// The stand-in answers as the server does where a worker can tell.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stand_in_answers_as_the_server_does() {
    use crate::support::loopback_http::{connect, send_on, Answer};
    use http::Method;
    let conductor = FakeConductor::start().await;
    let addr: std::net::SocketAddr = conductor
        .url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let mut sender = connect(addr).await;
    let json = [("content-type", "application/json")];
    let poll = |timeout: u32| {
        format!("/api/tasks/poll/batch/{TASK_TYPE}?count=1&timeout={timeout}&workerid=w")
    };
    macro_rules! call {
        ($method:expr, $path:expr, $body:expr) => {{
            let answer: Answer = send_on(&mut sender, addr, $method, &$path, &json, &$body)
                .await
                .unwrap();
            answer
        }};
    }
    let update = |body: Value| body.to_string();
    let too_long = call!(Method::GET, poll(5001), "");
    assert_eq!(too_long.status, 400, "{}", too_long.text);
    let empty = call!(Method::GET, poll(10), "");
    assert_eq!((empty.status, empty.json.clone()), (200, json!([])));

    conductor.enqueue(TASK_TYPE, "t", json!({}));
    let handed = call!(Method::GET, poll(10), "");
    assert_eq!(handed.json[0]["pollCount"], 1);
    assert_eq!(handed.json[0]["status"], "IN_PROGRESS");
    let tasks = "/api/tasks".to_string();
    let no_workflow = call!(Method::POST, tasks, update(json!({ "taskId": "t" })));
    assert_eq!(no_workflow.status, 400, "no workflowInstanceId");
    let bad_status = json!({ "taskId": "t", "workflowInstanceId": "wf-t", "status": "DONE" });
    assert_eq!(call!(Method::POST, tasks, update(bad_status)).status, 500);
    let unreadable = call!(Method::POST, tasks, "{not json");
    assert_eq!(unreadable.status, 500);
    // Only the two ids are required.
    let done = json!({ "taskId": "t", "workflowInstanceId": "wf-t", "status": "COMPLETED" });
    let taken = call!(Method::POST, tasks, update(done));
    assert_eq!((taken.status, taken.text.as_str()), (200, "t"));
    // A report for a task that ended is taken and ignored.
    let late = json!({ "taskId": "t", "workflowInstanceId": "wf-t", "status": "FAILED" });
    assert_eq!(call!(Method::POST, tasks, update(late)).status, 200);
    assert!(conductor.updates().last().unwrap().late);
    assert_eq!(conductor.task("t").unwrap()["status"], "COMPLETED");
    let read = call!(Method::GET, "/api/tasks/t", "");
    assert_eq!(read.json["taskId"], "t");
    assert!(read.json["startTime"].as_u64().unwrap() > 0);
}

const KEY_ID: &str = "app-key-7f3e";
const KEY_SECRET: &str = "app-SECRET-must-not-leak-0c9d";

/// As Orkes Conductor requires: a token for the access key, sent on every
/// call, fetched again when the server stops taking it; the secret never
/// printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_access_key_gets_a_token_that_is_sent_and_renewed() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    conductor.require_key(KEY_ID, KEY_SECRET);
    let config = config_file(&api, json!({}));
    conductor.enqueue(TASK_TYPE, "first", create("first@example.com"));
    let worker = Worker::start(
        &conductor,
        &config,
        &["--key-id", KEY_ID, "--key-secret", KEY_SECRET],
    );
    conductor
        .wait_until(WAIT, "the first result", |c| c.accepted().len() == 1)
        .await;
    assert_eq!(conductor.tokens_issued(), 1);
    // The server stops taking the token: the worker gets another.
    conductor.expire_tokens();
    conductor.enqueue(TASK_TYPE, "second", create("second@example.com"));
    conductor
        .wait_until(WAIT, "the second result", |c| c.accepted().len() == 2)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert_eq!(conductor.tokens_issued(), 2);
    let sent = conductor.authorizations();
    assert!(sent.iter().all(Option::is_some), "{sent:?}");
    assert!(sent.contains(&Some("token-2".into())));
    for text in [&stopped.stdout, &stopped.stderr] {
        assert!(!text.contains(KEY_SECRET), "{text}");
    }
    for update in conductor.updates() {
        assert!(!update.text.contains(KEY_SECRET));
    }
}

/// A key the server refuses, or none where one is required, stops the
/// worker at once with exit status 2 and says which credential.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_stop_the_worker_with_exit_2() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    conductor.require_key(KEY_ID, KEY_SECRET);
    let config = config_file(&api, json!({}));
    conductor.enqueue(TASK_TYPE, "never", create("never@example.com"));

    let wrong = Worker::start(
        &conductor,
        &config,
        &["--key-id", KEY_ID, "--key-secret", "wrong-secret-value"],
    );
    let stopped = wrong.wait(WAIT).await;
    assert_eq!(stopped.code, Some(2), "{}", stopped.stderr);
    assert!(
        stopped
            .stderr
            .contains("refused access key \"app-key-7f3e\""),
        "{}",
        stopped.stderr
    );
    assert!(
        !stopped.stderr.contains("wrong-secret-value"),
        "{}",
        stopped.stderr
    );

    let without = Worker::start(&conductor, &config, &[]);
    let stopped = without.wait(WAIT).await;
    assert_eq!(stopped.code, Some(2), "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("without credentials"),
        "{}",
        stopped.stderr
    );
    assert!(stopped.stderr.contains("--key-id"), "{}", stopped.stderr);
    // Nothing was handed out, so nothing is left unreported.
    assert_eq!(conductor.in_hand(), 0);
    assert!(conductor.accepted().is_empty());
}

/// A self-hosted server behind a private CA: trusted with --ca-bundle, and
/// not without it (the public web's roots do not vouch for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_only_when_given() {
    let api = fake_api().await;
    let conductor = FakeConductor::start_tls().await;
    let config = config_file(&api, json!({}));
    let bundle = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/all/support/tls/private-ca.pem");

    let untrusting = Worker::start(&conductor, &config, &[]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopped = untrusting.stop().await;
    assert!(
        conductor.polls().is_empty(),
        "no poll got through the TLS handshake"
    );
    assert!(
        stopped
            .stderr
            .contains("polling allow_policies_batch failed"),
        "{}",
        stopped.stderr
    );

    conductor.enqueue(TASK_TYPE, "private", create("private@example.com"));
    let trusting = Worker::start(
        &conductor,
        &config,
        &["--ca-bundle", bundle.to_str().unwrap()],
    );
    conductor
        .wait_until(WAIT, "the result", |c| c.accepted().len() == 1)
        .await;
    let stopped = trusting.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    assert_eq!(
        result_of(&conductor.accepted(), "private")["status"],
        "COMPLETED"
    );
}

/// With the definition's timeout known, a rate-limited task waits as
/// IN_PROGRESS for the Retry-After (Conductor honours callbackAfterSeconds
/// there, and it uses none of the task's retries), then succeeds on the
/// next poll: two batch requests, one applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_task_waits_in_progress_and_then_succeeds() {
    let api = fake_api().await;
    let conductor = FakeConductor::start().await;
    conductor.define_task_timeout(300);
    let config = config_file(&api, json!({ "max_retries": 0 }));
    api.push_fault(Fault::status(429, vec![("retry-after".into(), "1".into())]));
    conductor.enqueue(TASK_TYPE, "later", create("later@example.com"));
    let worker = Worker::start(&conductor, &config, &[]);
    conductor
        .wait_until(WAIT, "the second report", |c| c.accepted().len() == 2)
        .await;
    let stopped = worker.stop().await;
    assert_eq!(stopped.code, Some(0), "{}", stopped.stderr);
    let reports = conductor.accepted();
    assert_eq!(reports[0]["status"], "IN_PROGRESS", "{}", reports[0]);
    assert_eq!(reports[0]["callbackAfterSeconds"], 1);
    assert_eq!(reports[1]["status"], "COMPLETED", "{}", reports[1]);
    assert_eq!(api.batches_applied(), 1);
    assert_eq!(api.requests(), 2);
    let summary: Value = serde_json::from_str(stopped.stdout.trim()).unwrap();
    assert_eq!(
        (&summary["postponed"], &summary["completed"]),
        (&json!(1), &json!(1))
    );
}

/// `task-host worker` with `--server server` and a config every task would
/// reject, so that a worker that gets past the server check stops before
/// anything is sent. The server's name ends in `.invalid`, which never
/// resolves: nothing could reach it either way.
fn worker_against(server: &str, extra: &[&str]) -> (Option<i32>, String) {
    let dir = TempDir::new("worker-cleartext");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"api_token": TOKEN, "account_id": ACCOUNT, "max_retries": 11}).to_string(),
    )
    .unwrap();
    let out = support::task_host_command()
        .args(["worker", "--server", server, "--task-type", TASK_TYPE])
        .arg("--config")
        .arg(&config)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!stderr.contains(TOKEN), "{stderr}");
    (out.status.code(), stderr)
}

#[test]
fn a_server_off_loopback_over_plain_http_is_refused() {
    let (code, stderr) = worker_against("http://conductor.invalid:8080", &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("--server http://conductor.invalid:8080 would be reached without TLS")
            && stderr.contains("--insecure-http"),
        "{stderr}"
    );
    // Refused before the config was even checked.
    assert!(!stderr.contains("/max_retries"), "{stderr}");
}

#[test]
fn insecure_http_lets_a_cleartext_server_through_with_one_warning() {
    let (code, stderr) = worker_against("http://conductor.invalid:8080", &["--insecure-http"]);
    assert_eq!(code, Some(2), "{stderr}");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("without TLS"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("http://conductor.invalid:8080") && warnings[0].contains("cleartext"),
        "{stderr}"
    );
    // Past the server check: the config is what stops it.
    assert!(stderr.contains("/max_retries"), "{stderr}");
}

#[test]
fn tls_or_loopback_needs_no_flag_and_gets_no_warning() {
    for server in [
        "https://conductor.invalid:8443",
        "http://127.0.0.1:1",
        "http://localhost:1",
        "http://[::1]:1",
    ] {
        let (code, stderr) = worker_against(server, &[]);
        assert_eq!(code, Some(2), "{server}: {stderr}");
        assert!(!stderr.contains("TLS"), "{server}: {stderr}");
        assert!(stderr.contains("/max_retries"), "{server}: {stderr}");
    }
}

/// Which of the worker's secrets a property case plants in a server's
/// answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Known {
    /// The config's `api_token`.
    ConfigToken,
    /// `$CLOUDFLARE_API_TOKEN`, for a config that names no credentials.
    EnvironmentToken,
    /// The access key's secret (`--key-secret`).
    KeySecret,
    /// A session token the server granted, quoted from `X-Authorization`.
    SessionToken,
}

/// One `task-host worker` whose server answers one call with an error
/// quoting `secret` (as `known`), stopped once the worker has had that
/// answer and moved on: what it printed.
async fn worker_planted(known: Known, at: Endpoint, secret: &str) -> Stopped {
    let api = support::fake_api(None).await;
    let conductor = FakeConductor::start().await;
    let key_secret = match known {
        Known::KeySecret => secret,
        _ => KEY_SECRET,
    };
    conductor.require_key(KEY_ID, key_secret);
    conductor.define_task_timeout(0);
    let quote = match (known, at) {
        (Known::SessionToken, _) => {
            conductor.issue_tokens_as(secret);
            Quote::Authorization
        }
        (Known::KeySecret, Endpoint::Token) => Quote::RequestBody,
        _ => Quote::Text(secret.to_string()),
    };
    conductor.plant_answer(at, quote);
    let mut base =
        json!({ "base_url": api.base_url(), "account_id": ACCOUNT, "timeout_ms": 20000 });
    let mut env = Vec::new();
    match known {
        Known::EnvironmentToken => env.push(("CLOUDFLARE_API_TOKEN", secret)),
        _ => {
            let token = if known == Known::ConfigToken {
                secret
            } else {
                TOKEN
            };
            base["api_token"] = json!(token);
        }
    }
    let dir = TempDir::new("worker-planted");
    let path = dir.join("config.json");
    std::fs::write(&path, base.to_string()).unwrap();
    let config = ConfigFile { _dir: dir, path };
    // The secret may begin with `-`: the flag takes it as its value.
    let mut worker = Worker::start_with_env(
        &conductor,
        &config,
        &["--key-id", KEY_ID, "--key-secret", key_secret],
        &env,
    );
    match at {
        Endpoint::Report => conductor.enqueue(TASK_TYPE, "reported", create("report@example.com")),
        Endpoint::Task => conductor.enqueue_with(
            TASK_TYPE,
            "retry",
            create("retry@example.com"),
            json!({ "retryCount": 1, "retriedTaskId": "earlier-attempt" }),
        ),
        _ => {}
    }
    let started = Instant::now();
    while conductor.planted_answers_given() != 1 {
        if let Some(stopped) = worker.exited() {
            panic!(
                "the worker exited ({:?}) before the planted answer; stderr: {}",
                stopped.code, stopped.stderr
            );
        }
        assert!(
            started.elapsed() < WAIT,
            "gave up waiting for the planted answer; polls {:?}",
            conductor.polls()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match at {
        // The line is printed before the next poll.
        Endpoint::Poll | Endpoint::PolledEntry | Endpoint::Token | Endpoint::TaskDefinition => {
            let seen = conductor.polls().len();
            conductor
                .wait_until(WAIT, "a poll after it", |c| c.polls().len() > seen)
                .await;
        }
        // The task's line is printed before it is reported.
        Endpoint::Task => {
            conductor
                .wait_until(WAIT, "the retry's report", |c| c.accepted().len() == 1)
                .await;
        }
        // The task in hand is finished, its line printed, before the
        // worker exits.
        Endpoint::Report => {}
    }
    worker.stop().await
}

mod planted_secrets {
    use super::*;
    use proptest::prelude::*;

    fn case() -> impl Strategy<Value = (Known, Endpoint)> {
        let known = proptest::sample::select(vec![
            Known::ConfigToken,
            Known::EnvironmentToken,
            Known::KeySecret,
            Known::SessionToken,
        ]);
        let at = proptest::sample::select(vec![
            Endpoint::Poll,
            Endpoint::PolledEntry,
            Endpoint::Report,
            Endpoint::Token,
            Endpoint::TaskDefinition,
            Endpoint::Task,
        ]);
        // A token request carries no session token to quote.
        (known, at).prop_filter("a quote the call carries", |(known, at)| {
            !(*known == Known::SessionToken && *at == Endpoint::Token)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 24,
            // Each case starts processes and may wait out a limit.
            max_shrink_iters: 8,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// A secret of 16 to 64 characters that the worker knows (the
        /// config's token, the environment's, the access key's secret, a
        /// session token), quoted back by the server in an answer to a
        /// poll, a report, a token request, the definition's or a task's
        /// read, or as a polled entry: the worker prints the line, with
        /// `[redacted]` in its place, and not even 12 characters of it
        /// reach stdout or stderr.
        #[test]
        fn a_secret_a_server_quotes_is_never_printed(
            secret in "[A-Za-z0-9_~/-]{16,64}",
            (known, at) in case(),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let stopped = runtime.block_on(worker_planted(known, at, &secret));
            for (what, text) in [("stdout", &stopped.stdout), ("stderr", &stopped.stderr)] {
                if let Some(window) = support::leaked(&secret, text) {
                    return Err(TestCaseError::fail(format!(
                        "{known:?} at {at:?}: {window:?} of the secret is in {what}: {text}"
                    )));
                }
            }
            prop_assert!(
                stopped.stderr.contains("[redacted]"),
                "{:?} at {:?}: the answer was not printed: {}", known, at, stopped.stderr
            );
            // A refused report leaves its task to the server's timeout.
            let status = if at == Endpoint::Report { 75 } else { 0 };
            prop_assert_eq!(stopped.code, Some(status), "{}", stopped.stderr);
        }
    }
}
