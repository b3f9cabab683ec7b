//! Takes what the broker dead-lettered (the ingress queue's and every
//! exchange's dead-letter queue) into the hub's store, where operators list
//! and replay it. A message is acked on its dead-letter queue only once it
//! is durably in the store; if the hub stops in between, the broker gives
//! it again and the store keeps it once (one pending dead letter per
//! destination and message id).
//!
//! Identity comes from the transport: an ingress letter's submitter is the
//! broker-validated `user-id`, or the hub's own header on what the hub
//! dead-lettered itself, never a header the publisher set
//! (`submitter_of`); without either it is "identity unverified" and
//! cannot be replayed. Reasons are mapped to the known set.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lhcie_broker::{Destination, Names};
use lhcie_model::ExchangeId;
use lhcie_proto::canonical as pb;
use prost::Message;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::grpc::receive::header;
use crate::link::Link;
use crate::router::{
    RECIPIENTS_HEADER, REJECT_DETAIL_HEADER, REJECT_REASON_HEADER, Router, SUBMITTED_BY_HEADER,
};
use crate::store::dead_letters::{
    DeadLetter, DeadLetterState, INGRESS_DESTINATION, UNVERIFIED_SUBMITTER,
};
use crate::store::trace::{Layer, TraceEvent};

/// Collects dead letters until `shutdown`, following the broker link
/// through reconnections.
pub async fn run(router: Arc<Router>, shutdown: CancellationToken) {
    loop {
        let Some(link) = router.link().wait_up(&shutdown).await else {
            return;
        };
        match collect(&router, &link, &shutdown).await {
            Ok(()) => return,
            Err(reason) => {
                tracing::warn!(%reason, "dead-letter collector stopped; starting again when the broker is back");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

fn destinations(router: &Router) -> Vec<Destination> {
    let mut exchanges: Vec<_> = router.exchanges().iter().cloned().collect();
    exchanges.sort();
    std::iter::once(Destination::Ingress)
        .chain(exchanges.into_iter().map(Destination::Exchange))
        .collect()
}

async fn collect(router: &Router, link: &Link, shutdown: &CancellationToken) -> Result<(), String> {
    let channel = link
        .guard("opening a channel", link.connection.create_channel())
        .await?;
    link.guard(
        "setting the prefetch",
        channel.basic_qos(50, BasicQosOptions::default()),
    )
    .await?;
    let mut consumers = Vec::new();
    for destination in destinations(router) {
        let queue = router.names().dead_letter_queue(&destination);
        let tag = format!("hub-dead-letters-{}-{queue}", std::process::id());
        let consumer = link
            .guard(
                "consuming a dead-letter queue",
                channel.basic_consume(
                    queue.as_str().into(),
                    tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await?;
        let destination = match &destination {
            Destination::Ingress => INGRESS_DESTINATION.to_owned(),
            Destination::Exchange(id) => id.to_string(),
        };
        consumers.push(consumer.map(move |delivery| (destination.clone(), delivery)));
    }
    let mut deliveries = futures::stream::select_all(consumers);
    loop {
        tokio::select! {
            _ = link.broken.cancelled() => return Err("the broker connection broke".into()),
            _ = shutdown.cancelled() => {
                let _ = channel.close(200, "stopping".into()).await;
                return Ok(());
            }
            next = deliveries.next() => match next {
                Some((destination, Ok(delivery))) => keep(router, link, &destination, delivery).await?,
                Some((_, Err(error))) => return Err(format!("consumer failed: {error}")),
                None => return Err("the broker cancelled the consumers".into()),
            }
        }
    }
}

/// Stores one dead letter durably, then acks it.
async fn keep(
    router: &Router,
    link: &Link,
    destination: &str,
    delivery: Delivery,
) -> Result<(), String> {
    let letter = describe(
        destination,
        &delivery.properties,
        &delivery.data,
        router.names(),
        router.exchanges(),
    );
    let store = router.store();
    loop {
        let stored = store
            .add_dead_letter(letter.clone(), &delivery.data)
            .and_then(|(_, new)| {
                store.record_event(&TraceEvent::new(
                    &letter.message_id,
                    letter.dead_lettered_at,
                    Layer::Broker,
                    destination,
                    "dead-lettered",
                    &letter.reason,
                    &letter.detail,
                ))?;
                Ok(new)
            });
        let durable = match stored {
            Ok(new) => store.durable().await.map(|()| new),
            Err(error) => Err(error),
        };
        match durable {
            Ok(new) => {
                if new {
                    crate::metrics::dead_lettered(
                        destination,
                        letter.category.as_deref(),
                        &letter.reason,
                    );
                }
                tracing::warn!(message_id = %letter.message_id, destination, reason = %letter.reason, "dead letter kept for an operator");
                return link
                    .guard("ack", delivery.acker.ack(BasicAckOptions::default()))
                    .await
                    .map(drop);
            }
            Err(error) => {
                tracing::error!(%error, "cannot keep a dead letter; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Whether the broker dead-lettered this message from a queue (it then
/// carries the broker's `x-death` record), as opposed to the hub having
/// published it to the dead-letter exchange itself. Only the hub may
/// publish to a dead-letter exchange (adapters' broker users may write to
/// the ingress exchange only), so the `lhcie-*` headers of a message
/// without `x-death` are the hub's; on a message the broker dead-lettered
/// they are whatever its publisher set.
fn broker_dead_lettered(properties: &lapin::BasicProperties) -> bool {
    properties.headers().as_ref().is_some_and(|headers| {
        let headers = headers.inner();
        ["x-death", "x-first-death-reason", "x-first-death-queue"]
            .iter()
            .any(|name| headers.contains_key(*name))
    })
}

/// The submitting exchange of a dead letter, from the transport only; for
/// an ingress letter [`UNVERIFIED_SUBMITTER`] when there is none.
///
/// - A broker-validated `user-id` of an exchange in the topology names it
///   (RabbitMQ refuses a publish whose `user-id` is not the connection's
///   user); a `user-id` that is no exchange's leaves it unverified.
/// - Without one, the `lhcie-submitted-by` header counts only if the hub
///   set it: on what it published itself (no `x-death`) — an envelope it
///   dead-lettered, having taken the submitter from the `user-id`, or a
///   copy it forwarded. A header on anything the broker dead-lettered from
///   the ingress queue was set by the publisher, and is ignored.
fn submitter_of(
    destination: &str,
    properties: &lapin::BasicProperties,
    names: &Names,
    exchanges: &HashSet<ExchangeId>,
) -> String {
    let known = |id: ExchangeId| exchanges.contains(&id).then(|| id.to_string());
    if let Some(user) = properties.user_id().as_ref() {
        return names
            .exchange_of_user(user.as_str())
            .and_then(known)
            .unwrap_or_else(|| UNVERIFIED_SUBMITTER.to_owned());
    }
    let hub_set = destination != INGRESS_DESTINATION || !broker_dead_lettered(properties);
    hub_set
        .then(|| header(properties, SUBMITTED_BY_HEADER))
        .flatten()
        .and_then(|id| ExchangeId::parse(id).ok())
        .and_then(known)
        .unwrap_or_else(|| UNVERIFIED_SUBMITTER.to_owned())
}

/// What the broker and the hub said about a dead letter. The reason,
/// detail and recipients are the hub's headers on what the hub published
/// (anything on an egress queue, and what it dead-lettered itself); on
/// what the broker dead-lettered from the ingress queue, the broker's
/// reason (a publisher's headers are not believed).
fn describe(
    destination: &str,
    properties: &lapin::BasicProperties,
    data: &[u8],
    names: &Names,
    exchanges: &HashSet<ExchangeId>,
) -> DeadLetter {
    let envelope = pb::Envelope::decode(data).ok();
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .or_else(|| envelope.as_ref().map(|e| e.message_id.clone()))
        .unwrap_or_default();
    let submitted_by = submitter_of(destination, properties, names, exchanges);
    // Only the hub publishes to the egress exchange, so an egress letter's
    // headers are the hub's even after the broker dead-lettered it.
    let hub_set = destination != INGRESS_DESTINATION || !broker_dead_lettered(properties);
    let hub_header = |name| hub_set.then(|| header(properties, name)).flatten();
    let reason = hub_header(REJECT_REASON_HEADER)
        .or_else(|| header(properties, "x-first-death-reason"))
        .unwrap_or("dead-lettered");
    // Stored and shown: only a reason of the known set, never free text.
    let reason = crate::metrics::dead_letter_reason_label(reason).to_owned();
    let mut detail = hub_header(REJECT_DETAIL_HEADER)
        .map(str::to_owned)
        .unwrap_or_else(|| match reason.as_str() {
            "delivery_limit" => "delivered too many times without being acknowledged".into(),
            "rejected" => "refused by its consumer".into(),
            "expired" => "expired on its queue".into(),
            other => format!("dead-lettered by the broker ({other})"),
        });
    if destination == INGRESS_DESTINATION && submitted_by == UNVERIFIED_SUBMITTER {
        detail.push_str(
            "; identity unverified: no broker-validated user-id of an exchange, so it cannot be replayed as any exchange",
        );
    }
    let recipients = hub_header(RECIPIENTS_HEADER)
        .map(crate::router::recipients_in)
        .unwrap_or_default();
    let category = envelope
        .clone()
        .and_then(|e| lhcie_model::Envelope::try_from(e).ok())
        .map(|e| e.category.as_str().to_owned());
    DeadLetter {
        id: 0,
        destination: destination.to_owned(),
        message_id,
        submitted_by,
        sender: envelope
            .as_ref()
            .and_then(|e| e.sender.as_ref().map(|s| s.ods_code.clone())),
        category,
        recipients,
        reason,
        detail,
        dead_lettered_at: OffsetDateTime::now_utc(),
        state: DeadLetterState::Pending,
        last_replay: None,
    }
}

#[cfg(test)]
mod tests {
    use lapin::BasicProperties;
    use lapin::types::{AMQPValue, FieldArray, FieldTable};

    use super::*;

    fn names() -> Names {
        Names::new("lhcie")
    }

    fn exchanges() -> HashSet<ExchangeId> {
        ["nwl-imperial", "ncl-royal-free"]
            .iter()
            .map(|e| e.parse().unwrap())
            .collect()
    }

    fn with_headers(pairs: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut headers = FieldTable::default();
        for (name, value) in pairs {
            headers.insert((*name).into(), value.clone());
        }
        BasicProperties::default()
            .with_message_id("m1".into())
            .with_headers(headers)
    }

    fn text(value: &str) -> AMQPValue {
        AMQPValue::LongString(value.into())
    }

    fn x_death() -> (&'static str, AMQPValue) {
        ("x-death", AMQPValue::FieldArray(FieldArray::default()))
    }

    fn letter(destination: &str, properties: &BasicProperties) -> DeadLetter {
        describe(
            destination,
            properties,
            b"not an envelope",
            &names(),
            &exchanges(),
        )
    }

    #[test]
    fn an_ingress_letter_the_broker_dead_lettered_is_attributed_to_its_broker_user_not_its_header()
    {
        let forged = with_headers(&[
            (SUBMITTED_BY_HEADER, text("ncl-royal-free")),
            (REJECT_REASON_HEADER, text("no-agreement")),
            (REJECT_DETAIL_HEADER, text("patient 9434765919 said so")),
            ("x-first-death-reason", text("expired")),
            x_death(),
        ])
        .with_user_id("lhcie-nwl-imperial".into());
        let dead = letter(INGRESS_DESTINATION, &forged);
        assert_eq!(dead.submitted_by, "nwl-imperial");
        assert!(dead.identity_verified());
        assert_eq!(dead.reason, "expired");
        assert!(!dead.detail.contains("9434765919"), "{}", dead.detail);
    }

    #[test]
    fn without_a_validated_user_a_forged_header_leaves_the_identity_unverified() {
        let forged = with_headers(&[
            (SUBMITTED_BY_HEADER, text("ncl-royal-free")),
            ("x-first-death-reason", text("delivery_limit")),
            x_death(),
        ]);
        let dead = letter(INGRESS_DESTINATION, &forged);
        assert_eq!(dead.submitted_by, UNVERIFIED_SUBMITTER);
        assert!(!dead.identity_verified());
        assert!(
            dead.detail.contains("identity unverified"),
            "{}",
            dead.detail
        );
        // A user-id that is no exchange's broker user: unverified too.
        let stranger = with_headers(&[x_death()]).with_user_id("guest".into());
        assert!(!letter(INGRESS_DESTINATION, &stranger).identity_verified());
        let unknown = with_headers(&[x_death()]).with_user_id("lhcie-sel-kings".into());
        assert!(!letter(INGRESS_DESTINATION, &unknown).identity_verified());
    }

    #[test]
    fn what_the_hub_dead_lettered_itself_keeps_its_own_headers() {
        // The hub's rejection over AMQP: published by the hub to the
        // dead-letter exchange, no x-death.
        let rejected = with_headers(&[
            (SUBMITTED_BY_HEADER, text("nwl-imperial")),
            (REJECT_REASON_HEADER, text("invalid-nhs-number")),
            (
                REJECT_DETAIL_HEADER,
                text("patient.nhs_number: check digit"),
            ),
        ]);
        let dead = letter(INGRESS_DESTINATION, &rejected);
        assert_eq!(dead.submitted_by, "nwl-imperial");
        assert_eq!(dead.reason, "invalid-nhs-number");
        assert_eq!(dead.detail, "patient.nhs_number: check digit");
        // The hub dead-lettered an unidentified publisher's envelope.
        let unidentified = with_headers(&[
            (SUBMITTED_BY_HEADER, text("unknown")),
            (REJECT_REASON_HEADER, text("unidentified-publisher")),
        ]);
        assert!(!letter(INGRESS_DESTINATION, &unidentified).identity_verified());
        // A copy the receiving adapter refused: the hub's headers.
        let copy = with_headers(&[
            (SUBMITTED_BY_HEADER, text("nwl-imperial")),
            (RECIPIENTS_HEADER, text("RAL")),
            ("x-first-death-reason", text("rejected")),
            x_death(),
        ]);
        let dead = letter("ncl-royal-free", &copy);
        assert_eq!(dead.submitted_by, "nwl-imperial");
        assert_eq!(dead.reason, "rejected");
        assert_eq!(dead.recipients, ["RAL"]);
    }

    #[test]
    fn a_reason_outside_the_known_set_is_other() {
        let odd = with_headers(&[(REJECT_REASON_HEADER, text("Mrs Smith's consent"))]);
        assert_eq!(letter("ncl-royal-free", &odd).reason, "other");
    }
}
