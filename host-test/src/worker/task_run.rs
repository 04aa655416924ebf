//! One task from the poll that handed it out to the report of how it
//! ended: its input and timing checked, the run (first, or again after an
//! attempt that may have applied), Conductor's result, and the report,
//! with the task's slot held until the report is done.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::OwnedSemaphorePermit;

use super::admission::{fits_response_timeout, refused_task, task_input};
use super::delivery::{delivery_of, CARRIED_DOUBT};
use super::log_lines;
use super::reporting::{report, REPORT_MARGIN, REPORT_PATIENCE};
use super::settings::WorkerSettings;
use super::summary::Ending;
use super::task_result::{postpone, task_result, within_output_limit};
use crate::attempts::{self, Delivery};
use crate::conductor::{ConductorClient, ConductorError, PolledTask, TaskStatus};
use crate::task_host::TaskHost;
use crate::wall_clock::now_unix_ms;

/// Runs `task` and reports it; `permit` is its slot among the tasks in
/// hand, given back once the report is done.
pub(super) async fn run_one(
    host: Arc<TaskHost>,
    client: Arc<ConductorClient>,
    settings: Arc<WorkerSettings>,
    mut task: PolledTask,
    permit: OwnedSemaphorePermit,
) -> Ending {
    // The server times the task out this long after handing it out.
    let polled = tokio::time::Instant::now();
    let response_deadline = task
        .response_timeout_seconds
        .filter(|s| *s > 0)
        .map(|s| polled + Duration::from_secs(s));
    let run_timeout = settings.config.run_timeout();
    let result = match task_input(&mut task)
        .and_then(|input| fits_response_timeout(&task, run_timeout).map(|()| input))
    {
        Ok(input) => {
            let delivery = delivery_of(&client, &task).await;
            let outcome = host
                .run_delivered(
                    &settings.task_options,
                    settings.config.text(),
                    &input.to_string(),
                    delivery,
                )
                .await;
            let disposition = attempts::disposition(&outcome, settings.config.checks_first());
            // Every secret the process knows by now, session tokens
            // included: a report is shown to whoever reads the workflow.
            let secrets = crate::printing::known_secrets();
            let result = task_result(&task, &settings.worker_id, outcome, disposition, &secrets);
            let mut result = postpone(
                result,
                disposition,
                &task,
                settings.patience,
                now_unix_ms(),
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
                log_lines::reported_late(&task, status);
            } else {
                log_lines::reported(&task, status);
            }
            Ending::Reported(status)
        }
        Err(ConductorError::Unauthorized(why)) => {
            log_lines::report_refused(&task, status, &why);
            Ending::Refused(why)
        }
        Err(error) => {
            log_lines::report_failed(&task, status, &error);
            Ending::Unreported
        }
    };
    drop(permit);
    ending
}
