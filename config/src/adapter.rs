//! An adapter's configuration file (`adapter serve --config <file>`).
//!
//! The file names the topology and the exchange the adapter serves; the
//! adapter's kind and its endpoints towards the local systems (`listen`,
//! `deliver_to`) come from that exchange's `[exchange.adapter]` in the
//! topology, so they are written once. The file adds what only the adapter
//! needs: how to reach the hub, where its durable stores live, and the
//! kind's tuning.
//!
//! ```toml
//! topology = "topology.toml"
//! exchange = "nwl-imperial"
//!
//! [hub]
//! endpoint = "https://127.0.0.1:50051"
//! [hub.tls]
//! ca = "pki/ca.pem"
//! cert = "pki/exchanges/nwl-imperial.pem"
//! key = "pki/exchanges/nwl-imperial.key"
//! server_name = "localhost"      # optional, this is the default
//!
//! [store]
//! path = "var/adapter-nwl-imperial"   # outbox and seen-message store
//!
//! [hl7v2]                             # optional; defaults shown
//! ack_wait_ms = 200                   # wait this long for the hub's early answer
//! delivery_ack_timeout_ms = 30000     # the local system must ACK within this
//! delivery_retry_max_ms = 30000       # longest pause between delivery attempts
//! # sender_ods = "RYJ"                # when MSH-4 is not an ODS code
//! # default_recipients = ["RAL"]      # when MSH-6 is not an ODS code
//! # notify_to = "127.0.0.1:27102"     # late rejections (ACK messages); default: deliver_to
//!
//! [broker]                           # required when the exchange's uplink = "amqp"
//! url = "amqp://127.0.0.1:5672/%2f"  # no credentials here
//! credentials = "var/broker-users.toml"   # written by `hub provision-broker-users`
//! # prefix = "lhcie"                 # as the hub's [broker] prefix
//!
//! [fhir]                              # optional (kind fhir-r4); defaults shown
//! ack_wait_ms = 200                   # wait this long for the hub's early answer
//! max_body_bytes = 10485760           # 413 beyond
//! max_depth = 64                      # JSON nesting
//! delivery_timeout_ms = 30000         # the local endpoint must answer within this
//! delivery_retry_max_ms = 30000       # longest pause between delivery attempts
//! # sender_ods = "RRV"                # when a message names no sender
//! # default_recipients = ["RAL"]
//! # bearer_token_file = "secrets/epr-token"   # Authorization: Bearer to deliver_to
//! # [fhir.deliver_tls]                # for an https:// deliver_to
//! # ca = "pki/local-ca.pem"
//! # cert = "pki/adapter-client.pem"   # optional client certificate, with key
//! # key = "pki/adapter-client.key"
//!
//! [metrics]                           # optional: GET /metrics and /healthz
//! listen = "127.0.0.1:9501"           # Prometheus exposition (docs/metrics.md)
//!
//! [hl7v2.tls]                         # optional: the MLLP listener speaks TLS
//! cert = "pki/mllp-listener.pem"
//! key = "pki/mllp-listener.key"
//! # client_ca = "pki/local-ca.pem"    # require client certificates chaining to it
//!
//! [hl7v2.deliver_tls]                 # optional: deliveries and late ACKs over TLS
//! ca = "pki/local-ca.pem"             # the local system's certificate chains to it
//! server_name = "epr.example.nhs.uk"  # the name that certificate must carry
//! # cert = "pki/adapter-client.pem"   # a client certificate, with key
//! # key = "pki/adapter-client.key"
//! ```
//!
//! Relative paths are relative to the file.

use std::path::{Path, PathBuf};

use lhcie_model::{ExchangeId, OdsCode};
use serde::Deserialize;

use crate::error::Problems;
use crate::topology::{AdapterConfig, Exchange, Topology};
use crate::{ConfigError, toml_file};

