//! `task-host` end to end, as a user runs it: a `fake-api` process on
//! loopback, `task-host run` processes against it, files, exit codes and
//! stdout. Nothing here talks to anything but 127.0.0.1.

use crate::support::loopback_http::{connect, send_on};
use crate::support::{assert_no_secret, post, with_fields, TempDir, ACCOUNT};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};

const TOKEN: &str = "e2e-TOKEN-that-must-never-be-printed";

/// A `task-host fake-api` process, killed when dropped.
struct FakeApiProcess {
    child: Child,
    base_url: String,
    port: u16,
}

impl FakeApiProcess {
    fn start() -> Self {
        Self::start_with(&[], None)
    }

    /// With more flags, run from `dir` (where a `--seed` file is).
    fn start_with(flags: &[&str], dir: Option<&TempDir>) -> Self {
        let mut command = crate::support::task_host_command();
        if let Some(dir) = dir {
            command.current_dir(dir.path());
        }
        let mut child = command
            .args(["fake-api", "--listen", "127.0.0.1:0", "--token", TOKEN])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("fake-api starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let started: Value =
            serde_json::from_str(&line).expect("fake-api prints its base URL as JSON");
        let base_url = started["base_url"].as_str().unwrap().to_string();
        let port = base_url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        FakeApiProcess {
            child,
            base_url,
            port,
        }
    }

    /// One HTTP/1.1 exchange on a fresh loopback connection.
    fn http(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let method = http::Method::from_bytes(method.as_bytes()).unwrap();
        let authorization = format!("Bearer {TOKEN}");
        let headers = [
            ("authorization", authorization.as_str()),
            ("content-type", "application/json"),
        ];
        let answer = runtime.block_on(async {
            let mut sender = connect(addr).await;
            send_on(&mut sender, addr, method, path, &headers, body)
                .await
                .unwrap()
        });
        (answer.status, answer.json)
    }

    fn policies(&self) -> Vec<Value> {
        let (status, body) = self.http(
            "GET",
            &format!(
                "/client/v4/accounts/{ACCOUNT}/email-security/settings/allow_policies?per_page=100"
            ),
            "",
        );
        assert_eq!(status, 200, "{body}");
        body["result"].as_array().unwrap().clone()
    }

    /// API requests the fake has received (its admin routes not counted).
    fn requests_received(&self) -> u64 {
        let (status, body) = self.http("GET", "/__fake/requests", "");
        assert_eq!(status, 200, "{body}");
        body["result"]["requests"].as_u64().unwrap()
    }

    fn queue_faults(&self, faults: Value) {
        let (status, _) = self.http("POST", "/__fake/faults", &faults.to_string());
        assert_eq!(status, 204);
    }
}

impl Drop for FakeApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `task-host run` with these documents; the token comes from the environment.
fn run(
    fake: &FakeApiProcess,
    name: &str,
    config: Value,
    input: Value,
    extra: &[&str],
) -> (Output, Value) {
    let dir = TempDir::new(&format!("e2e-{name}"));
    let base = json!({"base_url": fake.base_url, "account_id": ACCOUNT, "timeout_ms": 5000});
    std::fs::write(
        dir.join("config.json"),
        with_fields(base, config).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("input.json"), input.to_string()).unwrap();
    let allow = format!("127.0.0.1:{}", fake.port);
    let mut args = vec!["run", "--config", "config.json", "--input", "input.json"];
    if !extra.contains(&"--no-allow") {
        args.extend(["--allow-host", &allow]);
    }
    args.extend(extra.iter().filter(|a| **a != "--no-allow"));
    let out = crate::support::task_host_command()
        .args(&args)
        .current_dir(dir.path())
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .output()
        .unwrap();
    for stream in [&out.stdout, &out.stderr] {
        assert_no_secret(&String::from_utf8_lossy(stream), &[TOKEN]);
    }
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    let doc = serde_json::from_str(&text).unwrap_or(Value::Null);
    if !doc.is_null() {
        crate::support::documents::check_printed(&doc);
    }
    (out, doc)
}

#[test]
fn a_batch_is_applied_and_can_be_listed_back() {
    let fake = FakeApiProcess::start();
    let (out, doc) = run(
        &fake,
        "happy",
        json!({}),
        json!({"posts": [post("a@example.com"), post("b@example.com")]}),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["status"], 200);
    let created = doc["result"]["posts"].as_array().unwrap();
    assert_eq!(created.len(), 2);
    let listed = fake.policies();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["pattern"], "a@example.com");
    assert_eq!(listed[0]["id"], created[0]["id"]);

    // A second batch deletes one and patches the other.
    let input = json!({"deletes": [{"id": created[0]["id"]}], "patches": [{"id": created[1]["id"], "comments": "kept"}]});
    let (out, _) = run(&fake, "second", json!({}), input, &[]);
    assert_eq!(out.status.code(), Some(0));
    let listed = fake.policies();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["comments"], "kept");
}

#[test]
fn an_unknown_id_rejects_the_whole_batch() {
    let fake = FakeApiProcess::start();
    let input = json!({"deletes": [{"id": 999999}], "posts": [post("c@example.com")]});
    let (out, doc) = run(&fake, "unknown", json!({}), input, &[]);
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(doc["error"]["kind"], "api");
    assert_eq!(doc["error"]["retryable"], false);
    assert_eq!(doc["error"]["errors"][0]["pointer"], "/deletes/0/id");
    assert!(
        fake.policies().is_empty(),
        "part of a rejected batch was applied"
    );
}

#[test]
fn a_dry_run_sends_nothing() {
    let fake = FakeApiProcess::start();
    let (out, doc) = run(
        &fake,
        "dry",
        json!({}),
        json!({"posts": [post("d@example.com")]}),
        &["--dry-run"],
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["request"]["headers"]["Authorization"], "[redacted]");
    assert_eq!(fake.requests_received(), 0, "a dry run reached the API");
}

