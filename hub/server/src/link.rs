//! The hub's link to RabbitMQ: one supervised connection, re-established
//! with backoff whenever it fails, and a publisher that waits for the
//! broker's confirm of every message it sends.
//!
//! On every (re)connection the supervisor declares the broker topology
//! (idempotent), so a broker that lost its definitions is repaired before
//! any traffic flows. Components that consume (AMQP ingress, gRPC egress)
//! watch [`BrokerLink::state`] and start again on each new link.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection};
use lhcie_broker::BrokerTopology;
use lhcie_config::BrokerConfig;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The state of the link.
#[derive(Clone)]
pub enum LinkState {
    /// Connected; carries the live link.
    Up(Arc<Link>),
    /// Not connected, with the last reason.
    Down(String),
}

/// A live connection with its publisher.
pub struct Link {
    /// The connection.
    pub connection: Connection,
    /// Publishes with confirms.
    pub publisher: Publisher,
    /// Cancelled when the connection is found broken: everything waiting on
    /// this link (publishes, consumers) gives up at once rather than waiting
    /// for the client library to notice.
    pub broken: CancellationToken,
}

impl Link {
    /// Declares the link broken (a publish failed on a channel that may be
    /// dead): closing the connection makes the supervisor reconnect.
    pub async fn fail(&self, reason: &str) {
        if self.broken.is_cancelled() {
            return;
        }
        self.broken.cancel();
        tracing::warn!(%reason, "closing the broker connection to recover");
        let close = self
            .connection
            .close(320, "hub recovering from a failed publish".into());
        let _ = tokio::time::timeout(OPERATION_TIMEOUT, close).await;
    }

    /// Runs a broker operation on this link, giving up if it takes longer
    /// than [`OPERATION_TIMEOUT`] or the link is declared broken meanwhile.
    pub async fn guard<T, E: std::fmt::Display>(
        &self,
        what: &str,
        operation: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, String> {
        tokio::select! {
            outcome = tokio::time::timeout(OPERATION_TIMEOUT, operation) => match outcome {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(format!("{what}: {error}")),
                Err(_) => Err(format!("{what}: no answer within {} s", OPERATION_TIMEOUT.as_secs())),
            },
            _ = self.broken.cancelled() => Err(format!("{what}: the broker connection broke")),
        }
    }
}

/// The longest any other broker operation (ack, nack, close) may take. The
/// client library does not always resolve an operation on a connection
/// that died under it, and a consumer stuck in one would stop for good.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a publish did not succeed. Always transient from the hub's point of
/// view: the envelope is held and retried, never dropped.
#[derive(Debug, thiserror::Error)]
#[error("publishing to the broker failed: {0}")]
pub struct PublishError(pub String);

/// Publishes over a few channels in confirm mode. A publish returns only
/// when the broker has confirmed the message is safely enqueued (for a
/// quorum queue: written by a majority).
pub struct Publisher {
    channels: Vec<Channel>,
    next: AtomicUsize,
    broken: CancellationToken,
}

/// The longest a publish waits for the broker's confirm before it counts
/// as failed (the envelope is then held and retried, never dropped).
pub const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// What a published message is, for its AMQP `content-type` and `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A canonical envelope (protobuf).
    Envelope,
    /// A patient notification (JSON, `crate::patient_notification`).
    PatientNotification,
}

impl Kind {
    fn content_type(self) -> &'static str {
        match self {
            Self::Envelope => "application/x-protobuf",
            Self::PatientNotification => crate::patient_notification::CONTENT_TYPE,
        }
    }

    fn type_name(self) -> &'static str {
        match self {
            Self::Envelope => "lhcie.canonical.v1.Envelope",
            Self::PatientNotification => crate::patient_notification::MESSAGE_TYPE,
        }
    }
}

/// One message to publish.
pub struct Outgoing<'a> {
    /// What it is.
    pub kind: Kind,
    /// The exchange.
    pub exchange: &'a str,
    /// The routing key.
    pub routing_key: &'a str,
    /// The body.
    pub body: &'a [u8],
    /// The envelope's message id.
    pub message_id: &'a str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Publisher {
    async fn open(
        connection: &Connection,
        channels: usize,
        broken: CancellationToken,
    ) -> Result<Self, lapin::Error> {
        let mut opened = Vec::with_capacity(channels);
        for _ in 0..channels {
            let channel = connection.create_channel().await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await?;
            opened.push(channel);
        }
        Ok(Self {
            channels: opened,
            next: AtomicUsize::new(0),
            broken,
        })
    }

    /// Publishes a persistent message and waits for the broker's confirm.
    /// The message is mandatory: if no queue is bound for it, the broker
    /// returns it and this is an error, not a silent drop.
    pub async fn publish(&self, message: Outgoing<'_>) -> Result<(), PublishError> {
        let channel =
            &self.channels[self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len()];
        let mut headers = FieldTable::default();
        for (key, value) in message.headers {
            headers.insert(ShortString::from(key), AMQPValue::LongString(value.into()));
        }
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type(message.kind.content_type().into())
            .with_type(message.kind.type_name().into())
            .with_message_id(message.message_id.into())
            .with_headers(headers);
        let publish = async {
            channel
                .basic_publish(
                    message.exchange.into(),
                    message.routing_key.into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..Default::default()
                    },
                    message.body,
                    properties,
                )
                .await?
                .await
        };
        let confirm = tokio::select! {
            confirm = tokio::time::timeout(CONFIRM_TIMEOUT, publish) => match confirm {
                Ok(confirm) => confirm.map_err(|e| PublishError(e.to_string()))?,
                Err(_) => return Err(PublishError(format!("no confirm within {} s", CONFIRM_TIMEOUT.as_secs()))),
            },
            _ = self.broken.cancelled() => return Err(PublishError("the broker connection broke".into())),
        };
        if !confirm.is_ack() {
            return Err(PublishError("the broker refused the message (nack)".into()));
        }
        if confirm.take_message().is_some() {
            return Err(PublishError(format!(
                "no queue is bound for routing key {} on {}",
                message.routing_key, message.exchange
            )));
        }
        Ok(())
    }
}

