//! Unit tests of the outbox, with an in-process fake hub.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::*;

fn envelope(message_id: &str) -> pb::Envelope {
    pb::Envelope {
        message_id: message_id.to_owned(),
        correlation_id: format!("corr-{message_id}"),
        sender_reference: format!("ref-{message_id}"),
        ..Default::default()
    }
}

fn ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("m{i:03}")).collect()
}

fn fast() -> ForwardOptions {
    ForwardOptions {
        window: 8,
        retry_min: Duration::from_millis(5),
        retry_max: Duration::from_millis(40),
        answer_timeout: Duration::from_secs(30),
    }
}

/// What the fake hub answers to the `n`th submission (from 1) of a message.
#[derive(Clone)]
enum Reply {
    Accept,
    Reject(hubpb::RejectReason, &'static str),
    /// An answer without an outcome (not final).
    NotFinal,
    /// No answer at all (the hub holds it / the connection dropped it).
    Silent,
    /// Accept after a delay.
    AcceptAfter(Duration),
}

fn accepted(message_id: &str) -> hubpb::SubmitResponse {
    hubpb::SubmitResponse {
        message_id: message_id.to_owned(),
        outcome: Some(hubpb::submit_response::Outcome::Accepted(hubpb::Accepted {
            duplicate: false,
            recipients: vec![],
        })),
    }
}

/// A sink that refuses the first `failures` submissions, then hands them to
/// the fake hub task.
struct FakeSink {
    failures: AtomicUsize,
    to_hub: mpsc::UnboundedSender<pb::Envelope>,
}

impl HubSink for FakeSink {
    fn submit(&self, envelope: pb::Envelope) -> impl Future<Output = Result<(), SinkError>> + Send {
        let result = if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            Err(SinkError::Unavailable)
        } else {
            self.to_hub.send(envelope).map_err(|_| SinkError::Closed)
        };
        std::future::ready(result)
    }
}

struct Harness {
    /// Message ids in the order the hub got them (every submission).
    log: Arc<Mutex<Vec<String>>>,
    shutdown: CancellationToken,
    forwarder: JoinHandle<Result<ForwardReport, OutboxError>>,
}

impl Harness {
    fn start<F>(outbox: &Outbox, failures: usize, options: ForwardOptions, mut decide: F) -> Self
    where
        F: FnMut(&str, usize) -> Reply + Send + 'static,
    {
        let (to_hub, mut hub_in) = mpsc::unbounded_channel::<pb::Envelope>();
        let (answers_tx, answers) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let hub_log = log.clone();
        tokio::spawn(async move {
            let mut seen: HashMap<String, usize> = HashMap::new();
            while let Some(envelope) = hub_in.recv().await {
                let id = envelope.message_id.clone();
                hub_log.lock().unwrap().push(id.clone());
                let n = seen.entry(id.clone()).or_default();
                *n += 1;
                let response = match decide(&id, *n) {
                    Reply::Accept => accepted(&id),
                    Reply::Reject(reason, detail) => hubpb::SubmitResponse {
                        message_id: id,
                        outcome: Some(hubpb::submit_response::Outcome::Rejected(hubpb::Rejected {
                            reason: reason as i32,
                            detail: detail.to_owned(),
                        })),
                    },
                    Reply::NotFinal => hubpb::SubmitResponse {
                        message_id: id,
                        outcome: None,
                    },
                    Reply::Silent => continue,
                    Reply::AcceptAfter(delay) => {
                        let answers_tx = answers_tx.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            let _ = answers_tx.send(accepted(&id));
                        });
                        continue;
                    }
                };
                if answers_tx.send(response).is_err() {
                    return;
                }
            }
        });
        let sink = FakeSink {
            failures: AtomicUsize::new(failures),
            to_hub,
        };
        let shutdown = CancellationToken::new();
        let forwarder = {
            let outbox = outbox.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { outbox.forward_with(sink, answers, shutdown, options).await })
        };
        Self {
            log,
            shutdown,
            forwarder,
        }
    }

    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn stop(self) -> ForwardReport {
        self.shutdown.cancel();
        let report = self.forwarder.await.unwrap().unwrap();
        assert_eq!(report.ended, ForwardEnd::Shutdown);
        report
    }
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The first occurrence of each id, in order.
fn first_submissions(log: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    log.iter().filter(|id| seen.insert(*id)).cloned().collect()
}

