//! A stand-in for a Conductor server on 127.0.0.1 that behaves as the
//! server does where a worker can tell (conductor-oss/conductor, `core` and
//! `rest` modules), with the endpoints a worker uses:
//!
//! - `GET /api/tasks/poll/batch/{taskType}?count=&timeout=&workerid=` hands
//!   out up to `count` scheduled tasks of that type as a JSON array, waiting
//!   up to `timeout` ms for the first; `200 []` when none came
//!   (`TaskResource.batchPoll` answers an empty list, not 204; [`FakeConductor::answer_empty_polls_with_204`]
//!   gives older servers' answer). A timeout above 5000 ms is refused with
//!   400 (`ExecutionService.poll`, `MAX_POLL_TIMEOUT_MS`). A task handed out
//!   is `IN_PROGRESS`, its `pollCount` one higher, its `startTime` set on
//!   the first poll only.
//! - `POST /api/tasks` takes a `TaskResult`: 200 with the task id as text.
//!   A body that is not one (not JSON, an unknown `status`) is 500, since
//!   Spring's unreadable-message error has no mapping
//!   (`ApplicationExceptionMapper`); a result without `workflowInstanceId`
//!   or `taskId` is 400 (`@NotEmpty` on `TaskResult`); an unknown task 404.
//!   A result for a task that already ended is answered 200 and ignored
//!   (`WorkflowExecutorOps.updateTask`), and recorded as late.
//!   `IN_PROGRESS` puts the task back, handed out again after
//!   `callbackAfterSeconds` with its output (`queueDAO.postpone`).
//! - `GET /api/tasks/{taskId}`: the task as the server holds it.
//! - `GET /api/metadata/taskdefs/{name}`, when a definition is set.
//!
//! Its task lifecycle: a task whose response time ran out
//! ([`FakeConductor::expire`], at once, so that tests assert outcomes and
//! not durations) is `TIMED_OUT`, and a `TIMED_OUT` or `FAILED` task with
//! retries left ([`FakeConductor::allow_retries`]) is followed by a new
//! attempt with a new id, `retryCount` one higher and `retriedTaskId`
//! naming it (`DeciderService.retry`).
//!
//! Like Conductor, it answers `406` when the `Accept` header rules out what
//! the endpoint produces (JSON for a poll, text for an update).
//!
//! With [`FakeConductor::require_key`] it authenticates as Orkes Conductor
//! does: `POST /api/token {keyId, keySecret}` answers `{"token"}` for the
//! right key and 401 otherwise, and every other call needs a token it gave
//! in `X-Authorization` (401 without one). It records every poll (from the
//! moment it arrives) and update, and the most tasks a worker ever had in
//! hand (handed out, not yet reported).
//!
//! As a hostile or careless server might, it answers a call with an error
//! that quotes what it was sent ([`FakeConductor::plant_answer`]): some
//! text, the call's `X-Authorization`, or the request's body.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::io::TokioIo;

/// The statuses a `TaskResult` may carry (Conductor's `TaskResult.Status`).
const STATUSES: [&str; 4] = [
    "IN_PROGRESS",
    "COMPLETED",
    "FAILED",
    "FAILED_WITH_TERMINAL_ERROR",
];

/// `ExecutionService.MAX_POLL_TIMEOUT_MS`.
const MAX_POLL_TIMEOUT_MS: u64 = 5_000;

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One poll as the server saw it.
#[derive(Clone, Debug)]
pub struct Poll {
    pub task_type: String,
    pub count: u32,
    pub timeout_ms: u64,
    pub worker_id: String,
    /// Tasks handed out.
    pub handed_out: usize,
    /// The answer's status; 0 while the poll waits.
    pub status: u16,
}

/// A call of the worker's that a planted answer replies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A poll, answered 500.
    Poll,
    /// A poll, answered 200 with an entry that is not a task: its
    /// `taskId` is the quote, and it has no `workflowInstanceId`.
    PolledEntry,
    /// A report (`POST /api/tasks`), answered 400: a refusal that is not
    /// worth repeating, so the worker says so at once.
    Report,
    /// A token request, answered 500.
    Token,
    /// Reading the task definition, answered 500.
    TaskDefinition,
    /// Reading a task (`GET /api/tasks/{id}`, the attempt a retry
    /// follows), answered 500.
    Task,
}

/// What a planted answer quotes.
#[derive(Clone, Debug)]
pub enum Quote {
    Text(String),
    /// The call's `X-Authorization` header: its session token.
    Authorization,
    /// The request's body as received (a token request's carries the key).
    RequestBody,
}

