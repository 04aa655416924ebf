//! Reading and checking the parameters, before anything is sent.
//!
//! Text becomes a tree ([`json_text`]) read field by field
//! ([`json_fields`]); the full reader of the input ([`validator`]) names
//! every problem ([`problems`]) by its JSON Pointer. Nearly every input is
//! a clean batch, which [`one_pass`] reads straight from the text with its
//! own tokenizer ([`json_tokens`]), leaving anything else to the full
//! reader. Both apply the same pattern checks ([`pattern`], and
//! [`java_regex`] for regular expressions). Sync mode's parameters are a
//! [`sync_spec`]; an export's, which name only the account, are read by
//! [`export_input`].

pub mod export_input;
pub mod java_regex;
pub mod json_fields;
pub mod json_text;
pub mod json_tokens;
pub mod one_pass;
pub mod pattern;
pub mod problems;
pub mod sync_spec;
pub mod validator;
