//! Credentials, account ids, routes and methods, and the paginated list.

use super::*;

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
