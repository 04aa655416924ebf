//! Which destinations a task may reach: `https://api.cloudflare.com` on
//! port 443, and the hosts (with or without a port) that the host was told
//! to allow, over `https` or plain `http`.
//!
//! Nothing but TLS goes to the Cloudflare API by default: a token sent over
//! plain `http` could be read on the way, and the component's own config
//! check is one line of defence, not the only one. Plain `http` is for the
//! hosts an operator names (a fake API, a proxy on loopback).

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use anyhow::{anyhow, bail};

/// A destination the guest may send requests to.
///
/// Parsed from `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6
/// address. Without a port every port of the host is allowed. Parsed
/// entries (those of `--allow-host`) take `https` and plain `http`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    /// Lower case, IPv6 addresses without brackets.
    pub host: String,
    /// The one port allowed; every port when `None`.
    pub port: Option<u16>,
    /// Whether plain `http` may go there too; else only `https`.
    pub cleartext: bool,
}

impl AllowedHost {
    /// Every port of `host`.
    pub fn any_port(host: &str) -> anyhow::Result<Self> {
        Ok(Self {
            host: normalize_host(host)?,
            port: None,
            cleartext: true,
        })
    }

    /// Only `port` of `host`.
    pub fn with_port(host: &str, port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            host: normalize_host(host)?,
            port: Some(port),
            cleartext: true,
        })
    }

    /// Whether a request to `host` (as it appears in a URI authority, IPv6 in
    /// brackets or not) on `port` is allowed by this entry; `tls` says
    /// whether it is `https` rather than plain `http`.
    pub fn matches(&self, tls: bool, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|allowed| allowed != port) || !(tls || self.cleartext) {
            return false;
        }
        let host = strip_brackets(host);
        // Two spellings of one IP address (`::1` and `0:0::1`) reach the same
        // machine, so addresses are compared as addresses.
        match (self.host.parse::<IpAddr>(), host.parse::<IpAddr>()) {
            (Ok(allowed), Ok(requested)) => allowed == requested,
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => false,
            (Err(_), Err(_)) => self.host.eq_ignore_ascii_case(host),
        }
    }

    /// The default list: the Cloudflare API over `https` on port 443.
    pub fn defaults() -> Vec<Self> {
        vec![Self {
            host: "api.cloudflare.com".to_owned(),
            port: Some(443),
            cleartext: false,
        }]
    }
}

/// True when some entry of `list` allows `host` on `port`, over TLS when
/// `tls`, else over plain `http`.
pub fn is_allowed(list: &[AllowedHost], tls: bool, host: &str, port: u16) -> bool {
    list.iter().any(|entry| entry.matches(tls, host, port))
}

impl FromStr for AllowedHost {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<Self> {
        let context = |e: anyhow::Error| e.context(format!("invalid allowed host {s:?}"));
        parse(s).map_err(context)
    }
}

fn parse(s: &str) -> anyhow::Result<AllowedHost> {
    if s.contains("://") {
        bail!("expected HOST or HOST:PORT, not a URL");
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (addr, after) = rest
            .split_once(']')
            .ok_or_else(|| anyhow!("missing `]` after the IPv6 address"))?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| anyhow!("{addr:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(after.strip_prefix(':').ok_or_else(|| {
                anyhow!("expected `:PORT` after the IPv6 address, got {after:?}")
            })?)?),
        };
        return Ok(AllowedHost {
            host: addr.to_string(),
            port,
            cleartext: true,
        });
    }
    if let Ok(addr) = s.parse::<Ipv6Addr>() {
        return Ok(AllowedHost {
            host: addr.to_string(),
            port: None,
            cleartext: true,
        });
    }
    match s.split_once(':') {
        Some((host, port)) => AllowedHost::with_port(host, parse_port(port)?),
        None => AllowedHost::any_port(s),
    }
}

fn parse_port(s: &str) -> anyhow::Result<u16> {
    // `u16::from_str` also takes a leading `+`, which no URL would carry.
    let digits_only = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u16>() {
        Ok(port) if digits_only && port != 0 => Ok(port),
        _ => bail!("{s:?} is not a port number (1-65535)"),
    }
}

