//! An HTTP/1.1 server on 127.0.0.1 that misbehaves on purpose, written on a
//! raw `TcpListener` so that every byte, pause and reset is under the test's
//! control. Each connection carries one request and follows the next
//! [`Script`] in line; the last script repeats.
//!
//! Put in front of the fake API ([`MisbehavingServer::in_front_of`]), it is
//! a proxy that fails: reads (`GET`) pass through to the fake's account,
//! and each batch follows its script, which may first pass the batch on
//! ([`Script::Applied`]), so that a test can tell a batch that failed on
//! the way from one that was applied and whose answer was lost.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// What the server does with one connection.
#[derive(Clone, Debug)]
pub enum Script {
    /// Reads the whole request, writes these bytes, closes.
    Reply(Vec<u8>),
    /// Reads the whole request and never answers.
    Silent,
    /// Reads the whole request, writes these bytes (say, headers and part
    /// of the body), then holds the connection open without another byte.
    Stall(Vec<u8>),
    /// Reads the whole request, writes the first bytes at once and the
    /// second one at a time with a pause before each, closes.
    Drip(Vec<u8>, Vec<u8>, Duration),
    /// Reads the whole request, writes these bytes, then resets the
    /// connection (RST, not FIN).
    Reset(Vec<u8>),
    /// Reads the whole request and closes without writing anything.
    Close,
    /// Reads the whole request, writes these headers, then an endless body
    /// until the client stops reading or goes away.
    Flood(Vec<u8>),
    /// Reads only the request head, answers with these bytes at once and
    /// then neither reads nor closes: the rest of the body is never taken.
    EarlyReply(Vec<u8>),
    /// In front of the fake API: passes the batch on and waits for it to be
    /// handled (applied, if the fake accepts it), then plays the script.
    Applied(Box<Script>),
    /// In front of the fake API: plays the script, and passes the batch on
    /// after this delay from its arrival, whatever the client did meanwhile.
    AppliedLate(Duration, Box<Script>),
    /// In front of the fake API: passes the request on and relays the answer.
    PassThrough,
}

/// A response with the given status line, extra headers and body, framed
/// by `Content-Length`.
pub fn response(status: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut text = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("Connection: close\r\n\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// A request as the server read it: its head. (The body is read to its
/// end, or not at all, but not kept.)
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
}

impl Received {
    /// The value of a header (case-insensitive name), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

#[derive(Default)]
struct Shared {
    scripts: Mutex<Vec<Script>>,
    next: AtomicUsize,
    received: Mutex<Vec<Received>>,
    flood_bytes: AtomicU64,
    /// The fake API behind, when there is one.
    upstream: Option<SocketAddr>,
    /// Reads passed through to it.
    reads: AtomicUsize,
}

pub struct MisbehavingServer {
    port: u16,
    shared: Arc<Shared>,
    accept: tokio::task::JoinHandle<()>,
}

/// The most of a flood body the server writes.
const FLOOD_LIMIT: u64 = 1 << 30;

impl MisbehavingServer {
    pub async fn start(scripts: Vec<Script>) -> Self {
        Self::start_with_receive_buffer(scripts, None).await
    }

    /// Like [`MisbehavingServer::start`], with each connection's receive
    /// buffer set to about `bytes`, so that a client whose body the server
    /// does not read soon finds it cannot write more.
    pub async fn start_with_receive_buffer(scripts: Vec<Script>, bytes: Option<u32>) -> Self {
        assert!(!scripts.is_empty());
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(bytes) = bytes {
            socket.set_recv_buffer_size(bytes).unwrap();
        }
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = socket.listen(64).unwrap();
        Self::listen(listener, scripts, None)
    }

    /// A server in front of the fake API at `upstream`: every `GET` passes
    /// through; each other request takes the next script, the last one
    /// repeating.
    pub async fn in_front_of(upstream: SocketAddr, scripts: Vec<Script>) -> Self {
        assert!(!scripts.is_empty());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::listen(listener, scripts, Some(upstream))
    }

    fn listen(
        listener: tokio::net::TcpListener,
        scripts: Vec<Script>,
        upstream: Option<SocketAddr>,
    ) -> Self {
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            scripts: Mutex::new(scripts),
            upstream,
            ..Shared::default()
        });
        let accepting = shared.clone();
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                if accepting.upstream.is_some() {
                    tokio::spawn(proxy(stream, accepting.clone()));
                    continue;
                }
                let script = accepting.next_script();
                tokio::spawn(serve(stream, script, accepting.clone()));
            }
        });
        Self {
            port,
            shared,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/client/v4", self.port)
    }

    /// Requests whose head the server read in full.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Requests passed through to the fake API as reads.
    pub fn reads(&self) -> usize {
        self.shared.reads.load(Ordering::SeqCst)
    }

    /// Body bytes the flood scripts managed to hand to the kernel.
    pub fn flood_bytes(&self) -> u64 {
        self.shared.flood_bytes.load(Ordering::SeqCst)
    }
}

impl Shared {
    fn next_script(&self) -> Script {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        let scripts = self.scripts.lock().unwrap();
        scripts[n.min(scripts.len() - 1)].clone()
    }
}

impl Drop for MisbehavingServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut stream: TcpStream, script: Script, shared: Arc<Shared>) {
    let early = matches!(script, Script::EarlyReply(_));
    let Some(received) = read_request(&mut stream, !early).await else {
        return;
    };
    shared.received.lock().unwrap().push(received);
    play(stream, script, shared).await;
}

