//! Checks of an allow policy's `pattern` against its `pattern_type`. Email
//! addresses, host names and IP ranges are easy to get subtly wrong (a stray
//! space, a zone id, an address where a domain was meant), and an entry the API
//! refuses is much harder to trace back to its policy than one refused here, so
//! the component checks them before sending and says exactly what is wrong.
//!
//! The API accepts only globally reachable IP addresses and refuses the whole
//! batch over one that is not, so an IP pattern is also checked against the
//! ranges that IANA's IPv4 and IPv6 Special-Purpose Address Registries mark
//! "Globally Reachable: False" (plus multicast, which never sends mail),
//! following the registries rather than a looser idea of "private" so that
//! what passes here is exactly what the API takes. IPv6 forms that carry an
//! IPv4 address (mapped, compatible, NAT64, 6to4) are judged by that address,
//! which is where the mail really comes from.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest piece of input quoted in a message.
const SNIPPET: usize = 60;

/// An IP address or CIDR range. Without a `/prefix` the prefix is the full
/// address length (32 or 128). The address is kept as written, so it may have
/// host bits set (`10.1.2.3/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPattern {
    /// An IPv4 address or range.
    V4 {
        /// The address as written, host bits included.
        addr: Ipv4Addr,
        /// The prefix length in bits, 0 to 32.
        prefix: u8,
    },
    /// An IPv6 address or range.
    V6 {
        /// The address as written, host bits included.
        addr: Ipv6Addr,
        /// The prefix length in bits, 0 to 128.
        prefix: u8,
    },
}

/// Checks an email address `local@domain`, splitting at the last `@`.
pub fn check_email(s: &str) -> Result<(), String> {
    email_problem(s).map_or(Ok(()), |why| Err(format!("is not an email address: {why}")))
}

fn email_problem(s: &str) -> Option<String> {
    if plainly_an_email(s) {
        return None;
    }
    email_rules(s)
}

/// Every rule of an email address, one by one, with its message.
fn email_rules(s: &str) -> Option<String> {
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
    if plainly_a_host_name(s) {
        return None;
    }
    host_name_rules(s)
}

/// Every rule of a host name, one by one, with its message.
fn host_name_rules(s: &str) -> Option<String> {
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

/// Whether `s` is an address that passes every rule of [`email_rules`]
/// by plain ASCII: a local part of printable characters without `@`, and a
/// domain that [`plainly_a_host_name`]. One pass over the bytes; anything
/// else (a quoted local part, a long or non-ASCII address) gets the full
/// check, which also words the problem.
fn plainly_an_email(s: &str) -> bool {
    let bytes = s.as_bytes();
    let Some(at) = bytes.iter().rposition(|b| *b == b'@') else {
        return false;
    };
    let (local, domain) = (&bytes[..at], &s[at + 1..]);
    s.len() <= 254
        && (1..=64).contains(&local.len())
        && local.iter().all(|b| b.is_ascii_graphic() && *b != b'@')
        && plainly_a_host_name(domain)
}

/// Whether `s` is a host name that passes every rule of
/// [`host_name_rules`] by plain ASCII: letters, digits, `-` and dots
/// only, at least one letter or `-` (so not dotted digits), and labels of 1
/// to 63 characters that neither start nor end with `-`. Bytes are
/// characters here, so lengths need no counting.
fn plainly_a_host_name(s: &str) -> bool {
    let name = s.strip_suffix('.').unwrap_or(s).as_bytes();
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let mut not_digits = false;
    let mut label = 0usize;
    let mut previous = b'.';
    for &b in name {
        if b == b'.' {
            if label == 0 || previous == b'-' {
                return false;
            }
            label = 0;
        } else {
            let starts_with_dash = label == 0 && b == b'-';
            label += 1;
            if starts_with_dash || label > 63 || !(b.is_ascii_alphanumeric() || b == b'-') {
                return false;
            }
            not_digits |= !b.is_ascii_digit();
        }
        previous = b;
    }
    label > 0 && previous != b'-' && not_digits
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

/// A range of IANA's special-purpose registries that is not globally
/// reachable, as found for a pattern: enough to tell the user which range their
/// pattern hits and why the API will refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonGlobalRange {
    /// The range in CIDR notation, as IANA writes it, e.g. `10.0.0.0/8`.
    pub network: &'static str,
    /// IANA's name for the range, e.g. `private-use`.
    pub name: &'static str,
    /// The document that set the range aside, e.g. `RFC 1918`.
    pub rfc: &'static str,
    /// Whether the pattern (or the IPv4 network it embeds) lies in the range or
    /// spans it, which decides whether narrowing the pattern can help.
    pub overlap: Overlap,
    /// Whether the pattern hits the range as itself or through IPv4 addresses
    /// embedded in an IPv6 form.
    pub via: Via,
}

/// How a pattern relates to a range. CIDR blocks are either nested or disjoint,
/// so overlapping means one holds the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Every address of the pattern is in the range.
    Inside,
    /// The pattern's network is wider and holds the whole range.
    Contains,
}

