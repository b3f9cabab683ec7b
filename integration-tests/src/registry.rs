//! Registry nodes as child processes, and clusters of them on loopback
//! ports.

use crate::free_port;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use lhcie_proto::registry as pb;
use lhcie_proto::registry::consent_registry_client::ConsentRegistryClient;
use lhcie_registry_client::{RegistryClient, RegistryTls};
use lhcie_tls::PkiLayout;

/// The registry TLS of a client presenting `service`'s certificate.
pub fn service_tls(pki: &PkiLayout, service: &str) -> RegistryTls {
    RegistryTls {
        ca: pki.ca_cert(),
        cert: pki.service_cert(service),
        key: pki.service_key(service),
        nodes: Vec::new(),
    }
}

/// The CLI arguments for mutual TLS as `registry-admin` (none without TLS).
pub fn cli_tls_args(pki: Option<&PkiLayout>) -> Vec<String> {
    match pki {
        Some(pki) => vec![
            "--ca".into(),
            pki.ca_cert().display().to_string(),
            "--cert".into(),
            pki.service_cert("registry-admin").display().to_string(),
            "--key".into(),
            pki.service_key("registry-admin").display().to_string(),
        ],
        None => Vec::new(),
    }
}

impl RegistryCluster {
    /// The `registry` administration tool against this cluster (as
    /// `registry-admin`, with the cluster's TLS if it has any): its standard
    /// output, or, if it failed, its standard output and error.
    pub fn cli(&self, args: &[&str]) -> Result<String, String> {
        let output = Command::new(crate::binary("registry"))
            .args(args)
            .args(["--registry", &self.endpoints().join(",")])
            .args(cli_tls_args(self.tls.as_ref()))
            .output()
            .expect("registry CLI");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            Ok(stdout)
        } else {
            Err(format!(
                "{stdout}{}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    /// [`cli`](Self::cli), which must succeed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        self.cli(args)
            .unwrap_or_else(|e| panic!("registry {args:?} failed: {e}"))
    }
}

/// A channel to one registry node's API, with mutual TLS as `service` when
/// `pki` is given.
pub async fn node_channel(
    address: &str,
    pki: Option<&PkiLayout>,
    service: &str,
) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    match pki {
        Some(pki) => {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(
                    std::fs::read(pki.ca_cert()).expect("ca.pem"),
                ))
                .identity(tonic::transport::Identity::from_pem(
                    std::fs::read(pki.service_cert(service)).expect("service certificate"),
                    std::fs::read(pki.service_key(service)).expect("service key"),
                ));
            tonic::transport::Endpoint::from_shared(format!("https://{address}"))?
                .tls_config(tls)?
                .connect()
                .await
        }
        None => {
            tonic::transport::Endpoint::from_shared(format!("http://{address}"))?
                .connect()
                .await
        }
    }
}

/// How the nodes of a test cluster are configured.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `implied` or `explicit-opt-in`.
    pub consent_model: &'static str,
    /// Build a snapshot (and purge the log) after this many entries.
    pub snapshot_after_entries: u64,
    /// Watch heartbeat interval, in milliseconds.
    pub watch_heartbeat_ms: u64,
    /// Changes kept for reconnecting watchers.
    pub change_log_capacity: u64,
    /// Log entries kept behind a snapshot.
    pub keep_entries_after_snapshot: u64,
    /// Serve each node's Prometheus endpoint (`[metrics]`).
    pub metrics: bool,
    /// Mutual TLS on both ports, with this PKI's `registry/node-<id>`
    /// certificates (see `TestEnv::registry_pki`); clients of the cluster
    /// present `services/registry-admin`. None: plaintext on loopback, every
    /// caller acting as `registry-admin` (tests that are not about
    /// security).
    pub tls: Option<PkiLayout>,
    /// With `tls`: the nodes read the CA's revocation list
    /// (`lhcie_tls::revocation::crl_path` of that PKI; the test writes it).
    pub crl: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            consent_model: "implied",
            snapshot_after_entries: 20_000,
            watch_heartbeat_ms: 100,
            change_log_capacity: 1_000_000,
            keep_entries_after_snapshot: 1000,
            metrics: false,
            tls: None,
            crl: false,
        }
    }
}

/// One node.
pub struct RegistryNode {
    /// Its id.
    pub id: u64,
    /// Its Raft port.
    pub raft_port: u16,
    /// Its API port.
    pub api_port: u16,
    /// Its metrics port, if [`ClusterOptions::metrics`].
    pub metrics_port: Option<u16>,
    config: PathBuf,
    data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: u32,
    tls: Option<PkiLayout>,
}

impl RegistryNode {
    /// `host:port` of its API.
    pub fn api(&self) -> String {
        format!("127.0.0.1:{}", self.api_port)
    }

    /// The address of its `/metrics` endpoint, if it serves one.
    pub fn metrics(&self) -> Option<SocketAddr> {
        self.metrics_port
            .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
    }

