//! The `input` document: the account and the four lists of operations,
//! checked against the API's field rules before anything is sent.

use crate::api::fields::{Field, Flag, DEPRECATED};
use crate::api::identity::Identity;
use crate::api::policy::{
    uuid_number, BatchBody, Delete, PatternType, PolicyFields, PolicyId, PolicyPatch, Replacement,
    MAX_ITEMS,
};
use crate::config::check_account_id;
use crate::params::java_regex::check_regex;
use crate::params::json_fields::{
    expect_object, field, quoted, reject_unknown_keys, type_name, Field as JsonField,
};
use crate::params::pattern::{check_email, check_host_name, non_global_range, parse_ip_pattern};
use crate::params::problems::{Document, Pointer, Report};
use crate::params::sync_spec::{Desired, SyncSpec, DEFAULT_MAX_DELETES};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};

const DOC: Document = Document::Input;

/// The members the input may have at its top level; any other key is
/// reported as unknown, with the nearest of these suggested.
pub const INPUT_KEYS: &[&str] = &["account_id", "deletes", "patches", "puts", "posts", "sync"];

/// The members of the input's `sync` object. `left_out` is written by
/// `export-policies` for the person reading its document
/// ([`crate::run::export`]); a sync does not act on it.
pub const SYNC_KEYS: &[&str] = &[
    "policies",
    "delete_unlisted",
    "max_deletes",
    "allow_deleting_most",
    "left_out",
];

/// The members of an item of `sync.left_out`, as `export-policies` writes
/// them.
pub const LEFT_OUT_KEYS: &[&str] = &["id", "pattern", "pattern_type", "reason", "message"];

/// The most desired policies one sync takes: as many as the list reader
/// reads back.
pub const MAX_SYNC_POLICIES: usize = 10_000;

/// The most `max_deletes` may allow.
pub const MAX_DELETES_LIMIT: u64 = MAX_SYNC_POLICIES as u64;

pub(crate) const MAX_PATTERN_CHARS: usize = 1024;
pub(crate) const MAX_COMMENT_CHARS: usize = 1024;

/// The input, checked: what remains to be done is to send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidInput {
    /// The input's own account id, when it gave one.
    pub account_id: Option<String>,
    /// The four arrays as checked, ready to serialise. All empty in sync
    /// mode, which cannot be given with them; an empty batch is not sent.
    pub body: BatchBody,
    /// Sync mode: the desired policies instead of the four arrays.
    pub sync: Option<SyncSpec>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Operation {
    Create,
    Replace,
    Patch,
    /// A desired policy of sync mode: a create, with an optional `id`.
    Desire,
}

/// Reads and checks the input document. Errors and warnings go to `report`;
/// the result is `None` when there was any error.
pub fn parse_input(value: &Value, report: &mut Report) -> Option<ValidInput> {
    let root = Pointer::root();
    let map = expect_object(value, DOC, &root, report)?;
    let before = report.error_count();
    reject_unknown_keys(map, INPUT_KEYS, DOC, &root, report);

    let account = field(map, "account_id", &root);
    let account_id = account
        .string(DOC, report)
        .and_then(|s| match check_account_id(s) {
            Ok(()) => Some(s.to_string()),
            Err(message) => {
                report.error(DOC, &account.at(), message);
                None
            }
        });

    let mut ids = IdRegistry::default();
    let mut body = BatchBody::default();

    for (_, at, item) in items(map, "deletes", report) {
        let Some(obj) = expect_object(item, DOC, &at, report) else {
            continue;
        };
        reject_unknown_keys(obj, &["id"], DOC, &at, report);
        if let Some(id) = read_id(obj, &at, report) {
            ids.register(&id, &at.key("id"), report);
            body.deletes.push(Delete { id });
        }
    }

    for (_, at, item) in items(map, "patches", report) {
        let Some(obj) = expect_object(item, DOC, &at, report) else {
            continue;
        };
        let id = read_id(obj, &at, report);
        if let Some(id) = &id {
            ids.register(id, &at.key("id"), report);
        }
        let fields = read_fields(obj, &at, Operation::Patch, report);
        if let (Some(id), Some(f)) = (id, fields) {
            let patch = PolicyPatch { id, fields: f };
            if patch.fields.is_empty() {
                report.warn(
                    DOC,
                    &at,
                    "this patch changes nothing: give at least one field besides id",
                );
            }
            body.patches.push(patch);
        }
    }

    for (_, at, item) in items(map, "puts", report) {
        let Some(obj) = expect_object(item, DOC, &at, report) else {
            continue;
        };
        let id = read_id(obj, &at, report);
        if let Some(id) = &id {
            ids.register(id, &at.key("id"), report);
        }
        let policy =
            read_fields(obj, &at, Operation::Replace, report).and_then(PolicyFields::complete);
        if let (Some(id), Some(policy)) = (id, policy) {
            body.puts.push(Replacement { id, policy });
        }
    }

    let mut seen_posts: BTreeMap<Identity<'static>, Pointer> = BTreeMap::new();
    for (_, at, item) in items(map, "posts", report) {
        let Some(obj) = expect_object(item, DOC, &at, report) else {
            continue;
        };
        let Some(policy) =
            read_fields(obj, &at, Operation::Create, report).and_then(PolicyFields::complete)
        else {
            continue;
        };
        let key = Identity::of_policy(&policy).into_owned();
        match seen_posts.get(&key) {
            Some(first) => report.warn(
                DOC,
                &at,
                format!(
                    "creates a policy with the same pattern_type and pattern as {}",
                    first.as_str()
                ),
            ),
            None => {
                seen_posts.insert(key, at.clone());
            }
        }
        body.posts.push(policy);
    }

    let sync = field(map, "sync", &root);
    let sync = match sync.value {
        None => None,
        Some(value) => {
            let arrays: Vec<&str> = ["deletes", "patches", "puts", "posts"]
                .into_iter()
                .filter(|k| map.contains_key(*k))
                .collect();
            if !arrays.is_empty() {
                report.error(
                    DOC,
                    &sync.at(),
                    format!(
                        "sync gives the policies the account should have, so {} cannot be given with it: use one form or the other",
                        arrays.join(", ")
                    ),
                );
            }
            parse_sync(value, &sync.at(), report)
        }
    };

    if report.error_count() != before {
        return None;
    }
    Some(ValidInput {
        account_id,
        body,
        sync,
    })
}

