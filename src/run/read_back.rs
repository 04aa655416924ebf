//! After a failure that may have applied the batch (a timeout once sent, a
//! reset mid-answer, a 5xx, an unreadable 2xx): read the account back and
//! tell whether it was applied.
//!
//! The API applies a batch atomically and in order, so afterwards the
//! account is either as it was before the batch or as the batch left it.
//! Each item of the batch is looked for in the account ([`judge`]): a
//! delete's policy gone, a put's or patch's fields as sent, a post's policy
//! there and created since the batch was sent. All visible: applied. None
//! visible in two reads a few seconds apart ([`verify`]): not applied,
//! although a request still running on the server may apply later. Anything
//! else: undetermined, and the original failure stands.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::api::identity::PostKey;
use crate::api::outcome::Failure;
use crate::api::policy::{BatchBody, PolicyId};
use crate::api::policy_list::read_all;
use crate::api::stored::{Snapshot, StoredPolicy};
use crate::api::transport::Transport;
use crate::config::Config;

/// Time between the two reads that must both show nothing before a batch
/// counts as not applied: long enough for a request the server was still
/// working on to land, short enough to fit the reserve of a short timeout.
pub const PAUSE_MS: u64 = 2_000;

/// The most of `timeout_ms` kept back for verification.
pub const MAX_RESERVE_MS: u64 = 10_000;

/// A look-alike of a post created less than this before the batch was
/// first sent (by the host's clock) cannot be told from the batch's own:
/// it may be a previous run's, or the batch's own on an API clock that runs
/// behind the host's. Older ones are not the batch's; one created since
/// the batch was sent is taken for it. No margin is given the other way:
/// a look-alike created a moment before must not pass for the batch's.
pub const LOOK_ALIKE_WINDOW_MS: u64 = 120_000;

/// The time verification keeps for itself out of `remaining_ms`: a quarter,
/// at most [`MAX_RESERVE_MS`]. An attempt whose answer never comes stops at
/// the rest, so that there is time left to read the account back.
pub fn reserve_ms(remaining_ms: u64) -> u64 {
    (remaining_ms / 4).min(MAX_RESERVE_MS)
}

/// What reading the account back showed.
#[derive(Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Every effect of the batch is visible.
    Applied {
        /// The API's batch result rebuilt from what was read.
        result: RebuiltResult,
    },
    /// None of the batch's effects is visible.
    NotVisible,
    /// Some effects visible and others not, or none that can be told apart
    /// from the state before the batch; in words.
    Undetermined(String),
}

/// The batch's result as the API would have given it, rebuilt from the
/// account as read: the deletes' ids, the patched and replaced policies,
/// and the created ones with their new ids, each policy as the API's own
/// JSON. Serialising it gives the `result` member of the API's answer.
#[derive(Debug, Serialize)]
pub struct RebuiltResult {
    /// The ids of the deleted policies.
    pub deletes: Vec<Deleted>,
    /// The patched policies as they are now.
    pub patches: Vec<Box<RawValue>>,
    /// The replaced policies as they are now.
    pub puts: Vec<Box<RawValue>>,
    /// The created policies, with the ids the API gave them.
    pub posts: Vec<Box<RawValue>>,
}

/// One deleted policy in a [`RebuiltResult`].
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Deleted {
    /// The id the batch deleted.
    pub id: PolicyId,
}

/// Two results are equal when they say the same in the same words.
impl PartialEq for RebuiltResult {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: &[Box<RawValue>], b: &[Box<RawValue>]| {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.get() == b.get())
        };
        self.deletes == other.deletes
            && same(&self.patches, &other.patches)
            && same(&self.puts, &other.puts)
            && same(&self.posts, &other.posts)
    }
}

impl Eq for RebuiltResult {}

/// What one item of the batch looks like in the account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Visible,
    NotVisible,
    /// The item's effect cannot be told apart from the state before.
    Indistinct,
}

