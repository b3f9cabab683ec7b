//! Information sharing agreements.

use std::collections::BTreeSet;

use lhcie_model::{Category, PurposeOfUse};
use time::OffsetDateTime;

use crate::party::{IsaParty, OrgRef};

/// Where an agreement stands. Only an `Active` agreement within its
/// validity period lets information flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsaStatus {
    /// Written, not yet signed by every party.
    Draft,
    /// Signed by every party.
    Active,
    /// Temporarily stopped.
    Suspended,
    /// Ended for good.
    Revoked,
}

/// An information sharing agreement: which parties may share which
/// categories of information, for which purposes, over which period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isa {
    /// Stable id, the same across versions.
    pub id: String,
    /// Version, from 1.
    pub version: u32,
    /// Title for people.
    pub title: String,
    /// The parties. A flow is covered when both its sender and its
    /// recipient are included in the parties.
    pub parties: Vec<IsaParty>,
    /// Purposes of use it covers.
    pub purposes: BTreeSet<PurposeOfUse>,
    /// Categories of information it covers.
    pub categories: BTreeSet<Category>,
    /// The legal basis, e.g. "UK GDPR Art. 6(1)(e) and 9(2)(h)".
    pub legal_basis: String,
    /// Start of validity (inclusive).
    pub valid_from: OffsetDateTime,
    /// End of validity (exclusive); `None` for open-ended.
    pub valid_until: Option<OffsetDateTime>,
    /// Its status.
    pub status: IsaStatus,
}

impl Isa {
    /// Whether the agreement is in force at `at`: active and within its
    /// validity period.
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.status == IsaStatus::Active
            && self.valid_from <= at
            && self.valid_until.is_none_or(|end| at < end)
    }

    /// Whether the agreement, in force at `at`, covers a flow of `category`
    /// for `purpose` from `sender` to `recipient`.
    pub fn covers(
        &self,
        sender: &OrgRef<'_>,
        recipient: &OrgRef<'_>,
        category: Category,
        purpose: PurposeOfUse,
        at: OffsetDateTime,
    ) -> bool {
        self.in_force_at(at)
            && self.categories.contains(&category)
            && self.purposes.contains(&purpose)
            && self.parties.iter().any(|p| p.includes(sender))
            && self.parties.iter().any(|p| p.includes(recipient))
    }
}
