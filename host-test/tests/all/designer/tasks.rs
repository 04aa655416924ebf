//! What the page asks of the component, on the embedded fake's sandbox
//! account: previews, field errors, sending once and only when confirmed,
//! exporting; and that the page cannot send elsewhere.

use serde_json::{json, Value};

use super::{assert_no_hex_secret, example_task, start_fake, Browser};
use crate::support::{read_example, ACCOUNT};

#[tokio::test]
async fn the_session_names_the_embedded_fake_and_its_sandbox_account() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let session = browser.get("/api/session").await.json;
    let fake = designer.fake().unwrap();
    assert_eq!(session["mode"], "fake");
    assert_eq!(session["credentials"], "sandbox");
    assert_eq!(session["sandbox_account"], ACCOUNT);
    assert_eq!(session["fake_base_url"], fake.base_url());
    assert_eq!(
        session["target"],
        format!("embedded fake Cloudflare API at {}", fake.base_url())
    );
    assert_eq!(
        fake.policies(ACCOUNT).len(),
        3,
        "seeded from examples/seed.json"
    );
    assert!(designer.banner().contains(&designer.address()));
    assert!(designer.banner().contains(ACCOUNT));

    let answer = browser.get("/api/describe").await;
    for part in ["config", "input", "output"] {
        assert!(answer.json[part].is_object(), "{part}");
    }
    // The members keep the component's order, which is the form's: a new
    // policy starts with its pattern, not with the alphabet's "comments".
    let create = &answer.text[answer.text.find(r#""create":"#).unwrap()..];
    assert!(
        create.find(r#""pattern":"#).unwrap() < create.find(r#""comments":"#).unwrap(),
        "describe's members were reordered"
    );
    let examples = browser.get("/api/examples").await.json;
    let names: Vec<&str> = examples["examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["batch", "sync"]);
    for example in examples["examples"].as_array().unwrap() {
        let config = example["config"].as_object().unwrap();
        for key in ["base_url", "api_token", "api_key", "api_email"] {
            assert!(!config.contains_key(key), "{key} in {example}");
        }
        assert_eq!(config["account_id"], ACCOUNT);
    }
    assert_eq!(examples["examples"][0]["input"], read_example("batch.json"));
    assert_eq!(examples["examples"][1]["input"], read_example("sync.json"));
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}

#[tokio::test]
async fn prepare_shows_the_request_to_the_fake_with_credentials_redacted() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let answer = browser
        .post("/api/prepare", &example_task("batch.json"))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["ok"], true, "{}", answer.text);
    assert_eq!(answer.json["wrote"], false);
    assert_eq!(
        answer.json["overridden"],
        json!(["/base_url"]),
        "examples/config.json names it"
    );
    let request = &answer.json["document"]["request"];
    let fake = designer.fake().unwrap();
    assert_eq!(
        request["url"],
        format!(
            "{}/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch",
            fake.base_url()
        )
    );
    assert_eq!(
        request["headers"]["Authorization"], "[redacted]",
        "{request}"
    );
    assert_eq!(fake.batches_applied(), 0, "a preview sends nothing");
    assert_eq!(fake.policies(ACCOUNT).len(), 3);
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}

#[tokio::test]
async fn invalid_input_gives_each_problem_with_its_pointer() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let mut task = example_task("batch.json");
    task["input"]["posts"][1]["pattern_type"] = json!("HOSTNAME");
    task["config"]["timeout_ms"] = json!(0);
    let answer = browser.post("/api/prepare", &task).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["ok"], false);
    let error = &answer.json["error"];
    assert!(
        ["invalid_input", "invalid_config"].contains(&error["kind"].as_str().unwrap()),
        "{error}"
    );
    let places: Vec<(String, String)> = error["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["document"].as_str().unwrap().into(),
                e["pointer"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        places.contains(&("input".into(), "/posts/1/pattern_type".into())),
        "{places:?}"
    );
    assert!(
        places.contains(&("config".into(), "/timeout_ms".into())),
        "{places:?}"
    );
    let send = browser
        .post(
            "/api/send",
            &json!({"config": task["config"], "input": task["input"], "confirm_account": ACCOUNT}),
        )
        .await;
    assert_eq!(send.json["ok"], false);
    assert_eq!(send.json["wrote"], false);
    assert_eq!(designer.fake().unwrap().requests(), 0);
    designer.shutdown().await;
}

#[tokio::test]
async fn send_needs_the_account_confirmed_and_applies_the_batch_once() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let fake = designer.fake().unwrap();
    let task = example_task("batch.json");
    for confirm in [
        Value::Null,
        json!("0123456789abcdef0123456789abcdef"),
        json!(7),
    ] {
        let mut body = task.clone();
        if !confirm.is_null() {
            body["confirm_account"] = confirm.clone();
        }
        let answer = browser.post("/api/send", &body).await;
        assert_eq!(answer.status, 400, "{confirm}: {}", answer.text);
        assert_eq!(answer.json["error"]["kind"], "not-confirmed");
    }
    assert_eq!(fake.requests(), 0, "nothing sent before confirming");

    let mut body = task.clone();
    body["confirm_account"] = json!(ACCOUNT);
    let answer = browser.post("/api/send", &body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json["ok"], true, "{}", answer.text);
    assert_eq!(answer.json["wrote"], true);
    assert_eq!(answer.json["document"]["success"], true);
    assert_eq!(answer.json["document"]["attempts"], 1);
    assert_eq!(fake.batches_applied(), 1);
    let patterns: Vec<String> = fake
        .policies(ACCOUNT)
        .iter()
        .map(|p| p["pattern"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !patterns.contains(&"old-newsletter.example".to_string()),
        "deleted: {patterns:?}"
    );
    for created in [
        "alerts@monitoring.example.com",
        "8.8.8.0/24",
        "payroll-provider.example",
    ] {
        assert!(
            patterns.contains(&created.to_string()),
            "{created}: {patterns:?}"
        );
    }
    assert_eq!(patterns.len(), 5);
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}

