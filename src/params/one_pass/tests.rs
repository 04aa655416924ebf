use super::*;
use crate::api::fields::{Field, Flag};
use crate::params::json_fields::parse_document;
use crate::params::problems::{Document, Report};
use crate::params::validator::parse_input;
use serde_json::{json, Value};

const ID_A: &str = "f174e90a-fafe-4643-bbbc-4a0ed4fc8415";
const ID_B: &str = "0b4dc0de-5a1e-4c1a-9d2e-7f00d5e1a2b3";
const ID_C: &str = "5d1ea5e0-0000-4000-8000-00000000000c";

fn post() -> Value {
    json!({
        "pattern": "alerts@example.com", "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true
    })
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

/// What the full reader makes of `text`: the input when it accepts it
/// without a word, and whether it said anything.
fn full_reader(text: &str) -> (Option<crate::params::validator::ValidInput>, Report) {
    let mut report = Report::default();
    let input = parse_document(text, Document::Input, &mut report)
        .and_then(|v| parse_input(&v, &mut report));
    (input, report)
}

/// Reads `text` with both readers and checks that they agree on a clean
/// batch, body text included.
fn clean(text: &str) -> CleanInput {
    let read = read_clean(text).unwrap_or_else(|| panic!("not read as clean: {text}"));
    let (full, report) = full_reader(text);
    assert!(
        report.errors.is_empty() && report.warnings.is_empty(),
        "{report:?}"
    );
    let full = full.expect("accepted");
    assert_eq!(read.counts, full.body.counts());
    assert_eq!(read.account_id, full.account_id);
    assert_eq!(read.body_text, serde_json::to_string(&full.body).unwrap());
    // The body read back as an input gives the same items.
    let (again, _) = full_reader(&read.body_text);
    assert_eq!(again.expect("the body reads back").body, full.body);
    read
}

/// `text` is left to the full reader, which has something to say about it.
fn unsettled(text: &str) {
    assert_eq!(read_clean(text), None, "read as clean: {text}");
    let (full, report) = full_reader(text);
    assert!(
        !report.errors.is_empty()
            || !report.warnings.is_empty()
            || full.is_some_and(|f| f.sync.is_some()),
        "the full reader finds nothing in {text}"
    );
}

#[test]
fn a_batch_of_every_kind_is_read_and_written_as_the_full_reader_does() {
    let input = json!({
        "account_id": "023e105f4ecef8ad9ca31a8372d0c353",
        "posts": [post(), with(with(post(), "pattern", json!("Mail.Example.com")), "pattern_type", json!("DOMAIN"))],
        "puts": [with(with(post(), "id", json!(ID_A)), "comments", json!("kept"))],
        "deletes": [{"id": ID_B.to_uppercase()}],
        "patches": [{"comments": null, "id": ID_C}, {"id": "aaaaaaaa-0000-4000-8000-000000000000", "is_regex": true, "pattern": "^a.*$"}],
    });
    let read = clean(&input.to_string());
    assert_eq!(read.counts.posts, 2);
    assert!(
        read.body_text.starts_with(r#"{"deletes":[{"id":"0B4DC0DE"#),
        "{}",
        read.body_text
    );
    // Pretty text reads the same.
    assert_eq!(clean(&serde_json::to_string_pretty(&input).unwrap()), read);
}

#[test]
fn escaped_strings_are_decoded_and_written_as_serde_json_writes_them() {
    let text = r#"{"p\u006fsts":[{"pattern":"a\u0040b.example","pattern_type":"EM\u0041IL","is_regex":false,
        "is_exempt_recipient":false,"is_trusted_sender":true,"is_acceptable_sender":false,"verify_sender":true,
        "comments":"tab\t, quote \", slash \/, é \u00e9, 😀 \ud83d\ude00"}]}"#;
    let read = clean(text);
    assert!(read
        .body_text
        .contains(r#""pattern":"a@b.example","pattern_type":"EMAIL""#));
    assert!(
        read.body_text
            .contains(r#""comments":"tab\t, quote \", slash /, é é, 😀 😀""#),
        "{}",
        read.body_text
    );
}

#[test]
fn empty_documents_and_lists_are_clean() {
    for text in [
        "{}",
        " { } ",
        r#"{"posts":[],"deletes":[]}"#,
        r#"{"account_id":"023e105f4ecef8ad9ca31a8372d0c353"}"#,
    ] {
        let read = clean(text);
        assert_eq!(read.counts, Counts::default());
        assert_eq!(
            read.body_text,
            r#"{"deletes":[],"patches":[],"puts":[],"posts":[]}"#
        );
    }
}

#[test]
fn every_problem_and_warning_is_left_to_the_full_reader() {
    let cases = [
        // Malformed or trailing text.
        r#"{"posts":[]"#.to_string(),
        r#"{"posts":[]} x"#.to_string(),
        r#"[]"#.to_string(),
        // A member given twice, at the root and in an item.
        r#"{"posts":[],"posts":[]}"#.to_string(),
        json!({"deletes": [{"id": ID_A}]}).to_string().replace("{\"id\"", "{\"id\":\"x\",\"id\""),
        // Unknown members, deprecated ones, sync mode.
        json!({"post": []}).to_string(),
        json!({"posts": [with(post(), "colour", json!("red"))]}).to_string(),
        json!({"posts": [with(post(), "is_sender", json!(true))]}).to_string(),
        json!({"sync": {"policies": []}}).to_string(),
        // Ids: an integer (a warning), not a UUID, named twice in any case.
        json!({"deletes": [{"id": 7}]}).to_string(),
        json!({"deletes": [{"id": "7"}]}).to_string(),
        json!({"deletes": [{"id": ID_A}], "puts": [with(post(), "id", json!(ID_A.to_uppercase()))]}).to_string(),
        json!({"deletes": [{}]}).to_string(),
        // A post with an id, missing fields, fields of the wrong type.
        json!({"posts": [with(post(), "id", json!(ID_A))]}).to_string(),
        json!({"posts": [{"pattern": "a@b.c"}]}).to_string(),
        json!({"puts": [{"id": ID_A, "pattern": "a@b.c"}]}).to_string(),
        json!({"posts": [with(post(), "is_regex", json!("false"))]}).to_string(),
        json!({"posts": [with(post(), "comments", json!(1))]}).to_string(),
        json!({"posts": [with(post(), "pattern", json!(["a"]))]}).to_string(),
        json!({"posts": {}}).to_string(),
        json!({"account_id": "023E105F4ECEF8AD9CA31A8372D0C353"}).to_string(),
        json!({"account_id": 1}).to_string(),
        // Values the API refuses.
        json!({"posts": [with(post(), "pattern", json!(""))]}).to_string(),
        json!({"posts": [with(post(), "pattern", json!("x".repeat(1025)))]}).to_string(),
        json!({"posts": [with(post(), "comments", json!("é".repeat(1025)))]}).to_string(),
        json!({"posts": [with(post(), "pattern_type", json!("UNKNOWN"))]}).to_string(),
        json!({"posts": [with(post(), "pattern", json!("no at sign"))]}).to_string(),
        json!({"posts": [with(with(post(), "pattern", json!("10.0.0.1")), "pattern_type", json!("IP"))]}).to_string(),
        json!({"posts": [with(with(post(), "pattern", json!("(")), "is_regex", json!(true))]}).to_string(),
        json!({"patches": [{"id": ID_A, "is_regex": false, "pattern_type": "DOMAIN", "pattern": "a b"}]}).to_string(),
        // Warnings: an empty patch, two posts of one policy.
        json!({"patches": [{"id": ID_A}]}).to_string(),
        json!({"posts": [post(), with(post(), "pattern", json!("ALERTS@example.com"))]}).to_string(),
        // Too many items.
        json!({"deletes": (0..1001).map(|i| json!({"id": format!("{i:08x}-0000-4000-8000-000000000000")})).collect::<Vec<_>>()}).to_string(),
    ];
    for text in &cases {
        unsettled(text);
    }
}

#[test]
fn the_largest_batch_is_clean_and_one_more_item_is_not() {
    let ids = |list: u32| (0..1000).map(move |i| format!("{i:08x}-0000-4000-8000-{list:012x}"));
    let input = json!({
        "deletes": ids(1).map(|id| json!({"id": id})).collect::<Vec<_>>(),
        "patches": ids(2).map(|id| json!({"id": id, "verify_sender": false})).collect::<Vec<_>>(),
        "puts": ids(3).map(|id| with(post(), "id", json!(id))).collect::<Vec<_>>(),
        "posts": (0..1000).map(|i| with(post(), "pattern", json!(format!("a{i}@example.com")))).collect::<Vec<_>>(),
    });
    let read = clean(&input.to_string());
    assert_eq!(read.counts.puts, 1000);
    let mut more = input;
    more["posts"].as_array_mut().unwrap().push(post());
    unsettled(&more.to_string());
}

#[test]
fn char_counts_are_decided_by_length_only_when_it_settles_them() {
    assert!(!char_count_within("", 1, 4));
    assert!(char_count_within("é", 1, 4));
    assert!(char_count_within("éééé", 1, 4));
    assert!(!char_count_within("ééééé", 1, 4));
    assert!(char_count_within("ééééé", 0, 9));
    assert!(!char_count_within("abcde", 1, 4));
}

#[test]
fn fields_are_numbered_and_written_in_the_order_they_are_sent() {
    let raw = |name: &'static str| RawStr::for_tests(name);
    assert_eq!(field_number(raw("id")), Ok(0));
    for (i, name) in Field::NAMES.iter().enumerate() {
        assert_eq!(field_number(raw(name)), Ok(i + 1), "{name}");
    }
    for flag in Flag::ALL {
        assert_eq!(
            field_number(raw(flag.name())),
            Ok(number_of(Field::Flag(flag)))
        );
    }
    assert_eq!(field_number(raw("is_sender")), Err(Unsettled));
    let names = ["id"].iter().chain(&Field::NAMES);
    for (i, (plain, name)) in PLAIN_NAMES.iter().zip(names).enumerate() {
        let member = format!("\"{name}\":true,\"padding to 24 bytes\":1");
        assert_eq!(
            plain_field(member.as_bytes()),
            Some((i, name.len() + 3)),
            "{member}"
        );
        assert_eq!(plain.len, name.len() + 3);
    }
    for other in [
        r#""is_sender":"#,
        r#""pattern" :"#,
        r#""patterns":"#,
        r#""pattern_typ":"#,
        r#""p\u0061ttern":"#,
        r#""pattern_type:""#,
        r#""""#,
        "",
    ] {
        let padded = format!("{other}{}", " ".repeat(24));
        assert_eq!(plain_field(padded.as_bytes()), None, "{other}");
    }
    // Too near the end of the text to compare word by word.
    assert_eq!(plain_field(br#""id":"x"}]}"#), None);
}

#[test]
fn uuids_are_numbers_in_either_letter_case() {
    assert_eq!(uuid_number(ID_A), uuid_number(&ID_A.to_uppercase()));
    assert_eq!(
        uuid_number("00000000-0000-0000-0000-00000000000f"),
        Some(15)
    );
    assert_eq!(
        uuid_number("f0000000-0000-0000-0000-000000000000"),
        Some(0xf << 124)
    );
    assert_ne!(uuid_number(ID_A), uuid_number(ID_B));
    for not in [
        "",
        "f174e90a-fafe-4643-bbbc-4a0ed4fc841",
        "f174e90afafe-4643-bbbc-4a0ed4fc84155",
        "g174e90a-fafe-4643-bbbc-4a0ed4fc8415",
        "f174e90a-fafe-4643-bbbc+4a0ed4fc8415",
    ] {
        assert_eq!(uuid_number(not), None, "{not}");
    }
}

#[test]
fn lists_in_any_order_and_any_subset_give_the_body_in_the_apis_order() {
    let lists = [
        ("deletes", json!([{"id": ID_A}])),
        ("patches", json!([{"id": ID_B, "comments": "x"}])),
        ("puts", json!([with(post(), "id", json!(ID_C))])),
        ("posts", json!([post()])),
    ];
    // Every order of every subset, written out by hand: a parsed object
    // would sort its keys.
    for mask in 0..16usize {
        let chosen: Vec<usize> = (0..4).filter(|i| mask & (1 << i) != 0).collect();
        let mut orders = vec![chosen.clone()];
        let mut order = chosen;
        // Heap's algorithm would do; rotations and one swap cover the
        // orders that matter (each list early, late and in place).
        for _ in 1..order.len() {
            order.rotate_left(1);
            orders.push(order.clone());
            let mut swapped = order.clone();
            let last = swapped.len() - 1;
            swapped.swap(0, last);
            orders.push(swapped);
        }
        for order in orders {
            let members: Vec<String> = order
                .iter()
                .map(|&i| format!("\"{}\":{}", lists[i].0, lists[i].1))
                .collect();
            let text = format!("{{{}}}", members.join(","));
            clean(&text);
        }
    }
}
