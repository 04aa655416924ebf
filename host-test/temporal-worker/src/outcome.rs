//! What Temporal is told about a task: the result, or a failure shaped so
//! that Temporal's own retry policy does the right thing with it.
//!
//! The decision itself is the host's ([`host_test::attempts`]), shared by
//! every engine; this module only says it in Temporal's terms, as plain
//! data that tests can look at.

use std::time::Duration;

use host_test::attempts::Disposition;
use host_test::{error_kind, error_to_json, TaskError, WallClockLimitExceeded};
use serde_json::{json, Value};

/// An activity's ending, before it becomes an `ActivityError`.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// The result document.
    Completed(Value),
    /// An application failure: `kind` is its type (the contract's error
    /// kind, or `host_error`), `document` its details (the failure document
    /// hosts print, `{"error": ...}` or `{"host_error": ...}`).
    Failed {
        kind: String,
        message: String,
        document: Value,
        non_retryable: bool,
        /// The wait the API asked for, as the next retry's delay.
        next_retry_delay: Option<Duration>,
    },
}

/// The ending of a run whose outcome is `outcome`, judged `disposition`.
///
/// | disposition | Temporal |
/// | --- | --- |
/// | completed | the result document |
/// | nothing applied, may succeed later | retryable, the next retry after `retry_after_ms` when given |
/// | may have applied, reading back left it open | retryable: the next attempt reads the account before sending |
/// | terminal | non-retryable |
pub fn ending(
    outcome: anyhow::Result<Result<String, TaskError>>,
    disposition: Disposition,
) -> Ending {
    let (kind, message, document) = match outcome {
        Ok(Ok(text)) => {
            let document = serde_json::from_str(&text).unwrap_or(json!({ "output": text }));
            return Ending::Completed(document);
        }
        Ok(Err(error)) => {
            let body = error_to_json(&error);
            let message = format!(
                "{}: {}",
                error_kind(&error),
                body["message"].as_str().unwrap_or_default()
            );
            (error_kind(&error), message, json!({ "error": body }))
        }
        Err(host_failure) => {
            let timed_out = host_failure.is::<WallClockLimitExceeded>();
            let message = format!("the component did not finish: {host_failure:#}");
            let document =
                json!({ "host_error": { "message": message, "may_have_applied": timed_out } });
            ("host_error", message, document)
        }
    };
    let (non_retryable, next_retry_delay) = match disposition {
        Disposition::Completed | Disposition::Terminal => (true, None),
        Disposition::RetryNothingApplied { after } => (false, after),
        Disposition::RetryChecked => (false, None),
    };
    Ending::Failed {
        kind: kind.to_string(),
        message,
        document,
        non_retryable,
        next_retry_delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use host_test::attempts::disposition;
    use host_test::{CallFailure, FieldError, Verification};

    fn failure(retryable: bool, may_have_applied: bool, verification: Verification) -> CallFailure {
        CallFailure {
            message: "the API answered 429 Too Many Requests".into(),
            retryable,
            may_have_applied,
            status: Some(429),
            retry_after_ms: Some(7_000),
            api_errors: Vec::new(),
            attempts: 1,
            verification,
            first_sent_unix_ms: None,
            api_calls: 0,
        }
    }

    fn judged(outcome: anyhow::Result<Result<String, TaskError>>) -> Ending {
        let d = disposition(&outcome, true);
        ending(outcome, d)
    }

    #[test]
    fn success_is_the_result_document() {
        let done = judged(Ok(Ok(r#"{"success":true,"status":200}"#.into())));
        assert_eq!(
            done,
            Ending::Completed(json!({"success": true, "status": 200}))
        );
    }

    #[test]
    fn each_failure_carries_its_kind_and_document_and_retries_only_when_safe() {
        let limited = judged(Ok(Err(TaskError::Api(failure(
            true,
            false,
            Verification::NotNeeded,
        )))));
        let Ending::Failed {
            kind,
            message,
            document,
            non_retryable,
            next_retry_delay,
        } = limited
        else {
            panic!("a failure");
        };
        assert_eq!(kind, "api");
        assert!(
            message.starts_with("api: the API answered 429"),
            "{message}"
        );
        assert_eq!(document["error"]["retry_after_ms"], 7_000);
        assert!(!non_retryable);
        assert_eq!(next_retry_delay, Some(Duration::from_secs(7)));

        let invalid = judged(Ok(Err(TaskError::InvalidInput(vec![FieldError {
            document: host_test::Document::Input,
            pointer: "/posts/0/pattern".into(),
            message: "required".into(),
            unlisted: 0,
        }]))));
        let Ending::Failed {
            kind,
            document,
            non_retryable,
            ..
        } = invalid
        else {
            panic!("a failure");
        };
        assert_eq!(kind, "invalid_input");
        assert_eq!(
            document["error"]["errors"][0]["pointer"],
            "/posts/0/pattern"
        );
        assert!(non_retryable);

        // May have applied: retried, because the retry looks first; not
        // when reading back could not decide.
        let open = judged(Ok(Err(TaskError::Api(failure(
            true,
            true,
            Verification::NotVisible,
        )))));
        assert!(matches!(
            open,
            Ending::Failed {
                non_retryable: false,
                next_retry_delay: None,
                ..
            }
        ));
        let undecided = judged(Ok(Err(TaskError::Api(failure(
            true,
            true,
            Verification::Undetermined,
        )))));
        assert!(matches!(
            undecided,
            Ending::Failed {
                non_retryable: true,
                ..
            }
        ));
    }

    #[test]
    fn a_run_that_did_not_finish_is_a_host_error() {
        let trapped = judged(Err(anyhow::anyhow!("wasm trap: unreachable")));
        let Ending::Failed {
            kind,
            document,
            non_retryable,
            ..
        } = trapped
        else {
            panic!("a failure");
        };
        assert_eq!(kind, "host_error");
        assert_eq!(document["host_error"]["may_have_applied"], false);
        assert!(non_retryable);
    }
}
