//! One gate per process and API host, shared by every task in flight:
//! Cloudflare's rate budget (1,200 requests per five minutes per user) is
//! the account's, not the task's, so what one task learns of it holds for
//! all of them.
//!
//! - After a 429 with `Retry-After`, nothing leaves for that host until
//!   the wait is over.
//! - Before a 429, the `Ratelimit` header of every answer (`r`, the
//!   requests left; `t`, the seconds until the window resets) paces the
//!   process once less than half of the window's quota is left
//!   (`Ratelimit-Policy`'s `q`, else 100): what is left, less a reserve,
//!   is spread evenly over what is left of the window, instead of being
//!   spent at once and followed by a lockout.
//!
//! Several processes spend one budget, and none knows of the others but
//! through the headers, which count every process's requests. So the gate
//! paces on the freshest answer: within a window `r` only falls, and an
//! answer that says more is left than an earlier one was overtaken on the
//! way. Each process spreading `r` over `t` would together spend it faster
//! than that, but each answer then shows less left and slows them all:
//! what is left shrinks toward the reset and is not spent before it. The
//! reserve ([`reserve`]) is never spent by pacing: it covers the requests
//! other processes have in flight when the last of a window goes.
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

/// Below this share of the quota left (a half), requests are paced:
/// above it, a burst of every task in hand in every process cannot spend
/// the rest.
const PACE_BELOW_SHARE: u64 = 2;

