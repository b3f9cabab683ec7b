//! The one table from TXA-2 document types (HL7 table 0270, and the local
//! codes exchanges use) to the canonical category and SNOMED CT record
//! type. [`mod@crate::translate`] reads it (TXA-2.1 → category and type;
//! an unknown code is `AE` 103 at TXA-2.1) and [`crate::from_canonical`]
//! writes it (category and type → TXA-2.1), so a document keeps its type
//! both ways.
//!
//! | TXA-2.1 | source | category | SNOMED CT | display |
//! |---|---|---|---|---|
//! | `DS` | 0270 | discharge-summary | 373942005 | Discharge summary |
//! | `TS` | 0270 | repatriation-request | 3457005 | Patient referral |
//! | `CN` | 0270 | discharge-summary | 823691000000103 | Clinical letter |
//! | `OP` | 0270 | discharge-summary | 371526002 | Operative report |
//! | `ED` | 0270 | discharge-summary | 371534008 | Summary report |
//! | `HP` | 0270 | discharge-summary | 371529009 | History and physical report |
//! | `PR` | 0270 | discharge-summary | 371532007 | Progress report |
//! | `PN` | 0270 | discharge-summary | 371525003 | Clinical procedure report |
//! | `RR` | local | discharge-summary | 721981007 | Diagnostic studies report |
//! | `RL` | local | discharge-summary | 3457005 | Patient referral |
//! | `MDT` | local | cancer-document | 371530004 | Clinical consultation report |
//! | `CANCER` | local | cancer-document | 371531000 | Report of clinical encounter |
//! | `EOLCP` | local | end-of-life-care-plan | 736373009 | End of life care plan |
//!
//! Why letters are `discharge-summary`: the canonical model has four
//! document categories (agreements are written per category) and none for
//! clinical letters in general; a clinic letter, an operation note or an
//! ED letter is, like a discharge summary, a transfer-of-care document
//! from the provider to the patient's other carers. The SNOMED CT type
//! tells them apart for the receiver. An exchange that needs another
//! choice, or more codes, configures them per adapter
//! (`[[hl7v2.document_types]]`, merged by [`with_configured`]).
//!
//! The SNOMED CT codes are the closest international record-artefact
//! concepts; where a programme fixes other codes (e.g. the UK edition's
//! letter types), configure them. `RL` shares 3457005 with `TS` in another
//! category: a FHIR sender's 3457005 reads as `TS` (repatriation), so a
//! referral letter from FHIR needs its category given explicitly.
//!
//! Rendering needs each (category, SNOMED CT code) pair once in the table
//! (a test checks the defaults); where an operator's entry repeats a pair,
//! the first entry (the default, or the earlier configured one) is the
//! TXA-2.1 written.

use lhcie_model::{Category, Coding};

pub use crate::translate::DocumentTypeMapping;

/// `(TXA-2.1, category, SNOMED CT code, display)` of the defaults.
const DEFAULTS: [(&str, Category, &str, &str); 13] = [
    (
        "DS",
        Category::DischargeSummary,
        "373942005",
        "Discharge summary",
    ),
    (
        "TS",
        Category::RepatriationRequest,
        "3457005",
        "Patient referral",
    ),
    (
        "CN",
        Category::DischargeSummary,
        "823691000000103",
        "Clinical letter",
    ),
    (
        "OP",
        Category::DischargeSummary,
        "371526002",
        "Operative report",
    ),
    (
        "ED",
        Category::DischargeSummary,
        "371534008",
        "Summary report",
    ),
    (
        "HP",
        Category::DischargeSummary,
        "371529009",
        "History and physical report",
    ),
    (
        "PR",
        Category::DischargeSummary,
        "371532007",
        "Progress report",
    ),
    (
        "PN",
        Category::DischargeSummary,
        "371525003",
        "Clinical procedure report",
    ),
    (
        "RR",
        Category::DischargeSummary,
        "721981007",
        "Diagnostic studies report",
    ),
    (
        "RL",
        Category::DischargeSummary,
        "3457005",
        "Patient referral",
    ),
    (
        "MDT",
        Category::CancerDocument,
        "371530004",
        "Clinical consultation report",
    ),
    (
        "CANCER",
        Category::CancerDocument,
        "371531000",
        "Report of clinical encounter",
    ),
    (
        "EOLCP",
        Category::EndOfLifeCarePlan,
        "736373009",
        "End of life care plan",
    ),
];

/// The document types known without configuration (the module's table).
pub fn default_document_types() -> Vec<DocumentTypeMapping> {
    DEFAULTS
        .iter()
        .map(|(txa, category, code, display)| DocumentTypeMapping {
            txa_type: (*txa).into(),
            category: *category,
            document_type: Coding::snomed(code, display),
        })
        .collect()
}

/// The defaults with an adapter's configured entries: an entry whose
/// TXA-2.1 is already in the table (compared without regard to case)
/// replaces it in place; any other is added at the end, in order.
pub fn with_configured(configured: &[DocumentTypeMapping]) -> Vec<DocumentTypeMapping> {
    let mut table = default_document_types();
    for entry in configured {
        match table
            .iter_mut()
            .find(|m| m.txa_type.eq_ignore_ascii_case(&entry.txa_type))
        {
            Some(existing) => *existing = entry.clone(),
            None => table.push(entry.clone()),
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn defaults_have_unique_codes_and_category_type_pairs() {
        let table = default_document_types();
        let codes: HashSet<_> = table
            .iter()
            .map(|m| m.txa_type.to_ascii_uppercase())
            .collect();
        assert_eq!(codes.len(), table.len(), "a TXA-2.1 code twice");
        let pairs: HashSet<_> = table
            .iter()
            .map(|m| (m.category, m.document_type.code.clone()))
            .collect();
        assert_eq!(pairs.len(), table.len(), "a (category, type) pair twice");
        assert!(
            table
                .iter()
                .all(|m| m.category.body_kind() == lhcie_model::BodyKind::Document)
        );
    }

    #[test]
    fn configured_entries_replace_in_place_or_are_added() {
        let letter = DocumentTypeMapping {
            txa_type: "cn".into(),
            category: Category::CancerDocument,
            document_type: Coding::snomed("1", "Local letter"),
        };
        let local = DocumentTypeMapping {
            txa_type: "XLET".into(),
            category: Category::DischargeSummary,
            document_type: Coding::snomed("2", "Local"),
        };
        let table = with_configured(&[letter.clone(), local.clone()]);
        assert_eq!(table.len(), DEFAULTS.len() + 1);
        assert_eq!(table[2], letter);
        assert_eq!(table.last(), Some(&local));
    }
}
