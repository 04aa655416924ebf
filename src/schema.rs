//! The JSON Schemas that the `describe` export returns.
//!
//! A workflow designer renders the `config` and `input` schemas as forms
//! (with defaults, limits and help text) and offers the fields of the
//! `output` schema to later steps. The schemas live, written by hand, in
//! `schema.json`, kept compact because the text is embedded in the
//! component. Being hand-written, they could drift from what the code
//! enforces; the tests (`schema/tests.rs`) tie them to it: every key the
//! parsers accept is described, every default and range is the one in
//! `config.rs` and the field table (`api/fields.rs`), and the output
//! schema has exactly the keys that `run/documents.rs` writes. The host's tests (`host-test/tests/all/schema/`)
//! run a real JSON Schema validator over the same text.

/// `{"config": <schema>, "input": <schema>, "output": <schema>}`, each a
/// JSON Schema (draft 2020-12) document.
pub const DESCRIBE: &str = include_str!("schema.json");

#[cfg(test)]
mod tests;
