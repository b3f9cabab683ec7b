//! The adapter's local durable outbox: nothing the local system hands over
//! is lost, whatever happens to the hub or the broker.
//!
//! # The rule
//!
//! 1. An envelope received from the local system is [`Outbox::put`] here;
//!    `put` returns only once the entry is on disk (sled, flushed). Only
//!    then does the adapter acknowledge it to the local system (e.g. the
//!    HL7 `ACK`). If `put` fails, the adapter must not acknowledge: the
//!    local system keeps the message and sends it again.
//! 2. A forwarder ([`Outbox::forward`]) submits the pending entries, in the
//!    order they arrived, through the [`Uplink`](crate::Uplink) (or any
//!    [`HubSink`]), and keeps each one until the hub gives a **final**
//!    answer:
//!    - *accepted* (routed; per-recipient outcomes may still say "not
//!      permitted"): the entry leaves the outbox; its answer is kept in a
//!      bounded `answered` record so a late resend is still recognised;
//!    - *rejected* (invalid, unknown recipient, …): the entry moves to the
//!      `rejected` tree with the hub's reason, for the adapter to tell the
//!      local system (a negative acknowledgement), see [`Outbox::rejected`];
//!    - anything else (no outcome, no answer in time, the sink unavailable)
//!      is not final: the entry is submitted again with backoff.
//! 3. After a restart every pending entry is submitted again; the hub
//!    de-duplicates by message id (per submitting exchange), so an entry
//!    that was routed just before the crash is answered "accepted,
//!    duplicate" and nothing is sent twice.
//!
//! `put` is idempotent by message id: the local system may resend after a
//! lost acknowledgement, and the resend is recognised (while the id is
//! pending, rejected, or still in the bounded `answered` record) and
//! reported as a duplicate ([`Ticket::duplicate`]) without a second entry.
//!
//! The adapter can wait for one message's answer with a timeout
//! ([`Outbox::wait_for_answer`]), e.g. to put the hub's early rejection into
//! the HL7 `ACK` when it comes in time, or follow every answer
//! ([`Outbox::subscribe`]).
//!
//! # Storage
//!
//! One sled database with these trees (sequence numbers are `u64`, stored
//! big-endian so that key order is arrival order):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `outbox.pending` | sequence | the envelope (protobuf) |
//! | `outbox.ids` | message id | sequence (pending, rejected or answered) |
//! | `outbox.rejected` | sequence | the envelope, the hub's answer, when |
//! | `outbox.answered` | sequence | the hub's answer, when (no payload) |
//! | `outbox.meta` | `next_seq` | the next sequence number |
//! | `outbox.receipts` | message id | the kind's receipt (see below) |
//!
//! A **receipt** is a few bytes a kind stores with an entry
//! ([`Outbox::put_with_receipt`]) so that it can answer the local system
//! about that message later, after the entry itself has gone: the
//! `hl7v2-mllp` kind keeps the original's MSH segment (no patient data),
//! to address a negative acknowledgement that arrives from the hub as a
//! delivery. A receipt lives as long as the message id is known here
//! (pending, rejected, or in the bounded `answered` record).
//!
//! A put writes `pending`, `ids` and `next_seq` in one transaction, so
//! after a crash either all of them or none exist, and the sequence never
//! goes back. A final answer moves the entry in one transaction too.
//!
//! # Limits
//!
//! - Answers are recorded and flushed in batches; a crash just after an
//!   answer may leave the entry pending, and it is submitted again after
//!   restart (harmless: the hub answers it again as a duplicate).
//! - Duplicate recognition of accepted messages lasts only as long as their
//!   record stays in the bounded `answered` tree
//!   ([`OutboxOptions::answered_capacity`]); an older resend is stored
//!   again and the hub answers it as a duplicate.
//! - Only one forwarder may run per outbox at a time, and one process per
//!   directory (sled locks it; the lock may outlive the last dropped handle
//!   by a moment, so an in-process reopen can briefly fail).
//! - Durability is sled's `flush`: it survives a process crash; a power
//!   loss is covered only as far as the disk honours `fsync`.
//! - Logs carry message ids, sequence numbers and counts, never payloads or
//!   patient identifiers. The [`Debug`] of the types holding envelopes
//!   leaves the envelope out.

