//! What happens to one submitted envelope, whichever way it arrived:
//!
//! 1. If this exchange already submitted this message id, the answer given
//!    then is given again (marked duplicate); nothing is routed twice. A
//!    second copy arriving while the first is still in flight waits for
//!    the first's answer.
//! 2. The envelope is validated (wire → domain); a bad one is rejected
//!    with the precise reason.
//! 3. The routing core decides recipients and asks the policy for each. If
//!    the policy cannot decide, the envelope is held (retried) — never
//!    forwarded on a guess, never dropped.
//! 4. Permitted copies are published to the recipients' egress queues,
//!    negative acknowledgements for denied recipients to the sender's, and,
//!    where an emergency overrode the patient's own refusal, one
//!    notification to the patient-notification service's queue; every
//!    publish waits for the broker's confirm.
//! 5. The decision is written to the audit (with a pending review for each
//!    emergency override) and the answer to the de-duplication record, and
//!    flushed to disk.
//! 6. Only then is the answer returned (gRPC: sent; AMQP: acked).
//!
//! If anything in 4 or 5 fails, no answer is given ([`Hold`]): the
//! submitter resubmits (gRPC) or the broker redelivers (AMQP), and the
//! receiving adapter de-duplicates any copy published twice.

pub mod replay;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lhcie_broker::{Destination, Names};
use lhcie_hub_core::{
    AuditOutcome, AuditRecord, Ingress, Outcome, Policy, RejectReason, Rejection, RouteTable,
    Routed, check_acknowledgement, hub_ack, route,
};
use lhcie_model::{AckLevel, AckOutcome, Body, Envelope, ExchangeId, MessageId, OdsCode};
use lhcie_proto::{canonical as pb, hub as hubpb};
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::link::{BrokerLink, Kind, Link, Outgoing, PublishError};
use crate::ops_stats::OpsStats;
use crate::patient_notification::PatientNotification;
use crate::store::Store;
use crate::store::dead_letters::{DeadLetter, DeadLetterState};
use crate::store::trace::{Layer, TraceEvent};

/// Why no answer can be given now. The envelope is not lost: it is held by
/// whoever submitted it (gRPC) or stays on the queue (AMQP).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Hold {
    /// The broker is unreachable or refused a publish.
    #[error("broker unavailable: {0}")]
    Broker(String),
    /// The store could not make the decision durable.
    #[error("store unavailable: {0}")]
    Store(String),
    /// The hub is shutting down.
    #[error("the hub is shutting down")]
    ShuttingDown,
}

/// The header naming the recipients a copy is for.
pub const RECIPIENTS_HEADER: &str = "lhcie-recipients";

