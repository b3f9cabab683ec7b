//! The changes the registry makes, as pure transitions. The registry's
//! state machine applies a [`Proposal`] (a command, who asked, and the time
//! the leader assigned) to the records it touches; the same proposal always
//! has the same effect, on every replica.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::directive::Directive;
use crate::grant::CarerGrant;
use crate::isa::{Agreement, IsaError, IsaTerms, Signature, StatusNote};

/// A change to the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Draft a new agreement (version 1).
    DraftIsa {
        /// Its id.
        id: String,
        /// Its terms.
        terms: IsaTerms,
    },
    /// Draft the next version of an agreement.
    AmendIsa {
        /// The agreement.
        id: String,
        /// The new terms.
        terms: IsaTerms,
    },
    /// Sign a version on behalf of a party.
    SignIsa {
        /// The agreement.
        id: String,
        /// The version.
        version: u32,
        /// The signature (its time is the proposal's).
        signature: Signature,
    },
    /// Suspend an agreement.
    SuspendIsa {
        /// The agreement.
        id: String,
        /// Why.
        reason: String,
    },
    /// Lift a suspension.
    ReinstateIsa {
        /// The agreement.
        id: String,
        /// Why.
        reason: String,
    },
    /// Revoke an agreement for good.
    RevokeIsa {
        /// The agreement.
        id: String,
        /// Why.
        reason: String,
    },
    /// Record (or replace) a directive.
    SetDirective(Directive),
    /// Withdraw a directive.
    WithdrawDirective {
        /// The directive.
        id: String,
        /// Why.
        reason: String,
    },
    /// Record many directives at once (an exchange migrating onto the hub).
    ImportDirectives {
        /// The exchange they come from.
        source_exchange: String,
        /// The directives.
        directives: Vec<Directive>,
    },
    /// Record a carer grant.
    GrantCarer(CarerGrant),
    /// Revoke a carer grant.
    RevokeCarer {
        /// The grant.
        id: String,
        /// Why.
        reason: String,
    },
}

/// A command with who asked for it and when (assigned once, by the leader).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The change.
    pub command: Command,
    /// Who asked (an authenticated user or service).
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
}

/// Why a command could not be applied. Nothing changes when one is
/// returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CommandError {
    /// An agreement rule was broken.
    #[error(transparent)]
    Isa(#[from] IsaError),
    /// The agreement does not exist.
    #[error("no agreement {0}")]
    NoSuchAgreement(String),
    /// An agreement with this id exists already.
    #[error("agreement {0} already exists; amend it instead")]
    AgreementExists(String),
    /// The directive does not exist.
    #[error("no directive {0}")]
    NoSuchDirective(String),
    /// The directive was withdrawn already.
    #[error("directive {0} is already withdrawn")]
    AlreadyWithdrawn(String),
    /// A directive or grant id is empty, or its dates are inverted.
    #[error("{0}")]
    Invalid(String),
    /// The grant does not exist.
    #[error("no carer grant {0}")]
    NoSuchGrant(String),
}

fn note(reason: &str, by: &str, at: OffsetDateTime) -> StatusNote {
    StatusNote {
        at,
        by: by.to_owned(),
        reason: reason.to_owned(),
    }
}

