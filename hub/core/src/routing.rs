//! The routing decision for one envelope: who receives it, and which of
//! them the policy permits. Pure: the caller does the I/O.

use lhcie_consent::{Decision, DecisionRequest, OrgRef};
use lhcie_model::{
    Envelope, ExchangeId, OdsCode, RoutingRule, ValidationError, ValidationErrorKind, hub_response,
};
use time::OffsetDateTime;

use crate::policy::{Policy, PolicyUnavailable};
use crate::route_table::RouteTable;

/// Why an envelope was not routed at all. Final: the sender must fix the
/// envelope rather than retry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Malformed or missing fields.
    InvalidEnvelope,
    /// A named recipient is not served by any exchange.
    UnknownRecipient,
    /// The category is missing or not one this hub knows.
    UnknownCategory,
    /// The patient's NHS number fails validation.
    InvalidNhsNumber,
    /// The sender organisation does not belong to the submitting exchange.
    SenderNotAuthorised,
    /// The envelope is larger than the hub accepts.
    TooLarge,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [RejectReason; 6] = [
        RejectReason::InvalidEnvelope,
        RejectReason::UnknownRecipient,
        RejectReason::UnknownCategory,
        RejectReason::InvalidNhsNumber,
        RejectReason::SenderNotAuthorised,
        RejectReason::TooLarge,
    ];

    /// The reason with this code.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == code)
    }

    /// A stable code for audit records, metrics and acknowledgements.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::InvalidEnvelope => hub_response::INVALID_ENVELOPE,
            RejectReason::UnknownRecipient => hub_response::UNKNOWN_RECIPIENT,
            RejectReason::UnknownCategory => hub_response::UNKNOWN_CATEGORY,
            RejectReason::InvalidNhsNumber => hub_response::INVALID_NHS_NUMBER,
            RejectReason::SenderNotAuthorised => hub_response::SENDER_NOT_AUTHORISED,
            RejectReason::TooLarge => hub_response::TOO_LARGE,
        }
    }
}

/// A rejection with its reason and a detail that names the field or value
/// at fault (never a patient identifier).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason.
    pub reason: RejectReason,
    /// What exactly is wrong.
    pub detail: String,
}

impl Rejection {
    /// A rejection.
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }

    /// The rejection for an envelope that failed the canonical model's
    /// validation.
    pub fn from_validation(error: &ValidationError) -> Self {
        let reason = match error.kind {
            ValidationErrorKind::InvalidNhsNumber => RejectReason::InvalidNhsNumber,
            ValidationErrorKind::UnknownCategory => RejectReason::UnknownCategory,
            ValidationErrorKind::Missing
            | ValidationErrorKind::Invalid
            | ValidationErrorKind::Inconsistent => RejectReason::InvalidEnvelope,
        };
        Self::new(reason, error.to_string())
    }
}

/// What the policy said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientDecision {
    /// The recipient organisation.
    pub recipient: OdsCode,
    /// The exchange that serves it.
    pub exchange: ExchangeId,
    /// The policy's decision; `None` where no policy applies (messages that
    /// carry no patient data, such as acknowledgements).
    pub decision: Option<Decision>,
}

impl RecipientDecision {
    /// Whether the recipient may receive the envelope.
    pub fn permitted(&self) -> bool {
        self.decision.as_ref().is_none_or(|d| d.permitted)
    }
}

/// One copy to publish: to an exchange, for the permitted recipients it
/// serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    /// The exchange whose egress queue receives the copy.
    pub exchange: ExchangeId,
    /// The permitted recipients it serves, in addressing order.
    pub recipients: Vec<OdsCode>,
}

/// A routed envelope: every recipient with its decision, and the copies to
/// publish (none if every recipient was denied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// Every recipient, in addressing order.
    pub recipients: Vec<RecipientDecision>,
    /// The copies, one per exchange with a permitted recipient.
    pub copies: Vec<Copy>,
}

impl Routed {
    /// The recipients the policy denied.
    pub fn denied(&self) -> impl Iterator<Item = &RecipientDecision> {
        self.recipients.iter().filter(|r| !r.permitted())
    }
}

/// The outcome for one envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Routed (possibly to no-one, if every recipient was denied).
    Routed(Routed),
    /// Not routed at all.
    Rejected(Rejection),
}

