//! The host keeps connections open between tasks: consecutive tasks share
//! one, tasks in flight each get their own, and a connection that cannot
//! safely carry another request (closed by the server, its response not
//! read to the end, its runtime gone) is never lent again. Loopback only.

use crate::support::documents::Checked;
use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{fake_api, post, with_fields, ACCOUNT};
use host_test::{default_component_path, AllowedHost, CacheMode, TaskHost, TaskOptions};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const TOKEN: &str = "connections-TOKEN";

/// Each test gets its own host, hence its own pool of connections.
fn new_host() -> TaskHost {
    TaskHost::load_with_cache(&default_component_path(), CacheMode::UserDefault)
        .expect("run `make component` first")
}

fn options() -> TaskOptions {
    TaskOptions::default().with_allowed_host(AllowedHost::any_port("127.0.0.1").unwrap())
}

fn config(base_url: &str, extra: Value) -> String {
    let config = json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": base_url});
    with_fields(config, extra).to_string()
}

/// A batch that creates one policy with a pattern of its own.
fn input(n: usize) -> String {
    json!({"posts": [post(&format!("sender{n}@example.com"))]}).to_string()
}

async fn run_ok(host: &TaskHost, config: &str, n: usize) -> Value {
    let output = host
        .run_task(&options(), config, &input(n))
        .await
        .checked()
        .expect("the call completes")
        .unwrap_or_else(|e| panic!("task {n} failed: {e:?}"));
    serde_json::from_str(&output).unwrap()
}

#[tokio::test]
async fn consecutive_tasks_share_one_connection() {
    let fake = fake_api(Some(TOKEN)).await;
    let host = new_host();
    let config = config(&fake.base_url(), json!({}));
    for n in 0..5 {
        let output = run_ok(&host, &config, n).await;
        assert_eq!(output["result"]["posts"].as_array().unwrap().len(), 1);
    }
    assert_eq!(fake.requests(), 5);
    assert_eq!(fake.connections(), 1);
    assert_eq!(host.idle_connections(), 1);
    assert_eq!(fake.policies(ACCOUNT).len(), 5);
}

/// The guest hands a request body to the host a chunk at a time (see
/// `BODY_CHUNK_BYTES` in src/outbound/hooks.rs); a body of many chunks
/// arrives whole and in order.
#[tokio::test]
async fn a_body_of_many_chunks_arrives_whole() {
    let fake = fake_api(Some(TOKEN)).await;
    let host = new_host();
    let posts: Vec<Value> = (0..1000)
        .map(|n| {
            let mut p = post(&format!("sender{n}@example.com"));
            p["comments"] = json!(format!("{n:04}{}", "c".repeat(1000)));
            p
        })
        .collect();
    let input = json!({ "posts": posts }).to_string();
    assert!(input.len() > 16 * 64 * 1024, "{} bytes", input.len());
    let output = host
        .run_task(&options(), &config(&fake.base_url(), json!({})), &input)
        .await
        .checked()
        .expect("the call completes")
        .unwrap_or_else(|e| panic!("the task failed: {e:?}"));
    let output: Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["result"]["posts"].as_array().unwrap().len(), 1000);
    assert_eq!(fake.requests(), 1);
    let stored = fake.policies(ACCOUNT);
    assert_eq!(stored.len(), 1000);
    for (n, policy) in stored.iter().enumerate() {
        let expected = format!("{n:04}{}", "c".repeat(1000));
        assert_eq!(policy["comments"], json!(expected), "policy {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_in_flight_each_get_a_connection_and_later_tasks_reuse_them() {
    let fake = fake_api(Some(TOKEN)).await;
    let host = Arc::new(new_host());
    let config = Arc::new(config(&fake.base_url(), json!({})));
    let wave = |first: usize| {
        let tasks: Vec<_> = (first..first + 8)
            .map(|n| {
                let (host, config) = (host.clone(), config.clone());
                tokio::spawn(async move { run_ok(&host, &config, n).await })
            })
            .collect();
        async move {
            for task in tasks {
                task.await.unwrap();
            }
        }
    };
    wave(0).await;
    let opened = fake.connections();
    assert!((1..=8).contains(&opened), "{opened} connections");
    // Each came back as its task read the end of its response.
    assert_eq!(host.idle_connections(), opened);
    for _ in 0..3 {
        wave(100).await;
    }
    assert_eq!(fake.requests(), 32);
    assert!(
        fake.connections() <= 8,
        "{} connections for 8 in flight",
        fake.connections()
    );
}

/// The server answers each request and closes the connection, without
/// saying so in a `Connection: close` header: every task must still
/// succeed, on a connection of its own.
#[tokio::test]
async fn a_server_that_closes_after_each_answer_gets_a_new_connection_each_time() {
    const TASKS: usize = 30;
    let ok = r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[],"patches":[],"puts":[],"posts":[{"id":"b6c1a0de-5a4f-4f4a-9c9e-0e4a6f0d1c11"}]}}"#;
    let reply = response("200 OK", &[("Content-Type", "application/json")], ok);
    let server = MisbehavingServer::start(vec![Script::Reply(reply)]).await;
    let host = new_host();
    let config = config(&server.base_url(), json!({}));
    for n in 0..TASKS {
        run_ok(&host, &config, n).await;
    }
    assert_eq!(server.received().len(), TASKS);
}

