//! What a worker is told at start: which tasks to poll for, how many to
//! hold at once, the config and sandbox of every task, and how long
//! Conductor lets a task run. Every other part of the worker reads these.

use std::time::Duration;

use crate::sandbox::TaskOptions;
use crate::task_config::TaskConfig;

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
    /// The config given to every task, with what the worker needs of it:
    /// its `timeout_ms` (how long one run may take), its
    /// `verify_after_failure` (whether a task run again reads the account
    /// before sending, which is what makes a failure that may have applied
    /// safe to hand to Conductor's retries) and its credentials.
    pub config: TaskConfig,
    /// The sandbox of every task.
    pub task_options: TaskOptions,
    /// How long Conductor lets a task of this type run.
    pub patience: TaskPatience,
    /// The largest `outputData` the server takes, in bytes of JSON.
    pub max_output_bytes: usize,
}

impl WorkerSettings {
    /// Settings for tasks of `task_type` given `config`, with the rest at
    /// their defaults (the default sandbox, with `config`'s wall-clock
    /// limit).
    pub fn new(task_type: String, worker_id: String, config: TaskConfig) -> Self {
        let task_options = config.task_options([]);
        WorkerSettings {
            task_type,
            worker_id,
            concurrency: 4,
            poll_interval: Duration::from_millis(100),
            domain: None,
            config,
            task_options,
            patience: TaskPatience::Unknown,
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
    /// `timeoutSeconds` above 0.
    Within(Duration),
}
