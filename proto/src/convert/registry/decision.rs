//! `Decision`.

use lhcie_consent::{Decision, Obligation};

use crate::registry as pb;

/// A decision on the wire, made at registry `revision`.
pub fn decision_to_wire(decision: &Decision, revision: u64) -> pb::Decision {
    let (isa_id, isa_version) = decision.isa.clone().unwrap_or_default();
    pb::Decision {
        permitted: decision.permitted,
        reason: decision.reason.code().to_owned(),
        isa_id,
        isa_version,
        directive_ids: decision.directives.clone(),
        obligations: decision
            .obligations
            .iter()
            .map(|o| match o {
                Obligation::RecordEmergencyAccess => pb::Obligation::RecordEmergencyAccess,
                Obligation::NotifyPatient => pb::Obligation::NotifyPatient,
            } as i32)
            .collect(),
        revision,
    }
}
