//! The `config` document: where the request goes, with which credentials,
//! and how long the task may take.

use crate::params::json_fields::{expect_object, field, reject_unknown_keys};
use crate::params::problems::{Document, Pointer, Report};
use serde_json::Value;
use std::fmt;

const DOC: Document = Document::Config;

/// Credentials shorter than this are refused: no Cloudflare API token or
/// key is this short, and redaction, which looks for runs of this many
/// characters, could not find them (matching fewer would blank out
/// ordinary words in messages).
pub const MIN_SECRET_CHARS: usize = 8;

/// Cloudflare's API, where requests go unless `base_url` says otherwise.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";
/// `timeout_ms` when not given: the whole task, retries and reading back
/// included, in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 30_000;
/// `connect_timeout_ms` when not given: one connection attempt, in
/// milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// `max_retries` when not given: retries after the first attempt, of
/// failures that cannot have applied the batch.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// `max_response_bytes` when not given: the most of an answer's body that
/// is read, in bytes.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
/// The most `timeout_ms` may be, in milliseconds: ten minutes.
pub const MAX_TIMEOUT_MS: u64 = 600_000;
/// Bounded so that the response buffer, which may double while it grows,
/// and the copy of the result in the output fit a host's usual memory limit
/// for one task (wasmtime hosts here allow 256 MiB).
pub const MAX_RESPONSE_BYTES_LIMIT: u64 = 32 * 1024 * 1024;

/// Every member the config document may have.
pub const CONFIG_KEYS: &[&str] = &[
    "api_token",
    "api_email",
    "api_key",
    "base_url",
    "account_id",
    "timeout_ms",
    "connect_timeout_ms",
    "max_retries",
    "max_response_bytes",
    "verify_after_failure",
];

/// A credential that must never reach any output: its `Debug` is redacted and
/// it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The credential itself, for the request header that carries it and
    /// nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Exactly one way of authenticating: the type leaves no room for both or
/// neither.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// An API token (`api_token`), sent as `Authorization: Bearer`.
    Token(Secret),
    /// The account email and Global API key (`api_email`, `api_key`), sent
    /// as `X-Auth-Email` and `X-Auth-Key`.
    Legacy {
        /// The account's email address; not a secret.
        email: String,
        /// The Global API key.
        key: Secret,
    },
}

/// A base URL already checked to be `https`, or `http` to a loopback host,
/// without userinfo, query or fragment, and with no trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl(String);

impl BaseUrl {
    /// The URL, without a trailing slash: paths are appended as they are.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The checked config: every limit within its range, defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How requests authenticate.
    pub credentials: Credentials,
    /// Where requests go.
    pub base_url: BaseUrl,
    /// The account, when the config names it; the input's wins. Already
    /// checked with [`check_account_id`].
    pub account_id: Option<String>,
    /// The whole task's deadline, in milliseconds.
    pub timeout_ms: u64,
    /// One connection attempt's limit, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Retries of failures that cannot have applied the batch.
    pub max_retries: u32,
    /// The most of an answer's body that is read, in bytes.
    pub max_response_bytes: u64,
    /// After a failure that may have applied, read the account back to
    /// tell whether it did ([`crate::run::read_back`]).
    pub verify_after_failure: bool,
}

