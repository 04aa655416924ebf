//! The field table: every field of an allow policy, in the order a request
//! sends them.
//!
//! Both input readers, the policy types, read-back and sync go through
//! this table instead of listing the names themselves. Each question about
//! a field (its name, how a reader or a comparison treats it) is an
//! exhaustive `match` here or next to the type that holds the field, so a
//! new field is one variant, and the compiler names every place that must
//! say what it means.

/// One of the five booleans of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flag {
    /// `is_regex`: the pattern is a regular expression.
    IsRegex,
    /// `is_exempt_recipient`: mail to the pattern bypasses every detection.
    IsExemptRecipient,
    /// `is_trusted_sender`: mail from the pattern bypasses every detection
    /// and link following.
    IsTrustedSender,
    /// `is_acceptable_sender`: mail from the pattern is exempt from the spam,
    /// spoof and bulk dispositions only.
    IsAcceptableSender,
    /// `verify_sender`: the policy holds only for mail that passes DMARC,
    /// SPF or DKIM.
    VerifySender,
}

impl Flag {
    /// How many flags a policy has: the length of arrays indexed by
    /// [`Flag::index`].
    pub const COUNT: usize = 5;

    /// Every flag, in the order a request sends them.
    pub const ALL: [Flag; Flag::COUNT] = [
        Flag::IsRegex,
        Flag::IsExemptRecipient,
        Flag::IsTrustedSender,
        Flag::IsAcceptableSender,
        Flag::VerifySender,
    ];

    /// The member name in the API's JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Flag::IsRegex => "is_regex",
            Flag::IsExemptRecipient => "is_exempt_recipient",
            Flag::IsTrustedSender => "is_trusted_sender",
            Flag::IsAcceptableSender => "is_acceptable_sender",
            Flag::VerifySender => "verify_sender",
        }
    }

    /// The flag as a whole member after another one, `false` then `true`:
    /// the one-pass reader writes a batch's tens of thousands of flags as
    /// such pieces instead of name and value apart.
    pub const fn members(self) -> [&'static str; 2] {
        match self {
            Flag::IsRegex => [",\"is_regex\":false", ",\"is_regex\":true"],
            Flag::IsExemptRecipient => [
                ",\"is_exempt_recipient\":false",
                ",\"is_exempt_recipient\":true",
            ],
            Flag::IsTrustedSender => [
                ",\"is_trusted_sender\":false",
                ",\"is_trusted_sender\":true",
            ],
            Flag::IsAcceptableSender => [
                ",\"is_acceptable_sender\":false",
                ",\"is_acceptable_sender\":true",
            ],
            Flag::VerifySender => [",\"verify_sender\":false", ",\"verify_sender\":true"],
        }
    }

    /// Where the flag is in [`Flag::ALL`], and in arrays indexed alike.
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// One field of a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Field {
    /// `pattern`: what the policy matches.
    Pattern,
    /// `pattern_type`: what the pattern is matched as.
    PatternType,
    /// One of the booleans.
    Flag(Flag),
    /// `comments`: free text, optional; `null` clears it.
    Comments,
}

impl Field {
    /// How many fields a policy has.
    pub const COUNT: usize = 3 + Flag::COUNT;

    /// Every field, in the order a request sends them.
    pub const ALL: [Field; Field::COUNT] = [
        Field::Pattern,
        Field::PatternType,
        Field::Flag(Flag::IsRegex),
        Field::Flag(Flag::IsExemptRecipient),
        Field::Flag(Flag::IsTrustedSender),
        Field::Flag(Flag::IsAcceptableSender),
        Field::Flag(Flag::VerifySender),
        Field::Comments,
    ];

    /// The member names of [`Field::ALL`], in the same order.
    pub const NAMES: [&'static str; Field::COUNT] = {
        let mut names = [""; Field::COUNT];
        let mut i = 0;
        while i < names.len() {
            names[i] = Field::ALL[i].name();
            i += 1;
        }
        names
    };

    /// The member name in the API's JSON.
    pub const fn name(self) -> &'static str {
        match self {
            Field::Pattern => "pattern",
            Field::PatternType => "pattern_type",
            Field::Flag(flag) => flag.name(),
            Field::Comments => "comments",
        }
    }

    /// Where the field is in [`Field::ALL`].
    pub const fn index(self) -> usize {
        match self {
            Field::Pattern => 0,
            Field::PatternType => 1,
            Field::Flag(flag) => 2 + flag.index(),
            Field::Comments => 2 + Flag::COUNT,
        }
    }

    /// The field with this member name, if any.
    pub fn named(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether a create or a replace must give the field.
    pub const fn required(self) -> bool {
        !matches!(self, Field::Comments)
    }
}

/// Deprecated booleans and the flags that replaced them. They are accepted
/// so that old workflow definitions keep working, but never sent.
pub const DEPRECATED: [(&str, Flag); 3] = [
    ("is_recipient", Flag::IsExemptRecipient),
    ("is_sender", Flag::IsTrustedSender),
    ("is_spoof", Flag::IsAcceptableSender),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_spell_each_flag_with_its_value() {
        for flag in Flag::ALL {
            let [no, yes] = flag.members();
            assert_eq!(no, format!(",\"{}\":false", flag.name()));
            assert_eq!(yes, format!(",\"{}\":true", flag.name()));
        }
    }

    #[test]
    fn flags_are_indexed_in_their_order() {
        for (i, flag) in Flag::ALL.into_iter().enumerate() {
            assert_eq!(flag.index(), i);
            assert_eq!(Field::ALL[2 + i], Field::Flag(flag));
        }
        for (i, field) in Field::ALL.into_iter().enumerate() {
            assert_eq!(field.index(), i);
        }
    }

    #[test]
    fn each_name_finds_its_field() {
        for field in Field::ALL {
            assert_eq!(Field::named(field.name()), Some(field));
        }
        assert_eq!(Field::named("id"), None);
        assert_eq!(Field::named("is_spoof"), None);
        assert_eq!(
            Field::NAMES,
            [
                "pattern",
                "pattern_type",
                "is_regex",
                "is_exempt_recipient",
                "is_trusted_sender",
                "is_acceptable_sender",
                "verify_sender",
                "comments"
            ]
        );
    }
}
