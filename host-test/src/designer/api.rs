//! The page's API (`/api/*`, docs/designer.md): what the page may ask of
//! the component, with the server deciding where it goes.
//!
//! Every task the page asks for is fitted first: the credential members
//! and `base_url` the page's config names are removed (and reported under
//! `overridden`), the target's base URL and credentials are put in, and
//! the task may reach only the target. So the page can neither send
//! elsewhere nor learn a credential.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::bindings::TaskError;
use crate::failure::error_to_json;
use crate::task_config::TaskConfig;
use crate::task_host::TaskHost;

use super::reply::{self, FieldProblem, Refused, Reply};
use super::snippets::{snippets, Request};
use super::target::{Credentials, Target, Use, PLACEHOLDER_TOKEN};

/// The config members that always carry credentials; describe's schema
/// may mark more (`writeOnly`), and those are removed too.
const CREDENTIAL_KEYS: [&str; 3] = ["api_token", "api_email", "api_key"];

/// The examples the page starts from, built in.
const EXAMPLE_CONFIG: &str = include_str!("../../../examples/config.json");
const EXAMPLE_BATCH: &str = include_str!("../../../examples/batch.json");
const EXAMPLE_SYNC: &str = include_str!("../../../examples/sync.json");

/// What the API answers with: the component, the target and what was
/// read from the component once at start.
pub struct Api {
    host: Arc<TaskHost>,
    target: Target,
    /// describe's document, as the component returned it: served as
    /// text, not re-serialised, since its member order is the order the
    /// page lays out the fields in (a `Value` would sort the members).
    describe: String,
    /// The config members the page may not set: credentials and
    /// `base_url`.
    server_keys: Vec<String>,
    /// One send at a time: a second click while a batch is on its way
    /// is refused rather than sent again.
    sending: tokio::sync::Mutex<()>,
}

