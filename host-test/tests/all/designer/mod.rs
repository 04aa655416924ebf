//! `task-host designer`: the server of the local page, started in this
//! process (or as the real binary, in `command`) and spoken to over real
//! loopback HTTP, as a browser would and as other sites and hosts would
//! try to. It sends to its embedded fake API; the tests of `--live` only
//! look at its session and credentials and ask for previews, which send
//! nothing: no test reaches Cloudflare.

mod access;
mod command;
mod live;
mod snippets;
mod tasks;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use host_test::designer::{Designer, DesignerOptions, Mode};
use host_test::{default_component_path, HostSettings, TaskHost};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

use crate::support::loopback_http::Answer;
use crate::support::read_example;

/// One host of the component for every designer of these tests.
fn host() -> Arc<TaskHost> {
    static HOST: OnceLock<Arc<TaskHost>> = OnceLock::new();
    HOST.get_or_init(|| {
        let settings = HostSettings {
            rate_gate: false,
            ..HostSettings::default()
        };
        Arc::new(
            TaskHost::load_with_settings(&default_component_path(), &settings)
                .expect("run `make component` first"),
        )
    })
    .clone()
}

/// A designer on a free port, sending to its embedded fake.
async fn start_fake() -> Designer {
    start(Mode::Fake).await
}

async fn start(mode: Mode) -> Designer {
    Designer::start(
        host(),
        DesignerOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            mode,
        },
    )
    .await
    .expect("the designer starts on loopback")
}

/// One request on a fresh connection, with exactly the headers given (no
/// `Host` unless given).
async fn raw(
    addr: SocketAddr,
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder().method(method).uri(target);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        text,
        json,
    }
}

/// The path and query of the printed address: `/?token=...`.
fn token_target(address: &str) -> String {
    let rest = address
        .strip_prefix("http://127.0.0.1:")
        .expect("the address is on 127.0.0.1");
    rest[rest.find('/').unwrap()..].to_string()
}

/// A browser that opened the printed address: it has the session cookie,
/// and sends what the page's own requests carry.
struct Browser {
    addr: SocketAddr,
    cookie: String,
    /// Every answer's body, to look for secrets in.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Browser {
    /// Opens the designer's address and keeps the cookie it is given.
    async fn open(designer: &Designer) -> Browser {
        let addr = designer.addr();
        let host = addr.to_string();
        let answer = raw(
            addr,
            Method::GET,
            &token_target(&designer.address()),
            &[("host", &host)],
            "",
        )
        .await;
        assert_eq!(answer.status, 303, "{}", answer.text);
        let set_cookie = answer.headers["set-cookie"].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        Browser {
            addr,
            cookie,
            seen: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn get(&self, path: &str) -> Answer {
        let host = self.addr.to_string();
        let answer = raw(
            self.addr,
            Method::GET,
            path,
            &[("host", &host), ("cookie", &self.cookie)],
            "",
        )
        .await;
        self.seen.lock().unwrap().push(answer.text.clone());
        answer
    }

    /// A `POST` as the page's `fetch` sends it: same-origin JSON.
    async fn post(&self, path: &str, body: &Value) -> Answer {
        let host = self.addr.to_string();
        let origin = self.origin();
        let answer = raw(
            self.addr,
            Method::POST,
            path,
            &[
                ("host", &host),
                ("cookie", &self.cookie),
                ("origin", &origin),
                ("content-type", "application/json"),
                ("sec-fetch-site", "same-origin"),
            ],
            &body.to_string(),
        )
        .await;
        self.seen.lock().unwrap().push(answer.text.clone());
        answer
    }

    /// Every answer so far.
    fn seen(&self) -> String {
        self.seen.lock().unwrap().join("\n")
    }
}

/// The examples' config and batch, as the page starts from them.
fn example_task(input: &str) -> Value {
    json!({ "config": read_example("config.json"), "input": read_example(input) })
}

/// No run of 64 hexadecimal characters (the sandbox token, the session
/// cookie, the access token are such runs; an account id has 32, a policy
/// id has dashes) in `text`.
fn assert_no_hex_secret(text: &str) {
    let mut run = 0;
    for c in text.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        assert!(run < 64, "a 64-character hexadecimal secret in: {text}");
    }
}
