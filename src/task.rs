//! A task from parameter text to a result document: validate, build, send
//! with safe retries, classify. The network is behind [`Transport`], so the
//! whole flow, retries and deadlines included, runs in native tests.

use crate::config::{parse_config, Config};
use crate::http_date::format_rfc3339_ms;
use crate::input_reader::{read_clean, CleanInput};
use crate::json::parse_document;
use crate::outcome::{
    classify_fault, classify_response, Failure, FailureKind, RawResponse, Success, TransportFault,
    Verification,
};
use crate::policy::{BatchBody, Counts};
use crate::problems::{Document, Pointer, Problem, Report};
use crate::request::{build_request, request_with_body, ApiRequest};
use crate::retry::backoff_ms;
use crate::sync::SyncSpec;
use crate::validate::{parse_input, ValidInput};
use crate::verify::{reserve_ms, verify, Verdict};
use serde::Serialize;
use std::sync::OnceLock;

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
    /// The account the batch goes to, from the input or else the config.
    pub account_id: String,
    /// What the request's body says, for verification to look for; see
    /// [`Prepared::batch`].
    batch: OnceLock<BatchBody>,
    /// `None` for an empty batch, which is not sent, and in sync mode.
    pub request: Option<ApiRequest>,
    /// Sync mode: the policies the account should have.
    pub sync: Option<SyncSpec>,
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
    // Nearly every input is a clean batch, read in one pass with its body
    // written as it is read; any other goes to the full reader, which
    // names each problem.
    let (input, input_names_account) = match read_clean(input_text) {
        Some(clean) => {
            let names_account = clean.account_id.is_some();
            (Some(Input::Clean(clean)), names_account)
        }
        None => {
            let value = parse_document(input_text, Document::Input, &mut report);
            let input = value.as_ref().and_then(|v| parse_input(v, &mut report));
            (input.map(Input::Full), names_account(&value))
        }
    };

    // The account may come from either document; when both are objects and
    // neither names it, that is a problem of the input's.
    if !names_account(&config_value) && !input_names_account {
        report.error(
            Document::Input,
            &Pointer::root().key("account_id"),
            "required field is missing: give account_id in the input or in the config",
        );
    }
    let input_account = input.as_ref().and_then(|input| match input {
        Input::Clean(clean) => clean.account_id.clone(),
        Input::Full(valid) => valid.account_id.clone(),
    });
    let account_id = input_account.or_else(|| config.as_ref().and_then(|c| c.account_id.clone()));

    match (config, input, account_id) {
        (Some(config), Some(input), Some(account_id)) if report.error_count() == 0 => {
            let (counts, batch, request, sync) = match input {
                // Kept as its body alone; see [`Prepared::batch`].
                Input::Clean(clean) => {
                    let request = (clean.counts != Counts::default())
                        .then(|| request_with_body(&config, &account_id, clean.body_text));
                    (clean.counts, OnceLock::new(), request, None)
                }
                Input::Full(valid) => {
                    let request = (!valid.body.is_empty())
                        .then(|| build_request(&config, &account_id, &valid.body));
                    let counts = valid.body.counts();
                    (counts, OnceLock::from(valid.body), request, valid.sync)
                }
            };
            Ok(Prepared {
                config,
                account_id,
                batch,
                request,
                sync,
                counts,
                warnings: report.take_warnings(),
            })
        }
        _ if config_failed => Err(TaskError::InvalidConfig(report.into_errors())),
        _ => Err(TaskError::InvalidInput(report.into_errors())),
    }
}

impl Prepared {
    /// The batch as items. A batch read in one pass
    /// ([`crate::input_reader`]) keeps only the body it wrote, since only
    /// reading the account back needs the items; they are read from that
    /// body the first time they are asked for. The one-pass reader and the
    /// full one give the same body for the same items, so reading it back
    /// cannot fail.
    pub fn batch(&self) -> &BatchBody {
        self.batch.get_or_init(|| {
            let Some(request) = &self.request else {
                return BatchBody::default();
            };
            let mut report = Report::default();
            parse_document(&request.body, Document::Input, &mut report)
                .and_then(|v| parse_input(&v, &mut report))
                .map(|input| input.body)
                .unwrap_or_default()
        })
    }
}

