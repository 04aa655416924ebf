use super::*;
use crate::api::request::Method;
use crate::config::parse_config;
use crate::params::problems::Report;
use crate::run::scripted::{status, Scripted};
use serde_json::json;

const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
const TOKEN: &str = "tok-SECRET-77aa01";

fn config() -> Config {
    let value = json!({"api_token": TOKEN, "base_url": "http://127.0.0.1:9/client/v4"});
    parse_config(&value, &mut Report::default()).unwrap()
}

/// A list answer with policies numbered `from..to` of `total`.
fn page(from: usize, to: usize, total: Option<usize>) -> String {
    let policies: Vec<_> = (from..to)
        .map(|i| {
            json!({"id": format!("00000000-0000-4000-8000-{i:012X}"), "pattern": format!("p{i}.example"),
                "pattern_type": "DOMAIN", "is_regex": false, "is_exempt_recipient": false,
                "is_trusted_sender": true, "is_acceptable_sender": false, "verify_sender": true,
                "comments": if i % 2 == 0 { json!(null) } else { json!("") },
                "created_at": "2024-01-01T00:00:00Z"})
        })
        .collect();
    let mut envelope = json!({"success": true, "errors": [], "messages": [], "result": policies});
    if let Some(total) = total {
        envelope["result_info"] =
            json!({"page": 1, "per_page": PER_PAGE, "count": to - from, "total_count": total});
    }
    envelope.to_string()
}

#[test]
fn a_page_is_a_get_of_the_list_oldest_first_with_the_credentials() {
    let request = page_request(&config(), ACCOUNT, 3);
    assert_eq!(request.method, Method::Get);
    assert_eq!(
        request.url,
        format!("http://127.0.0.1:9/client/v4/accounts/{ACCOUNT}/email-security/settings/allow_policies?page=3&per_page=100&order=created_at&direction=asc")
    );
    assert!(request.body.is_empty());
    let names: Vec<&str> = request.headers.iter().map(|h| h.name).collect();
    assert_eq!(names, ["accept", "user-agent", "authorization"]);
    assert_eq!(request.headers[2].value, format!("Bearer {TOKEN}"));
    assert!(request.headers[2].sensitive);
}

#[test]
fn ids_read_back_are_spelled_as_requested_ones_and_empty_comments_are_none() {
    let result = RawValue::from_string(
        json!([{"id": "F174E90A-FAFE-4643-BBBC-4A0ED4FC8415", "comments": ""},
               {"id": 2401, "pattern": "a@b.example", "comments": "kept"}])
        .to_string(),
    )
    .unwrap();
    let info = RawValue::from_string(json!({"total_count": 2}).to_string()).unwrap();
    let page = parse_page(Some(&result), Some(&info)).unwrap();
    assert_eq!(page.total_count, Some(2));
    assert_eq!(page.policies[0].id, "f174e90a-fafe-4643-bbbc-4a0ed4fc8415");
    assert_eq!(page.policies[0].fields.comments, None);
    assert_eq!(page.policies[1].id, "2401");
    assert_eq!(page.policies[1].fields.comments.as_deref(), Some("kept"));
    assert_eq!(
        page.policies[1].fields.pattern.as_deref(),
        Some("a@b.example")
    );
    // The API's own JSON is kept for the result.
    assert!(page.policies[1].raw.get().contains("2401"));
}

#[test]
fn a_policy_without_a_usable_id_makes_the_page_unreadable() {
    for items in [
        json!([{"pattern": "x"}]),
        json!([{"id": null}]),
        json!([{"id": ""}]),
        json!([3]),
        json!({}),
    ] {
        let result = RawValue::from_string(items.to_string()).unwrap();
        assert!(parse_page(Some(&result), None).is_err(), "{items}");
    }
    assert!(parse_page(None, None).is_err());
    let wrong_type =
        RawValue::from_string(json!([{"id": "x", "is_regex": "no"}]).to_string()).unwrap();
    assert!(parse_page(Some(&wrong_type), None).is_err());
}

#[test]
fn every_page_is_read_until_the_total() {
    let mut t = Scripted::new(vec![
        status(200, None, &page(0, 100, Some(250))),
        status(200, None, &page(100, 200, Some(250))),
        status(200, None, &page(200, 250, Some(250))),
    ]);
    let read = read_all(&config(), ACCOUNT, &mut t, 60_000);
    assert_eq!(read.requests, 3);
    let snapshot = read.result.unwrap();
    assert_eq!(snapshot.len(), 250);
    assert!(snapshot.contains("00000000-0000-4000-8000-0000000000f9"));
    let pages: Vec<&str> = t
        .requests
        .iter()
        .map(|(_, url)| url.split('?').nth(1).unwrap())
        .collect();
    assert!(
        pages[0].starts_with("page=1&") && pages[2].starts_with("page=3&"),
        "{pages:?}"
    );
    assert!(t.requests.iter().all(|(m, _)| *m == Method::Get));
}

