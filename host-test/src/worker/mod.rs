//! A Conductor worker: polls for tasks, runs each through the component and
//! reports how it ended, with a bounded number of tasks in hand at a time.
//!
//! A task counts against `concurrency` from the poll that hands it out until
//! its result has been reported, so a slow server cannot make reports pile
//! up. On shutdown the worker stops polling, lets every task in hand finish,
//! reports it, and returns.
//!
//! The server's URLs and JSON live in [`crate::conductor`]; this folder
//! decides what a task's outcome means to Conductor, one job a module:
//!
//! - `settings`: what the worker is told at start ([`WorkerSettings`]);
//! - `poll_loop`: polling, the slots of the tasks in hand, and shutdown
//!   ([`run_worker`]);
//! - `task_run`: one task from its poll to its report;
//! - `admission`: whether a polled task can be run at all;
//! - `delivery`: whether a task comes for the first time or again;
//! - `task_result`: what Conductor is told about a task that ran;
//! - `reporting`: sending that result until the server takes it;
//! - `redaction`: keeping every secret the process knows out of what
//!   is sent;
//! - `summary` and `log_lines`: the endings counted, and every line the
//!   worker prints (through [`crate::printing`], redacted).
//!
//! This file defines nothing itself: it only names the modules and
//! re-exports what callers use, so no child imports from here.

mod admission;
mod delivery;
mod log_lines;
mod poll_loop;
mod redaction;
mod reporting;
mod settings;
mod summary;
mod task_result;
mod task_run;
#[cfg(test)]
mod test_fixtures;

pub use admission::{fits_response_timeout, task_input};
pub use delivery::delivery_of;
pub use poll_loop::{run_worker, LONG_POLL};
pub use settings::{TaskPatience, WorkerSettings, DEFAULT_MAX_OUTPUT_BYTES};
pub use summary::WorkerSummary;
pub use task_result::{postpone, task_result, within_output_limit};
