//! `export-policies`: the account's policies as a sync input, so that a
//! workflow can start a sync from what the account has instead of typing
//! it in.
//!
//! The account is read as a sync reads it ([`read_all`], `GET` only, the
//! same limits and deadline). Each policy becomes an entry of
//! `sync.policies` with its `id`, so a sync of the document matches every
//! entry to its own policy and plans nothing. `delete_unlisted` is false,
//! so a policy the document cannot list is kept by such a sync; those are
//! listed beside the entries, under `sync.left_out`, each with the reason:
//!
//! - `unknown_pattern_type`: `pattern_type` is `UNKNOWN`, which describes
//!   some older policies but which no create or update may set;
//! - `refused`: the entry fails the checks every sync input gets (a
//!   pattern that is not what its type says, a private IP range, a field
//!   the API left out), run on the entry itself ([`parse_input`]), so the
//!   document never lists what a sync would refuse;
//! - `duplicate`: an earlier policy has the same identity (`pattern_type`,
//!   `is_regex`, pattern), and a sync input lists each identity once.
//!
//! Everything here but [`export_policies`]'s read is plain data in, data
//! out, tested natively.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{json, Value};

use crate::api::fields::Flag;
use crate::api::identity::Identity;
use crate::api::policy::PatternType;
use crate::api::policy_list::read_all;
use crate::api::stored::{Snapshot, StoredPolicy};
use crate::api::transport::Transport;
use crate::params::export_input::{read_export_params, ExportParams, ExportParamsError};
use crate::params::problems::{Problem, Report};
use crate::params::validator::parse_input;
use crate::run::prepare::TaskError;

/// Where an entry's problems point when it is checked alone, as the only
/// desired policy of a sync; cut off so that a problem names the field.
const ENTRY_AT: &str = "/sync/policies/0";

/// Reads the parameters and the account, and returns the sync input
/// document. Parameter problems are reported before anything is read; a
/// read that fails is the task's failure, as in a sync.
pub fn export_policies(
    config_text: &str,
    input_text: &str,
    transport: &mut impl Transport,
) -> Result<String, TaskError> {
    let params = read_export_params(config_text, input_text).map_err(|e| match e {
        ExportParamsError::Config(problems) => TaskError::InvalidConfig(problems),
        ExportParamsError::Input(problems) => TaskError::InvalidInput(problems),
    })?;
    let account = read_account(&params, transport)?;
    Ok(export(&params.account_id, &account).to_json())
}

/// Every policy of the account, read within the config's `timeout_ms`.
fn read_account(
    params: &ExportParams,
    transport: &mut impl Transport,
) -> Result<Snapshot, TaskError> {
    let deadline_ms = transport
        .monotonic_ms()
        .saturating_add(params.config.timeout_ms);
    read_all(&params.config, &params.account_id, transport, deadline_ms)
        .result
        .map_err(|e| TaskError::Call(e.0))
}

/// The account as a sync input: the entries it can list and the policies
/// it leaves out, both in the account's order (oldest first).
#[derive(Debug)]
pub struct Export<'a> {
    /// The account the policies were read from.
    pub account_id: &'a str,
    /// One entry per policy a sync input can list.
    pub policies: Vec<Entry<'a>>,
    /// The policies it cannot, with why.
    pub left_out: Vec<LeftOut<'a>>,
}

/// A stored policy as a desired one: its id and every field the account
/// gave, in the order a request sends them. A field the API left out stays
/// out (and the entry is then refused, as a required field is missing);
/// no comment is written `null`, which a sync reads as "no comment".
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Entry<'a> {
    /// The policy's id as the API gave it.
    pub id: Value,
    /// `pattern` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<&'a str>,
    /// `pattern_type` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern_type: Option<&'a str>,
    /// `is_regex` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_regex: Option<bool>,
    /// `is_exempt_recipient` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_exempt_recipient: Option<bool>,
    /// `is_trusted_sender` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_trusted_sender: Option<bool>,
    /// `is_acceptable_sender` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_acceptable_sender: Option<bool>,
    /// `verify_sender` as stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_sender: Option<bool>,
    /// The comment; `None` (written `null`) for none.
    pub comments: Option<&'a str>,
}

/// A policy the document does not list.
#[derive(Clone, Debug, PartialEq)]
pub struct LeftOut<'a> {
    /// The policy's id as the API gave it.
    pub id: Value,
    /// Its pattern, when the API gave one.
    pub pattern: Option<&'a str>,
    /// Its pattern type, when the API gave one.
    pub pattern_type: Option<&'a str>,
    /// Why it is not listed.
    pub reason: LeftOutReason,
}

/// Why a stored policy cannot be an entry of a sync input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeftOutReason {
    /// `pattern_type` is `UNKNOWN`.
    UnknownPatternType,
    /// The checks of a sync input refuse the entry: each problem with its
    /// pointer into the entry (`/pattern`).
    Refused(Vec<Problem>),
    /// An earlier policy, listed, has the same identity.
    Duplicate {
        /// The listed policy's id, as [`StoredPolicy::id`] spells it.
        listed: String,
    },
}

