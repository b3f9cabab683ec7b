//! The AMQP alternative for adapters that prefer to stay decoupled from the
//! hub: publish envelopes to the ingress exchange, consume deliveries from
//! the exchange's own egress queue. Each adapter connects as its own broker
//! user (`<prefix>-<exchange-id>`), whose permissions cover only those two.

use std::time::Duration;

use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection};
use lhcie_broker::Names;
use lhcie_config::BrokerConfig;
use lhcie_model::ExchangeId;
use lhcie_proto::canonical as pb;
use prost::Message;
use tokio_util::sync::CancellationToken;

use crate::dedup::{DeliveryKey, SeenStore};
use crate::receiver::{Disposition, Incoming, ReceiverStats};

/// The longest a broker operation (publish confirm, ack, close) may take:
/// the client library does not always resolve one on a connection that
/// died under it, and a receiver stuck in one would stop for good.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a broker operation with [`OPERATION_TIMEOUT`].
async fn bounded<T, E: std::fmt::Display>(
    what: &str,
    operation: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(OPERATION_TIMEOUT, operation).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{what}: {error}")),
        Err(_) => Err(format!(
            "{what}: no answer within {} s",
            OPERATION_TIMEOUT.as_secs()
        )),
    }
}

/// An adapter's broker identity.
#[derive(Debug, Clone)]
pub struct AmqpIdentity {
    /// Broker settings, with the adapter user's credentials in the URL.
    pub broker: BrokerConfig,
    /// The exchange.
    pub exchange: ExchangeId,
}

impl AmqpIdentity {
    fn names(&self) -> Names {
        Names::new(&self.broker.prefix)
    }

    fn user(&self) -> String {
        self.names().adapter_user(&self.exchange)
    }
}

/// Publishes envelopes to the hub's ingress exchange with confirms.
pub struct AmqpUplink {
    _connection: Connection,
    channel: Channel,
    identity: AmqpIdentity,
}

/// A publish that did not succeed; keep the envelope and try again.
#[derive(Debug, thiserror::Error)]
#[error("AMQP uplink: {0}")]
pub struct AmqpError(pub String);

impl AmqpUplink {
    /// Connects as the adapter's broker user.
    pub async fn connect(identity: AmqpIdentity) -> Result<Self, AmqpError> {
        let connection =
            lhcie_broker::connect(&identity.broker, &format!("adapter {}", identity.exchange))
                .await
                .map_err(|e| AmqpError(e.to_string()))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|e| AmqpError(e.to_string()))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| AmqpError(e.to_string()))?;
        Ok(Self {
            _connection: connection,
            channel,
            identity,
        })
    }

    /// Publishes one envelope (persistent, with the broker-validated
    /// `user-id`) and waits for the broker's confirm. Many may be awaited
    /// at once.
    pub async fn publish(&self, envelope: &pb::Envelope) -> Result<(), AmqpError> {
        let body = envelope.encode_to_vec();
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/x-protobuf".into())
            .with_type("lhcie.canonical.v1.Envelope".into())
            .with_message_id(envelope.message_id.as_str().into())
            .with_user_id(self.identity.user().into());
        let confirm = self
            .channel
            .basic_publish(
                self.identity.names().ingress_exchange().as_str().into(),
                "".into(),
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &body,
                properties,
            )
            .await
            .map_err(|e| AmqpError(e.to_string()))?;
        let confirm = bounded("publisher confirm", confirm)
            .await
            .map_err(AmqpError)?;
        if confirm.is_ack() && confirm.take_message().is_none() {
            Ok(())
        } else {
            Err(AmqpError("the broker did not accept the envelope".into()))
        }
    }
}

/// Consumes the exchange's egress queue until `shutdown`, reconnecting with
/// backoff, de-duplicating by message id like the gRPC receiver.
pub async fn receive<H, F>(
    identity: AmqpIdentity,
    prefetch: u16,
    seen: SeenStore,
    handle: H,
    shutdown: CancellationToken,
) -> ReceiverStats
where
    H: FnMut(Incoming) -> F,
    F: std::future::Future<Output = Disposition>,
{
    receive_observed(identity, prefetch, seen, handle, |_| {}, shutdown).await
}

