//! Emergency (break-glass) access waiting for review. Every recipient
//! decision with reason `emergency-override` becomes a pending review when
//! its audit record is recorded ([`Store::record`]: one home, so no caller
//! can forget one), in the same commit; a replayed copy, decided again but
//! not recorded as a new audit record, through [`Store::record_replayed`]. An operator closes it with an
//! outcome and a note; who closed it is the signed-in user, and closing is
//! written to the access log in the same commit.
//!
//! Trees:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `emergency_reviews` | id (big-endian) | an [`EmergencyReview`] (postcard) |
//! | `emergency_reviews_pending` | decided-at, id | empty: the pending ones, newest last |
//!
//! A review names the message, the submitting exchange, the recipient and
//! its exchange, the sender, the category and whether the patient was to
//! be notified; never the NHS number (it is in the audit record, shown by
//! the message trace, which logs the view). Pending reviews are never
//! pruned; closed ones follow the audit-detail window ([`super::retention`]).

use lhcie_hub_core::AuditRecord;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::search::AccessEntry;
use super::{Store, StoreError, decision_key, decode_audit, nanos, split};

/// The longest note a review may be closed with.
pub const MAX_NOTE_CHARS: usize = 2000;

/// The access-log action of closing a review.
pub const CLOSE_ACTION: &str = "close-emergency-review";

/// What the reviewer concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReviewOutcome {
    /// The emergency access was justified.
    Appropriate,
    /// It was not: information governance follows it up.
    Inappropriate,
}

impl ReviewOutcome {
    /// The outcome named `code` (`appropriate`, `inappropriate`).
    pub fn parse(code: &str) -> Option<Self> {
        match code {
            "appropriate" => Some(Self::Appropriate),
            "inappropriate" => Some(Self::Inappropriate),
            _ => None,
        }
    }

    /// Its code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Appropriate => "appropriate",
            Self::Inappropriate => "inappropriate",
        }
    }
}

/// How a review was closed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewClosure {
    /// The conclusion.
    pub outcome: ReviewOutcome,
    /// Why (required; at most [`MAX_NOTE_CHARS`]).
    pub note: String,
    /// Who closed it: the signed-in dashboard user.
    pub by: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why a closure was refused before anything was stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClosureError {
    /// The note is empty.
    #[error("a note saying why is required")]
    NoNote,
    /// The note is too long.
    #[error("the note is longer than {MAX_NOTE_CHARS} characters")]
    NoteTooLong,
}

impl ReviewClosure {
    /// A closure by `by` at `at`; the note is required and trimmed.
    pub fn new(
        outcome: ReviewOutcome,
        note: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<Self, ClosureError> {
        let note = note.trim();
        if note.is_empty() {
            return Err(ClosureError::NoNote);
        }
        if note.chars().count() > MAX_NOTE_CHARS {
            return Err(ClosureError::NoteTooLong);
        }
        Ok(Self {
            outcome,
            note: note.to_owned(),
            by: by.to_owned(),
            at,
        })
    }
}

/// One emergency override to review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyReview {
    /// Its id in the store.
    pub id: u64,
    /// The message.
    pub message_id: String,
    /// The exchange that submitted it.
    pub submitted_by: String,
    /// The recipient organisation the override let it reach.
    pub recipient: String,
    /// The exchange serving that recipient.
    pub exchange: String,
    /// When the hub decided.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// The sending organisation.
    pub sender: Option<String>,
    /// The category code.
    pub category: Option<String>,
    /// Whether the patient's own refusal was overridden, so they are to be
    /// told (the `notify-patient` obligation).
    pub notify_patient: bool,
    /// How it was closed; `None` while pending.
    pub closure: Option<ReviewClosure>,
}

impl EmergencyReview {
    /// Whether it waits for a reviewer.
    pub fn pending(&self) -> bool {
        self.closure.is_none()
    }
}

/// Which reviews to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewFilter {
    /// Waiting for a reviewer (newest decision first).
    Pending,
    /// Closed (newest first).
    Closed,
    /// Both (newest first).
    All,
}

/// What closing a review did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Closed now (and the access log says so).
    Closed(EmergencyReview),
    /// There is no such review.
    NotFound,
    /// It was closed before (by whoever its closure names).
    AlreadyClosed(EmergencyReview),
}

fn encode(review: &EmergencyReview) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(review).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode(bytes: &[u8]) -> Result<EmergencyReview, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn pending_key(review: &EmergencyReview) -> Vec<u8> {
    let mut key = nanos(review.decided_at).to_vec();
    key.extend_from_slice(&review.id.to_be_bytes());
    key
}

