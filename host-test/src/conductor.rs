//! Conductor's task API, as a worker speaks it: everything that knows a URL,
//! a query parameter or a JSON field name of the server is in this module.
//!
//! Two calls are used:
//! - `GET {api}/tasks/poll/batch/{taskType}?count=N&timeout=MS&workerid=ID`
//!   long-polls for up to `count` scheduled tasks. The answer is a JSON array
//!   of tasks, or `204 No Content` when none came within `timeout`.
//! - `POST {api}/tasks` with a `TaskResult` reports how one task ended.
//!
//! `{api}` is the server's `/api` root: `--server http://conductor:8080` and
//! `--server http://conductor:8080/api` both name it.
//!
//! A server that requires authentication (Orkes Conductor) gets a third:
//! `POST {api}/token` with an application's access key `{keyId, keySecret}`
//! answers `{"token": ...}`, which every other call carries as
//! `X-Authorization`. The token is fetched on first use, again after
//! [`TOKEN_REFRESH`], and again once when the server refuses it (it may
//! have expired early); a refusal of a fresh token, or of the key itself,
//! is [`ConductorError::Unauthorized`]. The key's secret and each token are
//! kept out of every line the process prints ([`crate::printing`]), since
//! an error answer's text ([`ConductorError::Status`]) may quote them.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, USER_AGENT};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasmtime_wasi_http::RequestOptions;

use crate::cleartext::ServerLink;
use crate::outbound::pool::ConnectionPool;

/// How long a token is used before a new one is fetched: well inside the
/// hour an Orkes token is commonly valid for (Conductor's Java SDK refreshes
/// every 45 minutes by default, too).
pub const TOKEN_REFRESH: Duration = Duration::from_secs(45 * 60);

/// The largest answer to a token request read.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// An application's access key, exchanged for tokens. The secret is never
/// shown: `Debug` leaves it out, and nothing formats it.
#[derive(Clone)]
pub struct AccessKey {
    pub id: String,
    secret: String,
}

impl AccessKey {
    pub fn new(id: String, secret: String) -> Self {
        AccessKey { id, secret }
    }

    /// The secret, for what must carry it (a token request) and for
    /// redaction.
    pub fn secret(&self) -> &str {
        &self.secret
    }
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A client's key and the token it was last given.
struct Session {
    key: AccessKey,
    token: tokio::sync::Mutex<Option<Token>>,
}

#[derive(Clone)]
struct Token {
    value: String,
    fetched: tokio::time::Instant,
}

/// Conductor cuts `reasonForIncompletion` to this many characters.
pub const MAX_REASON_CHARS: usize = 500;

/// The largest poll answer read: a batch of tasks with their inputs. Tasks
/// carry at most 4 x 1000 policies of a few hundred bytes each.
const MAX_POLL_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// The largest answer to an update read (Conductor answers with the task id).
const MAX_UPDATE_RESPONSE_BYTES: usize = 64 * 1024;

/// How long the server may take beyond the long-poll timeout to answer, and
/// how long an update may take in all.
const SERVER_GRACE: Duration = Duration::from_secs(10);

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A server's task API, reached over keep-alive HTTP/1.1 (`http` or `https`).
pub struct ConductorClient {
    /// Scheme and authority, such as `http://127.0.0.1:8080`.
    origin: String,
    /// The path of the API root without a trailing slash, such as `/api`.
    api_path: String,
    /// `host[:port]`, sent as the `Host` header.
    authority: String,
    /// The host alone, IPv6 in brackets.
    host: String,
    connections: Arc<ConnectionPool>,
    /// The access key, for a server that requires one.
    session: Option<Session>,
}

impl fmt::Debug for ConductorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConductorClient")
            .field("api", &format_args!("{}{}", self.origin, self.api_path))
            .finish()
    }
}

