//! The real built component in the real wasmtime host: what it sends, what
//! it returns, and how it fails. Requests are answered either by an
//! interceptor in the host (to see exactly what left the component) or by a
//! real HTTP server on 127.0.0.1.

use crate::support::documents::Checked;
use crate::support::{assert_no_secret, host, post, unused_port, with_fields, ACCOUNT};
use host_test::{
    default_component_path, error_kind, error_to_json, AllowedHost, CannedResponse,
    CapturedRequest, ErrorCode, Intercepted, TaskError, TaskHost, TaskOptions,
};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "cf-TEST-TOKEN-do-not-print-4b1d";
const KEY: &str = "cf-LEGACY-KEY-do-not-print-9e7a";
const API: &str = "https://api.cloudflare.com/client/v4";
/// The credentials the tests configure; neither may come back.
const SECRETS: &[&str] = &[TOKEN, KEY];

fn config(extra: Value) -> String {
    with_fields(json!({"api_token": TOKEN, "account_id": ACCOUNT}), extra).to_string()
}

fn ok_envelope(result: Value) -> Value {
    json!({"success": true, "errors": [], "messages": [], "result": result})
}

/// An interceptor that records every request and answers from a script
/// (the last answer repeats).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<(Instant, CapturedRequest)>>>,
}

impl Recorder {
    fn options(&self, answers: Vec<Intercepted>) -> TaskOptions {
        let seen = self.seen.clone();
        let answers = Arc::new(Mutex::new(answers));
        TaskOptions::default().with_interceptor(move |request: CapturedRequest| {
            seen.lock().unwrap().push((Instant::now(), request));
            let mut answers = answers.lock().unwrap();
            if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0].clone()
            }
        })
    }

    fn requests(&self) -> Vec<CapturedRequest> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    fn times(&self) -> Vec<Instant> {
        self.seen.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
}

/// The output, or the contract's JSON form of the error. Every document
/// that leaves the host passes through here, and none may carry a
/// credential.
fn outcome(result: anyhow::Result<Result<String, TaskError>>) -> Result<Value, Value> {
    match result.expect("the host failed to run the component") {
        Ok(text) => {
            assert_no_secret(&text, SECRETS);
            Ok(serde_json::from_str(&text).expect("the output is JSON"))
        }
        Err(e) => {
            let v = error_to_json(&e);
            assert_eq!(v["kind"], error_kind(&e));
            assert_no_secret(&v.to_string(), SECRETS);
            assert_no_secret(&format!("{e:?}"), SECRETS);
            Err(v)
        }
    }
}

/// `(retryable, may_have_applied, attempts)` of an error document.
fn classification(err: &Value) -> (bool, bool, u64) {
    (
        err["retryable"].as_bool().expect("retryable is a boolean"),
        err["may_have_applied"]
            .as_bool()
            .expect("may_have_applied is a boolean"),
        err["attempts"].as_u64().expect("attempts is a number"),
    )
}

async fn run(opts: &TaskOptions, config: &str, input: &Value) -> Result<Value, Value> {
    outcome(
        host()
            .run_task(opts, config, &input.to_string())
            .await
            .checked(),
    )
}

