//! The topology: London's regions, the local exchanges in each, the
//! organisations each exchange serves, and how each exchange's adapter
//! talks to its local systems.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lhcie_model::{ExchangeId, OdsCode};
use serde::Deserialize;
use time::Date;

use crate::error::Problems;
use crate::ods::{OdsRegister, Organisation};
use crate::{ConfigError, toml_file};

/// The exchange id the hub signs its own acknowledgements with; no local
/// exchange may use it.
pub const RESERVED_EXCHANGE_ID: &str = "hub";

/// The topology file as written (see `config/demo/topology.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyFile {
    /// ODS reference CSV files, relative to the topology file. Every
    /// organisation named below must be listed in one of them and be open.
    pub ods_reference: Vec<PathBuf>,
    /// The regions (integrated care systems).
    #[serde(rename = "region")]
    pub regions: Vec<RegionConfig>,
    /// The local exchanges.
    #[serde(rename = "exchange")]
    pub exchanges: Vec<ExchangeConfig>,
}

/// A region: one of London's integrated care systems.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Short code, e.g. `NWL`.
    pub code: String,
    /// Display name, e.g. "North West London".
    pub name: String,
    /// ODS code of the region's integrated care board, if useful.
    #[serde(default)]
    pub icb: Option<OdsCode>,
}

/// One local exchange and its adapter.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ExchangeConfig {
    /// Stable id; names the exchange's queues, broker user and certificate.
    pub id: ExchangeId,
    /// Display name.
    pub name: String,
    /// Code of the region it belongs to.
    pub region: String,
    /// ODS codes of the organisations it serves. Each organisation belongs
    /// to exactly one exchange.
    pub organisations: Vec<OdsCode>,
    /// How the adapter connects to the hub.
    #[serde(default)]
    pub uplink: Uplink,
    /// The adapter kind and its endpoints towards the local systems.
    pub adapter: AdapterConfig,
}

/// How an adapter connects to the hub.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Uplink {
    /// gRPC with mutual TLS (the default).
    #[default]
    Grpc,
    /// AMQP through the broker.
    Amqp,
}

/// The adapter kind, with the endpoints that kind needs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AdapterConfig {
    /// The local system speaks the canonical model over gRPC itself; the
    /// adapter only relays.
    Native {},
    /// HL7 v2 over MLLP.
    Hl7v2Mllp {
        /// Where the adapter listens for the local systems' MLLP connections.
        listen: SocketAddr,
        /// The local system's MLLP endpoint that deliveries go to
        /// (`host:port`).
        deliver_to: String,
    },
    /// FHIR R4 over HTTP.
    FhirR4 {
        /// Where the adapter's FHIR endpoint listens.
        listen: SocketAddr,
        /// The local FHIR base URL that deliveries are posted to.
        deliver_to: String,
    },
}

impl AdapterConfig {
    /// The kind's name as written in configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            AdapterConfig::Native {} => "native",
            AdapterConfig::Hl7v2Mllp { .. } => "hl7v2-mllp",
            AdapterConfig::FhirR4 { .. } => "fhir-r4",
        }
    }

    fn listen(&self) -> Option<SocketAddr> {
        match self {
            AdapterConfig::Native {} => None,
            AdapterConfig::Hl7v2Mllp { listen, .. } | AdapterConfig::FhirR4 { listen, .. } => {
                Some(*listen)
            }
        }
    }
}

/// A region in a validated topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Short code, e.g. `NWL`.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Its integrated care board.
    pub icb: Option<OdsCode>,
}

/// An exchange in a validated topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// Its id.
    pub id: ExchangeId,
    /// Display name.
    pub name: String,
    /// Its region's code.
    pub region: String,
    /// The organisations it serves.
    pub organisations: Vec<OdsCode>,
    /// How its adapter connects to the hub.
    pub uplink: Uplink,
    /// Its adapter.
    pub adapter: AdapterConfig,
}

/// A validated topology: every exchange is in a known region, every
/// organisation is known to ODS, open, and served by exactly one exchange.
#[derive(Debug, Clone)]
pub struct Topology {
    file: PathBuf,
    regions: BTreeMap<String, Region>,
    exchanges: Vec<Exchange>,
    exchange_index: HashMap<ExchangeId, usize>,
    organisation_index: HashMap<OdsCode, usize>,
    organisations: HashMap<OdsCode, Organisation>,
}