fn pending_ids(outbox: &Outbox) -> Vec<String> {
    outbox
        .pending()
        .unwrap()
        .into_iter()
        .map(|entry| entry.message_id)
        .collect()
}

/// Opens the outbox in `dir` again. sled's background flusher may hold
/// the directory's lock for a moment after the last handle is dropped.
async fn reopen(dir: &std::path::Path, options: OutboxOptions) -> Outbox {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Outbox::open_with(dir, options.clone()) {
            Ok(outbox) => return outbox,
            Err(OutboxError::Storage(sled::Error::Io(error)))
                if error.to_string().contains("could not acquire lock")
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(error) => panic!("reopening the outbox: {error}"),
        }
    }
}

#[tokio::test]
async fn put_is_durable_ordered_and_the_sequence_continues_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let first = ids(20);
    let mut last_seq = 0;
    {
        let outbox = Outbox::open(dir.path()).unwrap();
        for id in &first {
            let ticket = outbox.put(envelope(id)).await.unwrap();
            assert!(!ticket.duplicate);
            assert!(ticket.seq > last_seq, "sequence must increase");
            last_seq = ticket.seq;
        }
        assert_eq!(outbox.pending_len(), 20);
        // Dropped without forwarding.
    }
    let outbox = reopen(dir.path(), OutboxOptions::default()).await;
    assert_eq!(outbox.pending_len(), 20);
    let entries = outbox.pending().unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.message_id.clone())
            .collect::<Vec<_>>(),
        first
    );
    for entry in &entries {
        assert_eq!(entry.envelope, envelope(&entry.message_id), "content kept");
    }
    // More puts continue the sequence; nothing collides or reorders.
    let more: Vec<String> = (20..25).map(|i| format!("m{i:03}")).collect();
    for id in &more {
        let ticket = outbox.put(envelope(id)).await.unwrap();
        assert!(!ticket.duplicate);
        assert!(ticket.seq > last_seq, "sequence continues after reopen");
        last_seq = ticket.seq;
    }
    let all: Vec<String> = first.iter().chain(&more).cloned().collect();
    assert_eq!(pending_ids(&outbox), all);
    assert_eq!(outbox.pending_len(), 25);

    // Once everything is answered and the outbox reopened, the sequence
    // still does not go back.
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    eventually("all accepted", || outbox.pending_len() == 0).await;
    harness.stop().await;
    drop(outbox);
    let outbox = reopen(
        dir.path(),
        OutboxOptions {
            answered_capacity: 0,
        },
    )
    .await;
    assert_eq!(outbox.answered_len(), 0, "capacity applied on open");
    let ticket = outbox.put(envelope("after")).await.unwrap();
    assert!(ticket.seq > last_seq);
}

#[tokio::test]
async fn a_duplicate_put_keeps_one_entry_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = Outbox::open(dir.path()).unwrap();
    let first = outbox.put(envelope("dup")).await.unwrap();
    assert!(!first.duplicate);
    let other = outbox.put(envelope("other")).await.unwrap();
    let mut changed = envelope("dup");
    changed.sender_reference = "resent".into();
    let again = outbox.put(changed).await.unwrap();
    assert!(again.duplicate);
    assert_eq!(again.seq, first.seq);
    assert_eq!(again.message_id, "dup");
    assert_eq!(outbox.pending_len(), 2);
    let entries = outbox.pending().unwrap();
    assert_eq!(
        entries[0].envelope,
        envelope("dup"),
        "the first copy is kept"
    );
    assert_eq!(entries[1].seq, other.seq);
    drop(outbox);

    // Still recognised after reopening, and after the hub accepted it.
    let outbox = reopen(dir.path(), OutboxOptions::default()).await;
    assert!(outbox.put(envelope("dup")).await.unwrap().duplicate);
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    eventually("all accepted", || outbox.pending_len() == 0).await;
    harness.stop().await;
    let resent = outbox.put(envelope("dup")).await.unwrap();
    assert!(resent.duplicate);
    assert_eq!(resent.seq, first.seq);
    assert_eq!(outbox.pending_len(), 0);
}

