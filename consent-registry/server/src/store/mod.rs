//! Everything the registry keeps on disk, in one sled database, and the
//! only module that touches sled.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `raft_log` | log index (BE) | a Raft log entry |
//! | `raft_state` | `vote`, `committed`, `last_purged` | Raft's own state |
//! | `meta` | `applied`, `changes_floor`, `snapshot`, `pending_install` | the state machine's position |
//! | `agreements` | agreement id | the agreement, every version |
//! | `directives` | directive id | the directive as it now is |
//! | `history` | NHS number, revision, position | every change to a patient's directives |
//! | `grants` | grant id | the carer grant |
//! | `grants_by_patient` | NHS number, grant id | (index) |
//! | `changes` | revision (BE) | the records one entry changed, for the watch feed |
//! | `clocks` | revision (BE) | the time of that entry's proposal, kept for ever: "as of revision R" is "as known at the time of R" |
//!
//! The revision of the registry is the index of the last applied Raft log
//! entry: the same number names the same state on every replica. Each entry
//! is applied in one sled transaction (records, history, change record and
//! applied position together). Log appends are made durable by a group
//! commit (`flusher`) before Raft is told they are.
//!
//! Snapshots (`snapshot`) are built without stopping writes: a scan of the
//! records, then the change records written while the scan ran, which bring
//! every record scanned to its state at the snapshot's last entry.

mod apply;
mod codec;
mod flusher;
mod log;
mod migrate;
mod reads;
mod snapshot;
mod state_machine;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use lhcie_consent::Agreement;
use tokio::sync::watch;

pub use self::log::LogStore;
pub use self::reads::ChangesSince;
pub use self::state_machine::StateMachine;

/// A storage failure: the disk, or a record that does not decode.
#[derive(Debug, thiserror::Error)]
pub enum StoreFailure {
    /// sled failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// A record did not encode or decode.
    #[error("record codec: {0}")]
    Codec(String),
    /// A file (snapshot) failed.
    #[error("snapshot file: {0}")]
    Io(#[from] std::io::Error),
    /// The state is not what it must be.
    #[error("{0}")]
    Inconsistent(String),
    /// The folder holds a store another version of the registry wrote.
    #[error(
        "the store was written in format {found} and this registry reads format {expected}: \
         start this node with an empty data folder and let it catch up from the cluster \
         (or restore a snapshot taken by this version)"
    )]
    Format {
        /// The format found (1 for stores from before formats were recorded).
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
}

/// The format of the records this build writes (postcard of the
/// `lhcie-consent` types). Raise it whenever one of those types changes
/// shape: postcard is not self-describing, so an older record would not
/// decode, or would decode wrongly. History: 1, round 1; 2, agreement
/// terms gained `emergency_override`, suspensions became periods, the
/// applied record holds the log's clock, and each revision's time is kept
/// (`clocks`).
pub const STORE_FORMAT: u32 = 2;

impl From<sled::transaction::TransactionError<StoreFailure>> for StoreFailure {
    fn from(error: sled::transaction::TransactionError<StoreFailure>) -> Self {
        match error {
            sled::transaction::TransactionError::Abort(failure) => failure,
            sled::transaction::TransactionError::Storage(error) => StoreFailure::Sled(error),
        }
    }
}

/// How the store is tuned.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// sled's page cache, in bytes.
    pub cache_bytes: u64,
    /// How many changes the change log keeps for watchers that reconnect;
    /// a watcher further behind gets the full state instead.
    pub change_log_capacity: u64,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 256 * 1024 * 1024,
            change_log_capacity: 1_000_000,
        }
    }
}

/// The sled trees.
#[derive(Clone)]
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    pub(crate) raft_log: sled::Tree,
    pub(crate) raft_state: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) agreements: sled::Tree,
    pub(crate) directives: sled::Tree,
    pub(crate) history: sled::Tree,
    pub(crate) grants: sled::Tree,
    pub(crate) grants_by_patient: sled::Tree,
    pub(crate) changes: sled::Tree,
    pub(crate) clocks: sled::Tree,
}

/// The registry's state, shared by the state machine (the only writer),
/// the snapshot builder and the API (readers).
pub struct Registry {
    pub(crate) trees: Trees,
    /// Every agreement, kept in memory: there are few, and every decision
    /// reads them all.
    pub(crate) agreements: RwLock<BTreeMap<String, Agreement>>,
    /// The applied revision; watchers wait on it.
    pub(crate) revision: watch::Sender<u64>,
    /// Changes at or below this revision may be gone from the change log.
    pub(crate) changes_floor: AtomicU64,
    /// How many changes the change log holds.
    pub(crate) change_events: AtomicU64,
    /// While a snapshot is built, changes after this revision stay in the
    /// change log whatever its bound (`u64::MAX` when none is).
    pub(crate) snapshot_pin: AtomicU64,
    pub(crate) options: StoreOptions,
    pub(crate) snapshot_dir: PathBuf,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("revision", &*self.revision.borrow())
            .finish_non_exhaustive()
    }
}

