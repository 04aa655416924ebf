//! Sending a checked task: retries only where a failure cannot have
//! applied the batch, never past the deadline, and a read of the account
//! where it may have. The network is behind [`Transport`], so the whole
//! flow, retries and deadlines included, runs in native tests.

use crate::api::outcome::{
    classify_fault, classify_request_fault, classify_response, Failure, FailureKind, Success,
    TransportFault, Verification,
};
use crate::api::policy::BatchBody;
use crate::api::request::ApiRequest;
use crate::api::retry_after::format_rfc3339_ms;
use crate::api::transport::{AttemptLimits, Transport};
use crate::config::Config;
use crate::run::backoff::backoff_ms;
use crate::run::prepare::Prepared;
use crate::run::read_back::{reserve_ms, verify, RebuiltResult, Verdict};

/// What a finished call returns.
#[derive(Debug)]
pub struct Completed {
    /// The API's answer when it accepted the batch; `None` when nothing
    /// was sent, or the batch was found applied by reading back.
    pub success: Option<Success>,
    /// Batch requests sent.
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
    /// What the engine said of the earlier attempts.
    pub earlier: EarlierAttempt,
    /// List requests made.
    pub reads: u32,
    /// Found applied: the batch's result rebuilt from the read, and nothing
    /// was sent. `None`: none of it showed, and the batch was sent.
    pub applied: Option<RebuiltResult>,
}

/// A batch found applied by reading the account back.
#[derive(Debug)]
pub struct Verified {
    /// The failure after which the account was read.
    pub after: Failure,
    /// The batch's result rebuilt from what was read.
    pub result: RebuiltResult,
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
            return Ok(Completed {
                success: None,
                attempts: 0,
                verified: None,
                rechecked: Some(Rechecked {
                    earlier,
                    reads,
                    applied: Some(result),
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
    failure.note_first_sent(earlier.first_started_unix_ms);
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
    // Requests that left, as the result reports them; and tries, which
    // `max_retries` and the backoff count, so that a host that cannot be
    // reached still stops after `max_retries`.
    let mut attempts = 0u32;
    let mut tries = 0u32;
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
        tries += 1;
        if sent.as_ref().err().is_none_or(TransportFault::request_left) {
            attempts += 1;
        }
        let outcome = match sent {
            Ok(response) => classify_response(&response, transport.unix_ms()),
            Err(fault) => Err(classify_request_fault(&fault, &request.url)),
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
                failure.note_first_sent(sent_unix_ms);
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
        if !failure.auto_retryable() || tries > config.max_retries {
            failure.note_first_sent(sent_unix_ms);
            return Err(failure);
        }
        let wait = match failure.retry_after_ms {
            Some(ms) => ms,
            None => backoff_ms(tries - 1, transport.entropy()),
        };
        if transport.monotonic_ms().saturating_add(wait) >= deadline_ms {
            failure.retry_after_ms = Some(wait);
            failure
                .message
                .push_str("; not retried because the wait would pass timeout_ms");
            failure.note_first_sent(sent_unix_ms);
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
            return Settled::Applied(Verified {
                after: failure,
                result,
                reads,
            })
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
