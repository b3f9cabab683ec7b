//! FHIR `date`, `dateTime` and `instant` values.
//!
//! A `dateTime` with a time must have an offset (FHIR requires it); one
//! without is refused (422 `value`). A `dateTime` given as a date only is
//! read as midnight UTC of that day, and a partial date (`2024` or
//! `2024-05`) as its first day: the canonical model has no partial dates,
//! and the original travels with the envelope.

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, Time};

use crate::node::Node;
use crate::outcome::Rejection;

fn parse_date(text: &str) -> Option<Date> {
    let mut parts = text.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month = match parts.next() {
        Some(m) => Month::try_from(m.parse::<u8>().ok()?).ok()?,
        None => Month::January,
    };
    let day = match parts.next() {
        Some(d) if d.len() == 2 => d.parse::<u8>().ok()?,
        Some(_) => return None,
        None => 1,
    };
    if !(1..=9999).contains(&year) {
        return None;
    }
    Date::from_calendar_date(year, month, day).ok()
}

/// A `date` child.
pub(crate) fn date(node: &Node<'_>, name: &str) -> Result<Option<Date>, Rejection> {
    let Some(text) = node.str(name)? else {
        return Ok(None);
    };
    parse_date(text)
        .map(Some)
        .ok_or_else(|| Rejection::value(&node.at(name), "not a FHIR date"))
}

/// A `dateTime` or `instant` child.
pub(crate) fn date_time(node: &Node<'_>, name: &str) -> Result<Option<OffsetDateTime>, Rejection> {
    let Some(text) = node.str(name)? else {
        return Ok(None);
    };
    parse_date_time(text)
        .map(Some)
        .ok_or_else(|| Rejection::value(&node.at(name), "not a FHIR dateTime with an offset"))
}

/// Parses a FHIR `dateTime` (see the module docs).
pub fn parse_date_time(text: &str) -> Option<OffsetDateTime> {
    if text.contains('T') {
        OffsetDateTime::parse(text, &Rfc3339).ok()
    } else {
        parse_date(text).map(|d| d.with_time(Time::MIDNIGHT).assume_utc())
    }
}

/// Formats an instant for FHIR (RFC 3339).
pub(crate) fn format(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// Formats a date for FHIR.
pub(crate) fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn date_times() {
        assert_eq!(
            parse_date_time("2024-05-01T10:20:30.123+01:00"),
            Some(datetime!(2024-05-01 10:20:30.123 +01:00))
        );
        assert_eq!(
            parse_date_time("2024-05-01"),
            Some(datetime!(2024-05-01 00:00 UTC))
        );
        assert_eq!(
            parse_date_time("2024-05"),
            Some(datetime!(2024-05-01 00:00 UTC))
        );
        assert_eq!(parse_date_time("2024-05-01T10:20:30"), None);
        assert_eq!(parse_date_time("2024-13-01"), None);
        assert_eq!(parse_date_time("yesterday"), None);
        let at = datetime!(2024-05-01 10:20:30 +01:00);
        assert_eq!(parse_date_time(&format(at)), Some(at));
    }
}
