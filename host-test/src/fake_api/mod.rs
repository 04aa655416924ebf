//! A stateful, in-memory stand-in for Cloudflare Email Security's
//! allow-policies API, served over real HTTP/1.1 on loopback, so that the
//! component and `task-host` can be tried without an account or a network.
//!
//! It answers `POST .../allow_policies/batch` and `GET .../allow_policies`
//! under `/client/v4` with the v4 envelope, keeps policies per account, and
//! can be told to misbehave on the next batch requests ([`Fault`]), in process
//! or through `POST /__fake/faults` from another process. It can be given
//! the policies an account already has, with their ids: at start
//! ([`FakeApiOptions::seed`]), in process, or through `POST /__fake/seed`.
//!
//! This module is the public face (options, [`FakeApi`]); `server` holds
//! the routes and handlers, `batch` the rules a batch body must follow,
//! `store` the policies and their ids and timestamps, `seed` the policies
//! given from outside, `fault` the ways the
//! fake can be told to misbehave, `envelope` Cloudflare's answer format
//! and `code` the codes of the fake's own errors. This file defines none of
//! what those modules share, so none of them imports from here.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context as _};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod batch;
pub mod code;
mod envelope;
mod fault;
mod rate_budget;
mod seed;
mod server;
mod store;

pub use batch::MAX_BATCH_ITEMS;
pub use fault::Fault;
pub use rate_budget::{RateBudget, CLOUDFLARE as CLOUDFLARE_RATE_BUDGET};
pub use seed::{SeedProblem, SeedRefused};
pub use server::{ADMIN_PREFIX, API_PREFIX};

use seed::{parse_policies, IntegerIds};
use server::accept_loop;
use store::{is_account_id, Policy, Shared, State};

/// Where `task-host fake-api` listens unless told otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8787);

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
    /// fails the batch. On, the fake also gives new policies integer ids,
    /// as the older API did.
    pub legacy_ids: bool,
    /// A seed document (`{"<account_id>": [policy, ...]}`, see
    /// `docs/task-contract.md`): policies the accounts hold from the start,
    /// with the ids given. Stored before the first request is answered;
    /// integer ids only with `legacy_ids`.
    pub seed: Option<Value>,
    /// The rate limit each credential meets, Cloudflare's by default
    /// ([`CLOUDFLARE_RATE_BUDGET`]); every answer says what is left of it.
    pub rate_budget: RateBudget,
}

impl Default for FakeApiOptions {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN,
            token: None,
            legacy_ids: false,
            seed: None,
            rate_budget: CLOUDFLARE_RATE_BUDGET,
        }
    }
}

impl fmt::Debug for FakeApiOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeApiOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("legacy_ids", &self.legacy_ids)
            .field("seed", &self.seed.as_ref().map(|_| "[document]"))
            .field("rate_budget", &self.rate_budget)
            .finish()
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
    /// Binds and serves on the current tokio runtime. A seed document that
    /// cannot be stored fails the start with a [`SeedRefused`] that names
    /// every problem.
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
        let mut state = State::default();
        if let Some(document) = &options.seed {
            seed::check_and_store(&mut state, document, options.legacy_ids)
                .map_err(|errors| SeedRefused::from_errors(&errors))
                .context("cannot seed the fake API")?;
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
            state: Mutex::new(state),
            rate: Mutex::new(rate_budget::RateLimiter::new(options.rate_budget)),
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

    /// 429s the rate limit sent so far, and lockouts it began.
    pub fn rate_limited(&self) -> (usize, usize) {
        let rate = self.shared.rate();
        (rate.refused, rate.lockouts)
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
    /// cannot make these: integer ids (the older schema's, taken here even
    /// without legacy ids) or `pattern_type: "UNKNOWN"`. A policy without
    /// `id` gets a new one, as a create would. Problems are named by their
    /// pointer in `policies` (`/0/pattern`). Returns the policies as stored.
    pub fn seed(
        &self,
        account_id: &str,
        policies: impl IntoIterator<Item = Value>,
    ) -> anyhow::Result<Vec<Value>> {
        if !is_account_id(account_id) {
            bail!("account id {account_id:?} is not 32 lowercase hexadecimal characters");
        }
        let policies: Vec<Value> = policies.into_iter().collect();
        let mut errors = Vec::new();
        let seed = parse_policies(account_id, "", &policies, IntegerIds::Accepted, &mut errors);
        let stored = if errors.is_empty() {
            seed::store(&mut self.shared.lock(), vec![seed], self.shared.legacy_ids)
        } else {
            Err(errors)
        };
        match stored {
            Ok(mut accounts) => Ok(accounts.pop().map(|(_, stored)| stored).unwrap_or_default()),
            Err(errors) => bail!(
                "cannot seed the fake API: {}",
                SeedRefused::from_errors(&errors)
            ),
        }
    }

    /// Stores a seed document, as `POST /__fake/seed` does: all or none,
    /// integer ids only with legacy ids. Returns the document with the
    /// policies as stored (ids given or made, timestamps).
    pub fn seed_document(&self, document: &Value) -> Result<Value, SeedRefused> {
        let stored =
            seed::check_and_store(&mut self.shared.lock(), document, self.shared.legacy_ids)
                .map_err(|errors| SeedRefused::from_errors(&errors))?;
        let accounts = stored
            .into_iter()
            .map(|(account, policies)| (account, Value::Array(policies)))
            .collect();
        Ok(Value::Object(accounts))
    }

    /// Stops accepting and drops every open connection. A request already
    /// being handled (say, during a [`Fault::Delay`]) still completes.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.accept_loop.await;
    }
}