/// A task that stops reading a response (here, past `max_response_bytes`)
/// may leave bytes of it behind; the next task must not read them as its
/// own answer. (hyper lends the connection again only when the whole
/// response has arrived, else it closes it.)
#[tokio::test]
async fn a_response_not_read_to_its_end_is_not_mistaken_for_the_next_one() {
    let fake = fake_api(Some(TOKEN)).await;
    let host = new_host();
    let short = config(
        &fake.base_url(),
        json!({"max_response_bytes": 16, "verify_after_failure": false}),
    );
    let error = host
        .run_task(&options(), &short, &input(0))
        .await
        .checked()
        .unwrap()
        .unwrap_err();
    assert_eq!(host_test::error_kind(&error), "bad_response");

    let output = run_ok(&host, &config(&fake.base_url(), json!({})), 1).await;
    assert_eq!(output["result"]["posts"].as_array().unwrap().len(), 1);
    assert_eq!(fake.requests(), 2);
}

/// A connection's I/O runs on the runtime that opened it; a later task on
/// another runtime gets a connection of its own, and succeeds after the
/// first runtime is gone.
#[test]
fn connections_stay_with_the_runtime_that_opened_them() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = server_runtime.block_on(fake_api(Some(TOKEN)));
    let host = new_host();
    let config = config(&fake.base_url(), json!({}));

    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(run_ok(&host, &config, 0));
    assert_eq!(host.idle_connections(), 1);
    drop(first);

    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        run_ok(&host, &config, 1).await;
        run_ok(&host, &config, 2).await;
    });
    assert_eq!(fake.requests(), 3);
    assert_eq!(fake.connections(), 2);
    assert_eq!(host.idle_connections(), 1);
}

/// A TLS server on loopback whose certificate (for 127.0.0.1, committed
/// under `support/tls/`) no public root vouches for. Counts the
/// connections it accepts and the handshakes that complete.
struct SelfSignedServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

impl SelfSignedServer {
    async fn start() -> Self {
        let cert = CertificateDer::from(&include_bytes!("support/tls/self-signed-cert.der")[..]);
        let key = PrivatePkcs8KeyDer::from(&include_bytes!("support/tls/self-signed-key.der")[..]);
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.into_owned()], key.clone_key().into())
            .expect("a usable certificate and key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, handshakes) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let counts = (accepted.clone(), handshakes.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counts.0.fetch_add(1, Ordering::SeqCst);
                if acceptor.accept(stream).await.is_ok() {
                    counts.1.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        Self {
            port,
            accepted,
            handshakes,
        }
    }
}

/// `https` goes through TLS with the public web's roots: a certificate
/// they do not vouch for ends the task before any of the request is sent,
/// as a transport failure that cannot have applied.
#[tokio::test]
async fn https_refuses_a_certificate_no_public_root_vouches_for() {
    let server = SelfSignedServer::start().await;
    let host = new_host();
    let base_url = format!("https://127.0.0.1:{}/client/v4", server.port);
    let config = config(&base_url, json!({"max_retries": 0}));
    let error = host
        .run_task(&options(), &config, &input(0))
        .await
        .checked()
        .expect("the call completes")
        .expect_err("the certificate is refused");
    let error = host_test::error_to_json(&error);
    assert_eq!(error["kind"], "transport", "{error}");
    assert_eq!(error["may_have_applied"], false, "{error}");
    // The handshake failed, so the request never left.
    assert_eq!(error["attempts"], 0, "{error}");
    assert_eq!(server.accepted.load(Ordering::SeqCst), 1);
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 0);
    assert_eq!(host.idle_connections(), 0);
}