/// One task handed out by a poll: what the worker needs of it. Only the
/// two ids are required, so that any task the server hands out can be
/// reported, whatever else is wrong with it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolledTask {
    pub task_id: String,
    pub workflow_instance_id: String,
    /// The task's input; `null` when the server sends none.
    #[serde(default)]
    pub input_data: Value,
    /// Set when the server kept a large input in external storage and sent
    /// an empty `inputData` in its place.
    #[serde(default)]
    pub external_input_payload_storage_path: Option<String>,
    /// When the task first started, in milliseconds since the epoch: the
    /// definition's `timeoutSeconds` counts from here, across the polls of
    /// a task kept `IN_PROGRESS`.
    #[serde(default)]
    pub start_time: Option<u64>,
    /// How many times the task was handed out.
    #[serde(default)]
    pub poll_count: Option<u32>,
    /// When the task was scheduled, in milliseconds since the epoch.
    #[serde(default)]
    pub scheduled_time: Option<u64>,
    /// Attempts of the task before this one: a retry has 1 or more.
    #[serde(default)]
    pub retry_count: u32,
    /// The attempt this one retries.
    #[serde(default)]
    pub retried_task_id: Option<String>,
    /// How long the server waits for a report before it times the task out
    /// and, with retries left, runs it again; counted from the poll (the
    /// server's `updateTime`). 0 or absent: no such limit.
    #[serde(default)]
    pub response_timeout_seconds: Option<u64>,
    /// What the task reported last, when it was put back `IN_PROGRESS`.
    #[serde(default)]
    pub output_data: Value,
}

/// When an attempt of a task started, as the server holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptTimes {
    /// Its first poll, in milliseconds since the epoch; 0 before one.
    #[serde(default)]
    pub start_time: u64,
    #[serde(default)]
    pub scheduled_time: u64,
}

/// What one poll brought.
#[derive(Debug, Default)]
pub struct Polled {
    pub tasks: Vec<PolledTask>,
    /// Entries that are not tasks (no `taskId` or `workflowInstanceId`):
    /// they cannot be reported, and the server times them out.
    pub unreadable: Vec<String>,
}

/// How a task ended, in Conductor's words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Not done yet: Conductor hands the task out again after
    /// `callbackAfterSeconds`, using none of its retries.
    InProgress,
    Completed,
    /// Failed, and the task definition's retry policy applies.
    Failed,
    /// Failed, and retrying cannot help: the workflow sees the failure now.
    FailedWithTerminalError,
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskStatus::InProgress => "IN_PROGRESS",
            TaskStatus::Completed => "COMPLETED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::FailedWithTerminalError => "FAILED_WITH_TERMINAL_ERROR",
        })
    }
}

/// The body of `POST /api/tasks`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub workflow_instance_id: String,
    pub task_id: String,
    pub worker_id: String,
    pub status: TaskStatus,
    pub output_data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_for_incompletion: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_after_seconds: Option<u64>,
}

/// Why a call to the server did not succeed.
#[derive(Debug)]
pub enum ConductorError {
    /// No answer: the connection, the request or the wait for the answer failed.
    Transport(String),
    /// The server answered with an unexpected status; the text is the start
    /// of its body.
    Status { status: StatusCode, body: String },
    /// The server refused the worker's credentials (401 or 403): which
    /// ones, and on which call. Retrying will not help.
    Unauthorized(String),
    /// The server's answer could not be read as what the call returns.
    BadResponse(String),
}

impl fmt::Display for ConductorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConductorError::Transport(reason) => write!(f, "no answer from the server: {reason}"),
            ConductorError::Status { status, body } if body.is_empty() => {
                write!(f, "the server answered {status}")
            }
            ConductorError::Status { status, body } => {
                write!(f, "the server answered {status}: {body}")
            }
            ConductorError::BadResponse(reason) => {
                write!(f, "the server's answer is unreadable: {reason}")
            }
            ConductorError::Unauthorized(reason) => f.write_str(reason),
        }
    }
}

impl std::error::Error for ConductorError {}

