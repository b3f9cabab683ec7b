//! The AMQP uplink as a [`HubSink`] for the outbox's forwarder: each
//! envelope is published to the hub's ingress exchange (persistent, with
//! the adapter's broker user in `user-id`) and counts as **answered
//! "accepted"** once the broker has confirmed it. From then on the broker
//! holds it durably and the hub routes it from the ingress queue; a
//! rejection by the hub comes back later as the hub's own negative
//! acknowledgement on this exchange's egress queue (see
//! `lhcie_hub_core::hub_ack`), where the adapter's receiver picks it up.
//!
//! A publish that fails or is not confirmed is answered "not final" (no
//! outcome), so the forwarder submits the entry again after its backoff;
//! the connection is dropped and made again on the next submit. While the
//! broker cannot be reached at all, `submit` says
//! [`SinkError::Unavailable`] and the forwarder pauses as a whole, keeping
//! arrival order. Up to `window` publishes await their confirms at once.

use std::sync::Arc;

use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::{Mutex, Semaphore, mpsc};

use crate::Answers;
use crate::amqp::{AmqpIdentity, AmqpUplink};
use crate::outbox::{HubSink, SinkError};

/// Publishes envelopes to the ingress exchange; see the module docs.
#[derive(Clone)]
pub struct AmqpSink {
    identity: AmqpIdentity,
    uplink: Arc<Mutex<Option<Arc<AmqpUplink>>>>,
    in_flight: Arc<Semaphore>,
    answers: mpsc::UnboundedSender<hubpb::SubmitResponse>,
}

impl AmqpSink {
    /// A sink publishing as `identity`, with at most `window` publishes
    /// unconfirmed; the forwarder reads the returned answers.
    pub fn new(identity: AmqpIdentity, window: usize) -> (Self, Answers) {
        let (answers, answers_out) = mpsc::unbounded_channel();
        (
            Self {
                identity,
                uplink: Arc::new(Mutex::new(None)),
                in_flight: Arc::new(Semaphore::new(window.max(1))),
                answers,
            },
            answers_out,
        )
    }

    /// The live connection, connecting if there is none.
    async fn connected(&self) -> Result<Arc<AmqpUplink>, SinkError> {
        let mut slot = self.uplink.lock().await;
        if let Some(uplink) = slot.as_ref() {
            return Ok(uplink.clone());
        }
        match AmqpUplink::connect(self.identity.clone()).await {
            Ok(uplink) => {
                let uplink = Arc::new(uplink);
                *slot = Some(uplink.clone());
                tracing::info!(exchange = %self.identity.exchange, "AMQP uplink connected");
                Ok(uplink)
            }
            Err(error) => {
                tracing::warn!(%error, "AMQP uplink cannot reach the broker");
                Err(SinkError::Unavailable)
            }
        }
    }

    /// Forgets `failed` (if it is still the current connection).
    async fn drop_connection(&self, failed: &Arc<AmqpUplink>) {
        let mut slot = self.uplink.lock().await;
        if slot
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, failed))
        {
            *slot = None;
        }
    }
}

impl HubSink for AmqpSink {
    async fn submit(&self, envelope: pb::Envelope) -> Result<(), SinkError> {
        let uplink = self.connected().await?;
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| SinkError::Closed)?;
        let sink = self.clone();
        tokio::spawn(async move {
            let message_id = envelope.message_id.clone();
            let outcome = match uplink.publish(&envelope).await {
                Ok(()) => Some(hubpb::submit_response::Outcome::Accepted(
                    hubpb::Accepted::default(),
                )),
                Err(error) => {
                    tracing::warn!(%message_id, %error, "publish not confirmed; will be submitted again");
                    sink.drop_connection(&uplink).await;
                    None
                }
            };
            drop(permit);
            let _ = sink.answers.send(hubpb::SubmitResponse {
                message_id,
                outcome,
            });
        });
        Ok(())
    }
}
