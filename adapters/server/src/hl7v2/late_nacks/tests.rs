//! Unit tests of the late negative acknowledgements, with an in-process
//! MLLP peer playing the local system and a fake hub rejecting everything.

use std::future::Future;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use lhcie_adapter_kit::outbox::{HubSink, SinkError};
use lhcie_mllp::{ListenerConfig, MllpListener, PeerInfo, SenderConfig};
use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::mpsc;

use lhcie_adapter_kit::outbox::Outcome;

use super::*;

const MESSAGE: &[u8] = b"MSH|^~\\&|PAS|RYJ|EPR|RRV|20260101120000||ADT^A01^ADT_A01|MSG0001|P|2.4\rPID|1||9434765919^^^NHS\r";
const DETAIL: &str = "RRV is not served by any exchange on this hub";

fn envelope(message_id: &str) -> pb::Envelope {
    pb::Envelope {
        message_id: message_id.into(),
        original: Some(pb::OriginalPayload {
            media_type: MEDIA_TYPE_HL7V2_ER7.into(),
            content: Bytes::from_static(MESSAGE),
        }),
        ..Default::default()
    }
}

/// A hub that rejects every envelope as an unknown recipient.
struct RejectingHub(mpsc::UnboundedSender<hubpb::SubmitResponse>);

impl HubSink for RejectingHub {
    fn submit(&self, envelope: pb::Envelope) -> impl Future<Output = Result<(), SinkError>> + Send {
        let _ = self.0.send(hubpb::SubmitResponse {
            message_id: envelope.message_id,
            outcome: Some(hubpb::submit_response::Outcome::Rejected(hubpb::Rejected {
                reason: hubpb::RejectReason::UnknownRecipient as i32,
                detail: DETAIL.into(),
            })),
        });
        std::future::ready(Ok(()))
    }
}

/// Puts `message_id` in the outbox and lets the fake hub reject it.
async fn reject(outbox: &Outbox, message_id: &str) {
    let (tx, answers) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let forwarder = tokio::spawn({
        let outbox = outbox.clone();
        let stop = stop.clone();
        async move { outbox.forward(RejectingHub(tx), answers, stop).await }
    });
    // Subscribed before the put: the task may remove the entry at once.
    let mut answers = outbox.subscribe();
    outbox.put(envelope(message_id)).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), answers.recv())
        .await
        .expect("the fake hub's answer in time")
        .unwrap();
    assert_eq!(answer.message_id, message_id);
    assert!(matches!(answer.outcome, Outcome::Rejected(_)));
    stop.cancel();
    forwarder.await.unwrap().unwrap();
}

/// The local system: answers `code` to every message (MSA-2 its MSH-10)
/// and keeps what it received.
struct LocalSystem {
    calls: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Bytes>>>,
    stop: CancellationToken,
}

impl LocalSystem {
    async fn start(address: &str, code: &'static str) -> Self {
        let listener = MllpListener::bind(address, ListenerConfig::default())
            .await
            .unwrap();
        let calls = Arc::new(AtomicUsize::new(0));
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let (c, r) = (calls.clone(), received.clone());
        tokio::spawn(listener.serve(
            move |message: Bytes, _peer: PeerInfo| {
                c.fetch_add(1, Ordering::SeqCst);
                let control_id = lhcie_hl7v2::parse_message(&message)
                    .ok()
                    .and_then(|m| m.msh().value(10, 1, 1, 1).map(str::to_owned))
                    .unwrap_or_default();
                r.lock().unwrap().push(message);
                async move {
                    Bytes::from(format!(
                        "MSH|^~\\&|PAS|RYJ|EPR|RRV|20260101120000||ACK|R1|P|2.4\rMSA|{code}|{control_id}\r"
                    ))
                }
            },
            stop.clone(),
        ));
        Self {
            calls,
            received,
            stop,
        }
    }