impl Topology {
    /// Loads and validates a topology file, checking organisations are open
    /// today (UTC).
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        Self::load_as_of(file, time::OffsetDateTime::now_utc().date())
    }

    /// Loads and validates a topology file, checking organisations are open
    /// on `day`.
    pub fn load_as_of(file: &Path, day: Date) -> Result<Self, ConfigError> {
        let raw: TopologyFile = toml_file::read(file)?;
        let base = file.parent().unwrap_or(Path::new("."));
        let reference: Vec<PathBuf> = raw.ods_reference.iter().map(|p| base.join(p)).collect();
        let register = OdsRegister::load(&reference)?;
        Self::validate(file, raw, &register, day)
    }

    /// Validates a parsed topology against ODS reference data.
    pub fn validate(
        file: &Path,
        raw: TopologyFile,
        register: &OdsRegister,
        day: Date,
    ) -> Result<Self, ConfigError> {
        let mut problems = Problems::default();
        if raw.ods_reference.is_empty() {
            problems.add("ods_reference", "name at least one ODS reference file");
        }
        let mut regions = BTreeMap::new();
        for (i, region) in raw.regions.into_iter().enumerate() {
            let key = format!("region[{i}]");
            if region.code.is_empty() || !region.code.bytes().all(|b| b.is_ascii_uppercase()) {
                problems.add(format!("{key}.code"), "use upper-case letters, e.g. NWL");
            }
            let code = region.code.clone();
            let region = Region {
                code: region.code,
                name: region.name,
                icb: region.icb,
            };
            if regions.insert(code.clone(), region).is_some() {
                problems.add(
                    format!("{key}.code"),
                    format!("region {code} is defined twice"),
                );
            }
        }
        if raw.exchanges.is_empty() {
            problems.add("exchange", "define at least one exchange");
        }
        let mut exchanges = Vec::with_capacity(raw.exchanges.len());
        let mut exchange_index = HashMap::new();
        let mut organisation_index: HashMap<OdsCode, usize> = HashMap::new();
        let mut organisations = HashMap::new();
        let mut listeners: HashMap<SocketAddr, ExchangeId> = HashMap::new();
        for (i, exchange) in raw.exchanges.into_iter().enumerate() {
            let key = format!("exchange[{i}]");
            let label = format!("{key} ({})", exchange.id);
            if exchange.id.as_str() == RESERVED_EXCHANGE_ID {
                problems.add(
                    format!("{key}.id"),
                    format!("`{RESERVED_EXCHANGE_ID}` is reserved for the hub itself"),
                );
            }
            if exchange_index.insert(exchange.id.clone(), i).is_some() {
                problems.add(
                    format!("{key}.id"),
                    format!("exchange id {} is used twice", exchange.id),
                );
            }
            if !regions.contains_key(&exchange.region) {
                let known: Vec<&str> = regions.keys().map(String::as_str).collect();
                problems.add(
                    format!("{label}.region"),
                    format!(
                        "unknown region `{}` (known: {})",
                        exchange.region,
                        known.join(", ")
                    ),
                );
            }
            if exchange.organisations.is_empty() {
                problems.add(
                    format!("{label}.organisations"),
                    "an exchange must serve at least one organisation",
                );
            }
            for (j, code) in exchange.organisations.iter().enumerate() {
                let org_key = format!("{label}.organisations[{j}]");
                match register.get(code) {
                    None => problems.add(
                        org_key,
                        format!("{code} is not in the ODS reference data; add it to a reference file or correct the code"),
                    ),
                    Some(org) if !org.is_open_on(day) => {
                        let message = match org.close_date {
                            Some(closed) if closed < day => format!(
                                "{code} ({}) closed on {closed} and can no longer receive messages; remove it or name its successor",
                                org.name
                            ),
                            _ => format!("{code} ({}) does not open until {}", org.name, org.open_date),
                        };
                        problems.add(org_key, message);
                    }
                    Some(org) => {
                        organisations.insert(code.clone(), org.clone());
                    }
                }
                if let Some(&other) = organisation_index.get(code) {
                    let owner: &Exchange = &exchanges[other];
                    problems.add(
                        format!("{label}.organisations[{j}]"),
                        format!("{code} is already served by exchange {}; an organisation belongs to exactly one exchange", owner.id),
                    );
                } else {
                    organisation_index.insert(code.clone(), i);
                }
            }
            if let Some(listen) = exchange.adapter.listen()
                && let Some(other) = listeners.insert(listen, exchange.id.clone())
            {
                problems.add(
                    format!("{label}.adapter.listen"),
                    format!("{listen} is also the listen address of exchange {other}"),
                );
            }
            exchanges.push(Exchange {
                id: exchange.id,
                name: exchange.name,
                region: exchange.region,
                organisations: exchange.organisations,
                uplink: exchange.uplink,
                adapter: exchange.adapter,
            });
        }
        problems.into_result(file)?;
        Ok(Self {
            file: file.to_owned(),
            regions,
            exchanges,
            exchange_index,
            organisation_index,
            organisations,
        })
    }

    /// The file it was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Regions by code.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// Exchanges in file order.
    pub fn exchanges(&self) -> &[Exchange] {
        &self.exchanges
    }

    /// The exchange with this id.
    pub fn exchange(&self, id: &ExchangeId) -> Option<&Exchange> {
        self.exchange_index.get(id).map(|&i| &self.exchanges[i])
    }

    /// The exchange that serves this organisation.
    pub fn exchange_serving(&self, organisation: &OdsCode) -> Option<&Exchange> {
        self.organisation_index
            .get(organisation)
            .map(|&i| &self.exchanges[i])
    }

    /// Reference data of a served organisation.
    pub fn organisation(&self, code: &OdsCode) -> Option<&Organisation> {
        self.organisations.get(code)
    }
}
