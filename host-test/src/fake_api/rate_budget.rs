//! The fake's rate limit, as Cloudflare's works: a quota of requests per
//! window for each credential, spent by every route of the API; over it,
//! every request is refused with a 429 for the lockout; and every answer
//! says what is left, in the IETF draft's `Ratelimit` and
//! `Ratelimit-Policy` headers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderValue, StatusCode};

use super::envelope::{failure, ApiError, Reply};

/// Cloudflare's own budget: 1,200 requests per five minutes per user, then
/// five minutes of 429.
pub const CLOUDFLARE: RateBudget = RateBudget {
    limit: 1200,
    window: Duration::from_secs(300),
    lockout: Duration::from_secs(300),
};

/// Cloudflare's code for a rate-limited request.
const RATE_LIMITED_CODE: u32 = 10_429;

/// A quota of requests per window, and the lockout that going over earns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateBudget {
    /// Requests allowed per window.
    pub limit: u32,
    /// The window: it starts at a credential's first request.
    pub window: Duration,
    /// How long every request is refused after going over.
    pub lockout: Duration,
}

/// One credential's window.
#[derive(Debug)]
struct Window {
    started: Instant,
    used: u32,
    locked_until: Option<Instant>,
}

/// What the budget says of one request.
pub(super) enum Spent {
    /// Answer it, with these headers.
    Within(Vec<(&'static str, String)>),
    /// Refuse it: the 429 to send.
    Refused(Reply),
}

/// The windows of every credential seen.
#[derive(Debug)]
pub(super) struct RateLimiter {
    budget: RateBudget,
    windows: HashMap<String, Window>,
    /// 429s sent, and lockouts begun, for a test or a benchmark to read.
    pub(super) refused: usize,
    pub(super) lockouts: usize,
}

impl RateLimiter {
    pub(super) fn new(budget: RateBudget) -> Self {
        RateLimiter {
            budget,
            windows: HashMap::new(),
            refused: 0,
            lockouts: 0,
        }
    }

    /// Spends one request of the credential the headers carry.
    pub(super) fn spend(&mut self, headers: &HeaderMap, now: Instant) -> Spent {
        let budget = self.budget;
        let window = self
            .windows
            .entry(credential(headers))
            .or_insert_with(|| Window {
                started: now,
                used: 0,
                locked_until: None,
            });
        if let Some(until) = window.locked_until {
            if until > now {
                self.refused += 1;
                return Spent::Refused(refusal(until - now, budget));
            }
            *window = Window {
                started: now,
                used: 0,
                locked_until: None,
            };
        }
        if now.duration_since(window.started) >= budget.window {
            *window = Window {
                started: now,
                used: 0,
                locked_until: None,
            };
        }
        window.used += 1;
        if window.used > budget.limit {
            window.locked_until = Some(now + budget.lockout);
            self.refused += 1;
            self.lockouts += 1;
            return Spent::Refused(refusal(budget.lockout, budget));
        }
        let resets_in = budget
            .window
            .saturating_sub(now.duration_since(window.started));
        Spent::Within(fields(budget.limit - window.used, resets_in, budget))
    }
}

/// The credential a request spends: its token, else its key.
fn credential(headers: &HeaderMap) -> String {
    ["authorization", "x-auth-key"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .unwrap_or_default()
        .to_string()
}

/// Whole seconds, rounded up: a client that waits them is not early.
fn seconds(duration: Duration) -> u64 {
    duration.as_millis().div_ceil(1000) as u64
}

fn fields(left: u32, resets_in: Duration, budget: RateBudget) -> Vec<(&'static str, String)> {
    vec![
        (
            "ratelimit",
            format!("\"default\";r={left};t={}", seconds(resets_in)),
        ),
        (
            "ratelimit-policy",
            format!(
                "\"default\";q={};w={}",
                budget.limit,
                seconds(budget.window)
            ),
        ),
    ]
}

fn refusal(wait: Duration, budget: RateBudget) -> Reply {
    let mut reply = failure(
        StatusCode::TOO_MANY_REQUESTS,
        vec![ApiError::new(
            RATE_LIMITED_CODE,
            "Rate limited. Please wait and consider throttling your request speed",
        )],
    );
    let mut headers = fields(0, wait, budget);
    headers.push(("retry-after", seconds(wait).to_string()));
    add_fields(&mut reply, &headers);
    reply
}

/// Adds the budget's fields to an answer that has none of its own (a
/// queued fault's headers win, so a test can say what it likes).
pub(super) fn add_fields(reply: &mut Reply, fields: &[(&'static str, String)]) {
    for (name, value) in fields {
        if reply.headers().contains_key(*name) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            reply.headers_mut().insert(*name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(t: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {t}").parse().unwrap());
        headers
    }

    #[test]
    fn a_credential_over_its_quota_is_locked_out_then_starts_anew() {
        let budget = RateBudget {
            limit: 2,
            window: Duration::from_secs(10),
            lockout: Duration::from_secs(5),
        };
        let mut limiter = RateLimiter::new(budget);
        let now = Instant::now();
        let Spent::Within(fields) = limiter.spend(&token("a"), now) else {
            panic!("refused")
        };
        assert_eq!(fields[0], ("ratelimit", "\"default\";r=1;t=10".into()));
        assert_eq!(
            fields[1],
            ("ratelimit-policy", "\"default\";q=2;w=10".into())
        );
        assert!(matches!(limiter.spend(&token("a"), now), Spent::Within(_)));
        // Another credential has its own window.
        assert!(matches!(limiter.spend(&token("b"), now), Spent::Within(_)));
        let Spent::Refused(reply) = limiter.spend(&token("a"), now) else {
            panic!("over the quota")
        };
        assert_eq!(reply.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(reply.headers()["retry-after"], "5");
        let later = now + Duration::from_secs(3);
        let Spent::Refused(reply) = limiter.spend(&token("a"), later) else {
            panic!("locked out")
        };
        assert_eq!(reply.headers()["retry-after"], "2");
        assert_eq!((limiter.refused, limiter.lockouts), (2, 1));
        let after = now + Duration::from_secs(6);
        assert!(matches!(
            limiter.spend(&token("a"), after),
            Spent::Within(_)
        ));
    }
}
