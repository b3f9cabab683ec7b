//! The hub deciding from its copy of the registry, with the real registry
//! process and the real RabbitMQ: a patient's change of mind reaches the
//! hub (and the next envelope is denied), and a hub cut off from the
//! registry holds messages and says it is not ready until the feed is back.
//! The registry runs with mutual TLS and the hub follows it as
//! `urn:lhcie:service:hub`.

use std::time::{Duration, Instant};

use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::proxy::CuttableProxy;
use lhcie_integration_tests::registry::{
    ClusterOptions, RegistryCluster, deny_organisation, set_directive, synthetic_patient,
};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use lhcie_proto::hub as hubpb;
use lhcie_proto::registry as pb;
use lhcie_registry_client::Retry;

/// The disposition of the copy for RAL.
fn royal_free(answer: &hubpb::SubmitResponse) -> hubpb::Disposition {
    match &answer.outcome {
        Some(hubpb::submit_response::Outcome::Accepted(accepted)) => accepted
            .recipients
            .iter()
            .find(|r| r.ods_code == "RAL")
            .map(|r| hubpb::Disposition::try_from(r.disposition).unwrap())
            .expect("RAL is a recipient"),
        other => panic!("expected acceptance, got {other:?}"),
    }
}

async fn send_to_royal_free(env: &TestEnv, nhs: &str) -> hubpb::Disposition {
    let envelope = with_patient(discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0), nhs);
    let id = envelope.message_id.clone();
    let answers = traffic::submit_all(
        env.connection("nwl-imperial"),
        vec![envelope],
        1,
        Duration::from_secs(30),
    )
    .await;
    royal_free(&answers[&id])
}

async fn hub_revision(hub: &HubProcess) -> u64 {
    hub.get_json("/registry").await["revision"]
        .as_u64()
        .unwrap_or(0)
}

/// A registry node with mutual TLS; the hub follows it as
/// `urn:lhcie:service:hub` (`env.use_registry_with_tls`).
fn start_registry(env: &TestEnv) -> RegistryCluster {
    RegistryCluster::start(
        env.dir(),
        &env.topology_file(),
        1,
        &ClusterOptions {
            tls: Some(env.registry_pki()),
            ..ClusterOptions::default()
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_denying_an_organisation_reaches_the_hub_and_the_next_envelope_is_denied() {
    with_env(TestEnv::new("reg-deny"), |env| async move {
        let cluster = start_registry(&env);
        cluster.leader(Duration::from_secs(20)).await;
        cluster.seed(&env.policy_file(), &env.topology_file());
        env.use_registry_with_tls(&cluster.endpoints(), 2000);
        let hub = HubProcess::start(&env).await;
        let registry = hub.get_json("/registry").await;
        assert_eq!(registry["source"], "registry");
        assert_eq!(registry["agreements"], 1);

        let nhs = synthetic_patient(777);
        assert_eq!(send_to_royal_free(&env, &nhs).await, hubpb::Disposition::Forwarded);

        // The patient says no to the Royal Free; time it to the hub.
        let client = cluster.client("patient-account");
        let asked = Instant::now();
        let revision = set_directive(&client, &deny_organisation("DIR-WD-1", &nhs, "RAL"))
            .await
            .expect("directive recorded");
        let committed = asked.elapsed();
        while hub_revision(&hub).await < revision {
            assert!(asked.elapsed() < Duration::from_secs(5), "the change did not reach the hub");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let reached = asked.elapsed();
        println!("directive committed in {committed:?}, in the hub's copy {reached:?} after it was asked for");

        assert_eq!(send_to_royal_free(&env, &nhs).await, hubpb::Disposition::NotPermitted);

        // Withdrawing the directive lets information flow again.
        let request = pb::WithdrawDirectiveRequest {
            directive_id: "DIR-WD-1".into(),
            reason: "changed my mind".into(),
        };
        let revision = client
            .call(Retry::OnlyIfNotSent, |mut c| {
                let request = client.request(request.clone());
                async move { c.withdraw_directive(request).await }
            })
            .await
            .unwrap()
            .revision;
        while hub_revision(&hub).await < revision {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(send_to_royal_free(&env, &nhs).await, hubpb::Disposition::Forwarded);
        // The seeded patient who denied the Royal Free stays denied.
        assert_eq!(
            send_to_royal_free(&env, lhcie_integration_tests::env::DENIED_PATIENT).await,
            hubpb::Disposition::NotPermitted
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_cut_off_from_the_registry_holds_messages_until_its_copy_is_current_again() {
    with_env(TestEnv::new("reg-cut"), |env| async move {
        let cluster = start_registry(&env);
        cluster.leader(Duration::from_secs(20)).await;
        cluster.seed(&env.policy_file(), &env.topology_file());
        let proxy = CuttableProxy::start(cluster.endpoints()[0].parse().unwrap()).await;
        env.use_registry_with_tls(&[proxy.address.to_string()], 1000);
        let hub = HubProcess::start(&env).await;

        // Cut the hub's feed: within the bound it fails closed and says so.
        proxy.cut();
        let cut_at = Instant::now();
        loop {
            let (status, body) = hub.get("/readyz").await.unwrap();
            if status == 503 {
                assert!(body.contains("consent registry"), "{body}");
                break;
            }
            assert!(
                cut_at.elapsed() < Duration::from_secs(5),
                "still ready: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("not ready {:?} after the cut (bound 1 s)", cut_at.elapsed());

        // While it is cut off, a patient says no to the Royal Free.
        let denied = synthetic_patient(9001);
        let allowed = synthetic_patient(9002);
        set_directive(
            &cluster.client("patient-account"),
            &deny_organisation("DIR-CUT-1", &denied, "RAL"),
        )
        .await
        .expect("directive recorded");

        // Messages for both wait: nothing is forwarded or refused on a
        // stale copy.
        let envelopes = vec![
            with_patient(
                discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0),
                &denied,
            ),
            with_patient(
                discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0),
                &allowed,
            ),
        ];
        let ids: Vec<String> = envelopes.iter().map(|e| e.message_id.clone()).collect();
        let connection = env.connection("nwl-imperial");
        let sending = tokio::spawn(async move {
            traffic::submit_all(connection, envelopes, 10, Duration::from_secs(60)).await
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!sending.is_finished(), "the hub answered on a stale copy");
        let royal_free_queue = env.names().egress_queue(&"ncl-royal-free".parse().unwrap());
        assert_eq!(traffic::queue_depth(&env, &royal_free_queue).await, 0);

        // Restored: the held messages are decided on the current copy.
        proxy.restore();
        let answers = sending.await.unwrap();
        assert_eq!(
            royal_free(&answers[&ids[0]]),
            hubpb::Disposition::NotPermitted
        );
        assert_eq!(royal_free(&answers[&ids[1]]), hubpb::Disposition::Forwarded);
        hub.wait_ready(Duration::from_secs(10)).await;
        assert_eq!(traffic::queue_depth(&env, &royal_free_queue).await, 1);
    })
    .await;
}
