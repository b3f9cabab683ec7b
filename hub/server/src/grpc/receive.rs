//! The `Receive` stream: an exchange's deliveries, each acknowledged
//! explicitly by the adapter.
//!
//! The hub consumes the exchange's egress queue on a channel of its own
//! with a prefetch of the adapter's `max_in_flight`, and acknowledges to
//! the broker only what the adapter acknowledged. When the stream ends for
//! any reason the channel is closed, and the broker delivers the
//! unacknowledged messages again (marked redelivered).

use std::collections::HashMap;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lhcie_broker::Destination;
use lhcie_model::ExchangeId;
use lhcie_proto::{canonical as pb, hub as hubpb};
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::link::{Link, Outgoing};
use crate::router::{
    DECIDED_AT_HEADER, RECIPIENTS_HEADER, REJECT_DETAIL_HEADER, REJECT_REASON_HEADER, Router,
    SUBMITTED_BY_HEADER,
};

/// Serves one `Receive` stream.
pub async fn serve(
    router: Arc<Router>,
    exchange: ExchangeId,
    mut inbound: Streaming<hubpb::ReceiveRequest>,
    shutdown: CancellationToken,
) -> Result<impl Stream<Item = Result<hubpb::Delivery, Status>>, Status> {
    let subscribe = match inbound.message().await? {
        Some(hubpb::ReceiveRequest {
            request: Some(hubpb::receive_request::Request::Subscribe(subscribe)),
        }) => subscribe,
        _ => {
            return Err(Status::invalid_argument(
                "the first message on Receive must be a Subscribe",
            ));
        }
    };
    let link = router
        .link()
        .current()
        .ok_or_else(|| Status::unavailable("the hub cannot reach the broker"))?;
    let unavailable = |e: lapin::Error| Status::unavailable(format!("broker: {e}"));
    let channel = link
        .connection
        .create_channel()
        .await
        .map_err(unavailable)?;
    let prefetch = subscribe.max_in_flight.clamp(1, u32::from(u16::MAX)) as u16;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(unavailable)?;
    let queue = router.names().egress_queue(&exchange);
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("hub-receive-{exchange}").into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(unavailable)?;
    let (deliveries, stream) = mpsc::channel(usize::from(prefetch));
    tracing::info!(%exchange, prefetch, "adapter receiving over gRPC");
    tokio::spawn(async move {
        let mut pending: HashMap<u64, Delivery> = HashMap::new();
        let mut liveness = tokio::time::interval(lhcie_broker::liveness::STALL_AFTER);
        let mut last_delivery = tokio::time::Instant::now();
        let ending = loop {
            tokio::select! {
                _ = link.broken.cancelled() => {
                    break Some(Status::unavailable("the hub lost the broker; subscribe again"));
                }
                _ = liveness.tick() => {
                    if pending.is_empty()
                        && last_delivery.elapsed() >= lhcie_broker::liveness::STALL_AFTER
                        && lhcie_broker::liveness::stalled(&link.connection, &queue).await
                    {
                        // The adapter reconnects and subscribes again.
                        break Some(Status::unavailable("deliveries are waiting but none arrived; subscribe again"));
                    }
                }
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        last_delivery = tokio::time::Instant::now();
                        let envelope = match pb::Envelope::decode(delivery.data.as_slice()) {
                            Ok(envelope) => envelope,
                            Err(_) => {
                                tracing::error!(%exchange, "undecodable message on an egress queue; dead-lettering it");
                                let reject = delivery.acker.nack(BasicNackOptions { requeue: false, ..Default::default() });
                                let _ = link.guard("dead-lettering", reject).await;
                                continue;
                            }
                        };
                        let recipients = header(&delivery.properties, RECIPIENTS_HEADER)
                            .map(|r| r.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                            .unwrap_or_default();
                        let out = hubpb::Delivery {
                            delivery_id: delivery.delivery_tag,
                            envelope: Some(envelope),
                            redelivered: delivery.redelivered,
                            recipients,
                            decided_at_unix_nanos: header(&delivery.properties, DECIDED_AT_HEADER)
                                .and_then(|at| at.parse().ok())
                                .unwrap_or(0),
                        };
                        pending.insert(delivery.delivery_tag, delivery);
                        if deliveries.send(Ok(out)).await.is_err() {
                            break None;
                        }
                    }
                    Some(Err(error)) => break Some(Status::unavailable(format!("lost the broker: {error}"))),
                    None => break Some(Status::unavailable("the broker ended the delivery stream")),
                },
                request = inbound.message() => match request {
                    Ok(Some(hubpb::ReceiveRequest { request: Some(hubpb::receive_request::Request::Ack(ack)) })) => {
                        match pending.remove(&ack.delivery_id) {
                            Some(delivery) => {
                                if let Err(error) = settle(&router, &link, &exchange, delivery, &ack).await {
                                    tracing::warn!(%exchange, %error, "settling a delivery failed; the broker will deliver it again");
                                    break Some(Status::unavailable("the hub lost the broker; subscribe again"));
                                }
                            }
                            None => tracing::warn!(%exchange, delivery_id = ack.delivery_id, "acknowledgement of an unknown delivery ignored"),
                        }
                    }
                    Ok(Some(_)) => tracing::warn!(%exchange, "unexpected request on Receive ignored"),
                    Ok(None) | Err(_) => break None,
                },
                _ = shutdown.cancelled() => break Some(Status::unavailable("the hub is shutting down")),
            }
        };
        if let Some(status) = ending {
            let _ = deliveries.send(Err(status)).await;
        }
        // Unacknowledged deliveries go back to the queue.
        let _ = link
            .guard(
                "closing the channel",
                channel.close(200, "receive stream ended".into()),
            )
            .await;
        tracing::info!(%exchange, unacknowledged = pending.len(), "receive stream ended");
    });
    Ok(ReceiverStream::new(stream))
}

