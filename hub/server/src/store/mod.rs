//! The hub's durable store (sled): the decision about every envelope —
//! its audit record and the answer given — which is also what makes
//! resubmissions idempotent.
//!
//! The answer given to the submitter is derived from the audit record, so
//! the two cannot disagree. Records are small and binary (postcard) because
//! sled copies a whole leaf node on every insert: value size is throughput.
//!
//! Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `decisions` | message id, 0, submitting exchange | decided-at (unix ns, big-endian), then the `AuditRecord` (postcard) |
//! | `by_patient` | NHS number, decided-at, decision key | empty: the audit searchable by patient |
//! | `by_time`, `by_org`, `access_log` | see [`search`] | the trace's indexes, and who viewed what |
//! | `dead_letters`, `dead_letter_bodies`, `dead_letters_pending` | see [`dead_letters`] | what waits for an operator |
//! | `events` | message id, 0, at, sequence | a [`trace::TraceEvent`]: what adapters and the hub saw after the decision |
//! | `emergency_reviews`, `emergency_reviews_pending` | see [`emergency`] | emergency overrides waiting for (or closed by) a reviewer |
//!
//! De-duplication is per submitting exchange, so one exchange can neither
//! learn the outcome of nor block another's message by reusing its id; a
//! decision older than the retention window no longer counts as a
//! duplicate. Everything is kept for its retention window and then pruned
//! ([`retention`]). Writes become durable only on
//! [`Store::durable`], which shares one flush (fsync) among every writer
//! waiting at the time (group commit). Each decision costs four to six
//! inserts (the record, the patient, time and organisation indexes), and
//! two more per emergency override (its review, pending).

use std::sync::Arc;
use std::time::Duration;

use lhcie_hub_core::AuditRecord;
use lhcie_runtime::{CommitError, GroupCommit};
use time::OffsetDateTime;

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
    /// The folder holds a store another version of the hub wrote.
    #[error(
        "store: written in format {found}, and this hub reads format {expected} (and \
         upgrades format 1): run the hub version that wrote it, or start this one with a \
         new [store] path and keep the old store for its audit"
    )]
    Format {
        /// The format found (1 for stores from before formats were recorded).
        found: u32,
        /// The format this build reads and writes.
        expected: u32,
    },
}

/// The format of the records this build writes (postcard, which is not
/// self-describing: raise it whenever a stored type changes shape).
/// History: 1, round 1 and the zero-trust work; 2, each audit recipient
/// records the registry revision it was decided from.
pub const STORE_FORMAT: u32 = 2;

/// Where the format is kept.
const FORMAT_KEY: &[u8] = b"lhcie-store-format";

/// Upgrades a format-1 store ([`migrate`]); refuses one of any other
/// format; records the format in a new one.
fn check_format(db: &sled::Db) -> Result<(), StoreError> {
    let found = match db.get(FORMAT_KEY)? {
        Some(value) => value
            .as_ref()
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("the store's format marker".into()))?,
        // A new store has nothing but sled's default tree, empty.
        None if db.tree_names().len() == 1 && db.is_empty() => {
            db.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())?;
            db.flush()?;
            STORE_FORMAT
        }
        None => 1,
    };
    if found == 1 {
        migrate::from_format_1(db)?;
        db.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())?;
        db.flush()?;
        tracing::info!(from = 1, to = STORE_FORMAT, "store upgraded");
        return Ok(());
    }
    if found == STORE_FORMAT {
        Ok(())
    } else {
        Err(StoreError::Format {
            found,
            expected: STORE_FORMAT,
        })
    }
}

pub mod dead_letters;
pub mod emergency;
mod migrate;
pub mod retention;
pub mod search;
pub mod trace;

/// The hub's store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    decisions: sled::Tree,
    by_patient: sled::Tree,
    events: sled::Tree,
    by_time: sled::Tree,
    by_org: sled::Tree,
    access_log: sled::Tree,
    dead_letters: sled::Tree,
    dead_letter_bodies: sled::Tree,
    dead_letters_pending: sled::Tree,
    emergency_reviews: sled::Tree,
    emergency_reviews_pending: sled::Tree,
    dedup_retention: Duration,
    /// The only flusher of `db`; stopped when the last handle is dropped.
    commit: Arc<GroupCommit>,
}

fn decision_key(message_id: &str, submitter: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(message_id.len() + 1 + submitter.len());
    key.extend_from_slice(message_id.as_bytes());
    key.push(0);
    key.extend_from_slice(submitter.as_bytes());
    key
}

fn nanos(at: OffsetDateTime) -> [u8; 8] {
    // Unix nanoseconds fit in u64 until the year 2554.
    (at.unix_timestamp_nanos().max(0) as u64).to_be_bytes()
}

/// A stored decision: when, and the record.
fn split(value: &[u8]) -> Result<(u64, &[u8]), StoreError> {
    let decided = value
        .get(..8)
        .ok_or_else(|| StoreError::Corrupt("short decision record".into()))?;
    let decided = u64::from_be_bytes(
        decided
            .try_into()
            .map_err(|_| StoreError::Corrupt("short decision record".into()))?,
    );
    Ok((decided, &value[8..]))
}

