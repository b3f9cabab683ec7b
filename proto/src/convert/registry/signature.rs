//! `Signature`.

use lhcie_consent::Signature;
use lhcie_model::{OdsCode, ValidationError};

use super::{registry_time, to_wire};
use crate::convert::{nested, present, required};
use crate::registry as pb;

impl TryFrom<pb::Signature> for Signature {
    type Error = ValidationError;
    fn try_from(wire: pb::Signature) -> Result<Self, Self::Error> {
        Ok(Self {
            party: present(nested(wire.party, "party")?, "party")?,
            signer: required(wire.signer, "signer")?,
            role: required(wire.role, "role")?,
            organisation: OdsCode::parse(&required(wire.organisation_ods, "organisation_ods")?)
                .map_err(|e| ValidationError::invalid("organisation_ods", e))?,
            signed_at: registry_time(wire.signed_at, "signed_at")?,
        })
    }
}

impl From<Signature> for pb::Signature {
    fn from(signature: Signature) -> Self {
        Self {
            party: Some(signature.party.into()),
            signer: signature.signer,
            role: signature.role,
            organisation_ods: signature.organisation.into(),
            signed_at: Some(to_wire(signature.signed_at)),
        }
    }
}
