//! Load soak: 2,000 tasks of the real component, 16 at a time, through one
//! `TaskHost`, against the fake API on loopback. Every output is checked
//! against what its task sent, and the process's resident memory must stay
//! flat once warmed up. Run with `--nocapture` to see the figures.

use std::time::{Duration, Instant};

use super::{status_kib, MEASURING};
use host_test::fake_api::{FakeApi, FakeApiOptions};
use host_test::{default_component_path, error_to_json, AllowedHost, TaskHost, TaskOptions};
use serde_json::{json, Value};

const TASKS: usize = 2_000;
const IN_FLIGHT: usize = 16;
/// Tasks before the first memory reading: the runtime, the allocator and
/// the connection pools reach their working size.
const WARM_UP: usize = 300;
/// Allowed growth of the resident set between the warm-up and the end.
const MAX_RSS_GROWTH_KIB: u64 = 64 * 1024;

const TOKEN: &str = "soak-test-token-never-printed-7c2e";

/// One of the [`IN_FLIGHT`] lanes: its own account, its tasks run one after
/// the other, each deleting what the previous one created.
struct Lane {
    account: String,
    /// `(id, pattern)` of the policies the lane's last task created.
    created: Vec<(Value, String)>,
}

fn account(lane: usize) -> String {
    format!("{:032x}", 0x50a4_0000_u64 + lane as u64)
}

fn post(pattern: &str) -> Value {
    json!({"pattern": pattern, "pattern_type": "EMAIL", "is_regex": false,
           "is_exempt_recipient": false, "is_trusted_sender": true,
           "is_acceptable_sender": false, "verify_sender": true})
}

/// Runs task `i` for `lane` and checks its output against its input.
async fn task(
    host: &TaskHost,
    opts: &TaskOptions,
    base_url: &str,
    lane: &mut Lane,
    i: usize,
) -> Result<(), String> {
    let patterns = [
        format!("soak-{i}-a@example.com"),
        format!("soak-{i}-b@example.org"),
    ];
    let deletes: Vec<Value> = lane
        .created
        .iter()
        .map(|(id, _)| json!({ "id": id }))
        .collect();
    let input = json!({"deletes": deletes, "posts": [post(&patterns[0]), post(&patterns[1])]});
    let config = json!({"api_token": TOKEN, "account_id": lane.account, "base_url": base_url});

    let output = match host
        .run_task(opts, &config.to_string(), &input.to_string())
        .await
    {
        Err(e) => return Err(format!("task {i}: the host failed: {e:#}")),
        Ok(Err(e)) => return Err(format!("task {i}: {}", error_to_json(&e))),
        Ok(Ok(text)) => text,
    };
    let out: Value =
        serde_json::from_str(&output).map_err(|e| format!("task {i}: output not JSON: {e}"))?;
    let wrong = |what: &str| Err(format!("task {i}: {what}: {out}"));

    if out["success"] != true || out["status"] != 200 || out["attempts"] != 1 {
        return wrong("not a first-attempt success");
    }
    let counts = json!({"deletes": deletes.len(), "patches": 0, "puts": 0, "posts": 2});
    if out["counts"] != counts || out["skipped"] != false {
        return wrong("wrong counts");
    }
    let result = &out["result"];
    if result["deletes"] != Value::Array(deletes.clone()) {
        return wrong("the deletes are not the previous task's policies");
    }
    let Some(posts) = result["posts"].as_array().filter(|p| p.len() == 2) else {
        return wrong("expected two created policies");
    };
    let mut created = Vec::new();
    for (policy, pattern) in posts.iter().zip(&patterns) {
        let id = &policy["id"];
        let fresh = id.is_string() && !lane.created.iter().any(|(old, _)| old == id);
        if policy["pattern"] != pattern.as_str() || !fresh {
            return wrong("a created policy does not match what was sent");
        }
        created.push((id.clone(), pattern.clone()));
    }
    if created[0].0 == created[1].0 {
        return wrong("two policies with one id");
    }
    lane.created = created;
    Ok(())
}

