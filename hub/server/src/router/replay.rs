//! Replaying a dead letter: the envelope is decided again with the policy
//! as it is now (an agreement may have been signed, the patient may have
//! dissented since), and a permitted copy is published to its destination
//! with the same message id, so a receiving adapter that already has it
//! de-duplicates it. Each replay is a trace event with the operator's name.
//!
//! A copy for an exchange is replayed for the recipients it was kept for:
//! those now permitted are forwarded (an emergency override among them is
//! reviewed and, where it overrides the patient's refusal, told to them,
//! as for a first decision); those still withheld for a reason that
//! can be put right stay pending; those now refused for good (a patient's
//! choice) close the dead letter as denied. An envelope dead-lettered on
//! the ingress queue (rejected over AMQP, or poison) is submitted again
//! whole, without the de-duplication that answered it before.

use std::time::Duration;

use lhcie_hub_core::{AuditRecord, Ingress, Outcome, RecipientDecision, Routed, route};
use lhcie_model::{Envelope, ExchangeId, OdsCode};
use lhcie_proto::canonical as pb;
use lhcie_proto::hub as hubpb;
use prost::Message;
use serde::Serialize;
use time::OffsetDateTime;

use super::{
    DECIDED_AT_HEADER, HELD_FOR_REPLAY, Hold, RECIPIENTS_HEADER, Router, SUBMITTED_BY_HEADER,
    store_hold,
};
use crate::link::{Kind, Outgoing};
use crate::patient_notification::PatientNotification;
use crate::store::dead_letters::{DeadLetter, DeadLetterState, INGRESS_DESTINATION, ReplayNote};
use crate::store::trace::{Layer, TraceEvent};

/// How long a replay waits for the policy to be able to decide before it
/// gives up (the dead letter stays pending).
const POLICY_WAIT: Duration = Duration::from_secs(5);

/// What a replay did (or, in a dry run, would do) with one dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReplayResult {
    /// The dead letter.
    pub id: String,
    /// Its message id.
    pub message_id: String,
    /// `forwarded`, `denied`, `rejected`, `would-forward`, `would-deny`,
    /// `would-reject`, `skipped`, `failed`.
    pub outcome: String,
    /// Why (reason codes; no patient data).
    pub detail: String,
}

impl ReplayResult {
    fn of(letter: &DeadLetter, outcome: &str, detail: impl Into<String>) -> Self {
        Self {
            id: letter.id.to_string(),
            message_id: letter.message_id.clone(),
            outcome: outcome.to_owned(),
            detail: detail.into(),
        }
    }
}

impl Router {
    /// Replays one dead letter as `user`. Never holds: when the broker or
    /// store is unavailable, or the policy cannot decide, the result is
    /// `failed` and the dead letter stays pending.
    pub async fn replay(&self, id: u64, user: &str, dry_run: bool) -> ReplayResult {
        let _one_at_a_time = self.replaying.lock().await;
        let letter = match self.store.dead_letter(id) {
            Ok(Some(letter)) => letter,
            Ok(None) => {
                return ReplayResult {
                    id: id.to_string(),
                    message_id: String::new(),
                    outcome: "skipped".into(),
                    detail: "no such dead letter".into(),
                };
            }
            Err(error) => {
                return ReplayResult {
                    id: id.to_string(),
                    message_id: String::new(),
                    outcome: "failed".into(),
                    detail: error.to_string(),
                };
            }
        };
        if letter.state != DeadLetterState::Pending {
            return ReplayResult::of(&letter, "skipped", "not pending");
        }
        let result = if letter.destination == INGRESS_DESTINATION {
            self.replay_ingress(&letter, user, dry_run).await
        } else {
            self.replay_copy(&letter, user, dry_run).await
        };
        let outcome = match result {
            Ok(result) => result,
            Err(hold) => ReplayResult::of(&letter, "failed", hold.to_string()),
        };
        if !dry_run {
            crate::metrics::replayed(&letter.destination, &outcome.outcome);
            tracing::info!(dead_letter = letter.id, message_id = %letter.message_id, destination = %letter.destination, outcome = %outcome.outcome, user, "replayed");
        }
        outcome
    }

    fn body_of(&self, letter: &DeadLetter) -> Result<Vec<u8>, Hold> {
        self.store
            .dead_letter_body(letter.id)
            .map_err(store_hold)?
            .ok_or_else(|| Hold::Store("the dead letter's envelope is missing".into()))
    }

