//! The Raft log: entries by index, the vote, the committed and purged ids.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogId, LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};

use super::codec::{decode, encode, index_key};
use super::flusher::Flusher;
use super::meta_keys::{COMMITTED, LAST_PURGED, VOTE};
use super::{StoreFailure, Trees};
use crate::types::{Entry, NodeId, StorageError, TypeConfig};

/// The Raft log store.
#[derive(Clone)]
pub struct LogStore {
    trees: Trees,
    flusher: Option<Flusher>,
}

fn read_error(failure: StoreFailure) -> StorageError {
    StorageIOError::read_logs(&failure).into()
}

fn write_error(failure: StoreFailure) -> StorageError {
    StorageIOError::write_logs(&failure).into()
}

impl LogStore {
    pub(crate) fn new(trees: Trees) -> Self {
        Self {
            trees,
            flusher: None,
        }
    }

    fn flusher(&mut self) -> &Flusher {
        let db = self.trees.db.clone();
        self.flusher.get_or_insert_with(|| Flusher::start(db))
    }

    fn get_state<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StoreFailure> {
        self.trees
            .raft_state
            .get(key)?
            .map(|value| decode(&value))
            .transpose()
    }

    async fn put_state_durably<T: serde::Serialize>(
        &self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreFailure> {
        self.trees.raft_state.insert(key, encode(value)?)?;
        self.trees.db.flush_async().await?;
        Ok(())
    }

    fn entries<RB: RangeBounds<u64>>(&self, range: RB) -> Result<Vec<Entry>, StoreFailure> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(index_key(*i)),
            Bound::Excluded(i) => Bound::Excluded(index_key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.trees
            .raft_log
            .range((start, end))
            .values()
            .map(|value| decode(&value?))
            .collect()
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.entries(range).map_err(read_error)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId<NodeId>> = self.get_state(LAST_PURGED).map_err(read_error)?;
        let last = match self
            .trees
            .raft_log
            .last()
            .map_err(|e| read_error(e.into()))?
        {
            Some((_, value)) => Some(decode::<Entry>(&value).map_err(read_error)?.log_id),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.put_state_durably(VOTE, vote)
            .await
            .map_err(|f| StorageIOError::write_vote(&f).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.get_state(VOTE)
            .map_err(|f| StorageIOError::read_vote(&f).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Not flushed here: a committed id that is lost is learnt again from
        // the leader; the log entries themselves are durable.
        let value = encode(&committed).map_err(write_error)?;
        self.trees
            .raft_state
            .insert(COMMITTED, value)
            .map_err(|e| write_error(e.into()))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self
            .get_state::<Option<LogId<NodeId>>>(COMMITTED)
            .map_err(read_error)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            batch.insert(
                &index_key(entry.log_id.index),
                encode(&entry).map_err(write_error)?,
            );
        }
        self.trees
            .raft_log
            .apply_batch(batch)
            .map_err(|e| write_error(e.into()))?;
        self.flusher().after_flush(callback);
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for key in self.trees.raft_log.range(index_key(log_id.index)..).keys() {
            batch.remove(key.map_err(|e| write_error(e.into()))?);
        }
        self.trees
            .raft_log
            .apply_batch(batch)
            .map_err(|e| write_error(e.into()))
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let value = encode(&log_id).map_err(write_error)?;
        self.trees
            .raft_state
            .insert(LAST_PURGED, value)
            .map_err(|e| write_error(e.into()))?;
        let mut batch = sled::Batch::default();
        for key in self.trees.raft_log.range(..=index_key(log_id.index)).keys() {
            batch.remove(key.map_err(|e| write_error(e.into()))?);
        }
        self.trees
            .raft_log
            .apply_batch(batch)
            .map_err(|e| write_error(e.into()))
    }
}
