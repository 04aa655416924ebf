//! The one-pass reader agrees with the full reader: what it reads as a
//! clean batch, the full reader accepts without a word and writes as the
//! same body; and it leaves no clean batch to the full reader.

use super::*;
use crate::params::json_fields::parse_document;
use crate::params::one_pass::read_clean;
use crate::params::problems::{Document, Report};
use crate::params::validator::parse_input;

/// Checks both readers on `text`. `in_scope`: the text is a batch the
/// one-pass reader is meant to read whenever it is clean (not sync mode).
fn agree(text: &str, in_scope: bool) -> Result<(), TestCaseError> {
    let fast = read_clean(text);
    let mut report = Report::default();
    let full = parse_document(text, Document::Input, &mut report)
        .and_then(|value| parse_input(&value, &mut report));
    let quiet = report.errors.is_empty() && report.warnings.is_empty();
    let clean = match full {
        Some(input) if quiet && input.sync.is_none() => Some(input),
        _ => None,
    };
    match (fast, clean) {
        (Some(fast), Some(full)) => {
            prop_assert_eq!(fast.counts, full.body.counts());
            prop_assert_eq!(&fast.account_id, &full.account_id);
            prop_assert_eq!(&fast.body_text, &serde_json::to_string(&full.body).unwrap());
            // What `Prepared::batch` reads back from the body.
            let mut again = Report::default();
            let read_back = parse_document(&fast.body_text, Document::Input, &mut again)
                .and_then(|value| parse_input(&value, &mut again))
                .map(|input| input.body);
            prop_assert_eq!(read_back, Some(full.body));
        }
        (Some(_), None) => {
            return Err(TestCaseError::fail(format!(
                "read as clean, but the full reader says {:?} {:?}: {text}",
                report.errors, report.warnings
            )))
        }
        (None, Some(_)) if in_scope => {
            return Err(TestCaseError::fail(format!(
                "a clean batch was left to the full reader: {text}"
            )))
        }
        (None, _) => {}
    }
    Ok(())
}

/// JSON text with every string written with escapes: each character as
/// `\u` escapes (a surrogate pair beyond the first plane), or as itself,
/// by turns. Both readers must decode them alike.
fn escaped_text(value: &Value, every: usize) -> String {
    fn string(s: &str, every: usize, n: &mut usize, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            *n += 1;
            if *n % every == 0 {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            } else {
                let literal = serde_json::to_string(&c.to_string()).unwrap();
                out.push_str(&literal[1..literal.len() - 1]);
            }
        }
        out.push('"');
    }
    fn write(value: &Value, every: usize, n: &mut usize, out: &mut String) {
        match value {
            Value::String(s) => string(s, every, n, out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, every, n, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, member)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(key, every, n, out);
                    out.push(':');
                    write(member, every, n, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, every, &mut 0, &mut out);
    out
}

/// The batch without what only warns: deprecated booleans are dropped and
/// integer ids (of the older API) become UUIDs, so that most cases are
/// clean batches, which the one-pass reader must read.
fn without_warnings(mut input: Value) -> Value {
    for (list, i) in items(&input) {
        let Some(item) = input[list][i].as_object_mut() else {
            continue;
        };
        for (old, _) in DEPRECATED {
            item.remove(old);
        }
        if let Some(Value::Number(n)) = item.get("id") {
            let uuid = format!(
                "{:08x}-0000-4000-8000-000000000000",
                n.as_u64().unwrap_or(0)
            );
            item.insert("id".into(), Value::from(uuid));
        }
    }
    input
}

/// One small change to a valid batch, of the kinds the one-pass reader
/// must notice: most leave it valid, some make it warn or fail.
#[derive(Clone, Debug)]
enum Change {
    /// An item's id given to another item, in upper case when asked.
    SameId {
        from: prop::sample::Index,
        to: prop::sample::Index,
        upper: bool,
    },
    /// A post repeated, its pattern in upper case when asked.
    SamePost {
        which: prop::sample::Index,
        upper: bool,
    },
    /// A member of an item set to a value of any kind, or removed.
    Member {
        item: prop::sample::Index,
        key: String,
        value: Option<Value>,
    },
    /// A pattern or comment near its length limit, in characters of one
    /// to three bytes.
    Long {
        item: prop::sample::Index,
        key: &'static str,
        chars: usize,
        wide: bool,
    },
    /// A member added at the top.
    Top { key: String, value: Value },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        (
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            any::<bool>()
        )
            .prop_map(|(from, to, upper)| Change::SameId { from, to, upper }),
        (any::<prop::sample::Index>(), any::<bool>())
            .prop_map(|(which, upper)| Change::SamePost { which, upper }),
        (
            any::<prop::sample::Index>(),
            select(ITEM_KEYS),
            any::<bool>()
        )
            .prop_flat_map(|(item, key, remove)| {
                value_for(key).prop_map(move |value| Change::Member {
                    item,
                    key: key.to_string(),
                    value: (!remove).then_some(value),
                })
            }),
        (
            any::<prop::sample::Index>(),
            select(&["pattern", "comments"][..]),
            1022usize..1027,
            any::<bool>()
        )
            .prop_map(|(item, key, chars, wide)| Change::Long {
                item,
                key,
                chars,
                wide
            }),
        (key(), any_json()).prop_map(|(key, value)| Change::Top { key, value }),
    ]
}

