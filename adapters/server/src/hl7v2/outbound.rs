//! Deliveries to the local system over MLLP.
//!
//! A delivery whose original payload is HL7 v2
//! (`x-application/hl7-v2+er7`) is sent to `deliver_to` **byte for byte**
//! as the sender wrote it, and the local system's ACK decides:
//!
//! - **AA** (or CA): delivered; the kit records the id and acknowledges
//!   it to the hub;
//! - **AE / AR** (or CE / CR): final; the delivery is rejected to the hub
//!   (dead-lettered with the reason `local system answered AE`);
//! - no connection, no ACK in time, or an ACK that is not for this message:
//!   sent again with backoff (200 ms doubling up to
//!   `delivery_retry_max_ms`), never acknowledged meanwhile; on shutdown the
//!   delivery is handed back to the hub (retry).
//!
//! A delivery without an HL7 v2 original (e.g. from a FHIR or native
//! exchange) is written as HL7 v2 from the canonical model
//! (`lhcie_hl7v2::render_envelope`: a document as MDM^T02 with its
//! attachments in OBX ED, a care event as ADT, a referral as REF^I12, a
//! result as ORU^R01), MSH-6 the recipient organisation, MSH-10 derived
//! from the message id (a redelivery renders the same bytes). What cannot
//! be written (e.g. a document entered in error) is rejected
//! (dead-lettered) with the reason.
//!
//! Every attempt is told to the delivery's
//! [`DeliveryTracker`]: delivered (the ACK
//! code), retry (a problem code such as `no-connection`), failed
//! (`local-refused` with the ACK code, `not-renderable`,
//! `invalid-envelope`, `not-framable`).

use std::time::Duration;

use lhcie_adapter_kit::{Disposition, Incoming};
use lhcie_config::Hl7v2Settings;
use lhcie_hl7v2::{RenderContext, render_envelope};
use lhcie_mllp::MllpSender;
use lhcie_model::MEDIA_TYPE_HL7V2_ER7;
use tokio_util::sync::CancellationToken;

use super::acks::{LocalAnswer, read_local_ack, send_problem};
use crate::ops::DeliveryTracker;
use crate::runtime::pause;

/// The HL7 v2 bytes for a delivery: the original if it is HL7 v2, else
/// rendered from the canonical model. On error: a reason code (for the
/// trace) and the reason (for the dead letter).
fn hl7v2_bytes(
    incoming: &Incoming,
    settings: &Hl7v2Settings,
) -> Result<Vec<u8>, (&'static str, String)> {
    if let Some(original) = incoming
        .envelope
        .original
        .as_ref()
        .filter(|o| o.media_type == MEDIA_TYPE_HL7V2_ER7 && !o.content.is_empty())
    {
        return Ok(original.content.to_vec());
    }
    let envelope = lhcie_model::Envelope::try_from(incoming.envelope.clone())
        .map_err(|e| ("invalid-envelope", format!("invalid envelope: {e}")))?;
    let facility = incoming.recipients.first().cloned().unwrap_or_default();
    let mut ctx = RenderContext::new("", facility, time::OffsetDateTime::now_utc());
    ctx.document_types = super::document_types(settings);
    render_envelope(&envelope, &ctx).map_err(|e| {
        (
            "not-renderable",
            format!("cannot be written as HL7 v2: {e}"),
        )
    })
}

