//! Properties of [`prepare`] over generated parameters.
//!
//! Two families: every batch that follows the contract's rules is accepted
//! and sent exactly as given, and no document whatsoever makes `prepare`
//! panic or name a place that is not in the document.

use super::*;
use crate::config::CONFIG_KEYS;
use crate::redact::{Secrets, MIN_SECRET_CHARS};
use crate::validate::{DEPRECATED, INPUT_KEYS};
use proptest::array::{uniform3, uniform4};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Only credential values ever carry this text, so it may appear in no
/// message, warning or preview.
const CANARY: &str = "Cnry7Secret";

/// Strings matching `pattern`, parsed once rather than at every case.
fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .expect("a valid generator pattern")
        .boxed()
}

const BATCH_PATH: &str = "/email-security/settings/allow_policies/batch";

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        // A failure found here becomes a unit test next to the code it is
        // about, so no regression files are written.
        failure_persistence: None,
        // Plenty for generating test data, and far cheaper than ChaCha in an
        // unoptimised test build.
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Valid parameters
// ---------------------------------------------------------------------------

fn account_id() -> impl Strategy<Value = String> {
    re("[0-9a-f]{32}")
}

/// A policy id as JSON: a UUID in any case, or a positive 32-bit integer
/// of the older API (sent as given, with a warning).
fn policy_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(1u32)),
        Just(Value::from(i32::MAX as u32)),
        (1..=i32::MAX as u32).prop_map(Value::from),
        re("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
            .prop_map(Value::from),
    ]
}

/// How the validator decides whether two ids name the same policy.
fn identity(id: &Value) -> String {
    match id {
        Value::String(s) => s.to_ascii_lowercase(),
        other => other.to_string(),
    }
}

fn host_name() -> BoxedStrategy<String> {
    let label = prop_oneof![
        8 => re("[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?"),
        1 => select(&["bücher", "пример", "例え", "xn--bcher-kva"][..]).prop_map(String::from),
        1 => Just("a".repeat(63)),
    ];
    (
        vec(label, 0..3),
        re("[a-z]{2,6}"),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mut labels, tld, upper, dot)| {
            labels.push(tld);
            let mut name = labels.join(".");
            if upper {
                name = name.to_ascii_uppercase();
            }
            if dot {
                name.push('.');
            }
            name
        })
        .boxed()
}

fn email() -> BoxedStrategy<String> {
    let local = prop_oneof![
        re("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9_+-]{1,8}){0,2}"),
        re("\"[a-z]{1,5}@[a-z]{1,5}\""),
        Just("a".repeat(64)),
    ];
    (local, host_name())
        .prop_map(|(l, d)| format!("{l}@{d}"))
        .boxed()
}

fn ip_pattern() -> BoxedStrategy<String> {
    let with_prefix = |addr: String, prefix: Option<u8>| match prefix {
        Some(p) => format!("{addr}/{p}"),
        None => addr,
    };
    // Only globally reachable networks pass: IPv4 inside a /8 that holds
    // no special-purpose range, IPv6 inside 2400::/6 (regional registries'
    // unicast space).
    let public_v4_first_octets: Vec<u8> = (1..=223)
        .filter(|o| ![10, 100, 127, 169, 172, 192, 198, 203].contains(o))
        .collect();
    prop_oneof![
        (
            select(public_v4_first_octets),
            any::<[u8; 3]>(),
            proptest::option::of(8u8..=32)
        )
            .prop_map(move |(first, [b, c, d], p)| with_prefix(
                Ipv4Addr::new(first, b, c, d).to_string(),
                p
            )),
        (any::<u128>(), proptest::option::of(6u8..=128)).prop_map(move |(a, p)| {
            let addr = (0x2400u128 << 112) | (a & (u128::MAX >> 6));
            with_prefix(Ipv6Addr::from(addr).to_string(), p)
        }),
        select(
            &[
                "8.8.8.8",
                "8.8.4.0/24",
                "2606:4700::/32",
                "::ffff:1.1.1.1",
                "192.0.0.9"
            ][..]
        )
        .prop_map(String::from),
    ]
    .boxed()
}

/// Regular expressions Java compiles: atoms, quantifiers and groups
/// (capturing, named, non-capturing, with flags) of alternatives, nested a
/// few levels.
fn regex() -> BoxedStrategy<String> {
    let atom = prop_oneof![
        re("[a-z0-9@]"),
        select(&["\\.", ".", "\\d", "\\w", "[a-z]", "[^@]", "\\Q.+\\E", "\\p{L}", "\\x41"][..])
            .prop_map(String::from),
    ];
    let quantifier = select(&["", "", "*", "+", "?", "{1,3}", "{2}", "*?", "++"][..]);
    let piece = (atom, quantifier).prop_map(|(a, q)| format!("{a}{q}"));
    let sequence = vec(piece, 1..5).prop_map(|p| p.concat());
    sequence
        .prop_recursive(2, 12, 3, |inner| {
            (
                vec(inner.clone(), 1..3),
                select(&["", "", "*", "+", "?", "{0,2}"][..]),
                select(&["(", "(?:", "(?i)(?:", "(?<g>"][..]),
                inner,
            )
                .prop_map(|(alternatives, q, open, tail)| {
                    format!("{open}{}){q}{tail}", alternatives.join("|"))
                })
        })
        .prop_map(|pattern| {
            // Group names must differ: number them in order.
            let mut named = pattern.split("(?<g>");
            let mut out = named.next().unwrap_or_default().to_string();
            for (n, rest) in named.enumerate() {
                out.push_str(&format!("(?<g{n}>{rest}"));
            }
            out
        })
        .boxed()
}

