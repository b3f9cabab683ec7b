//! `Coding` and `Identifier`.

use lhcie_model::{Coding, Identifier, ValidationError};

use super::{optional, required};
use crate::canonical as pb;

impl TryFrom<pb::Coding> for Coding {
    type Error = ValidationError;
    fn try_from(wire: pb::Coding) -> Result<Self, Self::Error> {
        Ok(Self {
            system: wire.system,
            code: required(wire.code, "code")?,
            display: optional(wire.display),
        })
    }
}

impl From<Coding> for pb::Coding {
    fn from(coding: Coding) -> Self {
        Self {
            system: coding.system,
            code: coding.code,
            display: coding.display.unwrap_or_default(),
        }
    }
}

impl TryFrom<pb::Identifier> for Identifier {
    type Error = ValidationError;
    fn try_from(wire: pb::Identifier) -> Result<Self, Self::Error> {
        Ok(Self {
            system: wire.system,
            value: required(wire.value, "value")?,
            type_code: optional(wire.type_code),
        })
    }
}

impl From<Identifier> for pb::Identifier {
    fn from(identifier: Identifier) -> Self {
        Self {
            system: identifier.system,
            value: identifier.value,
            type_code: identifier.type_code.unwrap_or_default(),
        }
    }
}
