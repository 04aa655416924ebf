//! `export-policies` through the real component against the fake API: the
//! account's policies come back as a sync input, what such an input cannot
//! carry is left out with the reason, and a sync of the document plans
//! nothing. The host lets an export read and nothing else; `task-host
//! export` prints the document.

use std::path::Path;
use std::process::Output;

use host_test::fake_api::{FakeApi, Fault};
use host_test::{error_kind, error_to_json, AllowedHost, TaskHost, TaskOptions};
use serde_json::{json, Value};

use crate::support::misbehaving_server::{response, MisbehavingServer, Script};
use crate::support::{
    assert_no_secret, fake_api, host, hostile_component_path, post, with_fields, TempDir, ACCOUNT,
};

const TOKEN: &str = "cf-EXPORT-TOKEN-must-not-leak-77d1";

fn options(fake: &FakeApi) -> TaskOptions {
    TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", fake.addr().port()).unwrap())
}

fn config(fake: &FakeApi) -> String {
    json!({"api_token": TOKEN, "account_id": ACCOUNT, "base_url": fake.base_url(), "timeout_ms": 60000})
        .to_string()
}

async fn export(fake: &FakeApi, input: Value) -> Result<Value, Value> {
    let outcome = host()
        .export_policies(&options(fake), &config(fake), &input.to_string())
        .await
        .expect("the host completes the call");
    match outcome {
        Ok(text) => {
            assert_no_secret(&text, &[TOKEN]);
            Ok(serde_json::from_str(&text).expect("the export is JSON"))
        }
        Err(e) => Err(error_to_json(&e)),
    }
}

/// An account as years of hands leave it: ordinary policies of every
/// type, one of the `UNKNOWN` type only older policies have, one whose
/// private IP range the API no longer takes, and a second copy of an
/// address in other letter case. The seeded policies, ids included.
fn seed_mixed_account(fake: &FakeApi) -> Vec<Value> {
    fake.seed(
        ACCOUNT,
        vec![
            post("alerts@monitoring.example.com"),
            with_fields(
                post("example.net"),
                json!({"pattern_type": "DOMAIN", "comments": "partner", "verify_sender": false}),
            ),
            with_fields(
                post(".*@billing\\.example\\.org"),
                json!({"is_regex": true, "is_acceptable_sender": true, "is_trusted_sender": false}),
            ),
            with_fields(post("8.8.8.0/24"), json!({"pattern_type": "IP"})),
            with_fields(post("legacy entry"), json!({"pattern_type": "UNKNOWN"})),
            with_fields(post("10.0.0.0/8"), json!({"pattern_type": "IP"})),
            post("ALERTS@monitoring.example.com"),
        ],
    )
    .expect("the fake takes the seeds")
}

fn entries(doc: &Value) -> &Vec<Value> {
    doc["sync"]["policies"].as_array().expect("sync.policies")
}

fn left_out(doc: &Value) -> &Vec<Value> {
    doc["sync"]["left_out"].as_array().expect("sync.left_out")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_comes_back_as_a_sync_input_with_what_it_cannot_carry_left_out() {
    let fake = fake_api(Some(TOKEN)).await;
    let seeded = seed_mixed_account(&fake);
    let doc = export(&fake, json!({})).await.unwrap();
    assert_eq!(fake.requests(), 1, "one read");
    assert_eq!(fake.batches_applied(), 0);
    assert_eq!(doc["account_id"], ACCOUNT);
    assert_eq!(doc["sync"]["delete_unlisted"], false);

    // The four ordinary policies, oldest first, each with its id and every
    // field as the account holds it.
    let ids: Vec<&Value> = entries(&doc).iter().map(|e| &e["id"]).collect();
    let expected: Vec<&Value> = seeded[..4].iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, expected, "{doc}");
    for (entry, stored) in entries(&doc).iter().zip(&seeded) {
        for field in [
            "pattern",
            "pattern_type",
            "is_regex",
            "is_exempt_recipient",
            "is_trusted_sender",
            "is_acceptable_sender",
            "verify_sender",
        ] {
            assert_eq!(entry[field], stored[field], "{field} of {entry}");
        }
    }
    assert_eq!(entries(&doc)[0]["comments"], Value::Null);
    assert_eq!(entries(&doc)[1]["comments"], "partner");

    // The other three beside the list, each with its id, pattern and why.
    let reasons: Vec<(&Value, &Value, &Value)> = left_out(&doc)
        .iter()
        .map(|l| (&l["id"], &l["pattern"], &l["reason"]))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                &seeded[4]["id"],
                &json!("legacy entry"),
                &json!("unknown_pattern_type")
            ),
            (&seeded[5]["id"], &json!("10.0.0.0/8"), &json!("refused")),
            (
                &seeded[6]["id"],
                &json!("ALERTS@monitoring.example.com"),
                &json!("duplicate")
            ),
        ],
        "{doc}"
    );
    let message = |i: usize| left_out(&doc)[i]["message"].as_str().unwrap();
    assert!(message(0).contains("UNKNOWN"), "{}", message(0));
    assert!(message(1).contains("/pattern: "), "{}", message(1));
    assert!(
        message(2).contains(seeded[0]["id"].as_str().unwrap()),
        "{}",
        message(2)
    );
}

