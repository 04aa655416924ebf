//! One gate per process and API host, shared by every task in flight:
//! Cloudflare's rate budget (1,200 requests per five minutes per user) is
//! the account's, not the task's, so what one task learns of it holds for
//! all of them.
//!
//! - After a 429 with `Retry-After`, nothing leaves for that host until
//!   the wait is over.
//! - Before a 429, the `Ratelimit` header of every answer (`r`, the
//!   requests left; `t`, the seconds until the window resets) paces the
//!   process once less than a quarter of the window's quota is left
//!   (`Ratelimit-Policy`'s `q`, else 100): the rest is spread evenly over
//!   what is left of the window, instead of being spent at once and
//!   followed by a lockout.
//!
//! A request the gate would keep waiting is held only while the hold ends
//! well before the guest's connect timeout (a quarter of it, at most
//! [`MAX_HOLD`]); past that it is answered at once with wasi:http's
//! `internal-error` and the text the component reads as "nothing sent,
//! wait N ms" ([`allow_policies_batch::api::outcome::HELD_BACK_PREFIX`]).
//! It is never held until the guest's own deadline, where it would read as
//! "sent, no answer" and cost read-backs during a lockout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use allow_policies_batch::api::retry_after::parse_retry_after;
use http::{HeaderMap, StatusCode};

use crate::wall_clock::now_unix_ms;

/// The longest a request is held in the host rather than handed back.
pub const MAX_HOLD: Duration = Duration::from_secs(1);

/// Below this share of the quota left, requests are paced.
const PACE_BELOW_SHARE: u64 = 4;

/// The quota assumed when an answer gives no `Ratelimit-Policy`.
const DEFAULT_QUOTA: u64 = 100;

/// What the gate says of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Send it now.
    Now,
    /// Hold it this long in the host, then send it.
    After(Duration),
    /// Do not send it: answer that nothing was sent, and to wait this long.
    HeldBack(Duration),
}

/// What is known of one API host's budget.
#[derive(Debug, Default)]
struct HostBudget {
    /// No request before this: a 429's `Retry-After`, or a window spent.
    closed_until: Option<Instant>,
    /// When the current window resets, from `Ratelimit`'s `t`.
    resets_at: Option<Instant>,
    /// Requests left in the window, less those let through since.
    left: Option<u64>,
    /// The window's quota, from `Ratelimit-Policy`'s `q`.
    quota: Option<u64>,
    /// The earliest moment the next paced request may leave.
    next_slot: Option<Instant>,
}

/// The gate of one process.
#[derive(Debug, Default)]
pub struct RateGate {
    hosts: std::sync::Mutex<HashMap<String, HostBudget>>,
}

impl RateGate {
    /// Whether a request to `host` (its authority) may leave at `now`,
    /// for a guest whose connect timeout is `connect_timeout`.
    pub fn admit(&self, host: &str, now: Instant, connect_timeout: Duration) -> Admission {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let budget = hosts.entry(host.to_string()).or_default();
        let hold_limit = (connect_timeout / 4).min(MAX_HOLD);
        let opens = budget.earliest_send(now);
        let wait = opens.saturating_duration_since(now);
        if wait > hold_limit {
            return Admission::HeldBack(wait);
        }
        budget.let_through(opens);
        if wait.is_zero() {
            Admission::Now
        } else {
            Admission::After(wait)
        }
    }

    /// Learns from an answer of `host` at `now`: a 429's `Retry-After`
    /// closes the gate; `Ratelimit` and `Ratelimit-Policy` set the pace.
    pub fn observe(&self, host: &str, now: Instant, status: StatusCode, headers: &HeaderMap) {
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        let budget = hosts.entry(host.to_string()).or_default();
        if let Some((left, reset_s)) = header(headers, "ratelimit").and_then(remaining) {
            budget.left = Some(left);
            budget.resets_at = Some(now + Duration::from_secs(reset_s));
            if left == 0 {
                budget.close_until(now + Duration::from_secs(reset_s));
            }
        }
        if let Some(quota) = header(headers, "ratelimit-policy").and_then(|v| parameter(v, "q")) {
            budget.quota = Some(quota);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            // Seconds or an HTTP date, read as the component reads it, so
            // that the gate opens when the component's own wait ends; a 429
            // without one closes it for a second.
            let wait_ms = header(headers, "retry-after")
                .and_then(|v| parse_retry_after(v, now_unix_ms()))
                .unwrap_or(1000);
            budget.close_until(now + Duration::from_millis(wait_ms));
        }
    }
}

impl HostBudget {
    fn close_until(&mut self, until: Instant) {
        self.closed_until = Some(self.closed_until.map_or(until, |c| c.max(until)));
    }

    /// When the next request may leave: after a closure, and paced while
    /// little of the window's quota is left.
    fn earliest_send(&mut self, now: Instant) -> Instant {
        if let Some(closed) = self.closed_until {
            if closed > now {
                return closed;
            }
            self.closed_until = None;
        }
        let Some(resets_at) = self.resets_at.filter(|r| *r > now) else {
            // A new window: nothing is known of it yet.
            self.resets_at = None;
            self.left = None;
            self.next_slot = None;
            return now;
        };
        let left = self.left.unwrap_or(u64::MAX);
        let quota = self.quota.unwrap_or(DEFAULT_QUOTA);
        if left.saturating_mul(PACE_BELOW_SHARE) >= quota {
            return now;
        }
        if left == 0 {
            return resets_at;
        }
        self.next_slot.map_or(now, |slot| slot.max(now))
    }

