//! Envelopes to send and receivers that count what arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lhcie_adapter_kit::amqp::{self, AmqpIdentity};
use lhcie_adapter_kit::{Disposition, HubConnection, Incoming, ReceiverStats, SeenStore, Uplink};
use lhcie_model::{MessageId, OdsCode, Party, Recipient, RecipientIntent, examples};
use lhcie_proto::{canonical as pb, hub as hubpb};
use prost::Message;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A discharge summary from `from` (an organisation of `exchange`) to
/// `to`, about the example patient, padded so the encoded envelope is about
/// `size` bytes.
pub fn discharge_summary(exchange: &str, from: &str, to: &[&str], size: usize) -> pb::Envelope {
    let mut envelope = examples::discharge_summary();
    envelope.message_id = MessageId::new_random();
    envelope.created_at = time::OffsetDateTime::now_utc();
    envelope.sender = Party {
        ods_code: OdsCode::parse(from).unwrap(),
        exchange_id: lhcie_model::ExchangeId::parse(exchange).unwrap(),
        sending_system: Some("test".into()),
    };
    envelope.addressing.recipients = to
        .iter()
        .map(|code| Recipient {
            ods_code: OdsCode::parse(code).unwrap(),
            intent: RecipientIntent::ForAction,
        })
        .collect();
    envelope.original = None;
    let mut wire = pb::Envelope::from(envelope);
    let current = wire.encoded_len();
    if size > current
        && let Some(pb::envelope::Body::Document(document)) = &mut wire.body
    {
        document.sections[0]
            .text
            .push_str(&"x".repeat(size - current));
    }
    wire
}

/// Sets the patient's NHS number.
pub fn with_patient(mut envelope: pb::Envelope, nhs_number: &str) -> pb::Envelope {
    if let Some(patient) = envelope.patient.as_mut() {
        patient.nhs_number = nhs_number.into();
    }
    envelope
}

/// Submits every envelope over the reliable uplink and waits for all
/// answers (resubmitting across hub restarts). Returns answers by message
/// id.
pub async fn submit_all(
    connection: HubConnection,
    envelopes: Vec<pb::Envelope>,
    window: usize,
    timeout: Duration,
) -> HashMap<String, hubpb::SubmitResponse> {
    let shutdown = CancellationToken::new();
    let total = envelopes.len();
    let (uplink, mut answers) = Uplink::start(connection, window, shutdown.clone());
    let feeding = tokio::spawn(async move {
        for envelope in envelopes {
            if uplink.submit(envelope).await.is_err() {
                return;
            }
        }
    });
    let mut answered = HashMap::new();
    let collected = tokio::time::timeout(timeout, async {
        while answered.len() < total {
            match answers.recv().await {
                Some(answer) => {
                    answered.insert(answer.message_id.clone(), answer);
                }
                None => break,
            }
        }
    })
    .await;
    shutdown.cancel();
    feeding.abort();
    assert!(
        collected.is_ok(),
        "only {} of {total} envelopes answered within {timeout:?}",
        answered.len()
    );
    answered
}

/// What a receiver saw: how often the local system was handed each message
/// id, and the transport-level counts. Every handover wakes whoever waits
/// for one ([`Received::until`]).
#[derive(Default, Clone)]
pub struct Received {
    handed: Arc<Mutex<HashMap<String, u32>>>,
    handover: Arc<tokio::sync::Notify>,
}

impl Received {
    fn record(&self, message_id: &str) {
        *self
            .handed
            .lock()
            .unwrap()
            .entry(message_id.to_owned())
            .or_default() += 1;
        self.handover.notify_waiters();
    }

    /// Distinct message ids handed over.
    pub fn distinct(&self) -> usize {
        self.handed.lock().unwrap().len()
    }

    /// Message ids handed over more than once (must be empty).
    pub fn handed_twice(&self) -> Vec<String> {
        self.handed
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Whether `message_id` was handed over.
    pub fn contains(&self, message_id: &str) -> bool {
        self.handed.lock().unwrap().contains_key(message_id)
    }

    /// Waits until `done` holds, checking again at every handover; false
    /// if it does not within `timeout`.
    pub async fn until(&self, timeout: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a handover in between is
            // not missed.
            let handover = self.handover.notified();
            tokio::pin!(handover);
            handover.as_mut().enable();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, handover).await.is_err() {
                return done(self);
            }
        }
    }

    /// Waits until `count` distinct ids arrived; false after `timeout`.
    pub async fn arrived(&self, count: usize, timeout: Duration) -> bool {
        self.until(timeout, |r| r.distinct() >= count).await
    }

    /// Waits until `count` distinct ids arrived, or panics after `timeout`.
    pub async fn wait_for(&self, count: usize, timeout: Duration) {
        assert!(
            self.arrived(count, timeout).await,
            "only {} of {count} envelopes arrived within {timeout:?}",
            self.distinct()
        );
    }
}

/// A running receiver; stop it to get its transport counts.
pub struct Receiver {
    /// What arrived.
    pub received: Received,
    shutdown: CancellationToken,
    task: JoinHandle<ReceiverStats>,
}

