//! Canonical envelopes → HL7 v2 messages (ER7 bytes). Pure: no I/O; the
//! clock, the names to write in MSH and the document types come in a
//! [`RenderContext`].
//!
//! | canonical body | HL7 v2 message | module |
//! |---|---|---|
//! | [`Body::Document`] | `MDM^T02^MDM_T02`: `EVN PID PV1 TXA OBX…` | [`document`] |
//! | [`Body::CareEvent`] | `ADT^A01…A40`: `EVN PID [PD1] [MRG] PV1 [PV2]` | [`event`] |
//! | [`Body::Referral`] | `REF^I12^REF_I12`: `RF1 PRD PRD PID [OBR OBX…] [NTE]` | [`referral`] |
//! | [`Body::Result`] | `ORU^R01^ORU_R01`: `PID OBR [NTE] {OBX [NTE]}` | [`result`] |
//! | [`Body::Acknowledgement`] | `ACK`: `MSA [ERR]` | [`render_acknowledgement`] |
//!
//! Every message is the inverse of what [`mod@crate::translate`] reads, so
//! `translate(parse(render_envelope(e)))` gives back the clinically
//! meaningful fields of `e`; where translation cannot read something back,
//! the module docs say so.
//!
//! The header (MSH), common to all:
//!
//! | MSH | value |
//! |---|---|
//! | 1, 2 | the field separator and `^~\&` |
//! | 3 | [`RenderContext::sending_application`] |
//! | 4 | the sender's ODS code (for [`render_acknowledgement`]: [`RenderContext::sending_facility`]) |
//! | 5, 6 | [`RenderContext::receiving_application`], [`RenderContext::receiving_facility`] |
//! | 7 | the envelope's `created_at` (for [`render_acknowledgement`]: [`RenderContext::now`]) |
//! | 9 | type ^ trigger ^ structure |
//! | 10 | control id: [`control_id_for`] the message id, or as given ([`ControlIdSource`]) |
//! | 11 | `P` |
//! | 12 | `2.4` |
//! | 15, 16 | accept / application ack type from the acknowledgements requested: both requested → empty (original mode); else `AL`/`NE` each |
//! | 18 | `UNICODE UTF-8` only when the message holds a non-ASCII character |
//!
//! Rendering is deterministic: the same envelope and context give the same
//! bytes, so a redelivery is byte-identical (MSH-7 is the envelope's
//! creation time, not the time of rendering).

mod ack;
mod attachment;
mod build;
pub mod document;
mod error;
pub mod event;
mod html;
mod patient;
pub mod referral;
pub mod result;

pub use ack::render_acknowledgement;
pub use error::RenderError;
pub use html::html_to_text;

use lhcie_model::{AcknowledgementRequest, Body, Envelope, MessageId};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::translate::DocumentTypeMapping;
use crate::{Delimiters, Field, Message, Segment};
use build::{SegmentBuilder, comps, ts, value};

/// The HL7 version written in MSH-12.
pub const HL7_VERSION: &str = "2.4";

/// Where MSH-10 (message control id) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ControlIdSource {
    /// [`control_id_for`] the envelope's message id: a redelivery gets the
    /// same control id, so the receiver can recognise it.
    #[default]
    FromMessageId,
    /// This control id (1 to 20 printable ASCII characters).
    Given(String),
}

/// What the adapter's configuration and runtime supply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// MSH-3, e.g. `LHCIE`.
    pub sending_application: String,
    /// MSH-4 of acknowledgements rendered from a bare [`lhcie_model::Acknowledgement`]
    /// (envelopes use their sender's ODS code).
    pub sending_facility: Option<String>,
    /// MSH-5.
    pub receiving_application: String,
    /// MSH-6, usually the receiver's ODS code.
    pub receiving_facility: String,
    /// Now: MSH-7 of acknowledgements rendered from a bare
    /// [`lhcie_model::Acknowledgement`].
    pub now: OffsetDateTime,
    /// MSH-10.
    pub control_id: ControlIdSource,
    /// TXA-2 codes per document category and type; see
    /// [`default_document_types`].
    pub document_types: Vec<DocumentTypeMapping>,
}

impl RenderContext {
    /// A context with sending application `LHCIE`, control ids from message
    /// ids and the default document types.
    pub fn new(
        receiving_application: impl Into<String>,
        receiving_facility: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            sending_application: "LHCIE".into(),
            sending_facility: None,
            receiving_application: receiving_application.into(),
            receiving_facility: receiving_facility.into(),
            now,
            control_id: ControlIdSource::FromMessageId,
            document_types: default_document_types(),
        }
    }
}

pub use crate::document_types::default_document_types;

