//! Checks of an allow policy's `pattern` against its `pattern_type`. Email
//! addresses, host names and IP ranges are easy to get subtly wrong (a stray
//! space, a zone id, an address where a domain was meant), and an entry the API
//! refuses is much harder to trace back to its policy than one refused here, so
//! the component checks them before sending and says exactly what is wrong. It
//! also names the non-public network (private, loopback, link-local and the
//! like) that an IP pattern falls in or overlaps, since the API does not treat
//! such networks as ordinary public senders.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest piece of input quoted in a message.
const SNIPPET: usize = 60;

/// An IP address or CIDR range. Without a `/prefix` the prefix is the full
/// address length (32 or 128). The address is kept as written, so it may have
/// host bits set (`10.1.2.3/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPattern {
    V4 { addr: Ipv4Addr, prefix: u8 },
    V6 { addr: Ipv6Addr, prefix: u8 },
}

/// Checks an email address `local@domain`, splitting at the last `@`.
pub fn check_email(s: &str) -> Result<(), String> {
    email_problem(s).map_or(Ok(()), |why| Err(format!("is not an email address: {why}")))
}

fn email_problem(s: &str) -> Option<String> {
    if s.chars().count() > 254 {
        return Some("it is longer than 254 characters".into());
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return Some(format!("{} has no @", quote(s)));
    };
    if local.is_empty() {
        return Some("the part before @ is empty".into());
    }
    if local.chars().count() > 64 {
        return Some("the part before @ is longer than 64 characters".into());
    }
    if let Some(c) = local.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("the part before @ contains {c:?}"));
    }
    let quoted_local = local.len() >= 2 && local.starts_with('"') && local.ends_with('"');
    if local.contains('@') && !quoted_local {
        return Some("it has more than one @".into());
    }
    if domain.is_empty() {
        return Some("the part after @ is empty".into());
    }
    host_name_problem(domain).map(|why| format!("the part after @ is not a host name: {why}"))
}

/// Checks a DNS host name such as `mail.example.com` or `localhost`.
pub fn check_host_name(s: &str) -> Result<(), String> {
    host_name_problem(s).map_or(Ok(()), |why| Err(format!("is not a host name: {why}")))
}

fn host_name_problem(s: &str) -> Option<String> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.is_empty() {
        return Some("it is empty".into());
    }
    if name.chars().count() > 253 {
        return Some("it is longer than 253 characters".into());
    }
    let dotted_digits = name.bytes().any(|b| b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    if dotted_digits || (name.contains(':') && name.parse::<IpAddr>().is_ok()) {
        return Some(format!("{} looks like an IP address", quote(s)));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Some(format!(
                "{} has an empty label (a leading dot or two dots in a row)",
                quote(s)
            ));
        }
        if label.chars().count() > 63 {
            return Some(format!(
                "the label {} is longer than 63 characters",
                quote(label)
            ));
        }
        // Non-ASCII characters are left to IDNA rules the API applies; rejecting
        // only separators keeps internationalised names (including their
        // combining marks) usable.
        let allowed = |c: char| {
            if c.is_ascii() {
                c.is_ascii_alphanumeric() || c == '-'
            } else {
                !c.is_whitespace() && !c.is_control()
            }
        };
        if let Some(c) = label.chars().find(|&c| !allowed(c)) {
            return Some(format!(
                "the label {} contains {c:?}; only letters, digits and '-' are allowed",
                quote(label)
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Some(format!(
                "the label {} starts or ends with '-'",
                quote(label)
            ));
        }
    }
    None
}

/// Parses an IPv4 or IPv6 address with an optional `/prefix`.
pub fn parse_ip_pattern(s: &str) -> Result<IpPattern, String> {
    let fail = |why: String| Err(format!("is not an IP address or CIDR range: {why}"));
    if s.is_empty() {
        return fail("it is empty".into());
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return fail(format!("{} contains whitespace", quote(s)));
    }
    if s.contains('%') {
        return fail(format!(
            "{} has a zone id (after %), which is not allowed",
            quote(s)
        ));
    }
    if s.contains(['[', ']']) {
        return fail(format!(
            "{} is in brackets; write the bare address",
            quote(s)
        ));
    }
    let (addr, prefix) = match s.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (s, None),
    };
    let v6 = addr.contains(':');
    let max: u8 = if v6 { 128 } else { 32 };
    let prefix = match prefix {
        None => max,
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => {
            return fail(format!(
                "the prefix length {} after / is not a decimal number",
                quote(p)
            ));
        }
        Some(p) => match p.parse::<u8>() {
            Ok(n) if n <= max => n,
            _ => {
                return fail(format!(
                    "the prefix length {} is larger than {max}",
                    quote(p)
                ))
            }
        },
    };
    let parsed = if v6 {
        addr.parse().map(|addr| IpPattern::V6 { addr, prefix })
    } else {
        addr.parse().map(|addr| IpPattern::V4 { addr, prefix })
    };
    parsed.or_else(|_| {
        let family = if v6 { "IPv6" } else { "IPv4" };
        fail(format!("{} is not a valid {family} address", quote(addr)))
    })
}

