//! Acknowledgements that come back as deliveries: the hub's negative
//! acknowledgements (a recipient not permitted by information governance
//! policy; over the AMQP uplink also a rejection of the whole message) and
//! receivers' acknowledgements (e.g. an ITK3 business response from a FHIR
//! trust), each referring to a message this adapter sent.
//!
//! The local system sent that message over MLLP and was answered AA once it
//! was stored. A **negative** acknowledgement is reported to it as an HL7 v2
//! `ACK` message of its own, like a late rejection
//! ([`super::late_nacks`]), sent to `notify_to`:
//!
//! - addressed from the original's MSH segment, which the inbound side kept
//!   as the outbox entry's receipt ([`Outbox::receipt`]): MSA-2 is the
//!   original MSH-10, applications and facilities swapped;
//! - a rejection by the hub (its code is the hub's reject reason) gets the
//!   same AE/AR and ERR as an early rejection
//!   ([`super::acks::hub_rejection_ack`]);
//! - a recipient **not permitted** by information-sharing policy gets
//!   **AE** with ERR `NOTPERMITTED^Not permitted by information-sharing
//!   policy; do not resend^99LHCIE` and ERR-8 the hub's words with "do
//!   not resend": final, because the same message would be refused again
//!   (HL7 v2.4 chapter 2: AE is a rejection for the content, not to be
//!   resent unchanged; AR, and 207 "application internal error", read as
//!   a transient fault that sending engines retry; see
//!   `docs/hl7v2-adapter.md`, "Acknowledgement codes");
//! - anything else (a receiver's negative response) **AR** with ERR code
//!   207 and ERR-8 the acknowledgement's code and text (never patient
//!   data: senders of acknowledgements must not name the patient, and the
//!   hub never says why a recipient was not permitted);
//! - MSH-10 derived from the acknowledgement's message id, so a redelivery
//!   sends the same control id.
//!
//! The delivery is acknowledged to the hub only once the local system
//! answered that ACK message AA/CA; on AE/AR it is dead-lettered with the
//! reason; otherwise it is sent again with backoff. A negative
//! acknowledgement for a message this adapter no longer knows (its receipt
//! expired with the outbox's bounded `answered` record, or it did not come
//! over MLLP) is dead-lettered with that reason, for operators. A
//! **positive** acknowledgement needs nothing: the local system was told AA
//! already (original mode); it is consumed and logged.

use std::time::Duration;

use lhcie_adapter_kit::{Disposition, Outbox};
use lhcie_hl7v2::{AckCode, AckError, ErrorCode, Message, build_ack};
use lhcie_mllp::MllpSender;
use lhcie_model::{HUB_RESPONSE_CODE_SYSTEM, hub_response};
use lhcie_proto::{canonical as pb, hub as hubpb};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::acks::{
    LocalAnswer, hub_rejection_ack, read_local_ack, send_problem, with_user_message,
};
use super::late_nacks::late_control_id;
use crate::ops::DeliveryTracker;
use crate::runtime::pause;

/// The dead-letter reason for a negative acknowledgement of a message this
/// adapter cannot relate to an HL7 v2 message.
pub const UNKNOWN_ORIGINAL: &str =
    "negative acknowledgement for a message this adapter has no HL7 v2 receipt for";

/// The acknowledgement in `envelope`, if it carries one.
pub fn acknowledgement(envelope: &pb::Envelope) -> Option<&pb::Acknowledgement> {
    match &envelope.body {
        Some(pb::envelope::Body::Acknowledgement(ack)) => Some(ack),
        _ => None,
    }
}

