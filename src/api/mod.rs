//! What Cloudflare's API is: the policy types and the field table they
//! share, the requests, the answer and whether a failure may have applied,
//! and the list of an account's policies.

pub mod fields;
pub mod identity;
pub mod outcome;
pub mod policy;
pub mod policy_list;
pub mod request;
pub mod retry_after;
pub mod stored;
pub mod transport;
