//! Properties of [`prepare`] over generated parameters.
//!
//! Four families, one module each: `valid` (every batch that follows the
//! contract's rules is sent exactly as given), `arbitrary` (no document
//! makes `prepare` panic or name a place that is not in it), `readers`
//! (the one-pass reader agrees with the full reader) and `secrets` (no
//! configured credential comes back in any output).

use crate::api::fields::DEPRECATED;
use crate::api::outcome::{RawResponse, TransportFault};
use crate::api::request::ApiRequest;
use crate::api::transport::{AttemptLimits, Transport};
use crate::config::CONFIG_KEYS;
use crate::config::MIN_SECRET_CHARS;
use crate::params::problems::{Document, Problem};
use crate::params::validator::INPUT_KEYS;
use crate::run::documents::{preview_json, success_json};
use crate::run::prepare::{prepare, TaskError};
use crate::run::redact::Secrets;
use crate::run::send::execute;
use proptest::array::{uniform3, uniform4};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::Union;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Only credential values ever carry this text, so it may appear in no
/// message, warning or preview.
pub(super) const CANARY: &str = "Cnry7Secret";

/// Strings matching `pattern`, parsed once rather than at every case.
pub(super) fn re(pattern: &str) -> BoxedStrategy<String> {
    proptest::string::string_regex(pattern)
        .expect("a valid generator pattern")
        .boxed()
}

pub(super) const BATCH_PATH: &str = "/email-security/settings/allow_policies/batch";

pub(super) fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        // A failure found here becomes a unit test next to the code it is
        // about, so no regression files are written.
        failure_persistence: None,
        // Plenty for generating test data, and far cheaper than ChaCha in an
        // unoptimised test build.
        rng_algorithm: proptest::test_runner::RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

mod arbitrary;
mod readers;
mod secrets;
mod valid;

use arbitrary::*;
use valid::*;
