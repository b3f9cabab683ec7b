//! The one error type for a canonical value that breaks a rule.

use std::fmt;

/// What kind of rule an invalid value broke. The hub maps these to rejection
/// reasons, so the sender learns precisely what to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValidationErrorKind {
    /// A required field is absent or empty.
    Missing,
    /// A field has a value of the wrong shape.
    Invalid,
    /// The patient's NHS number is not a valid NHS number.
    InvalidNhsNumber,
    /// The category is not one this version of the model knows.
    UnknownCategory,
    /// Two fields contradict each other (e.g. category and body).
    Inconsistent,
}

/// A field that breaks a rule of the canonical model, named by its path in
/// the envelope (e.g. `patient.nhs_number`). Messages never contain the
/// offending value when it could identify a patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Dotted path of the field, e.g. `addressing.recipients[1].ods_code`.
    pub field: String,
    /// The rule broken.
    pub kind: ValidationErrorKind,
    /// What is wrong, for people.
    pub detail: String,
}

impl ValidationError {
    /// A required field is missing.
    pub fn missing(field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            kind: ValidationErrorKind::Missing,
            detail: "is required".into(),
        }
    }

    /// A field is malformed.
    pub fn invalid(field: impl Into<String>, detail: impl fmt::Display) -> Self {
        Self {
            field: field.into(),
            kind: ValidationErrorKind::Invalid,
            detail: detail.to_string(),
        }
    }

    /// Any other kind of problem.
    pub fn new(
        field: impl Into<String>,
        kind: ValidationErrorKind,
        detail: impl fmt::Display,
    ) -> Self {
        Self {
            field: field.into(),
            kind,
            detail: detail.to_string(),
        }
    }

    /// Prefixes the field path, as errors bubble up from nested values.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else if self.field.starts_with('[') {
            format!("{parent}{}", self.field)
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.detail)
    }
}

impl std::error::Error for ValidationError {}
