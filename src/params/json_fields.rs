//! Reading untyped JSON field by field, so that every mistake becomes a
//! [`Problem`](crate::params::problems::Problem) instead of stopping the parse.

use crate::params::json_text;
use crate::params::problems::{Document, Pointer, Report};
use serde_json::{Map, Value};

/// How a value reads in a message: "a string", "null", ...
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `s` as a JSON string literal, cut to `max_chars` characters, for quoting
/// a (non-secret) value in a message with its control characters escaped.
pub fn quoted(s: &str, max_chars: usize) -> String {
    let cut = match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    };
    let mut text = serde_json::to_string(cut).unwrap_or_default();
    if cut.len() < s.len() {
        text.insert(text.len() - 1, '…');
    }
    text
}

/// The most text an input may have. The largest batch the API accepts
/// (4 × 1000 policies with the longest patterns and comments) is a fraction
/// of this.
pub const MAX_INPUT_BYTES: usize = 32 * 1024 * 1024;
/// The most text a config may have: a few short settings and a credential.
pub const MAX_CONFIG_BYTES: usize = 64 * 1024;
/// The most JSON values a document may hold. A parsed value takes many
/// times the memory of its text (`[0,0,…]` about sixteen times), so text
/// size alone does not bound a task's memory; the largest valid batch holds
/// about 60 000.
pub const MAX_VALUES: usize = 250_000;

/// Parses parameter text, reporting malformed JSON at the document root.
/// The parser's message carries a position, never the text itself, so a
/// secret in a broken config cannot leak through it. A document too large
/// to be a batch is refused before it is parsed.
pub fn parse_document(text: &str, document: Document, report: &mut Report) -> Option<Value> {
    let max_bytes = match document {
        Document::Config => MAX_CONFIG_BYTES,
        Document::Input => MAX_INPUT_BYTES,
    };
    if text.len() > max_bytes {
        report.error(
            document,
            &Pointer::root(),
            format!(
                "is too large: {} bytes, at most {max_bytes} are accepted",
                text.len()
            ),
        );
        return None;
    }
    if value_count_exceeds(text, MAX_VALUES) {
        report.error(
            document,
            &Pointer::root(),
            format!("is too large: more than {MAX_VALUES} JSON values, far more than any batch the API accepts"),
        );
        return None;
    }
    match json_text::parse(text) {
        Ok((value, repeated)) => {
            for at in repeated {
                report.error(
                    document,
                    &at,
                    "is given more than once in its object; give it once (only the last would count)",
                );
            }
            Some(value)
        }
        Err(e) => {
            report.error(
                document,
                &Pointer::root(),
                format!(
                    "is not valid JSON ({} at line {}, column {})",
                    syntax_error_kind(&e),
                    e.line(),
                    e.column()
                ),
            );
            None
        }
    }
}

fn syntax_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "unexpected end of input",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unexpected value",
        serde_json::error::Category::Io => "read error",
    }
}

/// Whether `text` holds more than `limit` JSON values, judged without
/// parsing: outside strings every value and key but the first follows a
/// `[`, `{`, `,` or `:`, so counting those gives an upper bound.
fn value_count_exceeds(text: &str, limit: usize) -> bool {
    let mut count = 1usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text.as_bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' | b',' | b':' => {
                count += 1;
                if count > limit {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The document's top-level object, or an error saying what it was instead.
pub fn expect_object<'v>(
    value: &'v Value,
    document: Document,
    at: &Pointer,
    report: &mut Report,
) -> Option<&'v Map<String, Value>> {
    match value {
        Value::Object(map) => Some(map),
        other => {
            report.error(
                document,
                at,
                format!("expected an object, got {}", type_name(other)),
            );
            None
        }
    }
}

/// Reports every key of `map` that is not in `known`, suggesting the
/// nearest known key: a typo must never be dropped silently.
pub fn reject_unknown_keys(
    map: &Map<String, Value>,
    known: &[&str],
    document: Document,
    at: &Pointer,
    report: &mut Report,
) {
    for key in map.keys() {
        if known.contains(&key.as_str()) {
            continue;
        }
        let message = match nearest(key, known) {
            Some(near) => format!("unknown field; did you mean \"{near}\"?"),
            None => format!("unknown field; expected one of {}", known.join(", ")),
        };
        report.error(document, &at.key(key), message);
    }
}

