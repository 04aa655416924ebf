//! Parameters written to break the task: injection through credentials, the
//! account id and the base URL, and documents built to exhaust memory. Each
//! is refused with a pointer before anything is sent (a server on 127.0.0.1
//! that the config points at, and the host allows, counts what reaches it),
//! never echoes a credential, and leaves the host serving the next task.

use crate::support::documents::Checked;
use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{assert_no_secret, host, TempDir, ACCOUNT};
use host_test::{error_to_json, AllowedHost, TaskOptions, CACHE_DIR_ENV};
use serde_json::{json, Value};

const TOKEN: &str = "cf-HOSTILE-TOKEN-must-not-leak-0c4e";
const KEY: &str = "cf-HOSTILE-KEY-must-not-leak-a81f";
const PASSWORD: &str = "url-PASSWORD-must-not-leak-66d2";
/// Every secret the tests plant; none may come back.
const SECRETS: &[&str] = &[TOKEN, KEY, PASSWORD];

async fn server() -> MisbehavingServer {
    let ok = r#"{"success":true,"errors":[],"messages":[],"result":{}}"#;
    MisbehavingServer::start(vec![Script::Reply(response(
        "200 OK",
        &[("Content-Type", "application/json")],
        ok,
    ))])
    .await
}

fn options(server: &MisbehavingServer) -> TaskOptions {
    TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap())
}

fn one_delete() -> Value {
    json!({"account_id": ACCOUNT, "deletes": [{"id": 1}]})
}

/// Runs a task that must be refused: returns the error document after
/// checking that nothing reached the server and nothing leaked.
async fn refused(server: &MisbehavingServer, config: &str, input: &str) -> Value {
    let outcome = host()
        .run_task(&options(server), config, input)
        .await
        .checked()
        .expect("the host completes the call");
    let err = match outcome {
        Ok(out) => panic!("expected a refusal, got {out}"),
        Err(e) => {
            assert_no_secret(&format!("{e:?}"), SECRETS);
            error_to_json(&e)
        }
    };
    assert_no_secret(&err.to_string(), SECRETS);
    assert_eq!(server.received().len(), 0, "something was sent: {err}");
    assert_eq!(
        (
            &err["retryable"],
            &err["may_have_applied"],
            &err["attempts"]
        ),
        (&json!(false), &json!(false), &json!(0)),
        "{err}"
    );
    still_serving(server).await;
    err
}

/// The same host runs a valid task right after.
async fn still_serving(server: &MisbehavingServer) {
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    let out = host()
        .prepare(&options(server), &config, &one_delete().to_string())
        .await
        .checked()
        .unwrap()
        .expect("a valid task after a hostile one");
    assert!(out.contains("\"dry_run\":true"), "{out}");
}

