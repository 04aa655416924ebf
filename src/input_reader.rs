//! The input document read in one pass, for the batch with no problem at
//! all: the case of nearly every task.
//!
//! The reader checks each member as it reads it, borrows strings from the
//! text, builds no tree, and writes the request body as it goes. It
//! answers only "clean, and here is the batch" or "not settled here": any
//! problem, any warning, and anything outside a plain batch (sync mode, a
//! number, a repeated member) hands the document to the full reader
//! ([`crate::json::parse_document`] and [`crate::validate::parse_input`]),
//! which words every problem with its pointer. So there is one wording of
//! each problem and one order of them, and this reader only has to be
//! right about what is clean. A property test holds it to the full reader
//! on generated documents.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::config::check_account_id;
use crate::json::MAX_INPUT_BYTES;
use crate::json_scan::{RawStr, Scalar, Scanner, Unsettled};
use crate::policy::{compared_caseless, uuid_number, Counts, PatternType, MAX_ITEMS};
use crate::validate::{pattern_problem, MAX_COMMENT_CHARS, MAX_PATTERN_CHARS};

/// A batch the full reader would accept without a word.
#[derive(Debug, PartialEq, Eq)]
pub struct CleanInput {
    /// The input's own account id, when it gave one.
    pub account_id: Option<String>,
    pub counts: Counts,
    /// The request body, written while reading: the same text as
    /// `serde_json::to_string` of the full reader's
    /// [`BatchBody`](crate::policy::BatchBody). The items themselves are
    /// not kept; [`crate::task::Prepared::batch`] reads them from this
    /// text when they are needed.
    pub body_text: String,
}

/// Reads `text` when it is a clean batch; `None` leaves it to the full
/// reader.
pub fn read_clean(text: &str) -> Option<CleanInput> {
    if text.len() > MAX_INPUT_BYTES {
        return None;
    }
    Reader::new().document(text).ok()
}

/// The four lists, in the order the body gives them.
#[derive(Clone, Copy)]
enum List {
    Deletes,
    Patches,
    Puts,
    Posts,
}

impl List {
    const ALL: [List; 4] = [List::Deletes, List::Patches, List::Puts, List::Posts];

    fn of(key: &str) -> Option<List> {
        Some(match key {
            "deletes" => List::Deletes,
            "patches" => List::Patches,
            "puts" => List::Puts,
            "posts" => List::Posts,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            List::Deletes => "deletes",
            List::Patches => "patches",
            List::Puts => "puts",
            List::Posts => "posts",
        }
    }
}

struct Reader {
    account_id: Option<String>,
    counts: Counts,
    /// The request body so far: the lists in the API's order, as far as
    /// they were read without a gap. A batch whose lists come in that
    /// order is written here and nowhere else.
    body: String,
    /// How many lists `body` holds.
    in_body: usize,
    /// Lists read before their turn in the API's order, each written
    /// apart until the lists before it are in the body.
    early: [Option<String>; 4],
    read: [bool; 4],
    /// The ids of deletes, patches and puts, each folded to 64 bits: two
    /// spellings of one UUID (letter case) fold alike. Two different ids
    /// that happen to fold alike only send the document to the full reader.
    ids: Vec<u64>,
    /// What makes each post the policy it is, as a fingerprint
    /// ([`Fields::identity`]).
    posts: Vec<u64>,
}

impl Reader {
    fn new() -> Self {
        Reader {
            account_id: None,
            counts: Counts::default(),
            body: String::new(),
            in_body: 0,
            early: Default::default(),
            read: [false; 4],
            ids: Vec::new(),
            posts: Vec::new(),
        }
    }

    /// Appends the next list, in the API's order, to the body: `items` is
    /// its text, `[]` for a list the input left out.
    fn append_next(&mut self, items: &str) {
        let list = List::ALL[self.in_body];
        self.body
            .push_str(if self.in_body == 0 { "{\"" } else { ",\"" });
        self.body.push_str(list.name());
        self.body.push_str("\":");
        self.body.push_str(items);
        self.in_body += 1;
    }

