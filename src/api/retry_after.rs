//! Parsing of the `Retry-After` response header (RFC 9110 §10.2.3), which gives
//! either a number of seconds or an HTTP date (§5.6.7). When the API asks the
//! component to back off, waiting as long as the server says is better than
//! guessing, so the header is turned into a wait in milliseconds. Dates are parsed
//! by hand, in all three forms a recipient must accept, because the component has
//! no date library and needs nothing beyond whole seconds in UTC.

const DAY_NAMES: [&[u8]; 7] = [b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun"];
const LONG_DAY_NAMES: [&[u8]; 7] = [
    b"Monday",
    b"Tuesday",
    b"Wednesday",
    b"Thursday",
    b"Friday",
    b"Saturday",
    b"Sunday",
];
const MONTHS: [&[u8]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];
/// Days in the year before the first of each month, in a common year.
const DAYS_BEFORE_MONTH: [u64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];

/// Parses an HTTP date into seconds since the Unix epoch. Accepts the preferred
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`)
/// forms, exactly as RFC 9110 spells them (names are case-sensitive). The
/// weekday must be a real day name but need not match the date. Dates before
/// 1970 give `None`.
pub fn parse_http_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (year, month, day, time) = if b.get(3) == Some(&b',') {
        // "Sun, 06 Nov 1994 08:49:37 GMT"
        let layout = b"aaa, 00 aaa 0000 00:00:00 GMT";
        if !fits(b, layout) || !DAY_NAMES.contains(&&b[..3]) {
            return None;
        }
        (number(&b[12..16]), &b[8..11], number(&b[5..7]), &b[17..25])
    } else if let Some(comma) = b.iter().position(|&c| c == b',') {
        // "Sunday, 06-Nov-94 08:49:37 GMT"
        let (name, rest) = b.split_at(comma);
        let layout = b", 00-aaa-00 00:00:00 GMT";
        if !fits(rest, layout) || !LONG_DAY_NAMES.contains(&name) {
            return None;
        }
        // RFC 9110 reads a two-digit year more than 50 years ahead as the
        // previous century; a fixed pivot at 70 is close enough and stable.
        let yy = number(&rest[9..11]);
        let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
        (year, &rest[5..8], number(&rest[2..4]), &rest[12..20])
    } else {
        // "Sun Nov  6 08:49:37 1994"; the day is two digits or a space and one.
        let layout = b"aaa aaa __ 00:00:00 0000";
        if !fits(b, layout) || !DAY_NAMES.contains(&&b[..3]) || !b[9].is_ascii_digit() {
            return None;
        }
        let day = if b[8] == b' ' {
            number(&b[9..10])
        } else {
            number(&b[8..10])
        };
        (number(&b[20..24]), &b[4..7], day, &b[11..19])
    };
    let month = MONTHS.iter().position(|&m| m == month)?;
    let (hour, minute, second) = (
        number(&time[0..2]),
        number(&time[3..5]),
        number(&time[6..8]),
    );
    if year < 1970 || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_since_epoch(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Turns a `Retry-After` value into how many milliseconds to wait from
/// `now_unix_ms`: either delay-seconds (saturating when absurdly large) or an
/// HTTP date, which gives 0 once it has passed. `None` when the value is neither.
pub fn parse_retry_after(value: &str, now_unix_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.bytes().fold(0u64, |n, b| {
            n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
        });
        return Some(seconds.saturating_mul(1000));
    }
    let at = parse_http_date(value)?;
    Some(at.saturating_mul(1000).saturating_sub(now_unix_ms))
}

/// Parses an RFC 3339 timestamp, as the API writes `created_at`
/// (`2014-01-01T05:20:00.12345Z`, or with a `+hh:mm`/`-hh:mm` offset), into
/// milliseconds since the Unix epoch (digits past milliseconds dropped);
/// `None` for anything else or a time before 1970.
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || !fits(&b[..19], b"0000-00-00T00:00:00") {
        return None;
    }
    let (year, month, day) = (number(&b[0..4]), number(&b[5..7]), number(&b[8..10]));
    let (hour, minute, second) = (number(&b[11..13]), number(&b[14..16]), number(&b[17..19]));
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        millis = fraction[..digits]
            .iter()
            .chain(b"00")
            .take(3)
            .fold(0, |n, &d| n * 10 + u64::from(d - b'0'));
        rest = &fraction[digits..];
    }
    let offset: i64 = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), ..] if fits(&rest[1..], b"00:00") => {
            let minutes = (number(&rest[1..3]) * 60 + number(&rest[4..6])) as i64;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || year < 1970 {
        return None;
    }
    let month = (month - 1) as usize;
    if day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let local = days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    let utc = u64::try_from(local as i64 - offset).ok()?;
    Some(utc * 1000 + millis)
}

/// Whether `b` has the shape of `layout`, where `a` stands for an ASCII
/// letter, `0` for a digit, `_` for a digit or space, and any other byte for itself.
fn fits(b: &[u8], layout: &[u8]) -> bool {
    b.len() == layout.len()
        && b.iter().zip(layout).all(|(&c, &l)| match l {
            b'a' => c.is_ascii_alphabetic(),
            b'0' => c.is_ascii_digit(),
            b'_' => c == b' ' || c.is_ascii_digit(),
            _ => c == l,
        })
}

/// The value of ASCII digits already checked by `fits`.
fn number(digits: &[u8]) -> u64 {
    digits
        .iter()
        .fold(0, |n, &d| n * 10 + u64::from(d.wrapping_sub(b'0')))
}

fn is_leap(year: u64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in the month with zero-based index `month`.
fn days_in_month(year: u64, month: usize) -> u64 {
    match month {
        1 if is_leap(year) => 29,
        1 => 28,
        3 | 5 | 8 | 10 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date (`month` zero-based, `year` ≥ 1970).
fn days_since_epoch(year: u64, month: usize, day: u64) -> u64 {
    // Leap years in 1..=y; the difference counts those in 1970..year.
    let leap_years = |y: u64| y / 4 - y / 100 + y / 400;
    let whole_years = (year - 1970) * 365 + leap_years(year - 1) - leap_years(1969);
    let leap_day = u64::from(month > 1 && is_leap(year));
    whole_years + DAYS_BEFORE_MONTH[month] + leap_day + day - 1
}

/// `unix_ms` as an RFC 3339 UTC timestamp with milliseconds
/// (`2026-12-01T19:30:00.000Z`), for messages that name a moment. Moments
/// past the year 9999 read as its last millisecond.
pub fn format_rfc3339_ms(unix_ms: u64) -> String {
    let unix_ms = unix_ms.min(253_402_300_799_999);
    let (mut days, in_day) = (unix_ms / 86_400_000, unix_ms % 86_400_000);
    let mut year = 1970;
    loop {
        let length = if is_leap(year) { 366 } else { 365 };
        if days < length {
            break;
        }
        days -= length;
        year += 1;
    }
    let mut month = 0;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    let (seconds, millis) = (in_day / 1000, in_day % 1000);
    format!(
        "{year:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        month + 1,
        days + 1,
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formatting_a_moment_reads_back_as_the_same_moment() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(951_782_400_123),
            "2000-02-29T00:00:00.123Z"
        );
        assert_eq!(format_rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.999Z");
        for ms in [
            1,
            86_399_999,
            1_764_617_400_000,
            4_102_444_799_999,
            1_709_164_800_000,
        ] {
            let text = format_rfc3339_ms(ms);
            assert_eq!(parse_rfc3339_ms(&text), Some(ms), "{text}");
        }
    }

    /// Counts days one month at a time, independently of `days_since_epoch`.
    fn slow_days(year: u64, month: usize, day: u64) -> u64 {
        let mut days = 0;
        for y in 1970..year {
            days += if is_leap(y) { 366 } else { 365 };
        }
        for m in 0..month {
            days += days_in_month(year, m);
        }
        days + day - 1
    }

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Sun Nov 06 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Wed Nov 16 08:49:37 1994"),
            Some(784_111_777 + 10 * 86_400)
        );
    }

    #[test]
    fn known_instants() {
        let cases = [
            ("Thu, 01 Jan 1970 00:00:00 GMT", 0),
            ("Thu, 01 Jan 1970 00:00:01 GMT", 1),
            ("Wed, 31 Dec 1969 23:59:59 GMT", u64::MAX),
            ("Tue, 29 Feb 2000 00:00:00 GMT", 951_782_400),
            ("Sat, 09 Sep 2001 01:46:40 GMT", 1_000_000_000),
            ("Tue, 19 Jan 2038 03:14:07 GMT", 2_147_483_647),
            ("Thu, 29 Feb 2024 12:00:00 GMT", 1_709_208_000),
            ("Fri, 31 Dec 9999 23:59:59 GMT", 253_402_300_799),
            ("Sat, 31 Dec 2016 23:59:60 GMT", 1_483_228_800),
        ];
        for (s, want) in cases {
            let got = parse_http_date(s);
            if want == u64::MAX {
                assert_eq!(got, None, "{s}");
            } else {
                assert_eq!(got, Some(want), "{s}");
            }
        }
    }

    #[test]
    fn day_count_matches_a_slow_count() {
        for year in (1970..2500).step_by(7).chain([2000, 2100, 2400]) {
            for month in 0..12 {
                for day in [1, days_in_month(year, month)] {
                    assert_eq!(
                        days_since_epoch(year, month, day),
                        slow_days(year, month, day),
                        "{year}-{month}-{day}"
                    );
                }
            }
        }
    }

    #[test]
    fn two_digit_years_pivot_at_70() {
        let at = |s: &str| parse_http_date(s).map(|t| t / 86_400);
        assert_eq!(at("Thursday, 01-Jan-70 00:00:00 GMT"), Some(0));
        assert_eq!(
            at("Friday, 31-Dec-99 00:00:00 GMT"),
            Some(slow_days(1999, 11, 31))
        );
        assert_eq!(
            at("Saturday, 01-Jan-00 00:00:00 GMT"),
            Some(slow_days(2000, 0, 1))
        );
        assert_eq!(
            at("Sunday, 01-Jan-69 00:00:00 GMT"),
            Some(slow_days(2069, 0, 1))
        );
    }

    #[test]
    fn validates_calendar_and_clock() {
        for s in [
            "Thu, 29 Feb 2024 00:00:00 GMT",
            "Tue, 29 Feb 2000 00:00:00 GMT",
            "Mon, 30 Apr 2001 23:59:59 GMT",
            "Mon, 31 Dec 2001 23:59:60 GMT",
        ] {
            assert!(parse_http_date(s).is_some(), "{s}");
        }
        for s in [
            "Wed, 29 Feb 2023 00:00:00 GMT",
            "Mon, 29 Feb 2100 00:00:00 GMT",
            "Mon, 31 Apr 2001 00:00:00 GMT",
            "Mon, 32 Jan 2001 00:00:00 GMT",
            "Mon, 00 Jan 2001 00:00:00 GMT",
            "Mon, 01 Jan 2001 24:00:00 GMT",
            "Mon, 01 Jan 2001 23:60:00 GMT",
            "Mon, 01 Jan 2001 23:59:61 GMT",
            "Monday, 31-Apr-01 00:00:00 GMT",
            "Mon Apr 31 00:00:00 2001",
            "Mon Jan  0 00:00:00 2001",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
    }

    #[test]
    fn ignores_a_mismatched_weekday_but_requires_a_real_one() {
        assert_eq!(
            parse_http_date("Mon, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Friday, 06-Nov-94 08:49:37 GMT"),
            Some(784_111_777)
        );
        for s in [
            "Sux, 06 Nov 1994 08:49:37 GMT",
            "sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06-Nov-94 08:49:37 GMT",
            "Sundae, 06-Nov-94 08:49:37 GMT",
            "Sux Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(s), None, "{s}");
        }
    }

    #[test]
    fn rejects_malformed_dates() {
        for s in [
            "",
            "GMT",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49:37 gmt",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun,  06 Nov 1994 08:49:37 GMT",
            " Sun, 06 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT ",
            "Sun, 06 Nov 1994 08-49-37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT+1",
            "Sun, +6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37",
            ", 06-Nov-94 08:49:37 GMT",
            "Sun Nov 6 08:49:37 1994",
            "Sun Nov 6  08:49:37 1994",
            "Sun Nov    08:49:37 1994",
            "Sun Nov  6 08:49:37 94",
            "Sun Nov  6 08:49:37 1994 GMT",
            "1994-11-06T08:49:37Z",
            "Sun, 06 Nov 1994 08:49:3é GMT",
            "Sün, 06 Nov 1994 08:49:37 GMT",
            "Sun, ０6 Nov 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(s), None, "{s:?}");
        }
    }

    #[test]
    fn never_panics_on_truncated_or_odd_input() {
        for s in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "é,é,é,é,é,é,é,é,é,é,é,é,é,é,é",
            "日本語日本語日本語日本語",
            ",,,,,,,,,,,,,,,,,,,,,,,,,,,,,",
            "999, 99 999 9999 99:99:99 GMT",
        ] {
            for (i, _) in s.char_indices() {
                let _ = parse_http_date(&s[..i]);
                let _ = parse_http_date(&s[i..]);
                let _ = parse_retry_after(&s[..i], u64::MAX);
            }
        }
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after("120", 5), Some(120_000));
        assert_eq!(parse_retry_after("0", 5), Some(0));
        assert_eq!(parse_retry_after("  7\t", 0), Some(7_000));
        assert_eq!(parse_retry_after("007", 0), Some(7_000));
        assert_eq!(parse_retry_after("18446744073709552", 0), Some(u64::MAX));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", 0),
            Some(u64::MAX)
        );
        for s in [
            "", "   ", "-1", "+1", "1.5", "1e3", "12 s", "1 2", "٣", "0x10",
        ] {
            assert_eq!(parse_retry_after(s, 0), None, "{s:?}");
        }
    }

    #[test]
    fn retry_after_dates() {
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at_ms = 784_111_777_000;
        assert_eq!(parse_retry_after(date, at_ms - 1_500), Some(1_500));
        assert_eq!(parse_retry_after(date, at_ms), Some(0));
        assert_eq!(parse_retry_after(date, at_ms + 60_000), Some(0));
        assert_eq!(parse_retry_after(date, 0), Some(at_ms));
        assert_eq!(
            parse_retry_after(" Sun Nov  6 08:49:37 1994 ", at_ms - 2_000),
            Some(2_000)
        );
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", at_ms - 3_000),
            Some(3_000)
        );
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994", 0), None);
        assert_eq!(parse_retry_after("soon", 0), None);
    }

    #[test]
    fn rfc3339_timestamps_as_the_api_writes_them() {
        // 2014-01-01T05:20:00Z is 1388553600 s.
        assert_eq!(
            parse_rfc3339_ms("2014-01-01T05:20:00Z"),
            Some(1_388_553_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2014-01-01T05:20:00.12345Z"),
            Some(1_388_553_600_123)
        );
        assert_eq!(
            parse_rfc3339_ms("2014-01-01T05:20:00.5z"),
            Some(1_388_553_600_500)
        );
        assert_eq!(
            parse_rfc3339_ms("2014-01-01T07:20:00+02:00"),
            Some(1_388_553_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2014-01-01T03:50:00-01:30"),
            Some(1_388_553_600_000)
        );
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T00:00:00Z"),
            Some(1_709_164_800_000)
        );
        for bad in [
            "",
            "2014-01-01 05:20:00Z",
            "2014-01-01T05:20:00",
            "2014-01-01T05:20:00.Z",
            "2014-13-01T05:20:00Z",
            "2023-02-29T00:00:00Z",
            "2014-01-01T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2014-01-01T05:20:00+0200",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
