//! Cloudflare's published OpenAPI schema for the allow-policies paths
//! (`tests/data/cf-allow-policies.openapi.json`; its `info` says where it
//! comes from), turned into JSON Schema validators: what the component
//! sends, and what the fake API answers, must be what the live API's own
//! schema describes.
//!
//! The file is OpenAPI 3.0, whose schema objects are not quite JSON Schema.
//! Two differences matter here, and are handled before compiling:
//! - `nullable: true` adds `null` to the allowed types (3.0 has no type
//!   arrays); an `enum` beside it gains `null` too.
//! - `readOnly` members in a `required` list are required in responses
//!   only. A policy's `id`, `created_at` and `last_modified` are readOnly
//!   and required, and every request item is built from that same policy
//!   schema, so for request bodies they are dropped from `required`. They
//!   are not forbidden: a put or patch carries `id` through its own
//!   branch of the `allOf`, which JSON Schema cannot tell apart from the
//!   readOnly one.
//!
//! `format` is asserted (`uuid`, `date-time`): a policy id that is not a
//! UUID string is exactly what the live API refuses.

use jsonschema::Validator;
use serde_json::{json, Map, Value};
use std::path::PathBuf;

const BATCH_PATH: &str = "/accounts/{account_id}/email-security/settings/allow_policies/batch";
const LIST_PATH: &str = "/accounts/{account_id}/email-security/settings/allow_policies";

/// Which side of the exchange a schema describes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

fn document() -> Value {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/cf-allow-policies.openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("the published schema is JSON")
}

/// RFC 6901 escaping of one reference token.
fn token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Rewrites every schema object of `node` in place for `direction`.
fn convert(node: &mut Value, direction: Direction) {
    match node {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                allow_null(map);
            }
            if direction == Direction::Request {
                drop_read_only_from_required(map);
            }
            for value in map.values_mut() {
                convert(value, direction);
            }
        }
        Value::Array(items) => {
            for item in items {
                convert(item, direction);
            }
        }
        _ => {}
    }
}

fn allow_null(map: &mut Map<String, Value>) {
    match map.get_mut("type") {
        Some(Value::String(single)) => {
            let single = single.clone();
            map.insert("type".into(), json!([single, "null"]));
        }
        Some(Value::Array(types)) if !types.contains(&json!("null")) => types.push(json!("null")),
        _ => {}
    }
    if let Some(Value::Array(values)) = map.get_mut("enum") {
        if !values.contains(&Value::Null) {
            values.push(Value::Null);
        }
    }
}

fn drop_read_only_from_required(map: &mut Map<String, Value>) {
    let read_only: Vec<String> = match map.get("properties") {
        Some(Value::Object(properties)) => properties
            .iter()
            .filter(|(_, p)| p.get("readOnly") == Some(&Value::Bool(true)))
            .map(|(name, _)| name.clone())
            .collect(),
        _ => return,
    };
    if let Some(Value::Array(required)) = map.get_mut("required") {
        required.retain(|name| !read_only.iter().any(|r| name == r.as_str()));
    }
}

/// A validator for the schema at `pointer` inside the converted document,
/// which stays the root so that its `#/components/...` references resolve.
fn compile(direction: Direction, pointer: &str) -> Validator {
    let mut root = document();
    convert(&mut root, direction);
    assert!(
        root.pointer(pointer).is_some(),
        "the published schema has nothing at {pointer}"
    );
    // A URI fragment may not hold `{` or `}` (the path's `{account_id}`).
    let fragment = pointer
        .replace('%', "%25")
        .replace('{', "%7B")
        .replace('}', "%7D");
    root["$ref"] = json!(format!("#{fragment}"));
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the published schema at {pointer} does not compile: {e}"))
}

fn operation(path: &str, method: &str) -> String {
    format!("/paths/{}/{method}", token(path))
}

fn json_content() -> String {
    format!("content/{}/schema", token("application/json"))
}

/// The body of `POST .../allow_policies/batch`.
pub fn batch_request() -> Validator {
    compile(
        Direction::Request,
        &format!(
            "{}/requestBody/{}",
            operation(BATCH_PATH, "post"),
            json_content()
        ),
    )
}

/// A 200 answer of the batch operation.
pub fn batch_success() -> Validator {
    compile(
        Direction::Response,
        &format!(
            "{}/responses/200/{}",
            operation(BATCH_PATH, "post"),
            json_content()
        ),
    )
}

/// A 200 answer of the list operation.
pub fn list_success() -> Validator {
    compile(
        Direction::Response,
        &format!(
            "{}/responses/200/{}",
            operation(LIST_PATH, "get"),
            json_content()
        ),
    )
}

/// A 4xx answer of any of these operations: the shared client-error
/// response the operations name by reference.
pub fn client_error() -> Validator {
    compile(
        Direction::Response,
        &format!(
            "/components/responses/email-security_ClientError/{}",
            json_content()
        ),
    )
}

/// Whether the schema's complaint at `at` is about an integer policy id:
/// the older API's ids, which the current schema refuses and which the
/// component still sends (with a warning) and the fake still takes when
/// told to. Every check that tolerates them tolerates exactly this.
pub fn is_integer_id(instance: &Value, at: &str) -> bool {
    at.ends_with("/id") && instance.pointer(at).is_some_and(Value::is_u64)
}