#[derive(Clone, Debug)]
struct Planted {
    at: Endpoint,
    quote: Quote,
}

/// One update as the server saw it.
#[derive(Clone, Debug)]
pub struct Update {
    /// The body exactly as received.
    pub text: String,
    pub json: Value,
    pub status: u16,
    /// Answered 200, but the task had already ended: ignored.
    pub late: bool,
    /// When it arrived, in milliseconds since the epoch.
    pub at_unix_ms: u64,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Value>,
    in_hand: HashSet<String>,
    max_in_hand: usize,
    polls: Vec<Poll>,
    updates: Vec<Update>,
    fail_polls: usize,
    fail_updates: usize,
    /// Answer an empty poll with `204`, as older servers did.
    empty_as_204: bool,
    /// The definition's `retryCount`: attempts after the first.
    retries_allowed: u64,
    /// The access key required, when one is.
    key: Option<(String, String)>,
    /// Tokens handed out and still accepted.
    valid_tokens: HashSet<String>,
    tokens_issued: usize,
    /// `X-Authorization` of every call but token requests, as received.
    authorizations: Vec<Option<String>>,
    /// Tokens are this text and a count; `token-` by default.
    token_base: Option<String>,
    /// Answers to give the next call of their endpoint, instead of its own.
    planted: Vec<Planted>,
    /// How many planted answers were given.
    planted_given: usize,
    /// The task definition's `timeoutSeconds`, when the definition can be
    /// read (`GET /api/metadata/taskdefs/{name}`; 404 otherwise).
    task_timeout_seconds: Option<u64>,
    /// Every task the server knows, by id, as it holds it now.
    tasks: std::collections::HashMap<String, Value>,
    /// Tasks reported IN_PROGRESS, with when they may be handed out again.
    postponed: Vec<(tokio::time::Instant, Value)>,
}

struct Shared {
    state: Mutex<State>,
    queued: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct FakeConductor {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    accept_loop: JoinHandle<()>,
    scheme: &'static str,
}

impl Drop for FakeConductor {
    fn drop(&mut self) {
        self.accept_loop.abort();
    }
}

impl FakeConductor {
    pub async fn start() -> FakeConductor {
        Self::start_with(None).await
    }

