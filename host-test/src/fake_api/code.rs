//! The `code`s of the fake's own errors (HTTP status in brackets), so that
//! tests can tell one refusal from another without matching messages.

/// The body is not JSON, or not a JSON object (400); also an admin body
/// that is not valid JSON (400).
pub const MALFORMED_BODY: u32 = 1001;
/// A field of the batch, or of a seeded policy, is missing, of the wrong
/// type, out of range or unknown; `source.pointer` names it (400).
pub const INVALID_FIELD: u32 = 1002;
/// `page` or `per_page` is not acceptable; `source.parameter` names it (400).
pub const INVALID_PARAMETER: u32 = 1003;
/// A delete, patch or put names an id the account does not have, at that
/// point of the batch; `source.pointer` is `/<array>/<index>/id` (404).
pub const POLICY_NOT_FOUND: u32 = 1004;
/// The body is larger than the fake accepts (413).
pub const BODY_TOO_LARGE: u32 = 1005;
/// An entry of `POST /__fake/faults` is not a fault (400).
pub const INVALID_FAULT: u32 = 1006;
/// A seed document (`POST /__fake/seed`, `task-host fake-api --seed`) is
/// not an object of account ids, names something that is not an account
/// id, or gives an account something other than an array (400).
pub const INVALID_SEED: u32 = 1007;
/// A seed gives an id that the account already has, or gives one id twice;
/// `source.pointer` names the policy's `id` (400).
pub const SEED_ID_TAKEN: u32 = 1008;
/// No route for that URI (404).
pub const NO_ROUTE: u32 = 7000;
/// The route exists, the method does not (405, with `Allow`).
pub const METHOD_NOT_ALLOWED: u32 = 7001;
/// The account id is not 32 lowercase hexadecimal characters (400).
pub const INVALID_ACCOUNT_ID: u32 = 7003;
/// Credentials missing, or not the ones the fake accepts (401).
pub const AUTHENTICATION: u32 = 10000;
/// A canned [`Fault::Status`](super::Fault::Status) queued without a body gets an
/// envelope with code `CANNED_BASE + status`, e.g. 1429.
pub const CANNED_BASE: u32 = 1000;
