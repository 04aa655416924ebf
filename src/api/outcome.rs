//! What one attempt came to, and whether trying again is safe.
//!
//! The classification follows one question: could the API have carried out
//! the batch? A batch with creates is not idempotent and the API has no
//! idempotency key, so anything that may have applied is never re-sent
//! automatically, and the engine is told so.

use crate::api::retry_after::parse_retry_after;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Who a failure is attributed to; mirrors the WIT `task-error` cases that
/// carry a call failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The host refused the destination; nothing was sent, and trying
    /// again without changing the host's allow-list is futile.
    Denied,
    /// Connecting, sending or receiving failed; whether the request left
    /// decides `may_have_applied`.
    Transport,
    /// The API answered with an error status or with `success: false`.
    Api,
    /// A 2xx whose body is not a Cloudflare envelope, could not be read,
    /// or ran past `max_response_bytes`: the batch may have been applied.
    BadResponse,
    /// Nothing was sent: an earlier attempt of the task may have applied
    /// the batch, and reading the account first could not tell.
    Unconfirmed,
}

impl FailureKind {
    /// The contract's `kind` of a call failure.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Denied => "denied",
            FailureKind::Transport => "transport",
            FailureKind::Api => "api",
            FailureKind::BadResponse => "bad_response",
            FailureKind::Unconfirmed => "unconfirmed",
        }
    }
}

/// One entry of the API's `errors`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The API's error code (Cloudflare's are 1000 or more); `None` when the
    /// entry had none, or one that is not an integer or does not fit in an
    /// `i32`.
    pub code: Option<i32>,
    /// The API's own text, as sent; empty when the entry had none.
    pub message: String,
    /// `source.pointer`: a JSON Pointer into the request body that names
    /// the item at fault, when the API gave one.
    pub pointer: Option<String>,
    /// A link to the API's documentation of the error, when it gave one.
    pub documentation_url: Option<String>,
}

/// What reading the account back made of a failure; mirrors the WIT
/// `verification` enum. A verified success is no failure, so it has no
/// case here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verification {
    /// The failure cannot have applied the batch: nothing to check.
    #[default]
    NotNeeded,
    /// The config switched verification off.
    SwitchedOff,
    /// No verdict: a read failed, was rate-limited, or had no time.
    Incomplete,
    /// Two reads a few seconds apart showed none of the batch's effects.
    NotVisible,
    /// Some effects visible and others not, or none that can be told
    /// apart from the state before the batch.
    Undetermined,
}

/// A failed task, with what an engine needs to decide what to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Who the failure is attributed to; selects the WIT `task-error` case.
    pub kind: FailureKind,
    /// One sentence for a person, with the API's first error when it gave
    /// one (cut to 300 characters). Callers match on `kind` and the flags,
    /// never on this text.
    pub message: String,
    /// Trying the same task again later may succeed. Not on its own a
    /// licence to re-send: see `may_have_applied` and
    /// [`Failure::auto_retryable`].
    pub retryable: bool,
    /// The API may have carried out the batch. The API has no idempotency
    /// key, so a batch with creates sent again could apply twice.
    pub may_have_applied: bool,
    /// The HTTP status, when a response arrived; for
    /// [`FailureKind::Unconfirmed`], the status of the read that failed.
    pub status: Option<u16>,
    /// How long to wait before trying again, in milliseconds: from
    /// `Retry-After` (seconds or an HTTP date), or the wait the task did not
    /// take because it would have passed `timeout_ms`.
    pub retry_after_ms: Option<u64>,
    /// The entries of the API's `errors`, in the order sent; empty when
    /// there was no envelope.
    pub api_errors: Vec<ApiError>,
    /// Batch requests that left, retries included: a try that failed
    /// before the request left, a destination the host refused and reads
    /// of the account are not counted. Set by the sender: the
    /// classification leaves it 0.
    pub attempts: u32,
    /// What reading the account back showed, for a failure that may have
    /// applied.
    pub verification: Verification,
    /// Set by the sender exactly when `may_have_applied`: milliseconds since
    /// the Unix epoch, taken before the batch first left (or the earlier
    /// attempt's start, for a task run again). The moment from which a run
    /// again must read the account; an earlier moment is the safe error.
    pub first_sent_unix_ms: Option<u64>,
    /// Requests that left during the whole task, batches and reads of the
    /// account alike: what it spent of the API's rate budget. Set where the
    /// task's transport is counted; the classification leaves it 0.
    pub api_calls: u32,
}

