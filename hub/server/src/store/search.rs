//! Finding decisions by business keys for the message trace: message id
//! (the `decisions` tree itself), NHS number (`by_patient`), organisation
//! (`by_org`: sender and every recipient), and time (`by_time`). Indexes,
//! not full-text: each search scans one index's range, newest first, and
//! filters the records it reads by the other criteria.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `by_time` | decided-at, decision key | empty |
//! | `by_org` | ODS code, 0, decided-at, decision key | empty |
//! | `access_log` | at, sequence | an [`AccessEntry`]: who looked at what (or closed an emergency review) |

use lhcie_hub_core::{AuditOutcome, AuditRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Store, StoreError, decode_audit, nanos, split};

/// A search. At least one criterion should be given; with none, the most
/// recent decisions are returned.
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    /// Exactly this message id.
    pub message_id: Option<String>,
    /// The patient's NHS number (validated by the caller).
    pub nhs_number: Option<String>,
    /// Sender or recipient organisation (ODS code).
    pub org: Option<String>,
    /// Category code.
    pub category: Option<String>,
    /// Decided at or after.
    pub from: Option<OffsetDateTime>,
    /// Decided before.
    pub to: Option<OffsetDateTime>,
    /// At most this many.
    pub limit: usize,
}

impl TraceQuery {
    fn matches(&self, record: &AuditRecord) -> bool {
        self.message_id
            .as_ref()
            .is_none_or(|id| *id == record.message_id)
            && self
                .nhs_number
                .as_ref()
                .is_none_or(|n| Some(n) == record.nhs_number.as_ref())
            && self
                .category
                .as_ref()
                .is_none_or(|c| record.category.is_some_and(|rc| rc.as_str() == c))
            && self
                .org
                .as_ref()
                .is_none_or(|org| orgs_of(record).any(|o| o == org))
            && self.from.is_none_or(|from| record.decided_at >= from)
            && self.to.is_none_or(|to| record.decided_at < to)
    }
}

/// The organisations a decision names: its sender and recipients.
pub(super) fn orgs_of(record: &AuditRecord) -> impl Iterator<Item = &str> {
    let recipients: &[lhcie_hub_core::AuditRecipient] = match &record.outcome {
        AuditOutcome::Routed { recipients } => recipients,
        AuditOutcome::Rejected { .. } => &[],
    };
    record
        .sender
        .as_deref()
        .into_iter()
        .chain(recipients.iter().map(|r| r.recipient.as_str()))
}

/// Who looked at what (viewing a trace that names a patient, searching by
/// NHS number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The user.
    pub user: String,
    /// `trace` (one message's timeline), `search`, or
    /// `close-emergency-review`.
    pub action: String,
    /// The message id viewed, or `nhs-number search`.
    pub subject: String,
    /// Whether what was shown names a patient.
    pub patient: bool,
    /// The NHS number searched for or shown, so "who looked at patient X"
    /// can be answered.
    pub nhs_number: Option<String>,
}

/// An access-log entry as written before entries carried the NHS number.
#[derive(Deserialize)]
struct AccessEntryWithoutPatient {
    #[serde(with = "time::serde::rfc3339")]
    at: OffsetDateTime,
    user: String,
    action: String,
    subject: String,
    patient: bool,
}

/// An access-log entry, also one written before entries carried the NHS
/// number (postcard has no optional trailing fields).
fn decode_access(bytes: &[u8]) -> Result<AccessEntry, StoreError> {
    match postcard::from_bytes::<AccessEntry>(bytes) {
        Ok(entry) => Ok(entry),
        Err(error) => postcard::from_bytes::<AccessEntryWithoutPatient>(bytes)
            .map(|old| AccessEntry {
                at: old.at,
                user: old.user,
                action: old.action,
                subject: old.subject,
                patient: old.patient,
                nhs_number: None,
            })
            .map_err(|_| StoreError::Corrupt(error.to_string())),
    }
}