#[tokio::test]
async fn sends_exactly_the_expected_request() {
    let rec = Recorder::default();
    let opts = rec.options(vec![
        CannedResponse::json(200, &ok_envelope(json!({}))).into()
    ]);
    let input = json!({
        "deletes": [{"id": 2401}],
        "patches": [{"id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "comments": null, "is_sender": false}],
        "posts": [post("alerts@example.com")]
    });
    run(
        &opts,
        &config(json!({"timeout_ms": 20000, "connect_timeout_ms": 3000})),
        &input,
    )
    .await
    .unwrap();

    let sent = rec.requests();
    assert_eq!(sent.len(), 1);
    let r = &sent[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.url,
        format!("{API}/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch")
    );
    let mut names: Vec<String> = r
        .headers
        .iter()
        .map(|(n, _)| n.to_ascii_lowercase())
        .collect();
    names.sort();
    names.retain(|n| n != "host");
    assert_eq!(
        names,
        [
            "accept",
            "authorization",
            "content-length",
            "content-type",
            "user-agent"
        ]
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some("allow-policies-batch/0.1.0"));
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        r.header("content-length"),
        Some(r.body.len().to_string().as_str())
    );
    assert_eq!(
        String::from_utf8(r.body.clone()).unwrap(),
        concat!(
            r#"{"deletes":[{"id":2401}],"#,
            r#""patches":[{"id":"f174e90a-fafe-4643-bbbc-4a0ed4fc8415","is_trusted_sender":false,"comments":null}],"#,
            r#""puts":[],"#,
            r#""posts":[{"pattern":"alerts@example.com","pattern_type":"EMAIL","is_regex":false,"is_exempt_recipient":false,"is_trusted_sender":true,"is_acceptable_sender":false,"verify_sender":true}]}"#
        )
    );
    // Timeouts are always set, from the config and the remaining deadline,
    // less the quarter (at most 10 s) kept for reading the account back.
    assert_eq!(r.connect_timeout, Some(Duration::from_millis(3000)));
    let first_byte = r.first_byte_timeout.expect("first-byte timeout set");
    assert!(
        first_byte <= Duration::from_millis(15000) && first_byte > Duration::from_millis(10000),
        "{first_byte:?}"
    );
    assert!(r.between_bytes_timeout.is_some());
}

#[tokio::test]
async fn legacy_key_headers() {
    let rec = Recorder::default();
    let opts = rec.options(vec![
        CannedResponse::json(200, &ok_envelope(json!({}))).into()
    ]);
    let cfg =
        json!({"api_email": "ops@example.com", "api_key": KEY, "account_id": ACCOUNT}).to_string();
    run(&opts, &cfg, &json!({"deletes": [{"id": 1}]}))
        .await
        .unwrap();
    let r = &rec.requests()[0];
    assert_eq!(r.header("x-auth-email"), Some("ops@example.com"));
    assert_eq!(r.header("x-auth-key"), Some(KEY));
    assert_eq!(r.header("authorization"), None);
}

#[tokio::test]
async fn success_output_carries_the_api_result_verbatim() {
    let gone = "5b2e8f14-3c6d-4a9e-8f01-7d3c2b1a0e9f";
    let result = json!({"deletes": [{"id": gone}], "patches": [], "puts": [],
        "posts": [{"id": "0b9c1f6e-8d35-4c1f-9a55-7a2d7f1f0e11", "pattern": "alerts@example.com", "created_at": "2026-11-27T10:00:00Z"}]});
    let mut envelope = ok_envelope(result.clone());
    envelope["messages"] = json!([{"code": 10001, "message": "beta endpoint"}]);
    // A success may still carry errors: they are the API's word, kept.
    envelope["errors"] = json!([{"code": 10002, "message": "is_spoof is deprecated", "source": {"pointer": "/posts/0"}}]);
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::json(200, &envelope).into()]);
    let input = json!({"deletes": [{"id": gone}], "posts": [post("alerts@example.com")], "patches": [{"id": "0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10"}]});
    let out = run(&opts, &config(json!({})), &input).await.unwrap();
    assert_eq!(
        out,
        json!({"success": true, "skipped": false, "status": 200, "attempts": 1, "api_calls": 1, "result": result,
            "messages": [{"code": 10001, "message": "beta endpoint"}],
            "errors": [{"code": 10002, "message": "is_spoof is deprecated", "source": {"pointer": "/posts/0"}}],
            "warnings": [{"document": "input", "pointer": "/patches/0", "message": "this patch changes nothing: give at least one field besides id"}],
            "counts": {"deletes": 1, "patches": 1, "puts": 0, "posts": 1}, "verification": null, "sync": null})
    );
}

