//! The gRPC `Exchange` service adapters use: [`submit`] envelopes,
//! [`receive`] deliveries, and heartbeat. Each call is attributed to an
//! exchange by [`identity`].

pub mod identity;
pub mod receive;
pub mod submit;

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use lhcie_proto::hub as hubpb;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::adapters::AdapterRegistry;
use crate::router::Router;
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
}
