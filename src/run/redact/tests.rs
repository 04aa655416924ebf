use super::*;
use crate::api::outcome::{ApiError, FailureKind, Verification};
use crate::params::problems::{Document, Pointer};
use crate::run::documents::preview_json;
use crate::run::prepare::prepare;
use serde_json::json;

const SECRET: &str = "cfTOKENabcdefghijklmnopqrstuvwxyz0123";
const ACCOUNT: &str = "0123456789abcdef0123456789abcdef";

fn secrets() -> Secrets {
    Secrets::new([SECRET])
}

/// Every run of `WINDOW` bytes of the secret's plain, JSON and pointer
/// shapes that `text` still holds.
fn runs_left(secret: &str, text: &str) -> Vec<String> {
    let mut left = Vec::new();
    for shape in [
        secret.to_string(),
        json_escaped(secret),
        pointer_escaped(secret),
    ] {
        for run in shape.as_bytes().windows(WINDOW) {
            let run = String::from_utf8_lossy(run);
            if text.contains(&*run) {
                left.push(run.into_owned());
            }
        }
    }
    left
}

#[test]
fn secrets_shorter_than_eight_characters_are_left_alone() {
    let s = Secrets::new(["abc1234", ""]);
    assert!(s.is_empty());
    assert!(matches!(s.redact("abc1234 is here"), Cow::Borrowed(_)));
    let s = Secrets::new(["abcd1234"]);
    assert_eq!(s.redact("x abcd1234 y"), "x [redacted] y");
    // Characters, not bytes: eight of them, however many bytes they take.
    assert!(Secrets::new(["ééééééé"]).is_empty());
    assert!(!Secrets::new(["éééééééé"]).is_empty());
}

#[test]
fn text_without_a_secret_is_borrowed() {
    let s = secrets();
    let text = "expected 32 lowercase hexadecimal characters";
    assert!(matches!(s.redact(text), Cow::Borrowed(t) if t == text));
    assert!(matches!(s.redact(""), Cow::Borrowed("")));
}

#[test]
fn every_shape_of_a_secret_is_redacted() {
    let secret = r#"tok/en~with"quote\and-more"#;
    let s = Secrets::new([secret]);
    let quoted = crate::params::json_fields::quoted(secret, 60);
    let pointer = Pointer::root().key("posts").key(secret);
    let texts = [
        format!("got {secret} here"),
        format!("expected one of EMAIL, DOMAIN, IP, got {quoted}"),
        pointer.as_str().to_string(),
        serde_json::to_string(&quoted).unwrap(),
    ];
    for text in texts {
        let out = s.redact(&text);
        assert!(out.contains(REDACTED), "{text} -> {out}");
        assert_eq!(
            runs_left(secret, &out),
            Vec::<String>::new(),
            "{text} -> {out}"
        );
    }
    assert_eq!(s.redact(&quoted), "\"[redacted]\"");
    assert_eq!(s.redact(pointer.as_str()), "/posts/[redacted]");
}

#[test]
fn a_secret_cut_off_by_a_clipped_quote_is_redacted() {
    let s = secrets();
    let clipped = crate::params::json_fields::quoted(&format!("id {SECRET}"), 20);
    assert_eq!(clipped, "\"id cfTOKENabcdefghij…\"");
    assert_eq!(s.redact(&clipped), "\"id [redacted]…\"");
    // A tail, as a message quoting the part after a separator shows it.
    assert_eq!(
        s.redact("the prefix length \"mnopqrstuvwxyz0123\" after /"),
        "the prefix length \"[redacted]\" after /"
    );
    // Seven characters of it are not enough to tell.
    assert_eq!(s.redact("cfTOKEN…"), "cfTOKEN…");
}