/// Tasks `range` across the lanes, lane `k` taking the indices `≡ k` modulo
/// [`IN_FLIGHT`], all lanes at once. Returns the lanes and every failure.
async fn run_tasks(
    host: &'static TaskHost,
    opts: &TaskOptions,
    base_url: &str,
    lanes: Vec<Lane>,
    range: std::ops::Range<usize>,
) -> (Vec<Lane>, Vec<String>) {
    let mut workers = tokio::task::JoinSet::new();
    for (k, mut lane) in lanes.into_iter().enumerate() {
        let opts = opts.clone();
        let base_url = base_url.to_string();
        let range = range.clone();
        workers.spawn(async move {
            let mut failures = Vec::new();
            for i in range.filter(|i| i % IN_FLIGHT == k) {
                if let Err(failure) = task(host, &opts, &base_url, &mut lane, i).await {
                    failures.push(failure);
                }
            }
            (k, lane, failures)
        });
    }
    let mut done: Vec<(usize, Lane)> = Vec::new();
    let mut failures = Vec::new();
    while let Some(joined) = workers.join_next().await {
        let (k, lane, lane_failures) = joined.expect("a lane panicked");
        done.push((k, lane));
        failures.extend(lane_failures);
    }
    done.sort_by_key(|(k, _)| *k);
    (done.into_iter().map(|(_, lane)| lane).collect(), failures)
}

/// `(VmRSS, VmHWM)` of this process, in KiB.
fn memory_kib() -> (u64, u64) {
    (status_kib("VmRSS"), status_kib("VmHWM"))
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_tasks_sixteen_at_a_time_stay_correct_and_bounded() {
    let _alone = MEASURING.lock().await;
    let host: &'static TaskHost = Box::leak(Box::new(
        TaskHost::load(&default_component_path()).expect("run `make component` first"),
    ));
    let fake = FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: Some(TOKEN.to_string()),
        // A soak of memory, not of the rate limit: 2000 tasks spend more
        // than Cloudflare's 1200 requests a window, and the host's gate
        // would rightly hold them back.
        rate_budget: host_test::fake_api::RateBudget {
            limit: u32::MAX,
            window: Duration::from_secs(300),
            lockout: Duration::from_secs(1),
        },
        ..FakeApiOptions::default()
    })
    .await
    .expect("the fake API starts on loopback");
    let base_url = fake.base_url();
    let opts = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap())
        .with_wall_clock_limit(Duration::from_secs(60));
    let lanes: Vec<Lane> = (0..IN_FLIGHT)
        .map(|k| Lane {
            account: account(k),
            created: Vec::new(),
        })
        .collect();

    let started = Instant::now();
    let (lanes, mut failures) = run_tasks(host, &opts, &base_url, lanes, 0..WARM_UP).await;
    let (rss_warm, hwm_warm) = memory_kib();
    let (lanes, more) = run_tasks(host, &opts, &base_url, lanes, WARM_UP..TASKS).await;
    failures.extend(more);
    let elapsed = started.elapsed();
    let (rss_end, hwm_end) = memory_kib();

    eprintln!(
        "soak: {TASKS} tasks, {IN_FLIGHT} in flight, {elapsed:.2?} ({:.0} tasks/s), {} failed",
        TASKS as f64 / elapsed.as_secs_f64(),
        failures.len()
    );
    eprintln!(
        "soak: VmRSS after {WARM_UP} tasks {rss_warm} KiB, at the end {rss_end} KiB \
         (growth {} KiB); VmHWM {hwm_warm} KiB then {hwm_end} KiB",
        rss_end as i64 - rss_warm as i64
    );

    assert!(
        failures.is_empty(),
        "{} of {TASKS} tasks failed, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Each account holds exactly what its lane's last task created.
    for lane in &lanes {
        let mut stored: Vec<(Value, String)> = fake
            .policies(&lane.account)
            .iter()
            .map(|p| (p["id"].clone(), p["pattern"].as_str().unwrap().to_string()))
            .collect();
        stored.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(stored, lane.created, "account {}", lane.account);
    }
    assert_eq!(fake.requests(), TASKS);
    assert!(
        rss_end.saturating_sub(rss_warm) < MAX_RSS_GROWTH_KIB,
        "resident memory grew by {} KiB over {} tasks (bound {MAX_RSS_GROWTH_KIB} KiB)",
        rss_end - rss_warm,
        TASKS - WARM_UP
    );
    fake.shutdown().await;
}