mod forward;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lhcie_proto::{canonical as pb, hub as hubpb};
use prost::Message;
use sled::Transactional;
use sled::transaction::TransactionError;
use tokio::sync::{Notify, broadcast};

use lhcie_runtime::{CommitError, GroupCommit};

pub use forward::{ForwardEnd, ForwardOptions, ForwardReport, HubSink, SinkError};

const PENDING: &str = "outbox.pending";
const IDS: &str = "outbox.ids";
const REJECTED: &str = "outbox.rejected";
const ANSWERED: &str = "outbox.answered";
const META: &str = "outbox.meta";
const RECEIPTS: &str = "outbox.receipts";
const NEXT_SEQ: &[u8] = b"next_seq";

/// How many accepted answers [`Outbox::open`] keeps by default.
pub const DEFAULT_ANSWERED_CAPACITY: usize = 10_000;

/// Settings of an [`Outbox`].
#[derive(Debug, Clone)]
pub struct OutboxOptions {
    /// How many accepted answers to keep (oldest dropped first). They let a
    /// resend of an accepted message be recognised as a duplicate and
    /// [`Outbox::answer_of`] report its answer. Zero keeps none.
    pub answered_capacity: usize,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            answered_capacity: DEFAULT_ANSWERED_CAPACITY,
        }
    }
}

/// The durable outbox. Cheap to clone; clones share the same store.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    pending: sled::Tree,
    ids: sled::Tree,
    rejected: sled::Tree,
    answered: sled::Tree,
    meta: sled::Tree,
    receipts: sled::Tree,
    /// The next sequence number; the lock also serialises puts.
    next_seq: Mutex<u64>,
    pending_count: AtomicU64,
    answered_count: AtomicUsize,
    answered_capacity: usize,
    /// Signalled when a new entry is stored (wakes the forwarder).
    new_entries: Notify,
    answers: broadcast::Sender<Answer>,
    /// The only flusher of `db` (see `lhcie_runtime::group_commit`).
    commit: GroupCommit,
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("pending", &self.pending_len())
            .field("answered", &self.answered_len())
            .finish_non_exhaustive()
    }
}

/// A failure of the outbox.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The store failed (disk, corruption detected by sled).
    #[error("outbox storage: {0}")]
    Storage(#[from] sled::Error),
    /// The store could not be made durable.
    #[error("outbox: {0}")]
    Durability(#[from] CommitError),
    /// The envelope has no message id, so it cannot be de-duplicated.
    #[error("outbox: the envelope has no message id")]
    MissingMessageId,
    /// A stored record cannot be read.
    #[error("outbox: {tree} entry {key} is unreadable: {detail}")]
    Corrupt {
        /// The tree.
        tree: &'static str,
        /// The key (a sequence number or a message id).
        key: String,
        /// What is wrong.
        detail: String,
    },
}

/// The receipt for a [`Outbox::put`]: the entry is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The entry's sequence number (arrival order).
    pub seq: u64,
    /// The envelope's message id.
    pub message_id: String,
    /// The message id was already in the outbox (pending, rejected or
    /// recently accepted): nothing new was stored, `seq` is the first
    /// entry's.
    pub duplicate: bool,
}

/// The hub's final answer to one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The entry's sequence number.
    pub seq: u64,
    /// The envelope's message id.
    pub message_id: String,
    /// What the hub decided.
    pub outcome: Outcome,
}

/// A final outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Routed (possibly earlier: `duplicate`); per-recipient dispositions
    /// inside.
    Accepted(hubpb::Accepted),
    /// Not routed at all, with the hub's reason.
    Rejected(hubpb::Rejected),
}

