//! How long to wait before trying again.
//!
//! Exponential backoff with jitter, as Cloudflare's own clients do, so that
//! many tasks rate-limited together do not all come back at the same instant.

const BASE_MS: u64 = 500;
const CAP_MS: u64 = 8_000;

/// The wait before retry number `retry` (0 for the first retry): 0.5 s
/// doubling up to 8 s, plus up to a quarter more taken from `entropy`.
pub fn backoff_ms(retry: u32, entropy: u64) -> u64 {
    let base = BASE_MS.saturating_mul(1u64 << retry.min(16)).min(CAP_MS);
    base + entropy % (base / 4 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let without_jitter: Vec<u64> = (0..7).map(|r| backoff_ms(r, 0)).collect();
        assert_eq!(without_jitter, [500, 1000, 2000, 4000, 8000, 8000, 8000]);
        assert_eq!(backoff_ms(u32::MAX, 0), 8000);
    }

    #[test]
    fn jitter_adds_at_most_a_quarter() {
        for entropy in [1, 77, 124, 125, 126, 999_999, u64::MAX] {
            let w = backoff_ms(0, entropy);
            assert!((500..=625).contains(&w), "{w}");
        }
        assert_eq!(backoff_ms(0, 125), 625);
        assert_eq!(backoff_ms(0, 126), 500);
    }
}
