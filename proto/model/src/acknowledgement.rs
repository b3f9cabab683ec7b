//! Acknowledgements: what a receiver says back about a message it got.

use crate::{Coding, MessageId};

/// The code system of ITK3 response codes.
pub const ITK_RESPONSE_CODE_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1";

/// The code system of the hub's own response codes: the codes of its
/// negative acknowledgements (see [`hub_response`]).
pub const HUB_RESPONSE_CODE_SYSTEM: &str = "urn:lhcie:hub:response-code";

/// The hub's response codes (system [`HUB_RESPONSE_CODE_SYSTEM`]): a
/// recipient not permitted, or why an envelope was rejected. Also the
/// rejection codes of audit records and metrics labels.
pub mod hub_response {
    /// A recipient the policy did not permit.
    pub const NOT_PERMITTED: &str = "not-permitted";
    /// The envelope is not valid.
    pub const INVALID_ENVELOPE: &str = "invalid-envelope";
    /// A recipient no exchange serves.
    pub const UNKNOWN_RECIPIENT: &str = "unknown-recipient";
    /// A category the hub does not know.
    pub const UNKNOWN_CATEGORY: &str = "unknown-category";
    /// The NHS number fails its check.
    pub const INVALID_NHS_NUMBER: &str = "invalid-nhs-number";
    /// The sender does not belong to the submitting exchange.
    pub const SENDER_NOT_AUTHORISED: &str = "sender-not-authorised";
    /// The envelope is larger than the hub accepts.
    pub const TOO_LARGE: &str = "too-large";
}

/// Well-known ITK3 response codes.
pub mod itk_response {
    /// Success (infrastructure acknowledgement).
    pub const SUCCESS: &str = "20013";
    /// Duplicate message: already received.
    pub const DUPLICATE_MESSAGE: &str = "20007";
    /// Duplicate document: this version was already received.
    pub const DUPLICATE_DOCUMENT: &str = "20008";
    /// The message is too large.
    pub const TOO_LARGE: &str = "20015";
    /// Business: the patient is known here.
    pub const PATIENT_KNOWN: &str = "30001";
    /// Business: the patient is not known here.
    pub const PATIENT_NOT_KNOWN: &str = "30002";
    /// Business: the patient is no longer at this setting.
    pub const PATIENT_NO_LONGER_HERE: &str = "30003";
}

/// A response to an earlier message, routed back to its sender. After ITK3:
/// an infrastructure acknowledgement says the message arrived and could be
/// handled; a business acknowledgement says what the receiving service did
/// with it. A negative acknowledgement is final.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acknowledgement {
    /// The message acknowledged.
    pub refers_to: MessageId,
    /// Infrastructure or business.
    pub level: AckLevel,
    /// Positive or negative.
    pub outcome: AckOutcome,
    /// The response code (e.g. ITK3 `20013`), if any.
    pub code: Option<Coding>,
    /// Explanation for people. Must not name the patient.
    pub text: Option<String>,
}

/// Which layer acknowledges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckLevel {
    /// Received and handled by the receiving system.
    Infrastructure,
    /// Acted on (or not) by the receiving service.
    Business,
}

/// What the acknowledgement says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckOutcome {
    /// Accepted.
    Positive,
    /// Not accepted; final, the sender must not retry the same message.
    Negative,
}

impl Acknowledgement {
    /// An ITK3-coded acknowledgement.
    pub fn itk(
        refers_to: MessageId,
        level: AckLevel,
        outcome: AckOutcome,
        code: &str,
        text: Option<String>,
    ) -> Self {
        Self {
            refers_to,
            level,
            outcome,
            code: Some(Coding {
                system: ITK_RESPONSE_CODE_SYSTEM.into(),
                code: code.into(),
                display: None,
            }),
            text,
        }
    }
}