/// The known name closest to a misspelt one, when it is close enough to be
/// a plausible typo (edit distance at most a third of its length, and 3),
/// or is a shortened or lengthened form of it (`timeout` for `timeout_ms`).
fn nearest<'k>(key: &str, known: &[&'k str]) -> Option<&'k str> {
    let key = key.to_ascii_lowercase();
    let chars = key.chars().count();
    let limit = (chars / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| {
            let affix = key.len() >= 3 && (k.starts_with(key.as_str()) || key.starts_with(k));
            // The distance is at least the difference in length: a key far
            // longer than any known one costs nothing to rule out.
            let distance = if affix {
                1
            } else if chars.abs_diff(k.len()) > limit {
                usize::MAX
            } else {
                edit_distance(&key, k)
            };
            (distance, *k)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// A field read from an object: absent, or present with a value.
pub struct Field<'v, 'p> {
    parent: &'p Pointer,
    name: &'p str,
    /// The member's value; `None` when the key is absent. A `null` is
    /// `Some(Value::Null)`, so absent and `null` stay apart.
    pub value: Option<&'v Value>,
}

/// Member `name` of `map`, the object at `parent`. Reports nothing itself:
/// [`Field::boolean`], [`Field::string`], [`Field::integer`] and
/// [`Field::required`] report what is wrong with it.
pub fn field<'v, 'p>(
    map: &'v Map<String, Value>,
    name: &'p str,
    parent: &'p Pointer,
) -> Field<'v, 'p> {
    Field {
        parent,
        name,
        value: map.get(name),
    }
}

impl<'v> Field<'v, '_> {
    /// Where the field is. Built only when a problem needs it: a valid
    /// batch has thousands of fields and no problems.
    pub fn at(&self) -> Pointer {
        self.parent.key(self.name)
    }

    /// Whether the key is in the object, with any value, `null` included.
    pub fn present(&self) -> bool {
        self.value.is_some()
    }

    /// The value as a boolean. `None` when the field is absent (nothing is
    /// reported) or is not a boolean (an error is reported at the field).
    pub fn boolean(&self, document: Document, report: &mut Report) -> Option<bool> {
        match self.value? {
            Value::Bool(b) => Some(*b),
            other => {
                report.error(
                    document,
                    &self.at(),
                    format!("expected a boolean, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The value as a string. `None` when the field is absent (nothing is
    /// reported) or is not a string (an error is reported at the field).
    pub fn string(&self, document: Document, report: &mut Report) -> Option<&'v str> {
        match self.value? {
            Value::String(s) => Some(s),
            other => {
                report.error(
                    document,
                    &self.at(),
                    format!("expected a string, got {}", type_name(other)),
                );
                None
            }
        }
    }

    /// An integer in `min..=max`; fractions and numeric strings are errors.
    pub fn integer(
        &self,
        min: u64,
        max: u64,
        document: Document,
        report: &mut Report,
    ) -> Option<u64> {
        let value = self.value?;
        match value.as_u64() {
            Some(n) if (min..=max).contains(&n) => Some(n),
            Some(n) => {
                report.error(
                    document,
                    &self.at(),
                    format!("expected an integer from {min} to {max}, got {n}"),
                );
                None
            }
            None => {
                let got = match value {
                    Value::Number(n) => n.to_string(),
                    other => type_name(other).to_string(),
                };
                report.error(
                    document,
                    &self.at(),
                    format!("expected an integer from {min} to {max}, got {got}"),
                );
                None
            }
        }
    }

    /// Reports the field as missing when it is absent.
    pub fn required(self, document: Document, report: &mut Report) -> Option<Self> {
        if self.value.is_none() {
            report.error(document, &self.at(), "required field is missing");
            return None;
        }
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_count_is_bounded_from_above_and_ignores_strings() {
        // 1 + two per member: `{"a":1,"b":[2,3]}` holds 4 values and 2 keys.
        assert!(!value_count_exceeds(r#"{"a":1,"b":[2,3]}"#, 7));
        assert!(value_count_exceeds(r#"{"a":1,"b":[2,3]}"#, 6));
        assert!(!value_count_exceeds(r#""[,:{[,\",,,""#, 1));
        assert!(value_count_exceeds("[0,0,0]", 2));
    }

    #[test]
    fn a_member_given_twice_is_an_error_at_its_pointer() {
        let mut r = Report::default();
        let text = r#"{"posts":[{"id":1}],"deletes":[{"id":2,"id":3}],"posts":[]}"#;
        let value = parse_document(text, Document::Input, &mut r).unwrap();
        assert_eq!(value["posts"], serde_json::json!([]));
        let at: Vec<_> = r.errors.iter().map(|p| p.pointer.as_str()).collect();
        assert_eq!(at, ["/deletes/0/id", "/posts"]);
        assert!(r.errors[0].message.contains("more than once"));
    }

    #[test]
    fn documents_too_large_to_be_a_batch_are_refused_before_parsing() {
        let mut r = Report::default();
        let many = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(many.len() < MAX_INPUT_BYTES);
        assert_eq!(parse_document(&many, Document::Input, &mut r), None);
        let long = format!("{{\"api_token\":\"{}\"}}", "t".repeat(MAX_CONFIG_BYTES));
        assert_eq!(parse_document(&long, Document::Config, &mut r), None);
        let problems: Vec<_> = r
            .errors
            .iter()
            .map(|p| (p.document, p.pointer.as_str()))
            .collect();
        assert_eq!(
            problems,
            [(Document::Input, ""), (Document::Config, "")],
            "{:?}",
            r.errors
        );
        assert!(r.errors[0].message.contains("more than 250000 JSON values"));
        assert!(r.errors[1].message.contains("at most 65536"));
        assert!(
            !r.errors[1].message.contains("ttt"),
            "never echoes the text"
        );
    }
    use serde_json::json;

    #[test]
    fn unknown_key_suggests_nearest() {
        let v = json!({"patern": "x", "zzzzzzzz": 1});
        let mut r = Report::default();
        reject_unknown_keys(
            v.as_object().unwrap(),
            &["pattern", "pattern_type"],
            Document::Input,
            &Pointer::root().key("posts").index(0),
            &mut r,
        );
        assert_eq!(r.errors.len(), 2);
        assert_eq!(r.errors[0].pointer, "/posts/0/patern");
        assert!(r.errors[0].message.contains("did you mean \"pattern\""));
        assert_eq!(r.errors[1].pointer, "/posts/0/zzzzzzzz");
        assert!(r.errors[1]
            .message
            .contains("expected one of pattern, pattern_type"));
    }

    #[test]
    fn integer_rejects_fraction_string_and_range() {
        let v = json!({"a": 1.5, "b": "3", "c": 11, "d": 7});
        let m = v.as_object().unwrap();
        let mut r = Report::default();
        let root = Pointer::root();
        assert_eq!(
            field(m, "a", &root).integer(0, 10, Document::Config, &mut r),
            None
        );
        assert_eq!(
            field(m, "b", &root).integer(0, 10, Document::Config, &mut r),
            None
        );
        assert_eq!(
            field(m, "c", &root).integer(0, 10, Document::Config, &mut r),
            None
        );
        assert_eq!(
            field(m, "d", &root).integer(0, 10, Document::Config, &mut r),
            Some(7)
        );
        let msgs: Vec<_> = r
            .errors
            .iter()
            .map(|p| (p.pointer.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            msgs,
            vec![
                ("/a", "expected an integer from 0 to 10, got 1.5"),
                ("/b", "expected an integer from 0 to 10, got a string"),
                ("/c", "expected an integer from 0 to 10, got 11"),
            ]
        );
    }

    #[test]
    fn malformed_json_is_reported_without_echoing_text() {
        let mut r = Report::default();
        assert!(parse_document("{\"api_token\": \"s3cret", Document::Config, &mut r).is_none());
        assert_eq!(r.errors[0].pointer, "");
        assert!(r.errors[0].message.starts_with("is not valid JSON"));
        assert!(!r.errors[0].message.contains("s3cret"));
    }

    #[test]
    fn a_very_long_unknown_key_gets_no_suggestion() {
        let long = "x".repeat(1_000_000);
        assert_eq!(nearest(&long, &["pattern", "comments"]), None);
        assert_eq!(nearest("patern", &["pattern", "comments"]), Some("pattern"));
        assert_eq!(
            nearest("coments", &["pattern", "comments"]),
            Some("comments")
        );
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
