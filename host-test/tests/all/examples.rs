//! The files in `examples/` are what users copy: each must parse, and each
//! must agree with what the component actually does.

use crate::support::documents::Checked;
use crate::support::{examples_dir, host, read_example as read};
use host_test::TaskOptions;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn json_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            json_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "json") {
            found.push(path);
        }
    }
}

/// The example config with a stand-in token, as `task-host` would add it
/// from the environment.
fn config() -> String {
    let mut c = read("config.json");
    c["api_token"] = json!("example-token");
    c.to_string()
}

async fn prepare(input: &Value) -> Value {
    let out = host()
        .prepare(&TaskOptions::default(), &config(), &input.to_string())
        .await
        .checked()
        .unwrap();
    serde_json::from_str(&out.unwrap_or_else(|e| panic!("{e:?}"))).unwrap()
}

#[test]
fn every_example_file_is_json() {
    let mut files = Vec::new();
    json_files(&examples_dir(), &mut files);
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
}

#[tokio::test]
async fn the_example_batch_passes_prepare_without_warnings() {
    let preview = prepare(&read("batch.json")).await;
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["warnings"], json!([]));
    assert_eq!(
        preview["counts"],
        json!({"deletes": 1, "patches": 1, "puts": 1, "posts": 3})
    );
}

#[tokio::test]
async fn the_simworkflow_request_is_the_one_the_component_builds() {
    let preview = prepare(&read("batch.json")).await;
    let definition = read("simworkflow/allow-policies-sync.json");
    let task = &definition["tasks"][definition["startTask"].as_str().unwrap()];
    assert_eq!(task["type"], "Http");
    let http = &task["httpRequest"];
    let request = &preview["request"];
    assert_eq!(http["url"], request["url"]);
    assert_eq!(http["method"], request["method"]);
    assert_eq!(http["body"], request["body"]);
    for (name, value) in request["headers"].as_object().unwrap() {
        if name == "Authorization" {
            assert!(
                http["headers"][name]
                    .as_str()
                    .unwrap()
                    .starts_with("Bearer ${"),
                "the token must come from a secret"
            );
        } else {
            assert_eq!(&http["headers"][name], value, "{name}");
        }
    }
    for key in ["intervalSeconds", "maxAttempts", "backoffRate"] {
        assert!(task["retry"][key].is_number(), "{key}");
    }
}

#[tokio::test]
async fn the_conductor_workflow_passes_exactly_the_task_input() {
    let keys = ["account_id", "deletes", "patches", "puts", "posts"];
    let workflow = read("conductor/workflow.json");
    let parameters = workflow["tasks"][0]["inputParameters"].as_object().unwrap();
    let mut names: Vec<&str> = parameters.keys().map(String::as_str).collect();
    names.sort();
    let mut expected = keys.to_vec();
    expected.sort();
    assert_eq!(names, expected);
    let task_def = read("conductor/task-def.json");
    assert_eq!(task_def["name"], workflow["tasks"][0]["name"]);
    assert_eq!(task_def["inputKeys"], json!(keys));
    // A rate-limited task waits IN_PROGRESS through Cloudflare's 300 s
    // lockout, then runs once more (timeout_ms of the example config plus
    // the 5 s the worker gives a task): all within timeoutSeconds.
    let run_s = read("config.json")["timeout_ms"].as_u64().unwrap_or(30_000) / 1000 + 5;
    assert!(task_def["timeoutSeconds"].as_u64().unwrap() >= 300 + run_s);
    assert!(task_def["responseTimeoutSeconds"].as_u64().unwrap() > run_s);

    // The workflow input of the start request is a valid task input.
    let start = read("conductor/start-workflow.json");
    let preview = prepare(&start["input"]).await;
    assert_eq!(preview["counts"]["posts"], 3);
}

