//! The reliable gRPC uplink: envelopes go to the hub on one long-lived,
//! pipelined `Submit` stream, and every envelope is kept until the hub has
//! answered it. When the stream breaks (hub restart, network, broker outage
//! at the hub) the uplink reconnects with backoff and submits every
//! unanswered envelope again; the hub's de-duplication by message id makes
//! that safe.
//!
//! Adapters feed it from their durable outbox and delete an envelope from
//! the outbox when its answer arrives.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::connection::HubConnection;

/// Puts envelopes on the uplink.
#[derive(Clone)]
pub struct Uplink {
    envelopes: mpsc::Sender<pb::Envelope>,
}

/// The hub's answers, one per submitted envelope, in the order they come.
pub type Answers = mpsc::UnboundedReceiver<hubpb::SubmitResponse>;

impl Uplink {
    /// Starts the uplink with at most `window` envelopes unanswered at once.
    /// Dropping every [`Uplink`] closes it once all envelopes are answered.
    pub fn start(
        connection: HubConnection,
        window: usize,
        shutdown: CancellationToken,
    ) -> (Self, Answers) {
        let (envelopes, input) = mpsc::channel(window);
        let (answers_out, answers) = mpsc::unbounded_channel();
        tokio::spawn(run(connection, window, input, answers_out, shutdown));
        (Self { envelopes }, answers)
    }

    /// Queues an envelope; waits while the window is full.
    pub async fn submit(&self, envelope: pb::Envelope) -> Result<(), UplinkClosed> {
        self.envelopes
            .send(envelope)
            .await
            .map_err(|_| UplinkClosed)
    }
}

/// The uplink has stopped (shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the uplink has stopped")]
pub struct UplinkClosed;

/// Envelopes not yet answered, in submission order.
#[derive(Default)]
struct Unanswered {
    by_order: BTreeMap<u64, pb::Envelope>,
    order_of: HashMap<String, u64>,
    next: u64,
}

impl Unanswered {
    fn insert(&mut self, envelope: pb::Envelope) {
        if let Some(old) = self.order_of.insert(envelope.message_id.clone(), self.next) {
            self.by_order.remove(&old);
        }
        self.by_order.insert(self.next, envelope);
        self.next += 1;
    }

    fn answer(&mut self, message_id: &str) -> bool {
        match self.order_of.remove(message_id) {
            Some(order) => self.by_order.remove(&order).is_some(),
            None => false,
        }
    }

    fn len(&self) -> usize {
        self.by_order.len()
    }
}

async fn run(
    connection: HubConnection,
    window: usize,
    mut input: mpsc::Receiver<pb::Envelope>,
    answers: mpsc::UnboundedSender<hubpb::SubmitResponse>,
    shutdown: CancellationToken,
) {
    let mut unanswered = Unanswered::default();
    let mut input_open = true;
    let mut backoff = Duration::from_millis(100);
    loop {
        if !input_open && unanswered.len() == 0 {
            return;
        }
        let mut client = match connection.connect().await {
            Ok(client) => client,
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = backoff.as_millis() as u64, "uplink cannot reach the hub");
                if !pause(&mut backoff, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let (requests, request_stream) = mpsc::channel(window.max(1));
        // Resubmit everything unanswered, oldest first. The channel holds
        // at most `window`, and so does `unanswered`.
        for envelope in unanswered.by_order.values() {
            let _ = requests.try_send(hubpb::SubmitRequest {
                envelope: Some(envelope.clone()),
            });
        }
        let response = tokio::select! {
            response = client.submit(ReceiverStream::new(request_stream)) => response,
            _ = shutdown.cancelled() => return,
        };
        let mut stream = match response {
            Ok(response) => response.into_inner(),
            Err(status) => {
                tracing::warn!(%status, "the hub refused the submit stream");
                if !pause(&mut backoff, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        let mut requests = Some(requests);
        loop {
            if !input_open && unanswered.len() == 0 {
                // Close our side; the hub then ends the stream.
                requests = None;
            }
            tokio::select! {
                envelope = input.recv(), if input_open && unanswered.len() < window && requests.is_some() => match envelope {
                    Some(envelope) => {
                        unanswered.insert(envelope.clone());
                        if let Some(sender) = &requests
                            && sender.send(hubpb::SubmitRequest { envelope: Some(envelope) }).await.is_err()
                        {
                            break;
                        }
                    }
                    None => input_open = false,
                },
                answer = stream.next() => match answer {
                    Some(Ok(answer)) => {
                        backoff = Duration::from_millis(100);
                        if unanswered.answer(&answer.message_id) {
                            let _ = answers.send(answer);
                        }
                    }
                    Some(Err(status)) => {
                        tracing::warn!(%status, unanswered = unanswered.len(), "submit stream ended; resubmitting unanswered envelopes");
                        break;
                    }
                    None => {
                        if !input_open && unanswered.len() == 0 {
                            return;
                        }
                        break;
                    }
                },
                _ = shutdown.cancelled() => return,
            }
        }
        drop(requests);
        if !pause(&mut backoff, &shutdown).await {
            return;
        }
    }
}

/// Sleeps for the backoff (doubling it, up to 5 s); false on shutdown.
async fn pause(backoff: &mut Duration, shutdown: &CancellationToken) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown.cancelled() => false,
    }
}
