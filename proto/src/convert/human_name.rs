//! `HumanName`.

use lhcie_model::{HumanName, ValidationError};

use super::optional;
use crate::canonical as pb;

impl TryFrom<pb::HumanName> for HumanName {
    type Error = ValidationError;
    fn try_from(wire: pb::HumanName) -> Result<Self, Self::Error> {
        Ok(Self {
            family: optional(wire.family),
            given: wire.given,
            prefix: optional(wire.prefix),
            suffix: optional(wire.suffix),
        })
    }
}

impl From<HumanName> for pb::HumanName {
    fn from(name: HumanName) -> Self {
        Self {
            family: name.family.unwrap_or_default(),
            given: name.given,
            prefix: name.prefix.unwrap_or_default(),
            suffix: name.suffix.unwrap_or_default(),
        }
    }
}
