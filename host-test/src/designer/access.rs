//! Who may use the designer, checked on every request before anything
//! else: the designer can send with a person's Cloudflare credentials,
//! so only the browser of the person who started it, on this machine,
//! may drive it.
//!
//! - A random access token, new at each start and part of the printed
//!   address, is exchanged once per browser for a session cookie
//!   (`HttpOnly; SameSite=Strict`): another web site in the same browser
//!   cannot send it, and the page's script cannot read it.
//! - `Host` must name this loopback port: a name of another site that a
//!   DNS rebinding points at 127.0.0.1 is refused, with or without a
//!   cookie.
//! - `Origin`, when present, must be this server's; the API's requests
//!   must be same-origin JSON: a cross-site form or script is refused, and
//!   no CORS header ever allows one.
//! - Every answer carries a strict Content-Security-Policy and the
//!   headers that keep it out of other sites' frames and caches.
//!
//! Secrets are compared in constant time.

use std::fmt;

use http::{header, HeaderMap, HeaderValue, Method};

/// The session cookie's name, with this server's port: cookies are shared
/// by every port of a host, so two designers running at once (one on the
/// fake, one live) would otherwise take each other's session.
pub fn cookie_name(port: u16) -> String {
    format!("designer_session_{port}")
}

/// The Content-Security-Policy of every answer: the page's own scripts,
/// styles and images only (no inline script, no `eval`), requests only to
/// this server, no forms, no frames around it.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The secrets of one start of the designer and the checks made with them.
pub struct Access {
    port: u16,
    /// In the printed address; exchanged for [`Access::session`].
    token: String,
    /// The cookie's value.
    session: String,
}

/// The secrets are not shown.
impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Access")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// Why a request was refused; [`Refusal::status`] is its answer's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `Host` is missing or names anything but this loopback port.
    ForeignHost,
    /// `Origin` names another site (or `null`).
    ForeignOrigin,
    /// `Sec-Fetch-Site` says another site sent the API request.
    CrossSite,
    /// A `POST` without `Origin`: no browser page of this server sends one.
    NoOrigin,
    /// A `POST` whose body is not declared JSON (a form can send only
    /// form types without asking the server first).
    NotJson,
    /// No valid session cookie, or a wrong access token.
    NoSession,
}

impl Refusal {
    pub fn status(self) -> u16 {
        match self {
            Refusal::ForeignHost => 421,
            Refusal::ForeignOrigin | Refusal::CrossSite | Refusal::NoOrigin => 403,
            Refusal::NotJson => 415,
            Refusal::NoSession => 401,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::ForeignHost => {
                "this server answers only to 127.0.0.1 or localhost on its own port"
            }
            Refusal::ForeignOrigin => "requests from another site are refused",
            Refusal::CrossSite => "requests sent by another site are refused",
            Refusal::NoOrigin => {
                "a POST must come from the designer's page (it has no Origin header)"
            }
            Refusal::NotJson => "a POST must have Content-Type: application/json",
            Refusal::NoSession => "open the address task-host designer printed (with its ?token=)",
        }
    }
}

impl Access {
    /// New random secrets for a server on `port`.
    pub fn new(port: u16) -> Access {
        Access {
            port,
            token: random_hex(),
            session: random_hex(),
        }
    }

    /// The session cookie's value: kept out of everything printed.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The address to open: `http://127.0.0.1:PORT/?token=TOKEN`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}/?token={}", self.port, self.token)
    }

    /// `Host` must be `127.0.0.1:PORT` or `localhost:PORT`, exactly.
    pub fn check_host(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let (Some(host), None) = (hosts.next(), hosts.next()) else {
            return Err(Refusal::ForeignHost);
        };
        let host = host.to_str().map_err(|_| Refusal::ForeignHost)?;
        let (name, port) = host.rsplit_once(':').ok_or(Refusal::ForeignHost)?;
        let own_name = name == "127.0.0.1" || name.eq_ignore_ascii_case("localhost");
        if own_name && port == self.port.to_string() {
            Ok(())
        } else {
            Err(Refusal::ForeignHost)
        }
    }

    /// `Origin`, when given, must be this server's; a `POST` must give it
    /// and declare a JSON body; an API request a browser marks as sent by
    /// another site is refused.
    pub fn check_origin(
        &self,
        method: &Method,
        api: bool,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let origin = origins.next();
        if origins.next().is_some() {
            return Err(Refusal::ForeignOrigin);
        }
        if let Some(origin) = origin {
            let origin = origin.to_str().map_err(|_| Refusal::ForeignOrigin)?;
            let own = [
                format!("http://127.0.0.1:{}", self.port),
                format!("http://localhost:{}", self.port),
            ];
            if !own.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return Err(Refusal::ForeignOrigin);
            }
        }
        if api {
            let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
            if matches!(site, Some(site) if site != "same-origin" && site != "none") {
                return Err(Refusal::CrossSite);
            }
        }
        if method == Method::POST {
            if origin.is_none() {
                return Err(Refusal::NoOrigin);
            }
            if !is_json(headers) {
                return Err(Refusal::NotJson);
            }
        }
        Ok(())
    }

    /// Whether the request carries this start's session cookie.
    pub fn has_session(&self, headers: &HeaderMap) -> bool {
        let name = cookie_name(self.port);
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .any(|(n, v)| n == name && same_secret(v.as_bytes(), self.session.as_bytes()))
    }

    /// For a query with a `token`: whether it is this start's access
    /// token. `None` when the query names no token.
    pub fn check_token(&self, query: Option<&str>) -> Option<bool> {
        let given = query?
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(name, _)| *name == "token")?
            .1;
        Some(same_secret(given.as_bytes(), self.token.as_bytes()))
    }

    /// The `Set-Cookie` of a valid token exchange.
    pub fn set_cookie(&self) -> String {
        format!(
            "{}={}; HttpOnly; SameSite=Strict; Path=/",
            cookie_name(self.port),
            self.session
        )
    }
}

