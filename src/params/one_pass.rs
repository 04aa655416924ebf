//! The input document read in one pass, for the batch with no problem at
//! all: the case of nearly every task.
//!
//! The reader checks each member as it reads it, borrows strings from the
//! text, builds no tree, and writes the request body as it goes. It
//! answers only "clean, and here is the batch" or "not settled here": any
//! problem, any warning, and anything outside a plain batch (sync mode, a
//! number, a repeated member) hands the document to the full reader
//! ([`crate::params::json_fields::parse_document`] and [`crate::params::validator::parse_input`]),
//! which words every problem with its pointer. So there is one wording of
//! each problem and one order of them, and this reader only has to be
//! right about what is clean. A property test holds it to the full reader
//! on generated documents.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::api::fields::{Field, Flag};
use crate::api::identity::Identity;
use crate::api::policy::{uuid_number, Counts, PatternType, MAX_ITEMS};
use crate::config::check_account_id;
use crate::params::json_fields::MAX_INPUT_BYTES;
use crate::params::json_tokens::{RawStr, Scalar, Scanner, Unsettled};
use crate::params::validator::{pattern_problem, MAX_COMMENT_CHARS, MAX_PATTERN_CHARS};

/// A batch the full reader would accept without a word.
#[derive(Debug, PartialEq, Eq)]
pub struct CleanInput {
    /// The input's own account id, when it gave one.
    pub account_id: Option<String>,
    /// How many items of each kind the batch carries.
    pub counts: Counts,
    /// The request body, written while reading: the same text as
    /// `serde_json::to_string` of the full reader's
    /// [`BatchBody`](crate::api::policy::BatchBody). The items themselves are
    /// not kept; [`crate::run::prepare::Prepared::batch`] reads them from this
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

/// An item's members are numbered `0` for `id`, then the policy's fields
/// from `1` in the field table's order ([`Field::ALL`]): the bits of
/// [`Item::given`], and the numbers [`field_number`] gives.
const ID: u16 = 1;

/// The number of an item's member that is a policy field.
const fn number_of(field: Field) -> usize {
    field.index() + 1
}

/// Every field a create or a replace must give.
const REQUIRED: u16 = {
    let mut bits = 0;
    let mut i = 0;
    while i < Field::ALL.len() {
        if Field::ALL[i].required() {
            bits |= 1 << number_of(Field::ALL[i]);
        }
        i += 1;
    }
    bits
};

/// One item's members as they stand in the text.
#[derive(Default)]
struct Item<'a> {
    /// Which fields were given, a bit for each (see [`field_index`]).
    given: u16,
    id: Option<RawStr<'a>>,
    pattern: Option<RawStr<'a>>,
    pattern_type: Option<RawStr<'a>>,
    flags: [Option<bool>; Flag::COUNT],
    /// Absent, `null` (`Some(None)`), or a string.
    comments: Option<Option<RawStr<'a>>>,
}

