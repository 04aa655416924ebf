//! Every document the tests get back from the component or from
//! `task-host` is checked against the output schema `describe` publishes
//! (`$defs/failure` for a failure): a designer or an engine given that
//! schema must accept whatever the task returns, results, dry runs,
//! verifications, repeats, syncs and failures alike.
//!
//! The schema is the component's own text ([`allow_policies_batch::schema`]),
//! which `describe` returns verbatim (tests/all/schema checks that).

use std::sync::OnceLock;

use host_test::{error_to_json, TaskError};
use jsonschema::Validator;
use serde_json::{json, Value};

use super::schema_errors;

/// The output schema and the failure document's, compiled once.
struct OutputSchemas {
    output: Validator,
    failure: Validator,
}

fn schemas() -> &'static OutputSchemas {
    static SCHEMAS: OnceLock<OutputSchemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let describe: Value = serde_json::from_str(allow_policies_batch::schema::DESCRIBE).unwrap();
        let output = &describe["output"];
        let failure = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$defs": output["$defs"],
            "$ref": "#/$defs/failure",
        });
        let build = |schema: &Value| {
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(schema)
                .unwrap()
        };
        OutputSchemas {
            output: build(output),
            failure: build(&failure),
        }
    })
}

/// Panics, naming each schema error, unless `document` (a result or a dry
/// run) is valid against the output schema; and unless a result's
/// `api_calls` covers the requests it reports elsewhere.
pub fn check_output(document: &Value) {
    check(&schemas().output, document, "the output schema");
    if let Some(api_calls) = document["api_calls"].as_u64() {
        let shown = document["attempts"].as_u64().unwrap_or(0)
            + document["verification"]["reads"].as_u64().unwrap_or(0)
            + document["sync"]["reads"].as_u64().unwrap_or(0);
        assert!(
            api_calls >= shown,
            "api_calls {api_calls} counts fewer requests than the document shows ({shown}): {document}"
        );
    }
}

/// The same for a failure document, `{"error": {...}}`: `api_calls` is at
/// least `attempts`.
pub fn check_failure(document: &Value) {
    check(&schemas().failure, document, "$defs/failure");
    let error = &document["error"];
    assert!(
        error["api_calls"].as_u64() >= error["attempts"].as_u64(),
        "api_calls counts fewer requests than attempts: {document}"
    );
}

/// What `task-host run` (or a worker) printed: a failure document or a
/// result, each against its schema.
pub fn check_printed(document: &Value) {
    if document.get("error").is_some() {
        check_failure(document);
    } else {
        check_output(document);
    }
}

fn check(validator: &Validator, document: &Value, schema: &str) {
    let errors = schema_errors(validator, document);
    assert!(
        errors.is_empty(),
        "a document the task returned is not valid against {schema}:\n  {}\n{document}",
        errors.join("\n  ")
    );
}

/// A call of the real component, checked on its way to the test: the
/// result text or dry run against the output schema, a task error in its
/// JSON form against `$defs/failure`. Returns the outcome unchanged.
pub trait Checked {
    /// See the trait.
    fn checked(self) -> Self;
}

impl Checked for Result<String, TaskError> {
    fn checked(self) -> Self {
        match &self {
            Ok(text) => {
                let document: Value = serde_json::from_str(text).unwrap_or_else(|e| {
                    panic!("the task returned text that is not JSON ({e}): {text}")
                });
                check_output(&document);
            }
            Err(error) => check_failure(&json!({ "error": error_to_json(error) })),
        }
        self
    }
}

impl Checked for anyhow::Result<Result<String, TaskError>> {
    fn checked(self) -> Self {
        self.map(Checked::checked)
    }
}
