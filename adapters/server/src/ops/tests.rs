//! Unit tests of the adapter's metrics and trace events: recorded through
//! the process's Prometheus recorder (each test with its own exchange
//! label) and a trace reporter whose hub never answers (the events stay
//! buffered, to be read back).

use std::collections::BTreeMap;
use std::time::Duration;

use lhcie_adapter_kit::Incoming;
use lhcie_proto::canonical as pb;

use super::*;

fn ops(exchange: &str) -> Ops {
    Ops::buffering(exchange)
}

/// The value of the sample `name` with exactly these labels (0 if none).
fn sample(name: &str, labels: &[(&str, &str)]) -> f64 {
    let text = lhcie_runtime::metrics::handle().unwrap().render();
    let wanted: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric, body) = series.split_once('{').unwrap_or((series, "}"));
        if metric != name {
            continue;
        }
        let found: BTreeMap<String, String> = body
            .trim_end_matches('}')
            .split(',')
            .filter(|p| !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        if found == wanted {
            return value.parse().unwrap();
        }
    }
    0.0
}

fn events(ops: &Ops) -> Vec<(String, i32, String, String)> {
    ops.buffered_events()
        .into_iter()
        .map(|(id, stage, code, detail)| (id, stage as i32, code, detail))
        .collect()
}

#[tokio::test]
async fn answers_are_counted_timed_and_traced_when_the_id_is_known() {
    let ops = ops("test-answers");
    let started = Instant::now();
    ops.answered(started, Received::Accepted, Some("m-1"), "AA", "");
    ops.answered(started, Received::Duplicate, Some("m-1"), "AA", "duplicate");
    ops.answered(started, Received::Refused, None, "AR", "unparseable");
    ops.answered(started, Received::Refused, Some("m-2"), "AE", "102");
    ops.answered(
        started,
        Received::HubRejected,
        Some("m-3"),
        "AE",
        "invalid-nhs-number",
    );
    let labels = |outcome| {
        [
            ("exchange", "test-answers"),
            ("kind", "hl7v2-mllp"),
            ("outcome", outcome),
        ]
    };
    let received = "lhcie_adapter_received_total";
    assert_eq!(sample(received, &labels("accepted")), 1.0);
    assert_eq!(sample(received, &labels("duplicate")), 1.0);
    assert_eq!(sample(received, &labels("refused")), 2.0);
    assert_eq!(sample(received, &labels("hub-rejected")), 1.0);
    // Present at zero from the start.
    let deliveries = "lhcie_adapter_deliveries_total";
    assert_eq!(sample(deliveries, &labels("failed")), 0.0);
    assert!(
        lhcie_runtime::metrics::handle()
            .unwrap()
            .render()
            .contains("lhcie_adapter_deliveries_total{exchange=\"test-answers\",kind=\"hl7v2-mllp\",outcome=\"failed\"} 0")
    );
    assert_eq!(
        sample(
            "lhcie_adapter_local_answer_seconds_count",
            &[("exchange", "test-answers"), ("kind", "hl7v2-mllp")]
        ),
        5.0
    );
    let received_from_local = TraceStage::ReceivedFromLocal as i32;
    assert_eq!(
        events(&ops),
        [
            ("m-1".into(), received_from_local, "AA".into(), "".into()),
            (
                "m-1".into(),
                received_from_local,
                "AA".into(),
                "duplicate".into()
            ),
            (
                "m-2".into(),
                TraceStage::RefusedAtBoundary as i32,
                "AE".into(),
                "102".into()
            ),
            (
                "m-3".into(),
                received_from_local,
                "AE".into(),
                "invalid-nhs-number".into()
            ),
        ]
    );
}

fn incoming(decided_at: i64) -> Incoming {
    let mut envelope = pb::Envelope {
        message_id: "m-9".into(),
        category: pb::Category::CareEvent as i32,
        created_at: Some(Default::default()),
        ..Default::default()
    };
    if let Some(created_at) = envelope.created_at.as_mut() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        created_at.seconds = now.as_secs() as i64 - 2;
    }
    Incoming {
        envelope,
        recipients: vec![],
        redelivered: false,
        decided_at_unix_nanos: decided_at,
    }
}