/// The adapter's file as written. See the module docs for an example.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterFile {
    /// The topology file (the exchange's adapter kind and endpoints).
    pub topology: PathBuf,
    /// The exchange this adapter serves.
    pub exchange: ExchangeId,
    /// How to reach the hub.
    pub hub: AdapterHubConfig,
    /// The adapter's durable stores.
    pub store: AdapterStoreConfig,
    /// Settings of the `hl7v2-mllp` kind (ignored by other kinds' checks
    /// only if absent).
    #[serde(default)]
    pub hl7v2: Hl7v2Settings,
    /// The broker, for an exchange whose `uplink` is `"amqp"`: envelopes
    /// are published to the hub's ingress exchange and deliveries consumed
    /// from the exchange's egress queue, as the exchange's broker user.
    /// Heartbeats still go to `[hub]` over gRPC.
    #[serde(default)]
    pub broker: Option<AdapterBrokerConfig>,
    /// Settings of the `fhir-r4` kind.
    #[serde(default)]
    pub fhir: FhirSettings,
    /// The adapter's own Prometheus endpoint (`GET /metrics`, `GET
    /// /healthz`); none if absent.
    #[serde(default)]
    pub metrics: Option<AdapterMetricsConfig>,
}

/// `[metrics]`: where the adapter serves its metrics.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AdapterMetricsConfig {
    /// The address to listen on (`host:port`, e.g. `127.0.0.1:9501`; port
    /// 0 picks a free one, logged at start).
    pub listen: std::net::SocketAddr,
}

/// Tuning of the `fhir-r4` kind (`[fhir]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FhirSettings {
    /// How long a `$process-message` response waits for the hub's answer
    /// after the message is stored, in milliseconds. A rejection that comes
    /// in time is answered 422; otherwise success (stored, forwarded later).
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
    /// The largest request body accepted, in bytes (413 beyond).
    #[serde(default = "default_fhir_max_body_bytes")]
    pub max_body_bytes: usize,
    /// The deepest JSON nesting accepted.
    #[serde(default = "default_fhir_max_depth")]
    pub max_depth: usize,
    /// The sending organisation when a message names none; must be one of
    /// the exchange's organisations.
    #[serde(default)]
    pub sender_ods: Option<OdsCode>,
    /// Recipients when a message names none.
    #[serde(default)]
    pub default_recipients: Vec<OdsCode>,
    /// How long the local endpoint may take to answer a delivery, in
    /// milliseconds; then the delivery is attempted again.
    #[serde(default = "default_delivery_ack_timeout_ms")]
    pub delivery_timeout_ms: u64,
    /// Longest pause between delivery attempts, in milliseconds.
    #[serde(default = "default_delivery_retry_max_ms")]
    pub delivery_retry_max_ms: u64,
    /// A file holding a bearer token sent to the local endpoint
    /// (`Authorization: Bearer ...`); none if absent.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// TLS towards an `https://` local endpoint (`[fhir.deliver_tls]`).
    #[serde(default)]
    pub deliver_tls: Option<FhirDeliverTls>,
}

/// TLS towards the local FHIR endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FhirDeliverTls {
    /// The CA the local endpoint's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// A client certificate to present (PEM); needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl Default for FhirSettings {
    fn default() -> Self {
        Self {
            ack_wait_ms: default_ack_wait_ms(),
            max_body_bytes: default_fhir_max_body_bytes(),
            max_depth: default_fhir_max_depth(),
            sender_ods: None,
            default_recipients: Vec::new(),
            delivery_timeout_ms: default_delivery_ack_timeout_ms(),
            delivery_retry_max_ms: default_delivery_retry_max_ms(),
            bearer_token_file: None,
            deliver_tls: None,
        }
    }
}

fn default_fhir_max_body_bytes() -> usize {
    10 * 1024 * 1024
}

fn default_fhir_max_depth() -> usize {
    64
}

/// `[broker]`: the AMQP uplink's broker and the adapter's broker user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterBrokerConfig {
    /// `amqp://host:port/vhost` (or `amqps://`), without credentials.
    pub url: String,
    /// The prefix of the hub's exchanges and queues (as the hub's
    /// `[broker] prefix`).
    #[serde(default = "default_broker_prefix")]
    pub prefix: String,
    /// The credentials file `hub provision-broker-users` wrote: one
    /// `[<exchange-id>]` table with `user` and `password` per exchange.
    pub credentials: PathBuf,
}

