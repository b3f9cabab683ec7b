//! The hub's durable store (sled): which message ids it has already
//! answered, and the audit record of every decision.
//!
//! Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `dedup` | submitter exchange, 0, message id | the `SubmitResponse` given (protobuf) |
//! | `dedup_by_time` | decided-at (unix ns, big-endian), dedup key | empty: lets old entries be purged in order |
//! | `audit` | message id, 0, submitter exchange | the `AuditRecord` (JSON) |
//! | `audit_by_patient` | NHS number, decided-at, audit key | empty |
//!
//! De-duplication is per submitting exchange, so one exchange can neither
//! learn the outcome of nor block another's message by reusing its id.
//! Writes become durable only on [`Store::durable`], which shares one
//! flush (fsync) among every writer waiting at the time (group commit).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use lhcie_hub_core::AuditRecord;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

/// A store failure. The hub treats it like a broker outage: it answers
/// nothing it cannot make durable.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed.
    #[error("store: {0}")]
    Sled(#[from] sled::Error),
    /// A stored record could not be read back.
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    /// The flusher stopped.
    #[error("store: the flusher has stopped")]
    FlusherStopped,
}

/// The hub's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    dedup: sled::Tree,
    dedup_by_time: sled::Tree,
    audit: sled::Tree,
    audit_by_patient: sled::Tree,
    commit: Arc<GroupCommit>,
    flusher: Arc<std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

fn dedup_key(submitter: &str, message_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(submitter.len() + 1 + message_id.len());
    key.extend_from_slice(submitter.as_bytes());
    key.push(0);
    key.extend_from_slice(message_id.as_bytes());
    key
}

fn audit_key(message_id: &str, submitter: &str) -> Vec<u8> {
    dedup_key(message_id, submitter)
}

fn nanos(at: OffsetDateTime) -> [u8; 8] {
    // Unix nanoseconds fit in u64 until the year 2554.
    (at.unix_timestamp_nanos().max(0) as u64).to_be_bytes()
}

impl Store {
    /// Opens (or creates) the store in `path` and starts its flusher.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        let db = sled::Config::new().path(path).open()?;
        let commit = Arc::new(GroupCommit::new());
        let flusher = tokio::spawn(commit.clone().run(db.clone()));
        Ok(Self {
            flusher: Arc::new(std::sync::Mutex::new(Some(flusher))),
            dedup: db.open_tree("dedup")?,
            dedup_by_time: db.open_tree("dedup_by_time")?,
            audit: db.open_tree("audit")?,
            audit_by_patient: db.open_tree("audit_by_patient")?,
            db,
            commit,
        })
    }

    /// The answer already given to `submitter` for `message_id`, if any.
    pub fn answered(
        &self,
        submitter: &str,
        message_id: &str,
    ) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.dedup.get(dedup_key(submitter, message_id))?)
    }

    /// Records a decision and the answer given (not yet durable: call
    /// [`Store::durable`] before telling anyone).
    pub fn record(&self, audit: &AuditRecord, answer: &[u8]) -> Result<(), StoreError> {
        let key = audit_key(&audit.message_id, &audit.submitted_by);
        let json = serde_json::to_vec(audit).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.audit.insert(&key, json)?;
        if let Some(nhs) = &audit.nhs_number {
            let mut index = nhs.as_bytes().to_vec();
            index.extend_from_slice(&nanos(audit.decided_at));
            index.extend_from_slice(&key);
            self.audit_by_patient.insert(index, &[])?;
        }
        if !audit.message_id.is_empty() {
            let dedup = dedup_key(&audit.submitted_by, &audit.message_id);
            self.dedup.insert(&dedup, answer)?;
            let mut by_time = nanos(audit.decided_at).to_vec();
            by_time.extend_from_slice(&dedup);
            self.dedup_by_time.insert(by_time, &[])?;
        }
        Ok(())
    }

    /// Waits until everything written before the call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.wait().await
    }

    /// The audit records of a message id (one per submitting exchange).
    pub fn audit_of_message(&self, message_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let mut prefix = message_id.as_bytes().to_vec();
        prefix.push(0);
        self.audit
            .scan_prefix(prefix)
            .values()
            .map(|v| decode_audit(&v?))
            .collect()
    }

    /// The most recent audit records naming a patient, newest first.
    pub fn audit_of_patient(
        &self,
        nhs_number: &str,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        let mut records = Vec::new();
        for entry in self
            .audit_by_patient
            .scan_prefix(nhs_number.as_bytes())
            .keys()
            .rev()
        {
            let index = entry?;
            let key = &index[nhs_number.len() + 8..];
            if let Some(value) = self.audit.get(key)? {
                records.push(decode_audit(&value)?);
            }
            if records.len() >= limit {
                break;
            }
        }
        Ok(records)
    }

    /// Forgets de-duplication entries decided before `cutoff`. Returns how
    /// many were removed.
    pub fn purge_dedup_before(&self, cutoff: OffsetDateTime) -> Result<usize, StoreError> {
        let end = nanos(cutoff);
        let mut removed = 0;
        for entry in self.dedup_by_time.range(..end.to_vec()) {
            let (index, _) = entry?;
            self.dedup.remove(&index[8..])?;
            self.dedup_by_time.remove(&index)?;
            removed += 1;
        }
        Ok(removed)
    }

    /// How many message ids are remembered.
    pub fn dedup_len(&self) -> usize {
        self.dedup.len()
    }

    /// Flushes, stops the flusher and lets the database close once every
    /// handle is dropped (on shutdown).
    pub async fn close(&self) -> Result<(), StoreError> {
        self.db.flush_async().await?;
        self.commit.stop();
        let flusher = self
            .flusher
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(flusher) = flusher {
            let _ = flusher.await;
        }
        Ok(())
    }
}

