//! Operations of the `adapter` binary, end to end: a real hub, two HL7 v2
//! adapters as processes with their `[metrics]` endpoints, python-hl7's
//! `MLLPClient` as Imperial's sending system, in-process MLLP systems as
//! the Royal Free's receiving system and Imperial's system receiving
//! notifications.
//!
//! 1. An ADT arrives: both adapters' `/metrics`, parsed, count it once
//!    (received at the sender, delivered at the receiver, one sample in
//!    each latency histogram), the outbox depth goes back to 0, and the
//!    hub's trace of the message has `received-from-local` (AA) from the
//!    sender and `delivered-to-local` (AA) from the receiver.
//! 2. The receiving system answers AR: `delivery-failed` (AR,
//!    `local-refused`) and a `failed` delivery.
//! 3. The patient has denied the Royal Free: the hub's "not permitted"
//!    comes back to Imperial's adapter, which tells Imperial's system;
//!    `local-notified` on the original message.
//!
//! No NHS number appears in any label value, in the expositions or in the
//! logs. Needs `.venv` (`make python`).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use lhcie_integration_tests::adapter::{AdapterOptions, AdapterProcess, use_hl7v2_adapter};
use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::local_systems;
use lhcie_integration_tests::prometheus::{Sample, scrape, sum, value};
use lhcie_integration_tests::{free_port, repository};
use lhcie_mllp::{ListenerConfig, MllpListener, PeerInfo};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

const SENDER: &str = "nwl-imperial";
const RECEIVER: &str = "ncl-royal-free";
/// Valid NHS numbers (modulus 11) for the delivered and the refused ADT.
const DELIVERED_NHS: &str = "4010232137";
const REFUSED_NHS: &str = "4857773457";
/// Messages whose MSH-10 starts with this are answered AR by the
/// receiving system.
const REFUSE: &str = "REFUSE";

/// A local HL7 v2 system (in process): records every message and answers
/// AA, or AR to a message whose MSH-10 starts with [`REFUSE`]; MSA-2 is
/// the message's MSH-10.
struct LocalSystem {
    received: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: CancellationToken,
}

impl LocalSystem {
    async fn start(port: u16) -> Self {
        let listener = MllpListener::bind(format!("127.0.0.1:{port}"), ListenerConfig::default())
            .await
            .expect("the local system's port");
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let record = received.clone();
        tokio::spawn(listener.serve(
            move |message: Bytes, _peer: PeerInfo| {
                record.lock().unwrap().push(message.to_vec());
                let text = String::from_utf8_lossy(&message).into_owned();
                let control_id = text
                    .split(['\r', '\n'])
                    .next()
                    .and_then(|msh| msh.split('|').nth(9))
                    .unwrap_or_default()
                    .to_owned();
                let code = if control_id.starts_with(REFUSE) {
                    "AR"
                } else {
                    "AA"
                };
                async move {
                    Bytes::from(format!(
                        "MSH|^~\\&|EPR|RAL|PAS|RYJ|20260101120000||ACK^A01^ACK|R{control_id}|P|2.4\rMSA|{code}|{control_id}\r"
                    ))
                }
            },
            stop.clone(),
        ));
        Self { received, stop }
    }

