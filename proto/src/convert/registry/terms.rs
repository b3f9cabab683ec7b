//! `IsaTerms`.

use lhcie_consent::IsaTerms;
use lhcie_model::ValidationError;

use super::{optional_time, optional_to_wire, required_time, to_wire};
use crate::convert::classification::{category_from_wire, purpose_from_wire};
use crate::convert::{each, optional};
use crate::{canonical, registry as pb};

impl TryFrom<pb::IsaTerms> for IsaTerms {
    type Error = ValidationError;
    fn try_from(wire: pb::IsaTerms) -> Result<Self, Self::Error> {
        let purposes = wire
            .purposes
            .iter()
            .enumerate()
            .map(|(i, p)| purpose_from_wire(*p).map_err(|e| e.within(&format!("purposes[{i}]"))))
            .collect::<Result<_, _>>()?;
        let categories = wire
            .categories
            .iter()
            .enumerate()
            .map(|(i, c)| category_from_wire(*c).map_err(|e| e.within(&format!("categories[{i}]"))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            title: wire.title,
            parties: each(wire.parties, "parties")?,
            purposes,
            categories,
            legal_basis: wire.legal_basis,
            valid_from: required_time(wire.valid_from, "valid_from")?,
            valid_until: optional_time(wire.valid_until, "valid_until")?,
            document_reference: optional(wire.document_reference),
            emergency_override: wire.emergency_override,
        })
    }
}

impl From<IsaTerms> for pb::IsaTerms {
    fn from(terms: IsaTerms) -> Self {
        Self {
            title: terms.title,
            parties: terms.parties.into_iter().map(Into::into).collect(),
            purposes: terms
                .purposes
                .into_iter()
                .map(|p| canonical::PurposeOfUse::from(p) as i32)
                .collect(),
            categories: terms
                .categories
                .into_iter()
                .map(|c| canonical::Category::from(c) as i32)
                .collect(),
            legal_basis: terms.legal_basis,
            valid_from: Some(to_wire(terms.valid_from)),
            valid_until: optional_to_wire(terms.valid_until),
            document_reference: terms.document_reference.unwrap_or_default(),
            emergency_override: terms.emergency_override,
        }
    }
}
