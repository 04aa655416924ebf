//! The batch rules: what the current (or, with legacy ids, the older) API
//! accepts in a batch body, every problem reported with its pointer.

use std::fmt;

use allow_policies_batch::params::pattern::{non_global_range, parse_ip_pattern};
use serde_json::{json, Map, Value};

use super::code;
use super::envelope::{pointer, ApiError};

/// The API's limit per array of a batch.
pub const MAX_BATCH_ITEMS: usize = 1000;

const MAX_PATTERN_CHARS: usize = 1024;
const MAX_COMMENT_CHARS: usize = 1024;

pub(super) struct BatchOps {
    pub(super) deletes: Vec<PolicyId>,
    pub(super) patches: Vec<(PolicyId, Changes)>,
    pub(super) puts: Vec<(PolicyId, PolicyBody)>,
    pub(super) posts: Vec<PolicyBody>,
}

pub(super) const ARRAYS: [&str; 4] = ["deletes", "patches", "puts", "posts"];

/// Every problem of the document at once, as the API reports a list.
/// `legacy_ids` lets integer ids through, as the older API did.
pub(super) fn parse_batch(
    document: &Map<String, Value>,
    legacy_ids: bool,
) -> Result<BatchOps, Vec<ApiError>> {
    let mut errors = Vec::new();
    for key in document.keys().filter(|k| !ARRAYS.contains(&k.as_str())) {
        errors.push(ApiError::at(
            code::INVALID_FIELD,
            "unknown field",
            pointer("", key),
        ));
    }
    let mut ops = BatchOps {
        deletes: Vec::new(),
        patches: Vec::new(),
        puts: Vec::new(),
        posts: Vec::new(),
    };
    for array in ARRAYS {
        let at = format!("/{array}");
        let items = match document.get(array) {
            None => {
                errors.push(ApiError::at(
                    code::INVALID_FIELD,
                    "is required (send [] when there is nothing to do)",
                    at,
                ));
                continue;
            }
            Some(Value::Array(items)) if items.len() > MAX_BATCH_ITEMS => {
                errors.push(ApiError::at(
                    code::INVALID_FIELD,
                    format!(
                        "has {} items, at most {MAX_BATCH_ITEMS} are allowed",
                        items.len()
                    ),
                    at,
                ));
                continue;
            }
            Some(Value::Array(items)) => items,
            Some(_) => {
                errors.push(ApiError::at(code::INVALID_FIELD, "must be an array", at));
                continue;
            }
        };
        for (i, item) in items.iter().enumerate() {
            let at = format!("/{array}/{i}");
            let Value::Object(fields) = item else {
                errors.push(ApiError::at(code::INVALID_FIELD, "must be an object", at));
                continue;
            };
            let kind = match array {
                "deletes" => Kind::Delete,
                "patches" => Kind::Patch,
                "puts" => Kind::Replace,
                _ => Kind::Create,
            };
            let changes = parse_changes(fields, &at, kind, legacy_ids, &mut errors);
            match kind {
                Kind::Delete => ops.deletes.extend(changes.id),
                Kind::Patch => {
                    if let Some(id) = changes.id.clone() {
                        ops.patches.push((id, changes));
                    }
                }
                Kind::Replace => {
                    let id = changes.id.clone();
                    if let (Some(id), Some(body)) = (id, complete(changes)) {
                        ops.puts.push((id, body));
                    }
                }
                Kind::Create | Kind::Seed => ops.posts.extend(complete(changes)),
            }
        }
    }
    if errors.is_empty() {
        Ok(ops)
    } else {
        Err(errors)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Create,
    Replace,
    Patch,
    Delete,
    /// A create that may use `UNKNOWN`, which only existing policies have.
    Seed,
}

impl Kind {
    pub(super) fn has_id(self) -> bool {
        matches!(self, Kind::Replace | Kind::Patch | Kind::Delete)
    }

    pub(super) fn has_fields(self) -> bool {
        !matches!(self, Kind::Delete)
    }

    pub(super) fn needs_body(self) -> bool {
        matches!(self, Kind::Create | Kind::Replace | Kind::Seed)
    }
}

pub(super) const FLAGS: [&str; 5] = [
    "is_exempt_recipient",
    "is_trusted_sender",
    "is_acceptable_sender",
    "verify_sender",
    "is_regex",
];

/// Still accepted on creates and replacements until their end of life;
/// their replacements (required) are what counts.
pub(super) const DEPRECATED_FLAGS: [&str; 3] = ["is_recipient", "is_sender", "is_spoof"];

pub(super) const PATTERN_TYPES: [&str; 3] = ["EMAIL", "DOMAIN", "IP"];

/// The fields one item sets; `comments: Some(None)` clears the comment.
#[derive(Default)]
pub(super) struct Changes {
    pub(super) id: Option<PolicyId>,
    pub(super) flags: [Option<bool>; 5],
    pub(super) pattern_type: Option<String>,
    pub(super) pattern: Option<String>,
    pub(super) comments: Option<Option<String>>,
}

/// Everything a create or a replacement must give.
#[derive(Clone)]
pub(super) struct PolicyBody {
    pub(super) flags: [bool; 5],
    pub(super) pattern_type: String,
    pub(super) pattern: String,
    pub(super) comments: Option<String>,
}

pub(super) fn parse_changes(
    fields: &Map<String, Value>,
    at: &str,
    kind: Kind,
    legacy_ids: bool,
    errors: &mut Vec<ApiError>,
) -> Changes {
    let mut changes = Changes::default();
    let mut invalid = |message: String, key: &str| {
        errors.push(ApiError::at(code::INVALID_FIELD, message, pointer(at, key)));
    };
    for (key, value) in fields {
        let key = key.as_str();
        if key == "id" && kind.has_id() {
            match PolicyId::parse(value, legacy_ids) {
                Ok(id) => changes.id = Some(id),
                Err(message) => invalid(message.into(), key),
            }
        } else if let Some(slot) = FLAGS
            .iter()
            .position(|f| *f == key)
            .filter(|_| kind.has_fields())
        {
            match value {
                Value::Bool(b) => changes.flags[slot] = Some(*b),
                _ => invalid("must be a boolean".into(), key),
            }
        } else if DEPRECATED_FLAGS.contains(&key) && kind.needs_body() {
            if !value.is_boolean() {
                invalid("must be a boolean".into(), key);
            }
        } else if key == "pattern_type" && kind.has_fields() {
            match value.as_str() {
                Some(t) if PATTERN_TYPES.contains(&t) => changes.pattern_type = Some(t.to_string()),
                Some("UNKNOWN") if kind == Kind::Seed => {
                    changes.pattern_type = Some("UNKNOWN".into())
                }
                Some("UNKNOWN") => invalid(
                    "UNKNOWN cannot be used to create or update a policy; use EMAIL, DOMAIN or IP"
                        .into(),
                    key,
                ),
                _ => invalid("must be one of EMAIL, DOMAIN, IP".into(), key),
            }
        } else if key == "pattern" && kind.has_fields() {
            match value.as_str() {
                Some(p) if (1..=MAX_PATTERN_CHARS).contains(&p.chars().count()) => {
                    changes.pattern = Some(p.to_string())
                }
                Some(_) => invalid(
                    format!("must be from 1 to {MAX_PATTERN_CHARS} characters long"),
                    key,
                ),
                None => invalid("must be a string".into(), key),
            }
        } else if key == "comments" && kind.has_fields() {
            match value {
                Value::Null => changes.comments = Some(None),
                Value::String(c) if c.chars().count() <= MAX_COMMENT_CHARS => {
                    changes.comments = Some(Some(c.clone()))
                }
                Value::String(_) => invalid(
                    format!("must be at most {MAX_COMMENT_CHARS} characters long"),
                    key,
                ),
                _ => invalid("must be a string or null".into(), key),
            }
        } else {
            invalid("unknown field".into(), key);
        }
    }
    if kind.has_id() && !fields.contains_key("id") {
        invalid("is required".into(), "id");
    }
    if kind.needs_body() {
        let required = FLAGS.iter().chain(&["pattern_type", "pattern"]);
        for key in required.filter(|k| !fields.contains_key(**k)) {
            invalid("is required".into(), key);
        }
    }
    // An IP pattern must be globally reachable. Seeds stand for policies
    // made before the rule, so they are let through.
    let is_regex = FLAGS
        .iter()
        .position(|f| *f == "is_regex")
        .and_then(|slot| changes.flags[slot]);
    if kind != Kind::Seed
        && changes.pattern_type.as_deref() == Some("IP")
        && is_regex == Some(false)
    {
        if let Some(reason) = changes.pattern.as_deref().and_then(refused_ip) {
            invalid(reason, "pattern");
        }
    }
    changes
}

/// Why the API refuses an IP pattern: not an address or CIDR block, or not
/// globally reachable by IANA's special-purpose registries.
pub(super) fn refused_ip(pattern: &str) -> Option<String> {
    match parse_ip_pattern(pattern) {
        Err(why) => Some(format!("must be an IP address or CIDR block: {why}")),
        Ok(ip) => non_global_range(&ip).map(|range| format!("must be globally reachable: {range}")),
    }
}

/// The body of a create or replacement; `None` when a required field is
/// missing or invalid, which [`parse_changes`] has already reported.
pub(super) fn complete(changes: Changes) -> Option<PolicyBody> {
    let mut flags = [false; 5];
    for (slot, flag) in changes.flags.iter().enumerate() {
        flags[slot] = (*flag)?;
    }
    Some(PolicyBody {
        flags,
        pattern_type: changes.pattern_type?,
        pattern: changes.pattern?,
        comments: changes.comments.flatten(),
    })
}

#[derive(Clone, Debug)]
pub(super) enum PolicyId {
    Int(u64),
    Uuid(String),
}

impl PolicyId {
    /// A UUID string, as the current API has it; with `legacy` also the
    /// older API's non-negative integer.
    pub(super) fn parse(value: &Value, legacy: bool) -> Result<PolicyId, &'static str> {
        const UUID_ONLY: &str = "must be a UUID string (format uuid)";
        const EITHER: &str = "must be a non-negative integer or a UUID string";
        match value {
            Value::Number(n) if legacy => n.as_u64().map(PolicyId::Int).ok_or(EITHER),
            Value::String(s) if is_uuid(s) => Ok(PolicyId::Uuid(s.clone())),
            _ if legacy => Err(EITHER),
            _ => Err(UUID_ONLY),
        }
    }

    pub(super) fn matches(&self, other: &PolicyId) -> bool {
        match (self, other) {
            (PolicyId::Int(a), PolicyId::Int(b)) => a == b,
            (PolicyId::Uuid(a), PolicyId::Uuid(b)) => a.eq_ignore_ascii_case(b),
            _ => false,
        }
    }

    pub(super) fn to_json(&self) -> Value {
        match self {
            PolicyId::Int(n) => json!(n),
            PolicyId::Uuid(s) => json!(s),
        }
    }
}

impl fmt::Display for PolicyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyId::Int(n) => write!(f, "{n}"),
            PolicyId::Uuid(s) => write!(f, "{s}"),
        }
    }
}

pub(super) fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_compare_by_kind_and_uuids_ignore_case() {
        let lower = PolicyId::Uuid("f174e90a-fafe-4643-bbbc-4a0ed4fc8415".into());
        let upper = PolicyId::parse(&json!("F174E90A-FAFE-4643-BBBC-4A0ED4FC8415"), false).unwrap();
        assert!(lower.matches(&upper));
        assert!(PolicyId::Int(2401).matches(&PolicyId::parse(&json!(2401), true).unwrap()));
        assert!(!PolicyId::Int(2401).matches(&lower));
        // The current schema has UUID strings only.
        assert!(PolicyId::parse(&json!(2401), false).is_err());
        for bad in [
            json!("2401"),
            json!(-1),
            json!(1.5),
            json!(null),
            json!("nope"),
        ] {
            assert!(PolicyId::parse(&bad, true).is_err(), "{bad}");
            assert!(PolicyId::parse(&bad, false).is_err(), "{bad}");
        }
    }
}
