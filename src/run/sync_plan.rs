//! Sync mode: the policies the account should have in, the smallest change
//! out. [`plan`] compares the desired list with the account as read
//! ([`crate::api::policy_list`]) and gives posts, minimal patches and deletes;
//! [`Plan::batches`] cuts them into batches the API accepts.
//!
//! A desired policy stands for an existing one when it names its `id`, or
//! else when both have the same identity: `pattern_type`, `is_regex` and
//! the pattern as [`Identity`] compares it (addresses and host
//! names without regard to ASCII case). Everything is matched through hash
//! maps, so a plan takes time linear in the two lists.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use serde::Serialize;
use serde_json::Value;

use crate::api::identity::Identity;
use crate::api::policy::{
    BatchBody, Counts, Delete, Policy, PolicyFields, PolicyId, PolicyPatch, MAX_ITEMS,
};
use crate::api::stored::{Snapshot, StoredPolicy};
use crate::params::sync_spec::SyncSpec;

/// One field a patch changes: the stored value and the desired one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldChange {
    /// The field's name ([`Field::name`](crate::api::fields::Field::name)).
    pub field: &'static str,
    /// As stored; `null` when the account gave none.
    pub old: Value,
    /// As the patch sets it.
    pub new: Value,
}

/// A policy that changes, and how.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The patch that makes the change: the fields that differ, no more.
    pub patch: PolicyPatch,
    /// Each field the patch changes, old and new, in the order sent.
    pub fields: Vec<FieldChange>,
}

/// An existing policy to delete, with its pattern for the preview.
#[derive(Clone, Debug, PartialEq)]
pub struct Removal {
    /// The policy to delete.
    pub id: PolicyId,
    /// Its pattern, when the account gave one.
    pub pattern: Option<String>,
    /// Why: not listed, or a second policy of the same identity.
    pub duplicate: bool,
}

/// What a sync would do.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Desired policies that no existing one stands for: to create.
    pub posts: Vec<Policy>,
    /// Existing policies to patch.
    pub changes: Vec<Change>,
    /// Existing policies to delete.
    pub deletes: Vec<Removal>,
    /// Desired policies the account already has as they should be.
    pub unchanged: usize,
    /// Existing policies no desired one stands for, kept because deletion
    /// is off.
    pub kept_unlisted: usize,
    /// Existing policies with the same identity as an earlier one, kept
    /// because deletion is off: their ids, with the id they repeat.
    pub duplicates: Vec<(String, String)>,
}

/// Why no plan can be carried out; each names the input member concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// `desired[index].id` names no policy of the account.
    UnknownId {
        /// Where in the desired list.
        index: usize,
        /// The id as given, folded as ids are compared.
        id: String,
    },
    /// Two desired policies name the same existing policy.
    SameIdTwice {
        /// The second of the two.
        index: usize,
        /// The first of the two.
        first: usize,
    },
    /// More deletes than `max_deletes`.
    TooManyDeletes {
        /// Deletes the plan has.
        planned: usize,
        /// `max_deletes`.
        limit: u32,
    },
    /// More than half of the account's policies, or all of them.
    MostDeleted {
        /// Deletes the plan has.
        planned: usize,
        /// Policies the account has.
        total: usize,
    },
}

impl PlanError {
    /// The member of the input the problem is about (under `/sync`).
    pub fn member(&self) -> String {
        match self {
            PlanError::UnknownId { index, .. } | PlanError::SameIdTwice { index, .. } => {
                format!("/sync/policies/{index}/id")
            }
            PlanError::TooManyDeletes { .. } => "/sync/max_deletes".into(),
            PlanError::MostDeleted { .. } => "/sync/allow_deleting_most".into(),
        }
    }

    /// What is wrong and how to go on, in words.
    pub fn message(&self) -> String {
        match self {
            PlanError::UnknownId { id, .. } => format!(
                "the account has no policy {id}: leave id out to create the policy, or give the id of an existing one"
            ),
            PlanError::SameIdTwice { first, .. } => format!(
                "names the same policy as /sync/policies/{first}/id; each existing policy stands for one desired policy"
            ),
            PlanError::TooManyDeletes { planned, limit } => format!(
                "the plan deletes {planned} policies, more than max_deletes ({limit}); nothing was sent: raise max_deletes to at least {planned} if that is meant"
            ),
            PlanError::MostDeleted { planned, total } => format!(
                "the plan deletes {planned} of the account's {total} policies, more than half; nothing was sent: set allow_deleting_most to true if that is meant"
            ),
        }
    }
}

