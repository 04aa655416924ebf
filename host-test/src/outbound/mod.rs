//! Everything that governs a request the guest sends out, in the order a
//! request meets it: [`limits`] bounds what the guest may store in a
//! request resource, [`hooks`] receives the request and either lets a test
//! answer it or checks it against the [`allow`]-list, and [`pool`] lends it
//! a kept-open connection to its destination, once the process's
//! [`rate_gate`] lets it leave. Sending itself is wasmtime-wasi-http's.

pub mod allow;
pub mod hooks;
pub mod limits;
pub mod pool;
pub mod rate_gate;
