//! Independent clients (Python's grpcio, from our .proto files only, and
//! pika) talk to the hub and to the consent registry: mutual TLS and the
//! wire contracts work outside Rust. Needs the Python environment `make test` prepares (`.venv`).

use std::process::Command;
use std::time::Duration;

use lhcie_integration_tests::env::{TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::registry::{ClusterOptions, RegistryCluster};
use lhcie_integration_tests::traffic;
use lhcie_integration_tests::{python, repository};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_grpcio_and_pika_clients_route_through_the_hub() {
    with_env(TestEnv::new("python"), |env| async move {
        let identities = env
            .provision_users(&["nwl-imperial", "ncl-royal-free"])
            .await;
        let _hub = HubProcess::start(&env).await;
        let receiver = traffic::receive_amqp(identities[1].clone());
        let exchange = "nwl-imperial".parse().unwrap();
        let output = Command::new(python())
            .arg(repository().join("integration-tests/python/hub_client.py"))
            .args(["--proto", &repository().join("proto").display().to_string()])
            .args(["--endpoint", &format!("127.0.0.1:{}", env.grpc_port)])
            .args(["--ca", &env.pki.ca_cert().display().to_string()])
            .args([
                "--cert",
                &env.pki.exchange_cert(&exchange).display().to_string(),
            ])
            .args([
                "--key",
                &env.pki.exchange_key(&exchange).display().to_string(),
            ])
            .args(["--amqp-url", &identities[0].broker.url])
            .args(["--amqp-user", &env.names().adapter_user(&exchange)])
            .args(["--ingress-exchange", &env.names().ingress_exchange()])
            .output()
            .expect("running the Python client");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "the Python client failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let step = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("STEP {name} ")))
                .unwrap_or_else(|| panic!("no {name} step in:\n{stdout}"))
                .to_owned()
        };
        let forwarded = step("grpc-forwarded");
        assert_eq!(
            step("grpc-rejected"),
            "patient.nhs_number: NHS number fails the modulus 11 check"
        );
        let published = step("amqp-published");
        // Both valid envelopes reach the Royal Free's exchange.
        receiver.received.wait_for(2, Duration::from_secs(30)).await;
        assert!(receiver.received.contains(&forwarded));
        assert!(receiver.received.contains(&published));
        receiver.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_grpcio_client_records_decides_and_watches_on_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    lhcie_integration_tests::env::write_topology(dir.path());
    lhcie_integration_tests::env::write_policy(dir.path());
    let topology = dir.path().join("topology.toml");
    lhcie_integration_tests::install_crypto();
    let pki = lhcie_tls::PkiLayout::new(dir.path().join("pki"));
    let ca = pki.generate(&[]).unwrap();
    pki.generate_services(&ca, &[1], &["registry-admin"])
        .unwrap();
    let cluster = RegistryCluster::start(
        dir.path(),
        &topology,
        1,
        &ClusterOptions {
            tls: Some(pki.clone()),
            ..ClusterOptions::default()
        },
    );
    cluster.leader(Duration::from_secs(20)).await;
    cluster.seed(&dir.path().join("policy.toml"), &topology);
    let output = Command::new(python())
        .arg(repository().join("integration-tests/python/registry_client.py"))
        .args(["--proto", &repository().join("proto").display().to_string()])
        .args(["--endpoint", &cluster.endpoints()[0]])
        .args(["--nhs-number", "9000000017"])
        .args(["--ca", &pki.ca_cert().display().to_string()])
        .args([
            "--cert",
            &pki.service_cert("registry-admin").display().to_string(),
        ])
        .args([
            "--key",
            &pki.service_key("registry-admin").display().to_string(),
        ])
        .output()
        .expect("running the Python client");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the Python client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for step in [
        "status",
        "set-directive",
        "decide",
        "watch",
        "anonymous-change",
    ] {
        assert!(
            stdout.contains(&format!("STEP {step} ")),
            "no {step} step in:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("reason=patient-denied-organisation isa=ISA-TEST-1"),
        "{stdout}"
    );
}
