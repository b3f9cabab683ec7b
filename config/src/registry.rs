//! A registry node's configuration file, and the hub's view of the
//! registry it follows.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lhcie_consent::ConsentModel;
use serde::Deserialize;

use crate::error::Problems;
use crate::{ConfigError, toml_file};

/// One registry node (see `config/demo/registry.toml`). Relative paths are
/// relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// This node's id in the cluster (1 or more, unique).
    pub node_id: u64,
    /// The topology file: decisions need each organisation's exchange and
    /// region.
    pub topology: PathBuf,
    /// Where the node keeps its Raft log, state and snapshots.
    pub data_dir: PathBuf,
    /// How direct-care consent is taken where a patient has said nothing:
    /// `implied` (the UK norm) or `explicit-opt-in`. Every node of a
    /// cluster must say the same; hubs learn it from the watch feed.
    #[serde(default)]
    pub consent_model: ConsentModel,
    /// The internal Raft service between nodes.
    pub raft: RaftSection,
    /// The public registry API.
    pub api: ApiSection,
    /// Who the cluster starts with.
    #[serde(default)]
    pub cluster: ClusterSection,
    /// sled tuning.
    #[serde(default)]
    pub store: RegistryStoreSection,
    /// The Prometheus endpoint (`GET /metrics`, `GET /healthz`); absent:
    /// none is served.
    #[serde(default)]
    pub metrics: Option<RegistryMetricsSection>,
    /// Mutual TLS on both ports (the API and Raft): required unless
    /// `api.insecure_plaintext` (loopback development only).
    #[serde(default)]
    pub tls: Option<RegistryTlsSection>,
}

/// A registry node's mutual TLS, for its API and Raft ports and its calls
/// to the other nodes (see `docs/security.md`, "Registry authorisation").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryTlsSection {
    /// The CA every peer's certificate must chain to: the callers of the
    /// API (services, `urn:lhcie:service:<name>`) and the other nodes
    /// (`urn:lhcie:registry-node:<id>`).
    pub ca: PathBuf,
    /// This node's certificate: a SAN URI `urn:lhcie:registry-node:<node_id>`
    /// and the names it is reached by; used as server and as client.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// A certificate revocation list (PEM) from the CA: a caller or node
    /// whose certificate it lists is refused in the handshake, on both
    /// ports. Re-read when the file changes. Optional.
    #[serde(default)]
    pub crl: Option<PathBuf>,
}

/// The development roles a plaintext node may grant its (unauthenticated)
/// callers: `api.insecure_acts_as`.
pub const INSECURE_ROLES: [&str; 2] = ["hub", "registry-admin"];

/// The internal Raft service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The address other nodes use (`host:port`); defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// How often the leader sends heartbeats, in milliseconds.
    #[serde(default = "default_heartbeat_ms")]
    pub heartbeat_ms: u64,
    /// A follower that hears nothing for a random time between these two
    /// bounds (milliseconds) calls an election.
    #[serde(default = "default_election_min_ms")]
    pub election_timeout_min_ms: u64,
    /// See `election_timeout_min_ms`.
    #[serde(default = "default_election_max_ms")]
    pub election_timeout_max_ms: u64,
    /// Build a snapshot (and purge the log before it) after this many
    /// entries.
    #[serde(default = "default_snapshot_after")]
    pub snapshot_after_entries: u64,
    /// Log entries kept behind a snapshot, so that a follower a little
    /// behind catches up from the log rather than a whole snapshot.
    #[serde(default = "default_keep_after_snapshot")]
    pub keep_entries_after_snapshot: u64,
}

/// The public API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The address clients are sent to when this node leads (`host:port`);
    /// defaults to `listen`.
    #[serde(default)]
    pub advertise: Option<String>,
    /// Loopback development only: both ports without TLS, and no `[tls]`.
    /// Refused unless `api.listen` and `raft.listen` are loopback
    /// addresses. Callers are then `urn:lhcie:service:development`, with
    /// no rights unless `insecure_acts_as` grants some.
    #[serde(default)]
    pub insecure_plaintext: bool,
    /// With `insecure_plaintext`: the service whose rights the development
    /// identity has (`hub` or `registry-admin`); absent, every call but
    /// `Status` is refused.
    #[serde(default)]
    pub insecure_acts_as: Option<String>,
    /// How often a watch stream proves the leader's freshness, in
    /// milliseconds.
    #[serde(default = "default_watch_heartbeat_ms")]
    pub watch_heartbeat_ms: u64,
    /// The most decisions one batch may ask for.
    #[serde(default = "default_max_batch")]
    pub max_decide_batch: usize,
}

