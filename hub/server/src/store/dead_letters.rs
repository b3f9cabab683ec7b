//! Dead letters kept by the hub until an operator replays or discards
//! them: copies the policy withheld for a reason that can be put right
//! (no information sharing agreement yet, no recorded consent yet), and
//! whatever the broker dead-lettered (a poison message past its delivery
//! limit, a copy a receiving adapter refused, an envelope the hub rejected
//! over AMQP).
//!
//! Trees: `dead_letters` (id, big-endian → [`DeadLetter`], postcard),
//! `dead_letter_bodies` (id → the envelope as received), and
//! `dead_letters_pending` (destination, 0, message id → id), so a message
//! dead-lettered again at the same destination while one is pending
//! updates that one instead of adding a second.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError};

/// Where a dead letter was going: an exchange id, or `ingress` for the
/// hub's own ingress queue.
pub const INGRESS_DESTINATION: &str = "ingress";

/// What became of a dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeadLetterState {
    /// Waiting for an operator.
    Pending,
    /// Replayed and forwarded (or decided finally).
    Replayed,
    /// Discarded by an operator.
    Discarded,
}

/// The last replay of a dead letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayNote {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Who (the dashboard user).
    pub by: String,
    /// `forwarded`, `denied`, `rejected`.
    pub outcome: String,
    /// The reason, for a denial or rejection.
    pub detail: String,
}

/// The `submitted_by` of an ingress dead letter whose publisher the broker
/// did not vouch for (no validated `user-id` of an exchange): it is listed
/// as "identity unverified" and cannot be replayed as anyone.
pub const UNVERIFIED_SUBMITTER: &str = "";

/// A dead letter. No patient data besides what the envelope body holds
/// (kept separately, never listed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id in the store.
    pub id: u64,
    /// The exchange it was going to, or [`INGRESS_DESTINATION`].
    pub destination: String,
    /// The envelope's message id.
    pub message_id: String,
    /// The exchange that submitted it.
    pub submitted_by: String,
    /// The sending organisation, if known.
    pub sender: Option<String>,
    /// The category code, if known.
    pub category: Option<String>,
    /// The recipients (ODS codes) of the destination it was for.
    pub recipients: Vec<String>,
    /// Why: a policy reason code (`no-agreement`), a hub rejection code,
    /// or the broker's (`delivery_limit`, `rejected`).
    pub reason: String,
    /// More about why (no patient data).
    pub detail: String,
    /// When it was dead-lettered.
    #[serde(with = "time::serde::rfc3339")]
    pub dead_lettered_at: OffsetDateTime,
    /// What became of it.
    pub state: DeadLetterState,
    /// The last replay, if any.
    pub last_replay: Option<ReplayNote>,
}

impl DeadLetter {
    /// Whether the submitting exchange is known from the transport (the
    /// broker-validated user, or the hub's own header on what it
    /// published): `false` for an ingress letter with no such identity. A
    /// copy on an egress queue carries only the hub's headers.
    pub fn identity_verified(&self) -> bool {
        self.destination != INGRESS_DESTINATION || self.submitted_by != UNVERIFIED_SUBMITTER
    }
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only this destination.
    pub destination: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only in this state (`None`: any).
    pub state: Option<DeadLetterState>,
}

impl DeadLetterFilter {
    /// Whether `letter` matches.
    pub fn matches(&self, letter: &DeadLetter) -> bool {
        self.destination
            .as_ref()
            .is_none_or(|d| *d == letter.destination)
            && self.reason.as_ref().is_none_or(|r| *r == letter.reason)
            && self
                .category
                .as_ref()
                .is_none_or(|c| Some(c) == letter.category.as_ref())
            && self.state.is_none_or(|s| s == letter.state)
    }
}

fn pending_key(destination: &str, message_id: &str) -> Vec<u8> {
    let mut key = destination.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(message_id.as_bytes());
    key
}

