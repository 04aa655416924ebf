//! The host's rate gate, through the real component and the fake API:
//! what one task learns of the account's rate limit holds for every task
//! of the process, and a request it keeps back is "nothing sent, wait".

use crate::support::documents::Checked;
use crate::support::{fake_api, post, ACCOUNT};
use host_test::fake_api::{FakeApi, Fault};
use host_test::{error_to_json, AllowedHost, HostSettings, TaskHost, TaskOptions};
use serde_json::{json, Value};

const TOKEN: &str = "cf-GATE-TOKEN-must-not-leak-93d1";

fn gated_host() -> TaskHost {
    TaskHost::load_with_settings(
        &host_test::default_component_path(),
        &HostSettings {
            max_concurrent_tasks: 4,
            ..HostSettings::default()
        },
    )
    .unwrap()
}

fn options(fake: &FakeApi) -> TaskOptions {
    TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap())
}

async fn run(host: &TaskHost, fake: &FakeApi, pattern: &str) -> Result<Value, Value> {
    let config = json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": fake.base_url(),
        "timeout_ms": 5000, "max_retries": 1})
    .to_string();
    let input = json!({ "posts": [post(pattern)] }).to_string();
    match host
        .run_task(&options(fake), &config, &input)
        .await
        .checked()
        .unwrap()
    {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(e) => Err(error_to_json(&e)),
    }
}

/// After a 429 asking for a minute, the next task of the same process does
/// not reach the server: it fails at once, retryable, nothing sent, with
/// the wait left. A task of another process (another host) still sends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_429_no_task_of_the_process_sends_until_the_wait_is_over() {
    let fake = fake_api(None).await;
    fake.push_fault(Fault::status(
        429,
        vec![("retry-after".into(), "60".into())],
    ));
    let host = gated_host();
    let first = run(&host, &fake, "a@example.com").await.unwrap_err();
    assert_eq!(first["status"], 429, "{first}");
    assert_eq!(first["retry_after_ms"], 60_000, "{first}");
    let seen = fake.requests();
    assert_eq!(seen, 1);

    let second = run(&host, &fake, "b@example.com").await.unwrap_err();
    assert_eq!(second["kind"], "transport", "{second}");
    assert_eq!(second["retryable"], true);
    assert_eq!(second["may_have_applied"], false);
    assert_eq!(
        second["status"],
        Value::Null,
        "not a synthetic 429: {second}"
    );
    assert_eq!(
        (second["attempts"].as_u64(), second["api_calls"].as_u64()),
        (Some(0), Some(0))
    );
    let wait = second["retry_after_ms"].as_u64().unwrap();
    assert!((55_000..=60_000).contains(&wait), "{second}");
    assert!(
        second["message"]
            .as_str()
            .unwrap()
            .contains("held the request back"),
        "{second}"
    );
    assert_eq!(
        fake.requests(),
        seen,
        "the held-back task reached the server"
    );

    // Another process's gate knows nothing of it.
    let other = gated_host();
    let third = run(&other, &fake, "c@example.com").await.unwrap();
    assert_eq!(third["status"], 200);
    fake.shutdown().await;
}

/// The fake's answers say how much of its budget is left; when none is,
/// the gate stops sending before the server has to refuse with a 429.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_window_is_waited_out_before_a_429() {
    let fake = fake_api(None).await;
    fake.push_fault(Fault::Status {
        status: 200,
        headers: vec![
            ("ratelimit".into(), "\"default\";r=0;t=40".into()),
            ("ratelimit-policy".into(), "\"default\";q=1200;w=300".into()),
        ],
        body: r#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[],"patches":[],"puts":[],"posts":[]}}"#.into(),
    });
    let host = gated_host();
    let first = run(&host, &fake, "a@example.com").await.unwrap();
    assert_eq!(first["status"], 200);
    let seen = fake.requests();
    let second = run(&host, &fake, "b@example.com").await.unwrap_err();
    let wait = second["retry_after_ms"].as_u64().unwrap();
    assert!((35_000..=40_000).contains(&wait), "{second}");
    assert_eq!(fake.requests(), seen);
    fake.shutdown().await;
}

/// Against a fake that enforces a small budget (8 requests a minute, then
/// a lockout) and says what is left on every answer, a gated process
/// paces the second half of the window and stops short of the end,
/// handing the task back to wait; it never earns the 429. An ungated one
/// runs into it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_process_spends_a_small_budget_without_a_lockout() {
    use host_test::fake_api::{FakeApiOptions, RateBudget};
    use std::time::Duration;
    let budget = RateBudget {
        limit: 8,
        window: Duration::from_secs(60),
        lockout: Duration::from_secs(30),
    };
    let start = |budget| {
        FakeApi::start(FakeApiOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            rate_budget: budget,
            ..FakeApiOptions::default()
        })
    };
    let fake = start(budget).await.unwrap();
    let host = gated_host();
    let mut done = 0;
    let held = loop {
        match run(&host, &fake, &format!("p{done}@example.com")).await {
            Ok(answer) => {
                assert_eq!(answer["status"], 200, "{answer}");
                done += 1;
                assert!(done < 8, "the gate let the whole budget go");
            }
            Err(held) => break held,
        }
    };
    // The first half goes at once.
    assert!(done >= 4, "{done} sent before the gate held one back");
    assert_eq!(held["status"], Value::Null, "{held}");
    let wait = held["retry_after_ms"].as_u64().unwrap();
    assert!((1..=60_000).contains(&wait), "{held}");
    assert_eq!(
        fake.rate_limited(),
        (0, 0),
        "the gated process earned a 429"
    );
    assert_eq!(fake.requests(), done);
    fake.shutdown().await;

    let fake = start(budget).await.unwrap();
    let ungated = TaskHost::load_with_settings(
        &host_test::default_component_path(),
        &HostSettings {
            max_concurrent_tasks: 1,
            rate_gate: false,
            ..HostSettings::default()
        },
    )
    .unwrap();
    for i in 0..8 {
        run(&ungated, &fake, &format!("p{i}@example.com"))
            .await
            .unwrap();
    }
    let refused = run(&ungated, &fake, "p8@example.com").await.unwrap_err();
    assert_eq!(refused["status"], 429, "{refused}");
    assert_eq!(fake.rate_limited(), (1, 1));
    fake.shutdown().await;
}