impl Store {
    /// Adds a decision's time and organisation index entries (part of
    /// [`Store::record`]).
    pub(super) fn index_decision(
        &self,
        record: &AuditRecord,
        key: &[u8],
    ) -> Result<(), StoreError> {
        let at = nanos(record.decided_at);
        let mut by_time = at.to_vec();
        by_time.extend_from_slice(key);
        self.by_time.insert(by_time, &[])?;
        let mut seen: Vec<&str> = Vec::with_capacity(4);
        for org in orgs_of(record) {
            if seen.contains(&org) {
                continue;
            }
            seen.push(org);
            let mut index = org.as_bytes().to_vec();
            index.push(0);
            index.extend_from_slice(&at);
            index.extend_from_slice(key);
            self.by_org.insert(index, &[])?;
        }
        Ok(())
    }

    /// Decisions matching `query`, newest first.
    pub fn search(&self, query: &TraceQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let limit = query.limit.max(1);
        if let Some(message_id) = &query.message_id {
            let mut records = self.audit_of_message(message_id)?;
            records.retain(|r| query.matches(r));
            records.sort_by_key(|r| std::cmp::Reverse(r.decided_at));
            records.truncate(limit);
            return Ok(records);
        }
        let from = query.from.map_or([0; 8], nanos);
        let to = query.to.map_or([0xff; 8], nanos);
        let (tree, prefix) = match (&query.nhs_number, &query.org) {
            (Some(nhs), _) => (&self.by_patient, nhs.as_bytes().to_vec()),
            (None, Some(org)) => {
                let mut prefix = org.as_bytes().to_vec();
                prefix.push(0);
                (&self.by_org, prefix)
            }
            (None, None) => (&self.by_time, Vec::new()),
        };
        let mut start = prefix.clone();
        start.extend_from_slice(&from);
        let mut end = prefix.clone();
        end.extend_from_slice(&to);
        let mut records = Vec::new();
        for key in tree.range(start..end).keys().rev() {
            let key = key?;
            let decision_key = &key[prefix.len() + 8..];
            let Some(value) = self.decisions.get(decision_key)? else {
                continue;
            };
            let record = decode_audit(split(&value)?.1)?;
            if query.matches(&record) {
                records.push(record);
                if records.len() >= limit {
                    break;
                }
            }
        }
        Ok(records)
    }

