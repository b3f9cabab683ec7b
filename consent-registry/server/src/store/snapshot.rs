//! Snapshots: the whole registry in one file, for followers too far
//! behind to catch up from the log.
//!
//! A snapshot is built while writes continue. It records the applied index
//! `I0`, scans every record (each as it is when the scan passes it), then
//! reads the applied index `I1` and appends the change records of
//! `(I0, I1]`. Installing writes the scanned records, then the changes in
//! order over them, which leaves every record as it was at `I1`: records no
//! change touched were the same during the whole scan, and each record a
//! change touched ends at its last change. The change log keeps `(I0, I1]`
//! while the build runs (it is pinned).
//!
//! File: records of `u32` little-endian length then postcard, from a
//! header to an end record that counts them, so a truncated file is
//! refused. A record's length is checked against [`MAX_RECORD`] before
//! anything is allocated for it.
//!
//! File names are always made here, from numbers: never from the
//! `snapshot_id` a peer sends with a snapshot it installs (the id is kept in
//! `meta` only as a label).

use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use lhcie_consent::{Agreement, CarerGrant, Directive};
use openraft::{Snapshot, SnapshotMeta};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncSeekExt;

use super::codec::{self, decode, encode, grant_index_key, history_key, index_key};
use super::meta_keys::{APPLIED, CHANGES_FLOOR, PENDING_INSTALL, SNAPSHOT};
use super::{Registry, StoreFailure, apply};
use crate::types::{AppliedRecord, Change, HistoryEvent, Node, NodeId, TypeConfig};

/// A snapshot holds the store's records, so it shares the store's format.
use super::STORE_FORMAT as FORMAT;

/// The longest record a snapshot may hold: one Raft entry's changes can be
/// no larger than a Raft message (`network::MAX_RAFT_MESSAGE`, 64 MiB), and
/// every other record is one agreement, directive, event or grant.
pub(super) const MAX_RECORD: usize = 64 * 1024 * 1024;

/// One record of a snapshot file.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Record {
    Header {
        format: u32,
    },
    Agreement(Agreement),
    Directive(Directive),
    History(HistoryEvent),
    Grant(CarerGrant),
    Tail {
        revision: u64,
        changes: Vec<Change>,
    },
    /// The log's clock at the snapshot's last entry.
    Clock(Option<time::OffsetDateTime>),
    /// The time of one revision's proposal.
    RevisionClock {
        revision: u64,
        at: time::OffsetDateTime,
    },
    End {
        records: u64,
    },
}

/// The snapshot this node serves, as kept in `meta`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredSnapshot {
    pub(super) meta: SnapshotMeta<NodeId, Node>,
    pub(super) file: String,
}

fn write_record(out: &mut impl Write, record: &Record) -> Result<(), StoreFailure> {
    let body = encode(record)?;
    let length = u32::try_from(body.len())
        .map_err(|_| StoreFailure::Inconsistent("a snapshot record over 4 GiB".into()))?;
    out.write_all(&length.to_le_bytes())?;
    out.write_all(&body)?;
    Ok(())
}

pub(super) fn read_record(input: &mut impl Read) -> Result<Record, StoreFailure> {
    let mut length = [0u8; 4];
    input.read_exact(&mut length)?;
    let length = u32::from_le_bytes(length) as usize;
    if length > MAX_RECORD {
        return Err(StoreFailure::Inconsistent(format!(
            "a snapshot record of {length} bytes; the limit is {MAX_RECORD}"
        )));
    }
    let mut body = vec![0u8; length];
    input.read_exact(&mut body)?;
    decode(&body)
}

/// Builds a snapshot of the registry as it is at its last applied entry.
pub(crate) async fn build(
    registry: Arc<Registry>,
    seq: u64,
) -> Result<Snapshot<TypeConfig>, StoreFailure> {
    let builder = registry.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let pin = builder.revision();
        builder.snapshot_pin.store(pin, Ordering::SeqCst);
        let built = write_snapshot(&builder, seq, || {});
        builder.snapshot_pin.store(u64::MAX, Ordering::SeqCst);
        built
    })
    .await
    .map_err(|e| StoreFailure::Inconsistent(e.to_string()))??;
    make_current(&registry, &stored).await?;
    let file = tokio::fs::File::open(registry.snapshot_dir.join(&stored.file)).await?;
    tracing::info!(snapshot = %stored.meta.snapshot_id, "snapshot built");
    Ok(Snapshot {
        meta: stored.meta,
        snapshot: Box::new(file),
    })
}

