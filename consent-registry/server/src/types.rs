//! The registry's Raft types.

use std::fmt;

use lhcie_consent::{Agreement, CarerGrant, CommandError, Directive, Proposal};
use serde::{Deserialize, Serialize};

/// A node's id in the cluster.
pub type NodeId = u64;

/// Where a node can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The internal Raft service (`host:port`).
    pub raft_address: String,
    /// The public API (`host:port`).
    pub api_address: String,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "raft {} api {}", self.raft_address, self.api_address)
    }
}

/// What applying one entry did: the revision the registry is at after it,
/// and either a summary of the change or why nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The registry revision after the entry.
    pub revision: u64,
    /// The outcome.
    pub outcome: Result<Outcome, CommandError>,
}

/// A summary of an applied change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// An agreement as it now is.
    Agreement(Agreement),
    /// A directive as it now is.
    Directive(Directive),
    /// A carer grant as it now is.
    Grant(CarerGrant),
    /// An import: how many directives were recorded and which were not.
    Imported {
        /// Recorded.
        imported: u64,
        /// Not recorded, with why (directive id: reason).
        rejected: Vec<String>,
    },
    /// Nothing to apply (blank or membership entries).
    Nothing,
}

/// One change, as the watch feed carries it and the change log keeps it:
/// the record as it now is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    /// An agreement as it now is.
    Agreement(Agreement),
    /// A directive as it now is, and what happened to it.
    Directive {
        /// What happened.
        action: DirectiveAction,
        /// The directive after it.
        directive: Directive,
    },
    /// A carer grant as it now is.
    Grant(CarerGrant),
}

/// What happened to a directive, for its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectiveAction {
    /// Recorded for the first time.
    Set,
    /// Recorded again under the same id, replacing what was there.
    Replaced,
    /// Withdrawn.
    Withdrawn,
    /// Recorded by a bulk import.
    Imported,
}

impl DirectiveAction {
    /// A stable name for the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            DirectiveAction::Set => "set",
            DirectiveAction::Replaced => "replaced",
            DirectiveAction::Withdrawn => "withdrawn",
            DirectiveAction::Imported => "imported",
        }
    }
}

/// One event in a patient's directive history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEvent {
    /// The revision of the change.
    pub revision: u64,
    /// Its position among the changes of that revision.
    pub seq: u32,
    /// What happened.
    pub action: DirectiveAction,
    /// The directive after it.
    pub directive: Directive,
}

openraft::declare_raft_types!(
    /// The registry's Raft type configuration: proposals in, `Applied` out,
    /// snapshots streamed through files.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = NodeId,
        Node = Node,
        SnapshotData = tokio::fs::File,
);

/// The registry's Raft.
pub type Raft = openraft::Raft<TypeConfig>;
/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// The last applied entry and the membership in force after it.
pub type AppliedState = (
    Option<openraft::LogId<NodeId>>,
    openraft::StoredMembership<NodeId, Node>,
);
/// A storage error.
pub type StorageError = openraft::StorageError<NodeId>;

/// What `meta` keeps about the last applied entry: openraft's applied
/// state, and the log's clock (the time of the last applied proposal, after
/// [`crate::store`] moved it, if need be, past the one before: times in the
/// log only increase). One record, so a snapshot reads both at once.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct AppliedRecord {
    /// The last applied entry.
    pub log_id: Option<openraft::LogId<NodeId>>,
    /// The membership in force.
    pub membership: openraft::StoredMembership<NodeId, Node>,
    /// The time of the last applied proposal.
    pub clock: Option<time::OffsetDateTime>,
}
