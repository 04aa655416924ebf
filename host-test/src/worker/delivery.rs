//! How Conductor handed out a task: the first time, or again after an
//! attempt that may have applied the batch, which the run must then check
//! for before it sends ([`crate::attempts`]).

use serde_json::json;

use super::log_lines;
use crate::attempts::Delivery;
use crate::bindings::EarlierAttempt;
use crate::conductor::{ConductorClient, PolledTask};

/// The member of a postponed task's `outputData` that carries, to its next
/// poll, the start of an earlier attempt that may have applied the batch.
pub(super) const CARRIED_DOUBT: &str = "earlier_attempt";

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
            log_lines::retry_of_unknown_task(task);
            return again(0);
        };
        return match client.attempt_times(earlier).await {
            Ok(times) if times.start_time > 0 => again(times.start_time),
            Ok(times) => again(times.scheduled_time),
            Err(error) => {
                log_lines::retried_start_unknown(task, earlier, &error);
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

#[cfg(test)]
mod tests {
    use super::super::test_fixtures::task;
    use super::*;

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
}
