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

use crate::config::Config;
use crate::http_date::parse_rfc3339_ms;
use crate::outcome::Failure;
use crate::policy::{pattern_identity, BatchBody, Policy, PolicyId, PolicyPatch};
use crate::policy_list::{read_all, Snapshot, StoredFields, StoredPolicy};
use crate::task::Transport;

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
    /// Every effect of the batch is visible. `result` is the API's batch
    /// result rebuilt from what was read: deletes' ids, the patched and
    /// replaced policies, and the created ones with their new ids.
    Applied { result: String },
    /// None of the batch's effects is visible.
    NotVisible,
    /// Some effects visible and others not, or none that can be told apart
    /// from the state before the batch; in words.
    Undetermined(String),
}

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
        seen.push(visible_if(patch_shows(patch, &stored.fields)));
        patched.push(&*stored.raw);
    }
    let mut replaced = Vec::new();
    for put in &batch.puts {
        let Some(stored) = after.get(&put.id.identity()) else {
            return gone_before_its_change(&put.id, "replaces");
        };
        seen.push(visible_if(put_shows(&put.policy, &stored.fields)));
        replaced.push(&*stored.raw);
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
            let Some(key) = PostKey::of_stored(&stored.fields) else {
                continue;
            };
            if let Some(c) = candidates.get_mut(&key) {
                match created_at_ms(stored) {
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
            created.push(&*c.new[c.taken].raw);
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
            result: result_json(&gone, &patched, &replaced, &created),
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

fn created_at_ms(stored: &StoredPolicy) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Created<'a> {
        #[serde(borrow, default)]
        created_at: Option<&'a str>,
    }
    let created: Created<'_> = serde_json::from_str(stored.raw.get()).ok()?;
    parse_rfc3339_ms(created.created_at?)
}

/// What a post is recognised by: every field it sets, the pattern as
/// [`same_pattern`] compares it, and no comment the same as an empty one.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PostKey<'a> {
    pattern: std::borrow::Cow<'a, str>,
    pattern_type: &'a str,
    flags: [bool; 5],
    comments: Option<&'a str>,
}

impl<'a> PostKey<'a> {
    fn of_post(p: &'a Policy) -> Self {
        PostKey {
            pattern: pattern_identity(&p.pattern, p.pattern_type.name(), p.is_regex),
            pattern_type: p.pattern_type.name(),
            flags: [
                p.is_regex,
                p.is_exempt_recipient,
                p.is_trusted_sender,
                p.is_acceptable_sender,
                p.verify_sender,
            ],
            comments: p
                .comments
                .as_ref()
                .and_then(|c| c.as_deref())
                .filter(|c| !c.is_empty()),
        }
    }

    fn of_stored(f: &'a StoredFields) -> Option<Self> {
        let pattern_type = f.pattern_type.as_deref()?;
        let is_regex = f.is_regex?;
        Some(PostKey {
            pattern: pattern_identity(f.pattern.as_deref()?, pattern_type, is_regex),
            pattern_type,
            flags: [
                is_regex,
                f.is_exempt_recipient?,
                f.is_trusted_sender?,
                f.is_acceptable_sender?,
                f.verify_sender?,
            ],
            comments: f.comments.as_deref(),
        })
    }
}

fn same_pattern(sent: &str, sent_type: &str, is_regex: bool, stored: Option<&str>) -> bool {
    stored.is_some_and(|s| {
        pattern_identity(sent, sent_type, is_regex) == pattern_identity(s, sent_type, is_regex)
    })
}

fn same_comment(sent: Option<&str>, stored: Option<&str>) -> bool {
    sent.filter(|c| !c.is_empty()) == stored
}

/// Whether the stored policy has every field the replacement sent. A
/// replacement without `comments` says nothing about them.
fn put_shows(p: &Policy, f: &StoredFields) -> bool {
    same_pattern(
        &p.pattern,
        p.pattern_type.name(),
        p.is_regex,
        f.pattern.as_deref(),
    ) && f.pattern_type.as_deref() == Some(p.pattern_type.name())
        && f.is_regex == Some(p.is_regex)
        && f.is_exempt_recipient == Some(p.is_exempt_recipient)
        && f.is_trusted_sender == Some(p.is_trusted_sender)
        && f.is_acceptable_sender == Some(p.is_acceptable_sender)
        && f.verify_sender == Some(p.verify_sender)
        && p.comments
            .as_ref()
            .is_none_or(|c| same_comment(c.as_deref(), f.comments.as_deref()))
}

/// Whether the stored policy has every field the patch sent.
fn patch_shows(p: &PolicyPatch, f: &StoredFields) -> bool {
    let flag = |sent: Option<bool>, stored: Option<bool>| sent.is_none() || sent == stored;
    let pattern_type = p
        .pattern_type
        .map(|t| t.name())
        .or(f.pattern_type.as_deref())
        .unwrap_or("");
    let is_regex = p.is_regex.or(f.is_regex).unwrap_or(true);
    p.pattern
        .as_deref()
        .is_none_or(|sent| same_pattern(sent, pattern_type, is_regex, f.pattern.as_deref()))
        && p.pattern_type
            .is_none_or(|t| f.pattern_type.as_deref() == Some(t.name()))
        && flag(p.is_regex, f.is_regex)
        && flag(p.is_exempt_recipient, f.is_exempt_recipient)
        && flag(p.is_trusted_sender, f.is_trusted_sender)
        && flag(p.is_acceptable_sender, f.is_acceptable_sender)
        && flag(p.verify_sender, f.verify_sender)
        && p.comments
            .as_ref()
            .is_none_or(|c| same_comment(c.as_deref(), f.comments.as_deref()))
}

/// The batch's result as the API would have given it, from what was read.
fn result_json(
    deletes: &[&PolicyId],
    patches: &[&RawValue],
    puts: &[&RawValue],
    posts: &[&RawValue],
) -> String {
    #[derive(Serialize)]
    struct Deleted<'a> {
        id: &'a PolicyId,
    }
    #[derive(Serialize)]
    struct Result<'a> {
        deletes: Vec<Deleted<'a>>,
        patches: &'a [&'a RawValue],
        puts: &'a [&'a RawValue],
        posts: &'a [&'a RawValue],
    }
    // Ids, and JSON already read: serialising cannot fail.
    serde_json::to_string(&Result {
        deletes: deletes.iter().map(|id| Deleted { id }).collect(),
        patches,
        puts,
        posts,
    })
    .unwrap_or_default()
}

/// How verification ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The batch was applied; `result` as in [`Judgement::Applied`].
    Applied { result: String, reads: u32 },
    /// Two reads, [`PAUSE_MS`] apart, showed none of its effects.
    NotVisible { reads: u32 },
    /// What was read does not say; in words.
    Undetermined { why: String, reads: u32 },
    /// No verdict could be reached: a read failed, was rate-limited, or
    /// there was no time for it; in words, with the read's own failure
    /// when one failed.
    Incomplete {
        why: String,
        reads: u32,
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