/// Writes a snapshot file; `after_scan` runs between the scan and the tail
/// (tests apply entries there to prove the tail brings records up to date).
pub(super) fn write_snapshot(
    registry: &Registry,
    seq: u64,
    after_scan: impl FnOnce(),
) -> Result<StoredSnapshot, StoreFailure> {
    let trees = &registry.trees;
    let start = registry.applied()?.0.map(|id| id.index).unwrap_or(0);
    let building = registry.snapshot_dir.join(format!("building-{seq}.part"));
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&building)?);
    let mut records = 0u64;
    let mut put = |out: &mut BufWriter<std::fs::File>, record: Record| {
        records += 1;
        write_record(out, &record)
    };
    put(&mut out, Record::Header { format: FORMAT })?;
    for value in trees.agreements.iter().values() {
        put(&mut out, Record::Agreement(decode(&value?)?))?;
    }
    for value in trees.directives.iter().values() {
        put(&mut out, Record::Directive(decode(&value?)?))?;
    }
    for value in trees.history.iter().values() {
        put(&mut out, Record::History(decode(&value?)?))?;
    }
    for value in trees.grants.iter().values() {
        put(&mut out, Record::Grant(decode(&value?)?))?;
    }
    after_scan();
    let applied = registry.applied_record()?;
    let (last_log_id, last_membership) = (applied.log_id, applied.membership.clone());
    let end = last_log_id.map(|id| id.index).unwrap_or(0);
    if registry.changes_floor.load(Ordering::SeqCst) > start {
        return Err(StoreFailure::Inconsistent(
            "the change log lost the changes made while the snapshot was scanned".into(),
        ));
    }
    for item in trees
        .changes
        .range(index_key(start.saturating_add(1))..=index_key(end))
    {
        let (key, value) = item?;
        put(
            &mut out,
            Record::Tail {
                revision: codec::index_of(&key)?,
                changes: codec::decode_changes(&value)?,
            },
        )?;
    }
    for item in trees.clocks.range(..=index_key(end)) {
        let (key, value) = item?;
        put(
            &mut out,
            Record::RevisionClock {
                revision: codec::index_of(&key)?,
                at: decode(&value)?,
            },
        )?;
    }
    put(&mut out, Record::Clock(applied.clock))?;
    let records = records + 1;
    write_record(&mut out, &Record::End { records })?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    let snapshot_id = match last_log_id {
        Some(id) => format!("{}-{}-{seq}", id.leader_id.term, id.index),
        None => format!("0-0-{seq}"),
    };
    let name = format!("{snapshot_id}.snap");
    std::fs::rename(&building, registry.snapshot_dir.join(&name))?;
    Ok(StoredSnapshot {
        meta: SnapshotMeta {
            last_log_id,
            last_membership,
            snapshot_id,
        },
        file: name,
    })
}

/// Records `stored` as the snapshot this node serves, and removes older
/// snapshot files.
async fn make_current(registry: &Registry, stored: &StoredSnapshot) -> Result<(), StoreFailure> {
    registry.trees.meta.insert(SNAPSHOT, encode(stored)?)?;
    registry.trees.db.flush_async().await?;
    remove_other_files(&registry.snapshot_dir, &stored.file)?;
    Ok(())
}

fn remove_other_files(dir: &Path, keep: &str) -> Result<(), StoreFailure> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let finished = name.ends_with(".snap") && name != keep;
        let abandoned = name.starts_with("incoming-") || name.starts_with("building-");
        if finished || abandoned {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// A new file to receive a snapshot into.
pub(crate) async fn incoming_file(registry: &Registry) -> Result<tokio::fs::File, StoreFailure> {
    let path = registry
        .snapshot_dir
        .join(format!("incoming-{}.part", uuid_like()));
    Ok(tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await?)
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}-{}", std::process::id())
}

/// The snapshot this node serves, if it has one.
pub(crate) async fn current(
    registry: &Registry,
) -> Result<Option<Snapshot<TypeConfig>>, StoreFailure> {
    let Some(value) = registry.trees.meta.get(SNAPSHOT)? else {
        return Ok(None);
    };
    let stored: StoredSnapshot = decode(&value)?;
    let file = tokio::fs::File::open(registry.snapshot_dir.join(&stored.file)).await?;
    Ok(Some(Snapshot {
        meta: stored.meta,
        snapshot: Box::new(file),
    }))
}

/// Replaces the registry's state with a snapshot received from the leader.
/// The file is kept first, and the install marked pending, so that a crash
/// part-way finishes the install on the next start.
pub(crate) async fn install(
    registry: &Arc<Registry>,
    meta: &SnapshotMeta<NodeId, Node>,
    mut received: tokio::fs::File,
) -> Result<(), StoreFailure> {
    let stored = StoredSnapshot {
        meta: meta.clone(),
        file: installed_file_name(meta),
    };
    let path = registry.snapshot_dir.join(&stored.file);
    received.seek(std::io::SeekFrom::Start(0)).await?;
    let mut kept = tokio::fs::File::create(&path).await?;
    tokio::io::copy(&mut received, &mut kept).await?;
    kept.sync_all().await?;
    drop(kept);
    registry
        .trees
        .meta
        .insert(PENDING_INSTALL, encode(&stored)?)?;
    registry.trees.db.flush_async().await?;
    finish_install(registry.clone(), stored).await
}

