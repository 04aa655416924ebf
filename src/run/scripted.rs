//! A [`Transport`] for native tests: a virtual clock, answers from a
//! script, and a record of every request and its limits.

use std::collections::VecDeque;

use crate::api::outcome::{RawResponse, TransportFault};
use crate::api::request::{ApiRequest, Method};
use crate::api::transport::{AttemptLimits, Transport};

/// A transport with a virtual clock: sends take `latency_ms`, sleeps move
/// the clock, and answers come from a script.
pub struct Scripted {
    pub now_ms: u64,
    pub latency_ms: u64,
    pub answers: VecDeque<Result<RawResponse, TransportFault>>,
    pub sent: Vec<AttemptLimits>,
    /// Method and URL of each request, in order.
    pub requests: Vec<(Method, String)>,
    pub slept: Vec<u64>,
}

impl Scripted {
    pub fn new(answers: Vec<Result<RawResponse, TransportFault>>) -> Self {
        Scripted {
            now_ms: 1_000,
            latency_ms: 10,
            answers: answers.into(),
            sent: Vec::new(),
            requests: Vec::new(),
            slept: Vec::new(),
        }
    }
}

impl Transport for Scripted {
    fn monotonic_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn unix_ms(&mut self) -> u64 {
        1_700_000_000_000 + self.now_ms
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.slept.push(ms);
        self.now_ms += ms;
    }
    fn entropy(&mut self) -> u64 {
        0
    }
    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        self.sent.push(*limits);
        self.requests.push((request.method, request.url.clone()));
        self.now_ms += self.latency_ms;
        self.answers
            .pop_front()
            .expect("the script ran out of answers")
    }
}

pub fn status(
    code: u16,
    retry_after: Option<&str>,
    body: &str,
) -> Result<RawResponse, TransportFault> {
    Ok(RawResponse {
        status: code,
        retry_after: retry_after.map(String::from),
        body: body.as_bytes().to_vec(),
        truncated: false,
        body_error: None,
    })
}
