//! The hub's configuration file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Problems;
use crate::registry::RegistryClientConfig;
use crate::{BrokerConfig, ConfigError, toml_file};

/// The hub's configuration (see `config/demo/hub.toml`). Relative paths are
/// relative to the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubConfig {
    /// The topology file.
    pub topology: PathBuf,
    /// A fixed policy file (agreements and directives) to decide with, for
    /// tests and small demos. Give this or `[registry]`, not both.
    #[serde(default)]
    pub policy: Option<PathBuf>,
    /// The replicated consent and ISA registry to follow (a local cache fed
    /// by its watch feed decides every flow).
    #[serde(default)]
    pub registry: Option<RegistryClientConfig>,
    /// The broker.
    pub broker: BrokerConfig,
    /// The gRPC endpoint adapters connect to.
    pub grpc: GrpcConfig,
    /// Consuming envelopes that adapters publish over AMQP.
    #[serde(default)]
    pub amqp_ingress: AmqpIngressConfig,
    /// The operations HTTP endpoint (health, readiness, audit queries).
    pub admin: AdminConfig,
    /// The operations dashboard (web page, trace, dead letters and replay)
    /// for logged-in ops users; absent: not served.
    #[serde(default)]
    pub dashboard: Option<DashboardConfig>,
    /// The hub's own durable store (de-duplication and audit).
    pub store: StoreConfig,
    /// Limits.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// The gRPC endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// Where to listen, e.g. `127.0.0.1:50051` (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Mutual TLS: required unless `insecure_plaintext` is set.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Development only: accept plain-text gRPC with no client
    /// certificate; the caller's exchange is then taken from the
    /// `lhcie-exchange` request header, so anyone can claim any exchange.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

/// Mutual TLS settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The hub's certificate chain (PEM).
    pub cert: PathBuf,
    /// The hub's private key (PEM).
    pub key: PathBuf,
    /// The CA that signs adapters' client certificates (PEM). A client
    /// certificate names its exchange in a `urn:lhcie:exchange:<id>` URI.
    pub client_ca: PathBuf,
}

/// AMQP ingress.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmqpIngressConfig {
    /// Whether to consume the ingress queue.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How many unacknowledged envelopes the hub takes at once.
    #[serde(default = "default_prefetch")]
    pub prefetch: u16,
}

impl Default for AmqpIngressConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            prefetch: default_prefetch(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_prefetch() -> u16 {
    1000
}

/// The operations endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Where to listen. Keep it on a management network: it serves audit
    /// queries.
    pub listen: SocketAddr,
}

/// The operations dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Where to listen. Put TLS in front of it beyond a management host.
    pub listen: SocketAddr,
    /// The users file: name, role (`viewer`, `operator`, `admin`) and an
    /// argon2id password hash each (`hub hash-password` makes one).
    pub users: PathBuf,
    /// How long a login lasts, in minutes.
    #[serde(default = "default_session_minutes")]
    pub session_minutes: u64,
    /// Mark the session cookie `Secure` (set it when TLS is in front).
    #[serde(default)]
    pub secure_cookie: bool,
    /// The fastest a replay goes, in dead letters per second (a request may
    /// ask for less).
    #[serde(default = "default_replay_rate")]
    pub max_replay_per_second: u32,
}

fn default_session_minutes() -> u64 {
    8 * 60
}

fn default_replay_rate() -> u32 {
    10
}

/// The hub's store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Folder of the sled database.
    pub path: PathBuf,
    /// How long a message id is remembered for de-duplication, in hours.
    #[serde(default = "default_dedup_hours")]
    pub dedup_retention_hours: u64,
}

fn default_dedup_hours() -> u64 {
    7 * 24
}

/// Limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// The largest envelope accepted, in bytes (encoded).
    #[serde(default = "default_max_envelope")]
    pub max_envelope_bytes: usize,
    /// How many envelopes one gRPC stream may have in flight.
    #[serde(default = "default_in_flight")]
    pub max_in_flight_per_stream: usize,
    /// How long a graceful shutdown waits for in-flight work, in seconds.
    #[serde(default = "default_grace")]
    pub shutdown_grace_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_envelope_bytes: default_max_envelope(),
            max_in_flight_per_stream: default_in_flight(),
            shutdown_grace_seconds: default_grace(),
        }
    }
}

fn default_max_envelope() -> usize {
    16 * 1024 * 1024
}

fn default_in_flight() -> usize {
    1000
}

fn default_grace() -> u64 {
    30
}

