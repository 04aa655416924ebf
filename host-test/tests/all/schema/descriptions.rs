//! Every field of the contract is described, and the flags whose meaning
//! Cloudflare documents say that meaning.

use super::*;

/// The node a local `$ref` (`#/...`, a JSON Pointer into the same schema)
/// names.
fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local references are expected, got {reference}"));
    root.pointer(pointer)
        .unwrap_or_else(|| panic!("dangling $ref {reference}"))
}

/// A node and what its `$ref`s and `allOf` bring in: every one of them
/// applies to the same value.
fn applicators<'a>(root: &'a Value, node: &'a Value) -> Vec<&'a Value> {
    let mut out = Vec::new();
    let mut pending = vec![node];
    while let Some(n) = pending.pop() {
        assert!(out.len() < 32, "$ref cycle");
        out.push(n);
        if let Some(r) = n.get("$ref").and_then(Value::as_str) {
            pending.push(resolve(root, r));
        }
        if let Some(all) = n.get("allOf").and_then(Value::as_array) {
            pending.extend(all);
        }
    }
    out
}

/// The schema of property `name` of the object `node` describes.
pub(super) fn property<'a>(root: &'a Value, node: &'a Value, name: &str) -> Option<&'a Value> {
    applicators(root, node)
        .into_iter()
        .find_map(|n| n.get("properties").and_then(|p| p.get(name)))
}

/// The schema of the items of the array `node` describes.
fn items<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    applicators(root, node)
        .into_iter()
        .find_map(|n| n.get("items"))
}

/// The help text of a node: the first description among its applicators.
fn description(root: &Value, node: &Value) -> String {
    applicators(root, node)
        .into_iter()
        .find_map(|n| n.get("description").and_then(Value::as_str))
        .unwrap_or("")
        .to_string()
}

/// Follows a path of property names, `[]` meaning "the items of".
fn field<'a>(root: &'a Value, path: &str) -> Result<&'a Value, String> {
    let mut node = root;
    for step in path.split('.') {
        node = if step == "[]" {
            items(root, node).ok_or_else(|| format!("{path}: no items before {step}"))?
        } else {
            property(root, node, step).ok_or_else(|| format!("{path}: no property {step}"))?
        };
    }
    Ok(node)
}

const POLICY_FIELDS: &[&str] = &[
    "pattern",
    "pattern_type",
    "is_regex",
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
    "comments",
    "is_recipient",
    "is_sender",
    "is_spoof",
];

/// Every field of the contract, as `schema: path`.
fn contract_fields() -> Vec<(&'static str, String)> {
    let mut fields = Vec::new();
    for key in [
        "api_token",
        "api_email",
        "api_key",
        "base_url",
        "account_id",
        "timeout_ms",
        "connect_timeout_ms",
        "max_retries",
        "max_response_bytes",
    ] {
        fields.push(("config", key.to_string()));
    }
    for key in ["account_id", "deletes", "patches", "puts", "posts"] {
        fields.push(("input", key.to_string()));
    }
    fields.push(("input", "deletes.[].id".to_string()));
    for list in ["patches", "puts"] {
        fields.push(("input", format!("{list}.[].id")));
    }
    for list in ["patches", "puts", "posts"] {
        for f in POLICY_FIELDS {
            fields.push(("input", format!("{list}.[].{f}")));
        }
    }
    for key in [
        "success", "skipped", "status", "attempts", "result", "messages", "errors", "warnings",
        "counts", "dry_run", "request",
    ] {
        fields.push(("output", key.to_string()));
    }
    for list in ["deletes", "patches", "puts", "posts"] {
        fields.push(("output", format!("counts.{list}")));
        fields.push(("output", format!("result.{list}")));
    }
    for key in ["method", "url", "headers", "body"] {
        fields.push(("output", format!("request.{key}")));
    }
    for key in ["document", "pointer", "message"] {
        fields.push(("output", format!("warnings.[].{key}")));
    }
    // Results and error kinds: a failure as hosts show it.
    fields.push(("failure", "error".to_string()));
    for key in [
        "kind",
        "message",
        "retryable",
        "may_have_applied",
        "status",
        "retry_after_ms",
        "errors",
        "attempts",
    ] {
        fields.push(("failure", format!("error.{key}")));
    }
    fields
}