#[tokio::test]
async fn an_envelope_without_message_id_is_refused() {
    let outbox = Outbox::temporary().unwrap();
    assert!(matches!(
        outbox.put(envelope("")).await,
        Err(OutboxError::MissingMessageId)
    ));
    assert_eq!(outbox.pending_len(), 0);
}

#[tokio::test]
async fn final_answers_settle_entries() {
    let outbox = Outbox::temporary().unwrap();
    for id in ["a", "b", "c"] {
        outbox.put(envelope(id)).await.unwrap();
    }
    let harness = Harness::start(&outbox, 0, fast(), |id, _| match id {
        "b" => Reply::Reject(
            hubpb::RejectReason::UnknownRecipient,
            "addressing.recipients[0]: not served by any exchange",
        ),
        _ => Reply::Accept,
    });
    eventually("all settled", || outbox.pending_len() == 0).await;
    let report = harness.stop().await;
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejected, 1);
    assert_eq!(report.submitted, 3);

    assert!(outbox.pending().unwrap().is_empty());
    assert_eq!(outbox.answered_len(), 2);
    let rejected = outbox.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].message_id, "b");
    assert_eq!(rejected[0].reason(), hubpb::RejectReason::UnknownRecipient);
    assert_eq!(
        rejected[0].rejection.detail,
        "addressing.recipients[0]: not served by any exchange"
    );
    assert_eq!(rejected[0].envelope, envelope("b"));
    assert!(
        !format!("{:?}", rejected[0]).contains("ref-b"),
        "Debug leaves the envelope out"
    );

    let a = outbox.answer_of("a").unwrap().unwrap();
    assert!(matches!(a.outcome, Outcome::Accepted(_)));
    let b = outbox.answer_of("b").unwrap().unwrap();
    assert!(
        matches!(b.outcome, Outcome::Rejected(ref r) if r.reason == hubpb::RejectReason::UnknownRecipient as i32)
    );
    assert!(outbox.answer_of("zzz").unwrap().is_none());

    // A resend of the rejected message is a duplicate until the adapter
    // has told the local system and removed it.
    assert!(outbox.put(envelope("b")).await.unwrap().duplicate);
    assert!(outbox.remove_rejected("b").unwrap());
    assert!(!outbox.remove_rejected("b").unwrap());
    assert!(!outbox.remove_rejected("a").unwrap(), "a was accepted");
    assert!(outbox.rejected().unwrap().is_empty());
    assert!(!outbox.put(envelope("b")).await.unwrap().duplicate);
}

#[tokio::test]
async fn not_final_answers_and_an_unavailable_sink_are_retried_until_accepted() {
    let outbox = Outbox::temporary().unwrap();
    let expected = ids(30);
    for id in &expected {
        outbox.put(envelope(id)).await.unwrap();
    }
    let options = ForwardOptions {
        answer_timeout: Duration::from_millis(150),
        ..fast()
    };
    // The sink refuses the first 3 submissions; the hub says "not final"
    // twice to every third message, and drops the first copy of m005 (a
    // lost connection) so only the answer timeout brings it back.
    let harness = Harness::start(&outbox, 3, options, |id, n| {
        let index: usize = id[1..].parse().unwrap_or(1);
        if id == "m005" && n == 1 {
            Reply::Silent
        } else if index.is_multiple_of(3) && n <= 2 {
            Reply::NotFinal
        } else {
            Reply::Accept
        }
    });
    eventually("all accepted", || outbox.pending_len() == 0).await;
    // Entries put while forwarding are forwarded too.
    outbox.put(envelope("late")).await.unwrap();
    eventually("late accepted", || outbox.pending_len() == 0).await;
    let log = harness.log();
    let report = harness.stop().await;

    let mut all = expected.clone();
    all.push("late".into());
    assert_eq!(
        first_submissions(&log),
        all,
        "first submissions in arrival order"
    );
    assert_eq!(report.accepted, 31);
    assert_eq!(report.rejected, 0);
    assert_eq!(report.sink_unavailable, 3);
    // 10 messages twice not final, plus m005's lost copy.
    assert_eq!(report.not_final, 21);
    // ... and m000, whose first three attempts the sink refused.
    assert_eq!(report.resubmitted, 22);
    assert_eq!(log.len(), 31 + 21);
    assert_eq!(log.iter().filter(|id| *id == "m003").count(), 3);
    assert_eq!(log.iter().filter(|id| *id == "m005").count(), 2);
    for id in &all {
        assert!(
            matches!(
                outbox.answer_of(id).unwrap().unwrap().outcome,
                Outcome::Accepted(_)
            ),
            "{id} accepted"
        );
    }
    assert!(outbox.rejected().unwrap().is_empty());
}

