//! # lhcie-config: typed, validated configuration
//!
//! Configuration is read and checked before any port is bound or any
//! connection made. Every struct rejects unknown keys, and every error names
//! the file, the key and what is wrong (all problems at once, not just the
//! first): see [`ConfigError`].
//!
//! - [`topology`]: London's regions, local exchanges, the organisations each
//!   serves and each exchange's adapter. Checked against ODS reference data
//!   ([`ods`]): an organisation must exist, be open, and belong to exactly
//!   one exchange.
//! - [`broker`]: the RabbitMQ connection and naming.
//! - [`policy`]: a fixed set of agreements and patient directives, for
//!   tests, and the demo agreements the registry is seeded with.
//! - [`hub`]: the hub's own file.
//! - [`adapter`]: an adapter's own file (hub endpoint, stores, kind
//!   settings; its kind and endpoints come from the topology).
//! - [`registry`]: a consent registry node's file, and how a hub follows
//!   the registry.
//! - [`toml_file`]: reading TOML with path- and line-aware errors.
//!
//! The demo topology of London is `config/demo/topology.toml`; the ODS
//! reference data is under `config/reference/`.

pub mod adapter;
pub mod broker;
pub mod error;
pub mod hub;
pub mod mllp_limits;
pub mod ods;
pub mod policy;
pub mod registry;
pub mod toml_file;
pub mod topology;

pub use adapter::{
    AdapterBrokerConfig, AdapterFile, AdapterSettings, BrokerCredentialsFile, FhirDeliverTls,
    FhirSettings, Hl7v2DocumentType, Hl7v2Settings, ListenTls, MllpDeliverTls, MllpListenTls,
    inbound_tokens,
};
pub use broker::{BrokerConfig, is_loopback_host};
pub use error::{ConfigError, Problem};
pub use hub::{DashboardConfig, HubConfig, RetentionConfig};
pub use mllp_limits::MllpLimits;
pub use ods::{OdsRegister, Organisation};
pub use policy::PolicyConfig;
pub use registry::{
    RegistryClientConfig, RegistryClientTlsSection, RegistryConfig, RegistryTlsSection,
};
pub use topology::{AdapterConfig, Exchange, ExchangeConfig, Region, Topology, Uplink};
