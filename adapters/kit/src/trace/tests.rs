//! Unit tests of the trace reporter against an in-process fake hub (a
//! tonic server implementing `ReportEvents` only).

use std::sync::atomic::AtomicUsize;

use lhcie_model::ExchangeId;
use lhcie_proto::hub::exchange_server::{Exchange, ExchangeServer};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::{Request, Response, Status, Streaming};

use super::*;

/// The fake hub: records every batch; answers `unavailable` while
/// `failing` is set.
#[derive(Clone, Default)]
struct FakeHub {
    batches: Arc<Mutex<Vec<Vec<TraceEvent>>>>,
    failing: Arc<std::sync::atomic::AtomicBool>,
    failed_calls: Arc<AtomicUsize>,
}

impl FakeHub {
    fn ids(&self) -> Vec<String> {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .flatten()
            .map(|e| e.message_id.clone())
            .collect()
    }

    async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ids = self.ids();
            if ids.len() >= count {
                return ids;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} events arrived",
                ids.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tonic::async_trait]
impl Exchange for FakeHub {
    type SubmitStream = ReceiverStream<Result<hubpb::SubmitResponse, Status>>;
    type ReceiveStream = ReceiverStream<Result<hubpb::Delivery, Status>>;

    async fn submit(
        &self,
        _: Request<Streaming<hubpb::SubmitRequest>>,
    ) -> Result<Response<Self::SubmitStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn receive(
        &self,
        _: Request<Streaming<hubpb::ReceiveRequest>>,
    ) -> Result<Response<Self::ReceiveStream>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn heartbeat(
        &self,
        _: Request<hubpb::HeartbeatRequest>,
    ) -> Result<Response<hubpb::HeartbeatResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }

    async fn report_events(
        &self,
        request: Request<hubpb::ReportEventsRequest>,
    ) -> Result<Response<hubpb::ReportEventsResponse>, Status> {
        if self.failing.load(Ordering::SeqCst) {
            self.failed_calls.fetch_add(1, Ordering::SeqCst);
            return Err(Status::unavailable("the fake hub is down"));
        }
        let events = request.into_inner().events;
        let recorded = events.len() as u32;
        self.batches.lock().unwrap().push(events);
        Ok(Response::new(hubpb::ReportEventsResponse { recorded }))
    }
}

/// Serves `hub` on a free port; the connection to it (plain text).
async fn serve(hub: FakeHub) -> HubConnection {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ExchangeServer::new(hub))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    HubConnection {
        endpoint: format!("http://{address}"),
        tls: None,
        exchange: ExchangeId::parse("nwl-imperial").unwrap(),
    }
}

fn numbered(n: usize) -> TraceEvent {
    event(&format!("m-{n}"), TraceStage::ReceivedFromLocal, "AA", "")
}

fn options() -> TraceOptions {
    TraceOptions {
        linger: Duration::from_millis(20),
        ..TraceOptions::default()
    }
}

#[tokio::test]
async fn events_arrive_in_order_in_bounded_batches() {
    let hub = FakeHub::default();
    let reporter = TraceReporter::start(Some(serve(hub.clone()).await), options());
    for n in 0..1200 {
        reporter.report(numbered(n));
    }
    let ids = hub.wait_for(1200).await;
    let expected: Vec<String> = (0..1200).map(|n| format!("m-{n}")).collect();
    assert_eq!(ids, expected);
    let batches = hub.batches.lock().unwrap().clone();
    assert!(batches.iter().all(|b| !b.is_empty() && b.len() <= 500));
    assert!(batches.len() >= 3, "{} batches", batches.len());
    let first = &batches[0][0];
    assert_eq!(first.stage, TraceStage::ReceivedFromLocal as i32);
    assert_eq!(first.local_code, "AA");
    assert!(first.at_unix_nanos > 0);
    assert_eq!(reporter.dropped(), 0);
    reporter.close().await;
}

#[tokio::test]
async fn a_failing_hub_gets_the_events_later_once_each() {
    let hub = FakeHub::default();
    hub.failing.store(true, Ordering::SeqCst);
    let reporter = TraceReporter::start(Some(serve(hub.clone()).await), options());
    for n in 0..10 {
        reporter.report(numbered(n));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.failed_calls.load(Ordering::SeqCst) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no retry");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(reporter.buffered(), 10, "kept while the hub fails");
    hub.failing.store(false, Ordering::SeqCst);
    let ids = hub.wait_for(10).await;
    assert_eq!(ids, (0..10).map(|n| format!("m-{n}")).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(hub.ids().len(), 10, "nothing sent twice");
    assert_eq!(reporter.buffered(), 0);
    reporter.close().await;
}

#[tokio::test]
async fn a_full_buffer_drops_the_oldest_and_counts_them() {
    let hub = FakeHub::default();
    hub.failing.store(true, Ordering::SeqCst);
    let reporter = TraceReporter::start(
        Some(serve(hub.clone()).await),
        TraceOptions {
            capacity: 5,
            ..options()
        },
    );
    for n in 0..8 {
        reporter.report(numbered(n));
    }
    assert_eq!(reporter.dropped(), 3);
    assert_eq!(reporter.buffered(), 5);
    hub.failing.store(false, Ordering::SeqCst);
    let ids = hub.wait_for(5).await;
    assert_eq!(ids, (3..8).map(|n| format!("m-{n}")).collect::<Vec<_>>());
    reporter.close().await;
}

#[tokio::test]
async fn close_sends_what_is_buffered() {
    let hub = FakeHub::default();
    let reporter = TraceReporter::start(
        Some(serve(hub.clone()).await),
        TraceOptions {
            // Longer than the test waits: only close sends them.
            linger: Duration::from_secs(60),
            ..options()
        },
    );
    for n in 0..3 {
        reporter.report(numbered(n));
    }
    reporter.close().await;
    assert_eq!(hub.ids(), ["m-0", "m-1", "m-2"]);
    // After close, nothing more is sent.
    reporter.report(numbered(3));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hub.ids().len(), 3);
}

#[tokio::test]
async fn close_gives_up_after_the_grace_when_the_hub_is_unreachable() {
    let unreachable = HubConnection {
        endpoint: {
            let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", socket.local_addr().unwrap())
        },
        tls: None,
        exchange: ExchangeId::parse("nwl-imperial").unwrap(),
    };
    let reporter = TraceReporter::start(
        Some(unreachable),
        TraceOptions {
            shutdown_grace: Duration::from_millis(300),
            ..options()
        },
    );
    reporter.report(numbered(0));
    let started = std::time::Instant::now();
    reporter.close().await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(reporter.buffered(), 1);
}

#[tokio::test]
async fn a_disabled_reporter_takes_events_and_sends_nothing() {
    let reporter = TraceReporter::start(None, options());
    assert!(!reporter.is_enabled());
    reporter.report(numbered(0));
    assert_eq!(reporter.buffered(), 0);
    assert_eq!(reporter.dropped(), 0);
    reporter.close().await;
}
