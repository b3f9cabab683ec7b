//! Which adapters are up: the last heartbeat from each exchange.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lhcie_model::ExchangeId;
use lhcie_proto::hub as hubpb;
use serde::Serialize;

/// The latest heartbeat of every adapter that has sent one.
#[derive(Default)]
pub struct AdapterRegistry {
    beats: Mutex<BTreeMap<ExchangeId, Beat>>,
}

struct Beat {
    at: Instant,
    kind: String,
    version: String,
    outbox_depth: u64,
}

/// An adapter as reported on the admin endpoint.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct AdapterStatus {
    /// Its exchange.
    pub exchange: String,
    /// Its kind.
    pub kind: String,
    /// Its version.
    pub version: String,
    /// Messages waiting in its outbox.
    pub outbox_depth: u64,
    /// Seconds since its last heartbeat.
    pub seconds_since_heartbeat: u64,
    /// Up if it beat within three intervals.
    pub up: bool,
}

impl AdapterRegistry {
    /// Records a heartbeat.
    pub fn beat(&self, exchange: &ExchangeId, request: &hubpb::HeartbeatRequest) {
        let mut beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats.insert(
            exchange.clone(),
            Beat {
                at: Instant::now(),
                kind: request.adapter_kind.clone(),
                version: request.version.clone(),
                outbox_depth: request.outbox_depth,
            },
        );
    }

    /// Every adapter that has sent a heartbeat.
    pub fn statuses(&self, interval: Duration) -> Vec<AdapterStatus> {
        let beats = self.beats.lock().unwrap_or_else(|e| e.into_inner());
        beats
            .iter()
            .map(|(exchange, beat)| {
                let age = beat.at.elapsed();
                AdapterStatus {
                    exchange: exchange.to_string(),
                    kind: beat.kind.clone(),
                    version: beat.version.clone(),
                    outbox_depth: beat.outbox_depth,
                    seconds_since_heartbeat: age.as_secs(),
                    up: age <= interval * 3,
                }
            })
            .collect()
    }
}
