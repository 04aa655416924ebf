//! Whether a worker may talk to its server without TLS.
//!
//! What a worker sends its server goes in cleartext over plain `http`: the
//! Conductor access key's secret and the session tokens it is given, and
//! every task's input and output, all readable and changeable by anyone on
//! the path. On loopback that path is this machine; anywhere else it is a
//! network. So a worker reaches a server that is not on loopback without
//! TLS only when told to with `--insecure-http`, and then says so once.

use std::fmt;
use std::net::IpAddr;

/// How a worker reaches its server, as far as this check needs it.
#[derive(Debug, Clone, Copy)]
pub struct ServerLink<'a> {
    /// The flag that named the server (`--server`, `--address`).
    pub flag: &'static str,
    /// The server as given, for messages.
    pub address: &'a str,
    /// Its host: a name, an IPv4 address, or an IPv6 one with or without
    /// brackets.
    pub host: &'a str,
    /// Whether the connection is encrypted.
    pub tls: bool,
}

/// A server reached without TLS off loopback, without `--insecure-http`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleartextRefused {
    flag: &'static str,
    address: String,
}

impl fmt::Display for CleartextRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} would be reached without TLS, and it is not on loopback: credentials and every task's input and output would cross the network in cleartext; use https (TLS), or add --insecure-http to send them in cleartext anyway",
            self.flag, self.address
        )
    }
}

impl std::error::Error for CleartextRefused {}

/// `Ok(None)` when the link is encrypted or stays on this machine;
/// `Ok(Some(warning))`, to be printed once, when it is neither and
/// `insecure_http` allows it; else the refusal.
pub fn check_server_link(
    link: ServerLink<'_>,
    insecure_http: bool,
) -> Result<Option<String>, CleartextRefused> {
    if link.tls || is_loopback(link.host) {
        return Ok(None);
    }
    if !insecure_http {
        return Err(CleartextRefused {
            flag: link.flag,
            address: link.address.to_string(),
        });
    }
    Ok(Some(format!(
        "warning: {} {} is reached without TLS (--insecure-http): credentials and every task's input and output cross the network in cleartext",
        link.flag, link.address
    )))
}

/// `localhost`, 127.0.0.0/8 and `::1` (IPv4-mapped loopback included).
pub fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => v6
            .to_ipv4_mapped()
            .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(host: &str, tls: bool) -> ServerLink<'_> {
        ServerLink {
            flag: "--server",
            address: "the server",
            host,
            tls,
        }
    }

    #[test]
    fn loopback_is_this_machine_only() {
        for host in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(host), "{host}");
        }
        for host in [
            "conductor.invalid",
            "localhost.invalid",
            "10.0.0.1",
            "128.0.0.1",
            "[::2]",
            "::",
            "0.0.0.0",
            "127.0.0.1.invalid",
        ] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn cleartext_off_loopback_needs_the_flag_and_is_then_warned_about() {
        assert_eq!(check_server_link(link("127.0.0.1", false), false), Ok(None));
        assert_eq!(
            check_server_link(link("conductor.invalid", true), false),
            Ok(None)
        );
        let refused = check_server_link(link("conductor.invalid", false), false)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--server the server") && refused.contains("--insecure-http"),
            "{refused}"
        );
        let warning = check_server_link(link("conductor.invalid", false), true)
            .unwrap()
            .unwrap();
        assert!(warning.contains("cleartext"), "{warning}");
    }
}