/// The recipients a copy's [`RECIPIENTS_HEADER`] names (comma-separated
/// ODS codes).
pub fn recipients_in(header: &str) -> Vec<String> {
    header
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
/// The header naming the exchange that submitted an envelope.
pub const SUBMITTED_BY_HEADER: &str = "lhcie-submitted-by";
/// The header carrying when the hub decided (unix nanoseconds), for
/// per-stage latency.
pub const DECIDED_AT_HEADER: &str = "lhcie-decided-at";
/// The header carrying the reason an envelope was dead-lettered.
pub const REJECT_REASON_HEADER: &str = "lhcie-reject-reason";
/// The header carrying the detail of that reason.
pub const REJECT_DETAIL_HEADER: &str = "lhcie-reject-detail";

type Pending = watch::Receiver<Option<Result<hubpb::SubmitResponse, Hold>>>;

/// Routes submitted envelopes. Shared by every ingress path.
pub struct Router {
    table: RouteTable,
    exchanges: HashSet<ExchangeId>,
    policy: Arc<dyn Policy>,
    store: Store,
    link: BrokerLink,
    names: Names,
    max_envelope_bytes: usize,
    in_flight: Mutex<HashMap<Vec<u8>, Pending>>,
    /// Replays and discards, one at a time.
    replaying: tokio::sync::Mutex<()>,
    stats: Arc<OpsStats>,
    shutdown: CancellationToken,
}

impl Router {
    /// A router over a route table and the exchanges of the topology.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        table: RouteTable,
        exchanges: HashSet<ExchangeId>,
        policy: Arc<dyn Policy>,
        store: Store,
        link: BrokerLink,
        names: Names,
        max_envelope_bytes: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            table,
            exchanges,
            policy,
            store,
            link,
            names,
            max_envelope_bytes,
            in_flight: Mutex::new(HashMap::new()),
            replaying: tokio::sync::Mutex::new(()),
            stats: Arc::new(OpsStats::new()),
            shutdown,
        }
    }

    /// Whether `exchange` is in the topology.
    pub fn knows_exchange(&self, exchange: &ExchangeId) -> bool {
        self.exchanges.contains(exchange)
    }

    /// The live statistics the dashboard shows.
    pub fn stats(&self) -> &Arc<OpsStats> {
        &self.stats
    }

    /// The exchanges of the topology.
    pub fn exchanges(&self) -> &HashSet<ExchangeId> {
        &self.exchanges
    }

    /// The route table.
    pub fn table(&self) -> &RouteTable {
        &self.table
    }

    /// The broker link.
    pub fn link(&self) -> &BrokerLink {
        &self.link
    }

    /// The broker names.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Handles one envelope submitted by `submitter`. `bytes` is the
    /// envelope as it arrived; it is what recipients receive.
    pub async fn submit(
        &self,
        wire: pb::Envelope,
        bytes: &[u8],
        submitter: &ExchangeId,
        ingress: Ingress,
    ) -> Result<hubpb::SubmitResponse, Hold> {
        let message_id = wire.message_id.clone();
        if message_id.is_empty() || MessageId::parse(&message_id).is_err() {
            // Without a usable id there is nothing to de-duplicate on;
            // validation below rejects it and the rejection is still audited.
            return self.decide(wire, bytes, submitter, ingress).await;
        }
        let key = dedup_key(submitter, &message_id);
        if let Some(previous) = self
            .store
            .decided(submitter.as_str(), &message_id)
            .map_err(store_hold)?
        {
            return Ok(mark_duplicate(answer_of(&previous)));
        }
        let pending = {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            match in_flight.get(&key) {
                Some(pending) => Err(pending.clone()),
                None => {
                    let (sender, receiver) = watch::channel(None);
                    in_flight.insert(key.clone(), receiver);
                    Ok(InFlight {
                        map: &self.in_flight,
                        key,
                        sender,
                    })
                }
            }
        };
        match pending {
            // Another copy of this message is being routed: its answer is
            // ours, as a duplicate.
            Err(mut first) => {
                let answer = first
                    .wait_for(Option::is_some)
                    .await
                    .map_err(|_| {
                        Hold::Broker("the first copy of this message was abandoned".into())
                    })?
                    .clone()
                    .unwrap_or(Err(Hold::ShuttingDown))?;
                Ok(mark_duplicate(answer))
            }
            Ok(in_flight) => {
                let started = std::time::Instant::now();
                crate::metrics::received(ingress, submitter.as_str());
                let result = self.decide(wire, bytes, submitter, ingress).await;
                if result.is_ok() {
                    crate::metrics::routing_time(ingress, started.elapsed());
                }
                in_flight.finish(result.clone());
                result
            }
        }
    }

    async fn decide(
        &self,
        wire: pb::Envelope,
        bytes: &[u8],
        submitter: &ExchangeId,
        ingress: Ingress,
    ) -> Result<hubpb::SubmitResponse, Hold> {
        let started = std::time::Instant::now();
        let now = OffsetDateTime::now_utc();
        let message_id = wire.message_id.clone();
        let sender_ods = wire.sender.as_ref().map(|s| s.ods_code.clone());
        let envelope = match self.admit(wire, bytes.len(), submitter).await? {
            Ok(envelope) => envelope,
            Err(rejection) => {
                return self
                    .reject(
                        &message_id,
                        sender_ods.as_deref(),
                        bytes,
                        rejection,
                        submitter,
                        ingress,
                        now,
                    )
                    .await;
            }
        };
        let outcome = self.route_holding(&envelope, submitter, now).await?;
        match &outcome {
            Outcome::Rejected(rejection) => {
                self.reject(
                    &message_id,
                    sender_ods.as_deref(),
                    bytes,
                    rejection.clone(),
                    submitter,
                    ingress,
                    now,
                )
                .await
            }
            Outcome::Routed(routed) => {
                let audit =
                    AuditRecord::of_outcome(&envelope, &outcome, submitter.as_str(), ingress, now);
                self.forward(&envelope, routed, &audit, bytes, submitter, now)
                    .await?;
                self.keep_withheld(&envelope, routed, bytes, submitter, now)?;
                self.trace_acknowledgement(&envelope, submitter, now)?;
                self.commit(&audit).await?;
                crate::metrics::routed(submitter.as_str(), envelope.category.as_str(), routed);
                crate::metrics::emergency_overrides(&audit);
                self.stats.routed(
                    submitter.as_str(),
                    started.elapsed(),
                    routed.copies.iter().map(|c| c.exchange.as_str()),
                    routed
                        .denied()
                        .map(|d| d.decision.as_ref().map_or("unknown", |d| d.reason.code())),
                );
                tracing::debug!(
                    message_id = %envelope.message_id,
                    category = %envelope.category,
                    copies = routed.copies.len(),
                    denied = routed.denied().count(),
                    "routed"
                );
                Ok(answer_of(&audit))
            }
        }
    }

    /// For an acknowledgement: whether it answers a message this hub routed
    /// the other way (see [`check_acknowledgement`]). An answer can come
    /// back before the answered message's audit record is written (it is
    /// written just after the broker confirmed the copies): if that message
    /// is still being routed, its outcome is awaited first.
    async fn check_answer(
        &self,
        envelope: &Envelope,
        submitter: &ExchangeId,
    ) -> Result<Option<Rejection>, Hold> {
        let Body::Acknowledgement(ack) = &envelope.body else {
            return Ok(None);
        };
        let refers_to = ack.refers_to.as_str();
        let mut answered = self.store.audit_of_message(refers_to).map_err(store_hold)?;
        if answered.is_empty() {
            for mut pending in self.in_flight_with_id(refers_to) {
                let _ = pending.wait_for(Option::is_some).await;
            }
            answered = self.store.audit_of_message(refers_to).map_err(store_hold)?;
        }
        Ok(check_acknowledgement(envelope, submitter, &answered))
    }

    /// The messages with this id being routed now, from any submitter.
    fn in_flight_with_id(&self, message_id: &str) -> Vec<Pending> {
        let in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight
            .iter()
            .filter(|(key, _)| message_id_of(key) == message_id.as_bytes())
            .map(|(_, pending)| pending.clone())
            .collect()
    }

    /// The envelope, if it may be decided on: within the size limit,
    /// valid, its original about its patient only, and, for an
    /// acknowledgement, answering a message routed the other way.
    async fn admit(
        &self,
        wire: pb::Envelope,
        size: usize,
        submitter: &ExchangeId,
    ) -> Result<Result<Envelope, Rejection>, Hold> {
        if size > self.max_envelope_bytes {
            return Ok(Err(Rejection::new(
                RejectReason::TooLarge,
                format!(
                    "the envelope is {size} bytes; this hub accepts at most {}",
                    self.max_envelope_bytes
                ),
            )));
        }
        let envelope = match Envelope::try_from(wire) {
            Ok(envelope) => envelope,
            Err(error) => return Ok(Err(Rejection::from_validation(&error))),
        };
        let refusal = match crate::original_patient::check(&envelope) {
            Some(rejection) => Some(rejection),
            None => self.check_answer(&envelope, submitter).await?,
        };
        Ok(refusal.map_or(Ok(envelope), Err))
    }

    /// Keeps the copies withheld for a reason that can be put right (see
    /// [`HELD_FOR_REPLAY`]) as dead letters of their destination, in the
    /// same commit as the decision, so an operator can replay them once the
    /// agreement or consent is in place.
    fn keep_withheld(
        &self,
        envelope: &Envelope,
        routed: &Routed,
        bytes: &[u8],
        submitter: &ExchangeId,
        now: OffsetDateTime,
    ) -> Result<(), Hold> {
        for (destination, reason, recipients) in withheld(routed) {
            let letter = DeadLetter {
                id: 0,
                destination: destination.to_string(),
                message_id: envelope.message_id.to_string(),
                submitted_by: submitter.to_string(),
                sender: Some(envelope.sender.ods_code.to_string()),
                category: Some(envelope.category.as_str().to_owned()),
                recipients,
                reason: reason.to_owned(),
                detail: "withheld by the policy; replay once it permits the flow".into(),
                dead_lettered_at: now,
                state: DeadLetterState::Pending,
                last_replay: None,
            };
            let (_, new) = self
                .store
                .add_dead_letter(letter, bytes)
                .map_err(store_hold)?;
            self.store
                .record_event(&TraceEvent::new(
                    envelope.message_id.as_str(),
                    now,
                    Layer::Hub,
                    destination.as_str(),
                    "dead-lettered",
                    reason,
                    "withheld by the policy; kept for replay",
                ))
                .map_err(store_hold)?;
            if new {
                crate::metrics::dead_lettered(
                    destination.as_str(),
                    Some(envelope.category.as_str()),
                    reason,
                );
            }
        }
        Ok(())
    }

    /// An acknowledgement routed back to a sender is also an event in the
    /// acknowledged message's trace.
    fn trace_acknowledgement(
        &self,
        envelope: &Envelope,
        submitter: &ExchangeId,
        now: OffsetDateTime,
    ) -> Result<(), Hold> {
        let Body::Acknowledgement(ack) = &envelope.body else {
            return Ok(());
        };
        let outcome = match ack.outcome {
            AckOutcome::Positive => "positive",
            AckOutcome::Negative => "negative",
        };
        let level = match ack.level {
            AckLevel::Infrastructure => "infrastructure",
            AckLevel::Business => "business",
        };
        let code = ack.code.as_ref().map_or(outcome, |c| c.code.as_str());
        self.store
            .record_event(&TraceEvent::new(
                ack.refers_to.as_str(),
                now,
                Layer::Hub,
                submitter.as_str(),
                "acknowledged",
                code,
                &format!(
                    "{outcome} {level} acknowledgement from {}",
                    envelope.sender.ods_code
                ),
            ))
            .map_err(store_hold)
    }

    /// Asks the routing core, holding while the policy cannot decide.
    async fn route_holding(
        &self,
        envelope: &Envelope,
        submitter: &ExchangeId,
        now: OffsetDateTime,
    ) -> Result<Outcome, Hold> {
        let mut logged = false;
        loop {
            match route(envelope, submitter, &self.table, self.policy.as_ref(), now) {
                Ok(outcome) => return Ok(outcome),
                Err(unavailable) => {
                    if !logged {
                        tracing::warn!(message_id = %envelope.message_id, reason = %unavailable.reason, "holding: the policy cannot decide");
                        logged = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = self.shutdown.cancelled() => return Err(Hold::ShuttingDown),
                    }
                }
            }
        }
    }

    /// Publishes the permitted copies, the negative acknowledgements for
    /// denied recipients and the patient notification the decision obliges
    /// (if any), all at once, and waits for every confirm.
    async fn forward(
        &self,
        envelope: &Envelope,
        routed: &Routed,
        audit: &AuditRecord,
        bytes: &[u8],
        submitter: &ExchangeId,
        now: OffsetDateTime,
    ) -> Result<(), Hold> {
        let link = self.link.current().ok_or_else(|| self.broker_down())?;
        let egress = self.names.egress_exchange();
        let message_id = envelope.message_id.as_str();
        let mut acks = Vec::new();
        if let Some(sender_exchange) = self.table.placement(&envelope.sender.ods_code) {
            for denied in routed.denied() {
                let ack = hub_ack::not_permitted(envelope, &denied.recipient, now);
                acks.push((
                    sender_exchange.exchange.clone(),
                    ack.message_id.to_string(),
                    lhcie_proto::encode_envelope(&ack),
                ));
            }
        }
        let copies = routed.copies.iter().map(|copy| {
            let recipients: Vec<&str> = copy.recipients.iter().map(OdsCode::as_str).collect();
            link.publisher.publish(Outgoing {
                kind: Kind::Envelope,
                exchange: &egress,
                routing_key: copy.exchange.as_str(),
                body: bytes,
                message_id,
                headers: vec![
                    (RECIPIENTS_HEADER, recipients.join(",")),
                    (SUBMITTED_BY_HEADER, submitter.to_string()),
                    (DECIDED_AT_HEADER, now.unix_timestamp_nanos().to_string()),
                ],
            })
        });
        let ack_publishes = acks.iter().map(|(exchange, id, body)| {
            link.publisher.publish(Outgoing {
                kind: Kind::Envelope,
                exchange: &egress,
                routing_key: exchange.as_str(),
                body,
                message_id: id,
                headers: vec![(RECIPIENTS_HEADER, envelope.sender.ods_code.to_string())],
            })
        });
        let notification = PatientNotification::of(audit).map(|n| n.to_json());
        let notify = notification
            .as_deref()
            .map(|body| self.publish_notification(&link, message_id, body));
        let results = futures::future::join3(
            futures::future::join_all(copies),
            futures::future::join_all(ack_publishes),
            futures::future::OptionFuture::from(notify),
        )
        .await;
        if let Some(error) = results
            .0
            .into_iter()
            .chain(results.1)
            .chain(results.2)
            .find_map(Result::err)
        {
            link.fail(&error.0).await;
            return Err(Hold::Broker(error.0));
        }
        Ok(())
    }

    /// Publishes a patient notification (never logged: it names the
    /// patient) to the patient-notification service's queue.
    async fn publish_notification(
        &self,
        link: &Link,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), PublishError> {
        link.publisher
            .publish(Outgoing {
                kind: Kind::PatientNotification,
                exchange: &self.names.patient_notifications_exchange(),
                routing_key: "",
                body,
                message_id,
                headers: vec![],
            })
            .await
    }

    /// Rejects: over AMQP the envelope is dead-lettered with the reason and
    /// the sender is sent a negative acknowledgement (there is no reply
    /// channel); over gRPC the answer itself tells the sender.
    #[allow(clippy::too_many_arguments)]
    async fn reject(
        &self,
        message_id: &str,
        sender_ods: Option<&str>,
        bytes: &[u8],
        rejection: Rejection,
        submitter: &ExchangeId,
        ingress: Ingress,
        now: OffsetDateTime,
    ) -> Result<hubpb::SubmitResponse, Hold> {
        if ingress == Ingress::Amqp {
            self.dead_letter(
                bytes,
                message_id,
                submitter.as_str(),
                rejection.reason.code(),
                &rejection.detail,
            )
            .await?;
            if let (Ok(id), Some(Ok(sender))) =
                (MessageId::parse(message_id), sender_ods.map(OdsCode::parse))
            {
                let ack = hub_ack::rejected(&id, &sender, &rejection, now);
                let body = lhcie_proto::encode_envelope(&ack);
                let link = self.link.current().ok_or_else(|| self.broker_down())?;
                link.publisher
                    .publish(Outgoing {
                        kind: Kind::Envelope,
                        exchange: &self.names.egress_exchange(),
                        routing_key: submitter.as_str(),
                        body: &body,
                        message_id: ack.message_id.as_str(),
                        headers: vec![(RECIPIENTS_HEADER, sender.to_string())],
                    })
                    .await
                    .map_err(|e| Hold::Broker(e.0))?;
            }
        }
        let audit = AuditRecord::of_rejection(
            message_id,
            sender_ods,
            &rejection,
            submitter.as_str(),
            ingress,
            now,
        );
        self.commit(&audit).await?;
        crate::metrics::rejected(submitter.as_str(), rejection.reason.code());
        self.stats.rejected(
            submitter.as_str(),
            rejection.reason.code(),
            (OffsetDateTime::now_utc() - now).unsigned_abs(),
        );
        tracing::info!(message_id, reason = rejection.reason.code(), submitter = %submitter, "rejected");
        Ok(answer_of(&audit))
    }

    /// Publishes `bytes` to the ingress dead-letter queue with the reason.
    pub async fn dead_letter(
        &self,
        bytes: &[u8],
        message_id: &str,
        submitter: &str,
        reason: &str,
        detail: &str,
    ) -> Result<(), Hold> {
        let link = self.link.current().ok_or_else(|| self.broker_down())?;
        link.publisher
            .publish(Outgoing {
                kind: Kind::Envelope,
                exchange: &self.names.dead_letter_exchange(&Destination::Ingress),
                routing_key: "",
                body: bytes,
                message_id,
                headers: vec![
                    (REJECT_REASON_HEADER, reason.to_owned()),
                    (REJECT_DETAIL_HEADER, detail.to_owned()),
                    (SUBMITTED_BY_HEADER, submitter.to_owned()),
                ],
            })
            .await
            .map_err(|e| Hold::Broker(e.0))
    }

    async fn commit(&self, audit: &AuditRecord) -> Result<(), Hold> {
        self.store.record(audit).map_err(store_hold)?;
        self.store.durable().await.map_err(store_hold)
    }

    fn broker_down(&self) -> Hold {
        Hold::Broker(
            self.link
                .down_reason()
                .unwrap_or_else(|| "not connected".into()),
        )
    }
}