fn default_broker_prefix() -> String {
    "lhcie".into()
}

/// One exchange's broker user, as in the credentials file.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct BrokerUser {
    user: String,
    password: String,
}

impl AdapterBrokerConfig {
    /// The broker settings with `exchange`'s user and password from the
    /// credentials file.
    pub fn for_exchange(&self, exchange: &ExchangeId) -> Result<crate::BrokerConfig, ConfigError> {
        let users: std::collections::BTreeMap<String, BrokerUser> =
            toml_file::read(&self.credentials)?;
        let Some(user) = users.get(exchange.as_str()) else {
            return Err(ConfigError::one(
                &self.credentials,
                exchange.as_str(),
                format!(
                    "no [{exchange}] table with the exchange's broker user (run `hub provision-broker-users`)"
                ),
            ));
        };
        let broker = crate::BrokerConfig {
            prefix: self.prefix.clone(),
            ..crate::BrokerConfig::new(self.url.clone())
        };
        Ok(broker.with_credentials(&user.user, &user.password))
    }
}

/// How the adapter reaches the hub's gRPC endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterHubConfig {
    /// `https://host:port` (with `[hub.tls]`) or `http://host:port` (with
    /// `insecure_plaintext`).
    pub endpoint: String,
    /// Mutual TLS: required unless `insecure_plaintext` is set.
    #[serde(default)]
    pub tls: Option<AdapterTlsConfig>,
    /// Development only: plain-text gRPC to a hub in insecure mode.
    #[serde(default)]
    pub insecure_plaintext: bool,
}

/// The adapter's client certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterTlsConfig {
    /// The CA the hub's certificate chains to (PEM).
    pub ca: PathBuf,
    /// This adapter's certificate, naming its exchange (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// The name the hub's certificate must carry.
    #[serde(default = "default_server_name")]
    pub server_name: String,
}

fn default_server_name() -> String {
    "localhost".into()
}

/// Where the adapter keeps its durable state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdapterStoreConfig {
    /// A folder: the outbox and the seen-message store live under it. One
    /// adapter process per folder.
    pub path: PathBuf,
}

/// Tuning of the `hl7v2-mllp` kind.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hl7v2Settings {
    /// How long an inbound message's ACK waits for the hub's answer after
    /// the message is stored, in milliseconds. A rejection that comes in
    /// time is answered AE/AR; otherwise AA (stored, forwarded later).
    #[serde(default = "default_ack_wait_ms")]
    pub ack_wait_ms: u64,
    /// How long the local system may take to acknowledge a delivery, in
    /// milliseconds; then the delivery is attempted again.
    #[serde(default = "default_delivery_ack_timeout_ms")]
    pub delivery_ack_timeout_ms: u64,
    /// Longest pause between delivery attempts, in milliseconds.
    #[serde(default = "default_delivery_retry_max_ms")]
    pub delivery_retry_max_ms: u64,
    /// The sending organisation when MSH-4 is not an ODS code; must be one
    /// of the exchange's organisations.
    #[serde(default)]
    pub sender_ods: Option<OdsCode>,
    /// Recipients when no rule applies and MSH-6 is not an ODS code.
    #[serde(default)]
    pub default_recipients: Vec<OdsCode>,
    /// The local system's MLLP endpoint (`host:port`) for rejections the
    /// hub gives after the message was answered AA, each sent as an ACK
    /// message of its own. `None`: the exchange's `deliver_to`.
    #[serde(default)]
    pub notify_to: Option<String>,
    /// TLS on the MLLP listener (`[hl7v2.tls]`); plain TCP if absent.
    #[serde(default)]
    pub tls: Option<MllpListenTls>,
    /// TLS towards the local system (`[hl7v2.deliver_tls]`), for
    /// deliveries and late acknowledgements; plain TCP if absent.
    #[serde(default)]
    pub deliver_tls: Option<MllpDeliverTls>,
}

