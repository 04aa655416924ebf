use super::*;
use crate::api::outcome::{RawResponse, TransportFault};
use crate::api::policy_list::parse_page;
use crate::params::problems::Document;
use crate::run::scripted::{status, Scripted};
use crate::run::sync_plan::plan;
use serde_json::value::RawValue;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-EXPORT-SECRET-9c2d";

fn uuid(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012x}")
}

/// A stored policy as the API lists it: an address, trusted and verified.
fn stored(n: usize, pattern: &str) -> Value {
    json!({"id": uuid(n), "pattern": pattern, "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true, "comments": null, "created_at": "2024-01-01T00:00:00Z",
        "last_modified": "2024-01-01T00:00:00Z"})
}

fn with(mut policy: Value, key: &str, value: Value) -> Value {
    policy[key] = value;
    policy
}

fn snapshot(policies: &[Value]) -> Snapshot {
    let result = RawValue::from_string(Value::from(policies.to_vec()).to_string()).unwrap();
    Snapshot::new(parse_page(Some(&result), None).unwrap().policies)
}

fn document(policies: &[Value]) -> Value {
    let account = snapshot(policies);
    serde_json::from_str(&export(ACCOUNT, &account).to_json()).unwrap()
}

/// The document read back as a sync input: the validator's verdict, and
/// the plan a sync of it would make against the same account.
fn round_trip(policies: &[Value]) -> crate::run::sync_plan::Plan {
    let doc = document(policies);
    let mut report = Report::default();
    let input = parse_input(&doc, &mut report);
    assert_eq!(report.errors, [], "{doc}");
    let spec = input.and_then(|i| i.sync).expect("a sync input");
    assert!(!spec.delete_unlisted);
    plan(&spec, &snapshot(policies)).expect("a plan")
}

fn listing(policies: &[Value]) -> Result<RawResponse, TransportFault> {
    let n = policies.len();
    status(
        200,
        None,
        &json!({"success": true, "errors": [], "messages": [], "result": policies,
            "result_info": {"page": 1, "per_page": 100, "count": n, "total_count": n}})
        .to_string(),
    )
}

fn config() -> String {
    json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": "http://127.0.0.1:9/client/v4"})
        .to_string()
}

#[test]
fn each_policy_is_an_entry_with_its_id_and_every_field_in_order() {
    let commented = with(stored(2, "b@example.com"), "comments", json!("vendor"));
    let doc = document(&[stored(1, "a@example.com"), commented]);
    assert_eq!(doc["account_id"], ACCOUNT);
    assert_eq!(doc["sync"]["delete_unlisted"], false);
    assert_eq!(doc["sync"]["left_out"], json!([]));
    let entries = doc["sync"]["policies"].as_array().unwrap();
    assert_eq!(
        entries[0],
        json!({"id": uuid(1), "pattern": "a@example.com", "pattern_type": "EMAIL", "is_regex": false,
            "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
            "verify_sender": true, "comments": null})
    );
    assert_eq!(entries[1]["comments"], "vendor");
    // Read as text, the id comes first and the fields follow as a request
    // sends them, so the document reads as a person would write it.
    let text = export(ACCOUNT, &snapshot(&[stored(1, "a@example.com")])).to_json();
    let at = |key: &str| text.find(&format!("\"{key}\"")).unwrap();
    let order: Vec<usize> = [
        "id",
        "pattern",
        "pattern_type",
        "is_regex",
        "verify_sender",
        "comments",
    ]
    .iter()
    .map(|k| at(k))
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");
}

#[test]
fn an_integer_id_of_the_older_api_is_kept_as_an_integer() {
    let doc = document(&[with(stored(0, "a@example.com"), "id", json!(2401))]);
    assert_eq!(doc["sync"]["policies"][0]["id"], 2401);
}

#[test]
fn a_sync_of_the_exported_document_plans_nothing() {
    let regex = with(
        with(stored(3, ".*@example\\.net"), "is_regex", json!(true)),
        "comments",
        json!("whole domain"),
    );
    let ip = with(
        with(stored(4, "8.8.8.0/24"), "pattern_type", json!("IP")),
        "comments",
        json!(""),
    );
    let domain = with(stored(5, "Example.ORG"), "pattern_type", json!("DOMAIN"));
    let plan = round_trip(&[stored(1, "a@example.com"), regex, ip, domain]);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!((plan.unchanged, plan.kept_unlisted), (4, 0));
}

