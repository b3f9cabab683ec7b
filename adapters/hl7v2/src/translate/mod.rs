//! Translation of HL7 v2 messages into canonical envelopes. Pure: no I/O,
//! the clock and the configuration come in a [`TranslateContext`].
//!
//! Supported (anything else is refused, AR, with code 200 or 201):
//!
//! | HL7 v2 | canonical |
//! |---|---|
//! | ADT A01 A02 A03 A04 A05 A08 A28 A31 A40 | [`Category::CareEvent`] |
//! | ORU R01 | [`Category::Result`] |
//! | MDM T02 | a document category chosen by TXA-2 ([`crate::document_types`]) |
//! | REF I12 | [`Category::Referral`] |
//!
//! Versions 2.1 to 2.8.2 are accepted (MSH-12.1); others get 203.
//!
//! The message id is derived from the exchange, MSH-3, MSH-4 and MSH-10
//! ([`derive_message_id`]), so a resent message is a duplicate at the hub.
//! Recipients: the configured [`RouteRule`]s that match, else MSH-6 if it
//! is an ODS code, else the configured defaults; none is an error.
//!
//! Errors ([`TranslateError`]) carry a position, an HL7 table 0357 code and
//! AE/AR, for [`crate::ack`]; never a value from the message.

mod document;
mod error;
mod event;
mod fields;
mod patient;
mod referral;
mod result;
mod values;

pub use error::{Disposition, ErrorCode, ErrorLocation, TranslateError, TranslateErrorKind};
pub use fields::LocalTime;
pub use patient::{NHS_NUMBER_OID, is_nhs_number_cx, nhs_numbers_in_pid};

use lhcie_model::{
    AcknowledgementRequest, Addressing, Body, Bytes, Category, Coding, Envelope, ExchangeId,
    MEDIA_TYPE_HL7V2_ER7, MessageId, OdsCode, OriginalPayload, Party, PatientClass, PurposeOfUse,
    Recipient, RecipientIntent, RoutingRule,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Message;
use fields::Seg;

pub use lhcie_model::{RouteRule, RouteTarget};

/// How a TXA-2 document type maps to a canonical category and type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentTypeMapping {
    /// TXA-2.1, compared without regard to case.
    pub txa_type: String,
    /// The canonical category (a document category).
    pub category: Category,
    /// The document type, SNOMED CT coded.
    pub document_type: Coding,
}

pub use crate::document_types::default_document_types;

/// What the adapter's configuration and runtime supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateContext {
    /// The local exchange the adapter serves.
    pub exchange_id: ExchangeId,
    /// The sender's ODS code, used when MSH-4 is not an ODS code.
    pub sender_ods: Option<OdsCode>,
    /// Recipients when no rule matches and MSH-6 is not an ODS code.
    pub default_recipients: Vec<OdsCode>,
    /// Routing rules, all applied.
    pub rules: Vec<RouteRule>,
    /// TXA-2 document types for MDM.
    pub document_types: Vec<DocumentTypeMapping>,
    /// How to read date/times without a UTC offset.
    pub local_time: LocalTime,
    /// Now (the envelope's creation time when MSH-7 is absent).
    pub now: OffsetDateTime,
}

impl TranslateContext {
    /// A context with no sender default, no recipients, no rules, the
    /// default document types and UK local time.
    pub fn new(exchange_id: ExchangeId, now: OffsetDateTime) -> Self {
        Self {
            exchange_id,
            sender_ods: None,
            default_recipients: Vec::new(),
            rules: Vec::new(),
            document_types: default_document_types(),
            local_time: LocalTime::EuropeLondon,
            now,
        }
    }
}

/// A translated message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    /// The canonical envelope, validated.
    pub envelope: Envelope,
}

/// HL7 v2 versions accepted (MSH-12.1).
pub const SUPPORTED_VERSIONS: [&str; 13] = [
    "2.1", "2.2", "2.3", "2.3.1", "2.4", "2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1",
    "2.8.2",
];

/// ADT trigger events accepted.
pub const ADT_EVENTS: [&str; 9] = [
    "A01", "A02", "A03", "A04", "A05", "A08", "A28", "A31", "A40",
];

/// Translates a message whose original bytes are not at hand: the
/// original payload is the message rendered again (equivalent, not
/// necessarily byte-exact). Prefer [`translate_received`].
pub fn translate(message: &Message, ctx: &TranslateContext) -> Result<Translated, TranslateError> {
    translate_received(&message.render(), message, ctx)
}

