//! Deliveries to the local FHIR system: every delivery is POSTed to
//! `[deliver_to]/$process-message` as a FHIR R4 message Bundle:
//!
//! - a message whose original is FHIR JSON goes **unchanged**;
//! - any other (HL7 v2, native) is rendered from the canonical model
//!   (`lhcie_fhir_r4::render_message`): cross-format delivery;
//! - an acknowledgement (the hub's, or another trust's ITK3 response) is
//!   rendered as an ITK3 response message whose
//!   `MessageHeader.response.identifier` is the `MessageHeader.id` the
//!   local system used (kept with the outbox entry as its receipt).
//!
//! The answer (`lhcie_fhir_r4::read_response`) decides:
//!
//! - **ok**: delivered; if the sender asked for an infrastructure
//!   acknowledgement, a positive one (ITK3 20013) goes back to it through
//!   the hub, and a business response code in the answer (30001, 30002,
//!   30003) goes back as a business acknowledgement;
//! - **transient** (408, 429, 5xx, no connection, no answer in
//!   `delivery_timeout_ms`): sent again with backoff (200 ms doubling up to
//!   `delivery_retry_max_ms`), never acknowledged meanwhile;
//! - **fatal** (other 4xx, a `fatal-error` response): a final negative
//!   acknowledgement goes back to the sender through the hub, and the
//!   delivery is dead-lettered with the reason for operators.
//!
//! Acknowledgements are put in the outbox first, so they are as durable as
//! anything the local system sends; their ids are derived, so a redelivery
//! produces no second one.
//!
//! Every attempt is told to the delivery's
//! [`DeliveryTracker`] (the HTTP status as
//! the code): delivered (detail: the answer's ITK3 code), or, for an
//! acknowledgement, `local-notified` on the original message's id
//! (detail: the acknowledgement's code); retry (`http-503`, `timeout`,
//! `no-answer`); failed (`local-refused <code>`, `not-renderable`,
//! `invalid-envelope`).

use std::time::Duration;

use lhcie_adapter_kit::{Disposition, Incoming, Outbox};
use lhcie_fhir_r4::{
    RenderContext, ResponseDisposition, original_if_fhir, read_response, render_message,
    render_response,
};
use lhcie_model::{AckLevel, AckOutcome, Body, Envelope, OdsCode, itk_response};
use lhcie_proto::canonical as pb;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::acks::{self, AckSpec};
use super::client::LocalClient;
use super::delivered::DeliveredHeaders;
use crate::ops::DeliveryTracker;
use crate::runtime::pause;

/// Where deliveries go under `deliver_to`.
pub const PROCESS_MESSAGE: &str = "$process-message";

/// What delivering needs.
pub struct Deliverer<'a> {
    /// To the local endpoint.
    pub client: &'a LocalClient,
    /// The outbox (acknowledgements to senders; receipts).
    pub outbox: &'a Outbox,
    /// Header ids of delivered messages, for the local system's responses.
    pub delivered: &'a DeliveredHeaders,
    /// This exchange.
    pub exchange: &'a lhcie_model::ExchangeId,
    /// Longest pause between attempts.
    pub retry_max: Duration,
    /// This adapter's base URL (MessageHeader.source.endpoint).
    pub source_endpoint: &'a str,
}

