//! The forwarder: submits pending entries in arrival order and settles them
//! on the hub's final answers.
//!
//! State kept in memory only (rebuilt from the store on start, where every
//! pending entry counts as never submitted):
//!
//! - a cursor: entries below it were submitted at least once;
//! - `in_flight`: submitted, awaiting an answer (at most
//!   [`ForwardOptions::window`]); an entry with no answer within
//!   [`ForwardOptions::answer_timeout`] is submitted again;
//! - `retries`: entries to submit again at a given time (non-final answer,
//!   answer timeout, or the sink unavailable), taken before new entries.
//!
//! When the sink is unavailable the forwarder pauses as a whole with
//! backoff, so first submissions keep arrival order.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lhcie_proto::{canonical as pb, hub as hubpb};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{Answer, Outbox, OutboxError, Outcome, PENDING, decode_envelope};
use crate::uplink::Uplink;

/// Where the forwarder submits envelopes: the [`Uplink`], or a fake in
/// tests. Answers come back separately, on the channel given to
/// [`Outbox::forward`].
pub trait HubSink: Send + Sync {
    /// Hands one envelope on towards the hub; may wait while the sink is
    /// full. `Ok` means it is on its way and an answer is expected, not
    /// that the hub has it.
    fn submit(&self, envelope: pb::Envelope) -> impl Future<Output = Result<(), SinkError>> + Send;
}

/// Why a [`HubSink`] did not take an envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Not now (e.g. no connection); the forwarder retries with backoff.
    #[error("the hub cannot take envelopes now")]
    Unavailable,
    /// Never again (the uplink has stopped); the forwarder ends.
    #[error("the uplink has stopped")]
    Closed,
}

impl HubSink for Uplink {
    async fn submit(&self, envelope: pb::Envelope) -> Result<(), SinkError> {
        Uplink::submit(self, envelope)
            .await
            .map_err(|_| SinkError::Closed)
    }
}

impl<S: HubSink> HubSink for Arc<S> {
    fn submit(&self, envelope: pb::Envelope) -> impl Future<Output = Result<(), SinkError>> + Send {
        S::submit(self, envelope)
    }
}

/// Settings of the forwarder.
#[derive(Debug, Clone)]
pub struct ForwardOptions {
    /// At most this many entries submitted and not yet answered.
    pub window: usize,
    /// First delay before submitting again (doubles per attempt).
    pub retry_min: Duration,
    /// Longest delay before submitting again.
    pub retry_max: Duration,
    /// An entry submitted this long ago without an answer is submitted
    /// again (a safety net: the [`Uplink`] itself resubmits after a
    /// reconnect).
    pub answer_timeout: Duration,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        Self {
            window: 256,
            retry_min: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            answer_timeout: Duration::from_secs(300),
        }
    }
}

/// Why the forwarder stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardEnd {
    /// Shutdown was requested.
    Shutdown,
    /// The sink said it is closed for good.
    SinkClosed,
    /// The answers channel closed.
    AnswersClosed,
}

/// What one forwarder run did (for operators and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForwardReport {
    /// Why it stopped.
    pub ended: ForwardEnd,
    /// Submissions taken by the sink, resubmissions included.
    pub submitted: u64,
    /// Of those, submissions after an earlier attempt (refused by the
    /// sink, answered "not final", or unanswered in time).
    pub resubmitted: u64,
    /// Entries settled as accepted.
    pub accepted: u64,
    /// Entries settled as rejected.
    pub rejected: u64,
    /// Answers that were not final, and answers that did not come in time.
    pub not_final: u64,
    /// Submissions the sink refused as unavailable.
    pub sink_unavailable: u64,
}

struct Flight {
    seq: u64,
    attempt: u32,
    deadline: Instant,
}

struct Forwarder<'a> {
    outbox: &'a Outbox,
    options: ForwardOptions,
    /// The lowest sequence number never submitted by this run.
    cursor: u64,
    in_flight: HashMap<String, Flight>,
    /// (due, seq) → attempt.
    retries: BTreeMap<(Instant, u64), u32>,
    paused_until: Option<Instant>,
    sink_backoff: Duration,
    report: ForwardReport,
}