impl Store {
    /// Opens (or creates) the store in `path` and starts its flusher. A
    /// decision counts for de-duplication for `dedup_retention`.
    pub fn open(path: &std::path::Path, dedup_retention: Duration) -> Result<Self, StoreError> {
        // The hub flushes explicitly (group commit), so sled's own periodic
        // flusher only adds wake-ups; throughput mode favours the write path.
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .flush_every_ms(None)
            .open()?;
        check_format(&db)?;
        let commit = Arc::new(
            GroupCommit::start(db.clone())
                .map_err(|e| StoreError::Corrupt(format!("cannot start the flusher: {e}")))?,
        );
        Ok(Self {
            decisions: db.open_tree("decisions")?,
            by_patient: db.open_tree("by_patient")?,
            events: db.open_tree("events")?,
            by_time: db.open_tree("by_time")?,
            by_org: db.open_tree("by_org")?,
            access_log: db.open_tree("access_log")?,
            dead_letters: db.open_tree("dead_letters")?,
            dead_letter_bodies: db.open_tree("dead_letter_bodies")?,
            dead_letters_pending: db.open_tree("dead_letters_pending")?,
            emergency_reviews: db.open_tree("emergency_reviews")?,
            emergency_reviews_pending: db.open_tree("emergency_reviews_pending")?,
            db,
            dedup_retention,
            commit,
        })
    }

    /// The decision already made for `submitter`'s `message_id`, if it was
    /// made within the retention window.
    pub fn decided(
        &self,
        submitter: &str,
        message_id: &str,
    ) -> Result<Option<AuditRecord>, StoreError> {
        let Some(value) = self.decisions.get(decision_key(message_id, submitter))? else {
            return Ok(None);
        };
        let (decided_at, record) = split(&value)?;
        let cutoff = u64::from_be_bytes(nanos(OffsetDateTime::now_utc() - self.dedup_retention));
        if decided_at < cutoff {
            return Ok(None);
        }
        decode_audit(record).map(Some)
    }

    /// Records a decision with its indexes, and a pending review for each
    /// emergency override in it ([`emergency`]); not yet durable: call
    /// [`Store::durable`] before telling anyone. Recording the same
    /// decision again adds no second review.
    pub fn record(&self, audit: &AuditRecord) -> Result<(), StoreError> {
        let key = decision_key(&audit.message_id, &audit.submitted_by);
        let decided_at = nanos(audit.decided_at);
        let mut value = decided_at.to_vec();
        value =
            postcard::to_extend(audit, value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let previous = self.decisions.insert(&key, value)?;
        let recorded_before = previous.is_some_and(|p| p.get(..8) == Some(&decided_at[..]));
        if !recorded_before {
            self.index_emergency_reviews(audit)?;
        }
        if let Some(nhs) = &audit.nhs_number {
            let mut index = nhs.as_bytes().to_vec();
            index.extend_from_slice(&nanos(audit.decided_at));
            index.extend_from_slice(&key);
            self.by_patient.insert(index, &[])?;
        }
        self.index_decision(audit, &key)?;
        Ok(())
    }

    /// Waits until everything written before the call is on disk.
    pub async fn durable(&self) -> Result<(), StoreError> {
        self.commit.durable().await.map_err(|e| match e {
            CommitError::Flush(e) => StoreError::Corrupt(format!("flush failed: {e}")),
            CommitError::Stopped => StoreError::FlusherStopped,
        })
    }

    /// The audit records of a message id (one per submitting exchange).
    pub fn audit_of_message(&self, message_id: &str) -> Result<Vec<AuditRecord>, StoreError> {
        let mut prefix = message_id.as_bytes().to_vec();
        prefix.push(0);
        self.decisions
            .scan_prefix(prefix)
            .values()
            .map(|v| decode_audit(split(&v?)?.1))
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
            .by_patient
            .scan_prefix(nhs_number.as_bytes())
            .keys()
            .rev()
        {
            let index = entry?;
            let key = &index[nhs_number.len() + 8..];
            if let Some(value) = self.decisions.get(key)? {
                records.push(decode_audit(split(&value)?.1)?);
            }
            if records.len() >= limit {
                break;
            }
        }
        Ok(records)
    }

    /// How many decisions are stored.
    pub fn len(&self) -> usize {
        self.decisions.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
    }

    /// Makes everything written so far durable (on shutdown); the flusher
    /// stops, and the database closes, once every handle is dropped.
    pub async fn close(&self) -> Result<(), StoreError> {
        self.durable().await
    }
}

fn decode_audit(bytes: &[u8]) -> Result<AuditRecord, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(test)]
pub(super) mod tests {
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

    const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

    /// Opens a store again in this process. After the last handle of a
    /// sled database is dropped, sled's own I/O threads may hold its file
    /// lock a moment longer; a refusal for that lock is retried here (a
    /// second hub process is refused at once, as it should be).
    pub(super) async fn reopen(
        path: &std::path::Path,
        retention: Duration,
    ) -> Result<Store, StoreError> {
        for _ in 0..100 {
            match Store::open(path, retention) {
                Err(StoreError::Sled(sled::Error::Io(error)))
                    if error.to_string().contains("could not acquire lock") =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => return other,
            }
        }
        Store::open(path, retention)
    }