    async fn replay_copy(
        &self,
        letter: &DeadLetter,
        user: &str,
        dry_run: bool,
    ) -> Result<ReplayResult, Hold> {
        let bytes = self.body_of(letter)?;
        let (envelope, submitter, destination) = match decode(letter, &bytes) {
            Ok(decoded) => decoded,
            Err(problem) => return Ok(ReplayResult::of(letter, "failed", problem)),
        };
        let now = OffsetDateTime::now_utc();
        let Some(outcome) = self.decide_within(&envelope, &submitter, now).await? else {
            return Ok(ReplayResult::of(
                letter,
                "failed",
                "the consent registry copy is not proven current; try again",
            ));
        };
        let routed = match outcome {
            Outcome::Routed(routed) => routed,
            Outcome::Rejected(rejection) => {
                let detail = rejection.reason.code();
                if dry_run {
                    return Ok(ReplayResult::of(letter, "would-reject", detail));
                }
                self.settle(
                    letter,
                    user,
                    DeadLetterState::Replayed,
                    "rejected",
                    detail,
                    now,
                )
                .await?;
                return Ok(ReplayResult::of(letter, "rejected", detail));
            }
        };
        let ours: Vec<&RecipientDecision> = routed
            .recipients
            .iter()
            .filter(|r| r.exchange == destination)
            .filter(|r| letter.recipients.iter().any(|k| k == r.recipient.as_str()))
            .collect();
        let permitted: Vec<&OdsCode> = ours
            .iter()
            .filter(|r| r.permitted())
            .map(|r| &r.recipient)
            .collect();
        let still_held: Vec<&RecipientDecision> = ours
            .iter()
            .copied()
            .filter(|r| !r.permitted())
            .filter(|r| {
                r.decision
                    .as_ref()
                    .is_some_and(|d| HELD_FOR_REPLAY.contains(&d.reason.code()))
            })
            .collect();
        let detail = ours
            .iter()
            .map(|r| {
                let reason = r.decision.as_ref().map_or("no-policy", |d| d.reason.code());
                format!("{}: {reason}", r.recipient)
            })
            .collect::<Vec<_>>()
            .join(", ");
        if dry_run {
            let outcome = if permitted.is_empty() {
                "would-deny"
            } else {
                "would-forward"
            };
            return Ok(ReplayResult::of(letter, outcome, detail));
        }
        if !permitted.is_empty() {
            let replayed = Replayed {
                envelope: &envelope,
                submitter: &submitter,
                destination: &destination,
                bytes: &bytes,
                at: now,
            };
            self.publish_replayed(replayed, &ours, &permitted).await?;
        }
        let outcome = if permitted.is_empty() {
            "denied"
        } else {
            "forwarded"
        };
        if still_held.is_empty() {
            self.settle(
                letter,
                user,
                DeadLetterState::Replayed,
                outcome,
                &detail,
                now,
            )
            .await?;
        } else {
            // Some recipients are still withheld for a reason that can be
            // put right: the dead letter stays pending for them.
            let mut pending = letter.clone();
            pending.recipients = still_held.iter().map(|r| r.recipient.to_string()).collect();
            pending.reason = still_held[0]
                .decision
                .as_ref()
                .map_or("no-policy", |d| d.reason.code())
                .to_owned();
            self.settle(
                &pending,
                user,
                DeadLetterState::Pending,
                outcome,
                &detail,
                now,
            )
            .await?;
        }
        Ok(ReplayResult::of(letter, outcome, detail))
    }

