//! Problems found in the parameters, collected rather than thrown.
//!
//! Validation never stops at the first mistake: a workflow author fixes a
//! whole definition in one go only if every problem is reported at once, each
//! named by a JSON Pointer into the document it was found in.

use serde::Serialize;

/// Which parameter document a problem points into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Document {
    Config,
    Input,
}

/// One error or warning: where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub document: Document,
    /// RFC 6901 JSON Pointer; `""` is the whole document.
    pub pointer: String,
    pub message: String,
}

/// Errors block the call; warnings travel with the result.
#[derive(Debug, Default)]
pub struct Report {
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

impl Report {
    pub fn error(&mut self, document: Document, pointer: &Pointer, message: impl Into<String>) {
        self.errors.push(Problem {
            document,
            pointer: pointer.0.clone(),
            message: message.into(),
        });
    }

    pub fn warn(&mut self, document: Document, pointer: &Pointer, message: impl Into<String>) {
        self.warnings.push(Problem {
            document,
            pointer: pointer.0.clone(),
            message: message.into(),
        });
    }
}

/// An RFC 6901 JSON Pointer, built one reference token at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    pub fn root() -> Self {
        Pointer(String::new())
    }

    /// The pointer to member `key` of the value this pointer names.
    pub fn key(&self, key: &str) -> Self {
        let mut s = String::with_capacity(self.0.len() + key.len() + 1);
        s.push_str(&self.0);
        s.push('/');
        for c in key.chars() {
            match c {
                '~' => s.push_str("~0"),
                '/' => s.push_str("~1"),
                c => s.push(c),
            }
        }
        Pointer(s)
    }

    /// The pointer to element `index` of the array this pointer names.
    pub fn index(&self, index: usize) -> Self {
        Pointer(format!("{}/{}", self.0, index))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_escapes_tilde_and_slash() {
        let p = Pointer::root().key("a/b").key("m~n").index(3);
        assert_eq!(p.as_str(), "/a~1b/m~0n/3");
    }

    #[test]
    fn root_pointer_is_empty() {
        assert_eq!(Pointer::root().as_str(), "");
    }
}
