use super::*;
use crate::config::parse_config;
use crate::params::problems::Report;
use crate::params::validator::parse_input;
use serde_json::{json, Value};

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-SECRET-5f2c9a";

fn config(v: Value) -> Config {
    let mut r = Report::default();
    parse_config(&v, &mut r).unwrap_or_else(|| panic!("{:?}", r.errors))
}

fn batch(v: Value) -> BatchBody {
    let mut r = Report::default();
    parse_input(&v, &mut r)
        .unwrap_or_else(|| panic!("{:?}", r.errors))
        .body
}

fn header<'a>(req: &'a ApiRequest, name: &str) -> Option<&'a str> {
    req.headers
        .iter()
        .find(|h| h.name == name)
        .map(|h| h.value.as_str())
}

#[test]
fn url_and_headers_with_a_token() {
    let req = build_request(
        &config(json!({"api_token": TOKEN})),
        ACCOUNT,
        &BatchBody::default(),
    );
    assert_eq!(
        req.url,
        "https://api.cloudflare.com/client/v4/accounts/0123456789abcdef0123456789abcdef/email-security/settings/allow_policies/batch"
    );
    let names: Vec<&str> = req.headers.iter().map(|h| h.name).collect();
    assert_eq!(
        names,
        ["content-type", "accept", "user-agent", "authorization"]
    );
    assert_eq!(header(&req, "content-type"), Some("application/json"));
    assert_eq!(header(&req, "accept"), Some("application/json"));
    assert_eq!(
        header(&req, "user-agent"),
        Some(format!("allow-policies-batch/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    assert_eq!(
        header(&req, "authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        req.body,
        r#"{"deletes":[],"patches":[],"puts":[],"posts":[]}"#
    );
}

#[test]
fn legacy_key_headers_and_custom_base_url() {
    let c = config(
        json!({"api_email": "ops@example.com", "api_key": "LEGACY-KEY-1", "base_url": "http://127.0.0.1:9/v4/"}),
    );
    let req = build_request(&c, ACCOUNT, &BatchBody::default());
    assert!(req.url.starts_with("http://127.0.0.1:9/v4/accounts/0123"));
    assert_eq!(header(&req, "x-auth-email"), Some("ops@example.com"));
    assert_eq!(header(&req, "x-auth-key"), Some("LEGACY-KEY-1"));
    assert_eq!(header(&req, "authorization"), None);
}

#[test]
fn golden_body_for_a_mixed_batch() {
    let body = batch(json!({
        "deletes": [{"id": 2401}, {"id": "f174e90a-fafe-4643-bbbc-4a0ed4fc8415"}],
        "patches": [
            {"id": 17, "comments": null},
            {"id": 18, "is_sender": true, "verify_sender": false, "pattern": "Example.org", "pattern_type": "DOMAIN"}
        ],
        "puts": [{
            "verify_sender": true, "id": 19, "pattern_type": "IP", "pattern": "8.8.8.0/24",
            "is_regex": false, "is_trusted_sender": false, "is_exempt_recipient": false,
            "is_acceptable_sender": true, "comments": "office NAT", "is_spoof": true
        }],
        "posts": [
            {"pattern": ".*@partner\\.example", "pattern_type": "EMAIL", "is_regex": true,
             "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
             "verify_sender": true},
            {"pattern": "billing@vendor.example", "pattern_type": "EMAIL", "is_regex": false,
             "is_exempt_recipient": true, "is_trusted_sender": false, "is_acceptable_sender": false,
             "verify_sender": false, "comments": null}
        ]
    }));
    let req = build_request(&config(json!({"api_token": TOKEN})), ACCOUNT, &body);
    let expected = concat!(
        r#"{"deletes":[{"id":2401},{"id":"f174e90a-fafe-4643-bbbc-4a0ed4fc8415"}],"#,
        r#""patches":[{"id":17,"comments":null},"#,
        r#"{"id":18,"pattern":"Example.org","pattern_type":"DOMAIN","is_trusted_sender":true,"verify_sender":false}],"#,
        r#""puts":[{"id":19,"pattern":"8.8.8.0/24","pattern_type":"IP","is_regex":false,"is_exempt_recipient":false,"is_trusted_sender":false,"is_acceptable_sender":true,"verify_sender":true,"comments":"office NAT"}],"#,
        r#""posts":[{"pattern":".*@partner\\.example","pattern_type":"EMAIL","is_regex":true,"is_exempt_recipient":false,"is_trusted_sender":true,"is_acceptable_sender":false,"verify_sender":true},"#,
        r#"{"pattern":"billing@vendor.example","pattern_type":"EMAIL","is_regex":false,"is_exempt_recipient":true,"is_trusted_sender":false,"is_acceptable_sender":false,"verify_sender":false,"comments":null}]}"#
    );
    assert_eq!(req.body, expected);
}

/// The largest batch the API takes: 1000 of each. The expected text is
/// written out by hand here, not by the serialiser under test.
#[test]
fn golden_body_for_the_maximum_batch() {
    let n = 1000;
    let input = json!({
        "deletes": (1..=n).map(|i| json!({"id": i})).collect::<Vec<_>>(),
        "patches": (1..=n).map(|i| json!({"id": 10_000 + i, "comments": format!("c{i}")})).collect::<Vec<_>>(),
        "puts": (1..=n).map(|i| json!({
            "id": 20_000 + i, "pattern": format!("p{i}.example.com"), "pattern_type": "DOMAIN", "is_regex": false,
            "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false, "verify_sender": true
        })).collect::<Vec<_>>(),
        "posts": (1..=n).map(|i| json!({
            "pattern": format!("user{i}@example.com"), "pattern_type": "EMAIL", "is_regex": false,
            "is_exempt_recipient": true, "is_trusted_sender": false, "is_acceptable_sender": true, "verify_sender": false
        })).collect::<Vec<_>>(),
    });
    let req = build_request(&config(json!({"api_token": TOKEN})), ACCOUNT, &batch(input));

    let mut expected = String::from("{\"deletes\":[");
    let list = |f: &dyn Fn(u32) -> String| (1..=n).map(f).collect::<Vec<_>>().join(",");
    expected += &list(&|i| format!("{{\"id\":{i}}}"));
    expected += "],\"patches\":[";
    expected += &list(&|i| format!("{{\"id\":{},\"comments\":\"c{i}\"}}", 10_000 + i));
    expected += "],\"puts\":[";
    expected += &list(&|i| {
        format!(
            "{{\"id\":{},\"pattern\":\"p{i}.example.com\",\"pattern_type\":\"DOMAIN\",\"is_regex\":false,\"is_exempt_recipient\":false,\"is_trusted_sender\":true,\"is_acceptable_sender\":false,\"verify_sender\":true}}",
            20_000 + i
        )
    });
    expected += "],\"posts\":[";
    expected += &list(&|i| {
        format!(
            "{{\"pattern\":\"user{i}@example.com\",\"pattern_type\":\"EMAIL\",\"is_regex\":false,\"is_exempt_recipient\":true,\"is_trusted_sender\":false,\"is_acceptable_sender\":true,\"verify_sender\":false}}"
        )
    });
    expected += "]}";
    assert_eq!(req.body, expected);
}

#[test]
fn the_view_redacts_credentials() {
    for c in [
        config(json!({"api_token": TOKEN})),
        config(json!({"api_email": "ops@example.com", "api_key": TOKEN})),
    ] {
        let req = build_request(&c, ACCOUNT, &batch(json!({"deletes": [{"id": 1}]})));
        let shown = serde_json::to_value(req.view()).unwrap();
        let text = shown.to_string();
        assert!(!text.contains(TOKEN), "{text}");
        assert!(text.contains(REDACTED));
        assert_eq!(shown["method"], "POST");
        assert_eq!(shown["url"], req.url.as_str());
        assert_eq!(
            shown["body"],
            json!({"deletes": [{"id": 1}], "patches": [], "puts": [], "posts": []})
        );
        assert_eq!(shown["headers"]["Content-Type"], "application/json");
        let auth = shown["headers"]
            .get("Authorization")
            .or_else(|| shown["headers"].get("X-Auth-Key"));
        assert_eq!(auth, Some(&json!(REDACTED)));
    }
}

#[test]
fn debug_of_a_request_redacts_credentials() {
    for c in [
        config(json!({"api_token": TOKEN})),
        config(json!({"api_email": "ops@example.com", "api_key": TOKEN})),
    ] {
        let req = build_request(&c, ACCOUNT, &BatchBody::default());
        let shown = format!("{req:?}");
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
    }
}
