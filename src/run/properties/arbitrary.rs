//! No document whatsoever makes `prepare` panic or name a place that is not
//! in the document.

use super::*;

pub(super) const ITEM_KEYS: &[&str] = &[
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
pub(super) const ODD_KEYS: &[&str] = &[
    "", "a/b", "~", "~1", "~0/", "/", "ID", "patern", "timeout", "0", "-", " id", "posts/0", "é",
];

/// Values that are near misses for some field.
pub(super) const PLAUSIBLE: &[&str] = &[
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

pub(super) fn plausible_string() -> BoxedStrategy<String> {
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

pub(super) fn leaf() -> BoxedStrategy<Value> {
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

pub(super) fn key() -> BoxedStrategy<String> {
    prop_oneof![
        4 => select(ITEM_KEYS).prop_map(String::from),
        2 => select(INPUT_KEYS).prop_map(String::from),
        2 => select(CONFIG_KEYS).prop_map(String::from),
        2 => select(ODD_KEYS).prop_map(String::from),
        1 => re(".{0,6}"),
    ]
    .boxed()
}

pub(super) fn any_json() -> BoxedStrategy<Value> {
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
pub(super) fn value_for(key: &str) -> BoxedStrategy<Value> {
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
pub(super) fn credential() -> BoxedStrategy<String> {
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
pub(super) fn entry(keys: &[&str]) -> BoxedStrategy<(String, Value)> {
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
pub(super) fn object_of(keys: &[&str]) -> BoxedStrategy<Value> {
    vec(entry(keys), 0..8)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
        .boxed()
}

/// Sets or (when the flag says so) removes each member in `map`.
pub(super) fn apply(map: &mut Map<String, Value>, changes: Vec<((String, Value), bool)>) {
    for ((k, v), remove) in changes {
        if remove {
            map.remove(&k);
        } else {
            map.insert(k, v);
        }
    }
}

/// A valid item with some fields removed, replaced or added.
pub(super) fn mutated_item() -> BoxedStrategy<Value> {
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

pub(super) fn item() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => mutated_item(),
        2 => object_of(ITEM_KEYS),
        1 => any_json(),
    ]
    .boxed()
}

pub(super) fn list() -> BoxedStrategy<Value> {
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

pub(super) fn input_document() -> BoxedStrategy<Value> {
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

pub(super) fn config_document() -> BoxedStrategy<Value> {
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
pub(super) enum Writing {
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
pub(super) fn document_text(value: impl Strategy<Value = Value>) -> impl Strategy<Value = String> {
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

pub(super) fn write_repeating(
    value: &Value,
    twice: &mut impl Iterator<Item = bool>,
    out: &mut String,
) {
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

pub(super) fn any_text() -> BoxedStrategy<String> {
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
pub(super) fn check_grounded(
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
pub(super) fn check_any(config_text: &str, input_text: &str) -> Result<(), TestCaseError> {
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
pub(super) fn grounded_rule_accepts_absent_members_and_refuses_strays() {
    let doc = Some(json!({"posts": [{"pattern": "x"}], "a/b": {"~": 1}}));
    let problem = |document, pointer: &str| Problem::new(document, pointer, "");
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
