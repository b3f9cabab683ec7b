//! Lifecycle: graceful shutdown finishes what is in flight; readiness says
//! when the broker is unreachable.

use std::time::Duration;

use lhcie_integration_tests::env::{Options, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::traffic::{self, discharge_summary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_work_and_a_restart_takes_the_rest() {
    with_env(TestEnv::new("sigterm"), |env| async move {
        let identities = env.provision_users(&["ncl-royal-free"]).await;
        let mut hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_amqp(identities[0].clone());
        let count = 5_000;
        let envelopes: Vec<_> = (0..count)
            .map(|_| discharge_summary("nwl-imperial", "RYJ", &["RAL"], 1500))
            .collect();
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        let sender = tokio::spawn(traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            1000,
            Duration::from_secs(120),
        ));
        receiver
            .received
            .wait_for(1_000, Duration::from_secs(60))
            .await;
        let status = hub.terminate();
        assert!(
            status.success(),
            "the hub did not exit cleanly: {status:?}\n{}",
            hub.log()
        );
        let log = hub.log();
        assert!(
            log.contains("shutting down: finishing work in flight") && log.contains("hub stopped"),
            "{log}"
        );
        // Everything the hub answered before stopping was delivered; the
        // sender resubmits the rest to the restarted hub.
        hub = HubProcess::start(&env).await;
        let answers = sender.await.unwrap();
        assert_eq!(answers.len(), count);
        let received = receiver.received.clone();
        received.wait_for(count, Duration::from_secs(60)).await;
        receiver.stop().await;
        assert!(ids.iter().all(|id| received.contains(id)));
        assert!(received.handed_twice().is_empty());
        drop(hub);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_false_while_the_broker_is_unreachable() {
    let (closed_port, _held) = lhcie_integration_tests::ports::closed_port();
    let options = Options {
        hub_broker_url: format!("amqp://guest:guest@127.0.0.1:{closed_port}/%2f"),
        ..Options::default()
    };
    with_env(
        TestEnv::with_options("unready", options),
        |env| async move {
            let hub = HubProcess::spawn(&env);
            // Alive (it answers) but not ready, and it says why.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            let body = loop {
                if let Ok((status, body)) = hub.get("/readyz").await {
                    assert_eq!(status, 503, "ready without a broker: {body}");
                    // "connecting" until the first attempt fails, then why.
                    if body.contains("cannot connect") {
                        break body;
                    }
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no reason given within 20 s:\n{}",
                    hub.log()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            assert!(body.contains("broker:"), "{body}");
            assert!(
                !body.contains("guest:guest"),
                "the readiness reason leaked the broker password: {body}"
            );
            assert_eq!(hub.get("/healthz").await.unwrap().0, 200);
            // Adapters are told to come back later rather than being accepted.
            let error = async {
                let mut client = env
                    .connection("nwl-imperial")
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                let request = tokio_stream::iter(vec![lhcie_proto::hub::SubmitRequest {
                    envelope: Some(discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0)),
                }]);
                client
                    .submit(request)
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{:?}", s.code()))
            }
            .await
            .unwrap_err();
            assert!(error.contains("Unavailable"), "{error}");
        },
    )
    .await;
}
