//! Telling the hub what happened to messages at this adapter's side, for
//! the operators' message trace (`Exchange.ReportEvents`).
//!
//! A [`TraceReporter`] is cheap to clone and [`report`](TraceReporter::report)
//! never waits: the event goes into a bounded buffer in memory and a
//! background task sends the buffer to the hub in batches (at most
//! [`TraceOptions::batch`] events per call, within
//! [`TraceOptions::linger`] of the first one waiting) over the adapter's
//! own gRPC connection to the hub (mutual TLS, like the heartbeat).
//!
//! It is **best effort**, and says so:
//!
//! - if the hub cannot take a batch, the events stay in the buffer and the
//!   batch is sent again with backoff (200 ms doubling up to 5 s);
//! - when the buffer is full ([`TraceOptions::capacity`]) the **oldest**
//!   event is dropped and counted in
//!   `lhcie_adapter_trace_events_dropped_total{exchange}` (and
//!   [`TraceReporter::dropped`]);
//! - events are kept in memory only: what is still buffered when the
//!   process stops is sent within [`TraceOptions::shutdown_grace`] by
//!   [`TraceReporter::close`], and lost after that.
//!
//! A reporter without a hub connection ([`TraceReporter::disabled`], for
//! an adapter with no gRPC channel to the hub) accepts events and does
//! nothing with them.
//!
//! Events carry message ids, stages and codes; callers must never put a
//! payload, a patient identifier or free text from a message in one (the
//! hub keeps at most 200 characters of `detail`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lhcie_proto::hub as hubpb;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::{HubClient, HubConnection};

pub use hubpb::{TraceEvent, TraceStage};

/// The counter of events dropped because the buffer was full.
pub const DROPPED_METRIC: &str = "lhcie_adapter_trace_events_dropped_total";

/// Settings of a [`TraceReporter`].
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Events kept in memory at most; beyond, the oldest is dropped.
    pub capacity: usize,
    /// Events per `ReportEvents` call at most (the hub takes up to 1000).
    pub batch: usize,
    /// How long the first waiting event may wait for others to join its
    /// batch.
    pub linger: Duration,
    /// How long [`TraceReporter::close`] keeps sending what is left.
    pub shutdown_grace: Duration,
    /// How long one `ReportEvents` call may take.
    pub call_timeout: Duration,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            batch: 500,
            linger: Duration::from_millis(100),
            shutdown_grace: Duration::from_secs(2),
            call_timeout: Duration::from_secs(5),
        }
    }
}

/// An event stamped now.
pub fn event(
    message_id: &str,
    stage: TraceStage,
    local_code: &str,
    detail: impl Into<String>,
) -> TraceEvent {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    TraceEvent {
        message_id: message_id.to_owned(),
        at_unix_nanos: at,
        stage: stage as i32,
        local_code: local_code.to_owned(),
        detail: detail.into(),
    }
}

/// Reports trace events to the hub; see the module docs. Cheap to clone.
#[derive(Clone, Default)]
pub struct TraceReporter {
    handle: Option<Arc<Handle>>,
}

impl std::fmt::Debug for TraceReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceReporter")
            .field("enabled", &self.handle.is_some())
            .field("buffered", &self.buffered())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// Owned by the reporters (not the task): when the last one goes, the task
/// is told to flush and stop.
struct Handle {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
    dropped: AtomicU64,
    dropped_metric: metrics::Counter,
    options: TraceOptions,
}

#[derive(Default)]
struct Queue {
    /// Events with their sequence numbers, oldest first.
    events: VecDeque<(u64, TraceEvent)>,
    next_seq: u64,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, event: TraceEvent) {
        let mut queue = self.lock();
        while queue.events.len() >= self.options.capacity.max(1) {
            queue.events.pop_front();
            self.dropped.fetch_add(1, Ordering::Relaxed);
            self.dropped_metric.increment(1);
        }
        let seq = queue.next_seq;
        queue.next_seq += 1;
        queue.events.push_back((seq, event));
        drop(queue);
        self.wake.notify_one();
    }

    /// The oldest events (at most one batch) and the last one's sequence.
    fn peek_batch(&self) -> Option<(Vec<TraceEvent>, u64)> {
        let queue = self.lock();
        let batch: Vec<&(u64, TraceEvent)> = queue
            .events
            .iter()
            .take(self.options.batch.max(1))
            .collect();
        let last = batch.last()?.0;
        Some((batch.into_iter().map(|(_, e)| e.clone()).collect(), last))
    }

    /// Removes the events up to `last` that are still there (some may have
    /// been dropped meanwhile).
    fn remove_through(&self, last: u64) {
        let mut queue = self.lock();
        while queue.events.front().is_some_and(|(seq, _)| *seq <= last) {
            queue.events.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.lock().events.len()
    }
}