    /// Publishes a replayed copy for its permitted recipients, with the
    /// patient notification its decision obliges (if an emergency now
    /// overrides the patient's refusal), and records a pending review for
    /// each emergency override: a replay is decided again, so it is
    /// reviewed and told like a first decision.
    async fn publish_replayed(
        &self,
        replayed: Replayed<'_>,
        ours: &[&RecipientDecision],
        permitted: &[&OdsCode],
    ) -> Result<(), Hold> {
        let link = self.link.current().ok_or_else(|| self.broker_down())?;
        let decision = self.replay_decision(&replayed, ours)?;
        let notification = PatientNotification::of(&decision).map(|n| n.to_json());
        let message_id = replayed.envelope.message_id.as_str();
        let recipients: Vec<&str> = permitted.iter().map(|r| r.as_str()).collect();
        let egress = self.names.egress_exchange();
        let copy = link.publisher.publish(Outgoing {
            kind: Kind::Envelope,
            exchange: &egress,
            routing_key: replayed.destination.as_str(),
            body: replayed.bytes,
            message_id,
            headers: vec![
                (RECIPIENTS_HEADER, recipients.join(",")),
                (SUBMITTED_BY_HEADER, replayed.submitter.to_string()),
                (
                    DECIDED_AT_HEADER,
                    replayed.at.unix_timestamp_nanos().to_string(),
                ),
            ],
        });
        let notify = notification
            .as_deref()
            .map(|body| self.publish_notification(&link, message_id, body));
        let (published, notified) =
            futures::future::join(copy, futures::future::OptionFuture::from(notify)).await;
        if let Some(error) = published.err().or(notified.and_then(Result::err)) {
            link.fail(&error.0).await;
            return Err(Hold::Broker(error.0));
        }
        self.store.record_replayed(&decision).map_err(store_hold)?;
        crate::metrics::emergency_overrides(&decision);
        Ok(())
    }

    /// A replay's decision about the recipients it was for, as an audit
    /// record (not stored as one: the message's record keeps its first
    /// decision, and the replay is in its trace).
    fn replay_decision(
        &self,
        replayed: &Replayed<'_>,
        ours: &[&RecipientDecision],
    ) -> Result<AuditRecord, Hold> {
        let submitter = replayed.submitter.as_str();
        let ingress = self
            .store
            .audit_of_message(replayed.envelope.message_id.as_str())
            .map_err(store_hold)?
            .into_iter()
            .find(|record| record.submitted_by == submitter)
            .map_or(Ingress::Grpc, |record| record.ingress);
        let routed = Routed {
            recipients: ours.iter().map(|r| (*r).clone()).collect(),
            copies: vec![],
        };
        Ok(AuditRecord::of_outcome(
            replayed.envelope,
            &Outcome::Routed(routed),
            submitter,
            ingress,
            replayed.at,
        ))
    }

    async fn replay_ingress(
        &self,
        letter: &DeadLetter,
        user: &str,
        dry_run: bool,
    ) -> Result<ReplayResult, Hold> {
        if !letter.identity_verified() {
            return Ok(ReplayResult::of(
                letter,
                "failed",
                "identity unverified: the broker did not vouch for its publisher (no validated user-id of an exchange), so it cannot be replayed as any exchange; discard it",
            ));
        }
        let bytes = self.body_of(letter)?;
        let Ok(submitter) = ExchangeId::parse(&letter.submitted_by) else {
            return Ok(ReplayResult::of(
                letter,
                "failed",
                "unknown submitting exchange",
            ));
        };
        let Ok(wire) = pb::Envelope::decode(bytes.as_slice()) else {
            return Ok(ReplayResult::of(letter, "failed", "not an envelope"));
        };
        let now = OffsetDateTime::now_utc();
        if dry_run {
            let outcome = match Envelope::try_from(wire) {
                Err(error) => ("would-reject", error.to_string()),
                Ok(envelope) => match self.decide_within(&envelope, &submitter, now).await? {
                    None => (
                        "failed",
                        "the consent registry copy is not proven current".into(),
                    ),
                    Some(Outcome::Rejected(rejection)) => {
                        ("would-reject", rejection.reason.code().to_owned())
                    }
                    Some(Outcome::Routed(routed)) if routed.copies.is_empty() => {
                        ("would-deny", String::new())
                    }
                    Some(Outcome::Routed(_)) => ("would-forward", String::new()),
                },
            };
            return Ok(ReplayResult::of(letter, outcome.0, outcome.1));
        }
        // Settled first: if the envelope is rejected again it is
        // dead-lettered again, as a new dead letter.
        let answer = self.decide(wire, &bytes, &submitter, Ingress::Amqp).await?;
        let (outcome, detail) = match answer.outcome {
            Some(hubpb::submit_response::Outcome::Accepted(accepted)) => {
                let forwarded = accepted
                    .recipients
                    .iter()
                    .filter(|r| r.disposition == hubpb::Disposition::Forwarded as i32)
                    .count();
                if forwarded > 0 {
                    ("forwarded", format!("{forwarded} recipient(s)"))
                } else {
                    ("denied", String::new())
                }
            }
            Some(hubpb::submit_response::Outcome::Rejected(rejected)) => (
                "rejected",
                hubpb::RejectReason::try_from(rejected.reason)
                    .map(|r| r.as_str_name().to_owned())
                    .unwrap_or_default(),
            ),
            None => ("failed", String::new()),
        };
        self.settle(
            letter,
            user,
            DeadLetterState::Replayed,
            outcome,
            &detail,
            now,
        )
        .await?;
        Ok(ReplayResult::of(letter, outcome, detail))
    }

