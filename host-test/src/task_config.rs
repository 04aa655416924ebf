//! Where a task's config comes from, for every command and engine adapter
//! of the host: a file or stdin, else `$TASK_HOST_CONFIG`, with the token
//! from `$CLOUDFLARE_API_TOKEN` when the config names no credentials. The
//! config comes only from the host's side, never from a workflow, so a
//! workflow cannot send the host's token elsewhere.
//!
//! The text is read once, by the component's own parser and with its own
//! defaults ([`allow_policies_batch::config`]), into a [`TaskConfig`]: the
//! text every task is given, and what the host itself needs from it (its
//! time limits, whether a repeat reads the account first, the credentials
//! to keep out of everything printed).

use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use allow_policies_batch::config::{parse_config, Config, Credentials, DEFAULT_TIMEOUT_MS};
use allow_policies_batch::params::json_fields::parse_document;
use allow_policies_batch::params::problems::{Document as ParamsDocument, Report};
use allow_policies_batch::run::redact::{credentials_in, Secrets};
use anyhow::Context as _;
use serde_json::Value;

use crate::bindings::{Document, TaskError};
use crate::failure::shown_pointer;
use crate::outbound::allow::AllowedHost;
use crate::sandbox::TaskOptions;
use crate::task_host::TaskHost;
use crate::wall_clock::DEFAULT_WALL_CLOCK_LIMIT;

/// The credentials used when the config names none.
pub const TOKEN_VARIABLE: &str = "CLOUDFLARE_API_TOKEN";

/// The token a preview without credentials is given: long enough for the
/// component's checks, and plainly not a real one.
const PLACEHOLDER_TOKEN: &str = "placeholder-token-of-a-dry-run-never-sent";

/// A worker's config document when no `--config` is given.
pub const CONFIG_VARIABLE: &str = "TASK_HOST_CONFIG";

/// How long past the task's own `timeout_ms` the host waits before ending
/// the call: the component keeps its deadline itself, so this only ever
/// stops a guest that does not.
pub const WALL_CLOCK_GRACE: Duration = Duration::from_secs(5);

/// The members that name credentials: a config with none of them gets the
/// environment's token.
const CREDENTIAL_KEYS: [&str; 3] = ["api_token", "api_email", "api_key"];

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

/// A task's config, read once: the text every call of the component is
/// given, and the facts the host takes from it. A config the component
/// refuses is still a `TaskConfig` (every task then fails as
/// `invalid_config` before anything is sent); its facts are then the
/// host's safe choices, as each method says.
#[derive(Clone)]
pub struct TaskConfig {
    /// What the component is given: the text as read, or, when the
    /// environment's token was added, the document with it.
    text: String,
    /// The config as the component reads it; `None` when it refuses it.
    config: Option<Config>,
    /// Whether the document gives `timeout_ms` itself.
    timeout_given: bool,
    /// Whether the document is an object naming no credentials.
    names_no_credentials: bool,
    /// The credentials the config names, to be kept out of every output.
    credentials: Vec<String>,
}

/// The text holds credentials, so only what can be shown is.
impl fmt::Debug for TaskConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskConfig")
            .field("config", &self.config)
            .field("timeout_given", &self.timeout_given)
            .finish_non_exhaustive()
    }
}

impl TaskConfig {
    /// The config `text` exactly as given, with nothing added.
    pub fn read(text: String) -> TaskConfig {
        TaskConfig::read_with_token(text, None)
    }

    /// The config `text`, with `api_token` from `$CLOUDFLARE_API_TOKEN`
    /// added when it is a JSON object that names no credentials. Anything
    /// else (including text that is not JSON) is left for the component
    /// to judge.
    pub fn with_environment_token(text: String) -> TaskConfig {
        let token = std::env::var(TOKEN_VARIABLE)
            .ok()
            .filter(|token| !token.is_empty());
        TaskConfig::read_with_token(text, token)
    }

    /// This config, or, when it names no credentials, the same with a
    /// placeholder token: for a preview that sends nothing and so needs
    /// none. The component shows no credential, so the placeholder never
    /// appears; the second value says whether it was put in.
    pub fn with_placeholder_token(self) -> (TaskConfig, bool) {
        if !self.names_no_credentials {
            return (self, false);
        }
        let placeholder = Some(PLACEHOLDER_TOKEN.to_string());
        (TaskConfig::read_with_token(self.text, placeholder), true)
    }

