//! Sending a task's result to Conductor: again after a pause while the
//! server cannot take it, until a deadline; a refusal that will not change
//! is final at once.

use std::time::Duration;

use crate::conductor::{ConductorClient, ConductorError, TaskResult};

/// The first pause between attempts to report one result; it doubles each
/// time, up to [`MAX_REPORT_BACKOFF`].
const REPORT_BACKOFF: Duration = Duration::from_millis(500);
const MAX_REPORT_BACKOFF: Duration = Duration::from_secs(8);

/// How long a report is retried for a task without a response timeout.
pub(super) const REPORT_PATIENCE: Duration = Duration::from_secs(120);

/// Kept between the last report attempt and the task's response timeout:
/// the server counts from its own clock's poll, a little before ours.
pub(super) const REPORT_MARGIN: Duration = Duration::from_secs(1);

/// Sends `result`, again after a pause when the server could not take it
/// (no answer, 429 or 5xx), while an attempt can still start before
/// `until`; other refusals are final. Sending the same result twice is
/// harmless: the server ignores a report for a task that already ended.
pub(super) async fn report(
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
