//! The bodies the component sends against Cloudflare's published schema
//! (`support::published_schema`).

use super::*;
use crate::support::{published_schema, read_example};
use host_test::error_to_json;
use std::sync::OnceLock;

/// Why a dry run's body is not what Cloudflare's published schema accepts,
/// if it is not. An integer id (the older API's) is the one thing the
/// component sends although the current schema refuses it, and only with a
/// warning at that id; anything else the schema refuses is listed.
pub(super) fn unpublished_body(preview: &Value) -> Vec<String> {
    static BATCH_REQUEST: OnceLock<Validator> = OnceLock::new();
    let validator = BATCH_REQUEST.get_or_init(published_schema::batch_request);
    let body = &preview["request"]["body"];
    if body.is_null() {
        return Vec::new();
    }
    let warned: Vec<&str> = preview["warnings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|w| w["pointer"].as_str())
        .collect();
    validator
        .iter_errors(body)
        .filter_map(|e| {
            let at = e.instance_path().as_str().to_string();
            if published_schema::is_integer_id(body, &at) && warned.contains(&at.as_str()) {
                None
            } else {
                Some(format!(
                    "the published schema refuses the body at {at:?}: {e}"
                ))
            }
        })
        .collect()
}

#[tokio::test]
async fn request_bodies_are_what_the_published_schema_accepts() {
    let id = |n: u32| json!(format!("f174e90a-fafe-4643-bbbc-4a0ed4fc{n:04x}"));
    let ip = |pattern: &str| {
        with(
            with(post(), "pattern_type", json!("IP")),
            "pattern",
            json!(pattern),
        )
    };
    let inputs = [
        read_example("batch.json"),
        json!({
            "deletes": [{"id": id(1)}, {"id": UUID.to_uppercase()}],
            "patches": [
                {"id": id(2), "comments": null},
                {"id": id(3), "is_sender": true, "is_spoof": false},
                {"id": id(4), "pattern_type": "DOMAIN", "pattern": "example.org", "is_regex": false},
            ],
            "puts": [with(put(id(5)), "comments", json!("é".repeat(1024)))],
            "posts": [
                ip("8.8.8.0/24"),
                ip("2606:4700::/32"),
                ip("::ffff:1.1.1.1"),
                with(with(post(), "is_regex", json!(true)), "pattern", json!("^.*@(a|b)\\.example$")),
                with(with(post(), "pattern_type", json!("DOMAIN")), "pattern", json!("a".repeat(63))),
                with(post(), "is_recipient", json!(false)),
            ],
        }),
        json!({"posts": (0..1000).map(|i| with(post(), "pattern", json!(format!("u{i}@example.com")))).collect::<Vec<_>>()}),
    ];
    let mut failures = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let preview = prepare_text(&base_config().to_string(), &input.to_string())
            .await
            .unwrap_or_else(|e| panic!("input {i} is refused: {}", error_to_json(&e)));
        let preview: Value = serde_json::from_str(&preview).unwrap();
        // Deprecated booleans are warned about and left out; nothing else.
        for warning in preview["warnings"].as_array().expect("warnings") {
            let message = warning["message"].as_str().unwrap_or("");
            assert!(message.contains("deprecated"), "input {i}: {warning}");
        }
        failures.extend(
            unpublished_body(&preview)
                .into_iter()
                .map(|e| format!("input {i}: {e}")),
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[tokio::test]
async fn an_integer_id_is_sent_with_a_warning_though_the_published_schema_refuses_it() {
    let validator = published_schema::batch_request();
    let preview = prepare_text(&base_config().to_string(), r#"{"deletes":[{"id":2401}]}"#)
        .await
        .expect("an integer id is accepted, with a warning");
    let preview: Value = serde_json::from_str(&preview).unwrap();
    assert_eq!(preview["request"]["body"]["deletes"], json!([{"id": 2401}]));
    assert_eq!(preview["warnings"][0]["pointer"], "/deletes/0/id");
    let errors = schema_errors(&validator, &preview["request"]["body"]);
    assert!(
        !errors.is_empty() && errors.iter().all(|e| e.contains("/deletes/0/id")),
        "{errors:?}"
    );
    // The same body with the id as a UUID string passes.
    let uuid_body = json!({"deletes": [{"id": UUID}], "patches": [], "puts": [], "posts": []});
    assert_eq!(schema_errors(&validator, &uuid_body), Vec::<String>::new());
    // Warnings only: the body above is refused by the schema for its id alone.
    assert_eq!(unpublished_body(&preview), Vec::<String>::new());
}

#[tokio::test]
async fn unknown_is_refused_though_the_published_enum_lists_it() {
    // The schema's enum still has UNKNOWN; only its description says the
    // API refuses it in a create or update.
    let validator = published_schema::batch_request();
    let body = json!({"deletes": [], "patches": [], "puts": [], "posts": [with(post(), "pattern_type", json!("UNKNOWN"))]});
    assert_eq!(schema_errors(&validator, &body), Vec::<String>::new());
    for input in [
        json!({"posts": [with(post(), "pattern_type", json!("UNKNOWN"))]}),
        json!({"patches": [{"id": UUID, "pattern_type": "UNKNOWN"}]}),
    ] {
        let error = prepare_text(&base_config().to_string(), &input.to_string())
            .await
            .expect_err("UNKNOWN is refused before sending");
        let pointers: Vec<String> = problems(&error).into_iter().map(|(_, p)| p).collect();
        assert_eq!(pointers.len(), 1, "{pointers:?}");
        assert!(pointers[0].ends_with("/0/pattern_type"), "{pointers:?}");
    }
}