    /// A worker's config: the file at `path` (or stdin for `-`), else
    /// `$TASK_HOST_CONFIG`, else `{}`; with the environment's token when it
    /// names no credentials.
    pub fn for_worker(path: Option<&Path>) -> anyhow::Result<TaskConfig> {
        let text = match path {
            Some(path) => read_document(path, "config")?,
            None => std::env::var(CONFIG_VARIABLE).unwrap_or_else(|_| "{}".into()),
        };
        Ok(TaskConfig::with_environment_token(text))
    }

    /// The one parse: `text` through the component's parser, `token`
    /// added as `api_token` to an object that names no credentials.
    fn read_with_token(mut text: String, token: Option<String>) -> TaskConfig {
        // The component reports the problems itself; only the facts are
        // kept here.
        let mut report = Report::default();
        let mut value = parse_document(&text, ParamsDocument::Config, &mut report);
        if let (Some(Value::Object(members)), Some(token)) = (&mut value, token) {
            if !CREDENTIAL_KEYS.iter().any(|key| members.contains_key(*key)) {
                members.insert("api_token".into(), Value::String(token));
                text = Value::Object(members.clone()).to_string();
            }
        }
        let timeout_given = value
            .as_ref()
            .is_some_and(|v| v.get("timeout_ms").is_some());
        let names_no_credentials = match &value {
            Some(Value::Object(members)) => {
                !CREDENTIAL_KEYS.iter().any(|key| members.contains_key(*key))
            }
            _ => false,
        };
        let config = value.as_ref().and_then(|v| parse_config(v, &mut report));
        let credentials = match &config {
            Some(config) => vec![match &config.credentials {
                Credentials::Token(token) => token.expose().to_string(),
                Credentials::Legacy { key, .. } => key.expose().to_string(),
            }],
            // A config the component refuses (even one that is not JSON)
            // may still name credentials its messages quote: they are
            // found by the component's lenient search.
            None => credentials_in(&text),
        };
        TaskConfig {
            text,
            config,
            timeout_given,
            names_no_credentials,
            credentials,
        }
    }

    /// Whether the config is an object that names no credentials, even
    /// after the environment's token was looked for: the component then
    /// refuses it, and a person needs to hear of [`TOKEN_VARIABLE`] as
    /// well as of the config's own members.
    pub fn names_no_credentials(&self) -> bool {
        self.names_no_credentials
    }

    /// The text every call of the component is given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// How long one call may take: the config's own `timeout_ms` plus
    /// [`WALL_CLOCK_GRACE`]. A config that gives no `timeout_ms`, or that
    /// the component refuses, gets [`DEFAULT_WALL_CLOCK_LIMIT`].
    pub fn wall_clock_limit(&self) -> Duration {
        match &self.config {
            Some(config) if self.timeout_given => {
                Duration::from_millis(config.timeout_ms) + WALL_CLOCK_GRACE
            }
            _ => DEFAULT_WALL_CLOCK_LIMIT,
        }
    }

    /// The config's `timeout_ms`, the contract's default when it gives
    /// none: how long one run may take before the component gives up.
    pub fn run_timeout(&self) -> Duration {
        Duration::from_millis(
            self.config
                .as_ref()
                .map_or(DEFAULT_TIMEOUT_MS, |c| c.timeout_ms),
        )
    }

    /// The config's `verify_after_failure`: whether a task run again reads
    /// the account before sending, which is what makes a failure that may
    /// have applied safe to hand to an engine's retries. False for a config
    /// the component refuses, whose tasks never send anything.
    pub fn checks_first(&self) -> bool {
        self.config.as_ref().is_some_and(|c| c.verify_after_failure)
    }

    /// The credentials the config names (its token, or its Global API
    /// key): nothing the host prints or reports may show them.
    pub fn credentials(&self) -> &[String] {
        &self.credentials
    }

    /// [`TaskConfig::credentials`], ready to redact text with: the same
    /// search the component applies to its own outputs.
    pub fn secrets(&self) -> Secrets {
        Secrets::new(&self.credentials)
    }

    /// The sandbox of every task of this config: the default allow-list
    /// and `allow_hosts`, and this config's wall-clock limit.
    pub fn task_options(&self, allow_hosts: impl IntoIterator<Item = AllowedHost>) -> TaskOptions {
        let mut options = TaskOptions::default();
        options.allow_hosts.extend(allow_hosts);
        options.wall_clock_limit = self.wall_clock_limit();
        options
    }
}

