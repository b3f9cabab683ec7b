//! `CarerGrant`.

use lhcie_consent::CarerGrant;
use lhcie_model::{NhsNumber, ValidationError, ValidationErrorKind};

use super::{optional_time, optional_to_wire, registry_time, required_time, to_wire};
use crate::convert::{nested, required};
use crate::registry as pb;

impl TryFrom<pb::CarerGrant> for CarerGrant {
    type Error = ValidationError;
    fn try_from(wire: pb::CarerGrant) -> Result<Self, Self::Error> {
        let patient = NhsNumber::parse(&required(wire.patient_nhs_number, "patient_nhs_number")?)
            .map_err(|e| {
            ValidationError::new(
                "patient_nhs_number",
                ValidationErrorKind::InvalidNhsNumber,
                e,
            )
        })?;
        Ok(Self {
            id: required(wire.grant_id, "grant_id")?,
            patient,
            carer_name: required(wire.carer_name, "carer_name")?,
            carer_contact: wire.carer_contact,
            scopes: wire.scopes,
            valid_from: required_time(wire.valid_from, "valid_from")?,
            valid_until: optional_time(wire.valid_until, "valid_until")?,
            recorded_by: wire.recorded_by,
            recorded_at: registry_time(wire.recorded_at, "recorded_at")?,
            revocation: nested(wire.revocation, "revocation")?,
        })
    }
}

impl From<CarerGrant> for pb::CarerGrant {
    fn from(grant: CarerGrant) -> Self {
        Self {
            grant_id: grant.id,
            patient_nhs_number: grant.patient.as_str().to_owned(),
            carer_name: grant.carer_name,
            carer_contact: grant.carer_contact,
            scopes: grant.scopes,
            valid_from: Some(to_wire(grant.valid_from)),
            valid_until: optional_to_wire(grant.valid_until),
            recorded_by: grant.recorded_by,
            recorded_at: Some(to_wire(grant.recorded_at)),
            revocation: grant.revocation.map(Into::into),
        }
    }
}