/// IPv4 networks the API does not treat as public, most commonly meant first so
/// that a pattern spanning several (like `0.0.0.0/0`) gets the most telling name.
const V4_RANGES: &[(u32, u8, &str)] = &[
    (0x0a00_0000, 8, "private"),
    (0xac10_0000, 12, "private"),
    (0xc0a8_0000, 16, "private"),
    (0x7f00_0000, 8, "loopback"),
    (0xa9fe_0000, 16, "link-local"),
    (0x0000_0000, 8, "unspecified"),
    (0xffff_ffff, 32, "broadcast"),
];

const V6_RANGES: &[(u128, u8, &str)] = &[
    (0xfc00 << 112, 7, "unique-local"),
    (0xfe80 << 112, 10, "link-local"),
    (1, 128, "loopback"),
    (0, 128, "unspecified"),
];

/// `::ffff:0:0/96`, where IPv6 carries IPv4 addresses.
const V4_MAPPED: u128 = 0xffff << 32;

/// Names the non-public range that the pattern's network lies in, contains or
/// overlaps, if any.
pub fn special_range(p: &IpPattern) -> Option<&'static str> {
    match *p {
        IpPattern::V4 { addr, prefix } => v4_special(u32::from(addr), prefix),
        IpPattern::V6 { addr, prefix } => {
            let bits = u128::from(addr);
            let found = V6_RANGES
                .iter()
                .find(|&&(net, len, _)| overlaps_v6(bits, prefix, net, len));
            if let Some(&(_, _, name)) = found {
                return Some(name);
            }
            if overlaps_v6(bits, prefix, V4_MAPPED, 96) {
                // Truncation keeps the embedded IPv4 address.
                return v4_special(bits as u32, prefix.saturating_sub(96));
            }
            None
        }
    }
}

fn v4_special(bits: u32, prefix: u8) -> Option<&'static str> {
    V4_RANGES
        .iter()
        .find(|&&(net, len, _)| overlaps_v4(bits, prefix, net, len))
        .map(|&(_, _, name)| name)
}

/// Two networks overlap when they agree on the bits of the shorter prefix.
fn overlaps_v4(a: u32, a_len: u8, b: u32, b_len: u8) -> bool {
    let len = u32::from(a_len.min(b_len).min(32));
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    (a ^ b) & mask == 0
}

fn overlaps_v6(a: u128, a_len: u8, b: u128, b_len: u8) -> bool {
    let len = u32::from(a_len.min(b_len).min(128));
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    (a ^ b) & mask == 0
}

