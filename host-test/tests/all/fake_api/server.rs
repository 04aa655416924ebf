//! The server itself: loopback only, many connections, keep-alive, garbage
//! on the wire, shutdown.

use super::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn only_loopback_addresses_are_accepted() {
    for listen in ["0.0.0.0:0", "192.0.2.1:0", "[::]:0"] {
        let error = FakeApi::start(FakeApiOptions {
            listen: listen.parse().unwrap(),
            token: None,
            ..FakeApiOptions::default()
        })
        .await
        .expect_err(listen);
        assert!(error.to_string().contains("loopback"), "{error}");
    }
    let empty_token = FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(String::new()),
        ..FakeApiOptions::default()
    })
    .await;
    assert!(empty_token.is_err());

    let defaults = FakeApiOptions::default();
    assert_eq!(defaults.listen, "127.0.0.1:8787".parse().unwrap());
    assert_eq!(defaults.token, None);
    assert!(!defaults.legacy_ids);
    let shown = format!(
        "{:?}",
        FakeApiOptions {
            token: Some(TOKEN.into()),
            ..defaults
        }
    );
    assert!(!shown.contains(TOKEN), "{shown}");

    let api = start(None).await;
    assert!(api.addr().ip().is_loopback());
    assert_ne!(api.addr().port(), 0);
    assert_eq!(
        api.base_url(),
        format!("http://127.0.0.1:{}/client/v4", api.addr().port())
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_connections_are_served_at_once() {
    let api = std::sync::Arc::new(start(Some(TOKEN)).await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            post_batch(&api, &posts(vec![policy(&format!("c{i}@example.com"))]))
                .await
                .status
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }
    let policies = api.policies(ACCOUNT);
    assert_eq!(policies.len(), 40);
    let mut ids: Vec<&str> = policies.iter().map(|p| p["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert_eq!(api.requests(), 40);
}

#[tokio::test]
async fn one_connection_carries_several_requests() {
    let api = start(Some(TOKEN)).await;
    let mut sender = connect(api.addr()).await;
    for i in 0..3 {
        let answer = send_on(
            &mut sender,
            api.addr(),
            Method::POST,
            &batch_path(ACCOUNT),
            &[BEARER],
            &posts(vec![policy(&format!("k{i}@example.com"))]).to_string(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 200);
    }
    // Errors do not close it either.
    let answer = send_on(&mut sender, api.addr(), Method::GET, "/nowhere", &[], "")
        .await
        .unwrap();
    assert_eq!(answer.status, 404);
    let answer = send_on(
        &mut sender,
        api.addr(),
        Method::GET,
        &list_path(ACCOUNT, ""),
        &[BEARER],
        "",
    )
    .await
    .unwrap();
    assert_eq!(answer.json["result_info"]["total_count"], 3);
    api.shutdown().await;
}

#[tokio::test]
async fn garbage_on_the_wire_does_not_stop_the_server() {
    let api = start(Some(TOKEN)).await;
    let mut raw = TcpStream::connect(api.addr()).await.unwrap();
    raw.write_all(b"\x00\xffNOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), raw.read_to_end(&mut answer)).await;
    drop(raw);

    // A client that leaves half-way through its body.
    let mut raw = TcpStream::connect(api.addr()).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-length: 100\r\n\r\n{{\"deletes\"",
        batch_path(ACCOUNT)
    );
    raw.write_all(head.as_bytes()).await.unwrap();
    drop(raw);

    assert_eq!(
        create(&api, "still@example.com").await["pattern"],
        "still@example.com"
    );
    api.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let api = start(None).await;
    let addr = api.addr();
    let idle = TcpStream::connect(addr).await.unwrap();
    api.shutdown().await;
    assert!(TcpStream::connect(addr).await.is_err());
    // The open connection is closed too.
    let mut idle = idle;
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the connection is closed, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)));
}