/// The input as one of the two readers read it.
enum Input {
    Clean(CleanInput),
    Full(ValidInput),
}

/// Whether a parsed document names the account: a document that is not an
/// object has a problem of its own already.
fn names_account(value: &Option<serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Object(map)) => map.contains_key("account_id"),
        _ => true,
    }
}

/// The dry-run document: `{"dry_run": true, "skipped", "request",
/// "warnings", "counts", "plan": null}`, written around the body rather
/// than parsing it again ([`ApiRequest::write_view`]).
pub fn preview_json(prepared: &Prepared) -> String {
    let body_len = prepared.request.as_ref().map_or(0, |r| r.body.len());
    let mut out = String::with_capacity(body_len + 1024);
    out.push_str("{\"dry_run\":true,\"skipped\":");
    out.push_str(match &prepared.request {
        Some(_) => "false",
        None => "true",
    });
    out.push_str(",\"request\":");
    match &prepared.request {
        Some(request) => request.write_view(&mut out),
        None => out.push_str("null"),
    }
    // Strings and numbers: serialising cannot fail.
    out.push_str(",\"warnings\":");
    out.push_str(&serde_json::to_string(&prepared.warnings).unwrap_or_default());
    out.push_str(",\"counts\":");
    out.push_str(&serde_json::to_string(&prepared.counts).unwrap_or_default());
    // Sync mode's plan; see [`crate::sync_task::preview`].
    out.push_str(",\"plan\":null}");
    out
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
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault>;
}

/// What a finished call returns.
#[derive(Debug)]
pub struct Completed {
    pub success: Option<Success>,
    pub attempts: u32,
    /// Set when the batch failed in a way that may have applied it, and
    /// reading the account back showed that it was.
    pub verified: Option<Verified>,
    /// Set when the task was run again after an earlier attempt and the
    /// account was read before sending.
    pub rechecked: Option<Rechecked>,
}

/// What an engine knows of the earlier attempts of a task it runs again
/// (a retry, or a task handed out again after its outcome was lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlierAttempt {
    /// The earliest moment an earlier attempt may have sent the batch, in
    /// milliseconds since the Unix epoch: policies like the batch's posts
    /// created since then are taken for its own. Earlier is safe (a
    /// look-alike from someone else may pass for the batch's); later is
    /// not (the batch's own posts would look older and be created again).
    pub first_started_unix_ms: u64,
}

/// The account as read before a task run again sent anything.
#[derive(Debug)]
pub struct Rechecked {
    pub earlier: EarlierAttempt,
    /// List requests made.
    pub reads: u32,
    /// Found applied: the batch's result rebuilt from the read, and nothing
    /// was sent. `None`: none of it showed, and the batch was sent.
    pub applied: Option<Box<serde_json::value::RawValue>>,
}

/// A batch found applied by reading the account back.
#[derive(Debug)]
pub struct Verified {
    /// The failure after which the account was read.
    pub after: Failure,
    /// The batch's result rebuilt from what was read.
    pub result: Box<serde_json::value::RawValue>,
    /// List requests made to find out.
    pub reads: u32,
}

/// Sends the prepared request, retrying only failures that cannot have been
/// applied, and never waiting past the deadline. A failure that may have
/// applied is checked by reading the account back, when the config asks for
/// it (it does by default): found applied, the task succeeds; found not
/// applied, a batch without posts is sent again (a repeat cannot apply it
/// twice), one with posts is left to the engine.
pub fn execute(prepared: &Prepared, transport: &mut impl Transport) -> Result<Completed, Failure> {
    let Some(request) = &prepared.request else {
        return Ok(Completed {
            success: None,
            attempts: 0,
            verified: None,
            rechecked: None,
        });
    };
    let deadline_ms = transport
        .monotonic_ms()
        .saturating_add(prepared.config.timeout_ms);
    send_batch(
        &prepared.config,
        &prepared.account_id,
        &|| prepared.batch(),
        request,
        transport,
        deadline_ms,
    )
}