/// TLS on the MLLP listener.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MllpListenTls {
    /// The listener's certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// If given, every client must present a certificate chaining to this
    /// CA (PEM); otherwise no client certificate is asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// TLS towards the local system's MLLP endpoint.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MllpDeliverTls {
    /// The CA the local system's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// A client certificate to present (PEM); needs `key`.
    #[serde(default)]
    pub cert: Option<PathBuf>,
    /// The client certificate's private key (PEM); needs `cert`.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// The DNS name (or IP address) the local system's certificate must
    /// carry.
    pub server_name: String,
}

impl Default for Hl7v2Settings {
    fn default() -> Self {
        Self {
            ack_wait_ms: default_ack_wait_ms(),
            delivery_ack_timeout_ms: default_delivery_ack_timeout_ms(),
            delivery_retry_max_ms: default_delivery_retry_max_ms(),
            sender_ods: None,
            default_recipients: Vec::new(),
            notify_to: None,
            tls: None,
            deliver_tls: None,
        }
    }
}

fn default_ack_wait_ms() -> u64 {
    200
}

fn default_delivery_ack_timeout_ms() -> u64 {
    30_000
}

fn default_delivery_retry_max_ms() -> u64 {
    30_000
}

/// A loaded, validated adapter configuration: the file (paths resolved)
/// and the exchange it serves from the topology.
#[derive(Debug, Clone)]
pub struct AdapterSettings {
    /// The file, relative paths resolved against its folder.
    pub file: AdapterFile,
    /// The exchange, with its adapter kind and endpoints.
    pub exchange: Exchange,
}

impl AdapterSettings {
    /// Reads and validates an adapter file and the topology it names.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let mut config: AdapterFile = toml_file::read(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        config.topology = base.join(&config.topology);
        config.store.path = base.join(&config.store.path);
        if let Some(tls) = &mut config.hub.tls {
            tls.ca = base.join(&tls.ca);
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
        }
        if let Some(token) = &mut config.fhir.bearer_token_file {
            *token = base.join(&*token);
        }
        if let Some(tls) = &mut config.fhir.deliver_tls {
            tls.ca = base.join(&tls.ca);
            tls.cert = tls.cert.as_ref().map(|cert| base.join(cert));
            tls.key = tls.key.as_ref().map(|key| base.join(key));
        }
        if let Some(broker) = &mut config.broker {
            broker.credentials = base.join(&broker.credentials);
        }
        if let Some(tls) = &mut config.hl7v2.tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = tls.client_ca.as_ref().map(|ca| base.join(ca));
        }
        if let Some(tls) = &mut config.hl7v2.deliver_tls {
            tls.ca = base.join(&tls.ca);
            tls.cert = tls.cert.as_ref().map(|cert| base.join(cert));
            tls.key = tls.key.as_ref().map(|key| base.join(key));
        }
        let topology = Topology::load(&config.topology)?;
        let mut problems = Problems::default();
        let hub = &config.hub;
        match (&hub.tls, hub.insecure_plaintext) {
            (None, false) => problems.add(
                "hub",
                "give [hub.tls] (ca, cert, key), or insecure_plaintext = true for development only",
            ),
            (Some(_), true) => problems.add(
                "hub.insecure_plaintext",
                "cannot be set together with [hub.tls]; choose one",
            ),
            _ => {}
        }
        let scheme_ok = if hub.tls.is_some() {
            hub.endpoint.starts_with("https://")
        } else {
            hub.endpoint.starts_with("http://")
        };
        if !scheme_ok {
            problems.add(
                "hub.endpoint",
                "must start with https:// with [hub.tls], http:// with insecure_plaintext",
            );
        }
        let settings = &config.hl7v2;
        for (key, value) in [
            ("hl7v2.ack_wait_ms", settings.ack_wait_ms),
            (
                "hl7v2.delivery_ack_timeout_ms",
                settings.delivery_ack_timeout_ms,
            ),
            (
                "hl7v2.delivery_retry_max_ms",
                settings.delivery_retry_max_ms,
            ),
        ] {
            if value > 600_000 {
                problems.add(key, "must be at most 600000 (ten minutes)");
            }
        }
        if settings.delivery_ack_timeout_ms == 0 {
            problems.add("hl7v2.delivery_ack_timeout_ms", "must be at least 1");
        }
        if settings.delivery_retry_max_ms < 100 {
            problems.add("hl7v2.delivery_retry_max_ms", "must be at least 100");
        }
        if let Some(notify_to) = &settings.notify_to
            && !is_host_port(notify_to)
        {
            problems.add(
                "hl7v2.notify_to",
                format!("{notify_to} is not host:port (e.g. \"127.0.0.1:27102\")"),
            );
        }
        check_mllp_tls(settings, &mut problems);
        check_fhir(&config.fhir, &mut problems);
        let exchange = topology.exchange(&config.exchange).cloned();
        match &exchange {
            None => problems.add(
                "exchange",
                format!(
                    "{} is not an exchange of the topology {}",
                    config.exchange,
                    config.topology.display()
                ),
            ),
            Some(exchange) => {
                check_broker(&config, exchange, &mut problems);
                if let Some(sender) = &settings.sender_ods
                    && !exchange.organisations.contains(sender)
                {
                    problems.add(
                        "hl7v2.sender_ods",
                        format!(
                            "{sender} is not an organisation of exchange {}",
                            exchange.id
                        ),
                    );
                }
                if let Some(sender) = &config.fhir.sender_ods
                    && !exchange.organisations.contains(sender)
                {
                    problems.add(
                        "fhir.sender_ods",
                        format!(
                            "{sender} is not an organisation of exchange {}",
                            exchange.id
                        ),
                    );
                }
                if let AdapterConfig::FhirR4 { deliver_to, .. } = &exchange.adapter
                    && !(deliver_to.starts_with("http://") || deliver_to.starts_with("https://"))
                {
                    problems.add(
                        "exchange.adapter.deliver_to",
                        format!("{deliver_to} is not an http:// or https:// base URL"),
                    );
                }
                if let AdapterConfig::Hl7v2Mllp { deliver_to, .. } = &exchange.adapter
                    && deliver_to.rsplit_once(':').is_none()
                {
                    problems.add(
                        "exchange.adapter.deliver_to",
                        format!("{deliver_to} is not host:port"),
                    );
                }
            }
        }
        problems.into_result(file)?;
        let exchange = exchange.unwrap_or_else(|| unreachable!("checked above"));
        Ok(Self {
            file: config,
            exchange,
        })
    }
}

