//! A configured credential, planted anywhere in the parameters or the API's
//! answer, never comes back in any output.

use super::*;
use crate::config::is_number_byte;
use crate::run::redact::PUBLIC_TEXTS;

/// A credential as the property plants it: long enough to be redacted, and
/// half the time with characters that a JSON string, a pointer or a pattern
/// check treats specially (`"`, `\`, `~`, `/`, `.`).
pub(super) fn planted_secret() -> BoxedStrategy<String> {
    prop_oneof![
        re("[A-Za-z0-9]{16,64}"),
        re("[A-Za-z0-9_.~/\"\\\\-]{16,64}"),
    ]
    .boxed()
}

/// Where, besides the config's credential, the secret is pasted.
#[derive(Clone, Copy, Debug)]
pub(super) enum Place {
    InputAccount,
    ConfigAccount,
    ConfigBaseUrl,
    UnknownConfigKey,
    UnknownInputKey,
    UnknownItemKey,
    PatternType,
    /// As the pattern, with this pattern_type and is_regex.
    Pattern(&'static str, bool),
    /// In the comments, which keeps the input valid.
    Comments,
    DeleteId,
    PatchId,
}

pub(super) const PLACES: &[Place] = &[
    Place::InputAccount,
    Place::ConfigAccount,
    Place::ConfigBaseUrl,
    Place::UnknownConfigKey,
    Place::UnknownInputKey,
    Place::UnknownItemKey,
    Place::PatternType,
    Place::Pattern("EMAIL", false),
    Place::Pattern("DOMAIN", false),
    Place::Pattern("IP", false),
    Place::Pattern("DOMAIN", true),
    Place::Comments,
    Place::DeleteId,
    Place::PatchId,
];

/// How the fake API writes the secret into its answer.
#[derive(Clone, Copy, Debug)]
pub(super) enum Spelling {
    Plain,
    /// Every character of the secret as a `\u` escape.
    Unicode,
    /// Every `/` as `\/`.
    Slashes,
}

/// What the fake API answers, each time it is asked.
#[derive(Clone, Debug)]
pub(super) enum Answer {
    Success,
    /// An envelope with `success: false` and two errors, the first message
    /// long enough that the failure's message clips it near the secret.
    Refused(u16),
    NotAnEnvelope(u16),
    Fault(u8),
}

#[derive(Clone, Debug)]
pub(super) struct PlantedCase {
    pub(super) secret: String,
    pub(super) legacy: bool,
    /// The secret with text around it, as pasted into each place.
    pub(super) places: Vec<(Place, String)>,
    pub(super) answer: Answer,
    pub(super) spelling: Spelling,
    pub(super) filler: usize,
}

pub(super) fn planted_case() -> impl Strategy<Value = PlantedCase> {
    let answer = prop_oneof![
        2 => Just(Answer::Success),
        2 => select(&[200u16, 400, 403, 408, 429, 500, 503][..]).prop_map(Answer::Refused),
        1 => select(&[200u16, 502][..]).prop_map(Answer::NotAnEnvelope),
        1 => (0u8..4).prop_map(Answer::Fault),
    ];
    let around = (re("[a-z ]{0,50}"), re("[a-z]{0,4}"));
    (
        planted_secret(),
        any::<bool>(),
        vec((select(PLACES), around), 0..3),
        answer,
        select(&[Spelling::Plain, Spelling::Unicode, Spelling::Slashes][..]),
        prop_oneof![0usize..20, 230usize..300],
    )
        .prop_map(|(secret, legacy, places, answer, spelling, filler)| {
            let places = places
                .into_iter()
                .map(|(place, (before, after))| (place, format!("{before}{secret}{after}")))
                .collect();
            PlantedCase {
                secret,
                legacy,
                places,
                answer,
                spelling,
                filler,
            }
        })
}

pub(super) const UUIDS: [&str; 3] = [
    "f174e90a-fafe-4643-bbbc-4a0ed4fc8415",
    "0c4e2f1a-5b6d-4e7f-8a9b-0c1d2e3f4a5b",
    "9e7a3c2b-1d0e-4f5a-8b6c-7d8e9f0a1b2c",
];

/// The config and input of a case: a valid batch, then the secret pasted
/// into each of its places.
pub(super) fn planted_documents(case: &PlantedCase) -> (Value, Value) {
    let mut config = if case.legacy {
        json!({"api_email": "ops@example.com", "api_key": case.secret})
    } else {
        json!({"api_token": case.secret})
    };
    config["base_url"] = json!("http://127.0.0.1:8787/client/v4");
    config["max_retries"] = json!(1);
    let mut input = json!({
        "account_id": "0123456789abcdef0123456789abcdef",
        "deletes": [{"id": UUIDS[0]}],
        "patches": [{"id": UUIDS[1], "comments": "patched"}],
        "posts": [{"pattern": "a@example.com", "pattern_type": "EMAIL", "is_regex": false,
            "is_exempt_recipient": false, "is_trusted_sender": true,
            "is_acceptable_sender": false, "verify_sender": true, "comments": "new"}],
    });
    for (place, value) in &case.places {
        let post = &mut input["posts"][0];
        match place {
            Place::InputAccount => input["account_id"] = json!(value),
            Place::ConfigAccount => config["account_id"] = json!(value),
            Place::ConfigBaseUrl => config["base_url"] = json!(format!("{value}://example.com")),
            Place::UnknownConfigKey => config[value.as_str()] = json!(1),
            Place::UnknownInputKey => input[value.as_str()] = json!([]),
            Place::UnknownItemKey => post[value.as_str()] = json!(true),
            Place::PatternType => post["pattern_type"] = json!(value),
            Place::Pattern(kind, regex) => {
                post["pattern"] = json!(value);
                post["pattern_type"] = json!(kind);
                post["is_regex"] = json!(regex);
            }
            Place::Comments => post["comments"] = json!(value),
            Place::DeleteId => input["deletes"][0]["id"] = json!(value),
            Place::PatchId => input["patches"][0]["id"] = json!(value),
        }
    }
    (config, input)
}

/// The fake API's answer, with the secret in every string it can hold.
pub(super) fn planted_answer(case: &PlantedCase) -> Result<RawResponse, TransportFault> {
    let secret = &case.secret;
    let said = format!("token {secret} is not valid");
    let body = |status: u16, body: Value| (status, body.to_string());
    let (status, text) = match &case.answer {
        Answer::Success => body(
            200,
            json!({"success": true, "errors": [], "messages": [{"code": 1, "message": said}],
                "result": {"posts": [{"id": UUIDS[2], "pattern": secret, "comments": said}],
                    secret.as_str(): said}}),
        ),
        Answer::Refused(status) => body(
            *status,
            json!({"success": false, "messages": [], "result": null, "errors": [
                {"code": 10000, "message": format!("{}{secret} rejected", "x".repeat(case.filler)),
                 "source": {"pointer": format!("/posts/0/{secret}")},
                 "documentation_url": format!("https://developers.cloudflare.com/{secret}")},
                {"code": 10001, "message": said}]}),
        ),
        Answer::NotAnEnvelope(status) => (*status, format!("<html>{secret}</html>")),
        Answer::Fault(n) => {
            let detail = format!("connection to {secret} failed");
            return Err(match n {
                0 => TransportFault::Denied,
                1 => TransportFault::BeforeSend(detail),
                2 => TransportFault::AfterSend(detail),
                _ => TransportFault::Unsendable(detail),
            });
        }
    };
    let in_json = serde_json::to_string(secret).unwrap();
    let in_json = &in_json[1..in_json.len() - 1];
    let text = match case.spelling {
        Spelling::Plain => text,
        Spelling::Unicode => {
            let spelled: String = secret
                .encode_utf16()
                .map(|unit| format!("\\u{unit:04x}"))
                .collect();
            text.replace(in_json, &spelled)
        }
        // Outside strings a JSON text has no `/`.
        Spelling::Slashes => text.replace('/', "\\/"),
    };
    Ok(RawResponse {
        status,
        retry_after: None,
        body: text.into_bytes(),
        truncated: false,
        body_error: None,
    })
}

/// A transport that gives the same answer every time, on a virtual clock.
pub(super) struct Answering {
    pub(super) now_ms: u64,
    pub(super) answer: Result<RawResponse, TransportFault>,
}

impl Transport for Answering {
    fn monotonic_ms(&mut self) -> u64 {
        self.now_ms
    }
    fn unix_ms(&mut self) -> u64 {
        1_700_000_000_000 + self.now_ms
    }
    fn sleep_ms(&mut self, ms: u64) {
        self.now_ms += ms;
    }
    fn entropy(&mut self) -> u64 {
        0
    }
    fn send(&mut self, _: &ApiRequest, _: &AttemptLimits) -> Result<RawResponse, TransportFault> {
        self.now_ms += 5;
        self.answer.clone()
    }
}

/// [`PUBLIC_TEXTS`] in lower case, made once.
static PUBLIC_LOWER: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    PUBLIC_TEXTS
        .iter()
        .map(|t| t.to_ascii_lowercase())
        .collect()
});

