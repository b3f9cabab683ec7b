//! What every component of an adapter is given: [`AdapterContext`].

use std::path::PathBuf;
use std::sync::Arc;

use lhcie_adapter_kit::{HubConnection, Outbox};
use lhcie_config::{AdapterFile, Exchange};
use tokio_util::sync::CancellationToken;

use crate::ops::Ops;

/// Shared by every component of a running adapter. Cheap to clone.
#[derive(Clone)]
pub struct AdapterContext {
    /// The exchange served, with its adapter kind and endpoints.
    pub exchange: Arc<Exchange>,
    /// The adapter's file (paths resolved), including the kinds' settings.
    pub file: Arc<AdapterFile>,
    /// How to reach the hub (for components that need their own stream).
    pub connection: HubConnection,
    /// The durable outbox: put what the local system hands over here, and
    /// acknowledge to it only once `put` returned.
    pub outbox: Outbox,
    /// Cancelled when the adapter stops; every component ends then.
    pub shutdown: CancellationToken,
    /// The adapter's store folder; a kind may keep its own files under it.
    pub store_dir: PathBuf,
    /// Metrics and trace events: report what became of each message here.
    pub ops: Ops,
}

impl std::fmt::Debug for AdapterContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdapterContext")
            .field("exchange", &self.exchange.id)
            .field("outbox", &self.outbox)
            .field("store_dir", &self.store_dir)
            .finish_non_exhaustive()
    }
}
