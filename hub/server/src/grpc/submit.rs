//! The `Submit` stream: many envelopes in flight, each answered once its
//! outcome is durable.
//!
//! If the hub cannot make an outcome durable (broker or store unavailable,
//! or shutting down), it stops reading, lets the envelopes already in
//! flight finish and answers them, then ends the stream with UNAVAILABLE.
//! Envelopes without an answer were not routed durably and must be
//! submitted again; de-duplication makes that safe.

use std::sync::Arc;

use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use lhcie_hub_core::Ingress;
use lhcie_model::ExchangeId;
use lhcie_proto::hub as hubpb;
use prost::Message;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use crate::router::{Hold, Router};

/// Serves one `Submit` stream.
pub fn serve(
    router: Arc<Router>,
    submitter: ExchangeId,
    mut inbound: Streaming<hubpb::SubmitRequest>,
    max_in_flight: usize,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<hubpb::SubmitResponse, Status>> {
    let (answers, stream) = mpsc::channel(max_in_flight);
    tokio::spawn(async move {
        let mut in_flight = FuturesUnordered::new();
        let mut reading = true;
        let mut failure: Option<Status> = None;
        loop {
            if !reading && in_flight.is_empty() {
                break;
            }
            tokio::select! {
                biased;
                Some(done) = in_flight.next(), if !in_flight.is_empty() => match done {
                    Ok(answer) => {
                        if answers.send(Ok(answer)).await.is_err() {
                            // The adapter went away; unanswered envelopes
                            // will be resubmitted by it.
                            reading = false;
                        }
                    }
                    Err(hold) => {
                        reading = false;
                        failure.get_or_insert(match hold {
                            Hold::ShuttingDown => Status::unavailable("the hub is shutting down; resubmit unanswered envelopes"),
                            other => Status::unavailable(format!("{other}; resubmit unanswered envelopes")),
                        });
                    }
                },
                next = inbound.message(), if reading && in_flight.len() < max_in_flight => match next {
                    Ok(Some(request)) => {
                        let router = router.clone();
                        let submitter = submitter.clone();
                        in_flight.push(async move {
                            let Some(envelope) = request.envelope else {
                                return Ok(missing_envelope());
                            };
                            let bytes = envelope.encode_to_vec();
                            router.submit(envelope, &bytes, &submitter, Ingress::Grpc).await
                        });
                    }
                    Ok(None) => reading = false,
                    Err(status) => {
                        tracing::debug!(%status, exchange = %submitter, "submit stream ended by the adapter");
                        reading = false;
                    }
                },
                _ = shutdown.cancelled(), if reading => {
                    reading = false;
                    failure.get_or_insert(Status::unavailable("the hub is shutting down; resubmit unanswered envelopes"));
                }
            }
        }
        if let Some(status) = failure {
            let _ = answers.send(Err(status)).await;
        }
    });
    ReceiverStream::new(stream)
}

fn missing_envelope() -> hubpb::SubmitResponse {
    hubpb::SubmitResponse {
        message_id: String::new(),
        outcome: Some(hubpb::submit_response::Outcome::Rejected(hubpb::Rejected {
            reason: hubpb::RejectReason::InvalidEnvelope as i32,
            detail: "envelope: is required".into(),
        })),
    }
}