/// Reads the `sync` object: each desired policy checked as a create, with
/// an optional `id`; no id and no identity twice.
fn parse_sync(value: &Value, at: &Pointer, report: &mut Report) -> Option<SyncSpec> {
    let obj = expect_object(value, DOC, at, report)?;
    let before = report.error_count();
    reject_unknown_keys(obj, SYNC_KEYS, DOC, at, report);
    let flag = |name: &str, report: &mut Report| {
        let f = field(obj, name, at);
        if f.present() {
            f.boolean(DOC, report)
        } else {
            Some(false)
        }
    };
    let delete_unlisted = flag("delete_unlisted", report);
    let allow_deleting_most = flag("allow_deleting_most", report);
    let max_deletes = {
        let f = field(obj, "max_deletes", at);
        if f.present() {
            f.integer(0, MAX_DELETES_LIMIT, DOC, report)
        } else {
            Some(u64::from(DEFAULT_MAX_DELETES))
        }
    };

    check_left_out(obj, at, report);

    let list_at = at.key("policies");
    let list: &[Value] = match obj.get("policies") {
        None => {
            report.error(
                DOC,
                &list_at,
                "required field is missing: the policies the account should have ([] for none)",
            );
            &[]
        }
        Some(Value::Array(list)) => {
            if list.len() > MAX_SYNC_POLICIES {
                report.error(
                    DOC,
                    &list_at,
                    format!(
                        "has {} policies; a sync takes at most {MAX_SYNC_POLICIES}",
                        list.len()
                    ),
                );
            }
            list
        }
        Some(other) => {
            report.error(
                DOC,
                &list_at,
                format!("expected an array, got {}", type_name(other)),
            );
            &[]
        }
    };
    let mut ids = IdRegistry::default();
    let mut identities: HashMap<Identity<'static>, Pointer> = HashMap::new();
    let mut desired = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let item_at = list_at.index(i);
        let Some(item_obj) = expect_object(item, DOC, &item_at, report) else {
            continue;
        };
        let id = if item_obj.contains_key("id") {
            let id = read_id(item_obj, &item_at, report);
            if let Some(id) = &id {
                ids.register(id, &item_at.key("id"), report);
            }
            id
        } else {
            None
        };
        let Some(policy) = read_fields(item_obj, &item_at, Operation::Desire, report)
            .and_then(PolicyFields::complete)
        else {
            continue;
        };
        let identity = Identity::of_policy(&policy).into_owned();
        match identities.get(&identity) {
            Some(first) => report.error(
                DOC,
                &item_at,
                format!(
                    "is the same policy as {} (same pattern_type, is_regex and pattern): list each policy once",
                    first.as_str()
                ),
            ),
            None => {
                identities.insert(identity, item_at.clone());
            }
        }
        desired.push(Desired { id, policy });
    }
    if report.error_count() != before {
        return None;
    }
    Some(SyncSpec {
        desired,
        delete_unlisted: delete_unlisted?,
        max_deletes: u32::try_from(max_deletes?).ok()?,
        allow_deleting_most: allow_deleting_most?,
    })
}