/// One connection in front of the fake API.
async fn proxy(mut stream: TcpStream, shared: Arc<Shared>) {
    let Some((received, body)) = read_whole_request(&mut stream).await else {
        return;
    };
    let upstream = shared.upstream.expect("a proxy has an upstream");
    if received.head.starts_with("GET ") {
        shared.reads.fetch_add(1, Ordering::SeqCst);
        let answer = pass_on(upstream, &received, body).await;
        let _ = stream.write_all(&answer).await;
        let _ = stream.shutdown().await;
        return;
    }
    shared.received.lock().unwrap().push(received.clone());
    let mut next = shared.next_script();
    let script = loop {
        next = match next {
            Script::Applied(then) => {
                pass_on(upstream, &received, body.clone()).await;
                *then
            }
            Script::AppliedLate(delay, then) => {
                let (received, body) = (received.clone(), body.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    pass_on(upstream, &received, body).await;
                });
                *then
            }
            Script::PassThrough => {
                let answer = pass_on(upstream, &received, body).await;
                let _ = stream.write_all(&answer).await;
                let _ = stream.shutdown().await;
                return;
            }
            other => break other,
        };
    };
    Box::pin(play(stream, script, shared)).await;
}

/// Sends the request to the fake API and gives its answer (status, body
/// and any `Retry-After`) as bytes to write back, with `Connection: close`
/// as every answer here has.
async fn pass_on(upstream: SocketAddr, received: &Received, body: Vec<u8>) -> Vec<u8> {
    let mut lines = received.head.lines();
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or("GET");
    let path = parts.next().unwrap_or("/");
    let headers: Vec<(&str, &str)> = [
        "authorization",
        "x-auth-email",
        "x-auth-key",
        "content-type",
    ]
    .into_iter()
    .filter_map(|name| received.header(name).map(|value| (name, value)))
    .collect();
    let mut sender = super::loopback_http::connect(upstream).await;
    let answer = super::loopback_http::send_on(
        &mut sender,
        upstream,
        method.parse().unwrap(),
        path,
        &headers,
        &String::from_utf8_lossy(&body),
    )
    .await
    .expect("the fake API answers");
    let mut relayed = vec![("Content-Type", "application/json")];
    if let Some(wait) = answer
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
    {
        relayed.push(("Retry-After", wait));
    }
    response(&format!("{} X", answer.status), &relayed, &answer.text)
}

async fn play(mut stream: TcpStream, script: Script, shared: Arc<Shared>) {
    match script {
        Script::Reply(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.shutdown().await;
        }
        Script::Silent => hold(stream).await,
        Script::Stall(bytes) => {
            let _ = stream.write_all(&bytes).await;
            hold(stream).await;
        }
        Script::Drip(at_once, bytes, pause) => {
            if stream.write_all(&at_once).await.is_err() {
                return;
            }
            for byte in bytes {
                tokio::time::sleep(pause).await;
                if stream.write_all(&[byte]).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown().await;
        }
        Script::Reset(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            // A little time for the bytes to leave before the reset.
            tokio::time::sleep(Duration::from_millis(50)).await;
            // A zero linger makes the close a reset; it never blocks.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Script::Close => drop(stream),
        Script::Flood(head) => {
            if stream.write_all(&head).await.is_err() {
                return;
            }
            let chunk = vec![b' '; 64 * 1024];
            while shared.flood_bytes.load(Ordering::SeqCst) < FLOOD_LIMIT {
                match tokio::time::timeout(Duration::from_secs(5), stream.write_all(&chunk)).await {
                    Ok(Ok(())) => {
                        shared
                            .flood_bytes
                            .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                    }
                    // Gone, or no longer reading.
                    _ => return,
                }
            }
        }
        Script::EarlyReply(bytes) => {
            let _ = stream.write_all(&bytes).await;
            hold(stream).await;
        }
        Script::Applied(_) | Script::AppliedLate(..) | Script::PassThrough => {
            panic!("only a server in front of the fake API passes requests on")
        }
    }
}

/// Keeps a connection open, neither reading nor writing, for longer than
/// any test runs.
async fn hold(stream: TcpStream) {
    tokio::time::sleep(Duration::from_secs(120)).await;
    drop(stream);
}

/// Reads a request head and, when `with_body`, its `Content-Length` body
/// (which it drops).
async fn read_request(stream: &mut TcpStream, with_body: bool) -> Option<Received> {
    let (received, mut body) = read_head(stream).await?;
    if with_body {
        read_body(stream, &received, &mut body).await?;
    }
    Some(received)
}

/// Reads a request head, and gives the bytes read past it.
async fn read_head(stream: &mut TcpStream) -> Option<(Received, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let received = Received {
        head: String::from_utf8_lossy(&buf[..head_end]).into_owned(),
    };
    let rest = buf.split_off(head_end);
    Some((received, rest))
}

/// Reads on until `body` holds the `Content-Length` the head declared.
async fn read_body(stream: &mut TcpStream, received: &Received, body: &mut Vec<u8>) -> Option<()> {
    let length: usize = received
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut chunk = [0u8; 16 * 1024];
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

/// Reads a request head and its `Content-Length` body, and keeps both.
async fn read_whole_request(stream: &mut TcpStream) -> Option<(Received, Vec<u8>)> {
    let (received, mut body) = read_head(stream).await?;
    read_body(stream, &received, &mut body).await?;
    Some((received, body))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
