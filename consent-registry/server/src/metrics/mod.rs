//! The node's metrics, served in the Prometheus text format on the
//! optional `[metrics]` endpoint (`GET /metrics`, `GET /healthz`, from
//! `lhcie_runtime::metrics`). Names and labels are listed in
//! `docs/metrics.md`.
//!
//! Labels carry command names, results and node ids only: never a patient
//! identifier, a record id or an actor.
//!
//! - this module: installing the recorder, and what the API records (writes
//!   and their commit time, watchers);
//! - [`raft`]: gauges of the node's Raft state (leadership, term, revision,
//!   log, membership, replication), kept current from openraft's metrics.

pub mod raft;

use std::time::Duration;

/// Replicated writes, by command and result.
pub const WRITES: &str = "lhcie_registry_writes_total";
/// From the leader receiving a write to its being committed, applied and
/// answered.
pub const COMMIT_SECONDS: &str = "lhcie_registry_commit_seconds";
/// Watch streams this node serves.
pub const WATCHERS: &str = "lhcie_registry_watchers";

/// The node's histograms (buckets: `lhcie_runtime::metrics::LATENCY_BUCKETS`).
pub const HISTOGRAMS: [&str; 1] = [COMMIT_SECONDS];

/// Installs the Prometheus recorder (once per process) and describes the
/// metrics; `false` if another recorder was installed first.
pub fn install() -> bool {
    if lhcie_runtime::metrics::install(&HISTOGRAMS).is_none() {
        return false;
    }
    describe();
    raft::describe();
    // Shown from the start, not only once a watcher has come and gone.
    metrics::gauge!(WATCHERS).set(0.0);
    true
}

fn describe() {
    metrics::describe_counter!(
        WRITES,
        "Replicated writes proposed on this node while it led, by command and result (applied, refused by a rule, failed: not committed)."
    );
    metrics::describe_histogram!(
        COMMIT_SECONDS,
        metrics::Unit::Seconds,
        "From the leader receiving a write to its being committed by a majority, applied and answered, by command."
    );
    metrics::describe_gauge!(WATCHERS, "Watch streams this node serves.");
}

/// What became of a proposed write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteResult {
    /// Committed and applied: it changed the registry.
    Applied,
    /// Committed, but a rule refused it: nothing changed.
    Refused,
    /// Not committed here (timed out, leadership lost, node stopping): the
    /// caller was told its outcome is unknown or sent to the leader.
    Failed,
}

impl WriteResult {
    /// The `result` label.
    pub fn label(self) -> &'static str {
        match self {
            WriteResult::Applied => "applied",
            WriteResult::Refused => "refused",
            WriteResult::Failed => "failed",
        }
    }
}

/// A write of `command` (a command name, e.g. `set-directive`) ended with
/// `result`; `elapsed` since it arrived, if it was committed.
pub fn write(command: &'static str, result: WriteResult, elapsed: Option<Duration>) {
    metrics::counter!(WRITES, "command" => command, "result" => result.label()).increment(1);
    if let Some(elapsed) = elapsed {
        metrics::histogram!(COMMIT_SECONDS, "command" => command).record(elapsed.as_secs_f64());
    }
}

/// Counts one watch stream while it lives.
pub struct WatcherGuard(());

impl WatcherGuard {
    /// A watch stream started.
    pub fn new() -> Self {
        metrics::gauge!(WATCHERS).increment(1.0);
        Self(())
    }
}

impl Default for WatcherGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        metrics::gauge!(WATCHERS).decrement(1.0);
    }
}