    fn document(mut self, text: &str) -> Result<CleanInput, Unsettled> {
        let mut scanner = Scanner::new(text);
        scanner.expect(b'{')?;
        if !scanner.eat(b'}') {
            loop {
                let key = scanner.string()?;
                scanner.expect(b':')?;
                let key = key.value()?;
                if key == "account_id" {
                    if self.account_id.is_some() {
                        return Err(Unsettled);
                    }
                    let id = scanner.string()?.value()?;
                    check_account_id(&id).map_err(|_| Unsettled)?;
                    self.account_id = Some(id.into_owned());
                } else {
                    let list = List::of(&key).ok_or(Unsettled)?;
                    self.list(&mut scanner, list)?;
                }
                if !scanner.more(b'}')? {
                    break;
                }
            }
        }
        if !scanner.at_end() {
            return Err(Unsettled);
        }
        self.finish()
    }

    fn list(&mut self, scanner: &mut Scanner<'_>, list: List) -> Result<(), Unsettled> {
        let index = list as usize;
        if self.read[index] {
            return Err(Unsettled);
        }
        self.read[index] = true;
        // The body takes about as much text as the lists still to come,
        // and never more (see below): reserved at the first list, so that
        // a document left to the full reader at once reserves nothing.
        if self.body.capacity() == 0 {
            self.body.reserve(scanner.rest().len() + 64);
        }
        // Written into the body when its turn has come, apart otherwise.
        // A list's text never grows in writing, so what is left of the
        // input bounds it: reserving that much copies nothing as the list
        // grows, and pages never written are never touched.
        let mut apart = String::new();
        if index != self.in_body {
            apart.reserve(scanner.rest().len());
        }
        let out = if index == self.in_body {
            let name = list.name();
            self.body.push_str(if index == 0 { "{\"" } else { ",\"" });
            self.body.push_str(name);
            self.body.push_str("\":");
            &mut self.body
        } else {
            &mut apart
        };
        scanner.expect(b'[')?;
        out.push('[');
        let mut count = 0;
        if !scanner.eat(b']') {
            loop {
                count += 1;
                if count > MAX_ITEMS {
                    return Err(Unsettled);
                }
                if count > 1 {
                    out.push(',');
                }
                let item = Item::read(scanner)?;
                out.push('{');
                match list {
                    List::Deletes => {
                        if item.given != ID {
                            return Err(Unsettled);
                        }
                        self.ids.push(item.id(out)?);
                    }
                    List::Patches => {
                        // A patch of its id alone changes nothing: a warning.
                        if item.given & !ID == 0 {
                            return Err(Unsettled);
                        }
                        self.ids.push(item.id(out)?);
                        item.fields()?.write(false, out);
                    }
                    List::Puts => {
                        if item.given & REQUIRED != REQUIRED {
                            return Err(Unsettled);
                        }
                        self.ids.push(item.id(out)?);
                        item.fields()?.write(false, out);
                    }
                    List::Posts => {
                        if item.given & (REQUIRED | ID) != REQUIRED {
                            return Err(Unsettled);
                        }
                        let fields = item.fields()?;
                        fields.write(true, out);
                        self.posts.push(fields.identity().ok_or(Unsettled)?);
                    }
                }
                out.push('}');
                if !scanner.more(b']')? {
                    break;
                }
            }
        }
        out.push(']');
        if index == self.in_body {
            self.in_body += 1;
            // Lists read early follow as soon as their turn comes.
            while let Some(early) = self.early.get_mut(self.in_body).and_then(Option::take) {
                self.append_next(&early);
            }
        } else {
            self.early[index] = Some(apart);
        }
        match list {
            List::Deletes => self.counts.deletes = count,
            List::Patches => self.counts.patches = count,
            List::Puts => self.counts.puts = count,
            List::Posts => self.counts.posts = count,
        }
        Ok(())
    }