/// The HL7 v2 ACK message telling the local system about `ack`, built from
/// the original's MSH segment (`receipt`). `None` if the receipt does not
/// parse.
pub fn ack_message(
    ack: &pb::Acknowledgement,
    ack_message_id: &str,
    receipt: &[u8],
    now: OffsetDateTime,
) -> Option<(String, Vec<u8>)> {
    let original = lhcie_hl7v2::parse_message(receipt).ok()?;
    let control_id = late_control_id(ack_message_id);
    let message = match hub_rejection(ack) {
        Some(rejection) => hub_rejection_ack(&original, &rejection, &control_id, now),
        None if is_not_permitted(ack) => not_permitted_ack(&original, ack, &control_id, now),
        None => negative_ack(&original, ack, &control_id, now),
    };
    Some((control_id, message.render()))
}

/// The acknowledgement's code, for the trace.
pub fn ack_code(ack: &pb::Acknowledgement) -> &str {
    ack.code.as_ref().map_or("", |c| c.code.as_str())
}

/// The hub's rejection of the whole message, if `ack` is one.
fn hub_rejection(ack: &pb::Acknowledgement) -> Option<hubpb::Rejected> {
    let code = ack
        .code
        .as_ref()
        .filter(|c| c.system == HUB_RESPONSE_CODE_SYSTEM)?;
    let reason = crate::hub_codes::reject_reason(&code.code)?;
    Some(hubpb::Rejected {
        reason: reason as i32,
        detail: String::new(),
    })
}

/// Whether `ack` is the hub's "not permitted" for a recipient.
fn is_not_permitted(ack: &pb::Acknowledgement) -> bool {
    ack.code.as_ref().is_some_and(|c| {
        c.system == HUB_RESPONSE_CODE_SYSTEM && c.code == hub_response::NOT_PERMITTED
    })
}

/// AE, final: see the module docs.
fn not_permitted_ack(
    original: &Message,
    ack: &pb::Acknowledgement,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    let message = build_ack(
        original,
        AckCode::Error,
        &[AckError {
            code: ErrorCode::NotPermittedByPolicy,
            location: None,
        }],
        control_id,
        now,
    );
    let text = if ack.text.is_empty() {
        ErrorCode::NotPermittedByPolicy.text().to_owned()
    } else {
        format!("{}; do not resend", ack.text.trim())
    };
    with_user_message(message, &text)
}

fn negative_ack(
    original: &Message,
    ack: &pb::Acknowledgement,
    control_id: &str,
    now: OffsetDateTime,
) -> Message {
    let message = build_ack(
        original,
        AckCode::Reject,
        &[AckError {
            code: ErrorCode::ApplicationInternalError,
            location: None,
        }],
        control_id,
        now,
    );
    let code = ack.code.as_ref().map_or("", |c| c.code.as_str());
    let text = if ack.text.is_empty() {
        format!("Negative acknowledgement {code}")
    } else {
        format!("Negative acknowledgement {code}: {}", ack.text)
    };
    with_user_message(message, text.trim())
}

