//! Operations: what the adapter tells operators about each message, as
//! metrics ([`metrics`], on `[metrics] listen`) and as trace events sent
//! to the hub (the kit's [`TraceReporter`], shown in the hub's
//! `/audit/messages/<id>/events`).
//!
//! Every kind reports through one [`Ops`] handle (in the
//! [`AdapterContext`](crate::context::AdapterContext)):
//!
//! | when | metric `outcome` | trace stage | `local_code` | `detail` |
//! |---|---|---|---|---|
//! | a message is stored and answered positively | `received: accepted` | `received-from-local` | the answer: HL7 `AA`, HTTP `200`/`201` | FHIR: the ITK3 code (`20013`) |
//! | a resend of a known message | `received: duplicate` | `received-from-local` | the answer (`AA`; `200`) | `duplicate` (HL7), `20007` (FHIR) |
//! | the hub's rejection came in time for the answer | `received: hub-rejected` | `received-from-local` | `AE`/`AR`; `422` | the hub's response code (e.g. `invalid-nhs-number`) |
//! | refused at the boundary (unreadable, invalid, not stored) | `received: refused` | `refused-at-boundary`, only when a message id is known | `AE`/`AR`; the HTTP status | the refusal's code, never a value from the message |
//! | the local system accepted a delivery | `deliveries: delivered` | `delivered-to-local` | its ACK code (`AA`/`CA`); HTTP status | FHIR: its ITK3 code if any |
//! | an attempt failed for now | `deliveries: retry` | `delivery-retry` (attempts 1, 2, 4, 8, …) | HTTP status if any | `attempt=<n> <problem code>` |
//! | refused for good / cannot be written: dead-lettered | `deliveries: failed` | `delivery-failed` | its ACK code; HTTP status | a reason code (`local-refused`, `not-renderable`, …) |
//! | a delivery already handled (de-duplicated) | `deliveries: duplicate` | — | | |
//! | an acknowledgement delivered back (HL7 ACK message, FHIR response message) was accepted by the local system | `deliveries: delivered` | `local-notified`, with the **original** message's id | its answer | the acknowledgement's code |
//! | a late rejection from the outbox was accepted by the local system | — | `local-notified` | its answer | the hub's response code |
//!
//! Codes only: no payload, NHS number, name or free text from a message
//! is ever put in a label or an event.

pub mod delivery;
pub mod metrics;

use std::sync::Arc;
use std::time::Instant;

use lhcie_adapter_kit::TraceReporter;
use lhcie_adapter_kit::trace::{TraceStage, event};
use lhcie_model::ExchangeId;

pub use delivery::DeliveryTracker;

/// The most characters of an event's `detail` (a code, not text; the hub
/// keeps 200).
pub const MAX_DETAIL: usize = 100;

/// What became of a message from the local system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Durably in the outbox and answered positively.
    Accepted,
    /// Refused at the boundary; nothing forwarded.
    Refused,
    /// A resend of a message already in the outbox (not stored again).
    Duplicate,
    /// Stored and forwarded, and the hub's rejection came in time to be
    /// the answer.
    HubRejected,
}

impl Received {
    const ALL: [Received; 4] = [
        Received::Accepted,
        Received::Refused,
        Received::Duplicate,
        Received::HubRejected,
    ];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Received::Accepted => "accepted",
            Received::Refused => "refused",
            Received::Duplicate => "duplicate",
            Received::HubRejected => "hub-rejected",
        }
    }
}

/// What became of one delivery attempt to the local system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The local system accepted it.
    Delivered,
    /// A transient failure; it is attempted again.
    Retry,
    /// Refused for good, or cannot be written: dead-lettered.
    Failed,
    /// Already handled; not delivered again.
    Duplicate,
}

impl DeliveryOutcome {
    const ALL: [DeliveryOutcome; 4] = [
        DeliveryOutcome::Delivered,
        DeliveryOutcome::Retry,
        DeliveryOutcome::Failed,
        DeliveryOutcome::Duplicate,
    ];

    /// The `outcome` label.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Delivered => "delivered",
            DeliveryOutcome::Retry => "retry",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Duplicate => "duplicate",
        }
    }
}

/// The metrics and trace events of one adapter. Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    inner: Arc<Inner>,
}

struct Inner {
    exchange: String,
    kind: &'static str,
    trace: TraceReporter,
    received: [::metrics::Counter; 4],
    deliveries: [::metrics::Counter; 4],
    local_answer: ::metrics::Histogram,
    local_delivery: ::metrics::Histogram,
    hub_to_local: ::metrics::Histogram,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops")
            .field("exchange", &self.inner.exchange)
            .field("kind", &self.inner.kind)
            .field("trace", &self.inner.trace)
            .finish()
    }
}