fn decode_audit(bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Group commit: writers take a ticket after writing; one flusher task
/// flushes whenever tickets are waiting, and publishes the highest ticket
/// each flush covers.
struct GroupCommit {
    stopped: std::sync::atomic::AtomicBool,
    issued: AtomicU64,
    wake: Notify,
    flushed: watch::Sender<Result<u64, String>>,
}

impl GroupCommit {
    fn new() -> Self {
        Self {
            stopped: std::sync::atomic::AtomicBool::new(false),
            issued: AtomicU64::new(0),
            wake: Notify::new(),
            flushed: watch::channel(Ok(0)).0,
        }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.wake.notify_one();
    }

    async fn wait(&self) -> Result<(), StoreError> {
        let ticket = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flushed.subscribe();
        self.wake.notify_one();
        loop {
            match &*flushed.borrow_and_update() {
                Ok(done) if *done >= ticket => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(StoreError::Corrupt(format!("flush failed: {e}"))),
            }
            flushed
                .changed()
                .await
                .map_err(|_| StoreError::FlusherStopped)?;
        }
    }

    async fn run(self: Arc<Self>, db: sled::Db) {
        let mut done = 0;
        loop {
            if self.issued.load(Ordering::SeqCst) == done {
                if self.stopped.load(Ordering::SeqCst) {
                    return;
                }
                self.wake.notified().await;
            }
            // Every ticket issued so far was taken after its writes, so a
            // flush that starts now covers them all.
            let target = self.issued.load(Ordering::SeqCst);
            if target == done {
                continue;
            }
            match db.flush_async().await {
                Ok(_) => {
                    done = target;
                    let _previous = self.flushed.send_replace(Ok(done));
                }
                Err(e) => {
                    tracing::error!(error = %e, "store flush failed");
                    let _previous = self.flushed.send_replace(Err(e.to_string()));
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use lhcie_hub_core::{AuditOutcome, Ingress};
    use time::macros::datetime;

    use super::*;

    fn record(
        message_id: &str,
        submitter: &str,
        nhs: Option<&str>,
        at: OffsetDateTime,
    ) -> AuditRecord {
        AuditRecord {
            message_id: message_id.into(),
            decided_at: at,
            submitted_by: submitter.into(),
            ingress: Ingress::Grpc,
            sender: Some("RYJ".into()),
            category: None,
            purpose: None,
            nhs_number: nhs.map(str::to_owned),
            outcome: AuditOutcome::Rejected {
                reason: "invalid-envelope".into(),
                detail: "x".into(),
            },
        }
    }

    #[tokio::test]
    async fn answers_are_remembered_per_submitter_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .record(
                    &record("m1", "nwl-imperial", None, datetime!(2026-11-21 10:00 UTC)),
                    b"answer",
                )
                .unwrap();
            store.durable().await.unwrap();
            assert_eq!(
                store.answered("nwl-imperial", "m1").unwrap().as_deref(),
                Some(&b"answer"[..])
            );
            assert_eq!(store.answered("ncl-royal-free", "m1").unwrap(), None);
            store.close().await.unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.answered("nwl-imperial", "m1").unwrap().as_deref(),
            Some(&b"answer"[..])
        );
        assert_eq!(store.audit_of_message("m1").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn audit_is_searchable_by_patient_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let nhs = "9434765919";
        store
            .record(
                &record("a", "x1", Some(nhs), datetime!(2026-11-21 10:00 UTC)),
                b"",
            )
            .unwrap();
        store
            .record(
                &record("b", "x1", Some(nhs), datetime!(2026-11-21 11:00 UTC)),
                b"",
            )
            .unwrap();
        store
            .record(
                &record(
                    "c",
                    "x1",
                    Some("9000000009"),
                    datetime!(2026-11-21 12:00 UTC),
                ),
                b"",
            )
            .unwrap();
        let found: Vec<String> = store
            .audit_of_patient(nhs, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.message_id)
            .collect();
        assert_eq!(found, ["b", "a"]);
        assert_eq!(store.audit_of_patient(nhs, 1).unwrap().len(), 1);
    }

    #[tokio::test]
    async fn old_dedup_entries_are_purged_and_recent_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .record(
                &record("old", "x1", None, datetime!(2026-11-01 00:00 UTC)),
                b"",
            )
            .unwrap();
        store
            .record(
                &record("new", "x1", None, datetime!(2026-11-20 00:00 UTC)),
                b"",
            )
            .unwrap();
        assert_eq!(
            store
                .purge_dedup_before(datetime!(2026-11-14 00:00 UTC))
                .unwrap(),
            1
        );
        assert!(store.answered("x1", "old").unwrap().is_none());
        assert!(store.answered("x1", "new").unwrap().is_some());
        // The audit is kept.
        assert_eq!(store.audit_of_message("old").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn many_concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("m{i}");
                store
                    .record(&record(&id, "x1", None, OffsetDateTime::now_utc()), b"ok")
                    .unwrap();
                store.durable().await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.dedup_len(), 500);
    }
}
