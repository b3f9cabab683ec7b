//! The hub's metrics, exposed in the Prometheus text format on the admin
//! endpoint (`GET /metrics`). Names and labels are listed in
//! `docs/metrics.md`. Labels are exchange ids, categories, ingresses and
//! reason codes only: never a patient identifier, message id or ODS code
//! of a patient's GP.
//!
//! The recorder is process-wide (the `metrics` crate's global recorder),
//! installed once by [`install`]; the registry copy's metrics
//! (`lhcie_hub_registry_*`, from `lhcie-registry-client`) are exposed with the
//! hub's.

use std::time::Duration;

use lhcie_hub_core::audit::Ingress;
use lhcie_hub_core::routing::Routed;
use metrics_exporter_prometheus::PrometheusHandle;

/// The hub's histograms (buckets: `lhcie_runtime::metrics::LATENCY_BUCKETS`).
pub const HISTOGRAMS: [&str; 1] = ["lhcie_hub_routing_seconds"];

/// Installs the Prometheus recorder (once per process) and returns the
/// handle that renders the exposition; `None` if another recorder was
/// installed first.
pub fn install() -> Option<PrometheusHandle> {
    let handle = lhcie_runtime::metrics::install(&HISTOGRAMS)?;
    describe();
    Some(handle)
}

fn describe() {
    metrics::describe_counter!(
        "lhcie_hub_envelopes_received_total",
        "Envelopes received, by ingress and submitting exchange."
    );
    metrics::describe_counter!(
        "lhcie_hub_envelopes_routed_total",
        "Envelopes routed (accepted), by submitting exchange and category."
    );
    metrics::describe_counter!(
        "lhcie_hub_recipients_denied_total",
        "Recipients the policy did not permit, by submitting exchange, category and reason code."
    );
    metrics::describe_counter!(
        "lhcie_hub_copies_published_total",
        "Copies published to egress queues, by receiving exchange and category."
    );
    metrics::describe_counter!(
        "lhcie_hub_envelopes_rejected_total",
        "Envelopes rejected, by submitting exchange and reason code."
    );
    metrics::describe_counter!(
        "lhcie_hub_dead_letters_total",
        "Dead letters kept for an operator, by destination, category and reason."
    );
    metrics::describe_counter!(
        "lhcie_hub_replays_total",
        "Dead letters replayed, by destination and outcome."
    );
    metrics::describe_gauge!(
        "lhcie_hub_dead_letters_pending",
        "Dead letters waiting for replay or discard, by destination."
    );
    metrics::describe_gauge!(
        "lhcie_hub_adapter_up",
        "1 if the exchange's adapter sent a heartbeat within three intervals."
    );
    metrics::describe_gauge!(
        "lhcie_hub_adapter_outbox_depth",
        "The outbox depth an adapter last reported."
    );
    metrics::describe_gauge!(
        "lhcie_hub_adapter_heartbeat_age_seconds",
        "Seconds since an adapter's last heartbeat."
    );
    metrics::describe_gauge!(
        "lhcie_hub_registry_fresh",
        "1 while the registry copy is proven current; 0: messages are held."
    );
    metrics::describe_gauge!(
        "lhcie_hub_registry_proven_age_seconds",
        "Age of the last proof that the registry copy is current."
    );
    metrics::describe_gauge!(
        "lhcie_broker_queue_messages",
        "Messages ready on a queue of the hub's topology, read from the broker."
    );
    metrics::describe_gauge!(
        "lhcie_broker_queue_consumers",
        "Consumers of a queue of the hub's topology."
    );
    metrics::describe_histogram!(
        "lhcie_hub_routing_seconds",
        metrics::Unit::Seconds,
        "From receipt to a durable outcome (answer or ack), by ingress."
    );
}

fn ingress_label(ingress: Ingress) -> &'static str {
    match ingress {
        Ingress::Grpc => "grpc",
        Ingress::Amqp => "amqp",
    }
}

/// An envelope arrived.
pub fn received(ingress: Ingress, exchange: &str) {
    metrics::counter!(
        "lhcie_hub_envelopes_received_total",
        "ingress" => ingress_label(ingress),
        "exchange" => exchange.to_owned()
    )
    .increment(1);
}

/// An envelope was routed: its copies and denied recipients.
pub fn routed(exchange: &str, category: &str, routed: &Routed) {
    metrics::counter!(
        "lhcie_hub_envelopes_routed_total",
        "exchange" => exchange.to_owned(),
        "category" => category.to_owned()
    )
    .increment(1);
    for copy in &routed.copies {
        metrics::counter!(
            "lhcie_hub_copies_published_total",
            "exchange" => copy.exchange.to_string(),
            "category" => category.to_owned()
        )
        .increment(1);
    }
    for denied in routed.denied() {
        let reason = denied
            .decision
            .as_ref()
            .map_or("unknown", |d| d.reason.code());
        metrics::counter!(
            "lhcie_hub_recipients_denied_total",
            "exchange" => exchange.to_owned(),
            "category" => category.to_owned(),
            "reason" => reason
        )
        .increment(1);
    }
}

/// An envelope was rejected.
pub fn rejected(exchange: &str, reason: &'static str) {
    metrics::counter!(
        "lhcie_hub_envelopes_rejected_total",
        "exchange" => exchange.to_owned(),
        "reason" => reason
    )
    .increment(1);
}

/// An envelope's outcome became durable `elapsed` after it arrived.
pub fn routing_time(ingress: Ingress, elapsed: Duration) {
    metrics::histogram!("lhcie_hub_routing_seconds", "ingress" => ingress_label(ingress))
        .record(elapsed.as_secs_f64());
}

/// A dead letter was kept (by the policy's withholding or from a broker
/// dead-letter queue).
pub fn dead_lettered(destination: &str, category: Option<&str>, reason: &str) {
    metrics::counter!(
        "lhcie_hub_dead_letters_total",
        "destination" => destination.to_owned(),
        "category" => category.unwrap_or("unknown").to_owned(),
        "reason" => reason.to_owned()
    )
    .increment(1);
}

/// A dead letter was replayed.
pub fn replayed(destination: &str, outcome: &str) {
    metrics::counter!(
        "lhcie_hub_replays_total",
        "destination" => destination.to_owned(),
        "outcome" => outcome.to_owned()
    )
    .increment(1);
}