impl LeftOutReason {
    /// The reason as a stable code, for a program to tell them apart.
    pub fn code(&self) -> &'static str {
        match self {
            LeftOutReason::UnknownPatternType => "unknown_pattern_type",
            LeftOutReason::Refused(_) => "refused",
            LeftOutReason::Duplicate { .. } => "duplicate",
        }
    }

    /// The reason in words, for the person reading the document.
    pub fn message(&self) -> String {
        let why = match self {
            LeftOutReason::UnknownPatternType => format!(
                "pattern_type is {}, which describes some older policies but which no create or update may set",
                PatternType::UNKNOWN
            ),
            LeftOutReason::Refused(problems) => {
                let each: Vec<String> = problems
                    .iter()
                    .map(|p| format!("{}: {}", p.pointer, p.message))
                    .collect();
                format!("a sync input refuses it: {}", each.join("; "))
            }
            LeftOutReason::Duplicate { listed } => format!(
                "it has the same pattern_type, is_regex and pattern as {listed}, which is listed, and a sync input lists each policy once"
            ),
        };
        format!("{why}; a sync of this document keeps it, as delete_unlisted is false")
    }
}

/// The account's policies sorted into entries and left-out ones.
pub fn export<'a>(account_id: &'a str, account: &'a Snapshot) -> Export<'a> {
    let mut policies = Vec::with_capacity(account.len());
    let mut left_out = Vec::new();
    let mut listed: HashMap<Identity<'a>, &'a str> = HashMap::new();
    for stored in &account.policies {
        let entry = entry(stored);
        let reason = if stored.fields.pattern_type.as_deref() == Some(PatternType::UNKNOWN) {
            Some(LeftOutReason::UnknownPatternType)
        } else {
            match refusals(&entry) {
                Some(problems) => Some(LeftOutReason::Refused(problems)),
                // Checked, so the identity is complete.
                None => stored
                    .fields
                    .identity()
                    .and_then(|identity| match listed.get(&identity) {
                        Some(first) => Some(LeftOutReason::Duplicate {
                            listed: first.to_string(),
                        }),
                        None => {
                            listed.insert(identity, &stored.id);
                            None
                        }
                    }),
            }
        };
        match reason {
            None => policies.push(entry),
            Some(reason) => left_out.push(LeftOut {
                id: entry.id,
                pattern: entry.pattern,
                pattern_type: entry.pattern_type,
                reason,
            }),
        }
    }
    Export {
        account_id,
        policies,
        left_out,
    }
}

/// The stored policy as an entry, every field it has.
fn entry(stored: &StoredPolicy) -> Entry<'_> {
    let fields = &stored.fields;
    Entry {
        id: raw_id(stored),
        pattern: fields.pattern.as_deref(),
        pattern_type: fields.pattern_type.as_deref(),
        is_regex: fields.flag(Flag::IsRegex),
        is_exempt_recipient: fields.flag(Flag::IsExemptRecipient),
        is_trusted_sender: fields.flag(Flag::IsTrustedSender),
        is_acceptable_sender: fields.flag(Flag::IsAcceptableSender),
        verify_sender: fields.flag(Flag::VerifySender),
        comments: fields.comments.as_deref(),
    }
}

/// The id as the API wrote it: a UUID string, or the older API's integer.
/// The list reader has already read it, so it is there; the folded
/// spelling stands in should it not be.
fn raw_id(stored: &StoredPolicy) -> Value {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Value,
    }
    serde_json::from_str::<Id>(stored.raw.get())
        .map(|wire| wire.id)
        .unwrap_or_else(|_| Value::from(stored.id.as_str()))
}

/// What the checks of a sync input find wrong with `entry` as the only
/// desired policy of a sync, each pointer cut to the entry; `None` when
/// they accept it.
fn refusals(entry: &Entry<'_>) -> Option<Vec<Problem>> {
    let input = json!({ "sync": { "policies": [entry] } });
    let mut report = Report::default();
    if parse_input(&input, &mut report).is_some() {
        return None;
    }
    let problems = report
        .into_errors()
        .into_iter()
        .map(|mut problem| {
            if let Some(inside) = problem.pointer.strip_prefix(ENTRY_AT) {
                problem.pointer = inside.to_string();
            }
            problem
        })
        .collect();
    Some(problems)
}

/// One left-out policy as the document writes it.
#[derive(Serialize)]
struct LeftOutDoc<'a> {
    id: &'a Value,
    pattern: Option<&'a str>,
    pattern_type: Option<&'a str>,
    reason: &'static str,
    message: String,
}

impl Export<'_> {
    /// The sync input document: `{"account_id", "sync": {"policies",
    /// "delete_unlisted": false, "left_out"}}`, entries first as a person
    /// edits them, fields in the order a request sends them.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Sync<'s, 'a> {
            policies: &'s [Entry<'a>],
            delete_unlisted: bool,
            left_out: Vec<LeftOutDoc<'s>>,
        }
        #[derive(Serialize)]
        struct Document<'s, 'a> {
            account_id: &'a str,
            sync: Sync<'s, 'a>,
        }
        let left_out = self
            .left_out
            .iter()
            .map(|l| LeftOutDoc {
                id: &l.id,
                pattern: l.pattern,
                pattern_type: l.pattern_type,
                reason: l.reason.code(),
                message: l.reason.message(),
            })
            .collect();
        let document = Document {
            account_id: self.account_id,
            sync: Sync {
                policies: &self.policies,
                delete_unlisted: false,
                left_out,
            },
        };
        serde_json::to_string(&document).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
