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
//! # [[hl7v2.document_types]]          # TXA-2.1 codes beyond (or replacing) the defaults
//! # code = "XLET"                     #   (lhcie_hl7v2::document_types); may repeat
//! # category = "discharge-summary"    # a document category
//! # snomed = "823691000000103"        # the SNOMED CT record type
//! # display = "Clinical letter"
//!
//! [broker]                           # required when the exchange's uplink = "amqp"
//! url = "amqp://127.0.0.1:5672/%2f"  # no credentials here; amqps:// unless loopback
//! credentials = "var/secrets/broker/nwl-imperial.toml"   # this exchange's own file,
//!                                    # written by `hub provision-broker-users` (mode 0600)
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
//! #                                   # (https://, or http:// to a loopback host only)
//! # inbound_tokens_file = "secrets/fhir-clients"  # bearer tokens the listener accepts
//! max_connections = 256               # open connections to the listener at once
//! header_read_timeout_ms = 10000      # TLS handshake and request headers
//! body_timeout_ms = 30000             # the whole request body
//! connection_timeout_ms = 300000      # a connection's whole life
//! # allow_plaintext_reason = "..."    # plain HTTP on a non-loopback listen address
//! # allow_unauthenticated_reason = "..."  # no client certificate or token there
//! # [fhir.listen_tls]                 # the listener speaks HTTPS
//! # cert = "pki/fhir-listener.pem"
//! # key = "pki/fhir-listener.key"
//! # client_ca = "pki/local-ca.pem"    # require client certificates chaining to it
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
//! # (plain MLLP, or no client_ca, on a non-loopback listen address needs
//! #  [hl7v2] allow_plaintext_reason / allow_unauthenticated_reason)
//!
//! [hl7v2.limits]                      # optional: the MLLP listener's limits; defaults
//! max_frame_bytes = 4194304           # shown (crate::mllp_limits); larger: AR, closed
//! max_connections = 256               # open connections at once; more wait
//! # max_connections_per_peer = 8      # from one IP address; one more is closed at once
//! first_byte_timeout_ms = 600000      # a new connection must start a frame within this
//! idle_timeout_ms = 600000            # silence between frames
//! byte_timeout_ms = 30000             # silence inside a frame
//! frame_timeout_ms = 30000            # one whole frame
//!
//! [hl7v2.deliver_tls]                 # optional: deliveries and late ACKs over TLS
//! ca = "pki/local-ca.pem"             # the local system's certificate chains to it
//! server_name = "epr.example.nhs.uk"  # the name that certificate must carry
//! # cert = "pki/adapter-client.pem"   # a client certificate, with key
//! # key = "pki/adapter-client.key"
//! ```
//!
//! Relative paths are relative to the file.
//!
//! Listeners towards the local systems (the topology's `listen`) on an
//! address other than loopback must speak TLS and authenticate their
//! clients (MLLP: `[hl7v2.tls] client_ca`; FHIR: `[fhir.listen_tls]
//! client_ca` or `inbound_tokens_file`); otherwise the file must say why
//! not, per listener (`allow_plaintext_reason`,
//! `allow_unauthenticated_reason`), and the reason is logged at start-up.
//! `[hub] insecure_plaintext` is accepted only with a loopback hub
//! endpoint. See `docs/security.md`, "Adapter listeners".

use std::path::{Path, PathBuf};

use lhcie_model::{BodyKind, Category, ExchangeId, OdsCode};
use serde::Deserialize;

