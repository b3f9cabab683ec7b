//! The `hub` binary as a real process: configuration checks and the broker
//! bootstrap against the real RabbitMQ.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lhcie_broker::{BrokerTopology, Declaration};
use lhcie_config::{BrokerConfig, HubConfig, Topology};

fn hub(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hub"))
        .args(args)
        .env("LHCIE_LOG", "warn")
        .output()
        .expect("the hub binary runs")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The hub.toml sections every test file needs besides topology and broker.
const REST: &str = "[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n[admin]\nlisten = \"127.0.0.1:0\"\n[store]\npath = \"store\"\n";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_config_accepts_the_demo() {
    let output = hub(&[
        "check-config",
        repo().join("config/demo/hub.toml").to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("5 regions, 35 exchanges"), "{stdout}");
    assert!(
        stdout.contains("consent registry at 127.0.0.1:50071"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("guest:guest"),
        "the broker password leaked: {stdout}"
    );
}

#[test]
fn check_config_names_file_key_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let reference = repo().join("config/reference/london_nhs_trusts.csv");
    std::fs::write(
        dir.path().join("topology.toml"),
        format!(
            r#"
ods_reference = ["{}"]
[[region]]
code = "NCL"
name = "North Central London"
[[exchange]]
id = "ncl-north-mid"
name = "North Middlesex"
region = "NCL"
organisations = ["RAP"]
[exchange.adapter]
kind = "native"
"#,
            reference.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("policy.toml"), "").unwrap();
    std::fs::write(
        dir.path().join("hub.toml"),
        format!("topology = \"topology.toml\"\npolicy = \"policy.toml\"\n[broker]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\n{REST}"),
    )
    .unwrap();
    let output = hub(&[
        "check-config",
        dir.path().join("hub.toml").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("topology.toml"), "{stderr}");
    assert!(
        stderr.contains("exchange[0] (ncl-north-mid).organisations[0]: RAP (NORTH MIDDLESEX UNIVERSITY HOSPITAL NHS TRUST) closed on 2024-12-31"),
        "{stderr}"
    );
}

#[test]
fn check_config_refuses_unknown_keys_in_the_hub_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hub.toml"),
        "topology = \"topology.toml\"\npolicy = \"policy.toml\"\n[broker]\nurl = \"amqp://127.0.0.1\"\nprefetch = 10\n",
    )
    .unwrap();
    let output = hub(&[
        "check-config",
        dir.path().join("hub.toml").to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("hub.toml:5: broker.prefetch: unknown field `prefetch`"),
        "{stderr}"
    );
}

#[test]
fn bootstrap_broker_runs_twice_against_the_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!(
        "test-cli-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let hub_toml = dir.path().join("hub.toml");
    std::fs::write(
        &hub_toml,
        format!(
            "topology = \"{}\"\npolicy = \"{}\"\n[broker]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\nprefix = \"{prefix}\"\n{REST}",
            repo().join("config/demo/topology.toml").display(),
            repo().join("config/demo/policy.toml").display()
        ),
    )
    .unwrap();
    let first = hub(&["bootstrap-broker", hub_toml.to_str().unwrap()]);
    let second = hub(&["bootstrap-broker", hub_toml.to_str().unwrap()]);
    cleanup(&hub_toml);
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(second.status.success(), "{}", text(&second.stderr));
    let stdout = text(&second.stdout);
    assert!(stdout.contains("declared 73 quorum queues"), "{stdout}");
    assert!(stdout.contains(&prefix), "{stdout}");
}

#[test]
fn bootstrap_broker_reports_an_unreachable_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let hub_toml = dir.path().join("hub.toml");
    std::fs::write(
        &hub_toml,
        format!(
            "topology = \"{}\"\npolicy = \"{}\"\n[broker]\nurl = \"amqp://guest:secret@127.0.0.1:{port}/%2f\"\n{REST}",
            repo().join("config/demo/topology.toml").display(),
            repo().join("config/demo/policy.toml").display()
        ),
    )
    .unwrap();
    let output = hub(&["bootstrap-broker", hub_toml.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot connect to the broker at amqp://guest:***@127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("secret"), "{stderr}");
}

/// Deletes what the bootstrap declared.
fn cleanup(hub_toml: &Path) {
    let hub = HubConfig::load(hub_toml).unwrap();
    let topology = Topology::load(&hub.topology).unwrap();
    let plan = BrokerTopology::from_config(&hub.broker, &topology).declarations();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let connection = lhcie_broker::connect(
            &BrokerConfig::new(hub.broker.url.clone()),
            "cli test cleanup",
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        for declaration in plan {
            match declaration {
                Declaration::Queue { name, .. } => {
                    channel
                        .queue_delete(name.as_str().into(), Default::default())
                        .await
                        .unwrap();
                }
                Declaration::Exchange { name, .. } => {
                    channel
                        .exchange_delete(name.as_str().into(), Default::default())
                        .await
                        .unwrap();
                }
                Declaration::Binding { .. } => {}
            }
        }
        let _ = connection.close(200, "done".into()).await;
    });
}