/// A description that only repeats the field's name ("Deletes." for
/// `deletes`) tells a form's user nothing.
fn says_more_than_the_name(text: &str, path: &str) -> bool {
    let name = path.rsplit('.').next().unwrap().replace('_', " ");
    let words: String = text
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ')
        .collect::<String>()
        .to_lowercase();
    let words = words.trim();
    !words.is_empty() && words != name
}

#[tokio::test]
async fn every_contract_field_has_a_description() {
    let schemas = Schemas::load().await;
    let mut failures = Vec::new();
    let fields = contract_fields();
    assert!(fields.len() > 60, "{}", fields.len());
    for (schema, path) in &fields {
        let root = schemas.schema(schema);
        match field(root, path) {
            Err(e) => failures.push(format!("{schema}: {e}")),
            Ok(node) => {
                let text = description(root, node);
                if !says_more_than_the_name(&text, path) {
                    failures.push(format!("{schema}: {path}: weak or no description {text:?}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// What cloudflare-api.md ("Field meanings") says each flag does, as groups
/// of phrases: the description must contain one phrase of every group
/// (case-insensitive), so rewording keeps passing while a lost meaning fails.
fn documented_meanings() -> Vec<(&'static str, Vec<Vec<&'static str>>)> {
    vec![
        (
            "is_trusted_sender",
            vec![
                vec!["from"],
                vec![
                    "bypass all detections",
                    "bypasses all detections",
                    "skip every detection",
                    "skips every detection",
                ],
                vec!["link following"],
            ],
        ),
        (
            "is_exempt_recipient",
            vec![
                vec!["to a", "recipient"],
                vec![
                    "bypass all detections",
                    "bypasses all detections",
                    "skip every detection",
                    "skips every detection",
                ],
            ],
        ),
        (
            "is_acceptable_sender",
            vec![
                vec!["spam"],
                vec!["spoof"],
                vec!["bulk"],
                vec!["malicious"],
                vec!["suspicious"],
                vec![
                    "still apply",
                    "still applies",
                    "are not exempt",
                    "still flagged",
                ],
            ],
        ),
        (
            "verify_sender",
            vec![
                vec!["only"],
                vec!["dmarc"],
                vec!["spf"],
                vec!["dkim"],
                vec!["pass"],
            ],
        ),
        (
            "is_regex",
            vec![
                vec!["regular expression"],
                vec!["java"],
                vec!["sender address"],
                vec!["originating ip"],
                vec!["server name"],
            ],
        ),
    ]
}

#[tokio::test]
async fn documented_flags_say_what_they_do() {
    let schemas = Schemas::load().await;
    let root = schemas.schema("input");
    let mut failures = Vec::new();
    for list in ["posts", "puts", "patches"] {
        for (flag, groups) in documented_meanings() {
            let node = field(root, &format!("{list}.[].{flag}")).unwrap();
            let text = description(root, node).to_lowercase();
            for group in &groups {
                if !group.iter().any(|phrase| text.contains(phrase)) {
                    failures.push(format!("{list}.{flag}: {text:?} says none of {group:?}"));
                }
            }
        }
        // The deprecated ones say so and name their replacement.
        for (old, new) in [
            ("is_recipient", "is_exempt_recipient"),
            ("is_sender", "is_trusted_sender"),
            ("is_spoof", "is_acceptable_sender"),
        ] {
            let node = field(root, &format!("{list}.[].{old}")).unwrap();
            let text = description(root, node);
            let marked = applicators(root, node)
                .iter()
                .any(|n| n.get("deprecated") == Some(&json!(true)));
            if !(marked && text.to_lowercase().contains("deprecated") && text.contains(new)) {
                failures.push(format!(
                    "{list}.{old}: not marked deprecated for {new}: {text:?}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
