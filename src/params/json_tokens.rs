//! JSON tokens read straight from the text, for [`crate::params::one_pass`].
//!
//! The scanner borrows every string from the text and builds nothing. It
//! knows only the tokens a clean batch is made of (objects, arrays, strings,
//! `true`, `false`, `null`); anything else, well-formed or not, ends the
//! scan with [`Unsettled`], and the full reader takes the document over.

use std::borrow::Cow;

/// The scan met something it leaves to the full reader: a number, a value
/// nested deeper than a batch's, malformed text. Carries nothing on
/// purpose: the full reader words every problem, so there is one wording.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unsettled;

/// A JSON string as it stands in the text, without its quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawStr<'a> {
    raw: &'a str,
    /// Whether it holds a backslash escape; without one, `raw` is the
    /// string itself and also its JSON form exactly as serde_json writes it
    /// (no quote, backslash or control character can stand unescaped).
    escaped: bool,
}

impl<'a> RawStr<'a> {
    /// The string's value, borrowed from the text unless it had escapes.
    /// Escapes are decoded by serde_json, the same decoder as the full
    /// reader's, so both readers see the same string.
    #[inline]
    pub fn value(self) -> Result<Cow<'a, str>, Unsettled> {
        if self.escaped {
            self.decoded().map(Cow::Owned)
        } else {
            Ok(Cow::Borrowed(self.raw))
        }
    }

    #[cold]
    fn decoded(self) -> Result<String, Unsettled> {
        let mut quoted = String::with_capacity(self.raw.len() + 2);
        quoted.push('"');
        quoted.push_str(self.raw);
        quoted.push('"');
        serde_json::from_str::<String>(&quoted).map_err(|_| Unsettled)
    }

    /// A string without escapes, as the scanner would give it.
    #[cfg(test)]
    pub fn for_tests(raw: &'a str) -> Self {
        RawStr {
            raw,
            escaped: false,
        }
    }

    /// The string's JSON form as serde_json writes it.
    #[inline]
    pub fn write_json(self, value: &str, out: &mut String) {
        if self.escaped {
            write_json_string(value, out);
        } else {
            out.push('"');
            out.push_str(self.raw);
            out.push('"');
        }
    }
}

/// `value` as a JSON string literal, escaped as serde_json escapes it.
pub fn write_json_string(value: &str, out: &mut String) {
    // A `String` always takes what serde_json writes.
    out.push_str(&serde_json::to_string(value).unwrap_or_default());
}

/// A scalar that may stand for a field's value in a clean batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    /// A string, still as it stands in the text: an id, a pattern, a
    /// pattern type or a comment.
    Str(RawStr<'a>),
    /// `true` or `false`: one of a policy's flags.
    Bool(bool),
    /// `null`: a clean batch has it only as `comments`, meaning no comment.
    Null,
}

/// A cursor over the text.
pub struct Scanner<'a> {
    text: &'a str,
    pos: usize,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `word` (little-endian) that are a quote, a backslash or a
/// control character, the bytes that end a run of plain string text: the
/// high bit of each such byte. A byte after a true hit may be marked too,
/// never one before it, so the lowest mark is the first such byte.
#[inline]
fn special_bytes(word: u64) -> u64 {
    // XOR with 0x02 turns the quote (0x22) into 0x20 and keeps control
    // characters below 0x20: one "less than 0x21" test finds both.
    bytes_below(word ^ (ONES * 0x02), 0x21) | bytes_equal_to(word, b'\\')
}

/// The bytes of `word` below `limit` (at most 0x80), marked as
/// [`special_bytes`] marks them: the lowest mark is exact.
#[inline]
fn bytes_below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(limit)) & !word & HIGHS
}

/// The bytes of `word` (little-endian) equal to `byte`, marked as
/// `special_bytes` marks them: the high bit of each such byte, the lowest
/// mark exact, and a byte after a true hit possibly marked too. For text
/// read eight bytes at a time.
#[inline]
pub fn bytes_equal_to(word: u64, byte: u8) -> u64 {
    bytes_below(word ^ (ONES * u64::from(byte)), 1)
}

impl<'a> Scanner<'a> {
    /// A cursor at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Scanner { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after JSON whitespace, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        // Every byte that starts a token is above the space.
        match bytes.get(self.pos) {
            Some(&b) if b > b' ' => return Some(b),
            None => return None,
            Some(_) => {}
        }
        while let Some(&b) = bytes.get(self.pos) {
            if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes `byte` when it comes next.
    #[inline]
    pub fn eat(&mut self, byte: u8) -> bool {
        if self.peek() == Some(byte) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes `byte`, which must come next after any whitespace; anything
    /// else is [`Unsettled`].
    pub fn expect(&mut self, byte: u8) -> Result<(), Unsettled> {
        if self.eat(byte) {
            Ok(())
        } else {
            Err(Unsettled)
        }
    }

    /// After an array's or object's first element: `,` (true) or `close`
    /// (false).
    #[inline]
    pub fn more(&mut self, close: u8) -> Result<bool, Unsettled> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => Err(Unsettled),
        }
    }