/// The items of every list, as (list, position) pairs.
fn items(input: &Value) -> Vec<(&'static str, usize)> {
    ["deletes", "patches", "puts", "posts"]
        .into_iter()
        .flat_map(|list| {
            let n = input[list].as_array().map_or(0, Vec::len);
            (0..n).map(move |i| (list, i))
        })
        .collect()
}

fn apply_change(mut input: Value, change: &Change) -> Value {
    let all = items(&input);
    match change {
        Change::SameId { from, to, upper } if !all.is_empty() => {
            let (l, i) = all[from.index(all.len())];
            let (m, j) = all[to.index(all.len())];
            if let Some(id) = input[l][i].get("id").cloned() {
                let id = match (id, upper) {
                    (Value::String(s), true) => Value::from(s.to_uppercase()),
                    (id, _) => id,
                };
                input[m][j]["id"] = id;
            }
        }
        Change::SamePost { which, upper } => {
            if let Some(posts) = input["posts"].as_array_mut().filter(|p| !p.is_empty()) {
                let mut post = posts[which.index(posts.len())].clone();
                if *upper {
                    if let Some(Value::String(p)) = post.get("pattern") {
                        post["pattern"] = Value::from(p.to_uppercase());
                    }
                }
                posts.push(post);
            }
        }
        Change::Member { item, key, value } if !all.is_empty() => {
            let (l, i) = all[item.index(all.len())];
            if let Some(map) = input[l][i].as_object_mut() {
                match value {
                    Some(v) => map.insert(key.clone(), v.clone()),
                    None => map.remove(key),
                };
            }
        }
        Change::Long {
            item,
            key,
            chars,
            wide,
        } if !all.is_empty() => {
            let (l, i) = all[item.index(all.len())];
            let text = if *wide {
                "é".repeat(*chars)
            } else {
                "x".repeat(*chars)
            };
            if let Some(map) = input[l][i].as_object_mut() {
                map.insert(key.to_string(), Value::from(text));
            }
        }
        Change::Top { key, value } => {
            if let Some(map) = input.as_object_mut() {
                map.insert(key.clone(), value.clone());
            }
        }
        _ => {}
    }
    input
}

proptest! {
    #![proptest_config(cases(400))]

    /// A valid batch with one change that may make it warn or fail: the
    /// one-pass reader reads it exactly when the full reader finds nothing.
    #[test]
    fn the_readers_agree_on_batches_changed_once(case in valid_case(), change in change()) {
        let input = apply_change(without_warnings(case.input), &change);
        agree(&text(&input, case.pretty), true)?;
    }

    /// Batches that follow the contract (some with warnings), written
    /// plainly, pretty, or with escapes.
    #[test]
    fn the_readers_agree_on_valid_batches(case in valid_case(), every in 1usize..6) {
        agree(&text(&case.input, case.pretty), true)?;
        let clean = without_warnings(case.input);
        agree(&text(&clean, case.pretty), true)?;
        agree(&escaped_text(&clean, every), true)?;
    }

    /// Documents with every kind of mistake, broken text and members given
    /// twice included.
    #[test]
    fn the_readers_agree_on_any_document(text in document_text(input_document())) {
        agree(&text, !text.contains("\"sync\""))?;
    }
}
