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
    /// The operations HTTP endpoint (health, readiness, `/metrics`, adapter
    /// status, the registry copy's freshness): no patient data.
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
    /// How long what the hub keeps about messages and people is kept
    /// (`docs/security.md`, "What is retained and for how long").
    #[serde(default)]
    pub retention: RetentionConfig,
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
    /// Certificate revocation lists of that CA (PEM, `X509 CRL`): a client
    /// certificate they list is refused in the TLS handshake, and so is
    /// one whose issuer has no list here. Read again whenever the file
    /// changes (the last good list stays in force if it cannot be read).
    /// None: no revocation checking. See `docs/security.md`.
    #[serde(default)]
    pub crl: Option<PathBuf>,
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
    /// Where to listen. It serves health, readiness, metrics, adapter
    /// status and the registry copy's freshness, never a patient or a
    /// message (those are the dashboard's, behind its login), so a
    /// monitoring network address is acceptable.
    pub listen: SocketAddr,
}

/// The operations dashboard.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DashboardConfig {
    /// Where to listen. An address other than loopback needs
    /// `secure_cookie = true` (and so TLS in front of it).
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

/// Retention windows, in days: what is older is deleted by the hub's
/// periodic pruning (`docs/security.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// A pending dead letter (whole envelope: clinical content) is
    /// discarded this long after it was dead-lettered, its body deleted; a
    /// replayed or discarded one's record (no body) is deleted this long
    /// after it was settled.
    #[serde(default = "default_dead_letter_days")]
    pub dead_letters_days: u64,
    /// Trace events (codes and short reasons) are deleted this long after
    /// they happened.
    #[serde(default = "default_trace_days")]
    pub trace_events_days: u64,
    /// The search indexes by time and organisation (the trace's searches)
    /// are deleted this long after the decision, and a closed emergency
    /// review this long after it was closed (pending ones are kept).
    #[serde(default = "default_trace_days")]
    pub audit_detail_days: u64,
    /// The decision records themselves (who sent what category about which
    /// patient to whom, the outcome and why) and their patient index.
    #[serde(default = "default_audit_record_days")]
    pub audit_records_days: u64,
    /// The access log (who looked at which patient or message).
    #[serde(default = "default_audit_record_days")]
    pub access_log_days: u64,
    /// How often pruning runs, in minutes.
    #[serde(default = "default_prune_minutes")]
    pub prune_every_minutes: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            dead_letters_days: default_dead_letter_days(),
            trace_events_days: default_trace_days(),
            audit_detail_days: default_trace_days(),
            audit_records_days: default_audit_record_days(),
            access_log_days: default_audit_record_days(),
            prune_every_minutes: default_prune_minutes(),
        }
    }
}

fn default_dead_letter_days() -> u64 {
    30
}

fn default_trace_days() -> u64 {
    90
}

fn default_audit_record_days() -> u64 {
    // Eight years (2922 days): the NHS Records Management Code of
    // Practice's minimum for adult health records.
    8 * 365 + 2
}

