//! The one way the hosts print: every line `task-host`, the Conductor
//! worker, the Temporal worker, the demo and the fake API write to stdout
//! or stderr goes through here, and is redacted on the way with every
//! secret the process knows.
//!
//! A process tells this module its secrets as it learns them (the config's
//! and the environment's Cloudflare credentials at start, a Conductor
//! access key's secret when a client is given one, each session token as
//! the server grants it, the Temporal API key) with [`keep_secret`]; the
//! search is the component's own ([`Secrets`]), so what a host prints is
//! redacted exactly as what the component returns. A secret is searched
//! for from the moment it is kept until the process ends.
//!
//! Lines are written with [`say!`](crate::say) (stderr) and
//! [`stdout_document`] / [`stdout_text`] (stdout). Nothing else in the
//! hosts' sources writes to either stream: a test reads those sources and
//! fails on a `println!` or `eprintln!` outside this file.
//!
//! A write that fails (a closed pipe) is ignored rather than panicking as
//! `println!` does: the process's outcome is its exit status.

use std::io::Write as _;
use std::sync::{Arc, RwLock};

use allow_policies_batch::run::redact::Secrets;

/// The secrets this process knows: their texts, and the search built from
/// them, rebuilt when one is added (rare: at start, and once per session
/// token).
struct Known {
    texts: Vec<String>,
    search: Arc<Secrets>,
}

static KNOWN: RwLock<Option<Known>> = RwLock::new(None);

/// Adds `secret` to what this process never prints. Empty and repeated
/// texts are ignored, and so (as by the component) are texts shorter than
/// [`allow_policies_batch::config::MIN_SECRET_CHARS`].
pub fn keep_secret(secret: &str) {
    if secret.is_empty() {
        return;
    }
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(|| Known {
        texts: Vec::new(),
        search: Arc::new(Secrets::new(std::iter::empty::<&str>())),
    });
    if known.texts.iter().any(|t| t == secret) {
        return;
    }
    known.texts.push(secret.to_string());
    known.search = Arc::new(Secrets::new(&known.texts));
}

/// [`keep_secret`] for each of `secrets`.
pub fn keep_secrets<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    for secret in secrets {
        keep_secret(secret.as_ref());
    }
}

/// The value of each environment variable of `names` that is set: the
/// variables through which a process is given a secret.
pub fn keep_secrets_of_environment(names: &[&str]) {
    for name in names {
        if let Ok(value) = std::env::var(name) {
            keep_secret(&value);
        }
    }
}

/// The search for every secret kept so far.
pub fn known_secrets() -> Arc<Secrets> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    match known.as_ref() {
        Some(known) => known.search.clone(),
        None => Arc::new(Secrets::new(std::iter::empty::<&str>())),
    }
}

/// `text` with every secret this process knows replaced by `[redacted]`.
pub fn shown(text: &str) -> String {
    known_secrets().redact(text).into_owned()
}

/// Writes one line to stderr, redacted. Use [`say!`](crate::say).
pub fn stderr_line(line: &str) {
    let line = shown(line);
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

/// Writes a JSON document as one line to stdout, every string and key of
/// it redacted and the document otherwise as it was.
pub fn stdout_document(document: String) {
    let document = known_secrets().redact_json(document);
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{document}");
    let _ = stdout.flush();
}

/// Writes a JSON document the host built itself (a summary, an address)
/// as one line to stdout: its keys are the host's own words and are kept
/// as they are, so its shape never changes; every string value is
/// redacted.
pub fn stdout_host_document(mut document: serde_json::Value) {
    redact_string_values(&mut document, &known_secrets());
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{document}");
    let _ = stdout.flush();
}

fn redact_string_values(value: &mut serde_json::Value, secrets: &Secrets) {
    use serde_json::Value;
    match value {
        Value::String(text) => {
            if let std::borrow::Cow::Owned(redacted) = secrets.redact(text) {
                *text = redacted;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| redact_string_values(v, secrets)),
        Value::Object(members) => members
            .values_mut()
            .for_each(|v| redact_string_values(v, secrets)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// `text` with its control characters escaped as Rust writes them (`\n`,
/// `\u{1b}`), so that text from elsewhere (a guest's stderr) cannot move
/// a terminal's cursor or end a line of its own.
pub fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

/// Writes `text` to stdout as it is (no line end is added), redacted: a
/// report or the help, which are not JSON.
pub fn stdout_text(text: &str) {
    let text = shown(text);
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// A panic's message goes to stderr redacted, like every other line: it
/// may quote a value that holds a secret.
pub fn redact_panics() {
    std::panic::set_hook(Box::new(|info| {
        stderr_line(&format!("{info}"));
    }));
}

/// Writes one line to stderr through [`printing`](crate::printing): the
/// arguments are those of `format!`, and every secret the process knows
/// is redacted from the line.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::printing::stderr_line(&::std::format!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry is the process's, shared with every other test of the
    /// crate: each secret here is its own.
    #[test]
    fn a_secret_kept_later_is_redacted_from_then_on() {
        let later = "session-token-granted-later-0f3a";
        assert_eq!(shown(&format!("near {later}")), format!("near {later}"));
        keep_secret(later);
        assert_eq!(shown(&format!("near {later}")), "near [redacted]");
        keep_secrets(["key-secret-kept-too-77aa", ""]);
        assert!(!shown("x key-secret-kept-too-77aa x").contains("kept-too"));
    }

    #[test]
    fn a_host_document_keeps_its_keys_and_redacts_its_strings() {
        let secret = "summary-secret-of-the-test-41d0";
        keep_secret(secret);
        let mut summary = serde_json::json!({
            "summary-secret-of-the-test-41d0": 1,
            "refused": ["by summary-secret-of-the-test-41d0"],
        });
        redact_string_values(&mut summary, &known_secrets());
        assert_eq!(summary[secret], 1, "keys are kept");
        assert_eq!(summary["refused"][0], "by [redacted]");
    }

    #[test]
    fn only_control_characters_are_escaped() {
        assert_eq!(
            escape_controls("it's \"x\"\n\u{1b}[2J é"),
            "it's \"x\"\\n\\u{1b}[2J é"
        );
    }

    /// The sources of the hosts print only through this module: a
    /// `println!` or `eprintln!` anywhere else would bypass the redaction.
    #[test]
    fn nothing_prints_but_this_module() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["src", "temporal-worker/src"] {
            rust_files(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "only {} files found", files.len());
        let forbidden = [
            concat!("println", "!"),
            concat!("print", "!("),
            concat!("eprint", "!("),
            concat!("std::io::", "stderr"),
            concat!("std::io::", "stdout"),
            concat!("inherit_", "stderr"),
            concat!("inherit_", "stdout"),
            concat!(".print", "()"),
        ];
        let mut found = Vec::new();
        for file in files {
            if file.ends_with("printing.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, line) in text.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for word in forbidden {
                    if line.contains(word) {
                        found.push(format!("{}:{}: {word}", file.display(), n + 1));
                    }
                }
            }
        }
        assert!(found.is_empty(), "printed without redaction: {found:#?}");
    }

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
}