/// The numbers of the example Conductor definition are the ones
/// docs/conductor.md gives and its description explains, and its rate
/// limit keeps a fleet inside Cloudflare's budget.
#[test]
fn the_conductor_definition_paces_the_fleet_as_its_docs_say() {
    let task_def = read("conductor/task-def.json");
    let docs_path = examples_dir().join("../docs/conductor.md");
    let docs = std::fs::read_to_string(&docs_path)
        .unwrap_or_else(|e| panic!("{}: {e}", docs_path.display()));
    for field in [
        "timeoutSeconds",
        "responseTimeoutSeconds",
        "retryCount",
        "rateLimitPerFrequency",
        "rateLimitFrequencyInSeconds",
        "concurrentExecLimit",
    ] {
        assert_eq!(
            task_def[field],
            json!(documented_number(&docs, field)),
            "{field}: task-def.json and docs/conductor.md differ"
        );
    }
    let description = task_def["description"].as_str().unwrap();
    let number = |field: &str| {
        let value = task_def[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is not a whole number"));
        assert!(
            description.contains(&format!("{field} {value}")),
            "the description does not say how {field} {value} was chosen"
        );
        value
    };
    let per_window = number("rateLimitPerFrequency");
    let window_s = number("rateLimitFrequencyInSeconds");
    let concurrent = number("concurrentExecLimit");
    assert!(per_window > 0 && window_s > 0 && concurrent > 0);
    assert!(
        description.contains("Redis"),
        "the description must say the rate limit needs Redis"
    );

    // Cloudflare allows 1,200 requests in 300 s per user; docs/cloudflare-api.md
    // keeps a quarter for people, and a four-list batch is one request. The
    // server counts a sliding window, so any 300 s holds at most this many
    // windows' worth of tasks.
    let fleet_share = 1200 * 3 / 4;
    let most_in_five_minutes = per_window * 300u64.div_ceil(window_s);
    assert!(
        most_in_five_minutes <= fleet_share,
        "{most_in_five_minutes} tasks in 5 minutes pass the fleet's {fleet_share} requests"
    );
    // A window far shorter than Cloudflare's spreads the tasks out.
    assert!(window_s <= 60, "a {window_s} s window lets a burst through");
}

/// The value of `field` in a table row `| `field` | value | why |` of a
/// document.
fn documented_number(doc: &str, field: &str) -> u64 {
    let row = format!("| `{field}` | ");
    let line = doc
        .lines()
        .find(|line| line.starts_with(&row))
        .unwrap_or_else(|| panic!("docs/conductor.md has no row for {field}"));
    let cell = line[row.len()..].split(" |").next().unwrap_or_default();
    cell.trim()
        .parse()
        .unwrap_or_else(|e| panic!("docs/conductor.md gives {field} as {cell:?}: {e}"))
}

/// The sync example, run twice against the fake API: the account becomes
/// the example's list, and the second run has nothing to do. The Conductor
/// workflow passes the same input through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_example_brings_an_account_to_its_list() {
    let fake = crate::support::fake_api(None).await;
    // The account holds an unlisted policy, and one of the list's with a
    // flag the list changes.
    let input = read("sync.json");
    let mut changed = input["sync"]["policies"][0].clone();
    changed["verify_sender"] = json!(false);
    fake.seed(
        crate::support::ACCOUNT,
        [crate::support::post("unlisted@example.com"), changed],
    )
    .unwrap();
    let mut config = read("config.json");
    config["api_token"] = json!("example-token");
    config["base_url"] = json!(fake.base_url());
    let options = TaskOptions::default().with_allowed_host(
        host_test::AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap(),
    );
    let start = read("conductor/start-workflow-sync.json");
    assert_eq!(start["input"], input);
    let run = || async {
        let out = host()
            .run_task(&options, &config.to_string(), &input.to_string())
            .await
            .checked()
            .unwrap()
            .unwrap_or_else(|e| panic!("{}", host_test::error_to_json(&e)));
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let first = run().await;
    assert_eq!(
        (
            &first["sync"]["created"],
            &first["sync"]["changed"],
            &first["sync"]["deleted"]
        ),
        (&json!(2), &json!(1), &json!(1)),
        "{first}"
    );
    assert_eq!(first["warnings"], json!([]));
    let second = run().await;
    assert_eq!(second["skipped"], true, "{second}");
    assert_eq!(fake.policies(crate::support::ACCOUNT).len(), 3);
}
