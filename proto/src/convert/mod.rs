//! Conversions between wire types ([`crate::canonical`]) and domain types
//! ([`lhcie_model`]), one file per type.
//!
//! Conventions: an empty proto3 string is an absent value; an `UNSPECIFIED`
//! enum value is an absent value, which is an error where the domain field
//! is required; an enum number this version does not know is an error.

mod acknowledgement;
mod addressing;
mod attachment;
mod author;
mod care_event;
mod classification;
mod coding;
mod date;
mod document;
mod envelope;
mod human_name;
mod party;
mod patient;
mod payload;
mod practitioner;
mod referral;
pub mod registry;
mod result;
mod timestamp;

use lhcie_model::{ValidationError, ValidationErrorKind};

/// Why bytes could not become a domain envelope.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not a protobuf `Envelope`.
    #[error("not a canonical envelope: {0}")]
    Protobuf(prost::DecodeError),
    /// A valid protobuf message that breaks a rule of the canonical model.
    #[error("invalid envelope: {0}")]
    Invalid(ValidationError),
}

/// An empty string is an absent value.
pub(crate) fn optional(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

/// A required string: empty is an error naming the field.
pub(crate) fn required(text: String, field: &str) -> Result<String, ValidationError> {
    if text.trim().is_empty() {
        Err(ValidationError::missing(field))
    } else {
        Ok(text)
    }
}

/// A required message field.
pub(crate) fn present<T>(value: Option<T>, field: &str) -> Result<T, ValidationError> {
    value.ok_or_else(|| ValidationError::missing(field))
}

/// Converts an optional nested message, prefixing error paths with `field`.
pub(crate) fn nested<W, D>(value: Option<W>, field: &str) -> Result<Option<D>, ValidationError>
where
    D: TryFrom<W, Error = ValidationError>,
{
    value
        .map(|wire| D::try_from(wire).map_err(|e| e.within(field)))
        .transpose()
}

/// Converts a repeated nested message, prefixing error paths with
/// `field[index]`.
pub(crate) fn each<W, D>(values: Vec<W>, field: &str) -> Result<Vec<D>, ValidationError>
where
    D: TryFrom<W, Error = ValidationError>,
{
    values
        .into_iter()
        .enumerate()
        .map(|(i, wire)| D::try_from(wire).map_err(|e| e.within(&format!("{field}[{i}]"))))
        .collect()
}

/// Converts an optional ODS code string.
pub(crate) fn optional_ods(
    text: String,
    field: &str,
) -> Result<Option<lhcie_model::OdsCode>, ValidationError> {
    optional(text)
        .map(|code| {
            lhcie_model::OdsCode::parse(&code).map_err(|e| ValidationError::invalid(field, e))
        })
        .transpose()
}

/// An enum number this version of the model does not know.
pub(crate) fn unknown_enum(field: &str, value: i32) -> ValidationError {
    ValidationError::new(
        field,
        ValidationErrorKind::Invalid,
        format!("{value} is not a known value"),
    )
}

/// An enum left at its `UNSPECIFIED` value where a value is required.
pub(crate) fn unspecified(field: &str) -> ValidationError {
    ValidationError::new(
        field,
        ValidationErrorKind::Missing,
        "is required (UNSPECIFIED given)",
    )
}
