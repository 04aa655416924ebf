//! The HTTP side: the accept loop, routes, the test-control routes, and
//! the batch and list handlers that apply the batch rules to the store.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wasmtime_wasi_http::io::TokioIo;

use crate::accept_loop::serve_until_stopped;

use super::batch::{parse_batch, PolicyId};
use super::code;
use super::envelope::{
    failure, malformed, method_not_allowed, success, too_large, ApiError, Reply,
};
use super::fault::{canned, parse_faults, Fault, MAX_DELAY};
use super::rate_budget::{add_fields, Spent};
use super::seed::check_and_store;
use super::store::{is_account_id, Policy, Shared};

/// Path prefix of the API, as in `https://api.cloudflare.com/client/v4`.
pub const API_PREFIX: &str = "/client/v4";

/// Path prefix of the test-control routes; they need no credentials and are
/// not counted by [`FakeApi::requests`](super::FakeApi::requests).
pub const ADMIN_PREFIX: &str = "/__fake/";

const DEFAULT_PER_PAGE: u64 = 20;
const MAX_PER_PAGE: u64 = 100;

/// 4 × 1000 items with 1024-character patterns and comments stay far below it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

pub(super) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    serve_until_stopped(listener, stop, |stream| {
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = stream.set_nodelay(true);
        serve_connection(shared.clone(), stream)
    })
    .await;
}

pub(super) async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
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
pub(super) struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for DropConnection {}

/// A connection that ends with a TCP reset instead of an orderly close when
/// asked to, which is what a client sees when a proxy or server dies mid-way.
pub(super) struct ResettableStream {
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

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    List,
    Batch,
}

impl Endpoint {
    pub(super) fn method(self) -> Method {
        match self {
            Endpoint::List => Method::GET,
            Endpoint::Batch => Method::POST,
        }
    }
}

/// `(endpoint, account id)` of a path under [`API_PREFIX`].
pub(super) fn route(path: &str) -> Option<(Endpoint, &str)> {
    let rest = path.strip_prefix(API_PREFIX)?.strip_prefix("/accounts/")?;
    let (account, rest) = rest.split_once('/')?;
    let endpoint = match rest {
        "email-security/settings/allow_policies" => Endpoint::List,
        "email-security/settings/allow_policies/batch" => Endpoint::Batch,
        _ => return None,
    };
    Some((endpoint, account))
}

/// Every request: the test-control routes as they are; the API's routes
/// spend the rate budget first, and their answers say what is left of it.
pub(super) async fn handle(
    shared: Arc<Shared>,
    reset: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Reply, DropConnection> {
    if request.uri().path().starts_with(ADMIN_PREFIX) {
        return answer(shared, reset, request).await;
    }
    let spent = shared
        .rate()
        .spend(request.headers(), std::time::Instant::now());
    let fields = match spent {
        Spent::Within(fields) => fields,
        Spent::Refused(reply) => {
            shared.requests.fetch_add(1, Ordering::SeqCst);
            return Ok(reply);
        }
    };
    let mut reply = answer(shared, reset, request).await?;
    add_fields(&mut reply, &fields);
    Ok(reply)
}

async fn answer(
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
    if matches!(endpoint, Endpoint::Batch) {
        shared.batch_requests.fetch_add(1, Ordering::SeqCst);
    }
    // Read in full before anything else, so that every answer (a fault
    // included) comes after the whole request has arrived, and a request
    // that never arrives does not use up a fault.
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Ok(too_large(MAX_BODY_BYTES)),
        Err(BodyError::Broken) => return Err(DropConnection),
    };
    let fault = match endpoint {
        Endpoint::Batch => shared.lock().faults.pop_front(),
        Endpoint::List => shared.lock().list_faults.pop_front(),
    };
    let (fault, afterwards) = match fault {
        Some(Fault::AfterApplying(then)) => (None, Some(*then)),
        fault => (fault, None),
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
        Some(Fault::AfterApplying(_)) | None => {}
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
    let reply = match endpoint {
        Endpoint::List => list(&shared, account, parts.uri.query().unwrap_or("")),
        Endpoint::Batch => batch(&shared, account, &body),
    };
    match afterwards {
        Some(Fault::Status {
            status,
            headers,
            body,
        }) => Ok(canned(status, &headers, body)),
        Some(Fault::Reset) => {
            reset.store(true, Ordering::SeqCst);
            Err(DropConnection)
        }
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay.min(MAX_DELAY)).await;
            Ok(reply)
        }
        Some(Fault::AfterApplying(_)) | None => Ok(reply),
    }
}

pub(super) enum BodyError {
    TooLarge,
    Broken,
}

pub(super) async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