fn id_of_pending(key: &[u8]) -> Result<u64, StoreError> {
    key.get(8..16)
        .and_then(|id| id.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("bad emergency review index".into()))
}

impl Store {
    /// Adds a pending review for every emergency override in `audit` (part
    /// of [`Store::record`]).
    pub(super) fn index_emergency_reviews(&self, audit: &AuditRecord) -> Result<(), StoreError> {
        for recipient in audit.recipients().iter().filter(|r| r.emergency_override()) {
            let review = EmergencyReview {
                id: self.db.generate_id()?,
                message_id: audit.message_id.clone(),
                submitted_by: audit.submitted_by.clone(),
                recipient: recipient.recipient.clone(),
                exchange: recipient.exchange.clone(),
                decided_at: audit.decided_at,
                sender: audit.sender.clone(),
                category: audit.category.map(|c| c.as_str().to_owned()),
                notify_patient: recipient.notify_patient(),
                closure: None,
            };
            self.emergency_reviews
                .insert(review.id.to_be_bytes(), encode(&review)?)?;
            self.emergency_reviews_pending
                .insert(pending_key(&review), &[])?;
        }
        Ok(())
    }

    /// Adds a pending review for every emergency override of a replayed
    /// copy's decision (not yet durable). A replay is not recorded as an
    /// audit record (the message's record keeps its first decision), so it
    /// is indexed here; the review's NHS number comes from the message's
    /// record as for any other.
    pub fn record_replayed(&self, decision: &AuditRecord) -> Result<(), StoreError> {
        self.index_emergency_reviews(decision)
    }

