//! Rendering canonical envelopes as FHIR R4: a message Bundle per envelope
//! ([`render_message`]), an ITK3-style response Bundle per acknowledgement
//! ([`render_response`]), and the original FHIR payload when there is one
//! ([`original_if_fhir`]).
//!
//! A rendered message is read back by [`crate::read_message_bundle`] into
//! the same envelope, except: the message id (derived again from the
//! reader's exchange), the original (the rendered bytes), per-recipient
//! intents (ITK3 has one `RecipientType` for the message: the first
//! recipient's), a document without author or date (FHIR requires both:
//! the sender and the creation time are written), `text/plain` sections
//! (written as XHTML, read back as `text/html`) and an acknowledgement's
//! level (read back from its ITK3 code: `3xxxx` business, else
//! infrastructure). Ids inside the Bundle are UUIDs derived from the
//! message id, so rendering is deterministic.

mod resources;
mod response;

pub use response::render_response;

use lhcie_model::{Body, Envelope, MEDIA_TYPE_FHIR_JSON, PurposeOfUse, RecipientIntent};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::datetime;
use crate::itk::{self, Handling};
use crate::systems::*;

/// What rendering needs from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderContext {
    /// `MessageHeader.source.endpoint`: this adapter's address.
    pub source_endpoint: String,
    /// `MessageHeader.destination.endpoint`: the local system's address.
    pub destination_endpoint: String,
    /// ITK3 `MessageDefinition` to name in the handling extension, if any.
    pub message_definition: Option<String>,
    /// Now (not written into messages; kept for responses' timestamps).
    pub now: OffsetDateTime,
}

impl RenderContext {
    /// A context with the given endpoints.
    pub fn new(source_endpoint: &str, destination_endpoint: &str, now: OffsetDateTime) -> Self {
        Self {
            source_endpoint: source_endpoint.into(),
            destination_endpoint: destination_endpoint.into(),
            message_definition: None,
            now,
        }
    }
}

/// Why an envelope cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// Results (DiagnosticReport) are not in this crate's scope.
    #[error("{0} bodies are not rendered as FHIR messages by this adapter")]
    Unsupported(&'static str),
    /// An acknowledgement goes through [`render_response`].
    #[error("an acknowledgement is rendered with render_response")]
    Acknowledgement,
    /// Not an acknowledgement (for [`render_response`]).
    #[error("render_response needs an acknowledgement envelope")]
    NotAcknowledgement,
}

/// The original payload, if it is FHIR JSON: deliver it unchanged.
pub fn original_if_fhir(envelope: &Envelope) -> Option<&[u8]> {
    let original = envelope.original.as_ref()?;
    let essence = original.media_type.split(';').next()?.trim();
    essence
        .eq_ignore_ascii_case(MEDIA_TYPE_FHIR_JSON)
        .then_some(&original.content[..])
}

/// A UUID derived from the message id and a label.
pub(crate) fn uuid(message_id: &str, label: &str) -> String {
    let mut h = Sha256::new();
    h.update(message_id.as_bytes());
    h.update([0]);
    h.update(label.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Whether text is a valid FHIR `id` ([A-Za-z0-9-.]{1,64}).
pub(crate) fn is_fhir_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The MessageHeader id of a rendered envelope: the message id when it is
/// a valid FHIR id (canonical ids are UUIDs), else a UUID derived from it.
pub fn header_id(envelope: &Envelope) -> String {
    let id = envelope.message_id.as_str();
    if is_fhir_id(id) {
        id.to_owned()
    } else {
        uuid(id, "MessageHeader")
    }
}

/// Entries being collected, with their fullUrls.
pub(crate) struct Builder<'e> {
    pub envelope: &'e Envelope,
    pub entries: Vec<Value>,
}

impl<'e> Builder<'e> {
    /// Adds a resource; returns its fullUrl. Its `id` is the UUID.
    pub fn add(&mut self, label: &str, mut resource: Value) -> String {
        let id = uuid(self.envelope.message_id.as_str(), label);
        resource["id"] = json!(id);
        let full_url = format!("urn:uuid:{id}");
        self.entries
            .push(json!({"fullUrl": full_url, "resource": resource}));
        full_url
    }
}

fn purpose_code(p: PurposeOfUse) -> &'static str {
    match p {
        PurposeOfUse::DirectCare => "TREAT",
        PurposeOfUse::EmergencyCare => "ETREAT",
        PurposeOfUse::CareManagement => "CAREMGT",
        PurposeOfUse::PatientRequest => "PATRQT",
    }
}

