//! The envelope: one message moving through the hub.

use std::fmt;

use time::OffsetDateTime;

use crate::{
    Acknowledgement, Addressing, BodyKind, CareEvent, Category, ClinicalDocument, DiagnosticReport,
    MessageId, OriginalPayload, Party, PatientIdentity, PurposeOfUse, Referral, ValidationError,
    ValidationErrorKind,
};

/// One message moving through the hub: who sent it, to whom, why, what it
/// is, whom it is about, its content in canonical form and, optionally, in
/// the sender's original form.
///
/// `Debug` shows the routing facts only: never the patient, the body or the
/// payload.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Sender-assigned, globally unique; the key for idempotency.
    pub message_id: MessageId,
    /// Ties related messages together (e.g. an acknowledgement to its
    /// message, a document's versions).
    pub correlation_id: Option<String>,
    /// When the sender created the message.
    pub created_at: OffsetDateTime,
    /// Who sent it.
    pub sender: Party,
    /// Where it should go.
    pub addressing: Addressing,
    /// Why it is shared.
    pub purpose: PurposeOfUse,
    /// What it is.
    pub category: Category,
    /// Whom it is about. Required for every category that carries patient
    /// data; absent on acknowledgements.
    pub patient: Option<PatientIdentity>,
    /// The content in canonical form.
    pub body: Body,
    /// The content as the sender's system wrote it.
    pub original: Option<OriginalPayload>,
    /// Acknowledgements the sender asks for (ITK3 handling flags).
    pub acknowledgements_requested: AcknowledgementRequest,
    /// The sender's own reference, echoed back in acknowledgements.
    pub sender_reference: Option<String>,
}

/// The content of an envelope. Which variant is allowed depends on the
/// category ([`Category::body_kind`]).
// One body per envelope, moved rather than copied: boxing the larger
// variants would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A clinical document.
    Document(ClinicalDocument),
    /// A care event.
    CareEvent(CareEvent),
    /// A diagnostic result.
    Result(DiagnosticReport),
    /// A referral.
    Referral(Referral),
    /// An acknowledgement of an earlier message.
    Acknowledgement(Acknowledgement),
}

impl Body {
    /// Which kind of body this is.
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Document(_) => BodyKind::Document,
            Body::CareEvent(_) => BodyKind::CareEvent,
            Body::Result(_) => BodyKind::Result,
            Body::Referral(_) => BodyKind::Referral,
            Body::Acknowledgement(_) => BodyKind::Acknowledgement,
        }
    }

    fn validate(&self) -> Result<(), ValidationError> {
        match self {
            Body::Document(d) => d.validate().map_err(|e| e.within("document")),
            Body::CareEvent(c) => c.validate().map_err(|e| e.within("care_event")),
            Body::Result(r) => r.validate().map_err(|e| e.within("result")),
            Body::Referral(r) => r.validate().map_err(|e| e.within("referral")),
            Body::Acknowledgement(_) => Ok(()),
        }
    }
}

/// The longest text an acknowledgement may carry, in characters: enough
/// for a response code's display and a sentence, too little for a record.
pub const MAX_ACKNOWLEDGEMENT_TEXT: usize = 500;

/// Which acknowledgements the sender wants (ITK3 MessageHeader handling
/// flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AcknowledgementRequest {
    /// An infrastructure acknowledgement: the receiving system got it.
    pub infrastructure: bool,
    /// A business acknowledgement: what the receiving service did with it.
    pub business: bool,
}

impl Envelope {
    /// Checks the rules that span fields: the body matches the category,
    /// there is somewhere to send it, the patient is named where the category
    /// needs one, and nested values are consistent.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.addressing.recipients.is_empty() && self.addressing.rule.is_none() {
            return Err(ValidationError::new(
                "addressing",
                ValidationErrorKind::Missing,
                "names no recipient and no routing rule",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, recipient) in self.addressing.recipients.iter().enumerate() {
            if !seen.insert(&recipient.ods_code) {
                return Err(ValidationError::invalid(
                    format!("addressing.recipients[{i}].ods_code"),
                    format!("{} is named twice", recipient.ods_code),
                ));
            }
        }
        let expected = self.category.body_kind();
        if self.body.kind() != expected {
            return Err(ValidationError::new(
                "body",
                ValidationErrorKind::Inconsistent,
                format!(
                    "category {} carries a {:?} body, not a {:?}",
                    self.category,
                    expected,
                    self.body.kind()
                ),
            ));
        }
        if self.category.is_patient_data() && self.patient.is_none() {
            return Err(ValidationError::new(
                "patient",
                ValidationErrorKind::Missing,
                format!("a {} must name its patient", self.category),
            ));
        }
        if let Some(original) = &self.original
            && original.media_type.trim().is_empty()
        {
            return Err(ValidationError::missing("original.media_type"));
        }
        if let Body::Acknowledgement(ack) = &self.body {
            self.check_acknowledgement(ack)?;
        }
        self.body.validate()
    }

    /// An acknowledgement is routed without an agreement or a consent
    /// check, so it may carry nothing about a patient: no patient, no
    /// original payload (a local system's response message may name the
    /// patient), and a short text.
    fn check_acknowledgement(&self, ack: &Acknowledgement) -> Result<(), ValidationError> {
        if self.patient.is_some() {
            return Err(ValidationError::invalid(
                "patient",
                "an acknowledgement carries no patient",
            ));
        }
        if self.original.is_some() {
            return Err(ValidationError::invalid(
                "original",
                "an acknowledgement carries no original payload",
            ));
        }
        if let Some(text) = &ack.text
            && text.chars().count() > MAX_ACKNOWLEDGEMENT_TEXT
        {
            return Err(ValidationError::invalid(
                "acknowledgement.text",
                format!("longer than {MAX_ACKNOWLEDGEMENT_TEXT} characters"),
            ));
        }
        Ok(())
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let recipients: Vec<&str> = self
            .addressing
            .recipients
            .iter()
            .map(|r| r.ods_code.as_str())
            .collect();
        f.debug_struct("Envelope")
            .field("message_id", &self.message_id)
            .field("category", &self.category)
            .field("purpose", &self.purpose)
            .field("sender", &self.sender.ods_code)
            .field("exchange", &self.sender.exchange_id)
            .field("recipients", &recipients)
            .field("rule", &self.addressing.rule)
            .field(
                "original_bytes",
                &self.original.as_ref().map(|o| o.content.len()),
            )
            .finish_non_exhaustive()
    }
}