    /// The same over `https`, with a certificate for 127.0.0.1 issued by
    /// the private CA in `support/tls/private-ca.pem`, which no public root
    /// vouches for.
    pub async fn start_tls() -> FakeConductor {
        use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
        let cert = CertificateDer::from(&include_bytes!("tls/private-ca-leaf-cert.der")[..]);
        let key = PrivatePkcs8KeyDer::from(&include_bytes!("tls/private-ca-leaf-key.der")[..]);
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.into_owned()], key.clone_key().into())
            .expect("a usable certificate and key");
        Self::start_with(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config)))).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> FakeConductor {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            state: Mutex::default(),
            queued: Notify::new(),
        });
        let serving = shared.clone();
        let accept_loop = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = serving.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
                    });
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        None => http.serve_connection(TokioIo::new(stream), service).await,
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Err(_) => return,
                        },
                    };
                });
            }
        });
        FakeConductor {
            addr,
            shared,
            accept_loop,
            scheme,
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://`), the server's root.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Schedules a task of `task_type` with this input, as the server
    /// would; its workflow instance is `wf-{task_id}`.
    pub fn enqueue(&self, task_type: &str, task_id: &str, input: Value) {
        self.enqueue_with(task_type, task_id, input, json!({}));
    }

    /// [`Self::enqueue`], with the members of `fields` set in the task.
    pub fn enqueue_with(&self, task_type: &str, task_id: &str, input: Value, fields: Value) {
        let mut task = json!({
            "taskType": task_type,
            "status": "SCHEDULED",
            "inputData": input,
            "referenceTaskName": "apply_allow_policies",
            "retryCount": 0,
            "seq": 1,
            "pollCount": 0,
            "taskDefName": task_type,
            "scheduledTime": unix_ms(),
            "startTime": 0,
            "updateTime": 0,
            "workflowInstanceId": format!("wf-{task_id}"),
            "workflowType": "allow_policies_sync",
            "taskId": task_id,
            "callbackAfterSeconds": 0,
            "responseTimeoutSeconds": 60,
            "outputData": {},
        });
        for (key, value) in fields.as_object().into_iter().flatten() {
            task[key] = value.clone();
        }
        self.enqueue_raw(task);
    }

    /// Queues this entry as it is; it is handed out for polls of its
    /// `taskType`.
    pub fn enqueue_raw(&self, task: Value) {
        self.shared.lock().queue.push_back(task);
        self.shared.queued.notify_waiters();
    }

    /// Answer empty polls with `204`, as servers before the batch poll's
    /// empty list did.
    pub fn answer_empty_polls_with_204(&self) {
        self.shared.lock().empty_as_204 = true;
    }

    /// Retry a task that failed or timed out up to `n` times.
    pub fn allow_retries(&self, n: u64) {
        self.shared.lock().retries_allowed = n;
    }

    /// The task's response time runs out now: an `IN_PROGRESS` task is
    /// `TIMED_OUT` and, with retries left, followed by a new attempt.
    /// Returns the new attempt's id.
    pub fn expire(&self, task_id: &str) -> Option<String> {
        let retry = {
            let mut state = self.shared.lock();
            let task = state.tasks.get_mut(task_id)?;
            if task["status"] != "IN_PROGRESS" {
                return None;
            }
            task["status"] = json!("TIMED_OUT");
            task["reasonForIncompletion"] = json!(format!(
                "responseTimeout: {} exceeded for the taskId: {task_id}",
                task["responseTimeoutSeconds"]
            ));
            state.in_hand.remove(task_id);
            retry_after_failure(&mut state, task_id)
        };
        self.shared.queued.notify_waiters();
        retry
    }

    /// The task as the server holds it now.
    pub fn task(&self, task_id: &str) -> Option<Value> {
        self.shared.lock().tasks.get(task_id).cloned()
    }

    /// Require the access key `id` with `secret` (see the module's notes).
    pub fn require_key(&self, id: &str, secret: &str) {
        self.shared.lock().key = Some((id.to_string(), secret.to_string()));
    }

    /// Let the worker read a task definition with this `timeoutSeconds`.
    pub fn define_task_timeout(&self, seconds: u64) {
        self.shared.lock().task_timeout_seconds = Some(seconds);
    }

    /// Hand out tokens made of `base` and a count, instead of `token-N`.
    pub fn issue_tokens_as(&self, base: &str) {
        self.shared.lock().token_base = Some(base.to_string());
    }

    /// Answers the next call of `at` with an error (see [`Endpoint`]) whose
    /// message quotes `quote`, once; the calls after it are answered as
    /// usual.
    pub fn plant_answer(&self, at: Endpoint, quote: Quote) {
        self.shared.lock().planted.push(Planted { at, quote });
    }

    /// How many planted answers were given so far.
    pub fn planted_answers_given(&self) -> usize {
        self.shared.lock().planted_given
    }

    /// Stop accepting every token handed out so far, as when they expire.
    pub fn expire_tokens(&self) {
        self.shared.lock().valid_tokens.clear();
    }

    pub fn tokens_issued(&self) -> usize {
        self.shared.lock().tokens_issued
    }

    /// `X-Authorization` of every poll and update, in order.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.shared.lock().authorizations.clone()
    }

    /// The next `n` polls are answered 500.
    pub fn fail_next_polls(&self, n: usize) {
        self.shared.lock().fail_polls = n;
    }

    /// The next `n` updates are answered 500 and not taken.
    pub fn fail_next_updates(&self, n: usize) {
        self.shared.lock().fail_updates = n;
    }

    pub fn polls(&self) -> Vec<Poll> {
        self.shared.lock().polls.clone()
    }

    /// Every update received, refused ones included.
    pub fn updates(&self) -> Vec<Update> {
        self.shared.lock().updates.clone()
    }

    /// The updates the server took (answered 200, not late), as JSON.
    pub fn accepted(&self) -> Vec<Value> {
        self.shared
            .lock()
            .updates
            .iter()
            .filter(|u| u.status == 200 && !u.late)
            .map(|u| u.json.clone())
            .collect()
    }

    pub fn in_hand(&self) -> usize {
        self.shared.lock().in_hand.len()
    }

    pub fn max_in_hand(&self) -> usize {
        self.shared.lock().max_in_hand
    }

    /// Waits until `check` holds, for at most `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        what: &str,
        check: impl Fn(&FakeConductor) -> bool,
    ) {
        let started = Instant::now();
        while !check(self) {
            assert!(
                started.elapsed() < limit,
                "gave up waiting for {what}; polls {:?}, updates {:?}",
                self.polls(),
                self.updates().iter().map(|u| &u.text).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn answer(status: StatusCode, body: impl Into<Bytes>, content_type: &str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()))
        .unwrap()
}

fn no_content() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Full::new(Bytes::new()))
        .unwrap()
}

