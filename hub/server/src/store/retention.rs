//! Retention: what the store keeps about messages and people is deleted
//! once it is older than its window (`[retention]` in the hub's
//! configuration; the windows and why in `docs/security.md`). [`Store::prune`]
//! takes the time as an argument, so tests inject it; the hub runs it
//! periodically ([`run`]).
//!
//! | what | window | deleted |
//! |---|---|---|
//! | a pending dead letter | `dead_letters` after it was dead-lettered | discarded by `retention`: its body (the envelope) deleted, the record kept |
//! | a settled dead letter's record | `dead_letters` after it was settled | the record |
//! | trace events | `trace_events` after they happened | the event |
//! | the time and organisation indexes | `audit_detail` after the decision | the index entries |
//! | a closed emergency review | `audit_detail` after it was closed | the review (a pending one is never deleted) |
//! | decision records and their patient index | `audit_records` after the decision | the record and every index entry |
//! | the access log | `access_log` after the access | the entry |

use std::time::Duration;

use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use super::dead_letters::{DeadLetter, DeadLetterState, ReplayNote};
use super::search::orgs_of;
use super::trace::{Layer, TraceEvent};
use super::{Store, StoreError, decode_audit, nanos, split};

/// The retention windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Pending dead letters (then discarded), and settled ones' records.
    pub dead_letters: Duration,
    /// Trace events.
    pub trace_events: Duration,
    /// The time and organisation search indexes, and closed emergency
    /// reviews.
    pub audit_detail: Duration,
    /// Decision records and the patient index.
    pub audit_records: Duration,
    /// The access log.
    pub access_log: Duration,
}

const DAY: u64 = 24 * 3600;

impl From<&lhcie_config::RetentionConfig> for Retention {
    fn from(config: &lhcie_config::RetentionConfig) -> Self {
        let days = |d: u64| Duration::from_secs(d.saturating_mul(DAY));
        Self {
            dead_letters: days(config.dead_letters_days),
            trace_events: days(config.trace_events_days),
            audit_detail: days(config.audit_detail_days),
            audit_records: days(config.audit_records_days),
            access_log: days(config.access_log_days),
        }
    }
}

/// What one pruning deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Pending dead letters discarded (bodies deleted).
    pub dead_letters_expired: usize,
    /// Settled dead letters' records deleted.
    pub dead_letters_removed: usize,
    /// Trace events deleted.
    pub events: usize,
    /// Time and organisation index entries deleted.
    pub index_entries: usize,
    /// Closed emergency reviews deleted.
    pub emergency_reviews: usize,
    /// Decision records deleted.
    pub decisions: usize,
    /// Access-log entries deleted.
    pub accesses: usize,
}

/// The user a retention discard is recorded as.
pub const RETENTION_USER: &str = "retention";

fn cutoff(now: OffsetDateTime, window: Duration) -> [u8; 8] {
    nanos(now - window)
}

