//! `Directive`.

use lhcie_consent::{Directive, DirectiveRule, DirectiveSource};
use lhcie_model::{NhsNumber, OdsCode, ValidationError, ValidationErrorKind};

use super::{optional_time, optional_to_wire, registry_time, required_time, to_wire};
use crate::convert::classification::category_from_wire;
use crate::convert::{nested, required, unknown_enum, unspecified};
use crate::{canonical, registry as pb};

fn ods(code: String, field: &str) -> Result<OdsCode, ValidationError> {
    OdsCode::parse(&code).map_err(|e| ValidationError::invalid(field, e))
}

impl TryFrom<pb::Directive> for Directive {
    type Error = ValidationError;
    fn try_from(wire: pb::Directive) -> Result<Self, Self::Error> {
        use pb::directive::Rule;
        let rule = match wire.rule {
            Some(Rule::DissentAll(true)) => DirectiveRule::DissentAll,
            Some(Rule::DenyOrganisation(code)) => {
                DirectiveRule::DenyOrganisation(ods(code, "deny_organisation")?)
            }
            Some(Rule::DenyCategory(category)) => DirectiveRule::DenyCategory(
                category_from_wire(category).map_err(|e| e.within("deny_category"))?,
            ),
            Some(Rule::AllowOrganisation(code)) => {
                DirectiveRule::AllowOrganisation(ods(code, "allow_organisation")?)
            }
            Some(Rule::DissentAll(false)) | None => return Err(ValidationError::missing("rule")),
        };
        let source = match pb::DirectiveSource::try_from(wire.source) {
            Ok(pb::DirectiveSource::Unspecified) => return Err(unspecified("source")),
            Ok(pb::DirectiveSource::PatientAccount) => DirectiveSource::PatientAccount,
            Ok(pb::DirectiveSource::Clinician) => DirectiveSource::Clinician,
            Ok(pb::DirectiveSource::BulkImport) => DirectiveSource::BulkImport,
            Err(_) => return Err(unknown_enum("source", wire.source)),
        };
        let nhs_number =
            NhsNumber::parse(&required(wire.nhs_number, "nhs_number")?).map_err(|e| {
                ValidationError::new("nhs_number", ValidationErrorKind::InvalidNhsNumber, e)
            })?;
        Ok(Self {
            id: required(wire.directive_id, "directive_id")?,
            nhs_number,
            rule,
            valid_from: required_time(wire.valid_from, "valid_from")?,
            valid_until: optional_time(wire.valid_until, "valid_until")?,
            source,
            recorded_by: wire.recorded_by,
            recorded_at: registry_time(wire.recorded_at, "recorded_at")?,
            withdrawal: nested(wire.withdrawal, "withdrawal")?,
        })
    }
}

impl From<Directive> for pb::Directive {
    fn from(directive: Directive) -> Self {
        use pb::directive::Rule;
        let rule = match directive.rule {
            DirectiveRule::DissentAll => Rule::DissentAll(true),
            DirectiveRule::DenyOrganisation(code) => Rule::DenyOrganisation(code.into()),
            DirectiveRule::DenyCategory(category) => {
                Rule::DenyCategory(canonical::Category::from(category) as i32)
            }
            DirectiveRule::AllowOrganisation(code) => Rule::AllowOrganisation(code.into()),
        };
        let source = match directive.source {
            DirectiveSource::PatientAccount => pb::DirectiveSource::PatientAccount,
            DirectiveSource::Clinician => pb::DirectiveSource::Clinician,
            DirectiveSource::BulkImport => pb::DirectiveSource::BulkImport,
        };
        Self {
            directive_id: directive.id,
            nhs_number: directive.nhs_number.as_str().to_owned(),
            rule: Some(rule),
            valid_from: Some(to_wire(directive.valid_from)),
            valid_until: optional_to_wire(directive.valid_until),
            source: source as i32,
            recorded_by: directive.recorded_by,
            recorded_at: Some(to_wire(directive.recorded_at)),
            withdrawal: directive.withdrawal.map(Into::into),
        }
    }
}
