//! Parameters at the edges of the rules: what the component accepts, the
//! schema accepts too.

use super::published::unpublished_body;
use super::*;
use crate::support::read_example;
use host_test::error_to_json;

/// Parameters at the edges of the rules that the component accepts: the
/// schema must accept them too, or a form would block a valid value.
fn accepted_edges() -> Vec<(&'static str, &'static str, Value)> {
    let deletes: Vec<Value> = (1..=1000).map(|i| json!({"id": i})).collect();
    let regex = |chars: usize| json!({"posts": [with(with(post(), "pattern", json!("a".repeat(chars))), "is_regex", json!(true))]});
    vec![
        (
            "config",
            "the example config with a token",
            with(read_example("config.json"), "api_token", json!(TOKEN)),
        ),
        (
            "config",
            "the legacy pair",
            legacy_config(json!("ops@example.com"), json!("k3y-GLOBAL-0f3a")),
        ),
        (
            "config",
            "an email with inner spaces",
            legacy_config(
                json!("Ops Team <ops@example.com>"),
                json!("k3y-GLOBAL-0f3a"),
            ),
        ),
        (
            "config",
            "a token with inner non-breaking space",
            config_with("api_token", json!("tok\u{a0}en-0f3a")),
        ),
        (
            "config",
            "an eight-character token, digits with one letter",
            config_with("api_token", json!("1234567a")),
        ),
        (
            "config",
            "timeout_ms 1",
            config_with("timeout_ms", json!(1)),
        ),
        (
            "config",
            "timeout_ms 600000",
            config_with("timeout_ms", json!(600_000)),
        ),
        (
            "config",
            "connect_timeout_ms 600000",
            config_with("connect_timeout_ms", json!(600_000)),
        ),
        (
            "config",
            "max_retries 0",
            config_with("max_retries", json!(0)),
        ),
        (
            "config",
            "max_retries 10",
            config_with("max_retries", json!(10)),
        ),
        (
            "config",
            "max_response_bytes 1",
            config_with("max_response_bytes", json!(1)),
        ),
        (
            "config",
            "max_response_bytes 32 MiB",
            config_with("max_response_bytes", json!(33_554_432)),
        ),
        (
            "config",
            "http to 127.0.0.1",
            config_with("base_url", json!("http://127.0.0.1:8787/client/v4")),
        ),
        (
            "config",
            "http to the top of 127/8",
            config_with("base_url", json!("http://127.255.255.254/")),
        ),
        (
            "config",
            "http to localhost in capitals",
            config_with("base_url", json!("HTTP://LOCALHOST:1")),
        ),
        (
            "config",
            "http to [::1]",
            config_with("base_url", json!("http://[::1]:65535/client/v4/")),
        ),
        (
            "config",
            "https with a port and a trailing slash",
            config_with(
                "base_url",
                json!("https://api.cloudflare.com:443/client/v4/"),
            ),
        ),
        (
            "config",
            "https to an IPv6 address",
            config_with("base_url", json!("https://[2001:db8::1]/client/v4")),
        ),
        (
            "config",
            "a path with dotted names",
            config_with("base_url", json!("https://gw.example/.well-known/.../v4.1")),
        ),
        (
            "config",
            "a path with sub-delimiters",
            config_with("base_url", json!("https://gw_1.example/a;b=c/d~e/@f:g")),
        ),
        (
            "config",
            "a port with a leading zero",
            config_with("base_url", json!("https://gw.example:0443/v4")),
        ),
        ("input", "an empty batch", json!({})),
        (
            "input",
            "empty lists",
            json!({"deletes": [], "patches": [], "puts": [], "posts": []}),
        ),
        ("input", "an account id", json!({"account_id": ACCOUNT})),
        ("input", "a pattern of 1024 characters", regex(1024)),
        ("input", "a pattern of 1 character", regex(1)),
        (
            "input",
            "comments of 1024 three-byte characters",
            json!({"posts": [with(post(), "comments", json!("é".repeat(1024)))]}),
        ),
        (
            "input",
            "comments null in a create and a patch",
            json!({"posts": [with(post(), "comments", json!(null))], "patches": [{"id": 1, "comments": null}]}),
        ),
        ("input", "1000 deletes", json!({"deletes": deletes})),
        (
            "input",
            "the largest id",
            json!({"deletes": [{"id": 2_147_483_647}]}),
        ),
        (
            "input",
            "an upper-case UUID",
            json!({"deletes": [{"id": UUID.to_uppercase()}]}),
        ),
        (
            "input",
            "a deprecated boolean alone in a patch",
            json!({"patches": [{"id": 1, "is_sender": true}]}),
        ),
        (
            "input",
            "a deprecated boolean that agrees",
            json!({"posts": [with(with(post(), "is_sender", json!(true)), "is_spoof", json!(false))]}),
        ),
        (
            "input",
            "a patch that changes nothing (a warning)",
            json!({"patches": [{"id": 1}]}),
        ),
        (
            "input",
            "two equal posts (a warning)",
            json!({"posts": [post(), post()]}),
        ),
        (
            "input",
            "different ids in every list",
            json!({"deletes": [{"id": 1}], "patches": [{"id": 2, "verify_sender": false}], "puts": [put(json!(3))], "posts": [post()]}),
        ),
    ]
}

#[tokio::test]
async fn parameters_at_the_edges_of_the_rules_are_accepted_by_both() {
    let schemas = Schemas::load().await;
    let (config, input) = (schemas.compile("config"), schemas.compile("input"));
    let mut failures = Vec::new();
    for (document, what, value) in accepted_edges() {
        let (config_text, input_text) = documents(document, &value);
        match prepare_text(&config_text, &input_text).await {
            Ok(preview) => {
                let preview: Value = serde_json::from_str(&preview).expect("a preview is JSON");
                failures.extend(
                    unpublished_body(&preview)
                        .into_iter()
                        .map(|e| format!("{what}: {e}")),
                );
            }
            Err(e) => failures.push(format!(
                "{what}: the component refuses it: {}",
                error_to_json(&e)
            )),
        }
        let validator = if document == "config" {
            &config.strict
        } else {
            &input.strict
        };
        let errors = schema_errors(validator, &value);
        if !errors.is_empty() {
            failures.push(format!("{what}: the schema refuses it: {errors:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
