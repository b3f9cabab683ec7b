//! Upgrading a store written in format 1 (round 1, before formats were
//! recorded) to the current one, in place, when a node opens it. Every
//! node of a cluster is upgraded this way, one at a time or together; the
//! Raft log and the state machine keep every entry and every record.
//!
//! What changed in format 2, and how each is carried over:
//! - agreement terms gained `emergency_override`: false for every existing
//!   version (the parties never agreed it);
//! - an agreement's one `suspension` became a list of periods: a current
//!   suspension becomes one period without a reinstatement (a suspension
//!   lifted under format 1 was erased then, and cannot be recovered);
//! - the applied record gained the log's clock: none until the next
//!   proposal;
//! - each revision's time is kept (`clocks`): revisions up to the upgrade
//!   have none (`meta` `clocks_from` says where times begin), so a decision
//!   "as of" one of them is refused with a pointer to asking by time (the
//!   hub's audit records from before the upgrade name no revision anyway);
//! - the change log held format-1 agreements: it is emptied, and watchers
//!   further behind than the upgrade re-synchronise from the full state;
//! - the Raft log's entries and the snapshot file are rewritten.
//!
//! The format-1 shapes are mirrored here (postcard is not self-describing,
//! so they must match field for field, variant for variant).

use std::path::Path;

use lhcie_consent::{
    Agreement, CarerGrant, Command, Directive, IsaParty, IsaTerms, IsaVersion, Proposal, Signature,
    StatusNote, Suspension,
};
use lhcie_model::{Category, PurposeOfUse};
use openraft::{EntryPayload, LogId, Membership, StoredMembership};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::codec::{decode, encode, index_key};
use super::meta_keys::{APPLIED, CHANGES_FLOOR, CLOCKS_FROM, PENDING_INSTALL, SNAPSHOT};
use super::{StoreFailure, Trees};
use crate::types::{AppliedRecord, Entry, Node, NodeId};