#[test]
fn a_short_page_is_not_the_end_but_an_empty_one_is() {
    // An API that serves 50 per page although 100 were asked for, and
    // gives no total: every policy is still read.
    let mut t = Scripted::new(vec![
        status(200, None, &page(0, 50, None)),
        status(200, None, &page(50, 70, None)),
        status(200, None, &page(0, 0, None)),
    ]);
    let read = read_all(&config(), ACCOUNT, &mut t, 60_000);
    assert_eq!((read.requests, read.result.unwrap().len()), (3, 70));
}

#[test]
fn a_policy_seen_on_two_pages_counts_once() {
    let mut t = Scripted::new(vec![
        status(200, None, &page(0, 100, Some(150))),
        status(200, None, &page(99, 150, Some(150))),
    ]);
    let read = read_all(&config(), ACCOUNT, &mut t, 60_000);
    assert_eq!(read.result.unwrap().len(), 150);
}

#[test]
fn a_read_that_fails_is_classified_and_never_may_have_applied() {
    use crate::api::outcome::FailureKind::{Api, BadResponse, Transport};
    let refused = r#"{"success":false,"errors":[{"code":10000,"message":"no"}],"result":null}"#;
    let unreadable_page =
        r#"{"success":true,"errors":[],"messages":[],"result":[{"pattern":"x"}]}"#;
    let cases = [
        (
            status(429, Some("300"), ""),
            Api,
            Some(429),
            true,
            "rate limited",
        ),
        (
            status(403, None, refused),
            Api,
            Some(403),
            false,
            "HTTP 403: no",
        ),
        (
            status(200, None, "<html>"),
            BadResponse,
            Some(200),
            false,
            "not a Cloudflare API envelope",
        ),
        (
            status(200, None, unreadable_page),
            BadResponse,
            Some(200),
            false,
            "no readable id",
        ),
        (status(502, None, ""), Api, Some(502), true, "HTTP 502"),
        (
            Err(crate::api::outcome::TransportFault::AfterSend(
                "reset".into(),
            )),
            Transport,
            None,
            true,
            "no complete answer (reset)",
        ),
    ];
    for (answer, kind, code, retryable, words) in cases {
        let mut t = Scripted::new(vec![answer]);
        let read = read_all(&config(), ACCOUNT, &mut t, 60_000);
        assert_eq!(read.requests, 1);
        let e = read.result.unwrap_err();
        let f = &e.0;
        assert_eq!(
            (f.kind, f.status, f.retryable, f.may_have_applied),
            (kind, code, retryable, false),
            "{f:?}"
        );
        assert!(
            f.message
                .starts_with("reading the account's policies (page 1) failed: "),
            "{}",
            f.message
        );
        assert!(f.message.contains(words), "{}", f.message);
        assert_eq!(e.is_rate_limited(), code == Some(429));
    }
}

#[test]
fn no_read_starts_past_the_deadline_and_limits_come_from_it() {
    let mut t = Scripted::new(vec![status(200, None, &page(0, 100, Some(200)))]);
    t.latency_ms = 500;
    let read = read_all(&config(), ACCOUNT, &mut t, 1_400);
    assert_eq!(read.requests, 1);
    let e = read.result.unwrap_err();
    assert!(e.to_string().contains("timeout_ms passed"), "{e}");
    assert!(e.0.retryable);
    assert_eq!(t.sent[0].first_byte_timeout_ms, 400);
    assert_eq!(t.sent[0].deadline_ms, 1_400);
}

#[test]
fn an_account_past_the_page_limit_is_not_read_in_part() {
    let answers = (0..MAX_PAGES as usize)
        .map(|p| status(200, None, &page(p * 100, p * 100 + 100, Some(20_000))))
        .collect();
    let mut t = Scripted::new(answers);
    let read = read_all(&config(), ACCOUNT, &mut t, u64::MAX);
    assert_eq!(read.requests, MAX_PAGES);
    let e = read.result.unwrap_err();
    assert!(e.to_string().contains("more than 10000"), "{e}");
    assert!(!e.0.retryable);
}

#[test]
fn a_list_that_changes_while_it_is_read_is_not_taken_for_the_account() {
    // A policy deleted after page 1 was read: the total moves.
    let mut t = Scripted::new(vec![
        status(200, None, &page(0, 100, Some(150))),
        status(200, None, &page(101, 150, Some(149))),
    ]);
    let e = read_all(&config(), ACCOUNT, &mut t, 60_000)
        .result
        .unwrap_err();
    assert!(e.to_string().contains("changed while it was read"), "{e}");
    assert!(e.0.retryable && !e.0.may_have_applied);

    // The same total, but one policy slipped between the pages (read
    // twice where another was never read): the pages end short of it.
    let mut t = Scripted::new(vec![
        status(200, None, &page(0, 100, Some(150))),
        status(200, None, &page(99, 148, Some(150))),
        status(200, None, &page(0, 0, Some(150))),
    ]);
    let read = read_all(&config(), ACCOUNT, &mut t, 60_000);
    assert_eq!(read.requests, 3);
    let e = read.result.unwrap_err();
    assert!(e.to_string().contains("changed while it was read"), "{e}");
}
