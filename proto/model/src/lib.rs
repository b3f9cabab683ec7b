//! # lhcie-model: the canonical model as Rust domain types
//!
//! Every local exchange's messages (HL7 v2, FHIR R4, later MESH) are
//! translated into these types, and the hub routes them. The wire form is
//! protobuf (`lhcie-proto`, which converts to and from these types); this
//! crate holds the *validated* form: an [`NhsNumber`] here has passed its
//! modulus 11 check, an [`OdsCode`] has the right shape, an [`Envelope`]'s
//! body matches its category.
//!
//! The crate does no I/O and knows nothing of prost, tonic or the broker,
//! so the routing core and the translators can depend on it and stay pure.
//!
//! Layout: one module per type. Identifiers: [`nhs_number`], [`ods_code`],
//! [`ids`]. The envelope and its parts: [`envelope`], [`party`],
//! [`classification`] (category, purpose of use), [`patient`]. Bodies:
//! [`document`], [`care_event`], [`result`], [`referral`],
//! [`acknowledgement`]. Shared: [`coding`], [`attachment`], [`payload`],
//! [`error`].
//!
//! Patient data never reaches a log through `Debug`: [`NhsNumber`],
//! [`PatientIdentity`], [`Envelope`], [`Attachment`] and [`OriginalPayload`]
//! print redacted forms.

pub mod acknowledgement;
pub mod attachment;
pub mod care_event;
pub mod classification;
pub mod coding;
pub mod document;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod nhs_number;
pub mod ods_code;
pub mod party;
pub mod patient;
pub mod payload;
pub mod referral;
pub mod result;

pub use acknowledgement::{
    AckLevel, AckOutcome, Acknowledgement, HUB_RESPONSE_CODE_SYSTEM, ITK_RESPONSE_CODE_SYSTEM,
    hub_response, itk_response,
};
pub use attachment::{Attachment, AttachmentContent};
pub use bytes::Bytes;
pub use care_event::{CareEvent, CareEventKind, Location, PatientClass};
pub use classification::{BodyKind, Category, PurposeOfUse};
pub use coding::{Coding, Identifier, SNOMED_CT_SYSTEM};
pub use document::{Author, ClinicalDocument, DocumentSection, DocumentStatus, DocumentVersionRef};
pub use envelope::{AcknowledgementRequest, Body, Envelope, MAX_ACKNOWLEDGEMENT_TEXT};
pub use error::{ValidationError, ValidationErrorKind};
pub use ids::{ExchangeId, ExchangeIdError, MessageId, MessageIdError};
pub use nhs_number::{NHS_NUMBER_SYSTEM, NhsNumber, NhsNumberError};
pub use ods_code::{ODS_ORGANISATION_SYSTEM, OdsCode, OdsCodeError};
pub use party::{
    Addressing, Party, Recipient, RecipientIntent, RouteRule, RouteTarget, RoutingRule,
};
pub use patient::{Gender, HumanName, PatientIdentity, Practitioner};
pub use payload::{MEDIA_TYPE_FHIR_JSON, MEDIA_TYPE_HL7V2_ER7, OriginalPayload};
pub use referral::{Referral, ReferralPriority};
pub use result::{DiagnosticReport, Observation, ObservationValue, ResultStatus};

#[cfg(any(test, feature = "examples"))]
pub mod examples;