impl Outcome {
    fn from_response(response: &hubpb::SubmitResponse) -> Option<Self> {
        match &response.outcome {
            Some(hubpb::submit_response::Outcome::Accepted(accepted)) => {
                Some(Self::Accepted(accepted.clone()))
            }
            Some(hubpb::submit_response::Outcome::Rejected(rejected)) => {
                Some(Self::Rejected(rejected.clone()))
            }
            None => None,
        }
    }

    fn into_response(self, message_id: String) -> hubpb::SubmitResponse {
        hubpb::SubmitResponse {
            message_id,
            outcome: Some(match self {
                Self::Accepted(accepted) => hubpb::submit_response::Outcome::Accepted(accepted),
                Self::Rejected(rejected) => hubpb::submit_response::Outcome::Rejected(rejected),
            }),
        }
    }
}

/// An entry waiting for a final answer.
#[derive(Clone, PartialEq)]
pub struct PendingEntry {
    /// Its sequence number (arrival order).
    pub seq: u64,
    /// The envelope's message id.
    pub message_id: String,
    /// The envelope as put.
    pub envelope: pb::Envelope,
}

impl fmt::Debug for PendingEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingEntry")
            .field("seq", &self.seq)
            .field("message_id", &self.message_id)
            .finish_non_exhaustive()
    }
}

/// An entry the hub rejected, kept until the adapter has told the local
/// system and calls [`Outbox::remove_rejected`].
#[derive(Clone, PartialEq)]
pub struct RejectedEntry {
    /// Its sequence number (arrival order).
    pub seq: u64,
    /// The envelope's message id.
    pub message_id: String,
    /// The hub's reason and detail (never about the patient).
    pub rejection: hubpb::Rejected,
    /// When the answer was recorded.
    pub rejected_at: SystemTime,
    /// The envelope as put.
    pub envelope: pb::Envelope,
}

impl RejectedEntry {
    /// The hub's reason as an enum (`Unspecified` if unknown to this
    /// version).
    pub fn reason(&self) -> hubpb::RejectReason {
        hubpb::RejectReason::try_from(self.rejection.reason).unwrap_or_default()
    }
}

impl fmt::Debug for RejectedEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RejectedEntry")
            .field("seq", &self.seq)
            .field("message_id", &self.message_id)
            .field("rejection", &self.rejection)
            .field("rejected_at", &self.rejected_at)
            .finish_non_exhaustive()
    }
}

/// What `answered` and `rejected` store.
#[derive(Clone, PartialEq, prost::Message)]
struct StoredAnswer {
    #[prost(message, optional, tag = "1")]
    response: Option<hubpb::SubmitResponse>,
    #[prost(uint64, tag = "2")]
    answered_at_ms: u64,
    /// The envelope (protobuf); rejected entries only.
    #[prost(bytes = "vec", tag = "3")]
    envelope: Vec<u8>,
}

impl Outbox {
    /// Opens (or creates) the outbox in `path` with default options.
    pub fn open(path: &Path) -> Result<Self, OutboxError> {
        Self::open_with(path, OutboxOptions::default())
    }

    /// Opens (or creates) the outbox in `path`.
    pub fn open_with(path: &Path, options: OutboxOptions) -> Result<Self, OutboxError> {
        Self::from_db(sled::Config::new().path(path).open()?, options)
    }

    /// An outbox that lives only in memory (tests and throwaway adapters):
    /// it guarantees nothing across a restart.
    pub fn temporary() -> Result<Self, OutboxError> {
        Self::temporary_with(OutboxOptions::default())
    }

    /// [`Outbox::temporary`] with options.
    pub fn temporary_with(options: OutboxOptions) -> Result<Self, OutboxError> {
        Self::from_db(sled::Config::new().temporary(true).open()?, options)
    }