/// Refuses to start a worker whose config every task would reject: the
/// component judges it against an empty batch, which sends nothing.
pub async fn check_config(
    host: &TaskHost,
    options: &TaskOptions,
    config: &TaskConfig,
) -> anyhow::Result<()> {
    let judged = host.prepare(options, config.text(), "{}").await?;
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
        let hint = if config.names_no_credentials() {
            format!(", or set ${TOKEN_VARIABLE}")
        } else {
            String::new()
        };
        anyhow::bail!("the config is not usable: {}{hint}", problems.join("; "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "env-token-0123456789";

    fn with_token(text: &str) -> TaskConfig {
        TaskConfig::read_with_token(text.to_string(), Some(TOKEN.to_string()))
    }

    #[test]
    fn the_token_is_added_only_to_an_object_that_names_no_credentials() {
        let added = with_token(r#"{"timeout_ms": 1000}"#);
        let document: Value = serde_json::from_str(added.text()).unwrap();
        assert_eq!(document["api_token"], TOKEN);
        assert_eq!(document["timeout_ms"], 1000);
        assert_eq!(added.credentials(), [TOKEN]);
        for named in [
            r#"{"api_token": "own-token-0123456789"}"#,
            r#"{"api_email": "a@example.com"}"#,
            r#"{"api_key": "k"}"#,
            "[1]",
            "not json",
        ] {
            assert_eq!(with_token(named).text(), named);
        }
        assert_eq!(TaskConfig::read("{}".into()).text(), "{}");
    }

    #[test]
    fn a_config_without_credentials_is_told_apart() {
        assert!(TaskConfig::read(r#"{"timeout_ms": 1000}"#.into()).names_no_credentials());
        assert!(!with_token(r#"{"timeout_ms": 1000}"#).names_no_credentials());
        for named in [
            r#"{"api_token": "own-token-0123456789"}"#,
            r#"{"api_email": "a@example.com"}"#,
            "[1]",
            "not json",
        ] {
            assert!(
                !TaskConfig::read(named.into()).names_no_credentials(),
                "{named}"
            );
        }
    }

    #[test]
    fn a_config_gets_its_own_timeout_and_grace_else_the_default_limit() {
        let own = with_token(r#"{"timeout_ms": 1000}"#);
        assert_eq!(own.wall_clock_limit(), Duration::from_millis(6000));
        assert_eq!(own.run_timeout(), Duration::from_millis(1000));
        let default = with_token("{}");
        assert_eq!(default.wall_clock_limit(), DEFAULT_WALL_CLOCK_LIMIT);
        assert_eq!(
            default.run_timeout(),
            Duration::from_millis(DEFAULT_TIMEOUT_MS)
        );
        let out_of_range = with_token(r#"{"timeout_ms": 600001}"#);
        assert_eq!(out_of_range.wall_clock_limit(), DEFAULT_WALL_CLOCK_LIMIT);
        let options = own.task_options([AllowedHost::with_port("127.0.0.1", 9).unwrap()]);
        assert_eq!(options.wall_clock_limit, Duration::from_millis(6000));
        assert_eq!(options.allow_hosts.len(), AllowedHost::defaults().len() + 1);
    }

    #[test]
    fn a_repeat_checks_first_unless_the_config_switches_it_off() {
        assert!(with_token("{}").checks_first());
        assert!(!with_token(r#"{"verify_after_failure": false}"#).checks_first());
        assert!(
            !TaskConfig::read("{}".into()).checks_first(),
            "refused: no credentials"
        );
    }

    #[test]
    fn a_refused_config_still_names_its_credentials() {
        let legacy = TaskConfig::read(
            r#"{"api_email": "a@example.com", "api_key": "global-key-0123"}"#.into(),
        );
        assert_eq!(legacy.credentials(), ["global-key-0123"]);
        let broken = TaskConfig::read(r#"{"api_token": "broken-token-0123", "#.into());
        assert!(broken
            .credentials()
            .contains(&"broken-token-0123".to_string()));
        assert!(broken.secrets().found_in("a broken-token-0123 b"));
        let shown = format!("{broken:?}");
        assert!(!shown.contains("broken-token"), "{shown}");
    }
}
