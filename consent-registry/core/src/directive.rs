//! Patients' consent directives.

use lhcie_model::{Category, NhsNumber, OdsCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use std::borrow::Borrow;

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
    /// When the directive starts to apply: the later of its `valid_from`
    /// and the moment it was recorded. Nothing applies before it was
    /// recorded, so recording a directive never changes a past decision.
    pub fn effective_from(&self) -> OffsetDateTime {
        self.valid_from.max(self.recorded_at)
    }

    /// When it stops applying: the earlier of its `valid_until` and its
    /// withdrawal; `None` while open-ended.
    pub fn effective_until(&self) -> Option<OffsetDateTime> {
        [self.valid_until, self.withdrawal.as_ref().map(|w| w.at)]
            .into_iter()
            .flatten()
            .min()
    }

    /// Whether the directive applies at `at`: from
    /// [`effective_from`](Self::effective_from) until
    /// [`effective_until`](Self::effective_until) (exclusive).
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.effective_from() <= at && self.effective_until().is_none_or(|end| at < end)
    }
}

impl Directive {
    /// When this state of the directive was recorded: its withdrawal if it
    /// is withdrawn, otherwise its recording.
    pub fn changed_at(&self) -> OffsetDateTime {
        self.withdrawal.as_ref().map_or(self.recorded_at, |w| w.at)
    }
}

/// A patient's directives as they stood at `at`: given every recorded state
/// of them, oldest first (each the directive as one change left it: set,
/// replaced, imported or withdrawn), the last state of each id changed by
/// `at`. A replacement or withdrawal recorded later does not reach back:
/// the state that applied at `at` is the one kept. By id.
pub fn as_they_stood<'d>(
    states: impl IntoIterator<Item = &'d Directive>,
    at: OffsetDateTime,
) -> Vec<Directive> {
    let states: Vec<&Directive> = states.into_iter().collect();
    states_by_id(&states, at).cloned().collect()
}

/// [`as_they_stood`], borrowed: of `states` (oldest first), the last of
/// each id changed by `at`, in id order.
pub(crate) fn states_by_id<'d, D: std::borrow::Borrow<Directive>>(
    states: &'d [D],
    at: OffsetDateTime,
) -> impl Iterator<Item = &'d Directive> {
    let mut latest: Vec<&'d Directive> = Vec::with_capacity(states.len());
    for state in states
        .iter()
        .map(Borrow::borrow)
        .filter(|d| d.changed_at() <= at)
    {
        match latest.iter_mut().find(|kept| kept.id == state.id) {
            Some(kept) => *kept = state,
            None => latest.push(state),
        }
    }
    latest.sort_by(|a, b| a.id.cmp(&b.id));
    latest.into_iter()
}