/// `[fhir]`: bounds, files that exist.
fn check_fhir(settings: &FhirSettings, problems: &mut Problems) {
    if settings.ack_wait_ms > 600_000 {
        problems.add("fhir.ack_wait_ms", "must be at most 600000 (ten minutes)");
    }
    if !(1..=600_000).contains(&settings.delivery_timeout_ms) {
        problems.add("fhir.delivery_timeout_ms", "must be 1 to 600000");
    }
    if !(100..=600_000).contains(&settings.delivery_retry_max_ms) {
        problems.add("fhir.delivery_retry_max_ms", "must be 100 to 600000");
    }
    if !(1024..=512 * 1024 * 1024).contains(&settings.max_body_bytes) {
        problems.add("fhir.max_body_bytes", "must be 1024 to 536870912");
    }
    if !(8..=128).contains(&settings.max_depth) {
        problems.add("fhir.max_depth", "must be 8 to 128");
    }
    let mut file = |key: &str, path: &Path| {
        if !path.is_file() {
            problems.add(key, format!("{} is not a readable file", path.display()));
        }
    };
    if let Some(token) = &settings.bearer_token_file {
        file("fhir.bearer_token_file", token);
    }
    if let Some(tls) = &settings.deliver_tls {
        file("fhir.deliver_tls.ca", &tls.ca);
        if let Some(cert) = &tls.cert {
            file("fhir.deliver_tls.cert", cert);
        }
        if let Some(key) = &tls.key {
            file("fhir.deliver_tls.key", key);
        }
        if tls.cert.is_some() != tls.key.is_some() {
            problems.add(
                "fhir.deliver_tls",
                "give both cert and key for a client certificate, or neither",
            );
        }
    }
}

