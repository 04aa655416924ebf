use super::DESCRIBE;
use crate::api::fields::{Field, DEPRECATED};
use crate::api::outcome::Success;
use crate::api::policy::{PatternType, MAX_ITEMS};
use crate::config::{
    is_number_byte, parse_config, CONFIG_KEYS, DEFAULT_BASE_URL, DEFAULT_CONNECT_TIMEOUT_MS,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_MS, MAX_RESPONSE_BYTES_LIMIT,
    MAX_TIMEOUT_MS, MIN_SECRET_CHARS,
};
use crate::params::problems::Report;
use crate::params::sync_spec::DEFAULT_MAX_DELETES;
use crate::params::validator::{
    INPUT_KEYS, LEFT_OUT_KEYS, MAX_DELETES_LIMIT, MAX_SYNC_POLICIES, SYNC_KEYS,
};
use crate::run::documents::{preview_json, success_json};
use crate::run::prepare::prepare;
use crate::run::send::Completed;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn describe() -> Value {
    serde_json::from_str(DESCRIBE).expect("schema.json is valid JSON")
}

fn schema(name: &str) -> Value {
    describe()[name].clone()
}

fn set<'a>(keys: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    keys.into_iter().map(str::to_string).collect()
}

/// The `$defs` entry a `$ref` names; only local `#/$defs/...` references
/// are used, and each must exist.
fn deref<'a>(root: &'a Value, reference: &Value) -> &'a Value {
    let reference = reference.as_str().expect("$ref is a string");
    let name = reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("unexpected $ref {reference}"));
    root["$defs"]
        .get(name)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

/// The chain `node`, its `$ref`, that one's `$ref`, ...: all of them
/// apply to a value, so keywords are read from the whole chain.
fn chain<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let (mut node, mut out) = (node, vec![node]);
    while let Some(r) = node.get("$ref") {
        assert!(out.len() < 8, "$ref cycle at {r}");
        node = deref(root, r);
        out.push(node);
    }
    out
}

/// The help text a form shows: the nearest description along the chain.
fn description<'a>(root: &'a Value, node: &'a Value) -> &'a str {
    chain(root, node)
        .into_iter()
        .find_map(|n| n.get("description").and_then(Value::as_str))
        .unwrap_or("")
}

/// The first value of `keyword` along the chain.
fn keyword<'a>(root: &'a Value, node: &'a Value, keyword: &str) -> Option<&'a Value> {
    chain(root, node).into_iter().find_map(|n| n.get(keyword))
}

fn properties<'a>(root: &'a Value, node: &'a Value) -> &'a Map<String, Value> {
    keyword(root, node, "properties")
        .and_then(Value::as_object)
        .expect("an object schema with properties")
}

fn property_names(root: &Value, node: &Value) -> BTreeSet<String> {
    properties(root, node).keys().cloned().collect()
}

/// Every `required` along the chain applies, so they add up.
fn required(root: &Value, node: &Value) -> BTreeSet<String> {
    chain(root, node)
        .into_iter()
        .filter_map(|n| n.get("required").and_then(Value::as_array))
        .flatten()
        .map(|v| v.as_str().expect("required names are strings").to_string())
        .collect()
}

fn assert_described(root: &Value, node: &Value, keys: &[&str], what: &str) {
    let props = properties(root, node);
    for key in keys {
        let prop = props
            .get(*key)
            .unwrap_or_else(|| panic!("{what}: no property {key}"));
        assert!(
            !description(root, prop).trim().is_empty(),
            "{what}: property {key} has no description"
        );
    }
}

