//! Reading values with their positions: empty values and the HL7 null `""`
//! count as absent; every failure names where it happened.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::error::{ErrorLocation, TranslateError, TranslateErrorKind};
use crate::{Message, Repetition, Segment};

/// How to read HL7 date/times that carry no UTC offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocalTime {
    /// UK civil time: GMT, or BST (+01:00) from 01:00 UTC on the last Sunday
    /// of March to 01:00 UTC on the last Sunday of October. Local times in
    /// the hour the clocks change are read approximately.
    #[default]
    EuropeLondon,
    /// A fixed offset.
    Fixed(UtcOffset),
}

impl LocalTime {
    fn offset_for(self, local: PrimitiveDateTime) -> UtcOffset {
        match self {
            LocalTime::Fixed(o) => o,
            LocalTime::EuropeLondon => {
                let year = local.year();
                let start = last_sunday(year, Month::March).map(|d| d.with_hms(1, 0, 0));
                let end = last_sunday(year, Month::October).map(|d| d.with_hms(1, 0, 0));
                match (start, end) {
                    (Some(Ok(s)), Some(Ok(e))) if local >= s && local < e => {
                        UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC)
                    }
                    _ => UtcOffset::UTC,
                }
            }
        }
    }
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let last = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    let back = last.weekday().number_days_from_sunday();
    last.checked_sub(time::Duration::days(i64::from(back)))
}

/// A value is present if it is neither empty nor the HL7 null `""`.
pub(crate) fn present(v: Option<&str>) -> Option<&str> {
    let v = v?.trim();
    if v.is_empty() || v == "\"\"" {
        None
    } else {
        Some(v)
    }
}

/// Component `comp`, subcomponent 1, of a repetition, if present.
pub(crate) fn comp(rep: &Repetition, comp: usize) -> Option<&str> {
    present(rep.component(comp).and_then(|c| c.subcomponent(1)))
}

/// Subcomponent `sub` of component `comp` of a repetition, if present.
pub(crate) fn sub(rep: &Repetition, comp: usize, sub: usize) -> Option<&str> {
    present(rep.component(comp).and_then(|c| c.subcomponent(sub)))
}

/// A segment with its occurrence number, for error positions.
#[derive(Clone, Copy)]
pub(crate) struct Seg<'a> {
    pub(crate) seg: &'a Segment,
    pub(crate) seq: usize,
}

impl<'a> Seg<'a> {
    /// The first segment `id` of the message.
    pub(crate) fn first(message: &'a Message, id: &str) -> Option<Self> {
        message.segment(id).map(|seg| Seg { seg, seq: 1 })
    }

    /// The first segment `id`, or a missing-segment error.
    pub(crate) fn required_segment(message: &'a Message, id: &str) -> Result<Self, TranslateError> {
        Self::first(message, id).ok_or_else(|| {
            TranslateError::at(
                TranslateErrorKind::MissingSegment,
                ErrorLocation::segment(id, 1),
            )
        })
    }

    /// Every segment `id`, numbered.
    pub(crate) fn all(message: &'a Message, id: &'a str) -> impl Iterator<Item = Seg<'a>> + 'a {
        message
            .segments(id)
            .enumerate()
            .map(|(i, seg)| Seg { seg, seq: i + 1 })
    }

    pub(crate) fn loc(&self, field: usize) -> ErrorLocation {
        ErrorLocation::field(self.seg.id(), self.seq, field)
    }

    /// Field `field`, repetition 1, component `c`, subcomponent 1.
    pub(crate) fn get(&self, field: usize, c: usize) -> Option<&'a str> {
        present(self.seg.value(field, 1, c, 1))
    }

    /// The repetitions of a field (1-based numbers), absent field = none.
    pub(crate) fn reps(&self, field: usize) -> impl Iterator<Item = (usize, &'a Repetition)> + 'a {
        self.seg
            .field(field)
            .map(|f| f.repetitions())
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, r)| (i + 1, r))
    }

    /// The first repetition of a field, if it holds anything.
    pub(crate) fn rep(&self, field: usize) -> Option<&'a Repetition> {
        let rep = self.seg.field(field)?.repetition(1)?;
        let any = rep
            .components()
            .iter()
            .any(|c| c.subcomponents().iter().any(|s| present(Some(s)).is_some()));
        any.then_some(rep)
    }

    /// A required value.
    pub(crate) fn required(&self, field: usize, c: usize) -> Result<&'a str, TranslateError> {
        self.get(field, c).ok_or_else(|| {
            TranslateError::at(TranslateErrorKind::MissingField, self.loc(field).comp(c))
        })
    }

    /// A date/time (DTM/TS) at field `field`, component 1.
    pub(crate) fn datetime(
        &self,
        field: usize,
        local: LocalTime,
    ) -> Result<Option<OffsetDateTime>, TranslateError> {
        match self.get(field, 1) {
            None => Ok(None),
            Some(v) => parse_dtm(v, local).map(Some).ok_or_else(|| {
                TranslateError::at(TranslateErrorKind::InvalidDateTime, self.loc(field).comp(1))
            }),
        }
    }

    /// A date at field `field` (the date part of a DTM; shorter than a day
    /// cannot be represented and is treated as absent).
    pub(crate) fn date(&self, field: usize) -> Result<Option<Date>, TranslateError> {
        match self.get(field, 1) {
            None => Ok(None),
            Some(v) => parse_date(v).ok_or_else(|| {
                TranslateError::at(TranslateErrorKind::InvalidDateTime, self.loc(field).comp(1))
            }),
        }
    }
}

fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `YYYY[MM[DD...]]`: `Some(None)` for a valid value shorter than a day,
/// `None` if malformed.
fn parse_date(v: &str) -> Option<Option<Date>> {
    let (body, _) = split_offset(v)?;
    let body = body.split('.').next()?;
    if !body.bytes().all(|b| b.is_ascii_digit()) || body.len() < 4 {
        return None;
    }
    if body.len() < 8 {
        // Validate what there is, but a partial date has no Date form.
        let _year = digits(&body[..4])?;
        if body.len() >= 6 {
            Month::try_from(u8::try_from(digits(&body[4..6])?).ok()?).ok()?;
        }
        return Some(None);
    }
    let year = i32::try_from(digits(&body[..4])?).ok()?;
    let month = Month::try_from(u8::try_from(digits(&body[4..6])?).ok()?).ok()?;
    let day = u8::try_from(digits(&body[6..8])?).ok()?;
    // The rest (time) must be well formed too.
    if body.len() > 8 {
        parse_dtm(v, LocalTime::Fixed(UtcOffset::UTC))?;
    }
    Date::from_calendar_date(year, month, day).ok().map(Some)
}

/// Splits a trailing `+ZZZZ` / `-ZZZZ`.
fn split_offset(v: &str) -> Option<(&str, Option<UtcOffset>)> {
    match v.rfind(['+', '-']) {
        Some(i) if i >= 4 => {
            let (body, off) = v.split_at(i);
            let sign: i8 = if off.starts_with('-') { -1 } else { 1 };
            let z = &off[1..];
            if z.len() != 4 {
                return None;
            }
            let h = i8::try_from(digits(&z[..2])?).ok()?;
            let m = i8::try_from(digits(&z[2..])?).ok()?;
            let offset = UtcOffset::from_hms(sign * h, sign * m, 0).ok()?;
            Some((body, Some(offset)))
        }
        Some(_) => None,
        None => Some((v, None)),
    }
}

/// Parses an HL7 DTM/TS: `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`.
/// Missing parts default to the start of the period; no offset means local
/// time as `local` says.
pub(crate) fn parse_dtm(v: &str, local: LocalTime) -> Option<OffsetDateTime> {
    let (body, offset) = split_offset(v)?;
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if !matches!(main.len(), 4 | 6 | 8 | 10 | 12 | 14) || !main.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    if frac.is_some() && main.len() != 14 {
        return None;
    }
    let part = |a: usize, b: usize, default: u32| -> Option<u32> {
        if main.len() >= b {
            digits(&main[a..b])
        } else {
            Some(default)
        }
    };
    let year = i32::try_from(part(0, 4, 0)?).ok()?;
    let month = Month::try_from(u8::try_from(part(4, 6, 1)?).ok()?).ok()?;
    let day = u8::try_from(part(6, 8, 1)?).ok()?;
    let hour = u8::try_from(part(8, 10, 0)?).ok()?;
    let minute = u8::try_from(part(10, 12, 0)?).ok()?;
    let second = u8::try_from(part(12, 14, 0)?).ok()?;
    let nanos = match frac {
        None => 0,
        Some(f) if (1..=4).contains(&f.len()) => {
            let n = digits(f)?;
            n * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms_nano(hour, minute, second, nanos).ok()?;
    let naive = PrimitiveDateTime::new(date, time);
    let offset = offset.unwrap_or_else(|| local.offset_for(naive));
    Some(naive.assume_offset(offset).to_offset(UtcOffset::UTC))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtm() {
        let utc = LocalTime::Fixed(UtcOffset::UTC);
        let t = parse_dtm("20140529080238.241+0100", utc).unwrap();
        assert_eq!(t.hour(), 7);
        assert_eq!(t.millisecond(), 241);
        assert_eq!(parse_dtm("2014", utc).unwrap().month(), Month::January);
        assert!(parse_dtm("201413", utc).is_none());
        assert!(parse_dtm("2014010", utc).is_none());
        assert!(parse_dtm("20140101+01", utc).is_none());
        // Summer in London is BST.
        let summer = parse_dtm("202607011200", LocalTime::EuropeLondon).unwrap();
        assert_eq!(summer.hour(), 11);
        let winter = parse_dtm("202601011200", LocalTime::EuropeLondon).unwrap();
        assert_eq!(winter.hour(), 12);
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date("196512131515"),
            Some(Some(time::macros::date!(1965 - 12 - 13)))
        );
        assert_eq!(parse_date("196513121515"), None);
        assert_eq!(parse_date("19620352"), None);
        assert_eq!(parse_date("1962"), Some(None));
    }
}