#[test]
fn fragments_the_validators_quote_are_redacted() {
    // A secret with `/` and `.` pasted as an IP or a domain pattern: the
    // checks quote the part after the slash, or one label.
    let secret = "AbCdEfGh.IjKlMnOp/QrStUvWx_YzAbCdEf";
    let config = json!({"api_token": secret, "account_id": ACCOUNT}).to_string();
    let input = json!({"posts": [
        {"pattern": secret, "pattern_type": "IP", "is_regex": false, "is_exempt_recipient": false,
         "is_trusted_sender": false, "is_acceptable_sender": false, "verify_sender": false},
        {"pattern": secret, "pattern_type": "DOMAIN", "is_regex": false, "is_exempt_recipient": false,
         "is_trusted_sender": false, "is_acceptable_sender": false, "verify_sender": false},
    ]})
    .to_string();
    let error = prepare(&config, &input).unwrap_err();
    let TaskError::InvalidInput(quoted) = &error else {
        panic!("expected invalid input: {error:?}")
    };
    // What makes searching for the whole secret not enough.
    assert!(
        quoted
            .iter()
            .any(|p| !p.message.contains(secret) && !runs_left(secret, &p.message).is_empty()),
        "{quoted:?}"
    );
    let s = Secrets::from_config(&config);
    let TaskError::InvalidInput(problems) = s.redact_error(error) else {
        panic!("expected invalid input")
    };
    assert!(!problems.is_empty());
    for p in &problems {
        assert_eq!(runs_left(secret, &p.message), Vec::<String>::new(), "{p:?}");
        assert_eq!(runs_left(secret, &p.pointer), Vec::<String>::new(), "{p:?}");
    }
}

#[test]
fn non_ascii_secrets_are_cut_at_character_boundaries() {
    let secret = "пароль-секрет-очень-длинный";
    let s = Secrets::new([secret]);
    let clipped = crate::params::json_fields::quoted(&format!("é{secret}"), 9);
    let out = s.redact(&clipped);
    assert_eq!(out, "\"é[redacted]…\"");
    assert!(!s.found_in(&out));
}

#[test]
fn text_put_in_cannot_complete_a_secret() {
    // After the first round "[redacted]XYZW" ends in a run of the secret.
    let s = Secrets::new(["ted]XYZWabcdefgh"]);
    let out = s.redact("abcdefghXYZW");
    assert!(!s.found_in(&out), "{out}");
    assert_eq!(out, "[redac[redacted]");
    // A secret holding the placeholder's text still leaves it readable.
    let s = Secrets::new(["my-redacted-token-99"]);
    assert_eq!(s.redact("a my-redacted-token-99 b"), "a [redacted] b");
    assert_eq!(s.redact("[redacted]"), "[redacted]");
}

#[test]
fn debug_shows_no_secret() {
    let text = format!("{:?}", secrets());
    assert!(!text.contains("cfTOKEN"), "{text}");
}

