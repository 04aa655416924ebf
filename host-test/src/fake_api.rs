//! A stateful, in-memory stand-in for Cloudflare Email Security's
//! allow-policies API, served over real HTTP/1.1 on loopback, so that the
//! component and `task-host` can be tried without an account or a network.
//!
//! It answers `POST .../allow_policies/batch` and `GET .../allow_policies`
//! under `/client/v4` with the v4 envelope, keeps policies per account, and
//! can be told to misbehave on the next batch requests ([`Fault`]), in process
//! or through `POST /__fake/faults` from another process.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Map, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use wasmtime_wasi_http::io::TokioIo;

use allow_policies_batch::pattern::{non_global_range, parse_ip_pattern};

/// Where `task-host fake-api` listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8787);

/// Path prefix of the API, as in `https://api.cloudflare.com/client/v4`.
pub const API_PREFIX: &str = "/client/v4";

/// Path prefix of the test-control routes; they need no credentials and are
/// not counted by [`FakeApi::requests`].
pub const ADMIN_PREFIX: &str = "/__fake/";

/// The API's limit per array of a batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

const MAX_PATTERN_CHARS: usize = 1024;
const MAX_COMMENT_CHARS: usize = 1024;
const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

/// 4 × 1000 items with 1024-character patterns and comments stay far below it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// A delay longer than any task's deadline only ties up a connection.
const MAX_DELAY: Duration = Duration::from_secs(600);

/// The `code`s of the fake's own errors (HTTP status in brackets).
pub mod code {
    /// The body is not JSON, or not a JSON object (400); also an admin body
    /// that is not valid JSON (400).
    pub const MALFORMED_BODY: u32 = 1001;
    /// A field of the batch is missing, of the wrong type, out of range or
    /// unknown; `source.pointer` names it (400).
    pub const INVALID_FIELD: u32 = 1002;
    /// `page` or `per_page` is not acceptable; `source.parameter` names it (400).
    pub const INVALID_PARAMETER: u32 = 1003;
    /// A delete, patch or put names an id the account does not have, at that
    /// point of the batch; `source.pointer` is `/<array>/<index>/id` (404).
    pub const POLICY_NOT_FOUND: u32 = 1004;
    /// The body is larger than the fake accepts (413).
    pub const BODY_TOO_LARGE: u32 = 1005;
    /// An entry of `POST /__fake/faults` is not a fault (400).
    pub const INVALID_FAULT: u32 = 1006;
    /// No route for that URI (404).
    pub const NO_ROUTE: u32 = 7000;
    /// The route exists, the method does not (405, with `Allow`).
    pub const METHOD_NOT_ALLOWED: u32 = 7001;
    /// The account id is not 32 lowercase hexadecimal characters (400).
    pub const INVALID_ACCOUNT_ID: u32 = 7003;
    /// Credentials missing, or not the ones the fake accepts (401).
    pub const AUTHENTICATION: u32 = 10000;
    /// A canned [`super::Fault::Status`] queued without a body gets an
    /// envelope with code `CANNED_BASE + status`, e.g. 1429.
    pub const CANNED_BASE: u32 = 1000;
}

/// How the fake is started.
#[derive(Clone)]
pub struct FakeApiOptions {
    /// Must be a loopback address; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The bearer token accepted. `None` accepts any non-empty bearer token,
    /// and also the legacy `X-Auth-Email` + `X-Auth-Key` pair.
    pub token: Option<String>,
    /// Accept integer policy ids in a batch, as the older API did. Off, the
    /// fake follows the current schema: ids are UUID strings and an integer
    /// fails the batch.
    pub legacy_ids: bool,
}

impl Default for FakeApiOptions {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            token: None,
            legacy_ids: false,
        }
    }
}

impl fmt::Debug for FakeApiOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApiOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("legacy_ids", &self.legacy_ids)
            .finish()
    }
}

/// How the fake answers the next batch request instead of (or before)
/// handling it. Faults are used up one per batch request, in queue order;
/// other routes leave the queue alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status, these headers and this body verbatim; the
    /// batch is not applied. Without a `content-type` header one is chosen
    /// from the body (JSON, HTML or plain text).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then handle the request normally. The batch is applied even if
    /// the client has given up and gone by then, as a real server would.
    Delay(Duration),
    /// Read the request, then close the connection with a TCP reset and no
    /// answer; the batch is not applied.
    Reset,
}

impl Fault {
    /// A canned error with Cloudflare's envelope, code
    /// [`code::CANNED_BASE`]` + status`.
    pub fn status(status: u16, headers: Vec<(String, String)>) -> Fault {
        Fault::Status {
            status,
            headers,
            body: canned_envelope(status),
        }
    }
}

/// A running fake; it stops on [`FakeApi::shutdown`] or when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    accept_loop: JoinHandle<()>,
}

impl fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApi").field("addr", &self.addr).finish()
    }
}