    /// Records who looked at what; durable before the view is answered.
    pub async fn record_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        self.insert_access(entry)?;
        self.durable().await
    }

    /// Adds an access-log entry (not yet durable).
    pub(super) fn insert_access(&self, entry: &AccessEntry) -> Result<(), StoreError> {
        let mut key = nanos(entry.at).to_vec();
        key.extend_from_slice(&self.db.generate_id()?.to_be_bytes());
        let value = postcard::to_stdvec(entry).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.access_log.insert(key, value)?;
        Ok(())
    }

    /// The most recent accesses (only those naming `nhs_number`, if
    /// given), newest first.
    pub fn access_log(
        &self,
        limit: usize,
        nhs_number: Option<&str>,
    ) -> Result<Vec<AccessEntry>, StoreError> {
        let mut entries = Vec::new();
        for value in self.access_log.iter().values().rev() {
            let entry = decode_access(&value?)?;
            if nhs_number.is_none_or(|n| entry.nhs_number.as_deref() == Some(n)) {
                entries.push(entry);
                if entries.len() >= limit {
                    break;
                }
            }
        }
        Ok(entries)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use lhcie_hub_core::{AuditRecipient, Ingress};
    use lhcie_model::Category;
    use time::macros::datetime;

    use super::*;

    fn routed(id: &str, nhs: &str, sender: &str, to: &str, at: OffsetDateTime) -> AuditRecord {
        AuditRecord {
            message_id: id.into(),
            decided_at: at,
            submitted_by: "nwl-imperial".into(),
            ingress: Ingress::Grpc,
            sender: Some(sender.into()),
            category: Some(Category::DischargeSummary),
            purpose: None,
            nhs_number: Some(nhs.into()),
            outcome: AuditOutcome::Routed {
                recipients: vec![AuditRecipient {
                    recipient: to.into(),
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

    fn ids(records: Vec<AuditRecord>) -> Vec<String> {
        records.into_iter().map(|r| r.message_id).collect()
    }

    #[test]
    fn decisions_are_found_by_each_business_key_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(3600)).unwrap();
        store
            .record(&routed(
                "a",
                "9434765919",
                "RYJ",
                "RAL",
                datetime!(2026-11-21 10:00 UTC),
            ))
            .unwrap();
        store
            .record(&routed(
                "b",
                "9434765919",
                "RYJ",
                "R1H",
                datetime!(2026-11-21 11:00 UTC),
            ))
            .unwrap();
        store
            .record(&routed(
                "c",
                "9000000009",
                "RAL",
                "RYJ",
                datetime!(2026-11-21 12:00 UTC),
            ))
            .unwrap();
        let query = |f: fn(&mut TraceQuery)| {
            let mut q = TraceQuery {
                limit: 10,
                ..Default::default()
            };
            f(&mut q);
            ids(store.search(&q).unwrap())
        };
        assert_eq!(query(|_| {}), ["c", "b", "a"]);
        assert_eq!(query(|q| q.message_id = Some("b".into())), ["b"]);
        assert_eq!(
            query(|q| q.nhs_number = Some("9434765919".into())),
            ["b", "a"]
        );
        assert_eq!(query(|q| q.org = Some("RAL".into())), ["c", "a"]);
        assert_eq!(query(|q| q.org = Some("RYJ".into())), ["c", "b", "a"]);
        assert_eq!(
            query(|q| q.category = Some("referral".into())),
            Vec::<String>::new()
        );
        assert_eq!(
            query(|q| {
                q.from = Some(datetime!(2026-11-21 10:30 UTC));
                q.to = Some(datetime!(2026-11-21 11:30 UTC));
            }),
            ["b"]
        );
        assert_eq!(
            query(|q| {
                q.org = Some("RYJ".into());
                q.from = Some(datetime!(2026-11-21 11:00 UTC));
            }),
            ["c", "b"]
        );
        let mut q = TraceQuery {
            limit: 1,
            ..Default::default()
        };
        q.org = Some("RYJ".into());
        assert_eq!(ids(store.search(&q).unwrap()), ["c"]);
    }

    #[tokio::test]
    async fn accesses_are_logged_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), Duration::from_secs(3600)).unwrap();
        for (i, user) in ["alice", "bob"].iter().enumerate() {
            store
                .record_access(&AccessEntry {
                    at: datetime!(2026-11-21 10:00 UTC) + Duration::from_secs(i as u64),
                    user: (*user).into(),
                    action: "trace".into(),
                    subject: "m1".into(),
                    patient: true,
                    nhs_number: Some(["9434765919", "9000000009"][i].into()),
                })
                .await
                .unwrap();
        }
        let log = store.access_log(10, None).unwrap();
        assert_eq!(log[0].user, "bob");
        assert_eq!(log.len(), 2);
        let alice = store.access_log(10, Some("9434765919")).unwrap();
        assert_eq!(alice.len(), 1);
        assert_eq!(alice[0].user, "alice");
        // An entry written before entries carried the NHS number still reads.
        #[derive(Serialize)]
        struct Old<'a> {
            #[serde(with = "time::serde::rfc3339")]
            at: OffsetDateTime,
            user: &'a str,
            action: &'a str,
            subject: &'a str,
            patient: bool,
        }
        let old = postcard::to_stdvec(&Old {
            at: datetime!(2026-11-21 09:00 UTC),
            user: "carol",
            action: "trace",
            subject: "m0",
            patient: true,
        })
        .unwrap();
        let mut key = nanos(datetime!(2026-11-21 09:00 UTC)).to_vec();
        key.extend_from_slice(&0u64.to_be_bytes());
        store.access_log.insert(key, old).unwrap();
        let log = store.access_log(10, None).unwrap();
        assert_eq!(log.len(), 3);
        assert_eq!(
            (log[2].user.as_str(), log[2].nhs_number.as_deref()),
            ("carol", None)
        );
    }
}
