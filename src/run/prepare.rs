//! From parameter text to a checked task: both documents read and
//! checked, every problem of both reported in one go, and the request
//! built. Nothing here sends.

use std::sync::OnceLock;

use crate::api::outcome::Failure;
use crate::api::policy::{BatchBody, Counts};
use crate::api::request::{build_request, request_with_body, ApiRequest};
use crate::config::{parse_config, Config};
use crate::params::json_fields::parse_document;
use crate::params::one_pass::{read_clean, CleanInput};
use crate::params::problems::{Document, Pointer, Problem, Report};
use crate::params::sync_spec::SyncSpec;
use crate::params::validator::{parse_input, ValidInput};

/// Why a task failed; mirrors the WIT `task-error` variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskError {
    /// Config problems, with any input problems found in the same pass.
    InvalidConfig(Vec<Problem>),
    /// Input problems; the config had none.
    InvalidInput(Vec<Problem>),
    /// The call failed, or, in sync mode, reading the account did.
    Call(Failure),
}

/// A checked task, ready to send.
#[derive(Debug)]
pub struct Prepared {
    /// The checked config.
    pub config: Config,
    /// The account the batch goes to, from the input or else the config.
    pub account_id: String,
    /// What the request's body says, for verification to look for; see
    /// [`Prepared::batch`].
    batch: OnceLock<BatchBody>,
    /// `None` for an empty batch, which is not sent, and in sync mode.
    pub request: Option<ApiRequest>,
    /// Sync mode: the policies the account should have.
    pub sync: Option<SyncSpec>,
    /// How many items of each kind the batch carries.
    pub counts: Counts,
    /// What was accepted but deserves a look, each at its place.
    pub warnings: Vec<Problem>,
}

/// Parses and checks both documents and builds the request. Every problem
/// of both documents is reported in one go.
pub fn prepare(config_text: &str, input_text: &str) -> Result<Prepared, TaskError> {
    let mut report = Report::default();
    let config_value = parse_document(config_text, Document::Config, &mut report);
    let config = config_value
        .as_ref()
        .and_then(|v| parse_config(v, &mut report));
    let config_failed = report.error_count() > 0;
    // Nearly every input is a clean batch, read in one pass with its body
    // written as it is read; any other goes to the full reader, which
    // names each problem.
    let (input, input_names_account) = match read_clean(input_text) {
        Some(clean) => {
            let names_account = clean.account_id.is_some();
            (Some(Input::Clean(clean)), names_account)
        }
        None => {
            let value = parse_document(input_text, Document::Input, &mut report);
            let input = value.as_ref().and_then(|v| parse_input(v, &mut report));
            (input.map(Input::Full), names_account(&value))
        }
    };

    // The account may come from either document; when both are objects and
    // neither names it, that is a problem of the input's.
    if !names_account(&config_value) && !input_names_account {
        report.error(
            Document::Input,
            &Pointer::root().key("account_id"),
            "required field is missing: give account_id in the input or in the config",
        );
    }
    let input_account = input.as_ref().and_then(|input| match input {
        Input::Clean(clean) => clean.account_id.clone(),
        Input::Full(valid) => valid.account_id.clone(),
    });
    let account_id = input_account.or_else(|| config.as_ref().and_then(|c| c.account_id.clone()));

    match (config, input, account_id) {
        (Some(config), Some(input), Some(account_id)) if report.error_count() == 0 => {
            let (counts, batch, request, sync) = match input {
                // Kept as its body alone; see [`Prepared::batch`].
                Input::Clean(clean) => {
                    let request = (clean.counts != Counts::default())
                        .then(|| request_with_body(&config, &account_id, clean.body_text));
                    (clean.counts, OnceLock::new(), request, None)
                }
                Input::Full(valid) => {
                    let request = (!valid.body.is_empty())
                        .then(|| build_request(&config, &account_id, &valid.body));
                    let counts = valid.body.counts();
                    (counts, OnceLock::from(valid.body), request, valid.sync)
                }
            };
            Ok(Prepared {
                config,
                account_id,
                batch,
                request,
                sync,
                counts,
                warnings: report.take_warnings(),
            })
        }
        _ if config_failed => Err(TaskError::InvalidConfig(report.into_errors())),
        _ => Err(TaskError::InvalidInput(report.into_errors())),
    }
}

impl Prepared {
    /// The batch as items. A batch read in one pass
    /// ([`crate::params::one_pass`]) keeps only the body it wrote, since only
    /// reading the account back needs the items; they are read from that
    /// body the first time they are asked for. The one-pass reader and the
    /// full one give the same body for the same items, so reading it back
    /// cannot fail.
    pub fn batch(&self) -> &BatchBody {
        self.batch.get_or_init(|| {
            let Some(request) = &self.request else {
                return BatchBody::default();
            };
            let mut report = Report::default();
            parse_document(&request.body, Document::Input, &mut report)
                .and_then(|v| parse_input(&v, &mut report))
                .map(|input| input.body)
                .unwrap_or_default()
        })
    }
}

/// The input as one of the two readers read it.
enum Input {
    Clean(CleanInput),
    Full(ValidInput),
}

/// Whether a parsed document names the account: a document that is not an
/// object has a problem of its own already.
fn names_account(value: &Option<serde_json::Value>) -> bool {
    match value {
        Some(serde_json::Value::Object(map)) => map.contains_key("account_id"),
        _ => true,
    }
}
