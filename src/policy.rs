//! The batch as the API expects it, in types that can only hold valid items.
//!
//! Serialising a [`BatchBody`] gives exactly the request body: all four
//! arrays present, `id` first in each item, optional fields left out when
//! absent and `comments: null` kept where it was given (it clears a comment).

use serde::{Serialize, Serializer};

/// The most items the API accepts in one array.
pub const MAX_ITEMS: usize = 1000;

/// A policy id as the workflow gave it: both forms occur in the wild, and the
/// API receives exactly what the workflow sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicyId {
    /// A positive 32-bit integer (the older schema).
    Number(u32),
    /// A UUID string, in the letter case it was given.
    Uuid(String),
}

impl PolicyId {
    /// The identity used to find the same policy named twice in a batch.
    pub fn identity(&self) -> String {
        match self {
            PolicyId::Number(n) => n.to_string(),
            PolicyId::Uuid(s) => s.to_ascii_lowercase(),
        }
    }
}

impl Serialize for PolicyId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PolicyId::Number(n) => s.serialize_u32(*n),
            PolicyId::Uuid(u) => s.serialize_str(u),
        }
    }
}

/// A UUID (`8-4-4-4-12` hexadecimal digits, either letter case) as the
/// number it spells, or `None` for anything else. Two spellings of one
/// UUID (letter case) spell the same number.
pub fn uuid_number(s: &str) -> Option<u128> {
    let b = s.as_bytes();
    if b.len() != 36 || [b[8], b[13], b[18], b[23]] != [b'-'; 4] {
        return None;
    }
    let mut bad = 0u8;
    let mut digits = |group: &[u8]| {
        group.iter().fold(0u64, |n, &c| {
            let digit = HEX[usize::from(c)];
            bad |= digit;
            n << 4 | u64::from(digit & 0xf)
        })
    };
    let high = digits(&b[0..8]) << 32 | digits(&b[9..13]) << 16 | digits(&b[14..18]);
    let low = digits(&b[19..23]) << 48 | digits(&b[24..36]);
    (bad & 0x10 == 0).then_some(u128::from(high) << 64 | u128::from(low))
}

/// Each byte's value as a hexadecimal digit; `0x10` for a byte that is
/// not one.
const HEX: [u8; 256] = {
    let mut table = [0x10u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// What a pattern is matched as, in a body the component sends. Stored
/// policies may also read `UNKNOWN`, which the API refuses in a create,
/// replace or update, so it has no place here.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PatternType {
    Email,
    Domain,
    Ip,
}

impl PatternType {
    /// The names a create, replace or update may give.
    pub const NAMES: [&'static str; 3] = ["EMAIL", "DOMAIN", "IP"];
    /// The name stored policies may carry that no request may send.
    pub const UNKNOWN: &'static str = "UNKNOWN";

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EMAIL" => PatternType::Email,
            "DOMAIN" => PatternType::Domain,
            "IP" => PatternType::Ip,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            PatternType::Email => "EMAIL",
            PatternType::Domain => "DOMAIN",
            PatternType::Ip => "IP",
        }
    }
}

/// A pattern as the API is taken to compare it: addresses and host names
/// without regard to ASCII case, as mail systems treat them; regular
/// expressions and IP patterns exactly. `pattern_type` is the type's name,
/// so that stored policies (which may read `UNKNOWN`) compare alike.
pub fn pattern_identity<'a>(
    pattern: &'a str,
    pattern_type: &str,
    is_regex: bool,
) -> std::borrow::Cow<'a, str> {
    if compared_caseless(pattern_type, is_regex) && pattern.bytes().any(|b| b.is_ascii_uppercase())
    {
        std::borrow::Cow::Owned(pattern.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(pattern)
    }
}

/// Whether [`pattern_identity`] compares patterns of this type without
/// regard to ASCII case.
pub fn compared_caseless(pattern_type: &str, is_regex: bool) -> bool {
    !is_regex && matches!(pattern_type, "EMAIL" | "DOMAIN")
}

/// A complete policy: the body of a create, and of a replace after its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub pattern: String,
    pub pattern_type: PatternType,
    pub is_regex: bool,
    pub is_exempt_recipient: bool,
    pub is_trusted_sender: bool,
    pub is_acceptable_sender: bool,
    pub verify_sender: bool,
    /// Absent, `null` (`Some(None)`), or a comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Option<String>>,
}

/// A replace: an existing policy's id and every field anew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replacement {
    pub id: PolicyId,
    #[serde(flatten)]
    pub policy: Policy,
}

/// A partial update: only the fields given are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyPatch {
    pub id: PolicyId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<PatternType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_regex: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exempt_recipient: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_trusted_sender: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_acceptable_sender: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_sender: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Option<String>>,
}

impl PolicyPatch {
    /// True when the patch would change no field of the policy.
    pub fn is_empty(&self) -> bool {
        self.pattern.is_none()
            && self.pattern_type.is_none()
            && self.is_regex.is_none()
            && self.is_exempt_recipient.is_none()
            && self.is_trusted_sender.is_none()
            && self.is_acceptable_sender.is_none()
            && self.verify_sender.is_none()
            && self.comments.is_none()
    }
}

/// A delete names only the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delete {
    pub id: PolicyId,
}

/// The request body, in the order the API applies the operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchBody {
    pub deletes: Vec<Delete>,
    pub patches: Vec<PolicyPatch>,
    pub puts: Vec<Replacement>,
    pub posts: Vec<Policy>,
}

impl BatchBody {
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty()
            && self.patches.is_empty()
            && self.puts.is_empty()
            && self.posts.is_empty()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            deletes: self.deletes.len(),
            patches: self.patches.len(),
            puts: self.puts.len(),
            posts: self.posts.len(),
        }
    }
}

/// How many items of each kind the batch carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub deletes: usize,
    pub patches: usize,
    pub puts: usize,
    pub posts: usize,
}
