//! Reading the account back after a failure that may have applied: the
//! real component in the real host, behind a proxy that fails in each way
//! the fault suite knows (`faults.rs`), in front of the fake API, which
//! keeps the account and counts the batches it applied. The same fault is
//! played once after the batch was applied and once instead of applying it,
//! and the task must tell the two apart.

use crate::support::documents::Checked;
use std::time::Duration;

use host_test::attempts::Delivery;
use host_test::fake_api::FakeApi;
use host_test::{error_to_json, AllowedHost, EarlierAttempt, TaskOptions};
use serde_json::{json, Value};
use tokio::task::JoinSet;

use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{assert_no_secret, fake_api, host, post, ACCOUNT};

const TOKEN: &str = "cf-VERIFY-TOKEN-must-not-leak-93c1";
/// The policy the batches delete.
const OLD: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
/// A policy the property's batches patch or replace.
const SEEDED: [&str; 4] = [
    "0e7b1d9a-1c0b-4f38-9f59-3f7f1e9a6a01",
    "1f8c2eab-2d1c-4a49-8a6a-4a8a2fab7b12",
    "2a9d3fbc-3e2d-4b5a-9b7b-5b9b3abc8c23",
    "3bae4acd-4f3e-4c6b-8c8c-6cac4bcd9d34",
];

/// A way for a batch's answer to go wrong after the batch may have reached
/// the API, as the fault suite plays it.
#[derive(Clone, Debug)]
struct Fault {
    name: &'static str,
    script: Script,
    /// The failure's kind as the task reports it.
    kind: &'static str,
    /// Whether the task waits for its deadline (no answer ever comes).
    slow: bool,
}

