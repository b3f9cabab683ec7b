//! Which exchange serves each organisation, and in which region.

use std::collections::HashMap;

use lhcie_model::{ExchangeId, OdsCode};

/// Where an organisation sits: the exchange that serves it and its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The exchange that serves the organisation.
    pub exchange: ExchangeId,
    /// The exchange's region.
    pub region: String,
}

/// Organisation → exchange, built from the validated topology.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    organisations: HashMap<OdsCode, Placement>,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Places an organisation. The topology guarantees each organisation is
    /// placed once; placing it again replaces the earlier placement.
    pub fn insert(
        &mut self,
        organisation: OdsCode,
        exchange: ExchangeId,
        region: impl Into<String>,
    ) {
        self.organisations.insert(
            organisation,
            Placement {
                exchange,
                region: region.into(),
            },
        );
    }

    /// Where an organisation is, if any exchange serves it.
    pub fn placement(&self, organisation: &OdsCode) -> Option<&Placement> {
        self.organisations.get(organisation)
    }

    /// Whether `exchange` serves `organisation`.
    pub fn serves(&self, exchange: &ExchangeId, organisation: &OdsCode) -> bool {
        self.placement(organisation)
            .is_some_and(|p| &p.exchange == exchange)
    }

    /// Whether `exchange` serves any organisation.
    pub fn knows_exchange(&self, exchange: &ExchangeId) -> bool {
        self.organisations.values().any(|p| &p.exchange == exchange)
    }

    /// Whether any exchange is in `region`.
    pub fn knows_region(&self, region: &str) -> bool {
        self.organisations.values().any(|p| p.region == region)
    }

    /// How many organisations are placed.
    pub fn len(&self) -> usize {
        self.organisations.len()
    }

    /// Whether no organisation is placed.
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
    }
}
