//! Late rejections for the FHIR kind: a message the local system was
//! answered "ok" for (stored) that the hub then rejects stays in the
//! outbox's rejected list; this task posts an ITK3 response message
//! (`fatal-error`, an OperationOutcome naming the hub's reason, never its
//! free-text detail) to `[deliver_to]/$process-message`, answering the
//! `MessageHeader.id` the local system used (the entry's receipt), and
//! removes the entry once the local system answered 2xx. Otherwise the
//! entry stays, durably, and is tried again with backoff. Once accepted,
//! `local-notified` is traced on the message's id (code: the HTTP status;
//! detail: the hub's response code). The inbound side's
//! [`AckWindow`] keeps it from reporting what the synchronous answer says.

use std::sync::Arc;
use std::time::Duration;

use lhcie_adapter_kit::Outbox;
use lhcie_adapter_kit::outbox::RejectedEntry;
use lhcie_adapter_kit::trace::TraceStage;
use lhcie_fhir_r4::{RenderContext, ResponseDisposition, read_response, render_response};
use lhcie_model::{AckLevel, AckOutcome, Coding, Envelope, HUB_RESPONSE_CODE_SYSTEM};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::acks::{self, AckSpec};
use super::client::LocalClient;
use super::outbound::PROCESS_MESSAGE;
use crate::hl7v2::ack_window::AckWindow;
use crate::ops::Ops;
use crate::runtime::{pause, reason_name};

/// The task reporting late rejections.
pub struct LateResponses {
    /// The adapter's outbox.
    pub outbox: Outbox,
    /// Where `local-notified` is reported.
    pub ops: Ops,
    /// To the local system.
    pub client: LocalClient,
    /// Messages the inbound side is still answering.
    pub window: Arc<AckWindow>,
    /// Longest pause between attempts.
    pub retry_max: Duration,
    /// This adapter's base URL.
    pub source_endpoint: String,
}

impl LateResponses {
    /// Reports rejected entries now and whenever another comes, until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut answers = self.outbox.subscribe();
        let mut backoff = Duration::from_millis(200);
        loop {
            let (done, deferred) = self.sweep(&shutdown).await;
            if done {
                backoff = Duration::from_millis(200);
                if !self
                    .window
                    .next_sweep(&mut answers, deferred, &shutdown)
                    .await
                {
                    return;
                }
            } else {
                if !pause(backoff, &shutdown).await {
                    return;
                }
                backoff = (backoff * 2).min(self.retry_max);
            }
        }
    }

    /// (all reported, some deferred).
    async fn sweep(&self, shutdown: &CancellationToken) -> (bool, bool) {
        let Ok(entries) = self.outbox.rejected() else {
            return (false, false);
        };
        let mut deferred = false;
        for entry in entries {
            if self.window.contains(&entry.message_id) {
                deferred = true;
                continue;
            }
            if shutdown.is_cancelled() || !self.report(&entry).await {
                return (false, deferred);
            }
        }
        (true, deferred)
    }

    async fn report(&self, entry: &RejectedEntry) -> bool {
        let message_id = entry.message_id.as_str();
        let Ok(original) = Envelope::try_from(entry.envelope.clone()) else {
            tracing::warn!(%message_id, "rejected entry is not a valid envelope; kept for operators");
            return true;
        };
        let reason = reason_name(&entry.rejection);
        let code = crate::hub_codes::code_of(entry.reason()).unwrap_or(reason);
        let now = OffsetDateTime::now_utc();
        let ack = acks::envelope(
            AckSpec {
                refers_to: &original.message_id,
                to: &original.sender.ods_code,
                from: &original.sender.ods_code,
                exchange: &original.sender.exchange_id,
                level: AckLevel::Infrastructure,
                outcome: AckOutcome::Negative,
                code: Coding {
                    system: HUB_RESPONSE_CODE_SYSTEM.into(),
                    code: code.into(),
                    display: None,
                },
                text: Some(format!("rejected by the hub: {reason}")),
                sender_reference: original.sender_reference.clone(),
            },
            now,
        );
        let responds_to = self
            .outbox
            .receipt(message_id)
            .ok()
            .flatten()
            .and_then(|r| String::from_utf8(r).ok())
            .unwrap_or_else(|| message_id.to_owned());
        let ctx = RenderContext::new(&self.source_endpoint, self.client.base(), now);
        let body = match render_response(&ack, &responds_to, &ctx) {
            Ok(body) => body.to_string().into_bytes(),
            Err(error) => {
                tracing::error!(%message_id, %error, "cannot render the late response");
                return false;
            }
        };
        match self.client.post(PROCESS_MESSAGE, body).await {
            Ok(answer)
                if read_response(answer.status, &answer.body).disposition
                    == ResponseDisposition::Ok =>
            {
                self.ops.report(
                    message_id,
                    TraceStage::LocalNotified,
                    &answer.status.to_string(),
                    code,
                );
                match self.outbox.remove_rejected(message_id) {
                    Ok(_) => {
                        tracing::info!(%message_id, reason, "late rejection reported to the local FHIR system");
                        true
                    }
                    Err(error) => {
                        tracing::error!(%message_id, %error, "cannot remove the reported rejection");
                        false
                    }
                }
            }
            Ok(answer) => {
                tracing::warn!(%message_id, status = answer.status, "the local FHIR system did not accept the late rejection; retrying");
                false
            }
            Err(problem) => {
                tracing::warn!(%message_id, problem = %problem, "reporting a late rejection failed; retrying");
                false
            }
        }
    }
}