impl Deliverer<'_> {
    /// Delivers one envelope, telling `tracker` about each attempt; see
    /// the module docs.
    pub async fn deliver(
        &self,
        incoming: Incoming,
        tracker: &mut DeliveryTracker,
        shutdown: &CancellationToken,
    ) -> Disposition {
        let message_id = incoming.envelope.message_id.clone();
        let (envelope, narrowed) = match Envelope::try_from(incoming.envelope) {
            Ok(envelope) => scoped_to(envelope, &incoming.recipients),
            Err(error) => {
                tracing::warn!(%message_id, %error, "delivery is not a valid canonical envelope; rejected");
                tracker.failed("", "invalid-envelope");
                return Disposition::Rejected(format!("invalid envelope: {error}"));
            }
        };
        let now = OffsetDateTime::now_utc();
        let ctx = RenderContext::new(self.source_endpoint, self.client.base(), now);
        let (body, header_id) = match self.bundle(&envelope, &ctx, narrowed) {
            Ok(rendered) => rendered,
            Err(reason) => {
                tracing::warn!(%message_id, reason = %reason, "cannot write the delivery as FHIR; rejected");
                tracker.failed("", "not-renderable");
                return Disposition::Rejected(reason);
            }
        };
        if let Err(error) = self
            .delivered
            .record(&header_id, envelope.message_id.as_str())
        {
            tracing::warn!(%message_id, %error, "cannot record the delivered header id; responses to it will not be related");
        }
        let recipient = incoming
            .recipients
            .first()
            .and_then(|r| OdsCode::parse(r).ok());
        let mut backoff = Duration::from_millis(200);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            tracker.attempt();
            let problem = match self.client.post(PROCESS_MESSAGE, body.clone()).await {
                Ok(answer) => {
                    let response = read_response(answer.status, &answer.body);
                    let status = answer.status.to_string();
                    match response.disposition {
                        ResponseDisposition::Ok => {
                            tracing::info!(%message_id, attempt, status = answer.status, "delivered to the local FHIR system");
                            let itk_code = response.itk_code.as_deref().unwrap_or("");
                            match &envelope.body {
                                Body::Acknowledgement(ack) => tracker.notified(
                                    ack.refers_to.as_str(),
                                    &status,
                                    ack.code.as_ref().map_or("", |c| c.code.as_str()),
                                ),
                                _ => tracker.delivered(&status, itk_code),
                            }
                            let disposition = self
                                .after_success(
                                    &envelope,
                                    recipient.as_ref(),
                                    response.itk_code.as_deref(),
                                    now,
                                )
                                .await;
                            if disposition == Disposition::Retry {
                                tracker.retry(&status, "ack-not-stored");
                            }
                            return disposition;
                        }
                        ResponseDisposition::Fatal => {
                            let code = response
                                .itk_code
                                .clone()
                                .unwrap_or_else(|| format!("http-{}", answer.status));
                            tracing::warn!(%message_id, status = answer.status, code = %code, "the local FHIR system refused the delivery");
                            let disposition = self
                                .after_refusal(
                                    &envelope,
                                    recipient.as_ref(),
                                    &code,
                                    answer.status,
                                    now,
                                )
                                .await;
                            match disposition {
                                Disposition::Retry => tracker.retry(&status, "ack-not-stored"),
                                _ => tracker.failed(&status, &format!("local-refused {code}")),
                            }
                            return disposition;
                        }
                        ResponseDisposition::Transient => {
                            tracker.retry(&status, &format!("http-{status}"));
                            format!("transient answer (HTTP {})", answer.status)
                        }
                    }
                }
                Err(problem) => {
                    let code = if problem.starts_with("no answer within") {
                        "timeout"
                    } else {
                        "no-answer"
                    };
                    tracker.retry("", code);
                    problem
                }
            };
            tracing::warn!(%message_id, attempt, retry_in_ms = backoff.as_millis() as u64, problem = %problem, "delivery to the local FHIR system failed; retrying");
            if !pause(backoff, shutdown).await {
                return Disposition::Retry;
            }
            backoff = (backoff * 2).min(self.retry_max);
        }
    }

    /// The bytes to post, and the MessageHeader id they carry. A FHIR
    /// original goes unchanged unless it named organisations this delivery
    /// is not for (`narrowed`, see [`scoped_to`]).
    fn bundle(
        &self,
        envelope: &Envelope,
        ctx: &RenderContext,
        narrowed: bool,
    ) -> Result<(Vec<u8>, String), String> {
        if let Body::Acknowledgement(ack) = &envelope.body {
            // Answer with the id the local system itself used, if known.
            let responds_to = self
                .outbox
                .receipt(ack.refers_to.as_str())
                .ok()
                .flatten()
                .and_then(|r| String::from_utf8(r).ok())
                .unwrap_or_else(|| ack.refers_to.to_string());
            let bundle = render_response(envelope, &responds_to, ctx).map_err(|e| e.to_string())?;
            return Ok((
                bundle.to_string().into_bytes(),
                lhcie_fhir_r4::render::header_id(envelope),
            ));
        }
        if let Some(original) = original_if_fhir(envelope).filter(|_| !narrowed) {
            let header_id = serde_json::from_slice::<serde_json::Value>(original)
                .ok()
                .and_then(|v| {
                    v.pointer("/entry/0/resource/id")
                        .and_then(|id| id.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| envelope.message_id.to_string());
            return Ok((original.to_vec(), header_id));
        }
        let bundle = render_message(envelope, ctx).map_err(|e| e.to_string())?;
        Ok((
            bundle.to_string().into_bytes(),
            lhcie_fhir_r4::render::header_id(envelope),
        ))
    }

    async fn after_success(
        &self,
        envelope: &Envelope,
        recipient: Option<&OdsCode>,
        code: Option<&str>,
        now: OffsetDateTime,
    ) -> Disposition {
        if matches!(envelope.body, Body::Acknowledgement(_)) {
            return Disposition::Delivered;
        }
        let mut acks = Vec::new();
        if envelope.acknowledgements_requested.infrastructure {
            acks.push((
                AckLevel::Infrastructure,
                AckOutcome::Positive,
                itk_response::SUCCESS.to_owned(),
                "delivered to the receiving system",
            ));
        }
        if let Some(code) = code.filter(|c| c.starts_with('3')) {
            let outcome = if code == itk_response::PATIENT_KNOWN {
                AckOutcome::Positive
            } else {
                AckOutcome::Negative
            };
            acks.push((
                AckLevel::Business,
                outcome,
                code.to_owned(),
                "business response of the receiving system",
            ));
        }
        for (level, outcome, code, text) in acks {
            if !self
                .acknowledge(envelope, recipient, level, outcome, &code, text, now)
                .await
            {
                // The delivery is done; the hub redelivers and we acknowledge
                // again (same derived id) rather than lose the answer.
                return Disposition::Retry;
            }
        }
        Disposition::Delivered
    }

    async fn after_refusal(
        &self,
        envelope: &Envelope,
        recipient: Option<&OdsCode>,
        code: &str,
        status: u16,
        now: OffsetDateTime,
    ) -> Disposition {
        if !matches!(envelope.body, Body::Acknowledgement(_))
            && !self
                .acknowledge(
                    envelope,
                    recipient,
                    AckLevel::Infrastructure,
                    AckOutcome::Negative,
                    code,
                    "refused by the receiving system",
                    now,
                )
                .await
        {
            return Disposition::Retry;
        }
        Disposition::Rejected(format!(
            "local FHIR system refused it (HTTP {status}, {code})"
        ))
    }

    /// Puts an acknowledgement of `envelope` for its sender in the outbox;
    /// false if it could not be stored.
    #[allow(clippy::too_many_arguments)]
    async fn acknowledge(
        &self,
        envelope: &Envelope,
        recipient: Option<&OdsCode>,
        level: AckLevel,
        outcome: AckOutcome,
        code: &str,
        text: &str,
        now: OffsetDateTime,
    ) -> bool {
        let Some(from) = recipient else {
            tracing::warn!(message_id = %envelope.message_id, "no recipient of this exchange named; cannot acknowledge");
            return true;
        };
        let ack = acks::envelope(
            AckSpec {
                refers_to: &envelope.message_id,
                to: &envelope.sender.ods_code,
                from,
                exchange: self.exchange,
                level,
                outcome,
                code: acks::itk(code),
                text: Some(text.into()),
                sender_reference: envelope.sender_reference.clone(),
            },
            now,
        );
        let ack_id = ack.message_id.to_string();
        match self.outbox.put(pb::Envelope::from(ack)).await {
            Ok(_) => {
                tracing::info!(message_id = %envelope.message_id, ack = %ack_id, code, "acknowledgement queued for the sender");
                true
            }
            Err(error) => {
                tracing::error!(message_id = %envelope.message_id, %error, "cannot store the acknowledgement");
                false
            }
        }
    }
}

/// The envelope as this delivery may show it (review finding M9): addressed
/// only to the organisations the hub permitted in this exchange (`permitted`,
/// the hub's recipients header), so the local system never learns of other
/// intended recipients, denied or served elsewhere. Also whether anyone was
/// left out: then a FHIR original, which names them, is not passed through
/// but rendered from the canonical model.
fn scoped_to(mut envelope: Envelope, permitted: &[String]) -> (Envelope, bool) {
    if permitted.is_empty() || matches!(envelope.body, Body::Acknowledgement(_)) {
        return (envelope, false);
    }
    let before = envelope.addressing.recipients.len();
    envelope
        .addressing
        .recipients
        .retain(|r| permitted.iter().any(|p| p == r.ods_code.as_str()));
    let narrowed = envelope.addressing.recipients.len() != before;
    (envelope, narrowed)
}

#[cfg(test)]
mod tests {
    use lhcie_model::{OdsCode, Recipient, RecipientIntent};

    use super::*;

    fn addressed_to(codes: &[&str]) -> Envelope {
        let mut envelope = lhcie_model::examples::discharge_summary();
        envelope.addressing.recipients = codes
            .iter()
            .map(|code| Recipient {
                ods_code: OdsCode::parse(code).unwrap(),
                intent: RecipientIntent::ForAction,
            })
            .collect();
        envelope
    }

    fn codes(envelope: &Envelope) -> Vec<&str> {
        envelope
            .addressing
            .recipients
            .iter()
            .map(|r| r.ods_code.as_str())
            .collect()
    }

    fn permitted(codes: &[&str]) -> Vec<String> {
        codes.iter().map(|c| (*c).to_owned()).collect()
    }

    #[test]
    fn a_delivery_names_only_the_recipients_the_hub_permitted_here() {
        let (envelope, narrowed) =
            scoped_to(addressed_to(&["RAL", "RKE", "RJZ"]), &permitted(&["RAL"]));
        assert_eq!(codes(&envelope), ["RAL"]);
        assert!(
            narrowed,
            "a FHIR original naming the others is not passed through"
        );
        let ctx = RenderContext::new(
            "https://adapter.invalid",
            "https://local.invalid",
            envelope.created_at,
        );
        let bundle = render_message(&envelope, &ctx).unwrap();
        let destinations = bundle["entry"][0]["resource"]["destination"]
            .as_array()
            .unwrap();
        assert_eq!(destinations.len(), 1, "{bundle}");
        let rendered = bundle.to_string();
        assert!(
            !rendered.contains("RKE") && !rendered.contains("RJZ"),
            "{rendered}"
        );
    }

    #[test]
    fn a_delivery_for_everyone_named_is_left_as_it_is() {
        let (envelope, narrowed) =
            scoped_to(addressed_to(&["RAL", "RKE"]), &permitted(&["RKE", "RAL"]));
        assert_eq!(codes(&envelope), ["RAL", "RKE"]);
        assert!(!narrowed);
        let (envelope, narrowed) = scoped_to(addressed_to(&["RAL"]), &[]);
        assert_eq!(codes(&envelope), ["RAL"]);
        assert!(!narrowed, "no list from the hub: nothing to narrow by");
    }
}
