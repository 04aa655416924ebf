//! The designer's answers: JSON documents and short texts, each redacted
//! of every secret the process knows on its way out, so that no answer
//! can carry a credential whatever a task or a message quoted.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Value};

use crate::printing::{known_secrets, shown};

pub type Reply = Response<Full<Bytes>>;

/// `body` as JSON, every key and string redacted.
pub fn json(status: u16, body: &Value) -> Reply {
    let text = known_secrets().redact_json(body.to_string());
    with_body(status, "application/json", text.into_bytes())
}

/// A JSON document already written as text, redacted token by token, so
/// its members keep their order.
pub fn json_text(status: u16, text: String) -> Reply {
    let text = known_secrets().redact_json(text);
    with_body(status, "application/json", text.into_bytes())
}

/// `{"error": {"kind", "message"}}`.
pub fn error(status: u16, kind: &str, message: &str) -> Reply {
    json(
        status,
        &json!({ "error": { "kind": kind, "message": message } }),
    )
}

/// A request the API refuses before the component sees it: its status,
/// its `kind`, a message, and the problems of the body, each named by the
/// JSON Pointer of its place in the request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub kind: &'static str,
    pub message: String,
    pub errors: Vec<FieldProblem>,
}

impl Refused {
    pub fn new(status: u16, kind: &'static str, message: impl Into<String>) -> Refused {
        Refused {
            status,
            kind,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    pub fn with_errors(mut self, errors: Vec<FieldProblem>) -> Refused {
        self.errors = errors;
        self
    }

    /// `{"error": {"kind", "message", "errors"}}`.
    pub fn reply(&self) -> Reply {
        let errors: Vec<Value> = self
            .errors
            .iter()
            .map(|p| json!({ "pointer": p.pointer, "message": p.message }))
            .collect();
        json(
            self.status,
            &json!({ "error": { "kind": self.kind, "message": self.message, "errors": errors } }),
        )
    }
}

/// One problem of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub pointer: String,
    pub message: String,
}

impl FieldProblem {
    pub fn new(pointer: &str, message: &str) -> FieldProblem {
        FieldProblem {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

/// A short plain text, redacted.
pub fn text(status: u16, text: &str) -> Reply {
    with_body(
        status,
        "text/plain; charset=utf-8",
        shown(text).into_bytes(),
    )
}

/// A file of the page, as built in.
pub fn file(content_type: &'static str, bytes: &'static [u8]) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from_static(bytes)));
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// `303 See Other` to `location`, with `set_cookie` when given.
pub fn see_other(location: &'static str, set_cookie: Option<String>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::new()));
    *reply.status_mut() = StatusCode::SEE_OTHER;
    reply
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(location));
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        reply.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    reply
}

fn with_body(status: u16, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    *reply.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}
