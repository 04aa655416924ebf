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
    /// The `config` document: the credentials, where to send, and how long
    /// and how often to try.
    Config,
    /// The `input` document: the account, and the batch's four arrays or a
    /// `sync`.
    Input,
}

/// One error or warning: where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The document `pointer` points into; shown as `config` or `input`.
    pub document: Document,
    /// RFC 6901 JSON Pointer; `""` is the whole document.
    pub pointer: String,
    /// What is wrong, worded to follow the pointer (`/posts/0/pattern:
    /// is not an email address: ...`).
    pub message: String,
    /// 0 for a problem; for the entry that closes a list cut short at
    /// [`MAX_LISTED`], how many problems it stands for. Its message says
    /// the same in words, so documents do not repeat it.
    #[serde(skip)]
    pub unlisted: usize,
}

impl Problem {
    /// A problem at `pointer` (RFC 6901 text) in `document`.
    pub fn new(document: Document, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            document,
            pointer: pointer.into(),
            message: message.into(),
            unlisted: 0,
        }
    }

    /// How many problems this entry counts for: 1, or for the closing
    /// entry of a list cut short, the problems it stands for.
    pub fn weight(&self) -> usize {
        self.unlisted.max(1)
    }
}

/// The most errors, and separately warnings, listed one by one. A document
/// with more (a million-item array, say) gets the first ones and a count of
/// the rest: enough to fix it, without a result that outgrows the task.
pub const MAX_LISTED: usize = 1000;

/// Errors block the call; warnings travel with the result.
#[derive(Debug, Default)]
pub struct Report {
    /// The errors listed so far, at most [`MAX_LISTED`];
    /// [`Report::error_count`] counts the rest as well.
    pub errors: Vec<Problem>,
    /// The warnings listed so far, at most [`MAX_LISTED`].
    pub warnings: Vec<Problem>,
    unlisted_errors: Unlisted,
    unlisted_warnings: Unlisted,
}

/// Problems past [`MAX_LISTED`]: how many, and the document of the first.
#[derive(Debug, Default)]
struct Unlisted {
    count: usize,
    document: Option<Document>,
}

impl Unlisted {
    fn note(&mut self, document: Document) {
        self.count += 1;
        self.document.get_or_insert(document);
    }

    fn summary(&self, what: &str) -> Option<Problem> {
        let document = self.document?;
        Some(Problem {
            document,
            pointer: String::new(),
            message: format!(
                "{} more {what} not listed (only the first {MAX_LISTED} are)",
                self.count
            ),
            unlisted: self.count,
        })
    }
}

impl Report {
    /// Records an error at `pointer` in `document`; past [`MAX_LISTED`]
    /// errors it is only counted. Any error stops the task before sending.
    pub fn error(&mut self, document: Document, pointer: &Pointer, message: impl Into<String>) {
        if self.errors.len() >= MAX_LISTED {
            self.unlisted_errors.note(document);
            return;
        }
        self.errors
            .push(Problem::new(document, pointer.0.clone(), message));
    }

    /// Records a warning at `pointer` in `document`; past [`MAX_LISTED`]
    /// warnings it is only counted. A warning does not stop the task.
    pub fn warn(&mut self, document: Document, pointer: &Pointer, message: impl Into<String>) {
        if self.warnings.len() >= MAX_LISTED {
            self.unlisted_warnings.note(document);
            return;
        }
        self.warnings
            .push(Problem::new(document, pointer.0.clone(), message));
    }

    /// Errors found so far, listed or not.
    pub fn error_count(&self) -> usize {
        self.errors.len() + self.unlisted_errors.count
    }

    /// The listed errors, then one line counting the rest.
    pub fn into_errors(mut self) -> Vec<Problem> {
        self.errors.extend(self.unlisted_errors.summary("problems"));
        self.errors
    }

    /// The listed warnings, then one line counting the rest.
    pub fn take_warnings(&mut self) -> Vec<Problem> {
        let mut warnings = std::mem::take(&mut self.warnings);
        warnings.extend(self.unlisted_warnings.summary("warnings"));
        warnings
    }
}

/// An RFC 6901 JSON Pointer, built one reference token at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pointer(String);

impl Pointer {
    /// The pointer to the whole document: the empty string.
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

    /// The pointer as RFC 6901 text, with `~` and `/` in keys escaped as
    /// `~0` and `~1`.
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
    fn problems_past_the_limit_are_counted_not_listed() {
        let mut report = Report::default();
        for i in 0..MAX_LISTED + 5 {
            report.error(Document::Input, &Pointer::root().index(i), "bad");
            report.warn(Document::Config, &Pointer::root().index(i), "odd");
        }
        assert_eq!(report.error_count(), MAX_LISTED + 5);
        let warnings = report.take_warnings();
        assert_eq!(warnings.len(), MAX_LISTED + 1);
        assert_eq!(
            warnings[MAX_LISTED - 1].pointer,
            format!("/{}", MAX_LISTED - 1)
        );
        let last = &warnings[MAX_LISTED];
        assert_eq!(
            (last.document, last.pointer.as_str()),
            (Document::Config, "")
        );
        assert!(
            last.message.starts_with("5 more warnings not listed"),
            "{}",
            last.message
        );
        let errors = report.into_errors();
        assert_eq!(errors.len(), MAX_LISTED + 1);
        assert!(errors[MAX_LISTED].message.starts_with("5 more problems"));
        assert_eq!(errors[MAX_LISTED].unlisted, 5);
        let counted: usize = errors.iter().map(Problem::weight).sum();
        assert_eq!(counted, MAX_LISTED + 5);
    }

    #[test]
    fn nothing_is_added_below_the_limit() {
        let mut report = Report::default();
        report.error(Document::Input, &Pointer::root(), "bad");
        assert_eq!(report.take_warnings(), vec![]);
        assert_eq!(report.into_errors().len(), 1);
    }

    #[test]
    fn root_pointer_is_empty() {
        assert_eq!(Pointer::root().as_str(), "");
    }
}
