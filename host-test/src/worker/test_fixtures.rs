//! What the worker's unit tests share: a task as a poll hands it out.

use serde_json::Value;

use crate::conductor::PolledTask;

/// A task handed out for the first time, with no input.
pub(super) fn task() -> PolledTask {
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