impl Failure {
    fn new(kind: FailureKind, message: String, retryable: bool, may_have_applied: bool) -> Self {
        Failure {
            kind,
            message,
            retryable,
            may_have_applied,
            status: None,
            retry_after_ms: None,
            api_errors: Vec::new(),
            attempts: 0,
            verification: Verification::NotNeeded,
            first_sent_unix_ms: None,
            api_calls: 0,
        }
    }

    /// Safe to send again without asking anyone.
    pub fn auto_retryable(&self) -> bool {
        self.retryable && !self.may_have_applied
    }

    /// Marks a failure that may have applied with the moment a run again
    /// must read the account from, and tells the reader how to run it
    /// again safely. Leaves any other failure as it is.
    pub fn note_first_sent(&mut self, first_sent_unix_ms: u64) {
        if !self.may_have_applied || self.first_sent_unix_ms.is_some() {
            return;
        }
        self.first_sent_unix_ms = Some(first_sent_unix_ms);
        self.message.push_str(&format!(
            "; to run it again safely, run it as a task run again from {} (first_sent_unix_ms {first_sent_unix_ms}), which reads the account before sending",
            crate::api::retry_after::format_rfc3339_ms(first_sent_unix_ms)
        ));
    }
}

/// Why no response arrived. The boundary module maps the host's error codes
/// onto these, by whether the request can have reached the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransportFault {
    /// The host refused the destination; nothing was sent.
    Denied,
    /// Failed before the request left (DNS, refused, TLS, connect timeout).
    BeforeSend(String),
    /// Failed after the request may have left (reset, read timeout).
    AfterSend(String),
    /// The host could not send this request at all; trying again is futile.
    Unsendable(String),
    /// The host held the request back to keep within the API's rate limit
    /// (its rate gate, shared by every task of the process): nothing was
    /// sent, and the host asks for this wait first.
    HeldBack {
        /// Milliseconds to wait before trying again.
        wait_ms: u64,
    },
}

/// How a host says it held a request back (`HeldBack`): wasi:http has no
/// error code that carries a wait, so the host answers `internal-error`
/// with this text followed by the wait in milliseconds, such as
/// `"rate gate: held back; retry after 1500 ms"`. The contract
/// (docs/task-contract.md) documents it for every host.
pub const HELD_BACK_PREFIX: &str = "rate gate: held back; retry after ";

/// The wait in a host's `internal-error` text, when the text is a
/// held-back answer ([`HELD_BACK_PREFIX`], a number, ` ms`).
pub fn held_back_wait(detail: &str) -> Option<u64> {
    detail
        .strip_prefix(HELD_BACK_PREFIX)?
        .strip_suffix(" ms")?
        .parse()
        .ok()
}

impl TransportFault {
    /// Whether the request left before the fault: what a failure's
    /// `attempts` counts.
    pub fn request_left(&self) -> bool {
        matches!(self, TransportFault::AfterSend(_))
    }
}

/// What a request to `url` that got no response comes to: as
/// [`classify_fault`] says, with a refused destination named, so that a
/// person sees what to allow.
pub fn classify_request_fault(fault: &TransportFault, url: &str) -> Failure {
    let mut failure = classify_fault(fault);
    if *fault == TransportFault::Denied {
        failure.message = format!(
            "the host refused to connect to {}; nothing was sent (allow that destination in the host's configuration)",
            origin(url)
        );
    }
    failure
}

/// `scheme://host[:port]` of a URL: where a request goes, without its path
/// and query. The base URL was checked to hold no userinfo.
fn origin(url: &str) -> &str {
    let host_from = url.find("://").map_or(0, |i| i + 3);
    let host_len = url[host_from..]
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - host_from);
    &url[..host_from + host_len]
}

