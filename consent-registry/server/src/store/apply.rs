//! Applying one log entry: the command's pure transition (from
//! `lhcie-consent`) over the records it reads, and every write it causes,
//! in one sled transaction.

use std::cell::RefCell;

use lhcie_consent::commands::{
    apply_to_agreement, record_directive, record_grant, revoke_grant, withdraw_directive,
};
use lhcie_consent::{
    Agreement, CarerGrant, Command, CommandError, Directive, DirectiveSource, Proposal,
};
use openraft::{EntryPayload, StoredMembership};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

use super::codec::{self, encode_changes, grant_index_key, history_key, index_key};
use super::meta_keys::APPLIED;
use super::{StoreFailure, Trees};
use crate::types::{
    Applied, AppliedRecord, Change, DirectiveAction, Entry, HistoryEvent, Node, NodeId, Outcome,
};

type TxResult<T> = Result<T, ConflictableTransactionError<StoreFailure>>;

fn failed(failure: StoreFailure) -> ConflictableTransactionError<StoreFailure> {
    ConflictableTransactionError::Abort(failure)
}

fn get<T: DeserializeOwned>(tree: &TransactionalTree, key: &[u8]) -> TxResult<Option<T>> {
    match tree.get(key)? {
        Some(value) => codec::decode(&value).map(Some).map_err(failed),
        None => Ok(None),
    }
}

fn put<T: Serialize>(tree: &TransactionalTree, key: &[u8], value: &T) -> TxResult<()> {
    tree.insert(key, codec::encode(value).map_err(failed)?)?;
    Ok(())
}

/// The trees of one transaction, and the changes made so far in it.
pub(crate) struct Applying<'t> {
    revision: u64,
    meta: &'t TransactionalTree,
    agreements: &'t TransactionalTree,
    directives: &'t TransactionalTree,
    history: &'t TransactionalTree,
    grants: &'t TransactionalTree,
    grants_by_patient: &'t TransactionalTree,
    changes: &'t TransactionalTree,
    clocks: &'t TransactionalTree,
    made: RefCell<Vec<Change>>,
}

impl Applying<'_> {
    /// Writes a change: the record, its index or history, and remembers it
    /// for the change log.
    fn emit(&self, change: Change) -> TxResult<()> {
        let seq = u32::try_from(self.made.borrow().len()).map_err(|_| {
            failed(StoreFailure::Inconsistent(
                "too many changes in one entry".into(),
            ))
        })?;
        write_change(self, self.revision, seq, &change)?;
        self.made.borrow_mut().push(change);
        Ok(())
    }
}

/// Writes one change's records. Used when applying entries and when a
/// snapshot's tail is installed, so both write the same things.
fn write_change(tx: &Applying<'_>, revision: u64, seq: u32, change: &Change) -> TxResult<()> {
    match change {
        Change::Agreement(agreement) => put(tx.agreements, agreement.id.as_bytes(), agreement),
        Change::Directive { action, directive } => {
            put(tx.directives, directive.id.as_bytes(), directive)?;
            let event = HistoryEvent {
                revision,
                seq,
                action: *action,
                directive: directive.clone(),
            };
            put(
                tx.history,
                &history_key(&directive.nhs_number, revision, seq),
                &event,
            )
        }
        Change::Grant(grant) => {
            put(tx.grants, grant.id.as_bytes(), grant)?;
            tx.grants_by_patient
                .insert(grant_index_key(&grant.patient, &grant.id), &[])?;
            Ok(())
        }
    }
}

