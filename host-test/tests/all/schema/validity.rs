//! The schemas `describe` returns are valid draft 2020-12 schemas, and the
//! examples and the documents the component really returns are valid
//! against them.

use super::descriptions::property;
use super::*;
use crate::support::documents::Checked;
use crate::support::fake_api;
use crate::support::read_example;
use host_test::fake_api::Fault;
use host_test::{error_kind, error_to_json};

// The schemas themselves

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

// Examples and real outputs are valid

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
    // Sync mode's examples (their preview reads an account: examples.rs
    // runs them against the fake API).
    let sync = read_example("sync.json");
    assert_valid(&input.strict, &sync, "examples/sync.json");
    let start_sync = read_example("conductor/start-workflow-sync.json")["input"].clone();
    assert_valid(
        &input.strict,
        &start_sync,
        "examples/conductor/start-workflow-sync.json input",
    );

    // The SimWorkflow request is what a dry run prints, so as the request
    // of a dry-run document it is valid output.
    let preview = json!({
        "dry_run": true, "skipped": false, "request": http, "warnings": [],
        "counts": {"deletes": 1, "patches": 1, "puts": 1, "posts": 3}, "plan": null
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

    let fake = fake_api(None).await;
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
                .checked()
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

    // Verified: the batch applied, its answer lost to a proxy's 502, and
    // the account read back.
    fake.push_fault(Fault::AfterApplying(Box::new(Fault::status(502, vec![]))));
    let verified = parse(
        run(json!({"posts": [with(post(), "pattern", json!("verified@example.com"))]}))
            .await
            .unwrap_or_else(|e| panic!("{}", error_to_json(&e))),
    );
    assert_eq!(verified["verification"]["outcome"], "applied", "{verified}");
    assert_eq!(
        verified["verification"]["after"]["status"], 502,
        "{verified}"
    );
    assert_valid(
        &output.strict,
        &verified,
        "a result verified by reading back",
    );

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
    // Reset before any answer, with nothing read back: the failure stands.
    fake.push_fault(Fault::Reset);
    let unverified = with(
        serde_json::from_str(&config).unwrap(),
        "verify_after_failure",
        json!(false),
    );
    let transport = host()
        .run_task(
            &allowed,
            &unverified.to_string(),
            r#"{"deletes": [{"id": 2401}]}"#,
        )
        .await
        .checked()
        .expect("run-task runs")
        .expect_err("the connection is reset");
    let denied = host()
        .run_task(
            &TaskOptions::default(),
            &config,
            r#"{"deletes": [{"id": 2401}]}"#,
        )
        .await
        .checked()
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

/// What `export-policies` returns is a sync input: valid against the input
/// schema, `left_out` included, so a form can open it for editing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exported_document_is_valid_against_the_input_schema() {
    let schemas = Schemas::load().await;
    let input = schemas.compile("input");
    let fake = fake_api(Some(TOKEN)).await;
    fake.seed(
        ACCOUNT,
        [
            post(),
            with(
                with(post(), "pattern", json!("legacy")),
                "pattern_type",
                json!("UNKNOWN"),
            ),
            with(
                with(post(), "pattern", json!("10.0.0.0/8")),
                "pattern_type",
                json!("IP"),
            ),
        ],
    )
    .unwrap();
    let config = json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": fake.base_url()});
    let options = TaskOptions::default().with_allowed_host(
        host_test::AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap(),
    );
    let text = host()
        .export_policies(&options, &config.to_string(), "{}")
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the export failed: {}", error_to_json(&e)));
    let exported: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(exported["sync"]["policies"].as_array().unwrap().len(), 1);
    assert_eq!(exported["sync"]["left_out"].as_array().unwrap().len(), 2);
    assert_valid(&input.strict, &exported, "an exported document");
}
