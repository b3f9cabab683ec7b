//! `Category` and `PurposeOfUse`.

use lhcie_model::{Category, PurposeOfUse, ValidationError, ValidationErrorKind};

use super::{unknown_enum, unspecified};
use crate::canonical as pb;

/// A wire category number to a domain category. A number this version does
/// not know is an "unknown category", which the hub reports as such.
pub(crate) fn category_from_wire(value: i32) -> Result<Category, ValidationError> {
    use pb::Category as W;
    match W::try_from(value) {
        Ok(W::Unspecified) => Err(ValidationError::new(
            "category",
            ValidationErrorKind::UnknownCategory,
            "is required (UNSPECIFIED given)",
        )),
        Ok(W::DischargeSummary) => Ok(Category::DischargeSummary),
        Ok(W::RepatriationRequest) => Ok(Category::RepatriationRequest),
        Ok(W::CancerDocument) => Ok(Category::CancerDocument),
        Ok(W::EndOfLifeCarePlan) => Ok(Category::EndOfLifeCarePlan),
        Ok(W::CareEvent) => Ok(Category::CareEvent),
        Ok(W::Result) => Ok(Category::Result),
        Ok(W::Referral) => Ok(Category::Referral),
        Ok(W::Acknowledgement) => Ok(Category::Acknowledgement),
        Err(_) => Err(ValidationError::new(
            "category",
            ValidationErrorKind::UnknownCategory,
            format!("{value} is not a category this hub knows"),
        )),
    }
}

impl From<Category> for pb::Category {
    fn from(category: Category) -> Self {
        match category {
            Category::DischargeSummary => Self::DischargeSummary,
            Category::RepatriationRequest => Self::RepatriationRequest,
            Category::CancerDocument => Self::CancerDocument,
            Category::EndOfLifeCarePlan => Self::EndOfLifeCarePlan,
            Category::CareEvent => Self::CareEvent,
            Category::Result => Self::Result,
            Category::Referral => Self::Referral,
            Category::Acknowledgement => Self::Acknowledgement,
        }
    }
}

/// A wire purpose-of-use number to the domain value; required.
pub(crate) fn purpose_from_wire(value: i32) -> Result<PurposeOfUse, ValidationError> {
    use pb::PurposeOfUse as W;
    match W::try_from(value) {
        Ok(W::Unspecified) => Err(unspecified("purpose")),
        Ok(W::DirectCare) => Ok(PurposeOfUse::DirectCare),
        Ok(W::EmergencyCare) => Ok(PurposeOfUse::EmergencyCare),
        Ok(W::CareManagement) => Ok(PurposeOfUse::CareManagement),
        Ok(W::PatientRequest) => Ok(PurposeOfUse::PatientRequest),
        Err(_) => Err(unknown_enum("purpose", value)),
    }
}

impl From<PurposeOfUse> for pb::PurposeOfUse {
    fn from(purpose: PurposeOfUse) -> Self {
        match purpose {
            PurposeOfUse::DirectCare => Self::DirectCare,
            PurposeOfUse::EmergencyCare => Self::EmergencyCare,
            PurposeOfUse::CareManagement => Self::CareManagement,
            PurposeOfUse::PatientRequest => Self::PatientRequest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_round_trips() {
        for category in Category::ALL {
            let wire = pb::Category::from(category) as i32;
            assert_eq!(category_from_wire(wire).unwrap(), category);
        }
        for purpose in PurposeOfUse::ALL {
            let wire = pb::PurposeOfUse::from(purpose) as i32;
            assert_eq!(purpose_from_wire(wire).unwrap(), purpose);
        }
    }

    #[test]
    fn unknown_and_unspecified_categories_are_refused() {
        assert_eq!(
            category_from_wire(0).unwrap_err().kind,
            ValidationErrorKind::UnknownCategory
        );
        let unknown = category_from_wire(42).unwrap_err();
        assert_eq!(unknown.kind, ValidationErrorKind::UnknownCategory);
        assert!(unknown.detail.contains("42"));
        assert_eq!(
            purpose_from_wire(0).unwrap_err().kind,
            ValidationErrorKind::Missing
        );
        assert_eq!(
            purpose_from_wire(9).unwrap_err().kind,
            ValidationErrorKind::Invalid
        );
    }
}