    /// The checks that span items, then the body in the API's order.
    fn finish(mut self) -> Result<CleanInput, Unsettled> {
        // The same policy named twice is an error, two posts of the same
        // policy a warning. Two that only fold or hash alike send the
        // document to the full reader, which compares them whole.
        for fingerprints in [&self.ids, &self.posts] {
            let mut seen = HashSet::with_capacity(fingerprints.len());
            if !fingerprints.iter().all(|f| seen.insert(f)) {
                return Err(Unsettled);
            }
        }
        while self.in_body < List::ALL.len() {
            let early = self.early[self.in_body].take();
            self.append_next(early.as_deref().unwrap_or("[]"));
        }
        self.body.push('}');
        Ok(CleanInput {
            account_id: self.account_id,
            counts: self.counts,
            body_text: self.body,
        })
    }
}

/// Bits of [`Item::given`], one per field, numbered as [`field_index`]
/// numbers them.
const ID: u16 = 1;
/// Every field of a policy but the optional `comments`.
const REQUIRED: u16 = 0b0_1111_1110;

/// Where the five flags start among an item's fields: `id`, then the
/// policy's fields in the order they are sent
/// ([`POLICY_FIELDS`](crate::validate::POLICY_FIELDS)).
const FIRST_FLAG: usize = 3;

/// Each flag as a member after another, false and true.
const FLAG_MEMBERS: [[&str; 2]; 5] = [
    [",\"is_regex\":false", ",\"is_regex\":true"],
    [
        ",\"is_exempt_recipient\":false",
        ",\"is_exempt_recipient\":true",
    ],
    [
        ",\"is_trusted_sender\":false",
        ",\"is_trusted_sender\":true",
    ],
    [
        ",\"is_acceptable_sender\":false",
        ",\"is_acceptable_sender\":true",
    ],
    [",\"verify_sender\":false", ",\"verify_sender\":true"],
];

/// One item's members as they stand in the text.
#[derive(Default)]
struct Item<'a> {
    /// Which fields were given, a bit for each (see [`field_index`]).
    given: u16,
    id: Option<RawStr<'a>>,
    pattern: Option<RawStr<'a>>,
    pattern_type: Option<RawStr<'a>>,
    flags: [Option<bool>; 5],
    /// Absent, `null` (`Some(None)`), or a string.
    comments: Option<Option<RawStr<'a>>>,
}

/// An item's policy fields, checked and decoded, each with its text.
struct Fields<'a> {
    pattern: Option<(RawStr<'a>, Cow<'a, str>)>,
    pattern_type: Option<PatternType>,
    flags: [Option<bool>; 5],
    /// Absent, `null` (`Some(None)`), or a comment.
    comments: Option<Option<(RawStr<'a>, Cow<'a, str>)>>,
}

impl<'a> Item<'a> {
    fn read(scanner: &mut Scanner<'a>) -> Result<Self, Unsettled> {
        let mut item = Item::default();
        scanner.expect(b'{')?;
        if scanner.eat(b'}') {
            return Ok(item);
        }
        loop {
            let field = match plain_field(scanner.rest()) {
                Some((field, len)) => {
                    scanner.skip(len);
                    field
                }
                None => {
                    let key = scanner.string()?;
                    scanner.expect(b':')?;
                    field_index(key)?
                }
            };
            let value = scanner.scalar()?;
            let bit = 1 << field;
            if item.given & bit != 0 {
                return Err(Unsettled);
            }
            item.given |= bit;
            match (field, value) {
                (0, Scalar::Str(s)) => item.id = Some(s),
                (1, Scalar::Str(s)) => item.pattern = Some(s),
                (2, Scalar::Str(s)) => item.pattern_type = Some(s),
                (8, Scalar::Str(s)) => item.comments = Some(Some(s)),
                (8, Scalar::Null) => item.comments = Some(None),
                (f @ 3..=7, Scalar::Bool(b)) => item.flags[f - FIRST_FLAG] = Some(b),
                _ => return Err(Unsettled),
            }
            if !scanner.more(b'}')? {
                break;
            }
        }
        Ok(item)
    }