/// Fails when `text` holds, in any case, a run of [`MIN_SECRET_CHARS`]
/// characters of the secret as given, JSON-escaped or pointer-escaped: a
/// clipped quote or a quoted label gives a secret away as surely as the
/// whole of it. Runs that a number could spell, or that `describe` shows
/// anyway, are not secret (see [`crate::run::redact`]).
pub(super) fn check_no_run(secret: &str, text: &str, what: &str) -> Result<(), TestCaseError> {
    let text = text.to_ascii_lowercase();
    let in_json = serde_json::to_string(secret).unwrap();
    let shapes = [
        secret.to_string(),
        in_json[1..in_json.len() - 1].to_string(),
        secret.replace('~', "~0").replace('/', "~1"),
    ];
    for shape in shapes {
        let chars: Vec<char> = shape.chars().collect();
        for run in chars.windows(MIN_SECRET_CHARS) {
            let run = run.iter().collect::<String>().to_ascii_lowercase();
            // Whether the run is public is asked only of a run found: the
            // public texts are long, and most runs are not in the output.
            let public =
                || run.bytes().all(is_number_byte) || PUBLIC_LOWER.iter().any(|t| t.contains(&run));
            prop_assert!(
                !text.contains(&run) || public(),
                "{} holds {:?}: {}",
                what,
                run,
                text
            );
        }
    }
    Ok(())
}

