//! The batches the benches send: valid, free of warnings, every id unique
//! across the lists, and the same text on every run.

use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Batch {
    /// One post.
    One,
    /// 25 deletes, 25 patches, 25 puts and 25 posts.
    Hundred,
    /// 1000 of each: the largest batch the contract allows.
    Largest,
}

impl Batch {
    /// The key the figures are stored under.
    pub fn key(self) -> &'static str {
        match self {
            Batch::One => "1_item",
            Batch::Hundred => "100_items",
            Batch::Largest => "4x1000_items",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Batch::One => "1 item",
            Batch::Hundred => "100 items",
            Batch::Largest => "4 x 1000 items",
        }
    }

    pub fn input(self) -> String {
        let (deletes, patches, puts, posts) = match self {
            Batch::One => (0, 0, 0, 1),
            Batch::Hundred => (25, 25, 25, 25),
            Batch::Largest => (1000, 1000, 1000, 1000),
        };
        json!({
            "deletes": (0..deletes).map(delete).collect::<Vec<_>>(),
            "patches": (0..patches).map(patch).collect::<Vec<_>>(),
            "puts": (0..puts).map(put).collect::<Vec<_>>(),
            "posts": (0..posts).map(post).collect::<Vec<_>>(),
        })
        .to_string()
    }
}

/// Policy ids as the current API has them: UUID strings, distinct across
/// the three lists that name existing policies.
fn uuid(list: u32, i: u32) -> String {
    format!(
        "{i:08x}-7a1c-4e2b-9f3d-{:012x}",
        (u64::from(list) << 32) + u64::from(i)
    )
}

fn delete(i: u32) -> Value {
    json!({ "id": uuid(1, i) })
}

fn patch(i: u32) -> Value {
    json!({
        "id": uuid(2, i),
        "verify_sender": true,
        "comments": format!("reviewed in batch {i}"),
    })
}

fn put(i: u32) -> Value {
    json!({
        "id": uuid(3, i),
        "pattern": format!("vendor-{i}.example.net"),
        "pattern_type": "DOMAIN",
        "is_regex": false,
        "is_exempt_recipient": false,
        "is_trusted_sender": false,
        "is_acceptable_sender": true,
        "verify_sender": true,
        "comments": "replaced wholesale",
    })
}

/// Addresses, host names and now and then a regular expression, so that
/// each kind of pattern check takes its share.
fn post(i: u32) -> Value {
    let (pattern, pattern_type, is_regex) = match i % 10 {
        9 => (format!(r".*@(eu|us)-{i}\.partner\.example"), "EMAIL", true),
        n if n % 2 == 0 => (format!("alerts-{i}@monitoring.example.com"), "EMAIL", false),
        _ => (format!("mail-{i}.partner.example.org"), "DOMAIN", false),
    };
    json!({
        "pattern": pattern,
        "pattern_type": pattern_type,
        "is_regex": is_regex,
        "is_exempt_recipient": false,
        "is_trusted_sender": true,
        "is_acceptable_sender": false,
        "verify_sender": true,
        "comments": "created by the benchmark",
    })
}
