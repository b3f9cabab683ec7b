//! Volume: each ingress path routes 10,000 envelopes between two exchanges
//! with none lost and none duplicated at the receiver.

use std::time::Duration;

use lhcie_adapter_kit::ReceiverStats;
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, Received, discharge_summary};
use lhcie_proto::hub as hubpb;

const COUNT: usize = 10_000;

fn assert_exactly_once(received: &Received, ids: &[String]) {
    assert_eq!(
        received.distinct(),
        ids.len(),
        "distinct envelopes handed over"
    );
    let missing: Vec<&String> = ids.iter().filter(|id| !received.contains(id)).collect();
    assert!(
        missing.is_empty(),
        "{} envelopes never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(3)]
    );
    let twice = received.handed_twice();
    assert!(
        twice.is_empty(),
        "{} envelopes handed over twice",
        twice.len()
    );
}

/// After a clean stop of the receiver, everything it was handed is settled
/// with the broker: nothing waits in (or went back to) its egress queue, and
/// nothing was delivered twice on the way.
async fn assert_clean_stop(env: &TestEnv, stats: &ReceiverStats) {
    assert_eq!(
        stats.duplicates, 0,
        "no transport duplicates without failures"
    );
    assert_eq!(stats.redelivered, 0, "no delivery came a second time");
    let egress = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
    assert_eq!(
        traffic::queue_depth(env, &egress).await,
        0,
        "everything acknowledged before the receiver stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_ingress_routes_10000_envelopes_exactly_once() {
    with_env(TestEnv::new("grpc10k"), |env| async move {
        let _hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_grpc(env.connection("ncl-royal-free"));
        let envelopes: Vec<_> = (0..COUNT)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        let answers = traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            1000,
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(answers.len(), COUNT);
        for answer in answers.values() {
            let Some(hubpb::submit_response::Outcome::Accepted(accepted)) = &answer.outcome else {
                panic!("not accepted: {answer:?}");
            };
            assert!(!accepted.duplicate);
            assert_eq!(accepted.recipients.len(), 1);
            assert_eq!(
                accepted.recipients[0].disposition,
                hubpb::Disposition::Forwarded as i32
            );
        }
        let received = receiver.received.clone();
        received.wait_for(COUNT, Duration::from_secs(120)).await;
        let stats = receiver.stop().await;
        assert_exactly_once(&received, &ids);
        assert_clean_stop(&env, &stats).await;
    })
    .await;
}

/// A receiver's clean stop is a protocol step, not a wait of some length:
/// with the hub frozen while the last acknowledgements are on their way,
/// the stop waits until the hub has settled them, and nothing goes back to
/// the queue. (Before, the receiver gave up after a fixed 2 s, later 10 s,
/// and what the hub had not settled by then came again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_waits_for_a_frozen_hub_to_settle_every_acknowledgement() {
    with_env(TestEnv::new("grpcstall"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_grpc(env.connection("ncl-royal-free"));
        let envelopes: Vec<_> = (0..1_000)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            1000,
            Duration::from_secs(60),
        )
        .await;
        let received = receiver.received.clone();
        received.wait_for(ids.len(), Duration::from_secs(60)).await;
        hub.pause();
        let stopping = tokio::spawn(receiver.stop());
        // The frozen hub cannot end the stream, so the stop cannot finish;
        // the pause outlasts the receiver's old fixed drain (10 s).
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(!stopping.is_finished(), "the stop waits for the hub");
        hub.resume();
        let stats = stopping.await.expect("receiver task");
        assert_exactly_once(&received, &ids);
        assert_clean_stop(&env, &stats).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_ingress_routes_10000_envelopes_exactly_once() {
    with_env(TestEnv::new("amqp10k"), |env| async move {
        let identities = env
            .provision_users(&["nwl-imperial", "ncl-royal-free"])
            .await;
        let _hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_amqp(identities[1].clone());
        let envelopes: Vec<_> = (0..COUNT)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        traffic::publish_all_amqp(identities[0].clone(), envelopes, 1000).await;
        let received = receiver.received.clone();
        received.wait_for(COUNT, Duration::from_secs(120)).await;
        let stats = receiver.stop().await;
        assert_exactly_once(&received, &ids);
        assert_clean_stop(&env, &stats).await;
        assert_eq!(
            traffic::queue_depth(&env, &env.names().ingress_queue()).await,
            0
        );
        assert_eq!(
            traffic::queue_depth(
                &env,
                &env.names()
                    .dead_letter_queue(&lhcie_broker::Destination::Ingress)
            )
            .await,
            0,
            "nothing dead-lettered"
        );
    })
    .await;
}