/// `[broker]`: present when the uplink is AMQP, with a usable URL and
/// prefix and a credentials file that exists.
fn check_broker(config: &AdapterFile, exchange: &Exchange, problems: &mut Problems) {
    match (&config.broker, exchange.uplink) {
        (None, crate::Uplink::Amqp) => problems.add(
            "broker",
            format!(
                "exchange {} has uplink = \"amqp\": give [broker] (url, credentials)",
                exchange.id
            ),
        ),
        (Some(broker), _) => {
            let settings = crate::BrokerConfig {
                prefix: broker.prefix.clone(),
                ..crate::BrokerConfig::new(broker.url.clone())
            };
            for (key, problem) in settings.problems() {
                problems.add(format!("broker.{key}"), problem);
            }
            if broker
                .url
                .split_once("://")
                .is_some_and(|(_, rest)| rest.contains('@'))
            {
                problems.add(
                    "broker.url",
                    "must not carry credentials; they come from `credentials`",
                );
            }
            if !broker.credentials.is_file() {
                problems.add(
                    "broker.credentials",
                    format!("{} is not a readable file", broker.credentials.display()),
                );
            }
        }
        (None, crate::Uplink::Grpc) => {}
    }
}

/// `[hl7v2.tls]` and `[hl7v2.deliver_tls]`: the files exist, a client
/// certificate comes with its key, the server name is one.
fn check_mllp_tls(settings: &Hl7v2Settings, problems: &mut Problems) {
    let mut file = |key: &str, path: &Path| {
        if !path.is_file() {
            problems.add(key, format!("{} is not a readable file", path.display()));
        }
    };
    if let Some(tls) = &settings.tls {
        file("hl7v2.tls.cert", &tls.cert);
        file("hl7v2.tls.key", &tls.key);
        if let Some(ca) = &tls.client_ca {
            file("hl7v2.tls.client_ca", ca);
        }
    }
    if let Some(tls) = &settings.deliver_tls {
        file("hl7v2.deliver_tls.ca", &tls.ca);
        if let Some(cert) = &tls.cert {
            file("hl7v2.deliver_tls.cert", cert);
        }
        if let Some(key) = &tls.key {
            file("hl7v2.deliver_tls.key", key);
        }
        if tls.cert.is_some() != tls.key.is_some() {
            problems.add(
                "hl7v2.deliver_tls",
                "give both cert and key for a client certificate, or neither",
            );
        }
        let name = tls.server_name.trim();
        let bad_ip = name.contains(':') && name.parse::<std::net::IpAddr>().is_err();
        if name.is_empty() || name.contains(char::is_whitespace) || bad_ip {
            problems.add(
                "hl7v2.deliver_tls.server_name",
                format!("{:?} is not a DNS name or IP address", tls.server_name),
            );
        }
    }
}

