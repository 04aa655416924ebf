//! Keeping the process's secrets (the config's credentials, the access
//! key's secret and session tokens: [`crate::printing::known_secrets`])
//! out of what the worker reports: every string of a result's
//! `outputData`, keys included, goes through the component's own
//! redaction before it is sent.

use std::borrow::Cow;

use allow_policies_batch::run::redact::Secrets;
use serde_json::Value;

/// Every string and key of `value`, redacted.
pub(super) fn redact_value(value: &mut Value, secrets: &Secrets) {
    match value {
        Value::String(text) => {
            if let Cow::Owned(redacted) = secrets.redact(text) {
                *text = redacted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact_value(v, secrets)),
        Value::Object(members) => {
            members.values_mut().for_each(|v| redact_value(v, secrets));
            // Keys are rebuilt only when one holds a credential, which is
            // rare: the map is not copied for every report.
            if members.keys().any(|key| secrets.found_in(key)) {
                *members = std::mem::take(members)
                    .into_iter()
                    .map(|(key, v)| (secrets.redact(&key).into_owned(), v))
                    .collect();
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