impl ConductorClient {
    /// A client for the server at `server`: its root (`http://host:8080`) or
    /// its API root (`http://host:8080/api`).
    pub fn new(server: &str) -> anyhow::Result<ConductorClient> {
        let uri: Uri = server
            .parse()
            .map_err(|e| anyhow::anyhow!("--server {server:?} is not a URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("http") => "http",
            Some(s) if s.eq_ignore_ascii_case("https") => "https",
            _ => anyhow::bail!("--server must be an http:// or https:// URL, not {server:?}"),
        };
        let Some(authority) = uri.authority() else {
            anyhow::bail!("--server {server:?} names no host");
        };
        if authority.as_str().contains('@') {
            anyhow::bail!("--server must not carry a user name or password");
        }
        if uri.query().is_some() {
            anyhow::bail!("--server must not carry a query");
        }
        let path = uri.path().trim_end_matches('/');
        if path
            .split('/')
            .rev()
            .skip(1)
            .any(|segment| segment == "api")
        {
            anyhow::bail!(
                "--server names a path below the API root; give the server's root or its /api"
            );
        }
        let api_path = if path.ends_with("/api") {
            path.to_string()
        } else {
            format!("{path}/api")
        };
        Ok(ConductorClient {
            origin: format!("{scheme}://{authority}"),
            api_path,
            authority: authority.to_string(),
            host: authority.host().to_string(),
            connections: Arc::default(),
            session: None,
        })
    }

    /// The client, trusting for `https` also the certificate authorities
    /// in `pem` (a self-hosted server's private CA).
    pub fn with_ca_bundle(mut self, pem: &[u8]) -> anyhow::Result<Self> {
        let pool = ConnectionPool::trusting(pem)
            .map_err(|why| anyhow::anyhow!("the CA bundle is not usable: {why}"))?;
        self.connections = Arc::new(pool);
        Ok(self)
    }

    /// The client, authenticating with `key` (see the module's notes). The
    /// key's secret, and every token it is exchanged for, are kept out of
    /// everything the process prints ([`crate::printing`]).
    pub fn with_access_key(mut self, key: AccessKey) -> Self {
        crate::printing::keep_secret(key.secret());
        self.session = Some(Session {
            key,
            token: tokio::sync::Mutex::new(None),
        });
        self
    }

    /// How this client reaches its server: what
    /// [`check_server_link`](crate::cleartext::check_server_link) decides on.
    pub fn link(&self) -> ServerLink<'_> {
        ServerLink {
            flag: "--server",
            address: &self.origin,
            host: &self.host,
            tls: self.origin.starts_with("https:"),
        }
    }

    /// The API root, such as `http://127.0.0.1:8080/api`.
    pub fn api_url(&self) -> String {
        format!("{}{}", self.origin, self.api_path)
    }

    /// The path and query of a batch poll.
    pub fn poll_path(&self, poll: &PollRequest<'_>) -> String {
        let mut path = format!(
            "{}/tasks/poll/batch/{}?count={}&timeout={}&workerid={}",
            self.api_path,
            percent_encode(poll.task_type),
            poll.count,
            poll.timeout.as_millis(),
            percent_encode(poll.worker_id),
        );
        if let Some(domain) = poll.domain {
            path.push_str("&domain=");
            path.push_str(&percent_encode(domain));
        }
        path
    }

    /// Asks for up to `poll.count` tasks, waiting up to `poll.timeout` on
    /// the server for the first. No tasks means none came.
    pub async fn poll(&self, poll: &PollRequest<'_>) -> Result<Polled, ConductorError> {
        let path = self.poll_path(poll);
        let (status, body) = self
            .call(
                "a poll",
                Method::GET,
                &path,
                None,
                "application/json",
                poll.timeout + SERVER_GRACE,
                MAX_POLL_RESPONSE_BYTES,
            )
            .await?;
        match status {
            StatusCode::NO_CONTENT => Ok(Polled::default()),
            StatusCode::OK if body.iter().all(u8::is_ascii_whitespace) => Ok(Polled::default()),
            StatusCode::OK => read_tasks(&body),
            status => Err(status_error(status, &body)),
        }
    }

    /// The task definition's `timeoutSeconds`: `Some(0)` means none.
    pub async fn task_timeout(&self, task_type: &str) -> Result<u64, ConductorError> {
        let path = format!(
            "{}/metadata/taskdefs/{}",
            self.api_path,
            percent_encode(task_type)
        );
        let (status, body) = self
            .call(
                "reading the task definition",
                Method::GET,
                &path,
                None,
                "application/json",
                SERVER_GRACE,
                MAX_POLL_RESPONSE_BYTES,
            )
            .await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Definition {
            #[serde(default)]
            timeout_seconds: u64,
        }
        serde_json::from_slice::<Definition>(&body)
            .map(|d| d.timeout_seconds)
            .map_err(|e| ConductorError::BadResponse(format!("a task definition: {e}")))
    }

