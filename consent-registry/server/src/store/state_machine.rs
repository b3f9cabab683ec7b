//! The Raft state machine: applies entries, and builds and installs
//! snapshots.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageIOError,
    StoredMembership,
};

use super::codec::{self, index_of};
use super::meta_keys::CHANGES_FLOOR;
use super::{Registry, StoreFailure, apply, snapshot};
use crate::types::{Applied, AppliedState, Change, Entry, Node, NodeId, StorageError, TypeConfig};

/// The state machine Raft drives.
pub struct StateMachine {
    registry: Arc<Registry>,
    membership: StoredMembership<NodeId, Node>,
    snapshots_built: Arc<AtomicU64>,
}

impl StateMachine {
    pub(crate) fn new(registry: Arc<Registry>) -> Result<Self, StoreFailure> {
        let (_, membership) = registry.applied()?;
        Ok(Self {
            registry,
            membership,
            snapshots_built: Arc::new(AtomicU64::new(0)),
        })
    }
}

fn sm_write_error(failure: StoreFailure) -> StorageError {
    StorageIOError::write_state_machine(&failure).into()
}

fn sm_read_error(failure: StoreFailure) -> StorageError {
    StorageIOError::read_state_machine(&failure).into()
}

fn snapshot_error(failure: StoreFailure) -> StorageError {
    StorageIOError::write_snapshot(None, &failure).into()
}

impl Registry {
    /// After entries were applied: the in-memory agreements, the change
    /// log's bound, and the watchers.
    pub(super) fn after_apply(
        &self,
        revision: u64,
        changes: &[Change],
    ) -> Result<(), StoreFailure> {
        {
            let mut agreements = self.agreements.write().expect("agreements lock");
            for change in changes {
                if let Change::Agreement(agreement) = change {
                    agreements.insert(agreement.id.clone(), agreement.clone());
                }
            }
        }
        self.change_events
            .fetch_add(changes.len() as u64, Ordering::SeqCst);
        self.trim_change_log()?;
        self.revision.send_replace(revision);
        Ok(())
    }

    /// Drops the oldest change records beyond the change log's capacity.
    /// The floor is raised before a record goes, so a watcher that read the
    /// log and then the floor never misses a gap.
    fn trim_change_log(&self) -> Result<(), StoreFailure> {
        while self.change_events.load(Ordering::SeqCst) > self.options.change_log_capacity {
            let Some((key, value)) = self.trees.changes.first()? else {
                self.change_events.store(0, Ordering::SeqCst);
                break;
            };
            let revision = index_of(&key)?;
            if revision > self.snapshot_pin.load(Ordering::SeqCst) {
                break;
            }
            self.trees
                .meta
                .insert(CHANGES_FLOOR, &codec::index_key(revision))?;
            self.changes_floor.fetch_max(revision, Ordering::SeqCst);
            self.trees.changes.remove(&key)?;
            self.change_events
                .fetch_sub(u64::from(codec::change_count(&value)?), Ordering::SeqCst);
        }
        Ok(())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<AppliedState, StorageError> {
        self.registry.applied().map_err(sm_read_error)
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let Some(last) = entries.last().map(|e| e.log_id.index) else {
            return Ok(Vec::new());
        };
        let registry = self.registry.clone();
        let mut membership = self.membership.clone();
        let (replies, membership, changes) = tokio::task::spawn_blocking(move || {
            let mut replies = Vec::with_capacity(entries.len());
            let mut all_changes = Vec::new();
            for entry in &entries {
                if let EntryPayload::Membership(m) = &entry.payload {
                    membership = StoredMembership::new(Some(entry.log_id), m.clone());
                }
                let (applied, changes) = apply::apply_entry(&registry.trees, entry, &membership)?;
                replies.push(applied);
                all_changes.extend(changes);
            }
            Ok::<_, StoreFailure>((replies, membership, all_changes))
        })
        .await
        .map_err(|e| sm_write_error(StoreFailure::Inconsistent(e.to_string())))?
        .map_err(sm_write_error)?;
        self.membership = membership;
        self.registry
            .after_apply(last, &changes)
            .map_err(sm_write_error)?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            registry: self.registry.clone(),
            built: self.snapshots_built.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        snapshot::incoming_file(&self.registry)
            .await
            .map(Box::new)
            .map_err(snapshot_error)
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        snapshot::install(&self.registry, meta, *snapshot)
            .await
            .map_err(snapshot_error)?;
        self.membership = meta.last_membership.clone();
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        snapshot::current(&self.registry)
            .await
            .map_err(|f| StorageIOError::read_snapshot(None, &f).into())
    }
}

/// Builds snapshots while writes go on.
pub struct SnapshotBuilder {
    registry: Arc<Registry>,
    built: Arc<AtomicU64>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let seq = self.built.fetch_add(1, Ordering::SeqCst) + 1;
        snapshot::build(self.registry.clone(), seq)
            .await
            .map_err(snapshot_error)
    }
}