impl FakeApi {
    /// Binds and serves on the current tokio runtime.
    pub async fn start(options: FakeApiOptions) -> anyhow::Result<FakeApi> {
        if !options.listen.ip().is_loopback() {
            bail!(
                "the fake API only listens on loopback (such as 127.0.0.1), not on {}",
                options.listen
            );
        }
        if options.token.as_deref() == Some("") {
            bail!("the fake API's token must not be empty");
        }
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the fake API's address")?;
        let shared = Arc::new(Shared {
            token: options.token,
            legacy_ids: options.legacy_ids,
            requests: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        });
        let (stop, stopped) = oneshot::channel();
        let accept_loop = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(FakeApi {
            addr,
            shared,
            stop,
            accept_loop,
        })
    }

    /// `http://127.0.0.1:PORT/client/v4`, the `base_url` a config points at.
    pub fn base_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received on every route but the `/__fake/` ones, answered or
    /// not, so a test can tell that nothing was sent.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Connections accepted so far, so a test can tell whether clients
    /// reuse them.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn push_fault(&self, fault: Fault) {
        self.shared.lock().faults.push_back(fault);
    }

    /// Faults still waiting for a batch request.
    pub fn pending_faults(&self) -> usize {
        self.shared.lock().faults.len()
    }

    /// The account's policies as the list endpoint shows them, oldest first.
    pub fn policies(&self, account_id: &str) -> Vec<Value> {
        self.shared
            .lock()
            .accounts
            .get(account_id)
            .map(|policies| policies.iter().map(Policy::to_json).collect())
            .unwrap_or_default()
    }

    /// Adds policies as if they had been there before, all or none. A batch
    /// cannot make these: integer ids (the older schema's) or
    /// `pattern_type: "UNKNOWN"`. A policy without `id` gets a new UUID.
    /// Returns the policies as stored.
    pub fn seed(
        &self,
        account_id: &str,
        policies: impl IntoIterator<Item = Value>,
    ) -> anyhow::Result<Vec<Value>> {
        if !is_account_id(account_id) {
            bail!("account id {account_id:?} is not 32 lowercase hexadecimal characters");
        }
        let mut errors = Vec::new();
        let mut seeds = Vec::new();
        for (i, policy) in policies.into_iter().enumerate() {
            let at = format!("/{i}");
            let Value::Object(mut fields) = policy else {
                errors.push(ApiError::at(code::INVALID_FIELD, "must be an object", at));
                continue;
            };
            let id = match fields.remove("id") {
                None => None,
                Some(value) => match PolicyId::parse(&value, true) {
                    Ok(id) => Some(id),
                    Err(message) => {
                        errors.push(ApiError::at(
                            code::INVALID_FIELD,
                            message,
                            pointer(&at, "id"),
                        ));
                        continue;
                    }
                },
            };
            let changes = parse_changes(&fields, &at, Kind::Seed, true, &mut errors);
            if let Some(body) = complete(changes) {
                seeds.push((id, body));
            }
        }
        if !errors.is_empty() {
            let problems: Vec<String> = errors.iter().map(ApiError::describe).collect();
            bail!("cannot seed the fake API: {}", problems.join("; "));
        }
        let mut state = self.shared.lock();
        let stamp = state.next_stamp();
        let mut policies = state.accounts.get(account_id).cloned().unwrap_or_default();
        let before = policies.len();
        for (id, body) in seeds {
            let id = match id {
                Some(id) => id,
                None => state.new_uuid(&policies),
            };
            if policies.iter().any(|p| p.id.matches(&id)) {
                bail!("cannot seed the fake API: a policy with id {id} already exists");
            }
            policies.push(Policy::create(id, body, &stamp));
        }
        let stored = policies[before..].iter().map(Policy::to_json).collect();
        state.accounts.insert(account_id.to_string(), policies);
        Ok(stored)
    }

    /// Stops accepting and drops every open connection. A request already
    /// being handled (say, during a [`Fault::Delay`]) still completes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.accept_loop.await;
    }
}

struct Shared {
    token: Option<String>,
    legacy_ids: bool,
    requests: AtomicUsize,
    connections: AtomicUsize,
    state: Mutex<State>,
}

impl Shared {
    /// Nothing panics while holding the lock, but a poisoned lock must not
    /// take the whole fake down with it either.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
struct State {
    accounts: HashMap<String, Vec<Policy>>,
    faults: VecDeque<Fault>,
    /// Microseconds since the epoch of the last change, so that every batch
    /// gets a later `modified_at` than the one before, however fast.
    last_stamp: u64,
    uuids: u64,
}

impl State {
    fn next_stamp(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.last_stamp = now.max(self.last_stamp.saturating_add(1));
        rfc3339_micros(self.last_stamp)
    }