impl HubConfig {
    /// Reads and validates a hub configuration file, resolving relative
    /// paths against the file's folder.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let mut config: Self = toml_file::read(file)?;
        let mut problems = Problems::default();
        for (key, problem) in config.broker.problems() {
            problems.add(format!("broker.{key}"), problem);
        }
        match (&config.grpc.tls, config.grpc.insecure_plaintext) {
            (None, false) => problems.add(
                "grpc",
                "give [grpc.tls] (cert, key, client_ca), or insecure_plaintext = true for development only",
            ),
            (Some(_), true) => problems.add(
                "grpc.insecure_plaintext",
                "cannot be set together with [grpc.tls]; choose one",
            ),
            _ => {}
        }
        match (&config.policy, &config.registry) {
            (None, None) => problems.add(
                "registry",
                "give [registry] (endpoints of the consent registry), or policy = \"file\" for a fixed policy",
            ),
            (Some(_), Some(_)) => problems.add("policy", "cannot be set together with [registry]; choose one"),
            (None, Some(registry)) => {
                for (key, problem) in registry.problems() {
                    problems.add(format!("registry.{key}"), problem);
                }
            }
            (Some(_), None) => {}
        }
        if config.amqp_ingress.prefetch == 0 {
            problems.add("amqp_ingress.prefetch", "must be at least 1");
        }
        if config.limits.max_in_flight_per_stream == 0 {
            problems.add("limits.max_in_flight_per_stream", "must be at least 1");
        }
        if config.limits.max_envelope_bytes < 1024 {
            problems.add("limits.max_envelope_bytes", "must be at least 1024");
        }
        if let Some(dashboard) = &config.dashboard {
            if dashboard.session_minutes == 0 {
                problems.add("dashboard.session_minutes", "must be at least 1");
            }
            if dashboard.max_replay_per_second == 0 {
                problems.add("dashboard.max_replay_per_second", "must be at least 1");
            }
        }
        if config.store.dedup_retention_hours == 0 {
            problems.add("store.dedup_retention_hours", "must be at least 1");
        }
        problems.into_result(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        config.topology = base.join(&config.topology);
        config.policy = config.policy.as_ref().map(|policy| base.join(policy));
        config.store.path = base.join(&config.store.path);
        if let Some(dashboard) = &mut config.dashboard {
            dashboard.users = base.join(&dashboard.users);
        }
        if let Some(tls) = &mut config.grpc.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = base.join(&tls.client_ca);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<HubConfig, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hub.toml");
        std::fs::write(&file, text).unwrap();
        HubConfig::load(&file)
    }

    const BASE: &str = r#"
topology = "topology.toml"
policy = "policy.toml"
[broker]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
[admin]
listen = "127.0.0.1:0"
[store]
path = "store"
"#;

    #[test]
    fn grpc_needs_tls_or_an_explicit_development_flag() {
        let error = load(&format!("{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\n")).unwrap_err();
        assert_eq!(error.problems[0].key, "grpc");
        assert!(
            error.problems[0]
                .message
                .contains("insecure_plaintext = true for development only")
        );

        let config = load(&format!(
            "{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n"
        ))
        .unwrap();
        assert!(config.grpc.insecure_plaintext);
        assert_eq!(config.amqp_ingress.prefetch, 1000);
        assert_eq!(config.store.dedup_retention_hours, 168);

        let config = load(&format!(
            "{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\n[grpc.tls]\ncert = \"hub.pem\"\nkey = \"hub.key\"\nclient_ca = \"ca.pem\"\n"
        ))
        .unwrap();
        assert!(config.grpc.tls.unwrap().cert.is_absolute());
    }

    #[test]
    fn a_policy_file_or_a_registry_not_both_nor_neither() {
        let grpc = "[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n";
        let registry = "[registry]\nendpoints = [\"127.0.0.1:50071\"]\n";
        let both = load(&format!("{BASE}{grpc}{registry}")).unwrap_err();
        assert_eq!(both.problems[0].key, "policy");
        let neither = BASE.replace("policy = \"policy.toml\"\n", "");
        let error = load(&format!("{neither}{grpc}")).unwrap_err();
        assert_eq!(error.problems[0].key, "registry");
        let config = load(&format!("{neither}{grpc}{registry}")).unwrap();
        assert_eq!(config.registry.unwrap().max_staleness_ms, 2000);
        let empty = load(&format!("{neither}{grpc}[registry]\nendpoints = []\n")).unwrap_err();
        assert_eq!(empty.problems[0].key, "registry.endpoints");
    }

    #[test]
    fn both_tls_and_plaintext_is_refused() {
        let error = load(&format!(
            "{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n[grpc.tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n"
        ))
        .unwrap_err();
        assert_eq!(error.problems[0].key, "grpc.insecure_plaintext");
    }
}