/// The point of an export: run as a sync, the document changes nothing.
/// The preview plans nothing, keeps the left-out policies, and the run
/// sends no batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_the_exported_document_plans_nothing() {
    let fake = fake_api(Some(TOKEN)).await;
    seed_mixed_account(&fake);
    let doc = export(&fake, json!({})).await.unwrap();
    let before = fake.policies(ACCOUNT);

    let preview = host()
        .prepare(&options(&fake), &config(&fake), &doc.to_string())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the exported document is refused: {}", error_to_json(&e)));
    let preview: Value = serde_json::from_str(&preview).unwrap();
    assert_eq!(
        preview["counts"],
        json!({"deletes": 0, "patches": 0, "puts": 0, "posts": 0}),
        "{preview}"
    );
    let plan = &preview["plan"];
    for list in ["create", "change", "delete", "batches"] {
        assert_eq!(plan[list], json!([]), "{list}: {plan}");
    }
    assert_eq!(plan["unchanged"], 4, "{plan}");
    assert_eq!(plan["kept_unlisted"], 3, "{plan}");

    let ran = host()
        .run_task(&options(&fake), &config(&fake), &doc.to_string())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("the sync failed: {}", error_to_json(&e)));
    let ran: Value = serde_json::from_str(&ran).unwrap();
    assert_eq!(ran["skipped"], true, "{ran}");
    assert_eq!(fake.batches_applied(), 0, "no write");
    assert_eq!(fake.policies(ACCOUNT), before);
}

