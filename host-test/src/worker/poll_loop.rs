//! The worker's loop: poll for as many tasks as there are free slots, hand
//! each to its own run, back off while the server does not answer, and on
//! shutdown stop polling and wait for every task in hand to be reported.
//!
//! A task counts against `concurrency` from the poll that hands it out until
//! its result has been reported, so a slow server cannot make reports pile
//! up.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::log_lines;
use super::settings::WorkerSettings;
use super::summary::{Ending, WorkerSummary};
use super::task_run::run_one;
use crate::conductor::{ConductorClient, ConductorError, PollRequest, Polled};
use crate::task_host::TaskHost;

/// How long each poll waits on the server for a task.
pub const LONG_POLL: Duration = Duration::from_secs(1);

/// The longest pause between polls after the server failed to answer.
const MAX_POLL_BACKOFF: Duration = Duration::from_secs(30);

/// Polls and runs tasks until `shutdown` completes, then finishes and
/// reports the tasks in hand.
pub async fn run_worker(
    host: Arc<TaskHost>,
    client: Arc<ConductorClient>,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()>,
) -> WorkerSummary {
    // Every line the worker prints, and every result it reports, is
    // redacted of the config's credentials as well as of the process's
    // other secrets.
    crate::printing::keep_secrets(settings.config.credentials());
    let settings = Arc::new(settings);
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
                    log_lines::not_a_task(entry);
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
                log_lines::poll_failed(&settings.task_type, &error, pause);
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
        log_lines::finishing(running.len());
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

#[cfg(test)]
mod tests {
    use super::*;

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
