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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_with_microseconds() {
        let at = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(format(at), "2023-11-14T22:13:20.123456Z");
        let offset = at.to_offset(time::UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(format(offset), "2023-11-14T22:13:20.123456Z");
    }
}