fn default_prune_minutes() -> u64 {
    60
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
            (None, true) if !config.grpc.listen.ip().is_loopback() => problems.add(
                "grpc.insecure_plaintext",
                format!(
                    "only with a loopback grpc.listen (development); {} is not loopback: anyone who reaches it could claim any exchange",
                    config.grpc.listen
                ),
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
            if !dashboard.listen.ip().is_loopback() && !dashboard.secure_cookie {
                problems.add(
                    "dashboard.secure_cookie",
                    format!(
                        "must be true when dashboard.listen ({}) is not loopback: put TLS in front of the dashboard and set secure_cookie = true, or listen on 127.0.0.1",
                        dashboard.listen
                    ),
                );
            }
        }
        let retention = &config.retention;
        for (key, days) in [
            ("retention.dead_letters_days", retention.dead_letters_days),
            ("retention.trace_events_days", retention.trace_events_days),
            ("retention.audit_detail_days", retention.audit_detail_days),
            ("retention.audit_records_days", retention.audit_records_days),
            ("retention.access_log_days", retention.access_log_days),
            (
                "retention.prune_every_minutes",
                retention.prune_every_minutes,
            ),
        ] {
            if days == 0 {
                problems.add(key, "must be at least 1");
            }
        }
        if retention.audit_records_days < retention.audit_detail_days {
            problems.add(
                "retention.audit_records_days",
                "must be at least retention.audit_detail_days (the indexes point at the records)",
            );
        }
        if config.store.dedup_retention_hours == 0 {
            problems.add("store.dedup_retention_hours", "must be at least 1");
        }
        problems.into_result(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        config.topology = base.join(&config.topology);
        config.policy = config.policy.as_ref().map(|policy| base.join(policy));
        config.store.path = base.join(&config.store.path);
        if let Some(registry) = &mut config.registry {
            registry.resolve_paths(base);
        }
        if let Some(dashboard) = &mut config.dashboard {
            dashboard.users = base.join(&dashboard.users);
        }
        if let Some(tls) = &mut config.grpc.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = base.join(&tls.client_ca);
            if let Some(crl) = &mut tls.crl {
                *crl = base.join(&*crl);
                if !crl.is_file() {
                    return Err(ConfigError::one(
                        file,
                        "grpc.tls.crl",
                        format!("{} is not a readable file", crl.display()),
                    ));
                }
            }
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
    fn plaintext_grpc_only_on_loopback() {
        let error = load(&format!(
            "{BASE}[grpc]\nlisten = \"0.0.0.0:50051\"\ninsecure_plaintext = true\n"
        ))
        .unwrap_err();
        assert_eq!(error.problems[0].key, "grpc.insecure_plaintext");
        assert!(error.problems[0].message.contains("0.0.0.0:50051"));
        let error = load(&format!(
            "{BASE}[grpc]\nlisten = \"10.1.2.3:50051\"\ninsecure_plaintext = true\n"
        ))
        .unwrap_err();
        assert_eq!(error.problems[0].key, "grpc.insecure_plaintext");
        load(&format!(
            "{BASE}[grpc]\nlisten = \"[::1]:50051\"\ninsecure_plaintext = true\n"
        ))
        .unwrap();
    }

    #[test]
    fn a_dashboard_beyond_loopback_needs_a_secure_cookie() {
        let grpc = "[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n";
        let dashboard = |listen: &str, secure: &str| {
            format!("{BASE}{grpc}[dashboard]\nlisten = \"{listen}\"\nusers = \"u.toml\"\n{secure}")
        };
        let error = load(&dashboard("0.0.0.0:9465", "")).unwrap_err();
        assert_eq!(error.problems[0].key, "dashboard.secure_cookie");
        assert!(error.problems[0].message.contains("0.0.0.0:9465"));
        load(&dashboard("0.0.0.0:9465", "secure_cookie = true\n")).unwrap();
        load(&dashboard("127.0.0.1:9465", "")).unwrap();
        // The admin port serves no patient data: any address will do.
        load(&format!(
            "{}{grpc}",
            BASE.replace("127.0.0.1:0", "0.0.0.0:9464")
        ))
        .unwrap();
    }

    #[test]
    fn retention_has_nhs_defaults_and_refuses_nonsense() {
        let grpc = "[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n";
        let config = load(&format!("{BASE}{grpc}")).unwrap();
        assert_eq!(config.retention.dead_letters_days, 30);
        assert_eq!(config.retention.trace_events_days, 90);
        assert_eq!(config.retention.audit_records_days, 2922);
        let error = load(&format!(
            "{BASE}{grpc}[retention]\ntrace_events_days = 0\naudit_detail_days = 100\naudit_records_days = 50\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert!(keys.contains(&"retention.trace_events_days"), "{keys:?}");
        assert!(keys.contains(&"retention.audit_records_days"), "{keys:?}");
    }

    #[test]
    fn both_tls_and_plaintext_is_refused() {
        let error = load(&format!(
            "{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\ninsecure_plaintext = true\n[grpc.tls]\ncert = \"a\"\nkey = \"b\"\nclient_ca = \"c\"\n"
        ))
        .unwrap_err();
        assert_eq!(error.problems[0].key, "grpc.insecure_plaintext");
    }

    #[test]
    fn a_revocation_list_must_exist() {
        let error = load(&format!(
            "{BASE}[grpc]\nlisten = \"127.0.0.1:0\"\n[grpc.tls]\ncert = \"hub.pem\"\nkey = \"hub.key\"\nclient_ca = \"ca.pem\"\ncrl = \"missing-crl.pem\"\n"
        ))
        .unwrap_err();
        assert_eq!(error.problems[0].key, "grpc.tls.crl", "{error}");
        assert!(error.to_string().contains("missing-crl.pem"), "{error}");
    }
}