/// Delivers one envelope, telling `tracker` about each attempt; see the
/// module docs.
pub async fn deliver(
    sender: &MllpSender,
    settings: &Hl7v2Settings,
    incoming: Incoming,
    tracker: &mut DeliveryTracker,
    shutdown: &CancellationToken,
) -> Disposition {
    let message_id = incoming.envelope.message_id.as_str();
    let content = match hl7v2_bytes(&incoming, settings) {
        Ok(content) => content,
        Err((code, reason)) => {
            tracing::warn!(%message_id, reason = %reason, "delivery cannot be written as HL7 v2; rejected");
            tracker.failed("", code);
            return Disposition::Rejected(reason);
        }
    };
    let content = &content;
    let control_id = lhcie_hl7v2::parse_message(content)
        .ok()
        .and_then(|m| m.msh().value(10, 1, 1, 1).map(str::to_owned));
    let mut backoff = Duration::from_millis(200);
    let max = Duration::from_millis(settings.delivery_retry_max_ms);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tracker.attempt();
        let problem = match sender.send(content).await {
            Ok(ack) => match read_local_ack(&ack, control_id.as_deref()) {
                LocalAnswer::Accepted(code) => {
                    tracing::info!(%message_id, attempt, "delivered to the local system");
                    tracker.delivered(code, "");
                    return Disposition::Delivered;
                }
                LocalAnswer::Refused(code) => {
                    tracing::warn!(%message_id, code, "the local system refused the delivery");
                    tracker.failed(code, "local-refused");
                    return Disposition::Rejected(format!("local system answered {code}"));
                }
                LocalAnswer::Unusable => {
                    // A stray ACK: the connection is no longer trustworthy.
                    sender.close().await;
                    tracker.retry("", "unusable-acknowledgement");
                    "unusable acknowledgement".to_owned()
                }
            },
            Err(lhcie_mllp::SendError::InvalidMessage(error)) => {
                tracing::warn!(%message_id, %error, "the original cannot be framed for MLLP; rejected");
                tracker.failed("", "not-framable");
                return Disposition::Rejected(format!("cannot be sent over MLLP: {error}"));
            }
            Err(error) => {
                tracker.retry("", send_problem(&error));
                error.to_string()
            }
        };
        tracing::warn!(
            %message_id,
            attempt,
            retry_in_ms = backoff.as_millis() as u64,
            problem = %problem,
            "delivery to the local system failed; retrying"
        );
        if !pause(backoff, shutdown).await {
            return Disposition::Retry;
        }
        backoff = (backoff * 2).min(max);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use bytes::Bytes;
    use lhcie_mllp::{ListenerConfig, MllpListener, PeerInfo, SenderConfig};
    use lhcie_proto::canonical as pb;

    use super::*;

    const MESSAGE: &[u8] = b"MSH|^~\\&|PAS|RYJ|EPR|RAL|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.4\rPID|1||3333333333^^^NHS\r";

    fn settings() -> Hl7v2Settings {
        Hl7v2Settings {
            delivery_retry_max_ms: 200,
            ..Hl7v2Settings::default()
        }
    }

    fn incoming(original: Option<(&str, &[u8])>) -> Incoming {
        Incoming {
            envelope: pb::Envelope {
                message_id: "0190d3d2-0000-7000-8000-000000000001".into(),
                original: original.map(|(media_type, content)| pb::OriginalPayload {
                    media_type: media_type.into(),
                    content: content.to_vec().into(),
                }),
                ..Default::default()
            },
            recipients: vec!["RAL".into()],
            redelivered: false,
            decided_at_unix_nanos: 0,
        }
    }

    /// A tracker whose events go nowhere.
    fn tracker(incoming: &Incoming) -> DeliveryTracker {
        let exchange = lhcie_model::ExchangeId::parse("ncl-royal-free").unwrap();
        crate::ops::Ops::new(
            &exchange,
            "hl7v2-mllp",
            lhcie_adapter_kit::TraceReporter::disabled(),
        )
        .delivery(incoming)
    }

    /// Delivers with a tracker whose events go nowhere.
    async fn deliver_untracked(
        sender: &MllpSender,
        settings: &Hl7v2Settings,
        incoming: Incoming,
        shutdown: &CancellationToken,
    ) -> Disposition {
        let mut tracker = tracker(&incoming);
        deliver(sender, settings, incoming, &mut tracker, shutdown).await
    }

    /// An ACK with `code` for the message whose MSH-10 is `control_id`.
    fn ack(code: &str, control_id: &str) -> Bytes {
        Bytes::from(format!(
            "MSH|^~\\&|EPR|RAL|PAS|RYJ|20260101120000||ACK^A01^ACK|R1|P|2.4\rMSA|{code}|{control_id}\r"
        ))
    }

    /// A local MLLP system that answers the first `stray_first` messages
    /// with an ACK for another message, then `code` for the message it got.
    async fn local_system(
        code: &'static str,
        stray_first: usize,
    ) -> (String, Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<Bytes>>>) {
        let listener = MllpListener::bind("127.0.0.1:0", ListenerConfig::default())
            .await
            .unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let calls = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (c, r) = (calls.clone(), received.clone());
        tokio::spawn(listener.serve(
            move |message: Bytes, _peer: PeerInfo| {
                let n = c.fetch_add(1, Ordering::SeqCst);
                let control_id = lhcie_hl7v2::parse_message(&message)
                    .ok()
                    .and_then(|m| m.value("MSH", 10, 1, 1, 1).map(str::to_owned))
                    .unwrap_or_default();
                r.lock().unwrap().push(message);
                async move {
                    if n < stray_first {
                        Bytes::from_static(
                            b"MSH|^~\\&|X|X|X|X|20260101||ACK|R0|P|2.4\rMSA|AA|SOMETHING-ELSE\r",
                        )
                    } else {
                        ack(code, &control_id)
                    }
                }
            },
            CancellationToken::new(),
        ));
        (address, calls, received)
    }

    fn sender(address: &str) -> MllpSender {
        MllpSender::new(
            address,
            SenderConfig {
                connect_attempts: 1,
                ack_timeout: Duration::from_secs(2),
                ..SenderConfig::default()
            },
        )
    }

    #[tokio::test]
    async fn an_aa_delivers_the_original_bytes_unchanged() {
        let (address, _, received) = local_system("AA", 0).await;
        let disposition = deliver_untracked(
            &sender(&address),
            &settings(),
            incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE))),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(disposition, Disposition::Delivered);
        assert_eq!(
            received.lock().unwrap().as_slice(),
            [Bytes::from_static(MESSAGE)]
        );
    }

    #[tokio::test]
    async fn each_outcome_is_counted_and_traced() {
        use lhcie_adapter_kit::trace::TraceStage;
        let ops = crate::ops::Ops::buffering("test-hl7-outbound");
        let message = incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE)));
        let id = message.envelope.message_id.clone();
        let (address, _, _) = local_system("AA", 1).await;
        let mut tracker = ops.delivery(&message);
        let disposition = deliver(
            &sender(&address),
            &settings(),
            message,
            &mut tracker,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(disposition, Disposition::Delivered);
        let (address, _, _) = local_system("AR", 0).await;
        let message = incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE)));
        let mut tracker = ops.delivery(&message);
        deliver(
            &sender(&address),
            &settings(),
            message,
            &mut tracker,
            &CancellationToken::new(),
        )
        .await;
        let events = ops.buffered_events();
        let stages: Vec<(&str, TraceStage, &str, &str)> = events
            .iter()
            .map(|(m, s, c, d)| (m.as_str(), *s, c.as_str(), d.as_str()))
            .collect();
        assert_eq!(
            stages,
            [
                (
                    id.as_str(),
                    TraceStage::DeliveryRetry,
                    "",
                    "attempt=1 unusable-acknowledgement"
                ),
                (id.as_str(), TraceStage::DeliveredToLocal, "AA", ""),
                (
                    id.as_str(),
                    TraceStage::DeliveryFailed,
                    "AR",
                    "local-refused"
                ),
            ]
        );
    }

    #[tokio::test]
    async fn ae_and_ar_are_final_rejections() {
        for code in ["AE", "AR"] {
            let (address, calls, _) = local_system(code, 0).await;
            let disposition = deliver_untracked(
                &sender(&address),
                &settings(),
                incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE))),
                &CancellationToken::new(),
            )
            .await;
            assert_eq!(
                disposition,
                Disposition::Rejected(format!("local system answered {code}"))
            );
            assert_eq!(calls.load(Ordering::SeqCst), 1);
        }
    }

    #[tokio::test]
    async fn an_ack_for_another_message_is_retried() {
        let (address, calls, _) = local_system("AA", 2).await;
        let disposition = deliver_untracked(
            &sender(&address),
            &settings(),
            incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE))),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(disposition, Disposition::Delivered);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreachable_system_is_retried_until_shutdown_and_handed_back() {
        let address = {
            // nodelay: test-only (reserves a free port; nothing is accepted)
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            socket.local_addr().unwrap().to_string()
        };
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            stop.cancel();
        });
        let disposition = deliver_untracked(
            &sender(&address),
            &settings(),
            incoming(Some((MEDIA_TYPE_HL7V2_ER7, MESSAGE))),
            &shutdown,
        )
        .await;
        assert_eq!(disposition, Disposition::Retry);
    }

    #[tokio::test]
    async fn an_invalid_canonical_only_envelope_is_rejected_without_sending() {
        let (address, calls, _) = local_system("AA", 0).await;
        for original in [None, Some(("application/fhir+json", &b"{}"[..]))] {
            let disposition = deliver_untracked(
                &sender(&address),
                &settings(),
                incoming(original),
                &CancellationToken::new(),
            )
            .await;
            let Disposition::Rejected(reason) = disposition else {
                panic!("{disposition:?}");
            };
            assert!(reason.starts_with("invalid envelope"), "{reason}");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_canonical_only_document_is_written_as_mdm_t02() {
        let (address, calls, received) = local_system("AA", 0).await;
        let mut envelope = pb::Envelope::from(lhcie_model::examples::discharge_summary());
        envelope.original = None;
        let incoming = Incoming {
            envelope,
            recipients: vec!["RAL".into()],
            redelivered: false,
            decided_at_unix_nanos: 0,
        };
        let disposition = deliver_untracked(
            &sender(&address),
            &settings(),
            incoming,
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(disposition, Disposition::Delivered);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let sent = received.lock().unwrap()[0].clone();
        let message = lhcie_hl7v2::parse_message(&sent).unwrap();
        assert_eq!(message.value("MSH", 9, 1, 1, 1), Some("MDM"));
        assert_eq!(message.value("MSH", 9, 1, 2, 1), Some("T02"));
        assert_eq!(message.value("MSH", 6, 1, 1, 1), Some("RAL"));
    }
}
