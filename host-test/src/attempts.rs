//! Running a task again without applying its batch twice: the one rule
//! every engine adapter follows, whatever the engine calls an attempt.
//!
//! An engine runs a task again on its own: after a failure it retries, and
//! after a report it never got (a lost update, a worker that died, a
//! response timeout) it hands the task out anew. The API has no
//! idempotency key, so a batch that was applied and is sent again creates
//! its policies twice, or is refused because its deletes are gone. An
//! adapter therefore runs every repeat with [`Delivery::Again`], which
//! reads the account before sending (`run-task-again`); and because every
//! repeat checks first, a failure that may have applied can be handed back
//! to the engine's own retries ([`Disposition::RetryChecked`]) instead of
//! stopping the workflow.

use std::time::Duration;

use crate::bindings::{EarlierAttempt, TaskError, Verification};
use crate::wall_clock::WallClockLimitExceeded;

/// How an engine handed out a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The first attempt: nothing can have been sent before.
    First,
    /// A retry, or the same task handed out again: an earlier attempt that
    /// started no earlier than this may have applied the batch.
    Again(EarlierAttempt),
}

/// What an engine should do with a task's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// The task succeeded.
    Completed,
    /// Nothing this attempt did can have applied the batch (a 429, no
    /// connection, or a check before sending that could not read): retry,
    /// after `after` when the API asked for a wait.
    RetryNothingApplied { after: Option<Duration> },
    /// This attempt may have applied the batch, and reading back did not
    /// say it did not: retry, since the retry is run with
    /// [`Delivery::Again`] and looks before it sends.
    RetryChecked,
    /// Retrying cannot help (the parameters, the host's policy, the API's
    /// refusal), or would not be safe (reading back could not decide, or
    /// is switched off, so a retry could not look first).
    Terminal,
}

/// The disposition of `outcome`, as `run-task` or `run-task-again`
/// returned it. `checks_first` is whether a repeat reads the account
/// before sending: the config's `verify_after_failure`.
pub fn disposition(
    outcome: &anyhow::Result<Result<String, TaskError>>,
    checks_first: bool,
) -> Disposition {
    let failure = match outcome {
        Ok(Ok(_)) => return Disposition::Completed,
        Ok(Err(TaskError::InvalidConfig(_) | TaskError::InvalidInput(_))) => {
            return Disposition::Terminal
        }
        Ok(Err(
            TaskError::Denied(f)
            | TaskError::Transport(f)
            | TaskError::Api(f)
            | TaskError::BadResponse(f)
            | TaskError::Unconfirmed(f),
        )) => f,
        // The component did not finish. Past its wall-clock limit it may
        // have sent the batch; anything else (a trap, an instance that
        // cannot start) will not mend itself.
        Err(host_failure) if host_failure.is::<WallClockLimitExceeded>() && checks_first => {
            return Disposition::RetryChecked
        }
        Err(_) => return Disposition::Terminal,
    };
    let unconfirmed = matches!(outcome, Ok(Err(TaskError::Unconfirmed(_))));
    if !failure.retryable {
        return Disposition::Terminal;
    }
    // A check before sending that could not read sent nothing itself.
    if !failure.may_have_applied || unconfirmed {
        return Disposition::RetryNothingApplied {
            after: failure.retry_after_ms.map(Duration::from_millis),
        };
    }
    match failure.verification {
        Verification::Incomplete | Verification::NotVisible if checks_first => {
            Disposition::RetryChecked
        }
        _ => Disposition::Terminal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::CallFailure;

    fn failure(retryable: bool, may_have_applied: bool, verification: Verification) -> CallFailure {
        CallFailure {
            message: "m".into(),
            retryable,
            may_have_applied,
            status: None,
            retry_after_ms: Some(2_500),
            api_errors: Vec::new(),
            attempts: 1,
            verification,
            first_sent_unix_ms: None,
            api_calls: 0,
        }
    }

    #[test]
    fn only_what_a_repeat_can_check_goes_back_to_the_engine() {
        use Verification::*;
        let api = |r, m, v| Ok(Err(TaskError::Api(failure(r, m, v))));
        let later = Disposition::RetryNothingApplied {
            after: Some(Duration::from_millis(2_500)),
        };
        assert_eq!(
            disposition(&Ok(Ok("{}".into())), true),
            Disposition::Completed
        );
        assert_eq!(disposition(&api(true, false, NotNeeded), true), later);
        assert_eq!(
            disposition(&api(false, false, NotNeeded), true),
            Disposition::Terminal
        );
        for checked in [Incomplete, NotVisible] {
            assert_eq!(
                disposition(&api(true, true, checked), true),
                Disposition::RetryChecked
            );
            assert_eq!(
                disposition(&api(true, true, checked), false),
                Disposition::Terminal,
                "a repeat that cannot look first must not be made"
            );
        }
        for undecided in [Undetermined, SwitchedOff] {
            assert_eq!(
                disposition(&api(true, true, undecided), true),
                Disposition::Terminal
            );
        }
        let unconfirmed = |r, v| Ok(Err(TaskError::Unconfirmed(failure(r, true, v))));
        assert_eq!(disposition(&unconfirmed(true, Incomplete), true), later);
        assert_eq!(
            disposition(&unconfirmed(false, Undetermined), true),
            Disposition::Terminal
        );
        let invalid = Ok(Err(TaskError::InvalidInput(Vec::new())));
        assert_eq!(disposition(&invalid, true), Disposition::Terminal);
    }

    #[test]
    fn a_task_that_ran_out_of_time_is_retried_only_when_the_retry_looks_first() {
        let limit = || {
            Err(anyhow::Error::new(WallClockLimitExceeded {
                limit: Duration::from_secs(35),
            }))
        };
        assert_eq!(disposition(&limit(), true), Disposition::RetryChecked);
        assert_eq!(disposition(&limit(), false), Disposition::Terminal);
        let trap = Err(anyhow::anyhow!("wasm trap"));
        assert_eq!(disposition(&trap, true), Disposition::Terminal);
    }
}