/// Routes `envelope`, submitted by an adapter identified as `submitter`,
/// deciding each recipient at time `at`. Returns `Err` only when the policy
/// cannot decide; the caller must then hold the envelope.
pub fn route(
    envelope: &Envelope,
    submitter: &ExchangeId,
    table: &RouteTable,
    policy: &dyn Policy,
    at: OffsetDateTime,
) -> Result<Outcome, PolicyUnavailable> {
    if let Some(rejection) = check_sender(envelope, submitter, table) {
        return Ok(Outcome::Rejected(rejection));
    }
    let recipients = match resolve_recipients(envelope, table) {
        Ok(recipients) => recipients,
        Err(rejection) => return Ok(Outcome::Rejected(rejection)),
    };
    let sender = &envelope.sender;
    let sender_region = table
        .placement(&sender.ods_code)
        .map(|p| p.region.as_str())
        .unwrap_or_default();
    let mut decided = Vec::with_capacity(recipients.len());
    for (recipient, exchange, region) in recipients {
        let decision = if envelope.category.is_patient_data() {
            let request = DecisionRequest {
                nhs_number: envelope
                    .patient
                    .as_ref()
                    .and_then(|p| p.nhs_number.as_ref()),
                sender: OrgRef {
                    ods_code: &sender.ods_code,
                    exchange: &sender.exchange_id,
                    region: sender_region,
                },
                recipient: OrgRef {
                    ods_code: &recipient,
                    exchange: &exchange,
                    region: &region,
                },
                category: envelope.category,
                purpose: envelope.purpose,
                at,
            };
            Some(policy.decide(&request)?)
        } else {
            None
        };
        decided.push(RecipientDecision {
            recipient,
            exchange,
            decision,
        });
    }
    let mut copies: Vec<Copy> = Vec::new();
    for recipient in decided.iter().filter(|r| r.permitted()) {
        match copies.iter_mut().find(|c| c.exchange == recipient.exchange) {
            Some(copy) => copy.recipients.push(recipient.recipient.clone()),
            None => copies.push(Copy {
                exchange: recipient.exchange.clone(),
                recipients: vec![recipient.recipient.clone()],
            }),
        }
    }
    Ok(Outcome::Routed(Routed {
        recipients: decided,
        copies,
    }))
}

/// The sender must claim the submitting exchange and be an organisation it
/// serves.
fn check_sender(
    envelope: &Envelope,
    submitter: &ExchangeId,
    table: &RouteTable,
) -> Option<Rejection> {
    let sender = &envelope.sender;
    if &sender.exchange_id != submitter {
        return Some(Rejection::new(
            RejectReason::SenderNotAuthorised,
            format!(
                "sender.exchange_id is {} but the envelope was submitted by exchange {submitter}",
                sender.exchange_id
            ),
        ));
    }
    if !table.serves(submitter, &sender.ods_code) {
        return Some(Rejection::new(
            RejectReason::SenderNotAuthorised,
            format!(
                "sender.ods_code {} is not an organisation of exchange {submitter}",
                sender.ods_code
            ),
        ));
    }
    None
}

/// Named recipients, then those found by rule, without repeats.
fn resolve_recipients(
    envelope: &Envelope,
    table: &RouteTable,
) -> Result<Vec<(OdsCode, ExchangeId, String)>, Rejection> {
    let mut resolved: Vec<(OdsCode, ExchangeId, String)> = Vec::new();
    for (i, recipient) in envelope.addressing.recipients.iter().enumerate() {
        let Some(placement) = table.placement(&recipient.ods_code) else {
            return Err(Rejection::new(
                RejectReason::UnknownRecipient,
                format!(
                    "addressing.recipients[{i}].ods_code: {} is not served by any exchange on this hub",
                    recipient.ods_code
                ),
            ));
        };
        push_unique(&mut resolved, &recipient.ods_code, placement);
    }
    match envelope.addressing.rule {
        None => {}
        Some(RoutingRule::Subscribers) => {
            return Err(Rejection::new(
                RejectReason::InvalidEnvelope,
                "addressing.rule: routing to subscribers is not available on this hub yet",
            ));
        }
        Some(RoutingRule::RegisteredGp) => {
            let practice = envelope
                .patient
                .as_ref()
                .and_then(|p| p.registered_gp_practice.as_ref());
            let placement = practice.and_then(|code| table.placement(code).map(|p| (code, p)));
            match placement {
                Some((code, placement)) => push_unique(&mut resolved, code, placement),
                // With named recipients, a GP outside the hub's reach only
                // means the rule adds no-one; alone, it leaves no recipient.
                None if !resolved.is_empty() => {}
                None => {
                    let detail = match practice {
                        None => "addressing.rule registered-gp: the patient has no registered GP practice".to_owned(),
                        Some(code) => format!(
                            "addressing.rule registered-gp: the registered GP practice {code} is not served by any exchange on this hub"
                        ),
                    };
                    return Err(Rejection::new(RejectReason::UnknownRecipient, detail));
                }
            }
        }
    }
    Ok(resolved)
}

fn push_unique(
    resolved: &mut Vec<(OdsCode, ExchangeId, String)>,
    code: &OdsCode,
    placement: &crate::route_table::Placement,
) {
    if !resolved.iter().any(|(c, _, _)| c == code) {
        resolved.push((
            code.clone(),
            placement.exchange.clone(),
            placement.region.clone(),
        ));
    }
}