/// The members the cluster is first formed with.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// The voters the cluster starts with. Empty: a single-node cluster of
    /// this node. The member with the lowest id forms the cluster on its
    /// first start; later changes go through `registry cluster add/remove`.
    #[serde(default)]
    pub initial_members: Vec<MemberSection>,
    /// This node joins an existing cluster (`registry cluster add`) and
    /// never forms one of its own. Set it on every node added later.
    #[serde(default)]
    pub join: bool,
}

/// A cluster member.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    /// Its node id.
    pub id: u64,
    /// Its Raft address (`host:port`).
    pub raft: String,
    /// Its API address (`host:port`).
    pub api: String,
}

/// sled tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryStoreSection {
    /// sled's page cache, in MiB.
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    /// How many changes are kept for watchers that reconnect; one further
    /// behind is sent the whole state.
    #[serde(default = "default_change_log")]
    pub change_log_capacity: u64,
}

/// The node's Prometheus endpoint (metrics are listed in
/// `docs/metrics.md`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryMetricsSection {
    /// Where to serve `GET /metrics` and `GET /healthz` (plain HTTP;
    /// `127.0.0.1:0` picks a free port). Keep it on a private network.
    pub listen: SocketAddr,
}

impl Default for RegistryStoreSection {
    fn default() -> Self {
        Self {
            cache_mb: default_cache_mb(),
            change_log_capacity: default_change_log(),
        }
    }
}

fn default_heartbeat_ms() -> u64 {
    100
}
fn default_election_min_ms() -> u64 {
    500
}
fn default_election_max_ms() -> u64 {
    1000
}
fn default_snapshot_after() -> u64 {
    20_000
}
fn default_keep_after_snapshot() -> u64 {
    1000
}
fn default_watch_heartbeat_ms() -> u64 {
    200
}
fn default_max_batch() -> usize {
    10_000
}
fn default_cache_mb() -> u64 {
    256
}
fn default_change_log() -> u64 {
    1_000_000
}

impl RegistryConfig {
    /// Reads and validates a registry node's file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml_file::read(file)?;
        let mut problems = Problems::default();
        if config.node_id == 0 {
            problems.add("node_id", "must be 1 or more");
        }
        match (&config.tls, config.api.insecure_plaintext) {
            (None, false) => problems.add(
                "tls",
                "give [tls] (ca, cert, key: mutual TLS on the API and Raft ports), or api.insecure_plaintext = true for loopback development",
            ),
            (Some(_), true) => problems.add(
                "api.insecure_plaintext",
                "cannot be set together with [tls]; choose one",
            ),
            (None, true) => {
                for (key, address) in [
                    ("api.listen", config.api.listen),
                    ("raft.listen", config.raft.listen),
                ] {
                    if !address.ip().is_loopback() {
                        problems.add(
                            "api.insecure_plaintext",
                            format!(
                                "refused with a non-loopback {key} ({address}): plaintext is for loopback development only; give [tls]"
                            ),
                        );
                    }
                }
            }
            (Some(_), false) => {}
        }
        if let Some(role) = &config.api.insecure_acts_as {
            if !config.api.insecure_plaintext {
                problems.add(
                    "api.insecure_acts_as",
                    "only with insecure_plaintext: with [tls] a caller's rights come from its certificate",
                );
            } else if !INSECURE_ROLES.contains(&role.as_str()) {
                problems.add(
                    "api.insecure_acts_as",
                    format!("`{role}`: one of {}", INSECURE_ROLES.join(", ")),
                );
            }
        }
        let raft = &config.raft;
        if raft.heartbeat_ms == 0 || raft.heartbeat_ms * 3 > raft.election_timeout_min_ms {
            problems.add(
                "raft.heartbeat_ms",
                "must be at least 1 and at most a third of election_timeout_min_ms",
            );
        }
        if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
            problems.add(
                "raft.election_timeout_max_ms",
                "must be more than election_timeout_min_ms",
            );
        }
        if raft.snapshot_after_entries == 0 {
            problems.add("raft.snapshot_after_entries", "must be at least 1");
        }
        if config.api.watch_heartbeat_ms == 0 {
            problems.add("api.watch_heartbeat_ms", "must be at least 1");
        }
        if config.api.max_decide_batch == 0 {
            problems.add("api.max_decide_batch", "must be at least 1");
        }
        if let Some(metrics) = &config.metrics {
            let listen = metrics.listen;
            if listen.port() != 0 && (listen == config.raft.listen || listen == config.api.listen) {
                problems.add(
                    "metrics.listen",
                    "must differ from raft.listen and api.listen",
                );
            }
        }
        let members = &config.cluster.initial_members;
        if !members.is_empty() && !members.iter().any(|m| m.id == config.node_id) {
            problems.add(
                "cluster.initial_members",
                format!("must include this node (id {})", config.node_id),
            );
        }
        if config.cluster.join && !members.is_empty() {
            problems.add(
                "cluster.join",
                "a node that joins an existing cluster has no initial_members",
            );
        }
        let mut ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) || ids.contains(&0) {
            problems.add(
                "cluster.initial_members",
                "ids must be unique and 1 or more",
            );
        }
        problems.into_result(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        config.topology = base.join(&config.topology);
        config.data_dir = base.join(&config.data_dir);
        if let Some(tls) = &mut config.tls {
            tls.ca = base.join(&tls.ca);
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.crl = tls.crl.as_ref().map(|crl| base.join(crl));
        }
        Ok(config)
    }

    /// The address other nodes reach this node's Raft service at.
    pub fn raft_address(&self) -> String {
        self.raft
            .advertise
            .clone()
            .unwrap_or_else(|| self.raft.listen.to_string())
    }

    /// The address clients reach this node's API at.
    pub fn api_address(&self) -> String {
        self.api
            .advertise
            .clone()
            .unwrap_or_else(|| self.api.listen.to_string())
    }
}