    /// Asks the routing core, waiting up to [`POLICY_WAIT`] for the policy
    /// to be able to decide; `None` if it cannot.
    async fn decide_within(
        &self,
        envelope: &Envelope,
        submitter: &ExchangeId,
        now: OffsetDateTime,
    ) -> Result<Option<Outcome>, Hold> {
        let deadline = tokio::time::Instant::now() + POLICY_WAIT;
        loop {
            if let Ok(outcome) = route(envelope, submitter, &self.table, self.policy.as_ref(), now)
            {
                return Ok(Some(outcome));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = self.shutdown.cancelled() => return Err(Hold::ShuttingDown),
            }
        }
    }

    /// Records what an operator did with a dead letter (replayed, with its
    /// outcome, or discarded): its new state and a trace event naming them.
    async fn settle(
        &self,
        letter: &DeadLetter,
        user: &str,
        state: DeadLetterState,
        outcome: &str,
        detail: &str,
        at: OffsetDateTime,
    ) -> Result<(), Hold> {
        let mut updated = letter.clone();
        updated.state = state;
        updated.last_replay = Some(ReplayNote {
            at,
            by: user.to_owned(),
            outcome: outcome.to_owned(),
            detail: detail.to_owned(),
        });
        self.store
            .update_dead_letter(&updated)
            .map_err(store_hold)?;
        let (stage, code) = match state {
            DeadLetterState::Discarded => ("discarded", ""),
            _ => ("replayed", outcome),
        };
        let by = if detail.is_empty() {
            format!("by {user}")
        } else {
            format!("by {user}; {detail}")
        };
        self.store
            .record_event(&TraceEvent::new(
                &letter.message_id,
                at,
                Layer::Hub,
                &letter.destination,
                stage,
                code,
                &by,
            ))
            .map_err(store_hold)?;
        self.store.durable().await.map_err(store_hold)
    }

    /// Discards a pending dead letter as `user`; `false` if it was not
    /// pending.
    pub async fn discard(&self, id: u64, user: &str) -> Result<bool, Hold> {
        let _one_at_a_time = self.replaying.lock().await;
        let Some(letter) = self.store.dead_letter(id).map_err(store_hold)? else {
            return Ok(false);
        };
        if letter.state != DeadLetterState::Pending {
            return Ok(false);
        }
        let now = OffsetDateTime::now_utc();
        self.settle(
            &letter,
            user,
            DeadLetterState::Discarded,
            "discarded",
            "",
            now,
        )
        .await?;
        tracing::info!(dead_letter = id, message_id = %letter.message_id, user, "discarded");
        Ok(true)
    }
}

/// A copy being replayed: what, from whom, to where, decided when.
struct Replayed<'a> {
    envelope: &'a Envelope,
    submitter: &'a ExchangeId,
    destination: &'a ExchangeId,
    bytes: &'a [u8],
    at: OffsetDateTime,
}

/// The envelope of a copy's dead letter, its submitter and destination.
fn decode(letter: &DeadLetter, bytes: &[u8]) -> Result<(Envelope, ExchangeId, ExchangeId), String> {
    let wire = pb::Envelope::decode(bytes).map_err(|_| "not an envelope".to_owned())?;
    let envelope = Envelope::try_from(wire).map_err(|e| format!("not a valid envelope: {e}"))?;
    let submitter = ExchangeId::parse(&letter.submitted_by)
        .map_err(|_| "unknown submitting exchange".to_owned())?;
    let destination = ExchangeId::parse(&letter.destination)
        .map_err(|_| "unknown destination exchange".to_owned())?;
    Ok((envelope, submitter, destination))
}
