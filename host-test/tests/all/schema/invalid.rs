//! Invalid parameters: the schema refuses what it can express, where the
//! component does.

use super::*;

/// One set of parameters the component refuses: `document` is the one the
/// problem is in, `value` that document, and `pointer` where the single
/// problem the component reports is.
struct Invalid {
    rule: &'static str,
    document: &'static str,
    value: Value,
    pointer: &'static str,
}

fn invalid_config(rule: &'static str, value: Value, pointer: &'static str) -> Invalid {
    Invalid {
        rule,
        document: "config",
        value,
        pointer,
    }
}

fn invalid_input(rule: &'static str, value: Value, pointer: &'static str) -> Invalid {
    Invalid {
        rule,
        document: "input",
        value,
        pointer,
    }
}

/// Rules of the contract (Validation) that the schema states.
fn expressible_rules() -> Vec<Invalid> {
    let long = "a".repeat(1025);
    let deletes = |n: u32| (1..=n).map(|i| json!({"id": i})).collect::<Vec<_>>();
    let patches = |n: u32| {
        (1..=n)
            .map(|i| json!({"id": i, "comments": "x"}))
            .collect::<Vec<_>>()
    };
    vec![
        // Wrong JSON type.
        invalid_config("config is an object", json!([]), ""),
        invalid_config(
            "api_token is a string",
            config_with("api_token", json!(42)),
            "/api_token",
        ),
        invalid_config(
            "timeout_ms is an integer",
            config_with("timeout_ms", json!("30000")),
            "/timeout_ms",
        ),
        invalid_config(
            "max_retries is an integer",
            config_with("max_retries", json!(1.5)),
            "/max_retries",
        ),
        invalid_config(
            "base_url is a string",
            config_with("base_url", json!(null)),
            "/base_url",
        ),
        invalid_input("input is an object", json!([]), ""),
        invalid_input(
            "deletes is an array",
            json!({"deletes": {"id": 1}}),
            "/deletes",
        ),
        invalid_input(
            "an item is an object",
            json!({"deletes": [5]}),
            "/deletes/0",
        ),
        invalid_input("a post is an object", json!({"posts": ["x"]}), "/posts/0"),
        invalid_input(
            "is_regex is a boolean",
            json!({"posts": [with(post(), "is_regex", json!("false"))]}),
            "/posts/0/is_regex",
        ),
        invalid_input(
            "verify_sender is a boolean",
            json!({"patches": [{"id": 1, "verify_sender": null}]}),
            "/patches/0/verify_sender",
        ),
        invalid_input(
            "pattern is a string",
            json!({"puts": [with(put(json!(1)), "pattern", json!(5))]}),
            "/puts/0/pattern",
        ),
        invalid_input(
            "comments is a string or null",
            json!({"posts": [with(post(), "comments", json!(5))]}),
            "/posts/0/comments",
        ),
        invalid_input(
            "a deprecated boolean is a boolean",
            json!({"patches": [{"id": 1, "is_spoof": "yes"}]}),
            "/patches/0/is_spoof",
        ),
        invalid_input(
            "account_id is a string",
            json!({"account_id": 12}),
            "/account_id",
        ),
        // Missing required field.
        invalid_input(
            "a create needs pattern_type",
            json!({"posts": [without(post(), "pattern_type")]}),
            "/posts/0/pattern_type",
        ),
        invalid_input(
            "a create needs verify_sender",
            json!({"posts": [without(post(), "verify_sender")]}),
            "/posts/0/verify_sender",
        ),
        invalid_input("a put needs id", json!({"puts": [post()]}), "/puts/0/id"),
        invalid_input(
            "a put needs every field",
            json!({"puts": [without(put(json!(1)), "is_regex")]}),
            "/puts/0/is_regex",
        ),
        invalid_input(
            "a patch needs id",
            json!({"patches": [{"comments": "x"}]}),
            "/patches/0/id",
        ),
        invalid_input(
            "a delete needs id",
            json!({"deletes": [{}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "a deprecated boolean does not stand in for its replacement in a create",
            json!({"posts": [with(without(post(), "is_trusted_sender"), "is_sender", json!(true))]}),
            "/posts/0/is_trusted_sender",
        ),
        // Unknown field.
        invalid_config(
            "no unknown config key",
            config_with("timeout", json!(1000)),
            "/timeout",
        ),
        invalid_input("no unknown input key", json!({"post": []}), "/post"),
        invalid_input(
            "no unknown policy field",
            json!({"posts": [with(post(), "colour", json!("red"))]}),
            "/posts/0/colour",
        ),
        invalid_input(
            "a create has no id",
            json!({"posts": [with(post(), "id", json!(7))]}),
            "/posts/0/id",
        ),
        invalid_input(
            "a delete has only id",
            json!({"deletes": [{"id": 1, "pattern": "x"}]}),
            "/deletes/0/pattern",
        ),
        // Bad enum value.
        invalid_input(
            "pattern_type is one of the three a write may use",
            json!({"posts": [with(post(), "pattern_type", json!("EMAILS"))]}),
            "/posts/0/pattern_type",
        ),
        invalid_input(
            "UNKNOWN is for stored policies only",
            json!({"patches": [{"id": UUID, "pattern_type": "UNKNOWN"}]}),
            "/patches/0/pattern_type",
        ),
        invalid_input(
            "pattern_type is upper case",
            json!({"patches": [{"id": 1, "pattern_type": "email"}]}),
            "/patches/0/pattern_type",
        ),
        // String length out of range (characters, not bytes).
        invalid_input(
            "pattern is not empty",
            json!({"posts": [with(with(post(), "pattern", json!("")), "is_regex", json!(true))]}),
            "/posts/0/pattern",
        ),
        invalid_input(
            "pattern has at most 1024 characters",
            json!({"posts": [with(with(post(), "pattern", json!(long)), "is_regex", json!(true))]}),
            "/posts/0/pattern",
        ),
        invalid_input(
            "a patch's pattern too",
            json!({"patches": [{"id": 1, "pattern": long}]}),
            "/patches/0/pattern",
        ),
        invalid_input(
            "comments has at most 1024 characters",
            json!({"posts": [with(post(), "comments", json!(long))]}),
            "/posts/0/comments",
        ),
        invalid_input(
            "comments counts characters",
            json!({"puts": [with(put(json!(1)), "comments", json!("é".repeat(1025)))]}),
            "/puts/0/comments",
        ),
        // More than 1000 items.
        invalid_input(
            "at most 1000 deletes",
            json!({"deletes": deletes(1001)}),
            "/deletes",
        ),
        invalid_input(
            "at most 1000 patches",
            json!({"patches": patches(1001)}),
            "/patches",
        ),
        // Malformed id.
        invalid_input(
            "id is positive",
            json!({"deletes": [{"id": 0}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "id is not negative",
            json!({"deletes": [{"id": -3}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "id fits 32 bits",
            json!({"deletes": [{"id": 2_147_483_648u64}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "id is not a fraction",
            json!({"deletes": [{"id": 1.5}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "a numeric id is not a string",
            json!({"patches": [{"id": "2401", "comments": "x"}]}),
            "/patches/0/id",
        ),
        invalid_input(
            "a UUID has 36 characters",
            json!({"puts": [put(json!("f174e90a-fafe-4643-bbbc-4a0ed4fc841"))]}),
            "/puts/0/id",
        ),
        invalid_input(
            "a UUID has its hyphens",
            json!({"deletes": [{"id": "f174e90afafe4643bbbc4a0ed4fc8415abcd"}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "a UUID has no braces",
            json!({"deletes": [{"id": "{f174e90a-fafe-4643-bbbc-4a0ed4fc8415}"}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "id is not a boolean",
            json!({"deletes": [{"id": true}]}),
            "/deletes/0/id",
        ),
        invalid_input(
            "id is not null",
            json!({"deletes": [{"id": null}]}),
            "/deletes/0/id",
        ),
        // The same policy twice: the schema sees it within deletes.
        invalid_input(
            "a delete is not repeated",
            json!({"deletes": [{"id": 5}, {"id": 5}]}),
            "/deletes/1/id",
        ),
        // Bad account id, including anything that would change the URL.
        invalid_config(
            "account_id is lower case",
            config_with("account_id", json!("023E105F4ECEF8AD9CA31A8372D0C353")),
            "/account_id",
        ),
        invalid_config(
            "account_id has 32 characters",
            config_with("account_id", json!("023e105f4ecef8ad9ca31a8372d0c35")),
            "/account_id",
        ),
        invalid_input(
            "account_id cannot climb the path",
            json!({"account_id": "../../user/tokens/verify"}),
            "/account_id",
        ),
        invalid_input(
            "account_id has no query",
            json!({"account_id": "023e105f4ecef8ad9ca31a8372d0?x=1"}),
            "/account_id",
        ),
        invalid_input(
            "account_id has no fragment",
            json!({"account_id": "023e105f4ecef8ad9ca31a8372d0c#35"}),
            "/account_id",
        ),
        invalid_input(
            "account_id has no escapes",
            json!({"account_id": "023e105f4ecef8ad9ca31a8372d0%2F"}),
            "/account_id",
        ),
        invalid_input(
            "account_id has no white space",
            json!({"account_id": "023e105f4ecef8ad 9ca31a8372d0c35"}),
            "/account_id",
        ),
        invalid_input(
            "account_id is not empty",
            json!({"account_id": ""}),
            "/account_id",
        ),
        // Credentials: one method, no control characters, no stray spaces.
        invalid_config(
            "not a token and the legacy pair",
            with(
                legacy_config(json!("ops@example.com"), json!("k3y-GLOBAL-0f3a")),
                "api_token",
                json!(TOKEN),
            ),
            "/api_token",
        ),
        invalid_config(
            "not a token and an email",
            config_with("api_email", json!("ops@example.com")),
            "/api_token",
        ),
        invalid_config(
            "api_email needs api_key",
            json!({"api_email": "ops@example.com", "account_id": ACCOUNT}),
            "/api_key",
        ),
        invalid_config(
            "api_key needs api_email",
            json!({"api_key": "k3y-GLOBAL-0f3a", "account_id": ACCOUNT}),
            "/api_email",
        ),
        invalid_config(
            "api_token has at least 8 characters",
            config_with("api_token", json!("tok7chr")),
            "/api_token",
        ),
        invalid_config(
            "api_token is not a number",
            config_with("api_token", json!("12345678901234567890")),
            "/api_token",
        ),
        invalid_config(
            "api_token is not a number in any spelling",
            config_with("api_token", json!("-1.5e+10123")),
            "/api_token",
        ),
        invalid_config(
            "api_key is not a number",
            legacy_config(
                json!("ops@example.com"),
                json!("0123456789012345678901234567890123456"),
            ),
            "/api_key",
        ),
        invalid_config(
            "api_token has no line break",
            config_with("api_token", json!("tok\nen")),
            "/api_token",
        ),
        invalid_config(
            "api_token has no NUL",
            config_with("api_token", json!("tok\u{0}en")),
            "/api_token",
        ),
        invalid_config(
            "api_token has no DEL",
            config_with("api_token", json!("token\u{7f}")),
            "/api_token",
        ),
        invalid_config(
            "api_token has no C1 control",
            config_with("api_token", json!("tok\u{85}en")),
            "/api_token",
        ),
        invalid_config(
            "api_token has no space",
            config_with("api_token", json!("Bearer token")),
            "/api_token",
        ),
        invalid_config(
            "api_token has no leading white space",
            config_with("api_token", json!("\u{a0}token")),
            "/api_token",
        ),
        invalid_config(
            "api_token is not empty",
            config_with("api_token", json!("")),
            "/api_token",
        ),
        invalid_config(
            "api_key has no control character",
            legacy_config(json!("ops@example.com"), json!("k3y-GLOBAL\r")),
            "/api_key",
        ),
        invalid_config(
            "api_key has no space",
            legacy_config(json!("ops@example.com"), json!("k3y-GLOBAL k3y-GLOBAL")),
            "/api_key",
        ),
        invalid_config(
            "api_email has no control character",
            legacy_config(json!("ops@exa\tmple.com"), json!("k3y-GLOBAL-0f3a")),
            "/api_email",
        ),
        invalid_config(
            "api_email has no trailing white space",
            legacy_config(json!("ops@example.com "), json!("k3y-GLOBAL-0f3a")),
            "/api_email",
        ),
        invalid_config(
            "api_email is not empty",
            legacy_config(json!(""), json!("k3y-GLOBAL-0f3a")),
            "/api_email",
        ),
        // Integers in range.
        invalid_config(
            "timeout_ms at least 1",
            config_with("timeout_ms", json!(0)),
            "/timeout_ms",
        ),
        invalid_config(
            "timeout_ms at most 600000",
            config_with("timeout_ms", json!(600_001)),
            "/timeout_ms",
        ),
        invalid_config(
            "connect_timeout_ms at most 600000",
            config_with("connect_timeout_ms", json!(600_001)),
            "/connect_timeout_ms",
        ),
        invalid_config(
            "connect_timeout_ms at least 1",
            config_with("connect_timeout_ms", json!(0)),
            "/connect_timeout_ms",
        ),
        invalid_config(
            "max_retries at most 10",
            config_with("max_retries", json!(11)),
            "/max_retries",
        ),
        invalid_config(
            "max_retries not negative",
            config_with("max_retries", json!(-1)),
            "/max_retries",
        ),
        invalid_config(
            "max_response_bytes at least 1",
            config_with("max_response_bytes", json!(0)),
            "/max_response_bytes",
        ),
        invalid_config(
            "max_response_bytes at most 32 MiB",
            config_with("max_response_bytes", json!(33_554_433)),
            "/max_response_bytes",
        ),
        // base_url: https, or http to loopback only; nothing that changes
        // where the request goes.
        invalid_config(
            "base_url is https",
            config_with("base_url", json!("http://api.cloudflare.com/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "http only to 127.0.0.0/8",
            config_with("base_url", json!("http://127.0.0.1.nip.example/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "http only to localhost itself",
            config_with("base_url", json!("http://localhost.example/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "http only to [::1]",
            config_with("base_url", json!("http://[::2]/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url is http(s)",
            config_with("base_url", json!("ftp://api.cloudflare.com/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url is absolute",
            config_with("base_url", json!("api.cloudflare.com/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url has no query",
            config_with(
                "base_url",
                json!("https://api.cloudflare.com/client/v4?x=1"),
            ),
            "/base_url",
        ),
        invalid_config(
            "base_url has no fragment",
            config_with("base_url", json!("https://api.cloudflare.com/client/v4#x")),
            "/base_url",
        ),
        invalid_config(
            "base_url has no user",
            config_with("base_url", json!("https://me@api.cloudflare.com/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url has no white space",
            config_with("base_url", json!("https://api.cloudflare.com/client/v4 ")),
            "/base_url",
        ),
        invalid_config(
            "base_url path has no escapes",
            config_with(
                "base_url",
                json!("https://api.cloudflare.com/client/%2e%2e"),
            ),
            "/base_url",
        ),
        invalid_config(
            "base_url path has no ..",
            config_with("base_url", json!("https://api.cloudflare.com/client/../v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url path has no .",
            config_with("base_url", json!("https://api.cloudflare.com/./client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url host has no odd characters",
            config_with("base_url", json!("https://api.cloudflare!.com/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url port is not 0",
            config_with("base_url", json!("https://api.cloudflare.com:0/client/v4")),
            "/base_url",
        ),
        invalid_config(
            "base_url port fits 16 bits",
            config_with(
                "base_url",
                json!("https://api.cloudflare.com:65536/client/v4"),
            ),
            "/base_url",
        ),
        invalid_config(
            "base_url port is not empty",
            config_with("base_url", json!("https://api.cloudflare.com:/client/v4")),
            "/base_url",
        ),
        // A deprecated boolean that contradicts its replacement.
        invalid_input(
            "is_sender agrees with is_trusted_sender",
            json!({"posts": [with(post(), "is_sender", json!(false))]}),
            "/posts/0/is_sender",
        ),
        invalid_input(
            "is_recipient agrees with is_exempt_recipient",
            json!({"patches": [{"id": 1, "is_recipient": true, "is_exempt_recipient": false}]}),
            "/patches/0/is_recipient",
        ),
        invalid_input(
            "is_spoof agrees with is_acceptable_sender",
            json!({"puts": [with(put(json!(1)), "is_spoof", json!(true))]}),
            "/puts/0/is_spoof",
        ),
        invalid_input(
            "sync.left_out is an array",
            json!({"sync": {"policies": [], "left_out": "none"}}),
            "/sync/left_out",
        ),
        invalid_input(
            "sync.left_out holds objects",
            json!({"sync": {"policies": [], "left_out": [{"id": 1}, "x"]}}),
            "/sync/left_out/1",
        ),
        invalid_input(
            "sync.left_out items have only the members an export writes",
            json!({"sync": {"policies": [], "left_out": [{"id": 1, "note": "x"}]}}),
            "/sync/left_out/0/note",
        ),
    ]
}

/// Whether the schema's complaint is at the component's pointer, above it,
/// or beside it in the same object (a `required` or `additionalProperties`
/// error is reported at the object; a rule across two fields at either).
fn near(schema_path: &str, pointer: &str) -> bool {
    let within = |outer: &str, inner: &str| {
        inner == outer || inner.starts_with(&format!("{outer}/")) || outer.is_empty()
    };
    let parent = pointer.rsplit_once('/').map_or("", |(p, _)| p);
    within(schema_path, pointer) || within(parent, schema_path)
}

#[tokio::test]
async fn invalid_parameters_are_refused_by_the_schema_and_the_component() {
    let schemas = Schemas::load().await;
    let (config, input) = (schemas.compile("config"), schemas.compile("input"));
    let mut failures = Vec::new();
    let cases = expressible_rules();
    assert!(cases.len() >= 90, "{}", cases.len());
    for case in &cases {
        // The component refuses it, with exactly the one problem meant.
        let (config_text, input_text) = documents(case.document, &case.value);
        match prepare_text(&config_text, &input_text).await {
            Ok(_) => failures.push(format!("{}: the component accepts it", case.rule)),
            Err(e) => {
                let found = problems(&e);
                if found != [(case.document, case.pointer.to_string())] {
                    failures.push(format!(
                        "{}: the component reports {found:?}, expected {} {}",
                        case.rule, case.document, case.pointer
                    ));
                }
            }
        }
        // And so does the schema, near the same place.
        let validator = if case.document == "config" {
            &config.plain
        } else {
            &input.plain
        };
        let paths: Vec<String> = validator
            .iter_errors(&case.value)
            .map(|e| e.instance_path().as_str().to_string())
            .collect();
        if paths.is_empty() {
            failures.push(format!("{}: the schema accepts it", case.rule));
        } else if !paths.iter().any(|p| near(p, case.pointer)) {
            failures.push(format!(
                "{}: the schema objects at {paths:?}, the component at {}",
                case.rule, case.pointer
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
