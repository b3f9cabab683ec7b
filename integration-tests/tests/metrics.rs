//! The hub's Prometheus exposition after known traffic: parsed (not
//! grepped), every counter and the routing-time histogram as expected, and
//! no patient identifier anywhere in it.

use std::time::Duration;

use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::prometheus::{Sample, parse, sum, value};
use lhcie_integration_tests::traffic::{self, discharge_summary, with_patient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exposition_counts_known_traffic_without_patient_identifiers() {
    with_env(TestEnv::new("metrics"), |env| async move {
        let hub = HubProcess::start(&env).await;
        let permitted = || discharge_summary("nwl-imperial", "RYJ", &["RAL"], 0);
        let envelopes = vec![
            permitted(),
            permitted(),
            // The policy: this patient refused the Royal Free.
            with_patient(permitted(), DENIED_PATIENT),
            // No exchange serves RJ1: rejected.
            discharge_summary("nwl-imperial", "RYJ", &["RJ1"], 0),
        ];
        let nhs_numbers: Vec<String> = envelopes
            .iter()
            .filter_map(|e| e.patient.as_ref().map(|p| p.nhs_number.clone()))
            .collect();
        let answers = traffic::submit_all(
            env.connection("nwl-imperial"),
            envelopes,
            10,
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(answers.len(), 4);

        let (status, text) = hub.get("/metrics").await.unwrap();
        assert_eq!(status, 200, "{text}");
        let samples = parse(&text);
        let imperial = ("exchange", "nwl-imperial");
        let summary = ("category", "discharge-summary");
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_envelopes_received_total",
                &[("ingress", "grpc"), imperial]
            ),
            4.0
        );
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_envelopes_routed_total",
                &[imperial, summary]
            ),
            3.0
        );
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_copies_published_total",
                &[("exchange", "ncl-royal-free"), summary]
            ),
            2.0
        );
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_recipients_denied_total",
                &[imperial, summary, ("reason", "patient-denied-organisation")]
            ),
            1.0
        );
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_envelopes_rejected_total",
                &[imperial, ("reason", "unknown-recipient")]
            ),
            1.0
        );
        // The histogram: a count of 4, cumulative buckets ending in +Inf.
        let grpc = [("ingress", "grpc")];
        assert_eq!(
            value(&samples, "lhcie_hub_routing_seconds_count", &grpc),
            4.0
        );
        assert!(value(&samples, "lhcie_hub_routing_seconds_sum", &grpc) > 0.0);
        let buckets: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == "lhcie_hub_routing_seconds_bucket")
            .collect();
        assert!(buckets.len() >= 12, "{buckets:?}");
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
        assert_eq!(
            value(
                &samples,
                "lhcie_hub_routing_seconds_bucket",
                &[("le", "+Inf"), grpc[0]]
            ),
            4.0
        );
        // The state gauges, refreshed every 2 s: an adapter that beats is
        // up with the outbox depth it reports, one that never did is down;
        // queue depths come from the broker (nobody consumes the Royal
        // Free's copies here).
        let beating = tokio_util::sync::CancellationToken::new();
        tokio::spawn(lhcie_adapter_kit::heartbeat::heartbeat(
            env.connection("nwl-imperial"),
            "native",
            || 7,
            beating.clone(),
        ));
        let egress = format!("{}.egress.ncl-royal-free", env.prefix);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let text = loop {
            let (_, text) = hub.get("/metrics").await.unwrap();
            let samples = parse(&text);
            let up =
                |exchange: &str| sum(&samples, "lhcie_hub_adapter_up", &[("exchange", exchange)]);
            if up("nwl-imperial") == 1.0
                && sum(
                    &samples,
                    "lhcie_broker_queue_messages",
                    &[("queue", &egress)],
                ) == 2.0
            {
                assert_eq!(up("sel-kings"), 0.0);
                assert_eq!(
                    sum(&samples, "lhcie_hub_adapter_outbox_depth", &[imperial]),
                    7.0
                );
                assert_eq!(
                    sum(
                        &samples,
                        "lhcie_broker_queue_consumers",
                        &[("queue", &egress)]
                    ),
                    0.0
                );
                assert_eq!(
                    sum(
                        &samples,
                        "lhcie_hub_dead_letters_pending",
                        &[("destination", "ncl-royal-free")]
                    ),
                    0.0
                );
                break text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "state gauges not as expected:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        beating.cancel();
        let samples = parse(&text);
        for nhs in &nhs_numbers {
            assert!(
                !text.contains(nhs.as_str()),
                "an NHS number in the exposition"
            );
        }
        for sample in &samples {
            for value in sample.labels.values() {
                assert!(
                    !(value.len() == 10 && value.bytes().all(|b| b.is_ascii_digit())),
                    "a ten-digit label value: {sample:?}"
                );
            }
        }
    })
    .await;
}