/// Policy reasons for which a withheld copy is kept as a dead letter for
/// replay: things information governance can put right (an agreement to be
/// signed, consent to be recorded). A patient's refusal is final and is not
/// kept.
pub const HELD_FOR_REPLAY: [&str; 2] = ["no-agreement", "no-recorded-consent"];

/// The denied recipients kept for replay, grouped by destination exchange
/// and reason.
pub fn withheld(routed: &Routed) -> Vec<(ExchangeId, &'static str, Vec<String>)> {
    let mut groups: Vec<(ExchangeId, &'static str, Vec<String>)> = Vec::new();
    for denied in routed.denied() {
        let Some(reason) = denied.decision.as_ref().map(|d| d.reason.code()) else {
            continue;
        };
        if !HELD_FOR_REPLAY.contains(&reason) {
            continue;
        }
        match groups
            .iter_mut()
            .find(|(exchange, r, _)| *exchange == denied.exchange && *r == reason)
        {
            Some((_, _, recipients)) => recipients.push(denied.recipient.to_string()),
            None => groups.push((
                denied.exchange.clone(),
                reason,
                vec![denied.recipient.to_string()],
            )),
        }
    }
    groups
}

fn store_hold(error: crate::store::StoreError) -> Hold {
    Hold::Store(error.to_string())
}

fn dedup_key(submitter: &ExchangeId, message_id: &str) -> Vec<u8> {
    let mut key = submitter.as_str().as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(message_id.as_bytes());
    key
}

/// The message id of a [`dedup_key`].
fn message_id_of(key: &[u8]) -> &[u8] {
    key.iter()
        .position(|b| *b == 0)
        .map_or(key, |at| &key[at + 1..])
}

/// A message id being routed. Finishing it hands its answer to any copy
/// waiting on it; dropping it unfinished (the submitter went away and the
/// routing future with it) still removes it, and waiting copies are told
/// to try again, so no entry outlives its routing.
struct InFlight<'a> {
    map: &'a Mutex<HashMap<Vec<u8>, Pending>>,
    key: Vec<u8>,
    sender: watch::Sender<Option<Result<hubpb::SubmitResponse, Hold>>>,
}

