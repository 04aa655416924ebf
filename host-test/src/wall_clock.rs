//! How long one call of the component may take: the limit every call is
//! held to, the error a call gets past it, and the epoch ticker that lets
//! the limit interrupt a guest that computes without ever waiting on I/O.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use allow_policies_batch::config::MAX_TIMEOUT_MS;
use anyhow::Context as _;
use wasmtime::Engine;

/// Room past the contract's longest `timeout_ms` for the component to
/// report how its task ended.
const REPORT_ROOM: Duration = Duration::from_secs(20);

/// A task's whole call, instantiation included: the contract's longest
/// `timeout_ms` (600 s) plus room to report.
pub const DEFAULT_WALL_CLOCK_LIMIT: Duration =
    Duration::from_millis(MAX_TIMEOUT_MS).saturating_add(REPORT_ROOM);

/// This host's clock in milliseconds since the Unix epoch (0 before it):
/// what the moments of earlier attempts and records are compared with.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How often a guest that computes without doing I/O hands control back, so
/// that the wall-clock limit can interrupt it.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The error of a call that ran past its wall-clock limit
/// ([`crate::TaskOptions::wall_clock_limit`]). Callers downcast an
/// `anyhow::Error` to it to tell "ran out of time" (which may have sent
/// the batch) from every other host failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClockLimitExceeded {
    /// The limit the call was held to.
    pub limit: Duration,
}

impl fmt::Display for WallClockLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("task exceeded its wall-clock limit")
    }
}

impl std::error::Error for WallClockLimitExceeded {}

/// `call`, or [`WallClockLimitExceeded`] once `limit` has passed (the call
/// is then dropped, which ends its instance).
pub(crate) async fn within_limit<R>(
    limit: Duration,
    call: impl Future<Output = anyhow::Result<R>>,
) -> anyhow::Result<R> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => result,
        Err(_) => Err(WallClockLimitExceeded { limit }.into()),
    }
}

/// Epochs only advance when someone increments them; the thread stops once
/// the last user of the engine is gone.
pub(crate) fn spawn_epoch_ticker(engine: &Engine) -> anyhow::Result<()> {
    let engine = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match engine.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .context("cannot start the epoch ticker thread")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_is_the_longest_timeout_and_room_to_report() {
        assert_eq!(DEFAULT_WALL_CLOCK_LIMIT, Duration::from_secs(620));
    }

    #[tokio::test]
    async fn the_wall_clock_limit_ends_a_call() {
        let limit = Duration::from_millis(20);
        let error = within_limit(limit, async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(error.to_string(), "task exceeded its wall-clock limit");
        assert_eq!(
            error.downcast_ref::<WallClockLimitExceeded>(),
            Some(&WallClockLimitExceeded { limit })
        );
    }
}
