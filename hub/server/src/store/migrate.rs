//! Upgrading a store written in format 1 (before formats were recorded)
//! to the current one, in place, when the hub opens it. Format 2 added the
//! registry revision to each audit recipient; format-1 records get none
//! (`registry explain` then decides as of the moment alone and says so).
//! Only the audit records (`decisions`) changed shape; nothing else is
//! touched.
//!
//! The format-1 shapes are mirrored here: postcard is not self-describing,
//! so they must match field for field, variant for variant.

use lhcie_hub_core::{AuditOutcome, AuditRecipient, AuditRecord, Ingress};
use lhcie_model::{Category, PurposeOfUse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{StoreError, split};

/// The format-1 shapes.
pub(super) mod v1 {
    use super::*;

    #[derive(Serialize, Deserialize)]
    pub struct Recipient {
        pub recipient: String,
        pub exchange: String,
        pub decision: String,
        pub reason: String,
        pub isa: Option<(String, u32)>,
        pub directives: Vec<String>,
        pub obligations: Vec<String>,
    }

    #[derive(Serialize, Deserialize)]
    pub enum Outcome {
        Routed { recipients: Vec<Recipient> },
        Rejected { reason: String, detail: String },
    }

    #[derive(Serialize, Deserialize)]
    pub struct Record {
        pub message_id: String,
        #[serde(with = "time::serde::rfc3339")]
        pub decided_at: OffsetDateTime,
        pub submitted_by: String,
        pub ingress: Ingress,
        pub sender: Option<String>,
        pub category: Option<Category>,
        pub purpose: Option<PurposeOfUse>,
        pub nhs_number: Option<String>,
        pub outcome: Outcome,
    }
}

impl From<v1::Record> for AuditRecord {
    fn from(old: v1::Record) -> Self {
        let outcome = match old.outcome {
            v1::Outcome::Routed { recipients } => AuditOutcome::Routed {
                recipients: recipients
                    .into_iter()
                    .map(|r| AuditRecipient {
                        recipient: r.recipient,
                        exchange: r.exchange,
                        decision: r.decision,
                        reason: r.reason,
                        isa: r.isa,
                        directives: r.directives,
                        obligations: r.obligations,
                        registry_revision: None,
                    })
                    .collect(),
            },
            v1::Outcome::Rejected { reason, detail } => AuditOutcome::Rejected { reason, detail },
        };
        Self {
            message_id: old.message_id,
            decided_at: old.decided_at,
            submitted_by: old.submitted_by,
            ingress: old.ingress,
            sender: old.sender,
            category: old.category,
            purpose: old.purpose,
            nhs_number: old.nhs_number,
            outcome,
        }
    }
}

/// Rewrites every audit record of a format-1 store; the caller records the
/// new format afterwards.
pub(super) fn from_format_1(db: &sled::Db) -> Result<(), StoreError> {
    let decisions = db.open_tree("decisions")?;
    for item in decisions.iter() {
        let (key, value) = item?;
        let (decided, record) = split(&value)?;
        let old: v1::Record =
            postcard::from_bytes(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut upgraded = decided.to_be_bytes().to_vec();
        upgraded = postcard::to_extend(&AuditRecord::from(old), upgraded)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        decisions.insert(key, upgraded)?;
    }
    db.flush()?;
    Ok(())
}