#[test]
fn what_a_sync_input_cannot_carry_is_left_out_with_the_reason() {
    let unknown = with(stored(2, "legacy-thing"), "pattern_type", json!("UNKNOWN"));
    let private_ip = with(stored(3, "10.0.0.0/8"), "pattern_type", json!("IP"));
    let not_an_address = stored(4, "not an address");
    let mut no_flag = stored(5, "c@example.com");
    no_flag.as_object_mut().unwrap().remove("verify_sender");
    let duplicate = stored(6, "A@EXAMPLE.COM");
    let all = [
        stored(1, "a@example.com"),
        unknown,
        private_ip,
        not_an_address,
        no_flag,
        duplicate,
    ];
    let doc = document(&all);
    let entries = doc["sync"]["policies"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{doc}");
    assert_eq!(entries[0]["id"], uuid(1));

    let left_out = doc["sync"]["left_out"].as_array().unwrap();
    let reasons: Vec<(&Value, &Value)> =
        left_out.iter().map(|l| (&l["id"], &l["reason"])).collect();
    assert_eq!(
        reasons,
        [
            (&json!(uuid(2)), &json!("unknown_pattern_type")),
            (&json!(uuid(3)), &json!("refused")),
            (&json!(uuid(4)), &json!("refused")),
            (&json!(uuid(5)), &json!("refused")),
            (&json!(uuid(6)), &json!("duplicate")),
        ]
    );
    assert_eq!(left_out[0]["pattern"], "legacy-thing");
    assert_eq!(left_out[0]["pattern_type"], "UNKNOWN");
    let message = |i: usize| left_out[i]["message"].as_str().unwrap().to_string();
    assert!(message(0).contains("UNKNOWN"), "{}", message(0));
    // The validator's own words, with the pointer cut to the entry.
    assert!(
        message(1).starts_with("a sync input refuses it: /pattern: "),
        "{}",
        message(1)
    );
    assert!(message(1).contains("private"), "{}", message(1));
    assert!(
        message(2).contains("/pattern: pattern_type is EMAIL"),
        "{}",
        message(2)
    );
    assert!(
        message(3).contains("/verify_sender: required field is missing"),
        "{}",
        message(3)
    );
    assert!(message(4).contains(&uuid(1)), "{}", message(4));
    for i in 0..left_out.len() {
        assert!(
            message(i).ends_with("delete_unlisted is false"),
            "{}",
            message(i)
        );
    }

    // The document is still a valid input, and a sync of it keeps the
    // left-out policies and changes nothing.
    let plan = round_trip(&all);
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!((plan.unchanged, plan.kept_unlisted), (1, 5));
}

#[test]
fn an_empty_account_exports_an_empty_list() {
    let doc = document(&[]);
    assert_eq!(
        doc,
        json!({"account_id": ACCOUNT, "sync": {"policies": [], "delete_unlisted": false, "left_out": []}})
    );
    assert!(round_trip(&[]).is_empty());
}

#[test]
fn the_export_reads_every_page_with_gets_only() {
    let first: Vec<Value> = (0..100)
        .map(|i| stored(i, &format!("u{i}@example.com")))
        .collect();
    let second = vec![stored(100, "last@example.com")];
    let page = |policies: &[Value]| {
        status(
            200,
            None,
            &json!({"success": true, "errors": [], "messages": [], "result": policies,
                "result_info": {"page": 1, "per_page": 100, "count": policies.len(), "total_count": 101}})
            .to_string(),
        )
    };
    let mut t = Scripted::new(vec![page(&first), page(&second)]);
    let text = export_policies(&config(), "{}", &mut t).unwrap();
    let methods: Vec<&str> = t.requests.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["GET", "GET"]);
    assert!(t.requests[1].1.contains("page=2"), "{}", t.requests[1].1);
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["sync"]["policies"].as_array().unwrap().len(), 101);
    // The read is held to the config's timeout_ms, as a sync's is.
    assert_eq!(t.sent[0].deadline_ms, 1_000 + 30_000);
}

#[test]
fn the_input_s_account_is_the_one_read_and_written() {
    let other = "fedcba9876543210fedcba9876543210";
    let mut t = Scripted::new(vec![listing(&[])]);
    let input = json!({ "account_id": other }).to_string();
    let doc: Value =
        serde_json::from_str(&export_policies(&config(), &input, &mut t).unwrap()).unwrap();
    assert_eq!(doc["account_id"], other);
    assert!(t.requests[0].1.contains(other), "{}", t.requests[0].1);
}

#[test]
fn parameter_problems_are_reported_before_anything_is_read() {
    let mut t = Scripted::new(vec![]);
    let err = export_policies(&config(), r#"{"posts":[]}"#, &mut t).unwrap_err();
    let TaskError::InvalidInput(problems) = err else {
        panic!("expected invalid input, got {err:?}");
    };
    assert_eq!(problems[0].document, Document::Input);
    assert_eq!(problems[0].pointer, "/posts");
    let err = export_policies("{", "{}", &mut t).unwrap_err();
    assert!(matches!(err, TaskError::InvalidConfig(_)), "{err:?}");
    assert!(t.requests.is_empty());
}

#[test]
fn a_failed_read_is_the_task_s_failure_and_never_may_have_applied() {
    let mut t = Scripted::new(vec![status(
        403,
        None,
        r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}"#,
    )]);
    let err = export_policies(&config(), "{}", &mut t).unwrap_err();
    let TaskError::Call(failure) = err else {
        panic!("expected a call failure, got {err:?}");
    };
    assert_eq!(failure.status, Some(403));
    assert!(!failure.may_have_applied);
    assert!(
        failure.message.contains("reading the account's policies"),
        "{}",
        failure.message
    );
    assert!(!failure.message.contains(TOKEN));
}

#[test]
fn a_left_out_policy_is_written_with_the_members_the_validator_takes() {
    use crate::params::validator::LEFT_OUT_KEYS;
    let unknown = with(stored(1, "legacy"), "pattern_type", json!("UNKNOWN"));
    let doc = document(&[unknown]);
    let written: Vec<&str> = doc["sync"]["left_out"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = LEFT_OUT_KEYS.to_vec();
    expected.sort_unstable();
    assert_eq!(written, expected);

    // And an unknown member, there or in the item, is refused as anywhere.
    let mut edited = doc.clone();
    edited["sync"]["left_out"][0]["note"] = json!("x");
    let mut report = Report::default();
    assert!(parse_input(&edited, &mut report).is_none());
    assert_eq!(report.errors[0].pointer, "/sync/left_out/0/note");
}