    /// A UUID none of `policies` has; a collision is next to impossible,
    /// but two policies with one id would make every later lookup ambiguous.
    fn new_uuid(&mut self, policies: &[Policy]) -> PolicyId {
        loop {
            self.uuids += 1;
            let id = PolicyId::Uuid(random_uuid(self.uuids));
            if !policies.iter().any(|p| p.id.matches(&id)) {
                return id;
            }
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    // Dropping the set when the loop ends closes every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    shared.connections.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nodelay(true);
                    connections.spawn(serve_connection(shared.clone(), stream));
                }
                // Out of file descriptors and the like: back off, keep serving.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let reset = Arc::new(AtomicBool::new(false));
    let io = TokioIo::new(ResettableStream {
        inner: stream,
        reset: reset.clone(),
    });
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        let reset = reset.clone();
        async move {
            // Handled in its own task so that a request that has arrived is
            // carried out even if the client hangs up while it waits.
            match tokio::spawn(handle(shared, reset.clone(), request)).await {
                Ok(answer) => answer,
                Err(_) => {
                    reset.store(true, Ordering::SeqCst);
                    Err(DropConnection)
                }
            }
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}

/// Returned by the service to make hyper drop the connection unanswered.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// A connection that ends with a TCP reset instead of an orderly close when
/// asked to, which is what a client sees when a proxy or server dies mid-way.
struct ResettableStream {
    inner: TcpStream,
    reset: Arc<AtomicBool>,
}

impl Drop for ResettableStream {
    fn drop(&mut self) {
        if self.reset.load(Ordering::SeqCst) {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for ResettableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResettableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Reply = Response<Full<Bytes>>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    List,
    Batch,
}

impl Endpoint {
    fn method(self) -> Method {
        match self {
            Endpoint::List => Method::GET,
            Endpoint::Batch => Method::POST,
        }
    }
}

/// `(endpoint, account id)` of a path under [`API_PREFIX`].
fn route(path: &str) -> Option<(Endpoint, &str)> {
    let rest = path.strip_prefix(API_PREFIX)?.strip_prefix("/accounts/")?;
    let (account, rest) = rest.split_once('/')?;
    let endpoint = match rest {
        "email-security/settings/allow_policies" => Endpoint::List,
        "email-security/settings/allow_policies/batch" => Endpoint::Batch,
        _ => return None,
    };
    Some((endpoint, account))
}

async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Reply, DropConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    if path.starts_with(ADMIN_PREFIX) {
        return admin(&shared, &parts.method, path, body).await;
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);

    let Some((endpoint, account)) = route(path) else {
        return Ok(failure(
            StatusCode::NOT_FOUND,
            vec![ApiError::new(code::NO_ROUTE, "No route for that URI")],
        ));
    };
    if parts.method != endpoint.method() {
        return Ok(method_not_allowed(endpoint.method()));
    }
    // Read in full before anything else, so that every answer (a fault
    // included) comes after the whole request has arrived, and a request
    // that never arrives does not use up a fault.
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Ok(too_large()),
        Err(BodyError::Broken) => return Err(DropConnection),
    };
    let fault = match endpoint {
        Endpoint::Batch => shared.lock().faults.pop_front(),
        Endpoint::List => None,
    };
    match fault {
        Some(Fault::Status {
            status,
            headers,
            body,
        }) => return Ok(canned(status, &headers, body)),
        Some(Fault::Reset) => {
            reset.store(true, Ordering::SeqCst);
            return Err(DropConnection);
        }
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay.min(MAX_DELAY)).await,
        None => {}
    }

    if !authenticated(shared.token.as_deref(), &parts.headers) {
        return Ok(failure(
            StatusCode::UNAUTHORIZED,
            vec![ApiError::new(code::AUTHENTICATION, "Authentication error")],
        ));
    }
    if !is_account_id(account) {
        return Ok(failure(
            StatusCode::BAD_REQUEST,
            vec![ApiError::new(
                code::INVALID_ACCOUNT_ID,
                format!(
                    "Could not route to {path}, perhaps your object identifier is invalid? \
                     (an account id is 32 lowercase hexadecimal characters)"
                ),
            )],
        ));
    }
    Ok(match endpoint {
        Endpoint::List => list(&shared, account, parts.uri.query().unwrap_or("")),
        Endpoint::Batch => batch(&shared, account, &body),
    })
}

enum BodyError {
    TooLarge,
    Broken,
}

async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

fn authenticated(token: Option<&str>, headers: &HeaderMap) -> bool {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let bearer = text(header::AUTHORIZATION.as_str()).and_then(|value| {
        let (scheme, credentials) = value.split_once(' ')?;
        let credentials = credentials.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !credentials.is_empty()).then_some(credentials)
    });
    match token {
        Some(expected) => bearer == Some(expected),
        None => {
            bearer.is_some() || (text("x-auth-email").is_some() && text("x-auth-key").is_some())
        }
    }
}

fn is_account_id(account: &str) -> bool {
    account.len() == 32
        && account
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `POST /__fake/faults` (queue faults) and `GET /__fake/requests`.
async fn admin(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: Incoming,
) -> Result<Reply, DropConnection> {
    match path.strip_prefix(ADMIN_PREFIX) {
        Some("faults") if method == Method::POST => {}
        Some("faults") => return Ok(method_not_allowed(Method::POST)),
        Some("requests") if method == Method::GET => {
            let count = shared.requests.load(Ordering::SeqCst);
            return Ok(success(json!({ "requests": count }), None));
        }
        Some("requests") => return Ok(method_not_allowed(Method::GET)),
        _ => {
            return Ok(failure(
                StatusCode::NOT_FOUND,
                vec![ApiError::new(code::NO_ROUTE, "No route for that URI")],
            ))
        }
    }
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Ok(too_large()),
        Err(BodyError::Broken) => return Err(DropConnection),
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => return Ok(malformed(&e)),
    };
    match parse_faults(&value) {
        Ok(faults) => {
            shared.lock().faults.extend(faults);
            let mut reply = Response::new(Full::new(Bytes::new()));
            *reply.status_mut() = StatusCode::NO_CONTENT;
            Ok(reply)
        }
        Err(errors) => Ok(failure(StatusCode::BAD_REQUEST, errors)),
    }
}

/// `[{"status", "headers"?, "body"?}, {"delay_ms"}, {"reset": true}]`, all
/// or nothing.
fn parse_faults(value: &Value) -> Result<Vec<Fault>, Vec<ApiError>> {
    let Value::Array(items) = value else {
        return Err(vec![ApiError::at(
            code::INVALID_FAULT,
            "expected an array of faults",
            "",
        )]);
    };
    let mut faults = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_fault(item, &format!("/{i}")) {
            Ok(fault) => faults.push(fault),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(faults)
    } else {
        Err(errors)
    }
}

fn parse_fault(item: &Value, at: &str) -> Result<Fault, ApiError> {
    let invalid =
        |message: &str, pointer: String| ApiError::at(code::INVALID_FAULT, message, pointer);
    let Value::Object(fields) = item else {
        return Err(invalid(
            "expected {\"status\"}, {\"delay_ms\"} or {\"reset\": true}",
            at.to_string(),
        ));
    };
    let allowed: &[&str] = if fields.contains_key("status") {
        &["status", "headers", "body"]
    } else if fields.contains_key("delay_ms") {
        &["delay_ms"]
    } else if fields.contains_key("reset") {
        &["reset"]
    } else {
        return Err(invalid(
            "expected {\"status\"}, {\"delay_ms\"} or {\"reset\": true}",
            at.to_string(),
        ));
    };
    if let Some(extra) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid("unknown field", pointer(at, extra)));
    }
    if let Some(reset) = fields.get("reset") {
        return match reset {
            Value::Bool(true) => Ok(Fault::Reset),
            _ => Err(invalid("must be true", pointer(at, "reset"))),
        };
    }
    if let Some(delay) = fields.get("delay_ms") {
        return match delay.as_u64() {
            Some(ms) if Duration::from_millis(ms) <= MAX_DELAY => {
                Ok(Fault::Delay(Duration::from_millis(ms)))
            }
            _ => Err(invalid(
                "must be an integer number of milliseconds from 0 to 600000",
                pointer(at, "delay_ms"),
            )),
        };
    }
    let status = fields
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| {
            invalid(
                "must be an HTTP status from 200 to 599",
                pointer(at, "status"),
            )
        })?;
    let mut headers = Vec::new();
    match fields.get("headers") {
        None => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = value
                    .as_str()
                    .filter(|v| HeaderValue::from_str(v).is_ok())
                    .ok_or_else(|| {
                        invalid(
                            "must be a string usable as a header value",
                            pointer(&pointer(at, "headers"), name),
                        )
                    })?;
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(invalid(
                        "not a valid header name",
                        pointer(&pointer(at, "headers"), name),
                    ));
                }
                headers.push((name.clone(), value.to_string()));
            }
        }
        Some(_) => {
            return Err(invalid(
                "must be an object of header names to values",
                pointer(at, "headers"),
            ))
        }
    }
    let body = match fields.get("body") {
        None => canned_envelope(status),
        Some(Value::String(body)) => body.clone(),
        Some(_) => return Err(invalid("must be a string", pointer(at, "body"))),
    };
    Ok(Fault::Status {
        status,
        headers,
        body,
    })
}