    fn received(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    async fn wait_for(&self, count: usize, logs: impl Fn() -> String) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.received() < count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {count} messages arrived\n{}",
                self.received(),
                logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for LocalSystem {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Sends `message` with python-hl7's MLLPClient; MSA-1 of its ACK.
fn send_with_python(env: &TestEnv, port: u16, message: &[u8]) -> String {
    local_systems::send_with_python(env, port, &[message.to_vec()])
        .remove(0)
        .msa1
}

/// The ITK ADT^A01 fixture from Imperial (RYJ) to the Royal Free (RAL)
/// with MSH-10 `control_id` and NHS number `nhs`.
fn adt_a01(control_id: &str, nhs: &str) -> Vec<u8> {
    let fixture = std::fs::read_to_string(
        repository().join("adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7"),
    )
    .expect("ITK ADT A01 fixture");
    let mut lines: Vec<String> = fixture.lines().map(str::to_owned).collect();
    lines[0] = format!(
        "MSH|^~\\&|PAS|RYJ|EPR|RAL|202601011200||ADT^A01^ADT_A01|{control_id}|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0"
    );
    let text = lines.join("\r") + "\r";
    text.replace("3333333333^^^NHS", &format!("{nhs}^^^NHS"))
        .into_bytes()
}

/// The message id the hub recorded for the patient's (only) message,
/// once it has decided (panics after 10 s).
async fn message_id_of(hub: &HubProcess, nhs: &str) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let audit = hub.audit_of_patient(nhs).await;
        if let Some(id) = audit[0]["message_id"].as_str() {
            return id.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit record: {audit}\n{}",
            hub.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether `events` has an adapter's event `stage` from `exchange` with
/// `code` (and `detail`, if given).
fn has(events: &Value, exchange: &str, stage: &str, code: &str, detail: Option<&str>) -> bool {
    events.as_array().into_iter().flatten().any(|e| {
        e["layer"] == "adapter"
            && e["exchange"] == exchange
            && e["stage"] == stage
            && e["code"] == code
            && detail.is_none_or(|d| e["detail"] == d)
    })
}

/// Polls the hub's trace of `message_id` until `done` (panics after 15 s).
async fn wait_for_events(
    hub: &HubProcess,
    message_id: &str,
    done: impl Fn(&Value) -> bool,
    logs: impl Fn() -> String,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let events = hub.events_of_message(message_id).await;
        if done(&events) {
            return events;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trace of {message_id} is incomplete: {events:#}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails if a label value looks like an NHS number (ten digits).
fn assert_no_patient_identifiers(samples: &[Sample]) {
    let values: BTreeSet<&str> = samples
        .iter()
        .flat_map(|s| s.labels.values().map(String::as_str))
        .collect();
    for value in values {
        let digits = value.chars().filter(char::is_ascii_digit).count();
        assert!(
            digits < 10,
            "a label value looks like a patient identifier: {value}"
        );
    }
}

fn metrics_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adapters_count_time_and_trace_what_happens_at_their_local_systems() {
    with_env(TestEnv::new("adapter-ops"), |env| async move {
        let (sender_listen, sender_local) = (free_port(), free_port());
        let (receiver_listen, receiver_local) = (free_port(), free_port());
        use_hl7v2_adapter(&env, SENDER, sender_listen, sender_local);
        use_hl7v2_adapter(&env, RECEIVER, receiver_listen, receiver_local);
        let receiving_system = LocalSystem::start(receiver_local).await;
        let sending_system = LocalSystem::start(sender_local).await;
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions::default();
        let (sender_metrics, receiver_metrics) = (metrics_address(), metrics_address());
        let mut sender = AdapterProcess::start_with_metrics(
            &env,
            SENDER,
            sender_listen,
            &options,
            Some(sender_metrics),
        )
        .await;
        let mut receiver = AdapterProcess::start_with_metrics(
            &env,
            RECEIVER,
            receiver_listen,
            &options,
            Some(receiver_metrics),
        )
        .await;
        assert_eq!(sender.metrics_address(), Some(sender_metrics));
        let logs = || {
            format!(
                "--- sending adapter\n{}\n--- receiving adapter\n{}\n--- hub\n{}",
                sender.log(),
                receiver.log(),
                hub.log()
            )
        };

        // 1. Delivered.
        let ack = send_with_python(&env, sender_listen, &adt_a01("OPS0001", DELIVERED_NHS));
        assert_eq!(ack, "AA");
        receiving_system.wait_for(1, logs).await;

        let by_sender = [("exchange", SENDER), ("kind", "hl7v2-mllp")];
        let by_receiver = [("exchange", RECEIVER), ("kind", "hl7v2-mllp")];
        let outcome = |labels: &[(&'static str, &'static str); 2], outcome: &'static str| {
            [labels[0], labels[1], ("outcome", outcome)]
        };
        // The outbox gauge is refreshed every second.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let sent = loop {
            let sent = scrape(sender_metrics).await;
            if value(&sent, "lhcie_adapter_outbox_depth", &[("exchange", SENDER)]) == 0.0 {
                break sent;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the outbox did not empty"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let received_total = "lhcie_adapter_received_total";
        assert_eq!(
            value(&sent, received_total, &outcome(&by_sender, "accepted")),
            1.0
        );
        assert_eq!(
            value(&sent, received_total, &outcome(&by_sender, "refused")),
            0.0
        );
        assert_eq!(
            value(&sent, received_total, &outcome(&by_sender, "duplicate")),
            0.0
        );
        assert_eq!(
            value(
                &sent,
                "lhcie_adapter_local_answer_seconds_count",
                &by_sender
            ),
            1.0
        );
        assert_eq!(
            value(
                &sent,
                "lhcie_adapter_trace_events_dropped_total",
                &[("exchange", SENDER)]
            ),
            0.0
        );
        let delivered = scrape(receiver_metrics).await;
        let deliveries_total = "lhcie_adapter_deliveries_total";
        assert_eq!(
            value(
                &delivered,
                deliveries_total,
                &outcome(&by_receiver, "delivered")
            ),
            1.0
        );
        assert_eq!(
            value(
                &delivered,
                deliveries_total,
                &outcome(&by_receiver, "failed")
            ),
            0.0
        );
        for histogram in [
            "lhcie_adapter_local_delivery_seconds_count",
            "lhcie_adapter_hub_to_local_seconds_count",
        ] {
            assert_eq!(
                value(&delivered, histogram, &by_receiver),
                1.0,
                "{histogram}"
            );
        }
        assert_eq!(
            value(
                &delivered,
                "lhcie_adapter_end_to_end_seconds_count",
                &[("exchange", RECEIVER), ("category", "care-event")]
            ),
            1.0
        );
        // A real histogram (buckets), not a summary.
        assert_eq!(
            sum(
                &delivered,
                "lhcie_adapter_hub_to_local_seconds_bucket",
                &[("exchange", RECEIVER), ("le", "+Inf")]
            ),
            1.0
        );

        let first = message_id_of(&hub, DELIVERED_NHS).await;
        wait_for_events(
            &hub,
            &first,
            |events| {
                has(events, SENDER, "received-from-local", "AA", Some(""))
                    && has(events, RECEIVER, "delivered-to-local", "AA", None)
            },
            logs,
        )
        .await;

        // 2. The receiving system refuses it: dead-lettered.
        let refused = adt_a01(&format!("{REFUSE}02"), REFUSED_NHS);
        assert_eq!(send_with_python(&env, sender_listen, &refused), "AA");
        let second = message_id_of(&hub, REFUSED_NHS).await;
        wait_for_events(
            &hub,
            &second,
            |events| {
                has(
                    events,
                    RECEIVER,
                    "delivery-failed",
                    "AR",
                    Some("local-refused"),
                )
            },
            logs,
        )
        .await;
        let after_refusal = scrape(receiver_metrics).await;
        assert_eq!(
            value(
                &after_refusal,
                deliveries_total,
                &outcome(&by_receiver, "failed")
            ),
            1.0
        );
        assert_eq!(
            value(
                &after_refusal,
                deliveries_total,
                &outcome(&by_receiver, "delivered")
            ),
            1.0
        );

        // 3. Not permitted: Imperial's system is told, on the original.
        let denied = adt_a01("OPS0003", DENIED_PATIENT);
        assert_eq!(send_with_python(&env, sender_listen, &denied), "AA");
        sending_system.wait_for(1, logs).await;
        let third = message_id_of(&hub, DENIED_PATIENT).await;
        wait_for_events(
            &hub,
            &third,
            |events| {
                has(events, SENDER, "received-from-local", "AA", None)
                    && has(
                        events,
                        SENDER,
                        "local-notified",
                        "AA",
                        Some("not-permitted"),
                    )
            },
            logs,
        )
        .await;
        assert_eq!(
            receiving_system.received(),
            2,
            "the denied ADT was not delivered"
        );

        // No patient identifier anywhere.
        for address in [sender_metrics, receiver_metrics] {
            let samples = scrape(address).await;
            assert_no_patient_identifiers(&samples);
            let (_, text) = lhcie_integration_tests::hub::http_get(address, "/metrics")
                .await
                .expect("metrics");
            for nhs in [DELIVERED_NHS, REFUSED_NHS, DENIED_PATIENT] {
                assert!(!text.contains(nhs), "an NHS number in the exposition");
            }
            let (status, body) = lhcie_integration_tests::hub::http_get(address, "/healthz")
                .await
                .expect("healthz");
            assert_eq!((status, body.trim()), (200, "ok"));
        }
        let all_logs = logs();
        for nhs in [DELIVERED_NHS, REFUSED_NHS, DENIED_PATIENT] {
            assert!(!all_logs.contains(nhs), "an NHS number was logged");
        }
        assert!(sender.stop().await, "sending adapter:\n{}", sender.log());
        assert!(
            receiver.stop().await,
            "receiving adapter:\n{}",
            receiver.log()
        );
    })
    .await;
}
