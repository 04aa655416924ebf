//! A task from parameter text to a result document: validate, build, send
//! with safe retries, classify. The network is behind [`Transport`], so the
//! whole flow, retries and deadlines included, runs in native tests.

use crate::config::{parse_config, Config};
use crate::json::parse_document;
use crate::outcome::{
    classify_fault, classify_response, Failure, RawResponse, Success, TransportFault,
};
use crate::policy::Counts;
use crate::problems::{Document, Pointer, Problem, Report};
use crate::request::{build_request, BatchRequest, RequestView};
use crate::retry::backoff_ms;
use crate::validate::parse_input;
use serde::Serialize;

/// Why a task failed; mirrors the WIT `task-error` variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// Config problems, with any input problems found in the same pass.
    InvalidConfig(Vec<Problem>),
    InvalidInput(Vec<Problem>),
    Call(Failure),
}

/// A checked task, ready to send.
#[derive(Debug)]
pub struct Prepared {
    pub config: Config,
    /// `None` for an empty batch, which is not sent.
    pub request: Option<BatchRequest>,
    pub counts: Counts,
    pub warnings: Vec<Problem>,
}

/// Parses and checks both documents and builds the request. Every problem
/// of both documents is reported in one go.
pub fn prepare(config_text: &str, input_text: &str) -> Result<Prepared, TaskError> {
    let mut report = Report::default();
    let config_value = parse_document(config_text, Document::Config, &mut report);
    let config = config_value
        .as_ref()
        .and_then(|v| parse_config(v, &mut report));
    let config_failed = report.error_count() > 0;
    let input_value = parse_document(input_text, Document::Input, &mut report);
    let input = input_value
        .as_ref()
        .and_then(|v| parse_input(v, &mut report));

    // The account may come from either document; when both are objects and
    // neither names it, that is a problem of the input's.
    let names_account = |v: &Option<serde_json::Value>| match v {
        Some(serde_json::Value::Object(map)) => map.contains_key("account_id"),
        _ => true,
    };
    if !names_account(&config_value) && !names_account(&input_value) {
        report.error(
            Document::Input,
            &Pointer::root().key("account_id"),
            "required field is missing: give account_id in the input or in the config",
        );
    }
    let account_id = input
        .as_ref()
        .and_then(|i| i.account_id.clone())
        .or_else(|| config.as_ref().and_then(|c| c.account_id.clone()));

    match (config, input, account_id) {
        (Some(config), Some(input), Some(account_id)) if report.error_count() == 0 => {
            let counts = input.body.counts();
            let request =
                (!input.body.is_empty()).then(|| build_request(&config, &account_id, &input.body));
            Ok(Prepared {
                config,
                request,
                counts,
                warnings: report.take_warnings(),
            })
        }
        _ if config_failed => Err(TaskError::InvalidConfig(report.into_errors())),
        _ => Err(TaskError::InvalidInput(report.into_errors())),
    }
}

/// The dry-run document.
pub fn preview_json(prepared: &Prepared) -> String {
    #[derive(Serialize)]
    struct Preview<'a> {
        dry_run: bool,
        skipped: bool,
        request: Option<RequestView<'a>>,
        warnings: &'a [Problem],
        counts: Counts,
    }
    // Strings, numbers and JSON already checked: serialising cannot fail.
    serde_json::to_string(&Preview {
        dry_run: true,
        skipped: prepared.request.is_none(),
        request: prepared.request.as_ref().map(BatchRequest::view),
        warnings: &prepared.warnings,
        counts: prepared.counts,
    })
    .unwrap_or_default()
}

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
        request: &BatchRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault>;
}

/// What a finished call returns.
#[derive(Debug)]
pub struct Completed {
    pub success: Option<Success>,
    pub attempts: u32,
}

/// Sends the prepared request, retrying only failures that cannot have been
/// applied, and never waiting past the deadline.
pub fn execute(prepared: &Prepared, transport: &mut impl Transport) -> Result<Completed, Failure> {
    let Some(request) = &prepared.request else {
        return Ok(Completed {
            success: None,
            attempts: 0,
        });
    };
    let config = &prepared.config;
    let deadline_ms = transport.monotonic_ms().saturating_add(config.timeout_ms);
    let mut attempts = 0u32;
    loop {
        let remaining = deadline_ms.saturating_sub(transport.monotonic_ms()).max(1);
        let limits = AttemptLimits {
            connect_timeout_ms: config.connect_timeout_ms.min(remaining),
            first_byte_timeout_ms: remaining,
            between_bytes_timeout_ms: remaining,
            deadline_ms,
            max_response_bytes: config.max_response_bytes,
        };
        let sent = transport.send(request, &limits);
        // A destination the host refused was never tried.
        if sent != Err(TransportFault::Denied) {
            attempts += 1;
        }
        let outcome = match sent {
            Ok(response) => classify_response(&response, transport.unix_ms()),
            Err(fault) => Err(classify_fault(&fault)),
        };
        let mut failure = match outcome {
            Ok(success) => {
                return Ok(Completed {
                    success: Some(success),
                    attempts,
                });
            }
            Err(failure) => failure,
        };
        failure.attempts = attempts;
        if !failure.auto_retryable() || attempts > config.max_retries {
            return Err(failure);
        }
        let wait = match failure.retry_after_ms {
            Some(ms) => ms,
            None => backoff_ms(attempts - 1, transport.entropy()),
        };
        if transport.monotonic_ms().saturating_add(wait) >= deadline_ms {
            failure.retry_after_ms = Some(wait);
            failure
                .message
                .push_str("; not retried because the wait would pass timeout_ms");
            return Err(failure);
        }
        transport.sleep_ms(wait);
    }
}

/// The success document (`skipped` when the batch was empty).
pub fn success_json(prepared: &Prepared, completed: &Completed) -> String {
    #[derive(Serialize)]
    struct Output<'a> {
        success: bool,
        skipped: bool,
        status: Option<u16>,
        attempts: u32,
        result: Option<&'a serde_json::value::RawValue>,
        messages: ListOrEmpty<'a>,
        errors: ListOrEmpty<'a>,
        warnings: &'a [Problem],
        counts: Counts,
    }
    let success = completed.success.as_ref();
    // Strings, numbers and JSON already checked: serialising cannot fail.
    serde_json::to_string(&Output {
        success: true,
        skipped: success.is_none(),
        status: success.map(|s| s.status),
        attempts: completed.attempts,
        result: success.and_then(|s| s.result.as_deref()),
        messages: ListOrEmpty(success.and_then(|s| s.messages.as_deref())),
        errors: ListOrEmpty(success.and_then(|s| s.errors.as_deref())),
        warnings: &prepared.warnings,
        counts: prepared.counts,
    })
    .unwrap_or_default()
}

/// The API's list verbatim, or `[]` when it sent none.
struct ListOrEmpty<'a>(Option<&'a serde_json::value::RawValue>);

impl Serialize for ListOrEmpty<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(list) => list.serialize(s),
            None => s.collect_seq(std::iter::empty::<()>()),
        }
    }
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