/// Applies an agreement command to the agreement it names (`None` if it
/// does not exist yet); returns the agreement as it now is.
pub fn apply_to_agreement(
    current: Option<Agreement>,
    proposal: &Proposal,
) -> Result<Agreement, CommandError> {
    let (by, at) = (proposal.by.as_str(), proposal.at);
    let existing = |current: Option<Agreement>, id: &str| {
        current.ok_or_else(|| CommandError::NoSuchAgreement(id.to_owned()))
    };
    match &proposal.command {
        Command::DraftIsa { id, terms } => match current {
            Some(_) => Err(CommandError::AgreementExists(id.clone())),
            None => Ok(Agreement::draft(id, terms.clone(), by, at)?),
        },
        Command::AmendIsa { id, terms } => {
            let mut agreement = existing(current, id)?;
            agreement.amend(terms.clone(), by, at)?;
            Ok(agreement)
        }
        Command::SignIsa {
            id,
            version,
            signature,
        } => {
            let mut agreement = existing(current, id)?;
            let mut signature = signature.clone();
            signature.signed_at = at;
            agreement.sign(*version, signature)?;
            Ok(agreement)
        }
        Command::SuspendIsa { id, reason } => {
            let mut agreement = existing(current, id)?;
            agreement.suspend(note(reason, by, at))?;
            Ok(agreement)
        }
        Command::ReinstateIsa { id, reason } => {
            let mut agreement = existing(current, id)?;
            agreement.reinstate(note(reason, by, at))?;
            Ok(agreement)
        }
        Command::RevokeIsa { id, reason } => {
            let mut agreement = existing(current, id)?;
            agreement.revoke(note(reason, by, at))?;
            Ok(agreement)
        }
        other => Err(CommandError::Invalid(format!(
            "{} is not an agreement command",
            name(other)
        ))),
    }
}

/// Checks a directive before it is recorded, and stamps who and when.
pub fn record_directive(
    mut directive: Directive,
    by: &str,
    at: OffsetDateTime,
) -> Result<Directive, CommandError> {
    if directive.id.trim().is_empty() {
        return Err(CommandError::Invalid("a directive id is required".into()));
    }
    if directive
        .valid_until
        .is_some_and(|end| end <= directive.valid_from)
    {
        return Err(CommandError::Invalid(format!(
            "directive {}: valid_until must be after valid_from",
            directive.id
        )));
    }
    directive.recorded_by = by.to_owned();
    directive.recorded_at = at;
    directive.withdrawal = None;
    Ok(directive)
}

/// Withdraws a directive.
pub fn withdraw_directive(
    current: Option<Directive>,
    id: &str,
    reason: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<Directive, CommandError> {
    let mut directive = current.ok_or_else(|| CommandError::NoSuchDirective(id.to_owned()))?;
    if directive.withdrawal.is_some() {
        return Err(CommandError::AlreadyWithdrawn(id.to_owned()));
    }
    directive.withdrawal = Some(note(reason, by, at));
    Ok(directive)
}

/// Checks a carer grant before it is recorded, and stamps who and when.
pub fn record_grant(
    mut grant: CarerGrant,
    by: &str,
    at: OffsetDateTime,
) -> Result<CarerGrant, CommandError> {
    if grant.id.trim().is_empty() || grant.carer_name.trim().is_empty() {
        return Err(CommandError::Invalid(
            "a carer grant needs an id and the carer's name".into(),
        ));
    }
    if grant.valid_until.is_some_and(|end| end <= grant.valid_from) {
        return Err(CommandError::Invalid(
            "valid_until must be after valid_from".into(),
        ));
    }
    grant.recorded_by = by.to_owned();
    grant.recorded_at = at;
    grant.revocation = None;
    Ok(grant)
}

/// Revokes a carer grant.
pub fn revoke_grant(
    current: Option<CarerGrant>,
    id: &str,
    reason: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<CarerGrant, CommandError> {
    let mut grant = current.ok_or_else(|| CommandError::NoSuchGrant(id.to_owned()))?;
    grant.revocation = Some(note(reason, by, at));
    Ok(grant)
}

/// A short name of a command, for logs and errors.
pub fn name(command: &Command) -> &'static str {
    match command {
        Command::DraftIsa { .. } => "draft-isa",
        Command::AmendIsa { .. } => "amend-isa",
        Command::SignIsa { .. } => "sign-isa",
        Command::SuspendIsa { .. } => "suspend-isa",
        Command::ReinstateIsa { .. } => "reinstate-isa",
        Command::RevokeIsa { .. } => "revoke-isa",
        Command::SetDirective(_) => "set-directive",
        Command::WithdrawDirective { .. } => "withdraw-directive",
        Command::ImportDirectives { .. } => "import-directives",
        Command::GrantCarer(_) => "grant-carer",
        Command::RevokeCarer { .. } => "revoke-carer",
    }
}
