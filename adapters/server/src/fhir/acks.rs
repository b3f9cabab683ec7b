//! The acknowledgements the `fhir-r4` kind writes: ITK3 acknowledgement
//! envelopes sent back to a message's sender through the hub (after a
//! delivery: success 20013, the local system's business response, or a
//! final negative), the synchronous response to a `$process-message`, and
//! the response message reporting a rejection to the local system.
//!
//! Acknowledgement ids are derived from what they acknowledge (message id,
//! level, code), so a redelivered message produces the same
//! acknowledgement and the hub and the receiver de-duplicate it.

use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, AcknowledgementRequest, Addressing, Body, Category,
    Coding, Envelope, ExchangeId, ITK_RESPONSE_CODE_SYSTEM, MessageId, OdsCode, Party, Recipient,
    RecipientIntent,
};
use time::OffsetDateTime;

/// The namespace of acknowledgement ids this adapter derives.
const ACK_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x7c2e_51d0_4a8b_4f3c_9e17_d2b6_0a95_3e48);

/// What is acknowledged and by whom.
#[derive(Debug, Clone)]
pub struct AckSpec<'a> {
    /// The message acknowledged.
    pub refers_to: &'a MessageId,
    /// Its sender (the acknowledgement goes to it).
    pub to: &'a OdsCode,
    /// Who acknowledges: an organisation of this exchange.
    pub from: &'a OdsCode,
    /// This exchange.
    pub exchange: &'a ExchangeId,
    /// Infrastructure or business.
    pub level: AckLevel,
    /// Positive or negative (final).
    pub outcome: AckOutcome,
    /// The response code.
    pub code: Coding,
    /// For people; never names the patient.
    pub text: Option<String>,
    /// The sender's own reference, echoed back.
    pub sender_reference: Option<String>,
}

/// An ITK3 code.
pub fn itk(code: &str) -> Coding {
    Coding {
        system: ITK_RESPONSE_CODE_SYSTEM.into(),
        code: code.into(),
        display: None,
    }
}

/// The acknowledgement envelope for `spec`, created `now`.
pub fn envelope(spec: AckSpec<'_>, now: OffsetDateTime) -> Envelope {
    let name = [
        spec.refers_to.as_str(),
        match spec.level {
            AckLevel::Infrastructure => "infrastructure",
            AckLevel::Business => "business",
        },
        spec.from.as_str(),
        spec.code.code.as_str(),
    ]
    .join("\u{1f}");
    let id = uuid::Uuid::new_v5(&ACK_NAMESPACE, name.as_bytes()).to_string();
    Envelope {
        message_id: MessageId::parse(&id).expect("a UUID is a valid message id"),
        correlation_id: Some(spec.refers_to.to_string()),
        created_at: now,
        sender: Party {
            ods_code: spec.from.clone(),
            exchange_id: spec.exchange.clone(),
            sending_system: Some("lhcie-adapter fhir-r4".into()),
        },
        addressing: Addressing {
            recipients: vec![Recipient {
                ods_code: spec.to.clone(),
                intent: RecipientIntent::ForAction,
            }],
            rule: None,
        },
        purpose: lhcie_model::PurposeOfUse::DirectCare,
        category: Category::Acknowledgement,
        patient: None,
        body: Body::Acknowledgement(Acknowledgement {
            refers_to: spec.refers_to.clone(),
            level: spec.level,
            outcome: spec.outcome,
            code: Some(spec.code),
            text: spec.text,
        }),
        original: None,
        acknowledgements_requested: AcknowledgementRequest::default(),
        sender_reference: spec.sender_reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_are_valid_and_their_ids_stable() {
        let refers_to = MessageId::parse("0190d3d2-0000-7000-8000-000000000001").unwrap();
        let (to, from) = (
            OdsCode::parse("RYJ").unwrap(),
            OdsCode::parse("RAL").unwrap(),
        );
        let exchange = ExchangeId::parse("ncl-royal-free").unwrap();
        let spec = |code: &str| AckSpec {
            refers_to: &refers_to,
            to: &to,
            from: &from,
            exchange: &exchange,
            level: AckLevel::Infrastructure,
            outcome: AckOutcome::Positive,
            code: itk(code),
            text: None,
            sender_reference: None,
        };
        let now = OffsetDateTime::UNIX_EPOCH;
        let first = envelope(spec("20013"), now);
        first.validate().unwrap();
        assert_eq!(first.message_id, envelope(spec("20013"), now).message_id);
        assert_ne!(first.message_id, envelope(spec("30002"), now).message_id);
        assert_eq!(first.addressing.recipients[0].ods_code, to);
    }
}
