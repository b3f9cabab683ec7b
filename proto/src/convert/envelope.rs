//! `Envelope`: the top-level conversion, which also runs the model's
//! cross-field validation.

use lhcie_model::{AcknowledgementRequest, Body, Envelope, MessageId, ValidationError};

use super::classification::{category_from_wire, purpose_from_wire};
use super::{nested, optional, present, required, timestamp};
use crate::canonical as pb;

impl TryFrom<pb::Envelope> for Envelope {
    type Error = ValidationError;
    fn try_from(wire: pb::Envelope) -> Result<Self, Self::Error> {
        let message_id = MessageId::parse(&required(wire.message_id, "message_id")?)
            .map_err(|e| ValidationError::invalid("message_id", e))?;
        let category = category_from_wire(wire.category)?;
        let body = match wire.body {
            None => return Err(ValidationError::missing("body")),
            Some(pb::envelope::Body::Document(d)) => Body::Document(
                d.try_into()
                    .map_err(|e: ValidationError| e.within("document"))?,
            ),
            Some(pb::envelope::Body::CareEvent(c)) => Body::CareEvent(
                c.try_into()
                    .map_err(|e: ValidationError| e.within("care_event"))?,
            ),
            Some(pb::envelope::Body::Result(r)) => Body::Result(
                r.try_into()
                    .map_err(|e: ValidationError| e.within("result"))?,
            ),
            Some(pb::envelope::Body::Referral(r)) => Body::Referral(
                r.try_into()
                    .map_err(|e: ValidationError| e.within("referral"))?,
            ),
            Some(pb::envelope::Body::Acknowledgement(a)) => Body::Acknowledgement(
                a.try_into()
                    .map_err(|e: ValidationError| e.within("acknowledgement"))?,
            ),
        };
        let requested = wire.acknowledgements_requested.unwrap_or_default();
        let envelope = Self {
            message_id,
            correlation_id: optional(wire.correlation_id),
            created_at: timestamp::from_wire(
                present(wire.created_at, "created_at")?,
                "created_at",
            )?,
            sender: present(nested(wire.sender, "sender")?, "sender")?,
            addressing: present(nested(wire.addressing, "addressing")?, "addressing")?,
            purpose: purpose_from_wire(wire.purpose)?,
            category,
            patient: nested(wire.patient, "patient")?,
            body,
            original: nested(wire.original, "original")?,
            acknowledgements_requested: AcknowledgementRequest {
                infrastructure: requested.infrastructure,
                business: requested.business,
            },
            sender_reference: optional(wire.sender_reference),
        };
        envelope.validate()?;
        Ok(envelope)
    }
}

impl From<Envelope> for pb::Envelope {
    fn from(envelope: Envelope) -> Self {
        let body = match envelope.body {
            Body::Document(d) => pb::envelope::Body::Document(d.into()),
            Body::CareEvent(c) => pb::envelope::Body::CareEvent(c.into()),
            Body::Result(r) => pb::envelope::Body::Result(r.into()),
            Body::Referral(r) => pb::envelope::Body::Referral(r.into()),
            Body::Acknowledgement(a) => pb::envelope::Body::Acknowledgement(a.into()),
        };
        Self {
            message_id: envelope.message_id.into(),
            correlation_id: envelope.correlation_id.unwrap_or_default(),
            created_at: Some(timestamp::to_wire(envelope.created_at)),
            sender: Some(envelope.sender.into()),
            addressing: Some(envelope.addressing.into()),
            purpose: pb::PurposeOfUse::from(envelope.purpose) as i32,
            category: pb::Category::from(envelope.category) as i32,
            patient: envelope.patient.map(Into::into),
            body: Some(body),
            original: envelope.original.map(Into::into),
            acknowledgements_requested: Some(pb::AcknowledgementRequest {
                infrastructure: envelope.acknowledgements_requested.infrastructure,
                business: envelope.acknowledgements_requested.business,
            }),
            sender_reference: envelope.sender_reference.unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use lhcie_model::{ValidationErrorKind, examples};
    use prost::Message;

    use super::*;
    use crate::{DecodeError, decode_envelope, encode_envelope};

    #[test]
    fn every_example_round_trips_through_protobuf_bytes() {
        for original in examples::all() {
            let bytes = encode_envelope(&original);
            let decoded =
                decode_envelope(&bytes).unwrap_or_else(|e| panic!("{:?}: {e}", original.category));
            assert_eq!(decoded, original, "{:?}", original.category);
            // And the wire form is stable: encoding the decoded value gives
            // the same bytes.
            assert_eq!(encode_envelope(&decoded), bytes);
        }
    }

    #[test]
    fn garbage_is_not_an_envelope() {
        let error = decode_envelope(b"\xff\xff\xff\xff").unwrap_err();
        assert!(matches!(error, DecodeError::Protobuf(_)), "{error}");
    }

    fn wire(example: Envelope) -> pb::Envelope {
        pb::Envelope::from(example)
    }

    fn reject(wire: pb::Envelope) -> ValidationError {
        match decode_envelope(&wire.encode_to_vec()) {
            Err(DecodeError::Invalid(e)) => e,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field_and_kind() {
        let mut bad = wire(examples::discharge_summary());
        bad.patient.as_mut().unwrap().nhs_number = "9434765918".into();
        let error = reject(bad);
        assert_eq!(error.field, "patient.nhs_number");
        assert_eq!(error.kind, ValidationErrorKind::InvalidNhsNumber);
        assert!(!error.to_string().contains("9434765918"));

        let mut bad = wire(examples::discharge_summary());
        bad.category = 99;
        assert_eq!(reject(bad).kind, ValidationErrorKind::UnknownCategory);

        let mut bad = wire(examples::discharge_summary());
        bad.message_id.clear();
        assert_eq!(reject(bad).field, "message_id");

        let mut bad = wire(examples::referral());
        bad.addressing.as_mut().unwrap().recipients[0].ods_code = "rp6".into();
        assert_eq!(reject(bad).field, "addressing.recipients[0].ods_code");

        let mut bad = wire(examples::discharge_summary());
        if let Some(pb::envelope::Body::Document(doc)) = &mut bad.body {
            doc.attachments[0].sha256 = bytes::Bytes::from_static(b"short");
        }
        assert_eq!(reject(bad).field, "document.attachments[0].sha256");

        let mut bad = wire(examples::result());
        if let Some(pb::envelope::Body::Result(report)) = &mut bad.body {
            report.observations[0].status = 0;
        }
        assert_eq!(reject(bad).field, "result.observations[0].status");

        let mut bad = wire(examples::care_event_attendance());
        bad.created_at = None;
        assert_eq!(reject(bad).field, "created_at");

        let mut bad = wire(examples::acknowledgement());
        bad.sender.as_mut().unwrap().exchange_id = "NCL Royal Free".into();
        assert_eq!(reject(bad).field, "sender.exchange_id");
    }

    #[test]
    fn category_and_body_must_agree_on_the_wire() {
        let mut bad = wire(examples::discharge_summary());
        bad.category = pb::Category::Result as i32;
        assert_eq!(reject(bad).kind, ValidationErrorKind::Inconsistent);
    }
}
