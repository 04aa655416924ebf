//! Every line the worker writes to stderr, worded in one place. Each names
//! the task and workflow it is about. Every line goes through
//! [`crate::printing`], which redacts every secret the process knows: the
//! server's text may quote a credential (an error body echoing a request,
//! a task input with a token pasted into it).

use std::time::Duration;

use crate::conductor::{ConductorError, PolledTask, TaskStatus};

/// The server handed out an entry that is not a task.
pub(super) fn not_a_task(entry: &str) {
    crate::say!(
        "task-host worker: the server handed out something that is not a task, left to time out: {entry}"
    );
}

/// A poll failed; the next one comes after `pause`.
pub(super) fn poll_failed(task_type: &str, error: &ConductorError, pause: Duration) {
    crate::say!(
        "task-host worker: polling {task_type} failed ({error}); next poll in {} ms",
        pause.as_millis()
    );
}

/// Shutdown began with `in_hand` tasks still running.
pub(super) fn finishing(in_hand: usize) {
    crate::say!("task-host worker: stopping; finishing {in_hand} task(s) in hand");
}

/// The server took the report of `task`, which ended `status`.
pub(super) fn reported(task: &PolledTask, status: TaskStatus) {
    crate::say!(
        "task-host worker: task {} of workflow {}: {status}",
        task.task_id,
        task.workflow_instance_id
    );
}

/// The server took the report of `task` only after its response timeout.
pub(super) fn reported_late(task: &PolledTask, status: TaskStatus) {
    crate::say!(
        "task-host worker: task {} of workflow {} ended {status}, reported after its response timeout ({} s): the server has probably timed it out and ignored the report; a retry of it reads the account before sending",
        task.task_id,
        task.workflow_instance_id,
        task.response_timeout_seconds.unwrap_or_default()
    );
}

/// The server refused the worker's credentials when `task` was reported.
pub(super) fn report_refused(task: &PolledTask, status: TaskStatus, why: &str) {
    crate::say!(
        "task-host worker: task {} of workflow {} ended {status}, but the server refused the report: {why}",
        task.task_id, task.workflow_instance_id
    );
}

/// The report of `task` failed until there was no time left to send it.
pub(super) fn report_failed(task: &PolledTask, status: TaskStatus, error: &ConductorError) {
    crate::say!(
        "task-host worker: task {} of workflow {} ended {status}, but the report failed until shortly before its response timeout: {error}; the server will time it out, and a retry of it reads the account before sending",
        task.task_id, task.workflow_instance_id
    );
}

/// `task` is a retry that does not name the task it retries.
pub(super) fn retry_of_unknown_task(task: &PolledTask) {
    crate::say!(
        "task-host worker: task {} is retry {} without a retriedTaskId; it is checked against policies of any age",
        task.task_id, task.retry_count
    );
}

/// The start of `earlier`, the task that `task` retries, could not be read.
pub(super) fn retried_start_unknown(task: &PolledTask, earlier: &str, error: &ConductorError) {
    crate::say!(
        "task-host worker: task {} retries {earlier}, whose start could not be read ({error}); it is checked against policies of any age",
        task.task_id
    );
}