/// Whether the pattern meets the range as itself, or through IPv4 addresses it
/// carries in an IPv6 form; the message must say which, or an IPv6 pattern
/// blamed on an IPv4 range would make no sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The range is of the pattern's own family.
    Direct,
    /// The pattern is the IPv6 `form` of the IPv4 network `ipv4`/`prefix`
    /// (host bits cleared), and that network meets the range.
    Embedded {
        /// The IPv6 block the pattern lies in.
        form: Ipv4Form,
        /// The embedded IPv4 network's address, host bits cleared.
        ipv4: Ipv4Addr,
        /// The embedded IPv4 network's prefix length in bits, 0 to 32; 32
        /// is a single address, which messages show without `/32`.
        prefix: u8,
    },
    /// The pattern's network holds all of `form`'s block, and so the IPv6 form
    /// of every IPv4 address, the range's among them.
    WholeBlock(Ipv4Form),
}

/// IPv6 blocks whose addresses stand for IPv4 ones. A sender reaches the API
/// through the IPv4 address inside, so that address is what must be global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Form {
    /// `::ffff:0:0/96` (RFC 4291).
    Mapped,
    /// `::/96` (RFC 4291): deprecated, but `::a.b.c.d` still parses and still
    /// names an IPv4 host. `::` and `::1` are not in this form.
    Compatible,
    /// `64:ff9b::/96`, the well-known NAT64 prefix (RFC 6052).
    Nat64,
    /// `2002::/16`, with the IPv4 address in bits 16 to 48 (RFC 3056).
    SixToFour,
}

impl Ipv4Form {
    const ALL: [Ipv4Form; 4] = [
        Ipv4Form::Mapped,
        Ipv4Form::Compatible,
        Ipv4Form::Nat64,
        Ipv4Form::SixToFour,
    ];

    /// The block in CIDR notation.
    pub fn block(self) -> &'static str {
        match self {
            Ipv4Form::Mapped => "::ffff:0:0/96",
            Ipv4Form::Compatible => "::/96",
            Ipv4Form::Nat64 => "64:ff9b::/96",
            Ipv4Form::SixToFour => "2002::/16",
        }
    }

    /// The form's usual name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Ipv4Form::Mapped => "IPv4-mapped",
            Ipv4Form::Compatible => "IPv4-compatible",
            Ipv4Form::Nat64 => "NAT64",
            Ipv4Form::SixToFour => "6to4",
        }
    }

    /// The block's network, its length, and how far the IPv4 address sits
    /// from the low end of the 128 bits.
    fn layout(self) -> (u128, u8, u32) {
        match self {
            Ipv4Form::Mapped => (0xffff << 32, 96, 0),
            Ipv4Form::Compatible => (0, 96, 0),
            Ipv4Form::Nat64 => (v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0]), 96, 0),
            Ipv4Form::SixToFour => (v6([0x2002, 0, 0, 0, 0, 0, 0, 0]), 16, 80),
        }
    }
}

