//! HL7 v2 from the local systems: the MLLP listener and what it answers.
//!
//! For each message:
//!
//! 1. parse it; if it cannot be parsed: **AR** (`build_ack_for_unparseable`);
//! 2. translate it (`translate_received`; the raw bytes travel unchanged as
//!    the original payload); on error: **AE** or **AR** with an ERR saying
//!    where, nothing stored or forwarded;
//! 3. put the envelope in the outbox (durable when `put` returns); if that
//!    fails: **AR** with code 207, so the sender keeps the message and
//!    resends it;
//! 4. wait up to `ack_wait_ms` for the hub's answer: a rejection in time
//!    is answered **AE**/**AR** with the hub's reason (see
//!    [`super::acks::hub_rejection_ack`]) and leaves the outbox's rejected
//!    list; otherwise **AA** — the message is safe in the outbox and is
//!    forwarded whenever the hub is there (a later rejection is reported
//!    by [`super::late_nacks`]). While a message is between steps 3 and 4
//!    it is in the [`AckWindow`], so the two never both report it.
//!
//! The listener's limits come from `[hl7v2.limits]`; a frame over the
//! maximum size is answered **AR** before anything is parsed, and the
//! connection closed ([`super::limits`]).
//!
//! Each answer is counted, timed and traced ([`crate::ops`]): `AA` as
//! received-from-local, a duplicate with detail `duplicate`, the hub's
//! rejection in time with its response code, a refusal as
//! refused-at-boundary under the id the message would have had (when its
//! MSH-10 is there).
//!
//! A resent message (same MSH-3, MSH-4, MSH-10) has the same message id:
//! the outbox recognises it and it is answered like the first (AA, or the
//! hub's rejection), not forwarded twice. A resend of a message whose
//! rejection was already answered is stored and submitted again; the hub
//! answers it with the same rejection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use lhcie_adapter_kit::outbox::Outcome;
use lhcie_config::Hl7v2Settings;
use lhcie_hl7v2::{
    AckCode, AckError, ErrorCode, Message, TranslateContext, build_ack, build_ack_for_result,
    build_ack_for_unparseable, parse_message, translate::derive_message_id, translate_received,
};
use lhcie_mllp::{MllpListener, PeerInfo};
use lhcie_proto::canonical as pb;
use time::OffsetDateTime;

use super::ack_window::AckWindow;
use super::acks::hub_rejection_ack;
use crate::context::AdapterContext;
use crate::ops::Received;
use lhcie_hl7v2::document_types::DocumentTypeMapping;

/// Binds `listen` (over TLS with `[hl7v2.tls]`) and answers the local
/// systems until shutdown; `window` holds the messages being answered.
pub async fn serve(
    listen: SocketAddr,
    settings: Hl7v2Settings,
    window: Arc<AckWindow>,
    ctx: AdapterContext,
) -> anyhow::Result<()> {
    let limits = super::limits::listener_config(&settings.limits);
    let mut listener = MllpListener::bind(listen, limits)
        .await
        .with_context(|| format!("binding the MLLP listener on {listen}"))?;
    if let Some(config) = &settings.tls {
        listener = listener.with_tls(super::tls::acceptor(config)?);
    }
    if !listen.ip().is_loopback() {
        if let Some(reason) = &settings.allow_plaintext_reason
            && settings.tls.is_none()
        {
            tracing::warn!(%listen, %reason, "MLLP listener is PLAIN TEXT on a non-loopback address (allow_plaintext_reason)");
        }
        if let Some(reason) = &settings.allow_unauthenticated_reason
            && settings.tls.as_ref().is_none_or(|t| t.client_ca.is_none())
        {
            tracing::warn!(%listen, %reason, "MLLP listener does not authenticate clients on a non-loopback address (allow_unauthenticated_reason)");
        }
    }
    tracing::info!(
        %listen,
        tls = settings.tls.is_some(),
        client_certificates = settings.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
        "MLLP listener ready"
    );
    let shutdown = ctx.shutdown.clone();
    let ops = ctx.ops.clone();
    let inbound = Arc::new(Inbound {
        document_types: super::document_types(&settings),
        settings,
        window,
        ctx,
    });
    listener
        .serve(
            super::limits::Guarded::new(
                move |message: Bytes, peer: PeerInfo| {
                    let inbound = inbound.clone();
                    async move { Bytes::from(inbound.handle(&message, &peer).await) }
                },
                ops,
            ),
            shutdown,
        )
        .await;
    Ok(())
}

struct Inbound {
    /// TXA-2 document types: the defaults with `[[hl7v2.document_types]]`.
    document_types: Vec<DocumentTypeMapping>,
    settings: Hl7v2Settings,
    window: Arc<AckWindow>,
    ctx: AdapterContext,
}

impl Inbound {
    /// Handles one frame and returns the ACK's bytes; counts, times and
    /// traces the answer ([`crate::ops`]).
    async fn handle(&self, raw: &[u8], peer: &PeerInfo) -> Vec<u8> {
        let started = Instant::now();
        let answer = self.answer(raw, peer).await;
        let code = answer.ack.value("MSA", 1, 1, 1, 1).unwrap_or("").to_owned();
        self.ctx.ops.answered(
            started,
            answer.outcome,
            answer.message_id.as_deref(),
            &code,
            &answer.detail,
        );
        answer.ack.render()
    }