/// Answers whose windows reset this close together are of one window:
/// `t` is in whole seconds, rounded up, and answers take a moment.
const SAME_WINDOW: Duration = Duration::from_secs(2);

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
            let resets_at = now + Duration::from_secs(reset_s);
            budget.learn(left, resets_at);
            if left == 0 {
                budget.close_until(resets_at);
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

/// Requests of a window of `quota` that pacing never spends: a twentieth
/// of the quota, at least 4 but never more than a quarter. They cover what
/// other processes, and this one's answers still on the way, spend unseen.
pub fn reserve(quota: u64) -> u64 {
    (quota / 20).max(4).min(quota / 4)
}

impl HostBudget {
    fn close_until(&mut self, until: Instant) {
        self.closed_until = Some(self.closed_until.map_or(until, |c| c.max(until)));
    }

    /// Takes in an answer's `r` and reset: the freshest word on the
    /// window. Within one window the least `r` seen wins (an answer saying
    /// more was overtaken by a later one), and so does the earliest reset:
    /// `t` is rounded up and counted from when the answer left, so every
    /// answer's reset is at or after the true one. A window that resets
    /// later is a new one; an answer of a window already over is old news.
    fn learn(&mut self, left: u64, resets_at: Instant) {
        match self.resets_at {
            Some(known) if resets_at + SAME_WINDOW < known => {}
            Some(known) if resets_at <= known + SAME_WINDOW => {
                self.left = Some(self.left.map_or(left, |l| l.min(left)));
                self.resets_at = Some(known.min(resets_at));
            }
            _ => {
                self.left = Some(left);
                self.resets_at = Some(resets_at);
                self.next_slot = None;
            }
        }
    }

    /// When the next request may leave: after a closure, and paced while
    /// less than half of the window's quota is left.
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
        if left <= reserve(quota) {
            return resets_at;
        }
        self.next_slot.map_or(now, |slot| slot.max(now))
    }

    /// Counts a request let through at `at`, and spaces the next one so
    /// that what is left above the reserve is spread evenly over what is
    /// left of the window, the last of it before the reset.
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
            let spendable = left.saturating_sub(reserve(quota));
            let remaining = resets_at.saturating_duration_since(at);
            let spacing = remaining / u32::try_from(spendable + 1).unwrap_or(u32::MAX);
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
        // Fifteen left for 60 s, five of them the reserve: the next leaves
        // now, and the nine above the reserve after it one every 6 s, the
        // last 6 s before the reset.
        let (status, headers) = answer(200, &[("ratelimit", r#""default";r=15;t=60"#)]);
        gate.observe(HOST, now, status, &headers);
        assert_eq!(reserve(100), 5);
        assert_eq!(gate.admit(HOST, now, CONNECT), Admission::Now);
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(6))
        );
        // None left: closed until the window resets.
        let (status, headers) = answer(200, &[("ratelimit", r#""default";r=0;t=60"#)]);
        gate.observe(HOST, now, status, &headers);
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(60))
        );
        // The window reset: nothing is known, nothing held.
        assert_eq!(
            gate.admit(HOST, now + Duration::from_secs(61), CONNECT),
            Admission::Now
        );
    }

    #[test]
    fn the_reserve_is_never_spent_by_pacing() {
        let gate = RateGate::default();
        let now = Instant::now();
        let (status, headers) = answer(
            200,
            &[
                ("ratelimit", r#""default";r=4;t=8"#),
                ("ratelimit-policy", r#""default";q=40;w=10"#),
            ],
        );
        gate.observe(HOST, now, status, &headers);
        assert_eq!(reserve(40), 4);
        assert_eq!(reserve(1200), 60);
        // A quota this small keeps a quarter, or nothing.
        assert_eq!(reserve(8), 2);
        assert_eq!(reserve(3), 0);
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(8))
        );
    }

    #[test]
    fn an_answer_overtaken_on_the_way_does_not_raise_what_is_left() {
        let gate = RateGate::default();
        let now = Instant::now();
        let policy = ("ratelimit-policy", r#""default";q=40;w=10"#);
        let (status, fresh) = answer(200, &[("ratelimit", r#""default";r=4;t=9"#), policy]);
        let (_, stale) = answer(200, &[("ratelimit", r#""default";r=18;t=10"#), policy]);
        gate.observe(HOST, now, status, &fresh);
        gate.observe(HOST, now, status, &stale);
        // Still four left, all of them the reserve, until the earlier
        // reset.
        assert_eq!(
            gate.admit(HOST, now, CONNECT),
            Admission::HeldBack(Duration::from_secs(9))
        );
        // A window that resets well after the known one is a new window.
        let later = now + Duration::from_secs(9);
        let (_, next) = answer(200, &[("ratelimit", r#""default";r=30;t=10"#), policy]);
        gate.observe(HOST, later, status, &next);
        assert_eq!(gate.admit(HOST, later, CONNECT), Admission::Now);
        // An answer of the window before, overtaken, is old news.
        let (_, old) = answer(200, &[("ratelimit", r#""default";r=1;t=1"#), policy]);
        gate.observe(HOST, later, status, &old);
        assert_eq!(gate.admit(HOST, later, CONNECT), Admission::Now);
    }

    /// A budget as Cloudflare's and the fake's: `limit` requests in a
    /// window that starts at the first request, then a lockout.
    struct Budget {
        limit: u64,
        window_ms: u64,
        lockout_ms: u64,
        started: Option<u64>,
        used: u64,
        locked_until: Option<u64>,
        answered: u64,
        refused: u64,
        lockouts: u64,
    }

    impl Budget {
        fn new(limit: u64, window_ms: u64, lockout_ms: u64) -> Budget {
            Budget {
                limit,
                window_ms,
                lockout_ms,
                started: None,
                used: 0,
                locked_until: None,
                answered: 0,
                refused: 0,
                lockouts: 0,
            }
        }

        /// The answer to a request that arrives at `at_ms`.
        fn spend(&mut self, at_ms: u64) -> (u16, Vec<(&'static str, String)>) {
            let policy = format!("\"default\";q={};w={}", self.limit, self.window_ms / 1000);
            let seconds = |ms: u64| ms.div_ceil(1000);
            if let Some(until) = self.locked_until.filter(|u| *u > at_ms) {
                self.refused += 1;
                let wait = seconds(until - at_ms);
                return (
                    429,
                    vec![
                        ("ratelimit", format!("\"default\";r=0;t={wait}")),
                        ("retry-after", wait.to_string()),
                        ("ratelimit-policy", policy),
                    ],
                );
            }
            if self.locked_until.is_some()
                || self.started.is_none_or(|s| at_ms - s >= self.window_ms)
            {
                (self.started, self.used, self.locked_until) = (Some(at_ms), 0, None);
            }
            self.used += 1;
            if self.used > self.limit {
                self.locked_until = Some(at_ms + self.lockout_ms);
                self.refused += 1;
                self.lockouts += 1;
                let wait = seconds(self.lockout_ms);
                return (
                    429,
                    vec![
                        ("ratelimit", format!("\"default\";r=0;t={wait}")),
                        ("retry-after", wait.to_string()),
                        ("ratelimit-policy", policy),
                    ],
                );
            }
            self.answered += 1;
            let started = self.started.unwrap_or(at_ms);
            let resets_in = self.window_ms - (at_ms - started);
            (
                200,
                vec![
                    (
                        "ratelimit",
                        format!(
                            "\"default\";r={};t={}",
                            self.limit - self.used,
                            seconds(resets_in)
                        ),
                    ),
                    ("ratelimit-policy", policy),
                ],
            )
        }
    }

    /// What a task slot of a simulated worker is doing.
    #[derive(Clone, Copy)]
    enum Slot {
        /// Will ask the gate at this moment.
        Ready(u64),
        /// Let through; leaves at this moment.
        Leaves(u64),
        /// Sent at `.0`; reaches the server at `.1`, its answer the
        /// process at `.2`.
        InFlight(u64, u64, u64),
    }

    /// `processes` workers with `slots` tasks in hand each, every task
    /// sending one request as soon as its gate lets it, against one
    /// budget of 40 requests per 10 s and a 10 s lockout, for
    /// `seconds`: the budget's counts. Answers take 4 ms each way, and
    /// the processes' answers cross on the way.
    fn fleet(processes: usize, slots: usize, seconds: u64) -> Budget {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut budget = Budget::new(40, 10_000, 10_000);
        let gates: Vec<RateGate> = (0..processes).map(|_| RateGate::default()).collect();
        let mut workers = vec![vec![Slot::Ready(0); slots]; processes];
        let mut answers = Vec::new();
        for now in 0..seconds * 1000 {
            for (p, slots) in workers.iter_mut().enumerate() {
                for (i, slot) in slots.iter_mut().enumerate() {
                    *slot = match *slot {
                        Slot::Ready(t) if t <= now => {
                            match gates[p].admit(HOST, at(now), CONNECT) {
                                Admission::Now => Slot::Leaves(now),
                                Admission::After(d) => Slot::Leaves(now + d.as_millis() as u64),
                                Admission::HeldBack(d) => Slot::Ready(now + d.as_millis() as u64),
                            }
                        }
                        // Slot i of process p is a little slower than the others.
                        Slot::Leaves(t) if t <= now => {
                            let arrives = now + 3 + ((p + i) % 3) as u64;
                            Slot::InFlight(now, arrives, arrives + 4)
                        }
                        Slot::InFlight(sent, arrives, back) if arrives == now => {
                            answers.push((p, i, budget.spend(now), back));
                            Slot::InFlight(sent, arrives, back)
                        }
                        other => other,
                    };
                }
            }
            answers.retain(|(p, i, (status, fields), back)| {
                if *back > now {
                    return true;
                }
                let mut headers = HeaderMap::new();
                for (name, value) in fields {
                    headers.insert(*name, value.parse().unwrap());
                }
                let status = StatusCode::from_u16(*status).unwrap();
                gates[*p].observe(HOST, at(now), status, &headers);
                workers[*p][*i] = Slot::Ready(now);
                false
            });
        }
        budget
    }

    /// The pacing rule against the budget it reads: two processes, each
    /// seeing only the headers, spend most of every window and never earn
    /// a lockout; neither do three.
    #[test]
    fn processes_that_share_one_budget_spend_most_of_it_without_a_lockout() {
        for processes in [1, 2, 3] {
            let budget = fleet(processes, 4, 120);
            assert_eq!(
                (budget.refused, budget.lockouts),
                (0, 0),
                "{processes} processes"
            );
            // 12 windows of 40, less the reserve and the tail.
            assert!(
                budget.answered >= 12 * 32,
                "{processes} processes: {} answered",
                budget.answered
            );
        }
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