/// A map with a fast, non-cryptographic hash: keys here are the account's
/// own strings and indices, and a plan hashes tens of thousands of them.
type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FoldHasher>>;

/// Multiply-and-rotate hashing of words, as compilers use for their
/// symbol tables; not resistant to chosen collisions, which an account's
/// own policies cannot mount against the task that reads them.
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
        for &byte in chunks.remainder() {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    /// Mixed down as well as up: a product's low bits depend only on the
    /// factors' low bits, and the table picks buckets by the low bits, so
    /// keys that differ only at the end of a word would share buckets.
    fn finish(&self) -> u64 {
        let mut z = self.0;
        z = (z ^ (z >> 32)).wrapping_mul(0xd6e8_feb8_6659_fd93);
        z ^ (z >> 32)
    }
}

/// Compares `spec` with the account as read, and checks the plan against
/// the safety limits.
pub fn plan(spec: &SyncSpec, account: &Snapshot) -> Result<Plan, PlanError> {
    let existing = &account.policies;
    let mut taken = vec![false; existing.len()];
    // The policies of each identity, oldest first: the first in a map, the
    // rest chained through `next_same`, so that no identity needs a list
    // of its own.
    let mut first_of: FastMap<Identity<'_>, usize> = FastMap::default();
    first_of.reserve(existing.len());
    let mut last_of: Vec<usize> = vec![0; existing.len()];
    let mut next_same: Vec<Option<usize>> = vec![None; existing.len()];
    let mut group_of: Vec<Option<usize>> = vec![None; existing.len()];
    for (i, stored) in existing.iter().enumerate() {
        let Some(identity) = stored.fields.identity() else {
            continue;
        };
        match first_of.get(&identity) {
            Some(&first) => {
                let group = group_of[first].unwrap_or(first);
                let last = last_of[group];
                next_same[last] = Some(i);
                last_of[group] = i;
                group_of[i] = Some(group);
            }
            None => {
                first_of.insert(identity, i);
                last_of[i] = i;
                group_of[i] = Some(i);
            }
        }
    }

    // Desired policies that name an id first, so that matching by identity
    // never takes a policy another desired one names.
    let mut matched: Vec<Option<usize>> = vec![None; spec.desired.len()];
    let mut named_by: FastMap<usize, usize> = FastMap::default();
    for (index, desired) in spec.desired.iter().enumerate() {
        let Some(id) = &desired.id else { continue };
        let Some(at) = account.position(&id.identity()) else {
            return Err(PlanError::UnknownId {
                index,
                id: id.identity(),
            });
        };
        if let Some(&first) = named_by.get(&at) {
            return Err(PlanError::SameIdTwice { index, first });
        }
        named_by.insert(at, index);
        taken[at] = true;
        matched[index] = Some(at);
    }
    // Then by identity, the oldest not taken; a cursor per identity moves
    // past taken ones once.
    let mut cursor: FastMap<usize, Option<usize>> = FastMap::default();
    for (index, desired) in spec.desired.iter().enumerate() {
        if desired.id.is_some() {
            continue;
        }
        let Some(&first) = first_of.get(&Identity::of_policy(&desired.policy)) else {
            continue;
        };
        let at = cursor.entry(first).or_insert(Some(first));
        while let Some(i) = *at {
            if !taken[i] {
                break;
            }
            *at = next_same[i];
        }
        if let Some(i) = *at {
            taken[i] = true;
            matched[index] = Some(i);
            *at = next_same[i];
        }
    }

    let mut plan = Plan::default();
    for (desired, at) in spec.desired.iter().zip(&matched) {
        match at {
            None => plan.posts.push(desired.policy.clone()),
            Some(at) => match change(&desired.policy, &existing[*at]) {
                Some(change) => plan.changes.push(change),
                None => plan.unchanged += 1,
            },
        }
    }

    // What is left: the unlisted, among them second policies of an
    // identity. Of each identity the one a desired policy stands for is
    // kept, else the oldest.
    let mut kept_of: FastMap<usize, usize> = FastMap::default();
    for (i, group) in group_of.iter().enumerate() {
        if let (Some(group), true) = (*group, taken[i]) {
            kept_of.entry(group).or_insert(i);
        }
    }
    let repeated_of = |i: usize| {
        let group = group_of[i]?;
        let kept = kept_of.get(&group).copied().unwrap_or(group);
        (kept != i).then_some(kept)
    };
    for (i, stored) in existing.iter().enumerate() {
        if taken[i] {
            continue;
        }
        let repeated = repeated_of(i).map(|kept| &existing[kept].id);
        if spec.delete_unlisted {
            plan.deletes.push(Removal {
                id: stored_id(stored),
                pattern: stored.fields.pattern.clone(),
                duplicate: repeated.is_some(),
            });
        } else {
            plan.kept_unlisted += 1;
            if let Some(kept) = repeated {
                plan.duplicates.push((stored.id.clone(), kept.clone()));
            }
        }
    }

    let planned = plan.deletes.len();
    if planned > spec.max_deletes as usize {
        return Err(PlanError::TooManyDeletes {
            planned,
            limit: spec.max_deletes,
        });
    }
    if planned > 0 && planned * 2 > existing.len() && !spec.allow_deleting_most {
        return Err(PlanError::MostDeleted {
            planned,
            total: existing.len(),
        });
    }
    Ok(plan)
}

