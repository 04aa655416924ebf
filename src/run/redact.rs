//! Keeping the configured credentials out of everything a task returns.
//!
//! The credentials themselves only ever go into request headers, but the
//! same text reaches an output by other roads: pasted by mistake into the
//! input or into another config field, where a validation message quotes it
//! or a pointer names it, or echoed back by the API in an error. It then
//! seldom appears whole and as given: [`crate::params::json_fields::quoted`] escapes it as a
//! JSON string and clips it with `…`, a pointer escapes `~` and `/`, a regular
//! expression snippet escapes control characters, and the pattern checks
//! quote a single label, prefix length or stretch of it. So instead of
//! searching for a secret whole, this module treats every run of `WINDOW`
//! bytes of every one of those shapes of a secret as a leak, and replaces
//! any stretch of text covered by such runs with
//! [`REDACTED`], whatever produced it.
//!
//! ASCII letters match without regard to case: an API that quotes a token
//! back upper-cased still shows it.
//!
//! Redaction never makes a document invalid against the output schema that
//! `describe` returns, so two kinds of run do not count:
//!
//! * runs made only of what a JSON number is written with (digits, `.`,
//!   `e`, `E`, `+`, `-`): a number is never turned into a string. The
//!   config refuses a credential made only of those, or shorter than
//!   [`MIN_SECRET_CHARS`], so every credential has runs that do count and
//!   is still found wherever it appears; of a stretch of more than seven
//!   such characters in it, a part may show.
//! * runs that occur in [`PUBLIC_TEXTS`]: the schemas themselves (member
//!   names, `enum` words, descriptions) and the fixed parts of the request
//!   URL. Anyone can read them, and redacting them would break what the
//!   schema fixes (a required member's name, a `kind`).
//!
//! The component applies it to everything it returns (see
//! [`Secrets::redact_json`] and [`Secrets::redact_error`]); the validators
//! and the outcome code need not know about it.

use crate::api::outcome::Failure;
use crate::api::request::REDACTED;
use crate::params::json_tokens::bytes_equal_to;
use crate::params::problems::Problem;
use crate::run::prepare::TaskError;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

use crate::config::{is_number_byte, MIN_SECRET_CHARS};

/// The shortest run of a secret that counts as a leak: one `u64`, and a
/// secret of [`MIN_SECRET_CHARS`] characters has at least one such run.
const WINDOW: usize = 8;

/// The length of the grams the filter holds.
const GRAM: usize = 4;

/// Every run of [`WINDOW`] bytes holds a [`GRAM`] starting at a multiple
/// of this, so a text is ruled out by looking up only every fifth position;
/// that keeps the common case, a large output with no secret in it, to a
/// fraction of the time validating it took.
const STRIDE: usize = WINDOW - GRAM + 1;

/// How often the replaced text is searched again. The text put in can only
/// combine with its neighbours into a new run of a secret when the secret
/// holds pieces of `[redacted]` itself; past this many rounds the whole
/// text is replaced instead.
const MAX_ROUNDS: usize = 4;

/// The config keys whose values are credentials.
const CREDENTIAL_KEYS: [&str; 2] = ["api_token", "api_key"];

/// Text that outputs show and anyone can read: the schemas `describe`
/// returns and the fixed parts of the request URL. A run of a secret that
/// occurs here gives nothing away, so it is not searched for.
pub const PUBLIC_TEXTS: [&str; 2] = [
    crate::schema::DESCRIBE,
    "/accounts/ /email-security/settings/allow_policies/batch",
];

/// The credentials of one task, ready to be searched for.
pub struct Secrets {
    /// Every [`WINDOW`]-byte run of every shape of every secret, as a
    /// little-endian `u64`, sorted and without repeats.
    windows: Vec<u64>,
    /// One bit per hash bucket of the [`GRAM`]-byte runs of the same
    /// shapes, so that nearly every position of a text is ruled out without
    /// searching `windows`.
    filter: Vec<u64>,
    /// Turns a gram's hash into its bucket: 64 minus log2 of the filter's bits.
    shift: u32,
}

/// The windows are the secrets' bytes, so only their number is shown.
impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secrets({} windows)", self.windows.len())
    }
}

impl Secrets {
    /// The credentials of a config document (`api_token`, `api_key`) as the
    /// task was given it. It is read leniently: a config that is invalid,
    /// repeats a key or is not even JSON still names credentials that the
    /// input's messages may quote, since every problem of both documents is
    /// reported at once.
    pub fn from_config(config_text: &str) -> Self {
        Self::new(credentials_in(config_text))
    }

