//! The start time a person gives `task-host run --again-since`, checked at
//! the flag.
//!
//! The time decides which look-alikes of the batch's posts count as its
//! own: those created since then. A time too late takes the batch's own
//! policies for older ones and sends the batch again, creating them twice;
//! a time in seconds reads as January 1970 and takes any look-alike for the
//! batch's. So the flag takes milliseconds since the Unix epoch, no later
//! than a minute ahead of this host's clock (clocks differ a little) and no
//! earlier than a year ago. Engines pass their own times through
//! [`crate::attempts`], not through here: the Conductor worker's 0
//! ("policies of any age") is meant.

/// How far ahead of this host's clock the time may be, in milliseconds.
pub const MAX_AHEAD_MS: u64 = 60_000;

/// How long ago the time may be, in milliseconds: a year.
pub const MAX_AGE_MS: u64 = 365 * 24 * 60 * 60 * 1000;

/// Why a time given to `--again-since` is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgainSinceError {
    /// Not a whole number.
    NotANumber,
    /// Later than [`MAX_AHEAD_MS`] past now.
    InTheFuture {
        /// How far ahead, in milliseconds.
        ahead_ms: u64,
    },
    /// Earlier than [`MAX_AGE_MS`] before now.
    TooOld {
        /// The time read as seconds falls within the accepted range.
        looks_like_seconds: bool,
    },
}

impl std::fmt::Display for AgainSinceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const UNIT: &str =
            "give when the earlier attempt started, in milliseconds since the Unix epoch";
        match self {
            AgainSinceError::NotANumber => write!(f, "expected a whole number: {UNIT}"),
            AgainSinceError::InTheFuture { ahead_ms } => write!(
                f,
                "it is {} s ahead of this host's clock; {UNIT}: a time after the batch was sent would take its own policies for older ones and create them again",
                ahead_ms / 1000
            ),
            AgainSinceError::TooOld {
                looks_like_seconds: true,
            } => write!(
                f,
                "it is more than a year ago, and looks like seconds; {UNIT} (1000 times as much)"
            ),
            AgainSinceError::TooOld {
                looks_like_seconds: false,
            } => write!(
                f,
                "it is more than a year ago; {UNIT}, or run the task afresh without --again-since"
            ),
        }
    }
}

impl std::error::Error for AgainSinceError {}

/// `text` as a start time in milliseconds since the Unix epoch, when it is
/// within [`MAX_AGE_MS`] before and [`MAX_AHEAD_MS`] after `now_unix_ms`.
pub fn parse_again_since(text: &str, now_unix_ms: u64) -> Result<u64, AgainSinceError> {
    let ms: u64 = text
        .trim()
        .parse()
        .map_err(|_| AgainSinceError::NotANumber)?;
    let within = |t: u64| now_unix_ms.saturating_sub(MAX_AGE_MS) <= t;
    if ms > now_unix_ms.saturating_add(MAX_AHEAD_MS) {
        return Err(AgainSinceError::InTheFuture {
            ahead_ms: ms - now_unix_ms,
        });
    }
    if !within(ms) {
        let as_ms = ms.saturating_mul(1000);
        let looks_like_seconds = within(as_ms) && as_ms <= now_unix_ms.saturating_add(MAX_AHEAD_MS);
        return Err(AgainSinceError::TooOld { looks_like_seconds });
    }
    Ok(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-07T12:00:00Z.
    const NOW: u64 = 1_796_644_800_000;

    #[test]
    fn a_recent_time_in_milliseconds_is_taken() {
        assert_eq!(
            parse_again_since("1796644700000", NOW),
            Ok(1_796_644_700_000)
        );
        assert_eq!(
            parse_again_since(&(NOW + MAX_AHEAD_MS).to_string(), NOW),
            Ok(NOW + MAX_AHEAD_MS)
        );
        assert_eq!(
            parse_again_since(&(NOW - MAX_AGE_MS).to_string(), NOW),
            Ok(NOW - MAX_AGE_MS)
        );
    }

    #[test]
    fn a_time_ahead_of_the_clock_is_refused() {
        assert_eq!(
            parse_again_since(&(NOW + MAX_AHEAD_MS + 1).to_string(), NOW),
            Err(AgainSinceError::InTheFuture {
                ahead_ms: MAX_AHEAD_MS + 1
            })
        );
        let err = parse_again_since("99999999999999", NOW).unwrap_err();
        assert!(
            matches!(err, AgainSinceError::InTheFuture { .. }),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("milliseconds since the Unix epoch"),
            "{err}"
        );
    }

    #[test]
    fn seconds_and_old_times_are_refused_with_the_reason() {
        let err = parse_again_since("1796644700", NOW).unwrap_err();
        assert_eq!(
            err,
            AgainSinceError::TooOld {
                looks_like_seconds: true
            }
        );
        assert!(err.to_string().contains("looks like seconds"), "{err}");
        let err = parse_again_since(&(NOW - MAX_AGE_MS - 1).to_string(), NOW).unwrap_err();
        assert_eq!(
            err,
            AgainSinceError::TooOld {
                looks_like_seconds: false
            }
        );
        assert_eq!(
            parse_again_since("0", NOW),
            Err(AgainSinceError::TooOld {
                looks_like_seconds: false
            })
        );
        assert_eq!(
            parse_again_since("-5", NOW),
            Err(AgainSinceError::NotANumber)
        );
        assert_eq!(
            parse_again_since("soon", NOW),
            Err(AgainSinceError::NotANumber)
        );
    }
}