fn canned_envelope(status: u16) -> String {
    let message = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Canned error");
    envelope(
        false,
        vec![ApiError::new(
            code::CANNED_BASE + u32::from(status),
            message,
        )],
        Value::Null,
        None,
    )
    .to_string()
}

fn canned(status: u16, headers: &[(String, String)], body: String) -> Reply {
    let Ok(status) = StatusCode::from_u16(status) else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![ApiError::new(
                code::INVALID_FAULT,
                format!("the queued fault's status {status} is not an HTTP status"),
            )],
        );
    };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => {
                return failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![ApiError::new(
                        code::INVALID_FAULT,
                        format!("the queued fault's header {name:?} is not a valid header"),
                    )],
                )
            }
        }
    }
    if !map.contains_key(header::CONTENT_TYPE) {
        let kind = if serde_json::from_str::<Value>(&body).is_ok() {
            "application/json"
        } else if body.trim_start().starts_with('<') {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    *reply.headers_mut() = map;
    reply
}

fn list(shared: &Shared, account: &str, query: &str) -> Reply {
    let mut page = 1;
    let mut per_page = DEFAULT_PER_PAGE;
    let mut errors = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "page" => match value.parse::<u64>() {
                Ok(n) if n >= 1 => page = n,
                _ => errors.push(ApiError::parameter(
                    "page must be an integer of at least 1",
                    "page",
                )),
            },
            "per_page" => match value.parse::<u64>() {
                Ok(n) if (1..=MAX_PER_PAGE).contains(&n) => per_page = n,
                _ => errors.push(ApiError::parameter(
                    "per_page must be an integer from 1 to 100",
                    "per_page",
                )),
            },
            // The real endpoint also filters and sorts; ignoring those
            // parameters still lists a superset, which is enough here.
            _ => {}
        }
    }
    if !errors.is_empty() {
        return failure(StatusCode::BAD_REQUEST, errors);
    }
    let state = shared.lock();
    let policies = state
        .accounts
        .get(account)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let total = policies.len() as u64;
    let start =
        usize::try_from(page.saturating_sub(1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let items: Vec<Value> = policies
        .iter()
        .skip(start)
        .take(per_page as usize)
        .map(Policy::to_json)
        .collect();
    let info = json!({
        "page": page,
        "per_page": per_page,
        "count": items.len(),
        "total_count": total,
        "total_pages": total.div_ceil(per_page),
    });
    success(Value::Array(items), Some(info))
}

fn batch(shared: &Shared, account: &str, body: &[u8]) -> Reply {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => return malformed(&e),
    };
    let Value::Object(document) = value else {
        return failure(
            StatusCode::BAD_REQUEST,
            vec![ApiError::at(
                code::MALFORMED_BODY,
                "the body must be a JSON object with deletes, patches, puts and posts",
                "",
            )],
        );
    };
    let ops = match parse_batch(&document, shared.legacy_ids) {
        Ok(ops) => ops,
        Err(errors) => return failure(StatusCode::BAD_REQUEST, errors),
    };

    let mut state = shared.lock();
    let stamp = state.next_stamp();
    // Worked on a copy: the account only changes if every item succeeds.
    let mut policies = state.accounts.get(account).cloned().unwrap_or_default();
    let mut missing = Vec::new();
    let mut not_found = |array: &str, i: usize, id: &PolicyId| {
        missing.push(ApiError::at(
            code::POLICY_NOT_FOUND,
            format!("policy not found: no policy with id {id}"),
            format!("/{array}/{i}/id"),
        ));
    };

    let mut deleted = Vec::new();
    for (i, id) in ops.deletes.iter().enumerate() {
        match policies.iter().position(|p| p.id.matches(id)) {
            Some(at) => deleted.push(json!({ "id": policies.remove(at).id.to_json() })),
            None => not_found("deletes", i, id),
        }
    }
    let mut patched = Vec::new();
    for (i, (id, changes)) in ops.patches.iter().enumerate() {
        match policies.iter_mut().find(|p| p.id.matches(id)) {
            Some(policy) => {
                policy.patch(changes, &stamp);
                patched.push(policy.to_json());
            }
            None => not_found("patches", i, id),
        }
    }
    let mut replaced = Vec::new();
    for (i, (id, body)) in ops.puts.iter().enumerate() {
        match policies.iter_mut().find(|p| p.id.matches(id)) {
            Some(policy) => {
                policy.replace(body, &stamp);
                replaced.push(policy.to_json());
            }
            None => not_found("puts", i, id),
        }
    }
    if !missing.is_empty() {
        return failure(StatusCode::NOT_FOUND, missing);
    }
    let mut created = Vec::new();
    for body in ops.posts {
        let id = state.new_uuid(&policies);
        let policy = Policy::create(id, body, &stamp);
        created.push(policy.to_json());
        policies.push(policy);
    }
    state.accounts.insert(account.to_string(), policies);
    success(
        json!({
            "deletes": deleted,
            "patches": patched,
            "puts": replaced,
            "posts": created,
        }),
        None,
    )
}

