//! The HTTP boundary: the only module that touches wasi:http (and the
//! clocks it needs). It sends one request and reads one response, holding
//! every wait to the task's deadline, and maps the host's error codes onto
//! whether the request can have reached the API.

use crate::api::outcome::{held_back_wait, RawResponse, TransportFault};
use crate::api::request::{self, ApiRequest};
use crate::api::transport::{AttemptLimits, Transport};
use wasi::clocks::{monotonic_clock, wall_clock};
use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::poll::{poll, Pollable};
use wasi::io::streams::{InputStream, OutputStream, StreamError};

const NS_PER_MS: u64 = 1_000_000;
/// The most a single read asks the host for.
const READ_CHUNK: u64 = 64 * 1024;

/// [`Transport`] over the host's wasi:http.
pub struct WasiTransport {
    entropy: u64,
}

impl WasiTransport {
    pub fn new() -> Self {
        WasiTransport {
            entropy: monotonic_clock::now() ^ wall_clock::now().nanoseconds as u64,
        }
    }
}

impl Transport for WasiTransport {
    fn monotonic_ms(&mut self) -> u64 {
        monotonic_clock::now() / NS_PER_MS
    }

    fn unix_ms(&mut self) -> u64 {
        let now = wall_clock::now();
        now.seconds.saturating_mul(1000) + u64::from(now.nanoseconds) / NS_PER_MS
    }

    fn sleep_ms(&mut self, ms: u64) {
        monotonic_clock::subscribe_duration(ms.saturating_mul(NS_PER_MS)).block();
    }

    /// splitmix64 over a clock-seeded state: jitter needs spread, not secrecy.
    fn entropy(&mut self) -> u64 {
        self.entropy = self.entropy.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.entropy;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn send(
        &mut self,
        request: &ApiRequest,
        limits: &AttemptLimits,
    ) -> Result<RawResponse, TransportFault> {
        let deadline =
            monotonic_clock::subscribe_instant(limits.deadline_ms.saturating_mul(NS_PER_MS));
        let outgoing = outgoing_request(request)?;
        let body = outgoing.body().map_err(|()| {
            TransportFault::Unsendable("the request body was already taken".into())
        })?;
        let future = outgoing_handler::handle(outgoing, Some(request_options(limits)))
            .map_err(|e| fault(&e))?;
        let answered = future.subscribe();

        let written = body
            .write()
            .map_err(|()| {
                TransportFault::Unsendable("the request body stream was already taken".into())
            })
            .and_then(|stream| {
                let result = write_all(&stream, request.body.as_bytes(), &deadline, &answered);
                drop(stream);
                result
            });
        drop(answered);
        if written.is_err() {
            // The host reports why a write failed (a refused destination,
            // say) on the response future, not on the stream. A server may
            // also answer before taking the whole body (413, 401): its
            // status, not the unfinished upload, says what happened.
            return match wait_response(&future, &deadline) {
                Ok(response) => read_response(response, limits.max_response_bytes, &deadline),
                Err(f) => Err(f),
            };
        }
        OutgoingBody::finish(body, None).map_err(|e| fault(&e))?;

        let response = wait_response(&future, &deadline)?;
        read_response(response, limits.max_response_bytes, &deadline)
    }
}

fn outgoing_request(request: &ApiRequest) -> Result<OutgoingRequest, TransportFault> {
    let unsendable = |what: &str| TransportFault::Unsendable(what.to_string());
    let (scheme, rest) = request
        .url
        .split_once("://")
        .ok_or_else(|| unsendable("the URL has no scheme"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));

    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.as_bytes().to_vec()))
        .collect();
    // Framing, not content: lets the host send the body with a length
    // instead of chunked encoding, and check that all of it was written.
    // A read has no body, and says nothing about one.
    if request.method == request::Method::Post {
        entries.push((
            "content-length".into(),
            request.body.len().to_string().into_bytes(),
        ));
    }
    let headers =
        Fields::from_list(&entries).map_err(|_| unsendable("the host refused a request header"))?;

    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        request::Method::Get => Method::Get,
        request::Method::Post => Method::Post,
    };
    let scheme = if scheme == "http" {
        Scheme::Http
    } else {
        Scheme::Https
    };
    outgoing
        .set_method(&method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(path)))
        .map_err(|()| unsendable("the host refused the request line"))?;
    Ok(outgoing)
}