/// The format-1 shapes.
pub(super) mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Terms {
        pub title: String,
        pub parties: Vec<IsaParty>,
        pub purposes: std::collections::BTreeSet<PurposeOfUse>,
        pub categories: std::collections::BTreeSet<Category>,
        pub legal_basis: String,
        pub valid_from: OffsetDateTime,
        pub valid_until: Option<OffsetDateTime>,
        pub document_reference: Option<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Version {
        pub version: u32,
        pub terms: Terms,
        pub signatures: Vec<Signature>,
        pub drafted_by: String,
        pub drafted_at: OffsetDateTime,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Agreement {
        pub id: String,
        pub versions: Vec<Version>,
        pub suspension: Option<StatusNote>,
        pub revocation: Option<StatusNote>,
    }

    #[derive(Serialize, Deserialize)]
    pub enum Command {
        DraftIsa {
            id: String,
            terms: Terms,
        },
        AmendIsa {
            id: String,
            terms: Terms,
        },
        SignIsa {
            id: String,
            version: u32,
            signature: Signature,
        },
        SuspendIsa {
            id: String,
            reason: String,
        },
        ReinstateIsa {
            id: String,
            reason: String,
        },
        RevokeIsa {
            id: String,
            reason: String,
        },
        SetDirective(Directive),
        WithdrawDirective {
            id: String,
            reason: String,
        },
        ImportDirectives {
            source_exchange: String,
            directives: Vec<Directive>,
        },
        GrantCarer(CarerGrant),
        RevokeCarer {
            id: String,
            reason: String,
        },
    }

    #[derive(Serialize, Deserialize)]
    pub struct Proposal {
        pub command: Command,
        pub by: String,
        pub at: OffsetDateTime,
    }

    /// (Boxed: serde encodes a box as what it holds.)
    #[derive(Serialize, Deserialize)]
    pub enum Payload {
        Blank,
        Normal(Box<Proposal>),
        Membership(Membership<NodeId, Node>),
    }

    #[derive(Serialize, Deserialize)]
    pub struct Entry {
        pub log_id: LogId<NodeId>,
        pub payload: Payload,
    }

    /// The applied position: openraft's applied state.
    pub type Applied = (Option<LogId<NodeId>>, StoredMembership<NodeId, Node>);
}

impl From<v1::Terms> for IsaTerms {
    fn from(old: v1::Terms) -> Self {
        Self {
            title: old.title,
            parties: old.parties,
            purposes: old.purposes,
            categories: old.categories,
            legal_basis: old.legal_basis,
            valid_from: old.valid_from,
            valid_until: old.valid_until,
            document_reference: old.document_reference,
            emergency_override: false,
        }
    }
}

impl From<v1::Agreement> for Agreement {
    fn from(old: v1::Agreement) -> Self {
        Self {
            id: old.id,
            versions: old
                .versions
                .into_iter()
                .map(|v| IsaVersion {
                    version: v.version,
                    terms: v.terms.into(),
                    signatures: v.signatures,
                    drafted_by: v.drafted_by,
                    drafted_at: v.drafted_at,
                })
                .collect(),
            suspensions: old
                .suspension
                .into_iter()
                .map(|suspended| Suspension {
                    suspended,
                    reinstated: None,
                })
                .collect(),
            revocation: old.revocation,
        }
    }
}

impl From<v1::Command> for Command {
    fn from(old: v1::Command) -> Self {
        use v1::Command as Old;
        match old {
            Old::DraftIsa { id, terms } => Command::DraftIsa {
                id,
                terms: terms.into(),
            },
            Old::AmendIsa { id, terms } => Command::AmendIsa {
                id,
                terms: terms.into(),
            },
            Old::SignIsa {
                id,
                version,
                signature,
            } => Command::SignIsa {
                id,
                version,
                signature,
            },
            Old::SuspendIsa { id, reason } => Command::SuspendIsa { id, reason },
            Old::ReinstateIsa { id, reason } => Command::ReinstateIsa { id, reason },
            Old::RevokeIsa { id, reason } => Command::RevokeIsa { id, reason },
            Old::SetDirective(directive) => Command::SetDirective(directive),
            Old::WithdrawDirective { id, reason } => Command::WithdrawDirective { id, reason },
            Old::ImportDirectives {
                source_exchange,
                directives,
            } => Command::ImportDirectives {
                source_exchange,
                directives,
            },
            Old::GrantCarer(grant) => Command::GrantCarer(grant),
            Old::RevokeCarer { id, reason } => Command::RevokeCarer { id, reason },
        }
    }
}

fn entry_from(old: v1::Entry) -> Entry {
    let payload = match old.payload {
        v1::Payload::Blank => EntryPayload::Blank,
        v1::Payload::Normal(p) => {
            let p = *p;
            EntryPayload::Normal(Proposal {
                command: p.command.into(),
                by: p.by,
                at: p.at,
            })
        }
        v1::Payload::Membership(m) => EntryPayload::Membership(m),
    };
    Entry {
        log_id: old.log_id,
        payload,
    }
}

/// Rewrites a format-1 store in place; the caller records the new format
/// afterwards. Refused while a snapshot install is half done (finish it
/// with the version that began it). The snapshot kept, a format-1 file, is
/// forgotten: openraft builds a new one from the migrated state.
pub(super) fn from_format_1(trees: &Trees, snapshot_dir: &Path) -> Result<(), StoreFailure> {
    if trees.meta.get(PENDING_INSTALL)?.is_some() {
        return Err(StoreFailure::Inconsistent(
            "a format-1 store with a snapshot install half done: finish it with the previous version first".into(),
        ));
    }
    for item in trees.agreements.iter() {
        let (key, value) = item?;
        let agreement: Agreement = decode::<v1::Agreement>(&value)?.into();
        trees.agreements.insert(key, encode(&agreement)?)?;
    }
    for item in trees.raft_log.iter() {
        let (key, value) = item?;
        trees
            .raft_log
            .insert(key, encode(&entry_from(decode::<v1::Entry>(&value)?))?)?;
    }
    let (log_id, membership): v1::Applied = match trees.meta.get(APPLIED)? {
        Some(value) => decode(&value)?,
        None => (None, StoredMembership::default()),
    };
    let applied = AppliedRecord {
        log_id,
        membership,
        clock: None,
    };
    trees.meta.insert(APPLIED, encode(&applied)?)?;
    trees.changes.clear()?;
    let floor = log_id.map_or(0, |id| id.index);
    trees.meta.insert(CHANGES_FLOOR, &index_key(floor))?;
    trees.meta.insert(CLOCKS_FROM, &index_key(floor))?;
    // The snapshot file is format 1: forget it; openraft builds a new one
    // from the migrated state when it next needs one.
    if trees.meta.remove(SNAPSHOT)?.is_some() {
        for entry in std::fs::read_dir(snapshot_dir)? {
            std::fs::remove_file(entry?.path())?;
        }
    }
    trees.db.flush()?;
    Ok(())
}