use crate::broker::{is_loopback_host, url_host};
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
    /// HTTPS on the listener (`[fhir.listen_tls]`), optionally requiring
    /// client certificates; plain HTTP if absent.
    #[serde(default)]
    pub listen_tls: Option<ListenTls>,
    /// A file of bearer tokens the listener accepts (`Authorization: Bearer
    /// <token>`), one per line (blank lines and `#` comments ignored; each
    /// at least 32 characters). With it, a request without one of them is
    /// answered 401 and never processed. None: no token is asked for.
    #[serde(default)]
    pub inbound_tokens_file: Option<PathBuf>,
    /// The most connections the listener keeps open at once; further
    /// clients wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client has for the TLS handshake and for each request's
    /// headers, in milliseconds; then the connection is closed.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a client has to send a whole request body, in milliseconds
    /// (400 beyond).
    #[serde(default = "default_body_timeout_ms")]
    pub body_timeout_ms: u64,
    /// The longest a connection stays open, in milliseconds; then it is
    /// closed after the request in progress.
    #[serde(default = "default_connection_timeout_ms")]
    pub connection_timeout_ms: u64,
    /// Why plain HTTP is acceptable on a non-loopback listen address
    /// (logged at start-up); without it, such a listener needs
    /// `[fhir.listen_tls]`.
    #[serde(default)]
    pub allow_plaintext_reason: Option<String>,
    /// Why clients need not authenticate on a non-loopback listen address
    /// (logged at start-up); without it, such a listener needs
    /// `[fhir.listen_tls] client_ca` or `inbound_tokens_file`.
    #[serde(default)]
    pub allow_unauthenticated_reason: Option<String>,
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
            listen_tls: None,
            inbound_tokens_file: None,
            max_connections: default_max_connections(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_timeout_ms: default_body_timeout_ms(),
            connection_timeout_ms: default_connection_timeout_ms(),
            allow_plaintext_reason: None,
            allow_unauthenticated_reason: None,
        }
    }
}

fn default_max_connections() -> usize {
    256
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_body_timeout_ms() -> u64 {
    30_000
}

fn default_connection_timeout_ms() -> u64 {
    300_000
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
    /// This exchange's own credentials file, as `hub provision-broker-users`
    /// wrote it (`<dir>/<exchange-id>.toml`: `exchange`, `user`,
    /// `password`); it must not be readable by group or others.
    pub credentials: PathBuf,
}

fn default_broker_prefix() -> String {
    "lhcie".into()
}

/// One exchange's broker credentials file, as `hub
/// provision-broker-users` writes it.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerCredentialsFile {
    /// The exchange these credentials belong to.
    pub exchange: ExchangeId,
    /// The broker user (`<prefix>-<exchange-id>`).
    pub user: String,
    /// Its password.
    pub password: String,
}

impl std::fmt::Debug for BrokerCredentialsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCredentialsFile")
            .field("exchange", &self.exchange)
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

impl BrokerCredentialsFile {
    /// The file of `exchange`'s credentials in `dir`: `<dir>/<exchange>.toml`.
    pub fn path_in(dir: &Path, exchange: &ExchangeId) -> PathBuf {
        dir.join(format!("{exchange}.toml"))
    }

    /// Writes these credentials to [`BrokerCredentialsFile::path_in`]
    /// `dir` (creating `dir`), readable by the owner only: the mode is set
    /// to 0600 explicitly, also when the file already existed, before the
    /// password is written. Returns the file.
    pub fn write_in(&self, dir: &Path) -> std::io::Result<PathBuf> {
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::create_dir_all(dir)?;
        let path = Self::path_in(dir, &self.exchange);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        let quoted = |text: &str| toml::Value::String(text.to_owned()).to_string();
        write!(
            file,
            "# Broker user of exchange {exchange}'s adapter, from `hub provision-broker-users`. Keep secret.\nexchange = {}\nuser = {}\npassword = {}\n",
            quoted(self.exchange.as_str()),
            quoted(&self.user),
            quoted(&self.password),
            exchange = self.exchange,
        )?;
        file.sync_all()?;
        Ok(path)
    }
}