/// Every timeout set explicitly: a host's defaults can be ten minutes.
fn request_options(limits: &AttemptLimits) -> RequestOptions {
    let options = RequestOptions::new();
    // A host that cannot honour a timeout says so here; the deadline
    // pollables below still hold every wait to the task's deadline.
    let _ = options.set_connect_timeout(Some(limits.connect_timeout_ms.saturating_mul(NS_PER_MS)));
    let _ = options
        .set_first_byte_timeout(Some(limits.first_byte_timeout_ms.saturating_mul(NS_PER_MS)));
    let _ = options.set_between_bytes_timeout(Some(
        limits.between_bytes_timeout_ms.saturating_mul(NS_PER_MS),
    ));
    options
}

/// Blocks until `ready` or the deadline; false when the deadline came first.
fn wait(ready: &Pollable, deadline: &Pollable) -> bool {
    poll(&[ready, deadline]).contains(&0)
}

fn past_deadline(what: &str) -> TransportFault {
    TransportFault::AfterSend(format!("timeout_ms passed while {what}"))
}

/// Waits for room in the body stream; fails at the deadline, or when a
/// response came before the body was all sent (the server will not read
/// the rest).
fn wait_for_room(
    writable: &Pollable,
    deadline: &Pollable,
    answered: &Pollable,
) -> Result<(), TransportFault> {
    let ready = poll(&[writable, deadline, answered]);
    if ready.contains(&2) {
        Err(TransportFault::AfterSend(
            "the server answered before the whole body was sent".into(),
        ))
    } else if ready.contains(&0) {
        Ok(())
    } else {
        Err(past_deadline("sending the body"))
    }
}

fn write_all(
    stream: &OutputStream,
    mut bytes: &[u8],
    deadline: &Pollable,
    answered: &Pollable,
) -> Result<(), TransportFault> {
    let write_failed = |e: StreamError| match e {
        StreamError::LastOperationFailed(e) => {
            TransportFault::AfterSend(format!("sending the body failed: {}", e.to_debug_string()))
        }
        StreamError::Closed => {
            TransportFault::AfterSend("the connection closed while sending the body".into())
        }
    };
    let pollable = stream.subscribe();
    while !bytes.is_empty() {
        let permitted = stream.check_write().map_err(write_failed)?;
        if permitted == 0 {
            wait_for_room(&pollable, deadline, answered)?;
            continue;
        }
        let n = bytes
            .len()
            .min(usize::try_from(permitted).unwrap_or(usize::MAX));
        stream.write(&bytes[..n]).map_err(write_failed)?;
        bytes = &bytes[n..];
    }
    // Once the declared length is reached the host may close the stream:
    // the whole body has been handed over, so that is not a failure (a real
    // one shows up on the response future). There is no waiting for the
    // host to take the last piece: what was written is delivered before
    // the body's end, and a failure to send it surfaces on the response
    // future as well.
    match stream.flush() {
        Ok(()) | Err(StreamError::Closed) => Ok(()),
        Err(e) => Err(write_failed(e)),
    }
}

