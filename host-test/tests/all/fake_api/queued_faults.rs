//! Faults queued in process or over HTTP answer the next batches instead
//! of the fake API.

use super::*;
use host_test::fake_api::Fault;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn queued_faults_answer_the_next_batches_in_order() {
    let api = start(Some(TOKEN)).await;
    let body = r#"{"success":false,"errors":[{"code":10429,"message":"slow down"}],"messages":[],"result":null}"#;
    api.push_fault(Fault::Status {
        status: 429,
        headers: vec![("Retry-After".into(), "1".into())],
        body: body.into(),
    });
    api.push_fault(Fault::Delay(Duration::from_millis(300)));
    api.push_fault(Fault::Reset);
    api.push_fault(Fault::status(503, vec![]));
    assert_eq!(api.pending_faults(), 4);

    let rate_limited = post_batch(&api, &posts(vec![policy("a@example.com")])).await;
    assert_eq!(rate_limited.status, 429);
    assert_eq!(rate_limited.headers["retry-after"], "1");
    assert_eq!(rate_limited.headers["content-type"], "application/json");
    assert_eq!(rate_limited.text, body);
    assert!(
        api.policies(ACCOUNT).is_empty(),
        "a canned answer applies nothing"
    );

    // Other routes neither use up nor see the queue.
    assert_eq!(list(&api, "").await.status, 200);
    assert_eq!(api.pending_faults(), 3);

    let started = Instant::now();
    let delayed = post_batch(&api, &posts(vec![policy("b@example.com")])).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(delayed.status, 200, "{}", delayed.text);
    assert_eq!(api.policies(ACCOUNT).len(), 1);

    // Raw TCP, to see the reset itself rather than a client's reading of it.
    let body = posts(vec![policy("c@example.com")]).to_string();
    let mut raw = TcpStream::connect(api.addr()).await.unwrap();
    let request = format!(
        "POST {} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        batch_path(ACCOUNT),
        api.addr(),
        body.len()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut received))
        .await
        .expect("the fake does not leave the connection hanging");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "got {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(received.is_empty());
    assert_eq!(api.policies(ACCOUNT).len(), 1, "a reset applies nothing");

    let unavailable = post_batch(&api, &posts(vec![policy("d@example.com")])).await;
    assert_eq!(unavailable.status, 503);
    assert_eq!(
        failure_errors(&unavailable),
        [(code::CANNED_BASE as u64 + 503, String::new())]
    );

    let normal = post_batch(&api, &posts(vec![policy("e@example.com")])).await;
    assert_eq!(normal.status, 200);
    assert_eq!(api.pending_faults(), 0);
    assert_eq!(api.policies(ACCOUNT).len(), 2);
    api.shutdown().await;
}

#[tokio::test]
async fn a_delayed_batch_is_applied_even_when_the_client_gives_up() {
    let api = start(Some(TOKEN)).await;
    api.push_fault(Fault::Delay(Duration::from_millis(300)));
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        post_batch(&api, &posts(vec![policy("late@example.com")])),
    )
    .await;
    assert!(gave_up.is_err());
    assert!(api.policies(ACCOUNT).is_empty());
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.policies(ACCOUNT).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(api.policies(ACCOUNT).len(), 1);
    api.shutdown().await;
}

#[tokio::test]
async fn faults_can_be_queued_over_http_by_another_process() {
    let api = start(Some(TOKEN)).await;
    let faults = json!([
        { "status": 502, "headers": { "retry-after": "2" }, "body": "<html>bad gateway</html>" },
        { "status": 429 },
        { "delay_ms": 200 },
        { "reset": true },
    ]);
    let queued = send(
        &api,
        Method::POST,
        "/__fake/faults",
        &[],
        &faults.to_string(),
    )
    .await;
    assert_eq!(queued.status, 204, "{}", queued.text);
    assert_eq!(api.pending_faults(), 4);
    assert_eq!(api.requests(), 0, "admin routes are not counted");

    let batch_body = posts(vec![policy("a@example.com")]);
    let html = post_batch(&api, &batch_body).await;
    assert_eq!(html.status, 502);
    assert_eq!(html.headers["retry-after"], "2");
    assert!(html.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(html.text, "<html>bad gateway</html>");

    let canned = post_batch(&api, &batch_body).await;
    assert_eq!(canned.status, 429);
    assert_eq!(
        failure_errors(&canned),
        [(code::CANNED_BASE as u64 + 429, String::new())]
    );

    let started = Instant::now();
    assert_eq!(post_batch(&api, &batch_body).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));

    let reset = try_send(
        &api,
        Method::POST,
        &batch_path(ACCOUNT),
        &[BEARER],
        &batch_body.to_string(),
    )
    .await;
    assert!(reset.is_err());
    assert_eq!(api.policies(ACCOUNT).len(), 1);

    let counted = send(&api, Method::GET, "/__fake/requests", &[], "").await;
    assert_eq!(counted.status, 200);
    assert_eq!(counted.json["success"], true);
    assert_eq!(counted.json["result"]["requests"], api.requests());
    assert_eq!(api.requests(), 4);

    // A bad list queues nothing at all.
    for (body, pointer) in [
        (json!([{ "status": 42 }]), "/0/status"),
        (json!([{ "delay_ms": 5 }, { "bogus": 1 }]), "/1"),
        (json!([{ "reset": false }]), "/0/reset"),
        (json!([{ "delay_ms": -1 }]), "/0/delay_ms"),
        (
            json!([{ "status": 500, "headers": { "bad header": "x" } }]),
            "/0/headers/bad header",
        ),
        (
            json!([{ "status": 500, "headers": { "x-a": 1 } }]),
            "/0/headers/x-a",
        ),
        (json!([{ "status": 500, "body": {} }]), "/0/body"),
        (json!([{ "status": 500, "delay_ms": 5 }]), "/0/delay_ms"),
        (json!({ "status": 500 }), ""),
    ] {
        let answer = send(&api, Method::POST, "/__fake/faults", &[], &body.to_string()).await;
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(
            failure_errors(&answer),
            [(code::INVALID_FAULT as u64, pointer.to_string())],
            "{body}"
        );
    }
    let not_json = send(&api, Method::POST, "/__fake/faults", &[], "[{").await;
    assert_eq!(not_json.status, 400);
    assert_eq!(api.pending_faults(), 0);

    let wrong_method = send(&api, Method::GET, "/__fake/faults", &[], "").await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.headers["allow"], "POST");
    assert_eq!(
        send(&api, Method::GET, "/__fake/nothing", &[], "")
            .await
            .status,
        404
    );
    api.shutdown().await;
}