/// Why a secret file may not be used: readable by group or others.
fn secret_file_problem(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o077 != 0).then(|| {
        format!(
            "{} is readable by group or others (mode {:o}): chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

impl AdapterBrokerConfig {
    /// The broker settings with `exchange`'s user and password from its
    /// own credentials file (which must name `exchange`).
    pub fn for_exchange(&self, exchange: &ExchangeId) -> Result<crate::BrokerConfig, ConfigError> {
        if let Some(problem) = secret_file_problem(&self.credentials) {
            return Err(ConfigError::one(&self.credentials, "credentials", problem));
        }
        let user: BrokerCredentialsFile = toml_file::read(&self.credentials)?;
        if &user.exchange != exchange {
            return Err(ConfigError::one(
                &self.credentials,
                "exchange",
                format!(
                    "these are exchange {}'s credentials, not {exchange}'s (each adapter reads only its own file from `hub provision-broker-users`)",
                    user.exchange
                ),
            ));
        }
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
    /// Development only: plain-text gRPC to a hub in insecure mode; only
    /// with a loopback `endpoint` (`127.0.0.1`, `::1`, `localhost`).
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
    /// TXA-2.1 document types added to the defaults, or replacing the
    /// default of the same code (`[[hl7v2.document_types]]`).
    #[serde(default)]
    pub document_types: Vec<Hl7v2DocumentType>,
    /// The local system's MLLP endpoint (`host:port`) for rejections the
    /// hub gives after the message was answered AA, each sent as an ACK
    /// message of its own. `None`: the exchange's `deliver_to`.
    #[serde(default)]
    pub notify_to: Option<String>,
    /// TLS on the MLLP listener (`[hl7v2.tls]`); plain TCP if absent.
    #[serde(default)]
    pub tls: Option<MllpListenTls>,
    /// The MLLP listener's limits (`[hl7v2.limits]`: frame size,
    /// connections in total and per peer address, timeouts); the former
    /// fixed values by default. See [`crate::mllp_limits`].
    #[serde(default)]
    pub limits: crate::MllpLimits,
    /// TLS towards the local system (`[hl7v2.deliver_tls]`), for
    /// deliveries and late acknowledgements; plain TCP if absent.
    #[serde(default)]
    pub deliver_tls: Option<MllpDeliverTls>,
    /// Why plain MLLP is acceptable on a non-loopback listen address
    /// (logged at start-up); without it, such a listener needs
    /// `[hl7v2.tls]`.
    #[serde(default)]
    pub allow_plaintext_reason: Option<String>,
    /// Why clients need not present a certificate on a non-loopback listen
    /// address (logged at start-up); without it, such a listener needs
    /// `[hl7v2.tls] client_ca`.
    #[serde(default)]
    pub allow_unauthenticated_reason: Option<String>,
}

/// `[[hl7v2.document_types]]`: one TXA-2.1 code and what it means.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Hl7v2DocumentType {
    /// TXA-2.1 (HL7 table 0270 or a local code), compared without regard
    /// to case: 1 to 20 letters, digits, `-` or `_`.
    pub code: String,
    /// The canonical category: a document category (`discharge-summary`,
    /// `repatriation-request`, `cancer-document`, `end-of-life-care-plan`).
    pub category: Category,
    /// The SNOMED CT record type (a concept id: 6 to 18 digits).
    pub snomed: String,
    /// Its display, e.g. `Clinical letter`.
    pub display: String,
}

/// `[[hl7v2.document_types]]`: well-formed, each code once, document
/// categories only.
fn check_document_types(types: &[Hl7v2DocumentType], problems: &mut Problems) {
    for (i, t) in types.iter().enumerate() {
        let key = |field: &str| format!("hl7v2.document_types[{i}].{field}");
        let code_ok = (1..=20).contains(&t.code.len())
            && t.code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !code_ok {
            problems.add(key("code"), "must be 1 to 20 letters, digits, - or _");
        } else if types[..i]
            .iter()
            .any(|o| o.code.eq_ignore_ascii_case(&t.code))
        {
            problems.add(key("code"), format!("{} is given twice", t.code));
        }
        if t.category.body_kind() != BodyKind::Document {
            problems.add(
                key("category"),
                format!("{} is not a document category", t.category),
            );
        }
        if !((6..=18).contains(&t.snomed.len()) && t.snomed.bytes().all(|b| b.is_ascii_digit())) {
            problems.add(
                key("snomed"),
                "must be a SNOMED CT concept id (6 to 18 digits)",
            );
        }
        if t.display.trim().is_empty() {
            problems.add(key("display"), "must not be empty");
        }
    }
}

/// TLS on a listener towards the local systems (MLLP `[hl7v2.tls]`, FHIR
/// `[fhir.listen_tls]`).
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
            document_types: Vec::new(),
            notify_to: None,
            tls: None,
            limits: crate::MllpLimits::default(),
            deliver_tls: None,
            allow_plaintext_reason: None,
            allow_unauthenticated_reason: None,
        }
    }
}

