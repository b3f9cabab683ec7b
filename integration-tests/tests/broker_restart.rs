//! The broker restarts mid-stream: the hub and the adapters reconnect, and
//! nothing is lost. This test stops and starts the shared RabbitMQ
//! application, so it must run alone (`make test` runs it after the rest).

use std::process::Command;
use std::time::Duration;

use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary};

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Starts the RabbitMQ application again even if the test fails.
struct RestartGuard;

impl Drop for RestartGuard {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_stream_loses_nothing() {
    with_env(TestEnv::new("brokerrestart"), |env| async move {
        let identities = env
            .provision_users(&["nwl-imperial", "ncl-royal-free", "ncl-whittington"])
            .await;
        let hub = HubProcess::start(&env).await;
        let royal_free = traffic::receive_amqp(identities[1].clone());
        let whittington = traffic::receive_amqp(identities[2].clone());
        let count = 6_000;
        let by_grpc: Vec<_> = (0..count)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let by_amqp: Vec<_> = (0..count)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RKE"], 1500))
            .collect();
        let grpc_ids: Vec<String> = by_grpc.iter().map(|e| e.message_id.clone()).collect();
        let amqp_ids: Vec<String> = by_amqp.iter().map(|e| e.message_id.clone()).collect();
        let grpc_sender = tokio::spawn(traffic::submit_all(
            env.connection("nwl-imperial"),
            by_grpc,
            500,
            Duration::from_secs(300),
        ));
        let amqp_sender = tokio::spawn(traffic::publish_all_amqp(
            identities[0].clone(),
            by_amqp,
            500,
        ));
        royal_free
            .received
            .wait_for(1_000, Duration::from_secs(60))
            .await;

        let guard = RestartGuard;
        rabbitmqctl(&["stop_app"]);
        // The hub notices and says it is not ready, and why. (A stopping
        // broker first cancels consumers, so "not consuming" may come
        // before the lost connection is noticed.)
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = hub.get("/readyz").await.expect("admin endpoint");
            if status == 503 && body.contains("broker:") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "readiness never said the broker was unreachable (last: {status} {body})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup", "--timeout", "60"]);
        drop(guard);
        hub.wait_ready(Duration::from_secs(60)).await;

        let answers = grpc_sender.await.unwrap();
        assert_eq!(answers.len(), count);
        amqp_sender.await.unwrap();
        let (rf, wh) = (royal_free.received.clone(), whittington.received.clone());
        let arrived = rf.arrived(count, Duration::from_secs(120)).await && wh.arrived(count, Duration::from_secs(60)).await;
        if !arrived {
            panic!(
                "after the restart {} of {count} (gRPC path) and {} of {count} (AMQP path) arrived.\nqueues:\n{}readiness: {:?}\nhub log (tail):\n{}",
                rf.distinct(),
                wh.distinct(),
                traffic::describe_queues(&env).await,
                hub.get("/readyz").await.ok(),
                hub.log().lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let rf_stats = royal_free.stop().await;
        let wh_stats = whittington.stop().await;
        assert!(
            grpc_ids.iter().all(|id| rf.contains(id)),
            "gRPC-submitted envelopes lost"
        );
        assert!(
            amqp_ids.iter().all(|id| wh.contains(id)),
            "AMQP-submitted envelopes lost"
        );
        assert!(rf.handed_twice().is_empty() && wh.handed_twice().is_empty());
        eprintln!(
            "transport duplicates removed by receivers: {} (gRPC path), {} (AMQP path)",
            rf_stats.duplicates, wh_stats.duplicates
        );
    })
    .await;
}
