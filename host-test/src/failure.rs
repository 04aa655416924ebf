//! The failure document: a task error in the contract's JSON form, as
//! `task-host run` prints it under `"error"` and the Conductor worker
//! reports it as `outputData`.

use serde_json::{json, Map, Value};

use crate::bindings::{ApiError, Document, FieldError, TaskError, Verification};

/// The contract's `kind` of an error.
pub fn error_kind(e: &TaskError) -> &'static str {
    match e {
        TaskError::InvalidConfig(_) => "invalid_config",
        TaskError::InvalidInput(_) => "invalid_input",
        TaskError::Denied(_) => "denied",
        TaskError::Transport(_) => "transport",
        TaskError::Api(_) => "api",
        TaskError::BadResponse(_) => "bad_response",
        TaskError::Unconfirmed(_) => "unconfirmed",
    }
}

/// The contract's JSON form of a failure (the object `task-host run` prints
/// under `"error"`).
pub fn error_to_json(e: &TaskError) -> Value {
    let kind = error_kind(e);
    match e {
        TaskError::InvalidConfig(problems) | TaskError::InvalidInput(problems) => {
            json!({
                "kind": kind,
                "message": problems_message(problems),
                "retryable": false,
                "may_have_applied": false,
                "status": null,
                "retry_after_ms": null,
                "errors": problems.iter().map(field_error_to_json).collect::<Vec<_>>(),
                "attempts": 0,
                "verification": "not_needed",
                "first_sent_unix_ms": null,
                "api_calls": 0,
            })
        }
        TaskError::Denied(failure)
        | TaskError::Transport(failure)
        | TaskError::Api(failure)
        | TaskError::BadResponse(failure)
        | TaskError::Unconfirmed(failure) => json!({
            "kind": kind,
            "message": failure.message,
            "retryable": failure.retryable,
            "may_have_applied": failure.may_have_applied,
            "status": failure.status,
            "retry_after_ms": failure.retry_after_ms,
            "errors": failure.api_errors.iter().map(api_error_to_json).collect::<Vec<_>>(),
            "attempts": failure.attempts,
            "verification": verification_name(failure.verification),
            "first_sent_unix_ms": failure.first_sent_unix_ms,
            "api_calls": failure.api_calls,
        }),
    }
}

/// The contract's name of a verification outcome.
pub fn verification_name(v: Verification) -> &'static str {
    match v {
        Verification::NotNeeded => "not_needed",
        Verification::SwitchedOff => "switched_off",
        Verification::Incomplete => "incomplete",
        Verification::NotVisible => "not_visible",
        Verification::Undetermined => "undetermined",
    }
}

/// "the config has 2 problems and the input 1 problem". The entry that
/// closes a list cut short counts for the problems it stands for, so the
/// number agrees with its "N more problems not listed".
fn problems_message(problems: &[FieldError]) -> String {
    let count = |document: Document| {
        problems
            .iter()
            .filter(|p| p.document == document)
            .map(|p| usize::try_from(p.unlisted.max(1)).unwrap_or(usize::MAX))
            .fold(0usize, usize::saturating_add)
    };
    let phrase = |n: usize| {
        if n == 1 {
            "1 problem".to_string()
        } else {
            format!("{n} problems")
        }
    };
    match (count(Document::Config), count(Document::Input)) {
        (0, input) => format!("the input has {}", phrase(input)),
        (config, 0) => format!("the config has {}", phrase(config)),
        (config, input) => format!(
            "the config has {} and the input {}",
            phrase(config),
            phrase(input)
        ),
    }
}

/// `{"pointer", "message", "document"}`, the form of a problem in errors and
/// warnings.
pub fn field_error_to_json(problem: &FieldError) -> Value {
    json!({
        "pointer": problem.pointer,
        "message": problem.message,
        "document": match problem.document {
            Document::Config => "config",
            Document::Input => "input",
        },
    })
}

/// A problem's pointer, `/` for the whole document (whose pointer is
/// empty), as log lines and reasons show it.
pub(crate) fn shown_pointer(problem: &FieldError) -> &str {
    if problem.pointer.is_empty() {
        "/"
    } else {
        &problem.pointer
    }
}

