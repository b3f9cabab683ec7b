//! Who a message is about.

use std::fmt;

use time::{Date, OffsetDateTime};

use crate::{Identifier, NhsNumber, OdsCode};

/// The patient a message is about: their NHS number where known, the local
/// identifiers the sender holds, and the minimal demographics needed to
/// match them safely at the receiving end.
///
/// `Debug` prints only which fields are present, never their values.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PatientIdentity {
    /// The validated NHS number, if the sender knows it.
    pub nhs_number: Option<NhsNumber>,
    /// NHS number verification status (NHS Data Dictionary code, e.g. `01`
    /// "number present and verified"), if the sender gave one.
    pub nhs_number_verification: Option<String>,
    /// Local identifiers, such as hospital numbers (MRNs).
    pub local_identifiers: Vec<Identifier>,
    /// The patient's usual name.
    pub name: Option<HumanName>,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Administrative gender.
    pub gender: Option<Gender>,
    /// Postcode of the usual address.
    pub postcode: Option<String>,
    /// The GP practice the patient is registered with (used by the
    /// registered-GP routing rule).
    pub registered_gp_practice: Option<OdsCode>,
    /// When the patient died, if they have.
    pub deceased_at: Option<OffsetDateTime>,
    /// The record is restricted (e.g. PDS "R"): address and GP must not be
    /// disclosed beyond what the flow needs.
    pub restricted: bool,
}

impl fmt::Debug for PatientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientIdentity")
            .field("nhs_number", &self.nhs_number.map(|_| "<redacted>"))
            .field("local_identifiers", &self.local_identifiers.len())
            .field("name", &self.name.as_ref().map(|_| "<redacted>"))
            .field("birth_date", &self.birth_date.map(|_| "<redacted>"))
            .field("gender", &self.gender)
            .field("postcode", &self.postcode.as_ref().map(|_| "<redacted>"))
            .field("registered_gp_practice", &self.registered_gp_practice)
            .field("restricted", &self.restricted)
            .finish_non_exhaustive()
    }
}

/// A person's name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HumanName {
    /// Family name (surname).
    pub family: Option<String>,
    /// Given names, in order.
    pub given: Vec<String>,
    /// Prefix, e.g. "Mrs", "Dr".
    pub prefix: Option<String>,
    /// Suffix, e.g. "OBE".
    pub suffix: Option<String>,
}

/// Administrative gender (FHIR `AdministrativeGender`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gender {
    /// Male.
    Male,
    /// Female.
    Female,
    /// Other.
    Other,
    /// Not known.
    Unknown,
}

/// A health or care professional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Practitioner {
    /// Their name.
    pub name: Option<HumanName>,
    /// Professional identifiers (GMC, NMC, SDS user id...).
    pub identifiers: Vec<Identifier>,
    /// Their role (e.g. a SNOMED CT or SDS job role code).
    pub role: Option<crate::Coding>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_identifying_fields() {
        let patient = PatientIdentity {
            nhs_number: Some(NhsNumber::parse("9434765919").unwrap()),
            name: Some(HumanName {
                family: Some("SMITH".into()),
                given: vec!["JANE".into()],
                ..Default::default()
            }),
            birth_date: Some(time::macros::date!(1970 - 01 - 31)),
            postcode: Some("W2 1NY".into()),
            ..Default::default()
        };
        let shown = format!("{patient:?}");
        for secret in ["9434765919", "SMITH", "JANE", "1970", "W2 1NY"] {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
    }
}