fn wait_response(
    future: &FutureIncomingResponse,
    deadline: &Pollable,
) -> Result<IncomingResponse, TransportFault> {
    let pollable = future.subscribe();
    loop {
        match future.get() {
            Some(Ok(Ok(response))) => return Ok(response),
            // The host's first-byte timeout is what remained of the
            // deadline, so it fires as the deadline passes, a moment before
            // or after the deadline's own pollable. Whichever wins, the
            // deadline is the reason, and every host says so alike.
            Some(Ok(Err(code))) if is_timeout(&code) && deadline.ready() => {
                return Err(past_deadline("waiting for the response"))
            }
            Some(Ok(Err(code))) => return Err(fault(&code)),
            Some(Err(())) => {
                return Err(TransportFault::AfterSend(
                    "the response was already taken".into(),
                ))
            }
            None => {
                if !wait(&pollable, deadline) {
                    return Err(past_deadline("waiting for the response"));
                }
            }
        }
    }
}

fn read_response(
    response: IncomingResponse,
    max_bytes: u64,
    deadline: &Pollable,
) -> Result<RawResponse, TransportFault> {
    let status = response.status();
    let headers = response.headers();
    let retry_after = headers
        .get("retry-after")
        .into_iter()
        .next()
        .and_then(|v| String::from_utf8(v).ok());
    let declared_length = headers
        .get("content-length")
        .into_iter()
        .next()
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse::<u64>().ok());
    drop(headers);

    let mut raw = RawResponse {
        body_error: None,
        status,
        retry_after,
        body: Vec::new(),
        truncated: false,
    };
    if declared_length.is_some_and(|n| n > max_bytes) {
        raw.truncated = true;
        return Ok(raw);
    }
    // Once the status is here, a body that cannot be read is reported with
    // it: the status, not the broken body, decides what the failure means.
    let Ok(incoming) = response.consume() else {
        raw.body_error = Some("the response body was already taken".into());
        return Ok(raw);
    };
    let Ok(stream) = incoming.stream() else {
        raw.body_error = Some("the response body stream was already taken".into());
        return Ok(raw);
    };
    raw.body_error = read_body(&stream, max_bytes, deadline, &mut raw).err();
    drop(stream);
    drop(incoming);
    Ok(raw)
}

/// Reads until the end of the body, or one byte past `max_bytes`.
fn read_body(
    stream: &InputStream,
    max_bytes: u64,
    deadline: &Pollable,
    raw: &mut RawResponse,
) -> Result<(), String> {
    raw.body
        .reserve(usize::try_from(max_bytes.min(READ_CHUNK)).unwrap_or(0));
    let pollable = stream.subscribe();
    loop {
        let wanted = (max_bytes + 1 - raw.body.len() as u64).min(READ_CHUNK);
        match stream.read(wanted) {
            Ok(chunk) if chunk.is_empty() => {
                if !wait(&pollable, deadline) {
                    return Err("timeout_ms passed while reading it".into());
                }
            }
            Ok(chunk) => {
                raw.body.extend_from_slice(&chunk);
                if raw.body.len() as u64 > max_bytes {
                    raw.body.truncate(max_bytes as usize);
                    raw.truncated = true;
                    return Ok(());
                }
            }
            Err(StreamError::Closed) => return Ok(()),
            Err(StreamError::LastOperationFailed(e)) => {
                let detail = match wasi::http::types::http_error_code(&e) {
                    // As in wait_response: at the deadline, the deadline.
                    Some(code) if is_timeout(&code) && deadline.ready() => {
                        "timeout_ms passed while reading it".to_string()
                    }
                    Some(code) => describe(&code),
                    None => e.to_debug_string(),
                };
                return Err(detail);
            }
        }
    }
}

/// A host's timeout after the request went out: each is set from what
/// remains of the deadline.
fn is_timeout(code: &ErrorCode) -> bool {
    use ErrorCode as E;
    matches!(
        code,
        E::ConnectionReadTimeout | E::ConnectionWriteTimeout | E::HttpResponseTimeout
    )
}

