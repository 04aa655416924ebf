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

/// The range named for `s`, or `None` when the API should accept it.
#[track_caller]
fn named(s: &str) -> Option<&'static str> {
    non_global_range(&ip(s)).map(|r| r.network)
}

#[track_caller]
fn assert_cases(cases: &[(&str, Option<&str>)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter(|&&(s, want)| named(s) != want)
        .map(|&(s, want)| format!("{s}: got {:?}, want {want:?}", named(s)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn ordinary_public_patterns_pass() {
    assert_cases(&[
        ("1.1.1.1", None),
        ("8.8.8.8", None),
        ("8.8.8.0/24", None),
        ("11.0.0.0/8", None),
        ("2.0.0.0/7", None),
        ("2606:4700::/32", None),
        ("2606:4700::1111", None),
        ("2001:4860:4860::8888", None),
        ("2a00::/12", None),
        // Deprecated, with no Globally Reachable value of its own.
        ("192.88.99.1", None),
        ("2620:4f:8000::/48", None),
    ]);
}

#[test]
fn ipv4_ranges_end_where_iana_says() {
    // First and last address of each range, and the global neighbours.
    assert_cases(&[
        ("0.0.0.0", Some("0.0.0.0/32")),
        ("0.0.0.1", Some("0.0.0.0/8")),
        ("0.255.255.255", Some("0.0.0.0/8")),
        ("1.0.0.0", None),
        ("9.255.255.255", None),
        ("10.0.0.0", Some("10.0.0.0/8")),
        ("10.255.255.255", Some("10.0.0.0/8")),
        ("11.0.0.0", None),
        ("100.63.255.255", None),
        ("100.64.0.0", Some("100.64.0.0/10")),
        ("100.127.255.255", Some("100.64.0.0/10")),
        ("100.128.0.0", None),
        ("126.255.255.255", None),
        ("127.0.0.0", Some("127.0.0.0/8")),
        ("127.0.0.1", Some("127.0.0.0/8")),
        ("127.255.255.255", Some("127.0.0.0/8")),
        ("128.0.0.0", None),
        ("169.253.255.255", None),
        ("169.254.0.0", Some("169.254.0.0/16")),
        ("169.254.255.255", Some("169.254.0.0/16")),
        ("169.255.0.0", None),
        ("172.15.255.255", None),
        ("172.16.0.0", Some("172.16.0.0/12")),
        ("172.31.255.255", Some("172.16.0.0/12")),
        ("172.32.0.0", None),
        ("191.255.255.255", None),
        ("192.0.0.0", Some("192.0.0.0/29")),
        ("192.0.0.7", Some("192.0.0.0/29")),
        ("192.0.0.8", Some("192.0.0.8/32")),
        ("192.0.0.11", Some("192.0.0.0/24")),
        ("192.0.0.170", Some("192.0.0.170/32")),
        ("192.0.0.171", Some("192.0.0.171/32")),
        ("192.0.0.255", Some("192.0.0.0/24")),
        ("192.0.1.0", None),
        ("192.0.1.255", None),
        ("192.0.2.0", Some("192.0.2.0/24")),
        ("192.0.2.255", Some("192.0.2.0/24")),
        ("192.0.3.0", None),
        ("192.88.99.2", Some("192.88.99.2/32")),
        ("192.88.99.3", None),
        ("192.167.255.255", None),
        ("192.168.0.0", Some("192.168.0.0/16")),
        ("192.168.255.255", Some("192.168.0.0/16")),
        ("192.169.0.0", None),
        ("198.17.255.255", None),
        ("198.18.0.0", Some("198.18.0.0/15")),
        ("198.19.255.255", Some("198.18.0.0/15")),
        ("198.20.0.0", None),
        ("198.51.99.255", None),
        ("198.51.100.0", Some("198.51.100.0/24")),
        ("198.51.100.255", Some("198.51.100.0/24")),
        ("198.51.101.0", None),
        ("203.0.112.255", None),
        ("203.0.113.0", Some("203.0.113.0/24")),
        ("203.0.113.255", Some("203.0.113.0/24")),
        ("203.0.114.0", None),
        ("223.255.255.255", None),
        ("224.0.0.0", Some("224.0.0.0/4")),
        ("239.255.255.255", Some("224.0.0.0/4")),
        ("240.0.0.0", Some("240.0.0.0/4")),
        ("255.255.255.254", Some("240.0.0.0/4")),
        ("255.255.255.255", Some("255.255.255.255/32")),
    ]);
}

#[test]
fn ipv4_networks_are_refused_when_they_meet_a_range() {
    assert_cases(&[
        ("0.0.0.0/0", Some("10.0.0.0/8")),
        ("10.0.0.0/8", Some("10.0.0.0/8")),
        ("10.1.2.3/8", Some("10.0.0.0/8")),
        ("10.0.0.0/7", Some("10.0.0.0/8")),
        ("11.0.0.0/7", Some("10.0.0.0/8")),
        ("8.0.0.0/6", Some("10.0.0.0/8")),
        ("172.0.0.0/8", Some("172.16.0.0/12")),
        ("192.0.0.0/8", Some("192.168.0.0/16")),
        ("100.0.0.0/8", Some("100.64.0.0/10")),
        ("100.64.0.0/11", Some("100.64.0.0/10")),
        ("100.0.0.0/10", None),
        ("100.192.0.0/10", None),
        ("198.16.0.0/15", None),
        ("198.20.0.0/15", None),
        ("198.16.0.0/14", Some("198.18.0.0/15")),
        ("96.0.0.0/3", Some("100.64.0.0/10")),
        ("112.0.0.0/4", Some("127.0.0.0/8")),
        ("169.0.0.0/8", Some("169.254.0.0/16")),
        ("224.0.0.0/4", Some("224.0.0.0/4")),
        ("224.0.0.0/3", Some("224.0.0.0/4")),
        ("240.0.0.0/5", Some("240.0.0.0/4")),
        ("248.0.0.0/5", Some("240.0.0.0/4")),
        ("255.255.255.0/24", Some("240.0.0.0/4")),
        ("192.88.99.0/24", Some("192.88.99.2/32")),
        ("192.88.99.0/31", None),
        ("192.0.0.0/24", Some("192.0.0.0/24")),
        ("192.0.0.0/28", Some("192.0.0.0/24")),
        ("192.0.0.8/31", Some("192.0.0.0/24")),
        ("192.0.0.8/30", Some("192.0.0.0/24")),
    ]);
}

#[test]
fn globally_reachable_blocks_inside_refused_ones_pass() {
    assert_cases(&[
        ("192.0.0.9", None),
        ("192.0.0.9/32", None),
        ("192.0.0.10", None),
        ("192.0.0.8", Some("192.0.0.8/32")),
        ("2001:1::1", None),
        ("2001:1::2", None),
        ("2001:1::3", None),
        // Exactly the two anycast addresses ::2 and ::3.
        ("2001:1::2/127", None),
        ("2001:1::", Some("2001::/23")),
        ("2001:1::4", Some("2001::/23")),
        ("2001:1::/126", Some("2001::/23")),
        ("2001:1::/127", Some("2001::/23")),
        ("2001:3::", None),
        ("2001:3:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:3::/32", None),
        ("2001:2:ffff::", Some("2001::/23")),
        ("2001:4::", Some("2001::/23")),
        ("2001:4:112::/48", None),
        ("2001:4:112:ffff::1", None),
        ("2001:4:111:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:4:113::", Some("2001::/23")),
        ("2001:4:112::/47", Some("2001::/23")),
        ("2001:20::/28", None),
        ("2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:30::/28", None),
        ("2001:3f:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:40::", Some("2001::/23")),
        // 2001:20::/28 and 2001:30::/28 together.
        ("2001:20::/27", None),
        ("2001:10::/27", Some("2001::/23")),
    ]);
}

#[test]
fn ipv6_ranges_end_where_iana_says() {
    assert_cases(&[
        ("::", Some("::/128")),
        ("::1", Some("::1/128")),
        ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", None),
        ("64:ff9b:1::", Some("64:ff9b:1::/48")),
        ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", Some("64:ff9b:1::/48")),
        ("64:ff9b:2::", None),
        ("ff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("100::", Some("100::/64")),
        ("100::ffff:ffff:ffff:ffff", Some("100::/64")),
        ("100:0:0:1::", Some("100:0:0:1::/64")),
        ("100:0:0:1:ffff:ffff:ffff:ffff", Some("100:0:0:1::/64")),
        ("100:0:0:2::", None),
        ("2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001::", Some("2001::/23")),
        ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", Some("2001::/23")),
        ("2001:200::", None),
        ("2001:2::", Some("2001:2::/48")),
        ("2001:2:0:ffff:ffff:ffff:ffff:ffff", Some("2001:2::/48")),
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8::", Some("2001:db8::/32")),
        (
            "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
            Some("2001:db8::/32"),
        ),
        ("2001:db9::", None),
        ("3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("3fff::", Some("3fff::/20")),
        ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", Some("3fff::/20")),
        ("3fff:1000::", None),
        ("5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("5f00::", Some("5f00::/16")),
        ("5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("5f00::/16")),
        ("5f01::", None),
        ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("fc00::", Some("fc00::/7")),
        ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fc00::/7")),
        ("fe00::", None),
        ("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("fe80::", Some("fe80::/10")),
        ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("fe80::/10")),
        ("fec0::", None),
        ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("ff00::", Some("ff00::/8")),
        ("ff02::1", Some("ff00::/8")),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", Some("ff00::/8")),
    ]);
}

#[test]
fn ipv6_networks_are_refused_when_they_meet_a_range() {
    assert_cases(&[
        ("::/0", Some("fc00::/7")),
        ("2000::/3", Some("2001:db8::/32")),
        ("2001::/16", Some("2001:db8::/32")),
        ("2001::/23", Some("2001::/23")),
        ("2001::/32", Some("2001::/23")),
        ("2001:2::/47", Some("2001::/23")),
        ("fc00::/6", Some("fc00::/7")),
        ("fd12:3456::/48", Some("fc00::/7")),
        ("fe00::/8", Some("fe80::/10")),
        ("::/127", Some("::1/128")),
        ("::/64", Some("::1/128")),
        ("64:ff9b::/47", Some("64:ff9b:1::/48")),
        ("100::/63", Some("100::/64")),
        ("5f00::/15", Some("5f00::/16")),
        ("3ff0::/12", Some("3fff::/20")),
        ("2001:200::/23", None),
    ]);
}

#[test]
fn ipv6_forms_of_ipv4_are_judged_by_the_ipv4_address() {
    assert_cases(&[
        ("::ffff:8.8.8.8", None),
        ("::ffff:1.1.1.0/120", None),
        ("::ffff:192.0.0.9", None),
        ("::ffff:10.0.0.1", Some("10.0.0.0/8")),
        ("::ffff:127.0.0.1", Some("127.0.0.0/8")),
        ("::ffff:169.254.0.1", Some("169.254.0.0/16")),
        ("::ffff:100.64.0.1", Some("100.64.0.0/10")),
        ("::ffff:0.0.0.0", Some("0.0.0.0/32")),
        ("::ffff:255.255.255.255", Some("255.255.255.255/32")),
        ("::ffff:224.0.0.1", Some("224.0.0.0/4")),
        ("::ffff:0:0/96", Some("10.0.0.0/8")),
        ("::ffff:8.0.0.0/104", None),
        ("::ffff:8.0.0.0/100", Some("10.0.0.0/8")),
        ("::ffff:10.1.2.3/104", Some("10.0.0.0/8")),
        ("::fffe:0:0/95", Some("10.0.0.0/8")),
        // IPv4-compatible, apart from :: and ::1.
        ("::8.8.8.8", None),
        ("::10.0.0.1", Some("10.0.0.0/8")),
        ("::2", Some("0.0.0.0/8")),
        ("::192.168.1.1", Some("192.168.0.0/16")),
        // NAT64.
        ("64:ff9b::8.8.8.8", None),
        ("64:ff9b::808:800/120", None),
        ("64:ff9b::10.0.0.1", Some("10.0.0.0/8")),
        ("64:ff9b::a9fe:a9fe", Some("169.254.0.0/16")),
        ("64:ff9b::192.0.2.1", Some("192.0.2.0/24")),
        ("64:ff9b::/96", Some("10.0.0.0/8")),
        ("64:ff9b::/64", Some("10.0.0.0/8")),
        // 6to4: bits 16 to 48 hold the IPv4 address.
        ("2002:808:808::1", None),
        ("2002:808:808::/48", None),
        ("2002:101:100::/40", None),
        ("2002:a00:1::1", Some("10.0.0.0/8")),
        ("2002:a00::/24", Some("10.0.0.0/8")),
        ("2002:c0a8::/32", Some("192.168.0.0/16")),
        ("2002:7f00:1:ffff::/64", Some("127.0.0.0/8")),
        ("2002:c000:9::/48", None),
        ("2002::/16", Some("10.0.0.0/8")),
        ("2002::/15", Some("10.0.0.0/8")),
        ("2003::", None),
    ]);
}

#[test]
fn says_how_the_pattern_meets_the_range() {
    let r = non_global_range(&ip("::ffff:10.1.2.3")).unwrap();
    assert_eq!(r.overlap, Overlap::Inside);
    assert_eq!(
        r.via,
        Via::Embedded {
            form: Ipv4Form::Mapped,
            ipv4: Ipv4Addr::new(10, 1, 2, 3),
            prefix: 32
        }
    );
    let r = non_global_range(&ip("2002:b00::/23")).unwrap();
    assert_eq!(r.overlap, Overlap::Contains);
    assert_eq!(
        r.via,
        Via::Embedded {
            form: Ipv4Form::SixToFour,
            ipv4: Ipv4Addr::new(10, 0, 0, 0),
            prefix: 7
        }
    );
    let r = non_global_range(&ip("64:ff9b::/80")).unwrap();
    assert_eq!(r.via, Via::WholeBlock(Ipv4Form::Nat64));
    assert_eq!(r.overlap, Overlap::Contains);
    let r = non_global_range(&ip("10.0.0.0/7")).unwrap();
    assert_eq!((r.overlap, r.via), (Overlap::Contains, Via::Direct));
    let r = non_global_range(&ip("fe80::1")).unwrap();
    assert_eq!((r.overlap, r.via), (Overlap::Inside, Via::Direct));
}

#[test]
fn messages_name_the_range_and_why() {
    let cases = [
        (
            "10.1.2.3",
            "is in 10.0.0.0/8 (private-use, RFC 1918), which is not globally reachable; the API refuses it",
        ),
        (
            "0.0.0.0/0",
            "contains 10.0.0.0/8 (private-use, RFC 1918), which is not globally reachable; the API refuses a range that includes it, so narrow or split the range to leave it out",
        ),
        (
            "::ffff:10.0.0.1",
            "is 10.0.0.1 in its IPv4-mapped form (::ffff:0:0/96), and 10.0.0.1 is in 10.0.0.0/8 (private-use, RFC 1918), which is not globally reachable; the API refuses it",
        ),
        (
            "2002:c0a8::/32",
            "is 192.168.0.0/16 in its 6to4 form (2002::/16), and 192.168.0.0/16 is in 192.168.0.0/16 (private-use, RFC 1918), which is not globally reachable; the API refuses it",
        ),
        (
            "64:ff9b::/64",
            "contains 64:ff9b::/96, the NAT64 form of every IPv4 address, and so of 10.0.0.0/8 (private-use, RFC 1918), which is not globally reachable; the API refuses a range that includes it, so narrow or split the range to leave it out",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(non_global_range(&ip(s)).unwrap().to_string(), want, "{s}");
    }
    for (s, fragments) in [
        ("100.64.0.1", ["100.64.0.0/10", "shared address space"]),
        ("fe80::1", ["fe80::/10", "link-local"]),
        ("2001:db8::1", ["2001:db8::/32", "documentation"]),
        ("2001:2::1", ["2001:2::/48", "benchmarking"]),
        ("198.18.0.1", ["198.18.0.0/15", "benchmarking"]),
        ("ff02::1", ["ff00::/8", "multicast"]),
        (
            "::ffff:8.0.0.0/100",
            ["0.0.0.0/4 contains 10.0.0.0/8", "narrow"],
        ),
    ] {
        let message = non_global_range(&ip(s)).unwrap().to_string();
        for fragment in fragments.into_iter().chain(["not globally reachable"]) {
            assert!(
                message.contains(fragment),
                "{s}: {message:?} lacks {fragment:?}"
            );
        }
    }
}

#[test]
fn tables_say_what_their_numbers_say() {
    // The CIDR text shown to users must be the block that is checked, with
    // no host bits, and every exception must sit inside a refused range.
    for r in V4_RANGES {
        let want = v4(r.start.to_be_bytes(), r.len);
        assert_eq!(ip(r.network), want, "{}", r.network);
        assert_eq!(r.start & !mask_v4(r.len), 0, "{}", r.network);
    }
    for r in V6_RANGES {
        let want = IpPattern::V6 {
            addr: Ipv6Addr::from(r.start),
            prefix: r.len,
        };
        assert_eq!(ip(r.network), want, "{}", r.network);
        assert_eq!(
            r.start.checked_shl(u32::from(r.len)).unwrap_or(0),
            0,
            "{}",
            r.network
        );
    }
    for &(net, len) in V4_EXCEPTIONS {
        assert!(V4_RANGES
            .iter()
            .any(|r| r.len < len && overlaps_v4(net, len, r.start, r.len)));
    }
    for &(net, len) in V6_EXCEPTIONS {
        assert!(V6_RANGES
            .iter()
            .any(|r| r.len < len && overlaps_v6(net, len, r.start, r.len)));
    }
    for form in Ipv4Form::ALL {
        let (net, len, _) = form.layout();
        let want = IpPattern::V6 {
            addr: Ipv6Addr::from(net),
            prefix: len,
        };
        assert_eq!(ip(form.block()), want, "{form:?}");
    }
}

#[test]
fn non_global_range_tolerates_out_of_range_prefixes() {
    // The fields are public, so a prefix beyond the address length must not panic.
    assert_eq!(
        non_global_range(&v4([10, 0, 0, 1], 200)).map(|r| r.network),
        Some("10.0.0.0/8")
    );
    assert_eq!(non_global_range(&v4([8, 8, 8, 8], 255)), None);
    assert_eq!(non_global_range(&v4([192, 0, 0, 9], 33)), None);
    let v6 = |addr: &str, prefix| IpPattern::V6 {
        addr: addr.parse().unwrap(),
        prefix,
    };
    assert_eq!(
        non_global_range(&v6("::1", 255)).map(|r| r.network),
        Some("::1/128")
    );
    assert_eq!(
        non_global_range(&v6("::ffff:10.0.0.1", 200)).map(|r| r.network),
        Some("10.0.0.0/8")
    );
    assert_eq!(non_global_range(&v6("2002:808:808::", 129)), None);
    assert_eq!(non_global_range(&v6("2001:1::2", 130)), None);
}

proptest::proptest! {
    /// The quick acceptance of plain ASCII names and addresses accepts
    /// nothing that the rules one by one refuse.
    #[test]
    fn plain_names_and_addresses_pass_every_rule(
        s in "[a-zA-Z0-9.@\"-]{0,70}|[0-9.]{1,20}|[a-z-]{60,70}\\.[a-z]{2}|[a-z.]{250,258}"
    ) {
        if plainly_a_host_name(&s) {
            proptest::prop_assert_eq!(host_name_rules(&s), None);
        }
        if plainly_an_email(&s) {
            proptest::prop_assert_eq!(email_rules(&s), None);
        }
    }
}

#[test]
fn plain_names_and_addresses_are_taken_quickly() {
    assert!(plainly_a_host_name("mail-1.partner.example.org."));
    assert!(plainly_an_email("alerts+x@monitoring.example.com"));
    for not_plain in [
        "",
        ".",
        "1.2.3.4",
        "-a.com",
        "a-.com",
        "a..b",
        "bücher.de",
        "a b.com",
        &"a".repeat(64),
    ] {
        assert!(!plainly_a_host_name(not_plain), "{not_plain:?}");
    }
    for not_plain in [
        "a@b@c.com",
        "\"a@b\"@c.com",
        "@c.com",
        "a@",
        "a b@c.com",
        &format!("{}@c.com", "a".repeat(65)),
    ] {
        assert!(!plainly_an_email(not_plain), "{not_plain:?}");
    }
}