fn unix_nanos_ago(seconds: u64) -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    (now - Duration::from_secs(seconds)).as_nanos() as i64
}

#[tokio::test]
async fn a_delivery_accepted_records_its_latencies_and_is_traced() {
    let ops = ops("test-delivered");
    let mut tracker = ops.delivery(&incoming(unix_nanos_ago(1)));
    for _ in 0..4 {
        tracker.attempt();
        tracker.retry("", "no-connection");
    }
    tracker.attempt();
    tracker.delivered("AA", "");
    let labels = |outcome| {
        [
            ("exchange", "test-delivered"),
            ("kind", "hl7v2-mllp"),
            ("outcome", outcome),
        ]
    };
    let deliveries = "lhcie_adapter_deliveries_total";
    assert_eq!(sample(deliveries, &labels("retry")), 4.0);
    assert_eq!(sample(deliveries, &labels("delivered")), 1.0);
    let by_kind = [("exchange", "test-delivered"), ("kind", "hl7v2-mllp")];
    assert_eq!(
        sample("lhcie_adapter_local_delivery_seconds_count", &by_kind),
        1.0
    );
    assert_eq!(
        sample("lhcie_adapter_hub_to_local_seconds_count", &by_kind),
        1.0
    );
    assert!(sample("lhcie_adapter_hub_to_local_seconds_sum", &by_kind) >= 1.0);
    let by_category = [("exchange", "test-delivered"), ("category", "care-event")];
    assert_eq!(
        sample("lhcie_adapter_end_to_end_seconds_count", &by_category),
        1.0
    );
    assert!(sample("lhcie_adapter_end_to_end_seconds_sum", &by_category) >= 1.0);
    // Retries 1, 2 and 4 are traced, not 3.
    let retry = TraceStage::DeliveryRetry as i32;
    assert_eq!(
        events(&ops),
        [
            (
                "m-9".into(),
                retry,
                "".into(),
                "attempt=1 no-connection".into()
            ),
            (
                "m-9".into(),
                retry,
                "".into(),
                "attempt=2 no-connection".into()
            ),
            (
                "m-9".into(),
                retry,
                "".into(),
                "attempt=4 no-connection".into()
            ),
            (
                "m-9".into(),
                TraceStage::DeliveredToLocal as i32,
                "AA".into(),
                "".into()
            ),
        ]
    );
}

#[tokio::test]
async fn failures_notifications_and_duplicates() {
    let ops = ops("test-failed");
    // No decision time known: no hub-to-local sample.
    let mut tracker = ops.delivery(&incoming(0));
    tracker.attempt();
    tracker.failed("AR", "local-refused");
    let mut ack = ops.delivery(&incoming(0));
    ack.attempt();
    ack.notified("m-original", "AA", "not-permitted");
    ops.duplicate_delivery();
    let labels = |outcome| {
        [
            ("exchange", "test-failed"),
            ("kind", "hl7v2-mllp"),
            ("outcome", outcome),
        ]
    };
    let deliveries = "lhcie_adapter_deliveries_total";
    assert_eq!(sample(deliveries, &labels("failed")), 1.0);
    assert_eq!(sample(deliveries, &labels("delivered")), 1.0);
    assert_eq!(sample(deliveries, &labels("duplicate")), 1.0);
    let by_kind = [("exchange", "test-failed"), ("kind", "hl7v2-mllp")];
    assert_eq!(
        sample("lhcie_adapter_hub_to_local_seconds_count", &by_kind),
        0.0
    );
    assert_eq!(
        events(&ops),
        [
            (
                "m-9".into(),
                TraceStage::DeliveryFailed as i32,
                "AR".into(),
                "local-refused".into()
            ),
            (
                "m-original".into(),
                TraceStage::LocalNotified as i32,
                "AA".into(),
                "not-permitted".into()
            ),
        ]
    );
}

#[test]
fn categories_are_labelled_in_kebab_case() {
    use super::delivery::category_label;
    assert_eq!(
        category_label(pb::Category::DischargeSummary as i32),
        "discharge-summary"
    );
    assert_eq!(
        category_label(pb::Category::EndOfLifeCarePlan as i32),
        "end-of-life-care-plan"
    );
    assert_eq!(category_label(99), "unspecified");
}
