//! The `Receive` stream: an exchange's deliveries, each acknowledged
//! explicitly by the adapter.
//!
//! The hub consumes the exchange's egress queue on a channel of its own
//! with a prefetch of the adapter's `max_in_flight`, and acknowledges to
//! the broker only what the adapter acknowledged. When the stream ends for
//! any reason the channel is closed, and the broker delivers the
//! unacknowledged messages again (marked redelivered).
//!
//! A clean stop is a protocol, not a timeout: the adapter half-closes its
//! request stream after its last acknowledgement; the hub reads every
//! acknowledgement up to that end, settles each with the broker, closes the
//! channel and only then ends the response stream. So an adapter that waits
//! for the end of the response stream knows that everything it acknowledged
//! is settled, however loaded the machine is.
//!
//! Acknowledgements are settled in batches: whatever the adapter has sent
//! is read at once, and the longest run of acknowledged deliveries at the
//! front of the window is settled with one `multiple` ack (see
//! [`plan_acks`]); the rest one by one, so nothing waits behind a delivery
//! still with the adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
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

use crate::link::{Kind, Link, Outgoing};
use crate::router::{
    DECIDED_AT_HEADER, RECIPIENTS_HEADER, REJECT_DETAIL_HEADER, REJECT_REASON_HEADER, Router,
    SUBMITTED_BY_HEADER, recipients_in,
};
use lapin::{Channel, Consumer};

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
    let consumer = channel
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
    tokio::spawn(
        ReceiveSession {
            router,
            link,
            exchange,
            queue,
            pending: BTreeMap::new(),
        }
        .run(channel, consumer, inbound, deliveries, shutdown),
    );
    Ok(ReceiverStream::new(stream))
}

/// The acknowledgements read from an adapter in one go, at most.
const MAX_ACK_BATCH: usize = 4096;

/// One `Receive` stream's state: the deliveries sent to the adapter and not
/// yet settled with the broker, by delivery tag.
struct ReceiveSession {
    router: Arc<Router>,
    link: Arc<Link>,
    exchange: ExchangeId,
    queue: String,
    pending: BTreeMap<u64, Delivery>,
}

type Deliveries = mpsc::Sender<Result<hubpb::Delivery, Status>>;

impl ReceiveSession {
    async fn run(
        mut self,
        channel: Channel,
        mut consumer: Consumer,
        mut inbound: Streaming<hubpb::ReceiveRequest>,
        deliveries: Deliveries,
        shutdown: CancellationToken,
    ) {
        let ending = self
            .pump(&mut consumer, &mut inbound, &deliveries, &shutdown)
            .await;
        if let Some(status) = ending {
            let _ = deliveries.send(Err(status)).await;
        }
        // Unacknowledged deliveries go back to the queue. Every
        // acknowledgement read has been settled by now, and the broker
        // handles this channel's frames in order; only after the close is
        // `deliveries` dropped, which ends the adapter's response stream.
        let _ = self
            .link
            .guard(
                "closing the channel",
                channel.close(200, "receive stream ended".into()),
            )
            .await;
        tracing::info!(exchange = %self.exchange, unacknowledged = self.pending.len(), "receive stream ended");
    }

    /// Moves deliveries to the adapter and its acknowledgements to the
    /// broker until either side ends. `None`: the adapter ended its side
    /// cleanly (or stopped reading).
    async fn pump(
        &mut self,
        consumer: &mut Consumer,
        inbound: &mut Streaming<hubpb::ReceiveRequest>,
        deliveries: &Deliveries,
        shutdown: &CancellationToken,
    ) -> Option<Status> {
        let mut liveness = tokio::time::interval(lhcie_broker::liveness::STALL_AFTER);
        let mut last_delivery = tokio::time::Instant::now();
        let broken = self.link.broken.clone();
        loop {
            tokio::select! {
                _ = broken.cancelled() => {
                    return Some(Status::unavailable("the hub lost the broker; subscribe again"));
                }
                _ = liveness.tick() => {
                    if self.pending.is_empty()
                        && last_delivery.elapsed() >= lhcie_broker::liveness::STALL_AFTER
                        && lhcie_broker::liveness::stalled(&self.link.connection, &self.queue).await
                    {
                        // The adapter reconnects and subscribes again.
                        return Some(Status::unavailable("deliveries are waiting but none arrived; subscribe again"));
                    }
                }
                delivery = consumer.next() => match delivery {
                    Some(Ok(delivery)) => {
                        last_delivery = tokio::time::Instant::now();
                        if let Some(out) = self.admit(delivery).await
                            && deliveries.send(Ok(out)).await.is_err()
                        {
                            return None;
                        }
                    }
                    Some(Err(error)) => return Some(Status::unavailable(format!("lost the broker: {error}"))),
                    None => return Some(Status::unavailable("the broker ended the delivery stream")),
                },
                request = inbound.message() => {
                    let (acks, ended) = gather_acks(&self.exchange, request, inbound);
                    if let Err(error) = self.settle_batch(acks).await {
                        tracing::warn!(exchange = %self.exchange, %error, "settling deliveries failed; the broker will deliver them again");
                        return Some(Status::unavailable("the hub lost the broker; subscribe again"));
                    }
                    if ended {
                        return None;
                    }
                }
                _ = shutdown.cancelled() => return Some(Status::unavailable("the hub is shutting down")),
            }
        }
    }