    /// Counts a request let through at `at`, and spaces the next one so
    /// that what is left lasts until the window resets.
    fn let_through(&mut self, at: Instant) {
        let Some(left) = self.left else {
            return;
        };
        let left = left.saturating_sub(1);
        self.left = Some(left);
        let quota = self.quota.unwrap_or(DEFAULT_QUOTA);
        if left.saturating_mul(PACE_BELOW_SHARE) >= quota {
            // Not pacing: the next request need not wait for this one.
            self.next_slot = None;
            return;
        }
        if let Some(resets_at) = self.resets_at {
            let remaining = resets_at.saturating_duration_since(at);
            let spacing = remaining / u32::try_from(left.max(1)).unwrap_or(u32::MAX);
            self.next_slot = Some(at + spacing);
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `r` and `t` of a `Ratelimit` field such as `"default";r=50;t=30`.
fn remaining(value: &str) -> Option<(u64, u64)> {
    Some((parameter(value, "r")?, parameter(value, "t")?))
}

/// The integer parameter `name` of the first item of a structured field
/// (`"default";r=50;t=30`).
fn parameter(value: &str, name: &str) -> Option<u64> {
    let first = value.split(',').next()?;
    first.split(';').skip(1).find_map(|param| {
        let (key, number) = param.trim().split_once('=')?;
        (key.trim() == name).then(|| number.trim().parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "api.cloudflare.com:443";
    const CONNECT: Duration = Duration::from_secs(5);

    fn answer(status: u16, pairs: &[(&'static str, &str)]) -> (StatusCode, HeaderMap) {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        (StatusCode::from_u16(status).unwrap(), headers)
    }

    #[test]
    fn fields_are_read_as_the_draft_writes_them() {
        assert_eq!(remaining(r#""default";r=50;t=30"#), Some((50, 30)));
        assert_eq!(
            remaining(r#""default"; r=0; t=7, "other";r=9;t=1"#),
            Some((0, 7))
        );
        assert_eq!(parameter(r#""burst";q=100;w=60"#, "q"), Some(100));
        assert_eq!(remaining("garbage"), None);
    }

    #[test]
    fn a_429_closes_the_gate_for_every_task_until_its_wait_is_over() {
        let gate = RateGate::default();
        let now = Instant::now();
        assert_eq!(gate.admit(HOST, now, CONNECT), Admission::Now);
        let (status, headers) = answer(429, &[("retry-after", "30")]);
        gate.observe(HOST, now, status, &headers);
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(30))
        );
        // Another host is not affected.
        assert_eq!(gate.admit("other:443", now, CONNECT), Admission::Now);
        // A wait shorter than the hold limit is held in the host.
        let later = now + Duration::from_millis(29_500);
        assert_eq!(
            gate.admit(HOST, later, CONNECT),
            Admission::After(Duration::from_millis(500))
        );
        assert_eq!(
            gate.admit(HOST, now + Duration::from_secs(31), CONNECT),
            Admission::Now
        );
    }

    #[test]
    fn little_quota_left_is_spread_over_the_window() {
        let gate = RateGate::default();
        let now = Instant::now();
        // Plenty left: no pacing.
        let (status, headers) = answer(
            200,
            &[
                ("ratelimit", r#""default";r=80;t=60"#),
                ("ratelimit-policy", r#""default";q=100;w=60"#),
            ],
        );
        gate.observe(HOST, now, status, &headers);
        assert_eq!(gate.admit(HOST, now, CONNECT), Admission::Now);
        assert_eq!(gate.admit(HOST, now, CONNECT), Admission::Now);
        // Ten left for 60 s: one every six seconds or so.
        let (status, headers) = answer(200, &[("ratelimit", r#""default";r=10;t=60"#)]);
        gate.observe(HOST, now, status, &headers);
        assert_eq!(gate.admit(HOST, now, CONNECT), Admission::Now);
        match gate.admit(HOST, now, CONNECT) {
            Admission::HeldBack(wait) => {
                assert!(
                    wait > Duration::from_secs(5) && wait < Duration::from_secs(8),
                    "{wait:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // None left: closed until the window resets.
        let (status, headers) = answer(200, &[("ratelimit", r#""default";r=0;t=20"#)]);
        gate.observe(HOST, now, status, &headers);
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(20))
        );
        // The window reset: nothing is known, nothing held.
        assert_eq!(
            gate.admit(HOST, now + Duration::from_secs(21), CONNECT),
            Admission::Now
        );
    }

    #[test]
    fn a_hold_ends_well_before_the_connect_timeout() {
        let gate = RateGate::default();
        let now = Instant::now();
        let (status, headers) = answer(429, &[("retry-after", "1")]);
        gate.observe(HOST, now, status, &headers);
        // A quarter of a 2 s connect timeout is 500 ms: a 1 s wait is
        // handed back, not held.
        assert_eq!(
            gate.admit(HOST, now, Duration::from_secs(2)),
            Admission::HeldBack(Duration::from_secs(1))
        );
        assert_eq!(
            gate.admit(HOST, now, Duration::from_secs(8)),
            Admission::After(Duration::from_secs(1))
        );
    }
}
