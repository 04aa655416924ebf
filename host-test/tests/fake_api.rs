//! The fake allow-policies API over real loopback HTTP, as the component and
//! the end-to-end tests see it.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use host_test::fake_api::{code, FakeApi, FakeApiOptions, Fault};
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use jsonschema::Validator;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

#[path = "support/published_schema.rs"]
mod published_schema;

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const OTHER_ACCOUNT: &str = "ffffffffffffffffffffffffffffffff";
const TOKEN: &str = "fake-api-test-token-5e1d";

async fn start(token: Option<&str>) -> FakeApi {
    start_with(token, false).await
}

/// A fake that, with `legacy_ids`, also takes the older API's integer ids.
async fn start_with(token: Option<&str>, legacy_ids: bool) -> FakeApi {
    FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        legacy_ids,
    })
    .await
    .expect("the fake starts on loopback")
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    text: String,
    /// `Null` when the body is not JSON.
    json: Value,
}

type Headers<'a> = &'a [(&'a str, &'a str)];

async fn send_on(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: Headers<'_>,
    body: &str,
) -> Result<Answer, hyper::Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        headers,
        text,
        json,
    })
}

async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// One request on a connection of its own.
async fn try_send(
    api: &FakeApi,
    method: Method,
    path: &str,
    headers: Headers<'_>,
    body: &str,
) -> Result<Answer, hyper::Error> {
    let mut sender = connect(api.addr()).await;
    send_on(&mut sender, api.addr(), method, path, headers, body).await
}

async fn send(
    api: &FakeApi,
    method: Method,
    path: &str,
    headers: Headers<'_>,
    body: &str,
) -> Answer {
    try_send(api, method, path, headers, body)
        .await
        .expect("the fake answers")
}

fn batch_path(account: &str) -> String {
    format!("/client/v4/accounts/{account}/email-security/settings/allow_policies/batch")
}

fn list_path(account: &str, query: &str) -> String {
    format!("/client/v4/accounts/{account}/email-security/settings/allow_policies{query}")
}

const BEARER: (&str, &str) = ("authorization", "Bearer fake-api-test-token-5e1d");

/// Posts a batch. Unless a queued fault answers instead, the answer must be
/// what Cloudflare's published schema describes: a 200 envelope with the
/// batch's result, or the 4xx failure envelope.
async fn post_batch(api: &FakeApi, body: &Value) -> Answer {
    let canned = api.pending_faults() > 0;
    let answer = send(
        api,
        Method::POST,
        &batch_path(ACCOUNT),
        &[BEARER, ("content-type", "application/json")],
        &body.to_string(),
    )
    .await;
    if !canned {
        assert_published(&answer, PublishedAnswer::Batch);
    }
    answer
}

async fn list(api: &FakeApi, query: &str) -> Answer {
    let answer = send(api, Method::GET, &list_path(ACCOUNT, query), &[BEARER], "").await;
    assert_published(&answer, PublishedAnswer::List);
    answer
}

/// Which operation of the published schema an answer belongs to.
#[derive(Clone, Copy)]
enum PublishedAnswer {
    Batch,
    List,
}

/// Checks an answer against the published schema's 200 response of its
/// operation, or its 4xx response; other statuses have none.
fn assert_published(answer: &Answer, operation: PublishedAnswer) {
    static BATCH: OnceLock<Validator> = OnceLock::new();
    static LIST: OnceLock<Validator> = OnceLock::new();
    static CLIENT_ERROR: OnceLock<Validator> = OnceLock::new();
    let validator = match (answer.status, operation) {
        (200, PublishedAnswer::Batch) => BATCH.get_or_init(published_schema::batch_success),
        (200, PublishedAnswer::List) => LIST.get_or_init(published_schema::list_success),
        (400..=499, _) => CLIENT_ERROR.get_or_init(published_schema::client_error),
        _ => return,
    };
    // Integer ids are the older API's: the tests seed them, or turn legacy
    // ids on, on purpose. Everything else must be as published.
    let errors: Vec<String> = validator
        .iter_errors(&answer.json)
        .filter(|e| {
            let at = e.instance_path().as_str();
            !(at.ends_with("/id") && answer.json.pointer(at).is_some_and(Value::is_u64))
        })
        .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
        .collect();
    assert!(
        errors.is_empty(),
        "the fake's {} answer is not what the published schema describes: {errors:#?}\n{}",
        answer.status,
        answer.text
    );
}

