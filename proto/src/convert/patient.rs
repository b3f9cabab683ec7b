//! `PatientIdentity`.

use lhcie_model::{Gender, NhsNumber, PatientIdentity, ValidationError, ValidationErrorKind};

use super::{each, nested, optional, optional_ods, timestamp, unknown_enum};
use crate::canonical as pb;

impl TryFrom<pb::PatientIdentity> for PatientIdentity {
    type Error = ValidationError;
    fn try_from(wire: pb::PatientIdentity) -> Result<Self, Self::Error> {
        let nhs_number = optional(wire.nhs_number)
            .map(|text| {
                NhsNumber::parse(&text).map_err(|e| {
                    ValidationError::new("nhs_number", ValidationErrorKind::InvalidNhsNumber, e)
                })
            })
            .transpose()?;
        use pb::Gender as W;
        let gender = match W::try_from(wire.gender) {
            Ok(W::Unspecified) => None,
            Ok(W::Male) => Some(Gender::Male),
            Ok(W::Female) => Some(Gender::Female),
            Ok(W::Other) => Some(Gender::Other),
            Ok(W::Unknown) => Some(Gender::Unknown),
            Err(_) => return Err(unknown_enum("gender", wire.gender)),
        };
        Ok(Self {
            nhs_number,
            nhs_number_verification: optional(wire.nhs_number_verification),
            local_identifiers: each(wire.local_identifiers, "local_identifiers")?,
            name: nested(wire.name, "name")?,
            birth_date: nested(wire.birth_date, "birth_date")?,
            gender,
            postcode: optional(wire.postcode),
            registered_gp_practice: optional_ods(
                wire.registered_gp_practice_ods,
                "registered_gp_practice_ods",
            )?,
            deceased_at: timestamp::optional_from_wire(wire.deceased_at, "deceased_at")?,
            restricted: wire.restricted,
        })
    }
}

impl From<PatientIdentity> for pb::PatientIdentity {
    fn from(patient: PatientIdentity) -> Self {
        let gender = match patient.gender {
            None => pb::Gender::Unspecified,
            Some(Gender::Male) => pb::Gender::Male,
            Some(Gender::Female) => pb::Gender::Female,
            Some(Gender::Other) => pb::Gender::Other,
            Some(Gender::Unknown) => pb::Gender::Unknown,
        };
        Self {
            nhs_number: patient
                .nhs_number
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
            nhs_number_verification: patient.nhs_number_verification.unwrap_or_default(),
            local_identifiers: patient
                .local_identifiers
                .into_iter()
                .map(Into::into)
                .collect(),
            name: patient.name.map(Into::into),
            birth_date: patient.birth_date.map(Into::into),
            gender: gender as i32,
            postcode: patient.postcode.unwrap_or_default(),
            registered_gp_practice_ods: patient
                .registered_gp_practice
                .map(String::from)
                .unwrap_or_default(),
            deceased_at: timestamp::optional_to_wire(patient.deceased_at),
            restricted: patient.restricted,
        }
    }
}
