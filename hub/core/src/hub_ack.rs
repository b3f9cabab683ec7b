//! Acknowledgements the hub itself sends back to a sender: a recipient was
//! not permitted, or (for envelopes that arrived over AMQP, where there is
//! no reply channel) the envelope was rejected.
//!
//! Their message ids are derived from what they acknowledge, so routing the
//! same envelope twice (after a crash) produces the same acknowledgement,
//! which the receiving adapter then de-duplicates.

use lhcie_model::{
    AckLevel, AckOutcome, Acknowledgement, AcknowledgementRequest, Addressing, Body, Category,
    Coding, Envelope, ExchangeId, MessageId, OdsCode, Party, PurposeOfUse, Recipient,
    RecipientIntent,
};
use time::OffsetDateTime;

use crate::routing::Rejection;

/// The ODS-shaped code the hub signs its own acknowledgements with. It is
/// not an NHS organisation and no exchange may serve it.
pub const HUB_ODS_CODE: &str = "LHCIE";
/// The exchange id of the hub itself; reserved, no local exchange may use it.
pub const HUB_EXCHANGE_ID: &str = "hub";
pub use lhcie_model::HUB_RESPONSE_CODE_SYSTEM;
/// The response code for a recipient the policy did not permit.
pub const NOT_PERMITTED: &str = lhcie_model::hub_response::NOT_PERMITTED;
/// What a sender is told about a recipient that was not permitted. It says
/// nothing of why: the reason can reveal the patient's choices.
pub const NOT_PERMITTED_TEXT: &str = "not permitted by information governance policy";

/// The namespace of the hub's derived message ids (a fixed random UUID).
const ACK_NAMESPACE: uuid::Uuid = uuid::Uuid::from_u128(0x5f1e_36a2_9c4b_4b8e_a0d2_7e61_c3f0_9b14);

/// The hub as the sender of its own acknowledgements.
pub fn hub_party() -> Party {
    Party {
        ods_code: OdsCode::parse(HUB_ODS_CODE).expect("constant is a valid ODS code shape"),
        exchange_id: ExchangeId::parse(HUB_EXCHANGE_ID).expect("constant is a valid exchange id"),
        sending_system: Some("lhcie-hub".into()),
    }
}

fn derived_id(parts: &[&str]) -> MessageId {
    let name = parts.join("\u{1f}");
    MessageId::parse(&uuid::Uuid::new_v5(&ACK_NAMESPACE, name.as_bytes()).to_string())
        .expect("a UUID is a valid message id")
}

fn negative_ack(
    id: MessageId,
    refers_to: &MessageId,
    to: &OdsCode,
    purpose: PurposeOfUse,
    code: &str,
    text: String,
    at: OffsetDateTime,
) -> Envelope {
    Envelope {
        message_id: id,
        correlation_id: Some(refers_to.to_string()),
        created_at: at,
        sender: hub_party(),
        addressing: Addressing {
            recipients: vec![Recipient {
                ods_code: to.clone(),
                intent: RecipientIntent::ForAction,
            }],
            rule: None,
        },
        purpose,
        category: Category::Acknowledgement,
        patient: None,
        body: Body::Acknowledgement(Acknowledgement {
            refers_to: refers_to.clone(),
            level: AckLevel::Infrastructure,
            outcome: AckOutcome::Negative,
            code: Some(Coding {
                system: HUB_RESPONSE_CODE_SYSTEM.into(),
                code: code.into(),
                display: None,
            }),
            text: Some(text),
        }),
        original: None,
        acknowledgements_requested: AcknowledgementRequest::default(),
        sender_reference: None,
    }
}

/// The negative acknowledgement telling the sender of `original` that
/// `recipient` was not permitted to receive it.
pub fn not_permitted(original: &Envelope, recipient: &OdsCode, at: OffsetDateTime) -> Envelope {
    negative_ack(
        derived_id(&[
            original.message_id.as_str(),
            NOT_PERMITTED,
            recipient.as_str(),
        ]),
        &original.message_id,
        &original.sender.ods_code,
        original.purpose,
        NOT_PERMITTED,
        format!("recipient {recipient}: {NOT_PERMITTED_TEXT}"),
        at,
    )
}

/// The negative acknowledgement telling `sender` that its envelope
/// `message_id` was rejected.
pub fn rejected(
    message_id: &MessageId,
    sender: &OdsCode,
    rejection: &Rejection,
    at: OffsetDateTime,
) -> Envelope {
    negative_ack(
        derived_id(&[message_id.as_str(), rejection.reason.code()]),
        message_id,
        sender,
        PurposeOfUse::DirectCare,
        rejection.reason.code(),
        format!("rejected: {}", rejection.detail),
        at,
    )
}