impl fmt::Display for NonGlobalRange {
    /// A fragment to follow "the pattern", e.g. "is in 10.0.0.0/8
    /// (private-use, RFC 1918), which is not globally reachable; ...".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let range = format!("{} ({}, {})", self.network, self.name, self.rfc);
        match self.via {
            Via::Direct => match self.overlap {
                Overlap::Inside => write!(f, "is in {range}")?,
                Overlap::Contains => write!(f, "contains {range}")?,
            },
            Via::Embedded { form, ipv4, prefix } => {
                let ipv4 = if prefix >= 32 {
                    ipv4.to_string()
                } else {
                    format!("{ipv4}/{prefix}")
                };
                let verb = match self.overlap {
                    Overlap::Inside => "is in",
                    Overlap::Contains => "contains",
                };
                write!(
                    f,
                    "is {ipv4} in its {} form ({}), and {ipv4} {verb} {range}",
                    form.name(),
                    form.block()
                )?;
            }
            Via::WholeBlock(form) => write!(
                f,
                "contains {}, the {} form of every IPv4 address, and so of {range}",
                form.block(),
                form.name()
            )?,
        }
        f.write_str(", which is not globally reachable; ")?;
        match self.overlap {
            Overlap::Inside => f.write_str("the API refuses it"),
            Overlap::Contains => f.write_str(
                "the API refuses a range that includes it, so narrow or split the range to leave it out",
            ),
        }
    }
}

/// One row of IANA's registries with Globally Reachable False.
struct Range<A> {
    start: A,
    len: u8,
    network: &'static str,
    name: &'static str,
    rfc: &'static str,
}

const fn range<A>(
    start: A,
    len: u8,
    network: &'static str,
    name: &'static str,
    rfc: &'static str,
) -> Range<A> {
    Range {
        start,
        len,
        network,
        name,
        rfc,
    }
}

const fn v4(a: [u8; 4]) -> u32 {
    u32::from_be_bytes(a)
}

const fn v6(s: [u16; 8]) -> u128 {
    Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]).to_bits()
}