    /// When the attempt `task_id` started (`GET {api}/tasks/{taskId}`): a
    /// retry carries only its own times, and the worker needs the earlier
    /// attempt's.
    pub async fn attempt_times(&self, task_id: &str) -> Result<AttemptTimes, ConductorError> {
        let path = format!("{}/tasks/{}", self.api_path, percent_encode(task_id));
        let (status, body) = self
            .call(
                "reading an earlier attempt",
                Method::GET,
                &path,
                None,
                "application/json",
                SERVER_GRACE,
                MAX_POLL_RESPONSE_BYTES,
            )
            .await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| ConductorError::BadResponse(format!("a task: {e}")))
    }

    /// Reports how a task ended.
    pub async fn update(&self, result: &TaskResult) -> Result<(), ConductorError> {
        let body = serde_json::to_vec(result)
            .map_err(|e| ConductorError::BadResponse(format!("cannot encode the result: {e}")))?;
        let path = format!("{}/tasks", self.api_path);
        // Conductor answers an update with the task id as text/plain, and
        // refuses (406) a request that accepts only JSON.
        let (status, answer) = self
            .call(
                "a report",
                Method::POST,
                &path,
                Some(body),
                "text/plain, application/json",
                SERVER_GRACE,
                MAX_UPDATE_RESPONSE_BYTES,
            )
            .await?;
        if status.is_success() {
            Ok(())
        } else {
            Err(status_error(status, &answer))
        }
    }

    /// One call, authenticated when the client has a key: a refused token
    /// is replaced once, then the refusal is final.
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &self,
        what: &str,
        method: Method,
        path_and_query: &str,
        json_body: Option<Vec<u8>>,
        accept: &str,
        timeout: Duration,
        max_response_bytes: usize,
    ) -> Result<(StatusCode, Bytes), ConductorError> {
        let refused =
            |status: StatusCode| matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
        let Some(session) = &self.session else {
            let (status, body) = self
                .exchange(
                    &method,
                    path_and_query,
                    json_body,
                    accept,
                    timeout,
                    max_response_bytes,
                    None,
                )
                .await?;
            if refused(status) {
                return Err(ConductorError::Unauthorized(format!(
                    "the server refused {what} without credentials ({status}): give the worker an access key (--key-id and --key-secret)"
                )));
            }
            return Ok((status, body));
        };
        let mut refused_token: Option<String> = None;
        loop {
            let renewed = refused_token.is_some();
            let token = self.token(session, refused_token.as_deref()).await?;
            let (status, body) = self
                .exchange(
                    &method,
                    path_and_query,
                    json_body.clone(),
                    accept,
                    timeout,
                    max_response_bytes,
                    Some(&token),
                )
                .await?;
            if !refused(status) {
                return Ok((status, body));
            }
            if renewed {
                return Err(ConductorError::Unauthorized(format!(
                    "the server refused {what} with a fresh token of access key {:?} ({status}): the key lacks the permission",
                    session.key.id
                )));
            }
            refused_token = Some(token);
        }
    }

    /// The session's token: the one held, unless it is older than
    /// [`TOKEN_REFRESH`] or is the one the server just `refused`. Calls
    /// refused together fetch one new token between them: whoever comes
    /// second finds it already replaced.
    async fn token(
        &self,
        session: &Session,
        refused: Option<&str>,
    ) -> Result<String, ConductorError> {
        let mut held = session.token.lock().await;
        if let Some(token) = held.as_ref() {
            let refused_now = refused == Some(token.value.as_str());
            if !refused_now && token.fetched.elapsed() < TOKEN_REFRESH {
                return Ok(token.value.clone());
            }
        }
        let body = serde_json::to_vec(&serde_json::json!({
            "keyId": session.key.id,
            "keySecret": session.key.secret,
        }))
        .map_err(|e| ConductorError::BadResponse(format!("cannot encode the key: {e}")))?;
        let path = format!("{}/token", self.api_path);
        let (status, answer) = self
            .exchange(
                &Method::POST,
                &path,
                Some(body),
                "application/json",
                SERVER_GRACE,
                MAX_TOKEN_RESPONSE_BYTES,
                None,
            )
            .await?;
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            return Err(ConductorError::Unauthorized(format!(
                "the server refused access key {:?} and its secret ({status} on POST {path})",
                session.key.id
            )));
        }
        if !status.is_success() {
            return Err(status_error(status, &answer));
        }
        #[derive(Deserialize)]
        struct Granted {
            token: String,
        }
        let granted: Granted = serde_json::from_slice(&answer)
            .map_err(|e| ConductorError::BadResponse(format!("a token answer: {e}")))?;
        // Known before it is first sent: an answer may quote it back.
        crate::printing::keep_secret(&granted.token);
        *held = Some(Token {
            value: granted.token.clone(),
            fetched: tokio::time::Instant::now(),
        });
        Ok(granted.token)
    }

    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        method: &Method,
        path_and_query: &str,
        json_body: Option<Vec<u8>>,
        accept: &str,
        timeout: Duration,
        max_response_bytes: usize,
        token: Option<&str>,
    ) -> Result<(StatusCode, Bytes), ConductorError> {
        let uri = format!("{}{}", self.origin, path_and_query);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(HOST, &self.authority)
            .header(ACCEPT, accept)
            .header(USER_AGENT, concat!("task-host/", env!("CARGO_PKG_VERSION")));
        if json_body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        if let Some(token) = token {
            request = request.header("x-authorization", token);
        }
        let body = Full::new(Bytes::from(json_body.unwrap_or_default()))
            .map_err(|never| match never {})
            .boxed_unsync();
        let request = request
            .body(body)
            .map_err(|e| ConductorError::Transport(format!("cannot build the request: {e}")))?;
        let options = RequestOptions {
            connect_timeout: Some(CONNECT_TIMEOUT),
            first_byte_timeout: Some(timeout),
            between_bytes_timeout: Some(SERVER_GRACE),
        };
        let exchange = async {
            let (response, _io) = self
                .connections
                .clone()
                .send(request, Some(options))
                .await
                .map_err(|e| ConductorError::Transport(e.to_string()))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), max_response_bytes)
                .collect()
                .await
                .map_err(|e| ConductorError::Transport(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok((status, body))
        };
        // The options bound each wait; this bounds the exchange as a whole,
        // so a server that trickles bytes cannot hold a worker forever.
        tokio::time::timeout(timeout + SERVER_GRACE, exchange)
            .await
            .map_err(|_| ConductorError::Transport("the server took too long".into()))?
    }
}

