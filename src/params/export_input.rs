//! The parameters of `export-policies`: the config, as every task reads
//! it, and an input that may name only the account. The input takes no
//! lists: an export reads, and a list given to it would be ignored, so it
//! is refused instead.

use serde_json::Value;

use crate::config::{check_account_id, parse_config, Config};
use crate::params::json_fields::{expect_object, field, parse_document, reject_unknown_keys};
use crate::params::problems::{Document, Pointer, Problem, Report};

/// The members an export's input may have.
pub const EXPORT_INPUT_KEYS: &[&str] = &["account_id"];

/// Checked export parameters: where to read, and whose policies.
#[derive(Debug)]
pub struct ExportParams {
    /// The checked config.
    pub config: Config,
    /// The account to read: the input's, else the config's.
    pub account_id: String,
}

/// Why the parameters cannot be used, every problem of both documents
/// listed, as [`crate::run::prepare::prepare`] reports them: config
/// problems first (with the input's found in the same pass), else the
/// input's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportParamsError {
    /// The config has problems; the input's are listed after them.
    Config(Vec<Problem>),
    /// The input has problems, or neither document names the account.
    Input(Vec<Problem>),
}

/// Reads and checks both documents. The account comes from the input,
/// else the config; naming it in neither is a problem of the input's at
/// `/account_id`, as it is for a batch.
pub fn read_export_params(
    config_text: &str,
    input_text: &str,
) -> Result<ExportParams, ExportParamsError> {
    let mut report = Report::default();
    let config = parse_document(config_text, Document::Config, &mut report)
        .and_then(|value| parse_config(&value, &mut report));
    let config_failed = report.error_count() > 0;
    let input = parse_document(input_text, Document::Input, &mut report);
    let input_account = input
        .as_ref()
        .and_then(|value| read_input(value, &mut report));

    let account_id = match (input_account, &config) {
        (Some(Some(id)), _) => Some(id),
        (Some(None), Some(config)) => config.account_id.clone(),
        _ => None,
    };
    if account_id.is_none() && report.error_count() == 0 {
        report.error(
            Document::Input,
            &Pointer::root().key("account_id"),
            "required field is missing: give account_id in the input or in the config",
        );
    }
    match (config, account_id) {
        (Some(config), Some(account_id)) if report.error_count() == 0 => {
            Ok(ExportParams { config, account_id })
        }
        _ if config_failed => Err(ExportParamsError::Config(report.into_errors())),
        _ => Err(ExportParamsError::Input(report.into_errors())),
    }
}

/// The input's account id: `Some(None)` for an input that names none,
/// `None` when the input has problems (reported).
fn read_input(value: &Value, report: &mut Report) -> Option<Option<String>> {
    let root = Pointer::root();
    let map = expect_object(value, Document::Input, &root, report)?;
    let before = report.error_count();
    reject_unknown_keys(map, EXPORT_INPUT_KEYS, Document::Input, &root, report);
    let account = field(map, "account_id", &root);
    let account_id = match account.string(Document::Input, report) {
        Some(id) => match check_account_id(id) {
            Ok(()) => Some(id.to_string()),
            Err(message) => {
                report.error(Document::Input, &account.at(), message);
                None
            }
        },
        None => None,
    };
    (report.error_count() == before).then_some(account_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn config(account: Option<&str>) -> String {
        let mut config = serde_json::json!({"api_token": "tok-EXPORT-1f"});
        if let Some(account) = account {
            config["account_id"] = account.into();
        }
        config.to_string()
    }

    fn pointers(problems: &[Problem]) -> Vec<(Document, &str)> {
        problems
            .iter()
            .map(|p| (p.document, p.pointer.as_str()))
            .collect()
    }

    #[test]
    fn the_input_s_account_wins_over_the_config_s() {
        let input = format!(r#"{{"account_id":"{OTHER}"}}"#);
        let params = read_export_params(&config(Some(ACCOUNT)), &input).unwrap();
        assert_eq!(params.account_id, OTHER);
        let params = read_export_params(&config(Some(ACCOUNT)), "{}").unwrap();
        assert_eq!(params.account_id, ACCOUNT);
    }

    #[test]
    fn an_account_in_neither_document_is_the_input_s_problem() {
        let Err(ExportParamsError::Input(problems)) = read_export_params(&config(None), "{}")
        else {
            panic!("expected an input problem");
        };
        assert_eq!(pointers(&problems), [(Document::Input, "/account_id")]);
    }

    #[test]
    fn lists_and_bad_ids_are_refused_with_their_pointers() {
        let input = r#"{"account_id":"ABC","sync":{"policies":[]}}"#;
        let Err(ExportParamsError::Input(problems)) =
            read_export_params(&config(Some(ACCOUNT)), input)
        else {
            panic!("expected input problems");
        };
        assert_eq!(
            pointers(&problems),
            [(Document::Input, "/sync"), (Document::Input, "/account_id")]
        );
    }

    #[test]
    fn config_problems_come_first_with_the_input_s_beside_them() {
        let Err(ExportParamsError::Config(problems)) =
            read_export_params(r#"{"timeout_ms":0}"#, "[]")
        else {
            panic!("expected config problems");
        };
        let found = pointers(&problems);
        assert!(
            found.contains(&(Document::Config, "/timeout_ms")),
            "{found:?}"
        );
        assert!(found.contains(&(Document::Input, "")), "{found:?}");
    }
}