/// The input in quotes for a message, shortened when long.
fn quote(s: &str) -> String {
    crate::json::quoted(s, SNIPPET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn err_of<T: std::fmt::Debug>(r: Result<T, String>) -> String {
        r.expect_err("should be rejected")
    }

    #[track_caller]
    fn ip(s: &str) -> IpPattern {
        parse_ip_pattern(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn v4(a: [u8; 4], prefix: u8) -> IpPattern {
        IpPattern::V4 {
            addr: Ipv4Addr::from(a),
            prefix,
        }
    }

    #[test]
    fn accepts_emails() {
        for s in [
            "user@example.com",
            "first.last+tag@mail.example.co.uk",
            "x@localhost",
            "x@example.com.",
            "\"odd@local\"@example.com",
            "üser@bücher.de",
            "a@b",
        ] {
            assert_eq!(check_email(s), Ok(()), "{s}");
        }
        let local = "a".repeat(64);
        assert_eq!(check_email(&format!("{local}@example.com")), Ok(()));
        // 64 + 1 + 189 = 254 characters.
        let domain = format!(
            "{}.{}.{}.com",
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(63)
        );
        let longest = format!("{local}@{domain}");
        assert_eq!(longest.len(), 254);
        assert_eq!(check_email(&longest), Ok(()));
    }

    #[test]
    fn rejects_bad_emails() {
        let cases = [
            ("example.com", "has no @"),
            ("@example.com", "the part before @ is empty"),
            ("user@", "the part after @ is empty"),
            ("us er@example.com", "the part before @ contains ' '"),
            ("user\t@example.com", "contains '\\t'"),
            ("us\u{7}er@example.com", "contains '\\u{7}'"),
            ("a@b@example.com", "more than one @"),
            ("\"a@b@example.com", "more than one @"),
            ("user@exa mple.com", "the part after @ is not a host name"),
            ("user@1.2.3.4", "looks like an IP address"),
            ("user@[1.2.3.4]", "contains '['"),
            ("user@example..com", "empty label"),
            ("user@-example.com", "starts or ends with '-'"),
            ("user@exam_ple.com", "contains '_'"),
        ];
        for (s, fragment) in cases {
            let e = err_of(check_email(s));
            assert!(e.starts_with("is not an email address: "), "{s}: {e}");
            assert!(e.contains(fragment), "{s}: {e:?} lacks {fragment:?}");
        }
        let e = err_of(check_email(&format!("{}@example.com", "a".repeat(65))));
        assert!(e.contains("longer than 64"), "{e}");
        let e = err_of(check_email(&format!("a@{}.com", "b.".repeat(125))));
        assert!(e.contains("longer than 254"), "{e}");
    }

    #[test]
    fn accepts_host_names() {
        for s in [
            "example.com",
            "example.com.",
            "localhost",
            "a",
            "xn--bcher-kva.example",
            "bücher.example",
            "भारतम्.भारत",
            "例え.テスト",
            "a-b.c-d.e",
            "123.example",
            "example.123",
            "A.B.C",
        ] {
            assert_eq!(check_host_name(s), Ok(()), "{s}");
        }
        let label = "a".repeat(63);
        assert_eq!(check_host_name(&format!("{label}.com")), Ok(()));
        // 253 characters, and 254 with the root dot.
        let name = format!("{label}.{label}.{label}.{}", "a".repeat(61));
        assert_eq!(name.len(), 253);
        assert_eq!(check_host_name(&name), Ok(()));
        assert_eq!(check_host_name(&format!("{name}.")), Ok(()));
    }

    #[test]
    fn rejects_bad_host_names() {
        let cases = [
            ("", "it is empty"),
            (".", "it is empty"),
            ("1.2.3.4", "\"1.2.3.4\" looks like an IP address"),
            ("10", "looks like an IP address"),
            ("1.2.3.4.", "looks like an IP address"),
            ("::1", "looks like an IP address"),
            ("2001:db8::1", "looks like an IP address"),
            ("a..b", "empty label"),
            (".example.com", "empty label"),
            ("example.com..", "empty label"),
            ("-a.com", "the label \"-a\" starts or ends with '-'"),
            ("a-.com", "starts or ends with '-'"),
            ("a_b.com", "contains '_'"),
            ("_dmarc.example.com", "contains '_'"),
            ("a b.com", "contains ' '"),
            ("a\u{3000}b.com", "contains '\\u{3000}'"),
            ("a/b", "contains '/'"),
            ("exa*mple.com", "contains '*'"),
            ("host:25", "contains ':'"),
        ];
        for (s, fragment) in cases {
            let e = err_of(check_host_name(s));
            assert!(e.starts_with("is not a host name: "), "{s}: {e}");
            assert!(e.contains(fragment), "{s:?}: {e:?} lacks {fragment:?}");
        }
        let e = err_of(check_host_name(&format!("{}.com", "a".repeat(64))));
        assert!(e.contains("longer than 63"), "{e}");
        let e = err_of(check_host_name(&format!("{}a", "a.".repeat(127))));
        assert!(e.contains("longer than 253"), "{e}");
    }

    #[test]
    fn long_inputs_are_quoted_short() {
        let e = err_of(check_host_name(&format!("{}_", "a".repeat(62))));
        assert!(e.contains("…\""), "{e}");
        assert!(e.len() < 200, "{e}");
        let e = err_of(parse_ip_pattern(&"9".repeat(500)));
        assert!(e.len() < 200, "{e}");
        // Cutting the quote must respect character boundaries.
        let e = err_of(parse_ip_pattern(&"é".repeat(100)));
        assert!(e.contains("…"), "{e}");
    }

    #[test]
    fn parses_ip_patterns() {
        assert_eq!(ip("192.0.2.1"), v4([192, 0, 2, 1], 32));
        assert_eq!(ip("192.0.2.0/24"), v4([192, 0, 2, 0], 24));
        assert_eq!(ip("10.1.2.3/8"), v4([10, 1, 2, 3], 8));
        assert_eq!(ip("0.0.0.0/0"), v4([0, 0, 0, 0], 0));
        assert_eq!(ip("1.2.3.4/032"), v4([1, 2, 3, 4], 32));
        assert_eq!(
            ip("2001:db8::/32"),
            IpPattern::V6 {
                addr: "2001:db8::".parse().unwrap(),
                prefix: 32
            }
        );
        assert_eq!(
            ip("::1"),
            IpPattern::V6 {
                addr: Ipv6Addr::LOCALHOST,
                prefix: 128
            }
        );
        assert_eq!(
            ip("::ffff:10.0.0.1/128"),
            IpPattern::V6 {
                addr: "::ffff:10.0.0.1".parse().unwrap(),
                prefix: 128
            }
        );
        assert_eq!(
            ip("2001:DB8::1/0"),
            IpPattern::V6 {
                addr: "2001:db8::1".parse().unwrap(),
                prefix: 0
            }
        );
    }

    #[test]
    fn rejects_bad_ip_patterns() {
        let cases = [
            ("", "it is empty"),
            (" 1.2.3.4", "contains whitespace"),
            ("1.2.3.4 ", "contains whitespace"),
            ("1.2.3.4/ 8", "contains whitespace"),
            ("fe80::1%eth0", "zone id"),
            ("[::1]", "in brackets"),
            ("[::1]/128", "in brackets"),
            (
                "1.2.3.4/",
                "prefix length \"\" after / is not a decimal number",
            ),
            ("1.2.3.4/+8", "not a decimal number"),
            ("1.2.3.4/-1", "not a decimal number"),
            ("1.2.3.4/8/9", "not a decimal number"),
            ("1.2.3.4/0x8", "not a decimal number"),
            ("1.2.3.4/33", "the prefix length \"33\" is larger than 32"),
            ("1.2.3.4/256", "larger than 32"),
            ("1.2.3.4/99999999999999999999", "larger than 32"),
            ("::/129", "larger than 128"),
            ("1.2.3", "\"1.2.3\" is not a valid IPv4 address"),
            ("1.2.3.256", "not a valid IPv4 address"),
            ("01.2.3.4", "not a valid IPv4 address"),
            ("1.2.3.4.5", "not a valid IPv4 address"),
            ("example.com", "not a valid IPv4 address"),
            ("/8", "\"\" is not a valid IPv4 address"),
            ("1::2::3", "not a valid IPv6 address"),
            ("12345::", "not a valid IPv6 address"),
            ("::g", "not a valid IPv6 address"),
        ];
        for (s, fragment) in cases {
            let e = err_of(parse_ip_pattern(s));
            assert!(
                e.starts_with("is not an IP address or CIDR range: "),
                "{s}: {e}"
            );
            assert!(e.contains(fragment), "{s:?}: {e:?} lacks {fragment:?}");
        }
    }

    #[test]
    fn names_special_ipv4_ranges() {
        let cases = [
            ("10.0.0.1", Some("private")),
            ("10.255.255.255", Some("private")),
            ("10.1.2.3/8", Some("private")),
            ("172.16.0.0/12", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.0", None),
            ("172.15.255.255", None),
            ("192.168.1.0/24", Some("private")),
            ("192.169.0.0", None),
            ("127.0.0.1", Some("loopback")),
            ("127.0.0.0/8", Some("loopback")),
            ("169.254.1.1", Some("link-local")),
            ("169.253.1.1", None),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("255.255.255.255", Some("broadcast")),
            ("255.255.255.254", None),
            ("8.8.8.8", None),
            ("192.0.2.0/24", None),
            ("11.0.0.0/8", None),
            ("1.0.0.0/8", None),
            // Networks that contain or straddle a special range.
            ("0.0.0.0/0", Some("private")),
            ("10.0.0.0/7", Some("private")),
            ("11.0.0.0/7", Some("private")),
            ("172.0.0.0/8", Some("private")),
            ("192.0.0.0/8", Some("private")),
            ("128.0.0.0/1", Some("private")),
            ("96.0.0.0/3", Some("loopback")),
            ("169.0.0.0/8", Some("link-local")),
            ("255.255.255.0/24", Some("broadcast")),
            ("2.0.0.0/7", None),
        ];
        for (s, want) in cases {
            assert_eq!(special_range(&ip(s)), want, "{s}");
        }
    }

    #[test]
    fn names_special_ipv6_ranges() {
        let cases = [
            ("::1", Some("loopback")),
            ("::", Some("unspecified")),
            ("::2", None),
            ("fc00::1", Some("unique-local")),
            ("fd12:3456::/48", Some("unique-local")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fec0::1", None),
            ("fbff::1", None),
            ("2001:db8::/32", None),
            ("2606:4700::1111", None),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:169.254.0.1", Some("link-local")),
            ("::ffff:0.0.0.0", Some("unspecified")),
            ("::ffff:255.255.255.255", Some("broadcast")),
            ("::ffff:8.8.8.8", None),
            ("::ffff:0:0/96", Some("private")),
            ("::ffff:8.0.0.0/104", None),
            ("::ffff:8.0.0.0/100", Some("private")),
            // Networks that contain or straddle a special range.
            ("::/0", Some("unique-local")),
            ("fc00::/6", Some("unique-local")),
            ("fe00::/8", Some("link-local")),
            ("::/127", Some("loopback")),
            ("::/64", Some("loopback")),
            ("::fffe:0:0/95", Some("private")),
            ("2000::/3", None),
        ];
        for (s, want) in cases {
            assert_eq!(special_range(&ip(s)), want, "{s}");
        }
    }

    #[test]
    fn special_range_tolerates_out_of_range_prefixes() {
        // The fields are public, so a prefix beyond the address length must not panic.
        assert_eq!(special_range(&v4([10, 0, 0, 1], 200)), Some("private"));
        assert_eq!(special_range(&v4([8, 8, 8, 8], 255)), None);
        let v6 = IpPattern::V6 {
            addr: Ipv6Addr::LOCALHOST,
            prefix: 255,
        };
        assert_eq!(special_range(&v6), Some("loopback"));
    }
}
