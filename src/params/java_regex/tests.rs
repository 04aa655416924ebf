use super::check_regex;

#[track_caller]
fn ok(p: &str) {
    if let Err(e) = check_regex(p) {
        panic!("{p:?} should be accepted, got: {e}");
    }
}

#[track_caller]
fn bad(p: &str, fragment: &str) {
    match check_regex(p) {
        Ok(()) => panic!("{p:?} should be rejected"),
        Err(e) => {
            assert!(
                e.starts_with("is not a well-formed regular expression: "),
                "{p:?}: {e}"
            );
            assert!(e.contains(fragment), "{p:?}: {e:?} lacks {fragment:?}");
        }
    }
}

#[test]
fn accepts_plain_and_empty_patterns() {
    ok("");
    ok("abc");
    ok("^.*@example\\.com$");
    ok("a|");
    ok("|");
    ok("(a|)");
    ok("()");
    ok("]}");
    ok("ünïcödé😀+");
}

#[test]
fn accepts_escapes() {
    for p in [
        "\\d\\D\\s\\S\\w\\W\\h\\H\\v\\V\\R\\X",
        "\\.\\\\\\-\\/\\ \\é",
        "\\x41\\x{1F600}\\x{0000000041}\\x{10FFFF}",
        "\\u0041\\uD83D\\uDE00",
        "\\01\\0377\\0400\\018",
        "\\t\\n\\r\\f\\a\\e\\cA",
        "\\p{Lu}\\P{L}\\pL\\p{IsLatin}\\p{InGreek}\\p{InBasic Latin}",
        "\\p{javaLowerCase}\\p{Alpha}\\p{IsAlphabetic}\\p{sc=Latin}\\p{gc=Lu}",
        "\\N{LATIN SMALL LETTER A}",
        "\\N{EGYPTIAN HIEROGLYPH A001}",
        "\\b\\B\\A\\G\\Z\\z\\b{g}\\b{2}",
        "(a)\\1\\2\\9",
        "(?<year>\\d{4})-\\k<year>",
    ] {
        ok(p);
    }
}

#[test]
fn rejects_bad_escapes() {
    bad("\\", "backslash at character 1 has nothing after it");
    bad("ab\\", "backslash at character 3");
    bad("\\y", "\\y at character 1 is not a valid escape");
    bad("\\E", "\\E at character 1");
    bad(
        "\\0",
        "\\0 at character 1 must be followed by an octal digit",
    );
    bad("\\08", "octal digit");
    bad("\\x", "two hex digits");
    bad("\\x4g", "two hex digits");
    bad("\\x{}", "two hex digits");
    bad("\\x{", "two hex digits");
    bad("\\x{41", "not closed by '}'");
    bad("\\x{110000}", "beyond the last Unicode code point");
    bad("\\x{FFFFFFFFFFFFFFFFFFFF}", "beyond");
    bad("\\u12", "four hex digits");
    bad("\\uD800\\u12", "four hex digits");
    bad("\\c", "\\c at character 1");
    bad("\\N", "\\N at character 1");
    bad("\\N{}", "\\N at character 1");
    bad("\\N{LATIN", "\\N at character 1");
    // Java reads \N{...} as a character name, never as a count.
    bad("\\N{2}", "\\N{2} at character 1 names no character");
    bad("a\\N{,2}", "\\N{,2} at character 2 names no character");
    bad("\\N{2,}", "names no character");
    bad("\\N{1,3}", "names no character");
    bad("\\b{gx", "\\b{g at character 1");
    bad("\\b{x}", "'{' at character 3");
    bad("\\k", "\\k at character 1 must be followed by <group name>");
    bad("\\k<a>(?<a>x)", "refers to no group opened before it");
    bad("\\k<1>", "does not start with a Latin letter");
    bad("\\k<ab", "not closed by '>'");
}

#[test]
fn checks_property_names() {
    bad("\\p", "unknown character property");
    bad("\\pl", "unknown character property");
    bad("\\p{}", "unknown character property");
    bad("\\p{Foo}", "unknown character property \"\\p{Foo}\"");
    bad("\\p{lower}", "unknown character property");
    bad("\\p{javaFoo}", "unknown character property");
    bad("\\p{IsLatin }", "unknown character property");
    bad("\\p{Is}", "unknown character property");
    bad("\\p{foo=Lu}", "unknown character property");
    bad("\\p{gc=Foo}", "unknown character property");
    bad("\\p{Lu", "\\p{ at character 1 is not closed");
    bad("\\P{", "\\P{ at character 1 is not closed");
    // Under the U flag POSIX names ignore case, but only within its scope.
    ok("(?U)\\p{lower}");
    ok("(?U:\\p{LOWER})");
    bad("(?U:a)\\p{lower}", "unknown character property");
    bad("(?U)(?-U)\\p{lower}", "unknown character property");
}