    /// One review.
    pub fn emergency_review(&self, id: u64) -> Result<Option<EmergencyReview>, StoreError> {
        self.emergency_reviews
            .get(id.to_be_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// How many reviews are pending.
    pub fn pending_emergency_reviews(&self) -> usize {
        self.emergency_reviews_pending.len()
    }

    /// Reviews `filter` selects, newest first, at most `limit`.
    pub fn emergency_reviews(
        &self,
        filter: ReviewFilter,
        limit: usize,
    ) -> Result<Vec<EmergencyReview>, StoreError> {
        let mut found = Vec::new();
        if filter == ReviewFilter::Pending {
            for key in self.emergency_reviews_pending.iter().keys().rev() {
                if let Some(review) = self.emergency_review(id_of_pending(&key?)?)? {
                    found.push(review);
                }
                if found.len() >= limit {
                    break;
                }
            }
            return Ok(found);
        }
        for value in self.emergency_reviews.iter().values().rev() {
            let review = decode(&value?)?;
            if filter == ReviewFilter::All || !review.pending() {
                found.push(review);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Closes a pending review and writes the closure to the access log
    /// (with the patient's NHS number from the audit record), both durable
    /// before it returns. Two reviewers closing at once: one wins, the
    /// other is told it was already closed.
    pub async fn close_emergency_review(
        &self,
        id: u64,
        closure: ReviewClosure,
    ) -> Result<Closing, StoreError> {
        let key = id.to_be_bytes();
        let Some(stored) = self.emergency_reviews.get(key)? else {
            return Ok(Closing::NotFound);
        };
        let mut review = decode(&stored)?;
        if !review.pending() {
            return Ok(Closing::AlreadyClosed(review));
        }
        review.closure = Some(closure.clone());
        let swapped =
            self.emergency_reviews
                .compare_and_swap(key, Some(stored), Some(encode(&review)?))?;
        if swapped.is_err() {
            return match self.emergency_review(id)? {
                Some(closed) => Ok(Closing::AlreadyClosed(closed)),
                None => Ok(Closing::NotFound),
            };
        }
        self.emergency_reviews_pending
            .remove(pending_key(&review))?;
        let nhs_number = self.nhs_number_of(&review)?;
        self.insert_access(&AccessEntry {
            at: closure.at,
            user: closure.by,
            action: CLOSE_ACTION.to_owned(),
            subject: review.message_id.clone(),
            patient: nhs_number.is_some(),
            nhs_number,
        })?;
        self.durable().await?;
        Ok(Closing::Closed(review))
    }

    /// The patient of a review's message, from its audit record (gone once
    /// the record is past its retention window).
    fn nhs_number_of(&self, review: &EmergencyReview) -> Result<Option<String>, StoreError> {
        let key = decision_key(&review.message_id, &review.submitted_by);
        match self.decisions.get(key)? {
            Some(value) => Ok(decode_audit(split(&value)?.1)?.nhs_number),
            None => Ok(None),
        }
    }

    /// Deletes the reviews closed before `before`; pending ones stay
    /// whatever their age. Returns how many were deleted.
    pub(super) fn prune_emergency_reviews(
        &self,
        before: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        for entry in self.emergency_reviews.iter() {
            let (key, value) = entry?;
            let closed_before = decode(&value)?
                .closure
                .is_some_and(|closure| closure.at < before);
            if closed_before {
                self.emergency_reviews.remove(key)?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lhcie_hub_core::{AuditOutcome, AuditRecipient, Ingress};
    use lhcie_model::Category;
    use time::macros::datetime;

    use super::*;

    const NHS: &str = "9000000009";

    fn recipient(code: &str, reason: &str, obligations: &[&str]) -> AuditRecipient {
        AuditRecipient {
            recipient: code.into(),
            exchange: "ncl-royal-free".into(),
            decision: "forwarded".into(),
            reason: reason.into(),
            isa: Some(("ISA-TEST-1".into(), 1)),
            directives: vec!["DIR-TEST-1".into()],
            obligations: obligations.iter().map(|o| (*o).to_owned()).collect(),
            registry_revision: None,
        }
    }

    /// An emergency message to RAL (the patient had refused it: notify),
    /// RKE (no consent recorded: no notification) and R1H (implied
    /// consent: nothing to review).
    fn emergency(id: &str, at: OffsetDateTime) -> AuditRecord {
        AuditRecord {
            message_id: id.into(),
            decided_at: at,
            submitted_by: "nwl-imperial".into(),
            ingress: Ingress::Grpc,
            sender: Some("RYJ".into()),
            category: Some(Category::DischargeSummary),
            purpose: Some(lhcie_model::PurposeOfUse::EmergencyCare),
            nhs_number: Some(NHS.into()),
            outcome: AuditOutcome::Routed {
                recipients: vec![
                    recipient(
                        "RAL",
                        "emergency-override",
                        &["record-emergency-access", "notify-patient"],
                    ),
                    recipient("RKE", "emergency-override", &["record-emergency-access"]),
                    recipient("R1H", "implied-consent", &["record-emergency-access"]),
                ],
            },
        }
    }

    fn open() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(3600)).unwrap();
        (dir, store)
    }

    fn pending(store: &Store) -> Vec<(String, String, bool)> {
        store
            .emergency_reviews(ReviewFilter::Pending, 100)
            .unwrap()
            .into_iter()
            .map(|r| (r.message_id, r.recipient, r.notify_patient))
            .collect()
    }

    fn row(message_id: &str, recipient: &str, notify: bool) -> (String, String, bool) {
        (message_id.to_owned(), recipient.to_owned(), notify)
    }

    fn closure(outcome: ReviewOutcome, by: &str) -> ReviewClosure {
        ReviewClosure::new(
            outcome,
            "  called the ED consultant  ",
            by,
            datetime!(2026-12-02 09:00 UTC),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn every_emergency_override_recorded_is_pending_review_newest_first_and_survives_reopening()
     {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), Duration::from_secs(3600)).unwrap();
            store
                .record(&emergency("m1", datetime!(2026-12-01 10:00 UTC)))
                .unwrap();
            store
                .record(&emergency("m2", datetime!(2026-12-01 11:00 UTC)))
                .unwrap();
            store.durable().await.unwrap();
            store.close().await.unwrap();
        }
        let store = crate::store::tests::reopen(dir.path(), Duration::from_secs(3600))
            .await
            .unwrap();
        // Newest decision first; one decision's recipients, last recorded
        // first.
        assert_eq!(
            pending(&store),
            [
                row("m2", "RKE", false),
                row("m2", "RAL", true),
                row("m1", "RKE", false),
                row("m1", "RAL", true),
            ]
        );
        assert_eq!(store.pending_emergency_reviews(), 4);
        let review = &store.emergency_reviews(ReviewFilter::Pending, 1).unwrap()[0];
        assert_eq!(review.submitted_by, "nwl-imperial");
        assert_eq!(review.exchange, "ncl-royal-free");
        assert_eq!(review.sender.as_deref(), Some("RYJ"));
        assert_eq!(review.category.as_deref(), Some("discharge-summary"));
        assert_eq!(review.decided_at, datetime!(2026-12-01 11:00 UTC));
        assert!(review.pending());
    }

    #[tokio::test]
    async fn recording_the_same_decision_again_adds_no_second_review() {
        let (_dir, store) = open();
        let audit = emergency("m1", datetime!(2026-12-01 10:00 UTC));
        store.record(&audit).unwrap();
        store.record(&audit).unwrap();
        assert_eq!(store.pending_emergency_reviews(), 2);
        // The same message decided again later (an ingress replay) is a
        // new decision, with new reviews.
        store
            .record(&emergency("m1", datetime!(2026-12-01 12:00 UTC)))
            .unwrap();
        assert_eq!(store.pending_emergency_reviews(), 4);
    }

    #[tokio::test]
    async fn a_closed_review_leaves_pending_names_who_closed_it_and_is_in_the_access_log() {
        let (_dir, store) = open();
        store
            .record(&emergency("m1", datetime!(2026-12-01 10:00 UTC)))
            .unwrap();
        let id = store
            .emergency_reviews(ReviewFilter::Pending, 10)
            .unwrap()
            .into_iter()
            .find(|r| r.recipient == "RAL")
            .unwrap()
            .id;
        let Closing::Closed(closed) = store
            .close_emergency_review(id, closure(ReviewOutcome::Appropriate, "olivia"))
            .await
            .unwrap()
        else {
            panic!("not closed");
        };
        let note = closed.closure.as_ref().unwrap();
        assert_eq!(
            (note.by.as_str(), note.outcome, note.note.as_str()),
            (
                "olivia",
                ReviewOutcome::Appropriate,
                "called the ED consultant"
            )
        );
        assert_eq!(pending(&store), [row("m1", "RKE", false)]);
        assert_eq!(store.pending_emergency_reviews(), 1);
        let listed = store.emergency_reviews(ReviewFilter::Closed, 10).unwrap();
        assert_eq!(listed, std::slice::from_ref(&closed));
        assert_eq!(store.emergency_review(id).unwrap().unwrap(), closed);
        assert_eq!(
            store
                .emergency_reviews(ReviewFilter::All, 10)
                .unwrap()
                .len(),
            2
        );
        let log = store.access_log(10, Some(NHS)).unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (
                log[0].user.as_str(),
                log[0].action.as_str(),
                log[0].subject.as_str()
            ),
            ("olivia", CLOSE_ACTION, "m1")
        );

        // Closing again: refused, and the first reviewer stays on record.
        let again = store
            .close_emergency_review(id, closure(ReviewOutcome::Inappropriate, "oscar"))
            .await
            .unwrap();
        assert_eq!(again, Closing::AlreadyClosed(closed));
        assert_eq!(store.access_log(10, None).unwrap().len(), 1);
        assert_eq!(
            store
                .close_emergency_review(u64::MAX, closure(ReviewOutcome::Appropriate, "olivia"))
                .await
                .unwrap(),
            Closing::NotFound
        );
    }

    #[tokio::test]
    async fn closed_reviews_follow_the_audit_detail_window_and_pending_ones_are_never_pruned() {
        let (_dir, store) = open();
        let now = datetime!(2036-01-01 00:00 UTC);
        let day = Duration::from_secs(24 * 3600);
        // Ten years old and still pending; one closed 100 days ago, one 10.
        store.record(&emergency("old", now - day * 3650)).unwrap();
        let ids: Vec<u64> = store
            .emergency_reviews(ReviewFilter::Pending, 10)
            .unwrap()
            .iter()
            .map(|r| r.id)
            .collect();
        for (id, closed_days_ago) in ids.iter().zip([100, 10]) {
            let at = now - day * closed_days_ago;
            let closure = ReviewClosure::new(ReviewOutcome::Inappropriate, "n", "olivia", at);
            store
                .close_emergency_review(*id, closure.unwrap())
                .await
                .unwrap();
        }
        store
            .record(&emergency("waiting", now - day * 3650))
            .unwrap();
        let retention = super::super::retention::Retention {
            dead_letters: day * 30,
            trace_events: day * 90,
            audit_detail: day * 90,
            audit_records: day * 2922,
            access_log: day * 2922,
        };
        let pruned = store.prune(now, &retention).unwrap();
        assert_eq!(pruned.emergency_reviews, 1);
        assert!(store.emergency_review(ids[0]).unwrap().is_none());
        assert!(store.emergency_review(ids[1]).unwrap().is_some());
        // Pending for ten years, past even the audit record's window: kept.
        assert_eq!(pending(&store).len(), 2);
        assert_eq!(store.prune(now, &retention).unwrap().emergency_reviews, 0);
    }

    #[test]
    fn a_closure_needs_a_note_and_a_known_outcome() {
        let at = datetime!(2026-12-02 09:00 UTC);
        assert_eq!(
            ReviewClosure::new(ReviewOutcome::Appropriate, "  \n ", "olivia", at),
            Err(ClosureError::NoNote)
        );
        assert_eq!(
            ReviewClosure::new(
                ReviewOutcome::Appropriate,
                &"x".repeat(MAX_NOTE_CHARS + 1),
                "olivia",
                at
            ),
            Err(ClosureError::NoteTooLong)
        );
        assert_eq!(
            ReviewOutcome::parse("inappropriate"),
            Some(ReviewOutcome::Inappropriate)
        );
        assert_eq!(ReviewOutcome::parse("fine"), None);
    }
}