    /// The given secrets; any shorter than [`MIN_SECRET_CHARS`] are ignored.
    pub fn new<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) -> Self {
        let placeholder: Vec<u64> = windows_of(REDACTED).collect();
        let mut windows = Vec::new();
        let mut grams = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.chars().count() < MIN_SECRET_CHARS {
                continue;
            }
            for shape in shapes(secret) {
                windows.extend(windows_of(&shape));
                grams.extend(shape.as_bytes().windows(GRAM).map(gram));
            }
        }
        // The placeholder is what replaces a secret: were its own runs to
        // count, no replaced text would ever be clean.
        windows.retain(|w| !placeholder.contains(w) && !could_be_a_number(*w));
        windows.sort_unstable();
        windows.dedup();
        let bits = (grams.len() * 16)
            .next_power_of_two()
            .clamp(1 << 12, 1 << 24);
        let shift = 64 - bits.trailing_zeros();
        let mut filter = vec![0u64; bits / 64];
        for g in grams {
            let b = bucket(g, shift);
            filter[b / 64] |= 1 << (b % 64);
        }
        Secrets {
            windows,
            filter,
            shift,
        }
    }

    /// No secret to look for: every text passes unchanged.
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Whether any run of a secret appears in `text`.
    pub fn found_in(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        if self.is_empty() || bytes.len() < WINDOW {
            return false;
        }
        // A run starting at `p` holds the gram at the one multiple of
        // STRIDE in `p..=p + GRAM`; the last such multiple still leaves a
        // whole gram before the end.
        let mut at = 0;
        while let Some(run) = bytes.get(at..).and_then(<[u8]>::first_chunk::<GRAM>) {
            if self.may_hold(fold_case(u64::from(u32::from_le_bytes(*run))))
                && (at.saturating_sub(GRAM)..=at.min(bytes.len() - WINDOW))
                    .any(|p| self.contains_window(window(&bytes[p..p + WINDOW])))
            {
                return true;
            }
            at += STRIDE;
        }
        false
    }

    /// `text` with every stretch made of runs of a secret replaced by
    /// `[redacted]`; borrowed when there was none. Letters match in either
    /// case.
    pub fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if !self.found_in(text) {
            return Cow::Borrowed(text);
        }
        let mut text = self.replace(text);
        for _ in 1..MAX_ROUNDS {
            if !self.found_in(&text) {
                return Cow::Owned(text);
            }
            text = self.replace(&text);
        }
        if self.found_in(&text) {
            text = REDACTED.to_string();
        }
        Cow::Owned(text)
    }

    /// A JSON document with every string and object key redacted, and the
    /// document otherwise as it was: member order, number spelling and
    /// escapes of the API's verbatim `result` are kept.
    ///
    /// This runs on every output, so the common case costs one scan and no
    /// copy: a document whose text holds no run of a secret, and no `\u`
    /// or `\/` escape behind which one could hide, is returned as it is.
    /// The other escapes are those `serde_json` writes itself, and a secret
    /// written with them shows as a run of its JSON-escaped shape.
    pub fn redact_json(&self, json: String) -> String {
        if self.is_empty() {
            return json;
        }
        if !has_hiding_escape(json.as_bytes()) && !self.found_in(&json) {
            return json;
        }
        let redacted = self.redact_json_tokens(&json);
        if self.found_in(&redacted) {
            // Only a secret holding JSON punctuation (`","`, say) can still
            // match, across tokens: nothing of the document can be kept.
            return placeholder_literal();
        }
        redacted
    }

    /// The error with every string in it redacted: field-error pointers and
    /// messages, and the failure's message and the API's errors.
    pub fn redact_error(&self, mut error: TaskError) -> TaskError {
        if self.is_empty() {
            return error;
        }
        match &mut error {
            TaskError::InvalidConfig(problems) | TaskError::InvalidInput(problems) => {
                self.redact_problems(problems);
            }
            TaskError::Call(failure) => self.redact_failure(failure),
        }
        error
    }

    /// Pointers and messages of problems, in place.
    pub fn redact_problems(&self, problems: &mut [Problem]) {
        for p in problems {
            self.redact_in_place(&mut p.pointer);
            self.redact_in_place(&mut p.message);
        }
    }

    /// Every string of a failure, in place.
    pub fn redact_failure(&self, failure: &mut Failure) {
        self.redact_in_place(&mut failure.message);
        for e in &mut failure.api_errors {
            self.redact_in_place(&mut e.message);
            for s in [&mut e.pointer, &mut e.documentation_url]
                .into_iter()
                .flatten()
            {
                self.redact_in_place(s);
            }
        }
    }

    fn redact_in_place(&self, text: &mut String) {
        let redacted = match self.redact(text) {
            Cow::Owned(r) => Some(r),
            Cow::Borrowed(_) => None,
        };
        if let Some(r) = redacted {
            *text = r;
        }
    }

    /// Whether some shape of a secret may hold this gram; false positives
    /// only cost a search.
    fn may_hold(&self, gram: u64) -> bool {
        let b = bucket(gram, self.shift);
        (self.filter[b / 64] >> (b % 64)) & 1 == 1
    }

    fn contains_window(&self, w: u64) -> bool {
        // The window's first GRAM bytes are a gram of the same shape. A run
        // found is checked against the public texts only then: a match is
        // rare, and scanning them for every task's secrets up front cost
        // more than the rest of making them.
        self.may_hold(w & 0xFFFF_FFFF) && self.windows.binary_search(&w).is_ok() && !is_public(w)
    }

    /// Where each run of a secret in `text` starts, in order.
    fn hits<'a>(&'a self, text: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
        let mut w = 0u64;
        text.iter().enumerate().filter_map(move |(i, &b)| {
            // The last WINDOW bytes, the oldest in the lowest byte: what
            // `u64::from_le_bytes` makes of them.
            w = (w >> 8) | (u64::from(b.to_ascii_lowercase()) << 56);
            (i + 1 >= WINDOW && self.contains_window(w)).then(|| i + 1 - WINDOW)
        })
    }

    /// One round of replacement: overlapping or touching runs become one
    /// `[redacted]`, widened to whole characters.
    fn replace(&self, text: &str) -> String {
        let mut stretches: Vec<(usize, usize)> = Vec::new();
        for start in self.hits(text.as_bytes()) {
            let (start, end) = (char_start(text, start), char_end(text, start + WINDOW));
            match stretches.last_mut() {
                Some((_, last_end)) if start <= *last_end => *last_end = end.max(*last_end),
                _ => stretches.push((start, end)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in stretches {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Copies a JSON text token by token, redacting the decoded content of
    /// each string (keys included); numbers (which hold no run that
    /// counts), structure and literals are copied byte for byte.
    fn redact_json_tokens(&self, json: &str) -> String {
        let bytes = json.as_bytes();
        let mut out = String::with_capacity(json.len());
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            match bytes[i] {
                b'"' => {
                    i = string_end(bytes, i);
                    self.push_string(&json[start..i], &mut out);
                }
                _ => {
                    // Numbers, structure, whitespace and literals, up to
                    // the next string (which starts with an ASCII byte, so
                    // the slice ends on a character boundary).
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += 1;
                    }
                    out.push_str(&json[start..i]);
                }
            }
        }
        out
    }

    /// Appends one string literal, redacted. A literal whose text still
    /// shows a run after its content was redacted (its escapes spell one
    /// that its content does not) is replaced whole.
    fn push_string(&self, literal: &str, out: &mut String) {
        if !literal.contains('\\') && !self.found_in(literal) {
            out.push_str(literal);
            return;
        }
        let kept: Cow<'_, str> = match serde_json::from_str::<String>(literal) {
            Ok(content) => match self.redact(&content) {
                Cow::Borrowed(_) => Cow::Borrowed(literal),
                Cow::Owned(r) => Cow::Owned(serde_json::to_string(&r).unwrap_or_default()),
            },
            Err(_) => Cow::Borrowed(literal),
        };
        if self.found_in(&kept) {
            out.push_str(&placeholder_literal());
        } else {
            out.push_str(&kept);
        }
    }
}

/// Whether JSON text holds a `\u` or `\/` escape, behind which a secret's
/// characters could stand without showing as its runs. Eight bytes at a
/// time, since it reads every output whole: most have no backslash at all.
fn has_hiding_escape(bytes: &[u8]) -> bool {
    let hides = |at: usize| bytes[at] == b'\\' && matches!(bytes.get(at + 1), Some(b'u' | b'/'));
    let mut i = 0;
    while let Some(word) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        // Some byte of the word is a backslash.
        if bytes_equal_to(u64::from_le_bytes(*word), b'\\') != 0 && (i..i + 8).any(hides) {
            return true;
        }
        i += 8;
    }
    (i..bytes.len()).any(hides)
}