struct BatchOps {
    deletes: Vec<PolicyId>,
    patches: Vec<(PolicyId, Changes)>,
    puts: Vec<(PolicyId, PolicyBody)>,
    posts: Vec<PolicyBody>,
}

const ARRAYS: [&str; 4] = ["deletes", "patches", "puts", "posts"];

/// Every problem of the document at once, as the API reports a list.
/// `legacy_ids` lets integer ids through, as the older API did.
fn parse_batch(document: &Map<String, Value>, legacy_ids: bool) -> Result<BatchOps, Vec<ApiError>> {
    let mut errors = Vec::new();
    for key in document.keys().filter(|k| !ARRAYS.contains(&k.as_str())) {
        errors.push(ApiError::at(
            code::INVALID_FIELD,
            "unknown field",
            pointer("", key),
        ));
    }
    let mut ops = BatchOps {
        deletes: Vec::new(),
        patches: Vec::new(),
        puts: Vec::new(),
        posts: Vec::new(),
    };
    for array in ARRAYS {
        let at = format!("/{array}");
        let items = match document.get(array) {
            None => {
                errors.push(ApiError::at(
                    code::INVALID_FIELD,
                    "is required (send [] when there is nothing to do)",
                    at,
                ));
                continue;
            }
            Some(Value::Array(items)) if items.len() > MAX_BATCH_ITEMS => {
                errors.push(ApiError::at(
                    code::INVALID_FIELD,
                    format!(
                        "has {} items, at most {MAX_BATCH_ITEMS} are allowed",
                        items.len()
                    ),
                    at,
                ));
                continue;
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                errors.push(ApiError::at(code::INVALID_FIELD, "must be an array", at));
                continue;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("/{array}/{i}");
            let Value::Object(fields) = item else {
                errors.push(ApiError::at(code::INVALID_FIELD, "must be an object", at));
                continue;
            };
            let kind = match array {
                "deletes" => Kind::Delete,
                "patches" => Kind::Patch,
                "puts" => Kind::Replace,
                _ => Kind::Create,
            };
            let changes = parse_changes(fields, &at, kind, legacy_ids, &mut errors);
            match kind {
                Kind::Delete => ops.deletes.extend(changes.id),
                Kind::Patch => {
                    if let Some(id) = changes.id.clone() {
                        ops.patches.push((id, changes));
                    }
                }
                Kind::Replace => {
                    let id = changes.id.clone();
                    if let (Some(id), Some(body)) = (id, complete(changes)) {
                        ops.puts.push((id, body));
                    }
                }
                Kind::Create | Kind::Seed => ops.posts.extend(complete(changes)),
            }
        }
    }
    if errors.is_empty() {
        Ok(ops)
    } else {
        Err(errors)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Replace,
    Patch,
    Delete,
    /// A create that may use `UNKNOWN`, which only existing policies have.
    Seed,
}

impl Kind {
    fn has_id(self) -> bool {
        matches!(self, Kind::Replace | Kind::Patch | Kind::Delete)
    }

    fn has_fields(self) -> bool {
        !matches!(self, Kind::Delete)
    }

    fn needs_body(self) -> bool {
        matches!(self, Kind::Create | Kind::Replace | Kind::Seed)
    }
}

const FLAGS: [&str; 5] = [
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
    "is_regex",
];

/// Still accepted on creates and replacements until their end of life;
/// their replacements (required) are what counts.
const DEPRECATED_FLAGS: [&str; 3] = ["is_recipient", "is_sender", "is_spoof"];

const PATTERN_TYPES: [&str; 3] = ["EMAIL", "DOMAIN", "IP"];

/// The fields one item sets; `comments: Some(None)` clears the comment.
#[derive(Default)]
struct Changes {
    id: Option<PolicyId>,
    flags: [Option<bool>; 5],
    pattern_type: Option<String>,
    pattern: Option<String>,
    comments: Option<Option<String>>,
}

/// Everything a create or a replacement must give.
#[derive(Clone)]
struct PolicyBody {
    flags: [bool; 5],
    pattern_type: String,
    pattern: String,
    comments: Option<String>,
}

fn parse_changes(
    fields: &Map<String, Value>,
    at: &str,
    kind: Kind,
    legacy_ids: bool,
    errors: &mut Vec<ApiError>,
) -> Changes {
    let mut changes = Changes::default();
    let mut invalid = |message: String, key: &str| {
        errors.push(ApiError::at(code::INVALID_FIELD, message, pointer(at, key)));
    };
    for (key, value) in fields {
        let key = key.as_str();
        if key == "id" && kind.has_id() {
            match PolicyId::parse(value, legacy_ids) {
                Ok(id) => changes.id = Some(id),
                Err(message) => invalid(message.into(), key),
            }
        } else if let Some(slot) = FLAGS
            .iter()
            .position(|f| *f == key)
            .filter(|_| kind.has_fields())
        {
            match value {
                Value::Bool(b) => changes.flags[slot] = Some(*b),
                _ => invalid("must be a boolean".into(), key),
            }
        } else if DEPRECATED_FLAGS.contains(&key) && kind.needs_body() {
            if !value.is_boolean() {
                invalid("must be a boolean".into(), key);
            }
        } else if key == "pattern_type" && kind.has_fields() {
            match value.as_str() {
                Some(t) if PATTERN_TYPES.contains(&t) => changes.pattern_type = Some(t.to_string()),
                Some("UNKNOWN") if kind == Kind::Seed => {
                    changes.pattern_type = Some("UNKNOWN".into())
                }
                Some("UNKNOWN") => invalid(
                    "UNKNOWN cannot be used to create or update a policy; use EMAIL, DOMAIN or IP"
                        .into(),
                    key,
                ),
                _ => invalid("must be one of EMAIL, DOMAIN, IP".into(), key),
            }
        } else if key == "pattern" && kind.has_fields() {
            match value.as_str() {
                Some(p) if (1..=MAX_PATTERN_CHARS).contains(&p.chars().count()) => {
                    changes.pattern = Some(p.to_string())
                }
                Some(_) => invalid(
                    format!("must be from 1 to {MAX_PATTERN_CHARS} characters long"),
                    key,
                ),
                None => invalid("must be a string".into(), key),
            }
        } else if key == "comments" && kind.has_fields() {
            match value {
                Value::Null => changes.comments = Some(None),
                Value::String(c) if c.chars().count() <= MAX_COMMENT_CHARS => {
                    changes.comments = Some(Some(c.clone()))
                }
                Value::String(_) => invalid(
                    format!("must be at most {MAX_COMMENT_CHARS} characters long"),
                    key,
                ),
                _ => invalid("must be a string or null".into(), key),
            }
        } else {
            invalid("unknown field".into(), key);
        }
    }
    if kind.has_id() && !fields.contains_key("id") {
        invalid("is required".into(), "id");
    }
    if kind.needs_body() {
        let required = FLAGS.iter().chain(&["pattern_type", "pattern"]);
        for key in required.filter(|k| !fields.contains_key(**k)) {
            invalid("is required".into(), key);
        }
    }
    // An IP pattern must be globally reachable. Seeds stand for policies
    // made before the rule, so they are let through.
    let is_regex = FLAGS
        .iter()
        .position(|f| *f == "is_regex")
        .and_then(|slot| changes.flags[slot]);
    if kind != Kind::Seed
        && changes.pattern_type.as_deref() == Some("IP")
        && is_regex == Some(false)
    {
        if let Some(reason) = changes.pattern.as_deref().and_then(refused_ip) {
            invalid(reason, "pattern");
        }
    }
    changes
}

/// Why the API refuses an IP pattern: not an address or CIDR block, or not
/// globally reachable by IANA's special-purpose registries.
fn refused_ip(pattern: &str) -> Option<String> {
    match parse_ip_pattern(pattern) {
        Err(why) => Some(format!("must be an IP address or CIDR block: {why}")),
        Ok(ip) => non_global_range(&ip).map(|range| format!("must be globally reachable: {range}")),
    }
}

/// The body of a create or replacement; `None` when a required field is
/// missing or invalid, which [`parse_changes`] has already reported.
fn complete(changes: Changes) -> Option<PolicyBody> {
    let mut flags = [false; 5];
    for (slot, flag) in changes.flags.iter().enumerate() {
        flags[slot] = (*flag)?;
    }
    Some(PolicyBody {
        flags,
        pattern_type: changes.pattern_type?,
        pattern: changes.pattern?,
        comments: changes.comments.flatten(),
    })
}

#[derive(Clone, Debug)]
enum PolicyId {
    Int(u64),
    Uuid(String),
}

impl PolicyId {
    /// A UUID string, as the current API has it; with `legacy` also the
    /// older API's non-negative integer.
    fn parse(value: &Value, legacy: bool) -> Result<PolicyId, &'static str> {
        const UUID_ONLY: &str = "must be a UUID string (format uuid)";
        const EITHER: &str = "must be a non-negative integer or a UUID string";
        match value {
            Value::Number(n) if legacy => n.as_u64().map(PolicyId::Int).ok_or(EITHER),
            Value::String(s) if is_uuid(s) => Ok(PolicyId::Uuid(s.clone())),
            _ if legacy => Err(EITHER),
            _ => Err(UUID_ONLY),
        }
    }

    fn matches(&self, other: &PolicyId) -> bool {
        match (self, other) {
            (PolicyId::Int(a), PolicyId::Int(b)) => a == b,
            (PolicyId::Uuid(a), PolicyId::Uuid(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            PolicyId::Int(n) => json!(n),
            PolicyId::Uuid(s) => json!(s),
        }
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyId::Int(n) => write!(f, "{n}"),
            PolicyId::Uuid(s) => write!(f, "{s}"),
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A version-4-shaped UUID. Uniqueness, not unpredictability, is what the
/// fake needs, so the standard library's randomly keyed hasher is enough.
fn random_uuid(counter: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let keys = RandomState::new();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&keys.hash_one((counter, nanos, 0u8)).to_be_bytes());
    bytes[8..].copy_from_slice(&keys.hash_one((counter, nanos, 1u8)).to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[derive(Clone)]
struct Policy {
    id: PolicyId,
    body: PolicyBody,
    created_at: String,
    modified_at: String,
}

impl Policy {
    fn create(id: PolicyId, body: PolicyBody, stamp: &str) -> Policy {
        Policy {
            id,
            body,
            created_at: stamp.to_string(),
            modified_at: stamp.to_string(),
        }
    }

    fn replace(&mut self, body: &PolicyBody, stamp: &str) {
        self.body = body.clone();
        self.modified_at = stamp.to_string();
    }

    fn patch(&mut self, changes: &Changes, stamp: &str) {
        for (slot, change) in changes.flags.iter().enumerate() {
            if let Some(b) = change {
                self.body.flags[slot] = *b;
            }
        }
        if let Some(t) = &changes.pattern_type {
            self.body.pattern_type = t.clone();
        }
        if let Some(p) = &changes.pattern {
            self.body.pattern = p.clone();
        }
        if let Some(c) = &changes.comments {
            self.body.comments = c.clone();
        }
        self.modified_at = stamp.to_string();
    }

    fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), self.id.to_json());
        for (name, value) in FLAGS.iter().zip(self.body.flags) {
            out.insert((*name).into(), value.into());
        }
        out.insert("pattern_type".into(), self.body.pattern_type.clone().into());
        out.insert("pattern".into(), self.body.pattern.clone().into());
        out.insert("comments".into(), self.body.comments.clone().into());
        out.insert("created_at".into(), self.created_at.clone().into());
        out.insert("modified_at".into(), self.modified_at.clone().into());
        // Deprecated alias of modified_at that clients may still read.
        out.insert("last_modified".into(), self.modified_at.clone().into());
        Value::Object(out)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
fn rfc3339_micros(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        micros % 1_000_000
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01, counting in
/// 400-year eras that start on March 1st so that leap days fall at the end.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// One entry of the envelope's `errors`.
struct ApiError {
    code: u32,
    message: String,
    pointer: Option<String>,
    parameter: Option<&'static str>,
}

impl ApiError {
    fn new(code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            pointer: None,
            parameter: None,
        }
    }

    fn at(code: u32, message: impl Into<String>, pointer: impl Into<String>) -> ApiError {
        ApiError {
            pointer: Some(pointer.into()),
            ..ApiError::new(code, message)
        }
    }

    fn parameter(message: &str, parameter: &'static str) -> ApiError {
        ApiError {
            parameter: Some(parameter),
            ..ApiError::new(code::INVALID_PARAMETER, message)
        }
    }

    fn describe(&self) -> String {
        match &self.pointer {
            Some(p) if !p.is_empty() => format!("{p}: {}", self.message),
            _ => self.message.clone(),
        }
    }

    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("code".into(), self.code.into());
        entry.insert("message".into(), self.message.clone().into());
        let mut source = Map::new();
        if let Some(pointer) = &self.pointer {
            source.insert("pointer".into(), pointer.clone().into());
        }
        if let Some(parameter) = self.parameter {
            source.insert("parameter".into(), parameter.into());
        }
        if !source.is_empty() {
            entry.insert("source".into(), Value::Object(source));
        }
        Value::Object(entry)
    }
}

/// `at` + `/key`, with `~` and `/` in the key escaped as RFC 6901 says.
fn pointer(at: &str, key: &str) -> String {
    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn envelope(ok: bool, errors: Vec<ApiError>, result: Value, info: Option<Value>) -> Value {
    let mut body = json!({
        "success": ok,
        "errors": errors.iter().map(ApiError::to_json).collect::<Vec<_>>(),
        "messages": [],
        "result": result,
    });
    if let (Some(info), Value::Object(map)) = (info, &mut body) {
        map.insert("result_info".into(), info);
    }
    body
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

fn success(result: Value, info: Option<Value>) -> Reply {
    json_reply(StatusCode::OK, &envelope(true, Vec::new(), result, info))
}

fn failure(status: StatusCode, errors: Vec<ApiError>) -> Reply {
    json_reply(status, &envelope(false, errors, Value::Null, None))
}

fn malformed(error: &serde_json::Error) -> Reply {
    failure(
        StatusCode::BAD_REQUEST,
        vec![ApiError::at(
            code::MALFORMED_BODY,
            format!("the body is not valid JSON: {error}"),
            "",
        )],
    )
}

fn too_large() -> Reply {
    failure(
        StatusCode::PAYLOAD_TOO_LARGE,
        vec![ApiError::new(
            code::BODY_TOO_LARGE,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )],
    )
}

fn method_not_allowed(allowed: Method) -> Reply {
    let mut reply = failure(
        StatusCode::METHOD_NOT_ALLOWED,
        vec![ApiError::new(
            code::METHOD_NOT_ALLOWED,
            format!("Method not allowed: this route takes {allowed}"),
        )],
    );
    if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
        reply.headers_mut().insert(header::ALLOW, value);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day of a century divisible by 400) 12:34:56.789012
        assert_eq!(
            rfc3339_micros(951_827_696_789_012),
            "2000-02-29T12:34:56.789012Z"
        );
        assert_eq!(
            rfc3339_micros(1_798_761_599_000_000),
            "2026-12-31T23:59:59.000000Z"
        );
        assert_eq!(civil_from_days(59), (1970, 3, 1));
    }

    #[test]
    fn uuids_are_version_4_shaped_and_distinct() {
        let a = random_uuid(1);
        let b = random_uuid(2);
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a, a.to_lowercase());
    }

    #[test]
    fn ids_compare_by_kind_and_uuids_ignore_case() {
        let lower = PolicyId::Uuid("f174e90a-fafe-4643-bbbc-4a0ed4fc8415".into());
        let upper = PolicyId::parse(&json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415"), false).unwrap();
        assert!(lower.matches(&upper));
        assert!(PolicyId::Int(2401).matches(&PolicyId::parse(&json!(2401), true).unwrap()));
        assert!(!PolicyId::Int(2401).matches(&lower));
        // The current schema has UUID strings only.
        assert!(PolicyId::parse(&json!(2401), false).is_err());
        for bad in [
            json!("2401"),
            json!(-1),
            json!(1.5),
            json!(null),
            json!("nope"),
        ] {
            assert!(PolicyId::parse(&bad, true).is_err(), "{bad}");
            assert!(PolicyId::parse(&bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn pointers_escape_keys() {
        assert_eq!(pointer("/posts/0", "a/b~c"), "/posts/0/a~1b~0c");
        assert_eq!(pointer("", "extra"), "/extra");
    }

    #[test]
    fn bearer_and_legacy_credentials() {
        let mut headers = HeaderMap::new();
        assert!(!authenticated(None, &headers));
        headers.insert("authorization", HeaderValue::from_static("Bearer  "));
        assert!(!authenticated(None, &headers));
        headers.insert("authorization", HeaderValue::from_static("bearer abc"));
        assert!(authenticated(None, &headers));
        assert!(authenticated(Some("abc"), &headers));
        assert!(!authenticated(Some("abd"), &headers));
        let mut legacy = HeaderMap::new();
        legacy.insert("x-auth-email", HeaderValue::from_static("a@example.com"));
        assert!(!authenticated(None, &legacy));
        legacy.insert("x-auth-key", HeaderValue::from_static("k"));
        assert!(authenticated(None, &legacy));
        assert!(!authenticated(Some("k"), &legacy));
    }
}
