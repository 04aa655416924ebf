use crate::api::outcome::{FailureKind, RawResponse, TransportFault, Verification};
use crate::api::transport::AttemptLimits;
use crate::params::problems::Document;
use crate::run::documents::{preview_json, success_json};
use crate::run::prepare::{prepare, Prepared, TaskError};
use crate::run::scripted::{status, Scripted};
use crate::run::send::{execute, execute_again, EarlierAttempt};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-SECRET-77aa01";

const ID: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
const OK: &str = r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[{"id":"f174e90a-fafe-4643-bbbc-4a0ed4fc8415"}]}}"#;

fn prepared(extra_config: &str) -> Prepared {
    let config = format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"{extra_config}}}"#);
    prepare(&config, &format!(r#"{{"deletes":[{{"id":"{ID}"}}]}}"#)).unwrap()
}

#[test]
fn invalid_config_and_input_are_reported_together() {
    let err = prepare(
        r#"{"api_token":"t0ken-4f2a9c","max_retries":-1}"#,
        r#"{"posts":[{}],"x":1}"#,
    )
    .unwrap_err();
    let TaskError::InvalidConfig(problems) = err else {
        panic!("{err:?}")
    };
    let seen: Vec<(Document, &str)> = problems
        .iter()
        .map(|p| (p.document, p.pointer.as_str()))
        .collect();
    assert_eq!(seen[0], (Document::Config, "/max_retries"));
    assert!(seen.contains(&(Document::Input, "/x")));
    assert!(seen.contains(&(Document::Input, "/posts/0/pattern")));
}

#[test]
fn input_errors_alone_are_invalid_input() {
    let err = prepare(
        &format!(r#"{{"api_token":"{TOKEN}"}}"#),
        r#"{"deletes":[{"id":0}]}"#,
    )
    .unwrap_err();
    let TaskError::InvalidInput(problems) = err else {
        panic!("{err:?}")
    };
    let pointers: Vec<&str> = problems.iter().map(|p| p.pointer.as_str()).collect();
    // No account id anywhere is an input problem too.
    assert_eq!(pointers, ["/deletes/0/id", "/account_id"]);
}

#[test]
fn malformed_json_is_reported_per_document() {
    let err = prepare("{", "[").unwrap_err();
    let TaskError::InvalidConfig(problems) = err else {
        panic!("{err:?}")
    };
    assert_eq!(problems.len(), 2);
    assert_eq!(
        (problems[0].document, problems[0].pointer.as_str()),
        (Document::Config, "")
    );
    assert_eq!(
        (problems[1].document, problems[1].pointer.as_str()),
        (Document::Input, "")
    );
}

#[test]
fn input_account_id_wins_over_config() {
    let other = "ffffffffffffffffffffffffffffffff";
    let p = prepare(
        &format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#),
        &format!(r#"{{"account_id":"{other}","deletes":[{{"id":1}}]}}"#),
    )
    .unwrap();
    assert!(p.request.unwrap().url.contains(other));
}

#[test]
fn empty_batch_is_skipped_without_sending() {
    let p = prepare(
        &format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#),
        "{}",
    )
    .unwrap();
    assert!(p.request.is_none());
    let mut t = Scripted::new(vec![]);
    let done = execute(&p, &mut t).unwrap();
    assert!(t.sent.is_empty());
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"success": true, "skipped": true, "status": null, "attempts": 0, "api_calls": 0, "result": null,
            "messages": [], "errors": [], "warnings": [], "counts": {"deletes": 0, "patches": 0, "puts": 0, "posts": 0},
            "verification": null, "sync": null})
    );
    let preview: serde_json::Value = serde_json::from_str(&preview_json(&p)).unwrap();
    assert_eq!(preview["skipped"], true);
    assert_eq!(preview["request"], serde_json::Value::Null);
}

#[test]
fn success_output() {
    let p = prepared("");
    let mut t = Scripted::new(vec![status(200, None, OK)]);
    let done = execute(&p, &mut t).unwrap();
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"success": true, "skipped": false, "status": 200, "attempts": 1,
            "api_calls": 1, "result": {"deletes": [{"id": ID}]}, "messages": [], "errors": [], "warnings": [],
            "counts": {"deletes": 1, "patches": 0, "puts": 0, "posts": 0}, "verification": null, "sync": null})
    );
}