/// The id to send for a stored policy: an integer as a number, else the
/// UUID as read.
fn stored_id(stored: &StoredPolicy) -> PolicyId {
    match stored.id.parse::<u32>() {
        Ok(n) => PolicyId::Number(n),
        Err(_) => PolicyId::Uuid(stored.id.clone()),
    }
}

/// The patch that makes `stored` what `desired` says, with only the fields
/// that differ; `None` when none does. Comments are left alone when the
/// desired policy does not mention them.
fn change(desired: &Policy, stored: &StoredPolicy) -> Option<Change> {
    let sent = desired.sent();
    let mut patch = PolicyFields::default();
    let mut fields = Vec::new();
    for field in stored.fields.differing(&sent) {
        fields.push(FieldChange {
            field: field.name(),
            old: stored.fields.value(field),
            new: sent.value(field),
        });
        patch.copy_field(&sent, field);
    }
    if fields.is_empty() {
        return None;
    }
    Some(Change {
        patch: PolicyPatch {
            id: stored_id(stored),
            fields: patch,
        },
        fields,
    })
}

impl Plan {
    /// How many items of each kind the plan's batches carry in all.
    pub fn counts(&self) -> Counts {
        Counts {
            deletes: self.deletes.len(),
            patches: self.changes.len(),
            puts: 0,
            posts: self.posts.len(),
        }
    }

    /// Nothing to send.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty() && self.changes.is_empty() && self.deletes.is_empty()
    }

    /// The plan as batches of at most [`MAX_ITEMS`] per array, to be sent in
    /// order. Items never depend on one another across batches: each
    /// delete and patch names a different existing policy.
    pub fn batches(&self) -> Vec<BatchBody> {
        let count = [self.deletes.len(), self.changes.len(), self.posts.len()]
            .into_iter()
            .max()
            .unwrap_or(0)
            .div_ceil(MAX_ITEMS);
        let slice = |len: usize, k: usize| (k * MAX_ITEMS).min(len)..((k + 1) * MAX_ITEMS).min(len);
        (0..count)
            .map(|k| BatchBody {
                deletes: self.deletes[slice(self.deletes.len(), k)]
                    .iter()
                    .map(|r| Delete { id: r.id.clone() })
                    .collect(),
                patches: self.changes[slice(self.changes.len(), k)]
                    .iter()
                    .map(|c| c.patch.clone())
                    .collect(),
                puts: Vec::new(),
                posts: self.posts[slice(self.posts.len(), k)].to_vec(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