impl InFlight<'_> {
    fn finish(self, result: Result<hubpb::SubmitResponse, Hold>) {
        self.sender.send_replace(Some(result));
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.sender.borrow().is_none() {
            self.sender.send_replace(Some(Err(Hold::Broker(
                "the first copy of this message was abandoned".into(),
            ))));
        }
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

/// The answer to the submitter, derived from the audit record of the
/// decision. For a routed envelope: each recipient forwarded or not
/// permitted, never why (the reason can reveal the patient's choices).
fn answer_of(audit: &AuditRecord) -> hubpb::SubmitResponse {
    let outcome = match &audit.outcome {
        AuditOutcome::Routed { recipients } => {
            hubpb::submit_response::Outcome::Accepted(hubpb::Accepted {
                duplicate: false,
                recipients: recipients
                    .iter()
                    .map(|r| hubpb::RecipientOutcome {
                        ods_code: r.recipient.clone(),
                        exchange_id: r.exchange.clone(),
                        disposition: if r.decision == "forwarded" {
                            hubpb::Disposition::Forwarded
                        } else {
                            hubpb::Disposition::NotPermitted
                        } as i32,
                    })
                    .collect(),
            })
        }
        AuditOutcome::Rejected { reason, detail } => {
            hubpb::submit_response::Outcome::Rejected(hubpb::Rejected {
                reason: RejectReason::from_code(reason)
                    .map_or(hubpb::RejectReason::Unspecified, reject_reason)
                    as i32,
                detail: detail.clone(),
            })
        }
    };
    hubpb::SubmitResponse {
        message_id: audit.message_id.clone(),
        outcome: Some(outcome),
    }
}

fn mark_duplicate(mut answer: hubpb::SubmitResponse) -> hubpb::SubmitResponse {
    if let Some(hubpb::submit_response::Outcome::Accepted(accepted)) = &mut answer.outcome {
        accepted.duplicate = true;
    }
    answer
}

/// The wire form of a rejection reason.
pub fn reject_reason(reason: RejectReason) -> hubpb::RejectReason {
    match reason {
        RejectReason::InvalidEnvelope => hubpb::RejectReason::InvalidEnvelope,
        RejectReason::UnknownRecipient => hubpb::RejectReason::UnknownRecipient,
        RejectReason::UnknownCategory => hubpb::RejectReason::UnknownCategory,
        RejectReason::InvalidNhsNumber => hubpb::RejectReason::InvalidNhsNumber,
        RejectReason::SenderNotAuthorised => hubpb::RejectReason::SenderNotAuthorised,
        RejectReason::TooLarge => hubpb::RejectReason::TooLarge,
    }
}
