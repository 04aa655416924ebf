//! A stateful, in-memory stand-in for Cloudflare Email Security's
//! allow-policies API, served over real HTTP/1.1 on loopback, so that the
//! component and `task-host` can be tried without an account or a network.
//!
//! It answers `POST .../allow_policies/batch` and `GET .../allow_policies`
//! under `/client/v4` with the v4 envelope, keeps policies per account, and
//! can be told to misbehave on the next batch requests ([`Fault`]), in process
//! or through `POST /__fake/faults` from another process.
//!
//! This module is the public face (options, faults, [`FakeApi`]); `server`
//! holds the routes and handlers, `batch` the rules a batch body must
//! follow, `store` the policies and their ids and timestamps, and
//! `envelope` Cloudflare's answer format.

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

use allow_policies_batch::params::pattern::{non_global_range, parse_ip_pattern};

mod batch;
mod envelope;
mod server;
mod store;

use batch::*;
use envelope::*;
use server::*;
use store::*;

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
    /// Handle the request (apply the batch), then answer as the inner fault
    /// says instead of with the result: a status such as a proxy's 502, a
    /// reset, or a delay before the real answer. What a client sees then
    /// says nothing of whether the batch was applied; it was.
    AfterApplying(Box<Fault>),
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
            batch_requests: AtomicUsize::new(0),
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

    /// Queues a fault for the next list request (`GET .../allow_policies`),
    /// as [`FakeApi::push_fault`] does for batches. [`Fault::AfterApplying`]
    /// reads the list, then answers as its inner fault says.
    pub fn push_list_fault(&self, fault: Fault) {
        self.shared.lock().list_faults.push_back(fault);
    }

    /// Batches that changed an account so far, whatever the client was
    /// told: a test of "applied once" counts these.
    pub fn batches_applied(&self) -> usize {
        self.shared.lock().batches_applied
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
    /// Requests to the batch endpoint, answered or not.
    batch_requests: AtomicUsize,
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