/// `(pattern_type, is_regex, pattern)` that the contract lets through.
fn pattern_spec() -> BoxedStrategy<(&'static str, bool, String)> {
    prop_oneof![
        email().prop_map(|p| ("EMAIL", false, p)),
        host_name().prop_map(|p| ("DOMAIN", false, p)),
        ip_pattern().prop_map(|p| ("IP", false, p)),
        (select(&["EMAIL", "DOMAIN", "IP"][..]), regex(),).prop_map(|(t, p)| (t, true, p)),
        (
            select(&["EMAIL", "DOMAIN", "IP"][..]),
            Just("a".repeat(1024))
        )
            .prop_map(|(t, p)| (t, true, p)),
    ]
    .boxed()
}

/// Absent, `null`, or a comment of up to 1024 characters.
fn comments() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        re(".{0,40}").prop_map(|s| Some(Value::from(s))),
        Just(Some(Value::from("ü".repeat(1024)))),
    ]
    .boxed()
}

const FLAGS: [&str; 4] = [
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
];

/// The deprecated boolean that each of [`FLAGS`] replaced, if any.
fn deprecated_of(flag: &str) -> Option<&'static str> {
    DEPRECATED
        .iter()
        .find(|(_, new)| *new == flag)
        .map(|(old, _)| *old)
}

/// One item as given in the input, and as it must appear in the body.
#[derive(Clone, Debug)]
struct Item {
    given: Map<String, Value>,
    sent: Map<String, Value>,
}

impl Item {
    fn both(&mut self, key: &str, value: Value) {
        self.given.insert(key.to_string(), value.clone());
        self.sent.insert(key.to_string(), value);
    }
}

/// A create (without an id) or a replace (with one): every field, and, for
/// some flags, the deprecated boolean saying the same, which is not sent.
fn full_item(with_id: bool) -> BoxedStrategy<Item> {
    let id = if with_id {
        policy_id().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    };
    (
        id,
        pattern_spec(),
        uniform4(any::<bool>()),
        uniform4(any::<bool>()),
        comments(),
    )
        .prop_map(|(id, (kind, is_regex, pattern), flags, echo, comments)| {
            let mut item = Item {
                given: Map::new(),
                sent: Map::new(),
            };
            if let Some(id) = id {
                item.both("id", id);
            }
            item.both("pattern", pattern.into());
            item.both("pattern_type", kind.into());
            item.both("is_regex", is_regex.into());
            for ((name, value), echo) in FLAGS.iter().zip(flags).zip(echo) {
                item.both(name, value.into());
                if let (true, Some(old)) = (echo, deprecated_of(name)) {
                    item.given.insert(old.to_string(), value.into());
                }
            }
            if let Some(c) = comments {
                item.both("comments", c);
            }
            item
        })
        .boxed()
}

/// A patch: any subset of the fields. A deprecated boolean either repeats
/// its replacement or, where the replacement is absent, is sent as it.
fn patch_item() -> BoxedStrategy<Item> {
    (
        policy_id(),
        pattern_spec(),
        uniform3(any::<bool>()),
        uniform4(proptest::option::of(any::<bool>())),
        uniform4(any::<bool>()),
        uniform4(any::<bool>()),
        comments(),
    )
        .prop_map(
            |(id, (kind, is_regex, pattern), keep, flags, echo, moved, comments)| {
                let mut item = Item {
                    given: Map::new(),
                    sent: Map::new(),
                };
                item.both("id", id);
                // Leaving out any of the three keeps the pattern checkable only
                // against what remains, which a valid triple always passes.
                if keep[0] {
                    item.both("pattern", pattern.into());
                }
                if keep[1] {
                    item.both("pattern_type", kind.into());
                }
                if keep[2] {
                    item.both("is_regex", is_regex.into());
                }
                for (((name, value), echo), moved) in FLAGS.iter().zip(flags).zip(echo).zip(moved) {
                    let old = deprecated_of(name);
                    match (value, old) {
                        (Some(v), Some(old)) if echo => {
                            item.both(name, v.into());
                            item.given.insert(old.to_string(), v.into());
                        }
                        (Some(v), _) => item.both(name, v.into()),
                        // Only the deprecated name given: its value moves.
                        (None, Some(old)) if echo => {
                            item.given.insert(old.to_string(), moved.into());
                            item.sent.insert(name.to_string(), moved.into());
                        }
                        (None, _) => {}
                    }
                }
                if let Some(c) = comments {
                    item.both("comments", c);
                }
                item
            },
        )
        .boxed()
}

/// Where the account id is given.
#[derive(Clone, Copy, Debug)]
enum AccountIn {
    Input,
    Config,
    Both,
}

#[derive(Clone, Debug)]
struct ValidCase {
    config: Value,
    input: Value,
    expected_body: Value,
    account: String,
    empty: bool,
    pretty: bool,
}

fn valid_config() -> BoxedStrategy<Map<String, Value>> {
    let credentials = prop_oneof![
        re("[A-Za-z0-9_-]{1,40}").prop_map(|t| vec![("api_token", Value::from(t))]),
        (email(), re("[A-Za-z0-9]{1,40}"))
            .prop_map(|(e, k)| vec![("api_email", Value::from(e)), ("api_key", Value::from(k))]),
    ];
    let base_url = proptest::option::of(select(
        &[
            "https://api.cloudflare.com/client/v4",
            "https://api.cloudflare.com/client/v4/",
            "HTTPS://proxy.example.com:8443/cf",
            "http://127.0.0.1:8787",
            "http://localhost:1/x/",
            "http://[::1]:8080/client/v4",
        ][..],
    ));
    (
        credentials,
        base_url,
        proptest::option::of(1u64..=600_000),
        proptest::option::of(1u64..=600_000),
        proptest::option::of(0u64..=10),
        proptest::option::of(1u64..=32 * 1024 * 1024),
    )
        .prop_map(
            |(credentials, base_url, timeout, connect, retries, bytes)| {
                let mut map = Map::new();
                for (k, v) in credentials {
                    map.insert(k.into(), v);
                }
                let optional = [
                    ("base_url", base_url.map(Value::from)),
                    ("timeout_ms", timeout.map(Value::from)),
                    ("connect_timeout_ms", connect.map(Value::from)),
                    ("max_retries", retries.map(Value::from)),
                    ("max_response_bytes", bytes.map(Value::from)),
                ];
                for (k, v) in optional {
                    if let Some(v) = v {
                        map.insert(k.into(), v);
                    }
                }
                map
            },
        )
        .boxed()
}