#[test]
fn handles_quoting() {
    ok("\\Q(*[\\E");
    ok("\\Qunterminated ( [ {");
    ok("\\Q\\");
    ok("\\Q\\\\E");
    ok("a\\Q\\E*");
    ok("\\Qa\\E*");
    ok("\\Q*\\E");
    bad("\\\\Q)", "')' at character 4 has no matching '('");
    bad("\\Q\\\\E)", "')' at character 6");
    bad("\\Qa\\Eb\\E", "\\E at character 7");
    bad("\\Q\\E*", "'*' at character 5 has nothing before it");
    ok("[\\Q]\\E]");
    ok("[\\Q^\\E]");
    ok("[a\\Q\\E-z]");
    ok("[a-\\Q\\E]");
    ok("[z\\Q-\\Ea]");
    bad("[\\Qz\\E-a]", "ends before it starts");
    bad("[z\\Q\\E-a]", "ends before it starts");
    bad("[\\Qabc", "unclosed character class opened at character 1");
}

#[test]
fn accepts_classes() {
    for p in [
        "[abc]",
        "[^abc]",
        "[a-z]",
        "[a-zA-Z0-9._%+-]+",
        "[a-z&&[^aeiou]]",
        "[a-z&&def]",
        "[a&&]",
        "[&&a]",
        "[a&&&b]",
        "[[a-c][x-z]]",
        "[^[^a]]",
        "[]a]",
        "[^]a]",
        "[a-]",
        "[-a]",
        "[a-z-0]",
        "[\\d-z]",
        "[\\w&&\\d]",
        "[\\[\\]\\\\]",
        "[\\x41-\\x5A]",
        "[\\u0041-\\u005a]",
        "[\\uD83D\\uDE00-\\uD83D\\uDE4F]",
        "[😀-😎]",
        "[\\0101-\\0132]",
        "[\\v-z]",
        "[\\p{L}-z]",
        "[a^]",
        "[&]",
        "[a-c&&b]",
        "[\\N{LATIN SMALL LETTER A}-z]",
    ] {
        ok(p);
    }
}

#[test]
fn rejects_bad_classes() {
    bad("[", "unclosed character class opened at character 1");
    bad("[a", "unclosed character class opened at character 1");
    bad("[^", "unclosed character class");
    bad("[]", "unclosed character class");
    bad("[^]", "unclosed character class");
    bad("[[]]", "unclosed character class opened at character 1");
    bad("x[a[b]", "unclosed character class opened at character 2");
    bad("[a-", "unclosed character class");
    bad("[\\", "backslash at character 2");
    bad(
        "[z-a]",
        "the range \"z-a\" at character 2 ends before it starts",
    );
    bad("[\\x5A-\\x41]", "ends before it starts");
    bad("[\\uDE00-\\uD83D]", "ends before it starts");
    bad("[a-\\d]", "does not end in a single character");
    bad("[a-\\p{L}]", "does not end in a single character");
    bad("[a-\\v]", "ends before it starts");
    bad(
        "[\\b]",
        "\\b at character 2 is not a valid escape inside a character class",
    );
    bad("[\\1]", "inside a character class");
    bad("[\\k<a>]", "inside a character class");
    bad("[\\Z]", "inside a character class");
}

#[test]
fn accepts_intersections_with_one_operand() {
    // Java 17 accepts all of these; later versions refuse the ones where a
    // lone Latin-1 character follows a class escape right before `&&`.
    for p in [
        "[a&&]",
        "[ab&&]",
        "[\\w&&]",
        "[a\\w&&]",
        "[\\w[a]&&]",
        "[a&&b&&]",
        "[a&&[b]c&&]",
        "[\\wa&&b]",
        "[\\wa&&]",
        "[\\w\\x61&&]",
        "[a&&\\wb&&]",
        "[&&a]",
        "[&&[a]]",
    ] {
        ok(p);
    }
    bad("[&&]", "'&&' at character 2 has nothing to intersect");
    bad("[^&&]", "'&&' at character 3 has nothing to intersect");
    bad("[&&&&a]", "'&&' at character 2 has nothing to intersect");
    bad("x[[&&]]", "'&&' at character 4 has nothing to intersect");
}