    /// The ACK for one frame, and what it says for operations.
    async fn answer(&self, raw: &[u8], peer: &PeerInfo) -> Answer {
        let now = OffsetDateTime::now_utc();
        let control_id = ack_control_id();
        let message = match parse_message(raw) {
            Ok(message) => message,
            Err(error) => {
                tracing::info!(
                    connection = peer.connection_id,
                    bytes = raw.len(),
                    kind = ?error.kind(),
                    "unparseable HL7 v2 message: AR"
                );
                let ack = build_ack_for_unparseable(raw, Some(&error), &control_id, now);
                return Answer::refused(ack, None, "unparseable");
            }
        };
        let mut translate = TranslateContext::new(self.ctx.exchange.id.clone(), now);
        translate.sender_ods = self.settings.sender_ods.clone();
        translate.default_recipients = self.settings.default_recipients.clone();
        translate.document_types = self.document_types.clone();
        let translated = match translate_received(raw, &message, &translate) {
            Ok(translated) => translated,
            Err(error) => {
                tracing::info!(
                    connection = peer.connection_id,
                    code = %error.code().identifier(),
                    ack = error.disposition().ack_code(),
                    "HL7 v2 message not translated; nothing forwarded"
                );
                let ack = build_ack_for_result(&message, Err(&error), &control_id, now);
                // The id the message would have had (a corrected resend
                // keeps it), so the refusal shows in its trace.
                let message_id = message
                    .msh()
                    .value(10, 1, 1, 1)
                    .filter(|c| !c.trim().is_empty())
                    .and_then(|c| derive_message_id(&self.ctx.exchange.id, &message, c).ok())
                    .map(|id| id.to_string());
                // The kind and position of the problem, never a value.
                let detail = error.to_string();
                return Answer::refused(ack, message_id, &detail);
            }
        };
        let envelope = pb::Envelope::from(translated.envelope);
        let message_id = envelope.message_id.clone();
        // Until this returns, a rejection is ours to answer.
        let _answering = self.window.enter(&message_id);
        // The MSH segment stays with the entry, to address negative
        // acknowledgements that come back later (`returned_acks`).
        let receipt = msh_segment(raw);
        let ticket = match self.ctx.outbox.put_with_receipt(envelope, receipt).await {
            Ok(ticket) => ticket,
            Err(error) => {
                tracing::error!(%message_id, %error, "cannot store the message in the outbox: AR");
                let ack = internal_error(&message, &control_id, now);
                return Answer::refused(ack, Some(message_id), "outbox-unavailable");
            }
        };
        tracing::info!(%message_id, duplicate = ticket.duplicate, "HL7 v2 message stored");
        let stored = |ack: Message, outcome: Received, detail: &str| Answer {
            ack,
            outcome: if ticket.duplicate {
                Received::Duplicate
            } else {
                outcome
            },
            message_id: Some(message_id.clone()),
            detail: if ticket.duplicate {
                "duplicate".to_owned()
            } else {
                detail.to_owned()
            },
        };
        let wait = Duration::from_millis(self.settings.ack_wait_ms);
        match self.ctx.outbox.wait_for_answer(&message_id, wait).await {
            Ok(Some(answer)) => match answer.outcome {
                Outcome::Rejected(rejection) => {
                    tracing::info!(
                        %message_id,
                        reason = crate::runtime::reason_name(&rejection),
                        "rejected by the hub in time for the ACK"
                    );
                    let ack = hub_rejection_ack(&message, &rejection, &control_id, now);
                    // Told in this ACK: no late report. (If removing fails,
                    // the local system is told again later; harmless.)
                    if let Err(error) = self.ctx.outbox.remove_rejected(&message_id) {
                        tracing::warn!(%message_id, %error, "cannot remove an answered rejection from the outbox");
                    }
                    let code = crate::hub_codes::code_of(rejection.reason())
                        .unwrap_or(crate::runtime::reason_name(&rejection));
                    stored(ack, Received::HubRejected, code)
                }
                Outcome::Accepted(_) => {
                    stored(accept(&message, &control_id, now), Received::Accepted, "")
                }
            },
            // Stored: the forwarder takes it from here.
            Ok(None) => stored(accept(&message, &control_id, now), Received::Accepted, ""),
            Err(error) => {
                // The entry is durable; only the look-up failed.
                tracing::warn!(%message_id, %error, "cannot read the hub's answer; answering AA (stored)");
                stored(accept(&message, &control_id, now), Received::Accepted, "")
            }
        }
    }
}

/// An ACK with what it means for operations.
struct Answer {
    ack: Message,
    outcome: Received,
    message_id: Option<String>,
    /// A code for the trace (never a value from the message).
    detail: String,
}

impl Answer {
    fn refused(ack: Message, message_id: Option<String>, detail: &str) -> Self {
        Self {
            ack,
            outcome: Received::Refused,
            message_id,
            detail: detail.to_owned(),
        }
    }
}

/// The raw MSH segment of a message that parsed: from `MSH` to the first
/// segment separator. Application, facility and control id only; no
/// patient data.
fn msh_segment(raw: &[u8]) -> &[u8] {
    let start = raw.windows(3).position(|w| w == b"MSH").unwrap_or(0);
    let rest = &raw[start..];
    let end = rest
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(rest.len());
    &rest[..end]
}

fn accept(message: &Message, control_id: &str, now: OffsetDateTime) -> Message {
    build_ack(message, AckCode::Accept, &[], control_id, now)
}

fn internal_error(message: &Message, control_id: &str, now: OffsetDateTime) -> Message {
    build_ack(
        message,
        AckCode::Reject,
        &[AckError {
            code: ErrorCode::ApplicationInternalError,
            location: None,
        }],
        control_id,
        now,
    )
}

/// A fresh MSH-10 for an ACK: 20 characters (the limit before v2.5).
fn ack_control_id() -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("A{}", &id[..19])
}
