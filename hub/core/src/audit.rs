//! The audit record the hub keeps for every envelope it decides about:
//! routed (per recipient: forwarded or denied, with the agreement and
//! directives used) or rejected. Stored by the hub, queryable by message id
//! and by NHS number; never written to logs.

use lhcie_consent::{Obligation, Reason};
use lhcie_model::{Category, Envelope, PurposeOfUse};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::routing::{Outcome, Rejection};

/// How an envelope reached the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ingress {
    /// The gRPC `Submit` stream.
    Grpc,
    /// The AMQP ingress queue.
    Amqp,
}

/// One decision about one envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The envelope's message id (or what was given, if it was invalid).
    pub message_id: String,
    /// When the hub decided.
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
    /// The exchange that submitted it (from its certificate or broker user).
    pub submitted_by: String,
    /// How it arrived.
    pub ingress: Ingress,
    /// The sending organisation, if known.
    pub sender: Option<String>,
    /// Its category, if valid.
    pub category: Option<Category>,
    /// Its purpose of use, if valid.
    pub purpose: Option<PurposeOfUse>,
    /// The patient's NHS number, if valid: stored so the audit can be
    /// searched by patient. Never logged.
    pub nhs_number: Option<String>,
    /// What was decided.
    pub outcome: AuditOutcome,
}

/// What was decided. In JSON: `{"routed": {"recipients": [...]}}` or
/// `{"rejected": {"reason": ..., "detail": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditOutcome {
    /// Routed; one entry per recipient.
    Routed {
        /// The recipients.
        recipients: Vec<AuditRecipient>,
    },
    /// Rejected.
    Rejected {
        /// The reason code.
        reason: String,
        /// The detail.
        detail: String,
    },
}

/// The decision about one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecipient {
    /// The recipient organisation.
    pub recipient: String,
    /// The exchange that serves it.
    pub exchange: String,
    /// `forwarded` or `denied`.
    pub decision: String,
    /// The policy's reason code (e.g. `implied-consent`,
    /// `patient-denied-organisation`), or `no-policy` where none applies.
    pub reason: String,
    /// The agreement used, as `id` and version.
    pub isa: Option<(String, u32)>,
    /// The directives that decided.
    pub directives: Vec<String>,
    /// Obligations raised (e.g. `record-emergency-access`).
    pub obligations: Vec<String>,
    /// The registry revision of the copy that decided (absent for a
    /// decision from the configuration's static policy, and in records
    /// written before revisions were recorded): `registry decide
    /// --as-of-revision` with it, at `decided_at`, gives this decision
    /// again.
    #[serde(default)]
    pub registry_revision: Option<u64>,
}

impl AuditRecipient {
    /// Whether emergency care overrode a denial for this recipient
    /// (break-glass access, to be reviewed).
    pub fn emergency_override(&self) -> bool {
        self.reason == Reason::EmergencyOverride.code()
    }

    /// Whether the patient is to be told: their own refusal was overridden.
    pub fn notify_patient(&self) -> bool {
        let code = obligation_code(Obligation::NotifyPatient);
        self.obligations.iter().any(|o| o == code)
    }
}

fn obligation_code(obligation: Obligation) -> &'static str {
    match obligation {
        Obligation::RecordEmergencyAccess => "record-emergency-access",
        Obligation::NotifyPatient => "notify-patient",
    }
}

impl AuditRecord {
    /// The recipients of a routed envelope (none for a rejected one).
    pub fn recipients(&self) -> &[AuditRecipient] {
        match &self.outcome {
            AuditOutcome::Routed { recipients } => recipients,
            AuditOutcome::Rejected { .. } => &[],
        }
    }

    /// The record of a routing outcome for a valid envelope.
    pub fn of_outcome(
        envelope: &Envelope,
        outcome: &Outcome,
        submitted_by: &str,
        ingress: Ingress,
        decided_at: OffsetDateTime,
    ) -> Self {
        let outcome = match outcome {
            Outcome::Rejected(rejection) => rejected_outcome(rejection),
            Outcome::Routed(routed) => AuditOutcome::Routed {
                recipients: routed
                    .recipients
                    .iter()
                    .map(|r| AuditRecipient {
                        recipient: r.recipient.to_string(),
                        exchange: r.exchange.to_string(),
                        decision: if r.permitted() { "forwarded" } else { "denied" }.into(),
                        reason: r
                            .decision
                            .as_ref()
                            .map_or("no-policy", |d| d.reason.code())
                            .into(),
                        isa: r.decision.as_ref().and_then(|d| d.isa.clone()),
                        directives: r
                            .decision
                            .as_ref()
                            .map(|d| d.directives.clone())
                            .unwrap_or_default(),
                        obligations: r
                            .decision
                            .as_ref()
                            .map(|d| {
                                d.obligations
                                    .iter()
                                    .map(|o| obligation_code(*o).to_owned())
                                    .collect()
                            })
                            .unwrap_or_default(),
                        registry_revision: r.decision.as_ref().and_then(|d| d.registry_revision),
                    })
                    .collect(),
            },
        };
        Self {
            message_id: envelope.message_id.to_string(),
            decided_at,
            submitted_by: submitted_by.to_owned(),
            ingress,
            sender: Some(envelope.sender.ods_code.to_string()),
            category: Some(envelope.category),
            purpose: Some(envelope.purpose),
            nhs_number: envelope
                .patient
                .as_ref()
                .and_then(|p| p.nhs_number.as_ref())
                .map(|n| n.as_str().to_owned()),
            outcome,
        }
    }

    /// The record of an envelope rejected before it could be read fully.
    pub fn of_rejection(
        message_id: &str,
        sender: Option<&str>,
        rejection: &Rejection,
        submitted_by: &str,
        ingress: Ingress,
        decided_at: OffsetDateTime,
    ) -> Self {
        Self {
            message_id: message_id.to_owned(),
            decided_at,
            submitted_by: submitted_by.to_owned(),
            ingress,
            sender: sender.map(str::to_owned),
            category: None,
            purpose: None,
            nhs_number: None,
            outcome: rejected_outcome(rejection),
        }
    }
}

fn rejected_outcome(rejection: &Rejection) -> AuditOutcome {
    AuditOutcome::Rejected {
        reason: rejection.reason.code().into(),
        detail: rejection.detail.clone(),
    }
}
