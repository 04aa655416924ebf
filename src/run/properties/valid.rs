//! Every batch that follows the contract's rules is accepted and sent
//! exactly as given.

use super::*;

pub(super) fn account_id() -> impl Strategy<Value = String> {
    re("[0-9a-f]{32}")
}

/// A policy id as JSON: a UUID in any case, or a positive 32-bit integer
/// of the older API (sent as given, with a warning).
pub(super) fn policy_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::from(1u32)),
        Just(Value::from(i32::MAX as u32)),
        (1..=i32::MAX as u32).prop_map(Value::from),
        re("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
            .prop_map(Value::from),
    ]
}

/// How the validator decides whether two ids name the same policy.
pub(super) fn identity(id: &Value) -> String {
    match id {
        Value::String(s) => s.to_ascii_lowercase(),
        other => other.to_string(),
    }
}

pub(super) fn host_name() -> BoxedStrategy<String> {
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

pub(super) fn email() -> BoxedStrategy<String> {
    let local = prop_oneof![
        re("[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,10}(\\.[a-z0-9_+-]{1,8}){0,2}"),
        re("\"[a-z]{1,5}@[a-z]{1,5}\""),
        Just("a".repeat(64)),
    ];
    (local, host_name())
        .prop_map(|(l, d)| format!("{l}@{d}"))
        .boxed()
}

pub(super) fn ip_pattern() -> BoxedStrategy<String> {
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
pub(super) fn regex() -> BoxedStrategy<String> {
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
pub(super) fn pattern_spec() -> BoxedStrategy<(&'static str, bool, String)> {
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
pub(super) fn comments() -> BoxedStrategy<Option<Value>> {
    prop_oneof![
        Just(None),
        Just(Some(Value::Null)),
        re(".{0,40}").prop_map(|s| Some(Value::from(s))),
        Just(Some(Value::from("ü".repeat(1024)))),
    ]
    .boxed()
}

pub(super) const FLAGS: [&str; 4] = [
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
];

/// The deprecated boolean that each of [`FLAGS`] replaced, if any.
pub(super) fn deprecated_of(flag: &str) -> Option<&'static str> {
    DEPRECATED
        .iter()
        .find(|(_, new)| new.name() == flag)
        .map(|(old, _)| *old)
}

/// One item as given in the input, and as it must appear in the body.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub(super) given: Map<String, Value>,
    pub(super) sent: Map<String, Value>,
}

impl Item {
    pub(super) fn both(&mut self, key: &str, value: Value) {
        self.given.insert(key.to_string(), value.clone());
        self.sent.insert(key.to_string(), value);
    }
}

/// A create (without an id) or a replace (with one): every field, and, for
/// some flags, the deprecated boolean saying the same, which is not sent.
pub(super) fn full_item(with_id: bool) -> BoxedStrategy<Item> {
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
pub(super) fn patch_item() -> BoxedStrategy<Item> {
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
pub(super) enum AccountIn {
    Input,
    Config,
    Both,
}

#[derive(Clone, Debug)]
pub(super) struct ValidCase {
    pub(super) config: Value,
    pub(super) input: Value,
    pub(super) expected_body: Value,
    pub(super) account: String,
    pub(super) empty: bool,
    pub(super) pretty: bool,
}

pub(super) fn valid_config() -> BoxedStrategy<Map<String, Value>> {
    let credentials = prop_oneof![
        // Credentials the config takes: 8 or more characters, with a
        // letter among them (none is a number).
        re("[A-Za-z_][A-Za-z0-9_-]{7,39}").prop_map(|t| vec![("api_token", Value::from(t))]),
        (email(), re("[0-9]{0,20}[A-Za-z][A-Za-z0-9]{7,19}"))
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

pub(super) fn valid_case() -> impl Strategy<Value = ValidCase> {
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

pub(super) fn split(
    name: &'static str,
    items: Vec<Item>,
) -> (&'static str, Vec<Value>, Vec<Value>) {
    let (given, sent) = items
        .into_iter()
        .map(|i| (Value::Object(i.given), Value::Object(i.sent)))
        .unzip();
    (name, given, sent)
}

pub(super) fn text(value: &Value, pretty: bool) -> String {
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
