//! The one door every outgoing request of a task goes through: a test's
//! [`Interceptor`] may answer it; otherwise it must be allowed, and then it
//! goes out over a pooled connection.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::{BodyExt, Full};
use tokio::time::Instant;
use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use super::allow::{is_allowed, AllowedHost};
use super::pool::ConnectionPool;
use super::rate_gate::{Admission, RateGate};
use allow_policies_batch::api::outcome::HELD_BACK_PREFIX;

/// Largest request body the host will hold in memory to show an interceptor.
pub const MAX_CAPTURED_BODY: usize = 64 * 1024 * 1024;

/// What wasmtime-wasi-http waits for when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Decides, per request, what the guest gets back instead of (or before) the
/// network.
///
/// It runs on the async runtime, inside the task that serves the request, so
/// it must answer promptly; use [`CannedResponse::delay`] to simulate a slow
/// server rather than sleeping.
pub trait Interceptor: Send + Sync + 'static {
    fn handle(&self, request: CapturedRequest) -> Intercepted;
}

impl<F> Interceptor for F
where
    F: Fn(CapturedRequest) -> Intercepted + Send + Sync + 'static,
{
    fn handle(&self, request: CapturedRequest) -> Intercepted {
        self(request)
    }
}

/// An outgoing request as the guest made it, body included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedRequest {
    pub method: String,
    /// `scheme://authority/path?query`.
    pub url: String,
    /// In the order they would go on the wire, `host` included (wasi:http adds
    /// it from the authority). Values that are not UTF-8 are converted lossily.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub connect_timeout: Option<Duration>,
    pub first_byte_timeout: Option<Duration>,
    pub between_bytes_timeout: Option<Duration>,
}

impl CapturedRequest {
    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
    }
}

/// An interceptor's answer.
#[derive(Debug, Clone)]
pub enum Intercepted {
    /// Answer with this response; nothing is sent.
    Respond(CannedResponse),
    /// Send the request for real, as if there were no interceptor.
    Forward,
    /// Fail the request with this error, as the network client would.
    Fail(ErrorCode),
}

/// A response made up by an interceptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CannedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// How long the made-up server takes to answer, counted from when the
    /// request was handed over. If that exceeds the request's first-byte
    /// timeout the guest gets `connection-read-timeout` when it expires, as
    /// with a real server.
    pub delay: Duration,
}