#[test]
fn a_rate_limit_past_the_deadline_exits_75() {
    let fake = FakeApiProcess::start();
    fake.queue_faults(json!([{"status": 429, "headers": {"retry-after": "60"}}]));
    let (out, doc) = run(
        &fake,
        "ratelimit",
        json!({}),
        json!({"posts": [post("e@example.com")]}),
        &[],
    );
    assert_eq!(out.status.code(), Some(75), "{doc}");
    assert_eq!(doc["error"]["kind"], "api");
    assert_eq!(doc["error"]["retry_after_ms"], 60000);
    assert_eq!(doc["error"]["may_have_applied"], false);
    assert!(fake.policies().is_empty());
}

#[test]
fn a_batch_applied_behind_a_502_exits_0_and_one_lost_exits_75() {
    let fake = FakeApiProcess::start();
    fake.queue_faults(json!([{"status": 502, "after_applying": true}]));
    let (out, doc) = run(
        &fake,
        "verified",
        json!({"timeout_ms": 12000}),
        json!({"posts": [post("g@example.com")]}),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["verification"]["outcome"], "applied", "{doc}");
    let listed = fake.policies();
    assert_eq!(listed.len(), 1);
    assert_eq!(doc["result"]["posts"][0]["id"], listed[0]["id"]);

    // The same policy deleted, the request lost before it was applied, and
    // no retry allowed: read back twice, it was not applied.
    fake.queue_faults(json!([{"reset": true}]));
    let input = json!({"deletes": [{"id": listed[0]["id"]}]});
    let (out, doc) = run(
        &fake,
        "lost",
        json!({"timeout_ms": 12000, "max_retries": 0}),
        input,
        &[],
    );
    assert_eq!(out.status.code(), Some(75), "{doc}");
    assert_eq!(doc["error"]["may_have_applied"], false, "{doc}");
    assert_eq!(doc["error"]["verification"], "not_visible", "{doc}");
    assert_eq!(fake.policies().len(), 1, "the delete was not applied");
}

#[test]
fn a_destination_not_allowed_is_denied_and_not_reached() {
    let fake = FakeApiProcess::start();
    let (out, doc) = run(
        &fake,
        "denied",
        json!({}),
        json!({"posts": [post("f@example.com")]}),
        &["--no-allow"],
    );
    assert_eq!(out.status.code(), Some(1), "{doc}");
    assert_eq!(doc["error"]["kind"], "denied");
    assert_eq!(doc["error"]["attempts"], 0);
    assert_eq!(
        fake.requests_received(),
        0,
        "a denied request reached the API"
    );
}

#[test]
fn bad_flags_exit_2() {
    let out = crate::support::task_host_command()
        .args(["run", "--config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn fake_api_seed_with_legacy_ids_holds_integer_ids_a_run_can_change() {
    let dir = TempDir::new("e2e-seed");
    let seed = json!({ ACCOUNT: [
        with_fields(post("old-1@example.com"), json!({"id": 2401})),
        with_fields(post("old-2@example.com"), json!({"id": 2402})),
    ]});
    std::fs::write(dir.join("seed.json"), seed.to_string()).unwrap();
    let fake = FakeApiProcess::start_with(&["--legacy-ids", "--seed", "seed.json"], Some(&dir));
    let listed: Vec<Value> = fake.policies().iter().map(|p| p["id"].clone()).collect();
    assert_eq!(listed, [json!(2401), json!(2402)]);

    let input = json!({
        "deletes": [{"id": 2401}],
        "patches": [{"id": 2402, "comments": "patched"}],
        "posts": [post("new@example.com")],
    });
    let (out, doc) = run(&fake, "seed-legacy", json!({}), input, &[]);
    assert_eq!(out.status.code(), Some(0), "{doc}");
    assert_eq!(doc["result"]["deletes"], json!([{"id": 2401}]), "{doc}");
    // New policies are numbered as the older API numbered them.
    assert_eq!(doc["result"]["posts"][0]["id"], 2403, "{doc}");
    let listed = fake.policies();
    let ids: Vec<&Value> = listed.iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, [&json!(2402), &json!(2403)]);
    assert_eq!(listed[0]["comments"], "patched");
}

#[test]
fn a_seed_the_fake_cannot_take_exits_2_naming_each_pointer() {
    let dir = TempDir::new("e2e-bad-seed");
    let fake_api = |seed_file: &str| {
        crate::support::task_host_command()
            .args(["fake-api", "--listen", "127.0.0.1:0", "--seed", seed_file])
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // An integer id without --legacy-ids, and a policy without a pattern.
    let mut unpatterned = post("x@example.com");
    unpatterned.as_object_mut().unwrap().remove("pattern");
    let bad =
        json!({ ACCOUNT: [with_fields(post("a@example.com"), json!({"id": 2401})), unpatterned] });
    std::fs::write(dir.join("bad.json"), bad.to_string()).unwrap();
    let out = fake_api("bad.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "it printed a base URL: it listened");
    assert!(stderr.contains(&format!("/{ACCOUNT}/0/id: ")), "{stderr}");
    assert!(stderr.contains("--legacy-ids"), "{stderr}");
    assert!(
        stderr.contains(&format!("/{ACCOUNT}/1/pattern: is required")),
        "{stderr}"
    );

    std::fs::write(dir.join("broken.json"), "{\"023e\": [").unwrap();
    let out = fake_api("broken.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--seed broken.json") && stderr.contains("not JSON"),
        "{stderr}"
    );

    let out = fake_api("missing.json");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("missing.json"), "{stderr}");
}
