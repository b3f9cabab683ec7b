//! Codes and identifiers from external code systems.

/// SNOMED CT, the code system for clinical concepts and document types.
pub const SNOMED_CT_SYSTEM: &str = "http://snomed.info/sct";

/// A code from a code system, e.g. SNOMED CT `373942005` "Discharge summary".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Coding {
    /// The code system's URI, e.g. [`SNOMED_CT_SYSTEM`].
    pub system: String,
    /// The code within that system.
    pub code: String,
    /// A human-readable display text, if the sender gave one.
    pub display: Option<String>,
}

impl Coding {
    /// A SNOMED CT concept.
    pub fn snomed(code: &str, display: &str) -> Self {
        Self {
            system: SNOMED_CT_SYSTEM.into(),
            code: code.into(),
            display: Some(display.into()),
        }
    }
}

/// An identifier issued by some authority: a hospital number (MRN), an
/// encounter number, a GMC number. NHS numbers have their own field on the
/// patient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identifier {
    /// The namespace (a URI, an OID, or an HL7 v2 assigning authority).
    pub system: String,
    /// The identifier within that namespace.
    pub value: String,
    /// The identifier type (HL7 table 0203, e.g. `MR`, `VN`), if known.
    pub type_code: Option<String>,
}
