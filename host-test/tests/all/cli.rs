//! `task-host` as a user runs it: a process, files, stdout and exit codes.

use crate::support::{
    assert_no_secret, examples_dir, fake_api, hostile_component_path, leaked, post, TempDir,
    ACCOUNT,
};
use host_test::fake_api::{FakeApi, Fault};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Output;

const TOKEN: &str = "cf-CLI-TOKEN-never-shown-31c7";

fn task_host(args: &[&str]) -> Output {
    crate::support::task_host_command()
        .args(args)
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .output()
        .expect("task-host runs")
}

/// `run --config CONFIG --input INPUT`, for more flags to follow.
fn run_args<'a>(config: &'a Path, input: &'a Path) -> Vec<&'a str> {
    vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]
}

fn stdout_json(out: &Output) -> Value {
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "exactly one document: {text}");
    let document: Value = serde_json::from_str(&text).unwrap();
    if ["error", "success", "dry_run"]
        .iter()
        .any(|k| document.get(k).is_some())
    {
        crate::support::documents::check_printed(&document);
    }
    document
}

#[test]
fn dry_run_of_the_example_uses_the_environment_token_and_redacts_it() {
    let config = examples_dir().join("config.json");
    let input = examples_dir().join("batch.json");
    let out = task_host(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = stdout_json(&out);
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["request"]["headers"]["Authorization"], "[redacted]");
    assert_eq!(doc["counts"]["posts"], 3);
    for stream in [&out.stdout, &out.stderr] {
        assert_no_secret(&String::from_utf8_lossy(stream), &[TOKEN]);
    }
}

#[test]
fn invalid_input_exits_1_with_the_error_document() {
    let dir = TempDir::new("cli");
    let input = dir.join("input.json");
    std::fs::write(&input, r#"{"deletes":[{"id":"nope"}]}"#).unwrap();
    let config = examples_dir().join("config.json");
    let out = task_host(&run_args(&config, &input));
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["kind"], "invalid_input");
    assert_eq!(doc["error"]["errors"][0]["pointer"], "/deletes/0/id");
}