async fn settle(
    router: &Router,
    link: &Link,
    exchange: &ExchangeId,
    delivery: Delivery,
    ack: &hubpb::DeliveryAck,
) -> Result<(), String> {
    use hubpb::AckDisposition as D;
    match D::try_from(ack.disposition).unwrap_or(D::Unspecified) {
        D::Delivered => link
            .guard("ack", delivery.acker.ack(BasicAckOptions::default()))
            .await
            .map(drop),
        // Counts towards the delivery limit, so a message that can never be
        // delivered ends up dead-lettered rather than retried forever.
        D::Retry | D::Unspecified => {
            let requeue = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            link.guard("nack", delivery.acker.nack(requeue))
                .await
                .map(drop)
        }
        D::Rejected => {
            let reason = if ack.reason.is_empty() {
                "rejected by the adapter"
            } else {
                ack.reason.as_str()
            };
            dead_letter_with_reason(router, link, exchange, delivery, reason).await
        }
    }
}

/// Dead-letters a rejected delivery with the adapter's reason, by
/// republishing it to the exchange's dead-letter exchange and then acking
/// it; if the republish fails, a plain reject still dead-letters it
/// (without the reason).
async fn dead_letter_with_reason(
    router: &Router,
    link: &Link,
    exchange: &ExchangeId,
    delivery: Delivery,
    reason: &str,
) -> Result<(), String> {
    let message_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut headers = vec![
        (REJECT_REASON_HEADER, "rejected-by-recipient".to_owned()),
        (REJECT_DETAIL_HEADER, reason.to_owned()),
    ];
    if let Some(recipients) = header(&delivery.properties, RECIPIENTS_HEADER) {
        headers.push((RECIPIENTS_HEADER, recipients.to_owned()));
    }
    if let Some(submitter) = header(&delivery.properties, SUBMITTED_BY_HEADER) {
        headers.push((SUBMITTED_BY_HEADER, submitter.to_owned()));
    }
    let republished = link
        .publisher
        .publish(Outgoing {
            exchange: &router
                .names()
                .dead_letter_exchange(&Destination::Exchange(exchange.clone())),
            routing_key: "",
            body: &delivery.data,
            message_id: &message_id,
            headers,
        })
        .await
        .is_ok();
    if republished {
        link.guard("ack", delivery.acker.ack(BasicAckOptions::default()))
            .await
            .map(drop)
    } else {
        let reject = BasicNackOptions {
            requeue: false,
            ..Default::default()
        };
        link.guard("dead-lettering", delivery.acker.nack(reject))
            .await
            .map(drop)
    }
}

pub(crate) fn header<'a>(properties: &'a lapin::BasicProperties, name: &str) -> Option<&'a str> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => std::str::from_utf8(value.as_bytes()).ok(),
        _ => None,
    }
}
