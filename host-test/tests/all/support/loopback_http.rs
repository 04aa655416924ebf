//! One HTTP/1.1 client, hyper's, for the tests that talk to a loopback
//! server themselves (the fake API in process, or a `task-host fake-api`
//! process): a connection of its own, then requests on it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::Value;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

/// A response, read to the end.
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// `Null` when the body is not JSON (or empty).
    pub json: Value,
}

pub type Headers<'a> = &'a [(&'a str, &'a str)];

pub async fn send_on(
    sender: &mut SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: Headers<'_>,
    body: &str,
) -> Result<Answer, hyper::Error> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    // The connection takes the next request only once it has finished
    // with the last answer; sending before then fails with "connection
    // was not ready".
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        headers,
        text,
        json,
    })
}

pub async fn connect(addr: SocketAddr) -> SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}
