//! Diagnostic results (laboratory, imaging reports).

use time::OffsetDateTime;

use crate::{Attachment, Author, Coding, Identifier, ValidationError};

/// A diagnostic report with its observations (after FHIR `DiagnosticReport`
/// and HL7 v2 ORU^R01).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnosticReport {
    /// The report's id at the sender.
    pub report_id: String,
    /// What was tested or examined.
    pub code: Coding,
    /// Where the report stands.
    pub status: ResultStatus,
    /// When the specimen was taken or the examination done.
    pub effective_at: Option<OffsetDateTime>,
    /// When the report was issued.
    pub issued_at: Option<OffsetDateTime>,
    /// Who produced it.
    pub performer: Option<Author>,
    /// The order it answers (placer or filler order number).
    pub order: Option<Identifier>,
    /// The individual results.
    pub observations: Vec<Observation>,
    /// A narrative conclusion.
    pub conclusion: Option<String>,
    /// Attached files (e.g. a PDF report embedded in an OBX ED field).
    pub attachments: Vec<Attachment>,
}

/// One result within a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// What was observed.
    pub code: Coding,
    /// The value.
    pub value: Option<ObservationValue>,
    /// Its units are part of [`ObservationValue::Quantity`]; this is the
    /// reference range as given (e.g. `3.5-5.0`).
    pub reference_range: Option<String>,
    /// Abnormal flag / interpretation (e.g. HL7 table 0078 `H`, `L`).
    pub interpretation: Option<String>,
    /// Its status.
    pub status: ResultStatus,
    /// When it was observed.
    pub effective_at: Option<OffsetDateTime>,
    /// Comments.
    pub notes: Vec<String>,
}

/// The value of an observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservationValue {
    /// Text.
    Text(String),
    /// A number with its unit. The number is kept as the decimal text the
    /// sender wrote, so nothing is lost to floating point.
    Quantity {
        /// Decimal value as text, e.g. `4.20`.
        value: String,
        /// Unit, e.g. `mmol/L`.
        unit: Option<String>,
    },
    /// A coded value.
    Coded(Coding),
}

/// Status of a report or observation (after FHIR `ObservationStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultStatus {
    /// Ordered, no result yet.
    Registered,
    /// Early results, may change.
    Preliminary,
    /// Final.
    Final,
    /// Changed after being final.
    Amended,
    /// Corrected after being final.
    Corrected,
    /// Cancelled.
    Cancelled,
    /// Issued by mistake.
    EnteredInError,
}

impl DiagnosticReport {
    /// Checks the fields a receiver cannot do without.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.report_id.trim().is_empty() {
            return Err(ValidationError::missing("report_id"));
        }
        if self.code.code.trim().is_empty() {
            return Err(ValidationError::missing("code.code"));
        }
        for (i, attachment) in self.attachments.iter().enumerate() {
            attachment
                .validate()
                .map_err(|e| e.within(&format!("attachments[{i}]")))?;
        }
        Ok(())
    }
}