/// How a hub follows the registry (`[registry]` in the hub's file).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryClientConfig {
    /// API addresses of the registry's nodes (`host:port`); the client
    /// finds the leader among them and follows it.
    pub endpoints: Vec<String>,
    /// The hub fails closed (holds messages) when its copy of the registry
    /// has not been proven fresh for this long, in milliseconds.
    #[serde(default = "default_max_staleness_ms")]
    pub max_staleness_ms: u64,
    /// Mutual TLS to the registry: required unless every endpoint is a
    /// loopback address (development).
    #[serde(default)]
    pub tls: Option<RegistryClientTlsSection>,
}

/// How a registry client proves itself and checks the registry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryClientTlsSection {
    /// The CA the registry nodes' certificates must chain to (pinned: no
    /// system roots). A node's certificate must also name a registry node
    /// (`urn:lhcie:registry-node:<id>`).
    pub ca: PathBuf,
    /// This service's client certificate (`urn:lhcie:service:<name>`).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// The registry node ids (the cluster's members) whose certificates
    /// are accepted; empty: any registry node certificate of the CA.
    #[serde(default)]
    pub nodes: Vec<u64>,
}

/// Whether `host:port` names a loopback address (`localhost` included).
pub fn is_loopback_endpoint(endpoint: &str) -> bool {
    if let Ok(address) = endpoint.parse::<SocketAddr>() {
        return address.ip().is_loopback();
    }
    endpoint
        .rsplit_once(':')
        .is_some_and(|(host, _)| host == "localhost")
}

fn default_max_staleness_ms() -> u64 {
    2000
}

impl RegistryClientConfig {
    /// Problems with the section, as (key, message).
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.endpoints.is_empty() {
            problems.push(("endpoints", "name at least one registry node".to_owned()));
        }
        if self.max_staleness_ms < 100 {
            problems.push(("max_staleness_ms", "must be at least 100".to_owned()));
        }
        if self.tls.is_none()
            && let Some(remote) = self.endpoints.iter().find(|e| !is_loopback_endpoint(e))
        {
            problems.push((
                "tls",
                format!(
                    "required: {remote} is not a loopback address (plaintext is for loopback development only)"
                ),
            ));
        }
        problems
    }

    /// Makes the TLS paths relative to `base` (the folder of the file).
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(tls) = &mut self.tls {
            tls.ca = base.join(&tls.ca);
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RegistryConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("registry.toml");
        std::fs::write(&file, text).unwrap();
        RegistryConfig::load(&file)
    }

    const BASE: &str = r#"
