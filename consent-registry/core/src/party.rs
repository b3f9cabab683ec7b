//! Organisations as the rules see them, and ISA parties that name them.

use lhcie_model::{ExchangeId, OdsCode};

/// An organisation with where it sits in the topology, so that an agreement
/// can name it directly, by its exchange, or by its region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrgRef<'a> {
    /// Its ODS code.
    pub ods_code: &'a OdsCode,
    /// The exchange that serves it.
    pub exchange: &'a ExchangeId,
    /// The region of that exchange (e.g. `NWL`).
    pub region: &'a str,
}

/// A party to an information sharing agreement.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum IsaParty {
    /// One organisation.
    Organisation(OdsCode),
    /// Every organisation served by an exchange.
    Exchange(ExchangeId),
    /// Every organisation in a region.
    Region(String),
}

impl IsaParty {
    /// Whether this party includes the organisation.
    pub fn includes(&self, org: &OrgRef<'_>) -> bool {
        match self {
            IsaParty::Organisation(code) => code == org.ods_code,
            IsaParty::Exchange(id) => id == org.exchange,
            IsaParty::Region(region) => region == org.region,
        }
    }
}
