//! Outgoing HTTP/1.1 connections kept open between tasks.
//!
//! Opening a connection costs a TCP handshake (and a TLS one for `https`),
//! which is most of a task's time against a nearby API. A [`ConnectionPool`]
//! belongs to one [`crate::TaskHost`] and lends each request an idle
//! connection to the same destination when it has one, so consecutive tasks
//! pay the handshake once.
//!
//! A task never sees another's data: a connection carries one request at a
//! time, is lent only once its previous response has been read to the end,
//! and every request brings its own headers and credentials.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http::{Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// How long an unused connection is kept. Servers close idle connections
/// on their own schedule (commonly after a minute or more); giving ours up
/// sooner keeps a request from meeting a connection the server is closing.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle connections kept per destination: enough for a busy host's
/// concurrency, few enough that a burst does not leave sockets behind.
pub const MAX_IDLE_PER_DESTINATION: usize = 32;

/// What wasmtime-wasi-http waits for when the guest sets no timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

type Sender = SendRequest<WasiBody>;
type IoFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

/// Where a connection goes, and which async runtime drives it.
///
/// A connection's I/O runs as a task of the runtime that opened it and ends
/// with that runtime, so it is lent only to requests on the same runtime.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Destination {
    runtime: tokio::runtime::Id,
    tls: bool,
    /// `host:port`, the port always present.
    authority: String,
}

impl Destination {
    fn of(uri: &Uri) -> Result<Self, Error> {
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let tls = match uri.scheme() {
            Some(s) if *s == Scheme::HTTPS => true,
            Some(s) if *s == Scheme::HTTP => false,
            _ => return Err(Error::HttpProtocolError),
        };
        let authority = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:{}", authority.host(), if tls { 443 } else { 80 }),
        };
        Ok(Self {
            runtime: tokio::runtime::Handle::current().id(),
            tls,
            authority,
        })
    }
}

struct IdleConnection {
    sender: Sender,
    since: Instant,
}

impl IdleConnection {
    fn usable(&self, now: Instant) -> bool {
        !self.sender.is_closed() && now.duration_since(self.since) < IDLE_TIMEOUT
    }
}

/// Idle connections by destination. Cheap to share: clone the `Arc`.
pub struct ConnectionPool {
    idle: Mutex<HashMap<Destination, Vec<IdleConnection>>>,
    /// Whom `https` trusts: the public web's roots, and any added.
    tls: Arc<rustls::ClientConfig>,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        ConnectionPool {
            idle: Mutex::default(),
            tls: TLS_CONFIG.clone(),
        }
    }
}

