//! Information sharing agreements and their lifecycle.
//!
//! An agreement has an id and one or more **versions** of its terms. A
//! version is drafted, then **signed** on behalf of each of its parties; once
//! every party has signed, it is **in force** from its `valid_from` until
//! its `valid_until`. An **amendment** is a new version that must be signed
//! again; until it is in force, the previous signed version stays in force.
//! The agreement as a whole can be **suspended** (and reinstated) or
//! **revoked** (final). Status is never stored: it is derived for a moment
//! in time from dated facts that are kept for ever (each draft, signature,
//! suspension, reinstatement and revocation, with the registry's time), so
//! a decision at a given time is reproducible.
//!
//! The time rules (`docs/consent-model.md`, "Time"):
//! - **Nothing applies before it was recorded.** A version is in force from
//!   the later of its `valid_from` and the moment its last required
//!   signature was recorded ([`IsaVersion::in_force_from`]), so a late
//!   signature, or a later version with a past start date, never changes
//!   what applied before it was signed.
//! - **Suspensions are periods**, kept after reinstatement: a moment inside
//!   a past suspension stays suspended.
//! - **What was known**: [`Agreement::version_in_force_known_at`] counts
//!   only the facts recorded by a given moment, for explaining a decision
//!   made with a copy of the registry of that age.

use std::collections::BTreeSet;

use lhcie_model::{Category, OdsCode, PurposeOfUse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::party::{IsaParty, OrgRef};

/// The terms of one version of an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsaTerms {
    /// Title for people.
    pub title: String,
    /// The parties; a flow is covered when both its sender and its
    /// recipient are included.
    pub parties: Vec<IsaParty>,
    /// Purposes of use covered.
    pub purposes: BTreeSet<PurposeOfUse>,
    /// Categories of information covered.
    pub categories: BTreeSet<Category>,
    /// The legal basis, e.g. "UK GDPR Art. 6(1)(e) and 9(2)(h)".
    pub legal_basis: String,
    /// Start of validity (inclusive).
    pub valid_from: OffsetDateTime,
    /// End of validity (exclusive); `None` for open-ended.
    pub valid_until: Option<OffsetDateTime>,
    /// Where the signed document is kept.
    pub document_reference: Option<String>,
    /// Whether, under this agreement, a flow for emergency care may
    /// override a patient's refusal (break-glass). Off unless the parties
    /// agreed it: without it an emergency flow is decided on the patient's
    /// choices like any other.
    pub emergency_override: bool,
}

/// A signature on behalf of one party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The party signed for (one of the version's parties).
    pub party: IsaParty,
    /// Who signed (a person).
    pub signer: String,
    /// Their role, e.g. "Caldicott Guardian", "Data Protection Officer".
    pub role: String,
    /// Their organisation.
    pub organisation: OdsCode,
    /// When.
    pub signed_at: OffsetDateTime,
}

/// One version of an agreement: its terms and the signatures it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsaVersion {
    /// Version number, from 1.
    pub version: u32,
    /// The terms.
    pub terms: IsaTerms,
    /// Signatures so far.
    pub signatures: Vec<Signature>,
    /// Who drafted it.
    pub drafted_by: String,
    /// When.
    pub drafted_at: OffsetDateTime,
}

/// Who did something to an agreement, when and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusNote {
    /// When it took effect.
    pub at: OffsetDateTime,
    /// Who did it.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// One period during which an agreement was suspended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspension {
    /// Who suspended it, when and why.
    pub suspended: StatusNote,
    /// Who reinstated it, when and why; `None` while it lasts.
    pub reinstated: Option<StatusNote>,
}

impl Suspension {
    /// Whether the agreement was suspended at `at`.
    pub fn covers(&self, at: OffsetDateTime) -> bool {
        self.suspended.at <= at && self.reinstated.as_ref().is_none_or(|r| at < r.at)
    }
}

/// An information sharing agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    /// Stable id.
    pub id: String,
    /// Versions, oldest first.
    pub versions: Vec<IsaVersion>,
    /// Every suspension, oldest first; the last is current if it has no
    /// reinstatement.
    pub suspensions: Vec<Suspension>,
    /// Set once the agreement is revoked (final).
    pub revocation: Option<StatusNote>,
}

