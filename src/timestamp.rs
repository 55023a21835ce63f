//! The one way times are written out: RFC 3339 in UTC with exactly six fractional digits
//! (PostgreSQL's precision), e.g. `2026-01-02T03:04:05.123456Z`. Exports rely on it to carry
//! the exact instant the hash chain covers.

use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

pub fn format(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .expect("UTC timestamps always format")
}

/// [`format`], appended to `out` without allocating (exports write millions of these).
pub fn write(out: &mut String, at: OffsetDateTime) {
    let at = at.to_offset(time::UtcOffset::UTC);
    let mut digits = |value: u32, width: usize, then: char| {
        let mut buf = [b'0'; 10];
        let mut v = value;
        for slot in buf[..width].iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.push_str(std::str::from_utf8(&buf[..width]).expect("ASCII digits"));
        out.push(then);
    };
    digits(at.year().clamp(0, 9999) as u32, 4, '-');
    digits(u8::from(at.month()).into(), 2, '-');
    digits(at.day().into(), 2, 'T');
    digits(at.hour().into(), 2, ':');
    digits(at.minute().into(), 2, ':');
    digits(at.second().into(), 2, '.');
    digits(at.microsecond(), 6, 'Z');
}

/// Read what [`format`] wrote (any RFC 3339 time is accepted).
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_matches_format() {
        for nanos in [
            0,
            1_700_000_000_123_456_789,
            253_402_300_799_999_999,
            86_400_000_001_000,
        ] {
            let at = OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap();
            let mut out = String::from("x");
            write(&mut out, at);
            assert_eq!(out, format!("x{}", format(at)));
        }
    }

    #[test]
    fn parse_reads_format_exactly() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap();
        assert_eq!(parse(&format(at)), Some(at));
        assert_eq!(parse("yesterday"), None);
    }

    #[test]
    fn utc_with_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(format(at), "2023-11-14T22:13:20.123456Z");
        let offset = at.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format(offset), "2023-11-14T22:13:20.123456Z");
    }
}