/// Edited, the document is an ordinary sync input: a changed flag becomes
/// one patch of that policy, found by its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_export_patches_only_what_was_edited() {
    let fake = fake_api(Some(TOKEN)).await;
    let seeded = fake
        .seed(ACCOUNT, vec![post("a@example.com"), post("b@example.com")])
        .unwrap();
    let mut doc = export(&fake, json!({})).await.unwrap();
    doc["sync"]["policies"][1]["verify_sender"] = json!(false);
    let ran = host()
        .run_task(&options(&fake), &config(&fake), &doc.to_string())
        .await
        .unwrap()
        .unwrap();
    let ran: Value = serde_json::from_str(&ran).unwrap();
    assert_eq!(
        (&ran["sync"]["changed"], &ran["sync"]["unchanged"]),
        (&json!(1), &json!(1)),
        "{ran}"
    );
    let patched = &ran["sync"]["batches"][0]["result"]["patches"][0];
    assert_eq!(patched["id"], seeded[1]["id"]);
    assert_eq!(patched["verify_sender"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_input_may_name_another_account_and_nothing_else() {
    let fake = fake_api(Some(TOKEN)).await;
    let other = "0f0e0d0c0b0a09080706050403020100";
    fake.seed(other, vec![post("other@example.com")]).unwrap();
    let doc = export(&fake, json!({ "account_id": other })).await.unwrap();
    assert_eq!(doc["account_id"], other);
    assert_eq!(entries(&doc)[0]["pattern"], "other@example.com");

    let requests = fake.requests();
    let err = export(&fake, json!({"sync": {"policies": []}}))
        .await
        .unwrap_err();
    assert_eq!(err["kind"], "invalid_input", "{err}");
    assert_eq!(err["errors"][0]["pointer"], "/sync", "{err}");
    assert_eq!(fake.requests(), requests, "nothing read");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_is_reported_as_a_sync_s_would_be() {
    let fake = fake_api(Some(TOKEN)).await;
    fake.push_list_fault(Fault::status(503, vec![]));
    let err = export(&fake, json!({})).await.unwrap_err();
    assert_eq!(err["kind"], "api", "{err}");
    assert_eq!(err["retryable"], true, "{err}");
    assert_eq!(err["may_have_applied"], false, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("reading the account's policies"),
        "{err}"
    );
}

/// The host, not only the component, keeps an export from writing: while
/// `export-policies` runs only `GET` leaves, whatever the component tries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_writes_during_an_export_is_denied() {
    let server = MisbehavingServer::start(vec![Script::Reply(response("200 OK", &[], ""))]).await;
    let hostile = TaskHost::load(&hostile_component_path()).unwrap();
    let opts = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", server.port()).unwrap());
    let url = format!("http://127.0.0.1:{}/", server.port());
    let input = |mode: &str| json!({"mode": mode, "url": url}).to_string();

    let write = hostile
        .export_policies(&opts, "{}", &input("write"))
        .await
        .unwrap();
    let err = write.expect_err("a write during an export is refused");
    assert_eq!(error_kind(&err), "denied");
    assert_eq!(server.received().len(), 0, "nothing reached the server");

    let read = hostile
        .export_policies(&opts, "{}", &input("fetch"))
        .await
        .unwrap();
    assert!(read.is_ok(), "{read:?}");
    let heads: Vec<String> = server.received().into_iter().map(|r| r.head).collect();
    assert!(heads[0].starts_with("GET "), "{heads:?}");
}

// `task-host export`, as a user runs it

fn task_host(args: &[&str]) -> Output {
    crate::support::task_host_command()
        .args(args)
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .output()
        .expect("task-host runs")
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "exactly one document: {text}");
    serde_json::from_str(&text).unwrap()
}

/// A config with no credentials (the environment's token is used) that
/// names the fake and the account.
fn write_config(dir: &Path, fake: &FakeApi) -> String {
    let path = dir.join("config.json");
    std::fs::write(
        &path,
        json!({"account_id": ACCOUNT, "base_url": fake.base_url()}).to_string(),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn task_host_export_prints_the_sync_input_that_a_dry_run_then_finds_nothing_to_do_for() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(fake_api(Some(TOKEN)));
    let seeded = seed_mixed_account(&fake);
    let dir = TempDir::new("export");
    let config = write_config(dir.path(), &fake);
    let allow = format!("127.0.0.1:{}", fake.addr().port());

    let out = task_host(&["export", "--config", &config, "--allow-host", &allow]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    for stream in [&out.stdout, &out.stderr] {
        assert_no_secret(&String::from_utf8_lossy(stream), &[TOKEN]);
    }
    let doc = stdout_json(&out);
    assert_eq!(entries(&doc).len(), 4, "{doc}");
    assert_eq!(entries(&doc)[0]["id"], seeded[0]["id"]);
    assert_eq!(left_out(&doc).len(), 3, "{doc}");

    // Saved and given back to `run --dry-run`: a plan with nothing in it.
    let input = dir.join("exported.json");
    std::fs::write(&input, &out.stdout).unwrap();
    let out = task_host(&[
        "run",
        "--config",
        &config,
        "--input",
        input.to_str().unwrap(),
        "--dry-run",
        "--allow-host",
        &allow,
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let preview = stdout_json(&out);
    assert_eq!(
        preview["counts"],
        json!({"deletes": 0, "patches": 0, "puts": 0, "posts": 0}),
        "{preview}"
    );
    assert_eq!(preview["plan"]["batches"], json!([]));
    assert_eq!(fake.batches_applied(), 0);

    // --account picks another account, checked as the input's account_id.
    let other = "0f0e0d0c0b0a09080706050403020100";
    let out = task_host(&[
        "export",
        "--config",
        &config,
        "--account",
        other,
        "--allow-host",
        &allow,
    ]);
    assert_eq!(out.status.code(), Some(0));
    let doc = stdout_json(&out);
    assert_eq!(doc["account_id"], other);
    assert_eq!(entries(&doc), &Vec::<Value>::new());

    let out = task_host(&[
        "export",
        "--config",
        &config,
        "--account",
        "NOT-AN-ACCOUNT",
        "--allow-host",
        &allow,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["kind"], "invalid_input");
    assert_eq!(doc["error"]["errors"][0]["pointer"], "/account_id");

    drop(dir);
    runtime.block_on(fake.shutdown());
}

#[test]
fn task_host_export_fails_as_run_does() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(fake_api(Some(TOKEN)));
    let dir = TempDir::new("export-fails");
    let config = write_config(dir.path(), &fake);

    // Without --allow-host the fake is out of reach: terminal, and stderr
    // names the flag.
    let out = task_host(&["export", "--config", &config]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["error"]["kind"], "denied");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-host"));

    // A read the API refuses for now: retryable.
    let allow = format!("127.0.0.1:{}", fake.addr().port());
    fake.push_list_fault(Fault::status(503, vec![]));
    let out = task_host(&["export", "--config", &config, "--allow-host", &allow]);
    assert_eq!(out.status.code(), Some(75));
    assert_eq!(stdout_json(&out)["error"]["retryable"], true);

    // The command itself cannot run: usage, reason on stderr.
    let out = task_host(&["export", "--config", "/nonexistent/config.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.json"));
    let out = task_host(&["export", "--input", "x.json"]);
    assert_eq!(out.status.code(), Some(2));

    drop(dir);
    runtime.block_on(fake.shutdown());
}
