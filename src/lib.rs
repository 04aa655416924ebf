//! A workflow HTTP task for Cloudflare Email Security's
//! `POST /accounts/{account_id}/email-security/settings/allow_policies/batch`.
//!
//! Everything but the last three modules is plain Rust that runs natively
//! under `cargo test`: parameters ([`config`], [`validate`], and
//! [`input_reader`] for the clean batch read in one pass), the request
//! ([`request`]), what came back ([`outcome`]) and the flow that ties them
//! together ([`task`]). Only [`wasi_http`] touches the host's HTTP.

pub mod config;
pub mod http_date;
pub mod input_reader;
pub mod json;
pub mod json_scan;
pub mod outcome;
pub mod pattern;
pub mod policy;
pub mod policy_list;
pub mod problems;
pub mod redact;
pub mod regex_syntax;
pub mod request;
pub mod retry;
pub mod schema;
pub mod strict_json;
pub mod sync;
pub mod sync_task;
pub mod task;
pub mod validate;
pub mod verify;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod wasi_http;
