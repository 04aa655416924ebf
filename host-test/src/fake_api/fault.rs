//! Faults: how the fake misbehaves on the next requests instead of (or
//! before) answering them, as tests queue them in process or as JSON
//! through `POST /__fake/faults`, and the answer a queued status gives.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use super::code;
use super::envelope::{envelope, failure, pointer, ApiError, Reply};

/// A delay longer than any task's deadline only ties up a connection.
pub(super) const MAX_DELAY: Duration = Duration::from_secs(600);

/// How the fake answers the next batch request instead of (or before)
/// handling it. Faults are used up one per batch request, in queue order;
/// other routes leave the queue alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status, these headers and this body verbatim; the
    /// batch is not applied. Without a `content-type` header one is chosen
    /// from the body (JSON, HTML or plain text).
    Status {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Wait, then handle the request normally. The batch is applied even if
    /// the client has given up and gone by then, as a real server would.
    Delay(Duration),
    /// Read the request, then close the connection with a TCP reset and no
    /// answer; the batch is not applied.
    Reset,
    /// Handle the request (apply the batch), then answer as the inner fault
    /// says instead of with the result: a status such as a proxy's 502, a
    /// reset, or a delay before the real answer. What a client sees then
    /// says nothing of whether the batch was applied; it was.
    AfterApplying(Box<Fault>),
}

impl Fault {
    /// A canned error with Cloudflare's envelope, code
    /// [`code::CANNED_BASE`]` + status`.
    pub fn status(status: u16, headers: Vec<(String, String)>) -> Fault {
        Fault::Status {
            status,
            headers,
            body: canned_envelope(status),
        }
    }
}

/// `[{"status", "headers"?, "body"?}, {"delay_ms"}, {"reset": true}]`, all
/// or nothing.
pub(super) fn parse_faults(value: &Value) -> Result<Vec<Fault>, Vec<ApiError>> {
    let Value::Array(items) = value else {
        return Err(vec![ApiError::at(
            code::INVALID_FAULT,
            "expected an array of faults",
            "",
        )]);
    };
    let mut faults = Vec::new();
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match parse_fault(item, &format!("/{i}")) {
            Ok(fault) => faults.push(fault),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(faults)
    } else {
        Err(errors)
    }
}

fn parse_fault(item: &Value, at: &str) -> Result<Fault, ApiError> {
    let invalid =
        |message: &str, pointer: String| ApiError::at(code::INVALID_FAULT, message, pointer);
    let Value::Object(fields) = item else {
        return Err(invalid(
            "expected {\"status\"}, {\"delay_ms\"} or {\"reset\": true}",
            at.to_string(),
        ));
    };
    let allowed: &[&str] = if fields.contains_key("status") {
        &["status", "headers", "body", "after_applying"]
    } else if fields.contains_key("delay_ms") {
        &["delay_ms", "after_applying"]
    } else if fields.contains_key("reset") {
        &["reset", "after_applying"]
    } else {
        return Err(invalid(
            "expected {\"status\"}, {\"delay_ms\"} or {\"reset\": true}",
            at.to_string(),
        ));
    };
    if let Some(extra) = fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid("unknown field", pointer(at, extra)));
    }
    match fields.get("after_applying") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            let mut inner = fields.clone();
            inner.remove("after_applying");
            let then = parse_fault(&Value::Object(inner), at)?;
            return Ok(Fault::AfterApplying(Box::new(then)));
        }
        Some(_) => return Err(invalid("must be a boolean", pointer(at, "after_applying"))),
    }
    if let Some(reset) = fields.get("reset") {
        return match reset {
            Value::Bool(true) => Ok(Fault::Reset),
            _ => Err(invalid("must be true", pointer(at, "reset"))),
        };
    }
    if let Some(delay) = fields.get("delay_ms") {
        return match delay.as_u64() {
            Some(ms) if Duration::from_millis(ms) <= MAX_DELAY => {
                Ok(Fault::Delay(Duration::from_millis(ms)))
            }
            _ => Err(invalid(
                "must be an integer number of milliseconds from 0 to 600000",
                pointer(at, "delay_ms"),
            )),
        };
    }
    let status = fields
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| {
            invalid(
                "must be an HTTP status from 200 to 599",
                pointer(at, "status"),
            )
        })?;
    let mut headers = Vec::new();
    match fields.get("headers") {
        None => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let value = value
                    .as_str()
                    .filter(|v| HeaderValue::from_str(v).is_ok())
                    .ok_or_else(|| {
                        invalid(
                            "must be a string usable as a header value",
                            pointer(&pointer(at, "headers"), name),
                        )
                    })?;
                if HeaderName::from_bytes(name.as_bytes()).is_err() {
                    return Err(invalid(
                        "not a valid header name",
                        pointer(&pointer(at, "headers"), name),
                    ));
                }
                headers.push((name.clone(), value.to_string()));
            }
        }
        Some(_) => {
            return Err(invalid(
                "must be an object of header names to values",
                pointer(at, "headers"),
            ))
        }
    }
    let body = match fields.get("body") {
        None => canned_envelope(status),
        Some(Value::String(body)) => body.clone(),
        Some(_) => return Err(invalid("must be a string", pointer(at, "body"))),
    };
    Ok(Fault::Status {
        status,
        headers,
        body,
    })
}

fn canned_envelope(status: u16) -> String {
    let message = StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Canned error");
    envelope(
        false,
        vec![ApiError::new(
            code::CANNED_BASE + u32::from(status),
            message,
        )],
        Value::Null,
        None,
    )
    .to_string()
}

pub(super) fn canned(status: u16, headers: &[(String, String)], body: String) -> Reply {
    let Ok(status) = StatusCode::from_u16(status) else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            vec![ApiError::new(
                code::INVALID_FAULT,
                format!("the queued fault's status {status} is not an HTTP status"),
            )],
        );
    };
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            _ => {
                return failure(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    vec![ApiError::new(
                        code::INVALID_FAULT,
                        format!("the queued fault's header {name:?} is not a valid header"),
                    )],
                )
            }
        }
    }
    if !map.contains_key(header::CONTENT_TYPE) {
        let kind = if serde_json::from_str::<Value>(&body).is_ok() {
            "application/json"
        } else if body.trim_start().starts_with('<') {
            "text/html; charset=utf-8"
        } else {
            "text/plain; charset=utf-8"
        };
        map.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = status;
    *reply.headers_mut() = map;
    reply
}
