//! A workflow HTTP task for Cloudflare Email Security's
//! `POST /accounts/{account_id}/email-security/settings/allow_policies/batch`.
//!
//! The folders follow a task's way through the component:
//! - [`params`] reads and checks the parameters: the config and input
//!   documents, both input readers, the pattern checks, the problems.
//! - [`api`] is what Cloudflare's API is: the policy types and their field
//!   table, the requests, the answer and its classification, the list of
//!   an account's policies.
//! - [`run`] carries a checked task out: prepare, send with safe retries,
//!   read back after a doubtful failure, sync, redaction, and the output
//!   documents.
//!
//! [`config`] and [`schema`] sit beside them. Everything so far is plain
//! Rust that runs natively under `cargo test`. The WIT export
//! (`component`) and the HTTP boundary (`wasi_http`, the only module that
//! touches wasi:http) are built for wasm only.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod params;
pub mod run;
pub mod schema;

#[cfg(target_arch = "wasm32")]
mod bindings;
#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(target_arch = "wasm32")]
mod wasi_http;
