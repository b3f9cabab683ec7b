//! Code systems, identifier systems and extension URLs.
//!
//! The `urn:lhcie:` ones are this hub's own: a receiving system that does
//! not know them still gets valid FHIR, and this crate reads them back so
//! that a canonical envelope survives a trip through FHIR.

pub use lhcie_model::{
    ITK_RESPONSE_CODE_SYSTEM, NHS_NUMBER_SYSTEM, ODS_ORGANISATION_SYSTEM, SNOMED_CT_SYSTEM,
};

/// ITK3 message handling complex extension on `MessageHeader`.
pub const ITK_MESSAGE_HANDLING: &str =
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-ITK-MessageHandling-2";
/// ITK3 recipient type codes (`FA` for action, `FI` for information).
pub const ITK_RECIPIENT_TYPE_SYSTEM: &str =
    "https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1";
/// HL7 v2 event types (table 0003), as used by v2-style FHIR messages.
pub const V2_EVENT_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v2-0003";
/// Booking and Referral Standard message events.
pub const BARS_EVENT_SYSTEM: &str = "https://fhir.nhs.uk/CodeSystem/message-events-bars";
/// This hub's message events (see `crate::read` for the codes).
pub const LHCIE_EVENT_SYSTEM: &str = "urn:lhcie:fhir:message-event";
/// UK Core NHS number verification status extension.
pub const NHS_VERIFICATION_EXTENSION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";
/// UK Core NHS number verification status codes.
pub const NHS_VERIFICATION_SYSTEM: &str =
    "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland";
/// HL7 v3 ActCode (Encounter.class).
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// HL7 v3 Confidentiality (`R` restricted).
pub const V3_CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
/// HL7 v3 ActReason (purpose of use: TREAT, ETREAT, CAREMGT, PATRQT).
pub const V3_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
/// FHIR request priority.
pub const REQUEST_PRIORITY: &str = "http://hl7.org/fhir/request-priority";
/// FHIR response codes of `MessageHeader.response.code`.
pub const RESPONSE_CODE_SYSTEM: &str = "http://hl7.org/fhir/response-code";
/// The canonical message id, on `Bundle.identifier` of rendered messages.
pub const LHCIE_MESSAGE_ID: &str = "urn:lhcie:message-id";
/// The canonical document id, on `Composition.identifier` and
/// `DocumentReference.masterIdentifier` of rendered documents.
pub const LHCIE_DOCUMENT_ID: &str = "urn:lhcie:document-id";
/// The canonical referral id, on `ServiceRequest.identifier`.
pub const LHCIE_REFERRAL_ID: &str = "urn:lhcie:referral-id";
/// A document's version number, an extension on its identifier.
pub const LHCIE_DOCUMENT_VERSION: &str = "urn:lhcie:fhir:StructureDefinition/document-version";
/// The SHA-256 (hex) of an attachment held by URL.
pub const LHCIE_ATTACHMENT_SHA256: &str = "urn:lhcie:fhir:StructureDefinition/attachment-sha256";
/// Location identifiers: site, room, bed.
pub const LHCIE_LOCATION_SITE: &str = "urn:lhcie:location:site";
/// See [`LHCIE_LOCATION_SITE`].
pub const LHCIE_LOCATION_ROOM: &str = "urn:lhcie:location:room";
/// See [`LHCIE_LOCATION_SITE`].
pub const LHCIE_LOCATION_BED: &str = "urn:lhcie:location:bed";
/// HL7 v2 identifier types (table 0203), `Identifier.type`.
pub const V2_IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