/// Judges `after`, the account as read, against the batch sent at
/// `sent_unix_ms` (wall clock). Linear in the sizes: one map of the
/// account's new policies by what a post would match.
pub fn judge(batch: &BatchBody, sent_unix_ms: u64, after: &Snapshot) -> Judgement {
    let mut seen = Vec::with_capacity(
        batch.deletes.len() + batch.patches.len() + batch.puts.len() + batch.posts.len(),
    );
    let mut gone = Vec::new();
    for delete in &batch.deletes {
        seen.push(if after.contains(&delete.id.identity()) {
            Seen::NotVisible
        } else {
            Seen::Visible
        });
        gone.push(&delete.id);
    }
    let mut patched = Vec::new();
    for patch in &batch.patches {
        let Some(stored) = after.get(&patch.id.identity()) else {
            return gone_before_its_change(&patch.id, "patches");
        };
        seen.push(visible_if(stored.fields.shows(&patch.fields.sent())));
        patched.push(stored.raw.clone());
    }
    let mut replaced = Vec::new();
    for put in &batch.puts {
        let Some(stored) = after.get(&put.id.identity()) else {
            return gone_before_its_change(&put.id, "replaces");
        };
        seen.push(visible_if(stored.fields.shows(&put.policy.sent())));
        replaced.push(stored.raw.clone());
    }

    // Posts: policies with the same fields, new ones (created since the
    // batch was sent) and older ones, by what they match.
    let new_from = sent_unix_ms;
    let old_before = sent_unix_ms.saturating_sub(LOOK_ALIKE_WINDOW_MS);
    let mut candidates: HashMap<PostKey<'_>, Candidates<'_>> = HashMap::new();
    for post in &batch.posts {
        candidates.entry(PostKey::of_post(post)).or_default();
    }
    if !candidates.is_empty() {
        for stored in &after.policies {
            let Some(key) = stored.fields.post_key() else {
                continue;
            };
            if let Some(c) = candidates.get_mut(&key) {
                match stored.created_at_ms() {
                    Some(at) if at >= new_from => c.new.push(stored),
                    Some(at) if at < old_before => {}
                    _ => c.unsure += 1,
                }
            }
        }
    }
    let mut created = Vec::with_capacity(batch.posts.len());
    let mut wanted: HashMap<PostKey<'_>, usize> = HashMap::new();
    for post in &batch.posts {
        *wanted.entry(PostKey::of_post(post)).or_default() += 1;
    }
    for post in &batch.posts {
        let key = PostKey::of_post(post);
        let (Some(c), Some(&need)) = (candidates.get_mut(&key), wanted.get(&key)) else {
            continue;
        };
        let status = if c.new.len() >= need {
            Seen::Visible
        } else if c.new.is_empty() && c.unsure == 0 {
            Seen::NotVisible
        } else if c.new.is_empty() {
            Seen::Indistinct
        } else {
            return Judgement::Undetermined(format!(
                "{} of the {need} policies the batch creates with pattern {:?} are in the account",
                c.new.len(),
                post.pattern
            ));
        };
        if status == Seen::Visible {
            created.push(c.new[c.taken].raw.clone());
            c.taken += 1;
        }
        seen.push(status);
    }

    let visible = seen.iter().filter(|s| **s == Seen::Visible).count();
    let not_visible = seen.iter().filter(|s| **s == Seen::NotVisible).count();
    match (visible, not_visible) {
        (0, 0) => Judgement::Undetermined(
            "the batch's effects cannot be told apart from the state before it".into(),
        ),
        (_, 0) if seen.contains(&Seen::Indistinct) => Judgement::Undetermined(
            "policies the batch creates match policies that may be older: created shortly before the batch was sent, or with no creation time".into(),
        ),
        (_, 0) => Judgement::Applied {
            result: RebuiltResult {
                deletes: gone.into_iter().map(|id| Deleted { id: id.clone() }).collect(),
                patches: patched,
                puts: replaced,
                posts: created,
            },
        },
        (0, _) => Judgement::NotVisible,
        (v, n) => Judgement::Undetermined(format!(
            "{v} of the batch's items show their change and {n} do not: the account was changed by something else too"
        )),
    }
}

/// A policy the batch changes is not in the account: whatever the batch
/// did, something else deleted it too.
fn gone_before_its_change(id: &PolicyId, verb: &str) -> Judgement {
    Judgement::Undetermined(format!(
        "policy {} that the batch {verb} is not in the account",
        id.identity()
    ))
}

fn visible_if(shows: bool) -> Seen {
    if shows {
        Seen::Visible
    } else {
        Seen::NotVisible
    }
}

#[derive(Default)]
struct Candidates<'a> {
    /// Created since the batch was sent.
    new: Vec<&'a StoredPolicy>,
    /// Created shortly before the batch was sent, or without a readable
    /// `created_at`: the batch's or not, no one can say.
    unsure: usize,
    /// Of `new`, how many were given to posts already.
    taken: usize,
}

/// How verification ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The batch was applied.
    Applied {
        /// The batch's result, rebuilt from what was read.
        result: RebuiltResult,
        /// List requests made.
        reads: u32,
    },
    /// Two reads, [`PAUSE_MS`] apart, showed none of its effects.
    NotVisible {
        /// List requests made.
        reads: u32,
    },
    /// What was read does not say.
    Undetermined {
        /// What was seen, in words.
        why: String,
        /// List requests made.
        reads: u32,
    },
    /// No verdict could be reached: a read failed, was rate-limited, or
    /// there was no time for it.
    Incomplete {
        /// Why, in words.
        why: String,
        /// List requests made.
        reads: u32,
        /// The read's own failure, when one failed.
        read_failure: Option<Failure>,
    },
}

/// Reads the account back, and again after [`PAUSE_MS`] when nothing of
/// the batch is visible yet, all before `deadline_ms`. Sends no write.
pub fn verify(
    config: &Config,
    account_id: &str,
    batch: &BatchBody,
    sent_unix_ms: u64,
    transport: &mut impl Transport,
    deadline_ms: u64,
) -> Verdict {
    let mut reads = 0;
    for round in 0..2 {
        if round == 1 {
            if transport.monotonic_ms().saturating_add(PAUSE_MS) >= deadline_ms {
                return Verdict::Incomplete {
                    why: "the account showed none of the batch's effects, and no time was left to look again".into(),
                    reads,
                    read_failure: None,
                };
            }
            transport.sleep_ms(PAUSE_MS);
        }
        let read = read_all(config, account_id, transport, deadline_ms);
        reads += read.requests;
        let after = match read.result {
            Ok(snapshot) => snapshot,
            Err(e) => {
                let why = if e.is_rate_limited() {
                    format!("{e} (rate limited: no further read)")
                } else {
                    e.to_string()
                };
                return Verdict::Incomplete {
                    why,
                    reads,
                    read_failure: Some(e.0),
                };
            }
        };
        match judge(batch, sent_unix_ms, &after) {
            Judgement::Applied { result } => return Verdict::Applied { result, reads },
            Judgement::Undetermined(why) => return Verdict::Undetermined { why, reads },
            Judgement::NotVisible => {}
        }
    }
    Verdict::NotVisible { reads }
}

#[cfg(test)]
mod tests;
