//! The hub's metrics, exposed in the Prometheus text format on the admin
//! endpoint (`GET /metrics`). Names and labels are listed in
//! `docs/metrics.md`. Labels are exchange ids, categories, ingresses,
//! reason codes and `true`/`false` only: never a patient identifier,
//! message id or ODS code of a patient's GP.
//!
//! The recorder is process-wide (the `metrics` crate's global recorder),
//! installed once by [`install`]; the registry copy's metrics
//! (`lhcie_hub_registry_*`, from `lhcie-registry-client`) are exposed with the
//! hub's.

use std::time::Duration;

use lhcie_hub_core::AuditRecord;
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
        "lhcie_hub_trace_events_refused_total",
        "Trace events refused: reported by an exchange that neither submitted nor received the message."
    );
    metrics::describe_counter!(
        "lhcie_hub_replays_total",
        "Dead letters replayed, by destination and outcome."
    );
    metrics::describe_counter!(
        "lhcie_hub_emergency_overrides_total",
        "Recipients reached by emergency (break-glass) override, by submitting exchange and whether the patient's own refusal was overridden."
    );
    metrics::describe_gauge!(
        "lhcie_hub_emergency_reviews_pending",
        "Emergency overrides waiting for a reviewer on the dashboard."
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

/// The `refusal_overridden` label: whether the patient's own refusal was
/// overridden (the `notify-patient` obligation).
fn refusal_label(refusal_overridden: bool) -> &'static str {
    if refusal_overridden { "true" } else { "false" }
}

/// Makes every exchange's emergency-override series exist at zero, so the
/// first override after a start is an increase Prometheus (and the alert)
/// can see.
pub fn register_emergency_overrides<'a>(exchanges: impl IntoIterator<Item = &'a str>) {
    for exchange in exchanges {
        for refusal_overridden in [false, true] {
            metrics::counter!(
                "lhcie_hub_emergency_overrides_total",
                "exchange" => exchange.to_owned(),
                "refusal_overridden" => refusal_label(refusal_overridden)
            )
            .increment(0);
        }
    }
}

/// A routed envelope's emergency overrides, one per recipient reached by
/// one (from its audit record).
pub fn emergency_overrides(audit: &AuditRecord) {
    for recipient in audit.recipients().iter().filter(|r| r.emergency_override()) {
        metrics::counter!(
            "lhcie_hub_emergency_overrides_total",
            "exchange" => audit.submitted_by.clone(),
            "refusal_overridden" => refusal_label(recipient.notify_patient())
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

/// The reasons a dead letter may have as a metric label: the policy's
/// (withheld for replay), the hub's rejections, the AMQP ingress's own, and
/// RabbitMQ's dead-letter reasons. [`dead_letter_reason_label`] maps
/// anything else to `other`.
pub const DEAD_LETTER_REASONS: [&str; 17] = [
    "no-agreement",
    "no-recorded-consent",
    lhcie_model::hub_response::INVALID_ENVELOPE,
    lhcie_model::hub_response::UNKNOWN_RECIPIENT,
    lhcie_model::hub_response::UNKNOWN_CATEGORY,
    lhcie_model::hub_response::INVALID_NHS_NUMBER,
    lhcie_model::hub_response::SENDER_NOT_AUTHORISED,
    lhcie_model::hub_response::TOO_LARGE,
    "unidentified-publisher",
    "not-an-envelope",
    "rejected-by-recipient",
    "delivery_limit",
    "rejected",
    "expired",
    "maxlen",
    "dead-lettered",
    "identity-unverified",
];

/// `reason` if it is one of [`DEAD_LETTER_REASONS`], else `other`: a
/// reason can come from a header a publisher set, and a label must be
/// neither free text (possibly patient data) nor unbounded.
pub fn dead_letter_reason_label(reason: &str) -> &'static str {
    DEAD_LETTER_REASONS
        .iter()
        .find(|known| **known == reason)
        .copied()
        .unwrap_or("other")
}

/// A dead letter was kept (by the policy's withholding or from a broker
/// dead-letter queue). The reason is mapped to the known set and the
/// category to a category code (`unknown` otherwise).
pub fn dead_lettered(destination: &str, category: Option<&str>, reason: &str) {
    let category = category
        .and_then(|c| {
            lhcie_model::Category::ALL
                .iter()
                .find(|known| known.as_str() == c)
        })
        .map_or("unknown", |c| c.as_str());
    metrics::counter!(
        "lhcie_hub_dead_letters_total",
        "destination" => destination.to_owned(),
        "category" => category,
        "reason" => dead_letter_reason_label(reason)
    )
    .increment(1);
}

/// Trace events an exchange reported for a message it neither submitted
/// nor received (refused, not recorded).
pub fn trace_events_refused(exchange: &str, count: usize) {
    metrics::counter!(
        "lhcie_hub_trace_events_refused_total",
        "exchange" => exchange.to_owned(),
        "reason" => "not-a-party"
    )
    .increment(count as u64);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_reasons_are_labelled_from_the_known_set_only() {
        for known in DEAD_LETTER_REASONS {
            assert_eq!(dead_letter_reason_label(known), known);
        }
        for unknown in [
            "",
            "Patient 943 476 5919 refused",
            "no-agreement ",
            "NO-AGREEMENT",
            &"x".repeat(10_000),
        ] {
            assert_eq!(dead_letter_reason_label(unknown), "other");
        }
    }

    #[test]
    fn every_hub_rejection_and_held_reason_is_known() {
        use lhcie_hub_core::routing::RejectReason;
        for reason in RejectReason::ALL {
            assert_eq!(dead_letter_reason_label(reason.code()), reason.code());
        }
        for held in crate::router::HELD_FOR_REPLAY {
            assert_eq!(dead_letter_reason_label(held), held);
        }
    }
}