fn normalize_host(host: &str) -> anyhow::Result<String> {
    let bare = strip_brackets(host);
    if let Ok(addr) = bare.parse::<IpAddr>() {
        return Ok(addr.to_string());
    }
    if bare.is_empty() {
        bail!("the host is empty");
    }
    // Anything beyond these characters (`@`, `/`, `%`, spaces) could make the
    // entry mean something other than one host name.
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')))
    {
        bail!("{c:?} is not allowed in a host name");
    }
    Ok(bare.to_ascii_lowercase())
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let is_v6 = self.host.parse::<Ipv6Addr>().is_ok();
        match (is_v6, self.port) {
            (true, Some(port)) => write!(f, "[{}]:{port}", self.host),
            (true, None) => write!(f, "[{}]", self.host),
            (false, Some(port)) => write!(f, "{}:{port}", self.host),
            (false, None) => f.write_str(&self.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(s: &str) -> AllowedHost {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e:#}"))
    }

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(
            parsed("API.Cloudflare.com"),
            AllowedHost {
                host: "api.cloudflare.com".into(),
                port: None,
                cleartext: true,
            }
        );
        assert_eq!(
            parsed("127.0.0.1:8787"),
            AllowedHost {
                host: "127.0.0.1".into(),
                port: Some(8787),
                cleartext: true,
            }
        );
        assert_eq!(
            parsed("[::1]:8080"),
            AllowedHost {
                host: "::1".into(),
                port: Some(8080),
                cleartext: true,
            }
        );
        assert_eq!(parsed("[::1]").port, None);
        assert_eq!(parsed("::1").host, "::1");
        assert_eq!(parsed("localhost:1").port, Some(1));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "",
            ":80",
            "host:",
            "host:0",
            "host:65536",
            "host:+80",
            "host:80:81",
            "https://api.cloudflare.com",
            "user@host",
            "host/path",
            "[::1",
            "[::1]x",
            "[::1]:",
            "[not-v6]:80",
            " host",
        ] {
            assert!(bad.parse::<AllowedHost>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn displays_in_a_form_that_parses_back() {
        for s in [
            "api.cloudflare.com",
            "127.0.0.1:8787",
            "[::1]:8080",
            "[::1]",
        ] {
            let host = parsed(s);
            assert_eq!(host.to_string(), s);
            assert_eq!(parsed(&host.to_string()), host);
        }
    }

    #[test]
    fn matches_host_case_insensitively_and_port_when_given() {
        let any = parsed("api.cloudflare.com");
        assert!(any.matches(true, "api.cloudflare.com", 443));
        assert!(any.matches(true, "API.CLOUDFLARE.COM", 8443));
        assert!(!any.matches(true, "api.cloudflare.com.evil.example", 443));
        assert!(!any.matches(true, "evil.example", 443));

        let fixed = parsed("127.0.0.1:8787");
        assert!(fixed.matches(true, "127.0.0.1", 8787));
        assert!(!fixed.matches(true, "127.0.0.1", 8788));
        assert!(!fixed.matches(true, "localhost", 8787));

        let v6 = parsed("[::1]:8080");
        assert!(v6.matches(true, "[::1]", 8080));
        assert!(v6.matches(true, "::1", 8080));
        assert!(v6.matches(true, "[0:0::1]", 8080));
        assert!(!v6.matches(true, "[::2]", 8080));
        assert!(!v6.matches(true, "[::1]", 80));
    }

    #[test]
    fn a_named_host_takes_plain_http_too() {
        for entry in ["127.0.0.1:8787", "localhost", "[::1]", "api.cloudflare.com"] {
            let entry = parsed(entry);
            let port = entry.port.unwrap_or(80);
            assert!(entry.matches(false, &entry.host.clone(), port), "{entry}");
            assert!(entry.matches(true, &entry.host.clone(), port), "{entry}");
        }
    }

    #[test]
    fn the_default_list_allows_only_the_cloudflare_api_over_tls_on_443() {
        let list = AllowedHost::defaults();
        assert!(is_allowed(&list, true, "api.cloudflare.com", 443));
        assert!(is_allowed(&list, true, "API.Cloudflare.COM", 443));
        assert!(!is_allowed(&list, false, "api.cloudflare.com", 443));
        assert!(!is_allowed(&list, false, "api.cloudflare.com", 80));
        assert!(!is_allowed(&list, true, "api.cloudflare.com", 80));
        assert!(!is_allowed(&list, true, "api.cloudflare.com", 8443));
        assert!(!is_allowed(&list, true, "127.0.0.1", 443));
        assert!(!is_allowed(&[], true, "api.cloudflare.com", 443));
    }
}
