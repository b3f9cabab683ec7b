//! `Agreement` and `IsaVersion`. Status is derived, so the domain-to-wire
//! conversion takes the moment to derive it for.

use lhcie_consent::{Agreement, IsaStatus, IsaVersion, Suspension};
use lhcie_model::ValidationError;
use time::OffsetDateTime;

use super::{registry_time, to_wire};
use crate::convert::{each, nested, present, required};
use crate::registry as pb;

impl TryFrom<pb::Agreement> for Agreement {
    type Error = ValidationError;
    fn try_from(wire: pb::Agreement) -> Result<Self, Self::Error> {
        Ok(Self {
            id: required(wire.isa_id, "isa_id")?,
            versions: each(wire.versions, "versions")?,
            suspensions: each(wire.suspensions, "suspensions")?,
            revocation: nested(wire.revocation, "revocation")?,
        })
    }
}

impl TryFrom<pb::IsaVersion> for IsaVersion {
    type Error = ValidationError;
    fn try_from(wire: pb::IsaVersion) -> Result<Self, Self::Error> {
        Ok(Self {
            version: wire.version,
            terms: present(nested(wire.terms, "terms")?, "terms")?,
            signatures: each(wire.signatures, "signatures")?,
            drafted_by: wire.drafted_by,
            drafted_at: registry_time(wire.drafted_at, "drafted_at")?,
        })
    }
}

fn status_to_wire(status: Option<IsaStatus>) -> pb::IsaStatus {
    match status {
        None => pb::IsaStatus::Unspecified,
        Some(IsaStatus::Draft) => pb::IsaStatus::Draft,
        Some(IsaStatus::Signed) => pb::IsaStatus::Signed,
        Some(IsaStatus::Active) => pb::IsaStatus::Active,
        Some(IsaStatus::Superseded) => pb::IsaStatus::Superseded,
        Some(IsaStatus::Expired) => pb::IsaStatus::Expired,
        Some(IsaStatus::Suspended) => pb::IsaStatus::Suspended,
        Some(IsaStatus::Revoked) => pb::IsaStatus::Revoked,
    }
}

/// An agreement on the wire, each version's status derived for `at`.
pub fn agreement_to_wire(agreement: &Agreement, at: OffsetDateTime) -> pb::Agreement {
    pb::Agreement {
        isa_id: agreement.id.clone(),
        versions: agreement
            .versions
            .iter()
            .map(|v| pb::IsaVersion {
                version: v.version,
                terms: Some(v.terms.clone().into()),
                signatures: v.signatures.iter().cloned().map(Into::into).collect(),
                drafted_by: v.drafted_by.clone(),
                drafted_at: Some(to_wire(v.drafted_at)),
                status: status_to_wire(agreement.status_of(v.version, at)) as i32,
            })
            .collect(),
        suspensions: agreement
            .suspensions
            .iter()
            .cloned()
            .map(Into::into)
            .collect(),
        revocation: agreement.revocation.clone().map(Into::into),
    }
}

impl TryFrom<pb::Suspension> for Suspension {
    type Error = ValidationError;
    fn try_from(wire: pb::Suspension) -> Result<Self, Self::Error> {
        Ok(Self {
            suspended: present(nested(wire.suspended, "suspended")?, "suspended")?,
            reinstated: nested(wire.reinstated, "reinstated")?,
        })
    }
}

impl From<Suspension> for pb::Suspension {
    fn from(suspension: Suspension) -> Self {
        Self {
            suspended: Some(suspension.suspended.into()),
            reinstated: suspension.reinstated.map(Into::into),
        }
    }
}