impl CannedResponse {
    /// `status` with no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with `body` serialized, labelled `application/json`.
    pub fn json(status: u16, body: &serde_json::Value) -> Self {
        Self::new(status)
            .with_header("content-type", "application/json")
            .with_body(body.to_string())
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

impl From<CannedResponse> for Intercepted {
    fn from(response: CannedResponse) -> Self {
        Intercepted::Respond(response)
    }
}

/// The per-store `wasi:http` policy: which destinations are reachable and who
/// answers requests to them.
pub(crate) struct TaskHooks {
    pub(crate) allow_hosts: Arc<[AllowedHost]>,
    /// While `prepare` or `export-policies` runs: only `GET` goes out, so
    /// that a preview or an export can read but never write, whatever the
    /// component does.
    pub(crate) reads_only: bool,
    pub(crate) interceptor: Option<Arc<dyn Interceptor>>,
    pub(crate) connections: Arc<ConnectionPool>,
    /// The process's rate gate, shared by its tasks; `None` where the
    /// host was set up without one.
    pub(crate) rate_gate: Option<Arc<RateGate>>,
}

/// The most of a request body the guest hands over in one write, and so
/// the most the host holds of it at once (with one chunk buffered). The
/// default, 1 MiB, let a large batch's whole body sit in host memory beside
/// the guest's own copy, for every task in flight; at 64 KiB sixteen tasks
/// of the largest batch hold about 2 MiB of it between them, and the body
/// still goes out in a handful of writes.
pub(crate) const BODY_CHUNK_BYTES: usize = 64 * 1024;

type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;
type SendResult = Result<(Response<WasiBody>, IoFuture), Error>;

impl WasiHttpHooks for TaskHooks {
    fn p2_outgoing_body_chunk_size(&mut self) -> usize {
        BODY_CHUNK_BYTES
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_errors: IoFuture,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if !destination_allowed(&self.allow_hosts, request.uri())
            || (self.reads_only && request.method() != http::Method::GET)
        {
            return Box::new(async { Err(Error::HttpRequestDenied) });
        }
        // Allowed, so it has an authority; the gate keeps one budget per
        // scheme and authority.
        let destination = format!(
            "{}://{}",
            request.uri().scheme_str().unwrap_or_default(),
            request
                .uri()
                .authority()
                .map(|a| a.as_str())
                .unwrap_or_default()
        );
        let connect_timeout = options
            .as_ref()
            .and_then(|o| o.connect_timeout)
            .unwrap_or(DEFAULT_TIMEOUT);
        let connections = self.connections.clone();
        let send: Box<dyn Future<Output = SendResult> + Send> = match self.interceptor.clone() {
            None => Box::new(send_for_real(connections, request, options)),
            Some(interceptor) => Box::new(intercept(interceptor, connections, request, options)),
        };
        match self.rate_gate.clone() {
            None => send,
            Some(gate) => Box::new(through_gate(gate, destination, connect_timeout, send)),
        }
    }
}

/// `send`, once the rate gate lets it leave; its answer teaches the gate.
/// A request the gate keeps back is answered at once as the component
/// reads "nothing sent, wait N ms".
async fn through_gate(
    gate: Arc<RateGate>,
    destination: String,
    connect_timeout: Duration,
    send: Box<dyn Future<Output = SendResult> + Send>,
) -> SendResult {
    match gate.admit(&destination, std::time::Instant::now(), connect_timeout) {
        Admission::Now => {}
        Admission::After(wait) => tokio::time::sleep(wait).await,
        Admission::HeldBack(wait) => {
            let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
            return Err(Error::from(ErrorCode::InternalError(Some(format!(
                "{HELD_BACK_PREFIX}{ms} ms"
            )))));
        }
    }
    let sent = Box::into_pin(send).await;
    if let Ok((response, _)) = &sent {
        gate.observe(
            &destination,
            std::time::Instant::now(),
            response.status(),
            response.headers(),
        );
    }
    sent
}

/// Only `http` and `https` have a known port, and only `https` is TLS; a
/// user name in the authority is refused because the network client would
/// take it as part of the host.
pub(crate) fn destination_allowed(list: &[AllowedHost], uri: &Uri) -> bool {
    let Some(authority) = uri.authority() else {
        return false;
    };
    if authority.as_str().contains('@') {
        return false;
    }
    let (tls, default_port) = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => (true, 443),
        Some(s) if *s == Scheme::HTTP => (false, 80),
        _ => return false,
    };
    let port = authority.port_u16().unwrap_or(default_port);
    is_allowed(list, tls, authority.host(), port)
}

async fn send_for_real(
    connections: Arc<ConnectionPool>,
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    connections.send(request, options).await
}

async fn intercept(
    interceptor: Arc<dyn Interceptor>,
    connections: Arc<ConnectionPool>,
    request: Request<WasiBody>,
    options: Option<RequestOptions>,
) -> SendResult {
    let options = options.unwrap_or_default();
    // The real client's first-byte timer also covers sending the body.
    let deadline = Instant::now() + options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);

    let (parts, body) = request.into_parts();
    let (body, trailers) = tokio::time::timeout_at(deadline, collect(body))
        .await
        .map_err(|_| Error::ConnectionReadTimeout)??;