/// Runs `body` in one transaction over the state machine's trees.
pub(crate) fn in_transaction<T>(
    trees: &Trees,
    revision: u64,
    body: impl Fn(&Applying<'_>) -> TxResult<T>,
) -> Result<(T, Vec<Change>), StoreFailure> {
    let result = (
        &trees.meta,
        &trees.agreements,
        &trees.directives,
        &trees.history,
        &trees.grants,
        &trees.grants_by_patient,
        &trees.changes,
        &trees.clocks,
    )
        .transaction(
            |(
                meta,
                agreements,
                directives,
                history,
                grants,
                grants_by_patient,
                changes,
                clocks,
            )| {
                let tx = Applying {
                    revision,
                    meta,
                    agreements,
                    directives,
                    history,
                    grants,
                    grants_by_patient,
                    changes,
                    clocks,
                    made: RefCell::new(Vec::new()),
                };
                let value = body(&tx)?;
                Ok((value, tx.made.into_inner()))
            },
        )?;
    Ok(result)
}

/// Applies one log entry; `membership` is the membership in force after it.
/// A command that breaks a rule changes nothing but still moves the applied
/// position, on every replica alike.
pub(crate) fn apply_entry(
    trees: &Trees,
    entry: &Entry,
    membership: &StoredMembership<NodeId, Node>,
) -> Result<(Applied, Vec<Change>), StoreFailure> {
    let revision = entry.log_id.index;
    let (outcome, changes) = in_transaction(trees, revision, |tx| {
        let previous: AppliedRecord = get(tx.meta, APPLIED)?.unwrap_or_default();
        let mut applied = AppliedRecord {
            log_id: Some(entry.log_id),
            membership: membership.clone(),
            clock: previous.clock,
        };
        let outcome = match &entry.payload {
            EntryPayload::Normal(proposal) => {
                let proposal = in_log_order(proposal, previous.clock);
                applied.clock = Some(proposal.at);
                put(tx.clocks, &index_key(revision), &proposal.at)?;
                execute(tx, &proposal)?
            }
            EntryPayload::Blank | EntryPayload::Membership(_) => Ok(Outcome::Nothing),
        };
        let made = tx.made.borrow();
        if !made.is_empty() {
            let count = u32::try_from(made.len()).unwrap_or(u32::MAX);
            let value = encode_changes(count, &*made).map_err(failed)?;
            tx.changes.insert(&index_key(revision), value)?;
        }
        put(tx.meta, APPLIED, &applied)?;
        Ok(outcome)
    })?;
    Ok((Applied { revision, outcome }, changes))
}

/// The proposal with its time moved, if need be, to just after the last
/// applied proposal's (`clock`): times in the log only increase, so
/// "recorded by then" means the same as "recorded at or before this
/// revision", whatever the clocks of successive leaders said. Every replica
/// computes the same.
pub(crate) fn in_log_order(proposal: &Proposal, clock: Option<time::OffsetDateTime>) -> Proposal {
    let at = match clock {
        Some(last) if proposal.at <= last => last + time::Duration::nanoseconds(1),
        _ => proposal.at,
    };
    Proposal {
        at,
        ..proposal.clone()
    }
}

/// Writes a snapshot's tail (changes recorded while its records were
/// scanned) over the scanned records.
pub(crate) fn write_tail(
    trees: &Trees,
    revision: u64,
    changes: &[Change],
) -> Result<(), StoreFailure> {
    in_transaction(trees, revision, |tx| {
        for (seq, change) in changes.iter().enumerate() {
            let seq = u32::try_from(seq).unwrap_or(u32::MAX);
            write_change(tx, revision, seq, change)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Carries out one command.
fn execute(tx: &Applying<'_>, proposal: &Proposal) -> TxResult<Result<Outcome, CommandError>> {
    let (by, at) = (proposal.by.as_str(), proposal.at);
    match &proposal.command {
        Command::DraftIsa { id, .. }
        | Command::AmendIsa { id, .. }
        | Command::SignIsa { id, .. }
        | Command::SuspendIsa { id, .. }
        | Command::ReinstateIsa { id, .. }
        | Command::RevokeIsa { id, .. } => {
            let current: Option<Agreement> = get(tx.agreements, id.as_bytes())?;
            match apply_to_agreement(current, proposal) {
                Ok(agreement) => {
                    tx.emit(Change::Agreement(agreement.clone()))?;
                    Ok(Ok(Outcome::Agreement(agreement)))
                }
                Err(error) => Ok(Err(error)),
            }
        }
        Command::SetDirective(directive) => {
            match prepare_directive(tx, directive.clone(), by, at, false)? {
                Ok((directive, action)) => {
                    tx.emit(Change::Directive {
                        action,
                        directive: directive.clone(),
                    })?;
                    Ok(Ok(Outcome::Directive(directive)))
                }
                Err(error) => Ok(Err(error)),
            }
        }
        Command::WithdrawDirective { id, reason } => {
            let current: Option<Directive> = get(tx.directives, id.as_bytes())?;
            match withdraw_directive(current, id, reason, by, at) {
                Ok(directive) => {
                    tx.emit(Change::Directive {
                        action: DirectiveAction::Withdrawn,
                        directive: directive.clone(),
                    })?;
                    Ok(Ok(Outcome::Directive(directive)))
                }
                Err(error) => Ok(Err(error)),
            }
        }
        Command::ImportDirectives {
            source_exchange,
            directives,
        } => {
            let by = format!("import from {source_exchange} by {by}");
            let mut imported = 0u64;
            let mut rejected = Vec::new();
            for directive in directives {
                let mut directive = directive.clone();
                directive.source = DirectiveSource::BulkImport;
                let id = directive.id.clone();
                match prepare_directive(tx, directive, &by, at, true)? {
                    Ok((directive, action)) => {
                        tx.emit(Change::Directive { action, directive })?;
                        imported += 1;
                    }
                    Err(error) => rejected.push(format!("{id}: {error}")),
                }
            }
            Ok(Ok(Outcome::Imported { imported, rejected }))
        }
        Command::GrantCarer(grant) => match record_grant(grant.clone(), by, at) {
            Ok(grant) => {
                let existing: Option<CarerGrant> = get(tx.grants, grant.id.as_bytes())?;
                if existing.is_some_and(|e| e.patient != grant.patient) {
                    return Ok(Err(CommandError::Invalid(format!(
                        "carer grant {} is recorded for another patient; use a new id",
                        grant.id
                    ))));
                }
                tx.emit(Change::Grant(grant.clone()))?;
                Ok(Ok(Outcome::Grant(grant)))
            }
            Err(error) => Ok(Err(error)),
        },
        Command::RevokeCarer { id, reason } => {
            let current: Option<CarerGrant> = get(tx.grants, id.as_bytes())?;
            match revoke_grant(current, id, reason, by, at) {
                Ok(grant) => {
                    tx.emit(Change::Grant(grant.clone()))?;
                    Ok(Ok(Outcome::Grant(grant)))
                }
                Err(error) => Ok(Err(error)),
            }
        }
    }
}

/// Checks a directive to be recorded: its own rules, and that its id does
/// not already belong to another patient.
fn prepare_directive(
    tx: &Applying<'_>,
    directive: Directive,
    by: &str,
    at: time::OffsetDateTime,
    imported: bool,
) -> TxResult<Result<(Directive, DirectiveAction), CommandError>> {
    let directive = match record_directive(directive, by, at) {
        Ok(directive) => directive,
        Err(error) => return Ok(Err(error)),
    };
    let existing: Option<Directive> = get(tx.directives, directive.id.as_bytes())?;
    if let Some(existing) = &existing
        && existing.nhs_number != directive.nhs_number
    {
        return Ok(Err(CommandError::Invalid(format!(
            "directive {} is recorded for another patient; use a new id",
            directive.id
        ))));
    }
    let action = match (imported, existing.is_some()) {
        (true, _) => DirectiveAction::Imported,
        (false, true) => DirectiveAction::Replaced,
        (false, false) => DirectiveAction::Set,
    };
    Ok(Ok((directive, action)))
}