/// Reads the config document; `None` when it has errors (all in `report`).
pub fn parse_config(value: &Value, report: &mut Report) -> Option<Config> {
    let root = Pointer::root();
    let map = expect_object(value, DOC, &root, report)?;
    let before = report.error_count();
    reject_unknown_keys(map, CONFIG_KEYS, DOC, &root, report);

    let credentials = parse_credentials(map, report);

    let base_url = {
        let f = field(map, "base_url", &root);
        match f.string(DOC, report) {
            Some(s) => match check_base_url(s) {
                Ok(url) => Some(url),
                Err(message) => {
                    report.error(DOC, &f.at(), message);
                    None
                }
            },
            None if f.present() => None,
            None => Some(BaseUrl(DEFAULT_BASE_URL.to_string())),
        }
    };

    let account_id = {
        let f = field(map, "account_id", &root);
        f.string(DOC, report)
            .and_then(|s| match check_account_id(s) {
                Ok(()) => Some(s.to_string()),
                Err(message) => {
                    report.error(DOC, &f.at(), message);
                    None
                }
            })
    };

    let integer = |name: &str, min: u64, max: u64, default: u64, report: &mut Report| {
        let f = field(map, name, &root);
        if f.present() {
            f.integer(min, max, DOC, report)
        } else {
            Some(default)
        }
    };
    let timeout_ms = integer("timeout_ms", 1, MAX_TIMEOUT_MS, DEFAULT_TIMEOUT_MS, report);
    let connect_timeout_ms = integer(
        "connect_timeout_ms",
        1,
        MAX_TIMEOUT_MS,
        DEFAULT_CONNECT_TIMEOUT_MS,
        report,
    );
    let max_retries = integer("max_retries", 0, 10, u64::from(DEFAULT_MAX_RETRIES), report);
    let max_response_bytes = integer(
        "max_response_bytes",
        1,
        MAX_RESPONSE_BYTES_LIMIT,
        DEFAULT_MAX_RESPONSE_BYTES,
        report,
    );

    let verify_after_failure = {
        let f = field(map, "verify_after_failure", &root);
        if f.present() {
            f.boolean(DOC, report)
        } else {
            Some(true)
        }
    };

    if report.error_count() != before {
        return None;
    }
    Some(Config {
        credentials: credentials?,
        base_url: base_url?,
        account_id,
        timeout_ms: timeout_ms?,
        connect_timeout_ms: connect_timeout_ms?,
        max_retries: max_retries? as u32,
        max_response_bytes: max_response_bytes?,
        verify_after_failure: verify_after_failure?,
    })
}

fn parse_credentials(
    map: &serde_json::Map<String, Value>,
    report: &mut Report,
) -> Option<Credentials> {
    let root = Pointer::root();
    let token = field(map, "api_token", &root);
    let email = field(map, "api_email", &root);
    let key = field(map, "api_key", &root);

    let token_value = token.string(DOC, report);
    let email_value = email.string(DOC, report);
    let key_value = key.string(DOC, report);
    let mut ok = true;
    for (f, value, secret) in [
        (&token, token_value, Some("API token")),
        (&email, email_value, None),
        (&key, key_value, Some("Global API key")),
    ] {
        let Some(v) = value else { continue };
        let checked = check_header_value(v, secret.is_some())
            .and_then(|()| secret.map_or(Ok(()), |what| check_secret_shape(v, what)));
        if let Err(message) = checked {
            report.error(DOC, &f.at(), message);
            ok = false;
        }
    }

    match (token.present(), email.present(), key.present()) {
        (true, false, false) => {
            let token = token_value.filter(|_| ok)?;
            Some(Credentials::Token(Secret(token.to_string())))
        }
        (false, true, true) => {
            let (email, key) = (email_value.filter(|_| ok)?, key_value.filter(|_| ok)?);
            Some(Credentials::Legacy {
                email: email.to_string(),
                key: Secret(key.to_string()),
            })
        }
        (false, false, false) => {
            report.error(
                DOC,
                &token.at(),
                "no credentials: give api_token, or both api_email and api_key",
            );
            None
        }
        (true, _, _) => {
            report.error(
                DOC,
                &token.at(),
                "give either api_token or the pair api_email and api_key, not both",
            );
            None
        }
        (false, true, false) => {
            report.error(
                DOC,
                &key.at(),
                "api_email needs api_key (or use api_token instead)",
            );
            None
        }
        (false, false, true) => {
            report.error(
                DOC,
                &email.at(),
                "api_key needs api_email (or use api_token instead)",
            );
            None
        }
    }
}