    /// Checks the item's id, which must be a UUID string (an integer id is
    /// accepted only with a warning), writes it, and gives it folded.
    fn id(&self, out: &mut String) -> Result<u64, Unsettled> {
        let raw = self.id.ok_or(Unsettled)?;
        let id = raw.value()?;
        let number = uuid_number(&id).ok_or(Unsettled)?;
        out.push_str("\"id\":");
        raw.write_json(&id, out);
        Ok((number >> 64) as u64 ^ number as u64)
    }

    /// The policy fields, each checked as the full reader checks it.
    fn fields(&self) -> Result<Fields<'a>, Unsettled> {
        let pattern = match self.pattern {
            None => None,
            Some(raw) => {
                let pattern = raw.value()?;
                if !char_count_within(&pattern, 1, MAX_PATTERN_CHARS) {
                    return Err(Unsettled);
                }
                Some((raw, pattern))
            }
        };
        let pattern_type = match self.pattern_type {
            None => None,
            Some(raw) => Some(PatternType::parse(&raw.value()?).ok_or(Unsettled)?),
        };
        let comments = match self.comments {
            None => None,
            Some(None) => Some(None),
            Some(Some(raw)) => {
                let comment = raw.value()?;
                if !char_count_within(&comment, 0, MAX_COMMENT_CHARS) {
                    return Err(Unsettled);
                }
                Some(Some((raw, comment)))
            }
        };
        if let Some((_, pattern)) = &pattern {
            pattern_problem(pattern, self.flags[0], pattern_type).map_err(|_| Unsettled)?;
        }
        Ok(Fields {
            pattern,
            pattern_type,
            flags: self.flags,
            comments,
        })
    }
}

impl<'a> Fields<'a> {
    /// The given fields in the order they are sent, after a member already
    /// written unless `first`. Names and literals go out as whole pieces
    /// (`,"is_regex":true`): a batch has tens of thousands of them.
    fn write(&self, first: bool, out: &mut String) {
        let mut n = 0;
        let mut piece = |text: &'static str, out: &mut String| {
            // Only the first member goes without its comma.
            out.push_str(if n == 0 && first { &text[1..] } else { text });
            n += 1;
        };
        if let Some((raw, value)) = &self.pattern {
            piece(",\"pattern\":", out);
            raw.write_json(value, out);
        }
        if let Some(kind) = self.pattern_type {
            piece(
                match kind {
                    PatternType::Email => ",\"pattern_type\":\"EMAIL\"",
                    PatternType::Domain => ",\"pattern_type\":\"DOMAIN\"",
                    PatternType::Ip => ",\"pattern_type\":\"IP\"",
                },
                out,
            );
        }
        for (flag, [if_false, if_true]) in self.flags.iter().zip(FLAG_MEMBERS) {
            if let Some(flag) = flag {
                piece(if *flag { if_true } else { if_false }, out);
            }
        }
        match &self.comments {
            Some(Some((raw, value))) => {
                piece(",\"comments\":", out);
                raw.write_json(value, out);
            }
            Some(None) => piece(",\"comments\":null", out),
            None => {}
        }
    }

    /// A fingerprint of what makes a complete policy the same as another:
    /// its type, its regex flag and its pattern as
    /// [`pattern_identity`](crate::policy::pattern_identity)
    /// compares it (addresses and host names without regard to ASCII
    /// case). Equal identities give equal fingerprints.
    fn identity(&self) -> Option<u64> {
        let kind = self.pattern_type?;
        let is_regex = self.flags[0]?;
        let (_, pattern) = self.pattern.as_ref()?;
        let caseless = compared_caseless(kind.name(), is_regex);
        let mut hash = Fnv::default();
        hash.byte(kind as u8);
        hash.byte(u8::from(is_regex));
        for b in pattern.bytes() {
            hash.byte(if caseless { b.to_ascii_lowercase() } else { b });
        }
        Some(hash.0)
    }
}

