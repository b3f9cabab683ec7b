//! One delivery's attempts to the local system, as metrics and trace
//! events: [`DeliveryTracker`], made by [`Ops::delivery`].
//!
//! A kind calls [`attempt`](DeliveryTracker::attempt) before each try,
//! then exactly one of [`delivered`](DeliveryTracker::delivered) /
//! [`notified`](DeliveryTracker::notified) (accepted),
//! [`retry`](DeliveryTracker::retry) (a transient failure) or
//! [`failed`](DeliveryTracker::failed) (dead-lettered) for it. On
//! acceptance it records how long the attempt took, how long since the
//! hub decided (`Delivery.decided_at_unix_nanos` or the AMQP header
//! `lhcie-decided-at`; not recorded when unknown), and how long since the
//! envelope's `created_at` (by category). Clock skew between hosts can
//! make the last two negative: they are recorded as zero.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use lhcie_adapter_kit::Incoming;
use lhcie_adapter_kit::trace::TraceStage;
use lhcie_proto::canonical as pb;

use super::{DeliveryOutcome, Ops, metrics};

/// Follows one delivery; see the module docs.
#[derive(Debug)]
pub struct DeliveryTracker {
    ops: Ops,
    message_id: String,
    category: String,
    created_at: Option<SystemTime>,
    decided_at: Option<SystemTime>,
    attempt: u32,
    attempt_started: Instant,
}

impl DeliveryTracker {
    pub(super) fn new(ops: Ops, incoming: &Incoming) -> Self {
        let envelope = &incoming.envelope;
        Self {
            ops,
            message_id: envelope.message_id.clone(),
            category: category_label(envelope.category),
            created_at: envelope.created_at.as_ref().and_then(|t| {
                let nanos = u32::try_from(t.nanos).ok()?;
                let seconds = u64::try_from(t.seconds).ok()?;
                Some(UNIX_EPOCH + Duration::new(seconds, nanos))
            }),
            decided_at: u64::try_from(incoming.decided_at_unix_nanos)
                .ok()
                .filter(|n| *n > 0)
                .map(|n| UNIX_EPOCH + Duration::from_nanos(n)),
            attempt: 0,
            attempt_started: Instant::now(),
        }
    }

    /// An attempt starts now.
    pub fn attempt(&mut self) {
        self.attempt += 1;
        self.attempt_started = Instant::now();
    }

    /// The local system accepted it, answering `local_code`:
    /// `delivered-to-local`.
    pub fn delivered(&self, local_code: &str, detail: &str) {
        self.accepted();
        self.ops.report(
            &self.message_id,
            TraceStage::DeliveredToLocal,
            local_code,
            detail,
        );
    }

    /// The local system accepted an acknowledgement of `original` (a
    /// message it sent): `local-notified` on the original's id.
    pub fn notified(&self, original: &str, local_code: &str, detail: &str) {
        self.accepted();
        self.ops
            .report(original, TraceStage::LocalNotified, local_code, detail);
    }

    /// The attempt failed for now (`problem`: a code such as
    /// `no-connection` or `http-503`); another follows. The trace gets
    /// attempts 1, 2, 4, 8, ... only.
    pub fn retry(&self, local_code: &str, problem: &str) {
        self.ops.count_delivery(DeliveryOutcome::Retry);
        if self.attempt.is_power_of_two() {
            self.ops.report(
                &self.message_id,
                TraceStage::DeliveryRetry,
                local_code,
                &format!("attempt={} {problem}", self.attempt),
            );
        }
    }

    /// Refused for good or cannot be written (`reason`: a code such as
    /// `local-refused`): dead-lettered.
    pub fn failed(&self, local_code: &str, reason: &str) {
        self.ops.count_delivery(DeliveryOutcome::Failed);
        self.ops.report(
            &self.message_id,
            TraceStage::DeliveryFailed,
            local_code,
            reason,
        );
    }

    fn accepted(&self) {
        self.ops.count_delivery(DeliveryOutcome::Delivered);
        let inner = &self.ops.inner;
        inner
            .local_delivery
            .record(self.attempt_started.elapsed().as_secs_f64());
        let now = SystemTime::now();
        let since = |at: SystemTime| {
            now.duration_since(at)
                .unwrap_or(Duration::ZERO)
                .as_secs_f64()
        };
        if let Some(decided_at) = self.decided_at {
            inner.hub_to_local.record(since(decided_at));
        }
        if let Some(created_at) = self.created_at {
            ::metrics::histogram!(metrics::END_TO_END,
                "exchange" => inner.exchange.clone(), "category" => self.category.clone())
            .record(since(created_at));
        }
    }
}

/// The kebab-case category (`care-event`, `discharge-summary`, ...) of a
/// wire category; `unspecified` for an unknown one.
pub fn category_label(category: i32) -> String {
    let name = pb::Category::try_from(category)
        .unwrap_or(pb::Category::Unspecified)
        .as_str_name();
    name.trim_start_matches("CATEGORY_")
        .to_ascii_lowercase()
        .replace('_', "-")
}