impl ConnectionPool {
    /// A pool whose `https` also trusts the certificate authorities in
    /// `pem` (a private CA of a self-hosted server), besides the public
    /// web's roots. An error says what in the text is not usable.
    pub fn trusting(pem: &[u8]) -> Result<ConnectionPool, String> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::CertificateDer;
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("a certificate that cannot be a trust anchor: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".into());
        }
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(ConnectionPool {
            idle: Mutex::default(),
            tls: Arc::new(tls),
        })
    }

    /// Sends `request` on an idle connection to its destination, or on a new
    /// one. Like `wasmtime_wasi_http::default_send_request`, the first-byte
    /// timeout covers sending the body and waiting for the response head,
    /// and the between-bytes timeout each wait for more of the body.
    pub async fn send(
        self: Arc<Self>,
        mut request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(Response<WasiBody>, IoFuture), Error> {
        let options = options.unwrap_or_default();
        let destination = Destination::of(request.uri())?;
        // The request line carries only the path: the authority went into
        // the `host` header, and the scheme is the connection's.
        *request.uri_mut() = origin_form(request.uri())?;

        let first_byte_timeout = options.first_byte_timeout.unwrap_or(DEFAULT_TIMEOUT);

        while let Some(mut sender) = self.take_idle(&destination) {
            // A connection comes back as its last response ends, a moment
            // before hyper is ready to send on it again; one that closed
            // meanwhile never saw this request, and another may carry it.
            let ready = tokio::time::timeout(first_byte_timeout, sender.ready()).await;
            match ready {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Err(_closed)) => continue,
                Ok(Ok(())) => {}
            }
            let sending = sender.try_send_request(request);
            match tokio::time::timeout(first_byte_timeout, sending).await {
                Err(_) => return Err(Error::ConnectionReadTimeout),
                Ok(Ok(response)) => {
                    return Ok(self.lend_until_read(destination, sender, response, &options));
                }
                // Refused before any of it was written: as above.
                Ok(Err(mut e)) => match e.take_message() {
                    Some(unsent) => request = unsent,
                    None => return Err(e.into_error().into()),
                },
            }
        }

        let connect_timeout = options.connect_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut sender = tokio::time::timeout(connect_timeout, connect(&destination, &self.tls))
            .await
            .map_err(|_| Error::ConnectionTimeout)??;
        let response = tokio::time::timeout(first_byte_timeout, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        Ok(self.lend_until_read(destination, sender, response, &options))
    }

    /// The most recently used idle connection to `destination` that is
    /// still open, dropping any that closed or idled too long.
    fn take_idle(&self, destination: &Destination) -> Option<Sender> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let list = idle.get_mut(destination)?;
        let now = Instant::now();
        list.retain(|c| c.usable(now));
        let found = list.pop().map(|c| c.sender);
        if list.is_empty() {
            idle.remove(destination);
        }
        found
    }

    /// The response, whose body brings the connection back to the pool
    /// when it has been read to its end. A body dropped before its end
    /// takes the connection with it, and hyper closes it.
    fn lend_until_read(
        self: Arc<Self>,
        destination: Destination,
        sender: Sender,
        response: Response<Incoming>,
        options: &RequestOptions,
    ) -> (Response<WasiBody>, IoFuture) {
        let loan = Loan {
            pool: Arc::downgrade(&self),
            destination,
            sender,
        };
        let between_bytes = options.between_bytes_timeout.unwrap_or(DEFAULT_TIMEOUT);
        let response =
            response.map(|body| GuardedBody::new(body, between_bytes, loan).boxed_unsync());
        // The connection outlives the request; its failures reach the guest
        // through the response and its body.
        let io: IoFuture = Box::new(async { Ok(()) });
        (response, io)
    }

    fn put_idle(&self, destination: Destination, sender: Sender) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Runtimes come and go (each test has its own); sweep what they left.
        idle.retain(|_, list| {
            list.retain(|c| c.usable(now));
            !list.is_empty()
        });
        let list = idle.entry(destination).or_default();
        if list.len() < MAX_IDLE_PER_DESTINATION {
            list.push(IdleConnection { sender, since: now });
        }
    }

    /// Idle connections held now, over all destinations.
    pub fn idle_count(&self) -> usize {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        idle.values().map(Vec::len).sum()
    }
}

fn origin_form(uri: &Uri) -> Result<Uri, Error> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Uri::builder()
        .path_and_query(path)
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static> Stream for T {}

