//! The `MessageHeader.id` of each message delivered to the local system,
//! mapped to its canonical message id, so that a response message the
//! local system sends later (`MessageHeader.response.identifier` = that
//! header id) is related to the right message. A message delivered
//! unchanged keeps its sender's header id, which is not the canonical id.
//!
//! Kept in the adapter's store (sled tree `fhir.delivered`), bounded to the
//! most recent [`CAPACITY`] deliveries. Written before the delivery is
//! posted and flushed with sled's periodic flush: after a crash the last
//! half second of mappings may be lost, and a response to one of those
//! messages then refers to the header id itself.

use std::path::Path;

/// The most mappings kept.
pub const CAPACITY: usize = 100_000;

/// Header ids of delivered messages.
#[derive(Clone)]
pub struct DeliveredHeaders {
    by_header: sled::Tree,
    order: sled::Tree,
}

impl DeliveredHeaders {
    /// Opens (or creates) the store in `path`.
    pub fn open(path: &Path) -> Result<Self, sled::Error> {
        let db = sled::open(path)?;
        Ok(Self {
            by_header: db.open_tree("fhir.delivered")?,
            order: db.open_tree("fhir.delivered.order")?,
        })
    }

    /// Records that `header_id` was delivered for `message_id`.
    pub fn record(&self, header_id: &str, message_id: &str) -> Result<(), sled::Error> {
        if self.by_header.insert(header_id, message_id)?.is_none() {
            let seq = self.order.generate_id_key()?;
            self.order.insert(seq, header_id)?;
            while self.order.len() > CAPACITY {
                let Some((key, header)) = self.order.pop_min()? else {
                    break;
                };
                let _ = key;
                self.by_header.remove(header)?;
            }
        }
        Ok(())
    }

    /// The canonical message id delivered under `header_id`.
    pub fn message_id(&self, header_id: &str) -> Result<Option<String>, sled::Error> {
        Ok(self
            .by_header
            .get(header_id)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

trait GenerateIdKey {
    fn generate_id_key(&self) -> Result<[u8; 8], sled::Error>;
}

impl GenerateIdKey for sled::Tree {
    /// A key after every key in the tree.
    fn generate_id_key(&self) -> Result<[u8; 8], sled::Error> {
        let next = match self.last()? {
            Some((key, _)) => {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(&key[..8.min(key.len())]);
                u64::from_be_bytes(bytes) + 1
            }
            None => 0,
        };
        Ok(next.to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_ids_map_to_message_ids() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveredHeaders::open(dir.path()).unwrap();
        store.record("hdr-1", "msg-1").unwrap();
        store.record("hdr-1", "msg-1").unwrap();
        assert_eq!(store.message_id("hdr-1").unwrap().as_deref(), Some("msg-1"));
        assert_eq!(store.message_id("hdr-2").unwrap(), None);
        assert_eq!(store.order.len(), 1);
    }
}
