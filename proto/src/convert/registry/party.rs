//! `IsaParty`.

use lhcie_consent::IsaParty;
use lhcie_model::{ExchangeId, OdsCode, ValidationError};

use crate::registry as pb;

impl TryFrom<pb::IsaParty> for IsaParty {
    type Error = ValidationError;
    fn try_from(wire: pb::IsaParty) -> Result<Self, Self::Error> {
        use pb::isa_party::Scope;
        match wire.scope {
            Some(Scope::OdsCode(code)) => OdsCode::parse(&code)
                .map(IsaParty::Organisation)
                .map_err(|e| ValidationError::invalid("ods_code", e)),
            Some(Scope::ExchangeId(id)) => ExchangeId::parse(&id)
                .map(IsaParty::Exchange)
                .map_err(|e| ValidationError::invalid("exchange_id", e)),
            Some(Scope::Region(region)) if !region.trim().is_empty() => {
                Ok(IsaParty::Region(region))
            }
            Some(Scope::Region(_)) | None => Err(ValidationError::missing("scope")),
        }
    }
}

impl From<IsaParty> for pb::IsaParty {
    fn from(party: IsaParty) -> Self {
        use pb::isa_party::Scope;
        let scope = match party {
            IsaParty::Organisation(code) => Scope::OdsCode(code.into()),
            IsaParty::Exchange(id) => Scope::ExchangeId(id.into()),
            IsaParty::Region(region) => Scope::Region(region),
        };
        Self { scope: Some(scope) }
    }
}
