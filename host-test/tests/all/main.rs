//! The host's integration tests, as one test binary (the layout wasmtime
//! uses for its own): one module per area, and what the areas share in
//! [`support`]. Linking wasmtime once instead of once per area keeps the
//! release test build short.
//!
//! The tests that measure this process's own memory are in the `memory`
//! binary (`tests/memory/`), where no other test runs beside them.
//!
//! Every test here runs in parallel with the others in one process: none
//! sets an environment variable or changes the working directory (the
//! `task-host` processes get theirs on their own command line), and each
//! keeps its files in a fresh directory of its own
//! ([`support::TempDir`]).

mod support;

mod cli;
mod compile_cache;
mod component;
mod connections;
mod designer;
mod doc_commands;
mod e2e;
mod examples;
mod export;
mod fake_api;
mod faults;
mod hostile_guest;
mod hostile_input;
mod rate_gate;
mod rerun;
mod schema;
mod sync;
mod verification;
mod worker;
