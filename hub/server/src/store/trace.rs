//! The trace events of messages: what adapters report (received from or
//! delivered to their local system) and what the hub itself sees after its
//! decision (a delivery taken by a gRPC adapter, a dead letter, a replay,
//! a recipient's acknowledgement). With the audit record they make a
//! message's timeline.
//!
//! Tree `events`: key = message id, 0, at (unix ns, big-endian), sequence
//! (big-endian); value = [`TraceEvent`] (postcard). Events carry codes
//! and short reasons, never patient data.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError, nanos};

/// The longest detail kept.
pub const MAX_DETAIL_CHARS: usize = 200;

/// Who saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layer {
    /// An adapter (at its local system's side).
    Adapter,
    /// The hub.
    Hub,
    /// The broker (a dead letter).
    Broker,
}

/// One thing that happened to one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The message.
    pub message_id: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who saw it.
    pub layer: Layer,
    /// The exchange it happened at (the adapter's, or the destination).
    pub exchange: String,
    /// What happened, as a stage code (e.g. `received-from-local`,
    /// `delivered-to-local`, `taken-by-adapter`, `dead-lettered`,
    /// `replayed`, `acknowledged`).
    pub stage: String,
    /// The local or protocol code (HL7 ACK code, HTTP status, ITK3 code).
    pub code: String,
    /// Why, in words (at most [`MAX_DETAIL_CHARS`]).
    pub detail: String,
}

impl TraceEvent {
    /// An event with its detail cut to [`MAX_DETAIL_CHARS`].
    pub fn new(
        message_id: &str,
        at: OffsetDateTime,
        layer: Layer,
        exchange: &str,
        stage: &str,
        code: &str,
        detail: &str,
    ) -> Self {
        Self {
            message_id: message_id.to_owned(),
            at,
            layer,
            exchange: exchange.to_owned(),
            stage: stage.to_owned(),
            code: code.chars().take(32).collect(),
            detail: detail.chars().take(MAX_DETAIL_CHARS).collect(),
        }
    }
}

impl Store {
    /// Records a trace event (made durable with the next flush; events are
    /// observability, so nobody waits for them).
    pub fn record_event(&self, event: &TraceEvent) -> Result<(), StoreError> {
        let mut key = event.message_id.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&nanos(event.at));
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = postcard::to_stdvec(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.events.insert(key, value)?;
        Ok(())
    }

    /// A message's trace events, oldest first.
    pub fn events_of_message(&self, message_id: &str) -> Result<Vec<TraceEvent>, StoreError> {
        let mut prefix = message_id.as_bytes().to_vec();
        prefix.push(0);
        self.events
            .scan_prefix(prefix)
            .values()
            .map(|value| {
                postcard::from_bytes(&value?).map_err(|e| StoreError::Corrupt(e.to_string()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use time::macros::datetime;

    use super::*;

    #[test]
    fn events_are_kept_per_message_oldest_first_and_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(3600)).unwrap();
        let later = TraceEvent::new(
            "m1",
            datetime!(2026-11-21 10:00:02 UTC),
            Layer::Adapter,
            "ncl-royal-free",
            "delivered-to-local",
            "AA",
            "",
        );
        let earlier = TraceEvent::new(
            "m1",
            datetime!(2026-11-21 10:00:01 UTC),
            Layer::Adapter,
            "nwl-imperial",
            "received-from-local",
            "AA",
            &"x".repeat(500),
        );
        store.record_event(&later).unwrap();
        store.record_event(&earlier).unwrap();
        store
            .record_event(&TraceEvent::new(
                "m10",
                datetime!(2026-11-21 09:00 UTC),
                Layer::Hub,
                "x",
                "replayed",
                "",
                "",
            ))
            .unwrap();
        let events = store.events_of_message("m1").unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].stage, "received-from-local");
        assert_eq!(events[0].detail.len(), MAX_DETAIL_CHARS);
        assert_eq!(events[1], later);
    }
}