/// TLS on a listener towards the local systems (the same settings for
/// MLLP and FHIR).
pub type ListenTls = MllpListenTls;

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
        if let Some(tokens) = &mut config.fhir.inbound_tokens_file {
            *tokens = base.join(&*tokens);
        }
        if let Some(tls) = &mut config.fhir.listen_tls {
            tls.cert = base.join(&tls.cert);
            tls.key = base.join(&tls.key);
            tls.client_ca = tls.client_ca.as_ref().map(|ca| base.join(ca));
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
        if hub.insecure_plaintext && !is_loopback_host(&url_host(&hub.endpoint)) {
            problems.add(
                "hub.insecure_plaintext",
                format!(
                    "only with a loopback hub endpoint (127.0.0.1, ::1, localhost), not {}: give [hub.tls]",
                    hub.endpoint
                ),
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
        settings.limits.check("hl7v2.limits", &mut problems);
        check_document_types(&settings.document_types, &mut problems);
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
                check_listeners(&config, exchange, &mut problems);
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
                if let AdapterConfig::FhirR4 { deliver_to, .. } = &exchange.adapter {
                    if !(deliver_to.starts_with("http://") || deliver_to.starts_with("https://")) {
                        problems.add(
                            "exchange.adapter.deliver_to",
                            format!("{deliver_to} is not an http:// or https:// base URL"),
                        );
                    } else if config.fhir.bearer_token_file.is_some()
                        && deliver_to.starts_with("http://")
                        && !is_loopback_host(&url_host(deliver_to))
                    {
                        problems.add(
                            "fhir.bearer_token_file",
                            format!(
                                "the bearer token would travel in clear to {deliver_to}: use an https:// deliver_to with [fhir.deliver_tls] (http:// only to a loopback host)"
                            ),
                        );
                    }
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
    if !(1..=100_000).contains(&settings.max_connections) {
        problems.add("fhir.max_connections", "must be 1 to 100000");
    }
    if !(100..=600_000).contains(&settings.header_read_timeout_ms) {
        problems.add("fhir.header_read_timeout_ms", "must be 100 to 600000");
    }
    if !(100..=3_600_000).contains(&settings.body_timeout_ms) {
        problems.add("fhir.body_timeout_ms", "must be 100 to 3600000");
    }
    if !(1_000..=86_400_000).contains(&settings.connection_timeout_ms) {
        problems.add("fhir.connection_timeout_ms", "must be 1000 to 86400000");
    }
    let mut file = |key: &str, path: &Path| {
        if !path.is_file() {
            problems.add(key, format!("{} is not a readable file", path.display()));
        }
    };
    if let Some(token) = &settings.bearer_token_file {
        file("fhir.bearer_token_file", token);
    }
    if let Some(tokens) = &settings.inbound_tokens_file {
        file("fhir.inbound_tokens_file", tokens);
    }
    if let Some(tls) = &settings.listen_tls {
        file("fhir.listen_tls.cert", &tls.cert);
        file("fhir.listen_tls.key", &tls.key);
        if let Some(ca) = &tls.client_ca {
            file("fhir.listen_tls.client_ca", ca);
        }
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
    if let Some(tokens) = &settings.inbound_tokens_file
        && tokens.is_file()
    {
        if let Some(problem) = secret_file_problem(tokens) {
            problems.add("fhir.inbound_tokens_file", problem);
        }
        match std::fs::read_to_string(tokens) {
            Ok(text) => match inbound_tokens(&text) {
                Ok(_) => {}
                Err(problem) => problems.add("fhir.inbound_tokens_file", problem),
            },
            Err(error) => problems.add(
                "fhir.inbound_tokens_file",
                format!("cannot read {}: {error}", tokens.display()),
            ),
        }
    }
}

/// The bearer tokens in an `inbound_tokens_file`: one per line, blank lines
/// and `#` comments ignored, each at least 32 visible ASCII characters;
/// at least one.
pub fn inbound_tokens(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let token = line.trim();
        if token.is_empty() || token.starts_with('#') {
            continue;
        }
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "line {}: a token must be at least 32 visible ASCII characters, without spaces",
                number + 1
            ));
        }
        tokens.push(token.to_owned());
    }
    if tokens.is_empty() {
        return Err("holds no token".into());
    }
    Ok(tokens)
}