/// Translates a received message; `raw` (the bytes `message` was parsed
/// from) travels unchanged as the original payload.
pub fn translate_received(
    raw: &[u8],
    message: &Message,
    ctx: &TranslateContext,
) -> Result<Translated, TranslateError> {
    let msh = Seg {
        seg: message.msh(),
        seq: 1,
    };
    let header_missing = |field: usize, comp: usize| {
        TranslateError::at(
            TranslateErrorKind::MissingHeaderField,
            msh.loc(field).comp(comp),
        )
    };

    // Version, type and event, processing id: refused (AR) if unusable.
    let version = msh.get(12, 1).ok_or_else(|| header_missing(12, 1))?;
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(TranslateError::at(
            TranslateErrorKind::UnsupportedVersion,
            msh.loc(12).comp(1),
        ));
    }
    let message_type = msh.get(9, 1).ok_or_else(|| header_missing(9, 1))?;
    let event = msh.get(9, 2);
    let supported_event = |ok: &[&str]| -> Result<&str, TranslateError> {
        let e = event.ok_or_else(|| header_missing(9, 2))?;
        if ok.contains(&e) {
            Ok(e)
        } else {
            Err(TranslateError::at(
                TranslateErrorKind::UnsupportedEvent,
                msh.loc(9).comp(2),
            ))
        }
    };
    enum Kind<'a> {
        Adt(&'a str),
        Oru,
        Mdm,
        Ref,
    }
    let kind = match message_type {
        "ADT" => Kind::Adt(supported_event(&ADT_EVENTS)?),
        "ORU" => {
            supported_event(&["R01"])?;
            Kind::Oru
        }
        "MDM" => {
            supported_event(&["T02"])?;
            Kind::Mdm
        }
        "REF" => {
            supported_event(&["I12"])?;
            Kind::Ref
        }
        _ => {
            return Err(TranslateError::at(
                TranslateErrorKind::UnsupportedMessageType,
                msh.loc(9).comp(1),
            ));
        }
    };
    let processing = msh.get(11, 1).ok_or_else(|| header_missing(11, 1))?;
    if !matches!(processing, "P" | "T" | "D") {
        return Err(TranslateError::at(
            TranslateErrorKind::UnsupportedProcessingId,
            msh.loc(11).comp(1),
        ));
    }
    let control_id = msh.get(10, 1).ok_or_else(|| header_missing(10, 1))?;
    // Required content per structure (crate::required): AE 100 / 101.
    crate::required::check(message)?;
    let sender_ods = sender_ods(msh, ctx)?;
    let message_id = derive_message_id(&ctx.exchange_id, message, control_id)?;
    let created_at = msh.datetime(7, ctx.local_time)?.unwrap_or(ctx.now);
    let facility = msh.get(4, 1).unwrap_or(sender_ods.as_str()).to_owned();

    // The body first (its segments say most about what is wrong), then the
    // patient.
    let (category, body) = match kind {
        Kind::Adt(event) => (
            Category::CareEvent,
            Body::CareEvent(event::care_event(message, event, &facility, ctx)?),
        ),
        Kind::Oru => (
            Category::Result,
            Body::Result(result::report(message, &sender_ods, ctx)?),
        ),
        Kind::Mdm => {
            let (category, doc) = document::document(message, &sender_ods, ctx)?;
            (category, Body::Document(doc))
        }
        Kind::Ref => (
            Category::Referral,
            Body::Referral(referral::referral(message, ctx)?),
        ),
    };
    let patient = patient::patient(message, &facility, ctx.local_time)?;
    let patient_class = values::patient_class(message);
    let addressing = route(
        ctx,
        msh,
        category,
        &body,
        patient_class,
        patient.registered_gp_practice.as_ref(),
    )?;

    let accept_ack = msh.get(15, 1);
    let app_ack = msh.get(16, 1);
    let original_mode = accept_ack.is_none() && app_ack.is_none();
    let envelope = Envelope {
        message_id,
        correlation_id: None,
        created_at,
        sender: Party {
            ods_code: sender_ods,
            exchange_id: ctx.exchange_id.clone(),
            sending_system: msh.get(3, 1).map(str::to_owned),
        },
        addressing,
        purpose: PurposeOfUse::DirectCare,
        category,
        patient: Some(patient),
        body,
        original: Some(OriginalPayload {
            media_type: MEDIA_TYPE_HL7V2_ER7.into(),
            content: Bytes::copy_from_slice(raw),
        }),
        acknowledgements_requested: AcknowledgementRequest {
            infrastructure: accept_ack != Some("NE"),
            business: original_mode || matches!(app_ack, Some("AL" | "ER" | "SU")),
        },
        sender_reference: Some(control_id.to_owned()),
    };
    envelope
        .validate()
        .map_err(|_| TranslateError::new(TranslateErrorKind::InvalidEnvelope))?;
    Ok(Translated { envelope })
}

