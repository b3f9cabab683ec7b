//! Carer and proxy grants: a patient lets a named person act on their
//! account, within stated scopes. Stored now; the patient account will use
//! them.

use lhcie_model::NhsNumber;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::isa::StatusNote;

/// A patient's grant of access to their account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarerGrant {
    /// Stable id.
    pub id: String,
    /// The patient who grants.
    pub patient: NhsNumber,
    /// The carer or proxy, by name.
    pub carer_name: String,
    /// How to reach them (e-mail, phone).
    pub carer_contact: String,
    /// What they may do, e.g. `view-record`, `manage-sharing`.
    pub scopes: Vec<String>,
    /// Start (inclusive).
    pub valid_from: OffsetDateTime,
    /// End (exclusive), if any.
    pub valid_until: Option<OffsetDateTime>,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: OffsetDateTime,
    /// Set once revoked.
    pub revocation: Option<StatusNote>,
}

impl CarerGrant {
    /// Whether the grant is in effect at `at`.
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.revocation.as_ref().is_none_or(|r| at < r.at)
            && self.valid_from <= at
            && self.valid_until.is_none_or(|end| at < end)
    }
}
