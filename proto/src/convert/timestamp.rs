//! `google.protobuf.Timestamp` <-> `time::OffsetDateTime` (always UTC on the
//! wire).

use lhcie_model::ValidationError;
use prost_types::Timestamp;
use time::OffsetDateTime;

/// Wire timestamp to a UTC date-time.
pub(crate) fn from_wire(wire: Timestamp, field: &str) -> Result<OffsetDateTime, ValidationError> {
    if !(0..1_000_000_000).contains(&wire.nanos) {
        return Err(ValidationError::invalid(
            field,
            "nanos must be 0 to 999,999,999",
        ));
    }
    let nanos = i128::from(wire.seconds) * 1_000_000_000 + i128::from(wire.nanos);
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| ValidationError::invalid(field, "timestamp out of range"))
}

/// An optional wire timestamp.
pub(crate) fn optional_from_wire(
    wire: Option<Timestamp>,
    field: &str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    wire.map(|t| from_wire(t, field)).transpose()
}

/// A date-time to the wire (as UTC).
pub(crate) fn to_wire(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        nanos: at.nanosecond() as i32,
    }
}

/// An optional date-time to the wire.
pub(crate) fn optional_to_wire(at: Option<OffsetDateTime>) -> Option<Timestamp> {
    at.map(to_wire)
}
