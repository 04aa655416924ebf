//! What a task needs from the outside world, behind one trait: the batch
//! and the reads of the account go through it alike, and native tests put
//! a scripted transport in the place of wasi:http.

use crate::api::outcome::{RawResponse, TransportFault};
use crate::api::request::ApiRequest;

/// Limits for one attempt, all derived from what remains of the deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Milliseconds to connect: the config's `connect_timeout_ms`, cut to
    /// the time left.
    pub connect_timeout_ms: u64,
    /// Milliseconds to wait for the first byte of the response body
    /// (wasi:http's first-byte timeout): all the time left before
    /// `deadline_ms`.
    pub first_byte_timeout_ms: u64,
    /// Milliseconds allowed between two chunks of the response body
    /// (wasi:http's between-bytes timeout): all the time left before
    /// `deadline_ms`.
    pub between_bytes_timeout_ms: u64,
    /// The task's deadline on the transport's monotonic clock.
    pub deadline_ms: u64,
    /// The most bytes of a response body read; a longer body comes back
    /// marked [`RawResponse::truncated`], and one whose declared length is
    /// already larger is not read at all.
    pub max_response_bytes: u64,
}

/// What the task needs from the outside world.
pub trait Transport {
    /// Milliseconds on a monotonic clock.
    fn monotonic_ms(&mut self) -> u64;
    /// Milliseconds since the Unix epoch, for HTTP-date `Retry-After`.
    fn unix_ms(&mut self) -> u64;
    /// Waits `ms` milliseconds: before a retry, and between two reads of
    /// the account. A test transport moves its clock instead.
    fn sleep_ms(&mut self, ms: u64);
    /// Unpredictable bits for backoff jitter.
    fn entropy(&mut self) -> u64;
    /// Sends one request within `limits` and reads its answer, without
    /// retrying. `Err` says whether the request can have left
    /// ([`TransportFault`]); once a status arrived the answer is `Ok`, even
    /// when its body could not be read in full ([`RawResponse::body_error`],
    /// [`RawResponse::truncated`]).
    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault>;
}