/// Every policy of [`ACCOUNT`] through the list endpoint.
async fn listed(api: &FakeApi) -> Value {
    let answer = list(api, "?per_page=100").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["result"].clone()
}

fn batch(deletes: Value, patches: Value, puts: Value, posts: Value) -> Value {
    json!({ "deletes": deletes, "patches": patches, "puts": puts, "posts": posts })
}

fn posts(items: Vec<Value>) -> Value {
    batch(json!([]), json!([]), json!([]), Value::Array(items))
}

fn policy(pattern: &str) -> Value {
    json!({
        "is_exempt_recipient": false,
        "is_trusted_sender": true,
        "is_acceptable_sender": false,
        "verify_sender": true,
        "is_regex": false,
        "pattern_type": "EMAIL",
        "pattern": pattern,
        "comments": "created by a test",
    })
}

async fn create(api: &FakeApi, pattern: &str) -> Value {
    let answer = post_batch(api, &posts(vec![policy(pattern)])).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json["result"]["posts"][0].clone()
}

fn assert_uuid_v4(id: &Value) {
    let id = id.as_str().expect("a string id");
    let groups: Vec<&str> = id.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    assert_eq!(lengths, [8, 4, 4, 4, 12], "{id}");
    assert!(id
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert!(groups[2].starts_with('4'), "{id}");
    assert!(groups[3].starts_with(['8', '9', 'a', 'b']), "{id}");
}

fn assert_timestamp(value: &Value) {
    let text = value.as_str().expect("a string timestamp");
    let bytes = text.as_bytes();
    assert_eq!(bytes.len(), 27, "{text}");
    for (i, b) in bytes.iter().enumerate() {
        let expected = match i {
            4 | 7 => b'-',
            10 => b'T',
            13 | 16 => b':',
            19 => b'.',
            26 => b'Z',
            _ => {
                assert!(b.is_ascii_digit(), "{text}");
                continue;
            }
        };
        assert_eq!(*b, expected, "{text}");
    }
    assert!(text >= "2025-01-01", "{text}");
}

/// `(code, pointer)` of every entry of a failure envelope, after checking
/// the envelope itself.
fn failure_errors(answer: &Answer) -> Vec<(u64, String)> {
    let body = &answer.json;
    assert_eq!(body["success"], false, "{}", answer.text);
    assert_eq!(body["result"], Value::Null);
    assert_eq!(body["messages"], json!([]));
    assert_eq!(
        answer.headers["content-type"], "application/json",
        "{}",
        answer.text
    );
    let errors = body["errors"].as_array().expect("errors is an array");
    assert!(!errors.is_empty());
    errors
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            let code = e["code"].as_u64().expect("an integer code");
            assert!(code >= 1000, "{e}");
            let pointer = e["source"]["pointer"].as_str().unwrap_or("").to_string();
            (code, pointer)
        })
        .collect()
}

#[tokio::test]
async fn a_created_policy_is_listed_with_a_uuid_and_timestamps() {
    let api = start(Some(TOKEN)).await;
    let answer = post_batch(&api, &posts(vec![policy("alerts@example.com")])).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.json["success"], true);
    assert_eq!(answer.json["errors"], json!([]));
    assert_eq!(answer.json["messages"], json!([]));
    let result = &answer.json["result"];
    assert_eq!(result["deletes"], json!([]));
    assert_eq!(result["patches"], json!([]));
    assert_eq!(result["puts"], json!([]));
    let created = &result["posts"][0];
    assert_uuid_v4(&created["id"]);
    assert_timestamp(&created["created_at"]);
    assert_eq!(created["modified_at"], created["created_at"]);
    assert_eq!(created["last_modified"], created["modified_at"]);
    for (key, value) in policy("alerts@example.com").as_object().unwrap() {
        assert_eq!(&created[key], value, "{key}");
    }

    let listed_now = listed(&api).await;
    assert_eq!(listed_now, json!([created]));
    assert_eq!(api.policies(ACCOUNT), vec![created.clone()]);
    assert!(api.policies(OTHER_ACCOUNT).is_empty());
    api.shutdown().await;
}