    fn from_db(db: sled::Db, options: OutboxOptions) -> Result<Self, OutboxError> {
        let pending = db.open_tree(PENDING)?;
        let ids = db.open_tree(IDS)?;
        let rejected = db.open_tree(REJECTED)?;
        let answered = db.open_tree(ANSWERED)?;
        let meta = db.open_tree(META)?;
        let receipts = db.open_tree(RECEIPTS)?;
        // The sequence continues after the highest ever used: the stored
        // counter, and (belt and braces) any key still present.
        let mut next_seq = match meta.get(NEXT_SEQ)? {
            Some(bytes) => decode_seq(META, "next_seq", &bytes)?,
            None => 1,
        };
        for tree in [
            (&pending, PENDING),
            (&rejected, REJECTED),
            (&answered, ANSWERED),
        ] {
            if let Some((key, _)) = tree.0.last()? {
                next_seq = next_seq.max(decode_seq(tree.1, "last", &key)? + 1);
            }
        }
        let pending_count = pending.len() as u64;
        let answered_count = answered.len();
        let commit = GroupCommit::start(db.clone()).map_err(|e| {
            OutboxError::Durability(CommitError::Flush(format!("cannot start the flusher: {e}")))
        })?;
        let (answers, _) = broadcast::channel(1024);
        let outbox = Self {
            inner: Arc::new(Inner {
                pending,
                ids,
                rejected,
                answered,
                meta,
                receipts,
                next_seq: Mutex::new(next_seq),
                commit,
                pending_count: AtomicU64::new(pending_count),
                answered_count: AtomicUsize::new(answered_count),
                answered_capacity: options.answered_capacity,
                new_entries: Notify::new(),
                answers,
            }),
        };
        outbox.evict_answered()?;
        tracing::info!(pending = pending_count, next_seq, "outbox opened");
        Ok(outbox)
    }

    /// Stores `envelope` durably, then returns. Acknowledge to the local
    /// system only after this returned `Ok`. A message id already in the
    /// outbox is not stored again ([`Ticket::duplicate`]); its first entry
    /// is also durable when this returns.
    pub async fn put(&self, envelope: pb::Envelope) -> Result<Ticket, OutboxError> {
        self.put_with_receipt(envelope, &[]).await
    }

    /// [`Outbox::put`], keeping `receipt` with the entry (nothing if
    /// empty) for [`Outbox::receipt`]. A duplicate keeps the first
    /// entry's receipt. Never put patient data in a receipt.
    pub async fn put_with_receipt(
        &self,
        envelope: pb::Envelope,
        receipt: &[u8],
    ) -> Result<Ticket, OutboxError> {
        if envelope.message_id.is_empty() {
            return Err(OutboxError::MissingMessageId);
        }
        let message_id = envelope.message_id.clone();
        let bytes = envelope.encode_to_vec();
        let ticket = {
            let inner = &*self.inner;
            let mut next = inner.next_seq.lock().unwrap_or_else(|e| e.into_inner());
            let seq = *next;
            let existing = (&inner.pending, &inner.ids, &inner.meta, &inner.receipts)
                .transaction(|(pending, ids, meta, receipts)| {
                    if let Some(existing) = ids.get(message_id.as_bytes())? {
                        return Ok(Some(existing));
                    }
                    pending.insert(&seq.to_be_bytes(), bytes.as_slice())?;
                    ids.insert(message_id.as_bytes(), &seq.to_be_bytes())?;
                    meta.insert(NEXT_SEQ, &(seq + 1).to_be_bytes())?;
                    if !receipt.is_empty() {
                        receipts.insert(message_id.as_bytes(), receipt)?;
                    }
                    Ok(None)
                })
                .map_err(storage)?;
            match existing {
                Some(existing) => Ticket {
                    seq: decode_seq(IDS, &message_id, &existing)?,
                    message_id,
                    duplicate: true,
                },
                None => {
                    *next = seq + 1;
                    inner.pending_count.fetch_add(1, Ordering::Relaxed);
                    Ticket {
                        seq,
                        message_id,
                        duplicate: false,
                    }
                }
            }
        };
        self.inner.commit.durable().await?;
        if ticket.duplicate {
            tracing::debug!(message_id = %ticket.message_id, seq = ticket.seq, "outbox: duplicate put");
        } else {
            tracing::debug!(message_id = %ticket.message_id, seq = ticket.seq, "outbox: stored");
            self.inner.new_entries.notify_one();
        }
        Ok(ticket)
    }