/// MSH-4.1 (or MSH-4.2) if it is an ODS code, else the configured sender.
fn sender_ods(msh: Seg<'_>, ctx: &TranslateContext) -> Result<OdsCode, TranslateError> {
    [msh.get(4, 1), msh.get(4, 2)]
        .into_iter()
        .flatten()
        .find_map(|v| OdsCode::parse(v).ok())
        .or_else(|| ctx.sender_ods.clone())
        .ok_or_else(|| {
            TranslateError::at(TranslateErrorKind::MissingHeaderField, msh.loc(4).comp(1))
        })
}

/// The text of a header field as given: components joined by `^`,
/// subcomponents by `&` (escape-free, so only for hashing).
fn header_text(message: &Message, field: usize) -> String {
    message
        .msh()
        .field(field)
        .map(|f| {
            f.repetitions()
                .iter()
                .map(|r| {
                    r.components()
                        .iter()
                        .map(|c| c.subcomponents().join("&"))
                        .collect::<Vec<_>>()
                        .join("^")
                })
                .collect::<Vec<_>>()
                .join("~")
        })
        .unwrap_or_default()
}

/// The canonical message id of an HL7 v2 message: a version 8 (custom)
/// UUID from the SHA-256 of the exchange id, MSH-3 (sending application),
/// MSH-4 (sending facility) and MSH-10 (control id, trimmed). The same
/// message resent gets the same id; the control id is unique only per
/// sending application and facility, so both take part.
pub fn derive_message_id(
    exchange: &ExchangeId,
    message: &Message,
    control_id: &str,
) -> Result<MessageId, TranslateError> {
    let mut hasher = Sha256::new();
    for part in [
        "lhcie-hl7v2-message-id-v1",
        exchange.as_str(),
        &header_text(message, 3),
        &header_text(message, 4),
        control_id.trim(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80; // version 8
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let text = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    MessageId::parse(&text).map_err(|_| TranslateError::new(TranslateErrorKind::InvalidEnvelope))
}

/// Recipients: matching rules, else MSH-6 if an ODS code, else defaults.
fn route(
    ctx: &TranslateContext,
    msh: Seg<'_>,
    category: Category,
    body: &Body,
    patient_class: Option<PatientClass>,
    gp: Option<&OdsCode>,
) -> Result<Addressing, TranslateError> {
    let event_kind = match body {
        Body::CareEvent(e) => Some(e.kind),
        _ => None,
    };
    let mut addressing = Addressing::default();
    let add = |addressing: &mut Addressing, ods: &OdsCode, intent: RecipientIntent| {
        if !addressing.recipients.iter().any(|r| &r.ods_code == ods) {
            addressing.recipients.push(Recipient {
                ods_code: ods.clone(),
                intent,
            });
        }
    };
    let mut matched = false;
    for rule in &ctx.rules {
        let applies = (rule.categories.is_empty() || rule.categories.contains(&category))
            && (rule.event_kinds.is_empty()
                || event_kind.is_some_and(|k| rule.event_kinds.contains(&k)))
            && (rule.patient_classes.is_empty()
                || patient_class.is_some_and(|c| rule.patient_classes.contains(&c)));
        if !applies {
            continue;
        }
        matched = true;
        match &rule.target {
            RouteTarget::RegisteredGpPractice => match gp {
                Some(gp) => add(&mut addressing, gp, rule.intent),
                None => addressing.rule = Some(RoutingRule::RegisteredGp),
            },
            RouteTarget::Organisation(ods) => add(&mut addressing, ods, rule.intent),
            RouteTarget::HubRule(r) => addressing.rule = Some(*r),
        }
    }
    if matched {
        return Ok(addressing);
    }
    if let Some(ods) = msh.get(6, 1).and_then(|v| OdsCode::parse(v).ok()) {
        add(&mut addressing, &ods, RecipientIntent::ForAction);
        return Ok(addressing);
    }
    for ods in &ctx.default_recipients {
        add(&mut addressing, ods, RecipientIntent::ForAction);
    }
    if addressing.recipients.is_empty() {
        return Err(TranslateError::at(
            TranslateErrorKind::NoRecipient,
            msh.loc(6).comp(1),
        ));
    }
    Ok(addressing)
}
