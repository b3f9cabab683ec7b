//! Conversions for `lhcie.registry.v1`: the consent model of
//! `lhcie-consent` on the wire, one file per type. Wire to domain checks
//! what the domain requires (ODS codes, NHS numbers, enum values, dates)
//! and names the field at fault.

mod agreement;
mod decision;
mod directive;
mod grant;
mod party;
mod signature;
mod status_note;
mod terms;

pub use agreement::agreement_to_wire;
pub use decision::decision_to_wire;

use lhcie_model::ValidationError;
use time::OffsetDateTime;

use super::timestamp;

/// A required wire timestamp.
pub(crate) fn required_time(
    value: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<OffsetDateTime, ValidationError> {
    let value = value.ok_or_else(|| ValidationError::missing(field))?;
    timestamp::from_wire(value, field)
}

/// An optional wire timestamp.
pub(crate) fn optional_time(
    value: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    timestamp::optional_from_wire(value, field)
}

/// A time that the registry sets (drafting, recording): absent on a
/// request, so it defaults to the epoch and is overwritten on apply.
pub(crate) fn registry_time(
    value: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<OffsetDateTime, ValidationError> {
    Ok(optional_time(value, field)?.unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

pub(crate) use timestamp::{optional_to_wire, to_wire};

/// A time from the wire (`None` when absent), for request fields outside
/// the registry's records, such as the moment a decision is asked for.
pub fn time_from_wire(
    value: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<Option<OffsetDateTime>, ValidationError> {
    optional_time(value, field)
}

/// A time on the wire.
pub fn time_to_wire(at: OffsetDateTime) -> prost_types::Timestamp {
    to_wire(at)
}

/// A category from the wire.
pub fn category_from_wire(
    value: i32,
    field: &str,
) -> Result<lhcie_model::Category, ValidationError> {
    super::classification::category_from_wire(value).map_err(|e| e.within(field))
}

/// A purpose of use from the wire.
pub fn purpose_from_wire(
    value: i32,
    field: &str,
) -> Result<lhcie_model::PurposeOfUse, ValidationError> {
    super::classification::purpose_from_wire(value).map_err(|e| e.within(field))
}

/// The consent model on the wire.
pub fn consent_model_to_wire(model: lhcie_consent::ConsentModel) -> crate::registry::ConsentModel {
    match model {
        lhcie_consent::ConsentModel::Implied => crate::registry::ConsentModel::Implied,
        lhcie_consent::ConsentModel::ExplicitOptIn => crate::registry::ConsentModel::ExplicitOptIn,
    }
}

/// The consent model from the wire (`None` when unspecified or unknown).
pub fn consent_model_from_wire(value: i32) -> Option<lhcie_consent::ConsentModel> {
    match crate::registry::ConsentModel::try_from(value) {
        Ok(crate::registry::ConsentModel::Implied) => Some(lhcie_consent::ConsentModel::Implied),
        Ok(crate::registry::ConsentModel::ExplicitOptIn) => {
            Some(lhcie_consent::ConsentModel::ExplicitOptIn)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use lhcie_consent::*;
    use lhcie_model::{Category, NhsNumber, OdsCode, PurposeOfUse, ValidationErrorKind};
    use time::macros::datetime;

    use super::agreement_to_wire;
    use crate::registry as pb;

    const AT: time::OffsetDateTime = datetime!(2026-11-21 12:00 UTC);

    fn agreement() -> Agreement {
        let parties = vec![
            IsaParty::Organisation(OdsCode::parse("RYJ").unwrap()),
            IsaParty::Exchange("ncl-royal-free".parse().unwrap()),
            IsaParty::Region("SEL".into()),
        ];
        let terms = IsaTerms {
            title: "Test".into(),
            parties: parties.clone(),
            purposes: BTreeSet::from([PurposeOfUse::DirectCare, PurposeOfUse::EmergencyCare]),
            categories: BTreeSet::from([Category::DischargeSummary]),
            legal_basis: "UK GDPR".into(),
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: Some(datetime!(2027-01-01 00:00 UTC)),
            document_reference: Some("dcc://isa/1".into()),
            emergency_override: true,
        };
        let mut agreement =
            Agreement::draft("ISA-1", terms, "ig", datetime!(2025-12-01 00:00 UTC)).unwrap();
        agreement
            .sign(
                1,
                Signature {
                    party: parties[0].clone(),
                    signer: "a".into(),
                    role: "Caldicott Guardian".into(),
                    organisation: OdsCode::parse("RYJ").unwrap(),
                    signed_at: datetime!(2025-12-02 00:00 UTC),
                },
            )
            .unwrap();
        agreement
            .suspend(StatusNote {
                at: datetime!(2026-02-01 00:00 UTC),
                by: "ig".into(),
                reason: "review".into(),
            })
            .unwrap();
        agreement
    }

    #[test]
    fn agreements_round_trip_with_derived_status() {
        let original = agreement();
        let wire = agreement_to_wire(&original, AT);
        assert_eq!(wire.versions[0].status, pb::IsaStatus::Suspended as i32);
        assert_eq!(Agreement::try_from(wire).unwrap(), original);
    }

    fn directive(rule: DirectiveRule) -> Directive {
        Directive {
            id: "D1".into(),
            nhs_number: NhsNumber::parse("9434765919").unwrap(),
            rule,
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: None,
            source: DirectiveSource::Clinician,
            recorded_by: "dr".into(),
            recorded_at: datetime!(2026-01-01 00:00 UTC),
            withdrawal: Some(StatusNote {
                at: AT,
                by: "patient".into(),
                reason: "changed mind".into(),
            }),
        }
    }

    #[test]
    fn every_directive_rule_round_trips() {
        for rule in [
            DirectiveRule::DissentAll,
            DirectiveRule::DenyOrganisation(OdsCode::parse("RAL").unwrap()),
            DirectiveRule::DenyCategory(Category::CancerDocument),
            DirectiveRule::AllowOrganisation(OdsCode::parse("F83006").unwrap()),
        ] {
            let original = directive(rule);
            assert_eq!(
                Directive::try_from(pb::Directive::from(original.clone())).unwrap(),
                original
            );
        }
    }

    #[test]
    fn bad_directives_name_the_field() {
        let mut wire = pb::Directive::from(directive(DirectiveRule::DissentAll));
        wire.nhs_number = "9434765918".into();
        let error = Directive::try_from(wire).unwrap_err();
        assert_eq!(
            (error.field.as_str(), error.kind),
            ("nhs_number", ValidationErrorKind::InvalidNhsNumber)
        );
        let mut wire = pb::Directive::from(directive(DirectiveRule::DissentAll));
        wire.rule = None;
        assert_eq!(Directive::try_from(wire).unwrap_err().field, "rule");
        let mut wire = pb::Directive::from(directive(DirectiveRule::DissentAll));
        wire.rule = Some(pb::directive::Rule::DenyOrganisation("ral".into()));
        assert_eq!(
            Directive::try_from(wire).unwrap_err().field,
            "deny_organisation"
        );
    }

    #[test]
    fn grants_round_trip() {
        let original = CarerGrant {
            id: "G1".into(),
            patient: NhsNumber::parse("9434765919").unwrap(),
            carer_name: "A Carer".into(),
            carer_contact: "carer@example.invalid".into(),
            scopes: vec!["view-record".into()],
            valid_from: datetime!(2026-01-01 00:00 UTC),
            valid_until: None,
            recorded_by: "patient".into(),
            recorded_at: datetime!(2026-01-01 00:00 UTC),
            revocation: None,
        };
        assert_eq!(
            CarerGrant::try_from(pb::CarerGrant::from(original.clone())).unwrap(),
            original
        );
    }
}