fn pointers(err: &Value) -> Vec<(String, String)> {
    err["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["document"].as_str().unwrap().to_owned(),
                e["pointer"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn at(document: &str, pointer: &str) -> Vec<(String, String)> {
    vec![(document.to_owned(), pointer.to_owned())]
}

#[tokio::test]
async fn line_breaks_in_credentials_cannot_inject_headers() {
    let server = server().await;
    for bad in ["\r\nX-Injected: 1", "\nX-Injected: 1", "\r", "\0", "\u{7f}"] {
        let config = json!({"api_token": format!("{TOKEN}{bad}"), "base_url": server.base_url()});
        let err = refused(&server, &config.to_string(), &one_delete().to_string()).await;
        assert_eq!(err["kind"], "invalid_config");
        assert_eq!(pointers(&err), at("config", "/api_token"), "{bad:?}: {err}");

        let config = json!({"api_email": "ops@example.com", "api_key": format!("{KEY}{bad}"),
                            "base_url": server.base_url()});
        let err = refused(&server, &config.to_string(), &one_delete().to_string()).await;
        assert_eq!(pointers(&err), at("config", "/api_key"), "{bad:?}: {err}");
    }
}

#[tokio::test]
async fn the_account_id_cannot_change_the_url() {
    let server = server().await;
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    for bad in [
        "../../zones",
        "023e105f4ecef8ad9ca31a8372d0c353/../../user",
        "023e105f4ecef8ad9ca31a8372d0c353?x=1",
        "023e105f4ecef8ad9ca31a8372d0c353#x",
        "%2e%2e%2f%2e%2e",
        "023e105f4ecef8ad9ca31a8372d0c35 ",
        "023e105f4ecef8ad9ca31a8372d0c35\n",
        "023E105F4ECEF8AD9CA31A8372D0C353",
        "",
    ] {
        let input = json!({"account_id": bad, "deletes": [{"id": 1}]}).to_string();
        let err = refused(&server, &config, &input).await;
        assert_eq!(err["kind"], "invalid_input", "{bad:?}");
        assert_eq!(pointers(&err), at("input", "/account_id"), "{bad:?}: {err}");

        let config = json!({"api_token": TOKEN, "base_url": server.base_url(), "account_id": bad});
        let input = json!({"deletes": [{"id": 1}]}).to_string();
        let err = refused(&server, &config.to_string(), &input).await;
        assert_eq!(
            pointers(&err),
            at("config", "/account_id"),
            "{bad:?}: {err}"
        );
    }
}

#[tokio::test]
async fn base_urls_that_could_send_elsewhere_or_in_the_clear_are_refused() {
    let server = server().await;
    let port = server.port();
    for bad in [
        // Plain HTTP beyond loopback.
        "http://api.cloudflare.com/client/v4".to_owned(),
        "http://127.0.0.1.nip.io/client/v4".to_owned(),
        "http://10.0.0.1/client/v4".to_owned(),
        // Credentials in the URL.
        format!("http://user:{PASSWORD}@127.0.0.1:{port}/client/v4"),
        format!("https://{PASSWORD}@api.cloudflare.com/client/v4"),
        // A query, a fragment, encoded separators, a line break.
        format!("http://127.0.0.1:{port}/client/v4?x=1"),
        format!("http://127.0.0.1:{port}/client/v4#x"),
        format!("http://127.0.0.1:{port}/client/%2e%2e/v4"),
        format!("http://127.0.0.1:{port}/client/v4\r\nHost: evil"),
        "ftp://api.cloudflare.com/client/v4".to_owned(),
    ] {
        let config = json!({"api_token": TOKEN, "base_url": bad}).to_string();
        let err = refused(&server, &config, &one_delete().to_string()).await;
        assert_eq!(err["kind"], "invalid_config", "{bad:?}");
        assert_eq!(pointers(&err), at("config", "/base_url"), "{bad:?}: {err}");
    }
}

#[tokio::test]
async fn an_input_larger_than_any_batch_is_refused_before_parsing() {
    let server = server().await;
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    let filler = "x".repeat(33 * 1024 * 1024);
    let input = json!({"account_id": ACCOUNT, "deletes": [], "comments": filler}).to_string();
    let err = refused(&server, &config, &input).await;
    assert_eq!(err["kind"], "invalid_input");
    assert_eq!(pointers(&err), at("input", ""));
    assert!(
        err["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too large"),
        "{err}"
    );
}

#[tokio::test]
async fn a_document_of_millions_of_tiny_values_is_refused_before_parsing() {
    // Two bytes a value in the text, tens of bytes each once parsed.
    let server = server().await;
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    let input = format!(
        r#"{{"account_id":"{ACCOUNT}","deletes":[{}0]}}"#,
        "0,".repeat(4_000_000)
    );
    let err = refused(&server, &config, &input).await;
    assert_eq!(pointers(&err), at("input", ""));
}

#[tokio::test]
async fn thousands_of_bad_items_give_the_first_thousand_problems_and_a_count() {
    let server = server().await;
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    let deletes: Vec<Value> = (0..5000).map(|_| json!({"id": "nope"})).collect();
    let input = json!({"account_id": ACCOUNT, "deletes": deletes}).to_string();
    let err = refused(&server, &config, &input).await;
    let problems = pointers(&err);
    assert_eq!(problems.len(), 1001, "{:?}", &problems[..3]);
    // The array's own problem comes first, then its items in order.
    assert_eq!(problems[0], ("input".to_owned(), "/deletes".to_owned()));
    assert_eq!(
        problems[1],
        ("input".to_owned(), "/deletes/0/id".to_owned())
    );
    assert_eq!(problems[1000], ("input".to_owned(), String::new()));
    let last = err["errors"][1000]["message"].as_str().unwrap();
    assert!(last.starts_with("4001 more problems not listed"), "{last}");
}

#[tokio::test]
async fn deep_nesting_is_invalid_json_not_a_crash() {
    let server = server().await;
    let config = json!({"api_token": TOKEN, "base_url": server.base_url()}).to_string();
    let input = format!(
        r#"{{"account_id":"{ACCOUNT}","deletes":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let err = refused(&server, &config, &input).await;
    assert_eq!(pointers(&err), at("input", ""));
}

#[test]
fn the_command_line_refuses_the_same_way_and_prints_no_secret() {
    let dir = TempDir::new("hostile");
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    std::fs::write(
        &config,
        json!({"api_email": "ops@example.com", "api_key": format!("{KEY}\r\nX: 1"),
               "base_url": format!("http://u:{PASSWORD}@api.cloudflare.com/client/v4")})
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        &input,
        json!({"account_id": "../../user", "deletes": [{"id": 1}]}).to_string(),
    )
    .unwrap();
    let out = crate::support::task_host_command()
        .args(["run", "--config"])
        .arg(&config)
        .arg("--input")
        .arg(&input)
        .env(CACHE_DIR_ENV, dir.path())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    drop(dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_no_secret(&stdout, SECRETS);
    assert_no_secret(&stderr, SECRETS);
    let doc: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        pointers(&doc["error"]),
        [
            ("config".to_owned(), "/api_key".to_owned()),
            ("config".to_owned(), "/base_url".to_owned()),
            ("input".to_owned(), "/account_id".to_owned()),
        ]
    );
}