    /// Turns a broker delivery into the adapter's, keeping it pending; an
    /// undecodable one is dead-lettered at once.
    async fn admit(&mut self, delivery: Delivery) -> Option<hubpb::Delivery> {
        let Ok(envelope) = pb::Envelope::decode(delivery.data.as_slice()) else {
            tracing::error!(exchange = %self.exchange, "undecodable message on an egress queue; dead-lettering it");
            let reject = delivery.acker.nack(BasicNackOptions {
                requeue: false,
                ..Default::default()
            });
            let _ = self.link.guard("dead-lettering", reject).await;
            return None;
        };
        let recipients = header(&delivery.properties, RECIPIENTS_HEADER)
            .map(recipients_in)
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
        self.pending.insert(delivery.delivery_tag, delivery);
        Some(out)
    }

    /// Settles a batch of the adapter's acknowledgements with the broker:
    /// negative ones one by one, positive ones as [`plan_acks`] says.
    async fn settle_batch(&mut self, acks: Vec<hubpb::DeliveryAck>) -> Result<(), String> {
        let mut delivered = BTreeSet::new();
        for ack in acks {
            if !self.pending.contains_key(&ack.delivery_id) {
                tracing::warn!(exchange = %self.exchange, delivery_id = ack.delivery_id, "acknowledgement of an unknown delivery ignored");
                continue;
            }
            if ack.disposition == hubpb::AckDisposition::Delivered as i32 {
                delivered.insert(ack.delivery_id);
            } else if let Some(delivery) = self.pending.remove(&ack.delivery_id) {
                settle(&self.router, &self.link, &self.exchange, delivery, &ack).await?;
            }
        }
        let plan = plan_acks(self.pending.keys().copied(), &delivered);
        if let Some(through) = plan.through {
            let rest = self.pending.split_off(&(through + 1));
            let run = std::mem::replace(&mut self.pending, rest);
            let last = run
                .into_values()
                .next_back()
                .expect("the run ends at `through`");
            let multiple = BasicAckOptions { multiple: true };
            self.link.guard("ack", last.acker.ack(multiple)).await?;
        }
        for tag in plan.singles {
            if let Some(delivery) = self.pending.remove(&tag) {
                let single = delivery.acker.ack(BasicAckOptions::default());
                self.link.guard("ack", single).await?;
            }
        }
        Ok(())
    }
}

/// Reads the request that woke the session and every further one already
/// received, up to [`MAX_ACK_BATCH`]. Returns the acknowledgements and
/// whether the adapter ended its side (or the stream failed).
fn gather_acks(
    exchange: &ExchangeId,
    first: Result<Option<hubpb::ReceiveRequest>, Status>,
    inbound: &mut Streaming<hubpb::ReceiveRequest>,
) -> (Vec<hubpb::DeliveryAck>, bool) {
    let mut acks = Vec::new();
    let mut next = Some(first);
    while let Some(request) = next.take() {
        match request {
            Ok(Some(hubpb::ReceiveRequest {
                request: Some(hubpb::receive_request::Request::Ack(ack)),
            })) => acks.push(ack),
            Ok(Some(_)) => tracing::warn!(%exchange, "unexpected request on Receive ignored"),
            Ok(None) | Err(_) => return (acks, true),
        }
        if acks.len() < MAX_ACK_BATCH {
            // Only what has already arrived: never waits.
            next = inbound.message().now_or_never();
        }
    }
    (acks, false)
}

/// How to settle positive acknowledgements with the fewest broker frames
/// without ever settling a delivery the adapter has not acknowledged.
#[derive(Debug, PartialEq, Eq)]
pub struct AckPlan {
    /// Ack every pending delivery up to and including this tag with one
    /// `multiple` ack: all of them are acknowledged.
    pub through: Option<u64>,
    /// Ack these one by one (acknowledged, but behind one that is not).
    pub singles: Vec<u64>,
}

/// Plans the acks for `delivered` (tags the adapter acknowledged), given
/// the tags still pending with the broker in ascending order (every tag
/// below the first is settled already).
pub fn plan_acks(pending: impl Iterator<Item = u64>, delivered: &BTreeSet<u64>) -> AckPlan {
    let mut through = None;
    for tag in pending {
        if !delivered.contains(&tag) {
            break;
        }
        through = Some(tag);
    }
    let singles = match through {
        Some(through) => delivered.range(through + 1..).copied().collect(),
        None => delivered.iter().copied().collect(),
    };
    AckPlan { through, singles }
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
            kind: Kind::Envelope,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tags: &[u64]) -> BTreeSet<u64> {
        tags.iter().copied().collect()
    }

    #[test]
    fn a_contiguous_front_is_one_multiple_ack() {
        let plan = plan_acks([3, 4, 5, 6].into_iter(), &set(&[3, 4, 5]));
        assert_eq!(
            plan,
            AckPlan {
                through: Some(5),
                singles: vec![]
            }
        );
    }

    #[test]
    fn acknowledged_deliveries_behind_an_open_one_are_acked_singly() {
        let plan = plan_acks([3, 4, 5, 6, 7].into_iter(), &set(&[3, 5, 7]));
        assert_eq!(
            plan,
            AckPlan {
                through: Some(3),
                singles: vec![5, 7]
            }
        );
        let plan = plan_acks([3, 4, 5].into_iter(), &set(&[4, 5]));
        assert_eq!(
            plan,
            AckPlan {
                through: None,
                singles: vec![4, 5]
            }
        );
    }

    #[test]
    fn no_plan_ever_settles_an_unacknowledged_delivery() {
        // Every subset of eight pending tags acknowledged.
        let pending: Vec<u64> = (10..18).collect();
        for mask in 0u32..256 {
            let delivered: BTreeSet<u64> = pending
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, tag)| *tag)
                .collect();
            let plan = plan_acks(pending.iter().copied(), &delivered);
            let mut settled: BTreeSet<u64> = plan.singles.iter().copied().collect();
            if let Some(through) = plan.through {
                settled.extend(pending.iter().copied().filter(|tag| *tag <= through));
            }
            assert_eq!(settled, delivered, "mask {mask:08b}");
        }
    }
}
