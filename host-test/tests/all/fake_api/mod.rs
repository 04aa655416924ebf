//! The fake allow-policies API over real loopback HTTP, as the component and
//! the end-to-end tests see it. This module holds the client side the
//! tests share; the tests are in its submodules, by topic.

mod counts;
mod policies;
mod queued_faults;
mod requests;
mod seeding;
mod server;
mod validation;

use std::sync::OnceLock;

use host_test::fake_api::{code, FakeApi, FakeApiOptions};
use http::Method;
use jsonschema::Validator;
use serde_json::{json, Value};

use crate::support::loopback_http::{connect, send_on, Answer, Headers};
use crate::support::{self, post, published_schema, with_fields, ACCOUNT};

const OTHER_ACCOUNT: &str = "ffffffffffffffffffffffffffffffff";
const TOKEN: &str = "fake-api-test-token-5e1d";

async fn start(token: Option<&str>) -> FakeApi {
    support::fake_api(token).await
}

/// A fake that, with `legacy_ids`, also takes the older API's integer ids.
async fn start_with(token: Option<&str>, legacy_ids: bool) -> FakeApi {
    FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_string),
        legacy_ids,
        seed: None,
        ..FakeApiOptions::default()
    })
    .await
    .expect("the fake starts on loopback")
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
        .filter(|e| !published_schema::is_integer_id(&answer.json, e.instance_path().as_str()))
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
    with_fields(post(pattern), json!({"comments": "created by a test"}))
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