fn valid_case() -> impl Strategy<Value = ValidCase> {
    let deletes = vec(policy_id(), 0..4);
    let patches = vec(patch_item(), 0..4);
    let puts = vec(full_item(true), 0..4);
    let posts = vec(full_item(false), 0..4);
    let lists =
        (deletes, patches, puts, posts).prop_map(|(mut deletes, mut patches, mut puts, posts)| {
            // Each policy may be named once: a repeated id is replaced by an
            // unused one.
            let mut seen = BTreeSet::new();
            let mut fresh = 1_000_000_000u32..;
            let mut unique = |id: &mut Value| {
                while !seen.insert(identity(id)) {
                    *id = Value::from(fresh.next().unwrap_or(1));
                }
            };
            deletes.iter_mut().for_each(&mut unique);
            for item in patches.iter_mut().chain(puts.iter_mut()) {
                if let Some(id) = item.given.get_mut("id") {
                    unique(id);
                    item.sent.insert("id".into(), id.clone());
                }
            }
            (deletes, patches, puts, posts)
        });
    (
        lists,
        valid_config(),
        account_id(),
        account_id(),
        select(&[AccountIn::Input, AccountIn::Config, AccountIn::Both][..]),
        uniform4(any::<bool>()),
        any::<bool>(),
    )
        .prop_map(
            |(
                (deletes, patches, puts, posts),
                mut config,
                input_account,
                config_account,
                account_in,
                write_empty,
                pretty,
            )| {
                let mut input = Map::new();
                let account = match account_in {
                    AccountIn::Input => {
                        input.insert("account_id".into(), input_account.clone().into());
                        input_account
                    }
                    AccountIn::Config => {
                        config.insert("account_id".into(), config_account.clone().into());
                        config_account
                    }
                    AccountIn::Both => {
                        input.insert("account_id".into(), input_account.clone().into());
                        config.insert("account_id".into(), config_account.into());
                        input_account
                    }
                };
                let deletes_sent: Vec<Value> =
                    deletes.iter().map(|id| json!({ "id": id })).collect();
                let empty =
                    deletes.is_empty() && patches.is_empty() && puts.is_empty() && posts.is_empty();
                let lists = [
                    ("deletes", deletes_sent.clone(), deletes_sent),
                    split("patches", patches),
                    split("puts", puts),
                    split("posts", posts),
                ];
                let mut expected = Map::new();
                for ((name, given, sent), write) in lists.into_iter().zip(write_empty) {
                    if !given.is_empty() || write {
                        input.insert(name.into(), Value::Array(given));
                    }
                    expected.insert(name.into(), Value::Array(sent));
                }
                ValidCase {
                    config: Value::Object(config),
                    input: Value::Object(input),
                    expected_body: Value::Object(expected),
                    account,
                    empty,
                    pretty,
                }
            },
        )
}

fn split(name: &'static str, items: Vec<Item>) -> (&'static str, Vec<Value>, Vec<Value>) {
    let (given, sent) = items
        .into_iter()
        .map(|i| (Value::Object(i.given), Value::Object(i.sent)))
        .unzip();
    (name, given, sent)
}

fn text(value: &Value, pretty: bool) -> String {
    if pretty {
        serde_json::to_string_pretty(value).unwrap()
    } else {
        value.to_string()
    }
}

