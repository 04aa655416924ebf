//! Redaction never makes an output invalid: real outputs of the component,
//! redacted as the component and the hosts redact them with credentials
//! planted to collide with them (numbers the documents hold, words the
//! schemas name, in any case), are still valid against `describe`'s output
//! schema (a failure against `$defs/failure`), formats asserted.

use super::*;
use crate::support::{fake_api, read_example};
use allow_policies_batch::config::{is_number_byte, MIN_SECRET_CHARS};
use allow_policies_batch::run::redact::Secrets;
use host_test::error_to_json;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};

/// One real document and the schema it is valid against.
struct Real {
    what: &'static str,
    text: String,
    failure: bool,
}

/// Results, previews and failures, as the component returns them for the
/// config's own token (which none of them holds).
async fn real_documents() -> Vec<Real> {
    let fake = fake_api(None).await;
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
    let mut docs = Vec::new();
    let mut result = |what, outcome: Result<String, TaskError>| match outcome {
        Ok(text) => docs.push(Real {
            what,
            text,
            failure: false,
        }),
        Err(e) => docs.push(Real {
            what,
            text: json!({ "error": error_to_json(&e) }).to_string(),
            failure: true,
        }),
    };
    let sent =
        run(json!({"posts": [post(), with(post(), "comments", json!("Retry after 1500 ms"))]}))
            .await;
    let created = serde_json::from_str::<Value>(sent.as_ref().unwrap()).unwrap();
    let id = created["result"]["posts"][0]["id"].clone();
    result("a result", sent);
    result(
        "a result with warnings",
        run(json!({"patches": [{"id": id, "is_sender": true}]})).await,
    );
    result("the skipped result", run(json!({})).await);
    result("an API error", run(json!({"deletes": [{"id": 999}]})).await);
    result(
        "invalid input",
        prepare_text(
            &config,
            &json!({"posts": [{"pattern_type": "EMAIL"}]}).to_string(),
        )
        .await,
    );
    result(
        "denied",
        host()
            .run_task(
                &TaskOptions::default(),
                &config,
                r#"{"deletes": [{"id": 2401}]}"#,
            )
            .await
            .expect("run-task runs"),
    );
    result(
        "a dry run",
        prepare_text(&config, &read_example("batch.json").to_string()).await,
    );
    fake.shutdown().await;
    docs
}

/// What a credential is planted from: the numbers the documents hold, the
/// words of the schemas (member names, `enum` words, descriptions) and the
/// request URL's fixed path, and letters and digits at random.
fn pieces(docs: &[Real]) -> Vec<String> {
    let mut pieces = std::collections::BTreeSet::new();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    for doc in docs {
        let value: Value = serde_json::from_str(&doc.text).unwrap();
        numbers(&value, &mut pieces);
    }
    let describe = allow_policies_batch::schema::DESCRIBE;
    for text in [describe, "/email-security/settings/allow_policies/batch"] {
        pieces.extend(
            text.split(|c: char| !word(c))
                .filter(|w| w.len() >= 3)
                .map(str::to_string),
        );
    }
    pieces.into_iter().collect()
}

fn numbers(value: &Value, into: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Number(n) => {
            into.insert(n.to_string());
        }
        Value::Array(items) => items.iter().for_each(|v| numbers(v, into)),
        Value::Object(map) => map.values().for_each(|v| numbers(v, into)),
        _ => {}
    }
}

/// A credential the config accepts, made of two to four pieces joined as
/// a token might be, each in any case.
fn planted(pieces: Vec<String>) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => proptest::sample::select(pieces),
        1 => "[A-Za-z0-9]{1,12}",
    ];
    let cased = (piece, 0..3u8).prop_map(|(p, case)| match case {
        0 => p,
        1 => p.to_ascii_uppercase(),
        _ => p.to_ascii_lowercase(),
    });
    (
        proptest::collection::vec(cased, 2..=4),
        proptest::sample::select(vec!["", "-", "_"]),
    )
        .prop_map(|(parts, joint)| parts.join(joint))
        .prop_filter("a credential the config accepts", |s| {
            s.chars().count() >= MIN_SECRET_CHARS && !s.bytes().all(is_number_byte)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_redacted_output_is_still_valid() {
    let schemas = Schemas::load().await;
    let output = schemas.compile("output");
    let failure = schemas.compile("failure");
    let docs = real_documents().await;
    for doc in &docs {
        let validator = if doc.failure { &failure } else { &output };
        let value: Value = serde_json::from_str(&doc.text).unwrap();
        assert_valid(&validator.strict, &value, doc.what);
    }
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let result = runner.run(&planted(pieces(&docs)), |secret| {
        // The component's own check: a credential it refuses is never used
        // for redaction.
        let secrets = Secrets::new([secret.as_str()]);
        for doc in &docs {
            let redacted = secrets.redact_json(doc.text.clone());
            let value: Value = serde_json::from_str(&redacted).map_err(|e| {
                TestCaseError::fail(format!("{}: not JSON ({e}): {redacted}", doc.what))
            })?;
            let validator = if doc.failure { &failure } else { &output };
            let errors = crate::support::schema_errors(&validator.strict, &value);
            prop_assert!(
                errors.is_empty(),
                "{} with {:?} planted is invalid:\n  {}\n{}",
                doc.what,
                secret,
                errors.join("\n  "),
                redacted
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// Numbers and upper-cased quotes through the real component: a token
/// quoted back upper-cased is redacted whole, and an API answer's numbers
/// stay numbers although the token holds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_component_redacts_without_regard_to_case_and_keeps_numbers() {
    let token = "sekretToken-1500-ABCDEF";
    let fake = fake_api(None).await;
    let config =
        json!({"api_token": token, "base_url": fake.base_url(), "account_id": ACCOUNT}).to_string();
    let allowed = TaskOptions::default()
        .with_allowed_host(format!("127.0.0.1:{}", fake.addr().port()).parse().unwrap());
    let quoted = with(
        post(),
        "comments",
        json!(format!("{} 1500", token.to_ascii_uppercase())),
    );
    let text = host()
        .run_task(&allowed, &config, &json!({"posts": [quoted]}).to_string())
        .await
        .expect("run-task runs")
        .expect("the batch succeeds");
    fake.shutdown().await;
    assert!(!text.to_ascii_lowercase().contains("sekrettoken"), "{text}");
    let value: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        value["result"]["posts"][0]["comments"], "[redacted] 1500",
        "{value}"
    );
    let schemas = Schemas::load().await;
    assert_valid(&schemas.compile("output").strict, &value, "the result");
}