/// `host:port` with a non-empty host and a port number from 1.
fn is_host_port(text: &str) -> bool {
    text.rsplit_once(':').is_some_and(|(host, port)| {
        !host.trim().is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topology(dir: &Path) {
        let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("reference");
        std::fs::write(
            dir.join("topology.toml"),
            format!(
                r#"ods_reference = ["{}"]
[[region]]
code = "NWL"
name = "North West London"
[[exchange]]
id = "nwl-imperial"
name = "Imperial"
region = "NWL"
organisations = ["RYJ"]
[exchange.adapter]
kind = "hl7v2-mllp"
listen = "127.0.0.1:26101"
deliver_to = "127.0.0.1:27101"
"#,
                reference.join("london_nhs_trusts.csv").display()
            ),
        )
        .unwrap();
    }

    fn load(text: &str) -> Result<AdapterSettings, ConfigError> {
        load_with(text, false).1
    }

    /// Loads `text` next to the test topology; with `amqp`, the exchange's
    /// uplink is AMQP and a credentials file `users.toml` exists.
    fn load_with(
        text: &str,
        amqp: bool,
    ) -> (tempfile::TempDir, Result<AdapterSettings, ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        topology(dir.path());
        if amqp {
            let file = dir.path().join("topology.toml");
            let topology = std::fs::read_to_string(&file).unwrap().replace(
                "[exchange.adapter]",
                "uplink = \"amqp\"\n[exchange.adapter]",
            );
            std::fs::write(&file, topology).unwrap();
            std::fs::write(
                dir.path().join("users.toml"),
                "[nwl-imperial]\nuser = \"lhcie-nwl-imperial\"\npassword = \"p@ss word\"\n",
            )
            .unwrap();
        }
        let file = dir.path().join("adapter.toml");
        std::fs::write(&file, text).unwrap();
        let loaded = AdapterSettings::load(&file);
        (dir, loaded)
    }

    const BASE: &str = r#"
topology = "topology.toml"
exchange = "nwl-imperial"
[store]
path = "store"
"#;

    const TLS: &str = r#"[hub]
endpoint = "https://127.0.0.1:50051"
[hub.tls]
ca = "pki/ca.pem"
cert = "pki/a.pem"
key = "pki/a.key"
"#;

    #[test]
    fn the_amqp_uplink_needs_a_broker_without_credentials_in_its_url() {
        let missing = load_with(&format!("{BASE}{TLS}"), true).1.unwrap_err();
        assert_eq!(missing.problems[0].key, "broker", "{missing}");
        assert!(
            missing.to_string().contains("uplink = \"amqp\""),
            "{missing}"
        );

        let broker =
            "[broker]\nurl = \"amqp://127.0.0.1:5672/%2f\"\ncredentials = \"users.toml\"\n";
        let (_dir, settings) = load_with(&format!("{BASE}{broker}{TLS}"), true);
        let settings = settings.unwrap();
        let config = settings.file.broker.as_ref().unwrap();
        assert_eq!(config.prefix, "lhcie");
        let broker = config.for_exchange(&settings.exchange.id).unwrap();
        assert_eq!(
            broker.url,
            "amqp://lhcie-nwl-imperial:p%40ss%20word@127.0.0.1:5672/%2f"
        );
        assert!(!format!("{broker:?}").contains("p%40ss"));

        let with_password = "[broker]\nurl = \"amqp://guest:guest@127.0.0.1:5672/%2f\"\ncredentials = \"nowhere.toml\"\n";
        let error = load_with(&format!("{BASE}{with_password}{TLS}"), true)
            .1
            .unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["broker.url", "broker.credentials"], "{error}");
    }

    #[test]
    fn a_complete_file_loads_with_the_exchange_from_the_topology() {
        let settings = load(&format!("{BASE}{TLS}")).unwrap();
        assert_eq!(settings.exchange.adapter.kind(), "hl7v2-mllp");
        assert_eq!(settings.file.hl7v2, Hl7v2Settings::default());
        let tls = settings.file.hub.tls.unwrap();
        assert!(tls.ca.is_absolute() || tls.ca.starts_with(std::env::temp_dir()));
        assert_eq!(tls.server_name, "localhost");
    }

    #[test]
    fn metrics_are_optional_and_listen_is_an_address() {
        assert_eq!(load(&format!("{BASE}{TLS}")).unwrap().file.metrics, None);
        let settings = load(&format!(
            "{BASE}{TLS}[metrics]\nlisten = \"127.0.0.1:9501\"\n"
        ))
        .unwrap();
        assert_eq!(
            settings.file.metrics,
            Some(AdapterMetricsConfig {
                listen: "127.0.0.1:9501".parse().unwrap()
            })
        );
        let error = load(&format!("{BASE}{TLS}[metrics]\nlisten = \"nowhere\"\n")).unwrap_err();
        assert!(error.problems[0].key.contains("metrics"), "{error}");
        let error = load(&format!(
            "{BASE}{TLS}[metrics]\nlisten = \"127.0.0.1:9501\"\nport = 1\n"
        ))
        .unwrap_err();
        assert!(
            error.problems[0].message.contains("unknown field"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let error = load(&format!("{BASE}{TLS}[hl7v2]\nack_wait = 5\n")).unwrap_err();
        assert!(
            error.problems[0].message.contains("unknown field"),
            "{error}"
        );
        assert!(error.problems[0].key.contains("hl7v2"), "{error}");
    }

    #[test]
    fn problems_are_reported_together() {
        let text = r#"
topology = "topology.toml"
exchange = "nwl-nowhere"
[store]
path = "store"
[hub]
endpoint = "127.0.0.1:50051"
[hl7v2]
delivery_retry_max_ms = 1
"#;
        let error = load(text).unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "hub",
                "hub.endpoint",
                "hl7v2.delivery_retry_max_ms",
                "exchange"
            ],
            "{error}"
        );
    }

    #[test]
    fn the_sender_default_must_belong_to_the_exchange() {
        let error = load(&format!("{BASE}{TLS}[hl7v2]\nsender_ods = \"RAL\"\n")).unwrap_err();
        assert_eq!(error.problems[0].key, "hl7v2.sender_ods", "{error}");
    }

    #[test]
    fn notify_to_defaults_to_none_and_must_be_host_port() {
        let settings = load(&format!(
            "{BASE}{TLS}[hl7v2]\nnotify_to = \"127.0.0.1:27102\"\n"
        ))
        .unwrap();
        assert_eq!(
            settings.file.hl7v2.notify_to.as_deref(),
            Some("127.0.0.1:27102")
        );
        assert_eq!(
            load(&format!("{BASE}{TLS}")).unwrap().file.hl7v2.notify_to,
            None
        );
        for bad in [
            "127.0.0.1",
            "127.0.0.1:port",
            ":27102",
            "host:0",
            "host:70000",
        ] {
            let error = load(&format!("{BASE}{TLS}[hl7v2]\nnotify_to = \"{bad}\"\n")).unwrap_err();
            assert_eq!(error.problems[0].key, "hl7v2.notify_to", "{bad}: {error}");
        }
    }

    fn pki(dir: &Path) {
        for name in [
            "mllp.pem",
            "mllp.key",
            "local-ca.pem",
            "client.pem",
            "client.key",
        ] {
            std::fs::write(dir.join(name), "PEM").unwrap();
        }
    }

    fn load_with_pki(text: &str) -> Result<AdapterSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        topology(dir.path());
        pki(dir.path());
        let file = dir.path().join("adapter.toml");
        std::fs::write(&file, text).unwrap();
        AdapterSettings::load(&file)
    }

    #[test]
    fn mllp_tls_loads_with_paths_resolved() {
        let settings = load_with_pki(&format!(
            "{BASE}{TLS}[hl7v2.tls]\ncert = \"mllp.pem\"\nkey = \"mllp.key\"\nclient_ca = \"local-ca.pem\"\n[hl7v2.deliver_tls]\nca = \"local-ca.pem\"\ncert = \"client.pem\"\nkey = \"client.key\"\nserver_name = \"epr.example\"\n"
        ))
        .unwrap();
        let listen = settings.file.hl7v2.tls.unwrap();
        assert!(listen.cert.is_absolute() && listen.cert.ends_with("mllp.pem"));
        assert!(listen.client_ca.unwrap().ends_with("local-ca.pem"));
        let deliver = settings.file.hl7v2.deliver_tls.unwrap();
        assert!(deliver.ca.is_absolute());
        assert!(deliver.key.unwrap().ends_with("client.key"));
        assert_eq!(deliver.server_name, "epr.example");
    }

    #[test]
    fn mllp_tls_problems_are_reported() {
        let error = load_with_pki(&format!(
            "{BASE}{TLS}[hl7v2.tls]\ncert = \"missing.pem\"\nkey = \"mllp.key\"\n[hl7v2.deliver_tls]\nca = \"local-ca.pem\"\ncert = \"client.pem\"\nserver_name = \"not a name\"\n"
        ))
        .unwrap_err();
        let keys: Vec<&str> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "hl7v2.tls.cert",
                "hl7v2.deliver_tls",
                "hl7v2.deliver_tls.server_name"
            ],
            "{error}"
        );
        let error = load_with_pki(&format!(
            "{BASE}{TLS}[hl7v2.deliver_tls]\nca = \"local-ca.pem\"\n"
        ))
        .unwrap_err();
        assert!(error.problems[0].message.contains("server_name"), "{error}");
    }
}
