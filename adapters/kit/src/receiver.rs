//! Receiving deliveries from the hub over gRPC, de-duplicated by message
//! id, each acknowledged only after the local system took it and its id is
//! recorded durably (see [`crate::dedup`]).
//!
//! Acknowledgements are batched: ids handled in the last few milliseconds
//! are flushed together, then acknowledged together, so durability does not
//! cost one disk flush per message.

use std::time::Duration;

use futures::StreamExt;
use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::connection::HubConnection;
use crate::dedup::{DeliveryKey, SeenStore};

/// What the local system did with a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Taken.
    Delivered,
    /// Not now; the hub delivers it again later (counts towards the
    /// delivery limit, after which it is dead-lettered).
    Retry,
    /// Never: dead-letter it, with this reason.
    Rejected(String),
}

/// One delivery handed to the local system.
#[derive(Debug)]
pub struct Incoming {
    /// The envelope.
    pub envelope: pb::Envelope,
    /// The organisations of this exchange it is for.
    pub recipients: Vec<String>,
    /// Whether the hub may have delivered it before.
    pub redelivered: bool,
    /// When the hub decided to forward it (unix nanoseconds; 0 if
    /// unknown), for the latency from the hub's decision to the local
    /// system.
    pub decided_at_unix_nanos: i64,
}

/// Counts, for operators and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Deliveries handed to the local system.
    pub handed_over: u64,
    /// Deliveries skipped as already handled.
    pub duplicates: u64,
    /// Deliveries the broker marked as possibly delivered before (after a
    /// stream ended with acknowledgements unsettled, or a failure).
    pub redelivered: u64,
}

/// Receives until `shutdown`, reconnecting with backoff. `handle` is the
/// local system.
pub async fn receive<H, F>(
    connection: HubConnection,
    max_in_flight: u32,
    seen: SeenStore,
    handle: H,
    shutdown: CancellationToken,
) -> ReceiverStats
where
    H: FnMut(Incoming) -> F,
    F: std::future::Future<Output = Disposition>,
{
    receive_observed(connection, max_in_flight, seen, handle, |_| {}, shutdown).await
}