    /// How many entries wait for a final answer.
    pub fn pending_len(&self) -> u64 {
        self.inner.pending_count.load(Ordering::Relaxed)
    }

    /// How many accepted answers are recorded (at most
    /// [`OutboxOptions::answered_capacity`]).
    pub fn answered_len(&self) -> usize {
        self.inner.answered_count.load(Ordering::Relaxed)
    }

    /// Every pending entry, oldest first (reads the whole backlog: for
    /// operators and tests).
    pub fn pending(&self) -> Result<Vec<PendingEntry>, OutboxError> {
        let mut entries = Vec::new();
        for item in self.inner.pending.iter() {
            let (key, value) = item?;
            let seq = decode_seq(PENDING, "key", &key)?;
            let envelope = decode_envelope(PENDING, seq, &value)?;
            entries.push(PendingEntry {
                seq,
                message_id: envelope.message_id.clone(),
                envelope,
            });
        }
        Ok(entries)
    }

    /// Every entry the hub rejected and the adapter has not yet removed,
    /// oldest first.
    pub fn rejected(&self) -> Result<Vec<RejectedEntry>, OutboxError> {
        let mut entries = Vec::new();
        for item in self.inner.rejected.iter() {
            let (key, value) = item?;
            let seq = decode_seq(REJECTED, "key", &key)?;
            entries.push(rejected_entry(seq, &value)?);
        }
        Ok(entries)
    }

    /// Forgets a rejected entry (once the local system has been told).
    /// Returns false if `message_id` is not a rejected entry. A later put
    /// of the same id is stored and submitted again.
    pub fn remove_rejected(&self, message_id: &str) -> Result<bool, OutboxError> {
        let inner = &*self.inner;
        (&inner.rejected, &inner.ids, &inner.receipts)
            .transaction(|(rejected, ids, receipts)| {
                let Some(seq) = ids.get(message_id.as_bytes())? else {
                    return Ok(false);
                };
                if rejected.remove(&*seq)?.is_none() {
                    return Ok(false);
                }
                ids.remove(message_id.as_bytes())?;
                receipts.remove(message_id.as_bytes())?;
                Ok(true)
            })
            .map_err(storage)
    }

    /// The receipt stored with `message_id` ([`Outbox::put_with_receipt`]),
    /// while the id is known here.
    pub fn receipt(&self, message_id: &str) -> Result<Option<Vec<u8>>, OutboxError> {
        Ok(self
            .inner
            .receipts
            .get(message_id.as_bytes())?
            .map(|bytes| bytes.to_vec()))
    }

    /// The final answer to `message_id` if it is known: rejected entries
    /// until removed, accepted ones while in the bounded `answered` record.
    pub fn answer_of(&self, message_id: &str) -> Result<Option<Answer>, OutboxError> {
        let inner = &*self.inner;
        let Some(seq_bytes) = inner.ids.get(message_id.as_bytes())? else {
            return Ok(None);
        };
        let seq = decode_seq(IDS, message_id, &seq_bytes)?;
        let stored = match inner.rejected.get(&*seq_bytes)? {
            Some(value) => Some((REJECTED, value)),
            None => inner.answered.get(&*seq_bytes)?.map(|v| (ANSWERED, v)),
        };
        let Some((tree, value)) = stored else {
            return Ok(None);
        };
        let stored = decode_stored(tree, seq, &value)?;
        let outcome = stored
            .response
            .as_ref()
            .and_then(Outcome::from_response)
            .ok_or_else(|| corrupt(tree, seq, "no outcome"))?;
        Ok(Some(Answer {
            seq,
            message_id: message_id.to_owned(),
            outcome,
        }))
    }