fn faults() -> Vec<Fault> {
    let json = [("Content-Type", "application/json")];
    let ok_head = |length: usize| {
        format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n").into_bytes()
    };
    let half_body = {
        let mut bytes = ok_head(400);
        bytes.extend_from_slice(br#"{"success":true,"errors":[],"#);
        bytes
    };
    let fault = |name, script, kind| Fault {
        name,
        script,
        kind,
        slow: false,
    };
    vec![
        fault(
            "500",
            Script::Reply(response(
                "500 Internal Server Error",
                &[],
                "<html>oops</html>",
            )),
            "api",
        ),
        fault(
            "502 with an HTML page",
            Script::Reply(response(
                "502 Bad Gateway",
                &[("Content-Type", "text/html")],
                "<html>bad gateway</html>",
            )),
            "api",
        ),
        fault(
            "503 with Retry-After",
            Script::Reply(response(
                "503 Service Unavailable",
                &[("Retry-After", "1")],
                "",
            )),
            "api",
        ),
        fault(
            "504",
            Script::Reply(response("504 Gateway Timeout", &[], "")),
            "api",
        ),
        fault(
            "a reset before any answer",
            Script::Reset(Vec::new()),
            "transport",
        ),
        fault("a close before the headers", Script::Close, "transport"),
        fault(
            "a reset in the middle of a 2xx body",
            Script::Reset(half_body.clone()),
            "bad_response",
        ),
        fault(
            "a 2xx that is not JSON",
            Script::Reply(response("200 OK", &json, "not json")),
            "bad_response",
        ),
        fault(
            "a 2xx with truncated JSON",
            Script::Reply(response("200 OK", &json, r#"{"success":true,"result":{"#)),
            "bad_response",
        ),
        fault(
            "a 2xx that is not an envelope",
            Script::Reply(response("200 OK", &json, "[1,2,3]")),
            "bad_response",
        ),
        fault(
            "a 2xx declaring a body past max_response_bytes",
            Script::Reply(ok_head(100_000)),
            "bad_response",
        ),
        fault(
            "an endless 2xx body",
            Script::Flood(ok_head(1 << 30)),
            "bad_response",
        ),
        Fault {
            name: "a server that never answers",
            script: Script::Silent,
            kind: "transport",
            slow: true,
        },
        Fault {
            name: "a 2xx body dripped slower than the deadline",
            script: Script::Drip(ok_head(400), vec![b' '; 400], Duration::from_millis(50)),
            kind: "bad_response",
            slow: true,
        },
        Fault {
            name: "headers then a stalled 2xx body",
            script: Script::Stall(half_body),
            kind: "bad_response",
            slow: true,
        },
    ]
}

/// An account with the policy the batches delete, and the proxy in front
/// of it playing `scripts`.
async fn account(scripts: Vec<Script>) -> (FakeApi, MisbehavingServer) {
    let fake = fake_api(Some(TOKEN)).await;
    let mut seeds = vec![with_id(post("old@example.com"), OLD)];
    for (i, id) in SEEDED.iter().enumerate() {
        seeds.push(with_id(post(&format!("seeded{i}@example.com")), id));
    }
    fake.seed(ACCOUNT, seeds).expect("seeded");
    let proxy = MisbehavingServer::in_front_of(fake.addr(), scripts).await;
    (fake, proxy)
}

fn with_id(mut policy: Value, id: &str) -> Value {
    policy["id"] = json!(id);
    policy
}

/// Runs `input` through the proxy; the task's document, or its failure in
/// the contract's JSON form.
async fn run(
    proxy: &MisbehavingServer,
    input: &Value,
    fault: &Fault,
    extra: Value,
) -> Result<Value, Value> {
    run_as(proxy, input, fault, extra, Delivery::First).await
}

/// [`run`], delivered as an engine delivers it.
async fn run_as(
    proxy: &MisbehavingServer,
    input: &Value,
    fault: &Fault,
    extra: Value,
    delivery: Delivery,
) -> Result<Value, Value> {
    let mut config = json!({
        "api_token": TOKEN,
        "account_id": ACCOUNT,
        "base_url": proxy.base_url(),
        // Room for the batch, then two reads a pause apart (a quarter of
        // the time is kept for them).
        "timeout_ms": if fault.slow { 9000 } else { 12000 },
        "max_response_bytes": 16384,
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    let options = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", proxy.port()).unwrap())
        .with_wall_clock_limit(Duration::from_secs(30));
    let outcome = host()
        .run_delivered(&options, &config.to_string(), &input.to_string(), delivery)
        .await
        .checked()
        .expect("the host completes the call");
    let printed = match &outcome {
        Ok(text) => text.clone(),
        Err(e) => format!("{} {e:?}", error_to_json(e)),
    };
    assert_no_secret(&printed, &[TOKEN]);
    match outcome {
        Ok(text) => Ok(serde_json::from_str(&text).unwrap()),
        Err(e) => Err(error_to_json(&e)),
    }
}

fn delete_and_post() -> Value {
    json!({"deletes": [{"id": OLD}], "posts": [post("new@example.com")]})
}

/// Runs `check` for every fault at once; each gets an account of its own.
async fn for_every_fault<F, Fut>(check: F)
where
    F: Fn(Fault) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut checks = JoinSet::new();
    for fault in faults() {
        checks.spawn(check(fault));
    }
    while let Some(done) = checks.join_next().await {
        if let Err(e) = done {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_applied_before_the_fault_is_reported_applied() {
    for_every_fault(|fault| async move {
        let (fake, proxy) = account(vec![Script::Applied(Box::new(fault.script.clone()))]).await;
        let name = fault.name;
        let output = run(&proxy, &delete_and_post(), &fault, json!({}))
            .await
            .unwrap_or_else(|e| panic!("{name}: expected success, got {e}"));
        assert_eq!(fake.batches_applied(), 1, "{name}");
        assert_eq!(proxy.received().len(), 1, "{name}: the batch is sent once");
        assert_eq!(output["success"], true, "{name}");
        assert_eq!(output["status"], Value::Null, "{name}");
        assert_eq!(
            output["verification"]["outcome"], "applied",
            "{name}: {output}"
        );
        assert_eq!(
            output["verification"]["after"]["kind"], fault.kind,
            "{name}: {output}"
        );
        assert_eq!(output["verification"]["reads"], 1, "{name}: {output}");
        // What was read back: the deleted id, and the created policy with
        // the id the account gave it.
        let created: Vec<Value> = fake
            .policies(ACCOUNT)
            .into_iter()
            .filter(|p| p["pattern"] == "new@example.com")
            .collect();
        assert_eq!(created.len(), 1, "{name}");
        assert_eq!(output["result"]["deletes"], json!([{"id": OLD}]), "{name}");
        assert_eq!(
            output["result"]["posts"][0]["id"], created[0]["id"],
            "{name}: {output}"
        );
    })
    .await;
}

/// What an engine does when it never learnt how an attempt ended (its
/// report was lost, or it timed the task out): it runs the task again.
/// Run again with what the engine knows (when the first attempt started),
/// the batch is applied exactly once, whether the first attempt applied it
/// (then the second sends nothing) or lost it on the way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_run_again_after_any_fault_applies_its_batch_exactly_once() {
    for_every_fault(|fault| async move {
        for applied_first in [true, false] {
            let first_script = if applied_first {
                Script::Applied(Box::new(fault.script.clone()))
            } else {
                fault.script.clone()
            };
            let (fake, proxy) = account(vec![first_script, Script::PassThrough]).await;
            let name = format!("{} (applied first: {applied_first})", fault.name);
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            // However the first attempt ended, its outcome is lost.
            let _ = run(&proxy, &delete_and_post(), &fault, json!({})).await;
            let earlier = EarlierAttempt {
                first_started_unix_ms: started,
            };
            let again = run_as(
                &proxy,
                &delete_and_post(),
                &fault,
                json!({}),
                Delivery::Again(earlier),
            )
            .await
            .unwrap_or_else(|e| panic!("{name}: expected success, got {e}"));
            assert_eq!(fake.batches_applied(), 1, "{name}");
            let verification = &again["verification"];
            assert_eq!(verification["after"]["kind"], "earlier_attempt", "{name}");
            if applied_first {
                assert_eq!(verification["outcome"], "applied", "{name}: {again}");
                assert_eq!(again["attempts"], 0, "{name}: nothing sent again");
                assert_eq!(proxy.received().len(), 1, "{name}");
                let created = &again["result"]["posts"][0];
                assert_eq!(created["pattern"], "new@example.com", "{name}");
            } else {
                assert_eq!(verification["outcome"], "not_visible", "{name}: {again}");
                assert_eq!(again["status"], 200, "{name}");
            }
        }
    })
    .await;
}

/// A check before sending that cannot read the account sends nothing: the
/// failure is `unconfirmed`, retryable after the read's Retry-After.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_run_again_that_cannot_read_sends_nothing() {
    let fault = &faults()[0];
    let (fake, proxy) = account(vec![Script::PassThrough]).await;
    fake.push_list_fault(host_test::fake_api::Fault::status(
        429,
        vec![("retry-after".into(), "30".into())],
    ));
    let earlier = EarlierAttempt {
        first_started_unix_ms: 1,
    };
    let error = run_as(
        &proxy,
        &delete_and_post(),
        fault,
        json!({}),
        Delivery::Again(earlier),
    )
    .await
    .expect_err("nothing can be decided");
    assert_eq!(proxy.received().len(), 0, "the batch was not sent");
    assert_eq!(fake.batches_applied(), 0);
    assert_eq!(
        (
            &error["kind"],
            &error["retryable"],
            &error["may_have_applied"]
        ),
        (&json!("unconfirmed"), &json!(true), &json!(true)),
        "{error}"
    );
    assert_eq!(error["verification"], "incomplete", "{error}");
    assert_eq!(error["retry_after_ms"], 30_000, "{error}");
    assert_eq!(error["attempts"], 0, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_posts_lost_on_the_way_is_not_sent_again() {
    for_every_fault(|fault| async move {
        let (fake, proxy) = account(vec![fault.script.clone()]).await;
        let name = fault.name;
        let error = run(&proxy, &delete_and_post(), &fault, json!({}))
            .await
            .expect_err("the batch was not applied");
        assert_eq!(fake.batches_applied(), 0, "{name}");
        assert_eq!(
            proxy.received().len(),
            1,
            "{name}: posts are never sent again"
        );
        assert_eq!(proxy.reads(), 2, "{name}: read twice before deciding");
        assert_eq!(error["kind"], fault.kind, "{name}: {error}");
        assert_eq!(error["verification"], "not_visible", "{name}: {error}");
        assert_eq!(error["retryable"], true, "{name}: {error}");
        // The request may still be running on the server.
        assert_eq!(error["may_have_applied"], true, "{name}: {error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_without_posts_lost_on_the_way_is_sent_again_while_time_is_left() {
    for_every_fault(|fault| async move {
        let (fake, proxy) = account(vec![fault.script.clone(), Script::PassThrough]).await;
        let name = fault.name;
        let input = json!({"deletes": [{"id": OLD}]});
        let outcome = run(&proxy, &input, &fault, json!({})).await;
        if fault.slow {
            // The attempt used its time and the reads the reserve: nothing
            // is left to send again, and nothing was applied.
            let error = outcome.expect_err("no time left to send again");
            assert_eq!(fake.batches_applied(), 0, "{name}");
            assert_eq!(proxy.received().len(), 1, "{name}");
            assert_eq!(
                (
                    &error["retryable"],
                    &error["may_have_applied"],
                    &error["verification"]
                ),
                (&json!(true), &json!(false), &json!("not_visible")),
                "{name}: {error}"
            );
            return;
        }
        let output = outcome.unwrap_or_else(|e| panic!("{name}: expected success, got {e}"));
        assert_eq!(fake.batches_applied(), 1, "{name}");
        assert_eq!(proxy.received().len(), 2, "{name}");
        assert_eq!(output["attempts"], 2, "{name}: {output}");
        assert_eq!(output["status"], 200, "{name}: {output}");
        assert_eq!(output["verification"], Value::Null, "{name}: {output}");
        assert!(
            fake.policies(ACCOUNT).iter().all(|p| p["id"] != OLD),
            "{name}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_retry_left_a_batch_without_posts_cannot_have_applied() {
    let fault = faults().remove(1);
    let (fake, proxy) = account(vec![fault.script.clone()]).await;
    let input = json!({"deletes": [{"id": OLD}]});
    let error = run(&proxy, &input, &fault, json!({"max_retries": 0}))
        .await
        .expect_err("not applied, and no retry left");
    assert_eq!(fake.batches_applied(), 0);
    assert_eq!(
        (
            &error["retryable"],
            &error["may_have_applied"],
            &error["verification"]
        ),
        (&json!(true), &json!(false), &json!("not_visible")),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_server_applies_after_the_client_gave_up_is_found_on_the_second_read() {
    // The proxy answers 502 at once and passes the batch on a second later,
    // between the two reads.
    let fault = faults().remove(1);
    let late = Script::AppliedLate(Duration::from_secs(1), Box::new(fault.script.clone()));
    let (fake, proxy) = account(vec![late]).await;
    let output = run(&proxy, &delete_and_post(), &fault, json!({}))
        .await
        .unwrap_or_else(|e| panic!("expected success, got {e}"));
    assert_eq!(fake.batches_applied(), 1);
    assert_eq!(proxy.received().len(), 1);
    assert_eq!(output["verification"]["reads"], 2, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switched_off_the_failure_stands_and_nothing_is_read() {
    let fault = faults().remove(1);
    let (fake, proxy) = account(vec![Script::Applied(Box::new(fault.script.clone()))]).await;
    let error = run(
        &proxy,
        &delete_and_post(),
        &fault,
        json!({"verify_after_failure": false}),
    )
    .await
    .expect_err("the 502 stands");
    assert_eq!(fake.batches_applied(), 1);
    assert_eq!(proxy.reads(), 0);
    assert_eq!(
        (&error["may_have_applied"], &error["verification"]),
        (&json!(true), &json!("switched_off"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_back_that_fails_leaves_the_failure_as_it_was() {
    let fault = faults().remove(1);
    let (fake, proxy) = account(vec![Script::Applied(Box::new(fault.script.clone()))]).await;
    fake.push_list_fault(host_test::fake_api::Fault::status(
        429,
        vec![("Retry-After".into(), "300".into())],
    ));
    let error = run(&proxy, &delete_and_post(), &fault, json!({}))
        .await
        .expect_err("the read was rate-limited");
    assert_eq!(fake.batches_applied(), 1);
    assert_eq!(proxy.reads(), 1, "no read after a 429");
    assert_eq!(
        (
            &error["status"],
            &error["may_have_applied"],
            &error["verification"]
        ),
        (&json!(502), &json!(true), &json!("incomplete")),
        "{error}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("429"),
        "{error}"
    );
}

/// Random batches against random fault sequences: a batch is never applied
/// twice; a reported success means the account is as the batch applied
/// once leaves it; `may_have_applied: false` means it is as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_fault_sequence_applies_a_batch_twice_or_misreports_it() {
    let seed = std::env::var("VERIFY_PROPERTY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("VERIFY_PROPERTY_SEED={seed}");
    let mut random = SplitMix(seed);
    let cases: Vec<Case> = (0..24).map(|n| Case::random(n, &mut random)).collect();
    let mut runs = JoinSet::new();
    for case in cases {
        runs.spawn(async move { case.check().await });
    }
    while let Some(done) = runs.join_next().await {
        if let Err(e) = done {
            eprintln!("failed with VERIFY_PROPERTY_SEED={seed}");
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

/// splitmix64: enough spread for test cases, and a seed to replay them.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug)]
struct Case {
    input: Value,
    scripts: Vec<Script>,
    max_retries: u64,
}

impl Case {
    fn random(n: usize, random: &mut SplitMix) -> Case {
        let quick: Vec<Fault> = faults().into_iter().filter(|f| !f.slow).collect();
        let mut input = json!({});
        let mut ids: Vec<&str> = std::iter::once(OLD).chain(SEEDED).collect();
        // Each seeded policy is used at most once in a batch.
        let mut take = |random: &mut SplitMix| {
            let at = random.below(ids.len() as u64) as usize;
            ids.swap_remove(at)
        };
        loop {
            if random.below(2) == 0 {
                input["deletes"] = json!([{"id": take(random)}]);
            }
            if random.below(2) == 0 {
                let patch = json!({"id": take(random), "comments": format!("case {n}")});
                input["patches"] = json!([patch]);
            }
            if random.below(3) == 0 {
                let put = with_id(post(&format!("put{n}@example.com")), take(random));
                input["puts"] = json!([put]);
            }
            if random.below(2) == 0 {
                let posts: Vec<Value> = (0..=random.below(2))
                    .map(|i| post(&format!("case{n}-{i}@example.com")))
                    .collect();
                input["posts"] = json!(posts);
            }
            if !input.as_object().unwrap().is_empty() {
                break;
            }
        }
        let mut scripts = Vec::new();
        for _ in 0..=random.below(3) {
            let fault = quick[random.below(quick.len() as u64) as usize]
                .script
                .clone();
            scripts.push(match random.below(4) {
                0 => fault,
                1 => Script::Applied(Box::new(fault)),
                2 => Script::AppliedLate(
                    Duration::from_millis(50 + random.below(1500)),
                    Box::new(fault),
                ),
                _ => Script::Reply(response(
                    "429 Too Many Requests",
                    &[("Retry-After", "0")],
                    "",
                )),
            });
        }
        scripts.push(Script::PassThrough);
        Case {
            input,
            scripts,
            max_retries: random.below(3),
        }
    }

    async fn check(self) {
        let (fake, proxy) = account(self.scripts.clone()).await;
        let before = normalized(&fake);
        let twin = applied_once(&self.input).await;
        let fault = &faults()[0];
        let outcome = run(
            &proxy,
            &self.input,
            fault,
            json!({"max_retries": self.max_retries}),
        )
        .await;
        // Let a late application land before looking.
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let after = normalized(&fake);
        let applied = fake.batches_applied();
        assert!(
            applied <= 1,
            "applied {applied} times: {self:?} -> {outcome:?}"
        );
        match &outcome {
            Ok(output) => {
                assert_eq!(applied, 1, "{self:?} -> {output}");
                assert_eq!(after, twin, "{self:?} -> {output}");
            }
            Err(error) if error["may_have_applied"] == false => {
                assert_eq!(applied, 0, "{self:?} -> {error}");
                assert_eq!(after, before, "{self:?} -> {error}");
            }
            Err(_) => {}
        }
    }
}

/// The account as the batch applied once leaves it, on a fake of its own.
async fn applied_once(input: &Value) -> Vec<Value> {
    let (fake, proxy) = account(vec![Script::PassThrough]).await;
    let output = run(&proxy, input, &faults()[0], json!({}))
        .await
        .unwrap_or_else(|e| panic!("the batch applies: {e}"));
    assert_eq!(output["status"], 200);
    normalized(&fake)
}

/// The account's policies without what differs between two accounts that
/// hold the same policies (new ids and times), in a fixed order.
fn normalized(fake: &FakeApi) -> Vec<Value> {
    let mut policies: Vec<Value> = fake
        .policies(ACCOUNT)
        .into_iter()
        .map(|mut p| {
            let fields = p.as_object_mut().unwrap();
            for key in ["created_at", "modified_at", "last_modified"] {
                fields.remove(key);
            }
            if !SEEDED.contains(&fields["id"].as_str().unwrap_or_default()) && fields["id"] != OLD {
                fields.remove("id");
            }
            p
        })
        .collect();
    policies.sort_by_key(|p| p.to_string());
    policies
}