impl Api {
    /// Reads describe's document from the component.
    pub async fn new(host: Arc<TaskHost>, target: Target) -> anyhow::Result<Api> {
        let describe_text = host.describe(&crate::TaskOptions::default()).await?;
        let describe: Value = serde_json::from_str(&describe_text)?;
        let mut server_keys: Vec<String> = CREDENTIAL_KEYS.iter().map(|k| k.to_string()).collect();
        for (name, schema) in describe["config"]["properties"]
            .as_object()
            .into_iter()
            .flatten()
        {
            if schema["writeOnly"] == json!(true) && !server_keys.contains(name) {
                server_keys.push(name.clone());
            }
        }
        server_keys.push("base_url".into());
        Ok(Api {
            host,
            target,
            describe: describe_text,
            server_keys,
            sending: tokio::sync::Mutex::new(()),
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The answer to `method path`, with the request's JSON body (an
    /// object) for a `POST`.
    pub async fn answer(&self, method: &http::Method, path: &str, body: Option<Value>) -> Reply {
        use http::Method;
        if (method, path) == (&Method::GET, "/api/describe") {
            return reply::json_text(200, self.describe.clone());
        }
        let answered = match (method, path, body) {
            (&Method::GET, "/api/session", _) => Ok(self.session()),
            (&Method::GET, "/api/examples", _) => Ok(self.examples()),
            (&Method::POST, "/api/credentials", Some(body)) => self.credentials(&body),
            (&Method::POST, "/api/prepare", Some(body)) => self.prepare(&body).await,
            (&Method::POST, "/api/send", Some(body)) => self.send(&body).await,
            (&Method::POST, "/api/export", Some(body)) => self.export(&body).await,
            (&Method::POST, "/api/snippets", Some(body)) => self.snippets(&body).await,
            (_, path, _) if ROUTES.contains(&path) => Err(Refused::new(
                405,
                "method-not-allowed",
                "this method is not allowed here",
            )),
            _ => Err(Refused::new(404, "not-found", "no such API route")),
        };
        match answered {
            Ok(document) => reply::json(200, &document),
            Err(refused) => refused.reply(),
        }
    }

    /// Where tasks go, and which credentials they carry.
    fn session(&self) -> Value {
        let fake = self.target.fake_api();
        json!({
            "mode": self.target.mode(),
            "target": self.target.describe(),
            "sandbox_account": self.target.sandbox_account(),
            "fake_base_url": fake.map(|f| f.base_url()),
            "credentials": self.target.credentials_state(),
        })
    }

    /// The built-in examples, without credentials or `base_url`.
    fn examples(&self) -> Value {
        let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or(Value::Null);
        let mut config = parse(EXAMPLE_CONFIG);
        if let Some(members) = config.as_object_mut() {
            for key in &self.server_keys {
                members.remove(key);
            }
        }
        json!({ "examples": [
            { "name": "batch", "title": "A batch: delete, patch, replace and create policies",
              "config": config, "input": parse(EXAMPLE_BATCH) },
            { "name": "sync", "title": "A sync: the policies the account should have",
              "config": config, "input": parse(EXAMPLE_SYNC) },
        ]})
    }

    fn credentials(&self, body: &Value) -> Result<Value, Refused> {
        let given = parse_credentials(body).map_err(|problems| {
            Refused::new(
                400,
                "bad-request",
                "give {\"api_token\"} or {\"api_email\", \"api_key\"}",
            )
            .with_errors(problems)
        })?;
        self.target.set_credentials(given).map_err(|_| {
            Refused::new(
                409,
                "not-live",
                "the designer sends to the embedded fake API, which has its own sandbox credentials; start it with --live to send to Cloudflare",
            )
        })?;
        Ok(json!({ "credentials": self.target.credentials_state() }))
    }

    async fn prepare(&self, body: &Value) -> Result<Value, Refused> {
        let task = TaskRequest::read(body)?;
        // A sync's preview reads the account.
        let purpose = if task.input.get("sync").is_some() {
            Use::Online
        } else {
            Use::Offline
        };
        let fitted = self.fit(task.config, purpose)?;
        let outcome = self
            .host
            .prepare(
                &fitted.options,
                fitted.config.text(),
                &task.input.to_string(),
            )
            .await;
        outcome_document(outcome, &fitted.overridden, Wrote::Never)
    }

    async fn send(&self, body: &Value) -> Result<Value, Refused> {
        let task = TaskRequest::read(body)?;
        let account = task
            .input
            .get("account_id")
            .or_else(|| task.config.get("account_id"))
            .and_then(Value::as_str);
        let confirmed = body.get("confirm_account").and_then(Value::as_str);
        match (account, confirmed) {
            (Some(account), Some(confirmed)) if account == confirmed => {}
            (None, _) => {
                return Err(Refused::new(
                    400,
                    "not-confirmed",
                    "name the account to send to (account_id in the input or the config), and confirm it",
                ))
            }
            (Some(_), _) => {
                return Err(Refused::new(
                    400,
                    "not-confirmed",
                    "confirm_account must be the account the batch is sent to",
                )
                .with_errors(vec![FieldProblem::new(
                    "/confirm_account",
                    "not the account the input or the config names",
                )]))
            }
        }
        let Ok(_sending) = self.sending.try_lock() else {
            return Err(Refused::new(
                409,
                "busy",
                "a send is already under way; wait for its result",
            ));
        };
        let fitted = self.fit(task.config, Use::Online)?;
        let outcome = self
            .host
            .run_task(
                &fitted.options,
                fitted.config.text(),
                &task.input.to_string(),
            )
            .await;
        outcome_document(outcome, &fitted.overridden, Wrote::UnlessSkipped)
    }

    async fn export(&self, body: &Value) -> Result<Value, Refused> {
        let task = TaskRequest::read_or_empty(body)?;
        let fitted = self.fit(task.config, Use::Online)?;
        let outcome = self
            .host
            .export_policies(
                &fitted.options,
                fitted.config.text(),
                &task.input.to_string(),
            )
            .await;
        outcome_document(outcome, &fitted.overridden, Wrote::Never)
    }

    /// The snippets of the task, with the request a batch sends to
    /// Cloudflare (its preview, made without credentials and with nothing
    /// allowed to leave).
    async fn snippets(&self, body: &Value) -> Result<Value, Refused> {
        let mut task = TaskRequest::read(body)?;
        for key in &self.server_keys {
            task.config.remove(key);
        }
        let request = if task.input.get("sync").is_some() {
            Request::Sync
        } else {
            let mut config = task.config.clone();
            config.insert("api_token".into(), json!(PLACEHOLDER_TOKEN));
            let config = TaskConfig::read(Value::Object(config).to_string());
            let mut options = config.task_options([]);
            options.allow_hosts.clear();
            let preview = self
                .host
                .prepare(&options, config.text(), &task.input.to_string())
                .await;
            match preview.map(|outcome| outcome.map(|text| serde_json::from_str::<Value>(&text))) {
                Ok(Ok(Ok(preview))) if preview["request"].is_object() => Request::Batch {
                    method: preview["request"]["method"].clone(),
                    url: preview["request"]["url"].clone(),
                    body: preview["request"]["body"].clone(),
                },
                Ok(Ok(Ok(_))) => Request::Empty,
                _ => Request::Invalid,
            }
        };
        Ok(json!({ "snippets": snippets(&task.config, &task.input, &request) }))
    }

    /// The page's config with the server's members put in, and the
    /// sandbox of a task that may reach only the target.
    fn fit(&self, mut config: Map<String, Value>, purpose: Use) -> Result<Fitted, Refused> {
        let mut overridden = Vec::new();
        for key in &self.server_keys {
            if config.remove(key).is_some() {
                overridden.push(pointer_to(key));
            }
        }
        self.target.complete(&mut config, purpose).map_err(|_| {
            Refused::new(
                409,
                "missing-credentials",
                "no Cloudflare credentials: give an API token on the page, or set $CLOUDFLARE_API_TOKEN before starting task-host designer --live",
            )
        })?;
        let config = TaskConfig::read(Value::Object(config).to_string());
        let mut options = config.task_options([]);
        options.allow_hosts = self.target.allowed_hosts();
        Ok(Fitted {
            config,
            options,
            overridden,
        })
    }
}

/// The JSON Pointer of a top-level member.
fn pointer_to(key: &str) -> String {
    format!("/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The routes, for telling a wrong method from a wrong path.
const ROUTES: [&str; 8] = [
    "/api/session",
    "/api/describe",
    "/api/examples",
    "/api/credentials",
    "/api/prepare",
    "/api/send",
    "/api/export",
    "/api/snippets",
];

/// A task as the page asked for it.
struct TaskRequest {
    config: Map<String, Value>,
    input: Value,
}

impl TaskRequest {
    /// `{"config": {...}, "input": ...}`: the config must be an object
    /// (the server fits it); the input is the component's to judge.
    fn read(body: &Value) -> Result<TaskRequest, Refused> {
        let mut problems = Vec::new();
        let config = match body.get("config") {
            Some(Value::Object(config)) => Some(config.clone()),
            Some(_) => {
                problems.push(FieldProblem::new(
                    "/config",
                    "the config must be a JSON object",
                ));
                None
            }
            None => {
                problems.push(FieldProblem::new("/config", "the config is missing"));
                None
            }
        };
        let input = body.get("input").cloned();
        if input.is_none() {
            problems.push(FieldProblem::new("/input", "the input is missing"));
        }
        match (config, input) {
            (Some(config), Some(input)) if problems.is_empty() => Ok(TaskRequest { config, input }),
            _ => Err(
                Refused::new(400, "bad-request", "the request is incomplete").with_errors(problems),
            ),
        }
    }

    /// An export's request, whose input may be left out (`{}`: the
    /// config's account).
    fn read_or_empty(body: &Value) -> Result<TaskRequest, Refused> {
        let mut body = body.clone();
        if let Some(members) = body.as_object_mut() {
            members.entry("input").or_insert_with(|| json!({}));
        }
        TaskRequest::read(&body)
    }
}

/// A task ready for the component.
struct Fitted {
    config: TaskConfig,
    options: crate::TaskOptions,
    overridden: Vec<String>,
}

/// Whether a call that succeeded changed the account.
#[derive(Clone, Copy)]
enum Wrote {
    Never,
    UnlessSkipped,
}

/// `{"ok": true, "document"}` or `{"ok": false, "error"}` (the error as
/// `task-host` prints it), both with `overridden` and `wrote`; a call the
/// host could not make is a 500.
fn outcome_document(
    outcome: anyhow::Result<Result<String, TaskError>>,
    overridden: &[String],
    wrote: Wrote,
) -> Result<Value, Refused> {
    match outcome {
        Ok(Ok(text)) => {
            let Ok(document) = serde_json::from_str::<Value>(&text) else {
                return Err(Refused::new(
                    500,
                    "host",
                    "the component's answer is not JSON",
                ));
            };
            let wrote = match wrote {
                Wrote::Never => false,
                Wrote::UnlessSkipped => document["skipped"] != json!(true),
            };
            Ok(
                json!({ "ok": true, "document": document, "overridden": overridden, "wrote": wrote }),
            )
        }
        Ok(Err(error)) => {
            let error = error_to_json(&error);
            let wrote = match wrote {
                Wrote::Never => json!(false),
                Wrote::UnlessSkipped if error["may_have_applied"] == json!(true) => {
                    json!("may-have")
                }
                Wrote::UnlessSkipped => json!(false),
            };
            Ok(json!({ "ok": false, "error": error, "overridden": overridden, "wrote": wrote }))
        }
        Err(e) => Err(Refused::new(
            500,
            "host",
            format!("the task could not run: {e:#}"),
        )),
    }
}

/// `{"api_token"}` or `{"api_email", "api_key"}`, each a string the
/// component could take as a secret.
fn parse_credentials(body: &Value) -> Result<Credentials, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let members = body.as_object().cloned().unwrap_or_default();
    for name in members.keys() {
        if !CREDENTIAL_KEYS.contains(&name.as_str()) {
            problems.push(FieldProblem::new(
                &pointer_to(name),
                "not a credential: give api_token, or api_email and api_key",
            ));
        }
    }
    let mut text = |name: &str, secret: bool| -> Option<String> {
        let pointer = format!("/{name}");
        match members.get(name)? {
            Value::String(s) if s.trim().is_empty() => {
                problems.push(FieldProblem::new(&pointer, "must not be empty"));
                None
            }
            Value::String(s)
                if secret && s.chars().count() < allow_policies_batch::config::MIN_SECRET_CHARS =>
            {
                problems.push(FieldProblem::new(
                    &pointer,
                    &format!(
                        "must be at least {} characters",
                        allow_policies_batch::config::MIN_SECRET_CHARS
                    ),
                ));
                None
            }
            Value::String(s) => Some(s.clone()),
            _ => {
                problems.push(FieldProblem::new(&pointer, "must be a string"));
                None
            }
        }
    };
    let token = text("api_token", true);
    let email = text("api_email", false);
    let key = text("api_key", true);
    let given = match (token, email, key) {
        (Some(token), None, None)
            if !members.contains_key("api_email") && !members.contains_key("api_key") =>
        {
            Some(Credentials::Token(token))
        }
        (None, Some(email), Some(key)) if !members.contains_key("api_token") => {
            Some(Credentials::Legacy { email, key })
        }
        _ => None,
    };
    match given {
        Some(given) if problems.is_empty() => Ok(given),
        _ => {
            if problems.is_empty() {
                problems.push(FieldProblem::new(
                    "",
                    "give api_token alone, or api_email and api_key together",
                ));
            }
            Err(problems)
        }
    }
}
