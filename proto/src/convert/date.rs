//! `lhcie.canonical.v1.Date` <-> `time::Date`.

use lhcie_model::ValidationError;
use time::{Date, Month};

use crate::canonical as pb;

impl TryFrom<pb::Date> for Date {
    type Error = ValidationError;
    fn try_from(wire: pb::Date) -> Result<Self, Self::Error> {
        let month = u8::try_from(wire.month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or_else(|| ValidationError::invalid("month", "must be 1 to 12"))?;
        let day = u8::try_from(wire.day)
            .map_err(|_| ValidationError::invalid("day", "must be 1 to 31"))?;
        Date::from_calendar_date(wire.year, month, day)
            .map_err(|_| ValidationError::invalid("", "is not a calendar date"))
    }
}

impl From<Date> for pb::Date {
    fn from(date: Date) -> Self {
        Self {
            year: date.year(),
            month: u32::from(u8::from(date.month())),
            day: u32::from(date.day()),
        }
    }
}