/// What a poll's JSON array holds: each entry is read on its own, so one
/// that is not a task does not cost the others.
fn read_tasks(body: &[u8]) -> Result<Polled, ConductorError> {
    let entries: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| ConductorError::BadResponse(format!("a poll answer: {e}")))?;
    let mut polled = Polled::default();
    for entry in entries {
        match serde_json::from_value::<PolledTask>(entry.clone()) {
            Ok(task) => polled.tasks.push(task),
            Err(e) => polled.unreadable.push(format!(
                "task {}: {e}",
                entry
                    .get("taskId")
                    .and_then(Value::as_str)
                    .unwrap_or("without an id")
            )),
        }
    }
    Ok(polled)
}

/// One batch poll's parameters.
#[derive(Clone, Copy, Debug)]
pub struct PollRequest<'a> {
    pub task_type: &'a str,
    pub count: u32,
    /// How long the server may wait for a first task.
    pub timeout: Duration,
    pub worker_id: &'a str,
    /// The task domain to poll, when tasks are routed by domain.
    pub domain: Option<&'a str>,
}

fn status_error(status: StatusCode, body: &[u8]) -> ConductorError {
    const SHOWN: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let shown: String = text.chars().take(SHOWN).collect();
    ConductorError::Status {
        status,
        body: shown,
    }
}