/// Handles a delivery that carries an acknowledgement; see the module
/// docs.
pub async fn deliver(
    notify: &MllpSender,
    outbox: &Outbox,
    envelope: &pb::Envelope,
    ack: &pb::Acknowledgement,
    tracker: &mut DeliveryTracker,
    retry_max: Duration,
    shutdown: &CancellationToken,
) -> Disposition {
    let message_id = envelope.message_id.as_str();
    let refers_to = ack.refers_to_message_id.as_str();
    if ack.outcome != pb::AckOutcome::Negative as i32 {
        tracing::info!(%message_id, %refers_to, "positive acknowledgement received; the local system was answered AA already");
        return Disposition::Delivered;
    }
    let receipt = match outbox.receipt(refers_to) {
        Ok(Some(receipt)) => receipt,
        Ok(None) => {
            tracing::warn!(%message_id, %refers_to, "negative acknowledgement for a message without an HL7 v2 receipt; dead-lettered");
            tracker.failed("", "unknown-original");
            return Disposition::Rejected(UNKNOWN_ORIGINAL.into());
        }
        Err(error) => {
            tracing::error!(%message_id, %error, "cannot read the outbox's receipts; retrying");
            tracker.attempt();
            tracker.retry("", "outbox-unavailable");
            pause(Duration::from_secs(1), shutdown).await;
            return Disposition::Retry;
        }
    };
    let Some((control_id, bytes)) =
        ack_message(ack, message_id, &receipt, OffsetDateTime::now_utc())
    else {
        tracing::warn!(%message_id, %refers_to, "the stored receipt does not parse; dead-lettered");
        tracker.failed("", "unknown-original");
        return Disposition::Rejected(UNKNOWN_ORIGINAL.into());
    };
    let ack_code = ack_code(ack);
    let mut backoff = Duration::from_millis(200);
    loop {
        tracker.attempt();
        let sent = tokio::select! {
            sent = notify.send(&bytes) => sent,
            _ = shutdown.cancelled() => return Disposition::Retry,
        };
        let problem = match sent {
            Ok(reply) => match read_local_ack(&reply, Some(&control_id)) {
                LocalAnswer::Accepted(code) => {
                    tracing::info!(%message_id, %refers_to, %control_id, "negative acknowledgement reported to the local system");
                    tracker.notified(refers_to, code, ack_code);
                    return Disposition::Delivered;
                }
                LocalAnswer::Refused(code) => {
                    tracing::warn!(%message_id, code, "the local system refused the negative acknowledgement");
                    tracker.failed(code, "local-refused");
                    return Disposition::Rejected(format!("local system answered {code}"));
                }
                LocalAnswer::Unusable => {
                    notify.close().await;
                    tracker.retry("", "unusable-acknowledgement");
                    "unusable acknowledgement".to_owned()
                }
            },
            Err(error) => {
                tracker.retry("", send_problem(&error));
                error.to_string()
            }
        };
        tracing::warn!(%message_id, problem = %problem, retry_in_ms = backoff.as_millis() as u64, "reporting a negative acknowledgement failed; retrying");
        if !pause(backoff, shutdown).await {
            return Disposition::Retry;
        }
        backoff = (backoff * 2).min(retry_max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIPT: &[u8] =
        b"MSH|^~\\&|PAS|RYJ|EPR|RAL|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.4";

    fn ack(system: &str, code: &str, text: &str) -> pb::Acknowledgement {
        pb::Acknowledgement {
            refers_to_message_id: "m-1".into(),
            level: pb::AckLevel::Infrastructure as i32,
            outcome: pb::AckOutcome::Negative as i32,
            code: Some(pb::Coding {
                system: system.into(),
                code: code.into(),
                display: String::new(),
            }),
            text: text.into(),
        }
    }

    fn parsed(bytes: &[u8]) -> Message {
        lhcie_hl7v2::parse_message(bytes).unwrap()
    }

    #[test]
    fn not_permitted_becomes_a_final_ae_to_the_original_sender_with_the_hubs_words() {
        let ack = ack(
            HUB_RESPONSE_CODE_SYSTEM,
            "not-permitted",
            "recipient RAL: not permitted by information governance policy",
        );
        let (control_id, bytes) =
            ack_message(&ack, "ack-1", RECEIPT, OffsetDateTime::UNIX_EPOCH).unwrap();
        let message = parsed(&bytes);
        // AE, not AR: final, not to be resent (module docs).
        assert_eq!(message.value("MSA", 1, 1, 1, 1), Some("AE"));
        assert_eq!(
            message.value("MSA", 3, 1, 1, 1),
            Some("Not permitted by information-sharing policy; do not resend")
        );
        assert_eq!(message.value("MSA", 2, 1, 1, 1), Some("MSG0001"));
        assert_eq!(message.value("MSH", 5, 1, 1, 1), Some("PAS"));
        assert_eq!(message.value("MSH", 6, 1, 1, 1), Some("RYJ"));
        assert_eq!(message.value("MSH", 10, 1, 1, 1), Some(control_id.as_str()));
        assert_eq!(message.value("ERR", 3, 1, 1, 1), Some("NOTPERMITTED"));
        assert_eq!(message.value("ERR", 3, 1, 3, 1), Some("99LHCIE"));
        assert_eq!(message.value("ERR", 4, 1, 1, 1), Some("E"));
        assert_eq!(
            message.value("ERR", 8, 1, 1, 1),
            Some("recipient RAL: not permitted by information governance policy; do not resend")
        );
        // Stable across redeliveries.
        let (again, _) = ack_message(&ack, "ack-1", RECEIPT, OffsetDateTime::UNIX_EPOCH).unwrap();
        assert_eq!(again, control_id);
    }

    #[test]
    fn a_receivers_negative_response_stays_ar_207() {
        let ack = ack(lhcie_model::ITK_RESPONSE_CODE_SYSTEM, "30001", "refused");
        let (_, bytes) = ack_message(&ack, "ack-3", RECEIPT, OffsetDateTime::UNIX_EPOCH).unwrap();
        let message = parsed(&bytes);
        assert_eq!(message.value("MSA", 1, 1, 1, 1), Some("AR"));
        assert_eq!(message.value("ERR", 3, 1, 1, 1), Some("207"));
    }

    #[test]
    fn a_hub_rejection_is_answered_like_an_early_one() {
        let ack = ack(
            HUB_RESPONSE_CODE_SYSTEM,
            "invalid-nhs-number",
            "rejected: PID-3",
        );
        let (_, bytes) = ack_message(&ack, "ack-2", RECEIPT, OffsetDateTime::UNIX_EPOCH).unwrap();
        let message = parsed(&bytes);
        assert_eq!(message.value("MSA", 1, 1, 1, 1), Some("AE"));
        assert_eq!(message.value("ERR", 2, 1, 1, 1), Some("PID"));
        assert_eq!(
            message.value("ERR", 8, 1, 1, 1),
            Some("Rejected by the hub: REJECT_REASON_INVALID_NHS_NUMBER")
        );
        assert!(!String::from_utf8_lossy(&bytes).contains("rejected: PID-3"));
    }

    #[test]
    fn an_unparseable_receipt_gives_no_message() {
        let ack = ack(HUB_RESPONSE_CODE_SYSTEM, "not-permitted", "x");
        assert!(ack_message(&ack, "a", b"not hl7", OffsetDateTime::UNIX_EPOCH).is_none());
    }

    #[tokio::test]
    async fn without_a_receipt_the_delivery_is_dead_lettered_and_positive_ones_consumed() {
        let outbox = Outbox::temporary().unwrap();
        let exchange = lhcie_model::ExchangeId::parse("nwl-imperial").unwrap();
        let ops = crate::ops::Ops::new(
            &exchange,
            "hl7v2-mllp",
            lhcie_adapter_kit::TraceReporter::disabled(),
        );
        let mut tracker = ops.delivery(&lhcie_adapter_kit::Incoming {
            envelope: pb::Envelope::default(),
            recipients: vec![],
            redelivered: false,
            decided_at_unix_nanos: 0,
        });
        let sender = MllpSender::new("127.0.0.1:9", lhcie_mllp::SenderConfig::default());
        let shutdown = CancellationToken::new();
        let envelope = pb::Envelope {
            message_id: "ack-9".into(),
            ..Default::default()
        };
        let negative = ack(HUB_RESPONSE_CODE_SYSTEM, "not-permitted", "x");
        assert_eq!(
            deliver(
                &sender,
                &outbox,
                &envelope,
                &negative,
                &mut tracker,
                Duration::from_millis(100),
                &shutdown
            )
            .await,
            Disposition::Rejected(UNKNOWN_ORIGINAL.into())
        );
        let positive = pb::Acknowledgement {
            outcome: pb::AckOutcome::Positive as i32,
            ..negative
        };
        assert_eq!(
            deliver(
                &sender,
                &outbox,
                &envelope,
                &positive,
                &mut tracker,
                Duration::from_millis(100),
                &shutdown
            )
            .await,
            Disposition::Delivered
        );
    }
}
