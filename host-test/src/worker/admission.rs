//! Whether a polled task can be given to the component at all: its input
//! must be in the task and be an object, and its response timeout must
//! leave room for a whole run. A task that fails either is refused as
//! terminal, since it will not look different next time.

use std::time::Duration;

use serde_json::{json, Value};

use crate::conductor::{fit_reason, PolledTask, TaskResult, TaskStatus};
use crate::task_config::WALL_CLOCK_GRACE;

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

/// Refuses a task that the server would time out while it still runs: its
/// response timeout is shorter than the config's `timeout_ms`, so the
/// server would hand out a retry while this run may still apply the batch.
/// The definition will be the same next time: terminal.
pub fn fits_response_timeout(task: &PolledTask, run_timeout: Duration) -> Result<(), String> {
    match task.response_timeout_seconds {
        Some(seconds) if seconds > 0 && Duration::from_secs(seconds) < run_timeout => Err(format!(
            "the task definition's responseTimeoutSeconds ({seconds} s) is shorter than the config's timeout_ms ({} ms): the server would time the task out and retry it while it still runs; give the definition a responseTimeoutSeconds above {} s",
            run_timeout.as_millis(),
            (run_timeout + WALL_CLOCK_GRACE).as_secs()
        )),
        _ => Ok(()),
    }
}

/// A task the worker cannot give the component: terminal, since the same
/// task will not look different next time.
pub(super) fn refused_task(task: &PolledTask, worker_id: &str, reason: String) -> TaskResult {
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

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::task;
    use super::*;

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
}
