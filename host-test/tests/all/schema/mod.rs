//! The JSON Schemas the component's `describe` export returns, checked with
//! a real JSON Schema validator (the `jsonschema` crate, draft 2020-12), so
//! that a workflow designer can build forms on them and trust what they say:
//!
//! - each schema is a valid draft 2020-12 schema;
//! - every example in `examples/` and every document the component really
//!   returns (run, skipped, dry run) is valid against its schema;
//! - parameters the component refuses are refused by the schema too, wherever
//!   JSON Schema can say the rule; the rules it cannot say are listed, and
//!   shown to be enforced by the component alone;
//! - parameters the component accepts at the edges of each rule are accepted
//!   by the schema, so a form never blocks a valid value;
//! - every field of the contract is in the schema with help text, and the
//!   flags whose meaning Cloudflare documents say that meaning.
//!
//! Field lists here are written from the contract (docs/task-contract.md,
//! docs/cloudflare-api.md), not read out of the schema. Everything runs on
//! 127.0.0.1. This module holds what the checks share; they are in its
//! submodules, by topic.

mod any_dry_run;
mod descriptions;
mod edges;
mod invalid;
mod published;
mod redacted;
mod unexpressible;
mod validity;

use crate::support::documents::Checked;
use crate::support::{host, schema_errors, ACCOUNT};
use host_test::{Document, TaskError, TaskOptions};
use jsonschema::Validator;
use serde_json::{json, Value};

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const TOKEN: &str = "schema-TEST-token-0f3a";
const UUID: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
/// The ids the example batch deletes and replaces, and one it leaves alone.
const DELETED: &str = "0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10";
const REPLACED: &str = "5b2e8f14-3c6d-4a9e-8f01-7d3c2b1a0e9f";
const KEPT: &str = "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d";

/// `{"config", "input", "output"}` as the component's `describe` returns it.
async fn describe() -> Value {
    let text = host()
        .describe(&TaskOptions::default())
        .await
        .expect("describe runs");
    serde_json::from_str(&text).expect("describe returns JSON")
}

/// What `describe` returns.
struct Schemas {
    doc: Value,
    /// The output schema's `$defs/failure` as a schema of its own: the
    /// `{"error": ...}` document hosts show for a task error.
    failure: Value,
}

/// One schema compiled twice: `strict` asserts `format` (as some form tools
/// do), `plain` treats it as the annotation draft 2020-12 makes it by
/// default. Valid documents must pass `strict`; invalid ones must fail
/// `plain`, so their rejection never rests on a format check that a tool
/// may skip.
struct Compiled {
    strict: Validator,
    plain: Validator,
}

impl Schemas {
    async fn load() -> Self {
        let doc = describe().await;
        let failure = json!({
            "$schema": DRAFT_2020_12,
            "$defs": doc["output"]["$defs"],
            "$ref": "#/$defs/failure",
        });
        Schemas { doc, failure }
    }

    fn schema(&self, name: &str) -> &Value {
        if name == "failure" {
            return &self.failure;
        }
        self.doc
            .get(name)
            .unwrap_or_else(|| panic!("describe has no {name} schema"))
    }

    fn compile(&self, name: &str) -> Compiled {
        let schema = self.schema(name);
        let build = |formats: bool| {
            jsonschema::draft202012::options()
                .should_validate_formats(formats)
                .build(schema)
                .unwrap_or_else(|e| panic!("the {name} schema does not compile: {e}"))
        };
        Compiled {
            strict: build(true),
            plain: build(false),
        }
    }
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = schema_errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{what} is not valid against its schema:\n  {}\n{instance}",
        errors.join("\n  ")
    );
}

/// A config the component accepts, for checking inputs.
fn base_config() -> Value {
    json!({"api_token": TOKEN, "account_id": ACCOUNT})
}

/// A complete policy, as a create needs it.
fn post() -> Value {
    json!({
        "pattern": "alerts@monitoring.example.com", "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true
    })
}

fn put(id: Value) -> Value {
    with(post(), "id", id)
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

/// The component's `prepare` on both documents given as text.
async fn prepare_text(config: &str, input: &str) -> Result<String, TaskError> {
    host()
        .prepare(&TaskOptions::default(), config, input)
        .await
        .checked()
        .expect("prepare runs")
}

/// `(document, pointer)` of each problem of a refused task.
fn problems(error: &TaskError) -> Vec<(&'static str, String)> {
    match error {
        TaskError::InvalidConfig(list) | TaskError::InvalidInput(list) => list
            .iter()
            .map(|p| {
                let document = match p.document {
                    Document::Config => "config",
                    Document::Input => "input",
                };
                (document, p.pointer.clone())
            })
            .collect(),
        other => panic!("expected invalid_config or invalid_input, got {other:?}"),
    }
}

/// The base config with one key set.
fn config_with(key: &str, value: Value) -> Value {
    with(base_config(), key, value)
}

fn legacy_config(email: Value, key: Value) -> Value {
    json!({"api_email": email, "api_key": key, "account_id": ACCOUNT})
}

/// The documents `prepare` gets for a case: the case's own, and a valid one
/// for the other.
fn documents(document: &str, value: &Value) -> (String, String) {
    match document {
        "config" => (value.to_string(), "{}".to_string()),
        _ => (base_config().to_string(), value.to_string()),
    }
}