/// Runs a task that an engine hands out again after an attempt whose
/// outcome it does not know: the account is read first (two reads a few
/// seconds apart when nothing shows, as after an ambiguous failure), and
/// the batch is sent only when none of it is visible. Found applied, the
/// task succeeds without sending. When the read fails or cannot decide,
/// nothing is sent and the failure is [`FailureKind::Unconfirmed`].
///
/// Not read first, because sending again cannot apply them twice: a batch
/// of puts and patches alone (they land on the same values), an empty one,
/// and any batch when the config switches verification off (the engine is
/// then told that a failure which may have applied cannot be retried).
/// Sync mode re-plans from the account on every run and needs no check.
pub fn execute_again(
    prepared: &Prepared,
    earlier: EarlierAttempt,
    transport: &mut impl Transport,
) -> Result<Completed, Failure> {
    let config = &prepared.config;
    let counts = prepared.counts;
    let repeat_is_harmless = counts.posts == 0 && counts.deletes == 0;
    let Some(request) = &prepared.request else {
        return execute(prepared, transport);
    };
    if repeat_is_harmless || !config.verify_after_failure {
        return execute(prepared, transport);
    }
    let batch = prepared.batch();
    let deadline_ms = transport.monotonic_ms().saturating_add(config.timeout_ms);
    let since = earlier.first_started_unix_ms;
    let verdict = verify(
        config,
        &prepared.account_id,
        batch,
        since,
        transport,
        deadline_ms,
    );
    let reads = match verdict {
        Verdict::NotVisible { reads } => reads,
        Verdict::Applied { result, reads } => {
            // Built from JSON just read, so it parses; if it did not, the
            // check would have no verdict.
            let Ok(applied) = serde_json::value::RawValue::from_string(result) else {
                let why = "the result read back is not JSON".to_string();
                return Err(unconfirmed(earlier, why, Verification::Incomplete, None));
            };
            return Ok(Completed {
                success: None,
                attempts: 0,
                verified: None,
                rechecked: Some(Rechecked {
                    earlier,
                    reads,
                    applied: Some(applied),
                }),
            });
        }
        Verdict::Undetermined { why, .. } => {
            return Err(unconfirmed(earlier, why, Verification::Undetermined, None));
        }
        Verdict::Incomplete {
            why, read_failure, ..
        } => {
            return Err(unconfirmed(
                earlier,
                why,
                Verification::Incomplete,
                read_failure,
            ));
        }
    };
    let mut completed = send_batch_since(
        config,
        &prepared.account_id,
        &|| batch,
        request,
        transport,
        deadline_ms,
        since,
    )?;
    completed.rechecked = Some(Rechecked {
        earlier,
        reads,
        applied: None,
    });
    Ok(completed)
}

/// The failure of a check before sending that reached no verdict. A read
/// that failed (`incomplete`, with the read's own failure when there was
/// one) may succeed later: retryable, after the read's `Retry-After`. An
/// account that does not say (`undetermined`) will say the same to the next
/// check: terminal, for someone to look.
fn unconfirmed(
    earlier: EarlierAttempt,
    why: String,
    verification: Verification,
    read: Option<Failure>,
) -> Failure {
    let mut failure = classify_fault(&TransportFault::BeforeSend(String::new()));
    failure.kind = FailureKind::Unconfirmed;
    failure.may_have_applied = true;
    failure.retryable = verification == Verification::Incomplete;
    failure.verification = verification;
    if let Some(read) = read {
        failure.status = read.status;
        failure.retry_after_ms = read.retry_after_ms;
        failure.api_errors = read.api_errors;
    }
    failure.message = format!(
        "an earlier attempt of this task, started at {} or later, may have applied the batch, and reading the account first could not tell, so the batch was not sent: {why}",
        format_rfc3339_ms(earlier.first_started_unix_ms)
    );
    failure
}

