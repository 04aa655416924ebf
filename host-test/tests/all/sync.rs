//! Sync mode through the real component against the fake API: the desired
//! list in, the account brought to it in as few writes as it takes, and a
//! preview that reads but never writes, which the host enforces.

use std::time::Duration;

use host_test::fake_api::{FakeApi, Fault};
use host_test::{error_to_json, AllowedHost, TaskHost, TaskOptions};
use serde_json::{json, Value};

use crate::support::documents::Checked;
use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{fake_api, host, hostile_component_path, post, ACCOUNT};

const TOKEN: &str = "cf-SYNC-TOKEN-must-not-leak-5e0b";

fn options(fake: &FakeApi) -> TaskOptions {
    TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap())
}

fn config(fake: &FakeApi) -> String {
    json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": fake.base_url(), "timeout_ms": 60000})
        .to_string()
}

async fn sync(fake: &FakeApi, sync: Value) -> Result<Value, Value> {
    let input = json!({ "sync": sync }).to_string();
    match host()
        .run_task(&options(fake), &config(fake), &input)
        .await
        .checked()
        .expect("the host completes the call")
    {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(e) => Err(error_to_json(&e)),
    }
}

async fn preview(fake: &FakeApi, sync: Value) -> Result<Value, Value> {
    let input = json!({ "sync": sync }).to_string();
    match host()
        .prepare(&options(fake), &config(fake), &input)
        .await
        .checked()
        .expect("the host completes the call")
    {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(e) => Err(error_to_json(&e)),
    }
}

