//! The batch as the API expects it, in types that can only hold valid items.
//!
//! Serialising a [`BatchBody`] gives exactly the request body: all four
//! arrays present, `id` first in each item, optional fields left out when
//! absent and `comments: null` kept where it was given (it clears a comment).

use serde::{Serialize, Serializer};

use crate::api::fields::{Field, Flag};

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
    /// An email address.
    Email,
    /// A domain name.
    Domain,
    /// An IP address or a CIDR range.
    Ip,
}

impl PatternType {
    /// The names a create, replace or update may give.
    pub const NAMES: [&'static str; 3] = ["EMAIL", "DOMAIN", "IP"];
    /// The name stored policies may carry that no request may send.
    pub const UNKNOWN: &'static str = "UNKNOWN";

    /// The type a request names, or `None` for any other name (`UNKNOWN`
    /// included).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EMAIL" => PatternType::Email,
            "DOMAIN" => PatternType::Domain,
            "IP" => PatternType::Ip,
            _ => return None,
        })
    }

    /// The type's name in the API's JSON.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Email => "EMAIL",
            PatternType::Domain => "DOMAIN",
            PatternType::Ip => "IP",
        }
    }
}

/// A complete policy: the body of a create, and of a replace after its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// What the policy matches, as its type and `is_regex` say.
    pub pattern: String,
    /// What the pattern is matched as.
    pub pattern_type: PatternType,
    /// The pattern is a Java regular expression.
    pub is_regex: bool,
    /// Mail to the pattern bypasses every detection.
    pub is_exempt_recipient: bool,
    /// Mail from the pattern bypasses every detection and link following.
    pub is_trusted_sender: bool,
    /// Mail from the pattern is exempt from the spam, spoof and bulk
    /// dispositions only.
    pub is_acceptable_sender: bool,
    /// The policy holds only for mail that passes DMARC, SPF or DKIM.
    pub verify_sender: bool,
    /// Absent, `null` (`Some(None)`), or a comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Option<String>>,
}

impl Policy {
    /// The flag's value.
    pub fn flag(&self, flag: Flag) -> bool {
        match flag {
            Flag::IsRegex => self.is_regex,
            Flag::IsExemptRecipient => self.is_exempt_recipient,
            Flag::IsTrustedSender => self.is_trusted_sender,
            Flag::IsAcceptableSender => self.is_acceptable_sender,
            Flag::VerifySender => self.verify_sender,
        }
    }

    /// The fields, borrowed, as a create or a replace sends them.
    pub fn sent(&self) -> SentFields<'_> {
        SentFields {
            pattern: Some(&self.pattern),
            pattern_type: Some(self.pattern_type),
            flags: Flag::ALL.map(|flag| Some(self.flag(flag))),
            comments: self.comments.as_ref().map(|c| c.as_deref()),
        }
    }
}

/// A replace: an existing policy's id and every field anew.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Replacement {
    /// The policy to replace.
    pub id: PolicyId,
    /// Every field, as the policy is to be.
    #[serde(flatten)]
    pub policy: Policy,
}

/// The fields a patch sets, each optional: only those given are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PolicyFields {
    /// The new pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The new type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<PatternType>,
    /// The new `is_regex`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_regex: Option<bool>,
    /// The new `is_exempt_recipient`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exempt_recipient: Option<bool>,
    /// The new `is_trusted_sender`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_trusted_sender: Option<bool>,
    /// The new `is_acceptable_sender`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_acceptable_sender: Option<bool>,
    /// The new `verify_sender`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_sender: Option<bool>,
    /// Absent, `null` (`Some(None)`), or a comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comments: Option<Option<String>>,
}

impl PolicyFields {
    /// The flag as given, if it was.
    pub fn flag(&self, flag: Flag) -> Option<bool> {
        match flag {
            Flag::IsRegex => self.is_regex,
            Flag::IsExemptRecipient => self.is_exempt_recipient,
            Flag::IsTrustedSender => self.is_trusted_sender,
            Flag::IsAcceptableSender => self.is_acceptable_sender,
            Flag::VerifySender => self.verify_sender,
        }
    }

    /// The flag's place, to give it.
    pub fn flag_mut(&mut self, flag: Flag) -> &mut Option<bool> {
        match flag {
            Flag::IsRegex => &mut self.is_regex,
            Flag::IsExemptRecipient => &mut self.is_exempt_recipient,
            Flag::IsTrustedSender => &mut self.is_trusted_sender,
            Flag::IsAcceptableSender => &mut self.is_acceptable_sender,
            Flag::VerifySender => &mut self.verify_sender,
        }
    }

