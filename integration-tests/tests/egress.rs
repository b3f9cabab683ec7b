//! Egress over gRPC: deliveries the adapter did not acknowledge come again
//! on its next `Receive`, marked redelivered.

use std::time::Duration;

use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary};
use lhcie_proto::hub as hubpb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Opens a Receive stream and takes `count` deliveries without
/// acknowledging them; returns their message ids and redelivered flags.
async fn take_without_ack(env: &TestEnv, count: usize) -> Vec<(String, bool)> {
    let mut client = env.connection("ncl-royal-free").connect().await.unwrap();
    let (requests, stream) = mpsc::channel(4);
    requests
        .send(hubpb::ReceiveRequest {
            request: Some(hubpb::receive_request::Request::Subscribe(
                hubpb::Subscribe { max_in_flight: 10 },
            )),
        })
        .await
        .unwrap();
    let mut deliveries = client
        .receive(ReceiverStream::new(stream))
        .await
        .unwrap()
        .into_inner();
    let mut taken = Vec::new();
    while taken.len() < count {
        let delivery = tokio::time::timeout(Duration::from_secs(20), deliveries.message())
            .await
            .expect("a delivery within 20 s")
            .unwrap()
            .unwrap();
        taken.push((delivery.envelope.unwrap().message_id, delivery.redelivered));
    }
    taken
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_grpc_deliveries_come_again_after_reconnect() {
    with_env(TestEnv::new("redeliver"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let envelopes: Vec<_> = (0..3)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0))
            .collect();
        let mut ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            10,
            Duration::from_secs(20),
        )
        .await;

        let first = take_without_ack(&env, 3).await;
        assert!(first.iter().all(|(_, redelivered)| !redelivered));
        // The stream is gone; the hub closes its channel and the broker
        // takes the three deliveries back.
        let second = take_without_ack(&env, 3).await;
        assert!(
            second.iter().all(|(_, redelivered)| *redelivered),
            "{second:?}"
        );
        let mut again: Vec<String> = second.into_iter().map(|(id, _)| id).collect();
        again.sort();
        ids.sort();
        assert_eq!(again, ids);

        // Acknowledged through the kit's receiver, they are gone for good.
        let receiver = traffic::receive_grpc(env.connection("ncl-royal-free"));
        receiver.received.wait_for(3, Duration::from_secs(20)).await;
        receiver.stop().await;
        let queue = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while traffic::queue_depth(&env, &queue).await != 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "acknowledged deliveries are still queued"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
