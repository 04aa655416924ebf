//! Host for the `allow-policies-batch` component: loads it once, runs each
//! task in a fresh sandbox that can reach only allowed hosts, and lets tests
//! answer the component's HTTP requests themselves.
//!
//! This file only names the modules and re-exports what callers use most,
//! by short paths (`host_test::TaskHost`); no module imports anything from
//! here, so the crate root is never part of an import cycle.

pub mod accept_loop;
pub mod again_since;
pub mod attempts;
pub mod bindings;
pub mod cleartext;
pub mod cli;
mod compile_cache;
mod component_path;
pub mod conductor;
pub mod designer;
mod failure;
pub mod fake_api;
mod outbound;
pub mod printing;
pub mod private_dir;
mod sandbox;
pub mod task_config;
mod task_host;
pub mod unsettled;
mod wall_clock;
pub mod worker;

pub use bindings::{
    ApiError, CallFailure, Document, EarlierAttempt, FieldError, TaskError, Verification,
};
pub use compile_cache::{CacheMode, CacheOutcome, CACHE_DIR_ENV};
pub use component_path::default_component_path;
pub use failure::{api_error_to_json, error_kind, error_to_json, field_error_to_json};
pub use outbound::allow::{is_allowed, AllowedHost};
pub use outbound::hooks::{
    CannedResponse, CapturedRequest, Intercepted, Interceptor, MAX_CAPTURED_BODY,
};
pub use outbound::limits::MAX_METHOD_LEN;
pub use outbound::pool::{IDLE_TIMEOUT, MAX_IDLE_PER_DESTINATION};
pub use sandbox::{TaskOptions, MAX_GUEST_STDERR, MAX_RESOURCES, MEMORY_LIMIT};
pub use task_host::{HostSettings, TaskHost, TaskInstance, DEFAULT_MAX_CONCURRENT_TASKS};
pub use wall_clock::{now_unix_ms, WallClockLimitExceeded, DEFAULT_WALL_CLOCK_LIMIT};
pub use wasmtime_wasi_http::p2::bindings::http::types::ErrorCode;