pub(super) async fn run<S: HubSink>(
    outbox: &Outbox,
    sink: S,
    mut answers: crate::Answers,
    shutdown: CancellationToken,
    options: ForwardOptions,
) -> Result<ForwardReport, OutboxError> {
    let mut forwarder = Forwarder {
        outbox,
        sink_backoff: options.retry_min,
        options,
        cursor: 0,
        in_flight: HashMap::new(),
        retries: BTreeMap::new(),
        paused_until: None,
        report: ForwardReport {
            ended: ForwardEnd::Shutdown,
            submitted: 0,
            resubmitted: 0,
            accepted: 0,
            rejected: 0,
            not_final: 0,
            sink_unavailable: 0,
        },
    };
    tracing::info!(pending = outbox.pending_len(), "outbox forwarder started");
    let mut carried: Option<hubpb::SubmitResponse> = None;
    let ended = 'run: loop {
        if shutdown.is_cancelled() {
            break ForwardEnd::Shutdown;
        }
        // Every answer already waiting, settled and flushed as one batch.
        let mut batch: Vec<_> = carried.take().into_iter().collect();
        let mut answers_closed = false;
        loop {
            match answers.try_recv() {
                Ok(answer) => batch.push(answer),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    answers_closed = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            forwarder.settle(batch).await?;
        }
        if answers_closed {
            break ForwardEnd::AnswersClosed;
        }

        forwarder.expire();

        // Submit while the window allows.
        let now = Instant::now();
        if forwarder.paused_until.is_some_and(|until| until > now) {
            // The sink was unavailable; wait.
        } else {
            forwarder.paused_until = None;
            while forwarder.in_flight.len() < forwarder.options.window.max(1) {
                let Some((seq, attempt, envelope)) = forwarder.next_candidate(now)? else {
                    break;
                };
                let message_id = envelope.message_id.clone();
                let result = tokio::select! {
                    result = sink.submit(envelope) => result,
                    _ = shutdown.cancelled() => break 'run ForwardEnd::Shutdown,
                };
                match result {
                    Ok(()) => forwarder.submitted(message_id, seq, attempt),
                    Err(SinkError::Closed) => break 'run ForwardEnd::SinkClosed,
                    Err(SinkError::Unavailable) => {
                        forwarder.sink_unavailable(&message_id, seq, attempt);
                        break;
                    }
                }
            }
        }

        let wake = forwarder.next_wake();
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break ForwardEnd::Shutdown,
            answer = answers.recv() => match answer {
                Some(answer) => carried = Some(answer),
                None => break ForwardEnd::AnswersClosed,
            },
            _ = outbox.new_entries().notified() => {}
            _ = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
        }
    };
    forwarder.report.ended = ended;
    let report = forwarder.report;
    tracing::info!(
        ended = ?report.ended,
        pending = outbox.pending_len(),
        in_flight = forwarder.in_flight.len(),
        submitted = report.submitted,
        accepted = report.accepted,
        rejected = report.rejected,
        "outbox forwarder stopped"
    );
    Ok(report)
}