/// The IPv4 ranges that are not globally reachable (IANA's IPv4
/// Special-Purpose Address Registry, plus multicast from the IPv4 Multicast
/// Address Space Registry, since a group address never sends mail). The most
/// commonly meant come first, so that a pattern holding several (like
/// `0.0.0.0/0`) is told about the one its author most likely overlooked; a
/// pattern inside nested ranges is told about the narrowest.
#[rustfmt::skip]
const V4_RANGES: &[Range<u32>] = &[
    range(v4([10, 0, 0, 0]), 8, "10.0.0.0/8", "private-use", "RFC 1918"),
    range(v4([172, 16, 0, 0]), 12, "172.16.0.0/12", "private-use", "RFC 1918"),
    range(v4([192, 168, 0, 0]), 16, "192.168.0.0/16", "private-use", "RFC 1918"),
    range(v4([100, 64, 0, 0]), 10, "100.64.0.0/10", "shared address space", "RFC 6598"),
    range(v4([127, 0, 0, 0]), 8, "127.0.0.0/8", "loopback", "RFC 1122"),
    range(v4([169, 254, 0, 0]), 16, "169.254.0.0/16", "link-local", "RFC 3927"),
    range(v4([0, 0, 0, 0]), 8, "0.0.0.0/8", "this network", "RFC 791"),
    range(v4([0, 0, 0, 0]), 32, "0.0.0.0/32", "this host on this network", "RFC 1122"),
    range(v4([224, 0, 0, 0]), 4, "224.0.0.0/4", "multicast", "RFC 5771"),
    range(v4([240, 0, 0, 0]), 4, "240.0.0.0/4", "reserved", "RFC 1112"),
    range(v4([255, 255, 255, 255]), 32, "255.255.255.255/32", "limited broadcast", "RFC 919"),
    range(v4([192, 0, 2, 0]), 24, "192.0.2.0/24", "documentation TEST-NET-1", "RFC 5737"),
    range(v4([198, 51, 100, 0]), 24, "198.51.100.0/24", "documentation TEST-NET-2", "RFC 5737"),
    range(v4([203, 0, 113, 0]), 24, "203.0.113.0/24", "documentation TEST-NET-3", "RFC 5737"),
    range(v4([198, 18, 0, 0]), 15, "198.18.0.0/15", "benchmarking", "RFC 2544"),
    range(v4([192, 0, 0, 0]), 24, "192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    range(v4([192, 0, 0, 0]), 29, "192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335"),
    range(v4([192, 0, 0, 8]), 32, "192.0.0.8/32", "IPv4 dummy address", "RFC 7600"),
    range(v4([192, 0, 0, 170]), 32, "192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880"),
    range(v4([192, 0, 0, 171]), 32, "192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880"),
    // The rest of the deprecated 6to4 relay block, 192.88.99.0/24, has no
    // Globally Reachable value and stays usable; this address has False.
    range(v4([192, 88, 99, 2]), 32, "192.88.99.2/32", "6a44-relay anycast address", "RFC 6751"),
];

/// Blocks inside `V4_RANGES` that IANA marks globally reachable: anycast
/// services (PCP, RFC 7723; TURN, RFC 8155) that the world does reach.
const V4_EXCEPTIONS: &[(u32, u8)] = &[(v4([192, 0, 0, 9]), 32), (v4([192, 0, 0, 10]), 32)];

/// The IPv6 ranges that are not globally reachable (IANA's IPv6
/// Special-Purpose Address Registry, plus multicast), ordered like
/// `V4_RANGES`. The registry marks the IPv4-mapped block `::ffff:0:0/96`
/// not globally reachable as a whole, but Cloudflare documents refusing the
/// IPv4-mapped forms of the refused IPv4 ranges, not every mapped address; so
/// that block, like the other blocks that carry IPv4 addresses, is judged by
/// the address it carries (see `Ipv4Form`).
#[rustfmt::skip]
const V6_RANGES: &[Range<u128>] = &[
    range(v6([0xfc00, 0, 0, 0, 0, 0, 0, 0]), 7, "fc00::/7", "unique-local", "RFC 4193"),
    range(v6([0xfe80, 0, 0, 0, 0, 0, 0, 0]), 10, "fe80::/10", "link-local unicast", "RFC 4291"),
    range(1, 128, "::1/128", "loopback address", "RFC 4291"),
    range(0, 128, "::/128", "unspecified address", "RFC 4291"),
    range(v6([0xff00, 0, 0, 0, 0, 0, 0, 0]), 8, "ff00::/8", "multicast", "RFC 4291"),
    range(v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0]), 32, "2001:db8::/32", "documentation", "RFC 3849"),
    range(v6([0x3fff, 0, 0, 0, 0, 0, 0, 0]), 20, "3fff::/20", "documentation", "RFC 9637"),
    range(v6([0x2001, 2, 0, 0, 0, 0, 0, 0]), 48, "2001:2::/48", "benchmarking", "RFC 5180"),
    range(v6([0x2001, 0, 0, 0, 0, 0, 0, 0]), 23, "2001::/23", "IETF protocol assignments", "RFC 2928"),
    range(v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0]), 48, "64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215"),
    range(v6([0x100, 0, 0, 0, 0, 0, 0, 0]), 64, "100::/64", "discard-only address block", "RFC 6666"),
    range(v6([0x100, 0, 0, 1, 0, 0, 0, 0]), 64, "100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780"),
    range(v6([0x5f00, 0, 0, 0, 0, 0, 0, 0]), 16, "5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
];

/// Blocks inside 2001::/23 that IANA marks globally reachable: anycast
/// services, AMT, AS112, ORCHIDv2 and drone entity tags are meant to be
/// reached from anywhere.
const V6_EXCEPTIONS: &[(u128, u8)] = &[
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 1]), 128),
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 2]), 128),
    (v6([0x2001, 1, 0, 0, 0, 0, 0, 3]), 128),
    (v6([0x2001, 3, 0, 0, 0, 0, 0, 0]), 32),
    (v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0]), 48),
    (v6([0x2001, 0x20, 0, 0, 0, 0, 0, 0]), 28),
    (v6([0x2001, 0x30, 0, 0, 0, 0, 0, 0]), 28),
];