#[tokio::test]
async fn an_existing_policy_can_be_patched_replaced_and_deleted_by_id() {
    let api = start(Some(TOKEN)).await;
    let created = create(&api, "first@example.com").await;
    let id = created["id"].as_str().unwrap().to_string();

    let patch = batch(
        json!([]),
        json!([{ "id": id, "verify_sender": false, "comments": null }]),
        json!([]),
        json!([]),
    );
    let answer = post_batch(&api, &patch).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let patched = &answer.json["result"]["patches"][0];
    assert_eq!(patched["id"], id.as_str());
    assert_eq!(patched["verify_sender"], false);
    assert_eq!(patched["comments"], Value::Null);
    assert_eq!(patched["pattern"], "first@example.com");
    assert_eq!(patched["is_trusted_sender"], true);
    assert_eq!(patched["created_at"], created["created_at"]);
    assert!(patched["modified_at"].as_str() > created["modified_at"].as_str());
    assert_eq!(patched["last_modified"], patched["modified_at"]);

    // An id in capitals names the same policy.
    let mut replacement = policy("second.example");
    replacement["pattern_type"] = json!("DOMAIN");
    replacement.as_object_mut().unwrap().remove("comments");
    replacement["id"] = json!(id.to_uppercase());
    let answer = post_batch(
        &api,
        &batch(json!([]), json!([]), json!([replacement]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let replaced = &answer.json["result"]["puts"][0];
    assert_eq!(replaced["id"], id.as_str());
    assert_eq!(replaced["pattern"], "second.example");
    assert_eq!(replaced["pattern_type"], "DOMAIN");
    assert_eq!(replaced["comments"], Value::Null);
    assert_eq!(replaced["created_at"], created["created_at"]);
    assert_eq!(listed(&api).await, json!([replaced]));

    let answer = post_batch(
        &api,
        &batch(json!([{ "id": id }]), json!([]), json!([]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": id }]));
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn operations_run_in_order_deletes_patches_puts_posts() {
    let api = start(Some(TOKEN)).await;
    let id = create(&api, "gone@example.com").await["id"].clone();
    // The delete comes first, so the patch of the same id finds nothing.
    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": id }]),
            json!([{ "id": id, "is_regex": true }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::POLICY_NOT_FOUND as u64, "/patches/0/id".to_string())]
    );
    assert_eq!(listed(&api).await.as_array().unwrap().len(), 1);
    api.shutdown().await;
}

#[tokio::test]
async fn an_unknown_id_rejects_the_whole_batch_and_changes_nothing() {
    let api = start(Some(TOKEN)).await;
    let kept = create(&api, "kept@example.com").await;
    let before = listed(&api).await;

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": "0b6ad3a1-9d0c-4b53-9f43-6f3c3a1f2e10" }]),
            json!([{ "id": kept["id"], "comments": "changed" }]),
            json!([]),
            json!([policy("new@example.com")]),
        ),
    )
    .await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::POLICY_NOT_FOUND as u64, "/deletes/0/id".to_string())]
    );
    assert!(answer.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("not found"));
    assert_eq!(listed(&api).await, before);
    api.shutdown().await;

    // With legacy ids every missing id is named, integers included.
    let api = start_with(Some(TOKEN), true).await;
    let mut put = policy("x.example");
    put["id"] = json!(2401);
    let answer = post_batch(
        &api,
        &batch(json!([{ "id": 7 }]), json!([]), json!([put]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 404);
    assert_eq!(
        failure_errors(&answer),
        [
            (code::POLICY_NOT_FOUND as u64, "/deletes/0/id".to_string()),
            (code::POLICY_NOT_FOUND as u64, "/puts/0/id".to_string()),
        ]
    );
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn integer_ids_fail_the_batch_unless_legacy_ids_are_on() {
    let api = start(Some(TOKEN)).await;
    let seeded = api
        .seed(
            ACCOUNT,
            [{
                let mut p = policy("old@example.com");
                p["id"] = json!(2401);
                p
            }],
        )
        .unwrap();
    assert_eq!(seeded[0]["id"], json!(2401));
    let kept = create(&api, "kept@example.com").await;
    let before = listed(&api).await;
    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": 2401 }]),
            json!([{ "id": kept["id"], "comments": "x" }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(code::INVALID_FIELD as u64, "/deletes/0/id".to_string())]
    );
    assert!(answer.json["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("UUID"));
    assert_eq!(listed(&api).await, before);
    api.shutdown().await;

    let api = start_with(Some(TOKEN), true).await;
    api.seed(
        ACCOUNT,
        [{
            let mut p = policy("old@example.com");
            p["id"] = json!(2401);
            p
        }],
    )
    .unwrap();
    let answer = post_batch(
        &api,
        &batch(json!([{ "id": 2401 }]), json!([]), json!([]), json!([])),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": 2401 }]));
    assert_eq!(listed(&api).await, json!([]));
    api.shutdown().await;
}

#[tokio::test]
async fn ip_patterns_must_be_globally_reachable() {
    let api = start(Some(TOKEN)).await;
    let ip = |pattern: &str| {
        let mut p = policy("unused");
        p["pattern_type"] = json!("IP");
        p["pattern"] = json!(pattern);
        p
    };
    for refused in [
        "10.0.0.0/8",
        "0.0.0.0/0",
        "127.0.0.1",
        "fd00::1",
        "::ffff:192.168.1.1",
        "not-an-ip",
    ] {
        let answer = post_batch(&api, &posts(vec![ip(refused)])).await;
        assert_eq!(answer.status, 400, "{refused}: {}", answer.text);
        assert_eq!(
            failure_errors(&answer),
            [(code::INVALID_FIELD as u64, "/posts/0/pattern".to_string())],
            "{refused}"
        );
    }
    // A regex is not an address, and a patch that does not say IP and
    // is_regex: false is not judged as one.
    let mut regex = ip("10\\..*");
    regex["is_regex"] = json!(true);
    let answer = post_batch(
        &api,
        &posts(vec![ip("8.8.8.0/24"), ip("2606:4700::/32"), regex]),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(listed(&api).await.as_array().unwrap().len(), 3);
    api.shutdown().await;
}

#[tokio::test]
async fn invalid_fields_are_rejected_with_their_pointer_and_nothing_applies() {
    let api = start(Some(TOKEN)).await;
    let mut unknown_type = policy("b@example.com");
    unknown_type["pattern_type"] = json!("UNKNOWN");
    let answer = post_batch(&api, &posts(vec![policy("a@example.com"), unknown_type])).await;
    assert_eq!(answer.status, 400, "{}", answer.text);
    assert_eq!(
        failure_errors(&answer),
        [(
            code::INVALID_FIELD as u64,
            "/posts/1/pattern_type".to_string()
        )]
    );
    assert!(listed(&api).await.as_array().unwrap().is_empty());

    let with = |key: &str, value: Value| {
        let mut p = policy("c@example.com");
        p[key] = value;
        p
    };
    let without = |key: &str| {
        let mut p = policy("c@example.com");
        p.as_object_mut().unwrap().remove(key);
        p
    };
    let valid_uuid = "0b6ad3a1-9d0c-4b53-9f43-6f3c3a1f2e10";
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({ "patches": [], "puts": [], "posts": [] }),
            "/deletes",
        ),
        (
            json!({ "deletes": {}, "patches": [], "puts": [], "posts": [] }),
            "/deletes",
        ),
        (
            posts(vec![with("pattern_type", json!("FOO"))]),
            "/posts/0/pattern_type",
        ),
        (posts(vec![with("pattern", json!(""))]), "/posts/0/pattern"),
        (
            posts(vec![with("pattern", json!("a".repeat(1025)))]),
            "/posts/0/pattern",
        ),
        (
            posts(vec![with("comments", json!("c".repeat(1025)))]),
            "/posts/0/comments",
        ),
        (posts(vec![with("comments", json!(5))]), "/posts/0/comments"),
        (
            posts(vec![with("is_regex", json!("yes"))]),
            "/posts/0/is_regex",
        ),
        (
            posts(vec![without("verify_sender")]),
            "/posts/0/verify_sender",
        ),
        (posts(vec![without("pattern")]), "/posts/0/pattern"),
        (posts(vec![with("colour", json!("red"))]), "/posts/0/colour"),
        (posts(vec![with("id", json!(valid_uuid))]), "/posts/0/id"),
        (posts(vec![json!("not an object")]), "/posts/0"),
        (
            batch(
                json!([]),
                json!([{ "comments": "x" }]),
                json!([]),
                json!([]),
            ),
            "/patches/0/id",
        ),
        (
            batch(
                json!([]),
                json!([{ "id": valid_uuid, "pattern_type": "UNKNOWN" }]),
                json!([]),
                json!([]),
            ),
            "/patches/0/pattern_type",
        ),
        (
            batch(
                json!([]),
                json!([{ "id": valid_uuid, "is_recipient": true }]),
                json!([]),
                json!([]),
            ),
            "/patches/0/is_recipient",
        ),
        (
            batch(
                json!([]),
                json!([]),
                json!([policy("d@example.com")]),
                json!([]),
            ),
            "/puts/0/id",
        ),
        (
            batch(json!([{ "id": "nope" }]), json!([]), json!([]), json!([])),
            "/deletes/0/id",
        ),
        (
            batch(
                json!([{ "id": valid_uuid, "pattern": "x" }]),
                json!([]),
                json!([]),
                json!([]),
            ),
            "/deletes/0/pattern",
        ),
        (
            json!({ "deletes": [], "patches": [], "puts": [], "posts": [], "extra": 1 }),
            "/extra",
        ),
        (
            posts(
                (0..1001)
                    .map(|i| policy(&format!("p{i}@example.com")))
                    .collect(),
            ),
            "/posts",
        ),
    ];
    for (body, pointer) in cases {
        let answer = post_batch(&api, &body).await;
        assert_eq!(answer.status, 400, "{pointer}: {}", answer.text);
        let errors = failure_errors(&answer);
        assert_eq!(
            errors,
            [(code::INVALID_FIELD as u64, pointer.to_string())],
            "{}",
            answer.text
        );
    }

    // Every problem is listed, not only the first.
    let answer = post_batch(
        &api,
        &posts(vec![with("pattern", json!("")), without("is_regex")]),
    )
    .await;
    let pointers: Vec<String> = failure_errors(&answer).into_iter().map(|e| e.1).collect();
    assert_eq!(pointers, ["/posts/0/pattern", "/posts/1/is_regex"]);

    for body in ["{not json", "", "[]", "\u{1}\u{2}"] {
        let answer = send(&api, Method::POST, &batch_path(ACCOUNT), &[BEARER], body).await;
        assert_eq!(answer.status, 400, "{body:?}");
        assert_eq!(failure_errors(&answer)[0].0, code::MALFORMED_BODY as u64);
    }
    assert!(listed(&api).await.as_array().unwrap().is_empty());

    // Limits are inclusive, deprecated booleans still accepted on a create.
    let mut longest = with("pattern", json!("a".repeat(1024)));
    longest["comments"] = json!("é".repeat(1024));
    longest["is_sender"] = json!(true);
    let answer = post_batch(&api, &posts(vec![longest])).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    api.shutdown().await;
}

#[tokio::test]
async fn credentials_are_required_and_a_configured_token_is_enforced() {
    let any = start(None).await;
    let body = posts(vec![]).to_string();
    let path = batch_path(ACCOUNT);
    let cases: [(Headers, u16); 6] = [
        (&[], 401),
        (&[("authorization", "Bearer ")], 401),
        (&[("authorization", "Basic abc")], 401),
        (&[("authorization", "Bearer anything")], 200),
        (&[("x-auth-email", "ops@example.com")], 401),
        (
            &[("x-auth-email", "ops@example.com"), ("x-auth-key", "k")],
            200,
        ),
    ];
    for (headers, status) in cases {
        let answer = send(&any, Method::POST, &path, headers, &body).await;
        assert_eq!(answer.status, status, "{headers:?}: {}", answer.text);
        if status == 401 {
            assert_eq!(
                failure_errors(&answer),
                [(code::AUTHENTICATION as u64, String::new())]
            );
            assert_eq!(answer.json["errors"][0]["message"], "Authentication error");
        }
    }
    any.shutdown().await;

    let strict = start(Some(TOKEN)).await;
    let cases: [(Headers, u16); 4] = [
        (&[("authorization", "Bearer anything")], 401),
        (
            &[("x-auth-email", "ops@example.com"), ("x-auth-key", TOKEN)],
            401,
        ),
        (&[BEARER], 200),
        (&[("authorization", "bearer fake-api-test-token-5e1d")], 200),
    ];
    for (headers, status) in cases {
        let answer = send(&strict, Method::POST, &path, headers, &body).await;
        assert_eq!(answer.status, status, "{headers:?}");
        let answer = send(&strict, Method::GET, &list_path(ACCOUNT, ""), headers, "").await;
        assert_eq!(answer.status, status, "list {headers:?}");
    }
    assert!(strict.policies(ACCOUNT).is_empty());
    strict.shutdown().await;
}

#[tokio::test]
async fn bad_account_ids_unknown_routes_and_wrong_methods() {
    let api = start(Some(TOKEN)).await;
    for account in [
        "023E105F4ECEF8AD9CA31A8372D0C353",
        "023e105f",
        "023e105f4ecef8ad9ca31a8372d0c353aa",
        "zz3e105f4ecef8ad9ca31a8372d0c353",
        "",
    ] {
        let answer = send(
            &api,
            Method::POST,
            &batch_path(account),
            &[BEARER],
            &posts(vec![]).to_string(),
        )
        .await;
        assert_eq!(answer.status, 400, "{account:?}");
        assert_eq!(
            failure_errors(&answer),
            [(code::INVALID_ACCOUNT_ID as u64, String::new())]
        );
        let answer = send(&api, Method::GET, &list_path(account, ""), &[BEARER], "").await;
        assert_eq!(answer.status, 400, "{account:?}");
    }

    for path in [
        "/".to_string(),
        "/client/v4".to_string(),
        format!("/client/v4/accounts/{ACCOUNT}/email-security/settings/block_senders"),
        format!("/client/v4/accounts/{ACCOUNT}/email-security/settings/allow_policies/1"),
        format!("/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch"),
    ] {
        let answer = send(&api, Method::GET, &path, &[BEARER], "").await;
        assert_eq!(answer.status, 404, "{path}");
        assert_eq!(
            failure_errors(&answer),
            [(code::NO_ROUTE as u64, String::new())]
        );
    }

    let answer = send(&api, Method::GET, &batch_path(ACCOUNT), &[BEARER], "").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.headers["allow"], "POST");
    assert_eq!(
        failure_errors(&answer),
        [(code::METHOD_NOT_ALLOWED as u64, String::new())]
    );
    let answer = send(&api, Method::DELETE, &list_path(ACCOUNT, ""), &[BEARER], "").await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.headers["allow"], "GET");

    // Everything above reached the fake and was counted.
    assert_eq!(api.requests(), 5 * 2 + 5 + 2);
    api.shutdown().await;
}

#[tokio::test]
async fn the_list_is_paginated_in_creation_order() {
    let api = start(Some(TOKEN)).await;
    let items = (0..45)
        .map(|i| policy(&format!("p{i:02}@example.com")))
        .collect();
    let answer = post_batch(&api, &posts(items)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let page = |answer: &Answer| -> Vec<String> {
        assert_eq!(answer.status, 200, "{}", answer.text);
        assert_eq!(answer.json["success"], true);
        answer.json["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["pattern"].as_str().unwrap().to_string())
            .collect()
    };
    let first = list(&api, "").await;
    let expected: Vec<String> = (0..20).map(|i| format!("p{i:02}@example.com")).collect();
    assert_eq!(page(&first), expected);
    assert_eq!(
        first.json["result_info"],
        json!({ "page": 1, "per_page": 20, "count": 20, "total_count": 45, "total_pages": 3 })
    );

    let third = list(&api, "?page=3&per_page=20").await;
    let expected: Vec<String> = (40..45).map(|i| format!("p{i:02}@example.com")).collect();
    assert_eq!(page(&third), expected);
    assert_eq!(
        third.json["result_info"],
        json!({ "page": 3, "per_page": 20, "count": 5, "total_count": 45, "total_pages": 3 })
    );

    let past = list(&api, "?page=9&per_page=20").await;
    assert!(page(&past).is_empty());
    assert_eq!(past.json["result_info"]["count"], 0);

    let second = list(&api, "?per_page=7&page=2&order=pattern").await;
    let expected: Vec<String> = (7..14).map(|i| format!("p{i:02}@example.com")).collect();
    assert_eq!(page(&second), expected);
    assert_eq!(second.json["result_info"]["total_pages"], 7);

    let all = list(&api, "?per_page=100").await;
    assert_eq!(page(&all).len(), 45);
    assert_eq!(
        all.json["result"],
        Value::Array(api.policies(ACCOUNT)),
        "the list shows the state as it is"
    );

    for (query, parameter) in [
        ("?per_page=0", "per_page"),
        ("?per_page=101", "per_page"),
        ("?per_page=ten", "per_page"),
        ("?page=0", "page"),
        ("?page=-1", "page"),
    ] {
        let answer = list(&api, query).await;
        assert_eq!(answer.status, 400, "{query}");
        assert_eq!(failure_errors(&answer)[0].0, code::INVALID_PARAMETER as u64);
        assert_eq!(answer.json["errors"][0]["source"]["parameter"], parameter);
    }

    let empty = send(
        &api,
        Method::GET,
        &list_path(OTHER_ACCOUNT, ""),
        &[BEARER],
        "",
    )
    .await;
    assert_eq!(empty.json["result"], json!([]));
    assert_eq!(empty.json["result_info"]["total_count"], 0);
    assert_eq!(empty.json["result_info"]["total_pages"], 0);
    api.shutdown().await;
}

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
async fn seeded_policies_allow_integer_ids_and_unknown_pattern_types() {
    // Legacy ids on, so that the batch below may name the integer id.
    let api = start_with(Some(TOKEN), true).await;
    let mut legacy = policy("old@example.com");
    legacy["id"] = json!(2401);
    let mut unknown = policy("odd");
    unknown["id"] = json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415");
    unknown["pattern_type"] = json!("UNKNOWN");
    let seeded = api
        .seed(ACCOUNT, vec![legacy, unknown, policy("fresh@example.com")])
        .unwrap();
    assert_eq!(seeded.len(), 3);
    assert_eq!(seeded[0]["id"], 2401);
    assert_uuid_v4(&seeded[2]["id"]);
    assert_timestamp(&seeded[0]["created_at"]);
    assert_eq!(listed(&api).await, Value::Array(seeded.clone()));

    let answer = post_batch(
        &api,
        &batch(
            json!([{ "id": 2401 }]),
            json!([{ "id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415", "verify_sender": false }]),
            json!([]),
            json!([]),
        ),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["result"]["deletes"], json!([{ "id": 2401 }]));
    let patched = &answer.json["result"]["patches"][0];
    assert_eq!(patched["id"], "F174E90A-FAFE-4643-BBBC-4A0ED4FC8415");
    assert_eq!(patched["pattern_type"], "UNKNOWN");
    assert_eq!(patched["verify_sender"], false);

    // All or nothing, and never a second policy with the same id.
    let mut duplicate = policy("dup@example.com");
    duplicate["id"] = seeded[2]["id"].clone();
    assert!(api
        .seed(ACCOUNT, vec![policy("ok@example.com"), duplicate])
        .is_err());
    let mut bad = policy("bad@example.com");
    bad["pattern"] = json!("");
    let error = api.seed(ACCOUNT, vec![bad]).unwrap_err();
    assert!(error.to_string().contains("/0/pattern"), "{error}");
    assert!(api.seed("not-an-account", vec![]).is_err());
    assert_eq!(api.policies(ACCOUNT).len(), 2);
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
