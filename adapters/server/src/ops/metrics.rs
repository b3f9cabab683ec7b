//! The adapter's Prometheus metrics: names, help texts, and the endpoint.
//!
//! Served on `[metrics] listen` (`GET /metrics`, `GET /healthz`) by the
//! shared [`lhcie_runtime::metrics`] helper. Every name is listed in
//! `docs/metrics.md`. Labels: `exchange` (this adapter's exchange id),
//! `kind` (`hl7v2-mllp`, `fhir-r4`), `outcome` (the codes below),
//! `category` (kebab-case canonical category): never a patient
//! identifier, message id or free text.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use lhcie_adapter_kit::Outbox;
use lhcie_config::adapter::AdapterMetricsConfig;
use tokio_util::sync::CancellationToken;

/// Messages from the local system, by `outcome` ([`super::Received`]).
pub const RECEIVED: &str = "lhcie_adapter_received_total";
/// Deliveries to the local system, by `outcome` ([`super::DeliveryOutcome`]).
pub const DELIVERIES: &str = "lhcie_adapter_deliveries_total";
/// Messages in the outbox waiting for the hub's final answer.
pub const OUTBOX_DEPTH: &str = "lhcie_adapter_outbox_depth";
/// From a message arriving from the local system to the answer sent to it.
pub const LOCAL_ANSWER: &str = "lhcie_adapter_local_answer_seconds";
/// One delivery attempt to the local system until its acceptance.
pub const LOCAL_DELIVERY: &str = "lhcie_adapter_local_delivery_seconds";
/// From the hub's decision to the local system's acceptance.
pub const HUB_TO_LOCAL: &str = "lhcie_adapter_hub_to_local_seconds";
/// From the envelope's `created_at` to the local system's acceptance.
pub const END_TO_END: &str = "lhcie_adapter_end_to_end_seconds";

/// MLLP connections closed as soon as accepted, by `reason`
/// (`per-peer-limit`).
pub const MLLP_CONNECTIONS_REFUSED: &str = "lhcie_adapter_mllp_connections_refused_total";
/// MLLP frames over `[hl7v2.limits] max_frame_bytes`, answered `AR`.
pub const MLLP_FRAMES_TOO_LARGE: &str = "lhcie_adapter_mllp_frames_too_large_total";

/// The histograms (they get `lhcie_runtime::metrics::LATENCY_BUCKETS`).
pub const HISTOGRAMS: [&str; 4] = [LOCAL_ANSWER, LOCAL_DELIVERY, HUB_TO_LOCAL, END_TO_END];

/// How often the outbox depth gauge is refreshed (besides heartbeats).
const DEPTH_REFRESH: Duration = Duration::from_secs(1);

/// Installs the recorder and describes the metrics. Call before anything
/// records (handles taken earlier record nothing). False if another
/// recorder was installed first.
pub fn install() -> bool {
    let installed = lhcie_runtime::metrics::install(&HISTOGRAMS).is_some();
    metrics::describe_counter!(
        RECEIVED,
        "Messages from the local system, by outcome (accepted, refused, duplicate, hub-rejected)."
    );
    metrics::describe_counter!(
        DELIVERIES,
        "Deliveries to the local system, by outcome (delivered, retry, failed, duplicate)."
    );
    metrics::describe_gauge!(
        OUTBOX_DEPTH,
        "Messages in the outbox waiting for the hub's final answer."
    );
    metrics::describe_histogram!(
        LOCAL_ANSWER,
        metrics::Unit::Seconds,
        "From a message arriving from the local system to the answer sent to it."
    );
    metrics::describe_histogram!(
        LOCAL_DELIVERY,
        metrics::Unit::Seconds,
        "One delivery attempt to the local system until its acceptance."
    );
    metrics::describe_histogram!(
        HUB_TO_LOCAL,
        metrics::Unit::Seconds,
        "From the hub's decision to the local system's acceptance."
    );
    metrics::describe_histogram!(
        END_TO_END,
        metrics::Unit::Seconds,
        "From the envelope's creation to the local system's acceptance, by category."
    );
    metrics::describe_counter!(
        MLLP_CONNECTIONS_REFUSED,
        "MLLP connections closed as soon as accepted, by reason (per-peer-limit)."
    );
    metrics::describe_counter!(
        MLLP_FRAMES_TOO_LARGE,
        "MLLP frames over the maximum frame size, answered AR and the connection closed."
    );
    metrics::describe_counter!(
        lhcie_adapter_kit::trace::DROPPED_METRIC,
        "Trace events dropped because the buffer for the hub was full."
    );
    installed
}

/// With `[metrics]`: installs the recorder and serves the endpoint until
/// `shutdown`; returns the bound address. Without: nothing (`None`).
pub async fn serve(
    config: Option<&AdapterMetricsConfig>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<SocketAddr>> {
    let Some(config) = config else {
        return Ok(None);
    };
    if !install() {
        tracing::warn!(
            "another metrics recorder is installed; the adapter's metrics are not recorded"
        );
    }
    let bound = lhcie_runtime::metrics::serve(config.listen, shutdown)
        .await
        .with_context(|| format!("binding the metrics endpoint on {}", config.listen))?;
    tracing::info!(listen = %bound, "metrics endpoint ready (GET /metrics, /healthz)");
    Ok(Some(bound))
}

/// The outbox depth gauge of `exchange`, read from the outbox.
#[derive(Clone)]
pub struct OutboxDepth {
    outbox: Outbox,
    gauge: metrics::Gauge,
}

impl OutboxDepth {
    /// The gauge for `exchange`'s outbox.
    pub fn new(exchange: &str, outbox: Outbox) -> Self {
        Self {
            gauge: metrics::gauge!(OUTBOX_DEPTH, "exchange" => exchange.to_owned()),
            outbox,
        }
    }

    /// The depth now (also sets the gauge): what heartbeats report.
    pub fn read(&self) -> u64 {
        let depth = self.outbox.pending_len();
        self.gauge.set(depth as f64);
        depth
    }

    /// Keeps the gauge current between heartbeats, until `shutdown`.
    pub async fn refresh(self, shutdown: CancellationToken) {
        loop {
            self.read();
            if !crate::runtime::pause(DEPTH_REFRESH, &shutdown).await {
                return;
            }
        }
    }
}
