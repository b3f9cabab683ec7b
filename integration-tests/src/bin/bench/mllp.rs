//! HL7 v2 over MLLP into the hub: the `adapter` binary (kind
//! `hl7v2-mllp`, release build) taking ADT^A01 messages from 50 concurrent
//! MLLP connections, against an in-process MLLP listener that answers AA
//! at once, measured in the same run (see `main.rs` for the figures).
//!
//! Processes: RabbitMQ, the `hub`, one `adapter` for the sending exchange
//! (`nwl-imperial`, organisation RYJ) with its outbox on disk, and this
//! process: the 50 MLLP clients (one `MllpSender` each), the reference
//! listener, and a consumer draining the receiving exchange's
//! (`ncl-royal-free`, RAL) egress queue so that nothing piles up.
//!
//! The adapter answers **AA once the outbox put is flushed to disk**, then
//! waits at most `ack_wait_ms` ([`ACK_WAIT_MS`]) for the hub's answer, so
//! that a rejection arriving that early becomes AE/AR; when the hub answers
//! "accepted" sooner, the AA goes out then. So every ACK measured here is
//! at least "stored durably by the adapter", and at most `ack_wait_ms`
//! later than that. Each phase on the adapter also waits until every
//! ACKed message has reached the receiving exchange's queue (through the
//! hub), so phases do not overlap.
//!
//! Any ACK that is not AA for the message's own MSH-10, or a send error,
//! counts as an error; the run fails after cleanup if there was one.
//! Nothing here logs message content.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lhcie_integration_tests::adapter::{AdapterOptions, AdapterProcess, use_hl7v2_adapter};
use lhcie_integration_tests::env::{DENIED_PATIENT, TestEnv};
use lhcie_integration_tests::hub::HubProcess;
use lhcie_integration_tests::{free_port, repository};
use lhcie_mllp::{ListenerConfig, MllpListener, MllpSender, PeerInfo, SenderConfig};
use lhcie_model::NhsNumber;
use tokio::time::Instant;
use tokio_util::bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::{Percentiles, line, verbose};

