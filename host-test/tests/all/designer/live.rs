//! `--live`: the session says Cloudflare and where the credentials came
//! from; the page's credentials are kept, never shown. These tests send
//! nothing: they ask only for the session and for previews of batches,
//! which the host lets no request out of.

use serde_json::json;

use super::{assert_no_hex_secret, example_task, start, Browser};
use crate::support::{assert_no_secret, ACCOUNT};
use host_test::designer::{Mode, CLOUDFLARE_BASE_URL};

const FORM_TOKEN: &str = "Fq7xTz2Lm9Kw4Rv8Bn3Y";
const FORM_KEY: &str = "Gk5Jh8Wq2Zx7Vc4Np9Ld";
const ENVIRONMENT_TOKEN: &str = "Ev3Tk9Qm6Wz2Hx8Jr5Ls";

#[tokio::test]
async fn live_without_credentials_says_missing_and_still_previews() {
    let designer = start(Mode::Live {
        environment_token: None,
    })
    .await;
    assert!(designer.fake().is_none());
    assert!(designer.banner().contains("live"), "{}", designer.banner());
    let browser = Browser::open(&designer).await;
    let session = browser.get("/api/session").await.json;
    assert_eq!(session["mode"], "live");
    assert_eq!(session["credentials"], "missing");
    assert_eq!(session["sandbox_account"], json!(null));
    assert_eq!(session["fake_base_url"], json!(null));
    assert_eq!(
        session["target"],
        format!("Cloudflare ({CLOUDFLARE_BASE_URL})")
    );

    let answer = browser
        .post("/api/prepare", &example_task("batch.json"))
        .await;
    assert_eq!(answer.json["ok"], true, "{}", answer.text);
    let request = &answer.json["document"]["request"];
    assert_eq!(
        request["url"],
        format!(
            "{CLOUDFLARE_BASE_URL}/accounts/{ACCOUNT}/email-security/settings/allow_policies/batch"
        )
    );
    assert_eq!(request["headers"]["Authorization"], "[redacted]");
    assert!(!answer.text.contains("placeholder"), "{}", answer.text);
    designer.shutdown().await;
}

#[tokio::test]
async fn credentials_from_the_form_are_kept_and_never_shown() {
    let designer = start(Mode::Live {
        environment_token: Some(ENVIRONMENT_TOKEN.into()),
    })
    .await;
    let browser = Browser::open(&designer).await;
    assert_eq!(
        browser.get("/api/session").await.json["credentials"],
        "from-environment"
    );

    // Refused shapes name their member.
    for (body, pointer) in [
        (json!({}), ""),
        (json!({"api_token": 12345678}), "/api_token"),
        (json!({"api_token": "short"}), "/api_token"),
        (
            json!({"api_token": FORM_TOKEN, "base_url": "https://evil.example"}),
            "/base_url",
        ),
        (json!({"api_email": "someone@example.com"}), ""),
    ] {
        let answer = browser.post("/api/credentials", &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.text);
        let pointers: Vec<&str> = answer.json["error"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["pointer"].as_str().unwrap())
            .collect();
        assert!(pointers.contains(&pointer), "{body}: {pointers:?}");
    }
    assert_eq!(
        browser.get("/api/session").await.json["credentials"],
        "from-environment"
    );

    let answer = browser
        .post("/api/credentials", &json!({"api_token": FORM_TOKEN}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json, json!({"credentials": "from-form"}));
    assert_eq!(
        browser.get("/api/session").await.json["credentials"],
        "from-form"
    );
    let mut task = example_task("batch.json");
    // A page that puts the token into the task sees it redacted.
    task["input"]["posts"][0]["comments"] = json!(format!("token {FORM_TOKEN}"));
    let preview = browser.post("/api/prepare", &task).await;
    assert_eq!(preview.json["ok"], true, "{}", preview.text);
    assert_eq!(
        preview.json["document"]["request"]["headers"]["Authorization"],
        "[redacted]"
    );
    let snippets = browser.post("/api/snippets", &task).await;
    assert_eq!(snippets.status, 200);

    let legacy = browser
        .post(
            "/api/credentials",
            &json!({"api_email": "someone@example.com", "api_key": FORM_KEY}),
        )
        .await;
    assert_eq!(legacy.json, json!({"credentials": "from-form"}));
    let preview = browser
        .post("/api/prepare", &example_task("batch.json"))
        .await;
    assert_eq!(preview.json["ok"], true, "{}", preview.text);
    assert_eq!(
        preview.json["document"]["request"]["headers"]["X-Auth-Key"],
        "[redacted]"
    );

    let seen = browser.seen();
    assert_no_secret(&seen, &[FORM_TOKEN, FORM_KEY, ENVIRONMENT_TOKEN]);
    assert_no_hex_secret(&seen);
    designer.shutdown().await;
}
