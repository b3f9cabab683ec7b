//! Takes what the broker dead-lettered (the ingress queue's and every
//! exchange's dead-letter queue) into the hub's store, where operators list
//! and replay it. A message is acked on its dead-letter queue only once it
//! is durably in the store; if the hub stops in between, the broker gives
//! it again and the store keeps it once (one pending dead letter per
//! destination and message id).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lhcie_broker::Destination;
use lhcie_proto::canonical as pb;
use prost::Message;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::grpc::receive::header;
use crate::link::Link;
use crate::router::{
    RECIPIENTS_HEADER, REJECT_DETAIL_HEADER, REJECT_REASON_HEADER, Router, SUBMITTED_BY_HEADER,
};
use crate::store::dead_letters::{DeadLetter, DeadLetterState, INGRESS_DESTINATION};
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
    let letter = describe(destination, &delivery);
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

/// What the broker and the hub said about a dead letter.
fn describe(destination: &str, delivery: &Delivery) -> DeadLetter {
    let properties = &delivery.properties;
    let envelope = pb::Envelope::decode(delivery.data.as_slice()).ok();
    let message_id = properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .or_else(|| envelope.as_ref().map(|e| e.message_id.clone()))
        .unwrap_or_default();
    let submitted_by = header(properties, SUBMITTED_BY_HEADER)
        .map(str::to_owned)
        .or_else(|| properties.user_id().as_ref().map(|u| u.to_string()))
        .unwrap_or_default();
    let reason = header(properties, REJECT_REASON_HEADER)
        .or_else(|| header(properties, "x-first-death-reason"))
        .unwrap_or("dead-lettered")
        .to_owned();
    let detail = header(properties, REJECT_DETAIL_HEADER)
        .map(str::to_owned)
        .unwrap_or_else(|| match reason.as_str() {
            "delivery_limit" => "delivered too many times without being acknowledged".into(),
            "rejected" => "refused by its consumer".into(),
            "expired" => "expired on its queue".into(),
            other => format!("dead-lettered by the broker ({other})"),
        });
    let recipients = header(properties, RECIPIENTS_HEADER)
        .map(|r| {
            r.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let category = envelope
        .clone()
        .and_then(|e| lhcie_model::Envelope::try_from(e).ok())
        .map(|e| e.category.as_str().to_owned());
    DeadLetter {
        id: 0,
        destination: destination.to_owned(),
        message_id,
        // Over AMQP the submitter is the broker user `<prefix>-<exchange>`.
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
