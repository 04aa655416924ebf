//! The native contender: hyper's HTTP/1.1 client on one kept-alive
//! connection, replaying exactly the request the component sent.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use tokio::net::TcpStream;
use wasmtime_wasi_http::io::TokioIo;

use crate::support::server::{Captured, ENVELOPE};

pub struct NativeClient {
    sender: SendRequest<Full<Bytes>>,
    request: Captured,
}

impl NativeClient {
    /// Must be called inside the runtime that will drive the connection.
    pub async fn connect(port: u16, request: Captured) -> NativeClient {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the bench server");
        // What any latency-minded client does; the server does the same.
        stream.set_nodelay(true).expect("TCP_NODELAY");
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("an HTTP/1.1 handshake");
        tokio::spawn(async move {
            let _ = connection.await;
        });
        NativeClient { sender, request }
    }

    /// One exchange of the request the component sent; returns the whole
    /// response body.
    pub async fn send(&mut self) -> Bytes {
        let body = self.request.body.clone();
        self.send_body(body).await
    }

    /// The same exchange with `body` in place of the component's.
    pub async fn send_body(&mut self, body: Bytes) -> Bytes {
        let mut request = Request::builder()
            .method(self.request.method.clone())
            .uri(self.request.path.as_str())
            .body(Full::new(body))
            .expect("a valid request");
        *request.headers_mut() = self.request.headers.clone();
        self.sender
            .ready()
            .await
            .expect("the connection stays open");
        let response = self
            .sender
            .send_request(request)
            .await
            .expect("the server answers");
        assert!(response.status().is_success(), "{}", response.status());
        let body = response
            .into_body()
            .collect()
            .await
            .expect("the whole body")
            .to_bytes();
        assert_eq!(body.as_ref(), ENVELOPE);
        body
    }
}