/// Opens a connection and starts its I/O task on the current runtime.
async fn connect(
    destination: &Destination,
    tls_config: &Arc<rustls::ClientConfig>,
) -> Result<Sender, Error> {
    let tcp = TcpStream::connect(&destination.authority)
        .await
        .map_err(Error::Connect)?;
    // The head and the body go out as separate writes; waiting for the
    // first to be acknowledged before sending the second (Nagle) would
    // add a round trip or a delayed-ACK pause to every request.
    tcp.set_nodelay(true).map_err(Error::Connect)?;
    let stream: Box<dyn Stream> = if destination.tls {
        let name = server_name(&destination.authority)?;
        let tls = tokio_rustls::TlsConnector::from(tls_config.clone())
            .connect(name, tcp)
            .await
            .map_err(Error::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    // Errors of the connection as a whole surface through the requests
    // that use it; when it ends, its senders report closed.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// The public web's roots, as browsers trust them; built once per process.
static TLS_CONFIG: LazyLock<Arc<rustls::ClientConfig>> = LazyLock::new(|| {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
});

/// The name the server's certificate must carry: the host of `host:port`,
/// or its IP address (IPv6 in brackets).
fn server_name(authority: &str) -> Result<rustls::pki_types::ServerName<'static>, Error> {
    use rustls::pki_types::ServerName;
    if let Ok(address) = authority.parse::<std::net::SocketAddr>() {
        return Ok(ServerName::from(address.ip()));
    }
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host);
    Ok(ServerName::try_from(host)?.to_owned())
}

/// A connection lent to one request, to be given back at the end of its
/// response.
struct Loan {
    pool: Weak<ConnectionPool>,
    destination: Destination,
    sender: Sender,
}

/// A response body that fails with `connection-read-timeout` when the next
/// piece does not arrive within the between-bytes timeout, and gives its
/// connection back once it has ended.
struct GuardedBody {
    body: Incoming,
    timeout: Duration,
    timer: Pin<Box<Sleep>>,
    loan: Option<Loan>,
}

impl GuardedBody {
    fn new(body: Incoming, timeout: Duration, loan: Loan) -> Self {
        Self {
            body,
            timeout,
            timer: Box::pin(tokio::time::sleep(timeout)),
            loan: Some(loan),
        }
    }

    fn give_back(&mut self) {
        if let Some(loan) = self.loan.take() {
            if let Some(pool) = loan.pool.upgrade() {
                pool.put_idle(loan.destination, loan.sender);
            }
        }
    }
}

impl Body for GuardedBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + this.timeout;
                this.timer.as_mut().reset(next);
                if this.body.is_end_stream() {
                    this.give_back();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) if e.is_timeout() => {
                this.loan = None;
                Poll::Ready(Some(Err(Error::HttpResponseTimeout)))
            }
            Poll::Ready(Some(Err(e))) => {
                this.loan = None;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                this.give_back();
                Poll::Ready(None)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Error::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_the_port_and_keep_ip_literals() {
        use rustls::pki_types::ServerName;
        assert_eq!(
            server_name("api.cloudflare.com:443").unwrap(),
            ServerName::try_from("api.cloudflare.com").unwrap()
        );
        assert_eq!(
            server_name("[::1]:8443").unwrap(),
            ServerName::from(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(
            server_name("127.0.0.1:443").unwrap(),
            ServerName::from(std::net::Ipv4Addr::LOCALHOST)
        );
        assert!(server_name("bad name:443").is_err());
    }

    #[tokio::test]
    async fn destinations_always_carry_a_port() {
        let of = |s: &str| Destination::of(&s.parse().unwrap()).unwrap();
        assert_eq!(
            of("https://api.cloudflare.com/x").authority,
            "api.cloudflare.com:443"
        );
        assert_eq!(of("http://127.0.0.1/x").authority, "127.0.0.1:80");
        assert_eq!(of("http://127.0.0.1:8787/x").authority, "127.0.0.1:8787");
        assert_eq!(of("http://[::1]/x").authority, "[::1]:80");
        assert!(of("https://a.example/").tls);
        assert!(Destination::of(&"ftp://a.example/".parse().unwrap()).is_err());
    }

    #[test]
    fn a_ca_bundle_must_hold_usable_pem_certificates() {
        let ca = include_bytes!("../../tests/all/support/tls/private-ca.pem");
        assert!(ConnectionPool::trusting(ca).is_ok());
        let none = ConnectionPool::trusting(b"just text").err().unwrap();
        assert!(none.contains("no PEM certificate"), "{none}");
        let broken = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(ConnectionPool::trusting(broken).is_err());
    }

    #[test]
    fn the_request_line_carries_only_the_path_and_query() {
        let uri: Uri = "https://api.cloudflare.com/client/v4/x?y=1"
            .parse()
            .unwrap();
        assert_eq!(origin_form(&uri).unwrap(), "/client/v4/x?y=1");
        let bare: Uri = "https://api.cloudflare.com".parse().unwrap();
        assert_eq!(origin_form(&bare).unwrap(), "/");
    }
}
