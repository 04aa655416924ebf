//! A Conductor worker: polls for tasks, runs each through the component and
//! reports how it ended, with a bounded number of tasks in hand at a time.
//!
//! A task counts against `concurrency` from the poll that hands it out until
//! its result has been reported, so a slow server cannot make reports pile
//! up. On shutdown the worker stops polling, lets every task in hand finish,
//! reports it, and returns.
//!
//! The server's URLs and JSON live in [`crate::conductor`]; this module
//! decides what a task's outcome means to Conductor.

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use allow_policies_batch::run::redact::{credentials_in, Secrets};
use serde_json::{json, Value};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use crate::attempts::{self, Delivery, Disposition};
use crate::conductor::{
    fit_reason, ConductorClient, ConductorError, PollRequest, Polled, PolledTask, TaskResult,
    TaskStatus,
};
use crate::task_config::verifies_after_failure;
use crate::{error_kind, error_to_json, Document, TaskError, TaskHost, TaskOptions};
use crate::{EarlierAttempt, FieldError, WallClockLimitExceeded};

/// How long each poll waits on the server for a task.
pub const LONG_POLL: Duration = Duration::from_secs(1);

/// The longest pause between polls after the server failed to answer.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(30);

/// The first pause between attempts to report one result; it doubles each
/// time, up to [`MAX_REPORT_BACKOFF`].
const REPORT_BACKOFF: Duration = Duration::from_millis(500);
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(8);

/// How long a report is retried for a task without a response timeout.
const REPORT_PATIENCE: Duration = Duration::from_secs(120);

/// Kept between the last report attempt and the task's response timeout:
/// the server counts from its own clock's poll, a little before ours.
const REPORT_MARGIN: Duration = Duration::from_secs(1);

/// Conductor's default largest task output
/// (`conductor.app.maxTaskOutputPayloadSizeThreshold`, 10240 KB): the
/// server fails a task whose output is larger.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 10240 * 1024;

/// What a worker polls for and how it runs tasks.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// The task definition's name.
    pub task_type: String,
    /// Sent with each poll and result; shows in Conductor's UI.
    pub worker_id: String,
    /// Most tasks in hand at once; at least 1.
    pub concurrency: u32,
    /// Pause after a poll that brought no task.
    pub poll_interval: Duration,
    /// The task domain to poll, if tasks are routed by domain.
    pub domain: Option<String>,
    /// The config document given to every task.
    pub config: String,
    /// The sandbox of every task.
    pub task_options: TaskOptions,
    /// How long Conductor lets a task of this type run.
    pub patience: TaskPatience,
    /// The config's `timeout_ms`: how long one run may take.
    pub run_timeout: Duration,
    /// The config's `verify_after_failure`: whether a task run again reads
    /// the account before sending, which is what makes a failure that may
    /// have applied safe to hand to Conductor's retries.
    pub checks_first: bool,
    /// The largest `outputData` the server takes, in bytes of JSON.
    pub max_output_bytes: usize,
}

impl WorkerSettings {
    /// Settings with the config's `timeout_ms` and `verify_after_failure`
    /// read from `config` (the contract's defaults where it has none) and
    /// the rest at their defaults.
    pub fn new(task_type: String, worker_id: String, config: String) -> Self {
        let value: Value = serde_json::from_str(&config).unwrap_or(Value::Null);
        let run_timeout = value["timeout_ms"]
            .as_u64()
            .map_or(Duration::from_secs(30), Duration::from_millis);
        let checks_first = verifies_after_failure(&config);
        WorkerSettings {
            task_type,
            worker_id,
            concurrency: 4,
            poll_interval: Duration::from_millis(100),
            domain: None,
            config,
            task_options: TaskOptions::default(),
            patience: TaskPatience::Unknown,
            run_timeout,
            checks_first,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// How long Conductor lets a task run: its definition's `timeoutSeconds`,
/// counted from the task's first start. A failure that cannot have applied
/// and is worth trying later waits as `IN_PROGRESS` (Conductor honours
/// `callbackAfterSeconds` there and uses none of the task's retries) only
/// while the wait and another run still fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskPatience {
    /// The definition could not be read: such failures are `FAILED`, and the
    /// definition's retry policy applies.
    Unknown,
    /// `timeoutSeconds` is 0: no limit.
    Unbounded,
    Within(Duration),
}

/// How many tasks ended in each way, counted as they were reported.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub completed: u64,
    pub failed: u64,
    pub failed_with_terminal_error: u64,
    /// Tasks whose result the server never accepted; Conductor times them
    /// out (the task definition's `responseTimeoutSeconds`) and retries them.
    pub unreported: u64,
    /// Tasks reported `IN_PROGRESS`, to be handed out again after a wait.
    pub postponed: u64,
    /// Set when the server refused the worker's credentials: the worker
    /// stopped, and this says which credential and where.
    pub refused: Option<String>,
}

impl WorkerSummary {
    fn count(&mut self, ending: Ending) {
        match ending {
            Ending::Reported(TaskStatus::InProgress) => self.postponed += 1,
            Ending::Reported(TaskStatus::Completed) => self.completed += 1,
            Ending::Reported(TaskStatus::Failed) => self.failed += 1,
            Ending::Reported(TaskStatus::FailedWithTerminalError) => {
                self.failed_with_terminal_error += 1
            }
            Ending::Unreported => self.unreported += 1,
            Ending::Refused(why) => {
                self.unreported += 1;
                self.refused.get_or_insert(why);
            }
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "completed": self.completed,
            "failed": self.failed,
            "failed_with_terminal_error": self.failed_with_terminal_error,
            "unreported": self.unreported,
            "postponed": self.postponed,
            "refused": self.refused,
        })
    }
}