/// What a request that got no response comes to. Only
/// [`TransportFault::AfterSend`] may have applied the batch; `BeforeSend`
/// is retryable and safe to send again, `Denied` and `Unsendable` are final.
/// `status` is `None` and `attempts` is 0: the caller counts the attempts.
pub fn classify_fault(fault: &TransportFault) -> Failure {
    match fault {
        TransportFault::Denied => Failure::new(
            FailureKind::Denied,
            "the host refused to connect to this destination; nothing was sent (allow the API's host in the host's configuration)".into(),
            false,
            false,
        ),
        TransportFault::BeforeSend(detail) => Failure::new(
            FailureKind::Transport,
            format!("could not reach the API ({detail}); nothing was sent"),
            true,
            false,
        ),
        TransportFault::AfterSend(detail) => Failure::new(
            FailureKind::Transport,
            format!("the request was sent but no complete response arrived ({detail}); the batch may have been applied"),
            true,
            true,
        ),
        TransportFault::Unsendable(detail) => Failure::new(
            FailureKind::Transport,
            format!("the host could not send the request ({detail}); nothing was sent"),
            false,
            false,
        ),
        TransportFault::HeldBack { wait_ms } => {
            let mut failure = Failure::new(
                FailureKind::Transport,
                format!("the host held the request back for {wait_ms} ms to keep within the API's rate limit, which its tasks share; nothing was sent"),
                true,
                false,
            );
            failure.retry_after_ms = Some(*wait_ms);
            failure
        }
    }
}

/// A response as read from the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The first `Retry-After` header's value as sent, when there was one
    /// and it is UTF-8; [`classify_response`] reads it.
    pub retry_after: Option<String>,
    /// The body as read: at most `max_response_bytes` bytes, and only what
    /// arrived before a read error.
    pub body: Vec<u8>,
    /// The body went on past `max_response_bytes` and was not read further.
    pub truncated: bool,
    /// Reading the body failed after the status arrived (reset, deadline):
    /// the status still decides the classification.
    pub body_error: Option<String>,
}

/// A successful call: the API's `result`, `messages` and `errors`,
/// untouched. A 2xx with `success: true` may still carry `errors`; they are
/// the API's word to the user and are passed on, never dropped.
#[derive(Debug)]
pub struct Success {
    /// The 2xx status the API answered with.
    pub status: u16,
    /// `None` when the API sent no `result` (or `null`).
    pub result: Option<Box<RawValue>>,
    /// `None` when the API sent no `messages` list.
    pub messages: Option<Box<RawValue>>,
    /// `None` when the API sent no `errors` list.
    pub errors: Option<Box<RawValue>>,
    /// A list's paging (`page`, `per_page`, `count`, `total_count`); `None`
    /// when absent, as in a batch's answer.
    pub result_info: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    success: bool,
    /// Kept as text so that a success can relay it verbatim; read entry by
    /// entry with [`Envelope::errors`].
    #[serde(borrow, default)]
    errors: Option<&'a RawValue>,
    #[serde(borrow, default)]
    messages: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result_info: Option<&'a RawValue>,
}

impl<'a> Envelope<'a> {
    /// What a success passes on verbatim: `result`, and `messages` and
    /// `errors` when they are lists.
    fn relayed(&self) -> impl Iterator<Item = &'a RawValue> {
        self.result
            .into_iter()
            .chain(list(self.messages))
            .chain(list(self.errors))
    }

    /// The entries of `errors`; `None` when it is there but is not a list
    /// of error objects, which makes the body no envelope.
    fn errors(&self) -> Option<Vec<WireError>> {
        match self.errors {
            None => Some(Vec::new()),
            Some(raw) if raw.get() == "null" => Some(Vec::new()),
            Some(raw) => serde_json::from_str(raw.get()).ok(),
        }
    }
}

/// `raw` when it is a JSON array.
fn list(raw: Option<&RawValue>) -> Option<&RawValue> {
    raw.filter(|m| m.get().starts_with('['))
}

/// Whether `raw` also parses value by value: numbers decoded (in range of
/// an `f64`) and strings decoded (no lone surrogates), nothing kept.
fn reads_back(raw: &RawValue) -> bool {
    serde_json::from_str::<Decoded>(raw.get()).is_ok()
}

/// Any JSON value, decoded and dropped.
struct Decoded;

impl<'de> Deserialize<'de> for Decoded {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Decoded)
    }
}