/// Where a version of an agreement stands at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IsaStatus {
    /// Not yet signed for every party.
    Draft,
    /// Signed by every party, validity not yet begun.
    Signed,
    /// In force.
    Active,
    /// Signed and valid, but a later version is in force.
    Superseded,
    /// Validity has ended.
    Expired,
    /// The agreement is suspended.
    Suspended,
    /// The agreement is revoked.
    Revoked,
}

/// Why an agreement could not be changed as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum IsaError {
    /// The terms are incomplete or inconsistent.
    #[error("invalid terms: {0}")]
    InvalidTerms(String),
    /// No such version.
    #[error("agreement {id} has no version {version}")]
    NoSuchVersion {
        /// The agreement.
        id: String,
        /// The version asked for.
        version: u32,
    },
    /// The signature is for a party that is not in the version.
    #[error("{0} is not a party to this version")]
    NotAParty(String),
    /// An organisation signed for an organisation party other than itself.
    #[error("{signer} cannot sign for organisation {party}")]
    WrongOrganisation {
        /// The signing organisation.
        signer: String,
        /// The party it tried to sign for.
        party: String,
    },
    /// The same person already signed for the same party.
    #[error("{signer} has already signed for {party}")]
    AlreadySigned {
        /// The signer.
        signer: String,
        /// The party.
        party: String,
    },
    /// The agreement is revoked; nothing more can change.
    #[error("agreement {0} is revoked")]
    Revoked(String),
    /// Suspend of a suspended agreement, or reinstate of one that is not.
    #[error("agreement {id} is {}", if *.suspended { "already suspended" } else { "not suspended" })]
    SuspensionState {
        /// The agreement.
        id: String,
        /// Whether it is suspended.
        suspended: bool,
    },
}

impl std::fmt::Display for IsaParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IsaParty::Organisation(code) => write!(f, "organisation {code}"),
            IsaParty::Exchange(id) => write!(f, "exchange {id}"),
            IsaParty::Region(code) => write!(f, "region {code}"),
        }
    }
}

impl IsaTerms {
    /// Checks the terms are complete and consistent.
    pub fn validate(&self) -> Result<(), IsaError> {
        let invalid = |m: &str| Err(IsaError::InvalidTerms(m.to_owned()));
        if self.title.trim().is_empty() {
            return invalid("a title is required");
        }
        if self.parties.is_empty() {
            return invalid("name at least one party");
        }
        if self.purposes.is_empty() {
            return invalid("name at least one purpose of use");
        }
        if self.categories.is_empty() {
            return invalid("name at least one category");
        }
        if self.legal_basis.trim().is_empty() {
            return invalid("a legal basis is required");
        }
        if self
            .valid_until
            .is_some_and(|until| until <= self.valid_from)
        {
            return invalid("valid_until must be after valid_from");
        }
        Ok(())
    }

    /// Whether the terms' dates include `at`.
    pub fn valid_at(&self, at: OffsetDateTime) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|end| at < end)
    }

    /// Whether the terms cover a flow (dates aside).
    pub fn cover(
        &self,
        sender: &OrgRef<'_>,
        recipient: &OrgRef<'_>,
        category: Category,
        purpose: PurposeOfUse,
    ) -> bool {
        self.categories.contains(&category)
            && self.purposes.contains(&purpose)
            && self.parties.iter().any(|p| p.includes(sender))
            && self.parties.iter().any(|p| p.includes(recipient))
    }
}

impl IsaVersion {
    /// The parties no-one has signed for yet.
    pub fn unsigned_parties(&self) -> Vec<&IsaParty> {
        self.terms
            .parties
            .iter()
            .filter(|party| !self.signatures.iter().any(|s| &s.party == *party))
            .collect()
    }

    /// Whether every party has signed.
    pub fn fully_signed(&self) -> bool {
        self.unsigned_parties().is_empty()
    }

    /// When the last required signature was recorded: for each party its
    /// first signature, and the latest of those. `None` until every party
    /// has signed.
    pub fn fully_signed_at(&self) -> Option<OffsetDateTime> {
        self.fully_signed_known_at(None)
    }

