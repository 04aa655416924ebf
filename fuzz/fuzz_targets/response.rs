//! Response classification: `outcome::classify_response` on any response.
//!
//! Layout of the input bytes:
//! - bytes 0-1: the status, big-endian; unless flag 0x08 is set it is taken
//!   modulo 500 from 100, so that most inputs have a real HTTP status;
//! - byte 2: flags: 0x01 the body was cut at `max_response_bytes`, 0x02
//!   reading the body failed, 0x04 a `Retry-After` header follows, 0x08 the
//!   status is used as it is, 0x30 picks the clock (0, 2023-11-14, far
//!   future, `u64::MAX`);
//! - with 0x04: the header value, up to the first `\n`;
//! - the rest: the body.
//!
//! Besides not panicking, each run checks the contract's classification: a
//! success only for a 2xx with a readable envelope that says so; 408 and 429
//! retryable and never applied; 5xx retryable and maybe applied; a 2xx that
//! cannot be read is a terminal `bad_response` that may have applied; other
//! statuses are terminal; `Retry-After` is what its parser says; messages
//! stay one bounded sentence; and the success document stays JSON.

#![no_main]

use allow_policies_batch::api::retry_after::parse_retry_after;
use allow_policies_batch::api::outcome::{classify_response, FailureKind, RawResponse};
use allow_policies_batch::run::documents::success_json;
use allow_policies_batch::run::prepare::{prepare, Prepared};
use allow_policies_batch::run::send::Completed;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::sync::OnceLock;

const CLOCKS: [u64; 4] = [0, 1_700_000_000_000, 4_102_444_800_000, u64::MAX];

/// The longest failure message: a prefix, an API message cut at 300
/// characters, and a count of further errors.
const MAX_MESSAGE_CHARS: usize = 400;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let [hi, lo, flags] = *head;
    let raw_status = u16::from_be_bytes([hi, lo]);
    let status = if flags & 0x08 != 0 {
        raw_status
    } else {
        100 + raw_status % 500
    };
    let (retry_after, body) = if flags & 0x04 != 0 {
        let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
        let value = String::from_utf8_lossy(&rest[..end]).into_owned();
        (Some(value), rest.get(end + 1..).unwrap_or_default())
    } else {
        (None, rest)
    };
    let now = CLOCKS[usize::from((flags >> 4) & 0x03)];
    let response = RawResponse {
        status,
        retry_after,
        body: body.to_vec(),
        truncated: flags & 0x01 != 0,
        body_error: (flags & 0x02 != 0).then(|| "connection reset".to_string()),
    };
    let success_2xx = (200..=299).contains(&status);

    match classify_response(&response, now) {
        Ok(success) => {
            assert!(success_2xx, "success for status {status}");
            assert!(!response.truncated && response.body_error.is_none());
            assert_eq!(success.status, status);
            for list in [&success.messages, &success.errors].into_iter().flatten() {
                assert!(list.get().starts_with('['), "{}", list.get());
            }
            let completed = Completed {
                success: Some(success),
                attempts: 1,
                verified: None,
                rechecked: None,
            };
            let out: Value = serde_json::from_str(&success_json(prepared(), &completed))
                .expect("the success document is JSON");
            assert_eq!(out["success"], true);
            assert_eq!(out["status"], status);
            assert!(out["messages"].is_array());
            assert!(out["errors"].is_array());
        }
        Err(f) => {
            assert_eq!(f.status, Some(status));
            let expected_wait = response
                .retry_after
                .as_deref()
                .and_then(|v| parse_retry_after(v, now));
            assert_eq!(f.retry_after_ms, expected_wait);
            assert!(!f.message.is_empty());
            assert!(
                f.message.chars().count() <= MAX_MESSAGE_CHARS,
                "{} characters: {}",
                f.message.chars().count(),
                f.message
            );
            let row = (f.kind, f.retryable, f.may_have_applied);
            match status {
                200..=299 => assert!(
                    row == (FailureKind::BadResponse, false, true)
                        || row == (FailureKind::Api, false, false),
                    "{status}: {row:?}"
                ),
                408 | 429 => assert_eq!(row, (FailureKind::Api, true, false), "{status}"),
                500..=599 => assert_eq!(row, (FailureKind::Api, true, true), "{status}"),
                _ => assert_eq!(row, (FailureKind::Api, false, false), "{status}"),
            }
            if success_2xx && (response.truncated || response.body_error.is_some()) {
                assert_eq!(f.kind, FailureKind::BadResponse);
            }
            assert_eq!(f.auto_retryable(), matches!(status, 408 | 429));
            assert_eq!(f.attempts, 0);
        }
    }
});

/// A prepared task to render success documents with.
fn prepared() -> &'static Prepared {
    static PREPARED: OnceLock<Prepared> = OnceLock::new();
    PREPARED.get_or_init(|| {
        prepare(
            r#"{"api_token":"fuzz-token","account_id":"023e105f4ecef8ad9ca31a8372d0c353"}"#,
            r#"{"deletes":[{"id":2401}]}"#,
        )
        .expect("a valid task")
    })
}