/// The listeners towards the local systems: on a non-loopback address,
/// TLS and client authentication unless the file says why not.
fn check_listeners(config: &AdapterFile, exchange: &Exchange, problems: &mut Problems) {
    let reason_given = |key: &str, reason: &Option<String>, problems: &mut Problems| match reason {
        Some(reason) if reason.trim().is_empty() => {
            problems.add(
                key,
                "give a reason (it is logged at start-up), or remove the key",
            );
            false
        }
        Some(_) => true,
        None => false,
    };
    match &exchange.adapter {
        AdapterConfig::Hl7v2Mllp { listen, .. } => {
            let settings = &config.hl7v2;
            let plaintext_ok = reason_given(
                "hl7v2.allow_plaintext_reason",
                &settings.allow_plaintext_reason,
                problems,
            );
            let unauthenticated_ok = reason_given(
                "hl7v2.allow_unauthenticated_reason",
                &settings.allow_unauthenticated_reason,
                problems,
            );
            if listen.ip().is_loopback() {
                return;
            }
            if settings.tls.is_none() && !plaintext_ok {
                problems.add(
                    "hl7v2.tls",
                    format!(
                        "the MLLP listener {listen} is not on a loopback address: give [hl7v2.tls], or allow_plaintext_reason = \"...\" in [hl7v2]"
                    ),
                );
            }
            let authenticated = settings
                .tls
                .as_ref()
                .is_some_and(|tls| tls.client_ca.is_some());
            if !authenticated && !unauthenticated_ok {
                problems.add(
                    "hl7v2.tls.client_ca",
                    format!(
                        "the MLLP listener {listen} is not on a loopback address: require client certificates ([hl7v2.tls] client_ca), or allow_unauthenticated_reason = \"...\" in [hl7v2]"
                    ),
                );
            }
        }
        AdapterConfig::FhirR4 { listen, .. } => {
            let settings = &config.fhir;
            let plaintext_ok = reason_given(
                "fhir.allow_plaintext_reason",
                &settings.allow_plaintext_reason,
                problems,
            );
            let unauthenticated_ok = reason_given(
                "fhir.allow_unauthenticated_reason",
                &settings.allow_unauthenticated_reason,
                problems,
            );
            if listen.ip().is_loopback() {
                return;
            }
            if settings.listen_tls.is_none() && !plaintext_ok {
                problems.add(
                    "fhir.listen_tls",
                    format!(
                        "the FHIR listener {listen} is not on a loopback address: give [fhir.listen_tls], or allow_plaintext_reason = \"...\" in [fhir]"
                    ),
                );
            }
            let authenticated = settings.inbound_tokens_file.is_some()
                || settings
                    .listen_tls
                    .as_ref()
                    .is_some_and(|tls| tls.client_ca.is_some());
            if !authenticated && !unauthenticated_ok {
                problems.add(
                    "fhir.inbound_tokens_file",
                    format!(
                        "the FHIR listener {listen} is not on a loopback address: authenticate clients ([fhir.listen_tls] client_ca or inbound_tokens_file), or allow_unauthenticated_reason = \"...\" in [fhir]"
                    ),
                );
            }
        }
        _ => {}
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
            } else if let Some(problem) = secret_file_problem(&broker.credentials) {
                problems.add("broker.credentials", problem);
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
            let users = dir.path().join("users.toml");
            std::fs::write(
                &users,
                "exchange = \"nwl-imperial\"\nuser = \"lhcie-nwl-imperial\"\npassword = \"p@ss word\"\n",
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
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
    fn document_types_are_read_and_checked() {
        let entry = "[[hl7v2.document_types]]\ncode = \"XLET\"\ncategory = \"discharge-summary\"\nsnomed = \"823691000000103\"\ndisplay = \"Clinical letter\"\n";
        let settings = load(&format!("{BASE}{TLS}{entry}")).unwrap();
        assert_eq!(
            settings.file.hl7v2.document_types,
            vec![Hl7v2DocumentType {
                code: "XLET".into(),
                category: Category::DischargeSummary,
                snomed: "823691000000103".into(),
                display: "Clinical letter".into(),
            }]
        );
        let bad = "[[hl7v2.document_types]]\ncode = \"X|Y\"\ncategory = \"result\"\nsnomed = \"12\"\ndisplay = \" \"\n";
        let error = load(&format!("{BASE}{TLS}{bad}")).unwrap_err();
        let keys: Vec<_> = error.problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "hl7v2.document_types[0].code",
                "hl7v2.document_types[0].category",
                "hl7v2.document_types[0].snomed",
                "hl7v2.document_types[0].display"
            ],
            "{error}"
        );
        let twice = load(&format!(
            "{BASE}{TLS}{entry}{}",
            entry.replace("XLET", "xlet")
        ))
        .unwrap_err();
        assert_eq!(
            twice.problems[0].key, "hl7v2.document_types[1].code",
            "{twice}"
        );
    }

    #[test]
    fn mllp_limits_are_read_from_their_table_and_checked_with_their_keys() {
        let settings = load(&format!(
            "{BASE}{TLS}[hl7v2.limits]\nmax_frame_bytes = 1048576\nmax_connections_per_peer = 4\n"
        ))
        .unwrap();
        let limits = settings.file.hl7v2.limits;
        assert_eq!(limits.max_frame_bytes, 1_048_576);
        assert_eq!(limits.max_connections_per_peer, Some(4));
        assert_eq!(limits.max_connections, 256);
        let error = load(&format!(
            "{BASE}{TLS}[hl7v2.limits]\nmax_connections = 0\nidle_timeout_ms = 0\n"
        ))
        .unwrap_err();
        assert_eq!(
            keys(&error),
            [
                "hl7v2.limits.max_connections",
                "hl7v2.limits.idle_timeout_ms"
            ],
            "{error}"
        );
        let error = load(&format!("{BASE}{TLS}[hl7v2.limits]\nmax_frame = 1\n")).unwrap_err();
        assert!(
            error.problems[0].message.contains("unknown field"),
            "{error}"
        );
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

    /// `topology()` with the exchange's listener on `listen` and of `kind`
    /// (`hl7v2-mllp` or `fhir-r4`).
    fn load_listener(kind: &str, listen: &str, text: &str) -> Result<AdapterSettings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        topology(dir.path());
        pki(dir.path());
        let file = dir.path().join("topology.toml");
        let mut topology = std::fs::read_to_string(&file)
            .unwrap()
            .replace("127.0.0.1:26101", listen);
        if kind == "fhir-r4" {
            topology = topology
                .replace("hl7v2-mllp", "fhir-r4")
                .replace("\"127.0.0.1:27101\"", "\"http://10.1.2.3:8080/fhir\"");
        }
        std::fs::write(&file, topology).unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, "# clients\nabcdefghijklmnopqrstuvwxyz0123456789\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = dir.path().join("adapter.toml");
        std::fs::write(&file, format!("{BASE}{TLS}{text}")).unwrap();
        AdapterSettings::load(&file)
    }

    fn keys(error: &ConfigError) -> Vec<&str> {
        error.problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn plain_mllp_on_a_non_loopback_address_needs_tls_and_client_certificates_or_a_reason() {
        assert!(load_listener("hl7v2-mllp", "127.0.0.1:26101", "").is_ok());
        let error = load_listener("hl7v2-mllp", "0.0.0.0:26101", "").unwrap_err();
        assert_eq!(
            keys(&error),
            ["hl7v2.tls", "hl7v2.tls.client_ca"],
            "{error}"
        );
        assert!(error.to_string().contains("0.0.0.0:26101"), "{error}");
        let tls_only = "[hl7v2.tls]\ncert = \"mllp.pem\"\nkey = \"mllp.key\"\n";
        let error = load_listener("hl7v2-mllp", "10.0.0.7:26101", tls_only).unwrap_err();
        assert_eq!(keys(&error), ["hl7v2.tls.client_ca"], "{error}");
        let mutual = format!("{tls_only}client_ca = \"local-ca.pem\"\n");
        assert!(load_listener("hl7v2-mllp", "10.0.0.7:26101", &mutual).is_ok());
        let reasons = "[hl7v2]\nallow_plaintext_reason = \"isolated VLAN to the EPR, ticket 123\"\nallow_unauthenticated_reason = \"same\"\n";
        assert!(load_listener("hl7v2-mllp", "10.0.0.7:26101", reasons).is_ok());
        let empty = "[hl7v2]\nallow_plaintext_reason = \" \"\n";
        let error = load_listener("hl7v2-mllp", "10.0.0.7:26101", empty).unwrap_err();
        assert_eq!(
            keys(&error),
            [
                "hl7v2.allow_plaintext_reason",
                "hl7v2.tls",
                "hl7v2.tls.client_ca"
            ],
            "{error}"
        );
    }

    #[test]
    fn plain_http_on_a_non_loopback_address_needs_tls_and_authentication_or_a_reason() {
        let error = load_listener("fhir-r4", "0.0.0.0:28101", "").unwrap_err();
        assert_eq!(
            keys(&error),
            ["fhir.listen_tls", "fhir.inbound_tokens_file"],
            "{error}"
        );
        let tokens = "[fhir]\ninbound_tokens_file = \"tokens\"\n";
        let error = load_listener("fhir-r4", "0.0.0.0:28101", tokens).unwrap_err();
        assert_eq!(keys(&error), ["fhir.listen_tls"], "{error}");
        let https = format!("{tokens}[fhir.listen_tls]\ncert = \"mllp.pem\"\nkey = \"mllp.key\"\n");
        let settings = load_listener("fhir-r4", "0.0.0.0:28101", &https).unwrap();
        assert!(settings.file.fhir.listen_tls.unwrap().cert.is_absolute());
        let mutual = "[fhir.listen_tls]\ncert = \"mllp.pem\"\nkey = \"mllp.key\"\nclient_ca = \"local-ca.pem\"\n";
        assert!(load_listener("fhir-r4", "0.0.0.0:28101", mutual).is_ok());
        let reason = "[fhir]\nallow_plaintext_reason = \"TLS ends at the trust's proxy\"\ninbound_tokens_file = \"tokens\"\n";
        assert!(load_listener("fhir-r4", "0.0.0.0:28101", reason).is_ok());
        assert!(load_listener("fhir-r4", "127.0.0.1:28101", "").is_ok());
    }

    #[test]
    fn fhir_listener_limits_are_bounded_and_tokens_checked() {
        let settings = load_listener("fhir-r4", "127.0.0.1:28101", "").unwrap();
        assert_eq!(settings.file.fhir.max_connections, 256);
        assert_eq!(settings.file.fhir.header_read_timeout_ms, 10_000);
        let error = load_listener(
            "fhir-r4",
            "127.0.0.1:28101",
            "[fhir]\nmax_connections = 0\nheader_read_timeout_ms = 1\nbody_timeout_ms = 0\nconnection_timeout_ms = 10\n",
        )
        .unwrap_err();
        assert_eq!(
            keys(&error),
            [
                "fhir.max_connections",
                "fhir.header_read_timeout_ms",
                "fhir.body_timeout_ms",
                "fhir.connection_timeout_ms"
            ],
            "{error}"
        );
        assert!(inbound_tokens("short\n").is_err());
        assert!(inbound_tokens("# only a comment\n").is_err());
        assert_eq!(
            inbound_tokens("\n  abcdefghijklmnopqrstuvwxyz0123456789  \n").unwrap(),
            ["abcdefghijklmnopqrstuvwxyz0123456789"]
        );
    }

    #[test]
    fn a_bearer_token_never_goes_over_plain_http_to_another_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "t").unwrap();
        let token = format!(
            "[fhir]\nbearer_token_file = \"{}\"\n",
            dir.path().join("token").display()
        );
        // deliver_to is http://10.1.2.3:8080/fhir in load_listener's topology.
        let error = load_listener("fhir-r4", "127.0.0.1:28101", &token).unwrap_err();
        assert_eq!(keys(&error), ["fhir.bearer_token_file"], "{error}");
        assert!(error.to_string().contains("https://"), "{error}");
    }

    #[test]
    fn plaintext_to_the_hub_only_on_loopback() {
        let plain = |endpoint: &str| {
            load(&format!(
                "{BASE}[hub]\nendpoint = \"{endpoint}\"\ninsecure_plaintext = true\n"
            ))
        };
        assert!(plain("http://127.0.0.1:50051").is_ok());
        assert!(plain("http://localhost:50051").is_ok());
        assert!(plain("http://[::1]:50051").is_ok());
        let error = plain("http://hub.example.nhs.uk:50051").unwrap_err();
        assert_eq!(keys(&error), ["hub.insecure_plaintext"], "{error}");
    }

    #[test]
    fn plain_amqp_to_a_remote_broker_is_refused() {
        let broker = "[broker]\nurl = \"amqp://broker.example.nhs.uk:5672/%2f\"\ncredentials = \"users.toml\"\n";
        let error = load_with(&format!("{BASE}{broker}{TLS}"), true)
            .1
            .unwrap_err();
        assert_eq!(keys(&error), ["broker.url"], "{error}");
    }

    #[test]
    fn an_adapter_reads_only_its_own_private_credentials_file() {
        use std::os::unix::fs::PermissionsExt;
        let broker =
            "[broker]\nurl = \"amqp://127.0.0.1:5672/%2f\"\ncredentials = \"users.toml\"\n";
        let (dir, settings) = load_with(&format!("{BASE}{broker}{TLS}"), true);
        let settings = settings.unwrap();
        let users = dir.path().join("users.toml");
        let config = settings.file.broker.clone().unwrap();
        std::fs::write(
            &users,
            "exchange = \"ncl-royal-free\"\nuser = \"lhcie-ncl-royal-free\"\npassword = \"x\"\n",
        )
        .unwrap();
        let error = config.for_exchange(&settings.exchange.id).unwrap_err();
        assert!(error.to_string().contains("ncl-royal-free"), "{error}");
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).unwrap();
        let error = config.for_exchange(&settings.exchange.id).unwrap_err();
        assert!(error.to_string().contains("chmod 600"), "{error}");
        let error = load_with(&format!("{BASE}{broker}{TLS}"), true).1;
        assert!(error.is_ok());
        let (dir, _) = load_with(&format!("{BASE}{broker}{TLS}"), true);
        let users = dir.path().join("users.toml");
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o640)).unwrap();
        let error = AdapterSettings::load(&dir.path().join("adapter.toml")).unwrap_err();
        assert_eq!(keys(&error), ["broker.credentials"], "{error}");
    }

    #[test]
    fn credentials_files_are_written_per_exchange_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exchange = ExchangeId::parse("nwl-imperial").unwrap();
        let path = BrokerCredentialsFile::path_in(dir.path(), &exchange);
        // An existing file readable by others is made private.
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let written = BrokerCredentialsFile {
            exchange: exchange.clone(),
            user: "lhcie-nwl-imperial".into(),
            password: "p\"w\\d".into(),
        }
        .write_in(dir.path())
        .unwrap();
        assert_eq!(written, path);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let read: BrokerCredentialsFile = toml_file::read(&path).unwrap();
        assert_eq!(read.exchange, exchange);
        assert_eq!(read.password, "p\"w\\d");
    }
}
