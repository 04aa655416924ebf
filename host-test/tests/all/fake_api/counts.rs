//! The test-control routes that count and show what the fake holds,
//! without spending the rate budget: a fleet test reads them after the
//! fleet has spent it.

use std::time::Duration;

use host_test::fake_api::RateBudget;

use super::*;

#[tokio::test]
async fn the_counts_include_what_the_rate_limit_refused_and_the_accounts_are_listed() {
    let api = FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate_budget: RateBudget {
            limit: 1,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(60),
        },
        ..FakeApiOptions::default()
    })
    .await
    .unwrap();
    let body = posts(vec![post("counted@example.com")]);
    // The first is answered, the second begins a lockout, the third meets it.
    let statuses = [
        post_batch(&api, &body).await.status,
        post_batch(&api, &body).await.status,
        post_batch(&api, &body).await.status,
    ];
    assert_eq!(statuses, [200, 429, 429]);

    // Neither route spends the budget, however often it is read.
    for _ in 0..3 {
        let counted = send(&api, Method::GET, "/__fake/requests", &[], "").await;
        assert_eq!(counted.status, 200, "{}", counted.text);
        assert_eq!(
            counted.json["result"],
            json!({
                "requests": 3,
                "batch_requests": 1,
                "batches_applied": 1,
                "rate_limited": 2,
                "lockouts": 1,
            })
        );
        let accounts = send(&api, Method::GET, "/__fake/accounts", &[], "").await;
        assert_eq!(accounts.status, 200, "{}", accounts.text);
        let held = accounts.json["result"].as_object().unwrap();
        assert_eq!(held.len(), 1, "{}", accounts.text);
        assert_eq!(held[ACCOUNT][0]["pattern"], "counted@example.com");
        assert_eq!(held[ACCOUNT], json!(api.policies(ACCOUNT)));
    }
    let refused = send(&api, Method::POST, "/__fake/accounts", &[], "").await;
    assert_eq!(refused.status, 405, "{}", refused.text);
    api.shutdown().await;
}