    /// The text from the next token on, for a caller that recognises a
    /// token itself and then [`skip`](Scanner::skip)s it.
    #[inline]
    pub fn rest(&mut self) -> &'a [u8] {
        self.peek();
        &self.bytes()[self.pos.min(self.text.len())..]
    }

    /// Moves past `len` bytes that [`rest`](Scanner::rest) showed.
    #[inline]
    pub fn skip(&mut self, len: usize) {
        self.pos += len;
    }

    /// Whether only whitespace is left.
    pub fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A string, from its opening quote. Inlined: through a call, its
    /// result went by way of memory and cost a stall per string.
    #[inline(always)]
    pub fn string(&mut self) -> Result<RawStr<'a>, Unsettled> {
        self.expect(b'"')?;
        let bytes = self.bytes();
        let start = self.pos;
        let mut i = start;
        let mut escaped = false;
        loop {
            // Eight bytes at a time through plain text, which is nearly all
            // of a batch's text.
            while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk) {
                let special = special_bytes(u64::from_le_bytes(*chunk));
                if special != 0 {
                    // Straight to the first special byte.
                    i += special.trailing_zeros() as usize / 8;
                    break;
                }
                i += 8;
            }
            match bytes.get(i) {
                None => return Err(Unsettled),
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(RawStr {
                        raw: &self.text[start..i],
                        escaped,
                    });
                }
                Some(b'\\') => {
                    // The escaped byte is skipped whatever it is; `value`
                    // checks the escape when it decodes it.
                    escaped = true;
                    i += 2;
                }
                Some(&b) if b < 0x20 => return Err(Unsettled),
                Some(_) => i += 1,
            }
        }
    }

    /// `true`, `false` or `null`.
    #[inline]
    fn literal(&mut self) -> Result<Scalar<'a>, Unsettled> {
        let rest = &self.bytes()[self.pos..];
        let (scalar, len) = if rest.starts_with(b"true") {
            (Scalar::Bool(true), 4)
        } else if rest.starts_with(b"false") {
            (Scalar::Bool(false), 5)
        } else if rest.starts_with(b"null") {
            (Scalar::Null, 4)
        } else {
            return Err(Unsettled);
        };
        self.pos += len;
        Ok(scalar)
    }

    /// A string, `true`, `false` or `null`; anything else is left to the
    /// full reader.
    #[inline]
    pub fn scalar(&mut self) -> Result<Scalar<'a>, Unsettled> {
        match self.peek() {
            Some(b'"') => self.string().map(Scalar::Str),
            Some(b't' | b'f' | b'n') => self.literal(),
            _ => Err(Unsettled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(text: &str) -> Result<Vec<String>, Unsettled> {
        let mut scanner = Scanner::new(text);
        let mut out = Vec::new();
        scanner.expect(b'[')?;
        if scanner.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(scanner.string()?.value()?.into_owned());
            if !scanner.more(b']')? {
                break;
            }
        }
        assert!(scanner.at_end());
        Ok(out)
    }

    #[test]
    fn strings_are_read_as_serde_json_reads_them() {
        let cases = [
            r#"["", "a", "0123456789abcdef0123", "é and ü", "tab\there"]"#,
            r#"["quote \" inside", "back\\slash", "\u00e9\ud83d\ude00", "\/"]"#,
            r#"["1234567\"", "12345678\\n", "\"", "long plain text without any escape at all"]"#,
        ];
        for text in cases {
            let ours = strings(text).unwrap();
            let theirs: Vec<String> = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn malformed_strings_are_left_to_the_full_reader() {
        for text in [
            "[\"unterminated",
            "[\"a\u{1}b\"]",
            "[\"bad escape \\q\"]",
            "[\"lone \\ud800 surrogate\"]",
            "[\"ends in a backslash\\",
            "[\"12345678901234567890",
        ] {
            assert_eq!(strings(text), Err(Unsettled), "{text:?}");
        }
    }

    #[test]
    fn the_first_special_byte_is_found_at_every_offset() {
        for special in [b'"', b'\\', 0x00, 0x01, 0x1f] {
            for at in 0..8 {
                // Specials after the first, and bytes next to the ranges.
                let mut word = [b'!', b'#', 0x20, 0x21, 0x23, 0x5b, 0x5d, 0xff];
                word[at] = special;
                if at < 7 {
                    word[7] = b'"';
                }
                let found = special_bytes(u64::from_le_bytes(word));
                assert_eq!(found.trailing_zeros() / 8, at as u32, "{word:?}");
            }
        }
        for plain in [
            *b"abcdefgh",
            *b"        ",
            [0x20; 8],
            [0x7f; 8],
            [0xff; 8],
            *b"!#$%[]{}",
            [0x21, 0x23, 0x5b, 0x5d, 0x80, 0xc3, 0xa9, 0x7e],
        ] {
            assert_eq!(special_bytes(u64::from_le_bytes(plain)), 0, "{plain:?}");
        }
    }

    #[test]
    fn written_strings_match_serde_json() {
        for s in ["plain", "with \"quote\"", "nl\n", "\u{1f}", "é"] {
            let mut out = String::new();
            write_json_string(s, &mut out);
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn scalars_and_their_neighbours() {
        let mut scanner = Scanner::new(" true , false,null \"x\" 1");
        assert_eq!(scanner.scalar(), Ok(Scalar::Bool(true)));
        assert!(scanner.eat(b','));
        assert_eq!(scanner.scalar(), Ok(Scalar::Bool(false)));
        assert!(scanner.eat(b','));
        assert_eq!(scanner.scalar(), Ok(Scalar::Null));
        assert!(matches!(scanner.scalar(), Ok(Scalar::Str(_))));
        assert_eq!(scanner.scalar(), Err(Unsettled));
        assert_eq!(Scanner::new("nul").scalar(), Err(Unsettled));
    }
}