fn problem(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "status": status.as_u16(), "message": message }).to_string();
    answer(status, body, "application/json")
}

/// Whether an `Accept` header (absent means anything) takes `produced`.
fn accepts(accept: Option<&str>, produced: &str) -> bool {
    let Some(accept) = accept else {
        return true;
    };
    let (kind, _) = produced.split_once('/').unwrap();
    accept.split(',').any(|range| {
        let range = range.split(';').next().unwrap_or_default().trim();
        range == "*/*" || range == produced || range == format!("{kind}/*")
    })
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let authorization = request
        .headers()
        .get("x-authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or_default().to_string();
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return problem(StatusCode::BAD_REQUEST, "unreadable body"),
    };
    let endpoint = match (&method, path.as_str()) {
        (&hyper::Method::POST, "/api/token") => Some(Endpoint::Token),
        (&hyper::Method::POST, "/api/tasks") => Some(Endpoint::Report),
        (&hyper::Method::GET, p) if p.starts_with("/api/tasks/poll/batch/") => Some(Endpoint::Poll),
        (&hyper::Method::GET, p) if p.starts_with("/api/tasks/") => Some(Endpoint::Task),
        (&hyper::Method::GET, p) if p.starts_with("/api/metadata/taskdefs/") => {
            Some(Endpoint::TaskDefinition)
        }
        _ => None,
    };
    if endpoint == Some(Endpoint::Token) {
        if let Some(planted) = take_planted(shared, Endpoint::Token) {
            return planted_answer(&planted, authorization.as_deref(), &body);
        }
        return token(shared, &body);
    }
    {
        let mut state = shared.lock();
        state.authorizations.push(authorization.clone());
        let required = state.key.is_some();
        let known = authorization
            .as_ref()
            .is_some_and(|t| state.valid_tokens.contains(t));
        if required && !known {
            return problem(StatusCode::UNAUTHORIZED, "Token cannot be null or empty");
        }
    }
    if let Some(endpoint) = endpoint {
        let planted = take_planted(shared, endpoint).or_else(|| {
            (endpoint == Endpoint::Poll)
                .then(|| take_planted(shared, Endpoint::PolledEntry))
                .flatten()
        });
        if let Some(planted) = planted {
            return planted_answer(&planted, authorization.as_deref(), &body);
        }
    }
    if method == hyper::Method::GET {
        if let Some(id) = path.strip_prefix("/api/tasks/") {
            if !id.starts_with("poll/") {
                return match shared.lock().tasks.get(&percent_decode(id)) {
                    Some(task) => answer(StatusCode::OK, task.to_string(), "application/json"),
                    None => problem(StatusCode::NOT_FOUND, "no such task"),
                };
            }
        }
        if let Some(name) = path.strip_prefix("/api/metadata/taskdefs/") {
            return match shared.lock().task_timeout_seconds {
                Some(seconds) => answer(
                    StatusCode::OK,
                    json!({ "name": percent_decode(name), "timeoutSeconds": seconds }).to_string(),
                    "application/json",
                ),
                None => problem(StatusCode::NOT_FOUND, "no such task definition"),
            };
        }
        if let Some(task_type) = path.strip_prefix("/api/tasks/poll/batch/") {
            if !accepts(accept.as_deref(), "application/json") {
                return problem(
                    StatusCode::NOT_ACCEPTABLE,
                    "a poll produces application/json",
                );
            }
            return poll(shared, task_type, &query).await;
        }
    }
    if method == hyper::Method::POST && path == "/api/tasks" {
        if !accepts(accept.as_deref(), "text/plain") {
            return problem(StatusCode::NOT_ACCEPTABLE, "an update produces text/plain");
        }
        return update(shared, &body);
    }
    problem(
        StatusCode::NOT_FOUND,
        &format!("no route for {method} {path}"),
    )
}

/// The first answer planted for `at`, taken and counted as given.
fn take_planted(shared: &Shared, at: Endpoint) -> Option<Planted> {
    let mut state = shared.lock();
    let index = state.planted.iter().position(|p| p.at == at)?;
    state.planted_given += 1;
    Some(state.planted.remove(index))
}

