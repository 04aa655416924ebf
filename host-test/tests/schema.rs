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
//! 127.0.0.1.

use host_test::fake_api::{FakeApi, FakeApiOptions, Fault};
use host_test::{
    default_component_path, error_kind, error_to_json, Document, TaskError, TaskHost, TaskOptions,
};
use jsonschema::Validator;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

#[path = "support/published_schema.rs"]
mod published_schema;

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";
const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "schema-TEST-token-0f3a";
const UUID: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
/// The ids the example batch deletes and replaces, and one it leaves alone.
const DELETED: &str = "0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10";
const REPLACED: &str = "5b2e8f14-3c6d-4a9e-8f01-7d3c2b1a0e9f";
const KEPT: &str = "9d1c2b3a-4e5f-4a6b-8c7d-0e1f2a3b4c5d";

fn host() -> &'static TaskHost {
    static HOST: OnceLock<TaskHost> = OnceLock::new();
    HOST.get_or_init(|| {
        TaskHost::load(&default_component_path()).expect("run `make component` first")
    })
}

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

/// Every error a validator finds, as `at "instance path": message`, each
/// cut short (a message quotes the offending value, which may be long).
fn schema_errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| {
            let text = format!("at {:?}: {e}", e.instance_path().as_str());
            match text.char_indices().nth(300) {
                Some((cut, _)) => format!("{}...", &text[..cut]),
                None => text,
            }
        })
        .collect()
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors = schema_errors(validator, instance);
    assert!(
        errors.is_empty(),
        "{what} is not valid against its schema:\n  {}\n{instance}",
        errors.join("\n  ")
    );
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn read_example(relative: &str) -> Value {
    let path = examples().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

// ---------------------------------------------------------------------------
// 1. The schemas themselves

#[tokio::test]
async fn each_schema_is_a_valid_draft_2020_12_schema() {
    let schemas = Schemas::load().await;
    let names: Vec<&str> = schemas
        .doc
        .as_object()
        .expect("describe returns an object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    for name in ["config", "input", "output"] {
        let schema = schemas.schema(name);
        assert_eq!(schema["$schema"], DRAFT_2020_12, "{name}: $schema");
        if let Err(e) = jsonschema::draft202012::meta::validate(schema) {
            panic!(
                "the {name} schema is not a valid draft 2020-12 schema: {e} at {}",
                e.instance_path().as_str()
            );
        }
        // A tool that picks the draft from `$schema` agrees.
        assert!(jsonschema::meta::is_valid(schema), "{name}");
        // Compiling resolves every `$ref` and every regular expression.
        schemas.compile(name);
        jsonschema::validator_for(schema)
            .unwrap_or_else(|e| panic!("{name} does not compile with its own $schema: {e}"));
    }
}

// ---------------------------------------------------------------------------
// 2. Examples and real outputs are valid

#[tokio::test]
async fn the_examples_are_valid_against_their_schemas() {
    let schemas = Schemas::load().await;
    let (config, input, output) = (
        schemas.compile("config"),
        schemas.compile("input"),
        schemas.compile("output"),
    );

    // The example config carries no credentials: the host adds the token
    // (task-host from CLOUDFLARE_API_TOKEN), which is why the schema
    // requires none. With a token, or with the legacy pair, it is still valid.
    let example_config = read_example("config.json");
    assert_valid(&config.strict, &example_config, "examples/config.json");
    assert!(example_config.get("api_token").is_none());
    let with_token = with(example_config.clone(), "api_token", json!(TOKEN));
    assert_valid(&config.strict, &with_token, "config.json with a token");
    let legacy = with(
        with(example_config, "api_email", json!("ops@example.com")),
        "api_key",
        json!("legacy-key-0c1d"),
    );
    assert_valid(&config.strict, &legacy, "config.json with the legacy pair");

    // Task inputs: the example batch, the Conductor start request's
    // workflow input (passed to the task key for key), and the SimWorkflow
    // Http task's body (the API body, which is a valid input as it is).
    let simworkflow = read_example("simworkflow/allow-policies-sync.json");
    let task = &simworkflow["tasks"][simworkflow["startTask"].as_str().unwrap()];
    let http = &task["httpRequest"];
    let inputs = [
        ("examples/batch.json", read_example("batch.json")),
        (
            "examples/conductor/start-workflow.json input",
            read_example("conductor/start-workflow.json")["input"].clone(),
        ),
        ("examples/simworkflow Http body", http["body"].clone()),
    ];
    for (what, value) in &inputs {
        assert_valid(&input.strict, value, what);
        let prepared = prepare_text(&with_token.to_string(), &value.to_string()).await;
        assert!(prepared.is_ok(), "{what}: {prepared:?}");
    }

    // The SimWorkflow request is what a dry run prints, so as the request
    // of a dry-run document it is valid output.
    let preview = json!({
        "dry_run": true, "skipped": false, "request": http, "warnings": [],
        "counts": {"deletes": 1, "patches": 1, "puts": 1, "posts": 3}
    });
    assert_valid(
        &output.strict,
        &preview,
        "the SimWorkflow request as a dry run",
    );

    // Conductor names the task's parameters and results by key: each must
    // be a field the schemas describe.
    let task_def = read_example("conductor/task-def.json");
    let workflow = read_example("conductor/workflow.json");
    let input_schema = schemas.schema("input");
    let output_schema = schemas.schema("output");
    let mut input_keys: Vec<String> = keys(&task_def["inputKeys"]);
    input_keys.extend(
        workflow["tasks"][0]["inputParameters"]
            .as_object()
            .unwrap()
            .keys()
            .cloned(),
    );
    for key in &input_keys {
        assert!(
            property(input_schema, input_schema, key).is_some(),
            "Conductor passes {key}, which the input schema does not have"
        );
    }
    let mut output_keys = keys(&task_def["outputKeys"]);
    for reference in workflow["outputParameters"].as_object().unwrap().values() {
        let reference = reference.as_str().unwrap();
        let key = reference
            .strip_prefix("${apply_allow_policies.output.")
            .and_then(|r| r.strip_suffix('}'))
            .unwrap_or_else(|| panic!("unexpected reference {reference}"));
        output_keys.push(key.to_string());
    }
    for key in &output_keys {
        assert!(
            property(output_schema, output_schema, key).is_some(),
            "Conductor reads output.{key}, which the output schema does not have"
        );
    }
}

fn keys(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list of names")
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn real_outputs_are_valid_against_the_output_schema() {
    let schemas = Schemas::load().await;
    let output = schemas.compile("output");

    let fake = FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: None,
        ..FakeApiOptions::default()
    })
    .await
    .expect("the fake API starts on loopback");
    // The policies the example batch deletes, patches and replaces.
    fake.seed(
        ACCOUNT,
        [
            with(put(json!(DELETED)), "pattern", json!("old@example.com")),
            with(put(json!(UUID)), "pattern", json!("partner@example.com")),
            with(
                put(json!(REPLACED)),
                "pattern",
                json!("payroll@example.com"),
            ),
            with(put(json!(KEPT)), "pattern", json!("kept@example.com")),
        ]
        .into_iter()
        .map(|p| with(p, "pattern_type", json!("EMAIL"))),
    )
    .expect("seeded");
    let config =
        json!({"api_token": TOKEN, "base_url": fake.base_url(), "account_id": ACCOUNT}).to_string();
    let allowed = TaskOptions::default()
        .with_allowed_host(format!("127.0.0.1:{}", fake.addr().port()).parse().unwrap());
    let run = |input: Value| {
        let (config, allowed) = (config.clone(), allowed.clone());
        async move {
            host()
                .run_task(&allowed, &config, &input.to_string())
                .await
                .expect("run-task runs")
        }
    };
    let parse = |text: String| -> Value { serde_json::from_str(&text).expect("output is JSON") };

    // Sent: the example batch, applied by the fake.
    let sent = parse(
        run(read_example("batch.json"))
            .await
            .expect("the batch succeeds"),
    );
    assert_eq!(
        (&sent["success"], &sent["skipped"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(sent["result"]["posts"].as_array().unwrap().len(), 3);
    assert_valid(&output.strict, &sent, "the result of the example batch");

    // Sent, with warnings: a deprecated boolean moved in a patch, a patch
    // that changes nothing, the same policy created twice.
    let warned = parse(
        run(json!({
            "patches": [{"id": KEPT, "is_sender": false}, {"id": REPLACED}],
            "posts": [post(), post()]
        }))
        .await
        .unwrap_or_else(|e| panic!("{}", error_to_json(&e))),
    );
    assert_eq!(warned["warnings"].as_array().unwrap().len(), 3, "{warned}");
    assert_valid(&output.strict, &warned, "a result with warnings");

    // Skipped: an empty batch is not sent.
    let skipped = parse(run(json!({})).await.expect("an empty batch succeeds"));
    assert_eq!(
        (
            &skipped["skipped"],
            &skipped["status"],
            &skipped["attempts"]
        ),
        (&json!(true), &Value::Null, &json!(0))
    );
    assert_valid(&output.strict, &skipped, "the skipped result");

    // Dry runs: token, legacy pair, empty batch.
    let dry = |config: String, input: Value| async move {
        let text = prepare_text(&config, &input.to_string())
            .await
            .unwrap_or_else(|e| panic!("{}", error_to_json(&e)));
        serde_json::from_str::<Value>(&text).expect("the preview is JSON")
    };
    let preview = dry(config.clone(), read_example("batch.json")).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["request"]["headers"]["Authorization"], "[redacted]");
    assert_valid(&output.strict, &preview, "the dry run of the example batch");
    let legacy = json!({"api_email": "ops@example.com", "api_key": "legacy-key-0c1d",
                        "account_id": ACCOUNT})
    .to_string();
    let legacy_preview = dry(legacy, json!({"deletes": [{"id": 2401}]})).await;
    assert_eq!(
        legacy_preview["request"]["headers"]["X-Auth-Key"],
        "[redacted]"
    );
    assert_valid(
        &output.strict,
        &legacy_preview,
        "a dry run with the legacy pair",
    );
    let skipped_preview = dry(config.clone(), json!({})).await;
    assert_eq!(skipped_preview["request"], Value::Null);
    assert_valid(
        &output.strict,
        &skipped_preview,
        "the dry run of an empty batch",
    );

    // The two documents are told apart: neither takes the other's keys.
    for (doc, key, value) in [
        (&sent, "request", preview["request"].clone()),
        (&sent, "dry_run", json!(true)),
        (&preview, "success", json!(true)),
        (&preview, "status", json!(200)),
    ] {
        let mixed = with(doc.clone(), key, value);
        assert!(!output.plain.is_valid(&mixed), "{key} accepted in {mixed}");
    }

    // Failures are a task error, not output: the JSON form task-host prints
    // (`{"error": {...}}`, or the object inside it) is not a valid output,
    // so nothing that checks a result against the schema can take a failure
    // for one. That form is what `$defs/failure` describes.
    let invalid_input = prepare_text(&config, &json!({"posts": [{}]}).to_string())
        .await
        .expect_err("invalid input");
    let invalid_config = prepare_text(&json!({"account_id": ACCOUNT}).to_string(), "{}")
        .await
        .expect_err("no credentials");
    let api = run(json!({"deletes": [{"id": 999}]}))
        .await
        .expect_err("the fake has no policy 999");
    fake.push_fault(Fault::Reset);
    let transport = run(json!({"deletes": [{"id": 2401}]}))
        .await
        .expect_err("the connection is reset");
    let denied = host()
        .run_task(
            &TaskOptions::default(),
            &config,
            r#"{"deletes": [{"id": 2401}]}"#,
        )
        .await
        .expect("run-task runs")
        .expect_err("127.0.0.1 is not allowed by default");
    let failures = [invalid_input, invalid_config, api, transport, denied];
    let kinds: Vec<&str> = failures.iter().map(error_kind).collect();
    assert_eq!(
        kinds,
        [
            "invalid_input",
            "invalid_config",
            "api",
            "transport",
            "denied"
        ]
    );
    let failure_schema = schemas.compile("failure");
    for failure in &failures {
        let error = error_to_json(failure);
        for doc in [error.clone(), json!({ "error": error })] {
            assert!(
                !output.plain.is_valid(&doc),
                "a failure passes as output: {doc}"
            );
        }
        assert_valid(
            &failure_schema.strict,
            &json!({ "error": error }),
            error_kind(failure),
        );
        assert!(
            !failure_schema.plain.is_valid(&error),
            "the bare error: {error}"
        );
    }
    for doc in [&sent, &preview] {
        assert!(
            !failure_schema.plain.is_valid(doc),
            "output as a failure: {doc}"
        );
    }
    fake.shutdown().await;
}

// ---------------------------------------------------------------------------
// 3. Invalid parameters: the schema refuses what it can express

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

/// The base config with one key set.
fn config_with(key: &str, value: Value) -> Value {
    with(base_config(), key, value)
}

fn legacy_config(email: Value, key: Value) -> Value {
    json!({"api_email": email, "api_key": key, "account_id": ACCOUNT})
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
                legacy_config(json!("ops@example.com"), json!("k3y")),
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
            json!({"api_key": "k3y", "account_id": ACCOUNT}),
            "/api_email",
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
            legacy_config(json!("ops@example.com"), json!("k3y\r")),
            "/api_key",
        ),
        invalid_config(
            "api_key has no space",
            legacy_config(json!("ops@example.com"), json!("k3y k3y")),
            "/api_key",
        ),
        invalid_config(
            "api_email has no control character",
            legacy_config(json!("ops@exa\tmple.com"), json!("k3y")),
            "/api_email",
        ),
        invalid_config(
            "api_email has no trailing white space",
            legacy_config(json!("ops@example.com "), json!("k3y")),
            "/api_email",
        ),
        invalid_config(
            "api_email is not empty",
            legacy_config(json!(""), json!("k3y")),
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

/// The documents `prepare` gets for a case: the case's own, and a valid one
/// for the other.
fn documents(document: &str, value: &Value) -> (String, String) {
    match document {
        "config" => (value.to_string(), "{}".to_string()),
        _ => (base_config().to_string(), value.to_string()),
    }
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
            legacy_config(json!("ops@example.com"), json!("k3y")),
        ),
        (
            "config",
            "an email with inner spaces",
            legacy_config(json!("Ops Team <ops@example.com>"), json!("k3y")),
        ),
        (
            "config",
            "a token with inner non-breaking space",
            config_with("api_token", json!("tok\u{a0}en")),
        ),
        (
            "config",
            "a one-character token",
            config_with("api_token", json!("t")),
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

/// Why a dry run's body is not what Cloudflare's published schema accepts,
/// if it is not. An integer id (the older API's) is the one thing the
/// component sends although the current schema refuses it, and only with a
/// warning at that id; anything else the schema refuses is listed.
fn unpublished_body(preview: &Value) -> Vec<String> {
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
            let integer_id = at.ends_with("/id") && body.pointer(&at).is_some_and(Value::is_u64);
            if integer_id && warned.contains(&at.as_str()) {
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
    let errors = published_schema::errors(&validator, &preview["request"]["body"]);
    assert!(
        !errors.is_empty() && errors.iter().all(|e| e.contains("/deletes/0/id")),
        "{errors:?}"
    );
    // The same body with the id as a UUID string passes.
    let uuid_body = json!({"deletes": [{"id": UUID}], "patches": [], "puts": [], "posts": []});
    assert_eq!(
        published_schema::errors(&validator, &uuid_body),
        Vec::<String>::new()
    );
    // Warnings only: the body above is refused by the schema for its id alone.
    assert_eq!(unpublished_body(&preview), Vec::<String>::new());
}

#[tokio::test]
async fn unknown_is_refused_though_the_published_enum_lists_it() {
    // The schema's enum still has UNKNOWN; only its description says the
    // API refuses it in a create or update.
    let validator = published_schema::batch_request();
    let body = json!({"deletes": [], "patches": [], "puts": [], "posts": [with(post(), "pattern_type", json!("UNKNOWN"))]});
    assert_eq!(
        published_schema::errors(&validator, &body),
        Vec::<String>::new()
    );
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

// ---------------------------------------------------------------------------
// 4. Every field of the contract is described

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
fn property<'a>(root: &'a Value, node: &'a Value, name: &str) -> Option<&'a Value> {
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

mod any_dry_run {
    //! Whatever the input, a dry run either refuses it before anything is
    //! sent, or shows a body that Cloudflare's published schema accepts
    //! (integer ids aside, which are sent with a warning).

    use super::*;
    use proptest::prelude::*;
    use proptest::sample::select;

    /// A value for `key`: right about half the time, a near miss otherwise.
    fn value_for(key: &'static str) -> BoxedStrategy<Value> {
        let values: Vec<Value> = match key {
            "id" => vec![
                json!(UUID),
                json!(UUID.to_uppercase()),
                json!("0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10"),
                json!(2401),
                json!(0),
                json!("2401"),
                json!(null),
            ],
            "pattern_type" => vec![
                json!("EMAIL"),
                json!("DOMAIN"),
                json!("IP"),
                json!("UNKNOWN"),
                json!("email"),
                json!(3),
            ],
            "pattern" => vec![
                json!("alerts@example.com"),
                json!("example.com"),
                json!("8.8.8.0/24"),
                json!("2606:4700::/32"),
                json!("10.0.0.0/8"),
                json!("::ffff:192.168.0.1"),
                json!(".*@example\\.com"),
                json!("(unclosed"),
                json!(""),
                json!("é".repeat(1024)),
                json!("a".repeat(1025)),
            ],
            "comments" => vec![
                json!(null),
                json!("a note"),
                json!("ü".repeat(1024)),
                json!("c".repeat(1025)),
                json!(5),
            ],
            _ => vec![json!(true), json!(false), json!("yes"), json!(null)],
        };
        select(values).boxed()
    }

    const FIELDS: [&str; 12] = [
        "id",
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

    /// An item of one of the four lists: a full policy with some fields
    /// changed, removed or added.
    fn item() -> BoxedStrategy<Value> {
        let changes = proptest::collection::vec(
            (select(FIELDS.to_vec()), any::<bool>()).prop_flat_map(|(key, remove)| {
                value_for(key).prop_map(move |value| (key, remove, value))
            }),
            0..4,
        );
        (any::<bool>(), changes)
            .prop_map(|(with_id, changes)| {
                let mut item = if with_id { put(json!(UUID)) } else { post() };
                for (key, remove, value) in changes {
                    if remove {
                        item.as_object_mut().unwrap().remove(key);
                    } else {
                        item[key] = value;
                    }
                }
                item
            })
            .boxed()
    }

    fn input() -> impl Strategy<Value = Value> {
        let list = || proptest::collection::vec(item(), 0..3);
        (list(), list(), list(), list()).prop_map(|(deletes, patches, puts, posts)| {
            let deletes: Vec<Value> = deletes
                .into_iter()
                .map(|d| json!({"id": d.get("id").cloned().unwrap_or(json!(UUID))}))
                .collect();
            json!({"deletes": deletes, "patches": patches, "puts": puts, "posts": posts})
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 300,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn a_dry_run_refuses_or_shows_a_published_body(input in input()) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let outcome =
                runtime.block_on(prepare_text(&base_config().to_string(), &input.to_string()));
            if let Ok(preview) = outcome {
                let preview: Value = serde_json::from_str(&preview).unwrap();
                let problems = unpublished_body(&preview);
                prop_assert!(problems.is_empty(), "{input}\n{problems:#?}");
            }
        }
    }
}