#[tokio::test]
async fn after_a_restart_only_the_unanswered_entries_are_submitted_again() {
    let dir = tempfile::tempdir().unwrap();
    let all = ids(10);
    {
        let outbox = Outbox::open(dir.path()).unwrap();
        for id in &all {
            outbox.put(envelope(id)).await.unwrap();
        }
        // The hub answers the first four and holds the rest.
        let harness = Harness::start(&outbox, 0, fast(), |id, _| {
            if id < "m004" {
                Reply::Accept
            } else {
                Reply::Silent
            }
        });
        eventually("four accepted", || outbox.pending_len() == 6).await;
        eventually("all submitted", || harness.log().len() == 10).await;
        harness.stop().await;
        // The outbox (every clone) is dropped here: the adapter stops.
    }
    let outbox = reopen(dir.path(), OutboxOptions::default()).await;
    assert_eq!(outbox.pending_len(), 6);
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    eventually("the rest accepted", || outbox.pending_len() == 0).await;
    let log = harness.log();
    let report = harness.stop().await;
    assert_eq!(log, all[4..].to_vec(), "only the unanswered, in order");
    assert_eq!(report.accepted, 6);
    assert_eq!(outbox.answered_len(), 10);
}

#[tokio::test]
async fn waiting_for_an_answer_returns_it_in_time_or_times_out() {
    let outbox = Outbox::temporary().unwrap();
    for id in ["slow", "held", "bad"] {
        outbox.put(envelope(id)).await.unwrap();
    }
    let harness = Harness::start(&outbox, 0, fast(), |id, _| match id {
        "slow" => Reply::AcceptAfter(Duration::from_millis(100)),
        "bad" => Reply::Reject(hubpb::RejectReason::InvalidEnvelope, "patient: is required"),
        _ => Reply::Silent,
    });
    let started = tokio::time::Instant::now();
    let answer = outbox
        .wait_for_answer("slow", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("answered in time");
    assert_eq!(answer.message_id, "slow");
    assert!(matches!(answer.outcome, Outcome::Accepted(_)));
    assert!(started.elapsed() < Duration::from_secs(5));

    let bad = outbox
        .wait_for_answer("bad", Duration::from_secs(5))
        .await
        .unwrap()
        .expect("already known");
    assert!(matches!(bad.outcome, Outcome::Rejected(ref r) if r.detail == "patient: is required"));

    let started = tokio::time::Instant::now();
    let none = outbox
        .wait_for_answer("held", Duration::from_millis(200))
        .await
        .unwrap();
    assert!(none.is_none());
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(outbox.pending_len(), 1, "still pending, still forwarded");
    harness.stop().await;
}

#[tokio::test]
async fn subscribers_see_every_final_answer() {
    let outbox = Outbox::temporary().unwrap();
    let mut answers = outbox.subscribe();
    for id in ["x", "y"] {
        outbox.put(envelope(id)).await.unwrap();
    }
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    let mut got = vec![
        answers.recv().await.unwrap().message_id,
        answers.recv().await.unwrap().message_id,
    ];
    got.sort();
    assert_eq!(got, ["x", "y"]);
    harness.stop().await;
}

#[tokio::test]
async fn the_answered_record_is_bounded() {
    let outbox = Outbox::temporary_with(OutboxOptions {
        answered_capacity: 3,
    })
    .unwrap();
    for id in ids(5) {
        outbox.put(envelope(&id)).await.unwrap();
    }
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    eventually("all accepted", || outbox.pending_len() == 0).await;
    harness.stop().await;
    assert_eq!(outbox.answered_len(), 3);
    assert!(
        outbox.answer_of("m000").unwrap().is_none(),
        "oldest dropped"
    );
    assert!(outbox.answer_of("m004").unwrap().is_some());
    assert!(outbox.put(envelope("m004")).await.unwrap().duplicate);
    // Beyond the record a resend is stored again (the hub de-duplicates).
    assert!(!outbox.put(envelope("m000")).await.unwrap().duplicate);
    assert_eq!(outbox.pending_len(), 1);
}

#[tokio::test]
async fn the_forwarder_stops_when_the_sink_closes() {
    let outbox = Outbox::temporary().unwrap();
    outbox.put(envelope("m")).await.unwrap();
    let (to_hub, hub_in) = mpsc::unbounded_channel();
    drop(hub_in);
    let (_answers_tx, answers) = mpsc::unbounded_channel();
    let sink = FakeSink {
        failures: AtomicUsize::new(0),
        to_hub,
    };
    let report = outbox
        .forward_with(sink, answers, CancellationToken::new(), fast())
        .await
        .unwrap();
    assert_eq!(report.ended, ForwardEnd::SinkClosed);
    assert_eq!(outbox.pending_len(), 1, "nothing lost");
}

/// Fifty local connections putting at once (an MLLP listener under load)
/// all complete, durably, with distinct sequence numbers: sled 0.34
/// deadlocked here when every put flushed for itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_puts_complete_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    {
        let outbox = Outbox::open(dir.path()).unwrap();
        let mut connections = Vec::new();
        for connection in 0..50 {
            let outbox = outbox.clone();
            connections.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for n in 0..20 {
                    let ticket = outbox
                        .put(envelope(&format!("c{connection:02}-{n:02}")))
                        .await
                        .unwrap();
                    seqs.push(ticket.seq);
                }
                seqs
            }));
        }
        let mut seqs = tokio::time::timeout(Duration::from_secs(60), async {
            let mut all = Vec::new();
            for connection in connections {
                all.extend(connection.await.unwrap());
            }
            all
        })
        .await
        .expect("every put finished: no deadlock");
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), 1000);
        assert_eq!(outbox.pending_len(), 1000);
    }
    let outbox = reopen(dir.path(), OutboxOptions::default()).await;
    assert_eq!(outbox.pending_len(), 1000);
}