    let captured = CapturedRequest {
        method: parts.method.as_str().to_owned(),
        url: parts.uri.to_string(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: body.to_vec(),
        connect_timeout: options.connect_timeout,
        first_byte_timeout: options.first_byte_timeout,
        between_bytes_timeout: options.between_bytes_timeout,
    };

    match interceptor.handle(captured) {
        Intercepted::Fail(code) => Err(Error::from(code)),
        Intercepted::Respond(canned) => {
            let answered_at = Instant::now() + canned.delay;
            if answered_at > deadline {
                tokio::time::sleep_until(deadline).await;
                return Err(Error::ConnectionReadTimeout);
            }
            // tokio's timer wakes on whole milliseconds: even a sleep until
            // now would hold an instant answer back by up to one.
            if !canned.delay.is_zero() {
                tokio::time::sleep_until(answered_at).await;
            }
            let no_io: IoFuture = Box::new(async { Ok(()) });
            Ok((canned_response(canned)?, no_io))
        }
        Intercepted::Forward => {
            let mut body = full(body);
            if let Some(trailers) = trailers {
                body = body
                    .with_trailers(std::future::ready(Some(Ok(trailers))))
                    .boxed_unsync();
            }
            send_for_real(connections, Request::from_parts(parts, body), Some(options)).await
        }
    }
}

async fn collect(mut body: WasiBody) -> Result<(Bytes, Option<HeaderMap>), Error> {
    let mut data = Vec::new();
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            Ok(chunk) => {
                let len = data.len() + chunk.len();
                if len > MAX_CAPTURED_BODY {
                    return Err(Error::HttpRequestBodySize(Some(len as u64)));
                }
                data.extend_from_slice(&chunk);
            }
            Err(frame) => {
                if let Ok(more) = frame.into_trailers() {
                    trailers.get_or_insert_with(HeaderMap::new).extend(more);
                }
            }
        }
    }
    Ok((Bytes::from(data), trailers))
}

fn canned_response(canned: CannedResponse) -> Result<Response<WasiBody>, Error> {
    let mut builder = Response::builder().status(canned.status);
    for (name, value) in &canned.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(full(Bytes::from(canned.body)))
        .map_err(|e| Error::InternalError(Some(format!("invalid canned response: {e}"))))
}

fn full(body: Bytes) -> WasiBody {
    Full::new(body)
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(list: &[&str], uri: &str) -> bool {
        let list: Vec<AllowedHost> = list.iter().map(|s| s.parse().unwrap()).collect();
        destination_allowed(&list, &uri.parse().unwrap())
    }

    #[test]
    fn port_defaults_to_the_scheme_port() {
        assert!(allowed(
            &["api.cloudflare.com:443"],
            "https://api.cloudflare.com/x"
        ));
        assert!(!allowed(
            &["api.cloudflare.com:443"],
            "http://api.cloudflare.com/x"
        ));
        assert!(allowed(&["127.0.0.1:80"], "http://127.0.0.1/x"));
        assert!(allowed(&["127.0.0.1:8787"], "http://127.0.0.1:8787/x"));
        assert!(!allowed(&["127.0.0.1:8787"], "http://127.0.0.1:8788/x"));
        assert!(allowed(&["[::1]:8080"], "http://[::1]:8080/x"));
        assert!(allowed(
            &["API.cloudflare.com"],
            "https://api.CLOUDFLARE.com:8443/"
        ));
    }

    #[test]
    fn by_default_only_https_to_the_api_on_443_leaves() {
        let list = AllowedHost::defaults();
        let allowed = |uri: &str| destination_allowed(&list, &uri.parse().unwrap());
        assert!(allowed("https://api.cloudflare.com/client/v4"));
        assert!(allowed("https://api.cloudflare.com:443/client/v4"));
        assert!(!allowed("http://api.cloudflare.com/client/v4"));
        assert!(!allowed("http://api.cloudflare.com:443/client/v4"));
        assert!(!allowed("https://api.cloudflare.com:8443/client/v4"));
        assert!(!allowed("http://127.0.0.1/"));
    }

    #[test]
    fn refuses_what_the_list_cannot_vouch_for() {
        let list = ["api.cloudflare.com"];
        assert!(!allowed(&list, "https://evil.example/"));
        assert!(!allowed(&list, "https://api.cloudflare.com@evil.example/"));
        assert!(!allowed(&list, "https://evil.example@api.cloudflare.com/"));
        assert!(!allowed(&list, "ftp://api.cloudflare.com/"));
        assert!(!allowed(&list, "/relative"));
    }

    #[test]
    fn closures_are_interceptors() {
        let interceptor: Arc<dyn Interceptor> =
            Arc::new(|r: CapturedRequest| CannedResponse::new(r.body.len() as u16).into());
        let request = CapturedRequest {
            method: "POST".into(),
            url: "https://api.cloudflare.com/".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: b"{}".to_vec(),
            connect_timeout: None,
            first_byte_timeout: None,
            between_bytes_timeout: None,
        };
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.json().unwrap(), serde_json::json!({}));
        match interceptor.handle(request) {
            Intercepted::Respond(r) => assert_eq!(r.status, 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