impl TraceReporter {
    /// A reporter that sends to the hub through `connection`, or, with
    /// `None`, a disabled one. Spawns its task: call within a Tokio
    /// runtime.
    pub fn start(connection: Option<HubConnection>, options: TraceOptions) -> Self {
        let Some(connection) = connection else {
            return Self::disabled();
        };
        let dropped_metric =
            metrics::counter!(DROPPED_METRIC, "exchange" => connection.exchange.to_string());
        // Present (at zero) from the start, for dashboards and alerts.
        dropped_metric.increment(0);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
            dropped_metric,
            options,
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(Sender::new(connection, shared.clone()).run(stop.clone()));
        Self {
            handle: Some(Arc::new(Handle {
                shared,
                stop,
                task: Mutex::new(Some(task)),
            })),
        }
    }

    /// A reporter that accepts events and sends nothing (no hub channel).
    pub fn disabled() -> Self {
        Self { handle: None }
    }

    /// Whether events go anywhere.
    pub fn is_enabled(&self) -> bool {
        self.handle.is_some()
    }

    /// Buffers `event` for the hub; never waits. When the buffer is full
    /// the oldest event is dropped (and counted).
    pub fn report(&self, event: TraceEvent) {
        if let Some(handle) = &self.handle {
            handle.shared.push(event);
        }
    }

    /// Events dropped so far because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.handle
            .as_ref()
            .map_or(0, |h| h.shared.dropped.load(Ordering::Relaxed))
    }

    /// The events waiting to be sent, oldest first (for operators and
    /// tests).
    pub fn pending(&self) -> Vec<TraceEvent> {
        self.handle.as_ref().map_or_else(Vec::new, |h| {
            h.shared
                .lock()
                .events
                .iter()
                .map(|(_, e)| e.clone())
                .collect()
        })
    }

    /// Events waiting to be sent.
    pub fn buffered(&self) -> usize {
        self.handle.as_ref().map_or(0, |h| h.shared.len())
    }

    /// Sends what is buffered (for at most [`TraceOptions::shutdown_grace`])
    /// and stops the task; later events are not sent. For every clone.
    pub async fn close(&self) {
        let Some(handle) = &self.handle else { return };
        handle.stop.cancel();
        let task = handle.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The background task.
struct Sender {
    connection: HubConnection,
    shared: Arc<Shared>,
    client: Option<HubClient>,
    failing: bool,
}

/// First pause after a failed call, and the longest.
const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Sender {
    fn new(connection: HubConnection, shared: Arc<Shared>) -> Self {
        Self {
            connection,
            shared,
            client: None,
            failing: false,
        }
    }

    async fn run(mut self, stop: CancellationToken) {
        let options = self.shared.options.clone();
        let mut backoff = BACKOFF_MIN;
        while !stop.is_cancelled() {
            if self.shared.len() == 0 {
                tokio::select! {
                    _ = self.shared.wake.notified() => {}
                    _ = stop.cancelled() => break,
                }
                // Let a batch gather, unless one is full already.
                if self.shared.len() < options.batch {
                    tokio::select! {
                        _ = tokio::time::sleep(options.linger) => {}
                        _ = stop.cancelled() => break,
                    }
                }
            }
            match self.send_batch().await {
                Ok(()) => backoff = BACKOFF_MIN,
                Err(()) => {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        let flush = async {
            while self.shared.len() > 0 {
                if self.send_batch().await.is_err() {
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
            }
        };
        if tokio::time::timeout(options.shutdown_grace, flush)
            .await
            .is_err()
        {
            tracing::warn!(
                unsent = self.shared.len(),
                "trace events not sent to the hub before stopping"
            );
        }
    }

    /// Sends the oldest batch; Ok also when there was nothing to send.
    async fn send_batch(&mut self) -> Result<(), ()> {
        let Some((events, last)) = self.shared.peek_batch() else {
            return Ok(());
        };
        let count = events.len();
        match self.call(events).await {
            Ok(recorded) => {
                self.shared.remove_through(last);
                if self.failing {
                    tracing::info!("trace events reach the hub again");
                    self.failing = false;
                }
                tracing::trace!(count, recorded, "trace events sent");
                Ok(())
            }
            Err(reason) => {
                self.client = None;
                if !self.failing {
                    tracing::warn!(%reason, buffered = self.shared.len(), "cannot send trace events to the hub; keeping them and retrying");
                    self.failing = true;
                }
                Err(())
            }
        }
    }

    async fn call(&mut self, events: Vec<TraceEvent>) -> Result<u32, String> {
        let timeout = self.shared.options.call_timeout;
        let attempt = async {
            if self.client.is_none() {
                self.client = Some(self.connection.connect().await.map_err(|e| e.to_string())?);
            }
            let client = self.client.as_mut().ok_or("no client")?;
            client
                .report_events(hubpb::ReportEventsRequest { events })
                .await
                .map(|r| r.into_inner().recorded)
                .map_err(|s| s.to_string())
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {} s", timeout.as_secs())))
    }
}

#[cfg(test)]
mod tests;