pub(super) fn check_error_hides(secret: &str, error: &TaskError) -> Result<(), TestCaseError> {
    match error {
        TaskError::InvalidConfig(problems) | TaskError::InvalidInput(problems) => {
            for p in problems {
                check_no_run(secret, &p.pointer, "a pointer")?;
                check_no_run(secret, &p.message, "a message")?;
            }
        }
        TaskError::Call(f) => {
            check_no_run(secret, &f.message, "the failure's message")?;
            for e in &f.api_errors {
                check_no_run(secret, &e.message, "an API error")?;
                for s in [&e.pointer, &e.documentation_url].into_iter().flatten() {
                    check_no_run(secret, s, "an API error")?;
                }
            }
        }
    }
    Ok(())
}

/// The document's text, and every string and key it decodes to.
pub(super) fn check_json_hides(secret: &str, text: &str) -> Result<(), TestCaseError> {
    fn walk(secret: &str, value: &Value) -> Result<(), TestCaseError> {
        match value {
            Value::String(s) => check_no_run(secret, s, "a string"),
            Value::Array(items) => items.iter().try_for_each(|v| walk(secret, v)),
            Value::Object(map) => map.iter().try_for_each(|(k, v)| {
                check_no_run(secret, k, "a key")?;
                walk(secret, v)
            }),
            _ => Ok(()),
        }
    }
    check_no_run(secret, text, "the document")?;
    let value: Value = serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
    walk(secret, &value)
}

/// What the component returns for a case: `prepare`'s error or preview,
/// then `run-task`'s failure or result, each redacted as the component
/// redacts it.
pub(super) fn check_planted(case: &PlantedCase) -> Result<(), TestCaseError> {
    let (config, input) = planted_documents(case);
    let (config_text, input_text) = (config.to_string(), input.to_string());
    let secrets = Secrets::from_config(&config_text);
    let secret = case.secret.as_str();
    let prepared = match prepare(&config_text, &input_text) {
        Ok(prepared) => prepared,
        Err(e) => return check_error_hides(secret, &secrets.redact_error(e)),
    };
    check_json_hides(secret, &secrets.redact_json(preview_json(&prepared)))?;
    let mut transport = Answering {
        now_ms: 0,
        answer: planted_answer(case),
    };
    match execute(&prepared, &mut transport) {
        Ok(done) => check_json_hides(
            secret,
            &secrets.redact_json(success_json(&prepared, &done, done.attempts)),
        ),
        Err(f) => check_error_hides(secret, &secrets.redact_error(TaskError::Call(f))),
    }
}

proptest! {
    #![proptest_config(cases(300))]

    /// A credential pasted anywhere else as well, or echoed by the API, is
    /// in nothing the component returns, in whole or in part.
    #[test]
    fn credentials_never_come_back(case in planted_case()) {
        check_planted(&case)?;
    }
}
