//! HTTP-date formatting and parsing (RFC 9110 §5.6.7).
//!
//! Owns the conversion between Unix seconds and the three HTTP-date forms. We always *send*
//! IMF-fixdate and *accept* all three forms, as §5.6.7 requires of recipients. Written by hand
//! (about 100 lines of calendar arithmetic) rather than pulling a date crate into the binary.
//! Never panics on any input; dates before 1970 or past year 9999 are refused.

const DAY_NAMES: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
const MONTH_NAMES: [&[u8; 3]; 12] =
    [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// Formats `unix_secs` as an IMF-fixdate.
pub fn format_http_date(unix_secs: u64) -> [u8; IMF_FIXDATE_LEN] {
    let days = unix_secs / 86_400;
    let secs_of_day = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = *b"Thu, 01 Jan 1970 00:00:00 GMT";
    out[..3].copy_from_slice(DAY_NAMES[(days % 7) as usize]);
    put2(&mut out[5..7], day);
    out[8..11].copy_from_slice(MONTH_NAMES[(month - 1) as usize]);
    // Years past 9999 cannot be written in four digits; clamp instead of emitting garbage.
    let year = year.min(9999);
    put2(&mut out[12..14], year / 100);
    put2(&mut out[14..16], year % 100);
    put2(&mut out[17..19], secs_of_day / 3600);
    put2(&mut out[20..22], secs_of_day / 60 % 60);
    put2(&mut out[23..25], secs_of_day % 60);
    out
}

/// The last two HTTP-dates formatted, least recently used replaced first: a response's `Date`
/// and its file's `Last-Modified` each stay put for a second or longer, so a connection's
/// responses (and a pooled connection's successors) format almost nothing. A memo of a pure
/// function: never stale, whatever it is reused for.
#[derive(Debug, Clone)]
pub struct HttpDateMemo {
    entries: [(u64, [u8; IMF_FIXDATE_LEN]); 2],
    /// The entry to replace next (the one not used last).
    victim: usize,
}

impl Default for HttpDateMemo {
    fn default() -> Self {
        let epoch = (0, *b"Thu, 01 Jan 1970 00:00:00 GMT");
        HttpDateMemo { entries: [epoch; 2], victim: 0 }
    }
}

impl HttpDateMemo {
    /// [`format_http_date`] of `unix_secs`.
    pub fn format(&mut self, unix_secs: u64) -> &[u8; IMF_FIXDATE_LEN] {
        let i = match self.entries.iter().position(|(secs, _)| *secs == unix_secs) {
            Some(i) => i,
            None => {
                let i = self.victim;
                self.entries[i] = (unix_secs, format_http_date(unix_secs));
                i
            }
        };
        self.victim = 1 - i;
        &self.entries[i].1
    }
}

fn put2(dst: &mut [u8], v: u64) {
    dst[0] = b'0' + (v / 10 % 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Parses any of the three HTTP-date forms into Unix seconds; `None` if malformed.
pub fn parse_http_date(s: &[u8]) -> Option<u64> {
    let s = trim(s);
    if s.len() == IMF_FIXDATE_LEN && s.get(3) == Some(&b',') {
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
        expect(s, &[(4, b' '), (7, b' '), (11, b' '), (16, b' '), (25, b' ')])?;
        if &s[26..] != b"GMT" {
            return None;
        }
        let day = digits(&s[5..7])?;
        let month = month_index(&s[8..11])?;
        let year = digits(&s[12..16])?;
        return to_unix(year, month, day, &s[17..25]);
    }
    if s.len() == 24 && s.get(3) == Some(&b' ') {
        // asctime: "Sun Nov  6 08:49:37 1994"
        expect(s, &[(7, b' '), (10, b' '), (19, b' ')])?;
        let month = month_index(&s[4..7])?;
        let day = if s[8] == b' ' { digits(&s[9..10])? } else { digits(&s[8..10])? };
        let year = digits(&s[20..24])?;
        return to_unix(year, month, day, &s[11..19]);
    }
    // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
    let comma = s.iter().position(|&b| b == b',')?;
    let rest = s.get(comma + 1..)?;
    if rest.len() != 23 || rest[0] != b' ' || &rest[20..] != b"GMT" {
        return None;
    }
    expect(rest, &[(3, b'-'), (7, b'-'), (10, b' '), (19, b' ')])?;
    let day = digits(&rest[1..3])?;
    let month = month_index(&rest[4..7])?;
    let yy = digits(&rest[8..10])?;
    // §5.6.7: a two-digit year more than 50 years in the future is in the past century. Without a
    // clock we use the fixed pivot 70 (Unix epoch), which is exact for every date we can serve.
    let year = if yy >= 70 { 1900 + yy } else { 2000 + yy };
    to_unix(year, month, day, &rest[11..19])
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &s[start..end]
}

fn expect(s: &[u8], at: &[(usize, u8)]) -> Option<()> {
    at.iter().all(|&(i, b)| s.get(i) == Some(&b)).then_some(())
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |acc, &b| acc * 10 + u64::from(b - b'0')))
}

fn month_index(s: &[u8]) -> Option<u64> {
    MONTH_NAMES.iter().position(|m| m.as_slice() == s).map(|i| i as u64 + 1)
}

/// `hms` is "HH:MM:SS".
fn to_unix(year: u64, month: u64, day: u64, hms: &[u8]) -> Option<u64> {
    expect(hms, &[(2, b':'), (5, b':')])?;
    let (h, m, sec) = (digits(&hms[0..2])?, digits(&hms[3..5])?, digits(&hms[6..8])?);
    // 60 allows a leap second, which we fold into the next minute.
    if !(1970..=9999).contains(&year) || day == 0 || day > 31 || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + h * 3600 + m * 60 + sec)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (year >= 1970). The year is shifted to
/// start in March so the leap day falls at the end, making month lengths a closed formula.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March = 0
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    (era * 146_097 + day_of_era).saturating_sub(719_468)
}

/// Inverse of [`days_from_civil`]: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc_example() {
        assert_eq!(&format_http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&format_http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&format_http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn the_memo_formats_like_the_function() {
        let mut memo = HttpDateMemo::default();
        // Date and Last-Modified interleaved, the Date moving on: every answer must be exact.
        let mut seen = 0;
        for now in [1_000_000_000u64, 1_000_000_000, 1_000_000_001, 1_000_000_001, 0, 5, 1_000_000_001] {
            for secs in [now, 784_111_777] {
                assert_eq!(memo.format(secs), &format_http_date(secs), "{secs}");
                seen += 1;
            }
        }
        assert_eq!(seen, 14);
    }

    #[test]
    fn parses_all_three_forms() {
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date(b"Sunday, 06-Nov-94 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse_http_date(b"Sun Nov  6 08:49:37 1994"), Some(784_111_777));
    }

    #[test]
    fn round_trips_across_centuries() {
        for secs in (0..4_102_444_800u64).step_by(86_400 * 37 + 3_601) {
            assert_eq!(parse_http_date(&format_http_date(secs)), Some(secs), "secs={secs}");
        }
    }

    #[test]
    fn rejects_garbage() {
        for bad in
            [&b""[..], b"yesterday", b"Sun, 06 Nov 1994 08:49:37 UTC", b"Sun, 06 Foo 1994 08:49:37 GMT"]
        {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
        assert_eq!(parse_http_date(b"Sun, 06 Nov 1994 25:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:3\u{e9} GM".as_bytes()), None);
    }
}
