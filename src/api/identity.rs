//! When two policies are the same policy, and when a stored policy is one
//! that a create made.
//!
//! Two questions with different answers, kept apart:
//! - [`Identity`]: which existing policy a desired one stands for. The type,
//!   the regex flag and the pattern as [`pattern_identity`] compares it.
//!   Sync matches by it, the full reader refuses two desired policies
//!   alike and warns of two posts alike, and the one-pass reader finds
//!   repeats by its [`Identity::fingerprint`].
//! - [`PostKey`]: what a created post looks like, for reading back: every
//!   field the post sets, so a policy with other flags or another comment
//!   is not taken for it.
//!
//! Both are built from a stored policy's fields in [`crate::api::stored`].

use std::borrow::Cow;

use crate::api::fields::Flag;
use crate::api::policy::Policy;

/// A pattern as the API is taken to compare it: addresses and host names
/// without regard to ASCII case, as mail systems treat them; regular
/// expressions and IP patterns exactly. `pattern_type` is the type's name,
/// so that stored policies (which may read `UNKNOWN`) compare alike.
pub fn pattern_identity<'a>(pattern: &'a str, pattern_type: &str, is_regex: bool) -> Cow<'a, str> {
    if compared_caseless(pattern_type, is_regex) && pattern.bytes().any(|b| b.is_ascii_uppercase())
    {
        Cow::Owned(pattern.to_ascii_lowercase())
    } else {
        Cow::Borrowed(pattern)
    }
}

/// Whether [`pattern_identity`] compares patterns of this type without
/// regard to ASCII case.
pub fn compared_caseless(pattern_type: &str, is_regex: bool) -> bool {
    !is_regex && matches!(pattern_type, "EMAIL" | "DOMAIN")
}

/// Whether a stored pattern is the pattern sent, both compared as
/// `pattern_type` and `is_regex` say; a pattern not stored is not.
pub fn same_pattern(sent: &str, stored: Option<&str>, pattern_type: &str, is_regex: bool) -> bool {
    stored.is_some_and(|stored| {
        pattern_identity(sent, pattern_type, is_regex)
            == pattern_identity(stored, pattern_type, is_regex)
    })
}

/// What makes two policies the same policy: one stands for the other when
/// their identities are equal.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identity<'a> {
    pattern_type: Cow<'a, str>,
    is_regex: bool,
    pattern: Cow<'a, str>,
}

impl<'a> Identity<'a> {
    /// The identity of a policy of this type, regex flag and pattern.
    pub fn new(pattern_type: &'a str, is_regex: bool, pattern: &'a str) -> Self {
        Identity {
            pattern_type: Cow::Borrowed(pattern_type),
            is_regex,
            pattern: pattern_identity(pattern, pattern_type, is_regex),
        }
    }

    /// A policy's identity.
    pub fn of_policy(policy: &'a Policy) -> Self {
        Identity::new(policy.pattern_type.name(), policy.is_regex, &policy.pattern)
    }

    /// The identity, owning its text.
    pub fn into_owned(self) -> Identity<'static> {
        Identity {
            pattern_type: Cow::Owned(self.pattern_type.into_owned()),
            is_regex: self.is_regex,
            pattern: Cow::Owned(self.pattern.into_owned()),
        }
    }

    /// 64 bits of FNV-1a over the identity: equal identities give equal
    /// fingerprints. Not a defence against chosen collisions; a caller
    /// treats two equal fingerprints as "perhaps the same".
    pub fn fingerprint(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut byte = |b: u8| hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        for b in self.pattern_type.bytes() {
            byte(b);
        }
        // A byte no type name holds, between the parts.
        byte(0xff);
        byte(u8::from(self.is_regex));
        for b in self.pattern.bytes() {
            byte(b);
        }
        hash
    }
}

/// What a post is recognised by once created: every field it sets, the
/// pattern as [`pattern_identity`] compares it, and no comment the same as
/// an empty one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PostKey<'a> {
    pattern: Cow<'a, str>,
    pattern_type: &'a str,
    flags: [bool; Flag::COUNT],
    comments: Option<&'a str>,
}

impl<'a> PostKey<'a> {
    /// The key of a policy with these fields; `flags` indexed by
    /// [`Flag::index`].
    pub fn new(
        pattern: &'a str,
        pattern_type: &'a str,
        flags: [bool; Flag::COUNT],
        comments: Option<&'a str>,
    ) -> Self {
        let is_regex = flags[Flag::IsRegex.index()];
        PostKey {
            pattern: pattern_identity(pattern, pattern_type, is_regex),
            pattern_type,
            flags,
            comments: comments.filter(|c| !c.is_empty()),
        }
    }

    /// What the policy a post creates looks like.
    pub fn of_post(post: &'a Policy) -> Self {
        PostKey::new(
            &post.pattern,
            post.pattern_type.name(),
            Flag::ALL.map(|flag| post.flag(flag)),
            post.comments.as_ref().and_then(|c| c.as_deref()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::policy::PatternType;

    fn policy(pattern: &str, pattern_type: PatternType, is_regex: bool) -> Policy {
        Policy {
            pattern: pattern.into(),
            pattern_type,
            is_regex,
            is_exempt_recipient: false,
            is_trusted_sender: true,
            is_acceptable_sender: false,
            verify_sender: true,
            comments: None,
        }
    }

    #[test]
    fn addresses_and_host_names_are_the_same_in_any_case() {
        let a = policy("Ops@Example.com", PatternType::Email, false);
        let b = policy("ops@example.COM", PatternType::Email, false);
        assert_eq!(Identity::of_policy(&a), Identity::of_policy(&b));
        assert_eq!(
            Identity::of_policy(&a).fingerprint(),
            Identity::of_policy(&b).fingerprint()
        );
        let regex = policy("Ops@Example.com", PatternType::Email, true);
        let other = policy("ops@example.com", PatternType::Email, true);
        assert_ne!(Identity::of_policy(&regex), Identity::of_policy(&other));
        let domain = policy("Ops@Example.com", PatternType::Domain, false);
        assert_ne!(Identity::of_policy(&a), Identity::of_policy(&domain));
        assert_ne!(
            Identity::of_policy(&a).fingerprint(),
            Identity::of_policy(&domain).fingerprint()
        );
    }

    #[test]
    fn a_post_is_told_apart_by_its_flags_and_comment_but_not_an_empty_one() {
        let mut a = policy("example.com", PatternType::Domain, false);
        let mut b = a.clone();
        assert_eq!(PostKey::of_post(&a), PostKey::of_post(&b));
        b.verify_sender = false;
        assert_ne!(PostKey::of_post(&a), PostKey::of_post(&b));
        // Same identity all the same: sync would take one for the other.
        assert_eq!(Identity::of_policy(&a), Identity::of_policy(&b));
        b.verify_sender = true;
        a.comments = Some(Some(String::new()));
        b.comments = Some(None);
        assert_eq!(PostKey::of_post(&a), PostKey::of_post(&b));
        a.comments = Some(Some("x".into()));
        assert_ne!(PostKey::of_post(&a), PostKey::of_post(&b));
    }

    #[test]
    fn same_pattern_needs_a_stored_pattern() {
        assert!(same_pattern(
            "A.example",
            Some("a.example"),
            "DOMAIN",
            false
        ));
        assert!(!same_pattern(
            "A.example",
            Some("a.example"),
            "DOMAIN",
            true
        ));
        assert!(!same_pattern("a.example", None, "DOMAIN", false));
    }
}