#[tokio::test]
async fn empty_batch_sends_nothing() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(500).into()]);
    let out = run(&opts, &config(json!({})), &json!({"posts": []}))
        .await
        .unwrap();
    assert_eq!(
        (
            out["skipped"].clone(),
            out["status"].clone(),
            out["attempts"].clone()
        ),
        (json!(true), Value::Null, json!(0))
    );
    assert!(rec.requests().is_empty());
}

#[tokio::test]
async fn invalid_config_is_reported_with_pointers_and_nothing_is_sent() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(200).into()]);
    let cfg = json!({"api_token": format!("{TOKEN}\r\nX-Injected: 1"), "base_url": "http://api.cloudflare.com", "retries": 3}).to_string();
    let err = run(&opts, &cfg, &json!({"deletes": [{"id": 1}]}))
        .await
        .unwrap_err();
    assert_eq!(err["kind"], "invalid_config");
    assert_eq!(classification(&err), (false, false, 0));
    let pointers: Vec<&str> = err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(
        pointers,
        ["/retries", "/api_token", "/base_url", "/account_id"]
    );
    assert!(rec.requests().is_empty());
}

#[tokio::test]
async fn invalid_input_names_every_problem() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(200).into()]);
    let mut bad = post("alerts@example.com");
    bad["pattern_type"] = json!("EMAILS");
    let input = json!({"posts": [bad, post("not an address")], "deletes": [{"id": 5}, {"id": 5}]});
    let err = run(&opts, &config(json!({})), &input).await.unwrap_err();
    assert_eq!(err["kind"], "invalid_input");
    let errors: Vec<(String, String)> = err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["pointer"].as_str().unwrap().to_string(),
                e["document"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("/deletes/1/id", "input"),
        ("/posts/0/pattern_type", "input"),
        ("/posts/1/pattern", "input"),
    ];
    assert_eq!(
        errors,
        expected.map(|(p, d)| (p.to_string(), d.to_string()))
    );
    assert_eq!(
        err["errors"][1]["message"],
        "expected one of EMAIL, DOMAIN, IP, got \"EMAILS\""
    );
    assert!(rec.requests().is_empty());
}

/// Java reads `\N{...}` as a character name, so a count written that way
/// fails the whole batch at the API; the component refuses it first, and
/// still takes a real name that holds digits.
#[tokio::test]
async fn a_regex_count_written_as_a_character_name_is_refused_before_sending() {
    let rec = Recorder::default();
    let opts = rec.options(vec![
        CannedResponse::json(200, &ok_envelope(json!({}))).into()
    ]);
    let regex = |pattern: &str| with_fields(post(pattern), json!({"is_regex": true}));
    let input = json!({"posts": [
        regex("a\\N{2}@example\\.com"),
        regex("\\N{EGYPTIAN HIEROGLYPH A001}@example\\.com"),
        regex("b\\N{,2}@example\\.com"),
    ]});
    let err = run(&opts, &config(json!({})), &input).await.unwrap_err();
    assert_eq!(err["kind"], "invalid_input");
    let errors = err["errors"].as_array().unwrap();
    let pointers: Vec<&str> = errors
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/posts/0/pattern", "/posts/2/pattern"]);
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("\\N{2} at character 2 names no character"),
        "{message}"
    );
    assert!(rec.requests().is_empty());
}