proptest! {
    #![proptest_config(cases(400))]

    /// Every batch that follows the contract is accepted, and its body holds
    /// exactly the given items, in order, with deprecated booleans left out
    /// (or sent under their replacement's name in a patch that lacks it).
    #[test]
    fn valid_batches_are_sent_as_given(case in valid_case()) {
        let config_text = text(&case.config, case.pretty);
        let input_text = text(&case.input, !case.pretty);
        let prepared = match prepare(&config_text, &input_text) {
            Ok(p) => p,
            Err(e) => return Err(TestCaseError::fail(format!("rejected: {e:?}"))),
        };
        let config = Some(case.config.clone());
        let input = Some(case.input.clone());
        for w in &prepared.warnings {
            check_grounded(w, &config, &input)?;
        }
        let counts = prepared.counts;
        let lengths = ["deletes", "patches", "puts", "posts"]
            .map(|k| case.expected_body[k].as_array().map_or(0, Vec::len));
        prop_assert_eq!([counts.deletes, counts.patches, counts.puts, counts.posts], lengths);
        match prepared.request {
            None => prop_assert!(case.empty, "a non-empty batch was skipped"),
            Some(request) => {
                prop_assert!(!case.empty, "an empty batch was sent");
                let body: Value = serde_json::from_str(&request.body)
                    .map_err(|e| TestCaseError::fail(format!("body is not JSON: {e}")))?;
                prop_assert_eq!(&body, &case.expected_body);
                let url_tail = format!("/accounts/{}{BATCH_PATH}", case.account);
                prop_assert!(request.url.ends_with(&url_tail), "{}", request.url);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Arbitrary parameters
// ---------------------------------------------------------------------------

const ITEM_KEYS: &[&str] = &[
    "id",
    "pattern",
    "pattern_type",
    "is_regex",
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
    "comments",
    "is_recipient",
    "is_sender",
    "is_spoof",
];

/// Keys that are close to real ones, or that need escaping in a pointer.
const ODD_KEYS: &[&str] = &[
    "", "a/b", "~", "~1", "~0/", "/", "ID", "patern", "timeout", "0", "-", " id", "posts/0", "é",
];

/// Values that are near misses for some field.
const PLAUSIBLE: &[&str] = &[
    "",
    " ",
    "EMAIL",
    "EMAILS",
    "email",
    "DOMAIN",
    "IP",
    "UNKNOWN",
    "a@b",
    "user@example.com",
    "user@",
    "@example.com",
    "a@b@c.com",
    "example.com",
    "-bad-.com",
    "a..b",
    "1.2.3.4",
    "10.0.0.0/8",
    "1.2.3.4/33",
    "1.2.3.4/",
    "::1",
    "fe80::1%eth0",
    "[::1]",
    ".*",
    "(",
    ")",
    "a{2,1}",
    "a**",
    "\\",
    "[z-a]",
    "(?<n>a)\\k<n>",
    "(?<=\\1)",
    "\\p{Nope}",
    "\\x{110000}",
    "\\N{",
    "[a&&]",
    "f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
    "F174E90A-FAFE-4643-BBBC-4A0ED4FC8415",
    "f174e90a-fafe-4643-bbbc-4a0ed4fc841",
    "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "../../user/tokens/verify",
    "0123456789abcdef0123456789abcde%",
    "https://api.cloudflare.com/client/v4",
    "http://10.0.0.1",
    "https://user@api.cloudflare.com",
    "https://[::1/",
    "ftp://x",
    "2401",
    "true",
    "null",
];

fn plausible_string() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(PLAUSIBLE).prop_map(String::from),
        2 => re(".{0,12}"),
        1 => email(),
        1 => host_name(),
        1 => ip_pattern(),
        1 => regex(),
        1 => select(&[1023usize, 1024, 1025][..]).prop_map(|n| "é".repeat(n)),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        select(
            &[
                0,
                -1,
                1,
                2401,
                i32::MAX as i64,
                i32::MAX as i64 + 1,
                u32::MAX as i64,
                i64::MIN,
                600_000,
                600_001,
                33_554_433,
            ][..]
        )
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::from(u64::MAX)),
        select(&[0.5, 1.0, -0.0, 1e300, 2401.0][..]).prop_map(Value::from),
        plausible_string().prop_map(Value::from),
    ]
    .boxed()
}

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(ITEM_KEYS).prop_map(String::from),
        2 => select(INPUT_KEYS).prop_map(String::from),
        2 => select(CONFIG_KEYS).prop_map(String::from),
        2 => select(ODD_KEYS).prop_map(String::from),
        1 => re(".{0,6}"),
    ]
    .boxed()
}

fn any_json() -> BoxedStrategy<Value> {
    leaf()
        .prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..5).prop_map(Value::Array),
                vec((key(), inner), 0..5).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
        .boxed()
}

/// A value of the right type for `key` about half the time.
fn value_for(key: &str) -> BoxedStrategy<Value> {
    let near = match key {
        "id" => policy_id().boxed(),
        "pattern_type" => select(&["EMAIL", "DOMAIN", "IP", "UNKNOWN", "ip", ""][..])
            .prop_map(Value::from)
            .boxed(),
        "pattern" | "comments" => plausible_string().prop_map(Value::from).boxed(),
        "account_id" => prop_oneof![account_id(), plausible_string()]
            .prop_map(Value::from)
            .boxed(),
        "api_token" | "api_key" => credential().prop_map(Value::from).boxed(),
        "timeout_ms" | "connect_timeout_ms" | "max_retries" | "max_response_bytes" => select(
            &[
                0u64, 1, 10, 11, 30_000, 600_000, 600_001, 33_554_432, 33_554_433,
            ][..],
        )
        .prop_map(Value::from)
        .boxed(),
        k if ITEM_KEYS.contains(&k) => any::<bool>().prop_map(Value::from).boxed(),
        _ => plausible_string().prop_map(Value::from).boxed(),
    };
    prop_oneof![near, any_json()].boxed()
}

/// A credential carrying [`CANARY`], in the shapes the config check cares
/// about: plain, with control characters, padded, with a `Bearer` prefix.
fn credential() -> BoxedStrategy<String> {
    (
        re("[A-Za-z0-9._-]{0,6}"),
        select(&["", "\r\nX-Evil: 1", "\t", "\u{0}", " ", "Bearer ", "\u{7f}"][..]),
        any::<bool>(),
    )
        .prop_map(|(s, odd, odd_first)| {
            if odd_first {
                format!("{odd}{s}{CANARY}")
            } else {
                format!("{s}{CANARY}{odd}")
            }
        })
        .boxed()
}

/// A member of an object: mostly one of `keys` with a value made for it,
/// now and then any key with any value.
fn entry(keys: &[&str]) -> BoxedStrategy<(String, Value)> {
    let known: Vec<_> = keys
        .iter()
        .map(|k| (Just(k.to_string()), value_for(k)).boxed())
        .collect();
    prop_oneof![
        8 => Union::new(known),
        1 => (key(), any_json()),
    ]
    .boxed()
}

