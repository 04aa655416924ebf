//! What a task needs from the outside world, behind one trait: the batch
//! and the reads of the account go through it alike, and native tests put
//! a scripted transport in the place of wasi:http.

use crate::api::outcome::{RawResponse, TransportFault};
use crate::api::request::ApiRequest;

/// Limits for one attempt, all derived from what remains of the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimits {
    pub connect_timeout_ms: u64,
    pub first_byte_timeout_ms: u64,
    pub between_bytes_timeout_ms: u64,
    /// The task's deadline on the transport's monotonic clock.
    pub deadline_ms: u64,
    pub max_response_bytes: u64,
}

/// What the task needs from the outside world.
pub trait Transport {
    /// Milliseconds on a monotonic clock.
    fn monotonic_ms(&mut self) -> u64;
    /// Milliseconds since the Unix epoch, for HTTP-date `Retry-After`.
    fn unix_ms(&mut self) -> u64;
    fn sleep_ms(&mut self, ms: u64);
    /// Unpredictable bits for backoff jitter.
    fn entropy(&mut self) -> u64;
    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault>;
}