/// The account's policies, as `(pattern, verify_sender, comments)`, sorted.
fn account(fake: &FakeApi) -> Vec<(String, bool, Value)> {
    let mut all: Vec<_> = fake
        .policies(ACCOUNT)
        .into_iter()
        .map(|p| {
            (
                p["pattern"].as_str().unwrap().to_string(),
                p["verify_sender"].as_bool().unwrap(),
                p["comments"].clone(),
            )
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn policies(patterns: &[&str]) -> Vec<Value> {
    patterns.iter().map(|p| post(p)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_an_empty_account_and_then_nothing_to_do() {
    let fake = fake_api(Some(TOKEN)).await;
    let wanted =
        json!({"policies": policies(&["a@example.com", "b@example.com", "c@example.com"])});
    let first = sync(&fake, wanted.clone()).await.unwrap();
    assert_eq!(first["sync"]["created"], 3, "{first}");
    assert_eq!(first["sync"]["batches"].as_array().unwrap().len(), 1);
    assert_eq!(fake.batches_applied(), 1);
    assert_eq!(account(&fake).len(), 3);

    // The same list again: read, nothing to write.
    let requests = fake.requests();
    let second = sync(&fake, wanted).await.unwrap();
    assert_eq!(second["skipped"], true, "{second}");
    assert_eq!(second["sync"]["unchanged"], 3);
    assert_eq!(second["attempts"], 0);
    assert_eq!(fake.batches_applied(), 1, "no write the second time");
    assert_eq!(fake.requests(), requests + 1, "one read, no batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_fields_become_minimal_patches_and_unlisted_ones_stay_or_go() {
    let fake = fake_api(Some(TOKEN)).await;
    let seeded = fake
        .seed(
            ACCOUNT,
            policies(&["a@example.com", "b@example.com", "old@example.com"]),
        )
        .unwrap();
    let mut a = post("a@example.com");
    a["verify_sender"] = json!(false);
    a["comments"] = json!("vendor");
    let wanted = json!({"policies": [a, post("B@example.com"), post("new@example.com")]});

    let out = sync(&fake, wanted.clone()).await.unwrap();
    assert_eq!(
        (
            &out["sync"]["created"],
            &out["sync"]["changed"],
            &out["sync"]["unchanged"],
            &out["sync"]["kept_unlisted"]
        ),
        (&json!(1), &json!(1), &json!(1), &json!(1)),
        "{out}"
    );
    // The patch carries only what differs.
    let patched = &out["sync"]["batches"][0]["result"]["patches"][0];
    assert_eq!(patched["id"], seeded[0]["id"]);
    assert_eq!(
        account(&fake),
        [
            ("a@example.com".into(), false, json!("vendor")),
            ("b@example.com".into(), true, Value::Null),
            ("new@example.com".into(), true, Value::Null),
            ("old@example.com".into(), true, Value::Null),
        ]
    );

    // Deletion on: the unlisted policy goes, the rest is already right.
    let mut deleting = wanted.clone();
    deleting["delete_unlisted"] = json!(true);
    let out = sync(&fake, deleting).await.unwrap();
    assert_eq!(
        (&out["sync"]["deleted"], &out["sync"]["unchanged"]),
        (&json!(1), &json!(3)),
        "{out}"
    );
    assert!(account(&fake).iter().all(|(p, ..)| p != "old@example.com"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_names_the_policy_a_desired_one_stands_for() {
    let fake = fake_api(Some(TOKEN)).await;
    let seeded = fake
        .seed(ACCOUNT, policies(&["before@example.com"]))
        .unwrap();
    let mut renamed = post("after@example.com");
    renamed["id"] = seeded[0]["id"].clone();
    let out = sync(&fake, json!({"policies": [renamed]})).await.unwrap();
    assert_eq!(
        (&out["sync"]["changed"], &out["sync"]["created"]),
        (&json!(1), &json!(0)),
        "{out}"
    );
    let stored = fake.policies(ACCOUNT);
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (&stored[0]["id"], &stored[0]["pattern"]),
        (&seeded[0]["id"], &json!("after@example.com"))
    );

    let mut unknown = post("x@example.com");
    unknown["id"] = json!("9b2e8f14-3c6d-4a9e-8f01-7d3c2b1a0e9f");
    let err = sync(&fake, json!({"policies": [unknown]}))
        .await
        .unwrap_err();
    assert_eq!(err["kind"], "invalid_input");
    assert_eq!(err["errors"][0]["pointer"], "/sync/policies/0/id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_safety_limits_refuse_before_any_write() {
    let fake = fake_api(Some(TOKEN)).await;
    let many: Vec<String> = (0..61).map(|i| format!("p{i}@example.com")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    fake.seed(ACCOUNT, policies(&many)).unwrap();
    let keep_ten = json!({"policies": policies(&many[..10]), "delete_unlisted": true});

    let err = sync(&fake, keep_ten.clone()).await.unwrap_err();
    assert_eq!(err["errors"][0]["pointer"], "/sync/max_deletes", "{err}");
    assert!(
        err["errors"][0]["message"].as_str().unwrap().contains("50"),
        "{err}"
    );
    let mut raised = keep_ten.clone();
    raised["max_deletes"] = json!(51);
    let err = sync(&fake, raised.clone()).await.unwrap_err();
    assert_eq!(
        err["errors"][0]["pointer"], "/sync/allow_deleting_most",
        "{err}"
    );
    let err = sync(
        &fake,
        json!({"policies": [], "delete_unlisted": true, "max_deletes": 100}),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err["errors"][0]["pointer"], "/sync/allow_deleting_most",
        "{err}"
    );
    assert_eq!(fake.batches_applied(), 0);

    raised["allow_deleting_most"] = json!(true);
    let out = sync(&fake, raised).await.unwrap();
    assert_eq!(out["sync"]["deleted"], 51);
    assert_eq!(account(&fake).len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_list_goes_in_batches_and_a_failed_one_is_mended_by_running_again() {
    let fake = fake_api(Some(TOKEN)).await;
    let names: Vec<String> = (0..2500)
        .map(|i| format!("user{i:04}@example.com"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let wanted = json!({"policies": policies(&names)});

    // The second batch is refused: the first stays applied, the third is
    // never sent.
    fake.push_fault(Fault::Delay(Duration::ZERO));
    fake.push_fault(Fault::status(400, vec![]));
    let err = sync(&fake, wanted.clone()).await.unwrap_err();
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .starts_with("batch 2 of 3 failed, after 1 applied"),
        "{err}"
    );
    assert_eq!(fake.batches_applied(), 1);
    assert_eq!(account(&fake).len(), 1000);

    // Running again plans from what is there: the other 1500, in 2 batches.
    let out = sync(&fake, wanted.clone()).await.unwrap();
    assert_eq!(
        (&out["sync"]["created"], &out["sync"]["unchanged"]),
        (&json!(1500), &json!(1000)),
        "{}",
        out["sync"]
    );
    assert_eq!(out["sync"]["batches"].as_array().unwrap().len(), 2);
    assert_eq!(account(&fake).len(), 2500);
    let out = sync(&fake, wanted).await.unwrap();
    assert_eq!(out["skipped"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_reads_the_account_and_shows_the_plan() {
    let fake = fake_api(Some(TOKEN)).await;
    fake.seed(ACCOUNT, policies(&["a@example.com", "gone@example.com"]))
        .unwrap();
    let mut a = post("a@example.com");
    a["is_acceptable_sender"] = json!(true);
    let plan = preview(
        &fake,
        json!({"policies": [a, post("b@example.com")], "delete_unlisted": true}),
    )
    .await
    .unwrap();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        plan["counts"],
        json!({"deletes": 1, "patches": 1, "puts": 0, "posts": 1})
    );
    assert_eq!(
        plan["plan"]["change"][0]["fields"],
        json!([{"field": "is_acceptable_sender", "old": false, "new": true}])
    );
    assert_eq!(plan["plan"]["delete"][0]["pattern"], "gone@example.com");
    assert_eq!(
        plan["plan"]["batches"][0]["headers"]["Authorization"],
        "[redacted]"
    );
    assert!(!plan.to_string().contains(TOKEN));
    assert_eq!(fake.batches_applied(), 0);
    assert_eq!(fake.requests(), 1, "one read");
}

/// The host, not only the component, keeps a preview from writing: while
/// `prepare` runs only `GET` leaves, whatever the component tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_writes_during_prepare_is_denied() {
    let server = MisbehavingServer::start(vec![Script::Reply(response("200 OK", &[], ""))]).await;
    let hostile = TaskHost::load(&hostile_component_path()).unwrap();
    let opts = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap());
    let url = format!("http://127.0.0.1:{}/", server.port());
    let input = |mode: &str| json!({"mode": mode, "url": url}).to_string();

    let write = hostile.prepare(&opts, "{}", &input("write")).await.unwrap();
    let err = write.expect_err("a write during prepare is refused");
    assert_eq!(host_test::error_kind(&err), "denied");
    assert_eq!(server.received().len(), 0, "nothing reached the server");

    // A read is let through, and outside prepare a write is too.
    let read = hostile.prepare(&opts, "{}", &input("fetch")).await.unwrap();
    assert!(read.is_ok(), "{read:?}");
    let written = hostile
        .run_task(&opts, "{}", &input("write"))
        .await
        .unwrap();
    assert!(written.is_ok(), "{written:?}");
    let heads: Vec<String> = server.received().into_iter().map(|r| r.head).collect();
    assert!(
        heads[0].starts_with("GET ") && heads[1].starts_with("POST "),
        "{heads:?}"
    );
}

/// Random accounts and desired lists, through the real component and the
/// fake: afterwards the account holds exactly the desired policies (and,
/// with deletion off, the unlisted ones too), and a second run sends no
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_sync_converges_and_a_second_run_writes_nothing() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("sync property seed {seed}");
    let mut state = seed;
    let mut next = move |n: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % n
    };
    for case in 0..12 {
        let fake = fake_api(Some(TOKEN)).await;
        let pick = |next: &mut dyn FnMut(u64) -> u64| {
            let mut p = post(&format!("p{}@example.com", next(8)));
            p["verify_sender"] = json!(next(2) == 0);
            if next(3) == 0 {
                p["comments"] = json!(format!("c{}", next(2)));
            }
            p
        };
        let existing: Vec<Value> = (0..next(8)).map(|_| pick(&mut next)).collect();
        fake.seed(ACCOUNT, existing.clone()).unwrap();
        let mut wanted: Vec<Value> = Vec::new();
        for _ in 0..next(7) {
            let p = pick(&mut next);
            if wanted.iter().all(|w| w["pattern"] != p["pattern"]) {
                wanted.push(p);
            }
        }
        let delete_unlisted = next(2) == 0;
        let spec = json!({"policies": wanted, "delete_unlisted": delete_unlisted,
                          "max_deletes": 100, "allow_deleting_most": true});
        let out = sync(&fake, spec.clone())
            .await
            .unwrap_or_else(|e| panic!("case {case} (seed {seed}): {e}"));
        let after = fake.policies(ACCOUNT);
        for w in &wanted {
            let there = after.iter().any(|p| {
                p["pattern"] == w["pattern"]
                    && p["verify_sender"] == w["verify_sender"]
                    && (w.get("comments").is_none() || p["comments"] == w["comments"])
            });
            assert!(there, "case {case} (seed {seed}): {w} missing after {out}");
        }
        let listed = |p: &Value| wanted.iter().any(|w| w["pattern"] == p["pattern"]);
        let matched = wanted
            .iter()
            .filter(|w| existing.iter().any(|e| e["pattern"] == w["pattern"]))
            .count();
        let expected = if delete_unlisted {
            wanted.len()
        } else {
            wanted.len() + existing.len() - matched
        };
        assert_eq!(after.len(), expected, "case {case} (seed {seed}): {out}");
        if delete_unlisted {
            assert!(after.iter().all(listed), "case {case} (seed {seed})");
        }
        let applied = fake.batches_applied();
        let again = sync(&fake, spec).await.unwrap();
        assert_eq!(again["skipped"], true, "case {case} (seed {seed}): {again}");
        assert_eq!(
            fake.batches_applied(),
            applied,
            "case {case}: a write the second time"
        );
    }
}

/// A sync of more than one batch's worth: the dry run and the result total
/// the whole plan in `counts` and `attempts`, and the output schema that
/// `describe` publishes accepts both (it once capped counts at one
/// batch's 1000). `sync` and `preview` check every document they return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_1500_new_policies_fits_the_published_output_schema() {
    let fake = fake_api(Some(TOKEN)).await;
    let policies: Vec<Value> = (0..1500)
        .map(|i| post(&format!("sender{i}@bulk.example.com")))
        .collect();
    let wanted = json!({ "policies": policies });
    let planned = preview(&fake, wanted.clone()).await.unwrap();
    assert_eq!(planned["counts"]["posts"], 1500, "{}", planned["counts"]);
    assert_eq!(planned["plan"]["batches"].as_array().unwrap().len(), 2);
    let done = sync(&fake, wanted).await.unwrap();
    assert_eq!(done["counts"]["posts"], 1500);
    assert_eq!(done["sync"]["created"], 1500);
    assert_eq!(done["attempts"], 2);
    assert_eq!(fake.policies(ACCOUNT).len(), 1500);
    fake.shutdown().await;
}
