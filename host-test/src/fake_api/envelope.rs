//! Cloudflare's v4 envelope: `success`, `errors`, `messages`, `result`,
//! and the answers built from it.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::{json, Map, Value};

use super::code;

/// An answer of the fake, its body whole.
pub(super) type Reply = Response<Full<Bytes>>;

/// One entry of the envelope's `errors`.
pub(super) struct ApiError {
    pub(super) code: u32,
    pub(super) message: String,
    pub(super) pointer: Option<String>,
    pub(super) parameter: Option<&'static str>,
}

impl ApiError {
    pub(super) fn new(code: u32, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            pointer: None,
            parameter: None,
        }
    }

    pub(super) fn at(
        code: u32,
        message: impl Into<String>,
        pointer: impl Into<String>,
    ) -> ApiError {
        ApiError {
            pointer: Some(pointer.into()),
            ..ApiError::new(code, message)
        }
    }

    pub(super) fn parameter(message: &str, parameter: &'static str) -> ApiError {
        ApiError {
            parameter: Some(parameter),
            ..ApiError::new(code::INVALID_PARAMETER, message)
        }
    }

    pub(super) fn to_json(&self) -> Value {
        let mut entry = Map::new();
        entry.insert("code".into(), self.code.into());
        entry.insert("message".into(), self.message.clone().into());
        let mut source = Map::new();
        if let Some(pointer) = &self.pointer {
            source.insert("pointer".into(), pointer.clone().into());
        }
        if let Some(parameter) = self.parameter {
            source.insert("parameter".into(), parameter.into());
        }
        if !source.is_empty() {
            entry.insert("source".into(), Value::Object(source));
        }
        Value::Object(entry)
    }
}

/// `at` + `/key`, with `~` and `/` in the key escaped as RFC 6901 says.
pub(super) fn pointer(at: &str, key: &str) -> String {
    format!("{at}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(super) fn envelope(
    ok: bool,
    errors: Vec<ApiError>,
    result: Value,
    info: Option<Value>,
) -> Value {
    let mut body = json!({
        "success": ok,
        "errors": errors.iter().map(ApiError::to_json).collect::<Vec<_>>(),
        "messages": [],
        "result": result,
    });
    if let (Some(info), Value::Object(map)) = (info, &mut body) {
        map.insert("result_info".into(), info);
    }
    body
}

pub(super) fn json_reply(status: StatusCode, body: &Value) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_string())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

pub(super) fn success(result: Value, info: Option<Value>) -> Reply {
    json_reply(StatusCode::OK, &envelope(true, Vec::new(), result, info))
}

pub(super) fn failure(status: StatusCode, errors: Vec<ApiError>) -> Reply {
    json_reply(status, &envelope(false, errors, Value::Null, None))
}

pub(super) fn malformed(error: &serde_json::Error) -> Reply {
    failure(
        StatusCode::BAD_REQUEST,
        vec![ApiError::at(
            code::MALFORMED_BODY,
            format!("the body is not valid JSON: {error}"),
            "",
        )],
    )
}

/// The answer to a body larger than `max_bytes`.
pub(super) fn too_large(max_bytes: usize) -> Reply {
    failure(
        StatusCode::PAYLOAD_TOO_LARGE,
        vec![ApiError::new(
            code::BODY_TOO_LARGE,
            format!("the body is larger than {max_bytes} bytes"),
        )],
    )
}

pub(super) fn method_not_allowed(allowed: Method) -> Reply {
    let mut reply = failure(
        StatusCode::METHOD_NOT_ALLOWED,
        vec![ApiError::new(
            code::METHOD_NOT_ALLOWED,
            format!("Method not allowed: this route takes {allowed}"),
        )],
    );
    if let Ok(value) = HeaderValue::from_str(allowed.as_str()) {
        reply.headers_mut().insert(header::ALLOW, value);
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_keys() {
        assert_eq!(pointer("/posts/0", "a/b~c"), "/posts/0/a~1b~0c");
        assert_eq!(pointer("", "extra"), "/extra");
    }
}