impl Receiver {
    /// Stops and returns the transport counts.
    pub async fn stop(self) -> ReceiverStats {
        self.shutdown.cancel();
        self.task.await.expect("receiver task")
    }
}

/// Starts a receiver whose local system records every message id handed
/// to it; `run` is the kit's receive loop (gRPC or AMQP) given the handler
/// and the shutdown token.
fn spawn_receiver<R>(
    run: impl FnOnce(
        Box<dyn FnMut(Incoming) -> std::future::Ready<Disposition> + Send>,
        CancellationToken,
    ) -> R,
) -> Receiver
where
    R: std::future::Future<Output = ReceiverStats> + Send + 'static,
{
    let received = Received::default();
    let shutdown = CancellationToken::new();
    let record = received.clone();
    let handler = Box::new(move |incoming: Incoming| {
        record.record(&incoming.envelope.message_id);
        std::future::ready(Disposition::Delivered)
    });
    let task = tokio::spawn(run(handler, shutdown.clone()));
    Receiver {
        received,
        shutdown,
        task,
    }
}

/// Receives an exchange's deliveries over AMQP as its broker user.
pub fn receive_amqp(identity: AmqpIdentity) -> Receiver {
    spawn_receiver(|handler, shutdown| {
        amqp::receive(
            identity,
            500,
            SeenStore::temporary().unwrap(),
            handler,
            shutdown,
        )
    })
}

/// Receives an exchange's deliveries over gRPC from the hub.
pub fn receive_grpc(connection: HubConnection) -> Receiver {
    spawn_receiver(|handler, shutdown| {
        lhcie_adapter_kit::receive(
            connection,
            500,
            SeenStore::temporary().unwrap(),
            handler,
            shutdown,
        )
    })
}

/// Publishes envelopes to the ingress exchange as an adapter, all confirms
/// awaited, `window` at a time. Retries (reconnecting) anything not
/// confirmed, so it also works across broker restarts.
pub async fn publish_all_amqp(identity: AmqpIdentity, envelopes: Vec<pb::Envelope>, window: usize) {
    let mut pending: Vec<pb::Envelope> = envelopes;
    while !pending.is_empty() {
        let uplink = match amqp::AmqpUplink::connect(identity.clone()).await {
            Ok(uplink) => uplink,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut failed = Vec::new();
        for batch in pending.chunks(window) {
            let results = futures::future::join_all(batch.iter().map(|e| uplink.publish(e))).await;
            for (envelope, result) in batch.iter().zip(results) {
                if result.is_err() {
                    failed.push(envelope.clone());
                }
            }
        }
        pending = failed;
    }
}

/// Counts the messages in a queue (passive declare, as `guest`).
pub async fn queue_depth(env: &crate::env::TestEnv, queue: &str) -> u32 {
    let connection = lhcie_broker::connect(&env.broker(), "test queue depth")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let depth = channel
        .queue_declare(
            queue.into(),
            lapin::options::QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            Default::default(),
        )
        .await
        .unwrap()
        .message_count();
    let _ = connection.close(200, "done".into()).await;
    depth
}

/// Takes every message waiting on a queue (as `guest`): bodies and headers.
pub async fn drain(
    env: &crate::env::TestEnv,
    queue: &str,
) -> Vec<(pb::Envelope, lapin::types::FieldTable)> {
    let connection = lhcie_broker::connect(&env.broker(), "test drain")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    let mut taken = Vec::new();
    while let Some(message) = channel
        .basic_get(
            queue.into(),
            lapin::options::BasicGetOptions { no_ack: true },
        )
        .await
        .unwrap()
    {
        let envelope = pb::Envelope::decode(message.data.as_slice()).unwrap_or_default();
        taken.push((
            envelope,
            message.properties.headers().clone().unwrap_or_default(),
        ));
    }
    let _ = connection.close(200, "done".into()).await;
    taken
}

/// A text header of a message, if present.
pub fn header_text(headers: &lapin::types::FieldTable, name: &str) -> Option<String> {
    match headers.inner().get(name)? {
        lapin::types::AMQPValue::LongString(value) => {
            Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
        }
        lapin::types::AMQPValue::ShortString(value) => Some(value.to_string()),
        _ => None,
    }
}

/// The depth of every queue of the environment, for failure messages.
pub async fn describe_queues(env: &crate::env::TestEnv) -> String {
    let names = env.names();
    let mut queues = vec![
        names.ingress_queue(),
        names.dead_letter_queue(&lhcie_broker::Destination::Ingress),
    ];
    for (exchange, _, _) in crate::env::EXCHANGES {
        let id = exchange.parse().unwrap();
        queues.push(names.egress_queue(&id));
        queues.push(names.dead_letter_queue(&lhcie_broker::Destination::Exchange(id)));
    }
    let mut text = String::new();
    for queue in queues {
        text.push_str(&format!(
            "{queue}: {} ready\n",
            queue_depth(env, &queue).await
        ));
    }
    text
}
