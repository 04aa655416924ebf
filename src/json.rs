//! Reading untyped JSON field by field, so that every mistake becomes a
//! [`Problem`](crate::problems::Problem) instead of stopping the parse.

use crate::problems::{Document, Pointer, Report};
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

/// Parses parameter text, reporting malformed JSON at the document root.
/// The parser's message carries a position, never the text itself, so a
/// secret in a broken config cannot leak through it.
pub fn parse_document(text: &str, document: Document, report: &mut Report) -> Option<Value> {
    match serde_json::from_str::<Value>(text) {
        Ok(value) => Some(value),
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
    let limit = (key.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| {
            let affix = key.len() >= 3 && (k.starts_with(key.as_str()) || key.starts_with(k));
            let distance = if affix { 1 } else { edit_distance(&key, k) };
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
pub struct Field<'v> {
    pub at: Pointer,
    pub value: Option<&'v Value>,
}

pub fn field<'v>(map: &'v Map<String, Value>, name: &str, parent: &Pointer) -> Field<'v> {
    Field {
        at: parent.key(name),
        value: map.get(name),
    }
}

impl<'v> Field<'v> {
    pub fn present(&self) -> bool {
        self.value.is_some()
    }

    pub fn boolean(&self, document: Document, report: &mut Report) -> Option<bool> {
        match self.value? {
            Value::Bool(b) => Some(*b),
            other => {
                report.error(
                    document,
                    &self.at,
                    format!("expected a boolean, got {}", type_name(other)),
                );
                None
            }
        }
    }

    pub fn string(&self, document: Document, report: &mut Report) -> Option<&'v str> {
        match self.value? {
            Value::String(s) => Some(s),
            other => {
                report.error(
                    document,
                    &self.at,
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
                    &self.at,
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
                    &self.at,
                    format!("expected an integer from {min} to {max}, got {got}"),
                );
                None
            }
        }
    }

    /// Reports the field as missing when it is absent.
    pub fn required(self, document: Document, report: &mut Report) -> Option<Self> {
        if self.value.is_none() {
            report.error(document, &self.at, "required field is missing");
            return None;
        }
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
