//! The gRPC `Exchange` service adapters use: [`submit`] envelopes,
//! [`receive`] deliveries, heartbeat, and adapters' trace events
//! (`ReportEvents`, stored for the message trace; only for messages the
//! reporting exchange submitted or received a copy of, by the audit).
//! Each call is attributed to an exchange by [`identity`].

pub mod identity;
pub mod receive;
pub mod submit;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use lhcie_model::{ExchangeId, MessageId};
use lhcie_proto::hub as hubpb;
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::adapters::AdapterRegistry;
use crate::router::Router;
use crate::store::trace::{Layer, TraceEvent};
use identity::IdentityMode;

/// The service implementation.
pub struct ExchangeService {
    router: Arc<Router>,
    adapters: Arc<AdapterRegistry>,
    identity: IdentityMode,
    max_in_flight: usize,
    shutdown: CancellationToken,
}

impl ExchangeService {
    /// The service over a router.
    pub fn new(
        router: Arc<Router>,
        adapters: Arc<AdapterRegistry>,
        identity: IdentityMode,
        max_in_flight: usize,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            router,
            adapters,
            identity,
            max_in_flight,
            shutdown,
        }
    }
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// How often adapters should send heartbeats, in seconds.
pub const HEARTBEAT_INTERVAL_SECONDS: u32 = 10;

#[tonic::async_trait]
impl hubpb::exchange_server::Exchange for ExchangeService {
    type SubmitStream = BoxStream<hubpb::SubmitResponse>;
    type ReceiveStream = BoxStream<hubpb::Delivery>;

    async fn submit(
        &self,
        request: Request<Streaming<hubpb::SubmitRequest>>,
    ) -> Result<Response<Self::SubmitStream>, Status> {
        let submitter = identity::identify(&request, self.identity, &self.router)?;
        if self.shutdown.is_cancelled() {
            return Err(Status::unavailable("the hub is shutting down"));
        }
        if let Some(reason) = self.router.link().down_reason() {
            return Err(Status::unavailable(format!(
                "the hub cannot reach the broker: {reason}"
            )));
        }
        let stream = submit::serve(
            self.router.clone(),
            submitter,
            request.into_inner(),
            self.max_in_flight,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn receive(
        &self,
        request: Request<Streaming<hubpb::ReceiveRequest>>,
    ) -> Result<Response<Self::ReceiveStream>, Status> {
        let exchange = identity::identify(&request, self.identity, &self.router)?;
        let stream = receive::serve(
            self.router.clone(),
            exchange,
            request.into_inner(),
            self.shutdown.clone(),
        )
        .await?;
        Ok(Response::new(Box::pin(stream)))
    }

    async fn heartbeat(
        &self,
        request: Request<hubpb::HeartbeatRequest>,
    ) -> Result<Response<hubpb::HeartbeatResponse>, Status> {
        let exchange = identity::identify(&request, self.identity, &self.router)?;
        self.adapters.beat(&exchange, request.get_ref());
        Ok(Response::new(hubpb::HeartbeatResponse {
            exchange_id: exchange.to_string(),
            interval_seconds: HEARTBEAT_INTERVAL_SECONDS,
        }))
    }

    async fn report_events(
        &self,
        request: Request<hubpb::ReportEventsRequest>,
    ) -> Result<Response<hubpb::ReportEventsResponse>, Status> {
        let exchange = identity::identify(&request, self.identity, &self.router)?;
        let events = &request.get_ref().events;
        if events.len() > MAX_EVENTS_PER_REPORT {
            return Err(Status::invalid_argument(format!(
                "at most {MAX_EVENTS_PER_REPORT} events per report"
            )));
        }
        let mut recorded = 0;
        let mut refused = Vec::new();
        let mut parties = std::collections::HashMap::new();
        for event in events {
            let Some(event) = adapter_event(&exchange, event) else {
                continue;
            };
            let party = match parties.get(&event.message_id) {
                Some(party) => *party,
                None => {
                    let party = party_to(self.router.store(), &exchange, &event.message_id)
                        .map_err(|e| Status::unavailable(e.to_string()))?;
                    parties.insert(event.message_id.clone(), party);
                    party
                }
            };
            if !party.may_report(&event.stage) {
                refused.push(event.message_id);
                continue;
            }
            self.router
                .store()
                .record_event(&event)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            recorded += 1;
        }
        if !refused.is_empty() {
            // Not an error: the adapter would resend the batch for ever.
            crate::metrics::trace_events_refused(exchange.as_str(), refused.len());
            refused.dedup();
            tracing::warn!(
                %exchange,
                count = refused.len(),
                first = %refused[0],
                "trace events refused: the exchange neither submitted nor received these messages"
            );
        }
        Ok(Response::new(hubpb::ReportEventsResponse { recorded }))
    }
}

/// What an exchange is to a message, by the hub's audit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Party {
    /// It submitted the message or an exchange of one of its recipients.
    Yes,
    /// The hub has decided nothing with this message id (yet): it may be
    /// the exchange's own message, refused at its boundary or not yet
    /// decided.
    Unknown,
    /// Another exchange's message.
    No,
}

impl Party {
    /// Whether an event of `stage` may be recorded: a party's any; for a
    /// message the hub has not decided, only what a sending adapter reports
    /// before the hub decides (the timeline shows an adapter's events only
    /// if the audit names its exchange, should another's record appear).
    fn may_report(self, stage: &str) -> bool {
        match self {
            Party::Yes => true,
            Party::Unknown => matches!(stage, "received-from-local" | "refused-at-boundary"),
            Party::No => false,
        }
    }
}

/// Whether `exchange` submitted `message_id` or received a copy of it,
/// according to the audit.
fn party_to(
    store: &crate::store::Store,
    exchange: &ExchangeId,
    message_id: &str,
) -> Result<Party, crate::store::StoreError> {
    let records = store.audit_of_message(message_id)?;
    if records.is_empty() {
        return Ok(Party::Unknown);
    }
    let involved = records.iter().any(|record| {
        record.submitted_by == exchange.as_str()
            || matches!(&record.outcome, lhcie_hub_core::AuditOutcome::Routed { recipients }
                if recipients.iter().any(|r| r.exchange == exchange.as_str()))
    });
    Ok(if involved { Party::Yes } else { Party::No })
}

/// The most events one `ReportEvents` call may carry.
pub const MAX_EVENTS_PER_REPORT: usize = 1000;

/// An adapter's event as the hub stores it; `None` if it is not usable.
fn adapter_event(exchange: &ExchangeId, event: &hubpb::TraceEvent) -> Option<TraceEvent> {
    let stage = match hubpb::TraceStage::try_from(event.stage).ok()? {
        hubpb::TraceStage::Unspecified => return None,
        hubpb::TraceStage::ReceivedFromLocal => "received-from-local",
        hubpb::TraceStage::RefusedAtBoundary => "refused-at-boundary",
        hubpb::TraceStage::DeliveredToLocal => "delivered-to-local",
        hubpb::TraceStage::DeliveryRetry => "delivery-retry",
        hubpb::TraceStage::DeliveryFailed => "delivery-failed",
        hubpb::TraceStage::LocalNotified => "local-notified",
    };
    let message_id = MessageId::parse(&event.message_id).ok()?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(event.at_unix_nanos)).ok()?;
    Some(TraceEvent::new(
        message_id.as_str(),
        at,
        Layer::Adapter,
        exchange.as_str(),
        stage,
        &event.local_code,
        &event.detail,
    ))
}
