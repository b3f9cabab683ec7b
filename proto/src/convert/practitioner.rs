//! `Practitioner`.

use lhcie_model::{Practitioner, ValidationError};

use super::{each, nested};
use crate::canonical as pb;

impl TryFrom<pb::Practitioner> for Practitioner {
    type Error = ValidationError;
    fn try_from(wire: pb::Practitioner) -> Result<Self, Self::Error> {
        Ok(Self {
            name: nested(wire.name, "name")?,
            identifiers: each(wire.identifiers, "identifiers")?,
            role: nested(wire.role, "role")?,
        })
    }
}

impl From<Practitioner> for pb::Practitioner {
    fn from(practitioner: Practitioner) -> Self {
        Self {
            name: practitioner.name.map(Into::into),
            identifiers: practitioner
                .identifiers
                .into_iter()
                .map(Into::into)
                .collect(),
            role: practitioner.role.map(Into::into),
        }
    }
}
