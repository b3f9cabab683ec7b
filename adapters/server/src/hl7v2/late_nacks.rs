//! Late negative acknowledgements: telling the local system about a
//! rejection that came after its message was already answered AA.
//!
//! The inbound side waits up to `ack_wait_ms` for the hub's answer; a
//! rejection in time goes into the message's own ACK (and the entry leaves
//! the outbox's rejected list). A later rejection stays in
//! [`Outbox::rejected`]; [`LateNacks::run`] reports each one to the local
//! system as an HL7 v2 `ACK` message of its own:
//!
//! - addressed back to the original sender (sending and receiving
//!   application and facility swapped from the original, which travels as
//!   the envelope's original payload);
//! - MSA-1 **AE** or **AR** and one ERR with a table 0357 code, as for an
//!   early rejection ([`hub_rejection_ack`]); MSA-2 the original MSH-10;
//!   no patient data and never the hub's free-text detail;
//! - MSH-10 derived from the message id, so a resend after a lost answer
//!   carries the same control id;
//! - sent with MLLP to `notify_to` (by default the exchange's
//!   `deliver_to`).
//!
//! Only when the local system answers that message **AA** or **CA** is the
//! entry removed ([`Outbox::remove_rejected`]) and `local-notified`
//! traced on the message's id (detail: the hub's response code). Otherwise (no connection,
//! no answer, AE/AR, an answer to another message) it stays, durably, and
//! the task tries again with backoff (200 ms doubling up to
//! `delivery_retry_max_ms`), oldest first. Entries left from before a
//! restart are reported at start-up. A rejected envelope without an HL7 v2
//! original (not received over MLLP) cannot be reported this way: it is
//! logged once and kept for operators.
//!
//! Logs carry message ids, reasons and codes only.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use lhcie_adapter_kit::Outbox;
use lhcie_adapter_kit::outbox::RejectedEntry;
use lhcie_mllp::MllpSender;
use lhcie_model::MEDIA_TYPE_HL7V2_ER7;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use lhcie_adapter_kit::trace::TraceStage;

use super::ack_window::AckWindow;
use super::acks::{LocalAnswer, hub_rejection_ack, read_local_ack};
use crate::ops::Ops;

/// First pause after a failed report.
const RETRY_MIN: Duration = Duration::from_millis(200);

/// The task reporting late rejections to the local system.
#[derive(Debug)]
pub struct LateNacks {
    /// The adapter's outbox (its rejected list).
    pub outbox: Outbox,
    /// Where `local-notified` is reported.
    pub ops: Ops,
    /// To the local system's endpoint for notifications (`notify_to`).
    pub sender: MllpSender,
    /// The messages the inbound side is still answering itself.
    pub window: Arc<AckWindow>,
    /// Longest pause between attempts.
    pub retry_max: Duration,
}

/// An HL7 v2 `ACK` message reporting one late rejection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LateAck {
    /// Its MSH-10 (the local system's answer must name it in MSA-2).
    pub control_id: String,
    /// The message, rendered.
    pub bytes: Vec<u8>,
}

/// How a sweep over the rejected list ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// Everything reportable was reported.
    Done {
        /// Some entries were skipped because the inbound side is still
        /// answering them.
        deferred: bool,
    },
    /// A report failed (or the list could not be read): try again later.
    Failed,
}

impl LateNacks {
    /// Reports the rejected entries now and whenever the hub rejects
    /// another, until `shutdown`. See the module docs.
    pub async fn run(self, shutdown: CancellationToken) {
        // Subscribed before the first sweep: nothing recorded in between
        // is missed.
        let mut answers = self.outbox.subscribe();
        let mut unusable = HashSet::new();
        let mut backoff = RETRY_MIN;
        let pending = self.outbox.rejected().map_or(0, |r| r.len());
        tracing::debug!(pending, "late negative acknowledgements: starting");
        loop {
            let sweep = self.sweep(&mut unusable, &shutdown).await;
            let woken = match sweep {
                Sweep::Done { deferred } => {
                    backoff = RETRY_MIN;
                    self.window
                        .next_sweep(&mut answers, deferred, &shutdown)
                        .await
                }
                Sweep::Failed => {
                    let delay = backoff;
                    backoff = (backoff * 2).min(self.retry_max.max(RETRY_MIN));
                    crate::runtime::pause(delay, &shutdown).await
                }
            };
            if !woken {
                return;
            }
        }
    }