/// Opens (or creates) the store in `dir`: the log store and state machine
/// for Raft, and the registry state the API reads.
pub async fn open(
    dir: &Path,
    options: StoreOptions,
) -> Result<(LogStore, StateMachine, Arc<Registry>), StoreFailure> {
    let snapshot_dir = dir.join("snapshots");
    std::fs::create_dir_all(&snapshot_dir)?;
    let db = sled::Config::new()
        .path(dir.join("db"))
        .cache_capacity(options.cache_bytes)
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(Some(1000))
        .open()?;
    let trees = Trees {
        raft_log: db.open_tree("raft_log")?,
        raft_state: db.open_tree("raft_state")?,
        meta: db.open_tree("meta")?,
        agreements: db.open_tree("agreements")?,
        directives: db.open_tree("directives")?,
        history: db.open_tree("history")?,
        grants: db.open_tree("grants")?,
        grants_by_patient: db.open_tree("grants_by_patient")?,
        changes: db.open_tree("changes")?,
        clocks: db.open_tree("clocks")?,
        db,
    };
    check_format(&trees, &snapshot_dir)?;
    let registry = Arc::new(Registry {
        agreements: RwLock::new(BTreeMap::new()),
        revision: watch::Sender::new(0),
        changes_floor: AtomicU64::new(0),
        change_events: AtomicU64::new(0),
        snapshot_pin: AtomicU64::new(u64::MAX),
        options,
        snapshot_dir,
        trees,
    });
    snapshot::finish_interrupted_install(&registry).await?;
    registry.load()?;
    let log = LogStore::new(registry.trees.clone());
    let state_machine = StateMachine::new(registry.clone())?;
    Ok((log, state_machine, registry))
}

/// Upgrades a format-1 store ([`migrate`]); refuses one written in any
/// other format; records the format in a new one.
fn check_format(trees: &Trees, snapshot_dir: &Path) -> Result<(), StoreFailure> {
    let found = match trees.meta.get(meta_keys::FORMAT)? {
        Some(value) => codec::decode::<u32>(&value)?,
        None if trees.raft_log.is_empty() && trees.meta.is_empty() => {
            trees
                .meta
                .insert(meta_keys::FORMAT, codec::encode(&STORE_FORMAT)?)?;
            trees.meta.flush()?;
            STORE_FORMAT
        }
        None => 1,
    };
    if found == 1 {
        migrate::from_format_1(trees, snapshot_dir)?;
        trees
            .meta
            .insert(meta_keys::FORMAT, codec::encode(&STORE_FORMAT)?)?;
        trees.meta.flush()?;
        tracing::info!(from = 1, to = STORE_FORMAT, "store upgraded");
        return Ok(());
    }
    if found == STORE_FORMAT {
        Ok(())
    } else {
        Err(StoreFailure::Format {
            found,
            expected: STORE_FORMAT,
        })
    }
}

impl Registry {
    /// Loads what is kept in memory from disk (on open, and after a
    /// snapshot is installed).
    pub(crate) fn load(&self) -> Result<(), StoreFailure> {
        let mut agreements = BTreeMap::new();
        for item in self.trees.agreements.iter() {
            let (key, value) = item?;
            let agreement: Agreement = codec::decode(&value)?;
            agreements.insert(String::from_utf8_lossy(&key).into_owned(), agreement);
        }
        *self.agreements.write().expect("agreements lock") = agreements;
        let floor = match self.trees.meta.get(meta_keys::CHANGES_FLOOR)? {
            Some(value) => codec::index_of(&value)?,
            None => 0,
        };
        self.changes_floor.store(floor, Ordering::SeqCst);
        let mut events = 0u64;
        for item in self.trees.changes.iter() {
            let (_, value) = item?;
            events += u64::from(codec::change_count(&value)?);
        }
        self.change_events.store(events, Ordering::SeqCst);
        let revision = self.applied()?.0.map(|id| id.index).unwrap_or(0);
        self.revision.send_replace(revision);
        Ok(())
    }

    /// The applied revision.
    pub fn revision(&self) -> u64 {
        *self.revision.borrow()
    }

    /// A receiver that wakes when the revision moves.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Flushes everything to disk (on shutdown).
    pub async fn flush(&self) -> Result<(), StoreFailure> {
        self.trees.db.flush_async().await?;
        Ok(())
    }

    /// Bytes sled uses on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.trees.db.size_on_disk().unwrap_or(0)
    }
}

/// Keys of the `meta` and `raft_state` trees.
pub(crate) mod meta_keys {
    pub const APPLIED: &[u8] = b"applied";
    pub const CHANGES_FLOOR: &[u8] = b"changes_floor";
    pub const SNAPSHOT: &[u8] = b"snapshot";
    pub const PENDING_INSTALL: &[u8] = b"pending_install";
    pub const VOTE: &[u8] = b"vote";
    pub const COMMITTED: &[u8] = b"committed";
    pub const LAST_PURGED: &[u8] = b"last_purged";
    /// The revision a format-1 store was upgraded at: revisions at or
    /// before it have no recorded time.
    pub const CLOCKS_FROM: &[u8] = b"clocks_from";
    /// The store's format ([`super::STORE_FORMAT`]).
    pub const FORMAT: &[u8] = b"format";
}