#[test]
fn errors_that_a_success_carries_are_kept() {
    let p = prepared("");
    let answer = r#"{"success":true,"errors":[{"code":10090,"message":"allow_policies batch is in beta","source":{"pointer":"/posts"}}],"messages":[{"code":1,"message":"ok"}],"result":{"deletes":[]}}"#;
    let mut t = Scripted::new(vec![status(200, None, answer)]);
    let done = execute(&p, &mut t).unwrap();
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!(
        out["errors"],
        serde_json::json!([{"code": 10090, "message": "allow_policies batch is in beta", "source": {"pointer": "/posts"}}])
    );
    assert_eq!(
        out["messages"],
        serde_json::json!([{"code": 1, "message": "ok"}])
    );
}

#[test]
fn rate_limit_waits_retry_after_then_succeeds() {
    let p = prepared("");
    let mut t = Scripted::new(vec![status(429, Some("1"), ""), status(200, None, OK)]);
    let done = execute(&p, &mut t).unwrap();
    assert_eq!(done.attempts, 2);
    assert_eq!(t.slept, [1000]);
}

#[test]
fn retry_after_as_http_date_is_honoured() {
    let p = prepared(r#","verify_after_failure":false"#);
    // unix_ms is 1_700_000_000_000 + now; the date below is 3 s past that at the first answer.
    let date = "Tue, 14 Nov 2023 22:13:24 GMT"; // 1_700_000_004 s
    let mut t = Scripted::new(vec![status(503, Some(date), ""), status(200, None, OK)]);
    // A 503 may have applied: never re-sent, even with Retry-After.
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!((f.attempts, t.sent.len()), (1, 1));
    assert_eq!(
        f.retry_after_ms,
        Some(1_700_000_004_000 - 1_700_000_001_010)
    );
    let mut t = Scripted::new(vec![status(429, Some(date), ""), status(200, None, OK)]);
    execute(&p, &mut t).unwrap();
    assert_eq!(t.slept, [1_700_000_004_000 - 1_700_000_001_010]);
}

#[test]
fn server_errors_are_never_resent_unverified() {
    for code in [500, 502, 503, 504] {
        let p = prepared(r#","verify_after_failure":false"#);
        let mut t = Scripted::new(vec![status(code, None, "<html>oops</html>")]);
        let f = execute(&p, &mut t).unwrap_err();
        assert_eq!(
            (f.kind, f.retryable, f.may_have_applied, f.attempts),
            (FailureKind::Api, true, true, 1)
        );
        assert_eq!(f.verification, Verification::SwitchedOff);
        assert_eq!(t.sent.len(), 1);
        assert!(t.slept.is_empty());
    }
}

#[test]
fn faults_after_sending_are_never_resent_unverified() {
    let p = prepared(r#","verify_after_failure":false"#);
    let mut t = Scripted::new(vec![Err(TransportFault::AfterSend("reset".into()))]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.attempts),
        (FailureKind::Transport, true, true, 1)
    );
    assert_eq!(t.sent.len(), 1);
    assert_eq!(f.first_sent_unix_ms, Some(1_700_000_001_000));
}

#[test]
fn faults_before_sending_back_off_up_to_max_retries() {
    let p = prepared("");
    let refused = || Err(TransportFault::BeforeSend("connection refused".into()));
    let mut t = Scripted::new(vec![refused(), refused(), refused()]);
    let f = execute(&p, &mut t).unwrap_err();
    // Three tries, none of which left: nothing was sent, and the result
    // says so in the count as in the message.
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.attempts),
        (FailureKind::Transport, true, false, 0)
    );
    assert_eq!(t.sent.len(), 3);
    assert!(f.message.contains("nothing was sent"), "{}", f.message);
    assert_eq!(t.slept, [500, 1000]);
    assert_eq!(f.first_sent_unix_ms, None);

    let p = prepared(r#","max_retries":0"#);
    let mut t = Scripted::new(vec![refused()]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!((f.attempts, t.sent.len()), (0, 1));
}

#[test]
fn attempts_count_the_requests_that_left() {
    let p = prepared("");
    let refused = || Err(TransportFault::BeforeSend("connection refused".into()));
    let mut t = Scripted::new(vec![status(429, None, ""), refused(), refused()]);
    let f = execute(&p, &mut t).unwrap_err();
    // The 429 left; the two refusals did not. Tries, not requests, stop
    // at max_retries and set the backoff.
    assert_eq!((f.attempts, t.sent.len()), (1, 3));
    assert_eq!(t.slept, [500, 1000]);
}

#[test]
fn terminal_failures_are_not_retried() {
    let p = prepared("");
    let mut t = Scripted::new(vec![status(
        400,
        None,
        r#"{"success":false,"errors":[{"code":1001,"message":"bad"}],"result":null}"#,
    )]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!((f.retryable, f.attempts, f.status), (false, 1, Some(400)));
    let mut t = Scripted::new(vec![Err(TransportFault::Denied)]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.attempts),
        (FailureKind::Denied, false, false, 0)
    );
    assert_eq!(t.sent.len(), 1);
    // The destination is named, without the path that holds the account.
    assert!(
        f.message
            .starts_with("the host refused to connect to https://api.cloudflare.com;"),
        "{}",
        f.message
    );
    assert!(!f.message.contains(ACCOUNT), "{}", f.message);
}

#[test]
fn a_wait_past_the_deadline_is_not_taken() {
    let p = prepared(r#","timeout_ms":5000"#);
    let mut t = Scripted::new(vec![status(429, Some("60"), "")]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.attempts, f.retry_after_ms, f.retryable),
        (1, Some(60_000), true)
    );
    assert!(t.slept.is_empty());
    assert!(f.message.contains("not retried"), "{}", f.message);

    // Backoff is held to the deadline too.
    let p = prepared(r#","timeout_ms":1200"#);
    let refused = || Err(TransportFault::BeforeSend("connection refused".into()));
    let mut t = Scripted::new(vec![refused(), refused(), refused()]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(t.slept, [500]);
    assert_eq!((f.attempts, f.retry_after_ms), (0, Some(1000)));
    assert_eq!(t.sent.len(), 2);
}

#[test]
fn timeouts_come_from_the_remaining_deadline() {
    let p =
        prepared(r#","timeout_ms":3000,"connect_timeout_ms":2000,"verify_after_failure":false"#);
    let mut t = Scripted::new(vec![status(429, Some("2"), ""), status(200, None, OK)]);
    t.latency_ms = 100;
    execute(&p, &mut t).unwrap();
    let deadline = 1_000 + 3_000;
    assert_eq!(
        t.sent[0],
        AttemptLimits {
            connect_timeout_ms: 2000,
            first_byte_timeout_ms: 3000,
            between_bytes_timeout_ms: 3000,
            deadline_ms: deadline,
            max_response_bytes: 8_388_608
        }
    );
    // 100 ms on the first attempt and 2 s of waiting leave 900 ms.
    assert_eq!(
        t.sent[1],
        AttemptLimits {
            connect_timeout_ms: 900,
            first_byte_timeout_ms: 900,
            between_bytes_timeout_ms: 900,
            deadline_ms: deadline,
            max_response_bytes: 8_388_608
        }
    );
}

#[test]
fn verification_keeps_a_quarter_of_what_remains_at_most_ten_seconds() {
    let p = prepared(r#","timeout_ms":3000,"connect_timeout_ms":2000"#);
    let mut t = Scripted::new(vec![status(429, Some("2"), ""), status(200, None, OK)]);
    t.latency_ms = 100;
    execute(&p, &mut t).unwrap();
    // 3000 ms remain: 750 kept back. Then 900 remain: 225 kept back.
    assert_eq!(
        (t.sent[0].first_byte_timeout_ms, t.sent[0].deadline_ms),
        (2250, 1_000 + 2_250)
    );
    assert_eq!(
        (t.sent[1].first_byte_timeout_ms, t.sent[1].deadline_ms),
        (675, 4_000 - 225)
    );
    assert_eq!(t.sent[1].connect_timeout_ms, 675);

    let p = prepared(r#","timeout_ms":600000"#);
    let mut t = Scripted::new(vec![status(200, None, OK)]);
    execute(&p, &mut t).unwrap();
    assert_eq!(t.sent[0].first_byte_timeout_ms, 590_000);
}

#[test]
fn preview_shows_the_request_redacted_with_warnings() {
    let p = prepare(
        &format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#),
        &format!(r#"{{"patches":[{{"id":"{ID}"}}]}}"#),
    )
    .unwrap();
    let text = preview_json(&p);
    assert!(!text.contains(TOKEN));
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["skipped"], false);
    assert_eq!(v["request"]["method"], "POST");
    assert_eq!(v["request"]["headers"]["Authorization"], "[redacted]");
    assert_eq!(
        v["request"]["body"]["patches"],
        serde_json::json!([{"id": ID}])
    );
    assert_eq!(v["warnings"][0]["pointer"], "/patches/0");
    assert_eq!(v["warnings"][0]["document"], "input");
    assert_eq!(v["counts"]["patches"], 1);
}

#[test]
fn a_wait_ending_exactly_at_the_deadline_is_not_taken() {
    // deadline = 1000 + 1010 = 2010; after the send now = 1010; 1010 + 1000 = 2010.
    let p = prepared(r#","timeout_ms":1010"#);
    let mut t = Scripted::new(vec![status(429, Some("1"), ""), status(200, None, OK)]);
    let f = execute(&p, &mut t).unwrap_err();
    assert!(t.slept.is_empty());
    assert_eq!(f.attempts, 1);
}

#[test]
fn max_response_bytes_reaches_the_attempt() {
    let p = prepared(r#","max_response_bytes":1024"#);
    let mut t = Scripted::new(vec![status(200, None, OK)]);
    execute(&p, &mut t).unwrap();
    assert_eq!(t.sent[0].max_response_bytes, 1024);
}

#[test]
fn debug_of_prepared_never_shows_the_token() {
    let p = prepared("");
    let text = format!("{:?}", p.config);
    assert!(!text.contains(TOKEN), "{text}");
}

/// A list answer holding `policies`, all on one page.
fn listing(policies: serde_json::Value) -> Result<RawResponse, TransportFault> {
    let n = policies.as_array().map_or(0, Vec::len);
    status(
        200,
        None,
        &serde_json::json!({"success": true, "errors": [], "messages": [], "result": policies,
            "result_info": {"page": 1, "per_page": 100, "count": n, "total_count": n}})
        .to_string(),
    )
}

fn stored_policy(id: &str) -> serde_json::Value {
    serde_json::json!({"id": id, "pattern": "a@x.example", "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true, "comments": null, "created_at": "2020-01-01T00:00:00Z"})
}

fn methods(t: &Scripted) -> Vec<&'static str> {
    t.requests.iter().map(|(m, _)| m.as_str()).collect()
}

#[test]
fn a_batch_found_applied_after_a_502_succeeds_with_what_was_read() {
    let p = prepared("");
    let mut t = Scripted::new(vec![
        status(502, None, "<html>bad gateway</html>"),
        listing(serde_json::json!([])),
    ]);
    let done = execute(&p, &mut t).unwrap();
    assert_eq!(methods(&t), ["POST", "GET"]);
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!(out["success"], true);
    assert_eq!(out["status"], serde_json::Value::Null);
    assert_eq!(out["attempts"], 1);
    assert_eq!(out["result"]["deletes"], serde_json::json!([{"id": ID}]));
    assert_eq!(out["verification"]["outcome"], "applied");
    assert_eq!(out["verification"]["after"]["kind"], "api");
    assert_eq!(out["verification"]["after"]["status"], 502);
    assert_eq!(out["verification"]["reads"], 1);
}

#[test]
fn a_batch_without_posts_found_not_applied_is_sent_again() {
    let p = prepared("");
    let there = || listing(serde_json::json!([stored_policy(ID)]));
    let mut t = Scripted::new(vec![
        Err(TransportFault::AfterSend("connection reset".into())),
        there(),
        there(),
        status(200, None, OK),
    ]);
    let done = execute(&p, &mut t).unwrap();
    assert_eq!(methods(&t), ["POST", "GET", "GET", "POST"]);
    assert_eq!(done.attempts, 2);
    assert!(done.verified.is_none());
    // The pause between the reads, then the backoff before the re-send.
    assert_eq!(t.slept, [crate::run::read_back::PAUSE_MS, 500]);
}

#[test]
fn not_applied_with_no_retry_left_is_retryable_and_cannot_have_applied() {
    let p = prepared(r#","max_retries":0"#);
    let there = || listing(serde_json::json!([stored_policy(ID)]));
    let mut t = Scripted::new(vec![status(503, None, ""), there(), there()]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.retryable, f.may_have_applied, f.verification, f.attempts),
        (true, false, Verification::NotVisible, 1)
    );
    assert!(f.message.contains("was not applied"), "{}", f.message);
    assert_eq!(f.first_sent_unix_ms, None);
}

#[test]
fn a_batch_with_posts_found_not_applied_is_left_to_the_engine() {
    let p = prepare(
        &format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#),
        r#"{"posts":[{"pattern":"a@x.example","pattern_type":"EMAIL","is_regex":false,"is_exempt_recipient":false,"is_trusted_sender":true,"is_acceptable_sender":false,"verify_sender":true}]}"#,
    )
    .unwrap();
    // The look-alike policy is old: it is not the batch's.
    let old = || listing(serde_json::json!([stored_policy(ID)]));
    let mut t = Scripted::new(vec![status(504, None, ""), old(), old()]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(methods(&t), ["POST", "GET", "GET"]);
    assert_eq!(
        (f.retryable, f.may_have_applied, f.verification),
        (true, true, Verification::NotVisible)
    );
    assert!(f.message.contains("not sent again"), "{}", f.message);
    // The moment to run it again from: the clock read before it was sent.
    assert_eq!(f.first_sent_unix_ms, Some(1_700_000_001_000));
    assert!(
        f.message
            .contains("run it as a task run again from 2023-11-14T22:13:21.000Z"),
        "{}",
        f.message
    );
}

#[test]
fn a_read_back_that_fails_leaves_the_failure_as_it_was() {
    let p = prepared("");
    let mut t = Scripted::new(vec![status(500, None, ""), status(429, Some("300"), "")]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (
            f.status,
            f.retryable,
            f.may_have_applied,
            f.verification,
            f.attempts
        ),
        (Some(500), true, true, Verification::Incomplete, 1)
    );
    assert!(f.message.contains("could not be checked"), "{}", f.message);
    assert_eq!(methods(&t), ["POST", "GET"]);
}

#[test]
fn a_timeout_leaves_the_reserve_to_read_back() {
    let p = prepared(r#","timeout_ms":8000"#);
    // The attempt runs until its own deadline, 6 s in; 2 s remain to read.
    let mut t = Scripted::new(vec![
        Err(TransportFault::AfterSend("timeout_ms passed".into())),
        listing(serde_json::json!([])),
    ]);
    t.latency_ms = 0;
    let done = execute(&p, &mut t).unwrap();
    assert_eq!(t.sent[0].deadline_ms, 1_000 + 6_000);
    assert_eq!(t.sent[1].deadline_ms, 1_000 + 8_000);
    assert!(done.verified.is_some());
}

#[test]
fn after_a_resend_in_doubt_a_refusal_is_read_back_before_it_is_believed() {
    // The first request times out, two reads show nothing, the batch is
    // sent again, and that one is refused because the first landed after
    // all (its delete is gone). Reading back finds the batch applied.
    let p = prepared("");
    let there = || listing(serde_json::json!([stored_policy(ID)]));
    let not_found = status(
        404,
        None,
        r#"{"success":false,"errors":[{"code":1004,"message":"policy not found"}],"result":null}"#,
    );
    let mut t = Scripted::new(vec![
        Err(TransportFault::AfterSend("timeout_ms passed".into())),
        there(),
        there(),
        not_found,
        listing(serde_json::json!([])),
    ]);
    let done = execute(&p, &mut t).unwrap();
    assert_eq!(methods(&t), ["POST", "GET", "GET", "POST", "GET"]);
    assert_eq!(done.attempts, 2);
    let verified = done.verified.expect("found applied");
    assert_eq!(verified.after.status, Some(404));
}

#[test]
fn a_refusal_after_a_resend_in_doubt_that_reads_back_as_nothing_stays_terminal() {
    // Sent again in doubt, then refused; the account shows nothing of the
    // batch: the refusal is the answer, and it is not repeated.
    let p = prepared(r#","max_retries":5"#);
    let there = || listing(serde_json::json!([stored_policy(ID)]));
    let refused = status(
        400,
        None,
        r#"{"success":false,"errors":[{"code":1002,"message":"bad"}],"result":null}"#,
    );
    let mut t = Scripted::new(vec![
        status(502, None, ""),
        there(),
        there(),
        refused,
        there(),
        there(),
    ]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(methods(&t), ["POST", "GET", "GET", "POST", "GET", "GET"]);
    assert_eq!(
        (f.status, f.retryable, f.may_have_applied, f.verification),
        (Some(400), false, false, Verification::NotVisible)
    );
}

/// A task run again: the earlier attempt started at 2023-11-14T22:00:00Z,
/// a little before the scripted clock's now.
const EARLIER: EarlierAttempt = EarlierAttempt {
    first_started_unix_ms: 1_699_999_200_000,
};

const POST_INPUT: &str = r#"{"posts":[{"pattern":"a@x.example","pattern_type":"EMAIL","is_regex":false,"is_exempt_recipient":false,"is_trusted_sender":true,"is_acceptable_sender":false,"verify_sender":true}]}"#;

fn prepared_posts(extra_config: &str) -> Prepared {
    let config = format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"{extra_config}}}"#);
    prepare(&config, POST_INPUT).unwrap()
}

fn policy_created_at(id: &str, created_at: &str) -> serde_json::Value {
    let mut policy = stored_policy(id);
    policy["created_at"] = created_at.into();
    policy
}

#[test]
fn a_task_run_again_whose_batch_shows_succeeds_without_sending() {
    let p = prepared("");
    let mut t = Scripted::new(vec![listing(serde_json::json!([]))]);
    let done = execute_again(&p, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["GET"]);
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!(
        (&out["attempts"], &out["skipped"], &out["status"]),
        (
            &serde_json::json!(0),
            &serde_json::json!(false),
            &serde_json::Value::Null
        )
    );
    assert_eq!(out["result"]["deletes"], serde_json::json!([{"id": ID}]));
    assert_eq!(out["verification"]["outcome"], "applied");
    assert_eq!(out["verification"]["after"]["kind"], "earlier_attempt");
    let message = out["verification"]["after"]["message"].as_str().unwrap();
    assert!(message.contains("2023-11-14T22:00:00.000Z"), "{message}");
}

#[test]
fn a_task_run_again_whose_batch_shows_nothing_is_sent_after_two_reads() {
    let p = prepared("");
    let there = || listing(serde_json::json!([stored_policy(ID)]));
    let mut t = Scripted::new(vec![there(), there(), status(200, None, OK)]);
    let done = execute_again(&p, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["GET", "GET", "POST"]);
    assert_eq!(t.slept, [crate::run::read_back::PAUSE_MS]);
    let out: serde_json::Value =
        serde_json::from_str(&success_json(&p, &done, t.requests.len() as u32)).unwrap();
    assert_eq!((&out["status"], &out["attempts"]), (&200.into(), &1.into()));
    assert_eq!(out["verification"]["outcome"], "not_visible");
    assert_eq!(out["verification"]["reads"], 2);
    // The reads and the pause came out of the task's own timeout: the send
    // at 3,020 ms keeps back a quarter of what is left of the 31,000.
    assert_eq!(t.sent[2].deadline_ms, 31_000 - (31_000 - 3_020) / 4);
}

#[test]
fn posts_of_an_earlier_attempt_are_told_by_when_it_started() {
    // Created after the earlier attempt started: its own.
    let p = prepared_posts("");
    let since = policy_created_at(ID, "2023-11-14T22:00:05Z");
    let mut t = Scripted::new(vec![listing(serde_json::json!([since]))]);
    let done = execute_again(&p, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["GET"]);
    let applied = done.rechecked.unwrap().applied.unwrap();
    assert_eq!(applied.posts.len(), 1);
    assert!(applied.posts[0].get().contains(ID), "{applied:?}");

    // Only long before: someone else's, and the batch is sent.
    let old = || listing(serde_json::json!([stored_policy(ID)]));
    let mut t = Scripted::new(vec![old(), old(), status(200, None, OK)]);
    execute_again(&p, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["GET", "GET", "POST"]);

    // Just before it started: no one can say, and nothing is sent.
    let close = policy_created_at(ID, "2023-11-14T21:59:30Z");
    let mut t = Scripted::new(vec![listing(serde_json::json!([close]))]);
    let f = execute_again(&p, EARLIER, &mut t).unwrap_err();
    assert_eq!(methods(&t), ["GET"]);
    assert_eq!(
        (
            f.kind,
            f.retryable,
            f.may_have_applied,
            f.verification,
            f.attempts
        ),
        (
            FailureKind::Unconfirmed,
            false,
            true,
            Verification::Undetermined,
            0
        )
    );
    assert!(
        f.message.contains("the batch was not sent"),
        "{}",
        f.message
    );
}

#[test]
fn a_check_that_is_rate_limited_sends_nothing_and_may_be_retried() {
    let p = prepared_posts("");
    let mut t = Scripted::new(vec![status(429, Some("120"), "")]);
    let f = execute_again(&p, EARLIER, &mut t).unwrap_err();
    assert_eq!(methods(&t), ["GET"]);
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.verification),
        (
            FailureKind::Unconfirmed,
            true,
            true,
            Verification::Incomplete
        )
    );
    assert_eq!(
        (f.status, f.retry_after_ms, f.attempts),
        (Some(429), Some(120_000), 0)
    );
}

#[test]
fn batches_a_repeat_cannot_harm_are_sent_again_without_reading() {
    let config = format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#);
    let patch = prepare(
        &config,
        &format!(r#"{{"patches":[{{"id":"{ID}","comments":"x"}}]}}"#),
    )
    .unwrap();
    let mut t = Scripted::new(vec![status(200, None, OK)]);
    let done = execute_again(&patch, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["POST"]);
    assert!(done.rechecked.is_none());

    // Verification switched off: no read either.
    let unchecked = prepared_posts(r#","verify_after_failure":false"#);
    let mut t = Scripted::new(vec![status(200, None, OK)]);
    execute_again(&unchecked, EARLIER, &mut t).unwrap();
    assert_eq!(methods(&t), ["POST"]);
}

/// The preview is written by hand around the body; it must read as the
/// serialised view of the same request, member for member and in order,
/// for a batch read in one pass and for one the full reader read (it warns).
#[test]
fn the_preview_is_the_requests_view_with_its_warnings_and_counts() {
    let config = format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"}}"#);
    for input in [
        format!(
            r#"{{"deletes":[{{"id":"{ID}"}}],"patches":[{{"id":"{}","comments":"a \"quoted\" é"}}]}}"#,
            ID.replace('f', "e")
        ),
        r#"{"deletes":[{"id":7}]}"#.to_string(),
    ] {
        let p = prepare(&config, &input).unwrap();
        let request = p.request.as_ref().unwrap();
        let expected = serde_json::to_string(&serde_json::json!({
            "dry_run": true,
            "skipped": false,
            "request": request.view(),
            "warnings": p.warnings,
            "counts": p.counts,
            "plan": null,
        }))
        .unwrap();
        // serde_json's map keeps keys sorted; compare values, then order.
        let written = preview_json(&p);
        let parsed: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            parsed,
            serde_json::from_str::<serde_json::Value>(&expected).unwrap()
        );
        let order: Vec<usize> = [
            "dry_run", "skipped", "request", "method", "url", "headers", "body", "warnings",
            "counts", "plan",
        ]
        .iter()
        .map(|k| written.find(&format!("\"{k}\":")).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{written}");
        assert!(
            written.contains(&request.body),
            "the body is copied in as it is"
        );
    }
}

/// `api_calls` counts what left, batches and reads alike: a 502 read back
/// is two calls; refused connections are none.
#[test]
fn the_counted_transport_counts_requests_that_left() {
    use crate::api::transport::Counted;
    let p = prepared("");
    let mut t = Scripted::new(vec![
        status(502, None, "<html>bad gateway</html>"),
        listing(serde_json::json!([])),
    ]);
    let counted = &mut Counted::new(&mut t);
    let done = execute(&p, counted).unwrap();
    assert_eq!((done.attempts, counted.calls()), (1, 2));

    let refused = || Err(TransportFault::BeforeSend("connection refused".into()));
    let mut t = Scripted::new(vec![refused(), refused(), refused()]);
    let counted = &mut Counted::new(&mut t);
    let f = execute(&p, counted).unwrap_err();
    assert_eq!((f.attempts, counted.calls()), (0, 0));
}

/// A request the host's rate gate held back sent nothing: it is waited for
/// as the host asks and tried again, without counting as an attempt.
#[test]
fn a_request_held_back_by_the_host_is_retried_after_its_wait() {
    use crate::api::outcome::{held_back_wait, HELD_BACK_PREFIX};
    assert_eq!(
        held_back_wait(&format!("{HELD_BACK_PREFIX}1500 ms")),
        Some(1500)
    );
    assert_eq!(held_back_wait("rate gate: something else"), None);
    let p = prepared("");
    let held = || Err(TransportFault::HeldBack { wait_ms: 700 });
    let mut t = Scripted::new(vec![held(), status(200, None, OK)]);
    let done = execute(&p, &mut t).unwrap();
    assert_eq!((done.attempts, t.sent.len()), (1, 2));
    assert_eq!(t.slept, [700]);

    // A wait past the deadline is not taken: the failure says so.
    let p = prepared(r#","timeout_ms":1000"#);
    let mut t = Scripted::new(vec![Err(TransportFault::HeldBack { wait_ms: 60_000 })]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (
            f.kind,
            f.retryable,
            f.may_have_applied,
            f.attempts,
            f.status
        ),
        (FailureKind::Transport, true, false, 0, None)
    );
    assert_eq!(f.retry_after_ms, Some(60_000));
    assert!(f.message.contains("held the request back"), "{}", f.message);
}
