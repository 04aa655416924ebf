//! Where a task's config comes from, for every command and engine adapter
//! of the host: a file or stdin, else `$TASK_HOST_CONFIG`, with the token
//! from `$CLOUDFLARE_API_TOKEN` when the config names no credentials. The
//! config comes only from the host's side, never from a workflow, so a
//! workflow cannot send the host's token elsewhere.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use serde_json::Value;

use crate::worker::shown_pointer;
use crate::{Document, TaskError, TaskHost, TaskOptions};

/// The credentials used when the config names none.
pub const TOKEN_VARIABLE: &str = "CLOUDFLARE_API_TOKEN";

/// A worker's config document when no `--config` is given.
pub const CONFIG_VARIABLE: &str = "TASK_HOST_CONFIG";

/// How long past the task's own `timeout_ms` the host waits before ending
/// the call: the component keeps its deadline itself, so this only ever
/// stops a guest that does not.
pub const WALL_CLOCK_GRACE: Duration = Duration::from_secs(5);

/// The text of a document: the file at `path`, or stdin for `-`.
pub fn read_document(path: &Path, what: &str) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read the {what} from stdin"))?;
        return Ok(text);
    }
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

/// The config's `timeout_ms` plus [`WALL_CLOCK_GRACE`], when the config
/// gives one in the contract's range; otherwise the host's default holds.
pub fn wall_clock_limit(config: &str) -> Option<Duration> {
    let value: Value = serde_json::from_str(config).ok()?;
    let timeout_ms = value.get("timeout_ms")?.as_u64()?;
    (1..=600_000)
        .contains(&timeout_ms)
        .then(|| Duration::from_millis(timeout_ms) + WALL_CLOCK_GRACE)
}

/// Adds `api_token` from the environment to a config object that names no
/// credentials. Anything else (including text that is not JSON) is left for
/// the component to judge.
pub fn with_environment_token(config: String) -> String {
    let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&config) else {
        return config;
    };
    if ["api_token", "api_email", "api_key"]
        .iter()
        .any(|k| map.contains_key(*k))
    {
        return config;
    }
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) if !token.is_empty() => {
            map.insert("api_token".into(), Value::String(token));
            Value::Object(map).to_string()
        }
        _ => config,
    }
}

/// A worker's config: the file at `path` (or stdin for `-`), else
/// `$TASK_HOST_CONFIG`, else `{}`; with the environment's token when it
/// names no credentials.
pub fn worker_config(path: Option<&Path>) -> anyhow::Result<String> {
    let config = match path {
        Some(path) => read_document(path, "config")?,
        None => std::env::var(CONFIG_VARIABLE).unwrap_or_else(|_| "{}".into()),
    };
    Ok(with_environment_token(config))
}

/// The config's `verify_after_failure` (true when it does not say): whether
/// a task run again reads the account before sending, which is what makes
/// a failure that may have applied safe to hand to an engine's retries.
pub fn verifies_after_failure(config: &str) -> bool {
    serde_json::from_str::<Value>(config)
        .ok()
        .and_then(|c| c.get("verify_after_failure").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// Refuses to start a worker whose config every task would reject: the
/// component judges it against an empty batch, which sends nothing.
pub async fn check_config(
    host: &TaskHost,
    options: &TaskOptions,
    config: &str,
) -> anyhow::Result<()> {
    let judged = host.prepare(options, config, "{}").await?;
    let problems: Vec<String> = match &judged {
        Err(TaskError::InvalidConfig(problems)) | Err(TaskError::InvalidInput(problems)) => {
            problems
                .iter()
                .filter(|p| p.document == Document::Config)
                .map(|p| format!("{}: {}", shown_pointer(p), p.message))
                .collect()
        }
        _ => Vec::new(),
    };
    if !problems.is_empty() {
        anyhow::bail!("the config is not usable: {}", problems.join("; "));
    }
    Ok(())
}