    /// [`fully_signed_at`](Self::fully_signed_at), counting only the
    /// signatures recorded by `known_at` (all when `None`).
    fn fully_signed_known_at(&self, known_at: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
        self.terms
            .parties
            .iter()
            .map(|party| {
                self.signatures
                    .iter()
                    .filter(|s| &s.party == party && known_at.is_none_or(|k| s.signed_at <= k))
                    .map(|s| s.signed_at)
                    .min()
            })
            .try_fold(None, |latest: Option<OffsetDateTime>, first| {
                first.map(|first| Some(latest.map_or(first, |l| l.max(first))))
            })
            .flatten()
    }

    /// When this version comes into force: the later of its `valid_from`
    /// and its last required signature. `None` while unsigned.
    pub fn in_force_from(&self) -> Option<OffsetDateTime> {
        self.fully_signed_at()
            .map(|signed| signed.max(self.terms.valid_from))
    }

    /// Whether this version's own dates and signatures put it in force at
    /// `at` (the agreement's suspensions and revocation aside).
    pub fn in_force_at(&self, at: OffsetDateTime) -> bool {
        self.in_force_known_at(at, None)
    }

    /// [`in_force_at`](Self::in_force_at) from what was recorded by
    /// `known_at` (everything when `None`).
    fn in_force_known_at(&self, at: OffsetDateTime, known_at: Option<OffsetDateTime>) -> bool {
        known_at.is_none_or(|k| self.drafted_at <= k)
            && self
                .fully_signed_known_at(known_at)
                .is_some_and(|signed| signed.max(self.terms.valid_from) <= at)
            && self.terms.valid_until.is_none_or(|end| at < end)
    }
}