impl Store {
    /// Deletes what is older than its window at `now` (not yet durable:
    /// [`Store::durable`]).
    pub fn prune(&self, now: OffsetDateTime, retention: &Retention) -> Result<Pruned, StoreError> {
        let mut pruned = Pruned::default();
        self.prune_dead_letters(now, retention.dead_letters, &mut pruned)?;

        // Trace events: message id, 0, at, sequence.
        let events = cutoff(now, retention.trace_events);
        for key in self.events.iter().keys() {
            let key = key?;
            let at = key.len().checked_sub(16).map(|i| &key[i..i + 8]);
            if at.is_some_and(|at| at < events.as_slice()) {
                self.events.remove(&key)?;
                pruned.events += 1;
            }
        }

        // Access log: at, sequence.
        let accesses = cutoff(now, retention.access_log);
        for key in self.access_log.range(..accesses.as_slice()).keys() {
            self.access_log.remove(key?)?;
            pruned.accesses += 1;
        }

        // Search indexes: by_time (at, key), by_org (org, 0, at, key).
        let detail = cutoff(now, retention.audit_detail);
        for key in self.by_time.range(..detail.as_slice()).keys() {
            self.by_time.remove(key?)?;
            pruned.index_entries += 1;
        }
        for key in self.by_org.iter().keys() {
            let key = key?;
            let at = key
                .iter()
                .position(|b| *b == 0)
                .and_then(|i| key.get(i + 1..i + 9));
            if at.is_some_and(|at| at < detail.as_slice()) {
                self.by_org.remove(&key)?;
                pruned.index_entries += 1;
            }
        }

        pruned.emergency_reviews = self.prune_emergency_reviews(now - retention.audit_detail)?;

        // Decision records, with every index entry pointing at them.
        let records = u64::from_be_bytes(cutoff(now, retention.audit_records));
        for entry in self.decisions.iter() {
            let (key, value) = entry?;
            let (decided, record) = split(&value)?;
            if decided >= records {
                continue;
            }
            let at = decided.to_be_bytes();
            if let Ok(record) = decode_audit(record) {
                if let Some(nhs) = &record.nhs_number {
                    let mut index = nhs.as_bytes().to_vec();
                    index.extend_from_slice(&at);
                    index.extend_from_slice(&key);
                    self.by_patient.remove(index)?;
                }
                for org in orgs_of(&record) {
                    let mut index = org.as_bytes().to_vec();
                    index.push(0);
                    index.extend_from_slice(&at);
                    index.extend_from_slice(&key);
                    self.by_org.remove(index)?;
                }
            }
            let mut by_time = at.to_vec();
            by_time.extend_from_slice(&key);
            self.by_time.remove(by_time)?;
            self.decisions.remove(&key)?;
            pruned.decisions += 1;
        }
        Ok(pruned)
    }

    fn prune_dead_letters(
        &self,
        now: OffsetDateTime,
        window: Duration,
        pruned: &mut Pruned,
    ) -> Result<(), StoreError> {
        let before = now - window;
        let letters: Vec<DeadLetter> = self
            .dead_letters
            .iter()
            .values()
            .map(|v| super::dead_letters::decode(&v?))
            .collect::<Result<_, _>>()?;
        for letter in letters {
            match letter.state {
                DeadLetterState::Pending if letter.dead_lettered_at < before => {
                    let days = window.as_secs() / DAY;
                    let detail = format!("pending longer than the retention window ({days} days)");
                    let mut expired = letter.clone();
                    expired.state = DeadLetterState::Discarded;
                    expired.last_replay = Some(ReplayNote {
                        at: now,
                        by: RETENTION_USER.to_owned(),
                        outcome: "discarded".to_owned(),
                        detail: detail.clone(),
                    });
                    self.update_dead_letter(&expired)?;
                    self.record_event(&TraceEvent::new(
                        &letter.message_id,
                        now,
                        Layer::Hub,
                        &letter.destination,
                        "discarded",
                        "",
                        &format!("by {RETENTION_USER}; {detail}"),
                    ))?;
                    pruned.dead_letters_expired += 1;
                }
                DeadLetterState::Replayed | DeadLetterState::Discarded => {
                    let settled = letter
                        .last_replay
                        .as_ref()
                        .map_or(letter.dead_lettered_at, |note| note.at);
                    if settled < before {
                        self.dead_letters.remove(letter.id.to_be_bytes())?;
                        self.dead_letter_bodies.remove(letter.id.to_be_bytes())?;
                        pruned.dead_letters_removed += 1;
                    }
                }
                DeadLetterState::Pending => {}
            }
        }
        Ok(())
    }
}

