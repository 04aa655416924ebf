//! A policy as the account holds it, and the account as one read saw it.
//!
//! A stored policy is compared with what a request sent in one place,
//! [`StoredFields::shows`]: read-back asks it whether a put or a patch
//! landed, sync which fields a desired policy changes.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::api::fields::{Field, Flag};
use crate::api::identity::{same_pattern, Identity, PostKey};
use crate::api::policy::SentFields;
use crate::api::retry_after::parse_rfc3339_ms;

/// A policy as the account holds it. Every field is optional, as the API
/// may leave any out; comparisons treat a missing field as unknown.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct StoredFields {
    /// The pattern as stored.
    #[serde(default)]
    pub pattern: Option<String>,
    /// The type's name: a request's, or `UNKNOWN`, which no request sends.
    #[serde(default)]
    pub pattern_type: Option<String>,
    /// `is_regex` as stored.
    #[serde(default)]
    pub is_regex: Option<bool>,
    /// `is_exempt_recipient` as stored.
    #[serde(default)]
    pub is_exempt_recipient: Option<bool>,
    /// `is_trusted_sender` as stored.
    #[serde(default)]
    pub is_trusted_sender: Option<bool>,
    /// `is_acceptable_sender` as stored.
    #[serde(default)]
    pub is_acceptable_sender: Option<bool>,
    /// `verify_sender` as stored.
    #[serde(default)]
    pub verify_sender: Option<bool>,
    /// `None` for `null`, absent, or empty: all three mean "no comment".
    #[serde(default, deserialize_with = "comment")]
    pub comments: Option<String>,
}

fn comment<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|c| !c.is_empty()))
}

/// One stored policy: its id, its fields, and the API's JSON for it, kept
/// to be passed on verbatim.
#[derive(Clone, Debug)]
pub struct StoredPolicy {
    /// The id as [`PolicyId::identity`](crate::api::policy::PolicyId::identity) spells it.
    pub id: String,
    /// The fields, read from `raw`.
    pub fields: StoredFields,
    /// The API's JSON for the policy, passed on verbatim in a rebuilt
    /// result.
    pub raw: Box<RawValue>,
}

/// The whole list, indexed by id.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Each policy once, in the order read: oldest first.
    pub policies: Vec<StoredPolicy>,
    by_id: HashMap<String, usize>,
}

impl Snapshot {
    /// A snapshot of `policies`; a policy listed twice (pages that shifted
    /// while they were read) counts once.
    pub fn new(policies: impl IntoIterator<Item = StoredPolicy>) -> Self {
        let mut snapshot = Snapshot::default();
        for policy in policies {
            if !snapshot.by_id.contains_key(&policy.id) {
                snapshot
                    .by_id
                    .insert(policy.id.clone(), snapshot.policies.len());
                snapshot.policies.push(policy);
            }
        }
        snapshot
    }

    /// The policy with this id, spelt as [`StoredPolicy::id`] is.
    pub fn get(&self, id: &str) -> Option<&StoredPolicy> {
        self.by_id.get(id).map(|&i| &self.policies[i])
    }

    /// Where the policy with this id is in [`Snapshot::policies`].
    pub fn position(&self, id: &str) -> Option<usize> {
        self.by_id.get(id).copied()
    }

    /// Whether the account has a policy with this id.
    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    /// How many policies the account has.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether the account has no policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }
}

impl StoredFields {
    /// The stored flag, if the API gave it.
    pub fn flag(&self, flag: Flag) -> Option<bool> {
        match flag {
            Flag::IsRegex => self.is_regex,
            Flag::IsExemptRecipient => self.is_exempt_recipient,
            Flag::IsTrustedSender => self.is_trusted_sender,
            Flag::IsAcceptableSender => self.is_acceptable_sender,
            Flag::VerifySender => self.verify_sender,
        }
    }

    /// The stored value of `field` as JSON, `null` when the API gave none.
    pub fn value(&self, field: Field) -> Value {
        match field {
            Field::Pattern => Value::from(self.pattern.as_deref()),
            Field::PatternType => Value::from(self.pattern_type.as_deref()),
            Field::Flag(flag) => Value::from(self.flag(flag)),
            Field::Comments => Value::from(self.comments.as_deref()),
        }
    }

    /// Whether the stored policy holds `field` as `sent` sets it. A field
    /// `sent` does not set is shown whatever the policy holds. The pattern
    /// is compared as its type and regex flag say, the sent ones where
    /// given, else the stored ones; an empty comment is no comment.
    pub fn shows_field(&self, sent: &SentFields<'_>, field: Field) -> bool {
        match field {
            Field::Pattern => sent.pattern.is_none_or(|pattern| {
                let pattern_type = sent
                    .pattern_type
                    .map(|t| t.name())
                    .or(self.pattern_type.as_deref())
                    .unwrap_or("");
                let is_regex = sent.flags[Flag::IsRegex.index()]
                    .or(self.is_regex)
                    .unwrap_or(true);
                same_pattern(pattern, self.pattern.as_deref(), pattern_type, is_regex)
            }),
            Field::PatternType => sent
                .pattern_type
                .is_none_or(|t| self.pattern_type.as_deref() == Some(t.name())),
            Field::Flag(flag) => {
                sent.flags[flag.index()].is_none_or(|v| self.flag(flag) == Some(v))
            }
            Field::Comments => sent
                .comments
                .is_none_or(|c| c.filter(|c| !c.is_empty()) == self.comments.as_deref()),
        }
    }

    /// Whether the stored policy holds every field `sent` sets.
    pub fn shows(&self, sent: &SentFields<'_>) -> bool {
        Field::ALL
            .into_iter()
            .all(|field| self.shows_field(sent, field))
    }

    /// The fields the stored policy holds otherwise than `sent` sets them,
    /// in the order a request sends them.
    pub fn differing<'s>(&'s self, sent: &'s SentFields<'_>) -> impl Iterator<Item = Field> + 's {
        Field::ALL
            .into_iter()
            .filter(move |&field| !self.shows_field(sent, field))
    }

    /// The stored policy's identity, when it has a type, a regex flag and
    /// a pattern.
    pub fn identity(&self) -> Option<Identity<'_>> {
        Some(Identity::new(
            self.pattern_type.as_deref()?,
            self.is_regex?,
            self.pattern.as_deref()?,
        ))
    }

    /// What the stored policy looks like as a post's, when every field a
    /// post sets is there.
    pub fn post_key(&self) -> Option<PostKey<'_>> {
        let mut flags = [false; Flag::COUNT];
        for flag in Flag::ALL {
            flags[flag.index()] = self.flag(flag)?;
        }
        Some(PostKey::new(
            self.pattern.as_deref()?,
            self.pattern_type.as_deref()?,
            flags,
            self.comments.as_deref(),
        ))
    }
}

impl StoredPolicy {
    /// When the policy was created, in milliseconds since the Unix epoch,
    /// if the API said in a form that reads.
    pub fn created_at_ms(&self) -> Option<u64> {
        #[derive(Deserialize)]
        struct Created<'a> {
            #[serde(borrow, default)]
            created_at: Option<&'a str>,
        }
        let created: Created<'_> = serde_json::from_str(self.raw.get()).ok()?;
        parse_rfc3339_ms(created.created_at?)
    }
}
