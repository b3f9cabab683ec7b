//! What a message is (its category) and why it is being shared (purpose of
//! use). Information sharing agreements and consent directives are written
//! in these terms.

use std::fmt;

/// The kind of information a message carries. Each category has one kind of
/// body (see [`Category::body_kind`]).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    /// A discharge summary from a hospital stay or attendance.
    DischargeSummary,
    /// A repatriation request: moving a patient back to their home trust.
    RepatriationRequest,
    /// A cancer document (e.g. MDT outcome, treatment summary).
    CancerDocument,
    /// An end-of-life care plan.
    EndOfLifeCarePlan,
    /// A care event notification: admission, discharge, attendance...
    CareEvent,
    /// A diagnostic result.
    Result,
    /// A referral.
    Referral,
    /// A delivery or business acknowledgement of an earlier message.
    Acknowledgement,
}

/// The body each category carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// [`crate::ClinicalDocument`].
    Document,
    /// [`crate::CareEvent`].
    CareEvent,
    /// [`crate::DiagnosticReport`].
    Result,
    /// [`crate::Referral`].
    Referral,
    /// [`crate::Acknowledgement`].
    Acknowledgement,
}

impl Category {
    /// Every category, in a fixed order.
    pub const ALL: [Category; 8] = [
        Category::DischargeSummary,
        Category::RepatriationRequest,
        Category::CancerDocument,
        Category::EndOfLifeCarePlan,
        Category::CareEvent,
        Category::Result,
        Category::Referral,
        Category::Acknowledgement,
    ];

    /// The body a message of this category must carry.
    pub fn body_kind(self) -> BodyKind {
        match self {
            Category::DischargeSummary
            | Category::RepatriationRequest
            | Category::CancerDocument
            | Category::EndOfLifeCarePlan => BodyKind::Document,
            Category::CareEvent => BodyKind::CareEvent,
            Category::Result => BodyKind::Result,
            Category::Referral => BodyKind::Referral,
            Category::Acknowledgement => BodyKind::Acknowledgement,
        }
    }

    /// Whether messages of this category carry information about a patient,
    /// and so need an ISA and the patient's consent to move.
    /// Acknowledgements carry only message ids and response codes.
    pub fn is_patient_data(self) -> bool {
        self != Category::Acknowledgement
    }

    /// The kebab-case name used in configuration, metrics and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::DischargeSummary => "discharge-summary",
            Category::RepatriationRequest => "repatriation-request",
            Category::CancerDocument => "cancer-document",
            Category::EndOfLifeCarePlan => "end-of-life-care-plan",
            Category::CareEvent => "care-event",
            Category::Result => "result",
            Category::Referral => "referral",
            Category::Acknowledgement => "acknowledgement",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why information is being shared, after HL7's PurposeOfUse vocabulary.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum PurposeOfUse {
    /// Direct care of the patient (HL7 `TREAT`). The usual purpose.
    #[default]
    DirectCare,
    /// Emergency treatment with break-glass access (HL7 `ETREAT`). May
    /// override a patient's dissent, never a missing agreement; always
    /// recorded for review.
    EmergencyCare,
    /// Coordinating care across organisations (HL7 `CAREMGT`), e.g. bed
    /// management for repatriation.
    CareManagement,
    /// The patient, or their proxy, asked for it (HL7 `PATRQT`).
    PatientRequest,
}

impl PurposeOfUse {
    /// Every purpose, in a fixed order.
    pub const ALL: [PurposeOfUse; 4] = [
        PurposeOfUse::DirectCare,
        PurposeOfUse::EmergencyCare,
        PurposeOfUse::CareManagement,
        PurposeOfUse::PatientRequest,
    ];

    /// The kebab-case name used in configuration, metrics and audit.
    pub fn as_str(self) -> &'static str {
        match self {
            PurposeOfUse::DirectCare => "direct-care",
            PurposeOfUse::EmergencyCare => "emergency-care",
            PurposeOfUse::CareManagement => "care-management",
            PurposeOfUse::PatientRequest => "patient-request",
        }
    }
}

impl fmt::Display for PurposeOfUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