/// [`receive`], calling `on_duplicate` with each delivery skipped as
/// already handled (it is acknowledged without reaching `handle`).
pub async fn receive_observed<H, F, D>(
    identity: AmqpIdentity,
    prefetch: u16,
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
            &identity,
            prefetch,
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
                tracing::warn!(%reason, "AMQP receiver stopped; reconnecting");
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
    identity: &AmqpIdentity,
    prefetch: u16,
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
    let connection = lhcie_broker::connect(
        &identity.broker,
        &format!("adapter {} receive", identity.exchange),
    )
    .await
    .map_err(|e| e.to_string())?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| e.to_string())?;
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let queue = identity.names().egress_queue(&identity.exchange);
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            format!("adapter-{}", identity.exchange).into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut unflushed: Vec<lapin::Acker> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    let mut liveness = tokio::time::interval(lhcie_broker::liveness::STALL_AFTER);
    let mut last_delivery = tokio::time::Instant::now();
    let result = loop {
        tokio::select! {
            _ = liveness.tick() => {
                if unflushed.is_empty()
                    && last_delivery.elapsed() >= lhcie_broker::liveness::STALL_AFTER
                    && lhcie_broker::liveness::stalled(&connection, &queue).await
                {
                    break Err("messages are waiting but none arrived; subscribing again".into());
                }
            }
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    last_delivery = tokio::time::Instant::now();
                    let envelope = match pb::Envelope::decode(delivery.data.as_slice()) {
                        Ok(envelope) => envelope,
                        Err(_) => {
                            let reject = delivery.acker.nack(BasicNackOptions { requeue: false, ..Default::default() });
                            bounded("dead-lettering", reject).await?;
                            continue;
                        }
                    };
                    if delivery.redelivered {
                        stats.redelivered += 1;
                    }
                    let recipients = recipients_header(&delivery.properties);
                    let key = DeliveryKey::of(&envelope, &recipients);
                    if seen.contains(&key).map_err(|e| e.to_string())? {
                        stats.duplicates += 1;
                        on_duplicate(&envelope);
                        unflushed.push(delivery.acker);
                        continue;
                    }
                    let decided_at_unix_nanos = decided_at_header(&delivery.properties);
                    match handle(Incoming { envelope, recipients, redelivered: delivery.redelivered, decided_at_unix_nanos }).await {
                        Disposition::Delivered => {
                            stats.handed_over += 1;
                            seen.insert(&key).map_err(|e| e.to_string())?;
                            unflushed.push(delivery.acker);
                        }
                        Disposition::Retry => {
                            let retry = delivery.acker.nack(BasicNackOptions { requeue: true, ..Default::default() });
                            bounded("nack", retry).await?;
                        }
                        Disposition::Rejected(_) => {
                            let reject = delivery.acker.nack(BasicNackOptions { requeue: false, ..Default::default() });
                            bounded("dead-lettering", reject).await?;
                        }
                    }
                    if unflushed.len() >= 256 {
                        flush_and_ack(seen, &mut unflushed).await?;
                    }
                }
                Some(Err(error)) => break Err(error.to_string()),
                None => break Err("the broker cancelled the consumer".into()),
            },
            _ = tick.tick(), if !unflushed.is_empty() => flush_and_ack(seen, &mut unflushed).await?,
            _ = shutdown.cancelled() => {
                flush_and_ack(seen, &mut unflushed).await.ok();
                break Ok(());
            }
        }
    };
    let _ = bounded(
        "closing",
        connection.close(200, "adapter receiver stopping".into()),
    )
    .await;
    result
}

/// Makes the handled ids durable, then settles every delivery in
/// `unflushed` with one `multiple` ack on the last: deliveries are handled
/// in order and every other one before it is settled already (a retry or
/// rejection at once), so the ack covers exactly these.
async fn flush_and_ack(seen: &SeenStore, unflushed: &mut Vec<lapin::Acker>) -> Result<(), String> {
    let Some(last) = unflushed.last() else {
        return Ok(());
    };
    seen.flush().await.map_err(|e| e.to_string())?;
    bounded("ack", last.ack(BasicAckOptions { multiple: true })).await?;
    unflushed.clear();
    Ok(())
}

/// A string header's value (long or short string).
fn string_header(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

fn recipients_header(properties: &BasicProperties) -> Vec<String> {
    string_header(properties, "lhcie-recipients")
        .map(|value| {
            value
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// When the hub decided (`lhcie-decided-at`, unix nanoseconds as text); 0
/// if absent or unreadable.
fn decided_at_header(properties: &BasicProperties) -> i64 {
    string_header(properties, "lhcie-decided-at")
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use lapin::types::{LongString, ShortString};

    use super::*;

    fn with_headers(headers: &[(&str, AMQPValue)]) -> BasicProperties {
        let mut table = FieldTable::default();
        for (name, value) in headers {
            table.insert(ShortString::from(*name), value.clone());
        }
        BasicProperties::default().with_headers(table)
    }

    #[test]
    fn the_hubs_headers_are_read() {
        let properties = with_headers(&[
            (
                "lhcie-recipients",
                AMQPValue::LongString(LongString::from("RAL,RKE")),
            ),
            (
                "lhcie-decided-at",
                AMQPValue::LongString(LongString::from("1767225600123456789")),
            ),
        ]);
        assert_eq!(recipients_header(&properties), ["RAL", "RKE"]);
        assert_eq!(decided_at_header(&properties), 1_767_225_600_123_456_789);
        let none = BasicProperties::default();
        assert!(recipients_header(&none).is_empty());
        assert_eq!(decided_at_header(&none), 0);
        let bad = with_headers(&[(
            "lhcie-decided-at",
            AMQPValue::LongString(LongString::from("yesterday")),
        )]);
        assert_eq!(decided_at_header(&bad), 0);
    }
}
