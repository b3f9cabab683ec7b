//! Crashes: the hub is killed with SIGKILL, repeatedly, while it routes
//! 20,000 envelopes; after each restart the work continues, and in the end
//! the receiver has every envelope exactly once.

use std::time::Duration;

use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, Received, discharge_summary};

const COUNT: usize = 20_000;
const KILLS: usize = 4;

/// Kills the hub whenever another `step` envelopes have arrived, `KILLS`
/// times, restarting it each time.
async fn kill_repeatedly(env: &TestEnv, hub: &mut HubProcess, received: &Received, step: usize) {
    for kill in 1..=KILLS {
        received
            .wait_for(kill * step, Duration::from_secs(120))
            .await;
        hub.kill9();
        *hub = HubProcess::start(env).await;
    }
}

fn assert_exactly_once(received: &Received, ids: &[String]) {
    let missing = ids.iter().filter(|id| !received.contains(id)).count();
    assert_eq!(missing, 0, "envelopes lost");
    assert_eq!(received.distinct(), ids.len());
    assert!(
        received.handed_twice().is_empty(),
        "an envelope was handed over twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_hub_during_grpc_ingress_loses_and_duplicates_nothing() {
    with_env(TestEnv::new("crashgrpc"), |env| async move {
        let identities = env.provision_users(&["ncl-royal-free"]).await;
        let mut hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_amqp(identities[0].clone());
        let envelopes: Vec<_> = (0..COUNT)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        let sender = tokio::spawn(traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            1000,
            Duration::from_secs(300),
        ));
        kill_repeatedly(&env, &mut hub, &receiver.received, COUNT / (KILLS + 2)).await;
        let answers = sender.await.expect("sender");
        assert_eq!(answers.len(), COUNT, "every envelope answered in the end");
        let received = receiver.received.clone();
        received.wait_for(COUNT, Duration::from_secs(120)).await;
        let stats = receiver.stop().await;
        assert_exactly_once(&received, &ids);
        eprintln!(
            "transport duplicates removed by the receiver: {}",
            stats.duplicates
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_hub_during_amqp_ingress_loses_and_duplicates_nothing() {
    with_env(TestEnv::new("crashamqp"), |env| async move {
        let identities = env
            .provision_users(&["nwl-imperial", "ncl-royal-free"])
            .await;
        let mut hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_amqp(identities[1].clone());
        let envelopes: Vec<_> = (0..COUNT)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        let publisher = tokio::spawn(traffic::publish_all_amqp(
            identities[0].clone(),
            envelopes,
            1000,
        ));
        kill_repeatedly(&env, &mut hub, &receiver.received, COUNT / (KILLS + 2)).await;
        publisher.await.expect("publisher");
        let received = receiver.received.clone();
        received.wait_for(COUNT, Duration::from_secs(120)).await;
        let stats = receiver.stop().await;
        assert_exactly_once(&received, &ids);
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
        eprintln!(
            "transport duplicates removed by the receiver: {}",
            stats.duplicates
        );
    })
    .await;
}