pub(super) fn authenticated(token: Option<&str>, headers: &HeaderMap) -> bool {
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

/// The test-control routes, one per [`AdminRoute`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AdminRoute {
    /// `POST /__fake/faults`: queue faults for the next batch requests.
    Faults,
    /// `POST /__fake/seed`: add policies with the ids given (a seed
    /// document, as `task-host fake-api --seed` reads).
    Seed,
    /// `GET /__fake/requests`: how many requests, batch requests and
    /// applied batches so far, and what the rate limit refused.
    Requests,
    /// `GET /__fake/accounts`: every account's policies, so that a test
    /// can look at them all without spending the rate budget.
    Accounts,
}

impl AdminRoute {
    fn of(path: &str) -> Option<AdminRoute> {
        match path.strip_prefix(ADMIN_PREFIX)? {
            "faults" => Some(AdminRoute::Faults),
            "seed" => Some(AdminRoute::Seed),
            "requests" => Some(AdminRoute::Requests),
            "accounts" => Some(AdminRoute::Accounts),
            _ => None,
        }
    }

    fn method(self) -> Method {
        match self {
            AdminRoute::Faults | AdminRoute::Seed => Method::POST,
            AdminRoute::Requests | AdminRoute::Accounts => Method::GET,
        }
    }
}

/// Answers a request to one of the [`AdminRoute`]s.
pub(super) async fn admin(
    shared: &Shared,
    method: &Method,
    path: &str,
    body: Incoming,
) -> Result<Reply, DropConnection> {
    let Some(route) = AdminRoute::of(path) else {
        return Ok(failure(
            StatusCode::NOT_FOUND,
            vec![ApiError::new(code::NO_ROUTE, "No route for that URI")],
        ));
    };
    if *method != route.method() {
        return Ok(method_not_allowed(route.method()));
    }
    Ok(match route {
        AdminRoute::Requests => request_counts(shared),
        AdminRoute::Accounts => every_account(shared),
        AdminRoute::Faults => match read_json(body).await? {
            Ok(document) => queue_faults(shared, &document),
            Err(refusal) => refusal,
        },
        AdminRoute::Seed => match read_json(body).await? {
            Ok(document) => seed(shared, &document),
            Err(refusal) => refusal,
        },
    })
}

/// The body as JSON, or the answer that refuses it.
async fn read_json(body: Incoming) -> Result<Result<Value, Reply>, DropConnection> {
    let body = match read_body(body).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return Ok(Err(too_large(MAX_BODY_BYTES))),
        Err(BodyError::Broken) => return Err(DropConnection),
    };
    Ok(serde_json::from_slice(&body).map_err(|e| malformed(&e)))
}

/// Every request of the API's routes is counted, the refused ones too:
/// `rate_limited` of them were answered 429 by the rate limit, which began
/// `lockouts` lockouts.
fn request_counts(shared: &Shared) -> Reply {
    let count = shared.requests.load(Ordering::SeqCst);
    let applied = shared.lock().batches_applied;
    let (rate_limited, lockouts) = {
        let rate = shared.rate();
        (rate.refused, rate.lockouts)
    };
    let counts = json!({
        "requests": count,
        "batch_requests": shared.batch_requests.load(Ordering::SeqCst),
        "batches_applied": applied,
        "rate_limited": rate_limited,
        "lockouts": lockouts,
    });
    success(counts, None)
}

/// `{"<account id>": [policy, ...]}`, each account's policies as the list
/// endpoint shows them, oldest first.
fn every_account(shared: &Shared) -> Reply {
    let state = shared.lock();
    let accounts = state
        .accounts
        .iter()
        .map(|(account, policies)| {
            let listed = policies.iter().map(Policy::to_json).collect();
            (account.clone(), Value::Array(listed))
        })
        .collect();
    success(Value::Object(accounts), None)
}

fn queue_faults(shared: &Shared, value: &Value) -> Reply {
    match parse_faults(value) {
        Ok(faults) => {
            shared.lock().faults.extend(faults);
            let mut reply = Response::new(Full::new(Bytes::new()));
            *reply.status_mut() = StatusCode::NO_CONTENT;
            reply
        }
        Err(errors) => failure(StatusCode::BAD_REQUEST, errors),
    }
}

/// Stores a seed document; the answer's `result` is the same document with
/// the policies as stored (ids given or made, timestamps).
fn seed(shared: &Shared, document: &Value) -> Reply {
    match check_and_store(&mut shared.lock(), document, shared.legacy_ids) {
        Ok(accounts) => {
            let result = accounts
                .into_iter()
                .map(|(account, policies)| (account, Value::Array(policies)))
                .collect();
            success(Value::Object(result), None)
        }
        Err(errors) => failure(StatusCode::BAD_REQUEST, errors),
    }
}

pub(super) fn list(shared: &Shared, account: &str, query: &str) -> Reply {
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

pub(super) fn batch(shared: &Shared, account: &str, body: &[u8]) -> Reply {
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
        let id = state.new_id(shared.legacy_ids, |id| {
            policies.iter().any(|p| p.id.matches(id))
        });
        let policy = Policy::create(id, body, &stamp);
        created.push(policy.to_json());
        policies.push(policy);
    }
    state.accounts.insert(account.to_string(), policies);
    state.batches_applied += 1;
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

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

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
