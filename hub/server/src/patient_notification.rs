//! The notification the hub owes a patient whose own refusal was
//! overridden in an emergency (the registry's `notify-patient` obligation):
//! one small, versioned JSON document per routed message, published with
//! confirms to `<prefix>.patient-notifications` for the patient-notification
//! service before the message is answered or acked (`Router::forward`).
//!
//! It is derived from the message's audit record, so it says exactly what
//! the audit says. It names the patient (their NHS number): it is never
//! logged, and no adapter's broker user may read the queue.
//!
//! Delivery is at least once, like the copies: a message held after its
//! notification was confirmed (a copy failed) is decided and notified
//! again, so the service de-duplicates by message id and sender (the AMQP
//! `message-id` is the message's).

use lhcie_hub_core::{AuditRecipient, AuditRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

/// The version of the document's shape; a consumer refuses others.
pub const VERSION: u32 = 1;
/// Its AMQP content type.
pub const CONTENT_TYPE: &str = "application/json";
/// Its AMQP `type` property.
pub const MESSAGE_TYPE: &str = "lhcie.patient-notification.v1";
/// What it is about (`kind`).
pub const KIND: &str = "emergency-override";

/// A notification for the patient-notification service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientNotification {
    /// [`VERSION`].
    pub version: u32,
    /// [`KIND`].
    pub kind: String,
    /// The message the override let through.
    pub message_id: String,
    /// The patient (the registry overrides a refusal only for a patient it
    /// can identify, so this is always given).
    pub nhs_number: Option<String>,
    /// When the hub decided.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// The sending organisation (ODS code).
    pub sender: Option<String>,
    /// The recipients that received it although the patient had refused.
    pub recipients: Vec<OverriddenRecipient>,
    /// The category code (e.g. `discharge-summary`).
    pub category: Option<String>,
    /// The purpose of use code (`emergency-care`).
    pub purpose: Option<String>,
    /// What happened, in words a patient can read.
    pub text: String,
}

/// A recipient a patient's refusal was overridden for, with the agreement
/// that allowed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverriddenRecipient {
    /// Its ODS code.
    pub ods_code: String,
    /// The information sharing agreement's id.
    pub agreement_id: Option<String>,
    /// Its version.
    pub agreement_version: Option<u32>,
}

impl PatientNotification {
    /// The notification `audit` obliges, if any recipient's decision
    /// carries `notify-patient`.
    pub fn of(audit: &AuditRecord) -> Option<Self> {
        let notified: Vec<&AuditRecipient> = audit
            .recipients()
            .iter()
            .filter(|r| r.notify_patient())
            .collect();
        if notified.is_empty() {
            return None;
        }
        let recipients = notified
            .iter()
            .map(|r| OverriddenRecipient {
                ods_code: r.recipient.clone(),
                agreement_id: r.isa.as_ref().map(|(id, _)| id.clone()),
                agreement_version: r.isa.as_ref().map(|(_, version)| *version),
            })
            .collect::<Vec<_>>();
        Some(Self {
            version: VERSION,
            kind: KIND.to_owned(),
            message_id: audit.message_id.clone(),
            nhs_number: audit.nhs_number.clone(),
            decided_at: audit.decided_at,
            sender: audit.sender.clone(),
            text: plain_words(audit, &recipients),
            recipients,
            category: audit.category.map(|c| c.as_str().to_owned()),
            purpose: audit.purpose.map(|p| p.as_str().to_owned()),
        })
    }