/// No Cloudflare credential is shorter than [`MIN_SECRET_CHARS`] or made
/// of digits alone (or of what else a JSON number is written with), so
/// either is something else pasted by mistake (an id, a port, a
/// placeholder). Both are refused because redaction could not
/// keep them out of outputs without damage: it does not find runs shorter
/// than that, and it never turns a number into a string. The message never
/// holds the value, nor its length. `what` names the credential.
fn check_secret_shape(value: &str, what: &str) -> Result<(), String> {
    if value.chars().count() < MIN_SECRET_CHARS {
        return Err(format!(
            "is shorter than {MIN_SECRET_CHARS} characters; no Cloudflare {what} is that short, so this is likely something else pasted by mistake"
        ));
    }
    if value.bytes().all(is_number_byte) {
        return Err(format!(
            "is a number (only digits, or digits with `.`, `e`, `+` or `-`); no Cloudflare {what} is, so this is likely something else pasted by mistake"
        ));
    }
    Ok(())
}

/// A byte a JSON number can be written with.
pub fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
}

/// A credential must be a single, non-empty header value. The message says
/// where the problem is but never repeats the value.
fn check_header_value(value: &str, secret: bool) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if let Some((i, _)) = value.char_indices().find(|(_, c)| c.is_control()) {
        let position = value[..i].chars().count() + 1;
        return Err(format!(
            "contains a control character at character {position}; header values cannot carry line breaks or other control characters"
        ));
    }
    if value.trim() != value {
        return Err("has leading or trailing whitespace".into());
    }
    if secret && value.contains(' ') {
        return Err("contains a space; paste the credential without the \"Bearer\" prefix".into());
    }
    Ok(())
}

/// Account ids are 32 lowercase hexadecimal characters. Anything else could
/// change the URL the batch is sent to, so it never gets that far.
pub fn check_account_id(s: &str) -> Result<(), String> {
    if s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Ok(());
    }
    let shown = crate::params::json_fields::quoted(s, 40);
    if s.chars()
        .any(|c| matches!(c, '/' | '?' | '#' | '%') || c.is_whitespace() || c.is_control())
        || s.contains("..")
    {
        return Err(format!(
            "expected 32 lowercase hexadecimal characters, got {shown}, which contains characters that would change the request URL"
        ));
    }
    if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "expected 32 lowercase hexadecimal characters, got {shown} with upper-case letters"
        ));
    }
    Err(format!(
        "expected 32 lowercase hexadecimal characters, got {shown} ({} characters)",
        s.chars().count()
    ))
}

/// Checks a base URL and returns it without a trailing slash.
pub fn check_base_url(s: &str) -> Result<BaseUrl, String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace or control characters".into());
    }
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| format!("expected an absolute URL such as {DEFAULT_BASE_URL}"))?;
    let scheme = scheme.to_ascii_lowercase();
    if rest.contains(['?', '#']) {
        return Err("must not have a query or fragment".into());
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("must not contain user information (credentials belong in api_token)".into());
    }
    let host = parse_authority(authority)?;
    match scheme.as_str() {
        "https" => {}
        "http" if is_loopback_host(&host) => {}
        "http" => {
            return Err(
                "must use https; plain http is allowed only to loopback (127.0.0.0/8, localhost, [::1])"
                    .into(),
            )
        }
        other => return Err(format!("expected an https URL, got scheme {}", crate::params::json_fields::quoted(other, 20))),
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err("path must not contain \".\" or \"..\" segments".into());
    }
    // Only characters that mean the same to every server and proxy: no
    // percent-escapes (an encoded "/" or ".." could be decoded into another
    // path) and nothing the host's HTTP client would refuse later.
    if let Some(c) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@/".contains(*c)))
    {
        return Err(format!(
            "path has the character {}, which is not allowed in a base URL path",
            crate::params::json_fields::quoted(&c.to_string(), 1)
        ));
    }
    let trimmed = format!("{scheme}://{authority}{}", path.trim_end_matches('/'));
    Ok(BaseUrl(trimmed))
}

