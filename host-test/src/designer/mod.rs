//! `task-host designer`: a local page to design a batch or a sync, see
//! what it would send, send it, and take it elsewhere (docs/designer.md).
//!
//! The server listens on loopback only and answers only the browser that
//! opened the address it printed (`access`); it serves the page's files
//! built into the binary (`assets`) and the page's API (`api`), which runs
//! the component against the target chosen at start (`target`: the
//! embedded fake API by default, Cloudflare with `--live`). Its answers
//! are built and redacted in `reply`; `snippets` writes the task for the
//! engines. This file starts the server and routes each request through
//! the access checks; none of those modules imports from here.

mod access;
mod api;
mod assets;
mod reply;
mod snippets;
mod target;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use http::{Method, Request};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmtime_wasi_http::io::TokioIo;

use crate::accept_loop::serve_until_stopped;
use crate::fake_api::FakeApi;
use crate::printing::keep_secret;
use crate::task_host::TaskHost;

pub use access::{cookie_name, CONTENT_SECURITY_POLICY};
pub use target::{CLOUDFLARE_BASE_URL, SANDBOX_SEED};

use access::{add_security_headers, Access, Refusal};
use api::Api;
use reply::{Refused, Reply};
use target::Target;

/// The largest request body read: a batch of four full lists is far
/// below it.
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Where the designer sends.
#[derive(Clone)]
pub enum Mode {
    /// The embedded fake API, with its sandbox account.
    Fake,
    /// Cloudflare, with this token (`$CLOUDFLARE_API_TOKEN`) when given;
    /// the page may give credentials too.
    Live { environment_token: Option<String> },
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Fake => f.write_str("Fake"),
            Mode::Live { environment_token } => f
                .debug_struct("Live")
                .field(
                    "environment_token",
                    &environment_token.as_ref().map(|_| "[redacted]"),
                )
                .finish(),
        }
    }
}

/// How the designer is started.
#[derive(Debug, Clone)]
pub struct DesignerOptions {
    /// A loopback address; port 0 picks a free port.
    pub listen: SocketAddr,
    pub mode: Mode,
}

/// A running designer; it stops on [`Designer::shutdown`] or when dropped.
pub struct Designer {
    addr: SocketAddr,
    access: Arc<Access>,
    api: Arc<Api>,
    stop: oneshot::Sender<()>,
    accept_loop: JoinHandle<()>,
}

impl std::fmt::Debug for Designer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Designer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Designer {
    /// Starts the target (the fake, seeded) and serves on the current
    /// tokio runtime. An address off loopback is refused.
    pub async fn start(host: Arc<TaskHost>, options: DesignerOptions) -> anyhow::Result<Designer> {
        check_listen(options.listen)?;
        let listener = TcpListener::bind(options.listen)
            .await
            .with_context(|| format!("cannot listen on {}", options.listen))?;
        let addr = listener
            .local_addr()
            .context("cannot read the designer's address")?;
        let target = match options.mode {
            Mode::Fake => Target::fake().await?,
            Mode::Live { environment_token } => Target::live(environment_token),
        };
        let api = Arc::new(Api::new(host, target).await?);
        let access = Arc::new(Access::new(addr.port()));
        keep_secret(access.session());
        let (stop, stopped) = oneshot::channel();
        let accept_loop = tokio::spawn(accept_loop(listener, access.clone(), api.clone(), stopped));
        Ok(Designer {
            addr,
            access,
            api,
            stop,
            accept_loop,
        })
    }

    /// The address to open, with this start's access token.
    pub fn address(&self) -> String {
        self.access.address()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The line `task-host designer` prints: the address, and where the
    /// designer sends.
    pub fn banner(&self) -> String {
        let target = self.api.target();
        let sends = match target.sandbox_account() {
            Some(account) => format!("fake API: embedded, sandbox account {account}"),
            None => format!("live: {}", target.describe()),
        };
        format!("designer: {}   ({sends})", self.address())
    }

    /// The embedded fake, when the designer sends to it.
    pub fn fake(&self) -> Option<&FakeApi> {
        self.api.target().fake_api()
    }

    /// Stops accepting and drops every open connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.accept_loop.await;
    }
}

/// The designer listens on 127.0.0.1 only: an address another machine (or
/// an IPv6 name the Host check does not take) could reach is refused.
pub fn check_listen(listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() || !listen.is_ipv4() {
        bail!("the designer listens only on 127.0.0.1, not on {listen}");
    }
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    access: Arc<Access>,
    api: Arc<Api>,
    stop: oneshot::Receiver<()>,
) {
    serve_until_stopped(listener, stop, |stream| {
        serve_connection(access.clone(), api.clone(), stream)
    })
    .await;
}

async fn serve_connection(access: Arc<Access>, api: Arc<Api>, stream: TcpStream) {
    let service = hyper::service::service_fn(move |request| {
        let access = access.clone();
        let api = api.clone();
        async move {
            let mut reply = handle(&access, &api, request).await;
            add_security_headers(reply.headers_mut());
            Ok::<_, std::convert::Infallible>(reply)
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// One request: the access checks, the token exchange, then the page's
/// files or its API.
async fn handle(access: &Access, api: &Api, request: Request<Incoming>) -> Reply {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let is_api = path.starts_with("/api/");
    let checked = access
        .check_host(request.headers())
        .and_then(|()| access.check_origin(&method, is_api, request.headers()));
    if let Err(refusal) = checked {
        return refused(refusal, is_api);
    }
    if path == "/" && method == Method::GET {
        match access.check_token(request.uri().query()) {
            Some(true) => return reply::see_other("/", Some(access.set_cookie())),
            Some(false) => return refused(Refusal::NoSession, false),
            None => {}
        }
    }
    if !access.has_session(request.headers()) {
        return refused(Refusal::NoSession, is_api);
    }
    if is_api {
        let body = if method == Method::POST {
            match read_body(request).await {
                Ok(body) => Some(body),
                Err(refused) => return refused.reply(),
            }
        } else {
            None
        };
        return api.answer(&method, &path, body).await;
    }
    match (method, assets::asset(&path)) {
        (Method::GET, Some(asset)) => reply::file(asset.content_type, asset.bytes),
        (_, Some(_)) => reply::text(405, "only GET is allowed here"),
        (_, None) => reply::text(404, "not found"),
    }
}

/// A refusal as text for the page's files, as JSON for the API.
fn refused(refusal: Refusal, is_api: bool) -> Reply {
    if is_api {
        reply::error(refusal.status(), "refused", refusal.message())
    } else {
        reply::text(refusal.status(), refusal.message())
    }
}

/// A `POST`'s body: a JSON object of at most [`MAX_REQUEST_BYTES`].
async fn read_body(request: Request<Incoming>) -> Result<Value, Refused> {
    let bytes = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return Err(Refused::new(
                413,
                "too-large",
                format!("a request body may hold at most {MAX_REQUEST_BYTES} bytes"),
            ))
        }
        Err(e) => {
            return Err(Refused::new(
                400,
                "bad-request",
                format!("the body could not be read: {e}"),
            ))
        }
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(body @ Value::Object(_)) => Ok(body),
        Ok(_) => Err(Refused::new(
            400,
            "bad-request",
            "the body must be a JSON object",
        )),
        Err(e) => Err(Refused::new(
            400,
            "bad-request",
            format!("the body is not JSON: {e}"),
        )),
    }
}
