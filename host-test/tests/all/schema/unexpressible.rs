//! The rules JSON Schema cannot state, each with the reason, enforced by
//! the component alone.

use super::*;

/// A rule only the component enforces, with the reason JSON Schema cannot
/// state it. `config` and `input` are the texts `prepare` gets.
struct Unexpressible {
    rule: &'static str,
    why: &'static str,
    config: String,
    input: String,
    /// `(document, pointer)` of the component's one problem.
    problem: (&'static str, &'static str),
}

fn unexpressible_rules() -> Vec<Unexpressible> {
    let config = base_config().to_string();
    let case = |rule, why, input: Value, pointer| Unexpressible {
        rule,
        why,
        config: config.clone(),
        input: input.to_string(),
        problem: ("input", pointer),
    };
    let config_case = |rule, why, config: Value, pointer| Unexpressible {
        rule,
        why,
        config: config.to_string(),
        input: "{}".to_string(),
        problem: ("config", pointer),
    };
    let typed = |kind: &str, pattern: &str| json!({"posts": [with(with(post(), "pattern_type", json!(kind)), "pattern", json!(pattern))]});
    let regex = |pattern: &str| json!({"posts": [with(with(post(), "is_regex", json!(true)), "pattern", json!(pattern))]});
    vec![
        config_case(
            "credentials are given",
            "the host may supply a token (task-host reads CLOUDFLARE_API_TOKEN), so the schema requires none",
            json!({"account_id": ACCOUNT}),
            "/api_token",
        ),
        Unexpressible {
            rule: "an account id in the input or the config",
            why: "a rule across two documents, each with its own schema",
            config: json!({"api_token": TOKEN}).to_string(),
            input: "{}".to_string(),
            problem: ("input", "/account_id"),
        },
        case(
            "each policy once: across deletes and patches",
            "uniqueness across two arrays",
            json!({"deletes": [{"id": 8}], "patches": [{"id": 8, "comments": null}]}),
            "/patches/0/id",
        ),
        case(
            "each policy once: across patches and puts",
            "uniqueness across two arrays",
            json!({"patches": [{"id": UUID, "comments": "x"}], "puts": [put(json!(UUID))]}),
            "/puts/0/id",
        ),
        case(
            "each policy once: two patches of one id",
            "uniqueItems compares whole items, and these differ in other fields",
            json!({"patches": [{"id": 9, "comments": "a"}, {"id": 9, "comments": "b"}]}),
            "/patches/1/id",
        ),
        case(
            "each policy once: one UUID in two letter cases",
            "uniqueItems compares strings exactly; UUIDs are equal whatever the case",
            json!({"deletes": [{"id": UUID}, {"id": UUID.to_uppercase()}]}),
            "/deletes/1/id",
        ),
        case(
            "an EMAIL pattern is an address",
            "pattern_type decides the syntax; a regular expression for each type would be a second, divergent implementation of pattern.rs",
            typed("EMAIL", "not-an-address"),
            "/posts/0/pattern",
        ),
        case(
            "a DOMAIN pattern is a host name",
            "as above",
            typed("DOMAIN", "-bad-.example"),
            "/posts/0/pattern",
        ),
        case(
            "an IP pattern is an address or CIDR",
            "as above",
            typed("IP", "300.1.2.3"),
            "/posts/0/pattern",
        ),
        case(
            "an IP CIDR prefix fits the address",
            "as above",
            typed("IP", "8.8.8.0/33"),
            "/posts/0/pattern",
        ),
        case(
            "an IP pattern is globally reachable",
            "as above, with IANA's special-purpose ranges on top",
            typed("IP", "10.0.0.0/8"),
            "/posts/0/pattern",
        ),
        case(
            "an IP CIDR overlaps no range that is not globally reachable",
            "as above",
            typed("IP", "0.0.0.0/0"),
            "/posts/0/pattern",
        ),
        case(
            "a regex pattern is well formed: unbalanced group",
            "the format \"regex\" is ECMA-262 and only an annotation; the API reads Java syntax",
            regex("(unclosed"),
            "/posts/0/pattern",
        ),
        case(
            "a regex pattern is well formed: reversed range",
            "as above",
            regex("[z-a]"),
            "/posts/0/pattern",
        ),
        case(
            "an integer is written without a fraction: id",
            "JSON Schema's integer is any number with a zero fraction, so 7.0 is one",
            json!({"deletes": [{"id": 7.0}]}),
            "/deletes/0/id",
        ),
        config_case(
            "an integer is written without a fraction: timeout_ms",
            "as above",
            config_with("timeout_ms", json!(30000.0)),
            "/timeout_ms",
        ),
        config_case(
            "an IPv6 base_url host is a valid address",
            "an exact IPv6 grammar as a regular expression is not worth its size; the schema checks the characters",
            config_with("base_url", json!("https://[1::2::3]/client/v4")),
            "/base_url",
        ),
        Unexpressible {
            rule: "a key appears once in its object",
            why: "a schema sees the parsed document, in which the last of the repeated keys has won",
            config: config.clone(),
            input: r#"{"deletes": [{"id": 1}], "deletes": []}"#.to_string(),
            problem: ("input", "/deletes"),
        },
        Unexpressible {
            rule: "a config is at most 64 KiB",
            why: "JSON Schema bounds values, not the size of a document's text",
            config: json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": format!("https://api.cloudflare.com/{}", "v".repeat(65_536))}).to_string(),
            input: "{}".to_string(),
            problem: ("config", ""),
        },
    ]
}

#[tokio::test]
async fn rules_the_schema_cannot_express_are_enforced_by_the_component() {
    let schemas = Schemas::load().await;
    let (config, input) = (schemas.compile("config"), schemas.compile("input"));
    let mut failures = Vec::new();
    for case in unexpressible_rules() {
        assert!(!case.why.is_empty());
        match prepare_text(&case.config, &case.input).await {
            Ok(_) => failures.push(format!("{}: the component accepts it", case.rule)),
            Err(e) => {
                let found = problems(&e);
                let (document, pointer) = case.problem;
                if found != [(document, pointer.to_string())] {
                    failures.push(format!(
                        "{}: the component reports {found:?}, expected {document} {pointer}",
                        case.rule
                    ));
                }
            }
        }
        // The schema accepts both documents: the rule is the component's alone.
        for (validator, text) in [(&config.plain, &case.config), (&input.plain, &case.input)] {
            let value: Value = serde_json::from_str(text).unwrap();
            let errors = schema_errors(validator, &value);
            if !errors.is_empty() {
                failures.push(format!(
                    "{}: the schema refuses it now ({errors:?}); move it to expressible_rules",
                    case.rule
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