/// Everything but RFC 3986's unreserved characters, which is what a path
/// segment or a query value may carry as they are.
const RESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` fit for a path segment or a query value.
fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, RESERVED).to_string()
}

/// `reason` cut to [`MAX_REASON_CHARS`] characters, ending in `…` when cut.
pub fn fit_reason(reason: &str) -> String {
    if reason.chars().count() <= MAX_REASON_CHARS {
        return reason.to_string();
    }
    let mut cut: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_server_may_be_named_with_or_without_its_api_root() {
        for server in [
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080/api",
            "http://127.0.0.1:8080/api/",
        ] {
            let client = ConductorClient::new(server).unwrap();
            assert_eq!(client.api_url(), "http://127.0.0.1:8080/api", "{server}");
        }
        let behind_a_prefix = ConductorClient::new("https://example.test/conductor").unwrap();
        assert_eq!(
            behind_a_prefix.api_url(),
            "https://example.test/conductor/api"
        );
    }

    #[test]
    fn servers_that_are_not_plain_http_urls_are_refused() {
        for server in [
            "ftp://127.0.0.1",
            "127.0.0.1:8080",
            "/api",
            "http://user:secret@127.0.0.1:8080",
            "http://127.0.0.1:8080/api?x=1",
            "http://127.0.0.1:8080/api/tasks",
        ] {
            let error = ConductorClient::new(server).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
            assert!(error.contains("--server"), "{server}: {error}");
        }
    }

    #[test]
    fn the_poll_path_carries_every_parameter_encoded() {
        let client = ConductorClient::new("http://127.0.0.1:8080").unwrap();
        let mut poll = PollRequest {
            task_type: "allow_policies batch/x",
            count: 3,
            timeout: Duration::from_millis(1500),
            worker_id: "host-1#7",
            domain: None,
        };
        assert_eq!(
            client.poll_path(&poll),
            "/api/tasks/poll/batch/allow_policies%20batch%2Fx?count=3&timeout=1500&workerid=host-1%237"
        );
        poll.domain = Some("blue");
        assert!(client
            .poll_path(&poll)
            .ends_with("&workerid=host-1%237&domain=blue"));
    }

    #[test]
    fn a_task_result_has_conductors_field_names() {
        let result = TaskResult {
            workflow_instance_id: "wf-1".into(),
            task_id: "t-1".into(),
            worker_id: "w".into(),
            status: TaskStatus::FailedWithTerminalError,
            output_data: json!({"error": {"kind": "api"}}),
            reason_for_incompletion: Some("api: no".into()),
            callback_after_seconds: Some(7),
        };
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({
                "workflowInstanceId": "wf-1",
                "taskId": "t-1",
                "workerId": "w",
                "status": "FAILED_WITH_TERMINAL_ERROR",
                "outputData": {"error": {"kind": "api"}},
                "reasonForIncompletion": "api: no",
                "callbackAfterSeconds": 7,
            })
        );
        let completed = TaskResult {
            status: TaskStatus::Completed,
            reason_for_incompletion: None,
            callback_after_seconds: None,
            ..result
        };
        let value = serde_json::to_value(&completed).unwrap();
        assert_eq!(value["status"], "COMPLETED");
        assert!(value.get("reasonForIncompletion").is_none());
        assert!(value.get("callbackAfterSeconds").is_none());
        assert_eq!(TaskStatus::Failed.to_string(), "FAILED");
    }

    #[test]
    fn a_polled_task_keeps_what_the_worker_needs_and_ignores_the_rest() {
        let task: PolledTask = serde_json::from_value(json!({
            "taskId": "t-1",
            "workflowInstanceId": "wf-1",
            "taskType": "allow_policies_batch",
            "status": "IN_PROGRESS",
            "pollCount": 1,
            "inputData": {"account_id": "a"},
        }))
        .unwrap();
        assert_eq!(task.task_id, "t-1");
        assert_eq!(task.input_data["account_id"], "a");
        let bare: PolledTask =
            serde_json::from_value(json!({"taskId": "t", "workflowInstanceId": "w"})).unwrap();
        assert_eq!(bare.input_data, Value::Null);
        assert_eq!(bare.external_input_payload_storage_path, None);
    }

    #[test]
    fn one_entry_that_is_not_a_task_does_not_cost_the_others() {
        let body = json!([
            {"taskId": "t-1", "workflowInstanceId": "wf-1", "inputData": {}},
            {"taskId": "t-2"},
            {"workflowInstanceId": "wf-3"},
            {"taskId": "t-4", "workflowInstanceId": "wf-4", "inputData": [1]},
        ])
        .to_string();
        let polled = read_tasks(body.as_bytes()).unwrap();
        let ids: Vec<&str> = polled.tasks.iter().map(|t| t.task_id.as_str()).collect();
        assert_eq!(ids, ["t-1", "t-4"]);
        assert_eq!(polled.unreadable.len(), 2);
        assert!(
            polled.unreadable[0].starts_with("task t-2: "),
            "{:?}",
            polled.unreadable
        );
        assert!(polled.unreadable[1].starts_with("task without an id: "));
        assert!(read_tasks(b"{}").is_err());
    }

    #[test]
    fn reasons_are_cut_to_conductors_limit_on_a_character_boundary() {
        let short = "invalid_input: the input has 1 problem";
        assert_eq!(fit_reason(short), short);
        let exact = "é".repeat(MAX_REASON_CHARS);
        assert_eq!(fit_reason(&exact), exact);
        let long = "é".repeat(MAX_REASON_CHARS + 1);
        let cut = fit_reason(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS);
        assert!(cut.ends_with('…'));
    }
}
