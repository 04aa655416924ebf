//! What Conductor is told about a task that ran: its status, its
//! `outputData` and `reasonForIncompletion` (credentials redacted), a wait
//! instead of a failure where the task's timeout leaves room for one, and
//! a plain terminal failure in place of an output larger than the server
//! takes.

use std::time::Duration;

use serde_json::{json, Value};

use super::redaction::redact_value;
use super::settings::TaskPatience;
use crate::attempts::Disposition;
use crate::bindings::{Document, FieldError, TaskError};
use crate::conductor::{fit_reason, PolledTask, TaskResult, TaskStatus, MAX_REASON_CHARS};
use crate::failure::{error_kind, error_to_json, shown_pointer};
use crate::wall_clock::WallClockLimitExceeded;
use allow_policies_batch::run::redact::Secrets;

/// What Conductor is told about a task whose call ended in `outcome`,
/// which [`crate::attempts::disposition`] judged:
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
///   every retry reads the account before it sends ([`crate::worker::delivery_of`]).
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
        if reason.chars().count() > MAX_REASON_CHARS {
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

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::task;
    use super::*;
    use crate::attempts;
    use crate::bindings::{ApiError, CallFailure, Verification};
    use crate::task_config::TaskConfig;

    /// A config without credentials.
    fn no_secrets() -> Secrets {
        Secrets::new(std::iter::empty::<&str>())
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
            first_sent_unix_ms: None,
            api_calls: 0,
        }
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
                unlisted: 0,
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
        assert_eq!(reason.chars().count(), MAX_REASON_CHARS);
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
        let secrets = TaskConfig::read(config).secrets();
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
}