/// An object with members made by [`entry`].
fn object_of(keys: &[&str]) -> BoxedStrategy<Value> {
    vec(entry(keys), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
        .boxed()
}

/// Sets or (when the flag says so) removes each member in `map`.
fn apply(map: &mut Map<String, Value>, changes: Vec<((String, Value), bool)>) {
    for ((k, v), remove) in changes {
        if remove {
            map.remove(&k);
        } else {
            map.insert(k, v);
        }
    }
}

/// A valid item with some fields removed, replaced or added.
fn mutated_item() -> BoxedStrategy<Value> {
    let valid = prop_oneof![
        full_item(true),
        patch_item(),
        full_item(false),
        policy_id().prop_map(|id| Item {
            given: [("id".to_string(), id)].into_iter().collect(),
            sent: Map::new(),
        }),
    ];
    let change = (entry(ITEM_KEYS), any::<bool>());
    (valid, vec(change, 0..3))
        .prop_map(|(item, changes)| {
            let mut map = item.given;
            apply(&mut map, changes);
            Value::Object(map)
        })
        .boxed()
}

fn item() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => mutated_item(),
        2 => object_of(ITEM_KEYS),
        1 => any_json(),
    ]
    .boxed()
}

fn list() -> BoxedStrategy<Value> {
    prop_oneof![
        24 => vec(item(), 0..4).prop_map(Value::Array),
        // Two items naming one policy.
        6 => (policy_id(), any::<bool>()).prop_map(|(id, upper)| {
            let again = match (&id, upper) {
                (Value::String(s), true) => Value::from(s.to_ascii_uppercase()),
                _ => id.clone(),
            };
            json!([{ "id": id }, { "id": again }])
        }),
        3 => leaf(),
        1 => Just(Value::Array(vec![json!({}); 1001])),
    ]
    .boxed()
}

fn input_document() -> BoxedStrategy<Value> {
    let lists = [list(), list(), list(), list()];
    prop_oneof![
        6 => (
            proptest::option::of(value_for("account_id")),
            uniform4(any::<bool>()),
            lists,
            proptest::option::of((key(), any_json())),
        )
            .prop_map(|(account, present, lists, extra)| {
                let mut map = Map::new();
                if let Some(a) = account {
                    map.insert("account_id".into(), a);
                }
                for ((name, value), present) in ["deletes", "patches", "puts", "posts"]
                    .into_iter()
                    .zip(lists)
                    .zip(present)
                {
                    if present {
                        map.insert(name.into(), value);
                    }
                }
                if let Some((k, v)) = extra {
                    map.insert(k, v);
                }
                Value::Object(map)
            }),
        1 => object_of(INPUT_KEYS),
        1 => any_json(),
    ]
    .boxed()
}

fn config_document() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => (valid_config(), vec((entry(CONFIG_KEYS), any::<bool>()), 0..3))
            .prop_map(|(mut map, changes)| {
                apply(&mut map, changes);
                Value::Object(map)
            }),
        3 => object_of(CONFIG_KEYS),
        1 => any_json(),
    ]
    .boxed()
}

/// How a document's value is written out.
#[derive(Clone, Debug)]
enum Writing {
    Plain {
        pretty: bool,
    },
    /// Cut at a character boundary (the index picks it), then `tail` added.
    Cut(prop::sample::Index, String),
    /// Members written twice where `twice` says so, in order and cycling:
    /// first with an earlier value, which a parser drops (itself written
    /// with repeats), then with the one that counts.
    Repeats(Vec<bool>),
}

/// Document text: the value written out, or broken at some place, or with
/// members given twice.
fn document_text(value: impl Strategy<Value = Value>) -> impl Strategy<Value = String> {
    let writing = prop_oneof![
        6 => any::<bool>().prop_map(|pretty| Writing::Plain { pretty }),
        2 => (any::<prop::sample::Index>(), re(".{0,3}")).prop_map(|(i, t)| Writing::Cut(i, t)),
        1 => vec(any::<bool>(), 1..8).prop_map(Writing::Repeats),
    ];
    (value, writing).prop_map(|(value, writing)| match writing {
        Writing::Plain { pretty } => text(&value, pretty),
        Writing::Cut(at, tail) => {
            let text = value.to_string();
            let bounds: Vec<usize> = text
                .char_indices()
                .map(|(i, _)| i)
                .chain([text.len()])
                .collect();
            let cut = bounds[at.index(bounds.len())];
            format!("{}{tail}", &text[..cut])
        }
        Writing::Repeats(twice) => {
            let mut out = String::new();
            write_repeating(&value, &mut twice.iter().copied().cycle(), &mut out);
            out
        }
    })
}