    /// True when no field is given: a patch of these would change nothing.
    pub fn is_empty(&self) -> bool {
        let sent = self.sent();
        Field::ALL.into_iter().all(|field| !sent.sets(field))
    }

    /// The fields as a complete policy, or `None` when a required one is
    /// missing.
    pub fn complete(self) -> Option<Policy> {
        Some(Policy {
            pattern: self.pattern?,
            pattern_type: self.pattern_type?,
            is_regex: self.is_regex?,
            is_exempt_recipient: self.is_exempt_recipient?,
            is_trusted_sender: self.is_trusted_sender?,
            is_acceptable_sender: self.is_acceptable_sender?,
            verify_sender: self.verify_sender?,
            comments: self.comments,
        })
    }

    /// Gives `field` the value `sent` gives it, as a patch sends it: an
    /// empty comment as `null`, which the API stores alike.
    pub fn copy_field(&mut self, sent: &SentFields<'_>, field: Field) {
        match field {
            Field::Pattern => self.pattern = sent.pattern.map(str::to_string),
            Field::PatternType => self.pattern_type = sent.pattern_type,
            Field::Flag(flag) => *self.flag_mut(flag) = sent.flags[flag.index()],
            Field::Comments => {
                self.comments = sent
                    .comments
                    .map(|c| c.filter(|c| !c.is_empty()).map(str::to_string))
            }
        }
    }

    /// The fields, borrowed, as a request sends them.
    pub fn sent(&self) -> SentFields<'_> {
        SentFields {
            pattern: self.pattern.as_deref(),
            pattern_type: self.pattern_type,
            flags: Flag::ALL.map(|flag| self.flag(flag)),
            comments: self.comments.as_ref().map(|c| c.as_deref()),
        }
    }
}

/// A partial update: the policy's id, and only the fields given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PolicyPatch {
    /// The policy to change.
    pub id: PolicyId,
    /// What to change.
    #[serde(flatten)]
    pub fields: PolicyFields,
}

/// The fields a request sets, borrowed alike from a complete [`Policy`]
/// (all of them, `comments` perhaps not) and from a patch's
/// [`PolicyFields`] (those given): what read-back and sync compare with a
/// stored policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SentFields<'a> {
    /// `pattern`, if set.
    pub pattern: Option<&'a str>,
    /// `pattern_type`, if set.
    pub pattern_type: Option<PatternType>,
    /// The flags, indexed by [`Flag::index`], each if set.
    pub flags: [Option<bool>; Flag::COUNT],
    /// `comments`, if set: `Some(None)` is `null`.
    pub comments: Option<Option<&'a str>>,
}

impl SentFields<'_> {
    /// Whether the request sets `field`.
    pub fn sets(&self, field: Field) -> bool {
        match field {
            Field::Pattern => self.pattern.is_some(),
            Field::PatternType => self.pattern_type.is_some(),
            Field::Flag(flag) => self.flags[flag.index()].is_some(),
            Field::Comments => self.comments.is_some(),
        }
    }

    /// The value the request sets `field` to, as JSON (`null` when it sets
    /// none, and for an empty comment, which the API stores as none).
    pub fn value(&self, field: Field) -> serde_json::Value {
        use serde_json::Value;
        match field {
            Field::Pattern => Value::from(self.pattern),
            Field::PatternType => Value::from(self.pattern_type.map(PatternType::name)),
            Field::Flag(flag) => Value::from(self.flags[flag.index()]),
            Field::Comments => Value::from(self.comments.flatten().filter(|c| !c.is_empty())),
        }
    }
}

/// A delete names only the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delete {
    /// The policy to delete.
    pub id: PolicyId,
}

/// The request body, in the order the API applies the operations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchBody {
    /// Applied first.
    pub deletes: Vec<Delete>,
    /// Applied after the deletes.
    pub patches: Vec<PolicyPatch>,
    /// Applied after the patches.
    pub puts: Vec<Replacement>,
    /// Applied last: each creates a policy, and a repeat creates it again.
    pub posts: Vec<Policy>,
}

impl BatchBody {
    /// True when the batch has no item: it is not sent.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty()
            && self.patches.is_empty()
            && self.puts.is_empty()
            && self.posts.is_empty()
    }

    /// How many items of each kind the batch carries.
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
    /// Deletes.
    pub deletes: usize,
    /// Partial updates.
    pub patches: usize,
    /// Replacements.
    pub puts: usize,
    /// Creates.
    pub posts: usize,
}
