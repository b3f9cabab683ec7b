//! `Party`.

use lhcie_model::{ExchangeId, OdsCode, Party, ValidationError};

use super::{optional, required};
use crate::canonical as pb;

impl TryFrom<pb::Party> for Party {
    type Error = ValidationError;
    fn try_from(wire: pb::Party) -> Result<Self, Self::Error> {
        let ods_code = OdsCode::parse(&required(wire.ods_code, "ods_code")?)
            .map_err(|e| ValidationError::invalid("ods_code", e))?;
        let exchange_id = ExchangeId::parse(&required(wire.exchange_id, "exchange_id")?)
            .map_err(|e| ValidationError::invalid("exchange_id", e))?;
        Ok(Self {
            ods_code,
            exchange_id,
            sending_system: optional(wire.sending_system),
        })
    }
}

impl From<Party> for pb::Party {
    fn from(party: Party) -> Self {
        Self {
            ods_code: party.ods_code.into(),
            exchange_id: party.exchange_id.into(),
            sending_system: party.sending_system.unwrap_or_default(),
        }
    }
}
