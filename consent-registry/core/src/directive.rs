//! Patients' consent directives.

use lhcie_model::{Category, NhsNumber, OdsCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::isa::StatusNote;

/// One choice a patient (or someone on their behalf) has recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directive {
    /// Stable id.
    pub id: String,
    /// The patient.
    pub nhs_number: NhsNumber,
    /// The choice.
    pub rule: DirectiveRule,
    /// Start of validity (inclusive).
    pub valid_from: OffsetDateTime,
    /// End of validity (exclusive); `None` for open-ended.
    pub valid_until: Option<OffsetDateTime>,
    /// Where it came from.
    pub source: DirectiveSource,
    /// Who recorded it (a user id, a clinician, an import batch).
    pub recorded_by: String,
    /// When it was recorded.
    pub recorded_at: OffsetDateTime,
    /// Set once withdrawn: it stops applying from then, and is kept for
    /// the history.
    pub withdrawal: Option<StatusNote>,
}

/// What a directive says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DirectiveRule {
    /// Do not share anything about me.
    DissentAll,
    /// Do not share with this organisation.
    DenyOrganisation(OdsCode),
    /// Do not share this kind of information.
    DenyCategory(Category),
    /// Share with this organisation even though I dissent more broadly
    /// (and, under an explicit opt-in model, this is the opt-in).
    AllowOrganisation(OdsCode),
}

/// Where a directive came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DirectiveSource {
    /// The patient, through their online account.
    PatientAccount,
    /// A clinician, on the patient's behalf.
    Clinician,
    /// Imported in bulk from a local exchange's existing records.
    BulkImport,
}

impl Directive {
    /// Whether the directive applies at `at`: within its dates and not
    /// withdrawn by then.
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.withdrawal.as_ref().is_none_or(|w| at < w.at)
            && self.valid_from <= at
            && self.valid_until.is_none_or(|end| at < end)
    }
}