/// The page's base_url and credentials are replaced: a task it sends goes
/// to the target, whatever the page said.
#[tokio::test]
async fn the_page_cannot_send_elsewhere_or_with_other_credentials() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let elsewhere = crate::support::fake_api(None).await;
    let mut task = example_task("batch.json");
    task["config"]["base_url"] = json!(elsewhere.base_url());
    task["config"]["api_token"] = json!("Pt5Kx9Wm2Zq7Rv4Jn8Lc");
    task["config"]["api_email"] = json!("someone@example.com");
    task["confirm_account"] = json!(ACCOUNT);
    let answer = browser.post("/api/send", &task).await;
    assert_eq!(answer.json["ok"], true, "{}", answer.text);
    let mut overridden: Vec<&str> = answer.json["overridden"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    overridden.sort();
    assert_eq!(overridden, ["/api_email", "/api_token", "/base_url"]);
    assert_eq!(elsewhere.requests(), 0, "nothing went where the page said");
    assert_eq!(designer.fake().unwrap().batches_applied(), 1);
    designer.shutdown().await;
}

/// `examples/sync.json` names the sandbox account. Its plan deletes all
/// three seeded policies, so the component's guard stops it, pointing at
/// the member that allows it; allowed, it leaves exactly its three.
#[tokio::test]
async fn the_sync_example_plans_on_the_sandbox_account() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let mut task = example_task("sync.json");
    let guarded = browser.post("/api/prepare", &task).await;
    assert_eq!(guarded.json["ok"], false, "{}", guarded.text);
    assert_eq!(
        guarded.json["error"]["errors"][0]["pointer"], "/sync/allow_deleting_most",
        "{}",
        guarded.text
    );
    task["input"]["sync"]["allow_deleting_most"] = json!(true);
    let preview = browser.post("/api/prepare", &task).await;
    assert_eq!(preview.json["ok"], true, "{}", preview.text);
    assert!(
        preview.json["document"]["plan"].is_object(),
        "{}",
        preview.text
    );
    assert_eq!(designer.fake().unwrap().batches_applied(), 0);
    let mut body = task.clone();
    body["confirm_account"] = json!(ACCOUNT);
    let sent = browser.post("/api/send", &body).await;
    assert_eq!(sent.json["ok"], true, "{}", sent.text);
    assert_eq!(sent.json["wrote"], true);
    let mut patterns: Vec<String> = designer
        .fake()
        .unwrap()
        .policies(ACCOUNT)
        .iter()
        .map(|p| p["pattern"].as_str().unwrap().to_string())
        .collect();
    patterns.sort();
    assert_eq!(
        patterns,
        [
            "8.8.8.0/24",
            "alerts@monitoring.example.com",
            "payroll-provider.example"
        ]
    );
    designer.shutdown().await;
}

/// "Start from the account": the sandbox's policies as a sync input, read
/// with GET requests only.
#[tokio::test]
async fn export_returns_the_account_as_a_sync_input() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let config = read_example("config.json");
    let answer = browser
        .post(
            "/api/export",
            &json!({"config": config, "input": {"account_id": ACCOUNT}}),
        )
        .await;
    assert_eq!(answer.json["ok"], true, "{}", answer.text);
    assert_eq!(answer.json["wrote"], false);
    let document = &answer.json["document"];
    assert_eq!(document["account_id"], ACCOUNT);
    assert_eq!(document["sync"]["delete_unlisted"], false);
    let policies = document["sync"]["policies"].as_array().unwrap();
    assert_eq!(policies.len(), 3);
    assert!(policies.iter().all(|p| p["id"].is_string()));
    // The config's account when the input is left out.
    let from_config = browser
        .post("/api/export", &json!({"config": config}))
        .await;
    assert_eq!(from_config.json["document"], *document);
    assert_eq!(designer.fake().unwrap().batches_applied(), 0);
    // What export printed is an input prepare takes.
    let again = browser
        .post(
            "/api/prepare",
            &json!({"config": config, "input": document}),
        )
        .await;
    assert_eq!(again.json["ok"], true, "{}", again.text);
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}

#[tokio::test]
async fn the_fake_takes_no_credentials_from_the_page() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let answer = browser
        .post(
            "/api/credentials",
            &json!({"api_token": "a-token-for-the-fake-0123"}),
        )
        .await;
    assert_eq!(answer.status, 409);
    assert_eq!(answer.json["error"]["kind"], "not-live");
    assert_eq!(
        browser.get("/api/session").await.json["credentials"],
        "sandbox"
    );
    designer.shutdown().await;
}
