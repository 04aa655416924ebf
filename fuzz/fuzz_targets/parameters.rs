//! Parameter parsing and validation: `task::prepare` on any pair of texts.
//!
//! The input bytes are split at the first NUL byte into the config text and
//! the input text (without a NUL, all of it is the config and the input is
//! `{}`); bytes that are not UTF-8 are replaced, as the WIT boundary only
//! passes strings.
//!
//! Besides not panicking, each run checks:
//! - a prepared request has a body that is a JSON object with exactly the
//!   keys `deletes`, `patches`, `puts` and `posts`, each an array as long as
//!   the counts say, and a URL ending in the batch endpoint's path;
//! - a rejection has at least one problem, and only input problems when it
//!   is `InvalidInput`;
//! - every problem's pointer is grounded in the document it names: `""` for
//!   text that is not JSON; otherwise it resolves, or it names a member
//!   absent from the object its parent resolves to;
//! - no message, warning, preview or `Debug` text carries a credential: the
//!   config is run a second time with a marker inside `api_token` and
//!   `api_key`, and the marker must not come out.

#![no_main]

use allow_policies_batch::params::problems::Document;
use allow_policies_batch::run::documents::preview_json;
use allow_policies_batch::run::prepare::{prepare, TaskError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const MARKER: &str = "Mkr5Credential";
const BATCH_PATH: &str = "/email-security/settings/allow_policies/batch";
const LISTS: [&str; 4] = ["deletes", "patches", "puts", "posts"];

fuzz_target!(|data: &[u8]| {
    let (config, input) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let config = String::from_utf8_lossy(config);
    let input = String::from_utf8_lossy(input);
    check(&config, &input, false);
    if let Some(marked) = with_marked_credentials(&config, &input) {
        check(&marked, &input, true);
    }
});

/// Runs `prepare` and checks what holds for any parameters; with `marked`,
/// also that [`MARKER`], which only the credentials carry, never comes out.
fn check(config_text: &str, input_text: &str, marked: bool) {
    let config = serde_json::from_str::<Value>(config_text).ok();
    let input = serde_json::from_str::<Value>(input_text).ok();
    let problems = match prepare(config_text, input_text) {
        Ok(prepared) => {
            let c = prepared.counts;
            let counts = [c.deletes, c.patches, c.puts, c.posts];
            match &prepared.request {
                None => assert_eq!(counts, [0; 4], "a non-empty batch was skipped"),
                Some(request) => {
                    assert!(request.url.ends_with(BATCH_PATH), "{}", request.url);
                    let body: Value =
                        serde_json::from_str(&request.body).expect("the body is JSON");
                    let object = body.as_object().expect("the body is an object");
                    assert_eq!(object.len(), 4, "{body}");
                    for (name, count) in LISTS.iter().zip(counts) {
                        let list = object[*name].as_array().expect("each list is an array");
                        assert_eq!(list.len(), count, "{name}");
                    }
                }
            }
            let preview: Value =
                serde_json::from_str(&preview_json(&prepared)).expect("the preview is JSON");
            let shown = format!("{preview} {prepared:?}");
            assert!(
                !(marked && shown.contains(MARKER)),
                "a credential leaked: {shown}"
            );
            prepared.warnings
        }
        Err(TaskError::Call(f)) => panic!("prepare sends nothing, yet failed a call: {f:?}"),
        Err(TaskError::InvalidConfig(problems)) => {
            assert!(problems.iter().any(|p| p.document == Document::Config));
            problems
        }
        Err(TaskError::InvalidInput(problems)) => {
            assert!(!problems.is_empty(), "rejected without a problem");
            assert!(problems.iter().all(|p| p.document == Document::Input));
            problems
        }
    };
    for p in &problems {
        let document = match p.document {
            Document::Config => &config,
            Document::Input => &input,
        };
        assert!(grounded(&p.pointer, document.as_ref()), "{p:?}");
        assert!(
            !(marked && p.message.contains(MARKER)),
            "a credential leaked: {p:?}"
        );
    }
}

/// Whether `pointer` names a place in `document` (`None`: not JSON).
fn grounded(pointer: &str, document: Option<&Value>) -> bool {
    let Some(document) = document else {
        return pointer.is_empty();
    };
    if document.pointer(pointer).is_some() {
        return true;
    }
    pointer.rfind('/').is_some_and(|slash| {
        let token = pointer[slash + 1..].replace("~1", "/").replace("~0", "~");
        matches!(
            document.pointer(&pointer[..slash]),
            Some(Value::Object(parent)) if !parent.contains_key(&token)
        )
    })
}

/// The config with [`MARKER`] inside each string credential, or `None` when
/// it has none, or when the marker already occurs in either document (then
/// an echo of it would prove nothing).
fn with_marked_credentials(config_text: &str, input_text: &str) -> Option<String> {
    let mut config = serde_json::from_str::<Value>(config_text).ok()?;
    // Written back out, escapes are gone, so a spelled-out marker is found.
    let plain_input = serde_json::from_str::<Value>(input_text)
        .map(|v| v.to_string())
        .unwrap_or_default();
    if config.to_string().contains(MARKER)
        || input_text.contains(MARKER)
        || plain_input.contains(MARKER)
    {
        return None;
    }
    let object = config.as_object_mut()?;
    let mut marked = false;
    for key in ["api_token", "api_key"] {
        if let Some(Value::String(secret)) = object.get_mut(key) {
            let mut middle = secret.len() / 2;
            while !secret.is_char_boundary(middle) {
                middle -= 1;
            }
            secret.insert_str(middle, MARKER);
            marked = true;
        }
    }
    marked.then(|| config.to_string())
}