    /// A sled database with no background flusher, so dropping it lets go
    /// of the folder at once.
    fn without_flusher(path: &std::path::Path) -> sled::Db {
        sled::Config::new()
            .path(path)
            .flush_every_ms(None)
            .open()
            .unwrap()
    }

    #[tokio::test]
    async fn a_format_one_store_is_upgraded_and_an_unknown_format_refused() {
        let dir = tempfile::tempdir().unwrap();
        let at = datetime!(2026-11-01 12:00 UTC);
        {
            // As the hub left its store before formats were recorded.
            let db = without_flusher(&dir.path().join("old"));
            let old = migrate::v1::Record {
                message_id: "m1".into(),
                decided_at: at,
                submitted_by: "nwl-imperial".into(),
                ingress: Ingress::Grpc,
                sender: Some("RYJ".into()),
                category: None,
                purpose: None,
                nhs_number: Some("9434765919".into()),
                outcome: migrate::v1::Outcome::Routed {
                    recipients: vec![migrate::v1::Recipient {
                        recipient: "RAL".into(),
                        exchange: "ncl-royal-free".into(),
                        decision: "forwarded".into(),
                        reason: "implied-consent".into(),
                        isa: Some(("ISA-1".into(), 1)),
                        directives: vec![],
                        obligations: vec![],
                    }],
                },
            };
            let mut value = nanos(at).to_vec();
            value = postcard::to_extend(&old, value).unwrap();
            let key = decision_key("m1", "nwl-imperial");
            db.open_tree("decisions")
                .unwrap()
                .insert(key, value)
                .unwrap();
            db.flush().unwrap();
        }
        let store = reopen(&dir.path().join("old"), WEEK)
            .await
            .expect("upgraded");
        let records = store.audit_of_message("m1").unwrap();
        let AuditOutcome::Routed { recipients } = &records[0].outcome else {
            panic!("{records:?}");
        };
        assert_eq!(recipients[0].reason, "implied-consent");
        assert_eq!(recipients[0].registry_revision, None);
        store.close().await.unwrap();
        drop(store);

        let db = without_flusher(&dir.path().join("future"));
        db.insert(FORMAT_KEY, &99u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
        drop(db);
        let refused = reopen(&dir.path().join("future"), WEEK).await.err();
        assert!(
            matches!(
                refused,
                Some(StoreError::Format {
                    found: 99,
                    expected: STORE_FORMAT
                })
            ),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn answers_are_remembered_per_submitter_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        {
            let store = Store::open(dir.path(), WEEK).unwrap();
            store
                .record(&record("m1", "nwl-imperial", None, now))
                .unwrap();
            store.durable().await.unwrap();
            assert_eq!(
                store
                    .decided("nwl-imperial", "m1")
                    .unwrap()
                    .unwrap()
                    .message_id,
                "m1"
            );
            assert_eq!(store.decided("ncl-royal-free", "m1").unwrap(), None);
            store.close().await.unwrap();
        }
        let store = reopen(dir.path(), WEEK).await.unwrap();
        assert_eq!(
            store
                .decided("nwl-imperial", "m1")
                .unwrap()
                .unwrap()
                .submitted_by,
            "nwl-imperial"
        );
        assert_eq!(store.audit_of_message("m1").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn audit_is_searchable_by_patient_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), WEEK).unwrap();
        let nhs = "9434765919";
        store
            .record(&record(
                "a",
                "x1",
                Some(nhs),
                datetime!(2026-11-21 10:00 UTC),
            ))
            .unwrap();
        store
            .record(&record(
                "b",
                "x1",
                Some(nhs),
                datetime!(2026-11-21 11:00 UTC),
            ))
            .unwrap();
        store
            .record(&record(
                "c",
                "x1",
                Some("9000000009"),
                datetime!(2026-11-21 12:00 UTC),
            ))
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
    async fn decisions_older_than_the_retention_window_are_not_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), WEEK).unwrap();
        let now = OffsetDateTime::now_utc();
        store
            .record(&record(
                "old",
                "x1",
                None,
                now - WEEK - Duration::from_secs(60),
            ))
            .unwrap();
        store
            .record(&record(
                "new",
                "x1",
                None,
                now - WEEK + Duration::from_secs(60),
            ))
            .unwrap();
        assert!(store.decided("x1", "old").unwrap().is_none());
        assert!(store.decided("x1", "new").unwrap().is_some());
        // The audit is kept either way.
        assert_eq!(store.audit_of_message("old").unwrap().len(), 1);
    }

    #[tokio::test]
    async fn many_concurrent_writers_share_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), WEEK).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("m{i}");
                store
                    .record(&record(&id, "x1", None, OffsetDateTime::now_utc()))
                    .unwrap();
                store.durable().await.unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(store.len(), 500);
    }
}
