//! A past disclosure explained from the hub's audit: the hub (following a
//! three-node registry) forwards a discharge summary; afterwards the
//! agreement is suspended, reinstated and amended and the patient refuses
//! the recipient. `hub audit` prints the message's audit records, and
//! `registry explain` makes the decision again, as of the registry revision
//! the hub's copy held, and finds it the same. An altered record is found
//! not to be.

use std::process::Command;
use std::time::Duration;

use lhcie_integration_tests::dashboard::{USERS, enable_dashboard};
use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster, synthetic_patient};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};
use serde_json::Value;

fn registry(cluster: &RegistryCluster, args: &[&str]) -> Result<String, String> {
    cluster.cli(args)
}

fn registry_ok(cluster: &RegistryCluster, args: &[&str]) -> String {
    cluster.cli_ok(args)
}

/// `hub audit <message-id>` as the operator: the records, as JSON.
fn hub_audit(env: &TestEnv, dashboard: std::net::SocketAddr, message_id: &str) -> Value {
    let password = env.dir().join("operator.password");
    std::fs::write(&password, format!("{}\n", USERS[0].password)).unwrap();
    let output = Command::new(lhcie_integration_tests::binary("hub"))
        .arg("audit")
        .args(["--url", &format!("http://{dashboard}")])
        .args(["--user", USERS[0].name])
        .arg("--password-file")
        .arg(&password)
        .arg(message_id)
        .output()
        .expect("hub audit");
    assert!(
        output.status.success(),
        "hub audit: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the audit records as JSON")
}

fn sign(cluster: &RegistryCluster, version: &str) {
    for (party, organisation) in [("region:NWL", "RYJ"), ("region:NCL", "RAL")] {
        registry_ok(
            cluster,
            &[
                "isa",
                "sign",
                "--id",
                "ISA-TEST-1",
                "--version",
                version,
                "--party",
                party,
                "--signer",
                "Dr A. Guardian",
                "--role",
                "Caldicott Guardian",
                "--organisation",
                organisation,
            ],
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_message_is_explained_from_the_audit_after_everything_changed() {
    with_env(TestEnv::new("explain"), |env| async move {
        let cluster = RegistryCluster::start(
            env.dir(),
            &env.topology_file(),
            3,
            &ClusterOptions::default(),
        );
        cluster.leader(Duration::from_secs(20)).await;
        cluster.seed(&env.policy_file(), &env.topology_file());
        env.use_registry(&cluster.endpoints(), 2000);
        let dashboard = enable_dashboard(&env, &USERS);
        let _hub = HubProcess::start(&env).await;

        let nhs = synthetic_patient(5150);
        let envelope = with_patient(discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0), &nhs);
        let id = envelope.message_id.clone();
        traffic::submit_all(
            env.connection("nwl-imperial"),
            vec![envelope],
            1,
            Duration::from_secs(30),
        )
        .await;

        // Afterwards: suspended, reinstated, amended (results only), and
        // the patient refuses the Royal Free.
        for verb in ["suspend", "reinstate"] {
            registry_ok(
                &cluster,
                &["isa", verb, "--id", "ISA-TEST-1", "--reason", "review"],
            );
        }
        registry_ok(
            &cluster,
            &[
                "isa",
                "amend",
                "--id",
                "ISA-TEST-1",
                "--title",
                "Results only",
                "--party",
                "region:NWL",
                "--party",
                "region:NCL",
                "--purpose",
                "direct-care",
                "--category",
                "result",
                "--legal-basis",
                "test",
                "--from",
                "2020-01-01",
            ],
        );
        sign(&cluster, "2");
        registry_ok(
            &cluster,
            &[
                "directive",
                "set",
                "--id",
                "DIR-EXPLAIN-1",
                "--nhs",
                &nhs,
                "--deny-organisation",
                "RAL",
                "--from",
                "2020-01-01",
                "--source",
                "patient-account",
            ],
        );
        let now = registry_ok(
            &cluster,
            &[
                "decide",
                "--nhs",
                &nhs,
                "--sender",
                "RYJ",
                "--recipient",
                "RAL",
                "--category",
                "discharge-summary",
            ],
        );
        assert!(now.starts_with("DENY"), "today it would not flow: {now}");

        // The hub's record names the revision its copy held.
        let records = hub_audit(&env, dashboard, &id);
        let recipient = &records[0]["outcome"]["routed"]["recipients"][0];
        assert_eq!(recipient["decision"], "forwarded", "{records}");
        let revision = recipient["registry_revision"].as_u64().expect("a revision");
        assert!(revision > 0);

        let file = env.dir().join("audit.json");
        std::fs::write(&file, records.to_string()).unwrap();
        let explained = registry_ok(&cluster, &["explain", "--audit", file.to_str().unwrap()]);
        assert!(
            explained.contains(&format!("as of registry revision {revision}")),
            "{explained}"
        );
        assert!(
            explained.contains("RAL (ncl-royal-free): forwarded: implied-consent, ISA-TEST-1 v1"),
            "{explained}"
        );
        assert!(
            explained.contains("PERMIT: ISA-TEST-1 version 1 covers the flow"),
            "{explained}"
        );
        assert!(explained.contains("the same decision"), "{explained}");

        // A record that does not match what the registry says is caught.
        let mut altered = records.clone();
        altered[0]["outcome"]["routed"]["recipients"][0]["reason"] =
            "patient-allowed-organisation".into();
        std::fs::write(&file, altered.to_string()).unwrap();
        let refused =
            registry(&cluster, &["explain", "--audit", file.to_str().unwrap()]).unwrap_err();
        assert!(
            refused.contains("NOT the same decision")
                && refused.contains("1 decision(s) were not reproduced"),
            "{refused}"
        );
    })
    .await;
}
