//! A checked task carried out.
//!
//! [`prepare`] turns the parameters into a checked task and its request;
//! [`send`] sends it with safe retries; [`read_back`] tells, after a
//! failure that may have applied the batch, whether it was; [`sync_plan`]
//! and [`sync_run`] make and send a sync's plan; [`documents`] writes
//! every output document, and [`redact`] keeps credentials out of them.
//! [`export`] turns the account's policies into a sync input.

pub mod backoff;
pub mod documents;
pub mod export;
pub mod prepare;
pub mod read_back;
pub mod redact;
pub mod send;
pub mod sync_plan;
pub mod sync_run;

#[cfg(test)]
mod properties;
#[cfg(test)]
pub(crate) mod scripted;
#[cfg(test)]
mod tests;