/// Watches and maintains the link.
#[derive(Clone)]
pub struct BrokerLink {
    state: watch::Receiver<LinkState>,
}

impl BrokerLink {
    /// Starts the supervisor; it connects at once and keeps reconnecting
    /// until `shutdown`.
    pub fn start(
        config: BrokerConfig,
        topology: BrokerTopology,
        shutdown: CancellationToken,
    ) -> Self {
        let (sender, state) = watch::channel(LinkState::Down("connecting".into()));
        tokio::spawn(supervise(config, topology, sender, shutdown));
        Self { state }
    }

    /// The live link, if connected.
    pub fn current(&self) -> Option<Arc<Link>> {
        match &*self.state.borrow() {
            LinkState::Up(link) => Some(link.clone()),
            LinkState::Down(_) => None,
        }
    }

    /// Why the link is down, if it is.
    pub fn down_reason(&self) -> Option<String> {
        match &*self.state.borrow() {
            LinkState::Up(_) => None,
            LinkState::Down(reason) => Some(reason.clone()),
        }
    }

    /// A receiver of state changes.
    pub fn state(&self) -> watch::Receiver<LinkState> {
        self.state.clone()
    }

    /// Waits for a live link, or `None` on shutdown.
    pub async fn wait_up(&self, shutdown: &CancellationToken) -> Option<Arc<Link>> {
        let mut state = self.state.clone();
        loop {
            if let LinkState::Up(link) = &*state.borrow_and_update() {
                return Some(link.clone());
            }
            tokio::select! {
                changed = state.changed() => if changed.is_err() { return None },
                _ = shutdown.cancelled() => return None,
            }
        }
    }
}

const PUBLISH_CHANNELS: usize = 4;

async fn supervise(
    config: BrokerConfig,
    topology: BrokerTopology,
    state: watch::Sender<LinkState>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    while !shutdown.is_cancelled() {
        match connect(&config, &topology).await {
            Ok(link) => {
                backoff = Duration::from_millis(200);
                let link = Arc::new(link);
                tracing::info!(broker = %config.redacted_url(), "connected to the broker");
                state.send_replace(LinkState::Up(link.clone()));
                let reason = watch_until_broken(&link, &shutdown).await;
                link.broken.cancel();
                if shutdown.is_cancelled() {
                    state.send_replace(LinkState::Down("shutting down".into()));
                    let close = link.connection.close(200, "hub shutting down".into());
                    let _ = tokio::time::timeout(OPERATION_TIMEOUT, close).await;
                    return;
                }
                tracing::warn!(%reason, "lost the broker; reconnecting");
                state.send_replace(LinkState::Down(reason));
            }
            Err(reason) => {
                tracing::warn!(%reason, retry_in_ms = backoff.as_millis() as u64, "cannot reach the broker");
                state.send_replace(LinkState::Down(reason));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn connect(config: &BrokerConfig, topology: &BrokerTopology) -> Result<Link, String> {
    let connection = lhcie_broker::connect(config, "lhcie hub")
        .await
        .map_err(|e| e.to_string())?;
    let channel = connection
        .create_channel()
        .await
        .map_err(|e| format!("opening a channel: {e}"))?;
    topology
        .declare(&channel)
        .await
        .map_err(|e| e.to_string())?;
    let _ = channel.close(200, "topology declared".into()).await;
    let broken = CancellationToken::new();
    let publisher = Publisher::open(&connection, PUBLISH_CHANNELS, broken.clone())
        .await
        .map_err(|e| format!("opening publisher channels: {e}"))?;
    Ok(Link {
        connection,
        publisher,
        broken,
    })
}

/// Returns when the connection fails (with why), when a component declares
/// it broken, or on shutdown.
async fn watch_until_broken(link: &Link, shutdown: &CancellationToken) -> String {
    let connection = &link.connection;
    let mut events = connection.events_listener();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(lapin::Event::Error(error)) => return format!("connection error: {error}"),
                Some(_) => {}
                None => return "connection closed".into(),
            },
            _ = tick.tick() => {
                let status = connection.status();
                if !status.connected() {
                    return "the connection is no longer open".into();
                }
            }
            _ = link.broken.cancelled() => return "a publish failed on the connection".into(),
            _ = shutdown.cancelled() => return "shutting down".into(),
        }
    }
}