/// Returns the lower-cased host of `host[:port]`, checking both parts.
fn parse_authority(authority: &str) -> Result<String, String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("has an unclosed \"[\" in its host")?;
        inside
            .parse::<std::net::Ipv6Addr>()
            .map_err(|_| "has an invalid IPv6 address in its host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("has text after its IPv6 host")?),
        };
        (format!("[{}]", inside.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("has no host".into());
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return Err("has characters that are not allowed in a host name".into());
        }
        (host.to_ascii_lowercase(), port)
    };
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err("has an invalid port".into()),
        }
    }
    Ok(host)
}

/// Loopback as the contract defines it: 127.0.0.0/8, `localhost`, `[::1]`.
fn is_loopback_host(host: &str) -> bool {
    if host == "localhost" || host == "[::1]" {
        return true;
    }
    matches!(host.parse::<std::net::Ipv4Addr>(), Ok(ip) if ip.octets()[0] == 127)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TOKEN: &str = "tok-SECRET-0123456789";
    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

    fn parse(v: Value) -> (Option<Config>, Report) {
        let mut r = Report::default();
        let c = parse_config(&v, &mut r);
        (c, r)
    }

    fn errors(r: &Report) -> Vec<(String, String)> {
        r.errors
            .iter()
            .map(|p| (p.pointer.clone(), p.message.clone()))
            .collect()
    }

    /// The one problem `v` has, as (pointer, message); the config is refused.
    fn the_only_problem(v: &Value) -> (String, String) {
        let (c, r) = parse(v.clone());
        assert!(c.is_none(), "{v}");
        let mut e = errors(&r);
        assert_eq!(e.len(), 1, "{v}: {e:?}");
        e.remove(0)
    }

    #[test]
    fn defaults_apply() {
        let (c, r) = parse(json!({"api_token": TOKEN}));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let c = c.unwrap();
        assert_eq!(c.base_url.as_str(), DEFAULT_BASE_URL);
        assert_eq!(c.timeout_ms, 30_000);
        assert_eq!(c.connect_timeout_ms, 5_000);
        assert_eq!(c.max_retries, 2);
        assert_eq!(c.max_response_bytes, 8_388_608);
        assert_eq!(c.account_id, None);
        assert_eq!(c.credentials, Credentials::Token(Secret(TOKEN.into())));
    }

    #[test]
    fn all_fields_read() {
        let (c, r) = parse(json!({
            "api_email": "ops@example.com", "api_key": "k3y-GLOBAL-0f3a", "base_url": "http://127.0.0.1:8787/client/v4/",
            "account_id": ACCOUNT, "timeout_ms": 1000, "connect_timeout_ms": 200, "max_retries": 0,
            "max_response_bytes": 1024
        }));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let c = c.unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:8787/client/v4");
        assert_eq!(c.account_id.as_deref(), Some(ACCOUNT));
        assert_eq!(
            (
                c.timeout_ms,
                c.connect_timeout_ms,
                c.max_retries,
                c.max_response_bytes
            ),
            (1000, 200, 0, 1024)
        );
        assert_eq!(
            c.credentials,
            Credentials::Legacy {
                email: "ops@example.com".into(),
                key: Secret("k3y-GLOBAL-0f3a".into())
            }
        );
    }

    #[test]
    fn unknown_keys_and_every_problem_reported() {
        let (c, r) = parse(json!({
            "api_token": TOKEN, "timeout": 5, "timeout_ms": 0, "max_retries": 11, "base_url": 3,
            "max_response_bytes": "big"
        }));
        assert!(c.is_none());
        let e = errors(&r);
        let pointers: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/timeout",
                "/base_url",
                "/timeout_ms",
                "/max_retries",
                "/max_response_bytes"
            ]
        );
        assert!(e[0].1.contains("did you mean \"timeout_ms\""), "{}", e[0].1);
        assert_eq!(e[1].1, "expected a string, got an integer");
        assert_eq!(e[2].1, "expected an integer from 1 to 600000, got 0");
        assert_eq!(e[3].1, "expected an integer from 0 to 10, got 11");
    }

    #[test]
    fn config_must_be_an_object() {
        let (c, r) = parse(json!([1]));
        assert!(c.is_none());
        assert_eq!(
            errors(&r),
            [(
                "".to_string(),
                "expected an object, got an array".to_string()
            )]
        );
    }

    #[test]
    fn exactly_one_auth_method() {
        let cases = [
            (json!({}), "/api_token", "no credentials"),
            (
                json!({"api_token": TOKEN, "api_key": "k3y-GLOBAL-0f3a"}),
                "/api_token",
                "not both",
            ),
            (json!({"api_email": "a@b.c"}), "/api_key", "needs api_key"),
            (
                json!({"api_key": "k3y-GLOBAL-0f3a"}),
                "/api_email",
                "needs api_email",
            ),
        ];
        for (v, pointer, needle) in cases {
            let (at, message) = the_only_problem(&v);
            assert_eq!(at, pointer, "{v}");
            assert!(message.contains(needle), "{v}: {message}");
        }
    }

    #[test]
    fn control_characters_in_credentials_are_refused_without_echo() {
        for (key, value) in [
            ("api_token", "abc\r\nX-Evil: 1"),
            ("api_token", "tab\there"),
            ("api_key", "key\u{0}nul"),
        ] {
            let mut v = json!({});
            v[key] = json!(value);
            if key == "api_key" {
                v["api_email"] = json!("a@example.com");
            }
            let (c, r) = parse(v);
            assert!(c.is_none());
            assert_eq!(r.errors.len(), 1);
            assert_eq!(r.errors[0].pointer, format!("/{key}"));
            assert!(
                r.errors[0].message.contains("control character"),
                "{}",
                r.errors[0].message
            );
            for part in value
                .split(|c: char| c.is_control())
                .filter(|p| !p.is_empty())
            {
                assert!(!r.errors[0].message.contains(part), "echoed {part:?}");
            }
        }
        let (_, r) = parse(json!({"api_email": "a\nb@example.com", "api_key": "k3y-GLOBAL-0f3a"}));
        assert_eq!(r.errors[0].pointer, "/api_email");
    }

    #[test]
    fn empty_or_bearer_prefixed_token_is_refused() {
        let (_, r) = parse(json!({"api_token": ""}));
        assert_eq!(
            errors(&r),
            [("/api_token".to_string(), "must not be empty".to_string())]
        );
        let (_, r) = parse(json!({"api_token": "Bearer abc"}));
        assert!(r.errors[0]
            .message
            .contains("without the \"Bearer\" prefix"));
        assert!(!r.errors[0].message.contains("abc"));
    }

    #[test]
    fn short_or_numeric_credentials_are_refused_without_echo() {
        let cases = [
            (
                json!({"api_token": "tok7chr"}),
                "/api_token",
                "shorter than 8",
            ),
            (
                json!({"api_token": "12345678901234567890"}),
                "/api_token",
                "is a number",
            ),
            (
                json!({"api_token": "1.5e+10-3"}),
                "/api_token",
                "is a number",
            ),
            (
                json!({"api_email": "a@example.com", "api_key": "k3y"}),
                "/api_key",
                "shorter than 8",
            ),
            (
                json!({"api_email": "a@example.com", "api_key": "0123456789012345678901234567890123456"}),
                "/api_key",
                "is a number",
            ),
        ];
        for (v, pointer, needle) in cases {
            let (at, message) = the_only_problem(&v);
            assert_eq!(at, pointer, "{v}");
            assert!(message.contains(needle), "{v}: {message}");
            let what = if pointer == "/api_key" {
                "Global API key"
            } else {
                "API token"
            };
            assert!(message.contains(what), "{message}");
            assert!(message.contains("pasted by mistake"), "{message}");
            let secret = v[&pointer[1..]].as_str().unwrap();
            assert!(!message.contains(secret), "echoed: {message}");
            assert!(
                !message.contains("tok7") && !message.contains("k3y"),
                "{message}"
            );
        }

        // Eight characters, counted as characters, are enough, and digits
        // with a letter are no number.
        for fine in ["tökenABC", "12345678a", "deadbeef"] {
            let (c, r) = parse(json!({"api_token": fine}));
            assert!(c.is_some() && r.errors.is_empty(), "{fine}: {:?}", r.errors);
        }
        // A credential already refused gets one error only.
        let (_, r) = parse(json!({"api_token": "a b"}));
        assert_eq!(r.errors.len(), 1);
        let (_, r) = parse(json!({"api_token": ""}));
        assert_eq!(r.errors.len(), 1);
        // The email is no secret, however short or numeric.
        for email in ["a@b.c", "12345"] {
            let (c, r) = parse(json!({"api_email": email, "api_key": TOKEN}));
            assert!(c.is_some() && r.errors.is_empty(), "{:?}", r.errors);
        }
    }

    #[test]
    fn account_id_rules() {
        assert!(check_account_id(ACCOUNT).is_ok());
        for bad in [
            "0123456789ABCDEF0123456789ABCDEF",
            "0123456789abcdef",
            "0123456789abcdef0123456789abcdeg",
            "../../../user/tokens/verify",
            "0123456789abcdef0123456789abcde?",
            "0123456789abcdef0123456789abcd%2",
            "0123456789abcdef 123456789abcdef",
            "0123456789abcdef0123456789abcdef/",
            "",
        ] {
            assert!(check_account_id(bad).is_err(), "{bad:?} accepted");
        }
        assert!(check_account_id("a/b")
            .unwrap_err()
            .contains("change the request URL"));
    }

    #[test]
    fn base_url_rules() {
        let ok = [
            (
                "https://api.cloudflare.com/client/v4",
                "https://api.cloudflare.com/client/v4",
            ),
            (
                "https://api.cloudflare.com/client/v4/",
                "https://api.cloudflare.com/client/v4",
            ),
            (
                "HTTPS://proxy.example.com:8443",
                "https://proxy.example.com:8443",
            ),
            ("http://127.0.0.1:8787", "http://127.0.0.1:8787"),
            ("http://127.3.4.5/x", "http://127.3.4.5/x"),
            ("http://localhost:1/", "http://localhost:1"),
            ("http://[::1]:8080/client/v4", "http://[::1]:8080/client/v4"),
        ];
        for (input, expected) in ok {
            assert_eq!(
                check_base_url(input).map(|u| u.0),
                Ok(expected.to_string()),
                "{input}"
            );
        }
        let bad = [
            ("http://api.cloudflare.com/client/v4", "must use https"),
            ("http://127.0.0.1.evil.example/", "must use https"),
            ("http://10.0.0.1/", "must use https"),
            ("http://[::2]/", "must use https"),
            ("https://user:pw@api.cloudflare.com/", "user information"),
            ("https://api.cloudflare.com/client/v4?x=1", "query"),
            ("https://api.cloudflare.com/#f", "query or fragment"),
            ("ftp://api.cloudflare.com/", "scheme"),
            ("api.cloudflare.com/client/v4", "absolute URL"),
            ("https://", "no host"),
            ("https://api.cloudflare.com:99999/", "invalid port"),
            ("https://api.cloudflare.com:/", "invalid port"),
            ("https://api cloudflare.com/", "whitespace"),
            ("https://api.cloudflare.com/a/../b", "segments"),
            ("https://[::1/", "unclosed"),
            ("https://a%2fb.com/", "not allowed in a host"),
            (
                "https://api.cloudflare.com/%2e%2e/x",
                "not allowed in a base URL path",
            ),
            (
                "https://api.cloudflare.com/a%2Fb",
                "not allowed in a base URL path",
            ),
            (
                "https://api.cloudflare.com/a\\b",
                "not allowed in a base URL path",
            ),
            (
                "https://api.cloudflare.com/v{4}",
                "not allowed in a base URL path",
            ),
            (
                "https://api.cloudflare.com/é",
                "not allowed in a base URL path",
            ),
        ];
        for (input, needle) in bad {
            let e = check_base_url(input).unwrap_err();
            assert!(e.contains(needle), "{input}: {e}");
        }
    }
}