fn encode(letter: &DeadLetter) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(letter).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn decode(bytes: &[u8]) -> Result<DeadLetter, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Keeps a dead letter (not yet durable: [`Store::durable`]). If one
    /// for the same destination and message id is pending, it is updated
    /// (reason, detail, recipients, time) instead; returns its id and
    /// whether it is new.
    pub fn add_dead_letter(
        &self,
        mut letter: DeadLetter,
        body: &[u8],
    ) -> Result<(u64, bool), StoreError> {
        let pending = pending_key(&letter.destination, &letter.message_id);
        if let Some(existing) = self.dead_letters_pending.get(&pending)? {
            let id = u64::from_be_bytes(
                existing
                    .as_ref()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bad dead-letter index".into()))?,
            );
            if let Some(mut stored) = self.dead_letter(id)? {
                stored.reason = letter.reason;
                stored.detail = letter.detail;
                stored.dead_lettered_at = letter.dead_lettered_at;
                for recipient in letter.recipients {
                    if !stored.recipients.contains(&recipient) {
                        stored.recipients.push(recipient);
                    }
                }
                self.dead_letters
                    .insert(id.to_be_bytes(), encode(&stored)?)?;
                return Ok((id, false));
            }
        }
        let id = self.db.generate_id()?;
        letter.id = id;
        letter.state = DeadLetterState::Pending;
        self.dead_letter_bodies.insert(id.to_be_bytes(), body)?;
        self.dead_letters
            .insert(id.to_be_bytes(), encode(&letter)?)?;
        self.dead_letters_pending
            .insert(pending, &id.to_be_bytes())?;
        Ok((id, true))
    }

    /// One dead letter.
    pub fn dead_letter(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        self.dead_letters
            .get(id.to_be_bytes())?
            .map(|v| decode(&v))
            .transpose()
    }

    /// A dead letter's envelope, as received.
    pub fn dead_letter_body(&self, id: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .dead_letter_bodies
            .get(id.to_be_bytes())?
            .map(|v| v.to_vec()))
    }

    /// Dead letters matching `filter`, newest first, at most `limit`.
    pub fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let mut found = Vec::new();
        for value in self.dead_letters.iter().values().rev() {
            let letter = decode(&value?)?;
            if filter.matches(&letter) {
                found.push(letter);
                if found.len() >= limit {
                    break;
                }
            }
        }
        Ok(found)
    }

    /// Pending dead letters per destination.
    pub fn pending_dead_letters(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for key in self.dead_letters_pending.iter().keys() {
            let key = key?;
            let destination = key.split(|b| *b == 0).next().unwrap_or_default();
            *counts
                .entry(String::from_utf8_lossy(destination).into_owned())
                .or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }

    /// Updates a dead letter after a replay or discard; one that is no
    /// longer pending leaves the pending index and its body (the whole
    /// envelope, clinical content) is deleted: the record (who, when, why,
    /// the outcome) is what the audit of what was replayed needs.
    pub fn update_dead_letter(&self, letter: &DeadLetter) -> Result<(), StoreError> {
        self.dead_letters
            .insert(letter.id.to_be_bytes(), encode(letter)?)?;
        if letter.state != DeadLetterState::Pending {
            self.dead_letter_bodies.remove(letter.id.to_be_bytes())?;
            let pending = pending_key(&letter.destination, &letter.message_id);
            if self
                .dead_letters_pending
                .get(&pending)?
                .is_some_and(|id| id.as_ref() == letter.id.to_be_bytes())
            {
                self.dead_letters_pending.remove(pending)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn letter(destination: &str, message_id: &str, reason: &str) -> DeadLetter {
        DeadLetter {
            id: 0,
            destination: destination.into(),
            message_id: message_id.into(),
            submitted_by: "nwl-imperial".into(),
            sender: Some("RYJ".into()),
            category: Some("discharge-summary".into()),
            recipients: vec!["RAL".into()],
            reason: reason.into(),
            detail: String::new(),
            dead_lettered_at: OffsetDateTime::now_utc(),
            state: DeadLetterState::Pending,
            last_replay: None,
        }
    }

    #[test]
    fn a_message_pending_at_a_destination_is_kept_once_and_leaves_the_index_when_settled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(60)).unwrap();
        let (first, new) = store
            .add_dead_letter(letter("ncl-royal-free", "m1", "no-agreement"), b"body")
            .unwrap();
        assert!(new);
        let (again, new) = store
            .add_dead_letter(letter("ncl-royal-free", "m1", "delivery_limit"), b"body")
            .unwrap();
        assert_eq!((again, new), (first, false));
        let (other, _) = store
            .add_dead_letter(letter("sel-guys", "m1", "no-agreement"), b"b2")
            .unwrap();
        assert_ne!(other, first);
        assert_eq!(
            store.pending_dead_letters().unwrap(),
            [("ncl-royal-free".to_owned(), 1), ("sel-guys".to_owned(), 1)]
        );
        let mut stored = store.dead_letter(first).unwrap().unwrap();
        assert_eq!(stored.reason, "delivery_limit");
        assert_eq!(store.dead_letter_body(first).unwrap().unwrap(), b"body");
        stored.state = DeadLetterState::Replayed;
        store.update_dead_letter(&stored).unwrap();
        // Replayed: the record stays, the envelope (clinical content) goes.
        assert_eq!(store.dead_letter_body(first).unwrap(), None);
        assert_eq!(
            store.dead_letter(first).unwrap().unwrap().state,
            DeadLetterState::Replayed
        );
        assert_eq!(store.pending_dead_letters().unwrap().len(), 1);
        let filter = DeadLetterFilter {
            state: Some(DeadLetterState::Pending),
            ..Default::default()
        };
        let pending = store.dead_letters(&filter, 10).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].destination, "sel-guys");
        // Dead-lettered again after its replay: a new one.
        let (third, new) = store
            .add_dead_letter(letter("ncl-royal-free", "m1", "rejected"), b"body")
            .unwrap();
        assert!(new && third != first);
        assert_eq!(
            store
                .dead_letters(&DeadLetterFilter::default(), 10)
                .unwrap()
                .len(),
            3
        );
        // Discarded: the same.
        let mut discarded = store.dead_letter(third).unwrap().unwrap();
        discarded.state = DeadLetterState::Discarded;
        store.update_dead_letter(&discarded).unwrap();
        assert_eq!(store.dead_letter_body(third).unwrap(), None);
        assert!(store.dead_letter(third).unwrap().is_some());
    }
}