/// Sends one batch until `deadline_ms`, as [`execute`] describes.
///
/// `batch` gives the batch's items; it is called only when a failure needs
/// the account read back (see [`Prepared::batch`]).
pub fn send_batch<'b>(
    config: &Config,
    account_id: &str,
    batch: &dyn Fn() -> &'b BatchBody,
    request: &ApiRequest,
    transport: &mut impl Transport,
    deadline_ms: u64,
) -> Result<Completed, Failure> {
    let sent_unix_ms = transport.unix_ms();
    send_batch_since(
        config,
        account_id,
        batch,
        request,
        transport,
        deadline_ms,
        sent_unix_ms,
    )
}

/// [`send_batch`], taking policies like its posts created since
/// `sent_unix_ms` for the batch's own when reading back.
fn send_batch_since<'b>(
    config: &Config,
    account_id: &str,
    batch: &dyn Fn() -> &'b BatchBody,
    request: &ApiRequest,
    transport: &mut impl Transport,
    deadline_ms: u64,
    sent_unix_ms: u64,
) -> Result<Completed, Failure> {
    let mut attempts = 0u32;
    // Set once the batch was sent again after reading back showed nothing:
    // the first request may still land, so no later failure can say it
    // cannot have applied without reading the account again.
    let mut resent_in_doubt = false;
    loop {
        let now = transport.monotonic_ms();
        // Time kept back for reading the account after an ambiguous failure.
        let send_deadline_ms = if config.verify_after_failure {
            deadline_ms - reserve_ms(deadline_ms.saturating_sub(now))
        } else {
            deadline_ms
        };
        let remaining = send_deadline_ms.saturating_sub(now).max(1);
        let limits = AttemptLimits {
            connect_timeout_ms: config.connect_timeout_ms.min(remaining),
            first_byte_timeout_ms: remaining,
            between_bytes_timeout_ms: remaining,
            deadline_ms: send_deadline_ms.max(now + 1),
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
                    verified: None,
                    rechecked: None,
                });
            }
            Err(failure) => failure,
        };
        failure.attempts = attempts;
        // Whether this failure itself leaves the batch in doubt, rather
        // than an earlier request that may still land.
        let in_doubt = failure.may_have_applied;
        if resent_in_doubt && failure.kind != FailureKind::Denied {
            failure.may_have_applied = true;
        }
        if failure.may_have_applied {
            if !config.verify_after_failure {
                failure.verification = Verification::SwitchedOff;
                return Err(failure);
            }
            let batch = batch();
            let verdict = verify(
                config,
                account_id,
                batch,
                sent_unix_ms,
                transport,
                deadline_ms,
            );
            match settle(failure, verdict, batch, in_doubt) {
                Settled::Applied(verified) => {
                    return Ok(Completed {
                        success: None,
                        attempts,
                        verified: Some(verified),
                        rechecked: None,
                    })
                }
                Settled::Failed(f) => {
                    resent_in_doubt |=
                        f.verification == Verification::NotVisible && !f.may_have_applied;
                    failure = f;
                }
            }
        }
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

enum Settled {
    Applied(Verified),
    Failed(Failure),
}