    /// Waits up to `timeout` for the final answer to `message_id` (returns
    /// at once if it is already known, see [`Outbox::answer_of`]). `None`:
    /// no final answer in time (the entry stays in the outbox and is still
    /// forwarded).
    pub async fn wait_for_answer(
        &self,
        message_id: &str,
        timeout: Duration,
    ) -> Result<Option<Answer>, OutboxError> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before looking, so an answer recorded in between is
        // not missed.
        let mut answers = self.subscribe();
        if let Some(answer) = self.answer_of(message_id)? {
            return Ok(Some(answer));
        }
        loop {
            match tokio::time::timeout_at(deadline, answers.recv()).await {
                Err(_elapsed) => return Ok(None),
                Ok(Ok(answer)) if answer.message_id == message_id => return Ok(Some(answer)),
                Ok(Ok(_other)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                    if let Some(answer) = self.answer_of(message_id)? {
                        return Ok(Some(answer));
                    }
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => {
                    // Cannot happen while `self` holds the sender.
                    tokio::time::sleep_until(deadline).await;
                    return self.answer_of(message_id);
                }
            }
        }
    }

    /// Every final answer from now on, as the forwarder records them. A
    /// receiver that falls more than 1024 answers behind misses some
    /// (`Lagged`); [`Outbox::answer_of`] still has them.
    pub fn subscribe(&self) -> broadcast::Receiver<Answer> {
        self.inner.answers.subscribe()
    }

