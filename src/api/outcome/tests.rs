use super::*;

fn response(status: u16, body: &str) -> RawResponse {
    RawResponse {
        status,
        retry_after: None,
        body: body.as_bytes().to_vec(),
        truncated: false,
        body_error: None,
    }
}

const OK_BODY: &str = r#"{"success":true,"errors":[],"messages":[{"code":10000,"message":"queued"}],"result":{"deletes":[{"id":1}],"posts":[]}}"#;
const FAIL_BODY: &str = r#"{"success":false,"errors":[{"code":1004,"message":"DNS Validation Error","documentation_url":"https://developers.cloudflare.com/x","source":{"pointer":"/posts/0/pattern"}},{"code":1005,"message":"second"}],"messages":[],"result":null}"#;

/// (kind, retryable, may_have_applied, status) of a classified failure.
fn row(r: Result<Success, Failure>) -> (FailureKind, bool, bool, Option<u16>) {
    let f = r.expect_err("expected a failure");
    (f.kind, f.retryable, f.may_have_applied, f.status)
}

#[test]
fn success_keeps_result_and_messages_verbatim() {
    let s = classify_response(&response(200, OK_BODY), 0).unwrap();
    assert_eq!(s.status, 200);
    assert_eq!(
        s.result.unwrap().get(),
        r#"{"deletes":[{"id":1}],"posts":[]}"#
    );
    assert_eq!(
        s.messages.unwrap().get(),
        r#"[{"code":10000,"message":"queued"}]"#
    );
}

#[test]
fn success_without_result_or_messages() {
    let s = classify_response(&response(201, r#"{"success":true}"#), 0).unwrap();
    assert!(s.result.is_none());
    assert!(s.messages.is_none());
}

#[test]
fn a_refused_destination_is_named_by_its_origin() {
    for (url, origin) in [
        (
            "https://api.example.net/client/v4/accounts/x/batch",
            "https://api.example.net",
        ),
        (
            "http://127.0.0.1:8787/client/v4?page=1",
            "http://127.0.0.1:8787",
        ),
        ("https://host.example", "https://host.example"),
    ] {
        let f = classify_request_fault(&TransportFault::Denied, url);
        assert_eq!(f.kind, FailureKind::Denied);
        assert!(
            f.message
                .starts_with(&format!("the host refused to connect to {origin};")),
            "{url}: {}",
            f.message
        );
    }
    // Every other fault reads as classify_fault words it.
    let refused = TransportFault::BeforeSend("connection refused".into());
    assert_eq!(
        classify_request_fault(&refused, "https://api.example.net/x"),
        classify_fault(&refused)
    );
}

#[test]
fn the_message_counts_the_errors_it_leaves_out() {
    let three = r#"{"success":false,"errors":[{"code":1,"message":"first"},{"code":2,"message":"second"},{"code":3,"message":"third"}],"messages":[],"result":null}"#;
    let f = classify_response(&response(400, three), 0).unwrap_err();
    assert_eq!(f.message, "HTTP 400: first (and 2 more errors)");
    let one =
        r#"{"success":false,"errors":[{"code":1,"message":"only"}],"messages":[],"result":null}"#;
    let f = classify_response(&response(400, one), 0).unwrap_err();
    assert_eq!(f.message, "HTTP 400: only");
}

#[test]
fn api_errors_keep_code_pointer_and_link() {
    let f = classify_response(&response(400, FAIL_BODY), 0).unwrap_err();
    assert_eq!(f.kind, FailureKind::Api);
    assert_eq!(
        f.message,
        "HTTP 400: DNS Validation Error (and 1 more error)"
    );
    assert_eq!(
        f.api_errors,
        vec![
            ApiError {
                code: Some(1004),
                message: "DNS Validation Error".into(),
                pointer: Some("/posts/0/pattern".into()),
                documentation_url: Some("https://developers.cloudflare.com/x".into()),
            },
            ApiError {
                code: Some(1005),
                message: "second".into(),
                pointer: None,
                documentation_url: None
            },
        ]
    );
}

#[test]
fn classification_table() {
    use FailureKind::*;
    // 2xx with success: false is the API's refusal: terminal, not applied.
    assert_eq!(
        row(classify_response(&response(200, FAIL_BODY), 0)),
        (Api, false, false, Some(200))
    );
    // 408 and 429: retryable, not applied.
    assert_eq!(
        row(classify_response(&response(408, ""), 0)),
        (Api, true, false, Some(408))
    );
    assert_eq!(
        row(classify_response(&response(429, FAIL_BODY), 0)),
        (Api, true, false, Some(429))
    );
    // 5xx, even with an HTML page from a proxy: retryable, may have applied.
    for status in [500, 502, 503, 504] {
        assert_eq!(
            row(classify_response(
                &response(status, "<html>Bad gateway</html>"),
                0
            )),
            (Api, true, true, Some(status))
        );
    }
    // Other 4xx: terminal.
    for status in [400, 401, 403, 404, 409, 413, 422] {
        assert_eq!(
            row(classify_response(&response(status, FAIL_BODY), 0)),
            (Api, false, false, Some(status))
        );
    }
    // 2xx that is not an envelope: bad response, may have applied.
    for body in [
        "<html>ok</html>",
        "",
        "{\"success\":true",
        "[1,2]",
        "{\"result\":{}}",
        "{\"success\":\"yes\"}",
    ] {
        assert_eq!(
            row(classify_response(&response(200, body), 0)),
            (BadResponse, false, true, Some(200)),
            "{body}"
        );
    }
    // A 2xx too large to read: bad response, may have applied.
    let mut big = response(200, &OK_BODY[..10]);
    big.truncated = true;
    let f = classify_response(&big, 0).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied),
        (BadResponse, false, true)
    );
    assert!(f.message.contains("max_response_bytes"));
}