node_id = 1
topology = "topology.toml"
data_dir = "data"
[raft]
listen = "127.0.0.1:0"
[api]
listen = "127.0.0.1:0"
insecure_plaintext = true
"#;

    #[test]
    fn defaults_make_a_single_node_with_implied_consent() {
        let config = load(BASE).unwrap();
        assert_eq!(config.consent_model, ConsentModel::Implied);
        assert!(config.cluster.initial_members.is_empty());
        assert!(config.data_dir.is_absolute());
        assert_eq!(config.raft.heartbeat_ms, 100);
        assert_eq!(config.raft_address(), "127.0.0.1:0");
        assert_eq!(config.metrics, None, "no endpoint unless asked for");
    }

    #[test]
    fn the_metrics_section_names_where_to_serve() {
        let config = load(&format!("{BASE}[metrics]\nlisten = \"127.0.0.1:9471\"\n")).unwrap();
        assert_eq!(
            config.metrics,
            Some(RegistryMetricsSection {
                listen: "127.0.0.1:9471".parse().unwrap()
            })
        );
        let any_port = load(&format!("{BASE}[metrics]\nlisten = \"127.0.0.1:0\"\n")).unwrap();
        assert_eq!(any_port.metrics.unwrap().listen.port(), 0);
    }

    #[test]
    fn the_metrics_section_refuses_what_cannot_work() {
        let keys = |text: &str| -> Vec<String> {
            load(text)
                .unwrap_err()
                .problems
                .iter()
                .map(|p| p.key.clone())
                .collect()
        };
        // The API's own port.
        let text = BASE.replace(
            "[api]\nlisten = \"127.0.0.1:0\"",
            "[api]\nlisten = \"127.0.0.1:50071\"",
        ) + "[metrics]\nlisten = \"127.0.0.1:50071\"\n";
        assert_eq!(keys(&text), vec!["metrics.listen"]);
        // No address, a bad one, or an unknown key.
        for (section, key) in [
            ("[metrics]\n", "metrics"),
            ("[metrics]\nlisten = \"localhost\"\n", "metrics.listen"),
            (
                "[metrics]\nlisten = \"127.0.0.1:0\"\npath = \"/m\"\n",
                "metrics.path",
            ),
        ] {
            assert_eq!(keys(&format!("{BASE}{section}")), vec![key], "{section:?}");
        }
    }

    #[test]
    fn refuses_what_cannot_work() {
        let text = BASE.replace("insecure_plaintext = true", "")
            + "[[cluster.initial_members]]\nid = 2\nraft = \"a:1\"\napi = \"a:2\"\n";
        let text = text.replace(
            "listen = \"127.0.0.1:0\"\n[api]",
            "listen = \"127.0.0.1:0\"\nheartbeat_ms = 500\n[api]",
        );
        let error = load(&text).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["tls", "raft.heartbeat_ms", "cluster.initial_members"]
        );
        let text = BASE.replace(
            "node_id = 1",
            "node_id = 1\nconsent_model = \"explicit-opt-in\"",
        );
        assert_eq!(
            load(&text).unwrap().consent_model,
            ConsentModel::ExplicitOptIn
        );
    }

    const TLS: &str = "[tls]\nca = \"pki/ca.pem\"\ncert = \"pki/registry/node-1.pem\"\nkey = \"pki/registry/node-1.key\"\n";

    #[test]
    fn plaintext_is_for_loopback_development_only() {
        let keys = |text: &str| -> Vec<String> {
            load(text)
                .unwrap_err()
                .problems
                .iter()
                .map(|p| format!("{}: {}", p.key, p.message))
                .collect()
        };
        let remote = BASE.replace(
            "[api]\nlisten = \"127.0.0.1:0\"",
            "[api]\nlisten = \"0.0.0.0:50071\"",
        );
        let problems = keys(&remote);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .starts_with("api.insecure_plaintext: refused with a non-loopback api.listen"),
            "{problems:?}"
        );
        let both = format!("{BASE}{TLS}");
        assert!(keys(&both)[0].starts_with("api.insecure_plaintext: cannot be set together"));
        let acts = BASE.replace(
            "insecure_plaintext = true",
            "insecure_plaintext = true\ninsecure_acts_as = \"root\"",
        );
        assert!(keys(&acts)[0].starts_with("api.insecure_acts_as: `root`"));
        let acts = BASE.replace(
            "insecure_plaintext = true",
            "insecure_plaintext = true\ninsecure_acts_as = \"registry-admin\"",
        );
        assert_eq!(
            load(&acts).unwrap().api.insecure_acts_as.as_deref(),
            Some("registry-admin")
        );
    }

    #[test]
    fn tls_names_the_node_certificate_relative_to_the_file() {
        let text = BASE
            .replace("insecure_plaintext = true\n", "")
            .replace("127.0.0.1:0", "0.0.0.0:0")
            + TLS;
        let config = load(&text).unwrap();
        let tls = config.tls.unwrap();
        assert!(tls.ca.is_absolute() && tls.cert.ends_with("pki/registry/node-1.pem"));
        assert_eq!(tls.crl, None, "no revocation list unless named");
        let config = load(&format!("{text}crl = \"pki/crl.pem\"\n")).unwrap();
        let crl = config.tls.unwrap().crl.expect("the list named");
        assert!(crl.is_absolute() && crl.ends_with("pki/crl.pem"), "{crl:?}");
    }

    #[test]
    fn a_hub_needs_tls_to_reach_a_remote_registry() {
        let client = |endpoints: &[&str], tls: bool| RegistryClientConfig {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            max_staleness_ms: 2000,
            tls: tls.then(|| RegistryClientTlsSection {
                ca: "ca.pem".into(),
                cert: "hub.pem".into(),
                key: "hub.key".into(),
                nodes: vec![1, 2, 3],
            }),
        };
        assert!(
            client(&["127.0.0.1:50071", "localhost:50072"], false)
                .problems()
                .is_empty()
        );
        let problems = client(&["10.0.0.5:50071"], false).problems();
        assert_eq!(problems[0].0, "tls");
        assert!(client(&["10.0.0.5:50071"], true).problems().is_empty());
    }
}