/// The local file name of a snapshot received from a peer: made from the
/// numbers of its last log id and a local sequence, never from the peer's
/// `snapshot_id` (which could be `../../x` or an absolute path).
pub(super) fn installed_file_name(meta: &SnapshotMeta<NodeId, Node>) -> String {
    let (term, index) = meta
        .last_log_id
        .map(|id| (id.leader_id.term, id.index))
        .unwrap_or((0, 0));
    format!("installed-{term}-{index}-{}.snap", uuid_like())
}

/// Finishes an install that a crash interrupted (on open).
pub(crate) async fn finish_interrupted_install(
    registry: &Arc<Registry>,
) -> Result<(), StoreFailure> {
    let Some(value) = registry.trees.meta.get(PENDING_INSTALL)? else {
        return Ok(());
    };
    let stored: StoredSnapshot = decode(&value)?;
    tracing::warn!(snapshot = %stored.meta.snapshot_id, "finishing a snapshot install that was interrupted");
    finish_install(registry.clone(), stored).await
}

pub(super) async fn finish_install(
    registry: Arc<Registry>,
    stored: StoredSnapshot,
) -> Result<(), StoreFailure> {
    let loader = registry.clone();
    let loading = stored.clone();
    tokio::task::spawn_blocking(move || load(&loader, &loading))
        .await
        .map_err(|e| StoreFailure::Inconsistent(e.to_string()))??;
    registry.trees.meta.remove(PENDING_INSTALL)?;
    make_current(&registry, &stored).await?;
    registry.load()?;
    tracing::info!(snapshot = %stored.meta.snapshot_id, "snapshot installed");
    Ok(())
}

/// Replaces every record with the snapshot's.
fn load(registry: &Registry, stored: &StoredSnapshot) -> Result<(), StoreFailure> {
    let trees = &registry.trees;
    for tree in [
        &trees.agreements,
        &trees.directives,
        &trees.history,
        &trees.grants,
        &trees.grants_by_patient,
        &trees.changes,
        &trees.clocks,
    ] {
        tree.clear()?;
    }
    let file = std::fs::File::open(registry.snapshot_dir.join(&stored.file))?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    let Record::Header { format: FORMAT } = read_record(&mut input)? else {
        return Err(StoreFailure::Inconsistent(
            "not a registry snapshot of a format this version reads".into(),
        ));
    };
    let mut pending = Batches::default();
    let mut records = 1u64;
    let mut clock = None;
    loop {
        let record = read_record(&mut input)?;
        records += 1;
        match record {
            Record::Header { .. } => {
                return Err(StoreFailure::Inconsistent(
                    "a second snapshot header".into(),
                ));
            }
            Record::Agreement(agreement) => {
                pending
                    .agreements
                    .insert(agreement.id.as_bytes(), encode(&agreement)?);
            }
            Record::Directive(directive) => {
                pending
                    .directives
                    .insert(directive.id.as_bytes(), encode(&directive)?);
            }
            Record::History(event) => {
                let key = history_key(&event.directive.nhs_number, event.revision, event.seq);
                pending.history.insert(key, encode(&event)?);
            }
            Record::Grant(grant) => {
                pending
                    .grants_by_patient
                    .insert(grant_index_key(&grant.patient, &grant.id), &[]);
                pending.grants.insert(grant.id.as_bytes(), encode(&grant)?);
            }
            Record::Tail { revision, changes } => {
                pending.write(trees)?;
                apply::write_tail(trees, revision, &changes)?;
            }
            Record::Clock(at) => clock = at,
            Record::RevisionClock { revision, at } => {
                pending.clocks.insert(&index_key(revision), encode(&at)?);
            }
            Record::End { records: expected } => {
                if expected != records {
                    return Err(StoreFailure::Inconsistent(format!(
                        "the snapshot holds {records} records; its end says {expected}"
                    )));
                }
                break;
            }
        }
        pending.count += 1;
        if pending.count >= 10_000 {
            pending.write(trees)?;
        }
    }
    pending.write(trees)?;
    let last = stored.meta.last_log_id.map(|id| id.index).unwrap_or(0);
    let applied = AppliedRecord {
        log_id: stored.meta.last_log_id,
        membership: stored.meta.last_membership.clone(),
        clock,
    };
    trees.meta.insert(APPLIED, encode(&applied)?)?;
    trees.meta.insert(CHANGES_FLOOR, &index_key(last))?;
    Ok(())
}

/// Writes waiting to be applied, per tree.
#[derive(Default)]
struct Batches {
    agreements: sled::Batch,
    directives: sled::Batch,
    history: sled::Batch,
    clocks: sled::Batch,
    grants: sled::Batch,
    grants_by_patient: sled::Batch,
    count: usize,
}

impl Batches {
    fn write(&mut self, trees: &super::Trees) -> Result<(), StoreFailure> {
        let batches = std::mem::take(self);
        trees.agreements.apply_batch(batches.agreements)?;
        trees.directives.apply_batch(batches.directives)?;
        trees.history.apply_batch(batches.history)?;
        trees.clocks.apply_batch(batches.clocks)?;
        trees.grants.apply_batch(batches.grants)?;
        trees
            .grants_by_patient
            .apply_batch(batches.grants_by_patient)?;
        Ok(())
    }
}
