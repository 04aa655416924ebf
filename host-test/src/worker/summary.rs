//! How each task in hand ended for the worker, and the counts of those
//! endings that the worker returns (and `task-host worker` prints) when it
//! stops.

use serde_json::{json, Value};

use crate::conductor::TaskStatus;

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
    pub(super) fn count(&mut self, ending: Ending) {
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

    /// The summary as `task-host worker` prints it, one member per count.
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

/// How one task in hand ended for the worker.
#[derive(Clone, Debug)]
pub(super) enum Ending {
    /// The server took the report.
    Reported(TaskStatus),
    /// The server never took the report.
    Unreported,
    /// Not reported because the server refused the worker's credentials.
    Refused(String),
}
