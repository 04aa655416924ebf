//! `task-host demo`: the whole flow on a laptop with no account and no
//! network. It starts the fake API on an ephemeral loopback port, seeds the
//! policies the example batch refers to, runs `examples/batch.json` through
//! the component (first `prepare`, then `run-task`), lists the account's
//! policies back through the fake's list endpoint, and prints a short report.

use allow_policies_batch::run::redact::credentials_in;
use anyhow::{bail, Context as _};
use bytes::Bytes;
use host_test::fake_api::{FakeApi, FakeApiOptions};
use host_test::{error_to_json, AllowedHost, TaskHost, TaskOptions};
use http_body_util::{BodyExt, Empty};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;
use wasmtime_wasi_http::io::TokioIo;

/// A token for the fake only; it is still never printed.
const DEMO_TOKEN: &str = "demo-token-for-the-local-fake-api";

pub async fn run(host: &TaskHost, examples: &Path) -> anyhow::Result<String> {
    let config_file = examples.join("config.json");
    let batch_file = examples.join("batch.json");
    let mut config: Value = read_json(&config_file)?;
    let batch: Value = read_json(&batch_file)?;
    // The report is printed redacted of both: the token the fake takes, and
    // any credential the example config names (it is replaced below).
    host_test::printing::keep_secret(DEMO_TOKEN);
    host_test::printing::keep_secrets(credentials_in(&config.to_string()));

    let fake = FakeApi::start(FakeApiOptions {
        listen: "127.0.0.1:0".parse()?,
        token: Some(DEMO_TOKEN.into()),
        ..FakeApiOptions::default()
    })
    .await?;
    let account = config["account_id"]
        .as_str()
        .context("examples/config.json has no account_id")?
        .to_string();
    fake.seed(&account, seed_policies(&batch))?;

    config["base_url"] = json!(fake.base_url());
    config["api_token"] = json!(DEMO_TOKEN);
    let config = config.to_string();
    let input = batch.to_string();
    let options = TaskOptions::default()
        .with_allowed_host(AllowedHost::with_port("127.0.0.1", fake.addr().port())?);

    let mut report = String::new();
    writeln!(
        report,
        "allow-policies-batch demo: fake Cloudflare API at {}",
        fake.base_url()
    )?;
    writeln!(
        report,
        "config {}, input {}",
        config_file.display(),
        batch_file.display()
    )?;

    let preview = match host.prepare(&options, &config, &input).await? {
        Ok(text) => serde_json::from_str::<Value>(&text)?,
        Err(e) => bail!("the example batch does not validate: {}", error_to_json(&e)),
    };
    writeln!(report, "\n1. prepare: the request that will be sent")?;
    let request = &preview["request"];
    writeln!(
        report,
        "   {} {}",
        text(&request["method"]),
        text(&request["url"])
    )?;
    for (name, value) in request["headers"].as_object().into_iter().flatten() {
        writeln!(report, "   {name}: {}", text(value))?;
    }
    writeln!(report, "   body: {}", describe_counts(&preview["counts"]))?;
    write_warnings(&mut report, &preview["warnings"])?;

    writeln!(report, "\n2. run-task")?;
    match host.run_task(&options, &config, &input).await? {
        Ok(text) => {
            let out: Value = serde_json::from_str(&text)?;
            writeln!(
                report,
                "   status {} after {} attempt(s)",
                out["status"], out["attempts"]
            )?;
            let result = &out["result"];
            let count = |key: &str| result[key].as_array().map_or(0, Vec::len);
            writeln!(
                report,
                "   result: {} deleted, {} patched, {} replaced, {} created",
                count("deletes"),
                count("patches"),
                count("puts"),
                count("posts")
            )?;
        }
        Err(e) => {
            writeln!(report, "   failed: {}", error_to_json(&e))?;
        }
    }

    writeln!(
        report,
        "\n3. the account's policies, listed through GET .../allow_policies"
    )?;
    let listed = list_policies(&fake, &account).await?;
    for policy in listed["result"].as_array().into_iter().flatten() {
        writeln!(
            report,
            "   {:<36}  {:<6}  {}{}",
            text(&policy["id"]),
            text(&policy["pattern_type"]),
            text(&policy["pattern"]),
            if policy["is_regex"] == true {
                "  (regex)"
            } else {
                ""
            }
        )?;
    }
    writeln!(report, "   total: {}", listed["result_info"]["total_count"])?;
    fake.shutdown().await;
    Ok(report)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// The policies the example's deletes, patches and puts refer to, so that
/// the batch applies as it would on an account that has them.
fn seed_policies(batch: &Value) -> Vec<Value> {
    let ids = ["deletes", "patches", "puts"]
        .iter()
        .flat_map(|key| batch[*key].as_array().cloned().unwrap_or_default())
        .map(|item| item["id"].clone());
    ids.enumerate()
        .map(|(i, id)| {
            json!({
                "id": id,
                "pattern": format!("existing-{}.example.com", i + 1),
                "pattern_type": "DOMAIN",
                "is_regex": false,
                "is_exempt_recipient": false,
                "is_trusted_sender": false,
                "is_acceptable_sender": true,
                "verify_sender": true,
                "comments": "seeded by the demo"
            })
        })
        .collect()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn describe_counts(counts: &Value) -> String {
    format!(
        "{} delete(s), {} patch(es), {} put(s), {} post(s)",
        counts["deletes"], counts["patches"], counts["puts"], counts["posts"]
    )
}

fn write_warnings(report: &mut String, warnings: &Value) -> std::fmt::Result {
    let list = warnings.as_array().map(Vec::as_slice).unwrap_or_default();
    if list.is_empty() {
        return writeln!(report, "   warnings: none");
    }
    for w in list {
        writeln!(
            report,
            "   warning {}: {}",
            text(&w["pointer"]),
            text(&w["message"])
        )?;
    }
    Ok(())
}

/// One GET over a fresh loopback connection, through hyper's HTTP/1.1
/// client: all the demo needs.
async fn list_policies(fake: &FakeApi, account: &str) -> anyhow::Result<Value> {
    let addr = fake.addr();
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .context("cannot connect to the fake API")?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("cannot speak HTTP/1.1 to the fake API")?;
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!(
        "/client/v4/accounts/{account}/email-security/settings/allow_policies?page=1&per_page=100"
    ))
    .header(http::header::HOST, addr.to_string())
    .header(http::header::AUTHORIZATION, format!("Bearer {DEMO_TOKEN}"))
    .header(http::header::ACCEPT, "application/json")
    .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    drop(sender);
    let _ = connection.await;
    if status != http::StatusCode::OK {
        bail!("the list endpoint answered {status}");
    }
    serde_json::from_slice(&body).context("the list endpoint did not answer JSON")
}
