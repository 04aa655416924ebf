//! Syntax check for regular-expression allow-policy patterns. The API compiles
//! these patterns with Java's `java.util.regex` and refuses ones that do not
//! compile; checking them here lets the component turn such a policy away before
//! anything is sent, with a message that points at the offending character. The
//! check follows Java's grammar, quirks included (a `]` right after `[` is a
//! literal, `{n}` with nothing before it is accepted), without compiling or
//! matching anything. It works in one pass with explicit stacks, so no input can
//! make it recurse deeply or backtrack.

use std::collections::BTreeSet;

/// Inline flag `x`: whitespace and `#` comments between tokens are ignored.
const COMMENTS: u8 = 1;
/// Inline flag `U`: POSIX property names become case-insensitive.
const UNICODE_CLASS: u8 = 2;
/// Java counts repetitions in an `int`.
const MAX_REPEAT: u64 = i32::MAX as u64;
/// Longest piece of the pattern quoted in a message.
const SNIPPET: usize = 60;

/// Checks that `pattern` would be accepted by Java's `Pattern.compile`.
pub fn check_regex(pattern: &str) -> Result<(), String> {
    Parser {
        chars: pattern.chars().collect(),
        pos: 0,
        in_quote: false,
        flags: 0,
        in_behind: false,
        names: BTreeSet::new(),
    }
    .run()
    .map_err(|why| format!("is not a well-formed regular expression: {why}"))
}

/// What the previous token leaves for a following quantifier to apply to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Empty,
    Atom,
    Quantified,
}

/// The value of an escape sequence, as far as ranges in a class care.
enum Esc {
    /// A single code point.
    Char(u32),
    /// A single character given by name (`\N{...}`), whose code point is unknown here.
    Named,
    /// A set of characters such as `\d` or `\p{Lu}`.
    Set,
    /// Something that is not a character at all, such as `\b` or `\1`.
    Other,
}

/// State to restore when a group closes.
struct Group {
    open: usize,
    flags: u8,
    in_behind: bool,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    /// Inside `\Q...\E`, where every character is a literal.
    in_quote: bool,
    flags: u8,
    /// The innermost enclosing look-around is a look-behind, where Java refuses
    /// back-references because their length is unbounded.
    in_behind: bool,
    names: BTreeSet<String>,
}

impl Parser {
    fn run(&mut self) -> Result<(), String> {
        let mut groups: Vec<Group> = Vec::new();
        let mut last = Last::Empty;
        while let Some((c, quoted)) = self.peek() {
            let at = self.pos;
            self.pos += 1;
            if quoted {
                last = Last::Atom;
                continue;
            }
            last = match c {
                '(' => {
                    if let Some(group) = self.open_group(at)? {
                        groups.push(group);
                    }
                    Last::Empty
                }
                ')' => {
                    let Some(group) = groups.pop() else {
                        return Err(format!(
                            "the ')' at character {} has no matching '('",
                            at + 1
                        ));
                    };
                    self.flags = group.flags;
                    self.in_behind = group.in_behind;
                    Last::Atom
                }
                '|' => Last::Empty,
                '[' => {
                    self.class(at)?;
                    Last::Atom
                }
                '\\' => {
                    self.escape(at, false)?;
                    Last::Atom
                }
                '*' | '+' | '?' | '{' => {
                    // Java repeats an empty match for `{n}` with nothing before it,
                    // so only the single-character quantifiers can dangle.
                    if c == '{' {
                        self.counted(at)?;
                    } else if last == Last::Empty {
                        return Err(format!(
                            "the '{c}' at character {} has nothing before it to repeat",
                            at + 1
                        ));
                    } else if last == Last::Quantified {
                        return Err(format!(
                            "the '{c}' at character {} follows another quantifier",
                            at + 1
                        ));
                    }
                    if matches!(self.peek(), Some(('?' | '+', false))) {
                        self.pos += 1;
                    }
                    Last::Quantified
                }
                _ => Last::Atom,
            };
        }
        match groups.last() {
            Some(group) => Err(format!(
                "unclosed group opened at character {}",
                group.open + 1
            )),
            None => Ok(()),
        }
    }