#[test]
fn transport_faults() {
    use FailureKind::*;
    let cases = [
        (TransportFault::Denied, Denied, false, false),
        (
            TransportFault::BeforeSend("connection refused".into()),
            Transport,
            true,
            false,
        ),
        (
            TransportFault::AfterSend("timed out waiting for the server".into()),
            Transport,
            true,
            true,
        ),
        (
            TransportFault::Unsendable("bad header".into()),
            Transport,
            false,
            false,
        ),
    ];
    for (fault, kind, retryable, applied) in cases {
        let f = classify_fault(&fault);
        assert_eq!(
            (f.kind, f.retryable, f.may_have_applied, f.status),
            (kind, retryable, applied, None),
            "{fault:?}"
        );
        assert_eq!(f.auto_retryable(), retryable && !applied);
    }
    assert!(
        classify_fault(&TransportFault::BeforeSend("connection refused".into()))
            .message
            .contains("connection refused")
    );
}

#[test]
fn retry_after_seconds_and_http_date() {
    let mut r = response(429, "");
    r.retry_after = Some("7".into());
    assert_eq!(
        classify_response(&r, 0).unwrap_err().retry_after_ms,
        Some(7000)
    );
    // 1994-11-06T08:49:37Z is 784111777 s after the epoch; "now" is 2.5 s earlier.
    r.retry_after = Some("Sun, 06 Nov 1994 08:49:37 GMT".into());
    let now = 784_111_777_000 - 2_500;
    assert_eq!(
        classify_response(&r, now).unwrap_err().retry_after_ms,
        Some(2_500)
    );
    // A date in the past means "now".
    assert_eq!(
        classify_response(&r, now + 10_000)
            .unwrap_err()
            .retry_after_ms,
        Some(0)
    );
    r.retry_after = Some("soon".into());
    assert_eq!(classify_response(&r, 0).unwrap_err().retry_after_ms, None);
    // Retry-After is kept on a 503 too.
    let mut r = response(503, "");
    r.retry_after = Some("120".into());
    assert_eq!(
        classify_response(&r, 0).unwrap_err().retry_after_ms,
        Some(120_000)
    );
}

#[test]
fn truncated_2xx_is_bad_response_even_if_it_parses() {
    let mut big = response(200, OK_BODY);
    big.truncated = true;
    assert_eq!(
        row(classify_response(&big, 0)),
        (FailureKind::BadResponse, false, true, Some(200))
    );
}

#[test]
fn a_body_that_breaks_after_the_status_is_classified_by_the_status() {
    let broken = |status: u16| RawResponse {
        status,
        retry_after: Some("2".into()),
        body: b"{\"success\":tr".to_vec(),
        truncated: false,
        body_error: Some("connection closed by the server".into()),
    };
    // A 2xx whose body broke off: the batch was most likely applied.
    let f = classify_response(&broken(200), 0).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.status),
        (FailureKind::BadResponse, false, true, Some(200))
    );
    assert!(
        f.message.contains("connection closed by the server"),
        "{}",
        f.message
    );
    // A 429 keeps its Retry-After and stays safe to retry.
    let f = classify_response(&broken(429), 0).unwrap_err();
    assert_eq!(
        (f.kind, f.retryable, f.may_have_applied, f.retry_after_ms),
        (FailureKind::Api, true, false, Some(2000))
    );
    // Other 4xx: terminal, nothing applied.
    assert_eq!(
        row(classify_response(&broken(403), 0)),
        (FailureKind::Api, false, false, Some(403))
    );
}

#[test]
fn a_relayed_value_that_does_not_parse_back_is_a_bad_response() {
    // Each passes a syntax check, but a JSON parser refuses the number
    // beyond an f64 and the lone surrogate, so the output would be unreadable.
    for body in [
        r#"{"success":true,"errors":[],"messages":[],"result":{"posts":[{"id":1e400}]}}"#,
        r#"{"success":true,"result":{"deletes":[{"id":9999e222222222222999999}]}}"#,
        r#"{"success":true,"messages":[{"message":"\ud800"}],"result":null}"#,
        r#"{"success":true,"result":{"\udc00":1}}"#,
    ] {
        let f = classify_response(&response(200, body), 0).unwrap_err();
        assert_eq!(
            (f.kind, f.retryable, f.may_have_applied, f.status),
            (FailureKind::BadResponse, false, true, Some(200)),
            "{body}"
        );
    }
    // Large, tiny and surrogate-pair values read back and are relayed as sent.
    let body = r#"{"success":true,"messages":["\ud83d\ude00"],"result":[1e308,-1e-400,123456789012345678901234567890]}"#;
    let s = classify_response(&response(200, body), 0).unwrap();
    assert_eq!(
        s.result.unwrap().get(),
        "[1e308,-1e-400,123456789012345678901234567890]"
    );
    assert_eq!(s.messages.unwrap().get(), r#"["\ud83d\ude00"]"#);
    // A failure relays nothing, so its errors still count.
    let body = r#"{"success":false,"errors":[{"code":1004,"message":"bad"}],"result":1e400}"#;
    let f = classify_response(&response(400, body), 0).unwrap_err();
    assert_eq!(f.message, "HTTP 400: bad");
}