/// Finds the range that makes the API refuse an IP pattern: the API accepts
/// only globally reachable addresses, so a pattern is refused when any address
/// it covers (or, for an IPv6 form of IPv4, any IPv4 address it carries) is
/// not globally reachable. `None` means the API should accept it.
pub fn non_global_range(p: &IpPattern) -> Option<NonGlobalRange> {
    match *p {
        IpPattern::V4 { addr, prefix } => {
            lookup(V4_RANGES, V4_EXCEPTIONS, u32::from(addr), prefix).map(|r| found(r, Via::Direct))
        }
        IpPattern::V6 { addr, prefix } => {
            let bits = u128::from(addr);
            if let Some(r) = lookup(V6_RANGES, V6_EXCEPTIONS, bits, prefix) {
                return Some(found(r, Via::Direct));
            }
            // The blocks are disjoint, so a pattern meets several only by
            // holding them all, and then any of them makes the point.
            let form = Ipv4Form::ALL.into_iter().find(|form| {
                let (net, len, _) = form.layout();
                overlaps_v6(bits, prefix, net, len)
            })?;
            let (_, len, shift) = form.layout();
            if prefix < len {
                let all = lookup(V4_RANGES, V4_EXCEPTIONS, 0, 0)?;
                return Some(found(all, Via::WholeBlock(form)));
            }
            let v4_prefix = (prefix - len).min(32);
            let v4_bits = (bits >> shift) as u32 & mask_v4(v4_prefix);
            let r = lookup(V4_RANGES, V4_EXCEPTIONS, v4_bits, v4_prefix)?;
            Some(found(
                r,
                Via::Embedded {
                    form,
                    ipv4: Ipv4Addr::from(v4_bits),
                    prefix: v4_prefix,
                },
            ))
        }
    }
}

fn found<A>((r, overlap): (&Range<A>, Overlap), via: Via) -> NonGlobalRange {
    NonGlobalRange {
        network: r.network,
        name: r.name,
        rfc: r.rfc,
        overlap,
        via,
    }
}

/// Bit arithmetic shared by IPv4 and IPv6 addresses.
trait Bits: Copy {
    const WIDTH: u8;
    fn overlaps(a: Self, a_len: u8, b: Self, b_len: u8) -> bool;
}

impl Bits for u32 {
    const WIDTH: u8 = 32;
    fn overlaps(a: Self, a_len: u8, b: Self, b_len: u8) -> bool {
        overlaps_v4(a, a_len, b, b_len)
    }
}

impl Bits for u128 {
    const WIDTH: u8 = 128;
    fn overlaps(a: Self, a_len: u8, b: Self, b_len: u8) -> bool {
        overlaps_v6(a, a_len, b, b_len)
    }
}

/// The range a pattern meets, unless globally reachable exceptions cover the
/// whole pattern. A pattern inside nested ranges gets the narrowest, since it
/// says most; a pattern holding several gets the first in table order.
fn lookup<A: Bits>(
    ranges: &'static [Range<A>],
    exceptions: &[(A, u8)],
    bits: A,
    prefix: u8,
) -> Option<(&'static Range<A>, Overlap)> {
    let prefix = prefix.min(A::WIDTH);
    if covered(exceptions, bits, prefix) {
        return None;
    }
    let mut narrowest_holder: Option<&Range<A>> = None;
    let mut first_held = None;
    for r in ranges
        .iter()
        .filter(|r| A::overlaps(bits, prefix, r.start, r.len))
    {
        if prefix >= r.len {
            if narrowest_holder.is_none_or(|n| r.len > n.len) {
                narrowest_holder = Some(r);
            }
        } else if first_held.is_none() {
            first_held = Some(r);
        }
    }
    narrowest_holder
        .map(|r| (r, Overlap::Inside))
        .or(first_held.map(|r| (r, Overlap::Contains)))
}

/// Whether the exceptions together cover every address of the pattern. Since
/// blocks are nested or disjoint, that holds when one holds the pattern or
/// when those inside it add up to its size (as `2001:1::2/127` is exactly two
/// anycast addresses).
fn covered<A: Bits>(exceptions: &[(A, u8)], bits: A, prefix: u8) -> bool {
    let size = |len: u8| 1u128.checked_shl(u32::from(A::WIDTH - len.min(A::WIDTH)));
    let mut inside = 0u128;
    for &(net, len) in exceptions {
        if !A::overlaps(bits, prefix, net, len) {
            continue;
        }
        if len <= prefix {
            return true;
        }
        inside = inside.saturating_add(size(len).unwrap_or(u128::MAX));
    }
    size(prefix).is_some_and(|whole| inside == whole)
}

fn mask_v4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(len.min(32)))
        .unwrap_or(0)
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
    crate::params::json_fields::quoted(s, SNIPPET)
}

#[cfg(test)]
mod tests;