impl<'de> serde::de::Visitor<'de> for Decoded {
    type Value = Decoded;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_str<E>(self, _: &str) -> Result<Decoded, E> {
        Ok(Decoded)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Decoded, A::Error> {
        while seq.next_element::<Decoded>()?.is_some() {}
        Ok(Decoded)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Decoded, A::Error> {
        while map.next_entry::<Decoded, Decoded>()?.is_some() {}
        Ok(Decoded)
    }
}

#[derive(Deserialize)]
struct WireError {
    #[serde(default)]
    code: Option<serde_json::Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    documentation_url: Option<String>,
    #[serde(default)]
    source: Option<WireSource>,
}

#[derive(Deserialize)]
struct WireSource {
    #[serde(default)]
    pointer: Option<String>,
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError {
            code: e
                .code
                .as_ref()
                .and_then(serde_json::Value::as_i64)
                .and_then(|c| i32::try_from(c).ok()),
            message: e.message.unwrap_or_default(),
            pointer: e.source.and_then(|s| s.pointer),
            documentation_url: e.documentation_url,
        }
    }
}

/// Classifies a response; `now_unix_ms` turns an HTTP-date `Retry-After`
/// into a wait.
pub fn classify_response(response: &RawResponse, now_unix_ms: u64) -> Result<Success, Failure> {
    let status = response.status;
    let retry_after_ms = response
        .retry_after
        .as_deref()
        .and_then(|v| parse_retry_after(v, now_unix_ms));
    let envelope = if response.truncated || response.body_error.is_some() {
        None
    } else {
        // One deserializer instance (over `str`) serves every parse in the
        // component; a body that is not UTF-8 is not an envelope anyway.
        std::str::from_utf8(&response.body)
            .ok()
            .and_then(|text| serde_json::from_str::<Envelope<'_>>(text).ok())
            .and_then(|env| env.errors().map(|errors| (env, errors)))
            // `RawValue` checks only the syntax: a number beyond an `f64` or
            // a lone surrogate escape in what a success relays would leave
            // the output unreadable to a JSON parser, so it is no envelope.
            .filter(|(env, _)| !env.success || env.relayed().all(reads_back))
    };

    let mut failure = match (status, envelope) {
        (200..=299, Some((env, _))) if env.success => {
            return Ok(Success {
                status,
                result: env.result.map(ToOwned::to_owned),
                messages: list(env.messages).map(ToOwned::to_owned),
                errors: list(env.errors).map(ToOwned::to_owned),
                result_info: env.result_info.map(ToOwned::to_owned),
            });
        }
        (200..=299, Some((_, errors))) => {
            let mut f = Failure::new(
                FailureKind::Api,
                api_message(status, &errors, "the API answered success: false"),
                false,
                false,
            );
            f.api_errors = errors.into_iter().map(ApiError::from).collect();
            f
        }
        (200..=299, None) => Failure::new(
            FailureKind::BadResponse,
            if let Some(detail) = &response.body_error {
                format!(
                    "the API answered {status} but its body could not be read ({detail}); the batch may have been applied"
                )
            } else if response.truncated {
                format!(
                    "the API answered {status} with a body larger than max_response_bytes; it was not read in full, and the batch may have been applied"
                )
            } else {
                format!(
                    "the API answered {status} but the body is not a Cloudflare API envelope; the batch may have been applied"
                )
            },
            false,
            true,
        ),
        (_, envelope) => {
            let errors = envelope.map(|(_, errors)| errors).unwrap_or_default();
            let (retryable, may_have_applied, fallback) = match status {
                408 => (
                    true,
                    false,
                    "the API timed out waiting for the request (408); nothing was applied",
                ),
                429 => (
                    true,
                    false,
                    "rate limited by the API (429); nothing was applied",
                ),
                500..=599 => (
                    true,
                    true,
                    "the API or a proxy in front of it failed; the batch may have been applied",
                ),
                _ => (false, false, "the API rejected the request"),
            };
            let mut f = Failure::new(
                FailureKind::Api,
                api_message(status, &errors, fallback),
                retryable,
                may_have_applied,
            );
            f.api_errors = errors.into_iter().map(ApiError::from).collect();
            f
        }
    };
    failure.status = Some(status);
    failure.retry_after_ms = retry_after_ms;
    Err(failure)
}

/// One sentence: the API's first error when it gave one, else `fallback`.
fn api_message(status: u16, errors: &[WireError], fallback: &str) -> String {
    let first = errors
        .iter()
        .find_map(|e| e.message.as_deref().filter(|m| !m.is_empty()));
    match (first, errors.len()) {
        (Some(m), 1) => format!("HTTP {status}: {}", clip(m)),
        (Some(m), 2) => format!("HTTP {status}: {} (and 1 more error)", clip(m)),
        (Some(m), n) => format!("HTTP {status}: {} (and {} more errors)", clip(m), n - 1),
        (None, _) => format!("HTTP {status}: {fallback}"),
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 300;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests;