#[test]
fn accepts_groups_and_flags() {
    for p in [
        "(a)",
        "(?:a)",
        "(?=a)",
        "(?!a)",
        "(?<=a)",
        "(?<!a)",
        "(?>a)",
        "(?<name1>a)",
        "(?i)abc",
        "(?i-s)abc",
        "(?idmsuxUc)",
        "(?-i)",
        "(?)",
        "(?-)",
        "(?i:a|b)",
        "((((a))))",
        "(?<=a+)b",
        "(?<=(?=(a)\\1)b)c",
        "(?<=a)\\1",
        "(?<a>\\k<a>)",
    ] {
        ok(p);
    }
}

#[test]
fn rejects_bad_groups() {
    bad("(", "unclosed group opened at character 1");
    bad("ab(c", "unclosed group opened at character 3");
    bad("((a)", "unclosed group opened at character 1");
    bad("(a(b)", "unclosed group opened at character 1");
    bad("(a)(b(c)", "unclosed group opened at character 4");
    bad(")", "the ')' at character 1 has no matching '('");
    bad("a)", "')' at character 2");
    bad("())", "')' at character 3");
    bad("(?", "unclosed group opened at character 1");
    bad("(?:", "unclosed group opened at character 1");
    bad("(?<", "does not start with a Latin letter");
    bad("(?<>a)", "does not start with a Latin letter");
    bad("(?<1a>x)", "does not start with a Latin letter");
    bad("(?<a_b>x)", "not closed by '>'");
    bad("(?<n", "not closed by '>'");
    bad("(?<n>a", "unclosed group opened at character 1");
    bad("(?z)", "'z' at character 3 is not an inline flag");
    bad("(?i-s-m)", "'-' at character 6 is not an inline flag");
    bad("(?$)", "'$' at character 3");
    bad("(?\n)", "'\\n' at character 3 is not an inline flag");
    bad(
        "(?<a>x)(?<a>y)",
        "group name a at character 8 is already used",
    );
    bad(
        "(?<=(a)\\1)b",
        "back-reference at character 8 is inside a look-behind",
    );
    bad("(?<!a|\\k<n>)(?<n>x)", "refers to no group");
    bad("(?<n>a)(?<=\\k<n>)", "inside a look-behind");
    bad("(?<=(?=x)\\1)", "inside a look-behind");
}

#[test]
fn accepts_quantifiers() {
    for p in [
        "a*",
        "a+",
        "a?",
        "a*?",
        "a+?",
        "a??",
        "a*+",
        "a++",
        "a?+",
        "a{2}",
        "a{2,}",
        "a{2,5}",
        "a{2}?",
        "a{2,}+",
        "a{0}",
        "a{2147483647}",
        "(ab)*",
        "[ab]+",
        "\\d{3}",
        "^*",
        "$+",
        "\\b+",
        "(?=a)*",
        "\\Qab\\Ez*",
        // Java repeats an empty match here rather than complaining.
        "{2}",
        "a{2}{3}",
        "a*{2}",
        "(|{2})",
    ] {
        ok(p);
    }
}

#[test]
fn rejects_bad_quantifiers() {
    bad(
        "*",
        "the '*' at character 1 has nothing before it to repeat",
    );
    bad("+a", "'+' at character 1 has nothing before it");
    bad("?", "'?' at character 1");
    bad("(*)", "'*' at character 2 has nothing before it");
    bad("a|*", "'*' at character 3 has nothing before it");
    bad("(?i)*", "'*' at character 5 has nothing before it");
    bad("a(?i)*", "'*' at character 6 has nothing before it");
    bad("a**", "the '*' at character 3 follows another quantifier");
    bad("a*?+", "'+' at character 4 follows another quantifier");
    bad("a{2}?+", "'+' at character 6 follows another quantifier");
    bad("a{2}*", "follows another quantifier");
    bad("{", "the '{' at character 1 does not start a repetition");
    bad("a{", "'{' at character 2 does not start a repetition");
    bad("a{,3}", "does not start a repetition");
    bad("a{x}", "does not start a repetition");
    bad("a{ 2}", "does not start a repetition");
    bad(
        "a{1,2",
        "the repetition opened at character 2 is not closed by '}'",
    );
    bad("a{1", "not closed");
    bad("a{1,x}", "not closed");
    bad(
        "a{5,2}",
        "the repetition \"{5,2}\" at character 2 has a minimum above its maximum",
    );
    bad("a{2147483648}", "too large");
    bad("a{1,99999999999999999999999}", "too large");
}