#[test]
fn credentials_are_read_from_any_config_text() {
    let found = |config: &str, secret: &str| Secrets::from_config(config).found_in(secret);
    let cases = [
        (r#"{"api_token":"tokenAAAA1"}"#, "tokenAAAA1"),
        (
            r#"{"api_email":"a@b.c","api_key":"keyBBBBB22"}"#,
            "keyBBBBB22",
        ),
        // Both values of a repeated key, though only the last counts.
        (r#"{"api_key":"firstCCC33","api_key":"x"}"#, "firstCCC33"),
        (r#"{"api\u005ftoken":"escapedD44"}"#, "escapedD44"),
        (r#"{"api_token":"beforeEE55","x":}"#, "beforeEE55"),
        (r#"{"api_token":"beforeFF66"} trailing"#, "beforeFF66"),
        (r#"{"x": 1, "api_token" : "cutOffGG77"#, "cutOffGG77"),
        (
            r#"{"api_token":"validHH88","max_retries":"many"}"#,
            "validHH88",
        ),
    ];
    for (config, secret) in cases {
        assert!(found(config, secret), "{config}");
    }
    let deep = format!(
        r#"{{"x":{}{},"api_token":"deepIIII99"}}"#,
        "[".repeat(300),
        "]".repeat(300)
    );
    assert!(found(&deep, "deepIIII99"));
    for nothing in [
        r#"{"x":{"api_token":"nestedJJ00"}}"#,
        r#""api_token""#,
        "[1,2]",
        "",
        r#"{"api_token":42}"#,
    ] {
        assert!(Secrets::from_config(nothing).is_empty(), "{nothing}");
    }
}

#[test]
fn a_document_without_a_secret_is_returned_as_it_is() {
    let s = secrets();
    let json = r#"{"pattern":"^.*\\.example\\.com$","n":1.50,"b":[true,null]}"#.to_string();
    let at = json.as_ptr();
    let out = s.redact_json(json);
    assert_eq!(out.as_ptr(), at, "copied although clean");
    // `\u` escapes are decoded to be sure, and still kept.
    let json = r#"{"c":"\u00e9\/x","a":2}"#.to_string();
    assert_eq!(s.redact_json(json.clone()), json);
    assert_eq!(Secrets::new([""; 0]).redact_json(json.clone()), json);
}

#[test]
fn strings_and_keys_are_redacted_and_the_rest_kept() {
    let s = secrets();
    let json = format!(
        r#"{{"z": 1.50, "a":"x {SECRET} y", "{SECRET}":[1e3,"\u0041"],"c":"\/p","m":"cut {}…"}}"#,
        &SECRET[..12]
    );
    assert_eq!(
        s.redact_json(json),
        r#"{"z": 1.50, "a":"x [redacted] y", "[redacted]":[1e3,"\u0041"],"c":"\/p","m":"cut [redacted]…"}"#
    );
}

#[test]
fn secrets_behind_escapes_are_found() {
    let s = secrets();
    let spelled: String = SECRET
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let out = s.redact_json(format!(r#"{{"message":"bad token {spelled}"}}"#));
    assert_eq!(out, r#"{"message":"bad token [redacted]"}"#);

    let secret = "with/slashes/in/it";
    let s = Secrets::new([secret]);
    let out = s.redact_json(r#"{"m":"with\/slashes\/in\/it"}"#.to_string());
    assert_eq!(out, r#"{"m":"[redacted]"}"#);

    let secret = r#"quote"and\backslash"#;
    let s = Secrets::new([secret]);
    let json =
        json!({ "m": secret, "q": crate::params::json_fields::quoted(secret, 10) }).to_string();
    let out = s.redact_json(json);
    assert_eq!(out, r#"{"m":"[redacted]","q":"\"[redacted]…\""}"#);
}

#[test]
fn a_literal_whose_escapes_spell_a_secret_is_replaced_whole() {
    // The content `ab"cdefgh` is no secret, but its text `ab\"cdefgh` is.
    let s = Secrets::new([r#"ab\"cdefgh"#]);
    let out = s.redact_json(json!({ "m": "ab\"cdefgh" }).to_string());
    assert_eq!(out, r#"{"m":"[redacted]"}"#);
}

#[test]
fn numbers_are_never_turned_into_strings() {
    // A credential that is a number is refused by the config; one with
    // digits in it is still found by its other runs, in strings.
    let s = Secrets::new(["1234567890123"]);
    assert!(s.is_empty());
    let s = Secrets::new(["ab1234567890cd"]);
    let json = r#"{"id":1234567890,"n":-1.5e+10,"m":"token AB1234567890cd"}"#;
    assert_eq!(
        s.redact_json(json.to_string()),
        r#"{"id":1234567890,"n":-1.5e+10,"m":"token [redacted]"}"#
    );
    // Of a stretch of more than seven digits at its end, a part shows.
    let s = Secrets::new(["ab1234567890123"]);
    assert_eq!(s.redact("ab1234567890123"), "[redacted]890123");
    let s = Secrets::new(["1.5e+10-3E9"]);
    assert!(s.is_empty());
}

#[test]
fn secrets_spanning_tokens_are_caught() {
    let s = Secrets::new([r#"x","y":"z"#]);
    let out = s.redact_json(r#"{"k":"x","y":"z"}"#.to_string());
    assert_eq!(out, r#""[redacted]""#);
}

#[test]
fn letters_match_in_either_case() {
    let s = Secrets::new(["SekretToken-abcdef"]);
    for quoted in [
        "SEKRETTOKEN-ABCDEF",
        "sekrettoken-abcdef",
        "sEkReTtOkEn-AbCdEf",
    ] {
        assert_eq!(s.redact(&format!("got {quoted}!")), "got [redacted]!");
    }
    // Only ASCII letters fold: other bytes match as they are.
    let s = Secrets::new(["пароль-секрет-x"]);
    assert_eq!(s.redact("ПАРОЛЬ-СЕКРЕТ-X"), "ПАРОЛЬ-СЕКРЕТ-X");
    assert_eq!(s.redact("пароль-секрет-X"), "[redacted]");
    // Folding never turns a byte that is no letter into one.
    for b in 0..=u8::MAX {
        let folded = fold_case(u64::from(b)) as u8;
        assert_eq!(folded, b.to_ascii_lowercase(), "{b:#x}");
    }
    let word = u64::from_le_bytes(*b"A@Z[az`{");
    assert_eq!(fold_case(word).to_le_bytes(), *b"a@z[az`{");
}

#[test]
fn what_describe_shows_is_never_redacted() {
    // Words of the schema (a kind, a member name) are public: a credential
    // that holds one leaves it readable, and the document valid.
    let s = Secrets::new(["xx-bad_response-invalid_config-yy"]);
    let json = r#"{"error":{"kind":"invalid_config","message":"bad_response"}}"#;
    assert_eq!(s.redact_json(json.to_string()), json);
    let quoted = s.redact("got xx-bad_response-invalid_config-yy");
    assert!(quoted.starts_with("got [redacted]"), "{quoted}");
    assert!(!s.found_in(&quoted), "{quoted}");
    // A credential made only of public words has nothing left to find.
    let public = Secrets::new(["first_sent_unix_ms"]);
    assert_eq!(
        public.redact("first_sent_unix_ms: null"),
        "first_sent_unix_ms: null"
    );
    assert!(!public.found_in("first_sent_unix_ms"));
}

#[test]
fn a_preview_keeps_its_shape() {
    let config = json!({"api_token": SECRET, "account_id": ACCOUNT}).to_string();
    let input =
        json!({"posts": [{"pattern": "a@example.com", "pattern_type": "EMAIL", "is_regex": false,
        "is_exempt_recipient": false, "is_trusted_sender": true, "is_acceptable_sender": false,
        "verify_sender": true, "comments": format!("pasted {SECRET} by mistake")}]})
        .to_string();
    let prepared = prepare(&config, &input).unwrap();
    let preview = preview_json(&prepared);
    assert!(preview.contains(SECRET));
    let out = Secrets::from_config(&config).redact_json(preview);
    assert!(!out.contains("cfTOKENab"), "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["request"]["body"]["posts"][0]["comments"],
        "pasted [redacted] by mistake"
    );
    assert_eq!(v["request"]["headers"]["Authorization"], REDACTED);
    assert!(v["request"]["url"].as_str().unwrap().contains(ACCOUNT));
}

#[test]
fn every_string_of_an_error_is_redacted() {
    let s = secrets();
    let problem = Problem::new(
        Document::Input,
        format!("/{SECRET}"),
        format!("unknown field {SECRET}"),
    );
    let e = s.redact_error(TaskError::InvalidConfig(vec![problem.clone()]));
    let TaskError::InvalidConfig(problems) = e else {
        panic!("{e:?}")
    };
    assert_eq!(problems[0].pointer, "/[redacted]");
    assert_eq!(problems[0].message, "unknown field [redacted]");
    assert_eq!(problems[0].document, Document::Input);

    let failure = Failure {
        kind: FailureKind::Api,
        message: format!("HTTP 403: token {SECRET} is invalid"),
        retryable: false,
        may_have_applied: false,
        status: Some(403),
        retry_after_ms: None,
        api_errors: vec![ApiError {
            code: Some(10000),
            message: format!("token {SECRET}"),
            pointer: Some(format!("/{SECRET}")),
            documentation_url: Some(format!("https://example.com/{SECRET}")),
        }],
        attempts: 1,
        verification: Verification::NotNeeded,
        first_sent_unix_ms: None,
        api_calls: 1,
    };
    let TaskError::Call(f) = s.redact_error(TaskError::Call(failure.clone())) else {
        panic!("a call failure stays one")
    };
    assert_eq!(f.message, "HTTP 403: token [redacted] is invalid");
    assert_eq!(
        f.api_errors,
        vec![ApiError {
            code: Some(10000),
            message: "token [redacted]".into(),
            pointer: Some("/[redacted]".into()),
            documentation_url: Some("https://example.com/[redacted]".into()),
        }]
    );
    assert_eq!(
        (f.kind, f.status, f.attempts),
        (failure.kind, failure.status, failure.attempts)
    );
    // Nothing to redact: the error is passed through as it was.
    let clean = TaskError::InvalidInput(vec![problem.clone()]);
    assert_eq!(Secrets::new([""; 0]).redact_error(clean.clone()), clean);
}

#[test]
fn escapes_that_can_hide_a_secret_are_found_anywhere() {
    for at in 0..20 {
        for escape in ["\\u0041", "\\/"] {
            let text = format!("{}{escape}{}", "a".repeat(at), "b".repeat(20 - at));
            assert!(has_hiding_escape(text.as_bytes()), "{text}");
        }
        let plain = format!("{}\\n\\\\{}", "a".repeat(at), "b".repeat(20 - at));
        assert!(!has_hiding_escape(plain.as_bytes()), "{plain}");
    }
    // An escape split across two words.
    assert!(has_hiding_escape(b"1234567\\u0041"));
    assert!(!has_hiding_escape(b"12345678\\"));
}