impl Forwarder<'_> {
    /// The next entry to submit: a due retry first, else the next new one.
    fn next_candidate(
        &mut self,
        now: Instant,
    ) -> Result<Option<(u64, u32, pb::Envelope)>, OutboxError> {
        loop {
            let due = self
                .retries
                .first_key_value()
                .map(|(&(due, seq), _)| (due, seq))
                .filter(|&(due, _)| due <= now);
            let (seq, attempt, bytes) = if let Some(key) = due {
                let attempt = self.retries.remove(&key).unwrap_or(1);
                match self.outbox.pending_entry(key.1)? {
                    Some(bytes) => (key.1, attempt, bytes),
                    // Settled meanwhile (a late answer).
                    None => continue,
                }
            } else {
                match self.outbox.next_pending(self.cursor)? {
                    Some((seq, bytes)) => {
                        self.cursor = seq + 1;
                        (seq, 0, bytes)
                    }
                    None => return Ok(None),
                }
            };
            match decode_envelope(PENDING, seq, &bytes) {
                Ok(envelope) => return Ok(Some((seq, attempt, envelope))),
                Err(error) => {
                    // Left pending for an operator; never dropped.
                    tracing::error!(seq, %error, "outbox entry unreadable; not submitted");
                }
            }
        }
    }

    fn submitted(&mut self, message_id: String, seq: u64, attempt: u32) {
        self.sink_backoff = self.options.retry_min;
        self.report.submitted += 1;
        if attempt > 0 {
            self.report.resubmitted += 1;
            tracing::debug!(%message_id, seq, attempt, "outbox entry submitted again");
        }
        self.in_flight.insert(
            message_id,
            Flight {
                seq,
                attempt,
                deadline: Instant::now() + self.options.answer_timeout,
            },
        );
    }

    fn sink_unavailable(&mut self, message_id: &str, seq: u64, attempt: u32) {
        let until = Instant::now() + self.sink_backoff;
        tracing::warn!(
            %message_id,
            seq,
            retry_in_ms = self.sink_backoff.as_millis() as u64,
            pending = self.outbox.pending_len(),
            "the hub cannot take outbox entries now"
        );
        self.retries.insert((until, seq), attempt + 1);
        self.paused_until = Some(until);
        self.sink_backoff = (self.sink_backoff * 2).min(self.options.retry_max);
        self.report.sink_unavailable += 1;
    }

    /// Entries without an answer in time go back to be submitted again.
    fn expire(&mut self) {
        let now = Instant::now();
        let expired: Vec<String> = self
            .in_flight
            .iter()
            .filter(|(_, flight)| flight.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for message_id in expired {
            if let Some(flight) = self.in_flight.remove(&message_id) {
                tracing::warn!(%message_id, seq = flight.seq, "no answer from the hub in time; submitting again");
                self.report.not_final += 1;
                self.retries.insert((now, flight.seq), flight.attempt + 1);
            }
        }
    }

    /// Records the final answers, makes them durable, then tells watchers;
    /// non-final answers schedule a retry.
    async fn settle(&mut self, batch: Vec<hubpb::SubmitResponse>) -> Result<(), OutboxError> {
        let mut settled: Vec<Answer> = Vec::new();
        for response in batch {
            let message_id = response.message_id.as_str();
            if message_id.is_empty() {
                tracing::warn!("the hub answered without a message id; ignored");
                continue;
            }
            match Outcome::from_response(&response) {
                Some(outcome) => {
                    self.in_flight.remove(message_id);
                    match self.outbox.record_answer(message_id, outcome)? {
                        Some(answer) => {
                            match &answer.outcome {
                                Outcome::Accepted(accepted) => {
                                    self.report.accepted += 1;
                                    tracing::debug!(%message_id, seq = answer.seq, duplicate = accepted.duplicate, "outbox entry accepted by the hub");
                                }
                                Outcome::Rejected(rejected) => {
                                    self.report.rejected += 1;
                                    let reason = hubpb::RejectReason::try_from(rejected.reason)
                                        .unwrap_or_default();
                                    tracing::warn!(%message_id, seq = answer.seq, reason = reason.as_str_name(), "outbox entry rejected by the hub");
                                }
                            }
                            settled.push(answer);
                        }
                        None => {
                            tracing::debug!(%message_id, "an answer for an entry no longer pending");
                        }
                    }
                }
                None => {
                    if let Some(flight) = self.in_flight.remove(message_id) {
                        let delay = self.delay(flight.attempt);
                        tracing::debug!(%message_id, seq = flight.seq, retry_in_ms = delay.as_millis() as u64, "the hub's answer is not final; submitting again later");
                        self.report.not_final += 1;
                        self.retries
                            .insert((Instant::now() + delay, flight.seq), flight.attempt + 1);
                    }
                }
            }
        }
        if !settled.is_empty() {
            self.outbox.flush().await?;
            for answer in settled {
                self.outbox.publish(answer);
            }
        }
        Ok(())
    }

    /// Backoff before attempt `attempt + 1`.
    fn delay(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        (self.options.retry_min * factor).min(self.options.retry_max)
    }

    /// When there will next be something to do without outside events.
    fn next_wake(&self) -> Option<Instant> {
        let deadline = self.in_flight.values().map(|flight| flight.deadline).min();
        let room = self.in_flight.len() < self.options.window.max(1);
        let retry =
            self.retries
                .first_key_value()
                .filter(|_| room)
                .map(|(&(due, _), _)| match self.paused_until {
                    Some(until) => due.max(until),
                    None => due,
                });
        let paused = self.paused_until.filter(|_| room);
        [deadline, retry, paused].into_iter().flatten().min()
    }
}