/// `[redacted]` as a JSON string.
fn placeholder_literal() -> String {
    format!("\"{REDACTED}\"")
}

fn bucket(w: u64, shift: u32) -> usize {
    (w.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// `WINDOW` bytes as a little-endian `u64`, ASCII letters in lower case.
fn window(run: &[u8]) -> u64 {
    let mut bytes = [0u8; WINDOW];
    bytes.copy_from_slice(run);
    fold_case(u64::from_le_bytes(bytes))
}

/// `GRAM` bytes as a little-endian number, ASCII letters in lower case:
/// the low half of the window they start.
fn gram(run: &[u8]) -> u64 {
    let mut bytes = [0u8; GRAM];
    bytes.copy_from_slice(run);
    fold_case(u64::from(u32::from_le_bytes(bytes)))
}

/// The bytes of `word` with `A`-`Z` turned into `a`-`z`, all eight at once;
/// every other byte, UTF-8 ones included, as it was.
fn fold_case(word: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = ONES * 0x80;
    // Each byte's low seven bits plus a constant: the high bit then says
    // whether the byte is at least `A`, or above `Z`, with no carry into
    // the next byte.
    let low = word & (ONES * 0x7f);
    let from_a = low + ONES * u64::from(0x80 - b'A');
    let past_z = low + ONES * u64::from(0x80 - b'Z' - 1);
    let upper = from_a & !past_z & !word & HIGHS;
    word | (upper >> 2)
}

/// Whether a window could be part of a JSON number's text.
fn could_be_a_number(window: u64) -> bool {
    window.to_le_bytes().into_iter().all(is_number_byte)
}

/// Whether the run `w` occurs in [`PUBLIC_TEXTS`], where it gives nothing
/// away.
fn is_public(w: u64) -> bool {
    PUBLIC_TEXTS
        .iter()
        .any(|text| windows_of(text).any(|public| public == w))
}

fn windows_of(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.as_bytes().windows(WINDOW).map(window)
}

/// The shapes in which a secret can appear in an output: as given; as
/// [`crate::params::json_fields::quoted`] writes it; as a JSON Pointer token; with control
/// characters escaped as regular expression snippets show them; and each
/// of those once more JSON-escaped, as it reads inside an output document's
/// text.
fn shapes(secret: &str) -> Vec<String> {
    let once = [
        secret.to_string(),
        json_escaped(secret),
        pointer_escaped(secret),
        controls_escaped(secret),
    ];
    let mut shapes: Vec<String> = once.iter().map(|s| json_escaped(s)).collect();
    shapes.extend(once);
    shapes.sort_unstable();
    shapes.dedup();
    shapes
}

fn json_escaped(s: &str) -> String {
    let literal = serde_json::to_string(s).unwrap_or_default();
    literal
        .strip_prefix('"')
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or(&literal)
        .to_string()
}

fn pointer_escaped(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn controls_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The start of the character that byte `i` belongs to.
fn char_start(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The end of the character that byte `i - 1` belongs to.
fn char_end(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// The index just past the string literal opening at `open`, or the end of
/// the text when it is not closed.
fn string_end(bytes: &[u8], open: usize) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The credential values a config names at its top level, every one even
/// when a key is repeated. When the text does not parse in full, the values
/// found up to the fault are kept and its text is searched as well.
pub fn credentials_in(config: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_str(config);
    let parsed = Credentials(&mut found)
        .deserialize(&mut de)
        .and_then(|()| de.end());
    if parsed.is_err() {
        salvage(config, &mut found);
    }
    found
}

/// Collects credential values while the config is parsed, so that what
/// came before a syntax error is not lost with the rest.
struct Credentials<'f>(&'f mut Vec<String>);

impl<'de> DeserializeSeed<'de> for Credentials<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Credentials<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a config object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if CREDENTIAL_KEYS.contains(&key.as_str()) {
                if let Value::String(s) = map.next_value()? {
                    self.0.push(s);
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }
}

/// Credentials written as `"api_token": "…"` anywhere in a text that did
/// not parse, including one cut off by the end of the text. Finding one
/// that is nested, or no credential at all, costs only some redaction.
fn salvage(config: &str, found: &mut Vec<String>) {
    for key in CREDENTIAL_KEYS {
        let quoted_key = format!("\"{key}\"");
        for (at, _) in config.match_indices(&quoted_key) {
            let rest = config[at + quoted_key.len()..].trim_start();
            let Some(rest) = rest.strip_prefix(':').map(str::trim_start) else {
                continue;
            };
            if !rest.starts_with('"') {
                continue;
            }
            let literal = &rest[..string_end(rest.as_bytes(), 0)];
            match serde_json::from_str::<String>(literal) {
                Ok(value) => found.push(value),
                Err(_) => {
                    let inner = &literal[1..];
                    found.push(inner.strip_suffix('"').unwrap_or(inner).to_string());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