#[tokio::test]
async fn a_receipt_lives_as_long_as_its_message_id_is_known() {
    let outbox = Outbox::temporary_with(OutboxOptions {
        answered_capacity: 2,
    })
    .unwrap();
    outbox
        .put_with_receipt(envelope("kept"), b"MSH|first")
        .await
        .unwrap();
    // A duplicate keeps the first receipt.
    let again = outbox
        .put_with_receipt(envelope("kept"), b"MSH|second")
        .await
        .unwrap();
    assert!(again.duplicate);
    outbox.put(envelope("bare")).await.unwrap();
    outbox
        .put_with_receipt(envelope("refused"), b"MSH|refused")
        .await
        .unwrap();
    assert_eq!(
        outbox.receipt("kept").unwrap().as_deref(),
        Some(&b"MSH|first"[..])
    );
    assert_eq!(outbox.receipt("bare").unwrap(), None);

    let harness = Harness::start(&outbox, 0, fast(), |id, _| {
        if id == "refused" {
            Reply::Reject(hubpb::RejectReason::UnknownRecipient, "no such")
        } else {
            Reply::Accept
        }
    });
    eventually("all answered", || outbox.pending_len() == 0).await;
    harness.stop().await;
    // Accepted: still known in the answered record, so is its receipt.
    assert_eq!(
        outbox.receipt("kept").unwrap().as_deref(),
        Some(&b"MSH|first"[..])
    );
    // Rejected: kept until the rejection is reported, then gone.
    assert!(outbox.receipt("refused").unwrap().is_some());
    assert!(outbox.remove_rejected("refused").unwrap());
    assert_eq!(outbox.receipt("refused").unwrap(), None);

    // Pushed out of the bounded answered record: gone with it.
    for id in ["n1", "n2", "n3"] {
        outbox.put(envelope(id)).await.unwrap();
    }
    let harness = Harness::start(&outbox, 0, fast(), |_, _| Reply::Accept);
    eventually("all answered", || outbox.pending_len() == 0).await;
    harness.stop().await;
    outbox.evict_answered().unwrap();
    assert!(outbox.answer_of("kept").unwrap().is_none());
    assert_eq!(outbox.receipt("kept").unwrap(), None);
}
