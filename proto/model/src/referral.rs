//! Referrals from one service to another.

use time::OffsetDateTime;

use crate::{Attachment, Author, Coding, ValidationError};

/// A referral (after HL7 v2 REF^I12 and FHIR `ServiceRequest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The referral's id at the sender.
    pub referral_id: String,
    /// The service asked for.
    pub service_requested: Option<Coding>,
    /// Why.
    pub reason: Option<Coding>,
    /// How urgent.
    pub priority: ReferralPriority,
    /// Who refers.
    pub requester: Option<Author>,
    /// The service (clinic, specialty) referred to within the recipient.
    pub recipient_service: Option<String>,
    /// When the referral was made.
    pub requested_at: Option<OffsetDateTime>,
    /// Clinical summary for the receiving clinician.
    pub summary: Option<String>,
    /// Attached letters and reports.
    pub attachments: Vec<Attachment>,
}

/// Urgency of a referral (after FHIR `RequestPriority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ReferralPriority {
    /// Routine.
    #[default]
    Routine,
    /// Urgent.
    Urgent,
    /// As soon as possible.
    Asap,
    /// Immediately.
    Stat,
}

impl Referral {
    /// Checks the fields a receiver cannot do without.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.referral_id.trim().is_empty() {
            return Err(ValidationError::missing("referral_id"));
        }
        for (i, attachment) in self.attachments.iter().enumerate() {
            attachment
                .validate()
                .map_err(|e| e.within(&format!("attachments[{i}]")))?;
        }
        Ok(())
    }
}