/// FNV-1a, 64 bits: a fingerprint for finding repeats, not a defence
/// against chosen collisions, which only send a document to the full
/// reader.
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
}

/// Each field's name as it stands in the text when written plainly, with
/// its quotes and colon, numbered as [`field_index`] numbers them.
const PLAIN_FIELDS: [PlainName; 9] = [
    PlainName::new(b"\"id\":"),
    PlainName::new(b"\"pattern\":"),
    PlainName::new(b"\"pattern_type\":"),
    PlainName::new(b"\"is_regex\":"),
    PlainName::new(b"\"is_exempt_recipient\":"),
    PlainName::new(b"\"is_trusted_sender\":"),
    PlainName::new(b"\"is_acceptable_sender\":"),
    PlainName::new(b"\"verify_sender\":"),
    PlainName::new(b"\"comments\":"),
];

/// A member name of up to 24 bytes, kept as three words and compared a
/// word at a time: in wasm a general byte comparison is a call and a loop
/// per byte, and the names are compared tens of thousands of times.
struct PlainName {
    words: [u64; 3],
    /// Which bytes of each word belong to the name.
    masks: [u64; 3],
    len: usize,
}

impl PlainName {
    const fn new(name: &[u8]) -> Self {
        let mut words = [0u64; 3];
        let mut masks = [0u64; 3];
        let mut i = 0;
        while i < name.len() {
            words[i / 8] |= (name[i] as u64) << (8 * (i % 8));
            masks[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        PlainName {
            words,
            masks,
            len: name.len(),
        }
    }

    /// Whether `text` (at least 24 bytes) begins with the name.
    fn begins(&self, text: &[u8; 24]) -> bool {
        (0..3).all(|w| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&text[8 * w..8 * w + 8]);
            u64::from_le_bytes(word) & self.masks[w] == self.words[w]
        })
    }
}

/// The field a member names when the text spells it plainly
/// (`"pattern":`), and the length of that spelling: nearly every member
/// of a batch, read without scanning it as a string. Anything else (an
/// escape, a space before the colon, an unknown name, the last 24 bytes of
/// the text) is left to [`field_index`].
fn plain_field(rest: &[u8]) -> Option<(usize, usize)> {
    let text = rest.first_chunk::<24>()?;
    let candidates: &[usize] = match (text[1], text[2]) {
        (b'i', b'd') => &[0],
        (b'i', b's') => &[3, 4, 5, 6],
        // The longer name first: "pattern" begins "pattern_type".
        (b'p', _) => &[2, 1],
        (b'v', _) => &[7],
        (b'c', _) => &[8],
        _ => return None,
    };
    candidates.iter().find_map(|&field| {
        let name = &PLAIN_FIELDS[field];
        name.begins(text).then_some((field, name.len))
    })
}

/// Which field of an item a member name is: `id` 0, then
/// [`POLICY_FIELDS`](crate::validate::POLICY_FIELDS) from 1. Deprecated
/// and unknown names are left to the full reader.
fn field_index(key: RawStr<'_>) -> Result<usize, Unsettled> {
    let key = key.value()?;
    Ok(match &*key {
        "id" => 0,
        "pattern" => 1,
        "pattern_type" => 2,
        "is_regex" => 3,
        "is_exempt_recipient" => 4,
        "is_trusted_sender" => 5,
        "is_acceptable_sender" => 6,
        "verify_sender" => 7,
        "comments" => 8,
        _ => return Err(Unsettled),
    })
}

/// Whether `s` has from `min` to `max` characters, counting them only when
/// its length in bytes leaves it in doubt.
fn char_count_within(s: &str, min: usize, max: usize) -> bool {
    if s.len() < min {
        return false;
    }
    if s.len() <= max && s.len() >= min.saturating_mul(4) {
        return true;
    }
    (min..=max).contains(&s.chars().count())
}

#[cfg(test)]
mod tests;
