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

/// A transport handed on by reference, so that a caller can wrap the one
/// it was given (in [`Counted`], say) and keep using it afterwards.
impl<T: Transport + ?Sized> Transport for &mut T {
    fn monotonic_ms(&mut self) -> u64 {
        (**self).monotonic_ms()
    }
    fn unix_ms(&mut self) -> u64 {
        (**self).unix_ms()
    }
    fn sleep_ms(&mut self, ms: u64) {
        (**self).sleep_ms(ms)
    }
    fn entropy(&mut self) -> u64 {
        (**self).entropy()
    }
    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        (**self).send(request, limits)
    }
}

/// A transport that counts the requests that left through it, batches and
/// reads alike: what a task spends of the API's rate budget, reported as
/// `api_calls`. A request that failed before leaving (a refused
/// destination, a connection that could not be made) spends nothing.
pub struct Counted<T> {
    inner: T,
    calls: u32,
}

impl<T: Transport> Counted<T> {
    /// `inner`, counting from 0.
    pub fn new(inner: T) -> Self {
        Counted { inner, calls: 0 }
    }

    /// Requests that left so far.
    pub fn calls(&self) -> u32 {
        self.calls
    }
}

impl<T: Transport> Transport for Counted<T> {
    fn monotonic_ms(&mut self) -> u64 {
        self.inner.monotonic_ms()
    }
    fn unix_ms(&mut self) -> u64 {
        self.inner.unix_ms()
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.inner.sleep_ms(ms)
    }
    fn entropy(&mut self) -> u64 {
        self.inner.entropy()
    }
    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        let sent = self.inner.send(request, limits);
        if sent.as_ref().err().is_none_or(TransportFault::request_left) {
            self.calls += 1;
        }
        sent
    }
}