/// The headers every answer carries. No `Access-Control-*` header is ever
/// set: no other origin may read an answer.
pub fn add_security_headers(headers: &mut HeaderMap) {
    let fixed = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
}

/// `Content-Type: application/json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Equal secrets, in time that depends on their lengths only.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    if given.len() != secret.len() {
        return false;
    }
    given
        .iter()
        .zip(secret)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}

/// 32 random bytes from the thread's cryptographic generator (seeded by
/// the operating system), as 64 hexadecimal characters.
pub fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn only_this_port_on_loopback_names_are_a_host() {
        let access = Access::new(4711);
        for good in ["127.0.0.1:4711", "localhost:4711", "LOCALHOST:4711"] {
            assert_eq!(
                access.check_host(&headers(&[("host", good)])),
                Ok(()),
                "{good}"
            );
        }
        for bad in [
            "127.0.0.1",
            "127.0.0.1:4712",
            "attacker.example:4711",
            "127.0.0.1.attacker.example:4711",
            "[::1]:4711",
            "",
        ] {
            assert_eq!(
                access.check_host(&headers(&[("host", bad)])),
                Err(Refusal::ForeignHost),
                "{bad}"
            );
        }
        assert_eq!(
            access.check_host(&HeaderMap::new()),
            Err(Refusal::ForeignHost)
        );
        let twice = headers(&[("host", "127.0.0.1:4711"), ("host", "evil:4711")]);
        assert_eq!(access.check_host(&twice), Err(Refusal::ForeignHost));
    }

    #[test]
    fn a_post_is_same_origin_json() {
        let access = Access::new(4711);
        let own = ("origin", "http://127.0.0.1:4711");
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(
            access.check_origin(&Method::POST, true, &headers(&[own, json])),
            Ok(())
        );
        assert_eq!(
            access.check_origin(&Method::POST, true, &headers(&[json])),
            Err(Refusal::NoOrigin)
        );
        assert_eq!(
            access.check_origin(
                &Method::POST,
                true,
                &headers(&[own, ("content-type", "text/plain")])
            ),
            Err(Refusal::NotJson)
        );
        for foreign in [
            "http://evil.example",
            "null",
            "http://127.0.0.1:4712",
            "https://127.0.0.1:4711",
        ] {
            assert_eq!(
                access.check_origin(&Method::GET, false, &headers(&[("origin", foreign)])),
                Err(Refusal::ForeignOrigin),
                "{foreign}"
            );
        }
        let cross = headers(&[own, json, ("sec-fetch-site", "cross-site")]);
        assert_eq!(
            access.check_origin(&Method::POST, true, &cross),
            Err(Refusal::CrossSite)
        );
        assert_eq!(
            access.check_origin(&Method::GET, false, &HeaderMap::new()),
            Ok(())
        );
    }

    #[test]
    fn the_token_and_the_session_are_checked_whole() {
        let access = Access::new(4711);
        let token = access.token.clone();
        assert_eq!(
            access.check_token(Some(&format!("token={token}"))),
            Some(true)
        );
        assert_eq!(
            access.check_token(Some(&format!("a=b&token={token}"))),
            Some(true)
        );
        assert_eq!(
            access.check_token(Some(&format!("token={}", &token[1..]))),
            Some(false)
        );
        assert_eq!(access.check_token(Some("a=b")), None);
        assert_eq!(access.check_token(None), None);
        let cookie = format!("other=1; designer_session_4711={}", access.session);
        assert!(access.has_session(&headers(&[("cookie", &cookie)])));
        let wrong = format!("designer_session_4712={}", access.session);
        assert!(!access.has_session(&headers(&[("cookie", &wrong)])));
        assert!(!access.has_session(&headers(&[("cookie", "designer_session_4711=")])));
        assert_ne!(Access::new(4711).token, token, "a new token at each start");
        assert!(!format!("{access:?}").contains(&token));
    }
}
