//! Which destinations a task may reach: `api.cloudflare.com` and the hosts
//! (with or without a port) that the host was told to allow.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use anyhow::{anyhow, bail};

/// A destination the guest may send requests to.
///
/// Parsed from `host`, `host:port`, `[ipv6]`, `[ipv6]:port` or a bare IPv6
/// address. Without a port every port of the host is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    /// Lower case, IPv6 addresses without brackets.
    pub host: String,
    pub port: Option<u16>,
}

impl AllowedHost {
    /// Every port of `host`.
    pub fn any_port(host: &str) -> anyhow::Result<Self> {
        Ok(Self {
            host: normalize_host(host)?,
            port: None,
        })
    }

    /// Only `port` of `host`.
    pub fn with_port(host: &str, port: u16) -> anyhow::Result<Self> {
        Ok(Self {
            host: normalize_host(host)?,
            port: Some(port),
        })
    }

    /// Whether a request to `host` (as it appears in a URI authority, IPv6 in
    /// brackets or not) on `port` is allowed by this entry.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|allowed| allowed != port) {
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

    /// The default list: the Cloudflare API on any port.
    pub fn defaults() -> Vec<Self> {
        vec![Self {
            host: "api.cloudflare.com".to_owned(),
            port: None,
        }]
    }
}

/// True when some entry of `list` allows `host` on `port`.
pub fn is_allowed(list: &[AllowedHost], host: &str, port: u16) -> bool {
    list.iter().any(|entry| entry.matches(host, port))
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
        });
    }
    if let Ok(addr) = s.parse::<Ipv6Addr>() {
        return Ok(AllowedHost {
            host: addr.to_string(),
            port: None,
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
                port: None
            }
        );
        assert_eq!(
            parsed("127.0.0.1:8787"),
            AllowedHost {
                host: "127.0.0.1".into(),
                port: Some(8787)
            }
        );
        assert_eq!(
            parsed("[::1]:8080"),
            AllowedHost {
                host: "::1".into(),
                port: Some(8080)
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
        assert!(any.matches("api.cloudflare.com", 443));
        assert!(any.matches("API.CLOUDFLARE.COM", 8443));
        assert!(!any.matches("api.cloudflare.com.evil.example", 443));
        assert!(!any.matches("evil.example", 443));

        let fixed = parsed("127.0.0.1:8787");
        assert!(fixed.matches("127.0.0.1", 8787));
        assert!(!fixed.matches("127.0.0.1", 8788));
        assert!(!fixed.matches("localhost", 8787));

        let v6 = parsed("[::1]:8080");
        assert!(v6.matches("[::1]", 8080));
        assert!(v6.matches("::1", 8080));
        assert!(v6.matches("[0:0::1]", 8080));
        assert!(!v6.matches("[::2]", 8080));
        assert!(!v6.matches("[::1]", 80));
    }

    #[test]
    fn the_default_list_allows_only_the_cloudflare_api() {
        let list = AllowedHost::defaults();
        assert!(is_allowed(&list, "api.cloudflare.com", 443));
        assert!(is_allowed(&list, "api.cloudflare.com", 80));
        assert!(!is_allowed(&list, "127.0.0.1", 443));
        assert!(!is_allowed(&[], "api.cloudflare.com", 443));
    }
}
