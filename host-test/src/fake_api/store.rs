//! The fake's memory: the policies kept per account, with the ids and
//! timestamps the API gives them, the queued faults, and the counts of
//! requests, shared by every connection.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::AtomicUsize;
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::batch::{Changes, PolicyBody, PolicyId, FLAGS};
use super::fault::Fault;

/// What every connection of one fake shares: its settings, its counters
/// and its state.
pub(super) struct Shared {
    pub(super) token: Option<String>,
    pub(super) legacy_ids: bool,
    pub(super) requests: AtomicUsize,
    /// Requests to the batch endpoint, answered or not.
    pub(super) batch_requests: AtomicUsize,
    pub(super) connections: AtomicUsize,
    pub(super) state: Mutex<State>,
    /// The rate limit's windows, apart from the policies' lock.
    pub(super) rate: Mutex<super::rate_budget::RateLimiter>,
}

impl Shared {
    /// The rate limit, as [`Shared::lock`] takes the state.
    pub(super) fn rate(&self) -> MutexGuard<'_, super::rate_budget::RateLimiter> {
        self.rate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Nothing panics while holding the lock, but a poisoned lock must not
    /// take the whole fake down with it either.
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub(super) struct State {
    pub(super) accounts: HashMap<String, Vec<Policy>>,
    pub(super) faults: VecDeque<Fault>,
    /// Faults for the list route, used up one per list request.
    pub(super) list_faults: VecDeque<Fault>,
    /// Batches that changed an account.
    pub(super) batches_applied: usize,
    /// Microseconds since the epoch of the last change, so that every batch
    /// gets a later `modified_at` than the one before, however fast.
    pub(super) last_stamp: u64,
    pub(super) uuids: u64,
    /// The highest integer id given or made so far: with legacy ids, new
    /// policies are numbered after it, as the older API numbered them.
    pub(super) last_integer_id: u64,
}

impl State {
    pub(super) fn next_stamp(&mut self) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.last_stamp = now.max(self.last_stamp.saturating_add(1));
        rfc3339_micros(self.last_stamp)
    }

    /// A new policy id that `taken` says no policy has: a UUID, as the
    /// current API gives, or with `legacy_ids` the next integer, as the
    /// older API gave. A UUID collision is next to impossible, but two
    /// policies with one id would make every later lookup ambiguous.
    pub(super) fn new_id(
        &mut self,
        legacy_ids: bool,
        taken: impl Fn(&PolicyId) -> bool,
    ) -> PolicyId {
        loop {
            let id = if legacy_ids {
                // Wrapping past u64::MAX restarts at 1: never 0, never a panic.
                self.last_integer_id = self.last_integer_id.wrapping_add(1).max(1);
                PolicyId::Int(self.last_integer_id)
            } else {
                self.uuids += 1;
                PolicyId::Uuid(random_uuid(self.uuids))
            };
            if !taken(&id) {
                return id;
            }
        }
    }

    /// Takes note of an id given from outside (a seed), so that the
    /// integers [`State::new_id`] makes come after it.
    pub(super) fn saw_id(&mut self, id: &PolicyId) {
        if let PolicyId::Int(n) = id {
            self.last_integer_id = self.last_integer_id.max(*n);
        }
    }
}

/// Whether `account` has the shape of an account id: 32 lowercase
/// hexadecimal characters.
pub(super) fn is_account_id(account: &str) -> bool {
    account.len() == 32
        && account
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A version-4-shaped UUID. Uniqueness, not unpredictability, is what the
/// fake needs, so the standard library's randomly keyed hasher is enough.
pub(super) fn random_uuid(counter: u64) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let keys = RandomState::new();
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&keys.hash_one((counter, nanos, 0u8)).to_be_bytes());
    bytes[8..].copy_from_slice(&keys.hash_one((counter, nanos, 1u8)).to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[derive(Clone)]
pub(super) struct Policy {
    pub(super) id: PolicyId,
    pub(super) body: PolicyBody,
    pub(super) created_at: String,
    pub(super) modified_at: String,
}

impl Policy {
    pub(super) fn create(id: PolicyId, body: PolicyBody, stamp: &str) -> Policy {
        Policy {
            id,
            body,
            created_at: stamp.to_string(),
            modified_at: stamp.to_string(),
        }
    }

    pub(super) fn replace(&mut self, body: &PolicyBody, stamp: &str) {
        self.body = body.clone();
        self.modified_at = stamp.to_string();
    }

    pub(super) fn patch(&mut self, changes: &Changes, stamp: &str) {
        for (slot, change) in changes.flags.iter().enumerate() {
            if let Some(b) = change {
                self.body.flags[slot] = *b;
            }
        }
        if let Some(t) = &changes.pattern_type {
            self.body.pattern_type = t.clone();
        }
        if let Some(p) = &changes.pattern {
            self.body.pattern = p.clone();
        }
        if let Some(c) = &changes.comments {
            self.body.comments = c.clone();
        }
        self.modified_at = stamp.to_string();
    }

    pub(super) fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), self.id.to_json());
        for (name, value) in FLAGS.iter().zip(self.body.flags) {
            out.insert((*name).into(), value.into());
        }
        out.insert("pattern_type".into(), self.body.pattern_type.clone().into());
        out.insert("pattern".into(), self.body.pattern.clone().into());
        out.insert("comments".into(), self.body.comments.clone().into());
        out.insert("created_at".into(), self.created_at.clone().into());
        out.insert("modified_at".into(), self.modified_at.clone().into());
        // Deprecated alias of modified_at that clients may still read.
        out.insert("last_modified".into(), self.modified_at.clone().into());
        Value::Object(out)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub(super) fn rfc3339_micros(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rest = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        micros % 1_000_000
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01, counting in
/// 400-year eras that start on March 1st so that leap days fall at the end.
pub(super) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let shifted = days + 719_468;
    let era = shifted / 146_097;
    let day_of_era = shifted % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake_api::batch::is_uuid;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day of a century divisible by 400) 12:34:56.789012
        assert_eq!(
            rfc3339_micros(951_827_696_789_012),
            "2000-02-29T12:34:56.789012Z"
        );
        assert_eq!(
            rfc3339_micros(1_798_761_599_000_000),
            "2026-12-31T23:59:59.000000Z"
        );
        assert_eq!(civil_from_days(59), (1970, 3, 1));
    }

    #[test]
    fn uuids_are_version_4_shaped_and_distinct() {
        let a = random_uuid(1);
        let b = random_uuid(2);
        assert!(is_uuid(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a, a.to_lowercase());
    }
}