/// [`receive`], calling `on_duplicate` with each delivery skipped as
/// already handled (it is acknowledged without reaching `handle`).
pub async fn receive_observed<H, F, D>(
    connection: HubConnection,
    max_in_flight: u32,
    seen: SeenStore,
    mut handle: H,
    mut on_duplicate: D,
    shutdown: CancellationToken,
) -> ReceiverStats
where
    H: FnMut(Incoming) -> F,
    F: std::future::Future<Output = Disposition>,
    D: FnMut(&pb::Envelope),
{
    let mut stats = ReceiverStats::default();
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match session(
            &connection,
            max_in_flight,
            &seen,
            &mut handle,
            &mut on_duplicate,
            &mut stats,
            &shutdown,
        )
        .await
        {
            Ok(()) => return stats,
            Err(reason) => {
                tracing::warn!(%reason, "receive stream ended; reconnecting");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.cancelled() => return stats,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    stats
}

async fn session<H, F, D>(
    connection: &HubConnection,
    max_in_flight: u32,
    seen: &SeenStore,
    handle: &mut H,
    on_duplicate: &mut D,
    stats: &mut ReceiverStats,
    shutdown: &CancellationToken,
) -> Result<(), String>
where
    H: FnMut(Incoming) -> F,
    F: std::future::Future<Output = Disposition>,
    D: FnMut(&pb::Envelope),
{
    let mut client = connection.connect().await.map_err(|e| e.to_string())?;
    let (requests, request_stream) = mpsc::channel(max_in_flight as usize + 1);
    requests
        .send(hubpb::ReceiveRequest {
            request: Some(hubpb::receive_request::Request::Subscribe(
                hubpb::Subscribe { max_in_flight },
            )),
        })
        .await
        .map_err(|_| "request channel closed".to_owned())?;
    let mut deliveries = client
        .receive(ReceiverStream::new(request_stream))
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    let mut unflushed: Vec<u64> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    loop {
        tokio::select! {
            delivery = deliveries.next() => match delivery {
                Some(Ok(delivery)) => {
                    let Some(envelope) = delivery.envelope else { continue };
                    if delivery.redelivered {
                        stats.redelivered += 1;
                    }
                    let key = DeliveryKey::of(&envelope, &delivery.recipients);
                    if seen.contains(&key).map_err(|e| e.to_string())? {
                        stats.duplicates += 1;
                        on_duplicate(&envelope);
                        unflushed.push(delivery.delivery_id);
                        continue;
                    }
                    let disposition = handle(Incoming {
                        envelope,
                        recipients: delivery.recipients,
                        redelivered: delivery.redelivered,
                        decided_at_unix_nanos: delivery.decided_at_unix_nanos,
                    })
                    .await;
                    match disposition {
                        Disposition::Delivered => {
                            stats.handed_over += 1;
                            seen.insert(&key).map_err(|e| e.to_string())?;
                            unflushed.push(delivery.delivery_id);
                        }
                        other => {
                            send_ack(&requests, delivery.delivery_id, &other).await?;
                        }
                    }
                    if unflushed.len() >= 256 {
                        flush_and_ack(seen, &requests, &mut unflushed).await?;
                    }
                }
                Some(Err(status)) => {
                    flush_and_ack(seen, &requests, &mut unflushed).await.ok();
                    return Err(status.to_string());
                }
                None => {
                    flush_and_ack(seen, &requests, &mut unflushed).await.ok();
                    return Err("the hub ended the stream".into());
                }
            },
            _ = tick.tick(), if !unflushed.is_empty() => flush_and_ack(seen, &requests, &mut unflushed).await?,
            _ = shutdown.cancelled() => {
                flush_and_ack(seen, &requests, &mut unflushed).await.ok();
                end_cleanly(requests, deliveries).await;
                return Ok(());
            }
        }
    }
}

/// A clean stop (see the hub's `grpc::receive`): half-close our side after
/// the last acknowledgement, then read until the hub ends the stream,
/// which it does only once it has settled every acknowledgement with the
/// broker. Deliveries that arrive meanwhile are not handed over; they stay
/// unacknowledged and come again next time.
async fn end_cleanly(
    requests: mpsc::Sender<hubpb::ReceiveRequest>,
    mut deliveries: tonic::Streaming<hubpb::Delivery>,
) {
    drop(requests);
    let drained = tokio::time::timeout(LAST_RESORT_DRAIN, async {
        while let Some(Ok(_)) = deliveries.next().await {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "the hub did not end the receive stream within {} s of our last acknowledgement; \
             unsettled deliveries will come again",
            LAST_RESORT_DRAIN.as_secs()
        );
    }
}

/// A last-resort bound on [`end_cleanly`], for a hub that stopped
/// answering altogether: a stop must end. A live hub ends the stream as
/// soon as it has settled what it read (milliseconds); nothing relies on
/// this bound, and hitting it loses nothing (the deliveries come again and
/// are recognised as duplicates).
const LAST_RESORT_DRAIN: Duration = Duration::from_secs(60);

async fn flush_and_ack(
    seen: &SeenStore,
    requests: &mpsc::Sender<hubpb::ReceiveRequest>,
    unflushed: &mut Vec<u64>,
) -> Result<(), String> {
    if unflushed.is_empty() {
        return Ok(());
    }
    seen.flush().await.map_err(|e| e.to_string())?;
    for delivery_id in unflushed.drain(..) {
        send_ack(requests, delivery_id, &Disposition::Delivered).await?;
    }
    Ok(())
}

async fn send_ack(
    requests: &mpsc::Sender<hubpb::ReceiveRequest>,
    delivery_id: u64,
    disposition: &Disposition,
) -> Result<(), String> {
    let (disposition, reason) = match disposition {
        Disposition::Delivered => (hubpb::AckDisposition::Delivered, String::new()),
        Disposition::Retry => (hubpb::AckDisposition::Retry, String::new()),
        Disposition::Rejected(reason) => (hubpb::AckDisposition::Rejected, reason.clone()),
    };
    requests
        .send(hubpb::ReceiveRequest {
            request: Some(hubpb::receive_request::Request::Ack(hubpb::DeliveryAck {
                delivery_id,
                disposition: disposition as i32,
                reason,
            })),
        })
        .await
        .map_err(|_| "the receive stream is closed".to_owned())
}