    /// The next character as it takes part in the syntax, and whether it is
    /// quoted by `\Q...\E`. Steps over the quote markers themselves and, in
    /// comments mode, over whitespace and comments.
    fn peek(&mut self) -> Option<(char, bool)> {
        loop {
            let c = *self.chars.get(self.pos)?;
            let next = self.chars.get(self.pos + 1).copied();
            if self.in_quote {
                if c == '\\' && next == Some('E') {
                    self.pos += 2;
                    self.in_quote = false;
                    continue;
                }
                return Some((c, true));
            }
            if c == '\\' && next == Some('Q') {
                self.pos += 2;
                self.in_quote = true;
                continue;
            }
            if self.flags & COMMENTS != 0 && self.skip_comment_space() {
                continue;
            }
            return Some((c, false));
        }
    }

    /// The character at the cursor, exactly as written.
    fn raw(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    /// The character at the cursor within a construct such as an escape or a
    /// group's opening. In comments mode Java skips whitespace and comments
    /// there too, except in the few places that read the pattern as written.
    fn arg(&mut self) -> Option<char> {
        if self.flags & COMMENTS != 0 {
            self.skip_comment_space();
        }
        self.raw()
    }

    /// Skips whitespace and `#` comments; returns whether anything was skipped.
    fn skip_comment_space(&mut self) -> bool {
        let start = self.pos;
        while let Some(c) = self.raw() {
            if matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r') {
                self.pos += 1;
            } else if c == '#' {
                while self.raw().is_some_and(|c| !is_line_end(c)) {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
        self.pos != start
    }

    /// The pattern text from `from` to the cursor, shortened, for messages.
    fn snippet(&self, from: usize) -> String {
        let end = self.pos.min(self.chars.len());
        let text: String = self.chars[from.min(end)..end]
            .iter()
            .take(SNIPPET)
            .map(|&c| match c {
                c if c.is_control() => c.escape_default().to_string(),
                c => c.to_string(),
            })
            .collect();
        let more = if end - from.min(end) > SNIPPET {
            "..."
        } else {
            ""
        };
        format!("\"{text}{more}\"")
    }

    /// Reads what follows `(` at `at`. Returns the state to restore at the
    /// matching `)`, or `None` for a flags-only group like `(?i)`, which has none.
    fn open_group(&mut self, at: usize) -> Result<Option<Group>, String> {
        let saved = Group {
            open: at,
            flags: self.flags,
            in_behind: self.in_behind,
        };
        if self.arg() != Some('?') {
            return Ok(Some(saved));
        }
        self.pos += 1;
        match self.arg() {
            Some(':' | '>') => self.pos += 1,
            Some('=' | '!') => {
                self.pos += 1;
                self.in_behind = false;
            }
            Some('<') => {
                self.pos += 1;
                if let Some('=' | '!') = self.arg() {
                    self.pos += 1;
                    self.in_behind = true;
                } else {
                    let name = self.group_name()?;
                    if self.names.contains(&name) {
                        return Err(format!(
                            "the group name {} at character {} is already used by an earlier group",
                            shorten(&name),
                            at + 1
                        ));
                    }
                    self.names.insert(name);
                }
            }
            _ => {
                let flags = self.inline_flags();
                match self.arg() {
                    Some(')') => {
                        self.pos += 1;
                        self.flags = flags;
                        return Ok(None);
                    }
                    Some(':') => {
                        self.pos += 1;
                        self.flags = flags;
                    }
                    Some(c) => {
                        return Err(format!(
                            "{c:?} at character {} is not an inline flag (Java's are i, d, m, s, u, x, U and c)",
                            self.pos + 1
                        ))
                    }
                    None => {
                        return Err(format!("unclosed group opened at character {}", at + 1))
                    }
                }
            }
        }
        Ok(Some(saved))
    }

    /// Reads flag letters such as `i-s` and returns the flags they leave set.
    fn inline_flags(&mut self) -> u8 {
        let mut flags = self.flags;
        let mut on = true;
        while let Some(c) = self.arg() {
            let bit = match c {
                'x' => COMMENTS,
                'U' => UNICODE_CLASS,
                'i' | 'd' | 'm' | 's' | 'u' | 'c' => 0,
                '-' if on => {
                    on = false;
                    self.pos += 1;
                    continue;
                }
                _ => break,
            };
            flags = if on { flags | bit } else { flags & !bit };
            self.pos += 1;
        }
        flags
    }

    /// Reads `name>` of a named group or `\k<name>`.
    fn group_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        if !self.arg().is_some_and(|c| c.is_ascii_alphabetic()) {
            return Err(format!(
                "the group name at character {} does not start with a Latin letter",
                start + 1
            ));
        }
        let mut name = String::new();
        while let Some(c) = self.arg().filter(char::is_ascii_alphanumeric) {
            name.push(c);
            self.pos += 1;
        }
        if self.arg() != Some('>') {
            return Err(format!(
                "the group name at character {} is not closed by '>' (a name has only Latin letters and digits)",
                start + 1
            ));
        }
        self.pos += 1;
        Ok(name)
    }

    /// Reads the rest of `{n}`, `{n,}` or `{n,m}` opened at `at`.
    fn counted(&mut self, at: usize) -> Result<(), String> {
        if !self.raw().is_some_and(|c| c.is_ascii_digit()) {
            return Err(format!(
                "the '{{' at character {} does not start a repetition like {{2}} or {{1,3}} (write \\{{ for a literal brace)",
                at + 1
            ));
        }
        let min = self.count();
        let mut max = Some(min);
        if self.arg() == Some(',') {
            self.pos += 1;
            max = match self.arg() {
                Some('}') => None,
                _ => Some(self.count()),
            };
        }
        if self.arg() != Some('}') {
            return Err(format!(
                "the repetition opened at character {} is not closed by '}}'",
                at + 1
            ));
        }
        self.pos += 1;
        if min > MAX_REPEAT || max.is_some_and(|max| max > MAX_REPEAT) {
            return Err(format!(
                "the repetition count {} at character {} is too large",
                self.snippet(at),
                at + 1
            ));
        }
        if max.is_some_and(|max| max < min) {
            return Err(format!(
                "the repetition {} at character {} has a minimum above its maximum",
                self.snippet(at),
                at + 1
            ));
        }
        Ok(())
    }

    /// Reads decimal digits inside braces, capped just above the largest count.
    fn count(&mut self) -> u64 {
        let mut n = 0u64;
        while let Some(d) = self.arg().and_then(|c| c.to_digit(10)) {
            n = (n * 10 + u64::from(d)).min(MAX_REPEAT + 1);
            self.pos += 1;
        }
        n
    }

    /// Reads a character class whose `[` is at `open`, including nested classes.
    fn class(&mut self, open: usize) -> Result<(), String> {
        // One entry per unclosed bracket: where it opened and whether it has a
        // member yet (a `]` before the first member is a literal).
        let mut levels: Vec<(usize, bool)> = vec![(open, false)];
        self.skip_negation();
        while let Some(&(level_open, filled)) = levels.last() {
            let Some((c, quoted)) = self.peek() else {
                return Err(format!(
                    "unclosed character class opened at character {}",
                    level_open + 1
                ));
            };
            let at = self.pos;
            self.pos += 1;
            let member = if quoted {
                Esc::Char(u32::from(c))
            } else {
                match c {
                    '[' => {
                        levels.push((at, false));
                        self.skip_negation();
                        continue;
                    }
                    ']' if filled => {
                        levels.pop();
                        mark_filled(&mut levels);
                        continue;
                    }
                    '&' if self.peek() == Some(('&', false)) => {
                        self.pos += 1;
                        // Java needs an operand on at least one side. (Recent
                        // versions also refuse some `&&` with nothing after it,
                        // depending on the members before it; older ones accept
                        // those, and so does this check.)
                        if !filled && matches!(self.peek(), Some((']' | '&', false))) {
                            return Err(format!(
                                "the intersection '&&' at character {} has nothing to intersect",
                                at + 1
                            ));
                        }
                        mark_filled(&mut levels);
                        continue;
                    }
                    '\\' => self.escape(at, true)?,
                    _ => Esc::Char(u32::from(c)),
                }
            };
            mark_filled(&mut levels);
            if let Esc::Char(c) = member {
                self.range(c, at)?;
            }
        }
        Ok(())
    }

    /// A `^` directly after `[` negates the class; anywhere else it is a literal.
    fn skip_negation(&mut self) {
        if self.raw() == Some('^') {
            self.pos += 1;
        }
    }

    /// Reads `-end` after a single-character class member `start` read at `at`,
    /// if a range follows.
    fn range(&mut self, start: u32, at: usize) -> Result<(), String> {
        if self.peek() != Some(('-', false)) {
            return Ok(());
        }
        self.pos += 1;
        let end = match self.peek() {
            // A `-` before the end of the class or a nested class is a literal;
            // an unclosed class is reported by the caller.
            None | Some((']' | '[', false)) => return Ok(()),
            Some(('\\', false)) => {
                let end_at = self.pos;
                self.pos += 1;
                self.escape(end_at, true)?
            }
            Some((c, _)) => {
                self.pos += 1;
                Esc::Char(u32::from(c))
            }
        };
        match end {
            Esc::Char(last) if last < start => Err(format!(
                "the range {} at character {} ends before it starts",
                self.snippet(at),
                at + 1
            )),
            Esc::Set | Esc::Other => Err(format!(
                "the range {} at character {} does not end in a single character",
                self.snippet(at),
                at + 1
            )),
            _ => Ok(()),
        }
    }

    /// Reads an escape whose backslash is at `at`; the cursor is just after it.
    fn escape(&mut self, at: usize, in_class: bool) -> Result<Esc, String> {
        let Some(c) = self.raw() else {
            return Err(format!(
                "the backslash at character {} has nothing after it to escape",
                at + 1
            ));
        };
        self.pos += 1;
        let esc = match c {
            '0' => Esc::Char(self.octal(at)?),
            'x' => Esc::Char(self.hex(at)?),
            'u' => Esc::Char(self.utf16(at)?),
            'c' => {
                let Some(x) = self.arg() else {
                    return Err(format!(
                        "the \\c at character {} needs a character after it",
                        at + 1
                    ));
                };
                self.pos += 1;
                Esc::Char(u32::from(x) ^ 64)
            }
            'a' => Esc::Char(7),
            'e' => Esc::Char(0x1b),
            'f' => Esc::Char(0x0c),
            'n' => Esc::Char(0x0a),
            'r' => Esc::Char(0x0d),
            't' => Esc::Char(9),
            // Java treats \v as a class, except as the end of a range where it
            // is U+000B; both readings accept and reject the same patterns.
            'v' => Esc::Char(0x0b),
            'N' => {
                self.char_name(at)?;
                Esc::Named
            }
            'd' | 'D' | 'h' | 'H' | 's' | 'S' | 'w' | 'W' | 'V' => Esc::Set,
            'p' | 'P' => {
                self.property(c, at)?;
                Esc::Set
            }
            '1'..='9' | 'k' | 'b' | 'A' | 'B' | 'G' | 'R' | 'X' | 'Z' | 'z' if !in_class => {
                if c == 'k' {
                    self.named_reference(at)?;
                } else if c == 'b' {
                    self.grapheme_boundary(at)?;
                }
                if (c == 'k' || c.is_ascii_digit()) && self.in_behind {
                    return Err(format!(
                        "the back-reference at character {} is inside a look-behind, which needs a bounded length",
                        at + 1
                    ));
                }
                Esc::Other
            }
            c if c.is_ascii_alphanumeric() => {
                let place = if in_class {
                    " inside a character class"
                } else {
                    ""
                };
                return Err(format!(
                    "\\{c} at character {} is not a valid escape{place}",
                    at + 1
                ));
            }
            _ => Esc::Char(u32::from(c)),
        };
        Ok(esc)
    }

    /// `\0` takes one to three octal digits (three only when the first is at most 3).
    fn octal(&mut self, at: usize) -> Result<u32, String> {
        let digit = |p: &mut Self| p.arg().and_then(|c| c.to_digit(8));
        let Some(first) = digit(self) else {
            return Err(format!(
                "the \\0 at character {} must be followed by an octal digit",
                at + 1
            ));
        };
        self.pos += 1;
        let mut value = first;
        let most = if first <= 3 { 3 } else { 2 };
        for _ in 1..most {
            let Some(d) = digit(self) else {
                break;
            };
            value = value * 8 + d;
            self.pos += 1;
        }
        Ok(value)
    }

    /// `\x` takes two hex digits or `{hex digits}` naming a code point.
    fn hex(&mut self, at: usize) -> Result<u32, String> {
        let digit = |p: &mut Self| p.arg().and_then(|c| c.to_digit(16));
        if let Some(high) = digit(self) {
            self.pos += 1;
            if let Some(low) = digit(self) {
                self.pos += 1;
                return Ok(high * 16 + low);
            }
        } else if self.arg() == Some('{') {
            self.pos += 1;
            if digit(self).is_some() {
                let mut value = 0u32;
                while let Some(d) = digit(self) {
                    value = value * 16 + d;
                    if value > 0x10_ffff {
                        return Err(format!(
                            "the \\x{{...}} at character {} is beyond the last Unicode code point",
                            at + 1
                        ));
                    }
                    self.pos += 1;
                }
                if self.arg() != Some('}') {
                    return Err(format!(
                        "the \\x{{ at character {} is not closed by '}}'",
                        at + 1
                    ));
                }
                self.pos += 1;
                return Ok(value);
            }
        }
        Err(format!(
            "the \\x at character {} must be followed by two hex digits or {{hex digits}}",
            at + 1
        ))
    }

    /// `\u` takes four hex digits; a surrogate pair written as two escapes is one
    /// character, which matters for ranges of supplementary characters.
    fn utf16(&mut self, at: usize) -> Result<u32, String> {
        let Some(high) = self.four_hex() else {
            return Err(format!(
                "the \\u at character {} must be followed by four hex digits",
                at + 1
            ));
        };
        if (0xd800..0xdc00).contains(&high) {
            let resume = self.pos;
            if self.arg() == Some('\\') {
                self.pos += 1;
                if self.arg() == Some('u') {
                    self.pos += 1;
                    if let Some(low @ 0xdc00..=0xdfff) = self.four_hex() {
                        return Ok(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00));
                    }
                }
            }
            self.pos = resume;
        }
        Ok(high)
    }

    fn four_hex(&mut self) -> Option<u32> {
        let mut value = 0;
        for _ in 0..4 {
            value = value * 16 + self.arg()?.to_digit(16)?;
            self.pos += 1;
        }
        Some(value)
    }

    /// `\N{name}` names a character; the name cannot be checked without
    /// Unicode's name table, so only its shape is. Every character name
    /// (and every name Java derives for an unnamed code point) holds a
    /// letter, so a name without one, such as the count in `\N{2}`, names
    /// nothing, and Java refuses the pattern.
    fn char_name(&mut self, at: usize) -> Result<(), String> {
        let end = if self.arg() == Some('{') {
            self.chars[self.pos..].iter().position(|&c| c == '}')
        } else {
            None
        };
        match end {
            Some(len) if len > 1 => {
                let name = &self.chars[self.pos + 1..self.pos + len];
                if !name.iter().any(char::is_ascii_alphabetic) {
                    let name: String = name.iter().collect();
                    return Err(format!(
                        "the \\N{{{name}}} at character {} names no character: \\N{{...}} takes a character name such as LATIN SMALL LETTER A, not a count",
                        at + 1
                    ));
                }
                self.pos += len + 1;
                Ok(())
            }
            _ => Err(format!(
                "the \\N at character {} must be followed by {{character name}}",
                at + 1
            )),
        }
    }

    /// `\pL` or `\p{Name}`, with a name Java knows.
    fn property(&mut self, letter: char, at: usize) -> Result<(), String> {
        let mut name: String = match self.arg() {
            Some('{') => {
                let from = self.pos + 1;
                let Some(len) = self.chars[from..].iter().position(|&c| c == '}') else {
                    return Err(format!(
                        "the \\{letter}{{ at character {} is not closed by '}}'",
                        at + 1
                    ));
                };
                self.pos = from + len + 1;
                self.chars[from..from + len].iter().collect()
            }
            Some(c) => {
                self.pos += 1;
                c.to_string()
            }
            None => String::new(),
        };
        if self.flags & COMMENTS != 0 {
            name.retain(|c| !matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r'));
        }
        if known_property(&name, self.flags & UNICODE_CLASS != 0) {
            return Ok(());
        }
        Err(format!(
            "the \\{letter} at character {} names an unknown character property {}",
            at + 1,
            self.snippet(at)
        ))
    }

    /// `\k<name>` must refer to a group opened earlier.
    fn named_reference(&mut self, at: usize) -> Result<(), String> {
        if self.arg() != Some('<') {
            return Err(format!(
                "the \\k at character {} must be followed by <group name>",
                at + 1
            ));
        }
        self.pos += 1;
        let name = self.group_name()?;
        if !self.names.contains(&name) {
            return Err(format!(
                "the \\k<{}> at character {} refers to no group opened before it",
                shorten(&name),
                at + 1
            ));
        }
        Ok(())
    }

    /// `\b{g}` is a grapheme boundary; `\b` followed by any other `{` is a
    /// plain boundary followed by a repetition.
    fn grapheme_boundary(&mut self, at: usize) -> Result<(), String> {
        if self.arg() == Some('{') && self.chars.get(self.pos + 1) == Some(&'g') {
            self.pos += 2;
            if self.arg() != Some('}') {
                return Err(format!(
                    "the \\b{{g at character {} is not closed by '}}'",
                    at + 1
                ));
            }
            self.pos += 1;
        }
        Ok(())
    }
}

/// After a nested class or an intersection, the enclosing level has a member.
fn mark_filled(levels: &mut [(usize, bool)]) {
    if let Some(top) = levels.last_mut() {
        top.1 = true;
    }
}

/// A group name shortened for messages.
fn shorten(name: &str) -> &str {
    name.char_indices()
        .nth(SNIPPET)
        .map_or(name, |(cut, _)| &name[..cut])
}

fn is_line_end(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// General categories and Java's combined ones.
const CATEGORIES: &[&str] = &[
    "L", "Lu", "Ll", "Lt", "Lm", "Lo", "LC", "LD", "L1", "M", "Mn", "Mc", "Me", "N", "Nd", "Nl",
    "No", "Z", "Zs", "Zl", "Zp", "C", "Cc", "Cf", "Co", "Cs", "Cn", "P", "Pd", "Ps", "Pe", "Pc",
    "Po", "Pi", "Pf", "S", "Sm", "Sc", "Sk", "So", "all",
];
const POSIX: &[&str] = &[
    "ASCII", "Alnum", "Alpha", "Blank", "Cntrl", "Digit", "Graph", "Lower", "Print", "Punct",
    "Space", "Upper", "XDigit",
];
/// Names after the `java` prefix, one per `Character.isXxx` method.
const JAVA: &[&str] = &[
    "LowerCase",
    "UpperCase",
    "Alphabetic",
    "Ideographic",
    "TitleCase",
    "Digit",
    "Defined",
    "Letter",
    "LetterOrDigit",
    "JavaIdentifierStart",
    "JavaIdentifierPart",
    "UnicodeIdentifierStart",
    "UnicodeIdentifierPart",
    "IdentifierIgnorable",
    "SpaceChar",
    "Whitespace",
    "ISOControl",
    "Mirrored",
];

/// Whether Java would accept `name` in `\p{name}`. Scripts, blocks and binary
/// properties come from tables too large to carry, so after `Is`, `In` or a
/// `script=`/`block=` key any plausibly spelled name is accepted.
fn known_property(name: &str, unicode: bool) -> bool {
    if let Some((key, value)) = name.split_once('=') {
        return match key.to_ascii_lowercase().as_str() {
            "gc" | "general_category" => basic_property(value, unicode),
            "sc" | "script" | "blk" | "block" => plausible_name(value),
            _ => false,
        };
    }
    if basic_property(name, unicode) {
        return true;
    }
    if let Some(rest) = name.strip_prefix("Is") {
        return basic_property(rest, unicode) || plausible_name(rest);
    }
    name.strip_prefix("In").is_some_and(plausible_name)
}

fn basic_property(name: &str, unicode: bool) -> bool {
    CATEGORIES.contains(&name)
        || POSIX
            .iter()
            .any(|p| *p == name || (unicode && p.eq_ignore_ascii_case(name)))
        || name.strip_prefix("java").is_some_and(|m| JAVA.contains(&m))
}

/// A script, block or binary property name: ASCII words joined by spaces,
/// hyphens or underscores, like `Latin`, `Basic Latin` or `White_Space`.
fn plausible_name(name: &str) -> bool {
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    edge_ok(name.chars().next())
        && edge_ok(name.chars().last())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_'))
}

#[cfg(test)]
mod tests;