/// `sync.left_out`: the policies an export could not list, with why. It
/// is there for a person to read and nothing acts on it, so only its shape
/// is checked, as the schema states it: an array of objects with no
/// members but [`LEFT_OUT_KEYS`], whatever their values.
fn check_left_out(obj: &Map<String, Value>, at: &Pointer, report: &mut Report) {
    let left_out = field(obj, "left_out", at);
    match left_out.value {
        None => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let item_at = left_out.at().index(i);
                if let Some(item) = expect_object(item, DOC, &item_at, report) {
                    reject_unknown_keys(item, LEFT_OUT_KEYS, DOC, &item_at, report);
                }
            }
        }
        Some(other) => report.error(
            DOC,
            &left_out.at(),
            format!("expected an array, got {}", type_name(other)),
        ),
    }
}

/// The items of one of the four arrays, each with its pointer. A missing
/// array is empty; an array over the API's limit is reported, and its items
/// are still checked so that every problem is found in one pass.
fn items<'v>(
    map: &'v Map<String, Value>,
    name: &str,
    report: &mut Report,
) -> impl Iterator<Item = (usize, Pointer, &'v Value)> {
    let at = Pointer::root().key(name);
    let list: &[Value] = match map.get(name) {
        None => &[],
        Some(Value::Array(list)) => {
            if list.len() > MAX_ITEMS {
                report.error(
                    DOC,
                    &at,
                    format!(
                        "has {} items; the API accepts at most {MAX_ITEMS} in one array, split the batch",
                        list.len()
                    ),
                );
            }
            list
        }
        Some(other) => {
            report.error(
                DOC,
                &at,
                format!("expected an array, got {}", type_name(other)),
            );
            &[]
        }
    };
    list.iter()
        .enumerate()
        .map(move |(i, v)| (i, at.index(i), v))
}

fn read_id(obj: &Map<String, Value>, at: &Pointer, report: &mut Report) -> Option<PolicyId> {
    let f = field(obj, "id", at).required(DOC, report)?;
    let value = f.value?;
    let parsed = match value {
        Value::Number(n) => n
            .as_u64()
            .filter(|n| (1..=i32::MAX as u64).contains(n))
            .map(|n| PolicyId::Number(n as u32)),
        Value::String(s) if uuid_number(s).is_some() => Some(PolicyId::Uuid(s.clone())),
        _ => None,
    };
    if let Some(PolicyId::Number(n)) = parsed {
        report.warn(
            DOC,
            &f.at(),
            format!(
                "{n} is an integer id, which only the older API used; the current API identifies policies by UUID string and refuses an integer id, failing the whole batch: give the policy's UUID"
            ),
        );
    }
    if parsed.is_none() {
        let got = match value {
            Value::Number(n) => n.to_string(),
            Value::String(s) => quoted(s, 60),
            other => type_name(other).to_string(),
        };
        report.error(
            DOC,
            &f.at(),
            format!("expected a policy id: a positive 32-bit integer or a UUID string, got {got}"),
        );
    }
    parsed
}

/// Finds the same policy named twice anywhere in deletes, patches and puts:
/// the API's result for that is undocumented, so it is never sent.
#[derive(Default)]
struct IdRegistry(BTreeMap<String, Pointer>);

impl IdRegistry {
    fn register(&mut self, id: &PolicyId, at: &Pointer, report: &mut Report) {
        let identity = id.identity();
        match self.0.get(&identity) {
            Some(first) => report.error(
                DOC,
                at,
                format!(
                    "policy {identity} also appears at {}; a batch may name each policy only once",
                    first.as_str()
                ),
            ),
            None => {
                self.0.insert(identity, at.clone());
            }
        }
    }
}