    /// The JSON document published.
    pub fn to_json(&self) -> Vec<u8> {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The sentence a patient reads.
fn plain_words(audit: &AuditRecord, recipients: &[OverriddenRecipient]) -> String {
    let date = audit
        .decided_at
        .format(format_description!(
            "[day padding:none] [month repr:long] [year]"
        ))
        .unwrap_or_default();
    let what = audit
        .category
        .map_or("a record", |c| category_words(c.as_str()));
    let sender = audit.sender.as_deref().unwrap_or("a care provider");
    let codes: Vec<&str> = recipients.iter().map(|r| r.ods_code.as_str()).collect();
    format!(
        "On {date}, {sender} shared {what} about you with {} for your emergency care, \
         although you had asked for this not to be shared with them. Sharing in an \
         emergency is allowed by an information sharing agreement; it has been recorded \
         and will be reviewed.",
        list(&codes)
    )
}

/// A category in words, with its article.
fn category_words(code: &str) -> &'static str {
    match code {
        "discharge-summary" => "a discharge summary",
        "repatriation-request" => "a request to transfer your care",
        "cancer-document" => "a cancer care document",
        "end-of-life-care-plan" => "your end of life care plan",
        "care-event" => "a record of your care",
        "result" => "a test result",
        "referral" => "a referral",
        _ => "a record",
    }
}

/// `a`, `a and b`, `a, b and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use lhcie_hub_core::{AuditOutcome, Ingress};
    use lhcie_model::{Category, PurposeOfUse};
    use time::macros::datetime;

    use super::*;

    fn recipient(code: &str, reason: &str, obligations: &[&str]) -> AuditRecipient {
        AuditRecipient {
            recipient: code.into(),
            exchange: "ncl-royal-free".into(),
            decision: "forwarded".into(),
            reason: reason.into(),
            isa: Some(("ISA-TEST-1".into(), 2)),
            directives: vec![],
            obligations: obligations.iter().map(|o| (*o).to_owned()).collect(),
            registry_revision: None,
        }
    }

    fn audit(recipients: Vec<AuditRecipient>) -> AuditRecord {
        AuditRecord {
            message_id: "m1".into(),
            decided_at: datetime!(2026-12-01 10:30 UTC),
            submitted_by: "nwl-imperial".into(),
            ingress: Ingress::Grpc,
            sender: Some("RYJ".into()),
            category: Some(Category::DischargeSummary),
            purpose: Some(PurposeOfUse::EmergencyCare),
            nhs_number: Some("9000000009".into()),
            outcome: AuditOutcome::Routed { recipients },
        }
    }

    const NOTIFY: [&str; 2] = ["record-emergency-access", "notify-patient"];

    #[test]
    fn a_refusal_overridden_is_notified_with_the_recipients_that_overrode_it() {
        let record = audit(vec![
            recipient("RAL", "emergency-override", &NOTIFY),
            recipient("RKE", "emergency-override", &["record-emergency-access"]),
            recipient("RJZ", "emergency-override", &NOTIFY),
        ]);
        let notification = PatientNotification::of(&record).unwrap();
        let json: serde_json::Value = serde_json::from_slice(&notification.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "version": 1,
                "kind": "emergency-override",
                "message_id": "m1",
                "nhs_number": "9000000009",
                "decided_at": "2026-12-01T10:30:00Z",
                "sender": "RYJ",
                "recipients": [
                    {"ods_code": "RAL", "agreement_id": "ISA-TEST-1", "agreement_version": 2},
                    {"ods_code": "RJZ", "agreement_id": "ISA-TEST-1", "agreement_version": 2},
                ],
                "category": "discharge-summary",
                "purpose": "emergency-care",
                "text": "On 1 December 2026, RYJ shared a discharge summary about you with RAL and RJZ \
                         for your emergency care, although you had asked for this not to be shared \
                         with them. Sharing in an emergency is allowed by an information sharing \
                         agreement; it has been recorded and will be reviewed.",
            })
        );
        assert_eq!(
            serde_json::from_slice::<PatientNotification>(&notification.to_json()).unwrap(),
            notification
        );
    }

    #[test]
    fn nothing_is_notified_without_the_obligation() {
        let record = audit(vec![
            recipient("RKE", "emergency-override", &["record-emergency-access"]),
            recipient("RAL", "implied-consent", &["record-emergency-access"]),
        ]);
        assert_eq!(PatientNotification::of(&record), None);
    }

    #[test]
    fn lists_read_as_english() {
        assert_eq!(list(&["A"]), "A");
        assert_eq!(list(&["A", "B"]), "A and B");
        assert_eq!(list(&["A", "B", "C"]), "A, B and C");
        for category in Category::ALL
            .into_iter()
            .filter(|c| *c != Category::Acknowledgement)
        {
            assert_ne!(
                category_words(category.as_str()),
                "a record",
                "{category:?}"
            );
        }
    }
}