#[test]
fn follows_comments_mode() {
    ok("(?x)a *");
    ok("(?x)a* ?");
    ok("(?x)( ?:a)");
    ok("(?x)a # comment (\nb");
    ok("(?x)a# comment (");
    ok("(?x)[a b]");
    ok("(?x)[a& &b]");
    ok("(?x)[a - z]");
    ok("(?x)a{2 }");
    ok("(?x)a{1 , 3}");
    ok("(?x)a#\r*");
    ok("(?x)\\ *");
    ok("(?x:a # (\n)b");
    bad(
        "(?x)a# comment (\n)",
        "')' at character 18 has no matching '('",
    );
    bad("(?x:a)# (", "unclosed group opened at character 9");
    bad("((?x)a)# (", "unclosed group opened at character 10");
    bad("(?x)(?-x)a # (", "unclosed group opened at character 14");
    bad("(?x)a{ 2}", "does not start a repetition");
    bad("(?x)[z - a]", "ends before it starts");
    // Java also skips whitespace inside escapes and group openings there.
    for p in [
        "(?x)\\c a",
        "(?x)\\0 1 2",
        "(?x)\\x 4 1",
        "(?x)\\x { 41 }",
        "(?x)\\u 00 41",
        "(?x)\\uD83D \\ u DE00",
        "(?x)(?<a>x)\\k < a >",
        "(?x)\\p {L}",
        "(?x)\\p{ L}",
        "(?x)\\N {LATIN SMALL LETTER A}",
        "(?x)\\b {g}",
        "(?x)( ?<a>x)",
        "(?x)(? :x)",
        "(?x)(?< a >x)",
        "(?x)(?i )",
        "(?x)(?i - s :x)",
        "(?x)\\ *",
    ] {
        ok(p);
    }
    bad("(?x)\\c ", "\\c at character 5 needs a character");
    bad(
        "(?x)[\\c ]",
        "unclosed character class opened at character 5",
    );
    bad(
        "(?x)\\b{ g}",
        "'{' at character 7 does not start a repetition",
    );
    // ...but not between a backslash and the escaped character.
    ok("(?x)\\ d*");
}

#[test]
fn positions_count_characters_not_bytes() {
    bad("éé(", "unclosed group opened at character 3");
    bad("😀😀)", "')' at character 3");
    bad("日本[z-a]", "at character 4");
}

#[test]
fn never_panics_on_odd_input() {
    let odd = [
        "\\",
        "[",
        "(?",
        "(?<",
        "(?<=",
        "\\x{",
        "\\x{1",
        "{",
        "{1",
        "{1,",
        "[a-",
        "[\\",
        "[^",
        "\\Q",
        "\\E",
        "(?x)#",
        "(?x",
        "\\p{",
        "\\N{",
        "\\k<",
        "\\u",
        "\\uD800\\u",
        "\\c",
        "\\0",
        "[&&",
        "[a&&",
        "]",
        "}",
        "é\\",
        "[é-",
        "(?<é>a)",
        "\\k<é>",
        "\u{0}",
        "a{99999999999999999999}",
        "\\x{ffffffffffffffffffff",
        "(?U)\\p",
    ];
    for p in odd {
        let _ = check_regex(p);
        // Every prefix, cut at character boundaries, must be handled too.
        for (i, _) in p.char_indices() {
            let _ = check_regex(&p[..i]);
        }
    }
}

#[test]
fn deep_nesting_is_linear_and_safe() {
    let n = 200_000;
    let deep = format!("{}a{}", "(".repeat(n), ")".repeat(n));
    ok(&deep);
    bad(&"(".repeat(n), "unclosed group");
    let classes = format!("{}a{}", "[".repeat(n), "]".repeat(n));
    ok(&classes);
    bad(&"[".repeat(n), "unclosed character class");
    ok(&"a*".repeat(n));
    ok(&"\\Q".repeat(n));
    let names: String = (0..20_000).map(|i| format!("(?<g{i}>x)")).collect();
    ok(&names);
    ok(&"(?x)#".repeat(n));
}
