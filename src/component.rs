//! The `task` export: hands each call to [`crate::run`] and converts its
//! results into the WIT types.
//!
//! Everything `prepare`, `run-task` and `export-policies` return passes
//! through [`Secrets`] on its way out: this is the one place every output
//! goes through, so a credential that reached a message, a pointer or the API's
//! answer by any road is caught here.

use crate::api::outcome::{ApiError, Failure, FailureKind, Verification};
use crate::api::transport::Counted;
use crate::bindings::exports::workflow::http_task::task as wit;
use crate::params::problems::{Document, Problem};
use crate::run::documents::{preview_json, success_json};
use crate::run::export::export_policies;
use crate::run::prepare::{prepare, TaskError};
use crate::run::redact::Secrets;
use crate::run::send::{execute, execute_again, EarlierAttempt};
use crate::run::sync_run;
use crate::wasi_http::WasiTransport;

struct Component;

impl wit::Guest for Component {
    fn describe() -> String {
        crate::schema::DESCRIBE.to_string()
    }

    fn prepare(config: String, input: String) -> Result<String, wit::TaskError> {
        let secrets = Secrets::from_config(&config);
        let fail = |e: TaskError| into_wit(secrets.redact_error(e));
        let prepared = prepare(&config, &input).map_err(fail)?;
        let preview = match &prepared.sync {
            // Sync mode reads the account to show the plan; it never writes.
            Some(spec) => {
                sync_run::preview(&prepared, spec, &mut WasiTransport::new()).map_err(fail)?
            }
            None => preview_json(&prepared),
        };
        Ok(secrets.redact_json(preview))
    }

    fn run_task(config: String, input: String) -> Result<String, wit::TaskError> {
        run(&config, &input, None)
    }

    fn run_task_again(
        config: String,
        input: String,
        earlier: wit::EarlierAttempt,
    ) -> Result<String, wit::TaskError> {
        let earlier = EarlierAttempt {
            first_started_unix_ms: earlier.first_started_unix_ms,
        };
        run(&config, &input, Some(earlier))
    }

    fn export_policies(config: String, input: String) -> Result<String, wit::TaskError> {
        let secrets = Secrets::from_config(&config);
        export_policies(&config, &input, &mut WasiTransport::new())
            .map(|document| secrets.redact_json(document))
            .map_err(|e| into_wit(secrets.redact_error(e)))
    }
}

/// `run-task`, or with `earlier` set `run-task-again`.
fn run(
    config: &str,
    input: &str,
    earlier: Option<EarlierAttempt>,
) -> Result<String, wit::TaskError> {
    let secrets = Secrets::from_config(config);
    let fail = |e: TaskError| into_wit(secrets.redact_error(e));
    let prepared = prepare(config, input).map_err(fail)?;
    let mut transport = WasiTransport::new();
    let document = match &prepared.sync {
        Some(spec) => sync_run::run(&prepared, spec, &mut transport).map_err(fail)?,
        None => {
            let counted = &mut Counted::new(&mut transport);
            let completed = match earlier {
                Some(earlier) => execute_again(&prepared, earlier, counted),
                None => execute(&prepared, counted),
            };
            let api_calls = counted.calls();
            let completed = completed.map_err(|mut f| {
                f.api_calls = api_calls;
                fail(TaskError::Call(f))
            })?;
            success_json(&prepared, &completed, api_calls)
        }
    };
    Ok(secrets.redact_json(document))
}

fn into_wit(error: TaskError) -> wit::TaskError {
    match error {
        TaskError::InvalidConfig(problems) => wit::TaskError::InvalidConfig(field_errors(problems)),
        TaskError::InvalidInput(problems) => wit::TaskError::InvalidInput(field_errors(problems)),
        TaskError::Call(failure) => {
            let kind = failure.kind;
            let failure = call_failure(failure);
            match kind {
                FailureKind::Denied => wit::TaskError::Denied(failure),
                FailureKind::Transport => wit::TaskError::Transport(failure),
                FailureKind::Api => wit::TaskError::Api(failure),
                FailureKind::BadResponse => wit::TaskError::BadResponse(failure),
                FailureKind::Unconfirmed => wit::TaskError::Unconfirmed(failure),
            }
        }
    }
}

fn field_errors(problems: Vec<Problem>) -> Vec<wit::FieldError> {
    problems
        .into_iter()
        .map(|p| wit::FieldError {
            document: match p.document {
                Document::Config => wit::Document::Config,
                Document::Input => wit::Document::Input,
            },
            pointer: p.pointer,
            message: p.message,
            unlisted: u32::try_from(p.unlisted).unwrap_or(u32::MAX),
        })
        .collect()
}

fn call_failure(f: Failure) -> wit::CallFailure {
    wit::CallFailure {
        message: f.message,
        retryable: f.retryable,
        may_have_applied: f.may_have_applied,
        status: f.status,
        retry_after_ms: f.retry_after_ms,
        api_errors: f.api_errors.into_iter().map(api_error).collect(),
        attempts: f.attempts,
        verification: match f.verification {
            Verification::NotNeeded => wit::Verification::NotNeeded,
            Verification::SwitchedOff => wit::Verification::SwitchedOff,
            Verification::Incomplete => wit::Verification::Incomplete,
            Verification::NotVisible => wit::Verification::NotVisible,
            Verification::Undetermined => wit::Verification::Undetermined,
        },
        first_sent_unix_ms: f.first_sent_unix_ms,
        api_calls: f.api_calls,
    }
}

fn api_error(e: ApiError) -> wit::ApiError {
    wit::ApiError {
        code: e.code,
        message: e.message,
        pointer: e.pointer,
        documentation_url: e.documentation_url,
    }
}

crate::bindings::export!(Component with_types_in crate::bindings);