/// Calls `visit(root, node, path)` for every subschema of a document.
fn walk(root: &Value, node: &Value, path: &str, visit: &mut dyn FnMut(&Value, &Value, &str)) {
    visit(root, node, path);
    let Some(map) = node.as_object() else { return };
    for (key, value) in map {
        match key.as_str() {
            "properties" | "$defs" => {
                for (name, sub) in value.as_object().expect("a map of schemas") {
                    walk(root, sub, &format!("{path}/{key}/{name}"), visit);
                }
            }
            "items" | "not" => walk(root, value, &format!("{path}/{key}"), visit),
            "oneOf" | "anyOf" | "allOf" => {
                for (i, sub) in value
                    .as_array()
                    .expect("a list of schemas")
                    .iter()
                    .enumerate()
                {
                    walk(root, sub, &format!("{path}/{key}/{i}"), visit);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn describe_is_one_object_with_exactly_three_schemas() {
    let doc = describe();
    let keys: BTreeSet<String> = doc
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, set(["config", "input", "output"]));
}

#[test]
fn each_schema_is_a_titled_described_2020_12_object_schema() {
    for name in ["config", "input", "output"] {
        let s = schema(name);
        assert_eq!(s["$schema"], DRAFT, "{name}");
        assert!(
            !s["title"].as_str().unwrap_or("").is_empty(),
            "{name}: no title"
        );
        assert!(
            !s["description"].as_str().unwrap_or("").is_empty(),
            "{name}: no description"
        );
        assert_eq!(s["type"], "object", "{name}");
        assert_eq!(s["additionalProperties"], false, "{name}");
    }
}

#[test]
fn describe_stays_compact() {
    // Embedded in a size-sensitive component. Sync mode's input, plan and
    // outcome took it from about 18 to about 27 KB; an export's left_out
    // and a failure's first_sent_unix_ms to about 29 KB.
    assert!(
        DESCRIBE.len() < 30 * 1024,
        "schema.json is {} bytes",
        DESCRIBE.len()
    );
}

#[test]
fn every_ref_resolves_and_every_property_has_a_description() {
    for name in ["config", "input", "output"] {
        let s = schema(name);
        walk(&s, &s, name, &mut |root, node, path| {
            if let Some(r) = node.get("$ref") {
                deref(root, r);
            }
            if let Some(props) = node.get("properties").and_then(Value::as_object) {
                // `false` forbids a key (in one alternative of a
                // oneOf); it is not a field to describe.
                for (key, prop) in props.iter().filter(|(_, p)| **p != json!(false)) {
                    assert!(
                        !description(root, prop).trim().is_empty(),
                        "{path}/properties/{key} has no description"
                    );
                }
            }
        });
    }
}

#[test]
fn config_describes_exactly_the_config_keys() {
    let s = schema("config");
    assert_eq!(property_names(&s, &s), set(CONFIG_KEYS.iter().copied()));
    assert_described(&s, &s, CONFIG_KEYS, "config");
}

#[test]
fn config_defaults_and_limits_are_those_of_config_rs() {
    let s = schema("config");
    let p = &s["properties"];
    assert_eq!(p["base_url"]["default"], DEFAULT_BASE_URL);
    assert_eq!(p["base_url"]["format"], "uri");
    assert_eq!(p["account_id"]["pattern"], "^[0-9a-f]{32}$");
    let integers: [(&str, u64, u64, u64); 4] = [
        ("timeout_ms", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS),
        (
            "connect_timeout_ms",
            DEFAULT_CONNECT_TIMEOUT_MS,
            1,
            MAX_TIMEOUT_MS,
        ),
        ("max_retries", u64::from(DEFAULT_MAX_RETRIES), 0, 10),
        (
            "max_response_bytes",
            DEFAULT_MAX_RESPONSE_BYTES,
            1,
            MAX_RESPONSE_BYTES_LIMIT,
        ),
    ];
    for (key, default, min, max) in integers {
        assert_eq!(p[key]["type"], "integer", "{key}");
        assert_eq!(p[key]["default"], default, "{key}");
        assert_eq!(p[key]["minimum"], min, "{key}");
        assert_eq!(p[key]["maximum"], max, "{key}");
    }
}

#[test]
fn credentials_are_described_as_the_parser_checks_them() {
    let c = schema("config");
    let p = &c["properties"];
    for key in ["api_token", "api_key"] {
        assert_eq!(
            p[key]["minLength"], MIN_SECRET_CHARS,
            "{key}: as short a credential as the parser takes"
        );
        let number = p[key]["not"]["pattern"].as_str().unwrap();
        // Exactly the bytes a number is written with, and nothing else.
        let class = number
            .strip_prefix("^[")
            .and_then(|n| n.strip_suffix("]*$"))
            .unwrap();
        let listed: BTreeSet<u8> = class.replace("0-9", "0123456789").bytes().collect();
        let parser: BTreeSet<u8> = (0..=u8::MAX).filter(|b| is_number_byte(*b)).collect();
        assert_eq!(listed, parser, "{key}: {number}");
        let description = p[key]["description"].as_str().unwrap();
        assert!(
            description.contains("at least 8 characters")
                || description.contains("At least 8 characters"),
            "{description}"
        );
    }
    assert!(p["api_email"].get("minLength").is_none());
}

#[test]
fn config_schema_defaults_and_bounds_agree_with_the_parser() {
    let s = schema("config");
    let p = &s["properties"];
    let parse = |v: Value| {
        let mut report = Report::default();
        let config = parse_config(&v, &mut report);
        (config, report)
    };

    // The defaults the parser fills in are the schema's.
    let (config, report) = parse(json!({"api_token": "t0ken-4f2a9c"}));
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let config = config.unwrap();
    assert_eq!(p["base_url"]["default"], config.base_url.as_str());
    assert_eq!(p["timeout_ms"]["default"], config.timeout_ms);
    assert_eq!(
        p["connect_timeout_ms"]["default"],
        config.connect_timeout_ms
    );
    assert_eq!(p["max_retries"]["default"], config.max_retries);
    assert_eq!(
        p["max_response_bytes"]["default"],
        config.max_response_bytes
    );

    // The parser accepts the schema's bounds and nothing just outside.
    for key in [
        "timeout_ms",
        "connect_timeout_ms",
        "max_retries",
        "max_response_bytes",
    ] {
        let min = p[key]["minimum"].as_u64().unwrap();
        let max = p[key]["maximum"].as_u64().unwrap();
        let mut outside = vec![max + 1];
        if min > 0 {
            outside.push(min - 1);
        }
        for value in [min, max] {
            let (_, report) = parse(json!({"api_token": "t0ken-4f2a9c", key: value}));
            assert!(
                report.errors.is_empty(),
                "{key} = {value}: {:?}",
                report.errors
            );
        }
        for value in outside {
            let (_, report) = parse(json!({"api_token": "t0ken-4f2a9c", key: value}));
            let pointers: Vec<&str> = report.errors.iter().map(|e| e.pointer.as_str()).collect();
            assert_eq!(pointers, [format!("/{key}")], "{key} = {value}");
        }
    }
}

#[test]
fn credentials_are_write_only_and_one_method_at_most() {
    let s = schema("config");
    let p = &s["properties"];
    assert_eq!(p["api_token"]["writeOnly"], true);
    assert_eq!(p["api_key"]["writeOnly"], true);
    assert!(p["api_token"]["description"]
        .as_str()
        .unwrap()
        .contains("Bearer"));
    // The host may supply a token, so no credential is required outright.
    assert!(
        s.get("required").is_none(),
        "config must not require credentials"
    );
    assert_eq!(
        s["dependentRequired"],
        json!({"api_email": ["api_key"], "api_key": ["api_email"]})
    );
    // Both methods at once is forbidden.
    let forbidden: BTreeSet<BTreeSet<String>> = s["not"]["anyOf"]
        .as_array()
        .expect("not.anyOf")
        .iter()
        .map(|alt| {
            alt["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert!(forbidden.contains(&set(["api_token", "api_key"])));
    assert!(forbidden.contains(&set(["api_token", "api_email"])));
}

#[test]
fn input_describes_exactly_the_input_keys() {
    let s = schema("input");
    assert_eq!(property_names(&s, &s), set(INPUT_KEYS.iter().copied()));
    assert_described(&s, &s, INPUT_KEYS, "input");
    assert_eq!(s["properties"]["account_id"]["pattern"], "^[0-9a-f]{32}$");
}

#[test]
fn sync_describes_exactly_its_members_with_the_parser_s_limits() {
    let s = schema("input");
    let sync = &s["properties"]["sync"];
    assert_eq!(property_names(&s, sync), set(SYNC_KEYS.iter().copied()));
    assert_described(&s, sync, SYNC_KEYS, "sync");
    assert_eq!(sync["required"], json!(["policies"]));
    assert_eq!(
        sync["properties"]["policies"]["maxItems"],
        MAX_SYNC_POLICIES
    );
    let max_deletes = &sync["properties"]["max_deletes"];
    assert_eq!(max_deletes["default"], DEFAULT_MAX_DELETES);
    assert_eq!(max_deletes["maximum"], MAX_DELETES_LIMIT);
    for flag in ["delete_unlisted", "allow_deleting_most"] {
        assert_eq!(sync["properties"][flag]["default"], false, "{flag}");
    }
    // What an export left out: the members it writes, each described.
    let left_out = &sync["properties"]["left_out"]["items"];
    assert_eq!(
        property_names(&s, left_out),
        set(LEFT_OUT_KEYS.iter().copied())
    );
    assert_described(&s, left_out, LEFT_OUT_KEYS, "sync.left_out");
    // A desired policy takes a create's fields and an optional id.
    let desired = &s["$defs"]["desired"];
    let mut create_fields = property_names(&s, &s["$defs"]["create"]);
    create_fields.insert("id".into());
    assert_eq!(property_names(&s, desired), create_fields);
    assert_eq!(desired["required"], s["$defs"]["create"]["required"]);
}

#[test]
fn every_list_holds_at_most_max_items() {
    let s = schema("input");
    for list in ["deletes", "patches", "puts", "posts"] {
        let l = &s["properties"][list];
        assert_eq!(l["type"], "array", "{list}");
        assert_eq!(l["maxItems"], MAX_ITEMS, "{list}");
        assert_eq!(l["default"], json!([]), "{list}");
    }
}

#[test]
fn items_accept_exactly_the_fields_the_parser_accepts() {
    let s = schema("input");
    let item = |list: &str| s["properties"][list]["items"].clone();
    let deprecated: Vec<&str> = DEPRECATED.iter().map(|(old, _)| *old).collect();
    let fields: Vec<&str> = Field::NAMES.iter().chain(&deprecated).copied().collect();
    let with_id: Vec<&str> = std::iter::once("id")
        .chain(fields.iter().copied())
        .collect();
    let create_required = set(Field::ALL.iter().filter(|f| f.required()).map(|f| f.name()));
    let mut put_required = create_required.clone();
    put_required.insert("id".into());

    let cases: [(&str, &[&str], BTreeSet<String>); 4] = [
        ("posts", &fields, create_required),
        ("puts", &with_id, put_required),
        ("patches", &with_id, set(["id"])),
        ("deletes", &["id"], set(["id"])),
    ];
    for (list, keys, required_keys) in cases {
        let node = item(list);
        assert_eq!(
            property_names(&s, &node),
            set(keys.iter().copied()),
            "{list}"
        );
        assert_described(&s, &node, keys, list);
        assert_eq!(required(&s, &node), required_keys, "{list}");
        assert_eq!(
            keyword(&s, &node, "additionalProperties"),
            Some(&json!(false)),
            "{list}"
        );
    }
}

#[test]
fn deprecated_booleans_are_marked_and_name_their_replacement() {
    let s = schema("input");
    let posts = s["properties"]["posts"]["items"].clone();
    let props = properties(&s, &posts);
    for (old, new) in DEPRECATED {
        let new = new.name();
        let prop = &props[old];
        assert_eq!(keyword(&s, prop, "deprecated"), Some(&json!(true)), "{old}");
        assert_eq!(keyword(&s, prop, "type"), Some(&json!("boolean")), "{old}");
        let text = description(&s, prop);
        assert!(text.contains(new), "{old}: description does not name {new}");
        assert!(
            text.contains("never sent"),
            "{old}: description does not say it is not sent"
        );
    }
}

#[test]
fn field_rules_match_the_api() {
    let s = schema("input");
    let defs = &s["$defs"];
    assert_eq!(defs["pattern_type"]["enum"], json!(PatternType::NAMES));
    assert_eq!(defs["pattern"]["minLength"], 1);
    assert_eq!(defs["pattern"]["maxLength"], 1024);
    assert_eq!(defs["comments"]["type"], json!(["string", "null"]));
    assert_eq!(defs["comments"]["maxLength"], 1024);
    for flag in [
        "is_regex",
        "is_exempt_recipient",
        "is_trusted_sender",
        "is_acceptable_sender",
        "verify_sender",
    ] {
        assert_eq!(defs[flag]["type"], "boolean", "{flag}");
    }
    let id = defs["id"]["oneOf"].as_array().expect("id is oneOf");
    assert_eq!(id.len(), 2);
    assert_eq!(
        id[0],
        json!({"type": "integer", "minimum": 1, "maximum": i32::MAX})
    );
    assert_eq!(id[1]["type"], "string");
    assert_eq!(id[1]["format"], "uuid");
}

#[test]
fn input_objects_forbid_unknown_keys() {
    let s = schema("input");
    walk(&s, &s, "input", &mut |_, node, path| {
        if node.get("type") == Some(&json!("object")) {
            assert_eq!(node["additionalProperties"], false, "{path}");
        }
    });
}

/// Runs `success_json` on a real prepared task.
fn output_document(input: Value, completed: Completed) -> Value {
    let config = json!({"api_token": "t0ken-4f2a9c", "account_id": ACCOUNT}).to_string();
    let prepared = prepare(&config, &input.to_string()).expect("the task is valid");
    serde_json::from_str(&success_json(&prepared, &completed, 1)).expect("output is JSON")
}

/// Runs `preview_json` on a real prepared task.
fn preview_document(input: Value) -> Value {
    let config = json!({"api_token": "t0ken-4f2a9c", "account_id": ACCOUNT}).to_string();
    let prepared = prepare(&config, &input.to_string()).expect("the task is valid");
    serde_json::from_str(&preview_json(&prepared)).expect("preview is JSON")
}

fn keys_of(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

/// The names an alternative of the output's `oneOf` forbids (`false`).
fn forbidden(alternative: &Value) -> BTreeSet<String> {
    alternative["properties"]
        .as_object()
        .map(|props| {
            props
                .iter()
                .filter(|(_, p)| **p == json!(false))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn output_schema_has_exactly_the_keys_of_the_result_and_preview_documents() {
    let s = schema("output");
    let raw = |text: &str| RawValue::from_string(text.to_string()).unwrap();
    let sent = output_document(
        json!({"patches": [{"id": 7, "is_sender": true}]}),
        Completed {
            success: Some(Success {
                status: 200,
                result: Some(raw(
                    r#"{"deletes":[],"patches":[{"id":7}],"puts":[],"posts":[]}"#,
                )),
                messages: Some(raw("[]")),
                errors: Some(raw("[]")),
                result_info: None,
            }),
            attempts: 1,
            verified: None,
            rechecked: None,
        },
    );
    let skipped = output_document(
        json!({}),
        Completed {
            success: None,
            attempts: 0,
            verified: None,
            rechecked: None,
        },
    );
    let preview = preview_document(json!({"deletes": [{"id": 7}]}));
    let skipped_preview = preview_document(json!({}));

    // Two documents, one alternative each: what run-task returns and
    // what prepare returns. Each alternative requires exactly the keys
    // of its document and forbids the other's, and together they name
    // every property.
    let props = property_names(&s, &s);
    let alternatives = s["oneOf"].as_array().expect("output is oneOf");
    assert_eq!(alternatives.len(), 2);
    let (result_alt, preview_alt) = (&alternatives[0], &alternatives[1]);
    let result_keys = required(&s, result_alt);
    let preview_keys = required(&s, preview_alt);
    for doc in [&sent, &skipped] {
        assert_eq!(keys_of(doc), result_keys, "{doc}");
        assert_eq!(doc["success"], s["properties"]["success"]["const"]);
    }
    for doc in [&preview, &skipped_preview] {
        assert_eq!(keys_of(doc), preview_keys, "{doc}");
        assert_eq!(doc["dry_run"], s["properties"]["dry_run"]["const"]);
    }
    assert_eq!(
        result_keys
            .union(&preview_keys)
            .cloned()
            .collect::<BTreeSet<_>>(),
        props
    );
    assert_eq!(
        forbidden(result_alt),
        preview_keys.difference(&result_keys).cloned().collect()
    );
    assert_eq!(
        forbidden(preview_alt),
        result_keys.difference(&preview_keys).cloned().collect()
    );
    for doc in [&sent, &skipped, &preview, &skipped_preview] {
        assert_eq!(
            keys_of(&doc["counts"]),
            property_names(&s, &s["properties"]["counts"])
        );
    }
    assert_eq!(skipped["skipped"], true);
    assert_eq!(
        (&skipped["status"], &skipped["result"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(sent["skipped"], false);
    assert_eq!(
        (&skipped_preview["skipped"], &skipped_preview["request"]),
        (&json!(true), &Value::Null)
    );
    assert_eq!(
        keys_of(&preview["request"]),
        property_names(&s, &s["properties"]["request"])
    );
    assert_eq!(
        keys_of(&preview["request"]["body"]),
        set(["deletes", "patches", "puts", "posts"])
    );

    // The patch's deprecated is_sender produced a warning.
    let warning = &sent["warnings"][0];
    let problem = &s["$defs"]["problem"];
    assert_eq!(keys_of(warning), property_names(&s, problem));
    assert_eq!(required(&s, problem), property_names(&s, problem));
    let documents = problem["properties"]["document"]["enum"]
        .as_array()
        .unwrap();
    assert!(documents.contains(&warning["document"]), "{warning}");
    assert_eq!(*documents, [json!("config"), json!("input")]);
}

#[test]
fn deprecated_booleans_must_agree_with_their_replacements() {
    // The rule is in the schema as dependentSchemas of `agree`, which
    // creates and patches (and so puts) refer to.
    let s = schema("input");
    let agree = &s["$defs"]["agree"]["dependentSchemas"];
    for (old, new) in DEPRECATED {
        let new = new.name();
        let rule = &agree[old];
        assert_eq!(rule["if"]["properties"][old]["const"], true, "{old}");
        assert_eq!(rule["then"]["properties"][new]["const"], true, "{old}");
        assert_eq!(rule["else"]["properties"][new]["const"], false, "{old}");
    }
    assert_eq!(agree.as_object().unwrap().len(), DEPRECATED.len());
    for def in ["create", "patch"] {
        assert_eq!(s["$defs"][def]["$ref"], "#/$defs/agree", "{def}");
    }
}
