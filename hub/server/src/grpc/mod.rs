//! The gRPC `Exchange` service adapters use: [`submit`] envelopes,
//! [`receive`] deliveries, heartbeat, and adapters' trace events
//! (`ReportEvents`, stored for the message trace). Each call is attributed
//! to an exchange by [`identity`].

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
        for event in events {
            let Some(event) = adapter_event(&exchange, event) else {
                continue;
            };
            self.router
                .store()
                .record_event(&event)
                .map_err(|e| Status::unavailable(e.to_string()))?;
            recorded += 1;
        }
        Ok(Response::new(hubpb::ReportEventsResponse { recorded }))
    }
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