impl Agreement {
    /// A new agreement, version 1 drafted from `terms`.
    pub fn draft(
        id: &str,
        terms: IsaTerms,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Self, IsaError> {
        if id.trim().is_empty() {
            return Err(IsaError::InvalidTerms("an agreement id is required".into()));
        }
        terms.validate()?;
        Ok(Self {
            id: id.to_owned(),
            versions: vec![IsaVersion {
                version: 1,
                terms,
                signatures: vec![],
                drafted_by: by.to_owned(),
                drafted_at: at,
            }],
            suspensions: vec![],
            revocation: None,
        })
    }

    /// Whether the agreement is suspended now (a suspension not yet lifted).
    pub fn is_suspended(&self) -> bool {
        self.suspensions
            .last()
            .is_some_and(|s| s.reinstated.is_none())
    }

    fn not_revoked(&self) -> Result<(), IsaError> {
        match self.revocation {
            Some(_) => Err(IsaError::Revoked(self.id.clone())),
            None => Ok(()),
        }
    }

    /// Drafts the next version; it needs signing again, and until it is in
    /// force the previous signed version stays in force. Returns the new
    /// version number.
    pub fn amend(
        &mut self,
        terms: IsaTerms,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<u32, IsaError> {
        self.not_revoked()?;
        terms.validate()?;
        let version = self.versions.last().map_or(1, |v| v.version + 1);
        self.versions.push(IsaVersion {
            version,
            terms,
            signatures: vec![],
            drafted_by: by.to_owned(),
            drafted_at: at,
        });
        Ok(version)
    }

    /// Adds a signature to a version.
    pub fn sign(&mut self, version: u32, signature: Signature) -> Result<(), IsaError> {
        self.not_revoked()?;
        let id = self.id.clone();
        let target = self
            .versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or(IsaError::NoSuchVersion { id, version })?;
        if !target.terms.parties.contains(&signature.party) {
            return Err(IsaError::NotAParty(signature.party.to_string()));
        }
        if let IsaParty::Organisation(code) = &signature.party
            && code != &signature.organisation
        {
            return Err(IsaError::WrongOrganisation {
                signer: signature.organisation.to_string(),
                party: code.to_string(),
            });
        }
        if target
            .signatures
            .iter()
            .any(|s| s.party == signature.party && s.signer == signature.signer)
        {
            return Err(IsaError::AlreadySigned {
                signer: signature.signer,
                party: signature.party.to_string(),
            });
        }
        target.signatures.push(signature);
        Ok(())
    }

    /// Suspends the agreement: nothing flows under it until reinstated.
    pub fn suspend(&mut self, note: StatusNote) -> Result<(), IsaError> {
        self.not_revoked()?;
        if self.is_suspended() {
            return Err(IsaError::SuspensionState {
                id: self.id.clone(),
                suspended: true,
            });
        }
        self.suspensions.push(Suspension {
            suspended: note,
            reinstated: None,
        });
        Ok(())
    }

    /// Lifts the current suspension; the period stays in the record.
    pub fn reinstate(&mut self, note: StatusNote) -> Result<(), IsaError> {
        self.not_revoked()?;
        match self.suspensions.last_mut() {
            Some(current) if current.reinstated.is_none() => {
                current.reinstated = Some(note);
                Ok(())
            }
            _ => Err(IsaError::SuspensionState {
                id: self.id.clone(),
                suspended: false,
            }),
        }
    }

    /// Revokes the agreement, for good.
    pub fn revoke(&mut self, note: StatusNote) -> Result<(), IsaError> {
        self.not_revoked()?;
        self.revocation = Some(note);
        Ok(())
    }

    /// Whether the agreement was revoked or suspended at `at`, from what
    /// was recorded by `known_at` (everything when `None`).
    fn stopped_at(
        &self,
        at: OffsetDateTime,
        known_at: Option<OffsetDateTime>,
    ) -> Option<IsaStatus> {
        let known = |note: &StatusNote| known_at.is_none_or(|k| note.at <= k);
        if self
            .revocation
            .as_ref()
            .is_some_and(|n| n.at <= at && known(n))
        {
            return Some(IsaStatus::Revoked);
        }
        let suspended = self.suspensions.iter().any(|s| {
            let lifted = s
                .reinstated
                .as_ref()
                .is_some_and(|r| r.at <= at && known(r));
            s.suspended.at <= at && known(&s.suspended) && !lifted
        });
        suspended.then_some(IsaStatus::Suspended)
    }

    /// The version in force at `at`: of the versions whose signatures and
    /// dates put them in force then ([`IsaVersion::in_force_at`]), the
    /// highest; none while the agreement is suspended or revoked.
    pub fn version_in_force(&self, at: OffsetDateTime) -> Option<&IsaVersion> {
        self.version_in_force_known_at(at, None)
    }

    /// [`version_in_force`](Self::version_in_force) as the registry held
    /// the agreement at `known_at`: only the versions, signatures,
    /// suspensions, reinstatements and revocation recorded by then count
    /// (everything when `None`). A copy of the registry of that age
    /// decided with exactly this.
    pub fn version_in_force_known_at(
        &self,
        at: OffsetDateTime,
        known_at: Option<OffsetDateTime>,
    ) -> Option<&IsaVersion> {
        if self.stopped_at(at, known_at).is_some() {
            return None;
        }
        self.versions
            .iter()
            .rev()
            .find(|v| v.in_force_known_at(at, known_at))
    }

    /// Where `version` stands at `at`, from the facts recorded by then.
    pub fn status_of(&self, version: u32, at: OffsetDateTime) -> Option<IsaStatus> {
        let target = self.versions.iter().find(|v| v.version == version)?;
        if let Some(stopped) = self.stopped_at(at, None) {
            return Some(stopped);
        }
        Some(
            if target.fully_signed_at().is_none_or(|signed| at < signed) {
                IsaStatus::Draft
            } else if at < target.terms.valid_from {
                IsaStatus::Signed
            } else if target.terms.valid_until.is_some_and(|end| end <= at) {
                IsaStatus::Expired
            } else if self
                .version_in_force(at)
                .is_some_and(|v| v.version == version)
            {
                IsaStatus::Active
            } else {
                IsaStatus::Superseded
            },
        )
    }

    /// The version in force at `at`, if it covers the flow.
    pub fn covering(
        &self,
        sender: &OrgRef<'_>,
        recipient: &OrgRef<'_>,
        category: Category,
        purpose: PurposeOfUse,
        at: OffsetDateTime,
    ) -> Option<&IsaVersion> {
        self.covering_known_at(sender, recipient, category, purpose, at, None)
    }

    /// [`covering`](Self::covering) as the registry held the agreement at
    /// `known_at` (see [`version_in_force_known_at`](Self::version_in_force_known_at)).
    pub fn covering_known_at(
        &self,
        sender: &OrgRef<'_>,
        recipient: &OrgRef<'_>,
        category: Category,
        purpose: PurposeOfUse,
        at: OffsetDateTime,
        known_at: Option<OffsetDateTime>,
    ) -> Option<&IsaVersion> {
        self.version_in_force_known_at(at, known_at)
            .filter(|v| v.terms.cover(sender, recipient, category, purpose))
    }
}
