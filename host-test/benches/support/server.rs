//! The API stand-in every contender talks to: hyper's HTTP/1.1 server on
//! 127.0.0.1 with keep-alive, on a thread and runtime of its own, so that
//! its work is the same whoever the client is. It reads each request body
//! to the end and answers at once with one fixed success envelope; no
//! other work depends on the request.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use tokio::sync::oneshot;
use wasmtime_wasi_http::io::TokioIo;

/// A success the component accepts (see src/outcome.rs): 200, an envelope
/// with `success: true`, and a `result` that reads back.
pub const ENVELOPE: &[u8] = br#"{"success":true,"errors":[],"messages":[],"result":{"deletes":[],"patches":[],"puts":[],"posts":[]}}"#;

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: Method,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    capture_next: AtomicBool,
    captured: Mutex<Option<Captured>>,
}

pub struct Server {
    port: u16,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start() -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let port = listener.local_addr().expect("a bound address").port();
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bench-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the server's runtime");
                runtime.block_on(accept_loop(listener, serving, stopped));
            })
            .expect("the server thread");
        Server {
            port,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Requests answered so far.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Keeps a copy of the next request, to be had from [`Server::captured`].
    pub fn capture_next(&self) {
        *self.shared.captured.lock().unwrap() = None;
        self.shared.capture_next.store(true, Ordering::SeqCst);
    }

    pub fn captured(&self) -> Option<Captured> {
        self.shared.captured.lock().unwrap().take()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    stop: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    host_test::accept_loop::serve_until_stopped(listener, stop, |stream| {
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        async move {
            let service =
                hyper::service::service_fn(move |request| answer(shared.clone(), request));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await;
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, mut body) = request.into_parts();
    let keep = shared.capture_next.swap(false, Ordering::SeqCst);
    let mut kept = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        if let (true, Some(data)) = (keep, frame.data_ref()) {
            kept.extend_from_slice(data);
        }
    }
    if keep {
        *shared.captured.lock().unwrap() = Some(Captured {
            method: parts.method,
            path: parts.uri.path().to_string(),
            headers: parts.headers,
            body: kept.into(),
        });
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let mut response = Response::new(Full::new(Bytes::from_static(ENVELOPE)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
