//! Consuming envelopes that adapters publish to the ingress queue.
//!
//! Several hub instances may consume the same queue (competing consumers).
//! The submitter is the broker user that published the message, which the
//! broker itself validates (the `user-id` property must equal the
//! publishing user); adapters' users are named `<prefix>-<exchange-id>`.
//! A message is acked only when its outcome is durable: forwarded and
//! confirmed, or dead-lettered with its reason. While the outcome cannot be
//! made durable the message is not acked, so it stays with the broker.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::FieldTable;
use lhcie_hub_core::Ingress;
use lhcie_model::ExchangeId;
use lhcie_proto::canonical as pb;
use prost::Message;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::ack_coalescer::AckCoalescer;
use crate::link::Link;
use crate::router::{Hold, Router};

/// Consumes the ingress queue until `shutdown`, following the broker link
/// through reconnections. `consuming` says whether a consumer is active
/// (readiness).
pub async fn run(
    router: Arc<Router>,
    prefetch: u16,
    consuming: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    loop {
        let Some(link) = router.link().wait_up(&shutdown).await else {
            return;
        };
        match consume(&router, &link, prefetch, &consuming, &shutdown).await {
            Ok(()) => return,
            Err(reason) => {
                consuming.send_replace(false);
                tracing::warn!(%reason, "ingress consumer stopped; starting again when the broker is back");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn consume(
    router: &Arc<Router>,
    link: &Link,
    prefetch: u16,
    consuming: &watch::Sender<bool>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let channel = link
        .guard("opening a channel", link.connection.create_channel())
        .await?;
    link.guard(
        "setting the prefetch",
        channel.basic_qos(prefetch, BasicQosOptions::default()),
    )
    .await?;
    let tag = format!("hub-ingress-{}", std::process::id());
    let queue = router.names().ingress_queue();
    let mut consumer = link
        .guard(
            "consuming the ingress queue",
            channel.basic_consume(
                queue.as_str().into(),
                tag.as_str().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?;
    consuming.send_replace(true);
    tracing::info!(prefetch, "consuming the ingress queue");
    let outcome = receive(
        router,
        link,
        &channel,
        &mut consumer,
        &tag,
        &queue,
        consuming,
        shutdown,
    )
    .await;
    consuming.send_replace(false);
    // Closing the channel returns every unacknowledged delivery to the
    // queue at once (on shutdown, after everything in hand is settled).
    let _ = link
        .guard(
            "closing the channel",
            channel.close(200, "ingress consumer stopping".into()),
        )
        .await;
    outcome
}

/// The consumer loop. Every broker operation in it is guarded (timeout,
/// broken link), so it cannot hang on a dead connection, and an idle
/// consumer checks it is still being fed (see `lhcie_broker::liveness`).
#[allow(clippy::too_many_arguments)]
async fn receive(
    router: &Arc<Router>,
    link: &Link,
    channel: &lapin::Channel,
    consumer: &mut lapin::Consumer,
    tag: &str,
    queue: &str,
    consuming: &watch::Sender<bool>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    // Handled deliveries come back here to be acknowledged, many at a time
    // where their tags are contiguous (see `AckCoalescer`).
    let (finished, mut finished_tags) = mpsc::unbounded_channel::<(u64, Settle)>();
    let mut coalescer = AckCoalescer::new();
    let mut in_hand = 0usize;
    let mut stopping = false;
    let mut liveness = tokio::time::interval(lhcie_broker::liveness::STALL_AFTER);
    let mut last_delivery = tokio::time::Instant::now();
    loop {
        if stopping && in_hand == 0 {
            return Ok(());
        }
        tokio::select! {
            _ = link.broken.cancelled(), if !stopping => {
                return Err("the broker connection broke".into());
            }
            _ = liveness.tick(), if !stopping => {
                if in_hand == 0
                    && last_delivery.elapsed() >= lhcie_broker::liveness::STALL_AFTER
                    && lhcie_broker::liveness::stalled(&link.connection, queue).await
                {
                    return Err("envelopes are waiting but none arrived; subscribing again".into());
                }
                if in_hand > 0 && last_delivery.elapsed() >= lhcie_broker::liveness::STALL_AFTER * 6 {
                    tracing::warn!(in_hand, "envelopes in hand for over 30 s");
                }
            }
            delivery = consumer.next(), if !stopping => match delivery {
                Some(Ok(delivery)) => {
                    in_hand += 1;
                    last_delivery = tokio::time::Instant::now();
                    let router = router.clone();
                    let finished = finished.clone();
                    tokio::spawn(async move {
                        let tag = delivery.delivery_tag;
                        let settle = process(&router, delivery).await;
                        let _ = finished.send((tag, settle));
                    });
                }
                Some(Err(error)) => return Err(format!("consumer failed: {error}")),
                None => return Err("the broker cancelled the consumer".into()),
            },
            Some((tag, settle)) = finished_tags.recv() => {
                in_hand -= 1;
                match settle {
                    Settle::Ack => {
                        if let Some(up_to) = coalescer.finish(tag) {
                            link.guard("ack", channel.basic_ack(up_to, BasicAckOptions { multiple: true }))
                                .await?;
                        }
                    }
                    Settle::Requeue => {
                        // Rare (the store failed): settle it alone, and
                        // count it as done for the contiguous prefix.
                        let nack = BasicNackOptions { requeue: true, multiple: false };
                        link.guard("nack", channel.basic_nack(tag, nack)).await?;
                        if let Some(up_to) = coalescer.finish(tag) {
                            link.guard("ack", channel.basic_ack(up_to, BasicAckOptions { multiple: true }))
                                .await?;
                        }
                    }
                    // Left to the broker: it comes back when the channel
                    // closes, which the caller does now.
                    Settle::Leave => return Err("the broker link failed while routing".into()),
                }
            }
            _ = shutdown.cancelled(), if !stopping => {
                // Stop taking new envelopes, finish those in hand, then go.
                let cancel = channel.basic_cancel(tag.into(), BasicCancelOptions::default());
                let _ = link.guard("cancelling the consumer", cancel).await;
                consuming.send_replace(false);
                stopping = true;
            }
        }
    }
}

/// What to do with a handled delivery.
enum Settle {
    /// Its outcome is durable.
    Ack,
    /// Return it to the queue.
    Requeue,
    /// Leave it unacknowledged (the channel is going down).
    Leave,
}

/// Handles one envelope from the ingress queue; says how to settle it.
async fn process(router: &Router, delivery: Delivery) -> Settle {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let Some(submitter) = submitter(router, &delivery) else {
        tracing::warn!(%message_id, "envelope from an unidentified publisher; dead-lettering it");
        return dead_letter(
            router,
            &delivery,
            &message_id,
            None,
            "unidentified-publisher",
            "the user-id property is missing or is not the broker user of an exchange in the topology",
        )
        .await;
    };
    let wire = match pb::Envelope::decode(delivery.data.as_slice()) {
        Ok(wire) => wire,
        Err(error) => {
            tracing::warn!(%message_id, %submitter, "not a canonical envelope; dead-lettering it");
            let detail = format!("the body is not a protobuf lhcie.canonical.v1.Envelope: {error}");
            return dead_letter(
                router,
                &delivery,
                &message_id,
                Some(&submitter),
                "not-an-envelope",
                &detail,
            )
            .await;
        }
    };
    match router
        .submit(wire, &delivery.data, &submitter, Ingress::Amqp)
        .await
    {
        Ok(_) => Settle::Ack,
        Err(Hold::Store(reason)) => {
            tracing::error!(%message_id, %reason, "cannot record the outcome; returning the envelope to the queue");
            tokio::time::sleep(Duration::from_secs(1)).await;
            Settle::Requeue
        }
        // The channel is closing with the connection or the hub; the broker
        // keeps the envelope for the next consumer.
        Err(Hold::Broker(_) | Hold::ShuttingDown) => Settle::Leave,
    }
}

fn submitter(router: &Router, delivery: &Delivery) -> Option<ExchangeId> {
    let user = delivery.properties.user_id().as_ref()?.to_string();
    let exchange = router.names().exchange_of_user(&user)?;
    router.knows_exchange(&exchange).then_some(exchange)
}

/// Dead-letters with the reason; the delivery can then be acked.
async fn dead_letter(
    router: &Router,
    delivery: &Delivery,
    message_id: &str,
    submitter: Option<&ExchangeId>,
    reason: &str,
    detail: &str,
) -> Settle {
    let submitted_by = submitter
        .map(ExchangeId::to_string)
        .unwrap_or_else(|| "unknown".into());
    match router
        .dead_letter(&delivery.data, message_id, &submitted_by, reason, detail)
        .await
    {
        Ok(()) => Settle::Ack,
        Err(hold) => {
            tracing::warn!(%message_id, %hold, "cannot dead-letter now; the broker will deliver it again");
            Settle::Leave
        }
    }
}