#[tokio::test]
async fn a_destination_not_allowed_is_denied_and_never_reached() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(200).into()]);
    let err = run(
        &opts,
        &config(json!({"base_url": "https://api.example.net/client/v4"})),
        &json!({"deletes": [{"id": 1}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "denied");
    assert_eq!(classification(&err), (false, false, 0));
    assert!(
        rec.requests().is_empty(),
        "the interceptor saw a denied request"
    );
}

/// By default only `https://api.cloudflare.com` on port 443 is reachable:
/// another port of the API is refused before anything is sent, and the
/// message names the scheme, host and port.
#[tokio::test]
async fn by_default_the_api_is_reached_over_https_on_443_only() {
    let rec = Recorder::default();
    let ok = || -> Intercepted { CannedResponse::json(200, &ok_envelope(json!({}))).into() };
    let opts = rec.options(vec![ok()]);
    for base_url in [
        "https://api.cloudflare.com/client/v4",
        "https://API.Cloudflare.com:443/client/v4",
    ] {
        run(
            &opts,
            &config(json!({ "base_url": base_url })),
            &json!({"deletes": [{"id": 1}]}),
        )
        .await
        .unwrap_or_else(|e| panic!("{base_url}: {e}"));
    }
    assert_eq!(rec.requests().len(), 2);

    let rec = Recorder::default();
    let opts = rec.options(vec![ok()]);
    let err = run(
        &opts,
        &config(json!({"base_url": "https://api.cloudflare.com:8443/client/v4"})),
        &json!({"deletes": [{"id": 1}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "denied", "{err}");
    assert_eq!(classification(&err), (false, false, 0));
    let message = err["message"].as_str().unwrap();
    assert!(
        message.contains("refused to connect to https://api.cloudflare.com:8443;"),
        "{message}"
    );
    assert!(rec.requests().is_empty(), "a denied request was seen");
}

#[tokio::test]
async fn api_errors_are_terminal_and_keep_codes_and_pointers() {
    let rec = Recorder::default();
    let body = json!({"success": false, "messages": [], "result": null,
        "errors": [{"code": 1002, "message": "Invalid pattern", "source": {"pointer": "/posts/0/pattern"}}]});
    let opts = rec.options(vec![CannedResponse::json(400, &body).into()]);
    let err = run(
        &opts,
        &config(json!({})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        json!({"kind": "api", "message": "HTTP 400: Invalid pattern", "retryable": false, "may_have_applied": false,
            "status": 400, "retry_after_ms": null, "attempts": 1, "verification": "not_needed",
            "first_sent_unix_ms": null, "api_calls": 1,
            "errors": [{"code": 1002, "message": "Invalid pattern", "pointer": "/posts/0/pattern"}]})
    );
    assert_eq!(rec.requests().len(), 1);
}

#[tokio::test]
async fn an_unreadable_2xx_is_a_bad_response_that_may_have_applied() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(200)
        .with_body("<html>gateway</html>")
        .into()]);
    let err = run(
        &opts,
        &config(json!({})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "bad_response");
    assert_eq!(
        (
            err["retryable"].clone(),
            err["may_have_applied"].clone(),
            err["status"].clone()
        ),
        (json!(false), json!(true), json!(200))
    );

    // Larger than max_response_bytes: not read past the limit.
    let big = ok_envelope(json!({"posts": [{"comments": "x".repeat(4096)}]}));
    let opts = rec.options(vec![CannedResponse::json(200, &big).into()]);
    let err = run(
        &opts,
        &config(json!({"max_response_bytes": 1024})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "bad_response");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("max_response_bytes"));
}

#[tokio::test]
async fn rate_limit_is_retried_after_the_wait_it_asks_for() {
    let rec = Recorder::default();
    let opts = rec.options(vec![
        CannedResponse::new(429)
            .with_header("retry-after", "1")
            .into(),
        CannedResponse::json(200, &ok_envelope(json!({}))).into(),
    ]);
    let started = Instant::now();
    let out = run(
        &opts,
        &config(json!({})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap();
    assert_eq!(out["attempts"], 2);
    assert_eq!(out["status"], 200);
    let times = rec.times();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    assert!(
        gap >= Duration::from_millis(950),
        "re-sent after only {gap:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The same body both times.
    let sent = rec.requests();
    assert_eq!(sent[0].body, sent[1].body);
}

#[tokio::test]
async fn a_server_error_is_never_resent() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(500)
        .with_body("<html>oops</html>")
        .into()]);
    let err = run(
        &opts,
        &config(json!({"max_retries": 5})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "api");
    assert_eq!(classification(&err), (true, true, 1));
    // The account is read back (the interceptor answers the read with the
    // same 500), and the batch is not sent again.
    assert_eq!(methods(&rec), ["POST", "GET"]);
    assert_eq!(err["verification"], "incomplete");
}

fn methods(rec: &Recorder) -> Vec<String> {
    rec.requests().into_iter().map(|r| r.method).collect()
}

#[tokio::test]
async fn a_timeout_after_sending_may_have_applied_and_is_not_resent() {
    let rec = Recorder::default();
    let opts = rec.options(vec![Intercepted::Fail(ErrorCode::ConnectionReadTimeout)]);
    let err = run(
        &opts,
        &config(json!({})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "transport");
    assert_eq!(classification(&err), (true, true, 1));
    assert_eq!(methods(&rec), ["POST", "GET"]);
    assert_eq!(err["verification"], "incomplete");
}

#[tokio::test]
async fn the_deadline_holds_against_a_slow_server() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::json(200, &ok_envelope(json!({})))
        .with_delay(Duration::from_secs(5))
        .into()]);
    let started = Instant::now();
    let err = run(
        &opts,
        &config(json!({"timeout_ms": 400})),
        &json!({"posts": [post("a@example.com")]}),
    )
    .await
    .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err["kind"], "transport");
    assert_eq!(err["may_have_applied"], true);
    assert!(
        elapsed < Duration::from_secs(3),
        "returned after {elapsed:?}"
    );
    // The batch gave up at 300 ms, leaving 100 ms to read the account back,
    // which the same slow answer does not fit either.
    assert_eq!(methods(&rec), ["POST", "GET"]);
    assert_eq!(err["verification"], "incomplete");
}

#[tokio::test]
async fn connection_refused_is_retried_and_not_applied() {
    let port = unused_port();
    let opts =
        TaskOptions::default().with_allowed_host("127.0.0.1".parse::<AllowedHost>().unwrap());
    let cfg = config(
        json!({"base_url": format!("http://127.0.0.1:{port}"), "max_retries": 1, "timeout_ms": 5000}),
    );
    let err = run(&opts, &cfg, &json!({"deletes": [{"id": 1}]}))
        .await
        .unwrap_err();
    assert_eq!(err["kind"], "transport");
    // Two tries, neither of which left.
    assert_eq!(classification(&err), (true, false, 0));
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("connection refused"),
        "{}",
        err["message"]
    );
}

/// A one-shot HTTP/1.1 server on 127.0.0.1 that records the raw request and
/// answers with `response`.
async fn serve_once(response: &'static str) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length || n == 0 {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8(raw).unwrap()
    });
    (port, handle)
}