    /// Forwards pending entries to the hub through `sink` until `shutdown`
    /// (or the sink or its answers stop), with default
    /// [`ForwardOptions`]. `answers` are the hub's answers to what `sink`
    /// submitted (for the [`Uplink`](crate::Uplink): the
    /// [`Answers`](crate::Answers) returned with it). See the module docs.
    pub async fn forward<S: HubSink>(
        &self,
        sink: S,
        answers: crate::Answers,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<ForwardReport, OutboxError> {
        self.forward_with(sink, answers, shutdown, ForwardOptions::default())
            .await
    }

    /// [`Outbox::forward`] with options.
    pub async fn forward_with<S: HubSink>(
        &self,
        sink: S,
        answers: crate::Answers,
        shutdown: tokio_util::sync::CancellationToken,
        options: ForwardOptions,
    ) -> Result<ForwardReport, OutboxError> {
        forward::run(self, sink, answers, shutdown, options).await
    }

    // ---- used by the forwarder ----

    /// The pending entry with the lowest sequence number `>= from`.
    fn next_pending(&self, from: u64) -> Result<Option<(u64, sled::IVec)>, OutboxError> {
        match self.inner.pending.range(from.to_be_bytes()..).next() {
            Some(item) => {
                let (key, value) = item?;
                Ok(Some((decode_seq(PENDING, "key", &key)?, value)))
            }
            None => Ok(None),
        }
    }

    fn pending_entry(&self, seq: u64) -> Result<Option<sled::IVec>, OutboxError> {
        Ok(self.inner.pending.get(seq.to_be_bytes())?)
    }

    /// Records a final answer: moves the pending entry to `answered` or
    /// `rejected`. `None` if `message_id` is not pending (answered before,
    /// or unknown).
    fn record_answer(
        &self,
        message_id: &str,
        outcome: Outcome,
    ) -> Result<Option<Answer>, OutboxError> {
        let inner = &*self.inner;
        let Some(seq_bytes) = inner.ids.get(message_id.as_bytes())? else {
            return Ok(None);
        };
        let seq = decode_seq(IDS, message_id, &seq_bytes)?;
        let keep_accepted = inner.answered_capacity > 0;
        let response = outcome.clone().into_response(message_id.to_owned());
        let answered_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let moved = (&inner.pending, &inner.ids, &inner.rejected, &inner.answered)
            .transaction(|(pending, ids, rejected, answered)| {
                let Some(envelope) = pending.remove(&*seq_bytes)? else {
                    return Ok(false);
                };
                match &outcome {
                    Outcome::Rejected(_) => {
                        let stored = StoredAnswer {
                            response: Some(response.clone()),
                            answered_at_ms,
                            envelope: envelope.to_vec(),
                        };
                        rejected.insert(&*seq_bytes, stored.encode_to_vec())?;
                    }
                    Outcome::Accepted(_) if keep_accepted => {
                        let stored = StoredAnswer {
                            response: Some(response.clone()),
                            answered_at_ms,
                            envelope: Vec::new(),
                        };
                        answered.insert(&*seq_bytes, stored.encode_to_vec())?;
                    }
                    Outcome::Accepted(_) => {
                        ids.remove(message_id.as_bytes())?;
                    }
                }
                Ok(true)
            })
            .map_err(storage)?;
        if !moved {
            return Ok(None);
        }
        inner.pending_count.fetch_sub(1, Ordering::Relaxed);
        if matches!(outcome, Outcome::Accepted(_)) && keep_accepted {
            inner.answered_count.fetch_add(1, Ordering::Relaxed);
            self.evict_answered()?;
        }
        Ok(Some(Answer {
            seq,
            message_id: message_id.to_owned(),
            outcome,
        }))
    }

    /// Drops the oldest accepted answers beyond the capacity.
    fn evict_answered(&self) -> Result<(), OutboxError> {
        let inner = &*self.inner;
        while inner.answered_count.load(Ordering::Relaxed) > inner.answered_capacity {
            let Some((key, value)) = inner.answered.first()? else {
                inner.answered_count.store(0, Ordering::Relaxed);
                break;
            };
            let seq = decode_seq(ANSWERED, "key", &key)?;
            let message_id = decode_stored(ANSWERED, seq, &value)?
                .response
                .map(|r| r.message_id)
                .unwrap_or_default();
            (&inner.answered, &inner.ids, &inner.receipts)
                .transaction(|(answered, ids, receipts)| {
                    answered.remove(&*key)?;
                    if ids.get(message_id.as_bytes())?.as_deref() == Some(&*key) {
                        ids.remove(message_id.as_bytes())?;
                        receipts.remove(message_id.as_bytes())?;
                    }
                    Ok(())
                })
                .map_err(storage)?;
            inner.answered_count.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn flush(&self) -> Result<(), OutboxError> {
        self.inner.commit.durable().await?;
        Ok(())
    }

    fn publish(&self, answer: Answer) {
        // No receiver is fine.
        let _ = self.inner.answers.send(answer);
    }

    fn new_entries(&self) -> &Notify {
        &self.inner.new_entries
    }
}

fn storage(error: TransactionError<OutboxError>) -> OutboxError {
    match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => OutboxError::Storage(error),
    }
}

fn corrupt(tree: &'static str, key: impl ToString, detail: impl ToString) -> OutboxError {
    OutboxError::Corrupt {
        tree,
        key: key.to_string(),
        detail: detail.to_string(),
    }
}

fn decode_seq(tree: &'static str, key: &str, bytes: &[u8]) -> Result<u64, OutboxError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt(tree, key, format!("{} bytes, not a sequence", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

fn decode_envelope(
    tree: &'static str,
    seq: u64,
    bytes: &[u8],
) -> Result<pb::Envelope, OutboxError> {
    pb::Envelope::decode(bytes).map_err(|e| corrupt(tree, seq, e))
}

fn decode_stored(tree: &'static str, seq: u64, bytes: &[u8]) -> Result<StoredAnswer, OutboxError> {
    StoredAnswer::decode(bytes).map_err(|e| corrupt(tree, seq, e))
}

fn rejected_entry(seq: u64, value: &[u8]) -> Result<RejectedEntry, OutboxError> {
    let stored = decode_stored(REJECTED, seq, value)?;
    let envelope = decode_envelope(REJECTED, seq, &stored.envelope)?;
    let response = stored
        .response
        .ok_or_else(|| corrupt(REJECTED, seq, "no answer"))?;
    let Some(hubpb::submit_response::Outcome::Rejected(rejection)) = response.outcome else {
        return Err(corrupt(REJECTED, seq, "the answer is not a rejection"));
    };
    Ok(RejectedEntry {
        seq,
        message_id: response.message_id,
        rejection,
        rejected_at: UNIX_EPOCH + Duration::from_millis(stored.answered_at_ms),
        envelope,
    })
}