/// Sorts a host error by whether the request can have reached the API.
fn fault(code: &ErrorCode) -> TransportFault {
    use ErrorCode as E;
    // The host's rate gate held the request back: nothing left.
    if let E::InternalError(Some(text)) = code {
        if let Some(wait_ms) = held_back_wait(text) {
            return TransportFault::HeldBack { wait_ms };
        }
    }
    let detail = describe(code);
    match code {
        E::HttpRequestDenied => TransportFault::Denied,
        E::DnsTimeout
        | E::DnsError(_)
        | E::DestinationNotFound
        | E::DestinationUnavailable
        | E::DestinationIpProhibited
        | E::DestinationIpUnroutable
        | E::ConnectionRefused
        | E::ConnectionTimeout
        | E::ConnectionLimitReached
        | E::TlsProtocolError
        | E::TlsCertificateError
        | E::TlsAlertReceived(_) => TransportFault::BeforeSend(detail),
        E::HttpRequestLengthRequired
        | E::HttpRequestBodySize(_)
        | E::HttpRequestMethodInvalid
        | E::HttpRequestUriInvalid
        | E::HttpRequestUriTooLong
        | E::HttpRequestHeaderSectionSize(_)
        | E::HttpRequestHeaderSize(_)
        | E::HttpRequestTrailerSectionSize(_)
        | E::HttpRequestTrailerSize(_)
        | E::ConfigurationError => TransportFault::Unsendable(detail),
        _ => TransportFault::AfterSend(detail),
    }
}

/// The host's error in words. Nothing here can carry a credential: the
/// host's messages describe connections, not request headers.
fn describe(code: &ErrorCode) -> String {
    use ErrorCode as E;
    let text = match code {
        E::DnsTimeout => "DNS lookup timed out",
        E::DnsError(_) => "DNS lookup failed",
        E::DestinationNotFound => "host not found",
        E::DestinationUnavailable => "destination unavailable",
        E::DestinationIpProhibited => "destination address prohibited",
        E::DestinationIpUnroutable => "destination address unroutable",
        E::ConnectionRefused => "connection refused",
        E::ConnectionTerminated => "connection closed by the server",
        E::ConnectionTimeout => "connect timed out",
        E::ConnectionReadTimeout => "timed out waiting for the server",
        E::ConnectionWriteTimeout => "timed out sending to the server",
        E::ConnectionLimitReached => "connection limit reached",
        E::TlsProtocolError => "TLS protocol error",
        E::TlsCertificateError => "TLS certificate error",
        E::TlsAlertReceived(_) => "TLS alert received",
        E::HttpRequestDenied => "request denied by the host",
        E::HttpResponseIncomplete => "incomplete response",
        E::HttpResponseTimeout => "response timed out",
        E::HttpProtocolError => "HTTP protocol error",
        E::InternalError(Some(detail)) => {
            return format!(
                "host error: {}",
                detail.chars().take(200).collect::<String>()
            )
        }
        E::InternalError(None) => "host error",
        E::HttpRequestLengthRequired => "the host requires a request length",
        E::HttpRequestBodySize(_) => "request body size rejected by the host",
        E::HttpRequestMethodInvalid => "request method rejected by the host",
        E::HttpRequestUriInvalid => "request URL rejected by the host",
        E::HttpRequestUriTooLong => "request URL too long",
        E::HttpRequestHeaderSectionSize(_) | E::HttpRequestHeaderSize(_) => {
            "request headers too large"
        }
        E::HttpRequestTrailerSectionSize(_) | E::HttpRequestTrailerSize(_) => {
            "request trailers too large"
        }
        E::HttpResponseHeaderSectionSize(_) | E::HttpResponseHeaderSize(_) => {
            "response headers too large"
        }
        E::HttpResponseBodySize(_) => "response body too large",
        E::HttpResponseTrailerSectionSize(_) | E::HttpResponseTrailerSize(_) => {
            "response trailers too large"
        }
        E::HttpResponseTransferCoding(_) => "unsupported response transfer coding",
        E::HttpResponseContentCoding(_) => "unsupported response content coding",
        E::HttpUpgradeFailed => "HTTP upgrade failed",
        E::LoopDetected => "request loop detected",
        E::ConfigurationError => "host configuration error",
    };
    text.to_string()
}
