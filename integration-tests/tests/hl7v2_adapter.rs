//! The `adapter` binary of kind `hl7v2-mllp`, end to end, between
//! independent MLLP systems: python-hl7's `MLLPClient` plays Imperial's
//! sending system, hl7apy's `MLLPServer` the Royal Free's receiving system;
//! two `adapter` processes and the real hub sit between them. The same
//! server also plays Imperial's system receiving a late negative
//! acknowledgement. Needs the Python environment `make test` prepares
//! (`.venv`).

use std::process::Command;
use std::time::Duration;

use lhcie_integration_tests::adapter::{
    AdapterOptions, AdapterProcess, use_amqp_uplink, use_hl7v2_adapter, use_listen_address,
};
use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv, with_env};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::local_systems::{MllpSystem, send_with_python};
use lhcie_integration_tests::{free_port, python, repository};

/// The sending trust (Imperial, RYJ) and the receiving one (Royal Free,
/// RAL), each behind an HL7 v2 adapter.
const SENDER: &str = "nwl-imperial";
const RECEIVER: &str = "ncl-royal-free";

/// Ports of one HL7 v2 exchange: where its adapter listens, where its
/// local system listens.
#[derive(Clone, Copy)]
struct Ports {
    listen: u16,
    deliver_to: u16,
}

impl Ports {
    /// Two free ports.
    fn free() -> Self {
        Self {
            listen: free_port(),
            deliver_to: free_port(),
        }
    }
}

/// Makes `SENDER` and `RECEIVER` HL7 v2 / MLLP exchanges in the
/// environment's topology.
fn use_hl7v2_adapters(env: &TestEnv, sender: Ports, receiver: Ports) {
    use_hl7v2_adapter(env, SENDER, sender.listen, sender.deliver_to);
    use_hl7v2_adapter(env, RECEIVER, receiver.listen, receiver.deliver_to);
}

/// An ITK ADT^A01 (the NHS ITK specification's example,
/// `adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7`, Apache-2.0)
/// from Imperial (RYJ) to the Royal Free (RAL), segments ended by CR, with
/// control id `control_id`, NHS number `nhs` and MSH-9 `message_type`.
fn adt_a01(control_id: &str, nhs: &str, message_type: &str) -> Vec<u8> {
    let fixture = std::fs::read_to_string(
        repository().join("adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7"),
    )
    .expect("ITK ADT A01 fixture");
    let mut lines: Vec<String> = fixture.lines().map(str::to_owned).collect();
    lines[0] = format!(
        "MSH|^~\\&|PAS|RYJ|EPR|RAL|202601011200||{message_type}|{control_id}|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0"
    );
    let mut text = lines.join("\r") + "\r";
    text = text.replace("3333333333^^^NHS", &format!("{nhs}^^^NHS"));
    text.into_bytes()
}

const NHS: &str = "3333333333";

/// An `MDM^T02` letter from Imperial (RYJ) to the Royal Free (RAL): TXA-2
/// `txa_type` (HL7 table 0270: `CN` clinic letter, `OP` operation note,
/// `ED` emergency department letter), control id `control_id`, the text
/// in one OBX. Written here (synthetic), in the ITK header of `adt_a01`.
fn mdm_letter(control_id: &str, txa_type: &str, title: &str) -> Vec<u8> {
    format!(
        "MSH|^~\\&|EPR|RYJ|EPR|RAL|202601011200||MDM^T02^MDM_T02|{control_id}|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0\r\
         EVN|T02|202601011200\r\
         PID|1||{NHS}^^^NHS^NH~RYJ123^^^RYJ^MR||SMITH^ANNA||19700101|F\r\
         PV1|1|O\r\
         TXA|1|{txa_type}^{title}|TX|202601011100|C1234567^JONES^MARY|||||||{control_id}-DOC|||||AU\r\
         OBX|1|TX|LETTER^Letter text||Seen in clinic today. Plan agreed.||||||F\r"
    )
    .into_bytes()
}

struct Setup {
    hub: HubProcess,
    sender: AdapterProcess,
    receiver: AdapterProcess,
    system: MllpSystem,
    sender_port: u16,
}