/// An item's policy fields, checked and decoded, each with its text.
struct Fields<'a> {
    pattern: Option<(RawStr<'a>, Cow<'a, str>)>,
    pattern_type: Option<PatternType>,
    flags: [Option<bool>; Flag::COUNT],
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
                    field_number(key)?
                }
            };
            let value = scanner.scalar()?;
            let bit = 1 << field;
            if item.given & bit != 0 {
                return Err(Unsettled);
            }
            item.given |= bit;
            let field = field.checked_sub(1).map(|i| Field::ALL[i]);
            match (field, value) {
                (None, Scalar::Str(s)) => item.id = Some(s),
                (Some(Field::Pattern), Scalar::Str(s)) => item.pattern = Some(s),
                (Some(Field::PatternType), Scalar::Str(s)) => item.pattern_type = Some(s),
                (Some(Field::Flag(flag)), Scalar::Bool(b)) => item.flags[flag.index()] = Some(b),
                (Some(Field::Comments), Scalar::Str(s)) => item.comments = Some(Some(s)),
                (Some(Field::Comments), Scalar::Null) => item.comments = Some(None),
                // A value of another type: the full reader words it.
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
        for flag in Flag::ALL {
            if let Some(value) = self.flags[flag.index()] {
                let [if_false, if_true] = flag.members();
                piece(if value { if_true } else { if_false }, out);
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

    /// The fingerprint of the policy's [`Identity`], when the fields make
    /// a complete policy.
    fn identity(&self) -> Option<u64> {
        let kind = self.pattern_type?;
        let is_regex = self.flags[Flag::IsRegex.index()]?;
        let (_, pattern) = self.pattern.as_ref()?;
        Some(Identity::new(kind.name(), is_regex, pattern).fingerprint())
    }
}

/// Each member's name as it stands in the text when written plainly,
/// with its quotes and colon (`"pattern":`), numbered as [`field_number`]
/// numbers them.
const PLAIN_NAMES: [PlainName; 1 + Field::COUNT] = {
    let mut names = [PlainName::new(b"id"); 1 + Field::COUNT];
    let mut i = 0;
    while i < Field::ALL.len() {
        names[number_of(Field::ALL[i])] = PlainName::new(Field::ALL[i].name().as_bytes());
        i += 1;
    }
    names
};

/// Which plain names may begin a text, by [`candidate_key`] of the
/// name's first two letters: a bit for each member number. Names that
/// share a key are each tried.
const CANDIDATES: [u16; 64] = {
    let mut table = [0u16; 64];
    let mut n = 0;
    while n < PLAIN_NAMES.len() {
        let name = &PLAIN_NAMES[n];
        // Bytes 1 and 2: the letters after the opening quote.
        let first = (name.words[0] >> 8) as u8;
        let second = (name.words[0] >> 16) as u8;
        table[candidate_key(first, second)] |= 1 << n;
        n += 1;
    }
    table
};

/// The first two letters of a name, folded to an index of [`CANDIDATES`].
const fn candidate_key(first: u8, second: u8) -> usize {
    (first as usize * 31 + second as usize) & 63
}

/// A member name, quoted and with its colon, of up to 24 bytes, kept as
/// three words and compared a word at a time: in wasm a general byte
/// comparison is a call and a loop per byte, and the names are compared
/// tens of thousands of times.
#[derive(Clone, Copy)]
struct PlainName {
    words: [u64; 3],
    /// Which bytes of each word belong to the name.
    masks: [u64; 3],
    len: usize,
}

impl PlainName {
    /// `"name":`, from the bare name. A name too long for three words
    /// stops the build.
    const fn new(name: &[u8]) -> Self {
        let len = name.len() + 3;
        assert!(len <= 24, "a member name longer than 21 bytes");
        let mut words = [0u64; 3];
        let mut masks = [0u64; 3];
        let mut i = 0;
        while i < len {
            let byte = match i {
                0 => b'"',
                _ if i == len - 2 => b'"',
                _ if i == len - 1 => b':',
                _ => name[i - 1],
            };
            words[i / 8] |= (byte as u64) << (8 * (i % 8));
            masks[i / 8] |= 0xff << (8 * (i % 8));
            i += 1;
        }
        PlainName { words, masks, len }
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
/// the text) is left to [`field_number`].
fn plain_field(rest: &[u8]) -> Option<(usize, usize)> {
    let text = rest.first_chunk::<24>()?;
    let mut candidates = CANDIDATES[candidate_key(text[1], text[2])];
    while candidates != 0 {
        let n = candidates.trailing_zeros() as usize;
        let name = &PLAIN_NAMES[n];
        if name.begins(text) {
            return Some((n, name.len));
        }
        candidates &= candidates - 1;
    }
    None
}

/// Which member of an item a name is, numbered as [`number_of`] numbers
/// them. Deprecated and unknown names are left to the full reader.
fn field_number(key: RawStr<'_>) -> Result<usize, Unsettled> {
    let key = key.value()?;
    if key == "id" {
        return Ok(0);
    }
    Field::named(&key).map(number_of).ok_or(Unsettled)
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