/// `{"code", "message", "pointer", "documentation_url"}` without the keys the
/// API did not give.
pub fn api_error_to_json(error: &ApiError) -> Value {
    let mut entry = Map::new();
    if let Some(code) = error.code {
        entry.insert("code".into(), code.into());
    }
    entry.insert("message".into(), error.message.clone().into());
    if let Some(pointer) = &error.pointer {
        entry.insert("pointer".into(), pointer.clone().into());
    }
    if let Some(url) = &error.documentation_url {
        entry.insert("documentation_url".into(), url.clone().into());
    }
    Value::Object(entry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::CallFailure;

    fn failure() -> CallFailure {
        CallFailure {
            message: "the API refused the batch".into(),
            retryable: true,
            may_have_applied: false,
            status: Some(429),
            retry_after_ms: Some(2000),
            api_errors: vec![
                ApiError {
                    code: Some(10000),
                    message: "rate limited".into(),
                    pointer: Some("/posts/0".into()),
                    documentation_url: Some("https://developers.cloudflare.com/".into()),
                },
                ApiError {
                    code: None,
                    message: "bare".into(),
                    pointer: None,
                    documentation_url: None,
                },
            ],
            attempts: 3,
            verification: Verification::Undetermined,
            first_sent_unix_ms: None,
            api_calls: 3,
        }
    }

    #[test]
    fn invalid_documents_list_every_problem() {
        let problems = vec![
            FieldError {
                document: Document::Config,
                pointer: "/api_token".into(),
                message: "expected a string".into(),
                unlisted: 0,
            },
            FieldError {
                document: Document::Config,
                pointer: "".into(),
                message: "unknown field \"x\"".into(),
                unlisted: 0,
            },
        ];
        assert_eq!(
            error_to_json(&TaskError::InvalidConfig(problems)),
            json!({
                "kind": "invalid_config",
                "message": "the config has 2 problems",
                "retryable": false,
                "may_have_applied": false,
                "status": null,
                "retry_after_ms": null,
                "errors": [
                    {"pointer": "/api_token", "message": "expected a string", "document": "config"},
                    {"pointer": "", "message": "unknown field \"x\"", "document": "config"},
                ],
                "attempts": 0,
                "verification": "not_needed",
                "first_sent_unix_ms": null,
                "api_calls": 0,
            })
        );

        let input = TaskError::InvalidInput(vec![FieldError {
            document: Document::Input,
            pointer: "/posts/3/pattern_type".into(),
            message: "bad".into(),
            unlisted: 0,
        }]);
        let value = error_to_json(&input);
        assert_eq!(value["kind"], "invalid_input");
        assert_eq!(value["message"], "the input has 1 problem");
        assert_eq!(value["errors"][0]["document"], "input");

        let both = TaskError::InvalidConfig(vec![
            FieldError {
                document: Document::Config,
                pointer: "/a".into(),
                message: "m".into(),
                unlisted: 0,
            },
            FieldError {
                document: Document::Input,
                pointer: "/b".into(),
                message: "m".into(),
                unlisted: 0,
            },
            FieldError {
                document: Document::Input,
                pointer: "/c".into(),
                message: "m".into(),
                unlisted: 0,
            },
        ]);
        assert_eq!(
            error_to_json(&both)["message"],
            "the config has 1 problem and the input 2 problems"
        );
    }

    /// A list cut short ends with an entry that stands for the rest: the
    /// message counts those too, as that entry's own words do.
    #[test]
    fn a_list_cut_short_counts_every_problem() {
        let mut problems: Vec<FieldError> = (0..1000)
            .map(|i| FieldError {
                document: Document::Input,
                pointer: format!("/posts/{i}"),
                message: "bad".into(),
                unlisted: 0,
            })
            .collect();
        problems.push(FieldError {
            document: Document::Input,
            pointer: String::new(),
            message: "5000 more problems not listed (only the first 1000 are)".into(),
            unlisted: 5000,
        });
        let value = error_to_json(&TaskError::InvalidInput(problems));
        assert_eq!(value["message"], "the input has 6000 problems");
    }

    #[test]
    fn call_failures_carry_the_record_and_omit_absent_api_fields() {
        let expected_errors = json!([
            {
                "code": 10000,
                "message": "rate limited",
                "pointer": "/posts/0",
                "documentation_url": "https://developers.cloudflare.com/",
            },
            {"message": "bare"},
        ]);
        for (error, kind) in [
            (TaskError::Denied(failure()), "denied"),
            (TaskError::Transport(failure()), "transport"),
            (TaskError::Api(failure()), "api"),
            (TaskError::BadResponse(failure()), "bad_response"),
        ] {
            assert_eq!(
                error_to_json(&error),
                json!({
                    "kind": kind,
                    "message": "the API refused the batch",
                    "retryable": true,
                    "may_have_applied": false,
                    "status": 429,
                    "retry_after_ms": 2000,
                    "errors": expected_errors,
                    "attempts": 3,
                    "verification": "undetermined",
                    "first_sent_unix_ms": null,
                    "api_calls": 3,
                })
            );
        }
    }

    #[test]
    fn absent_status_and_retry_after_are_null() {
        let mut f = failure();
        f.status = None;
        f.retry_after_ms = None;
        f.api_errors.clear();
        let value = error_to_json(&TaskError::Transport(f));
        assert_eq!(value["status"], Value::Null);
        assert_eq!(value["retry_after_ms"], Value::Null);
        assert_eq!(value["errors"], json!([]));
        assert_eq!(value.as_object().unwrap().len(), 11);
    }
}