#[tokio::test]
async fn works_over_real_http_on_loopback() {
    let (port, server) = serve_once(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 79\r\nconnection: close\r\n\r\n{\"success\":true,\"errors\":[],\"messages\":[],\"result\":{\"deletes\":[{\"id\":424242}]}}",
    )
    .await;
    let opts =
        TaskOptions::default().with_allowed_host(format!("127.0.0.1:{port}").parse().unwrap());
    let out = run(
        &opts,
        &config(json!({"base_url": format!("http://127.0.0.1:{port}/client/v4")})),
        &json!({"deletes": [{"id": 424242}]}),
    )
    .await
    .unwrap();
    assert_eq!(out["result"], json!({"deletes": [{"id": 424242}]}));
    let raw = server.await.unwrap();
    assert!(raw.starts_with(&format!("POST /client/v4/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch HTTP/1.1\r\n")), "{raw}");
    assert!(raw.to_ascii_lowercase().contains(&format!(
        "authorization: bearer {}",
        TOKEN.to_ascii_lowercase()
    )));
    assert!(
        raw.ends_with(r#"{"deletes":[{"id":424242}],"patches":[],"puts":[],"posts":[]}"#),
        "{raw}"
    );
}

#[tokio::test]
async fn prepare_shows_the_request_with_credentials_redacted() {
    let rec = Recorder::default();
    let opts = rec.options(vec![CannedResponse::new(200).into()]);
    for cfg in [
        config(json!({})),
        json!({"api_email": "ops@example.com", "api_key": KEY, "account_id": ACCOUNT}).to_string(),
    ] {
        let out = outcome(
            host()
                .prepare(&opts, &cfg, &json!({"deletes": [{"id": 3}]}).to_string())
                .await
                .checked(),
        )
        .unwrap();
        assert_eq!(out["dry_run"], true);
        let request = &out["request"];
        assert_eq!(request["method"], "POST");
        assert_eq!(
            request["url"],
            format!("{API}/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch")
        );
        assert_eq!(
            request["body"],
            json!({"deletes": [{"id": 3}], "patches": [], "puts": [], "posts": []})
        );
        assert_eq!(
            request["headers"]["User-Agent"],
            "allow-policies-batch/0.1.0"
        );
        let secret = request["headers"]
            .get("Authorization")
            .or_else(|| request["headers"].get("X-Auth-Key"))
            .unwrap();
        assert_eq!(secret, "[redacted]");
    }
    assert!(rec.requests().is_empty(), "prepare sent a request");
}

#[tokio::test]
async fn describe_returns_the_three_schemas() {
    let text = host().describe(&TaskOptions::default()).await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    for part in ["config", "input", "output"] {
        assert_eq!(
            v[part]["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{part}"
        );
    }
    assert!(v["config"]["properties"]["api_token"]["description"].is_string());
    assert_eq!(v["input"]["properties"]["posts"]["maxItems"], 1000);
}

#[tokio::test]
async fn tasks_in_parallel_share_one_host() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let opts = TaskOptions::default().with_interceptor(move |r: CapturedRequest| {
        c.fetch_add(1, Ordering::SeqCst);
        let id = r.json().unwrap()["deletes"][0]["id"].clone();
        CannedResponse::json(200, &ok_envelope(json!({"deletes": [{"id": id}]}))).into()
    });
    let tasks: Vec<_> = (1..=16)
        .map(|i| {
            let opts = opts.clone();
            tokio::spawn(async move {
                run(&opts, &config(json!({})), &json!({"deletes": [{"id": i}]})).await
            })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let out = t.await.unwrap().unwrap();
        assert_eq!(out["result"]["deletes"][0]["id"], i + 1);
    }
    assert_eq!(count.load(Ordering::SeqCst), 16);
}

#[test]
fn the_component_exports_the_task_and_imports_only_wasi() {
    let engine = wasmtime::Engine::default();
    let component =
        wasmtime::component::Component::from_file(&engine, default_component_path()).unwrap();
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(exports, ["workflow:http-task/task@0.4.0"]);
    // The interface's functions, by name: a host binds each of them.
    use wasmtime::component::types::ComponentItem;
    let (_, task) = ty.exports(&engine).next().unwrap();
    let ComponentItem::ComponentInstance(task) = task.ty else {
        panic!("the task export is not an instance");
    };
    let mut functions: Vec<String> = task
        .exports(&engine)
        .filter(|(_, item)| matches!(item.ty, ComponentItem::ComponentFunc(_)))
        .map(|(name, _)| name.to_string())
        .collect();
    functions.sort();
    assert_eq!(
        functions,
        [
            "describe",
            "export-policies",
            "prepare",
            "run-task",
            "run-task-again"
        ]
    );
    let imports: Vec<String> = ty
        .imports(&engine)
        .map(|(name, _)| name.to_string())
        .collect();
    for needed in [
        "wasi:http/outgoing-handler@0.2.12",
        "wasi:clocks/monotonic-clock@0.2.12",
    ] {
        assert!(
            imports.iter().any(|i| i == needed),
            "{needed} not imported: {imports:?}"
        );
    }
    for import in &imports {
        assert!(import.starts_with("wasi:"), "unexpected import {import}");
        // No file system and no raw sockets: outgoing HTTP is the only way out.
        assert!(
            !import.starts_with("wasi:filesystem/preopens") && !import.starts_with("wasi:sockets/"),
            "{import}"
        );
    }
}

#[tokio::test]
async fn one_instance_serves_several_calls_and_reports_its_peak_memory() {
    let mut instance = host().instance(&TaskOptions::default()).await.unwrap();
    let at_start = instance.peak_memory_bytes();
    assert!(at_start > 0, "the initial memory counts");

    let input = json!({"posts": [post("a@example.com")]}).to_string();
    let first = instance
        .prepare(&config(json!({})), &input)
        .await
        .checked()
        .unwrap();
    let again = instance
        .prepare(&config(json!({})), &input)
        .await
        .checked()
        .unwrap();
    assert_eq!(first.unwrap(), again.unwrap());

    // 1000 posts with long comments: about 1.2 MB of input, several times
    // that once parsed, beyond the initial memory.
    let posts: Vec<Value> = (0..1000)
        .map(|n| {
            let mut p = post(&format!("sender{n}@example.com"));
            p["comments"] = json!("c".repeat(1000));
            p
        })
        .collect();
    let large = json!({ "posts": posts }).to_string();
    let preview = instance
        .prepare(&config(json!({})), &large)
        .await
        .checked()
        .unwrap();
    assert!(preview.is_ok(), "the large batch is valid");
    let peak = instance.peak_memory_bytes();
    assert!(
        peak > at_start,
        "{peak} after 1000 items, {at_start} at start"
    );
    assert!(peak <= host_test::MEMORY_LIMIT);
}

/// Past `max_concurrent_tasks` a call waits for a slot of the instance pool
/// rather than failing, and gets one as soon as a task ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_beyond_the_pool_waits_for_a_slot() {
    // A host of its own, so the other tests never wait for a slot.
    let settings = host_test::HostSettings {
        max_concurrent_tasks: 3,
        ..Default::default()
    };
    let host =
        Arc::new(TaskHost::load_with_settings(&default_component_path(), &settings).unwrap());
    let opts = TaskOptions::default();
    let mut held = Vec::new();
    for _ in 0..settings.max_concurrent_tasks {
        held.push(host.instance(&opts).await.unwrap());
    }
    let other = host.clone();
    let waiting = tokio::spawn(async move {
        let mut instance = other.instance(&TaskOptions::default()).await.unwrap();
        instance.describe().await.unwrap()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "no slot was free");
    drop(held.pop());
    let schemas = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("a freed slot is taken")
        .unwrap();
    assert!(schemas.contains("\"config\""));
}

#[test]
fn a_host_for_no_tasks_is_refused() {
    let settings = host_test::HostSettings {
        max_concurrent_tasks: 0,
        ..Default::default()
    };
    let error = TaskHost::load_with_settings(&default_component_path(), &settings)
        .err()
        .expect("refused");
    assert_eq!(error.to_string(), "max_concurrent_tasks must be at least 1");
}

/// 1000 posts with seven problems each: 1000 are listed, the last entry
/// stands for the other 6000, and the message counts all 7000, in words
/// that agree with that entry's.
#[tokio::test]
async fn a_list_cut_short_is_counted_in_full() {
    let posts: Vec<Value> = (0..1000).map(|_| json!({})).collect();
    let err = run(
        &TaskOptions::default(),
        &config(json!({})),
        &json!({ "posts": posts }),
    )
    .await
    .unwrap_err();
    assert_eq!(err["kind"], "invalid_input");
    let errors = err["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1001);
    let last = &errors[1000];
    assert_eq!(last["pointer"], "");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .starts_with("6000 more problems not listed"),
        "{last}"
    );
    assert_eq!(err["message"], "the input has 7000 problems");
}