impl Setup {
    async fn start(env: &TestEnv) -> Self {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(env, sender, receiver);
        let system = MllpSystem::start(env, receiver.deliver_to, "received.hex");
        let hub = HubProcess::start(env).await;
        let sending_adapter =
            AdapterProcess::start(env, SENDER, sender.listen, &AdapterOptions::default()).await;
        let receiving_adapter =
            AdapterProcess::start(env, RECEIVER, receiver.listen, &AdapterOptions::default()).await;
        Self {
            hub,
            sender: sending_adapter,
            receiver: receiving_adapter,
            system,
            sender_port: sender.listen,
        }
    }

    fn logs(&self) -> String {
        format!(
            "--- sending adapter\n{}\n--- receiving adapter\n{}\n--- hub\n{}",
            self.sender.log(),
            self.receiver.log(),
            self.hub.log()
        )
    }

    async fn stop(mut self) {
        assert!(
            self.sender.stop().await,
            "sending adapter:\n{}",
            self.sender.log()
        );
        assert!(
            self.receiver.stop().await,
            "receiving adapter:\n{}",
            self.receiver.log()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hl7v2_travels_unchanged_between_independent_mllp_systems() {
    with_env(TestEnv::new("hl7v2"), |env| async move {
        let setup = Setup::start(&env).await;
        let first = adt_a01("ITK0001", NHS, "ADT^A01^ADT_A01");
        let acks = send_with_python(
            &env,
            setup.sender_port,
            &[
                first.clone(),
                // The same message again (a lost ACK): AA, not delivered twice.
                first.clone(),
                adt_a01("ITK0002", "3333333334", "ADT^A01^ADT_A01"),
                adt_a01("ITK0003", NHS, "ZZZ^Z01"),
                // Not HL7 at all.
                b"not an HL7 message\r".to_vec(),
            ],
        );
        assert_eq!(
            (acks[0].msa1.as_str(), acks[0].msa2.as_str()),
            ("AA", "ITK0001")
        );
        assert_eq!(
            (acks[1].msa1.as_str(), acks[1].msa2.as_str()),
            ("AA", "ITK0001")
        );
        assert_eq!(acks[2].msa1, "AE", "{acks:?}");
        assert_eq!(acks[2].msa2, "ITK0002");
        assert!(acks[2].err2.starts_with("PID^1^3"), "{acks:?}");
        assert_eq!(acks[3].msa1, "AR", "{acks:?}");
        assert_eq!(acks[3].err3, "200", "{acks:?}");
        assert_eq!(acks[4].msa1, "AR", "{acks:?}");

        // A later valid message arrives after the first: neither the
        // duplicate nor the refused ones came in between.
        let second = adt_a01("ITK0004", NHS, "ADT^A01^ADT_A01");
        let acks = send_with_python(&env, setup.sender_port, std::slice::from_ref(&second));
        assert_eq!(acks[0].msa1, "AA");
        setup
            .system
            .wait_for(2, Duration::from_secs(20), || setup.logs())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received = setup.system.received();
        assert_eq!(received.len(), 2, "{}", setup.logs());
        assert!(
            received[0] == first,
            "the first message was changed on the way"
        );
        assert!(
            received[1] == second,
            "the second message was changed on the way"
        );
        let logs = setup.logs();
        assert!(!logs.contains(NHS), "an NHS number was logged");
        setup.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clinic_operation_and_ed_letters_arrive_at_an_hl7_trust_byte_for_byte() {
    with_env(TestEnv::new("hl7v2-letters"), |env| async move {
        let setup = Setup::start(&env).await;
        let letters: Vec<Vec<u8>> = [
            ("LET0001", "CN", "Clinic letter"),
            ("LET0002", "OP", "Operation note"),
            ("LET0003", "ED", "Emergency department letter"),
        ]
        .iter()
        .map(|(id, txa, title)| mdm_letter(id, txa, title))
        .collect();
        // Not mapped and not configured: AE 103 at TXA-2.1, not forwarded.
        let unknown = mdm_letter("LET0004", "XLET", "Local letter");
        let mut all = letters.clone();
        all.push(unknown);
        let acks = send_with_python(&env, setup.sender_port, &all);
        for ack in &acks[..3] {
            assert_eq!(ack.msa1, "AA", "{acks:?}\n{}", setup.logs());
        }
        assert_eq!(acks[3].msa1, "AE", "{acks:?}");
        assert!(acks[3].err2.starts_with("TXA^1^2"), "{acks:?}");
        assert_eq!(acks[3].err3, "103", "{acks:?}");
        setup
            .system
            .wait_for(3, Duration::from_secs(20), || setup.logs())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received = setup.system.received();
        assert_eq!(received.len(), 3, "{}", setup.logs());
        for letter in &letters {
            assert_eq!(
                received.iter().filter(|r| *r == letter).count(),
                1,
                "a letter did not arrive byte for byte, once"
            );
        }
        assert!(!setup.logs().contains(NHS), "an NHS number was logged");
        setup.stop().await;
    })
    .await;
}

/// Issue 16 item 2: an `ADT^A01` without the patient's name (PID-5,
/// required in HL7 v2.4 and in `lhcie_hl7v2::required`) is answered `AE`
/// 101 at PID-5 and not forwarded; a complete one after it arrives alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adt_without_the_patient_name_gets_ae_101_and_is_not_forwarded() {
    with_env(TestEnv::new("hl7v2-required"), |env| async move {
        let setup = Setup::start(&env).await;
        let complete = adt_a01("REQ0001", NHS, "ADT^A01^ADT_A01");
        let text = String::from_utf8(adt_a01("REQ0002", NHS, "ADT^A01^ADT_A01")).unwrap();
        let no_name: String = text
            .split('\r')
            .map(|seg| {
                if seg.starts_with("PID|") {
                    let mut f: Vec<&str> = seg.split('|').collect();
                    f[5] = "";
                    f.join("|")
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\r");
        assert_ne!(no_name, text, "the fixture has a PID-5 to remove");
        let acks = send_with_python(
            &env,
            setup.sender_port,
            &[no_name.into_bytes(), complete.clone()],
        );
        assert_eq!(acks[0].msa1, "AE", "{acks:?}\n{}", setup.logs());
        assert_eq!(acks[0].msa2, "REQ0002", "{acks:?}");
        assert!(acks[0].err2.starts_with("PID^1^5"), "{acks:?}");
        assert_eq!(acks[0].err3, "101", "{acks:?}");
        assert_eq!(acks[1].msa1, "AA", "{acks:?}\n{}", setup.logs());
        setup
            .system
            .wait_for(1, Duration::from_secs(20), || setup.logs())
            .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received = setup.system.received();
        assert_eq!(received.len(), 1, "{}", setup.logs());
        assert!(
            received[0] == complete,
            "only the complete message arrives, unchanged"
        );
        setup.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_taken_during_a_hub_outage_arrive_once_after_it_returns() {
    with_env(TestEnv::new("hl7v2-outage"), |env| async move {
        let mut setup = Setup::start(&env).await;
        let before = adt_a01("OUT0000", NHS, "ADT^A01^ADT_A01");
        assert_eq!(
            send_with_python(&env, setup.sender_port, std::slice::from_ref(&before))[0].msa1,
            "AA"
        );
        setup
            .system
            .wait_for(1, Duration::from_secs(20), || setup.logs())
            .await;

        setup.hub.terminate();
        let during: Vec<Vec<u8>> = (1..=5)
            .map(|n| adt_a01(&format!("OUT{n:04}"), NHS, "ADT^A01^ADT_A01"))
            .collect();
        // Each is answered AA once stored locally, with no hub.
        for ack in send_with_python(&env, setup.sender_port, &during) {
            assert_eq!(ack.msa1, "AA", "{ack:?}");
        }
        assert_eq!(setup.system.received().len(), 1);

        setup.hub = HubProcess::start(&env).await;
        setup
            .system
            .wait_for(6, Duration::from_secs(25), || setup.logs())
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let received = setup.system.received();
        assert_eq!(received.len(), 6, "{}", setup.logs());
        assert!(received[0] == before);
        for message in &during {
            assert_eq!(
                received.iter().filter(|r| *r == message).count(),
                1,
                "a message did not arrive exactly once"
            );
        }
        setup.stop().await;
    })
    .await;
}

/// The value of `segment`'s field `n` in an ER7 message (no escapes).
fn field_of(message: &str, segment: &str, n: usize) -> String {
    let line = message
        .split('\r')
        .find(|l| l.starts_with(&format!("{segment}|")))
        .unwrap_or_default();
    // MSH-1 is the separator itself.
    let n = if segment == "MSH" { n - 1 } else { n };
    line.split('|').nth(n).unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejection_after_the_aa_reaches_the_sender_as_a_later_ack() {
    with_env(TestEnv::new("hl7v2-late-nack"), |env| async move {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(&env, sender, receiver);
        // Imperial's own system, where late acknowledgements go (notify_to
        // defaults to deliver_to).
        let local = MllpSystem::start(&env, sender.deliver_to, "notified.hex");
        let hub = HubProcess::start(&env).await;
        // No waiting for the hub: every message is answered AA at once.
        let mut adapter = AdapterProcess::start(
            &env,
            SENDER,
            sender.listen,
            &AdapterOptions {
                ack_wait_ms: 0,
                ..AdapterOptions::default()
            },
        )
        .await;
        let logs = || format!("--- adapter\n{}\n--- hub\n{}", adapter.log(), hub.log());

        // UCLH (RRV) is in the ODS reference data, but no exchange of the
        // test topology serves it: the hub rejects (unknown recipient).
        let message = String::from_utf8(adt_a01("LATE0001", NHS, "ADT^A01^ADT_A01"))
            .unwrap()
            .replace("|EPR|RAL|", "|EPR|RRV|");
        let acks = send_with_python(&env, sender.listen, &[message.into_bytes()]);
        assert_eq!(
            (acks[0].msa1.as_str(), acks[0].msa2.as_str()),
            ("AA", "LATE0001")
        );

        local.wait_for(1, Duration::from_secs(20), logs).await;
        let notified = String::from_utf8(local.received().remove(0)).unwrap();
        assert_eq!(field_of(&notified, "MSA", 1), "AE", "{notified:?}");
        assert_eq!(field_of(&notified, "MSA", 2), "LATE0001", "{notified:?}");
        assert!(
            field_of(&notified, "MSH", 9).starts_with("ACK"),
            "{notified:?}"
        );
        assert_eq!(field_of(&notified, "MSH", 5), "PAS", "{notified:?}");
        assert_eq!(field_of(&notified, "MSH", 6), "RYJ", "{notified:?}");
        assert!(
            field_of(&notified, "ERR", 3).starts_with("103"),
            "{notified:?}"
        );
        assert!(!notified.contains(NHS), "patient data in the late ACK");
        // Accepted (AA) by the local system: reported once, then forgotten.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !adapter.log().contains("late rejection reported") {
            assert!(tokio::time::Instant::now() < deadline, "{}", logs());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(local.received().len(), 1, "{}", logs());
        assert!(!logs().contains(NHS), "an NHS number was logged");
        assert!(adapter.stop().await, "{}", adapter.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mllp_listener_speaks_tls_with_client_certificates_when_configured() {
    with_env(TestEnv::new("hl7v2-tls"), |env| async move {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(&env, sender, receiver);
        let (cert, key) = env
            .pki
            .write_extra(
                "mllp-listener",
                &env.ca.issue_server(&["localhost"]).unwrap(),
            )
            .unwrap();
        let (client_cert, client_key) = env
            .pki
            .write_extra(
                "local-system",
                &env.ca.issue_client("urn:test:local-system", "PAS").unwrap(),
            )
            .unwrap();
        let ca = env.pki.ca_cert();
        // No hub needed: with ack_wait_ms = 0 a stored message is answered AA.
        let extra = format!(
            "[hl7v2.tls]\ncert = \"{}\"\nkey = \"{}\"\nclient_ca = \"{}\"\n",
            cert.display(),
            key.display(),
            ca.display()
        );
        let mut adapter = AdapterProcess::start(
            &env,
            SENDER,
            sender.listen,
            &AdapterOptions {
                ack_wait_ms: 0,
                extra_hl7v2: format!("delivery_retry_max_ms = 1000\n{extra}"),
                ..AdapterOptions::default()
            },
        )
        .await;
        let file = env.dir().join("tls-message.hl7");
        std::fs::write(&file, adt_a01("TLS0001", NHS, "ADT^A01^ADT_A01")).unwrap();
        let send = |client: bool| {
            let mut command = Command::new(python());
            command
                .arg(repository().join("integration-tests/python/mllp_tls_client.py"))
                .args(["--port", &sender.listen.to_string(), "--ca"])
                .arg(&ca);
            if client {
                command
                    .arg("--cert")
                    .arg(&client_cert)
                    .arg("--key")
                    .arg(&client_key);
            }
            command
                .arg(&file)
                .output()
                .expect("running the Python TLS client")
        };
        let output = send(true);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains(" AA TLS0001"),
            "{stdout}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            adapter.log()
        );
        // Without a client certificate: refused in the handshake, no ACK.
        let output = send(false);
        assert!(
            !output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stdout)
        );
        assert!(adapter.stop().await, "{}", adapter.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_amqp_uplink_messages_travel_and_negative_acks_come_back_as_hl7() {
    with_env(TestEnv::new("hl7v2-amqp"), |env| async move {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(&env, sender, receiver);
        use_amqp_uplink(&env, SENDER);
        use_amqp_uplink(&env, RECEIVER);
        let credentials = env.broker_credentials_file(&[SENDER, RECEIVER]).await;
        let system = MllpSystem::start(&env, receiver.deliver_to, "received.hex");
        // Imperial's own system, where negative acknowledgements go.
        let local = MllpSystem::start(&env, sender.deliver_to, "notified.hex");
        let hub = HubProcess::start(&env).await;
        let options = AdapterOptions {
            broker_credentials: Some(credentials),
            ..AdapterOptions::default()
        };
        let mut sending = AdapterProcess::start(&env, SENDER, sender.listen, &options).await;
        let mut receiving = AdapterProcess::start(&env, RECEIVER, receiver.listen, &options).await;
        let logs = || {
            format!(
                "--- sending adapter\n{}\n--- receiving adapter\n{}\n--- hub\n{}",
                sending.log(),
                receiving.log(),
                hub.log()
            )
        };

        let permitted = adt_a01("AMQP0001", NHS, "ADT^A01^ADT_A01");
        // The policy: this patient has refused the Royal Free.
        let denied = adt_a01("AMQP0002", DENIED_PATIENT, "ADT^A01^ADT_A01");
        // No exchange serves UCLH (RRV): the hub rejects the whole message.
        let unknown = String::from_utf8(adt_a01("AMQP0003", NHS, "ADT^A01^ADT_A01"))
            .unwrap()
            .replace("|EPR|RAL|", "|EPR|RRV|")
            .into_bytes();
        let acks = send_with_python(&env, sender.listen, &[permitted.clone(), denied, unknown]);
        // Over AMQP the answer is the broker's confirm: AA once published.
        for (ack, id) in acks.iter().zip(["AMQP0001", "AMQP0002", "AMQP0003"]) {
            assert_eq!(
                (ack.msa1.as_str(), ack.msa2.as_str()),
                ("AA", id),
                "{acks:?}"
            );
        }

        system.wait_for(1, Duration::from_secs(20), logs).await;
        assert!(
            system.received()[0] == permitted,
            "the message was changed on the way"
        );
        // Both negative acknowledgements reach Imperial's system as ACK
        // messages addressed from the original's MSH.
        local.wait_for(2, Duration::from_secs(20), logs).await;
        let mut notified: Vec<String> = local
            .received()
            .into_iter()
            .map(|m| String::from_utf8(m).unwrap())
            .collect();
        notified.sort_by_key(|m| field_of(m, "MSA", 2));
        let [not_permitted, rejected] = &notified[..] else {
            panic!("{notified:?}");
        };
        // AE with the local NOTPERMITTED code: final, not to be resent
        // (AR 207 would read as a transient fault).
        assert_eq!(field_of(not_permitted, "MSA", 1), "AE", "{not_permitted:?}");
        assert!(
            field_of(not_permitted, "ERR", 3).starts_with("NOTPERMITTED^"),
            "{not_permitted:?}"
        );
        assert!(
            field_of(not_permitted, "ERR", 8).ends_with("; do not resend"),
            "{not_permitted:?}"
        );
        assert_eq!(field_of(not_permitted, "MSA", 2), "AMQP0002");
        assert_eq!(field_of(not_permitted, "MSH", 5), "PAS");
        assert_eq!(field_of(not_permitted, "MSH", 6), "RYJ");
        assert!(
            field_of(not_permitted, "ERR", 8)
                .contains("RAL: not permitted by information governance policy"),
            "{not_permitted:?}"
        );
        assert_eq!(field_of(rejected, "MSA", 1), "AE", "{rejected:?}");
        assert_eq!(field_of(rejected, "MSA", 2), "AMQP0003");
        assert!(
            field_of(rejected, "ERR", 3).starts_with("103"),
            "{rejected:?}"
        );
        for message in &notified {
            assert!(!message.contains(NHS) && !message.contains(DENIED_PATIENT));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(system.received().len(), 1, "{}", logs());
        assert_eq!(local.received().len(), 2, "{}", logs());
        let all = logs();
        assert!(all.contains("uplink and deliveries over AMQP"), "{all}");
        assert!(
            !all.contains(NHS) && !all.contains(DENIED_PATIENT),
            "an NHS number was logged"
        );
        assert!(sending.stop().await, "{}", sending.log());
        assert!(receiving.stop().await, "{}", receiving.log());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_listener_on_a_non_loopback_address_stops_the_adapter_at_start_up() {
    with_env(TestEnv::new("hl7v2-plain-exposed"), |env| async move {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(&env, sender, receiver);
        // Every interface: reachable from the network, in clear.
        use_listen_address(&env, SENDER, &format!("0.0.0.0:{}", sender.listen));
        let (status, stderr) =
            AdapterProcess::run_expecting_exit(&env, SENDER, &AdapterOptions::default());
        assert!(!status.success(), "{stderr}");
        for expected in [
            "hl7v2.tls",
            "allow_plaintext_reason",
            "hl7v2.tls.client_ca",
            "allow_unauthenticated_reason",
            "0.0.0.0",
        ] {
            assert!(stderr.contains(expected), "{expected} not in: {stderr}");
        }
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", sender.listen)).is_err(),
            "the listener was opened"
        );
        // With the reasons written down it starts, and says so in its log.
        let options = AdapterOptions {
            extra_hl7v2: "delivery_retry_max_ms = 1000\nallow_plaintext_reason = \"test network, no route out\"\nallow_unauthenticated_reason = \"test network, no route out\"\n".into(),
            ..AdapterOptions::default()
        };
        let _hub = HubProcess::start(&env).await;
        let mut adapter = AdapterProcess::start(&env, SENDER, sender.listen, &options).await;
        let log = adapter.log();
        assert!(log.contains("PLAIN TEXT on a non-loopback address"), "{log}");
        assert!(log.contains("test network, no route out"), "{log}");
        assert!(adapter.stop().await, "{}", adapter.log());
    })
    .await;
}

/// Reads from `stream` until the adapter closes it (or 5 s pass).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the adapter did not close the connection");
    got
}

/// `message` in an MLLP frame.
fn framed(message: &[u8]) -> Vec<u8> {
    let mut frame = vec![0x0b];
    frame.extend_from_slice(message);
    frame.extend_from_slice(b"\x1c\x0d");
    frame
}

/// A connection from 127.0.0.1 on which an ADT with `control_id` was
/// answered AA (so the listener counts it); tries again for up to 5 s.
async fn held_connection(port: u16, control_id: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = connect_from([127, 0, 0, 1], port).await;
        let frame = framed(&adt_a01(control_id, NHS, "ADT^A01^ADT_A01"));
        let mut answer = Vec::new();
        if stream.write_all(&frame).await.is_ok() {
            let mut buf = [0u8; 1024];
            while !answer.contains(&0x1c) {
                match tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
        }
        if String::from_utf8_lossy(&answer).contains(&format!("MSA|AA|{control_id}")) {
            return stream;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no connection from 127.0.0.1 was served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A connection to the adapter's listener from the local address `from`.
async fn connect_from(from: [u8; 4], port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    socket.connect(([127, 0, 0, 1], port).into()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_gets_ar_with_the_limit_and_one_peer_cannot_take_every_slot() {
    use lhcie_integration_tests::prometheus::{scrape, value};
    use tokio::io::AsyncWriteExt;
    with_env(TestEnv::new("hl7v2-limits"), |env| async move {
        let sender = Ports::free();
        let receiver = Ports::free();
        use_hl7v2_adapters(&env, sender, receiver);
        let metrics = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        // No hub needed: with ack_wait_ms = 0 a stored message is answered AA.
        let options = AdapterOptions {
            ack_wait_ms: 0,
            extra_tables: "[hl7v2.limits]\nmax_frame_bytes = 65536\nmax_connections_per_peer = 2\n"
                .into(),
            ..AdapterOptions::default()
        };
        let mut adapter = AdapterProcess::start_with_metrics(
            &env,
            SENDER,
            sender.listen,
            &options,
            Some(metrics),
        )
        .await;

        // A document with a 256 KiB attachment, over the 64 KiB set: python-hl7's
        // client gets AR, addressed to its message, with the local code.
        let mut big = adt_a01("BIG0001", NHS, "ADT^A01^ADT_A01");
        big.extend_from_slice(b"OBX|1|ED|PDF^Letter||^AP^PDF^Base64^");
        big.extend(std::iter::repeat_n(b'A', 256 * 1024));
        big.extend_from_slice(b"||||||F\r");
        let acks = send_with_python(&env, sender.listen, std::slice::from_ref(&big));
        assert_eq!(
            (
                acks[0].msa1.as_str(),
                acks[0].msa2.as_str(),
                acks[0].err3.as_str()
            ),
            ("AR", "BIG0001", "MSGTOOLARGE"),
            "{acks:?}\n{}",
            adapter.log()
        );
        // The answer names the limit, and the connection is closed after it.
        let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", sender.listen))
            .await
            .unwrap();
        raw.write_all(&framed(&big)).await.unwrap();
        let answer = String::from_utf8(read_until_closed(&mut raw).await).unwrap();
        assert!(
            answer.contains("MSA|AR|BIG0001|Message too large: the maximum is 65536 bytes"),
            "{answer:?}"
        );
        assert!(!answer.contains(NHS), "patient data in the answer");

        // Two connections from 127.0.0.1, each answered (so each holds a
        // slot; the earlier connections' slots may take a moment to be
        // given back, hence the retries)...
        let refused = |samples: &[lhcie_integration_tests::prometheus::Sample]| {
            value(
                samples,
                "lhcie_adapter_mllp_connections_refused_total",
                &[("exchange", SENDER), ("reason", "per-peer-limit")],
            )
        };
        let mut held = Vec::new();
        for n in 1..=2 {
            held.push(held_connection(sender.listen, &format!("HELD000{n}")).await);
        }
        // ...are its limit: a third from there is closed at once, unanswered...
        let before = refused(&scrape(metrics).await);
        let mut third = connect_from([127, 0, 0, 1], sender.listen).await;
        let message = framed(&adt_a01("PEER0001", NHS, "ADT^A01^ADT_A01"));
        let _ = third.write_all(&message).await;
        assert_eq!(
            read_until_closed(&mut third).await,
            b"",
            "answered beyond the limit"
        );
        // ...while another sending system (127.0.0.2) still gets in.
        let mut other = connect_from([127, 0, 0, 2], sender.listen).await;
        other.write_all(&message).await.unwrap();
        other.shutdown().await.unwrap();
        let answer = String::from_utf8(read_until_closed(&mut other).await).unwrap();
        assert!(
            answer.contains("MSA|AA|PEER0001"),
            "{answer:?}\n{}",
            adapter.log()
        );
        drop(held);

        let samples = scrape(metrics).await;
        assert_eq!(refused(&samples) - before, 1.0);
        let exchange = ("exchange", SENDER);
        assert_eq!(
            value(
                &samples,
                "lhcie_adapter_mllp_frames_too_large_total",
                &[exchange]
            ),
            2.0
        );
        let log = adapter.log();
        assert!(log.contains("MLLP connection refused"), "{log}");
        assert!(!log.contains(NHS), "an NHS number was logged");
        assert!(adapter.stop().await, "{}", adapter.log());
    })
    .await;
}