#[test]
fn a_command_that_cannot_run_exits_2_with_the_reason_on_stderr() {
    let out = task_host(&[
        "run",
        "--config",
        "/nonexistent/config.json",
        "--input",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.json"));

    let out = task_host(&["describe", "--component", "/nonexistent/x.wasm"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("make build"));

    let out = task_host(&["run", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
}

/// A start time in the future would read the batch's own posts as older
/// and create them again; one in seconds would take any look-alike for
/// the batch's. Both are refused at the flag, before anything runs.
#[test]
fn again_since_takes_milliseconds_from_the_last_year_only() {
    let config = examples_dir().join("config.json");
    let input = examples_dir().join("batch.json");
    let run_again = |since: &str| {
        task_host(&[&run_args(&config, &input)[..], &["--again-since", since]].concat())
    };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (since, reason) in [
        ("99999999999999".to_string(), "ahead of this host's clock"),
        (now_s.to_string(), "looks like seconds"),
        ("1".to_string(), "more than a year ago"),
        ("yesterday".to_string(), "expected a whole number"),
    ] {
        let out = run_again(&since);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{since}: {stderr}");
        assert!(out.stdout.is_empty(), "{since}");
        assert!(stderr.contains("--again-since"), "{since}: {stderr}");
        assert!(stderr.contains(reason), "{since}: {stderr}");
    }
}

/// A destination the host does not allow is named in the error, and the
/// command says which flag allows it; nothing is sent.
#[test]
fn a_denied_destination_is_named_with_the_flag_that_allows_it() {
    let dir = TempDir::new("cli-denied");
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    let port = crate::support::unused_port();
    std::fs::write(
        &config,
        json!({"base_url": format!("http://127.0.0.1:{port}/client/v4"), "account_id": ACCOUNT})
            .to_string(),
    )
    .unwrap();
    std::fs::write(
        &input,
        json!({"posts": [post("ops@example.com")]}).to_string(),
    )
    .unwrap();
    let out = task_host(&run_args(&config, &input));
    assert_eq!(out.status.code(), Some(1));
    let doc = stdout_json(&out);
    assert_eq!(doc["error"]["kind"], "denied", "{doc}");
    let message = doc["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("refused to connect to http://127.0.0.1:{port};")),
        "{message}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-host HOST[:PORT]"), "{stderr}");
    assert_no_secret(&stderr, &[TOKEN]);
}

/// With no credentials anywhere, `run` and `worker` name the environment
/// variable the host reads, not only the config's members.
#[test]
fn no_credentials_names_the_environment_variable() {
    let dir = TempDir::new("cli-no-credentials");
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    std::fs::write(&config, json!({"account_id": ACCOUNT}).to_string()).unwrap();
    std::fs::write(
        &input,
        json!({"posts": [post("ops@example.com")]}).to_string(),
    )
    .unwrap();
    let without_token = |args: &[&str]| {
        crate::support::task_host_command()
            .args(args)
            .env_remove("CLOUDFLARE_API_TOKEN")
            .env_remove("TASK_HOST_CONFIG")
            .output()
            .expect("task-host runs")
    };
    let out = without_token(&run_args(&config, &input));
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["error"]["kind"], "invalid_config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("$CLOUDFLARE_API_TOKEN"), "{stderr}");

    let out = without_token(&[
        "worker",
        "--server",
        "http://127.0.0.1:9",
        "--task-type",
        "allow_policies_batch",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("$CLOUDFLARE_API_TOKEN"), "{stderr}");
    assert!(stderr.contains("api_token"), "{stderr}");
}

/// `run --help` names what a person needs beyond the flags: the token's
/// variable, the exit statuses and where the component comes from.
#[test]
fn run_help_names_the_token_variable_the_exit_statuses_and_the_component() {
    let out = task_host(&["run", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for needed in [
        "CLOUDFLARE_API_TOKEN",
        "Exit status:",
        "  75  ",
        "  2   ",
        "--component <FILE>",
    ] {
        assert!(help.contains(needed), "{needed:?} missing from:\n{help}");
    }
    let default = help
        .lines()
        .skip_while(|l| !l.contains("--component"))
        .take(4)
        .collect::<String>();
    assert!(
        default.contains("[default: ") && default.contains("allow_policies_batch.wasm"),
        "{help}"
    );
}

#[test]
fn describe_prints_the_schemas() {
    let out = task_host(&["describe"]);
    assert_eq!(out.status.code(), Some(0));
    let doc = stdout_json(&out);
    assert!(doc["config"]["properties"]["timeout_ms"].is_object());
}

#[test]
fn a_guest_that_outlives_its_timeout_is_ended_soon_after_it() {
    // The hostile test component sleeps for an hour when asked to; the
    // config's timeout_ms, not the host's ten-minute default, decides when
    // the command gives up on it.
    let component = hostile_component_path();
    let dir = TempDir::new("cli-sleep");
    let config = dir.join("config.json");
    let input = dir.join("input.json");
    std::fs::write(&config, r#"{"timeout_ms": 500}"#).unwrap();
    std::fs::write(&input, r#"{"mode": "sleep"}"#).unwrap();
    let started = std::time::Instant::now();
    let out = task_host(&[
        "run",
        "--component",
        component.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
    ]);
    let elapsed = started.elapsed();
    drop(dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("wall-clock limit"), "{stderr}");
    // 0.5 s of timeout and 5 s of grace; far below the default 620 s.
    assert!(
        elapsed >= std::time::Duration::from_millis(5500),
        "{elapsed:?}"
    );
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
}

/// Where a property case plants the secret besides the config.
#[derive(Clone, Copy, Debug)]
enum Plant {
    /// As the input's account id, which is refused and quoted.
    AccountId,
    /// As an enum value that is refused and quoted.
    PatternType,
    /// At the end of a long pattern, so a quote of it is cut mid-secret.
    PatternTail,
    /// As an unknown key, which an error's pointer names.
    Key,
    /// As a policy id, which is refused and quoted.
    Id,
    /// In a comment: the batch is valid, the preview shows the body and the
    /// API's result echoes it.
    Comment,
    /// In the API's error message and pointer, as a proxy or the API might
    /// quote a refused token.
    ApiError,
}

/// What one `task-host run` of a property case printed.
struct Ran {
    stdout: String,
    stderr: String,
}

/// Every string and every key of a JSON value.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

fn run_planted(
    fake: &FakeApi,
    dir: &Path,
    secret: &str,
    legacy: bool,
    plant: Plant,
    dry_run: bool,
) -> Ran {
    let mut config = json!({
        "account_id": ACCOUNT,
        "base_url": fake.base_url(),
        "timeout_ms": 10_000,
        "max_retries": 0,
    });
    if legacy {
        config["api_email"] = json!("ops@example.com");
        config["api_key"] = json!(secret);
    } else {
        config["api_token"] = json!(secret);
    }
    let mut post = post("alerts@example.com");
    let mut input = json!({});
    match plant {
        Plant::AccountId => input["account_id"] = json!(secret),
        Plant::PatternType => post["pattern_type"] = json!(secret),
        Plant::PatternTail => post["pattern"] = json!(format!("{}{secret}", "x".repeat(50))),
        Plant::Key => post[secret] = json!(true),
        Plant::Id => input["deletes"] = json!([{ "id": secret }]),
        Plant::Comment => post["comments"] = json!(format!("pasted by mistake: {secret} (sorry)")),
        Plant::ApiError => {
            let body = json!({
                "success": false,
                "errors": [{
                    "code": 10000,
                    "message": format!("Authentication error: the token {secret} is not valid"),
                    "source": { "pointer": format!("/{secret}") },
                }],
                "messages": [], "result": null,
            });
            fake.push_fault(Fault::Status {
                status: 403,
                headers: Vec::new(),
                body: body.to_string(),
            });
        }
    }
    input["posts"] = json!([post]);
    let config_file = dir.join("config.json");
    let input_file = dir.join("input.json");
    std::fs::write(&config_file, config.to_string()).unwrap();
    std::fs::write(&input_file, input.to_string()).unwrap();
    let allow = format!("127.0.0.1:{}", fake.addr().port());
    let mut args = vec![
        "run",
        "--config",
        config_file.to_str().unwrap(),
        "--input",
        input_file.to_str().unwrap(),
        "--allow-host",
        &allow,
    ];
    if dry_run {
        args.push("--dry-run");
    }
    let out = task_host(&args);
    Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

mod planted_secrets {
    use super::*;
    use proptest::prelude::*;

    fn plant() -> impl Strategy<Value = Plant> {
        proptest::sample::select(vec![
            Plant::AccountId,
            Plant::PatternType,
            Plant::PatternTail,
            Plant::Key,
            Plant::Id,
            Plant::Comment,
            Plant::ApiError,
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// A configured token or key of 16 to 64 characters, planted in the
        /// input or quoted back by the API, never comes back from
        /// `task-host run`: not in the document on stdout (raw or decoded,
        /// keys included), not on stderr, not even 12 characters of it.
        #[test]
        fn a_configured_secret_never_comes_back(
            secret in "[A-Za-z0-9_~/-]{16,64}",
            legacy in any::<bool>(),
            plant in plant(),
            dry_run in any::<bool>(),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            let fake = runtime.block_on(fake_api(None));
            let dir = TempDir::new("secrets");
            let ran = run_planted(&fake, dir.path(), &secret, legacy, plant, dry_run);
            drop(dir);
            runtime.block_on(fake.shutdown());

            let document: Value = serde_json::from_str(ran.stdout.trim())
                .map_err(|e| TestCaseError::fail(format!("stdout is not one JSON document ({e}): {}", ran.stdout)))?;
            let mut decoded = Vec::new();
            strings(&document, &mut decoded);
            for (what, text) in [("stdout", &ran.stdout), ("stderr", &ran.stderr)]
                .into_iter()
                .chain(decoded.iter().map(|s| ("a decoded string", s)))
            {
                if let Some(window) = leaked(&secret, text) {
                    return Err(TestCaseError::fail(format!(
                        "{plant:?}: {window:?} of the secret is in {what}: {text}"
                    )));
                }
                prop_assert!(!text.contains(TOKEN), "the environment's token is in {}", what);
            }
        }
    }
}

/// A dry run sends nothing, so it needs no credentials: the preview shows
/// the request with a placeholder it never prints, and stderr says a real
/// run needs a token. A sync preview reads the account, so it still does.
#[test]
fn a_dry_run_without_credentials_previews_with_a_placeholder() {
    let dir = TempDir::new("cli-placeholder");
    let config = dir.join("config.json");
    std::fs::write(&config, json!({"account_id": ACCOUNT}).to_string()).unwrap();
    let input = examples_dir().join("batch.json");
    let without_token = |args: &[&str]| {
        crate::support::task_host_command()
            .args(args)
            .env_remove("CLOUDFLARE_API_TOKEN")
            .output()
            .expect("task-host runs")
    };
    let out = without_token(&[&run_args(&config, &input)[..], &["--dry-run"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc = stdout_json(&out);
    assert_eq!(doc["request"]["headers"]["Authorization"], "[redacted]");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("placeholder"));
    assert!(stderr.contains("placeholder"), "{stderr}");
    assert!(stderr.contains("$CLOUDFLARE_API_TOKEN"), "{stderr}");

    let sync = dir.join("sync.json");
    std::fs::write(&sync, json!({"sync": {"policies": []}}).to_string()).unwrap();
    let out = without_token(&[&run_args(&config, &sync)[..], &["--dry-run"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout_json(&out)["error"]["kind"], "invalid_config");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("$CLOUDFLARE_API_TOKEN"), "{stderr}");
}

/// `--detailed-exitcode` turns a dry run into a drift check: 3 when the
/// run would send anything, 0 when it would not.
#[test]
fn a_dry_run_with_detailed_exitcode_exits_3_on_changes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(fake_api(None));
    fake.seed(ACCOUNT, [post("ops@example.com")]).unwrap();
    let dir = TempDir::new("cli-drift");
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        json!({"base_url": fake.base_url(), "account_id": ACCOUNT}).to_string(),
    )
    .unwrap();
    let allow = fake.addr().to_string();
    let check = |input: Value| {
        let path = dir.join("input.json");
        std::fs::write(&path, input.to_string()).unwrap();
        let out = task_host(
            &[
                &run_args(&config, &path)[..],
                &["--dry-run", "--detailed-exitcode", "--allow-host", &allow],
            ]
            .concat(),
        );
        let doc = stdout_json(&out);
        (out.status.code(), doc)
    };
    let unchanged = json!({"sync": {"policies": [post("ops@example.com")]}});
    let (code, doc) = check(unchanged);
    assert_eq!(code, Some(0), "{doc}");
    let drifted = json!({"sync": {"policies": [post("ops@example.com"), post("new@example.com")]}});
    let (code, doc) = check(drifted);
    assert_eq!(code, Some(3), "{doc}");
    assert_eq!(doc["plan"]["create"].as_array().unwrap().len(), 1);
    let (code, doc) = check(json!({"posts": [post("x@example.com")]}));
    assert_eq!(code, Some(3), "{doc}");
    let (code, doc) = check(json!({}));
    assert_eq!(code, Some(0), "{doc}");
    assert_eq!(fake.batches_applied(), 0);
    runtime.block_on(fake.shutdown());

    // Only a dry run has changes to report.
    let input = examples_dir().join("batch.json");
    let out = task_host(&[&run_args(&config, &input)[..], &["--detailed-exitcode"]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dry-run"));
}
