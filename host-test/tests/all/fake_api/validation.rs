//! Batches the live API refuses, refused by the fake API with the pointer
//! of each problem, and nothing applied.

use super::*;

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
