use super::*;
use crate::api::request::Method;
use crate::run::prepare::prepare;
use crate::run::scripted::{status, Scripted};
use serde_json::{json, Value};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn policy(pattern: &str) -> Value {
    json!({"pattern": pattern, "pattern_type": "EMAIL", "is_regex": false, "is_exempt_recipient": false,
        "is_trusted_sender": true, "is_acceptable_sender": false, "verify_sender": true})
}

fn stored(n: usize, pattern: &str) -> Value {
    let mut p = policy(pattern);
    p["id"] = json!(format!("00000000-0000-4000-8000-{n:012x}"));
    p["comments"] = Value::Null;
    p
}

fn listing(
    policies: Vec<Value>,
) -> Result<crate::api::outcome::RawResponse, crate::api::outcome::TransportFault> {
    let n = policies.len();
    status(
        200,
        None,
        &json!({"success": true, "errors": [], "messages": [], "result": policies,
            "result_info": {"page": 1, "per_page": 100, "count": n, "total_count": n}})
        .to_string(),
    )
}

fn ok() -> Result<crate::api::outcome::RawResponse, crate::api::outcome::TransportFault> {
    status(
        200,
        None,
        r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[],"patches":[],"puts":[],"posts":[]}}"#,
    )
}

fn prepared(sync: Value) -> Prepared {
    let config = json!({"api_token": "tok-SECRET-77aa01", "account_id": ACCOUNT});
    prepare(&config.to_string(), &json!({"sync": sync}).to_string()).unwrap()
}

fn methods(t: &Scripted) -> Vec<&'static str> {
    t.requests.iter().map(|(m, _)| m.as_str()).collect()
}

#[test]
fn the_preview_reads_and_shows_the_plan_without_writing() {
    let mut b = policy("b@x.example");
    b["verify_sender"] = json!(false);
    let p = prepared(
        json!({"policies": [policy("a@x.example"), b], "delete_unlisted": true, "allow_deleting_most": true}),
    );
    let mut t = Scripted::new(vec![listing(vec![
        stored(1, "b@x.example"),
        stored(2, "c@x.example"),
        stored(3, "d@x.example"),
        stored(4, "e@x.example"),
    ])]);
    let spec = p.sync.as_ref().unwrap();
    let doc: Value = serde_json::from_str(&preview(&p, spec, &mut t).unwrap()).unwrap();
    assert_eq!(methods(&t), ["GET"]);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["request"], Value::Null);
    assert_eq!(
        doc["counts"],
        json!({"deletes": 3, "patches": 1, "puts": 0, "posts": 1})
    );
    let plan = &doc["plan"];
    assert_eq!(plan["reads"], 1);
    assert_eq!(plan["create"][0]["pattern"], "a@x.example");
    assert_eq!(
        plan["change"][0]["fields"],
        json!([{"field": "verify_sender", "old": true, "new": false}])
    );
    assert_eq!(plan["delete"].as_array().unwrap().len(), 3);
    assert_eq!(plan["batches"][0]["method"], "POST");
    assert_eq!(plan["batches"][0]["headers"]["Authorization"], "[redacted]");
    assert_eq!(
        plan["batches"][0]["body"]["patches"],
        json!([{"id": "00000000-0000-4000-8000-000000000001", "verify_sender": false}])
    );
}

#[test]
fn nothing_to_do_sends_no_write() {
    let p = prepared(json!({"policies": [policy("a@x.example")]}));
    let mut t = Scripted::new(vec![listing(vec![stored(1, "a@x.example")])]);
    let doc: Value =
        serde_json::from_str(&run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap()).unwrap();
    assert_eq!(methods(&t), ["GET"]);
    assert_eq!(doc["skipped"], true);
    assert_eq!(doc["attempts"], 0);
    assert_eq!(doc["sync"]["unchanged"], 1);
    assert_eq!(doc["sync"]["batches"], json!([]));
}

#[test]
fn a_plan_past_the_limits_is_an_input_problem_and_nothing_is_written() {
    let p = prepared(json!({"policies": [], "delete_unlisted": true}));
    let mut t = Scripted::new(vec![listing(vec![stored(1, "a@x.example")])]);
    let err = run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap_err();
    let TaskError::InvalidInput(problems) = err else {
        panic!("{err:?}")
    };
    assert_eq!(problems[0].pointer, "/sync/allow_deleting_most");
    assert_eq!(methods(&t), ["GET"]);
}

#[test]
fn a_read_that_fails_is_the_task_s_failure() {
    let p = prepared(json!({"policies": [policy("a@x.example")]}));
    let mut t = Scripted::new(vec![status(
        403,
        None,
        r#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"result":null}"#,
    )]);
    let err = run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap_err();
    let TaskError::Call(f) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (f.status, f.retryable, f.may_have_applied),
        (Some(403), false, false)
    );
    assert!(f.message.contains("Authentication error"), "{}", f.message);
}

#[test]
fn batches_go_in_order_and_a_failure_says_what_was_applied() {
    let wanted: Vec<Value> = (0..1500)
        .map(|i| policy(&format!("u{i}@x.example")))
        .collect();
    let p = prepared(json!({"policies": wanted}));
    let refused = status(
        400,
        None,
        r#"{"success":false,"errors":[{"code":1002,"message":"bad"}],"result":null}"#,
    );
    let mut t = Scripted::new(vec![listing(vec![]), ok(), refused]);
    let err = run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap_err();
    assert_eq!(methods(&t), ["GET", "POST", "POST"]);
    let TaskError::Call(f) = err else {
        panic!("{err:?}")
    };
    assert!(
        f.message
            .starts_with("batch 2 of 2 failed, after 1 applied"),
        "{}",
        f.message
    );

    let mut t = Scripted::new(vec![listing(vec![]), ok(), ok()]);
    let doc: Value =
        serde_json::from_str(&run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap()).unwrap();
    assert_eq!(doc["sync"]["created"], 1500);
    let batches = doc["sync"]["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0]["counts"]["posts"], 1000);
    assert_eq!(batches[1]["counts"]["posts"], 500);
    assert_eq!(doc["attempts"], 2);
    assert!(t
        .requests
        .iter()
        .filter(|(m, _)| *m == Method::Post)
        .all(|(_, url)| url.ends_with("/batch")));
}

#[test]
fn a_later_batch_is_not_started_without_time_for_it() {
    let wanted: Vec<Value> = (0..1500)
        .map(|i| policy(&format!("u{i}@x.example")))
        .collect();
    let config =
        json!({"api_token": "tok-SECRET-77aa01", "account_id": ACCOUNT, "timeout_ms": 3000});
    let p = prepare(
        &config.to_string(),
        &json!({"sync": {"policies": wanted}}).to_string(),
    )
    .unwrap();
    // The read and the first batch take 2 s of the 3.
    let mut t = Scripted::new(vec![listing(vec![]), ok()]);
    t.latency_ms = 1_000;
    let err = run(&p, p.sync.as_ref().unwrap(), &mut t).unwrap_err();
    assert_eq!(methods(&t), ["GET", "POST"]);
    let TaskError::Call(f) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (f.retryable, f.may_have_applied, f.attempts),
        (true, false, 0)
    );
    assert!(
        f.message.starts_with("batch 2 of 2 was not sent"),
        "{}",
        f.message
    );
}