impl Ops {
    /// The handle of `exchange`'s adapter of kind `kind`, reporting events
    /// through `trace`. Create it after [`metrics::install`] (or its
    /// metrics go nowhere); the counters appear at zero.
    pub fn new(exchange: &ExchangeId, kind: &'static str, trace: TraceReporter) -> Self {
        let exchange = exchange.to_string();
        let labelled = |name: &'static str, outcome: &'static str| {
            let counter = ::metrics::counter!(name,
                "exchange" => exchange.clone(), "kind" => kind, "outcome" => outcome);
            counter.increment(0);
            counter
        };
        let histogram = |name: &'static str| ::metrics::histogram!(name, "exchange" => exchange.clone(), "kind" => kind);
        Self {
            inner: Arc::new(Inner {
                received: Received::ALL.map(|o| labelled(metrics::RECEIVED, o.as_str())),
                deliveries: DeliveryOutcome::ALL.map(|o| labelled(metrics::DELIVERIES, o.as_str())),
                local_answer: histogram(metrics::LOCAL_ANSWER),
                local_delivery: histogram(metrics::LOCAL_DELIVERY),
                hub_to_local: histogram(metrics::HUB_TO_LOCAL),
                exchange,
                kind,
                trace,
            }),
        }
    }

    /// The exchange served.
    pub fn exchange(&self) -> &str {
        &self.inner.exchange
    }

    /// The trace reporter (to close it on shutdown).
    pub fn trace(&self) -> &TraceReporter {
        &self.inner.trace
    }

    /// A message from the local system was answered: counts `outcome`,
    /// times the answer from `started`, and (with a message id) reports
    /// `received-from-local`, or `refused-at-boundary` for
    /// [`Received::Refused`].
    pub fn answered(
        &self,
        started: Instant,
        outcome: Received,
        message_id: Option<&str>,
        local_code: &str,
        detail: &str,
    ) {
        self.inner.received[outcome as usize].increment(1);
        self.inner
            .local_answer
            .record(started.elapsed().as_secs_f64());
        if let Some(message_id) = message_id {
            let stage = match outcome {
                Received::Refused => TraceStage::RefusedAtBoundary,
                _ => TraceStage::ReceivedFromLocal,
            };
            self.report(message_id, stage, local_code, detail);
        }
    }

    /// A delivery was skipped as already handled.
    pub fn duplicate_delivery(&self) {
        self.count_delivery(DeliveryOutcome::Duplicate);
    }

    /// Follows one delivery's attempts ([`DeliveryTracker`]).
    pub fn delivery(&self, incoming: &lhcie_adapter_kit::Incoming) -> DeliveryTracker {
        DeliveryTracker::new(self.clone(), incoming)
    }

    /// A trace event about `message_id`, stamped now (`detail` cut to
    /// [`MAX_DETAIL`] characters).
    pub fn report(&self, message_id: &str, stage: TraceStage, local_code: &str, detail: &str) {
        let detail = match detail.char_indices().nth(MAX_DETAIL) {
            Some((end, _)) => &detail[..end],
            None => detail,
        };
        self.inner
            .trace
            .report(event(message_id, stage, local_code, detail));
    }

    fn count_delivery(&self, outcome: DeliveryOutcome) {
        self.inner.deliveries[outcome as usize].increment(1);
    }

    /// For tests: an `Ops` for `exchange` (kind `hl7v2-mllp`) recording
    /// into the process's recorder, whose trace events stay buffered (its
    /// hub never answers) to be read with [`Ops::buffered_events`].
    #[cfg(test)]
    pub fn buffering(exchange: &str) -> Self {
        metrics::install();
        let exchange = ExchangeId::parse(exchange).expect("exchange id");
        let unreachable = {
            // nodelay: test-only (reserves a free port; nothing is accepted)
            let socket = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            format!("http://{}", socket.local_addr().expect("its address"))
        };
        let trace = TraceReporter::start(
            Some(lhcie_adapter_kit::HubConnection {
                endpoint: unreachable,
                tls: None,
                exchange: exchange.clone(),
            }),
            lhcie_adapter_kit::TraceOptions {
                linger: std::time::Duration::from_secs(3600),
                ..lhcie_adapter_kit::TraceOptions::default()
            },
        );
        Self::new(&exchange, "hl7v2-mllp", trace)
    }

    /// For tests: the buffered events as (message id, stage, code,
    /// detail).
    #[cfg(test)]
    pub fn buffered_events(&self) -> Vec<(String, TraceStage, String, String)> {
        self.inner
            .trace
            .pending()
            .into_iter()
            .map(|e| (e.message_id.clone(), e.stage(), e.local_code, e.detail))
            .collect()
    }
}

#[cfg(test)]
mod tests;
