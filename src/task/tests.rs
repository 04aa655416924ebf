use super::*;
use crate::outcome::FailureKind;
use std::collections::VecDeque;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-SECRET-77aa01";

/// A transport with a virtual clock: sends take `latency_ms`, sleeps move
/// the clock, and answers come from a script.
struct Scripted {
    now_ms: u64,
    latency_ms: u64,
    answers: VecDeque<Result<RawResponse, TransportFault>>,
    sent: Vec<AttemptLimits>,
    slept: Vec<u64>,
}

impl Scripted {
    fn new(answers: Vec<Result<RawResponse, TransportFault>>) -> Self {
        Scripted {
            now_ms: 1_000,
            latency_ms: 10,
            answers: answers.into(),
            sent: Vec::new(),
            slept: Vec::new(),
        }
    }
}

impl Transport for Scripted {
    fn monotonic_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn unix_ms(&mut self) -> u64 {
        1_700_000_000_000 + self.now_ms
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.slept.push(ms);
        self.now_ms += ms;
    }
    fn entropy(&mut self) -> u64 {
        0
    }
    fn send(
        &mut self,
        _: &BatchRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        self.sent.push(*limits);
        self.now_ms += self.latency_ms;
        self.answers
            .pop_front()
            .expect("the script ran out of answers")
    }
}

fn status(code: u16, retry_after: Option<&str>, body: &str) -> Result<RawResponse, TransportFault> {
    Ok(RawResponse {
        status: code,
        retry_after: retry_after.map(String::from),
        body: body.as_bytes().to_vec(),
        truncated: false,
        body_error: None,
    })
}

const ID: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
const OK: &str = r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[{"id":"f174e90a-fafe-4643-bbbc-4a0ed4fc8415"}]}}"#;

fn prepared(extra_config: &str) -> Prepared {
    let config = format!(r#"{{"api_token":"{TOKEN}","account_id":"{ACCOUNT}"{extra_config}}}"#);
    prepare(&config, &format!(r#"{{"deletes":[{{"id":"{ID}"}}]}}"#)).unwrap()
}

#[test]
fn invalid_config_and_input_are_reported_together() {
    let err = prepare(
        r#"{"api_token":"t","max_retries":-1}"#,
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
    let out: serde_json::Value = serde_json::from_str(&success_json(&p, &done)).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"success": true, "skipped": true, "status": null, "attempts": 0, "result": null,
            "messages": [], "errors": [], "warnings": [], "counts": {"deletes": 0, "patches": 0, "puts": 0, "posts": 0}})
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
    let out: serde_json::Value = serde_json::from_str(&success_json(&p, &done)).unwrap();
    assert_eq!(
        out,
        serde_json::json!({"success": true, "skipped": false, "status": 200, "attempts": 1,
            "result": {"deletes": [{"id": ID}]}, "messages": [], "errors": [], "warnings": [],
            "counts": {"deletes": 1, "patches": 0, "puts": 0, "posts": 0}})
    );
}

#[test]
fn errors_that_a_success_carries_are_kept() {
    let p = prepared("");
    let answer = r#"{"success":true,"errors":[{"code":10090,"message":"allow_policies batch is in beta","source":{"pointer":"/posts"}}],"messages":[{"code":1,"message":"ok"}],"result":{"deletes":[]}}"#;
    let mut t = Scripted::new(vec![status(200, None, answer)]);
    let done = execute(&p, &mut t).unwrap();
    let out: serde_json::Value = serde_json::from_str(&success_json(&p, &done)).unwrap();
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
    let p = prepared("");
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
fn server_errors_are_never_resent() {
    for code in [500, 502, 503, 504] {
        let p = prepared("");
        let mut t = Scripted::new(vec![status(code, None, "<html>oops</html>")]);
        let f = execute(&p, &mut t).unwrap_err();
        assert_eq!(
            (f.kind, f.retryable, f.may_have_applied, f.attempts),
            (FailureKind::Api, true, true, 1)
        );
        assert_eq!(t.sent.len(), 1);
        assert!(t.slept.is_empty());
    }
}

#[test]
fn faults_after_sending_are_never_resent() {
    let p = prepared("");
    let mut t = Scripted::new(vec![Err(TransportFault::AfterSend("reset".into()))]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.attempts),
        (FailureKind::Transport, true, true, 1)
    );
}

#[test]
fn faults_before_sending_back_off_up_to_max_retries() {
    let p = prepared("");
    let refused = || Err(TransportFault::BeforeSend("connection refused".into()));
    let mut t = Scripted::new(vec![refused(), refused(), refused()]);
    let f = execute(&p, &mut t).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.attempts),
        (FailureKind::Transport, true, false, 3)
    );
    assert_eq!(t.slept, [500, 1000]);

    let p = prepared(r#","max_retries":0"#);
    let mut t = Scripted::new(vec![refused()]);
    assert_eq!(execute(&p, &mut t).unwrap_err().attempts, 1);
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
    assert_eq!((f.attempts, f.retry_after_ms), (2, Some(1000)));
}

#[test]
fn timeouts_come_from_the_remaining_deadline() {
    let p = prepared(r#","timeout_ms":3000,"connect_timeout_ms":2000"#);
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