fn write_repeating(value: &Value, twice: &mut impl Iterator<Item = bool>, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push('{');
            for (i, (key, member)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = Value::from(key.as_str()).to_string();
                if twice.next().unwrap_or(false) {
                    // An earlier value of another shape, so that what lies
                    // inside it has no place in the document.
                    let earlier = json!([null, member]);
                    out.push_str(&key);
                    out.push(':');
                    write_repeating(&earlier, twice, out);
                    out.push(',');
                }
                out.push_str(&key);
                out.push(':');
                write_repeating(member, twice, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_repeating(item, twice, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        re(".{0,30}"),
        re("[{}\\[\\]\",:0-9a-z \\\\]{0,30}"),
        select(
            &[
                "",
                "null",
                "[]",
                "{}",
                "\"x\"",
                "1e999",
                "{\"a\":1,\"a\":2}"
            ][..]
        )
        .prop_map(String::from),
    ]
    .boxed()
}

/// Checks the rule every problem's pointer must follow. A pointer is
/// *grounded* in the document it names when
///
/// - that document's text is not valid JSON, and the pointer is `""`; or
/// - the document is valid JSON and the pointer resolves in it
///   (`serde_json::Value::pointer` finds a value); or
/// - the document is valid JSON and the pointer names an absent member, as
///   a missing field's pointer does: the pointer without its last reference
///   token resolves to an object that has no member named by that token
///   (unescaped: `~1` is `/` and `~0` is `~`).
fn check_grounded(
    problem: &Problem,
    config: &Option<Value>,
    input: &Option<Value>,
) -> Result<(), TestCaseError> {
    let document = match problem.document {
        Document::Config => config,
        Document::Input => input,
    };
    let pointer = problem.pointer.as_str();
    let Some(document) = document else {
        prop_assert_eq!(
            pointer,
            "",
            "{:?} points into text that is not JSON",
            problem
        );
        return Ok(());
    };
    if document.pointer(pointer).is_some() {
        return Ok(());
    }
    let absent_member = pointer.rfind('/').is_some_and(|slash| {
        let token = pointer[slash + 1..].replace("~1", "/").replace("~0", "~");
        matches!(
            document.pointer(&pointer[..slash]),
            Some(Value::Object(parent)) if !parent.contains_key(&token)
        )
    });
    prop_assert!(
        absent_member,
        "{:?} names no value of, and no absent member in, {}",
        problem,
        document
    );
    Ok(())
}

/// Every invariant of one `prepare` call that holds for any parameters.
fn check_any(config_text: &str, input_text: &str) -> Result<(), TestCaseError> {
    let config = serde_json::from_str::<Value>(config_text).ok();
    let input = serde_json::from_str::<Value>(input_text).ok();
    match prepare(config_text, input_text) {
        Ok(prepared) => {
            for w in &prepared.warnings {
                check_grounded(w, &config, &input)?;
                prop_assert!(!w.message.contains(CANARY), "{:?}", w);
            }
            let debug = format!("{prepared:?}");
            prop_assert!(!debug.contains(CANARY), "{}", debug);
            let preview = preview_json(&prepared);
            prop_assert!(!preview.contains(CANARY), "{}", preview);
            let counts = prepared.counts;
            let sizes = [counts.deletes, counts.patches, counts.puts, counts.posts];
            match &prepared.request {
                None => prop_assert_eq!(sizes, [0; 4]),
                Some(request) => {
                    prop_assert!(request.url.ends_with(BATCH_PATH), "{}", request.url);
                    let body: Value = serde_json::from_str(&request.body)
                        .map_err(|e| TestCaseError::fail(format!("body is not JSON: {e}")))?;
                    let lengths = ["deletes", "patches", "puts", "posts"]
                        .map(|k| body[k].as_array().map(Vec::len));
                    prop_assert_eq!(lengths, sizes.map(Some));
                    prop_assert_eq!(body.as_object().map(Map::len), Some(4));
                }
            }
        }
        Err(TaskError::Call(f)) => {
            return Err(TestCaseError::fail(format!(
                "prepare sent nothing but failed a call: {f:?}"
            )));
        }
        Err(TaskError::InvalidConfig(problems)) | Err(TaskError::InvalidInput(problems))
            if problems.is_empty() =>
        {
            return Err(TestCaseError::fail("rejected without a problem"));
        }
        Err(TaskError::InvalidConfig(problems)) => {
            prop_assert!(problems.iter().any(|p| p.document == Document::Config));
            for p in &problems {
                check_grounded(p, &config, &input)?;
                prop_assert!(!p.message.contains(CANARY), "{:?}", p);
            }
        }
        Err(TaskError::InvalidInput(problems)) => {
            for p in &problems {
                prop_assert_eq!(p.document, Document::Input);
                check_grounded(p, &config, &input)?;
                prop_assert!(!p.message.contains(CANARY), "{:?}", p);
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(1200))]

    /// Documents shaped like real parameters, with near-miss values: no
    /// panic, and every problem's pointer is grounded (see `check_grounded`).
    #[test]
    fn hostile_documents_are_reported_in_place(
        config in document_text(config_document()),
        input in document_text(input_document()),
    ) {
        check_any(&config, &input)?;
    }
}

proptest! {
    #![proptest_config(cases(400))]

    /// Any text at all, in either document.
    #[test]
    fn arbitrary_text_is_reported_in_place(
        config in prop_oneof![any_text(), document_text(any_json())],
        input in prop_oneof![any_text(), document_text(any_json())],
    ) {
        check_any(&config, &input)?;
    }
}

#[test]
fn grounded_rule_accepts_absent_members_and_refuses_strays() {
    let doc = Some(json!({"posts": [{"pattern": "x"}], "a/b": {"~": 1}}));
    let problem = |document, pointer: &str| Problem {
        document,
        pointer: pointer.to_string(),
        message: String::new(),
    };
    for ok in [
        "",
        "/posts/0/pattern",
        "/posts/0/is_regex",
        "/a~1b/~0",
        "/account_id",
    ] {
        assert!(
            check_grounded(&problem(Document::Input, ok), &None, &doc).is_ok(),
            "{ok}"
        );
    }
    for stray in [
        "/posts/1",
        "/posts/0/pattern/x",
        "/posts/1/id",
        "/a/b",
        "posts",
    ] {
        assert!(
            check_grounded(&problem(Document::Input, stray), &None, &doc).is_err(),
            "{stray}"
        );
    }
    assert!(check_grounded(&problem(Document::Config, ""), &None, &doc).is_ok());
    assert!(check_grounded(&problem(Document::Config, "/x"), &None, &doc).is_err());
}

// ---------------------------------------------------------------------------
// Credentials in every output
// ---------------------------------------------------------------------------

/// A credential as the property plants it: long enough to be redacted, and
/// half the time with characters that a JSON string, a pointer or a pattern
/// check treats specially (`"`, `\`, `~`, `/`, `.`).
fn planted_secret() -> BoxedStrategy<String> {
    prop_oneof![
        re("[A-Za-z0-9]{16,64}"),
        re("[A-Za-z0-9_.~/\"\\\\-]{16,64}"),
    ]
    .boxed()
}

/// Where, besides the config's credential, the secret is pasted.
#[derive(Clone, Copy, Debug)]
enum Place {
    InputAccount,
    ConfigAccount,
    ConfigBaseUrl,
    UnknownConfigKey,
    UnknownInputKey,
    UnknownItemKey,
    PatternType,
    /// As the pattern, with this pattern_type and is_regex.
    Pattern(&'static str, bool),
    /// In the comments, which keeps the input valid.
    Comments,
    DeleteId,
    PatchId,
}

const PLACES: &[Place] = &[
    Place::InputAccount,
    Place::ConfigAccount,
    Place::ConfigBaseUrl,
    Place::UnknownConfigKey,
    Place::UnknownInputKey,
    Place::UnknownItemKey,
    Place::PatternType,
    Place::Pattern("EMAIL", false),
    Place::Pattern("DOMAIN", false),
    Place::Pattern("IP", false),
    Place::Pattern("DOMAIN", true),
    Place::Comments,
    Place::DeleteId,
    Place::PatchId,
];

/// How the fake API writes the secret into its answer.
#[derive(Clone, Copy, Debug)]
enum Spelling {
    Plain,
    /// Every character of the secret as a `\u` escape.
    Unicode,
    /// Every `/` as `\/`.
    Slashes,
}

/// What the fake API answers, each time it is asked.
#[derive(Clone, Debug)]
enum Answer {
    Success,
    /// An envelope with `success: false` and two errors, the first message
    /// long enough that the failure's message clips it near the secret.
    Refused(u16),
    NotAnEnvelope(u16),
    Fault(u8),
}

#[derive(Clone, Debug)]
struct PlantedCase {
    secret: String,
    legacy: bool,
    /// The secret with text around it, as pasted into each place.
    places: Vec<(Place, String)>,
    answer: Answer,
    spelling: Spelling,
    filler: usize,
}

fn planted_case() -> impl Strategy<Value = PlantedCase> {
    let answer = prop_oneof![
        2 => Just(Answer::Success),
        2 => select(&[200u16, 400, 403, 408, 429, 500, 503][..]).prop_map(Answer::Refused),
        1 => select(&[200u16, 502][..]).prop_map(Answer::NotAnEnvelope),
        1 => (0u8..4).prop_map(Answer::Fault),
    ];
    let around = (re("[a-z ]{0,50}"), re("[a-z]{0,4}"));
    (
        planted_secret(),
        any::<bool>(),
        vec((select(PLACES), around), 0..3),
        answer,
        select(&[Spelling::Plain, Spelling::Unicode, Spelling::Slashes][..]),
        prop_oneof![0usize..20, 230usize..300],
    )
        .prop_map(|(secret, legacy, places, answer, spelling, filler)| {
            let places = places
                .into_iter()
                .map(|(place, (before, after))| (place, format!("{before}{secret}{after}")))
                .collect();
            PlantedCase {
                secret,
                legacy,
                places,
                answer,
                spelling,
                filler,
            }
        })
}

const UUIDS: [&str; 3] = [
    "f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
    "0c4e2f1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    "9e7a3c2b-1d0e-4f5a-8b6c-7d8e9f0a1b2c",
];

/// The config and input of a case: a valid batch, then the secret pasted
/// into each of its places.
fn planted_documents(case: &PlantedCase) -> (Value, Value) {
    let mut config = if case.legacy {
        json!({"api_email": "ops@example.com", "api_key": case.secret})
    } else {
        json!({"api_token": case.secret})
    };
    config["base_url"] = json!("http://127.0.0.1:8787/client/v4");
    config["max_retries"] = json!(1);
    let mut input = json!({
        "account_id": "0123456789abcdef0123456789abcdef",
        "deletes": [{"id": UUIDS[0]}],
        "patches": [{"id": UUIDS[1], "comments": "patched"}],
        "posts": [{"pattern": "a@example.com", "pattern_type": "EMAIL", "is_regex": false,
            "is_exempt_recipient": false, "is_trusted_sender": true,
            "is_acceptable_sender": false, "verify_sender": true, "comments": "new"}],
    });
    for (place, value) in &case.places {
        let post = &mut input["posts"][0];
        match place {
            Place::InputAccount => input["account_id"] = json!(value),
            Place::ConfigAccount => config["account_id"] = json!(value),
            Place::ConfigBaseUrl => config["base_url"] = json!(format!("{value}://example.com")),
            Place::UnknownConfigKey => config[value.as_str()] = json!(1),
            Place::UnknownInputKey => input[value.as_str()] = json!([]),
            Place::UnknownItemKey => post[value.as_str()] = json!(true),
            Place::PatternType => post["pattern_type"] = json!(value),
            Place::Pattern(kind, regex) => {
                post["pattern"] = json!(value);
                post["pattern_type"] = json!(kind);
                post["is_regex"] = json!(regex);
            }
            Place::Comments => post["comments"] = json!(value),
            Place::DeleteId => input["deletes"][0]["id"] = json!(value),
            Place::PatchId => input["patches"][0]["id"] = json!(value),
        }
    }
    (config, input)
}

/// The fake API's answer, with the secret in every string it can hold.
fn planted_answer(case: &PlantedCase) -> Result<RawResponse, TransportFault> {
    let secret = &case.secret;
    let said = format!("token {secret} is not valid");
    let body = |status: u16, body: Value| (status, body.to_string());
    let (status, text) = match &case.answer {
        Answer::Success => body(
            200,
            json!({"success": true, "errors": [], "messages": [{"code": 1, "message": said}],
                "result": {"posts": [{"id": UUIDS[2], "pattern": secret, "comments": said}],
                    secret.as_str(): said}}),
        ),
        Answer::Refused(status) => body(
            *status,
            json!({"success": false, "messages": [], "result": null, "errors": [
                {"code": 10000, "message": format!("{}{secret} rejected", "x".repeat(case.filler)),
                 "source": {"pointer": format!("/posts/0/{secret}")},
                 "documentation_url": format!("https://developers.cloudflare.com/{secret}")},
                {"code": 10001, "message": said}]}),
        ),
        Answer::NotAnEnvelope(status) => (*status, format!("<html>{secret}</html>")),
        Answer::Fault(n) => {
            let detail = format!("connection to {secret} failed");
            return Err(match n {
                0 => TransportFault::Denied,
                1 => TransportFault::BeforeSend(detail),
                2 => TransportFault::AfterSend(detail),
                _ => TransportFault::Unsendable(detail),
            });
        }
    };
    let in_json = serde_json::to_string(secret).unwrap();
    let in_json = &in_json[1..in_json.len() - 1];
    let text = match case.spelling {
        Spelling::Plain => text,
        Spelling::Unicode => {
            let spelled: String = secret
                .encode_utf16()
                .map(|unit| format!("\\u{unit:04x}"))
                .collect();
            text.replace(in_json, &spelled)
        }
        // Outside strings a JSON text has no `/`.
        Spelling::Slashes => text.replace('/', "\\/"),
    };
    Ok(RawResponse {
        status,
        retry_after: None,
        body: text.into_bytes(),
        truncated: false,
        body_error: None,
    })
}

/// A transport that gives the same answer every time, on a virtual clock.
struct Answering {
    now_ms: u64,
    answer: Result<RawResponse, TransportFault>,
}

impl Transport for Answering {
    fn monotonic_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn unix_ms(&mut self) -> u64 {
        1_700_000_000_000 + self.now_ms
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now_ms += ms;
    }
    fn entropy(&mut self) -> u64 {
        0
    }
    fn send(&mut self, _: &BatchRequest, _: &AttemptLimits) -> Result<RawResponse, TransportFault> {
        self.now_ms += 5;
        self.answer.clone()
    }
}

/// Fails when `text` holds any run of [`MIN_SECRET_CHARS`] characters of
/// the secret as given, JSON-escaped or pointer-escaped: a clipped quote or
/// a quoted label gives a secret away as surely as the whole of it.
fn check_no_run(secret: &str, text: &str, what: &str) -> Result<(), TestCaseError> {
    let in_json = serde_json::to_string(secret).unwrap();
    let shapes = [
        secret.to_string(),
        in_json[1..in_json.len() - 1].to_string(),
        secret.replace('~', "~0").replace('/', "~1"),
    ];
    for shape in shapes {
        let chars: Vec<char> = shape.chars().collect();
        for run in chars.windows(MIN_SECRET_CHARS) {
            let run: String = run.iter().collect();
            prop_assert!(!text.contains(&run), "{} holds {:?}: {}", what, run, text);
        }
    }
    Ok(())
}

fn check_error_hides(secret: &str, error: &TaskError) -> Result<(), TestCaseError> {
    match error {
        TaskError::InvalidConfig(problems) | TaskError::InvalidInput(problems) => {
            for p in problems {
                check_no_run(secret, &p.pointer, "a pointer")?;
                check_no_run(secret, &p.message, "a message")?;
            }
        }
        TaskError::Call(f) => {
            check_no_run(secret, &f.message, "the failure's message")?;
            for e in &f.api_errors {
                check_no_run(secret, &e.message, "an API error")?;
                for s in [&e.pointer, &e.documentation_url].into_iter().flatten() {
                    check_no_run(secret, s, "an API error")?;
                }
            }
        }
    }
    Ok(())
}

/// The document's text, and every string and key it decodes to.
fn check_json_hides(secret: &str, text: &str) -> Result<(), TestCaseError> {
    fn walk(secret: &str, value: &Value) -> Result<(), TestCaseError> {
        match value {
            Value::String(s) => check_no_run(secret, s, "a string"),
            Value::Array(items) => items.iter().try_for_each(|v| walk(secret, v)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                check_no_run(secret, k, "a key")?;
                walk(secret, v)
            }),
            _ => Ok(()),
        }
    }
    check_no_run(secret, text, "the document")?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
    walk(secret, &value)
}

/// What the component returns for a case: `prepare`'s error or preview,
/// then `run-task`'s failure or result, each redacted as the component
/// redacts it.
fn check_planted(case: &PlantedCase) -> Result<(), TestCaseError> {
    let (config, input) = planted_documents(case);
    let (config_text, input_text) = (config.to_string(), input.to_string());
    let secrets = Secrets::from_config(&config_text);
    let secret = case.secret.as_str();
    let prepared = match prepare(&config_text, &input_text) {
        Ok(prepared) => prepared,
        Err(e) => return check_error_hides(secret, &secrets.redact_error(e)),
    };
    check_json_hides(secret, &secrets.redact_json(preview_json(&prepared)))?;
    let mut transport = Answering {
        now_ms: 0,
        answer: planted_answer(case),
    };
    match execute(&prepared, &mut transport) {
        Ok(done) => check_json_hides(secret, &secrets.redact_json(success_json(&prepared, &done))),
        Err(f) => check_error_hides(secret, &secrets.redact_error(TaskError::Call(f))),
    }
}

proptest! {
    #![proptest_config(cases(300))]

    /// A credential pasted anywhere else as well, or echoed by the API, is
    /// in nothing the component returns, in whole or in part.
    #[test]
    fn credentials_never_come_back(case in planted_case()) {
        check_planted(&case)?;
    }
}