/// The shell of a message Bundle around a MessageHeader and entries.
pub(crate) fn bundle(envelope: &Envelope, header: Value, entries: Vec<Value>) -> Value {
    let id = header_id(envelope);
    let mut all = vec![
        json!({"fullUrl": format!("urn:uuid:{}", uuid(&id, "header-url")), "resource": header}),
    ];
    all.extend(entries);
    json!({
        "resourceType": "Bundle",
        "id": id,
        "meta": {"security": [{"system": V3_ACT_REASON, "code": purpose_code(envelope.purpose)}]},
        "identifier": {"system": LHCIE_MESSAGE_ID, "value": envelope.message_id.as_str()},
        "type": "message",
        "timestamp": datetime::format(envelope.created_at),
        "entry": all,
    })
}

/// Renders an envelope (not an acknowledgement) as an R4 message Bundle.
pub fn render_message(envelope: &Envelope, ctx: &RenderContext) -> Result<Value, RenderError> {
    let mut b = Builder {
        envelope,
        entries: Vec::new(),
    };
    let (event, focus) = match &envelope.body {
        Body::Acknowledgement(_) => return Err(RenderError::Acknowledgement),
        Body::Result(_) => return Err(RenderError::Unsupported("result")),
        Body::CareEvent(e) if e.kind == lhcie_model::CareEventKind::Merge => {
            return Err(RenderError::Unsupported("merge"));
        }
        body => {
            let patient = envelope
                .patient
                .as_ref()
                .map(|p| b.add("Patient", resources::patient(p)));
            resources::body(&mut b, body, envelope.category, patient.as_deref())
        }
    };
    let header = header(&mut b, ctx, event, &focus, None);
    let entries = std::mem::take(&mut b.entries);
    Ok(bundle(envelope, header, entries))
}

/// A MessageHeader for the envelope; adds the sender and recipient
/// Organizations to the builder.
pub(crate) fn header(
    b: &mut Builder<'_>,
    ctx: &RenderContext,
    event: String,
    focus: &[String],
    response: Option<Value>,
) -> Value {
    let envelope = b.envelope;
    let sender = b.add(
        &format!("Organization/{}", envelope.sender.ods_code),
        resources::organisation(&envelope.sender.ods_code),
    );
    let mut destination = Vec::new();
    for r in &envelope.addressing.recipients {
        let label = format!("Organization/{}", r.ods_code);
        let url = if r.ods_code == envelope.sender.ods_code {
            sender.clone()
        } else {
            b.add(&label, resources::organisation(&r.ods_code))
        };
        destination
            .push(json!({"endpoint": ctx.destination_endpoint, "receiver": {"reference": url}}));
    }
    if destination.is_empty() {
        destination.push(json!({"endpoint": ctx.destination_endpoint}));
    }
    let handling = Handling {
        business_ack: envelope.acknowledgements_requested.business,
        infrastructure_ack: envelope.acknowledgements_requested.infrastructure,
        recipient_type: Some(
            envelope
                .addressing
                .recipients
                .first()
                .map_or(RecipientIntent::ForAction, |r| r.intent),
        ),
        message_definition: ctx.message_definition.clone(),
        sender_reference: envelope.sender_reference.clone(),
        local_extension: None,
        present: true,
    };
    let mut header = json!({
        "resourceType": "MessageHeader",
        "id": header_id(envelope),
        "extension": [itk::render(&handling)],
        "eventCoding": {"system": LHCIE_EVENT_SYSTEM, "code": event},
        "destination": destination,
        "sender": {"reference": sender},
        "source": {"endpoint": ctx.source_endpoint},
    });
    if let Some(software) = &envelope.sender.sending_system {
        header["source"]["software"] = json!(software);
    }
    if !focus.is_empty() {
        header["focus"] = focus.iter().map(|f| json!({"reference": f})).collect();
    }
    if let Some(response) = response {
        header["response"] = response;
    }
    header
}