    /// Reports every rejected entry not yet reported, oldest first; stops
    /// at the first failure.
    async fn sweep(&self, unusable: &mut HashSet<String>, shutdown: &CancellationToken) -> Sweep {
        let entries = match self.outbox.rejected() {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "cannot read the outbox's rejected list");
                return Sweep::Failed;
            }
        };
        let mut deferred = false;
        for entry in entries {
            if unusable.contains(&entry.message_id) {
                continue;
            }
            if self.window.contains(&entry.message_id) {
                deferred = true;
                continue;
            }
            let Some(ack) = late_ack(&entry, OffsetDateTime::now_utc()) else {
                tracing::warn!(
                    message_id = %entry.message_id,
                    reason = entry.reason().as_str_name(),
                    "rejected message has no usable HL7 v2 original; cannot report it to the local system (kept in the rejected list)"
                );
                unusable.insert(entry.message_id);
                continue;
            };
            if !self.report(&entry, &ack, shutdown).await {
                return Sweep::Failed;
            }
        }
        Sweep::Done { deferred }
    }

    /// Sends one late ACK; true once the local system accepted it and the
    /// entry is removed.
    async fn report(
        &self,
        entry: &RejectedEntry,
        ack: &LateAck,
        shutdown: &CancellationToken,
    ) -> bool {
        let message_id = entry.message_id.as_str();
        let sent = tokio::select! {
            sent = self.sender.send(&ack.bytes) => sent,
            _ = shutdown.cancelled() => return false,
        };
        let problem = match sent {
            Ok(reply) => match read_local_ack(&reply, Some(&ack.control_id)) {
                LocalAnswer::Accepted(code) => {
                    let hub_code = crate::hub_codes::code_of(entry.reason())
                        .unwrap_or(entry.reason().as_str_name());
                    self.ops
                        .report(message_id, TraceStage::LocalNotified, code, hub_code);
                    return match self.outbox.remove_rejected(message_id) {
                        Ok(_) => {
                            tracing::info!(
                                %message_id,
                                control_id = %ack.control_id,
                                reason = entry.reason().as_str_name(),
                                "late rejection reported to the local system"
                            );
                            true
                        }
                        Err(error) => {
                            tracing::error!(%message_id, %error, "cannot remove the reported rejection from the outbox");
                            false
                        }
                    };
                }
                LocalAnswer::Refused(code) => format!("the local system answered {code}"),
                LocalAnswer::Unusable => {
                    // A stray answer: the connection is no longer trustworthy.
                    self.sender.close().await;
                    "unusable acknowledgement".to_owned()
                }
            },
            Err(error) => error.to_string(),
        };
        tracing::warn!(
            %message_id,
            problem = %problem,
            "reporting a late rejection to the local system failed; kept, retrying"
        );
        false
    }
}

/// The `ACK` message reporting `entry`'s rejection to the system that sent
/// it; `None` if the envelope has no parseable HL7 v2 original.
pub fn late_ack(entry: &RejectedEntry, now: OffsetDateTime) -> Option<LateAck> {
    let original = entry
        .envelope
        .original
        .as_ref()
        .filter(|o| o.media_type == MEDIA_TYPE_HL7V2_ER7 && !o.content.is_empty())?;
    let message = lhcie_hl7v2::parse_message(&original.content).ok()?;
    let control_id = late_control_id(&entry.message_id);
    let ack = hub_rejection_ack(&message, &entry.rejection, &control_id, now);
    Some(LateAck {
        control_id,
        bytes: ack.render(),
    })
}

/// A stable MSH-10 for the late ACK of `message_id`: `N` and the 64-bit
/// FNV-1a hash of the id in hex (17 characters, within the 20 allowed
/// before v2.5).
pub fn late_control_id(message_id: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in message_id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("N{hash:016X}")
}

#[cfg(test)]
mod tests;