/// Concurrent MLLP connections: 50, or `LHCIE_BENCH_MLLP_CONNECTIONS`
/// (for diagnosis; the figures are defined with 50).
fn connections() -> usize {
    std::env::var("LHCIE_BENCH_MLLP_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=1000).contains(n))
        .unwrap_or(50)
}
/// Length of each measured phase.
const SECONDS: u64 = 15;
/// The fixed offered load of the latency phase, messages per second over
/// all connections.
const RATE: u64 = 1000;
/// The adapter's `ack_wait_ms`: the longest an ACK waits for the hub's
/// answer after the message is stored.
const ACK_WAIT_MS: u64 = 5;
/// The sending exchange (HL7 v2 adapter) and the receiving one.
const SENDER: &str = "nwl-imperial";
const RECEIVER: &str = "ncl-royal-free";

/// ADT^A01 messages from Imperial (RYJ) to the Royal Free (RAL): the NHS
/// ITK example (`adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7`),
/// segments ended by CR, with a fresh MSH-10 and a synthetic NHS number in
/// PID-3 (`^^^NHS^NH`) each.
struct Messages {
    /// The segments after MSH up to the NHS number.
    before_nhs: String,
    /// The rest after the NHS number.
    after_nhs: String,
    /// Valid synthetic NHS numbers (not the test policy's refusing patient).
    patients: Vec<String>,
}

impl Messages {
    fn load() -> Self {
        let fixture = std::fs::read_to_string(
            repository().join("adapters/hl7v2/tests/fixtures/corpus/uk-itk/adt_a01.hl7"),
        )
        .expect("ITK ADT A01 fixture");
        let body = fixture.lines().skip(1).collect::<Vec<_>>().join("\r") + "\r";
        let (before, after) = body
            .split_once("3333333333^^^NHS")
            .expect("the fixture's PID-3");
        let patients = (1..)
            .filter_map(NhsNumber::synthetic)
            .map(|n| n.as_str().to_owned())
            .filter(|n| n != DENIED_PATIENT)
            .take(1000)
            .collect();
        Self {
            before_nhs: before.to_owned(),
            after_nhs: after.to_owned(),
            patients,
        }
    }

    /// The message with control id `control_id`, for patient number `n`.
    fn build(&self, control_id: &str, n: usize) -> Vec<u8> {
        let nhs = &self.patients[n % self.patients.len()];
        format!(
            "MSH|^~\\&|PAS|RYJ|EPR|RAL|202601011200||ADT^A01^ADT_A01|{control_id}|P|2.4|1||||GBR|UNICODE|EN||iTKv1.0\r{}{nhs}^^^NHS^NH{}",
            self.before_nhs, self.after_nhs
        )
        .into_bytes()
    }
}

/// MSH-10 of a message (the reference listener echoes it in MSA-2).
fn control_id(message: &[u8]) -> &[u8] {
    let msh = message.split(|b| *b == b'\r').next().unwrap_or_default();
    msh.split(|b| *b == b'|').nth(9).unwrap_or_default()
}

/// The reference's answer: a minimal AA for `message`, nothing stored.
fn raw_ack(message: &[u8]) -> Bytes {
    let mut ack = b"MSH|^~\\&|EPR|RAL|PAS|RYJ|202601011200||ACK^A01^ACK|R1|P|2.4\rMSA|AA|".to_vec();
    ack.extend_from_slice(control_id(message));
    ack.push(b'\r');
    Bytes::from(ack)
}

/// Checks an ACK: `Ok` for AA naming `control_id` in MSA-2; otherwise the
/// MSA-1 code (or what is wrong) for counting.
fn check_ack(ack: &[u8], control_id: &str) -> Result<(), String> {
    let Some(msa) = ack
        .split(|b| *b == b'\r' || *b == b'\n')
        .find(|s| s.starts_with(b"MSA|"))
    else {
        return Err("no MSA".into());
    };
    let fields: Vec<&[u8]> = msa.split(|b| *b == b'|').collect();
    let code = fields.get(1).copied().unwrap_or_default();
    if code != b"AA" {
        return Err(String::from_utf8_lossy(code).into_owned());
    }
    if fields.get(2).copied().unwrap_or_default() != control_id.as_bytes() {
        return Err("AA for another MSH-10".into());
    }
    Ok(())
}

/// What came back in one phase.
#[derive(Debug, Default)]
struct Tally {
    accepted: u64,
    /// Non-AA answers and send errors, by kind.
    errors: BTreeMap<String, u64>,
}

impl Tally {
    fn record(&mut self, result: Result<(), String>) {
        match result {
            Ok(()) => self.accepted += 1,
            Err(kind) => *self.errors.entry(kind).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Sends one message on `sender` and checks the answer.
async fn send_one(
    sender: &MllpSender,
    messages: &Messages,
    id: &str,
    n: usize,
) -> Result<(), String> {
    let message = messages.build(id, n);
    match sender.send(&message).await {
        Ok(ack) => check_ack(&ack, id),
        Err(error) => Err(format!("send error: {error}")),
    }
}

/// One sender per connection to `target`.
fn senders(target: &str) -> Vec<Arc<MllpSender>> {
    (0..connections())
        .map(|_| {
            Arc::new(MllpSender::new(
                target,
                SenderConfig {
                    ack_timeout: Duration::from_secs(10),
                    connect_timeout: Duration::from_secs(5),
                    connect_attempts: 2,
                    ..SenderConfig::default()
                },
            ))
        })
        .collect()
}

/// Every connection sends back to back for `seconds`; returns messages
/// ACKed AA per second (from the first send to the last answer).
async fn max_rate(
    senders: &[Arc<MllpSender>],
    messages: &Arc<Messages>,
    phase: char,
    seconds: f64,
) -> (f64, Tally) {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(c, sender)| {
            let sender = sender.clone();
            let messages = messages.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut seq = 0usize;
                while Instant::now() < end {
                    let id = format!("{phase}{c:02}{seq:09}");
                    let result = send_one(&sender, &messages, &id, c * 7919 + seq).await;
                    // A connection stops at its first failure: counted,
                    // and the phase does not wait on a stuck receiver.
                    let failed = result.is_err();
                    tally.record(result);
                    if failed {
                        break;
                    }
                    seq += 1;
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for task in tasks {
        tally.merge(task.await.expect("a sending connection"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    (tally.accepted as f64 / elapsed, tally)
}

/// A fixed offered load of `rate` messages per second spread evenly over
/// the connections (each sends every `connections / rate` seconds, the
/// connections staggered) for `seconds`; returns each message's ACK
/// latency in milliseconds. The clock starts when the message is sent, or
/// when it was due if its connection was still waiting for the previous
/// ACK then (so a stall counts for the messages queued behind it).
async fn fixed_rate(
    senders: &[Arc<MllpSender>],
    messages: &Arc<Messages>,
    phase: char,
    rate: u64,
    seconds: u64,
) -> (Vec<f64>, Tally) {
    let spacing = Duration::from_nanos(1_000_000_000 / rate);
    let interval = spacing * connections() as u32;
    let per_connection = (rate * seconds) as usize / connections();
    let start = Instant::now() + Duration::from_millis(20);
    let tasks: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(c, sender)| {
            let sender = sender.clone();
            let messages = messages.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                let mut latencies = Vec::with_capacity(per_connection);
                let mut previous_answer = start;
                for k in 0..per_connection {
                    let due = start + spacing * c as u32 + interval * k as u32;
                    tokio::time::sleep_until(due).await;
                    let from = if previous_answer > due {
                        due
                    } else {
                        Instant::now()
                    };
                    let id = format!("{phase}{c:02}{k:09}");
                    let result = send_one(&sender, &messages, &id, c * 7919 + k).await;
                    previous_answer = Instant::now();
                    let failed = result.is_err();
                    if !failed {
                        latencies.push((previous_answer - from).as_secs_f64() * 1e3);
                    }
                    tally.record(result);
                    if failed {
                        break;
                    }
                }
                (latencies, tally)
            })
        })
        .collect();
    let mut all = Vec::with_capacity((rate * seconds) as usize);
    let mut tally = Tally::default();
    for task in tasks {
        let (latencies, part) = task.await.expect("a sending connection");
        all.extend(latencies);
        tally.merge(part);
    }
    if verbose() {
        let achieved = all.len() as f64 / (Instant::now() - start).as_secs_f64();
        eprintln!("bench mllp: phase {phase}: {achieved:.0} msg/s answered AA at offered {rate}/s");
    }
    (all, tally)
}

/// Drains the receiving exchange's egress queue (manual acks, prefetch
/// 1000, acknowledged 100 at a time with `multiple`, or after 5 ms
/// without a further delivery), counting deliveries, until `stop`.
pub(super) async fn drain(
    env: &TestEnv,
    count: Arc<AtomicU64>,
    stop: CancellationToken,
) -> (lapin::Connection, tokio::task::JoinHandle<()>) {
    let connection = lhcie_broker::connect(&env.broker(), "bench receiver")
        .await
        .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .basic_qos(1000, BasicQosOptions::default())
        .await
        .unwrap();
    let queue = env.names().egress_queue(&RECEIVER.parse().unwrap());
    let mut consumer = channel
        .basic_consume(
            queue.as_str().into(),
            "bench-mllp".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let multiple = BasicAckOptions { multiple: true };
    let task = tokio::spawn(async move {
        let mut unacked: Option<lapin::Acker> = None;
        let mut since_ack = 0;
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(Duration::from_millis(5)), if unacked.is_some() => {
                    if let Some(acker) = unacked.take() {
                        acker.ack(multiple).await.unwrap();
                    }
                    since_ack = 0;
                    continue;
                }
                next = consumer.next() => next,
            };
            let Some(Ok(delivery)) = next else { break };
            count.fetch_add(1, Ordering::Relaxed);
            since_ack += 1;
            if since_ack >= 100 {
                delivery.acker.ack(multiple).await.unwrap();
                unacked = None;
                since_ack = 0;
            } else {
                unacked = Some(delivery.acker);
            }
        }
        if let Some(acker) = unacked {
            let _ = acker.ack(multiple).await;
        }
    });
    (connection, task)
}

/// Waits until `expected` messages reached the receiving queue; an error
/// if they did not within two minutes.
pub(super) async fn wait_delivered(
    count: &AtomicU64,
    expected: u64,
    phase: char,
) -> Result<(), String> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(120);
    loop {
        let arrived = count.load(Ordering::Relaxed);
        if arrived >= expected {
            if verbose() {
                eprintln!(
                    "bench: phase {phase}: all {expected} at the receiving queue {:.1} s after the last ACK",
                    start.elapsed().as_secs_f64()
                );
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "phase {phase}: {arrived} of {expected} ACKed messages reached the receiving queue within 120 s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records a phase's non-AA answers as a problem.
fn check(problems: &mut Vec<String>, phase: &str, tally: &Tally) {
    if tally.error_count() > 0 {
        problems.push(format!(
            "{phase}: {} AA, then {} failures: {:?}",
            tally.accepted,
            tally.error_count(),
            tally.errors
        ));
    }
}

/// Runs the reference and the adapter phases, prints the figures; fails
/// (after cleaning up) if any ACK was not AA or a message went missing.
pub async fn run() {
    let messages = Arc::new(Messages::load());
    let mut problems: Vec<String> = Vec::new();
    eprintln!(
        "bench mllp: {} connections, {SECONDS} s per phase, {} byte ADT^A01, adapter ack_wait_ms {ACK_WAIT_MS}",
        connections(),
        messages.build("X00000000000", 0).len()
    );

    let env = TestEnv::new("bench-mllp");
    let listen = free_port();
    use_hl7v2_adapter(&env, SENDER, listen, free_port());
    let hub = HubProcess::start(&env).await;
    let adapter = AdapterProcess::start(
        &env,
        SENDER,
        listen,
        &AdapterOptions {
            ack_wait_ms: ACK_WAIT_MS,
            extra_hl7v2: String::new(),
            // One info line per message would cost the adapter more than
            // an operator would pay for it under load.
            log_level: "warn",
            broker_credentials: None,
            fhir: String::new(),
            extra_tables: String::new(),
        },
    )
    .await;
    let delivered = Arc::new(AtomicU64::new(0));
    let stop_drain = CancellationToken::new();
    let (drain_connection, drain_task) = drain(&env, delivered.clone(), stop_drain.clone()).await;

    // The reference: an in-process listener answering AA at once.
    let reference = MllpListener::bind(
        "127.0.0.1:0",
        ListenerConfig {
            max_connections: 256,
            ..ListenerConfig::default()
        },
    )
    .await
    .expect("binding the reference listener");
    let reference_addr = reference.local_addr().unwrap().to_string();
    let stop_reference = CancellationToken::new();
    let reference_task = tokio::spawn(reference.serve(
        |message: Bytes, _peer: PeerInfo| async move { raw_ack(&message) },
        stop_reference.clone(),
    ));
    let raw_senders = senders(&reference_addr);
    let (_, tally) = max_rate(&raw_senders, &messages, 'w', 2.0).await;
    check(&mut problems, "reference warm-up", &tally);
    let (raw_rate, tally) = max_rate(&raw_senders, &messages, 'm', SECONDS as f64).await;
    check(&mut problems, "reference maximum rate", &tally);
    let (raw_latencies, tally) = fixed_rate(&raw_senders, &messages, 'l', RATE, SECONDS).await;
    check(&mut problems, "reference at 1,000/s", &tally);
    let raw_latencies = Percentiles::new(raw_latencies);
    for sender in &raw_senders {
        sender.close().await;
    }
    stop_reference.cancel();
    let _ = reference_task.await;

    // The adapter, the hub and the broker.
    let adapter_senders = senders(&format!("127.0.0.1:{listen}"));
    // A failed phase (the adapter stuck or refusing) ends the adapter's
    // part: later phases would only wait on it.
    let mut expected = 0;
    let mut ingest_rate = f64::NAN;
    let mut latencies = Vec::new();
    'adapter: {
        let (_, tally) = max_rate(&adapter_senders, &messages, 'W', 2.0).await;
        check(&mut problems, "adapter warm-up", &tally);
        expected += tally.accepted;
        if tally.error_count() > 0 {
            break 'adapter;
        }
        if let Err(problem) = wait_delivered(&delivered, expected, 'W').await {
            problems.push(problem);
            break 'adapter;
        }
        let (rate, tally) = max_rate(&adapter_senders, &messages, 'M', SECONDS as f64).await;
        check(&mut problems, "adapter maximum rate", &tally);
        expected += tally.accepted;
        ingest_rate = rate;
        if tally.error_count() > 0 {
            break 'adapter;
        }
        if let Err(problem) = wait_delivered(&delivered, expected, 'M').await {
            problems.push(problem);
            break 'adapter;
        }
        let (measured, tally) = fixed_rate(&adapter_senders, &messages, 'L', RATE, SECONDS).await;
        check(&mut problems, "adapter at 1,000/s", &tally);
        expected += tally.accepted;
        latencies = measured;
        if tally.error_count() > 0 {
            break 'adapter;
        }
        if let Err(problem) = wait_delivered(&delivered, expected, 'L').await {
            problems.push(problem);
        }
    }
    let latencies = Percentiles::new(latencies);
    for sender in &adapter_senders {
        sender.close().await;
    }

    line("hl7_mllp_raw_reference", raw_rate, "msg/s", None, None);
    line(
        "hl7_mllp_raw_ack_p50_at_1000",
        raw_latencies.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "hl7_mllp_raw_ack_p99_at_1000",
        raw_latencies.at(0.99),
        "ms",
        None,
        None,
    );
    line(
        "hl7_mllp_ingest",
        ingest_rate,
        "msg/s",
        Some(ingest_rate / raw_rate),
        None,
    );
    line(
        "hl7_mllp_ack_p50_at_1000",
        latencies.at(0.5),
        "ms",
        None,
        None,
    );
    line(
        "hl7_mllp_ack_p99_at_1000",
        latencies.at(0.99),
        "ms",
        None,
        Some("<=20"),
    );
    if verbose() {
        eprintln!(
            "bench mllp: adapter ACK at 1,000/s: p90 {:.1} p99.9 {:.1} max {:.1} ms; reference p90 {:.1} p99.9 {:.1} max {:.1} ms",
            latencies.at(0.9),
            latencies.at(0.999),
            latencies.at(1.0),
            raw_latencies.at(0.9),
            raw_latencies.at(0.999),
            raw_latencies.at(1.0),
        );
    }

    finish(
        "mllp",
        Drain {
            stop: stop_drain,
            task: drain_task,
            connection: drain_connection,
        },
        adapter,
        hub,
        env,
        problems,
    )
    .await;
}

/// The receiving queue's drain of a benchmark.
pub(super) struct Drain {
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    pub connection: lapin::Connection,
}

/// Ends an adapter benchmark: stops the drain and the adapter, shows the
/// adapter's last log lines if anything went wrong (warnings and errors:
/// message ids and reasons, no content), cleans up, and fails on problems.
pub(super) async fn finish(
    part: &str,
    drain: Drain,
    mut adapter: AdapterProcess,
    hub: HubProcess,
    env: TestEnv,
    mut problems: Vec<String>,
) {
    drain.stop.cancel();
    let _ = drain.task.await;
    let _ = drain.connection.close(200, "done".into()).await;
    if !adapter.stop().await {
        problems.push("the adapter did not stop within 15 s of SIGTERM (killed)".into());
    }
    if !problems.is_empty() {
        let log = adapter.log();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        eprintln!(
            "bench {part}: the adapter's log, last lines:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    drop(adapter);
    drop(hub);
    env.cleanup().await;
    assert!(problems.is_empty(), "bench {part} failed: {problems:?}");
}
