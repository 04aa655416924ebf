//! Whatever the input, a dry run either refuses it before anything is
//! sent, or shows a body that Cloudflare's published schema accepts
//! (integer ids aside, which are sent with a warning).

use super::published::unpublished_body;
use super::*;
use proptest::prelude::*;
use proptest::sample::select;

/// A value for `key`: right about half the time, a near miss otherwise.
fn value_for(key: &'static str) -> BoxedStrategy<Value> {
    let values: Vec<Value> = match key {
        "id" => vec![
            json!(UUID),
            json!(UUID.to_uppercase()),
            json!("0c7f3d52-8a41-4e3b-9b6f-2d1e5a7c9f10"),
            json!(2401),
            json!(0),
            json!("2401"),
            json!(null),
        ],
        "pattern_type" => vec![
            json!("EMAIL"),
            json!("DOMAIN"),
            json!("IP"),
            json!("UNKNOWN"),
            json!("email"),
            json!(3),
        ],
        "pattern" => vec![
            json!("alerts@example.com"),
            json!("example.com"),
            json!("8.8.8.0/24"),
            json!("2606:4700::/32"),
            json!("10.0.0.0/8"),
            json!("::ffff:192.168.0.1"),
            json!(".*@example\\.com"),
            json!("(unclosed"),
            json!(""),
            json!("é".repeat(1024)),
            json!("a".repeat(1025)),
        ],
        "comments" => vec![
            json!(null),
            json!("a note"),
            json!("ü".repeat(1024)),
            json!("c".repeat(1025)),
            json!(5),
        ],
        _ => vec![json!(true), json!(false), json!("yes"), json!(null)],
    };
    select(values).boxed()
}

const FIELDS: [&str; 12] = [
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

/// An item of one of the four lists: a full policy with some fields
/// changed, removed or added.
fn item() -> BoxedStrategy<Value> {
    let changes = proptest::collection::vec(
        (select(FIELDS.to_vec()), any::<bool>()).prop_flat_map(|(key, remove)| {
            value_for(key).prop_map(move |value| (key, remove, value))
        }),
        0..4,
    );
    (any::<bool>(), changes)
        .prop_map(|(with_id, changes)| {
            let mut item = if with_id { put(json!(UUID)) } else { post() };
            for (key, remove, value) in changes {
                if remove {
                    item.as_object_mut().unwrap().remove(key);
                } else {
                    item[key] = value;
                }
            }
            item
        })
        .boxed()
}

fn input() -> impl Strategy<Value = Value> {
    let list = || proptest::collection::vec(item(), 0..3);
    (list(), list(), list(), list()).prop_map(|(deletes, patches, puts, posts)| {
        let deletes: Vec<Value> = deletes
            .into_iter()
            .map(|d| json!({"id": d.get("id").cloned().unwrap_or(json!(UUID))}))
            .collect();
        json!({"deletes": deletes, "patches": patches, "puts": puts, "posts": posts})
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_dry_run_refuses_or_shows_a_published_body(input in input()) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome =
            runtime.block_on(prepare_text(&base_config().to_string(), &input.to_string()));
        if let Ok(preview) = outcome {
            let preview: Value = serde_json::from_str(&preview).unwrap();
            let problems = unpublished_body(&preview);
            prop_assert!(problems.is_empty(), "{input}\n{problems:#?}");
        }
    }
}