/// Prunes every `every` until `shutdown` (the first time at once).
pub async fn run(store: Store, retention: Retention, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let store = store.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            let pruned = store.prune(OffsetDateTime::now_utc(), &retention);
            (store, pruned)
        })
        .await;
        match pruned {
            Ok((store, Ok(pruned))) => {
                if let Err(error) = store.durable().await {
                    tracing::error!(%error, "retention: pruning could not be made durable");
                } else if pruned != Pruned::default() {
                    tracing::info!(?pruned, "retention: pruned what is past its window");
                }
            }
            Ok((_, Err(error))) => tracing::error!(%error, "retention: pruning failed"),
            Err(error) => tracing::error!(%error, "retention: pruning task failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use lhcie_hub_core::{AuditOutcome, AuditRecipient, AuditRecord, Ingress};
    use lhcie_model::Category;
    use time::macros::datetime;

    use super::*;
    use crate::store::dead_letters::DeadLetterFilter;
    use crate::store::search::{AccessEntry, TraceQuery};

    const DAYS: fn(u64) -> Duration = |d| Duration::from_secs(d * DAY);

    fn retention() -> Retention {
        Retention {
            dead_letters: DAYS(30),
            trace_events: DAYS(90),
            audit_detail: DAYS(90),
            audit_records: DAYS(2922),
            access_log: DAYS(2922),
        }
    }

    fn decision(id: &str, nhs: &str, at: OffsetDateTime) -> AuditRecord {
        AuditRecord {
            message_id: id.into(),
            decided_at: at,
            submitted_by: "nwl-imperial".into(),
            ingress: Ingress::Grpc,
            sender: Some("RYJ".into()),
            category: Some(Category::DischargeSummary),
            purpose: None,
            nhs_number: Some(nhs.into()),
            outcome: AuditOutcome::Routed {
                recipients: vec![AuditRecipient {
                    recipient: "RAL".into(),
                    exchange: "ncl-royal-free".into(),
                    decision: "forwarded".into(),
                    reason: "implied-consent".into(),
                    isa: None,
                    directives: vec![],
                    obligations: vec![],
                    registry_revision: None,
                }],
            },
        }
    }

    fn letter(id: &str, at: OffsetDateTime) -> DeadLetter {
        DeadLetter {
            id: 0,
            destination: "ncl-royal-free".into(),
            message_id: id.into(),
            submitted_by: "nwl-imperial".into(),
            sender: Some("RYJ".into()),
            category: Some("discharge-summary".into()),
            recipients: vec!["RAL".into()],
            reason: "no-agreement".into(),
            detail: String::new(),
            dead_lettered_at: at,
            state: DeadLetterState::Pending,
            last_replay: None,
        }
    }

    fn search(store: &Store, f: impl FnOnce(&mut TraceQuery)) -> Vec<String> {
        let mut query = TraceQuery {
            limit: 100,
            ..Default::default()
        };
        f(&mut query);
        store
            .search(&query)
            .unwrap()
            .into_iter()
            .map(|r| r.message_id)
            .collect()
    }

    #[tokio::test]
    async fn each_kind_of_record_is_pruned_after_its_window_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), DAYS(7)).unwrap();
        let now = datetime!(2036-01-01 00:00 UTC);
        let nhs = "9434765919";
        // Decisions: 9 years old (past every window), 100 days old (past
        // the detail window only), 10 days old (kept whole).
        store
            .record(&decision("ancient", nhs, now - DAYS(9 * 365)))
            .unwrap();
        store
            .record(&decision("old", nhs, now - DAYS(100)))
            .unwrap();
        store
            .record(&decision("recent", nhs, now - DAYS(10)))
            .unwrap();
        // Trace events.
        for (id, age) in [("ancient", 9 * 365), ("old", 100), ("recent", 10)] {
            store
                .record_event(&TraceEvent::new(
                    id,
                    now - DAYS(age),
                    Layer::Adapter,
                    "nwl-imperial",
                    "received-from-local",
                    "AA",
                    "",
                ))
                .unwrap();
        }
        // Access log: 9 years and 1 day old.
        for age in [9 * 365, 1] {
            store
                .record_access(&AccessEntry {
                    at: now - DAYS(age),
                    user: "ada".into(),
                    action: "search".into(),
                    subject: "nhs-number search".into(),
                    patient: true,
                    nhs_number: Some(nhs.into()),
                })
                .await
                .unwrap();
        }
        // Dead letters: pending 40 days (expires), pending 5 days (kept),
        // replayed 40 days ago (record removed), replayed 5 days ago (kept).
        let (expiring, _) = store
            .add_dead_letter(letter("d1", now - DAYS(40)), b"clinical")
            .unwrap();
        let (waiting, _) = store
            .add_dead_letter(letter("d2", now - DAYS(5)), b"clinical")
            .unwrap();
        let mut settled_ids = Vec::new();
        for (id, age) in [("d3", 40), ("d4", 5)] {
            let (letter_id, _) = store
                .add_dead_letter(letter(id, now - DAYS(age + 1)), b"clinical")
                .unwrap();
            let mut settled = store.dead_letter(letter_id).unwrap().unwrap();
            settled.state = DeadLetterState::Replayed;
            settled.last_replay = Some(ReplayNote {
                at: now - DAYS(age),
                by: "olivia".into(),
                outcome: "forwarded".into(),
                detail: String::new(),
            });
            store.update_dead_letter(&settled).unwrap();
            settled_ids.push(letter_id);
        }

        // Before any window has passed, pruning deletes nothing.
        let early = store.prune(now - DAYS(10 * 365), &retention()).unwrap();
        assert_eq!(early, Pruned::default());

        let pruned = store.prune(now, &retention()).unwrap();
        store.durable().await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                dead_letters_expired: 1,
                dead_letters_removed: 1,
                events: 2,
                // "ancient" (by_time and by_org) and "old" (both).
                index_entries: 6,
                emergency_reviews: 0,
                decisions: 1,
                accesses: 1,
            }
        );
        // Decision records: the ancient one is gone, also from the patient
        // index; the old one is still found by message id and NHS number,
        // no longer by time or organisation.
        assert!(store.audit_of_message("ancient").unwrap().is_empty());
        assert_eq!(store.audit_of_message("old").unwrap().len(), 1);
        assert_eq!(
            search(&store, |q| q.nhs_number = Some(nhs.into())),
            ["recent", "old"]
        );
        assert_eq!(search(&store, |q| q.org = Some("RAL".into())), ["recent"]);
        assert_eq!(
            search(&store, |q| q.from = Some(now - DAYS(10 * 365))),
            ["recent"]
        );
        // Events.
        assert!(store.events_of_message("old").unwrap().is_empty());
        assert_eq!(store.events_of_message("recent").unwrap().len(), 1);
        // Access log.
        assert_eq!(store.access_log(10, None).unwrap().len(), 1);
        // Dead letters: the expired one is discarded by retention with its
        // body deleted; the waiting one untouched; the long-settled record
        // deleted.
        let expired = store.dead_letter(expiring).unwrap().unwrap();
        assert_eq!(expired.state, DeadLetterState::Discarded);
        assert_eq!(expired.last_replay.unwrap().by, RETENTION_USER);
        assert_eq!(store.dead_letter_body(expiring).unwrap(), None);
        assert_eq!(store.events_of_message("d1").unwrap()[0].stage, "discarded");
        assert_eq!(
            store.dead_letter_body(waiting).unwrap().unwrap(),
            b"clinical"
        );
        assert!(store.dead_letter(settled_ids[0]).unwrap().is_none());
        assert!(store.dead_letter(settled_ids[1]).unwrap().is_some());
        let pending = DeadLetterFilter {
            state: Some(DeadLetterState::Pending),
            ..Default::default()
        };
        assert_eq!(store.dead_letters(&pending, 10).unwrap().len(), 1);
        assert_eq!(
            store.pending_dead_letters().unwrap(),
            [("ncl-royal-free".to_owned(), 1)]
        );

        // Pruning again at the same time deletes nothing more.
        assert_eq!(store.prune(now, &retention()).unwrap(), Pruned::default());
    }
}