/// The control id (MSH-10) for a message id: the first 10 bytes of the
/// SHA-256 of the id, as 20 upper-case hex digits (HL7 ST, at most 20).
pub fn control_id_for(message_id: &MessageId) -> String {
    hashed_control_id(&["lhcie-hl7v2-control-id-v1", message_id.as_str()])
}

pub(crate) fn hashed_control_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize()[..10]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// MSH-10 as the context says, with `derived` as the default.
pub(crate) fn control_id(
    ctx: &RenderContext,
    derived: impl FnOnce() -> String,
) -> Result<String, RenderError> {
    match &ctx.control_id {
        ControlIdSource::FromMessageId => Ok(derived()),
        ControlIdSource::Given(id) => {
            if (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic()) {
                Ok(id.clone())
            } else {
                Err(RenderError::InvalidControlId)
            }
        }
    }
}

/// The fixed parts of an MSH.
pub(crate) struct Header<'a> {
    pub(crate) facility: &'a str,
    pub(crate) time: OffsetDateTime,
    /// Type, trigger, structure.
    pub(crate) message_type: [&'a str; 3],
    pub(crate) control_id: String,
    pub(crate) acks: Option<AcknowledgementRequest>,
}

/// Builds the MSH segment (without MSH-18, which [`finish`] decides).
pub(crate) fn msh(ctx: &RenderContext, h: &Header<'_>) -> Segment {
    let mut b = SegmentBuilder::new("MSH");
    b.set(3, value(ctx.sending_application.as_str()))
        .set(4, value(h.facility))
        .set(5, value(ctx.receiving_application.as_str()))
        .set(6, value(ctx.receiving_facility.as_str()))
        .set(7, value(ts(h.time)))
        .set(9, comps(&h.message_type))
        .set(10, value(h.control_id.as_str()))
        .set(11, value("P"))
        .set(12, value(HL7_VERSION));
    if let Some(acks) = h.acks
        && !(acks.infrastructure && acks.business)
    {
        let code = |on: bool| if on { "AL" } else { "NE" };
        b.set(15, value(code(acks.infrastructure)))
            .set(16, value(code(acks.business)));
    }
    b.build()
}

/// Assembles and renders the message: MSH-18 `UNICODE UTF-8` is added
/// only when some value is not ASCII.
pub(crate) fn finish(segments: Vec<Segment>) -> Vec<u8> {
    let message = Message::new(Delimiters::default(), segments.clone())
        .unwrap_or_else(|_| unreachable!("MSH first, no framing segments"));
    let bytes = message.render();
    if bytes.is_ascii() {
        return bytes;
    }
    let mut segments = segments;
    let mut fields = segments[0].fields().to_vec();
    fields.resize(17, Field::from_value(""));
    fields.push(Field::from_value("UNICODE UTF-8"));
    segments[0] = Segment::new("MSH", fields).unwrap_or_else(|_| unreachable!("MSH is valid"));
    Message::new(Delimiters::default(), segments)
        .unwrap_or_else(|_| unreachable!("MSH first, no framing segments"))
        .render()
}

/// Renders an envelope as an HL7 v2.4 message (ER7, segments ended by CR).
/// The envelope is validated first; see the module docs for the mappings.
pub fn render_envelope(envelope: &Envelope, ctx: &RenderContext) -> Result<Vec<u8>, RenderError> {
    envelope
        .validate()
        .map_err(|e| RenderError::InvalidEnvelope {
            field: e.field,
            kind: e.kind,
        })?;
    let control_id = control_id(ctx, || control_id_for(&envelope.message_id))?;
    let header = |message_type: [&'static str; 3]| Header {
        facility: envelope.sender.ods_code.as_str(),
        time: envelope.created_at,
        message_type,
        control_id: control_id.clone(),
        acks: Some(envelope.acknowledgements_requested),
    };
    // Validation guarantees a patient for every body but acknowledgements.
    let patient = || {
        envelope
            .patient
            .as_ref()
            .ok_or(RenderError::InvalidEnvelope {
                field: "patient".into(),
                kind: lhcie_model::ValidationErrorKind::Missing,
            })
    };
    let segments = match &envelope.body {
        Body::Document(doc) => document::segments(envelope, doc, patient()?, ctx, header)?,
        Body::CareEvent(event) => event::segments(envelope, event, patient()?, ctx, header),
        Body::Referral(r) => referral::segments(r, patient()?, ctx, header),
        Body::Result(r) => result::segments(r, patient()?, ctx, header),
        Body::Acknowledgement(a) => {
            return ack::render(a, None, ctx, header(["ACK", "", "ACK"]));
        }
    };
    Ok(finish(segments))
}