    /// Starts (or restarts) the process.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node {} is running", self.id);
        self.starts += 1;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("registry log");
        let child = Command::new(crate::binary("registry"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("LHCIE_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting a registry node");
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs.
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// Its data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its status, straight from it (not following the leader).
    pub async fn status(&self) -> Option<pb::StatusResponse> {
        let channel = node_channel(&self.api(), self.tls.as_ref(), "registry-admin")
            .await
            .ok()?;
        let mut client = ConsentRegistryClient::new(channel);
        let call = client.status(pb::StatusRequest {});
        tokio::time::timeout(Duration::from_secs(2), call)
            .await
            .ok()?
            .ok()
            .map(|r| r.into_inner())
    }
}

impl Drop for RegistryNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A cluster of registry processes on loopback ports.
pub struct RegistryCluster {
    /// Its nodes, by position (node id = position + 1).
    pub nodes: Vec<RegistryNode>,
    /// Its PKI, when the nodes use mutual TLS.
    pub tls: Option<PkiLayout>,
}

impl RegistryCluster {
    /// Configures `size` nodes in `dir` (the topology is `topology`), and
    /// starts them all.
    pub fn start(dir: &Path, topology: &Path, size: usize, options: &ClusterOptions) -> Self {
        let mut cluster = Self::configure(dir, topology, size, size, options);
        for node in &mut cluster.nodes {
            node.start();
        }
        cluster
    }

    /// Configures `size` nodes of which the first `initial` form the
    /// cluster (the others are added later), starting none.
    pub fn configure(
        dir: &Path,
        topology: &Path,
        size: usize,
        initial: usize,
        options: &ClusterOptions,
    ) -> Self {
        let ports: Vec<(u16, u16)> = (0..size).map(|_| (free_port(), free_port())).collect();
        let members: String = ports
            .iter()
            .take(initial)
            .enumerate()
            .map(|(i, (raft, api))| {
                format!(
                    "[[cluster.initial_members]]\nid = {}\nraft = \"127.0.0.1:{raft}\"\napi = \"127.0.0.1:{api}\"\n",
                    i + 1
                )
            })
            .collect();
        let nodes = ports
            .iter()
            .enumerate()
            .map(|(i, (raft_port, api_port))| {
                let id = i as u64 + 1;
                let data = dir.join(format!("registry-{id}"));
                let config = dir.join(format!("registry-{id}.toml"));
                let metrics_port = options.metrics.then(free_port);
                let metrics = metrics_port
                    .map(|port| format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"))
                    .unwrap_or_default();
                let cluster = match (i < initial, initial > 1) {
                    (true, true) => members.clone(),
                    (true, false) => String::new(),
                    (false, _) => "[cluster]\njoin = true\n".to_owned(),
                };
                let security = match &options.tls {
                    Some(pki) => format!(
                        "[tls]\nca = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n{}",
                        pki.ca_cert().display(),
                        pki.registry_node_cert(id).display(),
                        pki.registry_node_key(id).display(),
                        if options.crl {
                            format!(
                                "crl = \"{}\"\n",
                                lhcie_tls::revocation::crl_path(pki).display()
                            )
                        } else {
                            String::new()
                        }
                    ),
                    None => String::new(),
                };
                let plaintext = if options.tls.is_some() {
                    ""
                } else {
                    "insecure_plaintext = true\ninsecure_acts_as = \"registry-admin\"\n"
                };
                std::fs::write(
                    &config,
                    format!(
                        r#"node_id = {id}
topology = "{topology}"
data_dir = "{data}"
consent_model = "{model}"
[raft]
listen = "127.0.0.1:{raft_port}"
heartbeat_ms = 100
election_timeout_min_ms = 500
election_timeout_max_ms = 1000
snapshot_after_entries = {snapshot}
keep_entries_after_snapshot = {keep}
[api]
listen = "127.0.0.1:{api_port}"
{plaintext}watch_heartbeat_ms = {heartbeat}
[store]
change_log_capacity = {changes}
{metrics}{security}{cluster}"#,
                        topology = topology.display(),
                        data = data.display(),
                        model = options.consent_model,
                        snapshot = options.snapshot_after_entries,
                        heartbeat = options.watch_heartbeat_ms,
                        changes = options.change_log_capacity,
                        keep = options.keep_entries_after_snapshot,
                    ),
                )
                .expect("registry config");
                RegistryNode {
                    id,
                    raft_port: *raft_port,
                    api_port: *api_port,
                    metrics_port,
                    log: dir.join(format!("registry-{id}.log")),
                    config,
                    data,
                    child: None,
                    starts: 0,
                    tls: options.tls.clone(),
                }
            })
            .collect();
        Self {
            nodes,
            tls: options.tls.clone(),
        }
    }

    /// Every node's API address.
    pub fn endpoints(&self) -> Vec<String> {
        self.nodes.iter().map(RegistryNode::api).collect()
    }

    /// A leader-following client acting as `actor`.
    pub fn client(&self, actor: &str) -> RegistryClient {
        let client = RegistryClient::new(self.endpoints(), actor).expect("registry client");
        match &self.tls {
            Some(pki) => client
                .with_tls(&service_tls(pki, "registry-admin"))
                .expect("registry TLS"),
            None => client,
        }
    }

    /// The node a majority of running nodes agree leads, once one does.
    pub async fn leader(&self, timeout: Duration) -> u64 {
        let started = Instant::now();
        loop {
            for node in self.nodes.iter().filter(|n| n.running()) {
                if let Some(status) = node.status().await
                    && status.is_leader
                {
                    return status.node_id;
                }
            }
            assert!(
                started.elapsed() < timeout,
                "no leader within {timeout:?}; logs:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The node with this id.
    pub fn node(&mut self, id: u64) -> &mut RegistryNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Waits until `id` has applied `revision`.
    pub async fn wait_revision(&self, id: u64, revision: u64, timeout: Duration) {
        let started = Instant::now();
        let node = &self.nodes[(id - 1) as usize];
        loop {
            if node.status().await.is_some_and(|s| s.revision >= revision) {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "node {id} did not reach revision {revision} within {timeout:?}; its log:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node {} ---\n{}", n.id, n.log()))
            .collect()
    }

    /// Loads the agreements and directives of `policy` with the `registry
    /// seed` command.
    pub fn seed(&self, policy: &Path, topology: &Path) {
        let output = Command::new(crate::binary("registry"))
            .args(["seed", "--policy"])
            .arg(policy)
            .arg("--topology")
            .arg(topology)
            .args(["--registry", &self.endpoints().join(",")])
            .args(["--actor", "test-seed"])
            .args(cli_tls_args(self.tls.as_ref()))
            .output()
            .expect("registry seed");
        assert!(
            output.status.success(),
            "registry seed failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A synthetic test patient's NHS number, as text: the first valid one
/// from base `900 000 000 + n` up (see `NhsNumber::synthetic`).
pub fn synthetic_patient(n: u64) -> String {
    (n..)
        .find_map(lhcie_model::NhsNumber::synthetic)
        .expect("a synthetic number")
        .as_str()
        .to_owned()
}

/// A request recording the patient's refusal of one organisation, from the
/// patient's account, in force since November 2023.
pub fn deny_organisation(id: &str, nhs: &str, organisation: &str) -> pb::SetDirectiveRequest {
    pb::SetDirectiveRequest {
        directive: Some(pb::Directive {
            directive_id: id.into(),
            nhs_number: nhs.into(),
            rule: Some(pb::directive::Rule::DenyOrganisation(organisation.into())),
            valid_from: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            source: pb::DirectiveSource::PatientAccount as i32,
            ..Default::default()
        }),
    }
}

/// Records a directive through the leader and gives the registry revision
/// that holds it.
pub async fn set_directive(
    client: &RegistryClient,
    request: &pb::SetDirectiveRequest,
) -> Result<u64, tonic::Status> {
    client
        .unary(
            lhcie_registry_client::Retry::Idempotent,
            request,
            |mut c, r| async move { c.set_directive(r).await },
        )
        .await
        .map(|reply| reply.revision)
}

/// The registry CLI as information governance staff use it.
pub fn registry_cli(cluster: &RegistryCluster, args: &[&str]) -> String {
    let output = std::process::Command::new(crate::binary("registry"))
        .args(args)
        .args(["--registry", &cluster.endpoints().join(",")])
        .args(["--actor", "caldicott-guardian"])
        .args(cli_tls_args(cluster.tls.as_ref()))
        .output()
        .expect("registry CLI");
    assert!(
        output.status.success(),
        "registry {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Drafts and signs an agreement between North West and South East London
/// for discharge summaries (the test policy has none), with the CLI.
pub fn sign_nwl_sel_agreement(cluster: &RegistryCluster) {
    registry_cli(
        cluster,
        &[
            "isa",
            "draft",
            "--id",
            "ISA-NWL-SEL",
            "--title",
            "NWL and SEL transfers of care",
            "--party",
            "region:NWL",
            "--party",
            "region:SEL",
            "--purpose",
            "direct-care",
            "--category",
            "discharge-summary",
            "--legal-basis",
            "UK GDPR 6(1)(e), 9(2)(h)",
            "--from",
            "2020-01-01",
        ],
    );
    for party in ["region:NWL", "region:SEL"] {
        registry_cli(
            cluster,
            &[
                "isa",
                "sign",
                "--id",
                "ISA-NWL-SEL",
                "--version",
                "1",
                "--party",
                party,
                "--signer",
                "Dr A. Guardian",
                "--role",
                "Caldicott Guardian",
                "--organisation",
                // One of the party's own organisations signs for it.
                if party == "region:SEL" { "RJZ" } else { "RYJ" },
            ],
        );
    }
}
