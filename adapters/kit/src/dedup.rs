//! The receiving adapter's half of exactly-once: a durable record of the
//! deliveries already handed to the local system.
//!
//! The transport delivers at least once: after a hub or adapter crash, or a
//! broker failover, the same envelope can arrive twice. The receiver:
//!
//! 1. skips (and acknowledges) a delivery it has already handled;
//! 2. hands a new one to the local system;
//! 3. records its [`DeliveryKey`] here;
//! 4. makes the record durable ([`SeenStore::flush`]), then acknowledges.
//!
//! A crash between 2 and 4 means the local system may see the envelope
//! again: local hand-off should itself be idempotent where it can be (HL7
//! and FHIR receivers typically de-duplicate on MSH-10 / Bundle.id).

use std::path::Path;

use lhcie_proto::canonical as pb;

/// What makes a delivery the same delivery: the submitting exchange, the
/// message id, and the recipients it was delivered for. A message id alone
/// is not enough: one exchange could send another's predicted id first and
/// have the real message dropped as a duplicate, and a message replayed for
/// a recipient it was withheld from must not be dropped because the same
/// exchange already got a copy for another recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey(String);

impl DeliveryKey {
    /// The key of a delivery of `envelope` for `recipients`. The hub checks
    /// that an envelope's sender exchange is the exchange that submitted it
    /// (its own acknowledgements are sent as the exchange `hub`), so the
    /// sender exchange identifies the submitter.
    pub fn of(envelope: &pb::Envelope, recipients: &[String]) -> Self {
        let submitter = envelope
            .sender
            .as_ref()
            .map(|s| s.exchange_id.as_str())
            .unwrap_or_default();
        let mut recipients: Vec<&str> = recipients.iter().map(String::as_str).collect();
        recipients.sort_unstable();
        recipients.dedup();
        Self(format!(
            "{submitter}\u{1f}{}\u{1f}{}",
            envelope.message_id,
            recipients.join(",")
        ))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Deliveries already handled, by [`DeliveryKey`].
#[derive(Clone)]
pub struct SeenStore {
    db: sled::Db,
    seen: sled::Tree,
}

/// The tree of delivery keys. (Until December 2026 the tree `seen` held
/// bare message ids; it is no longer read, so a delivery redelivered across
/// that upgrade is handed over once more, which receivers tolerate.)
const SEEN_TREE: &str = "delivered";

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[error("seen-message store: {0}")]
pub struct SeenStoreError(#[from] sled::Error);

impl SeenStore {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, SeenStoreError> {
        let db = sled::Config::new().path(path).open()?;
        Ok(Self {
            seen: db.open_tree(SEEN_TREE)?,
            db,
        })
    }

    /// A store that lives only in memory (tests and throwaway adapters).
    pub fn temporary() -> Result<Self, SeenStoreError> {
        let db = sled::Config::new().temporary(true).open()?;
        Ok(Self {
            seen: db.open_tree(SEEN_TREE)?,
            db,
        })
    }

    /// Whether this delivery was handled before.
    pub fn contains(&self, key: &DeliveryKey) -> Result<bool, SeenStoreError> {
        Ok(self.seen.contains_key(key.as_bytes())?)
    }

    /// Records a delivery as handled (durable after the next flush).
    /// Returns false if it was already recorded.
    pub fn insert(&self, key: &DeliveryKey) -> Result<bool, SeenStoreError> {
        Ok(self.seen.insert(key.as_bytes(), &[])?.is_none())
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

    fn envelope(from_exchange: &str, id: &str) -> pb::Envelope {
        pb::Envelope {
            message_id: id.into(),
            sender: Some(pb::Party {
                exchange_id: from_exchange.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn key(from_exchange: &str, id: &str, recipients: &[&str]) -> DeliveryKey {
        let recipients: Vec<String> = recipients.iter().map(|r| r.to_string()).collect();
        DeliveryKey::of(&envelope(from_exchange, id), &recipients)
    }

    #[tokio::test]
    async fn deliveries_survive_reopening_once_flushed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SeenStore::open(dir.path()).unwrap();
            assert!(store.insert(&key("a", "m1", &["RAL"])).unwrap());
            assert!(!store.insert(&key("a", "m1", &["RAL"])).unwrap());
            store.flush().await.unwrap();
        }
        // sled's own threads may hold the file lock a moment after the
        // last handle is dropped: a refusal for the lock is retried.
        let mut reopened = SeenStore::open(dir.path());
        for _ in 0..100 {
            match &reopened {
                Err(error) if error.to_string().contains("could not acquire lock") => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    reopened = SeenStore::open(dir.path());
                }
                _ => break,
            }
        }
        let store = reopened.unwrap();
        assert!(store.contains(&key("a", "m1", &["RAL"])).unwrap());
        assert!(!store.contains(&key("a", "m2", &["RAL"])).unwrap());
    }

    #[test]
    fn the_same_id_from_another_exchange_or_for_another_recipient_is_another_delivery() {
        let store = SeenStore::temporary().unwrap();
        assert!(store.insert(&key("nwl-imperial", "m1", &["RAL"])).unwrap());
        // A predicted id sent first by another exchange suppresses nothing.
        assert!(!store.contains(&key("nel-barts", "m1", &["RAL"])).unwrap());
        // A replay for a recipient withheld before is a new delivery.
        assert!(
            !store
                .contains(&key("nwl-imperial", "m1", &["RAN"]))
                .unwrap()
        );
        // The order the hub lists recipients in does not matter.
        assert!(
            store
                .insert(&key("nwl-imperial", "m2", &["RAL", "RAN"]))
                .unwrap()
        );
        assert!(
            store
                .contains(&key("nwl-imperial", "m2", &["RAN", "RAL"]))
                .unwrap()
        );
    }
}
