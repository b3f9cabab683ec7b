//! The receiving adapter's half of exactly-once: a durable record of the
//! message ids already handed to the local system.
//!
//! The transport delivers at least once: after a hub or adapter crash, or a
//! broker failover, the same envelope can arrive twice. The receiver:
//!
//! 1. skips (and acknowledges) a message id it has already handled;
//! 2. hands a new one to the local system;
//! 3. records its id here;
//! 4. makes the record durable ([`SeenStore::flush`]), then acknowledges.
//!
//! A crash between 2 and 4 means the local system may see the envelope
//! again: local hand-off should itself be idempotent where it can be (HL7
//! and FHIR receivers typically de-duplicate on MSH-10 / Bundle.id).

use std::path::Path;

/// Message ids already handled.
#[derive(Clone)]
pub struct SeenStore {
    db: sled::Db,
    seen: sled::Tree,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("seen-message store: {0}")]
pub struct SeenStoreError(#[from] sled::Error);

impl SeenStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, SeenStoreError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(Self {
            seen: db.open_tree("seen")?,
            db,
        })
    }

    /// A store that lives only in memory (tests and throwaway adapters).
    pub fn temporary() -> Result<Self, SeenStoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Self {
            seen: db.open_tree("seen")?,
            db,
        })
    }

    /// Whether `message_id` was handled before.
    pub fn contains(&self, message_id: &str) -> Result<bool, SeenStoreError> {
        Ok(self.seen.contains_key(message_id)?)
    }

    /// Records `message_id` as handled (durable after the next flush).
    /// Returns false if it was already recorded.
    pub fn insert(&self, message_id: &str) -> Result<bool, SeenStoreError> {
        Ok(self.seen.insert(message_id, &[])?.is_none())
    }

    /// Makes every record so far durable.
    pub async fn flush(&self) -> Result<(), SeenStoreError> {
        self.db.flush_async().await?;
        Ok(())
    }

    /// How many ids are recorded.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_survive_reopening_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SeenStore::open(dir.path()).unwrap();
            assert!(store.insert("m1").unwrap());
            assert!(!store.insert("m1").unwrap());
            store.flush().await.unwrap();
        }
        let store = SeenStore::open(dir.path()).unwrap();
        assert!(store.contains("m1").unwrap());
        assert!(!store.contains("m2").unwrap());
    }
}
