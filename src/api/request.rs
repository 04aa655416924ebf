//! The requests a task sends: the batch, built from checked parameters, and
//! the pages of the policy list that verification reads
//! ([`crate::api::policy_list`]); with the redacted form a preview shows.

use crate::api::policy::BatchBody;
use crate::config::{Config, Credentials};
use serde::Serialize;

/// The `User-Agent` of every request, `allow-policies-batch/<version>`
/// with the crate's version, so that a call can be traced to the build that
/// sent it.
pub const USER_AGENT: &str = concat!("allow-policies-batch/", env!("CARGO_PKG_VERSION"));
/// What a credential reads as wherever a request is shown; the redaction of
/// outputs ([`crate::run::redact`]) puts the same text in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// One request header. Credentials are marked so that every view of the
/// request except the wire shows them as `[redacted]`, `Debug` included.
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// In lower case, as sent; a preview shows it as people write it
    /// (`Content-Type`).
    pub name: &'static str,
    /// The value as sent, a credential in full.
    pub value: String,
    /// A credential: the value is shown as [`REDACTED`] everywhere but on
    /// the wire.
    pub sensitive: bool,
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value: &str = if self.sensitive {
            REDACTED
        } else {
            &self.value
        };
        write!(f, "{}: {}", self.name, value)
    }
}

/// The two methods the task uses: `POST` writes the batch, `GET` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// A read of the account's policies; changes nothing.
    Get,
    /// The batch; the only request that changes the account.
    Post,
}

impl Method {
    /// The method's name as HTTP spells it, in upper case.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request exactly as it goes on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRequest {
    /// `POST` for the batch, `GET` for a read.
    pub method: Method,
    /// The full URL: the config's `base_url`, the path and, for a read, the
    /// query.
    pub url: String,
    /// Every header but `content-length`, which the wasi:http boundary adds
    /// to a `POST` from the body's length.
    pub headers: Vec<Header>,
    /// Serialised JSON; empty for a `GET`.
    pub body: String,
}

/// Builds the request. `account_id` has been checked to be 32 lowercase hex
/// characters, so it cannot change the URL's shape.
pub fn build_request(config: &Config, account_id: &str, body: &BatchBody) -> ApiRequest {
    request_with_body(config, account_id, body_json(body))
}

/// The batch's JSON, as the body carries it.
pub fn body_json(body: &BatchBody) -> String {
    // Plain structs of strings, numbers and booleans always serialise.
    serde_json::to_string(body).unwrap_or_default()
}

/// [`build_request`] around a body already written, by the one-pass reader
/// ([`crate::params::one_pass`]) as it read the input.
pub fn request_with_body(config: &Config, account_id: &str, body: String) -> ApiRequest {
    let url = format!(
        "{}/accounts/{account_id}/email-security/settings/allow_policies/batch",
        config.base_url.as_str()
    );
    let mut headers = vec![plain("content-type", "application/json")];
    headers.extend(common_headers(config));
    ApiRequest {
        method: Method::Post,
        url,
        headers,
        body,
    }
}

/// A `GET` of `url` under the config's base URL, with the same credentials
/// and the same identification as the batch.
pub fn build_read(config: &Config, url: String) -> ApiRequest {
    ApiRequest {
        method: Method::Get,
        url,
        headers: common_headers(config),
        body: String::new(),
    }
}

/// `accept`, `user-agent` and the credentials: what every request carries.
fn common_headers(config: &Config) -> Vec<Header> {
    let mut headers = vec![
        plain("accept", "application/json"),
        plain("user-agent", USER_AGENT),
    ];
    match &config.credentials {
        Credentials::Token(token) => headers.push(Header {
            name: "authorization",
            value: format!("Bearer {}", token.expose()),
            sensitive: true,
        }),
        Credentials::Legacy { email, key } => {
            headers.push(plain("x-auth-email", email));
            headers.push(Header {
                name: "x-auth-key",
                value: key.expose().to_string(),
                sensitive: true,
            });
        }
    }
    headers
}

fn plain(name: &'static str, value: &str) -> Header {
    Header {
        name,
        value: value.to_string(),
        sensitive: false,
    }
}

/// The request as a preview shows it: credentials redacted, body as JSON.
#[derive(Serialize)]
pub struct RequestView<'a> {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The URL as sent.
    pub url: &'a str,
    /// The headers as a JSON object, credentials reading [`REDACTED`].
    pub headers: HeadersView<'a>,
    /// The body as JSON; `None` (shown as `null`) for a `GET` and in
    /// [`ApiRequest::view_without_body`]. It must stay the last field:
    /// [`preview_json`](crate::run::documents::preview_json) puts the body
    /// in at the first `,"body":null}` of the document.
    pub body: Option<&'a serde_json::value::RawValue>,
}

/// The headers as a preview shows them: one JSON object member per header,
/// named as people write it (`Content-Type`), its value [`REDACTED`] when
/// the header is a credential.
pub struct HeadersView<'a>(&'a [Header]);

impl Serialize for HeadersView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for h in self.0 {
            let value: &str = if h.sensitive { REDACTED } else { &h.value };
            map.serialize_entry(display_name(h.name), value)?;
        }
        map.end()
    }
}

/// Header names as people write them; on the wire they are sent lower-case,
/// which HTTP treats the same.
fn display_name(name: &str) -> &str {
    match name {
        "content-type" => "Content-Type",
        "accept" => "Accept",
        "user-agent" => "User-Agent",
        "authorization" => "Authorization",
        "x-auth-email" => "X-Auth-Email",
        "x-auth-key" => "X-Auth-Key",
        other => other,
    }
}

impl ApiRequest {
    /// The request as a preview shows it, with `body` left `None`, for a
    /// writer that copies the body in as it is
    /// ([`preview_json`](crate::run::documents::preview_json)).
    pub fn view_without_body(&self) -> RequestView<'_> {
        RequestView {
            method: self.method.as_str(),
            url: &self.url,
            headers: HeadersView(&self.headers),
            body: None,
        }
    }

    /// The request as a preview shows it, its body parsed to be shown.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: self.method.as_str(),
            url: &self.url,
            headers: HeadersView(&self.headers),
            // A `&RawValue` borrows the body instead of copying it, which
            // matters for a batch of 4000 items.
            body: serde_json::from_str(&self.body).ok(),
        }
    }
}

#[cfg(test)]
mod tests;