#[derive(Clone, Debug)]
enum Ending {
    Reported(TaskStatus),
    Unreported,
    /// Not reported because the server refused the worker's credentials.
    Refused(String),
}

/// Polls and runs tasks until `shutdown` completes, then finishes and
/// reports the tasks in hand.
pub async fn run_worker(
    host: Arc<TaskHost>,
    client: Arc<ConductorClient>,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    let settings = Arc::new(settings);
    let secrets = Arc::new(secrets_of(&settings.config));
    let slots = Arc::new(Semaphore::new(settings.concurrency.max(1) as usize));
    let mut running = JoinSet::new();
    let mut summary = WorkerSummary::default();
    let mut failed_polls = 0u32;
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        while let Some(done) = running.try_join_next() {
            summary.count(done.unwrap_or(Ending::Unreported));
        }
        // Credentials the server refused will not be taken on the next poll.
        if summary.refused.is_some() {
            break;
        }
        let first = tokio::select! {
            biased;
            () = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        let count = u32::try_from(permits.len()).unwrap_or(u32::MAX);
        // A poll is not cut short by shutdown: the tasks it brings are ours
        // once the server has sent them, and are run and reported.
        let polled = client
            .poll(&PollRequest {
                task_type: &settings.task_type,
                count,
                timeout: LONG_POLL,
                worker_id: &settings.worker_id,
                domain: settings.domain.as_deref(),
            })
            .await;
        let pause = match polled {
            Ok(Polled { tasks, unreadable }) => {
                failed_polls = 0;
                for entry in &unreadable {
                    // The entry is the server's text, and may hold a task input
                    // with a credential pasted into it.
                    eprintln!(
                        "task-host worker: the server handed out something that is not a task, left to time out: {}",
                        secrets.redact(&entry.to_string())
                    );
                }
                let idle = tasks.is_empty();
                for task in tasks {
                    // A server that sends more than asked for still gets
                    // no more than `concurrency` tasks run at once.
                    let permit = match permits.pop() {
                        Some(permit) => permit,
                        None => match slots.clone().acquire_owned().await {
                            Ok(permit) => permit,
                            Err(_closed) => break,
                        },
                    };
                    running.spawn(run_one(
                        host.clone(),
                        client.clone(),
                        settings.clone(),
                        secrets.clone(),
                        task,
                        permit,
                    ));
                }
                idle.then_some(settings.poll_interval)
            }
            Err(ConductorError::Unauthorized(why)) => {
                summary.refused = Some(why);
                break;
            }
            Err(error) => {
                failed_polls = failed_polls.saturating_add(1);
                let pause = poll_backoff(settings.poll_interval, failed_polls);
                eprintln!(
                    "task-host worker: polling {} failed ({error}); next poll in {} ms",
                    settings.task_type,
                    pause.as_millis()
                );
                Some(pause)
            }
        };
        drop(permits);
        if let Some(pause) = pause {
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }

    if !running.is_empty() {
        eprintln!(
            "task-host worker: stopping; finishing {} task(s) in hand",
            running.len()
        );
    }
    while let Some(done) = running.join_next().await {
        summary.count(done.unwrap_or(Ending::Unreported));
    }
    summary
}

/// The pause after `failures` polls in a row failed: the poll interval,
/// doubled for each failure after the first, at most [`MAX_POLL_BACKOFF`].
fn poll_backoff(poll_interval: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    poll_interval
        .saturating_mul(factor)
        .min(MAX_POLL_BACKOFF.max(poll_interval))
}

async fn run_one(
    host: Arc<TaskHost>,
    client: Arc<ConductorClient>,
    settings: Arc<WorkerSettings>,
    secrets: Arc<Secrets>,
    mut task: PolledTask,
    permit: OwnedSemaphorePermit,
) -> Ending {
    // The server times the task out this long after handing it out.
    let polled = tokio::time::Instant::now();
    let response_deadline = task
        .response_timeout_seconds
        .filter(|s| *s > 0)
        .map(|s| polled + Duration::from_secs(s));
    let result = match task_input(&mut task)
        .and_then(|input| fits_response_timeout(&task, settings.run_timeout).map(|()| input))
    {
        Ok(input) => {
            let delivery = delivery_of(&client, &task).await;
            let outcome = host
                .run_delivered(
                    &settings.task_options,
                    &settings.config,
                    &input.to_string(),
                    delivery,
                )
                .await;
            let disposition = attempts::disposition(&outcome, settings.checks_first);
            let result = task_result(&task, &settings.worker_id, outcome, disposition, &secrets);
            let mut result = postpone(
                result,
                disposition,
                &task,
                settings.patience,
                unix_ms(),
                settings.task_options.wall_clock_limit,
            );
            if let (TaskStatus::InProgress, Delivery::Again(earlier)) = (result.status, delivery) {
                // The next poll of this task must still look first.
                result.output_data[CARRIED_DOUBT] =
                    json!({ "first_started_unix_ms": earlier.first_started_unix_ms });
            }
            within_output_limit(result, settings.max_output_bytes)
        }
        Err(refusal) => refused_task(&task, &settings.worker_id, refusal),
    };
    let status = result.status;
    let report_until = response_deadline
        .map(|at| at.checked_sub(REPORT_MARGIN).unwrap_or(at))
        .unwrap_or(polled + REPORT_PATIENCE);
    let ending = match report(&client, &result, report_until).await {
        Ok(()) => {
            if response_deadline.is_some_and(|at| tokio::time::Instant::now() >= at) {
                eprintln!(
                    "task-host worker: task {} of workflow {} ended {status}, reported after its response timeout ({} s): the server has probably timed it out and ignored the report; a retry of it reads the account before sending",
                    task.task_id,
                    task.workflow_instance_id,
                    task.response_timeout_seconds.unwrap_or_default()
                );
            } else {
                eprintln!(
                    "task-host worker: task {} of workflow {}: {status}",
                    task.task_id, task.workflow_instance_id
                );
            }
            Ending::Reported(status)
        }
        Err(ConductorError::Unauthorized(why)) => {
            eprintln!(
                "task-host worker: task {} of workflow {} ended {status}, but the server refused the report: {why}",
                task.task_id, task.workflow_instance_id
            );
            Ending::Refused(why)
        }
        Err(error) => {
            eprintln!(
                "task-host worker: task {} of workflow {} ended {status}, but the report failed until shortly before its response timeout: {error}; the server will time it out, and a retry of it reads the account before sending",
                task.task_id, task.workflow_instance_id
            );
            Ending::Unreported
        }
    };
    drop(permit);
    ending
}

/// The member of a postponed task's `outputData` that carries, to its next
/// poll, the start of an earlier attempt that may have applied the batch.
const CARRIED_DOUBT: &str = "earlier_attempt";

/// How Conductor handed out `task`:
/// - a retry (`retryCount` above 0, or a `retriedTaskId`): again, since the
///   attempt before may have applied the batch; its start is read from the
///   server, as the retry carries only its own times;
/// - handed out before (`pollCount` above 1): again from its own
///   `startTime` (kept across polls), unless the report that put it back
///   showed that nothing was applied;
/// - otherwise the first time.
///
/// Where the earlier start cannot be learned, any policy like the batch's
/// posts counts as the batch's (from the epoch): the check then errs
/// toward "applied", never toward creating them twice.
pub async fn delivery_of(client: &ConductorClient, task: &PolledTask) -> Delivery {
    let again = |ms: u64| {
        Delivery::Again(EarlierAttempt {
            first_started_unix_ms: ms,
        })
    };
    if let Some(earlier) = task.output_data[CARRIED_DOUBT]["first_started_unix_ms"].as_u64() {
        return again(earlier);
    }
    if task.retry_count > 0 || task.retried_task_id.is_some() {
        let Some(earlier) = &task.retried_task_id else {
            eprintln!(
                "task-host worker: task {} is retry {} without a retriedTaskId; it is checked against policies of any age",
                task.task_id, task.retry_count
            );
            return again(0);
        };
        return match client.attempt_times(earlier).await {
            Ok(times) if times.start_time > 0 => again(times.start_time),
            Ok(times) => again(times.scheduled_time),
            Err(error) => {
                eprintln!(
                    "task-host worker: task {} retries {earlier}, whose start could not be read ({error}); it is checked against policies of any age",
                    task.task_id
                );
                again(0)
            }
        };
    }
    if task.poll_count.unwrap_or(1) > 1 {
        let nothing_applied = task.output_data["error"]["may_have_applied"] == json!(false);
        if nothing_applied {
            return Delivery::First;
        }
        return again(task.start_time.or(task.scheduled_time).unwrap_or(0));
    }
    Delivery::First
}

/// Refuses a task that the server would time out while it still runs: its
/// response timeout is shorter than the config's `timeout_ms`, so the
/// server would hand out a retry while this run may still apply the batch.
/// The definition will be the same next time: terminal.
pub fn fits_response_timeout(task: &PolledTask, run_timeout: Duration) -> Result<(), String> {
    match task.response_timeout_seconds {
        Some(seconds) if seconds > 0 && Duration::from_secs(seconds) < run_timeout => Err(format!(
            "the task definition's responseTimeoutSeconds ({seconds} s) is shorter than the config's timeout_ms ({} ms): the server would time the task out and retry it while it still runs; give the definition a responseTimeoutSeconds above {} s",
            run_timeout.as_millis(),
            run_timeout.as_secs() + 5
        )),
        _ => Ok(()),
    }
}

/// `result`, unless its `outputData` is larger than the server takes: then
/// a terminal failure that says so, keeping only what fits (the server
/// would fail the task itself, with an empty output). A `COMPLETED` task's
/// batch was applied, and the failure says that too.
pub fn within_output_limit(mut result: TaskResult, max_output_bytes: usize) -> TaskResult {
    let size = serde_json::to_vec(&result.output_data).map_or(usize::MAX, |v| v.len());
    if size <= max_output_bytes {
        return result;
    }
    let applied = result.status == TaskStatus::Completed;
    let message = format!(
        "the task's output is {size} bytes, more than the server's limit of {max_output_bytes} bytes (conductor.app.maxTaskOutputPayloadSizeThreshold){}",
        if applied {
            "; the batch was applied, and its result is not kept: read the account to see it"
        } else {
            "; it was reported without the output"
        }
    );
    result.status = TaskStatus::FailedWithTerminalError;
    result.callback_after_seconds = None;
    result.reason_for_incompletion = Some(fit_reason(&message));
    result.output_data = json!({
        "host_error": {
            "message": message,
            "may_have_applied": applied,
            "output_bytes": size,
            "max_output_bytes": max_output_bytes,
        }
    });
    result
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A `FAILED` result whose run applied nothing (a 429, a 408, no
/// connection, a check before sending that could not read) turned
/// `IN_PROGRESS` with `callbackAfterSeconds` when the wait and one more run
/// (`run_budget`) still end before the task's timeout, counted from its
/// first start. Current servers ignore
/// `callbackAfterSeconds` on `FAILED`, so the retries would come at the
/// definition's own delay, inside Cloudflare's lockout; on `IN_PROGRESS`
/// they wait, and use no retry.
pub fn postpone(
    mut result: TaskResult,
    disposition: Disposition,
    task: &PolledTask,
    patience: TaskPatience,
    now_ms: u64,
    run_budget: Duration,
) -> TaskResult {
    if !matches!(disposition, Disposition::RetryNothingApplied { .. })
        || result.status != TaskStatus::Failed
    {
        return result;
    }
    let wait_s = result
        .callback_after_seconds
        .unwrap_or_else(|| {
            let retry = task.poll_count.unwrap_or(1).saturating_sub(1);
            allow_policies_batch::run::backoff::backoff_ms(retry, 0).div_ceil(1000)
        })
        .max(1);
    let fits = match (patience, task.start_time) {
        (TaskPatience::Unknown, _) => false,
        (TaskPatience::Unbounded, _) => true,
        (TaskPatience::Within(limit), Some(start)) => {
            let done_by = now_ms
                .saturating_add(wait_s.saturating_mul(1000))
                .saturating_add(run_budget.as_millis() as u64);
            done_by <= start.saturating_add(limit.as_millis() as u64)
        }
        (TaskPatience::Within(_), None) => false,
    };
    if fits {
        result.status = TaskStatus::InProgress;
        result.callback_after_seconds = Some(wait_s);
        result.reason_for_incompletion = None;
    }
    result
}

/// The component's input: the task's `inputData` without its `null`
/// members. Conductor passes a workflow input that was not given as `null`
/// (`"deletes": "${workflow.input.deletes}"` with no `deletes`), which means
/// "absent" here: the config's account id, or an empty list.
///
/// A task whose input is elsewhere is refused rather than run as an empty
/// batch, which would report success for work never done.
///
/// The input is taken out of the task (a batch can be megabytes): only the
/// ids are needed after this.
pub fn task_input(task: &mut PolledTask) -> Result<Value, String> {
    if let Some(path) = &task.external_input_payload_storage_path {
        return Err(format!(
            "the task's input is in external payload storage ({path}), which this worker does not read"
        ));
    }
    match std::mem::take(&mut task.input_data) {
        Value::Object(mut input) => {
            input.retain(|_, value| !value.is_null());
            Ok(Value::Object(input))
        }
        Value::Null => Ok(Value::Object(Default::default())),
        _ => Err("the task's inputData is not a JSON object".to_string()),
    }
}

/// A task the worker cannot give the component: terminal, since the same
/// task will not look different next time.
fn refused_task(task: &PolledTask, worker_id: &str, reason: String) -> TaskResult {
    TaskResult {
        workflow_instance_id: task.workflow_instance_id.clone(),
        task_id: task.task_id.clone(),
        worker_id: worker_id.to_string(),
        status: TaskStatus::FailedWithTerminalError,
        output_data: json!({ "host_error": { "message": reason } }),
        reason_for_incompletion: Some(fit_reason(&reason)),
        callback_after_seconds: None,
    }
}

/// Sends `result`, again after a pause when the server could not take it
/// (no answer, 429 or 5xx), while an attempt can still start before
/// `until`; other refusals are final. Sending the same result twice is
/// harmless: the server ignores a report for a task that already ended.
async fn report(
    client: &ConductorClient,
    result: &TaskResult,
    until: tokio::time::Instant,
) -> Result<(), ConductorError> {
    let mut pause = REPORT_BACKOFF;
    loop {
        match client.update(result).await {
            Ok(()) => return Ok(()),
            Err(error)
                if worth_repeating(&error) && tokio::time::Instant::now() + pause < until =>
            {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_REPORT_BACKOFF);
            }
            Err(error) => return Err(error),
        }
    }
}

fn worth_repeating(error: &ConductorError) -> bool {
    match error {
        ConductorError::Transport(_) => true,
        ConductorError::Status { status, .. } => status.is_server_error() || status.as_u16() == 429,
        ConductorError::BadResponse(_) | ConductorError::Unauthorized(_) => false,
    }
}

/// What Conductor is told about a task whose call ended in `outcome`,
/// which [`attempts::disposition`] judged:
///
/// - Success (also a batch found applied by reading the account back):
///   `COMPLETED`, the output document as `outputData`.
/// - A failure whose run applied nothing and that may succeed later (a 429,
///   no connection, a batch read back as not applied, a check before
///   sending that could not read): `FAILED`, so the task definition's
///   retry policy applies, with `retry_after_ms` as `callbackAfterSeconds`
///   when given ([`postpone`] may make it a wait instead).
/// - A failure that may have applied (a timeout after sending, a 5xx)
///   whose reading back did not decide against it: `FAILED` too, since
///   every retry reads the account before it sends ([`delivery_of`]).
/// - Anything else: `FAILED_WITH_TERMINAL_ERROR`, including a failure
///   that may have applied when reading back could not decide, or is
///   switched off: a retry could not look first.
///
/// A failure's `outputData` is `{"error": ...}` in the contract's form, and
/// its `reasonForIncompletion` names the kind, the message and as many
/// problems as fit in Conductor's 500 characters. No text of either carries
/// a credential of the config.
pub fn task_result(
    task: &PolledTask,
    worker_id: &str,
    outcome: anyhow::Result<Result<String, TaskError>>,
    disposition: Disposition,
    secrets: &Secrets,
) -> TaskResult {
    let status = match disposition {
        Disposition::Completed => TaskStatus::Completed,
        Disposition::RetryNothingApplied { .. } | Disposition::RetryChecked => TaskStatus::Failed,
        Disposition::Terminal => TaskStatus::FailedWithTerminalError,
    };
    let callback_after_seconds = match disposition {
        Disposition::RetryNothingApplied { after: Some(wait) } => {
            Some((wait.as_millis() as u64).div_ceil(1000))
        }
        _ => None,
    };
    let (mut output, reason) = match outcome {
        Ok(Ok(document)) => {
            let output =
                serde_json::from_str(&document).unwrap_or_else(|_| json!({ "output": document }));
            (output, None)
        }
        Ok(Err(error)) => {
            let body = error_to_json(&error);
            let reason = failure_reason(&error, &body);
            (json!({ "error": body }), Some(reason))
        }
        Err(host_failure) => {
            // The component did not finish: past its wall-clock limit it
            // may have sent the batch.
            let timed_out = host_failure.is::<WallClockLimitExceeded>();
            let message = format!("the component did not finish: {host_failure:#}");
            let output =
                json!({ "host_error": { "message": message, "may_have_applied": timed_out } });
            (output, Some(message))
        }
    };
    redact_value(&mut output, secrets);
    let reason_for_incompletion = reason.map(|r| fit_reason(&secrets.redact(&r)));
    TaskResult {
        workflow_instance_id: task.workflow_instance_id.clone(),
        task_id: task.task_id.clone(),
        worker_id: worker_id.to_string(),
        status,
        output_data: output,
        reason_for_incompletion,
        callback_after_seconds,
    }
}

/// `kind: message`, then each problem or API error: `; pointer: message`.
fn failure_reason(error: &TaskError, body: &Value) -> String {
    let mut reason = format!(
        "{}: {}",
        error_kind(error),
        body["message"].as_str().unwrap_or_default()
    );
    let details: Vec<String> = match error {
        TaskError::InvalidConfig(problems) | TaskError::InvalidInput(problems) => {
            problems.iter().map(problem_line).collect()
        }
        TaskError::Denied(failure)
        | TaskError::Transport(failure)
        | TaskError::Api(failure)
        | TaskError::BadResponse(failure)
        | TaskError::Unconfirmed(failure) => failure
            .api_errors
            .iter()
            .map(|e| match (&e.pointer, e.code) {
                (Some(pointer), _) => format!("{pointer}: {}", e.message),
                (None, Some(code)) => format!("{code}: {}", e.message),
                (None, None) => e.message.clone(),
            })
            .collect(),
    };
    for detail in details {
        reason.push_str("; ");
        reason.push_str(&detail);
        if reason.chars().count() > crate::conductor::MAX_REASON_CHARS {
            break;
        }
    }
    reason
}

fn problem_line(problem: &FieldError) -> String {
    let document = match problem.document {
        Document::Config => "config ",
        Document::Input => "",
    };
    format!("{document}{}: {}", shown_pointer(problem), problem.message)
}

/// A problem's pointer, `/` for the whole document (whose pointer is empty).
pub(crate) fn shown_pointer(problem: &FieldError) -> &str {
    if problem.pointer.is_empty() {
        "/"
    } else {
        &problem.pointer
    }
}

/// The credentials in a config document, so that no text sent to the server
/// or logged can carry them, whatever produced it: the same search the
/// component applies to its own outputs (any run of 8 characters of a
/// credential, in any of the shapes a message or pointer may give it).
pub fn secrets_of(config: &str) -> Secrets {
    Secrets::new(credentials_in(config))
}

/// Every string and key of `value`, redacted.
fn redact_value(value: &mut Value, secrets: &Secrets) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(redacted) = secrets.redact(text) {
                *text = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, secrets)),
        Value::Object(members) => {
            members.values_mut().for_each(|v| redact_value(v, secrets));
            // Keys are rebuilt only when one holds a credential, which is
            // rare: the map is not copied for every report.
            if members.keys().any(|key| secrets.found_in(key)) {
                *members = std::mem::take(members)
                    .into_iter()
                    .map(|(key, v)| (secrets.redact(&key).into_owned(), v))
                    .collect();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A config without credentials.
    fn no_secrets() -> Secrets {
        secrets_of("{}")
    }
    use crate::{ApiError, CallFailure, Verification};

    fn task() -> PolledTask {
        PolledTask {
            task_id: "t-1".into(),
            workflow_instance_id: "wf-1".into(),
            input_data: Value::Null,
            external_input_payload_storage_path: None,
            start_time: None,
            poll_count: None,
            scheduled_time: None,
            retry_count: 0,
            retried_task_id: None,
            response_timeout_seconds: None,
            output_data: Value::Null,
        }
    }

    /// What the worker reports for `outcome`, judged as it judges it (with
    /// reading back switched on).
    fn judged(
        task: &PolledTask,
        outcome: anyhow::Result<Result<String, TaskError>>,
        secrets: &Secrets,
    ) -> TaskResult {
        let disposition = attempts::disposition(&outcome, true);
        task_result(task, "w", outcome, disposition, secrets)
    }

    fn failure(retryable: bool, retry_after_ms: Option<u64>) -> CallFailure {
        CallFailure {
            message: "the API answered 429 Too Many Requests".into(),
            retryable,
            may_have_applied: false,
            status: Some(429),
            retry_after_ms,
            api_errors: vec![ApiError {
                code: Some(10000),
                message: "rate limited".into(),
                pointer: None,
                documentation_url: None,
            }],
            attempts: 1,
            verification: Verification::NotNeeded,
        }
    }

    #[test]
    fn inputs_conductor_left_out_are_absent_not_null() {
        let mut task = task();
        task.input_data = json!({
            "account_id": null,
            "deletes": null,
            "posts": [{"pattern": null}],
        });
        assert_eq!(
            task_input(&mut task).unwrap(),
            json!({"posts": [{"pattern": null}]})
        );
    }

    #[test]
    fn success_completes_with_the_output_document() {
        let document = r#"{"success":true,"status":200,"attempts":1}"#;
        let result = judged(&task(), Ok(Ok(document.into())), &no_secrets());
        assert_eq!(result.status, TaskStatus::Completed);
        assert_eq!(result.output_data["status"], 200);
        assert_eq!(result.reason_for_incompletion, None);
        assert_eq!(result.callback_after_seconds, None);
        assert_eq!(
            (result.task_id.as_str(), result.worker_id.as_str()),
            ("t-1", "w")
        );
    }

    #[test]
    fn retryable_failures_fail_with_the_wait_the_api_asked_for() {
        let outcome = Ok(Err(TaskError::Api(failure(true, Some(7_001)))));
        let result = judged(&task(), outcome, &no_secrets());
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(result.callback_after_seconds, Some(8), "rounded up");
        let whole = Ok(Err(TaskError::Api(failure(true, Some(7_000)))));
        let result_whole = judged(&task(), whole, &no_secrets());
        assert_eq!(result_whole.callback_after_seconds, Some(7));
        assert_eq!(result.output_data["error"]["kind"], "api");
        assert_eq!(result.output_data["error"]["retry_after_ms"], 7_001);
        let reason = result.reason_for_incompletion.unwrap();
        assert_eq!(
            reason,
            "api: the API answered 429 Too Many Requests; 10000: rate limited"
        );
    }

    #[test]
    fn terminal_failures_never_ask_for_a_callback() {
        let outcome = Ok(Err(TaskError::Api(failure(false, Some(5_000)))));
        let result = judged(&task(), outcome, &no_secrets());
        assert_eq!(result.status, TaskStatus::FailedWithTerminalError);
        assert_eq!(result.callback_after_seconds, None);
    }

    #[test]
    fn invalid_input_names_each_problem_within_the_limit() {
        let problems: Vec<FieldError> = (0..100)
            .map(|i| FieldError {
                pointer: format!("/posts/{i}/pattern_type"),
                message: "expected one of EMAIL, DOMAIN, IP, UNKNOWN".into(),
                document: Document::Input,
            })
            .collect();
        let result = judged(
            &task(),
            Ok(Err(TaskError::InvalidInput(problems))),
            &no_secrets(),
        );
        assert_eq!(result.status, TaskStatus::FailedWithTerminalError);
        let reason = result.reason_for_incompletion.unwrap();
        assert!(reason.starts_with(
            "invalid_input: the input has 100 problems; /posts/0/pattern_type: expected one of"
        ));
        assert_eq!(reason.chars().count(), crate::conductor::MAX_REASON_CHARS);
        assert_eq!(
            result.output_data["error"]["errors"]
                .as_array()
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn credentials_are_removed_from_everything_reported() {
        let secret = "tok-SECRET-123";
        let config = json!({"api_token": secret, "account_id": "x"}).to_string();
        let secrets = secrets_of(&config);
        assert!(!secrets.is_empty());
        let mut leaky = failure(true, None);
        leaky.message = format!("rejected {secret}");
        leaky.api_errors[0].message = format!("token {secret} is not valid");
        let result = judged(&task(), Ok(Err(TaskError::Transport(leaky))), &secrets);
        let sent = serde_json::to_string(&result).unwrap();
        assert!(!sent.contains(secret), "{sent}");
        assert!(sent.contains("[redacted]"), "{sent}");
    }

    #[test]
    fn a_failure_that_may_have_applied_is_retried_only_where_the_retry_can_look_first() {
        let in_doubt = |verification: Verification| {
            let mut failure = failure(true, None);
            failure.status = Some(503);
            failure.may_have_applied = true;
            failure.verification = verification;
            Ok(Err(TaskError::Api(failure)))
        };
        // Reading back had no verdict: the retry reads before it sends.
        let open = judged(&task(), in_doubt(Verification::Incomplete), &no_secrets());
        assert_eq!(open.status, TaskStatus::Failed);
        assert_eq!(open.callback_after_seconds, None);
        assert_eq!(open.output_data["error"]["may_have_applied"], true);
        // Reading back could not decide: a person must look.
        let undecided = judged(&task(), in_doubt(Verification::Undetermined), &no_secrets());
        assert_eq!(undecided.status, TaskStatus::FailedWithTerminalError);
        // Reading back switched off: a retry could not look first.
        let outcome = in_doubt(Verification::Incomplete);
        let blind = attempts::disposition(&outcome, false);
        let unchecked = task_result(&task(), "w", outcome, blind, &no_secrets());
        assert_eq!(unchecked.status, TaskStatus::FailedWithTerminalError);
    }

    #[test]
    fn tasks_whose_input_the_worker_cannot_read_are_refused() {
        let mut external = task();
        external.external_input_payload_storage_path = Some("input/t-1.json".into());
        assert!(task_input(&mut external)
            .unwrap_err()
            .contains("external payload storage"));
        let mut listed = task();
        listed.input_data = json!([1, 2]);
        let refusal = task_input(&mut listed).unwrap_err();
        let refused = refused_task(&listed, "w", refusal);
        assert_eq!(refused.status, TaskStatus::FailedWithTerminalError);
        assert_eq!(task_input(&mut task()).unwrap(), json!({}));
    }

    #[test]
    fn a_task_that_did_not_finish_is_retried_only_when_it_ran_out_of_time() {
        let limit = WallClockLimitExceeded {
            limit: Duration::from_secs(35),
        };
        // It may have sent the batch; the retry reads the account first.
        let timed_out = judged(&task(), Err(anyhow::Error::new(limit)), &no_secrets());
        assert_eq!(timed_out.status, TaskStatus::Failed);
        assert_eq!(
            timed_out.output_data["host_error"]["may_have_applied"],
            true
        );
        let trapped = judged(&task(), Err(anyhow::anyhow!("wasm trap")), &no_secrets());
        assert_eq!(trapped.status, TaskStatus::FailedWithTerminalError);
        assert!(trapped
            .reason_for_incompletion
            .unwrap()
            .contains("wasm trap"));
    }

    #[test]
    fn a_rate_limited_task_waits_in_progress_only_while_it_fits() {
        let limited = || {
            judged(
                &task(),
                Ok(Err(TaskError::Api(failure(true, Some(60_000))))),
                &no_secrets(),
            )
        };
        let started = |start_ms: u64| PolledTask {
            start_time: Some(start_ms),
            poll_count: Some(1),
            ..task()
        };
        let budget = Duration::from_secs(35);
        let now = 1_000_000;
        let within = TaskPatience::Within(Duration::from_secs(420));
        // 60 s of waiting and a 35 s run fit in 420 s from the start.
        let nothing = Disposition::RetryNothingApplied { after: None };
        let waiting = postpone(limited(), nothing, &started(now), within, now, budget);
        assert_eq!(waiting.status, TaskStatus::InProgress);
        assert_eq!(waiting.callback_after_seconds, Some(60));
        assert_eq!(waiting.reason_for_incompletion, None);
        // Started 330 s ago: 330 + 60 + 35 > 420, so it fails as before.
        let late = postpone(
            limited(),
            nothing,
            &started(now - 330_000),
            within,
            now,
            budget,
        );
        assert_eq!(late.status, TaskStatus::Failed);
        assert_eq!(late.callback_after_seconds, Some(60));
        // Unknown limit: as before; no limit: always waits.
        let unknown = postpone(
            limited(),
            nothing,
            &started(now),
            TaskPatience::Unknown,
            now,
            budget,
        );
        assert_eq!(unknown.status, TaskStatus::Failed);
        let unbounded = postpone(
            limited(),
            nothing,
            &started(0),
            TaskPatience::Unbounded,
            now,
            budget,
        );
        assert_eq!(unbounded.status, TaskStatus::InProgress);
        // Without Retry-After: the contract's backoff for the poll count,
        // at least a second.
        let bare = judged(
            &task(),
            Ok(Err(TaskError::Transport(failure(true, None)))),
            &no_secrets(),
        );
        let third = PolledTask {
            poll_count: Some(3),
            ..started(now)
        };
        let backed_off = postpone(bare, nothing, &third, within, now, budget);
        assert_eq!(backed_off.callback_after_seconds, Some(2));
        // Anything but a run that applied nothing is left alone: a
        // failure that may have applied goes to a retry, which looks first.
        let done = judged(&task(), Ok(Ok("{}".into())), &no_secrets());
        let completed = Disposition::Completed;
        assert_eq!(
            postpone(done, completed, &started(now), within, now, budget).status,
            TaskStatus::Completed
        );
        let checked = Disposition::RetryChecked;
        assert_eq!(
            postpone(limited(), checked, &started(now), within, now, budget).status,
            TaskStatus::Failed
        );
    }

    #[tokio::test]
    async fn a_task_handed_out_again_is_checked_unless_its_last_report_applied_nothing() {
        // Nothing listens there: no branch below may call the server.
        let client = ConductorClient::new("http://127.0.0.1:9").unwrap();
        let since = |ms| {
            Delivery::Again(EarlierAttempt {
                first_started_unix_ms: ms,
            })
        };
        assert_eq!(delivery_of(&client, &task()).await, Delivery::First);
        let again = PolledTask {
            poll_count: Some(2),
            start_time: Some(5_000),
            ..task()
        };
        assert_eq!(delivery_of(&client, &again).await, since(5_000));
        // Put back IN_PROGRESS after a 429: that run applied nothing.
        let waited = PolledTask {
            output_data: json!({"error": {"kind": "api", "may_have_applied": false}}),
            ..again.clone()
        };
        assert_eq!(delivery_of(&client, &waited).await, Delivery::First);
        // ...unless an attempt before it was in doubt, which it carries on.
        let carried = PolledTask {
            output_data: json!({
                "error": {"kind": "unconfirmed", "may_have_applied": true},
                "earlier_attempt": {"first_started_unix_ms": 1_234},
            }),
            ..again.clone()
        };
        assert_eq!(delivery_of(&client, &carried).await, since(1_234));
        // A retry that names no earlier attempt: policies of any age count.
        let orphan = PolledTask {
            retry_count: 1,
            ..task()
        };
        assert_eq!(delivery_of(&client, &orphan).await, since(0));
    }

    #[test]
    fn a_response_timeout_shorter_than_a_run_refuses_the_task() {
        let timing = |seconds| PolledTask {
            response_timeout_seconds: seconds,
            ..task()
        };
        let run = Duration::from_secs(30);
        assert!(fits_response_timeout(&timing(Some(30)), run).is_ok());
        assert!(fits_response_timeout(&timing(Some(0)), run).is_ok());
        assert!(fits_response_timeout(&timing(None), run).is_ok());
        let refusal = fits_response_timeout(&timing(Some(29)), run).unwrap_err();
        assert!(
            refusal.contains("responseTimeoutSeconds (29 s)"),
            "{refusal}"
        );
        assert!(refusal.contains("timeout_ms (30000 ms)"), "{refusal}");
    }

    #[test]
    fn an_output_larger_than_the_server_takes_fails_clearly() {
        let document = json!({"success": true, "result": {"posts": ["x".repeat(500)]}});
        let done = judged(&task(), Ok(Ok(document.to_string())), &no_secrets());
        let size = serde_json::to_vec(&done.output_data).unwrap().len();
        assert_eq!(within_output_limit(done.clone(), size), done);
        let cut = within_output_limit(done, size - 1);
        assert_eq!(cut.status, TaskStatus::FailedWithTerminalError);
        assert_eq!(cut.output_data["host_error"]["output_bytes"], size);
        assert_eq!(cut.output_data["host_error"]["may_have_applied"], true);
        let reason = cut.reason_for_incompletion.unwrap();
        assert!(reason.contains("the batch was applied"), "{reason}");
    }

    #[test]
    fn poll_backoff_doubles_from_the_interval_up_to_a_ceiling() {
        let interval = Duration::from_millis(100);
        assert_eq!(poll_backoff(interval, 1), interval);
        assert_eq!(poll_backoff(interval, 2), Duration::from_millis(200));
        assert_eq!(poll_backoff(interval, 4), Duration::from_millis(800));
        assert_eq!(poll_backoff(interval, 40), MAX_POLL_BACKOFF);
        let slow = Duration::from_secs(60);
        assert_eq!(
            poll_backoff(slow, 5),
            slow,
            "never shorter than the interval"
        );
    }
}