/// The error a planted answer gives, quoting what it was told to.
fn planted_answer(
    planted: &Planted,
    authorization: Option<&str>,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let quoted = match &planted.quote {
        Quote::Text(text) => text.clone(),
        Quote::Authorization => authorization.unwrap_or_default().to_string(),
        Quote::RequestBody => String::from_utf8_lossy(body).into_owned(),
    };
    let status = match planted.at {
        Endpoint::PolledEntry => {
            let entry = json!([{ "taskId": quoted, "taskType": "planted" }]);
            return answer(StatusCode::OK, entry.to_string(), "application/json");
        }
        Endpoint::Report => StatusCode::BAD_REQUEST,
        Endpoint::Poll | Endpoint::Token | Endpoint::TaskDefinition | Endpoint::Task => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    // As a server that quotes what it was given; the text is not escaped
    // as JSON, so a quote arrives as it was sent.
    let text = format!(
        "{{\"status\":{},\"message\":\"error near {quoted}\"}}",
        status.as_u16()
    );
    answer(status, text, "application/json")
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

async fn poll(shared: &Shared, task_type: &str, query: &str) -> Response<Full<Bytes>> {
    let task_type = percent_decode(task_type);
    let count = query_value(query, "count").and_then(|c| c.parse::<u32>().ok());
    let timeout_ms = query_value(query, "timeout").and_then(|t| t.parse::<u64>().ok());
    let worker_id = query_value(query, "workerid").map(percent_decode);
    let (Some(count), Some(timeout_ms), Some(worker_id)) = (count, timeout_ms, worker_id) else {
        return problem(
            StatusCode::BAD_REQUEST,
            "count, timeout and workerid are required",
        );
    };
    if timeout_ms > MAX_POLL_TIMEOUT_MS {
        return problem(
            StatusCode::BAD_REQUEST,
            "Long Poll Timeout value cannot be more than 5 seconds",
        );
    }
    let index = {
        let mut state = shared.lock();
        state.polls.push(Poll {
            task_type: task_type.clone(),
            count,
            timeout_ms,
            worker_id,
            handed_out: 0,
            status: 0,
        });
        let index = state.polls.len() - 1;
        if state.fail_polls > 0 {
            state.fail_polls -= 1;
            state.polls[index].status = 500;
            return problem(StatusCode::INTERNAL_SERVER_ERROR, "poll refused");
        }
        index
    };
    let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        let waiting = shared.queued.notified();
        {
            let mut state = shared.lock();
            let now = tokio::time::Instant::now();
            let (due, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut state.postponed)
                .into_iter()
                .partition(|(at, _)| *at <= now);
            state.postponed = waiting;
            for (_, task) in due {
                state.queue.push_back(task);
            }
            let mut tasks = Vec::new();
            while tasks.len() < count as usize {
                let Some(at) = state.queue.iter().position(|t| t["taskType"] == task_type) else {
                    break;
                };
                let mut task = state.queue.remove(at).unwrap();
                if let Some(id) = task["taskId"].as_str().map(str::to_string) {
                    // As `ExecutionService.poll` does with a task it hands out.
                    let now = unix_ms();
                    task["status"] = json!("IN_PROGRESS");
                    task["pollCount"] = json!(task["pollCount"].as_u64().unwrap_or(0) + 1);
                    if task["startTime"].as_u64().unwrap_or(0) == 0 {
                        task["startTime"] = json!(now);
                    }
                    task["updateTime"] = json!(now);
                    task["callbackAfterSeconds"] = json!(0);
                    state.in_hand.insert(id.clone());
                    state.tasks.insert(id, task.clone());
                }
                tasks.push(task);
            }
            state.max_in_hand = state.max_in_hand.max(state.in_hand.len());
            if !tasks.is_empty() || tokio::time::Instant::now() >= deadline {
                let empty = tasks.is_empty() && state.empty_as_204;
                let record = &mut state.polls[index];
                record.handed_out = tasks.len();
                record.status = if empty { 204 } else { 200 };
                return if empty {
                    no_content()
                } else {
                    answer(
                        StatusCode::OK,
                        Value::from(tasks).to_string(),
                        "application/json",
                    )
                };
            }
        }
        let _ = tokio::time::timeout_at(deadline, waiting).await;
    }
}

/// `POST /api/token`: a token for the right key, 401 for any other.
fn token(shared: &Shared, body: &[u8]) -> Response<Full<Bytes>> {
    let asked: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let mut state = shared.lock();
    let right = state.key.as_ref().is_some_and(|(id, secret)| {
        asked["keyId"] == id.as_str() && asked["keySecret"] == secret.as_str()
    });
    if !right {
        return problem(StatusCode::UNAUTHORIZED, "Invalid access key");
    }
    state.tokens_issued += 1;
    let base = state.token_base.as_deref().unwrap_or("token-");
    let token = format!("{base}{}", state.tokens_issued);
    state.valid_tokens.insert(token.clone());
    answer(
        StatusCode::OK,
        json!({ "token": token }).to_string(),
        "application/json",
    )
}

fn update(shared: &Shared, body: &[u8]) -> Response<Full<Bytes>> {
    let text = String::from_utf8_lossy(body).into_owned();
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let mut state = shared.lock();
    let mut record = Update {
        text,
        json: parsed.clone().unwrap_or(Value::Null),
        status: 200,
        late: false,
        at_unix_ms: unix_ms(),
    };
    // What Jackson can read as a TaskResult: an object whose status, when
    // given, is one of the enum's, and whose outputData is a map.
    let readable = parsed.as_ref().is_some_and(|json| {
        json.is_object()
            && json
                .get("status")
                .is_none_or(|s| s.as_str().is_some_and(|s| STATUSES.contains(&s)))
            && json
                .get("outputData")
                .is_none_or(|o| o.is_object() || o.is_null())
    });
    let named = |key: &str| {
        parsed
            .as_ref()
            .and_then(|json| json[key].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let task_id = named("taskId").filter(|_| named("workflowInstanceId").is_some());
    let response = if state.fail_updates > 0 {
        state.fail_updates -= 1;
        record.status = 500;
        problem(StatusCode::INTERNAL_SERVER_ERROR, "update refused")
    } else if !readable {
        record.status = 500;
        problem(StatusCode::INTERNAL_SERVER_ERROR, "JSON parse error")
    } else if let (Some(task_id), Some(json)) = (task_id, parsed) {
        match state.tasks.get(&task_id).map(|t| t["status"].clone()) {
            None => {
                record.status = 404;
                problem(StatusCode::NOT_FOUND, "no such task")
            }
            Some(status) if status != "IN_PROGRESS" => {
                // Ended already (or put back by IN_PROGRESS): taken and
                // ignored, as the server logs and does.
                record.late = true;
                answer(StatusCode::OK, task_id, "text/plain")
            }
            Some(_) => {
                state.in_hand.remove(&task_id);
                let reported = json["status"].as_str().unwrap_or("IN_PROGRESS").to_string();
                let task = state.tasks.get_mut(&task_id).unwrap();
                task["outputData"] = json.get("outputData").cloned().unwrap_or(json!({}));
                task["reasonForIncompletion"] = json
                    .get("reasonForIncompletion")
                    .cloned()
                    .unwrap_or(Value::Null);
                if reported == "IN_PROGRESS" {
                    // Scheduled again, and handed out once
                    // callbackAfterSeconds have passed.
                    task["status"] = json!("SCHEDULED");
                    let delay = json["callbackAfterSeconds"].as_u64().unwrap_or(0);
                    let task = task.clone();
                    state.postponed.push((
                        tokio::time::Instant::now() + Duration::from_secs(delay),
                        task,
                    ));
                } else {
                    task["status"] = json!(reported);
                    if reported == "FAILED" {
                        retry_after_failure(&mut state, &task_id);
                    }
                }
                answer(StatusCode::OK, task_id, "text/plain")
            }
        }
    } else {
        record.status = 400;
        problem(
            StatusCode::BAD_REQUEST,
            "Validation failed, check below errors for detail.",
        )
    };
    state.updates.push(record);
    drop(state);
    shared.queued.notify_waiters();
    response
}

/// After `task_id` failed or timed out: a new attempt when retries are
/// left, as `DeciderService.retry` makes it. Returns its id.
fn retry_after_failure(state: &mut State, task_id: &str) -> Option<String> {
    let failed = state.tasks.get(task_id)?.clone();
    let retry_count = failed["retryCount"].as_u64().unwrap_or(0);
    if retry_count >= state.retries_allowed {
        return None;
    }
    let id = format!("{task_id}-retry");
    let mut retry = failed;
    retry["taskId"] = json!(id);
    retry["retriedTaskId"] = json!(task_id);
    retry["retryCount"] = json!(retry_count + 1);
    retry["pollCount"] = json!(0);
    retry["status"] = json!("SCHEDULED");
    retry["scheduledTime"] = json!(unix_ms());
    retry["startTime"] = json!(0);
    retry["updateTime"] = json!(0);
    retry["outputData"] = json!({});
    state.queue.push_back(retry);
    Some(id)
}