    fn received(&self) -> Vec<Bytes> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for LocalSystem {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn free_address() -> String {
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    socket.local_addr().unwrap().to_string()
}

/// Starts the task towards `address`; cancel the token to stop it.
fn start(outbox: &Outbox, window: &Arc<AckWindow>, address: &str) -> CancellationToken {
    let stop = CancellationToken::new();
    let task = LateNacks {
        outbox: outbox.clone(),
        ops: Ops::new(
            &lhcie_model::ExchangeId::parse("nwl-imperial").unwrap(),
            "hl7v2-mllp",
            lhcie_adapter_kit::TraceReporter::disabled(),
        ),
        sender: MllpSender::new(
            address,
            SenderConfig {
                connect_attempts: 1,
                connect_timeout: Duration::from_secs(1),
                ack_timeout: Duration::from_secs(2),
                ..SenderConfig::default()
            },
        ),
        window: window.clone(),
        retry_max: Duration::from_millis(300),
    };
    tokio::spawn(task.run(stop.clone()));
    stop
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rejected_ids(outbox: &Outbox) -> Vec<String> {
    outbox
        .rejected()
        .unwrap()
        .into_iter()
        .map(|e| e.message_id)
        .collect()
}

#[tokio::test]
async fn an_accepted_late_ack_removes_the_rejection() {
    let outbox = Outbox::temporary().unwrap();
    let address = free_address();
    let system = LocalSystem::start(&address, "AA").await;
    let stop = start(&outbox, &Arc::new(AckWindow::default()), &address);
    reject(&outbox, "m1").await;
    eventually("the rejection was removed", || {
        rejected_ids(&outbox).is_empty()
    })
    .await;

    let received = system.received();
    assert_eq!(received.len(), 1);
    let ack = lhcie_hl7v2::parse_message(&received[0]).unwrap();
    let text = String::from_utf8(received[0].to_vec()).unwrap();
    assert_eq!(ack.value("MSH", 3, 1, 1, 1), Some("EPR"));
    assert_eq!(ack.value("MSH", 4, 1, 1, 1), Some("RRV"));
    assert_eq!(ack.value("MSH", 5, 1, 1, 1), Some("PAS"));
    assert_eq!(ack.value("MSH", 6, 1, 1, 1), Some("RYJ"));
    assert_eq!(ack.value("MSH", 9, 1, 1, 1), Some("ACK"));
    assert_eq!(
        ack.value("MSH", 10, 1, 1, 1),
        Some(late_control_id("m1").as_str())
    );
    assert_eq!(ack.value("MSA", 1, 1, 1, 1), Some("AE"));
    assert_eq!(ack.value("MSA", 2, 1, 1, 1), Some("MSG0001"));
    assert_eq!(ack.value("ERR", 3, 1, 1, 1), Some("103"));
    assert!(!text.contains("9434765919"), "{text}");
    assert!(!text.contains(DETAIL), "{text}");
    stop.cancel();
}

#[tokio::test]
async fn an_unreachable_or_refusing_system_keeps_the_rejection_and_is_retried() {
    let outbox = Outbox::temporary().unwrap();
    let address = free_address();
    let stop = start(&outbox, &Arc::new(AckWindow::default()), &address);
    reject(&outbox, "m1").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rejected_ids(&outbox), ["m1"]);

    // The system comes up but refuses: retried, still kept.
    let refusing = LocalSystem::start(&address, "AE").await;
    eventually("retried", || refusing.calls.load(Ordering::SeqCst) >= 2).await;
    assert_eq!(rejected_ids(&outbox), ["m1"]);
    drop(refusing);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Then accepts: removed.
    let system = LocalSystem::start(&address, "AA").await;
    eventually("the rejection was removed", || {
        rejected_ids(&outbox).is_empty()
    })
    .await;
    assert!(!system.received().is_empty());
    stop.cancel();
}

#[tokio::test]
async fn rejections_left_from_before_a_restart_are_reported_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("outbox");
    {
        let outbox = Outbox::open(&path).unwrap();
        reject(&outbox, "m1").await;
    }
    let outbox = reopen(&path).await;
    assert_eq!(rejected_ids(&outbox), ["m1"]);
    let address = free_address();
    let system = LocalSystem::start(&address, "CA").await;
    let stop = start(&outbox, &Arc::new(AckWindow::default()), &address);
    eventually("the rejection was removed", || {
        rejected_ids(&outbox).is_empty()
    })
    .await;
    assert_eq!(system.received().len(), 1);
    stop.cancel();
}

#[tokio::test]
async fn a_rejection_answered_in_the_inbound_ack_is_not_reported_again() {
    let outbox = Outbox::temporary().unwrap();
    let address = free_address();
    let system = LocalSystem::start(&address, "AA").await;
    let window = Arc::new(AckWindow::default());
    let stop = start(&outbox, &window, &address);
    let guard = window.enter("m1");
    reject(&outbox, "m1").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.calls.load(Ordering::SeqCst), 0);
    // The inbound side put it in its ACK and removed it.
    assert!(outbox.remove_rejected("m1").unwrap());
    drop(guard);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(system.calls.load(Ordering::SeqCst), 0);
    stop.cancel();
}

#[tokio::test]
async fn an_envelope_without_an_hl7v2_original_is_kept() {
    let outbox = Outbox::temporary().unwrap();
    reject(&outbox, "m1").await;
    let mut entry = outbox.rejected().unwrap().remove(0);
    assert!(late_ack(&entry, OffsetDateTime::UNIX_EPOCH).is_some());
    entry.envelope.original = None;
    assert!(late_ack(&entry, OffsetDateTime::UNIX_EPOCH).is_none());
}

/// sled's lock may outlive the dropped handle by a moment.
async fn reopen(path: &Path) -> Outbox {
    for _ in 0..100 {
        if let Ok(outbox) = Outbox::open(path) {
            return outbox;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Outbox::open(path).unwrap()
}