/// Reads the policy fields of a create, replace or patch item. `None` when
/// the item has any error.
fn read_fields(
    obj: &Map<String, Value>,
    at: &Pointer,
    op: Operation,
    report: &mut Report,
) -> Option<PolicyFields> {
    let before = report.error_count();
    let mut known: Vec<&str> = Vec::with_capacity(12);
    if op != Operation::Create {
        known.push("id");
    }
    known.extend_from_slice(&Field::NAMES);
    known.extend(DEPRECATED.iter().map(|(old, _)| *old));
    reject_unknown_keys(obj, &known, DOC, at, report);

    let mut f = PolicyFields::default();
    let pattern = field(obj, "pattern", at);
    f.pattern = pattern.string(DOC, report).and_then(|s| {
        let chars = s.chars().count();
        if (1..=MAX_PATTERN_CHARS).contains(&chars) {
            Some(s.to_string())
        } else {
            report.error(
                DOC,
                &pattern.at(),
                format!("expected 1 to {MAX_PATTERN_CHARS} characters, got {chars}"),
            );
            None
        }
    });

    let pattern_type = field(obj, "pattern_type", at);
    f.pattern_type = pattern_type.string(DOC, report).and_then(|s| {
        let parsed = PatternType::parse(s);
        if parsed.is_none() {
            let message = if s == PatternType::UNKNOWN {
                "UNKNOWN only describes some existing policies; the API refuses it in a create, replace or update: use EMAIL, DOMAIN or IP".to_string()
            } else {
                format!(
                    "expected one of {}, got {}",
                    PatternType::NAMES.join(", "),
                    quoted(s, 60)
                )
            };
            report.error(DOC, &pattern_type.at(), message);
        }
        parsed
    });

    for flag in Flag::ALL {
        *f.flag_mut(flag) = field(obj, flag.name(), at).boolean(DOC, report);
    }

    let comments = field(obj, "comments", at);
    f.comments = match comments.value {
        None => None,
        Some(Value::Null) => Some(None),
        Some(Value::String(s)) => {
            let chars = s.chars().count();
            if chars > MAX_COMMENT_CHARS {
                report.error(
                    DOC,
                    &comments.at(),
                    format!("expected at most {MAX_COMMENT_CHARS} characters, got {chars}"),
                );
            }
            Some(Some(s.clone()))
        }
        Some(other) => {
            report.error(
                DOC,
                &comments.at(),
                format!("expected a string or null, got {}", type_name(other)),
            );
            None
        }
    };

    let mut renamed: Vec<(&str, &str)> = Vec::new();
    for (old, flag) in DEPRECATED {
        let new = flag.name();
        let deprecated = field(obj, old, at);
        let Some(value) = deprecated.boolean(DOC, report) else {
            continue;
        };
        let replacement_given = obj.contains_key(new);
        match *f.flag_mut(flag) {
            Some(current) if current != value => report.error(
                DOC,
                &deprecated.at(),
                format!("is {value} but {new} is {current}; {old} is deprecated and not sent, remove it"),
            ),
            Some(_) => report.warn(
                DOC,
                &deprecated.at(),
                format!("{old} is deprecated and not sent; {new} already says the same"),
            ),
            None if replacement_given => {}
            None if op == Operation::Patch => {
                *f.flag_mut(flag) = Some(value);
                report.warn(
                    DOC,
                    &deprecated.at(),
                    format!("{old} is deprecated; its value is sent as {new}"),
                );
            }
            None => renamed.push((old, new)),
        }
    }

    if op != Operation::Patch {
        for name in Field::ALL
            .into_iter()
            .filter(|f| f.required())
            .map(Field::name)
        {
            if obj.contains_key(name) {
                continue;
            }
            let message = match renamed.iter().find(|(_, new)| *new == name) {
                Some((old, new)) => format!(
                    "required field is missing; {old} is deprecated and not sent, rename it to {new}"
                ),
                None => "required field is missing".to_string(),
            };
            report.error(DOC, &at.key(name), message);
        }
    }

    check_pattern(&f, &pattern, report);

    if report.error_count() != before {
        return None;
    }
    Some(f)
}

/// A pattern must be what its type says (or, for a regex, parse as one).
/// In a patch whose `is_regex` or `pattern_type` is absent the stored policy
/// decides, which is unknown here, so only what was given is checked.
fn check_pattern(f: &PolicyFields, pattern: &JsonField<'_, '_>, report: &mut Report) {
    let Some(text) = f.pattern.as_deref() else {
        return;
    };
    if let Err(message) = pattern_problem(text, f.is_regex, f.pattern_type) {
        report.error(DOC, &pattern.at(), message);
    }
}

/// The rule [`check_pattern`] applies, for both input readers: the message
/// when `text` is not what `is_regex` and `pattern_type` say it is.
pub(crate) fn pattern_problem(
    text: &str,
    is_regex: Option<bool>,
    pattern_type: Option<PatternType>,
) -> Result<(), String> {
    match is_regex {
        Some(true) => check_regex(text),
        Some(false) => {
            let Some(kind) = pattern_type else {
                return Ok(());
            };
            let checked = match kind {
                PatternType::Email => check_email(text),
                PatternType::Domain => check_host_name(text),
                PatternType::Ip => parse_ip_pattern(text).and_then(|ip| {
                    // The API refuses these, and with them the whole batch.
                    match non_global_range(&ip) {
                        Some(range) => Err(range.to_string()),
                        None => Ok(()),
                    }
                }),
            };
            checked.map_err(|message| {
                format!(
                    "pattern_type is {} and is_regex is false, but the pattern {message}",
                    kind.name()
                )
            })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
