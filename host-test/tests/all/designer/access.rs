//! Who may use the designer: the token exchange, the session cookie, and
//! the requests of other sites, other host names and other local users.

use http::Method;
use serde_json::json;

use super::{assert_no_hex_secret, raw, start_fake, token_target, Browser};
use host_test::designer::{cookie_name, CONTENT_SECURITY_POLICY};

#[tokio::test]
async fn the_printed_token_is_exchanged_for_a_strict_http_only_cookie() {
    let designer = start_fake().await;
    let addr = designer.addr();
    let host = addr.to_string();
    let target = token_target(&designer.address());
    let answer = raw(addr, Method::GET, &target, &[("host", &host)], "").await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.headers["location"], "/");
    let cookie = answer.headers["set-cookie"].to_str().unwrap();
    let name = cookie_name(addr.port());
    assert!(cookie.starts_with(&format!("{name}=")), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            cookie.split("; ").any(|part| part == flag),
            "{flag} missing: {cookie}"
        );
    }
    let session = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    assert_eq!(session.len(), 64);
    assert!(!target.contains(session), "the cookie is not the token");

    // With the cookie, the page and its files; without it, nothing.
    let browser = Browser::open(&designer).await;
    let page = browser.get("/").await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    for file in ["/designer.js", "/designer.css"] {
        assert_eq!(browser.get(file).await.status, 200, "{file}");
    }
    for path in [
        "/",
        "/designer.js",
        "/api/session",
        "/api/describe",
        "/api/examples",
    ] {
        let answer = raw(addr, Method::GET, path, &[("host", &host)], "").await;
        assert_eq!(answer.status, 401, "{path} without a cookie");
        assert!(!answer.text.contains("designer_session"), "{}", answer.text);
    }
    let wrong = format!("{name}={}", "0".repeat(64));
    let answer = raw(
        addr,
        Method::GET,
        "/api/session",
        &[("host", &host), ("cookie", &wrong)],
        "",
    )
    .await;
    assert_eq!(answer.status, 401);
    designer.shutdown().await;
}

#[tokio::test]
async fn a_wrong_token_gets_no_cookie() {
    let designer = start_fake().await;
    let addr = designer.addr();
    let host = addr.to_string();
    let good = token_target(&designer.address());
    let mut bad = good.clone();
    let last = bad.pop().unwrap();
    bad.push(if last == '0' { '1' } else { '0' });
    for target in [bad.as_str(), "/?token=", "/?token=abc"] {
        let answer = raw(addr, Method::GET, target, &[("host", &host)], "").await;
        assert_eq!(answer.status, 401, "{target}");
        assert!(answer.headers.get("set-cookie").is_none());
        assert!(
            answer.text.contains("task-host designer printed"),
            "{}",
            answer.text
        );
    }
    designer.shutdown().await;
}

/// DNS rebinding: a name of another site resolving to 127.0.0.1 reaches
/// the port with that name in `Host`; refused even with the cookie.
#[tokio::test]
async fn a_foreign_host_name_is_refused_even_with_the_cookie() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let port = designer.addr().port();
    let token = token_target(&designer.address());
    for host in [
        format!("attacker.example:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1".to_string(),
        format!("[::1]:{port}"),
    ] {
        for target in ["/api/session", "/", token.as_str()] {
            let answer = raw(
                designer.addr(),
                Method::GET,
                target,
                &[("host", &host), ("cookie", &browser.cookie)],
                "",
            )
            .await;
            assert_eq!(answer.status, 421, "Host {host} {target}");
            assert!(answer.headers.get("set-cookie").is_none());
        }
    }
    let no_host = raw(
        designer.addr(),
        Method::GET,
        "/api/session",
        &[("cookie", &browser.cookie)],
        "",
    )
    .await;
    assert_eq!(no_host.status, 421);
    let localhost = format!("localhost:{port}");
    let answer = raw(
        designer.addr(),
        Method::GET,
        "/api/session",
        &[("host", &localhost), ("cookie", &browser.cookie)],
        "",
    )
    .await;
    assert_eq!(answer.status, 200, "localhost is this server too");
    designer.shutdown().await;
}