/// The failure as verification leaves it: applied becomes a success;
/// not applied makes a batch without posts safe to send again (when the
/// failure itself was the doubt: a refusal read back after a re-send stays
/// as retryable as it was); anything else leaves the failure as it was,
/// saying what was seen.
fn settle(mut failure: Failure, verdict: Verdict, batch: &BatchBody, in_doubt: bool) -> Settled {
    let reads = |n: u32| {
        if n == 1 {
            "1 read".to_string()
        } else {
            format!("{n} reads")
        }
    };
    match verdict {
        Verdict::Applied { result, reads } => {
            match serde_json::value::RawValue::from_string(result) {
                Ok(result) => {
                    return Settled::Applied(Verified {
                        after: failure,
                        result,
                        reads,
                    })
                }
                // Built from JSON just read; cannot happen, and if it did
                // the failure would stand.
                Err(_) => failure.verification = Verification::Incomplete,
            }
        }
        Verdict::NotVisible { reads: n } => {
            failure.verification = Verification::NotVisible;
            failure.retryable |= in_doubt;
            if batch.posts.is_empty() {
                failure.may_have_applied = false;
                failure.message.push_str(&format!(
                    "; the account, read back ({}, a few seconds apart), shows none of the batch's effects, so it was not applied",
                    reads(n)
                ));
            } else {
                failure.message.push_str(&format!(
                    "; the account, read back ({}, a few seconds apart), shows none of the batch's effects yet, but the request may still be running on the server, so the batch, which creates policies, is not sent again",
                    reads(n)
                ));
            }
        }
        Verdict::Undetermined { why, reads: n } => {
            failure.verification = Verification::Undetermined;
            failure.message.push_str(&format!(
                "; reading the account back ({}) could not tell whether it was applied: {why}",
                reads(n)
            ));
        }
        Verdict::Incomplete { why, .. } => {
            failure.verification = Verification::Incomplete;
            failure
                .message
                .push_str(&format!("; it could not be checked: {why}"));
        }
    }
    Settled::Failed(failure)
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
        verification: Option<VerificationView<'a>>,
        /// Sync mode's summary; see [`crate::sync_task::run`].
        sync: Option<()>,
    }
    #[derive(Serialize)]
    struct VerificationView<'a> {
        outcome: &'static str,
        after: AfterView<'a>,
        reads: u32,
    }
    #[derive(Serialize)]
    struct AfterView<'a> {
        kind: &'static str,
        message: &'a str,
        status: Option<u16>,
    }
    let success = completed.success.as_ref();
    let verified = completed.verified.as_ref();
    let rechecked = completed.rechecked.as_ref();
    let earlier_message = rechecked.map(|r| {
        let started = format_rfc3339_ms(r.earlier.first_started_unix_ms);
        match r.applied {
            Some(_) => format!("an earlier attempt of this task, started at {started} or later, applied the batch; nothing was sent"),
            None => format!("an earlier attempt of this task started at {started} or later; the account showed none of the batch's effects, so the batch was sent"),
        }
    });
    let verification = match (verified, rechecked, &earlier_message) {
        (Some(v), _, _) => Some(VerificationView {
            outcome: "applied",
            after: AfterView {
                kind: kind_name(v.after.kind),
                message: &v.after.message,
                status: v.after.status,
            },
            reads: v.reads,
        }),
        (None, Some(r), Some(message)) => Some(VerificationView {
            outcome: if r.applied.is_some() {
                "applied"
            } else {
                "not_visible"
            },
            after: AfterView {
                kind: "earlier_attempt",
                message,
                status: None,
            },
            reads: r.reads,
        }),
        _ => None,
    };
    // Strings, numbers and JSON already checked: serialising cannot fail.
    serde_json::to_string(&Output {
        success: true,
        skipped: success.is_none()
            && verified.is_none()
            && rechecked.is_none_or(|r| r.applied.is_none()),
        status: success.map(|s| s.status),
        attempts: completed.attempts,
        result: match (verified, rechecked.and_then(|r| r.applied.as_deref())) {
            (Some(v), _) => Some(&*v.result),
            (None, Some(applied)) => Some(applied),
            (None, None) => success.and_then(|s| s.result.as_deref()),
        },
        messages: ListOrEmpty(success.and_then(|s| s.messages.as_deref())),
        errors: ListOrEmpty(success.and_then(|s| s.errors.as_deref())),
        warnings: &prepared.warnings,
        counts: prepared.counts,
        verification,
        sync: None,
    })
    .unwrap_or_default()
}

/// The contract's `kind` of a call failure.
pub fn kind_name(kind: FailureKind) -> &'static str {
    match kind {
        FailureKind::Denied => "denied",
        FailureKind::Transport => "transport",
        FailureKind::Api => "api",
        FailureKind::BadResponse => "bad_response",
        FailureKind::Unconfirmed => "unconfirmed",
    }
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
pub(crate) mod scripted;
#[cfg(test)]
mod tests;