/// Another web site in the same browser: its requests carry its Origin
/// (and, were the cookie sent, still are refused); a form cannot send
/// JSON; no answer allows another origin to read it.
#[tokio::test]
async fn another_site_cannot_send_or_read() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let addr = designer.addr();
    let host = addr.to_string();
    let body = json!({"config": {}, "input": {}}).to_string();
    let post = |headers: Vec<(&'static str, String)>| {
        let body = body.clone();
        let host = host.clone();
        let cookie = browser.cookie.clone();
        async move {
            let mut all = vec![("host", host), ("cookie", cookie)];
            all.extend(headers);
            let all: Vec<(&str, &str)> = all.iter().map(|(n, v)| (*n, v.as_str())).collect();
            raw(addr, Method::POST, "/api/send", &all, &body).await
        }
    };
    let json_type = ("content-type", "application/json".to_string());
    let cases = [
        (
            vec![
                ("origin", "https://attacker.example".into()),
                json_type.clone(),
            ],
            403,
        ),
        (vec![("origin", "null".into()), json_type.clone()], 403),
        (
            vec![
                ("origin", format!("http://127.0.0.1:{}", addr.port() + 1)),
                json_type.clone(),
            ],
            403,
        ),
        (vec![json_type.clone()], 403),
        (
            vec![
                ("origin", browser.origin()),
                ("content-type", "text/plain".into()),
            ],
            415,
        ),
        (
            vec![
                ("origin", browser.origin()),
                ("content-type", "application/x-www-form-urlencoded".into()),
            ],
            415,
        ),
        (
            vec![
                ("origin", browser.origin()),
                json_type.clone(),
                ("sec-fetch-site", "cross-site".into()),
            ],
            403,
        ),
    ];
    for (headers, status) in cases {
        let shown = format!("{headers:?}");
        let answer = post(headers).await;
        assert_eq!(answer.status, status, "{shown}: {}", answer.text);
        assert_eq!(answer.json["error"]["kind"], "refused", "{}", answer.text);
    }
    assert_eq!(designer.fake().unwrap().requests(), 0, "nothing was sent");
    // A preflight gets no CORS answer; neither does a request with an Origin.
    let preflight = raw(
        addr,
        Method::OPTIONS,
        "/api/send",
        &[
            ("host", &host),
            ("origin", "https://attacker.example"),
            ("access-control-request-method", "POST"),
        ],
        "",
    )
    .await;
    assert!(preflight.status >= 400);
    for answer in [preflight, browser.get("/api/session").await] {
        for (name, _) in answer.headers.iter() {
            assert!(!name.as_str().starts_with("access-control-"), "{name}");
        }
    }
    designer.shutdown().await;
}

#[tokio::test]
async fn every_answer_has_a_strict_content_security_policy() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let host = designer.addr().to_string();
    let answers = vec![
        browser.get("/").await,
        browser.get("/designer.js").await,
        browser.get("/api/session").await,
        browser.get("/nowhere").await,
        browser.post("/api/prepare", &json!({})).await,
        raw(designer.addr(), Method::GET, "/", &[("host", &host)], "").await,
        raw(
            designer.addr(),
            Method::GET,
            "/",
            &[("host", "evil.example")],
            "",
        )
        .await,
    ];
    for answer in answers {
        let csp = answer.headers["content-security-policy"].to_str().unwrap();
        assert_eq!(csp, CONTENT_SECURITY_POLICY);
        assert!(
            !csp.contains("unsafe-eval") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'none'",
        ] {
            assert!(
                csp.split("; ").any(|d| d == directive),
                "{directive} missing: {csp}"
            );
        }
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["referrer-policy"], "no-referrer");
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert_eq!(answer.headers["cross-origin-opener-policy"], "same-origin");
        assert_eq!(
            answer.headers["cross-origin-resource-policy"],
            "same-origin"
        );
    }
    designer.shutdown().await;
}

#[tokio::test]
async fn a_bad_body_is_a_clear_error() {
    let designer = start_fake().await;
    let browser = Browser::open(&designer).await;
    let host = designer.addr().to_string();
    let origin = browser.origin();
    let headers = [
        ("host", host.as_str()),
        ("cookie", browser.cookie.as_str()),
        ("origin", origin.as_str()),
        ("content-type", "application/json"),
    ];
    let not_json = raw(
        designer.addr(),
        Method::POST,
        "/api/prepare",
        &headers,
        "{\"config\": ",
    )
    .await;
    assert_eq!(not_json.status, 400);
    assert_eq!(not_json.json["error"]["kind"], "bad-request");
    let array = raw(
        designer.addr(),
        Method::POST,
        "/api/prepare",
        &headers,
        "[]",
    )
    .await;
    assert_eq!(array.status, 400);
    let huge = format!(
        "{{\"config\": {{}}, \"input\": \"{}\"}}",
        "x".repeat(5 * 1024 * 1024)
    );
    let too_large = raw(
        designer.addr(),
        Method::POST,
        "/api/prepare",
        &headers,
        &huge,
    )
    .await;
    assert_eq!(too_large.status, 413, "{}", too_large.text);
    let incomplete = browser.post("/api/prepare", &json!({"config": []})).await;
    assert_eq!(incomplete.status, 400);
    let pointers: Vec<&str> = incomplete.json["error"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["pointer"].as_str().unwrap())
        .collect();
    assert_eq!(pointers, ["/config", "/input"]);
    assert_eq!(browser.get("/api/prepare").await.status, 405);
    assert_eq!(browser.get("/api/nowhere").await.status, 404);
    assert_no_hex_secret(&browser.seen());
    designer.shutdown().await;
}
